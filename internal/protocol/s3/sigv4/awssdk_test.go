package sigv4

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

var signTime = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

func fixedNow() time.Time { return signTime.Add(3 * time.Second) }

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func md5B64(b []byte) string {
	s := md5.Sum(b)
	return base64.StdEncoding.EncodeToString(s[:])
}

func checksumB64(alg ChecksumAlgorithm, b []byte) string {
	h := alg.New()
	h.Write(b)
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}

// sdkCase is one request signed with the aws-sdk-go-v2 SigV4 signer.
type sdkCase struct {
	name     string
	method   string
	rawPath  string // percent-encoded as sent
	rawQuery string
	host     string // Host header, "" = the server's address
	body     []byte
	payload  string // "hex" = SHA-256 of body, "" = no x-amz-content-sha256, else the literal value
	signHash string // the payload hash given to the signer when payload is ""
	headers  map[string]string
	escape   bool          // sign like a generic (non-S3) SigV4 client: escape the path again
	access   string        // access key, "" = testAccessKey
	region   string        // "" = testRegion
	service  string        // "" = "s3"
	at       time.Duration // signing time offset from signTime
	mutate   func(r *http.Request)

	wantVerify, wantRead string
	wantChecksum         map[string]string
}

func (c sdkCase) request(t *testing.T, base string) *http.Request {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := url.PathUnescape(c.rawPath)
	if err != nil {
		t.Fatal(err)
	}
	u.Path, u.RawPath = dec, c.rawPath
	u.RawQuery = c.rawQuery
	var body io.Reader
	if c.body != nil {
		body = bytes.NewReader(c.body)
	}
	method := c.method
	if method == "" {
		method = http.MethodPut
	}
	req, err := http.NewRequest(method, u.String(), body)
	if err != nil {
		t.Fatal(err)
	}
	req.URL = u
	if c.host != "" {
		req.Host = c.host
	}
	for k, v := range c.headers {
		req.Header.Set(k, v)
	}
	payloadHash := c.signHash
	switch c.payload {
	case "hex":
		payloadHash = sha256Hex(c.body)
		req.Header.Set("X-Amz-Content-Sha256", payloadHash)
	case "":
		if payloadHash == "" {
			payloadHash = sha256Hex(c.body)
		}
	default:
		payloadHash = c.payload
		req.Header.Set("X-Amz-Content-Sha256", c.payload)
	}
	access, region, service := c.access, c.region, c.service
	if access == "" {
		access = testAccessKey
	}
	if region == "" {
		region = testRegion
	}
	if service == "" {
		service = "s3"
	}
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = !c.escape })
	creds := aws.Credentials{AccessKeyID: access, SecretAccessKey: testSecret}
	if err := signer.SignHTTP(context.Background(), creds, req, payloadHash, service, region, signTime.Add(c.at)); err != nil {
		t.Fatal(err)
	}
	if c.mutate != nil {
		c.mutate(req)
	}
	return req
}

func setBody(r *http.Request, b []byte) {
	r.Body = io.NopCloser(bytes.NewReader(b))
	r.ContentLength = int64(len(b))
}

func flipped(b []byte, i int) []byte {
	c := append([]byte(nil), b...)
	c[i] ^= 0x20
	return c
}

