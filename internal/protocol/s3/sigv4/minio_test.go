package sigv4

import (
	"bytes"
	"crypto/sha256"
	"hash"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7/pkg/signer"
)

// sha256Hasher adapts crypto/sha256 to the hasher minio-go's streaming
// signer takes.
type sha256Hasher struct{ hash.Hash }

func (sha256Hasher) Close() {}

// minioStream builds the request minio-go sends for a streaming upload:
// STREAMING-AWS4-HMAC-SHA256-PAYLOAD with signed 64 KiB chunks, or its
// -TRAILER form when trailer is set. The body is read out so that tests
// can alter it; the request is sent from the returned bytes.
func minioStream(t testing.TB, base string, data []byte, trailer http.Header) (*http.Request, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, base+"/bucket/streamed-object", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	if trailer != nil {
		req.Trailer = trailer.Clone()
	}
	req = signer.StreamingSignV4(req, testAccessKey, testSecret, "", testRegion, int64(len(data)), time.Now().UTC(), sha256Hasher{sha256.New()})
	encoded, err := io.ReadAll(req.Body)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(encoded)) != req.ContentLength {
		t.Fatalf("minio-go framed %d bytes but announced %d", len(encoded), req.ContentLength)
	}
	return req, encoded
}

// minioUnsignedTrailer builds minio-go's STREAMING-UNSIGNED-PAYLOAD-TRAILER
// request: a signed header, unsigned chunks and a trailing checksum.
func minioUnsignedTrailer(t testing.TB, base string, data []byte, trailer http.Header) (*http.Request, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, base+"/bucket/unsigned-trailer", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = int64(len(data))
	req.Header.Set("X-Amz-Content-Sha256", streamingUnsignedTrailr)
	req = signer.SignV4Trailer(*req, testAccessKey, testSecret, "", testRegion, trailer.Clone())
	encoded, err := io.ReadAll(req.Body)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(encoded)) != req.ContentLength {
		t.Fatalf("minio-go framed %d bytes but announced %d", len(encoded), req.ContentLength)
	}
	return req, encoded
}

func withBody(r *http.Request, b []byte) *http.Request {
	setBody(r, b)
	return r
}

func trailerFor(alg ChecksumAlgorithm, data []byte) http.Header {
	return http.Header{http.CanonicalHeaderKey(alg.HeaderName()): {checksumB64(alg, data)}}
}

func TestMinioStreamingSigned(t *testing.T) {
	v := newTestVerifier(nil)
	srv := startServer(t, v, false)
	for _, size := range []int{1, 1000, 65536, 65537, 200000} {
		data := pattern(size)
		algs := append([]ChecksumAlgorithm{""}, ChecksumAlgorithms...)
		for _, alg := range algs {
			var trailer http.Header
			name := "size " + itoa(size) + " no trailer"
			if alg != "" {
				trailer = trailerFor(alg, data)
				name = "size " + itoa(size) + " " + string(alg) + " trailer"
			}
			t.Run(name, func(t *testing.T) {
				req, encoded := minioStream(t, srv.URL, data, trailer)
				o := send(t, srv, withBody(req, encoded))
				o.check(t, name, "", "")
				if !o.sameBody(data) {
					t.Fatalf("decoded %d bytes, want %d", o.BodyLen, len(data))
				}
				if o.DecodedLength != int64(size) {
					t.Errorf("DecodedLength %d", o.DecodedLength)
				}
				if alg != "" && o.Checksums[string(alg)] != checksumB64(alg, data) {
					t.Errorf("Checksums = %v", o.Checksums)
				}
			})
		}
	}
}

// replaceOnce returns b with the first occurrence of old (after from)
// replaced, failing the test when old is absent.
func replaceAt(t testing.TB, b []byte, from int, old, new string) []byte {
	t.Helper()
	i := bytes.Index(b[from:], []byte(old))
	if i < 0 {
		t.Fatalf("%q not in the stream", old)
	}
	i += from
	out := append([]byte(nil), b[:i]...)
	out = append(out, new...)
	return append(out, b[i+len(old):]...)
}

// flipHex changes the hex digit at i to another hex digit.
func flipHex(b []byte, i int) []byte {
	c := append([]byte(nil), b...)
	if c[i] == '0' {
		c[i] = '1'
	} else {
		c[i] = '0'
	}
	return c
}

