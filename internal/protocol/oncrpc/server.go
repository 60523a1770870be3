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
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Config tunes a Server. The zero value of every field selects the
// documented default.
type Config struct {
	// Logger receives the server's logs; slog.Default() when nil.
	Logger *slog.Logger

	// MaxRecordSize caps the size of one call record (all fragments
	// together). A connection that announces a larger record is closed,
	// as it cannot be resynchronised. Default DefaultMaxRecordSize.
	MaxRecordSize int

	// MaxOutstanding caps the calls of one connection that are being
	// served or whose replies are not yet written. At the cap the
	// server stops reading from the connection, which pushes back on
	// the client through TCP flow control. Default
	// DefaultMaxOutstanding.
	MaxOutstanding int

	// DRCEntries and DRCMaxBytes bound the duplicate request cache,
	// shared by all connections and programs. A negative DRCEntries
	// turns the cache off. Defaults DefaultDRCEntries and
	// DefaultDRCMaxBytes.
	DRCEntries  int
	DRCMaxBytes int

	// ReadTimeout is how long the rest of a record may take to arrive
	// once its first byte has; a peer that stalls mid-record is
	// disconnected. Default DefaultReadTimeout; negative means none.
	ReadTimeout time.Duration

	// WriteTimeout is how long writing one batch of replies may take; a
	// peer that stops reading its replies is disconnected. Default
	// DefaultWriteTimeout; negative means none.
	WriteTimeout time.Duration

	// IdleTimeout closes a connection that has had no call in flight and
	// has sent nothing for this long. Zero keeps idle connections open,
	// which NFS clients expect.
	IdleTimeout time.Duration

	// ConnObserver and CallObserver, when set, are told about
	// connections and calls (for metrics).
	ConnObserver ConnObserver
	CallObserver CallObserver
}

// Defaults for Config.
const (
	DefaultMaxOutstanding = 128
	DefaultReadTimeout    = 60 * time.Second
	DefaultWriteTimeout   = 60 * time.Second
)

// ErrServerClosed is returned by Serve and ServePacket once Shutdown or
// Close has been called.
var ErrServerClosed = errors.New("oncrpc: server closed")

// Server serves registered RPC programs on any number of stream
// listeners and packet connections.
type Server struct {
	cfg    Config
	logger *slog.Logger
	drc    *replayCache

	progMu sync.RWMutex
	progs  map[uint32][]*program

	// ctx is passed to handlers and cancelled by Close.
	ctx    context.Context
	cancel context.CancelFunc

	mu          sync.Mutex
	closing     atomic.Bool
	listeners   map[net.Listener]struct{}
	packetConns map[net.PacketConn]struct{}
	conns       map[*conn]struct{}
	// active counts connection and packet-serving goroutines, so that
	// Shutdown can wait for them.
	active sync.WaitGroup
	// forced is closed by Close to release goroutines waiting for a
	// free call slot.
	forced     chan struct{}
	forcedOnce sync.Once
}

// program is one registration: a version range of a program.
type program struct {
	prog, low, high uint32
	handler         Handler
	flavors         []AuthFlavor
	nonIdempotent   func(vers, proc uint32) bool
	quick           func(vers, proc uint32, args []byte) bool
}

func (p *program) accepts(f AuthFlavor) bool { return slices.Contains(p.flavors, f) }

