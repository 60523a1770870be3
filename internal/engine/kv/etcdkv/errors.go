package etcdkv

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/claudefs/cfs-gateway/internal/engine/kv"
)

// errRerun makes Update run fn again: a comparison failed at commit, or
// the read revision was compacted away while fn ran.
var errRerun = errors.New("etcdkv: transaction must run again")

// errorClass is what an etcd error means for the kv contract.
type errorClass int

const (
	// classOther is a permanent error: bad credentials, permission denied,
	// an invalid request. It is reported as is and not retried.
	classOther errorClass = iota
	// classUnavailable is worth retrying later: no leader, timeout,
	// member unreachable or overloaded. It counts against the member.
	classUnavailable
	// classRerun means the snapshot is gone; fn must run again.
	classRerun
	// classTooLarge is a request beyond the server's limits.
	classTooLarge
)

// classify maps an error of one RPC to its class. The caller has already
// checked its own context.
func classify(err error) errorClass {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		// The RPC's own timeout, or the connection being closed under it.
		return classUnavailable
	}
	st, ok := status.FromError(err)
	if !ok {
		return classOther
	}
	desc := st.Message()
	switch st.Code() {
	case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted, codes.Aborted, codes.Canceled:
		return classUnavailable
	case codes.OutOfRange:
		if desc == rpctypes.ErrorDesc(rpctypes.ErrGRPCCompacted) {
			return classRerun
		}
		// A future revision: the member is behind; another will do.
		return classUnavailable
	case codes.Unknown:
		// The server's own deadline, passed on from the client's.
		if strings.Contains(desc, context.DeadlineExceeded.Error()) {
			return classUnavailable
		}
	case codes.InvalidArgument:
		if desc == rpctypes.ErrorDesc(rpctypes.ErrGRPCTooManyOps) || desc == rpctypes.ErrorDesc(rpctypes.ErrGRPCRequestTooLarge) {
			return classTooLarge
		}
	}
	return classOther
}

// mapError turns an RPC error into the error a reader or commit returns,
// recording unavailability on o so that the member's breaker hears of it.
func (o *opState) mapError(ctx context.Context, what string, m *member, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	switch classify(err) {
	case classUnavailable:
		e := fmt.Errorf("etcdkv: %s on etcd member %s (%s): %w; retry later", what, m.name, m.endpoint, err)
		o.failure = e
		return &kv.Unavailable{Err: e}
	case classRerun:
		return fmt.Errorf("%w: %s: %v", errRerun, what, err)
	case classTooLarge:
		return fmt.Errorf("%w: etcd refused the %s: %v (raise the members' --max-txn-ops or --max-request-bytes, or keep transactions within the kv limits)", kv.ErrTooLarge, what, err)
	}
	return fmt.Errorf("etcdkv: %s on etcd member %s (%s): %w", what, m.name, m.endpoint, err)
}
