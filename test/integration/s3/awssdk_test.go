package s3it

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// sdkClient is an aws-sdk-go-v2 client with the SDK's default
// configuration (LoadDefaultConfig), pointed at the gateway. With
// whenRequired the SDK sends checksums only where an operation requires
// them; by default it adds CRC32 to every upload.
func sdkClient(t *testing.T, g *gateway, whenRequired bool) *s3.Client {
	t.Helper()
	// Keep the machine's AWS settings out of the test.
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_CONFIG_FILE": filepath.Join(dir, "config"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "credentials"),
		"AWS_CA_BUNDLE": "", "AWS_PROFILE": "", "AWS_ENDPOINT_URL": "", "AWS_EC2_METADATA_DISABLED": "true",
		"AWS_REQUEST_CHECKSUM_CALCULATION": "", "AWS_RESPONSE_CHECKSUM_VALIDATION": "",
	} {
		t.Setenv(k, v)
	}
	opts := []func(*config.LoadOptions) error{
		config.WithRegion(region),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(accessKey, secretKey, "")),
		config.WithHTTPClient(g.client),
	}
	if whenRequired {
		opts = append(opts, config.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
			config.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired))
	}
	cfg, err := config.LoadDefaultConfig(context.Background(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.BaseEndpoint = aws.String(g.endpoint)
		o.UsePathStyle = true
	})
}

func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func md5Hex(b []byte) string {
	s := md5.Sum(b)
	return hex.EncodeToString(s[:])
}

func TestAWSSDK(t *testing.T) {
	for _, tt := range []struct {
		name         string
		tls          bool
		whenRequired bool
	}{
		{"http default checksums", false, false},
		{"http checksums when required", false, true},
		{"tls default checksums", true, false},
		{"tls checksums when required", true, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := start(t, tt.tls)
			c := sdkClient(t, g, tt.whenRequired)
			exerciseSDK(t, g, c)
			// The SDK's default payload forms, which the gateway must take.
			switch {
			case tt.tls && !tt.whenRequired:
				if !g.seen.has("STREAMING-UNSIGNED-PAYLOAD-TRAILER") {
					t.Errorf("the SDK did not send aws-chunked bodies with trailers over TLS: %v", g.seen.forms)
				}
			case !tt.tls && !tt.whenRequired:
				if !g.seen.has("x-amz-checksum-crc32") {
					t.Errorf("the SDK did not send x-amz-checksum-crc32 over HTTP: %v", g.seen.forms)
				}
			}
		})
	}
}

