package sigv4

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// recorder keeps the outcome the test server reported for the last
// request a client made.
type recorder struct {
	base  http.RoundTripper
	mu    sync.Mutex
	last  outcome
	seen  http.Header // the request headers of the last request
	proto string
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.base.RoundTrip(req)
	if err == nil {
		var o outcome
		if json.Unmarshal([]byte(resp.Header.Get("X-Test-Outcome")), &o) == nil {
			r.mu.Lock()
			r.last, r.seen, r.proto = o, req.Header.Clone(), resp.Proto
			r.mu.Unlock()
		}
	}
	return resp, err
}

// TestAWSSDKClient drives the real aws-sdk-go-v2 S3 client, with its
// default checksum behaviour and with checksums only when required, over
// HTTP and TLS: every payload form it chooses must verify.
func TestAWSSDKClient(t *testing.T) {
	data := pattern(300000)
	for _, tls := range []string{"http", "tls", "h2"} {
		for _, calc := range []aws.RequestChecksumCalculation{aws.RequestChecksumCalculationWhenSupported, aws.RequestChecksumCalculationWhenRequired} {
			for _, alg := range []types.ChecksumAlgorithm{"", types.ChecksumAlgorithmCrc32c, types.ChecksumAlgorithmCrc64nvme, types.ChecksumAlgorithmSha256} {
				name := tls + map[aws.RequestChecksumCalculation]string{1: " checksums on", 2: " checksums when required"}[calc] + " alg " + string(alg)
				t.Run(name, func(t *testing.T) {
					v := newTestVerifier(nil)
					srv := startServer(t, v, tls == "tls")
					if tls == "h2" {
						srv = startServerHTTP2(t, v)
					}
					rec := &recorder{base: srv.Client().Transport}
					client := s3.New(s3.Options{
						Region:       testRegion,
						BaseEndpoint: aws.String(srv.URL),
						UsePathStyle: true,
						Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
							return aws.Credentials{AccessKeyID: testAccessKey, SecretAccessKey: testSecret}, nil
						}),
						HTTPClient:                 &http.Client{Transport: rec},
						RetryMaxAttempts:           1,
						RequestChecksumCalculation: calc,
					})
					in := &s3.PutObjectInput{Bucket: aws.String("bucket"), Key: aws.String("dir/object name+1"), Body: bytes.NewReader(data)}
					if alg != "" {
						in.ChecksumAlgorithm = alg
					}
					if _, err := client.PutObject(context.Background(), in); err != nil {
						t.Fatalf("PutObject: %v", err)
					}
					o := rec.last
					if tls == "h2" && rec.proto != "HTTP/2.0" {
						t.Fatalf("the client spoke %s", rec.proto)
					}
					o.check(t, name, "", "")
					if !o.sameBody(data) || o.AccessKey != testAccessKey {
						t.Fatalf("decoded %d bytes for %q (sent with x-amz-content-sha256 %q)", o.BodyLen, o.AccessKey, rec.seen.Get("X-Amz-Content-Sha256"))
					}
					if alg != "" && o.Checksums[string(alg)] != checksumB64(ChecksumAlgorithm(alg), data) {
						t.Errorf("Checksums = %v (x-amz-content-sha256 %q)", o.Checksums, rec.seen.Get("X-Amz-Content-Sha256"))
					}
					t.Logf("x-amz-content-sha256 %q, checksums %v", rec.seen.Get("X-Amz-Content-Sha256"), o.Checksums)

					// a multipart part goes the same way
					up, err := client.UploadPart(context.Background(), &s3.UploadPartInput{Bucket: aws.String("bucket"), Key: aws.String("k"),
						UploadId: aws.String("u1"), PartNumber: aws.Int32(1), Body: bytes.NewReader(data[:70000])})
					if err != nil || rec.last.VerifyErr != "" || rec.last.ReadErr != "" || rec.last.BodyLen != 70000 {
						t.Fatalf("UploadPart: %v; verify %q read %q, %d bytes", err, rec.last.VerifyErr, rec.last.ReadErr, rec.last.BodyLen)
					}
					_ = up
				})
			}
		}
	}
}
