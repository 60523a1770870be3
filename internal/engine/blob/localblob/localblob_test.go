package localblob

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/claudefs/cfs-gateway/internal/engine/blob"
	"github.com/claudefs/cfs-gateway/internal/engine/blob/blobtest"
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func openTemp(t testing.TB) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "blobs"), Options{Logger: quietLogger()})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) blob.Store { return openTemp(t) })
}

func TestCheckKey(t *testing.T) {
	tests := []struct {
		key   string
		valid bool
	}{
		{"a", true},
		{"a/b/c", true},
		{"blocks/00/0123456789abcdef", true},
		{"a..b", true},
		{".hidden", true},
		{"a/.tmp", true},
		{"", false},
		{"/a", false},
		{"a/", false},
		{"a//b", false},
		{"..", false},
		{"../a", false},
		{"a/../b", false},
		{"a/..", false},
		{".", false},
		{"a/./b", false},
		{"a\x00b", false},
		{TempPrefix + "x", false},
		{"a/" + TempPrefix + "123", false},
		{strings.Repeat("n", maxNameLen), true},
		{strings.Repeat("n", maxNameLen+1), false},
		{strings.Repeat("a/", maxKeyLen/2) + "b", false},
	}
	for _, tc := range tests {
		err := checkKey(tc.key)
		if (err == nil) != tc.valid {
			t.Errorf("checkKey(%q) = %v, want valid=%v", tc.key, err, tc.valid)
		}
		if err != nil && !errors.Is(err, ErrInvalidKey) {
			t.Errorf("checkKey(%q) = %v, want ErrInvalidKey", tc.key, err)
		}
	}
}

func TestInvalidKeysRejectedEverywhere(t *testing.T) {
	s := openTemp(t)
	defer s.Close()
	ctx := context.Background()
	for _, key := range []string{"../escape", "/abs", "a/../../b", ""} {
		if err := s.Put(ctx, key, []byte("x")); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("Put(%q) = %v, want ErrInvalidKey", key, err)
		}
		if _, err := s.Get(ctx, key); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("Get(%q) = %v, want ErrInvalidKey", key, err)
		}
		if _, err := s.GetRange(ctx, key, 0, make([]byte, 1)); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("GetRange(%q) = %v, want ErrInvalidKey", key, err)
		}
		if err := s.Delete(ctx, key); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("Delete(%q) = %v, want ErrInvalidKey", key, err)
		}
	}
	if err := s.List(ctx, "../", func(blob.Object) bool { return true }); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("List(\"../\") = %v, want ErrInvalidKey", err)
	}
	// Nothing was written outside the root.
	entries, err := os.ReadDir(filepath.Dir(s.root))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("the root's parent holds %d entries, want only the root", len(entries))
	}
}

func TestLayoutOnDisk(t *testing.T) {
	s := openTemp(t)
	defer s.Close()
	if err := s.Put(context.Background(), "x/y/z", []byte("data")); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(s.root, "x", "y", "z"))
	if err != nil || string(got) != "data" {
		t.Fatalf("file x/y/z = %q, %v; want the object's bytes", got, err)
	}
	entries, err := os.ReadDir(filepath.Join(s.root, "x", "y"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Fatalf("directory holds %d entries after one Put, want 1 (no temporary file left)", len(entries))
	}
}

func TestDirectoryAndFileKeys(t *testing.T) {
	s := openTemp(t)
	defer s.Close()
	ctx := context.Background()
	if err := s.Put(ctx, "d/child", []byte("c")); err != nil {
		t.Fatal(err)
	}
	// "d" is a directory, not an object.
	if _, err := s.Get(ctx, "d"); !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("Get of a directory = %v, want blob.ErrNotFound", err)
	}
	if err := s.Delete(ctx, "d"); err != nil {
		t.Errorf("Delete of a directory = %v, want nil", err)
	}
	if _, err := s.Get(ctx, "d/child"); err != nil {
		t.Errorf("Delete of the directory key removed its contents: %v", err)
	}
	if err := s.Put(ctx, "d", []byte("x")); err == nil {
		t.Errorf("Put over a directory succeeded")
	}
	if err := s.Put(ctx, "d/child/below", []byte("x")); err == nil {
		t.Errorf("Put below an object succeeded")
	}
	if _, err := s.Get(ctx, "d/child"); err != nil {
		t.Errorf("a failed Put disturbed an existing object: %v", err)
	}
}

