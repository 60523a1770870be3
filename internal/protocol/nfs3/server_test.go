package nfs3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/claudefs/cfs-gateway/internal/core"
	"github.com/claudefs/cfs-gateway/internal/metrics"
	"github.com/claudefs/cfs-gateway/internal/protocol/oncrpc"
	"github.com/claudefs/cfs-gateway/internal/protocol/xdr/mountv3"
	"github.com/claudefs/cfs-gateway/internal/protocol/xdr/nfsv3"
)

var openExport = []Export{{Name: "/export", Path: "/", AnonUID: 65534, AnonGID: 65534}}

func TestMountAndGetattr(t *testing.T) {
	ts := startServer(t, openFS(t), openExport, nil)
	for _, addr := range []struct {
		name string
		addr string
	}{{"nfs port", ts.bound.NFS.String()}, {"mount port", ts.bound.Mount.String()}} {
		t.Run(addr.name, func(t *testing.T) {
			c := dial(t, ts.bound.NFS, 0, 0)
			if addr.addr == ts.bound.Mount.String() {
				c = dial(t, ts.bound.Mount, 0, 0)
			}
			root := nfs{t, c}.mount("/export")
			if len(root) != HandleSize {
				t.Fatalf("handle of %d bytes, want %d", len(root), HandleSize)
			}
			n := nfs{t, dial(t, ts.bound.NFS, 0, 0)}
			res, ok := n.getattr(root).(*nfsv3.Getattr3res_NFS3_OK)
			if !ok {
				t.Fatal("GETATTR of the export root failed")
			}
			if res.Resok.ObjAttributes.Type != nfsv3.NF3DIR || res.Resok.ObjAttributes.Fileid != uint64(core.RootIno) {
				t.Errorf("root attributes %+v", res.Resok.ObjAttributes)
			}
		})
	}
}

func TestMountStatuses(t *testing.T) {
	fsys := openFS(t)
	ctx := context.Background()
	if _, err := fsys.Mkdir(ctx, &core.Root, core.RootIno, "private", 0o700); err != nil {
		t.Fatal(err)
	}
	if _, _, err := fsys.Create(ctx, &core.Root, core.RootIno, "file", 0o644, core.CreateGuarded, 0); err != nil {
		t.Fatal(err)
	}
	exports := []Export{
		{Name: "/export", Path: "/", AnonUID: 65534, AnonGID: 65534},
		{Name: "/denied", Path: "/", AllowedClients: []string{"10.0.0.1"}},
		{Name: "/missing", Path: "/no/such/dir"},
	}
	ts := startServer(t, fsys, exports, nil)
	for _, tc := range []struct {
		path string
		uid  uint32
		want mountv3.Mountstat3
	}{
		{"/export", 1000, mountv3.MNT3_OK},
		{"/export/", 1000, mountv3.MNT3_OK},
		{"/export/private", 0, mountv3.MNT3_OK},
		{"/export/private", 1000, mountv3.MNT3ERR_ACCES},
		{"/export/file", 0, mountv3.MNT3ERR_NOTDIR},
		{"/export/nothing", 0, mountv3.MNT3ERR_NOENT},
		{"/other", 0, mountv3.MNT3ERR_NOENT},
		{"relative", 0, mountv3.MNT3ERR_NOENT},
		{"/denied", 0, mountv3.MNT3ERR_ACCES},
		{"/missing", 0, mountv3.MNT3ERR_NOENT},
	} {
		t.Run(fmt.Sprintf("%s as %d", tc.path, tc.uid), func(t *testing.T) {
			c := dial(t, ts.bound.Mount, tc.uid, tc.uid)
			res := call(t, c, mountv3.MOUNT_PROGRAM, mountv3.MOUNT_V3, mountv3.MOUNTPROC3_MNT, dirpath(tc.path), mountv3.ReadMountres3)
			if got := res.GetFhsStatus(); got != tc.want {
				t.Errorf("MNT %s = %v, want %v", tc.path, got, tc.want)
			}
		})
	}
}

// TestRootSquashMount: /export/private is root's 0700 directory; root's
// subdirectory mount goes through root_squash like every other access.
func TestRootSquashMount(t *testing.T) {
	fsys := openFS(t)
	if _, err := fsys.Mkdir(context.Background(), &core.Root, core.RootIno, "private", 0o700); err != nil {
		t.Fatal(err)
	}
	exports := []Export{{Name: "/export", Path: "/", RootSquash: true, AnonUID: 65534, AnonGID: 65534}}
	ts := startServer(t, fsys, exports, nil)
	c := dial(t, ts.bound.Mount, 0, 0)
	res := call(t, c, mountv3.MOUNT_PROGRAM, mountv3.MOUNT_V3, mountv3.MOUNTPROC3_MNT, dirpath("/export/private"), mountv3.ReadMountres3)
	if res.GetFhsStatus() != mountv3.MNT3ERR_ACCES {
		t.Fatalf("squashed root mounting a 0700 directory: %v, want MNT3ERR_ACCES", res.GetFhsStatus())
	}
}

