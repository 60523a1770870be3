package s3

import (
	"encoding/base64"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"syscall"

	"github.com/claudefs/cfs-gateway/internal/core"
	"github.com/claudefs/cfs-gateway/internal/protocol/s3/s3err"
	"github.com/claudefs/cfs-gateway/internal/protocol/s3/s3xml"
)

// maxConfigBody bounds the configuration documents a request may send.
const maxConfigBody = 1 << 20

// readBody reads the whole (bounded) request body, verified.
func (q *request) readBody(limit int64) ([]byte, error) {
	if q.auth == nil || q.auth.Body == nil {
		return nil, nil
	}
	b, err := io.ReadAll(io.LimitReader(q.auth.Body, limit+1))
	q.bytesIn += int64(len(b))
	if err != nil {
		return nil, bodyError(err)
	}
	if int64(len(b)) > limit {
		return nil, s3err.MaxMessageLengthExceeded
	}
	return b, nil
}

// bodyError turns a failure to read the request body into an S3 error.
func bodyError(err error) error {
	var e *s3err.Error
	if errors.As(err, &e) {
		return e
	}
	if strings.Contains(err.Error(), "timeout") {
		return s3err.RequestTimeout
	}
	return s3err.IncompleteBody.With("Reading the request body failed: %v", err)
}

// writeXML answers with an XML document.
func (q *request) writeXML(status int, v any) error {
	out, err := s3xml.Marshal(v)
	if err != nil {
		return err
	}
	return q.writeXMLDoc(status, out)
}

// writeXMLDoc answers with an encoded XML document, declaration included
// (as s3xml.Marshal or an AppendXML method produces it).
func (q *request) writeXMLDoc(status int, out []byte) error {
	h := q.w.Header()
	h.Set("Content-Type", "application/xml")
	h.Set("Content-Length", strconv.Itoa(len(out)))
	q.status = status
	q.w.WriteHeader(status)
	if q.r.Method != http.MethodHead {
		q.w.Write(out)
		q.bytesOut += int64(len(out))
	}
	return nil
}

// reply answers with a status and no body.
func (q *request) reply(status int) error {
	q.status = status
	q.w.WriteHeader(status)
	return nil
}

// loadBucket loads the request's bucket: it applies the bucket's CORS
// rules to the response and checks x-amz-expected-bucket-owner.
func (q *request) loadBucket() (*bucket, error) {
	b, err := q.s.loadBucket(q.ctx, q.bucket)
	if err != nil {
		return nil, err
	}
	q.versionedBucket = b.versioned()
	q.applyCORS(b)
	if want := q.r.Header.Get("X-Amz-Expected-Bucket-Owner"); want != "" && want != q.ownerOf(b.attr.UID).ID {
		return nil, s3err.AccessDenied
	}
	return b, nil
}

// bucketFor loads the request's bucket and authorizes ac on it.
func (q *request) bucketFor(ac access) (*bucket, error) {
	b, err := q.loadBucket()
	if err != nil {
		return nil, err
	}
	if err := q.authorize(b, ac, nil); err != nil {
		return nil, err
	}
	return b, nil
}

// ownerOf is the S3 owner of uid.
func (q *request) ownerOf(uid uint32) s3xml.Owner { return q.s.owners.owner(uid) }

