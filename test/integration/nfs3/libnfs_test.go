package nfs3_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/claudefs/cfs-gateway/internal/core"
	"github.com/claudefs/cfs-gateway/internal/protocol/nfs3"
	"github.com/claudefs/cfs-gateway/internal/protocol/oncrpc"
	"github.com/claudefs/cfs-gateway/internal/protocol/xdr/mountv3"
	"github.com/claudefs/cfs-gateway/internal/protocol/xdr/nfsv3"
)

// libnfs runs the libnfs-utils programs against a gateway, naming its
// ports in the URLs so that no port mapper is needed.
type libnfs struct {
	t      testing.TB
	g      *gateway
	export string
	// uid and gid, when set, are the AUTH_SYS identity libnfs sends.
	uid, gid string
}

func newLibnfs(t testing.TB, g *gateway, export string) *libnfs {
	needTool(t, "nfs-ls", "libnfs-utils")
	needTool(t, "nfs-cp", "libnfs-utils")
	needTool(t, "nfs-cat", "libnfs-utils")
	return &libnfs{t: t, g: g, export: export}
}

func (l *libnfs) url(p string) string {
	q := url.Values{}
	q.Set("nfsport", fmt.Sprint(l.g.nfsPort()))
	q.Set("mountport", fmt.Sprint(l.g.mountPort()))
	if l.uid != "" {
		q.Set("uid", l.uid)
		q.Set("gid", l.gid)
	}
	u := "nfs://127.0.0.1" + l.export
	if p != "" {
		u += "/" + strings.TrimPrefix(p, "/")
	}
	// libnfs parses the arguments itself and wants them unescaped.
	return u + "?" + strings.ReplaceAll(q.Encode(), "%2F", "/")
}

// run runs one libnfs-utils program with a time limit.
func (l *libnfs) run(name string, args ...string) (string, error) {
	l.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return string(out), err
}

