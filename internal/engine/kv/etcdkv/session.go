package etcdkv

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// A Session is one gateway's etcd lease, and the records it keeps under it.
// Records are grouped: every gateway has at most one record in a group, at
// the group's key followed by its 8-byte session id, and the group's key
// itself is a guard that every claim rewrites. A claim reads the whole
// group, lets the caller check the other sessions' records, and commits its
// own record only if the guard did not change meanwhile, so two gateways
// claiming in one group are serialized without a lock service.
//
// The lease is renewed while the gateway runs. If the gateway dies, stalls
// or is cut off for longer than the TTL, etcd deletes its records. When the
// renewal finds the lease gone, the session revokes it for good measure,
// calls the lost callback (the owner must forget what the records stood
// for), and the next write starts a new lease with a new id, so a record of
// the old session can never be mistaken for one of the new.
//
// Sessions use the store's watch connection, not the pooled connections of
// transactions: they carry little traffic and must not wait behind a busy
// pool.
type Session struct {
	s      *Store
	ttl    time.Duration
	onLost func(id int64)

	mu     sync.Mutex
	id     clientv3.LeaseID // 0: none yet, or the last one was lost
	stop   context.CancelFunc
	closed bool
}

// ErrSessionLost is returned by a session write that found its lease gone;
// the lost callback has run or is about to.
var ErrSessionLost = errors.New("etcdkv: session lease lost")

// OpenSession grants a lease of ttl (etcd rounds it up to its minimum, a
// few seconds) and keeps it alive. onLost runs, on its own goroutine, with
// the id of each session that is lost.
func (s *Store) OpenSession(ctx context.Context, ttl time.Duration, onLost func(id int64)) (*Session, error) {
	if ttl < time.Second {
		return nil, fmt.Errorf("etcdkv: session TTL %v is below one second", ttl)
	}
	if onLost == nil {
		onLost = func(int64) {}
	}
	se := &Session{s: s, ttl: ttl, onLost: onLost}
	se.mu.Lock()
	defer se.mu.Unlock()
	if _, err := se.leaseLocked(ctx); err != nil {
		return nil, err
	}
	return se, nil
}

// ID is the current session id, 0 between a loss and the next write.
func (se *Session) ID() int64 {
	se.mu.Lock()
	defer se.mu.Unlock()
	return int64(se.id)
}

// leaseLocked returns the live lease, granting a new one if the last was
// lost.
func (se *Session) leaseLocked(ctx context.Context) (clientv3.LeaseID, error) {
	if se.closed {
		return 0, fmt.Errorf("etcdkv: session closed")
	}
	if se.id != 0 {
		return se.id, nil
	}
	cli, err := se.s.watchClient()
	if err != nil {
		return 0, err
	}
	gctx, cancel := context.WithTimeout(ctx, se.s.timeout)
	g, err := cli.Grant(gctx, int64((se.ttl+time.Second-1)/time.Second))
	cancel()
	if err != nil {
		return 0, fmt.Errorf("etcdkv: grant session lease: %w", err)
	}
	kctx, stop := context.WithCancel(context.Background())
	ch, err := cli.KeepAlive(kctx, g.ID)
	if err != nil {
		stop()
		return 0, fmt.Errorf("etcdkv: keep session lease %x alive: %w", g.ID, err)
	}
	se.id, se.stop = g.ID, stop
	go se.renew(kctx, g.ID, ch)
	se.s.log.Info("etcd session started", "session", fmt.Sprintf("%x", int64(g.ID)), "ttl", se.ttl)
	return g.ID, nil
}

// renew drains the keepalive responses; the channel closes when the lease
// expired (the renewal came too late) or the session is closing.
func (se *Session) renew(ctx context.Context, id clientv3.LeaseID, ch <-chan *clientv3.LeaseKeepAliveResponse) {
	for range ch {
	}
	if ctx.Err() != nil {
		return
	}
	se.lost(id, "the lease could not be renewed within its TTL")
}

// lost forgets lease id (if it is still current) and tells the owner.
func (se *Session) lost(id clientv3.LeaseID, why string) {
	se.mu.Lock()
	if se.id != id {
		se.mu.Unlock()
		return
	}
	se.id = 0
	se.stop()
	se.mu.Unlock()
	se.s.log.Error("etcd session lost: every lock record of this gateway is gone and its locks are dropped; clients must lock again",
		"session", fmt.Sprintf("%x", int64(id)), "why", why, "ttl", se.ttl)
	// The lease may still exist if only this side timed out; its records
	// must go now, since the owner is about to forget them.
	if cli, err := se.s.watchClient(); err == nil {
		rctx, cancel := context.WithTimeout(context.Background(), se.s.timeout)
		_, _ = cli.Revoke(rctx, id)
		cancel()
	}
	se.onLost(int64(id))
}

// Close revokes the lease, deleting every record of the session.
func (se *Session) Close() error {
	se.mu.Lock()
	id := se.id
	se.closed, se.id = true, 0
	if se.stop != nil {
		se.stop()
	}
	se.mu.Unlock()
	if id == 0 {
		return nil
	}
	cli, err := se.s.watchClient()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), se.s.timeout)
	defer cancel()
	_, err = cli.Revoke(ctx, id)
	return err
}

// RecordKey is the key (without the store's prefix) of this session's
// record in group, or nil when there is no live session. A transaction that
// reads it and finds it missing knows the record was deleted, by the owner
// or by the lease's expiry: that is how writes are fenced.
func (se *Session) RecordKey(group []byte) []byte {
	id := se.ID()
	if id == 0 {
		return nil
	}
	return recordKey(group, id)
}

