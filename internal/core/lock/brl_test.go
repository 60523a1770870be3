package lock

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
)

const file1 FileID = 42

type op struct {
	unlock bool
	l      Lock
	err    error // expected error (errors.Is); nil for success
}

func lockOp(l Lock) op               { return op{l: l} }
func lockFails(l Lock) op            { return op{l: l, err: ErrConflict} }
func unlockOp(l Lock) op             { return op{unlock: true, l: l} }
func unlockFails(l Lock, e error) op { return op{unlock: true, l: l, err: e} }

func runOps(t *testing.T, m *Manager, ops []op) {
	t.Helper()
	for i, o := range ops {
		var err error
		if o.unlock {
			err = m.Unlock(file1, o.l)
		} else {
			err = m.Lock(context.Background(), file1, o.l, false)
		}
		if !errors.Is(err, o.err) || (o.err == nil && err != nil) {
			t.Fatalf("op %d (%s, unlock=%v): got %v, want %v", i, o.l, o.unlock, err, o.err)
		}
		checkInvariants(t, m)
	}
}

func TestPOSIXSameOwner(t *testing.T) {
	tests := []struct {
		name string
		ops  []op
		want []Lock
	}{
		{"merge overlapping", []op{
			lockOp(posix(ownerA, false, 0, 10)), lockOp(posix(ownerA, false, 5, 20)),
		}, []Lock{posix(ownerA, false, 0, 20)}},
		{"merge touching", []op{
			lockOp(posix(ownerA, true, 0, 10)), lockOp(posix(ownerA, true, 10, 20)),
		}, []Lock{posix(ownerA, true, 0, 20)}},
		{"merge bridges two", []op{
			lockOp(posix(ownerA, false, 0, 5)), lockOp(posix(ownerA, false, 10, 15)), lockOp(posix(ownerA, false, 5, 10)),
		}, []Lock{posix(ownerA, false, 0, 15)}},
		{"no merge across gap", []op{
			lockOp(posix(ownerA, false, 0, 5)), lockOp(posix(ownerA, false, 6, 10)),
		}, []Lock{posix(ownerA, false, 0, 5), posix(ownerA, false, 6, 10)}},
		{"touching different types stay apart", []op{
			lockOp(posix(ownerA, false, 0, 10)), lockOp(posix(ownerA, true, 10, 20)),
		}, []Lock{posix(ownerA, false, 0, 10), posix(ownerA, true, 10, 20)}},
		{"upgrade middle splits", []op{
			lockOp(posix(ownerA, false, 0, 30)), lockOp(posix(ownerA, true, 10, 20)),
		}, []Lock{posix(ownerA, false, 0, 10), posix(ownerA, true, 10, 20), posix(ownerA, false, 20, 30)}},
		{"downgrade whole", []op{
			lockOp(posix(ownerA, true, 0, 30)), lockOp(posix(ownerA, false, 0, 30)),
		}, []Lock{posix(ownerA, false, 0, 30)}},
		{"downgrade then re-upgrade merges back", []op{
			lockOp(posix(ownerA, true, 0, 30)), lockOp(posix(ownerA, false, 10, 20)), lockOp(posix(ownerA, true, 10, 20)),
		}, []Lock{posix(ownerA, true, 0, 30)}},
		{"upgrade covering several", []op{
			lockOp(posix(ownerA, false, 0, 5)), lockOp(posix(ownerA, true, 8, 9)), lockOp(posix(ownerA, false, 12, 20)),
			lockOp(posix(ownerA, true, 2, 15)),
		}, []Lock{posix(ownerA, false, 0, 2), posix(ownerA, true, 2, 15), posix(ownerA, false, 15, 20)}},
		{"unlock middle splits", []op{
			lockOp(posix(ownerA, true, 0, 30)), unlockOp(posix(ownerA, false, 10, 20)),
		}, []Lock{posix(ownerA, true, 0, 10), posix(ownerA, true, 20, 30)}},
		{"unlock to EOF trims", []op{
			lockOp(posix(ownerA, false, 0, ToEOF)), unlockOp(posix(ownerA, false, 100, ToEOF)),
		}, []Lock{posix(ownerA, false, 0, 100)}},
		{"unlock spanning several", []op{
			lockOp(posix(ownerA, false, 0, 10)), lockOp(posix(ownerA, true, 20, 30)), unlockOp(posix(ownerA, false, 5, 25)),
		}, []Lock{posix(ownerA, false, 0, 5), posix(ownerA, true, 25, 30)}},
		{"unlock nothing held succeeds", []op{
			unlockOp(posix(ownerA, false, 0, 10)),
		}, nil},
		{"unlock leaves other owner", []op{
			lockOp(posix(ownerA, false, 0, 10)), lockOp(posix(ownerB, false, 0, 10)), unlockOp(posix(ownerA, false, 0, 10)),
		}, []Lock{posix(ownerB, false, 0, 10)}},
		{"to EOF merge", []op{
			lockOp(posix(ownerA, true, 50, ToEOF)), lockOp(posix(ownerA, true, 0, 50)),
		}, []Lock{posix(ownerA, true, 0, ToEOF)}},
		{"failed upgrade changes nothing", []op{
			lockOp(posix(ownerA, false, 0, 30)), lockOp(posix(ownerB, false, 25, 26)), lockFails(posix(ownerA, true, 0, 30)),
		}, []Lock{posix(ownerA, false, 0, 30), posix(ownerB, false, 25, 26)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := New(Options{})
			runOps(t, m, tt.ops)
			if got := m.Locks(file1); !slices.Equal(got, tt.want) {
				t.Fatalf("locks:\n got %v\nwant %v", got, tt.want)
			}
		})
	}
}

