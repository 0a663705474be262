#!/bin/sh
# Runs every test of one build folder ($1, default build): generates the
# fixture models with `qcare mkmodel`, runs each tests/test_* program and the
# CLI tests, and prints the closing line `N passed, N failed, N skipped`
# (with the reason of every skip above it).
BUILD=${1:-build}
export QC_BUILD="$BUILD"
export QC_FIXTURES="${QC_FIXTURES:-../shared/fixtures}"
if [ ! -d "$QC_FIXTURES" ]; then
    echo "tests: fixtures not found at $QC_FIXTURES (set QC_FIXTURES)" >&2
    exit 1
fi
export QC_MODELS="$BUILD/models"
mkdir -p "$QC_MODELS"
for preset in tiny-qwen2 tiny-qwen3; do
    if [ ! -f "$QC_MODELS/$preset/model.safetensors" ] || [ "$BUILD/qcare" -nt "$QC_MODELS/$preset/model.safetensors" ]; then
        "$BUILD/qcare" mkmodel --preset "$preset" --out "$QC_MODELS/$preset" \
            --tokenizer "$QC_FIXTURES/tokenizer" >/dev/null || { echo "tests: mkmodel $preset failed" >&2; exit 1; }
    fi
done

# The long parts (test_recserve's crash test) run in the release build
# only; the sanitizer build is several times slower.
case "$BUILD" in
    *debug*) ;;
    *) export QC_LONG_TESTS="${QC_LONG_TESTS-1}" ;;
esac

passed=0; failed=0; skipped=0
log="$BUILD/tests/log"; mkdir -p "$log"

# run_one NAME COMMAND...: runs one test program, adds its counts (a crash or
# a non-zero exit without a count is one failure) and reports it.
run_one() {
    name=$1; shift
    t0=$(date +%s)
    "$@" > "$log/$name.out" 2>&1
    rc=$?
    secs=$(( $(date +%s) - t0 ))
    line=$(grep -E '^[^ ]+: [0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' "$log/$name.out" | tail -n 1)
    p=$(echo "$line" | sed -nE 's/.*: ([0-9]+) passed.*/\1/p'); f=$(echo "$line" | sed -nE 's/.* ([0-9]+) failed.*/\1/p')
    s=$(echo "$line" | sed -nE 's/.* ([0-9]+) skipped$/\1/p')
    [ -n "$p" ] || p=0
    [ -n "$f" ] || f=0
    [ -n "$s" ] || s=0
    # a crash, a non-zero exit or a missing closing line is a failure
    if { [ $rc -ne 0 ] || [ -z "$line" ]; } && [ "$f" = 0 ]; then f=1; fi
    passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
    if [ $rc -eq 0 ] && [ -n "$line" ]; then
        if [ "$s" -gt 0 ]; then echo "ok   $name ($p passed, $s skipped; ${secs} s)"; else echo "ok   $name ($p passed; ${secs} s)"; fi
        grep -E '^SKIP' "$log/$name.out" | sed 's/^/       /'
    else echo "FAIL $name (rc $rc; ${secs} s)"; tail -n 20 "$log/$name.out"; fi
}

# test_ops (the drain, the watchdog: servers with a slowed scheduler) runs
# in the release pass only: 3 minutes in the sanitizer build.
for t in "$BUILD"/tests/test_*; do
    if [ "$BUILD" = build-debug ] && [ "$(basename "$t")" = test_ops ]; then
        echo "skip test_ops (release pass only)"; skipped=$((skipped + 1)); continue
    fi
    [ -x "$t" ] && run_one "$(basename "$t")" "$t"
done
# The portable scalar kernels against the same goldens (every SIMD kernel is
# also compared with them in test_kernels, which the sanitizer pass runs at
# every level). In the release pass only: 2.7 minutes in the sanitizer build.
for t in test_golden test_quant test_batch; do
    if [ "$BUILD" = build-debug ]; then
        echo "skip $t[QCARE_CPU=scalar] (release pass only)"; skipped=$((skipped + 1)); continue
    fi
    [ -x "$BUILD/tests/$t" ] && run_one "$t[QCARE_CPU=scalar]" env QCARE_CPU=scalar "$BUILD/tests/$t"
done
# The safety rules and lexicon on the blind sets' tune and holdout halves,
# counts only (no holdout message is ever printed), against the thresholds
# in the script. A measurement: in the release pass only (test_safety reads
# the same code in both).
if [ "$BUILD" = build-debug ]; then echo "skip safety-blind (release pass only)"; skipped=$((skipped + 1))
else run_one safety-blind sh tests/safety_blind.sh "$BUILD"; fi
# The safety net's second reader: its trainer, and the weights in the
# repository against what their recorded command gives.
run_one safety-lex sh tests/safety_lex.sh "$BUILD"
# The README's engine example, built against libqcare.a alone.
run_one example sh tests/example.sh "$BUILD"
# The fuzz targets (tests/fuzz/, built with clang into $BUILD-fuzz/): every
# regression input replayed, then a few seconds of fuzzing each. Only in the
# release pass: the targets carry their own sanitizers.
[ "$BUILD" = build-debug ] || run_one fuzz sh tests/fuzz/run.sh "$BUILD-fuzz" "${QC_FUZZ_SECONDS:-5}"
# deploy/: the nginx configuration (also in front of this build's server),
# the systemd unit and the Kubernetes manifests. Once, in the release pass.
[ "$BUILD" = build-debug ] || run_one deploy sh tests/deploy.sh "$BUILD"
# The cluster (issue 14): PostgreSQL, two replicas and nginx, 16 clients for
# $QC_CLUSTER_SECONDS (default 60), a replica killed, one drained. Once, in
# the release pass.
[ "$BUILD" = build-debug ] || run_one cluster sh tests/cluster.sh "$BUILD"
# The chat page in a real browser (Chromium driven by playwright-core),
# against this build's server.
run_one browser sh tests/browser/run.sh "$BUILD"
echo "$BUILD: $passed passed, $failed failed, $skipped skipped"
echo "$passed $failed $skipped" > "$BUILD/tests/summary"
[ "$failed" -eq 0 ]
