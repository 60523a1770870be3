package s3xml

import (
	"bytes"
	"encoding/binary"
	"encoding/xml"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

// trickyStrings are values that exercise every escaping rule of
// encoding/xml.
var trickyStrings = []string{
	"",
	"plain/key.txt",
	`<a href="x">&'</a>`,
	"tab\there\nnewline\rcr",
	"ctrl\x00\x01\x1f\x7f",
	"bad utf8 \xff\xfe end",
	"truncated \xe2\x82",
	"surrogate \xed\xa0\x80",
	"nonchars \uFFFE \uFFFF",
	"replacement \uFFFD kept",
	"unicode é ü 日本 😀",
	"\U0010FFFF max",
	"\xf4\x90\x80\x80 above max",
	"overlong \xc0\xaf",
}

func strp(s string) *string { return &s }
func intp(n int) *int       { return &n }

func TestListBucketResultAppendXML(t *testing.T) {
	v2 := func(keys ...string) ListBucketResult {
		r := ListBucketResult{Xmlns: Namespace, Name: "bkt", MaxKeys: 1000, KeyCount: intp(len(keys)), IsTruncated: true,
			NextContinue: "dG9rZW4"}
		for _, k := range keys {
			r.Contents = append(r.Contents, Object{Key: k, LastModified: "2024-01-02T03:04:05.006Z", ETag: `"abc"`,
				Size: 12, StorageClass: "STANDARD"})
		}
		return r
	}
	tests := []struct {
		name string
		res  ListBucketResult
		want string // when set, the exact document after the declaration
	}{
		{name: "zero value", res: ListBucketResult{},
			want: `<ListBucketResult xmlns=""><Name></Name><Prefix></Prefix><MaxKeys>0</MaxKeys><IsTruncated>false</IsTruncated></ListBucketResult>`},
		{name: "v1 empty marker", res: ListBucketResult{Xmlns: Namespace, Name: "b", Marker: strp(""), MaxKeys: 5,
			CommonPrefixes: []CommonPrefix{{Prefix: "a/"}}},
			want: `<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix></Prefix><Marker></Marker><MaxKeys>5</MaxKeys><IsTruncated>false</IsTruncated><CommonPrefixes><Prefix>a/</Prefix></CommonPrefixes></ListBucketResult>`},
		{name: "v2 page", res: v2("a", "b/c")},
		{name: "v2 zero keys with token", res: ListBucketResult{Xmlns: Namespace, Name: "b", KeyCount: intp(0),
			Continuation: strp(""), StartAfter: "s", Delimiter: "/", EncodingType: "url"}},
		{name: "escaped keys", res: v2(trickyStrings...)},
		{name: "owner and checksums", res: ListBucketResult{Xmlns: Namespace, Name: "b", Contents: []Object{
			{Key: "k", ChecksumAlgorithm: []string{"CRC32", "", "SHA256"}, ChecksumType: "FULL_OBJECT", Size: -1,
				Owner: &Owner{ID: "id<1>"}},
			{Key: "l", Owner: &Owner{ID: "2", DisplayName: "bob & alice"}},
		}},
			want: `<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix></Prefix><MaxKeys>0</MaxKeys><IsTruncated>false</IsTruncated>` +
				`<Contents><Key>k</Key><LastModified></LastModified><ETag></ETag><ChecksumAlgorithm>CRC32</ChecksumAlgorithm><ChecksumAlgorithm>SHA256</ChecksumAlgorithm><ChecksumType>FULL_OBJECT</ChecksumType><Size>-1</Size><Owner><ID>id&lt;1&gt;</ID></Owner><StorageClass></StorageClass></Contents>` +
				`<Contents><Key>l</Key><LastModified></LastModified><ETag></ETag><Size>0</Size><Owner><ID>2</ID><DisplayName>bob &amp; alice</DisplayName></Owner><StorageClass></StorageClass></Contents></ListBucketResult>`},
		{name: "XMLName value ignored", res: ListBucketResult{XMLName: xml.Name{Space: "ns", Local: "Other"}, Xmlns: `a"b`}},
		{name: "every field", res: ListBucketResult{Xmlns: Namespace, Name: "n", Prefix: "p&", Marker: strp("m"), NextMarker: "nm",
			StartAfter: "sa", Continuation: strp("c"), NextContinue: "nc", KeyCount: intp(-3), MaxKeys: 1 << 40,
			Delimiter: "\t", EncodingType: "url", IsTruncated: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.res.AppendXML(nil)
			checkSameAsMarshal(t, &tt.res, got)
			if tt.want != "" && string(got) != xml.Header+tt.want {
				t.Fatalf("document\n%s\nwant\n%s", got, xml.Header+tt.want)
			}
			// Appending keeps what dst held.
			if got := tt.res.AppendXML([]byte("head")); !bytes.Equal(got[4:], tt.res.AppendXML(nil)) || string(got[:4]) != "head" {
				t.Fatalf("AppendXML onto a prefix lost it: %q", got)
			}
		})
	}
}

func checkSameAsMarshal(t *testing.T, v any, got []byte) {
	t.Helper()
	want, err := Marshal(v)
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	if !bytes.Equal(got, want) {
		i := 0
		for i < len(got) && i < len(want) && got[i] == want[i] {
			i++
		}
		from := max(0, i-80)
		t.Fatalf("hand encoding differs from encoding/xml at byte %d\n got ...%q\nwant ...%q",
			i, got[from:min(len(got), i+80)], want[from:min(len(want), i+80)])
	}
}

func TestListVersionsResultAppendXML(t *testing.T) {
	size := int64(7)
	tests := []struct {
		name string
		res  ListVersionsResult
		want string // when set, the exact document after the declaration
	}{
		{name: "zero value", res: ListVersionsResult{},
			want: `<ListVersionsResult xmlns=""><Name></Name><Prefix></Prefix><KeyMarker></KeyMarker><VersionIdMarker></VersionIdMarker><MaxKeys>0</MaxKeys><IsTruncated>false</IsTruncated></ListVersionsResult>`},
		{name: "versions and markers", res: ListVersionsResult{Xmlns: Namespace, Name: "b", KeyMarker: "k&", NextKeyMarker: "n",
			NextVersionIDMarker: "nv", MaxKeys: 2, Delimiter: "/", EncodingType: "url", IsTruncated: true,
			Versions: []Version{
				{XMLName: xml.Name{Local: "Version"}, Key: "a<b", VersionID: "v1", IsLatest: true, LastModified: "2024-01-02T03:04:05.006Z",
					ETag: `"e"`, Size: &size, Owner: &Owner{ID: "1", DisplayName: "alice"}, StorageClass: "STANDARD"},
				{XMLName: xml.Name{Local: "DeleteMarker"}, Key: "a<b", VersionID: "null", Owner: &Owner{ID: "2"}},
			},
			CommonPrefixes: []CommonPrefix{{Prefix: "p/"}}},
			want: `<ListVersionsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix></Prefix><KeyMarker>k&amp;</KeyMarker><VersionIdMarker></VersionIdMarker><NextKeyMarker>n</NextKeyMarker><NextVersionIdMarker>nv</NextVersionIdMarker><MaxKeys>2</MaxKeys><Delimiter>/</Delimiter><EncodingType>url</EncodingType><IsTruncated>true</IsTruncated>` +
				`<Version><Key>a&lt;b</Key><VersionId>v1</VersionId><IsLatest>true</IsLatest><LastModified>2024-01-02T03:04:05.006Z</LastModified><ETag>&#34;e&#34;</ETag><Size>7</Size><Owner><ID>1</ID><DisplayName>alice</DisplayName></Owner><StorageClass>STANDARD</StorageClass></Version>` +
				`<DeleteMarker><Key>a&lt;b</Key><VersionId>null</VersionId><IsLatest>false</IsLatest><LastModified></LastModified><Owner><ID>2</ID></Owner></DeleteMarker>` +
				`<CommonPrefixes><Prefix>p/</Prefix></CommonPrefixes></ListVersionsResult>`},
		{name: "entry without a name", res: ListVersionsResult{Versions: []Version{{Key: "k"}, {XMLName: xml.Name{Space: "ns"}}}}},
		{name: "entry with a namespace", res: ListVersionsResult{Versions: []Version{{XMLName: xml.Name{Space: `a"<`, Local: "Version"}}}}},
		{name: "escaped keys", res: func() ListVersionsResult {
			var r ListVersionsResult
			for _, k := range trickyStrings {
				r.Versions = append(r.Versions, Version{XMLName: xml.Name{Local: "Version"}, Key: k, VersionID: k})
			}
			return r
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.res.AppendXML(nil)
			checkSameAsMarshal(t, &tt.res, got)
			if tt.want != "" && string(got) != xml.Header+tt.want {
				t.Fatalf("document\n%s\nwant\n%s", got, xml.Header+tt.want)
			}
		})
	}
}

// TestListingAppendXMLRandom compares the two encodings of many random
// values (the Fuzz targets search further).
func TestListingAppendXMLRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	data := make([]byte, 4096)
	for range 300 {
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		checkListBucketResult(t, data)
		checkListVersionsResult(t, data)
	}
}

