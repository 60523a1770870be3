package oncrpc

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func sysCred(t testing.TB, uid, gid uint32, ngroups int, machine string) OpaqueAuth {
	t.Helper()
	oa, err := SysCredential{MachineName: machine, UID: uid, GID: gid, GIDs: groups(ngroups)}.Credential()
	if err != nil {
		t.Fatal(err)
	}
	return oa
}

func TestServerReplies(t *testing.T) {
	ts := startServer(t, Config{})
	strict := startServerWithStrictAuth(t)
	sys := OpaqueAuth{Flavor: AuthSys, Body: authSysBody(1, "client", 1000, 100, groups(16))}
	whoami := append(binary.BigEndian.AppendUint32(nil, 1000), 0, 0, 0, 100, 0, 0, 0, 16)
	whoami = append(whoami, "client"...)

	tests := []struct {
		name        string
		addr        string
		rec         []byte
		wantErr     error
		wantLow     uint32 // for mismatches
		wantHigh    uint32
		wantResults []byte
	}{
		{name: "NULL", rec: rawCall(1, 2, testProg, 1, procNull, noAuth, noAuth, nil), wantResults: []byte{}},
		{name: "results", rec: rawCall(2, 2, testProg, 2, procIncrement, noAuth, noAuth, []byte{0, 0, 0, 41}), wantResults: []byte{0, 0, 0, 42}},
		{name: "second version range", rec: rawCall(3, 2, testProg, 5, procEcho, noAuth, noAuth, []byte("abcd")), wantResults: []byte("abcd")},
		{name: "AUTH_SYS with 16 groups reaches the handler", rec: rawCall(4, 2, testProg, 1, procWhoAmI, sys, noAuth, nil), wantResults: whoami},
		{name: "RPC version 3", rec: rawCall(5, 3, testProg, 1, procNull, noAuth, noAuth, nil), wantErr: ErrRPCMismatch, wantLow: 2, wantHigh: 2},
		{name: "unknown program", rec: rawCall(6, 2, testProg+1, 1, procNull, noAuth, noAuth, nil), wantErr: ProgUnavail},
		{name: "version between ranges", rec: rawCall(7, 2, testProg, 3, procNull, noAuth, noAuth, nil), wantErr: ProgMismatch, wantLow: 1, wantHigh: 5},
		{name: "version above ranges", rec: rawCall(8, 2, testProg, 9, procNull, noAuth, noAuth, nil), wantErr: ProgMismatch, wantLow: 1, wantHigh: 5},
		{name: "unknown procedure", rec: rawCall(9, 2, testProg, 1, 99, noAuth, noAuth, nil), wantErr: ProcUnavail},
		{name: "handler says PROC_UNAVAIL", rec: rawCall(10, 2, testProg, 1, procUnavail, noAuth, noAuth, nil), wantErr: ProcUnavail},
		{name: "undecodable arguments", rec: rawCall(11, 2, testProg, 1, procIncrement, noAuth, noAuth, []byte{1, 2}), wantErr: GarbageArgs},
		{name: "handler error", rec: rawCall(12, 2, testProg, 1, procFail, noAuth, noAuth, nil), wantErr: SystemErr},
		{name: "handler panic", rec: rawCall(13, 2, testProg, 1, procPanic, noAuth, noAuth, nil), wantErr: SystemErr},
		{name: "results that cannot be encoded", rec: rawCall(14, 2, testProg, 1, procBadResults, noAuth, noAuth, nil), wantErr: SystemErr},
		{name: "handler denies", rec: rawCall(15, 2, testProg, 1, procDenied, noAuth, noAuth, nil), wantErr: AuthTooWeak},
		{name: "17 groups", rec: rawCall(16, 2, testProg, 1, procNull, OpaqueAuth{Flavor: AuthSys, Body: authSysBody(1, "c", 0, 0, groups(17))}, noAuth, nil), wantErr: AuthBadCred},
		{name: "malformed AUTH_SYS body", rec: rawCall(17, 2, testProg, 1, procNull, OpaqueAuth{Flavor: AuthSys, Body: []byte{0, 0, 0, 1}}, noAuth, nil), wantErr: AuthBadCred},
		{name: "unsupported flavor", rec: rawCall(18, 2, testProg, 1, procNull, OpaqueAuth{Flavor: RPCSECGSS, Body: []byte{0, 0, 0, 1}}, noAuth, nil), wantErr: AuthBadCred},
		{name: "AUTH_SHORT", rec: rawCall(19, 2, testProg, 1, procNull, OpaqueAuth{Flavor: AuthShort, Body: []byte{0, 0, 0, 1}}, noAuth, nil), wantErr: AuthRejectedCred},
		{name: "verifier over 400 bytes", rec: rawCall(20, 2, testProg, 1, procNull, noAuth, OpaqueAuth{Body: make([]byte, 404)}, nil), wantErr: AuthBadVerf},
		{name: "credential over 400 bytes", rec: rawCall(21, 2, testProg, 1, procNull, OpaqueAuth{Flavor: AuthSys, Body: make([]byte, 404)}, noAuth, nil), wantErr: AuthBadCred},
		{name: "truncated header", rec: rawCall(22, 2, testProg, 1, procNull, noAuth, noAuth, nil)[:20], wantErr: GarbageArgs},
		{name: "AUTH_NONE where AUTH_SYS is required", addr: strict.addr, rec: rawCall(23, 2, testProg, 1, procEcho, noAuth, noAuth, nil), wantErr: AuthTooWeak},
		{name: "NULL with AUTH_NONE where AUTH_SYS is required", addr: strict.addr, rec: rawCall(24, 2, testProg, 1, procNull, noAuth, noAuth, nil), wantResults: []byte{}},
		{name: "AUTH_SYS where AUTH_SYS is required", addr: strict.addr, rec: rawCall(25, 2, testProg, 1, procEcho, sys, noAuth, []byte("ok..")), wantResults: []byte("ok..")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := ts.addr
			if tt.addr != "" {
				addr = tt.addr
			}
			c := dialRaw(t, addr)
			wantXID := binary.BigEndian.Uint32(tt.rec)
			xid, err, results := roundTrip(t, c, tt.rec)
			if xid != wantXID {
				t.Fatalf("reply xid = %d, want %d", xid, wantXID)
			}
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("reply error = %v, want SUCCESS", err)
				}
				if !bytes.Equal(results, tt.wantResults) {
					t.Fatalf("results = %x, want %x", results, tt.wantResults)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("reply error = %v, want %v", err, tt.wantErr)
			}
			var mm *MismatchError
			if errors.As(err, &mm) && (mm.Low != tt.wantLow || mm.High != tt.wantHigh) {
				t.Fatalf("mismatch range = %d-%d, want %d-%d", mm.Low, mm.High, tt.wantLow, tt.wantHigh)
			}
			// The connection stays usable after any of these replies.
			if _, err, _ := roundTrip(t, c, rawCall(99, 2, testProg, 1, procNull, noAuth, noAuth, nil)); err != nil {
				t.Fatalf("NULL after the reply: %v", err)
			}
		})
	}
}

