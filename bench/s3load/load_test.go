package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/claudefs/cfs-gateway/internal/core"
	"github.com/claudefs/cfs-gateway/internal/core/coretest"
	"github.com/claudefs/cfs-gateway/internal/protocol/s3"
)

func TestParseOptions(t *testing.T) {
	creds := []string{"-access", "a", "-secret", "s"}
	for _, tt := range []struct {
		name string
		args []string
		ok   bool
	}{
		{"defaults", creds, true},
		{"no credentials", nil, false},
		{"zero concurrency", append([]string{"-concurrency", "0"}, creds...), false},
		{"tiny objects", append([]string{"-small-size", "8"}, creds...), false},
		{"page too large", append([]string{"-page", "1001"}, creds...), false},
		{"too many keys", append([]string{"-keys", "100000001"}, creds...), false},
		{"zero duration", append([]string{"-duration", "0s"}, creds...), false},
		{"stray argument", append(creds, "extra"), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseOptions(tt.args, io.Discard)
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok %t", err, tt.ok)
			}
			if tt.ok && (o.concurrency != 16 || o.largeSize != 64<<20 || o.smallSize != 4<<10 || o.keys != 10_000 || o.pageSize != 1000) {
				t.Errorf("defaults = %+v", o)
			}
		})
	}
}

