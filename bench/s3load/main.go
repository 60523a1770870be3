// Command s3load measures an S3 server with the AWS SDK for Go v2, the way
// an application would use it: 64 MiB PUT and GET throughput, 4 KiB PUT and
// GET rates with latency percentiles at a fixed concurrency, and the time of
// one ListObjectsV2 walk over a bucket of a known number of keys.
//
//	s3load -endpoint http://127.0.0.1:9000 -access K -secret S -bucket b -op put-small
//
// Every operation is bounded both in count and in time. It prints one line
// of key=value fields per figure, so that two servers measured with the
// same flags can be compared line by line. Requests use path-style
// addressing and the SDK's default checksum behaviour; retries are off, so
// that every failed request is counted and reported instead of hidden.
// It is a measurement tool: it only speaks S3 to the endpoint it is given.
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
	"time"

	"github.com/claudefs/cfs-gateway/bench/internal/loadstat"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "s3load:", err)
		}
		os.Exit(1)
	}
}

// options are the command's flags.
type options struct {
	endpoint, access, secret string
	region, bucket           string
	server                   string // label printed on every line
	op                       string
	concurrency              int
	largeConcurrency         int
	largeSize, smallSize     loadstat.ByteSize
	largeCount               int64
	count                    int64
	duration                 time.Duration
	keys                     int64
	pageSize                 int32
	timeout                  time.Duration
}

const ops = "create-bucket, put-large, get-large, put-small, get-small or list"

func parseOptions(args []string, errOut io.Writer) (options, error) {
	fs := flag.NewFlagSet("s3load", flag.ContinueOnError)
	fs.SetOutput(errOut)
	o := options{largeSize: 64 << 20, smallSize: 4 << 10}
	fs.StringVar(&o.endpoint, "endpoint", "http://127.0.0.1:9000", "S3 endpoint URL (path-style requests are sent to it)")
	fs.StringVar(&o.access, "access", "", "access key ID")
	fs.StringVar(&o.secret, "secret", "", "secret access key")
	fs.StringVar(&o.region, "region", "us-east-1", "region to sign for")
	fs.StringVar(&o.bucket, "bucket", "bench", "bucket to work in (list needs a bucket of its own: it must start empty)")
	fs.StringVar(&o.server, "server", "s3", "name of the server, printed as server=NAME on every line")
	fs.StringVar(&o.op, "op", "", "operation: "+ops)
	fs.IntVar(&o.concurrency, "concurrency", 16, "requests in flight for put-small, get-small and the list fill")
	fs.IntVar(&o.largeConcurrency, "large-concurrency", 1, "requests in flight for put-large and get-large")
	fs.Var(&o.largeSize, "large-size", "object size of put-large and get-large (k, m, g suffixes)")
	fs.Int64Var(&o.largeCount, "large-count", 8, "objects put-large writes and get-large reads")
	fs.Var(&o.smallSize, "small-size", "object size of put-small, get-small and the list fill")
	fs.Int64Var(&o.count, "count", 1_000_000, "most requests put-small and get-small make")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "time put-small and get-small run")
	fs.Int64Var(&o.keys, "keys", 10_000, "keys list writes, then walks")
	pageSize := fs.Int("page", 1000, "keys per ListObjectsV2 page")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Minute, "time limit of put-large, get-large, the list fill and the walk; reaching it is an error")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	o.pageSize = int32(*pageSize)
	switch {
	case fs.NArg() > 0:
		return o, fmt.Errorf("unexpected arguments %q: every setting is a flag", fs.Args())
	case o.access == "" || o.secret == "":
		return o, errors.New("-access and -secret are required")
	case o.concurrency < 1 || o.largeConcurrency < 1:
		return o, errors.New("-concurrency and -large-concurrency must be at least 1")
	case o.largeSize < minObjectSize || o.smallSize < minObjectSize:
		return o, fmt.Errorf("-large-size and -small-size must be at least %d bytes", minObjectSize)
	case o.largeCount < 1 || o.count < 1 || o.keys < 1:
		return o, errors.New("-large-count, -count and -keys must be at least 1")
	case max(o.largeCount, o.count, o.keys) > maxKeyIndex+1:
		return o, fmt.Errorf("-large-count, -count and -keys must be at most %d (keys have %d digits)", maxKeyIndex+1, keyDigits)
	case o.duration <= 0 || o.timeout <= 0:
		return o, errors.New("-duration and -timeout must be positive")
	case *pageSize < 1 || *pageSize > 1000:
		return o, errors.New("-page must be between 1 and 1000 (S3's largest page)")
	}
	return o, nil
}

func run(ctx context.Context, args []string, out, errOut io.Writer) error {
	o, err := parseOptions(args, errOut)
	if err != nil {
		return err
	}
	c, err := newClient(ctx, o)
	if err != nil {
		return err
	}
	switch o.op {
	case "create-bucket":
		return createBucket(ctx, c, o)
	case "put-large":
		return putLarge(ctx, c, o, out)
	case "get-large":
		return getLarge(ctx, c, o, out)
	case "put-small":
		return putSmall(ctx, c, o, out)
	case "get-small":
		return getSmall(ctx, c, o, out)
	case "list":
		return listWalk(ctx, c, o, out)
	case "":
		return fmt.Errorf("-op is required: %s", ops)
	}
	return fmt.Errorf("unknown -op %q: use %s", o.op, ops)
}
