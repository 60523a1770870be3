package attrcache

import (
	"cmp"
	"math"
	"slices"
	"sync"
)

// nilIdx marks the end of a list. Nodes and buckets live in slices and link
// to each other by index: no allocation per entry once the slices have grown,
// and nothing for the garbage collector to chase but the keys and values.
const nilIdx int32 = 0

// node is one entry. Whatever the policy, it records its last use, its
// insertion and its use count, so that a reconfiguration to another policy
// can order the entries as that policy would have.
type node[K comparable, V any] struct {
	key      K
	val      V
	storedAt int64  // clock at the last Put, for the TTL
	lastUse  uint64 // shard tick of the last Get hit or Put
	inserted uint64 // shard tick of the insertion
	freq     uint64 // uses: 1 at insertion, +1 per Get hit or Put
	prev     int32
	next     int32
	bucket   int32 // LFU: the frequency bucket holding the node
}

// list runs from the hottest entry (head) to the next victim (tail).
type list struct{ head, tail int32 }

// bucket groups the LFU entries of one use count, most recent first.
// Buckets form a list of increasing freq.
type bucket struct {
	freq  uint64
	prev  int32
	next  int32
	items list
}

// counts are kept under the shard lock rather than in atomics, so that a Get
// touches no cache line other than its shard's.
type counts struct {
	hits, misses, evictions, expirations, invalidations uint64
}

func (c *counts) add(o counts) {
	c.hits += o.hits
	c.misses += o.misses
	c.evictions += o.evictions
	c.expirations += o.expirations
	c.invalidations += o.invalidations
}

func (c counts) addTo(st *Stats) {
	st.Hits += c.hits
	st.Misses += c.misses
	st.Evictions += c.evictions
	st.Expirations += c.expirations
	st.Invalidations += c.invalidations
}

type shard[K comparable, V any] struct {
	mu sync.Mutex
	// retired is set once a reconfiguration has moved the entries to a new
	// table; whoever then takes the lock must retry on the new table.
	retired bool

	policy   Policy
	capacity int
	ttl      int64 // nanoseconds; 0 means no expiry

	index    map[K]int32
	nodes    []node[K, V] // nodes[0] is unused so that 0 can mean none
	freeNode int32        // free nodes, linked through next

	order list // LRU and FIFO

	buckets    []bucket // LFU; buckets[0] is unused
	freeBucket int32
	freqs      list // LFU buckets, lowest freq at head

	tick   uint64
	counts counts

	// Keep the next shard's lock off this shard's cache lines.
	_ [64]byte
}

func newShard[K comparable, V any](capacity int, policy Policy, ttl int64) *shard[K, V] {
	s := &shard[K, V]{policy: policy, capacity: capacity, ttl: ttl}
	s.init()
	return s
}

func (s *shard[K, V]) init() {
	prealloc := min(s.capacity, 1024) + 1
	s.index = make(map[K]int32, prealloc-1)
	s.nodes = make([]node[K, V], 1, prealloc)
	if s.policy == LFU {
		s.buckets = make([]bucket, 1, 8)
	}
}

// reset empties the shard, keeping its configuration and counts.
func (s *shard[K, V]) reset() {
	clear(s.index)
	clear(s.nodes) // drop references to keys and values
	s.nodes = s.nodes[:1]
	s.freeNode = nilIdx
	s.order = list{}
	if s.buckets != nil {
		s.buckets = s.buckets[:1]
	}
	s.freeBucket = nilIdx
	s.freqs = list{}
}

func (s *shard[K, V]) expired(n *node[K, V], now int64) bool {
	return s.ttl > 0 && now-n.storedAt >= s.ttl
}

func (s *shard[K, V]) get(k K, now int64) (V, bool) {
	i, ok := s.index[k]
	if !ok {
		s.counts.misses++
		var zero V
		return zero, false
	}
	if s.expired(&s.nodes[i], now) {
		s.remove(i)
		s.counts.expirations++
		s.counts.misses++
		var zero V
		return zero, false
	}
	s.touch(i)
	s.counts.hits++
	return s.nodes[i].val, true
}

// peek returns k's unexpired value without counting a lookup or touching
// the entry.
func (s *shard[K, V]) peek(k K, now int64) (V, bool) {
	i, ok := s.index[k]
	if !ok || s.expired(&s.nodes[i], now) {
		var zero V
		return zero, false
	}
	return s.nodes[i].val, true
}

