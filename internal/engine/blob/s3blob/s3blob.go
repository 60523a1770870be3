// Package s3blob is the blob.Store engine of a scale-out deployment: data
// blocks as objects in an S3-compatible object store (MinIO, Ceph RGW,
// AWS S3, versitygw), under a key prefix in one bucket. It owns the mapping
// of block keys to object names, the S3 requests and the meaning of their
// answers; it knows nothing of files.
//
// It uses single-request GET (with Range for partial reads), PUT and
// DELETE, and the bucket listing only for garbage collection (List). It
// never uses multipart uploads: blocks are at most a few MiB, and a single
// PUT is atomic, so a reader sees no object or all of it.
//
// Every endpoint is a node of a backend.Group (blob-1, blob-2, ...) with
// its own HTTP connection pool and circuit breaker: requests are bounded by
// circuit_breaker.timeout_ms, an unreachable endpoint, a timeout or a 5xx
// answer is a failure that comes back as a *backend.UnavailableError, and
// the health check (a GET of a key that does not exist, run
// connection_pool.min_per_node times at once to keep that many connections
// warm) marks the endpoint up or down. Several endpoints must serve the
// same bucket (gateways of one object store cluster); each request goes to
// one of them.
package s3blob

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/claudefs/cfs-gateway/internal/backend"
	"github.com/claudefs/cfs-gateway/internal/engine/blob"
	"github.com/claudefs/cfs-gateway/internal/metrics"
)

// Options configure a Store.
type Options struct {
	// Endpoints are the object store's addresses, host:port or URLs
	// (http://, https://). Their order gives the node names blob-1, ...
	Endpoints []string
	// Bucket must exist; the gateway does not create it.
	Bucket string
	// Prefix is put in front of every object name.
	Prefix string
	Region string
	// AccessKey and SecretKey sign requests (AWS signature version 4).
	AccessKey string
	SecretKey string
	// UseTLS selects HTTPS for endpoints given without a scheme.
	UseTLS bool
	// TLS, if set, is the TLS client configuration (trusted CAs).
	TLS *tls.Config
	// Pool sizes the connections to each endpoint.
	Pool backend.PoolConfig
	// Breaker configures the circuit breaker of each endpoint.
	Breaker backend.BreakerConfig
	// Metrics receives the per-endpoint series and rejections; nil is fine.
	Metrics *metrics.Metrics
	// Logger receives the engine's messages. Nil means slog.Default().
	Logger *slog.Logger
	// Now is the breakers' clock, for tests. Nil means time.Now.
	Now func() time.Time
}

// listPage is the number of objects one listing request asks for.
const listPage = 1000

// requestAttempts is how many times the S3 client itself sends a request
// that failed in transit or with a 5xx answer, within the operation's
// timeout: one retry absorbs a lone transient error, more would only delay
// the retry answer while the store is down. The breaker sees the final
// outcome.
const requestAttempts = 2

// healthKey is the object the health check asks for; it never exists.
const healthKey = ".cfs-health-probe"

// Store is a blob.Store over an S3 bucket. It is safe for concurrent use.
type Store struct {
	bucket     string
	prefix     string
	clients    []minio.Core
	transports []*http.Transport
	group      *backend.Group
	log        *slog.Logger
	closeOnce  sync.Once
}

var (
	_ blob.Store       = (*Store)(nil)
	_ blob.Lister      = (*Store)(nil)
	_ blob.PartsPutter = (*Store)(nil)
)

