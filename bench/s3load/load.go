package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/claudefs/cfs-gateway/bench/internal/loadstat"
)

// Key names. Fixed-width numbers make the lexical order of a listing the
// numeric order, which the walk checks.
const (
	largePrefix = "large/"
	smallPrefix = "small/"
	keyDigits   = 8
	maxKeyIndex = 99_999_999
)

func largeKey(i int64) string { return fmt.Sprintf("%s%0*d", largePrefix, keyDigits, i) }
func smallKey(i int64) string { return fmt.Sprintf("%s%0*d", smallPrefix, keyDigits, i) }
func listKey(i int64) string  { return fmt.Sprintf("key%0*d", keyDigits, i) }

// stampSize is how many leading bytes of an object name it (its kind and
// index), so that objects differ and a server that answers with another
// object's bytes is caught.
const (
	stampSize     = 16
	minObjectSize = stampSize
)

// objectData is the content of one object: a body shared by all objects
// of a size, behind the object's own stamp. Only the stamp is per object,
// so that 64 MiB objects need no buffer of their own.
type objectData struct {
	stamp [stampSize]byte
	base  []byte
}

// newBase returns size pseudo-random bytes, the same for the same seed in
// every process, so that a later run can check what an earlier one wrote.
func newBase(size int64, seed uint64) []byte {
	b := make([]byte, size)
	r := rand.New(rand.NewPCG(seed, seed^0x5bd1e995))
	i := 0
	for ; i+8 <= len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.Uint64())
	}
	for ; i < len(b); i++ {
		b[i] = byte(r.Uint64())
	}
	return b
}

func object(base []byte, kind string, i int64) objectData {
	d := objectData{base: base}
	copy(d.stamp[:8], kind)
	binary.BigEndian.PutUint64(d.stamp[8:], uint64(i))
	return d
}

func (d objectData) size() int64 { return int64(len(d.base)) }

func (d objectData) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("objectData: negative offset")
	}
	if off >= d.size() {
		return 0, io.EOF
	}
	n := copy(p, d.base[off:])
	if off < stampSize {
		copy(p[:n], d.stamp[off:])
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// reader returns the object's content as the seekable body the SDK needs
// to sign and checksum a request over plain HTTP.
func (d objectData) reader() *io.SectionReader { return io.NewSectionReader(d, 0, d.size()) }

// matches reports whether p is the object's content at off.
func (d objectData) matches(p []byte, off int64) bool {
	if off < 0 || off+int64(len(p)) > d.size() {
		return false
	}
	if off < stampSize {
		k := min(int64(len(p)), stampSize-off)
		if !bytes.Equal(p[:k], d.stamp[off:off+k]) {
			return false
		}
		p, off = p[k:], off+k
	}
	return bytes.Equal(p, d.base[off:off+int64(len(p))])
}

// readVerified reads body to its end and checks that it is want.
func readVerified(body io.Reader, want objectData, buf []byte) (int64, error) {
	var off int64
	for {
		n, err := body.Read(buf)
		if n > 0 {
			if !want.matches(buf[:n], off) {
				if off+int64(n) > want.size() {
					return off + int64(n), fmt.Errorf("body is longer than the %d bytes written", want.size())
				}
				return off + int64(n), fmt.Errorf("body differs from the bytes written, within bytes %d to %d", off, off+int64(n))
			}
			off += int64(n)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return off, fmt.Errorf("reading the body after %d bytes: %w", off, err)
		}
	}
	if off != want.size() {
		return off, fmt.Errorf("body has %d bytes, %d were written", off, want.size())
	}
	return off, nil
}

// bufferPool returns a pool of read buffers suited to objects of size.
func bufferPool(size int64) *sync.Pool {
	n := min(max(size, 4<<10), 1<<20)
	return &sync.Pool{New: func() any { b := make([]byte, n); return &b }}
}

// opFunc is the i-th request of a run; it returns the payload bytes moved.
type opFunc func(ctx context.Context, i int64) (int64, error)

// result is what one run measured. Failed requests are counted apart and
// left out of the rates and latencies.
type result struct {
	ops, failed int64
	bytes       int64
	elapsed     time.Duration
	latencies   []time.Duration
	firstErr    error
	limit       time.Duration
}

// graceAfterLimit is how long requests under way when a run's time is up
// may take before they are cancelled, so that a server that stops
// answering cannot hang the run.
const graceAfterLimit = 30 * time.Second

// drive runs op with workers requests in flight until count requests have
// been started or limit has passed, whichever comes first.
func drive(ctx context.Context, workers int, count int64, limit time.Duration, op opFunc) result {
	start := time.Now()
	deadline := start.Add(limit)
	ctx, cancel := context.WithDeadline(ctx, deadline.Add(graceAfterLimit))
	defer cancel()
	var next, done, failed, moved atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	var firstErr error
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			local := make([]time.Duration, 0, 1024)
			defer func() {
				mu.Lock()
				lat = append(lat, local...)
				mu.Unlock()
			}()
			for ctx.Err() == nil && time.Now().Before(deadline) {
				i := next.Add(1) - 1
				if i >= count {
					return
				}
				t0 := time.Now()
				n, err := op(ctx, i)
				if err != nil {
					failed.Add(1)
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					continue
				}
				local = append(local, time.Since(t0))
				done.Add(1)
				moved.Add(n)
			}
		})
	}
	wg.Wait()
	return result{ops: done.Load(), failed: failed.Load(), bytes: moved.Load(), elapsed: time.Since(start),
		latencies: lat, firstErr: firstErr, limit: limit}
}

