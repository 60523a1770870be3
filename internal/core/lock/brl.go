package lock

import (
	"context"
	"fmt"
	"slices"
)

// waiter is a lock request that could not be granted yet. Exactly one of done
// (a blocked Lock call) and granted (LockOrQueue) is set.
type waiter struct {
	lock    Lock
	done    chan struct{}
	err     error // result for done; set before done is closed
	granted func(FileID, Lock)
	over    bool // granted or canceled; guarded by the shard mutex
}

func (w *waiter) finish(id FileID, err error) {
	w.over = true
	if w.done != nil {
		w.err = err
		close(w.done)
		return
	}
	if err == nil {
		go w.granted(id, w.lock)
	}
}

// overlaps reports whether two ranges share a byte. A zero-length range
// overlaps only a range that strictly contains its offset (MS-FSA's rule for
// zero-length SMB locks); POSIX ranges are never empty.
func overlaps(aStart, aEnd, bStart, bEnd uint64) bool {
	aEmpty, bEmpty := aStart == aEnd, bStart == bEnd
	switch {
	case aEmpty && bEmpty:
		return false
	case aEmpty:
		return bStart < aStart && aStart < bEnd
	case bEmpty:
		return aStart < bStart && bStart < aEnd
	}
	return aStart < bEnd && bStart < aEnd
}

func sameOwner(a, b *Lock) bool {
	return a.Owner == b.Owner && a.Flavor == b.Flavor
}

// conflicts reports whether req cannot be granted while held is held (or
// queued ahead of it).
func conflicts(held, req *Lock) bool {
	if !held.Exclusive && !req.Exclusive {
		return false
	}
	if !overlaps(held.Start, held.End, req.Start, req.End) {
		return false
	}
	if sameOwner(held, req) {
		if req.Flavor == POSIX {
			return false
		}
		// Mandatory: a shared lock may stack on the owner's own exclusive
		// lock; an exclusive request collides with anything it overlaps.
		return !(held.Exclusive && !req.Exclusive)
	}
	return true
}

// heldConflict returns the first held lock that conflicts with req. A lock
// that overlaps req starts before req ends (zero-length ranges included), so
// the scan of the sorted list stops there.
func (fs *fileState) heldConflict(req *Lock) *Lock {
	for i := range fs.locks {
		h := &fs.locks[i]
		if h.Start >= req.End {
			break
		}
		if conflicts(h, req) {
			return h
		}
	}
	return nil
}

func (fs *fileState) holdsAny(o Owner) bool {
	for i := range fs.locks {
		if fs.locks[i].Owner == o {
			return true
		}
	}
	return false
}

// blocker finds what keeps req from being granted: a held lock, or one of the
// first ahead queued requests when req's owner holds nothing on the file
// (fairness; see the package comment).
func (fs *fileState) blocker(req *Lock, ahead int) (Lock, bool, bool) {
	if h := fs.heldConflict(req); h != nil {
		return *h, false, true
	}
	if ahead == 0 || fs.holdsAny(req.Owner) {
		return Lock{}, false, false
	}
	for _, w := range fs.waiters[:ahead] {
		if w.lock.Owner != req.Owner && conflicts(&w.lock, req) {
			return w.lock, true, true
		}
	}
	return Lock{}, false, false
}

// insert adds l keeping fs.locks sorted by Start, after equal starts.
func (fs *fileState) insert(l Lock) {
	i, _ := slices.BinarySearchFunc(fs.locks, l.Start, func(h Lock, start uint64) int {
		if h.Start <= start {
			return -1
		}
		return 1
	})
	fs.locks = slices.Insert(fs.locks, i, l)
}

// apply records a granted lock. The caller has checked for conflicts.
func (fs *fileState) apply(l *Lock) {
	if l.Flavor == Mandatory {
		fs.insert(*l)
		return
	}
	// POSIX: the owner's locks over [Start, End) are replaced by l; same-type
	// locks overlapping or touching it merge into it.
	s, e := l.Start, l.End
	ns, ne := s, e
	out := make([]Lock, 0, len(fs.locks)+2)
	var tail *Lock
	for _, h := range fs.locks {
		if !sameOwner(&h, l) {
			out = append(out, h)
			continue
		}
		if h.Exclusive == l.Exclusive {
			if h.End >= s && h.Start <= e {
				ns, ne = min(ns, h.Start), max(ne, h.End)
				continue
			}
			out = append(out, h)
			continue
		}
		var right *Lock
		out, right = appendOutside(out, h, s, e)
		if right != nil {
			tail = right
		}
	}
	fs.locks = out
	merged := *l
	merged.Start, merged.End = ns, ne
	fs.insert(merged)
	if tail != nil {
		fs.insert(*tail)
	}
}

