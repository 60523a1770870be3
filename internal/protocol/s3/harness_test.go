package s3

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/xml"
	"hash"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/claudefs/cfs-gateway/internal/core"
	"github.com/claudefs/cfs-gateway/internal/core/coretest"
	"github.com/claudefs/cfs-gateway/internal/protocol/s3/s3err"
	"github.com/claudefs/cfs-gateway/internal/protocol/s3/sigv4"
)

// openFS opens a filesystem on the embedded engines under t.TempDir().
func openFS(t testing.TB) *core.FS {
	return coretest.OpenEmbedded(t, t.TempDir(), core.Options{})
}

// testAuth authenticates by the X-Test-Key header (no header: anonymous)
// and computes the MD5 of the body, as the SigV4 verifier does.
type testAuth struct{}

type md5Body struct {
	r   io.ReadCloser
	h   hash.Hash
	sum []byte
}

func (b *md5Body) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.h.Write(p[:n])
	if err == io.EOF {
		b.sum = b.h.Sum(nil)
	}
	return n, err
}

func (b *md5Body) Close() error { return b.r.Close() }

// VerifyPost refuses: browser POST uploads are tested with the real verifier.
func (testAuth) VerifyPost(context.Context, map[string]string) (string, *sigv4.PostPolicy, error) {
	return "", nil, s3err.AccessDenied
}

func (testAuth) Verify(r *http.Request) (*verified, error) {
	key := r.Header.Get("X-Test-Key")
	if key == "bad" {
		return nil, s3err.SignatureDoesNotMatch
	}
	body := r.Body
	if body == nil {
		body = io.NopCloser(strings.NewReader(""))
	}
	mb := &md5Body{r: body, h: md5.New()}
	return &verified{AccessKey: key, Body: mb, DecodedLength: r.ContentLength,
		MD5:       func() []byte { return mb.sum },
		Checksums: func() map[string]string { return nil }}, nil
}

// env is a server over a fresh filesystem with users alice (uid 1000) and
// bob (uid 1001).
type env struct {
	t  testing.TB
	fs *core.FS
	s  *Server
}

func newEnv(t testing.TB, cfg Config) *env {
	t.Helper()
	fsys := openFS(t)
	ctx := context.Background()
	for _, u := range []core.User{
		{Name: "alice", UID: 1000, GID: 1000, AccessKeys: []core.AccessKey{{ID: "alice", Secret: "alicesecret"}}},
		{Name: "bob", UID: 1001, GID: 1001, AccessKeys: []core.AccessKey{{ID: "bob", Secret: "bobsecret"}}},
	} {
		if err := fsys.AddUser(ctx, u, ""); err != nil {
			t.Fatal(err)
		}
	}
	cfg.FS = fsys
	s := New(cfg)
	s.auth = testAuth{}
	return &env{t: t, fs: fsys, s: s}
}

// call is one request to the server.
type call struct {
	method, path string
	user         string // access key; "" anonymous
	header       map[string]string
	body         string
}

func (e *env) do(c call) *httptest.ResponseRecorder {
	e.t.Helper()
	var body io.Reader = strings.NewReader(c.body)
	r := httptest.NewRequest(c.method, "http://s3.test"+c.path, body)
	r.Header.Set("Content-Length", strconv.Itoa(len(c.body)))
	if c.user != "" {
		r.Header.Set("X-Test-Key", c.user)
	}
	for k, v := range c.header {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	e.s.ServeHTTP(w, r)
	return w
}

// ok runs a call that must answer status.
func (e *env) ok(c call, status int) *httptest.ResponseRecorder {
	e.t.Helper()
	w := e.do(c)
	if w.Code != status {
		e.t.Fatalf("%s %s: status %d, want %d; body %s", c.method, c.path, w.Code, status, w.Body.String())
	}
	return w
}

// fails runs a call that must fail with an S3 error code.
func (e *env) fails(c call, code string, status int) {
	e.t.Helper()
	w := e.do(c)
	var body struct {
		Code string `xml:"Code"`
	}
	xml.Unmarshal(w.Body.Bytes(), &body)
	if w.Code != status || (c.method != http.MethodHead && body.Code != code) {
		e.t.Fatalf("%s %s: status %d code %q, want %d %q; body %s", c.method, c.path, w.Code, body.Code, status, code, w.Body.String())
	}
}

// put stores an object as user.
func (e *env) put(user, path, body string) *httptest.ResponseRecorder {
	e.t.Helper()
	return e.ok(call{method: "PUT", path: path, user: user, body: body}, 200)
}

// get returns an object's body as user.
func (e *env) get(user, path string) string {
	e.t.Helper()
	return e.ok(call{method: "GET", path: path, user: user}, 200).Body.String()
}

func decodeXML(t testing.TB, w *httptest.ResponseRecorder, v any) {
	t.Helper()
	if err := xml.NewDecoder(bytes.NewReader(w.Body.Bytes())).Decode(v); err != nil {
		t.Fatalf("decoding %s: %v", w.Body.String(), err)
	}
}
