package core

import (
	"context"
	"errors"
	"slices"
	"strings"
	"syscall"

	"github.com/claudefs/cfs-gateway/internal/core/lock"
	"github.com/claudefs/cfs-gateway/internal/engine/kv"
	"github.com/claudefs/cfs-gateway/internal/meta"
)

// MaxNameLen is the longest entry name, in bytes.
const MaxNameLen = 255

// MaxLinks is the most hard links an inode may have.
const MaxLinks = 65000

// MaxSymlinkLen is the longest symlink target, in bytes.
const MaxSymlinkLen = 4095

func checkName(name string) error {
	switch {
	case name == "" || name == "." || name == "..":
		return syscall.EINVAL
	case len(name) > MaxNameLen:
		return syscall.ENAMETOOLONG
	case strings.ContainsAny(name, "/\x00"):
		return syscall.EINVAL
	}
	return nil
}

func getDentry(ctx context.Context, r kv.Reader, dir Ino, name string) (meta.Dentry, bool, error) {
	v, err := r.Get(ctx, meta.DentryKey(uint64(dir), name))
	if errors.Is(err, kv.ErrNotFound) {
		return meta.Dentry{}, false, nil
	}
	if err != nil {
		return meta.Dentry{}, false, err
	}
	d, err := meta.DecodeDentry(v)
	return d, err == nil, err
}

// putEntry writes a directory entry and its readdir index entry.
func putEntry(tx kv.Txn, dir Ino, name string, d meta.Dentry) {
	tx.Put(meta.DentryKey(uint64(dir), name), meta.AppendDentry(nil, d))
	tx.Put(meta.CookieKey(uint64(dir), d.Cookie), meta.AppendCookieEntry(nil, meta.CookieEntry{Ino: d.Ino, Type: d.Type, Name: name}))
}

// deleteEntry removes a directory entry and its readdir index entry.
func deleteEntry(tx kv.Txn, dir Ino, name string, d meta.Dentry) {
	tx.Delete(meta.DentryKey(uint64(dir), name))
	tx.Delete(meta.CookieKey(uint64(dir), d.Cookie))
}

// Lookup returns the attributes of name in directory dir. "." and ".." are
// the directory itself and its parent.
func (fs *FS) Lookup(ctx context.Context, id *Identity, dir Ino, name string) (Attr, error) {
	a, err := fs.lookup(ctx, id, dir, name)
	if err != nil {
		return Attr{}, wrap("lookup", dir, err)
	}
	return a, nil
}

func (fs *FS) lookup(ctx context.Context, id *Identity, dir Ino, name string) (Attr, error) {
	da, err := fs.attr(ctx, dir)
	if err != nil {
		return Attr{}, err
	}
	if da.Type != TypeDir {
		return Attr{}, syscall.ENOTDIR
	}
	if !allowed(id, attrInode(&da), permExec) {
		return Attr{}, syscall.EACCES
	}
	switch name {
	case ".":
		return da, nil
	case "..":
		var parent Ino
		err := fs.store.View(ctx, func(r kv.Reader) error {
			in, err := getInode(ctx, r, dir)
			if err == nil {
				parent = Ino(in.Parent)
			}
			return err
		})
		if err != nil {
			return Attr{}, err
		}
		return fs.attr(ctx, parent)
	}
	if len(name) > MaxNameLen {
		return Attr{}, syscall.ENAMETOOLONG
	}
	key := entryKey{dir, name}
	if ino, ok := fs.entries.Get(key); ok {
		if a, err := fs.attr(ctx, ino); err == nil {
			return a, nil
		}
		fs.entries.Invalidate(key)
	}
	var a Attr
	err = fs.store.View(ctx, func(r kv.Reader) error {
		d, ok, err := getDentry(ctx, r, dir, name)
		if err != nil {
			return err
		}
		if !ok {
			return syscall.ENOENT
		}
		a, err = loadAttr(ctx, r, Ino(d.Ino))
		return err
	})
	if err != nil {
		return Attr{}, err
	}
	fs.entries.Put(key, a.Ino)
	if a.Type == TypeRegular && fs.lookupFile(a.Ino) != nil {
		// Being written: its batches may link meanwhile, and fs.attr is
		// the way to its attributes that is safe against that.
		return fs.attr(ctx, a.Ino)
	}
	fs.attrs.Put(a.Ino, a)
	return a, nil
}

