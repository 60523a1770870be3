package lock

import (
	"context"
	"fmt"
	"slices"
	"sync"
)

// LeaseState is a set of caching rights.
type LeaseState uint8

const (
	LeaseRead LeaseState = 1 << iota
	LeaseWrite
	LeaseHandle
)

// LeaseNone is the empty state: no caching.
const LeaseNone LeaseState = 0

const leaseAll = LeaseRead | LeaseWrite | LeaseHandle

func (st LeaseState) String() string {
	if st == LeaseNone {
		return "none"
	}
	var b []byte
	if st&LeaseRead != 0 {
		b = append(b, 'R')
	}
	if st&LeaseWrite != 0 {
		b = append(b, 'W')
	}
	if st&LeaseHandle != 0 {
		b = append(b, 'H')
	}
	if st&^leaseAll != 0 {
		b = fmt.Appendf(b, "+%#x", uint8(st&^leaseAll))
	}
	return string(b)
}

// valid reports whether st is one of the SMB2 lease states: none, R, RW, RH,
// RWH. Write or handle caching without read caching means nothing.
func (st LeaseState) valid() bool {
	return st&^leaseAll == 0 && (st == LeaseNone || st&LeaseRead != 0)
}

// normalize drops what cannot stand without read caching.
func normalize(st LeaseState) LeaseState {
	if st&LeaseRead == 0 {
		return LeaseNone
	}
	return st
}

// LeaseKey names a lease: for SMB2 the client GUID and the lease key (or the
// open, for an oplock), for an NFSv4 delegation the client id (one delegation
// per client and file). The zero key names no lease.
type LeaseKey struct {
	Client string
	Key    string
}

// AccessKind says what a breaker is about to do; kinds combine with |. See the
// package comment for what each one takes from other holders.
type AccessKind uint8

const (
	AccessRead AccessKind = 1 << iota
	AccessWrite
	AccessHandle

	accessAll = AccessRead | AccessWrite | AccessHandle
)

// drop is the caching that other holders lose to an access of this kind.
func (k AccessKind) drop() LeaseState {
	var d LeaseState
	if k&AccessRead != 0 {
		d |= LeaseWrite
	}
	if k&AccessWrite != 0 {
		d |= LeaseRead | LeaseWrite
	}
	if k&AccessHandle != 0 {
		d |= LeaseHandle
	}
	return d
}

// LeaseRequest asks for a lease.
type LeaseRequest struct {
	Key   LeaseKey
	State LeaseState
	// RecallWhole makes every break of this lease a break to none: NFSv4
	// delegations are recalled, never downgraded.
	RecallWhole bool
	// OnBreak is told to drop to LeaseBreak.To and answer with Acknowledge
	// (or ReleaseLease). Required.
	OnBreak func(LeaseBreak)
	// OnRevoke, if set, is told that the lease was taken away because the
	// holder did not acknowledge a break in time.
	OnRevoke func(LeaseBreak)
}

// LeaseBreak is a notice to a lease holder.
type LeaseBreak struct {
	File FileID
	Key  LeaseKey
	From LeaseState
	To   LeaseState
}

// LeaseInfo describes a lease.
type LeaseInfo struct {
	State    LeaseState
	Breaking bool
	BreakTo  LeaseState // meaningful while Breaking
}

type lease struct {
	key         LeaseKey
	state       LeaseState
	recallWhole bool
	onBreak     func(LeaseBreak)
	onRevoke    func(LeaseBreak)

	breaking bool
	breakTo  LeaseState // what the pending notice asked for
	// owed is the state every Break waiting on this lease can live with;
	// when an acknowledgement keeps more, the next break is sent.
	owed  LeaseState
	seq   uint64 // identifies the current break step for its timer
	timer Timer
}

func (l *lease) stopTimer() {
	if l.timer != nil {
		l.timer.Stop()
		l.timer = nil
	}
}

// target is the state l must drop to for an access that takes drop away.
func (l *lease) target(drop LeaseState) LeaseState {
	to := normalize(l.state &^ drop)
	if l.recallWhole && to != l.state {
		return LeaseNone
	}
	return to
}

type activeBreak struct {
	breaker LeaseKey
	drop    LeaseState
}

func (fs *fileState) lease(key LeaseKey) *lease {
	for _, l := range fs.leases {
		if l.key == key {
			return l
		}
	}
	return nil
}

func (fs *fileState) notifyLeaseChange() {
	if fs.changed != nil {
		close(fs.changed)
		fs.changed = nil
	}
}

func (fs *fileState) leaseChanged() <-chan struct{} {
	if fs.changed == nil {
		fs.changed = make(chan struct{})
	}
	return fs.changed
}

