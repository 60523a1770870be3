package s3

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/claudefs/cfs-gateway/internal/core"
	"github.com/claudefs/cfs-gateway/internal/metrics"
)

type initiateXML struct{ UploadId string }

func (e *env) initiate(path string, header map[string]string) string {
	e.t.Helper()
	var r initiateXML
	decodeXML(e.t, e.ok(call{method: "POST", path: path + "?uploads", user: "alice", header: header}, 200), &r)
	if len(r.UploadId) != 32 {
		e.t.Fatalf("upload id %q", r.UploadId)
	}
	return r.UploadId
}

func (e *env) uploadPart(path, id string, n int, data string) string {
	e.t.Helper()
	w := e.ok(call{method: "PUT", path: fmt.Sprintf("%s?partNumber=%d&uploadId=%s", path, n, id), user: "alice", body: data}, 200)
	return w.Header().Get("ETag")
}

func completeBody(etags ...string) string {
	var b strings.Builder
	b.WriteString("<CompleteMultipartUpload>")
	for i, e := range etags {
		fmt.Fprintf(&b, "<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>", i+1, e)
	}
	b.WriteString("</CompleteMultipartUpload>")
	return b.String()
}

func TestMultipart(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, Config{MultipartChunkMin: 10, MaxConcurrentParts: 2, Metrics: m})
	e.ok(call{method: "PUT", path: "/bkt", user: "alice"}, 200)
	id := e.initiate("/bkt/big/file", map[string]string{"Content-Type": "video/mp4", "X-Amz-Meta-Kind": "movie"})
	if got := value(m.S3MultipartActive); got != 1 {
		t.Fatalf("active uploads %v, want 1", got)
	}
	parts := []string{strings.Repeat("a", 10), strings.Repeat("b", 12), "tail"}
	var etags []string
	for i, p := range parts {
		etags = append(etags, e.uploadPart("/bkt/big/file", id, i+1, p))
	}
	// A part uploaded again replaces the first one.
	etags[1] = e.uploadPart("/bkt/big/file", id, 2, strings.Repeat("c", 12))
	parts[1] = strings.Repeat("c", 12)

	var lp struct {
		Parts []struct {
			PartNumber int
			ETag       string
			Size       int64
		} `xml:"Part"`
		IsTruncated bool
	}
	decodeXML(t, e.ok(call{method: "GET", path: "/bkt/big/file?uploadId=" + id + "&max-parts=2", user: "alice"}, 200), &lp)
	if len(lp.Parts) != 2 || !lp.IsTruncated || lp.Parts[1].ETag != etags[1] || lp.Parts[1].Size != 12 {
		t.Fatalf("list parts %+v", lp)
	}
	var lu struct {
		Uploads []struct{ Key, UploadId string } `xml:"Upload"`
	}
	decodeXML(t, e.ok(call{method: "GET", path: "/bkt?uploads", user: "alice"}, 200), &lu)
	if len(lu.Uploads) != 1 || lu.Uploads[0].Key != "big/file" || lu.Uploads[0].UploadId != id {
		t.Fatalf("list uploads %+v", lu)
	}
	// Errors of completion.
	e.fails(call{method: "POST", path: "/bkt/big/file?uploadId=" + id, user: "alice", body: completeBody(etags[0], `"0000"`, etags[2])}, "InvalidPart", 400)
	e.fails(call{method: "POST", path: "/bkt/big/file?uploadId=" + id, user: "alice",
		body: "<CompleteMultipartUpload><Part><PartNumber>3</PartNumber><ETag>" + etags[2] + "</ETag></Part><Part><PartNumber>4</PartNumber><ETag>x</ETag></Part></CompleteMultipartUpload>"}, "InvalidPart", 400)
	e.fails(call{method: "POST", path: "/bkt/big/file?uploadId=" + id, user: "alice",
		body: "<CompleteMultipartUpload><Part><PartNumber>3</PartNumber><ETag>" + etags[2] + "</ETag></Part><Part><PartNumber>1</PartNumber><ETag>" + etags[0] + "</ETag></Part></CompleteMultipartUpload>"}, "InvalidPartOrder", 400)
	e.fails(call{method: "POST", path: "/bkt/big/file?uploadId=" + id, user: "alice",
		body: "<CompleteMultipartUpload><Part><PartNumber>3</PartNumber><ETag>" + etags[2] + "</ETag></Part><Part><PartNumber>2</PartNumber><ETag>" + etags[1] + "</ETag></Part></CompleteMultipartUpload>"}, "InvalidPartOrder", 400)
	e.fails(call{method: "POST", path: "/bkt/big/file?uploadId=" + id, user: "alice", body: completeBody(etags[2], etags[1])}, "InvalidPart", 400)
	e.fails(call{method: "GET", path: "/bkt/big/file", user: "alice"}, "NoSuchKey", 404)

	w := e.ok(call{method: "POST", path: "/bkt/big/file?uploadId=" + id, user: "alice", body: completeBody(etags...)}, 200)
	var cr struct{ ETag string }
	decodeXML(t, w, &cr)
	h := md5.New()
	for _, p := range parts {
		s := md5.Sum([]byte(p))
		h.Write(s[:])
	}
	want := `"` + hex.EncodeToString(h.Sum(nil)) + `-3"`
	if cr.ETag != want {
		t.Fatalf("ETag %s, want %s", cr.ETag, want)
	}
	g := e.ok(call{method: "GET", path: "/bkt/big/file", user: "alice"}, 200)
	if g.Body.String() != strings.Join(parts, "") || g.Header().Get("ETag") != want || g.Header().Get("Content-Type") != "video/mp4" ||
		g.Header()["x-amz-meta-kind"][0] != "movie" || g.Header().Get("X-Amz-Mp-Parts-Count") != "3" {
		t.Fatalf("GET after completion: %q %v", g.Body.String(), g.Header())
	}
	if got := e.ok(call{method: "GET", path: "/bkt/big/file?partNumber=2", user: "alice"}, 206).Body.String(); got != parts[1] {
		t.Fatalf("part 2 reads %q", got)
	}
	if got := value(m.S3MultipartActive); got != 0 {
		t.Fatalf("active uploads %v after completion", got)
	}
	if got := value(m.S3MultipartFailed); got != 5 {
		t.Fatalf("failed uploads %v, want 5", got)
	}
	// Completing again answers the same, while the object stays.
	var again struct{ ETag string }
	decodeXML(t, e.ok(call{method: "POST", path: "/bkt/big/file?uploadId=" + id, user: "alice", body: completeBody(etags...)}, 200), &again)
	if again.ETag != want {
		t.Fatalf("second completion ETag %s", again.ETag)
	}
	e.fails(call{method: "POST", path: "/bkt/other?uploadId=" + id, user: "alice", body: completeBody(etags...)}, "NoSuchUpload", 404)
	// The upload's area is gone.
	ctx := context.Background()
	ud, _ := e.s.uploadsDir(ctx, "bkt")
	if ents, _, _ := e.fs.ReadDirNames(ctx, &core.Root, ud, "", 10, false); len(ents) != 0 {
		t.Fatalf("uploads left: %v", ents)
	}
}

