// Package sigv4 authenticates S3 requests and decodes their payloads: AWS
// Signature Version 4 in the Authorization header and in presigned URLs,
// browser POST policies, and every payload form current clients send
// (plain bodies with a SHA-256, UNSIGNED-PAYLOAD, and the aws-chunked
// streaming forms with chunk signatures and trailing checksums). It verifies
// Content-MD5 and x-amz-checksum-* digests as the bytes stream past and
// always computes the MD5 used for ETags.
//
// It answers only "who sent this, and are these the bytes they sent": it
// never decides what a user may do (bucket policies, ACLs and permissions
// belong to the server and the core), never touches the filesystem, and
// never buffers a whole body. Every error it returns is an *s3err.Error.
package sigv4

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/claudefs/cfs-gateway/internal/protocol/s3/s3err"
)

// SecretStore finds the secret of an access key; an unknown key is
// s3err.InvalidAccessKeyID.
type SecretStore interface {
	Secret(ctx context.Context, accessKey string) (secret string, err error)
}

// Verifier authenticates requests for one gateway. Its zero value, with
// Secrets set, is ready; it is safe for concurrent use.
type Verifier struct {
	Secrets SecretStore
	// Region is the gateway's region (config s3.region). Requests signed
	// for another region are AuthorizationHeaderMalformed (or
	// AuthorizationQueryParametersError for presigned URLs). An empty
	// Region accepts whatever region the client signed for.
	Region  string
	Now     func() time.Time // nil = time.Now
	MaxSkew time.Duration    // 0 = 15 minutes
	// AllowSignatureV2 accepts the deprecated "AWS AccessKeyId:Signature"
	// Authorization header (path-style requests only). When false such a
	// header is InvalidRequest, asking for AWS4-HMAC-SHA256.
	AllowSignatureV2 bool

	// service is the credential scope's service; "" means "s3". Only the
	// generic AWS test suite signs for another service.
	service string
	keys    keyCache
}

// Verified is an authenticated request.
type Verified struct {
	AccessKey string // "" for an anonymous (unsigned) request
	// Body yields the object bytes: aws-chunked bodies decoded, and every
	// promised digest checked as the bytes stream (x-amz-content-sha256 of a
	// signed payload, each chunk signature, trailing checksums, Content-MD5,
	// x-amz-checksum-* headers). A mismatch is reported by Read as a
	// *s3err.Error (BadDigest, XAmzContentSHA256Mismatch,
	// SignatureDoesNotMatch, IncompleteBody) instead of io.EOF, so a handler
	// that reads to io.EOF before making anything visible never stores bad
	// bytes. Failures of the connection itself are reported as
	// *s3err.Error too (IncompleteBody, RequestTimeout, EntityTooLarge for
	// an http.MaxBytesReader limit). Once Read has returned an error it
	// returns that error again and never more bytes.
	Body io.ReadCloser
	// DecodedLength is the payload length when known
	// (x-amz-decoded-content-length or Content-Length), else -1.
	DecodedLength int64
	// Checksums are the digests the client declared (header or trailer)
	// that were verified once Body reached EOF: "CRC32", "CRC32C",
	// "CRC64NVME", "SHA1", "SHA256" -> base64 value. An algorithm named by
	// x-amz-sdk-checksum-algorithm without a value is computed and
	// reported too. Nil until Body has returned io.EOF.
	Checksums func() map[string]string
	// MD5 is the raw 16-byte MD5 of the payload (hex-encode it for an
	// ETag), computed from the bytes whatever the client declared. Nil
	// until Body has returned io.EOF.
	MD5 func() []byte
	// MD5Hex is MD5 as 32 lowercase hex digits, "" until Body has
	// returned io.EOF.
	MD5Hex func() string
	// Presigned tells that the request was authenticated by presigned
	// query parameters rather than an Authorization header.
	Presigned bool
}

const (
	algorithmHMAC = "AWS4-HMAC-SHA256"
	scopeTerminal = "aws4_request"
	iso8601Basic  = "20060102T150405Z"
	dateStamp     = "20060102"
	emptySHA256   = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

	unsignedPayload         = "UNSIGNED-PAYLOAD"
	streamingSigned         = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
	streamingSignedTrailer  = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
	streamingUnsignedTrailr = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
	streamingECDSAPrefix    = "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD"

	// MaxPresignExpiry is the longest a presigned URL may live (7 days).
	MaxPresignExpiry = 7 * 24 * time.Hour
	defaultMaxSkew   = 15 * time.Minute
)

