package s3

import (
	"encoding/base64"
	"hash"
	"testing"
)

// TestCombineChecksums checks the combined CRC of parts against the CRC of
// the whole, for every combinable algorithm and several part layouts.
func TestCombineChecksums(t *testing.T) {
	data := make([]byte, 70000)
	for i := range data {
		data[i] = byte(i*7 + i/300)
	}
	sum := func(h hash.Hash, b []byte) string {
		h.Reset()
		h.Write(b)
		return base64.StdEncoding.EncodeToString(h.Sum(nil))
	}
	for alg := range crcPolys {
		h, _ := newChecksum(alg)
		whole := sum(h, data)
		for _, cuts := range [][]int{{70000}, {1, 69999}, {35000, 35000}, {0, 100, 0, 69900}, {65536, 4463, 1}} {
			var sums []string
			var sizes []int64
			off := 0
			for _, c := range cuts {
				sums = append(sums, sum(h, data[off:off+c]))
				sizes = append(sizes, int64(c))
				off += c
			}
			got, ok := combineChecksums(alg, sums, sizes)
			if !ok || got != whole {
				t.Fatalf("%s with parts %v: %q, want %q", alg, cuts, got, whole)
			}
		}
	}
	if _, ok := combineChecksums("SHA256", []string{"x"}, []int64{1}); ok {
		t.Fatal("SHA256 cannot be combined")
	}
	if _, ok := combineChecksums("CRC32", []string{"not base64!"}, []int64{1}); ok {
		t.Fatal("a malformed part CRC was combined")
	}
}
