package attrcache

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)}
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeClock) Advance(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	f.mu.Unlock()
}

type countingCounter struct{ n atomic.Int64 }

func (c *countingCounter) Inc() { c.n.Add(1) }

func mustNew[K comparable, V any](t testing.TB, o Options) *Cache[K, V] {
	t.Helper()
	c, err := New[K, V](o)
	if err != nil {
		t.Fatalf("New(%+v): %v", o, err)
	}
	return c
}

// keys lists the keys present, without counting as a use.
func keys[K comparable, V any](c *Cache[K, V]) map[K]bool {
	out := map[K]bool{}
	c.forEachShard(func(s *shard[K, V]) {
		for k := range s.index {
			out[k] = true
		}
	})
	return out
}

// checkInvariants walks every structure of every shard and fails on any
// inconsistency between the index, the nodes and the lists.
func checkInvariants[K comparable, V any](t *testing.T, c *Cache[K, V]) {
	t.Helper()
	tb := c.table.Load()
	total := 0
	for si, s := range tb.shards {
		s.mu.Lock()
		seen := 0
		walk := func(l list) {
			prev := nilIdx
			for i := l.head; i != nilIdx; i = s.nodes[i].next {
				if s.nodes[i].prev != prev {
					t.Errorf("shard %d: node %d prev %d, want %d", si, i, s.nodes[i].prev, prev)
				}
				if j, ok := s.index[s.nodes[i].key]; !ok || j != i {
					t.Errorf("shard %d: node %d (key %v) not indexed as itself", si, i, s.nodes[i].key)
				}
				prev = i
				seen++
			}
			if l.tail != prev {
				t.Errorf("shard %d: tail %d, want %d", si, l.tail, prev)
			}
		}
		if s.policy == LFU {
			var lastFreq uint64
			for b := s.freqs.head; b != nilIdx; b = s.buckets[b].next {
				bk := s.buckets[b]
				if bk.freq <= lastFreq {
					t.Errorf("shard %d: bucket freqs not increasing: %d after %d", si, bk.freq, lastFreq)
				}
				if bk.items.head == nilIdx {
					t.Errorf("shard %d: empty bucket %d left in the list", si, bk.freq)
				}
				lastFreq = bk.freq
				for i := bk.items.head; i != nilIdx; i = s.nodes[i].next {
					if s.nodes[i].freq != bk.freq || s.nodes[i].bucket != b {
						t.Errorf("shard %d: node freq %d in bucket %d", si, s.nodes[i].freq, bk.freq)
					}
				}
				walk(bk.items)
			}
		} else {
			walk(s.order)
		}
		if seen != len(s.index) {
			t.Errorf("shard %d: %d nodes linked, %d indexed", si, seen, len(s.index))
		}
		if len(s.index) > s.capacity {
			t.Errorf("shard %d: %d entries over capacity %d", si, len(s.index), s.capacity)
		}
		total += s.capacity
		s.mu.Unlock()
	}
	if total != tb.cfg.maxEntries {
		t.Errorf("shard capacities sum to %d, want %d", total, tb.cfg.maxEntries)
	}
}

type op struct {
	put bool
	key string
}

func put(k string) op { return op{put: true, key: k} }
func get(k string) op { return op{key: k} }