func (q *request) listBuckets() error {
	if q.anonymous {
		return s3err.AccessDenied
	}
	root, err := q.s.root(q.ctx)
	if err != nil {
		return err
	}
	res := s3xml.ListAllMyBucketsResult{Xmlns: s3xml.Namespace, Owner: q.ownerOf(q.ident.UID), Prefix: q.get("prefix")}
	max := 10000
	if v := q.get("max-buckets"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			return s3err.InvalidArgument.With("max-buckets must be an integer from 1 to 10000.").WithExtra("ArgumentName", "max-buckets")
		}
		max = n
	}
	after := ""
	if t := q.get("continuation-token"); t != "" {
		b, err := base64.RawURLEncoding.DecodeString(t)
		if err != nil {
			return s3err.InvalidArgument.With("The continuation token is not valid.")
		}
		after = string(b)
	}
	prefix := q.get("prefix")
	if after < prefix {
		// Start just before the prefix: ReadDirNames starts after a name.
		after = prefix[:len(prefix)-1] + string(rune(prefix[len(prefix)-1]-1))
		if prefix[len(prefix)-1] == 0 {
			after = ""
		}
		if after > prefix {
			after = ""
		}
	}
	for {
		ents, more, err := q.s.fs.ReadDirNames(q.ctx, &core.Root, root, after, 1000, true)
		if err != nil {
			return err
		}
		for _, e := range ents {
			after = e.Name
			if !strings.HasPrefix(e.Name, prefix) {
				if e.Name > prefix {
					more = false
					break
				}
				continue
			}
			if e.Type != core.TypeDir || strings.HasPrefix(e.Name, ".") || e.Attr == nil {
				continue
			}
			if q.ident.UID != 0 && e.Attr.UID != q.ident.UID {
				continue
			}
			if len(res.Buckets) == max {
				res.ContinuationToken = base64.RawURLEncoding.EncodeToString([]byte(res.Buckets[len(res.Buckets)-1].Name))
				return q.writeXML(200, res)
			}
			res.Buckets = append(res.Buckets, s3xml.Bucket{Name: e.Name, CreationDate: s3xml.Time(e.Attr.Btime), BucketRegion: q.s.cfg.Region})
		}
		if !more {
			break
		}
	}
	return q.writeXML(200, res)
}

func (q *request) createBucket() error {
	if q.anonymous {
		return s3err.AccessDenied
	}
	if err := checkBucketName(q.bucket); err != nil {
		return err
	}
	body, err := q.readBody(maxConfigBody)
	if err != nil {
		return err
	}
	cfg, err := s3xml.ParseCreateBucket(body)
	if err != nil {
		return err
	}
	if lc := cfg.LocationConstraint; lc != "" && lc != q.s.cfg.Region && !(lc == "US" && q.s.cfg.Region == DefaultRegion) {
		return &s3err.Error{Code: "IllegalLocationConstraintException", Status: 400,
			Message: "The " + lc + " location constraint is incompatible with the region " + q.s.cfg.Region + " of this gateway."}
	}
	me := q.userName()
	a, err := q.s.aclFromHeaders(q.r.Header, me, me)
	if err != nil {
		return err
	}
	root, err := q.s.root(q.ctx)
	if err != nil {
		return err
	}
	if ex, err := q.s.fs.Lookup(q.ctx, &core.Root, root, q.bucket); err == nil {
		return q.bucketExists(ex, a)
	}
	mode := uint32(dirMode)
	if a.publicWrite() {
		mode = 0o777
	}
	d, err := q.s.fs.Mkdir(q.ctx, &core.Root, root, q.bucket, mode)
	if err != nil {
		if errno(err) == syscall.EEXIST {
			if ex, err := q.s.fs.Lookup(q.ctx, &core.Root, root, q.bucket); err == nil {
				return q.bucketExists(ex, a)
			}
		}
		return err
	}
	// The gateway makes the directory (any S3 user may create a bucket)
	// and gives it to the caller.
	uid, gid := q.ident.UID, q.ident.GID
	if _, err := q.s.fs.SetAttr(q.ctx, &core.Root, d.Ino, core.SetAttr{UID: &uid, GID: &gid}); err != nil {
		q.s.fs.Rmdir(q.ctx, &core.Root, root, q.bucket)
		return err
	}
	if a == nil {
		a, _ = cannedACL("private", me, me)
	}
	set := map[string][]byte{xACL: a.encode()}
	if cfg.LocationConstraint != "" {
		set[xLocation] = []byte(cfg.LocationConstraint)
	}
	if strings.EqualFold(q.r.Header.Get("X-Amz-Bucket-Object-Lock-Enabled"), "true") {
		set[xLockConfig] = []byte(`<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled></ObjectLockConfiguration>`)
		set[xVersioning] = []byte("Enabled")
	}
	if err := q.s.fs.UpdateXattrs(q.ctx, &core.Root, d.Ino, set, nil); err != nil {
		return err
	}
	q.w.Header().Set("Location", "/"+q.bucket)
	return q.reply(200)
}

