package data

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
)

const (
	// ChunkSize is the size of the chunks a file is divided into; a chunk
	// map covers one chunk.
	ChunkSize = 64 << 20
	// BlockSize is the largest amount of slice data stored in one block.
	BlockSize = 4 << 20
	// SegmentSize is the unit of checksumming inside a block of the
	// current format: a read fetches and verifies only the segments it
	// covers, so a 4 KiB read costs a 4 KiB read.
	SegmentSize = 4 << 10

	// MaxSlicesBeforeCompaction is the number of references in a chunk map
	// above which NeedsCompaction reports true.
	MaxSlicesBeforeCompaction = 16

	// InlineMax is the largest slice kept in the metadata store instead of
	// in blocks. A small write then costs one metadata transaction and no
	// block write with its two syncs: that is what makes small objects and
	// small files fast. Larger slices would weigh on the metadata store
	// (etcd keeps its data in memory).
	InlineMax = 16 << 10
	// inlineBit marks the id of an inline slice. Slice ids come from a
	// counter that never reaches it, so the mark needs no change of the
	// chunk map format.
	inlineBit = 1 << 63
)

// InlineID returns the id of an inline slice numbered n.
func InlineID(n uint64) uint64 { return n | inlineBit }

// IsInline reports whether slice id keeps its data in the metadata store.
func IsInline(id uint64) bool { return id&inlineBit != 0 }

// Slice is a reference to part of the data of one continuous write, placed
// in a chunk.
type Slice struct {
	ID   uint64 // names the slice's blocks; 0 is a hole that reads as zeros
	Size uint32 // total length of the slice's stored data (all its blocks)
	Pos  uint32 // offset in the chunk where this reference starts
	Off  uint32 // offset in the slice's data where this reference starts
	Len  uint32 // length of the reference
}

// IsHole reports whether the reference reads as zeros.
func (s Slice) IsHole() bool { return s.ID == 0 }

// End is the chunk offset just past the reference.
func (s Slice) End() uint64 { return uint64(s.Pos) + uint64(s.Len) }

// Validate reports whether the reference obeys the chunk map invariants
// (see the package documentation). DecodeSlices rejects maps that do not.
func (s Slice) Validate() error {
	if s.End() > ChunkSize {
		return fmt.Errorf("data: slice %d: reference [%d, %d) extends past the chunk size %d", s.ID, s.Pos, s.End(), ChunkSize)
	}
	if s.ID == 0 {
		return nil // a hole's Size and Off are not stored
	}
	if s.Size > ChunkSize {
		return fmt.Errorf("data: slice %d: size %d exceeds the chunk size %d", s.ID, s.Size, ChunkSize)
	}
	if uint64(s.Off)+uint64(s.Len) > uint64(s.Size) {
		return fmt.Errorf("data: slice %d: reference [%d, %d) of its data exceeds its size %d", s.ID, s.Off, uint64(s.Off)+uint64(s.Len), s.Size)
	}
	return nil
}

// Chunk map encoding, version 1: one version byte, then per reference a
// flags byte followed by the uvarint fields the flags do not imply:
//
//	ID, Size           unless flagHole (both implied: ID 0, Size 0)
//	Pos                unless flagPosFollows (Pos = previous reference's end, 0 for the first)
//	Off                unless flagOffZero or flagHole
//	Len                unless flagLenRest (Len = Size-Off)
//
// The flags make the common cases (sequential writes, whole-slice
// references) cost about 1 byte plus the ID and size.
const (
	sliceMapVersion = 1

	flagHole       = 1 << 0
	flagPosFollows = 1 << 1
	flagOffZero    = 1 << 2
	flagLenRest    = 1 << 3
	flagsKnown     = flagHole | flagPosFollows | flagOffZero | flagLenRest
)