func (v *Verifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

func (v *Verifier) maxSkew() time.Duration {
	if v.MaxSkew > 0 {
		return v.MaxSkew
	}
	return defaultMaxSkew
}

func (v *Verifier) serviceName() string {
	if v.service != "" {
		return v.service
	}
	return "s3"
}

// payloadMode is what x-amz-content-sha256 promises about the body.
type payloadMode int

const (
	payloadAbsent payloadMode = iota // no x-amz-content-sha256
	payloadHex                       // a hex SHA-256 of the body
	payloadUnsigned
	payloadStreamSigned
	payloadStreamSignedTrailer
	payloadStreamUnsignedTrailer
)

func (m payloadMode) streaming() bool { return m >= payloadStreamSigned }
func (m payloadMode) signedChunks() bool {
	return m == payloadStreamSigned || m == payloadStreamSignedTrailer
}
func (m payloadMode) trailer() bool {
	return m == payloadStreamSignedTrailer || m == payloadStreamUnsignedTrailer
}

func parsePayloadMode(h http.Header) (payloadMode, string, []byte, error) {
	vals := h.Values("X-Amz-Content-Sha256")
	if len(vals) == 0 {
		return payloadAbsent, "", nil, nil
	}
	v := strings.TrimSpace(vals[0])
	switch {
	case v == unsignedPayload:
		return payloadUnsigned, v, nil, nil
	case v == streamingSigned:
		return payloadStreamSigned, v, nil, nil
	case v == streamingSignedTrailer:
		return payloadStreamSignedTrailer, v, nil, nil
	case v == streamingUnsignedTrailr:
		return payloadStreamUnsignedTrailer, v, nil, nil
	case strings.HasPrefix(v, streamingECDSAPrefix):
		return 0, v, nil, s3err.NotImplemented.With("Signature Version 4A (%s) is not supported; sign with AWS4-HMAC-SHA256.", v)
	}
	if len(v) == 64 {
		if sum, err := hex.DecodeString(v); err == nil {
			return payloadHex, v, sum, nil
		}
	}
	return 0, v, nil, s3err.InvalidArgument.With("x-amz-content-sha256 must be UNSIGNED-PAYLOAD, "+
		"STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER], STREAMING-UNSIGNED-PAYLOAD-TRAILER or a SHA-256 hex digest; got %q.", v).
		WithExtra("ArgumentName", "x-amz-content-sha256")
}

// signing is what an authenticated request's signature was made with; the
// chunk decoder continues the signature chain from it.
type signing struct {
	accessKey string
	key       []byte // the derived signing key
	amzDate   string // the request time, ISO 8601 basic
	scope     string // date/region/service/aws4_request
	signature string // the request's (seed) signature, hex
	presigned bool
}

// Verify authenticates r (Authorization header, or presigned query
// parameters, or none = anonymous) and wraps its body. Errors are
// *s3err.Error.
func (v *Verifier) Verify(r *http.Request) (*Verified, error) {
	mode, modeValue, wantSHA, err := parsePayloadMode(r.Header)
	if err != nil {
		return nil, err
	}
	// An empty Authorization header counts as none: the server then
	// answers as for any anonymous request.
	auth, _ := firstHeader(r.Header, "Authorization")
	auth = strings.TrimSpace(auth)
	presigned := hasPresignParams(r.URL.RawQuery)
	if presigned && mode == payloadAbsent {
		// A presigned URL may name the payload hash itself.
		if qv := r.URL.Query().Get("X-Amz-Content-Sha256"); qv != "" {
			mode, modeValue, wantSHA, err = parsePayloadMode(http.Header{"X-Amz-Content-Sha256": {qv}})
			if err != nil {
				return nil, err
			}
		}
	}

	var sig *signing
	switch {
	case auth != "" && presigned:
		return nil, s3err.InvalidArgument.With("Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, "+
			"Signature query string parameter or the Authorization header should be specified.").
			WithExtra("ArgumentName", "Authorization")
	case strings.HasPrefix(auth, "AWS "):
		k, signature, ok := strings.Cut(strings.TrimSpace(auth[4:]), ":")
		switch {
		case !ok || k == "" || signature == "":
			err = s3err.InvalidArgument.With("AWS authorization header is invalid. Expected AwsAccessKeyId:signature").
				WithExtra("ArgumentName", "Authorization").WithExtra("ArgumentValue", auth)
		case !v.AllowSignatureV2:
			err = errV4Required
		default:
			sig, err = v.verifyV2(r, k, signature)
		}
	case auth != "":
		sig, err = v.verifyHeader(r, auth, mode, modeValue)
	case presigned:
		sig, err = v.verifyPresigned(r, mode, modeValue)
	case hasV2QueryParams(r.URL.RawQuery):
		err = errV4Required
	}
	if err != nil {
		return nil, err
	}
	return v.wrapBody(r, sig, mode, wantSHA)
}

var errV4Required = s3err.InvalidRequest.With("The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.")

func firstHeader(h http.Header, name string) (string, bool) {
	vals := h.Values(name)
	if len(vals) == 0 {
		return "", false
	}
	return vals[0], true
}

// hasPresignParams reports whether the query carries SigV4 query
// authentication. The parameter names are case-sensitive in S3.
func hasPresignParams(rawQuery string) bool {
	if rawQuery == "" || !strings.Contains(rawQuery, "X-Amz-") {
		return false
	}
	for _, p := range []string{"X-Amz-Algorithm=", "X-Amz-Credential=", "X-Amz-Signature="} {
		if hasParam(rawQuery, p) {
			return true
		}
	}
	return false
}

func hasV2QueryParams(rawQuery string) bool {
	return hasParam(rawQuery, "AWSAccessKeyId=") && hasParam(rawQuery, "Signature=")
}

// hasParam reports whether rawQuery has a parameter starting with
// nameEq ("Name="), as a whole parameter name.
func hasParam(rawQuery, nameEq string) bool {
	for rawQuery != "" {
		var p string
		p, rawQuery, _ = strings.Cut(rawQuery, "&")
		if strings.HasPrefix(p, nameEq) {
			return true
		}
	}
	return false
}

// lookupSecret asks the store, turning its failures into S3 errors.
func (v *Verifier) lookupSecret(ctx context.Context, accessKey string) (string, error) {
	if v.Secrets == nil {
		return "", s3err.InvalidAccessKeyID.WithExtra("AWSAccessKeyId", accessKey)
	}
	secret, err := v.Secrets.Secret(ctx, accessKey)
	if err == nil {
		return secret, nil
	}
	var se *s3err.Error
	if errors.As(err, &se) {
		if se.Code == s3err.InvalidAccessKeyID.Code {
			return "", se.WithExtra("AWSAccessKeyId", accessKey)
		}
		return "", se
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return "", s3err.RequestTimeout.With("looking up access key %q was interrupted: %v", accessKey, err)
	}
	return "", s3err.SlowDown.With("looking up access key %q failed: %v; retry later", accessKey, err)
}

// checkSkew reports RequestTimeTooSkewed when t is too far from now.
func (v *Verifier) checkSkew(t time.Time, raw string) error {
	now := v.now()
	// Compare times rather than subtract them: a distant date would
	// saturate the difference.
	if t.Before(now.Add(-v.maxSkew())) || t.After(now.Add(v.maxSkew())) {
		return s3err.RequestTimeTooSkewed.
			WithExtra("RequestTime", raw).
			WithExtra("ServerTime", now.UTC().Format(time.RFC3339)).
			WithExtra("MaxAllowedSkewMilliseconds", strconv.FormatInt(v.maxSkew().Milliseconds(), 10))
	}
	return nil
}

// keyCache remembers derived signing keys: deriving one costs four HMACs
// per request, and a client signs every request of a day with the same.
type keyCache struct {
	mu sync.Mutex
	m  map[string][]byte
}

const keyCacheMax = 4096

func (v *Verifier) signingKey(secret, date, region, service string) []byte {
	id := secret + "\x00" + date + "\x00" + region + "\x00" + service
	c := &v.keys
	c.mu.Lock()
	k, ok := c.m[id]
	c.mu.Unlock()
	if ok {
		return k
	}
	k = deriveSigningKey(secret, date, region, service)
	c.mu.Lock()
	if c.m == nil || len(c.m) >= keyCacheMax {
		c.m = make(map[string][]byte)
	}
	c.m[id] = k
	c.mu.Unlock()
	return k
}

func deriveSigningKey(secret, date, region, service string) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), date)
	k = hmacSHA256(k, region)
	k = hmacSHA256(k, service)
	return hmacSHA256(k, scopeTerminal)
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// signatureMatches compares a computed signature with the hex one given,
// in constant time.
func signatureMatches(computed []byte, givenHex string) bool {
	if len(givenHex) != 2*len(computed) {
		return false
	}
	var want [64]byte
	hex.Encode(want[:], computed)
	return hmac.Equal(want[:len(givenHex)], []byte(strings.ToLower(givenHex)))
}

func isHexSignature(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}