// bucketExists answers a CreateBucket of an existing name: another
// owner's is BucketAlreadyExists; the caller's own succeeds again in
// us-east-1 (as S3 does there) when it asks for the same ACL, and is
// BucketAlreadyOwnedByYou elsewhere; asking for another ACL is
// BucketAlreadyExists, since the bucket cannot be made anew.
func (q *request) bucketExists(ex core.Attr, requested *acl) error {
	if ex.Type != core.TypeDir || ex.UID != q.ident.UID {
		return s3err.BucketAlreadyExists
	}
	x, err := q.s.fs.GetXattrs(q.ctx, &core.Root, ex.Ino, xACL)
	if err != nil {
		return err
	}
	if requested.cannedName() != decodeACL(x[xACL]).cannedName() || (requested != nil && requested.Canned == "") {
		return s3err.BucketAlreadyExists
	}
	if q.s.cfg.Region != DefaultRegion {
		return s3err.BucketAlreadyOwnedByYou
	}
	q.w.Header().Set("Location", "/"+q.bucket)
	return q.reply(200)
}

func (q *request) headBucket() error {
	if _, err := q.bucketFor(access{action: "s3:ListBucket", perm: permRead}); err != nil {
		return err
	}
	q.w.Header().Set("X-Amz-Bucket-Region", q.s.cfg.Region)
	return q.reply(200)
}

func (q *request) deleteBucket() error {
	b, err := q.bucketFor(access{action: "s3:DeleteBucket"})
	if err != nil {
		return err
	}
	ents, _, err := q.s.fs.ReadDirNames(q.ctx, &core.Root, b.ino(), "", 1, false)
	if err != nil {
		return err
	}
	if len(ents) > 0 {
		return s3err.BucketNotEmpty
	}
	if has, err := q.s.hasVersions(q.ctx, b.name); err != nil {
		return err
	} else if has {
		return s3err.BucketNotEmpty.With("The bucket you tried to delete is not empty. You must delete all versions in the bucket.")
	}
	root, err := q.s.root(q.ctx)
	if err != nil {
		return err
	}
	if err := q.s.fs.Rmdir(q.ctx, &core.Root, root, b.name); err != nil {
		if errno(err) == syscall.ENOTEMPTY {
			return s3err.BucketNotEmpty
		}
		return err
	}
	q.s.dropBucketArea(q.ctx, b.name)
	return q.reply(http.StatusNoContent)
}

func (q *request) getBucketLocation() error {
	b, err := q.bucketFor(access{action: "s3:GetBucketLocation"})
	if err != nil {
		return err
	}
	loc := string(b.x[xLocation])
	if loc == "" && q.s.cfg.Region != DefaultRegion {
		loc = q.s.cfg.Region
	}
	return q.writeXML(200, s3xml.LocationConstraint{Xmlns: s3xml.Namespace, Location: loc})
}

// setBucketConfig stores (or, with nil, removes) a configuration attribute
// of the bucket, as the caller: only who may change the directory may
// change its configuration.
func (q *request) setBucketConfig(b *bucket, name string, value []byte) error {
	var err error
	if value == nil {
		if _, ok := b.x[name]; !ok {
			return nil
		}
		err = q.s.fs.UpdateXattrs(q.ctx, q.configIdentity(b), b.ino(), nil, []string{name})
	} else {
		err = q.s.fs.UpdateXattrs(q.ctx, q.configIdentity(b), b.ino(), map[string][]byte{name: value}, nil)
	}
	q.s.bucketConfigs.forget(b.name)
	return err
}

