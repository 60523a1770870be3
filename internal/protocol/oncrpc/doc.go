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
