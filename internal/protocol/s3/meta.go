package s3

import (
	"bytes"
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/claudefs/cfs-gateway/internal/core"
	"github.com/claudefs/cfs-gateway/internal/protocol/s3/s3err"
	"github.com/claudefs/cfs-gateway/internal/protocol/s3/s3xml"
	"github.com/claudefs/cfs-gateway/internal/protocol/s3/sigv4"
)

// objectMeta is the S3 metadata of an object version, stored as JSON in
// the xMeta attribute. It is written once, with the object.
type objectMeta struct {
	ContentType string            `json:"ct,omitempty"`
	Headers     map[string]string `json:"h,omitempty"` // system headers, canonical names
	User        map[string]string `json:"u,omitempty"` // x-amz-meta-*, lower-case names without the prefix
	// Checksums are the verified checksums: "CRC32" -> base64.
	Checksums    map[string]string `json:"ck,omitempty"`
	ChecksumType string            `json:"ckt,omitempty"` // FULL_OBJECT or COMPOSITE
	VersionID    string            `json:"v,omitempty"`   // "" is the null version
	Parts        []int64           `json:"p,omitempty"`   // part sizes of a multipart object
	// PartChecksums are the parts' checksums (base64, of the upload's
	// algorithm), for GetObjectAttributes; empty without one.
	PartChecksums []string `json:"pc,omitempty"`
	DeleteMarker  bool     `json:"dm,omitempty"`
	// Owner is the uid of a delete marker's creator (an object's owner is
	// its file's uid).
	Owner        uint32 `json:"o,omitempty"`
	Created      int64  `json:"t,omitempty"` // unix nanoseconds the version was made
	StorageClass string `json:"sc,omitempty"`
	// UploadID is the multipart upload that made the object, so that a
	// repeated CompleteMultipartUpload is answered again.
	UploadID string `json:"up,omitempty"`
}

func decodeMeta(b []byte) objectMeta {
	var m objectMeta
	if len(b) > 0 {
		// A damaged record loses the metadata, not the object.
		_ = json.Unmarshal(b, &m)
	}
	return m
}

func encodeMeta(m *objectMeta) []byte {
	b, _ := json.Marshal(m)
	return b
}

// etagRecord is the xEtag attribute: the ETag and the mtime and size of
// the file it describes, so that a change by another protocol is noticed.
func etagRecord(etag string, a *core.Attr) []byte {
	return []byte(etag + " " + strconv.FormatInt(a.Mtime.UnixNano(), 10) + " " + strconv.FormatUint(a.Size, 10))
}

// markerRecord is the xEtag attribute of a directory marker: its data
// (n bytes, in xBody) does not change with the directory's entries.
func markerRecord(etag string, n int) []byte {
	return []byte(etag + " dir " + strconv.Itoa(n))
}

// parseEtagRecord splits an xEtag record into its ETag, its stamp (the
// file's mtime in unix nanoseconds, or "dir" for a directory marker) and
// its size. The fields are slices of rec: listings parse one record per
// key, and copying them would cost more than the parse. A record that is
// not three non-empty fields separated by single spaces (as etagRecord and
// markerRecord write them) is not ok.
func parseEtagRecord(rec []byte) (etag, stamp, size []byte, ok bool) {
	etag, rest, ok1 := bytes.Cut(rec, []byte{' '})
	stamp, size, ok2 := bytes.Cut(rest, []byte{' '})
	if !ok1 || !ok2 || len(etag) == 0 || len(stamp) == 0 || len(size) == 0 || bytes.IndexByte(size, ' ') >= 0 {
		return nil, nil, nil, false
	}
	return etag, stamp, size, true
}

// recordDescribes reports whether the stamp and size of an etag record
// still describe the file or directory a.
func recordDescribes(a *core.Attr, stamp, size []byte) bool {
	if string(stamp) == "dir" {
		return a.Type == core.TypeDir
	}
	// Compared as text, as the record was written: "+1" or "01" is not 1.
	var buf [20]byte
	return bytes.Equal(stamp, strconv.AppendInt(buf[:0], a.Mtime.UnixNano(), 10)) &&
		bytes.Equal(size, strconv.AppendUint(buf[:0], a.Size, 10))
}

