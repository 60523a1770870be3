package meta

import (
	"encoding/binary"
)

// Table tags: the first byte of every key.
const (
	tagInfo      = 'F'
	tagAlloc     = 'C'
	tagInode     = 'I'
	tagDirTimes  = 'T'
	tagDentry    = 'D'
	tagCookie    = 'K'
	tagChunk     = 'M'
	tagXattr     = 'X'
	tagSliceRef  = 'R'
	tagDelete    = 'Z'
	tagOrphan    = 'O'
	tagRelease   = 'G'
	tagUsage     = 'Q'
	tagLimits    = 'L'
	tagUser      = 'U'
	tagAccessKey = 'A'
	tagLockGroup = 'B'
	tagInline    = 'V'
)

func key64(tag byte, n uint64) []byte {
	k := make([]byte, 9)
	k[0] = tag
	binary.BigEndian.PutUint64(k[1:], n)
	return k
}

func key64s(tag byte, n uint64, s string) []byte {
	k := make([]byte, 9, 9+len(s))
	k[0] = tag
	binary.BigEndian.PutUint64(k[1:], n)
	return append(k, s...)
}

func key64x2(tag byte, a, b uint64) []byte {
	k := make([]byte, 17)
	k[0] = tag
	binary.BigEndian.PutUint64(k[1:], a)
	binary.BigEndian.PutUint64(k[9:], b)
	return k
}

// InfoKey is the filesystem info record.
func InfoKey() []byte { return []byte{tagInfo, 'i', 'n', 'f', 'o'} }

// AllocKey is the allocator named name.
func AllocKey(name string) []byte { return append([]byte{tagAlloc}, name...) }

// InodeKey is the inode record of ino.
func InodeKey(ino uint64) []byte { return key64(tagInode, ino) }

// DirTimesKey is the times record of directory ino.
func DirTimesKey(ino uint64) []byte { return key64(tagDirTimes, ino) }

// DentryKey is the entry name in directory parent.
func DentryKey(parent uint64, name string) []byte { return key64s(tagDentry, parent, name) }

// DentryPrefix is the prefix of every entry of directory parent.
func DentryPrefix(parent uint64) []byte { return key64(tagDentry, parent) }

// CookieKey is the readdir index entry of cookie in directory parent.
func CookieKey(parent, cookie uint64) []byte { return key64x2(tagCookie, parent, cookie) }

// CookiePrefix is the prefix of the readdir index of directory parent.
func CookiePrefix(parent uint64) []byte { return key64(tagCookie, parent) }

// ChunkKey is the chunk map of chunk index idx of file ino.
func ChunkKey(ino uint64, idx uint32) []byte {
	k := make([]byte, 13)
	k[0] = tagChunk
	binary.BigEndian.PutUint64(k[1:], ino)
	binary.BigEndian.PutUint32(k[9:], idx)
	return k
}

// ChunkPrefix is the prefix of every chunk map of file ino.
func ChunkPrefix(ino uint64) []byte { return key64(tagChunk, ino) }

// ChunkIndex returns the chunk index of a chunk map key.
func ChunkIndex(key []byte) uint32 { return binary.BigEndian.Uint32(key[9:13]) }

// XattrKey is extended attribute name of ino.
func XattrKey(ino uint64, name string) []byte { return key64s(tagXattr, ino, name) }

// XattrPrefix is the prefix of every extended attribute of ino.
func XattrPrefix(ino uint64) []byte { return key64(tagXattr, ino) }

// SliceRefKey is the reference count record of a slice.
func SliceRefKey(id uint64) []byte { return key64(tagSliceRef, id) }

// InlineKey holds the data of inline slice id (see data.IsInline), written
// with its reference record and deleted with its pending deletion.
func InlineKey(id uint64) []byte { return key64(tagInline, id) }

// InlinePrefix covers the data of every inline slice.
func InlinePrefix() []byte { return []byte{tagInline} }

// SliceRefPrefix covers every slice reference record.
func SliceRefPrefix() []byte { return []byte{tagSliceRef} }

// DeleteKey is the pending deletion of slice id, due at unix second due.
func DeleteKey(due int64, id uint64) []byte { return key64x2(tagDelete, uint64(due), id) }

// DeletePrefix covers every pending deletion.
func DeletePrefix() []byte { return []byte{tagDelete} }

// ParseDeleteKey splits a pending deletion key.
func ParseDeleteKey(k []byte) (due int64, id uint64, ok bool) {
	if len(k) != 17 || k[0] != tagDelete {
		return 0, 0, false
	}
	return int64(binary.BigEndian.Uint64(k[1:])), binary.BigEndian.Uint64(k[9:]), true
}

