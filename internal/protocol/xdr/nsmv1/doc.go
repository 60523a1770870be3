// Package nsmv1 holds the Network Status Monitor version 1 wire types
// (X/Open XNFS) and the SM procedure numbers.
//
// The Go code in nsmv1_xdr.go is generated from nsmv1.x by the buildbarn
// go-xdr compiler and kept in the tree, so building needs no generator.
// Edit the .x file and run "go generate" to change it; never edit the
// generated file. The package holds wire types only: it must not act
// on the messages it describes.
package nsmv1

//go:generate sh ../generate.sh nsmv1
