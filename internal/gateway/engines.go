package gateway

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/claudefs/cfs-gateway/internal/backend"
	"github.com/claudefs/cfs-gateway/internal/config"
	"github.com/claudefs/cfs-gateway/internal/engine/blob"
	"github.com/claudefs/cfs-gateway/internal/engine/blob/localblob"
	"github.com/claudefs/cfs-gateway/internal/engine/blob/s3blob"
	"github.com/claudefs/cfs-gateway/internal/engine/kv"
	"github.com/claudefs/cfs-gateway/internal/engine/kv/etcdkv"
	"github.com/claudefs/cfs-gateway/internal/engine/kv/pebblekv"
	"github.com/claudefs/cfs-gateway/internal/metrics"
)

// ErrInUse is returned by Open when another process (a running gateway)
// holds the embedded metadata store.
var ErrInUse = pebblekv.ErrInUse

// openStore opens the metadata engine that cfg names. The scale-out
// engine reports each etcd member's errors and breaker state to m
// (gateway_backend_errors_total and gateway_circuit_breaker_state with
// backend meta-1, meta-2, ...) and its rejections to
// gateway_rejected_requests_total; m may be nil.
func openStore(ctx context.Context, cfg *config.Config, log *slog.Logger, m *metrics.Metrics) (kv.Store, error) {
	switch cfg.Metadata.Engine {
	case config.MetadataPebble:
		s, err := pebblekv.Open(cfg.PebblePath(), pebblekv.Options{Logger: log, CacheSize: cfg.Metadata.Pebble.CacheSizeBytes})
		if err != nil {
			return nil, fmt.Errorf("opening the metadata store (metadata.pebble.path = %q): %w", cfg.PebblePath(), err)
		}
		return s, nil
	case config.MetadataEtcd:
		e := cfg.Metadata.Etcd
		tlsConfig, err := backend.ClientTLS(e.TLS.CAFile, e.TLS.CertFile, e.TLS.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("metadata.etcd.tls: %w", err)
		}
		s, err := etcdkv.Open(ctx, etcdkv.Options{
			Endpoints: e.Endpoints,
			Prefix:    e.Prefix,
			Username:  e.Username,
			Password:  e.Password,
			TLS:       tlsConfig,
			Pool:      poolConfig(cfg.ConnectionPool),
			Breaker:   breakerConfig(cfg.CircuitBreaker),
			Metrics:   m,
			Logger:    log,
		})
		if err != nil {
			return nil, fmt.Errorf("opening the metadata store (metadata.etcd): %w", err)
		}
		return s, nil
	}
	return nil, fmt.Errorf("metadata.engine %q is not an engine of this build; use pebble or etcd", cfg.Metadata.Engine)
}

// openBlobs opens the block store that cfg names. The object store
// engine reports its endpoint's errors and breaker state to m (backend
// blob-1) and its rejections to gateway_rejected_requests_total; m may be
// nil.
func openBlobs(ctx context.Context, cfg *config.Config, log *slog.Logger, m *metrics.Metrics) (blob.Store, error) {
	switch cfg.Blob.Engine {
	case config.BlobLocalEngine:
		s, err := localblob.Open(cfg.BlobLocalPath(), localblob.Options{BufferedWrites: !cfg.Blob.Local.DirectIO})
		if err != nil {
			return nil, fmt.Errorf("opening the block store (blob.local.path = %q): %w", cfg.BlobLocalPath(), err)
		}
		return s, nil
	case config.BlobS3Engine:
		c := cfg.Blob.S3
		tlsConfig, err := backend.ClientTLS(c.CAFile, "", "")
		if err != nil {
			return nil, fmt.Errorf("blob.s3.ca_file: %w", err)
		}
		s, err := s3blob.Open(ctx, s3blob.Options{
			Endpoints: []string{c.Endpoint},
			Bucket:    c.Bucket,
			Prefix:    c.Prefix,
			Region:    c.Region,
			AccessKey: c.AccessKey,
			SecretKey: c.SecretKey,
			UseTLS:    c.UseTLS,
			TLS:       tlsConfig,
			Pool:      poolConfig(cfg.ConnectionPool),
			Breaker:   breakerConfig(cfg.CircuitBreaker),
			Metrics:   m,
			Logger:    log,
		})
		if err != nil {
			return nil, fmt.Errorf("opening the block store (blob.s3): %w", err)
		}
		return s, nil
	}
	return nil, fmt.Errorf("blob.engine %q is not an engine of this build; use local or s3", cfg.Blob.Engine)
}

func poolConfig(p config.ConnectionPool) backend.PoolConfig {
	return backend.PoolConfig{
		MinPerNode:          p.MinPerNode,
		MaxPerNode:          p.MaxPerNode,
		MaxIdle:             p.MaxIdle(),
		ConnectTimeout:      p.ConnectTimeout(),
		HealthCheckInterval: p.HealthCheckInterval(),
	}
}

func breakerConfig(b config.CircuitBreaker) backend.BreakerConfig {
	return backend.BreakerConfig{
		FailureThreshold: b.FailureThreshold,
		SuccessThreshold: b.SuccessThreshold,
		OpenDuration:     b.OpenDuration(),
		Timeout:          b.Timeout(),
	}
}
