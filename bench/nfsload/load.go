package main

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/claudefs/cfs-gateway/bench/internal/loadstat"
	"github.com/claudefs/cfs-gateway/internal/protocol/xdr/nfsv3"
)

// options are the flags of "run".
type options struct {
	addr, mountAddr string
	export          string
	workload        string
	bs              loadstat.ByteSize
	size            loadstat.ByteSize
	qd, conns       int
	duration        time.Duration
	ops             int64
	stable          string
	uid, gid        uint
	dir             string
	fileSize        loadstat.ByteSize
}

func runLoad(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(errOut)
	var o options
	o.bs, o.size = 1<<20, 256<<20
	fs.StringVar(&o.addr, "addr", "127.0.0.1:2049", "NFS server address")
	fs.StringVar(&o.mountAddr, "mount", "", "MOUNT address (default: the NFS address, which also answers MOUNT)")
	fs.StringVar(&o.export, "export", "/export", "export to mount")
	fs.StringVar(&o.workload, "workload", "write", "write, read, randread, getattr, lookup or create")
	fs.Var(&o.bs, "bs", "bytes per READ or WRITE (k, m, g suffixes)")
	fs.Var(&o.size, "size", "file size for write, read and randread")
	fs.IntVar(&o.qd, "qd", 1, "calls in flight per connection")
	fs.IntVar(&o.conns, "conns", 1, "connections")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "time limit (randread, getattr, lookup, create run this long)")
	fs.Int64Var(&o.ops, "ops", 0, "stop after this many calls (0: write and read cover -size once; others run for -duration)")
	fs.StringVar(&o.stable, "stable", "unstable", "write stability: unstable (with a COMMIT at the end), data_sync or file_sync")
	fs.UintVar(&o.uid, "uid", 0, "AUTH_SYS uid")
	fs.UintVar(&o.gid, "gid", 0, "AUTH_SYS gid")
	fs.StringVar(&o.dir, "dir", "nfsload", "working directory below the export root")
	fs.Var(&o.fileSize, "filesize", "create: bytes written (FILE_SYNC) into each created file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.mountAddr == "" {
		o.mountAddr = o.addr
	}
	if o.qd < 1 || o.conns < 1 || o.bs < 1 || o.bs > 64<<20 {
		return fmt.Errorf("-qd and -conns must be at least 1, -bs between 1 and 64m")
	}
	r, err := execute(ctx, o)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, r.String())
	return nil
}

// result is what one run measured.
type result struct {
	o         options
	calls     int64
	bytes     int64
	elapsed   time.Duration
	latencies []time.Duration
}

func (r result) String() string {
	s := fmt.Sprintf("workload=%s qd=%d conns=%d", r.o.workload, r.o.qd, r.o.conns)
	if r.o.workload == "write" || r.o.workload == "read" || r.o.workload == "randread" {
		s += fmt.Sprintf(" bs=%d", r.o.bs)
	}
	secs := r.elapsed.Seconds()
	s += fmt.Sprintf(" calls=%d time=%.2fs ops/s=%.0f", r.calls, secs, float64(r.calls)/secs)
	if r.bytes > 0 {
		s += fmt.Sprintf(" MiB/s=%.1f", float64(r.bytes)/secs/(1<<20))
	}
	p := loadstat.Percentiles(r.latencies, 0.50, 0.99, 0.999)
	s += fmt.Sprintf(" p50=%s p99=%s p99.9=%s", fmtDur(p[0]), fmtDur(p[1]), fmtDur(p[2]))
	return s
}

func fmtDur(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%.0fus", float64(d)/float64(time.Microsecond))
	default:
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	}
}

// opFunc is one call of a workload: the i-th, on connection c. It returns
// the payload bytes it moved.
type opFunc func(ctx context.Context, c *conn, i int64) (int, error)

// drive runs op on every connection with qd calls in flight each, until
// total calls are done (total < 0: until the duration ends).
func drive(ctx context.Context, conns []*conn, qd int, total int64, duration time.Duration, op opFunc) (result, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	deadline := time.Now().Add(duration)
	var next, bytes atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	var firstErr error
	var wg sync.WaitGroup
	start := time.Now()
	for _, c := range conns {
		for w := 0; w < qd; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				local := make([]time.Duration, 0, 1024)
				defer func() {
					mu.Lock()
					lat = append(lat, local...)
					mu.Unlock()
				}()
				for ctx.Err() == nil {
					i := next.Add(1) - 1
					if (total >= 0 && i >= total) || (total < 0 && time.Now().After(deadline)) {
						return
					}
					t0 := time.Now()
					n, err := op(ctx, c, i)
					if err != nil {
						mu.Lock()
						if firstErr == nil {
							firstErr = err
						}
						mu.Unlock()
						cancel()
						return
					}
					local = append(local, time.Since(t0))
					bytes.Add(int64(n))
				}
			}()
		}
	}
	wg.Wait()
	r := result{elapsed: time.Since(start), bytes: bytes.Load(), latencies: lat, calls: int64(len(lat))}
	return r, firstErr
}

