package core

import (
	"context"
	"errors"
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
// buf; a flush moves it to inflight while its blocks are stored and its
// slices committed, so that reads keep seeing it until the commit is visible.
//
// Lock order: flushMu before mu.
type openFile struct {
	flushMu sync.Mutex // serializes flushes, so that slices commit in write order

	mu       sync.Mutex
	buf      data.FileBuffer
	inflight []data.Extent
	// flushes counts completed flushes; a reader that saw it change while it
	// read committed data reads again.
	flushes uint64
	// flushing is set while a background flusher runs; drained is
	// signalled after each of its flushes, with flushErr its result.
	flushing bool
	drained  sync.Cond
	flushErr error
	// dirtySince is when buf became non-empty.
	dirtySince time.Time
	lastUse    time.Time
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

// lookupFile returns the write-back state of ino if it has any.
func (fs *FS) lookupFile(ino Ino) *openFile {
	fs.filesMu.Lock()
	defer fs.filesMu.Unlock()
	return fs.files[ino]
}

// applyBuffered raises a regular file's size to cover buffered writes.
func (fs *FS) applyBuffered(a *Attr) {
	f := fs.lookupFile(a.Ino)
	if f == nil {
		return
	}
	f.mu.Lock()
	end := f.end()
	f.mu.Unlock()
	if end > a.Size {
		a.Size = end
		a.Used = (end + 4095) &^ 4095
	}
}

// end is the end of the buffered and in-flight data; f.mu held.
func (f *openFile) end() uint64 {
	end := f.buf.End()
	for _, e := range f.inflight {
		if x := e.Off + uint64(len(e.Data)); x > end {
			end = x
		}
	}
	return end
}

// overlay copies in-flight and then buffered bytes over p; f.mu held.
func (f *openFile) overlay(off uint64, p []byte) {
	for _, e := range f.inflight {
		lo, hi := max(off, e.Off), min(off+uint64(len(p)), e.Off+uint64(len(e.Data)))
		if lo < hi {
			copy(p[lo-off:hi-off], e.Data[lo-e.Off:hi-e.Off])
		}
	}
	f.buf.Overlay(off, p)
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
	if err := fs.breakLeases(ctx, id, ino, lock.AccessWrite); err != nil {
		return Attr{}, wrap("write", ino, err)
	}
	f := fs.file(ino)
	f.mu.Lock()
	before := f.buf.Len()
	f.buf.Write(off, p)
	grown := f.buf.Len() - before
	if before == 0 {
		f.dirtySince = fs.now()
	}
	f.lastUse = fs.now()
	fileBytes := f.buf.Len()
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
		if int64(fileBytes) >= fs.opts.FileBufferBytes {
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
// starts: large enough for large slices, small enough that the writer rarely
// waits for the full buffer.
func (fs *FS) flushAhead() int64 {
	return min(fs.opts.FileBufferBytes/2, 32<<20)
}

// flushAsync starts a background flusher of f unless one is running. It
// flushes while the buffer holds at least flushAhead bytes, so that a
// sequential writer keeps the block store busy with large slices.
func (fs *FS) flushAsync(ino Ino, f *openFile) {
	f.mu.Lock()
	if f.flushing {
		f.mu.Unlock()
		return
	}
	f.flushing = true
	f.mu.Unlock()
	fs.flushes.Add(1)
	go func() {
		defer fs.flushes.Done()
		for {
			err := fs.flushFile(context.Background(), ino, f)
			f.mu.Lock()
			// Keep the block store busy while the writer goes on.
			again := err == nil && int64(f.buf.Len()) >= fs.flushAhead()/4
			if !again {
				f.flushing = false
			}
			f.flushErr = err
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

// waitBuffer blocks a writer while f's buffer is full and a background
// flush is draining it. A failed flush is the writer's error.
func (fs *FS) waitBuffer(ctx context.Context, f *openFile) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for int64(f.buf.Len()) >= fs.opts.FileBufferBytes && f.flushing {
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
// map and its slice reference.
const flushOps = 2

// flushFile stores the buffered data of ino as new slices and commits them.
func (fs *FS) flushFile(ctx context.Context, ino Ino, f *openFile) error {
	f.flushMu.Lock()
	defer f.flushMu.Unlock()
	f.mu.Lock()
	extents, recycle := f.buf.Detach(data.ChunkSize)
	f.inflight = extents
	f.mu.Unlock()
	if len(extents) == 0 {
		recycle()
		return nil
	}
	var taken int64
	for _, e := range extents {
		taken += int64(len(e.Data))
	}
	err := fs.commitExtents(ctx, ino, extents)
	f.mu.Lock()
	if err != nil && !errors.Is(err, syscall.ESTALE) {
		// Put the data back under anything written since, so that a
		// later flush or commit retries it.
		var merged data.FileBuffer
		for _, e := range extents {
			merged.Write(e.Off, e.Data)
		}
		for _, e := range f.buf.Take(data.ChunkSize) {
			merged.Write(e.Off, e.Data)
		}
		f.buf = merged
		taken = 0
	}
	f.inflight = nil
	f.flushes++
	f.mu.Unlock()
	// Readers copy in-flight data only under f.mu, and the blocks are
	// written: nothing refers to the extents' memory any more.
	recycle()
	fs.buffered.Add(-taken)
	fs.attrs.Invalidate(ino)
	if errors.Is(err, syscall.ESTALE) {
		return nil // the file was deleted meanwhile: its data is moot
	}
	return err
}

// commitExtents stores extents as slices and links them into the file's
// chunk maps, in as few transactions as the engine's limits allow. Blocks
// are durable before the transaction that references them.
func (fs *FS) commitExtents(ctx context.Context, ino Ino, extents []data.Extent) error {
	ids := make([]uint64, len(extents))
	for i, e := range extents {
		id, err := fs.uniqs.Next(ctx)
		if err != nil {
			return err
		}
		ids[i] = id
		if err := fs.blocks.WriteSlice(ctx, id, e.Data); err != nil {
			fs.dropSlices(ids[:i+1], extents)
			return err
		}
	}
	per := (kv.MaxTxnOps - 8) / flushOps
	for start := 0; start < len(extents); start += per {
		stop := min(start+per, len(extents))
		if err := fs.linkSlices(ctx, ino, extents[start:stop], ids[start:stop]); err != nil {
			fs.dropSlices(ids[start:], extents[start:])
			return err
		}
	}
	return nil
}

// dropSlices deletes the blocks of slices that no transaction references.
func (fs *FS) dropSlices(ids []uint64, extents []data.Extent) {
	for i, id := range ids {
		if err := fs.blocks.DeleteSlice(context.Background(), id, uint32(len(extents[i].Data))); err != nil {
			fs.log.Warn("deleting blocks of an uncommitted slice failed; gc will remove them", "slice", id, "err", err)
		}
	}
}

func (fs *FS) linkSlices(ctx context.Context, ino Ino, extents []data.Extent, ids []uint64) error {
	var compact []chunkRef
	var events chargeEvents
	err := fs.update(ctx, &events, func(tx kv.Txn) error {
		compact = compact[:0]
		now := fs.now().UnixNano()
		in, err := getInode(ctx, tx, ino)
		if err != nil {
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
		err := fs.store.View(ctx, func(r kv.Reader) error {
			in, err := getInode(ctx, r, ino)
			if err != nil {
				return err
			}
			size = in.Size
			if off >= size {
				return nil
			}
			last := min(off+uint64(len(p)), size) - 1
			for idx := uint32(off / data.ChunkSize); idx <= uint32(last/data.ChunkSize); idx++ {
				if maps[idx], err = getChunk(ctx, r, ino, idx); err != nil {
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
			if err := fs.blocks.ReadChunk(ctx, maps[idx], in, buf[pos:pos+m]); err != nil {
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
