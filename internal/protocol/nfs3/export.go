package nfs3

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/claudefs/cfs-gateway/internal/core"
	"github.com/claudefs/cfs-gateway/internal/protocol/oncrpc"
)

// Export is one directory of the namespace offered to NFS clients.
type Export struct {
	// Name is the path clients mount ("/export"); it also identifies the
	// export in file handles, so renaming an export makes its handles stale.
	Name string
	// Path is the exported directory of the namespace ("/" for the root).
	Path string
	// ReadOnly refuses every change with NFS3ERR_ROFS.
	ReadOnly bool
	// RootSquash maps uid 0 to AnonUID and gid 0 to AnonGID.
	RootSquash bool
	// AllSquash maps every caller to AnonUID and AnonGID.
	AllSquash bool
	// AnonUID and AnonGID are the identity of squashed and AUTH_NONE
	// callers.
	AnonUID, AnonGID uint32
	// AllowedClients lists the clients that may use the export: IP
	// addresses, CIDR prefixes ("10.0.0.0/8"), host names, "*" and
	// "*.domain". Empty allows every client. Addresses match exactly:
	// 192.168.1.1 does not match 192.168.1.10.
	AllowedClients []string
	// Sec lists the accepted credential flavors, oncrpc.AuthSys and
	// oncrpc.AuthNone; empty means AUTH_SYS only.
	Sec []oncrpc.AuthFlavor
}

// Resolver looks up host names for the host-name entries of
// AllowedClients; *net.Resolver is one.
type Resolver interface {
	LookupHost(ctx context.Context, host string) ([]string, error)
	LookupAddr(ctx context.Context, addr string) ([]string, error)
}

// export is an Export as the server applies it.
type export struct {
	Export
	id      uint32
	clients *clientMatcher
	// root caches the handle of the exported directory once resolved.
	root atomic.Pointer[core.Handle]
}

func newExport(e Export, r Resolver) (*export, error) {
	if !path.IsAbs(e.Name) || path.Clean(e.Name) != e.Name {
		return nil, fmt.Errorf("export name %q must be an absolute, clean path", e.Name)
	}
	if e.Path == "" {
		e.Path = "/"
	}
	if !path.IsAbs(e.Path) || path.Clean(e.Path) != e.Path {
		return nil, fmt.Errorf("export %s: path %q must be an absolute, clean path", e.Name, e.Path)
	}
	if len(e.Sec) == 0 {
		e.Sec = []oncrpc.AuthFlavor{oncrpc.AuthSys}
	}
	for _, f := range e.Sec {
		if f != oncrpc.AuthSys && f != oncrpc.AuthNone {
			return nil, fmt.Errorf("export %s: security flavor %v is not supported (use AUTH_SYS or AUTH_NONE)", e.Name, f)
		}
	}
	m, err := newClientMatcher(e.AllowedClients, r)
	if err != nil {
		return nil, fmt.Errorf("export %s: %w", e.Name, err)
	}
	return &export{Export: e, id: exportID(e.Name), clients: m}, nil
}

// identity is the caller of call as this export's squash rules make it. It
// fails with AUTH_TOOWEAK for a flavor the export does not accept. A
// caller with AUTH_SYS on an export that takes only AUTH_NONE acts as the
// anonymous user: its credential is simply not trusted.
func (e *export) identity(call *oncrpc.Call) (*core.Identity, error) {
	anon := &core.Identity{UID: e.AnonUID, GID: e.AnonGID}
	switch call.Cred.Flavor {
	case oncrpc.AuthSys:
		if !slices.Contains(e.Sec, oncrpc.AuthSys) {
			if slices.Contains(e.Sec, oncrpc.AuthNone) {
				return anon, nil
			}
			return nil, oncrpc.AuthTooWeak
		}
	case oncrpc.AuthNone:
		if !slices.Contains(e.Sec, oncrpc.AuthNone) {
			return nil, oncrpc.AuthTooWeak
		}
		return anon, nil
	default:
		return nil, oncrpc.AuthTooWeak
	}
	sys := call.Sys
	if sys == nil || e.AllSquash {
		return anon, nil
	}
	id := &core.Identity{UID: sys.UID, GID: sys.GID}
	if len(sys.GIDs) > 0 {
		id.Groups = make([]uint32, 0, len(sys.GIDs))
	}
	for _, g := range sys.GIDs {
		if g == 0 && e.RootSquash {
			continue
		}
		id.Groups = append(id.Groups, g)
	}
	if e.RootSquash {
		if id.UID == 0 {
			id.UID = e.AnonUID
		}
		if id.GID == 0 {
			id.GID = e.AnonGID
		}
	}
	return id, nil
}

// flavors are the flavors returned by MNT, strongest first.
func (e *export) flavors() []int32 {
	var out []int32
	if slices.Contains(e.Sec, oncrpc.AuthSys) {
		out = append(out, int32(oncrpc.AuthSys))
	}
	if slices.Contains(e.Sec, oncrpc.AuthNone) {
		out = append(out, int32(oncrpc.AuthNone))
	}
	return out
}

