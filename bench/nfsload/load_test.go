package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/claudefs/cfs-gateway/internal/core"
	"github.com/claudefs/cfs-gateway/internal/engine/blob/localblob"
	"github.com/claudefs/cfs-gateway/internal/engine/kv/pebblekv"
	"github.com/claudefs/cfs-gateway/internal/protocol/nfs3"
)

func TestPercentiles(t *testing.T) {
	ds := []time.Duration{5, 1, 4, 2, 3, 10, 9, 8, 7, 6}
	got := percentiles(ds, 0.5, 0.9, 0.99, 1)
	want := []time.Duration{5, 9, 10, 10}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("quantile %d = %d, want %d", i, got[i], want[i])
		}
	}
	if p := percentiles(nil, 0.5); p[0] != 0 {
		t.Errorf("quantile of nothing = %v", p[0])
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"4096": 4096, "4k": 4096, "1m": 1 << 20, "2G": 2 << 30} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "x", "-1", "1t"} {
		if _, err := parseSize(bad); err == nil {
			t.Errorf("parseSize(%q) accepted", bad)
		}
	}
}

// TestWorkloads runs every workload briefly against an in-process server:
// each must finish without an error and report what it measured.
func TestWorkloads(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	dir := t.TempDir()
	store, err := pebblekv.Open(filepath.Join(dir, "meta"), pebblekv.Options{Logger: quiet, CacheSize: 8 << 20, MemTableSize: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	blobs, err := localblob.Open(filepath.Join(dir, "blocks"), localblob.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer blobs.Close()
	fsys, err := core.New(context.Background(), core.Options{Store: store, Blobs: blobs, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer fsys.Close(context.Background())
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
