package s3

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/claudefs/cfs-gateway/internal/core"
	"github.com/claudefs/cfs-gateway/internal/protocol/s3/s3err"
	"github.com/claudefs/cfs-gateway/internal/protocol/s3/s3xml"
)

// Versioning layout. The current version of a key is always the file at
// the key's path, so that every protocol sees the object S3 serves. The
// other versions of a key live in
//
//	<root>/.cfs-s3/versions/<bucket>/<encoded key>/<version id>
//
// each a hard link to the inode of a former current version (the data is
// shared, never copied) or an empty file marked as a delete marker. The
// encoded key maps "/" to ".\xff" (never found in UTF-8), which keeps byte
// order, so the per-bucket directory lists keys with noncurrent versions in
// key order. Keys whose encoding would not fit a file name use a truncated
// encoding with a hash, and keep their key in an attribute.
//
// The latest version is the current file when there is one; otherwise the
// newest entry of the key's version directory (then a delete marker).

// nullVersion is the version id of the version written while versioning
// was off or suspended.
const nullVersion = "null"

// newVersionID makes a version id that sorts newest first.
func newVersionID(now time.Time) string {
	var r [4]byte
	rand.Read(r[:])
	return fmt.Sprintf("%016x%s", uint64(math.MaxInt64-now.UnixNano()), hex.EncodeToString(r[:]))
}

// versionTime is when a version was made.
func (o *object) versionTime() int64 {
	if o.meta.Created != 0 {
		return o.meta.Created
	}
	return o.attr.Mtime.UnixNano()
}

// encodeVersionKey maps key to a directory name that sorts like the key.
func encodeVersionKey(key string) (string, bool) {
	enc := strings.ReplaceAll(key, "/", ".\xff")
	if len(enc) <= core.MaxNameLen {
		return enc, true
	}
	sum := fnv64(key)
	cut := enc[:core.MaxNameLen-17]
	return cut + "\xfe" + fmt.Sprintf("%016x", sum), false
}

// decodeVersionKey is the inverse of encodeVersionKey for names that hold
// the whole key.
func decodeVersionKey(name string) (string, bool) {
	if strings.IndexByte(name, 0xfe) >= 0 {
		return "", false
	}
	return strings.ReplaceAll(name, ".\xff", "/"), true
}

