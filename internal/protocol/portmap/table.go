// Package portmap is the gateway's built-in port mapper: program 100000
// version 2 (PMAP, RFC 1833 section 3) and versions 3 and 4 (RPCBIND,
// RFC 1833 section 2), served on an oncrpc.Server, so that NFS clients
// find MOUNT, NLM and NSM without a system rpcbind.
//
// The answers come from a Table that the gateway fills with its own
// services. Remote clients may only read it; SET and UNSET are honoured
// from loopback callers only (as rpcbind does), and never touch the
// entries the gateway put in the table itself. Calls are never
// forwarded: CALLIT, BCAST and INDIRECT are refused (see Service).
//
// The package owns the binding table and its wire answers; it must not
// reach into the services it lists or into the filesystem core.
package portmap

import (
	"cmp"
	"slices"
	"strconv"
	"sync"
)

// Network identifiers (netids) of the transports the table knows.
const (
	NetidTCP  = "tcp"
	NetidUDP  = "udp"
	NetidTCP6 = "tcp6"
	NetidUDP6 = "udp6"
)

// GatewayOwner is the owner recorded for the gateway's own entries,
// shown by rpcinfo; it is what rpcbind shows for services registered
// by root.
const GatewayOwner = "superuser"

// Mapping binds a version of a program on one transport to a port.
type Mapping struct {
	Prog, Vers uint32
	Netid      string
	Port       uint16
	Owner      string
}

type mappingKey struct {
	prog, vers uint32
	netid      string
}

type entry struct {
	Mapping
	// fixed marks the gateway's own entries, which the protocol's
	// UNSET cannot remove.
	fixed bool
}

// Table is the binding table. It is safe for concurrent use.
type Table struct {
	mu      sync.RWMutex
	entries map[mappingKey]entry
}

// NewTable returns an empty table.
func NewTable() *Table {
	return &Table{entries: make(map[mappingKey]entry)}
}

// Set adds the gateway's own binding m, replacing any binding of the
// same program, version and netid. An empty Owner becomes GatewayOwner.
func (t *Table) Set(m Mapping) {
	if m.Owner == "" {
		m.Owner = GatewayOwner
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.entries[mappingKey{m.Prog, m.Vers, m.Netid}] = entry{Mapping: m, fixed: true}
}

// SetService adds the gateway's bindings of every listed version of
// prog on each netid, all on port.
func (t *Table) SetService(prog uint32, versions []uint32, port uint16, netids ...string) {
	for _, v := range versions {
		for _, n := range netids {
			t.Set(Mapping{Prog: prog, Vers: v, Netid: n, Port: port})
		}
	}
}

// Unset removes the gateway's bindings of prog and vers on the listed
// netids, or on every netid when none is listed.
func (t *Table) Unset(prog, vers uint32, netids ...string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for k := range t.entries {
		if k.prog == prog && k.vers == vers && (len(netids) == 0 || slices.Contains(netids, k.netid)) {
			delete(t.entries, k)
		}
	}
}

// Lookup returns the binding of exactly this program, version and netid.
func (t *Table) Lookup(prog, vers uint32, netid string) (Mapping, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	e, ok := t.entries[mappingKey{prog, vers, netid}]
	return e.Mapping, ok
}

// lookupAnyVersion returns the binding of prog and vers on netid, or,
// failing that, of the lowest registered version of prog on netid: a
// client that then calls the wrong version learns the supported range
// from the service's PROG_MISMATCH reply. This is RPCBIND's GETADDR
// behaviour.
func (t *Table) lookupAnyVersion(prog, vers uint32, netid string) (Mapping, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if e, ok := t.entries[mappingKey{prog, vers, netid}]; ok {
		return e.Mapping, true
	}
	var best Mapping
	found := false
	for k, e := range t.entries {
		if k.prog == prog && k.netid == netid && (!found || k.vers < best.Vers) {
			best, found = e.Mapping, true
		}
	}
	return best, found
}

// Mappings returns every binding, ordered by program, version and
// netid.
func (t *Table) Mappings() []Mapping {
	t.mu.RLock()
	out := make([]Mapping, 0, len(t.entries))
	for _, e := range t.entries {
		out = append(out, e.Mapping)
	}
	t.mu.RUnlock()
	slices.SortFunc(out, func(a, b Mapping) int {
		return cmp.Or(cmp.Compare(a.Prog, b.Prog), cmp.Compare(a.Vers, b.Vers), cmp.Compare(a.Netid, b.Netid))
	})
	return out
}

// remoteSet adds a binding on behalf of a local process through the
// protocol. It refuses to replace an existing binding, as RFC 1833
// requires.
func (t *Table) remoteSet(m Mapping) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := mappingKey{m.Prog, m.Vers, m.Netid}
	if _, ok := t.entries[k]; ok {
		return false
	}
	t.entries[k] = entry{Mapping: m}
	return true
}

// remoteUnset removes the bindings of prog and vers on the given netids
// (all when empty) that the caller may remove: not the gateway's own,
// and only its own unless it is the superuser.
func (t *Table) remoteUnset(prog, vers uint32, netids []string, owner string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	removed := false
	for k, e := range t.entries {
		if k.prog != prog || k.vers != vers || len(netids) > 0 && !slices.Contains(netids, k.netid) {
			continue
		}
		if e.fixed || owner != GatewayOwner && e.Owner != owner {
			continue
		}
		delete(t.entries, k)
		removed = true
	}
	return removed
}

// ownerOf names a protocol caller the way rpcbind does: "superuser" for
// uid 0, the decimal uid otherwise, "unknown" without AUTH_SYS.
func ownerOf(uid uint32, hasUID bool) string {
	switch {
	case !hasUID:
		return "unknown"
	case uid == 0:
		return GatewayOwner
	default:
		return strconv.FormatUint(uint64(uid), 10)
	}
}
