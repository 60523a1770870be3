package config

import (
	"log/slog"
	"reflect"
	"testing"
	"time"
)

// TestDefaultsMatchGuide asserts each default the tuning guide and the
// gateway's specification name, literally.
func TestDefaultsMatchGuide(t *testing.T) {
	c := Default()
	tests := []struct {
		key  string
		got  any
		want any
	}{
		{"connection_pool.min_per_node", c.ConnectionPool.MinPerNode, 4},
		{"connection_pool.max_per_node", c.ConnectionPool.MaxPerNode, 32},
		{"connection_pool.max_idle_ms", c.ConnectionPool.MaxIdleMS, 300000},
		{"connection_pool.connect_timeout_ms", c.ConnectionPool.ConnectTimeoutMS, 5000},
		{"connection_pool.health_check_interval_ms", c.ConnectionPool.HealthCheckIntervalMS, 30000},
		{"circuit_breaker.failure_threshold", c.CircuitBreaker.FailureThreshold, 5},
		{"circuit_breaker.success_threshold", c.CircuitBreaker.SuccessThreshold, 2},
		{"circuit_breaker.open_duration_ms", c.CircuitBreaker.OpenDurationMS, 30000},
		{"circuit_breaker.timeout_ms", c.CircuitBreaker.TimeoutMS, 5000},
		{"quota.soft_limit_grace_period_seconds", c.Quota.SoftLimitGracePeriodSeconds, 604800},
		{"quota.user_defaults.bytes_soft", c.Quota.UserDefaults.BytesSoft, int64(10737418240)},
		{"quota.user_defaults.bytes_hard", c.Quota.UserDefaults.BytesHard, int64(12884901888)},
		{"quota.user_defaults.inodes_soft", c.Quota.UserDefaults.InodesSoft, int64(10000)},
		{"quota.user_defaults.inodes_hard", c.Quota.UserDefaults.InodesHard, int64(12000)},
		{"quota.group_defaults.bytes_soft", c.Quota.GroupDefaults.BytesSoft, int64(107374182400)},
		{"quota.group_defaults.bytes_hard", c.Quota.GroupDefaults.BytesHard, int64(128849018880)},
		{"quota.group_defaults.inodes_soft", c.Quota.GroupDefaults.InodesSoft, int64(0)},
		{"quota.group_defaults.inodes_hard", c.Quota.GroupDefaults.InodesHard, int64(0)},
		{"cache.nfs_attr_cache.max_entries", c.Cache.NFSAttrCache.MaxEntries, 10000},
		{"cache.nfs_attr_cache.default_ttl_secs", c.Cache.NFSAttrCache.DefaultTTLSecs, 30},
		{"cache.nfs_attr_cache.eviction", c.Cache.NFSAttrCache.Eviction, Eviction("lru")},
		{"smb.multichannel.enabled", c.SMB.Multichannel.Enabled, true},
		{"smb.multichannel.max_channels", c.SMB.Multichannel.MaxChannels, 8},
		{"smb.multichannel.min_channels", c.SMB.Multichannel.MinChannels, 2},
		{"smb.multichannel.prefer_rdma", c.SMB.Multichannel.PreferRDMA, true},
		{"smb.multichannel.channel_selection", c.SMB.Multichannel.ChannelSelection, ChannelSelection("weighted_by_speed")},
		{"smb.interfaces", len(c.SMB.Interfaces), 0},
		{"s3.multipart_chunk_min", c.S3.MultipartChunkMin, int64(5242880)},
		{"s3.part_timeout_ms", c.S3.PartTimeoutMS, 300000},
		{"s3.max_concurrent_parts", c.S3.MaxConcurrentParts, 4},

		{"data_dir", c.DataDir, "./cfs-data"},
		{"log.level", c.Log.Level, LogLevel("info")},
		{"log.format", c.Log.Format, LogFormat("text")},
		{"metadata.engine", c.Metadata.Engine, MetadataEngine("pebble")},
		{"metadata.pebble.path", c.Metadata.Pebble.Path, ""},
		{"metadata.pebble.cache_size_bytes", c.Metadata.Pebble.CacheSizeBytes, int64(268435456)},
		{"metadata.etcd.endpoints", c.Metadata.Etcd.Endpoints, []string{"127.0.0.1:2379"}},
		{"metadata.etcd.prefix", c.Metadata.Etcd.Prefix, "/cfs/"},
		{"blob.engine", c.Blob.Engine, BlobEngine("local")},
		{"blob.local.path", c.Blob.Local.Path, ""},
		{"blob.local.direct_io", c.Blob.Local.DirectIO, false},
		{"blob.s3.region", c.Blob.S3.Region, "us-east-1"},
		{"blob.s3.use_tls", c.Blob.S3.UseTLS, false},
		{"data.writeback_buffer_bytes", c.Data.WritebackBufferBytes, int64(268435456)},
		{"data.file_buffer_bytes", c.Data.FileBufferBytes, int64(134217728)},
		{"data.flush_interval_ms", c.Data.FlushIntervalMS, 5000},
		{"data.block_delete_delay_secs", c.Data.BlockDeleteDelaySecs, 3600},
		{"data.gc_safety_window_secs", c.Data.GCSafetyWindowSecs, 3600},
		{"data.blob_parallelism", c.Data.BlobParallelism, 8},
		{"admin.enabled", c.Admin.Enabled, true},
		{"admin.listen", c.Admin.Listen, ":8080"},
		{"nfs.enabled", c.NFS.Enabled, true},
		{"nfs.listen", c.NFS.Listen, ":2049"},
		{"nfs.mount_listen", c.NFS.MountListen, ":20048"},
		{"nfs.nlm_listen", c.NFS.NLMListen, ":32803"},
		{"nfs.portmap.enabled", c.NFS.Portmap.Enabled, false},
		{"nfs.portmap.listen", c.NFS.Portmap.Listen, ":111"},
		{"nfs.max_record_bytes", c.NFS.MaxRecordBytes, int64(4*1024*1024 + 64*1024)},
		{"nfs.max_outstanding_per_conn", c.NFS.MaxOutstandingPerConn, 64},
		{"nfs.exports", c.NFS.Exports, []Export{{
			Name: "/export", Path: "/", RootSquash: true, AnonUID: 65534, AnonGID: 65534,
			AllowedClients: []string{}, Sec: []NFSAuth{"sys"},
		}}},
		{"nfs4.enabled", c.NFS4.Enabled, true},
		{"nfs4.listen", c.NFS4.Listen, ":2049"},
		{"nfs4.lease_secs", c.NFS4.LeaseSecs, 90},
		{"nfs4.grace_secs", c.NFS4.GraceSecs, 90},
		{"nfs4.pnfs.enabled", c.NFS4.PNFS.Enabled, false},
		{"smb.enabled", c.SMB.Enabled, true},
		{"smb.listen", c.SMB.Listen, ":445"},
		{"smb.server_name", c.SMB.ServerName, "CFS-GATEWAY"},
		{"smb.signing_required", c.SMB.SigningRequired, false},
		{"smb.encryption", c.SMB.Encryption, SMBEncryption("off")},
		{"smb.shares", c.SMB.Shares, []Share{{Name: "share", Path: "/"}}},
		{"s3.enabled", c.S3.Enabled, true},
		{"s3.listen", c.S3.Listen, ":9000"},
		{"s3.root", c.S3.Root, "/"},
		{"s3.region", c.S3.Region, "us-east-1"},
		{"s3.virtual_host_suffix", c.S3.VirtualHostSuffix, ""},
		{"locks.break_timeout_ms", c.Locks.BreakTimeoutMS, 35000},
	}
	for _, tt := range tests {
		if !reflect.DeepEqual(tt.got, tt.want) {
			t.Errorf("%s = %#v, want %#v", tt.key, tt.got, tt.want)
		}
	}
}

