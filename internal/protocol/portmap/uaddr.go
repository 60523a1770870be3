package portmap

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// FormatUaddr renders an IP address and port as an RPC universal
// address (RFC 5665): the address's usual text followed by the port's
// two bytes in decimal, "192.0.2.7.8.1" for port 2049.
func FormatUaddr(ip netip.Addr, port uint16) string {
	return ip.String() + "." + strconv.Itoa(int(port>>8)) + "." + strconv.Itoa(int(port&0xff))
}

// ParseUaddr parses an RPC universal address for an IP transport.
func ParseUaddr(s string) (netip.AddrPort, error) {
	i := strings.LastIndexByte(s, '.')
	if i < 0 {
		return netip.AddrPort{}, fmt.Errorf("portmap: universal address %q has no port", s)
	}
	j := strings.LastIndexByte(s[:i], '.')
	if j < 0 {
		return netip.AddrPort{}, fmt.Errorf("portmap: universal address %q has no port", s)
	}
	hi, err1 := strconv.ParseUint(s[j+1:i], 10, 8)
	lo, err2 := strconv.ParseUint(s[i+1:], 10, 8)
	if err := errors.Join(err1, err2); err != nil {
		return netip.AddrPort{}, fmt.Errorf("portmap: universal address %q has a bad port: %w", s, err)
	}
	ip, err := netip.ParseAddr(s[:j])
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("portmap: universal address %q: %w", s, err)
	}
	return netip.AddrPortFrom(ip, uint16(hi<<8|lo)), nil
}

// Transport addresses (netbufs) hold a struct sockaddr as the system
// lays it out. These are Linux's layouts (the platform the gateway
// runs on): a 16-bit family in host order, which is little-endian on
// every Linux target the gateway builds for, then the port and the
// address in network order.
const (
	afInet          = 2
	afInet6         = 10
	sockaddrInLen   = 16
	sockaddrIn6Len  = 28
	sockaddrFamily  = 0
	sockaddrPort    = 2
	sockaddrIn4Addr = 4
	sockaddrIn6Addr = 8
)

// uaddrToTaddr converts a universal address to a sockaddr.
func uaddrToTaddr(uaddr string) ([]byte, bool) {
	ap, err := ParseUaddr(uaddr)
	if err != nil {
		return nil, false
	}
	ip := ap.Addr()
	if ip.Is4() {
		b := make([]byte, sockaddrInLen)
		binary.LittleEndian.PutUint16(b[sockaddrFamily:], afInet)
		binary.BigEndian.PutUint16(b[sockaddrPort:], ap.Port())
		a := ip.As4()
		copy(b[sockaddrIn4Addr:], a[:])
		return b, true
	}
	b := make([]byte, sockaddrIn6Len)
	binary.LittleEndian.PutUint16(b[sockaddrFamily:], afInet6)
	binary.BigEndian.PutUint16(b[sockaddrPort:], ap.Port())
	a := ip.As16()
	copy(b[sockaddrIn6Addr:], a[:])
	return b, true
}

// taddrToUaddr converts a sockaddr to a universal address.
func taddrToUaddr(b []byte) (string, bool) {
	if len(b) < 2 {
		return "", false
	}
	switch binary.LittleEndian.Uint16(b[sockaddrFamily:]) {
	case afInet:
		if len(b) < sockaddrIn4Addr+4 {
			return "", false
		}
		ip := netip.AddrFrom4([4]byte(b[sockaddrIn4Addr : sockaddrIn4Addr+4]))
		return FormatUaddr(ip, binary.BigEndian.Uint16(b[sockaddrPort:])), true
	case afInet6:
		if len(b) < sockaddrIn6Addr+16 {
			return "", false
		}
		ip := netip.AddrFrom16([16]byte(b[sockaddrIn6Addr : sockaddrIn6Addr+16]))
		return FormatUaddr(ip, binary.BigEndian.Uint16(b[sockaddrPort:])), true
	}
	return "", false
}
