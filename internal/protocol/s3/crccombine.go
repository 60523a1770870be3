package s3

import (
	"encoding/base64"
	"encoding/binary"
)

// The full-object CRC of a multipart upload is computed from its parts'
// CRCs, without reading the data: CRC(A‖B) follows from CRC(A), CRC(B)
// and len(B) by multiplying CRC(A) by x^(8·len(B)) in GF(2) (the method of
// zlib's crc32_combine), for any reflected CRC with all-ones init and
// final xor, as CRC32, CRC32C and CRC64NVME are.

// crcPolys are the reflected polynomials and widths of the combinable
// checksums.
var crcPolys = map[string]struct {
	poly  uint64
	width int
}{
	"CRC32":     {0xEDB88320, 32},
	"CRC32C":    {0x82F63B78, 32},
	"CRC64NVME": {0x9A6C9329AC4BC9B5, 64},
}

func gf2Times(mat []uint64, vec uint64) uint64 {
	var sum uint64
	for i := 0; vec != 0; i, vec = i+1, vec>>1 {
		if vec&1 != 0 {
			sum ^= mat[i]
		}
	}
	return sum
}

func gf2Square(square, mat []uint64) {
	for n := range mat {
		square[n] = gf2Times(mat, mat[n])
	}
}

// crcCombine returns the CRC of A‖B from crc1 = CRC(A), crc2 = CRC(B) and
// len2 = len(B).
func crcCombine(poly uint64, width int, crc1, crc2 uint64, len2 int64) uint64 {
	if len2 <= 0 {
		return crc1
	}
	odd := make([]uint64, width)
	even := make([]uint64, width)
	odd[0] = poly
	row := uint64(1)
	for n := 1; n < width; n++ {
		odd[n] = row
		row <<= 1
	}
	gf2Square(even, odd) // two zero bits
	gf2Square(odd, even) // four zero bits
	for {
		gf2Square(even, odd)
		if len2&1 != 0 {
			crc1 = gf2Times(even, crc1)
		}
		len2 >>= 1
		if len2 == 0 {
			break
		}
		gf2Square(odd, even)
		if len2&1 != 0 {
			crc1 = gf2Times(odd, crc1)
		}
		len2 >>= 1
		if len2 == 0 {
			break
		}
	}
	return crc1 ^ crc2
}

// combineChecksums returns the base64 full-object CRC of parts with the
// given base64 CRCs and sizes, or false when alg cannot be combined or a
// part's CRC is missing or malformed.
func combineChecksums(alg string, sums []string, sizes []int64) (string, bool) {
	p, ok := crcPolys[alg]
	if !ok || len(sums) != len(sizes) {
		return "", false
	}
	var crc uint64
	for i, s := range sums {
		raw, err := base64.StdEncoding.DecodeString(s)
		if err != nil || len(raw) != p.width/8 {
			return "", false
		}
		var v uint64
		if p.width == 32 {
			v = uint64(binary.BigEndian.Uint32(raw))
		} else {
			v = binary.BigEndian.Uint64(raw)
		}
		if i == 0 {
			crc = v
		} else {
			crc = crcCombine(p.poly, p.width, crc, v, sizes[i])
		}
	}
	out := make([]byte, p.width/8)
	if p.width == 32 {
		binary.BigEndian.PutUint32(out, uint32(crc))
	} else {
		binary.BigEndian.PutUint64(out, crc)
	}
	return base64.StdEncoding.EncodeToString(out), true
}
