package nfs3

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/claudefs/cfs-gateway/internal/protocol/oncrpc"
	"github.com/claudefs/cfs-gateway/internal/protocol/xdr/mountv3"
	"github.com/claudefs/cfs-gateway/internal/protocol/xdr/nfsv3"
	"github.com/claudefs/cfs-gateway/internal/protocol/xdr/nlmv4"
	"github.com/claudefs/cfs-gateway/internal/protocol/xdr/nsmv1"
)

// reader adapts a generated result reader for the fuzz target's checks.
func reader[T any](read func(io.Reader) (T, int64, error)) func(io.Reader) error {
	return func(r io.Reader) error {
		_, _, err := read(r)
		return err
	}
}

func readerFrom[T any, P interface {
	*T
	io.ReaderFrom
}]() func(io.Reader) error {
	return func(r io.Reader) error {
		var v T
		_, err := P(&v).ReadFrom(r)
		return err
	}
}

func readNothing(io.Reader) error { return nil }

// resultReaders decode each procedure's results: a reply is valid when it
// decodes as its procedure's result type with no byte left over.
var resultReaders = map[uint32]map[uint32]func(io.Reader) error{
	nfsv3.NFS_PROGRAM: {
		0: readNothing, 1: reader(nfsv3.ReadGetattr3res), 2: reader(nfsv3.ReadSetattr3res),
		3: reader(nfsv3.ReadLookup3res), 4: reader(nfsv3.ReadAccess3res), 5: reader(nfsv3.ReadReadlink3res),
		6: reader(nfsv3.ReadRead3res), 7: reader(nfsv3.ReadWrite3res), 8: reader(nfsv3.ReadCreate3res),
		9: reader(nfsv3.ReadMkdir3res), 10: reader(nfsv3.ReadSymlink3res), 11: reader(nfsv3.ReadMknod3res),
		12: reader(nfsv3.ReadRemove3res), 13: reader(nfsv3.ReadRmdir3res), 14: reader(nfsv3.ReadRename3res),
		15: reader(nfsv3.ReadLink3res), 16: reader(nfsv3.ReadReaddir3res), 17: reader(nfsv3.ReadReaddirplus3res),
		18: reader(nfsv3.ReadFsstat3res), 19: reader(nfsv3.ReadFsinfo3res), 20: reader(nfsv3.ReadPathconf3res),
		21: reader(nfsv3.ReadCommit3res),
	},
	mountv3.MOUNT_PROGRAM: {
		0: readNothing, 1: reader(mountv3.ReadMountres3), 2: reader(mountv3.ReadMountlist),
		3: readNothing, 4: readNothing, 5: reader(mountv3.ReadExports),
	},
	nlmv4.NLM_PROG: {
		0: readNothing, 1: readerFrom[nlmv4.Nlm4Testres](), 2: readerFrom[nlmv4.Nlm4Res](),
		3: readerFrom[nlmv4.Nlm4Res](), 4: readerFrom[nlmv4.Nlm4Res](), 5: readerFrom[nlmv4.Nlm4Res](),
		6: readNothing, 7: readNothing, 8: readNothing, 9: readNothing, 10: readNothing,
		11: readNothing, 12: readNothing, 13: readNothing, 14: readNothing, 15: readNothing,
		20: readerFrom[nlmv4.Nlm4Shareres](), 21: readerFrom[nlmv4.Nlm4Shareres](),
		22: readerFrom[nlmv4.Nlm4Res](), 23: readNothing,
	},
	nsmv1.SM_PROG: {
		0: readNothing, 1: readerFrom[nsmv1.SmStatRes](), 2: readerFrom[nsmv1.SmStatRes](),
		3: readerFrom[nsmv1.SmStat](), 4: readerFrom[nsmv1.SmStat](), 5: readNothing, 6: readNothing,
	},
}

