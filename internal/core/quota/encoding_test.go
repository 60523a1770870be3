package quota

import (
	"bytes"
	"math"
	"testing"
	"time"
)

func TestUsageRoundTrip(t *testing.T) {
	tests := []Usage{
		{},
		{Bytes: 1, Inodes: 1},
		{Bytes: 12 << 30, Inodes: 12000, BytesSoftSince: 1709283600000000000},
		{Bytes: math.MaxInt64, Inodes: math.MaxInt64, BytesSoftSince: math.MaxInt64, InodesSoftSince: math.MaxInt64},
		{Bytes: -5, Inodes: math.MinInt64}, // encodable, so a drifted record survives a rewrite
	}
	for _, u := range tests {
		b := AppendUsage([]byte("prefix"), u)
		if !bytes.HasPrefix(b, []byte("prefix")) {
			t.Fatalf("AppendUsage overwrote dst")
		}
		got, err := DecodeUsage(b[len("prefix"):])
		if err != nil {
			t.Fatalf("DecodeUsage(AppendUsage(%+v)): %v", u, err)
		}
		if got != u {
			t.Errorf("round trip %+v -> %+v", u, got)
		}
	}
	if n := len(AppendUsage(nil, Usage{Bytes: 1 << 30, Inodes: 1000})); n > 10 {
		t.Errorf("a typical usage record takes %d bytes", n)
	}
}

func TestLimitsRoundTrip(t *testing.T) {
	tests := []Limits{
		{},
		guideDefaults.User,
		guideDefaults.Group,
		{BytesSoft: math.MaxUint64, BytesHard: math.MaxUint64, InodesSoft: math.MaxUint64, InodesHard: math.MaxUint64},
	}
	for _, l := range tests {
		got, err := DecodeLimits(AppendLimits(nil, l))
		if err != nil {
			t.Fatalf("DecodeLimits(AppendLimits(%+v)): %v", l, err)
		}
		if got != l {
			t.Errorf("round trip %+v -> %+v", l, got)
		}
	}
}

func TestDecodeMalformed(t *testing.T) {
	usage := AppendUsage(nil, Usage{Bytes: 300, Inodes: 2, BytesSoftSince: 7})
	limits := AppendLimits(nil, guideDefaults.User)
	tests := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"version only", []byte{1}},
		{"unknown version", append([]byte{2}, usage[1:]...)},
		{"truncated", usage[:len(usage)-1]},
		{"trailing byte", append(append([]byte{}, usage...), 0)},
		{"overlong varint", append([]byte{1}, bytes.Repeat([]byte{0xff}, 11)...)},
	}
	for _, tt := range tests {
		t.Run("usage/"+tt.name, func(t *testing.T) {
			if u, err := DecodeUsage(tt.in); err == nil {
				t.Errorf("DecodeUsage(%x) = %+v, want an error", tt.in, u)
			}
		})
	}
	ltests := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"unknown version", append([]byte{0}, limits[1:]...)},
		{"truncated", limits[:len(limits)-1]},
		{"trailing byte", append(append([]byte{}, limits...), 1)},
		{"overflowing uvarint", append([]byte{1}, bytes.Repeat([]byte{0xff}, 10)...)},
	}
	for _, tt := range ltests {
		t.Run("limits/"+tt.name, func(t *testing.T) {
			if l, err := DecodeLimits(tt.in); err == nil {
				t.Errorf("DecodeLimits(%x) = %+v, want an error", tt.in, l)
			}
		})
	}
}

func FuzzDecodeUsage(f *testing.F) {
	f.Add(AppendUsage(nil, Usage{}))
	f.Add(AppendUsage(nil, Usage{Bytes: 1 << 40, Inodes: 77, BytesSoftSince: 1, InodesSoftSince: -1}))
	f.Add([]byte{1, 0x80})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		u, err := DecodeUsage(b)
		if err != nil {
			return
		}
		again, err := DecodeUsage(AppendUsage(nil, u))
		if err != nil || again != u {
			t.Fatalf("re-encoding %+v gives %+v, %v", u, again, err)
		}
	})
}

func FuzzDecodeLimits(f *testing.F) {
	f.Add(AppendLimits(nil, Limits{}))
	f.Add(AppendLimits(nil, guideDefaults.User))
	f.Add([]byte{1, 0xff, 0xff})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := DecodeLimits(b)
		if err != nil {
			return
		}
		again, err := DecodeLimits(AppendLimits(nil, l))
		if err != nil || again != l {
			t.Fatalf("re-encoding %+v gives %+v, %v", l, again, err)
		}
	})
}

// FuzzCharge checks the invariants of Charge on arbitrary input: no panic,
// usage never negative after a successful charge, a refused charge returns
// its input, and no accepted increase ends above a hard limit.
func FuzzCharge(f *testing.F) {
	f.Add(int64(90), int64(5), uint64(100), uint64(200), int64(20), int64(1), int64(0), int64(3600))
	f.Add(int64(150), int64(0), uint64(100), uint64(0), int64(1), int64(0), int64(1), int64(0))
	f.Fuzz(func(t *testing.T, used, inodes int64, soft, hard uint64, dBytes, dInodes, since, graceSecs int64) {
		u := Usage{Bytes: used, Inodes: inodes, BytesSoftSince: since}
		lim := Limits{BytesSoft: soft, BytesHard: hard, InodesSoft: soft / 2, InodesHard: hard / 2}
		got, _, err := Charge(u, lim, dBytes, dInodes, t0, secondsToDuration(graceSecs))
		if err != nil {
			if got != u {
				t.Fatalf("refused charge changed usage: %+v -> %+v", u, got)
			}
			return
		}
		if got.Bytes < 0 || got.Inodes < 0 {
			t.Fatalf("negative usage %+v", got)
		}
		if dBytes > 0 && hard != 0 && uint64(got.Bytes) > hard {
			t.Fatalf("accepted +%d to %d bytes above hard %d", dBytes, got.Bytes, hard)
		}
	})
}

func secondsToDuration(s int64) (d time.Duration) {
	if s > math.MaxInt64/int64(time.Second) || s < 0 {
		return 0
	}
	return time.Duration(s) * time.Second
}
