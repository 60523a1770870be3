package sigv4

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/claudefs/cfs-gateway/internal/protocol/s3/s3err"
)

const (
	testAccessKey = "AKIAGATEWAYTEST00001"
	testSecret    = "gateway/test+secret/KEY0123456789abcdefgh"
	testRegion    = "us-east-1"
)

// secretMap is a SecretStore over a map.
type secretMap map[string]string

func (m secretMap) Secret(_ context.Context, key string) (string, error) {
	if s, ok := m[key]; ok {
		return s, nil
	}
	return "", s3err.InvalidAccessKeyID
}

type failingStore struct{ err error }

func (f failingStore) Secret(context.Context, string) (string, error) { return "", f.err }

func newTestVerifier(now func() time.Time) *Verifier {
	return &Verifier{
		Secrets: secretMap{testAccessKey: testSecret, "AKIAIOSFODNN7EXAMPLE": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"},
		Region:  testRegion,
		Now:     now,
	}
}

// errCode is the S3 code of err, "" for nil, or "not-s3:<err>".
func errCode(err error) string {
	if err == nil {
		return ""
	}
	var se *s3err.Error
	if errors.As(err, &se) {
		return se.Code
	}
	return "not-s3:" + err.Error()
}

// outcome is what the test server saw of one request.
type outcome struct {
	VerifyErr     string            `json:"verifyErr"`
	VerifyMsg     string            `json:"verifyMsg"`
	ReadErr       string            `json:"readErr"`
	ReadMsg       string            `json:"readMsg"`
	AccessKey     string            `json:"accessKey"`
	Presigned     bool              `json:"presigned"`
	BodySHA256    string            `json:"bodySHA256"` // of the bytes read, even when reading failed
	BodyLen       int               `json:"bodyLen"`
	MD5Hex        string            `json:"md5"`
	Checksums     map[string]string `json:"checksums"`
	DecodedLength int64             `json:"decodedLength"`
}

// startServer runs v behind a loopback HTTP server that reports, for each
// request, what Verify and reading the body produced.
func startServer(t testing.TB, v *Verifier, tls bool) *httptest.Server {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var o outcome
		ver, err := v.Verify(r)
		if err != nil {
			o.VerifyErr = errCode(err)
			o.VerifyMsg = err.Error()
		} else {
			o.AccessKey = ver.AccessKey
			o.Presigned = ver.Presigned
			o.DecodedLength = ver.DecodedLength
			body, err := io.ReadAll(ver.Body)
			ver.Body.Close()
			o.BodySHA256, o.BodyLen = sha256Hex(body), len(body)
			if err != nil {
				o.ReadErr = errCode(err)
				o.ReadMsg = err.Error()
			} else {
				o.MD5Hex = ver.MD5Hex()
				o.Checksums = ver.Checksums()
			}
		}
		out, _ := json.Marshal(o)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("ETag", `"`+o.MD5Hex+`"`)
		w.Header().Set("X-Test-Outcome", string(out))
		w.Write([]byte("{}"))
	})
	var srv *httptest.Server
	if tls {
		srv = httptest.NewTLSServer(h)
	} else {
		srv = httptest.NewServer(h)
	}
	t.Cleanup(srv.Close)
	return srv
}

// startServerHTTP2 is startServer over TLS with HTTP/2, where net/http
// hands over the request pseudo-headers differently.
func startServerHTTP2(t testing.TB, v *Verifier) *httptest.Server {
	plain := startServer(t, v, false)
	srv := httptest.NewUnstartedServer(plain.Config.Handler)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// send performs req against srv and decodes the outcome.
func send(t testing.TB, srv *httptest.Server, req *http.Request) outcome {
	t.Helper()
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("sending %s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	var o outcome
	if err := json.Unmarshal([]byte(resp.Header.Get("X-Test-Outcome")), &o); err != nil {
		t.Fatalf("decoding outcome: %v", err)
	}
	return o
}

// sameBody reports whether the server read exactly b.
func (o outcome) sameBody(b []byte) bool {
	return o.BodyLen == len(b) && o.BodySHA256 == sha256Hex(b)
}

// check compares an outcome with the expected verify and read codes.
func (o outcome) check(t testing.TB, name, wantVerify, wantRead string) {
	t.Helper()
	if o.VerifyErr != wantVerify {
		t.Errorf("%s: Verify error = %q (%s), want %q", name, o.VerifyErr, o.VerifyMsg, wantVerify)
		return
	}
	if wantVerify == "" && o.ReadErr != wantRead {
		t.Errorf("%s: Read error = %q (%s), want %q", name, o.ReadErr, o.ReadMsg, wantRead)
	}
}
