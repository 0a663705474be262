#!/bin/sh
# The ARM64 build's tests under emulation (qemu-aarch64-static), at every
# kernel level: `-cpu max` has dot product and i8mm (its best level, i8mm,
# and QCARE_CPU=dotprod forced down), `-cpu cortex-a53` NEON only, and
# QCARE_CPU=scalar the portable reference. Correctness only: speed under
# emulation means nothing. $1: the ARM64 build folder; $2: the native build
# folder whose generated fixture models are used (the same bytes on any
# machine). Prints `emu: N passed, N failed, N skipped` last.
#   EMU_TESTS   the test programs (make emu-test's list)
#   EMU_LEVELS  cpu:QCARE_CPU pairs the quantized-weight tests run at
#   EMU_CASES   QC_TEST_CASES for them: the first N golden prompts (and
#               each golden file's longest, 95 tokens, so the batched
#               prefill is checked against llama.cpp too) and case-list
#               entries (the rest is a counted SKIP; the whole set runs
#               tens of minutes per level under qemu); 0: all
#   EMU_JOBS    runs at a time (each is one emulated process)
# Which runs at which level: test_kernels compares every level's kernels
# with the scalar ones in one run, so it runs once per CPU model. The
# quantized-weight tests (test_quant, test_batch) run at every level, the
# int8 kernels being each level's own; test_kquants (its first case: the
# GGUF holding every type, as stored, against llama.cpp's logits; ~3
# emulated minutes a run) at i8mm and at neon only: dotprod's K-quant and
# Q4_1/Q5_1 kernels are the ones i8mm runs, and test_kernels compares
# dotprod's Q5_0 tile with scalar bit for bit; its scalar kernels are the
# portable C that every build runs. The three ARM levels share their
# float-weight kernels (and attention), so test_golden (BF16, and its F16
# re-save) runs at the best level and at scalar; test_care (BF16; ~5 CPU
# minutes emulated even on its first case), test_gguf (its F16 file; mostly
# tokenizer and parser checks) and test_tokenizer (no kernel) once, at the
# best level.
EMU_BUILD=${1:-build-aarch64}
NATIVE=${2:-build}
QEMU=${QEMU:-qemu-aarch64-static}
EMU_LEVELS=${EMU_LEVELS:-"max: max:dotprod cortex-a53: max:scalar"}
EMU_CASES=${EMU_CASES:-1}
EMU_JOBS=${EMU_JOBS:-2}
# The loader and libc of the arm64 multiarch packages (libc6:arm64, which
# the engine's arm64 libraries depend on): the cross toolchain's own
# loader (/usr/aarch64-linux-gnu) with the multiarch libc.so.6 that
# /etc/ld.so.cache finds is a mismatched pair, under which pthread_create
# never returns (glibc 2.36-8cross1 vs 2.36-9+deb12u14 here).
SYSROOT=${SYSROOT:-/}
export QC_FIXTURES="${QC_FIXTURES:-../shared/fixtures}"
export QC_MODELS="$NATIVE/models" QC_BUILD="$EMU_BUILD"
[ "$EMU_CASES" = 0 ] || export QC_TEST_CASES="$EMU_CASES"
log="$EMU_BUILD/tests/log"; mkdir -p "$log"
passed=0; failed=0; skipped=0
if ! command -v "$QEMU" >/dev/null 2>&1; then
    echo "SKIP emu: $QEMU not found (sh scripts/deps.sh arm64-test)"
    echo "emu: 0 passed, 0 failed, 1 skipped"; exit 0
fi

# The runs, one "test cpu level" per line.
runs=$(for t in $EMU_TESTS; do
    case $t in
    test_kernels) pairs="max: cortex-a53:" ;;
    test_golden) pairs="max: max:scalar" ;;
    test_kquants) pairs="max: cortex-a53:" ;;
    test_care | test_gguf | test_tokenizer) pairs="max:" ;;
    *) pairs=$EMU_LEVELS ;;
    esac
    for p in $pairs; do echo "$t ${p%%:*} ${p#*:}"; done
done)

name_of() { echo "$1[cpu=$2${3:+,QCARE_CPU=$3}]"; }
out_of() { echo "$log/$(name_of "$@" | tr -c 'A-Za-z0-9_.-' '_').out"; }

