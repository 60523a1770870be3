package core

import (
	"context"
	"errors"
	"syscall"

	"github.com/claudefs/cfs-gateway/internal/core/lock"
	"github.com/claudefs/cfs-gateway/internal/data"
	"github.com/claudefs/cfs-gateway/internal/engine/kv"
	"github.com/claudefs/cfs-gateway/internal/meta"
)

// SetAttr changes attributes of ino by the POSIX rules: only the owner or
// root changes the mode; only root gives a file away; the owner may change
// the group to one of its own groups; changing the size needs write
// permission; setting times to the server's time needs ownership or write
// permission, setting them to given times needs ownership.
func (fs *FS) SetAttr(ctx context.Context, id *Identity, ino Ino, sa SetAttr) (Attr, error) {
	a, err := fs.setAttr(ctx, id, ino, sa)
	return a, wrap("setattr", ino, err)
}

func (fs *FS) setAttr(ctx context.Context, id *Identity, ino Ino, sa SetAttr) (Attr, error) {
	if err := fs.breakLeases(ctx, id, ino, lock.AccessWrite); err != nil {
		return Attr{}, err
	}
	if sa.Size != nil {
		if *sa.Size > MaxFileSize {
			return Attr{}, syscall.EFBIG
		}
		// Buffered data must be in the chunk maps before they are cut.
		if f := fs.lookupFile(ino); f != nil {
			if err := fs.flushFile(ctx, ino, f); err != nil {
				return Attr{}, err
			}
		}
		if err := fs.truncateTail(ctx, id, ino, *sa.Size); err != nil {
			return Attr{}, err
		}
	}
	var result Attr
	var events chargeEvents
	err := fs.update(ctx, &events, func(tx kv.Txn) error {
		now := fs.now().UnixNano()
		in, err := getInode(ctx, tx, ino)
		if err != nil {
			return err
		}
		isDir := FileType(in.Type) == TypeDir
		if isDir {
			if err := mergeDirTimes(ctx, tx, ino, in); err != nil {
				return err
			}
		}
		if sa.GuardCtime != nil && sa.GuardCtime.UnixNano() != in.Ctime {
			return ErrNotSync
		}
		owner := id.UID == 0 || id.UID == in.UID
		changed := false
		// chown: only root gives a file away; the owner may set the group
		// to its current one or to one of its own groups.
		if sa.UID != nil && id.UID != 0 && (*sa.UID != in.UID || id.UID != in.UID) {
			return syscall.EPERM
		}
		if sa.GID != nil && id.UID != 0 && (id.UID != in.UID || (*sa.GID != in.GID && !id.InGroup(*sa.GID))) {
			return syscall.EPERM
		}
		if sa.Mode != nil {
			if !owner {
				return syscall.EPERM
			}
			mode := *sa.Mode & ModePerm
			gid := in.GID
			if sa.GID != nil {
				gid = *sa.GID
			}
			if !isDir && mode&ModeSetgid != 0 && id.UID != 0 && !id.InGroup(gid) {
				mode &^= ModeSetgid
			}
			in.Mode = mode
			changed = true
		}
		if (sa.UID != nil && *sa.UID != in.UID) || (sa.GID != nil && *sa.GID != in.GID) {
			newUID, newGID := in.UID, in.GID
			if sa.UID != nil {
				newUID = *sa.UID
			}
			if sa.GID != nil {
				newGID = *sa.GID
			}
			// The usage moves with the file to its new owner and group.
			if err := fs.charge(ctx, tx, in.UID, in.GID, -int64(in.Size), -1, &events); err != nil {
				return err
			}
			if err := fs.charge(ctx, tx, newUID, newGID, int64(in.Size), 1, &events); err != nil {
				return err
			}
			if id.UID != 0 && !isDir {
				in.Mode &^= ModeSetuid | ModeSetgid
			}
			in.UID, in.GID = newUID, newGID
			changed = true
		}
		if sa.UID != nil || sa.GID != nil {
			changed = true
		}
		if sa.Size != nil {
			switch FileType(in.Type) {
			case TypeRegular:
			case TypeDir:
				return syscall.EISDIR
			default:
				return syscall.EINVAL
			}
			if !allowed(id, in, permWrite) {
				return syscall.EACCES
			}
			size := *sa.Size
			if size != in.Size {
				if size < in.Size {
					idx := uint32(size / data.ChunkSize)
					slices, err := getChunk(ctx, tx, ino, idx)
					if err != nil {
						return err
					}
					if len(slices) > 0 {
						cut := data.Truncate(slices, uint32(size%data.ChunkSize))
						if err := fs.releaseDropped(ctx, tx, slices, cut, fs.due()); err != nil {
							return err
						}
						if len(cut) == 0 {
							tx.Delete(meta.ChunkKey(uint64(ino), idx))
						} else {
							tx.Put(meta.ChunkKey(uint64(ino), idx), data.AppendSlices(nil, cut))
						}
					}
				}
				if err := fs.charge(ctx, tx, in.UID, in.GID, int64(size)-int64(in.Size), 0, &events); err != nil {
					return err
				}
				in.Size = size
				in.Mtime = now
			}
			changed = true
		}
		if sa.Atime.How != TimeDontChange || sa.Mtime.How != TimeDontChange {
			explicit := sa.Atime.How == TimeClient || sa.Mtime.How == TimeClient
			if explicit && !owner {
				return syscall.EPERM
			}
			if !explicit && !owner && !allowed(id, in, permWrite) {
				return syscall.EACCES
			}
			switch sa.Atime.How {
			case TimeServer:
				in.Atime = now
			case TimeClient:
				in.Atime = sa.Atime.Time.UnixNano()
			}
			switch sa.Mtime.How {
			case TimeServer:
				in.Mtime = now
			case TimeClient:
				in.Mtime = sa.Mtime.Time.UnixNano()
			}
			changed = true
		}
		if changed {
			in.Ctime = now
			in.ChangeID++
			in.Verf = 0
		}
		tx.Put(meta.InodeKey(uint64(ino)), meta.AppendInode(nil, in))
		if isDir {
			tx.Put(meta.DirTimesKey(uint64(ino)), meta.AppendDirTimes(nil, meta.DirTimes{Mtime: in.Mtime, Ctime: in.Ctime, ChangeID: in.ChangeID}))
		}
		result = toAttr(ino, in)
		return nil
	})
	if err != nil {
		return Attr{}, err
	}
	if sa.Size != nil {
		fs.truncateBuffered(ino, *sa.Size)
	}
	fs.cacheAttr(result)
	if result.Type == TypeRegular {
		fs.applyBuffered(&result)
	}
	return result, nil
}

