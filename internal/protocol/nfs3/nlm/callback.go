package nlm

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"

	xdrruntime "github.com/buildbarn/go-xdr/pkg/runtime"

	"github.com/claudefs/cfs-gateway/internal/protocol/oncrpc"
	"github.com/claudefs/cfs-gateway/internal/protocol/xdr/portmapv2"
)

// DialPortmapped asks the port mapper at addr's port 111 where NLM version
// 4 listens over TCP and connects there, with an AUTH_SYS credential of
// the superuser as client lock managers expect from a server's lock
// manager.
func DialPortmapped(ctx context.Context, addr netip.Addr) (*oncrpc.Client, error) {
	return DialVia(ctx, netip.AddrPortFrom(addr, portmapv2.PMAP_PORT))
}

// DialVia is DialPortmapped with the port mapper at pmap.
func DialVia(ctx context.Context, pmap netip.AddrPort) (*oncrpc.Client, error) {
	pm, err := oncrpc.Dial(ctx, "tcp", pmap.String())
	if err != nil {
		return nil, fmt.Errorf("nlm: reaching the port mapper of client %s: %w", pmap.Addr(), err)
	}
	defer pm.Close()
	var port uint32
	err = pm.Call(ctx, portmapv2.PMAP_PROG, portmapv2.PMAP_VERS, portmapv2.PMAPPROC_GETPORT,
		&portmapv2.Mapping{Prog: Program, Vers: Version, Prot: portmapv2.IPPROTO_TCP},
		oncrpc.ReaderFromFunc(func(r io.Reader) (int64, error) {
			v, n, err := xdrruntime.ReadUnsignedInt(r)
			port = v
			return n, err
		}))
	if err != nil {
		return nil, fmt.Errorf("nlm: asking the port mapper of client %s for NLM: %w", pmap.Addr(), err)
	}
	if port == 0 || port > 0xffff {
		return nil, fmt.Errorf("nlm: client %s has no NLM version %d over TCP registered with its port mapper", pmap.Addr(), Version)
	}
	host, _ := os.Hostname()
	if len(host) > 255 {
		host = host[:255]
	}
	cred, err := oncrpc.SysCredential{MachineName: host}.Credential()
	if err != nil {
		return nil, err
	}
	return oncrpc.Dial(ctx, "tcp", netip.AddrPortFrom(pmap.Addr(), uint16(port)).String(), oncrpc.WithCredential(cred))
}

// callClient calls procedure proc of the NLM service of the client at addr.
func (s *Service) callClient(ctx context.Context, addr netip.Addr, proc uint32, args io.WriterTo, res io.ReaderFrom) error {
	if !addr.IsValid() {
		return fmt.Errorf("nlm: client address unknown")
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.CallbackTimeout)
	defer cancel()
	c, err := s.cfg.Dial(ctx, addr)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Call(ctx, Program, Version, proc, args, res)
}
