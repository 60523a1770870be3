package s3

import (
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/claudefs/cfs-gateway/internal/core"
	"github.com/claudefs/cfs-gateway/internal/protocol/s3/s3err"
	"github.com/claudefs/cfs-gateway/internal/protocol/s3/s3xml"
)

// Multipart layout: an upload is the directory
//
//	<root>/.cfs-s3/uploads/<bucket>/<upload id>/
//
// owned by its initiator, with the upload's record (key, metadata, ACL,
// tags, object lock settings) in an attribute, and one file per uploaded
// part, named by its zero-padded number and published atomically, so a
// part is there whole or not at all. The state lives in the namespace,
// so any gateway continues an upload that another started. Completion
// links the parts' blocks into a new temporary file with CopyRange (no
// data is copied) and publishes it like a PUT.

// uploadRecord is the xUpload attribute of an upload directory.
type uploadRecord struct {
	Key       string     `json:"k"`
	Initiator uint32     `json:"i"`
	Created   int64      `json:"t"`
	Meta      objectMeta `json:"m"`
	Tags      string     `json:"g,omitempty"`
	ACL       *acl       `json:"a,omitempty"`
	RetMode   string     `json:"rm,omitempty"`
	RetUntil  int64      `json:"ru,omitempty"`
	Hold      string     `json:"h,omitempty"`
	Owner     uint32     `json:"o"`           // the uid the object will belong to
	Checksum  string     `json:"c,omitempty"` // x-amz-checksum-algorithm
	CkType    string     `json:"ct,omitempty"`
}

// upload is an open multipart upload.
type upload struct {
	id     string
	dir    core.Ino
	parent core.Ino // uploads/<bucket>
	attr   core.Attr
	rec    uploadRecord
}

func partName(n int) string { return fmt.Sprintf("%05d", n) }

func newUploadID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// partLimiter bounds the parts of one upload received at once.
type partLimiter struct {
	mu sync.Mutex
	m  map[string]int
}

func (l *partLimiter) acquire(id string, max int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = map[string]int{}
	}
	if l.m[id] >= max {
		return false
	}
	l.m[id]++
	return true
}

func (l *partLimiter) release(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m[id] <= 1 {
		delete(l.m, id)
	} else {
		l.m[id]--
	}
}

// uploadsDir is the directory of a bucket's uploads.
func (s *Server) uploadsDir(ctx context.Context, bucket string) (core.Ino, error) {
	return s.hiddenDir(ctx, "uploads", bucket)
}

// loadUpload returns upload id of key in bucket, or NoSuchUpload.
func (s *Server) loadUpload(ctx context.Context, bucket, key, id string) (*upload, error) {
	if len(id) != 32 || strings.ContainsAny(id, "/.") {
		return nil, s3err.NoSuchUpload
	}
	parent, err := s.uploadsDir(ctx, bucket)
	if err != nil {
		return nil, err
	}
	a, err := s.fs.Lookup(ctx, &core.Root, parent, id)
	if err != nil {
		if errno(err) == syscall.ENOENT {
			return nil, s3err.NoSuchUpload
		}
		return nil, err
	}
	raw, err := s.fs.GetXattr(ctx, &core.Root, a.Ino, xUpload)
	if err != nil {
		return nil, s3err.NoSuchUpload
	}
	u := &upload{id: id, dir: a.Ino, parent: parent, attr: a}
	if json.Unmarshal(raw, &u.rec) != nil || (key != "" && u.rec.Key != key) {
		return nil, s3err.NoSuchUpload
	}
	return u, nil
}

// removeUploadDir deletes an upload's parts and directory, as the gateway.
func (s *Server) removeUploadDir(ctx context.Context, parent core.Ino, name string, dir core.Ino) {
	for {
		ents, more, err := s.fs.ReadDirNames(ctx, &core.Root, dir, "", 1000, false)
		if err != nil {
			break
		}
		for _, e := range ents {
			s.fs.Remove(ctx, &core.Root, dir, e.Name)
		}
		if !more {
			break
		}
	}
	if err := s.fs.Rmdir(ctx, &core.Root, parent, name); err != nil && errno(err) != syscall.ENOENT {
		s.log.Warn("removing a multipart upload directory failed", "upload", name, "err", err)
	}
}

