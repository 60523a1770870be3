package s3

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"hash/fnv"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/claudefs/cfs-gateway/internal/core"
	"github.com/claudefs/cfs-gateway/internal/protocol/s3/s3err"
	"github.com/claudefs/cfs-gateway/internal/protocol/s3/s3xml"
)

// maxPutSize is the largest single PUT, as S3 has it.
const maxPutSize = 5 << 30

// ioBufSize is the size of the buffers data moves through.
const ioBufSize = 1 << 20

var ioBufs = sync.Pool{New: func() any { b := make([]byte, ioBufSize); return &b }}

// keyLocks serializes, on this gateway, the changes of one key that read
// the current version before replacing it (versioning, conditional PUT).
type keyLocks struct{ stripes [256]sync.Mutex }

func (l *keyLocks) lock(bucket, key string) func() {
	h := fnv.New32a()
	h.Write([]byte(bucket))
	h.Write([]byte{0})
	h.Write([]byte(key))
	m := &l.stripes[h.Sum32()%uint32(len(l.stripes))]
	m.Lock()
	return m.Unlock
}

// writeBody copies body into file ino from offset 0 with unstable writes
// (Publish makes them durable). It returns the byte count; a body that does
// not end with io.EOF (a digest mismatch, a cut connection) is an error.
func (q *request) writeBody(ino core.Ino, body io.Reader, idle func()) (int64, error) {
	bp := ioBufs.Get().(*[]byte)
	defer ioBufs.Put(bp)
	buf := *bp
	var off int64
	for {
		if idle != nil {
			idle()
		}
		n, err := io.ReadFull(body, buf)
		if n > 0 {
			if _, werr := q.s.fs.Write(q.ctx, q.ident, ino, uint64(off), buf[:n], core.Unstable); werr != nil {
				return off, werr
			}
			off += int64(n)
			q.bytesIn += int64(n)
		}
		switch {
		case err == nil:
			continue
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			if q.auth.DecodedLength >= 0 && off != q.auth.DecodedLength {
				return off, s3err.IncompleteBody
			}
			return off, nil
		default:
			return off, bodyError(err)
		}
	}
}

// readSmallBody reads a body of at most core.MaxPublishData bytes to its
// end, so that its signature and checksums are verified before it is used.
func (q *request) readSmallBody() ([]byte, error) {
	b, err := q.readBody(q.auth.DecodedLength)
	if err != nil {
		return nil, err
	}
	if int64(len(b)) != q.auth.DecodedLength {
		return nil, s3err.IncompleteBody
	}
	if b == nil {
		b = []byte{} // a request without a body: still a small object, of no bytes
	}
	return b, nil
}

// newVersion is an object version being written: its temporary file and
// what it is published with.
type newVersion struct {
	tmp core.Attr
	// data, when not nil, is the whole body of a small object, published
	// with core.PublishData instead of through a temporary file; tmp then
	// only carries its size and writer.
	data    []byte
	owner   uint32 // the uid the object belongs to (see objectOwner)
	meta    objectMeta
	etag    string // unquoted
	tags    []s3xml.Tag
	hasTags bool
	acl     *acl
	ret     retention
	hold    string
}

// attrs are the protocol attributes of the version.
func (v *newVersion) attrs() map[string][]byte {
	m := map[string][]byte{
		xEtag: etagRecord(v.etag, &v.tmp),
		xMeta: encodeMeta(&v.meta),
	}
	if v.hasTags && len(v.tags) > 0 {
		m[xTags] = encodeTags(v.tags)
	}
	if v.acl != nil {
		m[xACL] = v.acl.encode()
	}
	if v.ret.Mode != "" {
		m[xRetention] = encodeRetention(v.ret)
	}
	if v.hold != "" {
		m[xLegalHold] = []byte(v.hold)
	}
	return m
}

// objectOptions reads what a PUT-like request sets beside the data:
// metadata, tags, ACL and object lock settings.
func (q *request) objectOptions(b *bucket, v *newVersion) error {
	m, err := metaFromHeaders(q.r.Header)
	if err != nil {
		return err
	}
	v.meta = m
	if h := q.r.Header.Get("X-Amz-Tagging"); h != "" {
		tags, err := parseTaggingHeader(h)
		if err != nil {
			return err
		}
		v.tags, v.hasTags = tags, true
	}
	bucketOwner := q.ownerOf(b.attr.UID).ID
	if v.acl, err = q.s.aclFromHeaders(q.r.Header, q.ownerOf(q.caller.UID).ID, bucketOwner); err != nil {
		return err
	}
	v.owner = q.objectOwner(b, v.acl)
	if v.owner != q.caller.UID && v.acl != nil {
		if v.acl, err = q.s.aclFromHeaders(q.r.Header, q.ownerOf(v.owner).ID, bucketOwner); err != nil {
			return err
		}
	}
	if b.objectOwnership() == "BucketOwnerEnforced" && v.acl != nil && v.acl.Canned != "bucket-owner-full-control" {
		return errACLNotSupported
	}
	if err := checkPublicACL(b, v.acl); err != nil {
		return err
	}
	return q.lockOptions(b, v)
}