func TestExportAndDump(t *testing.T) {
	exports := []Export{
		{Name: "/a", Path: "/"},
		{Name: "/b", Path: "/", AllowedClients: []string{"127.0.0.1", "10.0.0.0/8"}},
	}
	ts := startServer(t, openFS(t), exports, nil)
	c := dial(t, ts.bound.Mount, 0, 0)
	list := call(t, c, mountv3.MOUNT_PROGRAM, mountv3.MOUNT_V3, mountv3.MOUNTPROC3_EXPORT, nil, mountv3.ReadExports)
	var got []string
	for e := list; e != nil; e = e.ExNext {
		var groups []string
		for g := e.ExGroups; g != nil; g = g.GrNext {
			groups = append(groups, g.GrName)
		}
		got = append(got, string(e.ExDir)+"="+strings.Join(groups, ","))
	}
	if want := "/a= /b=127.0.0.1,10.0.0.0/8"; strings.Join(got, " ") != want {
		t.Errorf("EXPORT = %q, want %q", strings.Join(got, " "), want)
	}
	nfs{t, c}.mount("/b")
	dump := call(t, c, mountv3.MOUNT_PROGRAM, mountv3.MOUNT_V3, mountv3.MOUNTPROC3_DUMP, nil, mountv3.ReadMountlist)
	if dump == nil || dump.MlHostname != "127.0.0.1" || string(dump.MlDirectory) != "/b" || dump.MlNext != nil {
		t.Fatalf("DUMP after one mount = %+v", dump)
	}
	call(t, c, mountv3.MOUNT_PROGRAM, mountv3.MOUNT_V3, mountv3.MOUNTPROC3_UMNT, dirpath("/b"), readVoid)
	if dump := call(t, c, mountv3.MOUNT_PROGRAM, mountv3.MOUNT_V3, mountv3.MOUNTPROC3_DUMP, nil, mountv3.ReadMountlist); dump != nil {
		t.Fatalf("DUMP after UMNT = %+v", dump)
	}
}

func readVoid(r io.Reader) (struct{}, int64, error) {
	return struct{}{}, 0, nil
}

func TestCreateWriteReadCommit(t *testing.T) {
	ts := startServer(t, openFS(t), openExport, nil)
	n := nfs{t, dial(t, ts.bound.NFS, 1000, 1000)}
	root := n.mount("/export")
	// The root is root's 0755 directory: make one for the user.
	rootC := nfs{t, dial(t, ts.bound.NFS, 0, 0)}
	dir := rootC.mkdirOK(root, "home", 0o777)

	fh := n.createFile(dir, "f", 0o640)
	data := bytes.Repeat([]byte("0123456789abcdef"), 8192)
	w, ok := n.write(fh, 0, data, nfsv3.UNSTABLE).(*nfsv3.Write3res_NFS3_OK)
	if !ok {
		t.Fatal("unstable WRITE failed")
	}
	if w.Resok.Committed != nfsv3.UNSTABLE || w.Resok.Count != uint32(len(data)) || w.Resok.Verf != ts.fs.WriteVerifier() {
		t.Errorf("WRITE result %+v", w.Resok)
	}
	before, ok := w.Resok.FileWcc.Before.(*nfsv3.PreOpAttr_TRUE)
	if !ok || before.Attributes.Size != 0 {
		t.Errorf("WRITE pre-op attributes %+v, want size 0", w.Resok.FileWcc.Before)
	}
	if after := fattr(t, w.Resok.FileWcc.After); after.Size != uint64(len(data)) {
		t.Errorf("WRITE post-op size %d, want %d", after.Size, len(data))
	}
	commit := call(t, n.c, nfsv3.NFS_PROGRAM, nfsv3.NFS_V3, nfsv3.NFSPROC3_COMMIT,
		&nfsv3.Commit3args{File: nfsv3.NfsFh3{Data: fh}}, nfsv3.ReadCommit3res)
	c, ok := commit.(*nfsv3.Commit3res_NFS3_OK)
	if !ok || c.Resok.Verf != w.Resok.Verf {
		t.Fatalf("COMMIT = %+v, want the write verifier", commit)
	}
	st, ok := n.write(fh, uint64(len(data)), []byte("tail"), nfsv3.FILE_SYNC).(*nfsv3.Write3res_NFS3_OK)
	if !ok || st.Resok.Committed != nfsv3.FILE_SYNC {
		t.Fatal("FILE_SYNC WRITE not answered FILE_SYNC")
	}
	want := append(append([]byte{}, data...), "tail"...)
	var got []byte
	for off := uint64(0); ; {
		r, ok := n.read(fh, off, 50000).(*nfsv3.Read3res_NFS3_OK)
		if !ok {
			t.Fatal("READ failed")
		}
		got = append(got, r.Resok.Data...)
		off += uint64(r.Resok.Count)
		if r.Resok.Eof {
			break
		}
		if r.Resok.Count == 0 {
			t.Fatal("READ returned nothing before eof")
		}
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("read back %d bytes, want %d identical", len(got), len(want))
	}
	// Another user may not write a 0640 file of someone else.
	other := nfs{t, dial(t, ts.bound.NFS, 2000, 2000)}
	if st := other.write(fh, 0, []byte("x"), nfsv3.FILE_SYNC).GetStatus(); st != nfsv3.NFS3ERR_ACCES {
		t.Errorf("WRITE by another user = %s, want NFS3ERR_ACCES", StatusName(st))
	}
	// A handle of a removed file is stale.
	if st := n.remove(dir, "f").GetStatus(); st != nfsv3.NFS3_OK {
		t.Fatalf("REMOVE = %s", StatusName(st))
	}
	if st := n.getattr(fh).GetStatus(); st != nfsv3.NFS3ERR_STALE {
		t.Errorf("GETATTR of a removed file = %s, want NFS3ERR_STALE", StatusName(st))
	}
}

