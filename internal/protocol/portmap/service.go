package portmap

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	xdrruntime "github.com/buildbarn/go-xdr/pkg/runtime"

	"github.com/claudefs/cfs-gateway/internal/protocol/oncrpc"
	"github.com/claudefs/cfs-gateway/internal/protocol/xdr/portmapv2"
	"github.com/claudefs/cfs-gateway/internal/protocol/xdr/rpcbind"
)

// Program is the port mapper's program number; versions 2 to 4 are
// served.
const (
	Program     = portmapv2.PMAP_PROG
	LowVersion  = portmapv2.PMAP_VERS
	HighVersion = rpcbind.RPCBVERS4
)

// Service answers port mapper and rpcbind calls from a Table.
//
// Decisions where RFC 1833 leaves room:
//   - SET and UNSET are honoured only from loopback callers; others get
//     FALSE. UNSET never removes the gateway's own entries, and removes
//     another process's entries only for that process's uid or root.
//   - CALLIT (v2, v3), BCAST (v4) and INDIRECT (v4) never forward a
//     call: forwarding turns the gateway into a traffic reflector, and
//     no NFS client needs it. Over UDP, where these procedures are
//     broadcast, CALLIT and BCAST stay silent as the RFC prescribes for
//     failures; over TCP, and for INDIRECT, the answer is PROC_UNAVAIL
//     so that the caller does not wait for a timeout.
//   - GETADDR uses the netid in the request when there is one and the
//     transport the request came in on otherwise; the host part of
//     every universal address is the address the caller reached the
//     gateway on.
//   - GETSTAT counts calls per version and procedure; the address and
//     remote-call lists are always empty.
type Service struct {
	table  *Table
	logger *slog.Logger
	now    func() time.Time

	statsMu sync.Mutex
	stats   rpcbind.RpcbStatByvers
}

// NewService returns a service answering from t.
func NewService(t *Table, logger *slog.Logger) *Service {
	if logger == nil {
		logger = slog.Default()
	}
	return &Service{table: t, logger: logger, now: time.Now}
}

// Register serves the port mapper on srv. No credential is required,
// as clients query it before they have picked one.
func (s *Service) Register(srv *oncrpc.Server) error {
	return srv.Register(Program, LowVersion, HighVersion, s)
}

// ServeRPC implements oncrpc.Handler.
func (s *Service) ServeRPC(ctx context.Context, call *oncrpc.Call) (io.WriterTo, error) {
	if call.Vers == portmapv2.PMAP_VERS {
		return s.servePmap(call)
	}
	return s.serveRpcbind(call)
}

func (s *Service) servePmap(call *oncrpc.Call) (io.WriterTo, error) {
	s.count(call.Vers, call.Proc, false, false)
	switch call.Proc {
	case portmapv2.PMAPPROC_NULL:
		return nil, nil
	case portmapv2.PMAPPROC_SET:
		var m portmapv2.Mapping
		if err := call.DecodeArgs(&m); err != nil {
			return nil, err
		}
		netid, ok := netidOfProt(m.Prot)
		if !ok || m.Port > 0xffff || !isLoopback(call.RemoteAddr) {
			return xdrBool(false), nil
		}
		done := s.table.remoteSet(Mapping{Prog: m.Prog, Vers: m.Vers, Netid: netid, Port: uint16(m.Port), Owner: callerOwner(call)})
		s.count(call.Vers, call.Proc, done, false)
		return xdrBool(done), nil
	case portmapv2.PMAPPROC_UNSET:
		var m portmapv2.Mapping
		if err := call.DecodeArgs(&m); err != nil {
			return nil, err
		}
		if !isLoopback(call.RemoteAddr) {
			return xdrBool(false), nil
		}
		// Version 2's UNSET ignores the protocol and removes both.
		done := s.table.remoteUnset(m.Prog, m.Vers, []string{NetidTCP, NetidUDP}, callerOwner(call))
		s.count(call.Vers, call.Proc, false, done)
		return xdrBool(done), nil
	case portmapv2.PMAPPROC_GETPORT:
		var m portmapv2.Mapping
		if err := call.DecodeArgs(&m); err != nil {
			return nil, err
		}
		var port uint32
		if netid, ok := netidOfProt(m.Prot); ok {
			if found, ok := s.table.Lookup(m.Prog, m.Vers, netid); ok {
				port = uint32(found.Port)
			}
		}
		return xdrUint32(port), nil
	case portmapv2.PMAPPROC_DUMP:
		var head *portmapv2.Pmaplist
		maps := s.table.Mappings()
		for i := len(maps) - 1; i >= 0; i-- {
			m := maps[i]
			prot, ok := protOfNetid(m.Netid)
			if !ok {
				continue // version 2 only knows IPv4 TCP and UDP
			}
			head = &portmapv2.Pmaplist{
				Map:  portmapv2.Mapping{Prog: m.Prog, Vers: m.Vers, Prot: prot, Port: uint32(m.Port)},
				Next: head,
			}
		}
		return writerFunc(func(w io.Writer) (int64, error) { return portmapv2.WritePmaplistPtr(w, head) }), nil
	case portmapv2.PMAPPROC_CALLIT:
		return nil, s.refuseForward(call)
	}
	return nil, oncrpc.ProcUnavail
}

