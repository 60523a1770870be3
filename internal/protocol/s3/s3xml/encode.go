package s3xml

import (
	"encoding/xml"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// Listing pages (ListBucketResult, ListVersionsResult) are the largest
// documents the server writes, up to a thousand entries each, and
// encoding/xml spends most of its time on reflection there. Their encoders
// below append the document directly; the output is byte for byte what
// Marshal writes for the same value (the tests compare the two on random
// values), so clients cannot tell which one answered. A field added to
// either type needs its line here too: the tests fill every field and fail
// until it has one.

// AppendXML appends r as an XML document, declaration first, exactly as
// Marshal(r) writes it.
func (r *ListBucketResult) AppendXML(dst []byte) []byte {
	dst = slices.Grow(dst, r.sizeHint())
	dst = append(dst, xml.Header...)
	dst = append(dst, `<ListBucketResult xmlns="`...)
	dst = appendEscaped(dst, r.Xmlns)
	dst = append(dst, `">`...)
	dst = appendElem(dst, "Name", r.Name)
	dst = appendElem(dst, "Prefix", r.Prefix)
	if r.Marker != nil {
		dst = appendElem(dst, "Marker", *r.Marker)
	}
	dst = appendElemOmitEmpty(dst, "NextMarker", r.NextMarker)
	dst = appendElemOmitEmpty(dst, "StartAfter", r.StartAfter)
	if r.Continuation != nil {
		dst = appendElem(dst, "ContinuationToken", *r.Continuation)
	}
	dst = appendElemOmitEmpty(dst, "NextContinuationToken", r.NextContinue)
	if r.KeyCount != nil {
		dst = appendIntElem(dst, "KeyCount", int64(*r.KeyCount))
	}
	dst = appendIntElem(dst, "MaxKeys", int64(r.MaxKeys))
	dst = appendElemOmitEmpty(dst, "Delimiter", r.Delimiter)
	dst = appendElemOmitEmpty(dst, "EncodingType", r.EncodingType)
	dst = appendBoolElem(dst, "IsTruncated", r.IsTruncated)
	for i := range r.Contents {
		dst = r.Contents[i].appendXML(dst)
	}
	dst = appendCommonPrefixes(dst, r.CommonPrefixes)
	return append(dst, "</ListBucketResult>"...)
}

// sizeHint is about the size of r's document, so that it is encoded
// into one allocation.
func (r *ListBucketResult) sizeHint() int {
	n := len(xml.Header) + 400 + len(r.Name) + len(r.Prefix) + len(r.NextMarker) + len(r.StartAfter) +
		len(r.NextContinue) + len(r.Delimiter)
	for i := range r.Contents {
		o := &r.Contents[i]
		n += 210 + len(o.Key) + len(o.ETag)
		if o.Owner != nil {
			n += 50 + len(o.Owner.ID) + len(o.Owner.DisplayName)
		}
	}
	for i := range r.CommonPrefixes {
		n += 50 + len(r.CommonPrefixes[i].Prefix)
	}
	return n
}

// appendXML appends o as a Contents element.
func (o *Object) appendXML(dst []byte) []byte {
	dst = append(dst, "<Contents>"...)
	dst = appendElem(dst, "Key", o.Key)
	dst = appendElem(dst, "LastModified", o.LastModified)
	dst = appendElem(dst, "ETag", o.ETag)
	for _, a := range o.ChecksumAlgorithm {
		// omitempty applies to each element of a slice.
		dst = appendElemOmitEmpty(dst, "ChecksumAlgorithm", a)
	}
	dst = appendElemOmitEmpty(dst, "ChecksumType", o.ChecksumType)
	dst = appendIntElem(dst, "Size", o.Size)
	if o.Owner != nil {
		dst = o.Owner.appendXML(dst)
	}
	dst = appendElem(dst, "StorageClass", o.StorageClass)
	return append(dst, "</Contents>"...)
}

// AppendXML appends r as an XML document, declaration first, exactly as
// Marshal(r) writes it.
func (r *ListVersionsResult) AppendXML(dst []byte) []byte {
	dst = slices.Grow(dst, r.sizeHint())
	dst = append(dst, xml.Header...)
	dst = append(dst, `<ListVersionsResult xmlns="`...)
	dst = appendEscaped(dst, r.Xmlns)
	dst = append(dst, `">`...)
	dst = appendElem(dst, "Name", r.Name)
	dst = appendElem(dst, "Prefix", r.Prefix)
	dst = appendElem(dst, "KeyMarker", r.KeyMarker)
	dst = appendElem(dst, "VersionIdMarker", r.VersionIDMarker)
	dst = appendElemOmitEmpty(dst, "NextKeyMarker", r.NextKeyMarker)
	dst = appendElemOmitEmpty(dst, "NextVersionIdMarker", r.NextVersionIDMarker)
	dst = appendIntElem(dst, "MaxKeys", int64(r.MaxKeys))
	dst = appendElemOmitEmpty(dst, "Delimiter", r.Delimiter)
	dst = appendElemOmitEmpty(dst, "EncodingType", r.EncodingType)
	dst = appendBoolElem(dst, "IsTruncated", r.IsTruncated)
	for i := range r.Versions {
		dst = r.Versions[i].appendXML(dst)
	}
	dst = appendCommonPrefixes(dst, r.CommonPrefixes)
	return append(dst, "</ListVersionsResult>"...)
}

func (r *ListVersionsResult) sizeHint() int {
	n := len(xml.Header) + 400 + len(r.Name) + len(r.Prefix) + len(r.KeyMarker) + len(r.VersionIDMarker) +
		len(r.NextKeyMarker) + len(r.NextVersionIDMarker) + len(r.Delimiter)
	for i := range r.Versions {
		v := &r.Versions[i]
		n += 250 + len(v.Key) + len(v.VersionID) + len(v.ETag)
		if v.Owner != nil {
			n += len(v.Owner.ID) + len(v.Owner.DisplayName)
		}
	}
	for i := range r.CommonPrefixes {
		n += 50 + len(r.CommonPrefixes[i].Prefix)
	}
	return n
}

// appendXML appends v as the element its XMLName names (Version or
// DeleteMarker). Like encoding/xml, it writes the name as it is, with its
// namespace as an xmlns attribute, and falls back to the field's name.
func (v *Version) appendXML(dst []byte) []byte {
	name := v.XMLName.Local
	dst = append(dst, '<')
	if name == "" {
		name = "Versions"
		dst = append(dst, name...)
	} else {
		dst = append(dst, name...)
		if v.XMLName.Space != "" {
			dst = append(dst, ` xmlns="`...)
			dst = appendEscaped(dst, v.XMLName.Space)
			dst = append(dst, '"')
		}
	}
	dst = append(dst, '>')
	dst = appendElem(dst, "Key", v.Key)
	dst = appendElem(dst, "VersionId", v.VersionID)
	dst = appendBoolElem(dst, "IsLatest", v.IsLatest)
	dst = appendElem(dst, "LastModified", v.LastModified)
	dst = appendElemOmitEmpty(dst, "ETag", v.ETag)
	if v.Size != nil {
		dst = appendIntElem(dst, "Size", *v.Size)
	}
	if v.Owner != nil {
		dst = v.Owner.appendXML(dst)
	}
	dst = appendElemOmitEmpty(dst, "StorageClass", v.StorageClass)
	dst = append(dst, '<', '/')
	dst = append(dst, name...)
	return append(dst, '>')
}

// appendXML appends o as an Owner element.
func (o *Owner) appendXML(dst []byte) []byte {
	dst = append(dst, "<Owner>"...)
	dst = appendElem(dst, "ID", o.ID)
	dst = appendElemOmitEmpty(dst, "DisplayName", o.DisplayName)
	return append(dst, "</Owner>"...)
}

// AppendTime appends t as Time formats it.
func AppendTime(dst []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.AppendFormat(dst, TimeFormat)
	}
	hour, minute, sec := t.Clock()
	ms := t.Nanosecond() / 1e6
	return append(dst,
		byte('0'+year/1000), byte('0'+year/100%10), byte('0'+year/10%10), byte('0'+year%10), '-',
		byte('0'+int(month)/10), byte('0'+int(month)%10), '-',
		byte('0'+day/10), byte('0'+day%10), 'T',
		byte('0'+hour/10), byte('0'+hour%10), ':',
		byte('0'+minute/10), byte('0'+minute%10), ':',
		byte('0'+sec/10), byte('0'+sec%10), '.',
		byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10), 'Z')
}

