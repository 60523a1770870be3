package nfs3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"syscall"
	"testing"

	"github.com/claudefs/cfs-gateway/internal/core"
	"github.com/claudefs/cfs-gateway/internal/protocol/oncrpc"
	"github.com/claudefs/cfs-gateway/internal/protocol/xdr/mountv3"
	"github.com/claudefs/cfs-gateway/internal/protocol/xdr/nfsv3"
)

func TestHandleRoundTrip(t *testing.T) {
	for _, h := range []fileHandle{
		{export: exportID("/export"), fsid: 1, ino: 1, gen: 0},
		{export: 0xffffffff, fsid: ^uint64(0), ino: core.Ino(^uint64(0)), gen: ^uint64(0)},
	} {
		b := h.encode()
		if len(b) != HandleSize {
			t.Fatalf("handle of %d bytes", len(b))
		}
		got, err := decodeHandle(b)
		if err != nil || got != h {
			t.Errorf("decode(encode(%+v)) = %+v, %v", h, got, err)
		}
	}
	good := fileHandle{export: 7, fsid: 8, ino: 9, gen: 10}.encode()
	for name, b := range map[string][]byte{
		"empty":    nil,
		"short":    good[:31],
		"long":     append(append([]byte{}, good...), 0),
		"version":  append([]byte{2}, good[1:]...),
		"reserved": append(append([]byte{}, good[:2]...), append([]byte{1}, good[3:]...)...),
		"inode 0":  fileHandle{export: 7, fsid: 8}.encode(),
	} {
		if _, err := decodeHandle(b); !errors.Is(err, errBadHandle) {
			t.Errorf("%s handle: %v, want errBadHandle", name, err)
		}
	}
}

func FuzzDecodeHandle(f *testing.F) {
	f.Add(fileHandle{export: 1, fsid: 2, ino: 3, gen: 4}.encode())
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := decodeHandle(b)
		if err != nil {
			return
		}
		if again := h.encode(); string(again) != string(b) {
			t.Fatalf("decoded handle re-encodes to %x, not %x", again, b)
		}
	})
}

