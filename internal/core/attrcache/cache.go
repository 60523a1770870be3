// Package attrcache owns the filesystem core's in-memory cache of inode
// attributes and name lookups: bounded size, a time-to-live after which an
// entry is no longer served, and the eviction policy the operator chose
// (cache.nfs_attr_cache.eviction: lru, lfu or fifo).
//
// It stores and forgets values; it must not decide what is cached or when an
// entry becomes stale beyond its age. The core invalidates entries it changes
// and, in a scale-out deployment, relies on the TTL to bound how long a change
// made on another gateway stays invisible here. The package imports nothing of
// the project and does no I/O.
//
// # Sharding
//
// A cache is split into shards chosen by a hash of the key, each with its own
// lock and its own eviction structure, so that concurrent readers rarely meet
// on a lock. MaxEntries is divided among the shards and eviction order holds
// per shard: the victim is the coldest entry of the shard the new key falls
// into, not of the whole cache. Unless Options.Shards says otherwise, a cache
// of fewer than 2*MinEntriesPerShard entries has a single shard, and then
// eviction order is exact for the whole cache.
//
// # Policies
//
//   - LRU evicts the entry least recently read or written. Get and Put both
//     count as a use.
//   - LFU evicts the entry used the fewest times; among equally used entries,
//     the least recently used one. Get and Put both count as a use. Counts only
//     grow, so a once-popular entry would linger; the TTL bounds that.
//   - FIFO evicts the entry inserted first. Get does not reorder, and Put on a
//     key already present replaces its value and restarts its TTL but keeps its
//     place in the queue.
//
// Every operation on a policy is O(1). An expired entry found by Get or Put is
// removed at once; expired entries nobody asks for stay until evicted, until
// RemoveExpired, or until a reconfiguration drops them.
package attrcache

import (
	"fmt"
	"hash/maphash"
	"math/bits"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults from the tuning guide (cache.nfs_attr_cache).
const (
	DefaultMaxEntries = 10000
	DefaultTTL        = 30 * time.Second
)

// NoExpiry as Options.TTL keeps entries until they are evicted or invalidated.
const NoExpiry time.Duration = -1

// MinEntriesPerShard is the smallest share of MaxEntries a shard gets when
// the shard count is chosen automatically: below it, the loss of exact
// eviction order costs more than lock contention would.
const MinEntriesPerShard = 256

// maxShards bounds the automatic shard count; more shards than this bring
// nothing on the machines a gateway runs on.
const maxShards = 64

// maxEntriesLimit keeps node indexes within int32.
const maxEntriesLimit = 1 << 30

// Policy is an eviction policy. The zero value is LRU, the guide's default.
type Policy uint8

const (
	LRU Policy = iota
	LFU
	FIFO
)

func (p Policy) String() string {
	switch p {
	case LRU:
		return "lru"
	case LFU:
		return "lfu"
	case FIFO:
		return "fifo"
	}
	return fmt.Sprintf("Policy(%d)", uint8(p))
}

// ParsePolicy reads the configuration spelling of a policy: lru, lfu or fifo,
// in any case.
func ParsePolicy(s string) (Policy, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "lru":
		return LRU, nil
	case "lfu":
		return LFU, nil
	case "fifo":
		return FIFO, nil
	}
	return 0, fmt.Errorf("attrcache: unknown eviction policy %q: use lru, lfu or fifo", s)
}

// Counter is what the cache needs of a metric; a prometheus.Counter is one.
type Counter interface{ Inc() }

// Options configure a cache.
type Options struct {
	// MaxEntries bounds the number of entries; 0 means DefaultMaxEntries.
	MaxEntries int
	// TTL is how long an entry is served after its Put; 0 means DefaultTTL
	// and a negative value (NoExpiry) means entries do not age.
	TTL time.Duration
	// Policy chooses the victim when the cache is full.
	Policy Policy
	// Shards is the number of shards, rounded up to a power of two and
	// capped at MaxEntries; 0 chooses from MaxEntries and GOMAXPROCS.
	Shards int

	// Now is the clock; nil means the monotonic clock of time.Now. Tests
	// inject their own.
	Now func() time.Time
	// Hits and Misses, when set, are incremented once per Get.
	Hits, Misses Counter
}