func TestConflictsBetweenOwners(t *testing.T) {
	tests := []struct {
		name     string
		held     Lock
		req      Lock
		conflict bool
	}{
		{"shared vs shared", posix(ownerA, false, 0, 10), posix(ownerB, false, 5, 15), false},
		{"shared vs exclusive", posix(ownerA, false, 0, 10), posix(ownerB, true, 5, 15), true},
		{"exclusive vs shared", posix(ownerA, true, 0, 10), posix(ownerB, false, 9, 10), true},
		{"touching exclusives", posix(ownerA, true, 0, 10), posix(ownerB, true, 10, 20), false},
		{"EOF lock vs far range", posix(ownerA, true, 1000, ToEOF), posix(ownerB, false, 1<<62, 1<<62+1), true},
		{"same owner POSIX never", posix(ownerA, true, 0, 10), posix(ownerA, true, 0, 10), false},
		{"same client other owner", posix(ownerC, true, 0, 10), posix(ownerD, false, 0, 10), true},
		{"PID distinguishes owners", posix(Owner{Client: "nlm:h", PID: 1}, true, 0, 10), posix(Owner{Client: "nlm:h", PID: 2}, true, 0, 10), true},
		{"POSIX vs SMB shared", posix(ownerA, false, 0, 10), mand(ownerC, false, 0, 10), false},
		{"POSIX exclusive vs SMB", posix(ownerA, true, 0, 10), mand(ownerC, false, 0, 10), true},
		{"SMB exclusive vs POSIX", mand(ownerC, true, 0, 10), posix(ownerA, false, 3, 4), true},
		{"same owner across flavors", posix(ownerA, true, 0, 10), mand(ownerA, false, 0, 10), true},
		{"zero-length SMB inside", mand(ownerC, true, 0, 10), mand(ownerD, true, 5, 5), true},
		{"zero-length SMB at start", mand(ownerC, true, 5, 10), mand(ownerD, true, 5, 5), false},
		{"zero-length SMB at end", mand(ownerC, true, 0, 10), mand(ownerD, true, 10, 10), false},
		{"zero-length SMB held", mand(ownerC, true, 5, 5), mand(ownerD, true, 0, 10), true},
		{"zero-length pair", mand(ownerC, true, 5, 5), mand(ownerD, true, 5, 5), false},
		{"zero-length at 0", mand(ownerC, true, 0, 0), mand(ownerD, true, 0, 10), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := New(Options{})
			if err := m.Lock(context.Background(), file1, tt.held, false); err != nil {
				t.Fatal(err)
			}
			err := m.Lock(context.Background(), file1, tt.req, false)
			if tt.conflict {
				var ce *ConflictError
				if !errors.As(err, &ce) || ce.Conflict != tt.held || ce.Queued || ce.File != file1 {
					t.Fatalf("got %v, want conflict with %s", err, tt.held)
				}
				if msg := err.Error(); !strings.Contains(msg, "held "+tt.held.String()) {
					t.Fatalf("message %q does not name the held lock", msg)
				}
			} else if err != nil {
				t.Fatalf("got %v, want granted", err)
			}
			// Test agrees with Lock.
			c, found, err := m.Test(file1, tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if tt.conflict && (!found || c != tt.held) {
				t.Fatalf("Test: got %v %v, want %s", c, found, tt.held)
			}
			checkInvariants(t, m)
		})
	}
}

