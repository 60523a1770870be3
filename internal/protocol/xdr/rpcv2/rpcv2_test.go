package rpcv2_test

import (
	"io"
	"testing"

	"github.com/claudefs/cfs-gateway/internal/protocol/xdr/rpcv2"
	"github.com/claudefs/cfs-gateway/internal/protocol/xdr/xdrtest"
)

var decoders = []xdrtest.Decoder{
	xdrtest.Struct[rpcv2.RpcMsg]("rpc_msg"),
	xdrtest.Struct[rpcv2.CallBody]("call_body"),
	xdrtest.Struct[rpcv2.OpaqueAuth]("opaque_auth"),
	xdrtest.Struct[rpcv2.AuthsysParms]("authsys_parms"),
	xdrtest.Union("reply_body", rpcv2.ReadReplyBody),
	xdrtest.Union("rejected_reply", rpcv2.ReadRejectedReply),
}

func sampleCall() *rpcv2.RpcMsg {
	return &rpcv2.RpcMsg{Xid: 7, Body: &rpcv2.RpcMsgBody_CALL{Cbody: rpcv2.CallBody{
		Rpcvers: rpcv2.RPC_VERSION, Prog: 100003, Vers: 3, Proc: 1,
		Cred: rpcv2.OpaqueAuth{Flavor: rpcv2.AUTH_SYS, Body: []byte{0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
	}}}
}

func sampleMismatch() *rpcv2.RpcMsg {
	rej := &rpcv2.RejectedReply_RPC_MISMATCH{}
	rej.MismatchInfo.Low, rej.MismatchInfo.High = 2, 2
	return &rpcv2.RpcMsg{Xid: 8, Body: &rpcv2.RpcMsgBody_REPLY{Rbody: &rpcv2.ReplyBody_MSG_DENIED{Rreply: rej}}}
}

func TestMessagesTruncations(t *testing.T) {
	d := xdrtest.Struct[rpcv2.RpcMsg]("rpc_msg")
	xdrtest.CheckTruncations(t, d, xdrtest.Encode(t, sampleCall()))
	xdrtest.CheckTruncations(t, d, xdrtest.Encode(t, sampleMismatch()))
}

func TestAuthsysGroupLimit(t *testing.T) {
	p := &rpcv2.AuthsysParms{Machinename: []byte("h"), Gids: make([]uint32, rpcv2.AUTHSYS_MAX_GIDS)}
	xdrtest.CheckTruncations(t, xdrtest.Struct[rpcv2.AuthsysParms]("authsys_parms"), xdrtest.Encode(t, p))
	p.Gids = append(p.Gids, 0)
	if _, err := p.WriteTo(io.Discard); err == nil {
		t.Fatalf("authsys_parms with %d groups encoded; the limit is %d", len(p.Gids), rpcv2.AUTHSYS_MAX_GIDS)
	}
}

func FuzzDecode(f *testing.F) {
	xdrtest.Fuzz(f, decoders, xdrtest.Encode(f, sampleCall()), xdrtest.Encode(f, sampleMismatch()))
}