// config is the part of Options a reconfiguration may change.
type config struct {
	maxEntries int
	ttl        time.Duration // > 0, or NoExpiry
	policy     Policy
	shards     int // power of two, >= 1
}

func (o Options) config() (config, error) {
	c := config{maxEntries: o.MaxEntries, ttl: o.TTL, policy: o.Policy}
	switch {
	case c.maxEntries == 0:
		c.maxEntries = DefaultMaxEntries
	case c.maxEntries < 0 || c.maxEntries > maxEntriesLimit:
		return config{}, fmt.Errorf("attrcache: MaxEntries %d out of range: use 1..%d, or 0 for the default %d",
			o.MaxEntries, maxEntriesLimit, DefaultMaxEntries)
	}
	switch {
	case c.ttl == 0:
		c.ttl = DefaultTTL
	case c.ttl < 0:
		c.ttl = NoExpiry
	}
	if c.policy > FIFO {
		return config{}, fmt.Errorf("attrcache: unknown eviction policy %d: use LRU, LFU or FIFO", o.Policy)
	}
	if o.Shards < 0 {
		return config{}, fmt.Errorf("attrcache: Shards %d is negative: use 0 to choose automatically", o.Shards)
	}
	c.shards = o.Shards
	if c.shards == 0 {
		c.shards = autoShards(c.maxEntries)
	}
	c.shards = ceilPow2(c.shards)
	for c.shards > c.maxEntries {
		c.shards /= 2
	}
	return c, nil
}

// autoShards gives each shard at least MinEntriesPerShard entries and stops
// at four shards per processor, past which contention no longer falls.
func autoShards(maxEntries int) int {
	limit := min(maxShards, ceilPow2(4*runtime.GOMAXPROCS(0)))
	n := 1
	for n*2 <= limit && maxEntries/(n*2) >= MinEntriesPerShard {
		n *= 2
	}
	return n
}

func ceilPow2(n int) int {
	if n <= 1 {
		return 1
	}
	return 1 << bits.Len(uint(n-1))
}

// Stats is a snapshot of a cache's size and activity since New.
type Stats struct {
	Entries    int
	MaxEntries int
	Shards     int
	Policy     Policy
	TTL        time.Duration

	Hits          uint64 // Get calls that returned a value
	Misses        uint64 // Get calls that did not, expired entries included
	Evictions     uint64 // entries dropped to make room, by Put or by a shrink
	Expirations   uint64 // entries dropped because their TTL had passed
	Invalidations uint64 // entries dropped by Invalidate or InvalidateFunc
}

// HitRatio is Hits/(Hits+Misses), or 0 before the first Get.
func (s Stats) HitRatio() float64 {
	if s.Hits+s.Misses == 0 {
		return 0
	}
	return float64(s.Hits) / float64(s.Hits+s.Misses)
}

// Cache is a bounded, sharded cache safe for concurrent use.
type Cache[K comparable, V any] struct {
	table atomic.Pointer[table[K, V]]

	seed   maphash.Seed
	now    func() time.Time
	base   time.Time // entry times are nanoseconds since base
	hits   Counter
	misses Counter

	// reconfigure serialises Reconfigure calls with each other.
	reconfigure sync.Mutex
}

// table is one generation of shards. Reconfigure builds a new table, moves
// the entries over and retires the old shards, so operations that raced with
// it retry on the new table.
type table[K comparable, V any] struct {
	cfg    config
	mask   uint64
	shards []*shard[K, V]
}

func newTable[K comparable, V any](cfg config) *table[K, V] {
	t := &table[K, V]{cfg: cfg, mask: uint64(cfg.shards - 1), shards: make([]*shard[K, V], cfg.shards)}
	per, extra := cfg.maxEntries/cfg.shards, cfg.maxEntries%cfg.shards
	ttl := int64(cfg.ttl)
	if cfg.ttl <= 0 {
		ttl = 0
	}
	for i := range t.shards {
		capacity := per
		if i < extra {
			capacity++
		}
		t.shards[i] = newShard[K, V](capacity, cfg.policy, ttl)
	}
	return t
}

