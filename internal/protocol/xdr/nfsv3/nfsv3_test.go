package nfsv3_test

import (
	"bytes"
	"testing"

	"github.com/claudefs/cfs-gateway/internal/protocol/xdr/nfsv3"
	"github.com/claudefs/cfs-gateway/internal/protocol/xdr/xdrtest"
)

// decoders covers every argument and result type of NFSPROC3.
var decoders = []xdrtest.Decoder{
	xdrtest.Struct[nfsv3.Getattr3args]("GETATTR3args"),
	xdrtest.Struct[nfsv3.Setattr3args]("SETATTR3args"),
	xdrtest.Struct[nfsv3.Lookup3args]("LOOKUP3args"),
	xdrtest.Struct[nfsv3.Access3args]("ACCESS3args"),
	xdrtest.Struct[nfsv3.Readlink3args]("READLINK3args"),
	xdrtest.Struct[nfsv3.Read3args]("READ3args"),
	xdrtest.Struct[nfsv3.Write3args]("WRITE3args"),
	xdrtest.Struct[nfsv3.Create3args]("CREATE3args"),
	xdrtest.Struct[nfsv3.Mkdir3args]("MKDIR3args"),
	xdrtest.Struct[nfsv3.Symlink3args]("SYMLINK3args"),
	xdrtest.Struct[nfsv3.Mknod3args]("MKNOD3args"),
	xdrtest.Struct[nfsv3.Remove3args]("REMOVE3args"),
	xdrtest.Struct[nfsv3.Rmdir3args]("RMDIR3args"),
	xdrtest.Struct[nfsv3.Rename3args]("RENAME3args"),
	xdrtest.Struct[nfsv3.Link3args]("LINK3args"),
	xdrtest.Struct[nfsv3.Readdir3args]("READDIR3args"),
	xdrtest.Struct[nfsv3.Readdirplus3args]("READDIRPLUS3args"),
	xdrtest.Struct[nfsv3.Fsstat3args]("FSSTAT3args"),
	xdrtest.Struct[nfsv3.Fsinfo3args]("FSINFO3args"),
	xdrtest.Struct[nfsv3.Pathconf3args]("PATHCONF3args"),
	xdrtest.Struct[nfsv3.Commit3args]("COMMIT3args"),
	xdrtest.Union("GETATTR3res", nfsv3.ReadGetattr3res),
	xdrtest.Union("SETATTR3res", nfsv3.ReadSetattr3res),
	xdrtest.Union("LOOKUP3res", nfsv3.ReadLookup3res),
	xdrtest.Union("ACCESS3res", nfsv3.ReadAccess3res),
	xdrtest.Union("READLINK3res", nfsv3.ReadReadlink3res),
	xdrtest.Union("READ3res", nfsv3.ReadRead3res),
	xdrtest.Union("WRITE3res", nfsv3.ReadWrite3res),
	xdrtest.Union("CREATE3res", nfsv3.ReadCreate3res),
	xdrtest.Union("MKDIR3res", nfsv3.ReadMkdir3res),
	xdrtest.Union("SYMLINK3res", nfsv3.ReadSymlink3res),
	xdrtest.Union("MKNOD3res", nfsv3.ReadMknod3res),
	xdrtest.Union("REMOVE3res", nfsv3.ReadRemove3res),
	xdrtest.Union("RMDIR3res", nfsv3.ReadRmdir3res),
	xdrtest.Union("RENAME3res", nfsv3.ReadRename3res),
	xdrtest.Union("LINK3res", nfsv3.ReadLink3res),
	xdrtest.Union("READDIR3res", nfsv3.ReadReaddir3res),
	xdrtest.Union("READDIRPLUS3res", nfsv3.ReadReaddirplus3res),
	xdrtest.Union("FSSTAT3res", nfsv3.ReadFsstat3res),
	xdrtest.Union("FSINFO3res", nfsv3.ReadFsinfo3res),
	xdrtest.Union("PATHCONF3res", nfsv3.ReadPathconf3res),
	xdrtest.Union("COMMIT3res", nfsv3.ReadCommit3res),
}

