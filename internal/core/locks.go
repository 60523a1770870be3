package core

import (
	"context"
	"errors"

	"github.com/claudefs/cfs-gateway/internal/core/lock"
	"github.com/claudefs/cfs-gateway/internal/engine/kv"
	"github.com/claudefs/cfs-gateway/internal/meta"
)

// LockSession is a metadata engine's per-gateway session for the shared lock
// table of a scale-out deployment (the etcd engine's Session): each gateway
// keeps one record per group, the group's key guards claims, and a record
// lives only as long as the session. Keys are without the engine's prefix,
// so that a transaction of the same engine can read them.
type LockSession interface {
	Claim(ctx context.Context, group, value []byte, check func(others [][]byte) error) (int64, error)
	Put(ctx context.Context, group, value []byte) error
	Others(ctx context.Context, group []byte) ([][]byte, error)
	Wait(ctx context.Context, group []byte, rev int64) error
	// RecordKey is this session's record in group, nil without a live
	// session.
	RecordKey(group []byte) []byte
}

// lockCluster stores the lock table's records as one group per inode.
type lockCluster struct{ s LockSession }

func lockGroup(file lock.FileID) []byte { return meta.LockGroupKey(uint64(file)) }

func (c lockCluster) Claim(ctx context.Context, file lock.FileID, own []byte, check func([][]byte) error) (int64, error) {
	return c.s.Claim(ctx, lockGroup(file), own, check)
}

func (c lockCluster) Publish(ctx context.Context, file lock.FileID, own []byte) error {
	return c.s.Put(ctx, lockGroup(file), own)
}

func (c lockCluster) Others(ctx context.Context, file lock.FileID) ([][]byte, error) {
	return c.s.Others(ctx, lockGroup(file))
}

func (c lockCluster) Wait(ctx context.Context, file lock.FileID, rev int64) error {
	return c.s.Wait(ctx, lockGroup(file), rev)
}

// SessionLost tells the filesystem that its lock session is gone: every lock
// and share reservation is dropped and the files that had any are fenced
// (see package lock). The engine's session calls it.
func (fs *FS) SessionLost() { fs.locks.SessionLost() }

// checkFence refuses, inside a write's transaction, a write to a file whose
// locks this gateway lost or may have lost: the file is fenced, or the
// gateway holds state on it and its record is gone (the session expired
// before the gateway noticed). Reading the record makes the transaction
// fail if the record disappears before it commits.
func (fs *FS) checkFence(ctx context.Context, tx kv.Reader, ino Ino) error {
	if fs.opts.LockSession == nil {
		return nil
	}
	file := lock.FileID(ino)
	if fs.locks.Fenced(file) {
		return ErrFenced
	}
	if !fs.locks.Claimed(file) {
		return nil
	}
	key := fs.opts.LockSession.RecordKey(lockGroup(file))
	if key == nil {
		return ErrFenced
	}
	if _, err := tx.Get(ctx, key); err != nil {
		if errors.Is(err, kv.ErrNotFound) {
			return ErrFenced
		}
		return err
	}
	return nil
}
