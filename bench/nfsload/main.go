// Command nfsload measures an NFSv3 server with pipelined RPCs: sequential
// WRITE and READ, random READ, GETATTR, LOOKUP and CREATE, over one or more
// TCP connections with a configurable number of calls in flight on each
// (the queue depth). It reports throughput and latency percentiles.
//
//	nfsload run -addr 127.0.0.1:2049 -export /export -workload write -bs 1m -size 1g -qd 8
//	nfsload serve -data DIR -listen 127.0.0.1:2049
//
// "serve" runs the gateway's NFSv3 server on the embedded engines with the
// configuration defaults (or -config), the same assembly as `cfs-gateway
// serve`, so that a machine without the full gateway wiring can be
// measured. It is a measurement tool: it talks only NFS and MOUNT, with
// the RPC client of internal/protocol/oncrpc.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "nfsload:", err)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out, errOut io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(errOut, "usage: nfsload run|serve [flags]; nfsload run -h for the flags")
		return flag.ErrHelp
	}
	switch args[0] {
	case "run":
		return runLoad(ctx, args[1:], out, errOut)
	case "serve":
		return runServe(ctx, args[1:], out, errOut)
	}
	return fmt.Errorf("unknown command %q: use run or serve", args[0])
}

// byteSize is a flag of a size with an optional k, m or g suffix (powers
// of 1024).
type byteSize int64

func (b *byteSize) String() string { return strconv.FormatInt(int64(*b), 10) }

func (b *byteSize) Set(s string) error {
	v, err := parseSize(s)
	if err != nil {
		return err
	}
	*b = byteSize(v)
	return nil
}

func parseSize(s string) (int64, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "k"):
		mult, s = 1<<10, s[:len(s)-1]
	case strings.HasSuffix(s, "m"):
		mult, s = 1<<20, s[:len(s)-1]
	case strings.HasSuffix(s, "g"):
		mult, s = 1<<30, s[:len(s)-1]
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("size %q: want a number with an optional k, m or g suffix", s)
	}
	return v * mult, nil
}
