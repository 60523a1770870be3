// Package nlm is the NFSv3 locking side-band: the Network Lock Manager
// (NLM, program 100021 version 4) and the Network Status Monitor (NSM,
// program 100024 version 1), on the core's lock table.
//
// NLM locks are POSIX locks of the table, owned by
// lock.Owner{Client: "nlm:"+caller_name, ID: oh, PID: svid}, so that they
// conflict with NFSv4 and SMB locks on the same files. A blocking LOCK that
// cannot be granted at once is queued in the table; when the table grants
// it, the client is told with an NLM4_GRANTED call to the lock manager it
// registered with its port mapper; a client that cannot be reached has the
// lock taken back. The asynchronous _MSG procedures answer with the
// matching _RES call to the client. An SM_NOTIFY (a client host restarted)
// and FREE_ALL release everything that host held.
//
// The package owns the mapping of NLM and NSM requests to the lock table
// and their wire answers. File handles are opaque to it: the front-end
// that issued them resolves them (Config.Resolve). It keeps no state of its
// own across restarts; lock state lives in the table, which is in memory.
package nlm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/claudefs/cfs-gateway/internal/core/lock"
	"github.com/claudefs/cfs-gateway/internal/metrics"
	"github.com/claudefs/cfs-gateway/internal/protocol/oncrpc"
	"github.com/claudefs/cfs-gateway/internal/protocol/xdr/nlmv4"
	"github.com/claudefs/cfs-gateway/internal/protocol/xdr/nsmv1"
)

// Program numbers and versions served.
const (
	Program    = nlmv4.NLM_PROG
	Version    = nlmv4.NLM4_VERS
	NSMProgram = nsmv1.SM_PROG
	NSMVersion = nsmv1.SM_VERS
)

// ClientPrefix starts the lock.Owner.Client of every NLM lock.
const ClientPrefix = "nlm:"

// Errors a Resolve function returns for the answers they stand for.
var (
	// ErrStale: the handle names no file (NLM4_STALE_FH).
	ErrStale = errors.New("nlm: stale file handle")
	// ErrDenied: the client may not use the file's export (NLM4_DENIED).
	ErrDenied = errors.New("nlm: client not allowed")
)

// ResolveFunc maps the file handle of an NLM request to the lock table's
// file, checking that the calling client may use it.
type ResolveFunc func(ctx context.Context, call *oncrpc.Call, fh []byte) (lock.FileID, error)

// DialFunc connects to the NLM service of the client at addr, for the
// GRANTED and _RES callbacks.
type DialFunc func(ctx context.Context, addr netip.Addr) (*oncrpc.Client, error)

// Config configures a Service.
type Config struct {
	Locks   *lock.Manager // required
	Resolve ResolveFunc   // required
	Logger  *slog.Logger
	Metrics *metrics.Metrics
	// Dial reaches a client's lock manager; nil asks the port mapper on
	// the client's port 111 for NLM version 4 over TCP.
	Dial DialFunc
	// CallbackTimeout bounds one callback attempt [10 s].
	CallbackTimeout time.Duration
	// CallbackAttempts is how often a GRANTED callback is tried before
	// the lock is taken back [3].
	CallbackAttempts int
	// CallbackBackoff is the wait before the first retry, doubled after
	// each [1 s].
	CallbackBackoff time.Duration
}

// Service serves NLM and NSM.
type Service struct {
	cfg   Config
	locks *lock.Manager
	log   *slog.Logger
	ops   map[string]*metrics.OpMetrics

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	shares   map[shareKey]lock.ShareHandle
	monitors map[monitorKey]nsmv1.Mon
	// callers are the caller names that took locks or shares, so that a
	// reboot notification finds the names a host used.
	callers map[string]struct{}
	state   int32 // NSM state number: odd while up
	cookie  uint64
	closed  bool
}

type shareKey struct {
	file   lock.FileID
	client string
	oh     string
}

type monitorKey struct {
	monName, myName    string
	prog, vers, procID int32
}

