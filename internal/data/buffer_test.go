package data

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
)

// op is one FileBuffer call in a table: a write of data at off, or a
// truncate to off when data is nil.
type op struct {
	off  uint64
	data string
}

func trunc(n uint64) op { return op{off: n} }

func apply(f *FileBuffer, ops []op) {
	for _, o := range ops {
		if o.data == "" {
			f.Truncate(o.off)
		} else {
			f.Write(o.off, []byte(o.data))
		}
	}
}

func ext(off uint64, s string) Extent { return Extent{Off: off, Data: []byte(s)} }

func TestFileBuffer(t *testing.T) {
	const C = ChunkSize
	tests := []struct {
		name      string
		ops       []op
		maxExtent int
		wantEnd   uint64
		wantLen   int
		want      []Extent
	}{
		{"empty", nil, 0, 0, 0, []Extent{}},
		{"one write", []op{{10, "abc"}}, 0, 13, 3, []Extent{ext(10, "abc")}},
		{"disjoint writes sorted", []op{{20, "zz"}, {0, "aa"}}, 0, 22, 4, []Extent{ext(0, "aa"), ext(20, "zz")}},
		{"append merges", []op{{0, "ab"}, {2, "cd"}, {4, "ef"}}, 0, 6, 6, []Extent{ext(0, "abcdef")}},
		{"prepend merges", []op{{2, "cd"}, {0, "ab"}}, 0, 4, 4, []Extent{ext(0, "abcd")}},
		{"overwrite inside", []op{{0, "aaaaaa"}, {2, "XY"}}, 0, 6, 6, []Extent{ext(0, "aaXYaa")}},
		{"later write wins over two", []op{{0, "aaa"}, {5, "bbb"}, {2, "XXXX"}}, 0, 8, 8, []Extent{ext(0, "aaXXXXbb")}},
		{"write covering several", []op{{1, "a"}, {3, "b"}, {5, "c"}, {0, "XXXXXXXX"}}, 0, 8, 8, []Extent{ext(0, "XXXXXXXX")}},
		{"fill a gap joins both sides", []op{{0, "aa"}, {4, "cc"}, {2, "bb"}}, 0, 6, 6, []Extent{ext(0, "aabbcc")}},
		{"earlier overlapping from the left", []op{{4, "bbbb"}, {2, "aaaa"}}, 0, 8, 6, []Extent{ext(2, "aaaabb")}},
		{"truncate inside", []op{{0, "abcdef"}, trunc(3)}, 0, 3, 3, []Extent{ext(0, "abc")}},
		{"truncate drops later extents", []op{{0, "ab"}, {10, "cd"}, {20, "ef"}, trunc(11)}, 0, 11, 3, []Extent{ext(0, "ab"), ext(10, "c")}},
		{"truncate at extent start", []op{{0, "ab"}, {10, "cd"}, trunc(10)}, 0, 2, 2, []Extent{ext(0, "ab")}},
		{"truncate to zero", []op{{0, "ab"}, trunc(0)}, 0, 0, 0, []Extent{}},
		{"write after truncate reuses nothing stale", []op{{0, "abcdef"}, trunc(2), {4, "XY"}}, 0, 6, 4, []Extent{ext(0, "ab"), ext(4, "XY")}},
		{"append after truncate", []op{{0, "abcdef"}, trunc(2), {2, "Z"}}, 0, 3, 3, []Extent{ext(0, "abZ")}},
		{"split at maxExtent multiples", []op{{3, "0123456789"}}, 4, 13, 10,
			[]Extent{ext(3, "0"), ext(4, "1234"), ext(8, "5678"), ext(12, "9")}},
		{"maxExtent above a chunk is a chunk", []op{{0, "ab"}}, 2 * ChunkSize, 2, 2, []Extent{ext(0, "ab")}},
		{"write across a chunk boundary is split", []op{{C - 2, "abcd"}}, 0, C + 2, 4, []Extent{ext(C-2, "ab"), ext(C, "cd")}},
		{"extents touching at a chunk boundary stay apart", []op{{C - 2, "ab"}, {C, "cd"}}, 0, C + 2, 4, []Extent{ext(C-2, "ab"), ext(C, "cd")}},
		{"write ending at a chunk boundary then before it", []op{{C, "cd"}, {C - 2, "ab"}}, 0, C + 2, 4, []Extent{ext(C-2, "ab"), ext(C, "cd")}},
		{"overwrite across a boundary", []op{{C - 3, "aaa"}, {C, "bbb"}, {C - 1, "XY"}}, 0, C + 3, 6, []Extent{ext(C-3, "aaX"), ext(C, "Ybb")}},
		{"truncate at a chunk boundary", []op{{C - 2, "abcd"}, trunc(C)}, 0, C, 2, []Extent{ext(C-2, "ab")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f FileBuffer
			apply(&f, tt.ops)
			if got := f.End(); got != tt.wantEnd {
				t.Errorf("End() = %d, want %d", got, tt.wantEnd)
			}
			if got := f.Len(); got != tt.wantLen {
				t.Errorf("Len() = %d, want %d", got, tt.wantLen)
			}
			got := f.Take(tt.maxExtent)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Take(%d)\n got %s\nwant %s", tt.maxExtent, showExtents(got), showExtents(tt.want))
			}
			if f.Len() != 0 || f.End() != 0 || len(f.Take(0)) != 0 {
				t.Errorf("buffer not empty after Take: Len %d End %d", f.Len(), f.End())
			}
		})
	}
}

