package core

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/claudefs/cfs-gateway/internal/core/quota"
	"github.com/claudefs/cfs-gateway/internal/engine/kv"
	"github.com/claudefs/cfs-gateway/internal/meta"
)

type usageID struct {
	kind meta.QuotaKind
	id   uint32
}

// chargeEvents collects what a transaction's quota charges did: the usage
// changes to apply to the usage cache and the soft-limit crossings to log,
// both only once the transaction commits.
type chargeEvents struct {
	crossed []quotaCrossing
	applied []appliedCharge
}

type quotaCrossing struct {
	who   usageID
	event quota.Event
	usage quota.Usage
	lim   quota.Limits
}

type appliedCharge struct {
	who  usageID
	next quota.Usage
	d    meta.UsageDelta
}

// update runs fn in a metadata transaction; what quota charges collected in
// ev takes effect after the commit, once.
func (fs *FS) update(ctx context.Context, ev *chargeEvents, fn func(tx kv.Txn) error) error {
	err := fs.store.Update(ctx, func(tx kv.Txn) error {
		if ev != nil {
			ev.crossed = ev.crossed[:0]
			ev.applied = ev.applied[:0]
		}
		return fn(tx)
	})
	if err != nil || ev == nil {
		return err
	}
	for _, a := range ev.applied {
		fs.usage.apply(a)
	}
	for _, c := range ev.crossed {
		fs.log.Warn("quota soft limit exceeded; grace period started",
			"kind", c.who.kind.String(), "id", c.who.id, "event", c.event.String(),
			"bytes", c.usage.Bytes, "bytes_soft", c.lim.BytesSoft,
			"inodes", c.usage.Inodes, "inodes_soft", c.lim.InodesSoft,
			"grace", fs.quotaDefaults().Grace.String())
	}
	return nil
}

func (fs *FS) quotaDefaults() quota.Defaults {
	fs.quotaMu.RLock()
	defer fs.quotaMu.RUnlock()
	return fs.quota
}

// usageCache holds each active id's usage (base plus deltas) so that a
// charge does not scan the id's delta records. It is reloaded from the store
// after usageTTL, which brings in what other gateways charged; this gateway's
// own charges are applied as they commit.
type usageCache struct {
	mu sync.Mutex
	m  map[usageID]*usageEntry
}

type usageEntry struct {
	sum    quota.Usage
	loaded time.Time
}

// usageTTL bounds how stale another gateway's charges may be in a check.
const usageTTL = time.Second

// cachedUsage returns the usage of who, loading it when absent or stale.
func (fs *FS) cachedUsage(ctx context.Context, who usageID) (quota.Usage, error) {
	c := &fs.usage
	now := time.Now()
	c.mu.Lock()
	e := c.m[who]
	if e != nil && now.Sub(e.loaded) < usageTTL {
		sum := e.sum
		c.mu.Unlock()
		return sum, nil
	}
	c.mu.Unlock()
	var sum quota.Usage
	err := fs.store.View(ctx, func(r kv.Reader) error {
		var err error
		_, sum, err = readUsage(ctx, r, who)
		return err
	})
	if err != nil {
		return quota.Usage{}, err
	}
	c.mu.Lock()
	if c.m == nil {
		c.m = map[usageID]*usageEntry{}
	}
	c.m[who] = &usageEntry{sum: sum, loaded: now}
	c.mu.Unlock()
	return sum, nil
}

func (c *usageCache) apply(a appliedCharge) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.m[a.who]
	if e == nil {
		return // loaded fresh from the store on next use
	}
	e.sum.Bytes += a.d.Bytes
	e.sum.Inodes += a.d.Inodes
	e.sum.BytesSoftSince, e.sum.InodesSoftSince = a.next.BytesSoftSince, a.next.InodesSoftSince
}

// forget drops cached usage so that the next check reads the store.
func (c *usageCache) forget(who usageID) {
	c.mu.Lock()
	delete(c.m, who)
	c.mu.Unlock()
}

