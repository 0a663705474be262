#!/bin/sh
# The cluster test (issue 14 item 7): PostgreSQL, two qcare replicas and
# nginx on loopback, 16 clients for $QC_CLUSTER_SECONDS (default 60), a
# replica killed and restarted, another drained; see tests/cluster.py.
#   sh tests/cluster.sh [BUILD]       (tests/run.sh: release build, once)
#   sh tests/cluster.sh BUILD --bench N   the README's benchmark, N replicas
# Needs nginx, python3 and PostgreSQL's server programs (scripts/deps.sh
# test); prints `cluster: N passed, N failed, N skipped`.
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
BUILD=$(cd "${1:-build}" 2>/dev/null && pwd) || {
    echo "cluster: no build folder '${1:-build}'" >&2; echo "cluster: 0 passed, 1 failed, 0 skipped"; exit 1; }
[ $# -gt 0 ] && shift
bench=""
[ "${1:-}" = --bench ] && bench="--bench ${2:-1}"
cd "$root" || exit 1
py=python3
[ -x /usr/bin/python3 ] && py=/usr/bin/python3
missing=""
command -v nginx >/dev/null 2>&1 || missing="nginx"
command -v "$py" >/dev/null 2>&1 || missing="$missing python3"
why=$(sh tests/pg.sh check) || missing="$missing PostgreSQL ($why)"
if [ -n "$missing" ]; then
    echo "SKIP: the cluster test needs $missing (scripts/deps.sh test installs them)"
    echo "cluster: 0 passed, 0 failed, 1 skipped"; exit 0
fi
model="$BUILD/models/tiny-qwen2"
if [ ! -f "$model/model.safetensors" ]; then
    "$BUILD/qcare" mkmodel --preset tiny-qwen2 --out "$model" --tokenizer "${QC_FIXTURES:-../shared/fixtures}/tokenizer" \
        >/dev/null || { echo "cluster: cannot make the test model (set QC_FIXTURES)"; echo "cluster: 0 passed, 1 failed, 0 skipped"; exit 1; }
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/qcare-cluster.XXXXXX") || { echo "cluster: 0 passed, 1 failed, 0 skipped"; exit 1; }
chmod 755 "$work"
trap 'rm -rf "$work"' EXIT
runas=""
[ "$(id -u)" = 0 ] && runas="setpriv --reuid=nobody --regid=nogroup --clear-groups"
# shellcheck disable=SC2086 # bench and runas are split on purpose
"$py" tests/cluster.py "$root" "$BUILD" "$work" $bench $runas
rc=$?
[ $rc = 0 ] || for f in "$work"/*.log "$work"/lb/error.log; do [ -f "$f" ] && { echo "== $f"; tail -n 15 "$f"; }; done
exit $rc
