package nfs3_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"testing"

	nfsc "github.com/willscott/go-nfs-client/nfs"
	"github.com/willscott/go-nfs-client/nfs/rpc"

	"github.com/claudefs/cfs-gateway/internal/core"
	"github.com/claudefs/cfs-gateway/internal/protocol/nfs3"
)

// goMount mounts export through the NFS port alone (the Go client sends
// MOUNT and NFS over one connection) as uid and gid.
func goMount(t testing.TB, g *gateway, export string, uid, gid uint32) *nfsc.Target {
	t.Helper()
	c, err := nfsc.DialServiceAtPort("127.0.0.1", g.nfsPort())
	if err != nil {
		t.Fatal(err)
	}
	m := &nfsc.Mount{Client: c}
	v, err := m.Mount(export, rpc.NewAuthUnix("goclient", uid, gid).Auth())
	if err != nil {
		c.Close()
		t.Fatalf("mount %s: %v", export, err)
	}
	t.Cleanup(func() { c.Close() })
	return v
}

func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// nfsLnk is ftype3 NF3LNK, which the Go client reports only as a number.
const nfsLnk = 5

// tree is a directory tree: path -> content, with directories as nil.
type tree map[string][]byte

func sampleTree(t testing.TB) tree {
	return tree{
		"a":             nil,
		"a/b":           nil,
		"a/b/deep":      nil,
		"c":             nil,
		"empty":         {},
		"one":           {'x'},
		"a/page":        randomBytes(t, 4097),
		"a/b/mib":       randomBytes(t, 1<<20+3),
		"a/b/deep/3mib": randomBytes(t, 3<<20),
		"c/ünïcode név": []byte("names are bytes\n"),
	}
}