func startServerWithStrictAuth(t *testing.T) *testServer {
	return startServer(t, Config{}, AcceptFlavors(AuthSys))
}

func TestHandlerAskingForNoReply(t *testing.T) {
	ts := startServer(t, Config{})
	c := dialRaw(t, ts.addr)
	sendRecord(t, c, rawCall(1, 2, testProg, 1, procNoReply, noAuth, noAuth, nil))
	// The next reply on the connection is the NULL's: the first call
	// got none.
	if xid, err, _ := roundTrip(t, c, rawCall(2, 2, testProg, 1, procNull, noAuth, noAuth, nil)); xid != 2 || err != nil {
		t.Fatalf("reply = xid %d, err %v; want xid 2 SUCCESS", xid, err)
	}
}

func TestRecordsThatAreNotCallsAreIgnored(t *testing.T) {
	ts := startServer(t, Config{})
	c := dialRaw(t, ts.addr)
	sendRecord(t, c, nil)                                  // empty record
	sendRecord(t, c, []byte{0, 0, 0, 9, 0, 0, 0, 1, 0xff}) // a "reply"
	if xid, err, _ := roundTrip(t, c, rawCall(3, 2, testProg, 1, procNull, noAuth, noAuth, nil)); xid != 3 || err != nil {
		t.Fatalf("reply = xid %d, err %v; want xid 3 SUCCESS", xid, err)
	}
}

