// Package blobtest is the conformance suite and the shared benchmarks for
// blob.Store engines, so that the data layer can rely on one behaviour from
// a local directory and from an object store alike.
//
// It knows only the blob interface and must not import an engine.
package blobtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/claudefs/cfs-gateway/internal/engine/blob"
)

// Run runs the conformance suite. open must return a new, empty store for
// each call; the suite closes every store it gets.
func Run(t *testing.T, open func(t *testing.T) blob.Store) {
	tests := []struct {
		name string
		run  func(t *testing.T, s blob.Store)
	}{
		{"PutGet", testPutGet},
		{"CallerOwnsSlices", testCallerOwnsSlices},
		{"NotFound", testNotFound},
		{"GetRange", testGetRange},
		{"Delete", testDelete},
		{"OverwriteSameContent", testOverwriteSameContent},
		{"ConcurrentPuts", testConcurrentPuts},
		{"ContextCanceled", testContextCanceled},
		{"List", testList},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() { _ = s.Close() })
			tc.run(t, s)
		})
	}
}

// content returns n deterministic pseudo-random bytes, different per seed.
func content(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(r.Uint32())
	}
	return p
}

func mustPut(t testing.TB, s blob.Store, key string, data []byte) {
	t.Helper()
	if err := s.Put(context.Background(), key, data); err != nil {
		t.Fatalf("Put(%q, %d bytes): %v", key, len(data), err)
	}
}

func wantObject(t testing.TB, s blob.Store, key string, want []byte) {
	t.Helper()
	got, err := s.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Get(%q) returned %d bytes that differ from the %d written", key, len(got), len(want))
	}
}

func testPutGet(t *testing.T, s blob.Store) {
	tests := []struct {
		name string
		key  string
		size int
	}{
		{"empty object", "empty", 0},
		{"one byte", "one", 1},
		{"small", "small", 100},
		{"nested key", "a/b/c/d", 4096},
		{"sibling of nested key", "a/b/c/e", 10},
		{"block and one byte", "blocks/00/big", 4<<20 + 1},
		{"dotted name", "x/file.v1", 7},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := content(uint64(i), tc.size)
			mustPut(t, s, tc.key, data)
			wantObject(t, s, tc.key, data)
		})
	}
}

func testCallerOwnsSlices(t *testing.T, s blob.Store) {
	data := []byte("original")
	mustPut(t, s, "k", data)
	copy(data, "XXXXXXXX")
	wantObject(t, s, "k", []byte("original"))
	got, err := s.Get(context.Background(), "k")
	if err != nil {
		t.Fatal(err)
	}
	copy(got, "YYYYYYYY")
	wantObject(t, s, "k", []byte("original"))
}

func testNotFound(t *testing.T, s blob.Store) {
	ctx := context.Background()
	mustPut(t, s, "dir/present", []byte("x"))
	for _, key := range []string{"absent", "dir/absent", "nodir/absent", "dir/present/below"} {
		if _, err := s.Get(ctx, key); !errors.Is(err, blob.ErrNotFound) {
			t.Errorf("Get(%q) = %v, want blob.ErrNotFound", key, err)
		}
		if _, err := s.GetRange(ctx, key, 0, make([]byte, 4)); !errors.Is(err, blob.ErrNotFound) {
			t.Errorf("GetRange(%q) = %v, want blob.ErrNotFound", key, err)
		}
	}
}

func testGetRange(t *testing.T, s blob.Store) {
	const size = 10000
	data := content(7, size)
	mustPut(t, s, "r/obj", data)
	tests := []struct {
		name   string
		off    int64
		length int
		want   int // bytes expected
	}{
		{"whole", 0, size, size},
		{"head", 0, 10, 10},
		{"middle", 4000, 1234, 1234},
		{"tail exact", size - 100, 100, 100},
		{"past the end", size - 100, 1000, 100},
		{"from the end", size, 10, 0},
		{"beyond the end", size + 50, 10, 0},
		{"zero length", 50, 0, 0},
		{"larger than object", 0, 2 * size, size},
	}
	ctx := context.Background()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := make([]byte, tc.length)
			n, err := s.GetRange(ctx, "r/obj", tc.off, p)
			if err != nil {
				t.Fatalf("GetRange(off=%d, len=%d): %v", tc.off, tc.length, err)
			}
			if n != tc.want {
				t.Fatalf("GetRange(off=%d, len=%d) = %d bytes, want %d", tc.off, tc.length, n, tc.want)
			}
			if n > 0 && !bytes.Equal(p[:n], data[tc.off:tc.off+int64(n)]) {
				t.Fatalf("GetRange(off=%d, len=%d) returned the wrong bytes", tc.off, tc.length)
			}
		})
	}
	if _, err := s.GetRange(ctx, "r/obj", -1, make([]byte, 1)); err == nil {
		t.Errorf("GetRange with a negative offset succeeded")
	}
}

