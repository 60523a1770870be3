package mountv3_test

import (
	"io"
	"testing"

	"github.com/claudefs/cfs-gateway/internal/protocol/xdr/mountv3"
	"github.com/claudefs/cfs-gateway/internal/protocol/xdr/xdrtest"
)

func dirpathDecoder() xdrtest.Decoder {
	return xdrtest.Func("dirpath", mountv3.ReadDirpath, mountv3.WriteDirpath)
}

var decoders = []xdrtest.Decoder{
	dirpathDecoder(),
	xdrtest.Union("mountres3", mountv3.ReadMountres3),
	xdrtest.Func("mountlist", mountv3.ReadMountlist, mountv3.WriteMountlist),
	xdrtest.Func("exports", mountv3.ReadExports, mountv3.WriteExports),
}

func TestExportsRoundTrip(t *testing.T) {
	exports := &mountv3.Exportnode{
		ExDir:    []byte("/export/données"),
		ExGroups: &mountv3.Groupnode{GrName: "10.0.0.0/8", GrNext: &mountv3.Groupnode{GrName: "*"}},
		ExNext:   &mountv3.Exportnode{ExDir: []byte("/scratch")},
	}
	enc := xdrtest.EncodeFunc(t, func(w io.Writer) (int64, error) { return mountv3.WriteExports(w, exports) })
	d := xdrtest.Func("exports", mountv3.ReadExports, mountv3.WriteExports)
	xdrtest.CheckTruncations(t, d, enc)
	xdrtest.CheckRoundTrip(t, d, enc)

	mnt := &mountv3.Mountres3_MNT3_OK{Mountinfo: mountv3.Mountres3Ok{Fhandle: make([]byte, 64), AuthFlavors: []int32{1, 0}}}
	xdrtest.CheckTruncations(t, xdrtest.Union("mountres3", mountv3.ReadMountres3), xdrtest.Encode(t, mnt))
}

func TestDirpathLimit(t *testing.T) {
	long := make([]byte, mountv3.MNTPATHLEN+1)
	enc := xdrtest.EncodeFunc(t, func(w io.Writer) (int64, error) {
		return mountv3.WriteDirpath(w, long[:mountv3.MNTPATHLEN])
	})
	xdrtest.CheckTruncations(t, dirpathDecoder(), enc)
	if _, err := mountv3.WriteDirpath(io.Discard, long); err == nil {
		t.Fatalf("a dirpath of %d bytes was encoded; the limit is %d", len(long), mountv3.MNTPATHLEN)
	}
}

func FuzzDecode(f *testing.F) {
	xdrtest.Fuzz(f, decoders)
}