func fnv64(s string) uint64 {
	var h uint64 = 14695981039346656037
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// versionsDir is the directory of a bucket's noncurrent versions.
func (s *Server) versionsDir(ctx context.Context, bucket string) (core.Ino, error) {
	return s.hiddenDir(ctx, "versions", bucket)
}

// keyVersionsDir returns the version directory of key, creating it when
// create is set; 0 when it does not exist.
func (s *Server) keyVersionsDir(ctx context.Context, bucket, key string, create bool) (core.Ino, error) {
	vd, err := s.versionsDir(ctx, bucket)
	if err != nil {
		return 0, err
	}
	name, whole := encodeVersionKey(key)
	a, err := s.fs.Lookup(ctx, &core.Root, vd, name)
	if err == nil {
		return a.Ino, nil
	}
	if errno(err) != syscall.ENOENT {
		return 0, err
	}
	if !create {
		return 0, nil
	}
	a, err = s.mkdirAll(ctx, &core.Root, vd, name, 0o755)
	if err != nil {
		return 0, err
	}
	if !whole {
		if err := s.fs.UpdateXattrs(ctx, &core.Root, a.Ino, map[string][]byte{xVersionKey: []byte(key)}, nil); err != nil {
			return 0, err
		}
	}
	return a.Ino, nil
}

// hasVersions reports whether a bucket has noncurrent versions.
func (s *Server) hasVersions(ctx context.Context, bucket string) (bool, error) {
	vd, err := s.versionsDir(ctx, bucket)
	if err != nil {
		return false, err
	}
	ents, _, err := s.fs.ReadDirNames(ctx, &core.Root, vd, "", 1, false)
	return len(ents) > 0, err
}

// dropBucketArea removes what the hidden area keeps for a deleted bucket:
// its (empty) versions directory and its unfinished multipart uploads.
func (s *Server) dropBucketArea(ctx context.Context, bucket string) {
	if vd, err := s.hiddenDir(ctx, "versions"); err == nil {
		s.fs.Rmdir(ctx, &core.Root, vd, bucket)
	}
	if ud, err := s.hiddenDir(ctx, "uploads"); err == nil {
		if a, err := s.fs.Lookup(ctx, &core.Root, ud, bucket); err == nil {
			ents, _, _ := s.fs.ReadDirNames(ctx, &core.Root, a.Ino, "", 100000, false)
			for _, e := range ents {
				s.removeUploadDir(ctx, a.Ino, e.Name, e.Ino)
			}
			s.fs.Rmdir(ctx, &core.Root, ud, bucket)
		}
	}
	s.forgetHidden()
}

// noncurrent lists the noncurrent versions of key, newest first.
func (s *Server) noncurrent(ctx context.Context, bucket, key string) ([]*object, error) {
	kd, err := s.keyVersionsDir(ctx, bucket, key, false)
	if err != nil || kd == 0 {
		return nil, err
	}
	var out []*object
	after := ""
	for {
		ents, more, err := s.fs.ReadDirNames(ctx, &core.Root, kd, after, 1000, true)
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			after = e.Name
			if e.Attr == nil || e.Type != core.TypeRegular {
				continue
			}
			o := &object{dir: kd, name: e.Name, attr: *e.Attr}
			if err := s.loadObjectMeta(ctx, o); err != nil {
				continue
			}
			if e.Name == nullVersion {
				o.meta.VersionID = ""
			} else {
				o.meta.VersionID = e.Name
			}
			out = append(out, o)
		}
		if !more {
			break
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].versionTime() > out[j].versionTime() })
	return out, nil
}

// latestNoncurrent is the newest noncurrent version of key, or nil.
func (s *Server) latestNoncurrent(ctx context.Context, b *bucket, key string) (*object, error) {
	vs, err := s.noncurrent(ctx, b.name, key)
	if err != nil || len(vs) == 0 {
		return nil, err
	}
	return vs[0], nil
}

// entryName is the name of a version in its key's version directory.
func entryName(vid string) string {
	if vid == "" || vid == nullVersion {
		return nullVersion
	}
	return vid
}

// archive keeps the current version cur of key as a noncurrent version.
func (s *Server) archive(ctx context.Context, b *bucket, key string, cur *object) error {
	kd, err := s.keyVersionsDir(ctx, b.name, key, true)
	if err != nil {
		return err
	}
	if cur.attr.Type == core.TypeDir {
		return nil // directory markers are not versioned
	}
	if _, err := s.fs.Link(ctx, &core.Root, cur.attr.Ino, kd, entryName(cur.meta.VersionID)); err != nil && errno(err) != syscall.EEXIST {
		return err
	}
	if cur.meta.Created == 0 {
		// A file S3 did not write: remember when it was made, for the
		// order of versions.
		m := cur.meta
		m.Created = cur.attr.Mtime.UnixNano()
		s.fs.UpdateXattrs(ctx, &core.Root, cur.attr.Ino, map[string][]byte{xMeta: encodeMeta(&m)}, nil)
	}
	return nil
}

// removeVersionEntry removes a noncurrent version, if it exists, and the
// key's version directory once empty.
func (s *Server) removeVersionEntry(ctx context.Context, b *bucket, key, vid string) error {
	kd, err := s.keyVersionsDir(ctx, b.name, key, false)
	if err != nil || kd == 0 {
		return err
	}
	if err := s.fs.Remove(ctx, &core.Root, kd, entryName(vid)); err != nil && errno(err) != syscall.ENOENT {
		return err
	}
	s.dropKeyDirIfEmpty(ctx, b.name, key, kd)
	return nil
}

