package core

import (
	"context"
	"errors"

	"github.com/claudefs/cfs-gateway/internal/core/quota"
	"github.com/claudefs/cfs-gateway/internal/engine/kv"
	"github.com/claudefs/cfs-gateway/internal/meta"
)

// foldThreshold is the number of usage deltas of one id after which they are
// folded into its base record.
const foldThreshold = 64

type usageID struct {
	kind meta.QuotaKind
	id   uint32
}

// chargeEvents collects what a transaction's quota charges want logged; it
// is logged only once the transaction commits.
type chargeEvents struct {
	crossed []quotaCrossing
}

type quotaCrossing struct {
	who   usageID
	event quota.Event
	usage quota.Usage
	lim   quota.Limits
}

// update runs fn in a metadata transaction; quota events collected in ev
// are logged after the commit, once.
func (fs *FS) update(ctx context.Context, ev *chargeEvents, fn func(tx kv.Txn) error) error {
	err := fs.store.Update(ctx, func(tx kv.Txn) error {
		if ev != nil {
			ev.crossed = ev.crossed[:0]
		}
		return fn(tx)
	})
	if err == nil && ev != nil {
		for _, c := range ev.crossed {
			fs.log.Warn("quota soft limit exceeded; grace period started",
				"kind", c.who.kind.String(), "id", c.who.id, "event", c.event.String(),
				"bytes", c.usage.Bytes, "bytes_soft", c.lim.BytesSoft,
				"inodes", c.usage.Inodes, "inodes_soft", c.lim.InodesSoft,
				"grace", fs.quotaDefaults().Grace.String())
		}
	}
	return err
}

func (fs *FS) quotaDefaults() quota.Defaults {
	fs.quotaMu.RLock()
	defer fs.quotaMu.RUnlock()
	return fs.quota
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
	base, sum, deltas, err := readUsage(ctx, tx, who)
	if err != nil {
		return err
	}
	if deltas > foldThreshold {
		select {
		case fs.folds <- who:
		default:
		}
	}
	lim, err := fs.limits(ctx, tx, who)
	if err != nil {
		return err
	}
	d := fs.quotaDefaults()
	next, event, err := quota.Charge(sum, lim, dBytes, dInodes, fs.now(), d.Grace)
	if err != nil && who.id != 0 {
		return err
	}
	uniq, err := fs.uniqs.Next(ctx)
	if err != nil {
		return err
	}
	tx.Put(meta.UsageDeltaKey(who.kind, who.id, uniq), meta.AppendUsageDelta(nil, meta.UsageDelta{Bytes: dBytes, Inodes: dInodes}))
	if next.BytesSoftSince != sum.BytesSoftSince || next.InodesSoftSince != sum.InodesSoftSince {
		// The grace clock starts or stops: record it in the base record,
		// read so that two transactions cannot both start it.
		if _, err := tx.Get(ctx, meta.UsageKey(who.kind, who.id)); err != nil && !errors.Is(err, kv.ErrNotFound) {
			return err
		}
		base.BytesSoftSince, base.InodesSoftSince = next.BytesSoftSince, next.InodesSoftSince
		tx.Put(meta.UsageKey(who.kind, who.id), quota.AppendUsage(nil, base))
	}
	if event.SoftCrossed() && ev != nil {
		ev.crossed = append(ev.crossed, quotaCrossing{who: who, event: event, usage: next, lim: lim})
	}
	return nil
}

// readUsage returns the base record of who, the usage (base plus deltas)
// and the number of deltas.
func readUsage(ctx context.Context, r kv.Reader, who usageID) (base, sum quota.Usage, deltas int, err error) {
	p := meta.UsageKey(who.kind, who.id)
	pairs, err := r.Scan(ctx, p, kv.PrefixEnd(p), 0, false)
	if err != nil {
		return base, sum, 0, err
	}
	for _, kvp := range pairs {
		_, _, isDelta, ok := meta.ParseUsageKey(kvp.Key)
		if !ok {
			continue
		}
		if !isDelta {
			if base, err = quota.DecodeUsage(kvp.Value); err != nil {
				return base, sum, 0, err
			}
			continue
		}
		d, err := meta.DecodeUsageDelta(kvp.Value)
		if err != nil {
			return base, sum, 0, err
		}
		sum.Bytes += d.Bytes
		sum.Inodes += d.Inodes
		deltas++
	}
	sum.Bytes += base.Bytes
	sum.Inodes += base.Inodes
	sum.BytesSoftSince, sum.InodesSoftSince = base.BytesSoftSince, base.InodesSoftSince
	return base, sum, deltas, nil
}

// limits returns the limits in force for who: its override, else the
// configured default of its kind.
func (fs *FS) limits(ctx context.Context, r kv.Reader, who usageID) (quota.Limits, error) {
	d := fs.quotaDefaults()
	def := d.User
	if who.kind == meta.QuotaGroup {
		def = d.Group
	}
	v, err := r.Get(ctx, meta.LimitsKey(who.kind, who.id))
	if errors.Is(err, kv.ErrNotFound) {
		return quota.Effective(def, nil), nil
	}
	if err != nil {
		return quota.Limits{}, err
	}
	o, err := quota.DecodeLimits(v)
	if err != nil {
		return quota.Limits{}, err
	}
	return quota.Effective(def, &o), nil
}

// foldUsage folds the deltas of who into its base record.
func (fs *FS) foldUsage(ctx context.Context, who usageID) error {
	return fs.store.Update(ctx, func(tx kv.Txn) error {
		p := meta.UsageKey(who.kind, who.id)
		pairs, err := tx.Scan(ctx, p, kv.PrefixEnd(p), kv.MaxTxnOps-2, false)
		if err != nil {
			return err
		}
		var base quota.Usage
		for _, kvp := range pairs {
			_, _, isDelta, ok := meta.ParseUsageKey(kvp.Key)
			if !ok {
				continue
			}
			// Reading every record makes a concurrent fold or grace
			// change conflict with this one.
			if _, err := tx.Get(ctx, kvp.Key); err != nil {
				return err
			}
			if !isDelta {
				if base, err = quota.DecodeUsage(kvp.Value); err != nil {
					return err
				}
				continue
			}
			d, err := meta.DecodeUsageDelta(kvp.Value)
			if err != nil {
				return err
			}
			base.Bytes += d.Bytes
			base.Inodes += d.Inodes
			tx.Delete(kvp.Key)
		}
		tx.Put(p, quota.AppendUsage(nil, base))
		return nil
	})
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
		_, sum, _, err := readUsage(ctx, r, who)
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
	return wrap("quota set", 0, err)
}
