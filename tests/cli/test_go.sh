#!/usr/bin/env bash
# The Go reference (--impl=go, docs/go.md): go rows in the CSV, JSON and
# .hgrm like any backend's, with the Go version and GOMAXPROCS; the
# histogram arrives exactly (the same latency count as C for the same
# knobs); every pattern has a Go twin that runs, and where the C run's op
# count is fixed by the knobs the Go run's is the same; the negative controls
# are caught (a lost item: exit 1; a data race under `stress --impl=go`:
# exit 1 with a replay line; a hang: the watchdog, the goroutines' stacks,
# exit 1); what Go cannot run is refused with exit 2; without the Go program
# --impl=all runs the C backends with a note and --impl=go exits 2.
# Skipped (77) when cpbench was built without a Go toolchain.
set -u
bin="$1" sanitize="${2:-}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0 passes=0
check() {
    local what="$1"; shift
    if "$@"; then passes=$((passes + 1)); else echo "FAIL: $what"; fails=$((fails + 1)); fi
}
py=/usr/bin/python3
if [ ! -x "$(dirname "$bin")/cpbench-go" ]; then
    echo "SKIP: cpbench was built without the Go reference (no Go toolchain)"
    exit 77
fi
small=(--repeat=1 --warmup=0 --quiet --timeout=60)
small_items() {  # small_items PATTERN: items=(--items=400) if the pattern counts items, else none
    items=()
    "$bin" --pattern="$1" --help | grep -q -- "--items" && items=(--items=400)
}

# ---- outputs: CSV, JSON, .hgrm with go rows ----
"$bin" --pattern=chan --impl=lockfree,go --items=20000 --lat-sample=10 --repeat=2 --warmup=0 \
    --csv="$tmp/a.csv" --json="$tmp/a.json" --hgrm="$tmp/h" --quiet 2>"$tmp/err"
rc=$?
check "chan --impl=lockfree,go with CSV, JSON, .hgrm: exit 0 (rc=$rc)" test $rc -eq 0
check "go rows: status OK, go_version, gomaxprocs, the same ops and latency count as C" $py - "$tmp/a.csv" <<'EOF'
import csv, sys, re
rows = list(csv.DictReader(open(sys.argv[1])))
go = [r for r in rows if r["impl"] == "go"]
c = [r for r in rows if r["impl"] == "lockfree"]
assert len(go) == 2 and len(c) == 2, (len(go), len(c))
for r in go:
    assert r["status"] == "OK", r["error"]
    assert re.match(r"go1\.\d+", r["go_version"]), r["go_version"]
    assert int(r["gomaxprocs"]) >= 1
    assert int(r["ops"]) == 20000 and float(r["ops_per_sec"]) > 0
    # 1 in 10 of 20000 items timed, in both: the histogram arrived whole
    assert int(r["lat_count"]) == 2000 == int(c[0]["lat_count"]), (r["lat_count"], c[0]["lat_count"])
    assert int(r["p50_ns"]) <= int(r["p99_ns"]) <= int(r["max_ns"])
    assert float(r["cpu_user_s"]) + float(r["cpu_sys_s"]) > 0
    assert int(r["run_threads"]) == 2
for r in rows:   # ops per CPU-second, on C and go rows alike
    assert float(r["ops_per_cpu_s"]) > 0, (r["impl"], r["ops_per_cpu_s"])
for r in c:
    assert r["go_version"] == "" and r["gomaxprocs"] == ""
EOF
check "JSON: go iterations and the Go version in the context" $py - "$tmp/a.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["context"]["go_version"].startswith("go1.") and d["context"]["gomaxprocs"] >= 1
names = [b["name"] for b in d["benchmarks"] if b["run_type"] == "iteration"]
assert sum(n.startswith("chan/impl:go/") for n in names) == 2, names
EOF
check ".hgrm for go written" test -s "$(ls "$tmp"/h/chan_go_*.hgrm 2>/dev/null | head -1)"
"$bin" --pattern=chan --impl=go --items=2000 --repeat=1 --warmup=0 >"$tmp/t.out" 2>&1
check "the table's header names the Go version and GOMAXPROCS" grep -q "^go: go1\.[0-9.]*, GOMAXPROCS=[0-9]" "$tmp/t.out"
check "the table has a go row" grep -q "^chan  *go  " "$tmp/t.out"

