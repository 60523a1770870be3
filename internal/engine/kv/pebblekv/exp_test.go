package pebblekv

import (
	"fmt"
	"testing"

	"github.com/claudefs/cfs-gateway/internal/engine/kv/kvtest"
)

func BenchmarkExp(b *testing.B) {
	for _, mt := range []uint64{8 << 20, 16 << 20, 32 << 20, 64 << 20} {
		b.Run(fmt.Sprintf("mt=%dMiB", mt>>20), func(b *testing.B) {
			s := openTemp(b, Options{MemTableSize: mt})
			defer s.Close()
			kvtest.BenchUpdateSmall(b, s, 16)
		})
	}
}
