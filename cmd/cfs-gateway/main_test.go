package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// runCmd runs the command line in-process and returns exit status and output.
func runCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// writeConfig writes a configuration with its data under dir, serving only
// the admin API on a free loopback port.
func writeConfig(t *testing.T, dir string, extra string) (path, adminAddr string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	adminAddr = l.Addr().String()
	l.Close()
	path = filepath.Join(dir, "gateway.yaml")
	cfg := fmt.Sprintf("data_dir: %s\nadmin:\n  listen: %s\nnfs: {enabled: false}\nnfs4: {enabled: false}\nsmb: {enabled: false}\ns3: {enabled: false}\n%s",
		filepath.Join(dir, "data"), adminAddr, extra)
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, adminAddr
}

func TestValidateConfig(t *testing.T) {
	dir := t.TempDir()
	good, _ := writeConfig(t, dir, "")
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte(`circuit_breaker:
  failure_threshold: "five"
  timeout_ms: -3
cache:
  nfs_attr_cache:
    eviction: mru
    max_entrys: 5
bogus_section: 1
`), 0o644)
	tests := []struct {
		name      string
		args      []string
		code      int
		wantLines []string // substrings, one output line each
	}{
		{"valid", []string{"validate-config", good}, 0, nil},
		{"every problem on its own line", []string{"validate-config", bad}, 1, []string{
			"bad.yaml:2: circuit_breaker.failure_threshold:",
			"bad.yaml:3: circuit_breaker.timeout_ms:",
			"bad.yaml:6: cache.nfs_attr_cache.eviction:",
			"bad.yaml:7: cache.nfs_attr_cache.max_entrys: unknown key",
			"bad.yaml:8: bogus_section: unknown key",
		}},
		{"missing file", []string{"validate-config", filepath.Join(dir, "nope.yaml")}, 1, []string{"nope.yaml"}},
		{"server refuses a bad file", []string{"serve", "--config", bad}, 1, []string{"bogus_section"}},
		{"unknown command", []string{"frobnicate"}, 2, nil},
		{"help", []string{"serve", "--help"}, 0, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := runCmd(t, tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stderr: %s", code, tc.code, errOut)
			}
			lines := strings.Split(strings.TrimSpace(errOut), "\n")
			for _, want := range tc.wantLines {
				n := 0
				for _, l := range lines {
					if strings.Contains(l, want) {
						n++
					}
				}
				if n != 1 {
					t.Errorf("%d lines contain %q; stderr:\n%s", n, want, errOut)
				}
			}
		})
	}
}

func TestServeBindErrorNamesKey(t *testing.T) {
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	path := filepath.Join(dir, "gateway.yaml")
	os.WriteFile(path, []byte(fmt.Sprintf("data_dir: %s\nadmin:\n  listen: %s\nnfs: {enabled: false}\nnfs4: {enabled: false}\nsmb: {enabled: false}\ns3: {enabled: false}\n",
		filepath.Join(dir, "data"), l.Addr())), 0o644)
	code, _, errOut := runCmd(t, "serve", "--config", path)
	if code != 1 || !strings.Contains(errOut, "admin.listen") || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
		t.Fatalf("exit %d, stderr %q: want one line naming admin.listen", code, errOut)
	}
}

// TestOperatorCommands runs the operator commands on a stopped gateway's
// store, then through a running gateway's admin API.
func TestOperatorCommands(t *testing.T) {
	dir := t.TempDir()
	cfg, adminAddr := writeConfig(t, dir, "")
	steps := func(t *testing.T, user string, uid string) {
		code, out, errOut := runCmd(t, "user", "add", user, "--uid", uid, "--gid", uid, "--password", "pw", "--config", cfg)
		if code != 0 || !strings.Contains(out, "S3 access key:") {
			t.Fatalf("user add: %d %s %s", code, out, errOut)
		}
		code, out, _ = runCmd(t, "user", "list", "--config", cfg)
		if code != 0 || !strings.Contains(out, user) {
			t.Fatalf("user list: %d %s", code, out)
		}
		code, _, errOut = runCmd(t, "user", "add", user, "--uid", uid, "--gid", uid, "--config", cfg)
		if code != 1 || !strings.Contains(errOut, "exists") {
			t.Fatalf("duplicate user add: %d %s", code, errOut)
		}
		code, out, _ = runCmd(t, "quota", "set", "--user", uid, "--bytes-hard", "2G", "--inodes-hard", "100", "--config", cfg)
		if code != 0 || !strings.Contains(out, "2147483648") {
			t.Fatalf("quota set: %d %s", code, out)
		}
		code, out, _ = runCmd(t, "quota", "report", "--config", cfg)
		if code != 0 || !strings.Contains(out, uid) {
			t.Fatalf("quota report: %d %s", code, out)
		}
		code, _, errOut = runCmd(t, "quota", "set", "--user", uid, "--bytes-soft", "3G", "--bytes-hard", "2G", "--config", cfg)
		if code != 1 || !strings.Contains(errOut, "soft") {
			t.Fatalf("quota set soft above hard: %d %s", code, errOut)
		}
		code, out, errOut = runCmd(t, "fsck", "--config", cfg)
		if code != 0 || !strings.Contains(out, "no problems found") {
			t.Fatalf("fsck: %d %s %s", code, out, errOut)
		}
		code, out, errOut = runCmd(t, "gc", "--config", cfg)
		if code != 0 || !strings.Contains(out, "gc: purged") {
			t.Fatalf("gc: %d %s %s", code, out, errOut)
		}
		code, _, _ = runCmd(t, "user", "delete", user, "--config", cfg)
		if code != 0 {
			t.Fatalf("user delete: %d", code)
		}
	}
	t.Run("stopped", func(t *testing.T) { steps(t, "ann", "1500") })
	t.Run("running", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan int)
		var out, errOut bytes.Buffer
		go func() { done <- run(ctx, []string{"serve", "--config", cfg}, &out, &errOut) }()
		deadline := time.Now().Add(10 * time.Second)
		for {
			resp, err := http.Get("http://" + adminAddr + "/health")
			if err == nil {
				resp.Body.Close()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("gateway did not start: %s", errOut.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
		steps(t, "bea", "1600")
		cancel()
		if code := <-done; code != 0 {
			t.Fatalf("serve exited %d: %s", code, errOut.String())
		}
		if !strings.Contains(out.String(), "admin") || !strings.Contains(out.String(), adminAddr) {
			t.Fatalf("serve did not print where it listens: %q", out.String())
		}
	})
}
