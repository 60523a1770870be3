package nlm

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/claudefs/cfs-gateway/internal/core/lock"
	"github.com/claudefs/cfs-gateway/internal/protocol/oncrpc"
	"github.com/claudefs/cfs-gateway/internal/protocol/xdr/nlmv4"
	"github.com/claudefs/cfs-gateway/internal/protocol/xdr/nsmv1"
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// fakeClient is a client host's lock manager: it records the callbacks the
// server sends and answers GRANTED with grantAnswer.
type fakeClient struct {
	mu          sync.Mutex
	granted     []nlmv4.Nlm4Testargs
	results     map[uint32][]nlmv4.Nlm4Res
	grantAnswer nlmv4.Nlm4Stats
	arrived     chan uint32
	addr        string
}

func startFakeClient(t *testing.T) *fakeClient {
	t.Helper()
	fc := &fakeClient{results: map[uint32][]nlmv4.Nlm4Res{}, arrived: make(chan uint32, 16)}
	srv := oncrpc.NewServer(oncrpc.Config{Logger: quietLogger()})
	err := srv.Register(Program, Version, Version, oncrpc.HandlerFunc(func(ctx context.Context, call *oncrpc.Call) (io.WriterTo, error) {
		switch call.Proc {
		case nlmv4.NLMPROC4_GRANTED:
			var args nlmv4.Nlm4Testargs
			if err := call.DecodeArgs(&args); err != nil {
				return nil, err
			}
			fc.mu.Lock()
			fc.granted = append(fc.granted, args)
			answer := fc.grantAnswer
			fc.mu.Unlock()
			fc.arrived <- call.Proc
			return &nlmv4.Nlm4Res{Cookie: args.Cookie, Stat: nlmv4.Nlm4Stat{Stat: answer}}, nil
		case nlmv4.NLMPROC4_LOCK_RES, nlmv4.NLMPROC4_UNLOCK_RES, nlmv4.NLMPROC4_CANCEL_RES:
			var res nlmv4.Nlm4Res
			if err := call.DecodeArgs(&res); err != nil {
				return nil, err
			}
			fc.mu.Lock()
			fc.results[call.Proc] = append(fc.results[call.Proc], res)
			fc.mu.Unlock()
			fc.arrived <- call.Proc
			return nil, nil
		}
		return nil, oncrpc.ProcUnavail
	}))
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fc.addr = l.Addr().String()
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return fc
}

func (fc *fakeClient) wait(t *testing.T, proc uint32) {
	t.Helper()
	select {
	case got := <-fc.arrived:
		if got != proc {
			t.Fatalf("callback %s arrived, want %s", nlmProcNames[got], nlmProcNames[proc])
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("callback %s never arrived", nlmProcNames[proc])
	}
}

type fixture struct {
	t      *testing.T
	svc    *Service
	locks  *lock.Manager
	client *oncrpc.Client
	fake   *fakeClient
}

// Handles the fake resolver knows.
var (
	fhA      = []byte("file-a")
	fhB      = []byte("file-b")
	fhStale  = []byte("stale")
	fhDenied = []byte("denied")
)

func newFixture(t *testing.T, tweak func(*Config)) *fixture {
	t.Helper()
	fake := startFakeClient(t)
	locks := lock.New(lock.Options{Logger: quietLogger()})
	cfg := Config{
		Locks:  locks,
		Logger: quietLogger(),
		Resolve: func(ctx context.Context, call *oncrpc.Call, fh []byte) (lock.FileID, error) {
			switch string(fh) {
			case string(fhA):
				return 1, nil
			case string(fhB):
				return 2, nil
			case string(fhDenied):
				return 0, ErrDenied
			}
			return 0, ErrStale
		},
		Dial: func(ctx context.Context, addr netip.Addr) (*oncrpc.Client, error) {
			return oncrpc.Dial(ctx, "tcp", fake.addr, oncrpc.WithClientLogger(quietLogger()))
		},
		CallbackBackoff: time.Millisecond,
	}
	if tweak != nil {
		tweak(&cfg)
	}
	svc := New(cfg)
	srv := oncrpc.NewServer(oncrpc.Config{Logger: quietLogger()})
	if err := svc.Register(srv); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	c, err := oncrpc.Dial(context.Background(), "tcp", l.Addr().String(), oncrpc.WithClientLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		srv.Close()
		svc.Close()
	})
	return &fixture{t: t, svc: svc, locks: locks, client: c, fake: fake}
}

func (f *fixture) call(proc uint32, args io.WriterTo, res io.ReaderFrom) {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.client.Call(ctx, Program, Version, proc, args, res); err != nil {
		f.t.Fatalf("NLM %s: %v", nlmProcNames[proc], err)
	}
}