// New returns a service over cfg.Locks.
func New(cfg Config) *Service {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Dial == nil {
		cfg.Dial = DialPortmapped
	}
	if cfg.CallbackTimeout <= 0 {
		cfg.CallbackTimeout = 10 * time.Second
	}
	if cfg.CallbackAttempts <= 0 {
		cfg.CallbackAttempts = 3
	}
	if cfg.CallbackBackoff <= 0 {
		cfg.CallbackBackoff = time.Second
	}
	s := &Service{
		cfg:      cfg,
		locks:    cfg.Locks,
		log:      cfg.Logger,
		ops:      map[string]*metrics.OpMetrics{},
		shares:   map[shareKey]lock.ShareHandle{},
		monitors: map[monitorKey]nsmv1.Mon{},
		callers:  map[string]struct{}{},
		// The state number only has to grow across restarts and be odd
		// while the monitor runs; the clock gives both.
		state: int32(time.Now().Unix()&math.MaxInt32) | 1,
	}
	for _, n := range nlmProcNames {
		if n != "" {
			s.ops[n] = cfg.Metrics.Op("nlm", n)
		}
	}
	for _, n := range nsmProcNames {
		s.ops["SM_"+n] = cfg.Metrics.Op("nsm", n)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s
}

// Register serves NLM version 4 and NSM version 1 on srv.
func (s *Service) Register(srv *oncrpc.Server) error {
	if err := srv.Register(Program, Version, Version, s.NLMHandler()); err != nil {
		return fmt.Errorf("nlm: %w", err)
	}
	if err := srv.Register(NSMProgram, NSMVersion, NSMVersion, s.NSMHandler()); err != nil {
		return fmt.Errorf("nlm: %w", err)
	}
	return nil
}

// NLMHandler and NSMHandler serve the two programs, for a caller that
// registers them itself.
func (s *Service) NLMHandler() oncrpc.Handler { return oncrpc.HandlerFunc(s.serveNLM) }

// NSMHandler serves the status monitor program.
func (s *Service) NSMHandler() oncrpc.Handler { return oncrpc.HandlerFunc(s.serveNSM) }

// Close stops the callbacks in progress; locks they were delivering are
// taken back.
func (s *Service) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
}

// background runs fn on its own goroutine unless the service is closed,
// in which case it runs closed instead.
func (s *Service) background(fn, closed func()) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		if closed != nil {
			closed()
		}
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		fn()
	}()
}

// State is the current NSM state number.
func (s *Service) State() int32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

var nlmProcNames = [nlmv4.NLMPROC4_FREE_ALL + 1]string{
	nlmv4.NLMPROC4_NULL:        "NULL",
	nlmv4.NLMPROC4_TEST:        "TEST",
	nlmv4.NLMPROC4_LOCK:        "LOCK",
	nlmv4.NLMPROC4_CANCEL:      "CANCEL",
	nlmv4.NLMPROC4_UNLOCK:      "UNLOCK",
	nlmv4.NLMPROC4_GRANTED:     "GRANTED",
	nlmv4.NLMPROC4_TEST_MSG:    "TEST_MSG",
	nlmv4.NLMPROC4_LOCK_MSG:    "LOCK_MSG",
	nlmv4.NLMPROC4_CANCEL_MSG:  "CANCEL_MSG",
	nlmv4.NLMPROC4_UNLOCK_MSG:  "UNLOCK_MSG",
	nlmv4.NLMPROC4_GRANTED_MSG: "GRANTED_MSG",
	nlmv4.NLMPROC4_TEST_RES:    "TEST_RES",
	nlmv4.NLMPROC4_LOCK_RES:    "LOCK_RES",
	nlmv4.NLMPROC4_CANCEL_RES:  "CANCEL_RES",
	nlmv4.NLMPROC4_UNLOCK_RES:  "UNLOCK_RES",
	nlmv4.NLMPROC4_GRANTED_RES: "GRANTED_RES",
	nlmv4.NLMPROC4_SHARE:       "SHARE",
	nlmv4.NLMPROC4_UNSHARE:     "UNSHARE",
	nlmv4.NLMPROC4_NM_LOCK:     "NM_LOCK",
	nlmv4.NLMPROC4_FREE_ALL:    "FREE_ALL",
}

