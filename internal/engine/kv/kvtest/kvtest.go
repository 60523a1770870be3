// Package kvtest is the conformance suite and the shared benchmarks for
// kv.Store engines. Every engine runs the same Run and Bench so that the
// metadata layer can rely on one behaviour whatever the engine.
//
// It knows only the kv interface: it must not import any engine, so that a
// new engine (etcd, TiKV) is held to exactly the same contract.
package kvtest

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/claudefs/cfs-gateway/internal/engine/kv"
)

// Run runs the conformance suite. open must return a new, empty store for
// each call; the suite closes every store it gets (open must not register
// its own Close, though it may clean up the store's files with t.TempDir).
// Close may be called twice by the suite; the second call may return an
// error but must not panic.
func Run(t *testing.T, open func(t *testing.T) kv.Store) {
	tests := []struct {
		name string
		run  func(t *testing.T, s kv.Store)
	}{
		{"GetMissing", testGetMissing},
		{"PutGet", testPutGet},
		{"CallerOwnsSlices", testCallerOwnsSlices},
		{"Scan", testScan},
		{"ScanLarge", testScanLarge},
		{"ScanSeesOwnWrites", testScanSeesOwnWrites},
		{"ReadYourWrites", testReadYourWrites},
		{"Delete", testDelete},
		{"AbortWritesNothing", testAbortWritesNothing},
		{"TooLarge", testTooLarge},
		{"ConflictRerunsFn", testConflictRerunsFn},
		{"CounterContention", testCounterContention},
		{"DisjointWritersDoNotConflict", testDisjointWritersDoNotConflict},
		{"BlindWritersDoNotConflict", testBlindWritersDoNotConflict},
		{"ScanGuardKey", testScanGuardKey},
		{"GetMany", testGetMany},
		{"GetManyCallerOwnsSlices", testGetManyCallerOwnsSlices},
		{"GetManySeesOwnWrites", testGetManySeesOwnWrites},
		{"GetManyLarge", testGetManyLarge},
		{"ViewConsistency", testViewConsistency},
		{"ContextCanceled", testContextCanceled},
		{"Closed", testClosed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() { _ = s.Close() })
			tc.run(t, s)
		})
	}
}