func TestMultiFragmentCall(t *testing.T) {
	ts := startServer(t, Config{})
	c := dialRaw(t, ts.addr)
	args := bytes.Repeat([]byte("fragmented arguments"), 200)
	rec := rawCall(77, 2, testProg, 1, procEcho, noAuth, noAuth, args)
	if _, err := c.Write(fragmented(rec, 3, 30, 1000)); err != nil {
		t.Fatal(err)
	}
	xid, err, results := parseReply(t, readReplyRecord(t, c))
	if xid != 77 || err != nil || !bytes.Equal(results, args) {
		t.Fatalf("reply = xid %d, err %v, %d result bytes; want xid 77 SUCCESS echoing %d bytes", xid, err, len(results), len(args))
	}
}

func TestOversizeRecordClosesConnection(t *testing.T) {
	tests := []struct {
		name  string
		input []byte
	}{
		{name: "one large fragment announced", input: binary.BigEndian.AppendUint32(nil, lastFragment|5000)},
		{name: "fragments adding up", input: append(fragment(false, make([]byte, 3000)), fragment(false, make([]byte, 3000))...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := startServer(t, Config{MaxRecordSize: 4096})
			c := dialRaw(t, ts.addr)
			if _, err := c.Write(tt.input); err != nil {
				t.Fatal(err)
			}
			c.SetReadDeadline(time.Now().Add(testTimeout))
			n, err := c.Read(make([]byte, 1))
			if n != 0 || err == nil || isTimeout(err) {
				t.Fatalf("read after an oversize record = %d bytes, err %v; want the connection closed", n, err)
			}
		})
	}
}

func TestRepliesSentAsTheyComplete(t *testing.T) {
	ts := startServer(t, Config{})
	c := dialRaw(t, ts.addr)
	// Two slow calls, then a fast one, all pipelined on one connection.
	for _, xid := range []uint32{101, 102} {
		sendRecord(t, c, rawCall(xid, 2, testProg, 1, procBlock, noAuth, noAuth, nil))
	}
	for range 2 {
		<-ts.handler.entered
	}
	sendRecord(t, c, rawCall(103, 2, testProg, 1, procNull, noAuth, noAuth, nil))
	order := []uint32{}
	xid, _, _ := parseReply(t, readReplyRecord(t, c))
	order = append(order, xid)
	ts.handler.release(102)
	xid, _, _ = parseReply(t, readReplyRecord(t, c))
	order = append(order, xid)
	ts.handler.release(101)
	xid, _, _ = parseReply(t, readReplyRecord(t, c))
	order = append(order, xid)
	if want := []uint32{103, 102, 101}; !equalUint32s(order, want) {
		t.Fatalf("replies arrived in order %v, want %v", order, want)
	}
}

// TestQuickCalls: a call of a Quick procedure that is its connection's
// only call is served by the connection's reader, so a call sent after it
// waits for it; one that arrives with calls behind it, or while another
// runs, is served aside, as any call, and faster calls are answered first.
func TestQuickCalls(t *testing.T) {
	// procBlock is quick in version 1, not in version 2.
	ts := startServer(t, Config{}, Quick(func(vers, proc uint32, _ []byte) bool { return proc == procBlock && vers == 1 }))
	c := dialRaw(t, ts.addr)

	// Alone: served inline; the NULL sent next is not read until it ends.
	sendRecord(t, c, rawCall(1, 2, testProg, 1, procBlock, noAuth, noAuth, nil))
	<-ts.handler.entered
	sendRecord(t, c, rawCall(2, 2, testProg, 1, procNull, noAuth, noAuth, nil))
	time.Sleep(50 * time.Millisecond) // room for a wrongly concurrent reply to arrive first
	ts.handler.release(1)
	var order []uint32
	for range 2 {
		xid, _, _ := parseReply(t, readReplyRecord(t, c))
		order = append(order, xid)
	}
	if want := []uint32{1, 2}; !equalUint32s(order, want) {
		t.Fatalf("quick call alone: replies in order %v, want %v", order, want)
	}

	// With a call behind it in the same write: served aside.
	both := append(append([]byte(nil), fragment(true, rawCall(3, 2, testProg, 1, procBlock, noAuth, noAuth, nil))...),
		fragment(true, rawCall(4, 2, testProg, 1, procNull, noAuth, noAuth, nil))...)
	if _, err := c.Write(both); err != nil {
		t.Fatal(err)
	}
	<-ts.handler.entered
	xid, _, _ := parseReply(t, readReplyRecord(t, c))
	ts.handler.release(3)
	xid2, _, _ := parseReply(t, readReplyRecord(t, c))
	if xid != 4 || xid2 != 3 {
		t.Fatalf("quick call with a call behind it: replies %d then %d, want 4 then 3", xid, xid2)
	}

	// While another call runs: served aside.
	sendRecord(t, c, rawCall(5, 2, testProg, 2, procBlock, noAuth, noAuth, nil))
	<-ts.handler.entered
	sendRecord(t, c, rawCall(6, 2, testProg, 1, procBlock, noAuth, noAuth, nil))
	<-ts.handler.entered
	sendRecord(t, c, rawCall(7, 2, testProg, 1, procNull, noAuth, noAuth, nil))
	if xid, _, _ := parseReply(t, readReplyRecord(t, c)); xid != 7 {
		t.Fatalf("quick call while another runs: first reply %d, want 7", xid)
	}
	ts.handler.release(5)
	ts.handler.release(6)
	for range 2 {
		readReplyRecord(t, c)
	}
}

