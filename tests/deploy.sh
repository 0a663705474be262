#!/bin/sh
# Checks deploy/ (one build folder, $1, default build):
#   nginx      `nginx -t` on the rendered configuration, run as an
#              unprivileged user from a temporary folder (nobody, via setpriv,
#              when the test runs as root); tests/deploy_nginx.py against
#              scripted upstreams (streams unbuffered, headers passed on,
#              retries only of what was never sent)
#   systemd    `systemd-analyze verify` on the unit, where systemd-analyze is
#              installed (else a counted SKIP), and its hardening lines
#   k8s        every manifest parses (python3-yaml), with the kinds and the
#              probes on /health and /ready, the pool selecting the pods
#   smoke      nginx in front of one real `qcare serve --threads 1` on the
#              tiny fixture model: a streamed /v1/chat/completions arrives as
#              several SSE events ending in [DONE], a request with an
#              X-Session-Id header is answered 200, /ready is 200 and
#              /metrics has the gateway's vllm:* gauges
# Needs nginx and python3-yaml (scripts/deps.sh test installs them as root);
# a missing one is a failure. Ends with `deploy: N passed, N failed, N skipped`.
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
BUILD=$(cd "${1:-build}" 2>/dev/null && pwd) || {
    echo "deploy: no build folder '${1:-build}'" >&2; echo "deploy: 0 passed, 1 failed, 0 skipped"; exit 1; }
