#!/usr/bin/env bash
# Runs the filesystem core's benchmarks on the embedded engines (Pebble
# metadata with durable commits, local-directory blocks with fdatasync) and
# prints the figures docs/benchmarks.md reports. Run it on a quiet machine:
# the figures are wall-clock rates.
set -euo pipefail
cd "$(dirname "$0")/.."
count="${COUNT:-3}"
echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $(nproc) CPUs, $(go version)"
go test -run '^$' -count "$count" -benchtime 20000x -bench 'BenchmarkCreate' ./internal/core/
go test -run '^$' -count "$count" -benchtime 3s -bench 'BenchmarkGetAttrCached|BenchmarkSeqWrite$|BenchmarkSeqRead' ./internal/core/
go test -run '^$' -count "$count" -benchtime 200x -bench 'BenchmarkSeqWriteStable' ./internal/core/
go test -run '^$' -count "$count" -benchtime 2s -bench 'BenchmarkStore' ./internal/engine/kv/pebblekv/ ./internal/engine/blob/localblob/
