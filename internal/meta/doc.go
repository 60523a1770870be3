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
//	'Z' due(8) slice                   slice whose blocks may be deleted after due
//	'O' ino                            unlinked inode whose data is still to purge
//	'Q' kind id(4)                     quota usage base record
//	'Q' kind id(4) uniq(8)             quota usage delta (folded into the base later)
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
//   - Quota usage changes are blind-written deltas under the id's prefix, so
//     that concurrent writers of one user do not conflict; the sum of the base
//     and its deltas is the usage.
//   - A slice's reference count counts the chunk maps that reference it. When
//     it reaches zero the slice moves to 'Z' with a due time; its blocks are
//     deleted only after that, so that a read that resolved the old chunk map
//     can still fetch them.
package meta
