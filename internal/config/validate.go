package config

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"path"
	"strconv"
	"strings"
)

// Limits that are not obvious from the key itself. Each is documented in
// docs/configuration.md.
const (
	// maxDurationSecs caps every *_ms and *_secs key at ten years: far beyond
	// any sensible setting and far below where time.Duration overflows.
	maxDurationSecs = 10 * 365 * 24 * 3600
	maxDurationMS   = maxDurationSecs * 1000

	// minMultipartChunk is below the 5 MiB that AWS requires so that test
	// setups can exercise multipart uploads with small objects.
	minMultipartChunk = 1 * MiB
	// maxMultipartChunk is the largest part S3 allows.
	maxMultipartChunk = 5 * GiB

	// minGCSafetyWindowSecs keeps the garbage collector away from blocks
	// whose metadata transaction may still be in flight.
	minGCSafetyWindowSecs = 60

	minFileBufferBytes = 1 * MiB
	minPebbleCache     = 1 * MiB

	minRecordBytes = RPCHeaderAllowance + 64*KiB
	maxRecordBytes = 64 * MiB

	maxSMBServerName = 15 // a NetBIOS name
	maxShareName     = 80
)

// Validate checks ranges, enumerations and the consistency between keys. It
// returns every problem it finds, each a *FieldError; nil means valid.
// Validate reads no file and resolves no host name.
func (c *Config) Validate() []error {
	ps := c.validate()
	if len(ps) == 0 {
		return nil
	}
	out := make([]error, len(ps))
	for i, p := range ps {
		out[i] = p
	}
	return out
}

type checker struct{ problems []*FieldError }

func (k *checker) add(path, msg, allowed string) {
	k.problems = append(k.problems, &FieldError{Path: path, Msg: msg, Allowed: allowed})
}

func (k *checker) addf(path, format string, args ...any) {
	k.add(path, fmt.Sprintf(format, args...), "")
}

func (k *checker) atLeast(path string, got, lo int64) {
	if got < lo {
		k.addf(path, "must be at least %d (got %d)", lo, got)
	}
}

func (k *checker) between(path string, got, lo, hi int64) {
	switch {
	case got < lo:
		k.addf(path, "must be at least %d (got %d)", lo, got)
	case got > hi:
		k.addf(path, "must be at most %d (got %d)", hi, got)
	}
}

// millis checks a timeout or interval in milliseconds; zero is not allowed.
func (k *checker) millis(path string, got int) {
	k.between(path, int64(got), 1, maxDurationMS)
}

// seconds checks a duration in seconds that may be zero.
func (k *checker) seconds(path string, got, lo int) {
	k.between(path, int64(got), int64(lo), maxDurationSecs)
}

func (k *checker) enum(path, got string, allowed ...string) {
	for _, a := range allowed {
		if got == a {
			return
		}
	}
	k.add(path, fmt.Sprintf("must be one of the allowed values (got %q)", got), strings.Join(allowed, ", "))
}

func (k *checker) listen(path, addr string) {
	if err := checkListen(addr); err != "" {
		k.addf(path, "%s (got %q)", err, addr)
	}
}

// absPath checks a slash-separated path inside the namespace.
func (k *checker) absPath(p, got, example string) {
	switch {
	case !strings.HasPrefix(got, "/"):
		k.addf(p, "must be an absolute path such as %q (got %q)", example, got)
	case path.Clean(got) != got:
		k.addf(p, "must be written in clean form %q (got %q)", path.Clean(got), got)
	}
}

// bothOrNeither checks a pair of keys that only make sense together.
func (k *checker) bothOrNeither(pa, a, pb, b string) {
	switch {
	case a != "" && b == "":
		k.addf(pb, "must be set when %s is set", pa)
	case a == "" && b != "":
		k.addf(pa, "must be set when %s is set", pb)
	}
}

func (c *Config) validate() []*FieldError {
	k := &checker{}
	c.validateGuideSections(k)
	c.validateStorage(k)
	c.validateProtocols(k)
	c.validateListeners(k)
	return k.problems
}

