package core_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/claudefs/cfs-gateway/internal/core"
)

// The core's benchmarks run on the embedded engines with durable commits:
// every create is a synced metadata transaction; stable writes and commits
// fsync their blocks before the transaction that references them.

// BenchmarkCreate creates empty files from 16 concurrent callers, each in
// its own directory (b.SetParallelism gives 16 goroutines on 1 CPU, 8 per
// CPU on 2). Report: creates/s.
func BenchmarkCreate(b *testing.B) {
	benchCreate(b, false)
}

// BenchmarkCreateSameDir is BenchmarkCreate with every caller in one
// directory: the case the directory-times layout exists for.
func BenchmarkCreateSameDir(b *testing.B) {
	benchCreate(b, true)
}

func benchCreate(b *testing.B, sameDir bool) {
	fsys := openEmbedded(b, b.TempDir(), core.Options{})
	ctx := context.Background()
	shared, err := fsys.Mkdir(ctx, &core.Root, core.RootIno, "shared", 0o777)
	if err != nil {
		b.Fatal(err)
	}
	var worker atomic.Int64
	b.SetParallelism(16 / max(1, runtimeCPUs()))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		w := worker.Add(1)
		dir := shared.Ino
		if !sameDir {
			d, err := fsys.Mkdir(ctx, &core.Root, core.RootIno, fmt.Sprintf("w%d", w), 0o777)
			if err != nil {
				b.Error(err)
				return
			}
			dir = d.Ino
		}
		id := &core.Identity{UID: 1000, GID: 1000}
		for i := 0; pb.Next(); i++ {
			if _, _, err := fsys.Create(ctx, id, dir, fmt.Sprintf("f%d-%d", w, i), 0o644, core.CreateGuarded, 0); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "creates/s")
}

// BenchmarkGetAttrCached reads the attributes of a cached file from every
// CPU. Report: getattrs/s.
func BenchmarkGetAttrCached(b *testing.B) {
	fsys := openEmbedded(b, b.TempDir(), core.Options{})
	ctx := context.Background()
	var inos []core.Ino
	for i := 0; i < 1000; i++ {
		a, _, err := fsys.Create(ctx, &core.Root, core.RootIno, fmt.Sprintf("f%d", i), 0o644, core.CreateGuarded, 0)
		if err != nil {
			b.Fatal(err)
		}
		inos = append(inos, a.Ino)
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := fsys.GetAttr(ctx, inos[i%len(inos)]); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "getattrs/s")
}

const seqChunk = 1 << 20

// BenchmarkSeqWrite writes a file sequentially in 1 MiB unstable writes and
// commits it at the end, as NFS clients do; the time includes the final
// durable commit. Report: MB/s.
func BenchmarkSeqWrite(b *testing.B) {
	fsys := openEmbedded(b, b.TempDir(), core.Options{BlobParallelism: benchParallelism()})
	ctx := context.Background()
	f, _, err := fsys.Create(ctx, &core.Root, core.RootIno, "seq", 0o644, core.CreateGuarded, 0)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, seqChunk)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	b.SetBytes(seqChunk)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := fsys.Write(ctx, &core.Root, f.Ino, uint64(i)*seqChunk, buf, core.Unstable); err != nil {
			b.Fatal(err)
		}
	}
	if err := fsys.Commit(ctx, f.Ino); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkSeqWriteStable writes 1 MiB FILE_SYNC writes: each is durable
// before the next starts. Report: MB/s.
func BenchmarkSeqWriteStable(b *testing.B) {
	fsys := openEmbedded(b, b.TempDir(), core.Options{})
	ctx := context.Background()
	f, _, err := fsys.Create(ctx, &core.Root, core.RootIno, "seq", 0o644, core.CreateGuarded, 0)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, seqChunk)
	b.SetBytes(seqChunk)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := fsys.Write(ctx, &core.Root, f.Ino, uint64(i)*seqChunk, buf, core.FileSync); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSeqRead reads a 1 GiB file sequentially in 1 MiB reads, with the
// blocks in the page cache after the write. Report: MB/s.
func BenchmarkSeqRead(b *testing.B) {
	fsys := openEmbedded(b, b.TempDir(), core.Options{})
	ctx := context.Background()
	f, _, err := fsys.Create(ctx, &core.Root, core.RootIno, "seq", 0o644, core.CreateGuarded, 0)
	if err != nil {
		b.Fatal(err)
	}
	const size = 1 << 30
	buf := make([]byte, seqChunk)
	for off := uint64(0); off < size; off += seqChunk {
		if _, err := fsys.Write(ctx, &core.Root, f.Ino, off, buf, core.Unstable); err != nil {
			b.Fatal(err)
		}
	}
	if err := fsys.Commit(ctx, f.Ino); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(seqChunk)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		off := uint64(i) * seqChunk % size
		if n, _, err := fsys.Read(ctx, &core.Root, f.Ino, off, buf); err != nil || n != seqChunk {
			b.Fatalf("read at %d: %d bytes, %v", off, n, err)
		}
	}
}

func runtimeCPUs() int { return runtime.GOMAXPROCS(0) }

func benchParallelism() int {
	n, _ := strconv.Atoi(os.Getenv("CFS_BENCH_BLOB_PARALLELISM"))
	return n
}