// errACLNotSupported is an ACL where the bucket's ownership control
// BucketOwnerEnforced disables ACLs.
var errACLNotSupported = &s3err.Error{Code: "AccessControlListNotSupported", Status: 400, Message: "The bucket does not allow ACLs"}

// lockOptions reads the object lock headers, or the bucket's default
// retention.
func (q *request) lockOptions(b *bucket, v *newVersion) error {
	h := q.r.Header
	mode, until, hold := h.Get("X-Amz-Object-Lock-Mode"), h.Get("X-Amz-Object-Lock-Retain-Until-Date"), h.Get("X-Amz-Object-Lock-Legal-Hold")
	lc := b.lockConfig()
	if mode != "" || until != "" || hold != "" {
		if lc == nil {
			return s3err.InvalidRequest.With("Bucket is missing Object Lock Configuration")
		}
		if (mode == "") != (until == "") {
			return s3err.InvalidArgument.With("x-amz-object-lock-retain-until-date and x-amz-object-lock-mode must both be supplied")
		}
		if mode != "" {
			if mode != "GOVERNANCE" && mode != "COMPLIANCE" {
				return s3err.InvalidArgument.With("Unknown wormMode directive.")
			}
			t, err := time.Parse(time.RFC3339, until)
			if err != nil {
				return s3err.InvalidArgument.With("The retain until date must be provided in ISO 8601 format")
			}
			if !t.After(q.s.now()) {
				return s3err.InvalidArgument.With("The retain until date must be in the future!")
			}
			v.ret = retention{Mode: mode, Until: t}
		}
		if hold != "" {
			if hold != "ON" && hold != "OFF" {
				return s3err.InvalidArgument.With("Legal Hold must be either of 'ON' or 'OFF'")
			}
			v.hold = hold
		}
		return nil
	}
	if lc != nil && lc.Rule != nil && lc.Rule.DefaultRetention != nil {
		d := lc.Rule.DefaultRetention
		until := q.s.now().AddDate(d.Years, 0, d.Days)
		v.ret = retention{Mode: d.Mode, Until: until}
	}
	return nil
}

func (q *request) putObject() error {
	b, err := q.bucketFor(access{action: "s3:PutObject", perm: permWrite})
	if err != nil {
		return err
	}
	kp, err := splitKey(q.key)
	if err != nil {
		return err
	}
	if missingLength(q.r) {
		return s3err.MissingContentLength
	}
	if q.auth.DecodedLength > maxPutSize {
		return s3err.EntityTooLarge
	}
	var v newVersion
	if err := q.objectOptions(b, &v); err != nil {
		return err
	}
	if kp.marker {
		return q.putMarker(b, kp, &v)
	}
	if err := q.preconditionsOfPut(b); err != nil {
		return err
	}
	// A small body is read whole (and verified) before anything is
	// written: the object is then created with its name in one
	// transaction.
	small := q.auth.DecodedLength >= 0 && q.auth.DecodedLength <= core.MaxPublishData
	if small {
		if v.data, err = q.readSmallBody(); err != nil {
			return err
		}
	}
	dir, err := q.s.ensureDirs(q.ctx, q.ident, b, kp)
	if err != nil {
		return err
	}
	if small {
		v.tmp = core.Attr{UID: q.ident.UID, Size: uint64(len(v.data))}
	} else if v.tmp, err = q.s.fs.CreateTemp(q.ctx, q.ident, dir, fileMode); err != nil {
		q.s.pruneDirs(contextBackground(), b, kp)
		return err
	}
	published := false
	defer func() {
		if !published {
			if !small {
				q.s.discard(v.tmp.Ino)
			}
			q.s.pruneDirs(contextBackground(), b, kp)
		}
	}()
	if !small {
		n, err := q.writeBody(v.tmp.Ino, q.auth.Body, nil)
		if err != nil {
			return err
		}
		// The data commits with the name, in publish.
		v.tmp.Size = uint64(n)
	}
	v.etag = hex.EncodeToString(q.auth.MD5())
	if q.auth.Checksums != nil {
		if ck := q.auth.Checksums(); len(ck) > 0 {
			v.meta.Checksums = ck
			v.meta.ChecksumType = "FULL_OBJECT"
		}
	}
	a, err := q.publish(b, kp, dir, &v, q.putCondition())
	if err != nil {
		return err
	}
	published = true
	h := q.w.Header()
	h.Set("ETag", `"`+v.etag+`"`)
	for alg, val := range v.meta.Checksums {
		h.Set("X-Amz-Checksum-"+alg, val)
	}
	if len(v.meta.Checksums) > 0 {
		h.Set("X-Amz-Checksum-Type", v.meta.ChecksumType)
	}
	if b.versioning() == "Enabled" {
		h.Set("X-Amz-Version-Id", versionOrNull(v.meta.VersionID))
	}
	q.setExpirationHeader(b, q.key, &a, int64(a.Size), v.tags)
	return q.reply(200)
}

