package blobtest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"

	"github.com/claudefs/cfs-gateway/internal/engine/blob"
)

// BlockSize is the data layer's largest block, the unit the benchmarks move.
const BlockSize = 4 << 20

// Bench runs the shared blob benchmarks as sub-benchmarks, each on a new
// store from open. The suite closes the stores it gets.
func Bench(b *testing.B, open func(b *testing.B) blob.Store) {
	for _, writers := range []int{1, 4} {
		b.Run(fmt.Sprintf("Put4MiB/writers=%d", writers), func(b *testing.B) {
			s := open(b)
			b.Cleanup(func() { _ = s.Close() })
			BenchPut(b, s, writers)
		})
	}
	for _, size := range []int{BlockSize, 64 << 10} {
		b.Run(fmt.Sprintf("GetRange/size=%dKiB", size>>10), func(b *testing.B) {
			s := open(b)
			b.Cleanup(func() { _ = s.Close() })
			BenchGetRange(b, s, size)
		})
	}
}

// blockKey spreads blocks over 256 directories as the data layer does.
func blockKey(i int64) string {
	return fmt.Sprintf("bench/%02x/%012d", i%256, i)
}

// BenchPut measures durable Puts of 4 MiB blocks under new keys from the
// given number of goroutines. It reports throughput through SetBytes.
func BenchPut(b *testing.B, s blob.Store, writers int) {
	data := content(1, BlockSize)
	ctx := context.Background()
	var next atomic.Int64
	b.SetBytes(BlockSize)
	b.ResetTimer()
	done := make(chan struct{})
	for w := 0; w < writers; w++ {
		go func() {
			defer func() { done <- struct{}{} }()
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				if err := s.Put(ctx, blockKey(i), data); err != nil {
					b.Errorf("Put: %v", err)
					return
				}
			}
		}()
	}
	for w := 0; w < writers; w++ {
		<-done
	}
}

// BenchGetRange measures reads of size bytes at random size-aligned offsets
// in 16 stored 4 MiB blocks, from GOMAXPROCS goroutines. The
// blocks are recently written, so this measures the read path from the page
// cache rather than the disk.
func BenchGetRange(b *testing.B, s blob.Store, size int) {
	const blocks = 16
	data := content(2, BlockSize)
	ctx := context.Background()
	for i := int64(0); i < blocks; i++ {
		if err := s.Put(ctx, blockKey(i), data); err != nil {
			b.Fatalf("Put: %v", err)
		}
	}
	b.SetBytes(int64(size))
	b.ResetTimer()
	var seed atomic.Uint64
	b.RunParallel(func(pb *testing.PB) {
		r := rand.New(rand.NewPCG(seed.Add(1), 9))
		p := make([]byte, size)
		for pb.Next() {
			off := int64(r.IntN(BlockSize/size)) * int64(size)
			n, err := s.GetRange(ctx, blockKey(int64(r.IntN(blocks))), off, p)
			if err != nil || n != size {
				b.Errorf("GetRange = %d, %v; want %d bytes", n, err, size)
				return
			}
		}
	})
}
