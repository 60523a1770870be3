package data

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/claudefs/cfs-gateway/internal/engine/blob"
)

// BlocksOptions tunes Blocks.
type BlocksOptions struct {
	// Parallelism is the number of concurrent blob requests one call may
	// have in flight (plus, on a header cache miss, one small header read
	// per block read). Default 4.
	Parallelism int
	// HeaderCacheEntries bounds the cache of verified block headers (at
	// most 4 KiB each). Default 2048, the headers of 8 GiB of data;
	// negative disables the cache.
	HeaderCacheEntries int
}

// Blocks reads and writes slices as blocks in a blob store. It is safe for
// concurrent use.
type Blocks struct {
	store   blob.Store
	par     int
	headers *headerCache
}

// NewBlocks returns block I/O over store.
func NewBlocks(store blob.Store, opts BlocksOptions) *Blocks {
	par := opts.Parallelism
	if par <= 0 {
		par = 4
	}
	entries := opts.HeaderCacheEntries
	if entries == 0 {
		entries = 2048
	}
	return &Blocks{store: store, par: par, headers: newHeaderCache(entries)}
}

// WriteSlice stores data (at most ChunkSize bytes) as slice id: blocks of
// at most BlockSize, each with checksums, written in parallel; durable
// when it returns nil. An empty slice has no blocks. data is not retained.
// On error some blocks may be stored: the caller deletes them with
// DeleteSlice or leaves them to the garbage collector, and must not
// reference the slice.
func (b *Blocks) WriteSlice(ctx context.Context, id uint64, data []byte) error {
	if id == 0 {
		return errors.New("data: write slice: id 0 is reserved for holes (allocate a slice id first)")
	}
	if len(data) > ChunkSize {
		return fmt.Errorf("data: write slice %d: %d bytes exceed the chunk size %d (split the write at chunk boundaries)", id, len(data), ChunkSize)
	}
	size := uint32(len(data))
	return b.run(ctx, numBlocks(size), func(ctx context.Context, i int) error {
		part := data[i*BlockSize : i*BlockSize+int(blockDataSize(size, i))]
		key := BlockKey(id, i, uint32(len(part)))
		if pp, ok := b.store.(blob.PartsPutter); ok {
			// The engine writes header and data from where they lie: the
			// data is not copied at all.
			var hdr [maxBlockHeaderLen]byte
			h := hdr[:blockHeaderLen(uint32(len(part)))]
			encodeHeader(h, id, i, part)
			if err := pp.PutParts(ctx, key, part, h); err != nil {
				return fmt.Errorf("data: write block %s: %w", key, err)
			}
			return nil
		}
		buf := getBuffer(len(part) + blockHeaderLen(uint32(len(part))))
		obj := encodeBlock(*buf, id, i, part)
		if err := b.store.Put(ctx, key, obj); err != nil {
			// The buffer is dropped, not pooled: an engine may still be
			// reading a failed request's body.
			return fmt.Errorf("data: write block %s: %w", key, err)
		}
		putBuffer(buf)
		return nil
	})
}

// blockRead is the part of one block a read needs.
type blockRead struct {
	id    uint64
	index int
	n     uint32 // block data size
	off   uint32 // offset in the block's data
	p     []byte
}

// appendBlockReads splits a read of slice bytes [off, off+len(p)) into
// per-block reads.
func appendBlockReads(reads []blockRead, id uint64, size, off uint32, p []byte) []blockRead {
	for len(p) > 0 {
		index := int(off / BlockSize)
		boff := off % BlockSize
		n := blockDataSize(size, index)
		m := min(len(p), int(n-boff))
		reads = append(reads, blockRead{id: id, index: index, n: n, off: boff, p: p[:m]})
		p = p[m:]
		off += uint32(m)
	}
	return reads
}

func checkSliceRange(id uint64, size, off uint32, n int) error {
	if id == 0 {
		return errors.New("data: read slice: id 0 is a hole and has no blocks")
	}
	if size > ChunkSize {
		return fmt.Errorf("data: read slice %d: size %d exceeds the chunk size %d (corrupt chunk map?)", id, size, ChunkSize)
	}
	if uint64(off)+uint64(n) > uint64(size) {
		return fmt.Errorf("data: read slice %d: range [%d, %d) is beyond its size %d (corrupt chunk map?)", id, off, uint64(off)+uint64(n), size)
	}
	return nil
}

