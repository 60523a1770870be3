package nlmv4_test

import (
	"testing"

	"github.com/claudefs/cfs-gateway/internal/protocol/xdr/nlmv4"
	"github.com/claudefs/cfs-gateway/internal/protocol/xdr/xdrtest"
)

// decoders covers every argument and result type of NLMPROC4.
var decoders = []xdrtest.Decoder{
	xdrtest.Struct[nlmv4.Nlm4Testargs]("nlm4_testargs"),
	xdrtest.Struct[nlmv4.Nlm4Lockargs]("nlm4_lockargs"),
	xdrtest.Struct[nlmv4.Nlm4Cancargs]("nlm4_cancargs"),
	xdrtest.Struct[nlmv4.Nlm4Unlockargs]("nlm4_unlockargs"),
	xdrtest.Struct[nlmv4.Nlm4Shareargs]("nlm4_shareargs"),
	xdrtest.Struct[nlmv4.Nlm4Notify]("nlm4_notify"),
	xdrtest.Struct[nlmv4.Nlm4Testres]("nlm4_testres"),
	xdrtest.Struct[nlmv4.Nlm4Res]("nlm4_res"),
	xdrtest.Struct[nlmv4.Nlm4Shareres]("nlm4_shareres"),
}

func sampleLock() *nlmv4.Nlm4Lockargs {
	return &nlmv4.Nlm4Lockargs{
		Cookie:    []byte{0, 0, 0, 1},
		Block:     true,
		Exclusive: true,
		Alock: nlmv4.Nlm4Lock{
			CallerName: "client.example",
			Fh:         make([]byte, 32),
			Oh:         []byte("1234@client.example"),
			Svid:       4242,
			LOffset:    0,
			LLen:       0,
		},
		State: 3,
	}
}

func TestLockArgsTruncations(t *testing.T) {
	xdrtest.CheckTruncations(t, xdrtest.Struct[nlmv4.Nlm4Lockargs]("nlm4_lockargs"), xdrtest.Encode(t, sampleLock()))
	denied := &nlmv4.Nlm4Testres{Cookie: []byte{1}, TestStat: &nlmv4.Nlm4Testrply_NLM4_DENIED{Holder: nlmv4.Nlm4Holder{Exclusive: true, Svid: 7, Oh: []byte("x"), LOffset: 10, LLen: 20}}}
	xdrtest.CheckTruncations(t, xdrtest.Struct[nlmv4.Nlm4Testres]("nlm4_testres"), xdrtest.Encode(t, denied))
}

func FuzzDecode(f *testing.F) {
	xdrtest.Fuzz(f, decoders, xdrtest.Encode(f, sampleLock()))
}
