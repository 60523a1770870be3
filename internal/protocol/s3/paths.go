package s3

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/claudefs/cfs-gateway/internal/core"
	"github.com/claudefs/cfs-gateway/internal/protocol/s3/s3err"
	"github.com/claudefs/cfs-gateway/internal/protocol/s3/s3xml"
)

// hiddenName is the directory of the S3 root that holds multipart uploads
// and noncurrent versions. A bucket name cannot start with ".", so it never
// clashes with a bucket.
const hiddenName = ".cfs-s3"

// Protocol attribute names. Objects: xEtag, xMeta, xTags, xACL, xRetention,
// xLegalHold. Directories: xImplicit (made for a key, removed with its last
// object), and xEtag/xMeta on directory markers. Buckets: the bucket
// configuration names.
const (
	xPrefix      = "cfs.s3."
	xEtag        = "cfs.s3.etag"
	xMeta        = "cfs.s3.meta"
	xTags        = "cfs.s3.tags"
	xACL         = "cfs.s3.acl"
	xRetention   = "cfs.s3.retention"
	xLegalHold   = "cfs.s3.legalhold"
	xImplicit    = "cfs.s3.implicit"
	xVersioning  = "cfs.s3.versioning"
	xPolicy      = "cfs.s3.policy"
	xCORS        = "cfs.s3.cors"
	xLockConfig  = "cfs.s3.objectlock"
	xLocation    = "cfs.s3.location"
	xPublicBlock = "cfs.s3.publicaccessblock"
	xOwnership   = "cfs.s3.ownership"
	xVersionKey  = "cfs.s3.vkey"
	xUpload      = "cfs.s3.upload"
	xBody        = "cfs.s3.body"
)

// Modes of what S3 creates: readable by all, writable by the owner, as a
// umask of 022 gives; S3 authorization (ACLs, policies) decides on top.
const (
	dirMode  = 0o755
	fileMode = 0o644
)

// keyPath is a key split into a path.
type keyPath struct {
	dirs   []string // directory components
	name   string   // the last component; for a marker, the directory's name
	marker bool     // the key ends with "/": a directory marker
}

// splitKey checks that key can be a path and splits it.
func splitKey(key string) (keyPath, error) {
	if key == "" {
		return keyPath{}, s3err.InvalidArgument.With("An object key must not be empty.")
	}
	if len(key) > s3xml.MaxKeyLen {
		return keyPath{}, s3err.KeyTooLong
	}
	if !utf8.ValidString(key) {
		return keyPath{}, s3err.InvalidArgument.With("An object key must be valid UTF-8.")
	}
	var kp keyPath
	rest := key
	if strings.HasSuffix(rest, "/") {
		kp.marker = true
		rest = rest[:len(rest)-1]
	}
	parts := strings.Split(rest, "/")
	for _, p := range parts {
		switch {
		case p == "" || p == "." || p == ".." || strings.IndexByte(p, 0) >= 0:
			return keyPath{}, errInvalidKey
		case len(p) > core.MaxNameLen:
			return keyPath{}, s3err.KeyTooLong.With("Each \"/\"-separated part of a key is a file name of at most %d bytes.", core.MaxNameLen)
		}
	}
	kp.dirs, kp.name = parts[:len(parts)-1], parts[len(parts)-1]
	return kp, nil
}

// root returns the inode of the S3 root directory.
func (s *Server) root(ctx context.Context) (core.Ino, error) {
	s.rootMu.Lock()
	ino := s.rootIno
	s.rootMu.Unlock()
	if ino != 0 {
		return ino, nil
	}
	ino = core.RootIno
	for _, c := range strings.Split(strings.Trim(s.cfg.Root, "/"), "/") {
		if c == "" {
			continue
		}
		a, err := s.fs.Lookup(ctx, &core.Root, ino, c)
		if err != nil {
			if errno(err) == syscall.ENOENT {
				return 0, s3err.InternalError.With("The S3 root %s does not exist: create it or change s3.root.", s.cfg.Root)
			}
			return 0, err
		}
		if a.Type != core.TypeDir {
			return 0, s3err.InternalError.With("The S3 root %s is not a directory: change s3.root.", s.cfg.Root)
		}
		ino = a.Ino
	}
	s.rootMu.Lock()
	s.rootIno = ino
	s.rootMu.Unlock()
	return ino, nil
}

