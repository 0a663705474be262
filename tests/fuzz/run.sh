#!/bin/sh
# Builds and runs the libFuzzer targets of tests/fuzz/ (README.md there).
#
#   sh tests/fuzz/run.sh [FUZZ_BUILD [SECONDS [TARGET...]]]
#       builds FUZZ_BUILD/fuzz/fuzz_* (default build-fuzz) with clang, replays
#       every file under tests/fuzz/regressions/TARGET/, then fuzzes each
#       target SECONDS seconds (default 60; 0: replay only) starting from
#       tests/fuzz/corpus/TARGET/. New inputs go to FUZZ_BUILD/fuzz/corpus/
#       TARGET/ (the committed corpus is not touched), crashes to
#       FUZZ_BUILD/fuzz/crashes/TARGET/.
#   sh tests/fuzz/run.sh FUZZ_BUILD merge [TARGET...]
#       minimizes tests/fuzz/corpus/TARGET/ with what the runs found and the
#       seeds of mkseeds.py (FUZZ_BUILD/seeds/TARGET/, when there) (libFuzzer
#       -merge=1: the smallest set of inputs with the same coverage).
#
# Prints one line per target and `fuzz: N passed, N failed, N skipped`. When
# clang cannot build a fuzzer (scripts/deps.sh fuzz installs it), every
# target is a printed SKIP. Runs one fuzzer at a time, niced.
FB=${1:-build-fuzz}
SECS=${2:-60}
[ $# -gt 2 ] && shift 2 || set --
here=tests/fuzz
[ -d "$here" ] || { echo "fuzz: run from the repository root" >&2; exit 2; }
export QC_FIXTURES="${QC_FIXTURES:-../shared/fixtures}"
# stack traces for UBSan reports; leaks are errors (ASan's default)
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
targets=$*
[ -n "$targets" ] || targets=$(ls $here/fuzz_*.c | sed 's|.*/||; s|\.c$||')
passed=0; failed=0; skipped=0
mkdir -p "$FB/fuzz"

# Per-target limits: -max_len (bytes of one input), -rss_limit_mb (also the
# largest single allocation: a loader must not allocate far beyond its
# input), -timeout (seconds for one input; a loaded machine with ASan).
opts() {
    case $1 in
    fuzz_gguf) echo "-max_len=262144 -rss_limit_mb=1024 -malloc_limit_mb=256 -timeout=20 -dict=$here/dict/gguf.dict" ;;
    fuzz_safetensors) echo "-max_len=65536 -rss_limit_mb=512 -malloc_limit_mb=128 -timeout=10 -dict=$here/dict/json.dict" ;;
    fuzz_config) echo "-max_len=16384 -rss_limit_mb=512 -malloc_limit_mb=64 -timeout=10 -dict=$here/dict/json.dict" ;;
    fuzz_tokenizer_json) echo "-max_len=65536 -rss_limit_mb=1024 -malloc_limit_mb=256 -timeout=20 -dict=$here/dict/json.dict" ;;
    fuzz_tokenize) echo "-max_len=8192 -rss_limit_mb=2048 -malloc_limit_mb=512 -timeout=20" ;;
    fuzz_chat) echo "-max_len=16384 -rss_limit_mb=512 -malloc_limit_mb=64 -timeout=10" ;;
    fuzz_api) echo "-max_len=16384 -rss_limit_mb=1024 -malloc_limit_mb=256 -timeout=10 -dict=$here/dict/json.dict" ;;
    fuzz_sse) echo "-max_len=8192 -rss_limit_mb=1024 -malloc_limit_mb=256 -timeout=10" ;;
    fuzz_hub) echo "-max_len=65536 -rss_limit_mb=512 -malloc_limit_mb=128 -timeout=10 -dict=$here/dict/json.dict" ;;
    fuzz_records) echo "-max_len=4096 -rss_limit_mb=1024 -malloc_limit_mb=128 -timeout=10 -dict=$here/dict/records.dict" ;;
    fuzz_lex) echo "-max_len=65536 -rss_limit_mb=1024 -malloc_limit_mb=128 -timeout=20 -dict=$here/dict/lex.dict" ;;
    fuzz_rules) echo "-max_len=131072 -rss_limit_mb=1024 -malloc_limit_mb=128 -timeout=20 -dict=$here/dict/rules.dict" ;;
    *) echo "-max_len=65536 -rss_limit_mb=1024 -timeout=20" ;;
    esac
}