var statNames = map[nlmv4.Nlm4Stats]string{
	nlmv4.NLM4_GRANTED:             "ok",
	nlmv4.NLM4_DENIED:              "NLM4_DENIED",
	nlmv4.NLM4_DENIED_NOLOCKS:      "NLM4_DENIED_NOLOCKS",
	nlmv4.NLM4_BLOCKED:             "NLM4_BLOCKED",
	nlmv4.NLM4_DENIED_GRACE_PERIOD: "NLM4_DENIED_GRACE_PERIOD",
	nlmv4.NLM4_DEADLCK:             "NLM4_DEADLCK",
	nlmv4.NLM4_ROFS:                "NLM4_ROFS",
	nlmv4.NLM4_STALE_FH:            "NLM4_STALE_FH",
	nlmv4.NLM4_FBIG:                "NLM4_FBIG",
	nlmv4.NLM4_FAILED:              "NLM4_FAILED",
}

// serveNLM is the oncrpc handler of the NLM program.
func (s *Service) serveNLM(ctx context.Context, call *oncrpc.Call) (io.WriterTo, error) {
	if call.Proc >= uint32(len(nlmProcNames)) || nlmProcNames[call.Proc] == "" {
		return nil, oncrpc.ProcUnavail
	}
	start := time.Now()
	res, stat, err := s.nlmProc(ctx, call)
	status := statNames[stat]
	if err != nil {
		status = "GARBAGE_ARGS"
	}
	s.ops[nlmProcNames[call.Proc]].Observe(start, status, 0, 0)
	return res, err
}

func (s *Service) nlmProc(ctx context.Context, call *oncrpc.Call) (io.WriterTo, nlmv4.Nlm4Stats, error) {
	switch call.Proc {
	case nlmv4.NLMPROC4_NULL:
		return nil, nlmv4.NLM4_GRANTED, nil
	case nlmv4.NLMPROC4_TEST, nlmv4.NLMPROC4_TEST_MSG:
		var args nlmv4.Nlm4Testargs
		if err := call.DecodeArgs(&args); err != nil {
			return nil, 0, err
		}
		res := s.test(ctx, call, &args)
		return s.answer(call, nlmv4.NLMPROC4_TEST_RES, res, testStat(res))
	case nlmv4.NLMPROC4_LOCK, nlmv4.NLMPROC4_LOCK_MSG, nlmv4.NLMPROC4_NM_LOCK:
		var args nlmv4.Nlm4Lockargs
		if err := call.DecodeArgs(&args); err != nil {
			return nil, 0, err
		}
		if call.Proc == nlmv4.NLMPROC4_NM_LOCK {
			args.Block = false
		}
		res := &nlmv4.Nlm4Res{Cookie: args.Cookie, Stat: nlmv4.Nlm4Stat{Stat: s.lock(ctx, call, &args)}}
		return s.answer(call, nlmv4.NLMPROC4_LOCK_RES, res, res.Stat.Stat)
	case nlmv4.NLMPROC4_CANCEL, nlmv4.NLMPROC4_CANCEL_MSG:
		var args nlmv4.Nlm4Cancargs
		if err := call.DecodeArgs(&args); err != nil {
			return nil, 0, err
		}
		res := &nlmv4.Nlm4Res{Cookie: args.Cookie, Stat: nlmv4.Nlm4Stat{Stat: s.cancelLock(ctx, call, &args)}}
		return s.answer(call, nlmv4.NLMPROC4_CANCEL_RES, res, res.Stat.Stat)
	case nlmv4.NLMPROC4_UNLOCK, nlmv4.NLMPROC4_UNLOCK_MSG:
		var args nlmv4.Nlm4Unlockargs
		if err := call.DecodeArgs(&args); err != nil {
			return nil, 0, err
		}
		res := &nlmv4.Nlm4Res{Cookie: args.Cookie, Stat: nlmv4.Nlm4Stat{Stat: s.unlock(ctx, call, &args)}}
		return s.answer(call, nlmv4.NLMPROC4_UNLOCK_RES, res, res.Stat.Stat)
	case nlmv4.NLMPROC4_GRANTED, nlmv4.NLMPROC4_GRANTED_MSG:
		// Only a server sends GRANTED; a client that sends it here has
		// nothing waiting for it.
		var args nlmv4.Nlm4Testargs
		if err := call.DecodeArgs(&args); err != nil {
			return nil, 0, err
		}
		res := &nlmv4.Nlm4Res{Cookie: args.Cookie, Stat: nlmv4.Nlm4Stat{Stat: nlmv4.NLM4_DENIED}}
		return s.answer(call, nlmv4.NLMPROC4_GRANTED_RES, res, res.Stat.Stat)
	case nlmv4.NLMPROC4_TEST_RES:
		var res nlmv4.Nlm4Testres
		return nil, nlmv4.NLM4_GRANTED, call.DecodeArgs(&res)
	case nlmv4.NLMPROC4_LOCK_RES, nlmv4.NLMPROC4_CANCEL_RES, nlmv4.NLMPROC4_UNLOCK_RES, nlmv4.NLMPROC4_GRANTED_RES:
		// Answers to callbacks this server sends synchronously: nothing
		// waits for them.
		var res nlmv4.Nlm4Res
		return nil, nlmv4.NLM4_GRANTED, call.DecodeArgs(&res)
	case nlmv4.NLMPROC4_SHARE, nlmv4.NLMPROC4_UNSHARE:
		var args nlmv4.Nlm4Shareargs
		if err := call.DecodeArgs(&args); err != nil {
			return nil, 0, err
		}
		var stat nlmv4.Nlm4Stats
		if call.Proc == nlmv4.NLMPROC4_SHARE {
			stat = s.share(ctx, call, &args.Share)
		} else {
			stat = s.unshare(ctx, call, &args.Share)
		}
		return &nlmv4.Nlm4Shareres{Cookie: args.Cookie, Stat: stat}, stat, nil
	case nlmv4.NLMPROC4_FREE_ALL:
		var args nlmv4.Nlm4Notify
		if err := call.DecodeArgs(&args); err != nil {
			return nil, 0, err
		}
		s.releaseHost(args.Name, netip.Addr{})
		return nil, nlmv4.NLM4_GRANTED, nil
	}
	return nil, 0, oncrpc.ProcUnavail
}

