package etcdkv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"github.com/claudefs/cfs-gateway/internal/backend"
	"github.com/claudefs/cfs-gateway/internal/backend/backendtest"
	"github.com/claudefs/cfs-gateway/internal/engine/kv"
	"github.com/claudefs/cfs-gateway/internal/engine/kv/kvtest"
)

var quiet = slog.New(slog.DiscardHandler)

// prefixSeq gives every store of a test a prefix of its own, so that each
// starts empty on a cluster the test's stores share.
var prefixSeq atomic.Int64

// startCluster starts a 3-member cluster for one test.
func startCluster(t *testing.T) *backendtest.EtcdCluster {
	t.Helper()
	if testing.Short() {
		t.Skip("starts an etcd cluster")
	}
	return backendtest.StartEtcd(t, 3)
}

func openStore(t testing.TB, endpoints []string, opts Options) *Store {
	t.Helper()
	opts.Endpoints = endpoints
	if opts.Prefix == "" {
		opts.Prefix = fmt.Sprintf("/test/%d/", prefixSeq.Add(1))
	}
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Open(ctx, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	c := startCluster(t)
	kvtest.Run(t, func(t *testing.T) kv.Store {
		return openStore(t, c.Endpoints(), Options{})
	})
}

func TestConformanceOneConnectionPerMember(t *testing.T) {
	c := startCluster(t)
	kvtest.Run(t, func(t *testing.T) kv.Store {
		return openStore(t, c.Endpoints(), Options{Pool: backend.PoolConfig{MinPerNode: 1, MaxPerNode: 1}})
	})
}

func BenchmarkEngine(b *testing.B) {
	c := backendtest.StartEtcd(b, 3)
	kvtest.Bench(b, func(b *testing.B) kv.Store {
		return openStore(b, c.Endpoints(), Options{})
	})
}

// TestPrefixIsolation checks that stores with different prefixes share a
// cluster without seeing each other's keys, and that the prefix is not
// part of the keys a store returns.
func TestPrefixIsolation(t *testing.T) {
	c := startCluster(t)
	a := openStore(t, c.Endpoints(), Options{Prefix: "/iso/a/"})
	b := openStore(t, c.Endpoints(), Options{Prefix: "/iso/ab/"})
	defer a.Close()
	defer b.Close()
	ctx := context.Background()
	for i, s := range []*Store{a, b} {
		err := s.Update(ctx, func(tx kv.Txn) error {
			tx.Put([]byte("k"), []byte{byte('0' + i)})
			tx.Put([]byte("z"), []byte("z"))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	err := a.View(ctx, func(r kv.Reader) error {
		ps, err := r.Scan(ctx, nil, nil, 0, false)
		if err != nil {
			return err
		}
		if len(ps) != 2 || string(ps[0].Key) != "k" || string(ps[0].Value) != "0" || string(ps[1].Key) != "z" {
			return fmt.Errorf("store a scans %q, want its own k=0 and z only", pairs(ps))
		}
		ps, err = r.Scan(ctx, nil, nil, 1, true)
		if err != nil {
			return err
		}
		if len(ps) != 1 || string(ps[0].Key) != "z" {
			return fmt.Errorf("store a reverse scan %q, want z", pairs(ps))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func pairs(ps []kv.Pair) string {
	var b bytes.Buffer
	for _, p := range ps {
		fmt.Fprintf(&b, "%s=%s ", p.Key, p.Value)
	}
	return b.String()
}

// TestManyComparisons reads more keys than etcd compares in one
// transaction: the commit succeeds with merged comparisons, a change to any
// key the transaction read still makes it run again, and a change to a key
// it only wrote does not.
func TestManyComparisons(t *testing.T) {
	c := startCluster(t)
	s := openStore(t, c.Endpoints(), Options{})
	defer s.Close()
	ctx := context.Background()
	key := func(i int) []byte { return fmt.Appendf(nil, "many/%04d", i) }
	// The transaction reads many/present and key(0..199), and writes
	// key(100..219).
	tests := []struct {
		name      string
		interfere []byte // key another transaction changes during the first run
		wantRerun bool
	}{
		{"no interference", nil, false},
		{"a key read as missing is created", key(10), true},
		{"a key read as missing and written is created", key(150), true},
		{"a key read as present is changed", []byte("many/present"), true},
		{"a key written blind is changed", key(210), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for base := 0; base < 250; base += 100 {
				err := s.Update(ctx, func(tx kv.Txn) error {
					for i := base; i < min(base+100, 250); i++ {
						tx.Delete(key(i))
					}
					tx.Put([]byte("many/present"), []byte("p"))
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			runs := 0
			err := s.Update(ctx, func(tx kv.Txn) error {
				runs++
				if _, err := tx.Get(ctx, []byte("many/present")); err != nil {
					return err
				}
				for i := 0; i < 200; i++ {
					if _, err := tx.Get(ctx, key(i)); err != nil && !errors.Is(err, kv.ErrNotFound) {
						return err
					}
				}
				for i := 100; i < 220; i++ {
					tx.Put(key(i), []byte("x"))
				}
				if runs == 1 && tc.interfere != nil {
					err := s.Update(ctx, func(tx2 kv.Txn) error {
						tx2.Put(tc.interfere, []byte("other"))
						return nil
					})
					if err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				t.Fatalf("Update reading 201 keys and writing 120: %v", err)
			}
			if (runs > 1) != tc.wantRerun {
				t.Fatalf("fn ran %d times, want rerun=%v", runs, tc.wantRerun)
			}
			if tc.interfere == nil || bytes.HasPrefix(tc.interfere, []byte("many/p")) {
				return
			}
			var v []byte
			err = s.View(ctx, func(r kv.Reader) error {
				var err error
				v, err = r.Get(ctx, tc.interfere)
				return err
			})
			// Every interfering key is in the written range or read as
			// missing; either way the transaction's commit came last.
			want := "x"
			if bytes.Compare(tc.interfere, key(100)) < 0 {
				want = "other"
			}
			if err != nil || string(v) != want {
				t.Fatalf("%s = %q, %v after both commits; want %q", tc.interfere, v, err, want)
			}
		})
	}
}

func TestComparesWithinLimit(t *testing.T) {
	s := &Store{prefix: []byte("/p/")}
	tests := []struct {
		name         string
		present      int // keys read as present
		missing      int // keys read as missing
		blind        int // keys written without a read
		wantTooLarge bool
		wantExact    int // comparisons of single present keys, kept exact
		wantCompares int // 0: only check the limit
	}{
		{"small", 3, 2, 4, false, 3, 5},
		{"only blind writes", 0, 0, 10, false, 0, 0},
		{"exactly the limit", 60, 68, 100, false, 60, 128},
		{"blind writes do not count", 60, 30, 128, false, 60, 90},
		{"over the limit: merged", 60, 100, 128, false, 60, 0},
		{"all present at the limit", 128, 0, 0, false, 128, 128},
		{"present at the limit and one missing", 128, 1, 0, true, 0, 0},
		{"present over the limit", 129, 0, 1, true, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tx := newTxn(s, nil)
			tx.rev = 1000
			for i := 0; i < tc.present; i++ {
				tx.reads[fmt.Sprintf("a%04d", i)] = int64(500 + i)
			}
			for i := 0; i < tc.missing; i++ {
				tx.reads[fmt.Sprintf("b%04d", i)] = 0
			}
			for i := 0; i < tc.blind; i++ {
				k := fmt.Sprintf("c%04d", i)
				tx.writes.byKey[k] = &write{key: []byte(k), value: []byte("v")}
			}
			cmps, err := tx.compares()
			if tc.wantTooLarge {
				if !errors.Is(err, kv.ErrTooLarge) {
					t.Fatalf("compares = %v, want kv.ErrTooLarge", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(cmps) > maxCompares {
				t.Fatalf("%d comparisons, etcd takes at most %d", len(cmps), maxCompares)
			}
			if tc.wantCompares != 0 && len(cmps) != tc.wantCompares {
				t.Errorf("%d comparisons, want %d", len(cmps), tc.wantCompares)
			}
			covered := map[string]bool{}
			exact := 0
			for _, c := range cmps {
				if !bytes.HasPrefix(c.Key, s.prefix) {
					t.Fatalf("comparison key %q lacks the prefix", c.Key)
				}
				if c.RangeEnd == nil {
					k := string(c.Key[len(s.prefix):])
					covered[k] = true
					mod, read := tx.reads[k]
					if c.Result.String() != "EQUAL" || !read || c.GetModRevision() != mod {
						t.Errorf("comparison of %q is %v %d, want EQUAL to the revision read", k, c.Result, c.GetModRevision())
					}
					if mod != 0 {
						exact++
					}
					continue
				}
				if c.Result.String() != "LESS" || c.GetModRevision() != tx.rev+1 {
					t.Fatalf("range comparison %q..%q is %v %d, want LESS than the read revision+1", c.Key, c.RangeEnd, c.Result, c.GetModRevision())
				}
				for _, keys := range []map[string]bool{keySet(tx.reads), keySet(tx.writes.byKey)} {
					for k := range keys {
						fk := append([]byte("/p/"), k...)
						if bytes.Compare(fk, c.Key) >= 0 && bytes.Compare(fk, c.RangeEnd) < 0 {
							covered[k] = true
							if mod := tx.reads[k]; mod != 0 {
								t.Errorf("range comparison %q..%q covers %q, read as present", c.Key, c.RangeEnd, k)
							}
						}
					}
				}
			}
			if exact != tc.wantExact {
				t.Errorf("%d exact comparisons of present keys, want %d", exact, tc.wantExact)
			}
			for k := range tx.reads {
				if !covered[k] {
					t.Errorf("read key %q is not compared", k)
				}
			}
			for k := range tx.writes.byKey {
				if covered[k] {
					t.Errorf("key %q, written blind, is compared", k)
				}
			}
		})
	}
}

func keySet[V any](m map[string]V) map[string]bool {
	out := make(map[string]bool, len(m))
	for k := range m {
		out[k] = true
	}
	return out
}

func TestClassify(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want errorClass
	}{
		{"no leader", rpctypes.ErrGRPCNoLeader, classUnavailable},
		{"request timed out", rpctypes.ErrGRPCTimeout, classUnavailable},
		{"leader changed", rpctypes.ErrGRPCLeaderChanged, classUnavailable},
		{"too many requests", rpctypes.ErrGRPCRequestTooManyRequests, classUnavailable},
		{"no space", rpctypes.ErrGRPCNoSpace, classUnavailable},
		{"connection refused", status.Error(codes.Unavailable, "connection error: dial tcp: connection refused"), classUnavailable},
		{"rpc deadline", status.Error(codes.DeadlineExceeded, "context deadline exceeded"), classUnavailable},
		{"local deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), classUnavailable},
		{"compacted", rpctypes.ErrGRPCCompacted, classRerun},
		{"future revision", rpctypes.ErrGRPCFutureRev, classUnavailable},
		{"too many ops", rpctypes.ErrGRPCTooManyOps, classTooLarge},
		{"request too large", rpctypes.ErrGRPCRequestTooLarge, classTooLarge},
		{"permission denied", rpctypes.ErrGRPCPermissionDenied, classOther},
		{"auth failed", rpctypes.ErrGRPCAuthFailed, classOther},
		{"duplicate key", rpctypes.ErrGRPCDuplicateKey, classOther},
		{"server-side deadline", status.Error(codes.Unknown, "context deadline exceeded"), classUnavailable},
		{"unknown", status.Error(codes.Unknown, "something else"), classOther},
		{"plain error", errors.New("boom"), classOther},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := classify(tc.err); got != tc.want {
				t.Fatalf("classify(%v) = %d, want %d", tc.err, got, tc.want)
			}
		})
	}
}

// TestWatch has one store watch a prefix while another store, as another
// gateway would, changes keys inside and outside it.
func TestWatch(t *testing.T) {
	c := startCluster(t)
	prefix := fmt.Sprintf("/watch/%d/", prefixSeq.Add(1))
	watcher := openStore(t, c.Endpoints(), Options{Prefix: prefix})
	writer := openStore(t, c.Endpoints(), Options{Prefix: prefix})
	defer watcher.Close()
	defer writer.Close()
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan string, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		watcher.Watch(ctx, []byte("dir/"), func(key []byte) { got <- string(key) })
	}()
	// The watch is established asynchronously; write until it reports.
	write := func(k string, del bool) {
		err := writer.Update(context.Background(), func(tx kv.Txn) error {
			if del {
				tx.Delete([]byte(k))
			} else {
				tx.Put([]byte(k), []byte("v"))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.After(20 * time.Second)
	for ready := false; !ready; {
		write("dir/probe", false)
		select {
		case k := <-got:
			ready = k == "dir/probe"
		case <-time.After(200 * time.Millisecond):
		case <-deadline:
			t.Fatal("the watch never reported a change")
		}
	}
	for len(got) > 0 {
		<-got
	}
	write("other/x", false)
	write("dir/a", false)
	write("dir/a", true)
	for _, want := range []string{"dir/a", "dir/a"} {
		select {
		case k := <-got:
			if k != want {
				t.Fatalf("watch reported %q, want %q (changes outside the prefix must not be reported)", k, want)
			}
		case <-deadline:
			t.Fatalf("watch did not report %q", want)
		}
	}
	cancel()
	<-done
}

// TestMemberPool checks the per-member pool: min_per_node connections at
// start, more (up to max_per_node) under concurrent load, and back to the
// minimum once the extra ones have been idle for max_idle_ms.
func TestMemberPool(t *testing.T) {
	c := startCluster(t)
	pool := backend.PoolConfig{MinPerNode: 1, MaxPerNode: 3, MaxIdle: time.Minute}
	s := openStore(t, c.Endpoints()[:1], Options{Pool: pool})
	defer s.Close()
	m := s.members[0]
	if n := len(m.list()); n != pool.MinPerNode {
		t.Fatalf("%d connections at start, want min_per_node %d", n, pool.MinPerNode)
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	for g := 0; g < 64; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				err := s.View(ctx, func(r kv.Reader) error {
					_, err := r.Scan(ctx, nil, nil, 10, false)
					return err
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for m.growing.Load() {
		time.Sleep(time.Millisecond)
	}
	grown := len(m.list())
	if grown <= pool.MinPerNode || grown > pool.MaxPerNode {
		t.Fatalf("%d connections after 64 concurrent readers, want more than %d and at most %d", grown, pool.MinPerNode, pool.MaxPerNode)
	}
	m.shrink(time.Now())
	if n := len(m.list()); n != grown {
		t.Fatalf("shrink closed connections used just now: %d left of %d", n, grown)
	}
	m.shrink(time.Now().Add(pool.MaxIdle))
	if n := len(m.list()); n != pool.MinPerNode {
		t.Fatalf("%d connections after max_idle_ms without use, want min_per_node %d", n, pool.MinPerNode)
	}
	if err := s.View(ctx, func(r kv.Reader) error { _, err := r.Scan(ctx, nil, nil, 1, false); return err }); err != nil {
		t.Fatalf("View after shrinking: %v", err)
	}
}

// TestOpenWithoutCluster fails within the timeout, naming the endpoints,
// when no member answers.
func TestOpenWithoutCluster(t *testing.T) {
	port := backendtest.FreePorts(t, 1)[0]
	ep := fmt.Sprintf("127.0.0.1:%d", port)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := Open(ctx, Options{
		Endpoints: []string{ep},
		Pool:      backend.PoolConfig{ConnectTimeout: 200 * time.Millisecond},
		Breaker:   backend.BreakerConfig{Timeout: 500 * time.Millisecond},
		Logger:    quiet,
	})
	if err == nil {
		s.Close()
		t.Fatal("Open succeeded without an etcd cluster")
	}
	if !strings.Contains(err.Error(), ep) || !strings.Contains(err.Error(), "metadata.etcd.endpoints") {
		t.Fatalf("Open = %v, want a message naming %s and the configuration key", err, ep)
	}
}
