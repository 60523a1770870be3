// Package lock is the gateway's single table of file locking state: byte-range
// locks, share reservations (share modes) and leases (SMB leases and oplocks,
// NFSv4 delegations). Every protocol front-end uses this one table, so that an
// NLM lock taken by an NFSv3 client is seen by an SMB client, an SMB share mode
// refuses an NFSv4 OPEN, and a write from any protocol breaks an SMB lease or
// recalls an NFSv4 delegation.
//
// The package owns conflict rules, waiting and breaking. It knows nothing of
// wire formats, stateids, file handles or sessions and imports no other package
// of the project: callers translate their protocol's requests into the types
// here and the errors here back into their protocol's status codes. State is
// in memory, keyed by FileID (the inode number), and is lost on restart;
// the protocols' own recovery (NLM/NSM reclaim, NFSv4 grace, SMB durable
// handles) rebuilds it.
//
// # Owners and clients
//
// An Owner is whoever holds a byte-range lock: a Client string that names the
// remote party with a protocol prefix ("nlm:host", "nfs4:<clientid>",
// "smb:<session>") and, within it, an ID and a PID. All three fields take part
// in comparisons, so a protocol puts into them exactly what makes two requests
// "the same owner" for it: for NLM the caller name and svid, for NFSv4 the
// lock-owner, for SMB2 the open (locks belong to the handle). ReleaseClient
// drops every lock, waiter, share reservation and lease whose client matches,
// which serves NSM reboot notifications, SMB logoff and NFSv4 lease expiry.
//
// # Byte-range locks
//
// A Lock covers [Start, End) with End == ToEOF meaning "to the end of the file,
// whatever its size". Shared locks of different owners coexist; an exclusive
// lock excludes every other owner's lock over any byte it covers. Each lock has
// a Flavor, which decides how an owner's own locks combine:
//
//   - POSIX (NLM, NFSv4): advisory. An owner's locks never conflict with each
//     other; a new lock replaces whatever the owner held over its range, which
//     gives upgrade, downgrade, merge of touching ranges of the same type and
//     split on a partial unlock. The table keeps each owner's locks disjoint
//     and merged. A conflicting request changes nothing (atomicity). POSIX
//     locks never block reads or writes.
//   - Mandatory (SMB2, following MS-FSA): locks stack. The same owner may hold
//     overlapping shared locks and may stack a shared lock on its own
//     exclusive lock, but an exclusive request overlapping any lock, even its
//     own, is refused. Unlock names an exact range the owner holds; when
//     several match, an exclusive one goes first. Zero-length locks are allowed
//     and overlap only a range that strictly contains their offset. CheckIO
//     enforces them against reads and writes: a read conflicts with another
//     owner's exclusive lock; a write conflicts with another owner's exclusive
//     lock and with any shared lock, the writer's own included, as Windows does.
//
// Locks of different flavours (an NLM lock and an SMB lock on the same file)
// conflict like locks of different owners. An owner should use one flavour; if
// it mixes them its locks of one flavour conflict with its locks of the other.
//
// A request that cannot be granted either fails at once with a *ConflictError
// naming the lock in the way (errors.Is(err, ErrConflict)), blocks until
// granted (Lock with wait), or is queued with a callback that runs once it has
// been granted (LockOrQueue, for NLM's GRANTED callback). Cancel withdraws a
// queued request. Queued requests are granted in arrival order: a queued
// request waits for held locks in its way and for earlier queued requests it
// conflicts with, so a stream of shared locks cannot starve a queued exclusive
// one. A new request from an owner that holds no lock on the file also waits
// behind (or, without wait, is refused because of) a queued request it
// conflicts with. Owners that already hold locks on the file skip the queue,
// because the queued requests may be waiting for exactly their locks; without
// that exception an owner upgrading its own lock would deadlock against a
// waiter. There is no deadlock detection across files or owners: a request
// waits until granted, canceled or its context ends, and EDEADLK is never
// reported. Clients that can deadlock rely on their own timeouts.
//
// # Share reservations
//
// OpenShare records an open with an access mask (read, write, delete) and a
// deny mask (the complement of SMB's ShareAccess; NFSv4's share_deny). A new
// open is refused with ErrShareConflict if an existing open's deny mask
// forbids the new open's access, or the new open's deny mask forbids an
// existing open's access. Opens that ask for no data access (attribute-only)
// neither conflict nor deny, as in MS-FSA. Every open conflicts with every
// other, the same owner's included; NFSv4 OPEN upgrade and OPEN_DOWNGRADE use
// ChangeShare on the existing handle instead of a second open.
//
// # Leases, oplocks and delegations
//
// A lease lets a holder cache reads (LeaseRead), writes (LeaseWrite) and open
// handles (LeaseHandle). The valid states are those of SMB2 leases: none, R,
// RW, RH, RWH. Oplocks map to R (level II), RW (exclusive) and RWH (batch); an
// NFSv4 read delegation to R and a write delegation to RW, granted with
// RecallWhole so that any break recalls it entirely (delegations cannot be
// partly downgraded). A delegation that must also be recalled when another
// client renames or removes the file is granted with LeaseHandle added.
//
// A lease is named by a LeaseKey and covers every open that carries the same
// key; a second Grant with the same key returns the existing lease, upgraded
// if possible. Grant never waits and never breaks: it returns the best state
// compatible with the other holders' leases, the opens of other holders, and
// the breaks in progress, which may be less than asked, or none. A write
// lease requires that no other key holds a lease and that every open of the
// file with data access carries the requester's key.
//
// Before an access that conflicts with other holders' caching, the caller
// calls Break with its own key (zero if it has none, as for NFSv3 and S3) and
// the kind of access:
//
//   - AccessRead: reading, or opening without changing data. Others lose write
//     caching (RWH becomes RH, RW becomes R).
//   - AccessWrite: writing, changing the size (setattr, truncate, an
//     overwriting open), taking a byte-range lock, or an NFSv4 open for write.
//     Others lose read and write caching, and so handle caching too, which
//     cannot stand alone: their leases go to none.
//   - AccessHandle: renaming or deleting the file, or an open refused by a
//     share mode. Others lose handle caching so that they close the handles
//     they keep open; the caller retries the open afterwards.
//
// Kinds combine with |. Break calls each affected lease's OnBreak callback once
// per break (with the state held and the state to drop to) and waits until
// every affected lease has been acknowledged (Acknowledge), released
// (ReleaseLease) or revoked. A lease not acknowledged within the break timeout
// (Options.BreakTimeout, default 35 seconds, changeable with SetBreakTimeout)
// is revoked entirely and its OnRevoke callback runs. If a lease already being
// broken must drop further, the manager waits for the pending acknowledgement
// and then sends the next break, as SMB2 requires. Leases with the breaker's
// key are never broken. While a Break is in progress, grants to other keys do
// not receive the bits being broken. Break only holds that fence while it
// runs; a caller that must keep other holders from regaining caching until its
// own operation is done uses BreakAndHold and calls the release function
// afterwards.
//
// Callbacks (granted, OnBreak, OnRevoke) run on their own goroutines, never
// with the table locked, so they may send network messages and call back into
// the Manager.
//
// # Gateways sharing locks
//
// In a scale-out deployment several gateways serve one namespace, and a lock
// taken through one must hold off conflicting requests through the others.
// With Options.Cluster, each gateway keeps one record per file in a shared
// store, tied to its session: its byte-range locks (held and queued) and its
// share reservations. A request that adds anything is first claimed: the
// other gateways' records are checked by the same conflict rules as local
// state and the gateway's own record is rewritten to include the request,
// atomically; then the local table decides as it would alone. Changes that
// only give things up (unlock, close, release, cancel) rewrite the record
// afterwards. A gateway's record therefore always covers at least what its
// table holds, and two gateways can never both be granted conflicting locks.
// A request held off by another gateway waits for that file's records to
// change (Lock with wait, LockOrQueue), with no ordering among gateways.
//
// When a gateway dies or stalls past its session, its records vanish and
// others may take its locks. When it notices (SessionLost), it drops every
// lock and share reservation and fences the files that had any: writers ask
// Fenced and refuse writes through this gateway for Options.FenceFor, and a
// write to a file where the gateway holds state (Claimed) proves in its own
// transaction that the record is still there, which closes the window before
// the loss is noticed. Leases are not shared: since another gateway could
// not break them, a Manager with a Cluster grants none. CheckIO sees only
// this gateway's mandatory locks.
//
// # Concurrency
//
// The table is split into shards by FileID, each with its own mutex; an
// operation on one file takes one shard. Operations by client or owner visit
// every shard in turn. Stats reports counts for the admin page; the package
// exports no metrics itself.
package lock
