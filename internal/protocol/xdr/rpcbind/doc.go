// Package rpcbind holds the RPCBIND version 3 and 4 wire types
// (RFC 1833 section 2) and the RPCBPROC procedure numbers.
//
// The Go code in rpcbind_xdr.go is generated from rpcbind.x by the buildbarn
// go-xdr compiler and kept in the tree, so building needs no generator.
// Edit the .x file and run "go generate" to change it; never edit the
// generated file. The package holds wire types only: it must not act
// on the messages it describes.
package rpcbind

//go:generate sh ../generate.sh rpcbind