func TestMultipartLimits(t *testing.T) {
	e := newEnv(t, Config{MultipartChunkMin: 10, MaxConcurrentParts: 1})
	e.ok(call{method: "PUT", path: "/bkt", user: "alice"}, 200)
	id := e.initiate("/bkt/k", nil)
	small := e.uploadPart("/bkt/k", id, 1, "tiny")
	last := e.uploadPart("/bkt/k", id, 2, "end")
	e.fails(call{method: "POST", path: "/bkt/k?uploadId=" + id, user: "alice", body: completeBody(small, last)}, "EntityTooSmall", 400)
	e.fails(call{method: "PUT", path: "/bkt/k?partNumber=10001&uploadId=" + id, user: "alice", body: "x"}, "InvalidArgument", 400)
	e.fails(call{method: "PUT", path: "/bkt/other?partNumber=1&uploadId=" + id, user: "alice", body: "x"}, "NoSuchUpload", 404)
	// A part beyond max_concurrent_parts in flight is SlowDown.
	if !e.s.inflight.acquire(id, 1) {
		t.Fatal("acquire failed")
	}
	e.fails(call{method: "PUT", path: "/bkt/k?partNumber=3&uploadId=" + id, user: "alice", body: "x"}, "SlowDown", 503)
	e.s.inflight.release(id)
	e.uploadPart("/bkt/k", id, 3, "x")
	// Abort removes it; the single last part alone completes.
	e.ok(call{method: "DELETE", path: "/bkt/k?uploadId=" + id, user: "alice"}, 204)
	e.fails(call{method: "GET", path: "/bkt/k?uploadId=" + id, user: "alice"}, "NoSuchUpload", 404)
	id = e.initiate("/bkt/k", nil)
	tag := e.uploadPart("/bkt/k", id, 1, "only")
	e.ok(call{method: "POST", path: "/bkt/k?uploadId=" + id, user: "alice", body: completeBody(tag)}, 200)
	if got := e.get("alice", "/bkt/k"); got != "only" {
		t.Fatalf("got %q", got)
	}
}

