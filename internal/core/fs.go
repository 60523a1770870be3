package core

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/claudefs/cfs-gateway/internal/core/attrcache"
	"github.com/claudefs/cfs-gateway/internal/core/lock"
	"github.com/claudefs/cfs-gateway/internal/core/quota"
	"github.com/claudefs/cfs-gateway/internal/data"
	"github.com/claudefs/cfs-gateway/internal/engine/blob"
	"github.com/claudefs/cfs-gateway/internal/engine/kv"
	"github.com/claudefs/cfs-gateway/internal/meta"
)

// DeleteAtOnce is the BlockDeleteDelay of blocks deleted as soon as
// nothing references them.
const DeleteAtOnce time.Duration = -1

// Options configures a filesystem. Zero values take the documented defaults.
type Options struct {
	Store  kv.Store   // metadata engine (required)
	Blobs  blob.Store // block store (required)
	Logger *slog.Logger
	// Now is the clock; tests inject one to move time (quota grace).
	Now func() time.Time

	// Cache configures the attribute and lookup caches.
	Cache attrcache.Options
	// Quota holds the default limits and the grace period.
	Quota quota.Defaults

	// WriteBackBytes caps the memory of all write-back buffers [256 MiB].
	WriteBackBytes int64
	// FileBufferBytes caps one file's unflushed data [128 MiB].
	FileBufferBytes int64
	// FlushInterval is how long written data may stay buffered [5 s].
	FlushInterval time.Duration
	// BlockDeleteDelay is how long blocks of an unreferenced slice are kept
	// before deletion, so that in-flight reads still find them [1 h];
	// DeleteAtOnce for no delay.
	BlockDeleteDelay time.Duration
	// BlobParallelism is the number of concurrent blob requests per call [8].
	BlobParallelism int
	// Locks configures the lock manager.
	Locks lock.Options
	// LockSession, if set, shares the lock table with the other gateways
	// over the metadata engine (scale-out); Locks.Cluster is then set from
	// it.
	LockSession LockSession
	// NoBackground disables the background workers (operator tools that
	// open the store for one job).
	NoBackground bool
}

func (o *Options) setDefaults() {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.WriteBackBytes <= 0 {
		o.WriteBackBytes = 256 << 20
	}
	if o.FileBufferBytes <= 0 {
		o.FileBufferBytes = 128 << 20
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = 5 * time.Second
	}
	switch {
	case o.BlockDeleteDelay == 0:
		o.BlockDeleteDelay = time.Hour
	case o.BlockDeleteDelay < 0:
		o.BlockDeleteDelay = 0
	}
	if o.BlobParallelism <= 0 {
		o.BlobParallelism = 8
	}
	if o.Cache.MaxEntries <= 0 {
		o.Cache.MaxEntries = 10000
	}
	if o.Cache.TTL <= 0 {
		o.Cache.TTL = 30 * time.Second
	}
}

// FS is the filesystem. Its methods are safe for concurrent use.
type FS struct {
	opts   Options
	store  kv.Store
	blobs  blob.Store
	blocks *data.Blocks
	log    *slog.Logger
	now    func() time.Time
	info   meta.Info
	verf   [8]byte

	inos  *meta.Allocator // inode numbers
	uniqs *meta.Allocator // cookies, slice ids, usage delta ids

	attrs   *attrcache.Cache[Ino, Attr]
	entries *attrcache.Cache[entryKey, Ino]
	locks   *lock.Manager

	quotaMu   sync.RWMutex
	quota     quota.Defaults
	usage     usageCache
	overrides overrideCache

	temps sync.Map // Ino -> struct{}: temporary files this process is writing

	filesMu  sync.Mutex
	files    map[Ino]*openFile
	buffered atomic.Int64 // bytes in all write-back buffers

	work    chan struct{} // wakes the background workers
	compact chan chunkRef
	stop    context.CancelFunc
	wg      sync.WaitGroup
	flushes sync.WaitGroup // background flushes of single files
}

type entryKey struct {
	dir  Ino
	name string
}

