#!/usr/bin/env bash
# The cpbench program's contract: bad input -> one line naming the flag, exit 2;
# a stuck run -> watchdog report, exit 1; good runs -> exit 0 with the CSV
# schema of docs/csv.md.
set -u
bin="$1"
# the impls --impl=all runs: the backends --list names, go only where it is built
impls=$("$bin" --list | awk '/^backends:/ {b = 1; next} b && /^  [a-z]/ && !/not built/ {printf "%s%s", s, $1; s = ","}')
nimpl=$(echo "$impls" | tr ',' '\n' | wc -l)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0 passes=0

bad() {   # bad EXPECTED_WORD ARGS...: exit 2, one stderr line containing the word
    local word="$1"; shift
    "$bin" "$@" >"$tmp/out" 2>"$tmp/err"
    local rc=$? lines
    lines=$(wc -l <"$tmp/err")
    if [ $rc -ne 2 ] || [ "$lines" -ne 1 ] || ! grep -q -- "$word" "$tmp/err" || [ -s "$tmp/out" ]; then
        echo "FAIL: cpbench $* -> rc=$rc, $lines stderr lines, want rc=2 and one line naming '$word':"
        sed 's/^/    /' "$tmp/err" | head -5
        fails=$((fails + 1))
    else
        passes=$((passes + 1))
    fi
}

bad "--pattern" --pattern=nosuch
bad "--pattern" --impl=futex
bad "--pattern" --pattern=
bad "--pattern" --pattern=, --set fail_every=1
bad "--impl" --pattern=chan --impl=,
bad "--impl" --pattern=chan --impl=spinlock
bad "--impl" --pattern=chan --impl=
bad "--threads" --pattern=workerpool --threads=abc
bad "--threads" --pattern=workerpool --threads=0
bad "--threads" --pattern=workerpool --threads=-4
bad "--threads" --pattern=workerpool --threads=100000
bad "--threads" --pattern=workerpool --threads=4:1
bad "--threads" --pattern=workerpool --threads=1:8:x1
bad "--threads" --pattern=workerpool --threads=1:8:+0
bad "--threads" --pattern=workerpool --threads=
bad "--capacity" --pattern=chan --capacity=-1
bad "--capacity" --pattern=chan --capacity=99999999999999999999
bad "--payload" --pattern=chan --payload=4
bad "--items" --pattern=chan --items=0
bad "--repeat" --pattern=chan --repeat=0
bad "--duration" --pattern=chan --duration=-1
bad "--duration" --pattern=chan --duration=fast
bad "--timeout" --pattern=chan --timeout=0
bad "--set" --pattern=chan --set nosuch=1
bad "--set" --pattern=workerpool --set fail_every
bad "--set fail_every" --pattern=workerpool --set fail_every=x
bad "--dispatch" --pattern=chan --dispatch=virtual
bad "unknown flag" --pattern=chan --frobnicate=1
bad "unexpected argument" --pattern=chan extra
bad "missing value" --pattern=chan --threads
bad "1 GiB" --pattern=chan --capacity=60000000 --payload=64
bad "--pin" --pattern=chan --pin=999
bad "--pin" --pattern=chan --pin=nowhere
bad "--csv" --pattern=chan --csv=/nonexistent-dir/x.csv --items=1000

check() {  # check DESCRIPTION COMMAND...: the command must succeed
    local what="$1"; shift
    if "$@"; then passes=$((passes + 1)); else echo "FAIL: $what"; fails=$((fails + 1)); fi
}

check "--list exits 0 and names both patterns" bash -c "'$bin' --list | grep -q workerpool && '$bin' --list | grep -q '^  chan'"
check "CP_NO_MEMBARRIER=1: futex says its lock fences" bash -c "CP_NO_MEMBARRIER=1 '$bin' --pattern=chan --impl=futex --items=1000 --repeat=1 | grep -q 'no membarrier(2)'"
check "--pattern=X --help lists X's parameters" bash -c "'$bin' --pattern=workerpool --help | grep -q cancel_after_ms"

# a small sweep: every impl, a list and a range; the CSV holds one row per repetition
"$bin" --pattern=chan --impl=all --producers=1,2 --capacity=0:16:x4 --items=2000 --repeat=2 --warmup=0 \
    --csv="$tmp/run.csv" --quiet >"$tmp/out" 2>"$tmp/err"
rc=$?
check "small sweep exits 0 (rc=$rc)" test $rc -eq 0
rows=$(($(wc -l <"$tmp/run.csv") - 1))
# 3 impls x 2 producer counts x capacities {0,4,16} x 2 reps
check "sweep wrote $((12 * nimpl)) rows (got $rows)" test "$rows" -eq $((12 * nimpl))
for col in pattern impl rep threads producers consumers capacity payload work_ns items seconds ops \
           ops_per_sec p50_ns p90_ns p99_ns p999_ns max_ns mean_ns status seed cpus kernel compiler \
           allocator git_rev timestamp; do
    check "CSV has column $col" bash -c "head -1 '$tmp/run.csv' | tr ',' '\n' | grep -qx '$col'"