// NewServer returns a server with no programs registered.
func NewServer(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxRecordSize <= 0 {
		cfg.MaxRecordSize = DefaultMaxRecordSize
	}
	cfg.MaxRecordSize = min(cfg.MaxRecordSize, fragmentLength)
	if cfg.MaxOutstanding <= 0 {
		cfg.MaxOutstanding = DefaultMaxOutstanding
	}
	if cfg.DRCEntries == 0 {
		cfg.DRCEntries = DefaultDRCEntries
	}
	if cfg.DRCMaxBytes <= 0 {
		cfg.DRCMaxBytes = DefaultDRCMaxBytes
	}
	if cfg.ReadTimeout == 0 {
		cfg.ReadTimeout = DefaultReadTimeout
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	s := &Server{
		cfg:         cfg,
		logger:      cfg.Logger,
		progs:       make(map[uint32][]*program),
		listeners:   make(map[net.Listener]struct{}),
		packetConns: make(map[net.PacketConn]struct{}),
		conns:       make(map[*conn]struct{}),
		forced:      make(chan struct{}),
	}
	if cfg.DRCEntries > 0 {
		s.drc = newReplayCache(cfg.DRCEntries, cfg.DRCMaxBytes)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s
}

// ProgramOption changes how a registered program is served.
type ProgramOption func(*program)

// AcceptFlavors sets the credential flavors a program takes; calls with
// any other flavor are denied with AUTH_TOOWEAK, except procedure 0,
// the NULL procedure, which clients use to probe before they pick a
// flavor. The default is AUTH_NONE and AUTH_SYS. Flavors other than
// these two are never accepted, because this server cannot check them.
func AcceptFlavors(flavors ...AuthFlavor) ProgramOption {
	return func(p *program) { p.flavors = slices.Clone(flavors) }
}

// NonIdempotent names the procedures whose replies go through the
// duplicate request cache: calls that must not run twice when a client
// retransmits them.
func NonIdempotent(isNonIdempotent func(vers, proc uint32) bool) ProgramOption {
	return func(p *program) { p.nonIdempotent = isNonIdempotent }
}

// Quick names the procedures that usually answer at once, without
// waiting on storage or the network (attributes from a cache, data from
// the page cache). A connection's reader serves such a call itself when
// it is the only call on the connection (none running, none read ahead),
// instead of handing it to another goroutine: the handoff wakes a second
// CPU, which for a client waiting on one call at a time costs more than
// the call. A call that blocks anyway delays only the next call of its
// own connection; pipelining clients keep every call concurrent. isQuick
// sees the call's encoded arguments (a READ is quick when small, say); it
// must only read them.
func Quick(isQuick func(vers, proc uint32, args []byte) bool) ProgramOption {
	return func(p *program) { p.quick = isQuick }
}

// quick reports whether the call record rec is one its program declared
// Quick. It reads the header in place; a record too short or malformed
// to say is not quick (the normal path answers it).
func (s *Server) quick(rec []byte) bool {
	if len(rec) < 32 {
		return false
	}
	prog, vers, proc := binary.BigEndian.Uint32(rec[12:]), binary.BigEndian.Uint32(rec[16:]), binary.BigEndian.Uint32(rec[20:])
	p, _, _, _ := s.lookup(prog, vers)
	if p == nil || p.quick == nil {
		return false
	}
	// Skip the credential and the verifier: flavor, length, body.
	args := rec[24:]
	for range 2 {
		if len(args) < 8 {
			return false
		}
		n := uint64(binary.BigEndian.Uint32(args[4:]))
		n = (n + 3) &^ 3
		if n > uint64(len(args)-8) {
			return false
		}
		args = args[8+n:]
	}
	return p.quick(vers, proc, args)
}

// Register serves versions low to high of program prog with h. A
// program may be registered several times with disjoint version
// ranges. Registering while serving is allowed.
func (s *Server) Register(prog, low, high uint32, h Handler, opts ...ProgramOption) error {
	if h == nil {
		return fmt.Errorf("oncrpc: register program %d: nil handler", prog)
	}
	if low > high {
		return fmt.Errorf("oncrpc: register program %d: version range %d-%d is empty", prog, low, high)
	}
	p := &program{prog: prog, low: low, high: high, handler: h, flavors: []AuthFlavor{AuthNone, AuthSys}}
	for _, opt := range opts {
		opt(p)
	}
	s.progMu.Lock()
	defer s.progMu.Unlock()
	for _, q := range s.progs[prog] {
		if low <= q.high && q.low <= high {
			return fmt.Errorf("oncrpc: register program %d versions %d-%d: overlaps versions %d-%d already registered",
				prog, low, high, q.low, q.high)
		}
	}
	s.progs[prog] = append(s.progs[prog], p)
	return nil
}

// lookup finds the registration serving prog and vers. Without one it
// returns the status to answer with and, for ProgMismatch, the lowest
// and highest version registered.
func (s *Server) lookup(prog, vers uint32) (p *program, stat AcceptStat, low, high uint32) {
	s.progMu.RLock()
	defer s.progMu.RUnlock()
	regs := s.progs[prog]
	if len(regs) == 0 {
		return nil, ProgUnavail, 0, 0
	}
	low, high = regs[0].low, regs[0].high
	for _, q := range regs {
		if q.low <= vers && vers <= q.high {
			return q, Success, 0, 0
		}
		low, high = min(low, q.low), max(high, q.high)
	}
	return nil, ProgMismatch, low, high
}

// versionRange returns the lowest and highest registered version of prog.
func (s *Server) versionRange(prog uint32) (low, high uint32) {
	s.progMu.RLock()
	defer s.progMu.RUnlock()
	for i, q := range s.progs[prog] {
		if i == 0 {
			low, high = q.low, q.high
		}
		low, high = min(low, q.low), max(high, q.high)
	}
	return low, high
}

// Serve accepts stream connections on l and serves each until it
// closes. It returns ErrServerClosed after Shutdown or Close, and
// otherwise the listener's error. The server closes l when it stops.
func (s *Server) Serve(l net.Listener) error {
	if !s.track(func() { s.listeners[l] = struct{}{} }) {
		l.Close()
		return ErrServerClosed
	}
	defer s.untrack(func() { delete(s.listeners, l) })
	var backoff time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			if s.closing.Load() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				// Out of file descriptors or a transient failure: wait
				// and retry rather than spin or give up serving.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.logger.Warn("rpc accept failed; retrying", "listener", l.Addr().String(), "err", err, "retry_in", backoff)
				time.Sleep(backoff)
				continue
			}
			return fmt.Errorf("oncrpc: accept on %s: %w", l.Addr(), err)
		}
		backoff = 0
		c := newConn(s, nc)
		if !s.track(func() { s.conns[c] = struct{}{} }) {
			nc.Close()
			return ErrServerClosed
		}
		go c.serve()
	}
}

