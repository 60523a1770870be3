package backend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

var testBreaker = BreakerConfig{FailureThreshold: 2, SuccessThreshold: 2, OpenDuration: 10 * time.Second, Timeout: time.Second}

func newTestGroup(t *testing.T, clock *fakeClock, m testMetrics, probe Probe, names ...string) *Group {
	t.Helper()
	specs := make([]NodeSpec, len(names))
	for i, n := range names {
		specs[i] = NodeSpec{Name: n, Addr: "127.0.0.1:" + n}
	}
	return NewGroup(specs, GroupOptions{Breaker: testBreaker, Metrics: m.Metrics, Now: clock.Now, Probe: probe, Logger: discardLogger()})
}

// openBreaker fails requests on n until its breaker opens.
func openBreaker(t *testing.T, n *Node) {
	t.Helper()
	for n.Breaker.State() != Open {
		tk, err := n.Breaker.Allow()
		if err != nil {
			t.Fatal(err)
		}
		tk.Done(Failure)
	}
}

func TestGroupPick(t *testing.T) {
	tests := []struct {
		name string
		// setup prepares nodes meta-1..3.
		setup        func(t *testing.T, nodes []*Node)
		wantPicked   []string // the set of nodes picks may land on
		wantRejected bool
	}{
		{"all healthy: round robin over all", func(*testing.T, []*Node) {}, []string{"meta-1", "meta-2", "meta-3"}, false},
		{"open breakers are skipped", func(t *testing.T, ns []*Node) { openBreaker(t, ns[0]); openBreaker(t, ns[2]) }, []string{"meta-2"}, false},
		{"down nodes are avoided while others are up", func(t *testing.T, ns []*Node) {
			ns[0].setHealth(errors.New("no leader"), time.Now(), discardLogger())
			ns[1].setHealth(errors.New("refused"), time.Now(), discardLogger())
		}, []string{"meta-3"}, false},
		{"down nodes with closed breakers still get requests when nothing else is left", func(t *testing.T, ns []*Node) {
			for _, n := range ns[:2] {
				n.setHealth(errors.New("refused"), time.Now(), discardLogger())
			}
			openBreaker(t, ns[2])
		}, []string{"meta-1", "meta-2"}, false},
		{"all open: rejected at once", func(t *testing.T, ns []*Node) {
			for _, n := range ns {
				openBreaker(t, n)
			}
		}, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := newTestMetrics(t)
			g := newTestGroup(t, newFakeClock(), m, nil, "meta-1", "meta-2", "meta-3")
			tc.setup(t, g.Nodes())
			allowed := map[string]bool{}
			for _, n := range tc.wantPicked {
				allowed[n] = true
			}
			seen := map[string]bool{}
			for i := 0; i < 30; i++ {
				n, tk, err := g.Pick()
				if tc.wantRejected {
					if !errors.Is(err, ErrOpen) || !IsUnavailable(err) {
						t.Fatalf("Pick = %v, want an unavailable error wrapping ErrOpen", err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("Pick: %v", err)
				}
				tk.Done(Success)
				if !allowed[n.Name] {
					t.Fatalf("Pick chose %s, want one of %v", n.Name, tc.wantPicked)
				}
				seen[n.Name] = true
			}
			if len(seen) != len(tc.wantPicked) {
				t.Errorf("picks landed on %v, want every one of %v", seen, tc.wantPicked)
			}
			wantRejected := 0.0
			if tc.wantRejected {
				wantRejected = 30
			}
			if got := gatherValue(t, m, "gateway_rejected_requests_total", ""); got != wantRejected {
				t.Errorf("rejected = %v, want %v (one per refused request)", got, wantRejected)
			}
		})
	}
}

func TestGroupDo(t *testing.T) {
	errNotFound := errors.New("not found")
	errDown := errors.New("connection refused")
	tests := []struct {
		name        string
		op          func(ctx context.Context) error
		cancel      bool
		wantErr     error
		wantUnavail bool
		wantErrors  float64
	}{
		{"success", func(context.Context) error { return nil }, false, nil, false, 0},
		{"an answer is not a failure", func(context.Context) error { return errNotFound }, false, errNotFound, false, 0},
		{"a failure names the node", func(context.Context) error { return errDown }, false, errDown, true, 1},
		{"the timeout is a failure", func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }, false, context.DeadlineExceeded, true, 1},
		{"the caller's cancellation is not a failure", func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }, true, context.Canceled, false, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := newTestMetrics(t)
			g := NewGroup([]NodeSpec{{Name: "blob-1", Addr: "127.0.0.1:1"}}, GroupOptions{
				Breaker: BreakerConfig{Timeout: 50 * time.Millisecond}, Metrics: m.Metrics,
			})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.cancel {
				time.AfterFunc(10*time.Millisecond, cancel)
			}
			err := g.Do(ctx, func(ctx context.Context, n *Node) error { return tc.op(ctx) }, func(err error) bool { return err != errNotFound })
			if tc.wantErr == nil && err != nil || tc.wantErr != nil && !errors.Is(err, tc.wantErr) && !strings.Contains(fmt.Sprint(err), tc.wantErr.Error()) {
				t.Fatalf("Do = %v, want %v", err, tc.wantErr)
			}
			if got := IsUnavailable(err); got != tc.wantUnavail {
				t.Fatalf("IsUnavailable(%v) = %v, want %v", err, got, tc.wantUnavail)
			}
			var ue *UnavailableError
			if tc.wantUnavail && (!errors.As(err, &ue) || ue.Backend != "blob-1 (127.0.0.1:1)") {
				t.Errorf("error %v does not name the node", err)
			}
			if got := backendErrors(t, m, "blob-1"); got != tc.wantErrors {
				t.Errorf("backend errors = %v, want %v", got, tc.wantErrors)
			}
		})
	}
}

