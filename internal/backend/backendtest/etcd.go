package backendtest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// EtcdInstall is how to get the etcd binary the tests use.
const EtcdInstall = "apt-get install -y etcd-server"

// EtcdMember is one member of a test cluster.
type EtcdMember struct {
	Name      string
	ClientURL string // http://127.0.0.1:port
	PeerURL   string
	proc      *process
}

// Endpoint is the member's client address in the host:port form the
// gateway's metadata.etcd.endpoints takes.
func (m *EtcdMember) Endpoint() string { return strings.TrimPrefix(m.ClientURL, "http://") }

// Running reports whether the member's process is alive.
func (m *EtcdMember) Running() bool { return m.proc.running() }

// EtcdCluster is an etcd cluster on loopback.
type EtcdCluster struct {
	Members []*EtcdMember
	t       testing.TB
}

// StartEtcd starts an n-member cluster and waits until every member
// reports itself healthy (it has a leader). The cluster is killed at the
// end of the test.
func StartEtcd(t testing.TB, n int) *EtcdCluster {
	t.Helper()
	bin := FindBinary(t, "etcd", EtcdInstall)
	dir := t.TempDir()
	ports := FreePorts(t, 2*n)
	c := &EtcdCluster{t: t}
	var initial []string
	for i := 0; i < n; i++ {
		m := &EtcdMember{
			Name:      fmt.Sprintf("m%d", i+1),
			ClientURL: fmt.Sprintf("http://127.0.0.1:%d", ports[2*i]),
			PeerURL:   fmt.Sprintf("http://127.0.0.1:%d", ports[2*i+1]),
		}
		initial = append(initial, m.Name+"="+m.PeerURL)
		c.Members = append(c.Members, m)
	}
	token := fmt.Sprintf("cfs-test-%x", rand.Uint64())
	for _, m := range c.Members {
		m.proc = &process{
			name: "etcd member " + m.Name,
			bin:  bin,
			args: []string{
				"--name", m.Name,
				"--data-dir", filepath.Join(dir, m.Name),
				"--listen-client-urls", m.ClientURL,
				"--advertise-client-urls", m.ClientURL,
				"--listen-peer-urls", m.PeerURL,
				"--initial-advertise-peer-urls", m.PeerURL,
				"--initial-cluster", strings.Join(initial, ","),
				"--initial-cluster-state", "new",
				"--initial-cluster-token", token,
				"--logger", "zap",
				"--log-level", "warn",
			},
			logPath: filepath.Join(dir, m.Name+".log"),
		}
		m.proc.start(t)
	}
	t.Cleanup(func() {
		for _, m := range c.Members {
			m.proc.kill()
		}
	})
	for _, m := range c.Members {
		c.waitHealthy(m, 30*time.Second)
	}
	return c
}

// Endpoints lists the members' client addresses.
func (c *EtcdCluster) Endpoints() []string {
	var eps []string
	for _, m := range c.Members {
		eps = append(eps, m.Endpoint())
	}
	return eps
}

// Kill stops member i with SIGKILL and waits until it has exited.
func (c *EtcdCluster) Kill(i int) { c.Members[i].proc.kill() }

// Restart starts a killed member again on its data directory and waits
// until it is healthy (which needs a quorum of members running).
func (c *EtcdCluster) Restart(i int) {
	c.t.Helper()
	m := c.Members[i]
	m.proc.start(c.t)
	c.waitHealthy(m, 30*time.Second)
}

// Start starts a killed member again without waiting for it.
func (c *EtcdCluster) Start(i int) {
	c.t.Helper()
	c.Members[i].proc.start(c.t)
}

// WaitHealthy waits until every running member reports a leader.
func (c *EtcdCluster) WaitHealthy(timeout time.Duration) {
	c.t.Helper()
	for _, m := range c.Members {
		if m.Running() {
			c.waitHealthy(m, timeout)
		}
	}
}

func (c *EtcdCluster) waitHealthy(m *EtcdMember, timeout time.Duration) {
	c.t.Helper()
	waitFor(c.t, "etcd member "+m.Name+" healthy", timeout, m.proc, func(ctx context.Context) error {
		return memberHealth(ctx, m)
	})
}

// memberHealth asks the member's /health endpoint, which is true only when
// the member has a leader.
func memberHealth(ctx context.Context, m *EtcdMember) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.ClientURL+"/health", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var h struct {
		Health string `json:"health"`
		Reason string `json:"reason"`
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err := json.Unmarshal(body, &h); err != nil {
		return fmt.Errorf("health answer %q: %v", body, err)
	}
	if h.Health != "true" {
		return fmt.Errorf("not healthy: %s", body)
	}
	return nil
}

// Leader returns the index of the member that is leader now, asking the
// running members' status endpoints.
func (c *EtcdCluster) Leader() int {
	c.t.Helper()
	var leader int
	waitFor(c.t, "an etcd leader", 30*time.Second, nil, func(ctx context.Context) error {
		for i, m := range c.Members {
			if !m.Running() {
				continue
			}
			st, err := memberStatus(ctx, m)
			if err != nil {
				continue
			}
			if st.Leader != "" && st.Leader != "0" && st.Leader == st.Header.MemberID {
				leader = i
				return nil
			}
		}
		return fmt.Errorf("no running member says it is the leader")
	})
	return leader
}

type statusAnswer struct {
	Header struct {
		MemberID string `json:"member_id"`
	} `json:"header"`
	Leader string `json:"leader"`
}

// memberStatus calls the maintenance Status RPC through etcd's JSON
// gateway, which keeps this package free of the etcd client.
func memberStatus(ctx context.Context, m *EtcdMember) (statusAnswer, error) {
	var st statusAnswer
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.ClientURL+"/v3/maintenance/status", strings.NewReader("{}"))
	if err != nil {
		return st, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("status: %s: %s", resp.Status, body)
	}
	if err := json.Unmarshal(body, &st); err != nil {
		return st, fmt.Errorf("status answer %q: %v", body, err)
	}
	return st, nil
}