func TestEvictionOrder(t *testing.T) {
	tests := []struct {
		name        string
		policy      Policy
		capacity    int
		ops         []op
		wantEvicted []string // in eviction order
		wantKept    []string
	}{
		{
			name: "lru evicts least recently put", policy: LRU, capacity: 3,
			ops:         []op{put("a"), put("b"), put("c"), put("d"), put("e")},
			wantEvicted: []string{"a", "b"}, wantKept: []string{"c", "d", "e"},
		},
		{
			name: "lru get refreshes recency", policy: LRU, capacity: 3,
			ops:         []op{put("a"), put("b"), put("c"), get("a"), put("d"), put("e")},
			wantEvicted: []string{"b", "c"}, wantKept: []string{"a", "d", "e"},
		},
		{
			name: "lru put of a present key refreshes recency", policy: LRU, capacity: 3,
			ops:         []op{put("a"), put("b"), put("c"), put("a"), put("d")},
			wantEvicted: []string{"b"}, wantKept: []string{"a", "c", "d"},
		},
		{
			name: "lru miss changes nothing", policy: LRU, capacity: 2,
			ops:         []op{put("a"), put("b"), get("x"), put("c")},
			wantEvicted: []string{"a"}, wantKept: []string{"b", "c"},
		},
		{
			name: "lfu evicts least used", policy: LFU, capacity: 3,
			ops:         []op{put("a"), put("b"), put("c"), get("a"), get("a"), get("b"), put("d"), put("e")},
			wantEvicted: []string{"c", "d"}, wantKept: []string{"a", "b", "e"},
		},
		{
			name: "lfu ties go to the least recent", policy: LFU, capacity: 3,
			ops:         []op{put("a"), put("b"), put("c"), put("d")},
			wantEvicted: []string{"a"}, wantKept: []string{"b", "c", "d"},
		},
		{
			name: "lfu ties at a higher count go to the least recent", policy: LFU, capacity: 3,
			ops: []op{put("a"), put("b"), put("c"), get("b"), get("a"), get("c"),
				put("d"), put("e"), put("f"), put("g")},
			// The first victim is b, the least recent at count 2; after
			// that each newcomer, alone at count 1, is the next one.
			wantEvicted: []string{"b", "d", "e", "f"}, wantKept: []string{"a", "c", "g"},
		},
		{
			name: "lfu put of a present key counts as a use", policy: LFU, capacity: 2,
			ops:         []op{put("a"), put("b"), put("a"), put("c")},
			wantEvicted: []string{"b"}, wantKept: []string{"a", "c"},
		},
		{
			name: "fifo evicts first inserted whatever the reads", policy: FIFO, capacity: 3,
			ops:         []op{put("a"), put("b"), put("c"), get("a"), get("a"), put("d"), put("e")},
			wantEvicted: []string{"a", "b"}, wantKept: []string{"c", "d", "e"},
		},
		{
			name: "fifo put of a present key keeps its place", policy: FIFO, capacity: 3,
			ops:         []op{put("a"), put("b"), put("c"), put("a"), put("d")},
			wantEvicted: []string{"a"}, wantKept: []string{"b", "c", "d"},
		},
		{
			name: "fifo reinsertion after eviction goes to the back", policy: FIFO, capacity: 2,
			ops:         []op{put("a"), put("b"), put("c"), put("a"), put("d")},
			wantEvicted: []string{"a", "b", "c"}, wantKept: []string{"a", "d"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustNew[string, string](t, Options{MaxEntries: tt.capacity, Policy: tt.policy, TTL: NoExpiry})
			var evicted []string
			for i, o := range tt.ops {
				before := keys(c)
				if o.put {
					c.Put(o.key, fmt.Sprintf("%s@%d", o.key, i))
				} else {
					c.Get(o.key)
				}
				after := keys(c)
				for k := range before {
					if !after[k] {
						evicted = append(evicted, k)
					}
				}
				checkInvariants(t, c)
			}
			if !slices.Equal(evicted, tt.wantEvicted) {
				t.Errorf("evicted %v, want %v", evicted, tt.wantEvicted)
			}
			var kept []string
			for k := range keys(c) {
				kept = append(kept, k)
			}
			slices.Sort(kept)
			if !slices.Equal(kept, tt.wantKept) {
				t.Errorf("kept %v, want %v", kept, tt.wantKept)
			}
			if st := c.Stats(); st.Evictions != uint64(len(tt.wantEvicted)) {
				t.Errorf("Stats().Evictions = %d, want %d", st.Evictions, len(tt.wantEvicted))
			}
		})
	}
}

func TestPutReplacesValue(t *testing.T) {
	for _, p := range []Policy{LRU, LFU, FIFO} {
		t.Run(p.String(), func(t *testing.T) {
			c := mustNew[int, string](t, Options{MaxEntries: 4, Policy: p})
			c.Put(1, "old")
			c.Put(1, "new")
			if v, ok := c.Get(1); !ok || v != "new" {
				t.Errorf("Get(1) = %q, %v; want new, true", v, ok)
			}
			if n := c.Len(); n != 1 {
				t.Errorf("Len() = %d, want 1", n)
			}
		})
	}
}

