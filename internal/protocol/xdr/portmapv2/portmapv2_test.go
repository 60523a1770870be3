package portmapv2_test

import (
	"io"
	"testing"

	"github.com/claudefs/cfs-gateway/internal/protocol/xdr/portmapv2"
	"github.com/claudefs/cfs-gateway/internal/protocol/xdr/xdrtest"
)

var decoders = []xdrtest.Decoder{
	xdrtest.Struct[portmapv2.Mapping]("mapping"),
	xdrtest.Struct[portmapv2.CallArgs]("call_args"),
	xdrtest.Struct[portmapv2.CallResult]("call_result"),
	xdrtest.Func("pmaplist_ptr", portmapv2.ReadPmaplistPtr, portmapv2.WritePmaplistPtr),
}

func TestDumpListTruncations(t *testing.T) {
	list := &portmapv2.Pmaplist{
		Map:  portmapv2.Mapping{Prog: 100003, Vers: 3, Prot: portmapv2.IPPROTO_TCP, Port: 2049},
		Next: &portmapv2.Pmaplist{Map: portmapv2.Mapping{Prog: 100005, Vers: 3, Prot: portmapv2.IPPROTO_UDP, Port: 20048}},
	}
	d := xdrtest.Func("pmaplist_ptr", portmapv2.ReadPmaplistPtr, portmapv2.WritePmaplistPtr)
	enc := xdrtest.EncodeFunc(t, func(w io.Writer) (int64, error) { return portmapv2.WritePmaplistPtr(w, list) })
	xdrtest.CheckTruncations(t, d, enc)
	xdrtest.CheckRoundTrip(t, d, enc)
}

func FuzzDecode(f *testing.F) {
	xdrtest.Fuzz(f, decoders)
}
