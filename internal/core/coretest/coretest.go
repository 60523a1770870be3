// Package coretest runs the filesystem core's semantics suite against any
// pair of engines, so that the embedded engines and the scale-out ones are
// held to the same behaviour. It is imported only by tests.
package coretest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/claudefs/cfs-gateway/internal/core"
	"github.com/claudefs/cfs-gateway/internal/core/lock"
	"github.com/claudefs/cfs-gateway/internal/core/quota"
	"github.com/claudefs/cfs-gateway/internal/data"
)

// Opener makes a fresh filesystem for one test with the given options
// (Store and Blobs are the opener's to set) and closes it at cleanup.
type Opener func(t *testing.T, opts core.Options) *core.FS

var (
	root  = &core.Identity{}
	alice = &core.Identity{UID: 1000, GID: 1000}
	bob   = &core.Identity{UID: 1001, GID: 1001, Groups: []uint32{1000}}
	carol = &core.Identity{UID: 1002, GID: 1002}
)

func is(t *testing.T, err error, want error) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if !errors.Is(err, want) {
		t.Fatalf("error = %v, want %v", err, want)
	}
}

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// Run runs every semantics test.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(*testing.T, Opener)
	}{
		{"CreateModes", testCreateModes},
		{"NodeTypes", testNodeTypes},
		{"Names", testNames},
		{"HardLinks", testHardLinks},
		{"RemoveAndStale", testRemoveAndStale},
		{"Rename", testRename},
		{"RenameDirectory", testRenameDirectory},
		{"Permissions", testPermissions},
		{"Sticky", testSticky},
		{"Setgid", testSetgid},
		{"SetAttrRules", testSetAttrRules},
		{"TruncateAndSparse", testTruncateAndSparse},
		{"WriteRead", testWriteRead},
		{"UnstableWrites", testUnstableWrites},
		{"ReadDirWhileChanging", testReadDirWhileChanging},
		{"Xattrs", testXattrs},
		{"QuotaHard", testQuotaHard},
		{"QuotaSoftAndGrace", testQuotaSoftAndGrace},
		{"QuotaGroup", testQuotaGroup},
		{"ConcurrentCreates", testConcurrentCreates},
		{"Users", testUsers},
		{"FsckAndGC", testFsckAndGC},
		{"LeaseBreaks", testLeaseBreaks},
		{"TempPublish", testTempPublish},
		{"ReadDirNames", testReadDirNames},
		{"ProtocolXattrs", testProtocolXattrs},
		{"CopyRange", testCopyRange},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open) })
	}
}

func mkdir(t *testing.T, fs *core.FS, id *core.Identity, dir core.Ino, name string, mode uint32) core.Attr {
	t.Helper()
	a, err := fs.Mkdir(context.Background(), id, dir, name, mode)
	if err != nil {
		t.Fatalf("mkdir %s: %v", name, err)
	}
	return a
}

func create(t *testing.T, fs *core.FS, id *core.Identity, dir core.Ino, name string, mode uint32) core.Attr {
	t.Helper()
	a, _, err := fs.Create(context.Background(), id, dir, name, mode, core.CreateGuarded, 0)
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	return a
}

func write(t *testing.T, fs *core.FS, id *core.Identity, ino core.Ino, off uint64, p []byte, how core.Stability) {
	t.Helper()
	if _, err := fs.Write(context.Background(), id, ino, off, p, how); err != nil {
		t.Fatalf("write %d bytes at %d: %v", len(p), off, err)
	}
}

func read(t *testing.T, fs *core.FS, id *core.Identity, ino core.Ino, off uint64, n int) []byte {
	t.Helper()
	p := make([]byte, n)
	got, _, err := fs.Read(context.Background(), id, ino, off, p)
	if err != nil {
		t.Fatalf("read %d bytes at %d: %v", n, off, err)
	}
	return p[:got]
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// publicDir makes a 0777 directory for tests with several users.
func publicDir(t *testing.T, fs *core.FS, name string) core.Ino {
	return mkdir(t, fs, root, core.RootIno, name, 0o777).Ino
}

func testCreateModes(t *testing.T, open Opener) {
	fs := open(t, core.Options{})
	ctx := context.Background()
	dir := publicDir(t, fs, "d")
	a, created, err := fs.Create(ctx, alice, dir, "f", 0o644, core.CreateGuarded, 0)
	is(t, err, nil)
	if !created || a.Type != core.TypeRegular || a.Mode != 0o644 || a.UID != 1000 || a.GID != 1000 || a.Nlink != 1 {
		t.Fatalf("created attrs %+v", a)
	}
	tests := []struct {
		name    string
		how     core.CreateMode
		verf    uint64
		wantErr error
		created bool
	}{
		{"guarded on existing", core.CreateGuarded, 0, syscall.EEXIST, false},
		{"unchecked on existing opens it", core.CreateUnchecked, 0, nil, false},
		{"exclusive on existing with other verifier", core.CreateExclusive, 7, syscall.EEXIST, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, created, err := fs.Create(ctx, alice, dir, "f", 0o600, tc.how, tc.verf)
			is(t, err, tc.wantErr)
			if err == nil && (created != tc.created || b.Ino != a.Ino) {
				t.Fatalf("created=%v ino=%d, want %v %d", created, b.Ino, tc.created, a.Ino)
			}
		})
	}
	// Exclusive create is idempotent for the same verifier only.
	x, created, err := fs.Create(ctx, alice, dir, "x", 0o644, core.CreateExclusive, 42)
	is(t, err, nil)
	if !created {
		t.Fatal("exclusive create did not create")
	}
	y, created, err := fs.Create(ctx, alice, dir, "x", 0o644, core.CreateExclusive, 42)
	is(t, err, nil)
	if created || y.Ino != x.Ino {
		t.Fatalf("retried exclusive create: created=%v ino %d want %d", created, y.Ino, x.Ino)
	}
	_, _, err = fs.Create(ctx, alice, dir, "x", 0o644, core.CreateExclusive, 43)
	is(t, err, syscall.EEXIST)
	// Unchecked on a directory.
	mkdir(t, fs, alice, dir, "sub", 0o755)
	_, _, err = fs.Create(ctx, alice, dir, "sub", 0o644, core.CreateUnchecked, 0)
	is(t, err, syscall.EISDIR)
	// Create in a file, in a missing inode.
	_, _, err = fs.Create(ctx, alice, a.Ino, "y", 0o644, core.CreateGuarded, 0)
	is(t, err, syscall.ENOTDIR)
	_, _, err = fs.Create(ctx, alice, 999999, "y", 0o644, core.CreateGuarded, 0)
	is(t, err, syscall.ESTALE)
	// Lookup finds what was made; the parent's times moved.
	l, err := fs.Lookup(ctx, alice, dir, "f")
	is(t, err, nil)
	if l.Ino != a.Ino {
		t.Fatalf("lookup ino %d want %d", l.Ino, a.Ino)
	}
	_, err = fs.Lookup(ctx, alice, dir, "nope")
	is(t, err, syscall.ENOENT)
	dot, err := fs.Lookup(ctx, alice, dir, ".")
	is(t, err, nil)
	dotdot, err := fs.Lookup(ctx, alice, dir, "..")
	is(t, err, nil)
	if dot.Ino != dir || dotdot.Ino != core.RootIno {
		t.Fatalf(". = %d, .. = %d", dot.Ino, dotdot.Ino)
	}
}

func testNodeTypes(t *testing.T, open Opener) {
	fs := open(t, core.Options{})
	ctx := context.Background()
	dir := publicDir(t, fs, "d")
	s, err := fs.Symlink(ctx, alice, dir, "link", "../target/file")
	is(t, err, nil)
	if s.Type != core.TypeSymlink || s.Size != uint64(len("../target/file")) {
		t.Fatalf("symlink attrs %+v", s)
	}
	target, err := fs.Readlink(ctx, s.Ino)
	is(t, err, nil)
	if target != "../target/file" {
		t.Fatalf("readlink = %q", target)
	}
	f := create(t, fs, alice, dir, "file", 0o644)
	_, err = fs.Readlink(ctx, f.Ino)
	is(t, err, syscall.EINVAL)
	tests := []struct {
		name string
		id   *core.Identity
		typ  core.FileType
		rdev uint64
		err  error
	}{
		{"fifo", alice, core.TypeFifo, 0, nil},
		{"socket", alice, core.TypeSocket, 0, nil},
		{"chardev by root", root, core.TypeCharDev, 1<<32 | 3, nil},
		{"blockdev by root", root, core.TypeBlockDev, 8<<32 | 1, nil},
		{"chardev by user", alice, core.TypeCharDev, 1<<32 | 3, syscall.EPERM},
		{"regular is not a node", alice, core.TypeRegular, 0, syscall.EINVAL},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := fs.Mknod(ctx, tc.id, dir, tc.name, tc.typ, 0o640, tc.rdev)
			is(t, err, tc.err)
			if err == nil && (a.Type != tc.typ || a.Rdev != tc.rdev || a.Mode != 0o640) {
				t.Fatalf("attrs %+v", a)
			}
		})
	}
	// Reading or writing a directory or a fifo.
	_, _, err = fs.Read(ctx, alice, dir, 0, make([]byte, 10))
	is(t, err, syscall.EISDIR)
	fifo, err := fs.Lookup(ctx, alice, dir, "fifo")
	is(t, err, nil)
	_, err = fs.Write(ctx, alice, fifo.Ino, 0, []byte("x"), core.FileSync)
	is(t, err, syscall.EINVAL)
}

