// Package scaleout holds the integration tests of a scale-out deployment:
// the filesystem core over the etcd metadata engine and the S3 block
// engine, against a real 3-member etcd cluster and a real S3 server on
// loopback. They cover the core's semantics suite, the circuit breakers
// through lost quorum and a stopped object store, the leader of etcd
// killed during concurrent creates, caches that follow another gateway's
// changes, a gateway process killed in the middle of large S3 PUTs and NFS
// writes (nothing partial visible on the other, gc collects what it left),
// and /health following an etcd member down and up. The package has no
// code of its own.
package scaleout