// charge applies a change of usage to the file owner's user and group
// records inside tx, failing with a quota error when a limit forbids it.
// Id 0 (root) is counted but never refused.
func (fs *FS) charge(ctx context.Context, tx kv.Txn, uid, gid uint32, dBytes, dInodes int64, ev *chargeEvents) error {
	if dBytes == 0 && dInodes == 0 {
		return nil
	}
	for _, who := range [2]usageID{{meta.QuotaUser, uid}, {meta.QuotaGroup, gid}} {
		if err := fs.chargeOne(ctx, tx, who, dBytes, dInodes, ev); err != nil {
			return err
		}
	}
	return nil
}

func (fs *FS) chargeOne(ctx context.Context, tx kv.Txn, who usageID, dBytes, dInodes int64, ev *chargeEvents) error {
	sum, err := fs.cachedUsage(ctx, who)
	if err != nil {
		return err
	}
	lim, err := fs.limits(ctx, tx, who)
	if err != nil {
		return err
	}
	d := fs.quotaDefaults()
	next, event, err := quota.Charge(sum, lim, dBytes, dInodes, fs.now(), d.Grace)
	if err != nil {
		if who.id != 0 {
			return err
		}
		next = sum
		next.Bytes += dBytes
		next.Inodes += dInodes
	}
	delta := meta.UsageDelta{Bytes: dBytes, Inodes: dInodes}
	key := meta.UsageShardKey(who.kind, who.id, uint8(rand.IntN(meta.UsageShards)))
	var counter meta.UsageDelta
	switch v, err := tx.Get(ctx, key); {
	case err == nil:
		if counter, err = meta.DecodeUsageDelta(v); err != nil {
			return err
		}
	case !errors.Is(err, kv.ErrNotFound):
		return err
	}
	counter.Bytes += dBytes
	counter.Inodes += dInodes
	tx.Put(key, meta.AppendUsageDelta(nil, counter))
	if next.BytesSoftSince != sum.BytesSoftSince || next.InodesSoftSince != sum.InodesSoftSince {
		// The grace clock starts or stops: record it in the base record,
		// read so that two transactions cannot both start it.
		var base quota.Usage
		v, err := tx.Get(ctx, meta.UsageKey(who.kind, who.id))
		switch {
		case err == nil:
			if base, err = quota.DecodeUsage(v); err != nil {
				return err
			}
		case !errors.Is(err, kv.ErrNotFound):
			return err
		}
		base.BytesSoftSince, base.InodesSoftSince = next.BytesSoftSince, next.InodesSoftSince
		tx.Put(meta.UsageKey(who.kind, who.id), quota.AppendUsage(nil, base))
	}
	if ev != nil {
		ev.applied = append(ev.applied, appliedCharge{who: who, next: next, d: delta})
		if event.SoftCrossed() {
			ev.crossed = append(ev.crossed, quotaCrossing{who: who, event: event, usage: next, lim: lim})
		}
	}
	return nil
}

// readUsage returns the state record of who and its usage: the sum of its
// counter shards, with the state's grace stamps.
func readUsage(ctx context.Context, r kv.Reader, who usageID) (state, sum quota.Usage, err error) {
	p := meta.UsageKey(who.kind, who.id)
	pairs, err := r.Scan(ctx, p, kv.PrefixEnd(p), 0, false)
	if err != nil {
		return state, sum, err
	}
	for _, kvp := range pairs {
		_, _, isShard, ok := meta.ParseUsageKey(kvp.Key)
		if !ok {
			continue
		}
		if !isShard {
			if state, err = quota.DecodeUsage(kvp.Value); err != nil {
				return state, sum, err
			}
			continue
		}
		d, err := meta.DecodeUsageDelta(kvp.Value)
		if err != nil {
			return state, sum, err
		}
		sum.Bytes += d.Bytes
		sum.Inodes += d.Inodes
	}
	sum.BytesSoftSince, sum.InodesSoftSince = state.BytesSoftSince, state.InodesSoftSince
	return state, sum, nil
}

// limits returns the limits in force for who: its override, else the
// configured default of its kind.
func (fs *FS) limits(ctx context.Context, r kv.Reader, who usageID) (quota.Limits, error) {
	d := fs.quotaDefaults()
	def := d.User
	if who.kind == meta.QuotaGroup {
		def = d.Group
	}
	if o, ok := fs.overrides.get(who); ok {
		return quota.Effective(def, o), nil
	}
	gen := fs.overrides.generation()
	v, err := r.Get(ctx, meta.LimitsKey(who.kind, who.id))
	if errors.Is(err, kv.ErrNotFound) {
		fs.overrides.put(who, nil, gen)
		return quota.Effective(def, nil), nil
	}
	if err != nil {
		return quota.Limits{}, err
	}
	o, err := quota.DecodeLimits(v)
	if err != nil {
		return quota.Limits{}, err
	}
	fs.overrides.put(who, &o, gen)
	return quota.Effective(def, &o), nil
}