func equalUint32s(a, b []uint32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestOutstandingCap(t *testing.T) {
	const limit, calls = 3, 8
	ts := startServer(t, Config{MaxOutstanding: limit})
	c := dialRaw(t, ts.addr)
	for i := range calls {
		sendRecord(t, c, rawCall(uint32(200+i), 2, testProg, 1, procBlock, noAuth, noAuth, nil))
	}
	var started []uint32
	for range limit {
		started = append(started, <-ts.handler.entered)
	}
	// At the cap the server must not read the next call. Give it a
	// moment to misbehave before checking.
	time.Sleep(100 * time.Millisecond)
	select {
	case xid := <-ts.handler.entered:
		t.Fatalf("call %d started while %d were outstanding (cap %d)", xid, limit, limit)
	default:
	}
	// Freeing slots one by one lets the rest through.
	running := started
	for n := limit; n < calls; n++ {
		ts.handler.release(running[0])
		readReplyRecord(t, c)
		running = append(running[1:], <-ts.handler.entered)
	}
	for _, xid := range running {
		ts.handler.release(xid)
		readReplyRecord(t, c)
	}
	ts.handler.mu.Lock()
	peak := ts.handler.peak
	ts.handler.mu.Unlock()
	if peak > limit {
		t.Fatalf("%d calls ran at once, cap is %d", peak, limit)
	}
}

func TestDuplicateRequestCache(t *testing.T) {
	ts := startServer(t, Config{})
	call := rawCall(500, 2, testProg, 1, procCountRemove, noAuth, noAuth, []byte("name"))

	first := dialRaw(t, ts.addr)
	sendRecord(t, first, call)
	original := readReplyRecord(t, first)

	// A retransmission, as after a reconnect, gets the same reply
	// without running the call again.
	second := dialRaw(t, ts.addr)
	sendRecord(t, second, call)
	replayed := readReplyRecord(t, second)
	if !bytes.Equal(replayed, original) {
		t.Fatalf("replayed reply %x differs from the original %x", replayed, original)
	}
	if n := ts.handler.removeCount(); n != 1 {
		t.Fatalf("call ran %d times, want 1", n)
	}

	// Same xid with other arguments, or another procedure's xid, is a new call.
	sendRecord(t, second, rawCall(500, 2, testProg, 1, procCountRemove, noAuth, noAuth, []byte("othr")))
	readReplyRecord(t, second)
	if n := ts.handler.removeCount(); n != 2 {
		t.Fatalf("call with different arguments ran %d times in total, want 2", n)
	}

	// Idempotent procedures are not cached: a repeat runs again.
	echo := rawCall(501, 2, testProg, 1, procEcho, noAuth, noAuth, []byte("abcd"))
	roundTrip(t, second, echo)
	roundTrip(t, second, echo)
	if n := ts.srv.drc.len(); n != 2 {
		t.Fatalf("cache holds %d entries, want 2 (the two non-idempotent calls)", n)
	}
}

type recordingObserver struct {
	mu    sync.Mutex
	calls []CallInfo
	open  atomic.Int64
	done  atomic.Int64
}

func (o *recordingObserver) CallDone(info CallInfo) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.calls = append(o.calls, info)
}

func (o *recordingObserver) count(outcome Outcome) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for _, c := range o.calls {
		if c.Outcome == outcome {
			n++
		}
	}
	return n
}

func (o *recordingObserver) ConnOpened(network string, local, remote net.Addr) { o.open.Add(1) }

func (o *recordingObserver) ConnClosed(network string, local, remote net.Addr, err error) {
	o.done.Add(1)
}