func (tr tree) sortedPaths() []string {
	var out []string
	for p := range tr {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

func writeGo(t testing.TB, v *nfsc.Target, p string, data []byte) {
	t.Helper()
	f, err := v.OpenFile(p, 0o644)
	if err != nil {
		t.Fatalf("open %s: %v", p, err)
	}
	if n, err := f.Write(data); err != nil || n != len(data) {
		t.Fatalf("write %s: %d bytes, %v", p, n, err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("close %s: %v", p, err)
	}
}

func readGo(t testing.TB, v *nfsc.Target, p string) []byte {
	t.Helper()
	f, err := v.Open(p)
	if err != nil {
		t.Fatalf("open %s: %v", p, err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatalf("read %s: %v", p, err)
	}
	return b
}

// readTreeGo lists dir recursively with READDIRPLUS and reads every file.
func readTreeGo(t testing.TB, v *nfsc.Target, dir string, into tree) {
	t.Helper()
	entries, err := v.ReadDirPlus(dir)
	if err != nil {
		t.Fatalf("readdirplus %s: %v", dir, err)
	}
	for _, e := range entries {
		p := path.Join(dir, e.Name())
		rel := strings.TrimPrefix(p, "/")
		switch {
		case e.IsDir():
			into[rel] = nil
			readTreeGo(t, v, p, into)
		case e.Attr.Attr.Type == nfsLnk:
			into[rel] = []byte("-> symlink")
		default:
			into[rel] = readGo(t, v, p)
		}
	}
}

func TestGoClientTreeRoundTrip(t *testing.T) {
	g := startGateway(t, []nfs3.Export{{Name: "/export", Path: "/"}}, nil)
	v := goMount(t, g, "/export", 0, 0)
	want := sampleTree(t)
	for _, p := range want.sortedPaths() {
		if want[p] == nil {
			if _, err := v.Mkdir(p, 0o755); err != nil {
				t.Fatalf("mkdir %s: %v", p, err)
			}
			continue
		}
		writeGo(t, v, p, want[p])
	}
	got := tree{}
	readTreeGo(t, v, "/", got)
	compareTrees(t, got, want)

	// Rename across directories keeps the bytes; the old name is gone.
	if err := v.Rename("a/b/mib", "c/moved"); err != nil {
		t.Fatalf("rename: %v", err)
	}
	if _, _, err := v.Lookup("a/b/mib"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lookup of the old name after rename: %v, want not exist", err)
	}
	if b := readGo(t, v, "c/moved"); !bytes.Equal(b, want["a/b/mib"]) {
		t.Error("renamed file's content changed")
	}
	// A symlink reads back as one, with its target.
	if err := v.Symlink("../one", "c/link"); err != nil {
		t.Fatalf("symlink: %v", err)
	}
	fi, _, err := v.Lookup("c/link")
	if err != nil || fi.(*nfsc.Fattr).Type != nfsLnk {
		t.Fatalf("lookup of a symlink: %+v %v", fi, err)
	}
	f, err := v.Open("c/link")
	if err != nil {
		t.Fatal(err)
	}
	target, err := f.Readlink()
	f.Close()
	if err != nil || target != "../one" {
		t.Errorf("readlink = %q, %v", target, err)
	}
	// Removing a tree leaves nothing of it.
	if err := v.RemoveAll("a"); err != nil {
		t.Fatalf("remove a tree: %v", err)
	}
	if _, _, err := v.Lookup("a"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lookup after RemoveAll: %v", err)
	}
}

func compareTrees(t testing.TB, got, want tree) {
	t.Helper()
	for _, p := range want.sortedPaths() {
		g, ok := got[p]
		switch {
		case !ok:
			t.Errorf("%s missing", p)
		case (want[p] == nil) != (g == nil):
			t.Errorf("%s: directory/file mismatch", p)
		case !bytes.Equal(g, want[p]):
			t.Errorf("%s: %d bytes differ from the %d written", p, len(g), len(want[p]))
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("%s is there but was never written", p)
		}
	}
}

func TestGoClientLargeFile(t *testing.T) {
	if testing.Short() {
		t.Skip("large file in -short mode")
	}
	g := startGateway(t, []nfs3.Export{{Name: "/export", Path: "/"}}, nil)
	v := goMount(t, g, "/export", 0, 0)
	data := randomBytes(t, 48<<20+12345)
	writeGo(t, v, "big", data)
	got := readGo(t, v, "big")
	if sha256.Sum256(got) != sha256.Sum256(data) {
		t.Fatalf("read back %d bytes that differ from the %d written", len(got), len(data))
	}
}

func TestGoClientRootSquash(t *testing.T) {
	g := startGateway(t, []nfs3.Export{{Name: "/export", Path: "/", RootSquash: true, AnonUID: 65534, AnonGID: 65534}}, nil)
	ctx := context.Background()
	if _, err := g.fs.Mkdir(ctx, &core.Root, core.RootIno, "open", 0o777); err != nil {
		t.Fatal(err)
	}
	v := goMount(t, g, "/export", 0, 0)
	_, err := v.Mkdir("denied", 0o755)
	var nerr *nfsc.Error
	if !errors.As(err, &nerr) || nerr.ErrorNum != nfsc.NFS3ErrAcces {
		t.Fatalf("squashed root creating in root's directory: %v, want NFS3ERR_ACCES", err)
	}
	writeGo(t, v, "open/f", []byte("as nobody"))
	fi, _, err := v.Lookup("open/f")
	if err != nil {
		t.Fatal(err)
	}
	if attr := fi.(*nfsc.Fattr); attr.UID != 65534 || attr.GID != 65534 {
		t.Errorf("file made by squashed root owned by %d:%d, want 65534:65534", attr.UID, attr.GID)
	}
}

func TestGoClientDeniedClient(t *testing.T) {
	g := startGateway(t, []nfs3.Export{{Name: "/export", Path: "/", AllowedClients: []string{"127.0.0.10", "10.0.0.0/8"}}}, nil)
	c, err := nfsc.DialServiceAtPort("127.0.0.1", g.nfsPort())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = (&nfsc.Mount{Client: c}).Mount("/export", rpc.NewAuthUnix("goclient", 0, 0).Auth())
	if err == nil || !strings.Contains(err.Error(), "MNT3ERR_ACCES") {
		t.Fatalf("mount from a client not in allowed_clients: %v, want MNT3ERR_ACCES", err)
	}
}
