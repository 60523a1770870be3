package nfs3

import (
	"errors"
	"syscall"

	"github.com/claudefs/cfs-gateway/internal/core"
	"github.com/claudefs/cfs-gateway/internal/protocol/xdr/mountv3"
	"github.com/claudefs/cfs-gateway/internal/protocol/xdr/nfsv3"
)

// errnoStatus maps the errno values the core returns to NFSv3 statuses.
// Errno values not listed are NFS3ERR_IO.
var errnoStatus = map[syscall.Errno]nfsv3.Nfsstat3{
	syscall.EPERM:        nfsv3.NFS3ERR_PERM,
	syscall.ENOENT:       nfsv3.NFS3ERR_NOENT,
	syscall.EIO:          nfsv3.NFS3ERR_IO,
	syscall.ENXIO:        nfsv3.NFS3ERR_NXIO,
	syscall.EACCES:       nfsv3.NFS3ERR_ACCES,
	syscall.EEXIST:       nfsv3.NFS3ERR_EXIST,
	syscall.EXDEV:        nfsv3.NFS3ERR_XDEV,
	syscall.ENODEV:       nfsv3.NFS3ERR_NODEV,
	syscall.ENOTDIR:      nfsv3.NFS3ERR_NOTDIR,
	syscall.EISDIR:       nfsv3.NFS3ERR_ISDIR,
	syscall.EINVAL:       nfsv3.NFS3ERR_INVAL,
	syscall.EFBIG:        nfsv3.NFS3ERR_FBIG,
	syscall.ENOSPC:       nfsv3.NFS3ERR_NOSPC,
	syscall.EROFS:        nfsv3.NFS3ERR_ROFS,
	syscall.EMLINK:       nfsv3.NFS3ERR_MLINK,
	syscall.ENAMETOOLONG: nfsv3.NFS3ERR_NAMETOOLONG,
	syscall.ENOTEMPTY:    nfsv3.NFS3ERR_NOTEMPTY,
	syscall.EDQUOT:       nfsv3.NFS3ERR_DQUOT,
	syscall.ESTALE:       nfsv3.NFS3ERR_STALE,
	syscall.EREMOTE:      nfsv3.NFS3ERR_REMOTE,
	syscall.ENOTSUP:      nfsv3.NFS3ERR_NOTSUPP,
	syscall.ELOOP:        nfsv3.NFS3ERR_INVAL,
	syscall.EBADF:        nfsv3.NFS3ERR_BADHANDLE,
	syscall.ERANGE:       nfsv3.NFS3ERR_INVAL,
	// Transient conditions: the client retries later.
	syscall.EAGAIN:    nfsv3.NFS3ERR_JUKEBOX,
	syscall.EINTR:     nfsv3.NFS3ERR_JUKEBOX,
	syscall.EBUSY:     nfsv3.NFS3ERR_JUKEBOX,
	syscall.ETIMEDOUT: nfsv3.NFS3ERR_JUKEBOX,
	syscall.ENOMEM:    nfsv3.NFS3ERR_SERVERFAULT,
}

// Status returns the NFSv3 status for an error of the core: NFS3_OK for
// nil, NFS3ERR_JUKEBOX for core.ErrUnavailable (the client retries),
// NFS3ERR_NOT_SYNC for a failed SETATTR guard, NFS3ERR_BAD_COOKIE for a
// stale readdir cookie, the status of the same meaning for every errno the
// core uses, and NFS3ERR_IO for anything else.
func Status(err error) nfsv3.Nfsstat3 {
	if err == nil {
		return nfsv3.NFS3_OK
	}
	// The transient class comes first: an error classified as unavailable
	// may also carry the errno of its cause.
	switch {
	case errors.Is(err, core.ErrUnavailable):
		return nfsv3.NFS3ERR_JUKEBOX
	case errors.Is(err, core.ErrNotSync):
		return nfsv3.NFS3ERR_NOT_SYNC
	case errors.Is(err, core.ErrBadCookie):
		return nfsv3.NFS3ERR_BAD_COOKIE
	case errors.Is(err, errBadHandle):
		return nfsv3.NFS3ERR_BADHANDLE
	}
	var en syscall.Errno
	if errors.As(err, &en) {
		if st, ok := errnoStatus[en]; ok {
			return st
		}
	}
	return nfsv3.NFS3ERR_IO
}

