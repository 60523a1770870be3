package s3

import (
	"context"
	"errors"
	"strings"

	"github.com/claudefs/cfs-gateway/internal/core"
)

// The keys of a bucket are paths, and S3 lists them in byte order of whole
// keys. A directory "x" holds keys that start with "x/", so among its
// siblings it sorts as "x/": after "x-y" and "x.y" ('-' and '.' sort before
// '/') and before "x0". ReadDirNames gives entries in byte order of names,
// where "x" comes before "x-y"; the walker reorders with a stack of pending
// directories, each descended once every sibling that sorts before it was
// emitted. Later-pushed pending directories always sort first (a name that
// comes after "x" but before "x/" extends "x" with a byte below '/'), so a
// stack suffices.
//
// A walk starts at any key (a marker or continuation token, or the prefix)
// by descending the key's path, so a page costs the entries it returns plus
// a few lookups, however deep into the bucket it starts.

// walkItem is one key the walker found.
type walkItem struct {
	key  string
	attr *core.Attr // of the file, or of the directory of a marker
	dir  bool       // a directory (candidate marker or rolled-up prefix)
	// xattr is the walker's extended attribute of the entry (nil when
	// absent), when xattrKnown: read with the directory's entries.
	xattr      []byte
	xattrKnown bool
}

// walkAction is what the consumer of a walk wants next.
type walkAction int

const (
	walkContinue walkAction = iota
	walkStop
	walkSkipSubtree // for a directory: do not descend (it was rolled up)
)

// errWalkRestart aborts a walk so that it can restart after a key.
var errWalkRestart = errors.New("restart walk")

// walker walks the keys of a bucket in key order.
type walker struct {
	s      *Server
	ctx    context.Context
	id     *core.Identity // whose permissions apply to reading directories
	prefix string
	// batch is the most entries read from a directory at once.
	batch int
	// want, if set, says how many more keys visit accepts before it
	// stops the walk: reads then stop at the entry that shows there are
	// more, instead of loading a whole batch of entries for nothing.
	want func() int
	// xattr, if set, is read with every batch of entries (walkItem.xattr).
	xattr string
	// visit receives every file key and every directory (before it is
	// descended, with its key ending in "/"). It returns what to do next.
	visit func(it walkItem) (walkAction, error)
	// skipTo, set by visit with errWalkRestart, restarts the walk after it.
	skipTo string
}

// run walks keys greater than start (or equal to it when inclusive) that
// start with the walker's prefix.
func (w *walker) run(root core.Ino, start string, inclusive bool) error {
	if w.batch <= 0 {
		w.batch = 1000
	}
	for {
		_, err := w.walkDir(root, "", start, inclusive)
		if errors.Is(err, errWalkRestart) {
			start, inclusive = w.skipTo, false
			continue
		}
		if errors.Is(err, errStop) {
			return nil
		}
		return err
	}
}

var errStop = errors.New("stop walk")

type pendingDir struct {
	name       string
	ino        core.Ino
	attr       *core.Attr
	xattr      []byte
	xattrKnown bool
}

// beyond reports whether key and everything after it lie past the prefix.
func (w *walker) beyond(key string) bool {
	return !strings.HasPrefix(key, w.prefix) && key > w.prefix
}

