package core

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"time"

	"github.com/claudefs/cfs-gateway/internal/core/lock"
	"github.com/claudefs/cfs-gateway/internal/core/quota"
	"github.com/claudefs/cfs-gateway/internal/data"
	"github.com/claudefs/cfs-gateway/internal/engine/kv"
	"github.com/claudefs/cfs-gateway/internal/meta"
)

// openFile is the write-back state of one regular file. Written data goes to
// buf. A flush detaches buf as a batch, stores its blocks and then links its
// slices into the file's chunk maps. Several batches may store their blocks
// at once, so that a sequential writer keeps the block store busy instead
// of waiting at the end of each batch, but they link strictly in the order
// they were detached: a later write must land on top of an earlier one.
//
// A batch that fails to store or link puts its data in failed, and every
// batch behind it fails too, in order, on top: failed then holds the
// unflushed data in write order, older than any batch still under way and
// than buf. The next flush that finds no batch under way takes failed and
// buf together. Readers see committed data overlaid with failed, then each
// batch from the oldest, then buf.
type openFile struct {
	mu      sync.Mutex
	buf     data.FileBuffer
	failed  data.FileBuffer
	batches []*flushBatch // oldest first
	// flushes counts completed batches; a reader that saw it change while
	// it read committed data reads again.
	flushes uint64
	// flushing counts the background flushers running; drained is
	// signalled after each of their flushes, with flushErr the last failure.
	flushing int
	drained  sync.Cond
	flushErr error
	// dropped is set when the file left fs.files; a writer that finds it
	// set looks the file up again.
	dropped bool
	// dirtySince is when buf became non-empty.
	dirtySince time.Time
	lastUse    time.Time
}

// flushBatch is buffered data detached for one flush.
type flushBatch struct {
	extents []data.Extent
	recycle func() // returns the extents' memory; once nothing reads them
	bytes   int64
	// linked is closed once the batch is linked or has failed; err is its
	// result, set before.
	linked chan struct{}
	err    error
}

// file returns the write-back state of ino, creating it.
func (fs *FS) file(ino Ino) *openFile {
	fs.filesMu.Lock()
	defer fs.filesMu.Unlock()
	f := fs.files[ino]
	if f == nil {
		f = &openFile{}
		f.drained.L = &f.mu
		fs.files[ino] = f
	}
	return f
}

// emptyLocked reports whether f holds no data and no flush is under way;
// f.mu is held.
func (f *openFile) emptyLocked() bool {
	return f.buf.Len()+f.failed.Len() == 0 && len(f.batches) == 0 && f.flushing == 0
}

// dropFileLocked forgets f, the empty write-back state of ino; fs.filesMu
// and f.mu are held. A writer that still holds f sees dropped and asks for
// a new one.
func (fs *FS) dropFileLocked(ino Ino, f *openFile) {
	f.dropped = true
	delete(fs.files, ino)
}

// forgetFile drops ino's write-back state at once if it is empty, for
// files that are done with (published objects), so that the background
// flusher does not walk them for a minute.
func (fs *FS) forgetFile(ino Ino) {
	fs.filesMu.Lock()
	defer fs.filesMu.Unlock()
	if f := fs.files[ino]; f != nil {
		f.mu.Lock()
		if f.emptyLocked() {
			fs.dropFileLocked(ino, f)
		}
		f.mu.Unlock()
	}
}

// lookupFile returns the write-back state of ino if it has any.
func (fs *FS) lookupFile(ino Ino) *openFile {
	fs.filesMu.Lock()
	defer fs.filesMu.Unlock()
	return fs.files[ino]
}

// applyBuffered raises a regular file's size to cover buffered writes.
func (fs *FS) applyBuffered(a *Attr) {
	if a.Type != TypeRegular {
		return
	}
	f := fs.lookupFile(a.Ino)
	if f == nil {
		return
	}
	f.mu.Lock()
	f.raiseSize(a)
	f.mu.Unlock()
}

