package oncrpc

import "sync"

// Record and reply buffers come from a few size classes so that a busy
// connection reuses memory and an idle one holds none. Buffers above
// the largest class are allocated for the record at hand and left to
// the garbage collector, so that one unusually large record does not
// pin a large buffer in the pool.
var bufferClasses = [...]int{
	2 << 10,
	16 << 10,
	128 << 10,
	1<<20 + 64<<10, // a 1 MiB NFS READ or WRITE plus its headers
}

var bufferPools [len(bufferClasses)]sync.Pool

// getBuffer returns a zero-length slice with a capacity of at least n.
func getBuffer(n int) []byte {
	for i, size := range bufferClasses {
		if n <= size {
			if p, ok := bufferPools[i].Get().(*[]byte); ok {
				return (*p)[:0]
			}
			return make([]byte, 0, size)
		}
	}
	return make([]byte, 0, n)
}

// putBuffer returns b to its pool. Slices that did not come from
// getBuffer's classes are dropped.
func putBuffer(b []byte) {
	c := cap(b)
	for i, size := range bufferClasses {
		if c == size {
			b = b[:0]
			bufferPools[i].Put(&b)
			return
		}
	}
}

// growBuffer returns a slice holding b's bytes with length n, moving to
// a larger class when b's capacity is too small.
func growBuffer(b []byte, n int) []byte {
	if n <= cap(b) {
		return b[:n]
	}
	nb := getBuffer(n)[:n]
	copy(nb, b)
	putBuffer(b)
	return nb
}