func (s *shard[K, V]) put(k K, v V, now int64) {
	if i, ok := s.index[k]; ok {
		n := &s.nodes[i]
		if !s.expired(n, now) {
			n.val = v
			n.storedAt = now
			s.touch(i)
			return
		}
		// The old entry is logically gone: this is a new insertion, which
		// matters for FIFO.
		s.remove(i)
		s.counts.expirations++
	}
	if len(s.index) >= s.capacity {
		s.evict()
	}
	s.tick++
	i := s.alloc()
	s.nodes[i] = node[K, V]{key: k, val: v, storedAt: now, lastUse: s.tick, inserted: s.tick, freq: 1}
	s.index[k] = i
	s.link(i)
}

func (s *shard[K, V]) invalidate(k K) bool {
	i, ok := s.index[k]
	if !ok {
		return false
	}
	s.remove(i)
	s.counts.invalidations++
	return true
}

func (s *shard[K, V]) invalidateFunc(match func(K, V) bool) int {
	n := 0
	for k, i := range s.index {
		if match(k, s.nodes[i].val) {
			s.remove(i) // deleting the current key while ranging is allowed
			n++
		}
	}
	s.counts.invalidations += uint64(n)
	return n
}

func (s *shard[K, V]) removeExpired(now int64) int {
	n := 0
	for _, i := range s.index {
		if s.expired(&s.nodes[i], now) {
			s.remove(i)
			n++
		}
	}
	s.counts.expirations += uint64(n)
	return n
}

// touch records a use of node i and reorders it as the policy wants.
func (s *shard[K, V]) touch(i int32) {
	s.tick++
	n := &s.nodes[i]
	n.lastUse = s.tick
	if n.freq < math.MaxUint64 {
		n.freq++
	}
	switch s.policy {
	case LRU:
		if s.order.head != i {
			s.unlink(&s.order, i)
			s.pushFront(&s.order, i)
		}
	case LFU:
		s.lfuPromote(i)
	case FIFO:
		// Insertion order only.
	}
}

// link places a node that is in no list yet, according to its recorded
// history: at the hot end for LRU and FIFO, in the bucket of its freq for LFU.
func (s *shard[K, V]) link(i int32) {
	if s.policy == LFU {
		s.lfuInsert(i)
		return
	}
	s.pushFront(&s.order, i)
}

func (s *shard[K, V]) evict() {
	var victim int32
	if s.policy == LFU {
		victim = s.buckets[s.freqs.head].items.tail
	} else {
		victim = s.order.tail
	}
	if victim == nilIdx {
		return
	}
	s.remove(victim)
	s.counts.evictions++
}

func (s *shard[K, V]) remove(i int32) {
	n := &s.nodes[i]
	delete(s.index, n.key)
	if s.policy == LFU {
		b := n.bucket
		s.unlink(&s.buckets[b].items, i)
		if s.buckets[b].items.head == nilIdx {
			s.dropBucket(b)
		}
	} else {
		s.unlink(&s.order, i)
	}
	*n = node[K, V]{next: s.freeNode}
	s.freeNode = i
}

func (s *shard[K, V]) alloc() int32 {
	if i := s.freeNode; i != nilIdx {
		s.freeNode = s.nodes[i].next
		s.nodes[i].next = nilIdx
		return i
	}
	s.nodes = append(s.nodes, node[K, V]{})
	return int32(len(s.nodes) - 1)
}

func (s *shard[K, V]) pushFront(l *list, i int32) {
	n := &s.nodes[i]
	n.prev = nilIdx
	n.next = l.head
	if l.head != nilIdx {
		s.nodes[l.head].prev = i
	} else {
		l.tail = i
	}
	l.head = i
}

func (s *shard[K, V]) unlink(l *list, i int32) {
	n := &s.nodes[i]
	if n.prev != nilIdx {
		s.nodes[n.prev].next = n.next
	} else {
		l.head = n.next
	}
	if n.next != nilIdx {
		s.nodes[n.next].prev = n.prev
	} else {
		l.tail = n.prev
	}
	n.prev, n.next = nilIdx, nilIdx
}

// lfuPromote moves node i, whose freq touch has just raised by one, from its
// bucket to the bucket of the new freq, creating it next to the old one if
// needed.
func (s *shard[K, V]) lfuPromote(i int32) {
	n := &s.nodes[i]
	from := n.bucket
	if s.buckets[from].freq == n.freq { // freq saturated: only recency changes
		s.unlink(&s.buckets[from].items, i)
		s.pushFront(&s.buckets[from].items, i)
		return
	}
	to := s.buckets[from].next
	if to == nilIdx || s.buckets[to].freq != n.freq {
		to = s.newBucketAfter(from, n.freq)
	}
	s.unlink(&s.buckets[from].items, i)
	if s.buckets[from].items.head == nilIdx {
		s.dropBucket(from)
	}
	s.nodes[i].bucket = to
	s.pushFront(&s.buckets[to].items, i)
}

