// Package gateway assembles a running gateway from its configuration: it
// opens the engines the configuration names, the filesystem core over them,
// the metrics, the admin listener and the protocol listeners, owns their
// lifecycle, and applies live configuration reloads. It holds no protocol,
// filesystem or storage logic of its own: each of those lives in its layer's
// package, and this one only wires them.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/claudefs/cfs-gateway/internal/admin"
	"github.com/claudefs/cfs-gateway/internal/backend"
	"github.com/claudefs/cfs-gateway/internal/config"
	"github.com/claudefs/cfs-gateway/internal/core"
	"github.com/claudefs/cfs-gateway/internal/core/attrcache"
	"github.com/claudefs/cfs-gateway/internal/core/lock"
	"github.com/claudefs/cfs-gateway/internal/core/quota"
	"github.com/claudefs/cfs-gateway/internal/engine/blob"
	"github.com/claudefs/cfs-gateway/internal/engine/kv"
	"github.com/claudefs/cfs-gateway/internal/engine/kv/etcdkv"
	"github.com/claudefs/cfs-gateway/internal/metrics"
)

// Version is the gateway's version, set at build time with -ldflags.
var Version = "dev"

// Options are the process-level parts a gateway runs with.
type Options struct {
	Logger *slog.Logger
	// Level is the logger's level; a reload of log.level changes it.
	Level *slog.LevelVar
	// Tool opens the gateway for an operator command: no background work
	// and no listeners.
	Tool bool
}

// Gateway is one running gateway process.
type Gateway struct {
	opts    Options
	log     *slog.Logger
	mu      sync.Mutex
	cfg     *config.Config
	store   kv.Store
	blobs   blob.Store
	fs      *core.FS
	session *etcdkv.Session // scale-out only
	reg     *prometheus.Registry
	metrics *metrics.Metrics
	health  *admin.Health
}

// Open opens the engines and the filesystem that cfg names.
func Open(ctx context.Context, cfg *config.Config, opts Options) (*Gateway, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	g := &Gateway{opts: opts, log: opts.Logger, cfg: cfg}
	g.reg = metrics.NewRegistry()
	m, err := metrics.New(g.reg)
	if err != nil {
		return nil, err
	}
	g.metrics = m
	if g.store, err = openStore(ctx, cfg, opts.Logger, m); err != nil {
		return nil, err
	}
	if g.blobs, err = openBlobs(ctx, cfg, opts.Logger, m); err != nil {
		g.store.Close()
		return nil, err
	}
	copts, err := cacheOptions(cfg.Cache.NFSAttrCache)
	if err != nil {
		g.closeEngines()
		return nil, err
	}
	copts.Hits, copts.Misses = m.CacheHits, m.CacheMisses
	var session core.LockSession
	if es, ok := g.store.(*etcdkv.Store); ok && !opts.Tool {
		// The session exists before the filesystem that it must tell of
		// its loss, which cannot happen before a lock is claimed.
		var fs atomic.Pointer[core.FS]
		if g.session, err = es.OpenSession(ctx, cfg.Metadata.Etcd.SessionTTL(), func(int64) {
			if f := fs.Load(); f != nil {
				f.SessionLost()
			}
		}); err != nil {
			g.closeEngines()
			return nil, fmt.Errorf("opening the lock session (metadata.etcd.session_ttl_secs): %w", err)
		}
		session = g.session
		defer func() { fs.Store(g.fs) }()
	}
	g.fs, err = core.New(ctx, core.Options{
		Store:            g.store,
		Blobs:            g.blobs,
		Logger:           opts.Logger,
		Cache:            copts,
		Quota:            quotaDefaults(cfg.Quota),
		WriteBackBytes:   cfg.Data.WritebackBufferBytes,
		FileBufferBytes:  cfg.Data.FileBufferBytes,
		FlushInterval:    cfg.Data.FlushInterval(),
		BlockDeleteDelay: blockDeleteDelay(cfg),
		BlobParallelism:  cfg.Data.BlobParallelism,
		Locks:            lock.Options{BreakTimeout: cfg.Locks.BreakTimeout()},
		LockSession:      session,
		NoBackground:     opts.Tool,
	})
	if err != nil {
		g.closeEngines()
		return nil, err
	}
	return g, nil
}