// alock is a lock of caller host, owner oh and svid over [off, off+n).
func alock(host string, svid int32, fh []byte, off, n uint64) nlmv4.Nlm4Lock {
	return nlmv4.Nlm4Lock{CallerName: host, Fh: fh, Oh: []byte(host + "-owner"), Svid: svid, LOffset: off, LLen: n}
}

func (f *fixture) lock(l nlmv4.Nlm4Lock, exclusive, block bool) nlmv4.Nlm4Stats {
	f.t.Helper()
	var res nlmv4.Nlm4Res
	f.call(nlmv4.NLMPROC4_LOCK, &nlmv4.Nlm4Lockargs{Cookie: []byte("c"), Block: block, Exclusive: exclusive, Alock: l, State: 1}, &res)
	if string(res.Cookie) != "c" {
		f.t.Errorf("cookie not echoed: %q", res.Cookie)
	}
	return res.Stat.Stat
}

func (f *fixture) unlock(l nlmv4.Nlm4Lock) nlmv4.Nlm4Stats {
	f.t.Helper()
	var res nlmv4.Nlm4Res
	f.call(nlmv4.NLMPROC4_UNLOCK, &nlmv4.Nlm4Unlockargs{Cookie: []byte("u"), Alock: l}, &res)
	return res.Stat.Stat
}

func (f *fixture) test(l nlmv4.Nlm4Lock, exclusive bool) nlmv4.Nlm4Testrply {
	f.t.Helper()
	var res nlmv4.Nlm4Testres
	f.call(nlmv4.NLMPROC4_TEST, &nlmv4.Nlm4Testargs{Cookie: []byte("t"), Exclusive: exclusive, Alock: l}, &res)
	return res.TestStat
}

func TestLockTestUnlock(t *testing.T) {
	f := newFixture(t, nil)
	a := alock("hosta", 10, fhA, 0, 100)
	b := alock("hostb", 20, fhA, 50, 10)
	steps := []struct {
		name string
		do   func() nlmv4.Nlm4Stats
		want nlmv4.Nlm4Stats
	}{
		{"A locks [0,100)", func() nlmv4.Nlm4Stats { return f.lock(a, true, false) }, nlmv4.NLM4_GRANTED},
		{"A locks again (same owner)", func() nlmv4.Nlm4Stats { return f.lock(a, true, false) }, nlmv4.NLM4_GRANTED},
		{"B tests [50,60)", func() nlmv4.Nlm4Stats { return f.test(b, true).GetStat() }, nlmv4.NLM4_DENIED},
		{"B locks without blocking", func() nlmv4.Nlm4Stats { return f.lock(b, true, false) }, nlmv4.NLM4_DENIED},
		{"B locks another file", func() nlmv4.Nlm4Stats { bb := b; bb.Fh = fhB; return f.lock(bb, true, false) }, nlmv4.NLM4_GRANTED},
		{"B locks past A's range", func() nlmv4.Nlm4Stats { bb := b; bb.LOffset = 100; return f.lock(bb, true, false) }, nlmv4.NLM4_GRANTED},
		{"A unlocks", func() nlmv4.Nlm4Stats { return f.unlock(a) }, nlmv4.NLM4_GRANTED},
		{"B locks", func() nlmv4.Nlm4Stats { return f.lock(b, true, false) }, nlmv4.NLM4_GRANTED},
		{"A shares [0,40) beside B", func() nlmv4.Nlm4Stats { aa := a; aa.LLen = 40; return f.lock(aa, false, false) }, nlmv4.NLM4_GRANTED},
		{"stale handle", func() nlmv4.Nlm4Stats { aa := a; aa.Fh = fhStale; return f.lock(aa, true, false) }, nlmv4.NLM4_STALE_FH},
		{"client not allowed", func() nlmv4.Nlm4Stats { aa := a; aa.Fh = fhDenied; return f.lock(aa, true, false) }, nlmv4.NLM4_DENIED},
		{"empty range at the largest offset", func() nlmv4.Nlm4Stats {
			aa := a
			aa.LOffset, aa.LLen = lock.ToEOF, 0
			return f.lock(aa, true, false)
		}, nlmv4.NLM4_FAILED},
	}
	for _, s := range steps {
		if got := s.do(); got != s.want {
			t.Fatalf("%s: %s, want %s", s.name, statNames[got], statNames[s.want])
		}
	}
	// TEST names the holder: B's exclusive lock over [50,60).
	rep, ok := f.test(alock("hostc", 30, fhA, 55, 1), false).(*nlmv4.Nlm4Testrply_NLM4_DENIED)
	if !ok {
		t.Fatal("TEST against B's lock not denied")
	}
	if h := rep.Holder; !h.Exclusive || h.Svid != 20 || string(h.Oh) != "hostb-owner" || h.LOffset != 50 || h.LLen != 10 {
		t.Errorf("holder %+v", h)
	}
}

