package oncrpc

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
)

// FuzzServeRecord runs arbitrary records through the server's call
// path (header, credential, dispatch, handler, reply encoding) without
// a network. Every record is either dropped or answered with a
// well-formed reply carrying the record's xid; nothing panics.
func FuzzServeRecord(f *testing.F) {
	s := NewServer(Config{Logger: quietLogger()})
	h := newTestHandler()
	// procBlock waits for the test to release it; everything else
	// answers at once.
	nonBlocking := HandlerFunc(func(ctx context.Context, call *Call) (io.WriterTo, error) {
		if call.Proc == procBlock {
			return nil, ProcUnavail
		}
		return h.ServeRPC(ctx, call)
	})
	if err := s.Register(testProg, 1, 2, nonBlocking, NonIdempotent(func(vers, proc uint32) bool { return proc == procCountRemove })); err != nil {
		f.Fatal(err)
	}
	sys := OpaqueAuth{Flavor: AuthSys, Body: authSysBody(1, "client", 1000, 100, groups(4))}
	for proc := uint32(0); proc <= procCountRemove; proc++ {
		f.Add(rawCall(proc, 2, testProg, 1, proc, sys, noAuth, []byte{0, 0, 0, 1}))
	}
	f.Add(rawCall(1, 3, testProg, 1, 0, noAuth, noAuth, nil))
	f.Add(rawCall(1, 2, testProg, 7, 0, noAuth, noAuth, nil))
	f.Add(rawCall(1, 2, testProg, 1, 0, OpaqueAuth{Flavor: AuthSys, Body: authSysBody(1, "c", 0, 0, groups(17))}, noAuth, nil))
	ep := &endpoint{network: "tcp", local: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 2049}, remote: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 800}}

	f.Fuzz(func(t *testing.T, rec []byte) {
		s.quick(rec) // the reader asks it of every record first
		var pl payload
		reply := s.serveRecord(ep, rec, &pl)
		if reply == nil {
			return
		}
		reply = flatten(reply, &pl)
		defer putBuffer(reply)
		xid, err := decodeReply(bytes.NewReader(reply[markSize:]))
		var accept AcceptStat
		var auth AuthStat
		var mismatch *MismatchError
		if err != nil && !errors.As(err, &accept) && !errors.As(err, &auth) && !errors.As(err, &mismatch) {
			t.Fatalf("reply %x is malformed: %v", reply[markSize:], err)
		}
		if want := binary.BigEndian.Uint32(rec); xid != want {
			t.Fatalf("reply xid %d, call xid %d", xid, want)
		}
	})
}
