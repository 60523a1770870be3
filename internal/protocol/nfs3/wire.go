package nfs3

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/claudefs/cfs-gateway/internal/protocol/oncrpc"
	"github.com/claudefs/cfs-gateway/internal/protocol/xdr/nfsv3"
)

// decodeWrite decodes WRITE arguments as the generated decoder does, with
// one difference: the data refers to the call's argument bytes instead of
// a copy. The generated decoder copies the payload through a growing
// buffer, which for 1 MiB writes cost more CPU than the rest of the call;
// the core copies the data into its write-back buffer before Write
// returns, and the arguments stay valid until the reply is encoded.
// FuzzDecodeWrite holds the two decoders to the same answers.
func decodeWrite(call *oncrpc.Call) (nfsv3.Write3args, error) {
	var a nfsv3.Write3args
	b := call.Args
	r := bytes.NewReader(b)
	fail := func(err error) (nfsv3.Write3args, error) {
		return nfsv3.Write3args{}, fmt.Errorf("%w: WRITE arguments: %v", oncrpc.GarbageArgs, err)
	}
	if _, err := a.File.ReadFrom(r); err != nil {
		return fail(err)
	}
	var err error
	if a.Offset, _, err = nfsv3.ReadOffset3(r); err != nil {
		return fail(err)
	}
	if a.Count, _, err = nfsv3.ReadCount3(r); err != nil {
		return fail(err)
	}
	if _, err = a.Stable.ReadFrom(r); err != nil {
		return fail(err)
	}
	n, _, err := nfsv3.ReadUint32(r)
	if err != nil {
		return fail(err)
	}
	pos := len(b) - r.Len()
	if (uint64(n)+3)&^3 > uint64(r.Len()) {
		return fail(io.ErrUnexpectedEOF)
	}
	end := pos + int(n)
	for _, p := range b[end : pos+pad4(int(n))] {
		if p != 0 {
			return fail(errors.New("padding contains non-zero values"))
		}
	}
	a.Data = b[pos:end:end]
	return a, nil
}