// attrInode gives the fields of an Attr that permission checks read.
func attrInode(a *Attr) *meta.Inode {
	return &meta.Inode{Type: uint8(a.Type), Mode: a.Mode, UID: a.UID, GID: a.GID}
}

// newInode builds the record of an inode that id creates in dir: owned by
// the caller, with the group of a setgid directory (and, for a directory,
// its setgid bit).
func newInode(id *Identity, dir *meta.Inode, typ FileType, mode uint32, now int64) *meta.Inode {
	in := &meta.Inode{Type: uint8(typ), Mode: mode & ModePerm, Nlink: 1, UID: id.UID, GID: id.GID,
		Atime: now, Mtime: now, Ctime: now, Btime: now, Gen: uint64(now), ChangeID: 1}
	if dir.Mode&ModeSetgid != 0 {
		in.GID = dir.GID
		if typ == TypeDir {
			in.Mode |= ModeSetgid
		}
	}
	if typ != TypeDir && in.Mode&ModeSetgid != 0 && id.UID != 0 && !id.InGroup(in.GID) {
		in.Mode &^= ModeSetgid
	}
	return in
}

// nodeSpec says what makeNode creates.
type nodeSpec struct {
	op     string
	typ    FileType
	mode   uint32
	rdev   uint64
	target string
	// onExists decides what an existing entry means; nil is EEXIST.
	onExists func(d meta.Dentry, existing *meta.Inode) error
}

// errExisting tells makeNode that the existing entry is the answer.
var errExisting = errors.New("existing entry is the result")

// makeNode creates a new inode named name in dir.
func (fs *FS) makeNode(ctx context.Context, id *Identity, dir Ino, name string, spec nodeSpec, verf uint64) (Attr, bool, error) {
	if err := checkName(name); err != nil {
		return Attr{}, false, wrap(spec.op, dir, err)
	}
	ino, err := fs.inos.Next(ctx)
	if err != nil {
		return Attr{}, false, wrap(spec.op, dir, err)
	}
	cookie, err := fs.uniqs.Next(ctx)
	if err != nil {
		return Attr{}, false, wrap(spec.op, dir, err)
	}
	var result, dirAttr Attr
	created := false
	var events chargeEvents
	err = fs.update(ctx, &events, func(tx kv.Txn) error {
		created = false
		now := fs.now().UnixNano()
		dirIn, d, exists, err := entryForChange(ctx, tx, id, dir, name)
		if err != nil {
			return err
		}
		if exists {
			if spec.onExists == nil {
				return syscall.EEXIST
			}
			ex, err := getInode(ctx, tx, Ino(d.Ino))
			if err != nil {
				return err
			}
			if err := spec.onExists(d, ex); err != nil {
				if err == errExisting {
					result, err = loadAttr(ctx, tx, Ino(d.Ino))
				}
				return err
			}
		}
		if spec.typ == TypeCharDev || spec.typ == TypeBlockDev {
			if id.UID != 0 {
				return syscall.EPERM
			}
		}
		in := newInode(id, dirIn, spec.typ, spec.mode, now)
		in.Rdev, in.Target, in.Verf = spec.rdev, spec.target, verf
		in.Size = uint64(len(spec.target))
		if spec.typ == TypeDir {
			in.Nlink = 2
			in.Parent = uint64(dir)
			dirIn.Nlink++
			tx.Put(meta.InodeKey(uint64(dir)), meta.AppendInode(nil, dirIn))
			tx.Put(meta.DirTimesKey(ino), meta.AppendDirTimes(nil, meta.DirTimes{Mtime: now, Ctime: now, ChangeID: 1}))
		}
		if err := fs.charge(ctx, tx, in.UID, in.GID, int64(in.Size), 1, &events); err != nil {
			return err
		}
		tx.Put(meta.InodeKey(ino), meta.AppendInode(nil, in))
		putEntry(tx, dir, name, meta.Dentry{Ino: ino, Type: in.Type, Cookie: cookie})
		touchDir(tx, dir, now)
		result = toAttr(Ino(ino), in)
		dirAttr = touchedDirAttr(dir, dirIn, now)
		created = true
		return nil
	})
	if err == errExisting {
		err = nil
	}
	if err != nil {
		return Attr{}, false, wrap(spec.op, dir, err)
	}
	if created {
		// The reply's post-operation directory attributes then come from
		// the cache instead of the store.
		fs.cacheDirAttr(dirAttr)
		fs.cacheAttr(result)
		fs.entries.Put(entryKey{dir, name}, result.Ino)
	}
	return result, created, nil
}

