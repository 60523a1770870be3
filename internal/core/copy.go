package core

import (
	"context"
	"errors"
	"syscall"

	"github.com/claudefs/cfs-gateway/internal/data"
	"github.com/claudefs/cfs-gateway/internal/engine/kv"
	"github.com/claudefs/cfs-gateway/internal/meta"
)

// CopyRange makes bytes [srcOff, srcOff+n) of src appear at dstOff in dst
// by reference: the new chunk map entries share the source's blocks, which
// gain a reference each, so no data is read or written (S3 CopyObject,
// UploadPartCopy and multipart completion, NFSv4.2 CLONE, SMB copychunk).
// Holes in the source range become holes in dst. dst grows to cover the
// range. The caller needs read permission on src and write permission on
// dst; the ranges may not overlap within one file.
//
// The copy is made in one transaction per source chunk; each re-reads the
// source chunk map it copies, so a source changed meanwhile is copied as it
// is at that moment, never from blocks already released.
func (fs *FS) CopyRange(ctx context.Context, id *Identity, src Ino, srcOff uint64, dst Ino, dstOff uint64, n uint64) error {
	err := fs.copyRange(ctx, id, src, srcOff, dst, dstOff, n)
	return wrap("copy range", dst, err)
}

func (fs *FS) copyRange(ctx context.Context, id *Identity, src Ino, srcOff uint64, dst Ino, dstOff uint64, n uint64) error {
	if n == 0 {
		return nil
	}
	if srcOff+n < srcOff || dstOff+n < dstOff || dstOff+n > MaxFileSize {
		return syscall.EFBIG
	}
	if src == dst && srcOff < dstOff+n && dstOff < srcOff+n {
		return syscall.EINVAL
	}
	sa, err := fs.attr(ctx, src)
	if err != nil {
		return err
	}
	da, err := fs.attr(ctx, dst)
	if err != nil {
		return err
	}
	for _, a := range []Attr{sa, da} {
		switch {
		case a.Type == TypeDir:
			return syscall.EISDIR
		case a.Type != TypeRegular:
			return syscall.EINVAL
		}
	}
	if id.UID != sa.UID && !allowed(id, attrInode(&sa), permRead) {
		return syscall.EACCES
	}
	if id.UID != da.UID && !allowed(id, attrInode(&da), permWrite) {
		return syscall.EACCES
	}
	// Both files' buffered writes go first: the source's so that they are
	// copied, the destination's so that the copy lands on top of them.
	for _, ino := range []Ino{src, dst} {
		if f := fs.lookupFile(ino); f != nil {
			if err := fs.flushFile(ctx, ino, f); err != nil {
				return err
			}
		}
	}
	if sa, err = fs.attr(ctx, src); err != nil {
		return err
	}
	if srcOff+n > sa.Size {
		return syscall.EINVAL // beyond the source's end
	}
	end := srcOff + n
	for pos := srcOff; pos < end; {
		idx := uint32(pos / data.ChunkSize)
		stop := min(end, (uint64(idx)+1)*data.ChunkSize)
		// One transaction per source chunk, split further when the pieces
		// reference more slices than one transaction may touch.
		skip := 0
		for {
			done, used, err := fs.copyChunk(ctx, src, idx, pos, stop, skip, dst, dstOff+(pos-srcOff))
			if err != nil {
				return err
			}
			if done {
				break
			}
			skip += used
		}
		pos = stop
	}
	fs.attrs.Invalidate(dst)
	return nil
}

// copyRefOps is the writes one copied piece may cost: its slice reference
// and, at most, the two destination chunk maps it lands in.
const copyRefOps = 3