// walkDir walks directory dir, whose keys start with dp, from rel (a
// position relative to dp) on.
func (w *walker) walkDir(dir core.Ino, dp, rel string, inclusive bool) (bool, error) {
	var pending []pendingDir
	after := ""
	if rel != "" {
		head, rest, inside := strings.Cut(rel, "/")
		// Directories named by a proper prefix of head that continues with
		// a byte below '/' sort after rel: they are pending from the start.
		for j := 1; j < len(head); j++ {
			if head[j] >= '/' || isDots(head[:j]) {
				continue
			}
			a, err := w.s.fs.Lookup(w.ctx, &core.Root, dir, head[:j])
			if err == nil && a.Type == core.TypeDir {
				pending = append(pending, pendingDir{name: head[:j], ino: a.Ino, attr: &a})
			}
		}
		a, err := w.s.fs.Lookup(w.ctx, &core.Root, dir, head)
		found := err == nil && !isDots(head)
		if inside {
			if found && a.Type == core.TypeDir {
				key := dp + head + "/"
				if w.beyond(key) {
					return true, errStop
				}
				if rest == "" && inclusive {
					act, err := w.visit(walkItem{key: key, attr: &a, dir: true})
					if err != nil {
						return false, err
					}
					if act == walkStop {
						return true, errStop
					}
					if act != walkSkipSubtree {
						if _, err := w.walkDir(a.Ino, key, "", false); err != nil {
							return false, err
						}
					}
				} else if _, err := w.walkDir(a.Ino, key, rest, inclusive); err != nil {
					return false, err
				}
			}
			after = head + "/"
		} else {
			if found {
				switch {
				case a.Type == core.TypeDir:
					pending = append(pending, pendingDir{name: head, ino: a.Ino, attr: &a})
				case a.Type == core.TypeRegular && inclusive:
					if err := w.emitFile(walkItem{key: dp + head, attr: &a}); err != nil {
						return false, err
					}
				}
			}
			after = head
		}
	}
	for {
		var ents []core.DirEntry
		var more bool
		var err error
		n := w.fetchSize()
		if w.xattr != "" {
			ents, more, err = w.s.fs.ReadDirNamesXattr(w.ctx, w.id, dir, after, n, w.xattr)
		} else {
			ents, more, err = w.s.fs.ReadDirNames(w.ctx, w.id, dir, after, n, true)
		}
		if err != nil {
			return false, err
		}
		for i := range ents {
			e := &ents[i]
			after = e.Name
			if e.Attr == nil {
				continue
			}
			sortKey := e.Name
			if e.Type == core.TypeDir {
				sortKey += "/"
			}
			for len(pending) > 0 && pending[len(pending)-1].name+"/" < sortKey {
				p := pending[len(pending)-1]
				pending = pending[:len(pending)-1]
				if err := w.descend(dp, p); err != nil {
					return false, err
				}
			}
			switch e.Type {
			case core.TypeDir:
				pending = append(pending, pendingDir{name: e.Name, ino: e.Ino, attr: e.Attr, xattr: e.Xattr, xattrKnown: w.xattr != ""})
			case core.TypeRegular:
				if err := w.emitFile(walkItem{key: dp + e.Name, attr: e.Attr, xattr: e.Xattr, xattrKnown: w.xattr != ""}); err != nil {
					return false, err
				}
			}
		}
		if !more {
			break
		}
	}
	for len(pending) > 0 {
		p := pending[len(pending)-1]
		pending = pending[:len(pending)-1]
		if err := w.descend(dp, p); err != nil {
			return false, err
		}
	}
	return false, nil
}

// minFetch is the fewest entries the walker reads at once when visit wants
// only a few more keys: when some of them turn out not to be keys (empty
// directories, other file types), a few entries too many cost less than
// another read.
const minFetch = 16

// fetchSize is how many entries of a directory to read next.
func (w *walker) fetchSize() int {
	if w.want == nil {
		return w.batch
	}
	return min(w.batch, max(w.want()+1, minFetch))
}

func (w *walker) emitFile(it walkItem) error {
	if w.beyond(it.key) {
		return errStop
	}
	if !strings.HasPrefix(it.key, w.prefix) {
		return nil
	}
	act, err := w.visit(it)
	if err != nil {
		return err
	}
	if act == walkStop {
		return errStop
	}
	return nil
}

// descend visits directory p of the directory at dp and walks it.
func (w *walker) descend(dp string, p pendingDir) error {
	key := dp + p.name + "/"
	if w.beyond(key) {
		return errStop
	}
	if !strings.HasPrefix(key, w.prefix) && !strings.HasPrefix(w.prefix, key) {
		return nil
	}
	if strings.HasPrefix(key, w.prefix) {
		act, err := w.visit(walkItem{key: key, attr: p.attr, dir: true, xattr: p.xattr, xattrKnown: p.xattrKnown})
		if err != nil {
			return err
		}
		switch act {
		case walkStop:
			return errStop
		case walkSkipSubtree:
			return nil
		}
	}
	_, err := w.walkDir(p.ino, key, "", false)
	return err
}

// isDots reports whether name is "." or "..", which Lookup resolves to
// directories that are not entries.
func isDots(name string) bool { return name == "." || name == ".." }
