package s3

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/claudefs/cfs-gateway/internal/core"
	"github.com/claudefs/cfs-gateway/internal/protocol/s3/s3err"
	"github.com/claudefs/cfs-gateway/internal/protocol/s3/s3xml"
	"github.com/claudefs/cfs-gateway/internal/protocol/s3/sigv4"
)

// verified is an authenticated request with its verified body.
type verified = sigv4.Verified

// authenticator authenticates requests and wraps their bodies
// (*sigv4.Verifier; tests substitute their own).
type authenticator interface {
	Verify(r *http.Request) (*verified, error)
	// VerifyPost checks a browser POST upload's signed policy.
	VerifyPost(ctx context.Context, form map[string]string) (accessKey string, policy *sigv4.PostPolicy, err error)
}

// newAuthenticator is the SigV4 verifier over the users table.
func newAuthenticator(s *Server) *sigv4.Verifier {
	// Signature V2 is deprecated but still signed by older tools; MinIO
	// accepts it too.
	return &sigv4.Verifier{Secrets: secretStore{s}, Region: s.cfg.Region, Now: s.cfg.Now, AllowSignatureV2: true}
}

// secretStore finds access keys' secrets in the users table.
type secretStore struct{ s *Server }

func (st secretStore) Secret(ctx context.Context, accessKey string) (string, error) {
	_, k, err := st.s.keys.lookup(ctx, accessKey)
	if err != nil {
		return "", err
	}
	return k.Secret, nil
}

// accessKeyCache remembers the user of an access key briefly, so that a
// burst of requests does not read the users table for each one.
type accessKeyCache struct {
	fs  *core.FS
	now func() time.Time
	mu  sync.Mutex
	m   map[string]cachedUser
}

type cachedUser struct {
	user    *core.User
	key     core.AccessKey
	expires time.Time
}

const accessKeyTTL = 2 * time.Second

func (c *accessKeyCache) lookup(ctx context.Context, key string) (*core.User, core.AccessKey, error) {
	now := c.now()
	c.mu.Lock()
	if e, ok := c.m[key]; ok && now.Before(e.expires) {
		c.mu.Unlock()
		return e.user, e.key, nil
	}
	c.mu.Unlock()
	u, k, err := c.fs.LookupAccessKey(ctx, key)
	if err != nil {
		if errors.Is(err, core.ErrNoUser) {
			return nil, core.AccessKey{}, s3err.InvalidAccessKeyID
		}
		return nil, core.AccessKey{}, err
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) > 10000 {
		c.m = map[string]cachedUser{}
	}
	c.m[key] = cachedUser{user: u, key: k, expires: now.Add(accessKeyTTL)}
	c.mu.Unlock()
	return u, k, nil
}

// ownerCache maps uids to user names (the owner IDs of S3) and back.
type ownerCache struct {
	fs      *core.FS
	mu      sync.Mutex
	byUID   map[uint32]string
	byName  map[string]uint32
	loaded  time.Time
	loading bool
}

const ownerRefresh = 10 * time.Second

func (c *ownerCache) refresh(force bool) {
	c.mu.Lock()
	if c.loading || (!force && time.Since(c.loaded) < ownerRefresh) || (force && time.Since(c.loaded) < time.Second) {
		c.mu.Unlock()
		return
	}
	c.loading = true
	c.mu.Unlock()
	users, err := c.fs.ListUsers(context.Background())
	c.mu.Lock()
	defer c.mu.Unlock()
	c.loading = false
	if err != nil {
		return
	}
	c.byUID, c.byName = map[uint32]string{}, map[string]uint32{}
	for _, u := range users {
		if _, dup := c.byUID[u.UID]; !dup {
			c.byUID[u.UID] = u.Name
		}
		c.byName[u.Name] = u.UID
	}
	c.loaded = time.Now()
}

// owner returns the S3 owner of uid: its user's name, or the uid in
// decimal if no user has it.
func (c *ownerCache) owner(uid uint32) s3xml.Owner {
	c.refresh(false)
	c.mu.Lock()
	name, ok := c.byUID[uid]
	c.mu.Unlock()
	if !ok {
		c.refresh(true)
		c.mu.Lock()
		name, ok = c.byUID[uid]
		c.mu.Unlock()
	}
	if !ok {
		name = strconv.FormatUint(uint64(uid), 10)
	}
	return s3xml.Owner{ID: name, DisplayName: name}
}

// knownID reports whether id is the owner ID of some user.
func (c *ownerCache) knownID(id string) bool {
	c.refresh(false)
	c.mu.Lock()
	_, ok := c.byName[id]
	c.mu.Unlock()
	if !ok {
		c.refresh(true)
		c.mu.Lock()
		_, ok = c.byName[id]
		c.mu.Unlock()
	}
	if !ok {
		_, err := strconv.ParseUint(id, 10, 32)
		ok = err == nil
	}
	return ok
}

