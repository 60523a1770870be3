package oncrpc

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"
)

const (
	testProg    = 0x20000001
	testTimeout = 10 * time.Second
)

// Procedures of the test program.
const (
	procNull        = 0
	procEcho        = 1 // results: the arguments unchanged
	procIncrement   = 2 // args: uint32; results: uint32 + 1
	procUnavail     = 3
	procFail        = 4 // returns a plain error
	procPanic       = 5
	procDenied      = 6 // returns AuthTooWeak
	procWhoAmI      = 7 // results: uid, gid, number of groups, machine name
	procNoReply     = 8
	procBadResults  = 9  // results that cannot be encoded
	procBlock       = 10 // waits for a release from the test
	procCountRemove = 11 // non-idempotent; counts executions
)

// uint32Value is a tiny XDR value for arguments and results.
type uint32Value uint32

func (v *uint32Value) ReadFrom(r io.Reader) (int64, error) {
	var b [4]byte
	n, err := io.ReadFull(r, b[:])
	*v = uint32Value(binary.BigEndian.Uint32(b[:]))
	return int64(n), err
}

func (v uint32Value) WriteTo(w io.Writer) (int64, error) {
	n, err := w.Write(binary.BigEndian.AppendUint32(nil, uint32(v)))
	return int64(n), err
}

type failingResults struct{}

func (failingResults) WriteTo(io.Writer) (int64, error) {
	return 0, errors.New("value out of range")
}

// testHandler implements the test program.
type testHandler struct {
	mu       sync.Mutex
	removes  int         // executions of procCountRemove
	entered  chan uint32 // procBlock: the xid of each call that started
	releases map[uint32]chan struct{}
	running  int
	peak     int // most procBlock calls running at once
}

func newTestHandler() *testHandler {
	return &testHandler{entered: make(chan uint32, 64), releases: make(map[uint32]chan struct{})}
}

// release lets the procBlock call with this xid finish.
func (h *testHandler) release(xid uint32) {
	close(h.gate(xid))
}

func (h *testHandler) gate(xid uint32) chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	ch, ok := h.releases[xid]
	if !ok {
		ch = make(chan struct{})
		h.releases[xid] = ch
	}
	return ch
}

func (h *testHandler) ServeRPC(ctx context.Context, call *Call) (io.WriterTo, error) {
	switch call.Proc {
	case procNull:
		return nil, nil
	case procEcho:
		return Raw(call.Args), nil
	case procIncrement:
		var v uint32Value
		if err := call.DecodeArgs(&v); err != nil {
			return nil, err
		}
		return v + 1, nil
	case procFail:
		return nil, errors.New("backend unavailable")
	case procPanic:
		panic("handler bug")
	case procDenied:
		return nil, fmt.Errorf("export requires a stronger flavor: %w", AuthTooWeak)
	case procWhoAmI:
		if call.Sys == nil {
			return nil, AuthTooWeak
		}
		var b bytes.Buffer
		uint32Value(call.Sys.UID).WriteTo(&b)
		uint32Value(call.Sys.GID).WriteTo(&b)
		uint32Value(len(call.Sys.GIDs)).WriteTo(&b)
		b.WriteString(call.Sys.MachineName)
		return Raw(b.Bytes()), nil
	case procNoReply:
		return nil, ErrNoReply
	case procBadResults:
		return failingResults{}, nil
	case procBlock:
		h.mu.Lock()
		h.running++
		h.peak = max(h.peak, h.running)
		h.mu.Unlock()
		h.entered <- call.XID
		select {
		case <-h.gate(call.XID):
		case <-ctx.Done():
		}
		h.mu.Lock()
		h.running--
		h.mu.Unlock()
		return uint32Value(call.XID), nil
	case procCountRemove:
		h.mu.Lock()
		h.removes++
		n := h.removes
		h.mu.Unlock()
		return uint32Value(n), nil
	}
	return nil, ProcUnavail
}

func (h *testHandler) removeCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.removes
}

type testServer struct {
	srv     *Server
	addr    string
	handler *testHandler
	done    chan error
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// startServer serves the test program (versions 1-2 and 4-5) on a
// loopback port until the test ends.
func startServer(t testing.TB, cfg Config, opts ...ProgramOption) *testServer {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	s := NewServer(cfg)
	h := newTestHandler()
	opts = append([]ProgramOption{NonIdempotent(func(vers, proc uint32) bool {
		return proc == procCountRemove || proc == procBlock
	})}, opts...)
	if err := s.Register(testProg, 1, 2, h, opts...); err != nil {
		t.Fatal(err)
	}
	if err := s.Register(testProg, 4, 5, h, opts...); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{srv: s, addr: l.Addr().String(), handler: h, done: make(chan error, 1)}
	go func() { ts.done <- s.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-ts.done; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return ts
}

func dialRaw(t testing.TB, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func sendRecord(t testing.TB, c net.Conn, rec []byte) {
	t.Helper()
	if _, err := c.Write(fragment(true, rec)); err != nil {
		t.Fatalf("send record: %v", err)
	}
}

func readReplyRecord(t testing.TB, c net.Conn) []byte {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(testTimeout))
	rec, err := readRecord(c, 1<<20)
	if err != nil {
		t.Fatalf("read reply: %v", err)
	}
	return append([]byte(nil), rec...)
}

// roundTrip sends one call record and returns the reply's xid, the
// reply's error (nil for SUCCESS) and its results.
func roundTrip(t testing.TB, c net.Conn, rec []byte) (uint32, error, []byte) {
	t.Helper()
	sendRecord(t, c, rec)
	return parseReply(t, readReplyRecord(t, c))
}

func parseReply(t testing.TB, rep []byte) (uint32, error, []byte) {
	t.Helper()
	r := bytes.NewReader(rep)
	xid, err := decodeReply(r)
	var results []byte
	if err == nil {
		results, _ = io.ReadAll(r)
	}
	return xid, err, results
}

// waitFor polls cond until it holds, failing the test after a bound.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// settleGoroutines waits until at most want goroutines run.
func settleGoroutines(t testing.TB, want int) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for {
		n := runtime.NumGoroutine()
		if n <= want {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("%d goroutines still running, want at most %d:\n%s", n, want, buf)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
