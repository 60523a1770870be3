// Package etcdkv is the scale-out kv.Store engine: the metadata of every
// gateway in one etcd cluster, with optimistic, serializable transactions
// built on etcd's multi-version store. It owns the key prefix, the
// transaction protocol, the connections to each etcd member and the
// mapping of etcd's errors to the kv contract; it knows nothing about files
// and must not offer what the other engines cannot (see package kv).
//
// # Transactions
//
// One run of an Update works against one member:
//
//   - Its first read is linearizable and fixes the read revision R; every
//     later read, and every page of a scan, is served at R, so fn sees one
//     snapshot plus its own buffered writes. GetMany reads its keys with
//     read-only etcd Txns of up to 128 ranges each (--max-txn-ops), four
//     in flight at once after the first, so a listing page costs a few
//     round trips rather than one per entry.
//   - Commit is one etcd Txn: If every key read is unchanged
//     (ModRevision == the revision seen, 0 for a key read as missing),
//     Then the puts and deletes. Keys only written are not compared, as
//     the kv contract says: blind writers of one key all commit, in the
//     order etcd applies them. A transaction that read nothing commits
//     without a comparison. A failed comparison reruns fn after a random,
//     growing pause, up to Options.MaxRetries times, then Update returns
//     kv.ErrConflict.
//   - etcd accepts at most 128 comparisons (its --max-txn-ops). When a
//     transaction read more keys, the comparisons of keys read as missing
//     are merged into range comparisons (ModRevision < R+1 over
//     [first, last]), which can only add needless reruns, never miss a
//     conflict. A transaction that read more than 128 present keys is
//     kv.ErrTooLarge.
//   - A commit whose outcome is unknown (timeout, connection lost, leader
//     lost) is not rerun: it may have been applied. Update returns a
//     *kv.Unavailable and the client retries at its level.
//   - A transaction spans several round trips, so concurrent
//     read-modify-write transactions on one key (a counter) keep failing
//     each other's comparisons. After a conflict, a rerun holds local locks
//     on the keys its failed run both read and wrote: the contenders of one
//     gateway then commit in turn, and the comparisons still catch those
//     of other gateways.
//
// # Members, connections and breakers
//
// Each member (meta-1, meta-2, ... in the order of the endpoints) has its
// own pool of gRPC connections: connection_pool.min_per_node are opened at
// start and kept, more are added up to max_per_node while every connection
// carries several requests at once, and those above the minimum are closed
// after max_idle_ms without use. Every dial is bounded by
// connect_timeout_ms; gRPC keepalive pings detect dead connections during
// requests; a lost connection is redialled within two seconds. The health
// loop (package backend) calls the maintenance Status RPC on every member
// each health_check_interval_ms: a member is up when it answers, knows a
// leader and reports no alarm. Each run of View or Update picks one member
// through its circuit breaker; a failure is charged to that member; every
// RPC is bounded by circuit_breaker.timeout_ms and asks for a member with a
// leader, so that a member cut from the quorum fails at once instead of
// waiting. Lost quorum, timeouts and unreachable members surface as
// *kv.Unavailable.
//
// Watch streams changes under a prefix, for the cache invalidation of
// gateways that share the cluster.
package etcdkv

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/claudefs/cfs-gateway/internal/backend"
	"github.com/claudefs/cfs-gateway/internal/engine/kv"
	"github.com/claudefs/cfs-gateway/internal/metrics"
)

// Options configure a Store.
type Options struct {
	// Endpoints are the members' client addresses, host:port or URLs
	// (http://, https://). Their order gives the node names meta-1, ...
	Endpoints []string
	// Prefix is put in front of every key, so that several filesystems
	// (or other users) can share a cluster.
	Prefix string
	// Username and Password enable etcd authentication.
	Username string
	Password string
	// TLS, if set, is used for every connection (with https:// or bare
	// host:port endpoints).
	TLS *tls.Config
	// Pool sizes the connections to each member.
	Pool backend.PoolConfig
	// Breaker configures the circuit breaker of each member.
	Breaker backend.BreakerConfig
	// Metrics receives the per-member series and rejections; nil is fine.
	Metrics *metrics.Metrics
	// Logger receives the engine's messages. Nil means slog.Default().
	Logger *slog.Logger
	// MaxRetries is how many times Update reruns a conflicting
	// transaction before it returns kv.ErrConflict. Default 100.
	MaxRetries int
	// Now is the breakers' clock, for tests. Nil means time.Now.
	Now func() time.Time
}

