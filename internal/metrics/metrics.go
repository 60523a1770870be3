// Package metrics owns the gateway's Prometheus metrics: their names, labels,
// buckets and meaning, as the performance tuning guide specifies them, plus
// cheap helpers for hot paths and the sampler behind gateway_cpu_usage_percent.
//
// It must not import other packages of the gateway: protocol front-ends, the
// core and the backend plumbing call into it, never the reverse. It does not
// serve HTTP either; the admin listener exposes whatever Gatherer it is given.
//
// Metric families and their label choices:
//
//	gateway_active_connections{protocol}           gauge
//	gateway_backend_errors_total{backend}          counter
//	gateway_circuit_breaker_state{backend}         gauge: 0 closed, 1 half-open, 2 open
//	gateway_rejected_requests_total                counter
//	gateway_cache_hits_total                       counter
//	gateway_cache_misses_total                     counter
//	gateway_s3_multipart_active                    gauge
//	gateway_s3_multipart_failed_total              counter
//	gateway_cpu_usage_percent                      gauge, 0..100 of GOMAXPROCS cores (see StartCPUSampler)
//	gateway_request_duration_seconds{protocol,op}  histogram
//	gateway_request_bytes_total{protocol,op,direction}  counter, direction "in" or "out"
//	gateway_requests_total{protocol,op,status}     counter
//
// gateway_backend_errors_total carries a backend label so an operator can tell
// which node is failing; the guide's label-free queries still work, because a
// bare selector such as rate(gateway_backend_errors_total[5m]) matches every
// series of the family (sum() it for one number). Call Backend for every
// configured backend at start-up so its series exist at zero before the first
// error, which keeps rate() and alerting rules meaningful from the start.
//
// Label values must come from small, fixed sets (protocol names, operation
// names, status names, configured backends): every distinct value is a new
// time series held in memory for the life of the process.
package metrics

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metric names, exported so that dashboards, tests and documentation refer to
// the same strings as the code.
const (
	NameActiveConnections   = "gateway_active_connections"
	NameBackendErrors       = "gateway_backend_errors_total"
	NameCircuitBreakerState = "gateway_circuit_breaker_state"
	NameRejectedRequests    = "gateway_rejected_requests_total"
	NameCacheHits           = "gateway_cache_hits_total"
	NameCacheMisses         = "gateway_cache_misses_total"
	NameS3MultipartActive   = "gateway_s3_multipart_active"
	NameS3MultipartFailed   = "gateway_s3_multipart_failed_total"
	NameCPUUsagePercent     = "gateway_cpu_usage_percent"
	NameRequestDuration     = "gateway_request_duration_seconds"
	NameRequestBytes        = "gateway_request_bytes_total"
	NameRequests            = "gateway_requests_total"
)

// Values of the direction label of gateway_request_bytes_total.
const (
	DirectionIn  = "in"
	DirectionOut = "out"
)

const (
	labelProtocol  = "protocol"
	labelBackend   = "backend"
	labelOp        = "op"
	labelStatus    = "status"
	labelDirection = "direction"

	// maxCachedStatuses bounds the per-operation status cache that every
	// Observe scans.
	maxCachedStatuses = 64
)

// Names lists every metric family this package registers.
var Names = []string{
	NameActiveConnections,
	NameBackendErrors,
	NameCircuitBreakerState,
	NameRejectedRequests,
	NameCacheHits,
	NameCacheMisses,
	NameS3MultipartActive,
	NameS3MultipartFailed,
	NameCPUUsagePercent,
	NameRequestDuration,
	NameRequestBytes,
	NameRequests,
}

// DurationBuckets are the upper bounds, in seconds, of the request latency
// histogram. They span 50 µs to 10 s and include every p99 target of the
// tuning guide (0.5, 1, 2, 3 and 4 ms) as an exact bound, so that SLO queries
// such as the share of requests under le="0.002" need no interpolation.
var DurationBuckets = []float64{
	50e-6, 100e-6, 250e-6, 500e-6,
	0.001, 0.002, 0.003, 0.004, 0.005,
	0.010, 0.025, 0.050, 0.100, 0.250, 0.500,
	1, 2.5, 5, 10,
}

// BreakerState is the value of gateway_circuit_breaker_state. The numbers are
// ordered by severity so that max() over backends gives the worst state.
type BreakerState int

const (
	BreakerClosed   BreakerState = 0
	BreakerHalfOpen BreakerState = 1
	BreakerOpen     BreakerState = 2
)