// forgetRoot drops the cached root after it turned out stale.
func (s *Server) forgetRoot() {
	s.rootMu.Lock()
	s.rootIno = 0
	s.rootMu.Unlock()
}

// hiddenDir returns the directory at path (components below the hidden
// area), creating it as the gateway with mode. The area's directories are
// the gateway's: uploads is sticky and writable by all, so that each user
// owns its own uploads' parts and quota.
func (s *Server) hiddenDir(ctx context.Context, path ...string) (core.Ino, error) {
	key := strings.Join(path, "/")
	s.hiddenMu.Lock()
	ino, ok := s.hidden[key]
	s.hiddenMu.Unlock()
	if ok {
		if a, err := s.fs.GetAttr(ctx, ino); err == nil && a.Type == core.TypeDir {
			return ino, nil
		}
		s.forgetHidden()
	}
	root, err := s.root(ctx)
	if err != nil {
		return 0, err
	}
	dir := root
	for i, c := range append([]string{hiddenName}, path...) {
		mode := uint32(0o755)
		if i >= 1 && path[0] == "uploads" {
			mode = 0o1777
		}
		a, err := s.mkdirAll(ctx, &core.Root, dir, c, mode)
		if err != nil {
			return 0, err
		}
		dir = a.Ino
	}
	s.hiddenMu.Lock()
	s.hidden[key] = dir
	s.hiddenMu.Unlock()
	return dir, nil
}

func (s *Server) forgetHidden() {
	s.hiddenMu.Lock()
	clear(s.hidden)
	s.hiddenMu.Unlock()
}

// mkdirAll returns directory name in dir, making it if needed.
func (s *Server) mkdirAll(ctx context.Context, id *core.Identity, dir core.Ino, name string, mode uint32) (core.Attr, error) {
	for try := 0; ; try++ {
		a, err := s.fs.Lookup(ctx, id, dir, name)
		if err == nil {
			if a.Type != core.TypeDir {
				return core.Attr{}, &core.Error{Op: "mkdir", Ino: dir, Err: syscall.ENOTDIR}
			}
			return a, nil
		}
		if errno(err) != syscall.ENOENT || try > 3 {
			return core.Attr{}, err
		}
		a, err = s.fs.Mkdir(ctx, id, dir, name, mode)
		if err == nil {
			return a, nil
		}
		if errno(err) != syscall.EEXIST {
			return core.Attr{}, err
		}
	}
}

// bucket is a bucket directory with its configuration attributes.
type bucket struct {
	name string
	attr core.Attr
	x    map[string][]byte
}

func (b *bucket) ino() core.Ino { return b.attr.Ino }

func (b *bucket) versioning() string { return string(b.x[xVersioning]) }

// versioned reports whether the bucket ever had versioning enabled: then
// every write keeps or replaces versions by the versioning rules.
func (b *bucket) versioned() bool { return b.versioning() != "" }

// loadBucket returns bucket name. Its configuration is read as the gateway:
// authorization needs it before knowing whether the caller may read it.
func (s *Server) loadBucket(ctx context.Context, name string) (*bucket, error) {
	if name == "" || strings.HasPrefix(name, ".") || strings.ContainsAny(name, "/\x00") || len(name) > core.MaxNameLen {
		return nil, s3err.NoSuchBucket
	}
	root, err := s.root(ctx)
	if err != nil {
		return nil, err
	}
	a, err := s.fs.Lookup(ctx, &core.Root, root, name)
	if err != nil {
		if errno(err) == syscall.ESTALE {
			s.forgetRoot()
		}
		if e := errno(err); e == syscall.ENOENT || e == syscall.ESTALE {
			return nil, s3err.NoSuchBucket
		}
		return nil, err
	}
	if a.Type != core.TypeDir {
		return nil, s3err.NoSuchBucket
	}
	if x, ok := s.bucketConfigs.get(name, a.Ino, s.now()); ok {
		return &bucket{name: name, attr: a, x: x}, nil
	}
	x, err := s.fs.GetXattrs(ctx, &core.Root, a.Ino, xPrefix)
	if err != nil {
		if e := errno(err); e == syscall.ENOENT || e == syscall.ESTALE {
			return nil, s3err.NoSuchBucket
		}
		return nil, err
	}
	s.bucketConfigs.put(name, a.Ino, x, s.now())
	return &bucket{name: name, attr: a, x: x}, nil
}

