// Package localblob is the single-node blob.Store: one file per object
// under a directory. It owns the layout of that directory and the
// durability of each Put; it knows nothing about what the objects contain
// and never modifies a file in place.
//
// # Layout
//
// Key "a/b/c" is the file a/b/c under the root; the '/' separated parts
// become directories, created on demand and never removed (removing them
// would race with a Put into the same directory). A Put writes a temporary
// file named with TempPrefix in the object's directory, so such names are
// reserved and never listed.
//
// # Durability
//
// Put returns only when the object survives power loss:
//
//  1. the data is written to the temporary file, large objects with
//     O_DIRECT (see direct.go), and fdatasync'ed, so that the rename below
//     can never expose a file whose blocks are missing;
//  2. the temporary file is renamed over the key, which is atomic: a reader
//     sees no object or the whole of it, before a crash or after;
//  3. the directory holding the key is fsync'ed, because the rename is a
//     change to that directory and is lost with it otherwise. Puts into one
//     directory share these syncs (see dirsync.go); every directory that a
//     Put created is fsync'ed into its parent first.
//
// Delete is not synced: an object that reappears after a crash is only a
// block nobody references, which garbage collection lists and deletes again.
// A crash can also leave temporary files behind; List skips them and
// CleanTemp removes them.
package localblob

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/claudefs/cfs-gateway/internal/engine/blob"
)

// TempPrefix starts the name of every temporary file. No key may have a
// path element that starts with it.
const TempPrefix = ".tmp-put-"

const (
	dirPerm = 0o750
	// maxKeyLen bounds keys well below PATH_MAX once joined to the root.
	maxKeyLen = 1024
	// maxNameLen is NAME_MAX on Linux filesystems; the temporary name adds
	// the prefix and a random suffix to an element.
	maxNameLen = 255 - len(TempPrefix) - 12
)

// ErrClosed is returned after Close.
var ErrClosed = errors.New("localblob: store closed")

// ErrInvalidKey is returned for a key that cannot name a file under the root.
var ErrInvalidKey = errors.New("localblob: invalid key")

// Options tunes a Store. The zero value is usable.
type Options struct {
	// Logger receives the engine's messages. Nil means slog.Default().
	Logger *slog.Logger
	// BufferedWrites writes every object through the page cache, never
	// with O_DIRECT (see direct.go).
	BufferedWrites bool
}

// Store is a blob.Store and blob.Lister over a local directory. It is safe
// for concurrent use.
type Store struct {
	root     string
	log      *slog.Logger
	closed   atomic.Bool
	dirSyncs dirSyncs
	fds      *fdCache
	// noDirect is set once the filesystem refused O_DIRECT (see direct.go).
	noDirect atomic.Bool
}

var (
	_ blob.Store  = (*Store)(nil)
	_ blob.Lister = (*Store)(nil)
)

// Open uses dir as the store's root, creating it if needed, and checks that
// it can create files there.
func Open(dir string, opts Options) (*Store, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	root := filepath.Clean(dir)
	s := &Store{root: root, log: opts.Logger, fds: newFDCache()}
	s.noDirect.Store(opts.BufferedWrites)
	if err := s.makeDirs(root); err != nil {
		return nil, fmt.Errorf("localblob: creating root directory %s: %w", root, err)
	}
	fi, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("localblob: root %s: %w", root, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("localblob: root %s is not a directory", root)
	}
	// Fail at startup, not at the first write, if the directory is read-only.
	f, err := os.CreateTemp(root, TempPrefix+"*")
	if err != nil {
		return nil, fmt.Errorf("localblob: root %s is not writable, fix its permissions or mount: %w", root, err)
	}
	name := f.Name()
	f.Close()
	if err := os.Remove(name); err != nil {
		return nil, fmt.Errorf("localblob: removing probe file in %s: %w", root, err)
	}
	return s, nil
}

// Close marks the store closed; it holds no other resources.
func (s *Store) Close() error {
	s.closed.Store(true)
	s.fds.closeAll()
	return nil
}

func (s *Store) check(ctx context.Context) error {
	if s.closed.Load() {
		return ErrClosed
	}
	return ctx.Err()
}