// metaValid reports whether the etag record still describes the file.
func metaValid(a *core.Attr, rec []byte) bool {
	_, stamp, size, ok := parseEtagRecord(rec)
	return ok && recordDescribes(a, stamp, size)
}

// objectSize is the size of the object a file or directory marker holds.
func objectSize(a *core.Attr, rec []byte) int64 {
	if a.Type == core.TypeRegular {
		return int64(a.Size)
	}
	if _, stamp, size, ok := parseEtagRecord(rec); ok && string(stamp) == "dir" {
		n, _ := strconv.ParseInt(string(size), 10, 64)
		return n
	}
	return 0
}

// etagOf returns the quoted ETag of a file: the recorded one while it
// describes the file, else one derived from the inode, its change counter,
// size and mtime (files written by other protocols).
func etagOf(a *core.Attr, rec []byte) string {
	if etag, stamp, size, ok := parseEtagRecord(rec); ok && recordDescribes(a, stamp, size) {
		return `"` + string(etag) + `"`
	}
	return `"` + derivedETag(a) + `"`
}

// derivedETag is the ETag of a file that S3 did not write: stable while
// the file does not change, different after any change.
func derivedETag(a *core.Attr) string {
	var b [40]byte
	binary.BigEndian.PutUint64(b[0:], uint64(a.Ino))
	binary.BigEndian.PutUint64(b[8:], a.Gen)
	binary.BigEndian.PutUint64(b[16:], a.Size)
	binary.BigEndian.PutUint64(b[24:], uint64(a.Mtime.UnixNano()))
	binary.BigEndian.PutUint64(b[32:], a.ChangeID)
	sum := md5.Sum(b[:])
	return hex.EncodeToString(sum[:])
}

// systemHeaders are the request headers stored with an object and returned
// with it.
var systemHeaders = []string{"Cache-Control", "Content-Disposition", "Content-Encoding", "Content-Language", "Expires",
	"X-Amz-Website-Redirect-Location"}

// maxUserMeta is S3's limit on the size of user metadata.
const maxUserMeta = 2 << 10

// metaFromHeaders builds the metadata of a new object from its request.
func metaFromHeaders(h http.Header) (objectMeta, error) {
	var m objectMeta
	m.ContentType = h.Get("Content-Type")
	for _, name := range systemHeaders {
		v := h.Get(name)
		if name == "Content-Encoding" {
			v = sigv4.ContentEncoding(h)
		}
		if v != "" {
			if m.Headers == nil {
				m.Headers = map[string]string{}
			}
			m.Headers[name] = v
		}
	}
	size := 0
	for name, vals := range h {
		lower := strings.ToLower(name)
		if !strings.HasPrefix(lower, "x-amz-meta-") {
			continue
		}
		if m.User == nil {
			m.User = map[string]string{}
		}
		k := lower[len("x-amz-meta-"):]
		v := strings.Join(vals, ",")
		m.User[k] = v
		size += len(k) + len(v)
	}
	if size > maxUserMeta {
		return m, s3err.MetadataTooLarge
	}
	if sc := h.Get("X-Amz-Storage-Class"); sc != "" {
		switch sc {
		case "STANDARD", "REDUCED_REDUNDANCY", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER", "DEEP_ARCHIVE", "GLACIER_IR", "OUTPOSTS", "SNOW", "EXPRESS_ONEZONE":
			if sc != "STANDARD" {
				m.StorageClass = sc
			}
		default:
			return m, s3err.InvalidStorageClass
		}
	}
	return m, nil
}