func (s *Server) dropKeyDirIfEmpty(ctx context.Context, bucket, key string, kd core.Ino) {
	ents, _, err := s.fs.ReadDirNames(ctx, &core.Root, kd, "", 1, false)
	if err != nil || len(ents) > 0 {
		return
	}
	vd, err := s.versionsDir(ctx, bucket)
	if err != nil {
		return
	}
	name, _ := encodeVersionKey(key)
	s.fs.Rmdir(ctx, &core.Root, vd, name)
}

// addDeleteMarker makes a delete marker the latest version of key.
func (q *request) addDeleteMarker(b *bucket, key, vid string) error {
	kd, err := q.s.keyVersionsDir(q.ctx, b.name, key, true)
	if err != nil {
		return err
	}
	tmp, err := q.s.fs.CreateTemp(q.ctx, &core.Root, kd, 0o600)
	if err != nil {
		return err
	}
	m := objectMeta{DeleteMarker: true, VersionID: vid, Owner: q.caller.UID, Created: q.s.now().UnixNano()}
	if err := q.s.fs.UpdateXattrs(q.ctx, &core.Root, tmp.Ino, map[string][]byte{xMeta: encodeMeta(&m)}, nil); err != nil {
		q.s.discard(tmp.Ino)
		return err
	}
	if _, err := q.s.fs.Publish(q.ctx, &core.Root, tmp.Ino, kd, entryName(vid)); err != nil {
		q.s.discard(tmp.Ino)
		return err
	}
	return nil
}

// findVersion returns version vid of key: the current object or a
// noncurrent version (possibly a delete marker).
func (s *Server) findVersion(ctx context.Context, b *bucket, key, vid string) (*object, error) {
	if vid != nullVersion && !validVersionID(vid) {
		return nil, s3err.InvalidArgument.With("Invalid version id specified").WithExtra("ArgumentName", "versionId")
	}
	cur, err := s.lookupObject(ctx, &core.Root, b, key)
	if err != nil && !errors.Is(err, s3err.NoSuchKey) {
		return nil, err
	}
	if cur != nil && entryName(cur.meta.VersionID) == entryName(vid) {
		return cur, nil
	}
	kd, err := s.keyVersionsDir(ctx, b.name, key, false)
	if err != nil {
		return nil, err
	}
	if kd == 0 {
		return nil, s3err.NoSuchVersion
	}
	a, err := s.fs.Lookup(ctx, &core.Root, kd, entryName(vid))
	if err != nil {
		if errno(err) == syscall.ENOENT {
			return nil, s3err.NoSuchVersion
		}
		return nil, err
	}
	o := &object{dir: kd, name: entryName(vid), attr: a}
	if err := s.loadObjectMeta(ctx, o); err != nil {
		return nil, err
	}
	if vid == nullVersion {
		o.meta.VersionID = ""
	} else {
		o.meta.VersionID = vid
	}
	return o, nil
}

func validVersionID(v string) bool {
	if len(v) != 24 {
		return false
	}
	_, err := hex.DecodeString(v)
	return err == nil
}

