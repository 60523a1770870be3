package oncrpc

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
)

// BenchmarkNullCalls measures NULL calls per second through the whole
// stack (client encode, record marking, server dispatch, reply write)
// with 16 calls in flight on each connection.
func BenchmarkNullCalls(b *testing.B) {
	const depth = 16
	for _, conns := range []int{1, 4} {
		b.Run(fmt.Sprintf("conns=%d/depth=%d", conns, depth), func(b *testing.B) {
			ts := startServer(b, Config{})
			clients := make([]*Client, conns)
			for i := range clients {
				clients[i] = dialClient(b, ts.addr)
			}
			var remaining atomic.Int64
			remaining.Store(int64(b.N))
			var wg sync.WaitGroup
			errs := make(chan error, conns*depth)
			b.ReportAllocs()
			b.ResetTimer()
			for _, c := range clients {
				for range depth {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for remaining.Add(-1) >= 0 {
							if err := c.Call(context.Background(), testProg, 1, procNull, nil, nil); err != nil {
								errs <- err
								return
							}
						}
					}()
				}
			}
			wg.Wait()
			b.StopTimer()
			close(errs)
			for err := range errs {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
		})
	}
}

const (
	holdAddrEnv  = "ONCRPC_BENCH_HOLD_ADDR"
	holdConnsEnv = "ONCRPC_BENCH_HOLD_CONNS"
)

// BenchmarkIdleConnectionMemory measures what the server holds per idle
// connection with 1,000 connections open. The client end of the
// connections lives in a child process so that only the server's side
// is counted. Reported: heap plus goroutine stacks per connection,
// after a garbage collection. Run with -benchtime=1x.
func BenchmarkIdleConnectionMemory(b *testing.B) {
	const conns = 1000
	for range b.N {
		obs := &recordingObserver{}
		ts := startServer(b, Config{ConnObserver: obs})

		before := settledMemStats()
		child := exec.Command(os.Args[0], "-test.run=^TestHoldConnectionsHelper$")
		child.Env = append(os.Environ(), holdAddrEnv+"="+ts.addr, holdConnsEnv+"="+strconv.Itoa(conns))
		stdin, err := child.StdinPipe()
		if err != nil {
			b.Fatal(err)
		}
		stdout, err := child.StdoutPipe()
		if err != nil {
			b.Fatal(err)
		}
		child.Stderr = os.Stderr
		if err := child.Start(); err != nil {
			b.Fatal(err)
		}
		stop := func() {
			stdin.Close()
			child.Wait()
		}
		if !waitForLine(stdout, "ready") {
			child.Process.Kill()
			stop()
			b.Fatal("helper process did not open its connections")
		}
		waitFor(b, "all connections accepted", func() bool { return obs.open.Load() == conns })
		after := settledMemStats()
		stop()
		waitFor(b, "all connections closed", func() bool { return obs.done.Load() == conns })

		perConn := func(a, z uint64) float64 { return (float64(z) - float64(a)) / conns }
		b.ReportMetric(perConn(before.HeapAlloc+before.StackInuse, after.HeapAlloc+after.StackInuse), "heap+stack-B/idle-conn")
		b.ReportMetric(perConn(before.Sys, after.Sys), "sys-B/idle-conn")
	}
}

func settledMemStats() runtime.MemStats {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms
}

func waitForLine(r io.Reader, want string) bool {
	s := bufio.NewScanner(r)
	for s.Scan() {
		if s.Text() == want {
			return true
		}
	}
	return false
}

// TestHoldConnectionsHelper is the child process of
// BenchmarkIdleConnectionMemory: it opens the connections, says
// "ready", and holds them until its standard input closes.
func TestHoldConnectionsHelper(t *testing.T) {
	addr := os.Getenv(holdAddrEnv)
	if addr == "" {
		t.Skip("runs only as the helper process of BenchmarkIdleConnectionMemory")
	}
	n, err := strconv.Atoi(os.Getenv(holdConnsEnv))
	if err != nil {
		t.Fatal(err)
	}
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
}
