package s3it

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/claudefs/cfs-gateway/internal/core"
	"github.com/claudefs/cfs-gateway/internal/core/coretest"
	"github.com/claudefs/cfs-gateway/internal/protocol/s3"
)

const (
	region    = "us-east-1"
	accessKey = "AKIAALICE0000000TEST"
	secretKey = "alice/secret/key/for/the/integration/tests"
	aliceUID  = 1000
)

// gateway is an S3 server on a fresh core, listening on loopback.
type gateway struct {
	fs       *core.FS
	srv      *s3.Server
	endpoint string // scheme://host:port
	host     string // host:port
	client   *http.Client
	// transport records what requests carried before sending them.
	transport http.RoundTripper
	seen      *payloadForms
}

// payloadForms records the payload forms (x-amz-content-sha256 values and
// checksum headers) that a client sent.
type payloadForms struct {
	mu    sync.Mutex
	forms map[string]int
}

func (p *payloadForms) add(form string) {
	p.mu.Lock()
	p.forms[form]++
	p.mu.Unlock()
}

func (p *payloadForms) has(form string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.forms[form] > 0
}

// recorder is a client transport that notes each request's payload form.
type recorder struct {
	next http.RoundTripper
	seen *payloadForms
}

func (r recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPut || req.Method == http.MethodPost {
		if v := req.Header.Get("X-Amz-Content-Sha256"); v != "" {
			if len(v) == 64 {
				v = "signed-sha256"
			}
			r.seen.add(v)
		}
		for k := range req.Header {
			if strings.HasPrefix(strings.ToLower(k), "x-amz-checksum-") {
				r.seen.add(strings.ToLower(k))
			}
		}
		for _, v := range req.Header.Values("X-Amz-Trailer") {
			r.seen.add("trailer " + strings.ToLower(v))
		}
		if req.Header.Get("Content-Md5") != "" {
			r.seen.add("content-md5")
		}
	}
	return r.next.RoundTrip(req)
}

// start runs a gateway; with tls it serves HTTPS with a self-signed
// certificate that the returned client trusts.
func start(t *testing.T, useTLS bool) *gateway {
	t.Helper()
	dir := t.TempDir()
	fsys := coretest.OpenEmbedded(t, dir, core.Options{})
	err := fsys.AddUser(context.Background(), core.User{Name: "alice", UID: aliceUID, GID: aliceUID,
		AccessKeys: []core.AccessKey{{ID: accessKey, Secret: secretKey}}}, "")
	if err != nil {
		t.Fatal(err)
	}
	srv := s3.New(s3.Config{FS: fsys, Region: region, MultipartChunkMin: 5 << 20})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	seen := &payloadForms{forms: map[string]int{}}
	g := &gateway{fs: fsys, srv: srv, host: l.Addr().String(), seen: seen}
	transport := &http.Transport{}
	done := make(chan error, 1)
	if useTLS {
		certFile, keyFile, pool := selfSigned(t, dir)
		g.endpoint = "https://" + g.host
		transport.TLSClientConfig = &tls.Config{RootCAs: pool}
		go func() { done <- srv.ServeTLS(l, certFile, keyFile) }()
	} else {
		g.endpoint = "http://" + g.host
		go func() { done <- srv.Serve(l) }()
	}
	g.transport = recorder{next: transport, seen: seen}
	g.client = &http.Client{Transport: g.transport}
	t.Cleanup(func() {
		transport.CloseIdleConnections()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Error(err)
		}
		if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Error(err)
		}
	})
	return g
}

// selfSigned writes a certificate for 127.0.0.1 and returns its files and
// a pool that trusts it.
func selfSigned(t *testing.T, dir string) (string, string, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "cfs-gateway test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:     []string{"localhost"},
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// pattern returns n bytes that differ from one offset to the next.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	x := uint32(seed) + 1
	for i := range b {
		x = x*1664525 + 1013904223
		b[i] = byte(x >> 24)
	}
	return b
}