# start T CPU LEVEL: one run in the background (its exit status in .rc)
start() {
    out=$(out_of "$@")
    rm -f "$out.rc"
    if [ ! -x "$EMU_BUILD/tests/$1" ]; then echo "not built" > "$out"; echo 127 > "$out.rc"; return; fi
    (QCARE_CPU=$3 "$QEMU" -cpu "$2" -L "$SYSROOT" "$EMU_BUILD/tests/$1" > "$out" 2>&1; echo $? > "$out.rc") &
}

# collect T CPU LEVEL: adds a finished run's counts and reports it
collect() {
    name=$(name_of "$@"); out=$(out_of "$@"); rc=$(cat "$out.rc" 2>/dev/null || echo 1)
    line=$(grep -E '^[^ ]+: [0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' "$out" | tail -n 1)
    p=$(echo "$line" | sed -nE 's/.*: ([0-9]+) passed.*/\1/p'); f=$(echo "$line" | sed -nE 's/.* ([0-9]+) failed.*/\1/p')
    s=$(echo "$line" | sed -nE 's/.* ([0-9]+) skipped$/\1/p')
    [ -n "$p" ] || p=0; [ -n "$f" ] || f=0; [ -n "$s" ] || s=0
    if { [ "$rc" -ne 0 ] || [ -z "$line" ]; } && [ "$f" = 0 ]; then f=1; fi
    passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
    if [ "$rc" -eq 0 ] && [ -n "$line" ]; then echo "  ok   $name ($p passed, $s skipped)";
    else echo "  FAIL $name (rc $rc)"; tail -n 15 "$out"; fi
    grep -E '^SKIP' "$out" | sed 's/^/         /'
}

# EMU_JOBS runs at a time, reported in order
batch=""; n=0
for r in $(echo "$runs" | tr ' ' ','); do
    set -- $(echo "$r" | tr ',' ' ')
    start "$1" "$2" "${3:-}"
    batch="$batch $r"; n=$((n + 1))
    if [ "$n" -ge "$EMU_JOBS" ]; then
        wait
        for b in $batch; do set -- $(echo "$b" | tr ',' ' '); collect "$1" "$2" "${3:-}"; done
        batch=""; n=0
    fi
done
wait
for b in $batch; do set -- $(echo "$b" | tr ',' ' '); collect "$1" "$2" "${3:-}"; done

# The README's care example on ARM64 (examples/ask.c, `qcare ask` as a
# program, one thread: the qcare binary itself also links the server's
# packages, whose arm64 -dev set cannot be installed beside the native
# one's): exit 0, an emotion label and the urgent notice for an urgent
# message. EMU_EXAMPLE=1 adds the engine example, 8 greedy tokens equal to
# llama.cpp's (minutes under emulation, where the thread pool's spinning
# workers are emulated too).
examples=ask; [ -n "$EMU_EXAMPLE" ] && examples="ask greedy"
out="$log/example.out"
EXAMPLES=$examples CC=${EMU_CC:-aarch64-linux-gnu-gcc} RUN="$QEMU -cpu max -L $SYSROOT" sh tests/example.sh "$EMU_BUILD" > "$out" 2>&1
rc=$?
line=$(grep -E '^example: [0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' "$out" | tail -n 1)
p=$(echo "$line" | sed -nE 's/.*: ([0-9]+) passed.*/\1/p'); f=$(echo "$line" | sed -nE 's/.* ([0-9]+) failed.*/\1/p')
[ -n "$p" ] || p=0; [ -n "$f" ] || f=0
if { [ $rc -ne 0 ] || [ -z "$line" ]; } && [ "$f" = 0 ]; then f=1; fi
passed=$((passed + p)); failed=$((failed + f))
if [ $rc -eq 0 ]; then echo "  ok   example[cpu=max] ($examples: $p passed)"; else echo "  FAIL example[cpu=max]"; tail -n 15 "$out"; fi
echo "emu: $passed passed, $failed failed, $skipped skipped"
echo "$passed $failed $skipped" > "$EMU_BUILD/tests/summary"
[ "$failed" -eq 0 ]