// track runs add under the server lock and counts one more active
// goroutine, unless the server is shutting down.
func (s *Server) track(add func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		return false
	}
	add()
	s.active.Add(1)
	return true
}

func (s *Server) untrack(remove func()) {
	s.mu.Lock()
	remove()
	s.mu.Unlock()
	s.active.Done()
}

// Shutdown stops the server gracefully: it closes the listeners and
// packet connections, stops reading new calls, lets the calls in
// progress finish and send their replies, and closes the connections.
// If ctx ends first, it closes everything as Close does and returns
// ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	s.beginClosing()
	done := make(chan struct{})
	go func() {
		s.active.Wait()
		close(done)
	}()
	select {
	case <-done:
		s.cancel()
		return nil
	case <-ctx.Done():
		s.Close()
		<-done
		return ctx.Err()
	}
}

// Close stops the server at once: listeners and connections are
// closed, and the context of running handlers is cancelled. Replies of
// calls still running are discarded.
func (s *Server) Close() error {
	s.beginClosing()
	s.forcedOnce.Do(func() { close(s.forced) })
	s.cancel()
	s.mu.Lock()
	for c := range s.conns {
		c.nc.Close()
	}
	s.mu.Unlock()
	return nil
}

func (s *Server) beginClosing() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closing.Store(true)
	for l := range s.listeners {
		l.Close()
	}
	for pc := range s.packetConns {
		pc.Close()
	}
	for c := range s.conns {
		c.stopReading()
	}
}

// endpoint says where a call came from and arrived.
type endpoint struct {
	network       string
	local, remote net.Addr
	// sys is the AUTH_SYS credential of the connection's last call: a
	// client sends the same one call after call, and decoding it (with a
	// machine name to copy) cost 5 % of a small READ.
	sys atomic.Pointer[decodedCred]
}

// decodedCred is an AUTH_SYS credential body and its decoding.
type decodedCred struct {
	body []byte
	sys  SysCredential
}

// authSys decodes an AUTH_SYS credential body, or returns the decoding of
// the connection's previous call when the body is the same. The result is
// shared: callers must not modify it.
func (ep *endpoint) authSys(body []byte) (*SysCredential, error) {
	if c := ep.sys.Load(); c != nil && bytes.Equal(c.body, body) {
		return &c.sys, nil
	}
	sys, err := DecodeAuthSys(body)
	if err != nil {
		return nil, err
	}
	c := &decodedCred{body: bytes.Clone(body), sys: sys}
	ep.sys.Store(c)
	return &c.sys, nil
}

// serveRecord turns one call record into its reply record, which starts
// with markSize bytes of room for a record mark. It returns nil when no
// reply is to be sent. The reply buffer comes from the pool.
//
// A reply's results may hand over a payload (PayloadWriter), which pl
// receives: the record is then the reply followed by pl's bytes, and the
// caller frees pl once they are sent or dropped.
func (s *Server) serveRecord(ep *endpoint, rec []byte, pl *payload) []byte {
	start := time.Now()
	info := CallInfo{Network: ep.network, RemoteAddr: ep.remote, Start: start}
	reply := s.answer(ep, rec, &info, pl)
	if s.cfg.CallObserver != nil {
		info.Duration = time.Since(start)
		if reply != nil {
			info.ReplyBytes = len(reply) - markSize + pl.len()
		}
		s.cfg.CallObserver.CallDone(info)
	}
	return reply
}