func (l *libnfs) must(name string, args ...string) string {
	l.t.Helper()
	out, err := l.run(name, args...)
	if err != nil {
		l.t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

// lsEntry is one line of nfs-ls output.
type lsEntry struct {
	mode, nlink, uid, gid, size, name string
}

// lsLine is a line of nfs-ls: mode, links, uid, gid, size and the name,
// which may hold spaces.
var lsLine = regexp.MustCompile(`^(\S+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+) (.*)$`)

func (l *libnfs) ls(recursive bool, p string) map[string]lsEntry {
	l.t.Helper()
	args := []string{l.url(p)}
	if recursive {
		args = append([]string{"-R"}, args...)
	}
	out := l.must("nfs-ls", args...)
	entries := map[string]lsEntry{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := lsLine.FindStringSubmatch(line)
		if f == nil {
			continue
		}
		entries[f[6]] = lsEntry{mode: f[1], nlink: f[2], uid: f[3], gid: f[4], size: f[5], name: f[6]}
	}
	return entries
}

func TestLibnfsTreeRoundTrip(t *testing.T) {
	g := startGateway(t, []nfs3.Export{{Name: "/export", Path: "/"}}, nil)
	l := newLibnfs(t, g, "/export")
	want := sampleTree(t)
	src := t.TempDir()
	// libnfs-utils cannot make directories: the Go client does.
	v := goMount(t, g, "/export", 0, 0)
	for _, p := range want.sortedPaths() {
		if want[p] == nil {
			if _, err := v.Mkdir(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		local := filepath.Join(src, strings.ReplaceAll(p, "/", "_"))
		if err := os.WriteFile(local, want[p], 0o644); err != nil {
			t.Fatal(err)
		}
		l.must("nfs-cp", local, l.url(p))
	}
	listed := l.ls(true, "")
	var names []string
	for n := range listed {
		names = append(names, n)
	}
	sort.Strings(names)
	if got, wantNames := strings.Join(names, "|"), strings.Join(want.sortedPaths(), "|"); got != wantNames {
		t.Errorf("nfs-ls -R lists\n%s\nwant\n%s", got, wantNames)
	}
	for p, e := range listed {
		if want[p] != nil && e.size != fmt.Sprint(len(want[p])) {
			t.Errorf("nfs-ls size of %s = %s, want %d", p, e.size, len(want[p]))
		}
	}
	dst := t.TempDir()
	got := tree{}
	for _, p := range want.sortedPaths() {
		if want[p] == nil {
			got[p] = nil
			continue
		}
		local := filepath.Join(dst, strings.ReplaceAll(p, "/", "_"))
		l.must("nfs-cp", l.url(p), local)
		b, err := os.ReadFile(local)
		if err != nil {
			t.Fatal(err)
		}
		got[p] = b
	}
	compareTrees(t, got, want)
	// nfs-cat streams the same bytes.
	if out := l.must("nfs-cat", l.url("c/ünïcode név")); out != string(want["c/ünïcode név"]) {
		t.Errorf("nfs-cat = %q", out)
	}
}

func TestLibnfsLargeFile(t *testing.T) {
	if testing.Short() {
		t.Skip("large file in -short mode")
	}
	g := startGateway(t, []nfs3.Export{{Name: "/export", Path: "/"}}, nil)
	l := newLibnfs(t, g, "/export")
	data := randomBytes(t, 96<<20+777)
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in"), filepath.Join(dir, "out")
	if err := os.WriteFile(in, data, 0o644); err != nil {
		t.Fatal(err)
	}
	l.must("nfs-cp", in, l.url("big"))
	if e := l.ls(false, "")["big"]; e.size != fmt.Sprint(len(data)) {
		t.Fatalf("nfs-ls size %q, want %d", e.size, len(data))
	}
	l.must("nfs-cp", l.url("big"), out)
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if sha256.Sum256(got) != sha256.Sum256(data) {
		t.Fatalf("copied out %d bytes that differ from the %d copied in", len(got), len(data))
	}
}

// linkRPC makes a hard link with a LINK call: libnfs-utils cannot.
func linkRPC(t testing.TB, g *gateway, export, file, dir, name string) {
	t.Helper()
	cred, _ := oncrpc.SysCredential{MachineName: "test"}.Credential()
	c, err := oncrpc.Dial(context.Background(), "tcp", g.bound.NFS.String(), oncrpc.WithCredential(cred))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	var mnt mountv3.Mountres3
	err = c.Call(ctx, mountv3.MOUNT_PROGRAM, mountv3.MOUNT_V3, mountv3.MOUNTPROC3_MNT, rawDirpath(export), readInto(&mnt, mountv3.ReadMountres3))
	if err != nil {
		t.Fatal(err)
	}
	root := mnt.(*mountv3.Mountres3_MNT3_OK).Mountinfo.Fhandle
	lookup := func(dir []byte, p string) []byte {
		for _, name := range strings.Split(p, "/") {
			if name == "" {
				continue
			}
			var res nfsv3.Lookup3res
			err := c.Call(ctx, nfsv3.NFS_PROGRAM, nfsv3.NFS_V3, nfsv3.NFSPROC3_LOOKUP,
				&nfsv3.Lookup3args{What: nfsv3.Diropargs3{Dir: nfsv3.NfsFh3{Data: dir}, Name: []byte(name)}}, readInto(&res, nfsv3.ReadLookup3res))
			if err != nil {
				t.Fatal(err)
			}
			ok, isOK := res.(*nfsv3.Lookup3res_NFS3_OK)
			if !isOK {
				t.Fatalf("LOOKUP %s: %s", name, nfs3.StatusName(res.GetStatus()))
			}
			dir = ok.Resok.Object.Data
		}
		return dir
	}
	var res nfsv3.Link3res
	err = c.Call(ctx, nfsv3.NFS_PROGRAM, nfsv3.NFS_V3, nfsv3.NFSPROC3_LINK, &nfsv3.Link3args{
		File: nfsv3.NfsFh3{Data: lookup(root, file)},
		Link: nfsv3.Diropargs3{Dir: nfsv3.NfsFh3{Data: lookup(root, dir)}, Name: []byte(name)},
	}, readInto(&res, nfsv3.ReadLink3res))
	if err != nil || res.GetStatus() != nfsv3.NFS3_OK {
		t.Fatalf("LINK: %v %v", err, res)
	}
}

type rawDirpath string

func (d rawDirpath) WriteTo(w io.Writer) (int64, error) { return mountv3.WriteDirpath(w, []byte(d)) }

func readInto[T any](dst *T, read func(io.Reader) (T, int64, error)) io.ReaderFrom {
	return oncrpc.ReaderFromFunc(func(r io.Reader) (int64, error) {
		v, n, err := read(r)
		*dst = v
		return n, err
	})
}

func TestLibnfsLinksAndRenames(t *testing.T) {
	g := startGateway(t, []nfs3.Export{{Name: "/export", Path: "/"}}, nil)
	l := newLibnfs(t, g, "/export")
	v := goMount(t, g, "/export", 0, 0)
	if _, err := v.Mkdir("d", 0o755); err != nil {
		t.Fatal(err)
	}
	local := filepath.Join(t.TempDir(), "f")
	content := []byte("shared by two names\n")
	if err := os.WriteFile(local, content, 0o644); err != nil {
		t.Fatal(err)
	}
	l.must("nfs-cp", local, l.url("d/f"))
	linkRPC(t, g, "/export", "d/f", "", "hard")
	if err := v.Symlink("f", "d/sym"); err != nil {
		t.Fatal(err)
	}
	ls := l.ls(true, "")
	if ls["hard"].nlink != "2" || ls["d/f"].nlink != "2" {
		t.Errorf("link counts after LINK: hard %q, d/f %q, want 2", ls["hard"].nlink, ls["d/f"].nlink)
	}
	if !strings.HasPrefix(ls["d/sym"].mode, "l") || ls["d/sym"].size != "1" {
		t.Errorf("symlink listed as %+v", ls["d/sym"])
	}
	for _, p := range []string{"hard", "d/sym"} {
		if out := l.must("nfs-cat", l.url(p)); out != string(content) {
			t.Errorf("nfs-cat %s = %q, want the linked file's content", p, out)
		}
	}
	// Renaming one name keeps the other and the bytes.
	if err := v.Rename("d/f", "renamed"); err != nil {
		t.Fatal(err)
	}
	ls = l.ls(true, "")
	if _, ok := ls["d/f"]; ok {
		t.Error("old name still listed after rename")
	}
	if ls["renamed"].nlink != "2" {
		t.Errorf("renamed file listed as %+v", ls["renamed"])
	}
	if out := l.must("nfs-cat", l.url("renamed")); out != string(content) {
		t.Errorf("nfs-cat after rename = %q", out)
	}
	// The symlink named the old name: it dangles now.
	if out, err := l.run("nfs-cat", l.url("d/sym")); err == nil {
		t.Errorf("nfs-cat through a dangling symlink succeeded: %q", out)
	}
}

func TestLibnfsRootSquash(t *testing.T) {
	g := startGateway(t, []nfs3.Export{{Name: "/export", Path: "/", RootSquash: true, AnonUID: 65534, AnonGID: 65534}}, nil)
	ctx := context.Background()
	if _, err := g.fs.Mkdir(ctx, &core.Root, core.RootIno, "rootonly", 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := g.fs.Mkdir(ctx, &core.Root, core.RootIno, "open", 0o777); err != nil {
		t.Fatal(err)
	}
	if _, _, err := g.fs.Create(ctx, &core.Root, core.RootIno, "secret", 0o600, core.CreateGuarded, 0); err != nil {
		t.Fatal(err)
	}
	l := newLibnfs(t, g, "/export")
	l.uid, l.gid = "0", "0"
	local := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(local, []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := l.run("nfs-cp", local, l.url("rootonly/f"))
	if err == nil || !strings.Contains(out, "NFS3ERR_ACCES") {
		t.Errorf("squashed root copying into root's directory: %v\n%s", err, out)
	}
	out, err = l.run("nfs-cat", l.url("secret"))
	if err == nil || !strings.Contains(out, "ACCES") {
		t.Errorf("squashed root reading root's 0600 file: %v\n%s", err, out)
	}
	l.must("nfs-cp", local, l.url("open/f"))
	if e := l.ls(false, "open")["f"]; e.uid != "65534" || e.gid != "65534" {
		t.Errorf("file copied in by squashed root listed as %+v, want owner 65534:65534", e)
	}
}

func TestLibnfsDeniedClient(t *testing.T) {
	g := startGateway(t, []nfs3.Export{{Name: "/export", Path: "/", AllowedClients: []string{"127.0.0.10", "192.168.1.1"}}}, nil)
	l := newLibnfs(t, g, "/export")
	out, err := l.run("nfs-ls", l.url(""))
	if err == nil || !strings.Contains(out, "MNT3ERR_ACCES") {
		t.Fatalf("nfs-ls from a client not in allowed_clients: %v\n%s", err, out)
	}
}

// TestLibnfsReadOnly: a read-only export lists and reads but refuses
// writes with NFS3ERR_ROFS.
func TestLibnfsReadOnly(t *testing.T) {
	g := startGateway(t, []nfs3.Export{{Name: "/export", Path: "/", ReadOnly: true}}, nil)
	ctx := context.Background()
	a, _, err := g.fs.Create(ctx, &core.Root, core.RootIno, "f", 0o644, core.CreateGuarded, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.fs.Write(ctx, &core.Root, a.Ino, 0, []byte("read me"), core.FileSync); err != nil {
		t.Fatal(err)
	}
	l := newLibnfs(t, g, "/export")
	if out := l.must("nfs-cat", l.url("f")); out != "read me" {
		t.Errorf("nfs-cat = %q", out)
	}
	local := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(local, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := l.run("nfs-cp", local, l.url("g"))
	if err == nil || !strings.Contains(out, "ROFS") {
		t.Errorf("nfs-cp to a read-only export: %v\n%s", err, out)
	}
	if !bytes.Contains([]byte(l.must("nfs-ls", l.url(""))), []byte(" f")) {
		t.Error("nfs-ls of a read-only export does not list its file")
	}
}
