#!/bin/sh
# Regenerates NAME_xdr.go from NAME.x in the current directory with the
# buildbarn go-xdr compiler, then formats it. Run through
# `go generate ./internal/protocol/xdr/...`; the build itself never
# needs the compiler because the generated files are kept in the tree.
set -eu
name="$1"
compiler="github.com/buildbarn/go-xdr/cmd/xdr_compiler@v0.0.0-20261005144839-a2095890273e"
# The compiler opens its output without truncating it, so a shorter
# result would keep the tail of the previous file.
rm -f "${name}_xdr.go"
go run "$compiler" -I . "${name}.x" "${name}_xdr.go"
# The compiler formats every unknown union discriminant with %d, which
# go vet rejects for the unreachable default branch of a bool switch.
# The blank line after the first line keeps the "Code generated" marker
# out of the package documentation.
sed -e 's/has unknown value %d", discriminant)/has unknown value %v", discriminant)/' \
	-e '1G' \
	"${name}_xdr.go" >"${name}_xdr.go.tmp"
mv "${name}_xdr.go.tmp" "${name}_xdr.go"
gofmt -w "${name}_xdr.go"
