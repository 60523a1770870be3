package portmap

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	xdrruntime "github.com/buildbarn/go-xdr/pkg/runtime"

	"github.com/claudefs/cfs-gateway/internal/protocol/oncrpc"
	"github.com/claudefs/cfs-gateway/internal/protocol/xdr/portmapv2"
	"github.com/claudefs/cfs-gateway/internal/protocol/xdr/rpcbind"
)

const (
	nfsProg   = 100003
	mountProg = 100005
	nlmProg   = 100021
)

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func gatewayTable() *Table {
	t := NewTable()
	t.SetService(nfsProg, []uint32{3}, 2049, NetidTCP, NetidTCP6)
	t.SetService(mountProg, []uint32{3}, 20048, NetidTCP, NetidUDP)
	t.SetService(nlmProg, []uint32{4}, 32803, NetidTCP)
	return t
}

type fixture struct {
	table   *Table
	service *Service
	tcp     *oncrpc.Client
	udpAddr string
}

// startPortmap serves a port mapper for gatewayTable on loopback TCP
// and UDP ports until the test ends.
func startPortmap(t *testing.T) *fixture {
	t.Helper()
	table := gatewayTable()
	svc := NewService(table, quietLogger())
	svc.now = func() time.Time { return time.Unix(1700000000, 0) }
	srv := oncrpc.NewServer(oncrpc.Config{Logger: quietLogger()})
	if err := svc.Register(srv); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{}, 2)
	go func() { srv.Serve(l); done <- struct{}{} }()
	go func() { srv.ServePacket(pc); done <- struct{}{} }()
	client, err := oncrpc.Dial(context.Background(), "tcp", l.Addr().String(),
		oncrpc.WithClientLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		client.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		<-done
		<-done
	})
	return &fixture{table: table, service: svc, tcp: client, udpAddr: pc.LocalAddr().String()}
}

func (f *fixture) call(t *testing.T, vers, proc uint32, args io.WriterTo, reply io.ReaderFrom) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return f.tcp.Call(ctx, Program, vers, proc, args, reply)
}

type xdrUint32Reply uint32

func (v *xdrUint32Reply) ReadFrom(r io.Reader) (int64, error) {
	x, n, err := xdrruntime.ReadUnsignedInt(r)
	*v = xdrUint32Reply(x)
	return n, err
}

type xdrBoolReply bool

func (v *xdrBoolReply) ReadFrom(r io.Reader) (int64, error) {
	x, n, err := xdrruntime.ReadBool(r)
	*v = xdrBoolReply(x)
	return n, err
}

type uaddrReply string

func (u *uaddrReply) ReadFrom(r io.Reader) (int64, error) {
	s, n, err := rpcbind.ReadUaddr(r)
	*u = uaddrReply(s)
	return n, err
}

func TestGetport(t *testing.T) {
	f := startPortmap(t)
	tests := []struct {
		name string
		m    portmapv2.Mapping
		want uint32
	}{
		{name: "NFS over TCP", m: portmapv2.Mapping{Prog: nfsProg, Vers: 3, Prot: portmapv2.IPPROTO_TCP}, want: 2049},
		{name: "MOUNT over UDP", m: portmapv2.Mapping{Prog: mountProg, Vers: 3, Prot: portmapv2.IPPROTO_UDP}, want: 20048},
		{name: "NLM version 4", m: portmapv2.Mapping{Prog: nlmProg, Vers: 4, Prot: portmapv2.IPPROTO_TCP}, want: 32803},
		{name: "NFS over UDP is not served", m: portmapv2.Mapping{Prog: nfsProg, Vers: 3, Prot: portmapv2.IPPROTO_UDP}, want: 0},
		{name: "unregistered version", m: portmapv2.Mapping{Prog: mountProg, Vers: 1, Prot: portmapv2.IPPROTO_TCP}, want: 0},
		{name: "unknown program", m: portmapv2.Mapping{Prog: 999, Vers: 1, Prot: portmapv2.IPPROTO_TCP}, want: 0},
		{name: "unknown protocol", m: portmapv2.Mapping{Prog: nfsProg, Vers: 3, Prot: 99}, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var port xdrUint32Reply
			if err := f.call(t, 2, portmapv2.PMAPPROC_GETPORT, &tt.m, &port); err != nil {
				t.Fatalf("GETPORT: %v", err)
			}
			if uint32(port) != tt.want {
				t.Fatalf("GETPORT = %d, want %d", port, tt.want)
			}
		})
	}
}

