#!/usr/bin/env bash
# Measures how a scale-out deployment grows from one gateway to two: file
# creates/s and stable 4 KiB writes/s over NFSv3, driven by the project's
# own load client (bench/nfsload), with the same number of calls in flight
# in both cases. The stack is a 3-member etcd cluster (metadata), versitygw
# with its posix backend (blocks) and cfs-gateway processes, all on
# loopback.
#
# CLIENTS nfsload processes run at once with QD calls in flight each. With
# one gateway they all use it; with two, half use each. Every client works
# in a directory (and, for writes, a file) of its own. nfsload's write
# workload stops after a call count, not a time: a short run of the same
# clients measures their rate, and the timed run is sized from it to last
# about SECS seconds.
#
# Needs etcd (apt-get install -y etcd-server), versitygw (go install
# github.com/versity/versitygw/cmd/versitygw@v1.8.0), curl and Go. No root.
#
# Usage: bench/scaleout.sh [WORKDIR]
# Environment: SECS (seconds per timed run, default 10), CLIENTS (even,
# default 2), QD (calls in flight per client, default 8).
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${SECS:-10}
clients=${CLIENTS:-2}
qd=${QD:-8}
if ((clients < 2 || clients % 2)); then
	echo "CLIENTS must be even and at least 2, so that two gateways get the same load" >&2
	exit 1
fi

find_bin() {
	local p
	if p=$(command -v "$1"); then
		echo "$p"
		return
	fi
	p="$(go env GOPATH | cut -d: -f1)/bin/$1"
	if [[ -x $p ]]; then
		echo "$p"
		return
	fi
	echo "$1 not found: $2" >&2
	exit 1
}
etcd_bin=$(find_bin etcd "apt-get install -y etcd-server")
vgw_bin=$(find_bin versitygw "go install github.com/versity/versitygw/cmd/versitygw@v1.8.0")
command -v curl >/dev/null || { echo "curl not found: apt-get install -y curl" >&2; exit 1; }

if [[ -n ${1:-} ]]; then
	work=$1
	mkdir -p "$work"
	own_work=0
else
	work=$(mktemp -d "${TMPDIR:-/tmp}/scaleout-bench.XXXXXX")
	own_work=1
fi
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	if ((own_work)); then rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# free_port prints a loopback TCP port that nothing listens on and that
# this script has not handed out yet.
taken=" "
free_port() {
	local p
	for _ in $(seq 200); do
		p=$((20000 + RANDOM % 40000))
		[[ $taken == *" $p "* ]] && continue
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			taken+="$p "
			echo "$p"
			return
		fi
	done
	echo "no free loopback port found" >&2
	exit 1
}

go build -o "$work/cfs-gateway" ./cmd/cfs-gateway
go build -o "$work/nfsload" ./bench/nfsload
load=$work/nfsload
echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), $(go version | cut -d' ' -f3)," \
	"$("$etcd_bin" --version | head -1), versitygw $("$vgw_bin" --version 2>/dev/null | head -1 | awk '{print $NF}')"

# etcd: 3 members.
token=scaleout-$$-$RANDOM
initial=()
declare -a client_urls peer_urls
for i in 1 2 3; do
	client_urls[i]=http://127.0.0.1:$(free_port)
	peer_urls[i]=http://127.0.0.1:$(free_port)
	initial+=("m$i=${peer_urls[i]}")
done
endpoints=()
for i in 1 2 3; do
	"$etcd_bin" --name "m$i" --data-dir "$work/etcd-m$i" \
		--listen-client-urls "${client_urls[i]}" --advertise-client-urls "${client_urls[i]}" \
		--listen-peer-urls "${peer_urls[i]}" --initial-advertise-peer-urls "${peer_urls[i]}" \
		--initial-cluster "$(IFS=,; echo "${initial[*]}")" --initial-cluster-state new \
		--initial-cluster-token "$token" --logger zap --log-level warn >"$work/etcd-m$i.log" 2>&1 &
	pids+=($!)
	endpoints+=("\"${client_urls[i]#http://}\"")
done
for i in 1 2 3; do
	for n in $(seq 300); do
		curl -fsS "${client_urls[i]}/health" 2>/dev/null | grep -q '"health":"true"' && break
		((n < 300)) || { echo "etcd member m$i not healthy after 60 s; see $work/etcd-m$i.log" >&2; exit 1; }
		sleep 0.2
	done
done

# versitygw and the bucket of the blocks.
s3_addr=127.0.0.1:$(free_port)
access=scaleoutbench
secret=secret-$RANDOM$RANDOM$RANDOM
mkdir -p "$work/versitygw"
"$vgw_bin" --port "$s3_addr" --access "$access" --secret "$secret" --region us-east-1 --quiet posix "$work/versitygw" >"$work/versitygw.log" 2>&1 &
pids+=($!)
empty_sha=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
for n in $(seq 300); do
	code=$(curl -sS -o /dev/null -w '%{http_code}' --aws-sigv4 aws:amz:us-east-1:s3 --user "$access:$secret" \
		-H "x-amz-content-sha256: $empty_sha" -X PUT "http://$s3_addr/blocks" 2>/dev/null || true)
	[[ $code == 200 ]] && break
	((n < 300)) || { echo "versitygw did not create the bucket within 60 s (last answer $code); see $work/versitygw.log" >&2; exit 1; }
	sleep 0.2
