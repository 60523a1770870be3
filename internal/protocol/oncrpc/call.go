package oncrpc

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
)

// Call is one RPC call as a Handler sees it.
type Call struct {
	XID  uint32
	Prog uint32
	Vers uint32
	Proc uint32

	// Cred and Verf are the credential and verifier as sent; their
	// bodies share the lifetime of Args. Sys is the decoded credential
	// when Cred.Flavor is AuthSys, nil otherwise; it may be shared with
	// other calls of the connection and must not be modified.
	Cred OpaqueAuth
	Verf OpaqueAuth
	Sys  *SysCredential

	// Network is "tcp" or "udp"; LocalAddr is the server's address the
	// call arrived on and RemoteAddr the client's.
	Network    string
	LocalAddr  net.Addr
	RemoteAddr net.Addr

	// Args holds the encoded arguments. The server reuses the slice
	// once the reply has been encoded, so results may refer to it, but
	// nothing may keep it beyond that (the generated decoders copy what
	// they keep).
	Args []byte
}

// DecodeArgs decodes the arguments into v. Any failure, including
// arguments that are cut short, returns an error that matches
// GarbageArgs; a handler returns it as is to have the server answer
// GARBAGE_ARGS. Bytes after the decoded value are ignored.
func (c *Call) DecodeArgs(v io.ReaderFrom) error {
	return c.DecodeArgsFunc(func(r io.Reader) error {
		_, err := v.ReadFrom(r)
		return err
	})
}

// DecodeArgsFunc is DecodeArgs for decoders that are functions, as the
// generated readers of union types are.
//
// A panic inside decode is turned into GARBAGE_ARGS. The generated
// decoders return errors for malformed input and the fuzz targets hold
// them to it; the recover is a second line of defence at the one place
// where untrusted bytes meet generated code, so that a decoder bug
// costs one call, not the gateway process.
func (c *Call) DecodeArgsFunc(decode func(r io.Reader) error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: decoder panicked on %d bytes of arguments: %v", GarbageArgs, len(c.Args), p)
		}
	}()
	if err := decode(bytes.NewReader(c.Args)); err != nil {
		return fmt.Errorf("%w: %v", GarbageArgs, err)
	}
	return nil
}

// Handler serves the calls of one registered program.
//
// ServeRPC returns the procedure's results, or nil for a procedure
// without results, and a nil error for a SUCCESS reply. An error that
// matches an AcceptStat (ProcUnavail, GarbageArgs, SystemErr,
// ProgUnavail) is sent as that status; one that matches an AuthStat
// denies the call with AUTH_ERROR; ErrNoReply sends nothing. Any other
// error is logged and sent as SYSTEM_ERR.
//
// ServeRPC runs concurrently with other calls of the same connection.
// ctx is cancelled when the server is closed.
type Handler interface {
	ServeRPC(ctx context.Context, call *Call) (io.WriterTo, error)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, call *Call) (io.WriterTo, error)

// ServeRPC implements Handler.
func (f HandlerFunc) ServeRPC(ctx context.Context, call *Call) (io.WriterTo, error) {
	return f(ctx, call)
}