// check turns a run's failures into an error: any failed request, or fewer
// than want successful ones (want 0: a timed run, any number will do).
func (r result) check(what string, want int64) error {
	if r.failed > 0 {
		return fmt.Errorf("%s: %d of %d requests failed; the first: %w", what, r.failed, r.ops+r.failed, r.firstErr)
	}
	if r.ops < want {
		return fmt.Errorf("%s: only %d of %d requests done within %s; raise -timeout or lower the count", what, r.ops, want, r.limit)
	}
	return nil
}

// line formats a run as key=value fields.
func (r result) line(o options, op string, size int64, workers int, extra ...string) string {
	secs := r.elapsed.Seconds()
	p := loadstat.Percentiles(r.latencies, 0.50, 0.99)
	f := []string{
		"server=" + o.server, "op=" + op, fmt.Sprintf("size=%d", size), fmt.Sprintf("concurrency=%d", workers),
		fmt.Sprintf("ops=%d", r.ops), fmt.Sprintf("errors=%d", r.failed), fmt.Sprintf("secs=%.2f", secs),
		fmt.Sprintf("ops_s=%.1f", float64(r.ops)/secs), fmt.Sprintf("MiBps=%.1f", float64(r.bytes)/secs/(1<<20)),
		fmt.Sprintf("p50_ms=%.3f", ms(p[0])), fmt.Sprintf("p99_ms=%.3f", ms(p[1])),
	}
	return strings.Join(append(f, extra...), " ")
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func createBucket(ctx context.Context, c *client, o options) error {
	_, err := c.s3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(o.bucket)})
	if err != nil && errorCode(err) != "BucketAlreadyOwnedByYou" {
		return fmt.Errorf("creating bucket %s at %s: %w", o.bucket, o.endpoint, err)
	}
	return nil
}

func put(ctx context.Context, c *client, bucket, key string, d objectData) (int64, error) {
	_, err := c.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key),
		Body: d.reader(), ContentLength: aws.Int64(d.size())})
	if err != nil {
		return 0, fmt.Errorf("PUT %s/%s: %w", bucket, key, err)
	}
	return d.size(), nil
}

func get(ctx context.Context, c *client, bucket, key string, want objectData, bufs *sync.Pool) (int64, error) {
	resp, err := c.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return 0, fmt.Errorf("GET %s/%s: %w", bucket, key, err)
	}
	defer resp.Body.Close()
	b := bufs.Get().(*[]byte)
	defer bufs.Put(b)
	n, err := readVerified(resp.Body, want, *b)
	if err != nil {
		return 0, fmt.Errorf("GET %s/%s: %w", bucket, key, err)
	}
	return n, nil
}

// Seeds of the two object bodies, shared by the runs that write and read.
const (
	largeSeed = 1
	smallSeed = 2
)

func putLarge(ctx context.Context, c *client, o options, out io.Writer) error {
	base := newBase(int64(o.largeSize), largeSeed)
	c.wire.reset()
	r := drive(ctx, o.largeConcurrency, o.largeCount, o.timeout, func(ctx context.Context, i int64) (int64, error) {
		return put(ctx, c, o.bucket, largeKey(i), object(base, "large", i))
	})
	fmt.Fprintln(out, r.line(o, "put-large", int64(o.largeSize), o.largeConcurrency,
		fmt.Sprintf("conns=%d", c.wire.dials.Load()), "payload="+c.wire.payloadForms()))
	return r.check("put-large", o.largeCount)
}

func getLarge(ctx context.Context, c *client, o options, out io.Writer) error {
	base := newBase(int64(o.largeSize), largeSeed)
	bufs := bufferPool(int64(o.largeSize))
	c.wire.reset()
	r := drive(ctx, o.largeConcurrency, o.largeCount, o.timeout, func(ctx context.Context, i int64) (int64, error) {
		return get(ctx, c, o.bucket, largeKey(i), object(base, "large", i), bufs)
	})
	fmt.Fprintln(out, r.line(o, "get-large", int64(o.largeSize), o.largeConcurrency,
		fmt.Sprintf("conns=%d", c.wire.dials.Load()), fmt.Sprintf("resp_checksums=%d/%d", c.wire.getChecksum.Load(), c.wire.gets.Load())))
	return r.check("get-large", o.largeCount)
}

func putSmall(ctx context.Context, c *client, o options, out io.Writer) error {
	base := newBase(int64(o.smallSize), smallSeed)
	c.wire.reset()
	r := drive(ctx, o.concurrency, o.count, o.duration, func(ctx context.Context, i int64) (int64, error) {
		return put(ctx, c, o.bucket, smallKey(i), object(base, "small", i))
	})
	fmt.Fprintln(out, r.line(o, "put-small", int64(o.smallSize), o.concurrency,
		fmt.Sprintf("conns=%d", c.wire.dials.Load()), "payload="+c.wire.payloadForms()))
	return r.check("put-small", 0)
}