done

# start_gateway N starts gateway N and sets nfs_addr[N] to its NFS address.
declare -a nfs_addr
start_gateway() {
	local n=$1 dir=$work/gw$1
	mkdir -p "$dir"
	cat >"$dir/gateway.yaml" <<EOF
data_dir: $dir/data
log: {level: warn}
metadata:
  engine: etcd
  etcd:
    endpoints: [$(IFS=,; echo "${endpoints[*]}")]
    prefix: /cfs/bench/
blob:
  engine: s3
  s3:
    endpoint: "$s3_addr"
    bucket: blocks
    prefix: bench/
    region: us-east-1
    access_key: "$access"
    secret_key: "$secret"
admin: {enabled: true, listen: "127.0.0.1:0"}
nfs:
  listen: "127.0.0.1:0"
  mount_listen: "127.0.0.1:0"
  nlm_listen: "127.0.0.1:0"
  exports:
    - {name: /export, path: /, root_squash: false}
nfs4: {enabled: false}
smb: {enabled: false}
s3: {enabled: false}
EOF
	"$work/cfs-gateway" serve --config "$dir/gateway.yaml" >"$dir/gateway.log" 2>&1 &
	local pid=$!
	pids+=("$pid")
	for i in $(seq 300); do
		nfs_addr[n]=$(sed -n 's/.*listening on \([^ ]*\) *(nfs\.listen).*/\1/p' "$dir/gateway.log")
		[[ -n ${nfs_addr[n]} ]] && return
		kill -0 "$pid" 2>/dev/null || { echo "gateway $n exited:" >&2; cat "$dir/gateway.log" >&2; exit 1; }
		((i < 300)) || { echo "gateway $n did not serve within 60 s; see $dir/gateway.log" >&2; exit 1; }
		sleep 0.2
	done
}

# run_clients GATEWAYS TAG ARGS... runs CLIENTS nfsload processes at once,
# client i on gateway i % GATEWAYS + 1 in directory TAG-c<i>, and prints
# each one's result line.
run_clients() {
	local gws=$1 tag=$2
	shift 2
	local i cpids=()
	for ((i = 0; i < clients; i++)); do
		"$load" run -addr "${nfs_addr[i % gws + 1]}" -export /export -qd "$qd" -dir "$tag-c$i" "$@" >"$work/$tag-c$i.out" 2>&1 &
		cpids+=($!)
	done
	local failed=0
	for ((i = 0; i < clients; i++)); do
		wait "${cpids[i]}" || failed=1
	done
	for ((i = 0; i < clients; i++)); do
		if ((failed)); then cat "$work/$tag-c$i.out" >&2; fi
		cat "$work/$tag-c$i.out"
	done >"$work/$tag.out"
	((!failed)) || { echo "an nfsload client failed in run $tag" >&2; exit 1; }
	cat "$work/$tag.out"
}

# figure NAME GATEWAYS TAG ARGS... runs the clients and prints one line:
# the calls of all clients over the longest client's time.
figure() {
	local name=$1 gws=$2 tag=$3
	shift 3
	local out
	out=$(run_clients "$gws" "$tag" "$@")
	echo "$out" | awk -v name="$name" -v gws="$gws" -v n="$clients" -v qd="$qd" -v cmd="nfsload run -addr GATEWAY -export /export -qd $qd -dir $tag-cI $*" '
		{ for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } calls += v["calls"]; t = v["time"] + 0; if (t > max) max = t }
		END { printf "%-13s %d gateway%s: %8.0f  (%d calls in %.2fs; %d clients x qd %d = %d in flight, split evenly; each: %s)\n",
			name, gws, (gws > 1 ? "s" : " "), calls / max, calls, max, n, qd, n * qd, cmd }'
}

# write_figure GATEWAYS TAG: 4 KiB FILE_SYNC writes, sized to last SECS.
write_figure() {
	local gws=$1 tag=$2 cal ops
	cal=$(run_clients "$gws" "$tag-cal" -workload write -bs 4k -stable file_sync -ops $((qd * 25)))
	ops=$(echo "$cal" | awk -v s="$secs" '{ for (i = 1; i <= NF; i++) if ($i ~ /^ops\/s=/) { split($i, kv, "="); r += kv[2] } } END { printf "%d", r / NR * s }')
	figure "4k-writes/s" "$gws" "$tag" -workload write -bs 4k -stable file_sync -ops "$ops"
}

start_gateway 1
figure "creates/s" 1 g1-create -workload create -duration "${secs}s"
write_figure 1 g1-write
start_gateway 2
figure "creates/s" 2 g2-create -workload create -duration "${secs}s"
write_figure 2 g2-write
