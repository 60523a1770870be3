// Package backend is the plumbing between the scale-out storage engines and
// the nodes they talk to (etcd members, object store endpoints): the
// per-node circuit breaker, the health checks that mark a node up or down,
// the choice of a node for each request, the HTTP transport that pools
// connections to an object store, and the error that tells the layers above
// to answer "retry later". It implements the connection_pool and
// circuit_breaker sections of the tuning guide.
//
// It knows nothing of keys, objects or files, and it does not speak any
// backend's protocol: an engine gives it a probe function and runs its own
// requests inside Group.Do (or between Group.Pick and Ticket.Done).
//
// # Design
//
// The breaker and the pool live inside the engines rather than in wrappers
// around kv.Store and blob.Store, because only the engine knows which node
// served a request: an etcd transaction reads and commits on one member,
// so a failure is charged to that member's breaker (meta-1, meta-2, ...),
// and the next request goes to another member. A wrapper around the whole
// store could only keep one breaker for the whole cluster.
//
//   - A Group holds the nodes of one backend service. Pick prefers nodes
//     that are up, ready and whose breaker is closed, round robin; then any
//     node whose breaker admits the request (a half-open trial, or a node
//     the health check marked down but whose breaker is still closed, since
//     the breaker, not the health check, decides when requests stop).
//     When no breaker admits, Pick fails at once with an *UnavailableError
//     wrapping ErrOpen and counts gateway_rejected_requests_total.
//   - Every operation is bounded by circuit_breaker.timeout_ms; a timeout is
//     a failure. Only failures the engine classifies as the backend's fault
//     (unreachable, no quorum, timeouts, 5xx) count: not-found, conflicts,
//     size limits and the caller's own cancellation are answers, not
//     failures. Each failure counts gateway_backend_errors_total{backend}.
//   - A breaker opens after failure_threshold consecutive failures, rejects
//     for open_duration_ms, then half-opens: it admits up to
//     success_threshold trial requests at a time and closes after
//     success_threshold successes; a failed trial opens it again.
//   - The health loop probes every node every health_check_interval_ms.
//     A probe marks the node up or down and counts as an operation of its
//     breaker; when a breaker is open past open_duration_ms, a healthy
//     node's probes are its trials. A backend that comes back is therefore
//     used again within open_duration_ms plus one health interval, even if
//     no client request arrives to act as a trial.
//   - Connections: for an HTTP object store, NewHTTPTransport caps the
//     connections per endpoint at max_per_node, closes idle ones after
//     max_idle_ms and bounds each dial by connect_timeout_ms; WarmProbe runs
//     min_per_node probes at once so that the transport keeps that many
//     connections open. The etcd engine keeps its own pool of gRPC
//     connections per member with the same knobs (see package etcdkv).
//
// UnavailableError is the retryable error of both engines. The etcd engine
// returns it inside *kv.Unavailable; the object store engine returns it as
// is, and it also answers errors.As for *kv.Unavailable so that the
// filesystem core maps blob-side outages to its retry answer too.
package backend

import (
	"time"
)

// PoolConfig is the connection_pool section: the connections kept to each
// backend node.
type PoolConfig struct {
	// MinPerNode connections are kept open to every node, even when idle.
	MinPerNode int
	// MaxPerNode caps the connections to one node.
	MaxPerNode int
	// MaxIdle closes connections above MinPerNode unused for this long.
	MaxIdle time.Duration
	// ConnectTimeout bounds every dial of a backend connection.
	ConnectTimeout time.Duration
	// HealthCheckInterval is the period of the health probes.
	HealthCheckInterval time.Duration
}

// DefaultPoolConfig returns the tuning guide's defaults.
func DefaultPoolConfig() PoolConfig {
	return PoolConfig{
		MinPerNode:          4,
		MaxPerNode:          32,
		MaxIdle:             300 * time.Second,
		ConnectTimeout:      5 * time.Second,
		HealthCheckInterval: 30 * time.Second,
	}
}

// WithDefaults fills zero fields with the guide's defaults and keeps
// MinPerNode within [1, MaxPerNode].
func (c PoolConfig) WithDefaults() PoolConfig {
	d := DefaultPoolConfig()
	if c.MaxPerNode <= 0 {
		c.MaxPerNode = d.MaxPerNode
	}
	if c.MinPerNode <= 0 {
		c.MinPerNode = min(d.MinPerNode, c.MaxPerNode)
	}
	if c.MinPerNode > c.MaxPerNode {
		c.MinPerNode = c.MaxPerNode
	}
	if c.MaxIdle <= 0 {
		c.MaxIdle = d.MaxIdle
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = d.ConnectTimeout
	}
	if c.HealthCheckInterval <= 0 {
		c.HealthCheckInterval = d.HealthCheckInterval
	}
	return c
}

// BreakerConfig is the circuit_breaker section.
type BreakerConfig struct {
	// FailureThreshold consecutive failures open the breaker.
	FailureThreshold int
	// SuccessThreshold successful trials close a half-open breaker; it is
	// also the number of trials admitted at once.
	SuccessThreshold int
	// OpenDuration is how long an open breaker rejects before trials.
	OpenDuration time.Duration
	// Timeout bounds every backend operation; a timeout is a failure.
	Timeout time.Duration
}

// DefaultBreakerConfig returns the tuning guide's defaults.
func DefaultBreakerConfig() BreakerConfig {
	return BreakerConfig{
		FailureThreshold: 5,
		SuccessThreshold: 2,
		OpenDuration:     30 * time.Second,
		Timeout:          5 * time.Second,
	}
}

// WithDefaults fills zero fields with the guide's defaults.
func (c BreakerConfig) WithDefaults() BreakerConfig {
	d := DefaultBreakerConfig()
	if c.FailureThreshold <= 0 {
		c.FailureThreshold = d.FailureThreshold
	}
	if c.SuccessThreshold <= 0 {
		c.SuccessThreshold = d.SuccessThreshold
	}
	if c.OpenDuration <= 0 {
		c.OpenDuration = d.OpenDuration
	}
	if c.Timeout <= 0 {
		c.Timeout = d.Timeout
	}
	return c
}