// AppendSlices encodes slices compactly (the chunk map value in the
// metadata store) after dst. A hole's Size and Off are stored as zero.
// References that violate Slice.Validate are encoded as given, and
// DecodeSlices will then reject the map: callers must not produce them.
func AppendSlices(dst []byte, s []Slice) []byte {
	dst = append(dst, sliceMapVersion)
	var prevEnd uint64
	for _, sl := range s {
		var flags byte
		if sl.ID == 0 {
			flags |= flagHole
		} else {
			if sl.Off == 0 {
				flags |= flagOffZero
			}
			if sl.Off <= sl.Size && sl.Len == sl.Size-sl.Off {
				flags |= flagLenRest
			}
		}
		if uint64(sl.Pos) == prevEnd {
			flags |= flagPosFollows
		}
		dst = append(dst, flags)
		if flags&flagHole == 0 {
			dst = binary.AppendUvarint(dst, sl.ID)
			dst = binary.AppendUvarint(dst, uint64(sl.Size))
		}
		if flags&flagPosFollows == 0 {
			dst = binary.AppendUvarint(dst, uint64(sl.Pos))
		}
		if flags&(flagOffZero|flagHole) == 0 {
			dst = binary.AppendUvarint(dst, uint64(sl.Off))
		}
		if flags&flagLenRest == 0 {
			dst = binary.AppendUvarint(dst, uint64(sl.Len))
		}
		prevEnd = sl.End()
	}
	return dst
}

// errChunkMap is wrapped by every DecodeSlices error.
var errChunkMap = errors.New("data: malformed chunk map")

// DecodeSlices decodes what AppendSlices wrote. Malformed input (an unknown
// version or flag, a truncated or overlong field, or a reference violating
// Slice.Validate) returns an error.
func DecodeSlices(b []byte) ([]Slice, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: empty value (no version byte)", errChunkMap)
	}
	if b[0] != sliceMapVersion {
		return nil, fmt.Errorf("%w: unknown version %d (written by a newer release?)", errChunkMap, b[0])
	}
	b = b[1:]
	// Every reference takes at least 2 bytes (flags and Len or ID), which
	// bounds the allocation for hostile input.
	out := make([]Slice, 0, min(len(b)/2, 1024))
	var prevEnd uint64
	for i := 0; len(b) > 0; i++ {
		flags := b[0]
		b = b[1:]
		if flags&^flagsKnown != 0 {
			return nil, fmt.Errorf("%w: reference %d has unknown flags %#x", errChunkMap, i, flags)
		}
		if flags&flagHole != 0 && flags&(flagOffZero|flagLenRest) != 0 {
			return nil, fmt.Errorf("%w: hole reference %d has slice flags %#x", errChunkMap, i, flags)
		}
		var s Slice
		var err error
		field := func(name string, limit uint64) uint64 {
			if err != nil {
				return 0
			}
			v, n := binary.Uvarint(b)
			if n <= 0 {
				err = fmt.Errorf("%w: reference %d: truncated or overlong %s", errChunkMap, i, name)
				return 0
			}
			if v > limit {
				err = fmt.Errorf("%w: reference %d: %s %d out of range", errChunkMap, i, name, v)
				return 0
			}
			b = b[n:]
			return v
		}
		if flags&flagHole == 0 {
			s.ID = field("id", math.MaxUint64)
			s.Size = uint32(field("size", math.MaxUint32))
			if err == nil && s.ID == 0 {
				return nil, fmt.Errorf("%w: reference %d: slice id 0 without the hole flag", errChunkMap, i)
			}
		}
		if flags&flagPosFollows != 0 {
			if prevEnd > math.MaxUint32 {
				return nil, fmt.Errorf("%w: reference %d: position past the chunk", errChunkMap, i)
			}
			s.Pos = uint32(prevEnd)
		} else {
			s.Pos = uint32(field("pos", math.MaxUint32))
		}
		if flags&(flagOffZero|flagHole) == 0 {
			s.Off = uint32(field("off", math.MaxUint32))
		}
		if flags&flagLenRest != 0 {
			if s.Off > s.Size {
				return nil, fmt.Errorf("%w: reference %d: offset %d past slice size %d", errChunkMap, i, s.Off, s.Size)
			}
			s.Len = s.Size - s.Off
		} else {
			s.Len = uint32(field("len", math.MaxUint32))
		}
		if err != nil {
			return nil, err
		}
		if verr := s.Validate(); verr != nil {
			return nil, fmt.Errorf("%w: reference %d: %v", errChunkMap, i, verr)
		}
		out = append(out, s)
		prevEnd = s.End()
	}
	return out, nil
}

// span is a half-open range of chunk offsets.
type span struct{ start, end uint64 }