func TestTest(t *testing.T) {
	m := New(Options{})
	ctx := context.Background()
	for _, l := range []Lock{posix(ownerA, false, 0, 10), posix(ownerB, true, 20, 30)} {
		if err := m.Lock(ctx, file1, l, false); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		req   Lock
		found bool
		want  Lock
	}{
		{posix(ownerC, false, 0, 100), true, posix(ownerB, true, 20, 30)},
		{posix(ownerC, true, 0, 100), true, posix(ownerA, false, 0, 10)},
		{posix(ownerC, true, 10, 20), false, Lock{}},
		{posix(ownerB, true, 15, 40), false, Lock{}},
		{posix(ownerA, true, 0, 10), false, Lock{}},
	}
	for _, tt := range tests {
		got, found, err := m.Test(file1, tt.req)
		if err != nil || found != tt.found || got != tt.want {
			t.Errorf("Test(%s) = %s, %v, %v; want %s, %v", tt.req, got, found, err, tt.want, tt.found)
		}
	}
	if got := len(m.Locks(file1)); got != 2 {
		t.Fatalf("Test changed the table: %d locks", got)
	}
}

func TestMandatoryStackingAndUnlock(t *testing.T) {
	tests := []struct {
		name string
		ops  []op
		want []Lock
	}{
		{"shared locks stack", []op{
			lockOp(mand(ownerC, false, 0, 10)), lockOp(mand(ownerC, false, 0, 10)), lockOp(mand(ownerC, false, 5, 15)),
		}, []Lock{mand(ownerC, false, 0, 10), mand(ownerC, false, 0, 10), mand(ownerC, false, 5, 15)}},
		{"no merge of adjacent", []op{
			lockOp(mand(ownerC, true, 0, 10)), lockOp(mand(ownerC, true, 10, 20)),
		}, []Lock{mand(ownerC, true, 0, 10), mand(ownerC, true, 10, 20)}},
		{"shared stacks on own exclusive", []op{
			lockOp(mand(ownerC, true, 0, 10)), lockOp(mand(ownerC, false, 2, 4)),
		}, []Lock{mand(ownerC, true, 0, 10), mand(ownerC, false, 2, 4)}},
		{"own exclusive over exclusive conflicts", []op{
			lockOp(mand(ownerC, true, 0, 10)), lockFails(mand(ownerC, true, 5, 6)),
		}, []Lock{mand(ownerC, true, 0, 10)}},
		{"own exclusive over shared conflicts", []op{
			lockOp(mand(ownerC, false, 0, 10)), lockFails(mand(ownerC, true, 0, 10)),
		}, []Lock{mand(ownerC, false, 0, 10)}},
		{"other open shared ok", []op{
			lockOp(mand(ownerC, false, 0, 10)), lockOp(mand(ownerD, false, 0, 10)),
		}, []Lock{mand(ownerC, false, 0, 10), mand(ownerD, false, 0, 10)}},
		{"other open over exclusive fails", []op{
			lockOp(mand(ownerC, true, 0, 10)), lockFails(mand(ownerD, false, 9, 11)),
		}, []Lock{mand(ownerC, true, 0, 10)}},
		{"unlock needs exact range", []op{
			lockOp(mand(ownerC, true, 0, 10)),
			unlockFails(mand(ownerC, false, 0, 5), ErrNotLocked),
			unlockFails(mand(ownerC, false, 0, 11), ErrNotLocked),
			unlockFails(mand(ownerD, false, 0, 10), ErrNotLocked),
			unlockOp(mand(ownerC, false, 0, 10)),
			unlockFails(mand(ownerC, false, 0, 10), ErrNotLocked),
		}, nil},
		{"unlock removes exclusive first", []op{
			lockOp(mand(ownerC, true, 0, 10)), lockOp(mand(ownerC, false, 0, 10)),
			unlockOp(mand(ownerC, false, 0, 10)),
			// The shared lock stays: another open may share the range but
			// not lock it exclusively.
			lockOp(mand(ownerD, false, 0, 10)),
			lockFails(mand(ownerB, true, 0, 10)),
		}, []Lock{mand(ownerC, false, 0, 10), mand(ownerD, false, 0, 10)}},
		{"stacked shared need one unlock each", []op{
			lockOp(mand(ownerC, false, 0, 10)), lockOp(mand(ownerC, false, 0, 10)),
			unlockOp(mand(ownerC, false, 0, 10)),
			lockFails(mand(ownerD, true, 0, 10)),
			unlockOp(mand(ownerC, false, 0, 10)),
			lockOp(mand(ownerD, true, 0, 10)),
		}, []Lock{mand(ownerD, true, 0, 10)}},
		{"zero-length lock and unlock", []op{
			lockOp(mand(ownerC, true, 7, 7)), lockOp(mand(ownerD, true, 0, 7)),
			unlockOp(mand(ownerC, false, 7, 7)),
		}, []Lock{mand(ownerD, true, 0, 7)}},
		{"mandatory unlock on unknown file", []op{
			unlockFails(mand(ownerC, false, 0, 10), ErrNotLocked),
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := New(Options{})
			runOps(t, m, tt.ops)
			if got := m.Locks(file1); !slices.Equal(got, tt.want) {
				t.Fatalf("locks:\n got %v\nwant %v", got, tt.want)
			}
		})
	}
}

