package metrics

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
)

func newTestMetrics(t testing.TB) (*Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := New(reg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return m, reg
}

func gather(t testing.TB, reg prometheus.Gatherer) map[string]*dto.MetricFamily {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	out := make(map[string]*dto.MetricFamily, len(mfs))
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out
}

// find returns the metric of family name whose labels are exactly labels.
func find(t testing.TB, fams map[string]*dto.MetricFamily, name string, labels map[string]string) *dto.Metric {
	t.Helper()
	mf := fams[name]
	if mf == nil {
		return nil
	}
	for _, m := range mf.GetMetric() {
		if len(m.GetLabel()) != len(labels) {
			continue
		}
		match := true
		for _, lp := range m.GetLabel() {
			if v, ok := labels[lp.GetName()]; !ok || v != lp.GetValue() {
				match = false
				break
			}
		}
		if match {
			return m
		}
	}
	return nil
}

func counterValue(t testing.TB, fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	t.Helper()
	m := find(t, fams, name, labels)
	if m == nil {
		t.Fatalf("no series %s%v", name, labels)
	}
	return m.GetCounter().GetValue()
}

func gaugeValue(t testing.TB, fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	t.Helper()
	m := find(t, fams, name, labels)
	if m == nil {
		t.Fatalf("no series %s%v", name, labels)
	}
	return m.GetGauge().GetValue()
}

// touchAll makes every family produce at least one series.
func touchAll(m *Metrics) {
	m.Connections("nfs3").Inc()
	b := m.Backend("meta-1")
	b.Error()
	b.SetBreakerState(BreakerOpen)
	m.RejectedRequests.Inc()
	m.CacheHits.Inc()
	m.CacheMisses.Inc()
	m.S3MultipartActive.Inc()
	m.S3MultipartFailed.Inc()
	m.CPUUsagePercent.Set(1)
	m.Op("s3", "PutObject").Observe(time.Now(), "200", 10, 0)
}

func TestEveryGuideMetricIsExposed(t *testing.T) {
	guide := []string{
		"gateway_active_connections",
		"gateway_backend_errors_total",
		"gateway_circuit_breaker_state",
		"gateway_rejected_requests_total",
		"gateway_cache_hits_total",
		"gateway_cache_misses_total",
		"gateway_s3_multipart_active",
		"gateway_s3_multipart_failed_total",
		"gateway_cpu_usage_percent",
		"gateway_request_duration_seconds",
		"gateway_request_bytes_total",
		"gateway_requests_total",
	}
	if !slices.Equal(slices.Sorted(slices.Values(Names)), slices.Sorted(slices.Values(guide))) {
		t.Fatalf("Names = %v, want %v", Names, guide)
	}
	reg := NewRegistry()
	m, err := New(reg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	touchAll(m)
	fams := gather(t, reg)
	for _, name := range guide {
		if fams[name] == nil {
			t.Errorf("metric %s not exposed", name)
		}
	}
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if fams[name] == nil {
			t.Errorf("NewRegistry lacks standard metric %s", name)
		}
	}
}

// TestExposition checks the text a Prometheus server scrapes: every guide
// name with the type that its PromQL (rate() on counters) relies on.
func TestExposition(t *testing.T) {
	reg := NewRegistry()
	m, err := New(reg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	touchAll(m)
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("scrape status %d", rec.Code)
	}
	body := rec.Body.String()
	for name, typ := range map[string]string{
		NameActiveConnections:   "gauge",
		NameBackendErrors:       "counter",
		NameCircuitBreakerState: "gauge",
		NameRejectedRequests:    "counter",
		NameCacheHits:           "counter",
		NameCacheMisses:         "counter",
		NameS3MultipartActive:   "gauge",
		NameS3MultipartFailed:   "counter",
		NameCPUUsagePercent:     "gauge",
		NameRequestDuration:     "histogram",
		NameRequestBytes:        "counter",
		NameRequests:            "counter",
	} {
		if !strings.Contains(body, "# TYPE "+name+" "+typ+"\n") {
			t.Errorf("exposition lacks %s as a %s", name, typ)
		}
	}
	for _, line := range []string{
		`gateway_circuit_breaker_state{backend="meta-1"} 2`,
		`gateway_active_connections{protocol="nfs3"} 1`,
		`gateway_request_duration_seconds_bucket{op="PutObject",protocol="s3",le="5e-05"}`,
	} {
		if !strings.Contains(body, line) {
			t.Errorf("exposition lacks %q", line)
		}
	}
}

func TestNewTwiceOnOneRegistryFails(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := New(reg); err != nil {
		t.Fatalf("first New: %v", err)
	}
	if _, err := New(reg); err == nil {
		t.Fatal("second New on the same registry succeeded, want an error")
	}
}

func TestOpObserve(t *testing.T) {
	m, reg := newTestMetrics(t)
	if m.Op("nfs3", "READ") != m.Op("nfs3", "READ") {
		t.Fatal("Op does not cache its result")
	}
	if m.Op("nfs3", "READ") == m.Op("nfs4", "READ") {
		t.Fatal("Op shares series between protocols")
	}
	read := m.Op("nfs3", "READ")
	read.Observe(time.Now().Add(-2*time.Millisecond), "ok", 100, 4096)
	read.Observe(time.Now(), "ok", 100, 4096)
	read.ObserveDuration(20*time.Second, "NFS3ERR_JUKEBOX", 100, 0)
	m.Op("nfs3", "WRITE").Observe(time.Now(), "ok", 8192, 0)

	fams := gather(t, reg)
	tests := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{NameRequests, map[string]string{"protocol": "nfs3", "op": "READ", "status": "ok"}, 2},
		{NameRequests, map[string]string{"protocol": "nfs3", "op": "READ", "status": "NFS3ERR_JUKEBOX"}, 1},
		{NameRequests, map[string]string{"protocol": "nfs3", "op": "WRITE", "status": "ok"}, 1},
		{NameRequestBytes, map[string]string{"protocol": "nfs3", "op": "READ", "direction": "in"}, 300},
		{NameRequestBytes, map[string]string{"protocol": "nfs3", "op": "READ", "direction": "out"}, 8192},
		{NameRequestBytes, map[string]string{"protocol": "nfs3", "op": "WRITE", "direction": "in"}, 8192},
		{NameRequestBytes, map[string]string{"protocol": "nfs3", "op": "WRITE", "direction": "out"}, 0},
	}
	for _, tt := range tests {
		if got := counterValue(t, fams, tt.name, tt.labels); got != tt.want {
			t.Errorf("%s%v = %v, want %v", tt.name, tt.labels, got, tt.want)
		}
	}

	h := find(t, fams, NameRequestDuration, map[string]string{"protocol": "nfs3", "op": "READ"}).GetHistogram()
	if h.GetSampleCount() != 3 {
		t.Errorf("READ histogram count = %d, want 3", h.GetSampleCount())
	}
	if h.GetSampleSum() < 20.002 {
		t.Errorf("READ histogram sum = %v, want at least 20.002", h.GetSampleSum())
	}
	// The 20 s observation lies beyond the last bound: only +Inf holds it.
	last := h.GetBucket()[len(h.GetBucket())-1]
	if last.GetUpperBound() != 10 || last.GetCumulativeCount() != 2 {
		t.Errorf("le=10 bucket = (%v, %d), want (10, 2)", last.GetUpperBound(), last.GetCumulativeCount())
	}
}

