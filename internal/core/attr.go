package core

import (
	"context"
	"errors"
	"syscall"
	"time"

	"github.com/claudefs/cfs-gateway/internal/engine/kv"
	"github.com/claudefs/cfs-gateway/internal/meta"
)

func toAttr(ino Ino, in *meta.Inode) Attr {
	a := Attr{
		Ino: ino, Gen: in.Gen, Type: FileType(in.Type), Mode: in.Mode, Nlink: in.Nlink,
		UID: in.UID, GID: in.GID, Size: in.Size, Rdev: in.Rdev,
		Atime: time.Unix(0, in.Atime), Mtime: time.Unix(0, in.Mtime), Ctime: time.Unix(0, in.Ctime),
		Btime: time.Unix(0, in.Btime), ChangeID: in.ChangeID,
	}
	switch a.Type {
	case TypeRegular, TypeSymlink:
		a.Used = (a.Size + 4095) &^ 4095
	case TypeDir:
		a.Used = 4096
	}
	return a
}

// getInode reads an inode record inside a transaction. A missing inode, or a
// file whose last link is gone, is ESTALE: its handles are no longer valid.
func getInode(ctx context.Context, r kv.Reader, ino Ino) (*meta.Inode, error) {
	v, err := r.Get(ctx, meta.InodeKey(uint64(ino)))
	if err != nil && !errors.Is(err, kv.ErrNotFound) {
		return nil, err
	}
	return liveInode(v)
}

// liveInode decodes an inode record read as v, nil when missing, with
// getInode's rules.
func liveInode(v []byte) (*meta.Inode, error) {
	if v == nil {
		return nil, syscall.ESTALE
	}
	in, err := meta.DecodeInode(v)
	if err != nil {
		return nil, err
	}
	if in.Nlink == 0 && in.Flags&meta.InodeTemp == 0 {
		return nil, syscall.ESTALE
	}
	return in, nil
}

// getDir reads a directory's inode record (not its times): what entry
// changes need for their permission checks.
func getDir(ctx context.Context, r kv.Reader, ino Ino) (*meta.Inode, error) {
	in, err := getInode(ctx, r, ino)
	if err != nil {
		return nil, err
	}
	if FileType(in.Type) != TypeDir {
		return nil, syscall.ENOTDIR
	}
	return in, nil
}

// loadAttr reads the full current attributes of ino: for a directory the
// times come from its times record.
func loadAttr(ctx context.Context, r kv.Reader, ino Ino) (Attr, error) {
	v, err := r.Get(ctx, meta.InodeKey(uint64(ino)))
	if err != nil && !errors.Is(err, kv.ErrNotFound) {
		return Attr{}, err
	}
	return decodeAttr(ctx, r, ino, v, attrRecords{})
}

// attrRecords is what a batched read fetched of an inode's records beside
// the inode record itself.
type attrRecords struct {
	// timesRead says that times holds the directory times record (nil
	// when missing): a listing reads it for the entries it knows to be
	// directories.
	timesRead bool
	times     []byte
}

// decodeAttr is the one way attributes are built from the records of ino:
// rec is its inode record (nil when missing). For a directory the times
// record comes from got, else it is read from r.
func decodeAttr(ctx context.Context, r kv.Reader, ino Ino, rec []byte, got attrRecords) (Attr, error) {
	in, err := liveInode(rec)
	if err != nil {
		return Attr{}, err
	}
	if FileType(in.Type) == TypeDir {
		if got.timesRead {
			err = setDirTimes(in, got.times)
		} else {
			err = mergeDirTimes(ctx, r, ino, in)
		}
		if err != nil {
			return Attr{}, err
		}
	}
	return toAttr(ino, in), nil
}

func mergeDirTimes(ctx context.Context, r kv.Reader, ino Ino, in *meta.Inode) error {
	v, err := r.Get(ctx, meta.DirTimesKey(uint64(ino)))
	if err != nil && !errors.Is(err, kv.ErrNotFound) {
		return err
	}
	return setDirTimes(in, v)
}

// setDirTimes puts the times of a directory's times record v into its
// inode record; a missing record (nil) leaves the inode's own times.
func setDirTimes(in *meta.Inode, v []byte) error {
	if v == nil {
		return nil
	}
	t, err := meta.DecodeDirTimes(v)
	if err != nil {
		return err
	}
	in.Mtime, in.Ctime, in.ChangeID = t.Mtime, t.Ctime, t.ChangeID
	return nil
}

// touchDir records an entry change in directory dir: a blind write of its
// times, so that concurrent entry changes do not conflict.
func touchDir(tx kv.Txn, dir Ino, now int64) {
	tx.Put(meta.DirTimesKey(uint64(dir)), meta.AppendDirTimes(nil, meta.DirTimes{Mtime: now, Ctime: now, ChangeID: uint64(now)}))
}

// touchedDirAttr is the attributes of directory dir, whose inode record is
// dirIn, after touchDir(tx, dir, now) in the same transaction.
func touchedDirAttr(dir Ino, dirIn *meta.Inode, now int64) Attr {
	in := *dirIn
	in.Mtime, in.Ctime, in.ChangeID = now, now, uint64(now)
	return toAttr(dir, &in)
}