// lfuInsert puts node i into the bucket of its freq. A new entry has freq 1
// and lands at the low end; a migrated one comes in ascending freq and lands
// at the high end, so both searches stop at once.
func (s *shard[K, V]) lfuInsert(i int32) {
	freq := s.nodes[i].freq
	var b int32
	if head := s.freqs.head; head == nilIdx || s.buckets[head].freq >= freq {
		if head != nilIdx && s.buckets[head].freq == freq {
			b = head
		} else {
			b = s.newBucketAfter(nilIdx, freq)
		}
	} else {
		after := s.freqs.tail
		for s.buckets[after].freq > freq {
			after = s.buckets[after].prev
		}
		if s.buckets[after].freq == freq {
			b = after
		} else {
			b = s.newBucketAfter(after, freq)
		}
	}
	s.nodes[i].bucket = b
	s.pushFront(&s.buckets[b].items, i)
}

// newBucketAfter creates an empty bucket for freq after bucket after, or at
// the head when after is nilIdx.
func (s *shard[K, V]) newBucketAfter(after int32, freq uint64) int32 {
	var b int32
	if b = s.freeBucket; b != nilIdx {
		s.freeBucket = s.buckets[b].next
	} else {
		s.buckets = append(s.buckets, bucket{})
		b = int32(len(s.buckets) - 1)
	}
	nb := bucket{freq: freq, prev: after}
	if after == nilIdx {
		nb.next = s.freqs.head
		s.freqs.head = b
	} else {
		nb.next = s.buckets[after].next
		s.buckets[after].next = b
	}
	if nb.next != nilIdx {
		s.buckets[nb.next].prev = b
	} else {
		s.freqs.tail = b
	}
	s.buckets[b] = nb
	return b
}

func (s *shard[K, V]) dropBucket(b int32) {
	bk := s.buckets[b]
	if bk.prev != nilIdx {
		s.buckets[bk.prev].next = bk.next
	} else {
		s.freqs.head = bk.next
	}
	if bk.next != nilIdx {
		s.buckets[bk.next].prev = bk.prev
	} else {
		s.freqs.tail = bk.prev
	}
	s.buckets[b] = bucket{next: s.freeBucket}
	s.freeBucket = b
}

// liveNodes returns the nodes that have not expired by ttl (nanoseconds, 0
// for none). The pointers stay valid while the shard is locked and unchanged.
func (s *shard[K, V]) liveNodes(now, ttl int64) []*node[K, V] {
	out := make([]*node[K, V], 0, len(s.index))
	for _, i := range s.index {
		if n := &s.nodes[i]; ttl <= 0 || now-n.storedAt < ttl {
			out = append(out, n)
		}
	}
	return out
}

// adopt inserts a copy of a node from another shard with its history, as
// the hottest entry so far, evicting if the shard is full.
func (s *shard[K, V]) adopt(from *node[K, V]) {
	if len(s.index) >= s.capacity {
		s.evict()
	}
	i := s.alloc()
	n := &s.nodes[i]
	n.key, n.val = from.key, from.val
	n.storedAt, n.lastUse, n.inserted, n.freq = from.storedAt, from.lastUse, from.inserted, from.freq
	s.index[n.key] = i
	s.link(i)
}

// sortColdFirst orders the nodes of one shard from the first victim of
// policy to the last. Ticks are unique within a shard, so the order is total.
func sortColdFirst[K comparable, V any](nodes []*node[K, V], policy Policy) {
	switch policy {
	case LRU:
		slices.SortFunc(nodes, func(a, b *node[K, V]) int { return cmp.Compare(a.lastUse, b.lastUse) })
	case LFU:
		slices.SortFunc(nodes, func(a, b *node[K, V]) int {
			if c := cmp.Compare(a.freq, b.freq); c != 0 {
				return c
			}
			return cmp.Compare(a.lastUse, b.lastUse)
		})
	case FIFO:
		slices.SortFunc(nodes, func(a, b *node[K, V]) int { return cmp.Compare(a.inserted, b.inserted) })
	}
}

// interleaveByRank merges per-shard cold-first lists into one, ordered by
// each node's relative position within its own list: ticks of different
// shards do not compare, positions do.
func interleaveByRank[K comparable, V any](lists [][]*node[K, V]) []*node[K, V] {
	type ranked struct {
		pos, total int
		n          *node[K, V]
	}
	var all []ranked
	for _, l := range lists {
		for pos, n := range l {
			all = append(all, ranked{pos + 1, len(l), n})
		}
	}
	slices.SortStableFunc(all, func(a, b ranked) int {
		// a.pos/a.total against b.pos/b.total without division.
		return cmp.Compare(a.pos*b.total, b.pos*a.total)
	})
	out := make([]*node[K, V], len(all))
	for i, r := range all {
		out[i] = r.n
	}
	return out
}