func (s *Service) serveRpcbind(call *oncrpc.Call) (io.WriterTo, error) {
	s.count(call.Vers, call.Proc, false, false)
	switch call.Proc {
	case rpcbind.RPCBPROC_NULL:
		return nil, nil
	case rpcbind.RPCBPROC_SET:
		var r rpcbind.Rpcb
		if err := call.DecodeArgs(&r); err != nil {
			return nil, err
		}
		ap, err := ParseUaddr(r.RAddr)
		if err != nil || !knownNetid(r.RNetid) || !isLoopback(call.RemoteAddr) {
			return xdrBool(false), nil
		}
		done := s.table.remoteSet(Mapping{Prog: r.RProg, Vers: r.RVers, Netid: r.RNetid, Port: ap.Port(), Owner: callerOwner(call)})
		s.count(call.Vers, call.Proc, done, false)
		return xdrBool(done), nil
	case rpcbind.RPCBPROC_UNSET:
		var r rpcbind.Rpcb
		if err := call.DecodeArgs(&r); err != nil {
			return nil, err
		}
		if !isLoopback(call.RemoteAddr) {
			return xdrBool(false), nil
		}
		var netids []string
		if r.RNetid != "" {
			netids = []string{r.RNetid}
		}
		done := s.table.remoteUnset(r.RProg, r.RVers, netids, callerOwner(call))
		s.count(call.Vers, call.Proc, false, done)
		return xdrBool(done), nil
	case rpcbind.RPCBPROC_GETADDR, rpcbind.RPCBPROC_GETVERSADDR:
		if call.Vers == rpcbind.RPCBVERS && call.Proc == rpcbind.RPCBPROC_GETVERSADDR {
			return nil, oncrpc.ProcUnavail
		}
		var r rpcbind.Rpcb
		if err := call.DecodeArgs(&r); err != nil {
			return nil, err
		}
		netid := r.RNetid
		if netid == "" {
			netid = transportNetid(call)
		}
		var m Mapping
		var ok bool
		if call.Proc == rpcbind.RPCBPROC_GETVERSADDR {
			m, ok = s.table.Lookup(r.RProg, r.RVers, netid)
		} else {
			m, ok = s.table.lookupAnyVersion(r.RProg, r.RVers, netid)
		}
		uaddr := ""
		if ok {
			uaddr = s.uaddrFor(call, m)
		}
		return xdrUaddr(uaddr), nil
	case rpcbind.RPCBPROC_DUMP:
		var head *rpcbind.RpList
		maps := s.table.Mappings()
		for i := len(maps) - 1; i >= 0; i-- {
			m := maps[i]
			head = &rpcbind.RpList{
				RpcbMap:  rpcbind.Rpcb{RProg: m.Prog, RVers: m.Vers, RNetid: m.Netid, RAddr: s.uaddrFor(call, m), ROwner: m.Owner},
				RpcbNext: head,
			}
		}
		return writerFunc(func(w io.Writer) (int64, error) { return rpcbind.WriteRpcblistPtr(w, head) }), nil
	case rpcbind.RPCBPROC_CALLIT: // BCAST in version 4
		return nil, s.refuseForward(call)
	case rpcbind.RPCBPROC_INDIRECT:
		// Version 4 only, and never forwarded (see Service).
		return nil, oncrpc.ProcUnavail
	case rpcbind.RPCBPROC_GETTIME:
		return xdrUint32(uint32(s.now().Unix())), nil
	case rpcbind.RPCBPROC_UADDR2TADDR:
		var uaddr string
		if err := call.DecodeArgsFunc(func(r io.Reader) (err error) {
			uaddr, _, err = rpcbind.ReadUaddr(r)
			return err
		}); err != nil {
			return nil, err
		}
		// An address that cannot be converted yields an empty netbuf.
		buf, _ := uaddrToTaddr(uaddr)
		return &rpcbind.Netbuf{Maxlen: uint32(len(buf)), Buf: buf}, nil
	case rpcbind.RPCBPROC_TADDR2UADDR:
		var nb rpcbind.Netbuf
		if err := call.DecodeArgs(&nb); err != nil {
			return nil, err
		}
		uaddr, _ := taddrToUaddr(nb.Buf)
		return xdrUaddr(uaddr), nil
	case rpcbind.RPCBPROC_GETADDRLIST:
		if call.Vers == rpcbind.RPCBVERS {
			return nil, oncrpc.ProcUnavail
		}
		var r rpcbind.Rpcb
		if err := call.DecodeArgs(&r); err != nil {
			return nil, err
		}
		var head *rpcbind.RpcbEntryList
		maps := s.table.Mappings()
		for i := len(maps) - 1; i >= 0; i-- {
			m := maps[i]
			if m.Prog != r.RProg || m.Vers != r.RVers {
				continue
			}
			head = &rpcbind.RpcbEntryList{RpcbEntryMap: s.entryFor(call, m), RpcbEntryNext: head}
		}
		return writerFunc(func(w io.Writer) (int64, error) { return rpcbind.WriteRpcbEntryListPtr(w, head) }), nil
	case rpcbind.RPCBPROC_GETSTAT:
		if call.Vers == rpcbind.RPCBVERS {
			return nil, oncrpc.ProcUnavail
		}
		s.statsMu.Lock()
		st := s.stats
		s.statsMu.Unlock()
		return &st, nil
	}
	return nil, oncrpc.ProcUnavail
}