func exerciseSDK(t *testing.T, g *gateway, c *s3.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bucket := "sdk-bucket"
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &bucket}); err != nil {
		t.Fatal(err)
	}
	// us-east-1 lets the owner create its bucket again.
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &bucket}); err != nil {
		t.Fatalf("second CreateBucket: %v", err)
	}
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &bucket, ACL: types.BucketCannedACLPublicRead}); errorCode(err) != "BucketAlreadyExists" {
		t.Fatalf("CreateBucket with another ACL: %v", err)
	}
	// Small and large objects, with metadata.
	small := []byte("hello, gateway")
	put, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("dir/small.txt"), Body: bytes.NewReader(small),
		ContentType: aws.String("text/plain"), Metadata: map[string]string{"origin": "sdk"}})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(put.ETag) != `"`+md5Hex(small)+`"` {
		t.Fatalf("ETag %s", aws.ToString(put.ETag))
	}
	large := pattern(6<<20+123, 1)
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("large.bin"), Body: bytes.NewReader(large)}); err != nil {
		t.Fatal(err)
	}
	got, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("large.bin")})
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(got.Body)
	got.Body.Close()
	if err != nil || !bytes.Equal(data, large) {
		t.Fatalf("large object: %d bytes, err %v", len(data), err)
	}
	head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String("dir/small.txt")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToInt64(head.ContentLength) != int64(len(small)) || aws.ToString(head.ContentType) != "text/plain" || head.Metadata["origin"] != "sdk" {
		t.Fatalf("HeadObject %+v", head)
	}
	rg, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("large.bin"), Range: aws.String("bytes=100-199")})
	if err != nil {
		t.Fatal(err)
	}
	part, _ := io.ReadAll(rg.Body)
	rg.Body.Close()
	if !bytes.Equal(part, large[100:200]) {
		t.Fatal("ranged GET returned other bytes")
	}
	// A wrong Content-MD5 stores nothing.
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("bad"), Body: bytes.NewReader(small),
		ContentMD5: aws.String(base64.StdEncoding.EncodeToString(make([]byte, 16)))})
	if code := errorCode(err); code != "BadDigest" && code != "InvalidDigest" {
		t.Fatalf("wrong Content-MD5: %v", err)
	}
	if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String("bad")}); err == nil {
		t.Fatal("an object with a bad digest was stored")
	}
	// Copy, listing with pages.
	if _, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: &bucket, Key: aws.String("dir/copy.txt"), CopySource: aws.String(bucket + "/dir/small.txt")}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String(fmt.Sprintf("list/k%d", i)), Body: strings.NewReader("x")}); err != nil {
			t.Fatal(err)
		}
	}
	var keys []string
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: &bucket, MaxKeys: aws.Int32(2)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	if strings.Join(keys, ",") != "dir/copy.txt,dir/small.txt,large.bin,list/k0,list/k1,list/k2" {
		t.Fatalf("listed %v", keys)
	}
	delim, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &bucket, Delimiter: aws.String("/")})
	if err != nil || len(delim.CommonPrefixes) != 2 || len(delim.Contents) != 1 {
		t.Fatalf("delimiter listing %+v %v", delim, err)
	}
	// Multipart upload.
	mp, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: aws.String("mp.bin")})
	if err != nil {
		t.Fatal(err)
	}
	chunks := [][]byte{pattern(5<<20, 2), pattern(1000, 3)}
	var done []types.CompletedPart
	for i, ch := range chunks {
		up, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: &bucket, Key: aws.String("mp.bin"), UploadId: mp.UploadId,
			PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(ch)})
		if err != nil {
			t.Fatal(err)
		}
		done = append(done, types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: up.ETag, ChecksumCRC32: up.ChecksumCRC32})
	}
	parts, err := c.ListParts(ctx, &s3.ListPartsInput{Bucket: &bucket, Key: aws.String("mp.bin"), UploadId: mp.UploadId})
	if err != nil || len(parts.Parts) != 2 {
		t.Fatalf("ListParts %+v %v", parts, err)
	}
	cm, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &bucket, Key: aws.String("mp.bin"),
		UploadId: mp.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: done}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(aws.ToString(cm.ETag), `-2"`) {
		t.Fatalf("multipart ETag %s", aws.ToString(cm.ETag))
	}
	got, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("mp.bin")})
	if err != nil {
		t.Fatal(err)
	}
	data, _ = io.ReadAll(got.Body)
	got.Body.Close()
	if !bytes.Equal(data, append(append([]byte(nil), chunks[0]...), chunks[1]...)) {
		t.Fatal("multipart object has other bytes")
	}
	// An aborted upload leaves nothing.
	ab, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: aws.String("aborted")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &bucket, Key: aws.String("aborted"), UploadId: ab.UploadId}); err != nil {
		t.Fatal(err)
	}
	// Presigned GET.
	ps := s3.NewPresignClient(c)
	req, err := ps.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("dir/small.txt")}, s3.WithPresignExpires(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := g.client.Get(req.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(body, small) {
		t.Fatalf("presigned GET: %d %q", resp.StatusCode, body)
	}
	// Tagging and versioning.
	if _, err := c.PutObjectTagging(ctx, &s3.PutObjectTaggingInput{Bucket: &bucket, Key: aws.String("dir/small.txt"),
		Tagging: &types.Tagging{TagSet: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}}}); err != nil {
		t.Fatal(err)
	}
	tags, err := c.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: &bucket, Key: aws.String("dir/small.txt")})
	if err != nil || len(tags.TagSet) != 1 {
		t.Fatalf("tags %+v %v", tags, err)
	}
	if _, err := c.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: &bucket,
		VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled}}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("versioned"), Body: strings.NewReader(fmt.Sprint(i))}); err != nil {
			t.Fatal(err)
		}
	}
	vs, err := c.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: &bucket, Prefix: aws.String("versioned")})
	if err != nil || len(vs.Versions) != 2 {
		t.Fatalf("versions %+v %v", vs, err)
	}
	// Empty the bucket the way test suites do, and delete it.
	all, err := c.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: &bucket})
	if err != nil {
		t.Fatal(err)
	}
	var ids []types.ObjectIdentifier
	for _, v := range all.Versions {
		ids = append(ids, types.ObjectIdentifier{Key: v.Key, VersionId: v.VersionId})
	}
	for _, m := range all.DeleteMarkers {
		ids = append(ids, types.ObjectIdentifier{Key: m.Key, VersionId: m.VersionId})
	}
	del, err := c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: &bucket, Delete: &types.Delete{Objects: ids}})
	if err != nil || len(del.Errors) != 0 {
		t.Fatalf("DeleteObjects %+v %v", del, err)
	}
	if _, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: &bucket}); err != nil {
		t.Fatal(err)
	}
}