func (s *Server) answer(ep *endpoint, rec []byte, info *CallInfo, pl *payload) []byte {
	h, err := decodeCallHeader(rec)
	info.Prog, info.Vers, info.Proc = h.prog, h.vers, h.proc
	info.ArgBytes = len(h.args)
	switch {
	case errors.Is(err, errNotCall):
		s.logger.Debug("rpc record dropped: not a call", "remote", addrString(ep.remote), "bytes", len(rec))
		info.Outcome = Dropped
		return nil
	case errors.Is(err, errBadHeader):
		return s.acceptedReply(h.xid, GarbageArgs, 0, 0, info)
	case h.rpcvers != RPCVersion:
		return s.rpcMismatchReply(h.xid, info)
	case errors.Is(err, errBadCred):
		return s.authErrorReply(h.xid, AuthBadCred, info)
	case errors.Is(err, errBadVerf):
		return s.authErrorReply(h.xid, AuthBadVerf, info)
	}

	call := Call{
		XID: h.xid, Prog: h.prog, Vers: h.vers, Proc: h.proc,
		Cred: h.cred, Verf: h.verf,
		Network: ep.network, LocalAddr: ep.local, RemoteAddr: ep.remote,
		Args: h.args,
	}
	switch h.cred.Flavor {
	case AuthNone:
	case AuthSys:
		sys, err := ep.authSys(h.cred.Body)
		if err != nil {
			s.logger.Debug("rpc call denied: bad AUTH_SYS credential", "remote", addrString(ep.remote), "err", err)
			return s.authErrorReply(h.xid, AuthBadCred, info)
		}
		call.Sys = sys
	case AuthShort:
		// This server never hands out short-hand credentials, so the
		// client must go back to its full credential.
		return s.authErrorReply(h.xid, AuthRejectedCred, info)
	default:
		return s.authErrorReply(h.xid, AuthBadCred, info)
	}

	p, stat, low, high := s.lookup(h.prog, h.vers)
	if p == nil {
		return s.acceptedReply(h.xid, stat, low, high, info)
	}
	if h.proc != 0 && !p.accepts(h.cred.Flavor) {
		return s.authErrorReply(h.xid, AuthTooWeak, info)
	}

	useDRC := s.drc != nil && p.nonIdempotent != nil && p.nonIdempotent(h.vers, h.proc)
	var key drcKey
	if useDRC {
		key = makeDRCKey(&h, ep.remote)
		state, cached, found := s.drc.begin(key)
		if found {
			if state == drcInProgress {
				s.logger.Debug("rpc retransmission dropped: original still in progress",
					"remote", addrString(ep.remote), "xid", h.xid, "prog", h.prog, "proc", h.proc)
				info.Outcome = Dropped
				return nil
			}
			info.Outcome = Replayed
			reply := getBuffer(markSize + len(cached))[:markSize]
			return append(reply, cached...)
		}
	}

	results, herr := s.callHandler(p, &call)
	info.Err = herr
	var reply []byte
	if errors.Is(herr, ErrNoReply) {
		info.Outcome = Dropped
	} else {
		reply = s.handlerReply(p, &call, results, herr, info, pl)
	}
	if useDRC {
		if reply == nil {
			s.drc.abandon(key)
		} else {
			reply = flatten(reply, pl)
			s.drc.finish(key, reply[markSize:])
		}
	}
	return reply
}

