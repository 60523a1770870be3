package lock

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Cluster stores, per file, one record per gateway of what that gateway's
// table holds, tied to the gateway's session so that the records of a
// gateway that dies or stalls vanish. The package keeps the records' format
// and conflict rules; an implementation only stores bytes.
type Cluster interface {
	// Claim writes own as this gateway's record of file if check accepts
	// the other gateways' records, read in the same snapshot and atomically
	// with the write. It returns the snapshot's revision (for Wait) and
	// check's error if check refused.
	Claim(ctx context.Context, file FileID, own []byte, check func(others [][]byte) error) (rev int64, err error)
	// Publish replaces this gateway's record of file, nil deleting it. It is
	// only used to give up what an earlier Claim covered.
	Publish(ctx context.Context, file FileID, own []byte) error
	// Others returns the other gateways' records of file.
	Others(ctx context.Context, file FileID) ([][]byte, error)
	// Wait returns when a record of file changed after rev, when ctx ends,
	// or after a bounded time, whichever is first.
	Wait(ctx context.Context, file FileID, rev int64) error
}

// DefaultFenceFor is how long a file stays fenced after the session that held
// locks on it was lost: long enough for the clients that held them to learn
// it (an NLM client reclaims within the grace period that follows a server
// restart, 90 seconds on most systems).
const DefaultFenceFor = 90 * time.Second

// clusterState is the part of a Manager that exists only with a Cluster.
type clusterState struct {
	c        Cluster
	fenceFor time.Duration
	now      func() time.Time
	// stripes serialize, per file, a claim with the local change it
	// covers and the publish after it, so that a gateway's record is never
	// replaced by an older view of its own table.
	stripes [shardCount]sync.Mutex

	mu sync.Mutex
	// pending are claimed lock requests still waiting in the local queue:
	// they stay in the record so that no other gateway is granted a lock
	// this one has promised to its waiter.
	pending map[FileID][]Lock
	// fenced are the files whose locks were dropped with a lost session,
	// and when.
	fenced map[FileID]time.Time
	// remote are LockOrQueue requests waiting for another gateway's lock.
	remote map[remoteKey]context.CancelFunc
}

type remoteKey struct {
	file FileID
	lock Lock
}

// clusterRecord is the stored form of one gateway's state on one file.
type clusterRecord struct {
	Locks  []Lock        `json:"locks,omitempty"`
	Shares []recordShare `json:"shares,omitempty"`
}

type recordShare struct {
	Owner  Owner      `json:"owner"`
	Access OpenAccess `json:"access"`
	Deny   OpenAccess `json:"deny"`
}

func encodeRecord(r clusterRecord) []byte {
	if len(r.Locks) == 0 && len(r.Shares) == 0 {
		return nil
	}
	b, err := json.Marshal(r)
	if err != nil {
		panic(fmt.Sprintf("lock: encoding a cluster record: %v", err)) // plain structs cannot fail
	}
	return b
}

// decodeRecord parses another gateway's record. Records come from the shared
// store, so anything malformed is an error, never a panic.
func decodeRecord(b []byte) (clusterRecord, error) {
	var r clusterRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return clusterRecord{}, fmt.Errorf("lock: malformed cluster lock record: %w", err)
	}
	for i := range r.Locks {
		if err := r.Locks[i].validate(); err != nil {
			return clusterRecord{}, fmt.Errorf("lock: cluster lock record holds an invalid lock: %w", err)
		}
	}
	for _, sh := range r.Shares {
		if err := validMasks(sh.Access, sh.Deny); err != nil {
			return clusterRecord{}, fmt.Errorf("lock: cluster lock record holds an invalid share: %w", err)
		}
	}
	return r, nil
}

func newClusterState(opts Options) *clusterState {
	cs := &clusterState{
		c:        opts.Cluster,
		fenceFor: opts.FenceFor,
		now:      time.Now,
		pending:  make(map[FileID][]Lock),
		fenced:   make(map[FileID]time.Time),
		remote:   make(map[remoteKey]context.CancelFunc),
	}
	if cs.fenceFor <= 0 {
		cs.fenceFor = DefaultFenceFor
	}
	return cs
}

func (m *Manager) stripe(file FileID) *sync.Mutex {
	return &m.cl.stripes[(uint64(file)*0x9E3779B97F4A7C15)>>(64-6)]
}