func TestGetaddr(t *testing.T) {
	f := startPortmap(t)
	tests := []struct {
		name string
		vers uint32
		proc uint32
		args rpcbind.Rpcb
		want string
	}{
		{name: "v3 NFS tcp", vers: 3, proc: rpcbind.RPCBPROC_GETADDR, args: rpcbind.Rpcb{RProg: nfsProg, RVers: 3, RNetid: "tcp"}, want: "127.0.0.1.8.1"},
		{name: "v4 NFS, netid from the transport", vers: 4, proc: rpcbind.RPCBPROC_GETADDR, args: rpcbind.Rpcb{RProg: nfsProg, RVers: 3}, want: "127.0.0.1.8.1"},
		{name: "v4 NFS tcp6", vers: 4, proc: rpcbind.RPCBPROC_GETADDR, args: rpcbind.Rpcb{RProg: nfsProg, RVers: 3, RNetid: "tcp6"}, want: "::ffff:127.0.0.1.8.1"},
		{name: "v4 MOUNT udp", vers: 4, proc: rpcbind.RPCBPROC_GETADDR, args: rpcbind.Rpcb{RProg: mountProg, RVers: 3, RNetid: "udp"}, want: "127.0.0.1.78.80"},
		{name: "v3 other version of a registered program", vers: 3, proc: rpcbind.RPCBPROC_GETADDR, args: rpcbind.Rpcb{RProg: mountProg, RVers: 1, RNetid: "tcp"}, want: "127.0.0.1.78.80"},
		{name: "v4 GETVERSADDR wants the exact version", vers: 4, proc: rpcbind.RPCBPROC_GETVERSADDR, args: rpcbind.Rpcb{RProg: mountProg, RVers: 1, RNetid: "tcp"}, want: ""},
		{name: "v4 GETVERSADDR registered version", vers: 4, proc: rpcbind.RPCBPROC_GETVERSADDR, args: rpcbind.Rpcb{RProg: nlmProg, RVers: 4, RNetid: "tcp"}, want: "127.0.0.1.128.35"},
		{name: "unknown program", vers: 4, proc: rpcbind.RPCBPROC_GETADDR, args: rpcbind.Rpcb{RProg: 999, RVers: 1, RNetid: "tcp"}, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got uaddrReply
			if err := f.call(t, tt.vers, tt.proc, &tt.args, &got); err != nil {
				t.Fatalf("GETADDR: %v", err)
			}
			if string(got) != tt.want {
				t.Fatalf("GETADDR = %q, want %q", got, tt.want)
			}
		})
	}
	if err := f.call(t, 3, rpcbind.RPCBPROC_GETVERSADDR, &rpcbind.Rpcb{}, nil); !errors.Is(err, oncrpc.ProcUnavail) {
		t.Fatalf("GETVERSADDR in version 3: %v, want PROC_UNAVAIL", err)
	}
}