// bucketConfigTTL is how long a bucket's configuration (versioning,
// policy, CORS, ...) read by one request serves the next ones. Changes made
// through this gateway take effect at once; changes made through another
// gateway of a scale-out deployment within this time, as bucket
// configuration changes propagate in AWS S3.
const bucketConfigTTL = time.Second

// bucketConfigCache keeps the configuration attributes of recently used
// buckets, so that a request does not read them all again. The maps are
// shared and never changed.
type bucketConfigCache struct {
	mu sync.Mutex
	m  map[string]bucketConfig
}

type bucketConfig struct {
	ino core.Ino
	x   map[string][]byte
	at  time.Time
}

func (c *bucketConfigCache) get(name string, ino core.Ino, now time.Time) (map[string][]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[name]
	if !ok || e.ino != ino || now.Sub(e.at) >= bucketConfigTTL || now.Before(e.at) {
		return nil, false
	}
	return e.x, true
}

func (c *bucketConfigCache) put(name string, ino core.Ino, x map[string][]byte, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= 10000 {
		c.m = make(map[string]bucketConfig)
	}
	c.m[name] = bucketConfig{ino: ino, x: x, at: now}
}

// forget drops name's entry after this gateway changed its configuration.
func (c *bucketConfigCache) forget(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, name)
}

// object is a resolved key.
type object struct {
	dir  core.Ino // the directory holding it
	name string
	attr core.Attr
	x    map[string][]byte // its cfs.s3.* attributes, when loaded
	meta objectMeta
	etag string // quoted
}

// lookupPath walks the directories of kp from the bucket as id.
func (s *Server) lookupPath(ctx context.Context, id *core.Identity, b *bucket, kp keyPath) (core.Ino, error) {
	dir := b.ino()
	for _, c := range kp.dirs {
		a, err := s.fs.Lookup(ctx, id, dir, c)
		if err != nil {
			return 0, err
		}
		if a.Type != core.TypeDir {
			return 0, &core.Error{Op: "lookup", Ino: dir, Err: syscall.ENOENT}
		}
		dir = a.Ino
	}
	return dir, nil
}

// lookupObject resolves the current object of key: a regular file, or for
// a key ending in "/" a directory carrying a marker. Anything else is
// NoSuchKey.
func (s *Server) lookupObject(ctx context.Context, id *core.Identity, b *bucket, key string) (*object, error) {
	kp, err := splitKey(key)
	if err != nil {
		if errors.Is(err, errInvalidKey) {
			return nil, s3err.NoSuchKey
		}
		return nil, err
	}
	dir, err := s.lookupPath(ctx, id, b, kp)
	if err != nil {
		return nil, notFound(err)
	}
	a, err := s.fs.Lookup(ctx, id, dir, kp.name)
	if err != nil {
		return nil, notFound(err)
	}
	o := &object{dir: dir, name: kp.name, attr: a}
	switch {
	case kp.marker && a.Type == core.TypeDir:
	case !kp.marker && a.Type == core.TypeRegular:
	default:
		return nil, s3err.NoSuchKey
	}
	if err := s.loadObjectMeta(ctx, o); err != nil {
		return nil, notFound(err)
	}
	if kp.marker && o.x[xEtag] == nil {
		return nil, s3err.NoSuchKey // a plain directory is not an object
	}
	return o, nil
}

// notFound turns ENOENT and ENOTDIR into NoSuchKey and leaves other errors.
func notFound(err error) error {
	switch errno(err) {
	case syscall.ENOENT, syscall.ENOTDIR, syscall.ESTALE:
		return s3err.NoSuchKey
	}
	return err
}

