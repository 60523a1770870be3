package s3

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"

	"github.com/claudefs/cfs-gateway/internal/core"
	"github.com/claudefs/cfs-gateway/internal/core/quota"
	"github.com/claudefs/cfs-gateway/internal/protocol/s3/sigv4"
)

func TestBuckets(t *testing.T) {
	e := newEnv(t, Config{})
	steps := []struct {
		name   string
		c      call
		status int
		code   string
	}{
		{"create", call{method: "PUT", path: "/photos", user: "alice"}, 200, ""},
		{"create again", call{method: "PUT", path: "/photos", user: "alice"}, 200, ""},
		{"create again, other ACL", call{method: "PUT", path: "/photos", user: "alice", header: map[string]string{"X-Amz-Acl": "public-read"}}, 409, "BucketAlreadyExists"},
		{"create by another", call{method: "PUT", path: "/photos", user: "bob"}, 409, "BucketAlreadyExists"},
		{"bad name", call{method: "PUT", path: "/Bad_Name", user: "alice"}, 400, "InvalidBucketName"},
		{"ip name", call{method: "PUT", path: "/192.168.5.4", user: "alice"}, 400, "InvalidBucketName"},
		{"anonymous create", call{method: "PUT", path: "/anon"}, 403, "AccessDenied"},
		{"head", call{method: "HEAD", path: "/photos", user: "alice"}, 200, ""},
		{"head missing", call{method: "HEAD", path: "/nothing", user: "alice"}, 404, "NoSuchBucket"},
		{"head hidden area", call{method: "HEAD", path: "/.cfs-s3", user: "alice"}, 404, "NoSuchBucket"},
		{"put object", call{method: "PUT", path: "/photos/a", user: "alice", body: "x"}, 200, ""},
		{"delete non-empty", call{method: "DELETE", path: "/photos", user: "alice"}, 409, "BucketNotEmpty"},
		{"delete by another", call{method: "DELETE", path: "/photos", user: "bob"}, 403, "AccessDenied"},
		{"delete object", call{method: "DELETE", path: "/photos/a", user: "alice"}, 204, ""},
		{"delete", call{method: "DELETE", path: "/photos", user: "alice"}, 204, ""},
		{"delete missing", call{method: "DELETE", path: "/photos", user: "alice"}, 404, "NoSuchBucket"},
		{"bad location", call{method: "PUT", path: "/located", user: "alice", body: "<CreateBucketConfiguration><LocationConstraint>mars-1</LocationConstraint></CreateBucketConfiguration>"}, 400, "IllegalLocationConstraintException"},
		{"malformed config", call{method: "PUT", path: "/located", user: "alice", body: "<CreateBucketConfiguration>"}, 400, "MalformedXML"},
		{"bad signature", call{method: "GET", path: "/", user: "bad"}, 403, "SignatureDoesNotMatch"},
		{"unknown key", call{method: "GET", path: "/", user: "nobody"}, 403, "InvalidAccessKeyId"},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			e.t = t
			if st.code == "" {
				e.ok(st.c, st.status)
			} else {
				e.fails(st.c, st.code, st.status)
			}
		})
	}
}

// TestCreateExistingBucketElsewhere checks the answer outside us-east-1.
func TestCreateExistingBucketElsewhere(t *testing.T) {
	e := newEnv(t, Config{Region: "eu-west-1"})
	e.ok(call{method: "PUT", path: "/photos", user: "alice"}, 200)
	e.fails(call{method: "PUT", path: "/photos", user: "alice"}, "BucketAlreadyOwnedByYou", 409)
}

func TestListBucketsShowsOwnBuckets(t *testing.T) {
	e := newEnv(t, Config{})
	e.ok(call{method: "PUT", path: "/alice-1", user: "alice"}, 200)
	e.ok(call{method: "PUT", path: "/bob-1", user: "bob"}, 200)
	e.ok(call{method: "PUT", path: "/alice-2", user: "alice"}, 200)
	var res struct {
		Owner   struct{ ID string }
		Buckets []struct{ Name string } `xml:"Buckets>Bucket"`
	}
	decodeXML(t, e.ok(call{method: "GET", path: "/", user: "alice"}, 200), &res)
	var names []string
	for _, b := range res.Buckets {
		names = append(names, b.Name)
	}
	if strings.Join(names, ",") != "alice-1,alice-2" || res.Owner.ID != "alice" {
		t.Fatalf("alice lists %v as %q", names, res.Owner.ID)
	}
}

