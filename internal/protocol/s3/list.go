package s3

import (
	"encoding/base64"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/claudefs/cfs-gateway/internal/core"
	"github.com/claudefs/cfs-gateway/internal/protocol/s3/s3err"
	"github.com/claudefs/cfs-gateway/internal/protocol/s3/s3xml"
)

// maxListKeys is the most keys one listing page returns.
const maxListKeys = 1000

// listedKey is one key of a listing page.
type listedKey struct {
	key  string
	attr *core.Attr
	etag string
	size int64
}

// listPage is one page of keys and common prefixes, in key order.
type listPage struct {
	keys      []listedKey
	prefixes  []string
	truncated bool
	last      string // the last key or prefix of the page
}

// listParams are the inputs of a listing.
type listParams struct {
	prefix, delim string
	after         string // list keys after this one ("" = from the start)
	max           int
}

// startAfter turns a resume position into where the walk starts: after
// the key, and after every key of it when it is a common prefix (a page
// may end on one).
func (p *listParams) start() (string, bool) {
	start, inclusive := p.after, false
	if p.delim != "" && strings.HasPrefix(start, p.prefix) {
		rel := start[len(p.prefix):]
		if i := strings.Index(rel, p.delim); i >= 0 && i+len(p.delim) == len(rel) {
			start += "\xff"
		}
	}
	if start < p.prefix {
		start, inclusive = p.prefix, true
	}
	return start, inclusive
}

// commonPrefix returns the common prefix key rolls up into, or "".
func (p *listParams) commonPrefix(key string) string {
	if p.delim == "" || !strings.HasPrefix(key, p.prefix) {
		return ""
	}
	rel := key[len(p.prefix):]
	if i := strings.Index(rel, p.delim); i >= 0 {
		return key[:len(p.prefix)+i+len(p.delim)]
	}
	return ""
}

// list returns one page of the keys of b.
func (q *request) list(b *bucket, p listParams) (*listPage, error) {
	page := &listPage{}
	if p.max == 0 {
		return page, nil
	}
	// Most pages fill: growing the slice key by key would copy it over
	// and over.
	page.keys = make([]listedKey, 0, p.max)
	lastCP := ""
	full := func() bool { return len(page.keys)+len(page.prefixes) >= p.max }
	addPrefix := func(cp string) walkAction {
		if cp == lastCP {
			return walkSkipSubtree
		}
		if full() {
			page.truncated = true
			return walkStop
		}
		page.prefixes = append(page.prefixes, cp)
		lastCP, page.last = cp, cp
		return walkSkipSubtree
	}
	addKey := func(k listedKey) walkAction {
		if full() {
			page.truncated = true
			return walkStop
		}
		page.keys = append(page.keys, k)
		page.last = k.key
		return walkContinue
	}
	// A page needs its keys and one more to know that it is truncated.
	w := &walker{s: q.s, ctx: q.ctx, id: q.ident, prefix: p.prefix, batch: p.max + 1, xattr: xEtag,
		want: func() int { return p.max - len(page.keys) - len(page.prefixes) }}
	w.visit = func(it walkItem) (walkAction, error) {
		if cp := p.commonPrefix(it.key); cp != "" {
			if it.dir && !q.s.dirHasKeys(q, it.attr) {
				return walkSkipSubtree, nil
			}
			act := addPrefix(cp)
			if act == walkStop {
				return walkStop, nil
			}
			if !it.dir || len(cp) < len(it.key) {
				// Every key up to the end of cp rolls up too: resume after it.
				w.skipTo = max(cp+"\xff", it.key)
				return walkContinue, errWalkRestart
			}
			return walkSkipSubtree, nil
		}
		rec := it.xattr
		if !it.xattrKnown {
			rec, _ = q.s.fs.GetXattr(q.ctx, &core.Root, it.attr.Ino, xEtag)
		}
		if it.dir {
			if rec == nil {
				return walkContinue, nil // a plain directory: only its keys show
			}
			return addKey(listedKey{key: it.key, attr: it.attr, etag: etagOf(it.attr, rec), size: objectSize(it.attr, rec)}), nil
		}
		return addKey(listedKey{key: it.key, attr: it.attr, etag: etagOf(it.attr, rec), size: int64(it.attr.Size)}), nil
	}
	start, inclusive := p.start()
	if err := w.run(b.ino(), start, inclusive); err != nil {
		return nil, err
	}
	return page, nil
}

// dirHasKeys reports whether a directory about to be rolled up into a
// common prefix holds anything: an empty directory left behind has no key.
func (s *Server) dirHasKeys(q *request, a *core.Attr) bool {
	if _, err := s.fs.GetXattr(q.ctx, &core.Root, a.Ino, xEtag); err == nil {
		return true
	}
	ents, _, err := s.fs.ReadDirNames(q.ctx, &core.Root, a.Ino, "", 1, false)
	return err == nil && len(ents) > 0
}

// maxKeysParam parses max-keys (default and cap 1000).
func (q *request) maxKeysParam(name string) (int, error) {
	v := q.get(name)
	if v == "" {
		return maxListKeys, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, s3err.InvalidArgument.With("%s must be a non-negative integer.", name).WithExtra("ArgumentName", name)
	}
	return min(n, maxListKeys), nil
}