// appendOutside appends the part of h before [s, e), or all of h if they do
// not overlap, and returns the part after [s, e) separately: it starts at e
// and so belongs further on in the sorted list. Since an owner's POSIX locks
// are disjoint, at most one of them extends beyond e.
func appendOutside(out []Lock, h Lock, s, e uint64) ([]Lock, *Lock) {
	if h.End <= s || h.Start >= e {
		return append(out, h), nil
	}
	if h.Start < s {
		left := h
		left.End = s
		out = append(out, left)
	}
	if h.End > e {
		right := h
		right.Start = e
		return out, &right
	}
	return out, nil
}

// Lock acquires l on file. If it conflicts, Lock returns a *ConflictError
// when wait is false, and otherwise blocks until the lock is granted (nil),
// the request is canceled (ErrCanceled) or ctx ends (ctx.Err()). A lock
// granted at the moment ctx ends is kept and reported as success, since a
// POSIX grant may have merged with the owner's other locks and cannot be
// undone exactly.
func (m *Manager) Lock(ctx context.Context, file FileID, l Lock, wait bool) error {
	if err := l.validate(); err != nil {
		return err
	}
	if m.cl != nil {
		return m.clusterLock(ctx, file, l, wait)
	}
	return m.localLock(ctx, file, l, wait)
}

// localLock is Lock within this gateway's table.
func (m *Manager) localLock(ctx context.Context, file FileID, l Lock, wait bool) error {
	s := m.shard(file)
	s.mu.Lock()
	fs := s.file(file)
	in, queued, blocked := fs.blocker(&l, len(fs.waiters))
	if !blocked {
		fs.apply(&l)
		fs.grantWaiters(file) // a POSIX downgrade frees waiters
		s.settle(file, fs)
		s.mu.Unlock()
		return nil
	}
	if !wait {
		s.settle(file, fs)
		s.mu.Unlock()
		return &ConflictError{File: file, Conflict: in, Queued: queued}
	}
	if err := ctx.Err(); err != nil {
		s.settle(file, fs)
		s.mu.Unlock()
		return err
	}
	w := &waiter{lock: l, done: make(chan struct{})}
	fs.waiters = append(fs.waiters, w)
	s.settle(file, fs)
	s.mu.Unlock()

	select {
	case <-w.done:
		return w.err
	case <-ctx.Done():
	}
	s.mu.Lock()
	if !w.over {
		fs := s.files[file]
		fs.waiters = slices.DeleteFunc(fs.waiters, func(x *waiter) bool { return x == w })
		w.over = true
		// Requests queued behind this one may now be grantable.
		fs.grantWaiters(file)
		s.settle(file, fs)
		s.mu.Unlock()
		return ctx.Err()
	}
	s.mu.Unlock()
	<-w.done
	return w.err
}

// LockOrQueue acquires l on file if it can be granted now (queued false).
// Otherwise it queues the request and returns queued true; once the lock has
// been granted (it is then held), granted runs on its own goroutine. A request
// identical to one already queued (same owner, flavor, range and type) is not
// queued twice, so protocol retransmissions are harmless. Cancel withdraws it.
func (m *Manager) LockOrQueue(file FileID, l Lock, granted func(FileID, Lock)) (queued bool, err error) {
	if err := l.validate(); err != nil {
		return false, err
	}
	if granted == nil {
		return false, fmt.Errorf("%w: LockOrQueue needs a granted callback", ErrInvalid)
	}
	if m.cl != nil {
		return m.clusterLockOrQueue(file, l, granted)
	}
	return m.localLockOrQueue(file, l, granted)
}

// localLockOrQueue is LockOrQueue within this gateway's table.
func (m *Manager) localLockOrQueue(file FileID, l Lock, granted func(FileID, Lock)) (queued bool, err error) {
	s := m.shard(file)
	s.mu.Lock()
	defer s.mu.Unlock()
	fs := s.file(file)
	if _, _, blocked := fs.blocker(&l, len(fs.waiters)); !blocked {
		fs.apply(&l)
		fs.grantWaiters(file)
		s.settle(file, fs)
		return false, nil
	}
	for _, w := range fs.waiters {
		if w.granted != nil && w.lock == l {
			return true, nil
		}
	}
	fs.waiters = append(fs.waiters, &waiter{lock: l, granted: granted})
	s.settle(file, fs)
	return true, nil
}

