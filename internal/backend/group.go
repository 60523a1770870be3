package backend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/claudefs/cfs-gateway/internal/metrics"
)

// NodeSpec names one node of a backend service.
type NodeSpec struct {
	// Name is the backend label of its metrics: meta-1, blob-1, ...
	Name string
	// Addr is where it is reached, for logs and status.
	Addr string
}

// Node is one backend node: its breaker and the last health check's
// verdict.
type Node struct {
	Name  string
	Addr  string
	Index int // position in the Group, for engines that keep per-node state
	// Breaker decides whether the node gets requests.
	Breaker *Breaker

	up      atomic.Bool
	mu      sync.Mutex
	lastErr error
	checked time.Time
}

// Up reports whether the last health check found the node healthy (true
// before the first check).
func (n *Node) Up() bool { return n.up.Load() }

// setHealth records a health check result and logs transitions.
func (n *Node) setHealth(err error, at time.Time, log *slog.Logger) {
	n.mu.Lock()
	n.lastErr, n.checked = err, at
	n.mu.Unlock()
	wasUp := n.up.Swap(err == nil)
	switch {
	case wasUp && err != nil:
		log.Warn("backend node down", "backend", n.Name, "addr", n.Addr, "err", err)
	case !wasUp && err == nil:
		log.Info("backend node up", "backend", n.Name, "addr", n.Addr)
	}
}

// NodeStatus is a node's state for health reports.
type NodeStatus struct {
	Name      string
	Addr      string
	Up        bool
	Breaker   State
	LastError string    // of the last health check, "" if it passed
	CheckedAt time.Time // zero before the first check
}

// Status returns the node's state.
func (n *Node) Status() NodeStatus {
	n.mu.Lock()
	defer n.mu.Unlock()
	s := NodeStatus{Name: n.Name, Addr: n.Addr, Up: n.Up(), Breaker: n.Breaker.State(), CheckedAt: n.checked}
	if n.lastErr != nil {
		s.LastError = n.lastErr.Error()
	}
	return s
}

// Probe checks the health of one node. It must respect ctx.
type Probe func(ctx context.Context, n *Node) error

// GroupOptions configure a Group; the zero value works (no health checks).
type GroupOptions struct {
	Pool    PoolConfig
	Breaker BreakerConfig
	// Metrics receives the per-node series and the rejections; nil records
	// nothing.
	Metrics *metrics.Metrics
	// Now is the breakers' clock. Nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
	// Probe is the health check; nil disables the health loop.
	Probe Probe
	// Ready, if set, tells whether a node can take a request right now
	// (for example, it has an established connection). Pick prefers ready
	// nodes but still tries the others before rejecting.
	Ready func(n *Node) bool
}

// Group is the set of nodes of one backend service (the etcd members, the
// object store endpoints), with a breaker per node and a health loop.
type Group struct {
	nodes    []*Node
	pool     PoolConfig
	breaker  BreakerConfig
	probe    Probe
	ready    func(*Node) bool
	rejected counter
	log      *slog.Logger
	next     atomic.Uint64

	stopOnce sync.Once
	cancel   context.CancelFunc
	done     chan struct{}
}

// NewGroup returns a group of the given nodes, each with a closed breaker
// and its metric series created. Start begins the health loop.
func NewGroup(specs []NodeSpec, opts GroupOptions) *Group {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	g := &Group{
		pool:    opts.Pool.WithDefaults(),
		breaker: opts.Breaker.WithDefaults(),
		probe:   opts.Probe,
		ready:   opts.Ready,
		log:     opts.Logger,
	}
	if opts.Metrics != nil {
		g.rejected = opts.Metrics.RejectedRequests
	}
	for i, s := range specs {
		n := &Node{Name: s.Name, Addr: s.Addr, Index: i}
		n.up.Store(true)
		n.Breaker = NewBreaker(s.Name, g.breaker, BreakerOptions{
			Now:     opts.Now,
			Metrics: opts.Metrics.Backend(s.Name),
			Logger:  opts.Logger,
		})
		g.nodes = append(g.nodes, n)
	}
	return g
}

// Nodes returns the group's nodes in configuration order.
func (g *Group) Nodes() []*Node { return g.nodes }

// Pool returns the connection pool settings, with defaults filled in.
func (g *Group) Pool() PoolConfig { return g.pool }

// Breaker returns the breaker settings, with defaults filled in.
func (g *Group) Breaker() BreakerConfig { return g.breaker }

// Timeout is circuit_breaker.timeout_ms, the bound of every operation.
func (g *Group) Timeout() time.Duration { return g.breaker.Timeout }

// Pick chooses a node for one request and returns the ticket its breaker
// issued. It fails with an *UnavailableError wrapping ErrOpen, counted in
// gateway_rejected_requests_total, when no breaker admits a request.
func (g *Group) Pick() (*Node, Ticket, error) {
	count := len(g.nodes)
	if count == 0 {
		return nil, Ticket{}, &UnavailableError{Backend: "none", Err: errors.New("no backend nodes configured")}
	}
	start := int(g.next.Add(1) % uint64(count))
	preferred := func(n *Node) bool {
		return n.Up() && n.Breaker.State() == Closed && (g.ready == nil || g.ready(n))
	}
	for pass := 0; pass < 2; pass++ {
		for i := 0; i < count; i++ {
			n := g.nodes[(start+i)%count]
			if preferred(n) != (pass == 0) {
				continue
			}
			if t, ok := n.Breaker.admit(); ok {
				return n, t, nil
			}
		}
	}
	if g.rejected != nil {
		g.rejected.Inc()
	}
	return nil, Ticket{}, &UnavailableError{Backend: g.names(), Err: ErrOpen}
}

