#!/usr/bin/env bash
# Runs the functional subset of the public ceph/s3-tests suite against a
# gateway started here on loopback, as docs/s3.md reports it. The suite
# itself is not part of this repository: point S3TESTS_DIR at a checkout.
# Its Python packages come from Debian (see the testing guide) and run with
# /usr/bin/python3.
#
#   S3TESTS_DIR=/path/to/s3-tests bench/s3-tests.sh [extra pytest args]
#
# Output: the pytest log and a summary line in $OUT (default ./s3-tests-out).
set -euo pipefail
cd "$(dirname "$0")/.."
: "${S3TESTS_DIR:?set S3TESTS_DIR to a checkout of ceph/s3-tests}"
out="${OUT:-$PWD/s3-tests-out}"
mkdir -p "$out"
work="$(mktemp -d)"
gw_pid=""
cleanup() {
	[ -n "$gw_pid" ] && kill "$gw_pid" 2>/dev/null && wait "$gw_pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
admin_port="$(free_port)"
s3_port="$(free_port)"
go build -o "$work/cfs-gateway" ./cmd/cfs-gateway
cat > "$work/gateway.yaml" <<CONF
data_dir: $work/data
admin:
  listen: 127.0.0.1:$admin_port
nfs: {enabled: false}
nfs4: {enabled: false}
smb: {enabled: false}
s3:
  listen: 127.0.0.1:$s3_port
CONF
"$work/cfs-gateway" serve --config "$work/gateway.yaml" > "$out/gateway.log" 2>&1 &
gw_pid=$!
for _ in $(seq 100); do
	curl -sf "http://127.0.0.1:$admin_port/health" > /dev/null && break
	sleep 0.1
done

# Three users: the suite's main, alt and tenant identities.
add_user() { # name uid -> "access secret"
	"$work/cfs-gateway" user add "$1" --uid "$2" --gid "$2" --config "$work/gateway.yaml" 2>/dev/null |
		awk '/S3 access key/ {a=$4} /S3 secret key/ {s=$4} END {print a, s}'
}
read -r main_key main_secret < <(add_user s3main 1000)
read -r alt_key alt_secret < <(add_user s3alt 1001)
read -r tenant_key tenant_secret < <(add_user s3tenant 1002)

cat > "$work/s3tests.conf" <<CONF
[DEFAULT]
host = 127.0.0.1
port = $s3_port
is_secure = False
ssl_verify = False

[fixtures]
bucket prefix = cfs-{random}-

[s3 main]
display_name = s3main
user_id = s3main
email = main@example.com
access_key = $main_key
secret_key = $main_secret

[s3 alt]
display_name = s3alt
user_id = s3alt
email = alt@example.com
access_key = $alt_key
secret_key = $alt_secret

[s3 tenant]
display_name = s3tenant
user_id = s3tenant
email = tenant@example.com
access_key = $tenant_key
secret_key = $tenant_secret
tenant = tenant

[iam]
email = iam@example.com
user_id = iam
access_key = $main_key
secret_key = $main_secret
display_name = iam

[iam root]
access_key = $main_key
secret_key = $main_secret
user_id = iamroot
email = root@example.com

[iam alt root]
access_key = $alt_key
secret_key = $alt_secret
user_id = iamaltroot
email = altroot@example.com
CONF

marks='not fails_on_aws and not bucket_logging and not bucket_logging_cleanup and not fails_without_logging_rollover and not lifecycle and not lifecycle_expiration and not lifecycle_transition and not cloud_transition and not cloud_restore and not sse_s3 and not encryption and not bucket_encryption and not s3select and not iam_account and not iam_user and not iam_role and not iam_tenant and not iam_cross_account and not user_policy and not role_policy and not session_policy and not group_policy and not sns and not test_of_sts and not webidentity_test and not appendobject and not storage_class and not abac_test'
(
	cd "$S3TESTS_DIR"
	S3TEST_CONF="$work/s3tests.conf" /usr/bin/python3 -m pytest -q -p no:cacheprovider \
		s3tests/functional/test_s3.py s3tests/functional/test_headers.py \
		-m "$marks" -rf "$@" > "$out/pytest.log" 2>&1 || true
)
grep -E '^FAILED' "$out/pytest.log" | sed 's/^FAILED //; s/ - .*//' | sort > "$out/failed.txt" || true
tail -1 "$out/pytest.log"
echo "failed tests listed in $out/failed.txt; compare with bench/s3-tests-known-failures.txt"
