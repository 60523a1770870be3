package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"regexp"
	"strings"
	"testing"

	"github.com/claudefs/cfs-gateway/internal/core"
	"github.com/claudefs/cfs-gateway/internal/core/coretest"
	"github.com/claudefs/cfs-gateway/internal/protocol/nfs3"
)

// TestWorkloads runs every workload briefly against an in-process server:
// each must finish without an error and report what it measured.
func TestWorkloads(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	dir := t.TempDir()
	fsys := coretest.OpenEmbedded(t, dir, core.Options{Logger: quiet})
	srv, err := nfs3.New(nfs3.Config{FS: fsys, Exports: []nfs3.Export{{Name: "/export", Path: "/"}}, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	b, err := srv.ListenAndServe(nfs3.Addrs{NFS: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	line := regexp.MustCompile(`^workload=\S+ qd=\d+ conns=\d+ .*calls=[1-9]\d* .*p50=\S+ p99=\S+`)
	for _, args := range [][]string{
		{"-workload", "write", "-bs", "64k", "-size", "1m", "-qd", "4", "-conns", "2"},
		{"-workload", "write", "-bs", "64k", "-size", "1m", "-stable", "file_sync"},
		{"-workload", "read", "-bs", "64k", "-qd", "4"},
		{"-workload", "randread", "-bs", "4k", "-ops", "50"},
		{"-workload", "getattr", "-ops", "50"},
		{"-workload", "lookup", "-ops", "50"},
		{"-workload", "create", "-ops", "20", "-filesize", "4k"},
	} {
		var out bytes.Buffer
		full := append([]string{"run", "-addr", b.NFS.String()}, args...)
		if err := run(context.Background(), full, &out, io.Discard); err != nil {
			t.Fatalf("nfsload %s: %v", strings.Join(full, " "), err)
		}
		if !line.MatchString(out.String()) {
			t.Errorf("nfsload %s printed %q", strings.Join(args, " "), out.String())
		}
	}
	// Reading a file that was never written says what to do.
	err = run(context.Background(), []string{"run", "-addr", b.NFS.String(), "-workload", "read", "-dir", "empty"}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "run -workload write first") {
		t.Errorf("read without data: %v", err)
	}
}