// discard drops a temporary file that will not be published.
func (s *Server) discard(ino core.Ino) {
	if err := s.fs.Discard(contextBackground(), ino); err != nil {
		s.log.Warn("discarding an unpublished upload failed; the reaper removes it later", "ino", uint64(ino), "err", err)
	}
}

// putCondition returns the If-Match / If-None-Match check of a PUT against
// the current object (nil when the request has none).
func (q *request) putCondition() func(cur *object) error {
	im, inm := q.r.Header.Get("If-Match"), q.r.Header.Get("If-None-Match")
	if im == "" && inm == "" {
		return nil
	}
	return func(cur *object) error {
		if inm != "" {
			if cur != nil && (strings.TrimSpace(inm) == "*" || etagMatches(inm, cur.etag)) {
				return s3err.PreconditionFailed
			}
		}
		if im != "" {
			if cur == nil {
				return s3err.NoSuchKey
			}
			if !etagMatches(im, cur.etag) {
				return s3err.PreconditionFailed
			}
		}
		return nil
	}
}

// preconditionsOfPut fails a conditional PUT early, before its body is
// stored; publish checks again when it replaces the object.
func (q *request) preconditionsOfPut(b *bucket) error {
	cond := q.putCondition()
	if cond == nil {
		return nil
	}
	cur, err := q.s.lookupObject(q.ctx, &core.Root, b, q.key)
	if err != nil && !errors.Is(err, s3err.NoSuchKey) {
		return err
	}
	return cond(cur)
}

// maxMarkerBody is the most data a key ending in "/" may hold: it is kept
// in an attribute of the directory.
const maxMarkerBody = core.MaxXattrValueLen

// putMarker stores a directory marker: a key ending in "/". Its data, if
// any (at most maxMarkerBody bytes), is kept in the directory's xBody.
func (q *request) putMarker(b *bucket, kp keyPath, v *newVersion) error {
	if q.auth.DecodedLength > maxMarkerBody {
		return errDirectoryKeyBody
	}
	data, err := io.ReadAll(io.LimitReader(q.auth.Body, maxMarkerBody+1))
	if err != nil {
		return bodyError(err)
	}
	if len(data) > maxMarkerBody {
		return errDirectoryKeyBody
	}
	q.bytesIn += int64(len(data))
	dir, err := q.s.ensureDirs(q.ctx, q.ident, b, kp)
	if err != nil {
		return err
	}
	a, err := q.s.fs.Lookup(q.ctx, q.ident, dir, kp.name)
	switch {
	case err == nil && a.Type != core.TypeDir:
		return errKeyConflict
	case err != nil && errno(err) == syscall.ENOENT:
		if a, err = q.s.fs.Mkdir(q.ctx, q.ident, dir, kp.name, dirMode); err != nil {
			if errno(err) == syscall.EEXIST {
				return errKeyConflict
			}
			return err
		}
	case err != nil:
		return err
	}
	sum := md5.Sum(data)
	v.etag = hex.EncodeToString(sum[:])
	v.tmp = a
	v.meta.Created = q.s.now().UnixNano()
	set := v.attrs()
	set[xEtag] = markerRecord(v.etag, len(data))
	remove := []string{xImplicit}
	if len(data) > 0 {
		set[xBody] = data
	} else {
		remove = append(remove, xBody)
	}
	if err := q.s.fs.UpdateXattrs(q.ctx, &core.Root, a.Ino, set, remove); err != nil {
		return err
	}
	q.w.Header().Set("ETag", `"`+v.etag+`"`)
	return q.reply(200)
}

