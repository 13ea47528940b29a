#!/usr/bin/env bash
# `cpbench ab`: the interleaved A/B gate. A/A of one binary on a tiny run:
# the output format, the per-side CSVs and exit 0 or 1 (never 2); fixed-value
# fake builds make the statistics deterministic: B at half A's throughput is
# "slower" (exit 1), equal values are "~" (exit 0); a failed run exits 1, bad
# input exits 2 with one line, a signal keeps complete pairs only.
set -u
bin="$1"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0 passes=0
check() {  # check DESCRIPTION COMMAND...
    local what="$1"; shift
    if "$@"; then passes=$((passes + 1)); else
        echo "FAIL: $what"; sed 's/^/    /' "$tmp/out" "$tmp/err" 2>/dev/null | head -40; fails=$((fails + 1)); fi
}
tiny=(--pattern=atomic --impl=mutex,futex --items=20000 --placement-split=0)

# A/A: one binary twice
"$bin" ab "$bin" "$bin" "${tiny[@]}" --rounds=8 --out="$tmp/aa" >"$tmp/out" 2>"$tmp/err"
rc=$?
check "A/A exits 0 or 1 (rc=$rc)" test $rc -eq 0 -o $rc -eq 1
check "A/A header names both sides" grep -q "^cpbench ab: A = $bin (.*)   B = $bin" "$tmp/out"
check "A/A table header" grep -Eq '^pattern +impl +config +metric +A +B +n +B/A +\[95% CI\] +p +p\(holm\) +verdict$' "$tmp/out"
check "A/A: 4 rows of 8 rounds" test "$(grep -Ec '^atomic +(mutex|futex) .* 8 +[0-9.]+ +\[' "$tmp/out")" -eq 4
check "A/A summary" grep -Eq "^ab: 6 tests: [0-9]+ slower" "$tmp/out"
check "A/A: a suite row per metric" test "$(grep -Ec "^\(suite\) +- +all 2 configurations" "$tmp/out")" -eq 2
check "A/A footer: rounds needed" grep -q "with 6 tests a configuration.s verdict needs >= 8 rounds" "$tmp/out"
check "a.csv: header + 16 rows" test "$(wc -l <"$tmp/aa/a.csv")" -eq 17
check "b.csv: header + 16 rows" test "$(wc -l <"$tmp/aa/b.csv")" -eq 17
rep=$(head -1 "$tmp/aa/a.csv" | tr , '\n' | grep -n '^rep$' | cut -d: -f1)
unit=$(head -1 "$tmp/aa/a.csv" | tr , '\n' | grep -n '^unit$' | cut -d: -f1)
check "rep is the round (0..7, twice each)" test "$(cut -d, -f"$rep" "$tmp/aa/a.csv" | tail -n +2 | sort -n | uniq -c | awk '$1 == 2' | wc -l)" -eq 8
check "every row its own unit" test "$(cut -d, -f"$unit" "$tmp/aa/a.csv" | tail -n +2 | sort -u | wc -l)" -eq 16
check "no temporary left" test "$(ls -A "$tmp/aa" | tr '\n' ' ')" = "a.csv b.csv "
"$bin" compare "$tmp/aa/a.csv" "$tmp/aa/b.csv" >"$tmp/out" 2>"$tmp/err"
rc=$?
check "compare reads ab's CSVs (rc=$rc)" test $rc -eq 0 -o $rc -eq 1
check "compare sees 8 units a side" grep -Eq 'ops_per_sec .* 8/8 ' "$tmp/out"

