package nfs3

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"syscall"

	"github.com/claudefs/cfs-gateway/internal/protocol/oncrpc"
)

// Addrs say where ListenAndServe binds each service ("host:port"); an
// empty address leaves that service unbound. MOUNT is answered on the NFS
// port in any case.
type Addrs struct {
	NFS     string
	Mount   string
	NLM     string
	Portmap string
}

// Bound are the addresses the services listen on, ports resolved.
type Bound struct {
	NFS, Mount, NLM, Portmap net.Addr
}

// Service names of ListenError.
const (
	ServiceNFS     = "nfs"
	ServiceMount   = "mount"
	ServiceNLM     = "nlm"
	ServicePortmap = "portmap"
)

// ListenError reports a service that could not bind its address.
type ListenError struct {
	Service string // ServiceNFS, ServiceMount, ServiceNLM or ServicePortmap
	Addr    string
	Err     error
}

func (e *ListenError) Error() string {
	return fmt.Sprintf("nfs3: %s cannot listen on %s: %v", e.Service, e.Addr, e.Err)
}

func (e *ListenError) Unwrap() error { return e.Err }

// endpoint is one bound service: a stream listener and, for the side
// protocols, a datagram socket on the same port.
type endpoint struct {
	l  net.Listener
	pc net.PacketConn
}

func (e endpoint) close() {
	if e.l != nil {
		e.l.Close()
	}
	if e.pc != nil {
		e.pc.Close()
	}
}

// bindAttempts bounds the retries of binding TCP and UDP to one free port
// when the address asks for any port (":0").
const bindAttempts = 20

// bind listens on addr over TCP and, with udp, over UDP on the same port.
func bind(addr string, udp bool) (endpoint, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return endpoint{}, err
	}
	for attempt := 0; ; attempt++ {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return endpoint{}, err
		}
		if !udp {
			return endpoint{l: l}, nil
		}
		p := l.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp", net.JoinHostPort(host, strconv.Itoa(p)))
		if err == nil {
			return endpoint{l: l, pc: pc}, nil
		}
		l.Close()
		if port != "0" || !errors.Is(err, syscall.EADDRINUSE) || attempt >= bindAttempts {
			return endpoint{}, err
		}
		// The kernel's free TCP port is taken for UDP: try another.
	}
}

// ListenAndServe binds every service named in a, serves each in the
// background until Shutdown or Close, and fills the port mapper's table
// with what it bound. MOUNT, NLM/NSM and the port mapper are served over
// TCP and UDP, NFS over TCP. If any address cannot be bound, nothing stays
// bound and the error is a *ListenError.
func (s *Server) ListenAndServe(a Addrs) (Bound, error) {
	type want struct {
		service string
		addr    string
		udp     bool
	}
	wants := []want{{ServiceNFS, a.NFS, false}, {ServiceMount, a.Mount, true}, {ServiceNLM, a.NLM, true}, {ServicePortmap, a.Portmap, true}}
	eps := map[string]endpoint{}
	for _, w := range wants {
		if w.addr == "" {
			continue
		}
		ep, err := bind(w.addr, w.udp)
		if err != nil {
			for _, e := range eps {
				e.close()
			}
			return Bound{}, &ListenError{Service: w.service, Addr: w.addr, Err: err}
		}
		eps[w.service] = ep
	}
	var b Bound
	var ports Ports
	port := func(e endpoint) uint16 { return uint16(e.l.Addr().(*net.TCPAddr).Port) }
	if e, ok := eps[ServiceNFS]; ok {
		b.NFS, ports.NFS = e.l.Addr(), port(e)
		s.spawn(func() error { return s.Serve(e.l) })
	}
	if e, ok := eps[ServiceMount]; ok {
		b.Mount, ports.Mount = e.l.Addr(), port(e)
		s.spawn(func() error { return s.ServeMount(e.l) })
		s.spawn(func() error { return s.ServeMountPacket(e.pc) })
	}
	if e, ok := eps[ServiceNLM]; ok {
		b.NLM, ports.NLM = e.l.Addr(), port(e)
		s.spawn(func() error { return s.ServeNLM(e.l) })
		s.spawn(func() error { return s.ServeNLMPacket(e.pc) })
	}
	ports.UDP = true
	s.SetPortmap(ports)
	if e, ok := eps[ServicePortmap]; ok {
		b.Portmap = e.l.Addr()
		s.spawn(func() error { return s.ServePortmap(e.l) })
		s.spawn(func() error { return s.ServePortmapPacket(e.pc) })
	}
	return b, nil
}

// spawn runs a serving loop in the background, logging how it ended
// unless the server was shut down.
func (s *Server) spawn(serve func() error) {
	s.serving.Add(1)
	go func() {
		defer s.serving.Done()
		if err := serve(); err != nil && !errors.Is(err, oncrpc.ErrServerClosed) {
			s.log.Error("NFS listener stopped", "err", err)
		}
	}()
}
