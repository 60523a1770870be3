package config

import (
	"reflect"
	"slices"
	"testing"
)

func TestDiff(t *testing.T) {
	tests := []struct {
		name   string
		change func(c *Config)
		want   []Change
	}{
		{"no change", func(c *Config) {}, nil},
		{"scalars", func(c *Config) {
			c.CircuitBreaker.FailureThreshold = 3
			c.Cache.NFSAttrCache.Eviction = EvictionLFU
			c.SMB.Multichannel.PreferRDMA = false
		}, []Change{
			{"circuit_breaker.failure_threshold", "5", "3"},
			{"cache.nfs_attr_cache.eviction", "lru", "lfu"},
			{"smb.multichannel.prefer_rdma", "true", "false"},
		}},
		{"empty string", func(c *Config) { c.Metadata.Pebble.Path = "/ssd/meta" },
			[]Change{{"metadata.pebble.path", `""`, "/ssd/meta"}}},
		{"list of text", func(c *Config) { c.Metadata.Etcd.Endpoints = []string{"a:2379", "b:2379"} },
			[]Change{{"metadata.etcd.endpoints", "[127.0.0.1:2379]", "[a:2379, b:2379]"}}},
		{"nil and empty lists are equal", func(c *Config) { c.NFS.Exports[0].AllowedClients = nil }, nil},
		{"list entry field", func(c *Config) { c.NFS.Exports[0].ReadOnly = true },
			[]Change{{"nfs.exports[0].read_only", "false", "true"}}},
		{"list entry added", func(c *Config) { c.SMB.Shares = append(c.SMB.Shares, Share{Name: "b", Path: "/b"}) },
			[]Change{{"smb.shares[1]", "", "{name: b, path: /b, read_only: false}"}}},
		{"list entry removed", func(c *Config) { c.SMB.Shares = nil },
			[]Change{{"smb.shares[0]", "{name: share, path: /, read_only: false}", ""}}},
		{"secrets are redacted", func(c *Config) {
			c.Blob.S3.SecretKey = "hunter2"
			c.Metadata.Etcd.Password = "swordfish"
		}, []Change{
			{"metadata.etcd.password", `""`, "<redacted>"},
			{"blob.s3.secret_key", `""`, "<redacted>"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old, cur := Default(), Default()
			tt.change(cur)
			got := Diff(old, cur)
			if !slices.Equal(got, tt.want) {
				t.Errorf("Diff:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestReloadable(t *testing.T) {
	tests := []struct {
		path string
		want bool
	}{
		{"cache.nfs_attr_cache.max_entries", true},
		{"cache.nfs_attr_cache.default_ttl_secs", true},
		{"cache.nfs_attr_cache.eviction", true},
		{"quota.soft_limit_grace_period_seconds", true},
		{"quota.user_defaults.bytes_hard", true},
		{"quota.group_defaults.inodes_soft", true},
		{"circuit_breaker.failure_threshold", true},
		{"circuit_breaker.timeout_ms", true},
		{"log.level", true},
		{"log.format", false},
		{"connection_pool.max_per_node", false},
		{"smb.multichannel.max_channels", false},
		{"nfs.exports[0].read_only", false},
		{"s3.multipart_chunk_min", false},
		{"quotas.x", false},
		{"log.levels", false},
		{"cache", false},
	}
	for _, tt := range tests {
		if got := Reloadable(tt.path); got != tt.want {
			t.Errorf("Reloadable(%q) = %v, want %v", tt.path, got, tt.want)
		}
		if got := (Change{Path: tt.path}).Reloadable(); got != tt.want {
			t.Errorf("Change{%q}.Reloadable() = %v, want %v", tt.path, got, tt.want)
		}
	}
	keys := ReloadableKeys()
	keys[0] = "mutated"
	if ReloadableKeys()[0] == "mutated" {
		t.Error("ReloadableKeys exposes the package's own slice")
	}
}

// TestReload: next carries exactly the reloadable changes, and the pending
// ones are exactly what still differs from the loaded file.
func TestReload(t *testing.T) {
	running := Default()
	loaded := Default()
	loaded.CircuitBreaker.TimeoutMS = 2000
	loaded.Quota.UserDefaults.BytesHard = 20 * GiB
	loaded.Cache.NFSAttrCache.MaxEntries = 50000
	loaded.Log.Level = LogDebug
	loaded.Log.Format = LogJSON
	loaded.NFS.Exports[0].ReadOnly = true
	loaded.ConnectionPool.MaxPerNode = 64

	next, applied, pending := Reload(running, loaded)

	wantApplied := []Change{
		{"circuit_breaker.timeout_ms", "5000", "2000"},
		{"quota.user_defaults.bytes_hard", "12884901888", "21474836480"},
		{"cache.nfs_attr_cache.max_entries", "10000", "50000"},
		{"log.level", "info", "debug"},
	}
	wantPending := []Change{
		{"connection_pool.max_per_node", "32", "64"},
		{"log.format", "text", "json"},
		{"nfs.exports[0].read_only", "false", "true"},
	}
	if !slices.Equal(applied, wantApplied) {
		t.Errorf("applied:\n got %q\nwant %q", applied, wantApplied)
	}
	if !slices.Equal(pending, wantPending) {
		t.Errorf("pending:\n got %q\nwant %q", pending, wantPending)
	}
	if got := Diff(running, next); !slices.Equal(got, wantApplied) {
		t.Errorf("next differs from running by %q, want the applied changes", got)
	}
	if got := Diff(next, loaded); !slices.Equal(got, wantPending) {
		t.Errorf("next differs from loaded by %q, want the pending changes", got)
	}
	if !reflect.DeepEqual(running, Default()) {
		t.Error("Reload changed the running configuration")
	}
}

// TestReloadCoversEveryReloadableKey changes every key of the schema and
// checks that Reload applies exactly those Reloadable reports.
func TestReloadCoversEveryReloadableKey(t *testing.T) {
	running := Default()
	loaded := Default()
	for _, k := range schemaKeys() {
		if k.elem || k.structList {
			continue
		}
		v, ok := valueAt(reflect.ValueOf(loaded).Elem(), k.path)
		if !ok {
			t.Fatalf("no value at %s", k.path)
		}
		switch v.Kind() {
		case reflect.String:
			v.SetString(v.String() + "x")
		case reflect.Bool:
			v.SetBool(!v.Bool())
		case reflect.Int, reflect.Int64:
			v.SetInt(v.Int() + 1)
		case reflect.Slice:
			v.Set(reflect.Append(v, reflect.New(v.Type().Elem()).Elem()))
		default:
			t.Fatalf("%s: kind %s not covered", k.path, v.Kind())
		}
	}
	next, applied, pending := Reload(running, loaded)
	for _, c := range Diff(running, next) {
		if !Reloadable(c.Path) {
			t.Errorf("Reload applied %s, which needs a restart", c.Path)
		}
	}
	for _, c := range Diff(next, loaded) {
		if Reloadable(c.Path) {
			t.Errorf("Reload left out %s, which is reloadable", c.Path)
		}
	}
	if len(applied) == 0 || len(pending) == 0 {
		t.Errorf("applied %d, pending %d changes; want both non-empty", len(applied), len(pending))
	}
}

func TestCloneIsDeep(t *testing.T) {
	orig := Default()
	orig.SMB.Interfaces = []Interface{{Name: "eth0", IP: "10.0.0.1", LinkSpeedMbps: 1}}
	c := orig.Clone()
	if !reflect.DeepEqual(c, orig) {
		t.Fatalf("clone differs: %v", Diff(orig, c))
	}
	c.NFS.Exports[0].Sec[0] = AuthNone
	c.NFS.Exports[0].Name = "/changed"
	c.SMB.Shares[0].Name = "changed"
	c.SMB.Interfaces[0].Name = "changed"
	c.Metadata.Etcd.Endpoints[0] = "changed"
	if d := Diff(Default(), orig); len(d) != 1 || d[0].Path != "smb.interfaces[0]" {
		t.Errorf("changing the clone changed the original: %v", d)
	}
}