// initMultipartGauge sets gateway_s3_multipart_active from the uploads
// found in the namespace once, so that a restarted gateway reports the
// uploads it inherited.
func (s *Server) initMultipartGauge(ctx context.Context) {
	if s.cfg.Metrics == nil {
		return
	}
	s.gaugeOnce.Do(func() {
		ud, err := s.hiddenDir(ctx, "uploads")
		if err != nil {
			return
		}
		n := 0
		buckets, _, _ := s.fs.ReadDirNames(ctx, &core.Root, ud, "", 100000, false)
		for _, b := range buckets {
			after := ""
			for {
				ents, more, err := s.fs.ReadDirNames(ctx, &core.Root, b.Ino, after, 1000, false)
				if err != nil {
					break
				}
				n += len(ents)
				if len(ents) > 0 {
					after = ents[len(ents)-1].Name
				}
				if !more {
					break
				}
			}
		}
		s.cfg.Metrics.S3MultipartActive.Add(float64(n))
	})
}

func (s *Server) multipartFailed() {
	if s.cfg.Metrics != nil {
		s.cfg.Metrics.S3MultipartFailed.Inc()
	}
}

func (s *Server) multipartActive(delta float64) {
	if s.cfg.Metrics != nil {
		s.cfg.Metrics.S3MultipartActive.Add(delta)
	}
}

func (q *request) createMultipartUpload() error {
	b, err := q.bucketFor(access{action: "s3:PutObject", perm: permWrite})
	if err != nil {
		return err
	}
	kp, err := splitKey(q.key)
	if err != nil {
		return err
	}
	if kp.marker {
		return errDirectoryKeyBody
	}
	q.s.initMultipartGauge(q.ctx)
	var v newVersion
	if err := q.objectOptions(b, &v); err != nil {
		return err
	}
	rec := uploadRecord{Key: q.key, Initiator: q.caller.UID, Owner: v.owner, Created: q.s.now().UnixNano(), Meta: v.meta,
		ACL: v.acl, RetMode: v.ret.Mode, Hold: v.hold}
	if v.hasTags {
		rec.Tags = string(encodeTags(v.tags))
	}
	if v.ret.Mode != "" {
		rec.RetUntil = v.ret.Until.Unix()
	}
	if alg := strings.ToUpper(q.r.Header.Get("X-Amz-Checksum-Algorithm")); alg != "" {
		if _, ok := newChecksum(alg); !ok {
			return s3err.InvalidRequest.With("Checksum algorithm %q is not supported.", alg)
		}
		rec.Checksum = alg
		rec.CkType = "COMPOSITE"
		if t := q.r.Header.Get("X-Amz-Checksum-Type"); t == "FULL_OBJECT" {
			rec.CkType = t
		}
	}
	parent, err := q.s.uploadsDir(q.ctx, b.name)
	if err != nil {
		return err
	}
	id := newUploadID()
	d, err := q.s.fs.Mkdir(q.ctx, q.ident, parent, id, 0o700)
	if err != nil {
		return err
	}
	raw, _ := json.Marshal(rec)
	if err := q.s.fs.UpdateXattrs(q.ctx, &core.Root, d.Ino, map[string][]byte{xUpload: raw}, nil); err != nil {
		q.s.fs.Rmdir(q.ctx, &core.Root, parent, id)
		return err
	}
	q.s.multipartActive(1)
	if rec.Checksum != "" {
		q.w.Header().Set("X-Amz-Checksum-Algorithm", rec.Checksum)
		q.w.Header().Set("X-Amz-Checksum-Type", rec.CkType)
	}
	q.setAbortHeaders(b, q.key, time.Unix(0, rec.Created))
	return q.writeXML(200, s3xml.InitiateMultipartUploadResult{Xmlns: s3xml.Namespace, Bucket: b.name, Key: q.key, UploadID: id})
}

// partNumber parses the partNumber parameter.
func (q *request) partNumber() (int, error) {
	n, err := strconv.Atoi(q.get("partNumber"))
	if err != nil || n < 1 || n > s3xml.MaxParts {
		return 0, s3err.InvalidArgument.With("Part number must be an integer between 1 and %d, inclusive", s3xml.MaxParts).WithExtra("ArgumentName", "partNumber")
	}
	return n, nil
}

// idleReader fails a body that stays idle longer than the part timeout.
type idleReader struct {
	r       io.Reader
	rc      *http.ResponseController
	timeout time.Duration
}

