package lock

import (
	"context"
	"errors"
	"testing"
	"time"
)

const (
	R   = LeaseRead
	RW  = LeaseRead | LeaseWrite
	RH  = LeaseRead | LeaseHandle
	RWH = LeaseRead | LeaseWrite | LeaseHandle
)

var (
	keyA = LeaseKey{Client: "smb:guidA", Key: "k1"}
	keyB = LeaseKey{Client: "smb:guidB", Key: "k1"}
	keyC = LeaseKey{Client: "nfs4:c3"}
)

// holder records what the manager tells a lease holder.
type holder struct {
	breaks  chan LeaseBreak
	revokes chan LeaseBreak
}

func newHolder() *holder {
	return &holder{breaks: make(chan LeaseBreak, 8), revokes: make(chan LeaseBreak, 8)}
}

func (h *holder) request(key LeaseKey, st LeaseState) LeaseRequest {
	return LeaseRequest{
		Key:      key,
		State:    st,
		OnBreak:  func(b LeaseBreak) { h.breaks <- b },
		OnRevoke: func(b LeaseBreak) { h.revokes <- b },
	}
}

func mustGrant(t *testing.T, m *Manager, file FileID, req LeaseRequest, want LeaseState) {
	t.Helper()
	got, err := m.Grant(file, req)
	if err != nil || got != want {
		t.Fatalf("Grant(%v, %s) = %s, %v; want %s", req.Key, req.State, got, err, want)
	}
}

func breakAsync(m *Manager, ctx context.Context, file FileID, breaker LeaseKey, what AccessKind) <-chan error {
	done := make(chan error, 1)
	go func() { done <- m.Break(ctx, file, breaker, what) }()
	return done
}

func TestGrantCompatibility(t *testing.T) {
	type existing struct {
		key LeaseKey
		st  LeaseState
	}
	tests := []struct {
		name   string
		leases []existing
		opens  []ShareRequest
		req    LeaseState
		want   LeaseState
	}{
		{"alone gets all", nil, nil, RWH, RWH},
		{"read only", nil, nil, R, R},
		{"none asked", nil, nil, LeaseNone, LeaseNone},
		{"other reader: no write", []existing{{keyB, R}}, nil, RWH, RH},
		{"other RH: no write", []existing{{keyB, RH}}, nil, RW, R},
		{"other writer: nothing", []existing{{keyB, RW}}, nil, R, LeaseNone},
		{"upgrade own lease", []existing{{keyA, R}}, nil, RWH, RWH},
		{"upgrade keeps held bits", []existing{{keyA, RH}}, nil, R, RH},
		{"upgrade beside another reader", []existing{{keyA, R}, {keyB, R}}, nil, RWH, RH},
		{"other open without lease: no write", nil, []ShareRequest{{Owner: ownerD, Access: OpenRead}}, RWH, RH},
		{"other open with attribute access only", nil, []ShareRequest{{Owner: ownerD}}, RWH, RWH},
		{"own open carries key", nil, []ShareRequest{{Owner: ownerC, Access: OpenRead | OpenWrite, LeaseKey: keyA}}, RWH, RWH},
		{"other open with other key", nil, []ShareRequest{{Owner: ownerD, Access: OpenRead, LeaseKey: keyB}}, RW, R},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := New(Options{})
			h := newHolder()
			for _, e := range tt.leases {
				mustGrant(t, m, file1, h.request(e.key, e.st), e.st)
			}
			for _, o := range tt.opens {
				if _, err := m.OpenShare(file1, o); err != nil {
					t.Fatal(err)
				}
			}
			mustGrant(t, m, file1, h.request(keyA, tt.req), tt.want)
			info, ok := m.Lease(file1, keyA)
			if ok != (tt.want != LeaseNone) || info.State != tt.want {
				t.Fatalf("Lease = %+v, %v", info, ok)
			}
			checkInvariants(t, m)
		})
	}
}

func TestAnyLeases(t *testing.T) {
	m := New(Options{})
	h := newHolder()
	if m.AnyLeases() {
		t.Fatal("an empty table reports leases")
	}
	if st, err := m.Grant(file1, h.request(keyA, R)); err != nil || st != R {
		t.Fatalf("Grant = %v, %v", st, err)
	}
	if !m.AnyLeases() {
		t.Fatal("a granted lease is not reported")
	}
	m.ReleaseLease(file1, keyA)
	if m.AnyLeases() {
		t.Fatal("a released lease is still reported")
	}
}

