package data

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/claudefs/cfs-gateway/internal/engine/blob"
)

// fileStore is a minimal directory-backed blob.Store for benchmarks: one
// file per key, written to a temporary name and renamed, read with pread.
// It stands in for a local engine (page-cache reads); with sync set, Put
// fsyncs like a durable engine would.
type fileStore struct {
	dir  string
	sync bool
}

func (s *fileStore) path(key string) string { return filepath.Join(s.dir, filepath.FromSlash(key)) }

func (s *fileStore) Put(_ context.Context, key string, data []byte) error {
	p := s.path(key)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(p), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if s.sync {
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), p)
}

func (s *fileStore) Get(_ context.Context, key string) ([]byte, error) {
	b, err := os.ReadFile(s.path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, blob.ErrNotFound
	}
	return b, err
}

func (s *fileStore) GetRange(_ context.Context, key string, off int64, p []byte) (int, error) {
	f, err := os.Open(s.path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, blob.ErrNotFound
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	n, err := f.ReadAt(p, off)
	if err == io.EOF {
		err = nil
	}
	return n, err
}

func (s *fileStore) Delete(_ context.Context, key string) error {
	err := os.Remove(s.path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

func (s *fileStore) Close() error { return nil }

func benchStores(b *testing.B) map[string]func() blob.Store {
	return map[string]func() blob.Store{
		"mem":  func() blob.Store { return newMemStore() },
		"file": func() blob.Store { return &fileStore{dir: b.TempDir()} },
	}
}

// BenchmarkWriteSlice writes a stream of 1 MiB slices (each one block).
func BenchmarkWriteSlice(b *testing.B) {
	data := randomBytes(1, 1<<20)
	for _, name := range []string{"mem", "file"} {
		b.Run(name, func(b *testing.B) {
			store := benchStores(b)[name]()
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

// BenchmarkWriteSliceChunk writes whole 64 MiB slices (16 blocks in
// parallel).
func BenchmarkWriteSliceChunk(b *testing.B) {
	data := randomBytes(2, ChunkSize)
	store := newMemStore()
	blocks := NewBlocks(store, BlocksOptions{})
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
}

// BenchmarkReadChunk reads a 64 MiB chunk (one slice) sequentially in
// 1 MiB pieces; "unaligned" shifts every read by 100 bytes so that reads
// go through the scratch path.
func BenchmarkReadChunk(b *testing.B) {
	data := randomBytes(3, ChunkSize)
	refs := []Slice{whole(1, ChunkSize, 0)}
	for _, name := range []string{"mem", "file"} {
		for _, shift := range []uint32{0, 100} {
			label := name + "/aligned"
			if shift != 0 {
				label = name + "/unaligned"
			}
			b.Run(label, func(b *testing.B) {
				store := benchStores(b)[name]()
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
					if err := blocks.ReadChunk(ctx, refs, pos+shift, p); err != nil {
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
		if err := blocks.ReadChunk(ctx, refs, pos, p); err != nil {
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
