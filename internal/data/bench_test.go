package data

import (
	"context"
	"testing"

	"github.com/claudefs/cfs-gateway/internal/engine/blob"
	"github.com/claudefs/cfs-gateway/internal/engine/blob/localblob"
)

// benchStore opens the named engine: "mem" (the test store, measuring
// this package's own cost) or "local" (the real local engine in a
// temporary directory: durable Puts, reads from the page cache).
func benchStore(b *testing.B, name string) blob.Store {
	if name == "mem" {
		return newMemStore()
	}
	s, err := localblob.Open(b.TempDir(), localblob.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// BenchmarkWriteSlice writes a stream of 1 MiB slices (each one block).
func BenchmarkWriteSlice(b *testing.B) {
	data := randomBytes(1, 1<<20)
	for _, name := range []string{"mem", "local"} {
		b.Run(name, func(b *testing.B) {
			store := benchStore(b, name)
			blocks := NewBlocks(store, BlocksOptions{})
			ctx := context.Background()
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			id := uint64(1)
			for b.Loop() {
				if err := blocks.WriteSlice(ctx, id, data); err != nil {
					b.Fatal(err)
				}
				id++
				if id%64 == 0 { // bound the memory and disk used
					for d := id - 64; d < id; d++ {
						_ = blocks.DeleteSlice(ctx, d, uint32(len(data)))
					}
				}
			}
		})
	}
}

// BenchmarkWriteSliceChunk writes whole 64 MiB slices (16 blocks, 4 in
// flight at once).
func BenchmarkWriteSliceChunk(b *testing.B) {
	data := randomBytes(2, ChunkSize)
	for _, name := range []string{"mem", "local"} {
		b.Run(name, func(b *testing.B) {
			blocks := NewBlocks(benchStore(b, name), BlocksOptions{})
			ctx := context.Background()
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			id := uint64(1)
			for b.Loop() {
				if err := blocks.WriteSlice(ctx, id, data); err != nil {
					b.Fatal(err)
				}
				_ = blocks.DeleteSlice(ctx, id, ChunkSize)
				id++
			}
		})
	}
}

// BenchmarkReadChunk reads a 64 MiB chunk (one slice) sequentially in
// 1 MiB pieces; "unaligned" shifts every read by 100 bytes so that reads
// go through the scratch path.
func BenchmarkReadChunk(b *testing.B) {
	data := randomBytes(3, ChunkSize)
	refs := []Slice{whole(1, ChunkSize, 0)}
	for _, name := range []string{"mem", "local"} {
		for _, shift := range []uint32{0, 100} {
			label := name + "/aligned"
			if shift != 0 {
				label = name + "/unaligned"
			}
			b.Run(label, func(b *testing.B) {
				store := benchStore(b, name)
				blocks := NewBlocks(store, BlocksOptions{})
				ctx := context.Background()
				if err := blocks.WriteSlice(ctx, 1, data); err != nil {
					b.Fatal(err)
				}
				p := make([]byte, 1<<20)
				b.SetBytes(int64(len(p)))
				b.ReportAllocs()
				pos := uint32(0)
				for b.Loop() {
					if err := blocks.ReadChunk(ctx, refs, pos+shift, p, nil); err != nil {
						b.Fatal(err)
					}
					pos += 1 << 20
					if pos+shift+1<<20 > ChunkSize {
						pos = 0
					}
				}
			})
		}
	}
}

// BenchmarkReadChunkSmall reads 4 KiB pieces at random-ish offsets, the
// NFS small-read case (each verifies one 64 KiB segment).
func BenchmarkReadChunkSmall(b *testing.B) {
	data := randomBytes(4, 16<<20)
	refs := []Slice{whole(1, uint32(len(data)), 0)}
	blocks := NewBlocks(newMemStore(), BlocksOptions{})
	ctx := context.Background()
	if err := blocks.WriteSlice(ctx, 1, data); err != nil {
		b.Fatal(err)
	}
	p := make([]byte, 4096)
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	pos := uint32(0)
	for b.Loop() {
		if err := blocks.ReadChunk(ctx, refs, pos, p, nil); err != nil {
			b.Fatal(err)
		}
		pos = (pos + 7*4096 + 512) % (uint32(len(data)) - 4096)
	}
}

func BenchmarkResolveFragmented(b *testing.B) {
	var refs []Slice
	for i := 0; i < 64; i++ {
		refs = append(refs, whole(uint64(i+1), 1<<20, uint32(i*37%64)<<20))
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = Resolve(refs, 0, ChunkSize)
	}
}

func BenchmarkFileBufferSequential(b *testing.B) {
	p := make([]byte, 64<<10)
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	var f FileBuffer
	off := uint64(0)
	for b.Loop() {
		f.Write(off, p)
		off += uint64(len(p))
		if f.Len() >= 64<<20 {
			f.Take(BlockSize)
		}
	}
}
