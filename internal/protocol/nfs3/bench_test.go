package nfs3

import (
	"io"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/claudefs/cfs-gateway/internal/protocol/xdr/nfsv3"
)

// benchServer starts a server and returns a client of it and the handle
// of a file holding size bytes.
func benchServer(b *testing.B, size int) (nfs, []byte, []byte) {
	b.Helper()
	ts := startServer(b, openFS(b), openExport, func(c *Config) { c.MaxTransfer = 1 << 20 })
	n := nfs{b, dial(b, ts.bound.NFS, 0, 0)}
	root := n.mount("/export")
	fh := n.createFile(root, "f", 0o644)
	chunk := make([]byte, 1<<20)
	for off := 0; off < size; off += len(chunk) {
		n.write(fh, uint64(off), chunk[:min(len(chunk), size-off)], nfsv3.UNSTABLE)
	}
	return n, root, fh
}

// BenchmarkGetattr: GETATTR round trips over one connection, 8 in flight.
func BenchmarkGetattr(b *testing.B) {
	n, _, fh := benchServer(b, 0)
	args := &nfsv3.Getattr3args{Object: nfsv3.NfsFh3{Data: fh}}
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := tryCall(n.c, nfsv3.NFS_PROGRAM, nfsv3.NFS_V3, nfsv3.NFSPROC3_GETATTR, args, nfsv3.ReadGetattr3res); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkRead1M: 1 MiB READs of a 64 MiB file, 8 in flight. Report: MB/s.
func BenchmarkRead1M(b *testing.B) {
	const size = 64 << 20
	n, _, fh := benchServer(b, size)
	var next atomic.Int64
	b.SetBytes(1 << 20)
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			off := uint64(next.Add(1)%(size>>20)) << 20
			st, err := tryCall(n.c, nfsv3.NFS_PROGRAM, nfsv3.NFS_V3, nfsv3.NFSPROC3_READ,
				&nfsv3.Read3args{File: nfsv3.NfsFh3{Data: fh}, Offset: off, Count: 1 << 20}, skipRead)
			if err != nil || st != nfsv3.NFS3_OK {
				b.Error(err, StatusName(st))
				return
			}
		}
	})
}

// skipRead decodes a READ reply's status and skips the rest, so that the
// benchmark's client does not spend more than the server copying the data.
func skipRead(r io.Reader) (nfsv3.Nfsstat3, int64, error) {
	var st nfsv3.Nfsstat3
	if _, err := st.ReadFrom(r); err != nil {
		return st, 0, err
	}
	n, err := io.Copy(io.Discard, r)
	return st, n, err
}

// BenchmarkWrite1M: 1 MiB UNSTABLE WRITEs, 8 in flight, and a final
// COMMIT. Report: MB/s.
func BenchmarkWrite1M(b *testing.B) {
	n, _, fh := benchServer(b, 0)
	data := make([]byte, 1<<20)
	var next atomic.Int64
	b.SetBytes(1 << 20)
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			off := uint64(next.Add(1)-1) << 20
			res, err := tryCall(n.c, nfsv3.NFS_PROGRAM, nfsv3.NFS_V3, nfsv3.NFSPROC3_WRITE,
				&nfsv3.Write3args{File: nfsv3.NfsFh3{Data: fh}, Offset: off, Count: 1 << 20, Stable: nfsv3.UNSTABLE, Data: data}, nfsv3.ReadWrite3res)
			if err != nil || res.GetStatus() != nfsv3.NFS3_OK {
				b.Error(err, res)
				return
			}
		}
	})
	if _, err := tryCall(n.c, nfsv3.NFS_PROGRAM, nfsv3.NFS_V3, nfsv3.NFSPROC3_COMMIT,
		&nfsv3.Commit3args{File: nfsv3.NfsFh3{Data: fh}}, nfsv3.ReadCommit3res); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkCreate: CREATE of new empty files in one directory, 8 in
// flight; each is a durable transaction.
func BenchmarkCreate(b *testing.B) {
	n, root, _ := benchServer(b, 0)
	var next atomic.Int64
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			name := "c" + strconv.FormatInt(next.Add(1), 10)
			res, err := tryCall(n.c, nfsv3.NFS_PROGRAM, nfsv3.NFS_V3, nfsv3.NFSPROC3_CREATE,
				&nfsv3.Create3args{Where: where(root, name), How: &nfsv3.Createhow3_GUARDED{ObjAttributes: sattr(0o644)}}, nfsv3.ReadCreate3res)
			if err != nil || res.GetStatus() != nfsv3.NFS3_OK {
				b.Error(err, StatusName(res.GetStatus()))
				return
			}
		}
	})
}
