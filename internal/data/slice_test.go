package data

import (
	"errors"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
)

// whole is a reference to all of slice id (of size bytes) at pos.
func whole(id uint64, size, pos uint32) Slice {
	return Slice{ID: id, Size: size, Pos: pos, Len: size}
}

func hole(pos, n uint32) Slice { return Slice{Pos: pos, Len: n} }

func TestResolve(t *testing.T) {
	const end = ChunkSize
	tests := []struct {
		name   string
		refs   []Slice
		pos, n uint32
		want   []Slice
	}{
		{"empty map is one hole", nil, 10, 100, []Slice{hole(10, 100)}},
		{"zero length", []Slice{whole(1, 10, 0)}, 5, 0, nil},
		{"one slice exactly", []Slice{whole(1, 100, 0)}, 0, 100, []Slice{whole(1, 100, 0)}},
		{"inside one slice", []Slice{whole(1, 100, 0)}, 10, 20,
			[]Slice{{ID: 1, Size: 100, Pos: 10, Off: 10, Len: 20}}},
		{"hole before, after", []Slice{whole(1, 100, 50)}, 0, 200,
			[]Slice{hole(0, 50), whole(1, 100, 50), hole(150, 50)}},
		{"later write wins in the middle", []Slice{whole(1, 100, 0), whole(2, 10, 40)}, 0, 100,
			[]Slice{{ID: 1, Size: 100, Pos: 0, Off: 0, Len: 40}, whole(2, 10, 40), {ID: 1, Size: 100, Pos: 50, Off: 50, Len: 50}}},
		{"earlier write hidden entirely", []Slice{whole(1, 10, 40), whole(2, 100, 0)}, 0, 100,
			[]Slice{whole(2, 100, 0)}},
		{"overlapping tail and head", []Slice{whole(1, 100, 0), whole(2, 100, 50), whole(3, 20, 140)}, 0, 200,
			[]Slice{
				{ID: 1, Size: 100, Pos: 0, Off: 0, Len: 50},
				{ID: 2, Size: 100, Pos: 50, Off: 0, Len: 90},
				whole(3, 20, 140),
				hole(160, 40),
			}},
		{"explicit hole hides data", []Slice{whole(1, 100, 0), hole(20, 30)}, 0, 100,
			[]Slice{{ID: 1, Size: 100, Pos: 0, Len: 20}, hole(20, 30), {ID: 1, Size: 100, Pos: 50, Off: 50, Len: 50}}},
		{"explicit hole merges with implicit gap", []Slice{whole(1, 10, 0), hole(10, 10)}, 0, 40,
			[]Slice{whole(1, 10, 0), hole(10, 30)}},
		{"reference with offset into its slice", []Slice{{ID: 7, Size: 1000, Pos: 100, Off: 300, Len: 50}}, 110, 100,
			[]Slice{{ID: 7, Size: 1000, Pos: 110, Off: 310, Len: 40}, hole(150, 60)}},
		{"write at chunk end", []Slice{whole(1, 4096, end-4096)}, end - 8192, 8192,
			[]Slice{hole(end-8192, 4096), whole(1, 4096, end-4096)}},
		{"range clipped at chunk end", []Slice{whole(1, 4096, end-4096)}, end - 100, 1000,
			[]Slice{{ID: 1, Size: 4096, Pos: end - 100, Off: 3996, Len: 100}}},
		{"range starting at chunk end", []Slice{whole(1, 10, 0)}, end, 10, nil},
		{"whole chunk", []Slice{whole(1, ChunkSize, 0)}, 0, ChunkSize, []Slice{whole(1, ChunkSize, 0)}},
		{"same slice pieces that continue are merged",
			[]Slice{{ID: 1, Size: 100, Pos: 0, Off: 0, Len: 50}, {ID: 1, Size: 100, Pos: 50, Off: 50, Len: 50}}, 0, 100,
			[]Slice{whole(1, 100, 0)}},
		{"same slice pieces that do not continue stay apart",
			[]Slice{{ID: 1, Size: 100, Pos: 0, Off: 50, Len: 50}, {ID: 1, Size: 100, Pos: 50, Off: 0, Len: 50}}, 0, 100,
			[]Slice{{ID: 1, Size: 100, Pos: 0, Off: 50, Len: 50}, {ID: 1, Size: 100, Pos: 50, Off: 0, Len: 50}}},
		{"zero-length references are ignored", []Slice{whole(1, 100, 0), {ID: 2, Size: 10, Pos: 50}}, 0, 100,
			[]Slice{whole(1, 100, 0)}},
		{"many small later writes", []Slice{whole(1, 100, 0), whole(2, 1, 10), whole(3, 1, 20), whole(4, 1, 11)}, 9, 13,
			[]Slice{
				{ID: 1, Size: 100, Pos: 9, Off: 9, Len: 1}, whole(2, 1, 10), whole(4, 1, 11),
				{ID: 1, Size: 100, Pos: 12, Off: 12, Len: 8}, whole(3, 1, 20), {ID: 1, Size: 100, Pos: 21, Off: 21, Len: 1},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Resolve(tt.refs, tt.pos, tt.n)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Resolve(%v, %d, %d)\n got %v\nwant %v", tt.refs, tt.pos, tt.n, got, tt.want)
			}
		})
	}
}