// truncateTail deletes the chunk maps wholly beyond size, from the end, in
// transactions within the engine's limits. The size itself changes after,
// in SetAttr's transaction: until then the maps beyond are simply gone and
// read as holes.
func (fs *FS) truncateTail(ctx context.Context, id *Identity, ino Ino, size uint64) error {
	first := uint32((size + data.ChunkSize - 1) / data.ChunkSize)
	for {
		done := false
		err := fs.store.Update(ctx, func(tx kv.Txn) error {
			in, err := getInode(ctx, tx, ino)
			if err != nil {
				return err
			}
			if FileType(in.Type) != TypeRegular {
				done = true
				return nil // SetAttr's transaction answers this
			}
			if !allowed(id, in, permWrite) {
				return syscall.EACCES
			}
			if size >= in.Size {
				done = true
				return nil
			}
			n, err := fs.releaseChunks(ctx, tx, ino, first, fs.due())
			done = n == 0
			return err
		})
		if err != nil || done {
			return err
		}
	}
}

// releaseChunks deletes chunk maps of ino from index first on, as many as
// fit in one transaction, and writes one release list for the slices they
// referenced. It returns how many maps it deleted.
func (fs *FS) releaseChunks(ctx context.Context, tx kv.Txn, ino Ino, first uint32, due int64) (int, error) {
	start := meta.ChunkKey(uint64(ino), first)
	end := kv.PrefixEnd(meta.ChunkPrefix(uint64(ino)))
	pairs, err := tx.Scan(ctx, start, end, kv.MaxTxnOps-8, true)
	if err != nil {
		return 0, err
	}
	var ids []uint64
	for _, p := range pairs {
		slices, err := data.DecodeSlices(p.Value)
		if err != nil {
			return 0, err
		}
		// Reading the map makes a concurrent flush into it conflict.
		if _, err := tx.Get(ctx, p.Key); err != nil {
			return 0, err
		}
		ids = append(ids, data.SliceIDs(slices)...)
		tx.Delete(p.Key)
	}
	return len(pairs), fs.release(ctx, tx, ids, due)
}

