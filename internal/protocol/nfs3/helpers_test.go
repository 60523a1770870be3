package nfs3

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/claudefs/cfs-gateway/internal/core"
	"github.com/claudefs/cfs-gateway/internal/core/coretest"
	"github.com/claudefs/cfs-gateway/internal/metrics"
	"github.com/claudefs/cfs-gateway/internal/protocol/oncrpc"
	"github.com/claudefs/cfs-gateway/internal/protocol/xdr/mountv3"
	"github.com/claudefs/cfs-gateway/internal/protocol/xdr/nfsv3"
)

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// openFS opens a filesystem on the embedded engines in a temporary
// directory, closed when the test ends.
func openFS(t testing.TB) *core.FS {
	return coretest.OpenEmbedded(t, t.TempDir(), core.Options{Logger: quietLogger()})
}

type testServer struct {
	srv     *Server
	fs      *core.FS
	bound   Bound
	metrics *metrics.Metrics
	reg     *prometheus.Registry
}

// startServer serves fsys with the given exports on loopback ports.
func startServer(t testing.TB, fsys *core.FS, exports []Export, tweak func(*Config)) *testServer {
	t.Helper()
	reg := metrics.NewRegistry()
	m, err := metrics.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{FS: fsys, Exports: exports, Metrics: m, Logger: quietLogger()}
	if tweak != nil {
		tweak(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := srv.ListenAndServe(Addrs{NFS: "127.0.0.1:0", Mount: "127.0.0.1:0", NLM: "127.0.0.1:0", Portmap: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	})
	return &testServer{srv: srv, fs: fsys, bound: b, metrics: m, reg: reg}
}

// dial connects to addr with an AUTH_SYS credential of uid and gid.
func dial(t testing.TB, addr net.Addr, uid, gid uint32, groups ...uint32) *oncrpc.Client {
	t.Helper()
	cred, err := oncrpc.SysCredential{MachineName: "testclient", UID: uid, GID: gid, GIDs: groups}.Credential()
	if err != nil {
		t.Fatal(err)
	}
	c, err := oncrpc.Dial(context.Background(), "tcp", addr.String(), oncrpc.WithCredential(cred),
		oncrpc.WithClientLogger(quietLogger()), oncrpc.WithMaxReplySize(8<<20))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// call makes one call and decodes its results with read.
func call[T any](t testing.TB, c *oncrpc.Client, prog, vers, proc uint32, args io.WriterTo, read func(io.Reader) (T, int64, error)) T {
	t.Helper()
	out, err := tryCall(c, prog, vers, proc, args, read)
	if err != nil {
		t.Fatalf("call of program %d procedure %d: %v", prog, proc, err)
	}
	return out
}

func tryCall[T any](c *oncrpc.Client, prog, vers, proc uint32, args io.WriterTo, read func(io.Reader) (T, int64, error)) (T, error) {
	var out T
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := c.Call(ctx, prog, vers, proc, args, oncrpc.ReaderFromFunc(func(r io.Reader) (int64, error) {
		v, n, err := read(r)
		out = v
		return n, err
	}))
	return out, err
}

// nfs is a small typed client over the NFS program for tests.
type nfs struct {
	t testing.TB
	c *oncrpc.Client
}

func (n nfs) mount(path string) []byte {
	n.t.Helper()
	res := call(n.t, n.c, mountv3.MOUNT_PROGRAM, mountv3.MOUNT_V3, mountv3.MOUNTPROC3_MNT, dirpath(path), mountv3.ReadMountres3)
	ok, isOK := res.(*mountv3.Mountres3_MNT3_OK)
	if !isOK {
		n.t.Fatalf("MNT %s: status %v", path, res.GetFhsStatus())
	}
	return ok.Mountinfo.Fhandle
}

type dirpath string

func (d dirpath) WriteTo(w io.Writer) (int64, error) { return mountv3.WriteDirpath(w, []byte(d)) }

func (n nfs) getattr(fh []byte) nfsv3.Getattr3res {
	n.t.Helper()
	return call(n.t, n.c, nfsv3.NFS_PROGRAM, nfsv3.NFS_V3, nfsv3.NFSPROC3_GETATTR, &nfsv3.Getattr3args{Object: nfsv3.NfsFh3{Data: fh}}, nfsv3.ReadGetattr3res)
}

func (n nfs) lookup(dir []byte, name string) nfsv3.Lookup3res {
	n.t.Helper()
	return call(n.t, n.c, nfsv3.NFS_PROGRAM, nfsv3.NFS_V3, nfsv3.NFSPROC3_LOOKUP,
		&nfsv3.Lookup3args{What: nfsv3.Diropargs3{Dir: nfsv3.NfsFh3{Data: dir}, Name: []byte(name)}}, nfsv3.ReadLookup3res)
}

// sattr builds a sattr3 that sets the mode only (mode < 0: nothing).
func sattr(mode int) nfsv3.Sattr3 {
	sa := nfsv3.Sattr3{
		Mode:  &nfsv3.SetMode3_default{},
		Uid:   &nfsv3.SetUid3_default{},
		Gid:   &nfsv3.SetGid3_default{},
		Size:  &nfsv3.SetSize3_default{},
		Atime: &nfsv3.SetAtime_default{SetIt: nfsv3.DONT_CHANGE},
		Mtime: &nfsv3.SetMtime_default{SetIt: nfsv3.DONT_CHANGE},
	}
	if mode >= 0 {
		sa.Mode = &nfsv3.SetMode3_TRUE{Mode: uint32(mode)}
	}
	return sa
}

func where(dir []byte, name string) nfsv3.Diropargs3 {
	return nfsv3.Diropargs3{Dir: nfsv3.NfsFh3{Data: dir}, Name: []byte(name)}
}

func (n nfs) create(dir []byte, name string, how nfsv3.Createhow3) nfsv3.Create3res {
	n.t.Helper()
	return call(n.t, n.c, nfsv3.NFS_PROGRAM, nfsv3.NFS_V3, nfsv3.NFSPROC3_CREATE,
		&nfsv3.Create3args{Where: where(dir, name), How: how}, nfsv3.ReadCreate3res)
}

// createFile creates a file and returns its handle, failing the test
// otherwise.
func (n nfs) createFile(dir []byte, name string, mode int) []byte {
	n.t.Helper()
	res := n.create(dir, name, &nfsv3.Createhow3_GUARDED{ObjAttributes: sattr(mode)})
	ok, isOK := res.(*nfsv3.Create3res_NFS3_OK)
	if !isOK {
		n.t.Fatalf("CREATE %s: %s", name, StatusName(res.GetStatus()))
	}
	return ok.Resok.Obj.(*nfsv3.PostOpFh3_TRUE).Handle.Data
}

func (n nfs) mkdir(dir []byte, name string, mode int) nfsv3.Mkdir3res {
	n.t.Helper()
	return call(n.t, n.c, nfsv3.NFS_PROGRAM, nfsv3.NFS_V3, nfsv3.NFSPROC3_MKDIR,
		&nfsv3.Mkdir3args{Where: where(dir, name), Attributes: sattr(mode)}, nfsv3.ReadMkdir3res)
}

func (n nfs) mkdirOK(dir []byte, name string, mode int) []byte {
	n.t.Helper()
	res := n.mkdir(dir, name, mode)
	ok, isOK := res.(*nfsv3.Mkdir3res_NFS3_OK)
	if !isOK {
		n.t.Fatalf("MKDIR %s: %s", name, StatusName(res.GetStatus()))
	}
	return ok.Resok.Obj.(*nfsv3.PostOpFh3_TRUE).Handle.Data
}

func (n nfs) write(fh []byte, off uint64, data []byte, stable nfsv3.StableHow) nfsv3.Write3res {
	n.t.Helper()
	return call(n.t, n.c, nfsv3.NFS_PROGRAM, nfsv3.NFS_V3, nfsv3.NFSPROC3_WRITE,
		&nfsv3.Write3args{File: nfsv3.NfsFh3{Data: fh}, Offset: off, Count: uint32(len(data)), Stable: stable, Data: data}, nfsv3.ReadWrite3res)
}

func (n nfs) read(fh []byte, off uint64, count uint32) nfsv3.Read3res {
	n.t.Helper()
	return call(n.t, n.c, nfsv3.NFS_PROGRAM, nfsv3.NFS_V3, nfsv3.NFSPROC3_READ,
		&nfsv3.Read3args{File: nfsv3.NfsFh3{Data: fh}, Offset: off, Count: count}, nfsv3.ReadRead3res)
}

func (n nfs) readdir(dir []byte, cookie uint64, verf [8]byte, count uint32) nfsv3.Readdir3res {
	n.t.Helper()
	return call(n.t, n.c, nfsv3.NFS_PROGRAM, nfsv3.NFS_V3, nfsv3.NFSPROC3_READDIR,
		&nfsv3.Readdir3args{Dir: nfsv3.NfsFh3{Data: dir}, Cookie: cookie, Cookieverf: verf, Count: count}, nfsv3.ReadReaddir3res)
}

func (n nfs) readdirplus(dir []byte, cookie uint64, verf [8]byte, dircount, maxcount uint32) nfsv3.Readdirplus3res {
	n.t.Helper()
	return call(n.t, n.c, nfsv3.NFS_PROGRAM, nfsv3.NFS_V3, nfsv3.NFSPROC3_READDIRPLUS,
		&nfsv3.Readdirplus3args{Dir: nfsv3.NfsFh3{Data: dir}, Cookie: cookie, Cookieverf: verf, Dircount: dircount, Maxcount: maxcount},
		nfsv3.ReadReaddirplus3res)
}

func (n nfs) remove(dir []byte, name string) nfsv3.Remove3res {
	n.t.Helper()
	return call(n.t, n.c, nfsv3.NFS_PROGRAM, nfsv3.NFS_V3, nfsv3.NFSPROC3_REMOVE,
		&nfsv3.Remove3args{Object: where(dir, name)}, nfsv3.ReadRemove3res)
}

// fattr returns the attributes of a post_op_attr, failing if absent.
func fattr(t testing.TB, p nfsv3.PostOpAttr) nfsv3.Fattr3 {
	t.Helper()
	a, ok := p.(*nfsv3.PostOpAttr_TRUE)
	if !ok {
		t.Fatal("post-op attributes missing")
	}
	return a.Attributes
}

// countRequests reads gateway_requests_total for one protocol, op and
// status.
func countRequests(t testing.TB, ts *testServer, protocol, op, status string) float64 {
	t.Helper()
	families, err := ts.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != metrics.NameRequests {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["protocol"] == protocol && labels["op"] == op && labels["status"] == status {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// gauge reads a gauge labelled with protocol.
func gauge(t testing.TB, ts *testServer, name, protocol string) float64 {
	t.Helper()
	families, err := ts.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "protocol" && l.GetValue() == protocol {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	return 0
}