func TestToEOFLocks(t *testing.T) {
	f := newFixture(t, nil)
	if st := f.lock(alock("hosta", 1, fhA, 1000, 0), true, false); st != nlmv4.NLM4_GRANTED {
		t.Fatal(statNames[st])
	}
	rep, ok := f.test(alock("hostb", 2, fhA, 1<<40, 1), true).(*nlmv4.Nlm4Testrply_NLM4_DENIED)
	if !ok || rep.Holder.LLen != 0 || rep.Holder.LOffset != 1000 {
		t.Fatalf("a lock to the end of file does not cover far offsets: %+v", rep)
	}
	// An offset and length that overflow reach the end of any file.
	if st := f.lock(alock("hostb", 2, fhB, 10, ^uint64(0)), true, false); st != nlmv4.NLM4_GRANTED {
		t.Fatal(statNames[st])
	}
	if f.test(alock("hostc", 3, fhB, 1<<62, 1), true).GetStat() != nlmv4.NLM4_DENIED {
		t.Error("overflowing range does not reach the end of the file")
	}
}

func TestBlockingLockGranted(t *testing.T) {
	f := newFixture(t, nil)
	a := alock("hosta", 1, fhA, 0, 0)
	b := alock("hostb", 2, fhA, 0, 10)
	f.lock(a, true, false)
	if st := f.lock(b, true, true); st != nlmv4.NLM4_BLOCKED {
		t.Fatalf("blocking LOCK behind a held lock = %s, want NLM4_BLOCKED", statNames[st])
	}
	// A retransmitted request is not queued twice.
	if st := f.lock(b, true, true); st != nlmv4.NLM4_BLOCKED {
		t.Fatalf("repeated blocking LOCK = %s", statNames[st])
	}
	f.unlock(a)
	f.fake.wait(t, nlmv4.NLMPROC4_GRANTED)
	f.fake.mu.Lock()
	got := f.fake.granted
	f.fake.mu.Unlock()
	if len(got) != 1 || !got[0].Exclusive || got[0].Alock.Svid != 2 || string(got[0].Alock.Fh) != string(fhA) || got[0].Alock.LLen != 10 {
		t.Fatalf("GRANTED callbacks %+v", got)
	}
	if f.test(alock("hostc", 3, fhA, 5, 1), false).GetStat() != nlmv4.NLM4_DENIED {
		t.Error("the granted lock is not held")
	}
}

func TestBlockingLockCancel(t *testing.T) {
	f := newFixture(t, nil)
	a := alock("hosta", 1, fhA, 0, 0)
	b := alock("hostb", 2, fhA, 0, 10)
	f.lock(a, true, false)
	f.lock(b, true, true)
	var res nlmv4.Nlm4Res
	f.call(nlmv4.NLMPROC4_CANCEL, &nlmv4.Nlm4Cancargs{Cookie: []byte("x"), Block: true, Exclusive: true, Alock: b}, &res)
	if res.Stat.Stat != nlmv4.NLM4_GRANTED {
		t.Fatalf("CANCEL of a queued lock = %s", statNames[res.Stat.Stat])
	}
	f.call(nlmv4.NLMPROC4_CANCEL, &nlmv4.Nlm4Cancargs{Cookie: []byte("x"), Block: true, Exclusive: true, Alock: b}, &res)
	if res.Stat.Stat != nlmv4.NLM4_DENIED {
		t.Fatalf("CANCEL of nothing queued = %s, want NLM4_DENIED", statNames[res.Stat.Stat])
	}
	if st := f.locks.Stats(); st.Waiters != 0 {
		t.Fatalf("%d waiters after CANCEL", st.Waiters)
	}
	f.unlock(a)
	if st := f.locks.Stats(); st.Locks != 0 {
		t.Fatalf("%d locks held after the only holder unlocked and the waiter canceled", st.Locks)
	}
}

