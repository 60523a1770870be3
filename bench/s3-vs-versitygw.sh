#!/usr/bin/env bash
# Measures the gateway's S3 server and versitygw (posix backend) side by
# side with the project's own load client (bench/s3load, AWS SDK for Go
# v2), on loopback, with both servers' data on the same filesystem, one
# server at a time, with the same workloads and client settings:
#
#   put-large / get-large  LARGE_COUNT 64 MiB objects, LARGE_CONC requests
#                          in flight (default: one at a time), MiB/s
#   put-small / get-small  4 KiB objects, CONC requests in flight for SECS
#                          seconds, ops/s with p50 and p99 latency
#   list                   KEYS 4 KiB objects put into an empty bucket at
#                          CONC in flight, then one ListObjectsV2 walk over
#                          them in pages of 1000, timed and checked
#
# versitygw runs with --keep-alive (without it, it closes the connection
# after every request) and --quiet (no log line per request). Its posix
# backend does not fsync; the gateway's PUT is durable when acknowledged.
# Each server starts on a fresh data directory after a sync, so that one
# server's dirty pages are not written back during the other's run. With
# ROUNDS above 1 the pair is measured again, the order alternating, and the
# table gives the median of each figure.
#
# Usage: bench/s3-vs-versitygw.sh [WORKDIR]
# Environment: SECS (default 10), CONC (16), LARGE_COUNT (8), LARGE_CONC
# (1), KEYS (10000), ROUNDS (1), CFS_DIRECT_IO (the gateway's
# blob.local.direct_io, default false), VERSITYGW (its binary; default
# $(go env GOPATH)/bin/versitygw, installed at v1.8.0 when missing), KEEP=1
# keeps WORKDIR (default: a new directory under ${TMPDIR:-/tmp}, removed at
# exit). Needs go, curl and python3 (to find free ports).
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${SECS:-10}
conc=${CONC:-16}
large_count=${LARGE_COUNT:-8}
large_conc=${LARGE_CONC:-1}
keys=${KEYS:-10000}
rounds=${ROUNDS:-1}
versitygw_version=v1.8.0
work=${1:-$(mktemp -d "${TMPDIR:-/tmp}/s3-vs-versitygw.XXXXXX")}
mkdir -p "$work"
results=$work/results.txt
errors=$work/errors.txt
: >"$results"
: >"$errors"

pids=()
stop_all() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	pids=()
}
cleanup() {
	stop_all
	if [[ ${KEEP:-0} == 1 ]]; then
		echo "# kept $work" >&2
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# wait_listening PID URL: until the server answers HTTP at URL; fails if it
# exits or does not answer within 30 s.
wait_listening() {
	for _ in $(seq 300); do
		kill -0 "$1" 2>/dev/null || { echo "server (pid $1) exited before answering at $2" >&2; return 1; }
		[[ $(curl -s -o /dev/null -w '%{http_code}' "$2" || true) != 000 ]] && return 0
		sleep 0.1
	done
	echo "server (pid $1) did not answer at $2 within 30 s" >&2
	return 1
}

vgw=${VERSITYGW:-$(go env GOPATH)/bin/versitygw}
if [[ ! -x $vgw ]]; then
	echo "# installing versitygw $versitygw_version" >&2
	GOBIN=$(dirname "$vgw") go install "github.com/versity/versitygw/cmd/versitygw@$versitygw_version"
fi
go build -o "$work/cfs-gateway" ./cmd/cfs-gateway
go build -o "$work/s3load" ./bench/s3load

echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), $(go version | cut -d' ' -f3), data on $(df -T "$work" | awk 'NR == 2 {print $2}') ($work)"
echo "# versitygw $(go version -m "$vgw" | awk '$1 == "mod" {print $3}') posix --keep-alive; $("$work/cfs-gateway" version 2>&1 | head -1)"
echo "# s3load: 64 MiB x $large_count at $large_conc in flight; 4 KiB for ${secs}s at $conc in flight; list of $keys keys; $rounds round(s)"

