package core

import (
	"context"
	"errors"
	"sort"
	"time"

	"github.com/claudefs/cfs-gateway/internal/data"
	"github.com/claudefs/cfs-gateway/internal/engine/kv"
	"github.com/claudefs/cfs-gateway/internal/meta"
)

// chunkRef names one chunk of one file.
type chunkRef struct {
	ino Ino
	idx uint32
}

// kick wakes the background workers early.
func (fs *FS) kick() {
	select {
	case fs.work <- struct{}{}:
	default:
	}
}

func (fs *FS) startBackground(ctx context.Context) {
	run := func(name string, fn func(context.Context)) {
		fs.wg.Add(1)
		go func() {
			defer fs.wg.Done()
			fn(ctx)
		}()
	}
	if w, ok := fs.store.(changeWatcher); ok {
		fs.followChanges(ctx, w)
	}
	run("flusher", fs.flusher)
	run("compactor", fs.compactor)
	run("reaper", fs.reaper)
}

// flusher flushes buffers older than the flush interval, and the largest
// ones while the total is over the write-back limit; it also forgets the
// state of idle files.
func (fs *FS) flusher(ctx context.Context) {
	tick := time.NewTicker(min(fs.opts.FlushInterval/2, time.Second))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-fs.work:
		}
		fs.flushDue(ctx)
	}
}

type fileLoad struct {
	ino   Ino
	f     *openFile
	bytes int
	since time.Time
}

func (fs *FS) flushDue(ctx context.Context) {
	now := fs.now()
	var loads []fileLoad
	fs.filesMu.Lock()
	for ino, f := range fs.files {
		f.mu.Lock()
		n, since, idle := f.buf.Len()+f.failed.Len(), f.dirtySince, f.lastUse
		if f.emptyLocked() && now.Sub(idle) > time.Minute {
			fs.dropFileLocked(ino, f)
			f.mu.Unlock()
			continue
		}
		f.mu.Unlock()
		if n > 0 {
			loads = append(loads, fileLoad{ino, f, n, since})
		}
	}
	fs.filesMu.Unlock()
	sort.Slice(loads, func(i, j int) bool { return loads[i].bytes > loads[j].bytes })
	for _, l := range loads {
		over := fs.buffered.Load() > fs.opts.WriteBackBytes
		if !over && now.Sub(l.since) < fs.opts.FlushInterval {
			continue
		}
		if err := fs.flushFile(ctx, l.ino, l.f); err != nil && ctx.Err() == nil {
			fs.log.Error("background flush failed; the data stays buffered and is retried",
				"ino", uint64(l.ino), "bytes", l.bytes, "err", err)
		}
	}
}

// compactor rewrites fragmented chunks.
func (fs *FS) compactor(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case c := <-fs.compact:
			if err := fs.compactChunk(ctx, c); err != nil && ctx.Err() == nil {
				fs.log.Warn("chunk compaction failed; it is retried on a later write",
					"ino", uint64(c.ino), "chunk", c.idx, "err", err)
			}
		}
	}
}