func TestGrantInvalid(t *testing.T) {
	m := New(Options{})
	h := newHolder()
	for name, req := range map[string]LeaseRequest{
		"empty key":    h.request(LeaseKey{}, R),
		"write only":   h.request(keyA, LeaseWrite),
		"handle only":  h.request(keyA, LeaseHandle),
		"unknown bits": h.request(keyA, R|0x40),
		"no callback":  {Key: keyA, State: R},
	} {
		if _, err := m.Grant(file1, req); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Grant = %v, want ErrInvalid", name, err)
		}
	}
	if err := m.Break(context.Background(), file1, keyA, 0x80); !errors.Is(err, ErrInvalid) {
		t.Errorf("Break with unknown kind = %v", err)
	}
}

// Each row grants one lease, breaks it with an access of another holder, and
// acknowledges what the break asks for.
func TestBreakTargets(t *testing.T) {
	tests := []struct {
		name  string
		held  LeaseState
		whole bool
		what  AccessKind
		want  LeaseState
	}{
		{"read takes write from RWH", RWH, false, AccessRead, RH},
		{"read takes write from RW", RW, false, AccessRead, R},
		{"read leaves RH", RH, false, AccessRead, RH},
		{"read leaves R", R, false, AccessRead, R},
		{"write takes all from RWH", RWH, false, AccessWrite, LeaseNone},
		{"write takes all from RH", RH, false, AccessWrite, LeaseNone},
		{"write takes R", R, false, AccessWrite, LeaseNone},
		{"rename takes handle from RWH", RWH, false, AccessHandle, RW},
		{"rename takes handle from RH", RH, false, AccessHandle, R},
		{"rename leaves RW", RW, false, AccessHandle, RW},
		{"share conflict open: read and handle", RWH, false, AccessRead | AccessHandle, R},
		{"read delegation survives a read", R, true, AccessRead, R},
		{"read delegation recalled by write", R, true, AccessWrite, LeaseNone},
		{"write delegation recalled by read", RW, true, AccessRead, LeaseNone},
		{"delegation with handle recalled by rename", RH, true, AccessHandle, LeaseNone},
		{"read delegation survives rename", R, true, AccessHandle, R},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := New(Options{})
			h := newHolder()
			req := h.request(keyA, tt.held)
			req.RecallWhole = tt.whole
			mustGrant(t, m, file1, req, tt.held)
			done := breakAsync(m, context.Background(), file1, keyB, tt.what)
			if tt.want == tt.held {
				if err := recv(t, done, "Break"); err != nil {
					t.Fatal(err)
				}
				if !quiet(h.breaks) {
					t.Fatal("lease broken although nothing conflicts")
				}
				return
			}
			b := recv(t, h.breaks, "break notice")
			if b != (LeaseBreak{File: file1, Key: keyA, From: tt.held, To: tt.want}) {
				t.Fatalf("notice %+v, want %s -> %s", b, tt.held, tt.want)
			}
			if !quiet(done) {
				t.Fatal("Break returned before the acknowledgement")
			}
			if s := m.Stats(); s.BreaksInProgress != 1 {
				t.Fatalf("stats %+v", s)
			}
			if err := m.Acknowledge(file1, keyA, tt.want); err != nil {
				t.Fatal(err)
			}
			if err := recv(t, done, "Break"); err != nil {
				t.Fatal(err)
			}
			info, ok := m.Lease(file1, keyA)
			if ok != (tt.want != LeaseNone) || info.State != tt.want || info.Breaking {
				t.Fatalf("after ack: %+v, %v", info, ok)
			}
			if s := m.Stats(); s.BreaksInProgress != 0 {
				t.Fatalf("stats %+v", s)
			}
			checkInvariants(t, m)
		})
	}
}

