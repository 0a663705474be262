#!/bin/sh
# The ARM64 build's tests under emulation (qemu-aarch64-static), at every
# kernel level qemu can show: `-cpu max` (dot product, i8mm) and
# `-cpu cortex-a53` (NEON only), each also forced down to the scalar
# reference with QCARE_CPU=scalar. Correctness only: speed under emulation
# means nothing. $1: the ARM64 build folder; $2: the native build folder
# whose generated fixture models are used (the same bytes on any machine).
# EMU_TESTS names the test programs; EMU_ALL_LEVELS those run at every
# level. Prints `emu: N passed, N failed, N skipped` last.
EMU_BUILD=${1:-build-aarch64}
NATIVE=${2:-build}
QEMU=${QEMU:-qemu-aarch64-static}
SYSROOT=${SYSROOT:-/usr/aarch64-linux-gnu}
export QC_FIXTURES="${QC_FIXTURES:-../shared/fixtures}"
export QC_MODELS="$NATIVE/models" QC_BUILD="$EMU_BUILD"
log="$EMU_BUILD/tests/log"; mkdir -p "$log"
passed=0; failed=0; skipped=0
if ! command -v "$QEMU" >/dev/null 2>&1; then
    echo "SKIP emu: $QEMU not found (sh scripts/deps.sh arm64-test)"
    echo "emu: 0 passed, 0 failed, 1 skipped"; exit 0
fi
for t in $EMU_TESTS; do
    bin="$EMU_BUILD/tests/$t"
    # the programs named in EMU_ALL_LEVELS run at every level; the others
    # (minutes each under emulation) once, on the best level of -cpu max
    cpus=max; levels=x
    case " $EMU_ALL_LEVELS " in *" $t "*) cpus="max cortex-a53"; levels="x scalar" ;; esac
    for cpu in $cpus; do
        for level in $levels; do
            [ "$level" = x ] && level=
            name="$t[cpu=$cpu${level:+,QCARE_CPU=$level}]"
            out="$log/$(echo "$name" | tr -c 'A-Za-z0-9_.-' '_').out"
            if [ ! -x "$bin" ]; then echo "FAIL $name: not built"; failed=$((failed + 1)); continue; fi
            QCARE_CPU=$level "$QEMU" -cpu "$cpu" -L "$SYSROOT" "$bin" > "$out" 2>&1
            rc=$?
            line=$(grep -E '^[^ ]+: [0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' "$out" | tail -n 1)
            p=$(echo "$line" | sed -nE 's/.*: ([0-9]+) passed.*/\1/p'); f=$(echo "$line" | sed -nE 's/.* ([0-9]+) failed.*/\1/p')
            s=$(echo "$line" | sed -nE 's/.* ([0-9]+) skipped$/\1/p')
            [ -n "$p" ] || p=0; [ -n "$f" ] || f=0; [ -n "$s" ] || s=0
            if { [ $rc -ne 0 ] || [ -z "$line" ]; } && [ "$f" = 0 ]; then f=1; fi
            passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
            if [ $rc -eq 0 ] && [ -n "$line" ]; then echo "  ok   $name ($p passed, $s skipped)";
            else echo "  FAIL $name (rc $rc)"; tail -n 15 "$out"; fi
            grep -E '^SKIP' "$out" | sed 's/^/         /'
        done
    done
done
# The README's example on ARM64: 8 greedy tokens equal to llama.cpp's
# (EMU_EXAMPLE=1: minutes under emulation, where the thread pool's
# spinning workers are emulated too).
if [ -n "$EMU_EXAMPLE" ]; then
out="$log/example.out"
CC=${EMU_CC:-aarch64-linux-gnu-gcc} RUN="$QEMU -cpu max -L $SYSROOT" sh tests/example.sh "$EMU_BUILD" > "$out" 2>&1
rc=$?
line=$(grep -E '^example: [0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' "$out" | tail -n 1)
p=$(echo "$line" | sed -nE 's/.*: ([0-9]+) passed.*/\1/p'); f=$(echo "$line" | sed -nE 's/.* ([0-9]+) failed.*/\1/p')
[ -n "$p" ] || p=0; [ -n "$f" ] || f=0
if { [ $rc -ne 0 ] || [ -z "$line" ]; } && [ "$f" = 0 ]; then f=1; fi
passed=$((passed + p)); failed=$((failed + f))
if [ $rc -eq 0 ]; then echo "  ok   example[cpu=max] ($p passed)"; else echo "  FAIL example[cpu=max]"; tail -n 15 "$out"; fi
fi
echo "emu: $passed passed, $failed failed, $skipped skipped"
echo "$passed $failed $skipped" > "$EMU_BUILD/tests/summary"
[ "$failed" -eq 0 ]