func TestVerifyAWSSDKSignedRequests(t *testing.T) {
	v := newTestVerifier(fixedNow)
	srv := startServer(t, v, false)
	body := pattern(4096)
	key := "dir/a b+c!$'()*~é,;=@&.txt"

	cases := []sdkCase{
		{name: "GET with the empty payload hash", method: "GET", rawPath: "/bucket/key", payload: "hex"},
		{name: "PUT with a signed payload", rawPath: "/bucket/key", body: body, payload: "hex"},
		{name: "PUT with UNSIGNED-PAYLOAD", rawPath: "/bucket/key", body: body, payload: unsignedPayload},
		{name: "PUT as aws-sdk-go-v2 sends it over HTTP: CRC32 header", rawPath: "/bucket/key", body: body, payload: "hex",
			headers:      map[string]string{"X-Amz-Sdk-Checksum-Algorithm": "CRC32", "X-Amz-Checksum-Crc32": checksumB64(CRC32, body)},
			wantChecksum: map[string]string{"CRC32": checksumB64(CRC32, body)}},
		{name: "PUT with Content-MD5", rawPath: "/bucket/key", body: body, payload: unsignedPayload,
			headers: map[string]string{"Content-Md5": md5B64(body)}},
		{name: "CRC32C header", rawPath: "/bucket/key", body: body, payload: "hex",
			headers:      map[string]string{"X-Amz-Checksum-Crc32c": checksumB64(CRC32C, body)},
			wantChecksum: map[string]string{"CRC32C": checksumB64(CRC32C, body)}},
		{name: "CRC64NVME header", rawPath: "/bucket/key", body: body, payload: "hex",
			headers:      map[string]string{"X-Amz-Checksum-Crc64nvme": checksumB64(CRC64NVME, body)},
			wantChecksum: map[string]string{"CRC64NVME": checksumB64(CRC64NVME, body)}},
		{name: "SHA1 header", rawPath: "/bucket/key", body: body, payload: unsignedPayload,
			headers:      map[string]string{"X-Amz-Checksum-Sha1": checksumB64(SHA1, body)},
			wantChecksum: map[string]string{"SHA1": checksumB64(SHA1, body)}},
		{name: "SHA256 header", rawPath: "/bucket/key", body: body, payload: unsignedPayload,
			headers:      map[string]string{"X-Amz-Checksum-Sha256": checksumB64(SHA256, body)},
			wantChecksum: map[string]string{"SHA256": checksumB64(SHA256, body)}},
		{name: "algorithm named without a value is computed", rawPath: "/bucket/key", body: body, payload: "hex",
			headers:      map[string]string{"X-Amz-Sdk-Checksum-Algorithm": "crc32c"},
			wantChecksum: map[string]string{"CRC32C": checksumB64(CRC32C, body)}},
		{name: "key that needs escaping", rawPath: "/bucket/" + uriEncode(key, false), body: body, payload: "hex"},
		{name: "listing query", method: "GET", rawPath: "/bucket", rawQuery: "list-type=2&prefix=a%20b%2Fc&delimiter=%2F&encoding-type=url&max-keys=10", payload: "hex"},
		{name: "query with + for space", method: "GET", rawPath: "/bucket", rawQuery: "prefix=a+b&list-type=2", payload: "hex",
			mutate: func(r *http.Request) { r.URL.RawQuery = strings.ReplaceAll(r.URL.RawQuery, "%20", "+") }},
		{name: "sub-resource without value", method: "GET", rawPath: "/bucket", rawQuery: "acl", payload: "hex"},
		{name: "virtual-hosted-style host", method: "GET", rawPath: "/key", host: "bucket.s3.gateway.test:9000", payload: "hex"},
		{name: "generic SigV4 client escapes the path again", rawPath: "/bucket/test$file.text", body: body, payload: "hex", escape: true},
		{name: "header with runs of spaces", rawPath: "/bucket/key", body: body, payload: "hex",
			headers: map[string]string{"X-Amz-Meta-Note": "  a   b  c ", "Content-Type": "text/plain"}},
		{name: "x-amz-content-sha256 absent on a bodyless GET", method: "GET", rawPath: "/bucket/key"},
		{name: "x-amz-content-sha256 absent, UNSIGNED-PAYLOAD signed", method: "GET", rawPath: "/bucket/key", signHash: unsignedPayload},
		{name: "unsigned header added in transit is ignored", rawPath: "/bucket/key", body: body, payload: "hex",
			mutate: func(r *http.Request) { r.Header.Set("X-Forwarded-For", "10.0.0.1") }},
		{name: "signed four minutes ago", method: "GET", rawPath: "/bucket/key", payload: "hex", at: -4 * time.Minute},

		// Tampering: every component has its exact error.
		{name: "tampered body byte, signed payload", rawPath: "/bucket/key", body: body, payload: "hex",
			mutate: func(r *http.Request) { setBody(r, flipped(body, 1000)) }, wantRead: "XAmzContentSHA256Mismatch"},
		{name: "tampered body byte, Content-MD5", rawPath: "/bucket/key", body: body, payload: unsignedPayload,
			headers: map[string]string{"Content-Md5": md5B64(body)},
			mutate:  func(r *http.Request) { setBody(r, flipped(body, 4095)) }, wantRead: "BadDigest"},
		{name: "tampered body byte, CRC32 header", rawPath: "/bucket/key", body: body, payload: unsignedPayload,
			headers: map[string]string{"X-Amz-Checksum-Crc32": checksumB64(CRC32, body)},
			mutate:  func(r *http.Request) { setBody(r, flipped(body, 0)) }, wantRead: "BadDigest"},
		{name: "tampered body byte, CRC64NVME header", rawPath: "/bucket/key", body: body, payload: unsignedPayload,
			headers: map[string]string{"X-Amz-Checksum-Crc64nvme": checksumB64(CRC64NVME, body)},
			mutate:  func(r *http.Request) { setBody(r, flipped(body, 7)) }, wantRead: "BadDigest"},
		{name: "tampered signed header", rawPath: "/bucket/key", body: body, payload: "hex",
			headers: map[string]string{"X-Amz-Meta-Owner": "alice"},
			mutate:  func(r *http.Request) { r.Header.Set("X-Amz-Meta-Owner", "mallory") }, wantVerify: "SignatureDoesNotMatch"},
		{name: "tampered date", method: "GET", rawPath: "/bucket/key", payload: "hex",
			mutate: func(r *http.Request) {
				r.Header.Set("X-Amz-Date", signTime.Add(time.Second).Format(iso8601Basic))
			}, wantVerify: "SignatureDoesNotMatch"},
		{name: "tampered signature", method: "GET", rawPath: "/bucket/key", payload: "hex",
			mutate: func(r *http.Request) {
				a := r.Header.Get("Authorization")
				last := a[len(a)-1]
				repl := byte('0')
				if last == '0' {
					repl = '1'
				}
				r.Header.Set("Authorization", a[:len(a)-1]+string(repl))
			}, wantVerify: "SignatureDoesNotMatch"},
		{name: "tampered path", method: "GET", rawPath: "/bucket/key", payload: "hex",
			mutate: func(r *http.Request) { r.URL.Path, r.URL.RawPath = "/bucket/kez", "" }, wantVerify: "SignatureDoesNotMatch"},
		{name: "tampered query", method: "GET", rawPath: "/bucket", rawQuery: "prefix=a", payload: "hex",
			mutate: func(r *http.Request) { r.URL.RawQuery = "prefix=b" }, wantVerify: "SignatureDoesNotMatch"},
		{name: "added query parameter", method: "GET", rawPath: "/bucket", rawQuery: "prefix=a", payload: "hex",
			mutate: func(r *http.Request) { r.URL.RawQuery += "&versionId=1" }, wantVerify: "SignatureDoesNotMatch"},
		{name: "tampered method", method: "GET", rawPath: "/bucket/key", payload: "hex",
			mutate: func(r *http.Request) { r.Method = "DELETE" }, wantVerify: "SignatureDoesNotMatch"},
		{name: "tampered host", method: "GET", rawPath: "/key", host: "bucket.s3.gateway.test", payload: "hex",
			mutate: func(r *http.Request) { r.Host = "other.s3.gateway.test" }, wantVerify: "SignatureDoesNotMatch"},
		{name: "payload hash swapped for UNSIGNED-PAYLOAD", rawPath: "/bucket/key", body: body, payload: "hex",
			mutate: func(r *http.Request) { r.Header.Set("X-Amz-Content-Sha256", unsignedPayload) }, wantVerify: "SignatureDoesNotMatch"},
		{name: "x-amz-date left out of SignedHeaders", method: "GET", rawPath: "/bucket/key", payload: "hex",
			mutate: func(r *http.Request) {
				r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), ";x-amz-date", "", 1))
			}, wantVerify: "AccessDenied"},
		{name: "host left out of SignedHeaders", method: "GET", rawPath: "/bucket/key", payload: "hex",
			mutate: func(r *http.Request) {
				r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "SignedHeaders=host;", "SignedHeaders=", 1))
			}, wantVerify: "AuthorizationHeaderMalformed"},
		{name: "signed twenty minutes ago", method: "GET", rawPath: "/bucket/key", payload: "hex", at: -20 * time.Minute, wantVerify: "RequestTimeTooSkewed"},
		{name: "signed twenty minutes ahead", method: "GET", rawPath: "/bucket/key", payload: "hex", at: 20 * time.Minute, wantVerify: "RequestTimeTooSkewed"},
		{name: "x-amz-date in year 9999", method: "GET", rawPath: "/bucket/key", payload: "hex",
			mutate: func(r *http.Request) { r.Header.Set("X-Amz-Date", "99991231T235959Z") }, wantVerify: "AuthorizationHeaderMalformed"},
		{name: "signed two centuries ahead", method: "GET", rawPath: "/bucket/key", payload: "hex", at: 70000 * 24 * time.Hour, wantVerify: "RequestTimeTooSkewed"},
		{name: "unknown access key", method: "GET", rawPath: "/bucket/key", payload: "hex", access: "AKIANOBODY", wantVerify: "InvalidAccessKeyId"},
		{name: "another region", method: "GET", rawPath: "/bucket/key", payload: "hex", region: "eu-west-1", wantVerify: "AuthorizationHeaderMalformed"},
		{name: "another service", method: "GET", rawPath: "/bucket/key", payload: "hex", service: "ec2", wantVerify: "AuthorizationHeaderMalformed"},
		{name: "x-amz-content-sha256 absent on a PUT with a body", rawPath: "/bucket/key", body: body, wantVerify: "InvalidRequest"},
		{name: "x-amz-content-sha256 not a hash", rawPath: "/bucket/key", body: body, payload: "abc", wantVerify: "InvalidArgument"},
		{name: "Content-MD5 of the wrong length", rawPath: "/bucket/key", body: body, payload: "hex",
			headers: map[string]string{"Content-Md5": "YWJyYWNhZGFicmE="}, wantVerify: "InvalidDigest"},
		{name: "Content-MD5 empty", rawPath: "/bucket/key", body: body, payload: "hex",
			mutate: func(r *http.Request) { r.Header["Content-Md5"] = []string{""} }, wantVerify: "InvalidDigest"},
		{name: "Content-MD5 of other bytes", rawPath: "/bucket/key", body: body, payload: "hex",
			headers: map[string]string{"Content-Md5": "rL0Y20xC+Fzt72VPzMSk2A=="}, wantRead: "BadDigest"},
		{name: "checksum header not base64 of a digest", rawPath: "/bucket/key", body: body, payload: "hex",
			headers: map[string]string{"X-Amz-Checksum-Sha256": "bad"}, wantVerify: "BadDigest"},
		{name: "two checksum headers", rawPath: "/bucket/key", body: body, payload: "hex",
			headers:    map[string]string{"X-Amz-Checksum-Crc32": checksumB64(CRC32, body), "X-Amz-Checksum-Sha1": checksumB64(SHA1, body)},
			wantVerify: "InvalidRequest"},
		{name: "checksum algorithm disagrees with the header", rawPath: "/bucket/key", body: body, payload: "hex",
			headers:    map[string]string{"X-Amz-Sdk-Checksum-Algorithm": "SHA256", "X-Amz-Checksum-Crc32": checksumB64(CRC32, body)},
			wantVerify: "InvalidRequest"},
		{name: "unknown checksum algorithm", rawPath: "/bucket/key", body: body, payload: "hex",
			headers: map[string]string{"X-Amz-Sdk-Checksum-Algorithm": "MD4"}, wantVerify: "InvalidRequest"},
		{name: "x-amz-trailer without a streaming payload", rawPath: "/bucket/key", body: body, payload: "hex",
			headers: map[string]string{"X-Amz-Trailer": "x-amz-checksum-crc32"}, wantVerify: "InvalidRequest"},
		{name: "malformed x-amz-date", method: "GET", rawPath: "/bucket/key", payload: "hex",
			mutate: func(r *http.Request) { r.Header.Set("X-Amz-Date", "Bad Date") }, wantVerify: "AccessDenied"},
		{name: "Authorization header and presigned query together", method: "GET", rawPath: "/bucket/key", payload: "hex",
			rawQuery: "X-Amz-Algorithm=AWS4-HMAC-SHA256", wantVerify: "InvalidArgument"},
		{name: "Signature Version 2 header", method: "GET", rawPath: "/bucket/key", payload: "hex",
			mutate: func(r *http.Request) {
				r.Header.Set("Authorization", "AWS "+testAccessKey+":frJIUN8DYpKDtOLCwo//yllqDzg=")
			},
			wantVerify: "InvalidRequest"},
		{name: "malformed Signature Version 2 header", method: "GET", rawPath: "/bucket/key", payload: "hex",
			mutate: func(r *http.Request) { r.Header.Set("Authorization", "AWS HAHAHA") }, wantVerify: "InvalidArgument"},
		{name: "Signature Version 4A header", method: "GET", rawPath: "/bucket/key", payload: "hex",
			mutate: func(r *http.Request) {
				r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256", 1))
			}, wantVerify: "NotImplemented"},
		{name: "unknown scheme", method: "GET", rawPath: "/bucket/key", payload: "hex",
			mutate: func(r *http.Request) { r.Header.Set("Authorization", "Bearer abc") }, wantVerify: "InvalidArgument"},
		{name: "Credential without scope", method: "GET", rawPath: "/bucket/key", payload: "hex",
			mutate: func(r *http.Request) {
				a := r.Header.Get("Authorization")
				i := strings.Index(a, "/")
				j := strings.Index(a, ",")
				r.Header.Set("Authorization", a[:i]+a[j:])
			}, wantVerify: "AuthorizationHeaderMalformed"},
		{name: "empty Authorization header is anonymous", method: "GET", rawPath: "/bucket/key",
			mutate: func(r *http.Request) { r.Header.Set("Authorization", "") }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := send(t, srv, c.request(t, srv.URL))
			o.check(t, c.name, c.wantVerify, c.wantRead)
			if c.wantVerify != "" || c.wantRead != "" {
				if o.MD5Hex != "" || o.Checksums != nil {
					t.Errorf("a failed request reported digests: md5 %q checksums %v", o.MD5Hex, o.Checksums)
				}
				return
			}
			wantKey := testAccessKey
			if c.mutate != nil && strings.HasPrefix(c.name, "empty Authorization") {
				wantKey = ""
			}
			if o.AccessKey != wantKey {
				t.Errorf("AccessKey = %q, want %q", o.AccessKey, wantKey)
			}
			if !o.sameBody(c.body) {
				t.Errorf("body: got %d bytes, want %d", o.BodyLen, len(c.body))
			}
			sum := md5.Sum(c.body)
			if o.MD5Hex != hex.EncodeToString(sum[:]) {
				t.Errorf("MD5 = %q, want %x", o.MD5Hex, sum)
			}
			if int64(len(c.body)) != o.DecodedLength && !(c.body == nil && o.DecodedLength == 0) {
				t.Errorf("DecodedLength = %d, want %d", o.DecodedLength, len(c.body))
			}
			if len(c.wantChecksum) != len(o.Checksums) {
				t.Errorf("Checksums = %v, want %v", o.Checksums, c.wantChecksum)
			}
			for k, want := range c.wantChecksum {
				if o.Checksums[k] != want {
					t.Errorf("Checksums[%s] = %q, want %q", k, o.Checksums[k], want)
				}
			}
		})
	}
}