// releaseDropped releases the slices present in before but not in after.
func (fs *FS) releaseDropped(ctx context.Context, tx kv.Txn, before, after []data.Slice, due int64) error {
	keep := map[uint64]bool{}
	for _, id := range data.SliceIDs(after) {
		keep[id] = true
	}
	var dropped []uint64
	for _, id := range data.SliceIDs(before) {
		if !keep[id] {
			dropped = append(dropped, id)
		}
	}
	return fs.release(ctx, tx, dropped, due)
}

// release records, in one write, that one reference of each slice in ids
// is to be dropped; the reaper decrements the counts later (ProcessReleases).
func (fs *FS) release(ctx context.Context, tx kv.Txn, ids []uint64, due int64) error {
	if len(ids) == 0 {
		return nil
	}
	uniq, err := fs.uniqs.Next(ctx)
	if err != nil {
		return err
	}
	tx.Put(meta.ReleaseKey(uniq), meta.AppendRelease(nil, meta.Release{Due: due, IDs: ids}))
	return nil
}

// releaseBatch is how many references one transaction of ProcessReleases
// drops: each costs two writes.
const releaseBatch = (kv.MaxTxnOps - 4) / 2

// ProcessReleases drops the slice references that release lists hold,
// scheduling the blocks of slices that reach zero for deletion. It returns
// how many references it dropped.
func (fs *FS) ProcessReleases(ctx context.Context, progress Progress) (int, error) {
	total := 0
	for {
		var lists []kv.Pair
		err := fs.store.View(ctx, func(r kv.Reader) error {
			var err error
			lists, err = r.Scan(ctx, meta.ReleasePrefix(), kv.PrefixEnd(meta.ReleasePrefix()), 100, false)
			return err
		})
		if err != nil || len(lists) == 0 {
			return total, err
		}
		for _, l := range lists {
			for {
				done := false
				n := 0
				err := fs.store.Update(ctx, func(tx kv.Txn) error {
					v, err := tx.Get(ctx, l.Key)
					if errors.Is(err, kv.ErrNotFound) {
						done = true
						return nil
					}
					if err != nil {
						return err
					}
					r, err := meta.DecodeRelease(v)
					if err != nil {
						return err
					}
					batch := r.IDs[:min(len(r.IDs), releaseBatch)]
					for _, id := range batch {
						if err := decRef(ctx, tx, id, r.Due); err != nil {
							return err
						}
					}
					n = len(batch)
					if rest := r.IDs[len(batch):]; len(rest) > 0 {
						tx.Put(l.Key, meta.AppendRelease(nil, meta.Release{Due: r.Due, IDs: rest}))
					} else {
						tx.Delete(l.Key)
						done = true
					}
					return nil
				})
				if err != nil {
					return total, err
				}
				total += n
				if progress != nil && n > 0 {
					progress("drop slice references", total)
				}
				if done {
					break
				}
			}
		}
	}
}

// decRef drops one reference of slice id; at zero its blocks are scheduled
// for deletion at due.
func decRef(ctx context.Context, tx kv.Txn, id uint64, due int64) error {
	v, err := tx.Get(ctx, meta.SliceRefKey(id))
	if errors.Is(err, kv.ErrNotFound) {
		return nil // already dropped: a release is applied once
	}
	if err != nil {
		return err
	}
	ref, err := meta.DecodeSliceRef(v)
	if err != nil {
		return err
	}
	if ref.Refs > 1 {
		ref.Refs--
		tx.Put(meta.SliceRefKey(id), meta.AppendSliceRef(nil, ref))
		return nil
	}
	tx.Delete(meta.SliceRefKey(id))
	tx.Put(meta.DeleteKey(due, id), meta.AppendU64(nil, uint64(ref.Size)))
	return nil
}

// due is when blocks released now may be deleted.
func (fs *FS) due() int64 {
	return fs.now().Unix() + int64(fs.opts.BlockDeleteDelay.Seconds())
}
