package nsmv1_test

import (
	"testing"

	"github.com/claudefs/cfs-gateway/internal/protocol/xdr/nsmv1"
	"github.com/claudefs/cfs-gateway/internal/protocol/xdr/xdrtest"
)

// decoders covers every argument and result type of the SM procedures
// and the status callback.
var decoders = []xdrtest.Decoder{
	xdrtest.Struct[nsmv1.SmName]("sm_name"),
	xdrtest.Struct[nsmv1.Mon]("mon"),
	xdrtest.Struct[nsmv1.MonId]("mon_id"),
	xdrtest.Struct[nsmv1.MyId]("my_id"),
	xdrtest.Struct[nsmv1.StatChge]("stat_chge"),
	xdrtest.Struct[nsmv1.SmStatRes]("sm_stat_res"),
	xdrtest.Struct[nsmv1.SmStat]("sm_stat"),
	xdrtest.Struct[nsmv1.Status]("status"),
}

func sampleMon() *nsmv1.Mon {
	return &nsmv1.Mon{
		MonId: nsmv1.MonId{
			MonName: "client.example",
			MyId:    nsmv1.MyId{MyName: "gateway", MyProg: 100021, MyVers: 4, MyProc: 16},
		},
		Priv: [16]byte{1, 2, 3},
	}
}

func TestMonTruncations(t *testing.T) {
	xdrtest.CheckTruncations(t, xdrtest.Struct[nsmv1.Mon]("mon"), xdrtest.Encode(t, sampleMon()))
}

func FuzzDecode(f *testing.F) {
	xdrtest.Fuzz(f, decoders, xdrtest.Encode(f, sampleMon()))
}