func TestVerifyErrorsFromTheSecretStore(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want string
	}{
		{"unknown key", errors.New("backend down"), "SlowDown"},
		{"cancelled", context.Canceled, "RequestTimeout"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := newTestVerifier(fixedNow)
			v.Secrets = failingStore{c.err}
			srv := startServer(t, v, false)
			sc := sdkCase{method: "GET", rawPath: "/bucket/key", payload: "hex"}
			send(t, srv, sc.request(t, srv.URL)).check(t, c.name, c.want, "")
		})
	}
}

// TestVerifyAnonymous covers requests without any authentication: the
// payload checks still apply.
func TestVerifyAnonymous(t *testing.T) {
	v := newTestVerifier(fixedNow)
	srv := startServer(t, v, false)
	body := []byte("anonymous bytes")
	cases := []struct {
		name       string
		headers    map[string]string
		body       []byte
		query      string
		wantVerify string
		wantRead   string
	}{
		{name: "plain", body: body},
		{name: "Content-MD5 good", body: body, headers: map[string]string{"Content-Md5": md5B64(body)}},
		{name: "Content-MD5 bad", body: body, headers: map[string]string{"Content-Md5": md5B64([]byte("other"))}, wantRead: "BadDigest"},
		{name: "SHA-256 promised and wrong", body: body, headers: map[string]string{"X-Amz-Content-Sha256": sha256Hex([]byte("x"))}, wantRead: "XAmzContentSHA256Mismatch"},
		{name: "signed streaming without a signature", body: body, headers: map[string]string{"X-Amz-Content-Sha256": streamingSigned}, wantVerify: "InvalidRequest"},
		{name: "Signature Version 2 query", query: "AWSAccessKeyId=AKIA&Signature=abc&Expires=1", wantVerify: "InvalidRequest"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPut, srv.URL+"/bucket/key?"+c.query, bytes.NewReader(c.body))
			if err != nil {
				t.Fatal(err)
			}
			for k, val := range c.headers {
				req.Header.Set(k, val)
			}
			o := send(t, srv, req)
			o.check(t, c.name, c.wantVerify, c.wantRead)
			if c.wantVerify == "" && c.wantRead == "" && (o.AccessKey != "" || !o.sameBody(c.body)) {
				t.Errorf("got access key %q, %d body bytes", o.AccessKey, o.BodyLen)
			}
		})
	}
}