func TestBreakerOwnLeaseUntouched(t *testing.T) {
	m := New(Options{})
	h := newHolder()
	mustGrant(t, m, file1, h.request(keyA, RWH), RWH)
	for _, what := range []AccessKind{AccessRead, AccessWrite, AccessHandle, AccessRead | AccessWrite | AccessHandle} {
		if err := m.Break(context.Background(), file1, keyA, what); err != nil {
			t.Fatal(err)
		}
	}
	if !quiet(h.breaks) {
		t.Fatal("breaker's own lease was broken")
	}
	if info, _ := m.Lease(file1, keyA); info.State != RWH {
		t.Fatalf("lease %+v", info)
	}
	// A second open with the same key gets the same lease.
	mustGrant(t, m, file1, h.request(keyA, R), RWH)
	if s := m.Stats(); s.Leases != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestBreakOnlyOthers(t *testing.T) {
	m := New(Options{})
	ha, hb, hc := newHolder(), newHolder(), newHolder()
	mustGrant(t, m, file1, ha.request(keyA, RH), RH)
	mustGrant(t, m, file1, hb.request(keyB, RH), RH)
	mustGrant(t, m, file1, hc.request(keyC, RH), RH)
	// B renames the file: A and C lose handle caching, B keeps it.
	done := breakAsync(m, context.Background(), file1, keyB, AccessHandle)
	for _, h := range []*holder{ha, hc} {
		b := recv(t, h.breaks, "break notice")
		if b.From != RH || b.To != R {
			t.Fatalf("notice %+v", b)
		}
	}
	if err := m.Acknowledge(file1, keyA, R); err != nil {
		t.Fatal(err)
	}
	if !quiet(done) {
		t.Fatal("Break returned with C still unacknowledged")
	}
	// Releasing the lease counts as giving it up.
	if !m.ReleaseLease(file1, keyC) {
		t.Fatal("ReleaseLease found nothing")
	}
	if err := recv(t, done, "Break"); err != nil {
		t.Fatal(err)
	}
	if !quiet(hb.breaks) {
		t.Fatal("breaker notified")
	}
	checkInvariants(t, m)
}

func TestAcknowledgeErrors(t *testing.T) {
	m := New(Options{})
	h := newHolder()
	mustGrant(t, m, file1, h.request(keyA, RWH), RWH)
	if err := m.Acknowledge(file1, keyA, R); !errors.Is(err, ErrNotBreaking) {
		t.Fatalf("ack without break = %v", err)
	}
	if err := m.Acknowledge(file1, keyB, R); !errors.Is(err, ErrNoLease) {
		t.Fatalf("ack of unknown key = %v", err)
	}
	if err := m.Acknowledge(2, keyA, R); !errors.Is(err, ErrNoLease) {
		t.Fatalf("ack on unknown file = %v", err)
	}
	done := breakAsync(m, context.Background(), file1, keyB, AccessRead)
	recv(t, h.breaks, "break notice")
	if err := m.Acknowledge(file1, keyA, RWH); !errors.Is(err, ErrAckTooHigh) {
		t.Fatalf("ack keeping write = %v", err)
	}
	if err := m.Acknowledge(file1, keyA, LeaseHandle); !errors.Is(err, ErrInvalid) {
		t.Fatalf("ack of invalid state = %v", err)
	}
	// Acknowledging less than asked is fine.
	if err := m.Acknowledge(file1, keyA, R); err != nil {
		t.Fatal(err)
	}
	if err := recv(t, done, "Break"); err != nil {
		t.Fatal(err)
	}
	if info, _ := m.Lease(file1, keyA); info.State != R {
		t.Fatalf("lease %+v", info)
	}
}

func TestBreakTimeoutRevokes(t *testing.T) {
	clock := &manualClock{}
	m := New(Options{Clock: clock})
	if m.BreakTimeout() != DefaultBreakTimeout {
		t.Fatalf("default timeout %v", m.BreakTimeout())
	}
	h := newHolder()
	mustGrant(t, m, file1, h.request(keyA, RWH), RWH)
	done := breakAsync(m, context.Background(), file1, LeaseKey{}, AccessRead)
	recv(t, h.breaks, "break notice") // sent after the timer is armed
	clock.Advance(DefaultBreakTimeout - time.Second)
	if !quiet(done) {
		t.Fatal("revoked before the timeout")
	}
	clock.Advance(time.Second)
	if err := recv(t, done, "Break"); err != nil {
		t.Fatal(err)
	}
	rv := recv(t, h.revokes, "revoke notice")
	if rv != (LeaseBreak{File: file1, Key: keyA, From: RWH, To: LeaseNone}) {
		t.Fatalf("revoke notice %+v", rv)
	}
	if _, ok := m.Lease(file1, keyA); ok {
		t.Fatal("lease survived its revocation")
	}
	if err := m.Acknowledge(file1, keyA, RH); !errors.Is(err, ErrNoLease) {
		t.Fatalf("late ack = %v", err)
	}
	if s := m.Stats(); s != (Stats{}) {
		t.Fatalf("state left: %+v", s)
	}
}

func TestSetBreakTimeoutAtRuntime(t *testing.T) {
	clock := &manualClock{}
	m := New(Options{Clock: clock, BreakTimeout: time.Minute})
	m.SetBreakTimeout(5 * time.Second)
	h := newHolder()
	mustGrant(t, m, file1, h.request(keyA, RH), RH)
	done := breakAsync(m, context.Background(), file1, keyB, AccessWrite)
	recv(t, h.breaks, "break notice")
	clock.Advance(4 * time.Second)
	if info, ok := m.Lease(file1, keyA); !ok || !info.Breaking || info.BreakTo != LeaseNone {
		t.Fatalf("lease %+v, %v", info, ok)
	}
	clock.Advance(time.Second)
	if err := recv(t, done, "Break"); err != nil {
		t.Fatal(err)
	}
	recv(t, h.revokes, "revoke notice")
	m.SetBreakTimeout(0)
	if m.BreakTimeout() != DefaultBreakTimeout {
		t.Fatalf("SetBreakTimeout(0) gave %v", m.BreakTimeout())
	}
}

func TestAcknowledgeStopsTimer(t *testing.T) {
	clock := &manualClock{}
	m := New(Options{Clock: clock})
	h := newHolder()
	mustGrant(t, m, file1, h.request(keyA, RWH), RWH)
	done := breakAsync(m, context.Background(), file1, keyB, AccessRead)
	recv(t, h.breaks, "break notice")
	if err := m.Acknowledge(file1, keyA, RH); err != nil {
		t.Fatal(err)
	}
	recv(t, done, "Break")
	if n := clock.pending(); n != 0 {
		t.Fatalf("%d timers still armed", n)
	}
	clock.Advance(time.Hour)
	if info, ok := m.Lease(file1, keyA); !ok || info.State != RH {
		t.Fatalf("lease %+v, %v", info, ok)
	}
	if !quiet(h.revokes) {
		t.Fatal("revoked after acknowledging")
	}
}

// A break that must go further than one already in flight waits for the
// first acknowledgement, then sends a second notice.
func TestBreakInStages(t *testing.T) {
	m := New(Options{})
	h := newHolder()
	mustGrant(t, m, file1, h.request(keyA, RWH), RWH)
	read := breakAsync(m, context.Background(), file1, keyB, AccessRead)
	if b := recv(t, h.breaks, "first notice"); b.To != RH {
		t.Fatalf("first notice %+v", b)
	}
	write := breakAsync(m, context.Background(), file1, keyC, AccessWrite)
	waitFor(t, func() bool {
		s := m.shard(file1)
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.files[file1].breaks) == 2
	})
	if !quiet(h.breaks) {
		t.Fatal("second notice before the first acknowledgement")
	}
	if err := m.Acknowledge(file1, keyA, RH); err != nil {
		t.Fatal(err)
	}
	if err := recv(t, read, "read Break"); err != nil {
		t.Fatal(err)
	}
	if b := recv(t, h.breaks, "second notice"); b.From != RH || b.To != LeaseNone {
		t.Fatalf("second notice %+v", b)
	}
	if !quiet(write) {
		t.Fatal("write Break returned before the second acknowledgement")
	}
	if err := m.Acknowledge(file1, keyA, LeaseNone); err != nil {
		t.Fatal(err)
	}
	if err := recv(t, write, "write Break"); err != nil {
		t.Fatal(err)
	}
	if s := m.Stats(); s != (Stats{}) {
		t.Fatalf("state left: %+v", s)
	}
}

