#!/usr/bin/env bash
# `cpbench compare`: the regression gate on synthetic CSVs written here.
# A/A -> exit 0 and "~"; a 30% throughput drop with 10 invocations -> exit 1
# and "slower"; bad input -> exit 2 with one line on stderr and nothing on
# stdout. Each synthetic repetition is its own invocation (its own timestamp,
# the unit of replication of files without the unit column) unless a test
# says otherwise.
set -u
bin="$1"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0 passes=0

HDR="pattern,impl,dispatch,rep,threads,producers,consumers,capacity,payload,work_ns,items,duration_s,params,lat_sample,seconds,ops,ops_per_sec,ns_per_op,p50_ns,p90_ns,p99_ns,p999_ns,max_ns,mean_ns,lat_count,status,error,seed,run_threads,cpu_user_s,cpu_sys_s,vol_ctxsw,invol_ctxsw,maxrss_kb,cpus,kernel,compiler,allocator,git_rev,timestamp,clock,clock_ns"

# rows REPS SCALE JITTER_SEED [STATUS] [EXTRA_COL_VALUE]: chan (mutex, futex) and
# workerpool (futex) rows; throughput 1M*SCALE +-2% (deterministic jitter),
# p99 1000ns/SCALE. EXTRA_COL_VALUE, when given, is appended as a last column.
rows() {
    awk -v reps="$1" -v scale="$2" -v seed="$3" -v st="${4:-OK}" -v extra="${5:-}" 'BEGIN {
        srand(seed)
        n = split("chan/mutex chan/futex workerpool/futex", cf, " ")
        for (c = 1; c <= n; c++) {
            split(cf[c], pi, "/")
            for (r = 0; r < reps; r++) {
                j = 1 + 0.04 * (rand() - 0.5)
                ops = 1000000 * scale * j
                p99 = int(1000 / scale * j)
                if (pi[1] == "chan") knobs = ",1,1,1024,16,0,2000000,,\"\",64"
                else knobs = "4,,,100,,0,100000,,\"fail_every=0;cancel_after_ms=0\",64"
                printf "%s,%s,direct,%d,%s,1.0,%d,%.1f,1.0,100,200,%d,%d,%d,150,31250,%s,,1,3,1.0,0.1,10,20,5000,2,\"Linux 6.1, x86_64\",gcc 12,glibc malloc,abc,2024-01-01T%02d:%02d:00Z,CLOCK_MONOTONIC,20.0%s\n", \
                    pi[1], pi[2], r, knobs, ops, ops, p99, p99 + 100, p99 + 1000, st, seed % 24, r % 60, (extra != "" ? "," extra : "")
            }
        }
    }'
}
mk() {  # mk FILE REPS SCALE SEED
    { echo "$HDR"; rows "$2" "$3" "$4"; } >"$1"
}

run() {  # run ARGS...: sets rc, out in $tmp/out, err in $tmp/err
    "$bin" compare "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
}
check() {  # check DESCRIPTION COMMAND...
    local what="$1"; shift
    if "$@"; then passes=$((passes + 1)); else
        echo "FAIL: $what"; sed 's/^/    /' "$tmp/out" "$tmp/err" | head -40; fails=$((fails + 1)); fi
}

mk "$tmp/a.csv" 10 1.0 1
mk "$tmp/a2.csv" 10 1.0 2
mk "$tmp/slow.csv" 10 0.7 3
mk "$tmp/fast.csv" 10 1.3 4
mk "$tmp/tiny.csv" 10 0.99 5
mk "$tmp/few.csv" 4 0.5 6

# A/A: the same file, and a rerun with other noise: no verdict, exit 0
run "$tmp/a.csv" "$tmp/a.csv"
check "A/A same file exits 0 (rc=$rc)" test $rc -eq 0
check "A/A shows ~" grep -q ' ~$' "$tmp/out"
check "A/A has no slower/faster" bash -c "! grep -Eq ' (slower|faster)$' '$tmp/out'"
run "$tmp/a.csv" "$tmp/a2.csv"
check "A/A rerun exits 0 (rc=$rc)" test $rc -eq 0
check "A/A rerun: 6 tests, 0 slower" grep -q "6 tests: 0 slower, 0 faster, 6 ~" "$tmp/out"

