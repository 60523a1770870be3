// Package config owns the gateway's YAML configuration: the schema (every
// section and key with its default), strict decoding that reports every
// problem in a file with its key path and line, validation of ranges and
// enumerations, and the comparison of two configurations for live reload.
//
// It must not act on a configuration: it opens no listener, creates no
// directory, reads no certificate and starts nothing. Callers decide what to
// do with the values, and which changed values they apply without a restart
// (see Reloadable).
package config

import (
	"log/slog"
	"path/filepath"
	"time"
)

// DefaultPath is where the gateway looks for its configuration when none is
// named on the command line.
const DefaultPath = "/etc/claudefs/gateway.yaml"

// Byte sizes used by defaults and limits.
const (
	KiB int64 = 1 << 10
	MiB int64 = 1 << 20
	GiB int64 = 1 << 30
)

// Config is the whole gateway configuration. The first six sections are the
// ones the performance tuning guide names, with its key names and defaults;
// the rest belong to this gateway.
type Config struct {
	ConnectionPool ConnectionPool `yaml:"connection_pool"`
	CircuitBreaker CircuitBreaker `yaml:"circuit_breaker"`
	Quota          Quota          `yaml:"quota"`
	Cache          Cache          `yaml:"cache"`
	SMB            SMB            `yaml:"smb"`
	S3             S3             `yaml:"s3"`

	DataDir  string   `yaml:"data_dir"`
	Log      Log      `yaml:"log"`
	Metadata Metadata `yaml:"metadata"`
	Blob     Blob     `yaml:"blob"`
	Data     Data     `yaml:"data"`
	Admin    Admin    `yaml:"admin"`
	NFS      NFS      `yaml:"nfs"`
	NFS4     NFS4     `yaml:"nfs4"`
	Locks    Locks    `yaml:"locks"`
}

// ConnectionPool sizes the pool of connections to each backend node (etcd
// members, object store endpoints).
type ConnectionPool struct {
	MinPerNode            int `yaml:"min_per_node"`
	MaxPerNode            int `yaml:"max_per_node"`
	MaxIdleMS             int `yaml:"max_idle_ms"`
	ConnectTimeoutMS      int `yaml:"connect_timeout_ms"`
	HealthCheckIntervalMS int `yaml:"health_check_interval_ms"`
}

// MaxIdle is how long a connection may sit unused before it is closed.
func (p ConnectionPool) MaxIdle() time.Duration { return ms(p.MaxIdleMS) }

// ConnectTimeout bounds the dial of one backend connection.
func (p ConnectionPool) ConnectTimeout() time.Duration { return ms(p.ConnectTimeoutMS) }

// HealthCheckInterval is the period of the backend health probes.
func (p ConnectionPool) HealthCheckInterval() time.Duration { return ms(p.HealthCheckIntervalMS) }

// CircuitBreaker decides when a failing backend stops receiving requests.
type CircuitBreaker struct {
	FailureThreshold int `yaml:"failure_threshold"`
	SuccessThreshold int `yaml:"success_threshold"`
	OpenDurationMS   int `yaml:"open_duration_ms"`
	TimeoutMS        int `yaml:"timeout_ms"`
}

// OpenDuration is how long an open circuit rejects requests before it lets
// probes through (half-open).
func (b CircuitBreaker) OpenDuration() time.Duration { return ms(b.OpenDurationMS) }

// Timeout bounds one backend operation; a timeout counts as a failure.
func (b CircuitBreaker) Timeout() time.Duration { return ms(b.TimeoutMS) }

// Quota holds the grace period and the limits applied to users and groups
// that have no limits of their own.
type Quota struct {
	SoftLimitGracePeriodSeconds int         `yaml:"soft_limit_grace_period_seconds"`
	UserDefaults                QuotaLimits `yaml:"user_defaults"`
	GroupDefaults               QuotaLimits `yaml:"group_defaults"`
}

// SoftLimitGracePeriod is how long usage may stay above a soft limit before
// the soft limit is enforced like a hard one.
func (q Quota) SoftLimitGracePeriod() time.Duration { return secs(q.SoftLimitGracePeriodSeconds) }

// QuotaLimits are the soft and hard limits of one user or group. Zero means
// unlimited.
type QuotaLimits struct {
	BytesSoft  int64 `yaml:"bytes_soft"`
	BytesHard  int64 `yaml:"bytes_hard"`
	InodesSoft int64 `yaml:"inodes_soft"`
	InodesHard int64 `yaml:"inodes_hard"`
}

