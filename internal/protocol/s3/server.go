// Package s3 is the S3 front-end: an HTTP server that maps the S3 API onto
// the filesystem core. A bucket is a directory directly under the
// configured S3 root; key "a/b/c" is the file a/b/c in it, with the
// directories on the way created as needed and marked implicit. Object
// metadata, tags, ACLs and retention live in protocol extended attributes
// ("cfs.s3.*") of the file; bucket configuration (versioning, policy, CORS,
// tags, ACL, object lock) in those of the bucket directory. Multipart
// uploads and noncurrent versions live in a hidden area of the S3 root,
// ".cfs-s3", which can never be a bucket name.
//
// The package owns request routing, S3 authorization (bucket policy, canned
// ACLs, anonymous access), the mapping of keys to paths, listing in key
// order, multipart uploads, versioning and the mapping of core errors to S3
// errors. Authentication and payload decoding belong to package sigv4, XML
// documents to package s3xml, error bodies to package s3err.
//
// It must speak only the core API (package core and its errors): never the
// metadata store, the blocks or an engine. Permission checks, quotas and
// durability are the core's: every request runs as the identity of its
// access key's user (or the anonymous identity), and the core decides.
package s3

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/claudefs/cfs-gateway/internal/core"
	"github.com/claudefs/cfs-gateway/internal/metrics"
	"github.com/claudefs/cfs-gateway/internal/protocol/s3/s3err"
)

// Defaults of Config.
const (
	DefaultMultipartChunkMin  = 5 << 20
	DefaultPartTimeout        = 5 * time.Minute
	DefaultMaxConcurrentParts = 4
	DefaultRegion             = "us-east-1"
	DefaultAnonymousID        = 65534
)

// Config configures a Server. Zero values take the documented defaults.
type Config struct {
	FS *core.FS
	// Root is the namespace directory whose child directories are the
	// buckets (config s3.root) ["/"].
	Root string
	// Region is the region the gateway answers for (s3.region) [us-east-1].
	Region string
	// VirtualHostSuffix enables virtual-host-style requests: a Host of
	// "<bucket>.<suffix>" names the bucket (s3.virtual_host_suffix).
	VirtualHostSuffix string
	// MultipartChunkMin is the smallest size of a part that is not the
	// last one (s3.multipart_chunk_min) [5 MiB].
	MultipartChunkMin int64
	// PartTimeout fails a part upload whose body stays idle this long
	// (s3.part_timeout_ms) [5 min].
	PartTimeout time.Duration
	// MaxConcurrentParts is how many parts of one upload this gateway
	// receives at once; more get SlowDown (s3.max_concurrent_parts) [4].
	MaxConcurrentParts int
	Metrics            *metrics.Metrics
	Logger             *slog.Logger
	// AnonymousUID and AnonymousGID are who anonymous requests that a
	// bucket policy or ACL allows act as [65534, 65534].
	AnonymousUID, AnonymousGID *uint32
	// Now is the clock [time.Now].
	Now func() time.Time
	// LifecycleInterval is how often the lifecycle worker applies the
	// buckets' lifecycle rules (s3.lifecycle_interval_secs) [1 h]. A
	// negative interval turns the worker off. The worker starts with the
	// first Serve and stops at Shutdown.
	LifecycleInterval time.Duration
	// LifecycleDay is the length of a day in lifecycle rules' ages [24 h];
	// only tests shorten it.
	LifecycleDay time.Duration
}

// Server is an S3 server over a core.FS.
type Server struct {
	cfg   Config
	fs    *core.FS
	log   *slog.Logger
	now   func() time.Time
	auth  authenticator
	anon  core.Identity
	conns interface {
		Inc()
		Dec()
	}

	rootMu  sync.Mutex
	rootIno core.Ino // 0 until resolved

	hiddenMu sync.Mutex
	hidden   map[string]core.Ino // resolved directories of the hidden area

	owners        ownerCache
	keys          accessKeyCache
	bucketConfigs bucketConfigCache
	inflight      partLimiter
	// gaugeOnce counts the uploads found in the namespace into
	// gateway_s3_multipart_active, once.
	gaugeOnce sync.Once
	locks     keyLocks

	httpMu   sync.Mutex
	servers  []*http.Server
	shutdown atomic.Bool

	lifecycle lifecycleWorker
}