func appendElem(dst []byte, name, value string) []byte {
	dst = append(dst, '<')
	dst = append(dst, name...)
	dst = append(dst, '>')
	dst = appendEscaped(dst, value)
	dst = append(dst, '<', '/')
	dst = append(dst, name...)
	return append(dst, '>')
}

// appendElemOmitEmpty is appendElem for an omitempty field.
func appendElemOmitEmpty(dst []byte, name, value string) []byte {
	if value == "" {
		return dst
	}
	return appendElem(dst, name, value)
}

func appendIntElem(dst []byte, name string, v int64) []byte {
	dst = append(dst, '<')
	dst = append(dst, name...)
	dst = append(dst, '>')
	dst = strconv.AppendInt(dst, v, 10)
	dst = append(dst, '<', '/')
	dst = append(dst, name...)
	return append(dst, '>')
}

func appendBoolElem(dst []byte, name string, v bool) []byte {
	dst = append(dst, '<')
	dst = append(dst, name...)
	dst = append(dst, '>')
	dst = strconv.AppendBool(dst, v)
	dst = append(dst, '<', '/')
	dst = append(dst, name...)
	return append(dst, '>')
}

// plainByte marks the bytes that text and attribute values keep as they
// are, on their own: ASCII other than markup and control characters.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = true
	}
	for _, c := range `"'&<>` {
		t[c] = false
	}
	return t
}()