func TestOpStatusesBeyondCacheAreCounted(t *testing.T) {
	m, reg := newTestMetrics(t)
	op := m.Op("s3", "GetObject")
	n := maxCachedStatuses + 10
	for i := range n {
		op.Observe(time.Now(), fmt.Sprint(i), 0, 0)
		op.Observe(time.Now(), fmt.Sprint(i), 0, 0)
	}
	if got := len(*op.byStatus.Load()); got != maxCachedStatuses {
		t.Errorf("status cache holds %d entries, want the cap %d", got, maxCachedStatuses)
	}
	fams := gather(t, reg)
	for i := range n {
		labels := map[string]string{"protocol": "s3", "op": "GetObject", "status": fmt.Sprint(i)}
		if got := counterValue(t, fams, NameRequests, labels); got != 2 {
			t.Fatalf("status %d counted %v times, want 2", i, got)
		}
	}
}

func TestOpConcurrentObserve(t *testing.T) {
	m, reg := newTestMetrics(t)
	statuses := []string{"ok", "NOENT", "ACCES", "JUKEBOX"}
	const perGoroutine = 500
	done := make(chan struct{})
	for g := range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range perGoroutine {
				m.Op("nfs4", "OPEN").Observe(time.Now(), statuses[(g+i)%len(statuses)], 1, 0)
			}
		}()
	}
	for range 8 {
		<-done
	}
	fams := gather(t, reg)
	total := 0.0
	for _, st := range statuses {
		total += counterValue(t, fams, NameRequests, map[string]string{"protocol": "nfs4", "op": "OPEN", "status": st})
	}
	if total != 8*perGoroutine {
		t.Errorf("requests counted = %v, want %d", total, 8*perGoroutine)
	}
	if got := counterValue(t, fams, NameRequestBytes, map[string]string{"protocol": "nfs4", "op": "OPEN", "direction": "in"}); got != 8*perGoroutine {
		t.Errorf("bytes in = %v, want %d", got, 8*perGoroutine)
	}
}