func TestCreateModes(t *testing.T) {
	ts := startServer(t, openFS(t), openExport, nil)
	n := nfs{t, dial(t, ts.bound.NFS, 0, 0)}
	root := n.mount("/export")
	verf := [8]byte{1, 2, 3, 4, 5, 6, 7, 8}
	for _, tc := range []struct {
		name string
		how  nfsv3.Createhow3
		want nfsv3.Nfsstat3
	}{
		{"guarded new", &nfsv3.Createhow3_GUARDED{ObjAttributes: sattr(0o600)}, nfsv3.NFS3_OK},
		{"guarded again", &nfsv3.Createhow3_GUARDED{ObjAttributes: sattr(0o600)}, nfsv3.NFS3ERR_EXIST},
		{"unchecked existing", &nfsv3.Createhow3_UNCHECKED{ObjAttributes: sattr(-1)}, nfsv3.NFS3_OK},
		{"exclusive new", &nfsv3.Createhow3_EXCLUSIVE{Verf: verf}, nfsv3.NFS3_OK},
		{"exclusive retry", &nfsv3.Createhow3_EXCLUSIVE{Verf: verf}, nfsv3.NFS3_OK},
		{"exclusive other verifier", &nfsv3.Createhow3_EXCLUSIVE{Verf: [8]byte{9}}, nfsv3.NFS3ERR_EXIST},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := "g"
			if strings.HasPrefix(tc.name, "exclusive") {
				name = "x"
			}
			res := n.create(root, name, tc.how)
			if got := res.GetStatus(); got != tc.want {
				t.Fatalf("CREATE = %s, want %s", StatusName(got), StatusName(tc.want))
			}
			if d, ok := res.(*nfsv3.Create3res_default); ok {
				if _, ok := d.Resfail.DirWcc.Before.(*nfsv3.PreOpAttr_TRUE); !ok {
					t.Error("failed CREATE carries no directory pre-op attributes")
				}
			}
		})
	}
	// UNCHECKED with size 0 truncates an existing file.
	fh := n.createFile(root, "t", 0o644)
	n.write(fh, 0, []byte("hello"), nfsv3.FILE_SYNC)
	sa := sattr(-1)
	sa.Size = &nfsv3.SetSize3_TRUE{Size: 0}
	res, ok := n.create(root, "t", &nfsv3.Createhow3_UNCHECKED{ObjAttributes: sa}).(*nfsv3.Create3res_NFS3_OK)
	if !ok || fattr(t, res.Resok.ObjAttributes).Size != 0 {
		t.Fatalf("UNCHECKED create with size 0 did not truncate: %+v", res)
	}
}

