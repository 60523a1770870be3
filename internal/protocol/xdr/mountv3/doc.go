// Package mountv3 holds the MOUNT version 3 wire types (RFC 1813
// appendix I) and the MOUNTPROC3 procedure numbers.
//
// The Go code in mountv3_xdr.go is generated from mountv3.x by the buildbarn
// go-xdr compiler and kept in the tree, so building needs no generator.
// Edit the .x file and run "go generate" to change it; never edit the
// generated file. The package holds wire types only: it must not act
// on the messages it describes.
package mountv3

//go:generate sh ../generate.sh mountv3