// entryForChange reads, inside tx, directory dir (which the caller must be
// allowed to change) and its entry name, if present.
func entryForChange(ctx context.Context, tx kv.Txn, id *Identity, dir Ino, name string) (*meta.Inode, meta.Dentry, bool, error) {
	dirIn, err := getDir(ctx, tx, dir)
	if err != nil {
		return nil, meta.Dentry{}, false, err
	}
	if err := check(id, dirIn, permWrite|permExec); err != nil {
		return nil, meta.Dentry{}, false, err
	}
	d, exists, err := getDentry(ctx, tx, dir, name)
	return dirIn, d, exists, err
}

// Create makes a regular file name in dir with permission bits mode. It
// returns the file's attributes and whether it was created (false when
// CreateUnchecked or a repeated CreateExclusive found it).
func (fs *FS) Create(ctx context.Context, id *Identity, dir Ino, name string, mode uint32, how CreateMode, verf uint64) (Attr, bool, error) {
	spec := nodeSpec{op: "create", typ: TypeRegular, mode: mode}
	switch how {
	case CreateUnchecked:
		spec.onExists = func(d meta.Dentry, ex *meta.Inode) error {
			if FileType(ex.Type) == TypeDir {
				return syscall.EISDIR
			}
			if FileType(ex.Type) != TypeRegular {
				return syscall.EEXIST
			}
			return errExisting
		}
	case CreateExclusive:
		spec.onExists = func(d meta.Dentry, ex *meta.Inode) error {
			if FileType(ex.Type) == TypeRegular && ex.Verf == verf && verf != 0 {
				return errExisting
			}
			return syscall.EEXIST
		}
	default:
		verf = 0
	}
	if how != CreateExclusive {
		verf = 0
	}
	return fs.makeNode(ctx, id, dir, name, spec, verf)
}

// Mkdir makes a directory.
func (fs *FS) Mkdir(ctx context.Context, id *Identity, dir Ino, name string, mode uint32) (Attr, error) {
	a, _, err := fs.makeNode(ctx, id, dir, name, nodeSpec{op: "mkdir", typ: TypeDir, mode: mode}, 0)
	return a, err
}

// Symlink makes a symbolic link to target.
func (fs *FS) Symlink(ctx context.Context, id *Identity, dir Ino, name, target string) (Attr, error) {
	if target == "" || len(target) > MaxSymlinkLen {
		if target == "" {
			return Attr{}, wrap("symlink", dir, syscall.EINVAL)
		}
		return Attr{}, wrap("symlink", dir, syscall.ENAMETOOLONG)
	}
	a, _, err := fs.makeNode(ctx, id, dir, name, nodeSpec{op: "symlink", typ: TypeSymlink, mode: 0o777, target: target}, 0)
	return a, err
}