// New opens the filesystem on the given engines, formatting them on first use.
func New(ctx context.Context, opts Options) (*FS, error) {
	if opts.Store == nil || opts.Blobs == nil {
		return nil, errors.New("core: Options.Store and Options.Blobs are required")
	}
	opts.setDefaults()
	fs := &FS{
		opts:    opts,
		store:   opts.Store,
		blobs:   opts.Blobs,
		blocks:  data.NewBlocks(opts.Blobs, data.BlocksOptions{Parallelism: opts.BlobParallelism}),
		log:     opts.Logger,
		now:     opts.Now,
		quota:   opts.Quota,
		files:   make(map[Ino]*openFile),
		work:    make(chan struct{}, 1),
		compact: make(chan chunkRef, 256),
	}
	if _, err := rand.Read(fs.verf[:]); err != nil {
		return nil, err
	}
	fs.inos = meta.NewAllocator(fs.store, "ino", uint64(RootIno)+1, 1024)
	fs.uniqs = meta.NewAllocator(fs.store, "uniq", 1<<10, 4096)
	copts := opts.Cache
	copts.Now = opts.Now
	var err error
	if fs.attrs, err = attrcache.New[Ino, Attr](copts); err != nil {
		return nil, fmt.Errorf("core: attribute cache: %w", err)
	}
	if fs.entries, err = attrcache.New[entryKey, Ino](copts); err != nil {
		return nil, fmt.Errorf("core: lookup cache: %w", err)
	}
	lopts := opts.Locks
	if lopts.Logger == nil {
		lopts.Logger = opts.Logger
	}
	if opts.LockSession != nil {
		lopts.Cluster = lockCluster{opts.LockSession}
	}
	fs.locks = lock.New(lopts)
	if err := fs.format(ctx); err != nil {
		return nil, err
	}
	if !opts.NoBackground {
		bg, cancel := context.WithCancel(context.Background())
		fs.stop = cancel
		fs.startBackground(bg)
	}
	return fs, nil
}

// format writes the filesystem info and the root directory if absent.
func (fs *FS) format(ctx context.Context) error {
	return fs.store.Update(ctx, func(tx kv.Txn) error {
		v, err := tx.Get(ctx, meta.InfoKey())
		if err == nil {
			fs.info, err = meta.DecodeInfo(v)
			return err
		}
		if !errors.Is(err, kv.ErrNotFound) {
			return err
		}
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return err
		}
		now := fs.now().UnixNano()
		fs.info = meta.Info{FSID: binary.BigEndian.Uint64(b[:]), Created: now}
		tx.Put(meta.InfoKey(), meta.AppendInfo(nil, fs.info))
		root := &meta.Inode{Type: uint8(TypeDir), Mode: 0o755, Nlink: 2, Atime: now, Mtime: now, Ctime: now,
			Btime: now, Gen: uint64(now), ChangeID: 1, Parent: uint64(RootIno)}
		tx.Put(meta.InodeKey(uint64(RootIno)), meta.AppendInode(nil, root))
		tx.Put(meta.DirTimesKey(uint64(RootIno)), meta.AppendDirTimes(nil, meta.DirTimes{Mtime: now, Ctime: now, ChangeID: 1}))
		return nil
	})
}

// FSID identifies this filesystem; it is part of every protocol's file handle.
func (fs *FS) FSID() uint64 { return fs.info.FSID }

// WriteVerifier changes every time the process starts, so that NFS clients
// know to resend unstable writes that a restart may have lost.
func (fs *FS) WriteVerifier() [8]byte { return fs.verf }

// Locks is the lock table shared by every protocol.
func (fs *FS) Locks() *lock.Manager { return fs.locks }

// SetQuotaDefaults changes the default limits and grace period (config reload).
func (fs *FS) SetQuotaDefaults(d quota.Defaults) {
	fs.quotaMu.Lock()
	fs.quota = d
	fs.quotaMu.Unlock()
}

// ReconfigureCache changes the attribute cache's size, TTL and policy live.
func (fs *FS) ReconfigureCache(o attrcache.Options) error {
	o.Now = fs.now
	if o.Hits == nil {
		o.Hits, o.Misses = fs.opts.Cache.Hits, fs.opts.Cache.Misses
	}
	if err := fs.attrs.Reconfigure(o); err != nil {
		return err
	}
	return fs.entries.Reconfigure(o)
}

// InvalidateAll drops every cached attribute and lookup.
func (fs *FS) InvalidateAll() {
	fs.attrs.Purge()
	fs.entries.Purge()
}

// Invalidate drops what is cached about one inode.
func (fs *FS) Invalidate(ino uint64) {
	fs.attrs.Invalidate(Ino(ino))
	fs.entries.InvalidateFunc(func(k entryKey, v Ino) bool { return k.dir == Ino(ino) || v == Ino(ino) })
}

// Close flushes every write-back buffer and stops the background workers. It
// does not close the engines, which the caller owns.
func (fs *FS) Close(ctx context.Context) error {
	fs.flushes.Wait()
	err := fs.SyncAll(ctx)
	if fs.stop != nil {
		fs.stop()
		fs.wg.Wait()
	}
	if err != nil {
		return fmt.Errorf("core: flushing write-back buffers at close: %w", err)
	}
	return nil
}

// Health checks that the metadata engine answers.
func (fs *FS) Health(ctx context.Context) error {
	return fs.store.View(ctx, func(r kv.Reader) error {
		_, err := r.Get(ctx, meta.InfoKey())
		return err
	})
}