// deleteVersioned deletes in a bucket that has (or had) versioning.
func (q *request) deleteVersioned(b *bucket, kp keyPath, key, vid string, hasVid bool, cur *object) (s3xml.Deleted, error) {
	res := s3xml.Deleted{Key: key}
	unlock := q.s.locks.lock(b.name, key)
	defer unlock()
	if cur != nil {
		// Re-read under the lock: another request may have replaced it.
		var err error
		if cur, err = q.s.lookupObject(q.ctx, &core.Root, b, key); err != nil && !errors.Is(err, s3err.NoSuchKey) {
			return res, err
		}
	}
	if !hasVid {
		if kp.marker {
			if cur != nil {
				return res, q.removeCurrent(b, kp, cur)
			}
			return res, nil
		}
		status := b.versioning()
		markerID := nullVersion
		if status == "Enabled" {
			markerID = newVersionID(q.s.now())
		}
		if cur != nil {
			if status == "Enabled" || cur.meta.VersionID != "" {
				if err := q.s.archive(q.ctx, b, key, cur); err != nil {
					return res, err
				}
			}
			if err := q.removeCurrent(b, kp, cur); err != nil {
				return res, err
			}
		}
		if status == "Suspended" {
			if err := q.s.removeVersionEntry(q.ctx, b, key, nullVersion); err != nil {
				return res, err
			}
		}
		if err := q.addDeleteMarker(b, key, markerID); err != nil {
			return res, err
		}
		res.DeleteMarker = true
		res.DeleteMarkerVersionID = markerID
		return res, nil
	}
	res.VersionID = vid
	if vid != nullVersion && !validVersionID(vid) {
		return res, s3err.InvalidArgument.With("Invalid version id specified").WithExtra("ArgumentName", "versionId")
	}
	if cur != nil && entryName(cur.meta.VersionID) == entryName(vid) {
		if err := q.checkLocked(cur); err != nil {
			return res, err
		}
		if err := q.removeCurrent(b, kp, cur); err != nil {
			return res, err
		}
		return res, q.promote(b, kp, key)
	}
	v, err := q.s.findVersion(q.ctx, b, key, vid)
	if err != nil {
		if errors.Is(err, s3err.NoSuchVersion) {
			return res, nil
		}
		return res, err
	}
	if err := q.checkLocked(v); err != nil {
		return res, err
	}
	if v.meta.DeleteMarker {
		res.DeleteMarker = true
	}
	if err := q.s.fs.Remove(q.ctx, &core.Root, v.dir, v.name); err != nil && errno(err) != syscall.ENOENT {
		return res, err
	}
	if cur == nil {
		if err := q.promote(b, kp, key); err != nil {
			return res, err
		}
	}
	q.s.dropKeyDirIfEmpty(q.ctx, b.name, key, v.dir)
	return res, nil
}

// promote makes the newest noncurrent version of key current when it is
// an object (after the current version or the latest delete marker went).
func (q *request) promote(b *bucket, kp keyPath, key string) error {
	if kp.marker {
		return nil
	}
	latest, err := q.s.latestNoncurrent(q.ctx, b, key)
	if err != nil || latest == nil || latest.meta.DeleteMarker {
		return err
	}
	dir, err := q.s.ensureDirs(q.ctx, q.ident, b, kp)
	if err != nil {
		return err
	}
	if _, err := q.s.fs.Link(q.ctx, &core.Root, latest.attr.Ino, dir, kp.name); err != nil {
		if errno(err) == syscall.EEXIST {
			return nil // a new current version arrived meanwhile
		}
		return err
	}
	if err := q.s.fs.Remove(q.ctx, &core.Root, latest.dir, latest.name); err != nil && errno(err) != syscall.ENOENT {
		return err
	}
	q.s.dropKeyDirIfEmpty(q.ctx, b.name, key, latest.dir)
	return nil
}

// versionItem is a key or common prefix of a version listing.
type versionItem struct {
	key    string
	prefix bool
}

// itemSource yields listing items in key order.
type itemSource interface {
	peek() (versionItem, bool, error)
	pop()
}

// treeItems yields the keys and common prefixes of the current objects.
type treeItems struct {
	q    *request
	b    *bucket
	p    listParams
	buf  []versionItem
	done bool
}

func (t *treeItems) peek() (versionItem, bool, error) {
	for len(t.buf) == 0 {
		if t.done {
			return versionItem{}, false, nil
		}
		page, err := t.q.list(t.b, listParams{prefix: t.p.prefix, delim: t.p.delim, after: t.p.after, max: 100})
		if err != nil {
			return versionItem{}, false, err
		}
		for _, k := range page.keys {
			t.buf = append(t.buf, versionItem{key: k.key})
		}
		for _, cp := range page.prefixes {
			t.buf = append(t.buf, versionItem{key: cp, prefix: true})
		}
		sort.Slice(t.buf, func(i, j int) bool { return t.buf[i].key < t.buf[j].key })
		t.done = !page.truncated
		t.p.after = page.last
	}
	return t.buf[0], true, nil
}

func (t *treeItems) pop() { t.buf = t.buf[1:] }

