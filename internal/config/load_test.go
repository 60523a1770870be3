package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// TestLoadReportsEveryProblem: one problem per mistake in the file, each
// with its key path and line, and nothing else.
func TestLoadReportsEveryProblem(t *testing.T) {
	tests := []struct {
		file string
		want []string // path@line
	}{
		{"bad_types.yaml", []string{
			"connection_pool.min_per_node@2",
			"connection_pool.max_per_node@3",
			"circuit_breaker.failure_threshold@5",
			"cache.nfs_attr_cache.max_entries@8",
			"smb.multichannel.enabled@11",
			"smb.shares@12",
			"nfs.exports[0].anon_uid@16",
			"nfs.exports[0].sec@17",
			"log@18",
			"data.writeback_buffer_bytes@20",
		}},
		{"out_of_range.yaml", []string{
			"connection_pool.min_per_node@2",
			"connection_pool.connect_timeout_ms@4",
			"circuit_breaker.failure_threshold@6",
			"circuit_breaker.success_threshold@7",
			"quota.user_defaults.bytes_soft@10",
			"quota.group_defaults.bytes_hard@15",
			"cache.nfs_attr_cache.eviction@18",
			"smb.listen@19", // collides with admin.listen; smb.listen itself is not in the file
			"smb.multichannel.min_channels@21",
			"smb.multichannel.channel_selection@22",
			"s3.multipart_chunk_min@24",
			"s3.listen@25",
			"log.level@27",
			"nfs.exports[0].name@30",
			"nfs.exports[0].allowed_clients[0]@31",
			"nfs.exports[0].sec[1]@32",
			"nfs4.grace_secs@34",
		}},
		{"unknown_keys.yaml", []string{
			"connection_pool.min_per_nodes@2",
			"connection_pool.max-per-node@3",
			"circuit_breaker.half_open_requests@6",
			"cache.dir_cache@10",
			"smb.interfaces[0].speed@17",
			"smb.interfaces[0].capabilities.jumbo@20",
			"nfs.exports[0].squash@24",
			"telemetry@25",
		}},
		{"mixed.yaml", []string{
			"connection_pool.min_per_node@2",
			"connection_pool.max_per_node@3",
			"connection_pool.pool_size@4",
			"cache.nfs_attr_cache.eviction@7",
			"cache.nfs_attr_cache.default_ttl_secs@8",
			"cache.nfs_attr_cache_size@9",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join("testdata", tt.file)
			cfg, err := Load(path)
			if err == nil {
				t.Fatalf("Load(%s) succeeded: %+v", path, cfg)
			}
			want := slices.Clone(tt.want)
			slices.Sort(want)
			if got := problemPaths(t, err); !slices.Equal(got, want) {
				t.Errorf("problems:\n got %q\nwant %q\nerror:\n%v", got, want, err)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tt.want)+1 {
				t.Errorf("error has %d lines, want a header and one line per problem (%d):\n%v", len(lines), len(tt.want), err)
			}
			for _, l := range lines[1:] {
				if !strings.HasPrefix(l, path+":") {
					t.Errorf("line %q does not start with %q", l, path+":")
				}
			}
		})
	}
}