// appendEscaped appends s escaped as encoding/xml escapes text and
// attribute values: the five markup characters and tab, newline and
// carriage return as character references, and invalid UTF-8 and
// characters XML does not allow (other control characters, U+FFFE, ...)
// each replaced by U+FFFD.
func appendEscaped(dst []byte, s string) []byte {
	i := 0
	for i < len(s) && plainByte[s[i]] {
		i++
	}
	if i == len(s) {
		return append(dst, s...) // most keys
	}
	last := 0
	for i < len(s) {
		c := s[i]
		if plainByte[c] {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			dst = append(dst, s[last:i]...)
			dst = append(dst, asciiEscape(c)...)
			i++
			last = i
			continue
		}
		r, width := utf8.DecodeRuneInString(s[i:])
		if xmlChar(r) && !(r == utf8.RuneError && width == 1) {
			i += width
			continue
		}
		dst = append(dst, s[last:i]...)
		dst = append(dst, "\uFFFD"...)
		i += width
		last = i
	}
	return append(dst, s[last:]...)
}

// asciiEscape is what replaces an ASCII byte that is not kept as it is.
func asciiEscape(c byte) string {
	switch c {
	case '"':
		return "&#34;"
	case '\'':
		return "&#39;"
	case '&':
		return "&amp;"
	case '<':
		return "&lt;"
	case '>':
		return "&gt;"
	case '\t':
		return "&#x9;"
	case '\n':
		return "&#xA;"
	case '\r':
		return "&#xD;"
	}
	return "\uFFFD"
}

// xmlChar reports whether r, at or above U+0080, is a character XML allows.
func xmlChar(r rune) bool {
	return r <= 0xD7FF || r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF
}

// appendCommonPrefixes appends the CommonPrefixes elements of a listing.
func appendCommonPrefixes(dst []byte, prefixes []CommonPrefix) []byte {
	for i := range prefixes {
		dst = append(dst, "<CommonPrefixes>"...)
		dst = appendElem(dst, "Prefix", prefixes[i].Prefix)
		dst = append(dst, "</CommonPrefixes>"...)
	}
	return dst
}