func cacheOptions(c config.AttrCache) (attrcache.Options, error) {
	p, err := attrcache.ParsePolicy(string(c.Eviction))
	if err != nil {
		return attrcache.Options{}, err
	}
	return attrcache.Options{MaxEntries: c.MaxEntries, TTL: c.DefaultTTL(), Policy: p}, nil
}

func quotaDefaults(q config.Quota) quota.Defaults {
	lim := func(l config.QuotaLimits) quota.Limits {
		return quota.Limits{BytesSoft: uint64(l.BytesSoft), BytesHard: uint64(l.BytesHard), InodesSoft: uint64(l.InodesSoft), InodesHard: uint64(l.InodesHard)}
	}
	return quota.Defaults{User: lim(q.UserDefaults), Group: lim(q.GroupDefaults), Grace: q.SoftLimitGracePeriod()}
}

// FS is the gateway's filesystem.
func (g *Gateway) FS() *core.FS { return g.fs }

// Config is the configuration in force.
func (g *Gateway) Config() *config.Config {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.cfg
}

func (g *Gateway) closeEngines() {
	if g.session != nil {
		// Revoking the session frees this gateway's locks at once instead
		// of after its TTL.
		if err := g.session.Close(); err != nil {
			g.log.Warn("cannot revoke the etcd lock session; its locks free themselves after metadata.etcd.session_ttl_secs", "err", err)
		}
	}
	if g.blobs != nil {
		g.blobs.Close()
	}
	if g.store != nil {
		g.store.Close()
	}
}

// Close flushes the filesystem and closes the engines.
func (g *Gateway) Close(ctx context.Context) error {
	err := g.fs.Close(ctx)
	g.closeEngines()
	return err
}

// listenError explains a listener that could not bind, naming the key that
// changes its address.
func listenError(service, key, addr string, err error) error {
	hint := ""
	if errors.Is(err, syscall.EACCES) {
		hint = " (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
	}
	return fmt.Errorf("%s cannot listen on %s%s: %v; set %s in the configuration to another address", service, addr, hint, unwrapOp(err), key)
}

// unwrapOp drops the "listen tcp ..." prefix that net adds, which repeats
// the address.
func unwrapOp(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err
	}
	return err
}

// Service is one listener the gateway serves.
type Service struct {
	Name string // e.g. "admin"
	Key  string // the configuration key of its address
	Addr string
	l    net.Listener
}

// Serve binds every enabled listener, reports where each listens through
// ready, and serves until ctx ends; then it shuts them down and flushes.
func (g *Gateway) Serve(ctx context.Context, ready func([]Service)) error {
	cfg := g.Config()
	g.health = admin.NewHealth(Version, 0)
	g.health.Add(admin.Component{Name: "metadata", Kind: admin.KindMetadata, Checker: withNodes(checkFunc(g.fs.Health), g.store)})
	g.health.Add(admin.Component{Name: "blocks", Kind: admin.KindBlob, Checker: withNodes(checkFunc(g.blobHealth), g.blobs)})

	var services []Service
	var servers []func(context.Context) error
	if cfg.Admin.Enabled {
		l, err := net.Listen("tcp", cfg.Admin.Listen)
		if err != nil {
			g.Close(context.Background())
			return listenError("the admin API", "admin.listen", cfg.Admin.Listen, err)
		}
		srv := admin.New(admin.Config{Health: g.health, Gatherer: g.reg, Cache: g.fs, PProf: cfg.Admin.PProf, Logger: g.log})
		g.registerAdmin(srv)
		go func() {
			if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				g.log.Error("admin listener stopped", "addr", l.Addr().String(), "err", err)
			}
		}()
		services = append(services, Service{Name: "admin", Key: "admin.listen", Addr: l.Addr().String(), l: l})
		g.health.Add(admin.Component{Name: "admin listener", Kind: admin.KindListener, Checker: listenerCheck(l.Addr().String())})
		servers = append(servers, srv.Shutdown)
	}
	protocols := []struct {
		name    string
		enabled bool
		start   func(*Gateway, *config.Config) ([]Service, func(context.Context) error, error)
	}{
		{"nfs", cfg.NFS.Enabled, startNFS},
		{"s3", cfg.S3.Enabled, startS3},
	}
	for _, p := range protocols {
		if !p.enabled {
			continue
		}
		svcs, stop, err := p.start(g, cfg)
		if err != nil {
			shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			for _, stop := range servers {
				stop(shutdown)
			}
			cancel()
			g.Close(context.Background())
			return err
		}
		services = append(services, svcs...)
		servers = append(servers, stop)
	}
	var pending []string
	if cfg.NFS4.Enabled {
		pending = append(pending, "nfs4")
	}
	if cfg.SMB.Enabled {
		pending = append(pending, "smb")
	}
	if len(pending) > 0 {
		g.log.Warn("protocol front-ends enabled in the configuration are not part of this build yet; they are not served",
			"protocols", strings.Join(pending, ","))
	}
	stopCPU := g.metrics.StartCPUSampler(ctx, 5*time.Second)
	if ready != nil {
		ready(services)
	}
	<-ctx.Done()
	shutdown, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, stop := range servers {
		if err := stop(shutdown); err != nil {
			g.log.Warn("listener shutdown", "err", err)
		}
	}
	<-stopCPU
	return g.Close(shutdown)
}