// configIdentity is who changes bucket configuration in the core: the
// caller when it owns the bucket, else (a bucket policy allowed it) the
// gateway.
func (q *request) configIdentity(b *bucket) *core.Identity {
	if q.ident.UID == b.attr.UID || q.ident.UID == 0 {
		return q.ident
	}
	return &core.Root
}

func (q *request) getBucketVersioning() error {
	b, err := q.bucketFor(access{action: "s3:GetBucketVersioning"})
	if err != nil {
		return err
	}
	return q.writeXML(200, s3xml.VersioningConfiguration{Xmlns: s3xml.Namespace, Status: b.versioning()})
}

func (q *request) putBucketVersioning() error {
	b, err := q.bucketFor(access{action: "s3:PutBucketVersioning"})
	if err != nil {
		return err
	}
	body, err := q.readBody(maxConfigBody)
	if err != nil {
		return err
	}
	v, err := s3xml.ParseVersioning(body)
	if err != nil {
		return err
	}
	if v.Status == "Suspended" && len(b.x[xLockConfig]) > 0 {
		return s3err.InvalidBucketState.With("An Object Lock configuration is present on this bucket, so the versioning state cannot be changed.")
	}
	if err := q.setBucketConfig(b, xVersioning, []byte(v.Status)); err != nil {
		return err
	}
	return q.reply(200)
}

func (q *request) getBucketTagging() error {
	b, err := q.bucketFor(access{action: "s3:GetBucketTagging"})
	if err != nil {
		return err
	}
	raw, ok := b.x[xTags]
	if !ok {
		return s3err.NoSuchTagSet
	}
	return q.writeXML(200, s3xml.Tagging{Xmlns: s3xml.Namespace, TagSet: decodeTags(raw)})
}

func (q *request) putBucketTagging() error {
	b, err := q.bucketFor(access{action: "s3:PutBucketTagging"})
	if err != nil {
		return err
	}
	body, err := q.readBody(maxConfigBody)
	if err != nil {
		return err
	}
	t, err := s3xml.ParseTagging(body, s3xml.MaxBucketTags)
	if err != nil {
		return err
	}
	if err := q.setBucketConfig(b, xTags, encodeTags(t.TagSet)); err != nil {
		return err
	}
	return q.reply(200)
}

func (q *request) deleteBucketTagging() error {
	b, err := q.bucketFor(access{action: "s3:PutBucketTagging"})
	if err != nil {
		return err
	}
	if err := q.setBucketConfig(b, xTags, nil); err != nil {
		return err
	}
	return q.reply(http.StatusNoContent)
}

func (q *request) getBucketPolicy() error {
	b, err := q.bucketFor(access{action: "s3:GetBucketPolicy"})
	if err != nil {
		return err
	}
	doc, ok := b.x[xPolicy]
	if !ok {
		return s3err.NoSuchBucketPolicy
	}
	q.w.Header().Set("Content-Type", "application/json")
	q.w.Header().Set("Content-Length", strconv.Itoa(len(doc)))
	q.status = 200
	q.w.WriteHeader(200)
	q.w.Write(doc)
	q.bytesOut += int64(len(doc))
	return nil
}

func (q *request) putBucketPolicy() error {
	b, err := q.bucketFor(access{action: "s3:PutBucketPolicy"})
	if err != nil {
		return err
	}
	body, err := q.readBody(20 << 10)
	if err != nil {
		return err
	}
	p, err := parsePolicy(body, b.name)
	if err != nil {
		return err
	}
	if p.public() && b.publicAccessBlock().BlockPublicPolicy {
		return s3err.AccessDenied.With("Access Denied: the bucket's public access block forbids public policies.")
	}
	if err := q.setBucketConfig(b, xPolicy, body); err != nil {
		return err
	}
	return q.reply(http.StatusNoContent)
}