// refuseForward answers the forwarding procedures (see Service).
func (s *Service) refuseForward(call *oncrpc.Call) error {
	s.logger.Debug("portmap: call forwarding refused", "remote", call.RemoteAddr, "vers", call.Vers, "proc", call.Proc)
	if call.Network == "udp" {
		return oncrpc.ErrNoReply
	}
	return oncrpc.ProcUnavail
}

// count records a call for GETSTAT.
func (s *Service) count(vers, proc uint32, set, unset bool) {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	var st *rpcbind.RpcbStat
	switch vers {
	case portmapv2.PMAP_VERS:
		st = &s.stats.Vers2
	case rpcbind.RPCBVERS:
		st = &s.stats.Vers3
	case rpcbind.RPCBVERS4:
		st = &s.stats.Vers4
	default:
		return
	}
	switch {
	case set:
		st.Setinfo++
	case unset:
		st.Unsetinfo++
	case int(proc) < len(st.Info):
		st.Info[proc]++
	}
}

// uaddrFor renders m's address as the caller should use it.
func (s *Service) uaddrFor(call *oncrpc.Call, m Mapping) string {
	return FormatUaddr(s.hostFor(call, isIPv6Netid(m.Netid)), m.Port)
}

func (s *Service) entryFor(call *oncrpc.Call, m Mapping) rpcbind.RpcbEntry {
	e := rpcbind.RpcbEntry{RMaddr: s.uaddrFor(call, m), RNcNetid: m.Netid, RNcProtofmly: "inet", RNcProto: "tcp", RNcSemantics: rpcbind.NC_TPI_COTS_ORD}
	if isIPv6Netid(m.Netid) {
		e.RNcProtofmly = "inet6"
	}
	if m.Netid == NetidUDP || m.Netid == NetidUDP6 {
		e.RNcProto, e.RNcSemantics = "udp", rpcbind.NC_TPI_CLTS
	}
	return e
}