// OrphanKey marks inode ino as unlinked with data still to purge.
func OrphanKey(ino uint64) []byte { return key64(tagOrphan, ino) }

// OrphanPrefix covers every orphan record.
func OrphanPrefix() []byte { return []byte{tagOrphan} }

// QuotaKind tells user quotas from group quotas.
type QuotaKind byte

const (
	QuotaUser  QuotaKind = 'u'
	QuotaGroup QuotaKind = 'g'
)

func (k QuotaKind) String() string {
	if k == QuotaGroup {
		return "group"
	}
	return "user"
}

func quotaKey(tag byte, kind QuotaKind, id uint32) []byte {
	k := make([]byte, 6, 14)
	k[0] = tag
	k[1] = byte(kind)
	binary.BigEndian.PutUint32(k[2:], id)
	return k
}

// UsageKey is the state record of a user or group: its grace-clock stamps.
// Its usage counters follow it under the same prefix, in UsageShards shards.
func UsageKey(kind QuotaKind, id uint32) []byte { return quotaKey(tagUsage, kind, id) }

// UsageShards is the number of counter records one id's usage is spread
// over, so that concurrent writers of one user rarely touch the same key.
const UsageShards = 256

// UsageShardKey is one usage counter shard of a user or group.
func UsageShardKey(kind QuotaKind, id uint32, shard uint8) []byte {
	return append(quotaKey(tagUsage, kind, id), shard)
}

// UsagePrefix covers every usage record of every id.
func UsagePrefix() []byte { return []byte{tagUsage} }

// ParseUsageKey splits a usage key; shard is true for a counter shard.
func ParseUsageKey(k []byte) (kind QuotaKind, id uint32, shard bool, ok bool) {
	if len(k) != 6 && len(k) != 7 || k[0] != tagUsage {
		return 0, 0, false, false
	}
	return QuotaKind(k[1]), binary.BigEndian.Uint32(k[2:6]), len(k) == 7, true
}

// LimitsKey is the limits override of a user or group.
func LimitsKey(kind QuotaKind, id uint32) []byte { return quotaKey(tagLimits, kind, id) }

// LimitsPrefix covers every limits override.
func LimitsPrefix() []byte { return []byte{tagLimits} }

// UserKey is the user record of name.
func UserKey(name string) []byte { return append([]byte{tagUser}, name...) }

// UserPrefix covers every user record.
func UserPrefix() []byte { return []byte{tagUser} }

// AccessKeyKey maps an S3 access key to its user.
func AccessKeyKey(accessKey string) []byte { return append([]byte{tagAccessKey}, accessKey...) }

// CookieOf returns the cookie of a readdir index key.
func CookieOf(key []byte) uint64 { return binary.BigEndian.Uint64(key[9:17]) }

// ReleaseKey is a list of slice references to drop, unique by uniq.
func ReleaseKey(uniq uint64) []byte { return key64(tagRelease, uniq) }

// ReleasePrefix covers every release list.
func ReleasePrefix() []byte { return []byte{tagRelease} }

// Changes that invalidate cached state, for watchers of the store: the
// prefixes of every inode, directory times and entry record, and the
// parsers of their keys.

// InodePrefix covers every inode record.
func InodePrefix() []byte { return []byte{tagInode} }

// DirTimesPrefix covers every directory times record.
func DirTimesPrefix() []byte { return []byte{tagDirTimes} }

// DentryAllPrefix covers every directory entry.
func DentryAllPrefix() []byte { return []byte{tagDentry} }

// ParseAttrKey returns the inode whose attributes a key of InodePrefix or
// DirTimesPrefix holds.
func ParseAttrKey(k []byte) (ino uint64, ok bool) {
	if len(k) != 9 || (k[0] != tagInode && k[0] != tagDirTimes) {
		return 0, false
	}
	return binary.BigEndian.Uint64(k[1:]), true
}

// ParseDentryKey splits a directory entry key into directory and name.
func ParseDentryKey(k []byte) (parent uint64, name string, ok bool) {
	if len(k) < 9 || k[0] != tagDentry {
		return 0, "", false
	}
	return binary.BigEndian.Uint64(k[1:9]), string(k[9:]), true
}

// LockGroupKey is the group of the gateways' lock records of file ino: the
// key itself is the group's guard, and each gateway's record follows it with
// the gateway's session id (see the etcd engine's sessions).
func LockGroupKey(ino uint64) []byte { return key64(tagLockGroup, ino) }
