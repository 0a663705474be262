#!/bin/sh
# safety_blind.sh BUILD — the urgent-care rules on the blind sets
# (data/safety-blind/, see its README): the tune and holdout halves of each
# language and set (the first, en/zh, and the second, en2/zh2), scored
# with `qcare eval --task safety --counts-only`, so no message of a
# holdout half is ever printed. Each half must keep what the
# rules reached when its thresholds were set (the measured counts minus a
# small margin; docs/safety.md has the measurements): at least MIN caught,
# at most MAX false alarms, and at least MIN_SH of the suicide and
# self-harm messages caught. The goals (recall >= 95 %, false alarms <= 5 %
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

#    file                                    caught  alarms  suicide   (measured 2026-12-02, rules of 7e917d6)
half data/safety-blind/en-tune.jsonl          119     2       9         # 121/121, 0/110, 9/9
half data/safety-blind/en-holdout.jsonl       70      11      5         # 73/106, 9/101, 6/8
half data/safety-blind/zh-tune.jsonl          114     2       9         # 116/116, 0/103, 9/9
half data/safety-blind/zh-holdout.jsonl       76      8       7         # 79/104, 6/96, 8/9
half data/safety-blind/en2-tune.jsonl         110     2       14        # 112/112, 0/117, 15/15
half data/safety-blind/en2-holdout.jsonl      68      3       7         # 71/88, 1/83, 8/14
half data/safety-blind/zh2-tune.jsonl         105     3       15        # 107/107, 1/118, 16/16
half data/safety-blind/zh2-holdout.jsonl      73      13      9         # 76/93, 11/82, 10/14
#    the third set (rules of this round, 2026-12-02; see data/safety-blind/README.md)
half data/safety-blind/en3-tune.jsonl         122     2       14        # 124/125, 0/120, 15/15
half data/safety-blind/en3-holdout.jsonl      60      7       11        # 63/75, 5/80, 12/15
half data/safety-blind/zh3-tune.jsonl         123     6       14        # 124/125, 4/120, 14/15
half data/safety-blind/zh3-holdout.jsonl      48      11      6         # 51/75, 9/80, 7/15
#    the fourth set's tune halves (rules of 64fb202, 2026-12-04)
half data/safety-blind/en4-tune.jsonl         109     5       19        # 111/130, 3/120, 20/20
half data/safety-blind/zh4-tune.jsonl         113     4       19        # 115/130, 2/120, 20/20
half data/safety-blind/en4-holdout.jsonl      44      5       6         # 47/70, 3/80, 8/15
half data/safety-blind/zh4-holdout.jsonl      47      12      5         # 50/70, 10/80, 7/15
echo "safety-blind: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
