package core

import (
	"context"
	"errors"
	"strings"
	"syscall"

	"github.com/claudefs/cfs-gateway/internal/engine/kv"
	"github.com/claudefs/cfs-gateway/internal/meta"
)

// Limits of extended attributes, as Linux has them.
const (
	MaxXattrNameLen  = 255
	MaxXattrValueLen = 64 << 10
)

// ProtocolXattrPrefix starts the names of attributes that protocols keep
// about a file (S3 object metadata and tags, SMB streams and attributes):
// readable with read permission, writable with write permission, and not
// listed to clients by ListXattr.
const ProtocolXattrPrefix = "cfs."

// XattrFlag says whether SetXattr may create, replace, or both.
type XattrFlag uint8

const (
	XattrAny     XattrFlag = iota
	XattrCreate            // fail with EEXIST if it exists
	XattrReplace           // fail with ENODATA if it does not
)

// xattrAccess checks access to the attribute name of in: "user." names
// follow the file's read/write permission; "trusted." and "security." are
// root's; "system." names are not stored here.
func xattrAccess(id *Identity, in *meta.Inode, name string, write bool) error {
	switch {
	case name == "" || len(name) > MaxXattrNameLen:
		return syscall.ERANGE
	case strings.HasPrefix(name, "user."):
		t := FileType(in.Type)
		if t != TypeRegular && t != TypeDir {
			return syscall.EPERM
		}
		if write {
			if t == TypeDir && in.Mode&ModeSticky != 0 && id.UID != 0 && id.UID != in.UID {
				return syscall.EPERM
			}
			return check(id, in, permWrite)
		}
		return check(id, in, permRead)
	case strings.HasPrefix(name, ProtocolXattrPrefix):
		if write {
			return check(id, in, permWrite)
		}
		return check(id, in, permRead)
	case strings.HasPrefix(name, "trusted."), strings.HasPrefix(name, "security."):
		if id.UID != 0 {
			return syscall.EPERM
		}
		return nil
	}
	return syscall.ENOTSUP
}

// GetXattr returns the value of extended attribute name.
func (fs *FS) GetXattr(ctx context.Context, id *Identity, ino Ino, name string) ([]byte, error) {
	var val []byte
	err := fs.store.View(ctx, func(r kv.Reader) error {
		in, err := getInode(ctx, r, ino)
		if err != nil {
			return err
		}
		if err := xattrAccess(id, in, name, false); err != nil {
			return err
		}
		val, err = r.Get(ctx, meta.XattrKey(uint64(ino), name))
		if errors.Is(err, kv.ErrNotFound) {
			return syscall.ENODATA
		}
		return err
	})
	return val, wrap("getxattr", ino, err)
}

// ListXattr returns the names of the extended attributes the caller may read.
func (fs *FS) ListXattr(ctx context.Context, id *Identity, ino Ino) ([]string, error) {
	var names []string
	err := fs.store.View(ctx, func(r kv.Reader) error {
		in, err := getInode(ctx, r, ino)
		if err != nil {
			return err
		}
		p := meta.XattrPrefix(uint64(ino))
		pairs, err := r.Scan(ctx, p, kv.PrefixEnd(p), 0, false)
		if err != nil {
			return err
		}
		for _, kvp := range pairs {
			name := string(kvp.Key[len(p):])
			if strings.HasPrefix(name, ProtocolXattrPrefix) {
				continue
			}
			if strings.HasPrefix(name, "user.") || id.UID == 0 || xattrAccess(id, in, name, false) == nil {
				names = append(names, name)
			}
		}
		return nil
	})
	return names, wrap("listxattr", ino, err)
}

// SetXattr sets extended attribute name to value.
func (fs *FS) SetXattr(ctx context.Context, id *Identity, ino Ino, name string, value []byte, flag XattrFlag) error {
	if len(value) > MaxXattrValueLen {
		return wrap("setxattr", ino, syscall.E2BIG)
	}
	err := fs.xattrUpdate(ctx, id, ino, name, func(tx kv.Txn, key []byte, exists bool) error {
		switch {
		case flag == XattrCreate && exists:
			return syscall.EEXIST
		case flag == XattrReplace && !exists:
			return syscall.ENODATA
		}
		tx.Put(key, value)
		return nil
	})
	return wrap("setxattr", ino, err)
}

// RemoveXattr removes extended attribute name.
func (fs *FS) RemoveXattr(ctx context.Context, id *Identity, ino Ino, name string) error {
	err := fs.xattrUpdate(ctx, id, ino, name, func(tx kv.Txn, key []byte, exists bool) error {
		if !exists {
			return syscall.ENODATA
		}
		tx.Delete(key)
		return nil
	})
	return wrap("removexattr", ino, err)
}

