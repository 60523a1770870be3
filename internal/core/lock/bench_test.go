package lock

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
)

func BenchmarkLockUnlockPOSIX(b *testing.B) {
	m := New(Options{})
	ctx := context.Background()
	l := posix(ownerA, true, 0, 4096)
	for b.Loop() {
		if err := m.Lock(ctx, file1, l, false); err != nil {
			b.Fatal(err)
		}
		if err := m.Unlock(file1, l); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLockUnlockMandatory(b *testing.B) {
	m := New(Options{})
	ctx := context.Background()
	l := mand(ownerC, true, 0, 4096)
	for b.Loop() {
		if err := m.Lock(ctx, file1, l, false); err != nil {
			b.Fatal(err)
		}
		if err := m.Unlock(file1, l); err != nil {
			b.Fatal(err)
		}
	}
}

// Each goroutine locks its own files: shows how shards keep files apart.
func BenchmarkLockUnlockParallelFiles(b *testing.B) {
	m := New(Options{})
	ctx := context.Background()
	var next atomic.Uint64
	b.RunParallel(func(pb *testing.PB) {
		base := next.Add(1) * 1000
		o := Owner{Client: "nlm:bench", ID: fmt.Sprint(base)}
		i := uint64(0)
		for pb.Next() {
			f := FileID(base + i%16)
			i++
			l := posix(o, true, 0, ToEOF)
			if err := m.Lock(ctx, f, l, false); err != nil {
				b.Fatal(err)
			}
			if err := m.Unlock(f, l); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// One file with many other owners' locks: every request scans them.
func BenchmarkLockUnlockCrowdedFile(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			m := New(Options{})
			ctx := context.Background()
			for i := range n {
				o := Owner{Client: "smb:bench", ID: fmt.Sprint(i)}
				if err := m.Lock(ctx, file1, mand(o, true, uint64(i)*10, uint64(i)*10+5), false); err != nil {
					b.Fatal(err)
				}
			}
			l := mand(ownerD, true, uint64(n)*10, uint64(n)*10+5)
			for b.Loop() {
				if err := m.Lock(ctx, file1, l, false); err != nil {
					b.Fatal(err)
				}
				if err := m.Unlock(file1, l); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// The I/O path of every protocol when nothing is locked.
func BenchmarkCheckIOUnlocked(b *testing.B) {
	m := New(Options{})
	for b.Loop() {
		if err := m.CheckIO(file1, ownerA, 0, 65536, true); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCheckIOWith100Locks(b *testing.B) {
	m := New(Options{})
	ctx := context.Background()
	for i := range 100 {
		o := Owner{Client: "smb:bench", ID: fmt.Sprint(i)}
		if err := m.Lock(ctx, file1, mand(o, false, uint64(i)*100, uint64(i)*100+50), false); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		if err := m.CheckIO(file1, ownerA, 20000, 4096, false); err != nil {
			b.Fatal(err)
		}
	}
}

// The write path of NFSv3 and S3 when the file has no lease.
func BenchmarkBreakNoLeases(b *testing.B) {
	m := New(Options{})
	ctx := context.Background()
	for b.Loop() {
		if err := m.Break(ctx, file1, LeaseKey{}, AccessWrite); err != nil {
			b.Fatal(err)
		}
	}
}

// A write by the lease holder itself: nothing to break, but the leases are
// inspected.
func BenchmarkBreakOwnLease(b *testing.B) {
	m := New(Options{})
	ctx := context.Background()
	if _, err := m.Grant(file1, LeaseRequest{Key: keyA, State: RWH, OnBreak: func(LeaseBreak) {}}); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := m.Break(ctx, file1, keyA, AccessWrite); err != nil {
			b.Fatal(err)
		}
	}
}

// A full break round trip: grant, break with an immediate acknowledgement.
func BenchmarkBreakAcknowledged(b *testing.B) {
	m := New(Options{})
	ctx := context.Background()
	req := LeaseRequest{Key: keyA, State: RWH}
	req.OnBreak = func(lb LeaseBreak) {
		if err := m.Acknowledge(lb.File, lb.Key, lb.To); err != nil {
			b.Error(err)
		}
	}
	for b.Loop() {
		if _, err := m.Grant(file1, req); err != nil {
			b.Fatal(err)
		}
		if err := m.Break(ctx, file1, keyB, AccessWrite); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpenCloseShare(b *testing.B) {
	m := New(Options{})
	if _, err := m.OpenShare(file1, ShareRequest{Owner: ownerC, Access: OpenRead, Deny: OpenWrite}); err != nil {
		b.Fatal(err)
	}
	req := ShareRequest{Owner: ownerD, Access: OpenRead}
	for b.Loop() {
		h, err := m.OpenShare(file1, req)
		if err != nil {
			b.Fatal(err)
		}
		if err := m.CloseShare(h); err != nil {
			b.Fatal(err)
		}
	}
}