func getSmall(ctx context.Context, c *client, o options, out io.Writer) error {
	base := newBase(int64(o.smallSize), smallSeed)
	bufs := bufferPool(int64(o.smallSize))
	keys, err := smallKeys(ctx, c, o)
	if err != nil {
		return err
	}
	c.wire.reset()
	r := drive(ctx, o.concurrency, o.count, o.duration, func(ctx context.Context, _ int64) (int64, error) {
		k := keys[rand.IntN(len(keys))]
		return get(ctx, c, o.bucket, smallKey(k), object(base, "small", k), bufs)
	})
	fmt.Fprintln(out, r.line(o, "get-small", int64(o.smallSize), o.concurrency,
		fmt.Sprintf("conns=%d", c.wire.dials.Load()), fmt.Sprintf("objects=%d", len(keys)),
		fmt.Sprintf("resp_checksums=%d/%d", c.wire.getChecksum.Load(), c.wire.gets.Load())))
	return r.check("get-small", 0)
}

// smallKeys lists the indexes of the objects put-small wrote (at most
// -count of them), for get-small to read at random.
func smallKeys(ctx context.Context, c *client, o options) ([]int64, error) {
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	var keys []int64
	p := s3.NewListObjectsV2Paginator(c.s3, &s3.ListObjectsV2Input{Bucket: aws.String(o.bucket),
		Prefix: aws.String(smallPrefix), MaxKeys: aws.Int32(o.pageSize)})
	for p.HasMorePages() && int64(len(keys)) < o.count {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing %s/%s to find the objects to read: %w", o.bucket, smallPrefix, err)
		}
		for _, obj := range page.Contents {
			i, err := strconv.ParseInt(strings.TrimPrefix(aws.ToString(obj.Key), smallPrefix), 10, 64)
			if err != nil || aws.ToInt64(obj.Size) != int64(o.smallSize) {
				continue
			}
			keys = append(keys, i)
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("no %d-byte objects under %s/%s: run put-small with the same -small-size first", o.smallSize, o.bucket, smallPrefix)
	}
	return keys, nil
}

// listWalk fills an empty bucket with -keys small objects, then times one
// ListObjectsV2 walk over it and checks that it returned exactly those
// keys, in order.
func listWalk(ctx context.Context, c *client, o options, out io.Writer) error {
	first, err := c.s3.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(o.bucket), MaxKeys: aws.Int32(1)})
	if err != nil {
		return fmt.Errorf("listing bucket %s: %w", o.bucket, err)
	}
	if len(first.Contents) > 0 {
		return fmt.Errorf("bucket %s is not empty (it holds %s): list needs a bucket of its own", o.bucket, aws.ToString(first.Contents[0].Key))
	}
	base := newBase(int64(o.smallSize), smallSeed)
	c.wire.reset()
	r := drive(ctx, o.concurrency, o.keys, o.timeout, func(ctx context.Context, i int64) (int64, error) {
		return put(ctx, c, o.bucket, listKey(i), object(base, "list", i))
	})
	fmt.Fprintln(out, r.line(o, "list-fill", int64(o.smallSize), o.concurrency, fmt.Sprintf("conns=%d", c.wire.dials.Load())))
	if err := r.check("list-fill", o.keys); err != nil {
		return err
	}

	c.wire.reset()
	wctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	maxPages := o.keys/int64(o.pageSize) + 2
	var found, pages int64
	var token *string
	var walkErr error
	start := time.Now()
	for pages < maxPages {
		page, err := c.s3.ListObjectsV2(wctx, &s3.ListObjectsV2Input{Bucket: aws.String(o.bucket),
			MaxKeys: aws.Int32(o.pageSize), ContinuationToken: token})
		if err != nil {
			walkErr = fmt.Errorf("ListObjectsV2 page %d of %s: %w", pages+1, o.bucket, err)
			break
		}
		pages++
		for _, obj := range page.Contents {
			if k := aws.ToString(obj.Key); k != listKey(found) && walkErr == nil {
				walkErr = fmt.Errorf("walk of %s: key %d is %q, want %q", o.bucket, found, k, listKey(found))
			}
			found++
		}
		if !aws.ToBool(page.IsTruncated) {
			break
		}
		if token = page.NextContinuationToken; token == nil {
			walkErr = fmt.Errorf("walk of %s: page %d is truncated but has no continuation token", o.bucket, pages)
			break
		}
	}
	elapsed := time.Since(start)
	if walkErr == nil && found != o.keys {
		walkErr = fmt.Errorf("walk of %s returned %d keys in %d pages, want %d", o.bucket, found, pages, o.keys)
	}
	fmt.Fprintf(out, "server=%s op=list keys=%d pages=%d ms=%.1f wait_ms=%.1f ok=%t\n",
		o.server, found, pages, ms(elapsed), ms(time.Duration(c.wire.listWait.Load())), walkErr == nil)
	return walkErr
}