// Open prepares the clients and checks that some endpoint answers and
// has the bucket.
func Open(ctx context.Context, opts Options) (*Store, error) {
	if len(opts.Endpoints) == 0 {
		return nil, errors.New("s3blob: no endpoint: set blob.s3.endpoint")
	}
	if opts.Bucket == "" {
		return nil, errors.New("s3blob: no bucket: set blob.s3.bucket to an existing bucket")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Region == "" {
		opts.Region = "us-east-1"
	}
	opts.Pool = opts.Pool.WithDefaults()
	s := &Store{bucket: opts.Bucket, prefix: opts.Prefix, log: opts.Logger.With("engine", "s3")}
	specs := make([]backend.NodeSpec, len(opts.Endpoints))
	for i, ep := range opts.Endpoints {
		host, secure, err := parseEndpoint(ep, opts.UseTLS)
		if err != nil {
			return nil, err
		}
		tr := backend.NewHTTPTransport(opts.Pool, opts.TLS)
		c, err := minio.NewCore(host, &minio.Options{
			Creds:      credentials.NewStaticV4(opts.AccessKey, opts.SecretKey, ""),
			Secure:     secure,
			Transport:  tr,
			Region:     opts.Region,
			MaxRetries: requestAttempts,
		})
		if err != nil {
			return nil, fmt.Errorf("s3blob: endpoint %q: %w", ep, err)
		}
		s.clients = append(s.clients, *c)
		s.transports = append(s.transports, tr)
		specs[i] = backend.NodeSpec{Name: fmt.Sprintf("blob-%d", i+1), Addr: ep}
	}
	s.group = backend.NewGroup(specs, backend.GroupOptions{
		Pool:    opts.Pool,
		Breaker: opts.Breaker,
		Metrics: opts.Metrics,
		Now:     opts.Now,
		Logger:  s.log,
		Probe:   backend.WarmProbe(opts.Pool, s.probe),
	})
	s.group.CheckNow(ctx)
	if err := s.group.Healthy(); err != nil {
		s.closeTransports()
		return nil, fmt.Errorf("s3blob: no object store endpoint is usable for bucket %q: %w", opts.Bucket, err)
	}
	s.group.Start()
	return s, nil
}

// parseEndpoint accepts host:port or an http(s) URL.
func parseEndpoint(ep string, useTLS bool) (host string, secure bool, err error) {
	if !strings.Contains(ep, "://") {
		return ep, useTLS, nil
	}
	u, err := url.Parse(ep)
	if err != nil || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return "", false, fmt.Errorf("s3blob: endpoint %q: want host:port or http(s)://host:port without a path", ep)
	}
	switch u.Scheme {
	case "http":
		return u.Host, false, nil
	case "https":
		return u.Host, true, nil
	}
	return "", false, fmt.Errorf("s3blob: endpoint %q: scheme must be http or https", ep)
}

// Close stops the health checks and closes idle connections.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.group.Close()
		s.closeTransports()
	})
	return nil
}

func (s *Store) closeTransports() {
	for _, tr := range s.transports {
		tr.CloseIdleConnections()
	}
}

func (s *Store) name(key string) string { return s.prefix + key }

// probe asks for an object that does not exist: "not found" is the
// healthy answer; a missing bucket or refused credentials are not.
func (s *Store) probe(ctx context.Context, n *backend.Node) error {
	rc, _, _, err := s.clients[n.Index].GetObject(ctx, s.bucket, s.name(healthKey), minio.GetObjectOptions{})
	if err == nil {
		rc.Close()
		return nil
	}
	err = s.mapError(err, "health check of "+n.Addr+": get", healthKey)
	if errors.Is(err, blob.ErrNotFound) {
		return nil
	}
	return err
}

// Put stores data under key with one PUT.
func (s *Store) Put(ctx context.Context, key string, data []byte) error {
	return s.PutParts(ctx, key, data)
}

// PutParts stores the concatenation of parts under key with one PUT,
// without joining them first.
func (s *Store) PutParts(ctx context.Context, key string, parts ...[]byte) error {
	var size int64
	for _, p := range parts {
		size += int64(len(p))
	}
	return s.group.Do(ctx, func(ctx context.Context, n *backend.Node) error {
		body := newPartsReader(parts)
		// The HTTP client may still read a request body after the
		// response arrived (an early error answer); fencing the reader
		// guarantees the caller's buffers are left alone once Put returns.
		defer body.fence()
		_, err := s.clients[n.Index].PutObject(ctx, s.bucket, s.name(key), body, size, "", "", minio.PutObjectOptions{
			DisableMultipart: true,
			ContentType:      "application/octet-stream",
		})
		if err != nil {
			return s.mapError(err, "put", key)
		}
		return nil
	}, isFailure)
}

// Get reads the whole object.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	var out []byte
	err := s.group.Do(ctx, func(ctx context.Context, n *backend.Node) error {
		rc, info, _, err := s.clients[n.Index].GetObject(ctx, s.bucket, s.name(key), minio.GetObjectOptions{})
		if err != nil {
			return s.mapError(err, "get", key)
		}
		defer rc.Close()
		if info.Size < 0 {
			b, err := io.ReadAll(rc)
			if err != nil {
				return fmt.Errorf("s3blob: get %s: reading the body: %w", key, err)
			}
			out = b
			return nil
		}
		buf := make([]byte, info.Size)
		if _, err := io.ReadFull(rc, buf); err != nil {
			return fmt.Errorf("s3blob: get %s: the body ended early: %w", key, err)
		}
		out = buf
		return nil
	}, isFailure)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// GetRange reads len(p) bytes at off with a Range request.
