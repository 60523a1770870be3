package oncrpc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/claudefs/cfs-gateway/internal/protocol/xdr/rpcv2"
)

// callHeader is the decoded fixed part of a call message: everything in
// front of the procedure's arguments.
type callHeader struct {
	xid     uint32
	rpcvers uint32
	prog    uint32
	vers    uint32
	proc    uint32
	cred    OpaqueAuth
	verf    OpaqueAuth
	args    []byte
}

// How decodeCallHeader classifies a record it cannot take as a call.
// The server answers each class differently: what cannot be answered
// is dropped, the rest gets the RFC's rejection.
var (
	// errNotCall: too short to hold an xid and a message type, or not
	// a call. Nothing can be answered; the record is dropped.
	errNotCall = errors.New("oncrpc: record is not an RPC call")
	// errBadHeader: the program, version or procedure is missing.
	// Answered with GARBAGE_ARGS.
	errBadHeader = errors.New("oncrpc: truncated call header")
	// errBadCred and errBadVerf: answered with AUTH_BADCRED and
	// AUTH_BADVERF.
	errBadCred = errors.New("oncrpc: malformed credential")
	errBadVerf = errors.New("oncrpc: malformed verifier")
)

// decodeCallHeader decodes a call message up to its arguments. The
// fixed words are taken one by one so that a record that fails
// part-way is still classified: a wrong RPC version is answered with
// RPC_MISMATCH even when nothing after it makes sense (RFC 5531 section
// 9), and the header is returned as far as it was read.
//
// This is the one decoder on every call's path, so it reads the
// rpcv2.CallBody layout directly from the record instead of going
// through the generated reader, which allocates for every field; the
// credential and verifier bodies alias the record. FuzzDecodeCallHeader
// holds it to the generated decoder's verdict on every input.
func decodeCallHeader(rec []byte) (callHeader, error) {
	var h callHeader
	if len(rec) < 8 {
		return h, errNotCall
	}
	h.xid = binary.BigEndian.Uint32(rec[0:])
	if rpcv2.MsgType(binary.BigEndian.Uint32(rec[4:])) != rpcv2.CALL {
		return h, errNotCall
	}
	if len(rec) < 12 {
		return h, errBadHeader
	}
	h.rpcvers = binary.BigEndian.Uint32(rec[8:])
	if h.rpcvers != RPCVersion {
		return h, nil
	}
	if len(rec) < 24 {
		return h, errBadHeader
	}
	h.prog = binary.BigEndian.Uint32(rec[12:])
	h.vers = binary.BigEndian.Uint32(rec[16:])
	h.proc = binary.BigEndian.Uint32(rec[20:])
	rest := rec[24:]
	var err error
	if h.cred, rest, err = cutOpaqueAuth(rest); err != nil {
		return h, fmt.Errorf("%w: %v", errBadCred, err)
	}
	if h.verf, rest, err = cutOpaqueAuth(rest); err != nil {
		return h, fmt.Errorf("%w: %v", errBadVerf, err)
	}
	h.args = rest
	return h, nil
}

// cutOpaqueAuth decodes an opaque_auth at the start of b and returns
// the bytes after it. The body aliases b.
func cutOpaqueAuth(b []byte) (OpaqueAuth, []byte, error) {
	if len(b) < 8 {
		return OpaqueAuth{}, nil, io.ErrUnexpectedEOF
	}
	flavor := AuthFlavor(binary.BigEndian.Uint32(b))
	n := binary.BigEndian.Uint32(b[4:])
	if n > MaxAuthBytes {
		return OpaqueAuth{}, nil, fmt.Errorf("body of %d bytes exceeds the maximum of %d", n, MaxAuthBytes)
	}
	padded := int(n+3) &^ 3
	b = b[8:]
	if len(b) < padded {
		return OpaqueAuth{}, nil, io.ErrUnexpectedEOF
	}
	for _, c := range b[n:padded] {
		if c != 0 {
			return OpaqueAuth{}, nil, errors.New("padding contains non-zero bytes")
		}
	}
	return OpaqueAuth{Flavor: flavor, Body: b[:n:n]}, b[padded:], nil
}

// encodeCall writes a call message header; the arguments follow.
func encodeCall(w io.Writer, xid, prog, vers, proc uint32, cred, verf OpaqueAuth) error {
	msg := rpcv2.RpcMsg{
		Xid: xid,
		Body: &rpcv2.RpcMsgBody_CALL{Cbody: rpcv2.CallBody{
			Rpcvers: RPCVersion,
			Prog:    prog,
			Vers:    vers,
			Proc:    proc,
			Cred:    rpcv2.OpaqueAuth{Flavor: rpcv2.AuthFlavor(cred.Flavor), Body: cred.Body},
			Verf:    rpcv2.OpaqueAuth{Flavor: rpcv2.AuthFlavor(verf.Flavor), Body: verf.Body},
		}},
	}
	_, err := msg.WriteTo(w)
	return err
}

// nullVerifier is the AUTH_NONE verifier that every reply of this
// server carries: neither AUTH_NONE nor AUTH_SYS verifies the server.
var nullVerifier = rpcv2.OpaqueAuth{Flavor: rpcv2.AUTH_NONE}

