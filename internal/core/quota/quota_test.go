package quota

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

const (
	gib  = 1 << 30
	day  = 24 * time.Hour
	week = 7 * day
)

// guideDefaults are the example limits of the tuning guide's quota section.
var guideDefaults = Defaults{
	User:  Limits{BytesSoft: 10 * gib, BytesHard: 12 * gib, InodesSoft: 10000, InodesHard: 12000},
	Group: Limits{BytesSoft: 100 * gib, BytesHard: 120 * gib},
	Grace: DefaultGrace,
}

var t0 = time.Date(2024, 3, 1, 9, 0, 0, 0, time.UTC)

type step struct {
	name      string
	advance   time.Duration // added to the clock before the charge
	limits    *Limits       // new limits from this step on
	dBytes    int64
	dInodes   int64
	wantErr   *ExceededError // only Resource and Kind are compared
	wantEvent Event
	wantUsed  [2]int64 // bytes, inodes after the step
}

// run applies steps in order, carrying the usage forward as the core would:
// stored on success, left as it was on refusal.
func run(t *testing.T, lim Limits, grace time.Duration, steps []step) {
	t.Helper()
	var u Usage
	now := t0
	var crossedAt [2]time.Time
	for i, s := range steps {
		now = now.Add(s.advance)
		if s.limits != nil {
			lim = *s.limits
		}
		got, ev, err := Charge(u, lim, s.dBytes, s.dInodes, now, grace)
		switch {
		case s.wantErr == nil && err != nil:
			t.Fatalf("step %d (%s): unexpected error %v", i, s.name, err)
		case s.wantErr != nil:
			var ee *ExceededError
			if !errors.As(err, &ee) || !errors.Is(err, ErrExceeded) {
				t.Fatalf("step %d (%s): error %v, want an ExceededError", i, s.name, err)
			}
			if ee.Resource != s.wantErr.Resource || ee.Kind != s.wantErr.Kind {
				t.Fatalf("step %d (%s): refused for %s/%s, want %s/%s",
					i, s.name, ee.Resource, ee.Kind, s.wantErr.Resource, s.wantErr.Kind)
			}
			if got != u || ev != 0 {
				t.Fatalf("step %d (%s): refused charge returned %+v, %v; want the input unchanged and no event",
					i, s.name, got, ev)
			}
		}
		if ev != s.wantEvent {
			t.Fatalf("step %d (%s): event %q, want %q", i, s.name, ev, s.wantEvent)
		}
		if err == nil {
			u = got
		}
		if u.Bytes != s.wantUsed[0] || u.Inodes != s.wantUsed[1] {
			t.Fatalf("step %d (%s): usage %d bytes %d inodes, want %v", i, s.name, u.Bytes, u.Inodes, s.wantUsed)
		}
		// The stamps must follow the events: set at the crossing, kept
		// while above, cleared on the way down.
		for r, since := range []int64{u.BytesSoftSince, u.InodesSoftSince} {
			crossed := []Event{BytesSoftCrossed, InodesSoftCrossed}[r]
			cleared := []Event{BytesSoftCleared, InodesSoftCleared}[r]
			switch {
			case ev.Has(crossed):
				crossedAt[r] = now
			case ev.Has(cleared):
				crossedAt[r] = time.Time{}
			}
			want := int64(0)
			if !crossedAt[r].IsZero() {
				want = crossedAt[r].UnixNano()
			}
			if since != want {
				t.Fatalf("step %d (%s): resource %d soft-since %d, want %d", i, s.name, r, since, want)
			}
		}
	}
}

func bytesErr(k LimitKind) *ExceededError  { return &ExceededError{Resource: Bytes, Kind: k} }
func inodesErr(k LimitKind) *ExceededError { return &ExceededError{Resource: Inodes, Kind: k} }