// raiseSize raises a regular file's size to cover f's buffered and
// in-flight writes; f.mu is held.
func (f *openFile) raiseSize(a *Attr) {
	if a.Type != TypeRegular {
		return
	}
	if end := f.end(); end > a.Size {
		a.Size = end
		a.Used = (end + 4095) &^ 4095
	}
}

// end is the end of the buffered, failed and in-flight data; f.mu held.
func (f *openFile) end() uint64 {
	end := max(f.buf.End(), f.failed.End())
	for _, b := range f.batches {
		if n := len(b.extents); n > 0 {
			end = max(end, b.extents[n-1].End())
		}
	}
	return end
}

// overlay copies unflushed bytes over p, oldest first; f.mu held.
func (f *openFile) overlay(off uint64, p []byte) {
	f.failed.Overlay(off, p)
	for _, b := range f.batches {
		for _, e := range b.extents {
			lo, hi := max(off, e.Off), min(off+uint64(len(p)), e.End())
			if lo < hi {
				copy(p[lo-off:hi-off], e.Data[lo-e.Off:hi-e.Off])
			}
		}
	}
	f.buf.Overlay(off, p)
}

// unflushed is the number of bytes not yet linked; f.mu held.
func (f *openFile) unflushed() int64 {
	n := int64(f.buf.Len() + f.failed.Len())
	for _, b := range f.batches {
		n += b.bytes
	}
	return n
}

// truncateBuffered drops unflushed bytes at or beyond size. Batches under way are
// left alone: a truncation flushes first, so none is older than it.
func (fs *FS) truncateBuffered(ino Ino, size uint64) {
	f := fs.lookupFile(ino)
	if f == nil {
		return
	}
	f.mu.Lock()
	before := f.buf.Len() + f.failed.Len()
	f.buf.Truncate(size)
	f.failed.Truncate(size)
	shrunk := before - f.buf.Len() - f.failed.Len()
	f.mu.Unlock()
	fs.buffered.Add(-int64(shrunk))
}

// Write writes p at off. With Unstable the data may stay in the write-back
// buffer until Commit, a flush interval, or memory pressure; otherwise it is
// durable when Write returns. It returns the attributes after the write.
func (fs *FS) Write(ctx context.Context, id *Identity, ino Ino, off uint64, p []byte, how Stability) (Attr, error) {
	a, err := fs.attr(ctx, ino)
	if err != nil {
		return Attr{}, wrap("write", ino, err)
	}
	switch {
	case a.Type == TypeDir:
		return Attr{}, wrap("write", ino, syscall.EISDIR)
	case a.Type != TypeRegular:
		return Attr{}, wrap("write", ino, syscall.EINVAL)
	}
	// The owner may write a file whose mode it set read-only after
	// opening it, as local filesystems allow through the open descriptor.
	if id.UID != a.UID && !allowed(id, attrInode(&a), permWrite) {
		return Attr{}, wrap("write", ino, syscall.EACCES)
	}
	end := off + uint64(len(p))
	if end < off || end > MaxFileSize {
		return Attr{}, wrap("write", ino, syscall.EFBIG)
	}
	if end > a.Size {
		if err := fs.checkGrowth(ctx, &a, end-a.Size); err != nil {
			return Attr{}, wrap("write", ino, err)
		}
	}
	if a.Mode&(ModeSetuid|ModeSetgid) != 0 && id.UID != 0 {
		// Writing by anyone but root drops setuid and setgid, so that a
		// modified program does not keep its privileges.
		mode := a.Mode &^ (ModeSetuid | ModeSetgid)
		if _, err := fs.setAttr(ctx, &Root, ino, SetAttr{Mode: &mode}); err != nil {
			return Attr{}, wrap("write", ino, err)
		}
	}
	if len(p) == 0 {
		return a, nil
	}
	if fs.locks.Fenced(lock.FileID(ino)) {
		return Attr{}, wrap("write", ino, ErrFenced)
	}
	if err := fs.breakLeases(ctx, id, ino, lock.AccessWrite); err != nil {
		return Attr{}, wrap("write", ino, err)
	}
	f := fs.file(ino)
	f.mu.Lock()
	for f.dropped {
		f.mu.Unlock()
		f = fs.file(ino)
		f.mu.Lock()
	}
	before := f.buf.Len()
	f.buf.Write(off, p)
	grown := f.buf.Len() - before
	if before == 0 {
		f.dirtySince = fs.now()
	}
	f.lastUse = fs.now()
	fileBytes := f.buf.Len()
	held := f.unflushed()
	f.mu.Unlock()
	total := fs.buffered.Add(int64(grown))
	switch {
	case how != Unstable:
		if err := fs.flushFile(ctx, ino, f); err != nil {
			return Attr{}, wrap("write", ino, err)
		}
	case int64(fileBytes) >= fs.flushAhead():
		// Enough for large slices: store them while the writer goes on
		// filling the buffer; wait only when the buffer is full.
		fs.flushAsync(ino, f)
		if held >= fs.opts.FileBufferBytes {
			if err := fs.waitBuffer(ctx, f); err != nil {
				return Attr{}, wrap("write", ino, err)
			}
		}
	case total > fs.opts.WriteBackBytes:
		fs.kick()
	}
	if end > a.Size {
		a.Size = end
		a.Used = (end + 4095) &^ 4095
	}
	return a, nil
}

