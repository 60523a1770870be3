package scaleout

import (
	"bytes"
	"context"
	"io"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/claudefs/cfs-gateway/internal/protocol/nfs3"
	"github.com/claudefs/cfs-gateway/internal/protocol/oncrpc"
	"github.com/claudefs/cfs-gateway/internal/protocol/xdr/nfsv3"
	"github.com/claudefs/cfs-gateway/internal/protocol/xdr/nlmv4"
)

// nlmClient speaks NLM v4 to one gateway, as a client host's lockd does.
type nlmClient struct {
	c    *oncrpc.Client
	host string
}

func dialNLM(t *testing.T, g *gatewayProc, host string) *nlmClient {
	t.Helper()
	return &nlmClient{c: dialRPC(t, g, "nfs.nlm_listen", host), host: host}
}

// lock asks for an exclusive, non-blocking lock of [0, 100) of fh.
func (n *nlmClient) lock(ctx context.Context, fh []byte) (nlmv4.Nlm4Stats, error) {
	var res nlmv4.Nlm4Res
	args := &nlmv4.Nlm4Lockargs{Cookie: []byte("c"), Exclusive: true, State: 1,
		Alock: nlmv4.Nlm4Lock{CallerName: n.host, Fh: fh, Oh: []byte(n.host + "-owner"), Svid: 1, LOffset: 0, LLen: 100}}
	err := n.c.Call(ctx, nlmv4.NLM_PROG, nlmv4.NLM4_VERS, nlmv4.NLMPROC4_LOCK, args, &res)
	return res.Stat.Stat, err
}

// syncWrite writes data at 0 with FILE_SYNC and returns the NFS status.
func syncWrite(ctx context.Context, c *oncrpc.Client, fh, data []byte) (nfsv3.Nfsstat3, error) {
	var res nfsv3.Write3res
	err := c.Call(ctx, nfsv3.NFS_PROGRAM, nfsv3.NFS_V3, nfsv3.NFSPROC3_WRITE,
		&nfsv3.Write3args{File: nfsv3.NfsFh3{Data: fh}, Count: uint32(len(data)), Stable: nfsv3.FILE_SYNC, Data: data},
		oncrpc.ReaderFromFunc(func(r io.Reader) (int64, error) {
			v, n, err := nfsv3.ReadWrite3res(r)
			res = v
			return n, err
		}))
	if err != nil {
		return 0, err
	}
	return res.GetStatus(), nil
}

// TestStoppedLockHolderIsFenced stops (SIGSTOP) a gateway that holds an NLM
// lock for longer than its session: the other gateway then grants the lock
// to another client, and the stopped gateway, resumed, refuses the writes
// its client makes under the lock it believes it still holds, both the
// write of data buffered before the stop (its COMMIT) and new ones.
func TestStoppedLockHolderIsFenced(t *testing.T) {
	e := newEnv(t)
	bin := buildGateway(t)
	const name = "lockstall"
	// A keeps unstable writes buffered until COMMIT, so that what its
	// client writes just before the stop is still unflushed when it
	// resumes.
	cfgA := writeGatewayConfig(t, e, name, t.TempDir(), e.s3.Endpoint)
	raw, err := os.ReadFile(cfgA)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgA, bytes.Replace(raw, []byte("flush_interval_ms: 200"), []byte("flush_interval_ms: 600000"), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	gwA := startGatewayProc(t, bin, cfgA, "A")
	gwB := startGatewayProc(t, bin, writeGatewayConfig(t, e, name, t.TempDir(), e.s3.Endpoint), "B")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	nfsA := nfsMount(t, gwA)
	fh, err := nfsA.Create("shared", 0o666)
	if err != nil {
		t.Fatalf("NFS create through A: %v", err)
	}
	rpcA := dialRPC(t, gwA, "nfs.listen", "client-1")
	if st, err := syncWrite(ctx, rpcA, fh, []byte("before")); err != nil || st != nfsv3.NFS3_OK {
		t.Fatalf("first write through A: %v %v", nfs3.StatusName(st), err)
	}

	client1, client2 := dialNLM(t, gwA, "client-1"), dialNLM(t, gwB, "client-2")
	if st, err := client1.lock(ctx, fh); err != nil || st != nlmv4.NLM4_GRANTED {
		t.Fatalf("client-1 locking through A: %v %v", st, err)
	}
	if st, err := client2.lock(ctx, fh); err != nil || st != nlmv4.NLM4_DENIED {
		t.Fatalf("client-2 locking through B while client-1 holds the lock: %v %v, want NLM4_DENIED", st, err)
	}
	// Data written under the lock and not yet committed when A stops.
	uw := &unstableWriter{c: rpcA, fh: fh}
	if _, err := uw.write(ctx, 0, []byte("UNSTABLE")); err != nil {
		t.Fatal(err)
	}

	if err := gwA.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			_ = gwA.cmd.Process.Signal(syscall.SIGCONT)
		}
	}
	defer resume()
	// The session TTL is 3 s; B must grant the lock once it expired.
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := client2.lock(ctx, fh)
		if err != nil {
			t.Fatal(err)
		}
		if st == nlmv4.NLM4_GRANTED {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("client-2 was not granted the lock through B within 30 s of stopping A (last answer %v)", st)
		}
		time.Sleep(250 * time.Millisecond)
	}
	resume()

	// Resumed, A must not let client-1 write under the lost lock: neither
	// the commit of what it buffered nor a new write.
	if _, err := uw.commit(ctx); err == nil {
		t.Error("COMMIT through resumed A of data written under the lost lock succeeded")
	}
	if st, err := syncWrite(ctx, rpcA, fh, []byte("LATE")); err != nil || st == nfsv3.NFS3_OK {
		t.Errorf("write through resumed A under the lost lock: %v %v, want an error status", nfs3.StatusName(st), err)
	}
	nfsB := nfsMount(t, gwB)
	f, err := nfsB.Open("shared")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "before" {
		t.Fatalf("file read through B is %q, want %q: a write under the lost lock landed", got, "before")
	}
}
