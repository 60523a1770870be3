package backendtest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// VersityGWInstall is how to get the S3 server the tests use.
const VersityGWInstall = "go install github.com/versity/versitygw/cmd/versitygw@v1.8.0"

// S3Server is a versitygw S3 server over a directory of its own.
type S3Server struct {
	// Endpoint is host:port, plain HTTP.
	Endpoint  string
	AccessKey string
	SecretKey string
	Region    string
	proc      *process
	t         testing.TB
}

// StartS3 starts an S3 server on a free loopback port and waits until it
// answers. It is killed at the end of the test.
func StartS3(t testing.TB) *S3Server {
	t.Helper()
	bin := FindBinary(t, "versitygw", VersityGWInstall)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		t.Fatal(err)
	}
	s := &S3Server{
		Endpoint:  fmt.Sprintf("127.0.0.1:%d", FreePorts(t, 1)[0]),
		AccessKey: "cfstestaccess",
		SecretKey: fmt.Sprintf("cfstestsecret%x", rand.Uint64()),
		Region:    "us-east-1",
		t:         t,
	}
	s.proc = &process{
		name: "versitygw",
		bin:  bin,
		args: []string{
			"--port", s.Endpoint,
			"--access", s.AccessKey,
			"--secret", s.SecretKey,
			"--region", s.Region,
			"--quiet",
			"posix", data,
		},
		logPath: filepath.Join(dir, "versitygw.log"),
	}
	s.proc.start(t)
	t.Cleanup(s.proc.kill)
	s.waitReady()
	return s
}

// Stop kills the server (SIGKILL) and waits until it has exited.
func (s *S3Server) Stop() { s.proc.kill() }

// Start starts a stopped server again on the same port and directory and
// waits until it answers.
func (s *S3Server) Start() {
	s.t.Helper()
	s.proc.start(s.t)
	s.waitReady()
}

func (s *S3Server) waitReady() {
	s.t.Helper()
	waitFor(s.t, "versitygw answering on "+s.Endpoint, 30*time.Second, s.proc, func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.Endpoint+"/", nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	})
}

// Client returns a minio client of the server's root account.
func (s *S3Server) Client() *minio.Client {
	s.t.Helper()
	c, err := minio.New(s.Endpoint, &minio.Options{
		Creds:  credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""),
		Region: s.Region,
	})
	if err != nil {
		s.t.Fatal(err)
	}
	return c
}

// NewBucket creates a bucket with a fresh name and returns the name.
func (s *S3Server) NewBucket() string {
	s.t.Helper()
	name := fmt.Sprintf("cfs-%x", rand.Uint64())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Client().MakeBucket(ctx, name, minio.MakeBucketOptions{Region: s.Region}); err != nil {
		s.t.Fatalf("creating bucket %s on %s: %v", name, s.Endpoint, err)
	}
	return name
}