func (s *Store) GetRange(ctx context.Context, key string, off int64, p []byte) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("s3blob: get %s: negative offset %d", key, off)
	}
	var n int
	err := s.group.Do(ctx, func(ctx context.Context, node *backend.Node) error {
		c := s.clients[node.Index]
		if len(p) == 0 {
			// Nothing to read, but a missing object must still say so.
			if _, err := c.StatObject(ctx, s.bucket, s.name(key), minio.StatObjectOptions{}); err != nil {
				return s.mapError(err, "stat", key)
			}
			return nil
		}
		var opts minio.GetObjectOptions
		if err := opts.SetRange(off, off+int64(len(p))-1); err != nil {
			return err
		}
		rc, info, _, err := c.GetObject(ctx, s.bucket, s.name(key), opts)
		if err != nil {
			if answer(err).Code == "InvalidRange" {
				// The offset is at or past the end of the object.
				return nil
			}
			return s.mapError(err, "get", key)
		}
		defer rc.Close()
		want := len(p)
		if info.Size >= 0 && info.Size < int64(want) {
			want = int(info.Size)
		}
		got, err := io.ReadFull(rc, p[:want])
		if err != nil {
			return fmt.Errorf("s3blob: get %s: the body ended after %d of %d bytes: %w", key, got, want, err)
		}
		n = got
		return nil
	}, isFailure)
	if err != nil {
		return 0, err
	}
	return n, nil
}

// Delete removes key; a missing key is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	return s.group.Do(ctx, func(ctx context.Context, n *backend.Node) error {
		err := s.clients[n.Index].RemoveObject(ctx, s.bucket, s.name(key), minio.RemoveObjectOptions{})
		if err == nil {
			return nil
		}
		err = s.mapError(err, "delete", key)
		if errors.Is(err, blob.ErrNotFound) {
			return nil
		}
		return err
	}, isFailure)
}

// List calls fn for every object under prefix, in key order, a page at a
// time; each page is one bounded request.
func (s *Store) List(ctx context.Context, prefix string, fn func(blob.Object) bool) error {
	after := ""
	for {
		var page []blob.Object
		err := s.group.Do(ctx, func(ctx context.Context, n *backend.Node) error {
			page = page[:0]
			lctx, cancel := context.WithCancel(ctx)
			defer cancel()
			ch := s.clients[n.Index].Client.ListObjects(lctx, s.bucket, minio.ListObjectsOptions{
				Prefix:     s.name(prefix),
				Recursive:  true,
				MaxKeys:    listPage,
				StartAfter: after,
			})
			for o := range ch {
				if o.Err != nil {
					return s.mapError(o.Err, "list", prefix)
				}
				key, ok := strings.CutPrefix(o.Key, s.prefix)
				if !ok {
					return fmt.Errorf("s3blob: list %s: the store returned %q, outside the prefix %q", prefix, o.Key, s.prefix)
				}
				page = append(page, blob.Object{Key: key, Size: o.Size, ModTime: o.LastModified})
				if len(page) == listPage {
					// The rest comes with the next request, under a
					// timeout of its own.
					return nil
				}
			}
			return nil
		}, isFailure)
		if err != nil {
			return err
		}
		for _, o := range page {
			if !fn(o) {
				return nil
			}
		}
		if len(page) < listPage {
			return nil
		}
		after = s.name(page[len(page)-1].Key)
	}
}

// Health reports nil while at least one endpoint is usable, for the
// gateway's health endpoint.
func (s *Store) Health(ctx context.Context) error { return s.group.Healthy() }

// Endpoints returns each endpoint's health and breaker state.
func (s *Store) Endpoints() []backend.NodeStatus { return s.group.Statuses() }

// NodeStatus reports each backend node's health and breaker state, in the
// order of the configured endpoints (for the gateway's /health).
func (s *Store) NodeStatus() []backend.NodeStatus {
	nodes := s.group.Nodes()
	out := make([]backend.NodeStatus, len(nodes))
	for i, n := range nodes {
		out[i] = n.Status()
	}
	return out
}