func (c *Config) validateGuideSections(k *checker) {
	p := c.ConnectionPool
	k.atLeast("connection_pool.min_per_node", int64(p.MinPerNode), 1)
	k.atLeast("connection_pool.max_per_node", int64(p.MaxPerNode), 1)
	if p.MinPerNode >= 1 && p.MaxPerNode >= 1 && p.MinPerNode > p.MaxPerNode {
		k.addf("connection_pool.min_per_node", "must not exceed max_per_node (%d) (got %d)", p.MaxPerNode, p.MinPerNode)
	}
	k.millis("connection_pool.max_idle_ms", p.MaxIdleMS)
	k.millis("connection_pool.connect_timeout_ms", p.ConnectTimeoutMS)
	k.millis("connection_pool.health_check_interval_ms", p.HealthCheckIntervalMS)

	b := c.CircuitBreaker
	k.atLeast("circuit_breaker.failure_threshold", int64(b.FailureThreshold), 1)
	k.atLeast("circuit_breaker.success_threshold", int64(b.SuccessThreshold), 1)
	k.millis("circuit_breaker.open_duration_ms", b.OpenDurationMS)
	k.millis("circuit_breaker.timeout_ms", b.TimeoutMS)

	q := c.Quota
	k.seconds("quota.soft_limit_grace_period_seconds", q.SoftLimitGracePeriodSeconds, 0)
	validateLimits(k, "quota.user_defaults", q.UserDefaults)
	validateLimits(k, "quota.group_defaults", q.GroupDefaults)

	a := c.Cache.NFSAttrCache
	k.atLeast("cache.nfs_attr_cache.max_entries", int64(a.MaxEntries), 1)
	k.seconds("cache.nfs_attr_cache.default_ttl_secs", a.DefaultTTLSecs, 0)
	k.enum("cache.nfs_attr_cache.eviction", string(a.Eviction),
		string(EvictionLRU), string(EvictionLFU), string(EvictionFIFO))

	// smb.* and s3.* are checked with the other protocols.
}

func validateLimits(k *checker, prefix string, l QuotaLimits) {
	k.atLeast(prefix+".bytes_soft", l.BytesSoft, 0)
	k.atLeast(prefix+".bytes_hard", l.BytesHard, 0)
	k.atLeast(prefix+".inodes_soft", l.InodesSoft, 0)
	k.atLeast(prefix+".inodes_hard", l.InodesHard, 0)
	if l.BytesSoft > 0 && l.BytesHard > 0 && l.BytesSoft > l.BytesHard {
		k.addf(prefix+".bytes_soft", "must not exceed bytes_hard (%d) (got %d)", l.BytesHard, l.BytesSoft)
	}
	if l.InodesSoft > 0 && l.InodesHard > 0 && l.InodesSoft > l.InodesHard {
		k.addf(prefix+".inodes_soft", "must not exceed inodes_hard (%d) (got %d)", l.InodesHard, l.InodesSoft)
	}
}

