package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/claudefs/cfs-gateway/internal/protocol/nfs3"
	"github.com/claudefs/cfs-gateway/internal/protocol/oncrpc"
	"github.com/claudefs/cfs-gateway/internal/protocol/xdr/mountv3"
	"github.com/claudefs/cfs-gateway/internal/protocol/xdr/nfsv3"
)

// conn is one RPC connection to the server; calls on it may overlap.
type conn struct {
	c *oncrpc.Client
}

func dialConn(ctx context.Context, addr string, uid, gid uint32) (*conn, error) {
	cred, err := oncrpc.SysCredential{MachineName: "nfsload", UID: uid, GID: gid}.Credential()
	if err != nil {
		return nil, err
	}
	c, err := oncrpc.Dial(ctx, "tcp", addr, oncrpc.WithCredential(cred), oncrpc.WithMaxReplySize(80<<20))
	if err != nil {
		return nil, err
	}
	return &conn{c: c}, nil
}

func (c *conn) Close() error { return c.c.Close() }

// nfsCall makes one NFS call and decodes its results with read.
func nfsCall[T any](ctx context.Context, c *conn, proc uint32, args io.WriterTo, read func(io.Reader) (T, int64, error)) (T, error) {
	var out T
	err := c.c.Call(ctx, nfsv3.NFS_PROGRAM, nfsv3.NFS_V3, proc, args, oncrpc.ReaderFromFunc(func(r io.Reader) (int64, error) {
		v, n, err := read(r)
		out = v
		return n, err
	}))
	return out, err
}

// statusError is an NFS status other than NFS3_OK.
type statusError struct {
	proc   string
	status nfsv3.Nfsstat3
}

func (e *statusError) Error() string {
	return fmt.Sprintf("%s answered %s", e.proc, nfs3.StatusName(e.status))
}

func check(proc string, st nfsv3.Nfsstat3) error {
	if st != nfsv3.NFS3_OK {
		return &statusError{proc, st}
	}
	return nil
}

type dirpath string

func (d dirpath) WriteTo(w io.Writer) (int64, error) { return mountv3.WriteDirpath(w, []byte(d)) }

// mount asks MOUNT for the root handle of export.
func (c *conn) mount(ctx context.Context, export string) ([]byte, error) {
	var res mountv3.Mountres3
	err := c.c.Call(ctx, mountv3.MOUNT_PROGRAM, mountv3.MOUNT_V3, mountv3.MOUNTPROC3_MNT, dirpath(export),
		oncrpc.ReaderFromFunc(func(r io.Reader) (int64, error) {
			v, n, err := mountv3.ReadMountres3(r)
			res = v
			return n, err
		}))
	if err != nil {
		return nil, fmt.Errorf("MNT %s: %w", export, err)
	}
	ok, isOK := res.(*mountv3.Mountres3_MNT3_OK)
	if !isOK {
		return nil, fmt.Errorf("MNT %s: status %d", export, res.GetFhsStatus())
	}
	return ok.Mountinfo.Fhandle, nil
}

func unset() nfsv3.Sattr3 {
	return nfsv3.Sattr3{
		Mode:  &nfsv3.SetMode3_default{},
		Uid:   &nfsv3.SetUid3_default{},
		Gid:   &nfsv3.SetGid3_default{},
		Size:  &nfsv3.SetSize3_default{},
		Atime: &nfsv3.SetAtime_default{},
		Mtime: &nfsv3.SetMtime_default{},
	}
}

func withMode(mode uint32) nfsv3.Sattr3 {
	sa := unset()
	sa.Mode = &nfsv3.SetMode3_TRUE{Mode: mode}
	return sa
}

func (c *conn) lookup(ctx context.Context, dir []byte, name string) ([]byte, error) {
	res, err := nfsCall(ctx, c, nfsv3.NFSPROC3_LOOKUP,
		&nfsv3.Lookup3args{What: nfsv3.Diropargs3{Dir: nfsv3.NfsFh3{Data: dir}, Name: []byte(name)}}, nfsv3.ReadLookup3res)
	if err != nil {
		return nil, err
	}
	if err := check("LOOKUP", res.GetStatus()); err != nil {
		return nil, err
	}
	return res.(*nfsv3.Lookup3res_NFS3_OK).Resok.Object.Data, nil
}

// create makes (or, unchecked, opens) a regular file.
func (c *conn) create(ctx context.Context, dir []byte, name string, guarded bool) ([]byte, error) {
	var how nfsv3.Createhow3 = &nfsv3.Createhow3_UNCHECKED{ObjAttributes: withMode(0o644)}
	if guarded {
		how = &nfsv3.Createhow3_GUARDED{ObjAttributes: withMode(0o644)}
	}
	res, err := nfsCall(ctx, c, nfsv3.NFSPROC3_CREATE,
		&nfsv3.Create3args{Where: nfsv3.Diropargs3{Dir: nfsv3.NfsFh3{Data: dir}, Name: []byte(name)}, How: how}, nfsv3.ReadCreate3res)
	if err != nil {
		return nil, err
	}
	if err := check("CREATE", res.GetStatus()); err != nil {
		return nil, err
	}
	fh, ok := res.(*nfsv3.Create3res_NFS3_OK).Resok.Obj.(*nfsv3.PostOpFh3_TRUE)
	if !ok {
		return c.lookup(ctx, dir, name)
	}
	return fh.Handle.Data, nil
}