func TestObjects(t *testing.T) {
	e := newEnv(t, Config{})
	e.ok(call{method: "PUT", path: "/bkt", user: "alice"}, 200)
	body := "hello, world"
	sum := md5.Sum([]byte(body))
	etag := `"` + hex.EncodeToString(sum[:]) + `"`
	w := e.ok(call{method: "PUT", path: "/bkt/dir/sub/hello.txt", user: "alice", body: body, header: map[string]string{
		"Content-Type": "text/plain", "X-Amz-Meta-Color": "blue", "Cache-Control": "no-cache", "X-Amz-Tagging": "a=1&b=2"}}, 200)
	if got := w.Header().Get("ETag"); got != etag {
		t.Fatalf("PUT ETag %s, want %s", got, etag)
	}
	w = e.ok(call{method: "GET", path: "/bkt/dir/sub/hello.txt", user: "alice"}, 200)
	h := w.Header()
	if w.Body.String() != body || h.Get("ETag") != etag || h.Get("Content-Type") != "text/plain" ||
		h["x-amz-meta-color"][0] != "blue" || h.Get("Cache-Control") != "no-cache" || h.Get("X-Amz-Tagging-Count") != "2" {
		t.Fatalf("GET: body %q headers %v", w.Body.String(), h)
	}
	tests := []struct {
		name    string
		c       call
		status  int
		body    string
		code    string
		headers map[string]string
	}{
		{"head", call{method: "HEAD", path: "/bkt/dir/sub/hello.txt", user: "alice"}, 200, "", "", map[string]string{"Content-Length": "12", "ETag": etag}},
		{"range", call{method: "GET", path: "/bkt/dir/sub/hello.txt", user: "alice", header: map[string]string{"Range": "bytes=7-11"}}, 206, "world", "", map[string]string{"Content-Range": "bytes 7-11/12"}},
		{"open range", call{method: "GET", path: "/bkt/dir/sub/hello.txt", user: "alice", header: map[string]string{"Range": "bytes=7-"}}, 206, "world", "", nil},
		{"suffix range", call{method: "GET", path: "/bkt/dir/sub/hello.txt", user: "alice", header: map[string]string{"Range": "bytes=-5"}}, 206, "world", "", nil},
		{"range past end", call{method: "GET", path: "/bkt/dir/sub/hello.txt", user: "alice", header: map[string]string{"Range": "bytes=100-200"}}, 416, "", "InvalidRange", nil},
		{"multi range is whole", call{method: "GET", path: "/bkt/dir/sub/hello.txt", user: "alice", header: map[string]string{"Range": "bytes=0-1,3-4"}}, 200, body, "", nil},
		{"malformed range is whole", call{method: "GET", path: "/bkt/dir/sub/hello.txt", user: "alice", header: map[string]string{"Range": "bytes=5-2"}}, 200, body, "", nil},
		{"if-match ok", call{method: "GET", path: "/bkt/dir/sub/hello.txt", user: "alice", header: map[string]string{"If-Match": etag}}, 200, body, "", nil},
		{"if-match fails", call{method: "GET", path: "/bkt/dir/sub/hello.txt", user: "alice", header: map[string]string{"If-Match": `"nope"`}}, 412, "", "PreconditionFailed", nil},
		{"if-none-match", call{method: "GET", path: "/bkt/dir/sub/hello.txt", user: "alice", header: map[string]string{"If-None-Match": etag}}, 304, "", "", nil},
		{"if-modified-since future", call{method: "GET", path: "/bkt/dir/sub/hello.txt", user: "alice", header: map[string]string{"If-Modified-Since": "Fri, 01 Jan 2100 00:00:00 GMT"}}, 304, "", "", nil},
		{"if-unmodified-since past", call{method: "GET", path: "/bkt/dir/sub/hello.txt", user: "alice", header: map[string]string{"If-Unmodified-Since": "Thu, 01 Jan 1970 00:00:00 GMT"}}, 412, "", "PreconditionFailed", nil},
		{"response override", call{method: "GET", path: "/bkt/dir/sub/hello.txt?response-content-type=x/y", user: "alice"}, 200, body, "", map[string]string{"Content-Type": "x/y"}},
		{"missing key", call{method: "GET", path: "/bkt/dir/none", user: "alice"}, 404, "", "NoSuchKey", nil},
		{"key under a file", call{method: "GET", path: "/bkt/dir/sub/hello.txt/x", user: "alice"}, 404, "", "NoSuchKey", nil},
		{"directory is no key", call{method: "GET", path: "/bkt/dir", user: "alice"}, 404, "", "NoSuchKey", nil},
		{"implicit dir is no marker", call{method: "GET", path: "/bkt/dir/", user: "alice"}, 404, "", "NoSuchKey", nil},
		{"missing bucket", call{method: "GET", path: "/nobkt/x", user: "alice"}, 404, "", "NoSuchBucket", nil},
		{"anonymous read of private", call{method: "GET", path: "/bkt/dir/sub/hello.txt"}, 403, "", "AccessDenied", nil},
		{"other user, private bucket", call{method: "GET", path: "/bkt/dir/sub/hello.txt", user: "bob"}, 403, "", "AccessDenied", nil},
		{"put under a file", call{method: "PUT", path: "/bkt/dir/sub/hello.txt/x", user: "alice", body: "y"}, 409, "", "KeyConflict", nil},
		{"put over a directory", call{method: "PUT", path: "/bkt/dir/sub", user: "alice", body: "y"}, 409, "", "KeyConflict", nil},
		{"marker with a body", call{method: "PUT", path: "/bkt/m/", user: "alice", body: "y"}, 200, "", "", nil},
		{"marker body", call{method: "GET", path: "/bkt/m/", user: "alice"}, 200, "y", "", nil},
		{"marker with too much body", call{method: "PUT", path: "/bkt/m2/", user: "alice", body: strings.Repeat("y", 65537)}, 400, "", "InvalidArgument", nil},
		{"empty component", call{method: "PUT", path: "/bkt/a//b", user: "alice", body: "y"}, 400, "", "InvalidArgument", nil},
		{"dot component", call{method: "PUT", path: "/bkt/a/../b", user: "alice", body: "y"}, 400, "", "InvalidArgument", nil},
		{"long component", call{method: "PUT", path: "/bkt/" + strings.Repeat("n", 256), user: "alice", body: "y"}, 400, "", "KeyTooLongError", nil},
		{"long key", call{method: "PUT", path: "/bkt/" + strings.Repeat("n/", 600), user: "alice", body: "y"}, 400, "", "KeyTooLongError", nil},
		{"if-none-match star on existing", call{method: "PUT", path: "/bkt/dir/sub/hello.txt", user: "alice", body: "z", header: map[string]string{"If-None-Match": "*"}}, 412, "", "PreconditionFailed", nil},
		{"if-match on missing", call{method: "PUT", path: "/bkt/new", user: "alice", body: "z", header: map[string]string{"If-Match": etag}}, 404, "", "NoSuchKey", nil},
		{"bad tagging header", call{method: "PUT", path: "/bkt/t", user: "alice", body: "z", header: map[string]string{"X-Amz-Tagging": "a=1&a=2"}}, 400, "", "InvalidTag", nil},
		{"bad storage class", call{method: "PUT", path: "/bkt/t", user: "alice", body: "z", header: map[string]string{"X-Amz-Storage-Class": "CHEAP"}}, 400, "", "InvalidStorageClass", nil},
		{"delete missing is fine", call{method: "DELETE", path: "/bkt/never", user: "alice"}, 204, "", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.t = t
			if tt.code != "" {
				e.fails(tt.c, tt.code, tt.status)
				return
			}
			w := e.ok(tt.c, tt.status)
			if tt.c.method == "GET" && tt.status != 304 && w.Body.String() != tt.body {
				t.Fatalf("body %q, want %q", w.Body.String(), tt.body)
			}
			for k, v := range tt.headers {
				if got := w.Header().Get(k); got != v {
					t.Fatalf("header %s = %q, want %q", k, got, v)
				}
			}
		})
	}
}

