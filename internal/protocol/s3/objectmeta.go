package s3

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/claudefs/cfs-gateway/internal/core"
	"github.com/claudefs/cfs-gateway/internal/protocol/s3/s3err"
	"github.com/claudefs/cfs-gateway/internal/protocol/s3/s3xml"
)

func unescapePath(s string) (string, error) { return url.PathUnescape(s) }

func (q *request) copyObject() error {
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
	sb, src, err := q.copySourceObject()
	if err != nil {
		return err
	}
	if err := copyConditions(q.r.Header, src); err != nil {
		return err
	}
	directive := strings.ToUpper(q.r.Header.Get("X-Amz-Metadata-Directive"))
	tagDirective := strings.ToUpper(q.r.Header.Get("X-Amz-Tagging-Directive"))
	switch directive {
	case "", "COPY", "REPLACE":
	default:
		return s3err.InvalidArgument.With("Unknown metadata directive.").WithExtra("ArgumentName", "x-amz-metadata-directive")
	}
	switch tagDirective {
	case "", "COPY", "REPLACE":
	default:
		return s3err.InvalidArgument.With("Unknown tagging directive.").WithExtra("ArgumentName", "x-amz-tagging-directive")
	}
	cs, _ := parseCopySource(q.r.Header.Get("X-Amz-Copy-Source"))
	self := sb.name == b.name && cs.key == q.key && (cs.versionID == "" || cs.versionID == versionOrNull(src.meta.VersionID))
	if self && directive != "REPLACE" && q.r.Header.Get("X-Amz-Storage-Class") == "" && tagDirective != "REPLACE" &&
		q.r.Header.Get("X-Amz-Server-Side-Encryption") == "" && q.r.Header.Get("X-Amz-Website-Redirect-Location") == "" {
		return s3err.InvalidRequest.With("This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.")
	}
	var v newVersion
	if err := q.objectOptions(b, &v); err != nil {
		return err
	}
	if directive != "REPLACE" {
		sc := v.meta.StorageClass
		v.meta = src.meta
		v.meta.StorageClass = sc
		v.meta.VersionID, v.meta.DeleteMarker, v.meta.Created = "", false, 0
	}
	if tagDirective != "REPLACE" {
		v.tags, v.hasTags = decodeTags(src.x[xTags]), true
	}
	v.etag = strings.Trim(src.etag, `"`)
	dir, err := q.s.ensureDirs(q.ctx, q.ident, b, kp)
	if err != nil {
		return err
	}
	tmp, err := q.s.fs.CreateTemp(q.ctx, q.ident, dir, fileMode)
	if err != nil {
		q.s.pruneDirs(contextBackground(), b, kp)
		return err
	}
	published := false
	defer func() {
		if !published {
			q.s.discard(tmp.Ino)
			q.s.pruneDirs(contextBackground(), b, kp)
		}
	}()
	if err := q.s.fs.CopyRange(q.ctx, q.ident, src.attr.Ino, 0, tmp.Ino, 0, src.attr.Size); err != nil {
		return err
	}
	if v.tmp, err = q.s.fs.GetAttr(q.ctx, tmp.Ino); err != nil {
		return err
	}
	if _, err := q.publish(b, kp, dir, &v, q.putCondition()); err != nil {
		return err
	}
	published = true
	if b.versioning() == "Enabled" {
		q.w.Header().Set("X-Amz-Version-Id", versionOrNull(v.meta.VersionID))
	}
	return q.writeXML(200, s3xml.CopyObjectResult{Xmlns: s3xml.Namespace, LastModified: s3xml.Time(v.tmp.Mtime),
		ETag: `"` + v.etag + `"`, Checksums: checksumsXML(v.meta.Checksums)})
}

// setObjectAttrs changes S3 attributes of an object version, as the
// gateway: S3 authorization already decided.
func (q *request) setObjectAttrs(o *object, set map[string][]byte, remove []string) error {
	return q.s.fs.UpdateXattrs(q.ctx, &core.Root, o.attr.Ino, set, remove)
}

// versionHeaderOf sets x-amz-version-id for an operation on o.
func (q *request) versionHeaderOf(o *object) {
	if q.versionedBucket || o.meta.VersionID != "" {
		q.w.Header().Set("X-Amz-Version-Id", versionOrNull(o.meta.VersionID))
	}
}

// liveObjectFor is objectFor for operations that cannot apply to a delete
// marker.
func (q *request) liveObjectFor(ac access) (*bucket, *object, error) {
	b, o, err := q.objectFor(ac)
	if err != nil {
		return nil, nil, err
	}
	if o.meta.DeleteMarker {
		q.w.Header().Set("X-Amz-Delete-Marker", "true")
		return nil, nil, s3err.MethodNotAllowed
	}
	return b, o, nil
}

