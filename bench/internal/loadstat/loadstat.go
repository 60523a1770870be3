// Package loadstat holds what the project's load clients (bench/nfsload,
// bench/s3load) share: size flags and latency percentiles. It must not
// speak any protocol.
package loadstat

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ByteSize is a flag of a size with an optional k, m or g suffix (powers
// of two).
type ByteSize int64

func (b *ByteSize) String() string { return strconv.FormatInt(int64(*b), 10) }

// Set parses s with ParseSize.
func (b *ByteSize) Set(s string) error {
	v, err := ParseSize(s)
	if err != nil {
		return err
	}
	*b = ByteSize(v)
	return nil
}

// ParseSize parses a number of bytes with an optional k, m or g suffix, up
// to 1 TiB.
func ParseSize(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	shift := 0
	if n := len(t); n > 0 {
		switch t[n-1] {
		case 'k':
			shift = 10
		case 'm':
			shift = 20
		case 'g':
			shift = 30
		}
		if shift > 0 {
			t = t[:n-1]
		}
	}
	v, err := strconv.ParseInt(t, 10, 64)
	if err != nil || v < 0 || v > (1<<40)>>shift {
		return 0, fmt.Errorf("size %q: want a number of bytes with an optional k, m or g suffix", s)
	}
	return v << shift, nil
}

// Percentiles returns the qs-quantiles of ds (nearest rank), sorting ds.
func Percentiles(ds []time.Duration, qs ...float64) []time.Duration {
	out := make([]time.Duration, len(qs))
	if len(ds) == 0 {
		return out
	}
	slices.Sort(ds)
	for i, q := range qs {
		k := int(q*float64(len(ds))+0.999999) - 1
		out[i] = ds[min(max(k, 0), len(ds)-1)]
	}
	return out
}
