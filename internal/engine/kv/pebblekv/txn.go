package pebblekv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"

	"github.com/cockroachdb/pebble/v2"

	"github.com/claudefs/cfs-gateway/internal/engine/kv"
)

// txn is one run of an Update function.
type txn struct {
	s     *Store
	batch *pebble.Batch
	// start is the last sequence visible when the run began.
	start uint64
	// reads are the conflict-table slots of the keys read from the
	// database, which commit validates; writes are those of the keys
	// written, which commit stamps.
	reads, writes []uint64
	ops           int
	// err is the first limit violation; Put and Delete have no error result.
	err error
}

var (
	_ kv.Txn         = (*txn)(nil)
	_ kv.MultiGetter = (*txn)(nil)
)

func newTxn(s *Store) *txn {
	// start must be loaded before the first read: see the package comment.
	start := s.visibleSeq.Load()
	return &txn{
		s:      s,
		batch:  s.db.NewIndexedBatch(),
		start:  start,
		reads:  make([]uint64, 0, 8),
		writes: make([]uint64, 0, 8),
	}
}

func (t *txn) release() {
	_ = t.batch.Close()
	t.batch = nil
}

func (s *Store) slot(key []byte) uint64 {
	return maphash.Bytes(s.seed, key) & s.slotMask
}

func (t *txn) Get(ctx context.Context, key []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if slot := t.s.slot(key); !t.wrote(key, slot) {
		t.reads = append(t.reads, slot)
	}
	return get(t.batch, key)
}

// GetMany records each key it reads from the database for conflicts, as
// Get does, and reads them all through one iterator over the batch merged
// with the database.
func (t *txn) GetMany(ctx context.Context, keys [][]byte) ([][]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for _, key := range keys {
		if slot := t.s.slot(key); !t.wrote(key, slot) {
			t.reads = append(t.reads, slot)
		}
	}
	return getMany(ctx, t.batch, keys)
}

// Scan reads the batch merged with the database. Keys it returns are not
// recorded for conflicts: the kv contract leaves phantoms to guard keys.
func (t *txn) Scan(ctx context.Context, start, end []byte, limit int, reverse bool) ([]kv.Pair, error) {
	return scan(ctx, t.batch, start, end, limit, reverse)
}

func (t *txn) Put(key, value []byte) {
	if !t.admit(len(value)) {
		return
	}
	t.writes = append(t.writes, t.s.slot(key))
	// Set copies key and value into the batch.
	_ = t.batch.Set(key, value, nil)
}

func (t *txn) Delete(key []byte) {
	if !t.admit(0) {
		return
	}
	t.writes = append(t.writes, t.s.slot(key))
	_ = t.batch.Delete(key, nil)
}

// wrote reports whether the transaction has put or deleted key, whose
// conflict slot is slot: a Get of such a key is answered by the batch,
// reads nothing committed and is not recorded. The slot rules out almost
// every other key without reading the batch, so writes need no index of
// their own; an error reading the batch answers false, which only records
// a needless read.
func (t *txn) wrote(key []byte, slot uint64) bool {
	if !slices.Contains(t.writes, slot) {
		return false
	}
	r := t.batch.Reader()
	for {
		_, k, _, ok, err := r.Next()
		if !ok || err != nil {
			return false
		}
		if bytes.Equal(k, key) {
			return true
		}
	}
}

// admit counts one write against the kv limits and reports whether it is
// within them.
func (t *txn) admit(valueLen int) bool {
	t.ops++
	switch {
	case t.err != nil:
	case t.ops > kv.MaxTxnOps:
		t.err = fmt.Errorf("%w: more than %d writes in one transaction; split it", kv.ErrTooLarge, kv.MaxTxnOps)
	case valueLen > kv.MaxValueSize:
		t.err = fmt.Errorf("%w: value of %d bytes, the limit is %d", kv.ErrTooLarge, valueLen, kv.MaxValueSize)
	}
	return t.err == nil
}

// viewReader serves a View from a snapshot taken at its first read, so that
// a View that reads nothing costs nothing.
// viewReader is a View's reader. Its consistent state is an iterator,
// not a snapshot: a Pebble iterator reads one point-in-time state, and so
// do its clones (the view's scans and batched reads), while closing a
// snapshot makes the database look for compactions to start, which cost
// more than a small View's reads. Point reads seek the view's iterator,
// which also spares building a new iterator stack per Get.
type viewReader struct {
	db  *pebble.DB
	it  *pebble.Iterator // nil until the first read
	err error
}

var (
	_ kv.Reader      = (*viewReader)(nil)
	_ kv.MultiGetter = (*viewReader)(nil)
)

// view returns the view's iterator, opening it (and so fixing the
// view's state) at the first read.
func (r *viewReader) view() (*pebble.Iterator, error) {
	if r.it == nil && r.err == nil {
		r.it, r.err = r.db.NewIter(nil)
		if r.err != nil {
			r.err = fmt.Errorf("pebblekv: view: %w", r.err)
		}
	}
	return r.it, r.err
}

// NewIter returns an iterator over the view's state (iterSource).
func (r *viewReader) NewIter(o *pebble.IterOptions) (*pebble.Iterator, error) {
	it, err := r.view()
	if err != nil {
		return nil, err
	}
	return it.Clone(pebble.CloneOptions{IterOptions: o})
}

func (r *viewReader) close() {
	if r.it != nil {
		_ = r.it.Close()
	}
}

func (r *viewReader) Get(ctx context.Context, key []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	it, err := r.view()
	if err != nil {
		return nil, err
	}
	if !it.SeekPrefixGE(key) || !bytes.Equal(it.Key(), key) {
		if err := it.Error(); err != nil {
			return nil, fmt.Errorf("pebblekv: get: %w", err)
		}
		return nil, kv.ErrNotFound
	}
	v, err := it.ValueAndErr()
	if err != nil {
		return nil, fmt.Errorf("pebblekv: get: %w", err)
	}
	out := bytes.Clone(v)
	if out == nil {
		out = []byte{}
	}
	return out, nil
}