func (q *request) getObjectTagging() error {
	_, o, err := q.liveObjectFor(access{action: "s3:GetObjectTagging", perm: permRead, onObject: true})
	if err != nil {
		return err
	}
	q.versionHeaderOf(o)
	return q.writeXML(200, s3xml.Tagging{Xmlns: s3xml.Namespace, TagSet: decodeTags(o.x[xTags])})
}

func (q *request) putObjectTagging() error {
	_, o, err := q.liveObjectFor(access{action: "s3:PutObjectTagging", perm: permWrite, onObject: true})
	if err != nil {
		return err
	}
	body, err := q.readBody(maxConfigBody)
	if err != nil {
		return err
	}
	t, err := s3xml.ParseTagging(body, s3xml.MaxObjectTags)
	if err != nil {
		return err
	}
	if len(t.TagSet) == 0 {
		err = q.setObjectAttrs(o, nil, []string{xTags})
	} else {
		err = q.setObjectAttrs(o, map[string][]byte{xTags: encodeTags(t.TagSet)}, nil)
	}
	if err != nil {
		return err
	}
	q.versionHeaderOf(o)
	return q.reply(200)
}

func (q *request) deleteObjectTagging() error {
	_, o, err := q.liveObjectFor(access{action: "s3:DeleteObjectTagging", perm: permWrite, onObject: true})
	if err != nil {
		return err
	}
	if err := q.setObjectAttrs(o, nil, []string{xTags}); err != nil {
		return err
	}
	q.versionHeaderOf(o)
	return q.reply(http.StatusNoContent)
}

func (q *request) getObjectACL() error {
	_, o, err := q.liveObjectFor(access{action: "s3:GetObjectAcl", perm: permReadACP, onObject: true})
	if err != nil {
		return err
	}
	q.versionHeaderOf(o)
	return q.writeXML(200, decodeACL(o.x[xACL]).document(q.ownerOf(o.attr.UID), ownerByID))
}

func (q *request) putObjectACL() error {
	if err := q.aclsEnabled(); err != nil {
		return err
	}
	b, o, err := q.liveObjectFor(access{action: "s3:PutObjectAcl", perm: permWriteACP, onObject: true})
	if err != nil {
		return err
	}
	a, err := q.aclFromRequest(q.ownerOf(o.attr.UID).ID, q.ownerOf(b.attr.UID).ID)
	if err != nil {
		return err
	}
	if err := checkPublicACL(b, a); err != nil {
		return err
	}
	if err := q.setObjectAttrs(o, map[string][]byte{xACL: a.encode()}, nil); err != nil {
		return err
	}
	q.versionHeaderOf(o)
	return q.reply(200)
}

// errNoRetention is an object without a retention setting.
var errNoRetention = &s3err.Error{Code: "NoSuchObjectLockConfiguration", Status: 404, Message: "The specified object does not have a ObjectLock configuration"}

func (q *request) getObjectRetention() error {
	b, o, err := q.liveObjectFor(access{action: "s3:GetObjectRetention"})
	if err != nil {
		return err
	}
	if b.lockConfig() == nil {
		return s3err.InvalidRequest.With("Bucket is missing Object Lock Configuration")
	}
	r := decodeRetention(o.x[xRetention])
	if r.Mode == "" {
		return errNoRetention
	}
	return q.writeXML(200, s3xml.Retention{Xmlns: s3xml.Namespace, Mode: r.Mode, RetainUntilDate: r.Until.UTC().Format(time.RFC3339)})
}

func (q *request) putObjectRetention() error {
	b, o, err := q.liveObjectFor(access{action: "s3:PutObjectRetention"})
	if err != nil {
		return err
	}
	if b.lockConfig() == nil {
		return s3err.InvalidRequest.With("Bucket is missing Object Lock Configuration")
	}
	body, err := q.readBody(maxConfigBody)
	if err != nil {
		return err
	}
	_, until, err := s3xml.ParseRetention(body)
	if err != nil {
		return err
	}
	doc, _, _ := s3xml.ParseRetention(body)
	old := decodeRetention(o.x[xRetention])
	bypass := strings.EqualFold(q.r.Header.Get("X-Amz-Bypass-Governance-Retention"), "true")
	if old.Mode != "" && old.Until.After(q.s.now()) {
		shorter := until.Before(old.Until) || doc.Mode != old.Mode
		if shorter && (old.Mode == "COMPLIANCE" || !bypass) {
			return s3err.AccessDenied.With("Access Denied because object protected by object lock.")
		}
	}
	if !until.After(q.s.now()) {
		return s3err.InvalidArgument.With("The retain until date must be in the future!")
	}
	if err := q.setObjectAttrs(o, map[string][]byte{xRetention: encodeRetention(retention{Mode: doc.Mode, Until: until})}, nil); err != nil {
		return err
	}
	return q.reply(200)
}