const (
	defaultMaxRetries = 100
	// maxCompares is etcd's default --max-txn-ops, which bounds the
	// comparisons as well as the operations of one Txn.
	maxCompares = 128
	// scanPage is the number of pairs a scan fetches per request.
	scanPage = 256
	// Backoff between reruns grows from backoffBase to backoffMax.
	backoffBase = 500 * time.Microsecond
	backoffMax  = 20 * time.Millisecond
)

// Store is a kv.Store over an etcd cluster. It is safe for concurrent use.
type Store struct {
	prefix     []byte
	opts       Options
	log        *slog.Logger
	maxRetries int
	timeout    time.Duration
	group      *backend.Group
	members    []*member

	// locks serializes the reruns of local transactions on the same keys.
	locks *keyLocks

	// active counts View and Update calls in progress; Close waits for
	// them. A counter rather than a read lock, because the core nests a
	// View inside an Update, and a nested read lock deadlocks against a
	// waiting Close.
	mu     sync.Mutex
	idle   *sync.Cond
	active int
	closed bool
	// shut mirrors closed for the watches, which are not counted.
	shut atomic.Bool

	watchMu  sync.Mutex
	watchCli *clientv3.Client

	commits, reruns, exhausted atomic.Uint64
}

var _ kv.Store = (*Store)(nil)

// Open connects to the cluster. It fails when no member answers a health
// check within circuit_breaker.timeout_ms; members that are down at the
// start are used once they answer.
func Open(ctx context.Context, opts Options) (*Store, error) {
	if len(opts.Endpoints) == 0 {
		return nil, errors.New("etcdkv: no endpoints: set metadata.etcd.endpoints to the client addresses of the etcd members")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.MaxRetries <= 0 {
		opts.MaxRetries = defaultMaxRetries
	}
	opts.Pool = opts.Pool.WithDefaults()
	opts.Breaker = opts.Breaker.WithDefaults()
	s := &Store{
		prefix:     []byte(opts.Prefix),
		opts:       opts,
		log:        opts.Logger.With("engine", "etcd"),
		maxRetries: opts.MaxRetries,
		timeout:    opts.Breaker.Timeout,
	}
	s.idle = sync.NewCond(&s.mu)
	s.locks = newKeyLocks()
	specs := make([]backend.NodeSpec, len(opts.Endpoints))
	for i, ep := range opts.Endpoints {
		specs[i] = backend.NodeSpec{Name: fmt.Sprintf("meta-%d", i+1), Addr: ep}
		s.members = append(s.members, &member{s: s, name: specs[i].Name, endpoint: ep})
	}
	s.group = backend.NewGroup(specs, backend.GroupOptions{
		Pool:    opts.Pool,
		Breaker: opts.Breaker,
		Metrics: opts.Metrics,
		Now:     opts.Now,
		Logger:  s.log,
		Probe:   s.probe,
		Ready:   func(n *backend.Node) bool { return s.members[n.Index].ready() },
	})
	for i, m := range s.members {
		m.node = s.group.Nodes()[i]
	}
	var wg sync.WaitGroup
	for _, m := range s.members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := m.fill(); err != nil {
				s.log.Warn("cannot connect to etcd member yet; retrying at each health check", "backend", m.name, "endpoint", m.endpoint, "err", err)
			}
		}()
	}
	wg.Wait()
	s.group.CheckNow(ctx)
	if err := s.group.Healthy(); err != nil {
		s.closeMembers()
		return nil, fmt.Errorf("etcdkv: no etcd member is usable at %s: %w; check metadata.etcd.endpoints and that the cluster has quorum",
			strings.Join(opts.Endpoints, ","), err)
	}
	s.group.Start()
	return s, nil
}

// Close stops the health checks and closes every connection. Operations
// in progress finish first.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return kv.ErrClosed
	}
	s.closed = true
	s.shut.Store(true)
	for s.active > 0 {
		s.idle.Wait()
	}
	s.mu.Unlock()
	s.group.Close()
	s.closeMembers()
	s.watchMu.Lock()
	if s.watchCli != nil {
		_ = s.watchCli.Close()
		s.watchCli = nil
	}
	s.watchMu.Unlock()
	return nil
}

func (s *Store) closeMembers() {
	for _, m := range s.members {
		m.closeAll()
	}
}

func (s *Store) enter() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return kv.ErrClosed
	}
	s.active++
	return nil
}

func (s *Store) leave() {
	s.mu.Lock()
	s.active--
	if s.active == 0 {
		s.idle.Broadcast()
	}
	s.mu.Unlock()
}

