package core_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/claudefs/cfs-gateway/internal/core"
	"github.com/claudefs/cfs-gateway/internal/core/coretest"
	"github.com/claudefs/cfs-gateway/internal/engine/kv"
	"github.com/claudefs/cfs-gateway/internal/meta"
)

// countingStore counts the reads made through a store's Views.
type countingStore struct {
	kv.Store
	views, gets, getManys, scans atomic.Int64
}

func (s *countingStore) View(ctx context.Context, fn func(r kv.Reader) error) error {
	s.views.Add(1)
	return s.Store.View(ctx, func(r kv.Reader) error { return fn(&countingReader{r: r, s: s}) })
}

func (s *countingStore) reset() {
	s.views.Store(0)
	s.gets.Store(0)
	s.getManys.Store(0)
	s.scans.Store(0)
}

type countingReader struct {
	r kv.Reader
	s *countingStore
}

func (c *countingReader) Get(ctx context.Context, key []byte) ([]byte, error) {
	c.s.gets.Add(1)
	return c.r.Get(ctx, key)
}

func (c *countingReader) GetMany(ctx context.Context, keys [][]byte) ([][]byte, error) {
	c.s.getManys.Add(1)
	return kv.GetMany(ctx, c.r, keys)
}

func (c *countingReader) Scan(ctx context.Context, start, end []byte, limit int, reverse bool) ([]kv.Pair, error) {
	c.s.scans.Add(1)
	return c.r.Scan(ctx, start, end, limit, reverse)
}

// openCounting opens a filesystem whose store counts reads.
func openCounting(t *testing.T) (*core.FS, *countingStore) {
	t.Helper()
	var counting *countingStore
	fsys := coretest.OpenEmbeddedWrapped(t, t.TempDir(), core.Options{NoBackground: true}, func(s kv.Store) kv.Store {
		counting = &countingStore{Store: s}
		return counting
	})
	return fsys, counting
}

// listing is one way to list a directory with attributes.
type listing struct {
	name string
	list func(ctx context.Context, fs *core.FS, dir core.Ino) ([]core.DirEntry, error)
}

const listTag = "user.tag"

var listings = []listing{
	{"ReadDir plus", func(ctx context.Context, fs *core.FS, dir core.Ino) ([]core.DirEntry, error) {
		es, _, _, err := fs.ReadDir(ctx, &core.Root, dir, 0, 0, 1000, true)
		return es, err
	}},
	{"ReadDirNames plus", func(ctx context.Context, fs *core.FS, dir core.Ino) ([]core.DirEntry, error) {
		es, _, err := fs.ReadDirNames(ctx, &core.Root, dir, "", 1000, true)
		return es, err
	}},
	{"ReadDirNamesXattr", func(ctx context.Context, fs *core.FS, dir core.Ino) ([]core.DirEntry, error) {
		es, _, err := fs.ReadDirNamesXattr(ctx, &core.Root, dir, "", 1000, listTag)
		return es, err
	}},
}