func recordKey(group []byte, id int64) []byte {
	k := make([]byte, len(group), len(group)+8)
	copy(k, group)
	return binary.BigEndian.AppendUint64(k, uint64(id))
}

// Claim writes value as this session's record in group if check accepts
// the other sessions' records, read in the same snapshot. It returns the
// revision of that snapshot, after which Wait watches for changes, and
// check's error when check refused.
func (se *Session) Claim(ctx context.Context, group, value []byte, check func(others [][]byte) error) (int64, error) {
	cli, err := se.s.watchClient()
	if err != nil {
		return 0, err
	}
	full := se.s.fullKey(group)
	for attempt := 0; ; attempt++ {
		se.mu.Lock()
		id, err := se.leaseLocked(ctx)
		se.mu.Unlock()
		if err != nil {
			return 0, err
		}
		rctx, cancel := context.WithTimeout(clientv3.WithRequireLeader(ctx), se.s.timeout)
		resp, err := cli.Get(rctx, string(full), clientv3.WithPrefix())
		cancel()
		if err != nil {
			return 0, fmt.Errorf("etcdkv: read lock group: %w", err)
		}
		var guardMod int64
		var others [][]byte
		own := recordKey(full, int64(id))
		for _, p := range resp.Kvs {
			switch {
			case len(p.Key) == len(full):
				guardMod = p.ModRevision
			case !bytes.Equal(p.Key, own):
				others = append(others, p.Value)
			}
		}
		rev := resp.Header.Revision
		if err := check(others); err != nil {
			return rev, err
		}
		tctx, cancel := context.WithTimeout(clientv3.WithRequireLeader(ctx), se.s.timeout)
		tr, err := cli.Txn(tctx).
			If(clientv3.Compare(clientv3.ModRevision(string(full)), "=", guardMod)).
			Then(clientv3.OpPut(string(full), ""), clientv3.OpPut(string(own), string(value), clientv3.WithLease(id))).
			Commit()
		cancel()
		if err != nil {
			if errors.Is(err, rpctypes.ErrLeaseNotFound) {
				se.lost(id, "etcd no longer knows the lease")
				return rev, ErrSessionLost
			}
			return rev, fmt.Errorf("etcdkv: commit lock record: %w", err)
		}
		if tr.Succeeded {
			return tr.Header.Revision, nil
		}
		if err := backoff(ctx, attempt); err != nil {
			return rev, err
		}
	}
}

// Put replaces this session's record in group with value, or deletes it
// when value is nil, without looking at the others: for changes that only
// give up what was claimed.
func (se *Session) Put(ctx context.Context, group, value []byte) error {
	cli, err := se.s.watchClient()
	if err != nil {
		return err
	}
	se.mu.Lock()
	id := se.id
	if value != nil {
		id, err = se.leaseLocked(ctx)
	}
	se.mu.Unlock()
	if err != nil {
		return err
	}
	if id == 0 {
		return nil // nothing to delete: the lost lease took the record with it
	}
	own := string(recordKey(se.s.fullKey(group), int64(id)))
	pctx, cancel := context.WithTimeout(clientv3.WithRequireLeader(ctx), se.s.timeout)
	defer cancel()
	if value == nil {
		_, err = cli.Delete(pctx, own)
	} else {
		_, err = cli.Put(pctx, own, string(value), clientv3.WithLease(id))
	}
	if errors.Is(err, rpctypes.ErrLeaseNotFound) {
		se.lost(id, "etcd no longer knows the lease")
		return ErrSessionLost
	}
	if err != nil {
		return fmt.Errorf("etcdkv: write lock record: %w", err)
	}
	return nil
}

// Others returns the records of the other sessions in group.
func (se *Session) Others(ctx context.Context, group []byte) ([][]byte, error) {
	cli, err := se.s.watchClient()
	if err != nil {
		return nil, err
	}
	full := se.s.fullKey(group)
	rctx, cancel := context.WithTimeout(clientv3.WithRequireLeader(ctx), se.s.timeout)
	defer cancel()
	resp, err := cli.Get(rctx, string(full), clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("etcdkv: read lock group: %w", err)
	}
	own := recordKey(full, se.ID())
	var others [][]byte
	for _, p := range resp.Kvs {
		if len(p.Key) != len(full) && !bytes.Equal(p.Key, own) {
			others = append(others, p.Value)
		}
	}
	return others, nil
}

// Wait returns once a record of group changed after revision rev (by any
// session, expiry included), when ctx ends, or after a few seconds at most,
// so that a caller rechecks even if the watch was interrupted.
func (se *Session) Wait(ctx context.Context, group []byte, rev int64) error {
	cli, err := se.s.watchClient()
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(clientv3.WithRequireLeader(ctx), 5*time.Second)
	defer cancel()
	for resp := range cli.Watch(wctx, string(se.s.fullKey(group)), clientv3.WithPrefix(), clientv3.WithRev(rev+1)) {
		if resp.Err() != nil || resp.CompactRevision != 0 || len(resp.Events) > 0 {
			break
		}
	}
	return ctx.Err()
}

// fullKey puts the store's prefix in front of key.
func (s *Store) fullKey(key []byte) []byte {
	return append(append(make([]byte, 0, len(s.prefix)+len(key)), s.prefix...), key...)
}