// execute prepares the working directory and file, then runs the workload.
func execute(ctx context.Context, o options) (result, error) {
	conns := make([]*conn, o.conns)
	for i := range conns {
		c, err := dialConn(ctx, o.addr, uint32(o.uid), uint32(o.gid))
		if err != nil {
			return result{}, err
		}
		defer c.Close()
		conns[i] = c
	}
	mc, err := dialConn(ctx, o.mountAddr, uint32(o.uid), uint32(o.gid))
	if err != nil {
		return result{}, err
	}
	root, err := mc.mount(ctx, o.export)
	mc.Close()
	if err != nil {
		return result{}, err
	}
	c0 := conns[0]
	dir, err := c0.lookup(ctx, root, o.dir)
	if err != nil {
		if dir, err = c0.mkdir(ctx, root, o.dir); err != nil {
			return result{}, fmt.Errorf("making the working directory %s: %w", o.dir, err)
		}
	}
	bs := int64(o.bs)
	blocks := (int64(o.size) + bs - 1) / bs
	total := o.ops
	if total == 0 {
		total = -1
	}
	var op opFunc
	var after func() error
	switch o.workload {
	case "write":
		fh, err := c0.create(ctx, dir, "data", false)
		if err != nil {
			return result{}, err
		}
		stable := map[string]nfsv3.StableHow{"unstable": nfsv3.UNSTABLE, "data_sync": nfsv3.DATA_SYNC, "file_sync": nfsv3.FILE_SYNC}
		how, ok := stable[o.stable]
		if !ok {
			return result{}, fmt.Errorf("-stable %q: want unstable, data_sync or file_sync", o.stable)
		}
		buf := make([]byte, bs)
		rand.Read(buf)
		if total < 0 {
			total = blocks
		}
		op = func(ctx context.Context, c *conn, i int64) (int, error) {
			off := uint64(i%blocks) * uint64(bs)
			return len(buf), c.write(ctx, fh, off, buf, how)
		}
		if how == nfsv3.UNSTABLE {
			after = func() error { return c0.commit(ctx, fh) }
		}
	case "read", "randread":
		fh, err := c0.lookup(ctx, dir, "data")
		if err != nil {
			return result{}, fmt.Errorf("no data file to read (run -workload write first): %w", err)
		}
		size, err := c0.getattr(ctx, fh)
		if err != nil {
			return result{}, err
		}
		if int64(size) < bs {
			return result{}, fmt.Errorf("the data file has %d bytes, less than one -bs", size)
		}
		blocks = int64(size) / bs
		if o.workload == "read" {
			if total < 0 {
				total = blocks
			}
			op = func(ctx context.Context, c *conn, i int64) (int, error) {
				return c.read(ctx, fh, uint64(i%blocks)*uint64(bs), uint32(bs))
			}
		} else {
			op = func(ctx context.Context, c *conn, i int64) (int, error) {
				return c.read(ctx, fh, uint64(mrand.Int64N(blocks))*uint64(bs), uint32(bs))
			}
		}
	case "getattr":
		fh, err := c0.create(ctx, dir, "attr", false)
		if err != nil {
			return result{}, err
		}
		op = func(ctx context.Context, c *conn, i int64) (int, error) {
			_, err := c.getattr(ctx, fh)
			return 0, err
		}
	case "lookup":
		if _, err := c0.create(ctx, dir, "attr", false); err != nil {
			return result{}, err
		}
		op = func(ctx context.Context, c *conn, i int64) (int, error) {
			_, err := c.lookup(ctx, dir, "attr")
			return 0, err
		}
	case "create":
		run := fmt.Sprintf("create-%d", time.Now().UnixNano())
		sub, err := c0.mkdir(ctx, dir, run)
		if err != nil {
			return result{}, err
		}
		payload := make([]byte, o.fileSize)
		rand.Read(payload)
		op = func(ctx context.Context, c *conn, i int64) (int, error) {
			fh, err := c.create(ctx, sub, fmt.Sprintf("f%08d", i), true)
			if err != nil || len(payload) == 0 {
				return 0, err
			}
			return len(payload), c.write(ctx, fh, 0, payload, nfsv3.FILE_SYNC)
		}
	default:
		return result{}, fmt.Errorf("unknown workload %q", o.workload)
	}
	r, err := drive(ctx, conns, o.qd, total, o.duration, op)
	if err == nil && after != nil {
		t0 := time.Now()
		err = after()
		r.elapsed += time.Since(t0)
	}
	r.o = o
	return r, err
}