func (g *Gateway) blobHealth(ctx context.Context) error {
	_, err := g.blobs.Get(ctx, "health/probe")
	if errors.Is(err, blob.ErrNotFound) {
		return nil
	}
	return err
}

type checkFunc func(context.Context) error

func (f checkFunc) Check(ctx context.Context) error { return f(ctx) }

// listenerCheck dials a listener to see that it accepts connections.
func listenerCheck(addr string) admin.Checker {
	return checkFunc(func(ctx context.Context) error {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		return c.Close()
	})
}

// Reload applies a newly loaded configuration: what can change live is
// applied and logged; what needs a restart is logged as such.
func (g *Gateway) Reload(loaded *config.Config) {
	g.mu.Lock()
	next, applied, pending := config.Reload(g.cfg, loaded)
	g.cfg = next
	g.mu.Unlock()
	for _, c := range applied {
		g.log.Info("configuration reloaded", "key", c.Path, "old", c.Old, "new", c.New)
	}
	for _, c := range pending {
		g.log.Warn("configuration change needs a restart to take effect", "key", c.Path, "old", c.Old, "new", c.New)
	}
	if len(applied) == 0 {
		if len(pending) == 0 {
			g.log.Info("configuration reloaded; nothing changed")
		}
		return
	}
	if g.opts.Level != nil {
		g.opts.Level.Set(next.Log.Level.SlogLevel())
	}
	if copts, err := cacheOptions(next.Cache.NFSAttrCache); err == nil {
		if err := g.fs.ReconfigureCache(copts); err != nil {
			g.log.Error("applying the cache configuration failed; the old one stays", "err", err)
		}
	}
	g.fs.SetQuotaDefaults(quotaDefaults(next.Quota))
	g.fs.Locks().SetBreakTimeout(next.Locks.BreakTimeout())
}

// blockDeleteDelay is data.block_delete_delay_secs for the core, whose zero
// value means its default.
func blockDeleteDelay(cfg *config.Config) time.Duration {
	if d := cfg.Data.BlockDeleteDelay(); d > 0 {
		return d
	}
	return core.DeleteAtOnce
}

// nodeReporter is implemented by engines with several backend nodes (etcd
// members, object store endpoints).
type nodeReporter interface {
	NodeStatus() []backend.NodeStatus
}

// nodesCheck is a component check that also lists its engine's nodes.
type nodesCheck struct {
	admin.Checker
	engine nodeReporter
}

// withNodes adds to check the engine's nodes, if it has several.
func withNodes(check admin.Checker, engine any) admin.Checker {
	if r, ok := engine.(nodeReporter); ok {
		return nodesCheck{check, r}
	}
	return check
}

// Details lists every node with its health check and breaker state.
func (c nodesCheck) Details() map[string]any {
	var nodes []map[string]any
	for _, n := range c.engine.NodeStatus() {
		node := map[string]any{"name": n.Name, "addr": n.Addr, "up": n.Up, "breaker": n.Breaker.String()}
		if n.LastError != "" {
			node["error"] = n.LastError
		}
		if !n.CheckedAt.IsZero() {
			node["checked_at"] = n.CheckedAt.UTC().Format(time.RFC3339Nano)
		}
		nodes = append(nodes, node)
	}
	return map[string]any{"nodes": nodes}
}