// paint is the obvious model of a chunk map: which slice byte (id, offset
// in its data) each chunk byte in [base, base+n) shows; id 0 is zeros.
func paint(refs []Slice, base, n uint32) [][2]uint64 {
	out := make([][2]uint64, n)
	for _, s := range refs {
		for i := uint32(0); i < s.Len; i++ {
			p := s.Pos + i
			if p >= base && p < base+n {
				if s.ID == 0 {
					out[p-base] = [2]uint64{}
				} else {
					out[p-base] = [2]uint64{s.ID, uint64(s.Off + i)}
				}
			}
		}
	}
	return out
}

func randomMap(r *rand.Rand, base uint32, window, count int) []Slice {
	var refs []Slice
	for i := 0; i < count; i++ {
		pos := base + uint32(r.IntN(window))
		n := uint32(1 + r.IntN(window/2))
		if pos+n > ChunkSize {
			n = ChunkSize - pos
		}
		if r.IntN(6) == 0 {
			refs = append(refs, hole(pos, n))
			continue
		}
		off := uint32(r.IntN(20))
		refs = append(refs, Slice{ID: uint64(i + 1), Size: off + n + uint32(r.IntN(5)), Pos: pos, Off: off, Len: n})
	}
	return refs
}

// TestResolveMatchesModel checks Resolve against painting, over random maps
// near the chunk start and the chunk end.
func TestResolveMatchesModel(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const window = 300
	for iter := 0; iter < 2000; iter++ {
		base := uint32(0)
		if iter%2 == 1 {
			base = ChunkSize - window
		}
		refs := randomMap(r, base, window, 1+r.IntN(12))
		pos := base + uint32(r.IntN(window))
		n := uint32(r.IntN(window))
		pieces := Resolve(refs, pos, n)
		n = min(n, ChunkSize-pos)
		model := paint(refs, pos, n)
		next := pos
		for k, p := range pieces {
			if p.Pos != next || p.Len == 0 {
				t.Fatalf("map %v range [%d,+%d): piece %d %v does not continue at %d", refs, pos, n, k, p, next)
			}
			if k > 0 && p.ID == 0 && pieces[k-1].ID == 0 {
				t.Fatalf("map %v: adjacent holes not merged: %v", refs, pieces)
			}
			for i := uint32(0); i < p.Len; i++ {
				want := model[p.Pos+i-pos]
				got := [2]uint64{}
				if p.ID != 0 {
					got = [2]uint64{p.ID, uint64(p.Off + i)}
				}
				if got != want {
					t.Fatalf("map %v range [%d,+%d): byte %d shows %v, want %v (pieces %v)", refs, pos, n, p.Pos+i, got, want, pieces)
				}
			}
			next = p.Pos + p.Len
		}
		if next != pos+n {
			t.Fatalf("map %v range [%d,+%d): pieces end at %d (%v)", refs, pos, n, next, pieces)
		}
	}
}