// pick chooses the member for one run of View or Update.
func (s *Store) pick() (*member, backend.Ticket, error) {
	n, t, err := s.group.Pick()
	if err != nil {
		return nil, t, &kv.Unavailable{Err: err}
	}
	return s.members[n.Index], t, nil
}

// finish records the outcome of one run on its member's breaker.
func finish(ctx context.Context, t backend.Ticket, o *opState) {
	switch {
	case o.failure != nil:
		t.Done(backend.Failure)
	case ctx.Err() != nil:
		t.Done(backend.Ignore)
	default:
		t.Done(backend.Success)
	}
}

// View runs fn against one snapshot of the cluster.
func (s *Store) View(ctx context.Context, fn func(r kv.Reader) error) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return err
	}
	m, t, err := s.pick()
	if err != nil {
		return err
	}
	r := &reader{s: s, m: m}
	err = fn(r)
	finish(ctx, t, &r.op)
	return err
}

// Update runs fn in an optimistic transaction; see the package comment.
func (s *Store) Update(ctx context.Context, fn func(tx kv.Txn) error) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	var hot []string // keys the last conflicting run read and wrote
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		release := s.locks.acquire(ctx, hot, s.timeout)
		updated, err := s.attempt(ctx, fn)
		release()
		if !errors.Is(err, errRerun) {
			return err
		}
		hot = updated
		if attempt >= s.maxRetries {
			s.exhausted.Add(1)
			return fmt.Errorf("%w: gave up after %d runs", kv.ErrConflict, attempt+1)
		}
		s.reruns.Add(1)
		if err := backoff(ctx, attempt); err != nil {
			return err
		}
	}
}

// attempt runs fn once on one member and commits it. When the run must be
// rerun, it returns the keys the run both read and wrote, for the locks of
// the rerun: only a read can fail a commit, and those keys are the ones
// that contending read-modify-write transactions fail each other on.
func (s *Store) attempt(ctx context.Context, fn func(tx kv.Txn) error) ([]string, error) {
	m, ticket, err := s.pick()
	if err != nil {
		return nil, err
	}
	t := newTxn(s, m)
	err = fn(t)
	if err == nil {
		err = t.err
	}
	if err == nil {
		err = t.commit(ctx)
	}
	finish(ctx, ticket, &t.op)
	if !errors.Is(err, errRerun) {
		return nil, err
	}
	var updated []string
	for k := range t.reads {
		if _, ok := t.writes.byKey[k]; ok {
			updated = append(updated, k)
		}
	}
	return updated, err
}

// backoff sleeps before a transaction's next attempt.
func backoff(ctx context.Context, attempt int) error {
	return kv.Backoff(ctx, attempt, backoffBase, backoffMax)
}

// Health reports nil while at least one member is usable, for the
// gateway's health endpoint.
func (s *Store) Health(ctx context.Context) error { return s.group.Healthy() }

// Members returns each member's health and breaker state.
func (s *Store) Members() []backend.NodeStatus { return s.group.Statuses() }

// Stats counts transaction outcomes since Open.
type Stats struct {
	// Commits is the number of Updates that wrote something.
	Commits uint64
	// Reruns is the number of times fn was rerun after a conflict.
	Reruns uint64
	// Exhausted is the number of Updates that returned kv.ErrConflict.
	Exhausted uint64
}

// Stats returns the transaction counters.
func (s *Store) Stats() Stats {
	return Stats{Commits: s.commits.Load(), Reruns: s.reruns.Load(), Exhausted: s.exhausted.Load()}
}

// clientConfig is the etcd client configuration for one connection to the
// given endpoints.
func (s *Store) clientConfig(endpoints []string) clientv3.Config {
	return clientv3.Config{
		Endpoints: endpoints,
		// With authentication the client logs in while it connects; this
		// bounds that. Without, connecting happens in the background.
		DialTimeout:          s.opts.Pool.ConnectTimeout,
		DialKeepAliveTime:    keepAliveTime,
		DialKeepAliveTimeout: s.opts.Pool.ConnectTimeout,
		TLS:                  s.opts.TLS,
		Username:             s.opts.Username,
		Password:             s.opts.Password,
		Logger:               zap.NewNop(),
		DialOptions:          dialOptions(s.opts.Pool.ConnectTimeout),
	}
}

func clip(b []byte) []byte { return b[:len(b):len(b)] }

// NodeStatus reports each backend node's health and breaker state, in the
// order of the configured endpoints (for the gateway's /health).
func (s *Store) NodeStatus() []backend.NodeStatus {
	nodes := s.group.Nodes()
	out := make([]backend.NodeStatus, len(nodes))
	for i, n := range nodes {
		out[i] = n.Status()
	}
	return out
}