// TestProblemMessages pins the exact wording of representative problems.
func TestProblemMessages(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"range", "circuit_breaker:\n  failure_threshold: 0\n",
			"line 2: circuit_breaker.failure_threshold: must be at least 1 (got 0)"},
		{"enum", "cache:\n  nfs_attr_cache:\n    eviction: mru\n",
			`line 3: cache.nfs_attr_cache.eviction: must be one of the allowed values (got "mru"); allowed: lru, lfu, fifo`},
		{"word for a number", "connection_pool:\n  min_per_node: four\n",
			`line 2: connection_pool.min_per_node: must be a whole number (got "four")`},
		{"fraction", "connection_pool:\n  max_per_node: 32.5\n",
			`line 2: connection_pool.max_per_node: must be a whole number (got 32.5)`},
		{"quoted number", "connection_pool:\n  max_per_node: \"32\"\n",
			`line 2: connection_pool.max_per_node: must be a whole number (got "32")`},
		{"YAML 1.1 boolean", "smb:\n  enabled: yes\n",
			`line 2: smb.enabled: must be true or false (got "yes")`},
		{"negative uid", "nfs:\n  exports:\n    - name: /e\n      anon_uid: -1\n",
			`line 4: nfs.exports[0].anon_uid: must be a whole number from 0 to 4294967295 (got -1)`},
		{"overflow", "quota:\n  user_defaults:\n    bytes_hard: 99999999999999999999\n",
			`line 3: quota.user_defaults.bytes_hard: must be a whole number (got 99999999999999999999)`},
		{"leading zero", "cache:\n  nfs_attr_cache:\n    max_entries: 010000\n",
			`line 3: cache.nfs_attr_cache.max_entries: must be a whole number without a leading zero, which YAML would read as octal (got 010000)`},
		{"empty value", "data:\n  flush_interval_ms:\n",
			`line 2: data.flush_interval_ms: has no value; a whole number, or remove the key to keep the default (5000)`},
		{"list for scalar", "cache:\n  nfs_attr_cache:\n    max_entries: [1]\n",
			`line 3: cache.nfs_attr_cache.max_entries: must be a whole number, not a list`},
		{"scalar for list", "nfs:\n  exports:\n    - name: /e\n      sec: sys\n",
			`line 4: nfs.exports[0].sec: must be a list, not "sys" (write [a, b] or one "- a" line per entry)`},
		{"scalar for section", "log: debug\n",
			`line 1: log: must be a section of keys, not "debug"; allowed: level, format`},
		{"typo", "connection_pool:\n  max_idle: 5\n",
			`line 2: connection_pool.max_idle: unknown key; did you mean "max_idle_ms"?; allowed: min_per_node, max_per_node, max_idle_ms, connect_timeout_ms, health_check_interval_ms`},
		{"dashes", "circuit_breaker:\n  failure-threshold: 5\n",
			`line 2: circuit_breaker.failure-threshold: unknown key; did you mean "failure_threshold"?; allowed: failure_threshold, success_threshold, open_duration_ms, timeout_ms`},
		{"duplicate", "log:\n  level: info\n  level: debug\n",
			`line 3: log.level: duplicate key (first set on line 2)`},
		{"cross-field", "connection_pool:\n  min_per_node: 40\n",
			`line 2: connection_pool.min_per_node: must not exceed max_per_node (32) (got 40)`},
		{"line from parent", "nfs:\n  enabled: true\n  exports: []\nnfs4:\n  enabled: false\n",
			`line 3: nfs.exports: must list at least one export while nfs.enabled or nfs4.enabled is true`},
		{"not a mapping", "- a\n- b\n",
			`line 1: the file must hold a mapping of sections, not a list; allowed: connection_pool, circuit_breaker, quota, cache, smb, s3, data_dir, log, metadata, blob, data, admin, nfs, nfs4, locks`},
		{"syntax", "log:\n  level: info\n   format: text\n",
			`line 3: invalid YAML: mapping values are not allowed in this context`},
		{"second document", "log:\n  level: info\n---\nlog:\n  level: debug\n",
			`line 3: a second YAML document starts here; the configuration must be a single document`},
		{"alias of the enclosing list", "nfs:\n  exports: &e\n    - *e\n",
			`line 2: nfs.exports[0]: must be a section of keys, not a list; allowed: name, path, read_only, root_squash, all_squash, anon_uid, anon_gid, allowed_clients, sec`},
		{"alias cycle", "metadata:\n  etcd:\n    tls: &t {<<: *t}\n",
			`line 3: metadata.etcd.tls: alias *t refers to a node that contains it`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), "f.yaml")
			var le *LoadError
			if !errors.As(err, &le) {
				t.Fatalf("Parse error = %v, want *LoadError", err)
			}
			if len(le.Problems) != 1 {
				t.Fatalf("got %d problems, want 1:\n%v", len(le.Problems), err)
			}
			if got := le.Problems[0].Error(); got != tt.want {
				t.Errorf("problem:\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestLoadErrorFormat(t *testing.T) {
	_, err := Parse([]byte("log:\n  level: loud\n  format: xml\n"), "gw.yaml")
	want := `gw.yaml: 2 problems in the configuration:
gw.yaml:2: log.level: must be one of the allowed values (got "loud"); allowed: debug, info, warn, error
gw.yaml:3: log.format: must be one of the allowed values (got "xml"); allowed: text, json`
	if err == nil || err.Error() != want {
		t.Fatalf("error:\n%v\nwant:\n%s", err, want)
	}
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Path != "log.level" {
		t.Errorf("errors.As(*FieldError) = %+v, want the log.level problem", fe)
	}

	_, err = Parse([]byte("log:\n  level: loud\n"), "")
	if want := `configuration:2: log.level: must be one of the allowed values (got "loud"); allowed: debug, info, warn, error`; err == nil || err.Error() != want {
		t.Errorf("single problem:\n%v\nwant:\n%s", err, want)
	}
}

// TestEnums: each allowed value is accepted, anything else is refused with
// the allowed list.
func TestEnums(t *testing.T) {
	tests := []struct {
		path    string
		tmpl    string // YAML with %s where the value goes
		allowed []string
	}{
		{"cache.nfs_attr_cache.eviction", "cache:\n  nfs_attr_cache:\n    eviction: %s\n",
			[]string{"lru", "lfu", "fifo"}},
		{"smb.multichannel.channel_selection", "smb:\n  multichannel:\n    channel_selection: %s\n",
			[]string{"round_robin", "weighted_by_speed", "prefer_rdma"}},
		{"smb.encryption", "smb:\n  encryption: %s\n", []string{"off", "desired", "required"}},
		{"log.level", "log:\n  level: %s\n", []string{"debug", "info", "warn", "error"}},
		{"log.format", "log:\n  format: %s\n", []string{"text", "json"}},
		{"metadata.engine", "metadata:\n  engine: %s\n", []string{"pebble", "etcd"}},
		{"blob.engine", "blob:\n  engine: %s\n  s3:\n    endpoint: minio:9000\n    bucket: cfs-blocks\n",
			[]string{"local", "s3"}},
		{"nfs.exports[0].sec[0]", "nfs:\n  exports:\n    - name: /e\n      sec: [%s]\n", []string{"sys", "none"}},
	}
	for _, tt := range tests {
		for _, v := range tt.allowed {
			cfg, err := Parse([]byte(fmt.Sprintf(tt.tmpl, v)), "")
			if err != nil {
				t.Errorf("%s: %s refused: %v", tt.path, v, err)
				continue
			}
			got, _ := valueAt(reflect.ValueOf(cfg).Elem(), tt.path)
			if got.String() != v {
				t.Errorf("%s: set %q, got %q", tt.path, v, got.String())
			}
		}
		for _, bad := range []string{"bogus", strings.ToUpper(tt.allowed[0]), `""`} {
			_, err := Parse([]byte(fmt.Sprintf(tt.tmpl, bad)), "")
			var le *LoadError
			if !errors.As(err, &le) || len(le.Problems) != 1 {
				t.Errorf("%s: %s: error %v, want one problem", tt.path, bad, err)
				continue
			}
			want := strings.Join(tt.allowed, ", ")
			if p := le.Problems[0]; p.Path != tt.path || p.Allowed != want {
				t.Errorf("%s: %s: problem %+v, want path %s allowed %q", tt.path, bad, p, tt.path, want)
			}
		}
	}
}

func TestListEntryDefaults(t *testing.T) {
	src := `
nfs:
  exports:
    - name: /a
    - name: /b
      path: /data/b
      root_squash: false
      allowed_clients: [10.0.0.0/8]
smb:
  shares:
    - name: docs
      path: /docs
`
	cfg, err := Parse([]byte(src), "")
	if err != nil {
		t.Fatal(err)
	}
	want := []Export{
		{Name: "/a", Path: "/", RootSquash: true, AnonUID: 65534, AnonGID: 65534, AllowedClients: []string{}, Sec: []NFSAuth{AuthSys}},
		{Name: "/b", Path: "/data/b", RootSquash: false, AnonUID: 65534, AnonGID: 65534, AllowedClients: []string{"10.0.0.0/8"}, Sec: []NFSAuth{AuthSys}},
	}
	if !reflect.DeepEqual(cfg.NFS.Exports, want) {
		t.Errorf("exports = %+v\nwant %+v", cfg.NFS.Exports, want)
	}
	if want := []Share{{Name: "docs", Path: "/docs"}}; !reflect.DeepEqual(cfg.SMB.Shares, want) {
		t.Errorf("shares = %+v, want %+v (the list replaces the default share)", cfg.SMB.Shares, want)
	}
}

func TestGuideFile(t *testing.T) {
	cfg, err := Load(filepath.Join("testdata", "guide.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.SMB.Interfaces = []Interface{
		{Name: "eth0", IP: "10.0.0.10", LinkSpeedMbps: 25000,
			Capabilities: InterfaceCapabilities{RDMA: true, RSS: true, TSO: true, ChecksumOffload: true}},
		{Name: "eth1", IP: "10.0.1.10", LinkSpeedMbps: 25000,
			Capabilities: InterfaceCapabilities{RDMA: true, RSS: true}},
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("guide.yaml differs from the defaults plus its interfaces: %v", Diff(want, cfg))
	}
}

func TestAnchorsAndMergeKeys(t *testing.T) {
	src := `
nfs:
  exports:
    - &base
      name: /a
      read_only: true
      allowed_clients: [10.0.0.0/8]
    - <<: *base
      name: /b
`
	cfg, err := Parse([]byte(src), "")
	if err != nil {
		t.Fatal(err)
	}
	b := cfg.NFS.Exports[1]
	if b.Name != "/b" || !b.ReadOnly || !slices.Equal(b.AllowedClients, []string{"10.0.0.0/8"}) {
		t.Errorf("merged export = %+v, want name /b with the keys of /a", b)
	}
	if cfg.NFS.Exports[0].Name != "/a" {
		t.Errorf("first export = %+v, want /a", cfg.NFS.Exports[0])
	}
}

func TestAliasExpansionIsBounded(t *testing.T) {
	// Each level merges the previous one twice: 2^40 mappings if expanded.
	var b strings.Builder
	b.WriteString("log:\n  format: &a0 {level: info}\n")
	for i := 1; i <= 40; i++ {
		fmt.Fprintf(&b, "  level: &a%d {<<: [*a%d, *a%d]}\n", i, i-1, i-1)
	}
	b.WriteString("metadata: *a40\n")
	_, err := Parse([]byte(b.String()), "")
	if err == nil {
		t.Fatal("Parse accepted an exponential alias expansion")
	}
	if !strings.Contains(err.Error(), "too large or expands too many aliases") {
		t.Errorf("error does not name the expansion: %v", err)
	}
}

func TestEmptyFilesGiveDefaults(t *testing.T) {
	for _, src := range []string{"", "# only a comment\n", "---\n", "~\n", "smb:\n", "nfs:\n  portmap:\n"} {
		cfg, err := Parse([]byte(src), "")
		if err != nil {
			t.Errorf("%q: %v", src, err)
			continue
		}
		if !reflect.DeepEqual(cfg, Default()) {
			t.Errorf("%q: differs from Default(): %v", src, Diff(Default(), cfg))
		}
	}
}

func TestLoadDefaultOrFile(t *testing.T) {
	dir := t.TempDir()
	saved := defaultPath
	t.Cleanup(func() { defaultPath = saved })

	// No file named and none at the default path: the defaults.
	defaultPath = filepath.Join(dir, "missing.yaml")
	cfg, src, err := LoadDefaultOrFile("")
	if err != nil || src != "" || !reflect.DeepEqual(cfg, Default()) {
		t.Errorf("missing default file: cfg=%v src=%q err=%v, want defaults", cfg != nil, src, err)
	}

	// A named file must exist.
	_, _, err = LoadDefaultOrFile(filepath.Join(dir, "named.yaml"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing named file: err=%v, want fs.ErrNotExist", err)
	}

	// The default path is read when present, and its problems reported.
	defaultPath = filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(defaultPath, []byte("log:\n  level: debug\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, src, err = LoadDefaultOrFile("")
	if err != nil || src != defaultPath || cfg.Log.Level != LogDebug {
		t.Errorf("default file: level=%v src=%q err=%v", cfg, src, err)
	}
	if err := os.WriteFile(defaultPath, []byte("log:\n  level: loud\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err = LoadDefaultOrFile(""); err == nil {
		t.Error("invalid default file accepted")
	}

	// A named file wins over the default path.
	named := filepath.Join(dir, "named.yaml")
	if err := os.WriteFile(named, []byte("log:\n  format: json\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, src, err = LoadDefaultOrFile(named)
	if err != nil || src != named || cfg.Log.Format != LogJSON {
		t.Errorf("named file: src=%q err=%v", src, err)
	}
}

func TestLoadRefusesHugeFiles(t *testing.T) {
	p := filepath.Join(t.TempDir(), "big.yaml")
	if err := os.WriteFile(p, make([]byte, maxFileBytes+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("Load(huge) = %v, want a size error", err)
	}
}

func TestIntegerForms(t *testing.T) {
	for _, v := range []string{"1000", "1_000", "0x3e8", "0o1750", "0b1111101000", "+1000", "1e3", "1.0e3", "1000.0"} {
		c, err := Parse([]byte("cache:\n  nfs_attr_cache:\n    max_entries: "+v+"\n"), "")
		if err != nil {
			t.Errorf("%s: %v", v, err)
			continue
		}
		if got := c.Cache.NFSAttrCache.MaxEntries; got != 1000 {
			t.Errorf("%s read as %d, want 1000", v, got)
		}
	}
	for _, v := range []string{"0", "-0"} {
		if _, err := Parse([]byte("quota:\n  group_defaults:\n    bytes_hard: "+v+"\n"), ""); err != nil {
			t.Errorf("%s: %v", v, err)
		}
	}
}
