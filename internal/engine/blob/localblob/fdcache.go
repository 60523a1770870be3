package localblob

import (
	"container/list"
	"hash/maphash"
	"io/fs"
	"sync"

	"golang.org/x/sys/unix"
)

// fdCache keeps recently read objects open, so that a small read is one
// pread instead of open, pread and close: the path lookup of the open costs
// more than a 4 KiB read from the page cache.
//
// A cached descriptor must never serve an object that was replaced or
// deleted since: Put and Delete forget the key before they return, a
// descriptor opened while its shard saw a Put or Delete is used once and
// not kept (each shard counts its changes; a reader notes the count before
// its open), and a hit whose file lost its name (removed or replaced by
// something else than the store, such as an operator) is dropped: an
// fstat is still much cheaper than an open. Descriptors are reference counted; one evicted or forgotten
// while a read uses it is closed when that read ends.
type fdCache struct {
	seed   maphash.Seed
	shards [fdShards]fdShard
}

const (
	fdShards = 32
	// fdPerShard bounds the descriptors kept open: 32 x 32 = 1,024, well
	// within the process's limit, and enough for the hot blocks of a
	// working set (a block is up to 4 MiB).
	fdPerShard = 32
)

type fdShard struct {
	mu      sync.Mutex
	changes uint64
	byPath  map[string]*cachedFD
	lru     list.List // of *cachedFD, most recent first
}

type cachedFD struct {
	fd   int
	path string
	refs int // reads using fd, plus one while cached
	elem *list.Element
}

func newFDCache() *fdCache {
	c := &fdCache{seed: maphash.MakeSeed()}
	for i := range c.shards {
		c.shards[i].byPath = make(map[string]*cachedFD)
	}
	return c
}

func (c *fdCache) shard(path string) *fdShard {
	return &c.shards[maphash.String(c.seed, path)%fdShards]
}

// open returns a descriptor of path for reading and the function that ends
// its use.
func (c *fdCache) open(path string) (int, func(), error) {
	s := c.shard(path)
	s.mu.Lock()
	if e := s.byPath[path]; e != nil {
		e.refs++
		s.lru.MoveToFront(e.elem)
		s.mu.Unlock()
		if linked(e.fd) {
			return e.fd, func() { s.release(e) }, nil
		}
		// Removed or replaced behind the store's back (an operator, a
		// restore): read the file the path names now.
		s.release(e)
		c.forget(path)
		s.mu.Lock()
	}
	changes := s.changes
	s.mu.Unlock()

	fd, err := openRead(path)
	if err != nil {
		return -1, nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.changes != changes || s.byPath[path] != nil {
		// A Put or Delete in this shard since the open, or another reader
		// cached the path first: use this descriptor once.
		return fd, func() { unix.Close(fd) }, nil
	}
	e := &cachedFD{fd: fd, path: path, refs: 2}
	e.elem = s.lru.PushFront(e)
	s.byPath[path] = e
	for s.lru.Len() > fdPerShard {
		s.dropLocked(s.lru.Back().Value.(*cachedFD))
	}
	return fd, func() { s.release(e) }, nil
}

func (s *fdShard) release(e *cachedFD) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e.refs--
	if e.refs == 0 {
		unix.Close(e.fd)
	}
}

// dropLocked removes e from the cache; its descriptor closes with its last
// read.
func (s *fdShard) dropLocked(e *cachedFD) {
	s.lru.Remove(e.elem)
	delete(s.byPath, e.path)
	e.refs--
	if e.refs == 0 {
		unix.Close(e.fd)
	}
}

// forget drops path, which is being replaced or deleted.
func (c *fdCache) forget(path string) {
	s := c.shard(path)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.changes++
	if e := s.byPath[path]; e != nil {
		s.dropLocked(e)
	}
}

// closeAll drops every cached descriptor (Store.Close).
func (c *fdCache) closeAll() {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		s.changes++
		for s.lru.Len() > 0 {
			s.dropLocked(s.lru.Back().Value.(*cachedFD))
		}
		s.mu.Unlock()
	}
}

// linked reports whether fd's file still has a name. A failed fstat counts
// as unlinked, so that the caller opens the path again and sees its error.
func linked(fd int) bool {
	var st unix.Stat_t
	return unix.Fstat(fd, &st) == nil && st.Nlink > 0
}

// openRead opens path read-only with the system call itself: an os.File
// would also register the descriptor with the network poller.
func openRead(path string) (int, error) {
	for {
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return -1, &fs.PathError{Op: "open", Path: path, Err: err}
		}
		return fd, nil
	}
}
