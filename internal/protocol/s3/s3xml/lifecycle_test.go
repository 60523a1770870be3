package s3xml

import (
	"encoding/xml"
	"fmt"
	"strings"
	"testing"
)

// rule wraps rule elements in a one-rule configuration.
func rule(inner string) string {
	return `<LifecycleConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Rule>` + inner + `</Rule></LifecycleConfiguration>`
}

func TestParseLifecycle(t *testing.T) {
	many := func(n int) string {
		var b strings.Builder
		b.WriteString("<LifecycleConfiguration>")
		for i := 0; i < n; i++ {
			fmt.Fprintf(&b, "<Rule><ID>r%d</ID><Filter/><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule>", i)
		}
		b.WriteString("</LifecycleConfiguration>")
		return b.String()
	}
	tests := []struct {
		name, body, code string
	}{
		{"days with prefix filter", rule(`<ID>a</ID><Filter><Prefix>logs/</Prefix></Filter><Status>Enabled</Status><Expiration><Days>30</Days></Expiration>`), ""},
		{"empty filter", rule(`<Filter></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration>`), ""},
		{"legacy prefix", rule(`<Prefix>tmp/</Prefix><Status>Disabled</Status><Expiration><Days>1</Days></Expiration>`), ""},
		{"tag filter", rule(`<Filter><Tag><Key>k</Key><Value>v</Value></Tag></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration>`), ""},
		{"and filter", rule(`<Filter><And><Prefix>p</Prefix><Tag><Key>a</Key><Value>1</Value></Tag><Tag><Key>b</Key><Value>2</Value></Tag><ObjectSizeGreaterThan>10</ObjectSizeGreaterThan><ObjectSizeLessThan>100</ObjectSizeLessThan></And></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration>`), ""},
		{"size filter", rule(`<Filter><ObjectSizeGreaterThan>0</ObjectSizeGreaterThan></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration>`), ""},
		{"date", rule(`<Filter/><Status>Enabled</Status><Expiration><Date>2030-01-01T00:00:00.000Z</Date></Expiration>`), ""},
		{"delete marker", rule(`<Filter/><Status>Enabled</Status><Expiration><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration>`), ""},
		{"noncurrent", rule(`<Filter/><Status>Enabled</Status><NoncurrentVersionExpiration><NoncurrentDays>7</NoncurrentDays><NewerNoncurrentVersions>3</NewerNoncurrentVersions></NoncurrentVersionExpiration>`), ""},
		{"noncurrent count only", rule(`<Filter/><Status>Enabled</Status><NoncurrentVersionExpiration><NewerNoncurrentVersions>2</NewerNoncurrentVersions></NoncurrentVersionExpiration>`), ""},
		{"abort", rule(`<Filter><Prefix>x</Prefix></Filter><Status>Enabled</Status><AbortIncompleteMultipartUpload><DaysAfterInitiation>2</DaysAfterInitiation></AbortIncompleteMultipartUpload>`), ""},
		{"1000 rules", many(1000), ""},

		{"empty body", ``, "MalformedXML"},
		{"not xml", `lifecycle please`, "MalformedXML"},
		{"wrong root", `<CORSConfiguration><Rule/></CORSConfiguration>`, "MalformedXML"},
		{"no rules", `<LifecycleConfiguration></LifecycleConfiguration>`, "MalformedXML"},
		{"no action", rule(`<Filter/><Status>Enabled</Status>`), "MalformedXML"},
		{"no filter", rule(`<Status>Enabled</Status><Expiration><Days>1</Days></Expiration>`), "MalformedXML"},
		{"filter and prefix", rule(`<Prefix>a</Prefix><Filter/><Status>Enabled</Status><Expiration><Days>1</Days></Expiration>`), "MalformedXML"},
		{"bad status", rule(`<Filter/><Status>On</Status><Expiration><Days>1</Days></Expiration>`), "MalformedXML"},
		{"two filter conditions", rule(`<Filter><Prefix>a</Prefix><ObjectSizeLessThan>5</ObjectSizeLessThan></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration>`), "MalformedXML"},
		{"two tags outside and", rule(`<Filter><Tag><Key>a</Key><Value>1</Value></Tag><Tag><Key>b</Key><Value>1</Value></Tag></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration>`), "MalformedXML"},
		{"empty and", rule(`<Filter><And></And></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration>`), "MalformedXML"},
		{"empty expiration", rule(`<Filter/><Status>Enabled</Status><Expiration></Expiration>`), "MalformedXML"},
		{"days not a number", rule(`<Filter/><Status>Enabled</Status><Expiration><Days>ten</Days></Expiration>`), "MalformedXML"},
		{"empty noncurrent", rule(`<Filter/><Status>Enabled</Status><NoncurrentVersionExpiration></NoncurrentVersionExpiration>`), "MalformedXML"},
		{"abort without days", rule(`<Filter/><Status>Enabled</Status><AbortIncompleteMultipartUpload></AbortIncompleteMultipartUpload>`), "MalformedXML"},

		{"1001 rules", many(1001), "InvalidArgument"},
		{"zero days", rule(`<Filter/><Status>Enabled</Status><Expiration><Days>0</Days></Expiration>`), "InvalidArgument"},
		{"negative days", rule(`<Filter/><Status>Enabled</Status><Expiration><Days>-1</Days></Expiration>`), "InvalidArgument"},
		{"days and date", rule(`<Filter/><Status>Enabled</Status><Expiration><Days>1</Days><Date>2030-01-01T00:00:00Z</Date></Expiration>`), "InvalidArgument"},
		{"date not midnight", rule(`<Filter/><Status>Enabled</Status><Expiration><Date>2030-01-01T10:00:00Z</Date></Expiration>`), "InvalidArgument"},
		{"date not a date", rule(`<Filter/><Status>Enabled</Status><Expiration><Date>soon</Date></Expiration>`), "InvalidArgument"},
		{"marker with days", rule(`<Filter/><Status>Enabled</Status><Expiration><Days>1</Days><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration>`), "InvalidArgument"},
		{"marker with tag", rule(`<Filter><Tag><Key>a</Key><Value>b</Value></Tag></Filter><Status>Enabled</Status><Expiration><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration>`), "InvalidArgument"},
		{"abort with tag", rule(`<Filter><And><Prefix>a</Prefix><Tag><Key>a</Key><Value>b</Value></Tag></And></Filter><Status>Enabled</Status><AbortIncompleteMultipartUpload><DaysAfterInitiation>1</DaysAfterInitiation></AbortIncompleteMultipartUpload>`), "InvalidArgument"},
		{"abort zero days", rule(`<Filter/><Status>Enabled</Status><AbortIncompleteMultipartUpload><DaysAfterInitiation>0</DaysAfterInitiation></AbortIncompleteMultipartUpload>`), "InvalidArgument"},
		{"noncurrent zero days", rule(`<Filter/><Status>Enabled</Status><NoncurrentVersionExpiration><NoncurrentDays>0</NoncurrentDays></NoncurrentVersionExpiration>`), "InvalidArgument"},
		{"too many newer versions", rule(`<Filter/><Status>Enabled</Status><NoncurrentVersionExpiration><NoncurrentDays>1</NoncurrentDays><NewerNoncurrentVersions>101</NewerNoncurrentVersions></NoncurrentVersionExpiration>`), "InvalidArgument"},
		{"sizes crossed", rule(`<Filter><And><ObjectSizeGreaterThan>100</ObjectSizeGreaterThan><ObjectSizeLessThan>100</ObjectSizeLessThan></And></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration>`), "InvalidArgument"},
		{"negative size", rule(`<Filter><ObjectSizeGreaterThan>-1</ObjectSizeGreaterThan></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration>`), "InvalidArgument"},
		{"zero less than", rule(`<Filter><ObjectSizeLessThan>0</ObjectSizeLessThan></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration>`), "InvalidArgument"},
		{"empty tag key", rule(`<Filter><Tag><Key></Key><Value>b</Value></Tag></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration>`), "InvalidArgument"},
		{"repeated tag key", rule(`<Filter><And><Tag><Key>a</Key><Value>1</Value></Tag><Tag><Key>a</Key><Value>2</Value></Tag></And></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration>`), "InvalidArgument"},
		{"long id", rule(`<ID>` + strings.Repeat("i", 256) + `</ID><Filter/><Status>Enabled</Status><Expiration><Days>1</Days></Expiration>`), "InvalidArgument"},
		{"duplicate ids", `<LifecycleConfiguration><Rule><ID>x</ID><Filter/><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule><Rule><ID>x</ID><Filter/><Status>Enabled</Status><Expiration><Days>2</Days></Expiration></Rule></LifecycleConfiguration>`, "InvalidArgument"},

		{"transition", rule(`<Filter/><Status>Enabled</Status><Transition><Days>30</Days><StorageClass>GLACIER</StorageClass></Transition>`), "InvalidStorageClass"},
		{"noncurrent transition", rule(`<Filter/><Status>Enabled</Status><Expiration><Days>3</Days></Expiration><NoncurrentVersionTransition><NoncurrentDays>30</NoncurrentDays><StorageClass>STANDARD_IA</StorageClass></NoncurrentVersionTransition>`), "InvalidStorageClass"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseLifecycle([]byte(tt.body))
			if got := code(err); got != tt.code {
				t.Fatalf("code %q, want %q (err %v)", got, tt.code, err)
			}
			if err != nil {
				return
			}
			// What parses re-encodes to a document that parses the same.
			out, err := xml.Marshal(c)
			if err != nil {
				t.Fatal(err)
			}
			again, err := ParseLifecycle(out)
			if err != nil {
				t.Fatalf("re-encoded %s does not parse: %v", out, err)
			}
			out2, _ := xml.Marshal(again)
			if string(out) != string(out2) {
				t.Fatalf("round trip changed the document:\n%s\n%s", out, out2)
			}
		})
	}
}

func TestParseLifecycleNormalisesDate(t *testing.T) {
	tests := []struct{ in, want string }{
		{"2030-01-01T00:00:00Z", "2030-01-01T00:00:00.000Z"},
		{"2030-01-01T00:00:00.000Z", "2030-01-01T00:00:00.000Z"},
		{"2030-01-02T02:00:00+02:00", "2030-01-02T00:00:00.000Z"},
	}
	for _, tt := range tests {
		c, err := ParseLifecycle([]byte(rule(`<Filter/><Status>Enabled</Status><Expiration><Date>` + tt.in + `</Date></Expiration>`)))
		if err != nil {
			t.Fatalf("%s: %v", tt.in, err)
		}
		e := c.Rules[0].Expiration
		if e.Date != tt.want {
			t.Fatalf("%s: Date %q, want %q", tt.in, e.Date, tt.want)
		}
		if d, ok := e.DateTime(); !ok || Time(d) != tt.want {
			t.Fatalf("%s: DateTime %v %v", tt.in, d, ok)
		}
	}
}