func TestDuplicateOfCallInProgressIsDropped(t *testing.T) {
	obs := &recordingObserver{}
	ts := startServer(t, Config{CallObserver: obs})
	call := rawCall(600, 2, testProg, 1, procBlock, noAuth, noAuth, nil)

	first := dialRaw(t, ts.addr)
	sendRecord(t, first, call)
	<-ts.handler.entered

	second := dialRaw(t, ts.addr)
	sendRecord(t, second, call)
	waitFor(t, "the duplicate to be dropped", func() bool { return obs.count(Dropped) == 1 })

	ts.handler.release(600)
	if xid, err, _ := parseReply(t, readReplyRecord(t, first)); xid != 600 || err != nil {
		t.Fatalf("original reply = xid %d, err %v", xid, err)
	}
	// The duplicate got no reply: the next reply on its connection is
	// for the call sent after it.
	if xid, err, _ := roundTrip(t, second, rawCall(601, 2, testProg, 1, procNull, noAuth, noAuth, nil)); xid != 601 || err != nil {
		t.Fatalf("reply on the duplicate's connection = xid %d, err %v; want 601", xid, err)
	}
	select {
	case xid := <-ts.handler.entered:
		t.Fatalf("the duplicate of call %d ran", xid)
	default:
	}
	// Once finished, a further retransmission is answered from the cache.
	if xid, err, _ := roundTrip(t, second, call); xid != 600 || err != nil {
		t.Fatalf("retransmission after completion = xid %d, err %v", xid, err)
	}
	if n := obs.count(Replayed); n != 1 {
		t.Fatalf("%d replayed calls observed, want 1", n)
	}
}

func TestReplayCacheBounds(t *testing.T) {
	c := newReplayCache(3, 1<<20)
	key := func(xid uint32) drcKey { return drcKey{xid: xid, proc: 1} }
	for xid := uint32(1); xid <= 4; xid++ {
		if _, _, found := c.begin(key(xid)); found {
			t.Fatalf("new call %d found in the cache", xid)
		}
		c.finish(key(xid), []byte{byte(xid)})
	}
	if c.len() != 3 {
		t.Fatalf("cache holds %d entries, want 3", c.len())
	}
	if _, _, found := c.begin(key(1)); found {
		t.Fatal("the least recently used entry was not evicted")
	}
	state, reply, found := c.begin(key(4))
	if !found || state != drcDone || !bytes.Equal(reply, []byte{4}) {
		t.Fatalf("entry 4 = found %v, state %v, reply %x", found, state, reply)
	}

	bySize := newReplayCache(100, 10)
	bySize.begin(key(1))
	bySize.finish(key(1), make([]byte, 6))
	bySize.begin(key(2))
	bySize.finish(key(2), make([]byte, 6))
	if _, _, found := bySize.begin(key(1)); found {
		t.Fatal("cache kept more reply bytes than its limit")
	}
}

