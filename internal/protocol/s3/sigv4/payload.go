package sigv4

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/claudefs/cfs-gateway/internal/protocol/s3/s3err"
)

// checksumCheck is one x-amz-checksum-* digest to compute over the payload.
type checksumCheck struct {
	alg     ChecksumAlgorithm
	h       hash.Hash
	want    []byte // from the header; nil when it comes in a trailer or is only computed
	trailer bool   // the value arrives as a trailing header
	source  string // where the value came from, for messages
}

// wrapBody checks the digest headers and returns the request's payload
// reader.
func (v *Verifier) wrapBody(r *http.Request, sig *signing, mode payloadMode, wantSHA []byte) (*Verified, error) {
	p := &payloadReader{md5: newMD5Digest(), wantLen: -1, ctx: r.Context()}
	p.closer = r.Body
	var src io.Reader = r.Body
	if r.Body == nil {
		src = http.NoBody
	}
	decoded := r.ContentLength

	var err error
	if p.contentMD5, err = parseContentMD5(r.Header); err != nil {
		return nil, err
	}
	if mode == payloadHex {
		p.sha256 = sha256.New()
		p.wantSHA = wantSHA
	}

	h := r.Header
	if describesObject(r) {
		h = withoutChecksumValues(h)
	}
	if p.checks, err = parseChecksumHeaders(h, mode); err != nil {
		return nil, err
	}

	if mode.streaming() {
		if mode.signedChunks() && (sig == nil || sig.key == nil) {
			return nil, s3err.InvalidRequest.With("%s needs an AWS4-HMAC-SHA256 Authorization header to carry the seed signature.", r.Header.Get("X-Amz-Content-Sha256"))
		}
		decoded = -1
		if vals := r.Header.Values("X-Amz-Decoded-Content-Length"); len(vals) > 0 {
			n, err := strconv.ParseInt(strings.TrimSpace(vals[0]), 10, 64)
			if err != nil || n < 0 {
				return nil, s3err.InvalidArgument.With("x-amz-decoded-content-length %q is not a non-negative integer.", vals[0]).
					WithExtra("ArgumentName", "x-amz-decoded-content-length")
			}
			decoded = n
		}
		cr := newChunkedReader(src, decoded, mode.trailer())
		if mode.signedChunks() {
			cr.signer = newChunkSigner(sig)
		}
		p.chunked = cr
		src = cr
	} else {
		p.wantLen = r.ContentLength
	}
	p.src = src
	p.collectHashes()
	if decoded >= asyncMD5Threshold {
		p.md5.goAsync(p.ctx)
	}

	return &Verified{
		AccessKey:     accessKeyOf(sig),
		Body:          p,
		DecodedLength: decoded,
		Checksums:     p.checksumValues,
		MD5:           p.md5Value,
		MD5Hex:        p.md5Hex,
		Presigned:     sig != nil && sig.presigned,
	}, nil
}

// parseContentMD5 decodes Content-MD5; present but not the base64 of 16
// bytes (empty included) is InvalidDigest.
func parseContentMD5(h http.Header) ([]byte, error) {
	vals, ok := h["Content-Md5"]
	if !ok {
		return nil, nil
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(firstOf(vals)))
	if err != nil || len(raw) != md5.Size {
		return nil, s3err.InvalidDigest.With("The Content-MD5 you specified is not valid: %q is not the base64 form of a 16-byte MD5.", firstOf(vals))
	}
	return raw, nil
}

// WrapPostFile wraps the file of a browser POST upload as Verify wraps a
// request body: its MD5 is always computed, and the form's Content-MD5 and
// x-amz-checksum-* fields (names in any case) are verified as the bytes
// pass, a mismatch reported by Read. ctx is the request's: it ends the
// background hashing of a large file if the request ends first.
func WrapPostFile(ctx context.Context, file io.Reader, form map[string]string) (*Verified, error) {
	h := http.Header{}
	for k, v := range form {
		lk := strings.ToLower(k)
		if lk == "content-md5" || lk == "x-amz-sdk-checksum-algorithm" {
			h.Set(k, v)
		} else if _, ok := checksumFromHeaderName(lk); ok {
			h.Set(k, v)
		}
	}
	p := &payloadReader{md5: newMD5Digest(), wantLen: -1, ctx: ctx, src: file}
	if c, ok := file.(io.Closer); ok {
		p.closer = c
	}
	var err error
	if p.contentMD5, err = parseContentMD5(h); err != nil {
		return nil, err
	}
	if p.checks, err = parseChecksumHeaders(h, payloadUnsigned); err != nil {
		return nil, err
	}
	p.collectHashes()
	return &Verified{Body: p, DecodedLength: -1, Checksums: p.checksumValues, MD5: p.md5Value, MD5Hex: p.md5Hex}, nil
}