func TestPutIf(t *testing.T) {
	newer := func(v int) func(int) bool { return func(cur int) bool { return cur < v } }
	tests := []struct {
		name    string
		present bool // an entry of value 5 is cached first
		expired bool // ... and has expired
		put     int
		want    int
	}{
		{"absent", false, false, 3, 3},
		{"newer replaces", true, false, 7, 7},
		{"older stays out", true, false, 3, 5},
		{"equal stays out", true, false, 5, 5},
		{"expired entry is replaced", true, true, 3, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			c := mustNew[string, int](t, Options{MaxEntries: 4, TTL: 10 * time.Second, Now: clock.Now})
			if tt.present {
				c.Put("k", 5)
			}
			if tt.expired {
				clock.Advance(10 * time.Second)
			}
			c.PutIf("k", tt.put, newer(tt.put))
			if v, ok := c.Get("k"); !ok || v != tt.want {
				t.Fatalf("Get = %d, %v; want %d, true", v, ok, tt.want)
			}
		})
	}
}

// model is a deliberately naive reference: it scans every entry for the
// victim, which makes it obviously right and slow.
type model struct {
	policy   Policy
	capacity int
	tick     uint64
	entries  map[int]*modelEntry
}

type modelEntry struct {
	val                     int
	lastUse, inserted, freq uint64
}

func (m *model) get(k int) (int, bool) {
	e, ok := m.entries[k]
	if !ok {
		return 0, false
	}
	m.tick++
	e.lastUse = m.tick
	e.freq++
	return e.val, true
}

func (m *model) put(k, v int) {
	m.tick++
	if e, ok := m.entries[k]; ok {
		e.val, e.lastUse = v, m.tick
		e.freq++
		return
	}
	if len(m.entries) >= m.capacity {
		victim, best := 0, (*modelEntry)(nil)
		for vk, e := range m.entries {
			if best == nil || m.colder(e, best) {
				victim, best = vk, e
			}
		}
		delete(m.entries, victim)
	}
	m.entries[k] = &modelEntry{val: v, lastUse: m.tick, inserted: m.tick, freq: 1}
}

func (m *model) colder(a, b *modelEntry) bool {
	switch m.policy {
	case LFU:
		return a.freq < b.freq || a.freq == b.freq && a.lastUse < b.lastUse
	case FIFO:
		return a.inserted < b.inserted
	}
	return a.lastUse < b.lastUse
}

func TestAgainstModel(t *testing.T) {
	for _, p := range []Policy{LRU, LFU, FIFO} {
		for _, capacity := range []int{1, 2, 7, 50} {
			t.Run(fmt.Sprintf("%s/%d", p, capacity), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(uint64(capacity), uint64(p)))
				c := mustNew[int, int](t, Options{MaxEntries: capacity, Policy: p, TTL: NoExpiry})
				m := &model{policy: p, capacity: capacity, entries: map[int]*modelEntry{}}
				keySpace := capacity*2 + 3
				for i := range 5000 {
					k := rng.IntN(keySpace)
					switch rng.IntN(10) {
					case 0:
						c.Invalidate(k)
						delete(m.entries, k)
					case 1, 2, 3, 4:
						c.Put(k, i)
						m.put(k, i)
					default:
						v, ok := c.Get(k)
						mv, mok := m.get(k)
						if ok != mok || v != mv {
							t.Fatalf("op %d: Get(%d) = %d, %v; model says %d, %v", i, k, v, ok, mv, mok)
						}
					}
					if got := keys(c); len(got) != len(m.entries) {
						t.Fatalf("op %d: %d entries, model has %d", i, len(got), len(m.entries))
					}
				}
				checkInvariants(t, c)
			})
		}
	}
}

