#!/bin/sh
# Runs the browser test of one build folder ($1, default build): makes sure
# Chromium, Node.js and playwright-core are there (scripts/browser-deps.sh),
# starts `qcare serve` with the tiny fixture model on a free port (its
# records in a fresh file under $BUILD/browser, an admin key for the
# follow-up view), runs chat.test.mjs against it, and stops the server. Screenshots and logs go to
# $BUILD/browser. The last line is always `browser: N passed, N failed, N skipped`; a
# missing dependency is a failure, never a silent skip.
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
BUILD=$(cd "${1:-build}" 2>/dev/null && pwd) || {
    echo "browser: no build folder '${1:-build}'" >&2; echo "browser: 0 passed, 1 failed, 0 skipped"; exit 1; }
cd "$root" || exit 1

fail() {
    echo "browser: $*" >&2
    echo "browser: 0 passed, 1 failed, 0 skipped"
    exit 1
}

sh "$root/scripts/browser-deps.sh" || fail "dependencies missing (see above); then run: sh tests/browser/run.sh ${1:-build}"
[ -x "$BUILD/qcare" ] || fail "$BUILD/qcare not found: run make first"

out="$BUILD/browser"
mkdir -p "$out" || fail "cannot create $out"
model="$BUILD/models/tiny-qwen2"
if [ ! -f "$model/model.safetensors" ]; then
    # tests/run.sh makes it; alone, make it the same way.
    fixtures="${QC_FIXTURES:-../shared/fixtures}"
    "$BUILD/qcare" mkmodel --preset tiny-qwen2 --out "$model" --tokenizer "$fixtures/tokenizer" >/dev/null ||
        fail "cannot make the test model (fixtures at $fixtures? set QC_FIXTURES)"
fi

# A free port from the kernel; the short gap before qcare binds it is harmless here.
port=$(node -e 'const s = require("net").createServer(); s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });') ||
    fail "cannot find a free port"

# The records go to a fresh file of this run; the admin key opens the follow-up view.
admin_key="browser-admin-$$"
rm -f "$out/records.db" "$out/records.db-wal" "$out/records.db-shm"
"$BUILD/qcare" serve --model "$model" --dtype bf16 --threads 2 --port "$port" --quiet \
    --records "$out/records.db" --admin-key "$admin_key" >"$out/server.log" 2>&1 &
pid=$!
stop() {
    if [ -n "$pid" ]; then
        kill -TERM "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        pid=""
    fi
}
trap 'stop' EXIT
trap 'stop; exit 130' INT
trap 'stop; exit 143' TERM

url="http://127.0.0.1:$port"
healthy() {
    if command -v curl >/dev/null 2>&1; then
        curl -fs -o /dev/null --max-time 2 "$url/health"
    else
        node -e 'fetch(process.argv[1] + "/health").then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))' "$url"
    fi
}
i=0
until healthy; do
    kill -0 "$pid" 2>/dev/null || { tail -n 20 "$out/server.log" >&2; pid=""; fail "qcare serve exited before answering /health"; }
    i=$((i + 1))
    [ $i -lt 300 ] || { tail -n 20 "$out/server.log" >&2; fail "qcare serve did not answer /health within 30 s"; }
    sleep 0.1
done

QC_URL="$url" QC_SHOTS="$out" QC_ADMIN_KEY="$admin_key" node "$here/chat.test.mjs" >"$out/test.log" 2>&1
rc=$?
stop
cat "$out/test.log"
if ! tail -n 1 "$out/test.log" | grep -qE '^browser: [0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$'; then
    echo "browser: 0 passed, 1 failed, 0 skipped"
    [ $rc -ne 0 ] || rc=1
fi
exit $rc
