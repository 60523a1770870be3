package oncrpc

import (
	"container/list"
	"hash/crc32"
	"net"
	"net/netip"
	"sync"
)

// The duplicate request cache keeps the replies of recent
// non-idempotent calls (REMOVE, RENAME, CREATE...) so that a client
// that retransmits one, typically after reconnecting because a reply
// was lost, gets the original answer instead of a second execution
// (which would fail with NOENT or EXIST, or worse, succeed twice).
//
// A call is identified by its xid, the client's IP address, the
// program, version and procedure, and a checksum of the arguments. The
// client's port is left out on purpose: a client that reconnects may
// come from another port, and the xid together with the argument
// checksum already tells its calls apart.
type drcKey struct {
	xid              uint32
	prog, vers, proc uint32
	addr             netip.Addr
	addrString       string // for transports without an IP address
	argsLen          int
	argsSum          uint32
}

type drcState uint8

const (
	drcInProgress drcState = iota
	drcDone
)

type drcEntry struct {
	key   drcKey
	state drcState
	reply []byte // the reply record without its record mark
	elem  *list.Element
}

// Defaults for the cache's bounds.
const (
	DefaultDRCEntries  = 4096
	DefaultDRCMaxBytes = 16 << 20
)

// replayCache is a bounded LRU of drcEntry. Entries still in progress
// are evicted like the others: under such pressure a retransmission may
// run twice, which is what a server without a cache would do anyway.
type replayCache struct {
	mu         sync.Mutex
	maxEntries int
	maxBytes   int
	bytes      int
	entries    map[drcKey]*drcEntry
	lru        list.List // front: most recently used
}

func newReplayCache(maxEntries, maxBytes int) *replayCache {
	return &replayCache{
		maxEntries: maxEntries,
		maxBytes:   maxBytes,
		entries:    make(map[drcKey]*drcEntry),
	}
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func makeDRCKey(h *callHeader, remote net.Addr) drcKey {
	k := drcKey{
		xid:     h.xid,
		prog:    h.prog,
		vers:    h.vers,
		proc:    h.proc,
		argsLen: len(h.args),
		argsSum: crc32.Checksum(h.args, castagnoli),
	}
	switch a := remote.(type) {
	case *net.TCPAddr:
		k.addr = a.AddrPort().Addr().Unmap()
	case *net.UDPAddr:
		k.addr = a.AddrPort().Addr().Unmap()
	default:
		if remote != nil {
			k.addrString = remote.String()
		}
	}
	return k
}

// begin looks k up. For a new call it records k as in progress and
// returns drcInProgress with found false. For a known one it returns
// its state and, when done, the cached reply.
func (c *replayCache) begin(k drcKey) (state drcState, reply []byte, found bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[k]; ok {
		c.lru.MoveToFront(e.elem)
		return e.state, e.reply, true
	}
	e := &drcEntry{key: k, state: drcInProgress}
	e.elem = c.lru.PushFront(e)
	c.entries[k] = e
	c.evict()
	return drcInProgress, nil, false
}

// finish stores the reply of k's call, copying it.
func (c *replayCache) finish(k drcKey, reply []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[k]
	if !ok {
		return // evicted while the call ran
	}
	e.state = drcDone
	e.reply = append([]byte(nil), reply...)
	c.bytes += len(e.reply)
	c.evict()
}

// abandon forgets k, for a call that was dropped without a reply: a
// retransmission must run it again.
func (c *replayCache) abandon(k drcKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[k]; ok {
		c.remove(e)
	}
}

func (c *replayCache) evict() {
	for len(c.entries) > c.maxEntries || c.bytes > c.maxBytes {
		back := c.lru.Back()
		if back == nil {
			return
		}
		c.remove(back.Value.(*drcEntry))
	}
}

func (c *replayCache) remove(e *drcEntry) {
	c.lru.Remove(e.elem)
	delete(c.entries, e.key)
	c.bytes -= len(e.reply)
}

func (c *replayCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