func (i *idleReader) Read(p []byte) (int, error) {
	i.rc.SetReadDeadline(time.Now().Add(i.timeout))
	n, err := i.r.Read(p)
	if err != nil && isTimeout(err) {
		return n, s3err.RequestTimeout.With("No part data was received for %v (s3.part_timeout_ms); the part upload failed.", i.timeout)
	}
	return n, err
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// partTarget is what UploadPart and UploadPartCopy write into, once the
// caller may write to the bucket: the part number and the upload.
func (q *request) partTarget() (int, *upload, error) {
	b, err := q.bucketFor(access{action: "s3:PutObject", perm: permWrite})
	if err != nil {
		return 0, nil, err
	}
	n, err := q.partNumber()
	if err != nil {
		return 0, nil, err
	}
	u, err := q.s.loadUpload(q.ctx, b.name, q.key, q.get("uploadId"))
	if err != nil {
		return 0, nil, err
	}
	return n, u, nil
}

func (q *request) uploadPart() error {
	n, u, err := q.partTarget()
	if err != nil {
		return err
	}
	if missingLength(q.r) {
		return s3err.MissingContentLength
	}
	if q.auth.DecodedLength > maxPutSize {
		return s3err.EntityTooLarge
	}
	if !q.s.inflight.acquire(u.id, q.s.cfg.MaxConcurrentParts) {
		q.s.multipartFailed()
		return s3err.SlowDown.With("Too many parts of upload %s are being received at once (s3.max_concurrent_parts=%d); retry this part later.", u.id, q.s.cfg.MaxConcurrentParts)
	}
	defer q.s.inflight.release(u.id)
	rc := http.NewResponseController(q.w)
	body := &idleReader{r: q.auth.Body, rc: rc, timeout: q.s.cfg.PartTimeout}
	defer rc.SetReadDeadline(time.Time{})
	part, err := q.writePart(u, n, func(tmp core.Ino) (string, map[string]string, error) {
		if _, err := q.writeBody(tmp, body, nil); err != nil {
			return "", nil, err
		}
		var ck map[string]string
		if q.auth.Checksums != nil {
			ck = q.auth.Checksums()
		}
		return hex.EncodeToString(q.auth.MD5()), ck, nil
	})
	if err != nil {
		q.s.multipartFailed()
		return err
	}
	h := q.w.Header()
	h.Set("ETag", `"`+part.etag+`"`)
	for alg, v := range part.meta.Checksums {
		h.Set("X-Amz-Checksum-"+alg, v)
	}
	return q.reply(200)
}

// writePart stores part n of u: fill writes the data into a temporary
// file and returns its MD5 and checksums; the part is published under its
// number only when complete.
func (q *request) writePart(u *upload, n int, fill func(tmp core.Ino) (string, map[string]string, error)) (*newVersion, error) {
	tmp, err := q.s.fs.CreateTemp(q.ctx, q.ident, u.dir, 0o600)
	if err != nil {
		return nil, notUpload(err)
	}
	ok := false
	defer func() {
		if !ok {
			q.s.discard(tmp.Ino)
		}
	}()
	etag, ck, err := fill(tmp.Ino)
	if err != nil {
		return nil, err
	}
	if u.rec.Checksum != "" {
		if _, has := ck[u.rec.Checksum]; !has {
			// The part must carry the upload's checksum: compute it.
			sum, err := q.s.checksumOf(q.ctx, q.ident, tmp.Ino, u.rec.Checksum)
			if err != nil {
				return nil, err
			}
			if ck == nil {
				ck = map[string]string{}
			}
			ck[u.rec.Checksum] = sum
		}
	}
	v := &newVersion{etag: etag, meta: objectMeta{Checksums: ck}}
	// The size counts data still buffered; the data, the part's mtime and
	// its records commit with its name.
	if v.tmp, err = q.s.fs.GetAttr(q.ctx, tmp.Ino); err != nil {
		return nil, err
	}
	v.tmp.Mtime = q.s.now()
	opts := core.PublishOptions{Mtime: v.tmp.Mtime, Xattrs: map[string][]byte{xEtag: etagRecord(etag, &v.tmp), xMeta: encodeMeta(&v.meta)}}
	if _, err := q.s.fs.PublishWith(q.ctx, q.ident, tmp.Ino, u.dir, partName(n), opts); err != nil {
		return nil, notUpload(err)
	}
	ok = true
	return v, nil
}

// notUpload turns the disappearance of an upload's directory (aborted or
// completed meanwhile) into NoSuchUpload.
func notUpload(err error) error {
	switch errno(err) {
	case syscall.ENOENT, syscall.ESTALE:
		return s3err.NoSuchUpload
	}
	return err
}

// copySource is a parsed x-amz-copy-source.
type copySource struct {
	bucket, key, versionID string
}

func parseCopySource(h string) (copySource, error) {
	var cs copySource
	raw := h
	if i := strings.Index(raw, "?"); i >= 0 {
		q := raw[i+1:]
		raw = raw[:i]
		for _, kv := range strings.Split(q, "&") {
			if v, ok := strings.CutPrefix(kv, "versionId="); ok {
				cs.versionID = v
			}
		}
	}
	dec, err := unescapePath(raw)
	if err != nil {
		return cs, s3err.InvalidArgument.With("Copy Source must mention the source bucket and key: sourcebucket/sourcekey").WithExtra("ArgumentName", "x-amz-copy-source")
	}
	dec = strings.TrimPrefix(dec, "/")
	b, k, ok := strings.Cut(dec, "/")
	if !ok || b == "" || k == "" {
		return cs, s3err.InvalidArgument.With("Copy Source must mention the source bucket and key: sourcebucket/sourcekey").WithExtra("ArgumentName", "x-amz-copy-source")
	}
	cs.bucket, cs.key = b, k
	return cs, nil
}

// copySourceObject loads and authorizes the source of a copy.
func (q *request) copySourceObject() (*bucket, *object, error) {
	cs, err := parseCopySource(q.r.Header.Get("X-Amz-Copy-Source"))
	if err != nil {
		return nil, nil, err
	}
	sb, err := q.s.loadBucket(q.ctx, cs.bucket)
	if err != nil {
		return nil, nil, err
	}
	var o *object
	if cs.versionID != "" {
		o, err = q.s.findVersion(q.ctx, sb, cs.key, cs.versionID)
	} else {
		o, err = q.s.lookupObject(q.ctx, &core.Root, sb, cs.key)
	}
	ac := access{action: "s3:GetObject", perm: permRead, onObject: true}
	if cs.versionID != "" {
		ac.action = "s3:GetObjectVersion"
	}
	if err != nil {
		if aerr := q.authorize(sb, ac, nil); aerr != nil {
			return nil, nil, aerr
		}
		return nil, nil, err
	}
	if o.meta.DeleteMarker {
		return nil, nil, s3err.InvalidRequest.With("The source of a copy request may not specifically refer to a delete marker by version id.")
	}
	saved := q.key
	q.key = cs.key
	err = q.authorize(sb, ac, o)
	q.key = saved
	if err != nil {
		return nil, nil, err
	}
	if o.attr.Type != core.TypeRegular {
		return nil, nil, s3err.InvalidRequest.With("The source of a copy request must be an object with data.")
	}
	if cs.versionID != "" {
		q.w.Header().Set("X-Amz-Copy-Source-Version-Id", cs.versionID)
	} else if sb.versioned() {
		q.w.Header().Set("X-Amz-Copy-Source-Version-Id", versionOrNull(o.meta.VersionID))
	}
	return sb, o, nil
}

// copyConditions applies the x-amz-copy-source-if-* headers.
func copyConditions(h http.Header, o *object) error {
	c := http.Header{}
	for from, to := range map[string]string{
		"X-Amz-Copy-Source-If-Match":            "If-Match",
		"X-Amz-Copy-Source-If-None-Match":       "If-None-Match",
		"X-Amz-Copy-Source-If-Modified-Since":   "If-Modified-Since",
		"X-Amz-Copy-Source-If-Unmodified-Since": "If-Unmodified-Since",
	} {
		if v := h.Get(from); v != "" {
			c.Set(to, v)
		}
	}
	if err := checkConditions(c, o.etag, o.attr.Mtime); err != nil {
		return s3err.PreconditionFailed
	}
	return nil
}

func (q *request) uploadPartCopy() error {
	n, u, err := q.partTarget()
	if err != nil {
		return err
	}
	_, src, err := q.copySourceObject()
	if err != nil {
		return err
	}
	if err := copyConditions(q.r.Header, src); err != nil {
		return err
	}
	size := int64(src.attr.Size)
	start, length := int64(0), size
	if rg := q.r.Header.Get("X-Amz-Copy-Source-Range"); rg != "" {
		spec, ok := strings.CutPrefix(rg, "bytes=")
		a, z, ok2 := strings.Cut(spec, "-")
		first, err1 := strconv.ParseInt(a, 10, 64)
		last, err2 := strconv.ParseInt(z, 10, 64)
		if !ok || !ok2 || err1 != nil || err2 != nil || first < 0 || last < first {
			return s3err.InvalidArgument.With("The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy").WithExtra("ArgumentName", "x-amz-copy-source-range")
		}
		if last >= size {
			return s3err.InvalidRange.With("The requested range is not satisfiable")
		}
		start, length = first, last-first+1
	}
	if !q.s.inflight.acquire(u.id, q.s.cfg.MaxConcurrentParts) {
		q.s.multipartFailed()
		return s3err.SlowDown.With("Too many parts of upload %s are being received at once (s3.max_concurrent_parts=%d); retry this part later.", u.id, q.s.cfg.MaxConcurrentParts)
	}
	defer q.s.inflight.release(u.id)
	part, err := q.writePart(u, n, func(tmp core.Ino) (string, map[string]string, error) {
		if err := q.s.fs.CopyRange(q.ctx, q.ident, src.attr.Ino, uint64(start), tmp, 0, uint64(length)); err != nil {
			return "", nil, err
		}
		if start == 0 && length == size && len(src.meta.Parts) == 0 && metaValid(&src.attr, src.x[xEtag]) {
			return strings.Trim(src.etag, `"`), nil, nil
		}
		sum, err := q.s.digestOf(q.ctx, q.ident, tmp, md5.New())
		return hex.EncodeToString(sum), nil, err
	})
	if err != nil {
		q.s.multipartFailed()
		return err
	}
	return q.writeXML(200, s3xml.CopyPartResult{Xmlns: s3xml.Namespace, LastModified: s3xml.Time(part.tmp.Mtime), ETag: `"` + part.etag + `"`})
}

// digestOf hashes the whole content of file ino.
func (s *Server) digestOf(ctx context.Context, id *core.Identity, ino core.Ino, h hash.Hash) ([]byte, error) {
	bp := ioBufs.Get().(*[]byte)
	defer ioBufs.Put(bp)
	buf := *bp
	var off uint64
	for {
		n, eof, err := s.fs.Read(ctx, id, ino, off, buf)
		if err != nil {
			return nil, err
		}
		h.Write(buf[:n])
		off += uint64(n)
		if eof || n == 0 {
			return h.Sum(nil), nil
		}
	}
}

// newChecksum returns a hash of an S3 checksum algorithm.
func newChecksum(alg string) (hash.Hash, bool) {
	switch alg {
	case "CRC32":
		return crc32.NewIEEE(), true
	case "CRC32C":
		return crc32.New(crc32.MakeTable(crc32.Castagnoli)), true
	case "CRC64NVME":
		return crc64.New(crc64NVMETable), true
	case "SHA1":
		return sha1.New(), true
	case "SHA256":
		return sha256.New(), true
	}
	return nil, false
}

// crc64NVMETable is the reflected CRC-64/NVME polynomial.
var crc64NVMETable = crc64.MakeTable(0x9a6c9329ac4bc9b5)

// checksumOf computes an S3 checksum (base64) of a whole file.
func (s *Server) checksumOf(ctx context.Context, id *core.Identity, ino core.Ino, alg string) (string, error) {
	h, ok := newChecksum(alg)
	if !ok {
		return "", s3err.InvalidRequest.With("Checksum algorithm %q is not supported.", alg)
	}
	sum, err := s.digestOf(ctx, id, ino, h)
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(sum), nil
}

// storedPart is an uploaded part.
type storedPart struct {
	number int
	attr   core.Attr
	etag   string // unquoted
	meta   objectMeta
}

// parts lists the parts of u in order, from part number after on, at most
// limit (0: all).
func (s *Server) parts(ctx context.Context, u *upload, after, limit int) ([]storedPart, bool, error) {
	var out []storedPart
	name := ""
	if after > 0 {
		name = partName(after)
	}
	for {
		ents, more, err := s.fs.ReadDirNames(ctx, &core.Root, u.dir, name, 1000, true)
		if err != nil {
			return nil, false, notUpload(err)
		}
		for _, e := range ents {
			name = e.Name
			n, err := strconv.Atoi(e.Name)
			if err != nil || e.Attr == nil || e.Type != core.TypeRegular {
				continue
			}
			if limit > 0 && len(out) == limit {
				return out, true, nil
			}
			x, err := s.fs.GetXattrs(ctx, &core.Root, e.Ino, xPrefix)
			if err != nil {
				continue
			}
			out = append(out, storedPart{number: n, attr: *e.Attr, etag: strings.Trim(etagOf(e.Attr, x[xEtag]), `"`), meta: decodeMeta(x[xMeta])})
		}
		if !more {
			return out, false, nil
		}
	}
}

func checksumsXML(ck map[string]string) s3xml.Checksums {
	return s3xml.Checksums{ChecksumCRC32: ck["CRC32"], ChecksumCRC32C: ck["CRC32C"], ChecksumCRC64NVME: ck["CRC64NVME"],
		ChecksumSHA1: ck["SHA1"], ChecksumSHA256: ck["SHA256"]}
}

func (q *request) listParts() error {
	b, err := q.bucketFor(access{action: "s3:ListMultipartUploadParts", perm: permWrite})
	if err != nil {
		return err
	}
	u, err := q.s.loadUpload(q.ctx, b.name, q.key, q.get("uploadId"))
	if err != nil {
		return err
	}
	max := 1000
	if v := q.get("max-parts"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return s3err.InvalidArgument.With("max-parts must be a non-negative integer").WithExtra("ArgumentName", "max-parts")
		}
		max = min(n, 1000)
	}
	marker := 0
	if v := q.get("part-number-marker"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return s3err.InvalidArgument.With("part-number-marker must be a non-negative integer").WithExtra("ArgumentName", "part-number-marker")
		}
		marker = n
	}
	res := s3xml.ListPartsResult{Xmlns: s3xml.Namespace, Bucket: b.name, Key: q.key, UploadID: u.id,
		Initiator: s3xml.Initiator(q.ownerOf(u.rec.Initiator)), Owner: q.ownerOf(u.rec.Owner), StorageClass: "STANDARD",
		PartNumberMarker: marker, MaxParts: max, ChecksumAlgorithm: u.rec.Checksum, ChecksumType: u.rec.CkType}
	if max > 0 {
		ps, truncated, err := q.s.parts(q.ctx, u, marker, max)
		if err != nil {
			return err
		}
		res.IsTruncated = truncated
		for _, p := range ps {
			res.Parts = append(res.Parts, s3xml.Part{PartNumber: p.number, LastModified: s3xml.Time(p.attr.Mtime),
				ETag: `"` + p.etag + `"`, Size: int64(p.attr.Size), Checksums: checksumsXML(p.meta.Checksums)})
			res.NextPartNumberMarker = p.number
		}
	}
	return q.writeXML(200, res)
}

