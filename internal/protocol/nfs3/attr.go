package nfs3

import (
	"math"
	"time"

	"github.com/claudefs/cfs-gateway/internal/core"
	"github.com/claudefs/cfs-gateway/internal/protocol/xdr/nfsv3"
)

func fileType(t core.FileType) nfsv3.Ftype3 {
	switch t {
	case core.TypeDir:
		return nfsv3.NF3DIR
	case core.TypeSymlink:
		return nfsv3.NF3LNK
	case core.TypeFifo:
		return nfsv3.NF3FIFO
	case core.TypeSocket:
		return nfsv3.NF3SOCK
	case core.TypeCharDev:
		return nfsv3.NF3CHR
	case core.TypeBlockDev:
		return nfsv3.NF3BLK
	}
	return nfsv3.NF3REG
}

// nfsTime converts a time to nfstime3, whose seconds are unsigned 32 bits:
// times before 1970 or after 2106 are clamped.
func nfsTime(t time.Time) nfsv3.Nfstime3 {
	s := t.Unix()
	switch {
	case s < 0:
		return nfsv3.Nfstime3{}
	case s > math.MaxUint32:
		return nfsv3.Nfstime3{Seconds: math.MaxUint32, Nseconds: 999999999}
	}
	return nfsv3.Nfstime3{Seconds: uint32(s), Nseconds: uint32(t.Nanosecond())}
}

func goTime(t nfsv3.Nfstime3) time.Time {
	return time.Unix(int64(t.Seconds), int64(min(t.Nseconds, 999999999)))
}

func (s *Server) fattr(a *core.Attr) nfsv3.Fattr3 {
	return nfsv3.Fattr3{
		Type:   fileType(a.Type),
		Mode:   a.Mode & core.ModePerm,
		Nlink:  a.Nlink,
		Uid:    a.UID,
		Gid:    a.GID,
		Size:   a.Size,
		Used:   a.Used,
		Rdev:   nfsv3.Specdata3{Specdata1: uint32(a.Rdev >> 32), Specdata2: uint32(a.Rdev)},
		Fsid:   s.fsid,
		Fileid: uint64(a.Ino),
		Atime:  nfsTime(a.Atime),
		Mtime:  nfsTime(a.Mtime),
		Ctime:  nfsTime(a.Ctime),
	}
}

// postOp is post_op_attr for a, which may be nil (no attributes).
func (s *Server) postOp(a *core.Attr) nfsv3.PostOpAttr {
	if a == nil {
		return &nfsv3.PostOpAttr_FALSE{}
	}
	return &nfsv3.PostOpAttr_TRUE{Attributes: s.fattr(a)}
}

func preOp(a *core.Attr) nfsv3.PreOpAttr {
	if a == nil {
		return &nfsv3.PreOpAttr_FALSE{}
	}
	return &nfsv3.PreOpAttr_TRUE{Attributes: nfsv3.WccAttr{Size: a.Size, Mtime: nfsTime(a.Mtime), Ctime: nfsTime(a.Ctime)}}
}

// wcc is the weak cache consistency data of an object: before is what it
// was when the procedure started, after what it is now (either may be nil).
func (s *Server) wcc(before, after *core.Attr) nfsv3.WccData {
	return nfsv3.WccData{Before: preOp(before), After: s.postOp(after)}
}

// postOpFh is post_op_fh3 for the object a in export e.
func (s *Server) postOpFh(e *export, a *core.Attr) nfsv3.PostOpFh3 {
	if a == nil {
		return &nfsv3.PostOpFh3_FALSE{}
	}
	return &nfsv3.PostOpFh3_TRUE{Handle: nfsv3.NfsFh3{Data: s.handle(e, a)}}
}

// handle is the file handle of a in export e.
func (s *Server) handle(e *export, a *core.Attr) []byte {
	return fileHandle{export: e.id, fsid: s.fsid, ino: a.Ino, gen: a.Gen}.encode()
}

// setAttr converts sattr3 to the core's attribute change. It reports
// whether anything is to change.
func setAttr(sa *nfsv3.Sattr3) (core.SetAttr, bool) {
	var c core.SetAttr
	any := false
	if m, ok := sa.Mode.(*nfsv3.SetMode3_TRUE); ok {
		mode := m.Mode & core.ModePerm
		c.Mode, any = &mode, true
	}
	if u, ok := sa.Uid.(*nfsv3.SetUid3_TRUE); ok {
		uid := u.Uid
		c.UID, any = &uid, true
	}
	if g, ok := sa.Gid.(*nfsv3.SetGid3_TRUE); ok {
		gid := g.Gid
		c.GID, any = &gid, true
	}
	if z, ok := sa.Size.(*nfsv3.SetSize3_TRUE); ok {
		size := z.Size
		c.Size, any = &size, true
	}
	switch t := sa.Atime.(type) {
	case *nfsv3.SetAtime_SET_TO_CLIENT_TIME:
		c.Atime, any = core.SetTime{How: core.TimeClient, Time: goTime(t.Atime)}, true
	case *nfsv3.SetAtime_default:
		if t.SetIt == nfsv3.SET_TO_SERVER_TIME {
			c.Atime, any = core.SetTime{How: core.TimeServer}, true
		}
	}
	switch t := sa.Mtime.(type) {
	case *nfsv3.SetMtime_SET_TO_CLIENT_TIME:
		c.Mtime, any = core.SetTime{How: core.TimeClient, Time: goTime(t.Mtime)}, true
	case *nfsv3.SetMtime_default:
		if t.SetIt == nfsv3.SET_TO_SERVER_TIME {
			c.Mtime, any = core.SetTime{How: core.TimeServer}, true
		}
	}
	return c, any
}

// validTimeHow reports whether the time_how discriminants of sa are values
// the RFC defines; the decoder does not range-check enums.
func validSattr(sa *nfsv3.Sattr3) bool {
	if t, ok := sa.Atime.(*nfsv3.SetAtime_default); ok && t.SetIt != nfsv3.DONT_CHANGE && t.SetIt != nfsv3.SET_TO_SERVER_TIME {
		return false
	}
	if t, ok := sa.Mtime.(*nfsv3.SetMtime_default); ok && t.SetIt != nfsv3.DONT_CHANGE && t.SetIt != nfsv3.SET_TO_SERVER_TIME {
		return false
	}
	return true
}