func testNames(t *testing.T, open Opener) {
	fs := open(t, core.Options{})
	ctx := context.Background()
	long := string(bytes.Repeat([]byte("a"), 256))
	tests := []struct {
		name string
		err  error
	}{
		{"", syscall.EINVAL},
		{".", syscall.EINVAL},
		{"..", syscall.EINVAL},
		{"a/b", syscall.EINVAL},
		{"nul\x00", syscall.EINVAL},
		{long, syscall.ENAMETOOLONG},
		{long[:255], nil},
		{"ünïcødé name with spaces", nil},
	}
	for _, tc := range tests {
		_, _, err := fs.Create(ctx, root, core.RootIno, tc.name, 0o644, core.CreateGuarded, 0)
		if tc.err == nil && err != nil || tc.err != nil && !errors.Is(err, tc.err) {
			t.Errorf("create %q: %v, want %v", tc.name, err, tc.err)
		}
	}
}

func testHardLinks(t *testing.T, open Opener) {
	fs := open(t, core.Options{})
	ctx := context.Background()
	d1 := publicDir(t, fs, "d1")
	d2 := publicDir(t, fs, "d2")
	f := create(t, fs, alice, d1, "f", 0o644)
	write(t, fs, alice, f.Ino, 0, []byte("shared bytes"), core.FileSync)
	l, err := fs.Link(ctx, alice, f.Ino, d2, "g")
	is(t, err, nil)
	if l.Nlink != 2 || l.Ino != f.Ino {
		t.Fatalf("after link: %+v", l)
	}
	got, err := fs.Lookup(ctx, alice, d2, "g")
	is(t, err, nil)
	if got.Ino != f.Ino || !bytes.Equal(read(t, fs, alice, got.Ino, 0, 100), []byte("shared bytes")) {
		t.Fatal("link does not reach the same data")
	}
	_, err = fs.Link(ctx, alice, f.Ino, d2, "g")
	is(t, err, syscall.EEXIST)
	_, err = fs.Link(ctx, alice, d1, d2, "dirlink")
	is(t, err, syscall.EISDIR)
	is(t, fs.Remove(ctx, alice, d1, "f"), nil)
	a, err := fs.GetAttr(ctx, f.Ino)
	is(t, err, nil)
	if a.Nlink != 1 {
		t.Fatalf("nlink after removing one link = %d", a.Nlink)
	}
	if !bytes.Equal(read(t, fs, alice, f.Ino, 0, 100), []byte("shared bytes")) {
		t.Fatal("data lost with the first link")
	}
	is(t, fs.Remove(ctx, alice, d2, "g"), nil)
	_, err = fs.GetAttr(ctx, f.Ino)
	is(t, err, syscall.ESTALE)
}

func testRemoveAndStale(t *testing.T, open Opener) {
	fs := open(t, core.Options{})
	ctx := context.Background()
	d := publicDir(t, fs, "d")
	f := create(t, fs, alice, d, "f", 0o644)
	sub := mkdir(t, fs, alice, d, "sub", 0o755)
	create(t, fs, alice, sub.Ino, "inner", 0o644)
	is(t, fs.Remove(ctx, alice, d, "sub"), syscall.EISDIR)
	is(t, fs.Rmdir(ctx, alice, d, "f"), syscall.ENOTDIR)
	is(t, fs.Rmdir(ctx, alice, d, "sub"), syscall.ENOTEMPTY)
	is(t, fs.Remove(ctx, alice, d, "missing"), syscall.ENOENT)
	is(t, fs.Remove(ctx, alice, sub.Ino, "inner"), nil)
	da, _ := fs.GetAttr(ctx, d)
	is(t, fs.Rmdir(ctx, alice, d, "sub"), nil)
	db, _ := fs.GetAttr(ctx, d)
	if db.Nlink != da.Nlink-1 {
		t.Fatalf("parent nlink %d -> %d after rmdir", da.Nlink, db.Nlink)
	}
	is(t, fs.Remove(ctx, alice, d, "f"), nil)
	_, err := fs.GetAttrHandle(ctx, f.Handle())
	is(t, err, syscall.ESTALE)
	_, err = fs.GetAttrHandle(ctx, sub.Handle())
	is(t, err, syscall.ESTALE)
	_, _, err = fs.Read(ctx, alice, f.Ino, 0, make([]byte, 1))
	is(t, err, syscall.ESTALE)
	_, err = fs.GetAttrHandle(ctx, core.Handle{Ino: d, Gen: 12345})
	is(t, err, syscall.ESTALE)

	// RemoveIf removes only the file it was shown, unchanged.
	g := create(t, fs, alice, d, "g", 0o644)
	_, err = fs.Write(ctx, alice, g.Ino, 0, []byte("changed"), core.FileSync)
	is(t, err, nil)
	is(t, fs.RemoveIf(ctx, alice, d, "g", g.Ino, g.ChangeID), syscall.ESTALE)
	now, err := fs.GetAttr(ctx, g.Ino)
	is(t, err, nil)
	is(t, fs.Remove(ctx, alice, d, "g"), nil)
	h := create(t, fs, alice, d, "g", 0o644) // a new file under the old name
	is(t, fs.RemoveIf(ctx, alice, d, "g", now.Ino, now.ChangeID), syscall.ESTALE)
	is(t, fs.RemoveIf(ctx, alice, d, "g", h.Ino, h.ChangeID), nil)
	is(t, fs.RemoveIf(ctx, alice, d, "g", h.Ino, h.ChangeID), syscall.ENOENT)
	if got := names(t, fs, d); len(got) != 0 {
		t.Fatalf("after RemoveIf: entries %v, want none", got)
	}
}

func names(t *testing.T, fs *core.FS, dir core.Ino) []string {
	t.Helper()
	es, eof, _, err := fs.ReadDir(context.Background(), root, dir, 0, 0, 100000, false)
	if err != nil || !eof {
		t.Fatalf("readdir: %v eof=%v", err, eof)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name)
	}
	sort.Strings(out)
	return out
}

