package backend

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/claudefs/cfs-gateway/internal/engine/kv"
	"github.com/claudefs/cfs-gateway/internal/metrics"
)

// fakeClock is a clock that moves only when told.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// testMetrics are gateway metrics on a registry of their own, so that a
// test reads what Prometheus would scrape.
type testMetrics struct {
	*metrics.Metrics
	reg *prometheus.Registry
}

func newTestMetrics(t *testing.T) testMetrics {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	return testMetrics{m, reg}
}

// step is one action of a breaker scenario, with the state expected after.
type step struct {
	do   string // ok, fail, ignore, reject, hold, done-ok, done-fail, wait
	wait time.Duration
	want string // the state after the step; "" leaves it unchecked
}

func TestBreakerScenarios(t *testing.T) {
	cfg := BreakerConfig{FailureThreshold: 3, SuccessThreshold: 2, OpenDuration: 10 * time.Second, Timeout: time.Second}
	D := cfg.OpenDuration
	tests := []struct {
		name         string
		steps        []step
		wantRejected float64
		wantErrors   float64
	}{
		{"opens after failure_threshold consecutive failures", []step{
			{do: "fail", want: "closed"},
			{do: "fail", want: "closed"},
			{do: "fail", want: "open"},
			{do: "reject", want: "open"},
		}, 1, 3},
		{"a success resets the count", []step{
			{do: "fail", want: "closed"},
			{do: "fail", want: "closed"},
			{do: "ok", want: "closed"},
			{do: "fail", want: "closed"},
			{do: "fail", want: "closed"},
		}, 0, 4},
		{"ignored outcomes do not count", []step{
			{do: "fail", want: "closed"},
			{do: "fail", want: "closed"},
			{do: "ignore", want: "closed"},
			{do: "ignore", want: "closed"},
			{do: "fail", want: "open"},
		}, 0, 3},
		{"stays open for open_duration then closes after success_threshold trials", []step{
			{do: "fail"}, {do: "fail"}, {do: "fail", want: "open"},
			{do: "wait", wait: D - time.Millisecond, want: "open"},
			{do: "reject", want: "open"},
			{do: "wait", wait: time.Millisecond, want: "open"},
			{do: "ok", want: "half-open"},
			{do: "ok", want: "closed"},
			{do: "ok", want: "closed"},
		}, 1, 3},
		{"a failed trial opens again for a full period", []step{
			{do: "fail"}, {do: "fail"}, {do: "fail", want: "open"},
			{do: "wait", wait: D},
			{do: "ok", want: "half-open"},
			{do: "fail", want: "open"},
			{do: "wait", wait: D - time.Millisecond},
			{do: "reject", want: "open"},
			{do: "wait", wait: time.Millisecond},
			{do: "ok", want: "half-open"},
			{do: "ok", want: "closed"},
		}, 1, 4},
		{"half-open admits success_threshold trials at a time", []step{
			{do: "fail"}, {do: "fail"}, {do: "fail", want: "open"},
			{do: "wait", wait: D},
			{do: "hold", want: "half-open"},
			{do: "hold", want: "half-open"},
			{do: "reject", want: "half-open"},
			{do: "done-ok", want: "half-open"},
			{do: "done-ok", want: "closed"},
		}, 1, 3},
		{"a request admitted before the breaker opened cannot reopen it later", []step{
			{do: "hold", want: "closed"},
			{do: "fail"}, {do: "fail"}, {do: "fail", want: "open"},
			{do: "wait", wait: D / 2},
			{do: "done-fail", want: "open"},
			{do: "wait", wait: D / 2},
			{do: "ok", want: "half-open"},
		}, 0, 4},
		{"a success admitted while closed is not a trial", []step{
			{do: "hold", want: "closed"},
			{do: "fail"}, {do: "fail"}, {do: "fail", want: "open"},
			{do: "wait", wait: D},
			{do: "done-ok", want: "open"},
			{do: "ok", want: "half-open"},
		}, 0, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := newFakeClock()
			m := newTestMetrics(t)
			b := NewBreaker("meta-1", cfg, BreakerOptions{Now: clock.Now, Metrics: m.Backend("meta-1"), Rejected: m.RejectedRequests})
			var held []Ticket
			for i, st := range tc.steps {
				where := fmt.Sprintf("step %d (%s)", i, st.do)
				switch st.do {
				case "ok", "fail", "ignore", "hold":
					tk, err := b.Allow()
					if err != nil {
						t.Fatalf("%s: Allow = %v, want admitted", where, err)
					}
					switch st.do {
					case "ok":
						tk.Done(Success)
					case "fail":
						tk.Done(Failure)
					case "ignore":
						tk.Done(Ignore)
					case "hold":
						held = append(held, tk)
					}
				case "reject":
					_, err := b.Allow()
					var ue *UnavailableError
					if !errors.As(err, &ue) || !errors.Is(err, ErrOpen) || ue.Backend != "meta-1" {
						t.Fatalf("%s: Allow = %v, want an UnavailableError for meta-1 wrapping ErrOpen", where, err)
					}
				case "done-ok", "done-fail":
					tk := held[0]
					held = held[1:]
					if st.do == "done-ok" {
						tk.Done(Success)
					} else {
						tk.Done(Failure)
					}
				case "wait":
					clock.Advance(st.wait)
				}
				if got := b.State().String(); st.want != "" && got != st.want {
					t.Fatalf("%s: state %s, want %s", where, got, st.want)
				}
			}
			if got := gatherValue(t, m, metrics.NameRejectedRequests, ""); got != tc.wantRejected {
				t.Errorf("gateway_rejected_requests_total = %v, want %v", got, tc.wantRejected)
			}
			if got := backendErrors(t, m, "meta-1"); got != tc.wantErrors {
				t.Errorf("gateway_backend_errors_total{backend=meta-1} = %v, want %v", got, tc.wantErrors)
			}
			if got, want := breakerGauge(t, m, "meta-1"), float64(b.State()); got != want {
				t.Errorf("gateway_circuit_breaker_state{backend=meta-1} = %v, breaker is %v", got, b.State())
			}
		})
	}
}