func TestCopy(t *testing.T) {
	e := newEnv(t, Config{MultipartChunkMin: 5})
	e.ok(call{method: "PUT", path: "/bkt", user: "alice"}, 200)
	e.ok(call{method: "PUT", path: "/bkt/src", user: "alice", body: "0123456789", header: map[string]string{"Content-Type": "a/b", "X-Amz-Meta-X": "1"}}, 200)
	e.ok(call{method: "PUT", path: "/bkt/dst", user: "alice", header: map[string]string{"X-Amz-Copy-Source": "/bkt/src"}}, 200)
	g := e.ok(call{method: "GET", path: "/bkt/dst", user: "alice"}, 200)
	if g.Body.String() != "0123456789" || g.Header().Get("Content-Type") != "a/b" || g.Header()["x-amz-meta-x"][0] != "1" {
		t.Fatalf("copy: %q %v", g.Body.String(), g.Header())
	}
	e.ok(call{method: "PUT", path: "/bkt/dst2", user: "alice", header: map[string]string{"X-Amz-Copy-Source": "bkt/src",
		"X-Amz-Metadata-Directive": "REPLACE", "Content-Type": "c/d"}}, 200)
	if ct := e.ok(call{method: "HEAD", path: "/bkt/dst2", user: "alice"}, 200).Header().Get("Content-Type"); ct != "c/d" {
		t.Fatalf("REPLACE kept %s", ct)
	}
	e.fails(call{method: "PUT", path: "/bkt/src", user: "alice", header: map[string]string{"X-Amz-Copy-Source": "/bkt/src"}}, "InvalidRequest", 400)
	e.ok(call{method: "PUT", path: "/bkt/src", user: "alice", header: map[string]string{"X-Amz-Copy-Source": "/bkt/src", "X-Amz-Metadata-Directive": "REPLACE"}}, 200)
	if got := e.get("alice", "/bkt/src"); got != "0123456789" {
		t.Fatalf("copy onto itself: %q", got)
	}
	e.fails(call{method: "PUT", path: "/bkt/dst3", user: "alice", header: map[string]string{"X-Amz-Copy-Source": "/bkt/src", "X-Amz-Copy-Source-If-Match": `"nope"`}}, "PreconditionFailed", 412)
	e.fails(call{method: "PUT", path: "/bkt/dst3", user: "alice", header: map[string]string{"X-Amz-Copy-Source": "/bkt/none"}}, "NoSuchKey", 404)
	e.fails(call{method: "PUT", path: "/bkt/dst3", user: "bob", header: map[string]string{"X-Amz-Copy-Source": "/bkt/src"}}, "AccessDenied", 403)
	// UploadPartCopy with ranges.
	id := e.initiate("/bkt/assembled", nil)
	p1 := e.ok(call{method: "PUT", path: "/bkt/assembled?partNumber=1&uploadId=" + id, user: "alice", header: map[string]string{"X-Amz-Copy-Source": "/bkt/src", "X-Amz-Copy-Source-Range": "bytes=0-5"}}, 200)
	p2 := e.ok(call{method: "PUT", path: "/bkt/assembled?partNumber=2&uploadId=" + id, user: "alice", header: map[string]string{"X-Amz-Copy-Source": "/bkt/src", "X-Amz-Copy-Source-Range": "bytes=8-9"}}, 200)
	var c1, c2 struct{ ETag string }
	decodeXML(t, p1, &c1)
	decodeXML(t, p2, &c2)
	sum := md5.Sum([]byte("012345"))
	if c1.ETag != `"`+hex.EncodeToString(sum[:])+`"` {
		t.Fatalf("part copy ETag %s", c1.ETag)
	}
	e.fails(call{method: "PUT", path: "/bkt/assembled?partNumber=3&uploadId=" + id, user: "alice", header: map[string]string{"X-Amz-Copy-Source": "/bkt/src", "X-Amz-Copy-Source-Range": "bytes=8-20"}}, "InvalidRange", 416)
	e.ok(call{method: "POST", path: "/bkt/assembled?uploadId=" + id, user: "alice", body: completeBody(c1.ETag, c2.ETag)}, 200)
	if got := e.get("alice", "/bkt/assembled"); got != "01234589" {
		t.Fatalf("assembled %q", got)
	}
}

