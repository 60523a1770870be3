// Package nfsv3 holds the NFS version 3 wire types (RFC 1813): the
// arguments and results of every NFSPROC3 procedure and the program,
// version and procedure numbers.
//
// The Go code in nfsv3_xdr.go is generated from nfsv3.x by the buildbarn
// go-xdr compiler and kept in the tree, so building needs no generator.
// Edit the .x file and run "go generate" to change it; never edit the
// generated file. The package holds wire types only: it must not act
// on the messages it describes.
package nfsv3

//go:generate sh ../generate.sh nfsv3
