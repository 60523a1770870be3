package data

import (
	"math"
	"sort"
	"sync"
)

// Extent is a run of buffered bytes of a file at offset Off.
type Extent struct {
	Off  uint64
	Data []byte
}

// End is the file offset just past the extent.
func (e Extent) End() uint64 { return e.Off + uint64(len(e.Data)) }

// FileBuffer is the write-back buffer of one file: an extent map of
// written-but-not-flushed bytes. The zero value is empty and ready. It is
// not safe for concurrent use.
//
// Invariants: extents are sorted by offset and disjoint; none crosses a
// chunk boundary; two extents in the same chunk never touch (they are
// merged on write). An extent's buffer may have spare capacity up to its
// chunk's end, so that sequential writes append in place with amortised
// growth instead of copying the extent each time.
type FileBuffer struct {
	exts []Extent
	size int
	// pooled are the stream buffers this buffer took (getStream); Detach
	// hands them back for the caller to return once the extents are done.
	pooled []*[]byte
}

// Stream buffers are recycled: reusing memory that is already mapped
// saves the page faults and clearing that a fresh 32 MiB allocation costs
// on every flush of a sequential writer. A few are kept in a free list
// that garbage collection leaves alone, enough for one writer's buffer and
// the batches it has in flight; a sync.Pool takes the rest of a burst, and
// a collection returns those to the system.
var streamPool = sync.Pool{New: func() any {
	b := make([]byte, streamGrowth)
	return &b
}}

// streamKept is how many idle stream buffers the free list holds.
const streamKept = 6

var streamFree struct {
	sync.Mutex
	bufs []*[]byte
}

func getStream() *[]byte {
	streamFree.Lock()
	if n := len(streamFree.bufs); n > 0 {
		b := streamFree.bufs[n-1]
		streamFree.bufs = streamFree.bufs[:n-1]
		streamFree.Unlock()
		return b
	}
	streamFree.Unlock()
	return streamPool.Get().(*[]byte)
}

func putStream(b *[]byte) {
	streamFree.Lock()
	if len(streamFree.bufs) < streamKept {
		streamFree.bufs = append(streamFree.bufs, b)
		streamFree.Unlock()
		return
	}
	streamFree.Unlock()
	streamPool.Put(b)
}

// Write copies p into the buffer at off; later writes win over earlier
// ones. off+len(p) must not overflow a uint64.
func (f *FileBuffer) Write(off uint64, p []byte) {
	for len(p) > 0 {
		room := uint64(math.MaxUint64)
		if ce := chunkStart(off) + ChunkSize; ce > off {
			room = ce - off
		}
		n := int(min(uint64(len(p)), room))
		f.writeInChunk(off, p[:n])
		off += uint64(n)
		p = p[n:]
	}
}

func chunkStart(off uint64) uint64 { return off / ChunkSize * ChunkSize }

// writeInChunk writes p, which lies within one chunk, at off.
func (f *FileBuffer) writeInChunk(off uint64, p []byte) {
	end := off + uint64(len(p))
	cs := chunkStart(off)
	ce := cs + ChunkSize
	if ce < cs {
		ce = math.MaxUint64
	}
	// Extents touching [off, end] within this chunk form the run exts[i:j].
	i := sort.Search(len(f.exts), func(i int) bool { return f.exts[i].End() >= off })
	if i < len(f.exts) && f.exts[i].Off < cs {
		i++ // ends exactly at this chunk's start: another chunk, not merged
	}
	j := i
	for j < len(f.exts) && f.exts[j].Off <= end && f.exts[j].Off < ce {
		j++
	}
	if i == j {
		f.exts = append(f.exts, Extent{})
		copy(f.exts[i+1:], f.exts[i:])
		f.exts[i] = Extent{Off: off, Data: append([]byte(nil), p...)}
		f.size += len(p)
		return
	}
	stop := max(end, f.exts[j-1].End())
	for _, e := range f.exts[i:j] {
		f.size -= len(e.Data)
	}
	var merged Extent
	if first := f.exts[i]; first.Off <= off {
		// Grow the first extent in place (the sequential-append case),
		// then copy in the later extents it now reaches.
		merged = Extent{Off: first.Off, Data: f.growTo(first.Data, int(stop-first.Off), int(min(ce-first.Off, ChunkSize)))}
		for _, e := range f.exts[i+1 : j] {
			copy(merged.Data[e.Off-merged.Off:], e.Data)
		}
	} else {
		merged = Extent{Off: off, Data: make([]byte, stop-off)}
		for _, e := range f.exts[i:j] {
			copy(merged.Data[e.Off-off:], e.Data)
		}
	}
	copy(merged.Data[off-merged.Off:], p)
	f.exts[i] = merged
	f.exts = append(f.exts[:i+1], f.exts[j:]...)
	f.size += len(merged.Data)
}

