package admin

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Checker reports whether one component works. Check must honour ctx: the
// health endpoint gives up on it at the deadline, but a Check that ignores
// ctx keeps its goroutine alive until it returns.
type Checker interface {
	Check(ctx context.Context) error
}

// Detailer is implemented by checkers that have more to say than ok or down,
// for example a backend's circuit breaker state. Details is called on every
// health request, even after a failed or timed-out check, so it must be cheap
// and must not block. It must return a map the caller may keep: the map is
// encoded as JSON after Details returns.
type Detailer interface {
	Details() map[string]any
}

// Component kinds. The kind decides what a failure means for the gateway as
// a whole; see Health.Check.
const (
	KindMetadata = "metadata"
	KindBlob     = "blob"
	KindListener = "listener"
	KindBackend  = "backend"
)

// Status is the health of one component or of the whole gateway.
type Status string

const (
	StatusOK       Status = "ok"
	StatusDegraded Status = "degraded"
	StatusDown     Status = "down"
)

// DefaultCheckTimeout bounds each component check when NewHealth is given
// no timeout. Load balancers usually probe every few seconds with a timeout
// of a few seconds, so a health answer must come well within that.
const DefaultCheckTimeout = 2 * time.Second

// Component is one thing whose health the gateway reports.
type Component struct {
	Name    string
	Kind    string // KindMetadata, KindBlob, KindListener or KindBackend
	Checker Checker
}

// ComponentReport is the result of checking one component.
type ComponentReport struct {
	Name      string         `json:"name"`
	Kind      string         `json:"kind"`
	Status    Status         `json:"status"` // StatusOK or StatusDown
	Error     string         `json:"error,omitempty"`
	LatencyMS float64        `json:"latency_ms"`
	Details   map[string]any `json:"details,omitempty"`
}

// Report is the body of GET /health.
type Report struct {
	Status     Status            `json:"status"`
	Components []ComponentReport `json:"components"`
	Version    string            `json:"version"`
}

// Health is the registry of components to check. Components come and go at
// runtime (a listener starts, a backend is added); all methods are safe for
// concurrent use.
type Health struct {
	version string
	timeout time.Duration

	mu    sync.RWMutex
	comps []Component // in the order added, which is the report's order
}

// NewHealth returns an empty registry whose reports carry version and whose
// checks are each bounded by timeout (DefaultCheckTimeout if not positive).
func NewHealth(version string, timeout time.Duration) *Health {
	if timeout <= 0 {
		timeout = DefaultCheckTimeout
	}
	return &Health{version: version, timeout: timeout}
}

// Add registers a component. Names are unique: replacing a component means
// removing it first, so that two owners cannot silently overwrite each other.
func (h *Health) Add(c Component) error {
	if c.Name == "" {
		return errors.New("admin: health component has no name")
	}
	if c.Checker == nil {
		return fmt.Errorf("admin: health component %q has no checker", c.Name)
	}
	switch c.Kind {
	case KindMetadata, KindBlob, KindListener, KindBackend:
	default:
		return fmt.Errorf("admin: health component %q has kind %q; use one of %q, %q, %q, %q",
			c.Name, c.Kind, KindMetadata, KindBlob, KindListener, KindBackend)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, have := range h.comps {
		if have.Name == c.Name {
			return fmt.Errorf("admin: health component %q is already registered; remove it first", c.Name)
		}
	}
	h.comps = append(h.comps, c)
	return nil
}

// Remove unregisters the named component and reports whether it was there.
func (h *Health) Remove(name string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, c := range h.comps {
		if c.Name == name {
			h.comps = append(h.comps[:i:i], h.comps[i+1:]...)
			return true
		}
	}
	return false
}

// Check runs every component's check concurrently, each bounded by the
// registry's timeout and by ctx, and folds the results into one status:
//
//   - down if a metadata or blob component is down: no file operation can
//     succeed without them, so a load balancer should stop sending clients;
//   - degraded if only listeners or backends are down: the gateway still
//     serves, through its other protocols or the remaining backend nodes
//     (a lost backend node is what the pool and circuit breaker absorb);
//   - ok otherwise, including when no component is registered.
func (h *Health) Check(ctx context.Context) Report {
	h.mu.RLock()
	comps := append([]Component(nil), h.comps...)
	h.mu.RUnlock()

	rep := Report{Status: StatusOK, Components: make([]ComponentReport, len(comps)), Version: h.version}
	var wg sync.WaitGroup
	for i, c := range comps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rep.Components[i] = h.checkOne(ctx, c)
		}()
	}
	wg.Wait()

	for _, cr := range rep.Components {
		if cr.Status == StatusOK {
			continue
		}
		switch cr.Kind {
		case KindMetadata, KindBlob:
			rep.Status = StatusDown
		default:
			if rep.Status == StatusOK {
				rep.Status = StatusDegraded
			}
		}
	}
	return rep
}

func (h *Health) checkOne(ctx context.Context, c Component) ComponentReport {
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()

	start := time.Now()
	// Buffered so that a check still running after the deadline can finish
	// and be collected instead of blocking forever.
	result := make(chan error, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				result <- fmt.Errorf("health check panicked: %v", p)
			}
		}()
		result <- c.Checker.Check(ctx)
	}()
	var err error
	select {
	case err = <-result:
	case <-ctx.Done():
		err = fmt.Errorf("health check did not answer within %v: %w", h.timeout, ctx.Err())
	}

	cr := ComponentReport{
		Name:      c.Name,
		Kind:      c.Kind,
		Status:    StatusOK,
		LatencyMS: float64(time.Since(start).Microseconds()) / 1000,
		Details:   details(c.Checker),
	}
	if err != nil {
		cr.Status = StatusDown
		cr.Error = err.Error()
	}
	return cr
}

func details(c Checker) (d map[string]any) {
	dt, ok := c.(Detailer)
	if !ok {
		return nil
	}
	defer func() {
		if p := recover(); p != nil {
			d = map[string]any{"details_error": fmt.Sprintf("Details panicked: %v", p)}
		}
	}()
	return dt.Details()
}
