package data

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"strconv"
)

var (
	// ErrChecksum means a block's bytes do not match their checksum: the
	// stored block is corrupt (or in a format this release cannot read).
	// It is wrapped with the block key; the bytes are never returned.
	ErrChecksum = errors.New("data: block checksum mismatch")
	// ErrMissingBlock means a block the metadata references is not in the
	// store. It is wrapped with the block key.
	ErrMissingBlock = errors.New("data: block missing from the blob store")
)

const (
	blockMagic = "CFSB"
	// blockVersion is the format written: 4 KiB segments (SegmentSize).
	// Version 2, with 64 KiB segments, is still read.
	blockVersion = 3
	// v2SegmentSize is the segment size of format version 2.
	v2SegmentSize = 64 << 10
	// blockPrefixLen is magic, version and reserved bytes.
	blockPrefixLen = 8
	// maxBlockHeaderLen is the header of a full BlockSize block.
	maxBlockHeaderLen = blockPrefixLen + 4*(BlockSize/SegmentSize) + 4
	// maxBlocksPerSlice bounds block indexes: a slice holds at most a chunk.
	maxBlocksPerSlice = ChunkSize / BlockSize
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// segmentSize is the segment size of a block format version (2 or
// blockVersion).
func segmentSize(version byte) uint32 {
	if version == 2 {
		return v2SegmentSize
	}
	return SegmentSize
}

// blockSegments is the number of checksummed segments of an n-byte block
// with segments of seg bytes.
func blockSegments(n, seg uint32) int { return int((uint64(n) + uint64(seg) - 1) / uint64(seg)) }

// blockHeaderLen is the length of the header of an n-byte block of the
// current format, which follows its data.
func blockHeaderLen(n uint32) int { return headerLen(n, SegmentSize) }

// headerLen is the header length of an n-byte block with segments of seg
// bytes.
func headerLen(n, seg uint32) int { return blockPrefixLen + 4*blockSegments(n, seg) + 4 }

// blockIdentity is the CRC32C state after the block's identity, which
// every checksum of the block starts from.
func blockIdentity(id uint64, index int, n uint32) uint32 {
	c := crcUpdateLE(0, id, 8)
	return crcUpdateLE(c, uint64(index)|uint64(n)<<32, 8)
}

func segmentChecksum(ident uint32, seg int, data []byte) uint32 {
	return crc32.Update(crcUpdateLE(ident, uint64(seg), 4), castagnoli, data)
}

// crcUpdateLE is crc32.Update(crc, castagnoli, the low size bytes of v in
// little-endian order), computed bytewise: passing a small array to
// crc32.Update would move it to the heap on every call.
func crcUpdateLE(crc uint32, v uint64, size int) uint32 {
	crc = ^crc
	for i := 0; i < size; i++ {
		crc = castagnoli[byte(crc)^byte(v)] ^ (crc >> 8)
		v >>= 8
	}
	return ^crc
}

// numBlocks is the number of blocks of a slice of size bytes.
func numBlocks(size uint32) int { return int((uint64(size) + BlockSize - 1) / BlockSize) }

// blockDataSize is the data length of block index of a slice of size bytes.
func blockDataSize(size uint32, index int) uint32 {
	return uint32(min(uint64(size)-uint64(index)*BlockSize, BlockSize))
}

// encodeBlock lays out block index of slice id, holding data (1 to
// BlockSize bytes), into dst, which must have room for
// len(data)+blockHeaderLen(len(data)) bytes, and returns the object.
func encodeBlock(dst []byte, id uint64, index int, data []byte) []byte {
	n := len(data)
	obj := dst[:n+blockHeaderLen(uint32(n))]
	copy(obj, data)
	encodeHeader(obj[n:], id, index, obj[:n])
	return obj
}

// encodeHeader writes into hdr (blockHeaderLen bytes) the header of block
// index of slice id holding data, checksumming data where it lies.
func encodeHeader(hdr []byte, id uint64, index int, data []byte) {
	encodeHeaderVersion(hdr, blockVersion, id, index, data)
}

// encodeHeaderVersion is encodeHeader for a given format version; hdr has
// headerLen(len(data), segmentSize(version)) bytes. Only tests write an
// older version.
func encodeHeaderVersion(hdr []byte, version byte, id uint64, index int, data []byte) {
	n := uint32(len(data))
	size := int(segmentSize(version))
	copy(hdr, blockMagic)
	hdr[4] = version
	hdr[5], hdr[6], hdr[7] = 0, 0, 0
	ident := blockIdentity(id, index, n)
	for seg := 0; seg*size < len(data); seg++ {
		a := seg * size
		e := min(a+size, len(data))
		binary.LittleEndian.PutUint32(hdr[blockPrefixLen+4*seg:], segmentChecksum(ident, seg, data[a:e]))
	}
	crcAt := len(hdr) - 4
	binary.LittleEndian.PutUint32(hdr[crcAt:], crc32.Update(ident, castagnoli, hdr[:crcAt]))
}

// EncodeBlock returns the stored form of block index of slice id holding
// data (1 to BlockSize bytes) appended to dst. WriteSlice uses the same
// layout; this form exists for tools and tests.
func EncodeBlock(dst []byte, id uint64, index int, data []byte) []byte {
	need := len(data) + blockHeaderLen(uint32(len(data)))
	start := len(dst)
	dst = append(dst, make([]byte, need)...)
	encodeBlock(dst[start:], id, index, data)
	return dst
}

// checkBlockHeader verifies the header hdr of block index of slice id
// holding n bytes: hdr must be exactly as long as its format version's
// header of such a block.
func checkBlockHeader(key string, hdr []byte, id uint64, index int, n uint32) error {
	if len(hdr) < blockPrefixLen+4 || string(hdr[:4]) != blockMagic {
		return fmt.Errorf("data: block %s: bad magic %q: %w (the object is not a block or is corrupt; run fsck)", key, hdr[:min(4, len(hdr))], ErrChecksum)
	}
	if hdr[4] != blockVersion && hdr[4] != 2 {
		return fmt.Errorf("data: block %s: format version %d is not readable by this release (versions 2 and %d): %w (corrupt, or written by a newer release)", key, hdr[4], blockVersion, ErrChecksum)
	}
	if want := headerLen(n, segmentSize(hdr[4])); len(hdr) != want {
		return fmt.Errorf("data: block %s: a version %d header of a %d-byte block has %d bytes, found %d: %w (truncated or corrupt block; run fsck)", key, hdr[4], n, want, len(hdr), ErrChecksum)
	}
	crcAt := len(hdr) - 4
	want := binary.LittleEndian.Uint32(hdr[crcAt:])
	if got := crc32.Update(blockIdentity(id, index, n), castagnoli, hdr[:crcAt]); got != want {
		return fmt.Errorf("data: block %s: header checksum %08x, stored %08x: %w (the block is corrupt or stored under the wrong key; run fsck)", key, got, want, ErrChecksum)
	}
	if hdr[5]|hdr[6]|hdr[7] != 0 {
		return fmt.Errorf("data: block %s: reserved header bytes are set: %w", key, ErrChecksum)
	}
	return nil
}

// checkSegments verifies data, the bytes of segments first.. of a block
// whose header hdr has been checked.
func checkSegments(key string, hdr []byte, ident uint32, first int, data []byte) error {
	size := int(segmentSize(hdr[4]))
	for i := 0; i*size < len(data); i++ {
		seg := first + i
		a := i * size
		e := min(a+size, len(data))
		want := binary.LittleEndian.Uint32(hdr[blockPrefixLen+4*seg:])
		if got := segmentChecksum(ident, seg, data[a:e]); got != want {
			return fmt.Errorf("data: block %s: segment %d (block bytes %d-%d) checksum %08x, stored %08x: %w (the stored data is corrupt; restore the block or run fsck)",
				key, seg, seg*size, seg*size+e-a, got, want, ErrChecksum)
		}
	}
	return nil
}

// DecodeBlock verifies obj, the whole stored object of block index of
// slice id holding size data bytes, and returns its data (a sub-slice of
// obj). Any mismatch returns an error wrapping ErrChecksum.
func DecodeBlock(id uint64, index int, size uint32, obj []byte) ([]byte, error) {
	key := BlockKey(id, index, size)
	if size == 0 || size > BlockSize {
		return nil, fmt.Errorf("data: block %s: data size %d outside 1..%d: %w", key, size, BlockSize, ErrChecksum)
	}
	if len(obj) <= int(size) {
		return nil, fmt.Errorf("data: block %s: object has %d bytes, want %d: %w (truncated or corrupt block; run fsck)", key, len(obj), int(size)+blockHeaderLen(size), ErrChecksum)
	}
	hdr := obj[size:]
	if err := checkBlockHeader(key, hdr, id, index, size); err != nil {
		return nil, err
	}
	if err := checkSegments(key, hdr, blockIdentity(id, index, size), 0, obj[:size]); err != nil {
		return nil, err
	}
	return obj[:size], nil
}

// BlockKey is the blob key of block index (holding size data bytes) of
// slice sliceID: "chunks/<id/1e6>/<id/1e3>/<id>_<index>_<size>".
func BlockKey(sliceID uint64, index int, size uint32) string {
	b := make([]byte, 0, 64)
	b = append(b, "chunks/"...)
	b = strconv.AppendUint(b, sliceID/1e6, 10)
	b = append(b, '/')
	b = strconv.AppendUint(b, sliceID/1e3, 10)
	b = append(b, '/')
	b = strconv.AppendUint(b, sliceID, 10)
	b = append(b, '_')
	b = strconv.AppendInt(b, int64(index), 10)
	b = append(b, '_')
	b = strconv.AppendUint(b, uint64(size), 10)
	return string(b)
}

// BlockKeyPrefix is the prefix of every block key, for listing the store.
const BlockKeyPrefix = "chunks/"

// ParseBlockKey parses a key made by BlockKey. It accepts only the exact
// form BlockKey produces for a possible block (slice ID not 0, index below
// ChunkSize/BlockSize, size 1..BlockSize), so a garbage collector never
// mistakes a foreign object for a block.
func ParseBlockKey(key string) (sliceID uint64, index int, size uint32, ok bool) {
	if len(key) > 80 || len(key) <= len(BlockKeyPrefix) || key[:len(BlockKeyPrefix)] != BlockKeyPrefix {
		return 0, 0, 0, false
	}
	name := key
	for i := len(key) - 1; i >= 0; i-- {
		if key[i] == '/' {
			name = key[i+1:]
			break
		}
	}
	var fields [3]string
	for f := 0; f < 3; f++ {
		j := 0
		for j < len(name) && name[j] != '_' {
			j++
		}
		if (j == len(name)) != (f == 2) {
			return 0, 0, 0, false
		}
		fields[f] = name[:j]
		if j < len(name) {
			name = name[j+1:]
		}
	}
	id, err1 := strconv.ParseUint(fields[0], 10, 64)
	idx, err2 := strconv.ParseUint(fields[1], 10, 8)
	sz, err3 := strconv.ParseUint(fields[2], 10, 32)
	if err1 != nil || err2 != nil || err3 != nil || id == 0 || idx >= maxBlocksPerSlice || sz == 0 || sz > BlockSize {
		return 0, 0, 0, false
	}
	// Rebuilding the key rejects leading zeros, signs and wrong directories.
	if BlockKey(id, int(idx), uint32(sz)) != key {
		return 0, 0, 0, false
	}
	return id, int(idx), uint32(sz), true
}