// checkKey reports why key cannot name an object, or nil.
func checkKey(key string) error {
	switch {
	case key == "":
		return fmt.Errorf("%w: empty", ErrInvalidKey)
	case len(key) > maxKeyLen:
		return fmt.Errorf("%w: %d bytes, the limit is %d", ErrInvalidKey, len(key), maxKeyLen)
	case strings.IndexByte(key, 0) >= 0:
		return fmt.Errorf("%w: %q contains a NUL byte", ErrInvalidKey, key)
	case key[0] == '/':
		return fmt.Errorf("%w: %q starts with '/'", ErrInvalidKey, key)
	}
	for elem := range strings.SplitSeq(key, "/") {
		if err := checkElem(key, elem); err != nil {
			return err
		}
	}
	return nil
}

func checkElem(key, elem string) error {
	switch {
	case elem == "":
		return fmt.Errorf("%w: %q has an empty path element", ErrInvalidKey, key)
	case elem == "." || elem == "..":
		return fmt.Errorf("%w: %q has a %q path element", ErrInvalidKey, key, elem)
	case strings.HasPrefix(elem, TempPrefix):
		return fmt.Errorf("%w: %q uses the reserved prefix %q", ErrInvalidKey, key, TempPrefix)
	case len(elem) > maxNameLen:
		return fmt.Errorf("%w: %q has a path element longer than %d bytes", ErrInvalidKey, key, maxNameLen)
	}
	return nil
}

// path returns the file of a valid key.
func (s *Store) path(key string) string {
	return filepath.Join(s.root, filepath.FromSlash(key))
}

// Put stores data under key durably (see the package comment).
func (s *Store) Put(ctx context.Context, key string, data []byte) error {
	return s.PutParts(ctx, key, data)
}

// PutParts stores the concatenation of parts under key durably, without
// joining them in memory first (blob.PartsPutter).
func (s *Store) PutParts(ctx context.Context, key string, parts ...[]byte) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if err := checkKey(key); err != nil {
		return err
	}
	path := s.path(key)
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, TempPrefix+"*")
	if errors.Is(err, fs.ErrNotExist) {
		if err := s.makeDirs(dir); err != nil {
			return fmt.Errorf("localblob: put %q: creating directory: %w", key, err)
		}
		f, err = os.CreateTemp(dir, TempPrefix+"*")
	}
	if err != nil {
		if errors.Is(err, unix.ENOTDIR) {
			return fmt.Errorf("localblob: put %q: a parent of the key is an object: %w", key, err)
		}
		return fmt.Errorf("localblob: put %q: %w", key, err)
	}
	tmp := f.Name()
	err = s.write(f, parts)
	if err == nil {
		err = fdatasync(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("localblob: put %q: writing %s: %w", key, tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("localblob: put %q: %w", key, err)
	}
	// After the rename: a read that opened the old file meanwhile then
	// does not keep it.
	s.fds.forget(path)
	if err := s.dirSyncs.sync(dir); err != nil {
		return fmt.Errorf("localblob: put %q: %w", key, err)
	}
	return nil
}

// write writes parts to the new file f.
func (s *Store) write(f *os.File, parts [][]byte) error {
	total := 0
	for _, p := range parts {
		total += len(p)
	}
	err := errNoDirect
	if total >= directMin && !s.noDirect.Load() {
		if err = writeDirect(f, parts, total); errors.Is(err, errNoDirect) {
			s.noDirect.Store(true)
			s.log.Info("the block directory's filesystem refuses O_DIRECT; large blocks are written through the page cache", "root", s.root)
		}
	}
	if errors.Is(err, errNoDirect) {
		err = nil
		for _, p := range parts {
			if _, err = f.Write(p); err != nil {
				break
			}
		}
	}
	return err
}

func fdatasync(f *os.File) error {
	for {
		err := unix.Fdatasync(int(f.Fd()))
		if err != unix.EINTR {
			if err != nil {
				return &fs.PathError{Op: "fdatasync", Path: f.Name(), Err: err}
			}
			return nil
		}
	}
}

// makeDirs creates dir and its missing parents, and syncs each parent after
// the creation of a child so that the new path survives a crash. Parents
// are walked no higher than the first one that exists.
func (s *Store) makeDirs(dir string) error {
	var missing []string
	for d := dir; ; d = filepath.Dir(d) {
		_, err := os.Lstat(d)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	for i := len(missing) - 1; i >= 0; i-- {
		err := os.Mkdir(missing[i], dirPerm)
		if err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		// Synced even if a concurrent Put created it: that Put may not have
		// synced the parent yet, and this one must not return before.
		if err := syncDir(filepath.Dir(missing[i])); err != nil {
			return err
		}
	}
	return nil
}

// notFound maps the errors that mean "no object under this key": the file
// is missing, a parent is a file, or the key names a directory.
func notFound(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.EISDIR)
}

// Get returns the whole object.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	if err := checkKey(key); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(s.path(key))
	if err != nil {
		if notFound(err) {
			return nil, fmt.Errorf("localblob: get %q: %w", key, blob.ErrNotFound)
		}
		return nil, fmt.Errorf("localblob: get %q: %w", key, err)
	}
	return data, nil
}

