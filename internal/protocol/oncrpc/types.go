package oncrpc

import (
	"errors"
	"fmt"
	"io"
	"strconv"
)

// RPCVersion is the only RPC protocol version there is (RFC 5531).
const RPCVersion = 2

// AuthFlavor identifies an authentication flavor (RFC 5531 section 8.2).
type AuthFlavor uint32

// The flavors this package knows by name.
const (
	AuthNone  AuthFlavor = 0
	AuthSys   AuthFlavor = 1
	AuthShort AuthFlavor = 2
	AuthDH    AuthFlavor = 3
	RPCSECGSS AuthFlavor = 6
)

func (f AuthFlavor) String() string {
	switch f {
	case AuthNone:
		return "AUTH_NONE"
	case AuthSys:
		return "AUTH_SYS"
	case AuthShort:
		return "AUTH_SHORT"
	case AuthDH:
		return "AUTH_DH"
	case RPCSECGSS:
		return "RPCSEC_GSS"
	}
	return "auth_flavor(" + strconv.FormatUint(uint64(f), 10) + ")"
}

// AcceptStat is the status of an accepted reply. Values other than
// Success are errors: a Handler returns ProcUnavail, GarbageArgs or
// SystemErr (possibly wrapped) to have the server send that status,
// and the Client returns them when a server sends them.
type AcceptStat uint32

// Accepted reply statuses (RFC 5531 section 9).
const (
	Success      AcceptStat = 0
	ProgUnavail  AcceptStat = 1
	ProgMismatch AcceptStat = 2
	ProcUnavail  AcceptStat = 3
	GarbageArgs  AcceptStat = 4
	SystemErr    AcceptStat = 5
)

func (s AcceptStat) String() string {
	switch s {
	case Success:
		return "SUCCESS"
	case ProgUnavail:
		return "PROG_UNAVAIL"
	case ProgMismatch:
		return "PROG_MISMATCH"
	case ProcUnavail:
		return "PROC_UNAVAIL"
	case GarbageArgs:
		return "GARBAGE_ARGS"
	case SystemErr:
		return "SYSTEM_ERR"
	}
	return "accept_stat(" + strconv.FormatUint(uint64(s), 10) + ")"
}

func (s AcceptStat) Error() string { return "oncrpc: " + s.String() }

// AuthStat is the reason for an AUTH_ERROR rejection. A Handler returns
// one (possibly wrapped) to have the server deny the call, and the
// Client returns it when a server denies a call.
type AuthStat uint32

// Authentication statuses (RFC 5531 section 9).
const (
	AuthOK           AuthStat = 0
	AuthBadCred      AuthStat = 1
	AuthRejectedCred AuthStat = 2
	AuthBadVerf      AuthStat = 3
	AuthRejectedVerf AuthStat = 4
	AuthTooWeak      AuthStat = 5
	AuthInvalidResp  AuthStat = 6
	AuthFailed       AuthStat = 7
)

func (s AuthStat) String() string {
	switch s {
	case AuthOK:
		return "AUTH_OK"
	case AuthBadCred:
		return "AUTH_BADCRED"
	case AuthRejectedCred:
		return "AUTH_REJECTEDCRED"
	case AuthBadVerf:
		return "AUTH_BADVERF"
	case AuthRejectedVerf:
		return "AUTH_REJECTEDVERF"
	case AuthTooWeak:
		return "AUTH_TOOWEAK"
	case AuthInvalidResp:
		return "AUTH_INVALIDRESP"
	case AuthFailed:
		return "AUTH_FAILED"
	}
	return "auth_stat(" + strconv.FormatUint(uint64(s), 10) + ")"
}

func (s AuthStat) Error() string { return "oncrpc: call denied: " + s.String() }

// ErrRPCMismatch is matched (errors.Is) by the MismatchError a client
// gets when the server does not speak RPC version 2.
var ErrRPCMismatch = errors.New("oncrpc: RPC version mismatch")

// MismatchError reports the versions a server supports: of the RPC
// protocol (RPC is true, an MSG_DENIED reply) or of the called program
// (a PROG_MISMATCH reply). It matches ErrRPCMismatch or ProgMismatch.
type MismatchError struct {
	RPC       bool
	Low, High uint32
}

func (e *MismatchError) Error() string {
	what := "program"
	if e.RPC {
		what = "RPC"
	}
	return fmt.Sprintf("oncrpc: %s version mismatch: server supports %d to %d", what, e.Low, e.High)
}

func (e *MismatchError) Unwrap() error {
	if e.RPC {
		return ErrRPCMismatch
	}
	return ProgMismatch
}

// ErrNoReply, returned by a Handler, drops the call without a reply.
// Use it where a protocol says a server stays silent (a broadcast the
// server cannot answer, for example); a client on TCP then waits for
// its timeout, so prefer an error reply wherever the protocol has one.
var ErrNoReply = errors.New("oncrpc: call dropped without a reply")

// Raw is an already encoded XDR value: its WriteTo writes the bytes
// unchanged. Handlers use it for results they encode themselves.
type Raw []byte

// WriteTo implements io.WriterTo.
func (b Raw) WriteTo(w io.Writer) (int64, error) {
	n, err := w.Write(b)
	return int64(n), err
}

// ReaderFromFunc adapts a decoding function to io.ReaderFrom, for the
// generated union types, which are read by functions, not methods.
type ReaderFromFunc func(r io.Reader) (int64, error)

// ReadFrom implements io.ReaderFrom.
func (f ReaderFromFunc) ReadFrom(r io.Reader) (int64, error) { return f(r) }