func checkListBucketResult(t *testing.T, data []byte) {
	var r ListBucketResult
	fillRandom(t, reflect.ValueOf(&r).Elem(), &byteSource{data: data})
	checkSameAsMarshal(t, &r, r.AppendXML(nil))
}

func checkListVersionsResult(t *testing.T, data []byte) {
	var r ListVersionsResult
	fillRandom(t, reflect.ValueOf(&r).Elem(), &byteSource{data: data})
	checkSameAsMarshal(t, &r, r.AppendXML(nil))
}

var listingFuzzSeeds = [][]byte{
	{},
	[]byte("\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f"),
	bytes.Repeat([]byte{0xff, 0x03, 0x41, 0x3c, 0xc3}, 40),
}

func FuzzListBucketResultAppendXML(f *testing.F) {
	for _, s := range listingFuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(checkListBucketResult)
}

func FuzzListVersionsResultAppendXML(f *testing.F) {
	for _, s := range listingFuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(checkListVersionsResult)
}

func TestAppendTime(t *testing.T) {
	east := time.FixedZone("east", 5*3600+30*60)
	tests := []time.Time{
		{},
		time.Unix(0, 0),
		time.Date(2024, 2, 29, 23, 59, 59, 999_999_999, time.UTC),
		time.Date(2024, 3, 1, 1, 2, 3, 4_000_000, east), // the previous UTC day
		time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(999, 1, 1, 0, 0, 0, 1_000_000, time.UTC),
	}
	for _, tm := range tests {
		if got, want := string(AppendTime([]byte("x"), tm)), "x"+Time(tm); got != want {
			t.Errorf("AppendTime(%v) = %q, want %q", tm, got, want)
		}
	}
}

