#!/bin/sh
# safety_blind.sh BUILD — the urgent-care rules and the lexicon after them
# on the blind sets (data/safety-blind/, see its README): the tune and
# holdout halves of each language and set (en/zh to en5/zh5), scored
# with `qcare eval --task safety --counts-only`, so no message of a
# holdout half is ever printed. Each half must keep what the
# rules reached when its thresholds were set (the measured counts minus a
# small margin; docs/safety.md has the measurements): at least MIN caught,
# at most MAX false alarms, and at least MIN_SH of the suicide and
# self-harm messages caught. Also the false alarms on two files of
# ordinary messages (the everyday test set, the emotion set). The goals (recall >= 95 %, false alarms <= 5 %
# on the holdout half, no miss on suicidal intent) are in the README, not
# here: a threshold guards a result, it does not claim one.
# Closing line: `safety-blind: N passed, N failed, N skipped`.
BUILD=${1:-build}
passed=0; failed=0; skipped=0

# half FILE MIN MAX MIN_SH
half() {
    f=$1
    if [ ! -f "$f" ]; then
        echo "SKIP $f: not in this checkout"
        skipped=$((skipped + 1))
        return
    fi
    out=$("$BUILD/qcare" eval --task safety --data "$f" --counts-only) || { echo "FAIL $f: qcare eval failed"; failed=$((failed + 1)); return; }
    caught=$(echo "$out" | sed -nE '1s/^urgent ([0-9]+): caught ([0-9]+).*/\2/p')
    urgent=$(echo "$out" | sed -nE '1s/^urgent ([0-9]+): caught.*/\1/p')
    alarms=$(echo "$out" | sed -nE '1s/.*false alarms ([0-9]+) .*/\1/p')
    calm=$(echo "$out" | sed -nE '1s/.*not urgent ([0-9]+):.*/\1/p')
    # the old sets label by group (suicide_selfharm), the second by presentation
    # (suicide_selfharm.means, ...): add the lines of either
    sh=$(echo "$out" | sed -nE 's/^ +suicide_selfharm(\.[a-z_]+)? +urgent +[0-9]+ caught +([0-9]+).*/\2/p' |
        awk '{ n += $1 } END { print n + 0 }')
    if [ -z "$caught" ] || [ -z "$alarms" ]; then
        echo "FAIL $f: no counts in: $(echo "$out" | head -n 1)"; failed=$((failed + 1)); return
    fi
    echo "$f: caught $caught/$urgent (at least $2), false alarms $alarms/$calm (at most $3), suicide and self-harm caught ${sh:-0} (at least $4)"
    if [ "$caught" -ge "$2" ]; then passed=$((passed + 1)); else echo "FAIL $f: recall fell: $caught < $2"; failed=$((failed + 1)); fi
    if [ "$alarms" -le "$3" ]; then passed=$((passed + 1)); else echo "FAIL $f: false alarms rose: $alarms > $3"; failed=$((failed + 1)); fi
    if [ "${sh:-0}" -ge "$4" ]; then passed=$((passed + 1)); else echo "FAIL $f: suicide and self-harm caught ${sh:-0} < $4"; failed=$((failed + 1)); fi
}

# calm FILE MAX: every message of FILE read as not urgent (`--calm`), at
# most MAX false alarms
calm() {
    out=$("$BUILD/qcare" eval --task safety --data "$1" --counts-only --calm) || { echo "FAIL $1: qcare eval failed"; failed=$((failed + 1)); return; }
    alarms=$(echo "$out" | sed -nE '1s/.*false alarms ([0-9]+) .*/\1/p')
    calm=$(echo "$out" | sed -nE '1s/.*not urgent ([0-9]+):.*/\1/p')
    echo "$1: false alarms $alarms/$calm (at most $2)"
    if [ -n "$alarms" ] && [ "$alarms" -le "$2" ]; then passed=$((passed + 1)); else echo "FAIL $1: false alarms rose: $alarms > $2"; failed=$((failed + 1)); fi
}

#    file                                    caught  alarms  suicide   (measured 2026-12-03: the rules of f66662f, the lexicon of data/safety-lex.txt)
half data/safety-blind/en-tune.jsonl          119     2       8         # 121/121, 0/110, 9/9
half data/safety-blind/en-holdout.jsonl       93      10      7         # 95/106, 8/101, 8/8
half data/safety-blind/zh-tune.jsonl          114     2       8         # 116/116, 0/103, 9/9
half data/safety-blind/zh-holdout.jsonl       96      8       8         # 98/104, 6/96, 9/9
half data/safety-blind/en2-tune.jsonl         110     2       14        # 112/112, 0/117, 15/15
half data/safety-blind/en2-holdout.jsonl      80      2       11        # 82/88, 0/83, 12/14
half data/safety-blind/zh2-tune.jsonl         105     3       15        # 107/107, 1/118, 16/16
half data/safety-blind/zh2-holdout.jsonl      86      13      11        # 88/93, 11/82, 12/14
half data/safety-blind/en3-tune.jsonl         123     2       14        # 125/125, 0/120, 15/15
half data/safety-blind/en3-holdout.jsonl      72      7       13        # 74/75, 5/80, 14/15
half data/safety-blind/zh3-tune.jsonl         123     6       14        # 125/125, 4/120, 15/15
half data/safety-blind/zh3-holdout.jsonl      66      11      11        # 68/75, 9/80, 12/15
half data/safety-blind/en4-tune.jsonl         128     5       19        # 130/130, 3/120, 20/20
half data/safety-blind/en4-holdout.jsonl      61      5       10        # 63/70, 3/80, 11/15
half data/safety-blind/zh4-tune.jsonl         128     4       19        # 130/130, 2/120, 20/20
half data/safety-blind/zh4-holdout.jsonl      60      13      11        # 62/70, 11/80, 12/15
half data/safety-blind/en5-tune.jsonl         115     9       22        # 117/117, 7/119, 23/23
half data/safety-blind/en5-holdout.jsonl      77      10      16        # 79/83, 8/81, 17/20
half data/safety-blind/zh5-tune.jsonl         119     13      20        # 121/121, 11/114, 21/21
half data/safety-blind/zh5-holdout.jsonl      66      8       11        # 68/79, 6/86, 12/18
#    ordinary messages, every one read as calm (data/safety-everyday/README.md)
calm data/safety-everyday/test.jsonl          7       # 5/400
calm data/safety-everyday/test-long.jsonl     4       # 2/200
calm data/emotion-eval.jsonl                  11      # 9/360
echo "safety-blind: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