// compactChunk reads a fragmented chunk's visible data, stores it as one
// slice and swaps the chunk map, if the map did not change meanwhile. The old
// slices' blocks are deleted only after the block delete delay, so a read
// that resolved the old map still finds them.
func (fs *FS) compactChunk(ctx context.Context, c chunkRef) error {
	var slices []data.Slice
	var inline map[uint64][]byte
	if err := fs.store.View(ctx, func(r kv.Reader) error {
		var err error
		if slices, err = getChunk(ctx, r, c.ino, c.idx); err != nil {
			return err
		}
		inline, err = readInline(ctx, r, nil, slices, 0, data.ChunkSize)
		return err
	}); err != nil {
		return err
	}
	if !data.NeedsCompaction(slices) {
		return nil
	}
	var lo, hi uint32 = data.ChunkSize, 0
	for _, s := range data.Resolve(slices, 0, data.ChunkSize) {
		if s.ID != 0 {
			lo, hi = min(lo, s.Pos), max(hi, s.Pos+s.Len)
		}
	}
	if hi <= lo {
		return nil
	}
	buf := make([]byte, hi-lo)
	if err := fs.blocks.ReadChunk(ctx, slices, lo, buf, inline); err != nil {
		return err
	}
	id, err := fs.uniqs.Next(ctx)
	if err != nil {
		return err
	}
	if len(buf) <= data.InlineMax {
		id = data.InlineID(id)
	} else if err := fs.blocks.WriteSlice(ctx, id, buf); err != nil {
		return err
	}
	old := data.AppendSlices(nil, slices)
	swapped := false
	err = fs.store.Update(ctx, func(tx kv.Txn) error {
		swapped = false
		cur, err := tx.Get(ctx, meta.ChunkKey(uint64(c.ino), c.idx))
		if errors.Is(err, kv.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if string(cur) != string(old) {
			return nil // written meanwhile: the next write will ask again
		}
		next := []data.Slice{{ID: id, Size: uint32(len(buf)), Pos: lo, Len: uint32(len(buf))}}
		if err := fs.releaseDropped(ctx, tx, slices, next, fs.due()); err != nil {
			return err
		}
		tx.Put(meta.SliceRefKey(id), meta.AppendSliceRef(nil, meta.SliceRef{Refs: 1, Size: uint32(len(buf))}))
		if data.IsInline(id) {
			tx.Put(meta.InlineKey(id), buf)
		}
		tx.Put(meta.ChunkKey(uint64(c.ino), c.idx), data.AppendSlices(nil, next))
		swapped = true
		return nil
	})
	if err != nil || !swapped {
		fs.dropSlices([]uint64{id}, []data.Extent{{Data: buf}})
	}
	return err
}

// reaper purges unlinked files and deletes the blocks of unreferenced
// slices once they are due.
func (fs *FS) reaper(ctx context.Context) {
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
	for {
		if _, err := fs.PurgeOrphans(ctx, nil); err != nil && ctx.Err() == nil {
			fs.log.Warn("purging unlinked files failed; retried later", "err", err)
		}
		if _, err := fs.ProcessReleases(ctx, nil); err != nil && ctx.Err() == nil {
			fs.log.Warn("dropping released slice references failed; retried later", "err", err)
		}
		if _, err := fs.DeleteDue(ctx, fs.now(), nil); err != nil && ctx.Err() == nil {
			fs.log.Warn("deleting unreferenced blocks failed; retried later", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-fs.work:
		}
	}
}

// Progress receives counts from long operations (fsck, gc): what is being
// done and how many items so far.
type Progress func(stage string, done int)

// PurgeOrphans releases the data of unlinked files and deletes their
// records. It returns how many files it purged.
func (fs *FS) PurgeOrphans(ctx context.Context, progress Progress) (int, error) {
	var orphans []kv.Pair
	err := fs.store.View(ctx, func(r kv.Reader) error {
		var err error
		orphans, err = r.Scan(ctx, meta.OrphanPrefix(), kv.PrefixEnd(meta.OrphanPrefix()), 1000, false)
		return err
	})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, o := range orphans {
		ino := Ino(uint64FromKey(o.Key))
		if !fs.purgeable(ino, o.Value) {
			continue
		}
		if f := fs.lookupFile(ino); f != nil {
			f.mu.Lock()
			f.buf.Truncate(0)
			f.mu.Unlock()
		}
		if err := fs.purge(ctx, ino); err != nil {
			return n, err
		}
		n++
		if progress != nil {
			progress("purge unlinked files", n)
		}
	}
	return n, nil
}

func uint64FromKey(k []byte) uint64 {
	var v uint64
	for _, b := range k[1:9] {
		v = v<<8 | uint64(b)
	}
	return v
}

// purge removes the data, attributes and record of an unlinked inode.
func (fs *FS) purge(ctx context.Context, ino Ino) error {
	due := fs.due()
	for {
		done := false
		err := fs.store.Update(ctx, func(tx kv.Txn) error {
			// Reading the orphan record makes a concurrent Publish, which
			// deletes it, conflict with the purge.
			if _, err := tx.Get(ctx, meta.OrphanKey(uint64(ino))); errors.Is(err, kv.ErrNotFound) {
				done = true
				return nil
			} else if err != nil {
				return err
			}
			n, err := fs.releaseChunks(ctx, tx, ino, 0, due)
			if err != nil || n > 0 {
				return err
			}
			p := meta.XattrPrefix(uint64(ino))
			xs, err := tx.Scan(ctx, p, kv.PrefixEnd(p), kv.MaxTxnOps-4, false)
			if err != nil {
				return err
			}
			for _, x := range xs {
				tx.Delete(x.Key)
			}
			if len(xs) == kv.MaxTxnOps-4 {
				return nil
			}
			v, err := tx.Get(ctx, meta.InodeKey(uint64(ino)))
			if err == nil {
				in, err := meta.DecodeInode(v)
				if err != nil {
					return err
				}
				if in.Nlink > 0 {
					// Published meanwhile: never delete a linked inode.
					tx.Delete(meta.OrphanKey(uint64(ino)))
					done = true
					return nil
				}
				if in.Flags&meta.InodeTemp != 0 {
					// A temporary file was charged as it was written and
					// never released by an unlink.
					if err := fs.charge(ctx, tx, in.UID, in.GID, -int64(in.Size), -1, nil); err != nil {
						return err
					}
				}
				tx.Delete(meta.InodeKey(uint64(ino)))
			} else if !errors.Is(err, kv.ErrNotFound) {
				return err
			}
			tx.Delete(meta.OrphanKey(uint64(ino)))
			done = true
			return nil
		})
		if err != nil {
			return err
		}
		if done {
			fs.attrs.Invalidate(ino)
			return nil
		}
	}
}

// DeleteDue deletes the blocks of unreferenced slices whose delay ended by
// now, then their records. It returns how many slices it deleted.
func (fs *FS) DeleteDue(ctx context.Context, now time.Time, progress Progress) (int, error) {
	n := 0
	for {
		var due []kv.Pair
		err := fs.store.View(ctx, func(r kv.Reader) error {
			var err error
			// Half: an inline slice's deletion also deletes its data.
			due, err = r.Scan(ctx, meta.DeletePrefix(), meta.DeleteKey(now.Unix()+1, 0), (kv.MaxTxnOps-1)/2, false)
			return err
		})
		if err != nil || len(due) == 0 {
			return n, err
		}
		for _, p := range due {
			_, id, ok := meta.ParseDeleteKey(p.Key)
			size, err := meta.DecodeU64(p.Value)
			if !ok || err != nil || data.IsInline(id) {
				continue
			}
			if err := fs.blocks.DeleteSlice(ctx, id, uint32(size)); err != nil {
				return n, err
			}
		}
		err = fs.store.Update(ctx, func(tx kv.Txn) error {
			for _, p := range due {
				if _, id, ok := meta.ParseDeleteKey(p.Key); ok && data.IsInline(id) {
					tx.Delete(meta.InlineKey(id))
				}
				tx.Delete(p.Key)
			}
			return nil
		})
		if err != nil {
			return n, err
		}
		n += len(due)
		if progress != nil {
			progress("delete unreferenced blocks", n)
		}
	}
}
