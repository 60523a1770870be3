package core

import (
	"context"
	"syscall"
	"time"

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
	if err := checkName(name); err != nil {
		return Attr{}, wrap("publish", dir, err)
	}
	// The transaction also links data and may unlink a replaced file.
	if err := checkXattrUpdate(opts.Xattrs, nil, 16); err != nil {
		return Attr{}, wrap("publish", tmp, err)
	}
	if err := fs.breakEntry(ctx, id, dir, name); err != nil {
		return Attr{}, wrap("publish", dir, err)
	}
	cookie, err := fs.uniqs.Next(ctx)
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
			ex, err := getInode(ctx, tx, Ino(d.Ino))
			if err != nil {
				return err
			}
			if FileType(ex.Type) == TypeDir {
				return syscall.EISDIR
			}
			if err := checkSticky(id, dirIn, ex); err != nil {
				return err
			}
			deleteEntry(tx, dir, name, d)
			if err := fs.unlinkInode(ctx, tx, Ino(d.Ino), ex, now, events); err != nil {
				return err
			}
			replaced = Ino(d.Ino)
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
	fs.attrs.Invalidate(dir)
	fs.entries.Invalidate(entryKey{dir, name})
	fs.cacheAttr(result)
	if replaced != 0 {
		fs.attrs.Invalidate(replaced)
		fs.kick()
	}
	return result, nil
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