func (r *viewReader) GetMany(ctx context.Context, keys [][]byte) ([][]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return getMany(ctx, r, keys)
}

func (r *viewReader) Scan(ctx context.Context, start, end []byte, limit int, reverse bool) ([]kv.Pair, error) {
	return scan(ctx, r, start, end, limit, reverse)
}

// iterSource opens iterators over one state: a transaction's batch or a
// view.
type iterSource interface {
	NewIter(o *pebble.IterOptions) (*pebble.Iterator, error)
}

func get(r pebble.Reader, key []byte) ([]byte, error) {
	v, closer, err := r.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, kv.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("pebblekv: get: %w", err)
	}
	out := bytes.Clone(v)
	if out == nil {
		out = []byte{}
	}
	_ = closer.Close()
	return out, nil
}

// getMany reads keys through one iterator. A point Get builds a new
// iterator stack over every level each time, which costs more than the
// lookup itself; one iterator visiting the keys in order pays that once,
// and each seek to a later key starts from where the previous one ended.
func getMany(ctx context.Context, r iterSource, keys [][]byte) ([][]byte, error) {
	values := make([][]byte, len(keys))
	if len(keys) == 0 {
		return values, nil
	}
	order := make([]int, len(keys))
	for i := range order {
		order[i] = i
	}
	byKey := func(a, b int) int { return bytes.Compare(keys[a], keys[b]) }
	if !slices.IsSortedFunc(order, byKey) {
		slices.SortStableFunc(order, byKey)
	}
	first, last := keys[order[0]], keys[order[len(order)-1]]
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: first, UpperBound: append(bytes.Clone(last), 0)})
	if err != nil {
		return nil, fmt.Errorf("pebblekv: get many: %w", err)
	}
	var arena valueArena
	for n, i := range order {
		if n%scanCtxEvery == scanCtxEvery-1 {
			if err := ctx.Err(); err != nil {
				_ = it.Close()
				return nil, err
			}
		}
		key := keys[i]
		if n > 0 && bytes.Equal(key, keys[order[n-1]]) {
			if prev := values[order[n-1]]; prev != nil {
				values[i] = arena.copy(prev)
			}
			continue
		}
		if !it.SeekGE(key) {
			if err := it.Error(); err != nil {
				_ = it.Close()
				return nil, fmt.Errorf("pebblekv: get many: seeking %q: %w", key, err)
			}
			continue
		}
		if !bytes.Equal(it.Key(), key) {
			continue
		}
		v, err := it.ValueAndErr()
		if err != nil {
			_ = it.Close()
			return nil, fmt.Errorf("pebblekv: get many: reading value of %q: %w", key, err)
		}
		values[i] = arena.copy(v)
	}
	if err := it.Close(); err != nil {
		return nil, fmt.Errorf("pebblekv: get many: %w", err)
	}
	return values, nil
}

// valueArena copies small values into shared chunks, so that a batch of
// records of a few dozen bytes costs a few allocations rather than one
// each. Copies are clipped, so appending to one cannot overwrite another.
type valueArena struct{ buf []byte }

const (
	arenaChunk = 16 << 10
	// Values above arenaLarge get an allocation of their own: sharing a
	// chunk would keep a large neighbour alive as long as any small one.
	arenaLarge = 512
)

func (a *valueArena) copy(v []byte) []byte {
	switch {
	case len(v) == 0:
		return []byte{} // present, so not nil
	case len(v) > arenaLarge:
		return bytes.Clone(v)
	}
	if cap(a.buf)-len(a.buf) < len(v) {
		a.buf = make([]byte, 0, arenaChunk)
	}
	n := len(a.buf)
	a.buf = append(a.buf, v...)
	return a.buf[n : n+len(v) : n+len(v)]
}

// scanCtxEvery is how many pairs a Scan reads between context checks.
const scanCtxEvery = 256

func scan(ctx context.Context, r iterSource, start, end []byte, limit int, reverse bool) ([]kv.Pair, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if start != nil && end != nil && bytes.Compare(start, end) >= 0 {
		return nil, nil
	}
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: start, UpperBound: end})
	if err != nil {
		return nil, fmt.Errorf("pebblekv: scan: %w", err)
	}
	var out []kv.Pair
	if limit > 0 {
		out = make([]kv.Pair, 0, min(limit, 1024))
	}
	var ok bool
	if reverse {
		ok = it.Last()
	} else {
		ok = it.First()
	}
	for ; ok && (limit <= 0 || len(out) < limit); ok = step(it, reverse) {
		if len(out)%scanCtxEvery == scanCtxEvery-1 {
			if err := ctx.Err(); err != nil {
				_ = it.Close()
				return nil, err
			}
		}
		v, err := it.ValueAndErr()
		if err != nil {
			_ = it.Close()
			return nil, fmt.Errorf("pebblekv: scan: reading value of %q: %w", it.Key(), err)
		}
		k := it.Key()
		// One allocation per pair; capacities are clipped so that appending
		// to the key cannot overwrite the value.
		buf := make([]byte, len(k)+len(v))
		copy(buf, k)
		copy(buf[len(k):], v)
		out = append(out, kv.Pair{Key: buf[:len(k):len(k)], Value: buf[len(k):]})
	}
	if err := it.Close(); err != nil {
		return nil, fmt.Errorf("pebblekv: scan: %w", err)
	}
	return out, nil
}

func step(it *pebble.Iterator, reverse bool) bool {
	if reverse {
		return it.Prev()
	}
	return it.Next()
}