# 30% throughput drop (and p99 up 43%) with 10 reps: slower, exit 1
run "$tmp/a.csv" "$tmp/slow.csv"
check "30% drop exits 1 (rc=$rc)" test $rc -eq 1
check "30% drop is slower" grep -Eq 'chan .*mutex .*ops_per_sec .*-3[0-9]\.[0-9]%.* slower$' "$tmp/out"
check "latency rise is slower too" grep -Eq 'p99_ns .* slower$' "$tmp/out"
check "summary counts 6 slower" grep -q "6 tests: 6 slower" "$tmp/out"
# only ops_per_sec, and the quoted params column pairs workerpool rows
run "$tmp/a.csv" "$tmp/slow.csv" --metric=ops_per_sec
check "one metric: 3 tests (rc=$rc)" grep -q "3 tests: 3 slower" "$tmp/out"
check "quoted params shown" grep -q "fail_every=0;cancel_after_ms=0" "$tmp/out"
# the reverse: 30% faster throughput and lower latency: exit 0
run "$tmp/a.csv" "$tmp/fast.csv"
check "30% faster exits 0 (rc=$rc)" test $rc -eq 0
check "30% faster says faster" grep -q "6 tests: 0 slower, 6 faster" "$tmp/out"
# 1% below the default 5% threshold: ~; with --threshold=0.5 ... the noise (+-2%) decides
run "$tmp/a.csv" "$tmp/tiny.csv"
check "1% shift exits 0 (rc=$rc)" test $rc -eq 0
check "1% shift is not slower" bash -c "! grep -q ' slower$' '$tmp/out'"
# a huge threshold turns the 30% drop into ~
run "$tmp/a.csv" "$tmp/slow.csv" --threshold=50
check "threshold 50 -> exit 0 (rc=$rc)" test $rc -eq 0
# fewer than 5 reps on a side: inconclusive, and the rule is printed
run "$tmp/a.csv" "$tmp/few.csv"
check "4 reps exits 0 (rc=$rc)" test $rc -eq 0
check "4 reps is inconclusive" grep -q ' inconclusive$' "$tmp/out"
check "footer states the rule" grep -q "inconclusive when a side has fewer than 5 units" "$tmp/out"
# 5 vs 5 over 9 tests cannot reach alpha after Holm (9 x 2/252 > 0.05): the footer says how many reps are needed
{ echo "$HDR"; rows 5 1.0 7; } >"$tmp/b5.csv"
{ echo "$HDR"; rows 5 0.5 8; } >"$tmp/s5.csv"
run "$tmp/b5.csv" "$tmp/s5.csv" --metric=ops_per_sec,p99_ns,max_ns
check "5 vs 5 x 9 tests: no verdict (rc=$rc)" test $rc -eq 0
check "footer: units needed" grep -q "a verdict needs >= 6 units per side" "$tmp/out"

# rows with status != OK are excluded from the statistics and counted, and
# FAIL rows in NEW fail the gate (a run that broke its invariants is no pass)
{ echo "$HDR"; rows 10 1.0 9; rows 3 0.1 10 FAIL; } >"$tmp/withfail.csv"
run "$tmp/a.csv" "$tmp/withfail.csv"
check "FAIL rows in new exit 1 (rc=$rc)" test $rc -eq 1
check "FAIL rows counted" grep -q "status != OK: 0 base, 9 new" "$tmp/out"
check "FAIL rows named" grep -q "FAIL rows in new: chan mutex" "$tmp/out"
check "FAIL rows: no 'slower'" bash -c "! grep -q ' slower$' '$tmp/out'"
run "$tmp/withfail.csv" "$tmp/a.csv"
check "FAIL rows in base only: exit 0 (rc=$rc)" test $rc -eq 0