// loadObjectMeta reads the S3 attributes of o, as the gateway: whether the
// caller may read the data is the core's decision at Read.
func (s *Server) loadObjectMeta(ctx context.Context, o *object) error {
	x, err := s.fs.GetXattrs(ctx, &core.Root, o.attr.Ino, xPrefix)
	if err != nil {
		return err
	}
	o.x = x
	o.meta = decodeMeta(x[xMeta])
	o.etag = etagOf(&o.attr, x[xEtag])
	if !metaValid(&o.attr, x[xEtag]) {
		// Changed by another protocol since S3 wrote it: its digests no
		// longer describe the bytes.
		o.meta.Checksums = nil
		o.meta.ChecksumType = ""
		o.meta.Parts = nil
		o.meta.PartChecksums = nil
	}
	return nil
}

// ensureDirs walks the directories of kp from the bucket, creating missing
// ones as id and marking them implicit.
func (s *Server) ensureDirs(ctx context.Context, id *core.Identity, b *bucket, kp keyPath) (core.Ino, error) {
	dir := b.ino()
	for _, c := range kp.dirs {
		a, err := s.fs.Lookup(ctx, id, dir, c)
		if err == nil {
			if a.Type != core.TypeDir {
				return 0, errKeyConflict
			}
			dir = a.Ino
			continue
		}
		if errno(err) != syscall.ENOENT {
			return 0, err
		}
		a, err = s.fs.Mkdir(ctx, id, dir, c, dirMode)
		if err != nil {
			if errno(err) == syscall.EEXIST {
				a, err = s.fs.Lookup(ctx, id, dir, c)
				if err == nil && a.Type != core.TypeDir {
					return 0, errKeyConflict
				}
			}
			if err != nil {
				return 0, err
			}
		} else if err := s.fs.UpdateXattrs(ctx, &core.Root, a.Ino, map[string][]byte{xImplicit: {1}}, nil); err != nil {
			return 0, err
		}
		dir = a.Ino
	}
	return dir, nil
}

// pruneDirs removes the implicit directories of kp that are empty, from the
// deepest up, as the gateway. A directory without the implicit mark (made
// by a user of another protocol, or a directory marker) stays, and so does
// everything above it.
func (s *Server) pruneDirs(ctx context.Context, b *bucket, kp keyPath) {
	if len(kp.dirs) == 0 {
		return
	}
	inos := make([]core.Ino, 0, len(kp.dirs)+1)
	inos = append(inos, b.ino())
	dir := b.ino()
	for _, c := range kp.dirs {
		a, err := s.fs.Lookup(ctx, &core.Root, dir, c)
		if err != nil || a.Type != core.TypeDir {
			return
		}
		dir = a.Ino
		inos = append(inos, dir)
	}
	for i := len(kp.dirs) - 1; i >= 0; i-- {
		if _, err := s.fs.GetXattr(ctx, &core.Root, inos[i+1], xImplicit); err != nil {
			return
		}
		if err := s.fs.Rmdir(ctx, &core.Root, inos[i], kp.dirs[i]); err != nil {
			if e := errno(err); e != syscall.ENOTEMPTY && e != syscall.ENOENT {
				s.log.Warn("removing an empty implicit directory failed; it stays until its next object goes",
					"bucket", b.name, "dir", strings.Join(kp.dirs[:i+1], "/"), "err", err)
			}
			return
		}
	}
}

// checkBucketName reports whether name is a valid name for a new bucket.
func checkBucketName(name string) error {
	bad := func(why string) error {
		return s3err.InvalidBucketName.With("The specified bucket is not valid: %s.", why)
	}
	if len(name) < 3 || len(name) > 63 {
		return bad("a bucket name has 3 to 63 characters")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return bad(fmt.Sprintf("character %q is not a lower-case letter, digit, '.' or '-'", c))
		}
	}
	if !isAlnum(name[0]) || !isAlnum(name[len(name)-1]) {
		return bad("a bucket name starts and ends with a letter or digit")
	}
	if strings.Contains(name, "..") || strings.Contains(name, ".-") || strings.Contains(name, "-.") {
		return bad("a bucket name has no adjacent periods or period next to a hyphen")
	}
	if isIPv4(name) {
		return bad("a bucket name is not an IP address")
	}
	return nil
}

func isAlnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

func isIPv4(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 4 {
		return false
	}
	for _, p := range parts {
		if p == "" || len(p) > 3 {
			return false
		}
		for i := 0; i < len(p); i++ {
			if p[i] < '0' || p[i] > '9' {
				return false
			}
		}
	}
	return true
}