func (q *request) getObjectLegalHold() error {
	b, o, err := q.liveObjectFor(access{action: "s3:GetObjectLegalHold"})
	if err != nil {
		return err
	}
	if b.lockConfig() == nil {
		return s3err.InvalidRequest.With("Bucket is missing Object Lock Configuration")
	}
	st := string(o.x[xLegalHold])
	if st == "" {
		return errNoRetention
	}
	return q.writeXML(200, s3xml.LegalHold{Xmlns: s3xml.Namespace, Status: st})
}

func (q *request) putObjectLegalHold() error {
	b, o, err := q.liveObjectFor(access{action: "s3:PutObjectLegalHold"})
	if err != nil {
		return err
	}
	if b.lockConfig() == nil {
		return s3err.InvalidRequest.With("Bucket is missing Object Lock Configuration")
	}
	body, err := q.readBody(maxConfigBody)
	if err != nil {
		return err
	}
	lh, err := s3xml.ParseLegalHold(body)
	if err != nil {
		return err
	}
	if err := q.setObjectAttrs(o, map[string][]byte{xLegalHold: []byte(lh.Status)}, nil); err != nil {
		return err
	}
	return q.reply(200)
}

func (q *request) getObjectAttributes() error {
	_, o, err := q.objectFor(access{action: "s3:GetObjectAttributes", perm: permRead, onObject: true})
	if err != nil {
		return err
	}
	if o.meta.DeleteMarker {
		q.w.Header().Set("X-Amz-Delete-Marker", "true")
		return s3err.NoSuchKey
	}
	want := map[string]bool{}
	for _, h := range q.r.Header.Values("X-Amz-Object-Attributes") {
		for _, a := range strings.Split(h, ",") {
			want[strings.TrimSpace(a)] = true
		}
	}
	if len(want) == 0 {
		return s3err.InvalidArgument.With("The x-amz-object-attributes header specifying the attributes to be retrieved is either missing or empty")
	}
	res := s3xml.GetObjectAttributesResponse{Xmlns: s3xml.Namespace}
	if want["ETag"] {
		res.ETag = strings.Trim(o.etag, `"`)
	}
	if want["StorageClass"] {
		res.StorageClass = "STANDARD"
		if o.meta.StorageClass != "" {
			res.StorageClass = o.meta.StorageClass
		}
	}
	if want["ObjectSize"] {
		size := objectSize(&o.attr, o.x[xEtag])
		res.ObjectSize = &size
	}
	if want["Checksum"] && len(o.meta.Checksums) > 0 {
		res.Checksum = &s3xml.Checksum{Checksums: checksumsXML(o.meta.Checksums), ChecksumType: o.meta.ChecksumType}
	}
	if want["ObjectParts"] && len(o.meta.Parts) > 0 {
		max := 1000
		if v := q.r.Header.Get("X-Amz-Max-Parts"); v != "" {
			if n, err := strconv.Atoi(v); err == nil && n >= 0 {
				max = min(n, 1000)
			}
		}
		marker := 0
		if v := q.r.Header.Get("X-Amz-Part-Number-Marker"); v != "" {
			if n, err := strconv.Atoi(v); err == nil && n >= 0 {
				marker = n
			}
		}
		parts := &s3xml.ObjectParts{TotalPartsCount: len(o.meta.Parts), PartNumberMarker: marker, MaxParts: max}
		for i := marker; i < len(o.meta.Parts); i++ {
			if len(parts.Parts) == max {
				parts.IsTruncated = true
				break
			}
			part := s3xml.ObjectPart{PartNumber: i + 1, Size: o.meta.Parts[i]}
			if i < len(o.meta.PartChecksums) {
				for alg := range o.meta.Checksums {
					part.Checksums = checksumsXML(map[string]string{alg: o.meta.PartChecksums[i]})
				}
			}
			parts.Parts = append(parts.Parts, part)
			parts.NextPartNumberMarker = i + 1
		}
		res.ObjectParts = parts
	}
	q.versionHeaderOf(o)
	q.w.Header().Set("Last-Modified", o.attr.Mtime.UTC().Format(http.TimeFormat))
	return q.writeXML(200, res)
}