// TestHealthChecksOpenAndClose drives the health checks by hand with an
// injected clock: failing probes open the breaker and mark the node down;
// once the node is healthy again, the first check after open_duration
// closes the breaker without any client request.
func TestHealthChecksOpenAndClose(t *testing.T) {
	var healthy atomic.Bool
	var probes atomic.Int64
	probe := func(ctx context.Context, n *Node) error {
		probes.Add(1)
		if healthy.Load() {
			return nil
		}
		return errors.New("connection refused")
	}
	clock := newFakeClock()
	m := newTestMetrics(t)
	g := newTestGroup(t, clock, m, probe, "blob-1")
	n := g.Nodes()[0]
	ctx := context.Background()

	steps := []struct {
		healthy bool
		advance time.Duration
		wantUp  bool
		want    State
	}{
		{true, 0, true, Closed},
		{false, 0, false, Closed},
		{false, 0, false, Open}, // failure_threshold = 2 failed checks
		{true, testBreaker.OpenDuration / 2, true, Open},
		{true, testBreaker.OpenDuration / 2, true, Closed},
		{false, 0, false, Closed},
		{false, 0, false, Open},
		{false, testBreaker.OpenDuration, false, Open}, // the trial failed: open again
		{true, testBreaker.OpenDuration - time.Millisecond, true, Open},
		{true, time.Millisecond, true, Closed},
	}
	for i, st := range steps {
		healthy.Store(st.healthy)
		clock.Advance(st.advance)
		g.CheckNow(ctx)
		if n.Up() != st.wantUp || n.Breaker.State() != st.want {
			t.Fatalf("check %d: up=%v breaker=%v, want up=%v breaker=%v", i, n.Up(), n.Breaker.State(), st.wantUp, st.want)
		}
		if st.want == Open {
			if err := g.Healthy(); err == nil {
				t.Fatalf("check %d: Healthy() = nil with the only node's breaker open", i)
			}
		}
	}
	if got := breakerGauge(t, m, "blob-1"); got != float64(Closed) {
		t.Errorf("breaker gauge = %v, want closed", got)
	}
	if got := backendErrors(t, m, "blob-1"); got != 5 {
		t.Errorf("backend errors = %v, want the 5 failed probes", got)
	}
}

// TestHTTPTransportPool checks the pool knobs on a real HTTP server: a
// warm probe leaves min_per_node connections open and reuses them, and
// concurrent requests never open more than max_per_node.
func TestHTTPTransportPool(t *testing.T) {
	var mu sync.Mutex
	opened := 0
	active, peak := 0, 0
	var gate atomic.Pointer[chan struct{}]
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		active++
		peak = max(peak, active)
		mu.Unlock()
		if g := gate.Load(); g != nil {
			<-*g
		}
		mu.Lock()
		active--
		mu.Unlock()
		w.WriteHeader(http.StatusNotFound)
	}))
	srv.Listener.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv.Listener = l
	srv.Config.ConnState = func(c net.Conn, s http.ConnState) {
		if s == http.StateNew {
			mu.Lock()
			opened++
			mu.Unlock()
		}
	}
	srv.Start()
	defer srv.Close()

	pool := PoolConfig{MinPerNode: 3, MaxPerNode: 5, MaxIdle: time.Minute, ConnectTimeout: time.Second, HealthCheckInterval: time.Minute}
	tr := NewHTTPTransport(pool, nil)
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	get := func(ctx context.Context, _ *Node) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/probe", nil)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	}

	// The server holds every probe until all three arrived, so the three
	// must be on three connections.
	barrier := make(chan struct{})
	gate.Store(&barrier)
	arrived := make(chan struct{})
	go func() {
		for {
			mu.Lock()
			a := active
			mu.Unlock()
			if a == pool.MinPerNode {
				close(barrier)
				close(arrived)
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	warm := WarmProbe(pool, get)
	if err := warm(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	<-arrived
	gate.Store(nil)
	if err := warm(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if opened != pool.MinPerNode {
		t.Errorf("two warm probes opened %d connections, want %d kept and reused", opened, pool.MinPerNode)
	}
	mu.Unlock()

	// Ten concurrent requests against a server that holds them: no more
	// than max_per_node reach it at once.
	hold := make(chan struct{})
	gate.Store(&hold)
	var wg sync.WaitGroup
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := get(context.Background(), nil); err != nil {
				t.Error(err)
			}
		}()
	}
	for {
		mu.Lock()
		a := active
		mu.Unlock()
		if a == pool.MaxPerNode {
			break
		}
		time.Sleep(time.Millisecond)
	}
	close(hold)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if peak != pool.MaxPerNode || opened != pool.MaxPerNode {
		t.Errorf("peak %d concurrent requests over %d connections, want both capped at max_per_node %d", peak, opened, pool.MaxPerNode)
	}
}