// publish makes a written version the current object of kp, following
// the bucket's versioning: the version it replaces becomes noncurrent
// (Enabled), or is replaced when it is the null version (Suspended, or a
// bucket that never had versioning). cond, when set, is checked against
// the current object right before.
func (q *request) publish(b *bucket, kp keyPath, dir core.Ino, v *newVersion, cond func(cur *object) error) (core.Attr, error) {
	status := b.versioning()
	now := q.s.now()
	v.meta.Created = now.UnixNano()
	v.meta.VersionID = ""
	if status == "Enabled" {
		v.meta.VersionID = newVersionID(now)
	}
	var small *core.NewFileData
	if v.data != nil {
		small = &core.NewFileData{Mode: fileMode, Data: v.data}
	}
	if owner := v.owner; owner != v.tmp.UID {
		// Written as the bucket owner, who granted the write: the object
		// belongs to its writer, and so does its quota usage. What an
		// anonymous caller writes belongs to the bucket owner.
		gid := q.caller.GID
		if owner == b.attr.UID {
			gid = b.attr.GID
		}
		if small != nil {
			small.UID, small.GID = &owner, &gid
		} else {
			a, err := q.s.fs.SetAttr(q.ctx, &core.Root, v.tmp.Ino, core.SetAttr{UID: &owner, GID: &gid})
			if err != nil {
				return core.Attr{}, err
			}
			v.tmp = a
		}
	}
	// The file's mtime is the version's creation, as the ETag record says.
	v.tmp.Mtime = time.Unix(0, v.meta.Created)
	opts := core.PublishOptions{Mtime: v.tmp.Mtime, Xattrs: v.attrs()}
	if status != "" || cond != nil {
		unlock := q.s.locks.lock(b.name, q.key)
		defer unlock()
		cur, err := q.s.lookupObject(q.ctx, &core.Root, b, q.key)
		if err != nil && !errors.Is(err, s3err.NoSuchKey) {
			return core.Attr{}, err
		}
		if cond != nil {
			if err := cond(cur); err != nil {
				return core.Attr{}, err
			}
		}
		if status != "" {
			if cur != nil && (status == "Enabled" || cur.meta.VersionID != "") {
				if err := q.s.archive(q.ctx, b, q.key, cur); err != nil {
					return core.Attr{}, err
				}
			}
			if status == "Suspended" {
				if err := q.s.removeVersionEntry(q.ctx, b, q.key, nullVersion); err != nil {
					return core.Attr{}, err
				}
			}
		}
	}
	return q.publishFile(b, kp, dir, func(dir core.Ino) (core.Attr, error) {
		if small != nil {
			return q.s.fs.PublishData(q.ctx, q.ident, dir, kp.name, *small, opts)
		}
		return q.s.fs.PublishWith(q.ctx, q.ident, v.tmp.Ino, dir, kp.name, opts)
	})
}

// publishFile names the new object's file with publishIn, recreating its
// directories once if a concurrent delete pruned them meanwhile.
func (q *request) publishFile(b *bucket, kp keyPath, dir core.Ino, publishIn func(dir core.Ino) (core.Attr, error)) (core.Attr, error) {
	for try := 0; ; try++ {
		a, err := publishIn(dir)
		if err == nil {
			return a, nil
		}
		switch errno(err) {
		case syscall.EISDIR:
			return core.Attr{}, errKeyConflict
		case syscall.ENOENT, syscall.ESTALE:
			if try > 2 {
				return core.Attr{}, err
			}
			if dir, err = q.s.ensureDirs(q.ctx, q.ident, b, kp); err != nil {
				return core.Attr{}, err
			}
			continue
		}
		return core.Attr{}, err
	}
}

// target resolves the object version a request names (versionId), or the
// current object. A missing current object whose latest version is a
// delete marker is reported with x-amz-delete-marker.
func (q *request) target(b *bucket) (*object, error) {
	if q.has("versionId") {
		vid := q.get("versionId")
		if vid == "" {
			return nil, s3err.InvalidArgument.With("Version id cannot be the empty string").WithExtra("ArgumentName", "versionId")
		}
		o, err := q.s.findVersion(q.ctx, b, q.key, vid)
		if err != nil {
			return nil, err
		}
		return o, nil
	}
	o, err := q.s.lookupObject(q.ctx, &core.Root, b, q.key)
	if errors.Is(err, s3err.NoSuchKey) {
		q.w.Header().Set("X-Amz-Delete-Marker", "false")
		if b.versioned() {
			if latest, lerr := q.s.latestNoncurrent(q.ctx, b, q.key); lerr == nil && latest != nil && latest.meta.DeleteMarker {
				q.w.Header().Set("X-Amz-Delete-Marker", "true")
				q.w.Header().Set("X-Amz-Version-Id", versionOrNull(latest.meta.VersionID))
			}
		}
	}
	return o, err
}

