// Package nlmv4 holds the Network Lock Manager version 4 wire types
// (RFC 1813 appendix II, X/Open XNFS) and the NLMPROC4 procedure numbers.
//
// The Go code in nlmv4_xdr.go is generated from nlmv4.x by the buildbarn
// go-xdr compiler and kept in the tree, so building needs no generator.
// Edit the .x file and run "go generate" to change it; never edit the
// generated file. The package holds wire types only: it must not act
// on the messages it describes.
package nlmv4

//go:generate sh ../generate.sh nlmv4
