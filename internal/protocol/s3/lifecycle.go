package s3

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/xml"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/claudefs/cfs-gateway/internal/core"
	"github.com/claudefs/cfs-gateway/internal/protocol/s3/s3err"
	"github.com/claudefs/cfs-gateway/internal/protocol/s3/s3xml"
)

// Bucket lifecycle. A bucket's configuration is stored like its CORS
// rules: the normalised document in the bucket attribute xLifecycle. A
// worker of every gateway applies the enabled rules every
// Config.LifecycleInterval, bucket by bucket and page by page, through the
// same code paths as client requests (delete, versioning, abort), acting as
// the bucket owner.
//
// Several gateways may run the worker on one namespace at once. Each change
// re-reads what it acts on under the key's lock first and leaves it when it
// no longer qualifies (overwritten, retagged, already gone), so a second
// worker finds nothing to do; the check and the change are two core calls,
// so a client write from another gateway between them is treated as a
// DeleteObject racing that write would treat it.

// xLifecycle is the bucket attribute holding the lifecycle configuration.
const xLifecycle = "cfs.s3.lifecycle"

// Defaults of the lifecycle fields of Config.
const (
	DefaultLifecycleInterval = time.Hour
	DefaultLifecycleDay      = 24 * time.Hour
)

// lifecyclePage is how many entries the worker reads before it acts on
// them: no pass holds a listing open across its changes.
const lifecyclePage = 1000

// lifecycleLoggedErrors is how many failures of one bucket's pass are
// logged one by one; the end line counts them all.
const lifecycleLoggedErrors = 10

var errNoSuchLifecycle = &s3err.Error{Code: "NoSuchLifecycleConfiguration", Status: 404, Message: "The lifecycle configuration does not exist"}

func (q *request) getBucketLifecycle() error {
	b, err := q.bucketFor(access{action: "s3:GetLifecycleConfiguration"})
	if err != nil {
		return err
	}
	raw, ok := b.x[xLifecycle]
	if !ok {
		return errNoSuchLifecycle
	}
	var c s3xml.LifecycleConfiguration
	if err := xml.Unmarshal(raw, &c); err != nil {
		return errNoSuchLifecycle
	}
	c.Xmlns = s3xml.Namespace
	return q.writeXML(200, c)
}

func (q *request) putBucketLifecycle() error {
	b, err := q.bucketFor(access{action: "s3:PutLifecycleConfiguration"})
	if err != nil {
		return err
	}
	body, err := q.readBody(maxConfigBody)
	if err != nil {
		return err
	}
	c, err := s3xml.ParseLifecycle(body)
	if err != nil {
		return err
	}
	for i := range c.Rules {
		if c.Rules[i].ID == "" {
			c.Rules[i].ID = newRuleID()
		}
	}
	c.Xmlns = ""
	out, err := xml.Marshal(c)
	if err != nil {
		return err
	}
	if err := q.setBucketConfig(b, xLifecycle, out); err != nil {
		return err
	}
	return q.reply(200)
}

func (q *request) deleteBucketLifecycle() error {
	b, err := q.bucketFor(access{action: "s3:PutLifecycleConfiguration"})
	if err != nil {
		return err
	}
	if err := q.setBucketConfig(b, xLifecycle, nil); err != nil {
		return err
	}
	return q.reply(http.StatusNoContent)
}

// newRuleID names a rule sent without an ID, as S3 does.
func newRuleID() string {
	var b [15]byte
	rand.Read(b[:])
	return base32.StdEncoding.EncodeToString(b[:])
}

// lifecycleRule is an enabled rule, ready to evaluate.
type lifecycleRule struct {
	id     string
	prefix string
	tags   []s3xml.Tag
	// An object's size must be above minSize (when hasMin) and below
	// maxSize (when hasMax).
	minSize, maxSize int64
	hasMin, hasMax   bool

	days    int       // Expiration Days, 0 for none
	date    time.Time // Expiration Date, zero for none
	markers bool      // ExpiredObjectDeleteMarker

	noncurrent     bool // NoncurrentVersionExpiration
	noncurrentDays int  // 0: no age condition
	keepNewer      int  // NewerNoncurrentVersions

	abortDays int // AbortIncompleteMultipartUpload, 0 for none
}

