#!/usr/bin/env bash
# cpbench's machine-readable outputs (docs/outputs.md): --json is valid Google
# Benchmark JSON (one entry per repetition, then mean/median/stddev/cv per
# configuration, every field Google Benchmark's compare.py reads); --hgrm
# writes one HdrHistogram classic percentile file per configuration; neither
# ever leaves a partial file under its final name. docs/csv.md documents
# every CSV column, its knob rows as runtime/knobs.def has them.
set -u
bin="$1"
# the impls --impl=all runs: the backends --list names, go only where it is built
nimpl=$("$bin" --list | awk '/^backends:/ {b = 1; next} b && /^  [a-z]/ && !/not built/ {n++} END {print n}')
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0 passes=0
py=python3
command -v python3 >/dev/null || py=/usr/bin/python3

check() {  # check DESCRIPTION COMMAND...: the command must succeed
    local what="$1"; shift
    if "$@"; then passes=$((passes + 1)); else echo "FAIL: $what"; fails=$((fails + 1)); fi
}

bad() {   # bad EXPECTED_WORD ARGS...: exit 2, one stderr line containing the word
    local word="$1"; shift
    "$bin" "$@" >"$tmp/out" 2>"$tmp/err"
    local rc=$?
    if [ $rc -ne 2 ] || [ "$(wc -l <"$tmp/err")" -ne 1 ] || ! grep -q -- "$word" "$tmp/err" || [ -s "$tmp/out" ]; then
        echo "FAIL: cpbench $* -> rc=$rc, want rc=2 and one line naming '$word':"
        sed 's/^/    /' "$tmp/err" | head -5
        fails=$((fails + 1))
    else
        passes=$((passes + 1))
    fi
}

bad "--json" --pattern=chan --json=/nonexistent-dir/x.json --items=1000
bad "--json" --pattern=chan --json= --items=1000
bad "--hgrm" --pattern=chan --hgrm=/nonexistent-dir/sub --items=1000
bad "--hgrm" --pattern=chan --hgrm= --items=1000
# a bad configuration is found after the JSON temporary is opened
bad "1 GiB" --pattern=chan --capacity=60000000 --payload=64 --json="$tmp/bad.json"
check "bad input leaves no JSON temporary" bash -c "! ls -a '$tmp' | grep -q 'bad\.json'"

# every impl (go included where built) x 2 producer counts, 3 repetitions each
"$bin" --pattern=chan --impl=all --producers=1,2 --consumers=1 --items=4000 --repeat=3 --warmup=0 \
    --json="$tmp/run.json" --hgrm="$tmp/hgrm" --quiet >"$tmp/out" 2>"$tmp/err"
rc=$?
check "sweep with --json --hgrm exits 0 (rc=$rc)" test $rc -eq 0

cat >"$tmp/check_json.py" <<'EOF'
import json, sys
path, nconf, reps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
d = json.load(open(path))
ctx = d["context"]
for k in ("date", "host_name", "executable", "num_cpus", "mhz_per_cpu", "cpu_scaling_enabled", "caches",
          "load_avg", "library_build_type", "kernel", "compiler", "allocator", "git_rev", "clock", "clock_ns"):
    assert k in ctx, "context lacks " + k
assert isinstance(ctx["caches"], list) and len(ctx["load_avg"]) == 3 and ctx["num_cpus"] >= 1
# each C backend's description, the futex one with its start-up probe of futex_waitv(2)
assert "futex_waitv(2)" in ctx.get("impl_futex", ""), "context lacks impl_futex with the futex_waitv probe"
bs = d["benchmarks"]
its = [b for b in bs if b["run_type"] == "iteration"]
aggs = [b for b in bs if b["run_type"] == "aggregate"]
assert len(its) == nconf * reps, "%d iteration entries, want %d" % (len(its), nconf * reps)
want_aggs = nconf * 4 if reps >= 2 else 0
assert len(aggs) == want_aggs, "%d aggregate entries, want %d" % (len(aggs), want_aggs)
# what compare.py (gbench/report.py, util.py) reads
common = ("name", "run_name", "run_type", "family_index", "per_family_instance_index", "repetitions",
          "threads", "iterations", "real_time", "cpu_time", "time_unit")