// flushAhead is the buffered size of one file at which a background flush
// starts: large enough for large slices (two blocks; eight per chunk, under
// MaxSlicesBeforeCompaction), small enough that a few batches in flight
// keep the block store busy within the file's buffer. A writer that fills
// its buffer waits for a batch to be linked, so the batch size is also its
// longest wait: 8 MiB batches halved the p99 of 1 MiB writes at queue
// depth 1 against 16 MiB ones (6-7 ms against 9-18 ms).
func (fs *FS) flushAhead() int64 {
	return min(fs.opts.FileBufferBytes/flushPipeline, 8<<20)
}

// flushPipeline is the most background flushes of one file under way at
// once: one linking while the others store blocks.
const flushPipeline = 3

// flushAsync starts a background flusher of f unless flushPipeline are
// running. Each flushes while the buffer holds at least flushAhead bytes.
func (fs *FS) flushAsync(ino Ino, f *openFile) {
	f.mu.Lock()
	if f.flushing >= flushPipeline {
		f.mu.Unlock()
		return
	}
	f.flushing++
	f.mu.Unlock()
	fs.flushes.Add(1)
	go func() {
		defer fs.flushes.Done()
		for {
			err := fs.flushFile(context.Background(), ino, f)
			f.mu.Lock()
			again := err == nil && int64(f.buf.Len()) >= fs.flushAhead()
			if !again {
				f.flushing--
			}
			if err != nil {
				f.flushErr = err
			}
			f.drained.Broadcast()
			f.mu.Unlock()
			if err != nil {
				fs.log.Error("background flush failed; the data stays buffered and is retried",
					"ino", uint64(ino), "err", err)
			}
			if !again {
				return
			}
		}
	}()
}

// waitBuffer blocks a writer while f holds a full buffer's worth of
// unflushed data and background flushes are draining it. A failed flush is
// the writer's error.
func (fs *FS) waitBuffer(ctx context.Context, f *openFile) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for f.unflushed() >= fs.opts.FileBufferBytes && f.flushing > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		f.drained.Wait()
	}
	if err := f.flushErr; err != nil {
		f.flushErr = nil
		return err
	}
	return nil
}