// New returns an empty cache.
func New[K comparable, V any](opts Options) (*Cache[K, V], error) {
	cfg, err := opts.config()
	if err != nil {
		return nil, err
	}
	c := &Cache[K, V]{seed: maphash.MakeSeed(), now: opts.Now, hits: opts.Hits, misses: opts.Misses}
	if c.now == nil {
		c.base = time.Now()
	} else {
		c.base = c.now()
	}
	c.table.Store(newTable[K, V](cfg))
	return c, nil
}

// clock reads the clock as nanoseconds since the cache was made. Without an
// injected clock it reads only the monotonic clock, which costs half of
// time.Now and ignores wall-clock steps.
func (c *Cache[K, V]) clock() int64 {
	if c.now == nil {
		return int64(time.Since(c.base))
	}
	return int64(c.now().Sub(c.base))
}

func (c *Cache[K, V]) shardIndex(t *table[K, V], k K) uint64 {
	if t.mask == 0 {
		return 0
	}
	return maphash.Comparable(c.seed, k) & t.mask
}

// lock returns the locked shard of the current table that holds k.
func (c *Cache[K, V]) lock(k K) *shard[K, V] {
	for {
		t := c.table.Load()
		s := t.shards[c.shardIndex(t, k)]
		s.mu.Lock()
		if !s.retired {
			return s
		}
		s.mu.Unlock()
	}
}

// Get returns the value stored for k, unless it is absent or its TTL has
// passed; an expired entry is removed.
func (c *Cache[K, V]) Get(k K) (V, bool) {
	t := c.table.Load()
	var v V
	var ok bool
	for {
		var now int64
		if t.cfg.ttl > 0 {
			now = c.clock() // outside the lock, which it would only lengthen
		}
		s := t.shards[c.shardIndex(t, k)]
		s.mu.Lock()
		if s.retired {
			s.mu.Unlock()
			t = c.table.Load()
			continue
		}
		v, ok = s.get(k, now)
		s.mu.Unlock()
		break
	}
	if ok {
		if c.hits != nil {
			c.hits.Inc()
		}
	} else if c.misses != nil {
		c.misses.Inc()
	}
	return v, ok
}

// Put stores v for k and starts its TTL, evicting by the policy if the
// shard is full.
func (c *Cache[K, V]) Put(k K, v V) {
	now := c.clock()
	s := c.lock(k)
	s.put(k, v, now)
	s.mu.Unlock()
}

// PutIf stores v for k like Put, unless k holds an unexpired value for
// which replace reports false. It lets writers that finish out of order
// keep the newest value: replace compares versions.
func (c *Cache[K, V]) PutIf(k K, v V, replace func(cur V) bool) {
	now := c.clock()
	s := c.lock(k)
	if cur, ok := s.peek(k, now); !ok || replace(cur) {
		s.put(k, v, now)
	}
	s.mu.Unlock()
}

// Invalidate removes k; it reports whether k was present.
func (c *Cache[K, V]) Invalidate(k K) bool {
	s := c.lock(k)
	ok := s.invalidate(k)
	s.mu.Unlock()
	return ok
}

// forEachShard runs fn on every shard of the current table, each under its
// lock. If a reconfiguration retires the table meanwhile, it starts over on
// the new one, so fn must be harmless to repeat on a shard.
func (c *Cache[K, V]) forEachShard(fn func(*shard[K, V])) {
restart:
	t := c.table.Load()
	for _, s := range t.shards {
		s.mu.Lock()
		if s.retired {
			s.mu.Unlock()
			goto restart
		}
		fn(s)
		s.mu.Unlock()
	}
}

// InvalidateFunc removes every entry for which match returns true and
// returns how many it removed. match runs under a shard lock: it must be
// quick and must not call the cache.
func (c *Cache[K, V]) InvalidateFunc(match func(K, V) bool) int {
	n := 0
	c.forEachShard(func(s *shard[K, V]) { n += s.invalidateFunc(match) })
	return n
}