// ReadSlice reads len(p) bytes of slice id (whose total size is size) at
// off, verifying checksums. On error the contents of p are unspecified,
// but never unverified block bytes.
func (b *Blocks) ReadSlice(ctx context.Context, id uint64, size, off uint32, p []byte) error {
	if err := checkSliceRange(id, size, off, len(p)); err != nil {
		return err
	}
	var arr [4]blockRead
	reads := appendBlockReads(arr[:0], id, size, off, p)
	return b.run(ctx, len(reads), func(ctx context.Context, i int) error {
		return b.readBlock(ctx, reads[i])
	})
}

// InlineIDs appends the ids of the inline slices that a read of n bytes at
// pos of a chunk with this map needs, for the caller to fetch their data.
func InlineIDs(ids []uint64, chunk []Slice, pos, n uint32) []uint64 {
	for _, pc := range Resolve(chunk, pos, n) {
		if IsInline(pc.ID) && !slices.Contains(ids, pc.ID) {
			ids = append(ids, pc.ID)
		}
	}
	return ids
}

// ReadChunk fills p with the chunk's content at pos given its chunk map:
// resolved pieces read in parallel, holes zeroed, pieces of inline slices
// copied from inline (their data by id, read by the caller from the
// metadata store with the map). Bytes of p past the end of the chunk are
// zeroed. On error the contents of p are unspecified, but never unverified
// block bytes.
func (b *Blocks) ReadChunk(ctx context.Context, slices []Slice, pos uint32, p []byte, inline map[uint64][]byte) error {
	pieces := Resolve(slices, pos, uint32(min(len(p), ChunkSize)))
	var arr [4]blockRead
	reads := arr[:0]
	covered := 0
	for _, pc := range pieces {
		dst := p[pc.Pos-pos : pc.Pos-pos+pc.Len]
		covered = int(pc.Pos-pos) + int(pc.Len)
		if pc.ID == 0 {
			clear(dst)
			continue
		}
		if err := checkSliceRange(pc.ID, pc.Size, pc.Off, len(dst)); err != nil {
			return err
		}
		if IsInline(pc.ID) {
			d := inline[pc.ID]
			if len(d) != int(pc.Size) {
				return fmt.Errorf("data: inline slice %#x: %d bytes of data found, its reference says %d; run fsck", pc.ID, len(d), pc.Size)
			}
			copy(dst, d[pc.Off:])
			continue
		}
		reads = appendBlockReads(reads, pc.ID, pc.Size, pc.Off, dst)
	}
	clear(p[covered:])
	return b.run(ctx, len(reads), func(ctx context.Context, i int) error {
		return b.readBlock(ctx, reads[i])
	})
}

// readBlock reads r.p from block data bytes [r.off, r.off+len(r.p)),
// reading and verifying the whole segments that cover them. On error r.p
// holds no unverified bytes, even when the data was read straight into it.
func (b *Blocks) readBlock(ctx context.Context, r blockRead) error {
	err := b.readBlockInto(ctx, r)
	if err != nil {
		clear(r.p)
	}
	return err
}

func (b *Blocks) readBlockInto(ctx context.Context, r blockRead) error {
	key := BlockKey(r.id, r.index, r.n)
	ref := headerRef{id: r.id, index: uint32(r.index), n: r.n}
	hdr := b.headers.get(ref)
	fetched := hdr == nil
	// Without the header, the block is taken to be of the current
	// format, and header and data are fetched at once; a block of an
	// older format then has its data fetched again.
	version := byte(blockVersion)
	if !fetched {
		version = hdr[4]
	}
	sp := newSegSpan(r, segmentSize(version))
	var hdrErr error
	var wg sync.WaitGroup
	if fetched {
		hdr = make([]byte, blockHeaderLen(r.n))
		wg.Go(func() {
			// An older header is shorter: the object ends before the
			// buffer does, and the header check judges the length.
			var n int
			n, hdrErr = b.store.GetRange(ctx, key, int64(r.n), hdr)
			hdr = hdr[:n]
			if hdrErr != nil && errors.Is(hdrErr, io.EOF) {
				hdrErr = nil
			}
			if hdrErr != nil {
				hdrErr = b.blockError(key, int64(r.n), hdrErr)
			}
		})
	}
	dataErr := b.getExact(ctx, key, int64(sp.start), sp.dst)
	wg.Wait()
	defer sp.release()
	if hdrErr != nil {
		return hdrErr
	}
	if fetched {
		if err := checkBlockHeader(key, hdr, r.id, r.index, r.n); err != nil {
			return err
		}
		b.headers.add(ref, hdr)
		if hdr[4] != version {
			sp.release()
			sp = newSegSpan(r, segmentSize(hdr[4]))
			dataErr = b.getExact(ctx, key, int64(sp.start), sp.dst)
		}
	}
	if dataErr != nil {
		return dataErr
	}
	if err := checkSegments(key, hdr, blockIdentity(r.id, r.index, r.n), sp.first, sp.dst); err != nil {
		return err
	}
	if sp.scratch != nil {
		copy(r.p, sp.dst[r.off-sp.start:])
	}
	return nil
}

