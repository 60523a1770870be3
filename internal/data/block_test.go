package data

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math/rand/v2"
	"testing"
)

func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for k := 0; k < 8; k++ {
			b[i+k] = byte(v >> (8 * k))
		}
	}
	for i := n &^ 7; i < n; i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

func TestBlockKey(t *testing.T) {
	tests := []struct {
		id    uint64
		index int
		size  uint32
		want  string
	}{
		{1, 0, 1, "chunks/0/0/1_0_1"},
		{1234567, 3, BlockSize, "chunks/1/1234/1234567_3_4194304"},
		{999, 15, 10, "chunks/0/0/999_15_10"},
		{1<<64 - 1, 0, 5, "chunks/18446744073709/18446744073709551/18446744073709551615_0_5"},
	}
	for _, tt := range tests {
		key := BlockKey(tt.id, tt.index, tt.size)
		if key != tt.want {
			t.Errorf("BlockKey(%d, %d, %d) = %q, want %q", tt.id, tt.index, tt.size, key, tt.want)
		}
		id, index, size, ok := ParseBlockKey(key)
		if !ok || id != tt.id || index != tt.index || size != tt.size {
			t.Errorf("ParseBlockKey(%q) = %d, %d, %d, %v", key, id, index, size, ok)
		}
	}
}

func TestParseBlockKeyRejects(t *testing.T) {
	for _, key := range []string{
		"",
		"chunks/",
		"chunks/0/0/1_0",
		"chunks/0/0/1_0_1_2",
		"chunks/0/0/0_0_1",                    // id 0 is a hole
		"chunks/0/0/1_16_1",                   // index beyond a chunk
		"chunks/0/0/1_0_0",                    // empty block
		"chunks/0/0/1_0_4194305",              // larger than a block
		"chunks/0/1/1_0_1",                    // wrong directory
		"chunks/0/0/01_0_1",                   // leading zero
		"chunks/0/0/+1_0_1",                   // sign
		"chunks/0/0/1_-1_1",                   // negative index
		"chunks/0/0/1_0_1/x",                  // trailing path
		"other/0/0/1_0_1",                     // foreign prefix
		"chunks/0/0/1_0_1.tmp",                // temporary file of an engine
		"chunks/0/0/99999999999999999999_0_1", // overflow
	} {
		if id, index, size, ok := ParseBlockKey(key); ok {
			t.Errorf("ParseBlockKey(%q) = %d, %d, %d, true; want rejected", key, id, index, size)
		}
	}
}

func TestBlockRoundTrip(t *testing.T) {
	for _, n := range []int{1, 100, SegmentSize - 1, SegmentSize, SegmentSize + 1, 3*SegmentSize + 17, BlockSize} {
		data := randomBytes(uint64(n), n)
		obj := EncodeBlock(nil, 42, 3, data)
		if want := blockHeaderLen(uint32(n)) + n; len(obj) != want {
			t.Fatalf("n=%d: object is %d bytes, want %d", n, len(obj), want)
		}
		if hdr := obj[n:]; string(hdr[:4]) != blockMagic || hdr[4] != blockVersion {
			t.Errorf("n=%d: header starts %x, want magic and version", n, hdr[:8])
		}
		got, err := DecodeBlock(42, 3, uint32(n), obj)
		if err != nil {
			t.Fatalf("n=%d: DecodeBlock: %v", n, err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("n=%d: decoded data differs", n)
		}
	}
}

// TestDecodeBlockDetectsCorruption flips every byte of a small block, and
// every header byte plus a spread of data bytes of a large one: each flip
// must give ErrChecksum.
func TestDecodeBlockDetectsCorruption(t *testing.T) {
	for _, n := range []int{200, 2*SegmentSize + 5} {
		data := randomBytes(7, n)
		obj := EncodeBlock(nil, 9, 1, data)
		var positions []int
		for i := 0; i < len(obj); i++ {
			if n < SegmentSize || i >= n || i%997 == 0 || i%SegmentSize == 0 || i%SegmentSize == SegmentSize-1 || i == n-1 {
				positions = append(positions, i)
			}
		}
		for _, i := range positions {
			for _, mask := range []byte{0x01, 0x80, 0xff} {
				obj[i] ^= mask
				got, err := DecodeBlock(9, 1, uint32(n), obj)
				obj[i] ^= mask
				if !errors.Is(err, ErrChecksum) {
					t.Fatalf("n=%d: flipping byte %d with %#x: err = %v (data returned: %v), want ErrChecksum", n, i, mask, err, got != nil)
				}
			}
		}
	}
}

func TestDecodeBlockRejectsWrongIdentityAndLength(t *testing.T) {
	data := randomBytes(1, 1000)
	obj := EncodeBlock(nil, 5, 2, data)
	tests := []struct {
		name  string
		id    uint64
		index int
		size  uint32
		obj   []byte
	}{
		{"other slice", 6, 2, 1000, obj},
		{"other index", 5, 3, 1000, obj},
		{"truncated", 5, 2, 1000, obj[:len(obj)-1]},
		{"overlong", 5, 2, 1000, append(append([]byte(nil), obj...), 0)},
		{"empty", 5, 2, 1000, nil},
		{"size zero", 5, 2, 0, obj},
		{"size too large", 5, 2, BlockSize + 1, obj},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := DecodeBlock(tt.id, tt.index, tt.size, tt.obj); !errors.Is(err, ErrChecksum) {
				t.Errorf("err = %v, want ErrChecksum", err)
			}
		})
	}
}