func TestDefaultIsValid(t *testing.T) {
	if errs := Default().Validate(); errs != nil {
		t.Fatalf("Default().Validate() = %v, want no problems", errs)
	}
}

func TestExampleEqualsDefault(t *testing.T) {
	got, err := Parse([]byte(Example()), "example.yaml")
	if err != nil {
		t.Fatalf("example does not parse: %v", err)
	}
	if !reflect.DeepEqual(got, Default()) {
		t.Fatalf("example differs from Default(): %v", Diff(Default(), got))
	}
}

// TestExampleSetsEveryKey keeps the example complete: every key of the
// schema appears in it (list entries through their first element).
func TestExampleSetsEveryKey(t *testing.T) {
	d := &decoder{lines: map[string]int{}, expanding: map[*yamlNode]bool{}, budget: nodeBudget}
	root := parseNode(t, Example())
	d.decode(root, reflect.ValueOf(Default()).Elem(), "")
	if len(d.problems) > 0 {
		t.Fatalf("example has problems: %v", d.problems)
	}
	for _, k := range schemaKeys() {
		if k.elem && k.list != "smb.interfaces" {
			k.path = replaceElem(k.path)
		} else if k.elem {
			continue // the example shows an interface entry only as a comment
		}
		if _, ok := d.lines[k.path]; !ok {
			t.Errorf("example.yaml does not set %s", k.path)
		}
	}
}