# ---- every pattern has a Go twin that runs; fixed op counts agree with C ----
"$bin" --list >"$tmp/list"
check "--list shows the go backend built" grep -q "^  go  *the Go reference: each pattern" "$tmp/list"
pats=$(awk '/^backends:/ {g=0; next} /^[a-z]+:$/ {g=1; next} g && /^  [a-z_0-9]+ / && !/seed key/ {print $1}' "$tmp/list")
# (the per-pattern loops below compare Go twins with the C run of one
# backend: what they test does not depend on how cpbench was built, so the
# sanitizer presets leave them to the release preset)
[ -n "$sanitize" ] && pats=chan
n=0
for p in $pats; do
    n=$((n + 1))
    small_items "$p"
    "$bin" --pattern="$p" --impl=lockfree,go "${items[@]}" "${small[@]}" --csv="$tmp/p.csv" 2>"$tmp/p.err"
    rc=$?
    check "$p: lockfree and go run ok (rc=$rc: $(head -c 300 "$tmp/p.err"))" test $rc -eq 0
    # (selectloop's count depends on the cancel: Go's select picks at
    # random between ctx.Done and a queued job, where C looks at the job
    # first, so jobs queued at the cancel may be left: counted, not lost)
    check "$p: go's op count equals C's where C's equals --items" $py - "$tmp/p.csv" "$p" <<'EOF'
import csv, sys
rows = {r["impl"]: r for r in csv.DictReader(open(sys.argv[1]))}
c, g = rows["lockfree"], rows["go"]
assert g["status"] == "OK", g["error"]
if c["items"] and c["ops"] == c["items"] and sys.argv[2] != "selectloop":
    assert g["ops"] == c["ops"], (g["ops"], c["ops"])
EOF
done
[ -z "$sanitize" ] && check "the catalogue has patterns (got $n)" test "$n" -ge 13

# the limiter: Go's golang.org/x/time/rate and C's bucket achieve the same
# rate, within 10% of the limit, on every backend (2000 tokens at 5000/s)
"$bin" --pattern=ratelimit --impl=all --items=2000 --set limit=5000 "${small[@]}" --csv="$tmp/rl.csv" 2>"$tmp/rl.err"
rc=$?
check "ratelimit on every impl: exit 0 (rc=$rc)" test $rc -eq 0
# every impl of --impl=all: the backends --list names (go among them here)
impls=$("$bin" --list | awk '/^backends:/ {b = 1; next} b && /^  [a-z]/ && !/not built/ {printf "%s%s", s, $1; s = ","}')
nc=$(echo "$impls" | tr ',' '\n' | grep -cvx go)   # the C backends
check "ratelimit: achieved rate within 10% of the limit on each impl, go included" $py - "$tmp/rl.csv" "$impls" <<'EOF'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert {r["impl"] for r in rows} >= set(sys.argv[2].split(",")) | {"go"}, [r["impl"] for r in rows]
for r in rows:
    m = dict(kv.split("=") for kv in r["metrics"].split(";"))
    a = float(m["achieved_rate"])
    assert abs(a - 5000) <= 500, (r["impl"], a)
EOF

# the seed variants: where C catches a pattern's seed pitfall, so does Go
# (at these sizes; retry's and shutdown's seeds are caught or not depending
# on timing, a retry exhausted late, a drain that misses its deadline, so
# their verdicts need not agree run by run and are left out here)
nseed=0 nfail=0
for p in $([ -z "$sanitize" ] && echo "$pats"); do
    case "$p" in retry|shutdown) continue ;; esac
    "$bin" --pattern="$p" --help | grep -q "variants (--variant=NAME):.* seed" || continue
    small_items "$p"
    "$bin" --pattern="$p" --impl=lockfree,go --variant=seed "${items[@]}" "${small[@]}" --csv="$tmp/s.csv" 2>/dev/null
    check "$p --variant=seed: go's verdict is lockfree's" $py - "$tmp/s.csv" <<'EOF'
import csv, sys
rows = {r["impl"]: r for r in csv.DictReader(open(sys.argv[1]))}
assert rows["go"]["status"] == rows["lockfree"]["status"], (rows["go"]["status"], rows["go"]["error"],
                                                            rows["lockfree"]["status"], rows["lockfree"]["error"])
EOF
    nseed=$((nseed + 1))
    grep -q ",go,.*,FAIL," "$tmp/s.csv" && nfail=$((nfail + 1))
done
[ -z "$sanitize" ] && check "most seed variants are caught in Go at these sizes ($nfail of $nseed)" test $((2 * nfail)) -ge "$nseed"

# ---- interrupted during a go run: the run stops, completed rows stay ----
# (SIGTERM: a background job ignores SIGINT. The child's answer to the
# stop must be read through the signal's EINTR, not wait for the watchdog.)
"$bin" --pattern=chan --impl=go --items=20M --repeat=50 --warmup=0 --timeout=20 --quiet --csv="$tmp/int.csv" \
    >/dev/null 2>"$tmp/int.err" &
