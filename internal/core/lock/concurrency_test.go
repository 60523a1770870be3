package lock

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// occupancy tracks, per byte of a small file, who holds it according to the
// goroutines of the stress test: -1 an exclusive holder, n > 0 that many
// shared holders. A goroutine marks its range after its lock is granted and
// unmarks it before unlocking, so two conflicting grants at once show up as
// a failed mark.
type occupancy [65]atomic.Int32 // bytes 0..63, and 64 for [64, EOF)

func (oc *occupancy) cells(l Lock) (int, int) {
	end := int(min(l.End, 64))
	if l.End > 64 {
		end = 65
	}
	return int(l.Start), end
}

func (oc *occupancy) mark(l Lock) error {
	from, to := oc.cells(l)
	for c := from; c < to; c++ {
		for {
			v := oc[c].Load()
			if v < 0 || (v > 0 && l.Exclusive) {
				return fmt.Errorf("%s granted while byte %d is held (%d)", l, c, v)
			}
			next := v + 1
			if l.Exclusive {
				next = -1
			}
			if oc[c].CompareAndSwap(v, next) {
				break
			}
		}
	}
	return nil
}

func (oc *occupancy) unmark(l Lock) {
	from, to := oc.cells(l)
	for c := from; c < to; c++ {
		if l.Exclusive {
			oc[c].Store(0)
		} else {
			oc[c].Add(-1)
		}
	}
}

func randomLock(rng *rand.Rand, o Owner, flavor Flavor) Lock {
	start := rng.Uint64N(64)
	end := ToEOF
	if rng.IntN(8) != 0 {
		end = start + 1 + rng.Uint64N(64-start)
	}
	return Lock{Owner: o, Flavor: flavor, Exclusive: rng.IntN(3) == 0, Start: start, End: end}
}

// hangGuard bounds waits that must end, so that a lost wake-up fails the
// test instead of hanging it.
const hangGuard = 10 * time.Second

// Many goroutines lock and unlock random ranges of a few files, blocking,
// failing fast, queueing with callbacks and canceling. No two conflicting
// locks may ever be held at once, and everything must drain at the end.
func TestConcurrentLocking(t *testing.T) {
	const (
		workers = 8
		rounds  = 250
		files   = 3
	)
	m := New(Options{})
	var occ [files]occupancy
	var wg sync.WaitGroup
	errs := make(chan error, workers*2)
	for g := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 99))
			o := Owner{Client: fmt.Sprintf("c%d", g%3), ID: fmt.Sprint(g)}
			flavor := POSIX
			if g%2 == 1 {
				flavor = Mandatory
			}
			for range rounds {
				f := rng.IntN(files)
				l := randomLock(rng, o, flavor)
				var err error
				switch rng.IntN(4) {
				case 0:
					err = m.Lock(context.Background(), FileID(f), l, false)
				case 1:
					// The deadline only turns a lost wake-up into a failure.
					ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
					err = m.Lock(ctx, FileID(f), l, true)
					cancel()
					if err != nil {
						errs <- fmt.Errorf("blocking lock %s: %w", l, err)
						return
					}
				case 2:
					ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
					err = m.Lock(ctx, FileID(f), l, true)
					cancel()
				case 3:
					got := make(chan struct{})
					queued, qerr := m.LockOrQueue(FileID(f), l, func(FileID, Lock) { close(got) })
					if qerr != nil {
						errs <- qerr
						return
					}
					if queued {
						if rng.IntN(2) == 0 && m.Cancel(FileID(f), l) {
							continue
						}
						select {
						case <-got:
						case <-time.After(hangGuard):
							errs <- fmt.Errorf("queued lock %s never granted", l)
							return
						}
					}
				}
				if errors.Is(err, ErrConflict) || errors.Is(err, context.DeadlineExceeded) {
					continue
				}
				if err != nil {
					errs <- err
					return
				}
				if err := occ[f].mark(l); err != nil {
					errs <- err
					return
				}
				_ = m.CheckIO(FileID(f), o, l.Start, 10, rng.IntN(2) == 0)
				_, _, _ = m.Test(FileID(f), l)
				runtime.Gosched()
				occ[f].unmark(l)
				if err := m.Unlock(FileID(f), l); err != nil {
					errs <- fmt.Errorf("unlock %s: %w", l, err)
					return
				}
			}
		})
	}
	// A watcher checks the table's invariants while the workers run.
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for {
			select {
			case <-stop:
				return
			default:
			}
			checkInvariants(t, m)
			runtime.Gosched()
		}
	}()
	wg.Wait()
	close(stop)
	<-watched
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	checkInvariants(t, m)
	if s := m.Stats(); s != (Stats{}) {
		t.Fatalf("state left after all unlocks: %+v", s)
	}
}

// Holders acknowledge breaks as they arrive while breakers read and write;
// every Break must return and the lease invariants must hold throughout.
func TestConcurrentLeases(t *testing.T) {
	const (
		holders = 4
		rounds  = 150
	)
	m := New(Options{})
	keys := make([]LeaseKey, holders)
	for i := range keys {
		keys[i] = LeaseKey{Client: fmt.Sprintf("smb:%d", i), Key: "k"}
	}
	onBreak := func(b LeaseBreak) {
		// Some holders acknowledge exactly, some give up everything.
		var err error
		if b.Key == keys[0] {
			err = m.Acknowledge(b.File, b.Key, LeaseNone)
		} else {
			err = m.Acknowledge(b.File, b.Key, b.To)
		}
		// A notice can be stale by the time it is answered: the lease was
		// released, re-granted or broken further meanwhile.
		if err != nil && !errors.Is(err, ErrNoLease) && !errors.Is(err, ErrNotBreaking) && !errors.Is(err, ErrAckTooHigh) {
			t.Errorf("acknowledge %+v: %v", b, err)
		}
	}
	var wg sync.WaitGroup
	for g := range holders {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 5))
			states := []LeaseState{R, RH, RW, RWH}
			kinds := []AccessKind{AccessRead, AccessWrite, AccessHandle, AccessRead | AccessHandle}
			for range rounds {
				f := FileID(rng.IntN(2))
				switch rng.IntN(3) {
				case 0:
					if _, err := m.Grant(f, LeaseRequest{Key: keys[g], State: states[rng.IntN(len(states))], OnBreak: onBreak}); err != nil {
						t.Error(err)
						return
					}
				case 1:
					ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
					err := m.Break(ctx, f, keys[g], kinds[rng.IntN(len(kinds))])
					cancel()
					if err != nil {
						t.Errorf("Break: %v", err)
						return
					}
				case 2:
					m.ReleaseLease(f, keys[g])
				}
			}
		})
	}
	wg.Wait()
	checkInvariants(t, m)
	for _, k := range keys {
		m.ReleaseClient(k.Client)
	}
	if s := m.Stats(); s != (Stats{}) {
		t.Fatalf("state left: %+v", s)
	}
}