// RemoveExpired removes every entry whose TTL has passed and returns how many
// it removed. Get never serves such entries; this only frees their memory.
func (c *Cache[K, V]) RemoveExpired() int {
	if c.table.Load().cfg.ttl <= 0 {
		return 0
	}
	now := c.clock()
	n := 0
	c.forEachShard(func(s *shard[K, V]) { n += s.removeExpired(now) })
	return n
}

// Purge removes every entry. Statistics are kept.
func (c *Cache[K, V]) Purge() {
	c.forEachShard(func(s *shard[K, V]) { s.reset() })
}

// Len is the number of entries, expired ones not yet removed included.
func (c *Cache[K, V]) Len() int {
	n := 0
	c.forEachShard(func(s *shard[K, V]) { n += len(s.index) })
	return n
}

// Stats returns the current size and the counts since New.
func (c *Cache[K, V]) Stats() Stats {
	for {
		t := c.table.Load()
		st := Stats{MaxEntries: t.cfg.maxEntries, Shards: len(t.shards), Policy: t.cfg.policy, TTL: t.cfg.ttl}
		retired := false
		for _, s := range t.shards {
			s.mu.Lock()
			if s.retired {
				s.mu.Unlock()
				retired = true
				break
			}
			st.Entries += len(s.index)
			s.counts.addTo(&st)
			s.mu.Unlock()
		}
		if !retired {
			return st
		}
	}
}

// Reconfigure applies a new size, TTL, policy or shard count while the cache
// is in use, as a configuration reload does. Entries are kept, ordered by
// what the new policy values (recency, use count or insertion, all tracked
// whatever the policy); if the new size is smaller, the coldest by the new
// policy are evicted. A changed TTL applies at once to the entries present,
// counted from their last Put. Now, Hits and Misses of opts are ignored: the
// cache keeps those given to New.
func (c *Cache[K, V]) Reconfigure(opts Options) error {
	cfg, err := opts.config()
	if err != nil {
		return err
	}
	c.reconfigure.Lock()
	defer c.reconfigure.Unlock()

	old := c.table.Load()
	if old.cfg == cfg {
		return nil
	}
	now := c.clock()
	for _, s := range old.shards {
		s.mu.Lock()
	}
	next := newTable[K, V](cfg)
	c.migrate(old, next, now)
	for _, s := range old.shards {
		s.retired = true
	}
	c.table.Store(next)
	for _, s := range old.shards {
		s.mu.Unlock()
	}
	return nil
}

// migrate moves the live entries of old into next, coldest first by next's
// policy, so that each shard of next ends with the hottest entries that fit
// it. With an unchanged shard count a key stays in the shard of the same
// index and the order within each shard is exact; otherwise entries of
// different old shards are interleaved by their rank within their shard.
func (c *Cache[K, V]) migrate(old, next *table[K, V], now int64) {
	var carried counts
	for _, s := range old.shards {
		carried.add(s.counts)
	}
	expired := uint64(0)
	cold := make([][]*node[K, V], len(old.shards))
	for i, s := range old.shards {
		nodes := s.liveNodes(now, next.shards[0].ttl)
		expired += uint64(len(s.index) - len(nodes))
		sortColdFirst(nodes, next.cfg.policy)
		cold[i] = nodes
	}
	carried.expirations += expired

	if len(old.shards) == len(next.shards) {
		for i, nodes := range cold {
			dst := next.shards[i]
			dst.tick = old.shards[i].tick
			for _, n := range nodes {
				dst.adopt(n)
			}
		}
	} else {
		var tick uint64
		for _, s := range old.shards {
			tick = max(tick, s.tick)
		}
		for _, s := range next.shards {
			s.tick = tick
		}
		for _, n := range interleaveByRank(cold) {
			next.shards[c.shardIndex(next, n.key)].adopt(n)
		}
	}
	next.shards[0].counts.add(carried)
}