func TestTempFilesIgnoredAndCleaned(t *testing.T) {
	s := openTemp(t)
	defer s.Close()
	ctx := context.Background()
	if err := s.Put(ctx, "t/obj", []byte("x")); err != nil {
		t.Fatal(err)
	}
	oldTemp := filepath.Join(s.root, "t", TempPrefix+"old")
	newTemp := filepath.Join(s.root, TempPrefix+"new")
	for _, p := range []string{oldTemp, newTemp} {
		if err := os.WriteFile(p, []byte("partial"), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	past := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(oldTemp, past, past); err != nil {
		t.Fatal(err)
	}

	var keys []string
	err := s.List(ctx, "", func(o blob.Object) bool { keys = append(keys, o.Key); return true })
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0] != "t/obj" {
		t.Fatalf("List = %q, want only t/obj", keys)
	}

	n, err := s.CleanTemp(ctx, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("CleanTemp removed %d files, want 1", n)
	}
	if _, err := os.Stat(oldTemp); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("old temporary file still there: %v", err)
	}
	if _, err := os.Stat(newTemp); err != nil {
		t.Errorf("recent temporary file, possibly of a running Put, was removed: %v", err)
	}
	if _, err := s.Get(ctx, "t/obj"); err != nil {
		t.Errorf("CleanTemp removed an object: %v", err)
	}
}

func TestClosed(t *testing.T) {
	s := openTemp(t)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Put(ctx, "k", nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Put after Close = %v, want ErrClosed", err)
	}
	if _, err := s.Get(ctx, "k"); !errors.Is(err, ErrClosed) {
		t.Errorf("Get after Close = %v, want ErrClosed", err)
	}
}

func TestOpenRejectsFileAsRoot(t *testing.T) {
	path := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(path, nil, 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path, Options{Logger: quietLogger()}); err == nil {
		t.Fatalf("Open of a regular file succeeded")
	}
}

func TestOpenRejectsReadOnlyRoot(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root ignores directory permissions")
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(dir, 0o700)
	if _, err := Open(dir, Options{Logger: quietLogger()}); err == nil {
		t.Fatalf("Open of a read-only directory succeeded")
	}
}

// FuzzCheckKey checks that every accepted key names a file strictly inside
// the root and maps back to itself, so that no key can reach another file.
func FuzzCheckKey(f *testing.F) {
	for _, k := range []string{"a", "a/b", "../x", "a/../b", "/a", "a//b", ".", "a/.", TempPrefix + "x", "a\x00"} {
		f.Add(k)
	}
	s := &Store{root: "/r"}
	f.Fuzz(func(t *testing.T, key string) {
		if checkKey(key) != nil {
			return
		}
		p := s.path(key)
		rel, err := filepath.Rel(s.root, p)
		if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, "../") || filepath.IsAbs(rel) {
			t.Fatalf("accepted key %q maps to %q, outside the root", key, p)
		}
		if back := filepath.ToSlash(rel); back != key {
			t.Fatalf("key %q maps to %q, which lists as %q", key, p, back)
		}
		if strings.HasPrefix(filepath.Base(p), TempPrefix) {
			t.Fatalf("accepted key %q has a temporary file name", key)
		}
	})
}

func BenchmarkStore(b *testing.B) {
	blobtest.Bench(b, func(b *testing.B) blob.Store { return openTemp(b) })
}

// TestPutPartsDirect stores objects of the sizes and memory alignments that
// take each write path (page cache, direct from the caller's memory,
// gathered into an aligned buffer), with and without O_DIRECT: every one
// reads back exactly.
func TestPutPartsDirect(t *testing.T) {
	big := make([]byte, 4<<20+2*directAlign)
	for i := range big {
		big[i] = byte(i*7 + i>>12)
	}
	// big's start is aligned (a large allocation); one byte in is not.
	trailer := []byte("trailer bytes after the data")
	for _, buffered := range []bool{false, true} {
		s, err := Open(t.TempDir(), Options{BufferedWrites: buffered})
		if err != nil {
			t.Fatal(err)
		}
		for _, tt := range []struct {
			name  string
			parts [][]byte
		}{
			{"small", [][]byte{big[:directMin-1]}},
			{"aligned whole pages", [][]byte{big[:directMin]}},
			{"aligned with a tail", [][]byte{big[:directMin+100], trailer}},
			{"aligned block and header", [][]byte{big[:4<<20], trailer}},
			{"misaligned", [][]byte{big[1 : 4<<20+1], trailer}},
			{"short first part", [][]byte{big[:100], big[100 : directMin+5000]}},
			{"larger than the pool", [][]byte{big[1:], trailer}},
		} {
			var want []byte
			for _, p := range tt.parts {
				want = append(want, p...)
			}
			key := fmt.Sprintf("d/%v/%s", buffered, strings.ReplaceAll(tt.name, " ", "-"))
			if err := s.PutParts(context.Background(), key, tt.parts...); err != nil {
				t.Fatalf("buffered=%v %s: %v", buffered, tt.name, err)
			}
			got, err := s.Get(context.Background(), key)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("buffered=%v %s: read back %d bytes (want %d), equal %v, %v", buffered, tt.name, len(got), len(want), bytes.Equal(got, want), err)
			}
		}
		s.Close()
	}
}