// Metrics holds every gateway metric. A nil *Metrics is valid and records
// nothing, so packages can run (and be tested) without metrics wired in.
type Metrics struct {
	// Label-free families are exposed directly: they are as cheap as a
	// metric can be and have nothing to misuse.
	RejectedRequests  prometheus.Counter
	CacheHits         prometheus.Counter
	CacheMisses       prometheus.Counter
	S3MultipartActive prometheus.Gauge
	S3MultipartFailed prometheus.Counter
	CPUUsagePercent   prometheus.Gauge

	activeConnections *prometheus.GaugeVec
	backendErrors     *prometheus.CounterVec
	breakerState      *prometheus.GaugeVec
	requestDuration   *prometheus.HistogramVec
	requestBytes      *prometheus.CounterVec
	requests          *prometheus.CounterVec

	ops sync.Map // opKey -> *OpMetrics
}

type opKey struct{ protocol, op string }

// NewRegistry returns a fresh registry that already holds the Go runtime and
// process collectors, which is what the server exposes. A fresh registry
// (rather than the global default) keeps tests and embedded uses independent.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}

// New creates the gateway metrics and registers them with reg. It fails only
// if reg already holds a family of the same name, which means New was called
// twice on one registry.
func New(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		RejectedRequests: prometheus.NewCounter(prometheus.CounterOpts{
			Name: NameRejectedRequests,
			Help: "Requests refused without reaching a backend, because its circuit breaker is open or half-open and saturated.",
		}),
		CacheHits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: NameCacheHits,
			Help: "Attribute cache lookups answered from the cache.",
		}),
		CacheMisses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: NameCacheMisses,
			Help: "Attribute cache lookups that had to go to the metadata store.",
		}),
		S3MultipartActive: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: NameS3MultipartActive,
			Help: "S3 multipart uploads initiated and neither completed nor aborted.",
		}),
		S3MultipartFailed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: NameS3MultipartFailed,
			Help: "S3 multipart uploads or part uploads that failed.",
		}),
		CPUUsagePercent: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: NameCPUUsagePercent,
			Help: "CPU time used by this process over the last sampling interval, in percent of the CPUs it may use (GOMAXPROCS): 100 means all of them were busy.",
		}),
		activeConnections: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: NameActiveConnections,
			Help: "Client connections currently open, per protocol.",
		}, []string{labelProtocol}),
		backendErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: NameBackendErrors,
			Help: "Failed operations against a backend node (metadata or blob store), per backend.",
		}, []string{labelBackend}),
		breakerState: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: NameCircuitBreakerState,
			Help: "Circuit breaker state per backend: 0 closed, 1 half-open, 2 open.",
		}, []string{labelBackend}),
		requestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    NameRequestDuration,
			Help:    "Time from receiving a request to sending its reply, per protocol and operation.",
			Buckets: DurationBuckets,
		}, []string{labelProtocol, labelOp}),
		requestBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: NameRequestBytes,
			Help: "Payload bytes of requests, per protocol, operation and direction (in: received from clients, out: sent to clients).",
		}, []string{labelProtocol, labelOp, labelDirection}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: NameRequests,
			Help: "Requests completed, per protocol, operation and result status.",
		}, []string{labelProtocol, labelOp, labelStatus}),
	}
	for _, c := range []prometheus.Collector{
		m.RejectedRequests, m.CacheHits, m.CacheMisses,
		m.S3MultipartActive, m.S3MultipartFailed, m.CPUUsagePercent,
		m.activeConnections, m.backendErrors, m.breakerState,
		m.requestDuration, m.requestBytes, m.requests,
	} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: registering gateway metrics: %w (create Metrics once per registry)", err)
		}
	}
	return m, nil
}

// nopGauge stands in for a real gauge when the receiver is nil; it is never
// registered, so nothing reads it.
var nopGauge = prometheus.NewGauge(prometheus.GaugeOpts{Name: "nop"})

// Connections returns the gauge of open connections for protocol (for example
// "nfs3", "nfs4", "smb", "s3"). Callers keep it and Inc/Dec it per connection.
func (m *Metrics) Connections(protocol string) prometheus.Gauge {
	if m == nil {
		return nopGauge
	}
	return m.activeConnections.WithLabelValues(protocol)
}

// BackendMetrics are the per-backend series, resolved once.
type BackendMetrics struct {
	errors prometheus.Counter
	state  prometheus.Gauge
}

