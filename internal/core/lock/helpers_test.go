package lock

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// manualClock fires timers only when Advance is called, so break timeouts are
// tested without sleeping.
type manualClock struct {
	mu     sync.Mutex
	now    time.Duration
	timers []*manualTimer
}

type manualTimer struct {
	c       *manualClock
	at      time.Duration
	f       func()
	stopped bool
	fired   bool
}

func (c *manualClock) AfterFunc(d time.Duration, f func()) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &manualTimer{c: c, at: c.now + d, f: f}
	c.timers = append(c.timers, t)
	return t
}

func (t *manualTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := !t.stopped && !t.fired
	t.stopped = true
	return was
}

// Advance moves time forward and runs the timers that came due, in order.
func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now += d
	var due []*manualTimer
	for _, t := range c.timers {
		if !t.stopped && !t.fired && t.at <= c.now {
			t.fired = true
			due = append(due, t)
		}
	}
	c.timers = slices.DeleteFunc(c.timers, func(t *manualTimer) bool { return t.fired || t.stopped })
	c.mu.Unlock()
	slices.SortFunc(due, func(a, b *manualTimer) int { return int(a.at - b.at) })
	for _, t := range due {
		t.f()
	}
}

// pending counts armed timers.
func (c *manualClock) pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, t := range c.timers {
		if !t.stopped && !t.fired {
			n++
		}
	}
	return n
}

func owner(client, id string) Owner { return Owner{Client: client, ID: id} }

var (
	ownerA = owner("nlm:hostA", "1")
	ownerB = owner("nlm:hostB", "1")
	ownerC = owner("smb:s1", "open1")
	ownerD = owner("smb:s1", "open2")
)

func posix(o Owner, excl bool, start, end uint64) Lock {
	return Lock{Owner: o, Flavor: POSIX, Exclusive: excl, Start: start, End: end}
}

func mand(o Owner, excl bool, start, end uint64) Lock {
	return Lock{Owner: o, Flavor: Mandatory, Exclusive: excl, Start: start, End: end}
}

// checkInvariants inspects every shard and reports anything the table must
// never contain.
func checkInvariants(t testing.TB, m *Manager) {
	t.Helper()
	for si := range m.shards {
		s := &m.shards[si]
		s.mu.Lock()
		errs := s.invariantErrors()
		s.mu.Unlock()
		for _, e := range errs {
			t.Errorf("shard %d: %s", si, e)
		}
	}
}

// checkShardOf is checkInvariants limited to the shard holding file.
func checkShardOf(t testing.TB, m *Manager, file FileID) {
	t.Helper()
	s := m.shard(file)
	s.mu.Lock()
	errs := s.invariantErrors()
	s.mu.Unlock()
	for _, e := range errs {
		t.Error(e)
	}
	if len(errs) > 0 {
		t.FailNow()
	}
}

func (s *shard) invariantErrors() []string {
	var errs []string
	var total counters
	clients := map[string]map[FileID]struct{}{}
	for id, fs := range s.files {
		total.add(fs.counted, counters{})
		if len(fs.locks)+len(fs.waiters)+len(fs.shares)+len(fs.leases)+len(fs.breaks) == 0 {
			errs = append(errs, fmt.Sprintf("file %d is empty but kept", id))
		}
		if !slices.IsSortedFunc(fs.locks, func(a, b Lock) int {
			switch {
			case a.Start < b.Start:
				return -1
			case a.Start > b.Start:
				return 1
			}
			return 0
		}) {
			errs = append(errs, fmt.Sprintf("file %d: locks not sorted: %v", id, fs.locks))
		}
		for i := range fs.locks {
			a := &fs.locks[i]
			for j := i + 1; j < len(fs.locks); j++ {
				b := &fs.locks[j]
				ov := overlaps(a.Start, a.End, b.Start, b.End)
				switch {
				case !sameOwner(a, b):
					if ov && (a.Exclusive || b.Exclusive) {
						errs = append(errs, fmt.Sprintf("file %d: %s and %s conflict", id, a, b))
					}
				case a.Flavor == POSIX:
					touch := a.End >= b.Start && b.End >= a.Start
					if ov || (touch && a.Exclusive == b.Exclusive) {
						errs = append(errs, fmt.Sprintf("file %d: same-owner POSIX locks %s and %s not merged", id, a, b))
					}
				default:
					if ov && a.Exclusive && b.Exclusive {
						errs = append(errs, fmt.Sprintf("file %d: same-owner exclusive locks %s and %s overlap", id, a, b))
					}
				}
			}
		}
		for i, w := range fs.waiters {
			if w.over {
				errs = append(errs, fmt.Sprintf("file %d: finished waiter %s still queued", id, w.lock))
			}
			if _, _, blocked := fs.blocker(&w.lock, i); !blocked {
				errs = append(errs, fmt.Sprintf("file %d: waiter %s is grantable but queued", id, w.lock))
			}
		}
		writers := 0
		for _, l := range fs.leases {
			if !l.state.valid() || l.state == LeaseNone {
				errs = append(errs, fmt.Sprintf("file %d: lease %v in state %s", id, l.key, l.state))
			}
			if l.state&LeaseWrite != 0 {
				writers++
			}
			if l.breaking != (l.timer != nil) {
				errs = append(errs, fmt.Sprintf("file %d: lease %v breaking=%v with timer=%v", id, l.key, l.breaking, l.timer != nil))
			}
		}
		if writers > 0 && len(fs.leases) > 1 {
			errs = append(errs, fmt.Sprintf("file %d: a write lease coexists with %d other leases", id, len(fs.leases)-1))
		}
		for cl := range fs.clients {
			if clients[cl] == nil {
				clients[cl] = map[FileID]struct{}{}
			}
			clients[cl][id] = struct{}{}
		}
	}
	if total != s.total {
		errs = append(errs, fmt.Sprintf("counters %+v, files add up to %+v", s.total, total))
	}
	if len(clients) != len(s.byClient) {
		errs = append(errs, fmt.Sprintf("client index has %d clients, files name %d", len(s.byClient), len(clients)))
	}
	for cl, files := range s.byClient {
		if len(files) != len(clients[cl]) {
			errs = append(errs, fmt.Sprintf("client %q indexed on %d files, present on %d", cl, len(files), len(clients[cl])))
		}
	}
	return errs
}

// recv waits for a value that the code under test must send; the generous
// bound only turns a hang into a failure.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// quiet reports whether nothing has arrived on ch right now.
func quiet[T any](ch <-chan T) bool {
	select {
	case <-ch:
		return false
	default:
		return true
	}
}

// waitFor polls cond until it holds; used to know that a goroutine under test
// has reached a blocking point. The bound only turns a hang into a failure.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(time.Millisecond)
	}
}
