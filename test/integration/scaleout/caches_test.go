package scaleout

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/claudefs/cfs-gateway/internal/core"
	"github.com/claudefs/cfs-gateway/internal/core/attrcache"
)

// TestCachesFollowOtherGateways changes files through one gateway while
// another has them cached with entries that would never expire: the other
// gateway must see every change within moments, through the etcd watch.
func TestCachesFollowOtherGateways(t *testing.T) {
	e := newEnv(t)
	opts := gatewayOptions{
		name:    "shared",
		pool:    testPool,
		breaker: testBreaker,
		core:    core.Options{Cache: attrcache.Options{TTL: attrcache.NoExpiry}},
	}
	a, b := e.open(t, opts), e.open(t, opts)
	ctx := context.Background()
	d, err := a.fs.Mkdir(ctx, &core.Root, core.RootIno, "d", 0o777)
	if err != nil {
		t.Fatal(err)
	}
	f, _, err := a.fs.Create(ctx, &core.Root, d.Ino, "f", 0o644, core.CreateGuarded, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.fs.Write(ctx, &core.Root, f.Ino, 0, []byte("v1"), core.FileSync); err != nil {
		t.Fatal(err)
	}
	// b caches the file, its name and its directory.
	if l, err := b.fs.Lookup(ctx, &core.Root, d.Ino, "f"); err != nil || l.Ino != f.Ino || l.Size != 2 {
		t.Fatalf("lookup on the second gateway: %+v, %v", l, err)
	}
	if _, err := b.fs.GetAttr(ctx, d.Ino); err != nil {
		t.Fatal(err)
	}

	if _, err := a.fs.Write(ctx, &core.Root, f.Ino, 0, []byte("version2"), core.FileSync); err != nil {
		t.Fatal(err)
	}
	mode := uint32(0o600)
	if _, err := a.fs.SetAttr(ctx, &core.Root, f.Ino, core.SetAttr{Mode: &mode}); err != nil {
		t.Fatal(err)
	}
	if err := a.fs.Rename(ctx, &core.Root, d.Ino, "f", d.Ino, "renamed"); err != nil {
		t.Fatal(err)
	}
	dirBefore, _ := b.fs.GetAttr(ctx, d.Ino)
	if _, _, err := a.fs.Create(ctx, &core.Root, d.Ino, "g", 0o644, core.CreateGuarded, 0); err != nil {
		t.Fatal(err)
	}

	checks := []struct {
		what  string
		check func() error
	}{
		{"the new size and mode", func() error {
			got, err := b.fs.GetAttr(ctx, f.Ino)
			if err == nil && (got.Size != 8 || got.Mode&0o777 != 0o600) {
				err = fmt.Errorf("size %d mode %o", got.Size, got.Mode&0o777)
			}
			return err
		}},
		{"the old name gone", func() error {
			_, err := b.fs.Lookup(ctx, &core.Root, d.Ino, "f")
			if !errors.Is(err, syscall.ENOENT) {
				return fmt.Errorf("lookup of the old name: %v", err)
			}
			return nil
		}},
		{"the new name", func() error {
			l, err := b.fs.Lookup(ctx, &core.Root, d.Ino, "renamed")
			if err == nil && l.Ino != f.Ino {
				err = fmt.Errorf("reaches inode %d", l.Ino)
			}
			return err
		}},
		{"the directory's change", func() error {
			got, err := b.fs.GetAttr(ctx, d.Ino)
			if err == nil && got.ChangeID == dirBefore.ChangeID {
				err = fmt.Errorf("change id still %d", got.ChangeID)
			}
			return err
		}},
		{"the data", func() error {
			p := make([]byte, 16)
			n, _, err := b.fs.Read(ctx, &core.Root, f.Ino, 0, p)
			if err == nil && string(p[:n]) != "version2" {
				err = fmt.Errorf("reads %q", p[:n])
			}
			return err
		}},
	}
	for _, c := range checks {
		deadline := time.Now().Add(5 * time.Second)
		for {
			err := c.check()
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("the second gateway does not see %s after 5 s: %v", c.what, err)
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}