// TestImplicitDirectories checks that directories made for keys go with
// their last object, and that directories made by other protocols stay.
func TestImplicitDirectories(t *testing.T) {
	e := newEnv(t, Config{})
	ctx := context.Background()
	e.ok(call{method: "PUT", path: "/bkt", user: "alice"}, 200)
	e.put("alice", "/bkt/x/y/z", "1")
	e.put("alice", "/bkt/x/w", "2")
	root, _ := e.s.root(ctx)
	b, _ := e.fs.Lookup(ctx, &core.Root, root, "bkt")
	// A directory made by another protocol, holding an S3 object.
	alice := core.Identity{UID: 1000, GID: 1000}
	nfs, err := e.fs.Mkdir(ctx, &alice, b.Ino, "nfsdir", 0o755)
	if err != nil {
		t.Fatal(err)
	}
	e.put("alice", "/bkt/nfsdir/o", "3")
	for _, k := range []string{"x/y/z", "x/w", "nfsdir/o"} {
		e.ok(call{method: "DELETE", path: "/bkt/" + k, user: "alice"}, 204)
	}
	if _, err := e.fs.Lookup(ctx, &core.Root, b.Ino, "x"); err == nil {
		t.Fatal("implicit directory x stayed after its last object went")
	}
	if a, err := e.fs.Lookup(ctx, &core.Root, b.Ino, "nfsdir"); err != nil || a.Ino != nfs.Ino {
		t.Fatalf("the directory made by another protocol went: %v", err)
	}
	// A directory marker is explicit: it stays when its keys go, and is a key.
	e.ok(call{method: "PUT", path: "/bkt/m/", user: "alice"}, 200)
	e.put("alice", "/bkt/m/k", "4")
	e.ok(call{method: "DELETE", path: "/bkt/m/k", user: "alice"}, 204)
	e.ok(call{method: "HEAD", path: "/bkt/m/", user: "alice"}, 200)
	e.ok(call{method: "DELETE", path: "/bkt/m/", user: "alice"}, 204)
	e.fails(call{method: "HEAD", path: "/bkt/m/", user: "alice"}, "", 404)
}

