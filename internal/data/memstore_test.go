package data

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/claudefs/cfs-gateway/internal/engine/blob"
)

// memStore is a blob.Store in memory for unit tests, with counters and
// hooks to inject faults.
type memStore struct {
	mu      sync.Mutex
	objs    map[string][]byte
	putErr  error // returned by every Put when set
	puts    atomic.Int64
	ranges  atomic.Int64
	active  atomic.Int64 // requests in flight
	maxSeen atomic.Int64 // most requests ever in flight at once
}

var _ blob.Store = (*memStore)(nil)

func newMemStore() *memStore { return &memStore{objs: make(map[string][]byte)} }

func (m *memStore) enter() func() {
	n := m.active.Add(1)
	for {
		seen := m.maxSeen.Load()
		if n <= seen || m.maxSeen.CompareAndSwap(seen, n) {
			break
		}
	}
	return func() { m.active.Add(-1) }
}

func (m *memStore) Put(ctx context.Context, key string, data []byte) error {
	defer m.enter()()
	m.puts.Add(1)
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.putErr != nil {
		return m.putErr
	}
	m.objs[key] = slices.Clone(data)
	return nil
}

func (m *memStore) Get(ctx context.Context, key string) ([]byte, error) {
	defer m.enter()()
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.objs[key]
	if !ok {
		return nil, blob.ErrNotFound
	}
	return slices.Clone(v), nil
}

func (m *memStore) GetRange(ctx context.Context, key string, off int64, p []byte) (int, error) {
	defer m.enter()()
	m.ranges.Add(1)
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.objs[key]
	if !ok {
		return 0, blob.ErrNotFound
	}
	if off < 0 {
		return 0, errors.New("memstore: negative offset")
	}
	if off >= int64(len(v)) {
		return 0, nil
	}
	return copy(p, v[off:]), nil
}

func (m *memStore) Delete(ctx context.Context, key string) error {
	defer m.enter()()
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.objs, key)
	return nil
}

func (m *memStore) Close() error { return nil }

// keys lists the stored keys with prefix, sorted.
func (m *memStore) keys(prefix string) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, k := range slices.Sorted(maps.Keys(m.objs)) {
		if strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	return out
}

// mutate replaces the object under key by fn(object).
func (m *memStore) mutate(key string, fn func([]byte) []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.objs[key]
	if !ok {
		panic("memstore: mutate of missing key " + key)
	}
	m.objs[key] = fn(slices.Clone(v))
}
