package sigv4

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
)

// encodeChunks frames data as aws-chunked the way the AWS SDKs do, with
// chunks of the given size. With seed set, every chunk (and the trailers)
// is signed, continuing from seed.signature; this is written here from the
// specification, apart from the decoder's own signer.
func encodeChunks(data []byte, chunk int, seed *signing, trailers [][2]string) []byte {
	var b bytes.Buffer
	prev := ""
	if seed != nil {
		prev = seed.signature
	}
	sign := func(kind, hashes string) string {
		sts := kind + "\n" + seed.amzDate + "\n" + seed.scope + "\n" + prev + "\n" + hashes
		prev = hex.EncodeToString(hmacSHA256(seed.key, sts))
		return prev
	}
	header := func(p []byte) {
		b.WriteString(strconv.FormatInt(int64(len(p)), 16))
		if seed != nil {
			sum := sha256.Sum256(p)
			b.WriteString(";chunk-signature=" + sign("AWS4-HMAC-SHA256-PAYLOAD", emptySHA256+"\n"+hex.EncodeToString(sum[:])))
		}
		b.WriteString("\r\n")
	}
	for off := 0; off < len(data); off += chunk {
		end := min(off+chunk, len(data))
		header(data[off:end])
		b.Write(data[off:end])
		b.WriteString("\r\n")
	}
	header(nil)
	var canon strings.Builder
	for _, t := range trailers {
		b.WriteString(t[0] + ":" + t[1] + "\r\n")
		canon.WriteString(t[0] + ":" + t[1] + "\n")
	}
	if seed != nil && trailers != nil {
		sum := sha256.Sum256([]byte(canon.String()))
		b.WriteString("x-amz-trailer-signature:" + sign("AWS4-HMAC-SHA256-TRAILER", hex.EncodeToString(sum[:])) + "\r\n")
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

func testSeed() *signing {
	return &signing{
		key:       deriveSigningKey(testSecret, "20260314", testRegion, "s3"),
		amzDate:   "20260314T150926Z",
		scope:     "20260314/" + testRegion + "/s3/aws4_request",
		signature: strings.Repeat("ab", 32),
	}
}

// readAllChecked reads r to the end and checks the decoder's promises:
// never more bytes than the input, and after an error only that error.
func readAllChecked(t testing.TB, r io.Reader, limit int) ([]byte, error) {
	var out []byte
	buf := make([]byte, 777)
	for {
		n, err := r.Read(buf)
		out = append(out, buf[:n]...)
		if len(out) > limit {
			t.Fatalf("decoded %d bytes from %d bytes of input", len(out), limit)
		}
		if err != nil {
			if err != io.EOF {
				for i := 0; i < 3; i++ {
					n2, err2 := r.Read(buf)
					if n2 != 0 || err2 == nil || err2.Error() != err.Error() {
						t.Fatalf("after error %v: Read returned %d, %v", err, n2, err2)
					}
				}
			}
			return out, err
		}
	}
}

func TestChunkedDecoderUnsigned(t *testing.T) {
	data := pattern(100000)
	crc := [][2]string{{"x-amz-checksum-crc32", checksumB64(CRC32, data)}}
	good := encodeChunks(data, 65536, nil, crc)
	cases := []struct {
		name    string
		body    []byte
		want    int64 // x-amz-decoded-content-length, -1 unknown
		trailer bool
		wrap    func(io.Reader) io.Reader
		wantErr string
		wantOut []byte
	}{
		{name: "aws-sdk framing with a trailer", body: good, want: 100000, trailer: true, wantOut: data},
		{name: "length unknown", body: good, want: -1, trailer: true, wantOut: data},
		{name: "one byte at a time", body: good, want: 100000, trailer: true, wrap: iotest.OneByteReader, wantOut: data},
		{name: "half reads", body: good, want: 100000, trailer: true, wrap: iotest.HalfReader, wantOut: data},
		{name: "data and EOF together", body: good, want: 100000, trailer: true, wrap: iotest.DataErrReader, wantOut: data},
		{name: "small chunks", body: encodeChunks(data, 1000, nil, crc), want: 100000, trailer: true, wantOut: data},
		{name: "empty payload", body: []byte("0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n"), want: 0, trailer: true, wantOut: nil},
		{name: "empty payload without trailer", body: []byte("0\r\n\r\n"), want: 0, wantOut: nil},
		{name: "upper-case hex and extensions", body: []byte("A;ext=1\r\n0123456789\r\n0;x=y\r\n\r\n"), want: 10, wantOut: []byte("0123456789")},
		{name: "final line without CRLF", body: []byte("3\r\nabc\r\n0"), want: 3, wantOut: []byte("abc")},
		{name: "bare LF line ends", body: []byte("3\nabc\n0\nx-amz-checksum-crc32:" + checksumB64(CRC32, []byte("abc")) + "\n\n"), want: 3, trailer: true, wantOut: []byte("abc")},

		{name: "empty body", body: nil, want: -1, wantErr: "IncompleteBody"},
		{name: "size not hex", body: []byte("zz\r\n"), want: -1, wantErr: "InvalidRequest"},
		{name: "size with 17 digits", body: []byte("10000000000000000\r\n"), want: -1, wantErr: "InvalidRequest"},
		{name: "size over the limit", body: []byte("140000001\r\n"), want: -1, wantErr: "InvalidRequest"},
		{name: "endless header line", body: bytes.Repeat([]byte{'1'}, 10000), want: -1, wantErr: "InvalidRequest"},
		{name: "endless trailer line", body: append([]byte("0\r\n"), bytes.Repeat([]byte{'x'}, 10000)...), want: -1, trailer: true, wantErr: "InvalidRequest"},
		{name: "body ends inside a chunk", body: []byte("10\r\nabc"), want: -1, wantErr: "IncompleteBody"},
		{name: "body ends after a chunk", body: []byte("3\r\nabc\r\n"), want: -1, wantErr: "IncompleteBody"},
		{name: "data longer than the size", body: []byte("3\r\nabcd\r\n0\r\n\r\n"), want: -1, wantErr: "InvalidRequest"},
		{name: "trailer without colon", body: []byte("0\r\nnocolon\r\n\r\n"), want: -1, trailer: true, wantErr: "InvalidRequest"},
		{name: "trailer without name", body: []byte("0\r\n:value\r\n\r\n"), want: -1, trailer: true, wantErr: "InvalidRequest"},
		{name: "too many trailers", body: []byte("0\r\n" + strings.Repeat("x-a:b\r\n", 40) + "\r\n"), want: -1, trailer: true, wantErr: "InvalidRequest"},
		{name: "too many trailer bytes", body: []byte("0\r\n" + strings.Repeat("\r\n", 9000)), want: -1, trailer: true, wantErr: "InvalidRequest"},
		{name: "trailers where none are announced", body: []byte("0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n"), want: -1, wantErr: "InvalidRequest"},
		{name: "more than the decoded length", body: []byte("3\r\nabc\r\n0\r\n\r\n"), want: 2, wantErr: "InvalidRequest"},
		{name: "less than the decoded length", body: []byte("3\r\nabc\r\n0\r\n\r\n"), want: 5, wantErr: "IncompleteBody"},
		{name: "source fails", body: good[:30000], want: -1, trailer: true,
			wrap: func(r io.Reader) io.Reader { return io.MultiReader(r, errReader{errors.New("connection reset")}) }, wantErr: "IncompleteBody"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var src io.Reader = bytes.NewReader(c.body)
			if c.wrap != nil {
				src = c.wrap(src)
			}
			cr := newChunkedReader(src, c.want, c.trailer)
			out, err := readAllChecked(t, cr, len(c.body))
			if c.wantErr == "" {
				if err != io.EOF {
					t.Fatalf("error %v", err)
				}
				if !bytes.Equal(out, c.wantOut) {
					t.Fatalf("decoded %d bytes, want %d", len(out), len(c.wantOut))
				}
				return
			}
			if errCode(err) != c.wantErr {
				t.Fatalf("error %v, want %s", err, c.wantErr)
			}
		})
	}
}

func TestChunkedDecoderSigned(t *testing.T) {
	seed := testSeed()
	data := pattern(150000)
	trailers := [][2]string{{"x-amz-checksum-sha256", checksumB64(SHA256, data)}}
	good := encodeChunks(data, 65536, seed, trailers)
	cases := []struct {
		name    string
		body    []byte
		trailer bool
		wantErr string
	}{
		{"signed chunks and trailer", good, true, ""},
		{"signed chunks without trailer", encodeChunks(data, 8192, seed, nil), false, ""},
		{"empty payload", encodeChunks(nil, 8192, seed, nil), false, ""},
		{"chunks reordered", swapChunks(t, encodeChunks(data, 50000, seed, nil)), false, "SignatureDoesNotMatch"},
		{"signature of another seed", encodeChunks(data, 65536, &signing{key: seed.key, amzDate: seed.amzDate, scope: seed.scope, signature: strings.Repeat("cd", 32)}, trailers), true, "SignatureDoesNotMatch"},
		{"signature not hex", bytes.Replace(good, []byte("chunk-signature="), []byte("chunk-signature=zz"), 1), true, "SignatureDoesNotMatch"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cr := newChunkedReader(bytes.NewReader(c.body), -1, c.trailer)
			cr.signer = newChunkSigner(seed)
			out, err := readAllChecked(t, cr, len(c.body))
			if c.wantErr == "" {
				if err != io.EOF || (len(out) != 0 && !bytes.Equal(out, data)) {
					t.Fatalf("error %v, %d bytes", err, len(out))
				}
				return
			}
			if errCode(err) != c.wantErr {
				t.Fatalf("error %v, want %s", err, c.wantErr)
			}
		})
	}
	// No byte of a chunk whose signature fails is returned in the Read
	// that detects it, and nothing at all after: with the chunk as the
	// only one, the reader hands back its bytes only if they verify.
	one := encodeChunks(pattern(1000), 1000, seed, nil)
	bad := flipped(one, 100)
	cr := newChunkedReader(bytes.NewReader(bad), -1, false)
	cr.signer = newChunkSigner(seed)
	n, err := cr.Read(make([]byte, 4096))
	if n != 0 || errCode(err) != "SignatureDoesNotMatch" {
		t.Fatalf("a single bad chunk: %d bytes, %v", n, err)
	}
}