func TestCheckIO(t *testing.T) {
	m := New(Options{})
	ctx := context.Background()
	held := []Lock{
		mand(ownerC, true, 0, 10),    // C exclusive
		mand(ownerC, false, 20, 30),  // C shared
		mand(ownerD, false, 25, 35),  // D shared
		posix(ownerA, true, 40, 50),  // POSIX: never blocks I/O
		mand(ownerD, true, 100, 100), // zero-length at 100
	}
	for _, l := range held {
		if err := m.Lock(ctx, file1, l, false); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name     string
		who      Owner
		off, n   uint64
		write    bool
		conflict bool
	}{
		{"owner reads own exclusive", ownerC, 0, 10, false, false},
		{"owner writes own exclusive", ownerC, 5, 10, true, false},
		{"other reads exclusive", ownerD, 9, 1, false, true},
		{"other writes exclusive", ownerD, 0, 1, true, true},
		{"NFS reader vs exclusive", ownerA, 0, 4096, false, true},
		{"read shared range", ownerD, 20, 5, false, false},
		{"owner writes own shared", ownerC, 20, 1, true, true},
		{"other writes shared", ownerA, 29, 2, true, true},
		{"read POSIX-locked range", ownerB, 40, 10, false, false},
		{"write POSIX-locked range", ownerB, 40, 10, true, false},
		{"gap", ownerD, 10, 10, true, false},
		{"zero length I/O", ownerD, 5, 0, true, false},
		{"spans zero-length lock", ownerC, 99, 2, false, true},
		{"starts at zero-length lock", ownerC, 100, 10, false, false},
		{"overflowing length", ownerA, 60, ^uint64(0), true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := m.CheckIO(file1, tt.who, tt.off, tt.n, tt.write)
			if got := errors.Is(err, ErrConflict); got != tt.conflict {
				t.Fatalf("CheckIO = %v, want conflict %v", err, tt.conflict)
			}
		})
	}
}

