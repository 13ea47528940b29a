#!/usr/bin/env bash
# The flow patterns generator, pipeline, fan_out_fan_in and bridge (issue 11):
# each runs clean on every backend at tiny sizes, count-based and time-based,
# with and without a mid-stream cancel; --help lists its parameters; its seed
# key selects it; and its seed variant (--variant=seed, the seeds' send
# without a ctx case) is caught on every backend: exit 1, a FAIL line per
# backend naming the leaked threads. Nothing here depends on timing beyond
# the patterns' own 1 s cancel bound.
set -u
bin="$1"
# the impls --impl=all runs: the backends --list names, go only where it is built
nimpl=$("$bin" --list | awk '/^backends:/ {b = 1; next} b && /^  [a-z]/ && !/not built/ {n++} END {print n}')
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0 passes=0

run() {  # run ARGS...: sets rc, stdout in $tmp/out, stderr in $tmp/err
    "$bin" "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
}
check() {  # check DESCRIPTION COMMAND...
    local what="$1"; shift
    if "$@"; then passes=$((passes + 1)); else
        echo "FAIL: $what"; sed 's/^/    /' "$tmp/out" "$tmp/err" | head -20; fails=$((fails + 1)); fi
}
fails_named() {  # fails_named N REGEX: N FAIL lines on stderr, each matching REGEX
    [ "$(grep -c 'FAIL' "$tmp/err")" -eq "$1" ] && [ "$(grep 'FAIL' "$tmp/err" | grep -Ec "$2")" -eq "$1" ]
}

tiny=(--impl=all --repeat=1 --warmup=0 --quiet)

# pattern | seed key | its parameters | extra sweeps for the clean runs | what makes the seed variant show
patterns=(
    "generator|flows_generator|start step|--threads=1,3 --capacity=0,1,8|"
    "pipeline|flows_pipeline|stages width cancel_at|--producers=1,2 --capacity=0,1 --set stages=0,2 --set width=1,2 --set cancel_at=0,50|--set cancel_at=50"
    "fan_out_fan_in|flows_fan_out_fan_in|merge cancel_at|--threads=1,3 --capacity=0,1 --set merge=0,1 --set cancel_at=0,50|--set cancel_at=50"
    "bridge|flows_bridge|inner cancel_at|--producers=1,2 --capacity=0,1 --set inner=1,5 --set cancel_at=0,50|--set cancel_at=50"
)

# seed keys (`--pattern=flows_pipeline`) come with the catalogue's aliases
aliases=1
"$bin" --pattern=pools_workerpool --help >/dev/null 2>&1 || aliases=0
[ $aliases = 1 ] || echo "SKIP: this cpbench has no seed-key aliases (--pattern=pools_workerpool fails)"

for entry in "${patterns[@]}"; do
    IFS='|' read -r p key params sweep showit <<<"$entry"
    read -r -a sweep_a <<<"$sweep"
    read -r -a showit_a <<<"$showit"

    run --pattern="$p" "${tiny[@]}" --items=300
    check "$p: --impl=all at the defaults exits 0 (rc=$rc)" test $rc -eq 0
    run --pattern="$p" "${tiny[@]}" --items=200 "${sweep_a[@]}"
    check "$p: the sweep $sweep exits 0 on every backend (rc=$rc)" test $rc -eq 0
    run --pattern="$p" "${tiny[@]}" --duration=0.05
    check "$p: a time-based run exits 0 (rc=$rc)" test $rc -eq 0

    run --pattern="$p" --help
    check "$p: --help exits 0 (rc=$rc)" test $rc -eq 0
    for k in $params; do
        check "$p: --help lists the parameter $k" grep -Eq "^ +$k +" "$tmp/out"
    done

    if [ $aliases = 1 ]; then
        run --pattern="$key" "${tiny[@]}" --items=200
        check "$p: --pattern=$key (its seed key) runs it (rc=$rc)" test $rc -eq 0
        run --list
        check "$p: --list shows its seed key $key" grep -q "$key" "$tmp/out"
    fi

    # the seed variant: a leak on every backend, counted, released, reported
    run --pattern="$p" "${tiny[@]}" --items=400 --capacity=0 --variant=seed "${showit_a[@]}"
    check "$p: --variant=seed exits 1 (rc=$rc)" test $rc -eq 1
    check "$p: --variant=seed names the leaked threads on each of the $nimpl impls" \
        fails_named $nimpl "$p leaked [1-9][0-9]* of [0-9]+ .*threads"
    run --pattern="$p" --impl=futex --repeat=1 --warmup=0 --items=400 --capacity=0 --variant=seed \
        "${showit_a[@]}" --csv=-
    check "$p: the seed variant's row says variant seed and FAIL" grep -q "seed.*FAIL\|FAIL.*seed" "$tmp/out"
done

# a buffered seed pipeline that buffers everything left does not leak (the
# bug needs a full channel): the variant is not a fixed failure
run --pattern=pipeline "${tiny[@]}" --items=100 --capacity=1024 --variant=seed --set cancel_at=50
check "pipeline: the seed variant with room for everything left exits 0 (rc=$rc)" test $rc -eq 0

# the measured figures: the cancel-to-exit latency is reported
run --pattern=generator --impl=futex --repeat=1 --warmup=0 --items=300 --csv=-
check "generator: the CSV carries cancel_to_exit_ns" grep -q "cancel_to_exit_ns" "$tmp/out"

# bad parameter values are bad input (exit 2), one line naming the parameter
for a in "pipeline --set width=0" "fan_out_fan_in --set merge=2" "bridge --set inner=0"; do
    read -r -a aa <<<"$a"
    run --pattern="${aa[0]}" "${aa[@]:1}" --items=10
    check "$a: exit 2 naming the parameter (rc=$rc)" bash -c "[ $rc -eq 2 ] && grep -q '${aa[2]%%=*}' '$tmp/err'"
done

echo "test_flows_a: $passes passed, $fails failed"
[ $fails -eq 0 ]
