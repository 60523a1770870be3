package pebblekv

import (
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
)

var useGroupSyncer = false
var syncerYield = false

type syncRound struct {
	done    chan struct{}
	err     error
	waiters int
}

type groupSyncer struct {
	db      *pebble.DB
	mu      sync.Mutex
	cond    sync.Cond
	next    *syncRound
	closing bool
	applied atomic.Uint64
	durable atomic.Uint64
	stopped chan struct{}
	rounds  atomic.Uint64
}

func newGroupSyncer(db *pebble.DB) *groupSyncer {
	g := &groupSyncer{db: db, stopped: make(chan struct{})}
	g.cond.L = &g.mu
	go g.loop()
	return g
}

func (g *groupSyncer) wait(seq uint64) error {
	if g.durable.Load() >= seq {
		return nil
	}
	g.mu.Lock()
	r := g.next
	if r == nil {
		r = &syncRound{done: make(chan struct{})}
		g.next = r
		g.cond.Signal()
	}
	r.waiters++
	g.mu.Unlock()
	<-r.done
	return r.err
}

func (g *groupSyncer) loop() {
	defer close(g.stopped)
	for {
		g.mu.Lock()
		for g.next == nil && !g.closing {
			g.cond.Wait()
		}
		if g.next == nil {
			g.mu.Unlock()
			return
		}
		if syncerYield {
			for i := 0; i < 4; i++ {
				n := g.next.waiters
				g.mu.Unlock()
				runtime.Gosched()
				g.mu.Lock()
				if g.next.waiters == n {
					break
				}
			}
		}
		r := g.next
		g.next = nil
		target := g.applied.Load()
		g.mu.Unlock()
		err := g.db.LogData(nil, pebble.Sync)
		if err == nil {
			g.durable.Store(target)
		}
		g.rounds.Add(1)
		r.err = err
		close(r.done)
	}
}

func (g *groupSyncer) close() {
	g.mu.Lock()
	g.closing = true
	g.cond.Signal()
	g.mu.Unlock()
	<-g.stopped
}
