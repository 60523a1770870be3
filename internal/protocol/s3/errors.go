package s3

import (
	"context"
	"errors"
	"syscall"

	"github.com/claudefs/cfs-gateway/internal/core"
	"github.com/claudefs/cfs-gateway/internal/protocol/s3/s3err"
)

// Errors of this gateway that S3 has no code for; docs/s3.md lists them.
var (
	// errKeyConflict is a key that cannot exist beside another in a tree:
	// a key below an existing object ("a" and "a/b"), or an object where
	// a directory of other keys is ("a/b" and "a").
	errKeyConflict = &s3err.Error{Code: "KeyConflict", Status: 409,
		Message: "The key cannot be stored: a key and a key below it (for example \"a\" and \"a/b\") cannot both exist, because keys are paths in a directory tree."}
	// errDirectoryKeyBody is a PUT with a body to a key ending in "/".
	errDirectoryKeyBody = &s3err.Error{Code: "InvalidArgument", Status: 400,
		Message: "A key ending in \"/\" is a directory: it holds at most 65536 bytes of data, kept with the directory, and cannot be uploaded in parts."}
	// errInvalidKey is a key that cannot be a path: empty components
	// ("a//b", "/a"), "." or ".." components, or a NUL byte.
	errInvalidKey = &s3err.Error{Code: "InvalidArgument", Status: 400,
		Message: "The key cannot be stored as a path: it must not contain empty, \".\" or \"..\" components, or NUL bytes.",
		Extra:   map[string]string{"ArgumentName": "key"}}
)

// mapCoreError maps an error of the core to an S3 error; object says
// whether a missing thing is a key (else a bucket).
func mapCoreError(err error, object bool) *s3err.Error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, core.ErrUnavailable):
		return s3err.SlowDown.With("The storage backend is temporarily unavailable; retry the request.")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return s3err.RequestTimeout
	}
	switch core.Errno(err) {
	case syscall.ENOENT, syscall.ESTALE:
		if object {
			return s3err.NoSuchKey
		}
		return s3err.NoSuchBucket
	case syscall.ENOTDIR:
		if object {
			return s3err.NoSuchKey
		}
		return s3err.NoSuchBucket
	case syscall.EACCES, syscall.EPERM, syscall.EROFS:
		return s3err.AccessDenied
	case syscall.EDQUOT, syscall.ENOSPC:
		return s3err.QuotaExceeded
	case syscall.ENOTEMPTY, syscall.EEXIST:
		if object {
			return errKeyConflict
		}
		return s3err.BucketNotEmpty
	case syscall.EISDIR:
		return errKeyConflict
	case syscall.ENAMETOOLONG:
		return s3err.KeyTooLong
	case syscall.EFBIG:
		return s3err.EntityTooLarge
	case syscall.EAGAIN:
		return s3err.SlowDown
	case syscall.EINTR:
		return s3err.RequestTimeout
	}
	return s3err.InternalError
}

// errno is the errno of a core error (0 for nil).
func errno(err error) syscall.Errno { return core.Errno(err) }