func sampleWrite() *nfsv3.Write3args {
	return &nfsv3.Write3args{
		File:   nfsv3.NfsFh3{Data: bytes.Repeat([]byte{0xab}, 32)},
		Offset: 1 << 40,
		Count:  5,
		Stable: nfsv3.FILE_SYNC,
		Data:   []byte("hello"),
	}
}

func sampleReaddir() *nfsv3.Readdir3args {
	return &nfsv3.Readdir3args{
		Dir:        nfsv3.NfsFh3{Data: []byte{1, 2, 3}},
		Cookie:     42,
		Cookieverf: [8]byte{1, 2, 3, 4, 5, 6, 7, 8},
		Count:      4096,
	}
}

func sampleCreate() *nfsv3.Create3args {
	return &nfsv3.Create3args{
		Where: nfsv3.Diropargs3{Dir: nfsv3.NfsFh3{Data: []byte{9}}, Name: []byte("caf\xc3\xa9 \xff.txt")},
		How: &nfsv3.Createhow3_GUARDED{ObjAttributes: nfsv3.Sattr3{
			Mode:  &nfsv3.SetMode3_TRUE{Mode: 0o644},
			Uid:   &nfsv3.SetUid3_default{},
			Gid:   &nfsv3.SetGid3_default{},
			Size:  &nfsv3.SetSize3_TRUE{Size: 0},
			Atime: &nfsv3.SetAtime_default{SetIt: nfsv3.SET_TO_SERVER_TIME},
			Mtime: &nfsv3.SetMtime_SET_TO_CLIENT_TIME{Mtime: nfsv3.Nfstime3{Seconds: 1, Nseconds: 2}},
		}},
	}
}

func TestArgumentsRoundTrip(t *testing.T) {
	cases := []struct {
		decoder xdrtest.Decoder
		encoded []byte
	}{
		{xdrtest.Struct[nfsv3.Write3args]("WRITE3args"), xdrtest.Encode(t, sampleWrite())},
		{xdrtest.Struct[nfsv3.Readdir3args]("READDIR3args"), xdrtest.Encode(t, sampleReaddir())},
		{xdrtest.Struct[nfsv3.Create3args]("CREATE3args"), xdrtest.Encode(t, sampleCreate())},
	}
	for _, c := range cases {
		t.Run(c.decoder.Name, func(t *testing.T) {
			xdrtest.CheckTruncations(t, c.decoder, c.encoded)
			xdrtest.CheckRoundTrip(t, c.decoder, c.encoded)
		})
	}
}

func TestFileNamesAreBytes(t *testing.T) {
	// File names are opaque on the wire: bytes that are not ASCII, or
	// not even UTF-8, reach the server unchanged.
	enc := xdrtest.Encode(t, sampleCreate())
	var got nfsv3.Create3args
	if _, err := got.ReadFrom(bytes.NewReader(enc)); err != nil {
		t.Fatal(err)
	}
	if want := "caf\xc3\xa9 \xff.txt"; string(got.Where.Name) != want {
		t.Fatalf("name = %q, want %q", got.Where.Name, want)
	}
}

func TestWriteDataLongerThanRecordIsRejected(t *testing.T) {
	// A length prefix far beyond the input must fail, not allocate it.
	enc := xdrtest.Encode(t, sampleWrite())
	enc[len(enc)-12] = 0x7f // the data length's high byte
	var w nfsv3.Write3args
	if _, err := w.ReadFrom(bytes.NewReader(enc)); err == nil {
		t.Fatal("WRITE3args with a 2 GiB data length decoded from a short input")
	}
}

func FuzzDecode(f *testing.F) {
	xdrtest.Fuzz(f, decoders,
		xdrtest.Encode(f, sampleWrite()),
		xdrtest.Encode(f, sampleReaddir()),
		xdrtest.Encode(f, sampleCreate()))
}
