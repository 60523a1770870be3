package backend

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/claudefs/cfs-gateway/internal/metrics"
)

// State is a circuit breaker's state.
type State int32

// Breaker states, ordered like metrics.BreakerState.
const (
	Closed   State = State(metrics.BreakerClosed)
	HalfOpen State = State(metrics.BreakerHalfOpen)
	Open     State = State(metrics.BreakerOpen)
)

func (s State) String() string {
	switch s {
	case Closed:
		return "closed"
	case HalfOpen:
		return "half-open"
	case Open:
		return "open"
	}
	return "unknown"
}

// Outcome is what became of a request a breaker admitted.
type Outcome int

const (
	// Success: the backend answered (including answers such as "not
	// found" or "conflict").
	Success Outcome = iota
	// Failure: the backend failed or timed out.
	Failure
	// Ignore: the request ended without telling anything about the backend
	// (the caller gave up first).
	Ignore
)

// counter is the part of a Prometheus counter a breaker uses.
type counter interface{ Inc() }

// BreakerOptions are the breaker's collaborators; the zero value works.
type BreakerOptions struct {
	// Now is the clock; tests inject one. Nil means time.Now.
	Now func() time.Time
	// Metrics receives the breaker state and the failures of the node.
	Metrics *metrics.BackendMetrics
	// Rejected counts requests refused by this breaker. Group counts its
	// own rejections and leaves this nil.
	Rejected counter
	// Logger receives state changes. Nil means slog.Default().
	Logger *slog.Logger
}

// Breaker is the circuit breaker of one backend node. It is safe for
// concurrent use.
type Breaker struct {
	name     string
	cfg      BreakerConfig
	now      func() time.Time
	obs      *metrics.BackendMetrics
	rejected counter
	log      *slog.Logger

	// state mirrors st for lock-free reads by Pick.
	state atomic.Int32

	mu sync.Mutex
	st State
	// gen changes with every state change, so that a request admitted in
	// an earlier state cannot move the current one: a slow failure that
	// started before the breaker opened must not extend the open period,
	// nor a late success count as a trial.
	gen       uint64
	failures  int // consecutive, while closed
	successes int // while half-open
	trials    int // admitted and not yet done, while half-open
	openUntil time.Time
}

// NewBreaker returns a closed breaker for the node called name.
func NewBreaker(name string, cfg BreakerConfig, opts BreakerOptions) *Breaker {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	b := &Breaker{
		name:     name,
		cfg:      cfg.WithDefaults(),
		now:      opts.Now,
		obs:      opts.Metrics,
		rejected: opts.Rejected,
		log:      opts.Logger,
	}
	b.obs.SetBreakerState(metrics.BreakerClosed)
	return b
}

// Name is the node's name, the backend label of its metrics.
func (b *Breaker) Name() string { return b.name }

// Config returns the breaker's settings.
func (b *Breaker) Config() BreakerConfig { return b.cfg }

// State returns the current state. An open breaker whose open period has
// passed still reports Open until the next request or probe turns it
// half-open.
func (b *Breaker) State() State { return State(b.state.Load()) }

// Ticket is the permission to run one request. Every ticket must be
// finished with Done exactly once. The zero Ticket does nothing.
type Ticket struct {
	b     *Breaker
	gen   uint64
	trial bool
}

// Allow asks to run one request. It fails with an *UnavailableError
// wrapping ErrOpen, counted as rejected, while the breaker is open or
// half-open with all its trials in flight.
func (b *Breaker) Allow() (Ticket, error) {
	if t, ok := b.admit(); ok {
		return t, nil
	}
	if b.rejected != nil {
		b.rejected.Inc()
	}
	return Ticket{}, &UnavailableError{Backend: b.name, Err: ErrOpen}
}

// admit is Allow without counting a rejection.
func (b *Breaker) admit() (Ticket, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.st {
	case Closed:
		return Ticket{b: b, gen: b.gen}, true
	case Open:
		if b.now().Before(b.openUntil) {
			return Ticket{}, false
		}
		b.setLocked(HalfOpen)
	}
	if b.trials >= b.cfg.SuccessThreshold {
		return Ticket{}, false
	}
	b.trials++
	return Ticket{b: b, gen: b.gen, trial: true}, true
}

// Done records the outcome of the request the ticket admitted.
func (t Ticket) Done(o Outcome) {
	b := t.b
	if b == nil {
		return
	}
	if o == Failure {
		b.obs.Error()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if t.gen != b.gen {
		return
	}
	if t.trial {
		b.trials--
	}
	switch {
	case o == Ignore:
	case b.st == Closed && o == Failure:
		b.failures++
		if b.failures >= b.cfg.FailureThreshold {
			b.setLocked(Open)
		}
	case b.st == Closed:
		b.failures = 0
	case b.st == HalfOpen && o == Failure:
		b.setLocked(Open)
	case b.st == HalfOpen:
		b.successes++
		if b.successes >= b.cfg.SuccessThreshold {
			b.setLocked(Closed)
		}
	}
}

func (b *Breaker) setLocked(s State) {
	prev := b.st
	b.st = s
	b.gen++
	b.failures, b.successes, b.trials = 0, 0, 0
	if s == Open {
		b.openUntil = b.now().Add(b.cfg.OpenDuration)
	}
	b.state.Store(int32(s))
	b.obs.SetBreakerState(metrics.BreakerState(s))
	switch s {
	case Open:
		b.log.Warn("circuit breaker opened: requests to this backend fail at once until it recovers",
			"backend", b.name, "previous", prev.String(), "open_for", b.cfg.OpenDuration)
	case HalfOpen:
		b.log.Info("circuit breaker half-open: admitting trial requests", "backend", b.name)
	case Closed:
		b.log.Info("circuit breaker closed: backend recovered", "backend", b.name)
	}
}