func (q *request) abortMultipartUpload() error {
	b, err := q.bucketFor(access{action: "s3:AbortMultipartUpload", perm: permWrite})
	if err != nil {
		return err
	}
	u, err := q.s.loadUpload(q.ctx, b.name, q.key, q.get("uploadId"))
	if err != nil {
		return err
	}
	if !q.anonymous && q.caller.UID != 0 && q.caller.UID != u.rec.Initiator && q.caller.UID != b.attr.UID {
		return s3err.AccessDenied
	}
	q.s.removeUploadDir(q.ctx, u.parent, u.id, u.dir)
	q.s.multipartActive(-1)
	return q.reply(http.StatusNoContent)
}

func (q *request) completeMultipartUpload() error {
	b, err := q.bucketFor(access{action: "s3:PutObject", perm: permWrite})
	if err != nil {
		return err
	}
	kp, err := splitKey(q.key)
	if err != nil {
		return err
	}
	u, err := q.s.loadUpload(q.ctx, b.name, q.key, q.get("uploadId"))
	if errors.Is(err, s3err.NoSuchUpload) {
		// Completed already: answer again while the object it made stays.
		if o, lerr := q.s.lookupObject(q.ctx, &core.Root, b, q.key); lerr == nil && o.meta.UploadID == q.get("uploadId") {
			q.versionHeaderOf(o)
			return q.writeXML(200, s3xml.CompleteMultipartUploadResult{Xmlns: s3xml.Namespace, Location: "/" + b.name + "/" + q.key,
				Bucket: b.name, Key: q.key, ETag: o.etag, Checksums: checksumsXML(o.meta.Checksums)})
		}
	}
	if err != nil {
		return err
	}
	body, err := q.readBody(s3xml.MaxRequestDocSize)
	if err != nil {
		q.s.multipartFailed()
		return err
	}
	doc, err := s3xml.ParseCompleteMultipartUpload(body)
	if err != nil {
		q.s.multipartFailed()
		return err
	}
	res, err := q.complete(b, kp, u, doc)
	if err != nil {
		q.s.multipartFailed()
		return err
	}
	return q.writeXML(200, res)
}