// objectFor loads the bucket and the named object version and authorizes
// ac. A missing object is NoSuchKey only for callers allowed to know.
func (q *request) objectFor(ac access) (*bucket, *object, error) {
	b, err := q.loadBucket()
	if err != nil {
		return nil, nil, err
	}
	if q.has("versionId") {
		ac.action = versionAction(ac.action)
	}
	o, err := q.target(b)
	if err != nil {
		var e *s3err.Error
		if errors.As(err, &e) && (e.Code == "NoSuchKey" || e.Code == "NoSuchVersion") {
			// Who may list the key may learn it is missing; s3:prefix is
			// the key for that check.
			q.prefixCond = &q.key
			aerr := q.authorize(b, access{action: "s3:ListBucket", perm: permRead}, nil)
			q.prefixCond = nil
			if aerr != nil {
				if aerr := q.authorize(b, ac, nil); aerr != nil {
					return nil, nil, aerr
				}
			}
		}
		return nil, nil, err
	}
	if err := q.authorize(b, ac, o); err != nil {
		return nil, nil, err
	}
	// The object was found as the gateway (authorization needs its
	// owner); the caller must also be able to reach it, as POSIX has it.
	if kp, err := splitKey(q.key); err == nil && o.dir != 0 && !o.meta.DeleteMarker {
		dir, err := q.s.lookupPath(q.ctx, q.ident, b, kp)
		if err == nil {
			_, err = q.s.fs.Lookup(q.ctx, q.ident, dir, kp.name)
		}
		if err != nil && errno(err) == syscall.EACCES {
			return nil, nil, s3err.AccessDenied
		}
	}
	return b, o, nil
}

// versionAction is the policy action of an operation on a given version.
func versionAction(a string) string {
	switch a {
	case "s3:GetObject", "s3:DeleteObject", "s3:GetObjectTagging", "s3:PutObjectTagging",
		"s3:DeleteObjectTagging", "s3:GetObjectAcl", "s3:PutObjectAcl":
		return strings.Replace(a, "Object", "ObjectVersion", 1)
	}
	return a
}

func (q *request) headObject() error { return q.getOrHead(false) }
func (q *request) getObject() error  { return q.getOrHead(true) }

func (q *request) getOrHead(body bool) error {
	b, o, err := q.objectFor(access{action: "s3:GetObject", perm: permRead, onObject: true})
	if err != nil {
		return err
	}
	if o.meta.DeleteMarker {
		q.w.Header().Set("X-Amz-Delete-Marker", "true")
		q.w.Header().Set("X-Amz-Version-Id", versionOrNull(o.meta.VersionID))
		q.w.Header().Set("Last-Modified", time.Unix(0, o.meta.Created).UTC().Format(http.TimeFormat))
		return s3err.MethodNotAllowed.With("The specified method is not allowed against this resource.")
	}
	if err := checkConditions(q.r.Header, o.etag, o.attr.Mtime); err != nil {
		if errors.Is(err, s3err.NotModified) {
			h := q.w.Header()
			h.Set("ETag", o.etag)
			h.Set("Last-Modified", o.attr.Mtime.UTC().Format(http.TimeFormat))
			return q.reply(http.StatusNotModified)
		}
		return err
	}
	size := objectSize(&o.attr, o.x[xEtag])
	start, length, partial := int64(0), size, false
	if pn := q.get("partNumber"); pn != "" {
		n, err := strconv.Atoi(pn)
		if err != nil || n < 1 || n > s3xml.MaxParts {
			return s3err.InvalidArgument.With("Part number must be an integer between 1 and 10000, inclusive").WithExtra("ArgumentName", "partNumber")
		}
		switch {
		case len(o.meta.Parts) > 0:
			if n > len(o.meta.Parts) {
				return s3err.InvalidPart.With("The requested partnumber is not satisfiable")
			}
			for _, p := range o.meta.Parts[:n-1] {
				start += p
			}
			length, partial = o.meta.Parts[n-1], true
			q.w.Header().Set("X-Amz-Mp-Parts-Count", strconv.Itoa(len(o.meta.Parts)))
		case n != 1:
			return s3err.InvalidPart.With("The requested partnumber is not satisfiable")
		}
	} else if rg := q.r.Header.Get("Range"); rg != "" {
		s, l, ok, err := parseRange(rg, size)
		if err != nil {
			q.w.Header().Set("Content-Range", "bytes */"+strconv.FormatInt(size, 10))
			return err
		}
		if ok {
			start, length, partial = s, l, true
		}
	}
	q.setObjectHeaders(o)
	q.objectExpirationHeader(b, o)
	q.responseOverrides()
	h := q.w.Header()
	h.Set("Content-Length", strconv.FormatInt(length, 10))
	status := http.StatusOK
	if partial {
		status = http.StatusPartialContent
		if length > 0 {
			h.Set("Content-Range", "bytes "+strconv.FormatInt(start, 10)+"-"+strconv.FormatInt(start+length-1, 10)+"/"+strconv.FormatInt(size, 10))
		}
	}
	if !body || length == 0 {
		return q.reply(status)
	}
	if o.attr.Type == core.TypeDir {
		data := o.x[xBody]
		if int64(len(data)) < start+length {
			return s3err.InternalError.With("The data of directory marker %s is damaged.", q.key)
		}
		q.status = status
		q.w.WriteHeader(status)
		q.w.Write(data[start : start+length])
		q.bytesOut += length
		return nil
	}
	return q.streamObject(o, start, length, status)
}