// breakLeases breaks or recalls the leases and delegations that other
// holders have on ino and that an access of kind conflicts with, waiting
// until they are acknowledged or revoked (or ctx ends).
func (fs *FS) breakLeases(ctx context.Context, id *Identity, ino Ino, kind lock.AccessKind) error {
	if err := fs.locks.Break(ctx, lock.FileID(ino), id.Lease, kind); err != nil {
		if ctx.Err() != nil {
			return ErrUnavailable // the client retries once the holder answered
		}
		return err
	}
	return nil
}

// MaxFileSize is the largest file size.
const MaxFileSize = 1 << 50

// checkGrowth refuses a write that would grow a file past its owner's
// quota, against the cached usage (see usageCache).
func (fs *FS) checkGrowth(ctx context.Context, a *Attr, grow uint64) error {
	return fs.store.View(ctx, func(r kv.Reader) error {
		for _, who := range [2]usageID{{meta.QuotaUser, a.UID}, {meta.QuotaGroup, a.GID}} {
			if who.id == 0 {
				continue
			}
			sum, err := fs.cachedUsage(ctx, who)
			if err != nil {
				return err
			}
			lim, err := fs.limits(ctx, r, who)
			if err != nil {
				return err
			}
			if _, _, err := quota.Charge(sum, lim, int64(grow), 0, fs.now(), fs.quotaDefaults().Grace); err != nil {
				return err
			}
		}
		return nil
	})
}

// Commit makes every write to ino so far durable.
func (fs *FS) Commit(ctx context.Context, ino Ino) error {
	f := fs.lookupFile(ino)
	if f == nil {
		return nil
	}
	return wrap("commit", ino, fs.flushFile(ctx, ino, f))
}

// SyncAll makes every buffered write of every file durable.
func (fs *FS) SyncAll(ctx context.Context) error {
	fs.filesMu.Lock()
	files := make(map[Ino]*openFile, len(fs.files))
	for ino, f := range fs.files {
		files[ino] = f
	}
	fs.filesMu.Unlock()
	var first error
	for ino, f := range files {
		if err := fs.flushFile(ctx, ino, f); err != nil && first == nil {
			first = wrap("sync", ino, err)
		}
	}
	return first
}

// flushOps is the metadata operations one flushed extent costs: its chunk
// map, its slice reference and, for an inline slice, its data.
const flushOps = 3

// flushFile makes the data buffered for ino so far durable: it detaches it
// as a batch, stores the batch's blocks (alongside other batches), waits
// for the batches before it, and links it.
func (fs *FS) flushFile(ctx context.Context, ino Ino, f *openFile) error {
	return fs.flushFileWith(ctx, ino, f, nil)
}

// alsoFn is a change made in the transaction that links a file's data, so
// that the two commit together or not at all. It is run again when the
// transaction is.
type alsoFn func(tx kv.Txn, events *chargeEvents) error

// flushFileWith is flushFile that also runs also, when not nil, in the
// transaction that links the last of the data, or in a transaction of its
// own when nothing is buffered. also does not run if the flush fails.
func (fs *FS) flushFileWith(ctx context.Context, ino Ino, f *openFile, also alsoFn) error {
	var b, prev *flushBatch
	if f != nil {
		b, prev = fs.detach(f)
	}
	if b == nil {
		if prev != nil {
			<-prev.linked
			if prev.err != nil || also == nil {
				return prev.err
			}
		}
		if also == nil {
			return nil
		}
		var events chargeEvents
		return fs.update(ctx, &events, func(tx kv.Txn) error { return also(tx, &events) })
	}
	ids, err := fs.storeBatch(ctx, b)
	if prev != nil {
		// Not bounded by ctx: the batch must be settled in order whatever
		// happens, and prev settles on its own.
		<-prev.linked
	}
	f.mu.Lock()
	blocked := f.failed.Len() > 0
	f.mu.Unlock()
	switch {
	case err != nil:
	case blocked:
		// An older batch failed and is to be written again: this one, newer,
		// must land after it.
		fs.dropSlices(ids, b.extents)
		if prev != nil {
			err = prev.err
		}
		if err == nil {
			err = errors.New("an earlier flush of the file failed")
		}
	default:
		err = fs.linkBatch(ctx, ino, b.extents, ids, also)
	}
	fs.settle(ino, f, b, err)
	if errors.Is(err, syscall.ESTALE) && also == nil {
		return nil // the file was deleted meanwhile: its data is moot
	}
	return err
}

