package sigv4

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"strings"
)

// ChecksumAlgorithm names one of the x-amz-checksum-* algorithms, spelled
// as S3 spells it in x-amz-sdk-checksum-algorithm: "CRC32", "CRC32C",
// "CRC64NVME", "SHA1", "SHA256".
type ChecksumAlgorithm string

// The checksum algorithms S3 clients declare.
const (
	CRC32     ChecksumAlgorithm = "CRC32"
	CRC32C    ChecksumAlgorithm = "CRC32C"
	CRC64NVME ChecksumAlgorithm = "CRC64NVME"
	SHA1      ChecksumAlgorithm = "SHA1"
	SHA256    ChecksumAlgorithm = "SHA256"
)

// ChecksumAlgorithms lists every supported algorithm.
var ChecksumAlgorithms = []ChecksumAlgorithm{CRC32, CRC32C, CRC64NVME, SHA1, SHA256}

// ParseChecksumAlgorithm accepts an algorithm name in any case.
func ParseChecksumAlgorithm(s string) (ChecksumAlgorithm, bool) {
	a := ChecksumAlgorithm(strings.ToUpper(strings.TrimSpace(s)))
	switch a {
	case CRC32, CRC32C, CRC64NVME, SHA1, SHA256:
		return a, true
	}
	return "", false
}

// HeaderName is the header (or trailer) carrying this algorithm's value,
// e.g. "x-amz-checksum-crc32".
func (a ChecksumAlgorithm) HeaderName() string {
	return "x-amz-checksum-" + strings.ToLower(string(a))
}

// Size is the length in bytes of the raw digest.
func (a ChecksumAlgorithm) Size() int {
	switch a {
	case CRC32, CRC32C:
		return 4
	case CRC64NVME:
		return 8
	case SHA1:
		return sha1.Size
	case SHA256:
		return sha256.Size
	}
	return 0
}

// New returns a hash computing this algorithm. Sum lays CRCs out
// big-endian, which is the byte order S3 base64-encodes.
func (a ChecksumAlgorithm) New() hash.Hash {
	switch a {
	case CRC32:
		return crc32.NewIEEE()
	case CRC32C:
		return crc32.New(castagnoliTable)
	case CRC64NVME:
		return NewCRC64NVME()
	case SHA1:
		return sha1.New()
	case SHA256:
		return sha256.New()
	}
	return nil
}

// decodeChecksum checks that v is the base64 form of a digest of this
// algorithm and returns the raw digest.
func (a ChecksumAlgorithm) decode(v string) ([]byte, bool) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v))
	if err != nil || len(raw) != a.Size() {
		return nil, false
	}
	return raw, true
}

// checksumFromHeaderName maps "x-amz-checksum-crc32" (any case) to CRC32.
// Names such as x-amz-checksum-mode or x-amz-checksum-type are not values.
func checksumFromHeaderName(name string) (ChecksumAlgorithm, bool) {
	const prefix = "x-amz-checksum-"
	if len(name) <= len(prefix) || !strings.EqualFold(name[:len(prefix)], prefix) {
		return "", false
	}
	return ParseChecksumAlgorithm(name[len(prefix):])
}

var castagnoliTable = crc32.MakeTable(crc32.Castagnoli)

// crc64NVMEPoly is the NVMe CRC-64 polynomial 0xAD93D23594C93659 in the
// bit-reversed form hash/crc64 expects (the algorithm is reflected, with
// all-ones initial value and final XOR, which hash/crc64 applies).
const crc64NVMEPoly = 0x9a6c9329ac4bc9b5

var (
	crc64NVMETable = crc64.MakeTable(crc64NVMEPoly)
	// crc64NVMESlices extends the table for slicing-by-8: hash/crc64 only
	// keeps such tables for ISO and ECMA and would rebuild one (16 KiB) on
	// every large write for any other polynomial.
	crc64NVMESlices = makeSlicing8(crc64NVMETable)
)

func makeSlicing8(t *crc64.Table) *[8][256]uint64 {
	var s [8][256]uint64
	s[0] = *t
	for i := 0; i < 256; i++ {
		crc := t[i]
		for j := 1; j < 8; j++ {
			crc = t[crc&0xff] ^ (crc >> 8)
			s[j][i] = crc
		}
	}
	return &s
}

// crc64NVMEUpdate continues a CRC-64/NVME over p. crc is the finished
// value so far (0 for none), as crc64.Update takes it.
func crc64NVMEUpdate(crc uint64, p []byte) uint64 {
	crc = ^crc
	t := crc64NVMESlices
	for len(p) >= 8 {
		crc ^= binary.LittleEndian.Uint64(p)
		crc = t[7][crc&0xff] ^ t[6][(crc>>8)&0xff] ^ t[5][(crc>>16)&0xff] ^ t[4][(crc>>24)&0xff] ^
			t[3][(crc>>32)&0xff] ^ t[2][(crc>>40)&0xff] ^ t[1][(crc>>48)&0xff] ^ t[0][crc>>56]
		p = p[8:]
	}
	for _, b := range p {
		crc = t[0][byte(crc)^b] ^ (crc >> 8)
	}
	return ^crc
}

// CRC64NVMEChecksum returns the CRC-64/NVME of p.
func CRC64NVMEChecksum(p []byte) uint64 { return crc64NVMEUpdate(0, p) }

type crc64nvme struct{ crc uint64 }

// NewCRC64NVME returns a hash.Hash64 computing CRC-64/NVME; Sum appends
// the value big-endian.
func NewCRC64NVME() hash.Hash64 { return &crc64nvme{} }

func (d *crc64nvme) Write(p []byte) (int, error) {
	d.crc = crc64NVMEUpdate(d.crc, p)
	return len(p), nil
}
func (d *crc64nvme) Sum(b []byte) []byte { return binary.BigEndian.AppendUint64(b, d.crc) }
func (d *crc64nvme) Sum64() uint64       { return d.crc }
func (d *crc64nvme) Reset()              { d.crc = 0 }
func (d *crc64nvme) Size() int           { return 8 }
func (d *crc64nvme) BlockSize() int      { return 1 }