func TestStatus(t *testing.T) {
	wrap := func(err error) error { return &core.Error{Op: "op", Ino: 5, Err: err} }
	for _, tc := range []struct {
		err  error
		want nfsv3.Nfsstat3
	}{
		{nil, nfsv3.NFS3_OK},
		{wrap(core.ErrUnavailable), nfsv3.NFS3ERR_JUKEBOX},
		{wrap(fmt.Errorf("%w: %w", core.ErrUnavailable, syscall.EIO)), nfsv3.NFS3ERR_JUKEBOX},
		{wrap(core.ErrNotSync), nfsv3.NFS3ERR_NOT_SYNC},
		{wrap(core.ErrBadCookie), nfsv3.NFS3ERR_BAD_COOKIE},
		{wrap(syscall.ESTALE), nfsv3.NFS3ERR_STALE},
		{wrap(syscall.EDQUOT), nfsv3.NFS3ERR_DQUOT},
		{wrap(syscall.EACCES), nfsv3.NFS3ERR_ACCES},
		{wrap(syscall.EPERM), nfsv3.NFS3ERR_PERM},
		{wrap(syscall.ENOENT), nfsv3.NFS3ERR_NOENT},
		{wrap(syscall.EEXIST), nfsv3.NFS3ERR_EXIST},
		{wrap(syscall.ENOTDIR), nfsv3.NFS3ERR_NOTDIR},
		{wrap(syscall.EISDIR), nfsv3.NFS3ERR_ISDIR},
		{wrap(syscall.EINVAL), nfsv3.NFS3ERR_INVAL},
		{wrap(syscall.EFBIG), nfsv3.NFS3ERR_FBIG},
		{wrap(syscall.ENOSPC), nfsv3.NFS3ERR_NOSPC},
		{wrap(syscall.EROFS), nfsv3.NFS3ERR_ROFS},
		{wrap(syscall.EMLINK), nfsv3.NFS3ERR_MLINK},
		{wrap(syscall.ENAMETOOLONG), nfsv3.NFS3ERR_NAMETOOLONG},
		{wrap(syscall.ENOTEMPTY), nfsv3.NFS3ERR_NOTEMPTY},
		{wrap(syscall.EIO), nfsv3.NFS3ERR_IO},
		{wrap(syscall.ENOTSUP), nfsv3.NFS3ERR_NOTSUPP},
		{wrap(syscall.EOPNOTSUPP), nfsv3.NFS3ERR_NOTSUPP},
		{wrap(syscall.EXDEV), nfsv3.NFS3ERR_XDEV},
		{wrap(syscall.EAGAIN), nfsv3.NFS3ERR_JUKEBOX},
		{wrap(syscall.ECHILD), nfsv3.NFS3ERR_IO},
		{errors.New("anything else"), nfsv3.NFS3ERR_IO},
		{errBadHandle, nfsv3.NFS3ERR_BADHANDLE},
	} {
		if got := Status(tc.err); got != tc.want {
			t.Errorf("Status(%v) = %s, want %s", tc.err, StatusName(got), StatusName(tc.want))
		}
	}
	for st := range statusNames {
		if StatusName(st) == "NFS3ERR_unknown" {
			t.Errorf("status %d has no name", st)
		}
	}
	for _, tc := range []struct {
		err  error
		want mountv3.Mountstat3
	}{
		{syscall.ENOENT, mountv3.MNT3ERR_NOENT},
		{syscall.EACCES, mountv3.MNT3ERR_ACCES},
		{syscall.ENOTDIR, mountv3.MNT3ERR_NOTDIR},
		{core.ErrUnavailable, mountv3.MNT3ERR_SERVERFAULT},
		{syscall.EIO, mountv3.MNT3ERR_IO},
	} {
		if got := mountStatus(tc.err); got != tc.want {
			t.Errorf("mountStatus(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// fakeResolver answers from fixed tables.
type fakeResolver struct {
	hosts map[string][]string // name -> addresses
	addrs map[string][]string // address -> names
}

func (r fakeResolver) LookupHost(ctx context.Context, host string) ([]string, error) {
	if a, ok := r.hosts[host]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

func (r fakeResolver) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	if n, ok := r.addrs[addr]; ok {
		return n, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: addr, IsNotFound: true}
}

func TestClientMatcher(t *testing.T) {
	res := fakeResolver{
		hosts: map[string][]string{
			"client.example.com": {"10.1.1.1"},
			"web1.corp.test":     {"10.2.2.2"},
			"liar.corp.test":     {"10.9.9.9"},
		},
		addrs: map[string][]string{
			"10.2.2.2": {"web1.corp.test."},
			"10.3.3.3": {"liar.corp.test."}, // forward lookup says otherwise
		},
	}
	for _, tc := range []struct {
		entries []string
		addr    string
		want    bool
	}{
		{nil, "203.0.113.9", true},
		{[]string{"*"}, "203.0.113.9", true},
		{[]string{"192.168.1.1"}, "192.168.1.1", true},
		{[]string{"192.168.1.1"}, "192.168.1.10", false},
		{[]string{"192.168.1.10"}, "192.168.1.1", false},
		{[]string{"192.168.1.1"}, "::ffff:192.168.1.1", true},
		{[]string{"192.168.1.0/24"}, "192.168.1.200", true},
		{[]string{"192.168.1.0/24"}, "192.168.2.1", false},
		{[]string{"192.168.1.1/32"}, "192.168.1.10", false},
		{[]string{"2001:db8::/32"}, "2001:db8::1", true},
		{[]string{"2001:db8::1"}, "2001:db8::10", false},
		{[]string{"client.example.com"}, "10.1.1.1", true},
		{[]string{"client.example.com"}, "10.1.1.10", false},
		{[]string{"CLIENT.example.com."}, "10.1.1.1", true},
		{[]string{"*.corp.test"}, "10.2.2.2", true},
		{[]string{"*.corp.test"}, "10.3.3.3", false},
		{[]string{"*.other.test"}, "10.2.2.2", false},
		{[]string{"10.0.0.1", "*.corp.test"}, "10.2.2.2", true},
	} {
		m, err := newClientMatcher(tc.entries, res)
		if err != nil {
			t.Fatal(err)
		}
		addr := netip.MustParseAddr(tc.addr)
		if got := m.allowed(context.Background(), addr); got != tc.want {
			t.Errorf("%v allows %s: %v, want %v", tc.entries, tc.addr, got, tc.want)
		}
		// The cached decision is the same.
		if got := m.allowed(context.Background(), addr); got != tc.want {
			t.Errorf("%v allows %s the second time: %v, want %v", tc.entries, tc.addr, got, tc.want)
		}
	}
	for _, bad := range []string{"10.0.0.0/33", "a b", "10.0.0.*"} {
		if _, err := newClientMatcher([]string{bad}, res); err == nil {
			t.Errorf("allowed client %q accepted", bad)
		}
	}
}

func TestIdentity(t *testing.T) {
	sys := func(uid, gid uint32, groups ...uint32) *oncrpc.Call {
		return &oncrpc.Call{Cred: oncrpc.OpaqueAuth{Flavor: oncrpc.AuthSys}, Sys: &oncrpc.SysCredential{UID: uid, GID: gid, GIDs: groups}}
	}
	none := &oncrpc.Call{Cred: oncrpc.OpaqueAuth{Flavor: oncrpc.AuthNone}}
	anon := core.Identity{UID: 65534, GID: 65533}
	for _, tc := range []struct {
		name string
		exp  Export
		call *oncrpc.Call
		want core.Identity
		err  error
	}{
		{"plain user", Export{}, sys(1000, 100, 10, 20), core.Identity{UID: 1000, GID: 100, Groups: []uint32{10, 20}}, nil},
		{"root kept", Export{}, sys(0, 0, 0), core.Identity{UID: 0, GID: 0, Groups: []uint32{0}}, nil},
		{"root squashed", Export{RootSquash: true}, sys(0, 0, 0, 5), core.Identity{UID: 65534, GID: 65533, Groups: []uint32{5}}, nil},
		{"root squash leaves users", Export{RootSquash: true}, sys(1000, 0, 0, 7), core.Identity{UID: 1000, GID: 65533, Groups: []uint32{7}}, nil},
		{"all squashed", Export{AllSquash: true}, sys(1000, 100, 10), anon, nil},
		{"AUTH_NONE accepted", Export{Sec: []oncrpc.AuthFlavor{oncrpc.AuthNone}}, none, anon, nil},
		{"AUTH_NONE refused", Export{}, none, core.Identity{}, oncrpc.AuthTooWeak},
		{"AUTH_SYS on AUTH_NONE export", Export{Sec: []oncrpc.AuthFlavor{oncrpc.AuthNone}}, sys(1000, 100), anon, nil},
		{"both flavors", Export{Sec: []oncrpc.AuthFlavor{oncrpc.AuthSys, oncrpc.AuthNone}}, sys(1000, 100), core.Identity{UID: 1000, GID: 100}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.exp.Name, tc.exp.AnonUID, tc.exp.AnonGID = "/e", 65534, 65533
			e, err := newExport(tc.exp, nil)
			if err != nil {
				t.Fatal(err)
			}
			id, err := e.identity(tc.call)
			if !errors.Is(err, tc.err) {
				t.Fatalf("error %v, want %v", err, tc.err)
			}
			if err != nil {
				return
			}
			if id.UID != tc.want.UID || id.GID != tc.want.GID || !slices.Equal(id.Groups, tc.want.Groups) {
				t.Errorf("identity %+v, want %+v", *id, tc.want)
			}
		})
	}
}

func TestNewRejectsBadExports(t *testing.T) {
	fsys := openFS(t)
	for _, exports := range [][]Export{
		nil,
		{{Name: "relative"}},
		{{Name: "/a/"}},
		{{Name: "/a", Path: "no/slash"}},
		{{Name: "/a", Sec: []oncrpc.AuthFlavor{oncrpc.RPCSECGSS}}},
		{{Name: "/a", AllowedClients: []string{"300.1.1.1/8"}}},
	} {
		if _, err := New(Config{FS: fsys, Exports: exports, Logger: quietLogger()}); err == nil {
			t.Errorf("New accepted exports %+v", exports)
		}
	}
}

func TestListenErrorNamesService(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	srv, err := New(Config{FS: openFS(t), Exports: openExport, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	_, err = srv.ListenAndServe(Addrs{NFS: "127.0.0.1:0", NLM: l.Addr().String()})
	var le *ListenError
	if !errors.As(err, &le) || le.Service != ServiceNLM || le.Addr != l.Addr().String() || !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("ListenAndServe with a taken NLM port: %v", err)
	}
}

// FuzzArgDecoders holds the zero-copy argument decoders to the generated
// ones: both accept the same inputs, with the same values.
func FuzzArgDecoders(f *testing.F) {
	encode := func(v interface {
		WriteTo(io.Writer) (int64, error)
	}) []byte {
		var b bytes.Buffer
		if _, err := v.WriteTo(&b); err != nil {
			f.Fatal(err)
		}
		return b.Bytes()
	}
	fh := nfsv3.NfsFh3{Data: []byte("handle")}
	seeds := [][]byte{
		encode(&nfsv3.Getattr3args{Object: fh}),
		encode(&nfsv3.Access3args{Object: fh, Access: 0x3f}),
		encode(&nfsv3.Lookup3args{What: nfsv3.Diropargs3{Dir: fh, Name: []byte("name")}}),
		encode(&nfsv3.Read3args{File: fh, Offset: 1 << 40, Count: 4096}),
	}
	for _, data := range [][]byte{nil, []byte("a"), []byte("abcd"), []byte("abcde")} {
		seeds = append(seeds, encode(&nfsv3.Write3args{File: fh, Offset: 7, Count: uint32(len(data)), Stable: nfsv3.FILE_SYNC, Data: data}))
	}
	for _, s := range seeds {
		f.Add(s)
		f.Add(s[:len(s)-1])
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		call := &oncrpc.Call{Args: in}
		same := func(proc string, err error, gen interface {
			ReadFrom(io.Reader) (int64, error)
		}, equal func() bool) {
			t.Helper()
			_, gerr := gen.ReadFrom(bytes.NewReader(in))
			if (err == nil) != (gerr == nil) {
				t.Fatalf("%s: zero-copy decoder error %v, generated decoder error %v", proc, err, gerr)
			}
			if err != nil {
				if !errors.Is(err, oncrpc.GarbageArgs) {
					t.Fatalf("%s: error %v does not match GARBAGE_ARGS", proc, err)
				}
				return
			}
			if !equal() {
				t.Fatalf("%s: decoded values differ from the generated decoder's", proc)
			}
		}
		ga, err := decodeGetattr(call)
		var gga nfsv3.Getattr3args
		same("GETATTR", err, &gga, func() bool { return bytes.Equal(ga.Object.Data, gga.Object.Data) })
		ac, err := decodeAccess(call)
		var gac nfsv3.Access3args
		same("ACCESS", err, &gac, func() bool { return bytes.Equal(ac.Object.Data, gac.Object.Data) && ac.Access == gac.Access })
		lk, err := decodeLookup(call)
		var glk nfsv3.Lookup3args
		same("LOOKUP", err, &glk, func() bool {
			return bytes.Equal(lk.What.Dir.Data, glk.What.Dir.Data) && bytes.Equal(lk.What.Name, glk.What.Name)
		})
		rd, err := decodeRead(call)
		var grd nfsv3.Read3args
		same("READ", err, &grd, func() bool {
			return bytes.Equal(rd.File.Data, grd.File.Data) && rd.Offset == grd.Offset && rd.Count == grd.Count
		})
		wr, err := decodeWrite(call)
		var gwr nfsv3.Write3args
		same("WRITE", err, &gwr, func() bool {
			return bytes.Equal(wr.File.Data, gwr.File.Data) && wr.Offset == gwr.Offset && wr.Count == gwr.Count &&
				wr.Stable == gwr.Stable && bytes.Equal(wr.Data, gwr.Data)
		})
	})
}

func TestReadBufferClasses(t *testing.T) {
	for _, n := range []uint32{0, 1, 4096, 4097, 65536, 1 << 20, 1<<20 + 1, 64 << 20} {
		p := getReadBuffer(n)
		if len(*p) != int(n) {
			t.Fatalf("buffer for %d bytes has length %d", n, len(*p))
		}
		if c := cap(*p); c&(c-1) != 0 || c < 4096 {
			t.Errorf("buffer for %d bytes has capacity %d, not a class size", n, c)
		}
		putReadBuffer(p)
		if q := getReadBuffer(n); len(*q) != int(n) || cap(*q) < int(n) {
			t.Errorf("recycled buffer for %d bytes: length %d, capacity %d", n, len(*q), cap(*q))
		}
	}
}

// payloadRecorder is a transport's reply writer that takes a payload.
type payloadRecorder struct {
	bytes.Buffer
	payloads int
	release  func()
}

func (p *payloadRecorder) WritePayload(b []byte, release func()) {
	p.payloads++
	p.Write(b)
	p.release = release
}

// TestReadReplyEncoding: a READ reply handed to a transport as a payload
// encodes exactly as the generated encoder copies it, and its buffer is
// returned only once the transport releases it.
func TestReadReplyEncoding(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, 4, 4096, 65_537} {
		for _, eof := range []bool{false, true} {
			data := bytes.Repeat([]byte{0xa5}, n)
			attrs := nfsv3.PostOpAttr(&nfsv3.PostOpAttr_FALSE{})
			if n%2 == 1 {
				attrs = &nfsv3.PostOpAttr_TRUE{Attributes: nfsv3.Fattr3{Size: 77, Fileid: 9}}
			}
			res := nfsv3.Read3res_NFS3_OK{Resok: nfsv3.Read3resok{FileAttributes: attrs, Count: uint32(n), Eof: eof, Data: data}}
			var want bytes.Buffer
			if _, err := res.WriteTo(&want); err != nil {
				t.Fatal(err)
			}
			buf := getReadBuffer(uint32(n))
			copy(*buf, data)
			r := &readReply{res: res, buf: buf}
			r.res.Resok.Data = (*buf)[:n]
			var got payloadRecorder
			if _, err := r.WriteTo(&got); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Bytes(), want.Bytes()) {
				t.Fatalf("n=%d eof=%v: payload encoding %x, generated %x", n, eof, got.Bytes(), want.Bytes())
			}
			if got.payloads != 1 || r.buf == nil {
				t.Fatalf("n=%d: %d payloads, buffer kept %v; want 1 and kept until released", n, got.payloads, r.buf != nil)
			}
			got.release()
			if r.buf != nil {
				t.Fatalf("n=%d: buffer not returned on release", n)
			}
		}
	}
}

func TestQuickCalls(t *testing.T) {
	read := func(count uint32) []byte {
		var b bytes.Buffer
		args := nfsv3.Read3args{File: nfsv3.NfsFh3{Data: []byte("handle")}, Offset: 4096, Count: count}
		if _, err := args.WriteTo(&b); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	tests := []struct {
		name string
		proc uint32
		args []byte
		want bool
	}{
		{"GETATTR", nfsv3.NFSPROC3_GETATTR, nil, true},
		{"LOOKUP", nfsv3.NFSPROC3_LOOKUP, nil, true},
		{"4 KiB READ", nfsv3.NFSPROC3_READ, read(4096), true},
		{"64 KiB READ", nfsv3.NFSPROC3_READ, read(quickReadMax), true},
		{"1 MiB READ", nfsv3.NFSPROC3_READ, read(1 << 20), false},
		{"truncated READ", nfsv3.NFSPROC3_READ, read(4096)[:10], false},
		{"WRITE", nfsv3.NFSPROC3_WRITE, nil, false},
		{"CREATE", nfsv3.NFSPROC3_CREATE, nil, false},
	}
	for _, tt := range tests {
		if got := quick(nfsv3.NFS_V3, tt.proc, tt.args); got != tt.want {
			t.Errorf("%s: quick = %v, want %v", tt.name, got, tt.want)
		}
	}
}
