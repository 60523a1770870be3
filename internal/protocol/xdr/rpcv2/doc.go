// Package rpcv2 holds the ONC RPC version 2 message types (RFC 5531):
// the call and reply headers, the authentication flavors and the
// AUTH_SYS credential body.
//
// The Go code in rpcv2_xdr.go is generated from rpcv2.x by the buildbarn
// go-xdr compiler and kept in the tree, so building needs no generator.
// Edit the .x file and run "go generate" to change it; never edit the
// generated file. The package holds wire types only: it must not act
// on the messages it describes.
package rpcv2

//go:generate sh ../generate.sh rpcv2
