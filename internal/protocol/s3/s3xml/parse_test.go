package s3xml

import (
	"encoding/xml"
	"errors"
	"strings"
	"testing"

	"github.com/claudefs/cfs-gateway/internal/protocol/s3/s3err"
)

func code(err error) string {
	var e *s3err.Error
	if errors.As(err, &e) {
		return e.Code
	}
	if err != nil {
		return "non-s3 error: " + err.Error()
	}
	return ""
}

func TestParseCompleteMultipartUpload(t *testing.T) {
	tests := []struct {
		name, body, code string
		parts            int
	}{
		{"two parts", `<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Part><PartNumber>1</PartNumber><ETag>"a"</ETag></Part><Part><PartNumber>2</PartNumber><ETag>b</ETag></Part></CompleteMultipartUpload>`, "", 2},
		{"no namespace", `<CompleteMultipartUpload><Part><PartNumber>3</PartNumber><ETag>x</ETag></Part></CompleteMultipartUpload>`, "", 1},
		{"empty body", ``, "MalformedXML", 0},
		{"no parts", `<CompleteMultipartUpload></CompleteMultipartUpload>`, "MalformedXML", 0},
		{"descending", `<CompleteMultipartUpload><Part><PartNumber>2</PartNumber><ETag>a</ETag></Part><Part><PartNumber>1</PartNumber><ETag>b</ETag></Part></CompleteMultipartUpload>`, "InvalidPartOrder", 0},
		{"repeated", `<CompleteMultipartUpload><Part><PartNumber>2</PartNumber><ETag>a</ETag></Part><Part><PartNumber>2</PartNumber><ETag>b</ETag></Part></CompleteMultipartUpload>`, "", 2},
		{"part zero", `<CompleteMultipartUpload><Part><PartNumber>0</PartNumber><ETag>a</ETag></Part></CompleteMultipartUpload>`, "InvalidArgument", 0},
		{"part too big", `<CompleteMultipartUpload><Part><PartNumber>10001</PartNumber><ETag>a</ETag></Part></CompleteMultipartUpload>`, "InvalidArgument", 0},
		{"not a number", `<CompleteMultipartUpload><Part><PartNumber>x</PartNumber></Part></CompleteMultipartUpload>`, "MalformedXML", 0},
		{"wrong root", `<Delete><Part><PartNumber>1</PartNumber></Part></Delete>`, "MalformedXML", 0},
		{"truncated", `<CompleteMultipartUpload><Part>`, "MalformedXML", 0},
		{"two roots", `<CompleteMultipartUpload><Part><PartNumber>1</PartNumber></Part></CompleteMultipartUpload><X/>`, "MalformedXML", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseCompleteMultipartUpload([]byte(tt.body))
			if got := code(err); got != tt.code {
				t.Fatalf("code %q, want %q (err %v)", got, tt.code, err)
			}
			if err == nil {
				if len(c.Parts) != tt.parts {
					t.Fatalf("%d parts, want %d", len(c.Parts), tt.parts)
				}
				for _, p := range c.Parts {
					if strings.Contains(p.ETag, `"`) {
						t.Fatalf("ETag %q keeps its quotes", p.ETag)
					}
				}
			}
		})
	}
}

func TestParseDelete(t *testing.T) {
	many := "<Delete>" + strings.Repeat("<Object><Key>k</Key></Object>", MaxDeleteObjects+1) + "</Delete>"
	tests := []struct {
		name, body, code string
		quiet            bool
		objects          int
	}{
		{"two", `<Delete><Quiet>true</Quiet><Object><Key>a</Key></Object><Object><Key>b</Key><VersionId>null</VersionId></Object></Delete>`, "", true, 2},
		{"no objects", `<Delete></Delete>`, "MalformedXML", false, 0},
		{"empty key", `<Delete><Object><Key></Key></Object></Delete>`, "MalformedXML", false, 0},
		{"too many", many, "MalformedXML", false, 0},
		{"bad quiet", `<Delete><Quiet>maybe</Quiet><Object><Key>a</Key></Object></Delete>`, "MalformedXML", false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := ParseDelete([]byte(tt.body))
			if got := code(err); got != tt.code {
				t.Fatalf("code %q, want %q (err %v)", got, tt.code, err)
			}
			if err == nil && (len(d.Objects) != tt.objects || d.Quiet != tt.quiet) {
				t.Fatalf("got %+v", d)
			}
		})
	}
}

