package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type checkFunc func(ctx context.Context) error

func (f checkFunc) Check(ctx context.Context) error { return f(ctx) }

var (
	healthy = checkFunc(func(context.Context) error { return nil })
	broken  = checkFunc(func(context.Context) error { return errors.New("connection refused") })
)

// breakerChecker is a backend check that also reports its breaker state.
type breakerChecker struct {
	err   error
	state string
}

func (b breakerChecker) Check(context.Context) error { return b.err }
func (b breakerChecker) Details() map[string]any     { return map[string]any{"breaker": b.state} }

// fakeCache records what it was asked to invalidate.
type fakeCache struct {
	mu   sync.Mutex
	all  int
	inos []uint64
}

func (c *fakeCache) InvalidateAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.all++
}

func (c *fakeCache) Invalidate(ino uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.inos = append(c.inos, ino)
}

func newHealth(t *testing.T, timeout time.Duration, comps ...Component) *Health {
	t.Helper()
	h := NewHealth("1.2.3", timeout)
	for _, c := range comps {
		if err := h.Add(c); err != nil {
			t.Fatalf("Add(%s): %v", c.Name, err)
		}
	}
	return h
}

func do(t *testing.T, h http.Handler, method, target string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, target, nil))
	return rec
}

func decodeReport(t *testing.T, rec *httptest.ResponseRecorder) Report {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type = %q, want application/json", ct)
	}
	var rep Report
	if err := json.Unmarshal(rec.Body.Bytes(), &rep); err != nil {
		t.Fatalf("decoding health body %q: %v", rec.Body.String(), err)
	}
	return rep
}

func decodeError(t *testing.T, rec *httptest.ResponseRecorder) string {
	t.Helper()
	var e struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == "" {
		t.Fatalf("body %q is not a JSON error (%v)", rec.Body.String(), err)
	}
	return e.Error
}

func TestHealthStatus(t *testing.T) {
	tests := []struct {
		name       string
		comps      []Component
		wantStatus Status
		wantCode   int
		wantDown   []string
	}{
		{
			name:       "no components",
			wantStatus: StatusOK,
			wantCode:   http.StatusOK,
		},
		{
			name: "all healthy",
			comps: []Component{
				{"pebble", KindMetadata, healthy},
				{"blocks", KindBlob, healthy},
				{"nfs3", KindListener, healthy},
				{"meta-1", KindBackend, healthy},
			},
			wantStatus: StatusOK,
			wantCode:   http.StatusOK,
		},
		{
			name: "listener down is degraded",
			comps: []Component{
				{"pebble", KindMetadata, healthy},
				{"smb", KindListener, broken},
			},
			wantStatus: StatusDegraded,
			wantCode:   http.StatusOK,
			wantDown:   []string{"smb"},
		},
		{
			name: "backend down is degraded",
			comps: []Component{
				{"etcd", KindMetadata, healthy},
				{"meta-2", KindBackend, broken},
			},
			wantStatus: StatusDegraded,
			wantCode:   http.StatusOK,
			wantDown:   []string{"meta-2"},
		},
		{
			name: "metadata down is down",
			comps: []Component{
				{"etcd", KindMetadata, broken},
				{"blocks", KindBlob, healthy},
			},
			wantStatus: StatusDown,
			wantCode:   http.StatusServiceUnavailable,
			wantDown:   []string{"etcd"},
		},
		{
			name: "blob down outweighs a listener down",
			comps: []Component{
				{"nfs3", KindListener, broken},
				{"minio", KindBlob, broken},
			},
			wantStatus: StatusDown,
			wantCode:   http.StatusServiceUnavailable,
			wantDown:   []string{"nfs3", "minio"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := New(Config{Health: newHealth(t, 0, tt.comps...)})
			rec := do(t, srv, http.MethodGet, "/health")
			if rec.Code != tt.wantCode {
				t.Errorf("HTTP status = %d, want %d", rec.Code, tt.wantCode)
			}
			if cc := rec.Header().Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store", cc)
			}
			rep := decodeReport(t, rec)
			if rep.Status != tt.wantStatus {
				t.Errorf("status = %q, want %q", rep.Status, tt.wantStatus)
			}
			if rep.Version != "1.2.3" {
				t.Errorf("version = %q, want 1.2.3", rep.Version)
			}
			if len(rep.Components) != len(tt.comps) {
				t.Fatalf("%d components reported, want %d", len(rep.Components), len(tt.comps))
			}
			down := map[string]bool{}
			for _, n := range tt.wantDown {
				down[n] = true
			}
			for i, cr := range rep.Components {
				if cr.Name != tt.comps[i].Name || cr.Kind != tt.comps[i].Kind {
					t.Errorf("component %d = %s/%s, want %s/%s", i, cr.Name, cr.Kind, tt.comps[i].Name, tt.comps[i].Kind)
				}
				if cr.LatencyMS < 0 {
					t.Errorf("%s latency_ms = %v, want >= 0", cr.Name, cr.LatencyMS)
				}
				switch {
				case down[cr.Name] && (cr.Status != StatusDown || !strings.Contains(cr.Error, "connection refused")):
					t.Errorf("%s = %q %q, want down with the check's error", cr.Name, cr.Status, cr.Error)
				case !down[cr.Name] && (cr.Status != StatusOK || cr.Error != ""):
					t.Errorf("%s = %q %q, want ok without error", cr.Name, cr.Status, cr.Error)
				}
			}
		})
	}
}