for b in bs:
    for k in common:
        assert k in b, "%s lacks %s" % (b.get("name"), k)
    assert b["time_unit"] == "ns" and b["repetitions"] == reps
    assert b["real_time"] > 0 and b["cpu_time"] >= 0 and b["iterations"] > 0
for b in its:
    assert b["name"] == b["run_name"] and b["name"].startswith("chan/impl:")
    assert "/producers:" in b["name"] and b["threads"] >= 2
    assert 0 <= b["repetition_index"] < reps
    for k in ("items_per_second", "p50_ns", "p90_ns", "p99_ns", "p999_ns", "max_ns"):
        assert k in b, "%s lacks %s" % (b["name"], k)
    assert abs(b["items_per_second"] * b["real_time"] / 1e9 - 1) < 1e-6
names = sorted({b["run_name"] for b in its})
assert len(names) == nconf, names
for n in names:
    idx = sorted(b["repetition_index"] for b in its if b["name"] == n)
    assert idx == list(range(reps)), (n, idx)
    keys = {(b["family_index"], b["per_family_instance_index"]) for b in bs if b["run_name"] == n}
    assert len(keys) == 1, (n, keys)
    if reps >= 2:
        got = {b["aggregate_name"]: b for b in aggs if b["run_name"] == n}
        assert sorted(got) == ["cv", "mean", "median", "stddev"], (n, sorted(got))
        for a, b in got.items():
            assert b["name"] == n + "_" + a
        rt = sorted(b["real_time"] for b in its if b["name"] == n)
        assert abs(got["mean"]["real_time"] - sum(rt) / reps) <= 1e-6 * rt[-1]
        assert rt[0] <= got["median"]["real_time"] <= rt[-1]
        assert got["cv"]["aggregate_unit"] == "percentage"
# distinct configurations have distinct indices
assert len({(b["family_index"], b["per_family_instance_index"]) for b in its}) == nconf
EOF
check "--json: valid, 18 repetitions + 24 aggregates, compare.py's fields" \
    $py "$tmp/check_json.py" "$tmp/run.json" $((2 * nimpl)) 3

"$bin" --pattern=chan --impl=futex --items=2000 --repeat=1 --warmup=0 --json="$tmp/one.json" --quiet
check "--json with --repeat=1: no aggregates" $py "$tmp/check_json.py" "$tmp/one.json" 1 1

nh=$(ls "$tmp/hgrm" 2>/dev/null | grep -c '\.hgrm$')
check "--hgrm: one file per configuration (got $nh)" test "$nh" -eq $((2 * nimpl))
check "--hgrm: file name <pattern>_<impl>_<config>.hgrm" \
    test -f "$tmp/hgrm/chan_futex_producers-2_consumers-1_capacity-1024_payload-16.hgrm"
