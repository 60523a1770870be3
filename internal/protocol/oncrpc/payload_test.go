package oncrpc

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"sync/atomic"
	"testing"
)

// payloadResults encodes a length, data handed over as a payload when the
// writer takes one, and a tail written after it.
type payloadResults struct {
	data     []byte
	released *atomic.Int64
}

func (r payloadResults) WriteTo(w io.Writer) (int64, error) {
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(r.data)))
	w.Write(n[:])
	release := func() { r.released.Add(1) }
	if pw, ok := w.(PayloadWriter); ok {
		pw.WritePayload(r.data, release)
	} else {
		w.Write(r.data)
		release()
	}
	w.Write([]byte("END!"))
	return int64(8 + len(r.data)), nil
}

type payloadHandler struct{ released atomic.Int64 }

func (h *payloadHandler) ServeRPC(_ context.Context, call *Call) (io.WriterTo, error) {
	var size uint32Value
	if err := call.DecodeArgs(&size); err != nil {
		return nil, err
	}
	return payloadResults{data: h.data(uint32(size)), released: &h.released}, nil
}

// TestPayloadReplies: results that hand over a payload produce the same
// reply records as results that write it, pipelined on one connection,
// through the duplicate request cache (which keeps a flat copy) too, and
// every payload is released once.
func TestPayloadReplies(t *testing.T) {
	for _, cached := range []bool{false, true} {
		s := NewServer(Config{Logger: quietLogger()})
		h := &payloadHandler{}
		var opts []ProgramOption
		if cached {
			opts = append(opts, NonIdempotent(func(vers, proc uint32) bool { return true }))
		}
		if err := s.Register(testProg, 1, 1, h, opts...); err != nil {
			t.Fatal(err)
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- s.Serve(l) }()
		c := dialRaw(t, l.Addr().String())
		sizes := []uint32{0, 1, 3, 4, 5, 70_000, 1<<19 + 3}
		for i, size := range sizes {
			sendRecord(t, c, rawCall(uint32(100+i), 2, testProg, 1, 1, noAuth, noAuth, binary.BigEndian.AppendUint32(nil, size)))
		}
		got := map[uint32][]byte{}
		for range sizes {
			xid, err, res := parseReply(t, readReplyRecord(t, c))
			if err != nil {
				t.Fatalf("cached=%v: reply %d: %v", cached, xid, err)
			}
			got[xid] = res
		}
		if cached {
			// A retransmission is answered from the cache, byte for byte.
			_, err, res := roundTrip(t, c, rawCall(uint32(100+len(sizes)-1), 2, testProg, 1, 1, noAuth, noAuth, binary.BigEndian.AppendUint32(nil, 1<<19+3)))
			if err != nil || !bytes.Equal(res, got[uint32(100+len(sizes)-1)]) {
				t.Fatalf("replayed reply differs (err %v)", err)
			}
		}
		for i, size := range sizes {
			var want bytes.Buffer
			payloadResults{data: (&payloadHandler{}).data(size), released: new(atomic.Int64)}.WriteTo(&want)
			if !bytes.Equal(got[uint32(100+i)], want.Bytes()) {
				t.Fatalf("cached=%v: reply to a %d-byte payload differs from the copied encoding", cached, size)
			}
		}
		c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		if err := s.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		cancel()
		<-done
		if n := h.released.Load(); n != int64(len(sizes)) {
			t.Fatalf("cached=%v: %d payloads released, want %d", cached, n, len(sizes))
		}
	}
}

func (h *payloadHandler) data(size uint32) []byte {
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i * 7)
	}
	return data
}
