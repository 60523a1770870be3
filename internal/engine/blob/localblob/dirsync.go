package localblob

import (
	"os"
	"sync"
)

// dirSyncs coalesces the fsyncs of a directory. Every Put must fsync the
// directory of its key after renaming into it, and on a journaling
// filesystem each such fsync is a journal commit that the others queue
// behind: with eight puts into one directory at once, as a slice's blocks
// are, the syncs took as long as writing the data. A put needs a sync that
// starts after its rename, so puts that arrive while one sync runs share
// the next one: at most one sync per directory runs, and one more waits.
type dirSyncs struct {
	mu   sync.Mutex
	dirs map[string]*dirSync
}

// dirSync is the sync state of one directory while anyone needs it.
type dirSync struct {
	users    int // callers holding the entry; it leaves the map at zero
	running  bool
	started  uint64 // syncs begun
	finished uint64 // the number of the last sync that ended
	err      error  // its result
	done     *sync.Cond
}

// sync returns once a sync of dir that began after the call has ended, with
// that sync's result.
func (d *dirSyncs) sync(dir string) error {
	d.mu.Lock()
	if d.dirs == nil {
		d.dirs = map[string]*dirSync{}
	}
	st := d.dirs[dir]
	if st == nil {
		st = &dirSync{done: sync.NewCond(&d.mu)}
		d.dirs[dir] = st
	}
	st.users++
	// A sync under way may have begun before our rename: wait for the
	// next one to begin.
	need := st.started + 1
	for st.finished < need {
		if st.running {
			st.done.Wait()
			continue
		}
		st.running = true
		st.started++
		n := st.started
		d.mu.Unlock()
		err := syncDir(dir)
		d.mu.Lock()
		st.running = false
		st.finished, st.err = n, err
		st.done.Broadcast()
	}
	// A later sync than the one needed covers the rename as well.
	err := st.err
	st.users--
	if st.users == 0 {
		delete(d.dirs, dir)
	}
	d.mu.Unlock()
	return err
}

// syncDir makes the entries of dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