// indexItems yields the keys that have noncurrent versions (rolled up into
// common prefixes like the tree's), from the bucket's versions directory.
type indexItems struct {
	s     *Server
	ctx   context.Context
	dir   core.Ino
	p     listParams
	start string // items must be greater
	after string // last directory name read
	buf   []versionItem
	done  bool
}

func (v *indexItems) peek() (versionItem, bool, error) {
	for {
		for len(v.buf) > 0 {
			it := v.buf[0]
			switch {
			case it.key <= v.start:
				v.buf = v.buf[1:]
				continue
			case !strings.HasPrefix(it.key, v.p.prefix):
				if it.key > v.p.prefix {
					v.buf, v.done = nil, true
					return versionItem{}, false, nil
				}
				v.buf = v.buf[1:]
				continue
			}
			return it, true, nil
		}
		if v.done || v.dir == 0 {
			return versionItem{}, false, nil
		}
		ents, more, err := v.s.fs.ReadDirNames(v.ctx, &core.Root, v.dir, v.after, 1000, false)
		if err != nil {
			return versionItem{}, false, err
		}
		for _, e := range ents {
			v.after = e.Name
			k, whole := decodeVersionKey(e.Name)
			if !whole {
				x, err := v.s.fs.GetXattr(v.ctx, &core.Root, e.Ino, xVersionKey)
				if err != nil {
					continue
				}
				k = string(x)
			}
			if cp := v.p.commonPrefix(k); cp != "" {
				v.buf = append(v.buf, versionItem{key: cp, prefix: true})
			} else {
				v.buf = append(v.buf, versionItem{key: k})
			}
		}
		// Truncated names may sort slightly out of place.
		sort.SliceStable(v.buf, func(i, j int) bool { return v.buf[i].key < v.buf[j].key })
		v.done = !more
	}
}

func (v *indexItems) pop() { v.buf = v.buf[1:] }

// mergedItems merges two item sources, dropping duplicates.
type mergedItems struct {
	a, b itemSource
	last string
	any  bool
}

func (m *mergedItems) next() (versionItem, bool, error) {
	for {
		ia, oka, err := m.a.peek()
		if err != nil {
			return versionItem{}, false, err
		}
		ib, okb, err := m.b.peek()
		if err != nil {
			return versionItem{}, false, err
		}
		var it versionItem
		switch {
		case !oka && !okb:
			return versionItem{}, false, nil
		case oka && (!okb || ia.key <= ib.key):
			it = ia
			m.a.pop()
			if okb && ib.key == ia.key {
				m.b.pop()
			}
		default:
			it = ib
			m.b.pop()
		}
		if m.any && it.key == m.last {
			continue
		}
		m.any, m.last = true, it.key
		return it, true, nil
	}
}

