// Package meta owns the layout of the filesystem's metadata in the
// transactional KV store: which keys exist, how their values are encoded, and
// the small typed accessors that read and write them inside a transaction.
// It knows nothing of POSIX rules, permissions or protocols (the core owns
// those) and nothing of any particular engine (it speaks kv.Reader and kv.Txn).
//
// # Key layout
//
// Every key starts with a one-byte table tag; integers are big-endian so
// that keys sort numerically.
//
//	'F' "info"                         filesystem info: fsid, creation time
//	'C' name                           allocators (inode and unique-id ranges)
//	'I' ino                            inode record
//	'T' ino                            a directory's times (mtime, ctime, change id)
//	'D' parent name                    directory entry -> child ino, type, cookie
//	'K' parent cookie                  readdir index -> name
//	'M' ino chunk(4)                   chunk map: the slices of one 64 MiB chunk
//	'X' ino name                       extended attribute
//	'R' slice                          slice reference count and size
//	'G' uniq(8)                        slice references to drop (release list)
//	'Z' due(8) slice                   slice whose blocks may be deleted after due
//	'O' ino                            unlinked inode whose data is still to purge
//	'Q' kind id(4)                     quota state: grace-clock stamps
//	'Q' kind id(4) shard(1)            quota usage counter shard
//	'L' kind id(4)                     per-id quota limits override
//	'U' name                           user record
//	'A' access-key                     S3 access key -> user name
//
// # Invariants
//
//   - Inode numbers and unique ids are never reused: ranges are taken from
//     the 'C' allocators in their own transactions, so gateways never collide.
//   - A directory entry 'D' and its readdir index 'K' are written and
//     deleted together. A cookie is unique for the life of the filesystem, so
//     a listing resumed from a cookie neither skips nor repeats an entry that
//     stays in the directory, however the directory changes meanwhile.
//   - A directory's times live in 'T', not in its inode record, and are
//     written blind by entry changes: concurrent creates in one directory do
//     not conflict on it. rmdir reads 'T', so that it conflicts with any
//     concurrent entry change in the directory it removes.
//   - Quota usage is spread over UsageShards counter records per id; a change
//     updates one shard picked at random, so that concurrent writers of one
//     user rarely conflict. The usage is the sum of the shards.
//   - A slice's reference count counts the chunk maps and release lists that
//     reference it. A change that drops many references at once (truncate,
//     purge, compaction) writes one release list in its transaction; the
//     counts are decremented from it later, a bounded batch per transaction.
//     When
//     it reaches zero the slice moves to 'Z' with a due time; its blocks are
//     deleted only after that, so that a read that resolved the old chunk map
//     can still fetch them.
package meta
