package sigv4

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"io"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// minioPostForm has minio-go build the form of a browser POST upload. The
// client never connects: the region is configured, so it needs no bucket
// location lookup.
func minioPostForm(t testing.TB, v2 bool, expires time.Time) map[string]string {
	t.Helper()
	creds := credentials.NewStaticV4(testAccessKey, testSecret, "")
	if v2 {
		creds = credentials.NewStaticV2(testAccessKey, testSecret, "")
	}
	client, err := minio.New("127.0.0.1:1", &minio.Options{Creds: creds, Region: testRegion})
	if err != nil {
		t.Fatal(err)
	}
	p := minio.NewPostPolicy()
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(p.SetBucket("photos"))
	must(p.SetKey("uploads/cat.jpg"))
	must(p.SetExpires(expires))
	must(p.SetContentType("image/jpeg"))
	must(p.SetContentLengthRange(10, 1<<20))
	must(p.SetUserMetadata("camera", "x100"))
	_, form, err := client.PresignedPostPolicy(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	return form
}

// v2PostForm signs policy JSON the way ceph/s3-tests does: HMAC-SHA1 over
// the base64 policy.
func v2PostForm(policy string, fields map[string]string) map[string]string {
	b64 := base64.StdEncoding.EncodeToString([]byte(policy))
	m := hmac.New(sha1.New, []byte(testSecret))
	m.Write([]byte(b64))
	form := map[string]string{"AWSAccessKeyId": testAccessKey, "policy": b64, "signature": base64.StdEncoding.EncodeToString(m.Sum(nil))}
	maps.Copy(form, fields)
	return form
}

func policyJSON(t testing.TB, doc map[string]any) string {
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestVerifyPostMinio(t *testing.T) {
	v := newTestVerifier(nil)
	for _, v2 := range []bool{false, true} {
		form := minioPostForm(t, v2, time.Now().Add(time.Hour))
		key, policy, err := v.VerifyPost(context.Background(), form)
		if err != nil || key != testAccessKey || policy == nil {
			t.Fatalf("v2=%v: VerifyPost = %q, %v, %v", v2, key, policy, err)
		}
		// the form minio-go produced meets its own policy
		fields := maps.Clone(form)
		fields["Content-Type"] = "image/jpeg"
		fields["x-amz-meta-camera"] = "x100"
		if err := policy.Check(fields); err != nil {
			t.Fatalf("v2=%v: Check: %v", v2, err)
		}
		if policy.MinLength != 10 || policy.MaxLength != 1<<20 {
			t.Fatalf("length range %d..%d", policy.MinLength, policy.MaxLength)
		}
		for n, want := range map[int64]string{9: "EntityTooSmall", 10: "", 1 << 20: "", 1<<20 + 1: "EntityTooLarge"} {
			if got := errCode(policy.CheckLength(n)); got != want {
				t.Errorf("CheckLength(%d) = %q, want %q", n, got, want)
			}
		}
		fields["key"] = "uploads/dog.jpg"
		if errCode(policy.Check(fields)) != "AccessDenied" {
			t.Errorf("another key passed the policy")
		}
	}

	tamper := []struct {
		name  string
		v2    bool
		alter func(f map[string]string)
		want  string
	}{
		{"policy altered", false, func(f map[string]string) {
			raw, _ := base64.StdEncoding.DecodeString(f["policy"])
			f["policy"] = base64.StdEncoding.EncodeToString([]byte(strings.Replace(string(raw), "uploads/cat.jpg", "uploads/dog.jpg", 1)))
		}, "SignatureDoesNotMatch"},
		{"signature altered", false, func(f map[string]string) { f["x-amz-signature"] = string(flipHex([]byte(f["x-amz-signature"]), 3)) }, "SignatureDoesNotMatch"},
		{"v2 signature altered", true, func(f map[string]string) { f["signature"] = "AAAA" + f["signature"][4:] }, "SignatureDoesNotMatch"},
		{"unknown access key", false, func(f map[string]string) {
			f["x-amz-credential"] = strings.Replace(f["x-amz-credential"], testAccessKey, "AKIANOBODY", 1)
		}, "InvalidAccessKeyId"},
		{"v2 unknown access key", true, func(f map[string]string) { f["AWSAccessKeyId"] = "AKIANOBODY" }, "InvalidAccessKeyId"},
		{"another region", false, func(f map[string]string) {
			f["x-amz-credential"] = strings.Replace(f["x-amz-credential"], testRegion, "eu-west-1", 1)
		}, "InvalidArgument"},
		{"another algorithm", false, func(f map[string]string) { f["x-amz-algorithm"] = "AWS4-HMAC-SHA1" }, "InvalidArgument"},
		{"date not the credential's", false, func(f map[string]string) { f["x-amz-date"] = "19990101T000000Z" }, "InvalidArgument"},
		{"no signature", false, func(f map[string]string) { delete(f, "x-amz-signature") }, "InvalidArgument"},
		{"v2 no signature", true, func(f map[string]string) { delete(f, "signature") }, "InvalidArgument"},
		{"signature but no policy", false, func(f map[string]string) { delete(f, "policy") }, "InvalidArgument"},
	}
	for _, c := range tamper {
		t.Run(c.name, func(t *testing.T) {
			form := minioPostForm(t, c.v2, time.Now().Add(time.Hour))
			c.alter(form)
			if _, _, err := v.VerifyPost(context.Background(), form); errCode(err) != c.want {
				t.Fatalf("VerifyPost: %v, want %s", err, c.want)
			}
		})
	}
	t.Run("expired", func(t *testing.T) {
		form := minioPostForm(t, false, time.Now().Add(-time.Minute))
		_, _, err := v.VerifyPost(context.Background(), form)
		if errCode(err) != "AccessDenied" || !strings.Contains(err.Error(), "Policy expired") {
			t.Fatalf("VerifyPost: %v", err)
		}
	})
	t.Run("anonymous", func(t *testing.T) {
		key, policy, err := v.VerifyPost(context.Background(), map[string]string{"key": "a", "acl": "public-read"})
		if key != "" || policy != nil || err != nil {
			t.Fatalf("VerifyPost = %q, %v, %v", key, policy, err)
		}
	})
}

// TestPostPolicyDocuments follows the policies of ceph/s3-tests'
// test_post_object_* cases.
func TestPostPolicyDocuments(t *testing.T) {
	v := newTestVerifier(nil)
	exp := time.Now().Add(time.Hour).UTC().Format("2006-01-02T15:04:05Z")
	std := []any{
		map[string]any{"bucket": "b1"},
		[]any{"starts-with", "$key", "foo"},
		map[string]any{"acl": "private"},
		[]any{"starts-with", "$Content-Type", "text/plain"},
		[]any{"content-length-range", 0, 1024},
	}
	form := map[string]string{"key": "foo.txt", "acl": "private", "Content-Type": "text/plain"}
	withBucket := func(f map[string]string) map[string]string {
		g := maps.Clone(f)
		g["bucket"] = "b1"
		return g
	}
	cases := []struct {
		name      string
		doc       map[string]any
		raw       string // used instead of doc when set
		fields    map[string]string
		wantPost  string
		wantCheck string
		size      int64
		wantSize  string
	}{
		{name: "authenticated request", doc: map[string]any{"expiration": exp, "conditions": std}, fields: form, size: 3},
		{name: "case-insensitive condition fields",
			doc: map[string]any{"expiration": exp, "conditions": []any{
				map[string]any{"bUcKeT": "b1"}, []any{"StArTs-WiTh", "$KeY", "foo"}, map[string]any{"AcL": "private"},
				[]any{"StArTs-WiTh", "$CoNtEnT-TyPe", "text/plain"}, []any{"content-length-range", 0, 1024}}},
			fields: map[string]string{"kEy": "foo.txt", "aCl": "private", "Content-Type": "text/plain"}, size: 3},
		{name: "ignored field", doc: map[string]any{"expiration": exp, "conditions": std},
			fields: map[string]string{"key": "foo.txt", "acl": "private", "Content-Type": "text/plain", "x-ignore-foo": "bar"}},
		{name: "escaped field value", doc: map[string]any{"expiration": exp, "conditions": []any{
			map[string]any{"bucket": "b1"}, []any{"starts-with", "$key", `\$foo`}, map[string]any{"acl": "private"},
			[]any{"starts-with", "$Content-Type", "text/plain"}}},
			fields: map[string]string{"key": `\$foo.txt`, "acl": "private", "Content-Type": "text/plain"}},
		{name: "checksum field needs no condition", doc: map[string]any{"expiration": exp, "conditions": std},
			fields: map[string]string{"key": "foo.txt", "acl": "private", "Content-Type": "text/plain", "x-amz-checksum-sha256": "abc"}},
		{name: "user metadata condition met", doc: map[string]any{"expiration": exp, "conditions": append(std[:5:5], []any{"starts-with", "$x-amz-meta-foo", "bar"})},
			fields: map[string]string{"key": "foo.txt", "acl": "private", "Content-Type": "text/plain", "x-amz-meta-foo": "barclamp"}},
		{name: "several content types", doc: map[string]any{"expiration": exp, "conditions": std},
			fields: map[string]string{"key": "foo.txt", "acl": "private", "Content-Type": "text/plain, text/plain; charset=utf-8"}},

		{name: "missing bucket condition", doc: map[string]any{"expiration": exp, "conditions": std[1:]}, fields: form, wantCheck: "AccessDenied"},
		{name: "field without condition", doc: map[string]any{"expiration": exp, "conditions": std},
			fields: map[string]string{"key": "foo.txt", "acl": "private", "Content-Type": "text/plain", "x-amz-meta-foo": "bar"}, wantCheck: "AccessDenied"},
		{name: "policy field missing from the form", doc: map[string]any{"expiration": exp, "conditions": append(std[:5:5], []any{"starts-with", "$x-amz-meta-foo", "bar"})},
			fields: form, wantCheck: "AccessDenied"},
		{name: "field value not allowed", doc: map[string]any{"expiration": exp, "conditions": append(std[:5:5], []any{"eq", "$x-amz-meta-foo", ""})},
			fields: map[string]string{"key": "foo.txt", "acl": "private", "Content-Type": "text/plain", "x-amz-meta-foo": "barclamp"}, wantCheck: "AccessDenied"},
		{name: "wrong key prefix", doc: map[string]any{"expiration": exp, "conditions": std},
			fields: map[string]string{"key": "bar.txt", "acl": "private", "Content-Type": "text/plain"}, wantCheck: "AccessDenied"},
		{name: "size limit exceeded", doc: map[string]any{"expiration": exp, "conditions": append(std[:4:4], []any{"content-length-range", 0, 0})},
			fields: form, size: 3, wantSize: "EntityTooLarge"},
		{name: "size below minimum", doc: map[string]any{"expiration": exp, "conditions": append(std[:4:4], []any{"content-length-range", 512, 1000})},
			fields: form, size: 3, wantSize: "EntityTooSmall"},
		{name: "range given as strings", doc: map[string]any{"expiration": exp, "conditions": append(std[:4:4], []any{"content-length-range", "1", "5"})},
			fields: form, size: 3},

		{name: "expired", doc: map[string]any{"expiration": time.Now().Add(-time.Minute).UTC().Format(time.RFC3339), "conditions": std}, fields: form, wantPost: "AccessDenied"},
		{name: "expiration not ISO 8601", doc: map[string]any{"expiration": time.Now().Add(time.Hour).String(), "conditions": std}, fields: form, wantPost: "InvalidPolicyDocument"},
		{name: "expiration missing", doc: map[string]any{"conditions": std}, fields: form, wantPost: "InvalidPolicyDocument"},
		{name: "EXPIRATION in capitals", doc: map[string]any{"EXPIRATION": exp, "conditions": std}, fields: form, wantPost: "InvalidPolicyDocument"},
		{name: "CONDITIONS in capitals", doc: map[string]any{"expiration": exp, "CONDITIONS": std}, fields: form, wantPost: "InvalidPolicyDocument"},
		{name: "conditions missing", doc: map[string]any{"expiration": exp}, fields: form, wantPost: "InvalidPolicyDocument"},
		{name: "empty condition", doc: map[string]any{"expiration": exp, "conditions": []any{map[string]any{}}}, fields: form, wantPost: "InvalidPolicyDocument"},
		{name: "content-length-range with one bound", doc: map[string]any{"expiration": exp, "conditions": append(std[:4:4], []any{"content-length-range", 0})}, fields: form, wantPost: "InvalidPolicyDocument"},
		{name: "negative content-length-range", doc: map[string]any{"expiration": exp, "conditions": append(std[:4:4], []any{"content-length-range", -1, 0})}, fields: form, wantPost: "InvalidPolicyDocument"},
		{name: "unknown operation", doc: map[string]any{"expiration": exp, "conditions": []any{[]any{"ends-with", "$key", "x"}}}, fields: form, wantPost: "InvalidPolicyDocument"},
		{name: "field without $", doc: map[string]any{"expiration": exp, "conditions": []any{[]any{"eq", "key", "x"}}}, fields: form, wantPost: "InvalidPolicyDocument"},
		{name: "not JSON", raw: "{expiration", fields: form, wantPost: "InvalidPolicyDocument"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			doc := c.raw
			if doc == "" {
				doc = policyJSON(t, c.doc)
			}
			key, policy, err := v.VerifyPost(context.Background(), v2PostForm(doc, c.fields))
			if errCode(err) != c.wantPost {
				t.Fatalf("VerifyPost: %v, want %q", err, c.wantPost)
			}
			if err != nil {
				return
			}
			if key != testAccessKey {
				t.Fatalf("access key %q", key)
			}
			if got := errCode(policy.Check(withBucket(v2PostForm(doc, c.fields)))); got != c.wantCheck {
				t.Fatalf("Check: %q, want %q", got, c.wantCheck)
			}
			if got := errCode(policy.CheckLength(c.size)); got != c.wantSize {
				t.Fatalf("CheckLength(%d): %q, want %q", c.size, got, c.wantSize)
			}
		})
	}
	// the wrong bucket: the policy names b1, the upload goes to b2
	doc := policyJSON(t, map[string]any{"expiration": exp, "conditions": std})
	_, policy, err := v.VerifyPost(context.Background(), v2PostForm(doc, form))
	if err != nil {
		t.Fatal(err)
	}
	f := v2PostForm(doc, form)
	f["bucket"] = "b2"
	if errCode(policy.Check(f)) != "AccessDenied" {
		t.Fatal("a policy for b1 allowed an upload to b2")
	}
}

func TestWrapPostFile(t *testing.T) {
	// ceph/s3-tests test_post_object_upload_checksum: 2 MiB of 'x'
	file := bytes.Repeat([]byte{'x'}, 2<<20)
	const goodSHA = "aTL9MeXa9HObn6eP93eygxsJlcwdCwCTysgGAZAgE7w="
	cases := []struct {
		name     string
		form     map[string]string
		wantWrap string
		wantRead string
		wantSums map[string]string
	}{
		{name: "checksum field", form: map[string]string{"key": "k", "x-amz-checksum-sha256": goodSHA}, wantSums: map[string]string{"SHA256": goodSHA}},
		{name: "checksum field in other case", form: map[string]string{"X-Amz-Checksum-Sha256": goodSHA}, wantSums: map[string]string{"SHA256": goodSHA}},
		{name: "no digest fields", form: map[string]string{"key": "k"}, wantSums: map[string]string{}},
		{name: "Content-MD5 field", form: map[string]string{"Content-MD5": md5B64(file)}, wantSums: map[string]string{}},
		{name: "checksum not a digest", form: map[string]string{"x-amz-checksum-sha256": "sailorjerry"}, wantWrap: "BadDigest"},
		{name: "checksum of other bytes", form: map[string]string{"x-amz-checksum-crc32": checksumB64(CRC32, file[1:])}, wantRead: "BadDigest"},
		{name: "Content-MD5 of other bytes", form: map[string]string{"content-md5": md5B64(file[1:])}, wantRead: "BadDigest"},
		{name: "Content-MD5 not an MD5", form: map[string]string{"content-md5": "abc"}, wantWrap: "InvalidDigest"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ver, err := WrapPostFile(context.Background(), bytes.NewReader(file), c.form)
			if errCode(err) != c.wantWrap {
				t.Fatalf("WrapPostFile: %v, want %q", err, c.wantWrap)
			}
			if err != nil {
				return
			}
			got, err := io.ReadAll(ver.Body)
			if errCode(err) != c.wantRead {
				t.Fatalf("read: %v, want %q", err, c.wantRead)
			}
			if err != nil {
				return
			}
			sum := md5.Sum(file)
			if !bytes.Equal(got, file) || !bytes.Equal(ver.MD5(), sum[:]) || !maps.Equal(ver.Checksums(), c.wantSums) {
				t.Fatalf("%d bytes, md5 %x, checksums %v", len(got), ver.MD5(), ver.Checksums())
			}
		})
	}
}