# Whether clang here can build and link a libFuzzer program.
probe() {
    command -v "${FUZZ_CC:-clang}" >/dev/null 2>&1 || return 1
    mkdir -p "$FB/fuzz" || return 1
    printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }\n' \
        > "$FB/fuzz/probe.c"
    "${FUZZ_CC:-clang}" -fsanitize=fuzzer,address,undefined -o "$FB/fuzz/probe" "$FB/fuzz/probe.c" \
        > "$FB/fuzz/probe.log" 2>&1
}

# without clang, scripts/deps.sh fuzz installs it where it can (as root)
probe || { sh scripts/deps.sh fuzz > "$FB/fuzz-deps.log" 2>&1; probe; } || {
    why="clang with libFuzzer is not installed (sh scripts/deps.sh fuzz installs clang and libclang-rt-14-dev)"
    for t in $targets; do echo "SKIP $t: $why"; skipped=$((skipped + 1)); done
    echo "fuzz: $passed passed, $failed failed, $skipped skipped"
    exit 0
}

mkdir -p "$FB/fuzz/log"
# on every core; a make of its own (not the jobserver of a make that runs this script)
if ! env -u MAKEFLAGS -u MAKELEVEL nice make --no-print-directory -j"$(nproc 2>/dev/null || echo 1)" FUZZ_BUILD="$FB" fuzz-build \
    > "$FB/fuzz/log/build.log" 2>&1; then
    echo "FAIL build (make fuzz-build):"; tail -n 30 "$FB/fuzz/log/build.log"
    for t in $targets; do failed=$((failed + 1)); done
    echo "fuzz: $passed passed, $failed failed, $skipped skipped"
    exit 1
fi

if [ "$SECS" = merge ]; then
    for t in $targets; do
        mkdir -p "$here/corpus/$t" "$FB/fuzz/corpus/$t"
        old=$(ls "$here/corpus/$t" | wc -l)
        rm -rf "$FB/fuzz/merged/$t"; mkdir -p "$FB/fuzz/merged/$t"
        seeds=; [ -d "$FB/seeds/$t" ] && seeds="$FB/seeds/$t"
        # shellcheck disable=SC2046,SC2086
        if nice "$FB/fuzz/$t" -merge=1 $(opts "$t") "$FB/fuzz/merged/$t" "$here/corpus/$t" "$FB/fuzz/corpus/$t" $seeds \
            > "$FB/fuzz/log/$t.merge" 2>&1; then
            rm -f "$here/corpus/$t"/*
            cp "$FB/fuzz/merged/$t"/* "$here/corpus/$t"/ 2>/dev/null
            echo "ok   $t: corpus $old -> $(ls "$here/corpus/$t" | wc -l) files, $(du -sk "$here/corpus/$t" | cut -f1) KiB"
            passed=$((passed + 1))
        else
            echo "FAIL $t: merge failed"; tail -n 20 "$FB/fuzz/log/$t.merge"; failed=$((failed + 1))
        fi
    done
    echo "fuzz: $passed passed, $failed failed, $skipped skipped"
    [ "$failed" -eq 0 ]
    exit
fi

for t in $targets; do
    bin="$FB/fuzz/$t"
    log="$FB/fuzz/log/$t.log"
    crashes="$FB/fuzz/crashes/$t"
    mkdir -p "$FB/fuzz/corpus/$t" "$crashes" "$here/corpus/$t"
    : > "$log"
    ok=1
    # every regression input, one run each, with the best kernels and the
    # portable ones
    if [ -d "$here/regressions/$t" ] && [ -n "$(ls "$here/regressions/$t")" ]; then
        for cpu in "${QCARE_CPU:-}" scalar; do
            # shellcheck disable=SC2046
            QCARE_CPU=$cpu nice "$bin" $(opts "$t") "$here/regressions/$t"/* >> "$log" 2>&1 ||
                { ok=0; why="a regression input fails again (QCARE_CPU=$cpu)"; }
        done
    fi
    if [ $ok = 1 ] && [ "$SECS" -gt 0 ]; then
        # shellcheck disable=SC2046
        nice "$bin" $(opts "$t") -max_total_time="$SECS" -print_final_stats=1 -artifact_prefix="$crashes/" \
            "$FB/fuzz/corpus/$t" "$here/corpus/$t" >> "$log" 2>&1 || { ok=0; why="the fuzzer found a failing input"; }
    fi
    runs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+).*/\1/p' "$log" | tail -n 1)
    if [ $ok = 1 ]; then
        echo "ok   $t (${runs:-0} runs in ${SECS}s)"
        passed=$((passed + 1))
    else
        echo "FAIL $t: $why (log $log; inputs in $crashes/)"
        grep -E 'ERROR: |SUMMARY: |check failed|runtime error' "$log" | head -n 5 | sed 's/^/       /'
        failed=$((failed + 1))
    fi
done
echo "fuzz: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