func TestMalformedInputLeavesNoGoroutines(t *testing.T) {
	ts := startServer(t, Config{MaxRecordSize: 1024, ReadTimeout: time.Second})
	// One connection served to completion, so that the server's own
	// goroutines are all started before counting.
	warm := dialRaw(t, ts.addr)
	roundTrip(t, warm, rawCall(1, 2, testProg, 1, procNull, noAuth, noAuth, nil))
	warm.Close()
	waitFor(t, "the warm-up connection to close", func() bool {
		ts.srv.mu.Lock()
		defer ts.srv.mu.Unlock()
		return len(ts.srv.conns) == 0
	})
	baseline := runtime.NumGoroutine()

	inputs := map[string][]byte{
		"oversize mark":      {0xff, 0xff, 0xff, 0xff, 1, 2, 3},
		"garbage header":     fragment(true, []byte("not an rpc call at all")),
		"truncated record":   fragment(true, make([]byte, 100))[:50],
		"partial mark":       {0x80, 0},
		"random bytes":       bytes.Repeat([]byte{0x13, 0x37, 0xc0, 0xde}, 64),
		"bad AUTH_SYS":       fragment(true, rawCall(1, 2, testProg, 1, procNull, OpaqueAuth{Flavor: AuthSys, Body: []byte{1}}, noAuth, nil)),
		"garbage arguments":  fragment(true, rawCall(1, 2, testProg, 1, procIncrement, noAuth, noAuth, []byte{1})),
		"endless fragments":  bytes.Repeat(fragment(false, make([]byte, 100)), 20),
		"wrong RPC version":  fragment(true, rawCall(1, 7, 0, 0, 0, noAuth, noAuth, nil)),
		"half a call header": fragment(true, rawCall(1, 2, testProg, 1, procNull, noAuth, noAuth, nil)[:30]),
	}
	for name, input := range inputs {
		t.Run(name, func(t *testing.T) {
			c, err := net.Dial("tcp", ts.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.Write(input); err != nil {
				t.Fatal(err)
			}
			// Either replies come back or the server closes the
			// connection; both are fine. Closing our end must then free
			// everything the server allocated for it.
			c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			io.Copy(io.Discard, c)
		})
	}
	waitFor(t, "every connection to close", func() bool {
		ts.srv.mu.Lock()
		defer ts.srv.mu.Unlock()
		return len(ts.srv.conns) == 0
	})
	settleGoroutines(t, baseline)
}

func TestShutdownFinishesCallsInProgress(t *testing.T) {
	obs := &recordingObserver{}
	s := NewServer(Config{Logger: quietLogger(), ConnObserver: obs})
	h := newTestHandler()
	if err := s.Register(testProg, 1, 1, h); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(l) }()

	c := dialRaw(t, l.Addr().String())
	sendRecord(t, c, rawCall(1, 2, testProg, 1, procBlock, noAuth, noAuth, nil))
	<-h.entered
	idle := dialRaw(t, l.Addr().String())
	waitFor(t, "both connections to be open", func() bool { return obs.open.Load() == 2 })

	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve returned %v, want ErrServerClosed", err)
	}
	h.release(1)
	if xid, err, _ := parseReply(t, readReplyRecord(t, c)); xid != 1 || err != nil {
		t.Fatalf("reply of the call in progress = xid %d, err %v", xid, err)
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	idle.SetReadDeadline(time.Now().Add(testTimeout))
	if _, err := idle.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("idle connection after Shutdown: read error %v, want EOF", err)
	}
	if obs.done.Load() != 2 {
		t.Fatalf("%d connections reported closed, want 2", obs.done.Load())
	}
	if _, err := net.Dial("tcp", l.Addr().String()); err == nil {
		t.Fatal("listener still accepts after Shutdown")
	}
}

func TestShutdownDeadlineClosesEverything(t *testing.T) {
	s := NewServer(Config{Logger: quietLogger()})
	h := newTestHandler()
	if err := s.Register(testProg, 1, 1, h); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(l)
	c := dialRaw(t, l.Addr().String())
	sendRecord(t, c, rawCall(1, 2, testProg, 1, procBlock, noAuth, noAuth, nil))
	<-h.entered
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// The blocked handler sees its context cancelled and returns.
	if err := s.Shutdown(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Shutdown = %v, want context.Canceled", err)
	}
}

func TestRegisterRejectsOverlaps(t *testing.T) {
	s := NewServer(Config{Logger: quietLogger()})
	h := newTestHandler()
	tests := []struct {
		name      string
		low, high uint32
		handler   Handler
		wantErr   bool
	}{
		{name: "first range", low: 2, high: 3, handler: h},
		{name: "disjoint range", low: 5, high: 5, handler: h},
		{name: "overlapping range", low: 3, high: 4, handler: h, wantErr: true},
		{name: "empty range", low: 7, high: 6, handler: h, wantErr: true},
		{name: "nil handler", low: 9, high: 9, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.Register(testProg, tt.low, tt.high, tt.handler)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Register(%d-%d) error = %v, want error %v", tt.low, tt.high, err, tt.wantErr)
			}
		})
	}
}

func TestConnObserverCountsConnections(t *testing.T) {
	obs := &recordingObserver{}
	ts := startServer(t, Config{ConnObserver: obs})
	var conns []net.Conn
	for range 3 {
		conns = append(conns, dialRaw(t, ts.addr))
	}
	waitFor(t, "three connections", func() bool { return obs.open.Load() == 3 })
	for _, c := range conns {
		c.Close()
	}
	waitFor(t, "three closes", func() bool { return obs.done.Load() == 3 })
}

func TestIdleTimeoutClosesIdleConnections(t *testing.T) {
	ts := startServer(t, Config{IdleTimeout: 50 * time.Millisecond})
	c := dialRaw(t, ts.addr)
	roundTrip(t, c, rawCall(1, 2, testProg, 1, procNull, noAuth, noAuth, nil))
	c.SetReadDeadline(time.Now().Add(testTimeout))
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("read on an idle connection: %v, want EOF once the server closes it", err)
	}
}

