#!/usr/bin/env bash
# Measures the gateway's NFSv3 server and NFS-Ganesha (VFS backend) side by
# side with the project's own load client (bench/nfsload), on the same disk,
# with the same workloads, one server at a time.
#
# Ganesha binds every address whatever its configuration says, and needs
# rpcbind: both run in a private network namespace with a private /run, so
# that nothing of the host is touched. Needs root and the Debian packages
# nfs-ganesha, nfs-ganesha-vfs, rpcbind and iproute2.
#
# Usage: bench/nfs-vs-ganesha.sh [WORKDIR]
# Environment: SIZE (sequential file size, default 1g), SECS (seconds per
# timed workload, default 10), QD (queue depth of the sequential runs, 8).
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ ${1:-} == --inside ]]; then
	inside=1
	work=$2
else
	inside=0
	work=${1:-$(mktemp -d "${TMPDIR:-/tmp}/nfs-vs-ganesha.XXXXXX")}
fi
size=${SIZE:-1g}
secs=${SECS:-10}
qd=${QD:-8}

if ((!inside)); then
	for tool in ganesha.nfsd rpcbind ip unshare; do
		command -v "$tool" >/dev/null || {
			echo "$tool not found: apt-get install -y nfs-ganesha nfs-ganesha-vfs rpcbind iproute2" >&2
			exit 1
		}
	done
	[[ $(id -u) == 0 ]] || { echo "run as root: the servers run in a private network namespace" >&2; exit 1; }
	mkdir -p "$work"
	go build -o "$work/nfsload" ./bench/nfsload
	echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), $(go version | cut -d' ' -f3)"
	exec unshare --net --mount --propagation private "$0" --inside "$work"
fi

# Inside the namespace from here on.
mount -t tmpfs tmpfs /run
mkdir -p /run/rpcbind /run/ganesha
ip link set lo up
ip addr add 127.0.0.2/8 dev lo
load=$work/nfsload
pids=()
stop_all() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	pids=()
}
trap stop_all EXIT

wait_ready() {
	for _ in $(seq 150); do
		if "$load" run -addr 127.0.0.1:2049 -mount 127.0.0.1:20048 -workload getattr -ops 1 -dir ready >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.2
	done
	echo "server did not answer on 127.0.0.1:2049" >&2
	return 1
}

measure() {
	local name=$1
	local run=("$load" run -addr 127.0.0.1:2049 -mount 127.0.0.1:20048 -export /export)
	echo "## $name"
	"${run[@]}" -workload write -bs 1m -size "$size" -qd "$qd"
	"${run[@]}" -workload read -bs 1m -qd "$qd"
	"${run[@]}" -workload randread -bs 4k -qd 1 -duration "${secs}s"
	"${run[@]}" -workload getattr -qd 1 -duration "${secs}s"
	"${run[@]}" -workload lookup -qd 1 -duration "${secs}s"
	"${run[@]}" -workload create -qd 1 -duration "${secs}s"
	"${run[@]}" -workload create -qd 8 -duration "${secs}s"
}

# NFS-Ganesha, VFS backend, on a directory of the same disk.
export_dir=$work/ganesha-export
rm -rf "$export_dir" "$work/gateway-data"
mkdir -p "$export_dir"
cat >"$work/ganesha.conf" <<EOF
NFS_CORE_PARAM {
	Bind_addr = 127.0.0.1;
	NFS_Port = 2049;
	MNT_Port = 20048;
	NLM_Port = 32803;
	Enable_RQUOTA = false;
	Enable_UDP = false;
	Protocols = 3, 4;
	mount_path_pseudo = true;
}
NFSV4 { Graceless = true; Minor_Versions = 0, 1, 2; }
EXPORT {
	Export_Id = 1;
	Path = $export_dir;
	Pseudo = /export;
	Access_Type = RW;
	Squash = No_Root_Squash;
	SecType = sys;
	FSAL { Name = VFS; }
}
LOG { Default_Log_Level = WARN; }
EOF
rpcbind -f -w &
pids+=($!)
sleep 0.5
ganesha.nfsd -F -f "$work/ganesha.conf" -L "$work/ganesha.log" -p /run/ganesha/ganesha.pid &
pids+=($!)
wait_ready
measure "NFS-Ganesha $(dpkg-query -W -f '${Version}' nfs-ganesha 2>/dev/null || echo '?') (VFS)"
stop_all

# The gateway, with the configuration defaults (Pebble metadata and local
# blocks under its data directory), on the same disk.
"$load" serve -data "$work/gateway-data" -listen 127.0.0.1:2049 -mount-listen 127.0.0.1:20048 -nlm-listen 127.0.0.1:32803 >"$work/gateway.log" 2>&1 &
pids+=($!)
wait_ready
measure "cfs-gateway"
stop_all
