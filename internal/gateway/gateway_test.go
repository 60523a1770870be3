package gateway

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/claudefs/cfs-gateway/internal/config"
	"github.com/claudefs/cfs-gateway/internal/core"
)

// TestReload applies a changed configuration: reloadable keys take effect
// and are logged, others are logged as needing a restart.
func TestReload(t *testing.T) {
	var logs bytes.Buffer
	level := new(slog.LevelVar)
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: level}))
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	g, err := Open(context.Background(), cfg, Options{Logger: log, Level: level, Tool: true})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close(context.Background())
	ctx := context.Background()
	alice := &core.Identity{UID: 1000, GID: 1000}
	d, err := g.FS().Mkdir(ctx, &core.Root, core.RootIno, "d", 0o777)
	if err != nil {
		t.Fatal(err)
	}

	next := cfg.Clone()
	next.Quota.UserDefaults.InodesHard = 1
	next.Quota.UserDefaults.InodesSoft = 0
	next.Log.Level = config.LogLevel("debug")
	next.Cache.NFSAttrCache.Eviction = config.Eviction("lfu")
	next.Admin.Listen = "127.0.0.1:1"
	g.Reload(next)

	if _, _, err := g.FS().Create(ctx, alice, d.Ino, "a", 0o644, core.CreateGuarded, 0); err != nil {
		t.Fatal(err)
	}
	if _, _, err := g.FS().Create(ctx, alice, d.Ino, "b", 0o644, core.CreateGuarded, 0); err == nil {
		t.Fatal("the reloaded inode limit of 1 was not applied")
	}
	if level.Level() != slog.LevelDebug {
		t.Fatalf("log level %v after reload", level.Level())
	}
	out := logs.String()
	for _, want := range []string{"key=quota.user_defaults.inodes_hard", "key=log.level", "key=cache.nfs_attr_cache.eviction"} {
		if !strings.Contains(out, want) {
			t.Errorf("reload log lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(out, "needs a restart") || !strings.Contains(out, "key=admin.listen") {
		t.Errorf("a change needing a restart was not logged as such:\n%s", out)
	}
	if g.Config().Admin.Listen == "127.0.0.1:1" {
		t.Error("a key that needs a restart was applied live")
	}
}