func TestDump(t *testing.T) {
	f := startPortmap(t)

	var v2 []portmapv2.Mapping
	err := f.call(t, 2, portmapv2.PMAPPROC_DUMP, nil, oncrpc.ReaderFromFunc(func(r io.Reader) (int64, error) {
		head, n, err := portmapv2.ReadPmaplistPtr(r)
		for e := head; e != nil; e = e.Next {
			v2 = append(v2, e.Map)
		}
		return n, err
	}))
	if err != nil {
		t.Fatalf("v2 DUMP: %v", err)
	}
	wantV2 := []portmapv2.Mapping{
		{Prog: nfsProg, Vers: 3, Prot: portmapv2.IPPROTO_TCP, Port: 2049},
		{Prog: mountProg, Vers: 3, Prot: portmapv2.IPPROTO_TCP, Port: 20048},
		{Prog: mountProg, Vers: 3, Prot: portmapv2.IPPROTO_UDP, Port: 20048},
		{Prog: nlmProg, Vers: 4, Prot: portmapv2.IPPROTO_TCP, Port: 32803},
	}
	if len(v2) != len(wantV2) {
		t.Fatalf("v2 DUMP = %+v, want %+v", v2, wantV2)
	}
	for i := range v2 {
		if v2[i] != wantV2[i] {
			t.Fatalf("v2 DUMP entry %d = %+v, want %+v", i, v2[i], wantV2[i])
		}
	}

	for _, vers := range []uint32{3, 4} {
		var got []rpcbind.Rpcb
		err := f.call(t, vers, rpcbind.RPCBPROC_DUMP, nil, oncrpc.ReaderFromFunc(func(r io.Reader) (int64, error) {
			head, n, err := rpcbind.ReadRpcblistPtr(r)
			for e := head; e != nil; e = e.RpcbNext {
				got = append(got, e.RpcbMap)
			}
			return n, err
		}))
		if err != nil {
			t.Fatalf("v%d DUMP: %v", vers, err)
		}
		want := []rpcbind.Rpcb{
			{RProg: nfsProg, RVers: 3, RNetid: "tcp", RAddr: "127.0.0.1.8.1", ROwner: GatewayOwner},
			{RProg: nfsProg, RVers: 3, RNetid: "tcp6", RAddr: "::ffff:127.0.0.1.8.1", ROwner: GatewayOwner},
			{RProg: mountProg, RVers: 3, RNetid: "tcp", RAddr: "127.0.0.1.78.80", ROwner: GatewayOwner},
			{RProg: mountProg, RVers: 3, RNetid: "udp", RAddr: "127.0.0.1.78.80", ROwner: GatewayOwner},
			{RProg: nlmProg, RVers: 4, RNetid: "tcp", RAddr: "127.0.0.1.128.35", ROwner: GatewayOwner},
		}
		if len(got) != len(want) {
			t.Fatalf("v%d DUMP = %+v, want %+v", vers, got, want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("v%d DUMP entry %d = %+v, want %+v", vers, i, got[i], want[i])
			}
		}
	}
}

func TestSetAndUnsetFromLoopback(t *testing.T) {
	f := startPortmap(t)
	set := func(vers, proc uint32, args io.WriterTo) bool {
		t.Helper()
		var ok xdrBoolReply
		if err := f.call(t, vers, proc, args, &ok); err != nil {
			t.Fatalf("vers %d proc %d: %v", vers, proc, err)
		}
		return bool(ok)
	}
	steps := []struct {
		name string
		vers uint32
		proc uint32
		args io.WriterTo
		want bool
	}{
		{"v2 SET a new service", 2, portmapv2.PMAPPROC_SET, &portmapv2.Mapping{Prog: 400000, Vers: 1, Prot: portmapv2.IPPROTO_TCP, Port: 5000}, true},
		{"v2 SET it again", 2, portmapv2.PMAPPROC_SET, &portmapv2.Mapping{Prog: 400000, Vers: 1, Prot: portmapv2.IPPROTO_TCP, Port: 5001}, false},
		{"v2 SET over a gateway service", 2, portmapv2.PMAPPROC_SET, &portmapv2.Mapping{Prog: nfsProg, Vers: 3, Prot: portmapv2.IPPROTO_TCP, Port: 1}, false},
		{"v2 UNSET a gateway service", 2, portmapv2.PMAPPROC_UNSET, &portmapv2.Mapping{Prog: nfsProg, Vers: 3}, false},
		{"v3 SET with a universal address", 3, rpcbind.RPCBPROC_SET, &rpcbind.Rpcb{RProg: 400001, RVers: 2, RNetid: "udp", RAddr: "0.0.0.0.19.137"}, true},
		{"v3 SET with a bad address", 3, rpcbind.RPCBPROC_SET, &rpcbind.Rpcb{RProg: 400002, RVers: 2, RNetid: "udp", RAddr: "nowhere"}, false},
		{"v3 SET with an unknown netid", 3, rpcbind.RPCBPROC_SET, &rpcbind.Rpcb{RProg: 400002, RVers: 2, RNetid: "ticotsord", RAddr: "0.0.0.0.1.1"}, false},
	}
	for _, s := range steps {
		if got := set(s.vers, s.proc, s.args); got != s.want {
			t.Fatalf("%s = %v, want %v", s.name, got, s.want)
		}
	}
	if m, ok := f.table.Lookup(400000, 1, NetidTCP); !ok || m.Port != 5000 || m.Owner != "unknown" {
		t.Fatalf("v2 SET left %+v (found %v), want port 5000 owned by \"unknown\"", m, ok)
	}
	if m, ok := f.table.Lookup(400001, 2, NetidUDP); !ok || m.Port != 5001 {
		t.Fatalf("v3 SET left %+v (found %v), want port 5001", m, ok)
	}
	if _, ok := f.table.Lookup(nfsProg, 3, NetidTCP); !ok {
		t.Fatal("a protocol UNSET removed the gateway's own NFS entry")
	}
	if !set(2, portmapv2.PMAPPROC_UNSET, &portmapv2.Mapping{Prog: 400000, Vers: 1}) {
		t.Fatal("v2 UNSET of the caller's own service failed")
	}
	if !set(4, rpcbind.RPCBPROC_UNSET, &rpcbind.Rpcb{RProg: 400001, RVers: 2}) {
		t.Fatal("v4 UNSET of the caller's own service failed")
	}
	if _, ok := f.table.Lookup(400000, 1, NetidTCP); ok {
		t.Fatal("v2 UNSET left the entry in place")
	}
}