func testStat(res *nlmv4.Nlm4Testres) nlmv4.Nlm4Stats { return res.TestStat.GetStat() }

// answer returns res as the reply of a synchronous procedure, or, for a
// _MSG procedure, sends it to the client's resProc and replies with void.
func (s *Service) answer(call *oncrpc.Call, resProc uint32, res io.WriterTo, stat nlmv4.Nlm4Stats) (io.WriterTo, nlmv4.Nlm4Stats, error) {
	switch call.Proc {
	case nlmv4.NLMPROC4_TEST_MSG, nlmv4.NLMPROC4_LOCK_MSG, nlmv4.NLMPROC4_CANCEL_MSG,
		nlmv4.NLMPROC4_UNLOCK_MSG, nlmv4.NLMPROC4_GRANTED_MSG:
		addr := remoteAddr(call)
		s.background(func() {
			if err := s.callClient(s.ctx, addr, resProc, res, nil); err != nil {
				s.log.Info("NLM result callback not delivered", "client", addr.String(), "proc", nlmProcNames[resProc], "err", err)
			}
		}, nil)
		return nil, stat, nil
	}
	return res, stat, nil
}

// owner is the lock table owner of an NLM lock.
func owner(l *nlmv4.Nlm4Lock) lock.Owner {
	return lock.Owner{Client: ClientPrefix + l.CallerName, ID: string(l.Oh), PID: uint32(l.Svid)}
}

// tableLock converts an NLM lock to the table's; ok is false for a range
// the table cannot hold.
func tableLock(l *nlmv4.Nlm4Lock, exclusive bool) (lock.Lock, bool) {
	start, end := l.LOffset, lock.ToEOF
	if l.LLen != 0 {
		end = start + l.LLen
		if end < start {
			// Past the largest offset: up to the end of any file.
			end = lock.ToEOF
		}
	}
	if start >= end {
		return lock.Lock{}, false
	}
	return lock.Lock{Owner: owner(l), Flavor: lock.POSIX, Exclusive: exclusive, Start: start, End: end}, true
}