func FuzzDecodeBlock(f *testing.F) {
	f.Add(EncodeBlock(nil, 1, 0, []byte("hello")), uint64(1), uint8(0), uint32(5))
	f.Add(EncodeBlock(nil, 77, 2, randomBytes(3, 300)), uint64(77), uint8(2), uint32(300))
	f.Add([]byte("CFSB\x01\x00\x00\x00"), uint64(1), uint8(0), uint32(0))
	f.Fuzz(func(t *testing.T, obj []byte, id uint64, index uint8, size uint32) {
		data, err := DecodeBlock(id, int(index), size, obj)
		if err != nil {
			if !errors.Is(err, ErrChecksum) {
				t.Fatalf("error %v does not wrap ErrChecksum", err)
			}
			return
		}
		// The format is canonical: an accepted object is exactly what the
		// encoder of its version makes of its data.
		again := make([]byte, len(obj))
		copy(again, data)
		encodeHeaderVersion(again[len(data):], obj[len(data)+4], id, int(index), data)
		if !bytes.Equal(again, obj) {
			t.Fatalf("accepted a block the encoder would not produce")
		}
	})
}

func FuzzParseBlockKey(f *testing.F) {
	f.Add("chunks/1/1234/1234567_3_4194304")
	f.Add("chunks/0/0/1_0_1")
	f.Fuzz(func(t *testing.T, key string) {
		id, index, size, ok := ParseBlockKey(key)
		if ok && BlockKey(id, index, size) != key {
			t.Fatalf("ParseBlockKey(%q) accepted a key BlockKey does not produce", key)
		}
	})
}

// documentedBlock builds a block of the given format version and segment
// size from the layout the package documentation specifies, with the
// standard library alone.
func documentedBlock(version byte, seg int, id uint64, index int, data []byte) []byte {
	tab := crc32.MakeTable(crc32.Castagnoli)
	le32 := func(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
	n := len(data)
	ident := binary.LittleEndian.AppendUint64(nil, id)
	ident = append(ident, le32(uint32(index))...)
	ident = append(ident, le32(uint32(n))...)
	hdr := []byte{'C', 'F', 'S', 'B', version, 0, 0, 0}
	for s := 0; s*seg < n; s++ {
		part := data[s*seg : min((s+1)*seg, n)]
		covered := append(append(append([]byte(nil), ident...), le32(uint32(s))...), part...)
		hdr = append(hdr, le32(crc32.Checksum(covered, tab))...)
	}
	hdr = append(hdr, le32(crc32.Checksum(append(append([]byte(nil), ident...), hdr...), tab))...)
	return append(append([]byte(nil), data...), hdr...)
}

// TestBlockFormatAsDocumented compares the encoder with the documented
// layout, and checks that blocks of both readable versions decode: the
// format is a contract with every block already stored.
func TestBlockFormatAsDocumented(t *testing.T) {
	const id, index = 0x0102030405060708, 7
	for _, n := range []int{1, 5, 4096, 4099, 65536, 65539, BlockSize} {
		data := randomBytes(uint64(n)+1, n)
		v3 := documentedBlock(3, 4<<10, id, index, data)
		if got := EncodeBlock(nil, id, index, data); !bytes.Equal(got, v3) {
			t.Errorf("n=%d: encoded block differs from the documented layout (first header bytes %x, want %x)", n, got[min(len(got), n):min(len(got), n+16)], v3[n:n+16])
		}
		for _, obj := range [][]byte{v3, documentedBlock(2, 64<<10, id, index, data)} {
			got, err := DecodeBlock(id, index, uint32(n), obj)
			if err != nil || !bytes.Equal(got, data) {
				t.Errorf("n=%d: DecodeBlock of a version %d block: err %v, data equal %v", n, obj[n+4], err, bytes.Equal(got, data))
			}
		}
		// A version 2 header claiming version 3 (or the reverse) has the
		// wrong length or checksums.
		if n > 4096 {
			bad := documentedBlock(2, 64<<10, id, index, data)
			bad[n+4] = 3
			if _, err := DecodeBlock(id, index, uint32(n), bad); !errors.Is(err, ErrChecksum) {
				t.Errorf("n=%d: version 2 block relabelled 3: err %v, want ErrChecksum", n, err)
			}
		}
	}
}