// callDirect runs one call through the service's handler with a chosen
// client address, for cases a loopback test cannot produce.
func callDirect(t *testing.T, svc *Service, network string, remote net.Addr, vers, proc uint32, args io.WriterTo) (io.WriterTo, error) {
	t.Helper()
	var b bytes.Buffer
	if args != nil {
		if _, err := args.WriteTo(&b); err != nil {
			t.Fatal(err)
		}
	}
	local := &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 111}
	return svc.ServeRPC(context.Background(), &oncrpc.Call{
		Prog: Program, Vers: vers, Proc: proc, Network: network,
		LocalAddr: local, RemoteAddr: remote, Args: b.Bytes(),
	})
}

func TestSetFromRemoteHostRefused(t *testing.T) {
	table := gatewayTable()
	svc := NewService(table, quietLogger())
	remote := &net.TCPAddr{IP: net.IPv4(198, 51, 100, 7), Port: 700}
	cases := []struct {
		name string
		vers uint32
		proc uint32
		args io.WriterTo
	}{
		{"v2 SET", 2, portmapv2.PMAPPROC_SET, &portmapv2.Mapping{Prog: 400000, Vers: 1, Prot: portmapv2.IPPROTO_TCP, Port: 1}},
		{"v2 UNSET", 2, portmapv2.PMAPPROC_UNSET, &portmapv2.Mapping{Prog: nfsProg, Vers: 3}},
		{"v4 SET", 4, rpcbind.RPCBPROC_SET, &rpcbind.Rpcb{RProg: 400000, RVers: 1, RNetid: "tcp", RAddr: "0.0.0.0.0.1"}},
		{"v4 UNSET", 4, rpcbind.RPCBPROC_UNSET, &rpcbind.Rpcb{RProg: nfsProg, RVers: 3}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := callDirect(t, svc, "tcp", remote, c.vers, c.proc, c.args)
			if err != nil {
				t.Fatal(err)
			}
			if res != xdrBool(false) {
				t.Fatalf("%s from a remote host = %v, want FALSE", c.name, res)
			}
		})
	}
	if len(table.Mappings()) != len(gatewayTable().Mappings()) {
		t.Fatalf("remote calls changed the table: %+v", table.Mappings())
	}
}

