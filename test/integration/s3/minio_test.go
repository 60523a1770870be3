package s3it

import (
	"bytes"
	"context"
	"io"
	"sort"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

func minioClient(t *testing.T, g *gateway, secure bool) *minio.Client {
	t.Helper()
	c, err := minio.New(g.host, &minio.Options{
		Creds:           credentials.NewStaticV4(accessKey, secretKey, ""),
		Secure:          secure,
		Region:          region,
		Transport:       g.transport,
		TrailingHeaders: true,
		BucketLookup:    minio.BucketLookupPath,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestMinioStreaming uploads with minio-go's signed streaming bodies, with
// each trailing checksum, in one PUT and in multipart uploads.
func TestMinioStreaming(t *testing.T) {
	g := start(t, false)
	c := minioClient(t, g, false)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bucket := "minio-bucket"
	if err := c.MakeBucket(ctx, bucket, minio.MakeBucketOptions{Region: region}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		ck   minio.ChecksumType
		form string
	}{
		{"no checksum", minio.ChecksumNone, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"},
		{"crc32", minio.ChecksumCRC32, "trailer x-amz-checksum-crc32"},
		{"crc32c", minio.ChecksumCRC32C, "trailer x-amz-checksum-crc32c"},
		{"sha256", minio.ChecksumSHA256, "trailer x-amz-checksum-sha256"},
		{"crc64nvme", minio.ChecksumCRC64NVME, "trailer x-amz-checksum-crc64nvme"},
	}
	var keys []string
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, size := range []int{0, 1, 100 << 10, 12<<20 + 7} {
				data := pattern(size, byte(i))
				key := tc.name + "/" + string(rune('a'+len(keys)))
				info, err := c.PutObject(ctx, bucket, key, bytes.NewReader(data), int64(size),
					minio.PutObjectOptions{Checksum: tc.ck, PartSize: 5 << 20, ContentType: "application/x-test", UserMetadata: map[string]string{"case": tc.name}})
				if err != nil {
					t.Fatalf("PutObject of %d bytes: %v", size, err)
				}
				keys = append(keys, key)
				if size > 5<<20 && len(info.ETag) < 34 {
					t.Fatalf("multipart ETag %q", info.ETag)
				}
				obj, err := c.GetObject(ctx, bucket, key, minio.GetObjectOptions{})
				if err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(obj)
				obj.Close()
				if err != nil || !bytes.Equal(got, data) {
					t.Fatalf("GetObject of %d bytes: %d bytes back, err %v", size, len(got), err)
				}
				st, err := c.StatObject(ctx, bucket, key, minio.StatObjectOptions{})
				if err != nil || st.Size != int64(size) || st.ContentType != "application/x-test" || st.UserMetadata["Case"] != tc.name {
					t.Fatalf("StatObject %+v %v", st, err)
				}
			}
			if !g.seen.has(tc.form) {
				t.Fatalf("minio-go did not send %s: %v", tc.form, g.seen.forms)
			}
		})
	}
	var listed []string
	for o := range c.ListObjects(ctx, bucket, minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		listed = append(listed, o.Key)
	}
	sort.Strings(keys)
	if len(listed) != len(keys) {
		t.Fatalf("listed %v, want %v", listed, keys)
	}
	for i := range keys {
		if listed[i] != keys[i] {
			t.Fatalf("listed %v, want %v", listed, keys)
		}
	}
	objs := make(chan minio.ObjectInfo, len(keys))
	for _, k := range keys {
		objs <- minio.ObjectInfo{Key: k}
	}
	close(objs)
	for e := range c.RemoveObjects(ctx, bucket, objs, minio.RemoveObjectsOptions{}) {
		t.Fatalf("RemoveObjects: %v", e.Err)
	}
	if err := c.RemoveBucket(ctx, bucket); err != nil {
		t.Fatal(err)
	}
}
