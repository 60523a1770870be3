package core_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/claudefs/cfs-gateway/internal/core"
	"github.com/claudefs/cfs-gateway/internal/core/coretest"
	"github.com/claudefs/cfs-gateway/internal/engine/blob/localblob"
	"github.com/claudefs/cfs-gateway/internal/engine/kv"
	"github.com/claudefs/cfs-gateway/internal/engine/kv/pebblekv"
	"github.com/claudefs/cfs-gateway/internal/meta"
)

// openEmbedded opens a filesystem on the embedded engines in dir.
func openEmbedded(t testing.TB, dir string, opts core.Options) *core.FS {
	t.Helper()
	store, blobs, fsys := openEmbeddedNoCleanup(t, dir, opts)
	t.Cleanup(func() {
		if err := fsys.Close(context.Background()); err != nil {
			t.Error(err)
		}
		store.Close()
		blobs.Close()
	})
	return fsys
}

func TestSemanticsEmbedded(t *testing.T) {
	coretest.Run(t, func(t *testing.T, opts core.Options) *core.FS {
		return openEmbedded(t, t.TempDir(), opts)
	})
}

// openEmbeddedNoCleanup opens a filesystem whose closing is the caller's.
func openEmbeddedNoCleanup(t testing.TB, dir string, opts core.Options) (*pebblekv.Store, *localblob.Store, *core.FS) {
	t.Helper()
	store, err := pebblekv.Open(filepath.Join(dir, "meta"), pebblekv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// The benchmarks compare both ways of writing blocks (bench/core.sh).
	buffered := os.Getenv("CFS_BENCH_BUFFERED_WRITES") != ""
	blobs, err := localblob.Open(filepath.Join(dir, "blocks"), localblob.Options{BufferedWrites: buffered})
	if err != nil {
		t.Fatal(err)
	}
	opts.Store, opts.Blobs = store, blobs
	fsys, err := core.New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return store, blobs, fsys
}

// blockFiles lists the files of the block store of the filesystem in dir.
func blockFiles(dir string) []string {
	var files []string
	filepath.WalkDir(filepath.Join(dir, "blocks"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	return files
}

// TestCorruptBlock alters a stored block on disk: the read fails with EIO,
// never returns wrong bytes, and fsck names the file.
func TestCorruptBlock(t *testing.T) {
	dir := t.TempDir()
	fsys := openEmbedded(t, dir, core.Options{})
	ctx := context.Background()
	f, _, err := fsys.Create(ctx, &core.Root, core.RootIno, "victim", 0o644, core.CreateGuarded, 0)
	if err != nil {
		t.Fatal(err)
	}
	content := []byte(strings.Repeat("precious data ", 10000))
	if _, err := fsys.Write(ctx, &core.Root, f.Ino, 0, content, core.FileSync); err != nil {
		t.Fatal(err)
	}
	blocks := blockFiles(dir)
	if len(blocks) != 1 {
		t.Fatalf("expected one block file, found %v", blocks)
	}
	b, err := os.ReadFile(blocks[0])
	if err != nil {
		t.Fatal(err)
	}
	b[len(content)/2] ^= 0x20
	if err := os.WriteFile(blocks[0], b, 0o644); err != nil {
		t.Fatal(err)
	}
	p := make([]byte, len(content))
	n, _, err := fsys.Read(ctx, &core.Root, f.Ino, 0, p)
	if !errors.Is(err, syscall.EIO) {
		t.Fatalf("read of a corrupt block: n=%d err=%v, want EIO", n, err)
	}
	// A read of an intact segment of the same block still works.
	n, _, err = fsys.Read(ctx, &core.Root, f.Ino, 0, p[:4096])
	if err != nil || string(p[:n]) != string(content[:4096]) {
		t.Fatalf("read of an intact range: n=%d err=%v", n, err)
	}
	rep, err := fsys.Fsck(ctx, core.FsckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) != 1 || rep.Problems[0].Kind != "corrupt block" || rep.Problems[0].Path != "/victim" {
		t.Fatalf("fsck problems %v, want one corrupt block in /victim", rep.Problems)
	}
}

// faultyBlobs fails the block puts whose sequence numbers are in fail.
type faultyBlobs struct {
	*localblob.Store
	mu   sync.Mutex
	puts int
	fail map[int]bool
}

func (b *faultyBlobs) PutParts(ctx context.Context, key string, parts ...[]byte) error {
	b.mu.Lock()
	n := b.puts
	b.puts++
	fail := b.fail[n]
	b.mu.Unlock()
	if fail {
		// Late, so that later batches are stored meanwhile.
		time.Sleep(30 * time.Millisecond)
		return fmt.Errorf("injected failure of put %d: %w", n, syscall.EIO)
	}
	return b.Store.PutParts(ctx, key, parts...)
}

func (b *faultyBlobs) Put(ctx context.Context, key string, data []byte) error {
	return b.PutParts(ctx, key, data)
}

// TestFlushFailureKeepsWriteOrder fails the block puts of some background
// flushes while later ones succeed: until the data is committed, reads see
// the newest bytes, and once a commit succeeds the file holds exactly what
// was written last at every offset, after a restart too.
func TestFlushFailureKeepsWriteOrder(t *testing.T) {
	for _, fail := range []map[int]bool{
		{0: true},                   // the first batch fails, later ones must not land before it
		{1: true, 2: true},          // a later batch fails
		{0: true, 1: true, 3: true}, // several, interleaved
	} {
		t.Run(fmt.Sprint(len(fail), "failures"), func(t *testing.T) {
			dir := t.TempDir()
			store, err := pebblekv.Open(filepath.Join(dir, "meta"), pebblekv.Options{})
			if err != nil {
				t.Fatal(err)
			}
			local, err := localblob.Open(filepath.Join(dir, "blocks"), localblob.Options{})
			if err != nil {
				t.Fatal(err)
			}
			blobs := &faultyBlobs{Store: local, fail: fail}
			// flushAhead is a third of the buffer: 1 MiB batches, a few in flight.
			opts := core.Options{Store: store, Blobs: blobs, FileBufferBytes: 3 << 20, BlobParallelism: 2}
			ctx := context.Background()
			fsys, err := core.New(ctx, opts)
			if err != nil {
				t.Fatal(err)
			}
			f, _, err := fsys.Create(ctx, &core.Root, core.RootIno, "f", 0o644, core.CreateGuarded, 0)
			if err != nil {
				t.Fatal(err)
			}
			const size = 2 << 20
			want := make([]byte, size)
			write := func(off int, n int, seed byte) {
				p := make([]byte, n)
				for i := range p {
					p[i] = seed + byte(i%251)
				}
				copy(want[off:], p)
				// A failed background flush may surface here; the data is
				// buffered all the same.
				_, _ = fsys.Write(ctx, &core.Root, f.Ino, uint64(off), p, core.Unstable)
			}
			// Each write is a batch of its own. The first MiB is written
			// twice and left alone after, so that its final bytes are those
			// of a batch stored while an older one failed; then the second
			// MiB, over and over.
			for round := 0; round < 6; round++ {
				off := min(round, 2) >> 1 << 20
				write(off, 1<<20, byte(round*10))
			}
			write(1<<20+100<<10, 300<<10, 99)
			check := func(fsys *core.FS) {
				t.Helper()
				got := make([]byte, size)
				if n, _, err := fsys.Read(ctx, &core.Root, f.Ino, 0, got); err != nil || n != size {
					t.Fatalf("read: %d bytes, %v", n, err)
				}
				if i := firstDiff(got, want); i >= 0 {
					t.Fatalf("byte %d is %d, want %d", i, got[i], want[i])
				}
			}
			check(fsys)
			var commitErr error
			for try := 0; try < 5; try++ {
				if commitErr = fsys.Commit(ctx, f.Ino); commitErr == nil {
					break
				}
			}
			if commitErr != nil {
				t.Fatalf("commit after the faults: %v", commitErr)
			}
			check(fsys)
			if err := fsys.Close(ctx); err != nil {
				t.Fatal(err)
			}
			fsys, err = core.New(ctx, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				fsys.Close(ctx)
				store.Close()
				local.Close()
			}()
			check(fsys)
			blobs.mu.Lock()
			puts := blobs.puts
			blobs.mu.Unlock()
			if puts <= len(fail) {
				t.Fatalf("only %d block puts: the faults were not reached", puts)
			}
		})
	}
}

func firstDiff(a, b []byte) int {
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}

// TestInlineSlices checks small writes kept in the metadata store: no block
// is written, the data reads back, their data goes with the file, and a
// missing piece is EIO on read and a corrupt block for fsck.
func TestInlineSlices(t *testing.T) {
	dir := t.TempDir()
	store, blobs, fsys := openEmbeddedNoCleanup(t, dir, core.Options{BlockDeleteDelay: core.DeleteAtOnce, NoBackground: true})
	defer func() {
		fsys.Close(context.Background())
		store.Close()
		blobs.Close()
	}()
	ctx := context.Background()
	inlineKeys := func() [][]byte {
		var keys [][]byte
		err := store.View(ctx, func(r kv.Reader) error {
			pairs, err := r.Scan(ctx, meta.InlinePrefix(), kv.PrefixEnd(meta.InlinePrefix()), 0, false)
			for _, p := range pairs {
				keys = append(keys, p.Key)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return keys
	}
	f, _, err := fsys.Create(ctx, &core.Root, core.RootIno, "small", 0o644, core.CreateGuarded, 0)
	if err != nil {
		t.Fatal(err)
	}
	content := []byte(strings.Repeat("small file ", 900)) // 9,900 bytes
	if _, err := fsys.Write(ctx, &core.Root, f.Ino, 0, content, core.FileSync); err != nil {
		t.Fatal(err)
	}
	// A second small write over the middle: a second inline slice.
	if _, err := fsys.Write(ctx, &core.Root, f.Ino, 100, []byte("OVERWRITTEN"), core.FileSync); err != nil {
		t.Fatal(err)
	}
	copy(content[100:], "OVERWRITTEN")
	if n := len(inlineKeys()); n != 2 {
		t.Fatalf("%d inline data records, want 2", n)
	}
	if files := blockFiles(dir); len(files) != 0 {
		t.Fatalf("small writes stored blocks: %v", files)
	}
	p := make([]byte, len(content)+10)
	n, eof, err := fsys.Read(ctx, &core.Root, f.Ino, 0, p)
	if err != nil || !eof || string(p[:n]) != string(content) {
		t.Fatalf("read back: n=%d eof=%v err=%v, same=%v", n, eof, err, string(p[:n]) == string(content))
	}
	if rep, err := fsys.Fsck(ctx, core.FsckOptions{}); err != nil || len(rep.Problems) != 0 {
		t.Fatalf("fsck of a clean filesystem: %v %v", rep.Problems, err)
	}

	// Losing one piece: the read fails, fsck names the file.
	victim := inlineKeys()[0]
	if err := store.Update(ctx, func(tx kv.Txn) error { tx.Delete(victim); return nil }); err != nil {
		t.Fatal(err)
	}
	if _, _, err := fsys.Read(ctx, &core.Root, f.Ino, 0, p); !errors.Is(err, syscall.EIO) {
		t.Fatalf("read with inline data missing: %v, want EIO", err)
	}
	rep, err := fsys.Fsck(ctx, core.FsckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) != 1 || rep.Problems[0].Kind != "corrupt block" || rep.Problems[0].Path != "/small" {
		t.Fatalf("fsck problems %v, want one corrupt block in /small", rep.Problems)
	}

	// Removing the file deletes its inline data once due.
	if err := fsys.Remove(ctx, &core.Root, core.RootIno, "small"); err != nil {
		t.Fatal(err)
	}
	if _, err := fsys.PurgeOrphans(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := fsys.ProcessReleases(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := fsys.DeleteDue(ctx, time.Now().Add(time.Hour), nil); err != nil {
		t.Fatal(err)
	}
	if keys := inlineKeys(); len(keys) != 0 {
		t.Fatalf("inline data left after the file was removed: %q", keys)
	}
}