// New returns a server for cfg.
func New(cfg Config) *Server {
	if cfg.Root == "" {
		cfg.Root = "/"
	}
	if cfg.Region == "" {
		cfg.Region = DefaultRegion
	}
	if cfg.MultipartChunkMin <= 0 {
		cfg.MultipartChunkMin = DefaultMultipartChunkMin
	}
	if cfg.PartTimeout <= 0 {
		cfg.PartTimeout = DefaultPartTimeout
	}
	if cfg.MaxConcurrentParts <= 0 {
		cfg.MaxConcurrentParts = DefaultMaxConcurrentParts
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.LifecycleInterval == 0 {
		cfg.LifecycleInterval = DefaultLifecycleInterval
	}
	if cfg.LifecycleDay <= 0 {
		cfg.LifecycleDay = DefaultLifecycleDay
	}
	anon := core.Identity{UID: DefaultAnonymousID, GID: DefaultAnonymousID}
	if cfg.AnonymousUID != nil {
		anon.UID = *cfg.AnonymousUID
	}
	if cfg.AnonymousGID != nil {
		anon.GID = *cfg.AnonymousGID
	}
	s := &Server{
		cfg:    cfg,
		fs:     cfg.FS,
		log:    cfg.Logger.With("protocol", "s3"),
		now:    cfg.Now,
		anon:   anon,
		conns:  cfg.Metrics.Connections("s3"),
		hidden: map[string]core.Ino{},
	}
	s.owners.fs = cfg.FS
	s.keys.fs = cfg.FS
	s.keys.now = cfg.Now
	s.auth = newAuthenticator(s)
	return s
}

// Serve accepts HTTP connections on l until Shutdown.
func (s *Server) Serve(l net.Listener) error {
	hs := s.httpServer()
	if hs == nil {
		return http.ErrServerClosed
	}
	return hs.Serve(l)
}

// ServeTLS accepts HTTPS connections on l with the given certificate and
// key files until Shutdown.
func (s *Server) ServeTLS(l net.Listener, certFile, keyFile string) error {
	hs := s.httpServer()
	if hs == nil {
		return http.ErrServerClosed
	}
	hs.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	return hs.ServeTLS(l, certFile, keyFile)
}

func (s *Server) httpServer() *http.Server {
	hs := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: time.Minute,
		IdleTimeout:       5 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		ConnState: func(_ net.Conn, st http.ConnState) {
			switch st {
			case http.StateNew:
				s.conns.Inc()
			case http.StateClosed, http.StateHijacked:
				s.conns.Dec()
			}
		},
	}
	s.httpMu.Lock()
	defer s.httpMu.Unlock()
	if s.shutdown.Load() {
		return nil
	}
	s.servers = append(s.servers, hs)
	s.lifecycle.start(s)
	return hs
}

