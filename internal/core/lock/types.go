package lock

import (
	"errors"
	"fmt"
	"math"
)

// FileID identifies a file in the table: its inode number.
type FileID uint64

// ToEOF as a lock's End means the lock extends to the end of the file, however
// far the file grows. NLM and NFSv4 express it as length 0 or all ones; SMB
// never needs it.
const ToEOF uint64 = math.MaxUint64

// Owner identifies the holder of byte-range locks. All fields take part in
// comparisons. Client names the remote party with a protocol prefix and must
// not be empty: ReleaseClient finds state by it.
type Owner struct {
	Client string
	ID     string
	PID    uint32
}

func (o Owner) String() string {
	return fmt.Sprintf("%s/%s/%d", o.Client, o.ID, o.PID)
}

// Flavor selects how an owner's own byte-range locks combine and whether they
// restrict I/O. See the package comment.
type Flavor uint8

const (
	// POSIX locks are advisory and per owner merged: NLM, NFSv4.
	POSIX Flavor = iota + 1
	// Mandatory locks stack, need exact unlocks and restrict I/O: SMB2.
	Mandatory
)

func (f Flavor) String() string {
	switch f {
	case POSIX:
		return "posix"
	case Mandatory:
		return "mandatory"
	}
	return fmt.Sprintf("flavor(%d)", uint8(f))
}

// Lock is a byte-range lock held or requested over [Start, End).
type Lock struct {
	Owner     Owner
	Flavor    Flavor
	Exclusive bool
	Start     uint64
	End       uint64 // exclusive; ToEOF for "to end of file"
}

func (l Lock) String() string {
	kind := "shared"
	if l.Exclusive {
		kind = "exclusive"
	}
	end := fmt.Sprint(l.End)
	if l.End == ToEOF {
		end = "EOF"
	}
	return fmt.Sprintf("%s %s lock [%d,%s) of %s", l.Flavor, kind, l.Start, end, l.Owner)
}

func (l *Lock) validate() error {
	if l.Owner.Client == "" {
		return fmt.Errorf("%w: owner has no client", ErrInvalid)
	}
	switch l.Flavor {
	case POSIX:
		if l.Start >= l.End {
			return fmt.Errorf("%w: POSIX range [%d,%d) is empty or reversed", ErrInvalidRange, l.Start, l.End)
		}
	case Mandatory:
		if l.Start > l.End {
			return fmt.Errorf("%w: range [%d,%d) is reversed", ErrInvalidRange, l.Start, l.End)
		}
	default:
		return fmt.Errorf("%w: unknown lock flavor %d", ErrInvalid, l.Flavor)
	}
	return nil
}

var (
	// ErrConflict: a lock request or an I/O range collides with another
	// owner's lock. The error is a *ConflictError naming the lock in the way.
	ErrConflict = errors.New("lock: range is locked")
	// ErrNotLocked: a Mandatory unlock names a range the owner does not hold.
	ErrNotLocked = errors.New("lock: no lock held over exactly this range")
	// ErrInvalidRange: the range is reversed, or empty for a POSIX lock.
	ErrInvalidRange = errors.New("lock: invalid range")
	// ErrInvalid: a request is malformed (missing client, unknown flavor,
	// bad mask, missing callback).
	ErrInvalid = errors.New("lock: invalid request")
	// ErrCanceled: a queued lock request was withdrawn by Cancel or by
	// releasing its owner or client before it was granted.
	ErrCanceled = errors.New("lock: queued lock request canceled")
	// ErrShareConflict: an open is refused by share reservations
	// (STATUS_SHARING_VIOLATION, NFS4ERR_SHARE_DENIED).
	ErrShareConflict = errors.New("lock: open conflicts with a share reservation")
	// ErrNoShare: the share handle is not (or no longer) open.
	ErrNoShare = errors.New("lock: share handle not open")
	// ErrNoLease: no lease with this key exists on the file (it may have
	// been revoked).
	ErrNoLease = errors.New("lock: no such lease")
	// ErrNotBreaking: an acknowledgement arrived for a lease that is not
	// being broken.
	ErrNotBreaking = errors.New("lock: lease is not being broken")
	// ErrAckTooHigh: an acknowledgement keeps more caching than the break
	// allows.
	ErrAckTooHigh = errors.New("lock: acknowledged lease state exceeds the break target")
)

// ConflictError reports the lock that keeps a request or an I/O from
// proceeding. NLM TEST/DENIED and NFSv4 LOCK4denied return it to clients.
type ConflictError struct {
	File FileID
	// Conflict is the held lock in the way or, when Queued is true, an
	// earlier queued request that this one must not overtake.
	Conflict Lock
	Queued   bool
}

func (e *ConflictError) Error() string {
	what := "held"
	if e.Queued {
		what = "queued"
	}
	return fmt.Sprintf("lock: file %d: range conflicts with %s %s", e.File, what, e.Conflict)
}

// Is makes errors.Is(err, ErrConflict) true.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }
