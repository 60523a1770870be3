package data

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/claudefs/cfs-gateway/internal/engine/blob"
	"github.com/claudefs/cfs-gateway/internal/engine/blob/localblob"
)

func openLocal(t *testing.T) (*localblob.Store, string) {
	t.Helper()
	dir := t.TempDir()
	s, err := localblob.Open(dir, localblob.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, dir
}

// TestLocalEngine runs the whole path on the real local engine: write,
// read through a chunk map, list the blocks, corrupt and remove files on
// disk, verify, delete.
func TestLocalEngine(t *testing.T) {
	ctx := context.Background()
	store, dir := openLocal(t)
	b := NewBlocks(store, BlocksOptions{})
	const size = BlockSize + 3*SegmentSize + 9
	data := randomBytes(21, size)
	if err := b.WriteSlice(ctx, 123456789, data); err != nil {
		t.Fatalf("WriteSlice: %v", err)
	}
	refs := []Slice{whole(123456789, size, 10)}
	p := make([]byte, size+20)
	if err := b.ReadChunk(ctx, refs, 0, p, nil); err != nil {
		t.Fatalf("ReadChunk: %v", err)
	}
	want := append(append(make([]byte, 10), data...), make([]byte, 10)...)
	if !bytes.Equal(p, want) {
		t.Fatal("ReadChunk returned other bytes")
	}

	var listed []string
	if err := store.List(ctx, BlockKeyPrefix, func(o blob.Object) bool {
		listed = append(listed, o.Key)
		if id, _, n, ok := ParseBlockKey(o.Key); !ok || id != 123456789 || o.Size != int64(blockHeaderLen(n))+int64(n) {
			t.Errorf("listed %q of %d bytes: not a block of the slice, or of the wrong size", o.Key, o.Size)
		}
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if len(listed) != 2 {
		t.Errorf("listed %v, want the slice's 2 blocks", listed)
	}

	// Flip one data byte of the second block in its file.
	key := BlockKey(123456789, 1, size-BlockSize)
	path := filepath.Join(dir, filepath.FromSlash(key))
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	at := blockHeaderLen(size-BlockSize) + 2*SegmentSize + 1
	raw[at] ^= 0x04
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	fresh := NewBlocks(store, BlocksOptions{})
	err = fresh.ReadChunk(ctx, refs, 10+BlockSize+2*SegmentSize, make([]byte, 100), nil)
	if !errors.Is(err, ErrChecksum) || !strings.Contains(err.Error(), key) {
		t.Errorf("read over the flipped byte: err = %v, want ErrChecksum naming %s", err, key)
	}
	if err := fresh.ReadChunk(ctx, refs, 10, make([]byte, BlockSize), nil); err != nil {
		t.Errorf("read of the intact first block: %v", err)
	}
	if err := fresh.VerifySlice(ctx, 123456789, size); !errors.Is(err, ErrChecksum) {
		t.Errorf("VerifySlice: err = %v, want ErrChecksum", err)
	}

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := fresh.VerifySlice(ctx, 123456789, size); !errors.Is(err, ErrMissingBlock) {
		t.Errorf("VerifySlice with a block gone: err = %v, want ErrMissingBlock", err)
	}
	if err := b.DeleteSlice(ctx, 123456789, size); err != nil {
		t.Fatalf("DeleteSlice: %v", err)
	}
	if err := store.List(ctx, BlockKeyPrefix, func(o blob.Object) bool {
		t.Errorf("%s remains after DeleteSlice", o.Key)
		return true
	}); err != nil {
		t.Fatal(err)
	}
}