func testRename(t *testing.T, open Opener) {
	ctx := context.Background()
	type setup func(t *testing.T, fs *core.FS, d core.Ino)
	files := func(names ...string) setup {
		return func(t *testing.T, fs *core.FS, d core.Ino) {
			for _, n := range names {
				f := create(t, fs, alice, d, n, 0o644)
				write(t, fs, alice, f.Ino, 0, []byte(n), core.FileSync)
			}
		}
	}
	dirs := func(next setup, names ...string) setup {
		return func(t *testing.T, fs *core.FS, d core.Ino) {
			if next != nil {
				next(t, fs, d)
			}
			for _, n := range names {
				mkdir(t, fs, alice, d, n, 0o755)
			}
		}
	}
	tests := []struct {
		name      string
		setup     setup
		src, dst  string
		err       error
		wantNames []string
	}{
		{"simple", files("a"), "a", "b", nil, []string{"b"}},
		{"over an existing file", files("a", "b"), "a", "b", nil, []string{"b"}},
		{"onto itself", files("a"), "a", "a", nil, []string{"a"}},
		{"missing source", files("a"), "x", "b", syscall.ENOENT, []string{"a"}},
		{"dir over empty dir", dirs(nil, "p", "q"), "p", "q", nil, []string{"q"}},
		{"dir over file", dirs(files("f"), "p"), "p", "f", syscall.ENOTDIR, []string{"f", "p"}},
		{"file over dir", dirs(files("f"), "p"), "f", "p", syscall.EISDIR, []string{"f", "p"}},
		{"dir over non-empty dir", func(t *testing.T, fs *core.FS, d core.Ino) {
			mkdir(t, fs, alice, d, "p", 0o755)
			q := mkdir(t, fs, alice, d, "q", 0o755)
			create(t, fs, alice, q.Ino, "inside", 0o644)
		}, "p", "q", syscall.ENOTEMPTY, []string{"p", "q"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs := open(t, core.Options{})
			d := publicDir(t, fs, "d")
			tc.setup(t, fs, d)
			err := fs.Rename(ctx, alice, d, tc.src, d, tc.dst)
			is(t, err, tc.err)
			got := names(t, fs, d)
			if fmt.Sprint(got) != fmt.Sprint(tc.wantNames) {
				t.Fatalf("entries %v, want %v", got, tc.wantNames)
			}
			if tc.err == nil && tc.src != tc.dst {
				a, err := fs.Lookup(ctx, alice, d, tc.dst)
				is(t, err, nil)
				if a.Type == core.TypeRegular {
					if got := read(t, fs, alice, a.Ino, 0, 10); string(got) != tc.src {
						t.Fatalf("renamed file holds %q, want %q", got, tc.src)
					}
				}
			}
			rep, err := fs.Fsck(ctx, core.FsckOptions{})
			is(t, err, nil)
			if len(rep.Problems) > 0 {
				t.Fatalf("fsck after rename: %v", rep.Problems)
			}
		})
	}
	// Two hard links to one file: renaming one over the other changes nothing.
	fs := open(t, core.Options{})
	d := publicDir(t, fs, "d")
	f := create(t, fs, alice, d, "a", 0o644)
	_, err := fs.Link(ctx, alice, f.Ino, d, "b")
	is(t, err, nil)
	is(t, fs.Rename(ctx, alice, d, "a", d, "b"), nil)
	if got := names(t, fs, d); fmt.Sprint(got) != "[a b]" {
		t.Fatalf("after renaming a link over its twin: %v", got)
	}
}

func testRenameDirectory(t *testing.T, open Opener) {
	fs := open(t, core.Options{})
	ctx := context.Background()
	a := publicDir(t, fs, "a")
	b := publicDir(t, fs, "b")
	p := mkdir(t, fs, alice, a, "p", 0o755)
	c := mkdir(t, fs, alice, p.Ino, "c", 0o755)
	// No cycles: a directory cannot move under itself.
	is(t, fs.Rename(ctx, alice, a, "p", c.Ino, "p2"), syscall.EINVAL)
	is(t, fs.Rename(ctx, alice, a, "p", p.Ino, "p2"), syscall.EINVAL)
	before, _ := fs.GetAttr(ctx, a)
	beforeB, _ := fs.GetAttr(ctx, b)
	is(t, fs.Rename(ctx, alice, a, "p", b, "p"), nil)
	after, _ := fs.GetAttr(ctx, a)
	afterB, _ := fs.GetAttr(ctx, b)
	if after.Nlink != before.Nlink-1 || afterB.Nlink != beforeB.Nlink+1 {
		t.Fatalf("nlink a %d->%d b %d->%d", before.Nlink, after.Nlink, beforeB.Nlink, afterB.Nlink)
	}
	up, err := fs.Lookup(ctx, alice, p.Ino, "..")
	is(t, err, nil)
	if up.Ino != b {
		t.Fatalf(".. of moved directory is %d, want %d", up.Ino, b)
	}
	// Moving another's directory to a new parent needs write permission on it.
	q := mkdir(t, fs, alice, a, "q", 0o555)
	is(t, fs.Rename(ctx, bob, a, "q", b, "q"), syscall.EACCES)
	_ = q
	rep, err := fs.Fsck(ctx, core.FsckOptions{})
	is(t, err, nil)
	if len(rep.Problems) > 0 {
		t.Fatalf("fsck: %v", rep.Problems)
	}
}

func testPermissions(t *testing.T, open Opener) {
	fs := open(t, core.Options{})
	ctx := context.Background()
	home := mkdir(t, fs, root, core.RootIno, "home", 0o755)
	private := create(t, fs, root, home.Ino, "private", 0o600)
	write(t, fs, root, private.Ino, 0, []byte("secret"), core.FileSync)
	group := create(t, fs, alice, publicDir(t, fs, "pub"), "group", 0o640)
	tests := []struct {
		name string
		fn   func() error
		err  error
	}{
		{"other cannot create in 0755 dir", func() error {
			_, _, err := fs.Create(ctx, alice, home.Ino, "x", 0o644, core.CreateGuarded, 0)
			return err
		}, syscall.EACCES},
		{"other cannot mkdir in 0755 dir", func() error { _, err := fs.Mkdir(ctx, alice, home.Ino, "x", 0o755); return err }, syscall.EACCES},
		{"other cannot remove in 0755 dir", func() error { return fs.Remove(ctx, alice, home.Ino, "private") }, syscall.EACCES},
		{"other cannot read 0600", func() error { _, _, err := fs.Read(ctx, alice, private.Ino, 0, make([]byte, 4)); return err }, syscall.EACCES},
		{"other cannot write 0600", func() error {
			_, err := fs.Write(ctx, alice, private.Ino, 0, []byte("x"), core.FileSync)
			return err
		}, syscall.EACCES},
		{"group member reads 0640", func() error { _, _, err := fs.Read(ctx, bob, group.Ino, 0, make([]byte, 4)); return err }, nil},
		{"non-member cannot read 0640", func() error { _, _, err := fs.Read(ctx, carol, group.Ino, 0, make([]byte, 4)); return err }, syscall.EACCES},
		{"group member cannot write 0640", func() error {
			_, err := fs.Write(ctx, bob, group.Ino, 0, []byte("x"), core.FileSync)
			return err
		}, syscall.EACCES},
		{"root reads anything", func() error { _, _, err := fs.Read(ctx, root, group.Ino, 0, make([]byte, 4)); return err }, nil},
		{"other cannot chmod", func() error {
			m := uint32(0o777)
			_, err := fs.SetAttr(ctx, carol, group.Ino, core.SetAttr{Mode: &m})
			return err
		}, syscall.EPERM},
		{"other cannot truncate", func() error {
			sz := uint64(0)
			_, err := fs.SetAttr(ctx, carol, group.Ino, core.SetAttr{Size: &sz})
			return err
		}, syscall.EACCES},
		{"lookup needs search permission", func() error {
			locked := mkdir(t, fs, root, core.RootIno, "locked", 0o700)
			_, err := fs.Lookup(ctx, alice, locked.Ino, "anything")
			return err
		}, syscall.EACCES},
		{"readdir needs read permission", func() error {
			noread := mkdir(t, fs, root, core.RootIno, "noread", 0o711)
			_, _, _, err := fs.ReadDir(ctx, alice, noread.Ino, 0, 0, 10, false)
			return err
		}, syscall.EACCES},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { is(t, tc.fn(), tc.err) })
	}
	acc, err := fs.Access(ctx, bob, group.Ino, core.AccessRead|core.AccessModify|core.AccessExecute)
	is(t, err, nil)
	if acc != core.AccessRead {
		t.Fatalf("access for group member = %#x, want read only", acc)
	}
}

func testSticky(t *testing.T, open Opener) {
	fs := open(t, core.Options{})
	ctx := context.Background()
	tmp := mkdir(t, fs, root, core.RootIno, "tmp", 0o1777)
	create(t, fs, alice, tmp.Ino, "alices", 0o666)
	create(t, fs, bob, tmp.Ino, "bobs", 0o666)
	is(t, fs.Remove(ctx, bob, tmp.Ino, "alices"), syscall.EPERM)
	is(t, fs.Rename(ctx, bob, tmp.Ino, "alices", tmp.Ino, "stolen"), syscall.EPERM)
	is(t, fs.Rename(ctx, alice, tmp.Ino, "alices", tmp.Ino, "bobs"), syscall.EPERM)
	is(t, fs.Remove(ctx, bob, tmp.Ino, "bobs"), nil)
	is(t, fs.Remove(ctx, root, tmp.Ino, "alices"), nil)
}