func TestInvalidRequests(t *testing.T) {
	m := New(Options{})
	ctx := context.Background()
	tests := []struct {
		name string
		l    Lock
		want error
	}{
		{"empty POSIX", posix(ownerA, false, 5, 5), ErrInvalidRange},
		{"reversed", mand(ownerC, false, 6, 5), ErrInvalidRange},
		{"no client", posix(Owner{ID: "x"}, false, 0, 1), ErrInvalid},
		{"no flavor", Lock{Owner: ownerA, End: 1}, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := m.Lock(ctx, file1, tt.l, false); !errors.Is(err, tt.want) {
				t.Fatalf("Lock = %v, want %v", err, tt.want)
			}
			if err := m.Unlock(file1, tt.l); !errors.Is(err, tt.want) {
				t.Fatalf("Unlock = %v, want %v", err, tt.want)
			}
			if _, err := m.LockOrQueue(file1, tt.l, func(FileID, Lock) {}); !errors.Is(err, tt.want) {
				t.Fatalf("LockOrQueue = %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := m.LockOrQueue(file1, posix(ownerA, false, 0, 1), nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("LockOrQueue without callback = %v", err)
	}
	if s := m.Stats(); s != (Stats{}) {
		t.Fatalf("invalid requests left state: %+v", s)
	}
}

func TestBlockingLockWokenByUnlock(t *testing.T) {
	m := New(Options{})
	ctx := context.Background()
	if err := m.Lock(ctx, file1, posix(ownerA, true, 0, 100), false); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- m.Lock(ctx, file1, posix(ownerB, false, 50, 60), true) }()
	waitFor(t, func() bool { return m.Stats().Waiters == 1 })
	if !quiet(done) {
		t.Fatal("blocked lock returned while the conflict was held")
	}
	// Unlocking a part that does not cover the request does not grant it.
	if err := m.Unlock(file1, posix(ownerA, false, 0, 50)); err != nil {
		t.Fatal(err)
	}
	if !quiet(done) {
		t.Fatal("blocked lock granted while still in conflict")
	}
	if err := m.Unlock(file1, posix(ownerA, false, 55, 100)); err != nil {
		t.Fatal(err)
	}
	if !quiet(done) {
		t.Fatal("blocked lock granted while still in conflict")
	}
	// A downgrade also frees a shared waiter.
	if err := m.Lock(ctx, file1, posix(ownerA, false, 50, 55), false); err != nil {
		t.Fatal(err)
	}
	if err := recv(t, done, "blocked lock"); err != nil {
		t.Fatal(err)
	}
	want := []Lock{posix(ownerA, false, 50, 55), posix(ownerB, false, 50, 60)}
	if got := m.Locks(file1); !slices.Equal(got, want) {
		t.Fatalf("locks %v, want %v", got, want)
	}
	checkInvariants(t, m)
}

func TestBlockingLockContextEnds(t *testing.T) {
	m := New(Options{})
	if err := m.Lock(context.Background(), file1, mand(ownerC, true, 0, 10), false); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Lock(ctx, file1, mand(ownerD, true, 0, 10), true) }()
	waitFor(t, func() bool { return m.Stats().Waiters == 1 })
	cancel()
	if err := recv(t, done, "canceled lock"); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if s := m.Stats(); s.Waiters != 0 || s.Locks != 1 {
		t.Fatalf("stats after cancel: %+v", s)
	}
	// A context that is already done fails a blocking request at once.
	if err := m.Lock(ctx, file1, mand(ownerD, true, 0, 10), true); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
	checkInvariants(t, m)
}

func TestLockOrQueueGrantedCallback(t *testing.T) {
	m := New(Options{})
	ctx := context.Background()
	if err := m.Lock(ctx, file1, posix(ownerA, true, 0, 10), false); err != nil {
		t.Fatal(err)
	}
	granted := make(chan Lock, 2)
	cb := func(f FileID, l Lock) {
		if f != file1 {
			t.Errorf("granted on file %d", f)
		}
		granted <- l
	}
	req := posix(ownerB, true, 5, 15)
	for range 2 { // the retransmission is not queued twice
		queued, err := m.LockOrQueue(file1, req, cb)
		if err != nil || !queued {
			t.Fatalf("LockOrQueue = %v, %v", queued, err)
		}
	}
	if s := m.Stats(); s.Waiters != 1 {
		t.Fatalf("waiters %d, want 1", s.Waiters)
	}
	if err := m.Unlock(file1, posix(ownerA, false, 0, 10)); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, granted, "granted callback"); got != req {
		t.Fatalf("granted %s, want %s", got, req)
	}
	// The lock is held by the time the callback runs.
	if _, found, _ := m.Test(file1, posix(ownerA, false, 5, 6)); !found {
		t.Fatal("granted lock not held")
	}
	// Immediately grantable: no callback.
	queued, err := m.LockOrQueue(file1, posix(ownerA, false, 100, 200), cb)
	if err != nil || queued {
		t.Fatalf("LockOrQueue = %v, %v", queued, err)
	}
	if !quiet(granted) {
		t.Fatal("callback for an immediate grant")
	}
	checkInvariants(t, m)
}

