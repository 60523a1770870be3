package nfs3_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/claudefs/cfs-gateway/internal/protocol/nfs3"
)

// netnsChildEnv marks the copy of the test binary that runs inside a
// private network namespace.
const netnsChildEnv = "CFS_NFS3_NETNS_CHILD"

// TestLibnfsViaPortmapper runs libnfs without ports in its URLs, so that it
// asks the port mapper on port 111 where MOUNT and NFS are. Port 111 on the
// host may belong to a system rpcbind, so the test runs the gateway (with
// its built-in port mapper on 127.0.0.1:111) and the client in a private
// network namespace: the test binary runs itself again in a new namespace.
// It needs root; without it the test skips.
func TestLibnfsViaPortmapper(t *testing.T) {
	if os.Getenv(netnsChildEnv) == "1" {
		portmapperChild(t)
		return
	}
	needTool(t, "nfs-ls", "libnfs-utils")
	if os.Geteuid() != 0 {
		t.Skip("a private network namespace needs root; run as root to test the port mapper on port 111")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestLibnfsViaPortmapper$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), netnsChildEnv+"=1", "TMPDIR="+t.TempDir())
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
	out, err := cmd.CombinedOutput()
	if err != nil && strings.Contains(err.Error(), "operation not permitted") {
		t.Skipf("cannot create a network namespace here (%v); the port mapper test needs CAP_SYS_ADMIN", err)
	}
	if err != nil || !strings.Contains(string(out), "--- PASS: TestLibnfsViaPortmapper") {
		t.Fatalf("port mapper test in a network namespace failed: %v\n%s", err, out)
	}
	t.Logf("in a private network namespace:\n%s", out)
}

// portmapperChild is the test inside the namespace.
func portmapperChild(t *testing.T) {
	// The new namespace's loopback is down.
	if err := loopbackUp(); err != nil {
		t.Fatalf("bringing up the loopback interface of the namespace: %v", err)
	}
	startGateway(t, []nfs3.Export{{Name: "/export", Path: "/"}}, &nfs3.Addrs{
		NFS: "127.0.0.1:2049", Mount: "127.0.0.1:20048", NLM: "127.0.0.1:32803", Portmap: "127.0.0.1:111",
	})
	run := func(name string, args ...string) string {
		t.Helper()
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	local := filepath.Join(t.TempDir(), "f")
	data := randomBytes(t, 3<<20+5)
	if err := os.WriteFile(local, data, 0o644); err != nil {
		t.Fatal(err)
	}
	run("nfs-cp", local, "nfs://127.0.0.1/export/viapmap")
	if ls := run("nfs-ls", "nfs://127.0.0.1/export"); !strings.Contains(ls, fmt.Sprintf("%d viapmap", len(data))) {
		t.Fatalf("nfs-ls through the port mapper:\n%s", ls)
	}
	back := local + ".back"
	run("nfs-cp", "nfs://127.0.0.1/export/viapmap", back)
	got, err := os.ReadFile(back)
	if err != nil || string(got) != string(data) {
		t.Fatalf("copy back through the port mapper differs (%v)", err)
	}
}

// loopbackUp sets the loopback interface of the current network namespace
// up, as "ip link set lo up" does.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}