// Cache groups the caches of the filesystem core.
type Cache struct {
	NFSAttrCache AttrCache `yaml:"nfs_attr_cache"`
}

// AttrCache configures the attribute cache in front of the metadata store.
type AttrCache struct {
	MaxEntries     int      `yaml:"max_entries"`
	DefaultTTLSecs int      `yaml:"default_ttl_secs"`
	Eviction       Eviction `yaml:"eviction"`
}

// DefaultTTL is how long a cached attribute is served without asking the
// metadata store again. Zero turns the cache off.
func (c AttrCache) DefaultTTL() time.Duration { return secs(c.DefaultTTLSecs) }

// Eviction is the policy that picks which cache entry leaves when the cache
// is full.
type Eviction string

// Eviction policies.
const (
	EvictionLRU  Eviction = "lru"
	EvictionLFU  Eviction = "lfu"
	EvictionFIFO Eviction = "fifo"
)

// SMB configures the SMB 2.1/3.x server.
type SMB struct {
	Enabled         bool          `yaml:"enabled"`
	Listen          string        `yaml:"listen"`
	ServerName      string        `yaml:"server_name"`
	SigningRequired bool          `yaml:"signing_required"`
	Encryption      SMBEncryption `yaml:"encryption"`
	Shares          []Share       `yaml:"shares"`
	Multichannel    Multichannel  `yaml:"multichannel"`
	Interfaces      []Interface   `yaml:"interfaces"`
}

// SMBEncryption says whether SMB3 sessions encrypt their traffic.
type SMBEncryption string

// SMB encryption modes.
const (
	EncryptionOff      SMBEncryption = "off"
	EncryptionDesired  SMBEncryption = "desired"
	EncryptionRequired SMBEncryption = "required"
)

// Share is one SMB share: a directory of the namespace under a share name.
type Share struct {
	Name     string `yaml:"name"`
	Path     string `yaml:"path"`
	ReadOnly bool   `yaml:"read_only"`
}

// Multichannel configures SMB3 multi-channel sessions.
type Multichannel struct {
	Enabled          bool             `yaml:"enabled"`
	MaxChannels      int              `yaml:"max_channels"`
	MinChannels      int              `yaml:"min_channels"`
	PreferRDMA       bool             `yaml:"prefer_rdma"`
	ChannelSelection ChannelSelection `yaml:"channel_selection"`
}

// ChannelSelection is how a multi-channel session spreads work over its
// channels.
type ChannelSelection string

// Channel selection policies.
const (
	ChannelRoundRobin      ChannelSelection = "round_robin"
	ChannelWeightedBySpeed ChannelSelection = "weighted_by_speed"
	ChannelPreferRDMA      ChannelSelection = "prefer_rdma"
)

// Interface is a network interface the SMB server reports to clients for
// multi-channel (FSCTL_QUERY_NETWORK_INTERFACE_INFO).
type Interface struct {
	Name          string                `yaml:"name"`
	IP            string                `yaml:"ip"`
	LinkSpeedMbps int64                 `yaml:"link_speed_mbps"`
	Capabilities  InterfaceCapabilities `yaml:"capabilities"`
}

// InterfaceCapabilities are the offloads an interface offers.
type InterfaceCapabilities struct {
	RDMA            bool `yaml:"rdma"`
	RSS             bool `yaml:"rss"`
	TSO             bool `yaml:"tso"`
	ChecksumOffload bool `yaml:"checksum_offload"`
}

// S3 configures the S3 server.
type S3 struct {
	Enabled           bool   `yaml:"enabled"`
	Listen            string `yaml:"listen"`
	Root              string `yaml:"root"`
	Region            string `yaml:"region"`
	TLSCertFile       string `yaml:"tls_cert_file"`
	TLSKeyFile        string `yaml:"tls_key_file"`
	VirtualHostSuffix string `yaml:"virtual_host_suffix"`

	MultipartChunkMin  int64 `yaml:"multipart_chunk_min"`
	PartTimeoutMS      int   `yaml:"part_timeout_ms"`
	MaxConcurrentParts int   `yaml:"max_concurrent_parts"`

	LifecycleIntervalSecs int `yaml:"lifecycle_interval_secs"`
}

// PartTimeout bounds the receipt and storage of one multipart part.
func (s S3) PartTimeout() time.Duration { return ms(s.PartTimeoutMS) }

// LifecycleInterval is how often bucket lifecycle rules are applied; zero
// turns that off.
func (s S3) LifecycleInterval() time.Duration { return secs(s.LifecycleIntervalSecs) }

