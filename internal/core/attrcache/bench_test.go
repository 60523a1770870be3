package attrcache

import (
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"testing"
)

// attrs is about the size of the inode attributes the core caches.
type attrs struct {
	ino, size, blocks     uint64
	mode, nlink, uid, gid uint32
	atime, mtime, ctime   int64
	gen                   uint64
}

// lookupKey is the shape of a name-lookup key: parent inode and name.
type lookupKey struct {
	parent uint64
	name   string
}

// promCounter stands for a prometheus counter: one shared atomic.
type promCounter struct{ n atomic.Uint64 }

func (c *promCounter) Inc() { c.n.Add(1) }

// benchEntries keys are used against a cache twice that size, so that the
// uneven spread of keys over shards evicts none of them.
const benchEntries = DefaultMaxEntries

func benchOptions(p Policy) Options {
	return Options{MaxEntries: 2 * benchEntries, Policy: p}
}

func BenchmarkGetParallel(b *testing.B) {
	for _, p := range []Policy{LRU, LFU, FIFO} {
		b.Run(p.String(), func(b *testing.B) {
			var hits, misses promCounter
			o := benchOptions(p)
			o.Hits, o.Misses = &hits, &misses
			c := mustNew[uint64, attrs](b, o)
			for i := range uint64(benchEntries) {
				c.Put(i, attrs{ino: i})
			}
			var seed atomic.Uint64
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				rng := rand.New(rand.NewPCG(seed.Add(1), 0))
				for pb.Next() {
					if _, ok := c.Get(rng.Uint64N(benchEntries)); !ok {
						b.Error("miss on a key that was put")
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "gets/s")
		})
	}
}

func BenchmarkGetParallelLookupKey(b *testing.B) {
	c := mustNew[lookupKey, uint64](b, benchOptions(LRU))
	names := make([]lookupKey, benchEntries)
	for i := range names {
		names[i] = lookupKey{parent: uint64(i % 97), name: "file-" + strconv.Itoa(i) + ".dat"}
		c.Put(names[i], uint64(i))
	}
	var seed atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		rng := rand.New(rand.NewPCG(seed.Add(1), 0))
		for pb.Next() {
			c.Get(names[rng.IntN(benchEntries)])
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "gets/s")
}

func BenchmarkPutParallel(b *testing.B) {
	for _, p := range []Policy{LRU, LFU, FIFO} {
		b.Run(p.String(), func(b *testing.B) {
			c := mustNew[uint64, attrs](b, benchOptions(p))
			var seed atomic.Uint64
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				rng := rand.New(rand.NewPCG(seed.Add(1), 0))
				for pb.Next() {
					k := rng.Uint64N(4 * benchEntries) // mostly evicting
					c.Put(k, attrs{ino: k})
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "puts/s")
		})
	}
}

func BenchmarkGetSerial(b *testing.B) {
	c := mustNew[uint64, attrs](b, benchOptions(LRU))
	for i := range uint64(benchEntries) {
		c.Put(i, attrs{ino: i})
	}
	rng := rand.New(rand.NewPCG(1, 0))
	b.ReportAllocs()
	for b.Loop() {
		c.Get(rng.Uint64N(benchEntries))
	}
}
