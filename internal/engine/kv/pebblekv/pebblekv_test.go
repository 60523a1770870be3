package pebblekv

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/claudefs/cfs-gateway/internal/engine/kv"
	"github.com/claudefs/cfs-gateway/internal/engine/kv/kvtest"
)

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func openTemp(t testing.TB, opts Options) *Store {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	s, err := Open(t.TempDir(), opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	kvtest.Run(t, func(t *testing.T) kv.Store { return openTemp(t, Options{}) })
}

// With a one-slot conflict table every key collides with every other: the
// check degrades to "any commit since my start", which must still count
// exactly, only with more reruns.
func TestTinyConflictTableStaysCorrect(t *testing.T) {
	s := openTemp(t, Options{ConflictSlots: 1, MaxRetries: 10000})
	defer s.Close()
	const goroutines, increments, counters = 8, 100, 4
	ctx := context.Background()
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < increments; i++ {
				key := []byte{'c', byte('0' + (g+i)%counters)}
				err := s.Update(ctx, func(tx kv.Txn) error {
					n := 0
					v, err := tx.Get(ctx, key)
					if err == nil {
						n, err = strconv.Atoi(string(v))
					}
					if err != nil && !errors.Is(err, kv.ErrNotFound) {
						return err
					}
					tx.Put(key, []byte(strconv.Itoa(n+1)))
					return nil
				})
				if err != nil {
					t.Errorf("increment %s: %v", key, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	total := 0
	err := s.View(ctx, func(r kv.Reader) error {
		ps, err := r.Scan(ctx, []byte("c"), []byte("d"), 0, false)
		for _, p := range ps {
			n, _ := strconv.Atoi(string(p.Value))
			total += n
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if total != goroutines*increments {
		t.Fatalf("counters sum to %d, want %d", total, goroutines*increments)
	}

	// And a write to any other key forces a rerun.
	runs := 0
	err = s.Update(ctx, func(tx kv.Txn) error {
		runs++
		if _, err := tx.Get(ctx, []byte("x")); err != nil && !errors.Is(err, kv.ErrNotFound) {
			return err
		}
		if runs == 1 {
			if err := s.Update(ctx, func(tx2 kv.Txn) error {
				tx2.Put([]byte("y"), nil)
				return nil
			}); err != nil {
				return err
			}
		}
		tx.Put([]byte("x"), nil)
		return nil
	})
	if err != nil || runs != 2 {
		t.Fatalf("Update = %v after %d runs, want success after 2 runs", err, runs)
	}
}

func TestOptionsDefaults(t *testing.T) {
	tests := []struct {
		in, want int
	}{
		{0, defaultConflictSlots},
		{1, 1},
		{3, 4},
		{1000, 1024},
		{1 << 16, 1 << 16},
	}
	for _, tc := range tests {
		got := Options{ConflictSlots: tc.in}.withDefaults().ConflictSlots
		if got != tc.want {
			t.Errorf("ConflictSlots %d -> %d, want %d", tc.in, got, tc.want)
		}
	}
}

func TestReopenKeepsData(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s, err := Open(dir, Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Update(ctx, func(tx kv.Txn) error {
		tx.Put([]byte("a"), []byte("1"))
		tx.Put([]byte("b"), []byte("2"))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir, Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	// The conflict table starts empty after a restart; a transaction must
	// still commit, and see the old data.
	err = s.Update(ctx, func(tx kv.Txn) error {
		v, err := tx.Get(ctx, []byte("a"))
		if err != nil {
			return err
		}
		if string(v) != "1" {
			return fmt.Errorf("a = %q after reopen, want 1", v)
		}
		tx.Put([]byte("c"), v)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestLargestTransaction(t *testing.T) {
	s := openTemp(t, Options{})
	defer s.Close()
	ctx := context.Background()
	val := bytes.Repeat([]byte{7}, kv.MaxValueSize)
	err := s.Update(ctx, func(tx kv.Txn) error {
		for i := 0; i < kv.MaxTxnOps; i++ {
			tx.Put(fmt.Appendf(nil, "big/%03d", i), val)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Update of %d values of %d bytes: %v", kv.MaxTxnOps, kv.MaxValueSize, err)
	}
	err = s.View(ctx, func(r kv.Reader) error {
		ps, err := r.Scan(ctx, []byte("big/"), kv.PrefixEnd([]byte("big/")), 0, false)
		if err != nil {
			return err
		}
		if len(ps) != kv.MaxTxnOps {
			return fmt.Errorf("scan found %d values, want %d", len(ps), kv.MaxTxnOps)
		}
		for _, p := range ps {
			if !bytes.Equal(p.Value, val) {
				return fmt.Errorf("value of %s differs", p.Key)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestConflictExhaustsRetries(t *testing.T) {
	s := openTemp(t, Options{MaxRetries: 3})
	defer s.Close()
	ctx := context.Background()
	runs := 0
	err := s.Update(ctx, func(tx kv.Txn) error {
		runs++
		if _, err := tx.Get(ctx, []byte("hot")); err != nil && !errors.Is(err, kv.ErrNotFound) {
			return err
		}
		// Every run is overtaken by another writer of the key it read.
		if err := s.Update(ctx, func(tx2 kv.Txn) error {
			tx2.Put([]byte("hot"), []byte(strconv.Itoa(runs)))
			return nil
		}); err != nil {
			return err
		}
		tx.Put([]byte("loser"), []byte("x"))
		return nil
	})
	if !errors.Is(err, kv.ErrConflict) {
		t.Fatalf("Update = %v, want kv.ErrConflict", err)
	}
	if runs != 4 {
		t.Fatalf("fn ran %d times, want 1 + MaxRetries = 4", runs)
	}
	st := s.Stats()
	if st.Exhausted != 1 || st.Reruns != 3 || st.Commits != 4 {
		t.Fatalf("Stats = %+v, want 1 exhausted, 3 reruns, 4 commits", st)
	}
	err = s.View(ctx, func(r kv.Reader) error {
		_, err := r.Get(ctx, []byte("loser"))
		return err
	})
	if !errors.Is(err, kv.ErrNotFound) {
		t.Fatalf("the losing transaction's write is visible: %v", err)
	}
}

func TestContextCanceledDuringBackoff(t *testing.T) {
	s := openTemp(t, Options{MaxRetries: 1000})
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runs := 0
	err := s.Update(ctx, func(tx kv.Txn) error {
		runs++
		if _, err := tx.Get(ctx, []byte("hot")); err != nil && !errors.Is(err, kv.ErrNotFound) {
			return err
		}
		if err := s.Update(context.Background(), func(tx2 kv.Txn) error {
			tx2.Put([]byte("hot"), []byte("x"))
			return nil
		}); err != nil {
			return err
		}
		if runs == 3 {
			cancel()
		}
		tx.Put([]byte("loser"), []byte("x"))
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Update = %v, want context.Canceled", err)
	}
	if runs != 3 {
		t.Fatalf("fn ran %d times after the context was canceled on run 3", runs)
	}
}

func TestMetrics(t *testing.T) {
	s := openTemp(t, Options{})
	if m := s.Metrics(); !strings.Contains(m, "WAL") {
		t.Errorf("Metrics() lacks the WAL section:\n%s", m)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if m := s.Metrics(); m != "" {
		t.Errorf("Metrics() after Close = %q, want empty", m)
	}
	if err := s.Close(); !errors.Is(err, kv.ErrClosed) {
		t.Errorf("second Close = %v, want kv.ErrClosed", err)
	}
}

func TestOpenLockedInProcess(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = Open(dir, Options{Logger: testLogger(t)})
	if !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("second Open = %v, want ErrInUse naming %s", err, dir)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir, Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("Open after the first store closed: %v", err)
	}
	s.Close()
}

// Helper processes are this test binary run again with an environment
// variable naming the role.
const (
	envRole = "PEBBLEKV_TEST_ROLE"
	envDir  = "PEBBLEKV_TEST_DIR"
)

func startHelper(t *testing.T, role, dir string) (*exec.Cmd, io.WriteCloser, *bufio.Scanner) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), envRole+"="+role, envDir+"="+dir)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd, stdin, bufio.NewScanner(stdout)
}

func TestHelperProcess(t *testing.T) {
	role, dir := os.Getenv(envRole), os.Getenv(envDir)
	if role == "" {
		t.Skip("runs only as a helper process of other tests")
	}
	s, err := Open(dir, Options{Logger: testLogger(t)})
	if err != nil {
		fmt.Println("open failed:", err)
		os.Exit(1)
	}
	switch role {
	case "hold":
		fmt.Println("ready")
		// Hold the lock until the parent closes stdin.
		_, _ = io.Copy(io.Discard, os.Stdin)
	case "write":
		// Acknowledge each key only after Update returned; the parent kills
		// this process with SIGKILL at some point.
		var mu sync.Mutex
		var wg sync.WaitGroup
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					key := fmt.Sprintf("k/%d/%d", g, i)
					err := s.Update(context.Background(), func(tx kv.Txn) error {
						tx.Put([]byte(key), []byte(key))
						return nil
					})
					if err != nil {
						fmt.Println("update failed:", err)
						os.Exit(1)
					}
					mu.Lock()
					fmt.Println("acked", key)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
	}
	_ = s.Close()
	os.Exit(0)
}

func TestOpenLockedByOtherProcess(t *testing.T) {
	dir := t.TempDir()
	cmd, stdin, out := startHelper(t, "hold", dir)
	if !out.Scan() || out.Text() != "ready" {
		t.Fatalf("helper did not open the store: %q", out.Text())
	}
	_, err := Open(dir, Options{Logger: testLogger(t)})
	if !errors.Is(err, ErrInUse) {
		t.Fatalf("Open of a directory held by another process = %v, want ErrInUse", err)
	}
	if msg := err.Error(); !strings.Contains(msg, dir) || !strings.Contains(msg, "in use") {
		t.Fatalf("error %q should name the directory and say it is in use", msg)
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper: %v", err)
	}
	s, err := Open(dir, Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("Open after the other process exited: %v", err)
	}
	s.Close()
}

// TestAcknowledgedUpdatesSurviveKill kills a writing process with SIGKILL
// and checks that every Update it acknowledged is in the database.
func TestAcknowledgedUpdatesSurviveKill(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a writer process")
	}
	dir := t.TempDir()
	cmd, _, out := startHelper(t, "write", dir)
	var acked []string
	for len(acked) < 2000 && out.Scan() {
		line := out.Text()
		key, ok := strings.CutPrefix(line, "acked ")
		if !ok {
			t.Fatalf("helper: %s", line)
		}
		acked = append(acked, key)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	// Acknowledgements already written to the pipe count too.
	for out.Scan() {
		if key, ok := strings.CutPrefix(out.Text(), "acked "); ok {
			acked = append(acked, key)
		}
	}
	_ = cmd.Wait()
	if len(acked) < 2000 {
		t.Fatalf("helper acknowledged only %d updates before exiting", len(acked))
	}

	s, err := Open(dir, Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("Open after kill: %v", err)
	}
	defer s.Close()
	ctx := context.Background()
	err = s.View(ctx, func(r kv.Reader) error {
		for _, key := range acked {
			v, err := r.Get(ctx, []byte(key))
			if err != nil {
				return fmt.Errorf("acknowledged key %s: %w", key, err)
			}
			if string(v) != key {
				return fmt.Errorf("acknowledged key %s holds %q", key, v)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
