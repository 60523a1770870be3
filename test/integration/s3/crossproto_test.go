package s3it

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/claudefs/cfs-gateway/internal/core"
)

// TestCrossProtocol checks, with a real client, that an S3 object is a
// file of the core with the same bytes, owner and mtime, and that a file
// made through the core (as NFS or SMB make them) is listed and read over
// S3.
func TestCrossProtocol(t *testing.T) {
	g := start(t, false)
	c := sdkClient(t, g, false)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	bucket := "shared"
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &bucket}); err != nil {
		t.Fatal(err)
	}
	data := pattern(300000, 9)
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("from-s3/obj.bin"), Body: bytes.NewReader(data)}); err != nil {
		t.Fatal(err)
	}
	head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String("from-s3/obj.bin")})
	if err != nil {
		t.Fatal(err)
	}
	// The S3 root is "/": the bucket is /shared.
	lookup := func(dir core.Ino, name string) core.Attr {
		t.Helper()
		a, err := g.fs.Lookup(ctx, &core.Root, dir, name)
		if err != nil {
			t.Fatalf("lookup %s: %v", name, err)
		}
		return a
	}
	b := lookup(core.RootIno, bucket)
	f := lookup(lookup(b.Ino, "from-s3").Ino, "obj.bin")
	buf := make([]byte, len(data)+1)
	n, _, err := g.fs.Read(ctx, &core.Root, f.Ino, 0, buf)
	if err != nil || !bytes.Equal(buf[:n], data) {
		t.Fatalf("the core reads %d bytes, err %v", n, err)
	}
	if f.UID != aliceUID || b.UID != aliceUID {
		t.Fatalf("owners: file %d, bucket %d, want %d", f.UID, b.UID, aliceUID)
	}
	if !f.Mtime.Truncate(time.Second).Equal(aws.ToTime(head.LastModified)) {
		t.Fatalf("mtime %v, Last-Modified %v", f.Mtime, aws.ToTime(head.LastModified))
	}
	// A file and a directory made through the core.
	alice := core.Identity{UID: aliceUID, GID: aliceUID}
	d, err := g.fs.Mkdir(ctx, &alice, b.Ino, "from-nfs", 0o755)
	if err != nil {
		t.Fatal(err)
	}
	nf, _, err := g.fs.Create(ctx, &alice, d.Ino, "notes.txt", 0o644, core.CreateGuarded, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.fs.Write(ctx, &alice, nf.Ino, 0, []byte("written over nfs"), core.FileSync); err != nil {
		t.Fatal(err)
	}
	list, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &bucket})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range list.Contents {
		keys = append(keys, aws.ToString(o.Key))
	}
	if len(keys) != 2 || keys[0] != "from-nfs/notes.txt" || keys[1] != "from-s3/obj.bin" {
		t.Fatalf("listed %v", keys)
	}
	got, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("from-nfs/notes.txt")})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(got.Body)
	got.Body.Close()
	if string(body) != "written over nfs" || aws.ToString(got.ContentType) != "application/octet-stream" {
		t.Fatalf("GET of a core file: %q %s", body, aws.ToString(got.ContentType))
	}
	// Deleting the last object keeps the directory the core user made.
	if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &bucket, Key: aws.String("from-nfs/notes.txt")}); err != nil {
		t.Fatal(err)
	}
	lookup(b.Ino, "from-nfs")
	// A bucket the gateway never made: a directory of the S3 root.
	if _, err := g.fs.Mkdir(ctx, &alice, core.RootIno, "made-by-nfs", 0o755); err == nil {
		t.Fatal("an ordinary user made a directory in a root-owned root")
	}
	mk, err := g.fs.Mkdir(ctx, &core.Root, core.RootIno, "made-by-nfs", 0o777)
	if err != nil {
		t.Fatal(err)
	}
	uid, gid := uint32(aliceUID), uint32(aliceUID)
	if _, err := g.fs.SetAttr(ctx, &core.Root, mk.Ino, core.SetAttr{UID: &uid, GID: &gid}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("made-by-nfs"), Key: aws.String("k"), Body: bytes.NewReader([]byte("v"))}); err != nil {
		t.Fatal(err)
	}
	resp, err := g.client.Get(g.endpoint + "/made-by-nfs/k")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("anonymous GET without a policy: %d", resp.StatusCode)
	}
}