// Cancel withdraws the oldest queued request on file equal to l (owner,
// flavor, range and type), as NLM CANCEL does. A blocked Lock call returns
// ErrCanceled; a LockOrQueue callback never runs. It reports whether a
// request was found; false means it was never queued or already granted.
func (m *Manager) Cancel(file FileID, l Lock) bool {
	if m.cl != nil && m.cancelRemote(file, l) {
		return true
	}
	if !m.localCancel(file, l) {
		return false
	}
	if m.cl != nil {
		m.settleClaim(file, l)
	}
	return true
}

func (m *Manager) localCancel(file FileID, l Lock) bool {
	s := m.shard(file)
	s.mu.Lock()
	defer s.mu.Unlock()
	fs := s.files[file]
	if fs == nil {
		return false
	}
	i := slices.IndexFunc(fs.waiters, func(w *waiter) bool { return w.lock == l })
	if i < 0 {
		return false
	}
	w := fs.waiters[i]
	fs.waiters = slices.Delete(fs.waiters, i, i+1)
	w.finish(file, ErrCanceled)
	fs.grantWaiters(file)
	s.settle(file, fs)
	return true
}

// cancelWaiters ends the queued requests that match with ErrCanceled.
func (fs *fileState) cancelWaiters(match func(*waiter) bool) int {
	n := 0
	fs.waiters = slices.DeleteFunc(fs.waiters, func(w *waiter) bool {
		if !match(w) {
			return false
		}
		w.finish(0, ErrCanceled)
		n++
		return true
	})
	return n
}

// grantWaiters grants every queued request that has become grantable, in
// queue order. A grant can itself free others (a POSIX downgrade), hence the
// outer loop.
func (fs *fileState) grantWaiters(id FileID) {
	for progress := true; progress; {
		progress = false
		for i := 0; i < len(fs.waiters); i++ {
			w := fs.waiters[i]
			if _, _, blocked := fs.blocker(&w.lock, i); blocked {
				continue
			}
			fs.apply(&w.lock)
			fs.waiters = slices.Delete(fs.waiters, i, i+1)
			i--
			w.finish(id, nil)
			progress = true
		}
	}
}

// Unlock releases l.Owner's locks of l.Flavor over [l.Start, l.End); l.Exclusive
// is ignored. POSIX: every byte of the range the owner holds is released,
// splitting locks that extend beyond it; unlocking what is not held succeeds.
// Mandatory: exactly one lock with this exact range is released, an exclusive
// one first, else the most recent shared one; ErrNotLocked if there is none.
// Queued requests that become grantable are granted.
func (m *Manager) Unlock(file FileID, l Lock) error {
	if err := l.validate(); err != nil {
		return err
	}
	if m.cl == nil {
		return m.localUnlock(file, l)
	}
	mu := m.stripe(file)
	mu.Lock()
	defer mu.Unlock()
	err := m.localUnlock(file, l)
	m.publish(file)
	return err
}

func (m *Manager) localUnlock(file FileID, l Lock) error {
	s := m.shard(file)
	s.mu.Lock()
	defer s.mu.Unlock()
	fs := s.files[file]
	if fs == nil {
		if l.Flavor == Mandatory {
			return fmt.Errorf("%w: file %d, %s", ErrNotLocked, file, l)
		}
		return nil
	}
	if l.Flavor == Mandatory {
		victim := -1
		for i := range fs.locks {
			h := &fs.locks[i]
			if sameOwner(h, &l) && h.Start == l.Start && h.End == l.End {
				victim = i
				if h.Exclusive {
					break
				}
			}
		}
		if victim < 0 {
			return fmt.Errorf("%w: file %d, %s", ErrNotLocked, file, l)
		}
		fs.locks = slices.Delete(fs.locks, victim, victim+1)
	} else {
		out := make([]Lock, 0, len(fs.locks)+1)
		var tail *Lock
		for _, h := range fs.locks {
			if !sameOwner(&h, &l) {
				out = append(out, h)
				continue
			}
			var right *Lock
			out, right = appendOutside(out, h, l.Start, l.End)
			if right != nil {
				tail = right
			}
		}
		fs.locks = out
		if tail != nil {
			fs.insert(*tail)
		}
	}
	fs.grantWaiters(file)
	s.settle(file, fs)
	return nil
}

