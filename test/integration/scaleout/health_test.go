package scaleout

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"testing"
	"time"
)

// healthNode is one backend node in GET /health.
type healthNode struct {
	Name    string `json:"name"`
	Addr    string `json:"addr"`
	Up      bool   `json:"up"`
	Breaker string `json:"breaker"`
	Error   string `json:"error"`
}

// TestHealthListsBackendNodes reads a gateway's /health over etcd and an
// object store: every etcd member and the object store endpoint are listed
// with their health and breaker state, and a stopped member shows as down
// until it is back.
func TestHealthListsBackendNodes(t *testing.T) {
	e := newEnv(t)
	bin := buildGateway(t)
	dir := t.TempDir()
	cfg := writeGatewayConfig(t, e, "health", dir, e.s3.Endpoint)
	f, err := os.OpenFile(cfg, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(f, "connection_pool: {health_check_interval_ms: 200, connect_timeout_ms: 500}")
	f.Close()
	g := startGatewayProc(t, bin, cfg, "gw")

	nodes := func() map[string][]healthNode {
		t.Helper()
		resp, err := http.Get("http://" + g.addrs["admin.listen"] + "/health")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var report struct {
			Components []struct {
				Name    string `json:"name"`
				Details struct {
					Nodes []healthNode `json:"nodes"`
				} `json:"details"`
			} `json:"components"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&report); err != nil {
			t.Fatal(err)
		}
		out := map[string][]healthNode{}
		for _, c := range report.Components {
			out[c.Name] = c.Details.Nodes
		}
		return out
	}
	got := nodes()
	if meta := got["metadata"]; len(meta) != 3 {
		t.Fatalf("metadata nodes: %+v, want the 3 etcd members", meta)
	}
	for i, n := range got["metadata"] {
		if n.Name != fmt.Sprintf("meta-%d", i+1) || n.Addr != e.etcd.Endpoints()[i] || !n.Up || n.Breaker != "closed" {
			t.Errorf("metadata node %d: %+v", i, n)
		}
	}
	if blocks := got["blocks"]; len(blocks) != 1 || blocks[0].Name != "blob-1" || !blocks[0].Up || blocks[0].Breaker != "closed" {
		t.Errorf("blocks nodes: %+v, want the object store endpoint", blocks)
	}

	// waitFor polls until member 2's entry satisfies ok.
	waitFor := func(what string, ok func(n healthNode) bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			n := nodes()["metadata"][1]
			if ok(n) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("meta-2 is not %s after 20 s: %+v", what, n)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	e.etcd.Kill(1)
	waitFor("down", func(n healthNode) bool { return !n.Up && n.Error != "" })
	e.etcd.Restart(1)
	waitFor("up again", func(n healthNode) bool { return n.Up })
}
