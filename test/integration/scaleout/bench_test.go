package scaleout

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/claudefs/cfs-gateway/internal/core"
)

// runWorkers runs op from exactly workers goroutines until b.N operations
// are done, and reports their rate under unit.
func runWorkers(b *testing.B, workers int, unit string, setup func(w int) func(i int) error) {
	ops := make([]func(int) error, workers)
	for w := range ops {
		ops[w] = setup(w)
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				if err := ops[w](int(i)); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), unit)
}

// BenchmarkCreates measures file creates through the core on etcd and S3,
// all in one directory (they share the directory's times key) or one
// directory per worker. Report: creates/s.
func BenchmarkCreates(b *testing.B) {
	e := newEnv(b)
	for _, shared := range []bool{false, true} {
		for _, workers := range []int{1, 16, 64} {
			dirs := "own"
			if shared {
				dirs = "shared"
			}
			b.Run(fmt.Sprintf("dir=%s/workers=%d", dirs, workers), func(b *testing.B) {
				g := e.open(b, gatewayOptions{})
				ctx := context.Background()
				common, err := g.fs.Mkdir(ctx, &core.Root, core.RootIno, "shared", 0o777)
				if err != nil {
					b.Fatal(err)
				}
				runWorkers(b, workers, "creates/s", func(w int) func(int) error {
					dir := common.Ino
					if !shared {
						d, err := g.fs.Mkdir(ctx, &core.Root, core.RootIno, fmt.Sprintf("w%d", w), 0o777)
						if err != nil {
							b.Fatal(err)
						}
						dir = d.Ino
					}
					return func(i int) error {
						_, _, err := g.fs.Create(ctx, &core.Root, dir, fmt.Sprintf("f%d", i), 0o644, core.CreateGuarded, 0)
						return err
					}
				})
				st := g.store.Stats()
				b.ReportMetric(float64(st.Reruns)/float64(b.N), "reruns/op")
			})
		}
	}
}

// BenchmarkWrite4K measures stable (FILE_SYNC) 4 KiB writes through the
// core on etcd and S3: each is one PUT of a block and one metadata
// transaction. Every worker appends to a file of its own. Report: writes/s.
func BenchmarkWrite4K(b *testing.B) {
	e := newEnv(b)
	for _, workers := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			g := e.open(b, gatewayOptions{})
			ctx := context.Background()
			block := make([]byte, 4096)
			b.SetBytes(int64(len(block)))
			runWorkers(b, workers, "writes/s", func(w int) func(int) error {
				f, _, err := g.fs.Create(ctx, &core.Root, core.RootIno, fmt.Sprintf("w%d", w), 0o644, core.CreateGuarded, 0)
				if err != nil {
					b.Fatal(err)
				}
				var off uint64
				return func(int) error {
					_, err := g.fs.Write(ctx, &core.Root, f.Ino, off, block, core.FileSync)
					off += uint64(len(block))
					return err
				}
			})
			b.ReportMetric(float64(g.store.Stats().Commits)/float64(b.N), "txns/op")
		})
	}
}