// lifecycleRules are the enabled rules of a configuration.
type lifecycleRules struct {
	rules []lifecycleRule
	// currentPrefix is what every key that a current-version rule
	// (Days or Date) applies to starts with.
	currentPrefix  string
	expiresCurrent bool // a rule has Days or Date
	touchesVersion bool // a rule acts on noncurrent versions or delete markers
	abortsUploads  bool
}

func compileLifecycle(c *s3xml.LifecycleConfiguration) *lifecycleRules {
	lc := &lifecycleRules{}
	first := true
	for _, r := range c.Rules {
		if r.Status != "Enabled" {
			continue
		}
		lr := lifecycleRule{id: r.ID}
		if r.Prefix != nil {
			lr.prefix = *r.Prefix
		}
		if f := r.Filter; f != nil {
			prefix, tags, gt, lt := f.Prefix, f.Tags, f.ObjectSizeGreaterThan, f.ObjectSizeLessThan
			if a := f.And; a != nil {
				prefix, tags, gt, lt = a.Prefix, a.Tags, a.ObjectSizeGreaterThan, a.ObjectSizeLessThan
			}
			if prefix != nil {
				lr.prefix = *prefix
			}
			lr.tags = tags
			if gt != nil {
				lr.minSize, lr.hasMin = *gt, true
			}
			if lt != nil {
				lr.maxSize, lr.hasMax = *lt, true
			}
		}
		if e := r.Expiration; e != nil {
			if e.Days != nil {
				lr.days = *e.Days
			}
			if d, ok := e.DateTime(); ok {
				lr.date = d
			}
			lr.markers = e.ExpiredObjectDeleteMarker != nil && *e.ExpiredObjectDeleteMarker
		}
		if n := r.NoncurrentVersionExpiration; n != nil {
			lr.noncurrent = true
			if n.NoncurrentDays != nil {
				lr.noncurrentDays = *n.NoncurrentDays
			}
			if n.NewerNoncurrentVersions != nil {
				lr.keepNewer = *n.NewerNoncurrentVersions
			}
		}
		if a := r.AbortIncompleteMultipartUpload; a != nil && a.DaysAfterInitiation != nil {
			lr.abortDays = *a.DaysAfterInitiation
		}
		if lr.expiresCurrent() {
			lc.expiresCurrent = true
			if first {
				lc.currentPrefix, first = lr.prefix, false
			} else {
				lc.currentPrefix = commonPrefixOf(lc.currentPrefix, lr.prefix)
			}
		}
		lc.touchesVersion = lc.touchesVersion || lr.touchesVersions()
		lc.abortsUploads = lc.abortsUploads || lr.abortDays > 0
		lc.rules = append(lc.rules, lr)
	}
	if len(lc.rules) == 0 {
		return nil
	}
	return lc
}

func (r *lifecycleRule) expiresCurrent() bool { return r.days > 0 || !r.date.IsZero() }

func (r *lifecycleRule) touchesVersions() bool {
	return r.noncurrent || r.markers || r.expiresCurrent()
}

func commonPrefixOf(a, b string) string {
	n := min(len(a), len(b))
	i := 0
	for i < n && a[i] == b[i] {
		i++
	}
	return a[:i]
}