// Mknod makes a fifo, socket or device node; rdev is major<<32|minor.
func (fs *FS) Mknod(ctx context.Context, id *Identity, dir Ino, name string, typ FileType, mode uint32, rdev uint64) (Attr, error) {
	switch typ {
	case TypeFifo, TypeSocket, TypeCharDev, TypeBlockDev:
	default:
		return Attr{}, wrap("mknod", dir, syscall.EINVAL)
	}
	if typ == TypeFifo || typ == TypeSocket {
		rdev = 0
	}
	a, _, err := fs.makeNode(ctx, id, dir, name, nodeSpec{op: "mknod", typ: typ, mode: mode, rdev: rdev}, 0)
	return a, err
}

// Readlink returns a symlink's target.
func (fs *FS) Readlink(ctx context.Context, ino Ino) (string, error) {
	var target string
	err := fs.store.View(ctx, func(r kv.Reader) error {
		in, err := getInode(ctx, r, ino)
		if err != nil {
			return err
		}
		if FileType(in.Type) != TypeSymlink {
			return syscall.EINVAL
		}
		target = in.Target
		return nil
	})
	return target, wrap("readlink", ino, err)
}

// Link makes name in dir a new hard link to ino.
func (fs *FS) Link(ctx context.Context, id *Identity, ino, dir Ino, name string) (Attr, error) {
	if err := checkName(name); err != nil {
		return Attr{}, wrap("link", dir, err)
	}
	cookie, err := fs.uniqs.Next(ctx)
	if err != nil {
		return Attr{}, wrap("link", dir, err)
	}
	var result Attr
	err = fs.update(ctx, nil, func(tx kv.Txn) error {
		now := fs.now().UnixNano()
		in, err := getInode(ctx, tx, ino)
		if err != nil {
			return err
		}
		if FileType(in.Type) == TypeDir {
			return syscall.EISDIR
		}
		if in.Nlink >= MaxLinks {
			return syscall.EMLINK
		}
		dirIn, err := getDir(ctx, tx, dir)
		if err != nil {
			return err
		}
		if err := check(id, dirIn, permWrite|permExec); err != nil {
			return err
		}
		if _, exists, err := getDentry(ctx, tx, dir, name); err != nil {
			return err
		} else if exists {
			return syscall.EEXIST
		}
		in.Nlink++
		in.Ctime = now
		in.ChangeID++
		tx.Put(meta.InodeKey(uint64(ino)), meta.AppendInode(nil, in))
		putEntry(tx, dir, name, meta.Dentry{Ino: uint64(ino), Type: in.Type, Cookie: cookie})
		touchDir(tx, dir, now)
		result = toAttr(ino, in)
		return nil
	})
	if err != nil {
		return Attr{}, wrap("link", ino, err)
	}
	fs.attrs.Invalidate(dir)
	fs.cacheAttr(result)
	if result.Type == TypeRegular {
		fs.applyBuffered(&result)
	}
	return result, nil
}

// unlinkInode drops one link of in (being removed from a directory). At the
// last link the inode is marked for purging and its quota released.
func (fs *FS) unlinkInode(ctx context.Context, tx kv.Txn, ino Ino, in *meta.Inode, now int64, ev *chargeEvents) error {
	if FileType(in.Type) == TypeDir {
		tx.Delete(meta.InodeKey(uint64(ino)))
		tx.Delete(meta.DirTimesKey(uint64(ino)))
		tx.Put(meta.OrphanKey(uint64(ino)), nil)
		return fs.charge(ctx, tx, in.UID, in.GID, 0, -1, ev)
	}
	in.Nlink--
	in.Ctime = now
	in.ChangeID++
	tx.Put(meta.InodeKey(uint64(ino)), meta.AppendInode(nil, in))
	if in.Nlink > 0 {
		return nil
	}
	tx.Put(meta.OrphanKey(uint64(ino)), nil)
	return fs.charge(ctx, tx, in.UID, in.GID, -int64(in.Size), -1, ev)
}