// authenticate verifies the request and sets its identity.
func (q *request) authenticate() error {
	v, err := q.s.auth.Verify(q.r)
	if err != nil {
		return err
	}
	q.auth = v
	if v.AccessKey == "" {
		q.setAnonymous()
		return nil
	}
	return q.setUser(v.AccessKey)
}

// setUser makes the user of accessKey the caller.
func (q *request) setUser(accessKey string) error {
	u, _, err := q.s.keys.lookup(q.ctx, accessKey)
	if err != nil {
		return err
	}
	q.user = u
	id := u.Identity()
	q.ident, q.caller = &id, &id
	return nil
}

// setAnonymous makes the request anonymous.
func (q *request) setAnonymous() {
	q.anonymous = true
	id := q.s.anon
	q.ident, q.caller = &id, &id
}

// userName is the caller's owner ID ("" when anonymous).
func (q *request) userName() string {
	if q.user == nil {
		return ""
	}
	return q.user.Name
}

// access is what an operation needs: its policy action, and the ACL
// permission that grants it to someone who is not the owner ("" when only
// the owner or a policy may), checked on the object's ACL when onObject.
type access struct {
	action   string
	perm     string
	onObject bool
}

// policyCache keeps parsed bucket policies by their text.
var policyCache sync.Map // string -> *policy

func bucketPolicy(b *bucket) *policy {
	doc := b.x[xPolicy]
	if len(doc) == 0 {
		return nil
	}
	if p, ok := policyCache.Load(string(doc)); ok {
		return p.(*policy)
	}
	p, err := parsePolicy(doc, b.name)
	if err != nil {
		return nil
	}
	policyCache.Store(string(doc), p)
	return p
}

// authorize decides S3 access to b (and object o, when known): an explicit
// Deny of the bucket policy refuses; the bucket owner, the object's owner,
// root, a policy Allow or an ACL grant permit. An authenticated caller in a
// bucket that has no S3 ACL (a directory made by another protocol) is left
// to the core's permission checks. The core checks again either way.
//
// An authenticated caller that only a policy or ACL grant of the bucket
// owner lets write in the bucket acts in the core as the bucket owner for
// the request: the owner delegated the write by granting it, and the
// objects so written belong to the bucket owner (as with S3's
// BucketOwnerEnforced object ownership). Decisions always use the caller's
// own identity.
func (q *request) authorize(b *bucket, ac access, o *object) error {
	pr := policyRequest{anonymous: q.anonymous, user: q.userName(), action: ac.action,
		resource: resourceARN(b.name, q.key), cond: q.conditionKey(o)}
	if ac.action == "s3:ListBucket" || ac.action == "s3:ListBucketVersions" || ac.action == "s3:ListBucketMultipartUploads" {
		pr.resource = resourceARN(b.name, "")
	}
	pol := bucketPolicy(b)
	d := pol.evaluate(&pr)
	if d == denied {
		return s3err.AccessDenied
	}
	if !q.anonymous {
		// Owners: of the bucket for bucket operations, of the object for
		// operations on it (as in S3, the bucket owner does not read
		// others' objects without a grant, but may delete them).
		uid := q.caller.UID
		switch {
		case uid == 0:
			return nil
		case ac.onObject && o != nil:
			if o.attr.UID == uid {
				return nil
			}
		case uid == b.attr.UID:
			return nil
		}
	}
	pab := b.publicAccessBlock()
	if d == allowed && !(q.anonymous && pab.RestrictPublicBuckets) {
		q.delegate(b, ac)
		return nil
	}
	if ac.perm == "" {
		return s3err.AccessDenied
	}
	a := decodeACL(b.x[xACL])
	if ac.onObject {
		if o == nil {
			return s3err.AccessDenied
		}
		a = decodeACL(o.x[xACL])
		if a == nil && o.x[xEtag] != nil {
			a = &acl{} // written by S3 without an ACL: private
		}
	}
	if pab.IgnorePublicAcls && a != nil {
		a = a.withoutPublic()
	}
	if a.allows(q.anonymous, q.userName(), ac.perm) {
		q.delegate(b, ac)
		return nil
	}
	if !q.anonymous && a == nil && (ac.perm == permRead || ac.perm == permWrite) {
		// A bucket or object that S3 did not make (a directory or file
		// of another protocol): POSIX permissions decide, in the core.
		return nil
	}
	return s3err.AccessDenied
}

// delegate makes a granted authenticated write act as the bucket owner;
// the objects it makes are given to the caller (see publish) unless the
// bucket's object ownership is BucketOwnerEnforced.
func (q *request) delegate(b *bucket, ac access) {
	if q.anonymous || !writeActions[ac.action] {
		return
	}
	q.ident = &core.Identity{UID: b.attr.UID, GID: b.attr.GID}
	q.delegated = true
}

