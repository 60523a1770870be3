package kvtest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/claudefs/cfs-gateway/internal/engine/kv"
)

// Bench runs the shared engine benchmarks as sub-benchmarks, each on a new
// store from open. The suite closes the stores it gets.
func Bench(b *testing.B, open func(b *testing.B) kv.Store) {
	for _, committers := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("UpdateSmall/committers=%d", committers), func(b *testing.B) {
			s := open(b)
			b.Cleanup(func() { _ = s.Close() })
			BenchUpdateSmall(b, s, committers)
		})
	}
	for _, committers := range []int{16, 64} {
		b.Run(fmt.Sprintf("UpdateSharedKey/committers=%d", committers), func(b *testing.B) {
			s := open(b)
			b.Cleanup(func() { _ = s.Close() })
			BenchUpdateSharedKey(b, s, committers)
		})
	}
	b.Run("GetCached", func(b *testing.B) {
		s := open(b)
		b.Cleanup(func() { _ = s.Close() })
		BenchGetCached(b, s)
	})
	b.Run("Scan100", func(b *testing.B) {
		s := open(b)
		b.Cleanup(func() { _ = s.Close() })
		BenchScan(b, s, 100)
	})
	for _, n := range []int{100, 1000} {
		for _, batched := range []bool{false, true} {
			name := fmt.Sprintf("Get%d", n)
			if batched {
				name = fmt.Sprintf("GetMany%d", n)
			}
			b.Run(name, func(b *testing.B) {
				s := open(b)
				b.Cleanup(func() { _ = s.Close() })
				BenchGets(b, s, n, batched)
			})
		}
	}
}

// Shape of the small transaction, close to one metadata operation (read a
// directory and an entry; write inode, entry, directory and a counter).
const (
	benchKeysPerCommitter = 1024
	benchValueSize        = 100
	benchReads            = 2
	benchWrites           = 4
)

// benchKey is "bench/CCC/IIIII", built without fmt so that the benchmark
// measures the engine rather than formatting.
func benchKey(committer, i int) []byte {
	k := make([]byte, 0, 16)
	k = append(k, "bench/"...)
	k = appendPadded(k, committer, 3)
	k = append(k, '/')
	return appendPadded(k, i, 5)
}

func appendPadded(b []byte, n, width int) []byte {
	for d := width - 1; d >= 0; d-- {
		p := 1
		for j := 0; j < d; j++ {
			p *= 10
		}
		b = append(b, byte('0'+n/p%10))
	}
	return b
}

// preload writes every key the benchmark reads so that Gets find values.
func preload(b *testing.B, s kv.Store, committers int) {
	b.Helper()
	val := make([]byte, benchValueSize)
	ctx := context.Background()
	for c := 0; c < committers; c++ {
		for base := 0; base < benchKeysPerCommitter; base += kv.MaxTxnOps {
			err := s.Update(ctx, func(tx kv.Txn) error {
				for i := base; i < base+kv.MaxTxnOps && i < benchKeysPerCommitter; i++ {
					tx.Put(benchKey(c, i), val)
				}
				return nil
			})
			if err != nil {
				b.Fatalf("preloading: %v", err)
			}
		}
	}
}

// BenchUpdateSmall measures durable Update transactions that read 2 keys
// and write 4 values of 100 bytes, issued by exactly committers goroutines
// (not GOMAXPROCS multiples, so that figures compare across machines).
// Each committer works on its own keys, so conflicts are rare and the figure
// is the commit path's throughput. It reports txn/s.
func BenchUpdateSmall(b *testing.B, s kv.Store, committers int) {
	benchUpdate(b, s, committers, false)
}

// BenchUpdateSharedKey is BenchUpdateSmall with one of the 4 writes going,
// blind, to a key every committer writes: the shape of creates in one
// directory, which all write its times. Blind writes do not conflict, so
// the figure should match BenchUpdateSmall's. It reports txn/s and
// runs/txn, the runs of fn per committed transaction.
func BenchUpdateSharedKey(b *testing.B, s kv.Store, committers int) {
	benchUpdate(b, s, committers, true)
}