func TestBackendSeries(t *testing.T) {
	m, reg := newTestMetrics(t)
	meta := m.Backend("meta-1")
	m.Backend("blob-1")
	fams := gather(t, reg)
	for _, b := range []string{"meta-1", "blob-1"} {
		l := map[string]string{"backend": b}
		if got := counterValue(t, fams, NameBackendErrors, l); got != 0 {
			t.Errorf("errors of fresh backend %s = %v, want 0", b, got)
		}
		if got := gaugeValue(t, fams, NameCircuitBreakerState, l); got != float64(BreakerClosed) {
			t.Errorf("breaker of fresh backend %s = %v, want closed (0)", b, got)
		}
	}

	meta.Error()
	meta.Error()
	for _, tt := range []struct {
		state BreakerState
		want  float64
	}{{BreakerOpen, 2}, {BreakerHalfOpen, 1}, {BreakerClosed, 0}} {
		meta.SetBreakerState(tt.state)
		fams = gather(t, reg)
		if got := gaugeValue(t, fams, NameCircuitBreakerState, map[string]string{"backend": "meta-1"}); got != tt.want {
			t.Errorf("breaker state after SetBreakerState(%d) = %v, want %v", tt.state, got, tt.want)
		}
	}
	if got := counterValue(t, fams, NameBackendErrors, map[string]string{"backend": "meta-1"}); got != 2 {
		t.Errorf("meta-1 errors = %v, want 2", got)
	}

	m.RemoveBackend("meta-1")
	fams = gather(t, reg)
	if find(t, fams, NameBackendErrors, map[string]string{"backend": "meta-1"}) != nil ||
		find(t, fams, NameCircuitBreakerState, map[string]string{"backend": "meta-1"}) != nil {
		t.Error("series of a removed backend are still exposed")
	}
	if find(t, fams, NameBackendErrors, map[string]string{"backend": "blob-1"}) == nil {
		t.Error("removing one backend removed another")
	}
}

func TestConnections(t *testing.T) {
	m, reg := newTestMetrics(t)
	nfs := m.Connections("nfs3")
	nfs.Inc()
	nfs.Inc()
	nfs.Dec()
	m.Connections("smb").Inc()
	fams := gather(t, reg)
	for proto, want := range map[string]float64{"nfs3": 1, "smb": 1} {
		if got := gaugeValue(t, fams, NameActiveConnections, map[string]string{"protocol": proto}); got != want {
			t.Errorf("connections{%s} = %v, want %v", proto, got, want)
		}
	}
}

func TestNilMetricsRecordNothing(t *testing.T) {
	var m *Metrics
	// Every call must be safe: packages run without metrics in their tests.
	m.Connections("nfs3").Inc()
	b := m.Backend("x")
	b.Error()
	b.SetBreakerState(BreakerOpen)
	m.RemoveBackend("x")
	op := m.Op("nfs3", "READ")
	if op != nil {
		t.Fatalf("nil Metrics returned non-nil OpMetrics")
	}
	op.Observe(time.Now(), "ok", 1, 1)
	op.ObserveDuration(time.Second, "ok", 1, 1)
	<-m.StartCPUSampler(context.Background(), time.Millisecond)
}