// successHeaderSize is the size of an accepted SUCCESS reply header
// with an AUTH_NONE verifier.
const successHeaderSize = 24

// appendSuccessHeader appends the header of an accepted SUCCESS reply
// with the null verifier: the reply every successful call gets. It
// spells out what encodeAccepted(xid, Success) produces with the
// generated types, without its allocations; TestSuccessHeader keeps the
// two identical.
func appendSuccessHeader(b []byte, xid uint32) []byte {
	b = binary.BigEndian.AppendUint32(b, xid)
	b = binary.BigEndian.AppendUint32(b, uint32(rpcv2.REPLY))
	b = binary.BigEndian.AppendUint32(b, uint32(rpcv2.MSG_ACCEPTED))
	b = binary.BigEndian.AppendUint32(b, uint32(rpcv2.AUTH_NONE))
	b = binary.BigEndian.AppendUint32(b, 0) // verifier body length
	return binary.BigEndian.AppendUint32(b, uint32(rpcv2.SUCCESS))
}

// encodeAccepted writes the header of an accepted reply. For Success
// the procedure's results follow; for ProgMismatch low and high give
// the supported versions.
func encodeAccepted(w io.Writer, xid uint32, stat AcceptStat, low, high uint32) error {
	areply := rpcv2.AcceptedReply{Verf: nullVerifier}
	switch stat {
	case Success:
		areply.ReplyData = &rpcv2.AcceptedReplyReplyData_SUCCESS{}
	case ProgMismatch:
		m := &rpcv2.AcceptedReplyReplyData_PROG_MISMATCH{}
		m.MismatchInfo.Low = low
		m.MismatchInfo.High = high
		areply.ReplyData = m
	default:
		areply.ReplyData = &rpcv2.AcceptedReplyReplyData_default{Stat: rpcv2.AcceptStat(stat)}
	}
	msg := rpcv2.RpcMsg{
		Xid:  xid,
		Body: &rpcv2.RpcMsgBody_REPLY{Rbody: &rpcv2.ReplyBody_MSG_ACCEPTED{Areply: areply}},
	}
	_, err := msg.WriteTo(w)
	return err
}

// encodeRPCMismatch writes a denied reply saying that only RPC version
// 2 is spoken.
func encodeRPCMismatch(w io.Writer, xid uint32) error {
	rej := &rpcv2.RejectedReply_RPC_MISMATCH{}
	rej.MismatchInfo.Low = RPCVersion
	rej.MismatchInfo.High = RPCVersion
	msg := rpcv2.RpcMsg{
		Xid:  xid,
		Body: &rpcv2.RpcMsgBody_REPLY{Rbody: &rpcv2.ReplyBody_MSG_DENIED{Rreply: rej}},
	}
	_, err := msg.WriteTo(w)
	return err
}

// encodeAuthError writes a denied reply for an authentication failure.
func encodeAuthError(w io.Writer, xid uint32, stat AuthStat) error {
	msg := rpcv2.RpcMsg{
		Xid: xid,
		Body: &rpcv2.RpcMsgBody_REPLY{Rbody: &rpcv2.ReplyBody_MSG_DENIED{
			Rreply: &rpcv2.RejectedReply_AUTH_ERROR{Stat: rpcv2.AuthStat(stat)},
		}},
	}
	_, err := msg.WriteTo(w)
	return err
}

// decodeReply decodes a reply message up to its results. It returns nil
// for a successful call, with r positioned at the results, and the
// reply's error otherwise.
func decodeReply(r io.Reader) (xid uint32, err error) {
	var msg rpcv2.RpcMsg
	if _, err := msg.ReadFrom(r); err != nil {
		return msg.Xid, fmt.Errorf("oncrpc: decode reply header: %w", err)
	}
	body, ok := msg.Body.(*rpcv2.RpcMsgBody_REPLY)
	if !ok {
		return msg.Xid, fmt.Errorf("oncrpc: decode reply header: message %d is a call, not a reply", msg.Xid)
	}
	switch rb := body.Rbody.(type) {
	case *rpcv2.ReplyBody_MSG_ACCEPTED:
		switch d := rb.Areply.ReplyData.(type) {
		case *rpcv2.AcceptedReplyReplyData_SUCCESS:
			return msg.Xid, nil
		case *rpcv2.AcceptedReplyReplyData_PROG_MISMATCH:
			return msg.Xid, &MismatchError{Low: d.MismatchInfo.Low, High: d.MismatchInfo.High}
		default:
			return msg.Xid, AcceptStat(d.GetStat())
		}
	case *rpcv2.ReplyBody_MSG_DENIED:
		switch d := rb.Rreply.(type) {
		case *rpcv2.RejectedReply_RPC_MISMATCH:
			return msg.Xid, &MismatchError{RPC: true, Low: d.MismatchInfo.Low, High: d.MismatchInfo.High}
		case *rpcv2.RejectedReply_AUTH_ERROR:
			return msg.Xid, AuthStat(d.Stat)
		}
	}
	return msg.Xid, fmt.Errorf("oncrpc: decode reply header: unexpected reply shape in message %d", msg.Xid)
}