// mountStatus maps an error of resolving a mount path to MNT3ERR_*; the
// MOUNT protocol has fewer statuses than NFS.
func mountStatus(err error) mountv3.Mountstat3 {
	switch Status(err) {
	case nfsv3.NFS3_OK:
		return mountv3.MNT3_OK
	case nfsv3.NFS3ERR_PERM:
		return mountv3.MNT3ERR_PERM
	case nfsv3.NFS3ERR_NOENT, nfsv3.NFS3ERR_STALE:
		return mountv3.MNT3ERR_NOENT
	case nfsv3.NFS3ERR_ACCES:
		return mountv3.MNT3ERR_ACCES
	case nfsv3.NFS3ERR_NOTDIR:
		return mountv3.MNT3ERR_NOTDIR
	case nfsv3.NFS3ERR_INVAL:
		return mountv3.MNT3ERR_INVAL
	case nfsv3.NFS3ERR_NAMETOOLONG:
		return mountv3.MNT3ERR_NAMETOOLONG
	case nfsv3.NFS3ERR_NOTSUPP:
		return mountv3.MNT3ERR_NOTSUPP
	case nfsv3.NFS3ERR_JUKEBOX, nfsv3.NFS3ERR_SERVERFAULT:
		return mountv3.MNT3ERR_SERVERFAULT
	}
	return mountv3.MNT3ERR_IO
}

// statusNames are the metric label values of the statuses.
var statusNames = map[nfsv3.Nfsstat3]string{
	nfsv3.NFS3_OK:             "ok",
	nfsv3.NFS3ERR_PERM:        "NFS3ERR_PERM",
	nfsv3.NFS3ERR_NOENT:       "NFS3ERR_NOENT",
	nfsv3.NFS3ERR_IO:          "NFS3ERR_IO",
	nfsv3.NFS3ERR_NXIO:        "NFS3ERR_NXIO",
	nfsv3.NFS3ERR_ACCES:       "NFS3ERR_ACCES",
	nfsv3.NFS3ERR_EXIST:       "NFS3ERR_EXIST",
	nfsv3.NFS3ERR_XDEV:        "NFS3ERR_XDEV",
	nfsv3.NFS3ERR_NODEV:       "NFS3ERR_NODEV",
	nfsv3.NFS3ERR_NOTDIR:      "NFS3ERR_NOTDIR",
	nfsv3.NFS3ERR_ISDIR:       "NFS3ERR_ISDIR",
	nfsv3.NFS3ERR_INVAL:       "NFS3ERR_INVAL",
	nfsv3.NFS3ERR_FBIG:        "NFS3ERR_FBIG",
	nfsv3.NFS3ERR_NOSPC:       "NFS3ERR_NOSPC",
	nfsv3.NFS3ERR_ROFS:        "NFS3ERR_ROFS",
	nfsv3.NFS3ERR_MLINK:       "NFS3ERR_MLINK",
	nfsv3.NFS3ERR_NAMETOOLONG: "NFS3ERR_NAMETOOLONG",
	nfsv3.NFS3ERR_NOTEMPTY:    "NFS3ERR_NOTEMPTY",
	nfsv3.NFS3ERR_DQUOT:       "NFS3ERR_DQUOT",
	nfsv3.NFS3ERR_STALE:       "NFS3ERR_STALE",
	nfsv3.NFS3ERR_REMOTE:      "NFS3ERR_REMOTE",
	nfsv3.NFS3ERR_BADHANDLE:   "NFS3ERR_BADHANDLE",
	nfsv3.NFS3ERR_NOT_SYNC:    "NFS3ERR_NOT_SYNC",
	nfsv3.NFS3ERR_BAD_COOKIE:  "NFS3ERR_BAD_COOKIE",
	nfsv3.NFS3ERR_NOTSUPP:     "NFS3ERR_NOTSUPP",
	nfsv3.NFS3ERR_TOOSMALL:    "NFS3ERR_TOOSMALL",
	nfsv3.NFS3ERR_SERVERFAULT: "NFS3ERR_SERVERFAULT",
	nfsv3.NFS3ERR_BADTYPE:     "NFS3ERR_BADTYPE",
	nfsv3.NFS3ERR_JUKEBOX:     "NFS3ERR_JUKEBOX",
}

// StatusName is the RFC's name of an NFSv3 status ("ok" for NFS3_OK), the
// value of the status label of the request metrics.
func StatusName(st nfsv3.Nfsstat3) string {
	if n, ok := statusNames[st]; ok {
		return n
	}
	return "NFS3ERR_unknown"
}