// Backend returns the series of one backend node and creates them (errors at
// 0, breaker closed) so they are visible before anything happens. A nil
// *Metrics returns a *BackendMetrics that records nothing.
func (m *Metrics) Backend(name string) *BackendMetrics {
	if m == nil {
		return nil
	}
	return &BackendMetrics{
		errors: m.backendErrors.WithLabelValues(name),
		state:  m.breakerState.WithLabelValues(name),
	}
}

// RemoveBackend deletes the series of a backend that left the configuration,
// so that a stale "open" state does not keep alerting.
func (m *Metrics) RemoveBackend(name string) {
	if m == nil {
		return
	}
	m.backendErrors.DeleteLabelValues(name)
	m.breakerState.DeleteLabelValues(name)
}

// Error counts one failed operation against the backend.
func (b *BackendMetrics) Error() {
	if b == nil {
		return
	}
	b.errors.Inc()
}

// SetBreakerState records the backend's circuit breaker state.
func (b *BackendMetrics) SetBreakerState(s BreakerState) {
	if b == nil {
		return
	}
	b.state.Set(float64(s))
}

// OpMetrics are the request series of one (protocol, operation) pair with the
// label lookups already done, so Observe costs a few atomic adds.
type OpMetrics struct {
	duration prometheus.Observer
	bytesIn  prometheus.Counter
	bytesOut prometheus.Counter

	// requests is curried on protocol and op; byStatus caches its children
	// per status as an immutable slice swapped on growth, because the set
	// of statuses is small and read far more often than it grows.
	requests *prometheus.CounterVec
	byStatus atomic.Pointer[[]statusCounter]
	mu       sync.Mutex
}

type statusCounter struct {
	status  string
	counter prometheus.Counter
}

// Op returns the cached series for one protocol and operation. Keep the
// result (for example in a per-procedure table) on hot paths; calling Op per
// request also works and costs one map lookup.
func (m *Metrics) Op(protocol, op string) *OpMetrics {
	if m == nil {
		return nil
	}
	key := opKey{protocol, op}
	if v, ok := m.ops.Load(key); ok {
		return v.(*OpMetrics)
	}
	o := &OpMetrics{
		duration: m.requestDuration.WithLabelValues(protocol, op),
		bytesIn:  m.requestBytes.WithLabelValues(protocol, op, DirectionIn),
		bytesOut: m.requestBytes.WithLabelValues(protocol, op, DirectionOut),
		requests: m.requests.MustCurryWith(prometheus.Labels{labelProtocol: protocol, labelOp: op}),
	}
	o.byStatus.Store(new([]statusCounter))
	v, _ := m.ops.LoadOrStore(key, o)
	return v.(*OpMetrics)
}

// Observe records one completed request that started at start, ended with
// status (a bounded set such as "ok", "NFS3ERR_NOENT", "404"), received
// bytesIn payload bytes and sent bytesOut. A nil *OpMetrics does nothing.
func (o *OpMetrics) Observe(start time.Time, status string, bytesIn, bytesOut int) {
	if o == nil {
		return
	}
	o.ObserveDuration(time.Since(start), status, bytesIn, bytesOut)
}

// ObserveDuration is Observe for callers that measured the duration
// themselves.
func (o *OpMetrics) ObserveDuration(d time.Duration, status string, bytesIn, bytesOut int) {
	if o == nil {
		return
	}
	o.duration.Observe(d.Seconds())
	if bytesIn > 0 {
		o.bytesIn.Add(float64(bytesIn))
	}
	if bytesOut > 0 {
		o.bytesOut.Add(float64(bytesOut))
	}
	o.status(status).Inc()
}

func (o *OpMetrics) status(status string) prometheus.Counter {
	for _, sc := range *o.byStatus.Load() {
		if sc.status == status {
			return sc.counter
		}
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	cur := *o.byStatus.Load()
	for _, sc := range cur {
		if sc.status == status {
			return sc.counter
		}
	}
	c := o.requests.WithLabelValues(status)
	// Past the cap the status is still counted correctly, just without the
	// cache, so a caller leaking unbounded statuses does not also grow a
	// slice that every request scans.
	if len(cur) < maxCachedStatuses {
		next := make([]statusCounter, len(cur), len(cur)+1)
		copy(next, cur)
		next = append(next, statusCounter{status, c})
		o.byStatus.Store(&next)
	}
	return c
}
