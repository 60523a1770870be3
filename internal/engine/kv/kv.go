// Package kv defines the transactional ordered key-value interface that the
// metadata layer is built on, and nothing else: engines (Pebble, etcd, TiKV)
// live in sub-packages and implement it.
//
// The contract is deliberately the common subset of those engines:
//
//   - Keys and values are opaque byte strings; keys are ordered bytewise.
//   - Update runs a function in an optimistic transaction. Reads inside it see
//     the transaction's own writes. Its writes are applied at commit, all
//     together, in commit order.
//   - A transaction conflicts only through what it read. At commit, the
//     engine checks every key the function read with Get (found or not):
//     if another transaction committed a change to one of them since the
//     read (a put, even of the same value, or a delete; for a key read as
//     missing, its creation), the writes are discarded and the function is
//     run again from the start (so it must have no side effects outside
//     the transaction). A Get answered by the transaction's own earlier Put
//     or Delete reads nothing committed and is not checked. An engine may
//     rerun more often than this (a hashed or merged check), never less.
//   - Keys only written (Put or Delete without a Get of the committed
//     value) are never checked. Two transactions that write the same key
//     blind both commit without a rerun, and the one that commits last
//     wins. A caller that needs an update to depend on the current value
//     (a counter, a record edited in place) must Get it first in the same
//     transaction: that read is what makes concurrent updates serialize.
//   - So Updates are serializable: one that writes behaves as if it ran
//     alone at its commit, every value it read being still current then;
//     one that writes nothing saw a single committed state.
//   - GetMany, which a Reader may offer (see MultiGetter and the GetMany
//     function), reads many keys at once and behaves exactly as one Get per
//     key in the same View or transaction: inside Update every key it reads
//     from committed state takes part in conflict detection as a Get of it
//     would, found or not, and keys the transaction wrote are answered from
//     its own writes and not checked. It only saves round trips and
//     per-read setup.
//   - Range scans are not protected against phantoms: a key added, changed
//     or removed in a scanned range after the scan does not make the
//     transaction conflict. A caller that needs that protects the range
//     with a guard key: every change to the range also writes the guard
//     (a blind write suffices), and a transaction that relies on a scan
//     Gets the guard. The metadata layer uses a directory's times record
//     as the guard of its entries.
//   - A committed Update is durable when Update returns nil.
//   - Transactions are bounded (MaxTxnOps writes, MaxValueSize bytes a value,
//     MaxTxnBytes in all) so that engines with small request limits, like
//     etcd, can honour them.
//
// Nothing above this package may depend on an engine-specific feature.
package kv

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"
)

// Limits every engine accepts. The metadata layer keeps its transactions
// within them.
const (
	// MaxTxnOps is the largest number of Put and Delete calls in one transaction.
	MaxTxnOps = 128
	// MaxValueSize is the largest value, in bytes.
	MaxValueSize = 512 << 10
	// MaxTxnBytes bounds the keys and values one transaction writes, in
	// bytes, within etcd's default request limit.
	MaxTxnBytes = 1 << 20
)

var (
	// ErrNotFound is returned by Get for a missing key.
	ErrNotFound = errors.New("kv: key not found")
	// ErrConflict is returned by Update when the transaction still conflicted
	// after the engine's retries.
	ErrConflict = errors.New("kv: transaction conflict, retries exhausted")
	// ErrTooLarge is returned when a transaction exceeds MaxTxnOps or a value
	// exceeds MaxValueSize.
	ErrTooLarge = errors.New("kv: transaction or value too large")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("kv: store closed")
)

// Unavailable wraps an engine error that is worth retrying later (lost
// quorum, timeout, connection refused). Protocols answer it with their retry
// status (NFS3ERR_JUKEBOX, NFS4ERR_DELAY, S3 503 SlowDown).
type Unavailable struct{ Err error }

func (e *Unavailable) Error() string { return "kv: backend unavailable: " + e.Err.Error() }
func (e *Unavailable) Unwrap() error { return e.Err }

// Pair is one key and its value.
type Pair struct {
	Key, Value []byte
}

// Reader reads committed state (or, inside Update, committed state plus the
// transaction's own writes).
type Reader interface {
	// Get returns the value of key, or ErrNotFound. The returned slice is the
	// caller's to keep.
	Get(ctx context.Context, key []byte) ([]byte, error)
	// Scan returns up to limit pairs with start <= key < end, in key order
	// (reverse order when reverse is true). limit <= 0 means no limit, which
	// only small ranges should use. The returned slices are the caller's.
	Scan(ctx context.Context, start, end []byte, limit int, reverse bool) ([]Pair, error)
}

// MultiGetter is a Reader that reads many keys in one call, for callers that
// would otherwise Get them one at a time (the attributes of a directory
// listing page). Engines implement it where it saves work: one iterator for
// Pebble, a few requests instead of one per key for etcd.
type MultiGetter interface {
	// GetMany returns the value of each key in keys: values[i] is the value
	// of keys[i], nil when the key is missing (a present empty value is a
	// non-nil empty slice). Keys may come in any order and may repeat; an
	// empty keys gives an empty result. Each returned slice is the
	// caller's to keep. An error means nothing was read reliably.
	GetMany(ctx context.Context, keys [][]byte) (values [][]byte, err error)
}

// GetMany reads keys through r with one batched read when r is a
// MultiGetter, else with one Get per key; the result is as
// MultiGetter.GetMany describes.
func GetMany(ctx context.Context, r Reader, keys [][]byte) ([][]byte, error) {
	if m, ok := r.(MultiGetter); ok {
		return m.GetMany(ctx, keys)
	}
	values := make([][]byte, len(keys))
	for i, k := range keys {
		v, err := r.Get(ctx, k)
		switch {
		case err == nil && v == nil:
			values[i] = []byte{}
		case err == nil:
			values[i] = v
		case !errors.Is(err, ErrNotFound):
			return nil, err
		}
	}
	return values, nil
}

// Txn is a read-write transaction. Put and Delete are buffered until commit;
// they copy their arguments. Only Get (and GetMany, where offered) takes
// part in conflict detection (see the package comment): a write alone never
// makes a transaction rerun.
type Txn interface {
	Reader
	Put(key, value []byte)
	Delete(key []byte)
}

// Store is a transactional ordered KV engine.
type Store interface {
	// View runs fn with a consistent read-only view.
	View(ctx context.Context, fn func(r Reader) error) error
	// Update runs fn in an optimistic transaction and commits it durably,
	// re-running fn when a key it read with Get was changed by another
	// commit before its own. An error from fn aborts the transaction and
	// is returned as is.
	Update(ctx context.Context, fn func(tx Txn) error) error
	// Close releases the engine.
	Close() error
}

// PrefixEnd returns the smallest key greater than every key with the given
// prefix, for use as a Scan end bound; nil if there is none.
func PrefixEnd(prefix []byte) []byte {
	end := append([]byte(nil), prefix...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// Backoff sleeps before attempt number attempt of a conflicting
// transaction: a random time in the upper half of base<<attempt, at most
// max, so that transactions colliding on a hot key spread out. It returns
// early with ctx's error.
func Backoff(ctx context.Context, attempt int, base, max time.Duration) error {
	d := min(base<<min(attempt, 10), max)
	d = d/2 + rand.N(d/2+1)
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