func (q *request) deleteBucketPolicy() error {
	b, err := q.bucketFor(access{action: "s3:DeleteBucketPolicy"})
	if err != nil {
		return err
	}
	if err := q.setBucketConfig(b, xPolicy, nil); err != nil {
		return err
	}
	return q.reply(http.StatusNoContent)
}

func (q *request) getBucketPolicyStatus() error {
	b, err := q.bucketFor(access{action: "s3:GetBucketPolicyStatus"})
	if err != nil {
		return err
	}
	public := bucketPolicy(b).public() || decodeACL(b.x[xACL]).public()
	return q.writeXML(200, s3xml.PolicyStatus{Xmlns: s3xml.Namespace, IsPublic: public})
}

func (q *request) getBucketCORS() error {
	b, err := q.bucketFor(access{action: "s3:GetBucketCORS"})
	if err != nil {
		return err
	}
	raw, ok := b.x[xCORS]
	if !ok {
		return s3err.NoSuchCORSConfiguration
	}
	var c s3xml.CORSConfiguration
	if err := xml.Unmarshal(raw, &c); err != nil {
		return s3err.NoSuchCORSConfiguration
	}
	c.Xmlns = s3xml.Namespace
	return q.writeXML(200, c)
}

func (q *request) putBucketCORS() error {
	b, err := q.bucketFor(access{action: "s3:PutBucketCORS"})
	if err != nil {
		return err
	}
	body, err := q.readBody(maxConfigBody)
	if err != nil {
		return err
	}
	c, err := s3xml.ParseCORS(body)
	if err != nil {
		return err
	}
	c.Xmlns = ""
	out, err := xml.Marshal(c)
	if err != nil {
		return err
	}
	if err := q.setBucketConfig(b, xCORS, out); err != nil {
		return err
	}
	return q.reply(200)
}

func (q *request) deleteBucketCORS() error {
	b, err := q.bucketFor(access{action: "s3:PutBucketCORS"})
	if err != nil {
		return err
	}
	if err := q.setBucketConfig(b, xCORS, nil); err != nil {
		return err
	}
	return q.reply(http.StatusNoContent)
}

func (q *request) getBucketACL() error {
	b, err := q.bucketFor(access{action: "s3:GetBucketAcl", perm: permReadACP})
	if err != nil {
		return err
	}
	return q.writeXML(200, decodeACL(b.x[xACL]).document(q.ownerOf(b.attr.UID), ownerByID))
}

func (q *request) putBucketACL() error {
	if err := q.aclsEnabled(); err != nil {
		return err
	}
	b, err := q.bucketFor(access{action: "s3:PutBucketAcl", perm: permWriteACP})
	if err != nil {
		return err
	}
	owner := q.ownerOf(b.attr.UID).ID
	a, err := q.aclFromRequest(owner, owner)
	if err != nil {
		return err
	}
	if err := checkPublicACL(b, a); err != nil {
		return err
	}
	if err := q.setBucketConfig(b, xACL, a.encode()); err != nil {
		return err
	}
	// Writes granted to everyone need a directory everyone may write in.
	mode := uint32(dirMode)
	if a.publicWrite() {
		mode = 0o777
	}
	if b.attr.Mode&0o777 != mode && (b.attr.Mode&0o777 == dirMode || b.attr.Mode&0o777 == 0o777) {
		if _, err := q.s.fs.SetAttr(q.ctx, &core.Root, b.ino(), core.SetAttr{Mode: &mode}); err != nil {
			return err
		}
	}
	return q.reply(200)
}