func TestForwardingRefused(t *testing.T) {
	svc := NewService(gatewayTable(), quietLogger())
	remote := &net.UDPAddr{IP: net.IPv4(198, 51, 100, 7), Port: 700}
	args := &portmapv2.CallArgs{Prog: nfsProg, Vers: 3, Proc: 0}
	cases := []struct {
		name    string
		network string
		vers    uint32
		proc    uint32
		want    error
	}{
		{"v2 CALLIT over UDP is silent", "udp", 2, portmapv2.PMAPPROC_CALLIT, oncrpc.ErrNoReply},
		{"v2 CALLIT over TCP", "tcp", 2, portmapv2.PMAPPROC_CALLIT, oncrpc.ProcUnavail},
		{"v4 BCAST over UDP is silent", "udp", 4, rpcbind.RPCBPROC_BCAST, oncrpc.ErrNoReply},
		{"v4 INDIRECT", "udp", 4, rpcbind.RPCBPROC_INDIRECT, oncrpc.ProcUnavail},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := callDirect(t, svc, c.network, remote, c.vers, c.proc, args)
			if !errors.Is(err, c.want) {
				t.Fatalf("error = %v, want %v", err, c.want)
			}
		})
	}
}

func TestCallitOverTCPGetsProcUnavail(t *testing.T) {
	f := startPortmap(t)
	err := f.call(t, 2, portmapv2.PMAPPROC_CALLIT, &portmapv2.CallArgs{Prog: nfsProg, Vers: 3}, nil)
	if !errors.Is(err, oncrpc.ProcUnavail) {
		t.Fatalf("CALLIT over TCP = %v, want PROC_UNAVAIL", err)
	}
}

func TestGetportOverUDP(t *testing.T) {
	f := startPortmap(t)
	c, err := net.Dial("udp", f.udpAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// A hand-built call: xid 7, PMAP v2 GETPORT, AUTH_NONE, for MOUNT v3 UDP.
	var call bytes.Buffer
	for _, w := range []uint32{7, 0, 2, Program, 2, portmapv2.PMAPPROC_GETPORT, 0, 0, 0, 0, mountProg, 3, portmapv2.IPPROTO_UDP, 0} {
		xdrruntime.WriteUnsignedInt(&call, w)
	}
	if _, err := c.Write(call.Bytes()); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	reply := make([]byte, 512)
	n, err := c.Read(reply)
	if err != nil {
		t.Fatal(err)
	}
	// xid, REPLY, MSG_ACCEPTED, AUTH_NONE verifier, SUCCESS, port.
	want := []byte{0, 0, 0, 7, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x4e, 0x50}
	if !bytes.Equal(reply[:n], want) {
		t.Fatalf("UDP GETPORT reply = %x, want %x", reply[:n], want)
	}
}

func TestGetaddrlistGettimeAndStats(t *testing.T) {
	f := startPortmap(t)
	var entries []rpcbind.RpcbEntry
	err := f.call(t, 4, rpcbind.RPCBPROC_GETADDRLIST, &rpcbind.Rpcb{RProg: mountProg, RVers: 3},
		oncrpc.ReaderFromFunc(func(r io.Reader) (int64, error) {
			head, n, err := rpcbind.ReadRpcbEntryListPtr(r)
			for e := head; e != nil; e = e.RpcbEntryNext {
				entries = append(entries, e.RpcbEntryMap)
			}
			return n, err
		}))
	if err != nil {
		t.Fatal(err)
	}
	want := []rpcbind.RpcbEntry{
		{RMaddr: "127.0.0.1.78.80", RNcNetid: "tcp", RNcSemantics: rpcbind.NC_TPI_COTS_ORD, RNcProtofmly: "inet", RNcProto: "tcp"},
		{RMaddr: "127.0.0.1.78.80", RNcNetid: "udp", RNcSemantics: rpcbind.NC_TPI_CLTS, RNcProtofmly: "inet", RNcProto: "udp"},
	}
	if len(entries) != 2 || entries[0] != want[0] || entries[1] != want[1] {
		t.Fatalf("GETADDRLIST = %+v, want %+v", entries, want)
	}

	var now xdrUint32Reply
	if err := f.call(t, 3, rpcbind.RPCBPROC_GETTIME, nil, &now); err != nil {
		t.Fatal(err)
	}
	if now != 1700000000 {
		t.Fatalf("GETTIME = %d, want 1700000000", now)
	}

	var stats rpcbind.RpcbStatByvers
	if err := f.call(t, 4, rpcbind.RPCBPROC_GETSTAT, nil, &stats); err != nil {
		t.Fatal(err)
	}
	if stats.Vers4.Info[rpcbind.RPCBPROC_GETADDRLIST] != 1 || stats.Vers3.Info[rpcbind.RPCBPROC_GETTIME] != 1 {
		t.Fatalf("GETSTAT counts = v3 %v, v4 %v; want one GETTIME in v3 and one GETADDRLIST in v4",
			stats.Vers3.Info, stats.Vers4.Info)
	}
}

func TestAddressConversions(t *testing.T) {
	f := startPortmap(t)
	for _, uaddr := range []string{"192.0.2.7.8.1", "2001:db8::1.0.111"} {
		var nb rpcbind.Netbuf
		if err := f.call(t, 3, rpcbind.RPCBPROC_UADDR2TADDR, xdrUaddr(uaddr), &nb); err != nil {
			t.Fatal(err)
		}
		if len(nb.Buf) == 0 {
			t.Fatalf("UADDR2TADDR(%q) returned an empty address", uaddr)
		}
		var back uaddrReply
		if err := f.call(t, 3, rpcbind.RPCBPROC_TADDR2UADDR, &nb, &back); err != nil {
			t.Fatal(err)
		}
		if string(back) != uaddr {
			t.Fatalf("TADDR2UADDR(UADDR2TADDR(%q)) = %q", uaddr, back)
		}
	}
	var nb rpcbind.Netbuf
	if err := f.call(t, 3, rpcbind.RPCBPROC_UADDR2TADDR, xdrUaddr("garbage"), &nb); err != nil || len(nb.Buf) != 0 {
		t.Fatalf("UADDR2TADDR of garbage = %x, %v; want an empty address", nb.Buf, err)
	}
}

func TestUaddr(t *testing.T) {
	tests := []struct {
		uaddr   string
		want    netip.AddrPort
		wantErr bool
	}{
		{uaddr: "192.0.2.7.8.1", want: netip.MustParseAddrPort("192.0.2.7:2049")},
		{uaddr: "0.0.0.0.0.111", want: netip.MustParseAddrPort("0.0.0.0:111")},
		{uaddr: "::1.255.255", want: netip.MustParseAddrPort("[::1]:65535")},
		{uaddr: "192.0.2.7.8", wantErr: true},
		{uaddr: "192.0.2.7.256.1", wantErr: true},
		{uaddr: "host.example.8.1", wantErr: true},
		{uaddr: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.uaddr, func(t *testing.T) {
			got, err := ParseUaddr(tt.uaddr)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParseUaddr(%q) = %v, want an error", tt.uaddr, got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseUaddr(%q) = %v, %v; want %v", tt.uaddr, got, err, tt.want)
			}
			if s := FormatUaddr(got.Addr(), got.Port()); s != tt.uaddr {
				t.Fatalf("FormatUaddr round trip = %q, want %q", s, tt.uaddr)
			}
		})
	}
}