// setObjectHeaders writes the headers that describe an object.
func (q *request) setObjectHeaders(o *object) {
	h := q.w.Header()
	ct := o.meta.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	h.Set("Content-Type", ct)
	h.Set("ETag", o.etag)
	h.Set("Last-Modified", o.attr.Mtime.UTC().Format(http.TimeFormat))
	h.Set("Accept-Ranges", "bytes")
	for k, v := range o.meta.Headers {
		h.Set(k, v)
	}
	for k, v := range o.meta.User {
		h["x-amz-meta-"+k] = []string{v}
	}
	if o.meta.StorageClass != "" {
		h.Set("X-Amz-Storage-Class", o.meta.StorageClass)
	}
	if o.meta.VersionID != "" || q.versionedBucket {
		h.Set("X-Amz-Version-Id", versionOrNull(o.meta.VersionID))
	}
	if tags := decodeTags(o.x[xTags]); len(tags) > 0 {
		h.Set("X-Amz-Tagging-Count", strconv.Itoa(len(tags)))
	}
	if len(o.meta.Parts) > 0 {
		h.Set("X-Amz-Mp-Parts-Count", strconv.Itoa(len(o.meta.Parts)))
	}
	if r := decodeRetention(o.x[xRetention]); r.Mode != "" {
		h.Set("X-Amz-Object-Lock-Mode", r.Mode)
		h.Set("X-Amz-Object-Lock-Retain-Until-Date", r.Until.UTC().Format(time.RFC3339))
	}
	if lh := string(o.x[xLegalHold]); lh != "" {
		h.Set("X-Amz-Object-Lock-Legal-Hold", lh)
	}
	if q.r.Header.Get("X-Amz-Checksum-Mode") == "ENABLED" {
		for alg, v := range o.meta.Checksums {
			h.Set("X-Amz-Checksum-"+alg, v)
		}
		if o.meta.ChecksumType != "" && len(o.meta.Checksums) > 0 {
			h.Set("X-Amz-Checksum-Type", o.meta.ChecksumType)
		}
	}
}

func versionOrNull(v string) string {
	if v == "" {
		return "null"
	}
	return v
}

// decodeTags decodes the xTags attribute (a URL query string).
func decodeTags(b []byte) []s3xml.Tag {
	if len(b) == 0 {
		return nil
	}
	vals, err := url.ParseQuery(string(b))
	if err != nil {
		return nil
	}
	tags := make([]s3xml.Tag, 0, len(vals))
	for k, v := range vals {
		tags = append(tags, s3xml.Tag{Key: k, Value: v[0]})
	}
	sort.Slice(tags, func(i, j int) bool { return tags[i].Key < tags[j].Key })
	return tags
}

// encodeTags encodes a tag set for the xTags attribute.
func encodeTags(tags []s3xml.Tag) []byte {
	v := url.Values{}
	for _, t := range tags {
		v.Set(t.Key, t.Value)
	}
	return []byte(v.Encode())
}

// parseTaggingHeader parses the x-amz-tagging header (a URL query string).
func parseTaggingHeader(h string) ([]s3xml.Tag, error) {
	vals, err := url.ParseQuery(h)
	if err != nil {
		return nil, s3err.InvalidArgument.With("The x-amz-tagging header is not a valid URL query string.")
	}
	var tags []s3xml.Tag
	for k, v := range vals {
		if len(v) > 1 {
			return nil, s3err.InvalidTag.With("Cannot provide multiple Tags with the same key")
		}
		tags = append(tags, s3xml.Tag{Key: k, Value: v[0]})
	}
	if err := s3xml.CheckTags(tags, s3xml.MaxObjectTags); err != nil {
		return nil, err
	}
	return tags, nil
}

// retention is an object's retention setting (xRetention: "MODE unixsec").
type retention struct {
	Mode  string
	Until time.Time
}

func decodeRetention(b []byte) retention {
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return retention{}
	}
	sec, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return retention{}
	}
	return retention{Mode: f[0], Until: time.Unix(sec, 0)}
}

func encodeRetention(r retention) []byte {
	return []byte(r.Mode + " " + strconv.FormatInt(r.Until.Unix(), 10))
}