func TestCancel(t *testing.T) {
	m := New(Options{})
	ctx := context.Background()
	if err := m.Lock(ctx, file1, posix(ownerA, true, 0, 10), false); err != nil {
		t.Fatal(err)
	}
	granted := make(chan Lock, 1)
	req := posix(ownerB, false, 0, 10)
	if q, err := m.LockOrQueue(file1, req, func(_ FileID, l Lock) { granted <- l }); !q || err != nil {
		t.Fatalf("LockOrQueue = %v, %v", q, err)
	}
	blocked := posix(ownerC, true, 0, 10)
	done := make(chan error, 1)
	go func() { done <- m.Lock(ctx, file1, blocked, true) }()
	waitFor(t, func() bool { return m.Stats().Waiters == 2 })

	other := req
	other.Exclusive = true
	if m.Cancel(file1, other) {
		t.Fatal("Cancel matched a request of another type")
	}
	if !m.Cancel(file1, req) {
		t.Fatal("Cancel did not find the queued request")
	}
	if m.Cancel(file1, req) {
		t.Fatal("Cancel found the request twice")
	}
	if !m.Cancel(file1, blocked) {
		t.Fatal("Cancel did not find the blocked request")
	}
	if err := recv(t, done, "canceled blocked lock"); !errors.Is(err, ErrCanceled) {
		t.Fatalf("blocked Lock = %v, want ErrCanceled", err)
	}
	if err := m.Unlock(file1, posix(ownerA, false, 0, 10)); err != nil {
		t.Fatal(err)
	}
	if !quiet(granted) {
		t.Fatal("canceled request was granted")
	}
	if s := m.Stats(); s != (Stats{}) {
		t.Fatalf("state left: %+v", s)
	}
}

