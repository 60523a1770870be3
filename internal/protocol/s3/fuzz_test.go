package s3

import (
	"errors"
	"testing"

	"github.com/claudefs/cfs-gateway/internal/core"
	"github.com/claudefs/cfs-gateway/internal/protocol/s3/s3err"
)

// FuzzParsePolicy checks that any bucket policy document either parses or
// is MalformedPolicy, and that a parsed one can be evaluated.
func FuzzParsePolicy(f *testing.F) {
	for _, s := range []string{
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::bkt/*"}]}`,
		`{"Statement":[{"Effect":"Deny","Principal":{"AWS":["arn:aws:iam::1:user/bob"]},"Action":["s3:*"],"Resource":["arn:aws:s3:::bkt","arn:aws:s3:::bkt/*"],"Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"},"StringLike":{"s3:prefix":["a*"]}}}]}`,
		`{"Statement":[{"Effect":"Allow","NotPrincipal":{"AWS":"x"},"Action":"s3:GetObject","Resource":"*"}]}`,
		`[]`, `{`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		p, err := parsePolicy(doc, "bkt")
		if err != nil {
			var e *s3err.Error
			if !errors.As(err, &e) || e.Code != "MalformedPolicy" {
				t.Fatalf("error %v is not MalformedPolicy", err)
			}
			return
		}
		p.evaluate(&policyRequest{user: "bob", action: "s3:GetObject", resource: "arn:aws:s3:::bkt/a",
			cond: func(string) ([]string, bool) { return []string{"10.1.2.3"}, true }})
		p.public()
	})
}

// FuzzStoredAttributes feeds the decoders of the attributes the gateway
// keeps in the namespace with arbitrary bytes: a damaged attribute must
// not crash a request.
func FuzzStoredAttributes(f *testing.F) {
	f.Add([]byte(`{"ct":"text/plain","u":{"a":"b"},"p":[5,6]}`))
	f.Add([]byte(`{"c":"private","g":[{"id":"alice","p":"FULL_CONTROL"}]}`))
	f.Add([]byte("a=1&b=2"))
	f.Add([]byte("GOVERNANCE 1900000000"))
	f.Add([]byte("d41d8cd98f00b204e9800998ecf8427e dir 0"))
	f.Fuzz(func(t *testing.T, b []byte) {
		decodeMeta(b)
		decodeACL(b).document(ownerByID("alice"), ownerByID)
		decodeTags(b)
		decodeRetention(b)
		a := core.Attr{Type: core.TypeDir}
		etagOf(&a, b)
		objectSize(&a, b)
		a.Type = core.TypeRegular
		etagOf(&a, b)
	})
}

// FuzzRequestFields checks the parsers of request fields: keys, ranges,
// copy sources and tagging headers.
func FuzzRequestFields(f *testing.F) {
	f.Add("a/b/c", "bytes=0-10", "/bkt/key?versionId=x", "a=1&b=2")
	f.Add("a//b/", "bytes=-5", "bkt", "%zz")
	f.Add("../x", "bytes=5-", "/%2F/", "=")
	f.Fuzz(func(t *testing.T, key, rng, src, tags string) {
		splitKey(key)
		if s, l, ok, err := parseRange(rng, 100); err == nil && ok && (s < 0 || l <= 0 || s+l > 100) {
			t.Fatalf("range %q gives %d+%d of 100", rng, s, l)
		}
		parseCopySource(src)
		parseTaggingHeader(tags)
		encodeVersionKey(key)
	})
}