func backendErrors(t *testing.T, m testMetrics, backend string) float64 {
	t.Helper()
	return gatherValue(t, m, metrics.NameBackendErrors, backend)
}

func breakerGauge(t *testing.T, m testMetrics, backend string) float64 {
	t.Helper()
	return gatherValue(t, m, metrics.NameCircuitBreakerState, backend)
}

// gatherValue reads the series of a family labelled by backend ("" for
// a family without that label).
func gatherValue(t *testing.T, m testMetrics, family, backend string) float64 {
	t.Helper()
	mfs, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != family {
			continue
		}
		for _, s := range mf.GetMetric() {
			label := ""
			for _, l := range s.GetLabel() {
				if l.GetName() == "backend" {
					label = l.GetValue()
				}
			}
			if label != backend {
				continue
			}
			if s.Counter != nil {
				return s.Counter.GetValue()
			}
			return s.Gauge.GetValue()
		}
	}
	t.Fatalf("no %s series for backend %q", family, backend)
	return 0
}

func TestUnavailableErrorClassifies(t *testing.T) {
	cause := errors.New("connection refused")
	err := fmt.Errorf("reading block: %w", &UnavailableError{Backend: "blob-1", Err: cause})
	var ku *kv.Unavailable
	if !errors.As(err, &ku) {
		t.Fatalf("errors.As(%v, *kv.Unavailable) = false, want true", err)
	}
	if !strings.Contains(ku.Error(), cause.Error()) {
		t.Errorf("the kv.Unavailable found does not name the cause: %v", ku)
	}
	errno := fmt.Errorf("dial: %w", syscall.ECONNREFUSED)
	var en syscall.Errno
	if errors.As(&UnavailableError{Backend: "blob-1", Err: errno}, &en) {
		t.Errorf("an UnavailableError exposes the errno %v of its transport error", en)
	}
	if !errors.Is(&UnavailableError{Backend: "blob-1", Err: fmt.Errorf("put: %w", context.DeadlineExceeded)}, context.DeadlineExceeded) {
		t.Errorf("an UnavailableError caused by a timeout does not say so")
	}
	tests := []struct {
		err  error
		want bool
	}{
		{err, true},
		{&kv.Unavailable{Err: cause}, true},
		{fmt.Errorf("x: %w", &kv.Unavailable{Err: cause}), true},
		{cause, false},
		{kv.ErrConflict, false},
		{nil, false},
	}
	for _, tc := range tests {
		if got := IsUnavailable(tc.err); got != tc.want {
			t.Errorf("IsUnavailable(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
