package nfs3

import (
	"context"
	"io"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/claudefs/cfs-gateway/internal/core"
	"github.com/claudefs/cfs-gateway/internal/protocol/oncrpc"
	"github.com/claudefs/cfs-gateway/internal/protocol/xdr/mountv3"
)

const mountProcCount = mountv3.MOUNTPROC3_EXPORT + 1

var mountProcNames = [mountProcCount]string{"NULL", "MNT", "DUMP", "UMNT", "UMNTALL", "EXPORT"}

// mountTable records which client mounted what, for DUMP. It is advisory,
// as in every NFSv3 server: clients that vanish never unmount, and a
// handle stays valid without a mount.
type mountTable struct {
	mu     sync.Mutex
	byHost map[string]map[string]struct{} // client address -> mounted paths
}

// maxMountsPerHost bounds what one client can make the table hold.
const maxMountsPerHost = 256

func (t *mountTable) add(host, dir string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	paths := t.byHost[host]
	if paths == nil {
		paths = map[string]struct{}{}
		t.byHost[host] = paths
	}
	if len(paths) < maxMountsPerHost {
		paths[dir] = struct{}{}
	}
}

func (t *mountTable) remove(host, dir string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.byHost[host], dir)
	if len(t.byHost[host]) == 0 {
		delete(t.byHost, host)
	}
}

func (t *mountTable) removeHost(host string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.byHost, host)
}

// list returns (host, path) pairs in a stable order.
func (t *mountTable) list() [][2]string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out [][2]string
	for h, paths := range t.byHost {
		for p := range paths {
			out = append(out, [2]string{h, p})
		}
	}
	slices.SortFunc(out, func(a, b [2]string) int {
		if c := strings.Compare(a[0], b[0]); c != 0 {
			return c
		}
		return strings.Compare(a[1], b[1])
	})
	return out
}

type mountProc func(s *Server, ctx context.Context, call *oncrpc.Call) (io.WriterTo, string, error)

var mountProcs = [mountProcCount]mountProc{
	(*Server).mountNull,
	(*Server).mnt,
	(*Server).dump,
	(*Server).umnt,
	(*Server).umntall,
	(*Server).exportList,
}

// serveMount is the oncrpc handler of the MOUNT program.
func (s *Server) serveMount(ctx context.Context, call *oncrpc.Call) (io.WriterTo, error) {
	if call.Proc >= mountProcCount {
		return nil, oncrpc.ProcUnavail
	}
	start := time.Now()
	res, status, err := mountProcs[call.Proc](s, ctx, call)
	if err != nil {
		status = "GARBAGE_ARGS"
	}
	s.mountOps[call.Proc].Observe(start, status, 0, 0)
	return res, err
}

func (s *Server) mountNull(ctx context.Context, call *oncrpc.Call) (io.WriterTo, string, error) {
	return nil, "ok", nil
}

var mountStatusNames = map[mountv3.Mountstat3]string{
	mountv3.MNT3_OK:             "ok",
	mountv3.MNT3ERR_PERM:        "MNT3ERR_PERM",
	mountv3.MNT3ERR_NOENT:       "MNT3ERR_NOENT",
	mountv3.MNT3ERR_IO:          "MNT3ERR_IO",
	mountv3.MNT3ERR_ACCES:       "MNT3ERR_ACCES",
	mountv3.MNT3ERR_NOTDIR:      "MNT3ERR_NOTDIR",
	mountv3.MNT3ERR_INVAL:       "MNT3ERR_INVAL",
	mountv3.MNT3ERR_NAMETOOLONG: "MNT3ERR_NAMETOOLONG",
	mountv3.MNT3ERR_NOTSUPP:     "MNT3ERR_NOTSUPP",
	mountv3.MNT3ERR_SERVERFAULT: "MNT3ERR_SERVERFAULT",
}

// findExport returns the export whose name is p or the longest one that
// is a directory prefix of p, and the rest of p below it.
func (s *Server) findExport(p string) (*export, string) {
	var best *export
	rest := ""
	for _, e := range s.exports {
		switch {
		case p == e.Name:
			return e, ""
		case e.Name == "/":
			if best == nil {
				best, rest = e, p
			}
		case strings.HasPrefix(p, e.Name+"/"):
			if best == nil || len(e.Name) > len(best.Name) {
				best, rest = e, p[len(e.Name):]
			}
		}
	}
	return best, rest
}