// resolve maps an NLM file handle, answering failures with their status.
func (s *Service) resolve(ctx context.Context, call *oncrpc.Call, fh []byte) (lock.FileID, nlmv4.Nlm4Stats) {
	file, err := s.cfg.Resolve(ctx, call, fh)
	switch {
	case err == nil:
		return file, nlmv4.NLM4_GRANTED
	case errors.Is(err, ErrStale):
		return 0, nlmv4.NLM4_STALE_FH
	case errors.Is(err, ErrDenied):
		return 0, nlmv4.NLM4_DENIED
	}
	s.log.Warn("NLM request failed: file handle not resolved", "client", remoteAddr(call).String(), "err", err)
	return 0, nlmv4.NLM4_FAILED
}

func (s *Service) test(ctx context.Context, call *oncrpc.Call, args *nlmv4.Nlm4Testargs) *nlmv4.Nlm4Testres {
	res := &nlmv4.Nlm4Testres{Cookie: args.Cookie}
	file, st := s.resolve(ctx, call, args.Alock.Fh)
	if st != nlmv4.NLM4_GRANTED {
		res.TestStat = &nlmv4.Nlm4Testrply_default{Stat: st}
		return res
	}
	l, ok := tableLock(&args.Alock, args.Exclusive)
	if !ok {
		res.TestStat = &nlmv4.Nlm4Testrply_default{Stat: nlmv4.NLM4_FAILED}
		return res
	}
	held, conflict, err := s.locks.Test(file, l)
	switch {
	case err != nil:
		res.TestStat = &nlmv4.Nlm4Testrply_default{Stat: nlmv4.NLM4_FAILED}
	case conflict:
		res.TestStat = &nlmv4.Nlm4Testrply_NLM4_DENIED{Holder: holder(held)}
	default:
		res.TestStat = &nlmv4.Nlm4Testrply_default{Stat: nlmv4.NLM4_GRANTED}
	}
	return res
}

// holder describes a held lock to an NLM client. Locks of other protocols
// have no svid; their owner's client name stands in for the owner handle.
func holder(l lock.Lock) nlmv4.Nlm4Holder {
	h := nlmv4.Nlm4Holder{Exclusive: l.Exclusive, LOffset: l.Start}
	if l.End != lock.ToEOF {
		h.LLen = l.End - l.Start
	}
	oh := l.Owner.ID
	if !strings.HasPrefix(l.Owner.Client, ClientPrefix) {
		oh = l.Owner.Client
	} else {
		h.Svid = int32(l.Owner.PID)
	}
	if len(oh) > nlmv4.MAXNETOBJ_SZ {
		oh = oh[:nlmv4.MAXNETOBJ_SZ]
	}
	h.Oh = []byte(oh)
	return h
}

func (s *Service) lock(ctx context.Context, call *oncrpc.Call, args *nlmv4.Nlm4Lockargs) nlmv4.Nlm4Stats {
	file, st := s.resolve(ctx, call, args.Alock.Fh)
	if st != nlmv4.NLM4_GRANTED {
		return st
	}
	l, ok := tableLock(&args.Alock, args.Exclusive)
	if !ok {
		return nlmv4.NLM4_FAILED
	}
	s.noteCaller(args.Alock.CallerName)
	if !args.Block {
		err := s.locks.Lock(ctx, file, l, false)
		switch {
		case err == nil:
			return nlmv4.NLM4_GRANTED
		case errors.Is(err, lock.ErrConflict):
			return nlmv4.NLM4_DENIED
		}
		return nlmv4.NLM4_FAILED
	}
	addr := remoteAddr(call)
	grant := nlmv4.Nlm4Testargs{Exclusive: args.Exclusive, Alock: args.Alock}
	queued, err := s.locks.LockOrQueue(file, l, func(f lock.FileID, granted lock.Lock) {
		s.background(func() { s.deliverGrant(addr, f, granted, grant) }, func() {
			// Nobody will tell the client: the lock must not stay held.
			s.locks.Unlock(f, granted)
		})
	})
	switch {
	case err != nil:
		return nlmv4.NLM4_FAILED
	case queued:
		return nlmv4.NLM4_BLOCKED
	}
	return nlmv4.NLM4_GRANTED
}

