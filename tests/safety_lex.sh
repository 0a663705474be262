#!/bin/sh
# safety_lex.sh BUILD — `qcare safety-train`, the safety net's second
# reader's trainer (docs/safety.md): on a generated set where one word
# decides (urgent messages carry "zebra" or 斑马, calm ones do not; both
# share the same other words), the weights it writes catch a fresh
# generated set whole with no false alarm when loaded with
# --safety-lexicon, and the same data give the same file twice; its errors
# (no --out, a line that is not JSON, an urgent line whose presentation the
# rules do not know) stop it with a status and the line. In the release
# build it also retrains data/safety-lex.txt with the command the file
# records and compares: the weights in the repository are the ones that
# data and that command give.
# Closing line: `safety-lex: N passed, N failed, N skipped`.
BUILD=${1:-build}
Q=$BUILD/qcare
passed=0; failed=0; skipped=0
ok() { passed=$((passed + 1)); }
bad() { echo "FAIL: $1"; failed=$((failed + 1)); }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

# gen SEED N: N generated messages, every third one urgent
gen() {
    awk -v seed="$1" -v n="$2" 'BEGIN {
        split("my mother|the appointment|since this morning|at the clinic|my son|we called|after lunch|he says|she is", w, "|")
        split("今天|妈妈|医院|早上|复诊|孩子", z, "|")
        srand(seed)
        for (i = 0; i < n; i++) {
            a = w[int(rand() * 9) + 1]; b = w[int(rand() * 9) + 1]; c = z[int(rand() * 6) + 1]
            if (i % 3 == 0) {
                t = (i % 2) ? a " zebra " b : c "斑马" c
                printf "{\"text\": \"%s\", \"urgent\": true, \"presentation\": \"stroke.fast\"}\n", t
            } else {
                t = (i % 2) ? a " " b " giraffe" : c "长颈鹿" c
                printf "{\"text\": \"%s\", \"urgent\": false, \"presentation\": \"none\"}\n", t
            }
        }
    }'
}
gen 1 240 > "$dir/train.jsonl"
gen 2 120 > "$dir/test.jsonl"

if "$Q" safety-train --data "$dir/train.jsonl" --folds 3 --min-tokens 2 --out "$dir/a.txt" > "$dir/cv.txt" 2> "$dir/err.txt"; then ok
else bad "safety-train failed: $(cat "$dir/err.txt")"; fi
grep -q '^3-fold cross-validation on 240 messages' "$dir/cv.txt" && ok || bad "no cross-validation report: $(head -c 300 "$dir/cv.txt")"
out=$("$Q" eval --task safety --data "$dir/test.jsonl" --counts-only --safety-lexicon "$dir/a.txt" | head -n 1)
case "$out" in
    "urgent 40: caught 40 "*"false alarms 0 "*) ok ;;
    *) bad "the trained weights on a fresh set: $out" ;;
esac
# min-tokens: the same weights with a floor above these messages' length leave them to the rules
sed 's/^min-tokens 2$/min-tokens 50/' "$dir/a.txt" > "$dir/a50.txt"
out=$("$Q" eval --task safety --data "$dir/test.jsonl" --counts-only --safety-lexicon "$dir/a50.txt" | head -n 1)
case "$out" in
    "urgent 40: caught 0 "*) ok ;;
    *) bad "min-tokens 50 on short messages: $out" ;;
esac
# without the weights the rules alone see nothing in these messages
out=$("$Q" eval --task safety --data "$dir/test.jsonl" --counts-only --safety-lexicon off | head -n 1)
case "$out" in
    "urgent 40: caught 0 "*) ok ;;
    *) bad "the rules alone on the generated set: $out" ;;
esac
"$Q" safety-train --data "$dir/train.jsonl" --folds 3 --min-tokens 2 --out "$dir/b.txt" > /dev/null 2>&1
sed 1,2d "$dir/a.txt" > "$dir/a.body"; sed 1,2d "$dir/b.txt" > "$dir/b.body"
cmp -s "$dir/a.body" "$dir/b.body" && ok || bad "the same data gave two different files"
grep -q '^threshold 0\.[0-9]*$' "$dir/a.txt" && grep -q '^min-tokens 2$' "$dir/a.txt" && grep -q '^classes none cardiac ' "$dir/a.txt" &&
    grep -q "$(printf 'f\t1|zebra\t')" "$dir/a.txt" && ok || bad "the file's statements: $(head -n 6 "$dir/a.txt")"