# NEW lacks configurations of BASE: exit 1 naming them, unless --allow-missing
grep -v '^workerpool' "$tmp/a2.csv" >"$tmp/nowp.csv"
run "$tmp/a.csv" "$tmp/nowp.csv"
check "missing configuration exits 1 (rc=$rc)" test $rc -eq 1
check "missing configuration named" grep -q "missing in new: workerpool futex" "$tmp/out"
run "$tmp/a.csv" "$tmp/nowp.csv" --allow-missing
check "--allow-missing exits 0 (rc=$rc)" test $rc -eq 0
run "$tmp/nowp.csv" "$tmp/a.csv"
check "a configuration only in new: exit 0 (rc=$rc)" test $rc -eq 0

# a compared metric without values (latency off on a side): exit 1 naming it
awk -F, -v OFS=, 'NR > 1 && $1 == "chan" { $21 = "" } { print }' "$tmp/a2.csv" >"$tmp/nop99.csv"
run "$tmp/a.csv" "$tmp/nop99.csv"
check "empty metric exits 1 (rc=$rc)" test $rc -eq 1
check "empty metric named" grep -q "no p99_ns values in new: chan mutex" "$tmp/out"
run "$tmp/a.csv" "$tmp/nop99.csv" --metric=ops_per_sec
check "empty metric not compared: exit 0 (rc=$rc)" test $rc -eq 0

# the unit of replication: ten repetitions of one invocation count once
sed 's/2024-01-01T[0-9:]*Z/2024-01-01T00:00:00Z/' "$tmp/slow.csv" >"$tmp/slow1.csv"
run "$tmp/a.csv" "$tmp/slow1.csv"
check "one invocation: exit 0, not slower (rc=$rc)" test $rc -eq 0
check "one invocation: inconclusive" grep -Eq "ops_per_sec .* inconclusive$" "$tmp/out"
check "one invocation: n = 10/1" grep -Eq 'ops_per_sec .* 10/1 ' "$tmp/out"
check "one invocation: points to ab" grep -q "cpbench ab BIN_A BIN_B" "$tmp/out"
# the unit column, when present, wins over the timestamp: 2 units of 5 reps
{ echo "$HDR,unit"; rows 10 0.7 3 | awk '{ print $0 "," (NR % 2 ? "u1" : "u2") }'; } >"$tmp/slow2u.csv"
run "$tmp/a.csv" "$tmp/slow2u.csv"
check "unit column: 2 units (rc=$rc)" grep -Eq 'ops_per_sec .* 10/2 .* inconclusive$' "$tmp/out"
{ echo "$HDR,unit"; rows 10 0.7 3 | awk '{ print $0 ",u" NR }'; } >"$tmp/slow10u.csv"
run "$tmp/a.csv" "$tmp/slow10u.csv"
check "unit column: 10 units, slower (rc=$rc)" test $rc -eq 1

# another machine: refused (exit 2) unless --allow-other-machine; one file from two machines: refused
sed 's/gcc 12,/gcc 13,/' "$tmp/slow.csv" >"$tmp/othercc.csv"
{ echo "$HDR,cpu_model"; rows 10 1.0 1 | sed 's/$/,AMD EPYC/'; } >"$tmp/cpu_a.csv"
{ echo "$HDR,cpu_model"; rows 10 1.0 2 | sed 's/$/,Intel Xeon/'; } >"$tmp/cpu_b.csv"
{ echo "$HDR"; rows 10 1.0 2; rows 1 1.0 3 | sed 's/Linux 6.1/Linux 6.2/'; } >"$tmp/mixed.csv"
run "$tmp/a.csv" "$tmp/othercc.csv" --allow-other-machine
check "--allow-other-machine compares (rc=$rc)" test $rc -eq 1