// emptyDir reports whether directory ino has no entries. It reads the
// directory's times so that the transaction conflicts with any concurrent
// entry change in it.
func emptyDir(ctx context.Context, tx kv.Txn, ino Ino) (bool, error) {
	if _, err := tx.Get(ctx, meta.DirTimesKey(uint64(ino))); err != nil && !errors.Is(err, kv.ErrNotFound) {
		return false, err
	}
	p := meta.DentryPrefix(uint64(ino))
	pairs, err := tx.Scan(ctx, p, kv.PrefixEnd(p), 1, false)
	return len(pairs) == 0, err
}

// Remove unlinks a non-directory entry.
func (fs *FS) Remove(ctx context.Context, id *Identity, dir Ino, name string) error {
	return fs.removeEntry(ctx, "remove", id, dir, name, false, nil)
}

// RemoveIf is Remove of an entry that must still name file ino, unchanged
// since the caller saw it with change id changeID (Attr.ChangeID; 0 checks
// the inode number alone). A removal decided on an earlier look (an S3
// lifecycle rule evaluated on a listing) then cannot remove a file that
// replaced or changed the one judged, whichever gateway made the change:
// the check and the removal are one transaction. Otherwise it removes
// nothing and fails with ESTALE.
func (fs *FS) RemoveIf(ctx context.Context, id *Identity, dir Ino, name string, ino Ino, changeID uint64) error {
	return fs.removeEntry(ctx, "remove", id, dir, name, false, &removeExpect{ino: ino, changeID: changeID})
}

// removeExpect is the file an entry must name for RemoveIf.
type removeExpect struct {
	ino      Ino
	changeID uint64
}

// Rmdir removes an empty directory.
func (fs *FS) Rmdir(ctx context.Context, id *Identity, dir Ino, name string) error {
	return fs.removeEntry(ctx, "rmdir", id, dir, name, true, nil)
}

func (fs *FS) removeEntry(ctx context.Context, op string, id *Identity, dir Ino, name string, wantDir bool, expect *removeExpect) error {
	if name == "." || name == ".." {
		return wrap(op, dir, syscall.EINVAL)
	}
	if len(name) > MaxNameLen {
		return wrap(op, dir, syscall.ENAMETOOLONG)
	}
	if err := fs.breakEntry(ctx, id, dir, name); err != nil {
		return wrap(op, dir, err)
	}
	var child Ino
	var events chargeEvents
	err := fs.update(ctx, &events, func(tx kv.Txn) error {
		now := fs.now().UnixNano()
		dirIn, d, ok, err := entryForChange(ctx, tx, id, dir, name)
		if err != nil {
			return err
		}
		if !ok {
			return syscall.ENOENT
		}
		child = Ino(d.Ino)
		in, err := getInode(ctx, tx, child)
		if err != nil {
			return err
		}
		if expect != nil && (child != expect.ino || expect.changeID != 0 && in.ChangeID != expect.changeID) {
			return syscall.ESTALE
		}
		isDir := FileType(in.Type) == TypeDir
		switch {
		case wantDir && !isDir:
			return syscall.ENOTDIR
		case !wantDir && isDir:
			return syscall.EISDIR
		}
		if err := checkSticky(id, dirIn, in); err != nil {
			return err
		}
		if isDir {
			empty, err := emptyDir(ctx, tx, child)
			if err != nil {
				return err
			}
			if !empty {
				return syscall.ENOTEMPTY
			}
			dirIn.Nlink--
			tx.Put(meta.InodeKey(uint64(dir)), meta.AppendInode(nil, dirIn))
		}
		deleteEntry(tx, dir, name, d)
		touchDir(tx, dir, now)
		return fs.unlinkInode(ctx, tx, child, in, now, &events)
	})
	if err != nil {
		return wrap(op, dir, err)
	}
	fs.attrs.Invalidate(dir)
	fs.attrs.Invalidate(child)
	fs.entries.Invalidate(entryKey{dir, name})
	fs.kick()
	return nil
}