func TestSetattrGuard(t *testing.T) {
	ts := startServer(t, openFS(t), openExport, nil)
	n := nfs{t, dial(t, ts.bound.NFS, 0, 0)}
	root := n.mount("/export")
	fh := n.createFile(root, "f", 0o644)
	attr := n.getattr(fh).(*nfsv3.Getattr3res_NFS3_OK).Resok.ObjAttributes
	setattr := func(guard nfsv3.Sattrguard3, mode int) nfsv3.Setattr3res {
		return call(t, n.c, nfsv3.NFS_PROGRAM, nfsv3.NFS_V3, nfsv3.NFSPROC3_SETATTR,
			&nfsv3.Setattr3args{Object: nfsv3.NfsFh3{Data: fh}, NewAttributes: sattr(mode), Guard: guard}, nfsv3.ReadSetattr3res)
	}
	stale := attr.Ctime
	stale.Nseconds ^= 1
	if st := setattr(&nfsv3.Sattrguard3_TRUE{ObjCtime: stale}, 0o600).GetStatus(); st != nfsv3.NFS3ERR_NOT_SYNC {
		t.Fatalf("SETATTR with a wrong ctime guard = %s, want NFS3ERR_NOT_SYNC", StatusName(st))
	}
	res, ok := setattr(&nfsv3.Sattrguard3_TRUE{ObjCtime: attr.Ctime}, 0o600).(*nfsv3.Setattr3res_NFS3_OK)
	if !ok {
		t.Fatal("SETATTR with the right guard failed")
	}
	if after := fattr(t, res.Resok.ObjWcc.After); after.Mode != 0o600 {
		t.Errorf("mode after SETATTR %o, want 600", after.Mode)
	}
	if before := res.Resok.ObjWcc.Before.(*nfsv3.PreOpAttr_TRUE); before.Attributes.Ctime != attr.Ctime {
		t.Errorf("pre-op ctime %+v, want %+v", before.Attributes.Ctime, attr.Ctime)
	}
	if st := setattr(&nfsv3.Sattrguard3_FALSE{}, 0o644).GetStatus(); st != nfsv3.NFS3_OK {
		t.Errorf("unguarded SETATTR = %s", StatusName(st))
	}
}

