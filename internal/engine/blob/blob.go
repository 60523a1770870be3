// Package blob defines the store of immutable data blocks under the data
// layer. Engines (a local directory, an S3 object store) live in
// sub-packages. A blob store knows nothing of files: it stores byte strings
// under keys and never modifies one in place.
//
// Contract:
//   - Put is atomic and durable: when it returns nil the whole value is on
//     stable storage under key, and a reader sees either no object or all of it.
//   - Objects are never overwritten with different content; the data layer
//     names every block uniquely.
//   - Engines use only GET, PUT and DELETE semantics of an object store; the
//     optional Lister is for garbage collection where the engine can list.
package blob

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned for a missing object.
var ErrNotFound = errors.New("blob: object not found")

// Unavailable wraps an engine error that is worth retrying later (the
// object store unreachable, timing out or shedding load, or its circuit
// breaker open). Protocols answer it with their retry status.
type Unavailable struct{ Err error }

func (e *Unavailable) Error() string { return "blob: backend unavailable: " + e.Err.Error() }
func (e *Unavailable) Unwrap() error { return e.Err }

// Store holds immutable objects.
type Store interface {
	// Put stores data under key durably. It must not retain data after it
	// returns: callers reuse the buffer.
	Put(ctx context.Context, key string, data []byte) error
	// Get returns the whole object.
	Get(ctx context.Context, key string) ([]byte, error)
	// GetRange reads len(p) bytes at off into p and returns how many were
	// read; fewer than len(p) only at the end of the object.
	GetRange(ctx context.Context, key string, off int64, p []byte) (int, error)
	// Delete removes key; deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// Close releases the engine.
	Close() error
}

// Object describes one stored object, as a Lister reports it.
type Object struct {
	Key     string
	Size    int64
	ModTime time.Time
}

// Lister is implemented by engines that can enumerate their objects, which
// garbage collection uses to find blocks orphaned by a crash.
type Lister interface {
	// List calls fn for every object whose key starts with prefix, in no
	// particular order, until fn returns false.
	List(ctx context.Context, prefix string, fn func(Object) bool) error
}

// PartsPutter is implemented by engines that can store an object given in
// parts (a header and the data it describes) without the caller joining
// them into one buffer first. PutParts has Put's contract for the
// concatenation of parts.
type PartsPutter interface {
	PutParts(ctx context.Context, key string, parts ...[]byte) error
}
