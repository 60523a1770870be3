package etcdkv

import (
	"context"
	"hash/maphash"
	"slices"
	"time"
)

// lockStripes is the number of local lock stripes keys hash into.
const lockStripes = 1024

// keyLocks serializes, within this gateway, the reruns of transactions
// that read and write the same keys. Optimistic read-modify-write
// transactions on a hot key (a quota counter shard, an allocator) otherwise
// keep failing each other's comparisons: an etcd transaction spans several
// round trips, and every commit in that window dooms the others. After a
// conflict, a transaction reruns holding the locks of the keys its failed
// run both read and wrote, so that this gateway's contenders commit one
// after the other; contenders on other gateways are still caught by the
// comparisons. Keys only written take no lock: they cannot fail a commit.
//
// Locks are stripes of a hash, taken in stripe order; a stripe that stays
// busy longer than the wait bound is skipped rather than waited for, so a
// transaction that nests another on the same keys cannot deadlock.
type keyLocks struct {
	seed    maphash.Seed
	stripes [lockStripes]chan struct{}
}

func newKeyLocks() *keyLocks {
	l := &keyLocks{seed: maphash.MakeSeed()}
	for i := range l.stripes {
		l.stripes[i] = make(chan struct{}, 1)
	}
	return l
}

// acquire takes the stripes of keys, waiting at most wait in all, and
// returns the function that releases what it took.
func (l *keyLocks) acquire(ctx context.Context, keys []string, wait time.Duration) func() {
	if len(keys) == 0 {
		return func() {}
	}
	idx := make([]int, 0, len(keys))
	for _, k := range keys {
		idx = append(idx, int(maphash.String(l.seed, k)%lockStripes))
	}
	slices.Sort(idx)
	idx = slices.Compact(idx)
	timer := time.NewTimer(wait)
	defer timer.Stop()
	held := idx[:0:0]
	expired := false
	for _, i := range idx {
		if expired {
			break
		}
		select {
		case l.stripes[i] <- struct{}{}:
			held = append(held, i)
		case <-timer.C:
			expired = true
		case <-ctx.Done():
			expired = true
		}
	}
	return func() {
		for _, i := range held {
			<-l.stripes[i]
		}
	}
}