func TestGrantsDuringBreak(t *testing.T) {
	m := New(Options{})
	ha, hb, hc := newHolder(), newHolder(), newHolder()
	mustGrant(t, m, file1, ha.request(keyA, RWH), RWH)
	done := breakAsync(m, context.Background(), file1, keyB, AccessRead)
	recv(t, ha.breaks, "break notice")
	// A still holds write caching until it acknowledges: nobody else gets
	// anything, and A's lease is not upgraded or changed by a new open.
	mustGrant(t, m, file1, hc.request(keyC, RH), LeaseNone)
	mustGrant(t, m, file1, ha.request(keyA, RWH), RWH)
	if err := m.Acknowledge(file1, keyA, RH); err != nil {
		t.Fatal(err)
	}
	recv(t, done, "Break")
	mustGrant(t, m, file1, hb.request(keyB, RWH), RH)

	// While a rename holds its break, others get no handle caching and no
	// lease is upgraded; the renamer keeps its own.
	type held struct {
		release func()
		err     error
	}
	heldCh := make(chan held, 1)
	go func() {
		rel, err := m.BreakAndHold(context.Background(), file1, keyB, AccessHandle)
		heldCh <- held{rel, err}
	}()
	if b := recv(t, ha.breaks, "rename break"); b.From != RH || b.To != R {
		t.Fatalf("rename break %+v", b)
	}
	if !quiet(hb.breaks) {
		t.Fatal("renamer's own lease broken")
	}
	if err := m.Acknowledge(file1, keyA, R); err != nil {
		t.Fatal(err)
	}
	hd := recv(t, heldCh, "BreakAndHold")
	if hd.err != nil {
		t.Fatal(hd.err)
	}
	mustGrant(t, m, file1, hc.request(keyC, RH), R)
	mustGrant(t, m, file1, ha.request(keyA, RH), R)
	mustGrant(t, m, file1, hb.request(keyB, RH), RH)
	hd.release()
	hd.release() // harmless twice
	mustGrant(t, m, file1, ha.request(keyA, RH), RH)
	mustGrant(t, m, file1, hc.request(keyC, RH), RH)
	checkInvariants(t, m)
}

