package core

import (
	"bytes"
	"context"
	"math/rand"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/claudefs/cfs-gateway/internal/data"
	"github.com/claudefs/cfs-gateway/internal/engine/blob/localblob"
	"github.com/claudefs/cfs-gateway/internal/engine/kv"
	"github.com/claudefs/cfs-gateway/internal/engine/kv/pebblekv"
)

func openInternal(t *testing.T, opts Options) *FS {
	t.Helper()
	dir := t.TempDir()
	store, err := pebblekv.Open(filepath.Join(dir, "meta"), pebblekv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	blobs, err := localblob.Open(filepath.Join(dir, "blocks"), localblob.Options{})
	if err != nil {
		t.Fatal(err)
	}
	opts.Store, opts.Blobs = store, blobs
	fs, err := New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		fs.Close(context.Background())
		store.Close()
		blobs.Close()
	})
	return fs
}

func chunkSlices(t *testing.T, fs *FS, ino Ino, idx uint32) []data.Slice {
	t.Helper()
	var slices []data.Slice
	err := fs.store.View(context.Background(), func(r kv.Reader) error {
		var err error
		slices, err = getChunk(context.Background(), r, ino, idx)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return slices
}

// TestCompactionUnderReads fragments a chunk with many small stable writes,
// lets the compactor rewrite it while readers check every byte, and checks
// that the old slices' blocks are released only after the delay.
func TestCompactionUnderReads(t *testing.T) {
	fs := openInternal(t, Options{})
	ctx := context.Background()
	f, _, err := fs.Create(ctx, &Root, RootIno, "frag", 0o644, CreateGuarded, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, 1<<20)
	rng := rand.New(rand.NewSource(1))
	rng.Read(want)
	if _, err := fs.Write(ctx, &Root, f.Ino, 0, want, FileSync); err != nil {
		t.Fatal(err)
	}
	var mu sync.RWMutex
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for r := 0; r < 2; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := make([]byte, len(want))
			for {
				select {
				case <-stop:
					return
				default:
				}
				mu.RLock()
				n, _, err := fs.Read(ctx, &Root, f.Ino, 0, p)
				ok := err == nil && n == len(want) && bytes.Equal(p, want)
				mu.RUnlock()
				if !ok {
					errs <- err
					return
				}
			}
		}()
	}
	for i := 0; i < 40; i++ {
		off := rng.Intn(len(want) - 4096)
		patch := make([]byte, 1+rng.Intn(4096))
		rng.Read(patch)
		mu.Lock()
		_, err := fs.Write(ctx, &Root, f.Ino, uint64(off), patch, FileSync)
		copy(want[off:], patch)
		mu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
	}
	// 41 slices were written; compaction keeps the map short.
	deadline := time.Now().Add(10 * time.Second)
	for data.NeedsCompaction(chunkSlices(t, fs, f.Ino, 0)) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatalf("a read during compaction returned wrong bytes or failed: %v", err)
	default:
	}
	if n := len(chunkSlices(t, fs, f.Ino, 0)); n > data.MaxSlicesBeforeCompaction {
		t.Fatalf("chunk has %d slices of 41 written: not compacted", n)
	}
	// The replaced slices wait out the delete delay: nothing is due yet.
	if _, err := fs.ProcessReleases(ctx, nil); err != nil {
		t.Fatal(err)
	}
	deleted, err := fs.DeleteDue(ctx, fs.now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if deleted != 0 {
		t.Fatalf("%d slices deleted before their delay", deleted)
	}
	p := make([]byte, len(want))
	if n, _, err := fs.Read(ctx, &Root, f.Ino, 0, p); err != nil || n != len(want) || !bytes.Equal(p, want) {
		t.Fatalf("content after compaction differs: n=%d err=%v", n, err)
	}
	rep, err := fs.Fsck(ctx, FsckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) > 0 {
		t.Fatalf("fsck: %v", rep.Problems)
	}
	// After the delay the old blocks go.
	deleted, err = fs.DeleteDue(ctx, fs.now().Add(2*time.Hour), nil)
	if err != nil {
		t.Fatal(err)
	}
	if deleted <= data.MaxSlicesBeforeCompaction {
		t.Fatalf("%d slices deleted after the delay, want every replaced one", deleted)
	}
}
