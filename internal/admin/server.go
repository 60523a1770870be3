// Package admin owns the gateway's administrative HTTP listener: GET /health
// with a per-component report, GET /metrics for Prometheus, operator
// actions under /admin/ such as cache invalidation, and, when enabled, Go's
// runtime profiles under /debug/pprof/. Other endpoints can be
// added with Server.Handle.
//
// It must not import other packages of the gateway. It sees components only
// through the small interfaces defined here (Checker, Detailer,
// CacheInvalidator) and metrics only as a prometheus.Gatherer; the binary
// wires the real implementations in. It serves operators and load
// balancers, never clients' data.
package admin

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// CacheInvalidator drops cached metadata so that the next access reads the
// metadata store, for example after the store was changed behind the
// gateway's back.
type CacheInvalidator interface {
	InvalidateAll()
	Invalidate(ino uint64)
}

// Config says what the admin listener serves. A nil Gatherer or Cache leaves
// its endpoint out (404); a nil Health serves a report with no components.
type Config struct {
	Health   *Health
	Gatherer prometheus.Gatherer
	Cache    CacheInvalidator
	// PProf serves the Go runtime's profiles under /debug/pprof/.
	PProf bool
	// Logger receives request logs at debug level and operator actions at
	// info level; nil means slog.Default().
	Logger *slog.Logger
}

// Server is the admin HTTP server. It is also an http.Handler, so it can be
// tested or mounted without a listener.
type Server struct {
	health *Health
	cache  CacheInvalidator
	log    *slog.Logger
	mux    *http.ServeMux
	srv    *http.Server
}

// New builds the server and its routes.
func New(cfg Config) *Server {
	s := &Server{
		health: cfg.Health,
		cache:  cfg.Cache,
		log:    cfg.Logger,
		mux:    http.NewServeMux(),
	}
	if s.health == nil {
		s.health = NewHealth("", 0)
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.mux.Handle("/health", allow(s.handleHealth, http.MethodGet, http.MethodHead))
	if cfg.Gatherer != nil {
		// ContinueOnError: one broken collector must not hide all the
		// other metrics from the scrape.
		metrics := promhttp.HandlerFor(cfg.Gatherer, promhttp.HandlerOpts{
			ErrorLog:      slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
			ErrorHandling: promhttp.ContinueOnError,
		})
		s.mux.Handle("/metrics", allow(metrics.ServeHTTP, http.MethodGet, http.MethodHead))
	}
	if s.cache != nil {
		s.mux.Handle("/admin/cache/invalidate", allow(s.handleCacheInvalidate, http.MethodPost))
	}
	if cfg.PProf {
		s.mux.HandleFunc("/debug/pprof/", pprof.Index)
		s.mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		s.mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		s.mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		s.mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	s.srv = &http.Server{
		Handler: s,
		// Generous enough for a slow scrape of many series, short enough
		// that idle or stalled admin clients do not pile up.
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	return s
}

// Handle adds an endpoint, with http.ServeMux pattern syntax (for example
// "POST /admin/compact"). Like ServeMux it panics if the pattern conflicts
// with one already registered. It is safe to call while serving.
func (s *Server) Handle(pattern string, h http.Handler) {
	s.mux.Handle(pattern, h)
}

// ServeHTTP routes a request and logs it at debug level.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.log.Enabled(r.Context(), slog.LevelDebug) {
		s.mux.ServeHTTP(w, r)
		return
	}
	start := time.Now()
	rec := &recorder{ResponseWriter: w, status: http.StatusOK}
	s.mux.ServeHTTP(rec, r)
	s.log.LogAttrs(r.Context(), slog.LevelDebug, "admin request",
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.String("query", r.URL.RawQuery),
		slog.String("remote", r.RemoteAddr),
		slog.Int("status", rec.status),
		slog.Int64("bytes", rec.bytes),
		slog.Duration("duration", time.Since(start)),
	)
}

// Serve accepts connections on l until Shutdown; like http.Server.Serve it
// then returns http.ErrServerClosed.
func (s *Server) Serve(l net.Listener) error {
	return s.srv.Serve(l)
}

// Shutdown stops accepting connections and waits, until ctx is done, for
// requests in progress to finish.
func (s *Server) Shutdown(ctx context.Context) error {
	return s.srv.Shutdown(ctx)
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	rep := s.health.Check(r.Context())
	code := http.StatusOK
	if rep.Status == StatusDown {
		code = http.StatusServiceUnavailable
	}
	// A cached health answer would hide an outage from a load balancer.
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, code, rep)
}

// invalidateResponse is the body of a successful cache invalidation.
type invalidateResponse struct {
	Invalidated string `json:"invalidated"` // "all" or "inode"
	Ino         uint64 `json:"ino,omitempty"`
}

func (s *Server) handleCacheInvalidate(w http.ResponseWriter, r *http.Request) {
	values, present := r.URL.Query()["ino"]
	if !present {
		s.cache.InvalidateAll()
		s.log.Info("admin: invalidated the whole metadata cache", "remote", r.RemoteAddr)
		writeJSON(w, http.StatusOK, invalidateResponse{Invalidated: "all"})
		return
	}
	if len(values) != 1 {
		writeError(w, http.StatusBadRequest, "give ino at most once: one inode per request, or none to invalidate everything")
		return
	}
	ino, err := strconv.ParseUint(values[0], 10, 64)
	if err != nil || ino == 0 {
		writeError(w, http.StatusBadRequest, "ino must be a positive decimal inode number, got "+strconv.Quote(values[0]))
		return
	}
	s.cache.Invalidate(ino)
	s.log.Info("admin: invalidated cached metadata of one inode", "ino", ino, "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, invalidateResponse{Invalidated: "inode", Ino: ino})
}

// allow answers 405 with a JSON error and an Allow header to any method not
// listed, so that every admin endpoint errs in the same format.
func allow(h http.HandlerFunc, methods ...string) http.Handler {
	allowed := strings.Join(methods, ", ")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, m := range methods {
			if r.Method == m {
				h(w, r)
				return
			}
		}
		w.Header().Set("Allow", allowed)
		writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" is not allowed here; use "+allowed)
	})
}

type errorResponse struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, errorResponse{Error: msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		// Only a Detailer returning something JSON cannot encode gets here.
		code = http.StatusInternalServerError
		body, _ = json.Marshal(errorResponse{Error: "encoding the response failed: " + err.Error()})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(append(body, '\n'))
}

// recorder remembers what was answered, for the request log.
type recorder struct {
	http.ResponseWriter
	status      int
	bytes       int64
	wroteHeader bool
}

func (r *recorder) WriteHeader(code int) {
	if !r.wroteHeader {
		r.status, r.wroteHeader = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	r.wroteHeader = true
	n, err := r.ResponseWriter.Write(p)
	r.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection's flusher and
// deadlines through the recorder.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
