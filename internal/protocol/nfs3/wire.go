package nfs3

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/claudefs/cfs-gateway/internal/protocol/oncrpc"
	"github.com/claudefs/cfs-gateway/internal/protocol/xdr/nfsv3"
)

// The arguments of the busiest procedures are decoded here as the
// generated decoders do, except that variable-length opaques (file
// handles, names, WRITE data) refer to the call's argument bytes instead
// of being copied: the generated decoder copies each through a growing
// buffer, a tenth of a GETATTR's CPU and more than the rest of a 1 MiB
// WRITE. The arguments stay valid until the reply is encoded, and the
// handlers copy what they keep (names become strings; the core copies
// written data). FuzzArgDecoders holds these decoders to the generated
// ones: the same inputs accepted, with the same values.

// argReader reads XDR items from a call's argument bytes. After the first
// error every read returns zero values and err keeps that error.
type argReader struct {
	b   []byte
	err error
}

func (r *argReader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
	r.b = nil
}

func (r *argReader) uint32() uint32 {
	if len(r.b) < 4 {
		r.fail(io.ErrUnexpectedEOF)
		return 0
	}
	v := binary.BigEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v
}

func (r *argReader) uint64() uint64 {
	hi := r.uint32()
	return uint64(hi)<<32 | uint64(r.uint32())
}

// opaque reads a variable-length opaque of at most max bytes, returning
// the bytes in place (capacity clipped) and checking its zero padding.
func (r *argReader) opaque(max uint32) []byte {
	n := r.uint32()
	if r.err != nil {
		return nil
	}
	if n > max {
		r.fail(fmt.Errorf("size of %d bytes exceeds field's maximum of %d bytes", n, max))
		return nil
	}
	if uint64(pad4(int(n))) > uint64(len(r.b)) {
		r.fail(io.ErrUnexpectedEOF)
		return nil
	}
	v := r.b[:n:n]
	for _, p := range r.b[n:pad4(int(n))] {
		if p != 0 {
			r.fail(errors.New("padding contains non-zero values"))
			return nil
		}
	}
	r.b = r.b[pad4(int(n)):]
	if n == 0 {
		return nil // as the generated decoder returns an empty opaque
	}
	return v
}

func (r *argReader) fh() nfsv3.NfsFh3 { return nfsv3.NfsFh3{Data: r.opaque(nfsv3.NFS3_FHSIZE)} }

// decodeArgs runs read over the call's arguments and answers a failure
// with GARBAGE_ARGS naming the procedure.
func decodeArgs[T any](call *oncrpc.Call, proc string, read func(r *argReader) T) (T, error) {
	r := argReader{b: call.Args}
	v := read(&r)
	if r.err != nil {
		var zero T
		return zero, fmt.Errorf("%w: %s arguments: %v", oncrpc.GarbageArgs, proc, r.err)
	}
	return v, nil
}

func decodeGetattr(call *oncrpc.Call) (nfsv3.Getattr3args, error) {
	return decodeArgs(call, "GETATTR", func(r *argReader) nfsv3.Getattr3args {
		return nfsv3.Getattr3args{Object: r.fh()}
	})
}

func decodeAccess(call *oncrpc.Call) (nfsv3.Access3args, error) {
	return decodeArgs(call, "ACCESS", func(r *argReader) nfsv3.Access3args {
		return nfsv3.Access3args{Object: r.fh(), Access: r.uint32()}
	})
}

func decodeLookup(call *oncrpc.Call) (nfsv3.Lookup3args, error) {
	return decodeArgs(call, "LOOKUP", func(r *argReader) nfsv3.Lookup3args {
		return nfsv3.Lookup3args{What: nfsv3.Diropargs3{Dir: r.fh(), Name: r.opaque(math.MaxUint32)}}
	})
}

func decodeRead(call *oncrpc.Call) (nfsv3.Read3args, error) {
	return decodeArgs(call, "READ", func(r *argReader) nfsv3.Read3args {
		return nfsv3.Read3args{File: r.fh(), Offset: r.uint64(), Count: r.uint32()}
	})
}

// decodeWrite decodes WRITE arguments. Like the generated decoder, it
// leaves judging the stable_how value to the handler.
func decodeWrite(call *oncrpc.Call) (nfsv3.Write3args, error) {
	return decodeArgs(call, "WRITE", func(r *argReader) nfsv3.Write3args {
		a := nfsv3.Write3args{File: r.fh(), Offset: r.uint64(), Count: r.uint32()}
		a.Stable = nfsv3.StableHow(r.uint32())
		a.Data = r.opaque(math.MaxUint32)
		return a
	})
}