# measure NAME ROUND ENDPOINT ACCESS SECRET: every workload against one
# server. A failed workload is reported and the others still run.
measure() {
	local name=$1 round=$2
	local load=("$work/s3load" -server "$name" -endpoint "$3" -access "$4" -secret "$5"
		-concurrency "$conc" -large-concurrency "$large_conc" -large-count "$large_count"
		-duration "${secs}s" -keys "$keys")
	"${load[@]}" -op create-bucket -bucket bench
	"${load[@]}" -op create-bucket -bucket bench-list
	local op bucket
	for op in put-large get-large put-small get-small list; do
		bucket=bench
		[[ $op == list ]] && bucket=bench-list
		if ! "${load[@]}" -op "$op" -bucket "$bucket" 2> >(sed "s/^/$name $op (round $round): /" | tee -a "$errors" >&2) |
			sed "s/\$/ round=$round/" | tee -a "$results"; then
			echo "$name $op (round $round): FAILED" | tee -a "$errors" >&2
		fi
	done
}

# versitygw, posix backend, root account only.
run_versitygw() {
	local round=$1 port access=vgwbenchroot secret
	port=$(free_port)
	secret=$(head -c 18 /dev/urandom | base64 | tr '+/' 'xy')
	rm -rf "$work/versitygw-root"
	mkdir -p "$work/versitygw-root"
	sync
	ROOT_ACCESS_KEY_ID=$access ROOT_SECRET_ACCESS_KEY=$secret \
		"$vgw" --port "127.0.0.1:$port" --quiet --keep-alive posix "$work/versitygw-root" >>"$work/versitygw.log" 2>&1 &
	pids+=($!)
	wait_listening "${pids[0]}" "http://127.0.0.1:$port/"
	measure versitygw "$round" "http://127.0.0.1:$port" "$access" "$secret"
	stop_all
	rm -rf "$work/versitygw-root"
}

# The gateway: embedded engines (Pebble metadata, local blocks) under its
# data directory, S3 and the admin API on loopback, the other protocols
# off. User quotas are lifted: the default of 12,000 inodes per user would
# stop the 4 KiB PUT run, and versitygw has no quotas.
run_cfs() {
	local round=$1 port admin access secret
	port=$(free_port)
	admin=$(free_port)
	rm -rf "$work/cfs-data"
	cat >"$work/gateway.yaml" <<-EOF
		data_dir: $work/cfs-data
		admin:
		  listen: 127.0.0.1:$admin
		nfs: {enabled: false}
		nfs4: {enabled: false}
		smb: {enabled: false}
		s3:
		  listen: 127.0.0.1:$port
		quota:
		  user_defaults: {bytes_soft: 0, bytes_hard: 0, inodes_soft: 0, inodes_hard: 0}
		blob:
		  local: {direct_io: ${CFS_DIRECT_IO:-false}}
	EOF
	local problems
	problems=$("$work/cfs-gateway" validate-config --config "$work/gateway.yaml" 2>&1) || {
		echo "$problems" >&2
		return 1
	}
	read -r access secret < <(
		"$work/cfs-gateway" user add s3bench --uid 1000 --gid 1000 --config "$work/gateway.yaml" 2>>"$work/gateway.log" |
			awk '/S3 access key/ {a=$4} /S3 secret key/ {s=$4} END {print a, s}'
	)
	[[ -n $access && -n $secret ]] || { echo "cfs-gateway user add printed no S3 key; see $work/gateway.log" >&2; return 1; }
	sync
	"$work/cfs-gateway" serve --config "$work/gateway.yaml" >>"$work/gateway.log" 2>&1 &
	pids+=($!)
	wait_listening "${pids[0]}" "http://127.0.0.1:$admin/health"
	wait_listening "${pids[0]}" "http://127.0.0.1:$port/"
	measure cfs "$round" "http://127.0.0.1:$port" "$access" "$secret"
	stop_all
	rm -rf "$work/cfs-data"
}

for ((round = 1; round <= rounds; round++)); do
	if ((round % 2)); then
		run_versitygw "$round"
		run_cfs "$round"
	else
		run_cfs "$round"
		run_versitygw "$round"
	fi
done