// FuzzParseUaddr: universal addresses arrive from the network; parsing
// never panics and what parses formats back to an address that parses
// to the same value.
func FuzzParseUaddr(f *testing.F) {
	f.Add("192.0.2.7.8.1")
	f.Add("::1.0.111")
	f.Add("1.2.3")
	f.Fuzz(func(t *testing.T, s string) {
		ap, err := ParseUaddr(s)
		if err != nil {
			return
		}
		again, err := ParseUaddr(FormatUaddr(ap.Addr(), ap.Port()))
		if err != nil || again != ap {
			t.Fatalf("ParseUaddr(FormatUaddr(%v)) = %v, %v", ap, again, err)
		}
	})
}

// FuzzTaddrToUaddr: transport addresses arrive from the network too.
func FuzzTaddrToUaddr(f *testing.F) {
	b, _ := uaddrToTaddr("192.0.2.7.8.1")
	f.Add(b)
	b, _ = uaddrToTaddr("2001:db8::1.0.111")
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		uaddr, ok := taddrToUaddr(b)
		if !ok {
			return
		}
		back, ok := uaddrToTaddr(uaddr)
		if !ok || !bytes.HasPrefix(b, back[:4]) {
			t.Fatalf("taddr %x -> %q -> %x does not round trip", b, uaddr, back)
		}
	})
}
