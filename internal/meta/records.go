package meta

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrCorrupt is returned for a record that does not decode. It means the
// metadata store holds bytes this version did not write: run fsck.
var ErrCorrupt = errors.New("meta: corrupt record")

func corrupt(what string, b []byte) error {
	return fmt.Errorf("%w: %s (%d bytes)", ErrCorrupt, what, len(b))
}

// Inode is the stored record of an inode. Times are unix nanoseconds. For a
// directory, Mtime, Ctime and ChangeID are those at creation or the last
// attribute change; the current ones are in its DirTimes record.
type Inode struct {
	Type     uint8
	Mode     uint32
	Nlink    uint32
	UID      uint32
	GID      uint32
	Size     uint64
	Rdev     uint64
	Atime    int64
	Mtime    int64
	Ctime    int64
	Btime    int64
	Gen      uint64
	ChangeID uint64
	// Parent is, for a directory, the directory that holds it (".."). The
	// root is its own parent.
	Parent uint64
	// Verf is the exclusive-create verifier, kept until attributes are
	// first set.
	Verf uint64
	// Flags are InodeTemp and the like.
	Flags uint32
	// Target is a symlink's target.
	Target string
}

// InodeTemp marks a file created without a name (to be published under
// one atomically, or purged if it never is): it is readable and writable
// by its handle while its link count is zero.
const InodeTemp = 1 << 0

const inodeVersion = 1
const inodeFixed = 2 + 5*4 + 8*11

// AppendInode encodes in after dst.
func AppendInode(dst []byte, in *Inode) []byte {
	dst = append(dst, inodeVersion, in.Type)
	dst = binary.BigEndian.AppendUint32(dst, in.Mode)
	dst = binary.BigEndian.AppendUint32(dst, in.Nlink)
	dst = binary.BigEndian.AppendUint32(dst, in.UID)
	dst = binary.BigEndian.AppendUint32(dst, in.GID)
	dst = binary.BigEndian.AppendUint32(dst, in.Flags)
	for _, v := range [...]uint64{in.Size, in.Rdev, uint64(in.Atime), uint64(in.Mtime), uint64(in.Ctime),
		uint64(in.Btime), in.Gen, in.ChangeID, in.Parent, in.Verf} {
		dst = binary.BigEndian.AppendUint64(dst, v)
	}
	dst = binary.BigEndian.AppendUint64(dst, uint64(len(in.Target)))
	return append(dst, in.Target...)
}

// DecodeInode decodes what AppendInode wrote.
func DecodeInode(b []byte) (*Inode, error) {
	if len(b) < inodeFixed || b[0] != inodeVersion {
		return nil, corrupt("inode", b)
	}
	in := &Inode{Type: b[1]}
	p := b[2:]
	u32 := func() uint32 { v := binary.BigEndian.Uint32(p); p = p[4:]; return v }
	u64 := func() uint64 { v := binary.BigEndian.Uint64(p); p = p[8:]; return v }
	in.Mode, in.Nlink, in.UID, in.GID, in.Flags = u32(), u32(), u32(), u32(), u32()
	in.Size, in.Rdev = u64(), u64()
	in.Atime, in.Mtime, in.Ctime, in.Btime = int64(u64()), int64(u64()), int64(u64()), int64(u64())
	in.Gen, in.ChangeID, in.Parent, in.Verf = u64(), u64(), u64(), u64()
	n := u64()
	if n != uint64(len(p)) {
		return nil, corrupt("inode target", b)
	}
	in.Target = string(p)
	return in, nil
}

// Dentry is the value of a directory entry.
type Dentry struct {
	Ino    uint64
	Type   uint8
	Cookie uint64
}

// AppendDentry encodes d after dst.
func AppendDentry(dst []byte, d Dentry) []byte {
	dst = binary.BigEndian.AppendUint64(dst, d.Ino)
	dst = append(dst, d.Type)
	return binary.BigEndian.AppendUint64(dst, d.Cookie)
}

// DecodeDentry decodes what AppendDentry wrote.
func DecodeDentry(b []byte) (Dentry, error) {
	if len(b) != 17 {
		return Dentry{}, corrupt("dentry", b)
	}
	return Dentry{Ino: binary.BigEndian.Uint64(b), Type: b[8], Cookie: binary.BigEndian.Uint64(b[9:])}, nil
}

// DirTimes is the value of a directory's times record.
type DirTimes struct {
	Mtime, Ctime int64
	ChangeID     uint64
}

// AppendDirTimes encodes t after dst.
func AppendDirTimes(dst []byte, t DirTimes) []byte {
	dst = binary.BigEndian.AppendUint64(dst, uint64(t.Mtime))
	dst = binary.BigEndian.AppendUint64(dst, uint64(t.Ctime))
	return binary.BigEndian.AppendUint64(dst, t.ChangeID)
}

// DecodeDirTimes decodes what AppendDirTimes wrote.
func DecodeDirTimes(b []byte) (DirTimes, error) {
	if len(b) != 24 {
		return DirTimes{}, corrupt("dir times", b)
	}
	return DirTimes{
		Mtime:    int64(binary.BigEndian.Uint64(b)),
		Ctime:    int64(binary.BigEndian.Uint64(b[8:])),
		ChangeID: binary.BigEndian.Uint64(b[16:]),
	}, nil
}