# --placement: strict drops placement_changed=1 rows, all keeps them
{ echo "$HDR,placement_changed"; rows 10 1.0 11 OK 0; } >"$tmp/p_base.csv"
{ echo "$HDR,placement_changed"; rows 10 1.0 12 OK 0; rows 10 0.5 13 OK 1; } >"$tmp/p_new.csv"
run "$tmp/p_base.csv" "$tmp/p_new.csv" --placement=strict
check "placement strict exits 0 (rc=$rc)" test $rc -eq 0
check "placement strict counts" grep -q "placement=strict dropped 0 base, 30 new" "$tmp/out"
run "$tmp/p_base.csv" "$tmp/p_new.csv" --placement=all
check "placement all keeps the slow rows (rc=$rc)" test $rc -eq 1
run "$tmp/a.csv" "$tmp/slow.csv" --placement=strict
check "placement strict without the column keeps rows (rc=$rc)" test $rc -eq 1
# the minority placement of a configuration is dropped too: 10 near reps at
# full speed, plus 6 far ones at half speed on the new side only
{ echo "$HDR,placement"; rows 10 1.0 21 OK near; } >"$tmp/m_base.csv"
{ echo "$HDR,placement"; rows 10 1.0 22 OK near; rows 6 0.5 23 OK far; } >"$tmp/m_new.csv"
run "$tmp/m_base.csv" "$tmp/m_new.csv" --placement=strict
check "placement strict drops the minority placement (rc=$rc)" test $rc -eq 0
check "placement strict counts minority rows" grep -q "placement=strict dropped 0 base, 18 new" "$tmp/out"
run "$tmp/m_base.csv" "$tmp/m_new.csv" --placement=all
check "placement all keeps the minority placement" bash -c "! grep -q 'placement=strict dropped' '$tmp/out'"

# fair_min_ops (the most starved thread's ops) is better higher: a rise is
# faster (exit 0), a fall slower (exit 1)
{ echo "$HDR,fair_min_ops"; rows 10 1.0 31 OK 100; } >"$tmp/f_lo.csv"
{ echo "$HDR,fair_min_ops"; rows 10 1.0 32 OK 300; } >"$tmp/f_hi.csv"
run "$tmp/f_lo.csv" "$tmp/f_hi.csv" --metric=fair_min_ops
check "fair_min_ops up: exit 0 (rc=$rc)" test $rc -eq 0
check "fair_min_ops up is faster" grep -q "3 tests: 0 slower, 3 faster" "$tmp/out"
run "$tmp/f_hi.csv" "$tmp/f_lo.csv" --metric=fair_min_ops
check "fair_min_ops down: exit 1 (rc=$rc)" test $rc -eq 1
check "fair_min_ops down is slower" grep -q "3 tests: 3 slower" "$tmp/out"