func TestTTL(t *testing.T) {
	clock := newFakeClock()
	c := mustNew[string, int](t, Options{MaxEntries: 10, TTL: 10 * time.Second, Now: clock.Now})

	c.Put("a", 1)
	clock.Advance(9 * time.Second)
	if _, ok := c.Get("a"); !ok {
		t.Fatal("entry gone before its TTL")
	}
	c.Put("b", 2)
	clock.Advance(time.Second)
	if _, ok := c.Get("a"); ok {
		t.Fatal("entry served at its TTL")
	}
	if c.Len() != 1 {
		t.Errorf("expired entry not removed on Get: Len() = %d, want 1", c.Len())
	}
	if _, ok := c.Get("b"); !ok {
		t.Error("younger entry expired with the older one")
	}

	// Put refreshes the TTL of a present entry.
	clock.Advance(8 * time.Second)
	c.Put("b", 3)
	clock.Advance(5 * time.Second)
	if v, ok := c.Get("b"); !ok || v != 3 {
		t.Errorf("Get(b) after refresh = %d, %v; want 3, true", v, ok)
	}

	// Put on an expired entry makes a new one.
	clock.Advance(10 * time.Second)
	c.Put("b", 4)
	if v, ok := c.Get("b"); !ok || v != 4 {
		t.Errorf("Get(b) after re-put = %d, %v; want 4, true", v, ok)
	}

	c.Put("c", 5)
	clock.Advance(11 * time.Second)
	if n := c.RemoveExpired(); n != 2 {
		t.Errorf("RemoveExpired() = %d, want 2", n)
	}
	if c.Len() != 0 {
		t.Errorf("Len() = %d after RemoveExpired, want 0", c.Len())
	}
	st := c.Stats()
	if st.Expirations != 4 {
		t.Errorf("Stats().Expirations = %d, want 4", st.Expirations)
	}
}

func TestNoExpiry(t *testing.T) {
	clock := newFakeClock()
	c := mustNew[int, int](t, Options{MaxEntries: 10, TTL: NoExpiry, Now: clock.Now})
	c.Put(1, 1)
	clock.Advance(1000 * time.Hour)
	if _, ok := c.Get(1); !ok {
		t.Error("entry expired although TTL is NoExpiry")
	}
	if n := c.RemoveExpired(); n != 0 {
		t.Errorf("RemoveExpired() = %d, want 0", n)
	}
}

func TestExpiredEntryFreesRoomBeforeEviction(t *testing.T) {
	clock := newFakeClock()
	c := mustNew[string, int](t, Options{MaxEntries: 2, TTL: 10 * time.Second, Policy: FIFO, Now: clock.Now})
	c.Put("a", 1)
	clock.Advance(5 * time.Second)
	c.Put("b", 2)
	clock.Advance(6 * time.Second) // a expired, b not
	c.Put("a", 3)                  // re-inserted: now the newest
	c.Put("c", 4)                  // evicts b, the oldest insertion
	if got := keys(c); !got["a"] || !got["c"] || got["b"] {
		t.Errorf("keys %v, want a and c", got)
	}
}

func TestInvalidate(t *testing.T) {
	for _, p := range []Policy{LRU, LFU, FIFO} {
		t.Run(p.String(), func(t *testing.T) {
			c := mustNew[int, string](t, Options{MaxEntries: 100, Policy: p, Shards: 4})
			for i := range 10 {
				c.Put(i, fmt.Sprint(i))
			}
			if !c.Invalidate(3) {
				t.Error("Invalidate(3) = false for a present key")
			}
			if c.Invalidate(3) {
				t.Error("Invalidate(3) = true for an absent key")
			}
			if _, ok := c.Get(3); ok {
				t.Error("invalidated key still served")
			}
			n := c.InvalidateFunc(func(k int, _ string) bool { return k%2 == 0 })
			if n != 5 {
				t.Errorf("InvalidateFunc removed %d, want 5", n)
			}
			want := map[int]bool{1: true, 5: true, 7: true, 9: true}
			if got := keys(c); len(got) != len(want) {
				t.Errorf("keys %v, want %v", got, want)
			} else {
				for k := range want {
					if !got[k] {
						t.Errorf("key %d lost", k)
					}
				}
			}
			if st := c.Stats(); st.Invalidations != 6 {
				t.Errorf("Stats().Invalidations = %d, want 6", st.Invalidations)
			}
			checkInvariants(t, c)

			c.Purge()
			if c.Len() != 0 {
				t.Errorf("Len() after Purge = %d", c.Len())
			}
			c.Put(42, "x")
			if v, ok := c.Get(42); !ok || v != "x" {
				t.Error("cache unusable after Purge")
			}
			checkInvariants(t, c)
		})
	}
}

