package oncrpc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Record marking (RFC 5531 section 11): on a byte stream every record
// is sent as one or more fragments, each preceded by a 4-byte mark
// whose top bit says "last fragment" and whose other 31 bits give the
// fragment's length.
const (
	lastFragment   = 1 << 31
	fragmentLength = lastFragment - 1
	markSize       = 4
)

// DefaultMaxRecordSize is the record size cap when none is configured:
// a 1 MiB NFS WRITE with its RPC and NFS headers fits.
const DefaultMaxRecordSize = 1<<20 + 64<<10

// ErrRecordTooLarge is returned when a record's fragments add up to
// more than the configured cap. The connection cannot be resynchronised
// after it, so the server closes it.
var ErrRecordTooLarge = errors.New("oncrpc: record exceeds the size limit")

// readChunk bounds how much buffer is committed ahead of bytes actually
// received: a peer that announces a large fragment and then stalls
// pins at most this much (or what it has already sent), not the
// announced length.
const readChunk = 64 << 10

// readRecord reads one complete record from r. It returns io.EOF only
// when r ends cleanly before a record starts. The returned slice comes
// from the buffer pool; the caller hands it back with putBuffer.
func readRecord(r io.Reader, maxSize int) ([]byte, error) {
	var mark [markSize]byte
	if _, err := io.ReadFull(r, mark[:]); err != nil {
		return nil, err
	}
	return readRecordAfterMark(r, binary.BigEndian.Uint32(mark[:]), maxSize)
}

// readRecordAfterMark reads the record whose first fragment mark has
// already been consumed from r.
func readRecordAfterMark(r io.Reader, mark uint32, maxSize int) ([]byte, error) {
	var buf []byte
	var markBuf [markSize]byte
	for {
		n := int(mark & fragmentLength)
		if n > maxSize-len(buf) {
			putBuffer(buf)
			return nil, fmt.Errorf("%w: more than %d bytes announced", ErrRecordTooLarge, maxSize)
		}
		for n > 0 {
			chunk := min(n, max(readChunk, len(buf)))
			start := len(buf)
			if buf == nil {
				buf = getBuffer(chunk)
			}
			buf = growBuffer(buf, start+chunk)
			if _, err := io.ReadFull(r, buf[start:]); err != nil {
				putBuffer(buf)
				return nil, unexpectedEOF(err)
			}
			n -= chunk
		}
		if mark&lastFragment != 0 {
			if buf == nil {
				buf = getBuffer(0)
			}
			return buf, nil
		}
		if _, err := io.ReadFull(r, markBuf[:]); err != nil {
			putBuffer(buf)
			return nil, unexpectedEOF(err)
		}
		mark = binary.BigEndian.Uint32(markBuf[:])
	}
}

// unexpectedEOF turns a clean EOF inside a record into the error it is.
func unexpectedEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// putMark writes the mark of a single-fragment record of n bytes.
func putMark(b []byte, n int) {
	binary.BigEndian.PutUint32(b, lastFragment|uint32(n))
}
