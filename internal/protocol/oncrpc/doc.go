// Package oncrpc is the ONC RPC version 2 transport (RFC 5531) that the
// NFSv3 family of protocols (NFS, MOUNT, NLM, NSM, the port mapper)
// runs on: a server shaped like net/http and a small client.
//
// The server owns listeners and connections. It frames records (record
// marking with fragments over TCP, one datagram per record over UDP),
// decodes the call header and the AUTH_NONE / AUTH_SYS credential,
// sends the RFC's rejections (RPC_MISMATCH, AUTH_ERROR, PROG_UNAVAIL,
// PROG_MISMATCH) by itself, and hands every other call to the Handler
// registered for its program. Calls on one connection run concurrently
// and their replies go out as they complete, one record per reply.
// A per-connection cap on outstanding calls stops reading from a
// client that sends faster than it is served, and a record size cap
// closes a connection that announces an oversized record. A duplicate
// request cache replays the reply of a retransmitted non-idempotent
// call instead of running it twice.
//
// Each connection has a reader goroutine; calls go to call goroutines
// that wait a while for the next call when done, and whichever finishes
// while no write is under way sends every queued reply. A call of a
// procedure its program declares Quick is served by the reader itself
// when no other call is waiting in its buffer, which spares a wakeup of
// another CPU per call on a quiet connection. Results may hand a large
// payload (READ data) to the transport (PayloadWriter), which sends it
// with writev from where it lies. A connection keeps the decoding of its
// last AUTH_SYS credential, which clients repeat call after call.
//
// An idle connection holds no buffers: the 4-byte record mark is read
// into a small array and buffers come from pools only while a record is
// being received or answered, so that thousands of mostly idle NFS
// clients cost little memory.
//
// The package knows nothing about the programs it carries: decoding
// arguments and encoding results is the handler's business, with the
// wire types generated under internal/protocol/xdr. It must not import
// the filesystem core.
package oncrpc