func TestDurationBuckets(t *testing.T) {
	if !slices.IsSorted(DurationBuckets) {
		t.Fatal("DurationBuckets not sorted")
	}
	if DurationBuckets[0] != 50e-6 || DurationBuckets[len(DurationBuckets)-1] != 10 {
		t.Errorf("DurationBuckets span %v..%v, want 50µs..10s", DurationBuckets[0], DurationBuckets[len(DurationBuckets)-1])
	}
	for _, target := range []float64{0.0005, 0.001, 0.002, 0.003, 0.004} {
		if !slices.Contains(DurationBuckets, target) {
			t.Errorf("guide latency target %v s is not a bucket bound", target)
		}
	}
}

// burnCPU does a fixed amount of work and returns something derived from it
// so the compiler cannot drop the loop.
func burnCPU(rounds int) byte {
	var sum [32]byte
	for range rounds {
		sum = sha256.Sum256(sum[:])
	}
	return sum[0]
}

var sink byte

func TestCPUSamplerMeasuresBurn(t *testing.T) {
	s, err := newCPUSampler(time.Now())
	if err != nil {
		t.Skipf("no process CPU accounting here: %v", err)
	}
	sink ^= burnCPU(200_000)
	pct, err := s.sample(time.Now())
	if err != nil {
		t.Fatalf("sample: %v", err)
	}
	if pct <= 0 {
		t.Errorf("CPU usage after burning CPU = %v, want > 0", pct)
	}
}

func TestStartCPUSamplerSetsGauge(t *testing.T) {
	if _, err := processCPUTime(); err != nil {
		t.Skipf("no process CPU accounting here: %v", err)
	}
	m, reg := newTestMetrics(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := m.StartCPUSampler(ctx, time.Millisecond)
	got := 0.0
	// Bounded: burn until a sample has seen the work, or give up.
	for range 2000 {
		sink ^= burnCPU(2_000)
		got = gaugeValue(t, gather(t, reg), NameCPUUsagePercent, map[string]string{})
		if got > 0 {
			break
		}
	}
	cancel()
	<-done
	if got <= 0 {
		t.Errorf("%s = %v after burning CPU, want > 0", NameCPUUsagePercent, got)
	}
}

func BenchmarkOpObserve(b *testing.B) {
	m, _ := newTestMetrics(b)
	op := m.Op("nfs3", "READ")
	start := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		op.Observe(start, "ok", 128, 4096)
	}
}

func BenchmarkOpObserveParallel(b *testing.B) {
	m, _ := newTestMetrics(b)
	op := m.Op("nfs3", "READ")
	start := time.Now()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			op.Observe(start, "ok", 128, 4096)
		}
	})
}

// BenchmarkOpLookupAndObserve is the cost for callers that do not keep the
// *OpMetrics and call Op per request.
func BenchmarkOpLookupAndObserve(b *testing.B) {
	m, _ := newTestMetrics(b)
	for _, st := range []string{"ok", "NFS3ERR_NOENT", "NFS3ERR_ACCES", "NFS3ERR_JUKEBOX"} {
		m.Op("nfs3", "LOOKUP").Observe(time.Now(), st, 0, 0)
	}
	start := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		m.Op("nfs3", "LOOKUP").Observe(start, "NFS3ERR_JUKEBOX", 64, 128)
	}
}

// BenchmarkWithLabelValues is the baseline that Op avoids.
func BenchmarkWithLabelValues(b *testing.B) {
	m, _ := newTestMetrics(b)
	start := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		m.requestDuration.WithLabelValues("nfs3", "READ").Observe(time.Since(start).Seconds())
		m.requestBytes.WithLabelValues("nfs3", "READ", DirectionIn).Add(128)
		m.requestBytes.WithLabelValues("nfs3", "READ", DirectionOut).Add(4096)
		m.requests.WithLabelValues("nfs3", "READ", "ok").Inc()
	}
}
