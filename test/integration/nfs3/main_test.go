// Package nfs3_test runs real NFSv3 clients against the gateway's NFSv3
// server: the Go client github.com/willscott/go-nfs-client in every run,
// and Debian's libnfs-utils (nfs-ls, nfs-cp, nfs-cat) when installed. Tests
// that need libnfs-utils skip when it is missing, except under CI=true,
// where they fail.
package nfs3_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/claudefs/cfs-gateway/internal/core"
	"github.com/claudefs/cfs-gateway/internal/core/coretest"
	"github.com/claudefs/cfs-gateway/internal/protocol/nfs3"
)

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// openFS opens a filesystem on the embedded engines under dir.
func openFS(t testing.TB, dir string) *core.FS {
	return coretest.OpenEmbedded(t, dir, core.Options{Logger: quietLogger()})
}

// gateway is an NFSv3 server on loopback ports.
type gateway struct {
	fs    *core.FS
	srv   *nfs3.Server
	bound nfs3.Bound
}

func (g *gateway) nfsPort() int   { return portOf(g.bound.NFS) }
func (g *gateway) mountPort() int { return portOf(g.bound.Mount) }

func portOf(a net.Addr) int { return a.(*net.TCPAddr).Port }

// startGateway serves a fresh filesystem with exports; addrs default to
// loopback ports chosen by the kernel.
func startGateway(t testing.TB, exports []nfs3.Export, addrs *nfs3.Addrs) *gateway {
	t.Helper()
	fsys := openFS(t, t.TempDir())
	srv, err := nfs3.New(nfs3.Config{FS: fsys, Exports: exports, Logger: quietLogger(), MaxTransfer: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	a := nfs3.Addrs{NFS: "127.0.0.1:0", Mount: "127.0.0.1:0", NLM: "127.0.0.1:0"}
	if addrs != nil {
		a = *addrs
	}
	b, err := srv.ListenAndServe(a)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	})
	return &gateway{fs: fsys, srv: srv, bound: b}
}

// needTool finds an installed program, skipping the test (failing it under
// CI=true) when it is missing.
func needTool(t testing.TB, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	msg := name + " is not installed; install it with: apt-get install -y " + pkg
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}