func testSetgid(t *testing.T, open Opener) {
	fs := open(t, core.Options{})
	ctx := context.Background()
	shared := mkdir(t, fs, root, core.RootIno, "shared", 0o777)
	gid := uint32(500)
	mode := uint32(0o2777)
	_, err := fs.SetAttr(ctx, root, shared.Ino, core.SetAttr{GID: &gid, Mode: &mode})
	is(t, err, nil)
	f := create(t, fs, alice, shared.Ino, "f", 0o644)
	if f.GID != 500 {
		t.Fatalf("file in setgid dir has gid %d", f.GID)
	}
	sub := mkdir(t, fs, alice, shared.Ino, "sub", 0o755)
	if sub.GID != 500 || sub.Mode&core.ModeSetgid == 0 {
		t.Fatalf("subdir of setgid dir: gid %d mode %o", sub.GID, sub.Mode)
	}
	// A non-member cannot keep setgid on a file of a group it is not in.
	g := create(t, fs, alice, shared.Ino, "g", 0o2755)
	if g.Mode&core.ModeSetgid != 0 {
		t.Fatalf("setgid kept for a non-member: %o", g.Mode)
	}
}

func testSetAttrRules(t *testing.T, open Opener) {
	fs := open(t, core.Options{})
	ctx := context.Background()
	d := publicDir(t, fs, "d")
	f := create(t, fs, alice, d, "f", 0o644)
	u32 := func(v uint32) *uint32 { return &v }
	when := time.Date(2020, 1, 2, 3, 4, 5, 6, time.UTC)
	tests := []struct {
		name  string
		id    *core.Identity
		sa    core.SetAttr
		err   error
		check func(a core.Attr) bool
	}{
		{"owner chmod", alice, core.SetAttr{Mode: u32(0o600)}, nil, func(a core.Attr) bool { return a.Mode == 0o600 }},
		{"owner cannot give away", alice, core.SetAttr{UID: u32(1001)}, syscall.EPERM, nil},
		{"non-owner chgrp", bob, core.SetAttr{GID: u32(1000)}, syscall.EPERM, nil},
		{"root chown", root, core.SetAttr{UID: u32(1001), GID: u32(1000)}, nil, func(a core.Attr) bool { return a.UID == 1001 && a.GID == 1000 }},
		{"new owner chgrp to member group", bob, core.SetAttr{GID: u32(1000)}, nil, func(a core.Attr) bool { return a.GID == 1000 }},
		{"explicit times by owner", bob, core.SetAttr{Mtime: core.SetTime{How: core.TimeClient, Time: when}, Atime: core.SetTime{How: core.TimeClient, Time: when}},
			nil, func(a core.Attr) bool { return a.Mtime.Equal(when) && a.Atime.Equal(when) }},
		{"explicit times by other", carol, core.SetAttr{Mtime: core.SetTime{How: core.TimeClient, Time: when}}, syscall.EPERM, nil},
		{"server time by non-writer", carol, core.SetAttr{Mtime: core.SetTime{How: core.TimeServer}}, syscall.EACCES, nil},
		{"guard mismatch", bob, core.SetAttr{Mode: u32(0o644), GuardCtime: &when}, core.ErrNotSync, nil},
		{"size on a directory", root, core.SetAttr{Size: new(uint64)}, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ino := f.Ino
			if tc.name == "size on a directory" {
				ino = d
				tc.err = syscall.EISDIR
			}
			a, err := fs.SetAttr(ctx, tc.id, ino, tc.sa)
			is(t, err, tc.err)
			if tc.check != nil && !tc.check(a) {
				t.Fatalf("attrs after setattr: %+v", a)
			}
		})
	}
	// The guard passes with the current ctime, and ctime moves on change.
	cur, _ := fs.GetAttr(ctx, f.Ino)
	a, err := fs.SetAttr(ctx, root, f.Ino, core.SetAttr{Mode: u32(0o640), GuardCtime: &cur.Ctime})
	is(t, err, nil)
	if !a.Ctime.After(cur.Ctime) && !a.Ctime.Equal(cur.Ctime) || a.ChangeID <= cur.ChangeID {
		t.Fatalf("ctime/change id did not advance: %v/%d -> %v/%d", cur.Ctime, cur.ChangeID, a.Ctime, a.ChangeID)
	}
	// Writing by a non-root user clears setuid.
	mode := uint32(0o4777)
	_, err = fs.SetAttr(ctx, root, f.Ino, core.SetAttr{Mode: &mode})
	is(t, err, nil)
	write(t, fs, bob, f.Ino, 0, []byte("x"), core.FileSync)
	a, _ = fs.GetAttr(ctx, f.Ino)
	if a.Mode&core.ModeSetuid != 0 {
		t.Fatalf("setuid kept after a write by a user: %o", a.Mode)
	}
}

func testTruncateAndSparse(t *testing.T, open Opener) {
	fs := open(t, core.Options{})
	ctx := context.Background()
	f := create(t, fs, root, core.RootIno, "f", 0o644)
	content := randBytes(300 << 10)
	write(t, fs, root, f.Ino, 0, content, core.FileSync)
	size := func(n uint64) {
		t.Helper()
		a, err := fs.SetAttr(ctx, root, f.Ino, core.SetAttr{Size: &n})
		is(t, err, nil)
		if a.Size != n {
			t.Fatalf("size %d after truncate to %d", a.Size, n)
		}
	}
	size(100 << 10) // down
	if got := read(t, fs, root, f.Ino, 0, 400<<10); !bytes.Equal(got, content[:100<<10]) {
		t.Fatalf("after truncate down read %d bytes, mismatch", len(got))
	}
	size(200 << 10) // up: the grown part reads as zeros, not the old bytes
	got := read(t, fs, root, f.Ino, 0, 400<<10)
	if len(got) != 200<<10 || !bytes.Equal(got[:100<<10], content[:100<<10]) || !bytes.Equal(got[100<<10:], make([]byte, 100<<10)) {
		t.Fatal("truncate up does not read as zeros")
	}
	// A sparse file across a chunk boundary: holes read as zeros.
	g := create(t, fs, root, core.RootIno, "sparse", 0o644)
	tail := randBytes(1 << 20)
	off := uint64(data.ChunkSize - 512<<10)
	write(t, fs, root, g.Ino, off, tail, core.FileSync)
	write(t, fs, root, g.Ino, 10, []byte("head"), core.FileSync)
	a, _ := fs.GetAttr(ctx, g.Ino)
	if a.Size != off+1<<20 {
		t.Fatalf("sparse size %d", a.Size)
	}
	if got := read(t, fs, root, g.Ino, off-4096, 4096+1<<20); !bytes.Equal(got[:4096], make([]byte, 4096)) || !bytes.Equal(got[4096:], tail) {
		t.Fatal("sparse read across the chunk boundary is wrong")
	}
	if got := read(t, fs, root, g.Ino, 0, 20); !bytes.Equal(got, append(append(make([]byte, 10), "head"...), make([]byte, 6)...)) {
		t.Fatalf("sparse head %q", got)
	}
	// Truncate into the first chunk drops the second.
	n := uint64(12)
	_, err := fs.SetAttr(ctx, root, g.Ino, core.SetAttr{Size: &n})
	is(t, err, nil)
	n = off + 1<<20
	_, err = fs.SetAttr(ctx, root, g.Ino, core.SetAttr{Size: &n})
	is(t, err, nil)
	if got := read(t, fs, root, g.Ino, off, 1<<20); !bytes.Equal(got, make([]byte, 1<<20)) {
		t.Fatal("data beyond a truncation came back")
	}
	rep, err := fs.Fsck(ctx, core.FsckOptions{})
	is(t, err, nil)
	if len(rep.Problems) > 0 {
		t.Fatalf("fsck: %v", rep.Problems)
	}
}

func testWriteRead(t *testing.T, open Opener) {
	fs := open(t, core.Options{})
	f := create(t, fs, root, core.RootIno, "f", 0o644)
	want := make([]byte, 0, 3<<20)
	// Overlapping writes of many sizes: the latest wins.
	for i := 0; i < 40; i++ {
		p := randBytes(1 + i*997)
		off := uint64(i * 50000)
		write(t, fs, root, f.Ino, off, p, core.FileSync)
		if end := int(off) + len(p); end > len(want) {
			want = want[:end]
		}
		copy(want[off:], p)
	}
	if got := read(t, fs, root, f.Ino, 0, len(want)+10); !bytes.Equal(got, want) {
		t.Fatalf("read back %d bytes, mismatch with %d written", len(got), len(want))
	}
	p := make([]byte, 10)
	n, eof, err := fs.Read(context.Background(), root, f.Ino, uint64(len(want)), p)
	is(t, err, nil)
	if n != 0 || !eof {
		t.Fatalf("read at EOF: n=%d eof=%v", n, eof)
	}
}

