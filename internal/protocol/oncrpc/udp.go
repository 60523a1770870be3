package oncrpc

import (
	"errors"
	"fmt"
	"net"
	"sync"
)

// maxDatagram is the largest UDP payload; a call never spans datagrams.
const maxDatagram = 65535

// ServePacket serves calls arriving as datagrams on pc (RFC 5531 over
// UDP: one call per datagram, no record marking). At most
// MaxOutstanding calls of pc are served at once; further datagrams wait
// in the socket buffer, where the kernel drops them when it fills up
// and clients retransmit. It returns ErrServerClosed after Shutdown or
// Close, and otherwise pc's error. The server closes pc when it stops.
func (s *Server) ServePacket(pc net.PacketConn) error {
	if !s.track(func() { s.packetConns[pc] = struct{}{} }) {
		pc.Close()
		return ErrServerClosed
	}
	defer s.untrack(func() { delete(s.packetConns, pc) })
	var calls sync.WaitGroup
	defer calls.Wait()
	sem := make(chan struct{}, s.cfg.MaxOutstanding)
	scratch := make([]byte, maxDatagram)
	local := pc.LocalAddr()
	for {
		n, remote, err := pc.ReadFrom(scratch)
		if err != nil {
			if s.closing.Load() || errors.Is(err, net.ErrClosed) {
				return ErrServerClosed
			}
			if isTimeout(err) {
				continue
			}
			return fmt.Errorf("oncrpc: read datagram on %s: %w", local, err)
		}
		rec := append(getBuffer(n), scratch[:n]...)
		select {
		case sem <- struct{}{}:
		case <-s.forced:
			putBuffer(rec)
			return ErrServerClosed
		}
		calls.Add(1)
		go func() {
			defer calls.Done()
			defer func() { <-sem }()
			ep := endpoint{network: "udp", local: local, remote: remote}
			var pl payload
			reply := s.serveRecord(&ep, rec, &pl)
			putBuffer(rec)
			if reply == nil {
				return
			}
			reply = flatten(reply, &pl)
			if _, err := pc.WriteTo(reply[markSize:], remote); err != nil && !s.closing.Load() {
				s.logger.Info("rpc reply datagram not sent", "remote", addrString(remote), "bytes", len(reply)-markSize, "err", err)
			}
			putBuffer(reply)
		}()
	}
}
