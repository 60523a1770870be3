package data

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestWriteReadSlice(t *testing.T) {
	ctx := context.Background()
	sizes := []int{0, 1, SegmentSize - 1, SegmentSize + 1, BlockSize, BlockSize + 1, 3*BlockSize + 12345}
	for _, n := range sizes {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			store := newMemStore()
			b := NewBlocks(store, BlocksOptions{})
			id := uint64(1000 + n)
			data := randomBytes(uint64(n), n)
			if err := b.WriteSlice(ctx, id, data); err != nil {
				t.Fatalf("WriteSlice: %v", err)
			}
			if got, want := len(store.keys(BlockKeyPrefix)), numBlocks(uint32(n)); got != want {
				t.Errorf("stored %d blocks, want %d", got, want)
			}
			for i := 0; i < numBlocks(uint32(n)); i++ {
				if _, ok := store.objs[BlockKey(id, i, blockDataSize(uint32(n), i))]; !ok {
					t.Errorf("block %d is not under its key", i)
				}
			}
			ranges := [][2]int{{0, n}, {0, min(n, 1)}, {n / 3, n / 2}, {max(0, n-5), 5}, {n / 2, 0}}
			if n > BlockSize {
				ranges = append(ranges, [2]int{BlockSize - 7, 14}, [2]int{SegmentSize, 2 * BlockSize})
			}
			for _, r := range ranges {
				off, l := r[0], min(r[1], n-r[0])
				// Fresh Blocks so every range also exercises the uncached header path.
				for _, bl := range []*Blocks{NewBlocks(store, BlocksOptions{}), b} {
					p := make([]byte, l)
					if err := bl.ReadSlice(ctx, id, uint32(n), uint32(off), p); err != nil {
						t.Fatalf("ReadSlice(off %d, len %d): %v", off, l, err)
					}
					if !bytes.Equal(p, data[off:off+l]) {
						t.Fatalf("ReadSlice(off %d, len %d) returned other bytes", off, l)
					}
				}
			}
		})
	}
}

func TestReadSliceRejectsBadRanges(t *testing.T) {
	b := NewBlocks(newMemStore(), BlocksOptions{})
	ctx := context.Background()
	tests := []struct {
		name      string
		id        uint64
		size, off uint32
		n         int
	}{
		{"hole id", 0, 10, 0, 1},
		{"past size", 1, 10, 5, 6},
		{"size beyond chunk", 1, ChunkSize + 1, 0, 1},
	}
	for _, tt := range tests {
		if err := b.ReadSlice(ctx, tt.id, tt.size, tt.off, make([]byte, tt.n)); err == nil {
			t.Errorf("%s: ReadSlice succeeded, want an error", tt.name)
		}
	}
}

func TestWriteSliceRejects(t *testing.T) {
	b := NewBlocks(newMemStore(), BlocksOptions{})
	ctx := context.Background()
	if err := b.WriteSlice(ctx, 0, []byte("x")); err == nil {
		t.Error("WriteSlice with id 0 succeeded")
	}
	if err := b.WriteSlice(ctx, 1, make([]byte, ChunkSize+1)); err == nil {
		t.Error("WriteSlice of more than a chunk succeeded")
	}
}

func TestWriteSliceStoreFailure(t *testing.T) {
	store := newMemStore()
	store.putErr = errors.New("disk on fire")
	b := NewBlocks(store, BlocksOptions{Parallelism: 3})
	err := b.WriteSlice(context.Background(), 7, make([]byte, 5*BlockSize))
	if err == nil || !strings.Contains(err.Error(), "disk on fire") || !strings.Contains(err.Error(), "chunks/0/0/7_") {
		t.Errorf("err = %v, want the store error with the block key", err)
	}
}

func TestParallelismIsBounded(t *testing.T) {
	ctx := context.Background()
	for _, par := range []int{1, 2, 5} {
		store := newMemStore()
		b := NewBlocks(store, BlocksOptions{Parallelism: par})
		data := randomBytes(1, 16*BlockSize)
		if err := b.WriteSlice(ctx, 1, data); err != nil {
			t.Fatal(err)
		}
		if got := store.puts.Load(); got != 16 {
			t.Errorf("par %d: %d puts, want 16", par, got)
		}
		if err := b.ReadSlice(ctx, 1, uint32(len(data)), 0, make([]byte, len(data))); err != nil {
			t.Fatal(err)
		}
		// Reads may add one header request per block read in flight.
		if got := store.maxSeen.Load(); got > int64(2*par) {
			t.Errorf("par %d: %d requests in flight at once", par, got)
		}
	}
}