func TestQueueFairness(t *testing.T) {
	m := New(Options{})
	ctx := context.Background()
	if err := m.Lock(ctx, file1, posix(ownerA, false, 0, 100), false); err != nil {
		t.Fatal(err)
	}
	// B queues for an exclusive lock behind A's shared one.
	grantedB := make(chan Lock, 1)
	if q, _ := m.LockOrQueue(file1, posix(ownerB, true, 0, 100), func(_ FileID, l Lock) { grantedB <- l }); !q {
		t.Fatal("B not queued")
	}
	// A new reader would be compatible with A but must not overtake B.
	err := m.Lock(ctx, file1, posix(ownerC, false, 10, 20), false)
	var ce *ConflictError
	if !errors.As(err, &ce) || !ce.Queued || ce.Conflict.Owner != ownerB {
		t.Fatalf("new reader: %v, want refusal naming B's queued request", err)
	}
	// A reader queued behind B waits for B as well.
	grantedC := make(chan Lock, 1)
	if q, _ := m.LockOrQueue(file1, posix(ownerC, false, 10, 20), func(_ FileID, l Lock) { grantedC <- l }); !q {
		t.Fatal("C not queued")
	}
	// A request elsewhere in the file is not held up.
	if err := m.Lock(ctx, file1, posix(ownerD, true, 200, 300), false); err != nil {
		t.Fatal(err)
	}
	// A, which holds a lock, may still change it although B waits: upgrading
	// must not deadlock behind B, which waits for A.
	if err := m.Lock(ctx, file1, posix(ownerA, false, 0, 150), false); err != nil {
		t.Fatalf("holder extending its lock: %v", err)
	}
	if err := m.Unlock(file1, posix(ownerA, false, 0, ToEOF)); err != nil {
		t.Fatal(err)
	}
	recv(t, grantedB, "B granted")
	if !quiet(grantedC) {
		t.Fatal("C granted while B holds the exclusive lock")
	}
	if err := m.Unlock(file1, posix(ownerB, false, 0, ToEOF)); err != nil {
		t.Fatal(err)
	}
	recv(t, grantedC, "C granted")
	checkInvariants(t, m)
}

func TestReleaseOwnerAndClient(t *testing.T) {
	m := New(Options{})
	ctx := context.Background()
	files := []FileID{1, 2, 3, 1000}
	for _, f := range files {
		for _, l := range []Lock{posix(ownerA, true, 0, 10), mand(ownerC, false, 20, 30), mand(ownerD, false, 20, 30)} {
			if err := m.Lock(ctx, f, l, false); err != nil {
				t.Fatal(err)
			}
		}
	}
	// B waits on file 1 for A's range; C waits there too.
	grantedB := make(chan Lock, 1)
	if q, _ := m.LockOrQueue(1, posix(ownerB, true, 0, 10), func(_ FileID, l Lock) { grantedB <- l }); !q {
		t.Fatal("B not queued")
	}
	doneD := make(chan error, 1)
	go func() { doneD <- m.Lock(ctx, 1, mand(ownerD, true, 0, 5), true) }()
	waitFor(t, func() bool { return m.Stats().Waiters == 2 })

	if n := m.ReleaseOwnerOn(2, ownerC); n != 1 {
		t.Fatalf("ReleaseOwnerOn removed %d locks, want 1", n)
	}
	if n := m.ReleaseOwner(ownerC); n != 3 {
		t.Fatalf("ReleaseOwner removed %d locks, want 3", n)
	}
	// Releasing client "smb:s1" takes D's locks and ends D's blocked request.
	sh, err := m.OpenShare(3, ShareRequest{Owner: ownerD, Access: OpenRead})
	if err != nil {
		t.Fatal(err)
	}
	r := m.ReleaseClient("smb:s1")
	if r != (Released{Locks: 4, Waiters: 1, Shares: 1}) {
		t.Fatalf("ReleaseClient = %+v", r)
	}
	if err := recv(t, doneD, "D's blocked lock"); !errors.Is(err, ErrCanceled) {
		t.Fatalf("D's blocked lock = %v", err)
	}
	if err := m.CloseShare(sh); !errors.Is(err, ErrNoShare) {
		t.Fatalf("CloseShare after release = %v", err)
	}
	// NSM says host A rebooted: its locks go and B is granted.
	if r := m.ReleaseClient(ownerA.Client); r.Locks != len(files) {
		t.Fatalf("ReleaseClient(A) = %+v", r)
	}
	recv(t, grantedB, "B granted after A's release")
	want := Stats{Files: 1, Locks: 1}
	if s := m.Stats(); s != want {
		t.Fatalf("stats %+v, want %+v", s, want)
	}
	checkInvariants(t, m)
	if r := m.ReleaseClient("nobody"); r != (Released{}) {
		t.Fatalf("ReleaseClient(nobody) = %+v", r)
	}
}
