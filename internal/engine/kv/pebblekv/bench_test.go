package pebblekv

import (
	"testing"

	"github.com/claudefs/cfs-gateway/internal/engine/kv"
	"github.com/claudefs/cfs-gateway/internal/engine/kv/kvtest"
)

func BenchmarkStore(b *testing.B) {
	kvtest.Bench(b, func(b *testing.B) kv.Store { return openTemp(b, Options{}) })
}
