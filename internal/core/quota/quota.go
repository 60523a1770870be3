// Package quota owns the quota policy of the filesystem core: given a
// user's or group's usage and limits, whether a change of bytes or inodes is
// allowed, when the grace period starts and ends, and how usage records and
// limits are encoded.
//
// It is pure logic: it must not read or write storage, log, or know which
// protocol asked. The core keeps usage per uid and per gid in its metadata
// transactions, calls Charge for each of the two records an operation
// changes, stores the returned Usage in the same transaction as the file
// change, logs the warning an Event asks for, and maps ErrExceeded to each
// protocol's quota error. Exempting the superuser is the core's decision.
//
// # Rules
//
// A limit of 0 is no limit. Bytes and inodes are judged separately, with the
// same rules:
//
//   - Usage may rise up to the hard limit, never above it.
//   - Usage above the soft limit starts the grace period (the quota section's
//     soft_limit_grace_period_seconds, 7 days by default): the crossing is
//     allowed, reported once as an Event, and stamped in the usage record.
//   - During the grace period operations continue. Once it has run out, no
//     increase is allowed while usage stays above the soft limit: the soft
//     limit is then enforced as a hard one.
//   - Decreases are always allowed. Falling to or below the soft limit ends
//     the grace period, so the next crossing starts a full one.
//
// If limits change so that a record's stamp no longer matches (usage above a
// new soft limit without a stamp, or a stamp left below a raised one), the
// next Charge corrects the stamp as if the crossing happened then.
package quota

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// DefaultGrace is the guide's soft_limit_grace_period_seconds default.
const DefaultGrace = 7 * 24 * time.Hour

// Limits are the thresholds of one user or group; 0 means unlimited.
type Limits struct {
	BytesSoft, BytesHard   uint64
	InodesSoft, InodesHard uint64
}

// Unlimited reports whether no limit is set at all.
func (l Limits) Unlimited() bool { return l == Limits{} }

// Validate rejects a soft limit above its hard limit, which would make the
// soft limit and its grace period unreachable.
func (l Limits) Validate() error {
	if l.BytesHard != 0 && l.BytesSoft > l.BytesHard {
		return fmt.Errorf("quota: bytes soft limit %d above hard limit %d: lower the soft limit or raise the hard one",
			l.BytesSoft, l.BytesHard)
	}
	if l.InodesHard != 0 && l.InodesSoft > l.InodesHard {
		return fmt.Errorf("quota: inodes soft limit %d above hard limit %d: lower the soft limit or raise the hard one",
			l.InodesSoft, l.InodesHard)
	}
	return nil
}

// Usage is what one user or group consumes, with the times at which it went
// above each soft limit.
type Usage struct {
	Bytes, Inodes int64
	// Unix nanoseconds of the crossing of the soft limit; 0 while at or
	// below it.
	BytesSoftSince, InodesSoftSince int64
}

// IDKind tells whether limits and usage belong to a user or a group.
type IDKind uint8

const (
	User IDKind = iota
	Group
)

func (k IDKind) String() string {
	if k == Group {
		return "group"
	}
	return "user"
}

// Defaults are the configured limits for ids without an override, and the
// grace period.
type Defaults struct {
	User, Group Limits
	Grace       time.Duration
}

// Effective is the limits that apply to an id: its override when it has one
// (a whole set: a 0 in it means unlimited, not "use the default"), otherwise
// the defaults.
func Effective(defaults Limits, override *Limits) Limits {
	if override != nil {
		return *override
	}
	return defaults
}

// For is Effective with the defaults of kind.
func (d Defaults) For(kind IDKind, override *Limits) Limits {
	if kind == Group {
		return Effective(d.Group, override)
	}
	return Effective(d.User, override)
}

// Resource names what a limit counts.
type Resource string

const (
	Bytes  Resource = "bytes"
	Inodes Resource = "inodes"
)

// LimitKind says which rule refused an increase.
type LimitKind string

const (
	// Hard: the increase would take usage above the hard limit.
	Hard LimitKind = "hard"
	// GraceExpired: usage is above the soft limit and the grace period has
	// run out.
	GraceExpired LimitKind = "grace expired"
)

