package core

import (
	"context"
	"errors"
	"fmt"
	"syscall"

	"github.com/claudefs/cfs-gateway/internal/core/quota"
	"github.com/claudefs/cfs-gateway/internal/data"
	"github.com/claudefs/cfs-gateway/internal/engine/blob"
	"github.com/claudefs/cfs-gateway/internal/engine/kv"
	"github.com/claudefs/cfs-gateway/internal/meta"
)

var (
	// ErrUnavailable marks a transient backend failure: the client should
	// retry later (NFS3ERR_JUKEBOX, NFS4ERR_DELAY, S3 503 SlowDown).
	ErrUnavailable = errors.New("backend temporarily unavailable")
	// ErrNotSync is a SETATTR whose ctime guard did not match.
	ErrNotSync = errors.New("attribute guard mismatch")
	// ErrBadCookie is a readdir cookie or verifier that is not valid.
	ErrBadCookie = errors.New("invalid readdir cookie")
	// ErrFenced is a write refused because this gateway lost, with its
	// session, the locks it held on the file: another gateway may have
	// granted them since. The client must lock again.
	ErrFenced = errors.New("locks on the file were lost with this gateway's session; lock again")
)

// Error is a failed core operation.
type Error struct {
	Op  string // the operation, e.g. "create"
	Ino Ino    // the inode it acted on, 0 if none
	Err error  // a syscall.Errno or one of the Err values above
}

func (e *Error) Error() string {
	if e.Ino != 0 {
		return fmt.Sprintf("%s inode %d: %v", e.Op, e.Ino, e.Err)
	}
	return e.Op + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// Errno returns the syscall.Errno that best describes err, for protocols
// whose status codes follow errno (EIO for anything unknown).
func Errno(err error) syscall.Errno {
	var en syscall.Errno
	switch {
	case err == nil:
		return 0
	case errors.As(err, &en):
		return en
	case errors.Is(err, ErrUnavailable):
		return syscall.EAGAIN
	case errors.Is(err, ErrNotSync):
		return syscall.EINVAL
	case errors.Is(err, ErrBadCookie):
		return syscall.EINVAL
	}
	return syscall.EIO
}

// wrap turns an error from below the core into a core error for op: engine
// and data errors become errno values; errors already carrying an errno keep it.
func wrap(op string, ino Ino, err error) error {
	if err == nil {
		return nil
	}
	var ce *Error
	if errors.As(err, &ce) {
		return err
	}
	var en syscall.Errno
	var kvDown *kv.Unavailable
	var blobDown *blob.Unavailable
	switch {
	// A backend failure is a retry answer whatever errno its cause
	// carries (a refused connection is ECONNREFUSED underneath).
	case errors.As(err, &kvDown), errors.As(err, &blobDown), errors.Is(err, kv.ErrConflict),
		errors.Is(err, context.DeadlineExceeded):
		if !errors.Is(err, ErrUnavailable) {
			err = &errnoCause{ErrUnavailable, err}
		}
	case errors.As(err, &en), errors.Is(err, ErrNotSync), errors.Is(err, ErrBadCookie), errors.Is(err, ErrUnavailable):
	case errors.Is(err, quota.ErrExceeded):
		err = &errnoCause{syscall.EDQUOT, err}
	case errors.Is(err, data.ErrChecksum), errors.Is(err, data.ErrMissingBlock), errors.Is(err, meta.ErrCorrupt):
		err = &errnoCause{syscall.EIO, err}
	case errors.Is(err, context.Canceled):
		err = &errnoCause{syscall.EINTR, err}
	default:
		err = &errnoCause{syscall.EIO, err}
	}
	return &Error{Op: op, Ino: ino, Err: err}
}

// errnoCause is a classified error that keeps its cause for the logs.
type errnoCause struct {
	class error // syscall.Errno or ErrUnavailable
	cause error
}

func (e *errnoCause) Error() string { return e.class.Error() + ": " + e.cause.Error() }
func (e *errnoCause) Unwrap() []error {
	return []error{e.class, e.cause}
}