func TestHeaderCacheSavesRequests(t *testing.T) {
	ctx := context.Background()
	store := newMemStore()
	b := NewBlocks(store, BlocksOptions{})
	data := randomBytes(2, BlockSize)
	if err := b.WriteSlice(ctx, 3, data); err != nil {
		t.Fatal(err)
	}
	p := make([]byte, 1<<20)
	for i, want := range []int64{2, 1, 1, 1} {
		before := store.ranges.Load()
		if err := b.ReadSlice(ctx, 3, BlockSize, uint32(i)<<20, p); err != nil {
			t.Fatal(err)
		}
		if got := store.ranges.Load() - before; got != want {
			t.Errorf("read %d took %d GetRange calls, want %d", i, got, want)
		}
		if !bytes.Equal(p, data[i<<20:(i+1)<<20]) {
			t.Fatalf("read %d returned other bytes", i)
		}
	}
	nocache := NewBlocks(store, BlocksOptions{HeaderCacheEntries: -1})
	for i := 0; i < 2; i++ {
		before := store.ranges.Load()
		if err := nocache.ReadSlice(ctx, 3, BlockSize, 0, p); err != nil {
			t.Fatal(err)
		}
		if got := store.ranges.Load() - before; got != 2 {
			t.Errorf("uncached read %d took %d GetRange calls, want 2", i, got)
		}
	}
}

func TestReadChunk(t *testing.T) {
	ctx := context.Background()
	store := newMemStore()
	b := NewBlocks(store, BlocksOptions{})
	// Slices of several blocks, overlapping, with holes, one ending at the
	// chunk end; the model is a byte array of the region they touch.
	type write struct {
		id       uint64
		pos, len uint32
		off      uint32 // reference starts this far into the slice data
	}
	const base = ChunkSize - 12*BlockSize
	writes := []write{
		{1, base, 10 * BlockSize, 0},
		{2, base + BlockSize/2, 2*BlockSize + 3, 0},
		{3, base + 5*BlockSize + 17, SegmentSize, 100},
		{0, base + 7*BlockSize, 1000, 0}, // punched hole
		{4, ChunkSize - BlockSize - 5, BlockSize + 5, 0},
		{5, 3, 10, 2},
		// Inline slices, kept by the caller: one over block data, one
		// partly covered by a later block slice.
		{InlineID(6), base + 2*BlockSize + 11, 300, 5},
		{InlineID(7), base + 9*BlockSize - 100, 4000, 0},
		{8, base + 9*BlockSize, 1000, 0},
	}
	inline := map[uint64][]byte{}
	model := make([]byte, ChunkSize-base)
	var refs []Slice
	lowModel := make([]byte, 64)
	for _, w := range writes {
		if w.id == 0 {
			refs = append(refs, hole(w.pos, w.len))
			clear(model[w.pos-base : w.pos-base+w.len])
			continue
		}
		data := randomBytes(w.id, int(w.off+w.len))
		if IsInline(w.id) {
			inline[w.id] = data
		} else if err := b.WriteSlice(ctx, w.id, data); err != nil {
			t.Fatal(err)
		}
		refs = append(refs, Slice{ID: w.id, Size: uint32(len(data)), Pos: w.pos, Off: w.off, Len: w.len})
		if w.pos >= base {
			copy(model[w.pos-base:], data[w.off:])
		} else {
			copy(lowModel[w.pos:], data[w.off:])
		}
	}
	// Round trip the map as the core would.
	refs, err := DecodeSlices(AppendSlices(nil, refs))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		pos  uint32
		n    int
	}{
		{"whole written region", base, ChunkSize - base},
		{"1 MiB aligned", base + 3<<20, 1 << 20},
		{"unaligned across slices", base + BlockSize/2 - 5, BlockSize},
		{"across the punched hole", base + 7*BlockSize - 10, 2000},
		{"small inside a segment", base + 5*BlockSize + 20, 7},
		{"last byte of the chunk", ChunkSize - 1, 1},
		{"inside an inline slice", base + 2*BlockSize + 20, 100},
		{"inline slice under a block slice", base + 9*BlockSize - 200, 2000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := bytes.Repeat([]byte{0xaa}, tt.n)
			if err := b.ReadChunk(ctx, refs, tt.pos, p, inline); err != nil {
				t.Fatalf("ReadChunk: %v", err)
			}
			want := model[tt.pos-base : int(tt.pos-base)+tt.n]
			if i := firstDiff(p, want); i >= 0 {
				t.Fatalf("ReadChunk(%d, %d): byte %d is %#x, want %#x", tt.pos, tt.n, i, p[i], want[i])
			}
		})
	}
	t.Run("low region with unwritten gap", func(t *testing.T) {
		p := bytes.Repeat([]byte{0xaa}, len(lowModel))
		if err := b.ReadChunk(ctx, refs, 0, p, inline); err != nil {
			t.Fatal(err)
		}
		if i := firstDiff(p, lowModel); i >= 0 {
			t.Fatalf("byte %d is %#x, want %#x", i, p[i], lowModel[i])
		}
	})
	t.Run("past the chunk end reads zeros", func(t *testing.T) {
		p := bytes.Repeat([]byte{0xaa}, 100)
		if err := b.ReadChunk(ctx, refs, ChunkSize-50, p, inline); err != nil {
			t.Fatal(err)
		}
		if i := firstDiff(p[:50], model[len(model)-50:]); i >= 0 {
			t.Fatalf("byte %d differs", i)
		}
		if i := firstDiff(p[50:], make([]byte, 50)); i >= 0 {
			t.Fatalf("byte %d past the chunk end is %#x, want 0", 50+i, p[50+i])
		}
	})
	t.Run("inline data missing is an error", func(t *testing.T) {
		p := make([]byte, 10)
		if err := b.ReadChunk(ctx, refs, base+2*BlockSize+20, p, nil); err == nil {
			t.Fatal("read of an inline slice without its data succeeded")
		}
	})
	if ids := InlineIDs(nil, refs, base, ChunkSize-base); len(ids) != 2 {
		t.Fatalf("InlineIDs over the whole region: %#x, want the two inline slices", ids)
	}
	if ids := InlineIDs(nil, refs, base, BlockSize); len(ids) != 0 {
		t.Fatalf("InlineIDs over a region without inline slices: %#x", ids)
	}
}