// Rename moves sname in sdir to dname in ddir atomically, replacing a
// non-directory or an empty directory there.
func (fs *FS) Rename(ctx context.Context, id *Identity, sdir Ino, sname string, ddir Ino, dname string) error {
	if err := checkName(sname); err != nil {
		return wrap("rename", sdir, err)
	}
	if err := checkName(dname); err != nil {
		return wrap("rename", ddir, err)
	}
	if err := fs.breakEntry(ctx, id, sdir, sname); err != nil {
		return wrap("rename", sdir, err)
	}
	if err := fs.breakEntry(ctx, id, ddir, dname); err != nil {
		return wrap("rename", ddir, err)
	}
	cookie, err := fs.uniqs.Next(ctx)
	if err != nil {
		return wrap("rename", sdir, err)
	}
	var moved, replaced Ino
	var events chargeEvents
	err = fs.update(ctx, &events, func(tx kv.Txn) error {
		moved, replaced = 0, 0
		now := fs.now().UnixNano()
		sdirIn, err := getDir(ctx, tx, sdir)
		if err != nil {
			return err
		}
		ddirIn := sdirIn
		if ddir != sdir {
			if ddirIn, err = getDir(ctx, tx, ddir); err != nil {
				return err
			}
		}
		if err := check(id, sdirIn, permWrite|permExec); err != nil {
			return err
		}
		if err := check(id, ddirIn, permWrite|permExec); err != nil {
			return err
		}
		sd, ok, err := getDentry(ctx, tx, sdir, sname)
		if err != nil {
			return err
		}
		if !ok {
			return syscall.ENOENT
		}
		src := Ino(sd.Ino)
		srcIn, err := getInode(ctx, tx, src)
		if err != nil {
			return err
		}
		if err := checkSticky(id, sdirIn, srcIn); err != nil {
			return err
		}
		srcDir := FileType(srcIn.Type) == TypeDir
		if srcDir && sdir != ddir {
			// Moving a directory rewrites its "..": it needs write
			// permission on the directory itself, and must not move it
			// under itself.
			if err := check(id, srcIn, permWrite); err != nil {
				return err
			}
			for p := ddir; ; {
				if p == src {
					return syscall.EINVAL
				}
				if p == RootIno {
					break
				}
				pin, err := getInode(ctx, tx, p)
				if err != nil {
					return err
				}
				p = Ino(pin.Parent)
			}
		}
		dd, exists, err := getDentry(ctx, tx, ddir, dname)
		if err != nil {
			return err
		}
		if exists {
			if dd.Ino == sd.Ino {
				return nil // both names are links to one inode: nothing to do
			}
			dstIn, err := getInode(ctx, tx, Ino(dd.Ino))
			if err != nil {
				return err
			}
			if err := checkSticky(id, ddirIn, dstIn); err != nil {
				return err
			}
			dstDir := FileType(dstIn.Type) == TypeDir
			switch {
			case srcDir && !dstDir:
				return syscall.ENOTDIR
			case !srcDir && dstDir:
				return syscall.EISDIR
			}
			if dstDir {
				empty, err := emptyDir(ctx, tx, Ino(dd.Ino))
				if err != nil {
					return err
				}
				if !empty {
					return syscall.ENOTEMPTY
				}
				ddirIn.Nlink--
			}
			deleteEntry(tx, ddir, dname, dd)
			if err := fs.unlinkInode(ctx, tx, Ino(dd.Ino), dstIn, now, &events); err != nil {
				return err
			}
			replaced = Ino(dd.Ino)
		}
		deleteEntry(tx, sdir, sname, sd)
		putEntry(tx, ddir, dname, meta.Dentry{Ino: sd.Ino, Type: sd.Type, Cookie: cookie})
		srcIn.Ctime = now
		srcIn.ChangeID++
		if srcDir && sdir != ddir {
			srcIn.Parent = uint64(ddir)
			sdirIn.Nlink--
			ddirIn.Nlink++
		}
		tx.Put(meta.InodeKey(uint64(src)), meta.AppendInode(nil, srcIn))
		if srcDir || exists {
			tx.Put(meta.InodeKey(uint64(sdir)), meta.AppendInode(nil, sdirIn))
			if ddir != sdir {
				tx.Put(meta.InodeKey(uint64(ddir)), meta.AppendInode(nil, ddirIn))
			}
		}
		touchDir(tx, sdir, now)
		if ddir != sdir {
			touchDir(tx, ddir, now)
		}
		moved = src
		return nil
	})
	if err != nil {
		return wrap("rename", sdir, err)
	}
	fs.attrs.Invalidate(sdir)
	fs.attrs.Invalidate(ddir)
	fs.attrs.Invalidate(moved)
	fs.entries.Invalidate(entryKey{sdir, sname})
	fs.entries.Invalidate(entryKey{ddir, dname})
	if replaced != 0 {
		fs.attrs.Invalidate(replaced)
		fs.kick()
	}
	return nil
}

