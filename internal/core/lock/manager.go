package lock

import (
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultBreakTimeout is how long a lease holder has to acknowledge a break
// before its lease is revoked. 35 seconds is the SMB2 oplock break timeout
// Windows servers use.
const DefaultBreakTimeout = 35 * time.Second

// Clock schedules the break timeouts. Tests substitute a manual clock.
type Clock interface {
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a scheduled call that can be stopped; *time.Timer is one.
type Timer interface {
	Stop() bool
}

type systemClock struct{}

func (systemClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// Options configure a Manager. The zero value is usable.
type Options struct {
	// BreakTimeout bounds the wait for a lease break acknowledgement; zero
	// means DefaultBreakTimeout.
	BreakTimeout time.Duration
	// Clock schedules break timeouts; nil means the system clock.
	Clock Clock
	// Logger receives revocations and other events worth an operator's eye;
	// nil means slog.Default().
	Logger *slog.Logger
	// Cluster, if set, shares byte-range locks and share reservations with
	// the other gateways of a scale-out deployment (see the package
	// comment). Nil keeps the table to this process.
	Cluster Cluster
	// FenceFor is how long a file stays fenced after the session holding
	// locks on it was lost; zero means DefaultFenceFor.
	FenceFor time.Duration
}

// shardCount spreads files over independent mutexes so that locking traffic
// on different files does not contend. A power of two for cheap selection.
const shardCount = 64

// Manager is the lock table. It is safe for concurrent use.
type Manager struct {
	clock        Clock
	log          *slog.Logger
	breakTimeout atomic.Int64 // nanoseconds
	nextShareID  atomic.Uint64
	shards       [shardCount]shard
	cl           *clusterState // nil without a Cluster
}

type shard struct {
	mu    sync.Mutex
	files map[FileID]*fileState
	// byClient finds the files where a client has any state, so that
	// releasing a client or owner does not scan every file.
	byClient map[string]map[FileID]struct{}
	total    counters
	// leases mirrors total.leases for AnyLeases, which reads it unlocked.
	leases atomic.Int64
	// scratch is reused by settle to compute a file's client set.
	scratch map[string]struct{}
}

// fileState is everything the table knows about one file. It exists only
// while it holds something; settle removes it when it becomes empty.
type fileState struct {
	locks   []Lock // sorted by Start; equal starts in arrival order
	waiters []*waiter
	shares  []*shareOpen
	leases  []*lease
	breaks  []*activeBreak
	// changed is closed (and cleared) whenever a lease changes, waking Break
	// calls waiting on this file.
	changed chan struct{}
	clients map[string]struct{}
	counted counters
}

type counters struct {
	files, locks, waiters, shares, leases, breaking int
}

func (c *counters) add(n, old counters) {
	c.files += n.files - old.files
	c.locks += n.locks - old.locks
	c.waiters += n.waiters - old.waiters
	c.shares += n.shares - old.shares
	c.leases += n.leases - old.leases
	c.breaking += n.breaking - old.breaking
}

// New returns an empty lock table.
func New(opts Options) *Manager {
	m := &Manager{clock: opts.Clock, log: opts.Logger}
	if m.clock == nil {
		m.clock = systemClock{}
	}
	if m.log == nil {
		m.log = slog.Default()
	}
	m.SetBreakTimeout(opts.BreakTimeout)
	if opts.Cluster != nil {
		m.cl = newClusterState(opts)
	}
	for i := range m.shards {
		s := &m.shards[i]
		s.files = make(map[FileID]*fileState)
		s.byClient = make(map[string]map[FileID]struct{})
		s.scratch = make(map[string]struct{})
	}
	return m
}

// SetBreakTimeout changes the break timeout for breaks started from now on;
// d <= 0 restores DefaultBreakTimeout.
func (m *Manager) SetBreakTimeout(d time.Duration) {
	if d <= 0 {
		d = DefaultBreakTimeout
	}
	m.breakTimeout.Store(int64(d))
}

// BreakTimeout returns the current break timeout.
func (m *Manager) BreakTimeout() time.Duration {
	return time.Duration(m.breakTimeout.Load())
}

func (m *Manager) shard(id FileID) *shard {
	// Inode numbers are often sequential; a multiplicative hash keeps
	// neighbours in different shards anyway.
	return &m.shards[(uint64(id)*0x9E3779B97F4A7C15)>>(64-6)]
}

func (s *shard) file(id FileID) *fileState {
	fs := s.files[id]
	if fs == nil {
		fs = &fileState{}
		s.files[id] = fs
	}
	return fs
}

// settle brings the shard's counters and client index up to date with fs
// after a change, and forgets fs once it holds nothing. Every mutation ends
// with it.
func (s *shard) settle(id FileID, fs *fileState) {
	var c counters
	c.locks = len(fs.locks)
	c.waiters = len(fs.waiters)
	c.shares = len(fs.shares)
	c.leases = len(fs.leases)
	for _, l := range fs.leases {
		if l.breaking {
			c.breaking++
		}
	}
	empty := c.locks+c.waiters+c.shares+c.leases == 0 && len(fs.breaks) == 0
	if !empty {
		c.files = 1
	}

	now := s.scratch
	clear(now)
	// Entries of one client tend to come in runs; skipping repeats keeps a
	// crowded file from costing a map write per lock.
	last := ""
	note := func(client string) {
		if client != last {
			now[client] = struct{}{}
			last = client
		}
	}
	for i := range fs.locks {
		note(fs.locks[i].Owner.Client)
	}
	for _, w := range fs.waiters {
		note(w.lock.Owner.Client)
	}
	for _, sh := range fs.shares {
		note(sh.owner.Client)
	}
	for _, l := range fs.leases {
		note(l.key.Client)
	}
	for cl := range fs.clients {
		if _, ok := now[cl]; !ok {
			files := s.byClient[cl]
			delete(files, id)
			if len(files) == 0 {
				delete(s.byClient, cl)
			}
		}
	}
	for cl := range now {
		if _, ok := fs.clients[cl]; !ok {
			files := s.byClient[cl]
			if files == nil {
				files = make(map[FileID]struct{})
				s.byClient[cl] = files
			}
			files[id] = struct{}{}
		}
	}
	old := fs.clients
	if old == nil {
		old = make(map[string]struct{})
	}
	fs.clients, s.scratch = now, old

	s.total.add(c, fs.counted)
	if c.leases != fs.counted.leases {
		s.leases.Add(int64(c.leases - fs.counted.leases))
	}
	fs.counted = c
	if empty {
		delete(s.files, id)
	}
}

// filesOf lists the files of a shard where client has state.
func (s *shard) filesOf(client string) []FileID {
	files := s.byClient[client]
	ids := make([]FileID, 0, len(files))
	for id := range files {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Stats are counts over the whole table, for the admin page.
type Stats struct {
	Files            int // files with any locking state
	Locks            int // byte-range locks held
	Waiters          int // lock requests queued or blocked
	Shares           int // open share reservations
	Leases           int // leases, oplocks and delegations held
	BreaksInProgress int // leases sent a break and not yet acknowledged
}

// Stats returns the current counts.
func (m *Manager) Stats() Stats {
	var t counters
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		t.add(s.total, counters{})
		s.mu.Unlock()
	}
	return Stats{
		Files:            t.files,
		Locks:            t.locks,
		Waiters:          t.waiters,
		Shares:           t.shares,
		Leases:           t.leases,
		BreaksInProgress: t.breaking,
	}
}

// AnyLeases reports whether any file has a lease, so that callers can skip
// looking up what to break when nothing can be.
func (m *Manager) AnyLeases() bool {
	for i := range m.shards {
		if m.shards[i].leases.Load() != 0 {
			return true
		}
	}
	return false
}

// Released counts what ReleaseClient removed.
type Released struct {
	Locks, Waiters, Shares, Leases int
}

// ReleaseClient removes every lock, queued request, share reservation and
// lease of client on every file: an NSM reboot notification, an SMB logoff,
// an NFSv4 lease expiry. Queued requests end with ErrCanceled and their
// callbacks are not called; leases go without OnRevoke, since the client is
// gone. Waiters and Break calls that the removed state blocked proceed.
func (m *Manager) ReleaseClient(client string) Released {
	if m.cl == nil {
		return m.localReleaseClient(client)
	}
	m.cancelRemoteOf(client, nil)
	files := m.filesOfClient(client)
	r := m.localReleaseClient(client)
	m.dropPendingOf(client, nil, nil)
	m.publishAll(files)
	return r
}

func (m *Manager) localReleaseClient(client string) Released {
	var r Released
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		for _, id := range s.filesOf(client) {
			fs := s.files[id]
			n := len(fs.locks)
			fs.locks = slices.DeleteFunc(fs.locks, func(l Lock) bool { return l.Owner.Client == client })
			r.Locks += n - len(fs.locks)
			r.Waiters += fs.cancelWaiters(func(w *waiter) bool { return w.lock.Owner.Client == client })
			n = len(fs.shares)
			fs.shares = slices.DeleteFunc(fs.shares, func(sh *shareOpen) bool { return sh.owner.Client == client })
			r.Shares += n - len(fs.shares)
			n = len(fs.leases)
			fs.leases = slices.DeleteFunc(fs.leases, func(l *lease) bool {
				if l.key.Client != client {
					return false
				}
				l.stopTimer()
				return true
			})
			if len(fs.leases) != n {
				r.Leases += n - len(fs.leases)
				fs.notifyLeaseChange()
			}
			fs.grantWaiters(id)
			s.settle(id, fs)
		}
		s.mu.Unlock()
	}
	return r
}
