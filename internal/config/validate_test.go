package config

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// TestValidate: each change to the defaults yields exactly the listed
// problems (by path), or none.
func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(c *Config)
		want   []string
	}{
		{"defaults", func(c *Config) {}, nil},

		// Guide sections.
		{"pool min above max", func(c *Config) { c.ConnectionPool.MinPerNode = 33 },
			[]string{"connection_pool.min_per_node"}},
		{"pool min equal max", func(c *Config) { c.ConnectionPool.MinPerNode = 32 }, nil},
		{"pool zero sizes", func(c *Config) { c.ConnectionPool.MinPerNode, c.ConnectionPool.MaxPerNode = 0, 0 },
			[]string{"connection_pool.min_per_node", "connection_pool.max_per_node"}},
		{"pool zero timeouts", func(c *Config) {
			c.ConnectionPool.MaxIdleMS, c.ConnectionPool.ConnectTimeoutMS, c.ConnectionPool.HealthCheckIntervalMS = 0, -1, 0
		}, []string{"connection_pool.max_idle_ms", "connection_pool.connect_timeout_ms", "connection_pool.health_check_interval_ms"}},
		{"duration above ten years", func(c *Config) { c.CircuitBreaker.OpenDurationMS = maxDurationMS + 1 },
			[]string{"circuit_breaker.open_duration_ms"}},
		{"breaker zero", func(c *Config) { c.CircuitBreaker = CircuitBreaker{} }, []string{
			"circuit_breaker.failure_threshold", "circuit_breaker.success_threshold",
			"circuit_breaker.open_duration_ms", "circuit_breaker.timeout_ms"}},
		{"breaker guide latency profile", func(c *Config) {
			c.CircuitBreaker = CircuitBreaker{FailureThreshold: 3, SuccessThreshold: 2, OpenDurationMS: 15000, TimeoutMS: 2000}
		}, nil},
		{"quota soft above hard", func(c *Config) {
			c.Quota.UserDefaults.BytesSoft = c.Quota.UserDefaults.BytesHard + 1
			c.Quota.GroupDefaults.InodesSoft, c.Quota.GroupDefaults.InodesHard = 10, 5
		}, []string{"quota.user_defaults.bytes_soft", "quota.group_defaults.inodes_soft"}},
		{"quota soft without hard", func(c *Config) { c.Quota.UserDefaults.BytesHard = 0 }, nil},
		{"quota negative", func(c *Config) {
			c.Quota.UserDefaults.InodesHard = -1
			c.Quota.SoftLimitGracePeriodSeconds = -1
		}, []string{"quota.soft_limit_grace_period_seconds", "quota.user_defaults.inodes_hard"}},
		{"quota no grace", func(c *Config) { c.Quota.SoftLimitGracePeriodSeconds = 0 }, nil},
		{"cache", func(c *Config) {
			c.Cache.NFSAttrCache = AttrCache{MaxEntries: 0, DefaultTTLSecs: -1, Eviction: "random"}
		}, []string{"cache.nfs_attr_cache.max_entries", "cache.nfs_attr_cache.default_ttl_secs", "cache.nfs_attr_cache.eviction"}},
		{"cache off", func(c *Config) { c.Cache.NFSAttrCache.DefaultTTLSecs = 0 }, nil},

		// SMB.
		{"multichannel min above max", func(c *Config) { c.SMB.Multichannel.MinChannels = 9 },
			[]string{"smb.multichannel.min_channels"}},
		{"multichannel zero", func(c *Config) { c.SMB.Multichannel.MinChannels, c.SMB.Multichannel.MaxChannels = 0, 0 },
			[]string{"smb.multichannel.min_channels", "smb.multichannel.max_channels"}},
		{"channel selection", func(c *Config) { c.SMB.Multichannel.ChannelSelection = "fastest" },
			[]string{"smb.multichannel.channel_selection"}},
		{"interfaces", func(c *Config) {
			c.SMB.Interfaces = []Interface{
				{Name: "eth0", IP: "10.0.0.10", LinkSpeedMbps: 25000},
				{Name: "eth0", IP: "10.0.0.10", LinkSpeedMbps: 0},
				{Name: "", IP: "not-an-ip", LinkSpeedMbps: 1},
				{Name: "eth2", IP: "fd00::1", LinkSpeedMbps: 100000},
			}
		}, []string{"smb.interfaces[1].name", "smb.interfaces[1].ip", "smb.interfaces[1].link_speed_mbps",
			"smb.interfaces[2].name", "smb.interfaces[2].ip"}},
		{"server name", func(c *Config) { c.SMB.ServerName = "THIS-NAME-IS-TOO-LONG" }, []string{"smb.server_name"}},
		{"server name chars", func(c *Config) { c.SMB.ServerName = "cfs gw" }, []string{"smb.server_name"}},
		{"encryption", func(c *Config) { c.SMB.Encryption = "on" }, []string{"smb.encryption"}},
		{"shares", func(c *Config) {
			c.SMB.Shares = []Share{
				{Name: "Data", Path: "/data"},
				{Name: "data", Path: "/other"},
				{Name: "a/b", Path: "rel"},
				{Name: "ipc$", Path: "/"},
				{Name: "", Path: "/x/../y"},
				{Name: "hidden$", Path: "/"},
			}
		}, []string{"smb.shares[1].name", "smb.shares[2].name", "smb.shares[2].path",
			"smb.shares[3].name", "smb.shares[4].name", "smb.shares[4].path"}},
		{"no shares while enabled", func(c *Config) { c.SMB.Shares = nil }, []string{"smb.shares"}},
		{"no shares while disabled", func(c *Config) { c.SMB.Shares, c.SMB.Enabled = nil, false }, nil},

		// S3.
		{"multipart chunk floor", func(c *Config) { c.S3.MultipartChunkMin = MiB - 1 }, []string{"s3.multipart_chunk_min"}},
		{"multipart chunk 1 MiB", func(c *Config) { c.S3.MultipartChunkMin = MiB }, nil},
		{"multipart chunk guide throughput", func(c *Config) { c.S3.MultipartChunkMin, c.S3.MaxConcurrentParts = 104857600, 8 }, nil},
		{"multipart chunk ceiling", func(c *Config) { c.S3.MultipartChunkMin = 5*GiB + 1 }, []string{"s3.multipart_chunk_min"}},
		{"s3 parts", func(c *Config) { c.S3.MaxConcurrentParts, c.S3.PartTimeoutMS = 0, 0 },
			[]string{"s3.part_timeout_ms", "s3.max_concurrent_parts"}},
		{"s3 root and region", func(c *Config) { c.S3.Root, c.S3.Region = "buckets", "US East" },
			[]string{"s3.root", "s3.region"}},
		{"s3 tls half", func(c *Config) { c.S3.TLSCertFile = "cert.pem" }, []string{"s3.tls_key_file"}},
		{"s3 tls both", func(c *Config) { c.S3.TLSCertFile, c.S3.TLSKeyFile = "cert.pem", "key.pem" }, nil},
		{"s3 virtual host", func(c *Config) { c.S3.VirtualHostSuffix = "https://s3.example.com" }, []string{"s3.virtual_host_suffix"}},
		{"s3 virtual host ok", func(c *Config) { c.S3.VirtualHostSuffix = "s3.example.com" }, nil},

		// Gateway sections.
		{"data_dir empty", func(c *Config) { c.DataDir = "" }, []string{"data_dir"}},
		{"log", func(c *Config) { c.Log = Log{Level: "trace", Format: "xml"} }, []string{"log.level", "log.format"}},
		{"metadata engine", func(c *Config) { c.Metadata.Engine = "tikv" }, []string{"metadata.engine"}},
		{"pebble cache", func(c *Config) { c.Metadata.Pebble.CacheSizeBytes = 1000 }, []string{"metadata.pebble.cache_size_bytes"}},
		{"etcd without endpoints", func(c *Config) { c.Metadata.Engine, c.Metadata.Etcd.Endpoints = "etcd", nil },
			[]string{"metadata.etcd.endpoints"}},
		{"etcd endpoints unused", func(c *Config) { c.Metadata.Etcd.Endpoints = nil }, nil},
		{"etcd endpoint forms", func(c *Config) {
			c.Metadata.Engine = "etcd"
			c.Metadata.Etcd.Endpoints = []string{
				"10.0.0.1:2379", "https://etcd-1.example.com:2379", "http://[fd00::1]:2379",
				"etcd-1", "ftp://etcd:2379", "http://etcd:2379/v3", "etcd:99999",
			}
		}, []string{"metadata.etcd.endpoints[3]", "metadata.etcd.endpoints[4]", "metadata.etcd.endpoints[5]", "metadata.etcd.endpoints[6]"}},
		{"etcd prefix", func(c *Config) { c.Metadata.Etcd.Prefix = "/cfs" }, []string{"metadata.etcd.prefix"}},
		{"etcd password alone", func(c *Config) { c.Metadata.Etcd.Password = "x" }, []string{"metadata.etcd.username"}},
		{"etcd username alone", func(c *Config) { c.Metadata.Etcd.Username = "x" }, nil},
		{"etcd tls half", func(c *Config) { c.Metadata.Etcd.TLS.KeyFile = "k.pem" }, []string{"metadata.etcd.tls.cert_file"}},
		{"blob engine", func(c *Config) { c.Blob.Engine = "ceph" }, []string{"blob.engine"}},
		{"blob s3 required", func(c *Config) { c.Blob.Engine, c.Blob.S3.Region = "s3", "" },
			[]string{"blob.s3.endpoint", "blob.s3.bucket", "blob.s3.region"}},
		{"blob s3 complete", func(c *Config) {
			c.Blob.Engine = "s3"
			c.Blob.S3 = BlobS3{Endpoint: "minio.local:9000", Bucket: "cfs-blocks", Prefix: "gw1/", Region: "us-east-1",
				AccessKey: "a", SecretKey: "s", UseTLS: true}
		}, nil},
		{"blob s3 bad values", func(c *Config) {
			c.Blob.S3 = BlobS3{Endpoint: "https://minio:9000", Bucket: "Bad_Bucket", Prefix: "/x", Region: "r", AccessKey: "a"}
		}, []string{"blob.s3.endpoint", "blob.s3.bucket", "blob.s3.prefix", "blob.s3.secret_key"}},
		{"data buffers", func(c *Config) { c.Data.FileBufferBytes = c.Data.WritebackBufferBytes + 1 },
			[]string{"data.file_buffer_bytes"}},
		{"data ranges", func(c *Config) {
			c.Data = Data{WritebackBufferBytes: 0, FileBufferBytes: 1, FlushIntervalMS: 0,
				BlockDeleteDelaySecs: -1, GCSafetyWindowSecs: 59, BlobParallelism: 0}
		}, []string{"data.file_buffer_bytes", "data.writeback_buffer_bytes", "data.flush_interval_ms",
			"data.block_delete_delay_secs", "data.gc_safety_window_secs", "data.blob_parallelism"}},
		{"immediate block deletion", func(c *Config) { c.Data.BlockDeleteDelaySecs = 0 }, nil},
		{"locks", func(c *Config) { c.Locks.BreakTimeoutMS = 0 }, []string{"locks.break_timeout_ms"}},

		// NFS.
		{"nfs record size", func(c *Config) { c.NFS.MaxRecordBytes, c.NFS.MaxOutstandingPerConn = 1000, 0 },
			[]string{"nfs.max_record_bytes", "nfs.max_outstanding_per_conn"}},
		{"exports", func(c *Config) {
			c.NFS.Exports = []Export{
				exportDefaults("/a"),
				exportDefaults("/a"),
				{Name: "b", Path: "/x/", Sec: []NFSAuth{"krb5", "sys", "sys"},
					AllowedClients: []string{"10.0.0.0/8", "fd00::/8", "host-1.example.com", "*.example.com", "*", "10.0.0.0/40", "bad host", "*.*"}},
				{Name: "/c", Path: "/", Sec: []NFSAuth{}},
			}
		}, []string{"nfs.exports[1].name", "nfs.exports[2].name", "nfs.exports[2].path",
			"nfs.exports[2].allowed_clients[5]", "nfs.exports[2].allowed_clients[6]", "nfs.exports[2].allowed_clients[7]",
			"nfs.exports[2].sec[0]", "nfs.exports[2].sec[2]", "nfs.exports[3].sec"}},
		{"no exports while only nfs4 is on", func(c *Config) { c.NFS.Exports, c.NFS.Enabled = nil, false }, []string{"nfs.exports"}},
		{"no exports while both are off", func(c *Config) { c.NFS.Exports, c.NFS.Enabled, c.NFS4.Enabled = nil, false, false }, nil},
		{"nfs4 times", func(c *Config) { c.NFS4.LeaseSecs, c.NFS4.GraceSecs = 120, 90 }, []string{"nfs4.grace_secs"}},
		{"nfs4 zero", func(c *Config) { c.NFS4.LeaseSecs, c.NFS4.GraceSecs = 0, 0 }, []string{"nfs4.lease_secs", "nfs4.grace_secs"}},

		// Listen addresses.
		{"listen syntax", func(c *Config) {
			c.Admin.Listen, c.NFS.Listen, c.NFS.MountListen, c.NFS.NLMListen, c.SMB.Listen = "8080", ":70000", "bad host:1", "[::1]:20048", "localhost:445"
		}, []string{"admin.listen", "nfs.listen", "nfs.mount_listen"}},
		{"listen collision", func(c *Config) { c.S3.Listen = ":8080" }, []string{"s3.listen"}},
		{"listen collision on one host", func(c *Config) { c.S3.Listen = "127.0.0.1:445" }, []string{"s3.listen"}},
		{"listen distinct hosts", func(c *Config) { c.Admin.Listen, c.S3.Listen = "127.0.0.1:9000", "10.0.0.1:9000" }, nil},
		{"listen port 0 never collides", func(c *Config) {
			c.Admin.Listen, c.NFS.Listen, c.NFS.MountListen, c.NFS.NLMListen = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
			c.NFS4.Listen, c.SMB.Listen, c.S3.Listen = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
		}, nil},
		{"listen collision with disabled service", func(c *Config) { c.S3.Listen, c.Admin.Enabled = ":8080", false }, nil},
		{"nfs and nfs4 share a port", func(c *Config) { c.NFS4.Listen = "0.0.0.0:2049" }, nil},
		{"nfs4 on its own port", func(c *Config) { c.NFS4.Listen = ":2050" }, nil},
		{"portmap collides only when on", func(c *Config) { c.NFS.Portmap.Listen = ":2049" }, nil},
		{"portmap on", func(c *Config) { c.NFS.Portmap.Enabled, c.NFS.Portmap.Listen = true, ":2049" },
			[]string{"nfs.portmap.listen"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.change(c)
			errs := c.Validate()
			var got []string
			for _, e := range errs {
				var fe *FieldError
				if !errors.As(e, &fe) {
					t.Fatalf("problem %v is %T, want *FieldError", e, e)
				}
				if fe.Line != 0 || fe.Msg == "" {
					t.Errorf("problem %+v: want a message and no line", fe)
				}
				got = append(got, fe.Path)
			}
			want := slices.Clone(tt.want)
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("problems at %q, want %q\n%s", got, want, joinErrs(errs))
			}
		})
	}
}

func joinErrs(errs []error) string {
	var b strings.Builder
	for _, e := range errs {
		b.WriteString("  " + e.Error() + "\n")
	}
	return b.String()
}

func TestFieldErrorText(t *testing.T) {
	tests := []struct {
		e    FieldError
		want string
	}{
		{FieldError{Path: "circuit_breaker.failure_threshold", Msg: "must be at least 1 (got 0)"},
			"circuit_breaker.failure_threshold: must be at least 1 (got 0)"},
		{FieldError{Path: "log.level", Msg: `must be one of the allowed values (got "x")`, Allowed: "debug, info", Line: 7},
			`line 7: log.level: must be one of the allowed values (got "x"); allowed: debug, info`},
		{FieldError{Msg: "invalid YAML: found character that cannot start any token", Line: 3},
			"line 3: invalid YAML: found character that cannot start any token"},
	}
	for _, tt := range tests {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}