// ReadDir lists directory dir after cookie (0 for the start), at most count
// entries, with attributes when plus is set. Cookies are stable for the life
// of an entry, so the verifier is constant for a directory; a verifier from
// another directory incarnation is ErrBadCookie.
func (fs *FS) ReadDir(ctx context.Context, id *Identity, dir Ino, cookie, verifier uint64, count int, plus bool) ([]DirEntry, bool, uint64, error) {
	da, err := fs.attr(ctx, dir)
	if err != nil {
		return nil, false, 0, wrap("readdir", dir, err)
	}
	if da.Type != TypeDir {
		return nil, false, 0, wrap("readdir", dir, syscall.ENOTDIR)
	}
	if !allowed(id, attrInode(&da), permRead) {
		return nil, false, 0, wrap("readdir", dir, syscall.EACCES)
	}
	verf := da.Gen
	if cookie != 0 && verifier != 0 && verifier != verf {
		return nil, false, 0, wrap("readdir", dir, ErrBadCookie)
	}
	if count <= 0 {
		count = 1024
	}
	eof, entries := true, []DirEntry{}
	err = fs.store.View(ctx, func(r kv.Reader) error {
		start := meta.CookieKey(uint64(dir), cookie+1)
		if cookie == ^uint64(0) {
			return nil
		}
		pairs, err := r.Scan(ctx, start, kv.PrefixEnd(meta.CookiePrefix(uint64(dir))), count+1, false)
		if err != nil {
			return err
		}
		if eof = len(pairs) <= count; !eof {
			pairs = pairs[:count]
		}
		entries = make([]DirEntry, 0, len(pairs))
		for _, p := range pairs {
			ce, err := meta.DecodeCookieEntry(p.Value)
			if err != nil {
				return err
			}
			entries = append(entries, DirEntry{Name: ce.Name, Ino: Ino(ce.Ino), Type: FileType(ce.Type), Cookie: meta.CookieOf(p.Key)})
		}
		if !plus {
			return nil
		}
		_, err = fs.entryAttrs(ctx, r, entries, nil)
		return err
	})
	if err != nil {
		return nil, false, 0, wrap("readdir", dir, err)
	}
	if plus {
		entries = withAttrs(entries)
	}
	return entries, eof, verf, nil
}

// withAttrs drops the entries that got no attributes: they were removed
// since the listing read them.
func withAttrs(entries []DirEntry) []DirEntry {
	return slices.DeleteFunc(entries, func(e DirEntry) bool { return e.Attr == nil })
}

