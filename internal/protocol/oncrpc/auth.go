package oncrpc

import (
	"bytes"
	"fmt"

	"github.com/claudefs/cfs-gateway/internal/protocol/xdr/rpcv2"
)

// MaxAuthBytes is the longest credential or verifier body (RFC 5531).
const MaxAuthBytes = 400

// MaxAuthSysGroups is the number of supplementary groups an AUTH_SYS
// credential can carry (RFC 5531 appendix A).
const MaxAuthSysGroups = 16

// OpaqueAuth is a credential or verifier as it travels: a flavor and an
// opaque body of at most MaxAuthBytes.
type OpaqueAuth struct {
	Flavor AuthFlavor
	Body   []byte
}

// SysCredential is a decoded AUTH_SYS credential: who the client says the
// caller is. Nothing proves it; export rules decide how far to trust it.
type SysCredential struct {
	Stamp       uint32
	MachineName string
	UID, GID    uint32
	GIDs        []uint32
}

// DecodeAuthSys decodes the body of an AUTH_SYS credential. A body that
// is truncated, has trailing bytes, a machine name over 255 bytes or
// more than 16 groups is malformed; the error matches AuthBadCred.
func DecodeAuthSys(body []byte) (SysCredential, error) {
	var p rpcv2.AuthsysParms
	r := bytes.NewReader(body)
	if _, err := p.ReadFrom(r); err != nil {
		return SysCredential{}, fmt.Errorf("%w: AUTH_SYS body: %v", AuthBadCred, err)
	}
	if r.Len() != 0 {
		return SysCredential{}, fmt.Errorf("%w: AUTH_SYS body has %d trailing bytes", AuthBadCred, r.Len())
	}
	return SysCredential{
		Stamp:       p.Stamp,
		MachineName: string(p.Machinename),
		UID:         p.Uid,
		GID:         p.Gid,
		GIDs:        p.Gids,
	}, nil
}

// Credential encodes a as an AUTH_SYS credential. It fails when the
// machine name or the group list is longer than AUTH_SYS allows.
func (a SysCredential) Credential() (OpaqueAuth, error) {
	p := rpcv2.AuthsysParms{
		Stamp:       a.Stamp,
		Machinename: []byte(a.MachineName),
		Uid:         a.UID,
		Gid:         a.GID,
		Gids:        a.GIDs,
	}
	var b bytes.Buffer
	if _, err := p.WriteTo(&b); err != nil {
		return OpaqueAuth{}, fmt.Errorf("oncrpc: encode AUTH_SYS credential: %w", err)
	}
	return OpaqueAuth{Flavor: AuthSys, Body: b.Bytes()}, nil
}