// detach takes f's buffered data as a new batch, queued behind prev, the
// batch under way before it. Data of failed batches comes first, once no
// batch is under way. b is nil when nothing is buffered.
func (fs *FS) detach(f *openFile) (b, prev *flushBatch) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n := len(f.batches); n > 0 {
		prev = f.batches[n-1]
	}
	if prev == nil && f.failed.Len() > 0 {
		before := f.failed.Len() + f.buf.Len()
		var merged data.FileBuffer
		for _, from := range []*data.FileBuffer{&f.failed, &f.buf} {
			exts, done := from.Detach(data.ChunkSize)
			for _, e := range exts {
				merged.Write(e.Off, e.Data)
			}
			done()
		}
		f.buf = merged
		fs.buffered.Add(int64(f.buf.Len() - before))
	}
	if f.buf.Len() == 0 {
		return nil, prev
	}
	b = &flushBatch{bytes: int64(f.buf.Len()), linked: make(chan struct{})}
	b.extents, b.recycle = f.buf.Detach(data.ChunkSize)
	f.batches = append(f.batches, b)
	return b, prev
}

// storeBatch writes the blocks of b's extents as new slices, durable when
// it returns nil. On error no block of b remains referenced or stored
// (save what gc collects).
func (fs *FS) storeBatch(ctx context.Context, b *flushBatch) ([]uint64, error) {
	ids := make([]uint64, len(b.extents))
	for i, e := range b.extents {
		id, err := fs.uniqs.Next(ctx)
		if err != nil {
			fs.dropSlices(ids[:i], b.extents)
			return nil, err
		}
		if len(e.Data) <= data.InlineMax {
			// Stored with its reference, in the link transaction.
			ids[i] = data.InlineID(id)
			continue
		}
		ids[i] = id
		if err := fs.blocks.WriteSlice(ctx, id, e.Data); err != nil {
			fs.dropSlices(ids[:i+1], b.extents)
			return nil, err
		}
	}
	return ids, nil
}

// settle ends batch b, the oldest under way, with result err: a failed
// batch's data goes to f.failed, on top of older failures.
func (fs *FS) settle(ino Ino, f *openFile, b *flushBatch, err error) {
	f.mu.Lock()
	unflushed := b.bytes
	// Data of a deleted file is moot, and data written under locks the
	// gateway lost must not land later: both are dropped, not retried.
	if err != nil && !errors.Is(err, syscall.ESTALE) && !errors.Is(err, ErrFenced) {
		before := f.failed.Len()
		for _, e := range b.extents {
			f.failed.Write(e.Off, e.Data)
		}
		unflushed -= int64(f.failed.Len() - before)
	}
	if f.batches[0] != b {
		panic("core: flush batches settled out of order")
	}
	// The cached attributes go before the batch leaves the in-flight list
	// (both under f.mu, which applyBuffered takes): a reader must not find
	// the size from before the link without the batch that extends it.
	fs.attrs.Invalidate(ino)
	f.batches[0] = nil
	f.batches = f.batches[1:]
	f.flushes++
	b.err = err
	f.mu.Unlock()
	// Readers copy batch data only under f.mu, and the blocks are written:
	// nothing refers to the extents' memory any more.
	b.recycle()
	fs.buffered.Add(-unflushed)
	close(b.linked)
}