func (fs *FS) xattrUpdate(ctx context.Context, id *Identity, ino Ino, name string, fn func(tx kv.Txn, key []byte, exists bool) error) error {
	var result Attr
	err := fs.store.Update(ctx, func(tx kv.Txn) error {
		in, err := getInode(ctx, tx, ino)
		if err != nil {
			return err
		}
		if err := xattrAccess(id, in, name, true); err != nil {
			return err
		}
		key := meta.XattrKey(uint64(ino), name)
		_, err = tx.Get(ctx, key)
		if err != nil && !errors.Is(err, kv.ErrNotFound) {
			return err
		}
		if err := fn(tx, key, err == nil); err != nil {
			return err
		}
		if err := fs.changedCtime(ctx, tx, ino, in); err != nil {
			return err
		}
		result = toAttr(ino, in)
		return nil
	})
	if err == nil {
		fs.cacheAttr(result)
	}
	return err
}

// changedCtime records in tx that the attributes of ino (whose record is in)
// changed now: a new ctime and change id, in the times record for a
// directory.
func (fs *FS) changedCtime(ctx context.Context, tx kv.Txn, ino Ino, in *meta.Inode) error {
	now := fs.now().UnixNano()
	in.Ctime = now
	in.ChangeID++
	tx.Put(meta.InodeKey(uint64(ino)), meta.AppendInode(nil, in))
	if FileType(in.Type) != TypeDir {
		return nil
	}
	if err := mergeDirTimes(ctx, tx, ino, in); err != nil {
		return err
	}
	in.Ctime = now
	in.ChangeID = uint64(now)
	tx.Put(meta.DirTimesKey(uint64(ino)), meta.AppendDirTimes(nil, meta.DirTimes{Mtime: in.Mtime, Ctime: now, ChangeID: in.ChangeID}))
	return nil
}

// GetXattrs returns every extended attribute of ino whose name starts with
// prefix, in one read: what a protocol needs to answer for an object's
// metadata at once.
func (fs *FS) GetXattrs(ctx context.Context, id *Identity, ino Ino, prefix string) (map[string][]byte, error) {
	out := map[string][]byte{}
	err := fs.store.View(ctx, func(r kv.Reader) error {
		in, err := getInode(ctx, r, ino)
		if err != nil {
			return err
		}
		if err := xattrAccess(id, in, prefix+"x", false); err != nil {
			return err
		}
		p := meta.XattrKey(uint64(ino), prefix)
		pairs, err := r.Scan(ctx, p, kv.PrefixEnd(p), 0, false)
		if err != nil {
			return err
		}
		base := len(meta.XattrPrefix(uint64(ino)))
		for _, kvp := range pairs {
			out[string(kvp.Key[base:])] = kvp.Value
		}
		return nil
	})
	return out, wrap("getxattrs", ino, err)
}

// checkXattrUpdate checks that an update of several attributes is within
// the limits of one transaction and of each name and value; at most max
// attributes may change.
func checkXattrUpdate(set map[string][]byte, remove []string, max int) error {
	if len(set)+len(remove) > max {
		return syscall.E2BIG
	}
	total := 0
	for name, v := range set {
		total += len(name) + len(v)
		if len(v) > MaxXattrValueLen || total > kv.MaxTxnBytes/2 {
			return syscall.E2BIG
		}
		if name == "" || len(name) > MaxXattrNameLen {
			return syscall.ERANGE
		}
	}
	return nil
}

// UpdateXattrs sets and removes several extended attributes of ino in one
// transaction.
func (fs *FS) UpdateXattrs(ctx context.Context, id *Identity, ino Ino, set map[string][]byte, remove []string) error {
	if err := checkXattrUpdate(set, remove, kv.MaxTxnOps-4); err != nil {
		return wrap("setxattrs", ino, err)
	}
	var result Attr
	err := fs.store.Update(ctx, func(tx kv.Txn) error {
		in, err := getInode(ctx, tx, ino)
		if err != nil {
			return err
		}
		for name := range set {
			if err := xattrAccess(id, in, name, true); err != nil {
				return err
			}
		}
		for _, name := range remove {
			if err := xattrAccess(id, in, name, true); err != nil {
				return err
			}
			tx.Delete(meta.XattrKey(uint64(ino), name))
		}
		for name, v := range set {
			tx.Put(meta.XattrKey(uint64(ino), name), v)
		}
		if err := fs.changedCtime(ctx, tx, ino, in); err != nil {
			return err
		}
		result = toAttr(ino, in)
		return nil
	})
	if err == nil {
		fs.cacheAttr(result)
	}
	return wrap("setxattrs", ino, err)
}

// capacity is implemented by blob engines that know their space.
type capacity interface {
	Capacity() (total, avail uint64, err error)
}

// StatFS returns the space of the block store and the inode totals.
func (fs *FS) StatFS(ctx context.Context) (StatFS, error) {
	var st StatFS
	if c, ok := fs.blobs.(capacity); ok {
		total, avail, err := c.Capacity()
		if err != nil {
			return st, wrap("statfs", 0, err)
		}
		st.TotalBytes, st.FreeBytes, st.AvailBytes = total, avail, avail
	} else {
		// An object store has no fixed size: report a large one.
		st.TotalBytes, st.FreeBytes, st.AvailBytes = 1<<60, 1<<60, 1<<60
	}
	st.TotalInodes, st.FreeInodes, st.AvailInodes = 1<<40, 1<<40, 1<<40
	if err := fs.Health(ctx); err != nil {
		return st, wrap("statfs", 0, err)
	}
	return st, nil
}
