package etcdkv

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	grpcbackoff "google.golang.org/grpc/backoff"
	"google.golang.org/grpc/connectivity"

	"github.com/claudefs/cfs-gateway/internal/backend"
)

const (
	// keepAliveTime is the gRPC ping interval on connections with requests
	// in flight. etcd refuses pings more frequent than its
	// --grpc-keepalive-min-time (5 s by default).
	keepAliveTime = 10 * time.Second
	// growAt is the number of requests in flight on every connection of a
	// member at which the pool adds a connection.
	growAt = 8
	// maxRedialDelay caps gRPC's reconnection backoff, so that a member
	// that comes back is reconnected well within one health interval.
	maxRedialDelay = 2 * time.Second
)

func dialOptions(connectTimeout time.Duration) []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff: grpcbackoff.Config{
				BaseDelay:  100 * time.Millisecond,
				Multiplier: 1.6,
				Jitter:     0.2,
				MaxDelay:   maxRedialDelay,
			},
			MinConnectTimeout: connectTimeout,
		}),
		// The pool decides which connections live; gRPC must not drop
		// the kept minimum to idle on its own.
		grpc.WithIdleTimeout(0),
	}
}

// member is one etcd member and its pool of connections.
type member struct {
	s        *Store
	name     string
	endpoint string
	node     *backend.Node

	// conns is replaced, never modified, so that acquire reads it without
	// a lock.
	conns   atomic.Pointer[[]*conn]
	mu      sync.Mutex // serializes changes of conns
	growing atomic.Bool
	closed  bool
}

// conn is one gRPC connection to a member.
type conn struct {
	cli      *clientv3.Client
	kv       pb.KVClient
	maint    pb.MaintenanceClient
	inflight atomic.Int32
	lastUsed atomic.Int64 // unix nanoseconds
}

func (m *member) list() []*conn {
	if p := m.conns.Load(); p != nil {
		return *p
	}
	return nil
}

// dial opens one connection. Without authentication it returns at once
// and gRPC connects in the background.
func (m *member) dial() (*conn, error) {
	cli, err := clientv3.New(m.s.clientConfig([]string{m.endpoint}))
	if err != nil {
		return nil, fmt.Errorf("connecting to etcd member %s at %s: %w", m.name, m.endpoint, err)
	}
	c := &conn{cli: cli, kv: pb.NewKVClient(cli.ActiveConnection()), maint: pb.NewMaintenanceClient(cli.ActiveConnection())}
	c.lastUsed.Store(time.Now().UnixNano())
	return c, nil
}

// fill opens connections until the member has min_per_node.
func (m *member) fill() error {
	want := m.s.opts.Pool.MinPerNode
	for len(m.list()) < want {
		c, err := m.dial()
		if err != nil {
			return err
		}
		if !m.add(c) {
			_ = c.cli.Close()
			return nil
		}
	}
	return nil
}

// add puts c in the pool unless the pool is closed or full.
func (m *member) add(c *conn) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur := m.list()
	if m.closed || len(cur) >= m.s.opts.Pool.MaxPerNode {
		return false
	}
	next := append(append(make([]*conn, 0, len(cur)+1), cur...), c)
	m.conns.Store(&next)
	return true
}

// acquire returns the connection with the fewest requests in flight and
// counts one more on it; release undoes that. When every connection is
// busy the pool grows in the background.
func (m *member) acquire() (*conn, error) {
	cs := m.list()
	if len(cs) == 0 {
		return nil, fmt.Errorf("no connection to etcd member %s at %s yet", m.name, m.endpoint)
	}
	best := cs[0]
	for _, c := range cs[1:] {
		if c.inflight.Load() < best.inflight.Load() {
			best = c
		}
	}
	if best.inflight.Add(1) > growAt && len(cs) < m.s.opts.Pool.MaxPerNode {
		m.grow()
	}
	return best, nil
}

func (c *conn) release() {
	c.lastUsed.Store(time.Now().UnixNano())
	c.inflight.Add(-1)
}

func (m *member) grow() {
	if !m.growing.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer m.growing.Store(false)
		c, err := m.dial()
		if err != nil {
			m.s.log.Warn("cannot add a connection to etcd member", "backend", m.name, "err", err)
			return
		}
		if !m.add(c) {
			_ = c.cli.Close()
		}
	}()
}

// shrink retires connections above min_per_node that have been idle for
// max_idle_ms. A retired connection is closed once its last request ends.
func (m *member) shrink(now time.Time) {
	m.mu.Lock()
	cur := m.list()
	keep := make([]*conn, 0, len(cur))
	var retired []*conn
	for _, c := range cur {
		idle := now.Sub(time.Unix(0, c.lastUsed.Load()))
		if len(cur)-len(retired) > m.s.opts.Pool.MinPerNode && c.inflight.Load() == 0 && idle >= m.s.opts.Pool.MaxIdle {
			retired = append(retired, c)
			continue
		}
		keep = append(keep, c)
	}
	if len(retired) > 0 {
		m.conns.Store(&keep)
	}
	m.mu.Unlock()
	for _, c := range retired {
		go closeWhenIdle(c)
	}
}

func closeWhenIdle(c *conn) {
	for c.inflight.Load() > 0 {
		time.Sleep(10 * time.Millisecond)
	}
	_ = c.cli.Close()
}

func (m *member) closeAll() {
	m.mu.Lock()
	m.closed = true
	cur := m.list()
	m.conns.Store(nil)
	m.mu.Unlock()
	for _, c := range cur {
		_ = c.cli.Close()
	}
}

// ready reports whether some connection to the member is not known to be
// broken, so that Pick prefers members that can answer now.
func (m *member) ready() bool {
	for _, c := range m.list() {
		switch c.cli.ActiveConnection().GetState() {
		case connectivity.TransientFailure, connectivity.Shutdown:
		default:
			return true
		}
	}
	return false
}

// probe is the member's health check: its pool is topped up and trimmed,
// and the member must answer Status, know a leader and report no alarm.
func (s *Store) probe(ctx context.Context, n *backend.Node) error {
	m := s.members[n.Index]
	m.shrink(time.Now())
	if err := m.fill(); err != nil {
		return err
	}
	for _, c := range m.list() {
		if c.cli.ActiveConnection().GetState() == connectivity.TransientFailure {
			// A member that came back is redialled now rather than at
			// the end of gRPC's backoff, so that it is usable again
			// within one health interval.
			c.cli.ActiveConnection().ResetConnectBackoff()
		}
	}
	c, err := m.acquire()
	if err != nil {
		return err
	}
	// Waiting for the connection (bounded by the probe's timeout) lets a
	// redial finish before the verdict.
	resp, err := c.maint.Status(ctx, &pb.StatusRequest{}, grpc.WaitForReady(true))
	c.release()
	if err != nil {
		return fmt.Errorf("status of etcd member %s at %s: %w", m.name, m.endpoint, err)
	}
	if resp.Leader == 0 {
		return fmt.Errorf("etcd member %s at %s has no leader: the cluster has lost quorum or is electing", m.name, m.endpoint)
	}
	if len(resp.Errors) > 0 {
		return fmt.Errorf("etcd member %s at %s reports: %s", m.name, m.endpoint, strings.Join(resp.Errors, "; "))
	}
	return nil
}