// Resolve returns the visible pieces of the chunk covering [pos, pos+n), in
// order and contiguous, with holes (ID 0) where nothing was written; later
// slices in the list win over earlier ones. Each data piece names the slice
// (ID, Size) and the part of its data (Off, Len) to read for chunk bytes
// [Pos, Pos+Len). The range is clipped at ChunkSize. Adjacent holes, and
// adjacent pieces that continue the same slice data, are merged.
func Resolve(refs []Slice, pos, n uint32) []Slice {
	start := uint64(pos)
	end := min(start+uint64(n), ChunkSize)
	if start >= end {
		return nil
	}
	// Walk newest first, carving what each reference covers out of the
	// still-uncovered gaps; stop as soon as everything is covered, which
	// for the common "last write covers the read" case is immediately.
	gaps := make([]span, 1, 4)
	gaps[0] = span{start, end}
	var out []Slice
	for i := len(refs) - 1; i >= 0 && len(gaps) > 0; i-- {
		s := refs[i]
		a, e := uint64(s.Pos), s.End()
		if a >= e || e <= start || a >= end {
			continue
		}
		k := sort.Search(len(gaps), func(k int) bool { return gaps[k].end > a })
		m := k
		for m < len(gaps) && gaps[m].start < e {
			m++
		}
		if k == m {
			continue
		}
		var rest [2]span
		nrest := 0
		if g := gaps[k]; g.start < a {
			rest[nrest] = span{g.start, a}
			nrest++
		}
		for _, g := range gaps[k:m] {
			cs, ce := max(g.start, a), min(g.end, e)
			out = append(out, piece(s, cs, ce))
		}
		if g := gaps[m-1]; g.end > e {
			rest[nrest] = span{e, g.end}
			nrest++
		}
		gaps = slices.Replace(gaps, k, m, rest[:nrest]...)
	}
	for _, g := range gaps {
		out = append(out, Slice{Pos: uint32(g.start), Len: uint32(g.end - g.start)})
	}
	slices.SortFunc(out, func(x, y Slice) int { return cmp.Compare(x.Pos, y.Pos) })
	merged := out[:0]
	for _, p := range out {
		if len(merged) > 0 {
			last := &merged[len(merged)-1]
			continues := last.ID == 0 || (last.Size == p.Size && last.Off+last.Len == p.Off)
			if last.ID == p.ID && continues && last.End() == uint64(p.Pos) {
				last.Len += p.Len
				continue
			}
		}
		merged = append(merged, p)
	}
	return merged
}

// piece is the part of reference s that lands on chunk bytes [cs, ce).
func piece(s Slice, cs, ce uint64) Slice {
	p := Slice{Pos: uint32(cs), Len: uint32(ce - cs)}
	if s.ID != 0 {
		p.ID = s.ID
		p.Size = s.Size
		p.Off = s.Off + uint32(cs-uint64(s.Pos))
	}
	return p
}

// Truncate returns the chunk map cut at length n within the chunk (for
// truncating files): references starting at or beyond n are dropped and
// those crossing n are shortened, so nothing remains at or past n and a
// later extension of the file reads zeros there. The input is not
// modified.
func Truncate(refs []Slice, n uint32) []Slice {
	out := make([]Slice, 0, len(refs))
	for _, s := range refs {
		if s.Len == 0 || s.Pos >= n {
			continue
		}
		if s.End() > uint64(n) {
			s.Len = n - s.Pos
		}
		out = append(out, s)
	}
	return out
}

// NeedsCompaction says a chunk map is fragmented enough to rewrite as one
// slice. The rule:
//   - more than MaxSlicesBeforeCompaction references (each costs reads
//     and resolution work on every access), or
//   - the distinct slices referenced store more than twice the bytes that
//     are visible, and at least BlockSize bytes more: overwritten or
//     truncated data then wastes real space, while small waste is left
//     alone because rewriting would cost more than it frees.
func NeedsCompaction(refs []Slice) bool {
	if len(refs) > MaxSlicesBeforeCompaction {
		return true
	}
	var stored uint64
	seen := make(map[uint64]struct{}, len(refs))
	for _, s := range refs {
		if s.ID == 0 {
			continue
		}
		if _, ok := seen[s.ID]; !ok {
			seen[s.ID] = struct{}{}
			stored += uint64(s.Size)
		}
	}
	if stored < BlockSize {
		return false
	}
	var visible uint64
	for _, p := range Resolve(refs, 0, ChunkSize) {
		if p.ID != 0 {
			visible += uint64(p.Len)
		}
	}
	return stored > 2*visible && stored-visible >= BlockSize
}

// SliceIDs returns the distinct slice IDs referenced (non-hole), in
// ascending order, for reference counting.
func SliceIDs(refs []Slice) []uint64 {
	ids := make([]uint64, 0, len(refs))
	for _, s := range refs {
		if s.ID != 0 {
			ids = append(ids, s.ID)
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}