func TestCharge(t *testing.T) {
	small := Limits{BytesSoft: 100, BytesHard: 200, InodesSoft: 10, InodesHard: 20}
	tests := []struct {
		name  string
		lim   Limits
		grace time.Duration
		steps []step
	}{
		{
			name: "soft warning once per crossing", lim: small, grace: week,
			steps: []step{
				{name: "below soft", dBytes: 90, wantUsed: [2]int64{90, 0}},
				{name: "at soft is not above", dBytes: 10, wantUsed: [2]int64{100, 0}},
				{name: "crossing warns", dBytes: 1, wantEvent: BytesSoftCrossed, wantUsed: [2]int64{101, 0}},
				{name: "further writes do not warn", advance: time.Hour, dBytes: 20, wantUsed: [2]int64{121, 0}},
				{name: "a small decrease stays above", dBytes: -1, wantUsed: [2]int64{120, 0}},
				{name: "back to soft clears", dBytes: -20, wantEvent: BytesSoftCleared, wantUsed: [2]int64{100, 0}},
				{name: "next crossing warns again", advance: time.Hour, dBytes: 5, wantEvent: BytesSoftCrossed, wantUsed: [2]int64{105, 0}},
			},
		},
		{
			name: "operations continue during grace, then the soft limit is enforced", lim: small, grace: week,
			steps: []step{
				{name: "cross", dBytes: 150, wantEvent: BytesSoftCrossed, wantUsed: [2]int64{150, 0}},
				{name: "six days later", advance: 6 * day, dBytes: 10, wantUsed: [2]int64{160, 0}},
				{name: "last instant of grace", advance: day - time.Nanosecond, dBytes: 10, wantUsed: [2]int64{170, 0}},
				{name: "grace over", advance: time.Nanosecond, dBytes: 1, wantErr: bytesErr(GraceExpired), wantUsed: [2]int64{170, 0}},
				{name: "inodes are judged on their own", dInodes: 1, wantUsed: [2]int64{170, 1}},
				{name: "a decrease is allowed", dBytes: -50, wantUsed: [2]int64{120, 1}},
				{name: "still above soft: still refused", advance: day, dBytes: 1, wantErr: bytesErr(GraceExpired), wantUsed: [2]int64{120, 1}},
				{name: "down to soft ends grace", dBytes: -20, wantEvent: BytesSoftCleared, wantUsed: [2]int64{100, 1}},
				{name: "a no-op charge changes nothing", dBytes: 0, wantUsed: [2]int64{100, 1}},
				{name: "a new crossing gets a full grace", dBytes: 30, wantEvent: BytesSoftCrossed, wantUsed: [2]int64{130, 1}},
				{name: "within the new grace", advance: week - time.Second, dBytes: 10, wantUsed: [2]int64{140, 1}},
				{name: "new grace over", advance: time.Second, dBytes: 10, wantErr: bytesErr(GraceExpired), wantUsed: [2]int64{140, 1}},
			},
		},
		{
			name: "hard stop inside grace", lim: small, grace: week,
			steps: []step{
				{name: "cross", dBytes: 190, wantEvent: BytesSoftCrossed, wantUsed: [2]int64{190, 0}},
				{name: "up to exactly hard", dBytes: 10, wantUsed: [2]int64{200, 0}},
				{name: "one more byte", dBytes: 1, wantErr: bytesErr(Hard), wantUsed: [2]int64{200, 0}},
				{name: "a big write from below", dBytes: -100, wantEvent: BytesSoftCleared, wantUsed: [2]int64{100, 0}},
				{name: "jumping past hard in one write", dBytes: 101, wantErr: bytesErr(Hard), wantUsed: [2]int64{100, 0}},
			},
		},
		{
			name: "both resources or none", lim: small, grace: week,
			steps: []step{
				{name: "fill inodes to hard", dBytes: 10, dInodes: 20, wantEvent: InodesSoftCrossed, wantUsed: [2]int64{10, 20}},
				{name: "create refused: bytes not charged", dBytes: 10, dInodes: 1, wantErr: inodesErr(Hard), wantUsed: [2]int64{10, 20}},
				{name: "write without create is fine", dBytes: 10, wantUsed: [2]int64{20, 20}},
				{name: "remove frees both", dBytes: -5, dInodes: -15, wantEvent: InodesSoftCleared, wantUsed: [2]int64{15, 5}},
				{name: "both cross at once", dBytes: 100, dInodes: 6, wantEvent: BytesSoftCrossed | InodesSoftCrossed, wantUsed: [2]int64{115, 11}},
			},
		},
		{
			name: "decreases always allowed", lim: small, grace: time.Hour,
			steps: []step{
				{name: "cross", dBytes: 150, wantEvent: BytesSoftCrossed, wantUsed: [2]int64{150, 0}},
				{name: "limits lowered below usage", limits: &Limits{BytesSoft: 10, BytesHard: 20}, advance: 2 * time.Hour, dBytes: -1, wantUsed: [2]int64{149, 0}},
				{name: "increase refused at hard", dBytes: 1, wantErr: bytesErr(Hard), wantUsed: [2]int64{149, 0}},
				{name: "decrease past zero clamps", dBytes: -500, wantEvent: BytesSoftCleared | Underflow, wantUsed: [2]int64{0, 0}},
			},
		},
		{
			name: "limits changed without writes", lim: Limits{}, grace: week,
			steps: []step{
				{name: "unlimited", dBytes: 500, wantUsed: [2]int64{500, 0}},
				{name: "soft limit set below usage: stamped at the next change", limits: &Limits{BytesSoft: 100},
					dInodes: 1, wantEvent: BytesSoftCrossed, wantUsed: [2]int64{500, 1}},
				{name: "grace runs from that stamp", advance: week, dBytes: 1, wantErr: bytesErr(GraceExpired), wantUsed: [2]int64{500, 1}},
				{name: "limit raised: stamp cleared", limits: &Limits{BytesSoft: 1000}, dBytes: 1, wantEvent: BytesSoftCleared, wantUsed: [2]int64{501, 1}},
			},
		},
		{
			name: "zeros are unlimited", lim: Limits{}, grace: week,
			steps: []step{
				{name: "huge", dBytes: math.MaxInt64 / 2, dInodes: 1 << 40, wantUsed: [2]int64{math.MaxInt64 / 2, 1 << 40}},
				{name: "later", advance: 100 * week, dBytes: 1, dInodes: 1, wantUsed: [2]int64{math.MaxInt64/2 + 1, 1<<40 + 1}},
			},
		},
		{
			name: "soft only: grace then stop", lim: Limits{InodesSoft: 2}, grace: day,
			steps: []step{
				{name: "cross", dInodes: 3, wantEvent: InodesSoftCrossed, wantUsed: [2]int64{0, 3}},
				{name: "no hard limit in grace", dInodes: 1000, dBytes: 1 << 50, wantUsed: [2]int64{1 << 50, 1003}},
				{name: "grace over", advance: day, dInodes: 1, wantErr: inodesErr(GraceExpired), wantUsed: [2]int64{1 << 50, 1003}},
			},
		},
		{
			name: "hard only: no warning, hard stop", lim: Limits{BytesHard: 50}, grace: day,
			steps: []step{
				{name: "fill", dBytes: 50, wantUsed: [2]int64{50, 0}},
				{name: "stop", dBytes: 1, wantErr: bytesErr(Hard), wantUsed: [2]int64{50, 0}},
			},
		},
		{
			name: "zero grace: the crossing passes, the next increase does not", lim: small, grace: 0,
			steps: []step{
				{name: "cross", dBytes: 101, wantEvent: BytesSoftCrossed, wantUsed: [2]int64{101, 0}},
				{name: "refused at once", dBytes: 1, wantErr: bytesErr(GraceExpired), wantUsed: [2]int64{101, 0}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { run(t, tt.lim, tt.grace, tt.steps) })
	}
}

// TestGuideDefaults follows the guide's example configuration for a user and
// for a group: the same rules at each kind's own limits.
func TestGuideDefaults(t *testing.T) {
	tests := []struct {
		kind  IDKind
		steps []step
	}{
		{User, []step{
			{name: "user fills to soft", dBytes: 10 * gib, dInodes: 10000, wantUsed: [2]int64{10 * gib, 10000}},
			{name: "user crosses bytes soft", dBytes: 1, wantEvent: BytesSoftCrossed, wantUsed: [2]int64{10*gib + 1, 10000}},
			{name: "user writes on in grace", advance: 3 * day, dBytes: gib, wantUsed: [2]int64{11*gib + 1, 10000}},
			{name: "user stopped at 12 GiB", dBytes: gib, wantErr: bytesErr(Hard), wantUsed: [2]int64{11*gib + 1, 10000}},
			{name: "user crosses inodes soft", dInodes: 1, wantEvent: InodesSoftCrossed, wantUsed: [2]int64{11*gib + 1, 10001}},
			{name: "user grace for bytes over after 7 days", advance: 4 * day, dBytes: 1, wantErr: bytesErr(GraceExpired), wantUsed: [2]int64{11*gib + 1, 10001}},
			{name: "inodes grace runs on its own clock", dInodes: 1, wantUsed: [2]int64{11*gib + 1, 10002}},
			{name: "user stopped at 12000 inodes", dInodes: 2000, wantErr: inodesErr(Hard), wantUsed: [2]int64{11*gib + 1, 10002}},
		}},
		{Group, []step{
			{name: "group fills to soft", dBytes: 100 * gib, dInodes: 1 << 20, wantUsed: [2]int64{100 * gib, 1 << 20}},
			{name: "group crosses bytes soft", dBytes: 1, wantEvent: BytesSoftCrossed, wantUsed: [2]int64{100*gib + 1, 1 << 20}},
			{name: "group writes on in grace", advance: 6 * day, dBytes: 10 * gib, wantUsed: [2]int64{110*gib + 1, 1 << 20}},
			{name: "group stopped at 120 GiB", dBytes: 10 * gib, wantErr: bytesErr(Hard), wantUsed: [2]int64{110*gib + 1, 1 << 20}},
			{name: "group has no inode limits", dInodes: 1 << 30, wantUsed: [2]int64{110*gib + 1, 1<<20 + 1<<30}},
			{name: "group grace over after 7 days", advance: day, dBytes: 1, wantErr: bytesErr(GraceExpired), wantUsed: [2]int64{110*gib + 1, 1<<20 + 1<<30}},
			{name: "group frees space", dBytes: -20 * gib, wantEvent: BytesSoftCleared, wantUsed: [2]int64{90*gib + 1, 1<<20 + 1<<30}},
			{name: "group writes again", dBytes: gib, wantUsed: [2]int64{91*gib + 1, 1<<20 + 1<<30}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.kind.String(), func(t *testing.T) {
			run(t, guideDefaults.For(tt.kind, nil), guideDefaults.Grace, tt.steps)
		})
	}
}

func TestExceededError(t *testing.T) {
	_, _, err := Charge(Usage{Bytes: 90}, Limits{BytesHard: 100}, 20, 0, t0, week)
	var ee *ExceededError
	if !errors.As(err, &ee) {
		t.Fatalf("error %v is not an *ExceededError", err)
	}
	want := ExceededError{Resource: Bytes, Kind: Hard, Used: 90, Delta: 20, Limit: 100}
	if *ee != want {
		t.Errorf("error = %+v, want %+v", *ee, want)
	}
	if !errors.Is(err, ErrExceeded) {
		t.Error("errors.Is(err, ErrExceeded) = false")
	}
	if errors.Is(errors.New("other"), ErrExceeded) {
		t.Error("an unrelated error matches ErrExceeded")
	}
	for _, s := range []string{"bytes", "90", "20", "100", "hard"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("message %q lacks %q", err.Error(), s)
		}
	}
	_, _, err = Charge(Usage{Inodes: 11, InodesSoftSince: t0.UnixNano()}, Limits{InodesSoft: 10}, 0, 1, t0.Add(week), week)
	if !errors.As(err, &ee) || ee.Kind != GraceExpired || ee.Limit != 10 || !strings.Contains(err.Error(), "grace") {
		t.Errorf("grace error = %v", err)
	}
}

func TestEffective(t *testing.T) {
	override := &Limits{BytesHard: 5}
	tests := []struct {
		name     string
		kind     IDKind
		override *Limits
		want     Limits
	}{
		{"user default", User, nil, guideDefaults.User},
		{"group default", Group, nil, guideDefaults.Group},
		{"override replaces the whole set", User, override, Limits{BytesHard: 5}},
		{"group override", Group, override, Limits{BytesHard: 5}},
		{"override to unlimited", User, &Limits{}, Limits{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := guideDefaults.For(tt.kind, tt.override); got != tt.want {
				t.Errorf("For(%v) = %+v, want %+v", tt.kind, got, tt.want)
			}
			def := guideDefaults.User
			if tt.kind == Group {
				def = guideDefaults.Group
			}
			if got := Effective(def, tt.override); got != tt.want {
				t.Errorf("Effective() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		lim     Limits
		wantErr bool
	}{
		{guideDefaults.User, false},
		{guideDefaults.Group, false},
		{Limits{}, false},
		{Limits{BytesSoft: 10}, false}, // soft without hard
		{Limits{BytesSoft: 10, BytesHard: 10}, false},
		{Limits{BytesSoft: 11, BytesHard: 10}, true},
		{Limits{InodesSoft: 11, InodesHard: 10}, true},
	}
	for _, tt := range tests {
		if err := tt.lim.Validate(); (err != nil) != tt.wantErr {
			t.Errorf("%+v.Validate() = %v, wantErr %v", tt.lim, err, tt.wantErr)
		}
	}
}

func TestGraceState(t *testing.T) {
	lim := Limits{BytesSoft: 100, BytesHard: 200, InodesSoft: 10, InodesHard: 20}
	crossed := t0.UnixNano()
	until := t0.Add(week)
	tests := []struct {
		name string
		u    Usage
		now  time.Time
		want State
		str  string
	}{
		{"ok", Usage{Bytes: 100, Inodes: 10}, t0, State{}, "bytes: ok; inodes: ok"},
		{"soft exceeded", Usage{Bytes: 101, BytesSoftSince: crossed}, t0.Add(day),
			State{Bytes: ResourceState{SoftExceeded, until}},
			"bytes: soft exceeded, grace until 2024-03-08T09:00:00Z; inodes: ok"},
		{"grace expired", Usage{Inodes: 11, InodesSoftSince: crossed}, until,
			State{Inodes: ResourceState{GraceOver, until}}, "bytes: ok; inodes: grace expired"},
		{"hard limit reached", Usage{Bytes: 200, BytesSoftSince: crossed}, t0,
			State{Bytes: ResourceState{HardReached, until}}, "bytes: hard limit reached; inodes: ok"},
		{"not yet stamped: grace from now", Usage{Bytes: 150}, t0,
			State{Bytes: ResourceState{SoftExceeded, until}},
			"bytes: soft exceeded, grace until 2024-03-08T09:00:00Z; inodes: ok"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := GraceState(tt.u, lim, tt.now, week)
			if !got.Bytes.GraceUntil.Equal(tt.want.Bytes.GraceUntil) || got.Bytes.Status != tt.want.Bytes.Status ||
				!got.Inodes.GraceUntil.Equal(tt.want.Inodes.GraceUntil) || got.Inodes.Status != tt.want.Inodes.Status {
				t.Errorf("GraceState() = %+v, want %+v", got, tt.want)
			}
			if got.String() != tt.str {
				t.Errorf("String() = %q, want %q", got.String(), tt.str)
			}
		})
	}
	worst := State{Bytes: ResourceState{Status: SoftExceeded}, Inodes: ResourceState{Status: HardReached}}.Worst()
	if worst.Status != HardReached {
		t.Errorf("Worst() = %v, want hard limit reached", worst.Status)
	}
	if s := GraceState(Usage{Bytes: 1 << 60}, Limits{}, t0, week).String(); s != "bytes: ok; inodes: ok" {
		t.Errorf("unlimited state = %q", s)
	}
}

// TestGraceStateAgreesWithCharge checks that a report never says an increase
// is possible when Charge would refuse it, or the reverse.
func TestGraceStateAgreesWithCharge(t *testing.T) {
	lim := Limits{BytesSoft: 100, BytesHard: 200}
	for _, used := range []int64{0, 100, 101, 199, 200, 250} {
		for _, age := range []time.Duration{0, day, week - 1, week, 2 * week} {
			u := Usage{Bytes: used}
			if used > 100 {
				u.BytesSoftSince = t0.UnixNano()
			}
			now := t0.Add(age)
			_, _, err := Charge(u, lim, 1, 0, now, week)
			st := GraceState(u, lim, now, week).Bytes.Status
			blocked := st == GraceOver || st == HardReached
			if blocked != (err != nil) {
				t.Errorf("used %d age %v: state %v but Charge(+1) error %v", used, age, st, err)
			}
		}
	}
}

func TestEventString(t *testing.T) {
	tests := []struct {
		e    Event
		want string
	}{
		{0, "none"},
		{BytesSoftCrossed, "bytes soft limit crossed"},
		{BytesSoftCrossed | InodesSoftCleared, "bytes soft limit crossed, inodes back under soft limit"},
	}
	for _, tt := range tests {
		if got := tt.e.String(); got != tt.want {
			t.Errorf("Event(%d).String() = %q, want %q", tt.e, got, tt.want)
		}
	}
	if !(InodesSoftCrossed | Underflow).SoftCrossed() || BytesSoftCleared.SoftCrossed() {
		t.Error("SoftCrossed() wrong")
	}
}