// clientMatcher decides whether a client address may use an export.
type clientMatcher struct {
	all      bool
	addrs    []netip.Addr
	prefixes []netip.Prefix
	hosts    []string // host names, lower case, without trailing dot
	domains  []string // ".example.com" for "*.example.com"
	resolver Resolver

	mu    sync.Mutex
	cache map[netip.Addr]cachedDecision
}

type cachedDecision struct {
	allowed bool
	until   time.Time
}

// nameCacheTTL is how long a decision that needed name resolution is kept.
const nameCacheTTL = 60 * time.Second

// nameLookupTimeout bounds the name resolution of one decision.
const nameLookupTimeout = 5 * time.Second

func newClientMatcher(entries []string, r Resolver) (*clientMatcher, error) {
	m := &clientMatcher{resolver: r, cache: map[netip.Addr]cachedDecision{}}
	if len(entries) == 0 {
		m.all = true
	}
	for _, raw := range entries {
		s := strings.TrimSpace(raw)
		switch {
		case s == "*":
			m.all = true
		case strings.HasPrefix(s, "*."):
			m.domains = append(m.domains, strings.ToLower(strings.TrimSuffix(s[1:], ".")))
		case strings.Contains(s, "/"):
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return nil, fmt.Errorf("allowed client %q is not a valid CIDR prefix: %v", raw, err)
			}
			if p.Addr().Is4In6() && p.Bits() >= 96 {
				p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
			}
			m.prefixes = append(m.prefixes, p.Masked())
		default:
			if a, err := netip.ParseAddr(s); err == nil {
				m.addrs = append(m.addrs, a.Unmap().WithZone(""))
				continue
			}
			if s == "" || strings.ContainsAny(s, " *") {
				return nil, fmt.Errorf("allowed client %q is neither an address, a CIDR prefix nor a host name", raw)
			}
			m.hosts = append(m.hosts, strings.ToLower(strings.TrimSuffix(s, ".")))
		}
	}
	if m.resolver == nil {
		m.resolver = net.DefaultResolver
	}
	return m, nil
}

// allowed reports whether the client at addr matches.
func (m *clientMatcher) allowed(ctx context.Context, addr netip.Addr) bool {
	if m.all {
		return true
	}
	addr = addr.Unmap().WithZone("")
	if !addr.IsValid() {
		return false
	}
	if slices.Contains(m.addrs, addr) {
		return true
	}
	for _, p := range m.prefixes {
		if p.Contains(addr) {
			return true
		}
	}
	if len(m.hosts) == 0 && len(m.domains) == 0 {
		return false
	}
	now := time.Now()
	m.mu.Lock()
	d, ok := m.cache[addr]
	m.mu.Unlock()
	if ok && now.Before(d.until) {
		return d.allowed
	}
	ctx, cancel := context.WithTimeout(ctx, nameLookupTimeout)
	defer cancel()
	allowed := m.matchNames(ctx, addr)
	m.mu.Lock()
	if len(m.cache) > 4096 {
		clear(m.cache)
	}
	m.cache[addr] = cachedDecision{allowed: allowed, until: now.Add(nameCacheTTL)}
	m.mu.Unlock()
	return allowed
}

// matchNames matches addr against the host-name entries: a host name
// matches when it resolves to addr; a domain matches when addr's reverse
// name is in the domain and that name resolves back to addr, so that a
// forged reverse record alone does not grant access.
func (m *clientMatcher) matchNames(ctx context.Context, addr netip.Addr) bool {
	for _, h := range m.hosts {
		if m.resolvesTo(ctx, h, addr) {
			return true
		}
	}
	if len(m.domains) == 0 {
		return false
	}
	names, err := m.resolver.LookupAddr(ctx, addr.String())
	if err != nil {
		return false
	}
	for _, n := range names {
		n = strings.ToLower(strings.TrimSuffix(n, "."))
		for _, d := range m.domains {
			if strings.HasSuffix(n, d) && len(n) > len(d) && m.resolvesTo(ctx, n, addr) {
				return true
			}
		}
	}
	return false
}

func (m *clientMatcher) resolvesTo(ctx context.Context, host string, addr netip.Addr) bool {
	addrs, err := m.resolver.LookupHost(ctx, host)
	if err != nil {
		return false
	}
	for _, s := range addrs {
		if a, err := netip.ParseAddr(s); err == nil && a.Unmap().WithZone("") == addr {
			return true
		}
	}
	return false
}

// remoteAddr is the IP address of a call's client.
func remoteAddr(call *oncrpc.Call) netip.Addr {
	switch a := call.RemoteAddr.(type) {
	case *net.TCPAddr:
		ip, _ := netip.AddrFromSlice(a.IP)
		return ip.Unmap()
	case *net.UDPAddr:
		ip, _ := netip.AddrFromSlice(a.IP)
		return ip.Unmap()
	}
	if call.RemoteAddr == nil {
		return netip.Addr{}
	}
	ap, err := netip.ParseAddrPort(call.RemoteAddr.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}
