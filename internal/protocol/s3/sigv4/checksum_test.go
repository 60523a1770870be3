package sigv4

import (
	"bytes"
	"encoding/base64"
	"hash/crc64"
	"io"
	"math/rand/v2"
	"net/http"
	"testing"

	minionvme "github.com/minio/crc64nvme"
)

func TestCRC64NVMEKnownValues(t *testing.T) {
	cases := []struct {
		name string
		data []byte
		want uint64
	}{
		// the CRC-64/NVME check value: CRC of "123456789"
		{"check value", []byte("123456789"), 0xae8b14860a799888},
		{"empty", nil, 0},
	}
	for _, c := range cases {
		if got := CRC64NVMEChecksum(c.data); got != c.want {
			t.Errorf("%s: %#x, want %#x", c.name, got, c.want)
		}
	}
	// ceph/s3-tests: 1024 bytes of 'A' has x-amz-checksum-crc64nvme Qeh8oXvGiSo=
	if got := checksumB64(CRC64NVME, bytes.Repeat([]byte{'A'}, 1024)); got != "Qeh8oXvGiSo=" {
		t.Errorf("1024 x 'A': %s, want Qeh8oXvGiSo=", got)
	}
	// and x-amz-checksum-sha256 arcu6553sHVAiX4MjW0j7I7vD4w6R+Gz9Ok0Q9lTa+0=
	if got := checksumB64(SHA256, bytes.Repeat([]byte{'A'}, 1024)); got != "arcu6553sHVAiX4MjW0j7I7vD4w6R+Gz9Ok0Q9lTa+0=" {
		t.Errorf("1024 x 'A' SHA256: %s", got)
	}
	// the S3 trailer example: 66560 bytes of 'a' have CRC32C sOO8/Q==
	if got := checksumB64(CRC32C, bytes.Repeat([]byte{'a'}, 66560)); got != "sOO8/Q==" {
		t.Errorf("66560 x 'a' CRC32C: %s", got)
	}
}

// TestCRC64NVMEMatchesReferences compares the slicing-by-8 update with
// hash/crc64 over the same table, and with an independent implementation,
// for every length and split of random data.
func TestCRC64NVMEMatchesReferences(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	data := make([]byte, 5000)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	table := crc64.MakeTable(crc64NVMEPoly)
	for _, n := range []int{1, 2, 7, 8, 9, 15, 16, 63, 64, 65, 2047, 2048, 4999, 5000} {
		want := crc64.Checksum(data[:n], table)
		if got := CRC64NVMEChecksum(data[:n]); got != want {
			t.Fatalf("len %d: %#x, hash/crc64 says %#x", n, got, want)
		}
		if other := minionvme.Checksum(data[:n]); other != want {
			t.Fatalf("len %d: github.com/minio/crc64nvme says %#x, hash/crc64 %#x", n, other, want)
		}
		// written in pieces
		h := NewCRC64NVME()
		for off := 0; off < n; {
			step := 1 + rng.IntN(100)
			if off+step > n {
				step = n - off
			}
			h.Write(data[off : off+step])
			off += step
		}
		if h.Sum64() != want {
			t.Fatalf("len %d in pieces: %#x, want %#x", n, h.Sum64(), want)
		}
	}
}

func TestChecksumAlgorithms(t *testing.T) {
	for _, alg := range ChecksumAlgorithms {
		h := alg.New()
		h.Write([]byte("hello"))
		sum := h.Sum(nil)
		if len(sum) != alg.Size() {
			t.Errorf("%s: %d-byte digest, Size says %d", alg, len(sum), alg.Size())
		}
		raw, ok := alg.decode(base64.StdEncoding.EncodeToString(sum))
		if !ok || !bytes.Equal(raw, sum) {
			t.Errorf("%s: decode of its own value failed", alg)
		}
		if _, ok := alg.decode(base64.StdEncoding.EncodeToString(append(sum, 0))); ok {
			t.Errorf("%s: a digest one byte long accepted", alg)
		}
		got, ok := checksumFromHeaderName(alg.HeaderName())
		if !ok || got != alg {
			t.Errorf("%s: header %s maps to %q", alg, alg.HeaderName(), got)
		}
		if p, ok := ParseChecksumAlgorithm(string(alg)); !ok || p != alg {
			t.Errorf("%s: parse", alg)
		}
	}
	for _, name := range []string{"x-amz-checksum-mode", "x-amz-checksum-type", "x-amz-checksum-algorithm", "x-amz-checksum-", "content-md5"} {
		if _, ok := checksumFromHeaderName(name); ok {
			t.Errorf("%s taken for a checksum value", name)
		}
	}
}

// BenchmarkChecksum measures each x-amz-checksum-* algorithm over 1 MiB
// writes, and hash/crc64 with the same table for comparison.
func BenchmarkChecksum(b *testing.B) {
	data := pattern(1 << 20)
	for _, alg := range ChecksumAlgorithms {
		b.Run(string(alg), func(b *testing.B) {
			h := alg.New()
			b.SetBytes(int64(len(data)))
			for i := 0; i < b.N; i++ {
				h.Write(data)
			}
		})
	}
	b.Run("hash/crc64-NVME-table", func(b *testing.B) {
		table := crc64.MakeTable(crc64NVMEPoly)
		h := crc64.New(table)
		b.SetBytes(int64(len(data)))
		for i := 0; i < b.N; i++ {
			h.Write(data)
		}
	})
}

// TestObjectChecksumHeaders: on CompleteMultipartUpload the x-amz-checksum-*
// header is the assembled object's checksum (often composite, "<b64>-<n>"),
// not the XML body's, so it is neither parsed nor checked here; on any other
// request it describes the body.
func TestObjectChecksumHeaders(t *testing.T) {
	body := []byte("<CompleteMultipartUpload></CompleteMultipartUpload>")
	composite := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)) + "-3"
	for _, tc := range []struct {
		name, method, target, value string
		wantCode                    string // from Verify or reading the body
	}{
		{"complete, composite", "POST", "/b/k?uploadId=u1", composite, ""},
		{"complete, full object", "POST", "/b/k?uploadId=u1", base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)), ""},
		{"put with a composite value", "PUT", "/b/k", composite, "BadDigest"},
		{"create upload is about its body", "POST", "/b/k?uploads", composite, "BadDigest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, "http://gw.test"+tc.target, bytes.NewReader(body))
			req.ContentLength = int64(len(body))
			req.Header.Set("X-Amz-Content-Sha256", unsignedPayload)
			req.Header.Set("X-Amz-Checksum-Sha256", tc.value)
			ver, err := newTestVerifier(fixedNow).Verify(req)
			if err == nil {
				_, err = io.ReadAll(ver.Body)
			}
			if got := errCode(err); got != tc.wantCode {
				t.Fatalf("error %q (%v), want %q", got, err, tc.wantCode)
			}
			if err == nil {
				if _, has := ver.Checksums()["SHA256"]; has {
					t.Fatal("the object's checksum was reported as the body's")
				}
			}
		})
	}
}
