#!/usr/bin/env bash
# The scale and resilience patterns of issue 12 (ratelimit,
# ratelimit_perclient, healing, retry) through the cpbench program: each runs
# clean on every backend, count-based and time-based, with its knobs;
# --help lists its parameters; its seed key selects it; and each seed
# variant is caught (exit 1, the failure naming the leak or the loss).
# No check depends on timing: sizes are tiny and every bound is the
# pattern's own generous one (1 s).
set -u
bin="$1"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0 passes=0
ok() { passes=$((passes + 1)); }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }
small=(--impl=all --repeat=1 --warmup=0 --quiet --timeout=120)

runs_clean() {   # runs_clean DESCRIPTION ARGS...: exit 0, no FAIL
    local what="$1"; shift
    "$bin" "$@" "${small[@]}" >"$tmp/out" 2>"$tmp/err"
    local rc=$?
    if [ $rc -eq 0 ] && ! grep -q FAIL "$tmp/err"; then ok; else
        bad "$what: cpbench $* -> rc=$rc"; sed 's/^/    /' "$tmp/err" | head -5
    fi
}

caught() {   # caught DESCRIPTION WORDS ARGS...: exit 1 and a FAIL line containing WORDS
    local what="$1" words="$2"; shift 2
    "$bin" "$@" "${small[@]}" >"$tmp/out" 2>"$tmp/err"
    local rc=$?
    if [ $rc -eq 1 ] && grep "FAIL" "$tmp/err" | grep -q -- "$words"; then ok; else
        bad "$what: cpbench $* -> rc=$rc, want 1 and a FAIL naming '$words'"; sed 's/^/    /' "$tmp/err" | head -5
    fi
}

has_params() {   # has_params PATTERN KEY...: --help lists every key
    local p="$1"; shift
    "$bin" --pattern="$p" --help >"$tmp/help" 2>&1 || { bad "$p --help failed"; return; }
    for k in "$@"; do
        grep -q "^    $k " "$tmp/help" && ok || bad "$p --help does not list parameter $k"
    done
    grep -q "metrics (CSV column metrics" "$tmp/help" && ok || bad "$p --help lists no metrics"
}

seed_key() {   # seed_key KEY PATTERN: --pattern=KEY selects PATTERN and runs
    "$bin" --pattern="$1" --help 2>/dev/null | head -1 | grep -q "^$2 (" && ok || bad "--pattern=$1 does not select $2"
    runs_clean "seed key $1" --pattern="$1" --items=100
}

# ---- ratelimit ----
has_params ratelimit limit burst n op strategy deadline_us cancel_after_ms
runs_clean "ratelimit Wait" --pattern=ratelimit --items=300
runs_clean "ratelimit Allow, Reserve, mix" --pattern=ratelimit --items=200 --set op=1,2,3 --set n=2
runs_clean "ratelimit both strategies on every backend" --pattern=ratelimit --items=200 --set strategy=1,2
runs_clean "ratelimit deadline refusals" --pattern=ratelimit --items=200 --set deadline_us=200 --threads=8
runs_clean "ratelimit cancel" --pattern=ratelimit --items=100000 --set limit=20000 --set cancel_after_ms=5
runs_clean "ratelimit time-based" --pattern=ratelimit --duration=0.1
"$bin" --pattern=ratelimit --impl=mutex,futex --items=100 --repeat=1 --warmup=0 --quiet --csv=- >"$tmp/csv" 2>/dev/null
grep -q "^ratelimit,mutex,.*strategy=1" "$tmp/csv" && grep -q "^ratelimit,futex,.*strategy=2" "$tmp/csv" && ok ||
    bad "ratelimit's CSV metrics do not say strategy 1 on mutex and 2 on futex"
"$bin" --pattern=ratelimit --set n=11 --items=10 >/dev/null 2>&1; [ $? -eq 2 ] && ok || bad "ratelimit n > burst is not bad input"
seed_key scale_ratelimit ratelimit
caught "ratelimit seed leaks its ticker forwarder" "leaked 1 thread" --pattern=ratelimit --variant=seed --items=200

# ---- ratelimit_perclient ----
has_params ratelimit_perclient clients skew churn limit burst idle_ms shards cancel_after_ms
runs_clean "ratelimit_perclient" --pattern=ratelimit_perclient --items=20000
runs_clean "ratelimit_perclient knobs" --pattern=ratelimit_perclient --items=5000 --set churn=0,500 --set shards=1 \
    --set skew=0 --threads=6
runs_clean "ratelimit_perclient cancel" --pattern=ratelimit_perclient --items=10000000 --set cancel_after_ms=5
runs_clean "ratelimit_perclient time-based" --pattern=ratelimit_perclient --duration=0.1
caught "ratelimit_perclient seed map grows forever" "leaked [0-9]* map entries" --pattern=ratelimit_perclient \
    --variant=seed --items=5000

# ---- healing ----
has_params healing fault fault_every max_faults pulse_us timeout_us cancel_after_ms
runs_clean "healing hang and die" --pattern=healing --items=300 --set fault=1,2 --set fault_every=50
runs_clean "healing without faults" --pattern=healing --items=300 --set fault=0
runs_clean "healing capacity 0 and 1" --pattern=healing --items=200 --capacity=0,1 --set fault_every=40 --work-ns=0
runs_clean "healing cancel" --pattern=healing --items=1000000 --set fault_every=100 --set cancel_after_ms=5
runs_clean "healing time-based" --pattern=healing --duration=0.1 --set fault=2 --set fault_every=200
"$bin" --pattern=healing --impl=futex --items=400 --set fault_every=100 --repeat=1 --warmup=0 --quiet --csv=- \
    >"$tmp/csv" 2>/dev/null
grep -q "faults=4\.0*;" "$tmp/csv" && grep -q "detect_p50_ns=" "$tmp/csv" && ok ||
    bad "healing: 4 faults injected in 400 units (fault_every=100) and a detection time in the CSV"
seed_key scale_healing healing

# ---- retry ----
has_params retry fail_pct max_attempts base_us cap_us jitter outage_ms cancel_after_ms
runs_clean "retry" --pattern=retry --items=500
runs_clean "retry jitters" --pattern=retry --items=300 --set jitter=0,1,2
runs_clean "retry all attempts fail" --pattern=retry --items=200 --set fail_pct=100 --set max_attempts=3
runs_clean "retry cancel in a long backoff" --pattern=retry --duration=60 --set outage_ms=100000 \
    --set base_us=500000 --set cap_us=2000000 --set cancel_after_ms=5
runs_clean "retry time-based" --pattern=retry --duration=0.1
caught "retry seed sleeps after the final attempt" "slept after their final attempt" --pattern=retry --variant=seed \
    --items=100 --set fail_pct=100 --set max_attempts=2

echo "$passes passed, $fails failed"
[ $fails -eq 0 ]