// objectOwner is the uid that an object the request writes, with ACL a,
// belongs to: its writer, except that what anonymous callers write, and
// everything in a BucketOwnerEnforced bucket, belongs to the bucket owner,
// as does an object given bucket-owner-full-control in a
// BucketOwnerPreferred bucket.
func (q *request) objectOwner(b *bucket, a *acl) uint32 {
	switch own := b.objectOwnership(); {
	case q.anonymous, own == "BucketOwnerEnforced":
		return b.attr.UID
	case own == "BucketOwnerPreferred" && a != nil && a.Canned == "bucket-owner-full-control":
		return b.attr.UID
	}
	return q.caller.UID
}

// writeActions change the contents of a bucket.
var writeActions = map[string]bool{
	"s3:PutObject": true, "s3:DeleteObject": true, "s3:DeleteObjectVersion": true,
	"s3:AbortMultipartUpload": true, "s3:ListMultipartUploadParts": true,
}

// conditionKey returns the condition key lookup of a policy evaluation.
func (q *request) conditionKey(o *object) func(string) ([]string, bool) {
	return func(key string) ([]string, bool) {
		one := func(v string) ([]string, bool) { return []string{v}, true }
		opt := func(v string) ([]string, bool) {
			if v == "" {
				return nil, false
			}
			return []string{v}, true
		}
		switch key {
		case "aws:sourceip":
			host, _, err := net.SplitHostPort(q.r.RemoteAddr)
			if err != nil {
				host = q.r.RemoteAddr
			}
			return one(host)
		case "aws:securetransport":
			return one(strconv.FormatBool(q.r.TLS != nil))
		case "aws:referer":
			return opt(q.r.Referer())
		case "aws:useragent":
			return opt(q.r.UserAgent())
		case "aws:username", "aws:userid":
			return opt(q.userName())
		case "aws:principaltype":
			if q.anonymous {
				return one("Anonymous")
			}
			return one("User")
		case "s3:prefix":
			if q.prefixCond != nil {
				return one(*q.prefixCond)
			}
			if q.has("prefix") {
				return one(q.get("prefix"))
			}
			return nil, false
		case "s3:delimiter":
			return opt(q.get("delimiter"))
		case "s3:max-keys":
			return opt(q.get("max-keys"))
		case "s3:versionid":
			return opt(q.get("versionId"))
		case "s3:x-amz-acl":
			return opt(q.r.Header.Get("X-Amz-Acl"))
		case "s3:x-amz-grant-full-control", "s3:x-amz-grant-read", "s3:x-amz-grant-write", "s3:x-amz-grant-read-acp", "s3:x-amz-grant-write-acp":
			return opt(q.r.Header.Get(strings.TrimPrefix(key, "s3:")))
		case "s3:x-amz-copy-source":
			return opt(q.r.Header.Get("X-Amz-Copy-Source"))
		case "s3:x-amz-metadata-directive":
			return opt(q.r.Header.Get("X-Amz-Metadata-Directive"))
		case "s3:x-amz-server-side-encryption":
			return opt(q.r.Header.Get("X-Amz-Server-Side-Encryption"))
		case "s3:x-amz-storage-class":
			return opt(q.r.Header.Get("X-Amz-Storage-Class"))
		case "s3:x-amz-content-sha256":
			return opt(q.r.Header.Get("X-Amz-Content-Sha256"))
		case "s3:object-lock-mode":
			return opt(q.r.Header.Get("X-Amz-Object-Lock-Mode"))
		case "s3:object-lock-legal-hold":
			return opt(q.r.Header.Get("X-Amz-Object-Lock-Legal-Hold"))
		case "s3:requestobjecttagkeys":
			tags, _ := parseTaggingHeader(q.r.Header.Get("X-Amz-Tagging"))
			var keys []string
			for _, t := range tags {
				keys = append(keys, t.Key)
			}
			return keys, len(keys) > 0
		}
		if k, ok := strings.CutPrefix(key, "s3:existingobjecttag/"); ok && o != nil {
			for _, t := range decodeTags(o.x[xTags]) {
				if strings.EqualFold(t.Key, k) {
					return one(t.Value)
				}
			}
			return nil, false
		}
		if k, ok := strings.CutPrefix(key, "s3:requestobjecttag/"); ok {
			tags, _ := parseTaggingHeader(q.r.Header.Get("X-Amz-Tagging"))
			for _, t := range tags {
				if strings.EqualFold(t.Key, k) {
					return one(t.Value)
				}
			}
			return nil, false
		}
		return nil, false
	}
}