// segSpan is the run of whole segments that covers a block read.
type segSpan struct {
	first      int    // its first segment
	start, end uint32 // its block data bytes
	// dst receives the span: the read's own buffer when the read is
	// segment-aligned, else scratch.
	dst     []byte
	scratch *[]byte
}

func newSegSpan(r blockRead, seg uint32) segSpan {
	first := r.off / seg
	sp := segSpan{
		first: int(first),
		start: first * seg,
		end:   min((r.off+uint32(len(r.p))+seg-1)/seg*seg, r.n),
		dst:   r.p,
	}
	if r.off != sp.start || r.off+uint32(len(r.p)) != sp.end {
		sp.scratch = getBuffer(int(sp.end - sp.start))
		sp.dst = *sp.scratch
	}
	return sp
}

func (sp *segSpan) release() {
	if sp.scratch != nil {
		putBuffer(sp.scratch)
		sp.scratch = nil
	}
}

// getExact reads exactly len(p) bytes of key at off. A missing object is
// ErrMissingBlock; a short one is ErrChecksum (the block is truncated).
func (b *Blocks) getExact(ctx context.Context, key string, off int64, p []byte) error {
	n, err := b.store.GetRange(ctx, key, off, p)
	if err != nil && !errors.Is(err, io.EOF) {
		return b.blockError(key, off, err)
	}
	if n < len(p) {
		return fmt.Errorf("data: read block %s: object ends at %d, before byte %d: %w (truncated block; run fsck)", key, off+int64(n), off+int64(len(p)), ErrChecksum)
	}
	return nil
}

// blockError describes a failed read of key at off.
func (b *Blocks) blockError(key string, off int64, err error) error {
	if errors.Is(err, blob.ErrNotFound) {
		return fmt.Errorf("data: read block %s: %w (the metadata references a block the store lacks; run fsck)", key, ErrMissingBlock)
	}
	return fmt.Errorf("data: read block %s at %d: %w", key, off, err)
}

// DeleteSlice deletes the blocks of slice id (of size bytes). Blocks that
// are already gone are not an error.
func (b *Blocks) DeleteSlice(ctx context.Context, id uint64, size uint32) error {
	if id == 0 || size > ChunkSize {
		return fmt.Errorf("data: delete slice %d of size %d: not a valid slice", id, size)
	}
	nb := numBlocks(size)
	for i := 0; i < nb; i++ {
		b.headers.remove(headerRef{id: id, index: uint32(i), n: blockDataSize(size, i)})
	}
	return b.run(ctx, nb, func(ctx context.Context, i int) error {
		key := BlockKey(id, i, blockDataSize(size, i))
		if err := b.store.Delete(ctx, key); err != nil && !errors.Is(err, blob.ErrNotFound) {
			return fmt.Errorf("data: delete block %s: %w", key, err)
		}
		return nil
	})
}