// linkBatch links stored slices into the file's chunk maps, in as few
// transactions as the engine's limits allow, the last of them running also.
// On error the slices not linked are deleted; those linked stay (the caller
// writes their data again).
func (fs *FS) linkBatch(ctx context.Context, ino Ino, extents []data.Extent, ids []uint64, also alsoFn) error {
	// also gets room for a few dozen operations of its own.
	per := (kv.MaxTxnOps - 40) / flushOps
	for start := 0; start < len(extents); start += per {
		stop := min(start+per, len(extents))
		var last alsoFn
		if stop == len(extents) {
			last = also
		}
		if err := fs.linkSlices(ctx, ino, extents[start:stop], ids[start:stop], last); err != nil {
			fs.dropSlices(ids[start:], extents[start:])
			return err
		}
	}
	return nil
}

// dropSlices deletes the blocks of slices that no transaction references.
func (fs *FS) dropSlices(ids []uint64, extents []data.Extent) {
	for i, id := range ids {
		if data.IsInline(id) {
			continue // its data was never stored apart from the transaction
		}
		if err := fs.blocks.DeleteSlice(context.Background(), id, uint32(len(extents[i].Data))); err != nil {
			fs.log.Warn("deleting blocks of an uncommitted slice failed; gc will remove them", "slice", id, "err", err)
		}
	}
}

