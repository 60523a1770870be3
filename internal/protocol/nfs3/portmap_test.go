package nfs3

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	xdrruntime "github.com/buildbarn/go-xdr/pkg/runtime"

	"github.com/claudefs/cfs-gateway/internal/protocol/nfs3/nlm"
	"github.com/claudefs/cfs-gateway/internal/protocol/xdr/mountv3"
	"github.com/claudefs/cfs-gateway/internal/protocol/xdr/nfsv3"
	"github.com/claudefs/cfs-gateway/internal/protocol/xdr/nsmv1"
	"github.com/claudefs/cfs-gateway/internal/protocol/xdr/portmapv2"
)

// udpCall sends one AUTH_NONE call in a datagram and returns the results
// after checking that the call was accepted with SUCCESS.
func udpCall(t *testing.T, addr net.Addr, prog, vers, proc uint32, args io.WriterTo) []byte {
	t.Helper()
	c, err := net.Dial("udp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var b bytes.Buffer
	for _, w := range []uint32{42, 0, 2, prog, vers, proc, 0, 0, 0, 0} {
		xdrruntime.WriteUnsignedInt(&b, w)
	}
	if args != nil {
		if _, err := args.WriteTo(&b); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Write(b.Bytes()); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	reply := make([]byte, 65536)
	n, err := c.Read(reply)
	if err != nil {
		t.Fatalf("no UDP reply from program %d: %v", prog, err)
	}
	// xid, REPLY, MSG_ACCEPTED, verifier (AUTH_NONE, empty), SUCCESS.
	want := []byte{0, 0, 0, 42, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	if n < len(want) || !bytes.Equal(reply[:len(want)], want) {
		t.Fatalf("UDP reply of program %d = %x", prog, reply[:n])
	}
	return reply[len(want):n]
}

func TestPortmapAndUDP(t *testing.T) {
	ts := startServer(t, openFS(t), openExport, nil)
	port := func(a net.Addr) uint32 { return uint32(a.(*net.TCPAddr).Port) }
	for _, tc := range []struct {
		prog, vers, prot uint32
		want             uint32
	}{
		{nfsv3.NFS_PROGRAM, 3, portmapv2.IPPROTO_TCP, port(ts.bound.NFS)},
		{nfsv3.NFS_PROGRAM, 3, portmapv2.IPPROTO_UDP, 0},
		{mountv3.MOUNT_PROGRAM, 3, portmapv2.IPPROTO_TCP, port(ts.bound.Mount)},
		{mountv3.MOUNT_PROGRAM, 3, portmapv2.IPPROTO_UDP, port(ts.bound.Mount)},
		{nlm.Program, 4, portmapv2.IPPROTO_TCP, port(ts.bound.NLM)},
		{nlm.Program, 4, portmapv2.IPPROTO_UDP, port(ts.bound.NLM)},
		{nlm.NSMProgram, 1, portmapv2.IPPROTO_UDP, port(ts.bound.NLM)},
		{nlm.Program, 1, portmapv2.IPPROTO_TCP, 0},
	} {
		res := udpCall(t, ts.bound.Portmap, portmapv2.PMAP_PROG, portmapv2.PMAP_VERS, portmapv2.PMAPPROC_GETPORT,
			&portmapv2.Mapping{Prog: tc.prog, Vers: tc.vers, Prot: tc.prot})
		if len(res) != 4 || binary.BigEndian.Uint32(res) != tc.want {
			t.Errorf("GETPORT %d v%d proto %d = %x, want port %d", tc.prog, tc.vers, tc.prot, res, tc.want)
		}
	}
	// MOUNT and NSM answer over UDP.
	res := udpCall(t, ts.bound.Mount, mountv3.MOUNT_PROGRAM, mountv3.MOUNT_V3, mountv3.MOUNTPROC3_MNT, dirpath("/export"))
	m, _, err := mountv3.ReadMountres3(bytes.NewReader(res))
	if err != nil || m.GetFhsStatus() != mountv3.MNT3_OK {
		t.Fatalf("MNT over UDP: %v %v", m, err)
	}
	res = udpCall(t, ts.bound.NLM, nlm.NSMProgram, nlm.NSMVersion, nsmv1.SM_NOTIFY, &nsmv1.StatChge{MonName: "gone", State: 3})
	if len(res) != 0 {
		t.Errorf("SM_NOTIFY over UDP answered %x, want void", res)
	}
}