func TestDurations(t *testing.T) {
	c := Default()
	tests := []struct {
		name string
		got  time.Duration
		want time.Duration
	}{
		{"connection_pool.max_idle_ms", c.ConnectionPool.MaxIdle(), 5 * time.Minute},
		{"connection_pool.connect_timeout_ms", c.ConnectionPool.ConnectTimeout(), 5 * time.Second},
		{"connection_pool.health_check_interval_ms", c.ConnectionPool.HealthCheckInterval(), 30 * time.Second},
		{"circuit_breaker.open_duration_ms", c.CircuitBreaker.OpenDuration(), 30 * time.Second},
		{"circuit_breaker.timeout_ms", c.CircuitBreaker.Timeout(), 5 * time.Second},
		{"quota.soft_limit_grace_period_seconds", c.Quota.SoftLimitGracePeriod(), 7 * 24 * time.Hour},
		{"cache.nfs_attr_cache.default_ttl_secs", c.Cache.NFSAttrCache.DefaultTTL(), 30 * time.Second},
		{"s3.part_timeout_ms", c.S3.PartTimeout(), 5 * time.Minute},
		{"data.flush_interval_ms", c.Data.FlushInterval(), 5 * time.Second},
		{"data.block_delete_delay_secs", c.Data.BlockDeleteDelay(), time.Hour},
		{"data.gc_safety_window_secs", c.Data.GCSafetyWindow(), time.Hour},
		{"nfs4.lease_secs", c.NFS4.Lease(), 90 * time.Second},
		{"nfs4.grace_secs", c.NFS4.Grace(), 90 * time.Second},
		{"locks.break_timeout_ms", c.Locks.BreakTimeout(), 35 * time.Second},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, tt.got, tt.want)
		}
	}

	// The largest value Validate accepts must not overflow.
	c.ConnectionPool.MaxIdleMS = maxDurationMS
	if got := c.ConnectionPool.MaxIdle(); got != 10*365*24*time.Hour {
		t.Errorf("MaxIdle at the limit = %v, want 87600h", got)
	}
}

func TestDerivedPaths(t *testing.T) {
	tests := []struct {
		name              string
		dataDir, meta, bl string
		wantMeta, wantBl  string
	}{
		{"defaults under data_dir", "./cfs-data", "", "", "cfs-data/meta", "cfs-data/blocks"},
		{"absolute data_dir", "/var/lib/cfs", "", "", "/var/lib/cfs/meta", "/var/lib/cfs/blocks"},
		{"explicit paths win", "/var/lib/cfs", "/ssd/meta", "/hdd/blocks", "/ssd/meta", "/hdd/blocks"},
	}
	for _, tt := range tests {
		c := Default()
		c.DataDir, c.Metadata.Pebble.Path, c.Blob.Local.Path = tt.dataDir, tt.meta, tt.bl
		if got := c.PebblePath(); got != tt.wantMeta {
			t.Errorf("%s: PebblePath() = %q, want %q", tt.name, got, tt.wantMeta)
		}
		if got := c.BlobLocalPath(); got != tt.wantBl {
			t.Errorf("%s: BlobLocalPath() = %q, want %q", tt.name, got, tt.wantBl)
		}
	}
}

func TestMaxTransferBytes(t *testing.T) {
	tests := []struct {
		record, want int64
	}{
		{4*MiB + 64*KiB, 4 * MiB},
		{1*MiB + 64*KiB, 1 * MiB},
		{1*MiB + 64*KiB + 1000, 1 * MiB},
		{64 * KiB, 0},
		{1000, 0},
	}
	for _, tt := range tests {
		if got := (NFS{MaxRecordBytes: tt.record}).MaxTransferBytes(); got != tt.want {
			t.Errorf("MaxTransferBytes(record %d) = %d, want %d", tt.record, got, tt.want)
		}
	}
}

func TestSlogLevel(t *testing.T) {
	tests := []struct {
		in   LogLevel
		want slog.Level
	}{
		{LogDebug, slog.LevelDebug},
		{LogInfo, slog.LevelInfo},
		{LogWarn, slog.LevelWarn},
		{LogError, slog.LevelError},
	}
	for _, tt := range tests {
		if got := tt.in.SlogLevel(); got != tt.want {
			t.Errorf("%s.SlogLevel() = %v, want %v", tt.in, got, tt.want)
		}
	}
}