func TestUndeliveredGrantIsTakenBack(t *testing.T) {
	f := newFixture(t, func(c *Config) {
		c.Dial = func(ctx context.Context, addr netip.Addr) (*oncrpc.Client, error) {
			return nil, errors.New("client unreachable")
		}
		c.CallbackAttempts = 2
	})
	a := alock("hosta", 1, fhA, 0, 0)
	f.lock(a, true, false)
	f.lock(alock("hostb", 2, fhA, 0, 10), true, true)
	f.unlock(a)
	deadline := time.Now().Add(10 * time.Second)
	for f.locks.Stats().Locks != 0 {
		if time.Now().After(deadline) {
			t.Fatal("a lock whose GRANTED callback failed is still held")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestGrantRefusedByClient(t *testing.T) {
	f := newFixture(t, nil)
	f.fake.grantAnswer = nlmv4.NLM4_DENIED
	a := alock("hosta", 1, fhA, 0, 0)
	f.lock(a, true, false)
	f.lock(alock("hostb", 2, fhA, 0, 10), true, true)
	f.unlock(a)
	f.fake.wait(t, nlmv4.NLMPROC4_GRANTED)
	deadline := time.Now().Add(10 * time.Second)
	for f.locks.Stats().Locks != 0 {
		if time.Now().After(deadline) {
			t.Fatal("a lock the client refused in GRANTED is still held")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestMsgProcedures(t *testing.T) {
	f := newFixture(t, nil)
	a := alock("hosta", 1, fhA, 0, 10)
	f.call(nlmv4.NLMPROC4_LOCK_MSG, &nlmv4.Nlm4Lockargs{Cookie: []byte("m1"), Exclusive: true, Alock: a}, nil)
	f.fake.wait(t, nlmv4.NLMPROC4_LOCK_RES)
	f.call(nlmv4.NLMPROC4_UNLOCK_MSG, &nlmv4.Nlm4Unlockargs{Cookie: []byte("m2"), Alock: a}, nil)
	f.fake.wait(t, nlmv4.NLMPROC4_UNLOCK_RES)
	f.fake.mu.Lock()
	defer f.fake.mu.Unlock()
	lr, ur := f.fake.results[nlmv4.NLMPROC4_LOCK_RES], f.fake.results[nlmv4.NLMPROC4_UNLOCK_RES]
	if len(lr) != 1 || string(lr[0].Cookie) != "m1" || lr[0].Stat.Stat != nlmv4.NLM4_GRANTED {
		t.Errorf("LOCK_RES %+v", lr)
	}
	if len(ur) != 1 || string(ur[0].Cookie) != "m2" || ur[0].Stat.Stat != nlmv4.NLM4_GRANTED {
		t.Errorf("UNLOCK_RES %+v", ur)
	}
}

func TestNotifyReleasesHost(t *testing.T) {
	for _, tc := range []struct {
		monName  string
		released bool
	}{
		{"hosta", true},
		{"HOSTA", true},
		{"hosta.example.com", true},
		{"hostab", false},
		{"", false},
	} {
		t.Run(tc.monName, func(t *testing.T) {
			f := newFixture(t, nil)
			f.lock(alock("hosta", 1, fhA, 0, 10), true, false)
			f.lock(alock("hosta", 1, fhA, 0, 10), true, true) // queued behind itself: granted
			f.lock(alock("hostb", 2, fhB, 0, 10), true, false)
			f.call(nlmv4.NLMPROC4_SHARE, &nlmv4.Nlm4Shareargs{Share: nlmv4.Nlm4Share{CallerName: "hosta", Fh: fhB, Oh: []byte("o"), Mode: nlmv4.FSM_DN, Access: nlmv4.FSA_R}}, &nlmv4.Nlm4Shareres{})
			f.client.Call(context.Background(), NSMProgram, NSMVersion, nsmv1.SM_NOTIFY, &nsmv1.StatChge{MonName: tc.monName, State: 3}, nil)
			st := f.locks.Stats()
			wantLocks, wantShares := 2, 1
			if tc.released {
				wantLocks, wantShares = 1, 0
			}
			if st.Locks != wantLocks || st.Shares != wantShares {
				t.Errorf("after SM_NOTIFY %q: %d locks and %d shares, want %d and %d", tc.monName, st.Locks, st.Shares, wantLocks, wantShares)
			}
		})
	}
}

func TestFreeAll(t *testing.T) {
	f := newFixture(t, nil)
	f.lock(alock("hosta", 1, fhA, 0, 10), true, false)
	f.lock(alock("hostb", 2, fhB, 0, 10), true, false)
	f.call(nlmv4.NLMPROC4_FREE_ALL, &nlmv4.Nlm4Notify{Name: "hosta", State: 5}, nil)
	if f.test(alock("hostc", 3, fhA, 0, 10), true).GetStat() != nlmv4.NLM4_GRANTED {
		t.Error("hosta's lock survived FREE_ALL")
	}
	if f.test(alock("hostc", 3, fhB, 0, 10), true).GetStat() != nlmv4.NLM4_DENIED {
		t.Error("hostb's lock was released by FREE_ALL of hosta")
	}
}

func TestShares(t *testing.T) {
	f := newFixture(t, nil)
	share := func(proc uint32, host string, mode nlmv4.Fsh4Mode, access nlmv4.Fsh4Access) nlmv4.Nlm4Stats {
		var res nlmv4.Nlm4Shareres
		f.call(proc, &nlmv4.Nlm4Shareargs{Cookie: []byte("s"), Share: nlmv4.Nlm4Share{CallerName: host, Fh: fhA, Oh: []byte(host), Mode: mode, Access: access}}, &res)
		return res.Stat
	}
	for _, s := range []struct {
		name   string
		proc   uint32
		host   string
		mode   nlmv4.Fsh4Mode
		access nlmv4.Fsh4Access
		want   nlmv4.Nlm4Stats
	}{
		{"A reads, denies writers", nlmv4.NLMPROC4_SHARE, "a", nlmv4.FSM_DW, nlmv4.FSA_R, nlmv4.NLM4_GRANTED},
		{"B writes", nlmv4.NLMPROC4_SHARE, "b", nlmv4.FSM_DN, nlmv4.FSA_W, nlmv4.NLM4_DENIED},
		{"B reads", nlmv4.NLMPROC4_SHARE, "b", nlmv4.FSM_DN, nlmv4.FSA_R, nlmv4.NLM4_GRANTED},
		{"bad mode", nlmv4.NLMPROC4_SHARE, "c", 9, nlmv4.FSA_R, nlmv4.NLM4_FAILED},
		{"A unshares", nlmv4.NLMPROC4_UNSHARE, "a", nlmv4.FSM_DW, nlmv4.FSA_R, nlmv4.NLM4_GRANTED},
		{"C writes", nlmv4.NLMPROC4_SHARE, "c", nlmv4.FSM_DN, nlmv4.FSA_W, nlmv4.NLM4_GRANTED},
	} {
		if got := share(s.proc, s.host, s.mode, s.access); got != s.want {
			t.Fatalf("%s: %s, want %s", s.name, statNames[got], statNames[s.want])
		}
	}
}

func TestStatusMonitor(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	var stat nsmv1.SmStatRes
	if err := f.client.Call(ctx, NSMProgram, NSMVersion, nsmv1.SM_STAT, &nsmv1.SmName{MonName: "x"}, &stat); err != nil {
		t.Fatal(err)
	}
	if stat.ResStat != nsmv1.STAT_SUCC || stat.State%2 != 1 {
		t.Fatalf("SM_STAT = %+v, want success and an odd state", stat)
	}
	mon := nsmv1.Mon{MonId: nsmv1.MonId{MonName: "client1", MyId: nsmv1.MyId{MyName: "localhost", MyProg: 100021, MyVers: 4, MyProc: 16}}}
	if err := f.client.Call(ctx, NSMProgram, NSMVersion, nsmv1.SM_MON, &mon, &stat); err != nil || stat.ResStat != nsmv1.STAT_SUCC {
		t.Fatalf("SM_MON: %v %+v", err, stat)
	}
	if f.svc.Monitors() != 1 {
		t.Fatalf("%d monitors after SM_MON", f.svc.Monitors())
	}
	var sm nsmv1.SmStat
	if err := f.client.Call(ctx, NSMProgram, NSMVersion, nsmv1.SM_UNMON_ALL, &mon.MonId.MyId, &sm); err != nil {
		t.Fatal(err)
	}
	if f.svc.Monitors() != 0 {
		t.Fatalf("%d monitors after SM_UNMON_ALL", f.svc.Monitors())
	}
	before := f.svc.State()
	if err := f.client.Call(ctx, NSMProgram, NSMVersion, nsmv1.SM_SIMU_CRASH, nil, nil); err != nil {
		t.Fatal(err)
	}
	if after := f.svc.State(); after != before+2 || after%2 != 1 {
		t.Errorf("state %d after SM_SIMU_CRASH from %d", after, before)
	}
}

func TestHolderOfOtherProtocols(t *testing.T) {
	h := holder(lock.Lock{Owner: lock.Owner{Client: "smb:session7", ID: "open3", PID: 9}, Exclusive: true, Start: 10, End: lock.ToEOF})
	if string(h.Oh) != "smb:session7" || h.Svid != 0 || h.LLen != 0 || h.LOffset != 10 || !h.Exclusive {
		t.Errorf("holder of an SMB lock %+v", h)
	}
}