// breakEntry breaks the handle-caching leases others hold on the inode that
// name in dir names, before it is removed or renamed. A missing name is
// left for the operation itself to report.
func (fs *FS) breakEntry(ctx context.Context, id *Identity, dir Ino, name string) error {
	if !fs.locks.AnyLeases() {
		return nil
	}
	var child Ino
	err := fs.store.View(ctx, func(r kv.Reader) error {
		d, ok, err := getDentry(ctx, r, dir, name)
		if ok {
			child = Ino(d.Ino)
		}
		return err
	})
	if err != nil || child == 0 {
		return err
	}
	return fs.breakLeases(ctx, id, child, lock.AccessHandle)
}

// ReadDirNames lists directory dir in byte order of entry names, starting
// after name after ("" for the start), at most limit entries; more says
// whether entries remain. It is the listing S3 needs: keys in byte order,
// resumable from any key on any gateway.
func (fs *FS) ReadDirNames(ctx context.Context, id *Identity, dir Ino, after string, limit int, plus bool) (entries []DirEntry, more bool, err error) {
	return fs.readDirNames(ctx, id, dir, after, limit, plus, "")
}

// ReadDirNamesXattr is ReadDirNames with attributes that also reads the
// extended attribute xattr of every entry (DirEntry.Xattr, nil where it is
// absent) in one view, with the filesystem's own authority: a listing that
// needs one protocol attribute per entry (S3's ETag record) does not pay a
// lookup for each.
func (fs *FS) ReadDirNamesXattr(ctx context.Context, id *Identity, dir Ino, after string, limit int, xattr string) (entries []DirEntry, more bool, err error) {
	return fs.readDirNames(ctx, id, dir, after, limit, true, xattr)
}

func (fs *FS) readDirNames(ctx context.Context, id *Identity, dir Ino, after string, limit int, plus bool, xattr string) (entries []DirEntry, more bool, err error) {
	da, err := fs.attr(ctx, dir)
	if err != nil {
		return nil, false, wrap("readdir", dir, err)
	}
	if da.Type != TypeDir {
		return nil, false, wrap("readdir", dir, syscall.ENOTDIR)
	}
	if !allowed(id, attrInode(&da), permRead) {
		return nil, false, wrap("readdir", dir, syscall.EACCES)
	}
	if limit <= 0 {
		limit = 1000
	}
	prefix := meta.DentryPrefix(uint64(dir))
	start := prefix
	if after != "" {
		start = append(meta.DentryKey(uint64(dir), after), 0)
	}
	// One view reads the page, the records of the entries whose
	// attributes are not cached and the extended attributes, the last two
	// in one batch: a listing costs a few reads per page, not a few per
	// entry.
	err = fs.store.View(ctx, func(r kv.Reader) error {
		pairs, err := r.Scan(ctx, start, kv.PrefixEnd(prefix), limit+1, false)
		if err != nil {
			return err
		}
		if more = len(pairs) > limit; more {
			pairs = pairs[:limit]
		}
		entries = make([]DirEntry, 0, len(pairs))
		for _, p := range pairs {
			d, err := meta.DecodeDentry(p.Value)
			if err != nil {
				return err
			}
			entries = append(entries, DirEntry{Name: string(p.Key[len(prefix):]), Ino: Ino(d.Ino), Type: FileType(d.Type), Cookie: d.Cookie})
		}
		if !plus {
			return nil
		}
		var xattrKeys [][]byte
		if xattr != "" {
			xattrKeys = make([][]byte, len(entries))
			for i := range entries {
				xattrKeys[i] = meta.XattrKey(uint64(entries[i].Ino), xattr)
			}
		}
		xattrs, err := fs.entryAttrs(ctx, r, entries, xattrKeys)
		for i := range xattrs {
			entries[i].Xattr = xattrs[i]
		}
		return err
	})
	if err != nil {
		return nil, false, wrap("readdir", dir, err)
	}
	if plus {
		entries = withAttrs(entries)
	}
	return entries, more, nil
}