// VerifySlice reads every block of the slice whole and checks every
// checksum and the exact object length (for fsck). It checks all blocks
// and returns all their errors joined, each wrapping ErrChecksum or
// ErrMissingBlock with its key, or a store error.
func (b *Blocks) VerifySlice(ctx context.Context, id uint64, size uint32) error {
	if id == 0 || size > ChunkSize {
		return fmt.Errorf("data: verify slice %d of size %d: not a valid slice", id, size)
	}
	nb := numBlocks(size)
	errs := make([]error, nb)
	err := b.run(ctx, nb, func(ctx context.Context, i int) error {
		n := blockDataSize(size, i)
		key := BlockKey(id, i, n)
		want := blockHeaderLen(n) + int(n)
		// One byte more than the block needs reveals an overlong object.
		buf := getBuffer(want + 1)
		defer putBuffer(buf)
		got, err := b.store.GetRange(ctx, key, 0, *buf)
		switch {
		case errors.Is(err, blob.ErrNotFound):
			errs[i] = fmt.Errorf("data: verify block %s: %w", key, ErrMissingBlock)
		case err != nil && !errors.Is(err, io.EOF):
			return fmt.Errorf("data: verify block %s: %w", key, err)
		default:
			_, errs[i] = DecodeBlock(id, i, n, (*buf)[:got])
		}
		return ctx.Err()
	})
	if err != nil {
		return err
	}
	return errors.Join(errs...)
}

// run calls fn for 0..n-1 with at most b.par calls at once, stopping at
// the first error, which it returns. One task runs on the caller's
// goroutine.
func (b *Blocks) run(ctx context.Context, n int, fn func(ctx context.Context, i int) error) error {
	if n == 0 {
		return nil
	}
	if n == 1 || b.par == 1 {
		for i := 0; i < n; i++ {
			if err := fn(ctx, i); err != nil {
				return err
			}
		}
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		next     atomic.Int64
		once     sync.Once
		firstErr error
		wg       sync.WaitGroup
	)
	fail := func(err error) {
		once.Do(func() { firstErr = err; cancel() })
	}
	work := func() {
		for {
			i := int(next.Add(1) - 1)
			if i >= n {
				return
			}
			if err := ctx.Err(); err != nil {
				fail(err)
				return
			}
			if err := fn(ctx, i); err != nil {
				fail(err)
				return
			}
		}
	}
	for w := 1; w < min(b.par, n); w++ {
		wg.Go(work)
	}
	work()
	wg.Wait()
	return firstErr
}

// Buffers for block objects and unaligned reads, pooled by size class so
// that small reads do not hold (or allocate) block-sized buffers.
var bufferClasses = [...]int{4 << 10, 64 << 10, 1 << 20, BlockSize + maxBlockHeaderLen + 1}

var bufferPools [len(bufferClasses)]sync.Pool

func bufferClass(n int) int {
	for c, size := range bufferClasses {
		if n <= size {
			return c
		}
	}
	return -1
}

// getBuffer returns a buffer of length n (at most a whole block object
// plus one byte) with unspecified contents.
func getBuffer(n int) *[]byte {
	c := bufferClass(n)
	if c < 0 {
		b := make([]byte, n)
		return &b
	}
	if v, ok := bufferPools[c].Get().(*[]byte); ok {
		*v = (*v)[:n]
		return v
	}
	b := make([]byte, n, bufferClasses[c])
	return &b
}

func putBuffer(b *[]byte) {
	c := bufferClass(cap(*b))
	if c >= 0 && cap(*b) == bufferClasses[c] {
		bufferPools[c].Put(b)
	}
}

// headerRef names one block; n is part of it because the header's
// checksum binds the data size.
type headerRef struct {
	id    uint64
	index uint32
	n     uint32
}

// headerCache holds verified headers of blocks. Blocks are immutable, so
// an entry never goes stale; a deleted slice's entries are removed only to
// free memory. When full, an arbitrary entry is evicted (map iteration
// order), which is cheap and good enough for sequential access patterns.
type headerCache struct {
	mu    sync.Mutex
	max   int
	items map[headerRef][]byte
}

func newHeaderCache(max int) *headerCache {
	if max < 0 {
		max = 0
	}
	return &headerCache{max: max, items: make(map[headerRef][]byte)}
}

func (c *headerCache) get(r headerRef) []byte {
	if c.max == 0 {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.items[r]
}

func (c *headerCache) add(r headerRef, hdr []byte) {
	if c.max == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.items) >= c.max {
		for k := range c.items {
			delete(c.items, k)
			break
		}
	}
	c.items[r] = hdr
}

func (c *headerCache) remove(r headerRef) {
	if c.max == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.items, r)
}
