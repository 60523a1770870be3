package pebblekv

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/claudefs/cfs-gateway/internal/engine/kv"
	"github.com/claudefs/cfs-gateway/internal/engine/kv/kvtest"
)

func BenchmarkStore(b *testing.B) {
	kvtest.Bench(b, func(b *testing.B) kv.Store { return openTemp(b, Options{}) })
}

// BenchmarkGetsFromTables is kvtest's Get100 and GetMany100 with the keys
// in several flushed tables rather than in the memtable, the state of a
// directory filled over time: each point Get then builds an iterator over
// every table.
func BenchmarkGetsFromTables(b *testing.B) {
	for _, batched := range []bool{false, true} {
		b.Run(fmt.Sprintf("batched=%v", batched), func(b *testing.B) {
			s := openTemp(b, Options{})
			b.Cleanup(func() { _ = s.Close() })
			ctx := context.Background()
			const keys, perTable = 4096, 128
			for base := 0; base < keys; base += perTable {
				err := s.Update(ctx, func(tx kv.Txn) error {
					for i := base; i < base+perTable; i++ {
						tx.Put(fmt.Appendf(nil, "t/%05d", i), make([]byte, 100))
					}
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
				if err := s.db.Flush(); err != nil {
					b.Fatal(err)
				}
			}
			// A page of a listing: consecutive entries, a tenth missing.
			read := make([][]byte, 100)
			for i := range read {
				read[i] = fmt.Appendf(nil, "t/%05d", 1000+i*11/10)
				if i%10 == 9 {
					read[i] = append(read[i], 'x')
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				err := s.View(ctx, func(r kv.Reader) error {
					if batched {
						_, err := kv.GetMany(ctx, r, read)
						return err
					}
					for _, k := range read {
						if _, err := r.Get(ctx, k); err != nil && !errors.Is(err, kv.ErrNotFound) {
							return err
						}
					}
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