func testUnstableWrites(t *testing.T, open Opener) {
	fs := open(t, core.Options{})
	ctx := context.Background()
	f := create(t, fs, root, core.RootIno, "f", 0o644)
	a := randBytes(100 << 10)
	write(t, fs, root, f.Ino, 0, a, core.Unstable)
	// Buffered data is visible to reads and in the size before commit.
	attr, _ := fs.GetAttr(ctx, f.Ino)
	if attr.Size != uint64(len(a)) {
		t.Fatalf("size before commit %d", attr.Size)
	}
	if got := read(t, fs, root, f.Ino, 0, len(a)); !bytes.Equal(got, a) {
		t.Fatal("buffered data not visible")
	}
	b := randBytes(10 << 10)
	write(t, fs, root, f.Ino, 5000, b, core.Unstable)
	copy(a[5000:], b)
	is(t, fs.Commit(ctx, f.Ino), nil)
	if got := read(t, fs, root, f.Ino, 0, len(a)); !bytes.Equal(got, a) {
		t.Fatal("data after commit differs")
	}
	// Concurrent readers during flushes never see a mix of old and missing data.
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var readErr error
	var mu sync.Mutex
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			p := make([]byte, len(a))
			n, _, err := fs.Read(ctx, root, f.Ino, 0, p)
			if err != nil || n != len(a) {
				mu.Lock()
				readErr = fmt.Errorf("read %d: n=%d err=%v", i, n, err)
				mu.Unlock()
				return
			}
		}
	}()
	for i := 0; i < 20; i++ {
		write(t, fs, root, f.Ino, uint64(i*1000), a[i*1000:(i+1)*1000], core.Unstable)
		if i%5 == 0 {
			is(t, fs.Commit(ctx, f.Ino), nil)
		}
	}
	close(stop)
	wg.Wait()
	if readErr != nil {
		t.Fatal(readErr)
	}
	if got := read(t, fs, root, f.Ino, 0, len(a)); !bytes.Equal(got, a) {
		t.Fatal("data differs after concurrent flushes")
	}
}

func testReadDirWhileChanging(t *testing.T, open Opener) {
	fs := open(t, core.Options{})
	ctx := context.Background()
	d := publicDir(t, fs, "d")
	const n = 400
	for i := 0; i < n; i++ {
		create(t, fs, root, d, fmt.Sprintf("f%04d", i), 0o644)
	}
	// Entries f0000..f0199 stay; the others are removed or renamed while
	// the listing runs, and new ones are added.
	stay := map[string]bool{}
	for i := 0; i < 200; i++ {
		stay[fmt.Sprintf("f%04d", i)] = true
	}
	seen := map[string]int{}
	var cookie, verf uint64
	for page := 0; ; page++ {
		es, eof, v, err := fs.ReadDir(ctx, root, d, cookie, verf, 37, page%2 == 0)
		is(t, err, nil)
		verf = v
		for _, e := range es {
			seen[e.Name]++
			cookie = e.Cookie
			if page%2 == 0 && e.Attr == nil {
				t.Fatalf("readdirplus entry %s without attributes", e.Name)
			}
		}
		if eof {
			break
		}
		// Change the directory between pages.
		for j := 0; j < 10; j++ {
			k := 200 + page*10 + j
			if k < n {
				name := fmt.Sprintf("f%04d", k)
				if j%2 == 0 {
					is(t, fs.Remove(ctx, root, d, name), nil)
				} else {
					is(t, fs.Rename(ctx, root, d, name, d, "r"+name), nil)
				}
			}
			create(t, fs, root, d, fmt.Sprintf("new%d-%d", page, j), 0o644)
		}
		if page > 100 {
			t.Fatal("listing does not end")
		}
	}
	for name := range stay {
		if seen[name] != 1 {
			t.Errorf("entry %s that stayed was seen %d times", name, seen[name])
		}
	}
	for name, c := range seen {
		if c > 1 {
			t.Errorf("entry %s seen %d times", name, c)
		}
	}
}

func testXattrs(t *testing.T, open Opener) {
	fs := open(t, core.Options{})
	ctx := context.Background()
	d := publicDir(t, fs, "d")
	f := create(t, fs, alice, d, "f", 0o644)
	tests := []struct {
		name string
		fn   func() error
		err  error
	}{
		{"set", func() error { return fs.SetXattr(ctx, alice, f.Ino, "user.a", []byte("1"), core.XattrAny) }, nil},
		{"create existing", func() error { return fs.SetXattr(ctx, alice, f.Ino, "user.a", []byte("2"), core.XattrCreate) }, syscall.EEXIST},
		{"replace missing", func() error { return fs.SetXattr(ctx, alice, f.Ino, "user.b", []byte("2"), core.XattrReplace) }, syscall.ENODATA},
		{"replace", func() error { return fs.SetXattr(ctx, alice, f.Ino, "user.a", []byte("3"), core.XattrReplace) }, nil},
		{"other cannot set", func() error { return fs.SetXattr(ctx, carol, f.Ino, "user.c", []byte("x"), core.XattrAny) }, syscall.EACCES},
		{"trusted needs root", func() error { return fs.SetXattr(ctx, alice, f.Ino, "trusted.x", []byte("x"), core.XattrAny) }, syscall.EPERM},
		{"trusted by root", func() error { return fs.SetXattr(ctx, root, f.Ino, "trusted.x", []byte("x"), core.XattrAny) }, nil},
		{"unknown namespace", func() error { return fs.SetXattr(ctx, root, f.Ino, "bogus.x", []byte("x"), core.XattrAny) }, syscall.ENOTSUP},
		{"too large", func() error {
			return fs.SetXattr(ctx, alice, f.Ino, "user.big", make([]byte, core.MaxXattrValueLen+1), core.XattrAny)
		}, syscall.E2BIG},
		{"remove missing", func() error { return fs.RemoveXattr(ctx, alice, f.Ino, "user.zz") }, syscall.ENODATA},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { is(t, tc.fn(), tc.err) })
	}
	v, err := fs.GetXattr(ctx, carol, f.Ino, "user.a")
	is(t, err, nil)
	if string(v) != "3" {
		t.Fatalf("user.a = %q", v)
	}
	list, err := fs.ListXattr(ctx, alice, f.Ino)
	is(t, err, nil)
	if fmt.Sprint(list) != "[user.a]" {
		t.Fatalf("list for user = %v", list)
	}
	list, _ = fs.ListXattr(ctx, root, f.Ino)
	if fmt.Sprint(list) != "[trusted.x user.a]" {
		t.Fatalf("list for root = %v", list)
	}
	is(t, fs.RemoveXattr(ctx, alice, f.Ino, "user.a"), nil)
	_, err = fs.GetXattr(ctx, alice, f.Ino, "user.a")
	is(t, err, syscall.ENODATA)
}

// Clock is a settable clock for tests (core.Options.Now and the like).
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock that reads t until advanced.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock d forward.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func testQuotaHard(t *testing.T, open Opener) {
	fs := open(t, core.Options{Quota: quota.Defaults{
		User:  quota.Limits{BytesHard: 1 << 20, InodesHard: 5},
		Grace: 7 * 24 * time.Hour,
	}})
	ctx := context.Background()
	d := publicDir(t, fs, "d")
	for i := 0; i < 5; i++ {
		create(t, fs, alice, d, fmt.Sprintf("f%d", i), 0o644)
	}
	_, _, err := fs.Create(ctx, alice, d, "f5", 0o644, core.CreateGuarded, 0)
	is(t, err, syscall.EDQUOT)
	_, err = fs.Mkdir(ctx, alice, d, "sub", 0o755)
	is(t, err, syscall.EDQUOT)
	// Other users are not affected; root is never refused.
	create(t, fs, bob, d, "bobs", 0o644)
	f0, _ := fs.Lookup(ctx, alice, d, "f0")
	write(t, fs, alice, f0.Ino, 0, make([]byte, 1<<20), core.FileSync)
	_, err = fs.Write(ctx, alice, f0.Ino, 1<<20, []byte("x"), core.FileSync)
	is(t, err, syscall.EDQUOT)
	// Freeing space and inodes lets the user go on.
	is(t, fs.Remove(ctx, alice, d, "f0"), nil)
	create(t, fs, alice, d, "again", 0o644)
	e, err := fs.GetQuota(ctx, false, alice.UID)
	is(t, err, nil)
	if e.Usage.Inodes != 5 || e.Usage.Bytes != 0 {
		t.Fatalf("usage after remove: %+v", e.Usage)
	}
	// A per-user override replaces the default.
	is(t, fs.SetQuota(ctx, false, alice.UID, quota.Limits{InodesHard: 100}), nil)
	create(t, fs, alice, d, "more", 0o644)
}

