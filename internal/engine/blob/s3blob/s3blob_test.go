package s3blob

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/claudefs/cfs-gateway/internal/backend/backendtest"
	"github.com/claudefs/cfs-gateway/internal/engine/blob"
	"github.com/claudefs/cfs-gateway/internal/engine/blob/blobtest"
)

var quiet = slog.New(slog.DiscardHandler)

var prefixSeq atomic.Int64

func startServer(t testing.TB) (*backendtest.S3Server, string) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts an S3 server")
	}
	srv := backendtest.StartS3(t)
	return srv, srv.NewBucket()
}

func openStore(t testing.TB, srv *backendtest.S3Server, bucket string, opts Options) *Store {
	t.Helper()
	opts.Endpoints = []string{srv.Endpoint}
	opts.Bucket = bucket
	opts.AccessKey, opts.SecretKey, opts.Region = srv.AccessKey, srv.SecretKey, srv.Region
	if opts.Prefix == "" {
		opts.Prefix = fmt.Sprintf("t%d/", prefixSeq.Add(1))
	}
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Open(ctx, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	srv, bucket := startServer(t)
	blobtest.Run(t, func(t *testing.T) blob.Store {
		return openStore(t, srv, bucket, Options{})
	})
}

func BenchmarkEngine(b *testing.B) {
	srv, bucket := startServer(b)
	blobtest.Bench(b, func(b *testing.B) blob.Store {
		return openStore(b, srv, bucket, Options{})
	})
}

// TestPutPartsStoresTheConcatenation checks PutParts against what an S3
// client reads back, including empty parts.
func TestPutPartsStoresTheConcatenation(t *testing.T) {
	srv, bucket := startServer(t)
	s := openStore(t, srv, bucket, Options{Prefix: "parts/"})
	defer s.Close()
	ctx := context.Background()
	parts := [][]byte{[]byte("header:"), nil, bytes.Repeat([]byte("d"), 100000), []byte(":end")}
	if err := s.PutParts(ctx, "k", parts...); err != nil {
		t.Fatal(err)
	}
	obj, err := srv.Client().GetObject(ctx, bucket, "parts/k", minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(obj)
	if err != nil {
		t.Fatal(err)
	}
	if want := bytes.Join(parts, nil); !bytes.Equal(got, want) {
		t.Fatalf("object holds %d bytes that differ from the %d bytes of the parts", len(got), len(want))
	}
}

func TestOpenFailsClearly(t *testing.T) {
	srv, bucket := startServer(t)
	tests := []struct {
		name string
		opts func(*Options)
		want string
	}{
		{"missing bucket", func(o *Options) { o.Bucket = "no-such-bucket-here" }, "does not exist"},
		{"wrong secret", func(o *Options) { o.SecretKey = "wrong" }, "credentials"},
		{"no endpoint", func(o *Options) { o.Endpoints = nil }, "blob.s3.endpoint"},
		{"endpoint with a path", func(o *Options) { o.Endpoints = []string{"http://127.0.0.1:1/x"} }, "without a path"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := Options{Endpoints: []string{srv.Endpoint}, Bucket: bucket, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, Logger: quiet}
			tc.opts(&opts)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			s, err := Open(ctx, opts)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if !bytes.Contains([]byte(err.Error()), []byte(tc.want)) {
				t.Fatalf("Open = %v, want a message mentioning %q", err, tc.want)
			}
		})
	}
}

func TestPartsReader(t *testing.T) {
	parts := [][]byte{[]byte("abc"), {}, []byte("defg"), []byte("h")}
	whole := "abcdefgh"
	tests := []struct {
		off     int64
		n       int
		want    string
		wantEOF bool
	}{
		{0, 8, whole, false},
		{0, 3, "abc", false},
		{2, 3, "cde", false},
		{3, 4, "defg", false},
		{7, 1, "h", false},
		{6, 5, "gh", true},
		{8, 1, "", true},
		{20, 1, "", true},
	}
	r := newPartsReader(parts)
	for _, tc := range tests {
		p := make([]byte, tc.n)
		n, err := r.ReadAt(p, tc.off)
		if string(p[:n]) != tc.want || (err == io.EOF) != tc.wantEOF || (err != nil && err != io.EOF) {
			t.Errorf("ReadAt(%d, %d) = %q, %v; want %q, EOF=%v", tc.off, tc.n, p[:n], err, tc.want, tc.wantEOF)
		}
	}
	if _, err := r.Seek(2, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(r)
	if err != nil || string(rest) != whole[2:] {
		t.Fatalf("read after Seek(2) = %q, %v", rest, err)
	}
	r.fence()
	if _, err := r.ReadAt(make([]byte, 1), 0); !errors.Is(err, errFenced) {
		t.Fatalf("ReadAt after fence = %v, want errFenced", err)
	}
	if _, err := r.Read(make([]byte, 1)); !errors.Is(err, errFenced) {
		t.Fatalf("Read after fence = %v, want errFenced", err)
	}
}

func TestIsFailure(t *testing.T) {
	s := &Store{bucket: "b"}
	wrapped := func(err error) error { return s.mapError(err, "get", "k") }
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"connection refused", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, true},
		{"body cut short", fmt.Errorf("reading: %w", io.ErrUnexpectedEOF), true},
		{"internal error", wrapped(minio.ErrorResponse{Code: "InternalError", StatusCode: 500}), true},
		{"service unavailable", wrapped(minio.ErrorResponse{Code: "ServiceUnavailable", StatusCode: 503}), true},
		{"slow down", wrapped(minio.ErrorResponse{Code: "SlowDown", StatusCode: 503}), true},
		{"too many requests", wrapped(minio.ErrorResponse{StatusCode: http.StatusTooManyRequests}), true},
		{"not found", wrapped(minio.ErrorResponse{Code: "NoSuchKey", StatusCode: 404}), false},
		{"head not found", wrapped(minio.ErrorResponse{StatusCode: 404}), false},
		{"access denied", wrapped(minio.ErrorResponse{Code: "AccessDenied", StatusCode: 403}), false},
		{"missing bucket", wrapped(minio.ErrorResponse{Code: "NoSuchBucket", StatusCode: 404}), false},
		{"invalid argument", wrapped(minio.ErrorResponse{Code: "InvalidArgument", StatusCode: 0}), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := isFailure(tc.err); got != tc.want {
				t.Fatalf("isFailure(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
	if err := wrapped(minio.ErrorResponse{Code: "NoSuchKey", StatusCode: 404}); !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("NoSuchKey maps to %v, want blob.ErrNotFound", err)
	}
	if err := wrapped(minio.ErrorResponse{Code: "NoSuchBucket", StatusCode: 404}); errors.Is(err, blob.ErrNotFound) {
		t.Errorf("NoSuchBucket maps to blob.ErrNotFound; a missing bucket is a configuration error")
	}
}