func firstDiff(a, b []byte) int {
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}

// TestCorruptStoredBlock flips bytes of a stored block: a read covering the
// damage fails with ErrChecksum naming the block, and never returns the
// bytes; a read of other segments still succeeds when the header is intact.
func TestCorruptStoredBlock(t *testing.T) {
	ctx := context.Background()
	const size = 2*SegmentSize + 100
	data := randomBytes(11, size)
	hl := blockHeaderLen(size)
	key := BlockKey(1, 0, size)
	tests := []struct {
		name         string
		at           int  // object byte to flip
		otherSegRead bool // whether a read of segment 2 must still succeed
	}{
		{"magic", size, false},
		{"version", size + 4, false},
		{"reserved", size + 6, false},
		{"segment 0 checksum", size + blockPrefixLen + 1, false}, // header checksum covers it
		{"header checksum", size + hl - 1, false},
		{"first data byte", 0, true},
		{"last byte of segment 0", SegmentSize - 1, true},
		{"middle of segment 1", SegmentSize + 500, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := newMemStore()
			if err := NewBlocks(store, BlocksOptions{}).WriteSlice(ctx, 1, data); err != nil {
				t.Fatal(err)
			}
			store.mutate(key, func(b []byte) []byte { b[tt.at] ^= 0x10; return b })
			b := NewBlocks(store, BlocksOptions{})
			p := bytes.Repeat([]byte{0xaa}, size)
			err := b.ReadSlice(ctx, 1, size, 0, p)
			if !errors.Is(err, ErrChecksum) || !strings.Contains(err.Error(), key) {
				t.Fatalf("whole read: err = %v, want ErrChecksum naming %s", err, key)
			}
			for i, c := range p {
				if c != 0 && c != 0xaa {
					t.Fatalf("after a failed read, the buffer holds block bytes (at %d)", i)
				}
			}
			// A small read of just the damaged byte's segment fails too.
			if tt.at >= hl {
				at := uint32(tt.at - hl)
				if err := b.ReadSlice(ctx, 1, size, at, make([]byte, 1)); !errors.Is(err, ErrChecksum) {
					t.Errorf("1-byte read at %d: err = %v, want ErrChecksum", at, err)
				}
			}
			q := make([]byte, 50)
			err = b.ReadSlice(ctx, 1, size, 2*SegmentSize+10, q)
			if tt.otherSegRead && (err != nil || !bytes.Equal(q, data[2*SegmentSize+10:][:50])) {
				t.Errorf("read of an intact segment: err = %v", err)
			}
			if !tt.otherSegRead && !errors.Is(err, ErrChecksum) {
				t.Errorf("read with a damaged header: err = %v, want ErrChecksum", err)
			}
			if err := b.ReadChunk(ctx, []Slice{whole(1, size, 0)}, 0, p, nil); !errors.Is(err, ErrChecksum) {
				t.Errorf("ReadChunk: err = %v, want ErrChecksum", err)
			}
			if err := b.VerifySlice(ctx, 1, size); !errors.Is(err, ErrChecksum) {
				t.Errorf("VerifySlice: err = %v, want ErrChecksum", err)
			}
		})
	}
}

