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