// callHandler runs the handler. A panic is logged with its stack and
// answered with SYSTEM_ERR, as net/http does for its handlers, so that
// one bad call does not bring down every client of the gateway.
func (s *Server) callHandler(p *program, call *Call) (results io.WriterTo, err error) {
	defer func() {
		if v := recover(); v != nil {
			s.logger.Error("rpc handler panicked; answering SYSTEM_ERR",
				"prog", call.Prog, "vers", call.Vers, "proc", call.Proc,
				"remote", addrString(call.RemoteAddr), "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			results, err = nil, fmt.Errorf("%w: handler panicked: %v", SystemErr, v)
		}
	}()
	return p.handler.ServeRPC(s.ctx, call)
}

// handlerReply encodes the reply for what the handler returned.
func (s *Server) handlerReply(p *program, call *Call, results io.WriterTo, herr error, info *CallInfo, pl *payload) []byte {
	if herr != nil {
		var auth AuthStat
		var stat AcceptStat
		switch {
		case errors.As(herr, &auth) && auth != AuthOK:
			return s.authErrorReply(call.XID, auth, info)
		case errors.As(herr, &stat) && stat != Success:
			if stat == ProgMismatch {
				low, high := s.versionRange(p.prog)
				return s.acceptedReply(call.XID, ProgMismatch, low, high, info)
			}
			if stat == SystemErr {
				s.logger.Warn("rpc call failed", "prog", call.Prog, "vers", call.Vers, "proc", call.Proc,
					"remote", addrString(call.RemoteAddr), "err", herr)
			}
			return s.acceptedReply(call.XID, stat, 0, 0, info)
		default:
			s.logger.Warn("rpc call failed; answering SYSTEM_ERR", "prog", call.Prog, "vers", call.Vers,
				"proc", call.Proc, "remote", addrString(call.RemoteAddr), "err", herr)
			return s.acceptedReply(call.XID, SystemErr, 0, 0, info)
		}
	}
	w := newReplyWriter()
	w.pl = pl
	w.b = appendSuccessHeader(w.b, call.XID)
	if results != nil {
		if _, err := results.WriteTo(w); err != nil {
			// The handler built results that cannot be encoded (a string
			// over its bound, say): a bug, answered as a server error.
			putBuffer(w.b)
			pl.free()
			s.logger.Error("rpc results could not be encoded; answering SYSTEM_ERR",
				"prog", call.Prog, "vers", call.Vers, "proc", call.Proc, "err", err)
			info.Err = err
			return s.acceptedReply(call.XID, SystemErr, 0, 0, info)
		}
	}
	info.Outcome, info.Stat = Replied, Success
	return w.b
}

func (s *Server) acceptedReply(xid uint32, stat AcceptStat, low, high uint32, info *CallInfo) []byte {
	w := newReplyWriter()
	if err := encodeAccepted(w, xid, stat, low, high); err != nil {
		panic(fmt.Sprintf("oncrpc: encoding a fixed reply header failed: %v", err))
	}
	info.Outcome, info.Stat = Replied, stat
	return w.b
}

func (s *Server) rpcMismatchReply(xid uint32, info *CallInfo) []byte {
	w := newReplyWriter()
	if err := encodeRPCMismatch(w, xid); err != nil {
		panic(fmt.Sprintf("oncrpc: encoding a fixed reply header failed: %v", err))
	}
	info.Outcome, info.Auth = Denied, AuthOK
	return w.b
}

func (s *Server) authErrorReply(xid uint32, stat AuthStat, info *CallInfo) []byte {
	w := newReplyWriter()
	if err := encodeAuthError(w, xid, stat); err != nil {
		panic(fmt.Sprintf("oncrpc: encoding a fixed reply header failed: %v", err))
	}
	info.Outcome, info.Auth = Denied, stat
	return w.b
}

// replyWriter accumulates a reply record in a pooled buffer, leaving
// room for the record mark in front.
type replyWriter struct {
	b []byte
	// pl, when not nil, may take a payload (PayloadWriter); bytes written
	// after it go to its tail.
	pl *payload
}

func newReplyWriter() *replyWriter {
	return &replyWriter{b: getBuffer(512)[:markSize]}
}

// WritePayload implements PayloadWriter.
func (w *replyWriter) WritePayload(p []byte, release func()) {
	if w.pl == nil || w.pl.data != nil || len(p) == 0 {
		w.Write(p)
		if release != nil {
			release()
		}
		return
	}
	w.pl.data, w.pl.release = p, release
}

func (w *replyWriter) Write(p []byte) (int, error) {
	if w.pl != nil && w.pl.data != nil {
		w.pl.tail = append(w.pl.tail, p...)
		return len(p), nil
	}
	need := len(w.b) + len(p)
	if need > cap(w.b) {
		nb := getBuffer(max(need, 2*cap(w.b)))[:len(w.b)]
		copy(nb, w.b)
		putBuffer(w.b)
		w.b = nb
	}
	w.b = append(w.b, p...)
	return len(p), nil
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}