func TestParseTagging(t *testing.T) {
	tag := func(k, v string) string { return "<Tag><Key>" + k + "</Key><Value>" + v + "</Value></Tag>" }
	tests := []struct {
		name, body, code string
		max, tags        int
	}{
		{"one", "<Tagging><TagSet>" + tag("a", "1") + "</TagSet></Tagging>", "", 10, 1},
		{"empty set", "<Tagging><TagSet></TagSet></Tagging>", "", 10, 0},
		{"duplicate", "<Tagging><TagSet>" + tag("a", "1") + tag("a", "2") + "</TagSet></Tagging>", "InvalidTag", 10, 0},
		{"too many", "<Tagging><TagSet>" + strings.Repeat(tag("a", "1"), 11) + "</TagSet></Tagging>", "InvalidTag", 10, 0},
		{"long key", "<Tagging><TagSet>" + tag(strings.Repeat("k", 129), "1") + "</TagSet></Tagging>", "InvalidTag", 10, 0},
		{"long value", "<Tagging><TagSet>" + tag("k", strings.Repeat("v", 257)) + "</TagSet></Tagging>", "InvalidTag", 10, 0},
		{"empty key", "<Tagging><TagSet>" + tag("", "v") + "</TagSet></Tagging>", "InvalidTag", 10, 0},
		{"bucket limit", "<Tagging><TagSet>" + strings.Repeat("<Tag><Key>x</Key></Tag>", 1) + "</TagSet></Tagging>", "", 50, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tg, err := ParseTagging([]byte(tt.body), tt.max)
			if got := code(err); got != tt.code {
				t.Fatalf("code %q, want %q (err %v)", got, tt.code, err)
			}
			if err == nil && len(tg.TagSet) != tt.tags {
				t.Fatalf("%d tags, want %d", len(tg.TagSet), tt.tags)
			}
		})
	}
}