func TestTruncatedOrSwappedBlock(t *testing.T) {
	ctx := context.Background()
	const size = BlockSize + 100
	store := newMemStore()
	w := NewBlocks(store, BlocksOptions{})
	if err := w.WriteSlice(ctx, 1, randomBytes(1, size)); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteSlice(ctx, 2, randomBytes(2, size)); err != nil {
		t.Fatal(err)
	}
	tail := BlockKey(1, 1, 100)
	store.mutate(tail, func(b []byte) []byte { return b[:len(b)-1] })
	b := NewBlocks(store, BlocksOptions{})
	if err := b.ReadSlice(ctx, 1, size, BlockSize+90, make([]byte, 10)); !errors.Is(err, ErrChecksum) {
		t.Errorf("read of a truncated block: err = %v, want ErrChecksum", err)
	}
	if err := b.VerifySlice(ctx, 1, size); !errors.Is(err, ErrChecksum) {
		t.Errorf("verify of a truncated block: err = %v, want ErrChecksum", err)
	}
	// Slice 2's first block stored under slice 1's key: same size, valid
	// format, wrong identity.
	store.mutate(BlockKey(1, 0, BlockSize), func([]byte) []byte { return bytes.Clone(store.objs[BlockKey(2, 0, BlockSize)]) })
	if err := b.ReadSlice(ctx, 1, size, 0, make([]byte, 10)); !errors.Is(err, ErrChecksum) {
		t.Errorf("read of a block stored under the wrong key: err = %v, want ErrChecksum", err)
	}
}

func TestMissingBlock(t *testing.T) {
	ctx := context.Background()
	const size = 2*BlockSize + 1
	store := newMemStore()
	b := NewBlocks(store, BlocksOptions{})
	if err := b.WriteSlice(ctx, 5, randomBytes(5, size)); err != nil {
		t.Fatal(err)
	}
	key := BlockKey(5, 1, BlockSize)
	if err := store.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	err := NewBlocks(store, BlocksOptions{}).ReadSlice(ctx, 5, size, BlockSize+5, make([]byte, 10))
	if !errors.Is(err, ErrMissingBlock) || !strings.Contains(err.Error(), key) {
		t.Errorf("read: err = %v, want ErrMissingBlock naming %s", err, key)
	}
	// With the header cached the data request notices the loss.
	err = b.ReadSlice(ctx, 5, size, BlockSize+5, make([]byte, 10))
	if !errors.Is(err, ErrMissingBlock) {
		t.Errorf("read with cached header: err = %v, want ErrMissingBlock", err)
	}
	if err := b.ReadSlice(ctx, 5, size, 0, make([]byte, 10)); err != nil {
		t.Errorf("read of a present block: %v", err)
	}
}

func TestVerifySlice(t *testing.T) {
	ctx := context.Background()
	const size = 3*BlockSize + 7
	store := newMemStore()
	b := NewBlocks(store, BlocksOptions{})
	if err := b.WriteSlice(ctx, 8, randomBytes(8, size)); err != nil {
		t.Fatal(err)
	}
	if err := b.VerifySlice(ctx, 8, size); err != nil {
		t.Fatalf("VerifySlice of an intact slice: %v", err)
	}
	bad := BlockKey(8, 2, BlockSize)
	store.mutate(bad, func(p []byte) []byte { p[len(p)/2] ^= 1; return p })
	gone := BlockKey(8, 0, BlockSize)
	if err := store.Delete(ctx, gone); err != nil {
		t.Fatal(err)
	}
	long := BlockKey(8, 3, 7)
	store.mutate(long, func(p []byte) []byte { return append(p, 0) })
	err := b.VerifySlice(ctx, 8, size)
	if !errors.Is(err, ErrChecksum) || !errors.Is(err, ErrMissingBlock) {
		t.Fatalf("err = %v, want both ErrChecksum and ErrMissingBlock", err)
	}
	for _, key := range []string{bad, gone, long} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("error does not name %s: %v", key, err)
		}
	}
	if strings.Contains(err.Error(), BlockKey(8, 1, BlockSize)) {
		t.Errorf("error names the intact block: %v", err)
	}
}

