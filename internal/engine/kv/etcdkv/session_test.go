package etcdkv

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/claudefs/cfs-gateway/internal/engine/kv"
)

var errTaken = errors.New("taken by another session")

// refuseAny is a claim check that refuses when another session has any
// record in the group.
func refuseAny(others [][]byte) error {
	if len(others) > 0 {
		return errTaken
	}
	return nil
}

// TestSessions runs two sessions on one store prefix, as two gateways do:
// claims see each other's records, concurrent claims are serialized by the
// group's guard, deletion and expiry free the group, a transaction reads a
// record by its key, and a lost lease is reported and replaced.
func TestSessions(t *testing.T) {
	c := startCluster(t)
	s := openStore(t, c.Endpoints(), Options{})
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	lostIDs := make(chan int64, 4)
	a, err := s.OpenSession(ctx, 3*time.Second, func(id int64) { lostIDs <- id })
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := s.OpenSession(ctx, 3*time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	group := []byte("g/1")

	if _, err := a.Claim(ctx, group, []byte("a1"), refuseAny); err != nil {
		t.Fatalf("first claim: %v", err)
	}
	rev, err := b.Claim(ctx, group, []byte("b1"), refuseAny)
	if !errors.Is(err, errTaken) {
		t.Fatalf("claim against a's record: %v, want the check's error", err)
	}
	if others, err := b.Others(ctx, group); err != nil || len(others) != 1 || string(others[0]) != "a1" {
		t.Fatalf("b sees %q, %v; want a's record", others, err)
	}
	// The record is readable, by key, in a transaction of the store.
	if err := s.View(ctx, func(r kv.Reader) error {
		v, err := r.Get(ctx, a.RecordKey(group))
		if err == nil && string(v) != "a1" {
			err = errors.New("record holds " + string(v))
		}
		return err
	}); err != nil {
		t.Fatalf("reading a's record in a transaction: %v", err)
	}

	// b waits for a change after its failed claim; a's delete wakes it.
	woke := make(chan error, 1)
	go func() { woke <- b.Wait(ctx, group, rev) }()
	time.Sleep(100 * time.Millisecond)
	if err := a.Put(ctx, group, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-woke:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(4 * time.Second):
		t.Fatal("Wait did not return on a's delete")
	}
	if _, err := b.Claim(ctx, group, []byte("b1"), refuseAny); err != nil {
		t.Fatalf("claim after a's delete: %v", err)
	}
	if err := b.Put(ctx, group, nil); err != nil {
		t.Fatal(err)
	}

	// Concurrent claims of a free group: exactly one wins.
	var wg sync.WaitGroup
	results := make([]error, 2)
	for i, se := range []*Session{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, results[i] = se.Claim(ctx, []byte("g/2"), []byte{'x', byte(i)}, refuseAny)
		}()
	}
	wg.Wait()
	if won := slices.IndexFunc(results, func(err error) bool { return err == nil }); won < 0 ||
		!errors.Is(results[1-won], errTaken) {
		t.Fatalf("concurrent claims: %v, want one success and one refusal", results)
	}

	// a's lease expires (revoked from outside): its record goes, it is
	// told, and its next claim runs under a new session id.
	if _, err := a.Claim(ctx, []byte("g/3"), []byte("a3"), refuseAny); err != nil {
		t.Fatal(err)
	}
	old := a.ID()
	oldKey := a.RecordKey([]byte("g/3"))
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if _, err := cli.Revoke(ctx, clientv3.LeaseID(old)); err != nil {
		t.Fatal(err)
	}
	select {
	case id := <-lostIDs:
		if id != old {
			t.Fatalf("lost session %x, want %x", id, old)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the lost lease was not reported within 10 s")
	}
	if others, err := b.Others(ctx, []byte("g/3")); err != nil || len(others) != 0 {
		t.Fatalf("a's record outlived its lease: %q, %v", others, err)
	}
	if _, err := a.Claim(ctx, []byte("g/3"), []byte("a3"), refuseAny); err != nil {
		t.Fatalf("claim after the loss: %v", err)
	}
	if a.ID() == old || a.ID() == 0 || bytes.Equal(a.RecordKey([]byte("g/3")), oldKey) {
		t.Fatalf("session id after the loss is %x (was %x): want a new one", a.ID(), old)
	}
}