func TestParseVersioningAndCORS(t *testing.T) {
	tests := []struct {
		name  string
		parse func([]byte) error
		body  string
		code  string
	}{
		{"versioning enabled", vers, `<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>`, ""},
		{"versioning suspended", vers, `<VersioningConfiguration><Status>Suspended</Status></VersioningConfiguration>`, ""},
		{"versioning bad", vers, `<VersioningConfiguration><Status>On</Status></VersioningConfiguration>`, "MalformedXML"},
		{"versioning mfa", vers, `<VersioningConfiguration><Status>Enabled</Status><MfaDelete>Enabled</MfaDelete></VersioningConfiguration>`, "NotImplemented"},
		{"cors ok", cors, `<CORSConfiguration><CORSRule><AllowedMethod>GET</AllowedMethod><AllowedOrigin>*</AllowedOrigin><MaxAgeSeconds>10</MaxAgeSeconds></CORSRule></CORSConfiguration>`, ""},
		{"cors bad method", cors, `<CORSConfiguration><CORSRule><AllowedMethod>PATCH</AllowedMethod><AllowedOrigin>*</AllowedOrigin></CORSRule></CORSConfiguration>`, "InvalidRequest"},
		{"cors no origin", cors, `<CORSConfiguration><CORSRule><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>`, "MalformedXML"},
		{"cors two wildcards", cors, `<CORSConfiguration><CORSRule><AllowedMethod>GET</AllowedMethod><AllowedOrigin>*.a.*</AllowedOrigin></CORSRule></CORSConfiguration>`, "InvalidRequest"},
		{"cors empty", cors, `<CORSConfiguration></CORSConfiguration>`, "MalformedXML"},
		{"lock ok", lock, `<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention><Mode>GOVERNANCE</Mode><Days>1</Days></DefaultRetention></Rule></ObjectLockConfiguration>`, ""},
		{"lock both", lock, `<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention><Mode>GOVERNANCE</Mode><Days>1</Days><Years>1</Years></DefaultRetention></Rule></ObjectLockConfiguration>`, "MalformedXML"},
		{"lock bad mode", lock, `<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention><Mode>X</Mode><Days>1</Days></DefaultRetention></Rule></ObjectLockConfiguration>`, "MalformedXML"},
		{"lock zero days", lock, `<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention><Mode>COMPLIANCE</Mode><Days>0</Days></DefaultRetention></Rule></ObjectLockConfiguration>`, "InvalidRetentionPeriod"},
		{"lock disabled", lock, `<ObjectLockConfiguration><ObjectLockEnabled>Disabled</ObjectLockEnabled></ObjectLockConfiguration>`, "MalformedXML"},
		{"retention ok", retention, `<Retention><Mode>GOVERNANCE</Mode><RetainUntilDate>2030-01-01T00:00:00Z</RetainUntilDate></Retention>`, ""},
		{"retention bad date", retention, `<Retention><Mode>GOVERNANCE</Mode><RetainUntilDate>tomorrow</RetainUntilDate></Retention>`, "MalformedXML"},
		{"legal hold ok", legal, `<LegalHold><Status>ON</Status></LegalHold>`, ""},
		{"legal hold bad", legal, `<LegalHold><Status>YES</Status></LegalHold>`, "MalformedXML"},
		{"acl ok", acl, `<AccessControlPolicy><Owner><ID>a</ID></Owner><AccessControlList><Grant><Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="CanonicalUser"><ID>a</ID></Grantee><Permission>FULL_CONTROL</Permission></Grant></AccessControlList></AccessControlPolicy>`, ""},
		{"acl bad permission", acl, `<AccessControlPolicy><AccessControlList><Grant><Grantee><ID>a</ID></Grantee><Permission>ALL</Permission></Grant></AccessControlList></AccessControlPolicy>`, "MalformedACLError"},
		{"create bucket empty", create, ``, ""},
		{"create bucket", create, `<CreateBucketConfiguration><LocationConstraint>eu-west-1</LocationConstraint></CreateBucketConfiguration>`, ""},
		{"create bucket junk", create, `<CreateBucketConfiguration>`, "MalformedXML"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := code(tt.parse([]byte(tt.body))); got != tt.code {
				t.Fatalf("code %q, want %q", got, tt.code)
			}
		})
	}
}

func vers(b []byte) error      { _, err := ParseVersioning(b); return err }
func cors(b []byte) error      { _, err := ParseCORS(b); return err }
func lock(b []byte) error      { _, err := ParseObjectLockConfiguration(b); return err }
func retention(b []byte) error { _, _, err := ParseRetention(b); return err }
func legal(b []byte) error     { _, err := ParseLegalHold(b); return err }
func acl(b []byte) error       { _, err := ParseACL(b); return err }
func create(b []byte) error    { _, err := ParseCreateBucket(b); return err }

// TestMarshalVersions checks that versions and delete markers keep their
// element names and listing order.
func TestMarshalVersions(t *testing.T) {
	size := int64(3)
	res := ListVersionsResult{Xmlns: Namespace, Name: "b", Versions: []Version{
		{XMLName: xml.Name{Local: "Version"}, Key: "a", VersionID: "v2", IsLatest: true, Size: &size},
		{XMLName: xml.Name{Local: "DeleteMarker"}, Key: "a", VersionID: "v1"},
	}}
	out, err := Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	iv, id := strings.Index(s, "<Version><Key>a</Key><VersionId>v2"), strings.Index(s, "<DeleteMarker><Key>a</Key><VersionId>v1")
	if iv < 0 || id < 0 || iv > id {
		t.Fatalf("unexpected document %s", s)
	}
	if strings.Contains(s[id:], "<Size>") {
		t.Fatalf("a delete marker has no size: %s", s)
	}
}