// grantable is the most of want that key may hold given the other holders'
// leases and opens and the breaks in progress.
func (fs *fileState) grantable(key LeaseKey, want LeaseState) LeaseState {
	for _, b := range fs.breaks {
		if b.breaker != key {
			want &^= b.drop
		}
	}
	for _, o := range fs.leases {
		if o.key == key {
			continue
		}
		if o.state&LeaseWrite != 0 {
			return LeaseNone
		}
		want &^= LeaseWrite
	}
	if want&LeaseWrite != 0 {
		for _, sh := range fs.shares {
			if sh.access != 0 && sh.leaseKey != key {
				want &^= LeaseWrite
				break
			}
		}
	}
	return normalize(want)
}

// Grant gives key a lease on file, or upgrades the lease key already holds
// there, and returns the state granted, which may be less than asked or
// LeaseNone (then no lease exists); with a Cluster it is always LeaseNone. It never waits and never breaks others.
// A lease being broken, or any lease on a file where a Break is in progress,
// is not upgraded: the current state is returned. Callbacks of an existing
// lease are kept.
func (m *Manager) Grant(file FileID, r LeaseRequest) (LeaseState, error) {
	if r.Key == (LeaseKey{}) {
		return LeaseNone, fmt.Errorf("%w: lease key is empty", ErrInvalid)
	}
	if !r.State.valid() {
		return LeaseNone, fmt.Errorf("%w: lease state %s is not one of none, R, RW, RH, RWH", ErrInvalid, r.State)
	}
	if r.OnBreak == nil {
		return LeaseNone, fmt.Errorf("%w: lease request needs an OnBreak callback", ErrInvalid)
	}
	if m.cl != nil {
		// Another gateway's access could not break a lease held here, so
		// gateways that share locks grant none: clients then cache
		// nothing, which is always correct.
		return LeaseNone, nil
	}
	s := m.shard(file)
	s.mu.Lock()
	defer s.mu.Unlock()
	fs := s.file(file)
	if l := fs.lease(r.Key); l != nil {
		if !l.breaking && len(fs.breaks) == 0 {
			l.state = normalize(l.state | fs.grantable(r.Key, r.State))
		}
		return l.state, nil
	}
	st := fs.grantable(r.Key, r.State)
	if st != LeaseNone {
		fs.leases = append(fs.leases, &lease{
			key:         r.Key,
			state:       st,
			recallWhole: r.RecallWhole,
			onBreak:     r.OnBreak,
			onRevoke:    r.OnRevoke,
		})
	}
	s.settle(file, fs)
	return st, nil
}

// Lease describes key's lease on file.
func (m *Manager) Lease(file FileID, key LeaseKey) (LeaseInfo, bool) {
	s := m.shard(file)
	s.mu.Lock()
	defer s.mu.Unlock()
	fs := s.files[file]
	if fs == nil {
		return LeaseInfo{}, false
	}
	l := fs.lease(key)
	if l == nil {
		return LeaseInfo{}, false
	}
	return LeaseInfo{State: l.state, Breaking: l.breaking, BreakTo: l.breakTo}, true
}

// ReleaseLease removes key's lease on file (SMB close of the last open using
// it, NFSv4 DELEGRETURN). A Break waiting on it proceeds. It reports whether
// the lease existed.
func (m *Manager) ReleaseLease(file FileID, key LeaseKey) bool {
	s := m.shard(file)
	s.mu.Lock()
	defer s.mu.Unlock()
	fs := s.files[file]
	if fs == nil {
		return false
	}
	i := slices.IndexFunc(fs.leases, func(l *lease) bool { return l.key == key })
	if i < 0 {
		return false
	}
	fs.leases[i].stopTimer()
	fs.leases = slices.Delete(fs.leases, i, i+1)
	fs.notifyLeaseChange()
	s.settle(file, fs)
	return true
}

// Acknowledge accepts a holder's answer to a break: the lease now has state,
// which must not exceed what the break asked for (ErrAckTooHigh). Acknowledging
// LeaseNone removes the lease. If a later Break needs the lease lower still,
// the next break notice is sent now.
func (m *Manager) Acknowledge(file FileID, key LeaseKey, state LeaseState) error {
	if !state.valid() {
		return fmt.Errorf("%w: lease state %s is not one of none, R, RW, RH, RWH", ErrInvalid, state)
	}
	s := m.shard(file)
	s.mu.Lock()
	defer s.mu.Unlock()
	fs := s.files[file]
	var l *lease
	if fs != nil {
		l = fs.lease(key)
	}
	if l == nil {
		return fmt.Errorf("%w: file %d, key %v", ErrNoLease, file, key)
	}
	if !l.breaking {
		return fmt.Errorf("%w: file %d, key %v holds %s", ErrNotBreaking, file, key, l.state)
	}
	if state&^l.breakTo != 0 {
		return fmt.Errorf("%w: file %d, key %v acknowledged %s, break asked for %s", ErrAckTooHigh, file, key, state, l.breakTo)
	}
	l.stopTimer()
	l.breaking = false
	l.state = state
	switch {
	case state&^l.owed != 0:
		m.startBreak(file, l, normalize(state&l.owed))
	case state == LeaseNone:
		fs.leases = slices.DeleteFunc(fs.leases, func(x *lease) bool { return x == l })
	}
	fs.notifyLeaseChange()
	s.settle(file, fs)
	return nil
}

