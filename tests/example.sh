#!/bin/sh
# The README's examples built exactly as the README says — against
# libqcare.a (and libqcare_care.a) with only PCRE2, utf8proc and jansson —
# and run on the tiny-qwen2 fixture model: the engine example
# (examples/greedy.c): its 8 greedy tokens must be llama.cpp's
# (golden/tiny-qwen2.jsonl, F32 weights); the care example (examples/ask.c,
# `qcare ask` as a program) on an urgent message: exit status 0, an emotion
# label, the urgent-care notice. Also checks that the README shows each
# file as it is.
# CC and RUN choose another compiler and a runner (tests/emu.sh: the ARM64
# cross compiler and qemu); EXAMPLES which examples run (default both).
BUILD=${1:-build}
CC=${CC:-cc}
RUN=${RUN:-}
EXAMPLES=${EXAMPLES:-"greedy ask"}
pass=0; fail=0
check() { if [ "$1" = 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $2"; fi; }
out=$BUILD/tests/example
mkdir -p "$out"
# a sanitizer build's library needs the sanitizers' runtimes at link time
san=; nm "$BUILD/libqcare.a" 2>/dev/null | grep -q __asan_ && san="-fsanitize=address,undefined"
# build NAME LIBS: the README's code block between its marker line and the
# block's end is examples/NAME.c, which builds with LIBS
build() {
    sed -n "/^<!-- example: examples\/$1.c -->\$/,/^\`\`\`\$/p" README.md | sed '1,2d;$d' > "$out/readme-$1.c"
    cmp -s "$out/readme-$1.c" "examples/$1.c"; check $? "README's example differs from examples/$1.c"
    $CC -std=c11 -Wall -Wextra -Werror $san -Iinclude -o "$out/$1" "examples/$1.c" -L"$BUILD" $2 2> "$out/cc-$1.log"
    check $? "examples/$1.c does not build with $2: $(head -c 600 "$out/cc-$1.log")"
}
libs="-lqcare -lpcre2-8 -lutf8proc -ljansson -lm -lpthread"
case " $EXAMPLES " in *" ask "*)
    build ask "-lqcare_care $libs"
    # one thread: under emulation a spinning worker is emulated too
    text="I have crushing chest pain and my left arm is numb"
    got=$($RUN "$out/ask" "$QC_MODELS/tiny-qwen2" "$text" 1 2> "$out/ask.err"); rc=$?
    check $rc "ask exited $rc: $(head -c 600 "$out/ask.err")"
    printf '%s\n' "$got" | grep -qE '^emotion: (positive|negative|neutral) \('; check $? "ask printed no emotion label: $(printf '%s' "$got" | head -c 300)"
    printf '%s\n' "$got" | grep -q 'URGENT'; check $? "ask printed no urgent-care notice for '$text'"
;; esac
case " $EXAMPLES " in *" greedy "*) ;; *)
    echo "example: $pass passed, $fail failed, 0 skipped"; [ "$fail" = 0 ]; exit ;;
esac
build greedy "$libs"
line=$(head -n 1 "$QC_FIXTURES/golden/tiny-qwen2.jsonl")
# (the first line's prompt has no JSON escapes, so sed can take it out)
prompt=$(printf '%s' "$line" | sed -nE 's/^\{"prompt":"([^"\\]*)".*/\1/p')
want=$(printf '%s' "$line" | sed -nE 's/.*"greedy":\[([0-9,]*)\].*/\1/p' | tr ',' '\n' | head -n 8 | tr '\n' ' ' | sed 's/ *$//')
if [ -z "$prompt" ] || [ -z "$want" ]; then
    check 1 "cannot read the golden prompt and tokens"
else
    got=$($RUN "$out/greedy" "$QC_MODELS/tiny-qwen2" "$prompt" f32 | sed 's/ *$//')
    [ "$got" = "$want" ]; check $? "greedy tokens: got '$got', want '$want'"
fi
echo "example: $pass passed, $fail failed, 0 skipped"
[ "$fail" = 0 ]