// SliceRef is the value of a slice's reference record.
type SliceRef struct {
	Refs uint32
	Size uint32
}

// AppendSliceRef encodes r after dst.
func AppendSliceRef(dst []byte, r SliceRef) []byte {
	dst = binary.BigEndian.AppendUint32(dst, r.Refs)
	return binary.BigEndian.AppendUint32(dst, r.Size)
}

// DecodeSliceRef decodes what AppendSliceRef wrote.
func DecodeSliceRef(b []byte) (SliceRef, error) {
	if len(b) != 8 {
		return SliceRef{}, corrupt("slice ref", b)
	}
	return SliceRef{Refs: binary.BigEndian.Uint32(b), Size: binary.BigEndian.Uint32(b[4:])}, nil
}

// UsageDelta is a quota usage counter, or one change of it.
type UsageDelta struct {
	Bytes, Inodes int64
}

// AppendUsageDelta encodes d after dst.
func AppendUsageDelta(dst []byte, d UsageDelta) []byte {
	dst = binary.AppendVarint(dst, d.Bytes)
	return binary.AppendVarint(dst, d.Inodes)
}

// DecodeUsageDelta decodes what AppendUsageDelta wrote.
func DecodeUsageDelta(b []byte) (UsageDelta, error) {
	bytes, n := binary.Varint(b)
	if n <= 0 {
		return UsageDelta{}, corrupt("usage delta", b)
	}
	inodes, m := binary.Varint(b[n:])
	if m <= 0 || n+m != len(b) {
		return UsageDelta{}, corrupt("usage delta", b)
	}
	return UsageDelta{Bytes: bytes, Inodes: inodes}, nil
}

// Info is the filesystem's identity, written once at format time.
type Info struct {
	FSID    uint64
	Created int64
}

// AppendInfo encodes i after dst.
func AppendInfo(dst []byte, i Info) []byte {
	dst = append(dst, 1)
	dst = binary.BigEndian.AppendUint64(dst, i.FSID)
	return binary.BigEndian.AppendUint64(dst, uint64(i.Created))
}

// DecodeInfo decodes what AppendInfo wrote.
func DecodeInfo(b []byte) (Info, error) {
	if len(b) != 17 || b[0] != 1 {
		return Info{}, corrupt("fs info", b)
	}
	return Info{FSID: binary.BigEndian.Uint64(b[1:]), Created: int64(binary.BigEndian.Uint64(b[9:]))}, nil
}

// AppendU64 and DecodeU64 encode allocator positions and pending-deletion sizes.
func AppendU64(dst []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(dst, v) }

// DecodeU64 decodes what AppendU64 wrote.
func DecodeU64(b []byte) (uint64, error) {
	if len(b) != 8 {
		return 0, corrupt("u64", b)
	}
	return binary.BigEndian.Uint64(b), nil
}

// CookieEntry is the value of a readdir index entry: enough to list the
// directory without reading every dentry.
type CookieEntry struct {
	Ino  uint64
	Type uint8
	Name string
}

// AppendCookieEntry encodes e after dst.
func AppendCookieEntry(dst []byte, e CookieEntry) []byte {
	dst = binary.BigEndian.AppendUint64(dst, e.Ino)
	dst = append(dst, e.Type)
	return append(dst, e.Name...)
}

// DecodeCookieEntry decodes what AppendCookieEntry wrote.
func DecodeCookieEntry(b []byte) (CookieEntry, error) {
	if len(b) < 10 {
		return CookieEntry{}, corrupt("readdir entry", b)
	}
	return CookieEntry{Ino: binary.BigEndian.Uint64(b), Type: b[8], Name: string(b[9:])}, nil
}

// Release is a list of slice references to drop; Due is the earliest time
// (unix seconds) at which a slice whose count reaches zero may be deleted.
type Release struct {
	Due int64
	IDs []uint64
}

// AppendRelease encodes r after dst.
func AppendRelease(dst []byte, r Release) []byte {
	dst = binary.AppendVarint(dst, r.Due)
	dst = binary.AppendUvarint(dst, uint64(len(r.IDs)))
	for _, id := range r.IDs {
		dst = binary.AppendUvarint(dst, id)
	}
	return dst
}

// DecodeRelease decodes what AppendRelease wrote.
func DecodeRelease(b []byte) (Release, error) {
	due, n := binary.Varint(b)
	if n <= 0 {
		return Release{}, corrupt("release list", b)
	}
	b = b[n:]
	count, n := binary.Uvarint(b)
	if n <= 0 || count > uint64(len(b)) {
		return Release{}, corrupt("release list", b)
	}
	b = b[n:]
	r := Release{Due: due, IDs: make([]uint64, 0, count)}
	for i := uint64(0); i < count; i++ {
		id, n := binary.Uvarint(b)
		if n <= 0 {
			return Release{}, corrupt("release list", b)
		}
		r.IDs = append(r.IDs, id)
		b = b[n:]
	}
	if len(b) != 0 {
		return Release{}, corrupt("release list", b)
	}
	return r, nil
}
