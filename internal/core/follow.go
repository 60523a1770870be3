package core

import (
	"context"

	"github.com/claudefs/cfs-gateway/internal/meta"
)

// changeWatcher is implemented by engines that report every change
// committed by any gateway (the etcd engine). Watch runs until ctx ends;
// fn gets each changed key in commit order, or nil when changes may have
// been missed.
type changeWatcher interface {
	Watch(ctx context.Context, prefix []byte, fn func(key []byte))
}

// followChanges keeps the attribute and lookup caches in step with changes
// committed by other gateways sharing the store: each change to an inode,
// a directory's times or an entry drops what this gateway cached of it,
// and a change of quota limits drops the cached limits.
// The caches' TTL bounds only the moment between a commit elsewhere and
// its event here (and the start of the watch).
func (fs *FS) followChanges(ctx context.Context, w changeWatcher) {
	attrs := func(key []byte) {
		if key == nil {
			fs.attrs.Purge()
			return
		}
		if ino, ok := meta.ParseAttrKey(key); ok {
			fs.attrs.Invalidate(Ino(ino))
		}
	}
	entries := func(key []byte) {
		if key == nil {
			fs.entries.Purge()
			return
		}
		if dir, name, ok := meta.ParseDentryKey(key); ok {
			fs.entries.Invalidate(entryKey{Ino(dir), name})
		}
	}
	for _, watch := range []struct {
		prefix []byte
		fn     func([]byte)
	}{
		{meta.InodePrefix(), attrs},
		{meta.DirTimesPrefix(), attrs},
		{meta.DentryAllPrefix(), entries},
		{meta.LimitsPrefix(), func([]byte) { fs.overrides.drop() }},
	} {
		fs.wg.Add(1)
		go func() {
			defer fs.wg.Done()
			w.Watch(ctx, watch.prefix, watch.fn)
		}()
	}
}