// streamObject sends length bytes of o from start. The first piece is
// read before the status is sent, so that a failing read is still an S3
// error; a failure later can only cut the connection. Pieces are read one
// ahead of the one being sent, so that the disk and the network work at
// the same time on a large object.
func (q *request) streamObject(o *object, start, length int64, status int) error {
	ctx, cancel := context.WithCancel(q.ctx)
	defer cancel()
	pieces := q.s.readAhead(ctx, q.ident, o.attr.Ino, start, start+length)
	off, end := start, start+length
	first := true
	for p := range pieces {
		if p.err != nil {
			if first {
				return p.err
			}
			q.s.log.Warn("reading an object failed after the response started; the connection is cut",
				"bucket", q.bucket, "key", q.key, "offset", off, "err", p.err)
			panic(http.ErrAbortHandler)
		}
		if first {
			q.status = status
			q.w.WriteHeader(status)
			first = false
		}
		_, err := q.w.Write(p.data())
		p.release()
		if err != nil {
			return nil // the client went away
		}
		q.bytesOut += int64(p.n)
		off += int64(p.n)
	}
	if first {
		q.status = status
		q.w.WriteHeader(status)
	}
	if off < end {
		// The file shrank under us: the response cannot be completed.
		panic(http.ErrAbortHandler)
	}
	return nil
}

// piece is data read ahead for streamObject.
type piece struct {
	buf *[]byte
	n   int
	err error
}

func (p piece) data() []byte { return (*p.buf)[:p.n] }

func (p piece) release() {
	if len(*p.buf) == ioBufSize {
		ioBufs.Put(p.buf)
	} else {
		largeBufs.Put(p.buf)
	}
}

// largeBufs hold the pieces of large objects: a whole block per read.
var largeBufs = sync.Pool{New: func() any { b := make([]byte, largeBufSize); return &b }}

const largeBufSize = 4 << 20

// readAhead reads [start, end) of ino into pieces, one ahead of the
// consumer, until the end, an error or a short read, then closes the
// channel. The consumer releases each piece. Cancelling ctx stops it.
func (s *Server) readAhead(ctx context.Context, id *core.Identity, ino core.Ino, start, end int64) <-chan piece {
	size := ioBufSize
	if end-start > ioBufSize {
		size = largeBufSize
	}
	out := make(chan piece, 1)
	go func() {
		defer close(out)
		for off := start; off < end; {
			var p piece
			if size == ioBufSize {
				p.buf = ioBufs.Get().(*[]byte)
			} else {
				p.buf = largeBufs.Get().(*[]byte)
			}
			want := min(int64(size), end-off)
			n, eof, err := s.fs.Read(ctx, id, ino, uint64(off), (*p.buf)[:want])
			p.n, p.err = n, err
			select {
			case out <- p:
			case <-ctx.Done():
				p.release()
				return
			}
			if err != nil || eof || n == 0 {
				return
			}
			off += int64(n)
		}
	}()
	return out
}