// aclFromRequest reads the ACL a Put*Acl request sets: headers or body.
func (q *request) aclFromRequest(owner, bucketOwner string) (*acl, error) {
	a, err := q.s.aclFromHeaders(q.r.Header, owner, bucketOwner)
	if err != nil {
		return nil, err
	}
	body, err := q.readBody(maxConfigBody)
	if err != nil {
		return nil, err
	}
	if len(strings.TrimSpace(string(body))) > 0 {
		if a != nil {
			return nil, s3err.InvalidRequest.With("An ACL is given both in headers and in the body.")
		}
		doc, err := s3xml.ParseACL(body)
		if err != nil {
			return nil, err
		}
		return q.s.aclFromXML(doc)
	}
	if a == nil {
		return nil, s3err.MissingSecurityHeader.With("Your request was missing a required header: x-amz-acl or an ACL body.")
	}
	return a, nil
}

func (q *request) getObjectLockConfig() error {
	b, err := q.bucketFor(access{action: "s3:GetBucketObjectLockConfiguration"})
	if err != nil {
		return err
	}
	raw, ok := b.x[xLockConfig]
	if !ok {
		return s3err.ObjectLockConfigurationMissing
	}
	var c s3xml.ObjectLockConfiguration
	if err := xml.Unmarshal(raw, &c); err != nil {
		return s3err.ObjectLockConfigurationMissing
	}
	c.Xmlns = s3xml.Namespace
	return q.writeXML(200, c)
}

func (q *request) putObjectLockConfig() error {
	b, err := q.bucketFor(access{action: "s3:PutBucketObjectLockConfiguration"})
	if err != nil {
		return err
	}
	body, err := q.readBody(maxConfigBody)
	if err != nil {
		return err
	}
	c, err := s3xml.ParseObjectLockConfiguration(body)
	if err != nil {
		return err
	}
	if _, ok := b.x[xLockConfig]; !ok {
		if b.versioning() != "Enabled" {
			return s3err.InvalidBucketState.With("Versioning must be 'Enabled' on the bucket to apply a Object Lock configuration")
		}
	}
	c.Xmlns = ""
	out, err := xml.Marshal(c)
	if err != nil {
		return err
	}
	if err := q.setBucketConfig(b, xLockConfig, out); err != nil {
		return err
	}
	return q.reply(200)
}

// publicAccessBlock returns the bucket's public access block settings
// (all off when none are stored).
func (b *bucket) publicAccessBlock() s3xml.PublicAccessBlockConfiguration {
	var c s3xml.PublicAccessBlockConfiguration
	if raw, ok := b.x[xPublicBlock]; ok {
		xml.Unmarshal(raw, &c)
	}
	return c
}

// aclsEnabled refuses to set ACLs in a bucket whose ownership control is
// BucketOwnerEnforced (ACLs are disabled there).
func (q *request) aclsEnabled() error {
	b, err := q.loadBucket()
	if err != nil {
		return err
	}
	if b.objectOwnership() == "BucketOwnerEnforced" {
		return errACLNotSupported
	}
	return nil
}

// objectOwnership is the bucket's ObjectOwnership setting ("" for none).
func (b *bucket) objectOwnership() string {
	raw, ok := b.x[xOwnership]
	if !ok {
		return ""
	}
	var c s3xml.OwnershipControls
	if xml.Unmarshal(raw, &c) != nil || len(c.Rules) == 0 {
		return ""
	}
	return c.Rules[0].ObjectOwnership
}

// lockConfig returns the bucket's object lock configuration, or nil.
func (b *bucket) lockConfig() *s3xml.ObjectLockConfiguration {
	raw, ok := b.x[xLockConfig]
	if !ok {
		return nil
	}
	var c s3xml.ObjectLockConfiguration
	if xml.Unmarshal(raw, &c) != nil {
		return nil
	}
	return &c
}

func (q *request) getPublicAccessBlock() error {
	b, err := q.bucketFor(access{action: "s3:GetBucketPublicAccessBlock"})
	if err != nil {
		return err
	}
	raw, ok := b.x[xPublicBlock]
	if !ok {
		return &s3err.Error{Code: "NoSuchPublicAccessBlockConfiguration", Status: 404, Message: "The public access block configuration was not found"}
	}
	var c s3xml.PublicAccessBlockConfiguration
	xml.Unmarshal(raw, &c)
	c.Xmlns = s3xml.Namespace
	return q.writeXML(200, c)
}