// startBreak sends l a break to `to` and arms its timeout. The shard mutex is
// held.
func (m *Manager) startBreak(file FileID, l *lease, to LeaseState) {
	l.breaking = true
	l.breakTo = to
	l.owed = to
	l.seq++
	seq := l.seq
	l.timer = m.clock.AfterFunc(m.BreakTimeout(), func() { m.breakTimedOut(file, l, seq) })
	notice := LeaseBreak{File: file, Key: l.key, From: l.state, To: to}
	go l.onBreak(notice)
}

func (m *Manager) breakTimedOut(file FileID, l *lease, seq uint64) {
	s := m.shard(file)
	s.mu.Lock()
	fs := s.files[file]
	if fs == nil || !l.breaking || l.seq != seq {
		s.mu.Unlock()
		return
	}
	i := slices.Index(fs.leases, l)
	if i < 0 {
		s.mu.Unlock()
		return
	}
	fs.leases = slices.Delete(fs.leases, i, i+1)
	l.timer = nil
	fs.notifyLeaseChange()
	s.settle(file, fs)
	s.mu.Unlock()
	m.log.Warn("lease break not acknowledged in time; lease revoked",
		"file", uint64(file), "client", l.key.Client, "key", l.key.Key,
		"held", l.state.String(), "break_to", l.breakTo.String(), "timeout", m.BreakTimeout())
	if l.onRevoke != nil {
		go l.onRevoke(LeaseBreak{File: file, Key: l.key, From: l.state, To: LeaseNone})
	}
}

// Break makes every other holder's lease on file give up the caching that an
// access of kind what by breaker conflicts with, and returns once they all
// have (acknowledged, released or revoked after the break timeout) or ctx
// ends. Leases with breaker's key are untouched; a zero breaker breaks all.
// With no lease on the file it returns at once.
func (m *Manager) Break(ctx context.Context, file FileID, breaker LeaseKey, what AccessKind) error {
	_, err := m.breakLeases(ctx, file, breaker, what, false)
	return err
}

// BreakAndHold is Break that keeps other holders from being granted the
// broken caching until release is called, so that the caller's operation
// cannot race a new grant. On error nothing is held and release is nil.
func (m *Manager) BreakAndHold(ctx context.Context, file FileID, breaker LeaseKey, what AccessKind) (release func(), err error) {
	return m.breakLeases(ctx, file, breaker, what, true)
}

func (m *Manager) breakLeases(ctx context.Context, file FileID, breaker LeaseKey, what AccessKind, hold bool) (func(), error) {
	if what&^accessAll != 0 {
		return nil, fmt.Errorf("%w: unknown access kind %#x", ErrInvalid, uint8(what))
	}
	drop := what.drop()
	s := m.shard(file)
	s.mu.Lock()
	if drop == 0 {
		s.mu.Unlock()
		if hold {
			return func() {}, nil
		}
		return nil, nil
	}
	fs := s.files[file]
	type target struct {
		l  *lease
		to LeaseState
	}
	var targets []target
	if fs != nil {
		for _, l := range fs.leases {
			if l.key == breaker {
				continue
			}
			if to := l.target(drop); to != l.state {
				targets = append(targets, target{l, to})
			}
		}
	}
	if len(targets) == 0 && !hold {
		s.mu.Unlock()
		return nil, nil
	}
	fs = s.file(file)
	ab := &activeBreak{breaker: breaker, drop: drop}
	fs.breaks = append(fs.breaks, ab)
	for _, t := range targets {
		if t.l.breaking {
			t.l.owed = normalize(t.l.owed & t.to)
			continue
		}
		m.startBreak(file, t.l, t.to)
	}
	s.settle(file, fs)

	// Targets only ever go down while ab is registered: no lease on the file
	// is upgraded during a break, so the wait condition is monotone.
	var err error
	for err == nil {
		pending := slices.ContainsFunc(targets, func(t target) bool {
			return t.l.state&^t.to != 0 && slices.Contains(fs.leases, t.l)
		})
		if !pending {
			break
		}
		changed := fs.leaseChanged()
		s.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			err = ctx.Err()
		}
		s.mu.Lock()
	}
	if !hold || err != nil {
		s.endBreak(file, fs, ab)
		s.mu.Unlock()
		return nil, err
	}
	s.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			s.endBreak(file, fs, ab)
			s.mu.Unlock()
		})
	}, nil
}

func (s *shard) endBreak(file FileID, fs *fileState, ab *activeBreak) {
	fs.breaks = slices.DeleteFunc(fs.breaks, func(b *activeBreak) bool { return b == ab })
	s.settle(file, fs)
}
