package core

import (
	"context"
	"errors"
	"fmt"
	"path"
	"time"

	"github.com/claudefs/cfs-gateway/internal/core/quota"
	"github.com/claudefs/cfs-gateway/internal/data"
	"github.com/claudefs/cfs-gateway/internal/engine/blob"
	"github.com/claudefs/cfs-gateway/internal/engine/kv"
	"github.com/claudefs/cfs-gateway/internal/meta"
)

// scanAll calls fn for every pair with the given prefix, a page at a time,
// each page in its own read view.
func scanAll(ctx context.Context, store kv.Store, prefix []byte, fn func(kv.Pair) error) error {
	start, end := prefix, kv.PrefixEnd(prefix)
	for {
		var page []kv.Pair
		err := store.View(ctx, func(r kv.Reader) error {
			var err error
			page, err = r.Scan(ctx, start, end, 1000, false)
			return err
		})
		if err != nil {
			return err
		}
		for _, p := range page {
			if err := fn(p); err != nil {
				return err
			}
		}
		if len(page) < 1000 {
			return nil
		}
		start = append(append([]byte(nil), page[len(page)-1].Key...), 0)
	}
}

// Problem is one inconsistency fsck found.
type Problem struct {
	Kind   string // e.g. "corrupt block", "dangling entry", "wrong link count"
	Path   string // a path of the file concerned, when it has one
	Ino    Ino
	Detail string
}

func (p Problem) String() string {
	where := p.Path
	if where == "" {
		where = fmt.Sprintf("inode %d", p.Ino)
	}
	return fmt.Sprintf("%s: %s: %s", p.Kind, where, p.Detail)
}

// FsckReport is what fsck checked and found.
type FsckReport struct {
	Inodes, Dirs, Entries, Chunks, Slices int
	// UnreferencedBlocks counts blocks that no slice record knows: left by
	// a crash between storing blocks and committing them, or being written
	// right now. They are not a problem; gc removes them.
	UnreferencedBlocks int
	Problems           []Problem
}

// FsckOptions says how deep fsck looks.
type FsckOptions struct {
	// SkipBlocks skips reading every block to verify its checksums.
	SkipBlocks bool
	Progress   Progress
}