func benchUpdate(b *testing.B, s kv.Store, committers int, shared bool) {
	preload(b, s, committers)
	sharedKey := []byte("bench/shared")
	var runs atomic.Int64
	ctx := context.Background()
	var next atomic.Int64
	var conflicts atomic.Int64
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for c := 0; c < committers; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(c), 1))
			val := make([]byte, benchValueSize)
			var keys [benchWrites]int
			for next.Add(1) <= int64(b.N) {
				for i := range keys {
					keys[i] = rng.IntN(benchKeysPerCommitter)
				}
				err := s.Update(ctx, func(tx kv.Txn) error {
					runs.Add(1)
					for i := 0; i < benchReads; i++ {
						if _, err := tx.Get(ctx, benchKey(c, keys[i])); err != nil {
							return err
						}
					}
					for i := 0; i < benchWrites; i++ {
						val[0] = byte(i)
						if shared && i == benchWrites-1 {
							tx.Put(sharedKey, val)
						} else {
							tx.Put(benchKey(c, keys[i]), val)
						}
					}
					return nil
				})
				if errors.Is(err, kv.ErrConflict) {
					conflicts.Add(1)
					continue
				}
				if err != nil {
					b.Errorf("Update: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "txn/s")
	if shared {
		b.ReportMetric(float64(runs.Load())/float64(b.N), "runs/txn")
	}
	if n := conflicts.Load(); n > 0 {
		b.Logf("%d transactions exhausted their conflict retries", n)
	}
}

// BenchGetCached measures a View with one Get of a recently written key,
// from GOMAXPROCS goroutines.
func BenchGetCached(b *testing.B, s kv.Store) {
	preload(b, s, 1)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	var seed atomic.Uint64
	b.RunParallel(func(pb *testing.PB) {
		rng := rand.New(rand.NewPCG(seed.Add(1), 2))
		for pb.Next() {
			key := benchKey(0, rng.IntN(benchKeysPerCommitter))
			err := s.View(ctx, func(r kv.Reader) error {
				_, err := r.Get(ctx, key)
				return err
			})
			if err != nil {
				b.Errorf("View Get: %v", err)
				return
			}
		}
	})
}

// BenchScan measures a View that scans n consecutive keys, as a directory
// listing page does.
func BenchScan(b *testing.B, s kv.Store, n int) {
	preload(b, s, 1)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	var seed atomic.Uint64
	b.RunParallel(func(pb *testing.PB) {
		rng := rand.New(rand.NewPCG(seed.Add(1), 3))
		for pb.Next() {
			start := benchKey(0, rng.IntN(benchKeysPerCommitter-n))
			err := s.View(ctx, func(r kv.Reader) error {
				ps, err := r.Scan(ctx, start, nil, n, false)
				if err == nil && len(ps) != n {
					err = fmt.Errorf("Scan returned %d pairs, want %d", len(ps), n)
				}
				return err
			})
			if err != nil {
				b.Errorf("View Scan: %v", err)
				return
			}
		}
	})
}

// BenchGets measures a View that reads n keys spread over the preloaded
// ones, a tenth of them missing, as a directory listing page reads the
// records of its entries: with one Get per key, or with one kv.GetMany
// when batched. It reports keys/s.
func BenchGets(b *testing.B, s kv.Store, n int, batched bool) {
	preload(b, s, 1)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(4, 4))
	keys := make([][]byte, n)
	for i := range keys {
		if i%10 == 9 {
			keys[i] = benchKey(999, i) // never written
		} else {
			keys[i] = benchKey(0, rng.IntN(benchKeysPerCommitter))
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		err := s.View(ctx, func(r kv.Reader) error {
			if batched {
				_, err := kv.GetMany(ctx, r, keys)
				return err
			}
			for _, k := range keys {
				if _, err := r.Get(ctx, k); err != nil && !errors.Is(err, kv.ErrNotFound) {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatalf("View reading %d keys: %v", n, err)
		}
	}
	b.ReportMetric(float64(b.N*n)/time.Since(start).Seconds(), "keys/s")
}