func TestReconfigure(t *testing.T) {
	type step struct {
		put bool
		key int
	}
	// Keys 0..5 are put in order; then 0 is read three times, 4 twice and 2
	// once. Recency, coldest first: 1 3 5 2 4 0. Uses, coldest first: 1 3 5
	// (once each, by recency), 2 (twice), 4 (three times), 0 (four).
	// Insertion: 0 1 2 3 4 5.
	history := []step{
		{true, 0}, {true, 1}, {true, 2}, {true, 3}, {true, 4}, {true, 5},
		{false, 0}, {false, 4}, {false, 0}, {false, 2}, {false, 4}, {false, 0},
	}
	tests := []struct {
		name     string
		from, to Policy
		size     int
		want     []int
	}{
		{"lru shrink keeps most recent", LRU, LRU, 3, []int{0, 2, 4}},
		{"lfu shrink keeps most used", LFU, LFU, 2, []int{0, 4}},
		{"fifo shrink keeps last inserted", FIFO, FIFO, 2, []int{4, 5}},
		{"lru to lfu uses tracked counts", LRU, LFU, 3, []int{0, 2, 4}},
		{"fifo to lru uses tracked recency", FIFO, LRU, 2, []int{0, 4}},
		{"lfu to fifo uses tracked insertion", LFU, FIFO, 3, []int{3, 4, 5}},
		{"grow keeps all", LRU, FIFO, 20, []int{0, 1, 2, 3, 4, 5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustNew[int, int](t, Options{MaxEntries: 6, Policy: tt.from})
			for _, s := range history {
				if s.put {
					c.Put(s.key, s.key*10)
				} else {
					c.Get(s.key)
				}
			}
			if err := c.Reconfigure(Options{MaxEntries: tt.size, Policy: tt.to}); err != nil {
				t.Fatal(err)
			}
			checkInvariants(t, c)
			var got []int
			for k := range keys(c) {
				got = append(got, k)
			}
			slices.Sort(got)
			if !slices.Equal(got, tt.want) {
				t.Errorf("kept %v, want %v", got, tt.want)
			}
			st := c.Stats()
			if st.Policy != tt.to || st.MaxEntries != tt.size {
				t.Errorf("Stats() policy %v size %d, want %v %d", st.Policy, st.MaxEntries, tt.to, tt.size)
			}
			if st.Hits != 6 || st.Evictions != uint64(6-len(tt.want)) {
				t.Errorf("Stats() hits %d evictions %d, want 6 and %d", st.Hits, st.Evictions, 6-len(tt.want))
			}
			for _, k := range tt.want {
				if v, ok := c.Get(k); !ok || v != k*10 {
					t.Errorf("Get(%d) = %d, %v after Reconfigure", k, v, ok)
				}
			}
		})
	}
}

func TestReconfigureKeepsOrderAfterwards(t *testing.T) {
	c := mustNew[string, int](t, Options{MaxEntries: 4, Policy: LRU})
	for _, k := range []string{"a", "b", "c", "d"} {
		c.Put(k, 0)
	}
	c.Get("a")
	if err := c.Reconfigure(Options{MaxEntries: 3, Policy: LRU}); err != nil { // drops b
		t.Fatal(err)
	}
	c.Put("e", 0) // drops c
	c.Put("f", 0) // drops d
	var got []string
	for k := range keys(c) {
		got = append(got, k)
	}
	slices.Sort(got)
	if want := []string{"a", "e", "f"}; !slices.Equal(got, want) {
		t.Errorf("kept %v, want %v", got, want)
	}
}

