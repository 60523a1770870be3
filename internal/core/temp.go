package core

import (
	"context"
	"syscall"
	"time"

	"github.com/claudefs/cfs-gateway/internal/data"
	"github.com/claudefs/cfs-gateway/internal/engine/kv"
	"github.com/claudefs/cfs-gateway/internal/meta"
)

// tempOrphanAge is how long a temporary file may go unpublished before the
// reaper of another process (or of a later run of this one) purges it: an
// upload that takes longer than this is abandoned.
const tempOrphanAge = 24 * time.Hour

// CreateTemp makes a regular file without a name in directory dir (which
// decides its permissions, group and quota, as for Create). It can be
// written and read by its inode, and becomes visible only when Publish gives
// it a name: what S3 PUT and multipart uploads use so that an interrupted
// upload never leaves a partial file. A temporary file never published is
// purged after tempOrphanAge, or at Discard.
func (fs *FS) CreateTemp(ctx context.Context, id *Identity, dir Ino, mode uint32) (Attr, error) {
	ino, err := fs.inos.Next(ctx)
	if err != nil {
		return Attr{}, wrap("create temp", dir, err)
	}
	var result Attr
	var events chargeEvents
	err = fs.update(ctx, &events, func(tx kv.Txn) error {
		now := fs.now().UnixNano()
		dirIn, err := getDir(ctx, tx, dir)
		if err != nil {
			return err
		}
		if err := check(id, dirIn, permWrite|permExec); err != nil {
			return err
		}
		in := newInode(id, dirIn, TypeRegular, mode, now)
		in.Nlink = 0
		in.Flags |= meta.InodeTemp
		if err := fs.charge(ctx, tx, in.UID, in.GID, 0, 1, &events); err != nil {
			return err
		}
		tx.Put(meta.InodeKey(ino), meta.AppendInode(nil, in))
		tx.Put(meta.OrphanKey(ino), meta.AppendU64(nil, uint64(fs.now().Unix())))
		result = toAttr(Ino(ino), in)
		return nil
	})
	if err != nil {
		return Attr{}, wrap("create temp", dir, err)
	}
	fs.temps.Store(Ino(ino), struct{}{})
	fs.cacheAttr(result)
	return result, nil
}

// Publish makes temporary file tmp durable and gives it the name name in
// dir, atomically replacing a non-directory entry of that name: a reader
// sees the old file or the new one, never a mix or nothing.
func (fs *FS) Publish(ctx context.Context, id *Identity, tmp, dir Ino, name string) (Attr, error) {
	return fs.PublishWith(ctx, id, tmp, dir, name, PublishOptions{})
}

// PublishOptions are further changes to a temporary file that PublishWith
// makes in the transaction that names it.
type PublishOptions struct {
	// Mtime, unless zero, is the file's modification time, so that a
	// protocol can record it beforehand (S3 keeps it in the ETag record).
	Mtime time.Time
	// Xattrs are set on the file with the filesystem's own authority, as
	// UpdateXattrs by Root would: protocol attributes included.
	Xattrs map[string][]byte
}