// warnings counts the warnings logged through a slog handler.
type warnings struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnings) Enabled(context.Context, slog.Level) bool { return true }
func (w *warnings) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		w.mu.Lock()
		w.msgs = append(w.msgs, r.Message)
		w.mu.Unlock()
	}
	return nil
}
func (w *warnings) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w *warnings) WithGroup(string) slog.Handler      { return w }
func (w *warnings) count(substr string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, m := range w.msgs {
		if strings.Contains(m, substr) {
			n++
		}
	}
	return n
}

func testQuotaSoftAndGrace(t *testing.T, open Opener) {
	c := NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	logged := &warnings{}
	fs := open(t, core.Options{Now: c.Now, Logger: slog.New(logged), Quota: quota.Defaults{
		User:  quota.Limits{InodesSoft: 3, InodesHard: 10},
		Grace: time.Hour,
	}})
	ctx := context.Background()
	d := publicDir(t, fs, "d")
	for i := 0; i < 5; i++ {
		create(t, fs, alice, d, fmt.Sprintf("f%d", i), 0o644) // past soft: allowed within grace
	}
	e, err := fs.GetQuota(ctx, false, alice.UID)
	is(t, err, nil)
	if e.Usage.InodesSoftSince == 0 {
		t.Fatalf("grace clock not started: %+v", e)
	}
	// The soft limit was passed by the 4th create and the 5th went on past
	// it: one warning for the crossing, not one per operation.
	if n := logged.count("soft limit"); n != 1 {
		t.Fatalf("%d soft-limit warnings logged, want 1", n)
	}
	c.Advance(2 * time.Hour)
	_, _, err = fs.Create(ctx, alice, d, "late", 0o644, core.CreateGuarded, 0)
	is(t, err, syscall.EDQUOT)
	// Back under the soft limit the clock resets and creates work again.
	for i := 0; i < 3; i++ {
		is(t, fs.Remove(ctx, alice, d, fmt.Sprintf("f%d", i)), nil)
	}
	create(t, fs, alice, d, "ok", 0o644)
	e, _ = fs.GetQuota(ctx, false, alice.UID)
	if e.Usage.Inodes != 3 || e.Usage.InodesSoftSince != 0 {
		t.Fatalf("after going back under soft: %+v", e.Usage)
	}
}

func testQuotaGroup(t *testing.T, open Opener) {
	fs := open(t, core.Options{Quota: quota.Defaults{Group: quota.Limits{InodesHard: 3}}})
	ctx := context.Background()
	d := publicDir(t, fs, "d")
	a := &core.Identity{UID: 2001, GID: 3000}
	b := &core.Identity{UID: 2002, GID: 3000}
	create(t, fs, a, d, "a1", 0o644)
	create(t, fs, a, d, "a2", 0o644)
	create(t, fs, b, d, "b1", 0o644)
	_, _, err := fs.Create(ctx, b, d, "b2", 0o644, core.CreateGuarded, 0)
	is(t, err, syscall.EDQUOT)
	rep, err := fs.QuotaReport(ctx)
	is(t, err, nil)
	found := false
	for _, e := range rep {
		if e.Kind == "group" && e.ID == 3000 {
			found = e.Usage.Inodes == 3 && e.Limits.InodesHard == 3
		}
	}
	if !found {
		t.Fatalf("group 3000 not in report correctly: %+v", rep)
	}
}