func (g *Group) names() string {
	names := make([]string, len(g.nodes))
	for i, n := range g.nodes {
		names[i] = n.Name
	}
	return strings.Join(names, ",")
}

// Do runs op on a node chosen by Pick, bounded by the breaker timeout, and
// records its outcome: failed(err) decides whether a non-nil error is the
// backend's fault. A failure, or the timeout, comes back as an
// *UnavailableError naming the node; other errors come back as op
// returned them. When ctx itself ends, Do returns ctx's error.
func (g *Group) Do(ctx context.Context, op func(ctx context.Context, n *Node) error, failed func(error) bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	n, t, err := g.Pick()
	if err != nil {
		return err
	}
	opCtx, cancel := context.WithTimeout(ctx, g.breaker.Timeout)
	err = op(opCtx, n)
	timedOut := opCtx.Err() == context.DeadlineExceeded
	cancel()
	switch {
	case err == nil:
		t.Done(Success)
		return nil
	case ctx.Err() != nil:
		t.Done(Ignore)
		return ctx.Err()
	case timedOut || failed(err):
		t.Done(Failure)
		if IsUnavailable(err) {
			return err
		}
		if timedOut && !errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("%w (timeout_ms %d exceeded)", err, g.breaker.Timeout.Milliseconds())
		}
		return &UnavailableError{Backend: n.Name + " (" + n.Addr + ")", Err: err}
	default:
		t.Done(Success)
		return err
	}
}

// Start begins the health loop: a check of every node every
// health_check_interval_ms, until Close. Callers that need a verdict at
// once run CheckNow first. Without a Probe it does nothing.
func (g *Group) Start() {
	if g.probe == nil || g.cancel != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	g.cancel = cancel
	g.done = make(chan struct{})
	go func() {
		defer close(g.done)
		tick := time.NewTicker(g.pool.HealthCheckInterval)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			g.CheckNow(ctx)
		}
	}()
}

// Close stops the health loop and waits for it.
func (g *Group) Close() {
	g.stopOnce.Do(func() {
		if g.cancel != nil {
			g.cancel()
			<-g.done
		}
	})
}

// CheckNow runs one health check of every node, concurrently, and returns
// when all are done.
func (g *Group) CheckNow(ctx context.Context) {
	if g.probe == nil {
		return
	}
	var wg sync.WaitGroup
	for _, n := range g.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g.check(ctx, n)
		}()
	}
	wg.Wait()
}

// check probes one node, records whether it is up and feeds its breaker:
// while closed a probe is one more operation; once the open period has
// passed, a healthy node's probes are the trials that close it.
func (g *Group) check(ctx context.Context, n *Node) {
	run := func() error {
		pctx, cancel := context.WithTimeout(ctx, g.breaker.Timeout)
		defer cancel()
		return g.probe(pctx, n)
	}
	err := run()
	if ctx.Err() != nil {
		return
	}
	n.setHealth(err, time.Now(), g.log)
	switch {
	case n.Breaker.State() == Closed:
		if t, ok := n.Breaker.admit(); ok {
			t.Done(outcome(err))
		}
	case err != nil:
		// An open breaker past its period turns half-open and, with this
		// failed trial, opens again for another period.
		if t, ok := n.Breaker.admit(); ok {
			t.Done(Failure)
		}
	default:
		for i := 0; i < g.breaker.SuccessThreshold && n.Breaker.State() != Closed; i++ {
			t, ok := n.Breaker.admit()
			if !ok {
				return
			}
			perr := run()
			if ctx.Err() != nil {
				t.Done(Ignore)
				return
			}
			t.Done(outcome(perr))
			if perr != nil {
				n.setHealth(perr, time.Now(), g.log)
				return
			}
		}
	}
}

func outcome(err error) Outcome {
	if err != nil {
		return Failure
	}
	return Success
}

// Healthy returns nil when at least one node is up with a breaker that is
// not open, and otherwise an error describing every node, for the
// gateway's health endpoint.
func (g *Group) Healthy() error {
	var problems []string
	for _, n := range g.nodes {
		s := n.Status()
		if s.Up && s.Breaker != Open {
			return nil
		}
		msg := n.Name + " (" + n.Addr + "): breaker " + s.Breaker.String()
		if s.LastError != "" {
			msg += ", " + s.LastError
		}
		problems = append(problems, msg)
	}
	return errors.New("no backend node available: " + strings.Join(problems, "; "))
}

// Statuses returns every node's state.
func (g *Group) Statuses() []NodeStatus {
	out := make([]NodeStatus, len(g.nodes))
	for i, n := range g.nodes {
		out[i] = n.Status()
	}
	return out
}