func encode(t testing.TB, v io.WriterTo) []byte {
	var b bytes.Buffer
	if _, err := v.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// FuzzDispatch feeds arguments to every procedure of NFS, MOUNT, NLM and
// NSM: the server must never panic, and must answer either GARBAGE_ARGS
// (or PROC_UNAVAIL for a procedure number it does not serve, AUTH_TOOWEAK
// for a refused flavor) or a reply that decodes as the procedure's result.
func FuzzDispatch(f *testing.F) {
	fsys := openFS(f)
	srv, err := New(Config{
		FS: fsys, Exports: openExport, Logger: quietLogger(), MaxTransfer: 64 << 10,
		NLMDial: func(ctx context.Context, addr netip.Addr) (*oncrpc.Client, error) {
			return nil, errors.New("no callbacks while fuzzing")
		},
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { srv.Close() })
	handlers := map[uint32]oncrpc.Handler{
		nfsv3.NFS_PROGRAM:     oncrpc.HandlerFunc(srv.serveNFS),
		mountv3.MOUNT_PROGRAM: oncrpc.HandlerFunc(srv.serveMount),
		nlmv4.NLM_PROG:        srv.locks.NLMHandler(),
		nsmv1.SM_PROG:         srv.locks.NSMHandler(),
	}
	progs := []uint32{nfsv3.NFS_PROGRAM, mountv3.MOUNT_PROGRAM, nlmv4.NLM_PROG, nsmv1.SM_PROG}
	versions := map[uint32]uint32{nfsv3.NFS_PROGRAM: 3, mountv3.MOUNT_PROGRAM: 3, nlmv4.NLM_PROG: 4, nsmv1.SM_PROG: 1}

	ctx := context.Background()
	e, _ := srv.findExport("/export")
	rootAttr, err := srv.exportRoot(ctx, e)
	if err != nil {
		f.Fatal(err)
	}
	root := nfsv3.NfsFh3{Data: srv.handle(e, &rootAttr)}
	name := func(n string) nfsv3.Diropargs3 { return nfsv3.Diropargs3{Dir: root, Name: []byte(n)} }
	seeds := map[uint32][]io.WriterTo{
		nfsv3.NFS_PROGRAM: {
			nil,
			&nfsv3.Getattr3args{Object: root},
			&nfsv3.Setattr3args{Object: root, NewAttributes: sattr(0o755), Guard: &nfsv3.Sattrguard3_FALSE{}},
			&nfsv3.Lookup3args{What: name("f")},
			&nfsv3.Access3args{Object: root, Access: 0x3f},
			&nfsv3.Readlink3args{Symlink: root},
			&nfsv3.Read3args{File: root, Count: 100},
			&nfsv3.Write3args{File: root, Count: 3, Stable: nfsv3.FILE_SYNC, Data: []byte("abc")},
			&nfsv3.Create3args{Where: name("f"), How: &nfsv3.Createhow3_UNCHECKED{ObjAttributes: sattr(0o644)}},
			&nfsv3.Mkdir3args{Where: name("d"), Attributes: sattr(0o755)},
			&nfsv3.Symlink3args{Where: name("s"), Symlink: nfsv3.Symlinkdata3{SymlinkAttributes: sattr(-1), SymlinkData: []byte("f")}},
			&nfsv3.Mknod3args{Where: name("p"), What: &nfsv3.Mknoddata3_NF3FIFO{PipeAttributes: sattr(0o644)}},
			&nfsv3.Remove3args{Object: name("p")},
			&nfsv3.Rmdir3args{Object: name("d")},
			&nfsv3.Rename3args{From: name("f"), To: name("g")},
			&nfsv3.Link3args{File: root, Link: name("h")},
			&nfsv3.Readdir3args{Dir: root, Count: 4096},
			&nfsv3.Readdirplus3args{Dir: root, Dircount: 512, Maxcount: 4096},
			&nfsv3.Fsstat3args{Fsroot: root},
			&nfsv3.Fsinfo3args{Fsroot: root},
			&nfsv3.Pathconf3args{Object: root},
			&nfsv3.Commit3args{File: root},
		},
		mountv3.MOUNT_PROGRAM: {nil, dirpath("/export"), nil, dirpath("/export"), nil, nil},
		nlmv4.NLM_PROG: {
			nil,
			&nlmv4.Nlm4Testargs{Exclusive: true, Alock: nlmv4.Nlm4Lock{CallerName: "h", Fh: root.Data, Oh: []byte("o"), LLen: 10}},
			&nlmv4.Nlm4Lockargs{Block: true, Exclusive: true, Alock: nlmv4.Nlm4Lock{CallerName: "h", Fh: root.Data, Oh: []byte("o"), LLen: 10}},
			&nlmv4.Nlm4Cancargs{Alock: nlmv4.Nlm4Lock{CallerName: "h", Fh: root.Data}},
			&nlmv4.Nlm4Unlockargs{Alock: nlmv4.Nlm4Lock{CallerName: "h", Fh: root.Data, LLen: 10}},
		},
		nsmv1.SM_PROG: {nil, &nsmv1.SmName{MonName: "h"}, &nsmv1.Mon{}, &nsmv1.MonId{}, &nsmv1.MyId{}, nil, &nsmv1.StatChge{MonName: "h"}},
	}
	for i, prog := range progs {
		for proc, args := range seeds[prog] {
			var b []byte
			if args != nil {
				b = encode(f, args)
			}
			f.Add(uint8(i), uint32(proc), b)
		}
	}
	f.Add(uint8(2), uint32(nlmv4.NLMPROC4_SHARE), encode(f, &nlmv4.Nlm4Shareargs{Share: nlmv4.Nlm4Share{CallerName: "h", Fh: root.Data, Access: nlmv4.FSA_R}}))
	f.Add(uint8(2), uint32(nlmv4.NLMPROC4_FREE_ALL), encode(f, &nlmv4.Nlm4Notify{Name: "h"}))
	f.Add(uint8(0), uint32(99), []byte{})

	remote := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1000}
	f.Fuzz(func(t *testing.T, which uint8, proc uint32, args []byte) {
		prog := progs[int(which)%len(progs)]
		call := &oncrpc.Call{
			XID: 1, Prog: prog, Vers: versions[prog], Proc: proc,
			Cred:    oncrpc.OpaqueAuth{Flavor: oncrpc.AuthSys},
			Sys:     &oncrpc.SysCredential{MachineName: "fuzz", UID: 1000, GID: 1000},
			Network: "tcp", RemoteAddr: remote, LocalAddr: remote,
			Args: args,
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		res, err := handlers[prog].ServeRPC(ctx, call)
		read, known := resultReaders[prog][proc]
		if err != nil {
			var auth oncrpc.AuthStat
			switch {
			case errors.Is(err, oncrpc.GarbageArgs):
			case errors.Is(err, oncrpc.ProcUnavail) && !known:
			case errors.As(err, &auth) && auth == oncrpc.AuthTooWeak:
			default:
				t.Fatalf("program %d procedure %d answered %v", prog, proc, err)
			}
			return
		}
		if !known {
			t.Fatalf("program %d answered procedure %d, which it does not have", prog, proc)
		}
		var b bytes.Buffer
		if res != nil {
			if _, err := res.WriteTo(&b); err != nil {
				t.Fatalf("program %d procedure %d: results do not encode: %v", prog, proc, err)
			}
		}
		r := bytes.NewReader(b.Bytes())
		if err := read(r); err != nil || r.Len() != 0 {
			t.Fatalf("program %d procedure %d: reply does not decode as its result (%v, %d bytes left)", prog, proc, err, r.Len())
		}
	})
}
