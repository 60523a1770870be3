package scaleout

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/claudefs/cfs-gateway/internal/core"
	"github.com/claudefs/cfs-gateway/internal/core/lock"
)

func nlmLock(host string, start, end uint64, exclusive bool) lock.Lock {
	return lock.Lock{Owner: lock.Owner{Client: "nlm:" + host, PID: 1}, Flavor: lock.POSIX, Exclusive: exclusive, Start: start, End: end}
}

// within waits for ch, failing the test after d.
func within[T any](t *testing.T, d time.Duration, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(d):
		t.Fatalf("%s: nothing within %v", what, d)
		panic("unreachable")
	}
}

// TestLocksAcrossGateways takes byte-range locks and share reservations
// through two gateways of one namespace: each sees the other's, waiters on
// one are granted when the other unlocks, and a gateway whose session is
// lost drops its locks, lets the other take them, and refuses the writes
// made under them.
func TestLocksAcrossGateways(t *testing.T) {
	e := newEnv(t)
	opts := gatewayOptions{name: "locks", pool: testPool, breaker: testBreaker, sessionTTL: 3 * time.Second}
	a, b := e.open(t, opts), e.open(t, opts)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	f, _, err := a.fs.Create(ctx, &core.Root, core.RootIno, "f", 0o666, core.CreateGuarded, 0)
	if err != nil {
		t.Fatal(err)
	}
	file := lock.FileID(f.Ino)
	la, lb := a.fs.Locks(), b.fs.Locks()

	// A lock through a holds off an overlapping one through b, not a
	// disjoint one, and b's TEST names it.
	held := nlmLock("client-a", 0, 100, true)
	if err := la.Lock(ctx, file, held, false); err != nil {
		t.Fatalf("lock through a: %v", err)
	}
	if err := lb.Lock(ctx, file, nlmLock("client-b", 50, 60, false), false); !errors.Is(err, lock.ErrConflict) {
		t.Fatalf("overlapping lock through b: %v, want a conflict", err)
	}
	if got, ok, err := lb.Test(file, nlmLock("client-b", 99, 200, false)); err != nil || !ok || got != held {
		t.Fatalf("TEST through b: %v %v %v, want %v", got, ok, err, held)
	}
	if err := lb.Lock(ctx, file, nlmLock("client-b", 100, 200, true), false); err != nil {
		t.Fatalf("disjoint lock through b: %v", err)
	}
	if err := la.Lock(ctx, file, nlmLock("client-a", 150, 160, false), false); !errors.Is(err, lock.ErrConflict) {
		t.Fatalf("lock through a over b's range: %v, want a conflict", err)
	}

	// A blocked Lock through b is granted when a unlocks.
	granted := make(chan error, 1)
	go func() { granted <- lb.Lock(ctx, file, nlmLock("client-b", 0, 10, true), true) }()
	select {
	case err := <-granted:
		t.Fatalf("waiting lock through b returned %v while a holds the range", err)
	case <-time.After(300 * time.Millisecond):
	}
	if err := la.Unlock(file, held); err != nil {
		t.Fatal(err)
	}
	if err := within(t, 10*time.Second, granted, "waiting lock through b after a's unlock"); err != nil {
		t.Fatalf("waiting lock through b: %v", err)
	}

	// A queued request through a (NLM's blocking lock) gets its GRANTED
	// callback when b unlocks; a canceled one never does.
	cb := make(chan lock.Lock, 2)
	want := nlmLock("client-a", 0, 10, true)
	queued, err := la.LockOrQueue(file, want, func(_ lock.FileID, l lock.Lock) { cb <- l })
	if err != nil || !queued {
		t.Fatalf("LockOrQueue through a: queued %v, %v; want queued", queued, err)
	}
	canceled := nlmLock("client-c", 100, 110, false)
	if queued, err := la.LockOrQueue(file, canceled, func(_ lock.FileID, l lock.Lock) { cb <- l }); err != nil || !queued {
		t.Fatalf("second LockOrQueue through a: queued %v, %v", queued, err)
	}
	if !la.Cancel(file, canceled) {
		t.Fatal("Cancel did not find the request waiting for b")
	}
	if err := lb.Unlock(file, nlmLock("client-b", 0, 200, false)); err != nil {
		t.Fatal(err)
	}
	if got := within(t, 10*time.Second, cb, "GRANTED callback through a"); got != want {
		t.Fatalf("granted %v, want %v", got, want)
	}
	select {
	case l := <-cb:
		t.Fatalf("canceled request was granted: %v", l)
	case <-time.After(500 * time.Millisecond):
	}
	if err := la.Unlock(file, want); err != nil {
		t.Fatal(err)
	}

	// Leases: none is granted, since the other gateway could not break it.
	if st, err := la.Grant(file, lock.LeaseRequest{Key: lock.LeaseKey{Client: "smb:a", Key: "k"},
		State: lock.LeaseRead | lock.LeaseWrite, OnBreak: func(lock.LeaseBreak) {}}); err != nil || st != lock.LeaseNone {
		t.Fatalf("lease through a: %v, %v; want none", st, err)
	}

	// Share reservations: a's deny-write refuses b's write open until a
	// closes.
	sh, err := la.OpenShare(file, lock.ShareRequest{Owner: lock.Owner{Client: "smb:a"}, Access: lock.OpenRead, Deny: lock.OpenWrite})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lb.OpenShare(file, lock.ShareRequest{Owner: lock.Owner{Client: "smb:b"}, Access: lock.OpenWrite}); !errors.Is(err, lock.ErrShareConflict) {
		t.Fatalf("write open through b against a's deny-write: %v, want a share conflict", err)
	}
	rb, err := lb.OpenShare(file, lock.ShareRequest{Owner: lock.Owner{Client: "smb:b"}, Access: lock.OpenRead})
	if err != nil {
		t.Fatalf("read open through b: %v", err)
	}
	if err := la.CloseShare(sh); err != nil {
		t.Fatal(err)
	}
	wb, err := lb.OpenShare(file, lock.ShareRequest{Owner: lock.Owner{Client: "smb:b"}, Access: lock.OpenWrite})
	if err != nil {
		t.Fatalf("write open through b after a closed: %v", err)
	}
	for _, h := range []lock.ShareHandle{rb, wb} {
		if err := lb.CloseShare(h); err != nil {
			t.Fatal(err)
		}
	}

	// a locks and writes unstably; then its session expires (revoked from
	// outside, as etcd does when a gateway stops renewing).
	if _, err := a.fs.Write(ctx, &core.Root, f.Ino, 0, []byte("committed"), core.FileSync); err != nil {
		t.Fatal(err)
	}
	if err := la.Lock(ctx, file, held, false); err != nil {
		t.Fatal(err)
	}
	if _, err := a.fs.Write(ctx, &core.Root, f.Ino, 0, []byte("LATE-DATA"), core.Unstable); err != nil {
		t.Fatal(err)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: e.etcd.Endpoints(), DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if _, err := cli.Revoke(ctx, clientv3.LeaseID(a.session.ID())); err != nil {
		t.Fatalf("revoking a's session: %v", err)
	}
	// b may take the lock at once; a's commit of what it wrote under the
	// lock fails, whether or not a has noticed yet.
	if err := lb.Lock(ctx, file, nlmLock("client-b", 0, 100, true), false); err != nil {
		t.Fatalf("lock through b after a's session expired: %v", err)
	}
	if err := a.fs.Commit(ctx, f.Ino); !errors.Is(err, core.ErrFenced) {
		t.Fatalf("commit through a of data written under the lost lock: %v, want %v", err, core.ErrFenced)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !la.Fenced(file) {
		if time.Now().After(deadline) {
			t.Fatal("a did not notice its lost session within 10 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := a.fs.Write(ctx, &core.Root, f.Ino, 0, []byte("LATE-DATA"), core.FileSync); !errors.Is(err, core.ErrFenced) {
		t.Fatalf("write through a after it noticed: %v, want %v", err, core.ErrFenced)
	}
	buf := make([]byte, 64)
	n, _, err := b.fs.Read(ctx, &core.Root, f.Ino, 0, buf)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf[:n], []byte("committed")) {
		t.Fatalf("file read through b is %q, want %q: a late write landed", buf[:n], "committed")
	}
	if st := la.Stats(); st.Locks != 0 {
		t.Fatalf("a still holds %d locks after losing its session", st.Locks)
	}

	// a, with a new session, is refused b's lock, and once b unlocks it
	// locks, which lifts the fence.
	if err := la.Lock(ctx, file, held, false); !errors.Is(err, lock.ErrConflict) {
		t.Fatalf("lock through a while b holds the range: %v, want a conflict", err)
	}
	if err := lb.Unlock(file, nlmLock("client-b", 0, 100, true)); err != nil {
		t.Fatal(err)
	}
	if err := la.Lock(ctx, file, held, false); err != nil {
		t.Fatalf("lock through a after b unlocked: %v", err)
	}
	if la.Fenced(file) {
		t.Fatal("the fence outlived a new lock")
	}
	if _, err := a.fs.Write(ctx, &core.Root, f.Ino, 0, []byte("relocked"), core.FileSync); err != nil {
		t.Fatalf("write through a under its new lock: %v", err)
	}
}