func accessKeyOf(s *signing) string {
	if s == nil {
		return ""
	}
	return s.accessKey
}

func firstOf(vals []string) string {
	if len(vals) == 0 {
		return ""
	}
	return vals[0]
}

// describesObject reports whether the x-amz-checksum-* headers of r are the
// checksum of an object rather than of r's body: CompleteMultipartUpload
// (POST with uploadId) sends the assembled object's checksum, often
// composite ("<base64>-<parts>"), with the XML list of parts as the body.
// The handler compares it with the object it assembles.
func describesObject(r *http.Request) bool {
	return r.Method == http.MethodPost && r.URL != nil && r.URL.Query().Has("uploadId")
}

// withoutChecksumValues is h without its x-amz-checksum-<algorithm> fields.
func withoutChecksumValues(h http.Header) http.Header {
	out := make(http.Header, len(h))
	for name, vals := range h {
		if _, ok := checksumFromHeaderName(name); !ok {
			out[name] = vals
		}
	}
	return out
}

// parseChecksumHeaders reads x-amz-checksum-*, x-amz-trailer and
// x-amz-sdk-checksum-algorithm into the digests to compute.
func parseChecksumHeaders(h http.Header, mode payloadMode) ([]*checksumCheck, error) {
	var checks []*checksumCheck
	for name, vals := range h {
		alg, ok := checksumFromHeaderName(name)
		if !ok {
			continue
		}
		want, ok := alg.decode(firstOf(vals))
		if !ok || len(vals) != 1 {
			return nil, s3err.BadDigest.With("Value for %s header is invalid: %q is not the base64 form of a %d-byte %s.",
				alg.HeaderName(), firstOf(vals), alg.Size(), alg)
		}
		checks = append(checks, &checksumCheck{alg: alg, h: alg.New(), want: want, source: alg.HeaderName() + " header"})
	}

	if vals := h.Values("X-Amz-Trailer"); len(vals) > 0 {
		if !mode.trailer() {
			return nil, s3err.InvalidRequest.With("x-amz-trailer is only valid with x-amz-content-sha256 " +
				"STREAMING-UNSIGNED-PAYLOAD-TRAILER or STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER.")
		}
		for _, v := range vals {
			for _, name := range strings.Split(v, ",") {
				name = strings.TrimSpace(name)
				if name == "" {
					continue
				}
				if alg, ok := checksumFromHeaderName(name); ok {
					checks = append(checks, &checksumCheck{alg: alg, h: alg.New(), trailer: true, source: alg.HeaderName() + " trailer"})
				}
			}
		}
	}
	if len(checks) > 1 {
		return nil, s3err.InvalidRequest.With("Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.")
	}

	if v := strings.TrimSpace(h.Get("X-Amz-Sdk-Checksum-Algorithm")); v != "" {
		alg, ok := ParseChecksumAlgorithm(v)
		if !ok {
			return nil, s3err.InvalidRequest.With("Value for x-amz-sdk-checksum-algorithm header is invalid: %q; "+
				"expecting one of CRC32, CRC32C, CRC64NVME, SHA1, SHA256.", v)
		}
		switch {
		case len(checks) == 0:
			checks = append(checks, &checksumCheck{alg: alg, h: alg.New(), source: "computed"})
		case checks[0].alg != alg:
			return nil, s3err.InvalidRequest.With("x-amz-sdk-checksum-algorithm %s does not match the %s.", alg, checks[0].source)
		}
	}
	return checks, nil
}

// payloadReader hashes the payload as it streams and checks every promised
// digest when the source reaches its end.
type payloadReader struct {
	src     io.Reader
	closer  io.Closer
	chunked *chunkedReader

	ctx        context.Context
	md5        *md5Digest
	sha256     hash.Hash
	wantSHA    []byte
	contentMD5 []byte
	checks     []*checksumCheck
	hashes     []hash.Hash // every hash above but MD5, written together

	n       int64
	wantLen int64 // Content-Length of a plain body, else -1
	err     error

	md5Sum    []byte
	checksums map[string]string
}

func (p *payloadReader) collectHashes() {
	if p.sha256 != nil {
		p.hashes = append(p.hashes, p.sha256)
	}
	for _, c := range p.checks {
		p.hashes = append(p.hashes, c.h)
	}
}

func (p *payloadReader) Read(b []byte) (int, error) {
	if p.err != nil {
		return 0, p.err
	}
	n, err := p.src.Read(b)
	if n > 0 {
		for _, h := range p.hashes {
			h.Write(b[:n])
		}
		if p.n < asyncMD5Threshold && p.n+int64(n) >= asyncMD5Threshold {
			p.md5.goAsync(p.ctx)
		}
		p.n += int64(n)
		if !p.md5.Write(b[:n]) {
			return 0, p.fail(s3err.IncompleteBody.With("The request ended before its body was read."))
		}
	}
	switch {
	case err == nil:
		return n, nil
	case err == io.EOF:
		if ferr := p.finish(); ferr != nil {
			return 0, p.fail(ferr)
		}
		p.err = io.EOF
		return n, io.EOF
	default:
		return 0, p.fail(readError(err))
	}
}