cd "$root" || exit 1
pass=0; fail=0; skip=0
check() { if [ "$1" = 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $2"; fi; }
finish() { echo "deploy: $pass passed, $fail failed, $skip skipped"; [ "$fail" = 0 ]; exit $?; }

sh scripts/deps.sh test >&2 || { check 1 "test dependencies missing (see above)"; finish; }
# Debian's python3-yaml belongs to Debian's python3; another python3 first on
# PATH (pyenv, a venv) may lack it.
py=python3
[ -x /usr/bin/python3 ] && py=/usr/bin/python3

work=$(mktemp -d "${TMPDIR:-/tmp}/qcare-deploy.XXXXXX") || { check 1 "cannot make a temporary folder"; finish; }
chmod 755 "$work"
qpid=""; ndir=""
runas=""
[ "$(id -u)" = 0 ] && runas="setpriv --reuid=nobody --regid=nogroup --clear-groups"
stop() {
    [ -n "$ndir" ] && $runas nginx -p "$ndir" -e "$ndir/error.log" -c "$ndir/nginx.conf" -s stop 2>/dev/null
    ndir=""
    if [ -n "$qpid" ]; then kill -TERM "$qpid" 2>/dev/null; wait "$qpid" 2>/dev/null; qpid=""; fi
}
trap 'stop; rm -rf "$work"' EXIT
trap 'stop; exit 130' INT
trap 'stop; exit 143' TERM
free_port() { "$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# render NAME LISTEN REPLICA...: the configuration in $work/NAME, owned by
# the user nginx runs as
render() {
    d="$work/$1"; shift
    sh deploy/nginx/render.sh "$d" "$@" && { [ -z "$runas" ] || chown -R nobody:nogroup "$d"; }
}

# ==== nginx ====
render t 127.0.0.1:18080 127.0.0.1:18081 127.0.0.1:18082
check $? "deploy/nginx/render.sh failed"
out=$($runas nginx -t -p "$work/t" -e "$work/t/error.log" -c "$work/t/nginx.conf" 2>&1)
check $? "nginx -t on the rendered configuration: $out"
n=$(grep -c '^ *server 127\.0\.0\.1:1808[12] max_fails=' "$work/t/qcare.conf")
[ "$n" = 2 ]; check $? "render.sh wrote $n server lines for 2 replicas"
grep -Eq '^[^#]*@(LISTEN|UPSTREAM|PREFIX)@' "$work/t/qcare.conf" "$work/t/nginx.conf"
[ $? = 1 ]; check $? "a placeholder is left in the rendered configuration"
grep -q '^ *proxy_next_upstream [^;]*non_idempotent' deploy/nginx/qcare.conf
[ $? = 1 ]; check $? "proxy_next_upstream must not retry non-idempotent requests"
# (paced events pass nginx 1.22 even with buffering on: read the lines)
for want in 'proxy_buffering off;' 'proxy_cache off;' 'proxy_http_version 1.1;' 'proxy_set_header Connection "";' \
    'hash $qcare_affinity consistent;' '""      $request_id;'; do
    grep -qF "    $want" deploy/nginx/qcare.conf; check $? "deploy/nginx/qcare.conf lacks: $want"
done
"$py" tests/deploy_nginx.py "$root" "$work" $runas > "$work/nginx.out" 2>&1
rc=$?
grep '^FAIL' "$work/nginx.out"
line=$(grep -E '^nginx: [0-9]+ passed, [0-9]+ failed' "$work/nginx.out" | tail -n 1)
p=$(echo "$line" | sed -nE 's/^nginx: ([0-9]+) passed.*/\1/p'); f=$(echo "$line" | sed -nE 's/.* ([0-9]+) failed.*/\1/p')
if [ -n "$p" ] && [ -n "$f" ]; then pass=$((pass + p)); fail=$((fail + f)); fi
{ [ $rc = 0 ] || [ "${f:-0}" != 0 ]; } || { tail -n 20 "$work/nginx.out"; check 1 "tests/deploy_nginx.py exited $rc"; }
[ -n "$line" ] || { tail -n 20 "$work/nginx.out"; check 1 "tests/deploy_nginx.py printed no closing line"; }

# ==== systemd ====
unit=deploy/systemd/qcare.service
for want in DynamicUser=yes ProtectSystem=strict StateDirectory=qcare NoNewPrivileges=yes PrivateTmp=yes \
    ProtectHome=yes KillSignal=SIGTERM 'Environment=QCARE_DATA=%S/qcare'; do
    grep -qx "$want" "$unit"; check $? "$unit lacks $want"
done
grep -q '^RestrictAddressFamilies=' "$unit"; check $? "$unit lacks RestrictAddressFamilies"
grep -q '^MemoryMax=' "$unit"; check $? "$unit lacks MemoryMax"
# above qcare's default --drain-timeout (30 s), or systemd kills a drain
t=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)$/\1/p' "$unit")
[ -n "$t" ] && [ "$t" -gt 30 ]; check $? "TimeoutStopSec ('$t') must be above the 30 s drain timeout"
if command -v systemd-analyze >/dev/null 2>&1; then
    # verify checks that ExecStart's binary exists: point it at this build's
    sed "s|/usr/local/bin/qcare|$BUILD/qcare|" "$unit" > "$work/qcare.service"
    out=$(systemd-analyze verify "$work/qcare.service" 2>&1)
    [ $? = 0 ] && [ -z "$out" ]; check $? "systemd-analyze verify $unit: $out"
else
    skip=$((skip + 1)); echo "SKIP: systemd-analyze verify $unit: systemd-analyze is not installed"
fi

# ==== k8s ====
out=$("$py" - deploy/k8s/*.yaml <<'EOF' 2>&1
import sys, yaml
docs = [d for f in sys.argv[1:] for d in yaml.safe_load_all(open(f)) if d]
kinds = {d["kind"]: d for d in docs}
bad = []
for k in ("Deployment", "InferencePool", "HTTPRoute"):
    if k not in kinds: bad.append(f"no {k}")
dep, pool = kinds.get("Deployment"), kinds.get("InferencePool")
if dep:
    c = dep["spec"]["template"]["spec"]["containers"][0]
    if c.get("livenessProbe", {}).get("httpGet", {}).get("path") != "/health": bad.append("liveness is not on /health")
    if c.get("readinessProbe", {}).get("httpGet", {}).get("path") != "/ready": bad.append("readiness is not on /ready")
    if pool:
        if pool.get("apiVersion") != "inference.networking.k8s.io/v1": bad.append("InferencePool is not v1")
        labels = dep["spec"]["template"]["metadata"]["labels"]
        sel = pool["spec"]["selector"]["matchLabels"]
        if any(labels.get(k) != v for k, v in sel.items()): bad.append("the pool does not select the pods")
        ports = [p["containerPort"] for p in c["ports"]]
        if [p["number"] for p in pool["spec"]["targetPorts"]] != ports[:1]: bad.append("the pool's port is not the pods'")
        if not pool["spec"].get("endpointPickerRef", {}).get("name"): bad.append("no endpointPickerRef")
print("; ".join(bad))
sys.exit(1 if bad else 0)
EOF
)
check $? "deploy/k8s: $out"

# ==== smoke: nginx in front of qcare ====
if [ ! -x "$BUILD/qcare" ]; then
    check 1 "$BUILD/qcare not found: run make first"; finish
fi
model="$BUILD/models/tiny-qwen2"
if [ ! -f "$model/model.safetensors" ]; then
    "$BUILD/qcare" mkmodel --preset tiny-qwen2 --out "$model" --tokenizer "${QC_FIXTURES:-../shared/fixtures}/tokenizer" \
        >/dev/null || { check 1 "cannot make the test model (set QC_FIXTURES)"; finish; }
fi
qport=$(free_port); lport=$(free_port)
"$BUILD/qcare" serve --model "$model" --dtype bf16 --threads 1 --port "$qport" --trusted-proxy 127.0.0.1 --quiet \
    > "$work/qcare.log" 2>&1 &
qpid=$!
i=0
until curl -fs -o /dev/null --max-time 2 "http://127.0.0.1:$qport/health"; do
    kill -0 "$qpid" 2>/dev/null || { cat "$work/qcare.log"; qpid=""; check 1 "qcare serve exited before answering /health"; finish; }
    i=$((i + 1)); [ $i -lt 240 ] || { check 1 "qcare serve did not answer /health in 120 s"; finish; }
    sleep 0.5
done
render smoke "127.0.0.1:$lport" "127.0.0.1:$qport" || { check 1 "render.sh failed"; finish; }
out=$($runas nginx -p "$work/smoke" -e "$work/smoke/error.log" -c "$work/smoke/nginx.conf" 2>&1)
rc=$?
check $rc "nginx did not start: $out"
[ $rc = 0 ] && ndir="$work/smoke"
url="http://127.0.0.1:$lport"
st=$(curl -s -o /dev/null -w '%{http_code}' --max-time 30 "$url/health")
[ "$st" = 200 ]; check $? "GET /health through nginx: $st"
st=$(curl -s -o /dev/null -w '%{http_code}' --max-time 30 "$url/ready")
[ "$st" = 200 ]; check $? "GET /ready through nginx: $st"
curl -s --max-time 30 "$url/metrics" | grep -q '^vllm:num_requests_waiting [0-9]'
check $? "/metrics through nginx has the gateway's vllm:num_requests_waiting"
curl -sN --max-time 120 -D "$work/stream.head" -o "$work/stream.body" -H 'Content-Type: application/json' \
    -d '{"messages": [{"role": "user", "content": "Hello"}], "max_tokens": 12, "stream": true}' \
    "$url/v1/chat/completions"
check $? "streamed /v1/chat/completions through nginx: curl failed"
grep -qi '^content-type: text/event-stream' "$work/stream.head"; check $? "the stream is not text/event-stream: $(head -c 400 "$work/stream.head")"
n=$(grep -c '^data: ' "$work/stream.body")
[ "$n" -ge 3 ]; check $? "the stream has $n SSE events, want several: $(head -c 400 "$work/stream.body")"
tail -n 2 "$work/stream.body" | grep -qx 'data: \[DONE\]'; check $? "the stream does not end with data: [DONE]"
st=$(curl -s -o "$work/session.body" -w '%{http_code}' --max-time 120 -H 'Content-Type: application/json' \
    -H 'X-Session-Id: deploy-smoke-1' -d '{"messages": [{"role": "user", "content": "Hello"}], "max_tokens": 4}' \
    "$url/v1/chat/completions")
[ "$st" = 200 ]; check $? "a request with X-Session-Id through nginx: $st $(head -c 300 "$work/session.body")"
grep -q '"choices"' "$work/session.body"; check $? "the X-Session-Id answer has no choices: $(head -c 300 "$work/session.body")"
stop
finish
