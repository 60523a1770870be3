package rpcbind_test

import (
	"bytes"
	"io"
	"testing"

	"github.com/claudefs/cfs-gateway/internal/protocol/xdr/rpcbind"
	"github.com/claudefs/cfs-gateway/internal/protocol/xdr/xdrtest"
)

func uaddrDecoder() xdrtest.Decoder {
	return xdrtest.Func("uaddr", rpcbind.ReadUaddr, rpcbind.WriteUaddr)
}

var decoders = []xdrtest.Decoder{
	xdrtest.Struct[rpcbind.Rpcb]("rpcb"),
	xdrtest.Struct[rpcbind.RpcbRmtcallargs]("rpcb_rmtcallargs"),
	xdrtest.Struct[rpcbind.RpcbRmtcallres]("rpcb_rmtcallres"),
	xdrtest.Struct[rpcbind.Netbuf]("netbuf"),
	xdrtest.Struct[rpcbind.RpcbStatByvers]("rpcb_stat_byvers"),
	uaddrDecoder(),
	xdrtest.Func("rpcblist_ptr", rpcbind.ReadRpcblistPtr, rpcbind.WriteRpcblistPtr),
	xdrtest.Func("rpcb_entry_list_ptr", rpcbind.ReadRpcbEntryListPtr, rpcbind.WriteRpcbEntryListPtr),
}

func sampleRpcb() *rpcbind.Rpcb {
	return &rpcbind.Rpcb{RProg: 100003, RVers: 3, RNetid: "tcp", RAddr: "192.0.2.7.8.1", ROwner: "superuser"}
}

func TestRpcbTruncations(t *testing.T) {
	xdrtest.CheckTruncations(t, xdrtest.Struct[rpcbind.Rpcb]("rpcb"), xdrtest.Encode(t, sampleRpcb()))
	stats := &rpcbind.RpcbStatByvers{}
	stats.Vers4.Info[3] = 9
	stats.Vers4.Addrinfo = &rpcbind.RpcbsAddrlist{Prog: 1, Vers: 2, Netid: "udp"}
	xdrtest.CheckTruncations(t, xdrtest.Struct[rpcbind.RpcbStatByvers]("rpcb_stat_byvers"), xdrtest.Encode(t, stats))
}

func TestUniversalAddressesAreASCII(t *testing.T) {
	if _, err := rpcbind.WriteUaddr(io.Discard, "192.0.2.7.8.1"); err != nil {
		t.Fatal(err)
	}
	enc := []byte{0, 0, 0, 2, 0xc3, 0xa9, 0, 0}
	if _, _, err := uaddrDecoder().Decode(bytes.NewReader(enc)); err == nil {
		t.Fatal("a universal address with non-ASCII bytes decoded")
	}
}

func FuzzDecode(f *testing.F) {
	xdrtest.Fuzz(f, decoders, xdrtest.Encode(f, sampleRpcb()))
}