# fake builds: run the real binary, then write a fixed ops_per_sec into its CSV
fake() {  # fake NAME VALUE [EXIT]
    cat >"$tmp/$1" <<EOS
#!/usr/bin/env bash
"$bin" "\$@" || exit \$?
for a in "\$@"; do case "\$a" in --csv=*) f="\${a#--csv=}" ;; esac; done
awk -F, -v OFS=, 'NR == 1 { for (i = 1; i <= NF; i++) if (\$i == "ops_per_sec") c = i } NR > 1 { \$c = "$2" } { print }' "\$f" >"\$f.x" && mv "\$f.x" "\$f"
exit ${3:-0}
EOS
    chmod +x "$tmp/$1"
}
fake full 1000000.0
fake half 500000.0
fake broken 1000000.0 1
"$bin" ab "$tmp/full" "$tmp/half" "${tiny[@]}" --rounds=8 --metric=ops_per_sec --out="$tmp/h" >"$tmp/out" 2>"$tmp/err"
rc=$?
check "half the throughput exits 1 (rc=$rc)" test $rc -eq 1
check "half: slower, ratio 0.5" grep -Eq '^atomic +mutex .*ops_per_sec .* 8 +0\.500 .* slower$' "$tmp/out"
check "half: p = 2/2^8" grep -Eq "ops_per_sec .* 0\.00781 " "$tmp/out"
check "half: the suite row is slower too" grep -Eq "^\(suite\) .*ops_per_sec .* 0\.500 .* slower$" "$tmp/out"
# --analyze: the same tests again from the two CSVs
"$bin" ab --analyze="$tmp/h" --metric=ops_per_sec >"$tmp/out" 2>"$tmp/err"
rc=$?
check "--analyze of the half run exits 1 (rc=$rc)" test $rc -eq 1
check "--analyze pairs every row" grep -q "16 + 16 rows, 2 configurations, 8 rounds, 16 complete pairs" "$tmp/out"
check "--analyze: slower, ratio 0.5" grep -Eq '^atomic +mutex .*ops_per_sec .* 8 +0\.500 .* slower$' "$tmp/out"
"$bin" ab --analyze="$tmp/h" --metric=ops_per_sec --threshold=60 >"$tmp/out" 2>"$tmp/err"
rc=$?
check "--analyze --threshold=60: no verdict (rc=$rc)" test $rc -eq 0
"$bin" ab "$tmp/half" "$tmp/full" "${tiny[@]}" --rounds=8 --metric=ops_per_sec --out="$tmp/f" >"$tmp/out" 2>"$tmp/err"
rc=$?
check "twice the throughput exits 0 (rc=$rc)" test $rc -eq 0
check "twice: faster" grep -Eq 'ops_per_sec .* 2\.000 .* faster$' "$tmp/out"
"$bin" ab "$tmp/half" "$tmp/half" "${tiny[@]}" --rounds=8 --metric=ops_per_sec --out="$tmp/e" >"$tmp/out" 2>"$tmp/err"
rc=$?
check "equal values exit 0 (rc=$rc)" test $rc -eq 0
check "equal values: ~" grep -Eq 'ops_per_sec .* 1\.000 .* ~$' "$tmp/out"
"$bin" ab "$tmp/half" "$tmp/full" "${tiny[@]}" --rounds=4 --metric=ops_per_sec --out="$tmp/few" >"$tmp/out" 2>"$tmp/err"
check "4 rounds cannot decide: inconclusive" grep -Eq 'ops_per_sec .* inconclusive$' "$tmp/out"
"$bin" ab "$tmp/full" "$tmp/broken" "${tiny[@]}" --rounds=8 --out="$tmp/b" >"$tmp/out" 2>"$tmp/err"
rc=$?
check "a failed run exits 1 (rc=$rc)" test $rc -eq 1
check "the failure names side B" grep -q "(side B) failed on atomic" "$tmp/err"
check "its pair is kept" test "$(wc -l <"$tmp/b/b.csv")" -eq 2

# a signal: stop, analyse the complete rounds, keep complete pairs only
"$bin" ab "$bin" "$bin" "${tiny[@]}" --rounds=10000 --out="$tmp/sig" >"$tmp/out" 2>"$tmp/err" &
pid=$!
sleep 1.5
kill -INT $pid
wait $pid
rc=$?
check "SIGINT exits 130 (rc=$rc)" test $rc -eq 130
check "SIGINT: said so" grep -q "interrupted by signal 2" "$tmp/out"
check "SIGINT: complete pairs only" test "$(wc -l <"$tmp/sig/a.csv")" -eq "$(wc -l <"$tmp/sig/b.csv")"

# bad input: exit 2, one line on stderr; an existing CSV is never replaced
bad() {  # bad WORD ARGS...
    local word="$1"; shift
    "$bin" ab "$@" >"$tmp/out" 2>"$tmp/err"
    local rc=$? lines
    lines=$(wc -l <"$tmp/err")
    if [ $rc -ne 2 ] || [ "$lines" -ne 1 ] || ! grep -q -- "$word" "$tmp/err"; then
        echo "FAIL: ab $* -> rc=$rc, $lines stderr lines, want rc=2 and one line naming '$word':"
        sed 's/^/    /' "$tmp/err" | head -5; fails=$((fails + 1))
    else passes=$((passes + 1)); fi
}
mkdir -p "$tmp/keep"; echo precious >"$tmp/keep/a.csv"
bad "two cpbench binaries" "$bin"
bad "not an executable" "$bin" "$tmp/nosuch" "${tiny[@]}"
bad "--repeat" "$bin" "$bin" "${tiny[@]}" --repeat=3
bad "--json" "$bin" "$bin" "${tiny[@]}" --json=x.json
bad "--rounds" "$bin" "$bin" "${tiny[@]}" --rounds=1
bad "unknown pattern" "$bin" "$bin" --pattern=nosuch
bad "--analyze: takes no binaries" "$bin" --analyze="$tmp/h"
bad "cannot read" --analyze="$tmp/nosuch"
bad "exists" "$bin" "$bin" "${tiny[@]}" --out="$tmp/keep"
check "the existing CSV is untouched" test "$(cat "$tmp/keep/a.csv")" = precious

echo "$passes passed, $fails failed"
[ $fails -eq 0 ]
