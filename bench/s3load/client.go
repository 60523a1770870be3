package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
)

// client is an SDK client together with what its requests looked like on
// the wire, so that a result can show that both servers were sent the same
// requests (payload form, checksums) and kept their connections open.
type client struct {
	s3   *s3.Client
	wire *wireStats
}

// newClient builds the SDK's default configuration with static credentials
// and nothing taken from the machine's AWS files. The HTTP transport is the
// SDK's default with its idle pool raised to the concurrency: with the
// default of 10 idle connections per host, 16 concurrent requests would
// keep closing and opening connections, and the client would measure that.
func newClient(ctx context.Context, o options) (*client, error) {
	cfg, err := config.LoadDefaultConfig(ctx,
		config.WithRegion(o.region),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(o.access, o.secret, "")),
		config.WithSharedConfigFiles([]string{}),
		config.WithSharedCredentialsFiles([]string{}),
	)
	if err != nil {
		return nil, fmt.Errorf("building the SDK configuration: %w", err)
	}
	// The SDK's own transport (with whatever it took from the
	// environment, such as a CA bundle), wrapped to count what crosses it.
	sdkClient, ok := cfg.HTTPClient.(*awshttp.BuildableClient)
	if !ok {
		return nil, fmt.Errorf("the SDK's default HTTP client is a %T, not the buildable client this tool adjusts", cfg.HTTPClient)
	}
	wire := &wireStats{forms: map[string]int64{}}
	idle := max(o.concurrency, o.largeConcurrency) + 4
	tr := sdkClient.WithTransportOptions(func(t *http.Transport) {
		t.Proxy = nil
		t.MaxIdleConns = idle
		t.MaxIdleConnsPerHost = idle
		dial := t.DialContext
		t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			wire.dials.Add(1)
			return dial(ctx, network, addr)
		}
	}).GetTransport()
	cfg.HTTPClient = &http.Client{
		Transport: recorder{next: tr, wire: wire},
		// The SDK does not follow redirects either.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	c := s3.NewFromConfig(cfg, func(so *s3.Options) {
		so.BaseEndpoint = aws.String(o.endpoint)
		so.UsePathStyle = true
		so.Retryer = aws.NopRetryer{}
	})
	return &client{s3: c, wire: wire}, nil
}

// wireStats counts what the client sent and received.
type wireStats struct {
	dials             atomic.Int64
	gets, getChecksum atomic.Int64
	// listWait is the time list requests took from being sent to their
	// whole response having arrived, without the client's decoding.
	listWait atomic.Int64
	mu       sync.Mutex
	forms    map[string]int64 // payload form of PUT requests
}

func (w *wireStats) reset() {
	w.dials.Store(0)
	w.gets.Store(0)
	w.getChecksum.Store(0)
	w.listWait.Store(0)
	w.mu.Lock()
	clear(w.forms)
	w.mu.Unlock()
}

// payloadForms returns the payload forms PUT requests used, such as
// "signed+crc32" (a signed SHA-256 of the body and a CRC32 header).
func (w *wireStats) payloadForms() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.forms) == 0 {
		return "none"
	}
	var fs []string
	for f := range w.forms {
		fs = append(fs, f)
	}
	slices.Sort(fs)
	return strings.Join(fs, ",")
}

// recorder is the client transport that fills wireStats.
type recorder struct {
	next http.RoundTripper
	wire *wireStats
}

func (r recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPut {
		form := payloadForm(req.Header)
		r.wire.mu.Lock()
		r.wire.forms[form]++
		r.wire.mu.Unlock()
	}
	list := req.Method == http.MethodGet && req.URL.Query().Has("list-type")
	start := time.Now()
	resp, err := r.next.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	switch {
	case list:
		// A listing is read whole before the SDK decodes it, so that the
		// server's share of a walk can be told from the client's.
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("reading a ListObjectsV2 response: %w", err)
		}
		r.wire.listWait.Add(int64(time.Since(start)))
		resp.Body = io.NopCloser(bytes.NewReader(body))
	case req.Method == http.MethodGet:
		r.wire.gets.Add(1)
		if hasChecksum(resp.Header) {
			r.wire.getChecksum.Add(1)
		}
	}
	return resp, nil
}

// payloadForm names how a request's body is protected.
func payloadForm(h http.Header) string {
	var parts []string
	switch v := h.Get("X-Amz-Content-Sha256"); {
	case len(v) == 64:
		parts = append(parts, "signed")
	case v == "":
		parts = append(parts, "no-sha256")
	default:
		parts = append(parts, strings.ToLower(v))
	}
	if h.Get("Content-Md5") != "" {
		parts = append(parts, "md5")
	}
	for k := range h {
		if name, ok := strings.CutPrefix(strings.ToLower(k), "x-amz-checksum-"); ok && name != "algorithm" {
			parts = append(parts, name)
		}
	}
	for _, v := range h.Values("X-Amz-Trailer") {
		parts = append(parts, "trailer-"+strings.TrimPrefix(strings.ToLower(v), "x-amz-checksum-"))
	}
	slices.Sort(parts[1:])
	return strings.Join(parts, "+")
}

func hasChecksum(h http.Header) bool {
	for k := range h {
		if name, ok := strings.CutPrefix(strings.ToLower(k), "x-amz-checksum-"); ok && name != "type" {
			return true
		}
	}
	return false
}

// errorCode is the S3 error code of err, or "".
func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}