func TestNamespaceProcedures(t *testing.T) {
	ts := startServer(t, openFS(t), openExport, nil)
	n := nfs{t, dial(t, ts.bound.NFS, 0, 0)}
	root := n.mount("/export")
	dir := n.mkdirOK(root, "d", 0o755)
	fh := n.createFile(dir, "a", 0o644)

	// LOOKUP, and ".." at the export root stays at the root.
	if l, ok := n.lookup(dir, "a").(*nfsv3.Lookup3res_NFS3_OK); !ok || !bytes.Equal(l.Resok.Object.Data, fh) {
		t.Fatal("LOOKUP of a created file did not return its handle")
	}
	if l, ok := n.lookup(root, "..").(*nfsv3.Lookup3res_NFS3_OK); !ok || !bytes.Equal(l.Resok.Object.Data, root) {
		t.Fatal("LOOKUP .. at the export root left the export")
	}
	if l, ok := n.lookup(dir, "..").(*nfsv3.Lookup3res_NFS3_OK); !ok || !bytes.Equal(l.Resok.Object.Data, root) {
		t.Fatal("LOOKUP .. of a subdirectory is not its parent")
	}
	if st := n.lookup(dir, "missing").(*nfsv3.Lookup3res_default); st.Status != nfsv3.NFS3ERR_NOENT {
		t.Fatalf("LOOKUP of a missing name = %s", StatusName(st.Status))
	} else if _, ok := st.Resfail.DirAttributes.(*nfsv3.PostOpAttr_TRUE); !ok {
		t.Error("failed LOOKUP carries no directory attributes")
	}

	// LINK, RENAME, SYMLINK, READLINK, MKNOD.
	link := call(t, n.c, nfsv3.NFS_PROGRAM, nfsv3.NFS_V3, nfsv3.NFSPROC3_LINK,
		&nfsv3.Link3args{File: nfsv3.NfsFh3{Data: fh}, Link: where(root, "hard")}, nfsv3.ReadLink3res)
	if l, ok := link.(*nfsv3.Link3res_NFS3_OK); !ok || fattr(t, l.Resok.FileAttributes).Nlink != 2 {
		t.Fatalf("LINK = %+v, want nlink 2", link)
	}
	ren := call(t, n.c, nfsv3.NFS_PROGRAM, nfsv3.NFS_V3, nfsv3.NFSPROC3_RENAME,
		&nfsv3.Rename3args{From: where(dir, "a"), To: where(root, "b")}, nfsv3.ReadRename3res)
	if r, ok := ren.(*nfsv3.Rename3res_NFS3_OK); !ok {
		t.Fatalf("RENAME = %s", StatusName(ren.GetStatus()))
	} else if _, ok := r.Resok.TodirWcc.After.(*nfsv3.PostOpAttr_TRUE); !ok {
		t.Error("RENAME carries no target directory attributes")
	}
	if l, ok := n.lookup(root, "b").(*nfsv3.Lookup3res_NFS3_OK); !ok || !bytes.Equal(l.Resok.Object.Data, fh) {
		t.Fatal("renamed file not found under its new name with the same handle")
	}
	sym := call(t, n.c, nfsv3.NFS_PROGRAM, nfsv3.NFS_V3, nfsv3.NFSPROC3_SYMLINK,
		&nfsv3.Symlink3args{Where: where(root, "s"), Symlink: nfsv3.Symlinkdata3{SymlinkAttributes: sattr(-1), SymlinkData: []byte("d/../b")}},
		nfsv3.ReadSymlink3res)
	s, ok := sym.(*nfsv3.Symlink3res_NFS3_OK)
	if !ok {
		t.Fatalf("SYMLINK = %s", StatusName(sym.GetStatus()))
	}
	symFh := s.Resok.Obj.(*nfsv3.PostOpFh3_TRUE).Handle.Data
	rl := call(t, n.c, nfsv3.NFS_PROGRAM, nfsv3.NFS_V3, nfsv3.NFSPROC3_READLINK, &nfsv3.Readlink3args{Symlink: nfsv3.NfsFh3{Data: symFh}}, nfsv3.ReadReadlink3res)
	if r, ok := rl.(*nfsv3.Readlink3res_NFS3_OK); !ok || string(r.Resok.Data) != "d/../b" {
		t.Fatalf("READLINK = %+v", rl)
	}
	if rl := call(t, n.c, nfsv3.NFS_PROGRAM, nfsv3.NFS_V3, nfsv3.NFSPROC3_READLINK, &nfsv3.Readlink3args{Symlink: nfsv3.NfsFh3{Data: fh}}, nfsv3.ReadReadlink3res); rl.GetStatus() != nfsv3.NFS3ERR_INVAL {
		t.Errorf("READLINK of a file = %s, want NFS3ERR_INVAL", StatusName(rl.GetStatus()))
	}
	mk := call(t, n.c, nfsv3.NFS_PROGRAM, nfsv3.NFS_V3, nfsv3.NFSPROC3_MKNOD,
		&nfsv3.Mknod3args{Where: where(root, "fifo"), What: &nfsv3.Mknoddata3_NF3FIFO{PipeAttributes: sattr(0o600)}}, nfsv3.ReadMknod3res)
	if m, ok := mk.(*nfsv3.Mknod3res_NFS3_OK); !ok || fattr(t, m.Resok.ObjAttributes).Type != nfsv3.NF3FIFO {
		t.Fatalf("MKNOD fifo = %s", StatusName(mk.GetStatus()))
	}
	mk = call(t, n.c, nfsv3.NFS_PROGRAM, nfsv3.NFS_V3, nfsv3.NFSPROC3_MKNOD,
		&nfsv3.Mknod3args{Where: where(root, "reg"), What: &nfsv3.Mknoddata3_default{Type: nfsv3.NF3REG}}, nfsv3.ReadMknod3res)
	if mk.GetStatus() != nfsv3.NFS3ERR_BADTYPE {
		t.Errorf("MKNOD of a regular file = %s, want NFS3ERR_BADTYPE", StatusName(mk.GetStatus()))
	}

	// RMDIR of a non-empty directory, then of an empty one.
	n.createFile(dir, "c", 0o644)
	rmdir := func(name string) nfsv3.Nfsstat3 {
		return call(t, n.c, nfsv3.NFS_PROGRAM, nfsv3.NFS_V3, nfsv3.NFSPROC3_RMDIR, &nfsv3.Rmdir3args{Object: where(root, name)}, nfsv3.ReadRmdir3res).GetStatus()
	}
	if st := rmdir("d"); st != nfsv3.NFS3ERR_NOTEMPTY {
		t.Errorf("RMDIR of a non-empty directory = %s", StatusName(st))
	}
	n.remove(dir, "c")
	if st := rmdir("d"); st != nfsv3.NFS3_OK {
		t.Errorf("RMDIR of an empty directory = %s", StatusName(st))
	}
	if st := n.getattr(dir).GetStatus(); st != nfsv3.NFS3ERR_STALE {
		t.Errorf("GETATTR of a removed directory = %s, want NFS3ERR_STALE", StatusName(st))
	}
}