func (p *payloadReader) fail(err error) error {
	p.err = err
	p.md5.Abort()
	return err
}

func (p *payloadReader) Close() error {
	if p.err == nil {
		p.err = s3err.IncompleteBody.With("The body was closed before it was read to its end.")
	}
	p.md5.Abort()
	if p.chunked != nil {
		p.chunked.release()
	}
	if p.closer != nil {
		return p.closer.Close()
	}
	return nil
}

// finish checks every digest once the whole payload has passed.
func (p *payloadReader) finish() error {
	if p.wantLen >= 0 && p.n != p.wantLen {
		return s3err.IncompleteBody.With("The body carried %d bytes; Content-Length promised %d.", p.n, p.wantLen)
	}
	if p.sha256 != nil {
		got := p.sha256.Sum(nil)
		if !bytes.Equal(got, p.wantSHA) {
			return s3err.XAmzContentSHA256Mismatch.
				WithExtra("ClientComputedContentSHA256", hex.EncodeToString(p.wantSHA)).
				WithExtra("S3ComputedContentSHA256", hex.EncodeToString(got))
		}
	}
	sum := p.md5.Sum()
	if sum == nil {
		return s3err.IncompleteBody.With("The request ended before its body was read.")
	}
	if p.contentMD5 != nil && !bytes.Equal(sum, p.contentMD5) {
		return s3err.BadDigest.With("The Content-MD5 you specified did not match what we received.").
			WithExtra("ExpectedDigest", base64.StdEncoding.EncodeToString(p.contentMD5)).
			WithExtra("CalculatedDigest", base64.StdEncoding.EncodeToString(sum))
	}
	values := make(map[string]string, len(p.checks))
	for _, c := range p.checks {
		got := c.h.Sum(nil)
		want := c.want
		if c.trailer {
			v, ok := p.chunked.trailer(c.alg.HeaderName())
			if !ok {
				return s3err.IncompleteBody.With("The trailing %s announced by x-amz-trailer was not sent.", c.alg.HeaderName())
			}
			w, ok := c.alg.decode(v)
			if !ok {
				return s3err.BadDigest.With("Value for %s trailing header is invalid: %q is not the base64 form of a %d-byte %s.",
					c.alg.HeaderName(), v, c.alg.Size(), c.alg)
			}
			want = w
		}
		if want != nil && !bytes.Equal(got, want) {
			return s3err.BadDigest.With("The %s you specified did not match the calculated checksum.", c.source).
				WithExtra("ExpectedChecksum", base64.StdEncoding.EncodeToString(want)).
				WithExtra("CalculatedChecksum", base64.StdEncoding.EncodeToString(got))
		}
		values[string(c.alg)] = base64.StdEncoding.EncodeToString(got)
	}
	if p.chunked != nil {
		if err := p.chunked.undeclaredChecksum(p.checks); err != nil {
			return err
		}
	}
	p.md5Sum = sum
	p.checksums = values
	return nil
}

func (p *payloadReader) checksumValues() map[string]string { return p.checksums }
func (p *payloadReader) md5Value() []byte                  { return p.md5Sum }
func (p *payloadReader) md5Hex() string {
	if p.md5Sum == nil {
		return ""
	}
	return hex.EncodeToString(p.md5Sum)
}

// readError turns a failure to read the request body into an S3 error.
func readError(err error) error {
	var se *s3err.Error
	if errors.As(err, &se) {
		return se
	}
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return s3err.EntityTooLarge.WithExtra("MaxSizeAllowed", strconv.FormatInt(tooBig.Limit, 10))
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return s3err.IncompleteBody.With("The connection closed before the whole body arrived.")
	}
	var ne net.Error
	if errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return s3err.RequestTimeout
	}
	return s3err.IncompleteBody.With("Reading the request body failed: %v.", err)
}

// ContentEncoding returns the Content-Encoding to store for an object:
// the request's, without the aws-chunked coding, which describes only how
// the upload was framed. "" when nothing else remains.
func ContentEncoding(h http.Header) string {
	vals := h.Values("Content-Encoding")
	if len(vals) == 0 {
		return ""
	}
	joined := strings.Join(vals, ",")
	var kept []string
	found := false
	for _, tok := range strings.Split(joined, ",") {
		t := strings.TrimSpace(tok)
		if strings.EqualFold(t, "aws-chunked") {
			found = true
			continue
		}
		if t != "" {
			kept = append(kept, t)
		}
	}
	if !found {
		return strings.Join(vals, ", ")
	}
	return strings.Join(kept, ", ")
}