// streamGrowth is the capacity an extent jumps to once it has grown past
// streamThreshold: such an extent is a sequential stream, and growing it by
// doubling would copy and clear it several times over.
const (
	streamThreshold = 1 << 20
	streamGrowth    = 32 << 20
)

// growTo returns b lengthened to n bytes, reallocating with doubling
// capacity (at most limit) when it lacks room. Bytes past len(b) are
// unspecified: callers overwrite them.
func (f *FileBuffer) growTo(b []byte, n, limit int) []byte {
	if n <= cap(b) {
		return b[:n]
	}
	want := max(n, 2*cap(b))
	if cap(b) >= streamThreshold {
		want = max(want, streamGrowth)
	}
	c := min(want, max(limit, n))
	if cap(b) >= streamThreshold && c <= streamGrowth {
		// A stream, even one that will stop at its chunk's end sooner:
		// a recycled buffer, capped at what the chunk leaves.
		buf := getStream()
		f.pooled = append(f.pooled, buf)
		nb := (*buf)[:n:c]
		copy(nb, b)
		return nb
	}
	nb := make([]byte, n, c)
	copy(nb, b)
	return nb
}

// Overlay copies buffered bytes that fall in [off, off+len(p)) over p, so
// a read sees writes not yet flushed.
func (f *FileBuffer) Overlay(off uint64, p []byte) {
	end := off + uint64(len(p))
	i := sort.Search(len(f.exts), func(i int) bool { return f.exts[i].End() > off })
	for ; i < len(f.exts) && f.exts[i].Off < end; i++ {
		e := f.exts[i]
		a, z := max(e.Off, off), min(e.End(), end)
		copy(p[a-off:z-off], e.Data[a-e.Off:z-e.Off])
	}
}

// End is the end offset of the highest buffered byte (0 if empty).
func (f *FileBuffer) End() uint64 {
	if len(f.exts) == 0 {
		return 0
	}
	return f.exts[len(f.exts)-1].End()
}

// Len is the number of buffered bytes. Memory held may be up to twice
// this, from spare capacity kept for appends.
func (f *FileBuffer) Len() int { return f.size }

// Truncate drops buffered bytes at or beyond n.
func (f *FileBuffer) Truncate(n uint64) {
	i := sort.Search(len(f.exts), func(i int) bool { return f.exts[i].End() > n })
	if i < len(f.exts) && f.exts[i].Off < n {
		e := &f.exts[i]
		keep := int(n - e.Off)
		f.size -= len(e.Data) - keep
		e.Data = e.Data[:keep]
		i++
	}
	for _, e := range f.exts[i:] {
		f.size -= len(e.Data)
	}
	clear(f.exts[i:])
	f.exts = f.exts[:i]
}

// Take removes and returns all buffered data as non-overlapping extents
// sorted by offset, adjacent extents merged, none crossing a chunk
// boundary (ChunkSize) and none larger than maxExtent bytes (maxExtent <= 0
// means ChunkSize). Extents are split at file offsets that are multiples
// of maxExtent, so that consecutive flushes of a sequential stream produce
// aligned slices. The returned Data is owned by the caller and not copied.
func (f *FileBuffer) Take(maxExtent int) []Extent {
	limit := uint64(ChunkSize)
	if maxExtent > 0 && maxExtent < ChunkSize {
		limit = uint64(maxExtent)
	}
	out := make([]Extent, 0, len(f.exts))
	for _, e := range f.exts {
		off, d := e.Off, e.Data
		for len(d) > 0 {
			n := int(min(uint64(len(d)), limit-off%limit))
			out = append(out, Extent{Off: off, Data: d[:n:n]})
			off += uint64(n)
			d = d[n:]
		}
	}
	f.exts = nil
	f.size = 0
	f.pooled = nil
	return out
}

// Detach is Take that also hands over the buffer's pooled memory: done
// returns it for reuse, and must be called only once nothing reads the
// extents any more.
func (f *FileBuffer) Detach(maxExtent int) (exts []Extent, done func()) {
	pooled := f.pooled
	exts = f.Take(maxExtent)
	return exts, func() {
		for _, b := range pooled {
			putStream(b)
		}
	}
}