// TestCrossProtocol checks that an S3 object is a core file with the same
// bytes, owner and mtime, and that a file made through the core is listed
// and read over S3.
func TestCrossProtocol(t *testing.T) {
	e := newEnv(t, Config{})
	ctx := context.Background()
	e.ok(call{method: "PUT", path: "/bkt", user: "alice"}, 200)
	e.put("alice", "/bkt/docs/report.txt", "quarterly numbers")
	root, _ := e.s.root(ctx)
	b, _ := e.fs.Lookup(ctx, &core.Root, root, "bkt")
	docs, err := e.fs.Lookup(ctx, &core.Root, b.Ino, "docs")
	if err != nil {
		t.Fatal(err)
	}
	f, err := e.fs.Lookup(ctx, &core.Root, docs.Ino, "report.txt")
	if err != nil {
		t.Fatal(err)
	}
	p := make([]byte, 100)
	n, _, err := e.fs.Read(ctx, &core.Root, f.Ino, 0, p)
	if err != nil || string(p[:n]) != "quarterly numbers" || f.UID != 1000 || f.GID != 1000 {
		t.Fatalf("core sees %q uid %d gid %d err %v", p[:n], f.UID, f.GID, err)
	}
	w := e.ok(call{method: "HEAD", path: "/bkt/docs/report.txt", user: "alice"}, 200)
	if lm := w.Header().Get("Last-Modified"); lm != f.Mtime.UTC().Format("Mon, 02 Jan 2006 15:04:05 GMT") {
		t.Fatalf("Last-Modified %s, core mtime %v", lm, f.Mtime)
	}
	// A file written by another protocol.
	alice := core.Identity{UID: 1000, GID: 1000}
	nf, _, err := e.fs.Create(ctx, &alice, docs.Ino, "notes.txt", 0o644, core.CreateGuarded, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.fs.Write(ctx, &alice, nf.Ino, 0, []byte("from nfs"), core.FileSync); err != nil {
		t.Fatal(err)
	}
	if got := e.get("alice", "/bkt/docs/notes.txt"); got != "from nfs" {
		t.Fatalf("S3 reads %q", got)
	}
	w = e.ok(call{method: "HEAD", path: "/bkt/docs/notes.txt", user: "alice"}, 200)
	etag1 := w.Header().Get("ETag")
	if w.Header().Get("Content-Type") != "application/octet-stream" || len(etag1) != 34 {
		t.Fatalf("headers of a foreign file: %v", w.Header())
	}
	var res listResultXML
	decodeXML(t, e.ok(call{method: "GET", path: "/bkt?list-type=2&prefix=docs/", user: "alice"}, 200), &res)
	if len(res.Contents) != 2 || res.Contents[0].Key != "docs/notes.txt" || res.Contents[0].ETag != etag1 {
		t.Fatalf("listing %+v", res.Contents)
	}
	// Changing it through the core changes its ETag; an S3 object changed
	// through the core loses its MD5 ETag too.
	if _, err := e.fs.Write(ctx, &alice, nf.Ino, 0, []byte("FROM"), core.FileSync); err != nil {
		t.Fatal(err)
	}
	if etag2 := e.ok(call{method: "HEAD", path: "/bkt/docs/notes.txt", user: "alice"}, 200).Header().Get("ETag"); etag2 == etag1 {
		t.Fatal("the ETag did not change with the data")
	}
	before := e.ok(call{method: "HEAD", path: "/bkt/docs/report.txt", user: "alice"}, 200).Header().Get("ETag")
	if _, err := e.fs.Write(ctx, &alice, f.Ino, 0, []byte("Q"), core.FileSync); err != nil {
		t.Fatal(err)
	}
	if after := e.ok(call{method: "HEAD", path: "/bkt/docs/report.txt", user: "alice"}, 200).Header().Get("ETag"); after == before {
		t.Fatal("the stored ETag survived a change by another protocol")
	}
}

func TestQuotaExceeded(t *testing.T) {
	e := newEnv(t, Config{})
	ctx := context.Background()
	e.ok(call{method: "PUT", path: "/bkt", user: "alice"}, 200)
	if err := e.fs.SetQuota(ctx, false, 1000, quota.Limits{BytesHard: 1000, BytesSoft: 1000}); err != nil {
		t.Fatal(err)
	}
	e.fails(call{method: "PUT", path: "/bkt/big", user: "alice", body: strings.Repeat("x", 5000)}, "QuotaExceeded", 403)
	e.fails(call{method: "GET", path: "/bkt/big", user: "alice"}, "NoSuchKey", 404)
}

func TestAnonymousAccess(t *testing.T) {
	e := newEnv(t, Config{})
	e.ok(call{method: "PUT", path: "/pub", user: "alice"}, 200)
	e.put("alice", "/pub/private", "p")
	e.ok(call{method: "PUT", path: "/pub/open", user: "alice", body: "o", header: map[string]string{"X-Amz-Acl": "public-read"}}, 200)
	e.fails(call{method: "GET", path: "/pub/private"}, "AccessDenied", 403)
	if got := e.get("", "/pub/open"); got != "o" {
		t.Fatalf("anonymous read of a public-read object: %q", got)
	}
	e.fails(call{method: "GET", path: "/pub?list-type=2"}, "AccessDenied", 403)
	policy := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":["s3:GetObject","s3:ListBucket"],"Resource":["arn:aws:s3:::pub","arn:aws:s3:::pub/*"]},
		{"Effect":"Deny","Principal":{"AWS":["arn:aws:iam::000000000000:user/bob"]},"Action":"s3:GetObject","Resource":"arn:aws:s3:::pub/open"}]}`
	e.ok(call{method: "PUT", path: "/pub?policy", user: "alice", body: policy}, 204)
	if got := e.get("", "/pub/private"); got != "p" {
		t.Fatalf("anonymous read allowed by policy: %q", got)
	}
	e.ok(call{method: "GET", path: "/pub?list-type=2"}, 200)
	e.fails(call{method: "GET", path: "/pub/open", user: "bob"}, "AccessDenied", 403)
	e.fails(call{method: "PUT", path: "/pub/x"}, "AccessDenied", 403)
	e.fails(call{method: "PUT", path: "/pub?policy", user: "alice", body: `{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::other/*"}]}`}, "MalformedPolicy", 400)
	e.fails(call{method: "PUT", path: "/pub?policy", user: "alice", body: `not json`}, "MalformedPolicy", 400)
	e.fails(call{method: "PUT", path: "/pub?policy", user: "bob", body: policy}, "AccessDenied", 403)
}

// TestDelegatedWrites checks writes that a bucket policy or ACL grants to
// another user: the core sees the bucket owner write them (the bucket's
// directory is the owner's), and the object belongs to its writer.
func TestDelegatedWrites(t *testing.T) {
	e := newEnv(t, Config{})
	ctx := context.Background()
	e.ok(call{method: "PUT", path: "/shared", user: "alice"}, 200)
	e.fails(call{method: "PUT", path: "/shared/by-bob", user: "bob", body: "b"}, "AccessDenied", 403)
	policy := `{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::1:user/bob"},"Action":"s3:PutObject","Resource":"arn:aws:s3:::shared/in/*"}]}`
	e.ok(call{method: "PUT", path: "/shared?policy", user: "alice", body: policy}, 204)
	e.fails(call{method: "PUT", path: "/shared/out/x", user: "bob", body: "b"}, "AccessDenied", 403)
	e.put("bob", "/shared/in/by-bob", "from bob")
	root, _ := e.s.root(ctx)
	b, _ := e.fs.Lookup(ctx, &core.Root, root, "shared")
	in, _ := e.fs.Lookup(ctx, &core.Root, b.Ino, "in")
	f, err := e.fs.Lookup(ctx, &core.Root, in.Ino, "by-bob")
	if err != nil || f.UID != 1001 || in.UID != 1000 {
		t.Fatalf("object uid %d, directory uid %d, err %v", f.UID, in.UID, err)
	}
	// Bob owns it and reads it; alice owns the bucket but not the object.
	if got := e.get("bob", "/shared/in/by-bob"); got != "from bob" {
		t.Fatalf("bob reads %q", got)
	}
	e.fails(call{method: "GET", path: "/shared/in/by-bob?acl", user: "alice"}, "AccessDenied", 403)
	e.ok(call{method: "DELETE", path: "/shared/in/by-bob", user: "alice"}, 204)
	// With BucketOwnerEnforced, what bob writes is alice's.
	e.ok(call{method: "PUT", path: "/shared?ownershipControls", user: "alice",
		body: "<OwnershipControls><Rule><ObjectOwnership>BucketOwnerEnforced</ObjectOwnership></Rule></OwnershipControls>"}, 200)
	e.put("bob", "/shared/in/enforced", "x")
	in, _ = e.fs.Lookup(ctx, &core.Root, b.Ino, "in") // made anew: the delete removed it
	if f, err := e.fs.Lookup(ctx, &core.Root, in.Ino, "enforced"); err != nil || f.UID != 1000 {
		t.Fatalf("enforced object uid %d err %v", f.UID, err)
	}
	// ACLs are disabled there.
	e.fails(call{method: "PUT", path: "/shared/in/acl", user: "bob", body: "x", header: map[string]string{"X-Amz-Acl": "public-read"}}, "AccessControlListNotSupported", 400)
	e.ok(call{method: "PUT", path: "/shared/in/acl", user: "bob", body: "x", header: map[string]string{"X-Amz-Acl": "bucket-owner-full-control"}}, 200)
	e.fails(call{method: "PUT", path: "/shared?acl", user: "alice", header: map[string]string{"X-Amz-Acl": "private"}}, "AccessControlListNotSupported", 400)
	e.fails(call{method: "PUT", path: "/shared/in/acl?acl", user: "alice", header: map[string]string{"X-Amz-Acl": "private"}}, "AccessControlListNotSupported", 400)
}

// TestTraversalPermissions checks that S3 respects the directory
// permissions of files made by other protocols.
func TestTraversalPermissions(t *testing.T) {
	e := newEnv(t, Config{})
	ctx := context.Background()
	e.ok(call{method: "PUT", path: "/bkt", user: "alice"}, 200)
	policy := `{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::bkt/*"}]}`
	e.ok(call{method: "PUT", path: "/bkt?policy", user: "alice", body: policy}, 204)
	root, _ := e.s.root(ctx)
	b, _ := e.fs.Lookup(ctx, &core.Root, root, "bkt")
	alice := core.Identity{UID: 1000, GID: 1000}
	for _, d := range []struct {
		name string
		mode uint32
	}{{"open", 0o755}, {"secret", 0o700}} {
		dir, err := e.fs.Mkdir(ctx, &alice, b.Ino, d.name, d.mode)
		if err != nil {
			t.Fatal(err)
		}
		f, _, err := e.fs.Create(ctx, &alice, dir.Ino, "f", 0o644, core.CreateGuarded, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.fs.Write(ctx, &alice, f.Ino, 0, []byte(d.name), core.FileSync); err != nil {
			t.Fatal(err)
		}
	}
	if got := e.get("bob", "/bkt/open/f"); got != "open" {
		t.Fatalf("bob reads %q", got)
	}
	e.fails(call{method: "GET", path: "/bkt/secret/f", user: "bob"}, "AccessDenied", 403)
	e.fails(call{method: "GET", path: "/bkt/secret/f"}, "AccessDenied", 403)
	if got := e.get("alice", "/bkt/secret/f"); got != "secret" {
		t.Fatalf("alice reads %q", got)
	}
}

// TestMalformedRequests checks that malformed input is a 400 S3 error.
func TestMalformedRequests(t *testing.T) {
	e := newEnv(t, Config{})
	e.ok(call{method: "PUT", path: "/bkt", user: "alice"}, 200)
	tests := []struct {
		c    call
		code string
		st   int
	}{
		{call{method: "POST", path: "/bkt?delete", user: "alice", body: "<Delete><Object>"}, "MalformedXML", 400},
		{call{method: "PUT", path: "/bkt?versioning", user: "alice", body: "<VersioningConfiguration><Status>Maybe</Status></VersioningConfiguration>"}, "MalformedXML", 400},
		{call{method: "PUT", path: "/bkt?tagging", user: "alice", body: "<Tagging><TagSet><Tag><Key></Key></Tag></TagSet></Tagging>"}, "InvalidTag", 400},
		{call{method: "PUT", path: "/bkt?cors", user: "alice", body: "<x"}, "MalformedXML", 400},
		{call{method: "GET", path: "/bkt?list-type=2&max-keys=-1", user: "alice"}, "InvalidArgument", 400},
		{call{method: "GET", path: "/bkt?list-type=2&continuation-token=!!!", user: "alice"}, "InvalidArgument", 400},
		{call{method: "GET", path: "/bkt?encoding-type=base64", user: "alice"}, "InvalidArgument", 400},
		{call{method: "PATCH", path: "/bkt/k", user: "alice"}, "MethodNotAllowed", 405},
		{call{method: "PUT", path: "/bkt/k?partNumber=0&uploadId=x", user: "alice"}, "InvalidArgument", 400},
		{call{method: "POST", path: "/bkt/k?uploadId=00000000000000000000000000000000", user: "alice", body: "<CompleteMultipartUpload/>"}, "NoSuchUpload", 404},
		{call{method: "PUT", path: "/bkt/k", user: "alice", header: map[string]string{"X-Amz-Copy-Source": "nobucketkey"}}, "InvalidArgument", 400},
		{call{method: "GET", path: "/bkt/k?versionId=", user: "alice"}, "InvalidArgument", 400},
	}
	for _, tt := range tests {
		e.fails(tt.c, tt.code, tt.st)
	}
}

// TestPanicIsInternalError checks the last line of defence.
func TestPanicIsInternalError(t *testing.T) {
	e := newEnv(t, Config{})
	e.s.auth = panicAuth{}
	e.fails(call{method: "GET", path: "/", user: "alice"}, "InternalError", 500)
}

type panicAuth struct{}

func (panicAuth) Verify(*http.Request) (*verified, error) { panic("boom") }
func (panicAuth) VerifyPost(context.Context, map[string]string) (string, *sigv4.PostPolicy, error) {
	panic("boom")
}

// TestEmptyBodyWithExpectClosesConnection: an empty PUT that asked for 100
// Continue is answered without one, so the connection is not reused (see
// ServeHTTP); other requests keep theirs.
func TestEmptyBodyWithExpectClosesConnection(t *testing.T) {
	e := newEnv(t, Config{})
	e.ok(call{method: "PUT", path: "/bkt", user: "alice"}, 200)
	for _, tc := range []struct {
		name   string
		body   string
		expect string
		close  bool
	}{
		{"empty, expects 100", "", "100-continue", true},
		{"empty, expects 100 in capitals", "", "100-Continue", true},
		{"with a body, expects 100", "data", "100-continue", false},
		{"empty, no expectation", "", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := map[string]string{}
			if tc.expect != "" {
				h["Expect"] = tc.expect
			}
			w := e.ok(call{method: "PUT", path: "/bkt/obj", user: "alice", body: tc.body, header: h}, 200)
			if got := w.Header().Get("Connection") == "close"; got != tc.close {
				t.Fatalf("Connection: %q, want close %v", w.Header().Get("Connection"), tc.close)
			}
		})
	}
}
