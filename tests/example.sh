#!/bin/sh
# The README's engine example (examples/greedy.c) built exactly as the README
# says — against libqcare.a with only PCRE2, utf8proc and jansson — and run
# on the tiny-qwen2 fixture model: its 8 greedy tokens must be llama.cpp's
# (golden/tiny-qwen2.jsonl, F32 weights). Also checks that the README shows
# the file as it is.
# CC and RUN choose another compiler and a runner (tests/emu.sh: the ARM64
# cross compiler and qemu).
BUILD=${1:-build}
CC=${CC:-cc}
RUN=${RUN:-}
pass=0; fail=0
check() { if [ "$1" = 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $2"; fi; }
out=$BUILD/tests/example
mkdir -p "$out"
# the README's code block between the marker lines is the file
sed -n '/^<!-- example: examples\/greedy.c -->$/,/^```$/p' README.md | sed '1,2d;$d' > "$out/readme.c"
cmp -s "$out/readme.c" examples/greedy.c; check $? "README's example differs from examples/greedy.c"
# a sanitizer build's library needs the sanitizers' runtimes at link time
san=; nm "$BUILD/libqcare.a" 2>/dev/null | grep -q __asan_ && san="-fsanitize=address,undefined"
$CC -std=c11 -Wall -Wextra -Werror $san -Iinclude -o "$out/greedy" examples/greedy.c -L"$BUILD" -lqcare -lpcre2-8 -lutf8proc -ljansson -lm -lpthread 2> "$out/cc.log"
check $? "the example does not build with -lqcare -lpcre2-8 -lutf8proc -ljansson -lm -lpthread: $(head -c 600 "$out/cc.log")"
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
