#!/usr/bin/env bash
# The flow patterns or, ordone, tee and selectloop (issue 11): each runs on
# every backend, count- and time-based, with its parameters; --help lists
# them; its seed key selects it; bad parameter values are bad input (exit
# 2); and each --variant=seed is caught: exit 1 with the failure naming the
# leak. Nothing here depends on timing: a correct run has 1 s for every
# bound, and a seed variant's leak is for good (it is released only after
# being counted).
set -u
bin="$1"
# the impls --impl=all runs: the backends --list names, go only where it is built
nimpl=$("$bin" --list | awk '/^backends:/ {b = 1; next} b && /^  [a-z]/ && !/not built/ {n++} END {print n}')
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0 passes=0
ok() { passes=$((passes + 1)); }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }

small="--impl=all --repeat=1 --warmup=0 --quiet --timeout=60"

runs() {    # runs DESCRIPTION ARGS...: exit 0, no FAIL row
    local what="$1"; shift
    "$bin" "$@" >"$tmp/out" 2>"$tmp/err"
    local rc=$?
    if [ $rc -eq 0 ] && ! grep -q FAIL "$tmp/out" "$tmp/err"; then ok
    else bad "$what: cpbench $* -> rc=$rc"; sed 's/^/    /' "$tmp/err" | head -5; fi
}

bad_input() {   # bad_input WORD ARGS...: exit 2, the message names WORD
    local word="$1"; shift
    "$bin" "$@" >"$tmp/out" 2>"$tmp/err"
    local rc=$?
    if [ $rc -eq 2 ] && grep -q -- "$word" "$tmp/err"; then ok
    else bad "cpbench $* -> rc=$rc, want 2 naming '$word'"; sed 's/^/    /' "$tmp/err" | head -3; fi
}

caught() {  # caught REGEX ARGS...: exit 1, one FAIL per backend, each naming REGEX
    local re="$1"; shift
    "$bin" "$@" >"$tmp/out" 2>"$tmp/err"
    local rc=$? n
    n=$(grep -Ec "cpbench: FAIL .*$re" "$tmp/err")
    if [ $rc -eq 1 ] && [ "$n" -eq "$nimpl" ] && grep -q "variant=seed" "$tmp/err"; then
        ok; echo "ok: caught: $(grep -Em1 "$re" "$tmp/err" | cut -c1-200)"
    else bad "seed variant not caught: cpbench $* -> rc=$rc, $n of $nimpl impls name /$re/"; sed 's/^/    /' "$tmp/err" | head -5; fi
}

helps() {   # helps PATTERN SEED_KEY PARAM...: --help lists the params; the seed key selects it
    local p="$1" key="$2"; shift 2
    "$bin" --pattern="$p" --help >"$tmp/help" 2>&1 || bad "--pattern=$p --help failed"
    for k in "$@"; do grep -Eq "^    $k +" "$tmp/help" && ok || bad "--pattern=$p --help does not list $k"; done
    grep -q "variants.*seed" "$tmp/help" && ok || bad "--pattern=$p --help does not list the seed variant"
    "$bin" --pattern="$key" --help 2>&1 | head -1 | grep -q "^$p (" && ok || bad "--pattern=$key does not select $p"
}

metric() {  # metric REGEX ARGS...: the CSV's metrics column carries REGEX (NAME=VALUE)
    local m="$1"; shift
    "$bin" "$@" --csv="$tmp/m.csv" >/dev/null 2>&1
    grep -Eq "$m" "$tmp/m.csv" && ok || bad "cpbench $* --csv: no metric /$m/"
}

# ---- or ----
helps or flows_or sources impl
runs "or recursive" --pattern=or $small --items=300
runs "or flat" --pattern=or $small --items=300 --set impl=1
runs "or K=1..5" --pattern=or $small --items=50 --set sources=1,2,3,4,5 --set impl=0,1
runs "or by seed key, time-based" --pattern=flows_or $small --duration=0.2
metric 'helpers=4(\.0*)?;' --pattern=or --impl=mutex --items=50 --repeat=1 --warmup=0 --quiet
metric exit_max_ns= --pattern=or --impl=mutex --items=50 --repeat=1 --warmup=0 --quiet
bad_input "sources" --pattern=or --set sources=0
bad_input "impl" --pattern=or --set impl=2
bad_input "impl=0" --pattern=or --variant=seed --set impl=1
caught "leaked 2 of 3 helper threads" --pattern=or $small --items=3 --variant=seed

# ---- ordone ----
helps ordone flows_ordone src_items
runs "ordone" --pattern=ordone $small --items=2000 --producers=1,3 --capacity=0,1,16
runs "ordone, a finite upstream" --pattern=ordone $small --items=2000 --producers=2 --set src_items=500,2000,5000
runs "ordone by seed key, time-based" --pattern=flows_ordone $small --duration=0.2
metric stop_to_joined_ns= --pattern=ordone --impl=futex --items=100 --repeat=1 --warmup=0 --quiet
caught "leaked 1 upstream thread: .*the wrapper is blocked" --pattern=ordone $small --items=100 --variant=seed

# ---- tee ----
helps tee flows_tee stop_at
runs "tee" --pattern=tee $small --items=2000 --capacity=0,1,16
runs "tee, a slow reader" --pattern=tee $small --items=1000 --capacity=0,4 --work-ns=2000
runs "tee, reader 2 leaves" --pattern=tee $small --items=2000 --capacity=0,1,1024 --set stop_at=1,100,2000
runs "tee by seed key, time-based" --pattern=flows_tee $small --duration=0.2 --set stop_at=0,300
metric skew_max= --pattern=tee --impl=lockfree --items=100 --repeat=1 --warmup=0 --quiet
metric stop_to_exit_ns= --pattern=tee --impl=lockfree --items=100 --set stop_at=10 --repeat=1 --warmup=0 --quiet
caught "leaked 2 threads: .*the tee is blocked offering" --pattern=tee $small --items=1000 --set stop_at=100 --variant=seed

# ---- selectloop ----
helps selectloop flows_selectloop stop
runs "selectloop, cancel and close" --pattern=selectloop $small --items=3000 --threads=1,4 --capacity=0,1,64 --set stop=0,1
runs "selectloop by seed key, time-based" --pattern=flows_selectloop $small --duration=0.2 --set stop=0,1
metric stop_to_exit_ns= --pattern=selectloop --impl=mutex --items=100 --repeat=1 --warmup=0 --quiet
metric late= --pattern=selectloop --impl=mutex --items=100 --repeat=1 --warmup=0 --quiet
bad_input "stop" --pattern=selectloop --set stop=2
caught "leaked 2 of 2 worker threads: still looping .* after the cancel" --pattern=selectloop $small --items=500 --variant=seed
caught "leaked 2 of 2 worker threads: still looping .* after the close" --pattern=selectloop $small --items=500 --set stop=1 --variant=seed
# cancel with jobs still queued: the seed handles them after it saw the stop
"$bin" --pattern=selectloop --impl=mutex --repeat=1 --warmup=0 --quiet --items=5000 --threads=1 --capacity=1024 \
    --work-ns=20000 --variant=seed >/dev/null 2>"$tmp/err"
grep -Eq "leaked 1 of 1 worker threads: .*\([1-9][0-9]* jobs handled after they saw it\)" "$tmp/err" && ok \
    || { bad "selectloop seed with a full queue: no jobs handled after the stop counted"; head -3 "$tmp/err"; }

echo "$passes passed, $fails failed"
[ $fails -eq 0 ]