func TestMinioStreamingTampered(t *testing.T) {
	v := newTestVerifier(nil)
	srv := startServer(t, v, false)
	data := pattern(200000)
	trailer := trailerFor(CRC32C, data)
	sigOf := func(encoded []byte, n int) int { // offset of chunk n's signature
		off := 0
		for i := 0; i < n; i++ {
			off += bytes.Index(encoded[off:], []byte("chunk-signature=")) + 1
		}
		return off - 1 + len("chunk-signature=")
	}
	cases := []struct {
		name       string
		trailer    http.Header
		alter      func(t testing.TB, enc []byte) []byte
		mutate     func(r *http.Request)
		wantVerify string
		wantRead   string
	}{
		{name: "a byte of the first chunk", trailer: trailer,
			alter: func(_ testing.TB, e []byte) []byte { return flipped(e, 500) }, wantRead: "SignatureDoesNotMatch"},
		{name: "a byte of the last data chunk", trailer: trailer,
			alter: func(_ testing.TB, e []byte) []byte {
				i := bytes.LastIndex(e, []byte("0;chunk-signature=")) - 10
				return flipped(e, i)
			}, wantRead: "SignatureDoesNotMatch"},
		{name: "a chunk signature", trailer: trailer,
			alter: func(_ testing.TB, e []byte) []byte { return flipHex(e, sigOf(e, 2)+5) }, wantRead: "SignatureDoesNotMatch"},
		{name: "the final chunk's signature", trailer: trailer,
			alter: func(_ testing.TB, e []byte) []byte {
				return flipHex(e, bytes.LastIndex(e, []byte("0;chunk-signature="))+len("0;chunk-signature="))
			}, wantRead: "SignatureDoesNotMatch"},
		{name: "a chunk without its signature", trailer: trailer,
			alter: func(t testing.TB, e []byte) []byte {
				i := sigOf(e, 2) - len(";chunk-signature=")
				return append(append([]byte(nil), e[:i]...), e[i+len(";chunk-signature=")+64:]...)
			}, wantRead: "SignatureDoesNotMatch"},
		{name: "the trailer value", trailer: trailer,
			alter: func(t testing.TB, e []byte) []byte {
				return replaceAt(t, e, 0, "x-amz-checksum-crc32c:"+checksumB64(CRC32C, data), "x-amz-checksum-crc32c:"+checksumB64(CRC32C, data[1:]))
			}, wantRead: "SignatureDoesNotMatch"},
		{name: "the trailer signature", trailer: trailer,
			alter: func(_ testing.TB, e []byte) []byte {
				return flipHex(e, bytes.Index(e, []byte("x-amz-trailer-signature:"))+len("x-amz-trailer-signature:")+10)
			}, wantRead: "SignatureDoesNotMatch"},
		{name: "the trailers left out", trailer: trailer,
			alter: func(_ testing.TB, e []byte) []byte {
				return e[:bytes.Index(e, []byte("x-amz-checksum-crc32c:"))]
			}, wantRead: "SignatureDoesNotMatch"},
		{name: "a correctly signed but wrong checksum", trailer: trailerFor(CRC32C, data[:100]), wantRead: "BadDigest"},
		{name: "cut in the middle of a chunk", trailer: trailer,
			alter: func(_ testing.TB, e []byte) []byte { return e[:70000] }, wantRead: "IncompleteBody"},
		{name: "cut before the final chunk", trailer: nil,
			alter: func(_ testing.TB, e []byte) []byte {
				return e[:bytes.LastIndex(e, []byte("0;chunk-signature="))]
			}, wantRead: "IncompleteBody"},
		{name: "the final chunk missing but the trailers sent", trailer: trailer,
			alter: func(_ testing.TB, e []byte) []byte {
				i := bytes.LastIndex(e, []byte("0;chunk-signature="))
				return append(append([]byte(nil), e[:i]...), e[i+len("0;chunk-signature=")+64+2:]...)
			}, wantRead: "InvalidRequest"},
		{name: "chunk data longer than its size", trailer: nil,
			alter: func(_ testing.TB, e []byte) []byte {
				i := bytes.Index(e, []byte("\r\n10000;")) // end of chunk 1
				return append(append(append([]byte(nil), e[:i]...), 'x'), e[i:]...)
			}, wantRead: "InvalidRequest"},
		{name: "decoded length altered", trailer: trailer,
			mutate:     func(r *http.Request) { r.Header.Set("X-Amz-Decoded-Content-Length", "199999") },
			wantVerify: "SignatureDoesNotMatch"},
		{name: "seed signature altered", trailer: trailer,
			mutate: func(r *http.Request) {
				a := r.Header.Get("Authorization")
				r.Header.Set("Authorization", string(flipHex([]byte(a), len(a)-3)))
			}, wantVerify: "SignatureDoesNotMatch"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, enc := minioStream(t, srv.URL, data, c.trailer)
			if c.alter != nil {
				enc = c.alter(t, enc)
			}
			req = withBody(req, enc)
			if c.mutate != nil {
				c.mutate(req)
			}
			o := send(t, srv, req)
			o.check(t, c.name, c.wantVerify, c.wantRead)
			if o.MD5Hex != "" || o.Checksums != nil {
				t.Errorf("digests reported for a failed upload")
			}
		})
	}
}