// putAll commits pairs given as key, value, key, value... in one Update.
func putAll(t testing.TB, s kv.Store, kvs ...string) {
	t.Helper()
	if len(kvs)%2 != 0 {
		t.Fatalf("putAll: odd number of arguments")
	}
	err := s.Update(context.Background(), func(tx kv.Txn) error {
		for i := 0; i < len(kvs); i += 2 {
			tx.Put([]byte(kvs[i]), []byte(kvs[i+1]))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Update putting %d keys: %v", len(kvs)/2, err)
	}
}

// viewGet reads one key in a View.
func viewGet(t testing.TB, s kv.Store, key string) ([]byte, error) {
	t.Helper()
	var v []byte
	err := s.View(context.Background(), func(r kv.Reader) error {
		var err error
		v, err = r.Get(context.Background(), []byte(key))
		return err
	})
	return v, err
}

// wantValue fails unless key holds want.
func wantValue(t testing.TB, s kv.Store, key, want string) {
	t.Helper()
	v, err := viewGet(t, s, key)
	if err != nil {
		t.Fatalf("Get(%q): %v, want %q", key, err, want)
	}
	if string(v) != want {
		t.Fatalf("Get(%q) = %q, want %q", key, v, want)
	}
}

// wantMissing fails unless key is absent.
func wantMissing(t testing.TB, s kv.Store, key string) {
	t.Helper()
	v, err := viewGet(t, s, key)
	if !errors.Is(err, kv.ErrNotFound) {
		t.Fatalf("Get(%q) = %q, %v; want kv.ErrNotFound", key, v, err)
	}
}

// pairsString renders pairs as "k=v k=v" for comparison and messages.
func pairsString(ps []kv.Pair) string {
	var sb strings.Builder
	for i, p := range ps {
		if i > 0 {
			sb.WriteByte(' ')
		}
		fmt.Fprintf(&sb, "%s=%s", p.Key, p.Value)
	}
	return sb.String()
}

func testGetMissing(t *testing.T, s kv.Store) {
	ctx := context.Background()
	putAll(t, s, "present", "1")
	wantMissing(t, s, "absent")
	err := s.Update(ctx, func(tx kv.Txn) error {
		_, err := tx.Get(ctx, []byte("absent"))
		if !errors.Is(err, kv.ErrNotFound) {
			return fmt.Errorf("Get in Update = %v, want kv.ErrNotFound", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func testPutGet(t *testing.T, s kv.Store) {
	big := bytes.Repeat([]byte{0xa5}, kv.MaxValueSize)
	tests := []struct {
		name  string
		key   []byte
		value []byte
	}{
		{"small", []byte("k"), []byte("v")},
		{"empty value", []byte("empty"), []byte{}},
		{"binary", []byte{0, 1, 0xff}, []byte{0, 0xff, 0, 0xfe}},
		{"zero byte key", []byte{0}, []byte("zero")},
		{"high key", []byte{0xff, 0xff, 0xff}, []byte("high")},
		{"long key", bytes.Repeat([]byte("k"), 1024), []byte("long")},
		{"max value", []byte("big"), big},
	}
	ctx := context.Background()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := s.Update(ctx, func(tx kv.Txn) error {
				tx.Put(tc.key, tc.value)
				return nil
			})
			if err != nil {
				t.Fatalf("Update: %v", err)
			}
			var got []byte
			err = s.View(ctx, func(r kv.Reader) error {
				got, err = r.Get(ctx, tc.key)
				return err
			})
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if !bytes.Equal(got, tc.value) {
				t.Fatalf("Get returned %d bytes, want the %d bytes written", len(got), len(tc.value))
			}
		})
	}
}

// testCallerOwnsSlices checks that the engine neither keeps the caller's
// buffers past Put nor hands out its own internal buffers: the metadata layer
// encodes into scratch buffers and edits decoded values in place.
func testCallerOwnsSlices(t *testing.T, s kv.Store) {
	ctx := context.Background()
	key := []byte("key1")
	val := []byte("value1")
	err := s.Update(ctx, func(tx kv.Txn) error {
		tx.Put(key, val)
		copy(key, "XXXX")
		copy(val, "XXXXXX")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	wantMissing(t, s, "XXXX1")
	wantValue(t, s, "key1", "value1")

	v, err := viewGet(t, s, "key1")
	if err != nil {
		t.Fatal(err)
	}
	copy(v, "YYYYYY")
	err = s.View(ctx, func(r kv.Reader) error {
		ps, err := r.Scan(ctx, nil, nil, 0, false)
		if err != nil {
			return err
		}
		for _, p := range ps {
			copy(p.Key, "ZZZZ")
			copy(p.Value, "ZZZZZZ")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	wantValue(t, s, "key1", "value1")
}

// scanData is the fixture of testScan: "k/a".."k/e" with neighbours on both
// sides, and keys that end in 0xff to exercise kv.PrefixEnd.
var scanData = []string{
	"j", "vj",
	"k/a", "va",
	"k/b", "vb",
	"k/c", "vc",
	"k/d", "vd",
	"k/e", "ve",
	"l", "vl",
	"p\xff", "vp1",
	"p\xff\xff", "vp2",
	"q", "vq",
}

func testScan(t *testing.T, s kv.Store) {
	putAll(t, s, scanData...)
	all := "j k/a k/b k/c k/d k/e l p\xff p\xff\xff q"
	allRev := "q p\xff\xff p\xff l k/e k/d k/c k/b k/a j"
	tests := []struct {
		name       string
		start, end []byte
		limit      int
		reverse    bool
		want       string // keys separated by spaces
	}{
		{"all", nil, nil, 0, false, all},
		{"all negative limit", nil, nil, -1, false, all},
		{"all reverse", nil, nil, 0, true, allRev},
		{"bounds", []byte("k/b"), []byte("k/d"), 0, false, "k/b k/c"},
		{"bounds reverse", []byte("k/b"), []byte("k/d"), 0, true, "k/c k/b"},
		{"start between keys", []byte("k/bb"), []byte("k/e"), 0, false, "k/c k/d"},
		{"prefix", []byte("k/"), kv.PrefixEnd([]byte("k/")), 0, false, "k/a k/b k/c k/d k/e"},
		{"prefix limit", []byte("k/"), kv.PrefixEnd([]byte("k/")), 2, false, "k/a k/b"},
		{"prefix reverse limit", []byte("k/"), kv.PrefixEnd([]byte("k/")), 2, true, "k/e k/d"},
		{"limit above count", []byte("k/"), []byte("k0"), 100, false, "k/a k/b k/c k/d k/e"},
		{"nil start", nil, []byte("k/b"), 0, false, "j k/a"},
		{"nil start reverse limit", nil, []byte("k/c"), 2, true, "k/b k/a"},
		{"nil end", []byte("p"), nil, 0, false, "p\xff p\xff\xff q"},
		{"nil end reverse limit", []byte("l"), nil, 2, true, "q p\xff\xff"},
		{"prefix ending in 0xff", []byte("p\xff"), kv.PrefixEnd([]byte("p\xff")), 0, false, "p\xff p\xff\xff"},
		{"empty range", []byte("k/c"), []byte("k/c"), 0, false, ""},
		{"inverted range", []byte("k/d"), []byte("k/b"), 0, false, ""},
		{"inverted range reverse", []byte("k/d"), []byte("k/b"), 0, true, ""},
		{"range without keys", []byte("m"), []byte("n"), 0, true, ""},
	}
	ctx := context.Background()
	values := map[string]string{}
	for i := 0; i < len(scanData); i += 2 {
		values[scanData[i]] = scanData[i+1]
	}
	check := func(t *testing.T, where string, ps []kv.Pair, want string) {
		t.Helper()
		var keys []string
		for _, p := range ps {
			keys = append(keys, string(p.Key))
			if wantV := values[string(p.Key)]; string(p.Value) != wantV {
				t.Errorf("%s: value of %q = %q, want %q", where, p.Key, p.Value, wantV)
			}
		}
		if got := strings.Join(keys, " "); got != want {
			t.Errorf("%s: keys %q, want %q", where, got, want)
		}
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := s.View(ctx, func(r kv.Reader) error {
				ps, err := r.Scan(ctx, tc.start, tc.end, tc.limit, tc.reverse)
				if err != nil {
					return err
				}
				check(t, "View", ps, tc.want)
				return nil
			})
			if err != nil {
				t.Fatalf("View: %v", err)
			}
			err = s.Update(ctx, func(tx kv.Txn) error {
				ps, err := tx.Scan(ctx, tc.start, tc.end, tc.limit, tc.reverse)
				if err != nil {
					return err
				}
				check(t, "Update", ps, tc.want)
				return nil
			})
			if err != nil {
				t.Fatalf("Update: %v", err)
			}
		})
	}
}

// testScanLarge checks ordering and limits over more keys than one
// transaction may write.
func testScanLarge(t *testing.T, s kv.Store) {
	ctx := context.Background()
	const n = 1000
	key := func(i int) []byte { return fmt.Appendf(nil, "n/%05d", i) }
	for base := 0; base < n; base += 100 {
		err := s.Update(ctx, func(tx kv.Txn) error {
			// Written out of order so that the engine, not the test, sorts.
			for i := base + 99; i >= base; i-- {
				tx.Put(key(i), key(i))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name    string
		limit   int
		reverse bool
		first   int
		count   int
	}{
		{"all", 0, false, 0, n},
		{"all reverse", 0, true, n - 1, n},
		{"first 10", 10, false, 0, 10},
		{"last 10", 10, true, n - 1, 10},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var ps []kv.Pair
			err := s.View(ctx, func(r kv.Reader) error {
				var err error
				ps, err = r.Scan(ctx, []byte("n/"), kv.PrefixEnd([]byte("n/")), tc.limit, tc.reverse)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(ps) != tc.count {
				t.Fatalf("got %d pairs, want %d", len(ps), tc.count)
			}
			step := 1
			if tc.reverse {
				step = -1
			}
			for i, p := range ps {
				want := key(tc.first + i*step)
				if !bytes.Equal(p.Key, want) || !bytes.Equal(p.Value, want) {
					t.Fatalf("pair %d = %s=%s, want key and value %s", i, p.Key, p.Value, want)
				}
			}
		})
	}
	// Large values: one scan returns more than a transport's default
	// message limit (gRPC's 4 MiB).
	t.Run("large values", func(t *testing.T) {
		big := bytes.Repeat([]byte{0x5a}, kv.MaxValueSize)
		const bigs = 10
		for i := 0; i < bigs; i++ {
			putAll(t, s, fmt.Sprintf("big/%02d", i), string(big))
		}
		var ps []kv.Pair
		err := s.View(ctx, func(r kv.Reader) error {
			var err error
			ps, err = r.Scan(ctx, []byte("big/"), kv.PrefixEnd([]byte("big/")), 0, false)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(ps) != bigs {
			t.Fatalf("got %d pairs, want %d", len(ps), bigs)
		}
		for i, p := range ps {
			if !bytes.Equal(p.Value, big) {
				t.Fatalf("pair %d (%s): value of %d bytes differs", i, p.Key, len(p.Value))
			}
		}
	})
}

func testScanSeesOwnWrites(t *testing.T, s kv.Store) {
	ctx := context.Background()
	putAll(t, s, "k/a", "a0", "k/b", "b0", "k/c", "c0", "z", "z0")
	tests := []struct {
		name    string
		limit   int
		reverse bool
		want    string
	}{
		{"forward", 0, false, "k/a=a1 k/bb=bb1 k/c=c0 k/d=d1"},
		{"reverse", 0, true, "k/d=d1 k/c=c0 k/bb=bb1 k/a=a1"},
		{"forward limit", 2, false, "k/a=a1 k/bb=bb1"},
		{"reverse limit", 2, true, "k/d=d1 k/c=c0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			errRollback := errors.New("roll back so the next case starts from the same state")
			err := s.Update(ctx, func(tx kv.Txn) error {
				tx.Put([]byte("k/a"), []byte("a1"))
				tx.Delete([]byte("k/b"))
				tx.Put([]byte("k/bb"), []byte("bb1"))
				tx.Put([]byte("k/d"), []byte("d1"))
				tx.Delete([]byte("z"))
				ps, err := tx.Scan(ctx, []byte("k/"), kv.PrefixEnd([]byte("k/")), tc.limit, tc.reverse)
				if err != nil {
					return err
				}
				if got := pairsString(ps); got != tc.want {
					t.Errorf("Scan in Update = %q, want %q", got, tc.want)
				}
				return errRollback
			})
			if !errors.Is(err, errRollback) {
				t.Fatalf("Update = %v, want the fn's error", err)
			}
		})
	}
	wantValue(t, s, "k/b", "b0")
	wantMissing(t, s, "k/bb")
}

func testReadYourWrites(t *testing.T, s kv.Store) {
	ctx := context.Background()
	putAll(t, s, "other", "o")
	err := s.Update(ctx, func(tx kv.Txn) error {
		steps := []struct {
			op   string // "put", "del" or "get"
			val  string
			want string // for get; "" means kv.ErrNotFound
		}{
			{"get", "", ""},
			{"put", "1", ""},
			{"get", "", "1"},
			{"put", "2", ""},
			{"get", "", "2"},
			{"del", "", ""},
			{"get", "", ""},
			{"put", "3", ""},
			{"get", "", "3"},
		}
		for i, st := range steps {
			switch st.op {
			case "put":
				tx.Put([]byte("x"), []byte(st.val))
			case "del":
				tx.Delete([]byte("x"))
			case "get":
				v, err := tx.Get(ctx, []byte("x"))
				switch {
				case st.want == "" && !errors.Is(err, kv.ErrNotFound):
					return fmt.Errorf("step %d: Get = %q, %v; want kv.ErrNotFound", i, v, err)
				case st.want != "" && (err != nil || string(v) != st.want):
					return fmt.Errorf("step %d: Get = %q, %v; want %q", i, v, err, st.want)
				}
			}
		}
		tx.Delete([]byte("other"))
		if v, err := tx.Get(ctx, []byte("other")); !errors.Is(err, kv.ErrNotFound) {
			return fmt.Errorf("Get of a committed key deleted in this txn = %q, %v; want kv.ErrNotFound", v, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	wantValue(t, s, "x", "3")
	wantMissing(t, s, "other")
}

func testDelete(t *testing.T, s kv.Store) {
	ctx := context.Background()
	putAll(t, s, "a", "1", "b", "2")
	err := s.Update(ctx, func(tx kv.Txn) error {
		tx.Delete([]byte("a"))
		tx.Delete([]byte("never-existed"))
		return nil
	})
	if err != nil {
		t.Fatalf("Update deleting a present and a missing key: %v", err)
	}
	wantMissing(t, s, "a")
	wantValue(t, s, "b", "2")
	err = s.View(ctx, func(r kv.Reader) error {
		ps, err := r.Scan(ctx, nil, nil, 0, false)
		if err != nil {
			return err
		}
		if got := pairsString(ps); got != "b=2" {
			t.Errorf("Scan after Delete = %q, want %q", got, "b=2")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func testAbortWritesNothing(t *testing.T, s kv.Store) {
	ctx := context.Background()
	putAll(t, s, "a", "old", "c", "keep")
	errBoom := errors.New("boom")
	runs := 0
	err := s.Update(ctx, func(tx kv.Txn) error {
		runs++
		tx.Put([]byte("a"), []byte("new"))
		tx.Put([]byte("b"), []byte("new"))
		tx.Delete([]byte("c"))
		return errBoom
	})
	if err != errBoom {
		t.Fatalf("Update = %v, want the fn's error returned as is", err)
	}
	if runs != 1 {
		t.Fatalf("fn ran %d times, want 1: an fn error must not be retried", runs)
	}
	wantValue(t, s, "a", "old")
	wantMissing(t, s, "b")
	wantValue(t, s, "c", "keep")
}

func testTooLarge(t *testing.T, s kv.Store) {
	tests := []struct {
		name    string
		puts    int
		deletes int
		valSize int
		wantErr bool
	}{
		{"max ops", kv.MaxTxnOps, 0, 8, false},
		{"one op too many", kv.MaxTxnOps + 1, 0, 8, true},
		{"deletes count as ops", kv.MaxTxnOps - 1, 2, 8, true},
		{"max value", 1, 0, kv.MaxValueSize, false},
		{"value one byte too big", 1, 0, kv.MaxValueSize + 1, true},
	}
	ctx := context.Background()
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			prefix := fmt.Sprintf("t%d/", i)
			runs := 0
			err := s.Update(ctx, func(tx kv.Txn) error {
				runs++
				val := bytes.Repeat([]byte{'v'}, tc.valSize)
				for j := 0; j < tc.puts; j++ {
					tx.Put(fmt.Appendf(nil, "%s%04d", prefix, j), val)
				}
				for j := 0; j < tc.deletes; j++ {
					tx.Delete(fmt.Appendf(nil, "%sdel%04d", prefix, j))
				}
				return nil
			})
			if tc.wantErr {
				if !errors.Is(err, kv.ErrTooLarge) {
					t.Fatalf("Update = %v, want kv.ErrTooLarge", err)
				}
				if runs != 1 {
					t.Errorf("fn ran %d times, want 1: ErrTooLarge must not be retried", runs)
				}
				wantMissing(t, s, prefix+"0000")
				return
			}
			if err != nil {
				t.Fatalf("Update = %v, want success at the limit", err)
			}
			v, err := viewGet(t, s, fmt.Sprintf("%s%04d", prefix, tc.puts-1))
			if err != nil || len(v) != tc.valSize {
				t.Fatalf("last key written: %d bytes, %v; want %d bytes", len(v), err, tc.valSize)
			}
		})
	}
}

// Values of "k" in testConflictRerunsFn: absent stands for a missing key.
const absent = "<absent>"

// testConflictRerunsFn has another transaction commit between the first run
// of fn and its commit, and checks that the first run's writes are
// discarded and fn runs again when, and only when, the contract says so:
// when a key fn read was changed, not when a key it only wrote was.
func testConflictRerunsFn(t *testing.T, s kv.Store) {
	tests := []struct {
		name string
		// setup is committed before the transaction starts.
		setup []string
		// access is what the transaction does with key "k" before the
		// interference: "get"; "put" or "delete" (blind); "put get" or
		// "delete get" (a Get of its own write); "get put" (append "+1" to
		// what it read). "mget" reads "k" with kv.GetMany among a few
		// keys nobody writes, "mgetmany" among more than one etcd request
		// carries (and more than etcd compares one by one).
		access string
		// interfere is what the other transaction does: put or delete a key.
		interfereOp, interfereKey string
		wantRerun                 bool
		// wantSeen is what the transaction's final run read of "k" ("" if
		// it read nothing), wantFinal the value of "k" after both commits.
		wantSeen, wantFinal string
	}{
		{"read missing key then it is created", nil, "get", "put", "k", true, "other", "other"},
		{"read key then it is changed", []string{"k", "orig"}, "get", "put", "k", true, "other", "other"},
		{"read key then it is deleted", []string{"k", "orig"}, "get", "delete", "k", true, absent, absent},
		{"read key then it is rewritten unchanged", []string{"k", "other"}, "get", "put", "k", true, "other", "other"},
		{"read key, unrelated key changes", []string{"k", "orig"}, "get", "put", "unrelated", false, "orig", "orig"},
		{"read missing key, unrelated key created", nil, "get", "put", "unrelated", false, absent, absent},
		{"read-modify-write then key is changed", []string{"k", "orig"}, "get put", "put", "k", true, "other", "other+1"},
		{"read-modify-write of missing key then it is created", nil, "get put", "put", "k", true, "other", "other+1"},
		{"blind write then key is written", []string{"k", "orig"}, "put", "put", "k", false, "", "mine"},
		{"blind write then key is deleted", []string{"k", "orig"}, "put", "delete", "k", false, "", "mine"},
		{"blind write of missing key then it is created", nil, "put", "put", "k", false, "", "mine"},
		{"blind delete then key is written", []string{"k", "orig"}, "delete", "put", "k", false, "", absent},
		{"read of own write then key is written", []string{"k", "orig"}, "put get", "put", "k", false, "mine", "mine"},
		{"read of own delete then key is written", []string{"k", "orig"}, "delete get", "put", "k", false, absent, absent},
		{"batched read of missing key then it is created", nil, "mget", "put", "k", true, "other", "other"},
		{"batched read of key then it is changed", []string{"k", "orig"}, "mget", "put", "k", true, "other", "other"},
		{"batched read of key then it is deleted", []string{"k", "orig"}, "mget", "delete", "k", true, absent, absent},
		{"batched read of key, unrelated key changes", []string{"k", "orig"}, "mget", "put", "unrelated", false, "orig", "orig"},
		{"batched read-modify-write then key is changed", []string{"k", "orig"}, "mget put", "put", "k", true, "other", "other+1"},
		{"batched read of own write then key is written", []string{"k", "orig"}, "put mget", "put", "k", false, "mine", "mine"},
		{"batched read of own delete then key is written", []string{"k", "orig"}, "delete mget", "put", "k", false, absent, absent},
		{"large batched read then key is changed", []string{"k", "orig"}, "mgetmany", "put", "k", true, "other", "other"},
		{"large batched read of missing key then it is created", nil, "mgetmany", "put", "k", true, "other", "other"},
		{"large batched read, unrelated key changes", []string{"k", "orig"}, "mgetmany", "put", "unrelated", false, "orig", "orig"},
	}
	// Keys read beside "k" by a batched read; nothing writes them.
	var fewKeys, manyKeys [][]byte
	for i := 0; i < 300; i++ {
		key := fmt.Appendf(nil, "m/%03d", i)
		if i%100 == 0 {
			fewKeys = append(fewKeys, key)
		}
		manyKeys = append(manyKeys, key)
	}
	ctx := context.Background()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := s.Update(ctx, func(tx kv.Txn) error {
				for _, k := range []string{"k", "unrelated", "seen"} {
					tx.Delete([]byte(k))
				}
				return nil
			})
			if err != nil {
				t.Fatalf("resetting keys: %v", err)
			}
			if tc.setup != nil {
				putAll(t, s, tc.setup...)
			}
			runs := 0
			seen := ""
			err = s.Update(ctx, func(tx kv.Txn) error {
				runs++
				seen = ""
				read := func(others [][]byte) error {
					var v []byte
					var err error
					if others == nil {
						v, err = tx.Get(ctx, []byte("k"))
					} else {
						// "k" is asked for twice among the others.
						keys := append(append(append([][]byte{[]byte("k")}, others...), []byte("k")), others[0])
						var vs [][]byte
						if vs, err = kv.GetMany(ctx, tx, keys); err == nil {
							if len(vs) != len(keys) || !bytes.Equal(vs[0], vs[len(keys)-2]) || (vs[0] == nil) != (vs[len(keys)-2] == nil) {
								return fmt.Errorf("GetMany of %d keys returned %d values, or two different values of one key", len(keys), len(vs))
							}
							if v = vs[0]; v == nil {
								err = kv.ErrNotFound
							}
						}
					}
					switch {
					case errors.Is(err, kv.ErrNotFound):
						seen = absent
					case err != nil:
						return err
					default:
						seen = string(v)
					}
					return nil
				}
				for _, op := range strings.Fields(tc.access) {
					var err error
					switch op {
					case "get":
						err = read(nil)
					case "mget":
						err = read(fewKeys)
					case "mgetmany":
						err = read(manyKeys)
					case "put":
						if seen == "" {
							tx.Put([]byte("k"), []byte("mine"))
						} else {
							tx.Put([]byte("k"), []byte(strings.TrimPrefix(seen, absent)+"+1"))
						}
					case "delete":
						tx.Delete([]byte("k"))
					}
					if err != nil {
						return err
					}
				}
				if runs == 1 {
					// The other transaction runs on its own goroutine, as a
					// concurrent client would.
					done := make(chan error, 1)
					go func() {
						done <- s.Update(ctx, func(tx2 kv.Txn) error {
							if tc.interfereOp == "delete" {
								tx2.Delete([]byte(tc.interfereKey))
							} else {
								tx2.Put([]byte(tc.interfereKey), []byte("other"))
							}
							return nil
						})
					}()
					if err := <-done; err != nil {
						return fmt.Errorf("interfering Update: %w", err)
					}
				}
				tx.Put([]byte("seen"), []byte(seen))
				return nil
			})
			if err != nil {
				t.Fatalf("Update: %v", err)
			}
			if reran := runs > 1; reran != tc.wantRerun {
				// A hashed or coarse conflict check may rerun spuriously,
				// but the unrelated cases here read a few hundred keys at
				// most, so a spurious rerun points at a check that is far
				// too coarse.
				t.Fatalf("fn ran %d times, want rerun=%v", runs, tc.wantRerun)
			}
			if seen != tc.wantSeen {
				t.Errorf("final run saw k=%q, want %q", seen, tc.wantSeen)
			}
			wantValue(t, s, "seen", tc.wantSeen)
			if tc.wantFinal == absent {
				wantMissing(t, s, "k")
			} else {
				wantValue(t, s, "k", tc.wantFinal)
			}
		})
	}
}

// getManyData is the fixture of testGetMany: an empty value, and a value
// too large to share storage with small ones.
var getManyData = []string{
	"a", "1",
	"b", "",
	"c", "3",
	"big", strings.Repeat("v", 4000),
	"z\xff", "zf",
}

// wantValues fails unless values answer keys as the store holding values
// (missing keys absent) should: nil exactly for a missing key.
func wantValues(t testing.TB, where string, keys [][]byte, got [][]byte, values map[string]string) {
	t.Helper()
	if len(got) != len(keys) {
		t.Fatalf("%s: %d values for %d keys", where, len(got), len(keys))
	}
	for i, k := range keys {
		want, ok := values[string(k)]
		switch {
		case !ok && got[i] != nil:
			t.Errorf("%s: value %d (key %q) = %q, want nil for a missing key", where, i, k, got[i])
		case ok && got[i] == nil:
			t.Errorf("%s: value %d (key %q) = nil, want %.20q", where, i, k, want)
		case ok && string(got[i]) != want:
			t.Errorf("%s: value %d (key %q) = %.20q, want %.20q", where, i, k, got[i], want)
		}
	}
}

// plainReader hides a Reader's other methods, GetMany among them.
type plainReader struct{ kv.Reader }

func keysOf(ks ...string) [][]byte {
	out := make([][]byte, len(ks))
	for i, k := range ks {
		out[i] = []byte(k)
	}
	return out
}

// testGetMany checks that a batched read answers like one Get per key, in
// a View and in an Update, whatever the order and repetition of the keys.
func testGetMany(t *testing.T, s kv.Store) {
	putAll(t, s, getManyData...)
	values := map[string]string{}
	for i := 0; i < len(getManyData); i += 2 {
		values[getManyData[i]] = getManyData[i+1]
	}
	tests := []struct {
		name string
		keys [][]byte
	}{
		{"nil keys", nil},
		{"no keys", [][]byte{}},
		{"one present", keysOf("a")},
		{"one missing", keysOf("x")},
		{"empty value", keysOf("b")},
		{"large value", keysOf("big", "a")},
		{"sorted", keysOf("a", "b", "big", "c", "x", "z\xff")},
		{"unsorted with missing", keysOf("c", "x", "a", "b", "0", "z\xff")},
		{"duplicates", keysOf("a", "x", "a", "x", "c", "a", "b", "b")},
		{"all missing", keysOf("m", "y", "a\x00", "\xff")},
		{"neighbours of present keys", keysOf("a\x00", "a", "b\x00", "bi", "c", "c\x00", "z", "z\xff", "z\xff\x00")},
	}
	// kv.GetMany answers the same through the engine's batched read and,
	// for a Reader without one, through one Get per key.
	paths := []struct {
		name string
		wrap func(r kv.Reader) kv.Reader
	}{
		{"engine", func(r kv.Reader) kv.Reader { return r }},
		{"one Get per key", func(r kv.Reader) kv.Reader { return plainReader{r} }},
	}
	ctx := context.Background()
	for _, tc := range tests {
		for _, path := range paths {
			t.Run(tc.name+"/"+path.name, func(t *testing.T) {
				err := s.View(ctx, func(r kv.Reader) error {
					got, err := kv.GetMany(ctx, path.wrap(r), tc.keys)
					if err != nil {
						return err
					}
					wantValues(t, "View", tc.keys, got, values)
					return nil
				})
				if err != nil {
					t.Fatalf("View: %v", err)
				}
				err = s.Update(ctx, func(tx kv.Txn) error {
					got, err := kv.GetMany(ctx, path.wrap(tx), tc.keys)
					if err != nil {
						return err
					}
					wantValues(t, "Update", tc.keys, got, values)
					return nil
				})
				if err != nil {
					t.Fatalf("Update: %v", err)
				}
			})
		}
	}
	t.Run("canceled context", func(t *testing.T) {
		canceled, cancel := context.WithCancel(ctx)
		cancel()
		err := s.View(ctx, func(r kv.Reader) error {
			_, err := kv.GetMany(canceled, r, keysOf("a", "c"))
			return err
		})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("GetMany in a View with a canceled context = %v, want context.Canceled", err)
		}
		err = s.Update(ctx, func(tx kv.Txn) error {
			_, err := kv.GetMany(canceled, tx, keysOf("a", "c"))
			return err
		})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("GetMany in an Update with a canceled context = %v, want context.Canceled", err)
		}
	})
}

// testGetManyCallerOwnsSlices checks that the values of a batched read are
// independent of each other and of the engine, even for a key asked twice.
func testGetManyCallerOwnsSlices(t *testing.T, s kv.Store) {
	ctx := context.Background()
	putAll(t, s, "a", "aaaa", "b", "bbbb")
	keys := keysOf("a", "b", "a")
	err := s.View(ctx, func(r kv.Reader) error {
		got, err := kv.GetMany(ctx, r, keys)
		if err != nil {
			return err
		}
		copy(got[0], "XXXX")
		grown := append(got[0], "YYYY"...)
		if string(got[1]) != "bbbb" || string(got[2]) != "aaaa" || string(grown) != "XXXXYYYY" {
			t.Errorf("after writing into and appending to the first value: values %q, appended %q; "+
				"want the other values unchanged", got, grown)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	wantValue(t, s, "a", "aaaa")
}

// testGetManySeesOwnWrites checks that a batched read in an Update answers
// the keys the transaction wrote from its own writes.
func testGetManySeesOwnWrites(t *testing.T, s kv.Store) {
	ctx := context.Background()
	putAll(t, s, "a", "a0", "b", "b0", "c", "c0")
	errRollback := errors.New("roll back")
	err := s.Update(ctx, func(tx kv.Txn) error {
		tx.Put([]byte("a"), []byte("a1"))
		tx.Delete([]byte("b"))
		tx.Put([]byte("n"), []byte("n1"))
		tx.Put([]byte("e"), []byte{})
		tx.Delete([]byte("never"))
		keys := keysOf("n", "a", "b", "c", "e", "never", "x", "a")
		got, err := kv.GetMany(ctx, tx, keys)
		if err != nil {
			return err
		}
		wantValues(t, "GetMany in Update", keys, got, map[string]string{"a": "a1", "c": "c0", "n": "n1", "e": ""})
		return errRollback
	})
	if !errors.Is(err, errRollback) {
		t.Fatalf("Update = %v, want the fn's error", err)
	}
	wantValue(t, s, "a", "a0")
	wantMissing(t, s, "n")
}

// testGetManyLarge reads more keys than one etcd request carries, and
// values whose sum exceeds gRPC's default message limit.
func testGetManyLarge(t *testing.T, s kv.Store) {
	ctx := context.Background()
	const present = 300
	values := map[string]string{}
	for base := 0; base < present; base += 100 {
		var kvs []string
		for i := base; i < base+100; i++ {
			k := fmt.Sprintf("g/%04d", 2*i)
			values[k] = "v" + k
			kvs = append(kvs, k, "v"+k)
		}
		putAll(t, s, kvs...)
	}
	const bigs = 10
	big := strings.Repeat("b", kv.MaxValueSize)
	for i := 0; i < bigs; i++ {
		k := fmt.Sprintf("h/%02d", i)
		values[k] = big
		putAll(t, s, k, big)
	}
	// Every present key and the missing one after it, in a scrambled
	// order, with some asked twice.
	var keys [][]byte
	for i := 0; i < 2*present; i++ {
		j := i * 7919 % (2 * present)
		keys = append(keys, fmt.Appendf(nil, "g/%04d", j))
		if i%50 == 0 {
			keys = append(keys, fmt.Appendf(nil, "g/%04d", j))
		}
	}
	var bigKeys [][]byte
	for i := bigs - 1; i >= 0; i-- {
		bigKeys = append(bigKeys, fmt.Appendf(nil, "h/%02d", i))
	}
	tests := []struct {
		name string
		keys [][]byte
	}{
		{"many keys", keys},
		{"large values", bigKeys},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := s.View(ctx, func(r kv.Reader) error {
				got, err := kv.GetMany(ctx, r, tc.keys)
				if err != nil {
					return err
				}
				wantValues(t, "View", tc.keys, got, values)
				return nil
			})
			if err != nil {
				t.Fatalf("View: %v", err)
			}
			err = s.Update(ctx, func(tx kv.Txn) error {
				got, err := kv.GetMany(ctx, tx, tc.keys)
				if err != nil {
					return err
				}
				wantValues(t, "Update", tc.keys, got, values)
				return nil
			})
			if err != nil {
				t.Fatalf("Update: %v", err)
			}
		})
	}
}

// testBlindWritersDoNotConflict has many goroutines write one shared key
// blind, as entry changes write their directory's times, each with keys of
// its own: every Update must commit on its first run, and the shared key
// must hold one of the values written.
func testBlindWritersDoNotConflict(t *testing.T, s kv.Store) {
	const goroutines, txns = 16, 30
	ctx := context.Background()
	var runs atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < txns; i++ {
				err := s.Update(ctx, func(tx kv.Txn) error {
					runs.Add(1)
					tx.Put([]byte("shared"), fmt.Appendf(nil, "%02d/%03d", g, i))
					tx.Put(fmt.Appendf(nil, "own/%02d/%03d", g, i), []byte("x"))
					return nil
				})
				if err != nil {
					t.Errorf("goroutine %d txn %d: %v", g, i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if n := runs.Load(); n != goroutines*txns {
		t.Errorf("%d Updates ran fn %d times: transactions that only write must never rerun", goroutines*txns, n)
	}
	v, err := viewGet(t, s, "shared")
	if err != nil {
		t.Fatal(err)
	}
	var g, i int
	if _, err := fmt.Sscanf(string(v), "%02d/%03d", &g, &i); err != nil || g >= goroutines || i >= txns {
		t.Fatalf("shared = %q, not one of the values written", v)
	}
	err = s.View(ctx, func(r kv.Reader) error {
		ps, err := r.Scan(ctx, []byte("own/"), kv.PrefixEnd([]byte("own/")), 0, false)
		if err == nil && len(ps) != goroutines*txns {
			err = fmt.Errorf("%d keys of the writers' own, want %d: a blind writer's other writes were lost", len(ps), goroutines*txns)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// testScanGuardKey checks the contract's way to protect a scan: the
// transaction that scans Gets a guard key, and every change to the range
// writes the guard blind. A change made that way between the scan and the
// commit reruns the scanner, which then sees it.
func testScanGuardKey(t *testing.T, s kv.Store) {
	tests := []struct {
		name      string
		interfere []string // ops: "put KEY" or "delete KEY"
		wantRerun bool
		wantSeen  string // the keys of the range the final run scanned
	}{
		{"insert into the range and write the guard", []string{"put r/c", "put guard"}, true, "r/a r/b r/c"},
		{"delete from the range and write the guard", []string{"delete r/a", "put guard"}, true, "r/b"},
		{"write the guard only", []string{"put guard"}, true, "r/a r/b"},
		{"insert outside the range", []string{"put s/a"}, false, "r/a r/b"},
	}
	ctx := context.Background()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := s.Update(ctx, func(tx kv.Txn) error {
				for _, k := range []string{"r/a", "r/b", "r/c", "s/a", "guard", "seen"} {
					tx.Delete([]byte(k))
				}
				return nil
			})
			if err != nil {
				t.Fatalf("resetting keys: %v", err)
			}
			putAll(t, s, "guard", "0", "r/a", "a", "r/b", "b")
			runs := 0
			seen := ""
			err = s.Update(ctx, func(tx kv.Txn) error {
				runs++
				if _, err := tx.Get(ctx, []byte("guard")); err != nil {
					return err
				}
				ps, err := tx.Scan(ctx, []byte("r/"), kv.PrefixEnd([]byte("r/")), 0, false)
				if err != nil {
					return err
				}
				var keys []string
				for _, p := range ps {
					keys = append(keys, string(p.Key))
				}
				seen = strings.Join(keys, " ")
				if runs == 1 {
					err := s.Update(ctx, func(tx2 kv.Txn) error {
						for _, op := range tc.interfere {
							verb, key, _ := strings.Cut(op, " ")
							if verb == "delete" {
								tx2.Delete([]byte(key))
							} else {
								tx2.Put([]byte(key), []byte("new"))
							}
						}
						return nil
					})
					if err != nil {
						return fmt.Errorf("interfering Update: %w", err)
					}
				}
				tx.Put([]byte("seen"), []byte(seen))
				return nil
			})
			if err != nil {
				t.Fatalf("Update: %v", err)
			}
			if reran := runs > 1; reran != tc.wantRerun {
				t.Fatalf("fn ran %d times, want rerun=%v", runs, tc.wantRerun)
			}
			if seen != tc.wantSeen {
				t.Errorf("final run scanned %q, want %q", seen, tc.wantSeen)
			}
			wantValue(t, s, "seen", tc.wantSeen)
		})
	}
}

// testCounterContention has many goroutines increment one counter with
// read-modify-write transactions: any lost update shows in the total.
func testCounterContention(t *testing.T, s kv.Store) {
	const goroutines, increments = 16, 200
	ctx := context.Background()
	key := []byte("counter")
	var exhausted atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < increments; {
				err := s.Update(ctx, func(tx kv.Txn) error {
					var n uint64
					v, err := tx.Get(ctx, key)
					switch {
					case err == nil:
						if len(v) != 8 {
							return fmt.Errorf("counter holds %d bytes, want 8", len(v))
						}
						n = binary.BigEndian.Uint64(v)
					case !errors.Is(err, kv.ErrNotFound):
						return err
					}
					tx.Put(key, binary.BigEndian.AppendUint64(nil, n+1))
					return nil
				})
				if errors.Is(err, kv.ErrConflict) {
					// Allowed by the contract; the caller retries.
					exhausted.Add(1)
					continue
				}
				if err != nil {
					t.Errorf("increment: %v", err)
					return
				}
				i++
			}
		}()
	}
	wg.Wait()
	if n := exhausted.Load(); n > 0 {
		t.Logf("%d increments returned kv.ErrConflict and were retried by the test", n)
	}
	v, err := viewGet(t, s, string(key))
	if err != nil {
		t.Fatal(err)
	}
	if got := binary.BigEndian.Uint64(v); got != goroutines*increments {
		t.Fatalf("counter = %d, want %d: updates were lost or applied twice", got, goroutines*increments)
	}
}

// testDisjointWritersDoNotConflict checks that transactions on different
// keys commit concurrently without exhausting their retries.
func testDisjointWritersDoNotConflict(t *testing.T, s kv.Store) {
	const goroutines, txns = 16, 50
	ctx := context.Background()
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < txns; i++ {
				err := s.Update(ctx, func(tx kv.Txn) error {
					own := fmt.Appendf(nil, "g%02d/last", g)
					if _, err := tx.Get(ctx, own); err != nil && !errors.Is(err, kv.ErrNotFound) {
						return err
					}
					tx.Put(own, fmt.Appendf(nil, "%d", i))
					tx.Put(fmt.Appendf(nil, "g%02d/%03d", g, i), []byte("x"))
					return nil
				})
				if err != nil {
					t.Errorf("goroutine %d txn %d: %v", g, i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for g := 0; g < goroutines; g++ {
		wantValue(t, s, fmt.Sprintf("g%02d/last", g), fmt.Sprint(txns-1))
	}
}

// testViewConsistency moves amounts between two keys whose sum is fixed
// while readers check the sum: a View, and every committed Update, must see
// one state, never half of a transaction.
func testViewConsistency(t *testing.T, s kv.Store) {
	const total, transfers, readers = 1000, 300, 3
	ctx := context.Background()
	enc := func(n int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(n)) }
	dec := func(v []byte) int64 { return int64(binary.BigEndian.Uint64(v)) }
	putAll(t, s, "acct/a", string(enc(total)), "acct/b", string(enc(0)))

	readSum := func(r kv.Reader) (int64, error) {
		a, err := r.Get(ctx, []byte("acct/a"))
		if err != nil {
			return 0, err
		}
		b, err := r.Get(ctx, []byte("acct/b"))
		if err != nil {
			return 0, err
		}
		return dec(a) + dec(b), nil
	}

	var done atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer done.Store(true)
		for i := 0; i < transfers; i++ {
			err := s.Update(ctx, func(tx kv.Txn) error {
				a, err := tx.Get(ctx, []byte("acct/a"))
				if err != nil {
					return err
				}
				b, err := tx.Get(ctx, []byte("acct/b"))
				if err != nil {
					return err
				}
				amount := int64(i%7) - 3
				tx.Put([]byte("acct/a"), enc(dec(a)-amount))
				tx.Put([]byte("acct/b"), enc(dec(b)+amount))
				return nil
			})
			if err != nil {
				t.Errorf("transfer %d: %v", i, err)
				return
			}
		}
	}()
	for r := 0; r < readers; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !done.Load(); i++ {
				err := s.View(ctx, func(rd kv.Reader) error {
					sum, err := readSum(rd)
					if err != nil {
						return err
					}
					if sum != total {
						return fmt.Errorf("View saw a+b = %d, want %d", sum, total)
					}
					ps, err := rd.Scan(ctx, []byte("acct/"), kv.PrefixEnd([]byte("acct/")), 0, i%2 == 1)
					if err != nil {
						return err
					}
					if len(ps) != 2 || dec(ps[0].Value)+dec(ps[1].Value) != total {
						return fmt.Errorf("View Scan saw %d pairs that do not sum to %d", len(ps), total)
					}
					return nil
				})
				if err != nil {
					t.Error(err)
					return
				}
				// Each committed observation is kept; a run of fn that saw
				// an inconsistent state must not commit.
				err = s.Update(ctx, func(tx kv.Txn) error {
					sum, err := readSum(tx)
					if err != nil {
						return err
					}
					tx.Put(fmt.Appendf(nil, "obs/%d/%06d", r, i), enc(sum))
					return nil
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	err := s.View(ctx, func(r kv.Reader) error {
		ps, err := r.Scan(ctx, []byte("obs/"), kv.PrefixEnd([]byte("obs/")), 0, false)
		if err != nil {
			return err
		}
		for _, p := range ps {
			if dec(p.Value) != total {
				return fmt.Errorf("committed Update %s saw a+b = %d, want %d", p.Key, dec(p.Value), total)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func testContextCanceled(t *testing.T, s kv.Store) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := s.Update(ctx, func(tx kv.Txn) error {
		tx.Put([]byte("k"), []byte("v"))
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Update with a canceled context = %v, want context.Canceled", err)
	}
	wantMissing(t, s, "k")
	err = s.View(ctx, func(r kv.Reader) error {
		_, err := r.Get(ctx, []byte("k"))
		return err
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("View with a canceled context = %v, want context.Canceled", err)
	}
}

func testClosed(t *testing.T, s kv.Store) {
	putAll(t, s, "k", "v")
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	ctx := context.Background()
	ran := false
	err := s.View(ctx, func(r kv.Reader) error { ran = true; return nil })
	if !errors.Is(err, kv.ErrClosed) {
		t.Errorf("View after Close = %v, want kv.ErrClosed", err)
	}
	err = s.Update(ctx, func(tx kv.Txn) error { ran = true; return nil })
	if !errors.Is(err, kv.ErrClosed) {
		t.Errorf("Update after Close = %v, want kv.ErrClosed", err)
	}
	if ran {
		t.Errorf("fn ran on a closed store")
	}
}
