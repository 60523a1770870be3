package nfs3

import (
	"context"
	"errors"
	"io"
	"syscall"
	"time"

	"github.com/claudefs/cfs-gateway/internal/core"
	"github.com/claudefs/cfs-gateway/internal/protocol/oncrpc"
	"github.com/claudefs/cfs-gateway/internal/protocol/xdr/nfsv3"
)

const nfsProcCount = nfsv3.NFSPROC3_COMMIT + 1

// nfsProcNames are the procedure names, the op label of the metrics.
var nfsProcNames = [nfsProcCount]string{
	"NULL", "GETATTR", "SETATTR", "LOOKUP", "ACCESS", "READLINK", "READ", "WRITE", "CREATE", "MKDIR",
	"SYMLINK", "MKNOD", "REMOVE", "RMDIR", "RENAME", "LINK", "READDIR", "READDIRPLUS", "FSSTAT",
	"FSINFO", "PATHCONF", "COMMIT",
}

// outcome is what a procedure returns: its results, its status for the
// metrics, and the payload bytes it moved (WRITE in, READ out).
type outcome struct {
	res    io.WriterTo
	status nfsv3.Nfsstat3
	in     int
	out    int
}

type nfsProc func(s *Server, ctx context.Context, call *oncrpc.Call) (outcome, error)

// nfsProcs is the dispatch table, indexed by procedure number.
var nfsProcs = [nfsProcCount]nfsProc{
	(*Server).nfsNull,
	(*Server).getattr,
	(*Server).setattr,
	(*Server).lookup,
	(*Server).access,
	(*Server).readlink,
	(*Server).read,
	(*Server).write,
	(*Server).create,
	(*Server).mkdir,
	(*Server).symlink,
	(*Server).mknod,
	(*Server).remove,
	(*Server).rmdir,
	(*Server).rename,
	(*Server).link,
	(*Server).readdir,
	(*Server).readdirplus,
	(*Server).fsstat,
	(*Server).fsinfo,
	(*Server).pathconf,
	(*Server).commit,
}

// serveNFS is the oncrpc handler of the NFS program.
func (s *Server) serveNFS(ctx context.Context, call *oncrpc.Call) (io.WriterTo, error) {
	if call.Proc >= nfsProcCount {
		return nil, oncrpc.ProcUnavail
	}
	start := time.Now()
	o, err := nfsProcs[call.Proc](s, ctx, call)
	op := s.nfsOps[call.Proc]
	if err != nil {
		var auth oncrpc.AuthStat
		status := "GARBAGE_ARGS"
		if errors.As(err, &auth) {
			status = auth.String()
		}
		op.Observe(start, status, 0, 0)
		return nil, err
	}
	op.Observe(start, StatusName(o.status), o.in, o.out)
	return o.res, nil
}

func (s *Server) nfsNull(ctx context.Context, call *oncrpc.Call) (outcome, error) {
	return outcome{}, nil
}

// target is the object a procedure's file handle names.
type target struct {
	exp  *export
	id   *core.Identity
	attr core.Attr
}

// resolve decodes a file handle of call and checks the caller against the
// handle's export. A status other than NFS3_OK is the procedure's answer;
// an error (a flavor the export refuses) is the call's.
func (s *Server) resolve(ctx context.Context, call *oncrpc.Call, fh []byte) (target, nfsv3.Nfsstat3, error) {
	h, err := decodeHandle(fh)
	if err != nil {
		return target{}, nfsv3.NFS3ERR_BADHANDLE, nil
	}
	e := s.byID[h.export]
	if e == nil || h.fsid != s.fsid {
		// A handle of an export removed from the configuration, or of
		// another filesystem: it names nothing here any more.
		return target{}, nfsv3.NFS3ERR_STALE, nil
	}
	id, err := e.identity(call)
	if err != nil {
		return target{}, 0, err
	}
	if !e.clients.allowed(ctx, remoteAddr(call)) {
		return target{}, nfsv3.NFS3ERR_ACCES, nil
	}
	a, err := s.fs.GetAttrHandle(ctx, core.Handle{Ino: h.ino, Gen: h.gen})
	if err != nil {
		return target{}, Status(err), nil
	}
	return target{exp: e, id: id, attr: a}, nfsv3.NFS3_OK, nil
}

// attrNow returns the current attributes of ino, or nil, for post-op data.
func (s *Server) attrNow(ctx context.Context, ino core.Ino) *core.Attr {
	a, err := s.fs.GetAttr(ctx, ino)
	if err != nil {
		return nil
	}
	return &a
}

// exportRoot returns the handle of the export's directory, resolving the
// export path (as the superuser: the configuration grants it) the first
// time.
func (s *Server) exportRoot(ctx context.Context, e *export) (core.Attr, error) {
	if h := e.root.Load(); h != nil {
		a, err := s.fs.GetAttrHandle(ctx, *h)
		if err == nil {
			return a, nil
		}
		if Status(err) != nfsv3.NFS3ERR_STALE {
			return core.Attr{}, err
		}
		// The exported directory was replaced: resolve its path again.
	}
	a, err := s.walk(ctx, &core.Root, core.RootIno, e.Path)
	if err != nil {
		return core.Attr{}, err
	}
	if a.Type != core.TypeDir {
		return core.Attr{}, &core.Error{Op: "export", Ino: a.Ino, Err: syscall.ENOTDIR}
	}
	h := a.Handle()
	e.root.Store(&h)
	return a, nil
}

// isExportRoot reports whether ino is the export's directory, where ".."
// stays put so that a client cannot climb out of the export by name.
func (s *Server) isExportRoot(ctx context.Context, e *export, ino core.Ino) bool {
	a, err := s.exportRoot(ctx, e)
	return err == nil && a.Ino == ino
}

// walk looks up a slash-separated path below dir as id.
func (s *Server) walk(ctx context.Context, id *core.Identity, dir core.Ino, p string) (core.Attr, error) {
	a, err := s.fs.GetAttr(ctx, dir)
	if err != nil {
		return core.Attr{}, err
	}
	for _, name := range splitPath(p) {
		a, err = s.fs.Lookup(ctx, id, a.Ino, name)
		if err != nil {
			return core.Attr{}, err
		}
	}
	return a, nil
}

func splitPath(p string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(p); i++ {
		if i == len(p) || p[i] == '/' {
			if i > start {
				out = append(out, p[start:i])
			}
			start = i + 1
		}
	}
	return out
}