func testConcurrentCreates(t *testing.T, open Opener) {
	fs := open(t, core.Options{})
	ctx := context.Background()
	d := publicDir(t, fs, "d")
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				if _, _, err := fs.Create(ctx, alice, d, fmt.Sprintf("w%d-%d", w, i), 0o644, core.CreateGuarded, 0); err != nil {
					errs <- err
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := len(names(t, fs, d)); got != 800 {
		t.Fatalf("%d entries after 800 concurrent creates", got)
	}
	// The directory's attributes cached by the creates, which finished in
	// any order, are the newest: creates in one directory do not conflict,
	// so the stored times are those of the last to commit, which may be
	// a few microseconds older than another's.
	cached, err := fs.GetAttr(ctx, d)
	is(t, err, nil)
	fs.InvalidateAll()
	stored, err := fs.GetAttr(ctx, d)
	is(t, err, nil)
	if cached.ChangeID < stored.ChangeID || cached.Mtime.Before(stored.Mtime) {
		t.Fatalf("directory attributes after concurrent creates: cached change %d mtime %v, older than stored %d %v",
			cached.ChangeID, cached.Mtime, stored.ChangeID, stored.Mtime)
	}
	cached.Mtime, cached.Ctime, cached.ChangeID = stored.Mtime, stored.Ctime, stored.ChangeID
	if cached != stored {
		t.Fatalf("directory attributes after concurrent creates: cached %+v, stored %+v", cached, stored)
	}
	e, _ := fs.GetQuota(ctx, false, alice.UID)
	if e.Usage.Inodes != 800 {
		t.Fatalf("inode usage %d after 800 creates", e.Usage.Inodes)
	}
	rep, err := fs.Fsck(ctx, core.FsckOptions{})
	is(t, err, nil)
	if len(rep.Problems) > 0 {
		t.Fatalf("fsck: %v", rep.Problems)
	}
}

func testUsers(t *testing.T, open Opener) {
	fs := open(t, core.Options{})
	ctx := context.Background()
	k := core.NewAccessKey()
	is(t, fs.AddUser(ctx, core.User{Name: "ann", UID: 1500, GID: 1500, Groups: []uint32{10}, AccessKeys: []core.AccessKey{k}}, "pw"), nil)
	is(t, fs.AddUser(ctx, core.User{Name: "ann"}, ""), core.ErrUserExists)
	u, key, err := fs.LookupAccessKey(ctx, k.ID)
	is(t, err, nil)
	if u.Name != "ann" || key.Secret != k.Secret || !bytes.Equal(u.NTHash, core.NTHash("pw")) {
		t.Fatalf("lookup by key: %+v", u)
	}
	is(t, fs.SetPassword(ctx, "ann", "new"), nil)
	u, _ = fs.LookupUser(ctx, "ann")
	if !bytes.Equal(u.NTHash, core.NTHash("new")) {
		t.Fatal("password not changed")
	}
	is(t, fs.DeleteUser(ctx, "ann"), nil)
	_, _, err = fs.LookupAccessKey(ctx, k.ID)
	is(t, err, core.ErrNoUser)
	users, err := fs.ListUsers(ctx)
	is(t, err, nil)
	if len(users) != 0 {
		t.Fatalf("users after delete: %v", users)
	}
}

func testFsckAndGC(t *testing.T, open Opener) {
	fs := open(t, core.Options{BlockDeleteDelay: time.Nanosecond, NoBackground: true})
	ctx := context.Background()
	d := publicDir(t, fs, "d")
	for i := 0; i < 10; i++ {
		f := create(t, fs, alice, d, fmt.Sprintf("f%d", i), 0o644)
		write(t, fs, alice, f.Ino, 0, randBytes(10000*(i+1)), core.FileSync)
	}
	for i := 0; i < 5; i++ {
		is(t, fs.Remove(ctx, alice, d, fmt.Sprintf("f%d", i)), nil)
	}
	rep, err := fs.Fsck(ctx, core.FsckOptions{})
	is(t, err, nil)
	if len(rep.Problems) > 0 {
		t.Fatalf("fsck: %v", rep.Problems)
	}
	g, err := fs.GC(ctx, core.GCOptions{IgnoreDelay: true})
	is(t, err, nil)
	if g.DeletedSlices < 5 {
		t.Fatalf("gc deleted %d slices of 5 removed files", g.DeletedSlices)
	}
	rep, err = fs.Fsck(ctx, core.FsckOptions{})
	is(t, err, nil)
	if len(rep.Problems) > 0 {
		t.Fatalf("fsck after gc: %v", rep.Problems)
	}
	for i := 5; i < 10; i++ {
		f, err := fs.Lookup(ctx, alice, d, fmt.Sprintf("f%d", i))
		is(t, err, nil)
		if f.Size != uint64(10000*(i+1)) || len(read(t, fs, alice, f.Ino, 0, int(f.Size))) != int(f.Size) {
			t.Fatalf("file f%d damaged by gc", i)
		}
	}
}

// testLeaseBreaks checks that an access through the core breaks the leases
// other holders have on the file, and not the caller's own.
func testLeaseBreaks(t *testing.T, open Opener) {
	fs := open(t, core.Options{})
	ctx := context.Background()
	d := publicDir(t, fs, "d")
	f := create(t, fs, root, d, "leased", 0o666)
	holder := lock.LeaseKey{Client: "smb:client-a", Key: "lease-1"}
	breaks := make(chan lock.LeaseBreak, 4)
	got, err := fs.Locks().Grant(lock.FileID(f.Ino), lock.LeaseRequest{
		Key:   holder,
		State: lock.LeaseRead | lock.LeaseWrite | lock.LeaseHandle,
		OnBreak: func(b lock.LeaseBreak) {
			breaks <- b
			fs.Locks().Acknowledge(b.File, b.Key, b.To)
		},
	})
	is(t, err, nil)
	if got == 0 {
		t.Fatal("no lease granted")
	}
	// The holder's own write does not break its lease.
	own := *root
	own.Lease = holder
	write(t, fs, &own, f.Ino, 0, []byte("mine"), core.FileSync)
	select {
	case b := <-breaks:
		t.Fatalf("the holder's own write broke its lease: %+v", b)
	default:
	}
	// Another holder's write breaks it before it proceeds.
	write(t, fs, alice, f.Ino, 0, []byte("other"), core.FileSync)
	select {
	case b := <-breaks:
		if b.To&lock.LeaseWrite != 0 {
			t.Fatalf("write lease kept after another holder wrote: %+v", b)
		}
	default:
		t.Fatal("another holder's write did not break the lease")
	}
	info, ok := fs.Locks().Lease(lock.FileID(f.Ino), holder)
	if ok && info.State&lock.LeaseWrite != 0 {
		t.Fatalf("lease after the break: %+v", info)
	}
	// Removing the file breaks the handle lease.
	is(t, fs.Remove(ctx, alice, d, "leased"), nil)
	if info, ok := fs.Locks().Lease(lock.FileID(f.Ino), holder); ok && info.State&lock.LeaseHandle != 0 {
		t.Fatalf("handle lease kept after another holder removed the file: %+v", info)
	}
}

func testTempPublish(t *testing.T, open Opener) {
	fs := open(t, core.Options{NoBackground: true})
	ctx := context.Background()
	d := publicDir(t, fs, "bucket")
	old := create(t, fs, alice, d, "key", 0o644)
	write(t, fs, alice, old.Ino, 0, []byte("old object"), core.FileSync)

	tmp, err := fs.CreateTemp(ctx, alice, d, 0o644)
	is(t, err, nil)
	write(t, fs, alice, tmp.Ino, 0, []byte("new object, longer"), core.Unstable)
	// Until published, the name still reaches the old file and listings
	// do not show the temporary one.
	if got := names(t, fs, d); fmt.Sprint(got) != "[key]" {
		t.Fatalf("entries while uploading: %v", got)
	}
	if got := read(t, fs, alice, old.Ino, 0, 100); string(got) != "old object" {
		t.Fatalf("old object reads %q", got)
	}
	pub, err := fs.Publish(ctx, alice, tmp.Ino, d, "key")
	is(t, err, nil)
	if pub.Ino != tmp.Ino || pub.Nlink != 1 {
		t.Fatalf("published attrs %+v", pub)
	}
	l, err := fs.Lookup(ctx, alice, d, "key")
	is(t, err, nil)
	if l.Ino != tmp.Ino || string(read(t, fs, alice, l.Ino, 0, 100)) != "new object, longer" {
		t.Fatal("the name does not reach the published file")
	}
	_, err = fs.GetAttr(ctx, old.Ino)
	is(t, err, syscall.ESTALE)
	// Publishing twice, or over a directory, fails.
	_, err = fs.Publish(ctx, alice, tmp.Ino, d, "again")
	is(t, err, syscall.EINVAL)
	mkdir(t, fs, alice, d, "sub", 0o755)
	t2, err := fs.CreateTemp(ctx, alice, d, 0o644)
	is(t, err, nil)
	_, err = fs.Publish(ctx, alice, t2.Ino, d, "sub")
	is(t, err, syscall.EISDIR)
	// A discarded temporary file is purged with its quota.
	write(t, fs, alice, t2.Ino, 0, make([]byte, 5000), core.FileSync)
	is(t, fs.Discard(ctx, t2.Ino), nil)
	if _, err := fs.GC(ctx, core.GCOptions{IgnoreDelay: true}); err != nil {
		t.Fatal(err)
	}
	_, err = fs.GetAttr(ctx, t2.Ino)
	is(t, err, syscall.ESTALE)
	rep, err := fs.Fsck(ctx, core.FsckOptions{})
	is(t, err, nil)
	if len(rep.Problems) > 0 || rep.UnreferencedBlocks > 0 {
		t.Fatalf("fsck: %v, %d unreferenced blocks", rep.Problems, rep.UnreferencedBlocks)
	}
	// Other users cannot create temporary files where they cannot create.
	home := mkdir(t, fs, root, core.RootIno, "home", 0o755)
	_, err = fs.CreateTemp(ctx, alice, home.Ino, 0o644)
	is(t, err, syscall.EACCES)

	// PublishWith sets the mtime and attributes with the name; the data
	// buffered until then commits with them.
	t3, err := fs.CreateTemp(ctx, alice, d, 0o644)
	is(t, err, nil)
	write(t, fs, alice, t3.Ino, 0, []byte("with attributes"), core.Unstable)
	mtime := time.Unix(1700000000, 123456789)
	pub, err = fs.PublishWith(ctx, alice, t3.Ino, d, "key", core.PublishOptions{
		Mtime:  mtime,
		Xattrs: map[string][]byte{"user.etag": []byte("e1"), core.ProtocolXattrPrefix + "s3.meta": []byte("m")},
	})
	is(t, err, nil)
	if !pub.Mtime.Equal(mtime) || pub.Size != uint64(len("with attributes")) {
		t.Fatalf("published attrs: mtime %v size %d", pub.Mtime, pub.Size)
	}
	if a, err := fs.GetAttr(ctx, t3.Ino); err != nil || !a.Mtime.Equal(mtime) || a.Size != pub.Size {
		t.Fatalf("attrs after publishing: %+v, %v", a, err)
	}
	for name, want := range map[string]string{"user.etag": "e1", core.ProtocolXattrPrefix + "s3.meta": "m"} {
		got, err := fs.GetXattrs(ctx, root, t3.Ino, name)
		if err != nil || string(got[name]) != want {
			t.Fatalf("attribute %s after publishing: %q, %v", name, got, err)
		}
	}
	if string(read(t, fs, alice, t3.Ino, 0, 100)) != "with attributes" {
		t.Fatal("published data")
	}
	// Too many attributes for the publishing transaction: refused, and
	// the file stays unnamed.
	t4, err := fs.CreateTemp(ctx, alice, d, 0o644)
	is(t, err, nil)
	many := map[string][]byte{}
	for i := range 40 {
		many[fmt.Sprint("user.a", i)] = []byte("v")
	}
	_, err = fs.PublishWith(ctx, alice, t4.Ino, d, "other", core.PublishOptions{Xattrs: many})
	is(t, err, syscall.E2BIG)
	_, err = fs.Lookup(ctx, alice, d, "other")
	is(t, err, syscall.ENOENT)

	// PublishData creates a small file whole, over an existing name, with
	// its owner, mtime and attributes, in one transaction.
	owner, group := uint32(4242), uint32(4343)
	small, err := fs.PublishData(ctx, alice, d, "key", core.NewFileData{Mode: 0o640, UID: &owner, GID: &group, Data: []byte("small object")},
		core.PublishOptions{Mtime: mtime, Xattrs: map[string][]byte{"user.etag": []byte("e2")}})
	is(t, err, nil)
	if small.Ino == t3.Ino || small.UID != owner || small.GID != group || small.Size != 12 || !small.Mtime.Equal(mtime) || small.Nlink != 1 {
		t.Fatalf("PublishData attrs: %+v", small)
	}
	if l, err := fs.Lookup(ctx, alice, d, "key"); err != nil || l.Ino != small.Ino {
		t.Fatalf("the name does not reach the file PublishData made: %+v, %v", l, err)
	}
	if got := read(t, fs, root, small.Ino, 0, 100); string(got) != "small object" {
		t.Fatalf("PublishData file reads %q", got)
	}
	if got, err := fs.GetXattrs(ctx, root, small.Ino, "user.etag"); err != nil || string(got["user.etag"]) != "e2" {
		t.Fatalf("PublishData attribute: %q, %v", got, err)
	}
	_, err = fs.GetAttr(ctx, t3.Ino)
	is(t, err, syscall.ESTALE) // the file it replaced
	empty, err := fs.PublishData(ctx, alice, d, "empty", core.NewFileData{Mode: 0o644}, core.PublishOptions{})
	is(t, err, nil)
	if empty.Size != 0 || len(read(t, fs, alice, empty.Ino, 0, 10)) != 0 {
		t.Fatalf("empty PublishData file: %+v", empty)
	}
	_, err = fs.PublishData(ctx, alice, d, "sub", core.NewFileData{Mode: 0o644, Data: []byte("x")}, core.PublishOptions{})
	is(t, err, syscall.EISDIR)
	_, err = fs.PublishData(ctx, alice, d, "big", core.NewFileData{Mode: 0o644, Data: make([]byte, 1<<20)}, core.PublishOptions{})
	is(t, err, syscall.EFBIG)
	_, err = fs.PublishData(ctx, alice, home.Ino, "denied", core.NewFileData{Mode: 0o644, Data: []byte("x")}, core.PublishOptions{})
	is(t, err, syscall.EACCES)
	rep, err = fs.Fsck(ctx, core.FsckOptions{})
	is(t, err, nil)
	if len(rep.Problems) > 0 {
		t.Fatalf("fsck after PublishData: %v", rep.Problems)
	}
	found := false
	report, err := fs.QuotaReport(ctx)
	is(t, err, nil)
	for _, e := range report {
		if e.Kind == "user" && e.ID == owner {
			found = e.Usage.Inodes == 1 && e.Usage.Bytes == 12
		}
	}
	if !found {
		t.Fatalf("PublishData did not charge its owner 1 inode and 12 bytes: %+v", report)
	}
}

func testReadDirNames(t *testing.T, open Opener) {
	fs := open(t, core.Options{})
	ctx := context.Background()
	d := publicDir(t, fs, "d")
	want := []string{"a", "a-b", "a.c", "a0", "b", "z", "\xc3\xa9"}
	for i := len(want) - 1; i >= 0; i-- {
		create(t, fs, root, d, want[i], 0o644)
	}
	var got []string
	after := ""
	for {
		es, more, err := fs.ReadDirNames(ctx, root, d, after, 2, true)
		is(t, err, nil)
		for _, e := range es {
			if e.Attr == nil {
				t.Fatal("no attributes")
			}
			got = append(got, e.Name)
			after = e.Name
		}
		if !more {
			break
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("names %q, want byte order %q", got, want)
	}
	es, more, err := fs.ReadDirNames(ctx, root, d, "a.c", 100, false)
	is(t, err, nil)
	if more || len(es) != 4 || es[0].Name != "a0" {
		t.Fatalf("resumed after a.c: %v more=%v", es, more)
	}
	// ReadDirNamesXattr brings one attribute of each entry, nil where absent.
	b, err := fs.Lookup(ctx, root, d, "b")
	is(t, err, nil)
	is(t, fs.UpdateXattrs(ctx, root, b.Ino, map[string][]byte{"user.tag": []byte("bee")}, nil), nil)
	es, _, err = fs.ReadDirNamesXattr(ctx, root, d, "a0", 2, "user.tag")
	is(t, err, nil)
	if len(es) != 2 || es[0].Name != "b" || string(es[0].Xattr) != "bee" || es[0].Attr == nil ||
		es[1].Name != "z" || es[1].Xattr != nil {
		t.Fatalf("entries with user.tag after a0: %+v", es)
	}
}

func testProtocolXattrs(t *testing.T, open Opener) {
	fs := open(t, core.Options{})
	ctx := context.Background()
	d := publicDir(t, fs, "d")
	f := create(t, fs, alice, d, "obj", 0o644)
	is(t, fs.UpdateXattrs(ctx, alice, f.Ino, map[string][]byte{
		"cfs.s3.etag": []byte("abc"), "cfs.s3.meta.color": []byte("blue"), "user.x": []byte("1"),
	}, nil), nil)
	got, err := fs.GetXattrs(ctx, carol, f.Ino, "cfs.s3.")
	is(t, err, nil)
	if len(got) != 2 || string(got["cfs.s3.etag"]) != "abc" || string(got["cfs.s3.meta.color"]) != "blue" {
		t.Fatalf("protocol attributes %v", got)
	}
	// Protocol attributes are not listed to clients.
	list, err := fs.ListXattr(ctx, alice, f.Ino)
	is(t, err, nil)
	if fmt.Sprint(list) != "[user.x]" {
		t.Fatalf("listed %v", list)
	}
	// Writing them needs write permission.
	is(t, fs.UpdateXattrs(ctx, carol, f.Ino, map[string][]byte{"cfs.s3.etag": []byte("x")}, nil), syscall.EACCES)
	is(t, fs.UpdateXattrs(ctx, alice, f.Ino, nil, []string{"cfs.s3.meta.color"}), nil)
	got, _ = fs.GetXattrs(ctx, alice, f.Ino, "cfs.s3.")
	if len(got) != 1 {
		t.Fatalf("after remove: %v", got)
	}
}

func testCopyRange(t *testing.T, open Opener) {
	fs := open(t, core.Options{NoBackground: true, BlockDeleteDelay: time.Nanosecond})
	ctx := context.Background()
	d := publicDir(t, fs, "d")
	src := create(t, fs, alice, d, "src", 0o644)
	// Source data straddles a chunk boundary and has a hole.
	at := uint64(data.ChunkSize - 100<<10)
	a, b := randBytes(200<<10), randBytes(50<<10)
	write(t, fs, alice, src.Ino, at, a, core.FileSync)
	write(t, fs, alice, src.Ino, at+300<<10, b, core.Unstable) // buffered: copied too
	want := append(append(append([]byte(nil), a...), make([]byte, 100<<10)...), b...)

	dst, err := fs.CreateTemp(ctx, alice, d, 0o644)
	is(t, err, nil)
	write(t, fs, alice, dst.Ino, 0, []byte("head"), core.FileSync)
	is(t, fs.CopyRange(ctx, alice, src.Ino, at, dst.Ino, 4, uint64(len(want))), nil)
	is(t, fs.CopyRange(ctx, alice, src.Ino, at, dst.Ino, 4+uint64(len(want)), 1000), nil) // append again
	full := append(append([]byte("head"), want...), want[:1000]...)
	if got := read(t, fs, alice, dst.Ino, 0, len(full)+10); !bytes.Equal(got, full) {
		t.Fatalf("copied %d bytes, mismatch (want %d)", len(got), len(full))
	}
	if _, err := fs.Publish(ctx, alice, dst.Ino, d, "dst"); err != nil {
		t.Fatal(err)
	}
	// Changing or removing the source leaves the copy as it was.
	write(t, fs, alice, src.Ino, at, make([]byte, 200<<10), core.FileSync)
	is(t, fs.Remove(ctx, alice, d, "src"), nil)
	if _, err := fs.GC(ctx, core.GCOptions{IgnoreDelay: true}); err != nil {
		t.Fatal(err)
	}
	if got := read(t, fs, alice, dst.Ino, 0, len(full)+10); !bytes.Equal(got, full) {
		t.Fatal("the copy changed when its source did")
	}
	rep, err := fs.Fsck(ctx, core.FsckOptions{})
	is(t, err, nil)
	if len(rep.Problems) > 0 || rep.UnreferencedBlocks > 0 {
		t.Fatalf("fsck: %v, %d unreferenced blocks", rep.Problems, rep.UnreferencedBlocks)
	}
	// Permission and range checks.
	other := create(t, fs, alice, d, "private", 0o600)
	write(t, fs, alice, other.Ino, 0, []byte("secret"), core.FileSync)
	mine := create(t, fs, carol, d, "mine", 0o644)
	is(t, fs.CopyRange(ctx, carol, other.Ino, 0, mine.Ino, 0, 6), syscall.EACCES)
	is(t, fs.CopyRange(ctx, alice, other.Ino, 0, other.Ino, 2, 3), syscall.EINVAL)
	is(t, fs.CopyRange(ctx, alice, other.Ino, 0, dst.Ino, 0, 100), syscall.EINVAL)
}