// encodingType checks encoding-type and returns an encoder of keys.
func (q *request) encodingType() (string, func(string) string, error) {
	switch et := q.get("encoding-type"); et {
	case "":
		return "", func(s string) string { return s }, nil
	case "url":
		return et, urlEncodeKey, nil
	default:
		return "", nil, s3err.InvalidArgument.With("Invalid Encoding Method specified in Request").WithExtra("ArgumentName", "encoding-type")
	}
}

// urlEncodeKey encodes a key as S3 does for encoding-type=url: like a
// query value, but spaces as "%20" and "/" kept.
func urlEncodeKey(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(url.QueryEscape(s), "+", "%20"), "%2F", "/")
}

func (q *request) listObjectsV1() error {
	b, err := q.bucketFor(access{action: "s3:ListBucket", perm: permRead})
	if err != nil {
		return err
	}
	max, err := q.maxKeysParam("max-keys")
	if err != nil {
		return err
	}
	et, enc, err := q.encodingType()
	if err != nil {
		return err
	}
	p := listParams{prefix: q.get("prefix"), delim: q.get("delimiter"), after: q.get("marker"), max: max}
	page, err := q.list(b, p)
	if err != nil {
		return err
	}
	marker := enc(p.after)
	// S3 does not encode the Prefix of a v1 listing (clients do not
	// decode it there).
	res := s3xml.ListBucketResult{Xmlns: s3xml.Namespace, Name: b.name, Prefix: p.prefix, Marker: &marker,
		MaxKeys: max, Delimiter: enc(p.delim), EncodingType: et, IsTruncated: page.truncated}
	if page.truncated && p.delim != "" {
		res.NextMarker = enc(page.last)
	}
	q.fillContents(&res, page, enc, true)
	return q.writeListPage(res.AppendXML)
}

func (q *request) listObjectsV2() error {
	b, err := q.bucketFor(access{action: "s3:ListBucket", perm: permRead})
	if err != nil {
		return err
	}
	max, err := q.maxKeysParam("max-keys")
	if err != nil {
		return err
	}
	et, enc, err := q.encodingType()
	if err != nil {
		return err
	}
	p := listParams{prefix: q.get("prefix"), delim: q.get("delimiter"), after: q.get("start-after"), max: max}
	token := q.get("continuation-token")
	if token != "" {
		raw, err := base64.RawURLEncoding.DecodeString(token)
		if err != nil {
			return s3err.InvalidArgument.With("The continuation token provided is incorrect").WithExtra("ArgumentName", "continuation-token")
		}
		p.after = string(raw)
	}
	page, err := q.list(b, p)
	if err != nil {
		return err
	}
	count := len(page.keys) + len(page.prefixes)
	res := s3xml.ListBucketResult{Xmlns: s3xml.Namespace, Name: b.name, Prefix: enc(p.prefix), MaxKeys: max,
		Delimiter: enc(p.delim), EncodingType: et, IsTruncated: page.truncated, KeyCount: &count,
		StartAfter: enc(q.get("start-after"))}
	if q.has("continuation-token") {
		res.Continuation = &token
	}
	if page.truncated {
		res.NextContinue = base64.RawURLEncoding.EncodeToString([]byte(page.last))
	}
	q.fillContents(&res, page, enc, q.get("fetch-owner") == "true")
	return q.writeListPage(res.AppendXML)
}

// listDocs recycles the buffers listing pages are encoded into (*[]byte):
// a full page is a few hundred KiB, and allocating that afresh for every
// page costs as much as encoding it.
var listDocs sync.Pool

// maxPooledDoc is the largest buffer listDocs keeps: a page of long or
// much-escaped keys should not stay allocated for the pages after it.
const maxPooledDoc = 2 << 20

// writeListPage answers with a listing page, encoded by appendXML (an
// AppendXML method of s3xml) into a recycled buffer.
func (q *request) writeListPage(appendXML func(dst []byte) []byte) error {
	buf, _ := listDocs.Get().(*[]byte)
	if buf == nil {
		buf = new([]byte)
	}
	doc := appendXML((*buf)[:0])
	err := q.writeXMLDoc(200, doc)
	// The response writer does not keep the bytes it was given.
	if cap(doc) <= maxPooledDoc {
		*buf = doc
		listDocs.Put(buf)
	}
	return err
}

func (q *request) fillContents(res *s3xml.ListBucketResult, page *listPage, enc func(string) string, owner bool) {
	res.Contents = make([]s3xml.Object, 0, len(page.keys))
	// The keys of a page mostly share an owner or a few: each is looked
	// up once, and the objects share its record.
	var owners map[uint32]*s3xml.Owner
	var stamp [32]byte
	for _, k := range page.keys {
		o := s3xml.Object{Key: enc(k.key), LastModified: string(s3xml.AppendTime(stamp[:0], k.attr.Mtime)), ETag: k.etag,
			Size: k.size, StorageClass: "STANDARD"}
		if owner {
			ow, ok := owners[k.attr.UID]
			if !ok {
				found := q.ownerOf(k.attr.UID)
				ow = &found
				if owners == nil {
					owners = make(map[uint32]*s3xml.Owner)
				}
				owners[k.attr.UID] = ow
			}
			o.Owner = ow
		}
		res.Contents = append(res.Contents, o)
	}
	if len(page.prefixes) > 0 {
		res.CommonPrefixes = make([]s3xml.CommonPrefix, 0, len(page.prefixes))
	}
	for _, cp := range page.prefixes {
		res.CommonPrefixes = append(res.CommonPrefixes, s3xml.CommonPrefix{Prefix: enc(cp)})
	}
}
