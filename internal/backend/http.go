package backend

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"time"
)

// NewHTTPTransport returns the transport for the endpoints of an HTTP
// object store, sized by the pool settings: at most MaxPerNode connections
// per endpoint (requests beyond wait for one), all of them kept when idle
// and closed after MaxIdle, every dial and TLS handshake bounded by
// ConnectTimeout. tlsConfig may be nil for plain HTTP.
func NewHTTPTransport(p PoolConfig, tlsConfig *tls.Config) *http.Transport {
	p = p.WithDefaults()
	dialer := &net.Dialer{Timeout: p.ConnectTimeout, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		TLSClientConfig:       tlsConfig,
		TLSHandshakeTimeout:   p.ConnectTimeout,
		MaxConnsPerHost:       p.MaxPerNode,
		MaxIdleConnsPerHost:   p.MaxPerNode,
		MaxIdleConns:          0, // no global cap: the per-host cap applies
		IdleConnTimeout:       p.MaxIdle,
		ExpectContinueTimeout: time.Second,
		// Object stores speak HTTP/1.1; one request per connection at a
		// time is what max_per_node counts.
		ForceAttemptHTTP2: false,
	}
}

// WarmProbe turns a probe of one request into a probe of MinPerNode
// concurrent requests, so that each health check leaves at least that many
// connections open in the transport's idle pool: the pool's minimum is
// kept warm by use, as an HTTP transport has no other way to hold idle
// connections. The node is healthy when every request succeeds.
func WarmProbe(p PoolConfig, probe Probe) Probe {
	n := p.WithDefaults().MinPerNode
	return func(ctx context.Context, node *Node) error {
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = probe(ctx, node)
			}()
		}
		wg.Wait()
		failed := 0
		var first error
		for _, err := range errs {
			if err != nil {
				failed++
				if first == nil {
					first = err
				}
			}
		}
		if failed > 1 {
			return fmt.Errorf("%d of %d probes failed, the first with: %w", failed, n, first)
		}
		return first
	}
}

// ClientTLS builds a TLS client configuration from PEM files: caFile adds
// trusted roots (the system roots otherwise), certFile and keyFile a client
// certificate. All empty returns nil, nil: no TLS settings of one's own.
func ClientTLS(caFile, certFile, keyFile string) (*tls.Config, error) {
	if caFile == "" && certFile == "" && keyFile == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("reading the CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s holds no PEM certificate", caFile)
		}
		cfg.RootCAs = pool
	}
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("a client certificate needs both cert_file and key_file")
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("loading the client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}