func TestHealthJSONShape(t *testing.T) {
	h := newHealth(t, 0,
		Component{"meta-1", KindBackend, breakerChecker{err: errors.New("timeout"), state: "open"}},
		Component{"pebble", KindMetadata, healthy},
	)
	rec := do(t, New(Config{Health: h}), http.MethodGet, "/health")
	var raw struct {
		Status     string           `json:"status"`
		Version    string           `json:"version"`
		Components []map[string]any `json:"components"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &raw); err != nil {
		t.Fatalf("decoding %q: %v", rec.Body.String(), err)
	}
	if raw.Status != "degraded" || raw.Version != "1.2.3" || len(raw.Components) != 2 {
		t.Fatalf("body = %s", rec.Body.String())
	}
	backend := raw.Components[0]
	for _, key := range []string{"name", "kind", "status", "error", "latency_ms", "details"} {
		if _, ok := backend[key]; !ok {
			t.Errorf("failed component lacks %q: %v", key, backend)
		}
	}
	if d, _ := backend["details"].(map[string]any); d["breaker"] != "open" {
		t.Errorf("details = %v, want breaker open", backend["details"])
	}
	for _, key := range []string{"error", "details"} {
		if _, ok := raw.Components[1][key]; ok {
			t.Errorf("healthy component without a Detailer has %q: %v", key, raw.Components[1])
		}
	}
}

func TestHealthCheckFailuresAreBounded(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	tests := []struct {
		name    string
		checker Checker
		wantErr string
	}{
		{"honours ctx", checkFunc(func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }), "deadline exceeded"},
		{"ignores ctx", checkFunc(func(context.Context) error { <-release; return nil }), "did not answer within"},
		{"panics", checkFunc(func(context.Context) error { panic("boom") }), "panicked: boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHealth(t, 20*time.Millisecond, Component{"store", KindBlob, tt.checker})
			rep := h.Check(context.Background())
			if rep.Status != StatusDown {
				t.Errorf("overall = %q, want down", rep.Status)
			}
			cr := rep.Components[0]
			if cr.Status != StatusDown || !strings.Contains(cr.Error, tt.wantErr) {
				t.Errorf("component = %q %q, want down with %q", cr.Status, cr.Error, tt.wantErr)
			}
		})
	}
}

func TestHealthAddRemove(t *testing.T) {
	h := NewHealth("v", 0)
	bad := []Component{
		{"", KindBlob, healthy},
		{"x", KindBlob, nil},
		{"x", "database", healthy},
	}
	for _, c := range bad {
		if err := h.Add(c); err == nil {
			t.Errorf("Add(%+v) succeeded, want an error", c)
		}
	}
	if err := h.Add(Component{"nfs3", KindListener, broken}); err != nil {
		t.Fatalf("Add: %v", err)
	}
	if err := h.Add(Component{"nfs3", KindListener, healthy}); err == nil {
		t.Error("adding a duplicate name succeeded, want an error")
	}
	if got := h.Check(context.Background()).Status; got != StatusDegraded {
		t.Fatalf("status with a broken listener = %q, want degraded", got)
	}
	if !h.Remove("nfs3") {
		t.Fatal("Remove of a registered component returned false")
	}
	if h.Remove("nfs3") {
		t.Error("second Remove returned true")
	}
	rep := h.Check(context.Background())
	if rep.Status != StatusOK || len(rep.Components) != 0 {
		t.Errorf("after Remove: %+v, want ok with no components", rep)
	}
}

func TestCacheInvalidate(t *testing.T) {
	tests := []struct {
		query    string
		wantCode int
		wantAll  int
		wantInos []uint64
	}{
		{"", http.StatusOK, 1, nil},
		{"ino=42", http.StatusOK, 0, []uint64{42}},
		{"ino=18446744073709551615", http.StatusOK, 0, []uint64{18446744073709551615}},
		{"ino=18446744073709551616", http.StatusBadRequest, 0, nil},
		{"ino=abc", http.StatusBadRequest, 0, nil},
		{"ino=", http.StatusBadRequest, 0, nil},
		{"ino=0", http.StatusBadRequest, 0, nil},
		{"ino=-1", http.StatusBadRequest, 0, nil},
		{"ino=0x10", http.StatusBadRequest, 0, nil},
		{"ino=1&ino=2", http.StatusBadRequest, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			cache := &fakeCache{}
			rec := do(t, New(Config{Cache: cache}), http.MethodPost, "/admin/cache/invalidate?"+tt.query)
			if rec.Code != tt.wantCode {
				t.Fatalf("status = %d (%s), want %d", rec.Code, rec.Body.String(), tt.wantCode)
			}
			if cache.all != tt.wantAll || len(cache.inos) != len(tt.wantInos) {
				t.Fatalf("invalidator got all=%d inos=%v, want all=%d inos=%v", cache.all, cache.inos, tt.wantAll, tt.wantInos)
			}
			for i := range tt.wantInos {
				if cache.inos[i] != tt.wantInos[i] {
					t.Fatalf("Invalidate(%d), want Invalidate(%d)", cache.inos[i], tt.wantInos[i])
				}
			}
			if rec.Code != http.StatusOK {
				decodeError(t, rec)
				return
			}
			var resp invalidateResponse
			if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
				t.Fatalf("decoding %q: %v", rec.Body.String(), err)
			}
			want := invalidateResponse{Invalidated: "all"}
			if len(tt.wantInos) == 1 {
				want = invalidateResponse{Invalidated: "inode", Ino: tt.wantInos[0]}
			}
			if resp != want {
				t.Errorf("response = %+v, want %+v", resp, want)
			}
		})
	}
}

func TestMethodNotAllowed(t *testing.T) {
	reg := prometheus.NewRegistry()
	tests := []struct {
		method, target, allow string
	}{
		{http.MethodGet, "/admin/cache/invalidate", "POST"},
		{http.MethodPut, "/admin/cache/invalidate?ino=3", "POST"},
		{http.MethodPost, "/health", "GET, HEAD"},
		{http.MethodDelete, "/metrics", "GET, HEAD"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.target, func(t *testing.T) {
			cache := &fakeCache{}
			rec := do(t, New(Config{Cache: cache, Gatherer: reg}), tt.method, tt.target)
			if rec.Code != http.StatusMethodNotAllowed {
				t.Fatalf("status = %d, want 405", rec.Code)
			}
			if got := rec.Header().Get("Allow"); got != tt.allow {
				t.Errorf("Allow = %q, want %q", got, tt.allow)
			}
			decodeError(t, rec)
			if cache.all != 0 || len(cache.inos) != 0 {
				t.Error("a refused request reached the invalidator")
			}
		})
	}
}

func TestOptionalEndpointsAbsentWhenNotConfigured(t *testing.T) {
	srv := New(Config{})
	for _, target := range []string{"/metrics", "/admin/cache/invalidate", "/debug/pprof/"} {
		if rec := do(t, srv, http.MethodPost, target); rec.Code != http.StatusNotFound {
			t.Errorf("POST %s without its dependency = %d, want 404", target, rec.Code)
		}
	}
	if rec := do(t, srv, http.MethodGet, "/health"); rec.Code != http.StatusOK {
		t.Errorf("GET /health without a Health = %d, want 200", rec.Code)
	}
}

func TestPProfWhenEnabled(t *testing.T) {
	srv := New(Config{PProf: true})
	for _, target := range []string{"/debug/pprof/", "/debug/pprof/goroutine?debug=1", "/debug/pprof/cmdline"} {
		if rec := do(t, srv, http.MethodGet, target); rec.Code != http.StatusOK {
			t.Errorf("GET %s with pprof enabled = %d, want 200", target, rec.Code)
		}
	}
}

func TestMetricsEndpoint(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "gateway_cache_hits_total", Help: "h"})
	reg.MustRegister(c)
	c.Add(7)
	rec := do(t, New(Config{Gatherer: reg}), http.MethodGet, "/metrics")
	if rec.Code != http.StatusOK {
		t.Fatalf("status = %d, want 200", rec.Code)
	}
	if !strings.Contains(rec.Body.String(), "gateway_cache_hits_total 7") {
		t.Errorf("exposition lacks the registered counter:\n%s", rec.Body.String())
	}
}

func TestRequestLogging(t *testing.T) {
	tests := []struct {
		level   slog.Level
		wantLog bool
	}{
		{slog.LevelDebug, true},
		{slog.LevelInfo, false},
	}
	for _, tt := range tests {
		t.Run(tt.level.String(), func(t *testing.T) {
			var buf bytes.Buffer
			log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: tt.level}))
			srv := New(Config{Logger: log})
			srv.Handle("GET /admin/ping", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusTeapot)
				io.WriteString(w, "pong")
			}))
			rec := do(t, srv, http.MethodGet, "/admin/ping")
			if rec.Code != http.StatusTeapot || rec.Body.String() != "pong" {
				t.Fatalf("added endpoint answered %d %q", rec.Code, rec.Body.String())
			}
			logged := buf.String()
			if !tt.wantLog {
				if logged != "" {
					t.Errorf("logged at %v: %s", tt.level, logged)
				}
				return
			}
			var entry map[string]any
			if err := json.Unmarshal(buf.Bytes(), &entry); err != nil {
				t.Fatalf("log %q: %v", logged, err)
			}
			if entry["path"] != "/admin/ping" || entry["status"] != float64(http.StatusTeapot) || entry["bytes"] != float64(4) || entry["method"] != "GET" {
				t.Errorf("log entry = %v", entry)
			}
		})
	}
}

func TestServeOnListener(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	cache := &fakeCache{}
	reg := prometheus.NewRegistry()
	srv := New(Config{
		Health:   newHealth(t, 0, Component{"pebble", KindMetadata, broken}),
		Gatherer: reg,
		Cache:    cache,
	})
	srv.Handle("GET /admin/version", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "1.2.3")
	}))
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()

	base := "http://" + l.Addr().String()
	client := &http.Client{Timeout: 10 * time.Second}
	get := func(method, path string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("reading %s: %v", path, err)
		}
		return resp.StatusCode, string(body)
	}

	if code, body := get(http.MethodGet, "/health"); code != http.StatusServiceUnavailable || !strings.Contains(body, `"status":"down"`) {
		t.Errorf("GET /health = %d %s, want 503 down", code, body)
	}
	if code, body := get(http.MethodHead, "/health"); code != http.StatusServiceUnavailable || body != "" {
		t.Errorf("HEAD /health = %d %q, want 503 without body", code, body)
	}
	if code, _ := get(http.MethodGet, "/metrics"); code != http.StatusOK {
		t.Errorf("GET /metrics = %d, want 200", code)
	}
	if code, _ := get(http.MethodPost, "/admin/cache/invalidate?"+url.Values{"ino": {"9"}}.Encode()); code != http.StatusOK {
		t.Errorf("POST invalidate = %d, want 200", code)
	}
	if code, body := get(http.MethodGet, "/admin/version"); code != http.StatusOK || body != "1.2.3" {
		t.Errorf("added endpoint = %d %q", code, body)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Serve returned %v, want http.ErrServerClosed", err)
	}
	cache.mu.Lock()
	defer cache.mu.Unlock()
	if len(cache.inos) != 1 || cache.inos[0] != 9 {
		t.Errorf("invalidator got %v, want [9]", cache.inos)
	}
}

// FuzzCacheInvalidateQuery feeds arbitrary query strings to the only handler
// that parses client input: it must answer 200 or 400 with JSON, never panic,
// and call the invalidator only on success.
func FuzzCacheInvalidateQuery(f *testing.F) {
	for _, s := range []string{"", "ino=1", "ino=0", "ino=%ff", "ino=1&ino=2", "ino=99999999999999999999", "a=b;c", "ino"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, query string) {
		cache := &fakeCache{}
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/admin/cache/invalidate", nil)
		req.URL.RawQuery = query
		New(Config{Cache: cache, Logger: slog.New(slog.DiscardHandler)}).ServeHTTP(rec, req)
		calls := cache.all + len(cache.inos)
		switch rec.Code {
		case http.StatusOK:
			if calls != 1 {
				t.Fatalf("200 after %d invalidator calls", calls)
			}
		case http.StatusBadRequest:
			if calls != 0 {
				t.Fatalf("400 after %d invalidator calls", calls)
			}
		default:
			t.Fatalf("status %d for query %q", rec.Code, query)
		}
		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("body %q is not JSON", rec.Body.String())
		}
	})
}