func FuzzAppendTime(f *testing.F) {
	f.Add(int64(0), int64(0))
	f.Add(int64(1700000000), int64(123456789))
	f.Add(int64(-62135596800), int64(-1))
	f.Fuzz(func(t *testing.T, sec, nsec int64) {
		tm := time.Unix(sec, nsec)
		if got, want := string(AppendTime(nil, tm)), Time(tm); got != want {
			t.Fatalf("AppendTime(%v) = %q, want %q", tm, got, want)
		}
	})
}

// byteSource hands out fuzz bytes, and zeros once they run out.
type byteSource struct{ data []byte }

func (s *byteSource) next() byte {
	if len(s.data) == 0 {
		return 0
	}
	b := s.data[0]
	s.data = s.data[1:]
	return b
}

func (s *byteSource) string() string {
	b := s.next()
	if b&0x80 != 0 {
		return trickyStrings[int(b&0x7f)%len(trickyStrings)]
	}
	n := min(int(b), len(s.data))
	str := string(s.data[:n])
	s.data = s.data[n:]
	return str
}

// fillRandom sets every field of v from src, reaching into pointers,
// slices and nested structs, so that a field added to a document is
// compared without changing the test. A kind it cannot fill fails the
// test: the encoder and this filler need to learn it.
func fillRandom(t *testing.T, v reflect.Value, src *byteSource) {
	switch v.Kind() {
	case reflect.String:
		v.SetString(src.string())
	case reflect.Bool:
		v.SetBool(src.next()&1 == 1)
	case reflect.Int, reflect.Int64:
		var b [8]byte
		for i := range int(src.next() % 9) {
			b[i] = src.next()
		}
		v.SetInt(int64(binary.LittleEndian.Uint64(b[:])))
	case reflect.Pointer:
		if src.next()&1 == 1 {
			v.Set(reflect.New(v.Type().Elem()))
			fillRandom(t, v.Elem(), src)
		}
	case reflect.Slice:
		n := int(src.next() % 5)
		if n > 0 {
			v.Set(reflect.MakeSlice(v.Type(), n, n))
			for i := range n {
				fillRandom(t, v.Index(i), src)
			}
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fillRandom(t, v.Field(i), src)
			}
		}
	default:
		t.Fatalf("fillRandom: cannot fill a %s", v.Type())
	}
}

func BenchmarkListBucketResultEncode(b *testing.B) {
	r := ListBucketResult{Xmlns: Namespace, Name: "bkt", MaxKeys: 1000, KeyCount: intp(1000), IsTruncated: true}
	for i := range 1000 {
		r.Contents = append(r.Contents, Object{Key: "dir" + string(rune('a'+i%26)) + "/key-" + time.Duration(i).String(),
			LastModified: "2024-01-02T03:04:05.006Z", ETag: `"0123456789abcdef0123456789abcdef"`, Size: int64(i), StorageClass: "STANDARD"})
	}
	b.Run("encoding/xml", func(b *testing.B) {
		for b.Loop() {
			if _, err := Marshal(&r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("AppendXML", func(b *testing.B) {
		for b.Loop() {
			r.AppendXML(nil)
		}
	})
	b.Run("AppendXML/reused", func(b *testing.B) {
		var buf []byte
		for b.Loop() {
			buf = r.AppendXML(buf[:0])
		}
	})
}

func BenchmarkAppendTime(b *testing.B) {
	tm := time.Unix(1700000000, 123456789)
	b.Run("Time", func(b *testing.B) {
		for b.Loop() {
			_ = Time(tm)
		}
	})
	b.Run("AppendTime", func(b *testing.B) {
		var buf [32]byte
		for b.Loop() {
			AppendTime(buf[:0], tm)
		}
	})
}
