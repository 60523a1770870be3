package core

import (
	"time"

	"github.com/claudefs/cfs-gateway/internal/core/lock"
)

// Ino is an inode number. Inode numbers are never reused: together with the
// generation they make a file handle that stays valid across restarts and on
// every gateway, and that becomes stale once the inode is gone.
type Ino uint64

// RootIno is the inode of the namespace root.
const RootIno Ino = 1

// FileType is the kind of an inode.
type FileType uint8

const (
	TypeRegular FileType = iota + 1
	TypeDir
	TypeSymlink
	TypeFifo
	TypeSocket
	TypeCharDev
	TypeBlockDev
)

func (t FileType) String() string {
	switch t {
	case TypeRegular:
		return "file"
	case TypeDir:
		return "dir"
	case TypeSymlink:
		return "symlink"
	case TypeFifo:
		return "fifo"
	case TypeSocket:
		return "socket"
	case TypeCharDev:
		return "chardev"
	case TypeBlockDev:
		return "blockdev"
	}
	return "unknown"
}

// Permission bits beyond rwx that the core interprets.
const (
	ModeSetuid = 0o4000
	ModeSetgid = 0o2000
	ModeSticky = 0o1000
	ModePerm   = 0o7777
)

// Identity is the caller on whose behalf an operation runs. Every protocol
// maps its own notion of a user (AUTH_SYS credentials after squashing, an SMB
// session's user, an S3 access key's user) to one of these.
type Identity struct {
	UID    uint32
	GID    uint32
	Groups []uint32
	// Lease is the lease key (SMB lease, NFSv4 client) the caller acts
	// under: its own leases and delegations are not broken by its accesses.
	// The zero key holds none.
	Lease lock.LeaseKey
}

// Root is the superuser identity, used by operator tools.
var Root = Identity{}

// InGroup reports whether gid is the primary or a supplementary group.
func (id *Identity) InGroup(gid uint32) bool {
	if id.GID == gid {
		return true
	}
	for _, g := range id.Groups {
		if g == gid {
			return true
		}
	}
	return false
}

// Handle identifies an inode durably: the inode number and the generation it
// was created with.
type Handle struct {
	Ino Ino
	Gen uint64
}

// Attr is the attributes of an inode.
type Attr struct {
	Ino   Ino
	Gen   uint64
	Type  FileType
	Mode  uint32 // permission bits incl. setuid, setgid and sticky
	Nlink uint32
	UID   uint32
	GID   uint32
	Size  uint64
	// Used is the bytes of storage the file occupies (holes excluded).
	Used  uint64
	Rdev  uint64 // major<<32 | minor, for device nodes
	Atime time.Time
	Mtime time.Time
	Ctime time.Time
	Btime time.Time
	// ChangeID increases on every change of the inode (data or attributes):
	// NFSv4 change attribute, SMB and S3 ETag-like uses.
	ChangeID uint64
}

// Handle returns the handle of the inode.
func (a *Attr) Handle() Handle { return Handle{Ino: a.Ino, Gen: a.Gen} }

// TimeHow says how SetAttr changes a timestamp.
type TimeHow uint8

const (
	TimeDontChange TimeHow = iota
	TimeServer             // set to the server's current time
	TimeClient             // set to the given time
)

// SetTime is one timestamp change.
type SetTime struct {
	How  TimeHow
	Time time.Time
}

// SetAttr is the set of attribute changes; nil pointers are left as they are.
type SetAttr struct {
	Mode  *uint32
	UID   *uint32
	GID   *uint32
	Size  *uint64
	Atime SetTime
	Mtime SetTime
	// GuardCtime, when set, makes the change fail with ErrNotSync unless the
	// inode's ctime equals it (NFSv3 SETATTR guard).
	GuardCtime *time.Time
}

// CreateMode is how Create treats an existing name.
type CreateMode uint8

const (
	// CreateUnchecked opens an existing regular file (truncating it if the
	// requested attributes ask) instead of failing.
	CreateUnchecked CreateMode = iota
	// CreateGuarded fails with EEXIST if the name exists.
	CreateGuarded
	// CreateExclusive stores a client verifier; a retry with the same
	// verifier succeeds on the file it created, another verifier gets EEXIST.
	CreateExclusive
)

// Stability is how durable a write must be before it is acknowledged.
type Stability uint8

const (
	Unstable Stability = iota // may stay in the write-back buffer
	DataSync                  // data and what is needed to read it back
	FileSync                  // data and all metadata
)

// DirEntry is one entry returned by ReadDir.
type DirEntry struct {
	Name   string
	Ino    Ino
	Type   FileType
	Cookie uint64 // resumes the listing after this entry
	Attr   *Attr  // set when ReadDir was asked for attributes
	Xattr  []byte // the extended attribute ReadDirNamesXattr was asked for
}

// StatFS is the space and inode totals of the filesystem.
type StatFS struct {
	TotalBytes, FreeBytes, AvailBytes    uint64
	TotalInodes, FreeInodes, AvailInodes uint64
}

// Access bits for Access, matching NFSv3 ACCESS3_*.
const (
	AccessRead    uint32 = 0x01
	AccessLookup  uint32 = 0x02
	AccessModify  uint32 = 0x04
	AccessExtend  uint32 = 0x08
	AccessDelete  uint32 = 0x10
	AccessExecute uint32 = 0x20
)
