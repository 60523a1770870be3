package pebblekv

import (
	"testing"

	"github.com/claudefs/cfs-gateway/internal/engine/kv"
	"github.com/claudefs/cfs-gateway/internal/engine/kv/kvtest"
)

func BenchmarkExp(b *testing.B) {
	for _, mode := range []string{"pebble", "group", "groupyield"} {
		b.Run(mode, func(b *testing.B) {
			useGroupSyncer = mode != "pebble"
			syncerYield = mode == "groupyield"
			s := openTemp(b, Options{})
			defer s.Close()
			kvtest.BenchUpdateSmall(b, s, 16)
			if s.gs != nil {
				b.ReportMetric(float64(s.commits.Load())/float64(s.gs.rounds.Load()), "txn/sync")
			}
		})
	}
}

func TestConformanceGroup(t *testing.T) {
	useGroupSyncer = true
	defer func() { useGroupSyncer = false }()
	kvtest.Run(t, func(t *testing.T) kv.Store { return openTemp(t, Options{}) })
}