for f in "$tmp"/hgrm/*.hgrm; do
    b=$(basename "$f")
    check "$b: classic header" test "$(head -1 "$f")" = "       Value   Percentile   TotalCount 1/(1-Percentile)"
    check "$b: blank line after the header" test -z "$(sed -n 2p "$f")"
    check "$b: footer" bash -c "tail -3 '$f' | head -1 | grep -q '^#\[Mean    = ' &&
        tail -2 '$f' | head -1 | grep -q '^#\[Max     = .*, Total count    = ' &&
        tail -1 '$f' | grep -q '^#\[Buckets = .*, SubBuckets     = '"
    check "$b: last row is 100% with inf: '$(tail -4 "$f" | head -1)'" \
        bash -c "tail -4 '$f' | head -1 | grep -Eq '^ *[0-9.]+ +1\.000000 +[0-9]+ +inf$'"
    # 12-wide columns (a value of 100 ms or more is wider)
    check "$b: rows are 51 characters" bash -c "sed -n '3,\$p' '$f' | grep -v '^#' | awk 'length(\$0) != 51 && length(\$1) < 12 {exit 1}'"
done
check "no temporaries left" bash -c "! ls -a '$tmp' '$tmp/hgrm' | grep -q '\.tmp\.'"

# no latency samples: no .hgrm files
"$bin" --pattern=chan --impl=futex --items=2000 --repeat=1 --warmup=0 --lat-sample=0 --hgrm="$tmp/nolat" --quiet
check "--lat-sample=0 writes no .hgrm" test -z "$(ls "$tmp/nolat")"

# the watchdog stops a run: neither file appears, no temporary stays
"$bin" --pattern=chan --impl=futex --items=1000G --timeout=300ms --repeat=1 --warmup=0 \
    --json="$tmp/wd.json" --hgrm="$tmp/wdh" >"$tmp/out" 2>"$tmp/err"
rc=$?
check "watchdog exits 1 (rc=$rc)" test $rc -eq 1
check "watchdog: no JSON file" test ! -e "$tmp/wd.json"
check "watchdog: no temporaries" bash -c "! ls -a '$tmp' '$tmp/wdh' | grep -q '\.tmp\.'"

# SIGTERM (SIGINT alike; a background job ignores SIGINT) in the middle of a
# sweep: no JSON under the final name, no temporary
"$bin" --pattern=chan --impl=all --items=50M --repeat=5 --warmup=0 --json="$tmp/int.json" --quiet \
    >/dev/null 2>&1 &
pid=$!
sleep 0.5
kill -TERM $pid
wait $pid
rc=$?
check "SIGTERM ends the run by the signal (rc=$rc)" test $rc -eq 143
check "SIGTERM: no JSON file" test ! -e "$tmp/int.json"
check "SIGTERM: no temporary" bash -c "! ls -a '$tmp' | grep -q '\.tmp\.'"

# docs/csv.md documents every CSV column, and its knob rows are those of
# runtime/knobs.def (the one list): the same columns, units and meanings
src=$(cd "$(dirname "$0")/../.." && pwd)
"$bin" --pattern=chan --impl=mutex --items=100 --repeat=1 --warmup=0 --quiet --csv="$tmp/doc.csv"
check "docs/csv.md documents every CSV column, its knob rows as runtime/knobs.def" \
    "$py" - "$src" "$tmp/doc.csv" <<'PY'
import re, sys
src, csvf = sys.argv[1], sys.argv[2]
rows = {}
for m in re.finditer(r"^\|\s*([^|]+?)\s*\|\s*([^|]*?)\s*\|\s*(.*?)\s*\|$", open(src + "/docs/csv.md").read(), re.M):
    for name in m.group(1).split(", "):
        rows[name] = (m.group(2), m.group(3))
bad = ["column %s: not in docs/csv.md" % c for c in open(csvf).readline().strip().split(",") if c not in rows]
# X(ID, field, "flag", "metavar", lo, hi, draw, "label", show, "unit", "note", "doc")
text = open(src + "/runtime/knobs.def").read().replace("\\\n", " ")
text = text[text.index("#define WL_KNOB_LIST(X)") + 24:]
knobs = [k for k in text[:text.index("\n")].split("X(")[1:]]
for k in knobs:
    field = k.split(",")[1].strip()
    strs = re.findall(r'"((?:[^"\\]|\\.)*)"', k)
    if len(strs) != 6 or rows.get(field) != (strs[3], strs[5]):
        bad.append("knob %s: docs/csv.md %r, runtime/knobs.def %r" % (field, rows.get(field), strs))
if len(knobs) < 7:
    bad.append("%d knobs parsed from runtime/knobs.def" % len(knobs))
for b in bad:
    print("  " + b)
sys.exit(1 if bad else 0)
PY

echo "$passes passed, $fails failed"
[ $fails -eq 0 ]
