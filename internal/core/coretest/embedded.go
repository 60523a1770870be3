package coretest

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/claudefs/cfs-gateway/internal/core"
	"github.com/claudefs/cfs-gateway/internal/engine/blob/localblob"
	"github.com/claudefs/cfs-gateway/internal/engine/kv"
	"github.com/claudefs/cfs-gateway/internal/engine/kv/pebblekv"
)

// OpenEmbedded opens a filesystem on the embedded engines under dir (Pebble
// with small caches in dir/meta, local blocks in dir/blocks) with opts,
// whose Store and Blobs it sets. Logs are discarded unless opts.Logger is
// set. The filesystem and its engines are closed when the test ends, after
// whatever the test registers later (a server over it) is stopped.
func OpenEmbedded(t testing.TB, dir string, opts core.Options) *core.FS {
	t.Helper()
	return OpenEmbeddedWrapped(t, dir, opts, nil)
}

// OpenEmbeddedWrapped is OpenEmbedded with the metadata store seen through
// wrap (a store that counts or fails reads, say), unless wrap is nil.
func OpenEmbeddedWrapped(t testing.TB, dir string, opts core.Options, wrap func(kv.Store) kv.Store) *core.FS {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	store, err := pebblekv.Open(filepath.Join(dir, "meta"), pebblekv.Options{
		Logger: opts.Logger, CacheSize: 16 << 20, MemTableSize: 8 << 20, ConflictSlots: 1 << 12,
	})
	if err != nil {
		t.Fatal(err)
	}
	blobs, err := localblob.Open(filepath.Join(dir, "blocks"), localblob.Options{Logger: opts.Logger})
	if err != nil {
		store.Close()
		t.Fatal(err)
	}
	opts.Store, opts.Blobs = store, blobs
	if wrap != nil {
		opts.Store = wrap(store)
	}
	fsys, err := core.New(context.Background(), opts)
	if err != nil {
		store.Close()
		blobs.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := fsys.Close(context.Background()); err != nil {
			t.Error(err)
		}
		store.Close()
		blobs.Close()
	})
	return fsys
}