// ErrExceeded matches every *ExceededError with errors.Is.
var ErrExceeded = errors.New("quota exceeded")

// ExceededError is a refused increase.
type ExceededError struct {
	Resource Resource
	Kind     LimitKind
	Used     int64  // usage before the refused change
	Delta    int64  // the refused increase
	Limit    uint64 // the hard limit, or the soft limit once grace expired
}

func (e *ExceededError) Error() string {
	if e.Kind == GraceExpired {
		return fmt.Sprintf("quota exceeded: %s in use %d above soft limit %d and grace period expired; free space or ask for a higher quota",
			e.Resource, e.Used, e.Limit)
	}
	return fmt.Sprintf("quota exceeded: %s in use %d plus %d would pass hard limit %d; free space or ask for a higher quota",
		e.Resource, e.Used, e.Delta, e.Limit)
}

func (e *ExceededError) Is(target error) bool { return target == ErrExceeded }

// Event reports the transitions a Charge made, for the core to log once.
type Event uint8

const (
	BytesSoftCrossed  Event = 1 << iota // went above the bytes soft limit: grace starts
	InodesSoftCrossed                   // went above the inodes soft limit: grace starts
	BytesSoftCleared                    // back at or below the bytes soft limit
	InodesSoftCleared                   // back at or below the inodes soft limit
	Underflow                           // a decrease went below zero; usage was set to 0
)

// Has reports whether every bit of x is in e.
func (e Event) Has(x Event) bool { return e&x == x }

// SoftCrossed reports whether either soft limit was crossed upwards.
func (e Event) SoftCrossed() bool { return e&(BytesSoftCrossed|InodesSoftCrossed) != 0 }

func (e Event) String() string {
	if e == 0 {
		return "none"
	}
	names := []struct {
		bit  Event
		name string
	}{
		{BytesSoftCrossed, "bytes soft limit crossed"},
		{InodesSoftCrossed, "inodes soft limit crossed"},
		{BytesSoftCleared, "bytes back under soft limit"},
		{InodesSoftCleared, "inodes back under soft limit"},
		{Underflow, "usage went below zero"},
	}
	s := ""
	for _, n := range names {
		if e&n.bit != 0 {
			if s != "" {
				s += ", "
			}
			s += n.name
		}
	}
	return s
}

// resource is one of the two halves of a charge.
type resource struct {
	name       Resource
	used       int64
	since      int64
	soft, hard uint64
	crossed    Event
	cleared    Event
}

// Charge applies a change of dBytes and dInodes to u under lim at time now,
// with grace as the grace period. It returns the usage to store and the
// transitions to log. A refused change returns u unchanged, no event, and an
// *ExceededError; then nothing must be stored.
func Charge(u Usage, lim Limits, dBytes, dInodes int64, now time.Time, grace time.Duration) (Usage, Event, error) {
	at := now.UnixNano()
	grace = max(grace, 0)
	rs := [2]resource{
		{name: Bytes, used: u.Bytes, since: u.BytesSoftSince, soft: lim.BytesSoft, hard: lim.BytesHard,
			crossed: BytesSoftCrossed, cleared: BytesSoftCleared},
		{name: Inodes, used: u.Inodes, since: u.InodesSoftSince, soft: lim.InodesSoft, hard: lim.InodesHard,
			crossed: InodesSoftCrossed, cleared: InodesSoftCleared},
	}
	deltas := [2]int64{dBytes, dInodes}

	// Judge both before applying either: the change is all or nothing.
	for i := range rs {
		if err := rs[i].check(deltas[i], at, grace); err != nil {
			return u, 0, err
		}
	}
	var ev Event
	for i := range rs {
		ev |= rs[i].apply(deltas[i], at)
	}
	return Usage{
		Bytes: rs[0].used, BytesSoftSince: rs[0].since,
		Inodes: rs[1].used, InodesSoftSince: rs[1].since,
	}, ev, nil
}

func above(used int64, limit uint64) bool {
	return limit != 0 && used > 0 && uint64(used) > limit
}