// responseOverrides applies the response-* query parameters.
func (q *request) responseOverrides() {
	for param, header := range map[string]string{
		"response-content-type":        "Content-Type",
		"response-content-language":    "Content-Language",
		"response-expires":             "Expires",
		"response-cache-control":       "Cache-Control",
		"response-content-disposition": "Content-Disposition",
		"response-content-encoding":    "Content-Encoding",
	} {
		if v := q.get(param); v != "" {
			q.w.Header().Set(header, v)
		}
	}
}

// etagMatches reports whether an If-Match style list matches etag.
func etagMatches(list, etag string) bool {
	want := strings.Trim(etag, `"`)
	for _, e := range strings.Split(list, ",") {
		e = strings.TrimSpace(e)
		e = strings.TrimPrefix(e, "W/")
		if e == "*" || strings.Trim(e, `"`) == want {
			return true
		}
	}
	return false
}

// checkConditions applies the conditional request headers of GET and HEAD:
// PreconditionFailed for If-Match and If-Unmodified-Since, NotModified for
// If-None-Match and If-Modified-Since.
func checkConditions(h http.Header, etag string, mtime time.Time) error {
	mtime = mtime.Truncate(time.Second)
	im, inm := h.Get("If-Match"), h.Get("If-None-Match")
	if im != "" {
		if !etagMatches(im, etag) {
			return s3err.PreconditionFailed
		}
	} else if v := h.Get("If-Unmodified-Since"); v != "" {
		if t, err := http.ParseTime(v); err == nil && mtime.After(t) {
			return s3err.PreconditionFailed
		}
	}
	if inm != "" {
		if etagMatches(inm, etag) {
			return s3err.NotModified
		}
	} else if v := h.Get("If-Modified-Since"); v != "" && im == "" {
		if t, err := http.ParseTime(v); err == nil && !mtime.After(t) {
			return s3err.NotModified
		}
	}
	return nil
}

// parseRange parses a Range header against an object of size bytes. It
// returns ok=false for a header to ignore (malformed, or several ranges:
// the whole object is sent, as S3 does) and InvalidRange for a range that
// starts beyond the end.
func parseRange(h string, size int64) (start, length int64, ok bool, err error) {
	spec, found := strings.CutPrefix(strings.TrimSpace(h), "bytes=")
	if !found || strings.Contains(spec, ",") {
		return 0, 0, false, nil
	}
	a, b, found := strings.Cut(strings.TrimSpace(spec), "-")
	if !found {
		return 0, 0, false, nil
	}
	a, b = strings.TrimSpace(a), strings.TrimSpace(b)
	invalid := s3err.InvalidRange.WithExtra("RangeRequested", h).WithExtra("ActualObjectSize", strconv.FormatInt(size, 10))
	if a == "" {
		n, perr := strconv.ParseInt(b, 10, 64)
		if perr != nil || n < 0 {
			return 0, 0, false, nil
		}
		if n == 0 || size == 0 {
			return 0, 0, false, invalid
		}
		n = min(n, size)
		return size - n, n, true, nil
	}
	first, perr := strconv.ParseInt(a, 10, 64)
	if perr != nil || first < 0 {
		return 0, 0, false, nil
	}
	last := size - 1
	if b != "" {
		l, perr := strconv.ParseInt(b, 10, 64)
		if perr != nil || l < first {
			return 0, 0, false, nil
		}
		last = min(l, size-1)
	}
	if first >= size {
		return 0, 0, false, invalid
	}
	return first, last - first + 1, true, nil
}

func (q *request) deleteObject() error {
	b, err := q.loadBucket()
	if err != nil {
		return err
	}
	res, err := q.deleteOne(b, q.key, q.get("versionId"), q.has("versionId"))
	if err != nil {
		return err
	}
	h := q.w.Header()
	if res.DeleteMarker {
		h.Set("X-Amz-Delete-Marker", "true")
	}
	if res.VersionID != "" {
		h.Set("X-Amz-Version-Id", res.VersionID)
	} else if res.DeleteMarkerVersionID != "" {
		h.Set("X-Amz-Version-Id", res.DeleteMarkerVersionID)
	}
	return q.reply(http.StatusNoContent)
}