// GetRange reads len(p) bytes at off.
func (s *Store) GetRange(ctx context.Context, key string, off int64, p []byte) (int, error) {
	if err := s.check(ctx); err != nil {
		return 0, err
	}
	if err := checkKey(key); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, fmt.Errorf("localblob: get range of %q: negative offset %d", key, off)
	}
	path := s.path(key)
	fd, done, err := s.fds.open(path)
	var n int
	if err == nil {
		n, err = preadAll(fd, path, p, off)
		done()
	}
	if err != nil {
		if notFound(err) {
			return 0, fmt.Errorf("localblob: get range of %q: %w", key, blob.ErrNotFound)
		}
		return n, fmt.Errorf("localblob: get range of %q at %d: %w", key, off, err)
	}
	return n, nil
}

// Delete removes the object. A missing key, or one that names a directory,
// is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if err := checkKey(key); err != nil {
		return err
	}
	// unlink, unlike os.Remove, never removes a directory.
	path := s.path(key)
	err := unix.Unlink(path)
	s.fds.forget(path)
	if err != nil && !notFound(err) {
		return fmt.Errorf("localblob: delete %q: %w", key, err)
	}
	return nil
}

// List calls fn for every object whose key starts with prefix. Only the
// directories that can hold such keys are read.
func (s *Store) List(ctx context.Context, prefix string, fn func(blob.Object) bool) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	// The directory part of the prefix must be a valid key path; the rest
	// may be any start of a name.
	dirPart := ""
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		dirPart = prefix[:i]
		if err := checkKey(dirPart); err != nil {
			return fmt.Errorf("localblob: list %q: %w", prefix, err)
		}
	}
	start := s.root
	if dirPart != "" {
		start = s.path(dirPart)
	}
	stop := errors.New("stop")
	err := filepath.WalkDir(start, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if notFound(err) {
				// The start does not exist, or an entry vanished under us.
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), TempPrefix) {
			return nil
		}
		rel, err := filepath.Rel(s.root, path)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if d.IsDir() {
			if path == start {
				return nil
			}
			// Descend only where keys can still match the prefix.
			if dk := key + "/"; !strings.HasPrefix(dk, prefix) && !strings.HasPrefix(prefix, dk) {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || !strings.HasPrefix(key, prefix) {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			if notFound(err) {
				return nil
			}
			return err
		}
		if !fn(blob.Object{Key: key, Size: fi.Size(), ModTime: fi.ModTime()}) {
			return stop
		}
		return nil
	})
	if err != nil && err != stop {
		return fmt.Errorf("localblob: list %q: %w", prefix, err)
	}
	return nil
}

// CleanTemp removes temporary files left by interrupted Puts that were last
// modified more than olderThan ago, and returns how many it removed.
// olderThan must exceed the longest Put, or it removes a Put's file from
// under it (that Put then fails; no object is lost). Garbage collection
// calls it, with an hour or more.
func (s *Store) CleanTemp(ctx context.Context, olderThan time.Duration) (int, error) {
	if err := s.check(ctx); err != nil {
		return 0, err
	}
	cutoff := time.Now().Add(-olderThan)
	removed := 0
	err := filepath.WalkDir(s.root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if notFound(err) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() || !strings.HasPrefix(d.Name(), TempPrefix) {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			if notFound(err) {
				return nil
			}
			return err
		}
		if fi.ModTime().After(cutoff) {
			return nil
		}
		if err := os.Remove(path); err != nil && !notFound(err) {
			return err
		}
		removed++
		return nil
	})
	if removed > 0 {
		s.log.Info("localblob: removed temporary files of interrupted writes", "root", s.root, "count", removed)
	}
	if err != nil {
		return removed, fmt.Errorf("localblob: cleaning temporary files under %s: %w", s.root, err)
	}
	return removed, nil
}

// preadAll reads len(p) bytes of fd (the file at path) from off, fewer
// only at its end.
func preadAll(fd int, path string, p []byte, off int64) (int, error) {
	n := 0
	for n < len(p) {
		m, err := unix.Pread(fd, p[n:], off+int64(n))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return n, &fs.PathError{Op: "pread", Path: path, Err: err}
		}
		if m == 0 {
			break
		}
		n += m
	}
	return n, nil
}