// Test reports the first held lock that would keep l from being granted
// (NLM TEST, NFSv4 LOCKT), on this gateway or, with a Cluster, any other.
// Queued requests are not considered.
func (m *Manager) Test(file FileID, l Lock) (Lock, bool, error) {
	if err := l.validate(); err != nil {
		return Lock{}, false, err
	}
	if m.cl != nil {
		return m.clusterTest(context.Background(), file, l)
	}
	return m.localTest(file, l)
}

func (m *Manager) localTest(file FileID, l Lock) (Lock, bool, error) {
	s := m.shard(file)
	s.mu.Lock()
	defer s.mu.Unlock()
	fs := s.files[file]
	if fs == nil {
		return Lock{}, false, nil
	}
	if h := fs.heldConflict(&l); h != nil {
		return *h, true, nil
	}
	return Lock{}, false, nil
}

// CheckIO reports whether owner may read (write false) or write length bytes
// at off, given the Mandatory locks on file: a *ConflictError means the I/O
// must fail (SMB STATUS_FILE_LOCK_CONFLICT, NFS4ERR_LOCKED). POSIX locks never
// block I/O. Any protocol may call it, so SMB clients' locks also hold off
// NFS and S3 writers.
func (m *Manager) CheckIO(file FileID, owner Owner, off, length uint64, write bool) error {
	if length == 0 {
		return nil
	}
	end := off + length
	if end < off {
		end = ToEOF
	}
	s := m.shard(file)
	s.mu.Lock()
	defer s.mu.Unlock()
	fs := s.files[file]
	if fs == nil {
		return nil
	}
	for i := range fs.locks {
		h := &fs.locks[i]
		if h.Start >= end {
			break
		}
		if h.Flavor != Mandatory || !overlaps(h.Start, h.End, off, end) {
			continue
		}
		other := h.Owner != owner
		if (h.Exclusive && other) || (write && !h.Exclusive) {
			return &ConflictError{File: file, Conflict: *h}
		}
	}
	return nil
}

// Locks returns a copy of the locks held on file, ordered by start.
func (m *Manager) Locks(file FileID) []Lock {
	s := m.shard(file)
	s.mu.Lock()
	defer s.mu.Unlock()
	fs := s.files[file]
	if fs == nil {
		return nil
	}
	return slices.Clone(fs.locks)
}

// ReleaseOwner removes every lock and queued request of owner on every file
// (NFSv4 RELEASE_LOCKOWNER, an SMB close when the owner is the open). Queued
// requests end with ErrCanceled. It returns the number of locks removed.
func (m *Manager) ReleaseOwner(owner Owner) int {
	if m.cl == nil {
		return m.localReleaseOwner(owner)
	}
	m.cancelRemoteOf(owner.Client, &owner)
	files := m.filesOfClient(owner.Client)
	n := m.localReleaseOwner(owner)
	m.dropPendingOf(owner.Client, &owner, nil)
	m.publishAll(files)
	return n
}

func (m *Manager) localReleaseOwner(owner Owner) int {
	n := 0
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		for _, id := range s.filesOf(owner.Client) {
			n += s.releaseOwner(id, s.files[id], owner)
		}
		s.mu.Unlock()
	}
	return n
}

// ReleaseOwnerOn is ReleaseOwner limited to one file.
func (m *Manager) ReleaseOwnerOn(file FileID, owner Owner) int {
	n := m.localReleaseOwnerOn(file, owner)
	if m.cl != nil {
		m.dropPendingOf(owner.Client, &owner, &file)
		m.publishAll([]FileID{file})
	}
	return n
}

func (m *Manager) localReleaseOwnerOn(file FileID, owner Owner) int {
	s := m.shard(file)
	s.mu.Lock()
	defer s.mu.Unlock()
	fs := s.files[file]
	if fs == nil {
		return 0
	}
	return s.releaseOwner(file, fs, owner)
}

func (s *shard) releaseOwner(id FileID, fs *fileState, owner Owner) int {
	n := len(fs.locks)
	fs.locks = slices.DeleteFunc(fs.locks, func(l Lock) bool { return l.Owner == owner })
	n -= len(fs.locks)
	fs.cancelWaiters(func(w *waiter) bool { return w.lock.Owner == owner })
	fs.grantWaiters(id)
	s.settle(id, fs)
	return n
}