func (q *request) putPublicAccessBlock() error {
	b, err := q.bucketFor(access{action: "s3:PutBucketPublicAccessBlock"})
	if err != nil {
		return err
	}
	body, err := q.readBody(maxConfigBody)
	if err != nil {
		return err
	}
	c, err := s3xml.ParsePublicAccessBlock(body)
	if err != nil {
		return err
	}
	c.Xmlns = ""
	out, _ := xml.Marshal(c)
	if err := q.setBucketConfig(b, xPublicBlock, out); err != nil {
		return err
	}
	return q.reply(200)
}

func (q *request) deletePublicAccessBlock() error {
	b, err := q.bucketFor(access{action: "s3:PutBucketPublicAccessBlock"})
	if err != nil {
		return err
	}
	if err := q.setBucketConfig(b, xPublicBlock, nil); err != nil {
		return err
	}
	return q.reply(http.StatusNoContent)
}

func (q *request) getOwnershipControls() error {
	b, err := q.bucketFor(access{action: "s3:GetBucketOwnershipControls"})
	if err != nil {
		return err
	}
	raw, ok := b.x[xOwnership]
	if !ok {
		return &s3err.Error{Code: "OwnershipControlsNotFoundError", Status: 404, Message: "The bucket ownership controls were not found"}
	}
	var c s3xml.OwnershipControls
	xml.Unmarshal(raw, &c)
	c.Xmlns = s3xml.Namespace
	return q.writeXML(200, c)
}

func (q *request) putOwnershipControls() error {
	b, err := q.bucketFor(access{action: "s3:PutBucketOwnershipControls"})
	if err != nil {
		return err
	}
	body, err := q.readBody(maxConfigBody)
	if err != nil {
		return err
	}
	c, err := s3xml.ParseOwnershipControls(body)
	if err != nil {
		return err
	}
	if c.Rules[0].ObjectOwnership == "BucketOwnerEnforced" && decodeACL(b.x[xACL]).cannedName() != "private" {
		return &s3err.Error{Code: "InvalidBucketAclWithObjectOwnership", Status: 400,
			Message: "Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced setting"}
	}
	c.Xmlns = ""
	out, _ := xml.Marshal(c)
	if err := q.setBucketConfig(b, xOwnership, out); err != nil {
		return err
	}
	return q.reply(200)
}

func (q *request) deleteOwnershipControls() error {
	b, err := q.bucketFor(access{action: "s3:PutBucketOwnershipControls"})
	if err != nil {
		return err
	}
	if err := q.setBucketConfig(b, xOwnership, nil); err != nil {
		return err
	}
	return q.reply(http.StatusNoContent)
}

func (q *request) noSuchEncryption() error {
	if _, err := q.bucketFor(access{action: "s3:GetEncryptionConfiguration"}); err != nil {
		return err
	}
	return &s3err.Error{Code: "ServerSideEncryptionConfigurationNotFoundError", Status: 404, Message: "The server side encryption configuration was not found"}
}

// deleteNothing answers the deletion of a configuration the gateway never
// stores.
func (q *request) deleteNothing() error {
	if _, err := q.bucketFor(access{action: "s3:PutBucketConfiguration"}); err != nil {
		return err
	}
	return q.reply(http.StatusNoContent)
}

func (q *request) getBucketLogging() error {
	if _, err := q.bucketFor(access{action: "s3:GetBucketLogging"}); err != nil {
		return err
	}
	type status struct {
		XMLName xml.Name `xml:"BucketLoggingStatus"`
		Xmlns   string   `xml:"xmlns,attr"`
	}
	return q.writeXML(200, status{Xmlns: s3xml.Namespace})
}

// ownerByID is the owner of an owner ID (the user name).
func ownerByID(id string) s3xml.Owner { return s3xml.Owner{ID: id, DisplayName: id} }
