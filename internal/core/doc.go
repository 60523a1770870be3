// Package core is the filesystem that every protocol front-end serves: one
// POSIX namespace with one set of rules for permissions, quotas, locks and
// caching. Front-ends (NFSv3, NFSv4.1, SMB, S3) call its handle-based API
// with the caller's Identity and map its errors to their own status codes;
// they never reach the metadata store or the blocks below it.
//
// The core owns:
//   - POSIX semantics of every namespace and data operation, and the
//     permission checks (mode bits, sticky directories, setgid inheritance);
//   - quotas, charged in the same metadata transaction as the change;
//   - the attribute and lookup caches, invalidated by every local change;
//   - the write-back buffers of open files and their flushing;
//   - the lock table (package lock) shared by every protocol;
//   - background work: flushing, compaction of fragmented chunks, purging
//     unlinked files, deleting unreferenced blocks after their delay; and the
//     operator's fsck and gc.
//
// It must not import a protocol package, and it reaches storage only through
// the kv and blob interfaces, so that the same code runs on the embedded
// engines and on the scale-out ones.
//
// # Errors
//
// Errors are syscall.Errno values (ENOENT, EEXIST, EACCES, ESTALE, EDQUOT,
// EIO, ...) wrapped in *Error with the operation and inode, so that
// errors.Is(err, syscall.ENOENT) works. ErrUnavailable marks a transient
// backend failure that a protocol answers with its retry status, ErrNotSync a
// failed SETATTR guard.
package core