// deliverGrant tells the client that its queued lock is now held. A client
// that does not take it within the attempts has it taken back: it would
// otherwise block every other owner for good.
func (s *Service) deliverGrant(addr netip.Addr, file lock.FileID, granted lock.Lock, args nlmv4.Nlm4Testargs) {
	args.Cookie = s.nextCookie()
	backoff := s.cfg.CallbackBackoff
	var err error
	for attempt := 0; attempt < s.cfg.CallbackAttempts; attempt++ {
		if attempt > 0 {
			select {
			case <-time.After(backoff):
			case <-s.ctx.Done():
			}
			backoff *= 2
		}
		if s.ctx.Err() != nil {
			err = s.ctx.Err()
			break
		}
		var res nlmv4.Nlm4Res
		err = s.callClient(s.ctx, addr, nlmv4.NLMPROC4_GRANTED, &args, &res)
		if err == nil {
			if res.Stat.Stat == nlmv4.NLM4_GRANTED {
				return
			}
			err = fmt.Errorf("client answered %s", statNames[res.Stat.Stat])
			break
		}
	}
	if uerr := s.locks.Unlock(file, granted); uerr != nil {
		s.log.Error("taking back an undelivered NLM lock failed", "file", uint64(file), "lock", granted.String(), "err", uerr)
	}
	s.log.Warn("NLM lock granted after waiting could not be delivered; released it",
		"client", addr.String(), "caller", args.Alock.CallerName, "file", uint64(file), "err", err)
}

func (s *Service) nextCookie() []byte {
	s.mu.Lock()
	s.cookie++
	c := s.cookie
	s.mu.Unlock()
	b := make([]byte, 8)
	for i := 7; i >= 0; i-- {
		b[i] = byte(c)
		c >>= 8
	}
	return b
}

func (s *Service) cancelLock(ctx context.Context, call *oncrpc.Call, args *nlmv4.Nlm4Cancargs) nlmv4.Nlm4Stats {
	file, st := s.resolve(ctx, call, args.Alock.Fh)
	if st != nlmv4.NLM4_GRANTED {
		return st
	}
	l, ok := tableLock(&args.Alock, args.Exclusive)
	if !ok {
		return nlmv4.NLM4_FAILED
	}
	if s.locks.Cancel(file, l) {
		return nlmv4.NLM4_GRANTED
	}
	return nlmv4.NLM4_DENIED
}

func (s *Service) unlock(ctx context.Context, call *oncrpc.Call, args *nlmv4.Nlm4Unlockargs) nlmv4.Nlm4Stats {
	file, st := s.resolve(ctx, call, args.Alock.Fh)
	if st != nlmv4.NLM4_GRANTED {
		return st
	}
	l, ok := tableLock(&args.Alock, false)
	if !ok {
		return nlmv4.NLM4_FAILED
	}
	if err := s.locks.Unlock(file, l); err != nil {
		return nlmv4.NLM4_FAILED
	}
	return nlmv4.NLM4_GRANTED
}

// shareMasks converts a DOS share request: fsh4_access is what the opener
// does, fsh4_mode what it denies others.
func shareMasks(sh *nlmv4.Nlm4Share) (access, deny lock.OpenAccess, ok bool) {
	switch sh.Access {
	case nlmv4.FSA_NONE:
	case nlmv4.FSA_R:
		access = lock.OpenRead
	case nlmv4.FSA_W:
		access = lock.OpenWrite
	case nlmv4.FSA_RW:
		access = lock.OpenRead | lock.OpenWrite
	default:
		return 0, 0, false
	}
	switch sh.Mode {
	case nlmv4.FSM_DN:
	case nlmv4.FSM_DR:
		deny = lock.OpenRead
	case nlmv4.FSM_DW:
		deny = lock.OpenWrite
	case nlmv4.FSM_DRW:
		deny = lock.OpenRead | lock.OpenWrite
	default:
		return 0, 0, false
	}
	return access, deny, true
}