func TestDeleteSlice(t *testing.T) {
	ctx := context.Background()
	store := newMemStore()
	b := NewBlocks(store, BlocksOptions{})
	const size = 2*BlockSize + 3
	for _, id := range []uint64{1, 2} {
		if err := b.WriteSlice(ctx, id, randomBytes(id, size)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.ReadSlice(ctx, 1, size, 0, make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	if err := b.DeleteSlice(ctx, 1, size); err != nil {
		t.Fatalf("DeleteSlice: %v", err)
	}
	for _, key := range store.keys(BlockKeyPrefix) {
		if id, _, _, ok := ParseBlockKey(key); !ok || id != 2 {
			t.Errorf("key %s left after deleting slice 1", key)
		}
	}
	if got := len(store.keys(BlockKeyPrefix)); got != 3 {
		t.Errorf("%d blocks of slice 2 remain, want 3", got)
	}
	if err := b.DeleteSlice(ctx, 1, size); err != nil {
		t.Errorf("deleting again: %v", err)
	}
	if err := b.ReadSlice(ctx, 1, size, 0, make([]byte, 10)); !errors.Is(err, ErrMissingBlock) {
		t.Errorf("read after delete: err = %v, want ErrMissingBlock", err)
	}
}

func TestCancelledContext(t *testing.T) {
	store := newMemStore()
	b := NewBlocks(store, BlocksOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.WriteSlice(ctx, 1, make([]byte, 3*BlockSize)); !errors.Is(err, context.Canceled) {
		t.Errorf("WriteSlice: err = %v, want context.Canceled", err)
	}
	if err := b.ReadSlice(ctx, 1, 3*BlockSize, 0, make([]byte, 3*BlockSize)); !errors.Is(err, context.Canceled) {
		t.Errorf("ReadSlice: err = %v, want context.Canceled", err)
	}
}

// TestReadVersion2Blocks: blocks stored by releases that wrote format
// version 2 (64 KiB segments) are read at any offset, with and without
// their header cached, and a corrupt one is still caught.
func TestReadVersion2Blocks(t *testing.T) {
	ctx := context.Background()
	const id = 4242
	data := randomBytes(9, BlockSize+100_000)
	store := newMemStore()
	for i := 0; i < 2; i++ {
		part := data[i*BlockSize : min((i+1)*BlockSize, len(data))]
		obj := documentedBlock(2, 64<<10, id, i, part)
		if err := store.Put(ctx, BlockKey(id, i, uint32(len(part))), obj); err != nil {
			t.Fatal(err)
		}
	}
	b := NewBlocks(store, BlocksOptions{})
	for _, r := range []struct{ off, n int }{
		{0, 4096}, {70_000, 4096}, {65_536, 65_536}, {BlockSize - 10, 5000}, {0, len(data)}, {BlockSize + 99_000, 1000}, {70_000, 4096},
	} {
		p := make([]byte, r.n)
		if err := b.ReadSlice(ctx, id, uint32(len(data)), uint32(r.off), p); err != nil {
			t.Fatalf("read [%d, +%d): %v", r.off, r.n, err)
		}
		if !bytes.Equal(p, data[r.off:r.off+r.n]) {
			t.Fatalf("read [%d, +%d): wrong bytes", r.off, r.n)
		}
	}
	key := BlockKey(id, 0, BlockSize)
	store.mu.Lock()
	store.objs[key][200_000] ^= 1
	store.mu.Unlock()
	for _, bl := range []*Blocks{b, NewBlocks(store, BlocksOptions{})} {
		p := make([]byte, 4096)
		if err := bl.ReadSlice(ctx, id, uint32(len(data)), 199_000, p); !errors.Is(err, ErrChecksum) {
			t.Fatalf("read of a corrupt version 2 segment: err %v, want ErrChecksum", err)
		}
	}
}
