package backend

import (
	"context"
	"errors"

	"github.com/claudefs/cfs-gateway/internal/engine/kv"
)

// ErrOpen is the cause of a request rejected by open circuit breakers.
var ErrOpen = errors.New("circuit breaker open: the backend failed repeatedly and gets no requests until open_duration_ms has passed")

// UnavailableError is a backend failure worth retrying later: the node is
// unreachable, has lost quorum, timed out, answered with a server error, or
// its circuit breaker is open. Protocols answer it with their retry status.
type UnavailableError struct {
	// Backend names the node (meta-1, blob-1) or nodes involved.
	Backend string
	// Err is the cause, for the message. See Unwrap.
	Err error
}

func (e *UnavailableError) Error() string {
	return "backend " + e.Backend + " unavailable: " + e.Err.Error()
}

// Unwrap exposes only the causes that classify the failure: ErrOpen and
// context.DeadlineExceeded. The transport error underneath (a refused
// connection carries syscall.ECONNREFUSED) stays in the message but not in
// the chain, so that code mapping errors to errno values cannot mistake a
// backend's network trouble for the caller's own system error.
func (e *UnavailableError) Unwrap() []error {
	var out []error
	for _, cause := range []error{ErrOpen, context.DeadlineExceeded} {
		if errors.Is(e.Err, cause) {
			out = append(out, cause)
		}
	}
	return out
}

// As lets errors.As find a *kv.Unavailable in an UnavailableError, so that
// code classifying retryable errors by the kv type (the filesystem core)
// treats an object store outage like a metadata one. It stands in until
// package blob has a retryable error of its own.
func (e *UnavailableError) As(target any) bool {
	if p, ok := target.(**kv.Unavailable); ok {
		*p = &kv.Unavailable{Err: e}
		return true
	}
	return false
}

// IsUnavailable reports whether err is, or wraps, a retryable backend
// failure (an *UnavailableError or a *kv.Unavailable).
func IsUnavailable(err error) bool {
	var ue *UnavailableError
	if errors.As(err, &ue) {
		return true
	}
	var ku *kv.Unavailable
	return errors.As(err, &ku)
}