// hostFor picks the host part of an address handed to the caller: the
// address the caller reached us on. A socket bound to the wildcard
// address does not know it, so then the system is asked which source
// address it would use towards the caller (a connected UDP socket sends
// nothing).
func (s *Service) hostFor(call *oncrpc.Call, v6 bool) netip.Addr {
	ip := addrOf(call.LocalAddr)
	if !ip.IsValid() || ip.IsUnspecified() {
		if remote := addrOf(call.RemoteAddr); remote.IsValid() {
			if c, err := net.Dial("udp", netip.AddrPortFrom(remote, 9).String()); err == nil {
				ip = addrOf(c.LocalAddr())
				c.Close()
			}
		}
	}
	if !ip.IsValid() {
		ip = netip.IPv4Unspecified()
	}
	switch {
	case v6 && ip.Is4():
		return netip.AddrFrom16(ip.As16())
	case !v6 && ip.Is4In6():
		return ip.Unmap()
	}
	return ip
}

func addrOf(a net.Addr) netip.Addr {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.AddrPort().Addr()
	case *net.UDPAddr:
		return a.AddrPort().Addr()
	}
	return netip.Addr{}
}

func isLoopback(a net.Addr) bool {
	ip := addrOf(a)
	return ip.IsValid() && ip.Unmap().IsLoopback()
}

func callerOwner(call *oncrpc.Call) string {
	if call.Sys == nil {
		return ownerOf(0, false)
	}
	return ownerOf(call.Sys.UID, true)
}

// transportNetid names the transport a call arrived on.
func transportNetid(call *oncrpc.Call) string {
	ip := addrOf(call.LocalAddr)
	v6 := ip.IsValid() && ip.Is6() && !ip.Is4In6()
	switch {
	case call.Network == "udp" && v6:
		return NetidUDP6
	case call.Network == "udp":
		return NetidUDP
	case v6:
		return NetidTCP6
	}
	return NetidTCP
}

func knownNetid(n string) bool {
	switch n {
	case NetidTCP, NetidUDP, NetidTCP6, NetidUDP6:
		return true
	}
	return false
}

func isIPv6Netid(n string) bool { return n == NetidTCP6 || n == NetidUDP6 }

func netidOfProt(prot uint32) (string, bool) {
	switch prot {
	case portmapv2.IPPROTO_TCP:
		return NetidTCP, true
	case portmapv2.IPPROTO_UDP:
		return NetidUDP, true
	}
	return "", false
}

func protOfNetid(n string) (uint32, bool) {
	switch n {
	case NetidTCP:
		return portmapv2.IPPROTO_TCP, true
	case NetidUDP:
		return portmapv2.IPPROTO_UDP, true
	}
	return 0, false
}

// Small XDR results without a generated type of their own.
type writerFunc func(w io.Writer) (int64, error)

func (f writerFunc) WriteTo(w io.Writer) (int64, error) { return f(w) }

type xdrBool bool

func (b xdrBool) WriteTo(w io.Writer) (int64, error) { return xdrruntime.WriteBool(w, bool(b)) }

type xdrUint32 uint32

func (v xdrUint32) WriteTo(w io.Writer) (int64, error) {
	return xdrruntime.WriteUnsignedInt(w, uint32(v))
}

type xdrUaddr string

func (u xdrUaddr) WriteTo(w io.Writer) (int64, error) { return rpcbind.WriteUaddr(w, string(u)) }
