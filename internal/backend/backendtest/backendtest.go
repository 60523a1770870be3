// Package backendtest starts real backend servers for the tests of the
// scale-out engines: an etcd cluster and an S3 server (versitygw with its
// posix backend), on 127.0.0.1 only, with their data in t.TempDir(), and
// stops them when the test ends. It also kills and restarts them for
// failure tests.
//
// A test that needs a server binary that is not installed is skipped with
// the command that installs it, except when the environment has CI=true:
// there it fails, so that CI cannot pass by skipping. It is imported only
// by tests.
package backendtest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// FindBinary returns the path of an installed server binary: on PATH, or
// in $(go env GOPATH)/bin where `go install` puts it. When it is missing
// the test is skipped (failed when CI=true) with install as the remedy.
func FindBinary(t testing.TB, name, install string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range goBinDirs() {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p
		}
	}
	msg := fmt.Sprintf("%s is not installed (looked on PATH and in the Go bin directories %v); install it with: %s", name, goBinDirs(), install)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

var (
	goBinOnce sync.Once
	goBin     []string
)

func goBinDirs() []string {
	goBinOnce.Do(func() {
		if d := os.Getenv("GOBIN"); d != "" {
			goBin = append(goBin, d)
		}
		if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
			for _, p := range filepath.SplitList(strings.TrimSpace(string(out))) {
				goBin = append(goBin, filepath.Join(p, "bin"))
			}
		}
		if home, err := os.UserHomeDir(); err == nil {
			goBin = append(goBin, filepath.Join(home, "go", "bin"))
		}
	})
	return goBin
}

// FreePorts returns n TCP ports that were free on 127.0.0.1 a moment ago.
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	var ls []net.Listener
	var ports []int
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("finding a free port: %v", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

// process is one server process with its output kept in a file for the
// test log.
type process struct {
	name    string
	bin     string
	args    []string
	env     []string
	logPath string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

func (p *process) start(t testing.TB) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		t.Fatalf("%s is already running", p.name)
	}
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group, so that a signal to the test's group (^C)
	// does not race with the test's own stopping; killed with the test
	// process, so that a test binary that panics leaves no server behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("starting %s: %v", p.name, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(done)
	}()
	p.cmd, p.done = cmd, done
}

// kill sends SIGKILL and waits for the process to exit. It does nothing if
// the process is not running.
func (p *process) kill() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.cmd, p.done = nil, nil
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-done
}

func (p *process) running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// logTail returns the end of the process's output, for failure messages.
func (p *process) logTail() string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return ""
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(bytes.TrimSpace(b))
}

// waitFor polls cond until it returns nil or the timeout passes, and then
// fails the test with the last error and the process output.
func waitFor(t testing.TB, what string, timeout time.Duration, p *process, cond func(ctx context.Context) error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if p != nil && !p.running() {
			t.Fatalf("%s exited while waiting for %s; its output:\n%s", p.name, what, p.logTail())
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err = cond(ctx)
		cancel()
		if err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	out := ""
	if p != nil {
		out = "; its output:\n" + p.logTail()
	}
	t.Fatalf("%s did not happen within %v: %v%s", what, timeout, err, out)
}