pid=$!
for _ in $(seq 100); do [ "$(wc -l <"$tmp/int.csv" 2>/dev/null || echo 0)" -ge 2 ] && break; sleep 0.1; done
kill -TERM $pid
wait $pid
rc=$?
check "SIGTERM during a go run: exit 143 (rc=$rc), not the watchdog" test $rc -eq 143
check "... the completed rows kept" test "$(wc -l <"$tmp/int.csv")" -ge 2
check "... no watchdog report" bash -c "! grep -q watchdog '$tmp/int.err'"

# ---- negative controls ----
CPBENCH_GO_FAULT=lose "$bin" --pattern=chan --impl=go --items=5000 "${small[@]}" 2>"$tmp/err"
rc=$?
check "a lost item in the Go twin: exit 1 (rc=$rc)" test $rc -eq 1
check "... reported as a count failure" grep -q "FAIL chan impl=go .*count: received 4999 items, sent 5000" "$tmp/err"
CPBENCH_GO_FAULT=race "$bin" stress --pattern=chan --impl=go --iterations=3 --seed=1 >"$tmp/out" 2>"$tmp/err"
rc=$?
check "a data race in the Go twin: stress exits 1 (rc=$rc)" test $rc -eq 1
check "... the race detector's report" grep -q "WARNING: DATA RACE" "$tmp/err"
check "... and the replay line" grep -q "replay: cpbench stress --pattern=chan --impl=go --seed=1 --iteration=" "$tmp/err"
"$bin" stress --pattern=chan --impl=go --iterations=10 --seed=1 >"$tmp/out" 2>"$tmp/err"
rc=$?
check "stress --impl=go without a fault: exit 0 (rc=$rc)" test $rc -eq 0
check "... no race report" bash -c "! grep -q 'DATA RACE' '$tmp/err'"
CPBENCH_GO_FAULT=hang "$bin" --pattern=chan --impl=go --items=5000 --repeat=1 --warmup=0 --quiet --timeout=1 2>"$tmp/err"
rc=$?
check "a hang in the Go twin: the watchdog exits 1 (rc=$rc)" test $rc -eq 1
check "... naming the run" grep -q "watchdog: chan on go exceeded --timeout=1 s" "$tmp/err"
check "... with the goroutines' stacks from the Go runtime" grep -q "^goroutine [0-9]* \[" "$tmp/err"

# ---- refused: exit 2 with one line, before anything is written ----
echo keep >"$tmp/keep.csv"
"$bin" --pattern=chan --impl=go --payload=40 --items=100 --csv="$tmp/keep.csv" "${small[@]}" 2>"$tmp/err"
rc=$?
check "--payload=40 on go: exit 2 (rc=$rc)" test $rc -eq 2
check "... saying why" grep -q "payload=40: the Go version of chan has items of 8,16,24" "$tmp/err"
check "... the CSV untouched" grep -qx keep "$tmp/keep.csv"
"$bin" --pattern=chan --impl=lockfree,go --payload=40 --items=100 "${small[@]}" --csv="$tmp/skip.csv" 2>"$tmp/err"
rc=$?
check "--payload=40 under --impl=lockfree,go is still refused (go named) (rc=$rc)" test $rc -eq 2
"$bin" --pattern=chan --impl=all --payload=40 --items=100 "${small[@]}" --csv="$tmp/skip.csv" 2>"$tmp/err"
rc=$?
check "--payload=40 under --impl=all: go skipped with a note, C runs (rc=$rc)" test $rc -eq 0
check "... the note" grep -q "note: --impl=all skips go where --payload=40" "$tmp/err"
check "... $nc rows, no go" test "$(grep -c ',go,' "$tmp/skip.csv")" -eq 0 -a "$(wc -l <"$tmp/skip.csv")" -eq $((nc + 1))

# ---- without the Go program ----
CPBENCH_GO=/nonexistent/cpbench-go "$bin" --pattern=chan --impl=go --items=100 "${small[@]}" 2>"$tmp/err"
rc=$?
check "no Go program: --impl=go exits 2 (rc=$rc)" test $rc -eq 2
check "... saying what to install" grep -q "install golang-go" "$tmp/err"
check "... in one line" test "$(wc -l <"$tmp/err")" -eq 1
CPBENCH_GO=/nonexistent/cpbench-go "$bin" --pattern=chan --impl=all --items=100 "${small[@]}" --csv="$tmp/c.csv" 2>"$tmp/err"
rc=$?
check "no Go program: --impl=all runs the C backends (rc=$rc, $nc rows)" test $rc -eq 0 -a "$(wc -l <"$tmp/c.csv")" -eq $((nc + 1))
check "... with a one-line note" grep -q "note: --impl=all runs the C backends only" "$tmp/err"

echo "test_go: $passes passed, $fails failed"
[ $fails -eq 0 ]
