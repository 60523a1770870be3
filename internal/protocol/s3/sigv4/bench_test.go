package sigv4

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strconv"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// drain reads r to the end through a buffer the size a handler would use
// for a block.
func drain(b *testing.B, r io.Reader, buf []byte) int64 {
	var n int64
	for {
		m, err := r.Read(buf)
		n += int64(m)
		if err == io.EOF {
			return n
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifySignedPut4KiB: Verify of a 4 KiB PUT signed by
// aws-sdk-go-v2 with its SHA-256 in x-amz-content-sha256, and reading the
// body (SHA-256 and MD5 checked).
func BenchmarkVerifySignedPut4KiB(b *testing.B) {
	body := pattern(4096)
	req, _ := http.NewRequest(http.MethodPut, "http://127.0.0.1:9000/bucket/dir/object-0001", bytes.NewReader(body))
	req.Header.Set("X-Amz-Content-Sha256", sha256Hex(body))
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("Content-Md5", md5B64(body))
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	creds := aws.Credentials{AccessKeyID: testAccessKey, SecretAccessKey: testSecret}
	if err := signer.SignHTTP(context.Background(), creds, req, sha256Hex(body), "s3", testRegion, signTime); err != nil {
		b.Fatal(err)
	}
	req.RequestURI = req.URL.RequestURI()
	v := newTestVerifier(fixedNow)
	rd := bytes.NewReader(body)
	buf := make([]byte, 32<<10)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rd.Reset(body)
		req.Body = io.NopCloser(rd)
		ver, err := v.Verify(req)
		if err != nil {
			b.Fatal(err)
		}
		if drain(b, ver.Body, buf) != 4096 || ver.MD5() == nil {
			b.Fatal("short body")
		}
		ver.Body.Close()
	}
}

const benchSize = 64 << 20

func benchStream(b *testing.B, signed bool) (data, encoded []byte, seed *signing) {
	data = pattern(benchSize)
	var trailers [][2]string
	if !signed {
		trailers = [][2]string{{"x-amz-checksum-crc32", checksumB64(CRC32, data)}}
	} else {
		seed = testSeed()
	}
	return data, encodeChunks(data, 64<<10, seed, trailers), seed
}

// BenchmarkChunkedDecode64MiB: the aws-chunked decoder alone over a 64 MiB
// body in 64 KiB chunks, as minio-go (signed) and the AWS SDKs (unsigned
// with a trailer) frame it.
func BenchmarkChunkedDecode64MiB(b *testing.B) {
	for _, signed := range []bool{false, true} {
		name := map[bool]string{false: "unsigned-trailer", true: "signed-chunks"}[signed]
		b.Run(name, func(b *testing.B) {
			_, enc, seed := benchStream(b, signed)
			buf := make([]byte, 256<<10)
			rd := bytes.NewReader(enc)
			b.SetBytes(benchSize)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				rd.Reset(enc)
				cr := newChunkedReader(rd, benchSize, !signed)
				if signed {
					cr.signer = newChunkSigner(seed)
				}
				if drain(b, cr, buf) != benchSize {
					b.Fatal("short")
				}
			}
		})
	}
}

// BenchmarkVerifiedBody64MiB: the whole Verified.Body of a 64 MiB upload:
// decoding, chunk signatures or the CRC32 trailer, and the MD5 every
// upload gets for its ETag.
func BenchmarkVerifiedBody64MiB(b *testing.B) {
	for _, signed := range []bool{false, true} {
		name := map[bool]string{false: "unsigned-trailer-crc32", true: "signed-chunks"}[signed]
		b.Run(name, func(b *testing.B) {
			_, enc, seed := benchStream(b, signed)
			buf := make([]byte, 256<<10)
			rd := bytes.NewReader(enc)
			req, _ := http.NewRequest(http.MethodPut, "http://gw.test/bucket/big", nil)
			req.ContentLength = int64(len(enc))
			req.Header.Set("X-Amz-Decoded-Content-Length", strconv.Itoa(benchSize))
			req.Header.Set("Content-Encoding", "aws-chunked")
			mode := payloadStreamUnsignedTrailer
			if signed {
				mode = payloadStreamSigned
			} else {
				req.Header.Set("X-Amz-Trailer", "x-amz-checksum-crc32")
			}
			v := newTestVerifier(fixedNow)
			b.SetBytes(benchSize)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				rd.Reset(enc)
				req.Body = io.NopCloser(rd)
				ver, err := v.wrapBody(req, seed, mode, nil)
				if err != nil {
					b.Fatal(err)
				}
				if drain(b, ver.Body, buf) != benchSize || ver.MD5() == nil {
					b.Fatal("short")
				}
			}
		})
	}
}
