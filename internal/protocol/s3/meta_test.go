package s3

import (
	"testing"
	"time"

	"github.com/claudefs/cfs-gateway/internal/core"
)

func TestEtagRecord(t *testing.T) {
	mtime := time.Unix(1700000000, 123456789)
	file := &core.Attr{Ino: 7, Type: core.TypeRegular, Size: 42, Mtime: mtime}
	dir := &core.Attr{Ino: 8, Type: core.TypeDir, Size: 4096, Mtime: mtime}
	fileDerived := `"` + derivedETag(file) + `"`
	dirDerived := `"` + derivedETag(dir) + `"`
	tests := []struct {
		name  string
		attr  *core.Attr
		rec   string
		valid bool
		etag  string
		size  int64
	}{
		{"file record", file, string(etagRecord("abc", file)), true, `"abc"`, 42},
		{"multipart etag", file, "0123-2 1700000000123456789 42", true, `"0123-2"`, 42},
		{"mtime changed", file, "abc 1700000000123456788 42", false, fileDerived, 42},
		{"size changed", file, "abc 1700000000123456789 43", false, fileDerived, 42},
		{"signed stamp", file, "abc +1700000000123456789 42", false, fileDerived, 42},
		{"padded size", file, "abc 1700000000123456789 042", false, fileDerived, 42},
		{"marker record", dir, string(markerRecord("def", 5)), true, `"def"`, 5},
		{"marker of a file", file, "def dir 5", false, fileDerived, 42},
		{"marker bad size", dir, "def dir x", true, `"def"`, 0},
		{"marker negative size", dir, "def dir -3", true, `"def"`, -3},
		{"file record on a dir", dir, "abc 1700000000123456789 4096", true, `"abc"`, 0},
		{"absent", file, "", false, fileDerived, 42},
		{"absent on a dir", dir, "", false, dirDerived, 0},
		{"two fields", dir, "def dir", false, dirDerived, 0},
		{"four fields", dir, "def dir 5 6", false, dirDerived, 0},
		{"double space", dir, "def  dir 5", false, dirDerived, 0},
		{"leading space", dir, " def dir 5", false, dirDerived, 0},
		{"trailing space", dir, "def dir 5 ", false, dirDerived, 0},
		{"tab separated", dir, "def\tdir\t5", false, dirDerived, 0},
		{"empty etag", dir, " dir 5", false, dirDerived, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := []byte(tt.rec)
			if tt.rec == "" {
				rec = nil
			}
			if got := metaValid(tt.attr, rec); got != tt.valid {
				t.Errorf("metaValid = %v, want %v", got, tt.valid)
			}
			if got := etagOf(tt.attr, rec); got != tt.etag {
				t.Errorf("etagOf = %s, want %s", got, tt.etag)
			}
			if got := objectSize(tt.attr, rec); got != tt.size {
				t.Errorf("objectSize = %d, want %d", got, tt.size)
			}
			if string(rec) != tt.rec {
				t.Errorf("record changed to %q", rec)
			}
		})
	}
}

func TestParseEtagRecord(t *testing.T) {
	tests := []struct {
		rec               string
		ok                bool
		etag, stamp, size string
	}{
		{"a b c", true, "a", "b", "c"},
		{"abc dir 0", true, "abc", "dir", "0"},
		{"a b", false, "", "", ""},
		{"a b c d", false, "", "", ""},
		{"a  c", false, "", "", ""},
		{"a b ", false, "", "", ""},
		{"", false, "", "", ""},
		{"é ü 日", true, "é", "ü", "日"},
	}
	for _, tt := range tests {
		etag, stamp, size, ok := parseEtagRecord([]byte(tt.rec))
		if ok != tt.ok || string(etag) != tt.etag || string(stamp) != tt.stamp || string(size) != tt.size {
			t.Errorf("parseEtagRecord(%q) = %q %q %q %v, want %q %q %q %v", tt.rec, etag, stamp, size, ok,
				tt.etag, tt.stamp, tt.size, tt.ok)
		}
	}
}

// TestMetaValidDoesNotAllocate guards the listing path: every key of a
// page has its record checked.
func TestMetaValidDoesNotAllocate(t *testing.T) {
	a := &core.Attr{Type: core.TypeRegular, Size: 42, Mtime: time.Unix(1700000000, 5)}
	rec := etagRecord("abc", a)
	if n := testing.AllocsPerRun(100, func() {
		if !metaValid(a, rec) {
			t.Fatal("record does not describe its file")
		}
	}); n != 0 {
		t.Fatalf("metaValid allocates %v times", n)
	}
}

func FuzzParseEtagRecord(f *testing.F) {
	f.Add([]byte("abc 1700000000123456789 42"))
	f.Add([]byte("def dir 5"))
	f.Add([]byte("  "))
	f.Fuzz(func(t *testing.T, rec []byte) {
		etag, stamp, size, ok := parseEtagRecord(rec)
		if !ok {
			return
		}
		if string(etag)+" "+string(stamp)+" "+string(size) != string(rec) {
			t.Fatalf("fields %q %q %q do not make up %q", etag, stamp, size, rec)
		}
		a := &core.Attr{Type: core.TypeDir}
		metaValid(a, rec)
		objectSize(a, rec)
	})
}

func BenchmarkEtagOf(b *testing.B) {
	a := &core.Attr{Type: core.TypeRegular, Size: 4096, Mtime: time.Unix(1700000000, 123456789)}
	rec := etagRecord("0123456789abcdef0123456789abcdef", a)
	b.ReportAllocs()
	for b.Loop() {
		etagOf(a, rec)
	}
}