// copyChunk copies source bytes [pos, stop) (within one source chunk) to
// dstAt, starting at the skip-th resolved piece. It returns whether all
// pieces were copied and how many this transaction took.
func (fs *FS) copyChunk(ctx context.Context, src Ino, idx uint32, pos, stop uint64, skip int, dst Ino, dstAt uint64) (bool, int, error) {
	done, used := false, 0
	var compact []chunkRef
	var events chargeEvents
	err := fs.update(ctx, &events, func(tx kv.Txn) error {
		done, used, compact = false, 0, compact[:0]
		srcMap, err := getChunk(ctx, tx, src, idx)
		if err != nil {
			return err
		}
		in, err := getInode(ctx, tx, dst)
		if err != nil {
			return err
		}
		if _, err := getInode(ctx, tx, src); err != nil {
			return err
		}
		base := uint64(idx) * data.ChunkSize
		pieces := data.Resolve(srcMap, uint32(pos-base), uint32(stop-pos))
		maps := map[uint32][]data.Slice{}
		// A slice's count is the number of chunk maps that reference it:
		// it gains one for each destination map it newly appears in.
		inMap := map[uint32]map[uint64]bool{}
		var order []uint32
		budget := kv.MaxTxnOps - 8
		for i := skip; i < len(pieces); i++ {
			if budget < copyRefOps {
				break
			}
			pc := pieces[i]
			at := dstAt + (base + uint64(pc.Pos) - pos)
			for left := pc; left.Len > 0; {
				k := uint32(at / data.ChunkSize)
				room := uint32(min(uint64(left.Len), (uint64(k)+1)*data.ChunkSize-at))
				m, ok := maps[k]
				if !ok {
					if m, err = getChunk(ctx, tx, dst, k); err != nil {
						return err
					}
					order = append(order, k)
					budget--
					inMap[k] = map[uint64]bool{}
					for _, id := range data.SliceIDs(m) {
						inMap[k][id] = true
					}
				}
				if left.ID != 0 && !inMap[k][left.ID] {
					inMap[k][left.ID] = true
					budget--
					if err := incRef(ctx, tx, left.ID); err != nil {
						return err
					}
				}
				ref := data.Slice{ID: left.ID, Size: left.Size, Pos: uint32(at % data.ChunkSize), Off: left.Off, Len: room}
				if ref.ID == 0 {
					ref.Size, ref.Off = 0, 0
				}
				maps[k] = append(m, ref)
				at += uint64(room)
				left.Len -= room
				if left.ID != 0 {
					left.Off += room
				}
			}
			used++
		}
		for _, k := range order {
			tx.Put(meta.ChunkKey(uint64(dst), k), data.AppendSlices(nil, maps[k]))
			if data.NeedsCompaction(maps[k]) {
				compact = append(compact, chunkRef{dst, k})
			}
		}
		done = skip+used >= len(pieces)
		if done {
			now := fs.now().UnixNano()
			if newEnd := dstAt + (stop - pos); newEnd > in.Size {
				if err := fs.charge(ctx, tx, in.UID, in.GID, int64(newEnd-in.Size), 0, &events); err != nil {
					return err
				}
				in.Size = newEnd
			}
			in.Mtime, in.Ctime = now, now
			in.ChangeID++
			tx.Put(meta.InodeKey(uint64(dst)), meta.AppendInode(nil, in))
		}
		return nil
	})
	if err != nil {
		return false, 0, err
	}
	for _, c := range compact {
		select {
		case fs.compact <- c:
		default:
		}
	}
	return done, used, nil
}

// incRef adds a reference to slice id, which the transaction has just read
// in a chunk map: its reference record must exist.
func incRef(ctx context.Context, tx kv.Txn, id uint64) error {
	v, err := tx.Get(ctx, meta.SliceRefKey(id))
	if errors.Is(err, kv.ErrNotFound) {
		return &errnoCause{syscall.EIO, errors.New("a chunk map references a slice without a reference record; run fsck")}
	}
	if err != nil {
		return err
	}
	ref, err := meta.DecodeSliceRef(v)
	if err != nil {
		return err
	}
	ref.Refs++
	tx.Put(meta.SliceRefKey(id), meta.AppendSliceRef(nil, ref))
	return nil
}
