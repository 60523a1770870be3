package sigv4

import (
	"context"
	"crypto/md5"
	"hash"
	"sync"
)

// MD5 is the slowest digest on the upload path (about 0.7 GB/s on one
// core) and every upload needs it for its ETag. For large bodies it is
// computed on a goroutine of its own, beside decoding, the other digests
// and the server's writes: the bytes are copied into a few slots that the
// goroutine hashes in order.
const (
	asyncMD5Threshold = 1 << 20 // bodies at least this long hash MD5 aside
	md5SlotSize       = 256 << 10
	md5Slots          = 4
)

var md5SlotPool = sync.Pool{New: func() any {
	b := make([]byte, 0, md5SlotSize)
	return &b
}}

// md5Digest computes the payload's MD5 inline, or aside once switched.
type md5Digest struct {
	h     hash.Hash
	async *asyncMD5
}

func newMD5Digest() *md5Digest { return &md5Digest{h: md5.New()} }

// goAsync moves further hashing to a goroutine. ctx ends it if the
// request ends before the body does.
func (d *md5Digest) goAsync(ctx context.Context) {
	if d.async == nil {
		d.async = startAsyncMD5(ctx, d.h)
	}
}

// Write hashes p; false means the request's context ended and the digest
// is lost.
func (d *md5Digest) Write(p []byte) bool {
	if d.async != nil {
		return d.async.write(p)
	}
	d.h.Write(p)
	return true
}

// Sum finishes the digest; nil when it was lost.
func (d *md5Digest) Sum() []byte {
	if d.async != nil {
		return d.async.finish()
	}
	return d.h.Sum(nil)
}

// Abort stops the goroutine, if any, without a result.
func (d *md5Digest) Abort() {
	if d.async != nil {
		d.async.finish()
	}
}

type asyncMD5 struct {
	h        hash.Hash
	cur      *[]byte
	full     chan *[]byte // slots to hash, in order; nil asks for the sum
	free     chan *[]byte
	done     chan struct{} // closed when the goroutine has ended
	sum      []byte
	finished bool
}

func startAsyncMD5(ctx context.Context, h hash.Hash) *asyncMD5 {
	a := &asyncMD5{
		h:    h,
		full: make(chan *[]byte, md5Slots),
		free: make(chan *[]byte, md5Slots),
		done: make(chan struct{}),
	}
	for i := 0; i < md5Slots-1; i++ {
		a.free <- md5SlotPool.Get().(*[]byte)
	}
	a.cur = md5SlotPool.Get().(*[]byte)
	go a.run(ctx)
	return a
}

func (a *asyncMD5) run(ctx context.Context) {
	defer close(a.done)
	for {
		select {
		case b := <-a.full:
			if b == nil {
				a.sum = a.h.Sum(nil)
				return
			}
			a.h.Write(*b)
			*b = (*b)[:0]
			a.free <- b
		case <-ctx.Done():
			return
		}
	}
}

func (a *asyncMD5) write(p []byte) bool {
	for len(p) > 0 {
		cur := *a.cur
		n := copy(cur[len(cur):cap(cur)], p)
		*a.cur = cur[:len(cur)+n]
		p = p[n:]
		if len(*a.cur) < cap(*a.cur) {
			continue
		}
		select {
		case a.full <- a.cur:
		case <-a.done:
			return false
		}
		select {
		case a.cur = <-a.free:
		case <-a.done:
			a.cur = md5SlotPool.Get().(*[]byte)
			return false
		}
	}
	return true
}

// finish hashes what is left, ends the goroutine and returns the sum (nil
// if the goroutine ended early).
func (a *asyncMD5) finish() []byte {
	if a.finished {
		return a.sum
	}
	a.finished = true
	if len(*a.cur) > 0 {
		select {
		case a.full <- a.cur:
			a.cur = nil
		case <-a.done:
		}
	}
	select {
	case a.full <- nil:
	case <-a.done:
	}
	<-a.done
	// The goroutine has ended: every slot not lost to an early end is
	// idle again.
	if a.cur != nil {
		*a.cur = (*a.cur)[:0]
		md5SlotPool.Put(a.cur)
		a.cur = nil
	}
	for {
		select {
		case b := <-a.free:
			md5SlotPool.Put(b)
		default:
			return a.sum
		}
	}
}