func (c *conn) mkdir(ctx context.Context, dir []byte, name string) ([]byte, error) {
	res, err := nfsCall(ctx, c, nfsv3.NFSPROC3_MKDIR,
		&nfsv3.Mkdir3args{Where: nfsv3.Diropargs3{Dir: nfsv3.NfsFh3{Data: dir}, Name: []byte(name)}, Attributes: withMode(0o755)}, nfsv3.ReadMkdir3res)
	if err != nil {
		return nil, err
	}
	if err := check("MKDIR", res.GetStatus()); err != nil {
		return nil, err
	}
	return res.(*nfsv3.Mkdir3res_NFS3_OK).Resok.Obj.(*nfsv3.PostOpFh3_TRUE).Handle.Data, nil
}

func (c *conn) write(ctx context.Context, fh []byte, off uint64, data []byte, stable nfsv3.StableHow) error {
	res, err := nfsCall(ctx, c, nfsv3.NFSPROC3_WRITE,
		&nfsv3.Write3args{File: nfsv3.NfsFh3{Data: fh}, Offset: off, Count: uint32(len(data)), Stable: stable, Data: data}, nfsv3.ReadWrite3res)
	if err != nil {
		return err
	}
	if err := check("WRITE", res.GetStatus()); err != nil {
		return err
	}
	if n := res.(*nfsv3.Write3res_NFS3_OK).Resok.Count; n != uint32(len(data)) {
		return fmt.Errorf("WRITE wrote %d of %d bytes", n, len(data))
	}
	return nil
}

// read reads count bytes at off and returns how many came. The data is
// skipped, not copied: the generated decoder would copy it through a
// growing buffer, and the load client would measure itself.
func (c *conn) read(ctx context.Context, fh []byte, off uint64, count uint32) (int, error) {
	var n uint32
	var st nfsv3.Nfsstat3
	err := c.c.Call(ctx, nfsv3.NFS_PROGRAM, nfsv3.NFS_V3, nfsv3.NFSPROC3_READ,
		&nfsv3.Read3args{File: nfsv3.NfsFh3{Data: fh}, Offset: off, Count: count},
		oncrpc.ReaderFromFunc(func(r io.Reader) (int64, error) {
			var err error
			n, st, err = skipReadResult(r)
			return 0, err
		}))
	if err != nil {
		return 0, err
	}
	if err := check("READ", st); err != nil {
		return 0, err
	}
	return int(n), nil
}

// skipReadResult decodes READ3res up to its data and skips the data.
func skipReadResult(r io.Reader) (uint32, nfsv3.Nfsstat3, error) {
	var st nfsv3.Nfsstat3
	if _, err := st.ReadFrom(r); err != nil || st != nfsv3.NFS3_OK {
		return 0, st, err
	}
	if _, _, err := nfsv3.ReadPostOpAttr(r); err != nil {
		return 0, st, err
	}
	count, _, err := nfsv3.ReadCount3(r)
	if err != nil {
		return 0, st, err
	}
	var head [8]byte // eof and the data's length
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return 0, st, err
	}
	n := int64(binary.BigEndian.Uint32(head[4:]))
	skip := (n + 3) &^ 3
	if s, ok := r.(io.Seeker); ok {
		_, err = s.Seek(skip, io.SeekCurrent)
	} else {
		_, err = io.CopyN(io.Discard, r, skip)
	}
	if n != int64(count) {
		return 0, st, fmt.Errorf("READ reply counts %d bytes but carries %d", count, n)
	}
	return count, st, err
}

func (c *conn) commit(ctx context.Context, fh []byte) error {
	res, err := nfsCall(ctx, c, nfsv3.NFSPROC3_COMMIT, &nfsv3.Commit3args{File: nfsv3.NfsFh3{Data: fh}}, nfsv3.ReadCommit3res)
	if err != nil {
		return err
	}
	return check("COMMIT", res.GetStatus())
}

func (c *conn) getattr(ctx context.Context, fh []byte) (uint64, error) {
	res, err := nfsCall(ctx, c, nfsv3.NFSPROC3_GETATTR, &nfsv3.Getattr3args{Object: nfsv3.NfsFh3{Data: fh}}, nfsv3.ReadGetattr3res)
	if err != nil {
		return 0, err
	}
	if err := check("GETATTR", res.GetStatus()); err != nil {
		return 0, err
	}
	return res.(*nfsv3.Getattr3res_NFS3_OK).Resok.ObjAttributes.Size, nil
}