// deleteOne deletes key (or one version of it) for DeleteObject and
// DeleteObjects, with authorization.
func (q *request) deleteOne(b *bucket, key, vid string, hasVid bool) (s3xml.Deleted, error) {
	res := s3xml.Deleted{Key: key}
	action := "s3:DeleteObject"
	if hasVid {
		action = "s3:DeleteObjectVersion"
		if vid == "" {
			return res, s3err.InvalidArgument.With("Version id cannot be the empty string").WithExtra("ArgumentName", "versionId")
		}
	}
	kp, err := splitKey(key)
	if err != nil {
		if errors.Is(err, errInvalidKey) {
			return res, nil // no such key can exist
		}
		return res, err
	}
	cur, err := q.s.lookupObject(q.ctx, &core.Root, b, key)
	if err != nil && !errors.Is(err, s3err.NoSuchKey) {
		return res, err
	}
	if err := q.authorize(b, access{action: action, perm: permWrite}, cur); err != nil {
		return res, err
	}
	if b.versioned() {
		return q.deleteVersioned(b, kp, key, vid, hasVid, cur)
	}
	if hasVid && vid != nullVersion {
		return res, nil // no such version in a bucket without versioning
	}
	if hasVid {
		res.VersionID = nullVersion
	}
	if cur == nil {
		return res, nil
	}
	if err := q.removeCurrent(b, kp, cur); err != nil {
		return res, err
	}
	return res, nil
}

// removeCurrent removes the current object of kp as the caller, then the
// implicit directories it leaves empty.
func (q *request) removeCurrent(b *bucket, kp keyPath, cur *object) error {
	if kp.marker {
		if err := q.s.fs.Rmdir(q.ctx, q.ident, cur.dir, cur.name); err != nil {
			if errno(err) != syscall.ENOTEMPTY {
				return ignoreMissing(err)
			}
			// Keys below it remain: it stops being a marker and goes with
			// the last of them.
			return q.s.fs.UpdateXattrs(q.ctx, &core.Root, cur.attr.Ino, map[string][]byte{xImplicit: {1}},
				[]string{xEtag, xMeta, xTags, xACL, xRetention, xLegalHold, xBody})
		}
	} else if err := q.s.fs.Remove(q.ctx, q.ident, cur.dir, cur.name); err != nil {
		return ignoreMissing(err)
	}
	q.s.pruneDirs(q.ctx, b, kp)
	return nil
}

// ignoreMissing treats a vanished entry as deleted.
func ignoreMissing(err error) error {
	if e := errno(err); e == syscall.ENOENT || e == syscall.ESTALE {
		return nil
	}
	return err
}

func (q *request) deleteObjects() error {
	b, err := q.loadBucket()
	if err != nil {
		return err
	}
	body, err := q.readBody(s3xml.MaxRequestDocSize)
	if err != nil {
		return err
	}
	d, err := s3xml.ParseDelete(body)
	if err != nil {
		return err
	}
	res := s3xml.DeleteResult{Xmlns: s3xml.Namespace}
	for _, o := range d.Objects {
		del, err := q.deleteOne(b, o.Key, o.VersionID, o.VersionID != "")
		if err != nil {
			e := q.s3Error(err)
			res.Errors = append(res.Errors, s3xml.DeleteError{Key: o.Key, VersionID: o.VersionID, Code: e.Code, Message: e.Message})
			continue
		}
		if !d.Quiet {
			if o.VersionID != "" {
				del.VersionID = o.VersionID
			}
			res.Deleted = append(res.Deleted, del)
		}
	}
	return q.writeXML(200, res)
}

// checkLocked refuses to remove a version under retention or legal hold.
func (q *request) checkLocked(o *object) error {
	if o == nil {
		return nil
	}
	if string(o.x[xLegalHold]) == "ON" {
		return s3err.AccessDenied.With("Access Denied because object protected by object lock.")
	}
	r := decodeRetention(o.x[xRetention])
	if r.Mode == "" || !r.Until.After(q.s.now()) {
		return nil
	}
	if r.Mode == "GOVERNANCE" && strings.EqualFold(q.r.Header.Get("X-Amz-Bypass-Governance-Retention"), "true") {
		return nil
	}
	return s3err.AccessDenied.With("Access Denied because object protected by object lock.")
}

// checkPublicACL refuses a public ACL where the bucket blocks them
// (BlockPublicAcls).
func checkPublicACL(b *bucket, a *acl) error {
	if a.public() && b.publicAccessBlock().BlockPublicAcls {
		return s3err.AccessDenied.With("Access Denied: the bucket's public access block forbids public ACLs.")
	}
	return nil
}

// missingLength reports an upload that neither announces its length nor
// is sent in chunks.
func missingLength(r *http.Request) bool {
	return r.Header.Get("Content-Length") == "" && len(r.TransferEncoding) == 0
}