func (s *Service) share(ctx context.Context, call *oncrpc.Call, sh *nlmv4.Nlm4Share) nlmv4.Nlm4Stats {
	file, st := s.resolve(ctx, call, sh.Fh)
	if st != nlmv4.NLM4_GRANTED {
		return st
	}
	access, deny, ok := shareMasks(sh)
	if !ok {
		return nlmv4.NLM4_FAILED
	}
	key := shareKey{file: file, client: ClientPrefix + sh.CallerName, oh: string(sh.Oh)}
	s.noteCaller(sh.CallerName)
	s.mu.Lock()
	defer s.mu.Unlock()
	if h, ok := s.shares[key]; ok {
		// A repeated SHARE of the same owner changes its reservation.
		if err := s.locks.ChangeShare(h, access, deny); err != nil {
			if errors.Is(err, lock.ErrShareConflict) {
				return nlmv4.NLM4_DENIED
			}
			delete(s.shares, key)
		} else {
			return nlmv4.NLM4_GRANTED
		}
	}
	h, err := s.locks.OpenShare(file, lock.ShareRequest{
		Owner:  lock.Owner{Client: key.client, ID: key.oh},
		Access: access,
		Deny:   deny,
	})
	switch {
	case err == nil:
		s.shares[key] = h
		return nlmv4.NLM4_GRANTED
	case errors.Is(err, lock.ErrShareConflict):
		return nlmv4.NLM4_DENIED
	}
	return nlmv4.NLM4_FAILED
}

func (s *Service) unshare(ctx context.Context, call *oncrpc.Call, sh *nlmv4.Nlm4Share) nlmv4.Nlm4Stats {
	file, st := s.resolve(ctx, call, sh.Fh)
	if st != nlmv4.NLM4_GRANTED {
		return st
	}
	key := shareKey{file: file, client: ClientPrefix + sh.CallerName, oh: string(sh.Oh)}
	s.mu.Lock()
	h, ok := s.shares[key]
	delete(s.shares, key)
	s.mu.Unlock()
	if ok {
		s.locks.CloseShare(h)
	}
	return nlmv4.NLM4_GRANTED
}

// releaseHost drops every lock, queued request and share of the NLM
// client called name (case-insensitively, and also when only one of the
// two names is qualified with a domain), and of callers that named
// themselves by the IP address addr.
func (s *Service) releaseHost(name string, addr netip.Addr) {
	victims := []string{name}
	s.mu.Lock()
	for c := range s.callers {
		if c != name && matchesHost(c, name, addr) {
			victims = append(victims, c)
		}
	}
	for _, c := range victims {
		delete(s.callers, c)
	}
	for k := range s.shares {
		if slices.Contains(victims, strings.TrimPrefix(k.client, ClientPrefix)) {
			delete(s.shares, k)
		}
	}
	s.mu.Unlock()
	for _, c := range victims {
		r := s.locks.ReleaseClient(ClientPrefix + c)
		if r != (lock.Released{}) {
			s.log.Info("released the NLM state of a restarted client", "caller", c,
				"locks", r.Locks, "waiters", r.Waiters, "shares", r.Shares)
		}
	}
}

// maxCallers bounds the caller names remembered; past it, reboot
// notifications only match the exact name.
const maxCallers = 1 << 16

// noteCaller remembers a caller name that holds state.
func (s *Service) noteCaller(name string) {
	s.mu.Lock()
	if len(s.callers) < maxCallers {
		s.callers[name] = struct{}{}
	}
	s.mu.Unlock()
}

func matchesHost(caller, name string, addr netip.Addr) bool {
	if caller == "" {
		return false
	}
	if name != "" && (strings.EqualFold(caller, name) || strings.EqualFold(shortName(caller), shortName(name))) {
		return true
	}
	if a, err := netip.ParseAddr(caller); err == nil && addr.IsValid() && a.Unmap() == addr {
		return true
	}
	return false
}

func shortName(h string) string {
	if _, err := netip.ParseAddr(h); err == nil {
		return h
	}
	if i := strings.IndexByte(h, '.'); i > 0 {
		return h[:i]
	}
	return h
}

// remoteAddr is the IP address of a call's client.
func remoteAddr(call *oncrpc.Call) netip.Addr {
	switch a := call.RemoteAddr.(type) {
	case *net.TCPAddr:
		ip, _ := netip.AddrFromSlice(a.IP)
		return ip.Unmap()
	case *net.UDPAddr:
		ip, _ := netip.AddrFromSlice(a.IP)
		return ip.Unmap()
	}
	if call.RemoteAddr == nil {
		return netip.Addr{}
	}
	ap, err := netip.ParseAddrPort(call.RemoteAddr.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}
