#!/usr/bin/env bash
# scripts/plot.py renders each kind of figure from a short cpbench run: valid
# PNGs (magic bytes) of non-trivial size. Exit 77 (ctest: skipped) without
# matplotlib.
set -u
bin="$1"
plot="$2"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0 passes=0

have_mpl=0
for py in /usr/bin/python3 python3; do
    if command -v "$py" >/dev/null && "$py" -c 'import matplotlib' 2>/dev/null; then have_mpl=1; fi
done
if [ $have_mpl -eq 0 ]; then
    echo "skipped: no matplotlib (apt-get install -y python3-matplotlib)"
    exit 77
fi

check() {
    local what="$1"; shift
    if "$@"; then passes=$((passes + 1)); else echo "FAIL: $what"; fails=$((fails + 1)); fi
}

png_ok() {  # png_ok FILE: PNG signature and more than 10 kB
    [ -f "$1" ] && [ "$(head -c 8 "$1" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ] &&
        [ "$(stat -c %s "$1")" -gt 10240 ]
}

for run in a b; do
    "$bin" --pattern=chan --impl=all --producers=1,2 --consumers=1 --items=4000 --repeat=2 --warmup=0 \
        --csv="$tmp/$run.csv" --hgrm="$tmp/hgrm_$run" --quiet >/dev/null 2>"$tmp/err" ||
        { echo "FAIL: cpbench run $run"; cat "$tmp/err"; exit 1; }
done

check "plot.py with CSV + .hgrm exits 0" "$plot" "$tmp/a.csv" --hgrm "$tmp/hgrm_a" --out "$tmp/p1" --svg
for kind in throughput latency backends; do
    check "${kind}_chan.png is a PNG > 10 kB" png_ok "$tmp/p1/${kind}_chan.png"
    check "${kind}_chan.svg written" test -s "$tmp/p1/${kind}_chan.svg"
done
check "plot.py with CSV only (latency from the CSV) exits 0" "$plot" "$tmp/a.csv" --out "$tmp/p2"
check "latency from the CSV is a PNG > 10 kB" png_ok "$tmp/p2/latency_chan.png"
check "plot.py --compare exits 0" "$plot" --compare "$tmp/a.csv" "$tmp/b.csv" --out "$tmp/p3"
check "compare.png is a PNG > 10 kB" png_ok "$tmp/p3/compare.png"

# bad input: exit 2 with a message
"$plot" "$tmp/nosuch.csv" --out "$tmp/p4" 2>"$tmp/err"
check "a missing CSV: exit 2" test $? -eq 2
check "a missing CSV: named" grep -q "nosuch.csv" "$tmp/err"

# the launcher's message, where some python3 lacks matplotlib (re-exec off)
for py in python3 /usr/bin/python3; do
    if command -v "$py" >/dev/null && ! "$py" -c 'import matplotlib' 2>/dev/null; then
        CPBENCH_PLOT_REEXEC=1 "$py" "$plot" "$tmp/a.csv" --out "$tmp/p5" 2>"$tmp/err"
        rc=$?
        check "no matplotlib: exit 2 (rc=$rc)" test $rc -eq 2
        check "no matplotlib: the install hint" grep -qx \
            "plot.py: matplotlib not found; install it with: apt-get install -y python3-matplotlib" "$tmp/err"
        break
    fi
done

echo "$passes passed, $fails failed"
[ $fails -eq 0 ]