// PublishWith is Publish that also makes the changes of opts. The file's
// last buffered data, its attributes and its name commit in one
// transaction, so that publishing a small file costs one durable commit.
func (fs *FS) PublishWith(ctx context.Context, id *Identity, tmp, dir Ino, name string, opts PublishOptions) (Attr, error) {
	cookie, err := fs.preparePublish(ctx, id, dir, name, opts)
	if err != nil {
		return Attr{}, wrap("publish", dir, err)
	}
	var result Attr
	var replaced Ino
	err = fs.flushFileWith(ctx, tmp, fs.lookupFile(tmp), func(tx kv.Txn, events *chargeEvents) error {
		replaced = 0
		now := fs.now().UnixNano()
		in, err := getInode(ctx, tx, tmp)
		if err != nil {
			return err
		}
		if in.Flags&meta.InodeTemp == 0 {
			return syscall.EINVAL
		}
		dirIn, d, exists, err := entryForChange(ctx, tx, id, dir, name)
		if err != nil {
			return err
		}
		if exists {
			if replaced, err = fs.replaceEntry(ctx, tx, id, dir, name, dirIn, d, now, events); err != nil {
				return err
			}
		}
		in.Nlink = 1
		in.Flags &^= meta.InodeTemp
		in.Ctime = now
		if !opts.Mtime.IsZero() {
			in.Mtime = opts.Mtime.UnixNano()
		}
		in.ChangeID++
		tx.Put(meta.InodeKey(uint64(tmp)), meta.AppendInode(nil, in))
		tx.Delete(meta.OrphanKey(uint64(tmp)))
		for x, v := range opts.Xattrs {
			tx.Put(meta.XattrKey(uint64(tmp), x), v)
		}
		putEntry(tx, dir, name, meta.Dentry{Ino: uint64(tmp), Type: in.Type, Cookie: cookie})
		touchDir(tx, dir, now)
		result = toAttr(tmp, in)
		return nil
	})
	if err != nil {
		return Attr{}, wrap("publish", tmp, err)
	}
	fs.temps.Delete(tmp)
	fs.forgetFile(tmp)
	fs.published(dir, name, result, replaced)
	return result, nil
}

// MaxPublishData is the most data PublishData takes: files this small keep
// their data in the metadata store.
const MaxPublishData = data.InlineMax

// NewFileData is a small file that PublishData creates whole.
type NewFileData struct {
	Mode uint32
	// UID and GID, if set, own the file and its quota usage instead of the
	// caller (S3: an object belongs to its writer, not to the bucket owner
	// whose permission the write used).
	UID, GID *uint32
	// Data is the content, at most MaxPublishData bytes.
	Data []byte
}

// PublishData creates a file holding f.Data and names it name in dir in one
// transaction, replacing a non-directory entry as PublishWith does: what
// CreateTemp, Write and PublishWith do for a small file, for one durable
// commit and no block.
func (fs *FS) PublishData(ctx context.Context, id *Identity, dir Ino, name string, f NewFileData, opts PublishOptions) (Attr, error) {
	if len(f.Data) > data.InlineMax {
		return Attr{}, wrap("publish", dir, syscall.EFBIG)
	}
	cookie, err := fs.preparePublish(ctx, id, dir, name, opts)
	if err != nil {
		return Attr{}, wrap("publish", dir, err)
	}
	ino, err := fs.inos.Next(ctx)
	if err != nil {
		return Attr{}, wrap("publish", dir, err)
	}
	var slice uint64
	if len(f.Data) > 0 {
		n, err := fs.uniqs.Next(ctx)
		if err != nil {
			return Attr{}, wrap("publish", dir, err)
		}
		slice = data.InlineID(n)
	}
	var result Attr
	var replaced Ino
	var events chargeEvents
	err = fs.update(ctx, &events, func(tx kv.Txn) error {
		replaced = 0
		now := fs.now().UnixNano()
		dirIn, d, exists, err := entryForChange(ctx, tx, id, dir, name)
		if err != nil {
			return err
		}
		in := newInode(id, dirIn, TypeRegular, f.Mode, now)
		if f.UID != nil {
			in.UID = *f.UID
		}
		if f.GID != nil {
			in.GID = *f.GID
		}
		if !opts.Mtime.IsZero() {
			in.Mtime = opts.Mtime.UnixNano()
		}
		n := uint32(len(f.Data))
		in.Size = uint64(n)
		if err := fs.charge(ctx, tx, in.UID, in.GID, int64(n), 1, &events); err != nil {
			return err
		}
		if exists {
			if replaced, err = fs.replaceEntry(ctx, tx, id, dir, name, dirIn, d, now, &events); err != nil {
				return err
			}
		}
		tx.Put(meta.InodeKey(ino), meta.AppendInode(nil, in))
		if n > 0 {
			tx.Put(meta.ChunkKey(ino, 0), data.AppendSlices(nil, []data.Slice{{ID: slice, Size: n, Len: n}}))
			tx.Put(meta.SliceRefKey(slice), meta.AppendSliceRef(nil, meta.SliceRef{Refs: 1, Size: n}))
			tx.Put(meta.InlineKey(slice), f.Data)
		}
		for x, v := range opts.Xattrs {
			tx.Put(meta.XattrKey(ino, x), v)
		}
		putEntry(tx, dir, name, meta.Dentry{Ino: ino, Type: in.Type, Cookie: cookie})
		touchDir(tx, dir, now)
		result = toAttr(Ino(ino), in)
		return nil
	})
	if err != nil {
		return Attr{}, wrap("publish", dir, err)
	}
	fs.published(dir, name, result, replaced)
	return result, nil
}