func TestMinioUnsignedTrailer(t *testing.T) {
	v := newTestVerifier(nil)
	srv := startServer(t, v, false)
	for _, size := range []int{1, 65536, 150001} {
		data := pattern(size)
		for _, alg := range ChecksumAlgorithms {
			name := "size " + itoa(size) + " " + string(alg)
			t.Run(name, func(t *testing.T) {
				req, enc := minioUnsignedTrailer(t, srv.URL, data, trailerFor(alg, data))
				o := send(t, srv, withBody(req, enc))
				o.check(t, name, "", "")
				if !o.sameBody(data) || o.Checksums[string(alg)] != checksumB64(alg, data) || o.AccessKey != testAccessKey {
					t.Fatalf("body %d bytes, checksums %v, key %q", o.BodyLen, o.Checksums, o.AccessKey)
				}
			})
		}
	}
	data := pattern(100000)
	cases := []struct {
		name     string
		alter    func(t testing.TB, e []byte) []byte
		wantRead string
	}{
		{"a data byte", func(_ testing.TB, e []byte) []byte { return flipped(e, 70000) }, "BadDigest"},
		{"the trailer value", func(t testing.TB, e []byte) []byte {
			return replaceAt(t, e, 0, checksumB64(CRC32, data), checksumB64(CRC32, data[2:]))
		}, "BadDigest"},
		{"the trailer value not base64", func(t testing.TB, e []byte) []byte {
			return replaceAt(t, e, 0, checksumB64(CRC32, data), "!!!!!!!!")
		}, "BadDigest"},
		{"the trailer left out", func(_ testing.TB, e []byte) []byte {
			return e[:bytes.Index(e, []byte("x-amz-checksum-crc32:"))]
		}, "IncompleteBody"},
		{"a trailer not announced", func(t testing.TB, e []byte) []byte {
			return replaceAt(t, e, 0, "x-amz-checksum-crc32:", "x-amz-checksum-crc64nvme:")
		}, "IncompleteBody"},
		{"cut in a chunk", func(_ testing.TB, e []byte) []byte { return e[:50000] }, "IncompleteBody"},
		{"a chunk size that is not hex", func(t testing.TB, e []byte) []byte { return replaceAt(t, e, 0, "10000\r\n", "1000g\r\n") }, "InvalidRequest"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, enc := minioUnsignedTrailer(t, srv.URL, data, trailerFor(CRC32, data))
			o := send(t, srv, withBody(req, c.alter(t, enc)))
			o.check(t, c.name, "", c.wantRead)
		})
	}
}

func TestMinioPresignedURL(t *testing.T) {
	v := newTestVerifier(nil)
	srv := startServer(t, v, false)
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/bucket/"+uriEncode("a b/c&d.txt", false), nil)
	signed := signer.PreSignV4(*req, testAccessKey, testSecret, "", testRegion, 3600)
	o := send(t, srv, signed)
	o.check(t, "minio-go presigned GET", "", "")
	if o.AccessKey != testAccessKey || !o.Presigned {
		t.Fatalf("access key %q presigned %v", o.AccessKey, o.Presigned)
	}
	tampered := signed.Clone(signed.Context())
	tampered.URL.RawQuery = strings.Replace(tampered.URL.RawQuery, "X-Amz-Expires=3600", "X-Amz-Expires=7200", 1)
	send(t, srv, tampered).check(t, "tampered expiry", "SignatureDoesNotMatch", "")
}

// TestMinioSignV4 covers minio-go's ordinary (non-streaming) signing, which
// also signs headers such as Content-Encoding.
func TestMinioSignV4(t *testing.T) {
	v := newTestVerifier(nil)
	srv := startServer(t, v, false)
	body := pattern(5000)
	req, _ := http.NewRequest(http.MethodPut, srv.URL+"/bucket/k?uploadId=abc&partNumber=2", bytes.NewReader(body))
	req.Header.Set("X-Amz-Content-Sha256", sha256Hex(body))
	req.Header.Set("Content-Md5", md5B64(body))
	req.Header.Set("Content-Encoding", "gzip")
	signed := signer.SignV4(*req, testAccessKey, testSecret, "", testRegion)
	send(t, srv, signed).check(t, "minio-go SignV4", "", "")
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}