func (fs *FS) linkSlices(ctx context.Context, ino Ino, extents []data.Extent, ids []uint64, also alsoFn) error {
	var compact []chunkRef
	var events chargeEvents
	err := fs.update(ctx, &events, func(tx kv.Txn) error {
		compact = compact[:0]
		now := fs.now().UnixNano()
		in, err := getInode(ctx, tx, ino)
		if err != nil {
			return err
		}
		if err := fs.checkFence(ctx, tx, ino); err != nil {
			return err
		}
		maps := map[uint32][]data.Slice{}
		var order []uint32
		for i, e := range extents {
			idx := uint32(e.Off / data.ChunkSize)
			slices, ok := maps[idx]
			if !ok {
				if slices, err = getChunk(ctx, tx, ino, idx); err != nil {
					return err
				}
				order = append(order, idx)
			}
			n := uint32(len(e.Data))
			maps[idx] = append(slices, data.Slice{ID: ids[i], Size: n, Pos: uint32(e.Off % data.ChunkSize), Len: n})
			tx.Put(meta.SliceRefKey(ids[i]), meta.AppendSliceRef(nil, meta.SliceRef{Refs: 1, Size: n}))
			if data.IsInline(ids[i]) {
				tx.Put(meta.InlineKey(ids[i]), e.Data)
			}
			if end := e.Off + uint64(n); end > in.Size {
				if err := fs.charge(ctx, tx, in.UID, in.GID, int64(end-in.Size), 0, &events); err != nil {
					return err
				}
				in.Size = end
			}
		}
		for _, idx := range order {
			tx.Put(meta.ChunkKey(uint64(ino), idx), data.AppendSlices(nil, maps[idx]))
			if data.NeedsCompaction(maps[idx]) {
				compact = append(compact, chunkRef{ino, idx})
			}
		}
		in.Mtime, in.Ctime = now, now
		in.ChangeID++
		tx.Put(meta.InodeKey(uint64(ino)), meta.AppendInode(nil, in))
		if also != nil {
			return also(tx, &events)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, c := range compact {
		select {
		case fs.compact <- c:
		default:
		}
	}
	return nil
}

// readInline adds to into (allocated if nil) the data of the inline slices
// that reading n bytes at pos of a chunk with map chunk needs. It must read
// in the view that read the map: the data of a slice is deleted only after
// the block delete delay, like blocks, but it is looked up by this view.
func readInline(ctx context.Context, r kv.Reader, into map[uint64][]byte, chunk []data.Slice, pos, n uint32) (map[uint64][]byte, error) {
	for _, id := range data.InlineIDs(nil, chunk, pos, n) {
		if _, ok := into[id]; ok {
			continue
		}
		v, err := r.Get(ctx, meta.InlineKey(id))
		if errors.Is(err, kv.ErrNotFound) {
			return into, fmt.Errorf("the data of inline slice %#x is missing; run fsck: %w", id, syscall.EIO)
		}
		if err != nil {
			return into, err
		}
		if into == nil {
			into = make(map[uint64][]byte)
		}
		into[id] = v
	}
	return into, nil
}

func getChunk(ctx context.Context, r kv.Reader, ino Ino, idx uint32) ([]data.Slice, error) {
	v, err := r.Get(ctx, meta.ChunkKey(uint64(ino), idx))
	if errors.Is(err, kv.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return data.DecodeSlices(v)
}

// Read reads up to len(p) bytes at off. It returns the count and whether the
// read reached the end of the file. Holes read as zeros; a block whose
// checksum fails is EIO, never wrong bytes.
func (fs *FS) Read(ctx context.Context, id *Identity, ino Ino, off uint64, p []byte) (int, bool, error) {
	a, err := fs.attr(ctx, ino)
	if err != nil {
		return 0, false, wrap("read", ino, err)
	}
	switch {
	case a.Type == TypeDir:
		return 0, false, wrap("read", ino, syscall.EISDIR)
	case a.Type != TypeRegular:
		return 0, false, wrap("read", ino, syscall.EINVAL)
	}
	if id.UID != a.UID && !allowed(id, attrInode(&a), permRead) {
		return 0, false, wrap("read", ino, syscall.EACCES)
	}
	if err := fs.breakLeases(ctx, id, ino, lock.AccessRead); err != nil {
		return 0, false, wrap("read", ino, err)
	}
	n, eof, err := fs.readData(ctx, ino, off, p)
	return n, eof, wrap("read", ino, err)
}

func (fs *FS) readData(ctx context.Context, ino Ino, off uint64, p []byte) (int, bool, error) {
	f := fs.lookupFile(ino)
	for {
		var flushes uint64
		if f != nil {
			f.mu.Lock()
			flushes = f.flushes
			f.mu.Unlock()
		}
		var size uint64
		maps := map[uint32][]data.Slice{}
		var inline map[uint64][]byte
		err := fs.store.View(ctx, func(r kv.Reader) error {
			in, err := getInode(ctx, r, ino)
			if err != nil {
				return err
			}
			size = in.Size
			if off >= size {
				return nil
			}
			end := min(off+uint64(len(p)), size)
			for idx := uint32(off / data.ChunkSize); idx <= uint32((end-1)/data.ChunkSize); idx++ {
				if maps[idx], err = getChunk(ctx, r, ino, idx); err != nil {
					return err
				}
				start := uint64(idx) * data.ChunkSize
				lo, hi := max(off, start)-start, min(end, start+data.ChunkSize)-start
				if inline, err = readInline(ctx, r, inline, maps[idx], uint32(lo), uint32(hi-lo)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return 0, false, err
		}
		if f != nil {
			f.mu.Lock()
			size = max(size, f.end())
			f.mu.Unlock()
		}
		if off >= size {
			return 0, true, nil
		}
		n := int(min(uint64(len(p)), size-off))
		buf := p[:n]
		for pos := uint64(0); pos < uint64(n); {
			abs := off + pos
			idx := uint32(abs / data.ChunkSize)
			in := uint32(abs % data.ChunkSize)
			m := min(uint64(n)-pos, uint64(data.ChunkSize-in))
			if err := fs.blocks.ReadChunk(ctx, maps[idx], in, buf[pos:pos+m], inline); err != nil {
				return 0, false, err
			}
			pos += m
		}
		if f == nil {
			return n, off+uint64(n) >= size, nil
		}
		f.mu.Lock()
		if f.flushes != flushes {
			f.mu.Unlock()
			continue // a flush committed while we read: read again
		}
		f.overlay(off, buf)
		f.mu.Unlock()
		return n, off+uint64(n) >= size, nil
	}
}