// value reads a gauge or counter.
func value(c prometheus.Metric) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	if m.Gauge != nil {
		return m.Gauge.GetValue()
	}
	return m.Counter.GetValue()
}

// TestMultipartPartChecksums: an upload created with a checksum algorithm
// gets a composite checksum, and GetObjectAttributes lists each part's.
func TestMultipartPartChecksums(t *testing.T) {
	e := newEnv(t, Config{})
	e.ok(call{method: "PUT", path: "/cks", user: "alice"}, 200)
	id := e.initiate("/cks/obj", map[string]string{"X-Amz-Checksum-Algorithm": "SHA256"})
	parts := []string{strings.Repeat("a", 5<<20), "tail"}
	var etags, sums []string
	var cat []byte
	for i, p := range parts {
		etags = append(etags, e.uploadPart("/cks/obj", id, i+1, p))
		sum := sha256.Sum256([]byte(p))
		sums = append(sums, base64.StdEncoding.EncodeToString(sum[:]))
		cat = append(cat, sum[:]...)
	}
	e.ok(call{method: "POST", path: "/cks/obj?uploadId=" + id, user: "alice", body: completeBody(etags...)}, 200)
	whole := sha256.Sum256(cat)
	wantWhole := base64.StdEncoding.EncodeToString(whole[:]) + "-2"

	var attrs struct {
		Checksum    struct{ ChecksumSHA256, ChecksumType string }
		ObjectParts struct {
			PartsCount int
			Part       []struct {
				PartNumber     int
				Size           int64
				ChecksumSHA256 string
			}
		}
	}
	decodeXML(t, e.ok(call{method: "GET", path: "/cks/obj?attributes", user: "alice",
		header: map[string]string{"X-Amz-Object-Attributes": "Checksum,ObjectParts"}}, 200), &attrs)
	if attrs.Checksum.ChecksumSHA256 != wantWhole || attrs.Checksum.ChecksumType != "COMPOSITE" {
		t.Fatalf("object checksum %+v, want %s COMPOSITE", attrs.Checksum, wantWhole)
	}
	if attrs.ObjectParts.PartsCount != 2 || len(attrs.ObjectParts.Part) != 2 {
		t.Fatalf("parts %+v", attrs.ObjectParts)
	}
	for i, p := range attrs.ObjectParts.Part {
		if p.PartNumber != i+1 || p.Size != int64(len(parts[i])) || p.ChecksumSHA256 != sums[i] {
			t.Errorf("part %d: %+v, want size %d checksum %s", i+1, p, len(parts[i]), sums[i])
		}
	}
}