done
check "every row is OK" bash -c "tail -n +2 '$tmp/run.csv' | awk -F, '\$26 != \"OK\" {exit 1}'"

# workerpool with failures and a cancel stops cleanly and passes its invariants
check "workerpool fail_every + cancel" "$bin" --pattern=workerpool --impl=all --items=100M \
    --set fail_every=7 --set cancel_after_ms=30 --repeat=1 --warmup=0 --quiet --timeout=20
check "time-based run" "$bin" --pattern=chan,workerpool --impl=all --duration=50ms --repeat=1 --warmup=0 --quiet
check "pinned run (compact)" "$bin" --pattern=chan --impl=all --pin=compact --items=10k --repeat=1 --warmup=0 --quiet
# open loop: corrected latency (from the intended start) dominates the
# uncorrected one item by item, so every percentile does
"$bin" --pattern=chan,workerpool --impl=all --rate=20000 --payload=24 --duration=200ms --repeat=1 --warmup=0 \
    --lat-sample=1 --csv="$tmp/rate.csv" --quiet
rc=$?
check "open loop run exits 0 (rc=$rc)" test $rc -eq 0
check "open loop: corrected >= uncorrected percentiles, rate recorded" /usr/bin/python3 -c "
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert len(rows) == 2 * int(sys.argv[2]), len(rows)
for r in rows:
    assert r['rate'] == '20000', r['rate']
    for p in ('p50_ns', 'p99_ns', 'max_ns'):
        assert int(r[p]) >= int(r['u_' + p]), (r['pattern'], r['impl'], p, r[p], r['u_' + p])
" "$tmp/rate.csv" $nimpl
bad "--rate" --pattern=select --rate=1000
bad "--payload" --pattern=chan --rate=1000 --payload=16
# a lock's fairness beside its throughput: under the row, with more than one thread
"$bin" --pattern=mutex --impl=mutex --threads=1,2 --items=200k --repeat=2 --warmup=0 >"$tmp/fair.out" 2>&1
check "fairness: one line, for the 2-thread row" test "$(grep -c 'fairness (fewest / most ops of one thread) [01]\.[0-9]\{3\} \[' "$tmp/fair.out")" -eq 1
check "fairness: right under the T=2 row" bash -c "grep -A1 '^mutex .* T=2 ' '$tmp/fair.out' | grep -q fairness"
# --interleave: round r runs every configuration's repetition r, shuffled
"$bin" --pattern=chan --impl=all --capacity=0,64 --items=2000 --repeat=3 --warmup=0 --interleave \
    --csv="$tmp/il.csv" --quiet
rc=$?
check "interleaved sweep exits 0 (rc=$rc)" test $rc -eq 0
check "interleaved: each round holds every configuration once, rounds in order" /usr/bin/python3 -c "
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
k = 2 * int(sys.argv[2])     # configurations: impls x 2 capacities
assert len(rows) == 3 * k, len(rows)
for r in range(3):
    rnd = rows[k * r: k * r + k]
    assert all(x['rep'] == str(r) for x in rnd), [x['rep'] for x in rnd]
    assert len({(x['impl'], x['capacity']) for x in rnd}) == k
order = [(x['impl'], x['capacity']) for x in rows[:k]]
impls = sys.argv[3].split(',')   # --impl=all's order: that of --list
assert order != sorted(order, key=lambda t: (impls.index(t[0]), int(t[1]))), 'not shuffled'
" "$tmp/il.csv" $nimpl "$impls"
bad "--interleave" --pattern=chan --interleave --json=/tmp/x.json
check "table dispatch" "$bin" --pattern=chan --impl=all --dispatch=table --items=10k --repeat=1 --warmup=0 --quiet

# the watchdog: a run longer than --timeout is reported and exits 1
"$bin" --pattern=chan --impl=futex --items=1000G --timeout=300ms --repeat=1 --warmup=0 >"$tmp/out" 2>"$tmp/err"
rc=$?
check "watchdog exits 1 (rc=$rc)" test $rc -eq 1
check "watchdog names each thread's phase" grep -q "producer .*send" "$tmp/err"
check "watchdog shows the channel" grep -q "channel items" "$tmp/err"

# SIGTERM during a sweep: the run in progress is stopped and discarded, every
# completed repetition stays in the CSV (no half-written row), the summary is
# printed, exit 143.
"$bin" --pattern=chan --impl=all --items=100k --repeat=500 --csv="$tmp/int.csv" >"$tmp/int.out" 2>&1 &
pid=$!
sleep 2.5
kill -TERM $pid
wait $pid
rc=$?
check "SIGTERM exits 143 (rc=$rc)" test $rc -eq 143
check "SIGTERM prints the summary" grep -q "interrupted by signal 15" "$tmp/int.out"
check "SIGTERM keeps only whole CSV rows, at least one" /usr/bin/python3 -c "
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))
assert len(rows) >= 2, 'no completed row kept'
assert all(len(r) == len(rows[0]) for r in rows), 'a row with the wrong number of fields'
assert all(r[rows[0].index('status')] == 'OK' for r in rows[1:]), 'a kept row is not OK'
" "$tmp/int.csv"

echo "$passes passed, $fails failed"
[ $fails -eq 0 ]
