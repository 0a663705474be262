#!/bin/sh
# qcare against llama.cpp on the same machine, in the same run, on the same
# GGUF files: prompt processing and decode (qcare bench vs llama-bench,
# interleaved), then serving and judgment latency (build/peer_bench: qcare
# serve vs llama-server).
#
#   bench/vs-llamacpp.sh LLAMA_BIN_DIR [THREADS] [REPS]
#
# LLAMA_BIN_DIR holds llama-bench, llama-quantize and llama-server (built
# beside the project by ../shared/tools/llamacpp-ref.sh; a measuring
# instrument, never part of qcare). The files: the bench-qwen1.5-0.5b and
# qwen2.5-0.5b presets (`qcare mkmodel`, random weights with the real
# shapes) written as F16 GGUF by `qcare convert`, then quantized by
# llama-quantize to Q8_0, Q4_0 and Q4_K_M, so both engines read files
# llama.cpp wrote. QC_DTYPE (default auto: the file's types as stored) is
# passed to qcare, and QCARE_CPU (qcare's kernel level, e.g. avx512 for
# VNNI without AMX on an AMX machine) reaches qcare bench and qcare serve
# through the environment. QC_VS_FILES (default: the five below,
# preset:type) picks the files; QC_VS_SERVE=0 skips the serving part.
# Needs ~4 GB in build/bench and 15-30 minutes.
set -eu
cd "$(dirname "$0")/.."
L=${1:?usage: bench/vs-llamacpp.sh LLAMA_BIN_DIR [THREADS] [REPS]}
T=${2:-2}
R=${3:-3}
DT=${QC_DTYPE:-auto}
Q=build/qcare
D=build/bench
for b in llama-bench llama-quantize llama-server; do
    [ -x "$L/$b" ] || { echo "vs-llamacpp: $L/$b not found (build it with ../shared/tools/llamacpp-ref.sh)" >&2; exit 2; }
done
command -v python3 >/dev/null || { echo "vs-llamacpp: needs python3 (apt-get install -y python3)" >&2; exit 2; }
make -s build/qcare build/peer_bench
mkdir -p "$D"

gguf() { # preset type -> file
    f16=$D/$1.f16.gguf
    out=$D/$1.$2.gguf
    if [ ! -f "$D/$1/config.json" ]; then
        "$Q" mkmodel --preset "$1" --out "$D/$1" --tokenizer "${QC_FIXTURES:-../shared/fixtures}/tokenizer" >&2
    fi
    [ -f "$f16" ] || "$Q" convert "$D/$1" "$f16" --type f16 >&2
    if [ ! -f "$out" ]; then
        U=$(echo "$2" | tr a-z A-Z)
        "$L/llama-quantize" "$f16" "$out.tmp" "$U" >"$D/quantize.log" 2>&1 || { tail -5 "$D/quantize.log" >&2; exit 1; }
        mv "$out.tmp" "$out"
    fi
    echo "$out"
}

# qcare bench --json's last line / llama-bench -o json: t/s and its sd.
qfield() { python3 -c 'import json,sys; j=json.loads(sys.stdin.read().strip().splitlines()[-1]); print("%.1f %.1f %.0f" % (j[sys.argv[1]+"_tps"], j[sys.argv[1]+"_sd"], j["peak_rss_mb"]))' "$1"; }
lfield() { python3 -c 'import json,sys; j=json.load(sys.stdin); r=[x for x in j if (x["n_gen"]>0)==(sys.argv[1]=="tg")][0]; print("%.1f %.1f" % (r["avg_ts"], r["stddev_ts"]))' "$1"; }
qdtype() { python3 -c 'import json,sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])["dtype"])'; }
qcpu() { python3 -c 'import json,sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])["cpu"])'; }
ratio() { python3 -c 'import sys; print("%.2f" % (float(sys.argv[1])/float(sys.argv[2])))' "$1" "$2"; }

echo "| file | size MiB | qcare keeps | test | qcare t/s | llama.cpp t/s | qcare / llama.cpp | qcare peak RSS MB |"
echo "|---|---|---|---|---|---|---|---|"
FILES=${QC_VS_FILES:-bench-qwen1.5-0.5b:q8_0 bench-qwen1.5-0.5b:q4_0 bench-qwen1.5-0.5b:q4_k_m qwen2.5-0.5b:q8_0 qwen2.5-0.5b:q4_k_m}
for spec in $FILES; do
    f=$(gguf "${spec%%:*}" "${spec##*:}")
    mib=$(( $(stat -c %s "$f") / 1048576 ))
    for test in "512 128" "64 0"; do
        set -- $test
        qa=$("$Q" bench --model "$f" --dtype "$DT" -t "$T" -r "$R" -p "$1" -n "$2" --json 2>/dev/null)
        la=$("$L/llama-bench" -m "$f" -t "$T" -r "$R" -p "$1" -n "$2" -o json 2>/dev/null)
        qdt=$(echo "$qa" | qdtype)
        QCPU=$(echo "$qa" | qcpu)
        set -- $(echo "$qa" | qfield pp) "$1" "$2"
        qpp=$1 qsd=$2 rss=$3 np=$4 ng=$5
        set -- $(echo "$la" | lfield pp)
        echo "| $(basename "$f") | $mib | $qdt | pp$np | $qpp ± $qsd | $1 ± $2 | $(ratio "$qpp" "$1") | $rss |"
        if [ "$ng" -gt 0 ]; then
            set -- $(echo "$qa" | qfield tg)
            qtg=$1 qts=$2
            set -- $(echo "$la" | lfield tg)
            echo "| $(basename "$f") | $mib | $qdt | tg$ng | $qtg ± $qts | $1 ± $2 | $(ratio "$qtg" "$1") | |"
        fi
    done
done
echo
echo "$T threads, $R repetitions each, qcare --dtype $DT at its ${QCPU:-?} level (QCARE_CPU=${QCARE_CPU:-unset}), llama.cpp ${LLAMA_REV:-(set LLAMA_REV to its commit)};"
echo "$(date -u +%Y-%m-%d), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) CPUs, SIMD: $(grep -m1 -o -w -e avx2 -e avx512f -e avx512_vnni -e amx_int8 /proc/cpuinfo | sort -u | tr '\n' ' ')"
[ "${QC_VS_SERVE:-1}" = 0 ] && exit 0
echo
build/peer_bench --gguf "$(gguf bench-qwen1.5-0.5b q8_0)" --llama-server "$L/llama-server" --threads "$T" -- --dtype "$DT"
