package nfs3

import (
	"fmt"
	"slices"
	"testing"

	"github.com/claudefs/cfs-gateway/internal/protocol/xdr/nfsv3"
)

// listAll reads a directory with READDIR replies of count bytes and
// returns the names in order, calling between after each reply but the
// last.
func listAll(t *testing.T, n nfs, dir []byte, count uint32, between func(call int)) []string {
	t.Helper()
	var names []string
	var cookie uint64
	var verf [8]byte
	for call := 0; ; call++ {
		if call > 10000 {
			t.Fatal("READDIR never reached eof")
		}
		res, ok := n.readdir(dir, cookie, verf, count).(*nfsv3.Readdir3res_NFS3_OK)
		if !ok {
			t.Fatal("READDIR failed")
		}
		size := readdirBase
		for e := res.Resok.Reply.Entries; e != nil; e = e.Nextentry {
			names = append(names, string(e.Name))
			cookie = e.Cookie
			size += entryFixed + pad4(len(e.Name))
		}
		if size > int(count) {
			t.Fatalf("READDIR reply of %d bytes over a count of %d", size, count)
		}
		verf = res.Resok.Cookieverf
		if res.Resok.Reply.Eof {
			return names
		}
		if res.Resok.Reply.Entries == nil {
			t.Fatal("READDIR returned no entry and no eof")
		}
		if between != nil {
			between(call)
		}
	}
}

func TestReaddirPagesWithoutSkipsOrRepeats(t *testing.T) {
	ts := startServer(t, openFS(t), openExport, nil)
	n := nfs{t, dial(t, ts.bound.NFS, 0, 0)}
	root := n.mount("/export")
	dir := n.mkdirOK(root, "d", 0o755)
	var want []string
	for i := 0; i < 120; i++ {
		// Names of every length modulo 4 exercise the padding.
		name := fmt.Sprintf("f%03d", i) + "-padding"[:i%8]
		n.createFile(dir, name, 0o644)
		want = append(want, name)
	}
	for _, count := range []uint32{200, 512, 4096, 65536} {
		t.Run(fmt.Sprint(count), func(t *testing.T) {
			got := listAll(t, n, dir, count, nil)
			if len(got) < 2 || got[0] != "." || got[1] != ".." {
				t.Fatalf("listing does not start with . and ..: %v", got[:min(3, len(got))])
			}
			got = got[2:]
			slices.Sort(got)
			sorted := slices.Clone(want)
			slices.Sort(sorted)
			if !slices.Equal(got, sorted) {
				t.Fatalf("listed %d names, want %d: %v", len(got), len(sorted), got)
			}
		})
	}
	// Entries that stay are listed exactly once while others come and go
	// between the calls.
	stay := map[string]bool{}
	for _, w := range want {
		stay[w] = true
	}
	got := listAll(t, n, dir, 300, func(call int) {
		victim := want[(call*7)%len(want)]
		if stay[victim] {
			n.remove(dir, victim)
			delete(stay, victim)
		}
		n.createFile(dir, fmt.Sprintf("new%03d", call), 0o644)
	})
	seen := map[string]int{}
	for _, g := range got {
		seen[g]++
	}
	for name := range stay {
		if seen[name] != 1 {
			t.Errorf("%s stayed in the directory and was listed %d times", name, seen[name])
		}
	}
	for name, c := range seen {
		if c > 1 {
			t.Errorf("%s listed %d times", name, c)
		}
	}
}

func TestReaddirErrors(t *testing.T) {
	ts := startServer(t, openFS(t), openExport, nil)
	n := nfs{t, dial(t, ts.bound.NFS, 0, 0)}
	root := n.mount("/export")
	dir := n.mkdirOK(root, "d", 0o755)
	fh := n.createFile(dir, "a-long-name-that-needs-room", 0o644)
	n.createFile(dir, "b", 0o644)
	first := n.readdir(dir, 0, [8]byte{}, 4096).(*nfsv3.Readdir3res_NFS3_OK)
	e := first.Resok.Reply.Entries.Nextentry.Nextentry // after "." and ".."
	for _, tc := range []struct {
		name   string
		dir    []byte
		cookie uint64
		verf   [8]byte
		count  uint32
		want   nfsv3.Nfsstat3
	}{
		{"wrong verifier", dir, e.Cookie, [8]byte{9, 9, 9}, 4096, nfsv3.NFS3ERR_BAD_COOKIE},
		{"wrong verifier after dot", dir, dotCookie, [8]byte{9, 9, 9}, 4096, nfsv3.NFS3ERR_BAD_COOKIE},
		{"right verifier", dir, e.Cookie, first.Resok.Cookieverf, 4096, nfsv3.NFS3_OK},
		{"no verifier", dir, e.Cookie, [8]byte{}, 4096, nfsv3.NFS3_OK},
		{"too small for one entry", dir, dotdotCookie, first.Resok.Cookieverf, readdirBase + 10, nfsv3.NFS3ERR_TOOSMALL},
		{"not a directory", fh, 0, [8]byte{}, 4096, nfsv3.NFS3ERR_NOTDIR},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := n.readdir(tc.dir, tc.cookie, tc.verf, tc.count).GetStatus(); got != tc.want {
				t.Errorf("READDIR = %s, want %s", StatusName(got), StatusName(tc.want))
			}
		})
	}
}

func TestReaddirplus(t *testing.T) {
	ts := startServer(t, openFS(t), openExport, nil)
	n := nfs{t, dial(t, ts.bound.NFS, 0, 0)}
	root := n.mount("/export")
	dir := n.mkdirOK(root, "d", 0o755)
	handles := map[string][]byte{}
	for i := 0; i < 40; i++ {
		name := fmt.Sprintf("entry%02d", i)
		handles[name] = n.createFile(dir, name, 0o600)
	}
	handles["."] = dir
	handles[".."] = root
	var cookie uint64
	var verf [8]byte
	seen := map[string]bool{}
	for calls := 0; ; calls++ {
		if calls > 1000 {
			t.Fatal("READDIRPLUS never reached eof")
		}
		res, ok := n.readdirplus(dir, cookie, verf, 256, 2048).(*nfsv3.Readdirplus3res_NFS3_OK)
		if !ok {
			t.Fatal("READDIRPLUS failed")
		}
		size := readdirBase
		for e := res.Resok.Reply.Entries; e != nil; e = e.Nextentry {
			name := string(e.Name)
			if seen[name] {
				t.Fatalf("%s listed twice", name)
			}
			seen[name] = true
			h, ok := e.NameHandle.(*nfsv3.PostOpFh3_TRUE)
			if !ok || string(h.Handle.Data) != string(handles[name]) {
				t.Errorf("%s: handle %x, want %x", name, h, handles[name])
			}
			a := fattr(t, e.NameAttributes)
			if name != "." && name != ".." && (a.Mode != 0o600 || a.Fileid != e.Fileid) {
				t.Errorf("%s: attributes %+v", name, a)
			}
			size += entryFixed + pad4(len(name)) + entryPlusExtra
			cookie = e.Cookie
		}
		if size > 2048 {
			t.Fatalf("READDIRPLUS reply of %d bytes over a maxcount of 2048", size)
		}
		verf = res.Resok.Cookieverf
		if res.Resok.Reply.Eof {
			break
		}
	}
	if len(seen) != len(handles) {
		t.Errorf("listed %d entries, want %d", len(seen), len(handles))
	}
}