// fillDir makes directory name in the root with files, files tagged with
// listTag, directories with an entry each (so that their times record
// differs from their inode's), and a symlink; it returns the directory.
func fillDir(t *testing.T, fs *core.FS, name string, files int) core.Ino {
	t.Helper()
	ctx := context.Background()
	d, err := fs.Mkdir(ctx, &core.Root, core.RootIno, name, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < files; i++ {
		a, _, err := fs.Create(ctx, &core.Root, d.Ino, fmt.Sprintf("f%03d", i), 0o644, core.CreateGuarded, 0)
		if err != nil {
			t.Fatal(err)
		}
		switch i % 4 {
		case 1:
			if err := fs.SetXattr(ctx, &core.Root, a.Ino, listTag, fmt.Appendf(nil, "tag%d", i), core.XattrAny); err != nil {
				t.Fatal(err)
			}
		case 2:
			if err := fs.SetXattr(ctx, &core.Root, a.Ino, listTag, []byte{}, core.XattrAny); err != nil {
				t.Fatal(err)
			}
		}
		if i%10 == 3 {
			sub, err := fs.Mkdir(ctx, &core.Root, d.Ino, fmt.Sprintf("d%03d", i), 0o750)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := fs.Create(ctx, &core.Root, sub.Ino, "inner", 0o644, core.CreateGuarded, 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := fs.Symlink(ctx, &core.Root, d.Ino, "link", "f000"); err != nil {
		t.Fatal(err)
	}
	return d.Ino
}

// TestListingAttrsMatchGetAttr checks that the attributes and extended
// attribute a listing brings, whether loaded in its batch or found in the
// cache, are those GetAttr and GetXattr give.
func TestListingAttrsMatchGetAttr(t *testing.T) {
	ctx := context.Background()
	fs, _ := openCounting(t)
	dir := fillDir(t, fs, "d", 40)
	caches := []struct {
		name string
		warm func(t *testing.T, ents []core.DirEntry)
	}{
		{"cold cache", func(t *testing.T, ents []core.DirEntry) { fs.InvalidateAll() }},
		{"warm cache", func(t *testing.T, ents []core.DirEntry) {
			for _, e := range ents {
				if _, err := fs.GetAttr(ctx, e.Ino); err != nil {
					t.Fatal(err)
				}
			}
		}},
		{"half of the entries cached", func(t *testing.T, ents []core.DirEntry) {
			fs.InvalidateAll()
			for i, e := range ents {
				if i%2 == 0 {
					if _, err := fs.GetAttr(ctx, e.Ino); err != nil {
						t.Fatal(err)
					}
				}
			}
		}},
	}
	names, _, err := fs.ReadDirNames(ctx, &core.Root, dir, "", 1000, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range listings {
		for _, c := range caches {
			t.Run(l.name+"/"+c.name, func(t *testing.T) {
				c.warm(t, names)
				ents, err := l.list(ctx, fs, dir)
				if err != nil {
					t.Fatal(err)
				}
				if len(ents) != len(names) {
					t.Fatalf("%d entries with attributes, want %d", len(ents), len(names))
				}
				fs.InvalidateAll()
				for _, e := range ents {
					want, err := fs.GetAttr(ctx, e.Ino)
					if err != nil {
						t.Fatal(err)
					}
					if e.Attr == nil || *e.Attr != want {
						t.Errorf("entry %s: attributes %+v, GetAttr gives %+v", e.Name, e.Attr, want)
					}
					if l.name != "ReadDirNamesXattr" {
						continue
					}
					x, err := fs.GetXattr(ctx, &core.Root, e.Ino, listTag)
					if err != nil {
						x = nil
					}
					if string(e.Xattr) != string(x) || (e.Xattr == nil) != (x == nil) {
						t.Errorf("entry %s: %s %q (nil %v), GetXattr gives %q (nil %v)", e.Name, listTag, e.Xattr, e.Xattr == nil, x, x == nil)
					}
				}
			})
		}
	}
}

// TestListingBatchesReads checks that a listing's cost in reads does not
// grow with its entries: one view, one scan and one batched read, whatever
// the number of entries and whether their attributes are cached.
func TestListingBatchesReads(t *testing.T) {
	ctx := context.Background()
	fs, store := openCounting(t)
	for _, files := range []int{1, 30, 300} {
		dir := fillDir(t, fs, fmt.Sprintf("d%d", files), files)
		for _, l := range listings {
			for _, cold := range []bool{true, false} {
				t.Run(fmt.Sprintf("%d files/%s/cold=%v", files, l.name, cold), func(t *testing.T) {
					if _, err := fs.GetAttr(ctx, dir); err != nil {
						t.Fatal(err)
					}
					if cold {
						fs.InvalidateAll()
						if _, err := fs.GetAttr(ctx, dir); err != nil {
							t.Fatal(err)
						}
					}
					store.reset()
					ents, err := l.list(ctx, fs, dir)
					if err != nil {
						t.Fatal(err)
					}
					if len(ents) < files {
						t.Fatalf("%d entries, want at least %d", len(ents), files)
					}
					wantBatches := int64(1)
					if !cold && l.name != "ReadDirNamesXattr" {
						wantBatches = 0 // every attribute is in the cache
					}
					if v, g, m, s := store.views.Load(), store.gets.Load(), store.getManys.Load(), store.scans.Load(); v != 1 || g != 0 || m != wantBatches || s != 1 {
						t.Errorf("listing %d entries made %d views, %d gets, %d batched reads and %d scans; want 1, 0, %d and 1",
							len(ents), v, g, m, s, wantBatches)
					}
				})
			}
		}
	}
}

// TestListingSkipsVanishedInodes checks entries whose inode is gone (an
// entry met by a listing while it was being removed) or is not what the
// entry says: a listing with attributes leaves the first out and gives
// the second its true attributes; one without lists both.
func TestListingSkipsVanishedInodes(t *testing.T) {
	ctx := context.Background()
	fs, store := openCounting(t)
	dir := fillDir(t, fs, "d", 5)
	sub, err := fs.Lookup(ctx, &core.Root, dir, "d003")
	if err != nil {
		t.Fatal(err)
	}
	const missingIno, unlinkedIno = 1 << 40, 1<<40 + 1
	entries := []struct {
		name   string
		ino    uint64
		typ    core.FileType
		cookie uint64
	}{
		{"gone", missingIno, core.TypeRegular, 1 << 50},
		{"unlinked", unlinkedIno, core.TypeRegular, 1<<50 + 1},
		// An entry that calls directory d003 a file: its attributes
		// still carry the directory's times.
		{"mislabelled", uint64(sub.Ino), core.TypeRegular, 1<<50 + 2},
	}
	err = store.Update(ctx, func(tx kv.Txn) error {
		for _, e := range entries {
			tx.Put(meta.DentryKey(uint64(dir), e.name), meta.AppendDentry(nil, meta.Dentry{Ino: e.ino, Type: uint8(e.typ), Cookie: e.cookie}))
			tx.Put(meta.CookieKey(uint64(dir), e.cookie), meta.AppendCookieEntry(nil, meta.CookieEntry{Ino: e.ino, Type: uint8(e.typ), Name: e.name}))
		}
		tx.Put(meta.InodeKey(unlinkedIno), meta.AppendInode(nil, &meta.Inode{Type: uint8(core.TypeRegular), Mode: 0o644, Nlink: 0, Gen: 1}))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	fs.InvalidateAll()
	want, err := fs.GetAttr(ctx, sub.Ino)
	if err != nil {
		t.Fatal(err)
	}
	all, _, err := fs.ReadDirNames(ctx, &core.Root, dir, "", 1000, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range listings {
		t.Run(l.name, func(t *testing.T) {
			fs.InvalidateAll()
			ents, err := l.list(ctx, fs, dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(ents) != len(all)-2 {
				t.Errorf("%d entries with attributes, want %d: all %d but gone and unlinked", len(ents), len(all)-2, len(all))
			}
			found := false
			for _, e := range ents {
				switch e.Name {
				case "gone", "unlinked":
					t.Errorf("entry %s listed with attributes %+v", e.Name, e.Attr)
				case "mislabelled":
					found = true
					if e.Attr == nil || *e.Attr != want {
						t.Errorf("mislabelled entry: attributes %+v, want the directory's %+v", e.Attr, want)
					}
				}
			}
			if !found {
				t.Error("mislabelled entry missing")
			}
		})
	}
	es, _, _, err := fs.ReadDir(ctx, &core.Root, dir, 0, 0, 1000, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != len(all) {
		t.Errorf("ReadDir without attributes: %d entries, want %d", len(es), len(all))
	}
}