func (c *Config) validateStorage(k *checker) {
	if c.DataDir == "" {
		k.addf("data_dir", "must not be empty; it holds the metadata and blocks of a single-node gateway")
	}
	k.enum("log.level", string(c.Log.Level), string(LogDebug), string(LogInfo), string(LogWarn), string(LogError))
	k.enum("log.format", string(c.Log.Format), string(LogText), string(LogJSON))

	m := c.Metadata
	k.enum("metadata.engine", string(m.Engine), string(MetadataPebble), string(MetadataEtcd))
	k.atLeast("metadata.pebble.cache_size_bytes", m.Pebble.CacheSizeBytes, minPebbleCache)
	e := m.Etcd
	if m.Engine == MetadataEtcd && len(e.Endpoints) == 0 {
		k.addf("metadata.etcd.endpoints", "must list at least one etcd endpoint when metadata.engine is etcd")
	}
	for i, ep := range e.Endpoints {
		if msg := checkEtcdEndpoint(ep); msg != "" {
			k.addf(fmt.Sprintf("metadata.etcd.endpoints[%d]", i), "%s (got %q)", msg, ep)
		}
	}
	if !strings.HasSuffix(e.Prefix, "/") {
		k.addf("metadata.etcd.prefix", "must end with \"/\" so that it cannot be a prefix of another gateway's prefix (got %q)", e.Prefix)
	}
	k.between("metadata.etcd.session_ttl_secs", int64(e.SessionTTLSecs), 2, 3600)
	if e.Password != "" && e.Username == "" {
		k.addf("metadata.etcd.username", "must be set when metadata.etcd.password is set")
	}
	k.bothOrNeither("metadata.etcd.tls.cert_file", e.TLS.CertFile, "metadata.etcd.tls.key_file", e.TLS.KeyFile)

	b := c.Blob
	k.enum("blob.engine", string(b.Engine), string(BlobLocalEngine), string(BlobS3Engine))
	s := b.S3
	if b.Engine == BlobS3Engine {
		if s.Endpoint == "" {
			k.addf("blob.s3.endpoint", "must be set when blob.engine is s3")
		}
		if s.Bucket == "" {
			k.addf("blob.s3.bucket", "must be set when blob.engine is s3")
		}
		if s.Region == "" {
			k.addf("blob.s3.region", "must be set when blob.engine is s3")
		}
	}
	if s.Endpoint != "" {
		if msg := checkHostPort(s.Endpoint, true); msg != "" {
			k.addf("blob.s3.endpoint", "%s (got %q)", msg, s.Endpoint)
		}
	}
	if s.Bucket != "" && !validBucketName(s.Bucket) {
		k.addf("blob.s3.bucket", "must be an S3 bucket name: 3 to 63 lower-case letters, digits, '.' or '-', starting and ending with a letter or digit (got %q)", s.Bucket)
	}
	if strings.HasPrefix(s.Prefix, "/") {
		k.addf("blob.s3.prefix", "must not start with \"/\"; object keys have no leading slash (got %q)", s.Prefix)
	}
	k.bothOrNeither("blob.s3.access_key", s.AccessKey, "blob.s3.secret_key", s.SecretKey)

	d := c.Data
	k.atLeast("data.file_buffer_bytes", d.FileBufferBytes, minFileBufferBytes)
	k.atLeast("data.writeback_buffer_bytes", d.WritebackBufferBytes, minFileBufferBytes)
	if d.FileBufferBytes >= minFileBufferBytes && d.WritebackBufferBytes >= minFileBufferBytes &&
		d.FileBufferBytes > d.WritebackBufferBytes {
		k.addf("data.file_buffer_bytes", "must not exceed data.writeback_buffer_bytes (%d) (got %d)", d.WritebackBufferBytes, d.FileBufferBytes)
	}
	k.millis("data.flush_interval_ms", d.FlushIntervalMS)
	k.seconds("data.block_delete_delay_secs", d.BlockDeleteDelaySecs, 0)
	k.seconds("data.gc_safety_window_secs", d.GCSafetyWindowSecs, minGCSafetyWindowSecs)
	k.between("data.blob_parallelism", int64(d.BlobParallelism), 1, 1024)
	k.millis("locks.break_timeout_ms", c.Locks.BreakTimeoutMS)
}