// complete assembles the parts doc names into the object.
func (q *request) complete(b *bucket, kp keyPath, u *upload, doc *s3xml.CompleteMultipartUpload) (*s3xml.CompleteMultipartUploadResult, error) {
	stored, _, err := q.s.parts(q.ctx, u, 0, 0)
	if err != nil {
		return nil, err
	}
	byNum := make(map[int]storedPart, len(stored))
	for _, p := range stored {
		byNum[p.number] = p
	}
	// A repeated part number counts once: the entry given last.
	listed := doc.Parts[:0:0]
	for i, p := range doc.Parts {
		if i+1 < len(doc.Parts) && doc.Parts[i+1].PartNumber == p.PartNumber {
			continue
		}
		listed = append(listed, p)
	}
	doc = &s3xml.CompleteMultipartUpload{Parts: listed}
	chosen := make([]storedPart, 0, len(doc.Parts))
	for _, want := range doc.Parts {
		p, ok := byNum[want.PartNumber]
		if !ok || (want.ETag != "" && want.ETag != p.etag) {
			return nil, s3err.InvalidPart.With("One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.")
		}
		chosen = append(chosen, p)
	}
	for i, want := range doc.Parts {
		p := chosen[i]
		if i < len(doc.Parts)-1 && int64(p.attr.Size) < q.s.cfg.MultipartChunkMin {
			return nil, s3err.EntityTooSmall.WithExtra("ProposedSize", strconv.FormatUint(p.attr.Size, 10)).
				WithExtra("MinSizeAllowed", strconv.FormatInt(q.s.cfg.MultipartChunkMin, 10)).
				WithExtra("PartNumber", strconv.Itoa(p.number)).WithExtra("ETag", p.etag)
		}
		if u.rec.Checksum != "" {
			if got := checksumsXML(p.meta.Checksums); !sameChecksum(want.Checksums, got) {
				return nil, s3err.InvalidPart.With("The checksum of part %d does not match the uploaded part.", p.number)
			}
		}
	}
	if err := q.preconditionsOfPut(b); err != nil {
		return nil, err
	}
	dir, err := q.s.ensureDirs(q.ctx, q.ident, b, kp)
	if err != nil {
		return nil, err
	}
	v := newVersion{meta: u.rec.Meta, acl: u.rec.ACL, hold: u.rec.Hold, owner: u.rec.Owner}
	if v.owner == 0 {
		v.owner = u.rec.Initiator
	}
	v.meta.UploadID = u.id
	if u.rec.Tags != "" {
		v.tags, v.hasTags = decodeTags([]byte(u.rec.Tags)), true
	}
	if u.rec.RetMode != "" {
		v.ret = retention{Mode: u.rec.RetMode, Until: time.Unix(u.rec.RetUntil, 0)}
	}
	tmp, err := q.s.fs.CreateTemp(q.ctx, q.ident, dir, fileMode)
	if err != nil {
		q.s.pruneDirs(contextBackground(), b, kp)
		return nil, err
	}
	published := false
	defer func() {
		if !published {
			q.s.discard(tmp.Ino)
			q.s.pruneDirs(contextBackground(), b, kp)
		}
	}()
	md5s := md5.New()
	var off uint64
	var ckParts []byte
	for _, p := range chosen {
		if err := q.s.fs.CopyRange(q.ctx, q.ident, p.attr.Ino, 0, tmp.Ino, off, p.attr.Size); err != nil {
			return nil, err
		}
		off += p.attr.Size
		raw, _ := hex.DecodeString(p.etag)
		md5s.Write(raw)
		v.meta.Parts = append(v.meta.Parts, int64(p.attr.Size))
		if u.rec.Checksum != "" {
			sum := p.meta.Checksums[u.rec.Checksum]
			c, _ := base64.StdEncoding.DecodeString(sum)
			ckParts = append(ckParts, c...)
			v.meta.PartChecksums = append(v.meta.PartChecksums, sum)
		}
	}
	v.etag = hex.EncodeToString(md5s.Sum(nil)) + "-" + strconv.Itoa(len(chosen))
	if u.rec.Checksum != "" {
		if u.rec.CkType == "FULL_OBJECT" {
			var sums []string
			for _, p := range chosen {
				sums = append(sums, p.meta.Checksums[u.rec.Checksum])
			}
			sum, ok := combineChecksums(u.rec.Checksum, sums, v.meta.Parts)
			if !ok {
				// Not a CRC (or a part without one): read the object.
				if sum, err = q.s.checksumOf(q.ctx, q.ident, tmp.Ino, u.rec.Checksum); err != nil {
					return nil, err
				}
			}
			v.meta.Checksums = map[string]string{u.rec.Checksum: sum}
		} else {
			h, _ := newChecksum(u.rec.Checksum)
			h.Write(ckParts)
			v.meta.Checksums = map[string]string{u.rec.Checksum: base64.StdEncoding.EncodeToString(h.Sum(nil)) + "-" + strconv.Itoa(len(chosen))}
		}
		v.meta.ChecksumType = u.rec.CkType
		if want := q.r.Header.Get("X-Amz-Checksum-" + u.rec.Checksum); want != "" {
			got := v.meta.Checksums[u.rec.Checksum]
			if strip(want) != strip(got) {
				return nil, s3err.BadDigest.With("The x-amz-checksum-%s you specified did not match the checksum of the assembled object.", strings.ToLower(u.rec.Checksum))
			}
		}
	}
	if v.tmp, err = q.s.fs.GetAttr(q.ctx, tmp.Ino); err != nil {
		return nil, err
	}
	if _, err := q.publish(b, kp, dir, &v, q.putCondition()); err != nil {
		return nil, err
	}
	published = true
	q.s.removeUploadDir(q.ctx, u.parent, u.id, u.dir)
	q.s.multipartActive(-1)
	if b.versioning() == "Enabled" {
		q.w.Header().Set("X-Amz-Version-Id", versionOrNull(v.meta.VersionID))
	}
	res := &s3xml.CompleteMultipartUploadResult{Xmlns: s3xml.Namespace, Location: "/" + b.name + "/" + q.key,
		Bucket: b.name, Key: q.key, ETag: `"` + v.etag + `"`, Checksums: checksumsXML(v.meta.Checksums)}
	if len(v.meta.Checksums) > 0 {
		res.ChecksumType = v.meta.ChecksumType
	}
	return res, nil
}