// Shutdown stops accepting connections and the lifecycle worker, and
// waits for requests and a lifecycle pass in progress to finish (or ctx to
// end).
func (s *Server) Shutdown(ctx context.Context) error {
	s.httpMu.Lock()
	s.shutdown.Store(true)
	servers := s.servers
	s.servers = nil
	s.httpMu.Unlock()
	var errs []error
	for _, hs := range servers {
		if err := hs.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if err := s.lifecycle.stop(ctx); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// request is one S3 request being served.
type request struct {
	s      *Server
	w      http.ResponseWriter
	r      *http.Request
	ctx    context.Context
	id     string // request id
	op     string // operation name for metrics and logs
	bucket string
	key    string
	q      map[string][]string

	auth *verified
	user *core.User // nil for anonymous
	// caller is who sent the request; ident is who the core operations
	// run as (the bucket owner for a delegated write, see authorize).
	caller    *core.Identity
	ident     *core.Identity
	delegated bool
	anonymous bool

	// versionedBucket is set once the bucket is known to have versioning:
	// responses then carry version ids.
	versionedBucket bool

	// prefixCond, when set, is the s3:prefix of policy conditions.
	prefixCond *string

	status   int
	bytesIn  int64
	bytesOut int64
	corsDone bool
}

func (q *request) has(name string) bool { _, ok := q.q[name]; return ok }

func (q *request) get(name string) string {
	if v := q.q[name]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// contextBackground is the context of cleanups that must run even when
// the request was cancelled.
func contextBackground() context.Context { return context.Background() }

func newRequestID() string {
	var b [8]byte
	rand.Read(b[:])
	return strings.ToUpper(hex.EncodeToString(b[:]))
}

// ServeHTTP serves one S3 request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	q := &request{s: s, w: w, r: r, ctx: r.Context(), id: newRequestID(), op: "Unknown", q: r.URL.Query()}
	w.Header().Set("x-amz-request-id", q.id)
	w.Header().Set("x-amz-id-2", q.id)
	w.Header().Set("Server", "cfs-gateway")
	if r.ContentLength == 0 && strings.EqualFold(r.Header.Get("Expect"), "100-continue") {
		// With nothing to read, the final answer goes out without a 100
		// Continue, and botocore (awscli, boto3) then keeps that answer's
		// status for the next request on the connection, which it reads
		// wrongly and waits on until its read timeout. A fresh connection
		// for the next request avoids it.
		w.Header().Set("Connection", "close")
	}
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("S3 handler panicked; the request failed with InternalError", "op", q.op,
				"bucket", q.bucket, "key", q.key, "panic", v, "stack", string(debug.Stack()))
			if q.status == 0 {
				q.fail(s3err.InternalError)
			}
		}
		if q.auth != nil && q.auth.Body != nil {
			q.auth.Body.Close()
		}
		status := q.status
		if status == 0 {
			status = http.StatusOK
		}
		s.cfg.Metrics.Op("s3", q.op).Observe(start, fmt.Sprint(status), int(q.bytesIn), int(q.bytesOut))
	}()
	if err := q.parseTarget(); err != nil {
		q.fail(err)
		return
	}
	q.route()
}

// parseTarget finds the bucket and key of the request, from the Host
// (virtual-host style) or from the path.
func (q *request) parseTarget() error {
	path := q.r.URL.Path
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	if b := q.s.virtualBucket(q.r.Host); b != "" {
		q.bucket = b
		q.key = path[1:]
		return nil
	}
	rest := path[1:]
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		q.bucket, q.key = rest[:i], rest[i+1:]
	} else {
		q.bucket = rest
	}
	return nil
}

// virtualBucket returns the bucket a virtual-host-style Host names, or "".
func (s *Server) virtualBucket(host string) string {
	suffix := s.cfg.VirtualHostSuffix
	if suffix == "" {
		return ""
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(host)
	if strings.HasSuffix(host, "."+suffix) {
		return strings.TrimSuffix(host, "."+suffix)
	}
	return ""
}

// fail answers with an error: an *s3err.Error as is, anything else mapped
// from the core's errors.
func (q *request) fail(err error) {
	e := q.s3Error(err)
	if e.Status >= 500 {
		q.s.log.Warn("S3 request failed", "op", q.op, "bucket", q.bucket, "key", q.key, "code", e.Code, "err", err)
	}
	if e.BucketName == "" {
		e.BucketName = q.bucket
	}
	if e.Key == "" && q.key != "" && (e.Code == "NoSuchKey" || e.Code == "NoSuchVersion") {
		e.Key = q.key
	}
	if e.Resource == "" {
		e.Resource = q.r.URL.Path
	}
	q.status = e.Status
	e.Write(q.w, q.r, q.id)
}

// s3Error maps err to an S3 error.
func (q *request) s3Error(err error) *s3err.Error {
	var e *s3err.Error
	if errors.As(err, &e) {
		c := *e
		return &c
	}
	return mapCoreError(err, q.key != "")
}