func (c *Config) validateProtocols(k *checker) {
	k.listen("admin.listen", c.Admin.Listen)

	n := c.NFS
	k.listen("nfs.listen", n.Listen)
	k.listen("nfs.mount_listen", n.MountListen)
	k.listen("nfs.nlm_listen", n.NLMListen)
	k.listen("nfs.portmap.listen", n.Portmap.Listen)
	k.between("nfs.max_record_bytes", n.MaxRecordBytes, minRecordBytes, maxRecordBytes)
	k.between("nfs.max_outstanding_per_conn", int64(n.MaxOutstandingPerConn), 1, 65536)
	if (n.Enabled || c.NFS4.Enabled) && len(n.Exports) == 0 {
		k.addf("nfs.exports", "must list at least one export while nfs.enabled or nfs4.enabled is true")
	}
	names := map[string]int{}
	for i, e := range n.Exports {
		p := fmt.Sprintf("nfs.exports[%d]", i)
		k.absPath(p+".name", e.Name, "/export")
		if first, dup := names[e.Name]; dup && e.Name != "" {
			k.addf(p+".name", "%q is already the name of nfs.exports[%d]", e.Name, first)
		} else {
			names[e.Name] = i
		}
		k.absPath(p+".path", e.Path, "/")
		for j, cl := range e.AllowedClients {
			if !validClient(cl) {
				k.addf(fmt.Sprintf("%s.allowed_clients[%d]", p, j),
					"must be an IP address, a CIDR such as 10.0.0.0/8, a host name, or a wildcard such as *.example.com (got %q)", cl)
			}
		}
		if len(e.Sec) == 0 {
			k.add(p+".sec", "must list at least one security flavor", string(AuthSys)+", "+string(AuthNone))
		}
		seen := map[NFSAuth]bool{}
		for j, s := range e.Sec {
			sp := fmt.Sprintf("%s.sec[%d]", p, j)
			k.enum(sp, string(s), string(AuthSys), string(AuthNone))
			if seen[s] {
				k.addf(sp, "%q is listed twice", s)
			}
			seen[s] = true
		}
	}

	v4 := c.NFS4
	k.listen("nfs4.listen", v4.Listen)
	k.seconds("nfs4.lease_secs", v4.LeaseSecs, 1)
	k.seconds("nfs4.grace_secs", v4.GraceSecs, 1)
	if v4.LeaseSecs >= 1 && v4.GraceSecs >= 1 && v4.GraceSecs < v4.LeaseSecs {
		k.addf("nfs4.grace_secs", "must be at least nfs4.lease_secs (%d) so that every client can reclaim its state (got %d)", v4.LeaseSecs, v4.GraceSecs)
	}

	c.validateSMB(k)

	s := c.S3
	k.listen("s3.listen", s.Listen)
	k.absPath("s3.root", s.Root, "/")
	if !validRegion(s.Region) {
		k.addf("s3.region", "must be a region name of lower-case letters, digits and '-', such as us-east-1 (got %q)", s.Region)
	}
	k.bothOrNeither("s3.tls_cert_file", s.TLSCertFile, "s3.tls_key_file", s.TLSKeyFile)
	if s.VirtualHostSuffix != "" && !validHostname(s.VirtualHostSuffix) {
		k.addf("s3.virtual_host_suffix", "must be a DNS name such as s3.example.com, without scheme or port (got %q)", s.VirtualHostSuffix)
	}
	k.between("s3.multipart_chunk_min", s.MultipartChunkMin, minMultipartChunk, maxMultipartChunk)
	k.millis("s3.part_timeout_ms", s.PartTimeoutMS)
	k.between("s3.max_concurrent_parts", int64(s.MaxConcurrentParts), 1, 10000)
	k.seconds("s3.lifecycle_interval_secs", s.LifecycleIntervalSecs, 0)
}

