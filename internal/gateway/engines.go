package gateway

import (
	"fmt"
	"log/slog"

	"github.com/claudefs/cfs-gateway/internal/config"
	"github.com/claudefs/cfs-gateway/internal/engine/blob"
	"github.com/claudefs/cfs-gateway/internal/engine/blob/localblob"
	"github.com/claudefs/cfs-gateway/internal/engine/kv"
	"github.com/claudefs/cfs-gateway/internal/engine/kv/pebblekv"
)

// ErrInUse is returned by Open when another process (a running gateway)
// holds the embedded metadata store.
var ErrInUse = pebblekv.ErrInUse

func openStore(cfg *config.Config, log *slog.Logger) (kv.Store, error) {
	switch cfg.Metadata.Engine {
	case config.MetadataPebble:
		s, err := pebblekv.Open(cfg.PebblePath(), pebblekv.Options{Logger: log, CacheSize: cfg.Metadata.Pebble.CacheSizeBytes})
		if err != nil {
			return nil, fmt.Errorf("opening the metadata store (metadata.pebble.path = %q): %w", cfg.PebblePath(), err)
		}
		return s, nil
	}
	return nil, fmt.Errorf("metadata.engine %q: this build serves the embedded pebble engine; the %q engine comes with scale-out support", cfg.Metadata.Engine, cfg.Metadata.Engine)
}

func openBlobs(cfg *config.Config) (blob.Store, error) {
	switch cfg.Blob.Engine {
	case config.BlobLocalEngine:
		s, err := localblob.Open(cfg.BlobLocalPath(), localblob.Options{})
		if err != nil {
			return nil, fmt.Errorf("opening the block store (blob.local.path = %q): %w", cfg.BlobLocalPath(), err)
		}
		return s, nil
	}
	return nil, fmt.Errorf("blob.engine %q: this build serves the local engine; the %q engine comes with scale-out support", cfg.Blob.Engine, cfg.Blob.Engine)
}