// strip drops the "-N" part count of a composite checksum.
func strip(s string) string {
	if i := strings.LastIndexByte(s, '-'); i >= 0 {
		return s[:i]
	}
	return s
}

// sameChecksum reports whether the checksums a client lists for a part
// agree with the stored ones (absent ones are not compared).
func sameChecksum(want, got s3xml.Checksums) bool {
	eq := func(a, b string) bool { return a == "" || a == b }
	return eq(want.ChecksumCRC32, got.ChecksumCRC32) && eq(want.ChecksumCRC32C, got.ChecksumCRC32C) &&
		eq(want.ChecksumCRC64NVME, got.ChecksumCRC64NVME) && eq(want.ChecksumSHA1, got.ChecksumSHA1) &&
		eq(want.ChecksumSHA256, got.ChecksumSHA256)
}

func (q *request) listMultipartUploads() error {
	b, err := q.bucketFor(access{action: "s3:ListBucketMultipartUploads", perm: permRead})
	if err != nil {
		return err
	}
	et, enc, err := q.encodingType()
	if err != nil {
		return err
	}
	max := 1000
	if v := q.get("max-uploads"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return s3err.InvalidArgument.With("max-uploads must be a non-negative integer").WithExtra("ArgumentName", "max-uploads")
		}
		max = min(n, 1000)
	}
	prefix, delim := q.get("prefix"), q.get("delimiter")
	keyMarker, idMarker := q.get("key-marker"), q.get("upload-id-marker")
	parent, err := q.s.uploadsDir(q.ctx, b.name)
	if err != nil {
		return err
	}
	var all []*upload
	after := ""
	for {
		ents, more, err := q.s.fs.ReadDirNames(q.ctx, &core.Root, parent, after, 1000, true)
		if err != nil {
			return err
		}
		for _, e := range ents {
			after = e.Name
			u, err := q.s.loadUpload(q.ctx, b.name, "", e.Name)
			if err != nil || !strings.HasPrefix(u.rec.Key, prefix) {
				continue
			}
			all = append(all, u)
		}
		if !more {
			break
		}
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].rec.Key != all[j].rec.Key {
			return all[i].rec.Key < all[j].rec.Key
		}
		return all[i].rec.Created < all[j].rec.Created
	})
	res := s3xml.ListMultipartUploadsResult{Xmlns: s3xml.Namespace, Bucket: b.name, KeyMarker: enc(keyMarker), UploadIDMarker: idMarker,
		Prefix: enc(prefix), Delimiter: enc(delim), MaxUploads: max, EncodingType: et}
	p := listParams{prefix: prefix, delim: delim}
	passedMarker := idMarker == ""
	lastCP := ""
	count := 0
	for _, u := range all {
		k := u.rec.Key
		if keyMarker != "" {
			if k < keyMarker || (k == keyMarker && idMarker == "") {
				continue
			}
			if k == keyMarker && !passedMarker {
				if u.id == idMarker {
					passedMarker = true
				}
				continue
			}
		}
		if cp := p.commonPrefix(k); cp != "" {
			if cp == lastCP || (keyMarker != "" && cp <= keyMarker) {
				continue
			}
			if count >= max {
				res.IsTruncated = true
				break
			}
			lastCP = cp
			res.CommonPrefixes = append(res.CommonPrefixes, s3xml.CommonPrefix{Prefix: enc(cp)})
			res.NextKeyMarker, res.NextUploadIDMarker = enc(cp), ""
			count++
			continue
		}
		if count >= max {
			res.IsTruncated = true
			break
		}
		res.Uploads = append(res.Uploads, s3xml.Upload{Key: enc(k), UploadID: u.id, Initiator: s3xml.Initiator(q.ownerOf(u.rec.Initiator)),
			Owner: q.ownerOf(u.rec.Owner), StorageClass: "STANDARD", Initiated: s3xml.Time(time.Unix(0, u.rec.Created)), ChecksumAlgorithm: u.rec.Checksum})
		res.NextKeyMarker, res.NextUploadIDMarker = enc(k), u.id
		count++
	}
	if !res.IsTruncated {
		res.NextKeyMarker, res.NextUploadIDMarker = "", ""
	}
	return q.writeXML(200, res)
}