func (c *Config) validateSMB(k *checker) {
	s := c.SMB
	k.listen("smb.listen", s.Listen)
	if !validServerName(s.ServerName) {
		k.addf("smb.server_name", "must be 1 to %d letters, digits, '-' or '_' (a NetBIOS name) (got %q)", maxSMBServerName, s.ServerName)
	}
	k.enum("smb.encryption", string(s.Encryption), string(EncryptionOff), string(EncryptionDesired), string(EncryptionRequired))
	if s.Enabled && len(s.Shares) == 0 {
		k.addf("smb.shares", "must list at least one share while smb.enabled is true")
	}
	shares := map[string]int{}
	for i, sh := range s.Shares {
		p := fmt.Sprintf("smb.shares[%d]", i)
		if msg := checkShareName(sh.Name); msg != "" {
			k.addf(p+".name", "%s (got %q)", msg, sh.Name)
		} else if first, dup := shares[strings.ToLower(sh.Name)]; dup {
			k.addf(p+".name", "%q is already the name of smb.shares[%d] (share names ignore case)", sh.Name, first)
		} else {
			shares[strings.ToLower(sh.Name)] = i
		}
		k.absPath(p+".path", sh.Path, "/")
	}

	m := s.Multichannel
	k.atLeast("smb.multichannel.min_channels", int64(m.MinChannels), 1)
	k.atLeast("smb.multichannel.max_channels", int64(m.MaxChannels), 1)
	if m.MinChannels >= 1 && m.MaxChannels >= 1 && m.MinChannels > m.MaxChannels {
		k.addf("smb.multichannel.min_channels", "must not exceed max_channels (%d) (got %d)", m.MaxChannels, m.MinChannels)
	}
	k.enum("smb.multichannel.channel_selection", string(m.ChannelSelection),
		string(ChannelRoundRobin), string(ChannelWeightedBySpeed), string(ChannelPreferRDMA))

	ifNames, ifIPs := map[string]int{}, map[netip.Addr]int{}
	for i, it := range s.Interfaces {
		p := fmt.Sprintf("smb.interfaces[%d]", i)
		if it.Name == "" {
			k.addf(p+".name", "must be set to the interface name, such as eth0")
		} else if first, dup := ifNames[it.Name]; dup {
			k.addf(p+".name", "%q is already the name of smb.interfaces[%d]", it.Name, first)
		} else {
			ifNames[it.Name] = i
		}
		addr, err := netip.ParseAddr(it.IP)
		if err != nil {
			k.addf(p+".ip", "must be an IPv4 or IPv6 address (got %q)", it.IP)
		} else if first, dup := ifIPs[addr]; dup {
			k.addf(p+".ip", "%s is already the address of smb.interfaces[%d]", addr, first)
		} else {
			ifIPs[addr] = i
		}
		if it.LinkSpeedMbps < 1 {
			k.addf(p+".link_speed_mbps", "must be set to the link speed in Mbit/s, at least 1 (got %d)", it.LinkSpeedMbps)
		}
	}
}

// listener is one address the gateway binds.
type listener struct {
	path string
	addr string
}

// validateListeners finds enabled services that would bind the same
// address. NFSv3 and NFSv4 may share one port: one listener serves both and
// tells them apart by RPC program version.
func (c *Config) validateListeners(k *checker) {
	var ls []listener
	add := func(on bool, path, addr string) {
		if on {
			ls = append(ls, listener{path, addr})
		}
	}
	add(c.Admin.Enabled, "admin.listen", c.Admin.Listen)
	add(c.NFS.Enabled, "nfs.listen", c.NFS.Listen)
	add(c.NFS.Enabled, "nfs.mount_listen", c.NFS.MountListen)
	add(c.NFS.Enabled, "nfs.nlm_listen", c.NFS.NLMListen)
	add(c.NFS.Enabled && c.NFS.Portmap.Enabled, "nfs.portmap.listen", c.NFS.Portmap.Listen)
	add(c.NFS4.Enabled, "nfs4.listen", c.NFS4.Listen)
	add(c.SMB.Enabled, "smb.listen", c.SMB.Listen)
	add(c.S3.Enabled, "s3.listen", c.S3.Listen)

	// A listener already reported is left out of later comparisons, so
	// that one mistake yields one problem.
	reported := make([]bool, len(ls))
	for i, b := range ls {
		for j, a := range ls[:i] {
			if reported[j] || a.path == "nfs.listen" && b.path == "nfs4.listen" {
				continue
			}
			if overlap(a.addr, b.addr) {
				k.addf(b.path, "%q is already used by %s (%q); give each service its own port", b.addr, a.path, a.addr)
				reported[i] = true
				break
			}
		}
	}
}

// overlap says whether two valid listen addresses would collide. Port 0
// asks the kernel for a free port and never collides.
func overlap(a, b string) bool {
	ha, pa, errA := net.SplitHostPort(a)
	hb, pb, errB := net.SplitHostPort(b)
	if errA != nil || errB != nil || pa != pb || pa == "0" {
		return false
	}
	wild := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	return ha == hb || wild(ha) || wild(hb)
}