// overrideCache keeps the limit overrides that charges read (nil: the id
// has none), since almost every id has none and every write charges two.
// A change through this gateway drops it; over etcd, so does a change
// through any other (followChanges).
type overrideCache struct {
	mu  sync.Mutex
	gen uint64 // bumped by every drop, so that a read older than it is not kept
	m   map[usageID]*quota.Limits
}

func (c *overrideCache) get(who usageID) (*quota.Limits, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	o, ok := c.m[who]
	return o, ok
}

func (c *overrideCache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// put keeps what a read begun at generation gen found, unless the cache
// was dropped since.
func (c *overrideCache) put(who usageID, o *quota.Limits, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if c.m == nil || len(c.m) >= 100000 {
		c.m = make(map[usageID]*quota.Limits)
	}
	c.m[who] = o
}

func (c *overrideCache) drop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.m = nil
}

// QuotaEntry is one line of a quota report.
type QuotaEntry struct {
	Kind   string // "user" or "group"
	ID     uint32
	Usage  quota.Usage
	Limits quota.Limits
	// Override is true when the limits are set for this id, not defaults.
	Override bool
	State    quota.State
}

// QuotaReport lists the usage, limits and grace state of every user and
// group that has usage or limits.
func (fs *FS) QuotaReport(ctx context.Context) ([]QuotaEntry, error) {
	seen := map[usageID]bool{}
	var order []usageID
	err := fs.store.View(ctx, func(r kv.Reader) error {
		for _, prefix := range [][]byte{meta.UsagePrefix(), meta.LimitsPrefix()} {
			pairs, err := r.Scan(ctx, prefix, kv.PrefixEnd(prefix), 0, false)
			if err != nil {
				return err
			}
			for _, p := range pairs {
				if len(p.Key) < 6 {
					continue
				}
				who := usageID{meta.QuotaKind(p.Key[1]), uint32(p.Key[2])<<24 | uint32(p.Key[3])<<16 | uint32(p.Key[4])<<8 | uint32(p.Key[5])}
				if !seen[who] {
					seen[who] = true
					order = append(order, who)
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, wrap("quota report", 0, err)
	}
	var out []QuotaEntry
	for _, who := range order {
		e, err := fs.GetQuota(ctx, who.kind == meta.QuotaGroup, who.id)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// GetQuota returns the usage and limits of one user (group false) or group.
func (fs *FS) GetQuota(ctx context.Context, group bool, id uint32) (QuotaEntry, error) {
	who := usageID{meta.QuotaUser, id}
	if group {
		who.kind = meta.QuotaGroup
	}
	e := QuotaEntry{Kind: who.kind.String(), ID: id}
	err := fs.store.View(ctx, func(r kv.Reader) error {
		_, sum, err := readUsage(ctx, r, who)
		if err != nil {
			return err
		}
		e.Usage = sum
		if e.Limits, err = fs.limits(ctx, r, who); err != nil {
			return err
		}
		_, err = r.Get(ctx, meta.LimitsKey(who.kind, who.id))
		e.Override = err == nil
		return nil
	})
	if err != nil {
		return QuotaEntry{}, wrap("quota get", 0, err)
	}
	e.State = quota.GraceState(e.Usage, e.Limits, fs.now(), fs.quotaDefaults().Grace)
	return e, nil
}

// SetQuota stores limits for one user or group, overriding the defaults.
func (fs *FS) SetQuota(ctx context.Context, group bool, id uint32, lim quota.Limits) error {
	kind := meta.QuotaUser
	if group {
		kind = meta.QuotaGroup
	}
	err := fs.store.Update(ctx, func(tx kv.Txn) error {
		tx.Put(meta.LimitsKey(kind, id), quota.AppendLimits(nil, lim))
		return nil
	})
	fs.overrides.drop()
	return wrap("quota set", 0, err)
}