# bad input: exit 2, exactly one line on stderr, nothing on stdout
bad() {  # bad WORD ARGS...
    local word="$1"; shift
    run "$@"
    local lines
    lines=$(wc -l <"$tmp/err")
    if [ $rc -ne 2 ] || [ "$lines" -ne 1 ] || ! grep -q -- "$word" "$tmp/err" || [ -s "$tmp/out" ]; then
        echo "FAIL: compare $* -> rc=$rc, $lines stderr lines, want rc=2 and one line naming '$word':"
        sed 's/^/    /' "$tmp/err" | head -5
        fails=$((fails + 1))
    else
        passes=$((passes + 1))
    fi
}
printf 'foo,bar\n1,2\n' >"$tmp/nohdr.csv"
: >"$tmp/empty.csv"
{ echo "$HDR"; rows 10 1.0 1; echo "chan,mutex,direct,0,1,1"; } >"$tmp/short.csv"
{ echo "$HDR"; rows 10 1.0 1; echo 'chan,mutex,direct,0,"1,2'; } >"$tmp/unterminated.csv"
{ echo "$HDR"; rows 10 1.0 1 | sed '3s/,100,200,[0-9]*,/,100,200,fast,/'; } >"$tmp/nan.csv"
{ echo "$HDR"; rows 10 1.0 1 | sed 's/^chan,/other,/; s/^workerpool,/other2,/'; } >"$tmp/other.csv"
{ echo "$HDR"; rows 10 1.0 1 | sed '2s/,"",/,"x"y,/'; } >"$tmp/afterquote.csv"
bad "cannot read" "$tmp/a.csv" "$tmp/missing.csv"
bad "cannot read" "$tmp" "$tmp/a.csv"
bad "lacks column" "$tmp/nohdr.csv" "$tmp/a.csv"
bad "empty file" "$tmp/a.csv" "$tmp/empty.csv"
bad "malformed row" "$tmp/a.csv" "$tmp/short.csv"
bad "short.csv:32" "$tmp/a.csv" "$tmp/short.csv"
bad "unterminated" "$tmp/a.csv" "$tmp/unterminated.csv"
bad "not a number" "$tmp/a.csv" "$tmp/nan.csv"
bad "closing quote" "$tmp/a.csv" "$tmp/afterquote.csv"
bad "no configuration in common" "$tmp/a.csv" "$tmp/other.csv"
bad "metric column 'p42_ns'" "$tmp/a.csv" "$tmp/a.csv" --metric=p42_ns
bad "different machines (compiler" "$tmp/a.csv" "$tmp/othercc.csv"
bad "cpbench ab" "$tmp/a.csv" "$tmp/othercc.csv"
bad "different machines (cpu_model 'AMD EPYC' vs 'Intel Xeon')" "$tmp/cpu_a.csv" "$tmp/cpu_b.csv"
bad "two machines in one file" "$tmp/a.csv" "$tmp/mixed.csv"
{ echo "$HDR"; rows 10 1.0 1 | sed '3s/,100,200,[0-9]*,/,100,200,0x10,/'; } >"$tmp/hex.csv"
{ echo "$HDR"; rows 10 1.0 1 | sed '3s/,100,200,[0-9]*,/,100,200, 5,/'; } >"$tmp/space.csv"
{ echo "$HDR"; rows 10 1.0 1 | sed '3s/,100,200,[0-9]*,/,100,200,1e6,/'; } >"$tmp/exp.csv"
bad "'0x10' is not a number" "$tmp/a.csv" "$tmp/hex.csv"
bad "' 5' is not a number" "$tmp/a.csv" "$tmp/space.csv"
bad "'1e6' is not a number" "$tmp/a.csv" "$tmp/exp.csv"
bad "--alpha" "$tmp/a.csv" "$tmp/a.csv" --alpha=2
bad "--threshold" "$tmp/a.csv" "$tmp/a.csv" --threshold=x
bad "--placement" "$tmp/a.csv" "$tmp/a.csv" --placement=some
bad "unknown flag" "$tmp/a.csv" "$tmp/a.csv" --frobnicate=1
bad "two files" "$tmp/a.csv"
bad "unexpected argument" "$tmp/a.csv" "$tmp/a.csv" "$tmp/a.csv"

# --suite fixes its configurations: no sweep flags on top of it
suite_bad() {  # suite_bad WORD ARGS...
    local word="$1"; shift
    "$bin" "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if [ $rc -ne 2 ] || [ "$(wc -l <"$tmp/err")" -ne 1 ] || ! grep -q -- "$word" "$tmp/err"; then
        echo "FAIL: cpbench $* -> rc=$rc, want 2 and one line naming '$word'"; fails=$((fails + 1))
    else passes=$((passes + 1)); fi
}
suite_bad "unknown suite" --suite=nosuch
suite_bad "--pattern" --suite=quick --pattern=chan
suite_bad "--items" --suite=quick --items=10
suite_bad "--set" --suite=quick --set fail_every=1

echo "$passes passed, $fails failed"
[ $fails -eq 0 ]
