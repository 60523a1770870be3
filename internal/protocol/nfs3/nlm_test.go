package nfs3

import (
	"context"
	"testing"

	"github.com/claudefs/cfs-gateway/internal/core"
	"github.com/claudefs/cfs-gateway/internal/core/lock"
	"github.com/claudefs/cfs-gateway/internal/protocol/nfs3/nlm"
	"github.com/claudefs/cfs-gateway/internal/protocol/xdr/nlmv4"
)

// TestNLMOnFileHandles takes NLM locks on real file handles: they live in
// the core's lock table beside the locks of other protocols.
func TestNLMOnFileHandles(t *testing.T) {
	exports := []Export{
		{Name: "/export", Path: "/"},
		{Name: "/elsewhere", Path: "/", AllowedClients: []string{"10.0.0.1"}},
	}
	ts := startServer(t, openFS(t), exports, nil)
	n := nfs{t, dial(t, ts.bound.NFS, 0, 0)}
	root := n.mount("/export")
	fh := n.createFile(root, "locked", 0o644)
	lockc := dial(t, ts.bound.NLM, 0, 0)
	test := func(fh []byte, off, length uint64) nlmv4.Nlm4Testrply {
		var res nlmv4.Nlm4Testres
		if err := lockc.Call(context.Background(), nlm.Program, nlm.Version, nlmv4.NLMPROC4_TEST,
			&nlmv4.Nlm4Testargs{Exclusive: true, Alock: nlmv4.Nlm4Lock{CallerName: "client", Fh: fh, Oh: []byte("o"), Svid: 1, LOffset: off, LLen: length}}, &res); err != nil {
			t.Fatal(err)
		}
		return res.TestStat
	}
	lockReq := func(fh []byte) nlmv4.Nlm4Stats {
		var res nlmv4.Nlm4Res
		if err := lockc.Call(context.Background(), nlm.Program, nlm.Version, nlmv4.NLMPROC4_LOCK,
			&nlmv4.Nlm4Lockargs{Exclusive: true, Alock: nlmv4.Nlm4Lock{CallerName: "client", Fh: fh, Oh: []byte("o"), Svid: 1, LLen: 100}}, &res); err != nil {
			t.Fatal(err)
		}
		return res.Stat.Stat
	}
	if st := lockReq(fh); st != nlmv4.NLM4_GRANTED {
		t.Fatalf("LOCK = %v", st)
	}
	ino := fileInode(t, fh)
	locks := ts.fs.Locks().Locks(lock.FileID(ino))
	if len(locks) != 1 || locks[0].Owner.Client != "nlm:client" || locks[0].End != 100 {
		t.Fatalf("lock table holds %v", locks)
	}
	// An SMB lock elsewhere in the file is reported to NLM clients.
	smb := lock.Lock{Owner: lock.Owner{Client: "smb:s1", ID: "open"}, Flavor: lock.Mandatory, Exclusive: true, Start: 200, End: 300}
	if err := ts.fs.Locks().Lock(context.Background(), lock.FileID(ino), smb, false); err != nil {
		t.Fatal(err)
	}
	rep, ok := test(fh, 250, 1).(*nlmv4.Nlm4Testrply_NLM4_DENIED)
	if !ok || string(rep.Holder.Oh) != "smb:s1" || rep.Holder.LOffset != 200 || rep.Holder.LLen != 100 {
		t.Fatalf("TEST over an SMB lock = %+v", rep)
	}
	// Handles the export does not allow, or of removed files, are refused.
	e, _ := ts.srv.findExport("/elsewhere")
	a, err := ts.fs.GetAttr(context.Background(), ino)
	if err != nil {
		t.Fatal(err)
	}
	if st := lockReq(ts.srv.handle(e, &a)); st != nlmv4.NLM4_DENIED {
		t.Errorf("LOCK through an export that refuses the client = %v", st)
	}
	n.remove(root, "locked")
	if st := test(fh, 0, 1).GetStat(); st != nlmv4.NLM4_STALE_FH {
		t.Errorf("TEST on a removed file = %v", st)
	}
	if st := lockReq([]byte("garbage")); st != nlmv4.NLM4_STALE_FH {
		t.Errorf("LOCK with a malformed handle = %v", st)
	}
}

func fileInode(t *testing.T, fh []byte) core.Ino {
	t.Helper()
	h, err := decodeHandle(fh)
	if err != nil {
		t.Fatal(err)
	}
	return h.ino
}
