package core_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/claudefs/cfs-gateway/internal/core"
	"github.com/claudefs/cfs-gateway/internal/core/coretest"
	"github.com/claudefs/cfs-gateway/internal/engine/blob/localblob"
	"github.com/claudefs/cfs-gateway/internal/engine/kv/pebblekv"
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
	blobs, err := localblob.Open(filepath.Join(dir, "blocks"), localblob.Options{})
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
	var blocks []string
	filepath.WalkDir(filepath.Join(dir, "blocks"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			blocks = append(blocks, p)
		}
		return nil
	})
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
