package sigv4

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/claudefs/cfs-gateway/internal/protocol/s3/s3err"
)

// FuzzChunkedDecoder feeds arbitrary bodies to the aws-chunked decoder in
// each of its modes. It must never panic, never yield more bytes than it
// was given, report failures only as *s3err.Error, and after an error
// return nothing but that error.
func FuzzChunkedDecoder(f *testing.F) {
	seed := testSeed()
	data := pattern(3000)
	f.Add(encodeChunks(data, 1024, nil, [][2]string{{"x-amz-checksum-crc32", checksumB64(CRC32, data)}}), uint8(0), uint16(100))
	f.Add(encodeChunks(data, 1000, seed, [][2]string{{"x-amz-checksum-crc32c", checksumB64(CRC32C, data)}}), uint8(1), uint16(7))
	f.Add(encodeChunks(data, 2048, seed, nil), uint8(2), uint16(4096))
	f.Add([]byte("0\r\n\r\n"), uint8(0), uint16(1))
	f.Add([]byte("3;chunk-signature=zz\r\nabc\r\n0\r\nx:y\n\r\n"), uint8(3), uint16(3))
	f.Add(encodeChunks(pattern(300), 100, seed, [][2]string{{"x-amz-checksum-sha1", checksumB64(SHA1, pattern(300))}}), uint8(4), uint16(65535))
	f.Fuzz(func(t *testing.T, body []byte, mode uint8, readSize uint16) {
		trailer := mode&1 == 0 || mode&4 != 0
		want := int64(-1)
		if mode&8 != 0 {
			want = int64(len(body) / 2)
		}
		cr := newChunkedReader(bytes.NewReader(body), want, trailer)
		if mode&2 != 0 {
			cr.signer = newChunkSigner(seed)
		}
		buf := make([]byte, int(readSize)%8192+1)
		total := 0
		var failed error
		for i := 0; i < len(body)+100; i++ {
			n, err := cr.Read(buf)
			if failed != nil {
				if n != 0 || err == nil || err.Error() != failed.Error() {
					t.Fatalf("after %v: Read returned %d, %v", failed, n, err)
				}
				break
			}
			total += n
			if total > len(body) {
				t.Fatalf("decoded %d bytes from %d", total, len(body))
			}
			if err == io.EOF {
				// a success: the framing must have been at least as long as the data
				if want >= 0 && int64(total) != want {
					t.Fatalf("EOF after %d bytes, decoded length %d", total, want)
				}
				break
			}
			if err != nil {
				var se *s3err.Error
				if !errors.As(err, &se) {
					t.Fatalf("error %v is not an *s3err.Error", err)
				}
				if n != 0 {
					t.Fatalf("bytes returned with error %v", err)
				}
				failed = err
			}
		}
		cr.release()
	})
}

// FuzzAuthorizationHeader parses arbitrary Authorization headers, and runs
// Verify on requests carrying them: errors only, never panics.
func FuzzAuthorizationHeader(f *testing.F) {
	f.Add("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")
	f.Add("AWS4-HMAC-SHA256 Credential=a/b/c/d/e/f,SignedHeaders=host,Signature=")
	f.Add("AWS AKIA:abc=")
	f.Add("AWS4-HMAC-SHA256 ,,,=,Credential=")
	f.Add("AWS4-ECDSA-P256-SHA256 Credential=x")
	f.Add("AWS " + testAccessKey + ":frJIUN8DYpKDtOLCwo//yllqDzg=")
	v := newTestVerifier(fixedNow)
	v.AllowSignatureV2 = true
	f.Fuzz(func(t *testing.T, h string) {
		a, err := parseAuthorization(h)
		if err != nil {
			var se *s3err.Error
			if !errors.As(err, &se) {
				t.Fatalf("error %v is not an *s3err.Error", err)
			}
		} else {
			if a.cred.accessKey == "" || len(a.signedHeaders) == 0 || !isHexSignature(a.signature) {
				t.Fatalf("accepted %q as %+v", h, a)
			}
		}
		if strings.ContainsAny(h, "\r\n\x00") {
			return
		}
		req := rawRequest(t, "GET", "/bucket/key?list-type=2", "gw.test", [][2]string{
			{"X-Amz-Date", signTime.Format(iso8601Basic)},
			{"X-Amz-Content-Sha256", emptySHA256},
		}, nil)
		req.Header.Set("Authorization", h)
		if ver, err := v.Verify(req); err == nil {
			if ver.AccessKey != "" && h != "" {
				t.Fatalf("a fuzzed header authenticated as %q", ver.AccessKey)
			}
		}
	})
}

// FuzzPostPolicy decodes arbitrary policy documents and checks arbitrary
// forms against them.
func FuzzPostPolicy(f *testing.F) {
	f.Add(`{"expiration":"2030-01-01T00:00:00Z","conditions":[{"bucket":"b"},["starts-with","$key","a"],["content-length-range",1,10]]}`, "key", "abc")
	f.Add(`{"expiration":"2030-01-01T00:00:00.000Z","conditions":[["eq","$x-amz-meta-a",""],{"acl":"private","b":1}]}`, "x-amz-meta-a", "")
	f.Add(`{"conditions":[]}`, "", "")
	f.Add(`[1,2,3]`, "a", "b")
	f.Fuzz(func(t *testing.T, doc, field, value string) {
		p, err := ParsePostPolicy(base64.StdEncoding.EncodeToString([]byte(doc)))
		if err != nil {
			var se *s3err.Error
			if !errors.As(err, &se) {
				t.Fatalf("error %v is not an *s3err.Error", err)
			}
			return
		}
		if p.Expiration.IsZero() && !strings.Contains(doc, "expiration") {
			t.Fatalf("a policy without expiration accepted: %q", doc)
		}
		if p.MaxLength >= 0 && (p.MinLength < 0 || p.MinLength > p.MaxLength) {
			t.Fatalf("length range %d..%d accepted", p.MinLength, p.MaxLength)
		}
		_ = p.Check(map[string]string{field: value, "bucket": value})
		_ = p.CheckLength(int64(len(value)))
	})
}
