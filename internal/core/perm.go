package core

import (
	"context"
	"syscall"

	"github.com/claudefs/cfs-gateway/internal/meta"
)

// Permission bits of a mode triple.
const (
	permRead  = 4
	permWrite = 2
	permExec  = 1
)

// allowed reports whether id may access in with the rwx bits want (a
// combination of permRead, permWrite, permExec), by the POSIX rules: root
// passes everything but execute of a file with no execute bit at all; the
// owner class, else the group class, else other decides.
func allowed(id *Identity, in *meta.Inode, want uint32) bool {
	if id.UID == 0 {
		if want&permExec != 0 && FileType(in.Type) != TypeDir && in.Mode&0o111 == 0 {
			return false
		}
		return true
	}
	var bits uint32
	switch {
	case id.UID == in.UID:
		bits = in.Mode >> 6
	case id.InGroup(in.GID):
		bits = in.Mode >> 3
	default:
		bits = in.Mode
	}
	return bits&7&want == want
}

func check(id *Identity, in *meta.Inode, want uint32) error {
	if !allowed(id, in, want) {
		return syscall.EACCES
	}
	return nil
}

// checkSticky enforces the sticky directory rule: in a sticky directory only
// the owner of the entry, the owner of the directory or root may remove or
// rename it.
func checkSticky(id *Identity, dir, child *meta.Inode) error {
	if dir.Mode&ModeSticky == 0 || id.UID == 0 || id.UID == dir.UID || id.UID == child.UID {
		return nil
	}
	return syscall.EPERM
}

// Access returns which of the requested NFS-style access bits the caller
// holds on ino.
func (fs *FS) Access(ctx context.Context, id *Identity, ino Ino, mask uint32) (uint32, error) {
	a, err := fs.attr(ctx, ino)
	if err != nil {
		return 0, wrap("access", ino, err)
	}
	in := &meta.Inode{Type: uint8(a.Type), Mode: a.Mode, UID: a.UID, GID: a.GID}
	var granted uint32
	if allowed(id, in, permRead) {
		granted |= AccessRead
	}
	if allowed(id, in, permWrite) {
		granted |= AccessModify | AccessExtend
		if a.Type == TypeDir {
			granted |= AccessDelete
		}
	}
	if allowed(id, in, permExec) {
		if a.Type == TypeDir {
			granted |= AccessLookup
		} else {
			granted |= AccessExecute
		}
	}
	return granted & mask, nil
}
