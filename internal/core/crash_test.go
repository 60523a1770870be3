package core_test

import (
	"bufio"
	"context"
	"fmt"
	"hash/fnv"
	"math/rand"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/claudefs/cfs-gateway/internal/core"
)

// The crash test runs the core in a child process (this test binary again,
// with crashChildEnv set) that creates files and writes them with FILE_SYNC
// from several goroutines, printing each acknowledged file. The parent kills
// it with SIGKILL at a random moment, reopens the store and checks that every
// acknowledged file is there with its exact bytes, that fsck finds nothing
// wrong and that gc leaves no orphan block.
const crashChildEnv = "CFS_CRASH_CHILD_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(dir)
		return
	}
	os.Exit(m.Run())
}

// crashContent is the deterministic content of a file, from its name.
func crashContent(name string) []byte {
	h := fnv.New64a()
	h.Write([]byte(name))
	seed := h.Sum64()
	r := rand.New(rand.NewSource(int64(seed)))
	n := int(seed % (300 << 10))
	b := make([]byte, n)
	r.Read(b)
	return b
}

func crashChild(dir string) {
	t := &childTB{}
	fsys := openEmbedded(t, dir, core.Options{})
	ctx := context.Background()
	d, err := fsys.Lookup(ctx, &core.Root, core.RootIno, "crash")
	if err != nil {
		d, err = fsys.Mkdir(ctx, &core.Root, core.RootIno, "crash", 0o755)
		if err != nil {
			fmt.Fprintln(os.Stderr, "mkdir:", err)
			os.Exit(3)
		}
	}
	cycle := os.Getenv("CFS_CRASH_CYCLE")
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ; i++ {
				name := fmt.Sprintf("c%s-w%d-%d", cycle, w, i)
				f, _, err := fsys.Create(ctx, &core.Root, d.Ino, name, 0o644, core.CreateGuarded, 0)
				if err != nil {
					fmt.Fprintln(os.Stderr, "create:", err)
					os.Exit(3)
				}
				content := crashContent(name)
				// Two writes, the second stable, as clients do.
				half := len(content) / 2
				if _, err := fsys.Write(ctx, &core.Root, f.Ino, 0, content[:half], core.Unstable); err != nil {
					fmt.Fprintln(os.Stderr, "write:", err)
					os.Exit(3)
				}
				if _, err := fsys.Write(ctx, &core.Root, f.Ino, uint64(half), content[half:], core.FileSync); err != nil {
					fmt.Fprintln(os.Stderr, "write:", err)
					os.Exit(3)
				}
				if err := fsys.Commit(ctx, f.Ino); err != nil {
					fmt.Fprintln(os.Stderr, "commit:", err)
					os.Exit(3)
				}
				mu.Lock()
				fmt.Fprintf(out, "ACK %s\n", name)
				out.Flush()
				mu.Unlock()
			}
		}(w)
	}
	wg.Wait()
}

// childTB lets openEmbedded run outside a test.
type childTB struct{ testing.TB }

func (c *childTB) Helper()           {}
func (c *childTB) Cleanup(func())    {}
func (c *childTB) Fatal(args ...any) { fmt.Fprintln(os.Stderr, args...); os.Exit(3) }

func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test skipped in -short mode")
	}
	dir := t.TempDir()
	acked := map[string]bool{}
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	for cycle := 0; cycle < 20; cycle++ {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir, "CFS_CRASH_CYCLE="+strconv.Itoa(cycle))
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string, 1024)
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		// Let it run until it acknowledged some files, then a random
		// while longer, then kill it mid-flight.
		deadline := time.After(30 * time.Second)
		got := 0
	wait:
		for got < 5 {
			select {
			case l, ok := <-lines:
				if !ok {
					break wait
				}
				if name, ok := strings.CutPrefix(l, "ACK "); ok {
					acked[name] = true
					got++
				}
			case <-deadline:
				break wait
			}
		}
		time.Sleep(time.Duration(rng.Intn(200)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		for l := range lines {
			if name, ok := strings.CutPrefix(l, "ACK "); ok {
				acked[name] = true
				got++
			}
		}
		cmd.Wait()
		if got == 0 {
			t.Fatalf("cycle %d: the child acknowledged nothing; stderr: %s", cycle, stderr.String())
		}
		if strings.Contains(stderr.String(), "create:") || strings.Contains(stderr.String(), "write:") {
			t.Fatalf("cycle %d: the child failed before the kill: %s", cycle, stderr.String())
		}
		verifyCrashState(t, dir, acked, cycle)
	}
	t.Logf("%d acknowledged files survived 20 SIGKILL cycles; gc collected %d orphaned blocks", len(acked), orphansCollected)
}

// orphansCollected counts the blocks gc removed after the kills: evidence
// that the kills landed between storing blocks and committing them.
var orphansCollected int

func verifyCrashState(t *testing.T, dir string, acked map[string]bool, cycle int) {
	t.Helper()
	ctx := context.Background()
	store, blobs, fsys := openEmbeddedNoCleanup(t, dir, core.Options{NoBackground: true})
	defer func() {
		fsys.Close(ctx)
		store.Close()
		blobs.Close()
	}()
	d, err := fsys.Lookup(ctx, &core.Root, core.RootIno, "crash")
	if err != nil {
		t.Fatalf("cycle %d: %v", cycle, err)
	}
	for name := range acked {
		f, err := fsys.Lookup(ctx, &core.Root, d.Ino, name)
		if err != nil {
			t.Fatalf("cycle %d: acknowledged file %s lost: %v", cycle, name, err)
		}
		want := crashContent(name)
		got := make([]byte, len(want)+1)
		n, _, err := fsys.Read(ctx, &core.Root, f.Ino, 0, got)
		if err != nil || n != len(want) || string(got[:n]) != string(want) {
			t.Fatalf("cycle %d: file %s: read %d bytes (want %d), err %v, equal=%v", cycle, name, n, len(want), err, string(got[:n]) == string(want))
		}
	}
	rep, err := fsys.Fsck(ctx, core.FsckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) > 0 {
		t.Fatalf("cycle %d: fsck after SIGKILL: %v", cycle, rep.Problems)
	}
	unreferenced := rep.UnreferencedBlocks
	g, err := fsys.GC(ctx, core.GCOptions{SafetyWindow: 0})
	if err != nil {
		t.Fatal(err)
	}
	if g.OrphanBlocks != unreferenced {
		t.Fatalf("cycle %d: fsck counted %d unreferenced blocks, gc removed %d", cycle, unreferenced, g.OrphanBlocks)
	}
	orphansCollected += g.OrphanBlocks
	rep, err = fsys.Fsck(ctx, core.FsckOptions{SkipBlocks: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.UnreferencedBlocks != 0 || len(rep.Problems) > 0 {
		t.Fatalf("cycle %d: after gc: %d unreferenced blocks, problems %v", cycle, rep.UnreferencedBlocks, rep.Problems)
	}
}