// preparePublish checks what a publishing transaction will do before it
// runs (the name; attributes few enough to fit beside the data links and a
// replaced file's unlinking), breaks leases on a file it replaces, and
// returns the readdir cookie of the new entry.
func (fs *FS) preparePublish(ctx context.Context, id *Identity, dir Ino, name string, opts PublishOptions) (uint64, error) {
	if err := checkName(name); err != nil {
		return 0, err
	}
	if err := checkXattrUpdate(opts.Xattrs, nil, 16); err != nil {
		return 0, err
	}
	if err := fs.breakEntry(ctx, id, dir, name); err != nil {
		return 0, err
	}
	return fs.uniqs.Next(ctx)
}

// replaceEntry removes the non-directory entry d of name in dir, which a
// file being published replaces, and returns the inode it named.
func (fs *FS) replaceEntry(ctx context.Context, tx kv.Txn, id *Identity, dir Ino, name string, dirIn *meta.Inode, d meta.Dentry, now int64, events *chargeEvents) (Ino, error) {
	ex, err := getInode(ctx, tx, Ino(d.Ino))
	if err != nil {
		return 0, err
	}
	if FileType(ex.Type) == TypeDir {
		return 0, syscall.EISDIR
	}
	if err := checkSticky(id, dirIn, ex); err != nil {
		return 0, err
	}
	deleteEntry(tx, dir, name, d)
	if err := fs.unlinkInode(ctx, tx, Ino(d.Ino), ex, now, events); err != nil {
		return 0, err
	}
	return Ino(d.Ino), nil
}

// published updates the caches after a file a was published as name in
// dir, replacing inode replaced (0 if none).
func (fs *FS) published(dir Ino, name string, a Attr, replaced Ino) {
	fs.attrs.Invalidate(dir)
	fs.entries.Invalidate(entryKey{dir, name})
	fs.cacheAttr(a)
	if replaced != 0 {
		fs.attrs.Invalidate(replaced)
		fs.kick()
	}
}

// Discard drops a temporary file that will not be published; its data is
// purged in the background.
func (fs *FS) Discard(ctx context.Context, tmp Ino) error {
	err := fs.store.Update(ctx, func(tx kv.Txn) error {
		in, err := getInode(ctx, tx, tmp)
		if err != nil {
			return err
		}
		if in.Flags&meta.InodeTemp == 0 {
			return syscall.EINVAL
		}
		// An orphan record without a time is due for purging at once.
		tx.Put(meta.OrphanKey(uint64(tmp)), nil)
		return nil
	})
	if err != nil {
		return wrap("discard", tmp, err)
	}
	fs.temps.Delete(tmp)
	fs.truncateBuffered(tmp, 0)
	fs.kick()
	return nil
}

// purgeable reports whether the reaper may purge orphan ino now: unlinked
// files at once; temporary files only when abandoned.
func (fs *FS) purgeable(ino Ino, value []byte) bool {
	if len(value) != 8 {
		return true
	}
	if _, live := fs.temps.Load(ino); live {
		return false
	}
	created, _ := meta.DecodeU64(value)
	return fs.now().Sub(time.Unix(int64(created), 0)) > tempOrphanAge
}
