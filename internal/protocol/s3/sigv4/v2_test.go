package sigv4

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"net/http"
	"testing"
	"time"

	"github.com/minio/minio-go/v7/pkg/signer"
)

func TestSignatureV2(t *testing.T) {
	v := newTestVerifier(nil)
	v.AllowSignatureV2 = true
	srv := startServer(t, v, false)
	body := pattern(2000)
	minioV2 := func(method, target string, headers map[string]string, b []byte) *http.Request {
		req, _ := http.NewRequest(method, srv.URL+target, bytes.NewReader(b))
		for k, val := range headers {
			req.Header.Set(k, val)
		}
		return signer.SignV2(*req, testAccessKey, testSecret, false)
	}
	// botoV2 signs as botocore's HmacV1Auth does: the Date line filled even
	// when x-amz-date is sent.
	botoV2 := func(method, target string, headers map[string]string) *http.Request {
		req, _ := http.NewRequest(method, srv.URL+target, nil)
		req.Header.Set("Date", time.Now().UTC().Format(http.TimeFormat))
		for k, val := range headers {
			req.Header.Set(k, val)
		}
		r := req.Clone(req.Context())
		r.RequestURI = req.URL.RequestURI()
		sts := v2StringsToSign(r)
		m := hmac.New(sha1.New, []byte(testSecret))
		m.Write([]byte(sts[len(sts)-1]))
		req.Header.Set("Authorization", "AWS "+testAccessKey+":"+base64.StdEncoding.EncodeToString(m.Sum(nil)))
		return req
	}
	cases := []struct {
		name       string
		req        func() *http.Request
		mutate     func(r *http.Request)
		wantVerify string
	}{
		{name: "GET", req: func() *http.Request { return minioV2("GET", "/bucket/key", nil, nil) }},
		{name: "PUT with digests and metadata", req: func() *http.Request {
			return minioV2("PUT", "/bucket/dir/a%20b", map[string]string{"Content-Md5": md5B64(body), "Content-Type": "text/plain", "X-Amz-Meta-A": "1", "X-Amz-Acl": "private"}, body)
		}},
		{name: "sub-resources", req: func() *http.Request { return minioV2("GET", "/bucket/key?versionId=3&acl&list-type=2", nil, nil) }},
		{name: "part upload", req: func() *http.Request { return minioV2("PUT", "/bucket/key?partNumber=1&uploadId=abc", nil, body) }},
		{name: "botocore with x-amz-date and Date", req: func() *http.Request {
			return botoV2("PUT", "/bucket/key", map[string]string{"X-Amz-Date": time.Now().UTC().Format(http.TimeFormat)})
		}},
		{name: "tampered header", req: func() *http.Request {
			return minioV2("GET", "/bucket/key", map[string]string{"X-Amz-Meta-A": "1"}, nil)
		},
			mutate: func(r *http.Request) { r.Header.Set("X-Amz-Meta-A", "2") }, wantVerify: "SignatureDoesNotMatch"},
		{name: "tampered path", req: func() *http.Request { return minioV2("GET", "/bucket/key", nil, nil) },
			mutate: func(r *http.Request) { r.URL.Path = "/bucket/kez" }, wantVerify: "SignatureDoesNotMatch"},
		{name: "signature not base64", req: func() *http.Request { return minioV2("GET", "/bucket/key", nil, nil) },
			mutate: func(r *http.Request) { r.Header.Set("Authorization", "AWS "+testAccessKey+":!!!") }, wantVerify: "SignatureDoesNotMatch"},
		{name: "unknown access key", req: func() *http.Request { return minioV2("GET", "/bucket/key", nil, nil) },
			mutate: func(r *http.Request) { r.Header.Set("Authorization", "AWS AKIANOBODY:abcd") }, wantVerify: "InvalidAccessKeyId"},
		// ceph/s3-tests test_headers.py *_aws2 cases: the date checks
		{name: "x-amz-date invalid", req: func() *http.Request { return botoV2("PUT", "/bucket/key", map[string]string{"X-Amz-Date": "Bad Date"}) }, wantVerify: "AccessDenied"},
		{name: "x-amz-date empty", req: func() *http.Request { return botoV2("PUT", "/bucket/key", map[string]string{"X-Amz-Date": ""}) }, wantVerify: "AccessDenied"},
		{name: "no date at all", req: func() *http.Request { return botoV2("PUT", "/bucket/key", nil) },
			mutate: func(r *http.Request) { r.Header.Del("Date") }, wantVerify: "AccessDenied"},
		{name: "x-amz-date before today", req: func() *http.Request {
			return botoV2("PUT", "/bucket/key", map[string]string{"X-Amz-Date": "Tue, 07 Jul 2010 21:53:04 GMT"})
		}, wantVerify: "RequestTimeTooSkewed"},
		{name: "x-amz-date before the epoch", req: func() *http.Request {
			return botoV2("PUT", "/bucket/key", map[string]string{"X-Amz-Date": "Tue, 07 Jul 1950 21:53:04 GMT"})
		}, wantVerify: "AccessDenied"},
		{name: "x-amz-date after the end", req: func() *http.Request {
			return botoV2("PUT", "/bucket/key", map[string]string{"X-Amz-Date": "Tue, 07 Jul 9999 21:53:04 GMT"})
		}, wantVerify: "RequestTimeTooSkewed"},
		{name: "Content-MD5 garbage", req: func() *http.Request {
			return minioV2("PUT", "/bucket/key", map[string]string{"Content-Md5": "AWS HAHAHA"}, body)
		}, wantVerify: "InvalidDigest"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := c.req()
			if c.mutate != nil {
				c.mutate(req)
			}
			o := send(t, srv, req)
			o.check(t, c.name, c.wantVerify, "")
			if c.wantVerify == "" && o.AccessKey != testAccessKey {
				t.Errorf("access key %q", o.AccessKey)
			}
		})
	}
	t.Run("refused unless allowed", func(t *testing.T) {
		strict := newTestVerifier(nil)
		srv2 := startServer(t, strict, false)
		req, _ := http.NewRequest("GET", srv2.URL+"/bucket/key", nil)
		send(t, srv2, signer.SignV2(*req, testAccessKey, testSecret, false)).check(t, "V2 refused", "InvalidRequest", "")
	})
}