echo "# done, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo
# The table: for each figure, both servers (the median over the rounds),
# how many times better the gateway is (above 1: ahead; for latencies and
# the walk, lower is better), and the issue's goal.
awk -v rounds="$rounds" '
function field(line, key,    n, i, kv) {
	n = split(line, kv, " ")
	for (i = 1; i <= n; i++) if (index(kv[i], key "=") == 1) return substr(kv[i], length(key) + 2)
	return ""
}
function median(list,    n, i, j, x, a) {
	if (list == "") return ""
	n = split(substr(list, 2), a, " ")
	for (i = 2; i <= n; i++) {
		x = a[i] + 0
		for (j = i - 1; j >= 1 && a[j] + 0 > x; j--) a[j + 1] = a[j]
		a[j + 1] = x
	}
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
{
	s = field($0, "server"); o = field($0, "op")
	if (o == "list" && field($0, "ok") != "true") next
	split("MiBps ops_s p50_ms p99_ms ms wait_ms", names, " ")
	for (k in names) {
		x = field($0, names[k])
		if (x != "") v[s, o, names[k]] = v[s, o, names[k]] " " x
	}
}
function row(label, o, f, fmt, higher, goal,    a, b, r, met, g) {
	a = median(v["versitygw", o, f]); b = median(v["cfs", o, f])
	r = "-"; met = "-"
	if (a != "" && b != "" && a + 0 > 0 && b + 0 > 0) {
		r = higher ? b / a : a / b
		if (goal == "ahead") met = r > 1 ? "met" : "MISSED"
		else if (goal == "2x") met = r >= 2 ? "met" : "MISSED"
		else if (goal == "150") met = (r > 1 && b < 150) ? "met" : "MISSED"
		r = sprintf("%.2fx", r)
	} else if (goal != "") met = "no figure"
	a = a == "" ? "FAILED" : sprintf(fmt, a)
	b = b == "" ? "FAILED" : sprintf(fmt, b)
	g = goal == "150" ? "ahead, < 150 ms" : (goal == "2x" ? "ahead, >= 2x" : goal)
	printf "| %-38s | %10s | %10s | %8s | %-16s | %-9s |\n", label, a, b, r, g, met
}
END {
	if (rounds > 1) print "median of " rounds " rounds"
	printf "| %-38s | %10s | %10s | %8s | %-16s | %-9s |\n", "figure", "versitygw", "cfs", "cfs vs", "goal", ""
	printf "|%s|%s|%s|%s|%s|%s|\n", "----------------------------------------", "------------", "------------", "----------", "------------------", "-----------"
	row("64 MiB PUT, MiB/s", "put-large", "MiBps", "%.1f", 1, "ahead")
	row("64 MiB GET, MiB/s", "get-large", "MiBps", "%.1f", 1, "ahead")
	row("4 KiB PUT, ops/s", "put-small", "ops_s", "%.0f", 1, "2x")
	row("4 KiB PUT p50, ms", "put-small", "p50_ms", "%.2f", 0, "ahead")
	row("4 KiB PUT p99, ms", "put-small", "p99_ms", "%.2f", 0, "ahead")
	row("4 KiB GET, ops/s", "get-small", "ops_s", "%.0f", 1, "ahead")
	row("4 KiB GET p50, ms", "get-small", "p50_ms", "%.2f", 0, "ahead")
	row("4 KiB GET p99, ms", "get-small", "p99_ms", "%.2f", 0, "ahead")
	row("ListObjectsV2 walk, ms", "list", "ms", "%.1f", 0, "150")
	row("(walk: waiting for responses, ms)", "list", "wait_ms", "%.1f", 0, "")
	row("(list fill: 4 KiB PUT, ops/s)", "list-fill", "ops_s", "%.0f", 1, "")
}' "$results"

if [[ -s $errors ]]; then
	echo
	echo "# errors:"
	cat "$errors"
fi
for log in "$work/versitygw.log" "$work/gateway.log"; do
	if grep -qiE 'level=(warn|error)|error|panic|fatal' "$log"; then
		echo
		echo "# warnings and errors in $(basename "$log"):"
		grep -iE 'level=(warn|error)|error|panic|fatal' "$log" | head -20
	fi
done
[[ ! -s $errors ]]