func TestObjectData(t *testing.T) {
	base := newBase(100, 9)
	if !bytes.Equal(base, newBase(100, 9)) {
		t.Fatal("the same seed gave different bodies")
	}
	a, b := object(base, "large", 1), object(base, "large", 2)
	whole := func(d objectData) []byte {
		got, err := io.ReadAll(d.reader())
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	wa, wb := whole(a), whole(b)
	if len(wa) != 100 || bytes.Equal(wa, wb) || !bytes.Equal(wa[stampSize:], base[stampSize:]) {
		t.Fatalf("objects 1 and 2: %x, %x", wa, wb)
	}
	for _, tt := range []struct {
		name string
		p    []byte
		off  int64
		want bool
	}{
		{"whole", wa, 0, true},
		{"inside the stamp", wa[3:9], 3, true},
		{"across the stamp", wa[10:40], 10, true},
		{"after the stamp", wa[50:], 50, true},
		{"other object", wb, 0, false},
		{"shifted", wa[11:41], 10, false},
		{"past the end", append(wa[90:], 0), 90, false},
		{"negative offset", wa[:1], -1, false},
	} {
		if got := a.matches(tt.p, tt.off); got != tt.want {
			t.Errorf("%s: matches = %t, want %t", tt.name, got, tt.want)
		}
	}
}

func TestReadVerified(t *testing.T) {
	d := object(newBase(5000, 3), "small", 7)
	good, _ := io.ReadAll(d.reader())
	corrupt := bytes.Clone(good)
	corrupt[4000] ^= 1
	for _, tt := range []struct {
		name string
		body io.Reader
		want string // part of the error, "" for none
	}{
		{"same bytes", bytes.NewReader(good), ""},
		{"one byte at a time", iotest.OneByteReader(bytes.NewReader(good)), ""},
		{"short", bytes.NewReader(good[:4999]), "has 4999 bytes"},
		{"long", bytes.NewReader(append(bytes.Clone(good), 1)), "longer"},
		{"corrupt", bytes.NewReader(corrupt), "differs"},
		{"broken connection", io.MultiReader(bytes.NewReader(good[:100]), iotest.ErrReader(io.ErrUnexpectedEOF)), "after 100 bytes"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n, err := readVerified(tt.body, d, make([]byte, 1024))
			if tt.want == "" {
				if err != nil || n != 5000 {
					t.Fatalf("= %d, %v", n, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func FuzzReadVerified(f *testing.F) {
	d := object(newBase(64, 4), "small", 1)
	good, _ := io.ReadAll(d.reader())
	f.Add(good)
	f.Add(good[:10])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, body []byte) {
		_, err := readVerified(bytes.NewReader(body), d, make([]byte, 7))
		if (err == nil) != bytes.Equal(body, good) {
			t.Fatalf("body %x: err = %v", body, err)
		}
	})
}

func TestPayloadForm(t *testing.T) {
	for _, tt := range []struct {
		name string
		h    http.Header
		want string
	}{
		{"signed with crc32", http.Header{"X-Amz-Content-Sha256": {strings.Repeat("a", 64)}, "X-Amz-Checksum-Crc32": {"x"}}, "signed+crc32"},
		{"unsigned", http.Header{"X-Amz-Content-Sha256": {"UNSIGNED-PAYLOAD"}}, "unsigned-payload"},
		{"trailer", http.Header{"X-Amz-Content-Sha256": {"STREAMING-UNSIGNED-PAYLOAD-TRAILER"}, "X-Amz-Trailer": {"x-amz-checksum-crc32"}},
			"streaming-unsigned-payload-trailer+trailer-crc32"},
		{"md5 only", http.Header{"Content-Md5": {"x"}}, "no-sha256+md5"},
	} {
		if got := payloadForm(tt.h); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}

// startServer runs the gateway's S3 server on a fresh core on loopback
// and returns its endpoint and a user's credentials.
func startServer(t *testing.T) (endpoint, access, secret string) {
	t.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	dir := t.TempDir()
	fsys := coretest.OpenEmbedded(t, dir, core.Options{Logger: quiet})
	access, secret = "AKIALOADTEST00000000", "load/test/secret"
	err := fsys.AddUser(context.Background(), core.User{Name: "load", UID: 1000, GID: 1000,
		AccessKeys: []core.AccessKey{{ID: access, Secret: secret}}}, "")
	if err != nil {
		t.Fatal(err)
	}
	srv := s3.New(s3.Config{FS: fsys, Region: "us-east-1", Logger: quiet})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Error(err)
		}
		if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Error(err)
		}
	})
	return "http://" + l.Addr().String(), access, secret
}

// TestOps runs every operation, in the order the comparison script does,
// against an in-process server: each must succeed and print its figures,
// and the ones that need earlier data must refuse to run without it.
func TestOps(t *testing.T) {
	endpoint, access, secret := startServer(t)
	common := []string{"-endpoint", endpoint, "-access", access, "-secret", secret, "-server", "test",
		"-large-size", "3m", "-large-count", "3", "-large-concurrency", "2", "-concurrency", "4",
		"-duration", "300ms", "-keys", "250", "-page", "100"}
	for _, tt := range []struct {
		name    string
		args    []string
		want    string // regexp of the output, "" when the run must fail
		wantErr string
	}{
		{"create an empty bucket", []string{"-op", "create-bucket", "-bucket", "empty"}, `^$`, ""},
		{"get-large of missing objects", []string{"-op", "get-large", "-bucket", "empty"}, "", "NoSuchKey"},
		{"get-small of nothing", []string{"-op", "get-small", "-bucket", "empty"}, "", "run put-small"},
		{"create bucket", []string{"-op", "create-bucket"}, `^$`, ""},
		{"create bucket again", []string{"-op", "create-bucket"}, `^$`, ""},
		{"put-large", []string{"-op", "put-large"},
			`^server=test op=put-large size=3145728 concurrency=2 ops=3 errors=0 secs=\S+ ops_s=\S+ MiBps=[0-9.]+ p50_ms=\S+ p99_ms=\S+ conns=[12] payload=\S+\n$`, ""},
		{"get-large", []string{"-op", "get-large"},
			`^server=test op=get-large size=3145728 concurrency=2 ops=3 errors=0 .* conns=[12] resp_checksums=\d+/3\n$`, ""},
		{"put-small", []string{"-op", "put-small"},
			`^server=test op=put-small size=4096 concurrency=4 ops=[1-9]\d* errors=0 .* p50_ms=[0-9.]+ p99_ms=[0-9.]+ conns=[1-9] payload=\S+\n$`, ""},
		{"put-small bounded by count", []string{"-op", "put-small", "-count", "5", "-duration", "1m"},
			`^server=test op=put-small size=4096 concurrency=4 ops=5 errors=0 `, ""},
		{"get-small", []string{"-op", "get-small"},
			`^server=test op=get-small size=4096 concurrency=4 ops=[1-9]\d* errors=0 .* objects=[1-9]\d* resp_checksums=\d+/\d+\n$`, ""},
		{"create list bucket", []string{"-op", "create-bucket", "-bucket", "walk"}, `^$`, ""},
		{"list", []string{"-op", "list", "-bucket", "walk"},
			`^server=test op=list-fill size=4096 concurrency=4 ops=250 errors=0 .*\nserver=test op=list keys=250 pages=3 ms=[0-9.]+ wait_ms=[0-9.]+ ok=true\n$`, ""},
		{"list of a bucket not empty", []string{"-op", "list", "-bucket", "walk"}, "", "not empty"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := run(context.Background(), append(append([]string{}, common...), tt.args...), &out, io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q; output %q", err, tt.wantErr, out.String())
				}
				return
			}
			if err != nil {
				t.Fatalf("%v; output %q", err, out.String())
			}
			if !regexp.MustCompile(tt.want).MatchString(out.String()) {
				t.Errorf("output %q does not match %s", out.String(), tt.want)
			}
		})
	}
}