// matches reports whether an object version (not a delete marker) is
// selected by the rule's filter. tags is called only when needed.
func (r *lifecycleRule) matches(key string, size int64, tags func() []s3xml.Tag) bool {
	if !strings.HasPrefix(key, r.prefix) {
		return false
	}
	if (r.hasMin && size <= r.minSize) || (r.hasMax && size >= r.maxSize) {
		return false
	}
	if len(r.tags) == 0 {
		return true
	}
	have := tags()
	for _, want := range r.tags {
		found := false
		for _, t := range have {
			if t.Key == want.Key && t.Value == want.Value {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// matchesMarker reports whether a delete marker is selected: markers have
// no tags (a tag filter never selects one) and no size (size conditions
// do not apply to them).
func (r *lifecycleRule) matchesMarker(key string) bool {
	return len(r.tags) == 0 && strings.HasPrefix(key, r.prefix)
}

// dayEnd is when days after t are over: the first day boundary (midnight
// UTC for 24-hour days) after t plus days, as S3 rounds expiry times up to
// the next midnight. ok is false when that lies beyond any time.
func dayEnd(t time.Time, days int, day time.Duration) (time.Time, bool) {
	if days < 0 || int64(days) >= math.MaxInt64/int64(day)-1 {
		return time.Time{}, false
	}
	return t.Add(time.Duration(days+1) * day).Truncate(day), true
}

// currentExpiry is when the current version of key (last modified mtime,
// of size bytes and with tags) expires, and by which rule: the earliest of
// the rules with Days or Date that select it.
func (lc *lifecycleRules) currentExpiry(key string, mtime time.Time, size int64, tags func() []s3xml.Tag, day time.Duration) (time.Time, string, bool) {
	var best time.Time
	var id string
	found := false
	for i := range lc.rules {
		r := &lc.rules[i]
		if !r.expiresCurrent() || !r.matches(key, size, tags) {
			continue
		}
		at := r.date
		if r.days > 0 {
			var ok bool
			if at, ok = dayEnd(mtime, r.days, day); !ok {
				continue
			}
		}
		if !found || at.Before(best) {
			best, id, found = at, r.id, true
		}
	}
	return best, id, found
}

// lifecycleCache keeps compiled configurations by their stored text.
var lifecycleCache struct {
	sync.Mutex
	m map[string]*lifecycleRules
}

// lifecycleOf returns the enabled rules of b, or nil.
func lifecycleOf(b *bucket) *lifecycleRules {
	raw, ok := b.x[xLifecycle]
	if !ok {
		return nil
	}
	lifecycleCache.Lock()
	lc, ok := lifecycleCache.m[string(raw)]
	lifecycleCache.Unlock()
	if ok {
		return lc
	}
	var c s3xml.LifecycleConfiguration
	if xml.Unmarshal(raw, &c) == nil {
		lc = compileLifecycle(&c)
	}
	lifecycleCache.Lock()
	if lifecycleCache.m == nil || len(lifecycleCache.m) >= 1000 {
		lifecycleCache.m = map[string]*lifecycleRules{}
	}
	lifecycleCache.m[string(raw)] = lc
	lifecycleCache.Unlock()
	return lc
}

// setExpirationHeader announces, with x-amz-expiration, when a rule will
// expire the current version of key.
func (q *request) setExpirationHeader(b *bucket, key string, a *core.Attr, size int64, tags []s3xml.Tag) {
	lc := lifecycleOf(b)
	if lc == nil {
		return
	}
	at, id, ok := lc.currentExpiry(key, a.Mtime, size, func() []s3xml.Tag { return tags }, q.s.cfg.LifecycleDay)
	if !ok {
		return
	}
	q.w.Header().Set("X-Amz-Expiration", fmt.Sprintf(`expiry-date="%s", rule-id="%s"`, at.UTC().Format(http.TimeFormat), id))
}

// objectExpirationHeader is setExpirationHeader for an object that GET or
// HEAD serves: only the current version expires by Days or Date.
func (q *request) objectExpirationHeader(b *bucket, o *object) {
	if o.meta.DeleteMarker || lifecycleOf(b) == nil {
		return
	}
	if q.has("versionId") {
		cur, err := q.s.lookupObject(q.ctx, &core.Root, b, q.key)
		if err != nil || cur.attr.Ino != o.attr.Ino {
			return
		}
	}
	q.setExpirationHeader(b, q.key, &o.attr, objectSize(&o.attr, o.x[xEtag]), decodeTags(o.x[xTags]))
}

// lifecycleWorker runs the lifecycle passes of a server in the background.
type lifecycleWorker struct {
	once   sync.Once
	cancel context.CancelFunc
	done   chan struct{}
	// page, when set, replaces lifecyclePage (tests cross page
	// boundaries with a few objects).
	page int
}

// start starts the worker once, unless the interval disables it.
func (w *lifecycleWorker) start(s *Server) {
	w.once.Do(func() {
		if s.cfg.LifecycleInterval < 0 {
			return
		}
		ctx, cancel := context.WithCancel(context.Background())
		w.cancel, w.done = cancel, make(chan struct{})
		go s.lifecycleLoop(ctx, w.done)
	})
}

// stop stops the worker (and keeps it from starting) and waits for its
// pass in progress to end, or for ctx.
func (w *lifecycleWorker) stop(ctx context.Context) error {
	w.once.Do(func() {})
	if w.cancel == nil {
		return nil
	}
	w.cancel()
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stopping the S3 lifecycle worker: %w", ctx.Err())
	}
}

func (s *Server) lifecycleLoop(ctx context.Context, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(s.cfg.LifecycleInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.RunLifecycle(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("S3 lifecycle pass failed; the next pass starts over", "err", err)
			}
		}
	}
}

// RunLifecycle makes one lifecycle pass over every bucket that has an
// enabled rule. The worker calls it every Config.LifecycleInterval; it
// returns when the pass is over or ctx ends. Failures on single objects
// are logged and counted per bucket, not returned.
func (s *Server) RunLifecycle(ctx context.Context) error {
	root, err := s.root(ctx)
	if err != nil {
		return err
	}
	after := ""
	for {
		ents, more, err := s.fs.ReadDirNamesXattr(ctx, &core.Root, root, after, s.lifecyclePageSize(), xLifecycle)
		if err != nil {
			return fmt.Errorf("listing the buckets for lifecycle: %w", err)
		}
		for _, e := range ents {
			after = e.Name
			if e.Type != core.TypeDir || strings.HasPrefix(e.Name, ".") || e.Xattr == nil {
				continue
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			s.lifecycleBucket(ctx, e.Name)
		}
		if !more {
			return ctx.Err()
		}
	}
}

// lifecycleCounts are what one pass did in one bucket.
type lifecycleCounts struct {
	expired  int // current versions expired
	versions int // noncurrent versions removed
	markers  int // delete markers removed
	uploads  int // multipart uploads aborted
	errors   int
}

// lifecycleRun is one pass over one bucket.
type lifecycleRun struct {
	s     *Server
	ctx   context.Context
	b     *bucket
	rules *lifecycleRules
	now   time.Time
	day   time.Duration
	owner *core.Identity
	http  *http.Request // what the shared delete code reads of a request
	page  int
	n     lifecycleCounts
}

func (s *Server) lifecycleBucket(ctx context.Context, name string) {
	b, err := s.loadBucket(ctx, name)
	if err != nil {
		if !errors.Is(err, s3err.NoSuchBucket) {
			s.log.Warn("S3 lifecycle: reading the bucket failed; it is skipped this pass", "bucket", name, "err", err)
		}
		return
	}
	rules := lifecycleOf(b)
	if rules == nil {
		return
	}
	r := s.newLifecycleRun(ctx, b, rules)
	start := time.Now()
	s.log.Info("S3 lifecycle pass over bucket started", "bucket", name, "rules", len(rules.rules))
	defer func() {
		if v := recover(); v != nil {
			r.n.errors++
			s.log.Error("S3 lifecycle pass over bucket panicked; the bucket is skipped until the next pass", "bucket", name,
				"panic", v, "stack", string(debug.Stack()))
		}
		s.log.Info("S3 lifecycle pass over bucket finished", "bucket", name,
			"objects_expired", r.n.expired, "versions_removed", r.n.versions, "delete_markers_removed", r.n.markers,
			"uploads_aborted", r.n.uploads, "errors", r.n.errors, "elapsed", time.Since(start))
	}()
	r.expireCurrent()
	r.expireVersions()
	r.abortUploads()
}

func (s *Server) newLifecycleRun(ctx context.Context, b *bucket, rules *lifecycleRules) *lifecycleRun {
	return &lifecycleRun{s: s, ctx: ctx, b: b, rules: rules, now: s.now(), day: s.cfg.LifecycleDay,
		owner: s.ownerIdentity(ctx, b), http: &http.Request{Header: http.Header{}, URL: &url.URL{}}, page: s.lifecyclePageSize()}
}

func (s *Server) lifecyclePageSize() int {
	if s.lifecycle.page > 0 {
		return s.lifecycle.page
	}
	return lifecyclePage
}

// ownerIdentity is who the worker acts as in bucket b: its owner, with
// the owner's groups when the users table knows the owner.
func (s *Server) ownerIdentity(ctx context.Context, b *bucket) *core.Identity {
	id := core.Identity{UID: b.attr.UID, GID: b.attr.GID}
	if u, err := s.fs.LookupUser(ctx, s.owners.owner(b.attr.UID).ID); err == nil && u.UID == b.attr.UID {
		id = u.Identity()
	}
	return &id
}

// fail counts a failure and logs the first ones of the pass.
func (r *lifecycleRun) fail(key, what string, err error) {
	r.n.errors++
	if r.n.errors <= lifecycleLoggedErrors {
		r.s.log.Warn("S3 lifecycle: "+what+" failed; the next pass tries again", "bucket", r.b.name, "key", key, "err", err)
	}
	if r.n.errors == lifecycleLoggedErrors+1 {
		r.s.log.Warn("S3 lifecycle: further failures in this bucket are only counted", "bucket", r.b.name)
	}
}

// refresh reloads the bucket's configuration between pages, so that a
// versioning or lifecycle change made during a long pass is followed. It
// reports whether rules remain.
func (r *lifecycleRun) refresh() bool {
	if r.ctx.Err() != nil {
		return false
	}
	b, err := r.s.loadBucket(r.ctx, r.b.name)
	if err != nil {
		return false
	}
	r.b, r.rules = b, lifecycleOf(b)
	return r.rules != nil
}

// request is what the shared delete code runs as: a request of the
// bucket owner that answers nobody.
func (r *lifecycleRun) request(key string) *request {
	return &request{s: r.s, w: silentResponse{}, r: r.http, ctx: r.ctx, id: "lifecycle", op: "Lifecycle",
		bucket: r.b.name, key: key, q: url.Values{}, ident: r.owner, caller: r.owner, versionedBucket: r.b.versioned()}
}

// silentResponse is the response of the worker's requests: nobody reads it.
type silentResponse struct{}

func (silentResponse) Header() http.Header         { return http.Header{} }
func (silentResponse) Write(p []byte) (int, error) { return len(p), nil }
func (silentResponse) WriteHeader(int)             {}

// tagsOf returns a loader of the tags of inode ino.
func (r *lifecycleRun) tagsOf(ino core.Ino) func() []s3xml.Tag {
	return func() []s3xml.Tag {
		raw, err := r.s.fs.GetXattr(r.ctx, &core.Root, ino, xTags)
		if err != nil {
			return nil
		}
		return decodeTags(raw)
	}
}

// expired reports whether the current version described by the arguments
// is due.
func (r *lifecycleRun) expired(key string, mtime time.Time, size int64, tags func() []s3xml.Tag) bool {
	at, _, ok := r.rules.currentExpiry(key, mtime, size, tags, r.day)
	return ok && !at.After(r.now)
}

// expireCurrent walks the current objects a Days or Date rule may select,
// a page at a time, and expires the due ones.
func (r *lifecycleRun) expireCurrent() {
	if !r.rules.expiresCurrent {
		return
	}
	start, inclusive := r.rules.currentPrefix, true
	retries := 0
	for {
		var due []walkItem
		visited, last := 0, ""
		w := &walker{s: r.s, ctx: r.ctx, id: &core.Root, prefix: r.rules.currentPrefix, batch: r.page, xattr: xEtag}
		w.visit = func(it walkItem) (walkAction, error) {
			visited++
			last = it.key
			if r.dueItem(&it) {
				due = append(due, it)
			}
			if visited >= r.page {
				return walkStop, nil
			}
			return walkContinue, nil
		}
		if err := w.run(r.b.ino(), start, inclusive); err != nil {
			if e := errno(err); (e == syscall.ENOENT || e == syscall.ESTALE) && retries < 3 && r.ctx.Err() == nil {
				// A directory went away under the walk: resume after the
				// last key seen.
				retries++
				if last != "" {
					start, inclusive = last, false
				}
				continue
			}
			if r.ctx.Err() == nil {
				r.fail(last, "walking the bucket's objects", err)
			}
			return
		}
		retries = 0
		for i := range due {
			if r.ctx.Err() != nil {
				return
			}
			r.expireObject(&due[i])
		}
		if visited < r.page || !r.refresh() || !r.rules.expiresCurrent {
			return
		}
		start, inclusive = last, false
		if start < r.rules.currentPrefix {
			start, inclusive = r.rules.currentPrefix, true // the rules changed
		}
	}
}

// dueItem reports whether a walked entry is an object that is due.
func (r *lifecycleRun) dueItem(it *walkItem) bool {
	size := int64(it.attr.Size)
	if it.dir {
		rec := it.xattr
		if !it.xattrKnown {
			rec, _ = r.s.fs.GetXattr(r.ctx, &core.Root, it.attr.Ino, xEtag)
		}
		if rec == nil {
			return false // a plain directory, not an object
		}
		size = objectSize(it.attr, rec)
	}
	return r.expired(it.key, it.attr.Mtime, size, r.tagsOf(it.attr.Ino))
}

// expireObject expires the current version of it.key, if it is still the
// one evaluated and still due: removed, or in a versioned bucket hidden
// behind a delete marker, as DeleteObject without a version id does.
func (r *lifecycleRun) expireObject(it *walkItem) {
	key := it.key
	kp, err := splitKey(key)
	if err != nil {
		return // a name no key can have
	}
	b := r.b
	unlock := r.s.locks.lock(b.name, key)
	defer unlock()
	cur, err := r.s.lookupObject(r.ctx, &core.Root, b, key)
	if err != nil {
		if !errors.Is(err, s3err.NoSuchKey) {
			r.fail(key, "reading an object to expire", err)
		}
		return // already gone
	}
	if cur.attr.Ino != it.attr.Ino || cur.attr.Gen != it.attr.Gen ||
		!r.expired(key, cur.attr.Mtime, objectSize(&cur.attr, cur.x[xEtag]), func() []s3xml.Tag { return decodeTags(cur.x[xTags]) }) {
		return // replaced or changed since it was evaluated
	}
	q := r.request(key)
	done, err := r.expireVersion(q, kp, cur)
	if err != nil {
		r.fail(key, "expiring an object", err)
		return
	}
	if done {
		r.n.expired++
	}
}

// expireVersion removes the current version cur of kp, or in a versioned
// bucket makes it noncurrent under a new delete marker, as DeleteObject
// without a version id does. It reports false when another remover (the
// worker of another gateway) removed it first: then that one also adds
// the delete marker. The caller holds the key's lock.
func (r *lifecycleRun) expireVersion(q *request, kp keyPath, cur *object) (bool, error) {
	b := r.b
	if kp.marker {
		// Directory markers are not versioned.
		return true, q.removeCurrent(b, kp, cur)
	}
	if !b.versioned() {
		return r.removeFile(q, kp, cur, cur.attr.ChangeID)
	}
	status := b.versioning()
	markerID := nullVersion
	if status == "Enabled" {
		markerID = newVersionID(r.s.now())
	}
	if status == "Enabled" || cur.meta.VersionID != "" {
		if err := r.s.archive(r.ctx, b, q.key, cur); err != nil {
			return false, err
		}
	}
	// Archiving changed the file (a new link): only its identity is
	// checked now.
	if removed, err := r.removeFile(q, kp, cur, 0); !removed || err != nil {
		return false, err
	}
	if status == "Suspended" {
		if err := r.s.removeVersionEntry(r.ctx, b, q.key, nullVersion); err != nil {
			return false, err
		}
	}
	return true, q.addDeleteMarker(b, q.key, markerID)
}

// removeFile is removeCurrent for a file that tells whether this call
// removed it: of several workers removing one object, one does. The
// removal fails (ESTALE) if the file was replaced since it was judged, or
// changed (unless changeID is 0), through any gateway.
func (r *lifecycleRun) removeFile(q *request, kp keyPath, cur *object, changeID uint64) (bool, error) {
	if err := r.s.fs.RemoveIf(r.ctx, q.ident, cur.dir, cur.name, cur.attr.Ino, changeID); err != nil {
		if e := errno(err); e == syscall.ENOENT || e == syscall.ESTALE {
			return false, nil
		}
		return false, err
	}
	r.s.pruneDirs(r.ctx, r.b, kp)
	return true, nil
}

// expireVersions goes through the keys that have noncurrent versions or
// delete markers, a page at a time.
func (r *lifecycleRun) expireVersions() {
	if !r.rules.touchesVersion || !r.b.versioned() {
		return
	}
	vd, err := r.s.versionsDir(r.ctx, r.b.name)
	if err != nil {
		r.fail("", "opening the bucket's versions", err)
		return
	}
	after := ""
	for {
		ents, more, err := r.s.fs.ReadDirNames(r.ctx, &core.Root, vd, after, r.page, false)
		if err != nil {
			if r.ctx.Err() == nil {
				r.fail("", "listing the bucket's versions", err)
			}
			return
		}
		for _, e := range ents {
			after = e.Name
			if r.ctx.Err() != nil {
				return
			}
			key, whole := decodeVersionKey(e.Name)
			if !whole {
				raw, err := r.s.fs.GetXattr(r.ctx, &core.Root, e.Ino, xVersionKey)
				if err != nil {
					continue // removed meanwhile, or not finished
				}
				key = string(raw)
			}
			if r.versionRuleFor(key) {
				r.expireKeyVersions(key)
			}
		}
		if !more || !r.refresh() || !r.rules.touchesVersion {
			return
		}
	}
}

// versionRuleFor reports whether a rule may act on the versions of key.
func (r *lifecycleRun) versionRuleFor(key string) bool {
	for i := range r.rules.rules {
		if lr := &r.rules.rules[i]; lr.touchesVersions() && strings.HasPrefix(key, lr.prefix) {
			return true
		}
	}
	return false
}

// expireKeyVersions removes the noncurrent versions of key that a rule
// retires, then the delete marker left alone, under the key's lock.
func (r *lifecycleRun) expireKeyVersions(key string) {
	b := r.b
	unlock := r.s.locks.lock(b.name, key)
	defer unlock()
	cur, err := r.s.lookupObject(r.ctx, &core.Root, b, key)
	if err != nil && !errors.Is(err, s3err.NoSuchKey) {
		r.fail(key, "reading an object's current version", err)
		return
	}
	nc, err := r.s.noncurrent(r.ctx, b.name, key)
	if err != nil {
		r.fail(key, "listing an object's versions", err)
		return
	}
	// all holds every version, newest first; all[0] is the latest.
	var all []*object
	if cur != nil {
		all = append(all, cur)
	}
	for _, o := range nc {
		if cur != nil && entryName(o.meta.VersionID) == entryName(cur.meta.VersionID) {
			continue // left behind by an interrupted archive
		}
		all = append(all, o)
	}
	if len(all) == 0 {
		return
	}
	q := r.request(key)
	kept := all[:1:1]
	removed := false
	for i := 1; i < len(all); i++ {
		v := all[i]
		// A version became noncurrent when the next newer one was made.
		since := time.Unix(0, all[i-1].versionTime())
		if !r.noncurrentDue(key, v, since, i-1) {
			kept = append(kept, v)
			continue
		}
		if err := q.checkLocked(v); err != nil {
			kept = append(kept, v) // retention or legal hold: S3 keeps it too
			continue
		}
		if err := r.s.fs.Remove(r.ctx, &core.Root, v.dir, v.name); err != nil {
			if errno(err) != syscall.ENOENT {
				r.fail(key, "removing a noncurrent version", err)
				kept = append(kept, v)
			}
			continue // or another worker removed it first
		}
		removed = true
		if v.meta.DeleteMarker {
			r.n.markers++
		} else {
			r.n.versions++
		}
	}
	if len(kept) == 1 && cur == nil && kept[0].meta.DeleteMarker && r.markerDue(key, kept[0]) {
		m := kept[0]
		switch err := r.s.fs.Remove(r.ctx, &core.Root, m.dir, m.name); {
		case err == nil:
			removed = true
			r.n.markers++
		case errno(err) != syscall.ENOENT:
			r.fail(key, "removing an expired delete marker", err)
		}
	}
	if removed {
		if kd, err := r.s.keyVersionsDir(r.ctx, b.name, key, false); err == nil && kd != 0 {
			r.s.dropKeyDirIfEmpty(r.ctx, b.name, key, kd)
		}
	}
}

// noncurrentDue reports whether a rule retires noncurrent version v of
// key, noncurrent since since, with newer noncurrent versions newer than
// it.
func (r *lifecycleRun) noncurrentDue(key string, v *object, since time.Time, newer int) bool {
	for i := range r.rules.rules {
		lr := &r.rules.rules[i]
		if !lr.noncurrent || newer < lr.keepNewer {
			continue
		}
		if v.meta.DeleteMarker {
			if !lr.matchesMarker(key) {
				continue
			}
		} else if !lr.matches(key, objectSize(&v.attr, v.x[xEtag]), func() []s3xml.Tag { return decodeTags(v.x[xTags]) }) {
			continue
		}
		if lr.noncurrentDays > 0 {
			at, ok := dayEnd(since, lr.noncurrentDays, r.day)
			if !ok || at.After(r.now) {
				continue
			}
		}
		return true
	}
	return false
}

// markerDue reports whether a rule removes delete marker m, the only
// version of key left: ExpiredObjectDeleteMarker, or a Days or Date rule
// whose time for the marker has come.
func (r *lifecycleRun) markerDue(key string, m *object) bool {
	made := time.Unix(0, m.meta.Created)
	for i := range r.rules.rules {
		lr := &r.rules.rules[i]
		if !lr.matchesMarker(key) {
			continue
		}
		switch {
		case lr.markers:
			return true
		case lr.days > 0:
			if at, ok := dayEnd(made, lr.days, r.day); ok && !at.After(r.now) {
				return true
			}
		case !lr.date.IsZero() && !lr.date.After(r.now):
			return true
		}
	}
	return false
}

// abortUploads aborts the multipart uploads a rule retires, a page of the
// bucket's uploads at a time.
func (r *lifecycleRun) abortUploads() {
	if !r.rules.abortsUploads {
		return
	}
	ud, err := r.s.uploadsDir(r.ctx, r.b.name)
	if err != nil {
		r.fail("", "opening the bucket's multipart uploads", err)
		return
	}
	after := ""
	for {
		ents, more, err := r.s.fs.ReadDirNames(r.ctx, &core.Root, ud, after, r.page, false)
		if err != nil {
			if r.ctx.Err() == nil {
				r.fail("", "listing the bucket's multipart uploads", err)
			}
			return
		}
		for _, e := range ents {
			after = e.Name
			if r.ctx.Err() != nil {
				return
			}
			u, err := r.s.loadUpload(r.ctx, r.b.name, "", e.Name)
			if err != nil {
				if !errors.Is(err, s3err.NoSuchUpload) {
					r.fail("", "reading multipart upload "+e.Name, err)
				}
				continue // completed or aborted meanwhile
			}
			if !r.uploadDue(u) {
				continue
			}
			r.s.removeUploadDir(r.ctx, u.parent, u.id, u.dir)
			r.s.multipartActive(-1)
			r.n.uploads++
		}
		if !more || !r.refresh() || !r.rules.abortsUploads {
			return
		}
	}
}

// uploadDue reports whether a rule aborts upload u.
func (r *lifecycleRun) uploadDue(u *upload) bool {
	at, _, ok := r.rules.uploadAbort(u.rec.Key, time.Unix(0, u.rec.Created), r.day)
	return ok && !at.After(r.now)
}

// uploadAbort returns when the first rule that aborts an upload to key
// begun at began does so, and that rule's id. Uploads have no tags and no
// size yet: the rule's prefix selects them.
func (lc *lifecycleRules) uploadAbort(key string, began time.Time, day time.Duration) (time.Time, string, bool) {
	var first time.Time
	var id string
	for i := range lc.rules {
		lr := &lc.rules[i]
		if lr.abortDays == 0 || !strings.HasPrefix(key, lr.prefix) {
			continue
		}
		if at, ok := dayEnd(began, lr.abortDays, day); ok && (id == "" || at.Before(first)) {
			first, id = at, lr.id
		}
	}
	return first, id, id != ""
}

// setAbortHeaders tells the client of a new multipart upload when a
// lifecycle rule will abort it (x-amz-abort-date and x-amz-abort-rule-id).
func (q *request) setAbortHeaders(b *bucket, key string, began time.Time) {
	lc := lifecycleOf(b)
	if lc == nil {
		return
	}
	at, id, ok := lc.uploadAbort(key, began, q.s.cfg.LifecycleDay)
	if !ok {
		return
	}
	h := q.w.Header()
	h.Set("X-Amz-Abort-Date", at.UTC().Format(http.TimeFormat))
	h.Set("X-Amz-Abort-Rule-Id", id)
}
