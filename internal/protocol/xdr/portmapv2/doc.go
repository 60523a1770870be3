// Package portmapv2 holds the port mapper version 2 wire types
// (RFC 1833 section 3) and the PMAPPROC procedure numbers.
//
// The Go code in portmapv2_xdr.go is generated from portmapv2.x by the buildbarn
// go-xdr compiler and kept in the tree, so building needs no generator.
// Edit the .x file and run "go generate" to change it; never edit the
// generated file. The package holds wire types only: it must not act
// on the messages it describes.
package portmapv2

//go:generate sh ../generate.sh portmapv2