func (r *resource) check(delta, at int64, grace time.Duration) error {
	if delta <= 0 {
		return nil
	}
	next := addSaturating(r.used, delta)
	if above(next, r.hard) {
		return &ExceededError{Resource: r.name, Kind: Hard, Used: r.used, Delta: delta, Limit: r.hard}
	}
	if above(r.used, r.soft) && r.since != 0 && graceOver(r.since, at, grace) {
		return &ExceededError{Resource: r.name, Kind: GraceExpired, Used: r.used, Delta: delta, Limit: r.soft}
	}
	return nil
}

// graceOver reports whether the grace period begun at since has run out at
// at. The period is half-open: at since+grace it is over.
func graceOver(since, at int64, grace time.Duration) bool {
	return at-since >= int64(grace)
}

func (r *resource) apply(delta, at int64) Event {
	var ev Event
	r.used = addSaturating(r.used, delta)
	if r.used < 0 {
		r.used = 0
		ev |= Underflow
	}
	switch over := above(r.used, r.soft); {
	case over && r.since == 0:
		// A crossing now, or one the limits made while nobody wrote.
		r.since = at
		ev |= r.crossed
	case !over && r.since != 0:
		r.since = 0
		ev |= r.cleared
	}
	return ev
}

func addSaturating(a, b int64) int64 {
	s := a + b
	switch {
	case b > 0 && s < a:
		return math.MaxInt64
	case b < 0 && s > a:
		return math.MinInt64
	}
	return s
}

// Status is where a usage stands against its limits.
type Status uint8

const (
	OK           Status = iota // at or below the soft limit
	SoftExceeded               // above the soft limit, within the grace period
	GraceOver                  // above the soft limit, grace period over: no increase allowed
	HardReached                // at or above the hard limit: no increase allowed
)

func (s Status) String() string {
	switch s {
	case OK:
		return "ok"
	case SoftExceeded:
		return "soft exceeded"
	case GraceOver:
		return "grace expired"
	case HardReached:
		return "hard limit reached"
	}
	return fmt.Sprintf("Status(%d)", uint8(s))
}

// ResourceState is the state of one resource for a report.
type ResourceState struct {
	Status Status
	// GraceUntil is when the grace period ends (SoftExceeded) or ended
	// (GraceOver, or HardReached while above the soft limit); zero otherwise.
	GraceUntil time.Time
}

func (r ResourceState) String() string {
	if r.Status == SoftExceeded {
		return "soft exceeded, grace until " + r.GraceUntil.UTC().Format(time.RFC3339)
	}
	return r.Status.String()
}

// State is the state of both resources of one user or group.
type State struct {
	Bytes, Inodes ResourceState
}

func (s State) String() string {
	return "bytes: " + s.Bytes.String() + "; inodes: " + s.Inodes.String()
}

// Worst is the more severe of the two states.
func (s State) Worst() ResourceState {
	if s.Inodes.Status > s.Bytes.Status {
		return s.Inodes
	}
	return s.Bytes
}

// GraceState describes u against lim at now, as quota reports show it. A
// usage above its soft limit without a stamp yet (the limits were lowered
// since the last change) is reported with its grace starting now, as the
// next Charge will stamp it.
func GraceState(u Usage, lim Limits, now time.Time, grace time.Duration) State {
	grace = max(grace, 0)
	return State{
		Bytes:  resourceState(u.Bytes, u.BytesSoftSince, lim.BytesSoft, lim.BytesHard, now, grace),
		Inodes: resourceState(u.Inodes, u.InodesSoftSince, lim.InodesSoft, lim.InodesHard, now, grace),
	}
}

func resourceState(used, since int64, soft, hard uint64, now time.Time, grace time.Duration) ResourceState {
	var st ResourceState
	overSoft := above(used, soft)
	if overSoft {
		start := since
		if start == 0 {
			start = now.UnixNano()
		}
		st.GraceUntil = time.Unix(0, start).Add(grace)
		st.Status = SoftExceeded
		if graceOver(start, now.UnixNano(), grace) {
			st.Status = GraceOver
		}
	}
	if hard != 0 && used > 0 && uint64(used) >= hard {
		st.Status = HardReached
	}
	return st
}
