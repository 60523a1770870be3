package s3blob

import (
	"errors"
	"io"
	"sync"
)

// errFenced is what a request body reads after Put returned.
var errFenced = errors.New("s3blob: request body read after the Put returned")

// partsReader presents the caller's buffers as one request body that can
// be re-read (the S3 client seeks back to sign and to retry) and that
// stops touching them at fence.
type partsReader struct {
	mu     sync.Mutex
	parts  [][]byte
	size   int64
	off    int64
	fenced bool
}

func newPartsReader(parts [][]byte) *partsReader {
	r := &partsReader{parts: parts}
	for _, p := range parts {
		r.size += int64(len(p))
	}
	return r
}

// fence ends all access to the parts; it waits for a copy in progress.
func (r *partsReader) fence() {
	r.mu.Lock()
	r.fenced = true
	r.parts = nil
	r.mu.Unlock()
}

func (r *partsReader) Read(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n, err := r.readAtLocked(p, r.off)
	r.off += int64(n)
	return n, err
}

func (r *partsReader) ReadAt(p []byte, off int64) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.readAtLocked(p, off)
}

func (r *partsReader) readAtLocked(p []byte, off int64) (int, error) {
	if r.fenced {
		return 0, errFenced
	}
	if off < 0 {
		return 0, errors.New("s3blob: negative read offset")
	}
	if off >= r.size {
		return 0, io.EOF
	}
	n := 0
	for _, part := range r.parts {
		if off >= int64(len(part)) {
			off -= int64(len(part))
			continue
		}
		c := copy(p[n:], part[off:])
		n += c
		off = 0
		if n == len(p) {
			break
		}
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (r *partsReader) Seek(offset int64, whence int) (int64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = r.off + offset
	case io.SeekEnd:
		abs = r.size + offset
	default:
		return 0, errors.New("s3blob: invalid whence")
	}
	if abs < 0 {
		return 0, errors.New("s3blob: negative seek position")
	}
	r.off = abs
	return abs, nil
}
