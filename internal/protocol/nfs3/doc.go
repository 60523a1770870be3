// Package nfs3 is the NFSv3 front-end (RFC 1813): the NFS program (100003
// version 3), the MOUNT program (100005 version 3) and, through package nlm,
// the NLM and NSM locking programs, served over the ONC RPC transport of
// package oncrpc, with the built-in port mapper of package portmap when the
// gateway runs one.
//
// The package owns the NFSv3 semantics that sit above the filesystem core:
// file handles (fsid, export, inode number, generation in a fixed-size,
// versioned handle), exports and their rules (allowed clients, squashing of
// AUTH_SYS identities, read-only exports, accepted security flavors), the
// mount table, readdir cookies and byte budgets, weak cache consistency
// data, and the mapping of core errors to NFS3ERR and MNT3ERR statuses.
//
// It speaks only the core API and its own wire types (package
// xdr/nfsv3, xdr/mountv3): permission checks, quotas, caching, write-back
// buffering and locks are the core's, and this package never reaches the
// metadata store or the blocks. Identity is whatever the export's squash
// rules make of the caller's AUTH_SYS credential; the core decides what that
// identity may do.
package nfs3