// record is this gateway's current record of file: what the table holds
// plus the pending claims, plus extra (a request about to be granted).
func (m *Manager) record(file FileID, extra func(*clusterRecord)) clusterRecord {
	var r clusterRecord
	s := m.shard(file)
	s.mu.Lock()
	if fs := s.files[file]; fs != nil {
		r.Locks = slices.Clone(fs.locks)
		for _, sh := range fs.shares {
			r.Shares = append(r.Shares, recordShare{Owner: sh.owner, Access: sh.access, Deny: sh.deny})
		}
	}
	s.mu.Unlock()
	m.cl.mu.Lock()
	r.Locks = append(r.Locks, m.cl.pending[file]...)
	m.cl.mu.Unlock()
	if extra != nil {
		extra(&r)
	}
	return r
}

// publish brings this gateway's record of file in line with the table. The
// caller holds the file's stripe. A failure leaves the record covering more
// than the table holds, which only refuses others more than needed.
func (m *Manager) publish(file FileID) {
	if err := m.cl.c.Publish(context.Background(), file, encodeRecord(m.record(file, nil))); err != nil {
		m.log.Warn("cannot update this gateway's lock record; other gateways may be refused locks it no longer holds until the next change",
			"file", file, "err", err)
	}
}

// claim checks req (a lock or a share) against the other gateways' records
// and, if none conflicts, records it with this gateway's state. The caller
// holds the file's stripe.
func (m *Manager) claim(ctx context.Context, file FileID, extra func(*clusterRecord), check func(other clusterRecord) error) (int64, error) {
	own := encodeRecord(m.record(file, extra))
	rev, err := m.cl.c.Claim(ctx, file, own, func(others [][]byte) error {
		for _, b := range others {
			r, err := decodeRecord(b)
			if err != nil {
				return err
			}
			if err := check(r); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		m.cl.mu.Lock()
		delete(m.cl.fenced, file)
		m.cl.mu.Unlock()
	}
	return rev, err
}

func remoteLockConflict(file FileID, l *Lock) func(clusterRecord) error {
	return func(r clusterRecord) error {
		for i := range r.Locks {
			if conflicts(&r.Locks[i], l) {
				return &ConflictError{File: file, Conflict: r.Locks[i]}
			}
		}
		return nil
	}
}

func remoteShareConflict(file FileID, access, deny OpenAccess) func(clusterRecord) error {
	return func(r clusterRecord) error {
		for _, sh := range r.Shares {
			if shareConflict(sh.Access, sh.Deny, access, deny) {
				return fmt.Errorf("%w: file %d: access %s deny %s against an open through another gateway by %s with access %s deny %s",
					ErrShareConflict, file, access, deny, sh.Owner, sh.Access, sh.Deny)
			}
		}
		return nil
	}
}

func (m *Manager) addPending(file FileID, l Lock) {
	m.cl.mu.Lock()
	m.cl.pending[file] = append(m.cl.pending[file], l)
	m.cl.mu.Unlock()
}

// dropPending removes one pending claim equal to l.
func (m *Manager) dropPending(file FileID, l Lock) {
	m.cl.mu.Lock()
	p := m.cl.pending[file]
	if i := slices.Index(p, l); i >= 0 {
		p = slices.Delete(p, i, i+1)
	}
	if len(p) == 0 {
		delete(m.cl.pending, file)
	} else {
		m.cl.pending[file] = p
	}
	m.cl.mu.Unlock()
}

// settleClaim ends a pending claim once the local queue granted or dropped
// it, and publishes what the table now holds.
func (m *Manager) settleClaim(file FileID, l Lock) {
	mu := m.stripe(file)
	mu.Lock()
	defer mu.Unlock()
	m.dropPending(file, l)
	m.publish(file)
}

// clusterLock is Lock with a Cluster: the request is claimed against the
// other gateways first, then goes through the local table as without one.
// While the local table keeps it waiting, the claim stays in the record, so
// the waiter keeps its place against other gateways too.
func (m *Manager) clusterLock(ctx context.Context, file FileID, l Lock, wait bool) error {
	for {
		mu := m.stripe(file)
		mu.Lock()
		rev, err := m.claim(ctx, file, func(r *clusterRecord) { r.Locks = append(r.Locks, l) }, remoteLockConflict(file, &l))
		if err != nil {
			mu.Unlock()
			if !wait || !errors.Is(err, ErrConflict) {
				return err
			}
			if err := m.cl.c.Wait(ctx, file, rev); err != nil {
				return err
			}
			continue
		}
		if !wait {
			err := m.localLock(ctx, file, l, false)
			m.publish(file)
			mu.Unlock()
			return err
		}
		m.addPending(file, l)
		mu.Unlock()
		err = m.localLock(ctx, file, l, true)
		m.settleClaim(file, l)
		return err
	}
}

// clusterLockOrQueue is LockOrQueue with a Cluster. A request that another
// gateway's lock keeps waiting is retried, on its own goroutine, whenever
// that file's records change, until it is claimed or canceled.
func (m *Manager) clusterLockOrQueue(file FileID, l Lock, granted func(FileID, Lock)) (bool, error) {
	key := remoteKey{file, l}
	m.cl.mu.Lock()
	_, waiting := m.cl.remote[key]
	m.cl.mu.Unlock()
	if waiting {
		return true, nil // a retransmission of a request already waiting
	}
	mu := m.stripe(file)
	mu.Lock()
	rev, err := m.claim(context.Background(), file, func(r *clusterRecord) { r.Locks = append(r.Locks, l) }, remoteLockConflict(file, &l))
	if err == nil {
		defer mu.Unlock()
		return m.queueClaimed(file, l, granted)
	}
	mu.Unlock()
	if !errors.Is(err, ErrConflict) {
		return false, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.cl.mu.Lock()
	m.cl.remote[key] = cancel
	m.cl.mu.Unlock()
	go func() {
		defer func() {
			m.cl.mu.Lock()
			delete(m.cl.remote, key)
			m.cl.mu.Unlock()
			cancel()
		}()
		for {
			if m.cl.c.Wait(ctx, file, rev) != nil {
				return
			}
			mu.Lock()
			if ctx.Err() != nil {
				mu.Unlock()
				return
			}
			var err error
			rev, err = m.claim(ctx, file, func(r *clusterRecord) { r.Locks = append(r.Locks, l) }, remoteLockConflict(file, &l))
			if err == nil {
				m.cl.mu.Lock()
				delete(m.cl.remote, key) // from here on, Cancel finds it in the local queue
				m.cl.mu.Unlock()
				queued, err := m.queueClaimed(file, l, granted)
				mu.Unlock()
				if err == nil && !queued {
					go granted(file, l)
				}
				return
			}
			mu.Unlock()
			if !errors.Is(err, ErrConflict) {
				m.log.Warn("a queued lock request waiting for another gateway failed", "file", file, "lock", l, "err", err)
				select {
				case <-ctx.Done():
					return
				case <-time.After(time.Second):
				}
			}
		}
	}()
	return true, nil
}

// queueClaimed hands a claimed request to the local table. The caller holds
// the file's stripe.
func (m *Manager) queueClaimed(file FileID, l Lock, granted func(FileID, Lock)) (bool, error) {
	m.addPending(file, l)
	queued, err := m.localLockOrQueue(file, l, func(f FileID, g Lock) {
		m.settleClaim(f, l)
		granted(f, g)
	})
	if !queued {
		m.dropPending(file, l)
		m.publish(file)
	}
	return queued, err
}

// cancelRemote withdraws a LockOrQueue request still waiting for another
// gateway.
func (m *Manager) cancelRemote(file FileID, l Lock) bool {
	m.cl.mu.Lock()
	defer m.cl.mu.Unlock()
	cancel, ok := m.cl.remote[remoteKey{file, l}]
	if ok {
		cancel()
		delete(m.cl.remote, remoteKey{file, l})
	}
	return ok
}

// cancelRemoteOf withdraws the remote waits of a client (and, if owner is
// set, only that owner's).
func (m *Manager) cancelRemoteOf(client string, owner *Owner) {
	m.cl.mu.Lock()
	defer m.cl.mu.Unlock()
	for k, cancel := range m.cl.remote {
		if k.lock.Owner.Client == client && (owner == nil || k.lock.Owner == *owner) {
			cancel()
			delete(m.cl.remote, k)
		}
	}
}

// dropPendingOf removes the pending claims of a client's (or one owner's)
// requests that a release canceled, on every file or only on file.
func (m *Manager) dropPendingOf(client string, owner *Owner, file *FileID) {
	m.cl.mu.Lock()
	defer m.cl.mu.Unlock()
	for f, p := range m.cl.pending {
		if file != nil && f != *file {
			continue
		}
		p = slices.DeleteFunc(p, func(l Lock) bool {
			return l.Owner.Client == client && (owner == nil || l.Owner == *owner)
		})
		if len(p) == 0 {
			delete(m.cl.pending, f)
		} else {
			m.cl.pending[f] = p
		}
	}
}

// clusterTest is Test with a Cluster: the other gateways' locks count too.
func (m *Manager) clusterTest(ctx context.Context, file FileID, l Lock) (Lock, bool, error) {
	if h, ok, err := m.localTest(file, l); ok || err != nil {
		return h, ok, err
	}
	others, err := m.cl.c.Others(ctx, file)
	if err != nil {
		return Lock{}, false, err
	}
	check := remoteLockConflict(file, &l)
	for _, b := range others {
		r, err := decodeRecord(b)
		if err != nil {
			return Lock{}, false, err
		}
		var ce *ConflictError
		if errors.As(check(r), &ce) {
			return ce.Conflict, true, nil
		}
	}
	return Lock{}, false, nil
}

// publishAll publishes every file in files, after a change that only gave
// things up.
func (m *Manager) publishAll(files []FileID) {
	for _, f := range files {
		mu := m.stripe(f)
		mu.Lock()
		m.publish(f)
		mu.Unlock()
	}
}

// filesOfClient lists the files where client has state.
func (m *Manager) filesOfClient(client string) []FileID {
	var out []FileID
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		out = append(out, s.filesOf(client)...)
		s.mu.Unlock()
	}
	return out
}

// SessionLost drops every byte-range lock, queued request and share
// reservation of the table, because the session whose records stood for
// them is gone: other gateways may already have been granted the same
// ranges. Each file that held any is fenced for Options.FenceFor: Fenced
// reports it, and writers refuse writes to it, so that a client that still
// believes it holds a lock cannot write under it. A new lock granted on the
// file lifts the fence. Leases are not shared between gateways and stay.
func (m *Manager) SessionLost() {
	if m.cl == nil {
		return
	}
	now := m.cl.now()
	var lost []FileID
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		for id, fs := range s.files {
			if len(fs.locks)+len(fs.shares)+len(fs.waiters) == 0 {
				continue
			}
			lost = append(lost, id)
			fs.locks, fs.shares = nil, nil
			fs.cancelWaiters(func(*waiter) bool { return true })
			s.settle(id, fs)
		}
		s.mu.Unlock()
	}
	m.cl.mu.Lock()
	for f := range m.cl.pending {
		lost = append(lost, f)
	}
	clear(m.cl.pending)
	for _, f := range lost {
		m.cl.fenced[f] = now
	}
	m.cl.mu.Unlock()
	m.log.Error("dropped every lock and share reservation of this gateway with its lost session; the files are fenced against writes through this gateway",
		"files", len(lost), "fence_for", m.cl.fenceFor)
}

// Fenced reports whether writes to file through this gateway must be
// refused because the locks it held on it were lost with its session.
func (m *Manager) Fenced(file FileID) bool {
	if m.cl == nil {
		return false
	}
	m.cl.mu.Lock()
	defer m.cl.mu.Unlock()
	at, ok := m.cl.fenced[file]
	if ok && m.cl.now().Sub(at) >= m.cl.fenceFor {
		delete(m.cl.fenced, file)
		return false
	}
	return ok
}

// Claimed reports whether this gateway has a record of file in the cluster
// (it holds, or is about to hold, a lock or share reservation there). A
// write to such a file proves, in its own transaction, that the record still
// exists; if the session was lost meanwhile, the write fails.
func (m *Manager) Claimed(file FileID) bool {
	if m.cl == nil {
		return false
	}
	s := m.shard(file)
	s.mu.Lock()
	fs := s.files[file]
	held := fs != nil && len(fs.locks)+len(fs.shares) > 0
	s.mu.Unlock()
	if held {
		return true
	}
	m.cl.mu.Lock()
	defer m.cl.mu.Unlock()
	return len(m.cl.pending[file]) > 0
}
