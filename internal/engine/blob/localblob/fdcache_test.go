package localblob

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/claudefs/cfs-gateway/internal/engine/blob"
)

// openFDs counts this process's open descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd to count descriptors")
	}
	return len(entries)
}

// TestReadsSeeChanges reads through the descriptor cache after every way an
// object can change: the store's own Put and Delete, and a removal or
// replacement of its file by something else.
func TestReadsSeeChanges(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	defer s.Close()
	read := func(key string) (string, error) {
		p := make([]byte, 16)
		n, err := s.GetRange(ctx, key, 0, p)
		return string(p[:n]), err
	}
	for _, tc := range []struct {
		name   string
		change func(key string) error
		want   string // "" means not found
	}{
		{"put over it", func(k string) error { return s.Put(ctx, k, []byte("second")) }, "second"},
		{"delete", func(k string) error { return s.Delete(ctx, k) }, ""},
		{"removed behind the store's back", func(k string) error { return os.Remove(s.path(k)) }, ""},
		{"replaced behind the store's back", func(k string) error {
			other := filepath.Join(filepath.Dir(s.path(k)), "elsewhere")
			if err := os.WriteFile(other, []byte("outside"), 0o600); err != nil {
				return err
			}
			return os.Rename(other, s.path(k))
		}, "outside"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := "fd/" + filepath.Base(t.Name())
			if err := s.Put(ctx, key, []byte("first")); err != nil {
				t.Fatal(err)
			}
			for range 3 { // the first read caches the descriptor
				if got, err := read(key); err != nil || got != "first" {
					t.Fatalf("read before the change: %q, %v", got, err)
				}
			}
			if err := tc.change(key); err != nil {
				t.Fatal(err)
			}
			got, err := read(key)
			if tc.want == "" {
				if !errors.Is(err, blob.ErrNotFound) {
					t.Fatalf("read after the change: %q, %v; want not found", got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("read after the change: %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// TestDescriptorsBounded reads many more objects than the cache keeps: the
// open descriptors stay bounded, and Close releases them.
func TestDescriptorsBounded(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	before := openFDs(t)
	const n = 3 * fdShards * fdPerShard
	for i := range n {
		key := fmt.Sprintf("many/%d", i)
		if err := s.Put(ctx, key, []byte(key)); err != nil {
			t.Fatal(err)
		}
		p := make([]byte, 32)
		if m, err := s.GetRange(ctx, key, 0, p); err != nil || string(p[:m]) != key {
			t.Fatalf("read %s: %q, %v", key, p[:m], err)
		}
	}
	if open := openFDs(t) - before; open > fdShards*fdPerShard+8 {
		t.Fatalf("%d descriptors open after reading %d objects, want at most %d", open, n, fdShards*fdPerShard)
	}
	s.Close()
	if open := openFDs(t) - before; open > 8 {
		t.Fatalf("%d descriptors still open after Close", open)
	}
}