// TestVerifyDateHeaderOnly signs with the Date header and no x-amz-date,
// which SigV4 allows.
func TestVerifyDateHeaderOnly(t *testing.T) {
	v := newTestVerifier(fixedNow)
	body := []byte("dated")
	req, _ := http.NewRequest(http.MethodPut, "http://gw.test/bucket/key", bytes.NewReader(body))
	req.Header.Set("Date", signTime.Format(http.TimeFormat))
	req.Header.Set("X-Amz-Content-Sha256", sha256Hex(body))
	names := []string{"date", "host", "x-amz-content-sha256"}
	scope := signTime.Format(dateStamp) + "/" + testRegion + "/s3/aws4_request"
	cr := canonicalRequest("PUT", "/bucket/key", "", "date:"+req.Header.Get("Date")+"\nhost:gw.test\nx-amz-content-sha256:"+sha256Hex(body)+"\n",
		strings.Join(names, ";"), sha256Hex(body))
	sts := stringToSign(signTime.Format(iso8601Basic), scope, cr)
	sig := hex.EncodeToString(hmacSHA256(deriveSigningKey(testSecret, signTime.Format(dateStamp), testRegion, "s3"), sts))
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+testAccessKey+"/"+scope+",SignedHeaders="+strings.Join(names, ";")+",Signature="+sig)
	ver, err := v.Verify(req)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	got, err := io.ReadAll(ver.Body)
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("body %q, %v", got, err)
	}
	// Without either date header the request cannot be placed in time.
	req.Header.Del("Date")
	if _, err := v.Verify(req); errCode(err) != "AccessDenied" {
		t.Fatalf("no date: got %v, want AccessDenied", err)
	}
}