func testDelete(t *testing.T, s blob.Store) {
	ctx := context.Background()
	mustPut(t, s, "d/a", []byte("a"))
	mustPut(t, s, "d/b", []byte("b"))
	for i := 0; i < 2; i++ {
		if err := s.Delete(ctx, "d/a"); err != nil {
			t.Fatalf("Delete #%d: %v", i+1, err)
		}
	}
	if err := s.Delete(ctx, "never/existed"); err != nil {
		t.Fatalf("Delete of a missing key: %v", err)
	}
	if _, err := s.Get(ctx, "d/a"); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("Get after Delete = %v, want blob.ErrNotFound", err)
	}
	wantObject(t, s, "d/b", []byte("b"))
	// A deleted key can be written again.
	mustPut(t, s, "d/a", []byte("again"))
	wantObject(t, s, "d/a", []byte("again"))
}

func testOverwriteSameContent(t *testing.T, s blob.Store) {
	data := content(3, 5000)
	for i := 0; i < 3; i++ {
		mustPut(t, s, "same/key", data)
	}
	wantObject(t, s, "same/key", data)
}

// testConcurrentPuts writes distinct keys, some sharing new directories, and
// one key with identical content from every goroutine at once.
func testConcurrentPuts(t *testing.T, s blob.Store) {
	const goroutines, perGoroutine = 16, 8
	ctx := context.Background()
	shared := content(99, 64<<10)
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perGoroutine; i++ {
				key := fmt.Sprintf("c/%02d/%d-%d", i%4, g, i)
				if err := s.Put(ctx, key, content(uint64(g*1000+i), 1000+g)); err != nil {
					t.Errorf("Put(%q): %v", key, err)
				}
			}
			if err := s.Put(ctx, "c/shared", shared); err != nil {
				t.Errorf("Put of the shared key: %v", err)
			}
		}()
	}
	wg.Wait()
	for g := 0; g < goroutines; g++ {
		for i := 0; i < perGoroutine; i++ {
			wantObject(t, s, fmt.Sprintf("c/%02d/%d-%d", i%4, g, i), content(uint64(g*1000+i), 1000+g))
		}
	}
	wantObject(t, s, "c/shared", shared)
}

func testContextCanceled(t *testing.T, s blob.Store) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Put(ctx, "canceled", []byte("x")); err == nil {
		t.Fatalf("Put with a canceled context succeeded")
	}
	if _, err := s.Get(context.Background(), "canceled"); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("a Put that failed left an object: %v", err)
	}
}

func testList(t *testing.T, s blob.Store) {
	l, ok := s.(blob.Lister)
	if !ok {
		t.Skip("engine does not implement blob.Lister")
	}
	ctx := context.Background()
	before := time.Now().Add(-time.Hour)
	objects := map[string]int{
		"l/a":       1,
		"l/b/c":     22,
		"l/b/d":     333,
		"l/bb":      4,
		"l/bc/x":    5,
		"m/a":       6,
		"top":       7,
		"l/deleted": 8,
	}
	for k, n := range objects {
		mustPut(t, s, k, content(uint64(n), n))
	}
	if err := s.Delete(ctx, "l/deleted"); err != nil {
		t.Fatal(err)
	}
	delete(objects, "l/deleted")

	tests := []struct {
		prefix string
		want   []string
	}{
		{"", []string{"l/a", "l/b/c", "l/b/d", "l/bb", "l/bc/x", "m/a", "top"}},
		{"l/", []string{"l/a", "l/b/c", "l/b/d", "l/bb", "l/bc/x"}},
		{"l/b", []string{"l/b/c", "l/b/d", "l/bb", "l/bc/x"}},
		{"l/b/", []string{"l/b/c", "l/b/d"}},
		{"l/b/c", []string{"l/b/c"}},
		{"t", []string{"top"}},
		{"nothing/", nil},
		{"l/z", nil},
	}
	for _, tc := range tests {
		t.Run("prefix="+tc.prefix, func(t *testing.T) {
			var got []string
			err := l.List(ctx, tc.prefix, func(o blob.Object) bool {
				got = append(got, o.Key)
				if want := int64(objects[o.Key]); o.Size != want {
					t.Errorf("%s: Size = %d, want %d", o.Key, o.Size, want)
				}
				if o.ModTime.Before(before) {
					t.Errorf("%s: ModTime %v is not the time of the Put", o.Key, o.ModTime)
				}
				return true
			})
			if err != nil {
				t.Fatalf("List(%q): %v", tc.prefix, err)
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("List(%q) = %q, want %q", tc.prefix, got, tc.want)
			}
		})
	}
	t.Run("stop early", func(t *testing.T) {
		calls := 0
		err := l.List(ctx, "", func(blob.Object) bool {
			calls++
			return calls < 2
		})
		if err != nil {
			t.Fatal(err)
		}
		if calls != 2 {
			t.Fatalf("fn called %d times after returning false on call 2", calls)
		}
	})
}
