#!/usr/bin/env bash
# The orchestration patterns (errgroup, shutdown, contextio, contextio_net):
# each runs on every backend, count- and time-based, and exits 0; --help
# lists its parameters; its seed key selects it; each seed variant is caught
# (exit 1, the message naming the leak or the loss). The seed variants are
# sized so that the bug cannot hide: a task that runs 2 s, a drain of 0 ms
# against 100 ms jobs, a Write whose helper cannot finish into the buffer;
# nothing here depends on how fast the machine is.
set -u
bin="$1"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0 passes=0
ok() { passes=$((passes + 1)); }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }
tiny=(--impl=all --repeat=1 --warmup=0 --quiet --timeout=60)
# the C backends of --impl=all (the seed variants are C-side): those --list names, less go
nc=$("$bin" --list | awk '/^backends:/ {b = 1; next} b && /^  [a-z]/ && $1 != "go" {n++} END {print n}')

runs() {  # runs DESCRIPTION ARGS...: exit 0
    local what="$1"; shift
    "$bin" "$@" >"$tmp/out" 2>"$tmp/err"
    local rc=$?
    if [ $rc -eq 0 ]; then ok; else bad "$what: rc=$rc"; sed 's/^/    /' "$tmp/err" | head -5; fi
}

caught() {  # caught DESCRIPTION REGEX ARGS...: exit 1, stderr matches REGEX on every backend
    local what="$1" re="$2"; shift 2
    "$bin" "$@" >"$tmp/out" 2>"$tmp/err"
    local rc=$? n
    n=$(grep -cE "$re" "$tmp/err")
    if [ $rc -eq 1 ] && [ "$n" -eq "$nc" ]; then ok
    else bad "$what: rc=$rc (want 1), $n of $nc backends report /$re/"; sed 's/^/    /' "$tmp/err" | head -5; fi
}

declare -A params=(
    [errgroup]="tasks limit fail_at"
    [shutdown]="drain_ms"
    [contextio]="chunk cancel_pct"
    [contextio_net]="deadline_ms"
)
for p in errgroup shutdown contextio contextio_net; do
    help=$("$bin" --pattern=$p --help)
    for k in ${params[$p]}; do
        echo "$help" | grep -qE "^    $k " && ok || bad "--pattern=$p --help does not list $k"
    done
    key=orchestration_$p
    "$bin" --pattern=$key --help | head -1 | grep -q "^$p (orchestration)" && ok || bad "--pattern=$key does not select $p"
    runs "$key (seed key) runs" --pattern=$key "${tiny[@]}" --items=200
    runs "$p time-based" --pattern=$p "${tiny[@]}" --duration=50ms
done

# count-based runs, a few shapes each (capacities 0 and 1, oversubscribed)
runs "errgroup" --pattern=errgroup "${tiny[@]}" --items=2000
runs "errgroup limit + failure" --pattern=errgroup "${tiny[@]}" --items=2000 --threads=8 --set tasks=7,16 \
    --set limit=1,3 --set fail_at=1,5
runs "errgroup no work, one runner" --pattern=errgroup "${tiny[@]}" --items=500 --threads=1 --work-ns=0 --set fail_at=2
runs "shutdown" --pattern=shutdown "${tiny[@]}" --items=2000 --capacity=0,1,64
runs "shutdown hard cancel" --pattern=shutdown "${tiny[@]}" --items=10 --threads=2 --capacity=8 \
    --set drain_ms=0 --work-ns=100000000
runs "contextio" --pattern=contextio "${tiny[@]}" --items=2000 --capacity=0,1,4
runs "contextio small chunks" --pattern=contextio "${tiny[@]}" --items=500 --payload=100 --set chunk=7 \
    --set cancel_pct=0,1,99,100
runs "contextio_net" --pattern=contextio_net "${tiny[@]}" --items=300 --threads=1,3 --payload=8,4096
runs "contextio_net expired deadline" --pattern=contextio_net "${tiny[@]}" --items=10 --set deadline_ms=0

# the seed variants are caught
caught "errgroup seed leaks the tasks in flight" "leaked [0-9]+ threads" --pattern=errgroup --variant=seed \
    "${tiny[@]}" --items=8 --threads=4 --set tasks=4 --set limit=2 --set fail_at=2 --work-ns=2000000000
caught "shutdown seed leaks workers and loses jobs" "[0-9]+ worker threads still running \(leaked\) and [0-9]+ accepted jobs.*\(lost\)" \
    --pattern=shutdown --variant=seed "${tiny[@]}" --items=10 --threads=2 --capacity=8 --set drain_ms=0 \
    --work-ns=100000000
caught "contextio seed: bytes written != reported, helper leaked" "bytes written [0-9]+ != bytes reported 0.*leaked 1 thread" \
    --pattern=contextio --variant=seed "${tiny[@]}" --items=64 --capacity=4 --payload=65536 --set chunk=4096 \
    --set cancel_pct=50
# the same configurations pass with the default variant
runs "errgroup default, same shape" --pattern=errgroup "${tiny[@]}" --items=8 --threads=4 --set tasks=4 --set limit=2 \
    --set fail_at=2 --work-ns=2000000000
runs "contextio default, same shape" --pattern=contextio "${tiny[@]}" --items=64 --capacity=4 --payload=65536

# contextio_net has no seed variant
"$bin" --pattern=contextio_net --variant=seed --items=10 >"$tmp/out" 2>"$tmp/err"
[ $? -eq 2 ] && ok || bad "contextio_net --variant=seed is not bad input"

echo "$passes passed, $fails failed"
[ $fails -eq 0 ]