func TestTruncate(t *testing.T) {
	refs := []Slice{whole(1, 100, 0), whole(2, 50, 80), hole(140, 20), {ID: 3, Size: 500, Pos: 200, Off: 100, Len: 100}}
	tests := []struct {
		name string
		n    uint32
		want []Slice
	}{
		{"to zero", 0, []Slice{}},
		{"inside first", 10, []Slice{{ID: 1, Size: 100, Len: 10}}},
		{"at a reference start drops it", 80, []Slice{{ID: 1, Size: 100, Len: 80}}},
		{"crossing two", 90, []Slice{{ID: 1, Size: 100, Len: 90}, {ID: 2, Size: 50, Pos: 80, Len: 10}}},
		{"cuts a hole", 150, []Slice{whole(1, 100, 0), whole(2, 50, 80), hole(140, 10)}},
		{"keeps Off", 250, []Slice{whole(1, 100, 0), whole(2, 50, 80), hole(140, 20), {ID: 3, Size: 500, Pos: 200, Off: 100, Len: 50}}},
		{"beyond everything", ChunkSize, refs},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orig := slices.Clone(refs)
			got := Truncate(refs, tt.n)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Truncate(%d)\n got %v\nwant %v", tt.n, got, tt.want)
			}
			if !reflect.DeepEqual(refs, orig) {
				t.Errorf("Truncate modified its input: %v", refs)
			}
			for _, p := range Resolve(got, tt.n, ChunkSize) {
				if p.ID != 0 {
					t.Errorf("after Truncate(%d), data is visible at %d: %v", tt.n, p.Pos, p)
				}
			}
		})
	}
}

func TestNeedsCompaction(t *testing.T) {
	many := func(n int) []Slice {
		var refs []Slice
		for i := 0; i < n; i++ {
			refs = append(refs, whole(uint64(i+1), 4096, uint32(i)*4096))
		}
		return refs
	}
	tests := []struct {
		name string
		refs []Slice
		want bool
	}{
		{"empty", nil, false},
		{"one whole slice", []Slice{whole(1, ChunkSize, 0)}, false},
		{"16 slices", many(16), false},
		{"17 slices", many(17), true},
		{"small overwrites waste little", []Slice{whole(1, 1<<20, 0), whole(2, 1<<20, 0), whole(3, 1<<20, 0)}, false},
		{"rewritten three times", []Slice{whole(1, 8<<20, 0), whole(2, 8<<20, 0), whole(3, 8<<20, 0)}, true},
		{"rewritten twice is not enough", []Slice{whole(1, 8<<20, 0), whole(2, 8<<20, 0)}, false},
		{"big slice mostly truncated away", []Slice{{ID: 1, Size: 16 << 20, Len: 1 << 20}}, true},
		{"overwritten by a hole", []Slice{whole(1, 8<<20, 0), hole(0, 8<<20-1)}, true},
		{"half overwritten is not enough", []Slice{whole(1, 16<<20, 0), whole(2, 8<<20, 0)}, false},
		{"one slice referenced twice counts once", []Slice{
			{ID: 1, Size: 8 << 20, Pos: 0, Off: 0, Len: 4 << 20},
			{ID: 1, Size: 8 << 20, Pos: 4 << 20, Off: 4 << 20, Len: 4 << 20},
		}, false},
		{"17 holes", func() []Slice {
			var refs []Slice
			for i := 0; i < 17; i++ {
				refs = append(refs, hole(uint32(i)*10, 5))
			}
			return refs
		}(), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := NeedsCompaction(tt.refs); got != tt.want {
				t.Errorf("NeedsCompaction(%v) = %v, want %v", tt.refs, got, tt.want)
			}
		})
	}
}

func TestSliceIDs(t *testing.T) {
	got := SliceIDs([]Slice{whole(5, 1, 0), hole(1, 1), whole(2, 1, 2), whole(5, 1, 3), whole(9, 1, 4)})
	if want := []uint64{2, 5, 9}; !reflect.DeepEqual(got, want) {
		t.Errorf("SliceIDs = %v, want %v", got, want)
	}
	if got := SliceIDs([]Slice{hole(0, 1)}); len(got) != 0 {
		t.Errorf("SliceIDs of holes = %v, want none", got)
	}
}

func TestSlicesRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	tests := []struct {
		name    string
		refs    []Slice
		maxSize int // encoded bytes, to keep the encoding compact
	}{
		{"empty", nil, 1},
		{"one whole slice", []Slice{whole(12345, 1<<20, 0)}, 1 + 1 + 2 + 3},
		{"sequential appends", []Slice{whole(1, 4096, 0), whole(2, 4096, 4096), whole(3, 4096, 8192)}, 1 + 3*(1+1+2)},
		{"holes", []Slice{hole(0, 10), whole(1, 10, 10), hole(100, ChunkSize-100)}, 32},
		{"offsets and partial lengths", []Slice{{ID: 1<<64 - 1, Size: ChunkSize, Pos: 7, Off: 9, Len: 11}}, 32},
		{"reference past slice end would be len-rest", []Slice{{ID: 3, Size: 10, Pos: 0, Off: 10, Len: 0}}, 8},
		{"at chunk end", []Slice{whole(1, 1, ChunkSize-1)}, 16},
		{"random", randomMap(r, 0, 1000, 50), 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := AppendSlices([]byte("prefix"), tt.refs)
			if string(b[:6]) != "prefix" {
				t.Fatalf("AppendSlices clobbered dst: %q", b[:6])
			}
			b = b[6:]
			if len(b) > tt.maxSize {
				t.Errorf("encoding takes %d bytes, want at most %d", len(b), tt.maxSize)
			}
			got, err := DecodeSlices(b)
			if err != nil {
				t.Fatalf("DecodeSlices: %v", err)
			}
			want := tt.refs
			if want == nil {
				want = []Slice{}
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("round trip\n got %v\nwant %v", got, want)
			}
		})
	}
}

func TestAppendSlicesNormalisesHoles(t *testing.T) {
	got, err := DecodeSlices(AppendSlices(nil, []Slice{{ID: 0, Size: 99, Pos: 5, Off: 7, Len: 3}}))
	if err != nil {
		t.Fatal(err)
	}
	if want := []Slice{hole(5, 3)}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestDecodeSlicesRejectsMalformed(t *testing.T) {
	valid := AppendSlices(nil, []Slice{{ID: 300, Size: 1000, Pos: 5, Off: 7, Len: 9}})
	tests := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"unknown version", []byte{2}},
		{"unknown flag", []byte{1, 0x10, 1, 1, 1}},
		{"hole with slice flags", []byte{1, flagHole | flagOffZero, 5}},
		{"truncated id", []byte{1, 0, 0x80}},
		{"truncated after flags", []byte{1, flagPosFollows}},
		{"truncated", valid[:len(valid)-1]},
		{"id 0 without hole flag", []byte{1, flagPosFollows | flagOffZero | flagLenRest, 0, 5}},
		{"size over 32 bits", append([]byte{1, flagPosFollows | flagOffZero | flagLenRest, 1}, 0x80, 0x80, 0x80, 0x80, 0x10)},
		{"overlong varint", []byte{1, flagHole, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 1}},
		{"reference past chunk end", AppendSlices(nil, []Slice{hole(ChunkSize-1, 2)})},
		{"reference past slice size", AppendSlices(nil, []Slice{{ID: 1, Size: 10, Off: 5, Len: 6}})},
		{"slice larger than a chunk", AppendSlices(nil, []Slice{{ID: 1, Size: ChunkSize + 1, Len: 1}})},
		{"len-rest with offset past size", []byte{1, flagPosFollows | flagLenRest, 1, 10, 11}},
		{"trailing garbage", append(slices.Clone(valid), 0xff)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeSlices(tt.in)
			if err == nil {
				t.Fatalf("DecodeSlices(%x) = %v, want an error", tt.in, got)
			}
			if !errors.Is(err, errChunkMap) {
				t.Errorf("error %v does not wrap errChunkMap", err)
			}
		})
	}
}

func FuzzDecodeSlices(f *testing.F) {
	f.Add([]byte{1})
	f.Add(AppendSlices(nil, []Slice{whole(1, 100, 0), hole(100, 10), {ID: 1 << 40, Size: 5000, Pos: 300, Off: 20, Len: 30}}))
	f.Add(AppendSlices(nil, randomMap(rand.New(rand.NewPCG(5, 6)), 0, 500, 20)))
	f.Fuzz(func(t *testing.T, b []byte) {
		refs, err := DecodeSlices(b)
		if err != nil {
			return
		}
		for _, s := range refs {
			if verr := s.Validate(); verr != nil {
				t.Fatalf("decoded an invalid reference: %v", verr)
			}
		}
		again, err := DecodeSlices(AppendSlices(nil, refs))
		if err != nil {
			t.Fatalf("re-encoding %v: %v", refs, err)
		}
		if !reflect.DeepEqual(again, refs) {
			t.Fatalf("round trip changed the map:\n%v\n%v", refs, again)
		}
		// Everything built on a decoded map must hold up too.
		_ = Resolve(refs, 0, ChunkSize)
		_ = Truncate(refs, ChunkSize/2)
		_ = NeedsCompaction(refs)
	})
}