func TestFsProcedures(t *testing.T) {
	ts := startServer(t, openFS(t), openExport, func(c *Config) { c.MaxTransfer = 256 << 10 })
	n := nfs{t, dial(t, ts.bound.NFS, 0, 0)}
	root := n.mount("/export")
	info := call(t, n.c, nfsv3.NFS_PROGRAM, nfsv3.NFS_V3, nfsv3.NFSPROC3_FSINFO, &nfsv3.Fsinfo3args{Fsroot: nfsv3.NfsFh3{Data: root}}, nfsv3.ReadFsinfo3res)
	fi, ok := info.(*nfsv3.Fsinfo3res_NFS3_OK)
	if !ok || fi.Resok.Rtmax != 256<<10 || fi.Resok.Wtmax != 256<<10 || fi.Resok.Properties&nfsv3.FSF3_SYMLINK == 0 {
		t.Fatalf("FSINFO = %+v", info)
	}
	stat := call(t, n.c, nfsv3.NFS_PROGRAM, nfsv3.NFS_V3, nfsv3.NFSPROC3_FSSTAT, &nfsv3.Fsstat3args{Fsroot: nfsv3.NfsFh3{Data: root}}, nfsv3.ReadFsstat3res)
	if fs, ok := stat.(*nfsv3.Fsstat3res_NFS3_OK); !ok || fs.Resok.Tbytes == 0 || fs.Resok.Afiles == 0 {
		t.Fatalf("FSSTAT = %+v", stat)
	}
	pc := call(t, n.c, nfsv3.NFS_PROGRAM, nfsv3.NFS_V3, nfsv3.NFSPROC3_PATHCONF, &nfsv3.Pathconf3args{Object: nfsv3.NfsFh3{Data: root}}, nfsv3.ReadPathconf3res)
	if p, ok := pc.(*nfsv3.Pathconf3res_NFS3_OK); !ok || p.Resok.NameMax != 255 || !p.Resok.NoTrunc || !p.Resok.CasePreserving {
		t.Fatalf("PATHCONF = %+v", pc)
	}
	acc := call(t, n.c, nfsv3.NFS_PROGRAM, nfsv3.NFS_V3, nfsv3.NFSPROC3_ACCESS, &nfsv3.Access3args{Object: nfsv3.NfsFh3{Data: root}, Access: 0x3f}, nfsv3.ReadAccess3res)
	if a, ok := acc.(*nfsv3.Access3res_NFS3_OK); !ok || a.Resok.Access != nfsv3.ACCESS3_READ|nfsv3.ACCESS3_LOOKUP|accessChange {
		t.Fatalf("ACCESS of the root by root = %+v", acc)
	}
	call(t, n.c, nfsv3.NFS_PROGRAM, nfsv3.NFS_V3, nfsv3.NFSPROC3_NULL, nil, readVoid)
}

func TestBadHandles(t *testing.T) {
	ts := startServer(t, openFS(t), openExport, nil)
	n := nfs{t, dial(t, ts.bound.NFS, 0, 0)}
	root := n.mount("/export")
	otherExport := append([]byte(nil), root...)
	otherExport[4] ^= 0xff
	otherFS := append([]byte(nil), root...)
	otherFS[8] ^= 0xff
	badVersion := append([]byte(nil), root...)
	badVersion[0] = 9
	for _, tc := range []struct {
		name string
		fh   []byte
		want nfsv3.Nfsstat3
	}{
		{"empty", nil, nfsv3.NFS3ERR_BADHANDLE},
		{"short", root[:10], nfsv3.NFS3ERR_BADHANDLE},
		{"version", badVersion, nfsv3.NFS3ERR_BADHANDLE},
		{"unknown export", otherExport, nfsv3.NFS3ERR_STALE},
		{"other filesystem", otherFS, nfsv3.NFS3ERR_STALE},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := n.getattr(tc.fh).GetStatus(); got != tc.want {
				t.Errorf("GETATTR = %s, want %s", StatusName(got), StatusName(tc.want))
			}
		})
	}
}