// TestVerifyShortBody: a body shorter than its Content-Length (the client
// went away) never reads as complete.
func TestVerifyShortBody(t *testing.T) {
	v := newTestVerifier(fixedNow)
	body := pattern(1000)
	cases := []struct {
		name    string
		payload string
		src     io.Reader
		want    string
	}{
		{"connection closed early", unsignedPayload, io.MultiReader(bytes.NewReader(body[:500]), errReader{io.ErrUnexpectedEOF}), "IncompleteBody"},
		{"fewer bytes than Content-Length", unsignedPayload, bytes.NewReader(body[:999]), "IncompleteBody"},
		{"read limit of the server", unsignedPayload, http.MaxBytesReader(nil, io.NopCloser(bytes.NewReader(body)), 10), "EntityTooLarge"},
		{"timeout", unsignedPayload, errReader{timeoutErr{}}, "RequestTimeout"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sc := sdkCase{rawPath: "/bucket/key", body: body, payload: c.payload}
			req := sc.request(t, "http://gw.test")
			req.Body = io.NopCloser(c.src)
			req.ContentLength = int64(len(body))
			ver, err := v.Verify(req)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			got, err := io.ReadAll(ver.Body)
			if errCode(err) != c.want {
				t.Fatalf("read error %v, want %s", err, c.want)
			}
			// the error sticks, and no more bytes come
			n, err2 := ver.Body.Read(make([]byte, 10))
			if n != 0 || errCode(err2) != c.want {
				t.Fatalf("second read: %d, %v", n, err2)
			}
			if len(got) > len(body) || ver.MD5() != nil {
				t.Fatalf("got %d bytes, MD5 %x", len(got), ver.MD5())
			}
		})
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestPresignedAWSSDK(t *testing.T) {
	v := newTestVerifier(fixedNow)
	srv := startServer(t, v, false)
	body := pattern(3000)
	presign := func(t *testing.T, method, path, query string, expires string, at time.Duration, headers map[string]string) *http.Request {
		t.Helper()
		u, _ := url.Parse(srv.URL)
		dec, _ := url.PathUnescape(path)
		u.Path, u.RawPath = dec, path
		q, _ := url.ParseQuery(query)
		if expires != "" {
			q.Set("X-Amz-Expires", expires)
		}
		u.RawQuery = q.Encode()
		req, _ := http.NewRequest(method, u.String(), nil)
		req.URL = u
		for k, val := range headers {
			req.Header.Set(k, val)
		}
		signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
		creds := aws.Credentials{AccessKeyID: testAccessKey, SecretAccessKey: testSecret}
		signed, hdr, err := signer.PresignHTTP(context.Background(), creds, req, unsignedPayload, "s3", testRegion, signTime.Add(at))
		if err != nil {
			t.Fatal(err)
		}
		out, _ := http.NewRequest(method, signed, nil)
		for k, vals := range hdr {
			if !strings.EqualFold(k, "host") {
				out.Header[k] = vals
			}
		}
		return out
	}
	cases := []struct {
		name       string
		method     string
		path       string
		query      string
		expires    string
		at         time.Duration
		headers    map[string]string
		mutate     func(r *http.Request)
		wantVerify string
		wantRead   string
	}{
		{name: "GET", method: "GET", path: "/bucket/key", expires: "900"},
		{name: "GET with response overrides", method: "GET", path: "/bucket/a%20b", query: "response-content-type=text/plain&versionId=null", expires: "3600"},
		{name: "PUT with a body", method: "PUT", path: "/bucket/key", expires: "600", headers: map[string]string{"Content-Type": "application/octet-stream"},
			mutate: func(r *http.Request) { setBody(r, body) }},
		{name: "PUT with Content-MD5 of other bytes", method: "PUT", path: "/bucket/key", expires: "600",
			mutate: func(r *http.Request) { setBody(r, body); r.Header.Set("Content-Md5", md5B64(body[1:])) }, wantRead: "BadDigest"},
		{name: "seven days is the limit", method: "GET", path: "/bucket/key", expires: "604800"},
		{name: "longer than seven days", method: "GET", path: "/bucket/key", expires: "604801", wantVerify: "AccessDenied"},
		{name: "expired", method: "GET", path: "/bucket/key", expires: "60", at: -2 * time.Minute, wantVerify: "AccessDenied"},
		{name: "expires zero", method: "GET", path: "/bucket/key", expires: "0", wantVerify: "AccessDenied"},
		{name: "negative expiry", method: "GET", path: "/bucket/key", expires: "-7", wantVerify: "AccessDenied"},
		{name: "not a number", method: "GET", path: "/bucket/key", expires: "soon", wantVerify: "AuthorizationQueryParametersError"},
		{name: "no expiry", method: "GET", path: "/bucket/key", wantVerify: "AuthorizationQueryParametersError"},
		{name: "signed in the future", method: "GET", path: "/bucket/key", expires: "60", at: time.Hour, wantVerify: "AccessDenied"},
		{name: "old but long-lived link", method: "GET", path: "/bucket/key", expires: "86400", at: -20 * time.Hour},
		{name: "tampered signature", method: "GET", path: "/bucket/key", expires: "900",
			mutate: func(r *http.Request) {
				q := r.URL.Query()
				s := []byte(q.Get("X-Amz-Signature"))
				s[0] = "01"[boolInt(s[0] == '0')]
				q.Set("X-Amz-Signature", string(s))
				r.URL.RawQuery = q.Encode()
			}, wantVerify: "SignatureDoesNotMatch"},
		{name: "tampered expiry", method: "GET", path: "/bucket/key", expires: "900",
			mutate: func(r *http.Request) {
				r.URL.RawQuery = strings.Replace(r.URL.RawQuery, "X-Amz-Expires=900", "X-Amz-Expires=901", 1)
			}, wantVerify: "SignatureDoesNotMatch"},
		{name: "tampered path", method: "GET", path: "/bucket/key", expires: "900",
			mutate: func(r *http.Request) { r.URL.Path = "/bucket/other" }, wantVerify: "SignatureDoesNotMatch"},
		{name: "wrong algorithm", method: "GET", path: "/bucket/key", expires: "900",
			mutate: func(r *http.Request) {
				r.URL.RawQuery = strings.Replace(r.URL.RawQuery, "X-Amz-Algorithm=AWS4-HMAC-SHA256", "X-Amz-Algorithm=AWS4-HMAC-SHA1", 1)
			}, wantVerify: "AuthorizationQueryParametersError"},
		{name: "missing signature", method: "GET", path: "/bucket/key", expires: "900",
			mutate: func(r *http.Request) {
				q := r.URL.Query()
				q.Del("X-Amz-Signature")
				r.URL.RawQuery = q.Encode()
			}, wantVerify: "AuthorizationQueryParametersError"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := presign(t, c.method, c.path, c.query, c.expires, c.at, c.headers)
			if c.mutate != nil {
				c.mutate(req)
			}
			o := send(t, srv, req)
			o.check(t, c.name, c.wantVerify, c.wantRead)
			if c.wantVerify == "" && c.wantRead == "" && (o.AccessKey != testAccessKey || !o.Presigned) {
				t.Errorf("access key %q presigned %v", o.AccessKey, o.Presigned)
			}
		})
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestContentEncoding(t *testing.T) {
	cases := map[string]string{
		"gzip":                     "gzip",
		"deflate, gzip":            "deflate, gzip",
		"gzip, aws-chunked":        "gzip",
		"aws-chunked, gzip":        "gzip",
		"aws-chunked":              "",
		"aws-chunked, aws-chunked": "",
		"AWS-Chunked,br":           "br",
	}
	for in, want := range cases {
		h := http.Header{"Content-Encoding": {in}}
		if got := ContentEncoding(h); got != want {
			t.Errorf("ContentEncoding(%q) = %q, want %q", in, got, want)
		}
	}
	if got := ContentEncoding(http.Header{}); got != "" {
		t.Errorf("no header: %q", got)
	}
}
