package nfs3

import (
	"context"
	"encoding/binary"

	"github.com/claudefs/cfs-gateway/internal/core"
	"github.com/claudefs/cfs-gateway/internal/protocol/oncrpc"
	"github.com/claudefs/cfs-gateway/internal/protocol/xdr/nfsv3"
)

// "." and ".." are not entries of the core's directories: the server adds
// them in front of every listing with cookies 1 and 2. The core's cookies
// start far above 2, so the two ranges never meet.
const (
	dotCookie    = 1
	dotdotCookie = 2
)

// Encoded sizes used for the byte budgets of READDIR and READDIRPLUS.
const (
	// status, post_op_attr with attributes, cookie verifier, the end of
	// the entry list and eof.
	readdirBase = 4 + 4 + nfsv3.Fattr3EncodedSizeBytes + 8 + 4 + 4
	// value-follows, fileid, name length, cookie; the name comes on top.
	entryFixed = 4 + 8 + 4 + 8
	// post_op_attr and post_op_fh3 with a handle.
	entryPlusExtra = 4 + nfsv3.Fattr3EncodedSizeBytes + 4 + 4 + HandleSize
	// maxCoreBatch bounds one ReadDir call of the core.
	maxCoreBatch = 1024
)

func pad4(n int) int { return (n + 3) &^ 3 }

// dirEntry is one entry of a listing as the server answers it.
type dirEntry struct {
	name   string
	cookie uint64
	attr   *core.Attr // nil when unknown; READDIR needs only the inode
	ino    core.Ino
}

// listing is the result of collecting a directory's entries.
type listing struct {
	entries []dirEntry
	eof     bool
	verf    uint64
}

// list collects the entries of t's directory after cookie, within a reply
// of maxBytes and, for READDIRPLUS, a directory information budget of
// dirBytes (0 for none).
func (s *Server) list(ctx context.Context, t *target, cookie, verf uint64, maxBytes, dirBytes int, plus bool) (listing, nfsv3.Nfsstat3) {
	if t.attr.Type != core.TypeDir {
		return listing{}, nfsv3.NFS3ERR_NOTDIR
	}
	var out listing
	room := maxBytes - readdirBase
	dirRoom := dirBytes
	size := func(name string) (int, int) {
		n := entryFixed + pad4(len(name))
		if plus {
			return n + entryPlusExtra, n
		}
		return n, n
	}
	// add appends an entry if it fits; the first entry must always fit
	// the reply, and only the reply bound is hard.
	add := func(e dirEntry) bool {
		n, d := size(e.name)
		if n > room || (dirBytes > 0 && d > dirRoom && len(out.entries) > 0) {
			return false
		}
		room -= n
		dirRoom -= d
		out.entries = append(out.entries, e)
		return true
	}
	// The core's first batch also gives the cookie verifier, which must be
	// checked before "." and ".." are answered from a stale listing.
	next := cookie
	if cookie <= dotdotCookie {
		next = 0
	}
	minEntry, _ := size("")
	batch := func() int { return max(1, min(maxCoreBatch, room/minEntry+1)) }
	entries, eof, dverf, err := s.fs.ReadDir(ctx, t.id, t.attr.Ino, next, 0, batch(), plus)
	if err != nil {
		return listing{}, Status(err)
	}
	out.verf = dverf
	if cookie != 0 && verf != 0 && verf != dverf {
		return listing{}, nfsv3.NFS3ERR_BAD_COOKIE
	}
	full := false
	if cookie < dotCookie {
		full = !add(dirEntry{name: ".", cookie: dotCookie, attr: &t.attr, ino: t.attr.Ino})
	}
	if !full && cookie < dotdotCookie {
		parent := s.parent(ctx, t)
		e := dirEntry{name: "..", cookie: dotdotCookie, ino: t.attr.Ino}
		if parent != nil {
			e.attr, e.ino = parent, parent.Ino
		}
		full = !add(e)
	}
	for !full {
		for _, de := range entries {
			if !add(dirEntry{name: de.Name, cookie: de.Cookie, attr: de.Attr, ino: de.Ino}) {
				full = true
				break
			}
			next = de.Cookie
		}
		if full || eof {
			break
		}
		entries, eof, _, err = s.fs.ReadDir(ctx, t.id, t.attr.Ino, next, 0, batch(), plus)
		if err != nil {
			if len(out.entries) > 0 {
				// What was collected is a valid partial answer.
				return out, nfsv3.NFS3_OK
			}
			return listing{}, Status(err)
		}
	}
	if len(out.entries) == 0 && (full || !eof) {
		return listing{}, nfsv3.NFS3ERR_TOOSMALL
	}
	out.eof = !full && eof
	return out, nfsv3.NFS3_OK
}