// mountPoint resolves a MNT path: the export's directory, or a directory
// below it walked as the caller (so that mounting a subdirectory needs the
// permissions a lookup of it would).
func (s *Server) mountPoint(ctx context.Context, call *oncrpc.Call, dirpath []byte) (*export, core.Attr, mountv3.Mountstat3, error) {
	if len(dirpath) == 0 || dirpath[0] != '/' {
		return nil, core.Attr{}, mountv3.MNT3ERR_NOENT, nil
	}
	p := path.Clean(string(dirpath))
	e, rest := s.findExport(p)
	if e == nil {
		return nil, core.Attr{}, mountv3.MNT3ERR_NOENT, nil
	}
	if !e.clients.allowed(ctx, remoteAddr(call)) {
		return nil, core.Attr{}, mountv3.MNT3ERR_ACCES, nil
	}
	id, err := e.identity(call)
	if err != nil {
		// The MNT call's own flavor does not matter (clients learn the
		// export's flavors from the reply): a caller whose flavor the
		// export refuses walks below the export as the anonymous user.
		id = &core.Identity{UID: e.AnonUID, GID: e.AnonGID}
	}
	root, err := s.exportRoot(ctx, e)
	if err != nil {
		return nil, core.Attr{}, mountStatus(err), nil
	}
	a := root
	if rest != "" {
		if a, err = s.walk(ctx, id, root.Ino, rest); err != nil {
			return nil, core.Attr{}, mountStatus(err), nil
		}
		if a.Type != core.TypeDir {
			return nil, core.Attr{}, mountv3.MNT3ERR_NOTDIR, nil
		}
		// A directory the caller cannot search would mount only to fail
		// every lookup: refuse it now, as a local chdir would.
		if granted, err := s.fs.Access(ctx, id, a.Ino, core.AccessLookup); err != nil || granted == 0 {
			return nil, core.Attr{}, mountv3.MNT3ERR_ACCES, nil
		}
	}
	return e, a, mountv3.MNT3_OK, nil
}

func (s *Server) mnt(ctx context.Context, call *oncrpc.Call) (io.WriterTo, string, error) {
	dir, err := decodeDirpath(call)
	if err != nil {
		return nil, "", err
	}
	e, a, st, err := s.mountPoint(ctx, call, dir)
	if err != nil {
		return nil, "", err
	}
	if st != mountv3.MNT3_OK {
		s.log.Info("mount refused", "client", remoteAddr(call).String(), "path", string(dir), "status", mountStatusNames[st])
		return &mountv3.Mountres3_default{FhsStatus: st}, mountStatusNames[st], nil
	}
	s.mounts.add(remoteAddr(call).String(), path.Clean(string(dir)))
	return &mountv3.Mountres3_MNT3_OK{Mountinfo: mountv3.Mountres3Ok{
		Fhandle:     s.handle(e, &a),
		AuthFlavors: e.flavors(),
	}}, "ok", nil
}

func decodeDirpath(call *oncrpc.Call) ([]byte, error) {
	var dir []byte
	err := call.DecodeArgsFunc(func(r io.Reader) error {
		var err error
		dir, _, err = mountv3.ReadDirpath(r)
		return err
	})
	return dir, err
}

type writerFunc func(w io.Writer) (int64, error)

func (f writerFunc) WriteTo(w io.Writer) (int64, error) { return f(w) }

func (s *Server) dump(ctx context.Context, call *oncrpc.Call) (io.WriterTo, string, error) {
	var head *mountv3.Mountbody
	list := s.mounts.list()
	for i := len(list) - 1; i >= 0; i-- {
		head = &mountv3.Mountbody{MlHostname: list[i][0], MlDirectory: []byte(list[i][1]), MlNext: head}
	}
	return writerFunc(func(w io.Writer) (int64, error) { return mountv3.WriteMountlist(w, head) }), "ok", nil
}

func (s *Server) umnt(ctx context.Context, call *oncrpc.Call) (io.WriterTo, string, error) {
	dir, err := decodeDirpath(call)
	if err != nil {
		return nil, "", err
	}
	s.mounts.remove(remoteAddr(call).String(), path.Clean("/"+string(dir)))
	return nil, "ok", nil
}

func (s *Server) umntall(ctx context.Context, call *oncrpc.Call) (io.WriterTo, string, error) {
	s.mounts.removeHost(remoteAddr(call).String())
	return nil, "ok", nil
}

// exportList answers EXPORT: every export with the clients allowed to
// mount it; an export open to everyone lists no groups.
func (s *Server) exportList(ctx context.Context, call *oncrpc.Call) (io.WriterTo, string, error) {
	var head *mountv3.Exportnode
	for i := len(s.exports) - 1; i >= 0; i-- {
		e := s.exports[i]
		var groups *mountv3.Groupnode
		if !e.clients.all {
			for j := len(e.AllowedClients) - 1; j >= 0; j-- {
				name := e.AllowedClients[j]
				if len(name) > mountv3.MNTNAMLEN {
					continue
				}
				groups = &mountv3.Groupnode{GrName: name, GrNext: groups}
			}
		}
		head = &mountv3.Exportnode{ExDir: []byte(e.Name), ExGroups: groups, ExNext: head}
	}
	return writerFunc(func(w io.Writer) (int64, error) { return mountv3.WriteExports(w, head) }), "ok", nil
}