// Fsck checks the metadata for consistency (entries, link counts, readdir
// index, chunk maps, slice references, quota usage) and, unless told not
// to, reads every block to verify its checksums. It names the files
// affected. It changes nothing.
func (fs *FS) Fsck(ctx context.Context, opts FsckOptions) (*FsckReport, error) {
	rep := &FsckReport{}
	progress := func(stage string, n int) {
		if opts.Progress != nil && (n%1000 == 0) {
			opts.Progress(stage, n)
		}
	}
	add := func(kind string, ino Ino, pathName, format string, args ...any) {
		rep.Problems = append(rep.Problems, Problem{Kind: kind, Ino: ino, Path: pathName, Detail: fmt.Sprintf(format, args...)})
	}

	// Inodes.
	inodes := map[Ino]*meta.Inode{}
	err := scanAll(ctx, fs.store, []byte{'I'}, func(p kv.Pair) error {
		in, err := meta.DecodeInode(p.Value)
		ino := Ino(uint64FromKey(p.Key))
		if err != nil {
			add("corrupt inode", ino, "", "%v", err)
			return nil
		}
		inodes[ino] = in
		rep.Inodes++
		progress("inodes", rep.Inodes)
		return nil
	})
	if err != nil {
		return nil, err
	}
	orphans := map[Ino]bool{}
	if err := scanAll(ctx, fs.store, meta.OrphanPrefix(), func(p kv.Pair) error {
		orphans[Ino(uint64FromKey(p.Key))] = true
		return nil
	}); err != nil {
		return nil, err
	}

	// The tree: every entry names a live inode, and its readdir index
	// entry agrees.
	links := map[Ino]uint32{}
	subdirs := map[Ino]uint32{}
	paths := map[Ino]string{RootIno: "/"}
	queue := []Ino{RootIno}
	for len(queue) > 0 {
		dir := queue[0]
		queue = queue[1:]
		rep.Dirs++
		cookies := map[uint64]string{}
		err := scanAll(ctx, fs.store, meta.CookiePrefix(uint64(dir)), func(p kv.Pair) error {
			ce, err := meta.DecodeCookieEntry(p.Value)
			if err != nil {
				add("corrupt readdir entry", dir, paths[dir], "%v", err)
				return nil
			}
			cookies[meta.CookieOf(p.Key)] = ce.Name
			return nil
		})
		if err != nil {
			return nil, err
		}
		prefix := meta.DentryPrefix(uint64(dir))
		err = scanAll(ctx, fs.store, prefix, func(p kv.Pair) error {
			name := string(p.Key[len(prefix):])
			full := path.Join(paths[dir], name)
			rep.Entries++
			progress("entries", rep.Entries)
			d, err := meta.DecodeDentry(p.Value)
			if err != nil {
				add("corrupt entry", dir, full, "%v", err)
				return nil
			}
			if cookies[d.Cookie] != name {
				add("readdir index mismatch", Ino(d.Ino), full, "cookie %d names %q", d.Cookie, cookies[d.Cookie])
			}
			delete(cookies, d.Cookie)
			child := Ino(d.Ino)
			in, ok := inodes[child]
			if !ok || in.Nlink == 0 {
				add("dangling entry", child, full, "the entry names an inode that does not exist")
				return nil
			}
			links[child]++
			if _, seen := paths[child]; !seen {
				paths[child] = full
			}
			if FileType(in.Type) == TypeDir {
				subdirs[dir]++
				if in.Parent != uint64(dir) {
					add("wrong parent", child, full, "records parent %d, found in %d", in.Parent, dir)
				}
				queue = append(queue, child)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		for c, name := range cookies {
			add("stray readdir entry", dir, paths[dir], "cookie %d (%q) has no entry", c, name)
		}
	}
	for ino, in := range inodes {
		switch {
		case ino == RootIno:
			if want := 2 + subdirs[ino]; in.Nlink != want {
				add("wrong link count", ino, "/", "nlink %d, expected %d", in.Nlink, want)
			}
		case in.Nlink == 0:
			if !orphans[ino] {
				add("lost inode", ino, "", "unlinked but not queued for purging")
			}
		case links[ino] == 0:
			add("lost inode", ino, "", "no directory entry names it")
		case FileType(in.Type) == TypeDir:
			if want := 2 + subdirs[ino]; in.Nlink != want || links[ino] != 1 {
				add("wrong link count", ino, paths[ino], "nlink %d with %d entries, expected %d with 1", in.Nlink, links[ino], want)
			}
		case in.Nlink != links[ino]:
			add("wrong link count", ino, paths[ino], "nlink %d, %d entries name it", in.Nlink, links[ino])
		}
	}

	// Chunk maps and slice references.
	refs := map[uint64]uint32{}
	sizes := map[uint64]uint32{}
	users := map[uint64][]Ino{}
	err = scanAll(ctx, fs.store, []byte{'M'}, func(p kv.Pair) error {
		ino := Ino(uint64FromKey(p.Key))
		rep.Chunks++
		progress("chunks", rep.Chunks)
		slices, err := data.DecodeSlices(p.Value)
		if err != nil {
			add("corrupt chunk map", ino, paths[ino], "chunk %d: %v", meta.ChunkIndex(p.Key), err)
			return nil
		}
		if _, ok := inodes[ino]; !ok {
			add("stray chunk map", ino, "", "chunk %d of an inode that does not exist", meta.ChunkIndex(p.Key))
		}
		for _, s := range slices {
			if s.ID != 0 {
				sizes[s.ID] = s.Size
			}
		}
		for _, id := range data.SliceIDs(slices) {
			refs[id]++
			users[id] = append(users[id], ino)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := scanAll(ctx, fs.store, meta.ReleasePrefix(), func(p kv.Pair) error {
		r, err := meta.DecodeRelease(p.Value)
		if err != nil {
			add("corrupt release list", 0, "", "%v", err)
			return nil
		}
		for _, id := range r.IDs {
			refs[id]++
		}
		return nil
	}); err != nil {
		return nil, err
	}
	recorded := map[uint64]meta.SliceRef{}
	if err := scanAll(ctx, fs.store, meta.SliceRefPrefix(), func(p kv.Pair) error {
		r, err := meta.DecodeSliceRef(p.Value)
		if err != nil {
			add("corrupt slice reference", 0, "", "slice %d: %v", uint64FromKey(p.Key), err)
			return nil
		}
		recorded[uint64FromKey(p.Key)] = r
		return nil
	}); err != nil {
		return nil, err
	}
	for id, n := range refs {
		r, ok := recorded[id]
		switch {
		case !ok && len(users[id]) > 0:
			add("missing slice reference", users[id][0], paths[users[id][0]], "slice %d is used %d times but has no reference record", id, n)
		case ok && r.Refs != n:
			add("wrong slice reference count", 0, "", "slice %d: %d recorded, %d found", id, r.Refs, n)
		}
	}
	for id, r := range recorded {
		if refs[id] == 0 {
			add("leaked slice", 0, "", "slice %d (%d bytes) has %d references recorded but no chunk map uses it", id, r.Size, r.Refs)
		}
	}
	pending := map[uint64]bool{}
	if err := scanAll(ctx, fs.store, meta.DeletePrefix(), func(p kv.Pair) error {
		if _, id, ok := meta.ParseDeleteKey(p.Key); ok {
			pending[id] = true
		}
		return nil
	}); err != nil {
		return nil, err
	}
	if lister, ok := fs.blobs.(blob.Lister); ok {
		err := lister.List(ctx, "chunks/", func(o blob.Object) bool {
			if id, _, _, ok := data.ParseBlockKey(o.Key); ok && !pending[id] {
				if _, known := recorded[id]; !known {
					rep.UnreferencedBlocks++
				}
			}
			return true
		})
		if err != nil {
			return nil, err
		}
	}
	// Inline slice data: each piece belongs to a referenced slice or one
	// waiting for deletion, and has the slice's size.
	inlineSizes := map[uint64]int{}
	if err := scanAll(ctx, fs.store, meta.InlinePrefix(), func(p kv.Pair) error {
		id := uint64FromKey(p.Key)
		inlineSizes[id] = len(p.Value)
		if _, ok := recorded[id]; !ok && !pending[id] {
			add("leaked inline data", 0, "", "inline slice %#x (%d bytes) has data but no reference record", id, len(p.Value))
		}
		return nil
	}); err != nil {
		return nil, err
	}
	if !opts.SkipBlocks {
		for id, size := range sizes {
			rep.Slices++
			progress("verify blocks", rep.Slices)
			if data.IsInline(id) {
				if n, ok := inlineSizes[id]; !ok || n != int(size) {
					for _, ino := range users[id] {
						add("corrupt block", ino, paths[ino], "inline slice %#x: %d bytes of data stored (present: %v), %d referenced", id, n, ok, size)
					}
				}
				continue
			}
			if err := fs.blocks.VerifySlice(ctx, id, size); err != nil {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				for _, ino := range users[id] {
					add("corrupt block", ino, paths[ino], "slice %d: %v", id, err)
				}
			}
		}
	}

	// Quota usage against the files that exist.
	type who = usageID
	want := map[who]quota.Usage{}
	for ino, in := range inodes {
		if in.Nlink == 0 && FileType(in.Type) != TypeDir && in.Flags&meta.InodeTemp == 0 {
			continue
		}
		if ino == RootIno {
			continue
		}
		for _, w := range [2]who{{meta.QuotaUser, in.UID}, {meta.QuotaGroup, in.GID}} {
			u := want[w]
			u.Inodes++
			if FileType(in.Type) != TypeDir {
				u.Bytes += int64(in.Size)
			}
			want[w] = u
		}
	}
	have := map[who]quota.Usage{}
	if err := fs.store.View(ctx, func(r kv.Reader) error {
		ids := map[who]bool{}
		if err := scanAllReader(ctx, r, meta.UsagePrefix(), func(p kv.Pair) {
			if kind, id, _, ok := meta.ParseUsageKey(p.Key); ok {
				ids[who{kind, id}] = true
			}
		}); err != nil {
			return err
		}
		for w := range ids {
			_, sum, err := readUsage(ctx, r, w)
			if err != nil {
				return err
			}
			have[w] = sum
		}
		return nil
	}); err != nil {
		return nil, err
	}
	for w, u := range want {
		h := have[w]
		if h.Bytes != u.Bytes || h.Inodes != u.Inodes {
			add("quota usage mismatch", 0, "", "%s %d: recorded %d bytes %d inodes, files hold %d bytes %d inodes",
				w.kind, w.id, h.Bytes, h.Inodes, u.Bytes, u.Inodes)
		}
	}
	for w, h := range have {
		if _, ok := want[w]; !ok && (h.Bytes != 0 || h.Inodes != 0) {
			add("quota usage mismatch", 0, "", "%s %d: recorded %d bytes %d inodes, owns no files", w.kind, w.id, h.Bytes, h.Inodes)
		}
	}
	return rep, nil
}

func scanAllReader(ctx context.Context, r kv.Reader, prefix []byte, fn func(kv.Pair)) error {
	pairs, err := r.Scan(ctx, prefix, kv.PrefixEnd(prefix), 0, false)
	for _, p := range pairs {
		fn(p)
	}
	return err
}

// GCOptions configures a garbage collection run.
type GCOptions struct {
	// SafetyWindow spares blocks younger than this, which a running
	// gateway may be about to reference [1 h].
	SafetyWindow time.Duration
	// IgnoreDelay deletes unreferenced slices now rather than after the
	// block delete delay (only safe when no gateway is serving reads).
	IgnoreDelay bool
	Progress    Progress
}

// GCReport is what gc removed.
type GCReport struct {
	PurgedFiles   int
	DroppedRefs   int
	DeletedSlices int
	OrphanBlocks  int
	OrphanBytes   int64
	KeptYoung     int
}

// GC purges unlinked files, deletes due unreferenced slices, and removes
// blocks that no slice record knows (left by a crash between storing blocks
// and committing their metadata) once older than the safety window.
func (fs *FS) GC(ctx context.Context, opts GCOptions) (*GCReport, error) {
	if opts.SafetyWindow < 0 {
		opts.SafetyWindow = 0
	}
	rep := &GCReport{}
	var err error
	if rep.PurgedFiles, err = fs.PurgeOrphans(ctx, opts.Progress); err != nil {
		return rep, err
	}
	if rep.DroppedRefs, err = fs.ProcessReleases(ctx, opts.Progress); err != nil {
		return rep, err
	}
	until := fs.now()
	if opts.IgnoreDelay {
		until = time.Unix(1<<40, 0)
	}
	if rep.DeletedSlices, err = fs.DeleteDue(ctx, until, opts.Progress); err != nil {
		return rep, err
	}
	lister, ok := fs.blobs.(blob.Lister)
	if !ok {
		return rep, errors.New("gc: this block store cannot list its blocks, so orphaned blocks cannot be found")
	}
	known := map[uint64]bool{}
	if err := scanAll(ctx, fs.store, meta.SliceRefPrefix(), func(p kv.Pair) error {
		known[uint64FromKey(p.Key)] = true
		return nil
	}); err != nil {
		return rep, err
	}
	if err := scanAll(ctx, fs.store, meta.DeletePrefix(), func(p kv.Pair) error {
		if _, id, ok := meta.ParseDeleteKey(p.Key); ok {
			known[id] = true
		}
		return nil
	}); err != nil {
		return rep, err
	}
	cutoff := fs.now().Add(-opts.SafetyWindow)
	var orphans []blob.Object
	seen := 0
	err = lister.List(ctx, "chunks/", func(o blob.Object) bool {
		seen++
		if opts.Progress != nil && seen%1000 == 0 {
			opts.Progress("scan blocks", seen)
		}
		id, _, _, ok := data.ParseBlockKey(o.Key)
		if !ok || known[id] {
			return true
		}
		if o.ModTime.After(cutoff) {
			rep.KeptYoung++
			return true
		}
		orphans = append(orphans, o)
		return true
	})
	if err != nil {
		return rep, err
	}
	// A slice committed after the reference scan above is not an orphan:
	// check each candidate again before deleting it.
	for _, o := range orphans {
		id, _, _, _ := data.ParseBlockKey(o.Key)
		var live bool
		if err := fs.store.View(ctx, func(r kv.Reader) error {
			_, err := r.Get(ctx, meta.SliceRefKey(id))
			live = err == nil
			if errors.Is(err, kv.ErrNotFound) {
				return nil
			}
			return err
		}); err != nil {
			return rep, err
		}
		if live {
			continue
		}
		if err := fs.blobs.Delete(ctx, o.Key); err != nil {
			return rep, err
		}
		rep.OrphanBlocks++
		rep.OrphanBytes += o.Size
		if opts.Progress != nil {
			opts.Progress("delete orphan blocks", rep.OrphanBlocks)
		}
	}
	return rep, nil
}