# errors
"$Q" safety-train --data "$dir/train.jsonl" > /dev/null 2> "$dir/err.txt"
[ $? = 2 ] && grep -q -- '--out' "$dir/err.txt" && ok || bad "no --out: $(cat "$dir/err.txt")"
{ head -n 5 "$dir/train.jsonl"; echo '{"text": "x", "urgent": 1}'; } > "$dir/bad1.jsonl"
"$Q" safety-train --data "$dir/bad1.jsonl" --out "$dir/c.txt" > /dev/null 2> "$dir/err.txt"
[ $? = 1 ] && grep -q 'bad1.jsonl:6: expected' "$dir/err.txt" && ok || bad "a bad line: $(cat "$dir/err.txt")"
{ head -n 5 "$dir/train.jsonl"; echo '{"text": "x", "urgent": true, "presentation": "zebra.crossing"}'; } > "$dir/bad2.jsonl"
"$Q" safety-train --data "$dir/bad2.jsonl" --out "$dir/c.txt" > /dev/null 2> "$dir/err.txt"
[ $? = 1 ] && grep -q "bad2.jsonl:6: urgent, but presentation 'zebra.crossing'" "$dir/err.txt" && ok ||
    bad "an unknown presentation: $(cat "$dir/err.txt")"
"$Q" safety-train --data /nonexistent.jsonl --out "$dir/c.txt" > /dev/null 2>&1
[ $? = 1 ] && ok || bad "a missing data file"
[ ! -e "$dir/c.txt" ] && ok || bad "a failed run left an output file"
"$Q" eval --task safety --data "$dir/test.jsonl" --safety-lexicon "$dir/bad1.jsonl" > /dev/null 2> "$dir/err.txt"
[ $? != 0 ] && grep -q 'bad1.jsonl:1: expected "qcare-safety-lex 1" first' "$dir/err.txt" && ok ||
    bad "a malformed weights file: $(cat "$dir/err.txt")"

# The weights in the repository: retrained with the command they record.
case "$BUILD" in
    *debug*) echo "SKIP data/safety-lex.txt retrained: release pass only (about a minute)"; skipped=$((skipped + 1)) ;;
    *)
        cmd=$(sed -n '2s/^# Written by: safety-train //p' data/safety-lex.txt | sed 's/--out [^ ]*//')
        if [ -z "$cmd" ]; then bad "data/safety-lex.txt does not record its command"
        # shellcheck disable=SC2086
        elif "$Q" safety-train $cmd --out "$dir/lex.txt" > /dev/null 2> "$dir/err.txt"; then
            sed 1,2d data/safety-lex.txt > "$dir/repo.body"; sed 1,2d "$dir/lex.txt" > "$dir/new.body"
            # the same file; on another CPU the maths library's exp may round a
            # last bit otherwise, so a weight may move by a few units of its
            # fourth decimal, or cross the prune line: up to 0.1% of the lines
            n=$(wc -l < "$dir/repo.body")
            d=$(paste "$dir/repo.body" "$dir/new.body" | awk -F'\t' '
                NF == 2 && $1 == $2 { next }
                NF != 6 || $1 != $4 || $2 != $5 { bad++; next }
                { na = split($3, a, " "); nb = split($6, b, " ")
                  if (na != nb) { bad++; next }
                  for (i = 1; i <= na; i++) { split(a[i], x, ":"); split(b[i], y, ":")
                      if (x[1] != y[1] || x[2] - y[2] > 0.002 || y[2] - x[2] > 0.002) { bad++; next } } }
                END { print bad + 0 }')
            if cmp -s "$dir/repo.body" "$dir/new.body"; then ok
            elif [ "$d" -le $((n / 1000)) ] && [ "$(head -n 4 "$dir/repo.body")" = "$(head -n 4 "$dir/new.body")" ]; then
                echo "data/safety-lex.txt: the retrained file differs only in last digits (weights within 0.002; $d of $n lines beyond, at most 0.1%)"; ok
            else bad "data/safety-lex.txt is not what its command gives ($d of $n lines differ): make safety-lex"; fi
        else bad "retraining data/safety-lex.txt failed: $(cat "$dir/err.txt")"; fi
        ;;
esac
echo "safety-lex: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