// Log configures the process log.
type Log struct {
	Level  LogLevel  `yaml:"level"`
	Format LogFormat `yaml:"format"`
}

// LogLevel is the least severe level that is logged.
type LogLevel string

// Log levels.
const (
	LogDebug LogLevel = "debug"
	LogInfo  LogLevel = "info"
	LogWarn  LogLevel = "warn"
	LogError LogLevel = "error"
)

// SlogLevel converts the level for log/slog. An unknown level maps to info;
// Validate rejects unknown levels before they get here.
func (l LogLevel) SlogLevel() slog.Level {
	switch l {
	case LogDebug:
		return slog.LevelDebug
	case LogWarn:
		return slog.LevelWarn
	case LogError:
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}

// LogFormat is the encoding of log records.
type LogFormat string

// Log formats.
const (
	LogText LogFormat = "text"
	LogJSON LogFormat = "json"
)

// Metadata selects and configures the metadata engine.
type Metadata struct {
	Engine MetadataEngine `yaml:"engine"`
	Pebble Pebble         `yaml:"pebble"`
	Etcd   Etcd           `yaml:"etcd"`
}

// MetadataEngine names a transactional key-value engine.
type MetadataEngine string

// Metadata engines.
const (
	MetadataPebble MetadataEngine = "pebble"
	MetadataEtcd   MetadataEngine = "etcd"
)

// Pebble configures the embedded single-node metadata store.
type Pebble struct {
	Path           string `yaml:"path"`
	CacheSizeBytes int64  `yaml:"cache_size_bytes"`
}

// Etcd configures the shared metadata store of a scale-out deployment.
type Etcd struct {
	Endpoints []string `yaml:"endpoints"`
	Prefix    string   `yaml:"prefix"`
	// SessionTTLSecs is the TTL of the gateway's etcd session, which holds
	// its lock records: how long its locks outlive a dead or stalled
	// gateway.
	SessionTTLSecs int      `yaml:"session_ttl_secs"`
	Username       string   `yaml:"username"`
	Password       string   `yaml:"password" secret:"true"`
	TLS            TLSFiles `yaml:"tls"`
}

// SessionTTL is the TTL of the gateway's etcd session.
func (e Etcd) SessionTTL() time.Duration { return time.Duration(e.SessionTTLSecs) * time.Second }

// TLSFiles names the PEM files of a TLS client.
type TLSFiles struct {
	CAFile   string `yaml:"ca_file"`
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// Blob selects and configures the store of data blocks.
type Blob struct {
	Engine BlobEngine `yaml:"engine"`
	Local  BlobLocal  `yaml:"local"`
	S3     BlobS3     `yaml:"s3"`
}

// BlobEngine names a block store.
type BlobEngine string

// Block stores.
const (
	BlobLocalEngine BlobEngine = "local"
	BlobS3Engine    BlobEngine = "s3"
)

// BlobLocal keeps blocks in a local directory.
type BlobLocal struct {
	Path string `yaml:"path"`
	// DirectIO writes large blocks around the page cache (see localblob).
	DirectIO bool `yaml:"direct_io"`
}

// BlobS3 keeps blocks in an S3-compatible object store.
type BlobS3 struct {
	Endpoint  string `yaml:"endpoint"`
	Bucket    string `yaml:"bucket"`
	Prefix    string `yaml:"prefix"`
	Region    string `yaml:"region"`
	AccessKey string `yaml:"access_key"`
	SecretKey string `yaml:"secret_key" secret:"true"`
	UseTLS    bool   `yaml:"use_tls"`
	CAFile    string `yaml:"ca_file"`
}

// Data configures the data path of the filesystem core.
type Data struct {
	WritebackBufferBytes int64 `yaml:"writeback_buffer_bytes"`
	FileBufferBytes      int64 `yaml:"file_buffer_bytes"`
	FlushIntervalMS      int   `yaml:"flush_interval_ms"`
	BlockDeleteDelaySecs int   `yaml:"block_delete_delay_secs"`
	GCSafetyWindowSecs   int   `yaml:"gc_safety_window_secs"`
	BlobParallelism      int   `yaml:"blob_parallelism"`
}

// FlushInterval is the longest time written data stays only in memory.
func (d Data) FlushInterval() time.Duration { return ms(d.FlushIntervalMS) }

// BlockDeleteDelay is how long an unreferenced block is kept before it is
// deleted.
func (d Data) BlockDeleteDelay() time.Duration { return secs(d.BlockDeleteDelaySecs) }

// GCSafetyWindow is the age below which the garbage collector leaves a block
// that no metadata references.
func (d Data) GCSafetyWindow() time.Duration { return secs(d.GCSafetyWindowSecs) }

// Admin configures the HTTP endpoint for health, metrics and administration.
type Admin struct {
	Enabled bool   `yaml:"enabled"`
	Listen  string `yaml:"listen"`
	// PProf serves Go's runtime profiles under /debug/pprof/.
	PProf bool `yaml:"pprof"`
}

// NFS configures the NFSv3 server, its side protocols (MOUNT, NLM, portmap)
// and the exports that NFSv3 and NFSv4 share.
type NFS struct {
	Enabled               bool     `yaml:"enabled"`
	Listen                string   `yaml:"listen"`
	MountListen           string   `yaml:"mount_listen"`
	NLMListen             string   `yaml:"nlm_listen"`
	Portmap               Portmap  `yaml:"portmap"`
	MaxRecordBytes        int64    `yaml:"max_record_bytes"`
	MaxOutstandingPerConn int      `yaml:"max_outstanding_per_conn"`
	Exports               []Export `yaml:"exports"`
}

// RPCHeaderAllowance is the part of an RPC record kept for the RPC and NFS
// headers around the data of a READ or WRITE.
const RPCHeaderAllowance = 64 * KiB

// MaxTransferBytes is the largest READ or WRITE payload the NFS servers
// advertise: the record size less the header allowance, rounded down to
// 4 KiB so that transfers stay page-aligned.
func (n NFS) MaxTransferBytes() int64 {
	t := n.MaxRecordBytes - RPCHeaderAllowance
	t -= t % (4 * KiB)
	if t < 0 {
		return 0
	}
	return t
}

// Portmap configures the built-in portmapper (rpcbind version 2).
type Portmap struct {
	Enabled bool   `yaml:"enabled"`
	Listen  string `yaml:"listen"`
}

// Export is one directory of the namespace offered to NFS clients.
type Export struct {
	Name           string    `yaml:"name"`
	Path           string    `yaml:"path"`
	ReadOnly       bool      `yaml:"read_only"`
	RootSquash     bool      `yaml:"root_squash"`
	AllSquash      bool      `yaml:"all_squash"`
	AnonUID        uint32    `yaml:"anon_uid"`
	AnonGID        uint32    `yaml:"anon_gid"`
	AllowedClients []string  `yaml:"allowed_clients"`
	Sec            []NFSAuth `yaml:"sec"`
}

// NFSAuth is an RPC security flavor an export accepts.
type NFSAuth string

// RPC security flavors.
const (
	AuthSys  NFSAuth = "sys"
	AuthNone NFSAuth = "none"
)

// NFS4 configures the NFSv4.1 server.
type NFS4 struct {
	Enabled   bool   `yaml:"enabled"`
	Listen    string `yaml:"listen"`
	LeaseSecs int    `yaml:"lease_secs"`
	GraceSecs int    `yaml:"grace_secs"`
	PNFS      PNFS   `yaml:"pnfs"`
}

// Lease is the NFSv4 lease period: a client that does not renew within it
// loses its state.
func (n NFS4) Lease() time.Duration { return secs(n.LeaseSecs) }

// Grace is how long after a restart only reclaims of old state are allowed.
func (n NFS4) Grace() time.Duration { return secs(n.GraceSecs) }

// PNFS configures parallel NFS layouts.
type PNFS struct {
	Enabled bool `yaml:"enabled"`
}

// Locks configures the lock, lease and delegation manager.
type Locks struct {
	BreakTimeoutMS int `yaml:"break_timeout_ms"`
}

// BreakTimeout is how long a holder of an oplock, lease or delegation has to
// acknowledge a break or recall before it is revoked.
func (l Locks) BreakTimeout() time.Duration { return ms(l.BreakTimeoutMS) }

// Default returns the configuration used when no file is given. Every value
// here is documented in docs/configuration.md and written out in
// example.yaml; tests keep the three in step.
func Default() *Config {
	return &Config{
		ConnectionPool: ConnectionPool{
			MinPerNode:            4,
			MaxPerNode:            32,
			MaxIdleMS:             300000,
			ConnectTimeoutMS:      5000,
			HealthCheckIntervalMS: 30000,
		},
		CircuitBreaker: CircuitBreaker{
			FailureThreshold: 5,
			SuccessThreshold: 2,
			OpenDurationMS:   30000,
			TimeoutMS:        5000,
		},
		Quota: Quota{
			SoftLimitGracePeriodSeconds: 604800,
			UserDefaults: QuotaLimits{
				BytesSoft:  10737418240,
				BytesHard:  12884901888,
				InodesSoft: 10000,
				InodesHard: 12000,
			},
			GroupDefaults: QuotaLimits{
				BytesSoft: 107374182400,
				BytesHard: 128849018880,
			},
		},
		Cache: Cache{NFSAttrCache: AttrCache{
			MaxEntries:     10000,
			DefaultTTLSecs: 30,
			Eviction:       EvictionLRU,
		}},
		SMB: SMB{
			Enabled:    true,
			Listen:     ":445",
			ServerName: "CFS-GATEWAY",
			Encryption: EncryptionOff,
			Shares:     []Share{{Name: "share", Path: "/"}},
			Multichannel: Multichannel{
				Enabled:          true,
				MaxChannels:      8,
				MinChannels:      2,
				PreferRDMA:       true,
				ChannelSelection: ChannelWeightedBySpeed,
			},
			Interfaces: []Interface{},
		},
		S3: S3{
			Enabled:            true,
			Listen:             ":9000",
			Root:               "/",
			Region:             "us-east-1",
			MultipartChunkMin:  5242880,
			PartTimeoutMS:      300000,
			MaxConcurrentParts: 4,

			LifecycleIntervalSecs: 3600,
		},
		DataDir: "./cfs-data",
		Log:     Log{Level: LogInfo, Format: LogText},
		Metadata: Metadata{
			Engine: MetadataPebble,
			Pebble: Pebble{CacheSizeBytes: 256 * MiB},
			Etcd: Etcd{
				Endpoints:      []string{"127.0.0.1:2379"},
				Prefix:         "/cfs/",
				SessionTTLSecs: 10,
			},
		},
		Blob: Blob{
			Engine: BlobLocalEngine,
			Local:  BlobLocal{DirectIO: false},
			S3:     BlobS3{Region: "us-east-1"},
		},
		Data: Data{
			WritebackBufferBytes: 256 * MiB,
			FileBufferBytes:      128 * MiB,
			FlushIntervalMS:      5000,
			BlockDeleteDelaySecs: 3600,
			GCSafetyWindowSecs:   3600,
			BlobParallelism:      8,
		},
		Admin: Admin{Enabled: true, Listen: ":8080"},
		NFS: NFS{
			Enabled:               true,
			Listen:                ":2049",
			MountListen:           ":20048",
			NLMListen:             ":32803",
			Portmap:               Portmap{Listen: ":111"},
			MaxRecordBytes:        4*MiB + RPCHeaderAllowance,
			MaxOutstandingPerConn: 64,
			Exports:               []Export{exportDefaults("/export")},
		},
		NFS4: NFS4{
			Enabled:   true,
			Listen:    ":2049",
			LeaseSecs: 90,
			GraceSecs: 90,
		},
		Locks: Locks{BreakTimeoutMS: 35000},
	}
}

// exportDefaults is an export with every key a list entry may leave out.
func exportDefaults(name string) Export {
	return Export{
		Name:           name,
		Path:           "/",
		RootSquash:     true,
		AnonUID:        65534,
		AnonGID:        65534,
		AllowedClients: []string{},
		Sec:            []NFSAuth{AuthSys},
	}
}

// setDefaults fills an export entry before the file's keys are applied, so
// that an entry naming only "name" gets the documented defaults.
func (e *Export) setDefaults() { *e = exportDefaults("") }

// setDefaults: a share entry defaults to the namespace root.
func (s *Share) setDefaults() { *s = Share{Path: "/"} }

// PebblePath is the directory of the Pebble store: metadata.pebble.path, or
// <data_dir>/meta when that is empty.
func (c *Config) PebblePath() string {
	if c.Metadata.Pebble.Path != "" {
		return c.Metadata.Pebble.Path
	}
	return filepath.Join(c.DataDir, "meta")
}

// BlobLocalPath is the directory of the local block store: blob.local.path,
// or <data_dir>/blocks when that is empty.
func (c *Config) BlobLocalPath() string {
	if c.Blob.Local.Path != "" {
		return c.Blob.Local.Path
	}
	return filepath.Join(c.DataDir, "blocks")
}

func ms(n int) time.Duration   { return time.Duration(n) * time.Millisecond }
func secs(n int) time.Duration { return time.Duration(n) * time.Second }