// checkListen returns why addr is not a listen address, or "".
func checkListen(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "must be host:port or :port, such as \":2049\" or \"127.0.0.1:2049\""
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return "must end with a port number from 0 to 65535"
	}
	if host != "" && !validHostOrIP(host) {
		return "must have an IP address or host name before the port"
	}
	return ""
}

// checkHostPort returns why s is not host or host:port, or "". A scheme is
// refused with a hint when noScheme is set, because TLS is a separate key.
func checkHostPort(s string, noScheme bool) string {
	if noScheme && strings.Contains(s, "://") {
		return "must be host or host:port without a scheme; set use_tls for HTTPS"
	}
	host := s
	if h, port, err := net.SplitHostPort(s); err == nil {
		if _, err := strconv.ParseUint(port, 10, 16); err != nil || port == "0" {
			return "must have a port number from 1 to 65535"
		}
		host = h
	}
	if !validHostOrIP(host) {
		return "must be a host name or IP address, optionally with :port"
	}
	return ""
}

// checkEtcdEndpoint accepts host:port or an http(s) URL, the forms the etcd
// client takes.
func checkEtcdEndpoint(s string) string {
	if strings.Contains(s, "://") {
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
			return "must be host:port or http(s)://host:port"
		}
		return checkHostPort(u.Host, false)
	}
	if _, _, err := net.SplitHostPort(s); err != nil {
		return "must be host:port or http(s)://host:port"
	}
	return checkHostPort(s, false)
}

func validHostOrIP(h string) bool {
	if _, err := netip.ParseAddr(h); err == nil {
		return true
	}
	return validHostname(h)
}

// validHostname checks DNS syntax: dot-separated labels of letters, digits
// and '-', not starting or ending with '-'.
func validHostname(h string) bool {
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !isAlnum(r) && r != '-' {
				return false
			}
		}
	}
	return true
}

// validClient accepts the client forms of an NFS export: an address, a
// CIDR, a host name, "*", or "*." followed by a domain.
func validClient(s string) bool {
	if s == "*" {
		return true
	}
	if _, err := netip.ParseAddr(s); err == nil {
		return true
	}
	if _, err := netip.ParsePrefix(s); err == nil {
		return true
	}
	if rest, ok := strings.CutPrefix(s, "*."); ok {
		return validHostname(rest)
	}
	return validHostname(s)
}

func validBucketName(b string) bool {
	if len(b) < 3 || len(b) > 63 || !isLowerAlnum(rune(b[0])) || !isLowerAlnum(rune(b[len(b)-1])) {
		return false
	}
	for _, r := range b {
		if !isLowerAlnum(r) && r != '.' && r != '-' {
			return false
		}
	}
	return !strings.Contains(b, "..")
}

func validRegion(r string) bool {
	if r == "" || len(r) > 64 {
		return false
	}
	for _, c := range r {
		if !isLowerAlnum(c) && c != '-' {
			return false
		}
	}
	return true
}

func validServerName(n string) bool {
	if n == "" || len(n) > maxSMBServerName {
		return false
	}
	for _, r := range n {
		if !isAlnum(r) && r != '-' && r != '_' {
			return false
		}
	}
	return true
}

// checkShareName applies the share name rules Windows clients enforce.
func checkShareName(n string) string {
	switch {
	case n == "":
		return "must be set"
	case len(n) > maxShareName:
		return fmt.Sprintf("must be at most %d characters", maxShareName)
	case strings.EqualFold(n, "IPC$"):
		return "IPC$ is reserved for the server"
	case strings.ContainsAny(n, "\"\\/[]:|<>+=;,*?"):
		return "must not contain any of \" \\ / [ ] : | < > + = ; , * ?"
	}
	for _, r := range n {
		if r < 0x20 || r == 0x7f {
			return "must not contain control characters"
		}
	}
	return ""
}

func isAlnum(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
}

func isLowerAlnum(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= '0' && r <= '9'
}