// cacheDirAttr caches a directory's attributes that a transaction just
// committed, unless the cache holds newer ones: transactions on one
// directory may finish in another order than they committed. Entry
// changes in one directory do not conflict (its times are written
// blind), so the stored times are those of the last to commit, which may
// be microseconds older than the newest cached here; both are times of a
// change that happened.
func (fs *FS) cacheDirAttr(a Attr) {
	fs.attrs.PutIf(a.Ino, a, func(cur Attr) bool { return cur.ChangeID < a.ChangeID })
}

// GetAttr returns the attributes of ino, from the cache when fresh. The size
// includes data still in the write-back buffer.
func (fs *FS) GetAttr(ctx context.Context, ino Ino) (Attr, error) {
	a, err := fs.attr(ctx, ino)
	if err != nil {
		return Attr{}, wrap("getattr", ino, err)
	}
	return a, nil
}

// GetAttrHandle returns the attributes of the inode a handle names, or
// ESTALE when the handle's inode is gone or was another generation.
func (fs *FS) GetAttrHandle(ctx context.Context, h Handle) (Attr, error) {
	a, err := fs.attr(ctx, h.Ino)
	if err == nil && a.Gen != h.Gen {
		err = syscall.ESTALE
	}
	if err != nil {
		return Attr{}, wrap("getattr", h.Ino, err)
	}
	return a, nil
}

func (fs *FS) attr(ctx context.Context, ino Ino) (Attr, error) {
	// A file being written links batches meanwhile, and a link's settling
	// drops the cached attributes and the batch from the in-flight list
	// under f.mu. So the cache is read, and an entry cached, under f.mu,
	// together with the in-flight data that raises the size: attributes
	// from before a link never meet the in-flight list from after it. A
	// read from the store that a link overtook starts again, as does one
	// whose write-back state was dropped or started meanwhile.
	for {
		f := fs.lookupFile(ino)
		var flushes uint64
		if f != nil {
			f.mu.Lock()
			if f.dropped {
				f.mu.Unlock()
				continue
			}
			flushes = f.flushes
		}
		a, ok := fs.attrs.Get(ino)
		if ok {
			if f != nil {
				f.raiseSize(&a)
				f.mu.Unlock()
			}
			return a, nil
		}
		if f != nil {
			f.mu.Unlock()
		}
		err := fs.store.View(ctx, func(r kv.Reader) error {
			var err error
			a, err = loadAttr(ctx, r, ino)
			return err
		})
		if err != nil {
			return Attr{}, err
		}
		if f == nil {
			if fs.lookupFile(ino) != nil {
				continue
			}
			fs.attrs.Put(ino, a)
			return a, nil
		}
		f.mu.Lock()
		if f.dropped || f.flushes != flushes {
			f.mu.Unlock()
			continue
		}
		fs.attrs.Put(ino, a)
		f.raiseSize(&a)
		f.mu.Unlock()
		return a, nil
	}
}

// entryAttrs gives entries their attributes as fs.attr would: from the
// cache, else from r, where the records of every entry not cached are read
// with one batched read, together with the extra keys, whose values it
// returns. The directory entry's type says which inodes are directories,
// whose times record is read in the same batch. An entry whose inode is
// gone or unreadable gets no attributes (Attr stays nil): it was removed
// since its directory was read.
func (fs *FS) entryAttrs(ctx context.Context, r kv.Reader, entries []DirEntry, extra [][]byte) ([][]byte, error) {
	attrs := make([]Attr, len(entries))
	// missed is an entry to load: its index and where its records are
	// in keys (the inode record, then the times record of a directory).
	type missed struct {
		entry, at int
		dir       bool
	}
	var misses []missed
	keys := append(make([][]byte, 0, len(extra)+len(entries)), extra...)
	for i := range entries {
		e := &entries[i]
		if e.Type == TypeRegular && fs.lookupFile(e.Ino) != nil {
			// Being written: its batches may link during the listing,
			// and fs.attr is the way to its attributes that is safe
			// against that. Such files are few.
			a, err := fs.attr(ctx, e.Ino)
			switch {
			case err == nil:
				attrs[i] = a
				e.Attr = &attrs[i]
			case !errors.Is(err, syscall.ESTALE):
				return nil, err
			}
			continue
		}
		if a, ok := fs.attrs.Get(e.Ino); ok {
			fs.applyBuffered(&a)
			attrs[i] = a
			e.Attr = &attrs[i]
			continue
		}
		m := missed{entry: i, at: len(keys), dir: e.Type == TypeDir}
		misses = append(misses, m)
		keys = append(keys, meta.InodeKey(uint64(e.Ino)))
		if m.dir {
			keys = append(keys, meta.DirTimesKey(uint64(e.Ino)))
		}
	}
	var vals [][]byte
	if len(keys) > 0 {
		var err error
		if vals, err = kv.GetMany(ctx, r, keys); err != nil {
			return nil, err
		}
	}
	for _, m := range misses {
		e := &entries[m.entry]
		var got attrRecords
		if m.dir {
			got = attrRecords{timesRead: true, times: vals[m.at+1]}
		}
		a, err := decodeAttr(ctx, r, e.Ino, vals[m.at], got)
		if err != nil {
			continue
		}
		fs.attrs.Put(e.Ino, a)
		fs.applyBuffered(&a)
		attrs[m.entry] = a
		e.Attr = &attrs[m.entry]
	}
	return vals[:len(extra):len(extra)], nil
}

// cacheAttr stores attributes that a transaction just committed.
func (fs *FS) cacheAttr(a Attr) { fs.attrs.Put(a.Ino, a) }