func TestExportRules(t *testing.T) {
	fsys := openFS(t)
	ctx := context.Background()
	if _, err := fsys.Mkdir(ctx, &core.Root, core.RootIno, "rootonly", 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := fsys.Mkdir(ctx, &core.Root, core.RootIno, "open", 0o777); err != nil {
		t.Fatal(err)
	}
	exports := []Export{
		{Name: "/squash", Path: "/", RootSquash: true, AnonUID: 65534, AnonGID: 65534},
		{Name: "/nosquash", Path: "/"},
		{Name: "/all", Path: "/", AllSquash: true, AnonUID: 4242, AnonGID: 4242},
		{Name: "/ro", Path: "/", ReadOnly: true},
		{Name: "/elsewhere", Path: "/", AllowedClients: []string{"192.168.1.1", "127.0.0.10"}},
		{Name: "/anon", Path: "/", Sec: []oncrpc.AuthFlavor{oncrpc.AuthNone}, AnonUID: 5555, AnonGID: 5555},
	}
	ts := startServer(t, fsys, exports, nil)
	// Handles are minted per export by the server's own code, so that the
	// denied export is reachable by handle even though MNT refuses it.
	handle := func(name string) []byte {
		e, _ := ts.srv.findExport(name)
		a, err := ts.srv.exportRoot(ctx, e)
		if err != nil {
			t.Fatal(err)
		}
		return ts.srv.handle(e, &a)
	}
	sub := func(exp, name string) []byte {
		n := nfs{t, dial(t, ts.bound.NFS, 0, 0)}
		return n.lookup(handle(exp), name).(*nfsv3.Lookup3res_NFS3_OK).Resok.Object.Data
	}
	for _, tc := range []struct {
		name   string
		dir    []byte
		uid    uint32
		want   nfsv3.Nfsstat3
		owner  uint32
		exists bool
	}{
		{"squashed root in root's directory", sub("/squash", "rootonly"), 0, nfsv3.NFS3ERR_ACCES, 0, false},
		{"squashed root in an open directory", sub("/squash", "open"), 0, nfsv3.NFS3_OK, 65534, true},
		{"root without squash", sub("/nosquash", "rootonly"), 0, nfsv3.NFS3_OK, 0, true},
		{"all squash", sub("/all", "open"), 1000, nfsv3.NFS3_OK, 4242, true},
		{"read-only export", sub("/ro", "open"), 0, nfsv3.NFS3ERR_ROFS, 0, false},
		{"denied client", handle("/elsewhere"), 0, nfsv3.NFS3ERR_ACCES, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := nfs{t, dial(t, ts.bound.NFS, tc.uid, tc.uid)}
			res := n.create(tc.dir, strings.ReplaceAll(tc.name, " ", "_"), &nfsv3.Createhow3_GUARDED{ObjAttributes: sattr(0o644)})
			if got := res.GetStatus(); got != tc.want {
				t.Fatalf("CREATE = %s, want %s", StatusName(got), StatusName(tc.want))
			}
			if ok, isOK := res.(*nfsv3.Create3res_NFS3_OK); isOK {
				if uid := fattr(t, ok.Resok.ObjAttributes).Uid; uid != tc.owner {
					t.Errorf("created file owned by %d, want %d", uid, tc.owner)
				}
			}
		})
	}
	// A read-only export grants no change through ACCESS.
	n := nfs{t, dial(t, ts.bound.NFS, 0, 0)}
	acc := call(t, n.c, nfsv3.NFS_PROGRAM, nfsv3.NFS_V3, nfsv3.NFSPROC3_ACCESS, &nfsv3.Access3args{Object: nfsv3.NfsFh3{Data: handle("/ro")}, Access: 0x3f}, nfsv3.ReadAccess3res)
	if a, ok := acc.(*nfsv3.Access3res_NFS3_OK); !ok || a.Resok.Access&accessChange != 0 {
		t.Errorf("ACCESS on a read-only export = %+v", acc)
	}
	// An export that takes AUTH_NONE only treats AUTH_SYS callers as
	// anonymous; one that takes AUTH_SYS only refuses AUTH_NONE.
	anonDir := sub("/anon", "open")
	res, ok := n.create(anonDir, "anon", &nfsv3.Createhow3_GUARDED{ObjAttributes: sattr(0o644)}).(*nfsv3.Create3res_NFS3_OK)
	if !ok || fattr(t, res.Resok.ObjAttributes).Uid != 5555 {
		t.Errorf("AUTH_SYS caller on an AUTH_NONE export not anonymous: %+v", res)
	}
	none, err := oncrpc.Dial(ctx, "tcp", ts.bound.NFS.String(), oncrpc.WithClientLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	defer none.Close()
	_, err = tryCall(none, nfsv3.NFS_PROGRAM, nfsv3.NFS_V3, nfsv3.NFSPROC3_GETATTR, &nfsv3.Getattr3args{Object: nfsv3.NfsFh3{Data: handle("/squash")}}, nfsv3.ReadGetattr3res)
	if !errors.Is(err, oncrpc.AuthTooWeak) {
		t.Errorf("AUTH_NONE call on an AUTH_SYS export: %v, want AUTH_TOOWEAK", err)
	}
}

func TestMetrics(t *testing.T) {
	ts := startServer(t, openFS(t), openExport, nil)
	n := nfs{t, dial(t, ts.bound.NFS, 0, 0)}
	root := n.mount("/export")
	for i := 0; i < 3; i++ {
		n.getattr(root)
	}
	n.lookup(root, "missing")
	if got := gauge(t, ts, metrics.NameActiveConnections, "nfs3"); got != 1 {
		t.Errorf("gateway_active_connections{protocol=nfs3} = %v, want 1", got)
	}
	if got := countRequests(t, ts, "nfs3", "GETATTR", "ok"); got != 3 {
		t.Errorf("GETATTR requests = %v, want 3", got)
	}
	if got := countRequests(t, ts, "nfs3", "LOOKUP", "NFS3ERR_NOENT"); got != 1 {
		t.Errorf("LOOKUP NOENT requests = %v, want 1", got)
	}
	if got := countRequests(t, ts, "mount", "MNT", "ok"); got != 1 {
		t.Errorf("MNT requests = %v, want 1", got)
	}
}

// TestConcurrentClients: several connections, each with several calls in
// flight, write and read their own files and list the shared directory.
func TestConcurrentClients(t *testing.T) {
	ts := startServer(t, openFS(t), openExport, nil)
	root := nfs{t, dial(t, ts.bound.NFS, 0, 0)}.mount("/export")
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for c := 0; c < 4; c++ {
		n := nfs{t, dial(t, ts.bound.NFS, 0, 0)}
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				name := fmt.Sprintf("c%d-w%d", c, w)
				res, err := tryCall(n.c, nfsv3.NFS_PROGRAM, nfsv3.NFS_V3, nfsv3.NFSPROC3_CREATE,
					&nfsv3.Create3args{Where: where(root, name), How: &nfsv3.Createhow3_GUARDED{ObjAttributes: sattr(0o644)}}, nfsv3.ReadCreate3res)
				if err != nil || res.GetStatus() != nfsv3.NFS3_OK {
					errs <- fmt.Errorf("CREATE %s: %v", name, err)
					return
				}
				fh := res.(*nfsv3.Create3res_NFS3_OK).Resok.Obj.(*nfsv3.PostOpFh3_TRUE).Handle.Data
				data := bytes.Repeat([]byte(name), 1000)
				for off := 0; off < len(data); off += 1000 {
					wr, err := tryCall(n.c, nfsv3.NFS_PROGRAM, nfsv3.NFS_V3, nfsv3.NFSPROC3_WRITE,
						&nfsv3.Write3args{File: nfsv3.NfsFh3{Data: fh}, Offset: uint64(off), Count: 1000, Stable: nfsv3.UNSTABLE, Data: data[off : off+1000]}, nfsv3.ReadWrite3res)
					if err != nil || wr.GetStatus() != nfsv3.NFS3_OK {
						errs <- fmt.Errorf("WRITE %s: %v", name, err)
						return
					}
				}
				rd, err := tryCall(n.c, nfsv3.NFS_PROGRAM, nfsv3.NFS_V3, nfsv3.NFSPROC3_READ,
					&nfsv3.Read3args{File: nfsv3.NfsFh3{Data: fh}, Count: uint32(len(data))}, nfsv3.ReadRead3res)
				if err != nil {
					errs <- err
					return
				}
				if ok, isOK := rd.(*nfsv3.Read3res_NFS3_OK); !isOK || !bytes.Equal(ok.Resok.Data, data) {
					errs <- fmt.Errorf("READ %s returned other bytes", name)
					return
				}
				if _, err := tryCall(n.c, nfsv3.NFS_PROGRAM, nfsv3.NFS_V3, nfsv3.NFSPROC3_READDIRPLUS,
					&nfsv3.Readdirplus3args{Dir: nfsv3.NfsFh3{Data: root}, Dircount: 512, Maxcount: 8192}, nfsv3.ReadReaddirplus3res); err != nil {
					errs <- err
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	names := listAll(t, nfs{t, dial(t, ts.bound.NFS, 0, 0)}, root, 4096, nil)
	if len(names) != 2+16 {
		t.Errorf("listed %d entries, want 18", len(names))
	}
}