func TestIdleTimeoutSparesConnectionsWithCallsInFlight(t *testing.T) {
	ts := startServer(t, Config{IdleTimeout: 30 * time.Millisecond})
	c := dialRaw(t, ts.addr)
	sendRecord(t, c, rawCall(1, 2, testProg, 1, procBlock, noAuth, noAuth, nil))
	<-ts.handler.entered
	time.Sleep(150 * time.Millisecond) // several idle periods pass
	// The connection is still read: a new call is answered while the
	// first is in flight, and the first one's reply follows.
	if xid, err, _ := roundTrip(t, c, rawCall(2, 2, testProg, 1, procNull, noAuth, noAuth, nil)); xid != 2 || err != nil {
		t.Fatalf("call after the idle period = xid %d, err %v", xid, err)
	}
	ts.handler.release(1)
	if xid, err, _ := parseReply(t, readReplyRecord(t, c)); xid != 1 || err != nil {
		t.Fatalf("reply of the long call = xid %d, err %v", xid, err)
	}
}

func TestServePacket(t *testing.T) {
	s := NewServer(Config{Logger: quietLogger()})
	h := newTestHandler()
	if err := s.Register(testProg, 1, 1, h, NonIdempotent(func(vers, proc uint32) bool { return proc == procCountRemove })); err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.ServePacket(pc) }()
	defer func() {
		s.Shutdown(context.Background())
		if err := <-served; !errors.Is(err, ErrServerClosed) {
			t.Errorf("ServePacket returned %v, want ErrServerClosed", err)
		}
	}()

	c, err := net.Dial("udp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	exchange := func(rec []byte) (uint32, error, []byte) {
		if _, err := c.Write(rec); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(testTimeout))
		buf := make([]byte, maxDatagram)
		n, err := c.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		return parseReply(t, buf[:n])
	}
	if xid, err, res := exchange(rawCall(1, 2, testProg, 1, procIncrement, noAuth, noAuth, []byte{0, 0, 0, 1})); xid != 1 || err != nil || !bytes.Equal(res, []byte{0, 0, 0, 2}) {
		t.Fatalf("UDP call = xid %d, err %v, results %x", xid, err, res)
	}
	if _, err, _ := exchange(rawCall(2, 2, testProg, 2, procNull, noAuth, noAuth, nil)); !errors.Is(err, ProgMismatch) {
		t.Fatalf("UDP call to a missing version: %v, want PROG_MISMATCH", err)
	}
	remove := rawCall(3, 2, testProg, 1, procCountRemove, noAuth, noAuth, nil)
	exchange(remove)
	exchange(remove)
	if n := h.removeCount(); n != 1 {
		t.Fatalf("retransmitted datagram ran %d times, want 1", n)
	}
}

func TestCallInfoReportsOutcomes(t *testing.T) {
	obs := &recordingObserver{}
	ts := startServer(t, Config{CallObserver: obs})
	c := dialRaw(t, ts.addr)
	roundTrip(t, c, rawCall(1, 2, testProg, 1, procEcho, noAuth, noAuth, []byte("abcd")))
	roundTrip(t, c, rawCall(2, 2, testProg, 1, procFail, noAuth, noAuth, nil))
	roundTrip(t, c, rawCall(3, 9, 0, 0, 0, noAuth, noAuth, nil))
	waitFor(t, "three observed calls", func() bool {
		obs.mu.Lock()
		defer obs.mu.Unlock()
		return len(obs.calls) == 3
	})
	obs.mu.Lock()
	defer obs.mu.Unlock()
	byXIDOrder := obs.calls
	if got := byXIDOrder[0]; got.Outcome != Replied || got.Stat != Success || got.Proc != procEcho || got.ArgBytes != 4 || got.ReplyBytes != 28 {
		t.Fatalf("echo call info = %+v", got)
	}
	if got := byXIDOrder[1]; got.Outcome != Replied || got.Stat != SystemErr || got.Err == nil || !strings.Contains(got.Err.Error(), "backend") {
		t.Fatalf("failing call info = %+v", got)
	}
	if got := byXIDOrder[2]; got.Outcome != Denied || got.Auth != AuthOK {
		t.Fatalf("RPC mismatch call info = %+v", got)
	}
}