// swapChunks exchanges the first two data chunks of a signed stream.
func swapChunks(t testing.TB, b []byte) []byte {
	parts := bytes.SplitAfterN(b, []byte("\r\n"), 5) // hdr1 data1 hdr2 data2 rest
	if len(parts) < 5 {
		t.Fatal("stream too short")
	}
	return bytes.Join([][]byte{parts[2], parts[3], parts[0], parts[1], parts[4]}, nil)
}

// TestStreamingThroughVerify checks the checksum handling of the streaming
// forms end to end, anonymous and unsigned.
func TestStreamingThroughVerify(t *testing.T) {
	v := newTestVerifier(fixedNow)
	data := pattern(70000)
	body := func(trailers [][2]string) []byte { return encodeChunks(data, 65536, nil, trailers) }
	cases := []struct {
		name       string
		headers    [][2]string
		body       []byte
		wantVerify string
		wantRead   string
		wantSums   map[string]string
	}{
		{name: "unsigned trailer CRC64NVME", headers: [][2]string{{"X-Amz-Trailer", "x-amz-checksum-crc64nvme"}, {"X-Amz-Sdk-Checksum-Algorithm", "CRC64NVME"}},
			body: body([][2]string{{"x-amz-checksum-crc64nvme", checksumB64(CRC64NVME, data)}}), wantSums: map[string]string{"CRC64NVME": checksumB64(CRC64NVME, data)}},
		{name: "unsigned trailer and Content-MD5", headers: [][2]string{{"X-Amz-Trailer", "x-amz-checksum-crc32"}, {"Content-Md5", md5B64(data)}},
			body: body([][2]string{{"x-amz-checksum-crc32", checksumB64(CRC32, data)}}), wantSums: map[string]string{"CRC32": checksumB64(CRC32, data)}},
		{name: "Content-MD5 mismatch", headers: [][2]string{{"X-Amz-Trailer", "x-amz-checksum-crc32"}, {"Content-Md5", md5B64(data[1:])}},
			body: body([][2]string{{"x-amz-checksum-crc32", checksumB64(CRC32, data)}}), wantRead: "BadDigest"},
		{name: "checksum header instead of trailer", headers: [][2]string{{"X-Amz-Checksum-Sha1", checksumB64(SHA1, data)}},
			body: body(nil), wantSums: map[string]string{"SHA1": checksumB64(SHA1, data)}},
		{name: "trailer not announced", headers: nil,
			body: body([][2]string{{"x-amz-checksum-crc32", checksumB64(CRC32, data)}}), wantRead: "InvalidRequest"},
		{name: "other trailers are passed over", headers: [][2]string{{"X-Amz-Trailer", "x-amz-checksum-crc32c,x-custom"}},
			body: body([][2]string{{"x-custom", "1"}, {"x-amz-checksum-crc32c", checksumB64(CRC32C, data)}}), wantSums: map[string]string{"CRC32C": checksumB64(CRC32C, data)}},
		{name: "two checksum trailers announced", headers: [][2]string{{"X-Amz-Trailer", "x-amz-checksum-crc32, x-amz-checksum-sha1"}},
			body: body(nil), wantVerify: "InvalidRequest"},
		{name: "bad decoded length", headers: [][2]string{{"X-Amz-Decoded-Content-Length", "-3"}}, body: body(nil), wantVerify: "InvalidArgument"},
		{name: "SigV4A streaming", headers: [][2]string{{"X-Amz-Content-Sha256", "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD"}}, body: body(nil), wantVerify: "NotImplemented"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			headers := [][2]string{{"X-Amz-Content-Sha256", streamingUnsignedTrailr}, {"Content-Encoding", "aws-chunked"}, {"X-Amz-Decoded-Content-Length", "70000"}}
			for _, h := range c.headers {
				replaced := false
				for i := range headers {
					if strings.EqualFold(headers[i][0], h[0]) {
						headers[i], replaced = h, true
					}
				}
				if !replaced {
					headers = append(headers, h)
				}
			}
			ver, err := v.Verify(rawRequest(t, "PUT", "/bucket/key", "gw.test", headers, c.body))
			if errCode(err) != c.wantVerify {
				t.Fatalf("Verify: %v, want %q", err, c.wantVerify)
			}
			if err != nil {
				return
			}
			got, err := io.ReadAll(ver.Body)
			if errCode(err) != c.wantRead {
				t.Fatalf("read: %v, want %q", err, c.wantRead)
			}
			if err != nil {
				return
			}
			if !bytes.Equal(got, data) || ver.DecodedLength != 70000 {
				t.Fatalf("%d bytes, decoded length %d", len(got), ver.DecodedLength)
			}
			if len(ver.Checksums()) != len(c.wantSums) {
				t.Fatalf("checksums %v, want %v", ver.Checksums(), c.wantSums)
			}
			for k, want := range c.wantSums {
				if ver.Checksums()[k] != want {
					t.Fatalf("checksums %v, want %v", ver.Checksums(), c.wantSums)
				}
			}
		})
	}
}