func TestReconfigureTTL(t *testing.T) {
	clock := newFakeClock()
	c := mustNew[int, int](t, Options{MaxEntries: 10, TTL: time.Minute, Now: clock.Now})
	c.Put(1, 1)
	clock.Advance(20 * time.Second)
	c.Put(2, 2)
	clock.Advance(5 * time.Second)
	if err := c.Reconfigure(Options{MaxEntries: 10, TTL: 10 * time.Second}); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Get(1); ok {
		t.Error("entry older than the new TTL still served")
	}
	if _, ok := c.Get(2); !ok {
		t.Error("entry younger than the new TTL dropped")
	}
	if st := c.Stats(); st.Expirations != 1 || st.TTL != 10*time.Second {
		t.Errorf("Stats() expirations %d TTL %v, want 1 and 10s", st.Expirations, st.TTL)
	}
}

func TestReconfigureReshards(t *testing.T) {
	c := mustNew[int, int](t, Options{MaxEntries: 100, Shards: 1})
	for i := range 100 {
		c.Put(i, i)
	}
	for _, shards := range []int{8, 2, 1, 16} {
		if err := c.Reconfigure(Options{MaxEntries: 100, Shards: shards}); err != nil {
			t.Fatal(err)
		}
		checkInvariants(t, c)
		if st := c.Stats(); st.Shards != shards {
			t.Errorf("Stats().Shards = %d, want %d", st.Shards, shards)
		}
	}
	// Shard capacities are uneven by at most one, and keys do not spread
	// perfectly, so some evictions are expected; no key may be wrong.
	for k := range keys(c) {
		if v, ok := c.Get(k); !ok || v != k {
			t.Errorf("Get(%d) = %d, %v", k, v, ok)
		}
	}
	if c.Len() == 0 {
		t.Error("every entry lost in resharding")
	}
	if err := c.Reconfigure(Options{MaxEntries: 10, Shards: 1}); err != nil {
		t.Fatal(err)
	}
	if c.Len() != 10 {
		t.Errorf("Len() = %d after shrinking to 10", c.Len())
	}
}

func TestCountersExact(t *testing.T) {
	clock := newFakeClock()
	var hits, misses countingCounter
	c := mustNew[int, int](t, Options{MaxEntries: 2, TTL: time.Second, Now: clock.Now, Hits: &hits, Misses: &misses})
	c.Get(1)    // miss: absent
	c.Put(1, 1) //
	c.Get(1)    // hit
	c.Get(1)    // hit
	c.Put(2, 2) //
	c.Put(3, 3) // evicts 1
	c.Get(1)    // miss: evicted
	c.Get(3)    // hit
	clock.Advance(time.Second)
	c.Get(3) // miss: expired
	c.Get(2) // miss: expired
	c.Invalidate(2)
	c.Get(2) // miss: gone
	if hits.n.Load() != 3 || misses.n.Load() != 5 {
		t.Errorf("counters hits %d misses %d, want 3 and 5", hits.n.Load(), misses.n.Load())
	}
	st := c.Stats()
	if st.Hits != 3 || st.Misses != 5 || st.Evictions != 1 || st.Expirations != 2 || st.Invalidations != 0 {
		t.Errorf("Stats() = %+v", st)
	}
	if r := st.HitRatio(); r != 3.0/8 {
		t.Errorf("HitRatio() = %v, want %v", r, 3.0/8)
	}
}

func TestOptions(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		wantErr bool
		want    config
	}{
		{name: "zero value takes the guide's defaults", opts: Options{},
			want: config{maxEntries: DefaultMaxEntries, ttl: DefaultTTL, policy: LRU, shards: autoShards(DefaultMaxEntries)}},
		{name: "small caches have one shard", opts: Options{MaxEntries: 2*MinEntriesPerShard - 1, Policy: LFU},
			want: config{maxEntries: 2*MinEntriesPerShard - 1, ttl: DefaultTTL, policy: LFU, shards: 1}},
		{name: "shards round up to a power of two", opts: Options{MaxEntries: 100, Shards: 3, TTL: time.Second},
			want: config{maxEntries: 100, ttl: time.Second, shards: 4}},
		{name: "shards never outnumber entries", opts: Options{MaxEntries: 3, Shards: 64, TTL: -5},
			want: config{maxEntries: 3, ttl: NoExpiry, shards: 2}},
		{name: "negative size", opts: Options{MaxEntries: -1}, wantErr: true},
		{name: "huge size", opts: Options{MaxEntries: maxEntriesLimit + 1}, wantErr: true},
		{name: "unknown policy", opts: Options{Policy: 9}, wantErr: true},
		{name: "negative shards", opts: Options{Shards: -2}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.opts.config()
			if (err != nil) != tt.wantErr {
				t.Fatalf("config() error = %v, wantErr %v", err, tt.wantErr)
			}
			if err == nil && got != tt.want {
				t.Errorf("config() = %+v, want %+v", got, tt.want)
			}
			if _, err := New[int, int](tt.opts); (err != nil) != tt.wantErr {
				t.Errorf("New() error = %v, wantErr %v", err, tt.wantErr)
			}
		})
	}
}

