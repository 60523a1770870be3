package meta

import (
	"context"
	"errors"
	"sync"

	"github.com/claudefs/cfs-gateway/internal/engine/kv"
)

// Allocator hands out numbers that are unique across every gateway of the
// filesystem. It reserves a range at a time in its own small transaction, so
// that the numbers it gives out never conflict with other transactions; the
// unused rest of a range is lost when the process stops, which is harmless
// because numbers are never reused.
type Allocator struct {
	store kv.Store
	key   []byte
	first uint64 // the first number ever handed out
	batch uint64

	mu        sync.Mutex
	next, end uint64
}

// NewAllocator returns the allocator stored under AllocKey(name).
func NewAllocator(store kv.Store, name string, first, batch uint64) *Allocator {
	return &Allocator{store: store, key: AllocKey(name), first: first, batch: batch}
}

// Next returns a fresh number.
func (a *Allocator) Next(ctx context.Context) (uint64, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.next == a.end {
		if err := a.refill(ctx); err != nil {
			return 0, err
		}
	}
	n := a.next
	a.next++
	return n, nil
}

func (a *Allocator) refill(ctx context.Context) error {
	var start uint64
	err := a.store.Update(ctx, func(tx kv.Txn) error {
		start = a.first
		v, err := tx.Get(ctx, a.key)
		switch {
		case err == nil:
			if start, err = DecodeU64(v); err != nil {
				return err
			}
		case !errors.Is(err, kv.ErrNotFound):
			return err
		}
		tx.Put(a.key, AppendU64(nil, start+a.batch))
		return nil
	})
	if err != nil {
		return err
	}
	a.next, a.end = start, start+a.batch
	return nil
}
