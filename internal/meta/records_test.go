package meta

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

func TestRecordRoundTrips(t *testing.T) {
	tests := []struct {
		name   string
		encode func() []byte
		decode func([]byte) (any, error)
		want   any
		// open records end in a name that runs to the end of the value:
		// a shorter name is another valid record.
		open bool
	}{
		{"inode", func() []byte {
			return AppendInode(nil, &Inode{Type: 2, Mode: 0o1777, Nlink: 3, UID: 1, GID: 2, Size: 1 << 40, Rdev: 5<<32 | 1,
				Atime: -1, Mtime: 2, Ctime: 3, Btime: 4, Gen: 9, ChangeID: 10, Parent: 1, Verf: 77, Flags: 1, Target: "a/b"})
		}, func(b []byte) (any, error) { return DecodeInode(b) },
			&Inode{Type: 2, Mode: 0o1777, Nlink: 3, UID: 1, GID: 2, Size: 1 << 40, Rdev: 5<<32 | 1,
				Atime: -1, Mtime: 2, Ctime: 3, Btime: 4, Gen: 9, ChangeID: 10, Parent: 1, Verf: 77, Flags: 1, Target: "a/b"}, false},
		{"dentry", func() []byte { return AppendDentry(nil, Dentry{Ino: 7, Type: 1, Cookie: 1 << 50}) },
			func(b []byte) (any, error) { return DecodeDentry(b) }, Dentry{Ino: 7, Type: 1, Cookie: 1 << 50}, false},
		{"dir times", func() []byte { return AppendDirTimes(nil, DirTimes{Mtime: 1, Ctime: -2, ChangeID: 3}) },
			func(b []byte) (any, error) { return DecodeDirTimes(b) }, DirTimes{Mtime: 1, Ctime: -2, ChangeID: 3}, false},
		{"slice ref", func() []byte { return AppendSliceRef(nil, SliceRef{Refs: 2, Size: 4 << 20}) },
			func(b []byte) (any, error) { return DecodeSliceRef(b) }, SliceRef{Refs: 2, Size: 4 << 20}, false},
		{"usage counter", func() []byte { return AppendUsageDelta(nil, UsageDelta{Bytes: -5, Inodes: 1 << 40}) },
			func(b []byte) (any, error) { return DecodeUsageDelta(b) }, UsageDelta{Bytes: -5, Inodes: 1 << 40}, false},
		{"info", func() []byte { return AppendInfo(nil, Info{FSID: 42, Created: 7}) },
			func(b []byte) (any, error) { return DecodeInfo(b) }, Info{FSID: 42, Created: 7}, false},
		{"readdir entry", func() []byte { return AppendCookieEntry(nil, CookieEntry{Ino: 3, Type: 2, Name: "x y"}) },
			func(b []byte) (any, error) { return DecodeCookieEntry(b) }, CookieEntry{Ino: 3, Type: 2, Name: "x y"}, true},
		{"release", func() []byte { return AppendRelease(nil, Release{Due: 99, IDs: []uint64{1, 1 << 60, 3}}) },
			func(b []byte) (any, error) { return DecodeRelease(b) }, Release{Due: 99, IDs: []uint64{1, 1 << 60, 3}}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.encode()
			got, err := tc.decode(b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			// Every strict prefix is rejected, never misread.
			last := len(b)
			if tc.open {
				last -= 2
			}
			for n := 0; n < last; n++ {
				if _, err := tc.decode(b[:n]); !errors.Is(err, ErrCorrupt) {
					t.Fatalf("prefix of %d bytes: err %v, want ErrCorrupt", n, err)
				}
			}
		})
	}
}

func TestKeysSortAndParse(t *testing.T) {
	if bytes.Compare(CookieKey(5, 255), CookieKey(5, 256)) >= 0 {
		t.Fatal("cookie keys do not sort numerically")
	}
	if bytes.Compare(ChunkKey(5, 1), ChunkKey(6, 0)) >= 0 || ChunkIndex(ChunkKey(9, 77)) != 77 {
		t.Fatal("chunk keys")
	}
	if due, id, ok := ParseDeleteKey(DeleteKey(100, 7)); !ok || due != 100 || id != 7 {
		t.Fatal("delete key does not parse back")
	}
	if kind, id, shard, ok := ParseUsageKey(UsageShardKey(QuotaGroup, 12, 3)); !ok || kind != QuotaGroup || id != 12 || !shard {
		t.Fatal("usage shard key does not parse back")
	}
	if _, _, shard, ok := ParseUsageKey(UsageKey(QuotaUser, 1)); !ok || shard {
		t.Fatal("usage state key does not parse back")
	}
	if CookieOf(CookieKey(3, 1<<40)) != 1<<40 {
		t.Fatal("cookie of key")
	}
}

// The decoders read bytes from the metadata store: whatever they are given,
// they return a record or ErrCorrupt, never panic.
func FuzzDecodeRecords(f *testing.F) {
	f.Add(AppendInode(nil, &Inode{Type: 1, Target: "t"}))
	f.Add(AppendRelease(nil, Release{Due: 1, IDs: []uint64{2, 3}}))
	f.Add(AppendDentry(nil, Dentry{Ino: 1}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		decoders := []func([]byte) error{
			func(b []byte) error { _, err := DecodeInode(b); return err },
			func(b []byte) error { _, err := DecodeDentry(b); return err },
			func(b []byte) error { _, err := DecodeDirTimes(b); return err },
			func(b []byte) error { _, err := DecodeSliceRef(b); return err },
			func(b []byte) error { _, err := DecodeUsageDelta(b); return err },
			func(b []byte) error { _, err := DecodeInfo(b); return err },
			func(b []byte) error { _, err := DecodeCookieEntry(b); return err },
			func(b []byte) error { _, err := DecodeRelease(b); return err },
			func(b []byte) error { _, err := DecodeU64(b); return err },
		}
		for _, d := range decoders {
			if err := d(b); err != nil && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("decoder error %v is not ErrCorrupt", err)
			}
		}
	})
}