func TestParsePolicy(t *testing.T) {
	tests := []struct {
		in      string
		want    Policy
		wantErr bool
	}{
		{"lru", LRU, false}, {"LFU", LFU, false}, {" fifo ", FIFO, false},
		{"", 0, true}, {"arc", 0, true},
	}
	for _, tt := range tests {
		got, err := ParsePolicy(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParsePolicy(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
		if err == nil && got.String() != trimLower(tt.in) {
			t.Errorf("%v.String() = %q, want %q", got, got.String(), trimLower(tt.in))
		}
	}
}

func trimLower(s string) string {
	out := []rune{}
	for _, r := range s {
		if r == ' ' {
			continue
		}
		if r >= 'A' && r <= 'Z' {
			r += 'a' - 'A'
		}
		out = append(out, r)
	}
	return string(out)
}

func TestConcurrentUse(t *testing.T) {
	for _, p := range []Policy{LRU, LFU, FIFO} {
		t.Run(p.String(), func(t *testing.T) {
			var hits, misses countingCounter
			c := mustNew[int, int](t, Options{MaxEntries: 1024, Policy: p, Hits: &hits, Misses: &misses})
			const workers, opsPerWorker = 8, 5000
			var gets atomic.Int64
			var wg sync.WaitGroup
			for w := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					rng := rand.New(rand.NewPCG(uint64(w), 1))
					for range opsPerWorker {
						k := rng.IntN(4096)
						switch rng.IntN(20) {
						case 0:
							c.Invalidate(k)
						case 1:
							c.InvalidateFunc(func(key, _ int) bool { return key == k })
						case 2, 3, 4, 5, 6:
							c.Put(k, k*3)
						default:
							gets.Add(1)
							if v, ok := c.Get(k); ok && v != k*3 {
								t.Errorf("Get(%d) = %d, want %d", k, v, k*3)
							}
						}
					}
				}()
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 20 {
					sizes := []int{1024, 300, 4096}
					pols := []Policy{LRU, LFU, FIFO}
					if err := c.Reconfigure(Options{MaxEntries: sizes[i%3], Policy: pols[i%3]}); err != nil {
						t.Error(err)
					}
					c.Stats()
					c.Len()
				}
			}()
			wg.Wait()
			checkInvariants(t, c)
			st := c.Stats()
			if got := int64(st.Hits + st.Misses); got != gets.Load() {
				t.Errorf("Stats() hits+misses = %d, want %d Gets", got, gets.Load())
			}
			if hits.n.Load() != int64(st.Hits) || misses.n.Load() != int64(st.Misses) {
				t.Errorf("counters %d/%d disagree with Stats() %d/%d", hits.n.Load(), misses.n.Load(), st.Hits, st.Misses)
			}
			if st.Entries > st.MaxEntries {
				t.Errorf("%d entries over MaxEntries %d", st.Entries, st.MaxEntries)
			}
		})
	}
}

func TestGetDoesNotAllocate(t *testing.T) {
	c := mustNew[uint64, int](t, Options{MaxEntries: 10000})
	for i := range uint64(10000) {
		c.Put(i, 1)
	}
	if n := testing.AllocsPerRun(1000, func() { c.Get(42) }); n != 0 {
		t.Errorf("Get allocates %v times per call", n)
	}
}