func showExtents(es []Extent) string {
	s := "["
	for _, e := range es {
		s += fmt.Sprintf(" %d:%q", e.Off, e.Data)
	}
	return s + " ]"
}

func TestFileBufferOverlay(t *testing.T) {
	var f FileBuffer
	f.Write(2, []byte("ab"))
	f.Write(6, []byte("cdef"))
	tests := []struct {
		off  uint64
		n    int
		want string
	}{
		{0, 10, "..ab..cdef"},
		{3, 4, "b..c"},
		{7, 10, "def......."},
		{4, 2, ".."},
		{20, 3, "..."},
	}
	for _, tt := range tests {
		p := bytes.Repeat([]byte("."), tt.n)
		f.Overlay(tt.off, p)
		if string(p) != tt.want {
			t.Errorf("Overlay(%d, %d) = %q, want %q", tt.off, tt.n, p, tt.want)
		}
	}
}

func TestFileBufferCopiesInput(t *testing.T) {
	var f FileBuffer
	p := []byte("abc")
	f.Write(0, p)
	p[0] = 'X'
	got := f.Take(0)
	if string(got[0].Data) != "abc" {
		t.Errorf("buffer shares the caller's slice: %q", got[0].Data)
	}
}

// TestFileBufferTakeDoesNotAlias checks that appending to one returned
// extent cannot change its neighbour, though they share a buffer.
func TestFileBufferTakeDoesNotAlias(t *testing.T) {
	var f FileBuffer
	f.Write(0, []byte("aaaabbbb"))
	got := f.Take(4)
	_ = append(got[0].Data, 'X')
	if string(got[1].Data) != "bbbb" {
		t.Errorf("appending to the first extent changed the second: %q", got[1].Data)
	}
}

// TestFileBufferMatchesModel runs random writes and truncates around a
// chunk boundary against a byte map, checking Overlay, End, Len and Take.
func TestFileBufferMatchesModel(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	const base = ChunkSize - 300
	const window = 600
	for iter := 0; iter < 500; iter++ {
		var f FileBuffer
		model := map[uint64]byte{}
		for k, nops := 0, 1+r.IntN(30); k < nops; k++ {
			off := base + uint64(r.IntN(window))
			if r.IntN(8) == 0 {
				f.Truncate(off)
				for o := range model {
					if o >= off {
						delete(model, o)
					}
				}
				continue
			}
			p := make([]byte, 1+r.IntN(120))
			for i := range p {
				p[i] = byte(r.Uint32())
				model[off+uint64(i)] = p[i]
			}
			f.Write(off, p)
		}
		var end uint64
		for o := range model {
			end = max(end, o+1)
		}
		if f.End() != end || f.Len() != len(model) {
			t.Fatalf("iter %d: End %d Len %d, want %d %d", iter, f.End(), f.Len(), end, len(model))
		}
		view := bytes.Repeat([]byte{0xee}, window+200)
		f.Overlay(base-100, view)
		for i, b := range view {
			want, ok := model[base-100+uint64(i)]
			if !ok {
				want = 0xee
			}
			if b != want {
				t.Fatalf("iter %d: Overlay byte at %d = %#x, want %#x", iter, base-100+uint64(i), b, want)
			}
		}
		maxExtent := 1 + r.IntN(200)
		exts := f.Take(maxExtent)
		seen := 0
		for k, e := range exts {
			if len(e.Data) == 0 || len(e.Data) > maxExtent {
				t.Fatalf("iter %d: extent %d has %d bytes (max %d)", iter, k, len(e.Data), maxExtent)
			}
			if e.Off/ChunkSize != (e.End()-1)/ChunkSize {
				t.Fatalf("iter %d: extent [%d,%d) crosses a chunk boundary", iter, e.Off, e.End())
			}
			if k > 0 {
				prev := exts[k-1]
				if prev.End() > e.Off {
					t.Fatalf("iter %d: extents overlap or are unsorted", iter)
				}
				if prev.End() == e.Off && e.Off%uint64(maxExtent) != 0 && e.Off%ChunkSize != 0 {
					t.Fatalf("iter %d: adjacent extents at %d not merged", iter, e.Off)
				}
			}
			for i, b := range e.Data {
				if want, ok := model[e.Off+uint64(i)]; !ok || b != want {
					t.Fatalf("iter %d: Take byte at %d = %#x, want %#x (present %v)", iter, e.Off+uint64(i), b, want, ok)
				}
			}
			seen += len(e.Data)
		}
		if seen != len(model) {
			t.Fatalf("iter %d: Take returned %d bytes, want %d", iter, seen, len(model))
		}
	}
}

// TestFileBufferSequentialAppendsGrowInPlace checks that a stream of small
// sequential writes reallocates only as its extent doubles, rather than
// copying the extent on every write.
func TestFileBufferSequentialAppendsGrowInPlace(t *testing.T) {
	p := make([]byte, 4096)
	allocs := testing.AllocsPerRun(5, func() {
		var f FileBuffer
		for i := 0; i < 4096; i++ { // 16 MiB
			f.Write(uint64(i)*4096, p)
		}
		if f.Len() != 16<<20 {
			t.Fatalf("Len = %d", f.Len())
		}
	})
	if allocs > 20 {
		t.Errorf("4096 sequential writes made %v allocations, want at most 20", allocs)
	}
}
