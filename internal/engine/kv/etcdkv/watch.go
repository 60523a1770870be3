package etcdkv

import (
	"bytes"
	"context"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/claudefs/cfs-gateway/internal/engine/kv"
)

// watchRetry is the pause before a broken watch is established again.
const watchRetry = 500 * time.Millisecond

// Watch calls fn with the key (without the store's prefix) of every change
// committed under prefix, by this gateway or any other, until ctx ends or
// the store is closed; it returns then. fn runs on one goroutine, in
// commit order, and must be quick.
//
// When changes may have been missed (the watch fell behind etcd's
// compaction), fn is called with a nil key: the caller must then drop
// everything it cached under prefix. A watch that breaks (member lost,
// leader lost) resumes after the last change it delivered, on any member.
// Changes committed before Watch is called are not delivered, so a caller
// starts watching before it starts caching.
func (s *Store) Watch(ctx context.Context, prefix []byte, fn func(key []byte)) {
	full := append(append([]byte(nil), s.prefix...), prefix...)
	var after int64 // last revision delivered; 0 before the first
	for ctx.Err() == nil {
		cli, err := s.watchClient()
		if err != nil {
			if s.isClosed() {
				return
			}
			s.log.Warn("cannot open the etcd watch connection; retrying", "err", err)
			if !sleep(ctx, watchRetry) {
				return
			}
			continue
		}
		opts := []clientv3.OpOption{clientv3.WithPrefix()}
		if after > 0 {
			opts = append(opts, clientv3.WithRev(after+1))
		}
		wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		for resp := range cli.Watch(wctx, string(full), opts...) {
			if resp.CompactRevision != 0 {
				s.log.Warn("etcd watch fell behind compaction; dropping cached state", "compact_revision", resp.CompactRevision)
				fn(nil)
				after = 0
				break
			}
			if err := resp.Err(); err != nil {
				s.log.Warn("etcd watch interrupted; resuming", "err", err)
				break
			}
			for _, ev := range resp.Events {
				if key, ok := bytes.CutPrefix(ev.Kv.Key, s.prefix); ok {
					fn(clip(key))
				}
			}
			if resp.Header.Revision > after {
				after = resp.Header.Revision
			}
		}
		cancel()
		if s.isClosed() || !sleep(ctx, watchRetry) {
			return
		}
	}
}

// watchClient returns the connection watches use: one client over every
// member, whose balancer moves the watch to another member on failure.
func (s *Store) watchClient() (*clientv3.Client, error) {
	s.watchMu.Lock()
	defer s.watchMu.Unlock()
	if s.isClosed() {
		return nil, kv.ErrClosed
	}
	if s.watchCli != nil {
		return s.watchCli, nil
	}
	cli, err := clientv3.New(s.clientConfig(s.opts.Endpoints))
	if err != nil {
		return nil, err
	}
	s.watchCli = cli
	return cli, nil
}

func (s *Store) isClosed() bool { return s.shut.Load() }

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