// parent returns the attributes of the directory's parent; at the root of
// the export, the directory itself.
func (s *Server) parent(ctx context.Context, t *target) *core.Attr {
	if s.isExportRoot(ctx, t.exp, t.attr.Ino) {
		return &t.attr
	}
	a, err := s.fs.Lookup(ctx, t.id, t.attr.Ino, "..")
	if err != nil {
		return nil
	}
	return &a
}

func cookieVerf(v uint64) [8]byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return b
}

func (s *Server) readdir(ctx context.Context, call *oncrpc.Call) (outcome, error) {
	var args nfsv3.Readdir3args
	if err := call.DecodeArgs(&args); err != nil {
		return outcome{}, err
	}
	t, st, err := s.resolve(ctx, call, args.Dir.Data)
	if err != nil {
		return outcome{}, err
	}
	fail := func(st nfsv3.Nfsstat3, a *core.Attr) (outcome, error) {
		return outcome{res: &nfsv3.Readdir3res_default{Status: st, Resfail: nfsv3.Readdir3resfail{DirAttributes: s.postOp(a)}}, status: st}, nil
	}
	if st != nfsv3.NFS3_OK {
		return fail(st, nil)
	}
	count := int(min(args.Count, s.maxTransfer))
	l, st := s.list(ctx, &t, args.Cookie, binary.BigEndian.Uint64(args.Cookieverf[:]), count, 0, false)
	if st != nfsv3.NFS3_OK {
		return fail(st, &t.attr)
	}
	var head *nfsv3.Entry3
	for i := len(l.entries) - 1; i >= 0; i-- {
		e := &l.entries[i]
		head = &nfsv3.Entry3{Fileid: uint64(e.ino), Name: []byte(e.name), Cookie: e.cookie, Nextentry: head}
	}
	return outcome{res: &nfsv3.Readdir3res_NFS3_OK{Resok: nfsv3.Readdir3resok{
		DirAttributes: s.postOp(&t.attr),
		Cookieverf:    cookieVerf(l.verf),
		Reply:         nfsv3.Dirlist3{Entries: head, Eof: l.eof},
	}}}, nil
}

func (s *Server) readdirplus(ctx context.Context, call *oncrpc.Call) (outcome, error) {
	var args nfsv3.Readdirplus3args
	if err := call.DecodeArgs(&args); err != nil {
		return outcome{}, err
	}
	t, st, err := s.resolve(ctx, call, args.Dir.Data)
	if err != nil {
		return outcome{}, err
	}
	fail := func(st nfsv3.Nfsstat3, a *core.Attr) (outcome, error) {
		return outcome{res: &nfsv3.Readdirplus3res_default{Status: st, Resfail: nfsv3.Readdirplus3resfail{DirAttributes: s.postOp(a)}}, status: st}, nil
	}
	if st != nfsv3.NFS3_OK {
		return fail(st, nil)
	}
	maxBytes := int(min(args.Maxcount, s.maxTransfer))
	l, st := s.list(ctx, &t, args.Cookie, binary.BigEndian.Uint64(args.Cookieverf[:]), maxBytes, int(args.Dircount), true)
	if st != nfsv3.NFS3_OK {
		return fail(st, &t.attr)
	}
	var head *nfsv3.Entryplus3
	for i := len(l.entries) - 1; i >= 0; i-- {
		e := &l.entries[i]
		head = &nfsv3.Entryplus3{
			Fileid:         uint64(e.ino),
			Name:           []byte(e.name),
			Cookie:         e.cookie,
			NameAttributes: s.postOp(e.attr),
			NameHandle:     s.postOpFh(t.exp, e.attr),
			Nextentry:      head,
		}
	}
	return outcome{res: &nfsv3.Readdirplus3res_NFS3_OK{Resok: nfsv3.Readdirplus3resok{
		DirAttributes: s.postOp(&t.attr),
		Cookieverf:    cookieVerf(l.verf),
		Reply:         nfsv3.Dirlistplus3{Entries: head, Eof: l.eof},
	}}}, nil
}