func TestBreakAndHoldWithoutLeases(t *testing.T) {
	m := New(Options{})
	h := newHolder()
	release, err := m.BreakAndHold(context.Background(), file1, LeaseKey{}, AccessWrite)
	if err != nil {
		t.Fatal(err)
	}
	// A truncate is running: nobody may start caching the file.
	mustGrant(t, m, file1, h.request(keyA, RWH), LeaseNone)
	release()
	mustGrant(t, m, file1, h.request(keyA, RWH), RWH)
	if s := m.Stats(); s.Files != 1 || s.Leases != 1 {
		t.Fatalf("stats %+v", s)
	}
	// Without leases, a plain Break returns at once.
	if err := m.Break(context.Background(), 7, LeaseKey{}, AccessWrite); err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, m)
}

func TestBreakContextEnds(t *testing.T) {
	m := New(Options{})
	h := newHolder()
	mustGrant(t, m, file1, h.request(keyA, RWH), RWH)
	ctx, cancel := context.WithCancel(context.Background())
	done := breakAsync(m, ctx, file1, keyB, AccessWrite)
	recv(t, h.breaks, "break notice")
	cancel()
	if err := recv(t, done, "Break"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Break = %v, want context.Canceled", err)
	}
	// The break itself goes on: the holder still owes an answer.
	if info, _ := m.Lease(file1, keyA); !info.Breaking {
		t.Fatalf("lease %+v", info)
	}
	if err := m.Acknowledge(file1, keyA, LeaseNone); err != nil {
		t.Fatal(err)
	}
	if s := m.Stats(); s != (Stats{}) {
		t.Fatalf("state left: %+v", s)
	}
}

func TestReleaseClientEndsBreak(t *testing.T) {
	clock := &manualClock{}
	m := New(Options{Clock: clock})
	h := newHolder()
	mustGrant(t, m, file1, h.request(keyA, RWH), RWH)
	mustGrant(t, m, 2, h.request(keyA, R), R)
	done := breakAsync(m, context.Background(), file1, keyB, AccessWrite)
	recv(t, h.breaks, "break notice")
	r := m.ReleaseClient(keyA.Client)
	if r.Leases != 2 {
		t.Fatalf("ReleaseClient = %+v", r)
	}
	if err := recv(t, done, "Break"); err != nil {
		t.Fatal(err)
	}
	if n := clock.pending(); n != 0 {
		t.Fatalf("%d timers still armed", n)
	}
	clock.Advance(time.Hour)
	if !quiet(h.revokes) {
		t.Fatal("released lease revoked")
	}
	if s := m.Stats(); s != (Stats{}) {
		t.Fatalf("state left: %+v", s)
	}
}

func TestStats(t *testing.T) {
	m := New(Options{})
	ctx := context.Background()
	h := newHolder()
	if err := m.Lock(ctx, 1, posix(ownerA, true, 0, 10), false); err != nil {
		t.Fatal(err)
	}
	if err := m.Lock(ctx, 2, mand(ownerC, false, 0, 10), false); err != nil {
		t.Fatal(err)
	}
	if q, _ := m.LockOrQueue(1, posix(ownerB, false, 0, 10), func(FileID, Lock) {}); !q {
		t.Fatal("not queued")
	}
	if _, err := m.OpenShare(3, ShareRequest{Owner: ownerD, Access: OpenRead}); err != nil {
		t.Fatal(err)
	}
	mustGrant(t, m, 4, h.request(keyA, RWH), RWH)
	mustGrant(t, m, 3, h.request(keyB, R), R)
	done := breakAsync(m, ctx, 4, keyB, AccessRead)
	recv(t, h.breaks, "break notice")
	want := Stats{Files: 4, Locks: 2, Waiters: 1, Shares: 1, Leases: 2, BreaksInProgress: 1}
	if s := m.Stats(); s != want {
		t.Fatalf("stats %+v, want %+v", s, want)
	}
	checkInvariants(t, m)
	if err := m.Acknowledge(4, keyA, RH); err != nil {
		t.Fatal(err)
	}
	recv(t, done, "Break")
}