// listObjectVersions lists every version of the keys: the current object
// first, then noncurrent versions and delete markers newest first.
func (q *request) listObjectVersions() error {
	b, err := q.bucketFor(access{action: "s3:ListBucketVersions", perm: permRead})
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
	prefix, delim := q.get("prefix"), q.get("delimiter")
	keyMarker, vidMarker := q.get("key-marker"), q.get("version-id-marker")
	if vidMarker != "" && keyMarker == "" {
		return s3err.InvalidArgument.With("A version-id marker cannot be specified without a key marker.").WithExtra("ArgumentName", "version-id-marker")
	}
	res := s3xml.ListVersionsResult{Xmlns: s3xml.Namespace, Name: b.name, Prefix: enc(prefix), KeyMarker: enc(keyMarker),
		VersionIDMarker: vidMarker, MaxKeys: max, Delimiter: enc(delim), EncodingType: et}
	count := 0
	var lastKey, lastVid string
	var stamp [32]byte
	addVersion := func(o *object, key string, latest bool) {
		v := s3xml.Version{Key: enc(key), VersionID: versionOrNull(o.meta.VersionID), IsLatest: latest}
		if o.meta.DeleteMarker {
			v.XMLName.Local = "DeleteMarker"
			v.LastModified = string(s3xml.AppendTime(stamp[:0], time.Unix(0, o.meta.Created)))
			ow := q.ownerOf(o.meta.Owner)
			v.Owner = &ow
		} else {
			v.XMLName.Local = "Version"
			v.LastModified = string(s3xml.AppendTime(stamp[:0], o.attr.Mtime))
			v.ETag = o.etag
			size := objectSize(&o.attr, o.x[xEtag])
			v.Size = &size
			ow := q.ownerOf(o.attr.UID)
			v.Owner = &ow
			v.StorageClass = "STANDARD"
			if o.meta.StorageClass != "" {
				v.StorageClass = o.meta.StorageClass
			}
		}
		res.Versions = append(res.Versions, v)
		count++
		lastKey, lastVid = key, v.VersionID
	}
	// emitKey lists the versions of one key after version skipThrough; it
	// returns false when the page filled up first.
	emitKey := func(key, skipThrough string) (bool, error) {
		var all []*object
		cur, err := q.s.lookupObject(q.ctx, &core.Root, b, key)
		if err != nil && !errors.Is(err, s3err.NoSuchKey) {
			return false, err
		}
		if cur != nil {
			all = append(all, cur)
		}
		nc, err := q.s.noncurrent(q.ctx, b.name, key)
		if err != nil {
			return false, err
		}
		for _, o := range nc {
			if cur != nil && entryName(o.meta.VersionID) == entryName(cur.meta.VersionID) {
				continue // left behind by an interrupted archive
			}
			all = append(all, o)
		}
		skipping := skipThrough != ""
		for i, o := range all {
			if skipping {
				if versionOrNull(o.meta.VersionID) == skipThrough {
					skipping = false
				}
				continue
			}
			if count >= max {
				res.IsTruncated = true
				return false, nil
			}
			addVersion(o, key, i == 0)
		}
		return true, nil
	}
	if max == 0 {
		return q.writeListPage(res.AppendXML)
	}
	if keyMarker != "" && vidMarker != "" && strings.HasPrefix(keyMarker, prefix) {
		if ok, err := emitKey(keyMarker, vidMarker); err != nil {
			return err
		} else if !ok {
			return q.finishVersions(&res, enc, lastKey, lastVid)
		}
	}
	p := listParams{prefix: prefix, delim: delim, after: keyMarker}
	vd, err := q.s.versionsDir(q.ctx, b.name)
	if err != nil {
		return err
	}
	idx := &indexItems{s: q.s, ctx: q.ctx, dir: vd, p: p, start: keyMarker}
	start, _ := p.start()
	if start > prefix {
		idx.start = start
		if enc, _ := encodeVersionKey(start); true {
			idx.after = prefixBefore(enc)
		}
	} else if prefix != "" {
		pe, _ := encodeVersionKey(prefix)
		idx.after = prefixBefore(pe)
	}
	merged := &mergedItems{a: &treeItems{q: q, b: b, p: p}, b: idx}
	for !res.IsTruncated {
		it, ok, err := merged.next()
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		if it.prefix {
			if count >= max {
				res.IsTruncated = true
				break
			}
			res.CommonPrefixes = append(res.CommonPrefixes, s3xml.CommonPrefix{Prefix: enc(it.key)})
			count++
			lastKey, lastVid = it.key, ""
			continue
		}
		if _, err := emitKey(it.key, ""); err != nil {
			return err
		}
	}
	return q.finishVersions(&res, enc, lastKey, lastVid)
}

func (q *request) finishVersions(res *s3xml.ListVersionsResult, enc func(string) string, lastKey, lastVid string) error {
	if res.IsTruncated {
		res.NextKeyMarker = enc(lastKey)
		if lastVid != "" {
			res.NextVersionIDMarker = lastVid
		}
	}
	return q.writeListPage(res.AppendXML)
}

// prefixBefore returns a directory name that sorts just before every name
// starting with enc, for ReadDirNames (which starts after a name).
func prefixBefore(enc string) string {
	if enc == "" {
		return ""
	}
	last := enc[len(enc)-1]
	if last == 0 {
		return enc[:len(enc)-1]
	}
	return enc[:len(enc)-1] + string([]byte{last - 1}) + "\xff"
}
