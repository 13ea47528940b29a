#!/usr/bin/env bash
# The catalogue's bookkeeping: every workloads/*.c is registered in
# workloads/list.h and has a row in the README's pattern table; every seed
# key that --list shows selects its pattern; --variant is checked against
# the selected patterns; the CSV carries the variant and metrics columns.
set -u
bin="$1" src="$2"
fails=0 passes=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ok() { passes=$((passes + 1)); }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }

for f in "$src"/workloads/*.c; do
    n=$(basename "$f" .c)
    grep -q "^WL($n)$" "$src/workloads/list.h" && ok || bad "workloads/$n.c is not registered in workloads/list.h"
    grep -q "^| \`$n\` |" "$src/README.md" && ok || bad "pattern $n has no row in README.md's pattern table"
done
while read -r n; do
    [ -f "$src/workloads/$n.c" ] && ok || bad "list.h registers $n but workloads/$n.c does not exist"
done < <(sed -n 's/^WL(\(.*\))$/\1/p' "$src/workloads/list.h")

# seed keys: each selects its pattern (--help names it)
keys=$("$bin" --list | sed -n 's/.*(seed key: \([a-z_]*\)).*/\1/p')
[ -n "$keys" ] && ok || bad "--list shows no seed key"
for k in $keys; do
    name=$("$bin" --list | grep -B1 "(seed key: $k)" | head -1 | awk '{print $1}')
    "$bin" --pattern="$k" --help | head -1 | grep -q "^$name (" && ok || bad "--pattern=$k does not select $name"
done

# --variant: unknown names are bad input; the columns exist
out=$("$bin" --pattern=chan --variant=nosuch 2>&1); rc=$?
[ $rc -eq 2 ] && echo "$out" | grep -q "has no variant 'nosuch'" && ok || bad "--variant=nosuch: rc=$rc, $out"
out=$("$bin" --suite=quick --variant=default 2>&1); rc=$?
[ $rc -eq 2 ] && ok || bad "--suite with --variant: rc=$rc"
hdr=$("$bin" --pattern=atomic --impl=mutex --items=1000 --repeat=1 --warmup=0 --quiet --csv=- 2>/dev/null | head -1)
echo "$hdr" | grep -q ",variant,metrics," && ok || bad "CSV header lacks variant,metrics: $hdr"

# chan --variant=bare: the bare-ring reference (a power-of-two capacity) and
# the bare rendezvous (capacity 0) run the chan's loops and checks (count,
# checksum, FIFO) in both modes and with several producers and consumers on
# a tiny ring and on the one hand-off slot
for cap in 2 0; do
    for mode in --items=60000 --duration=0.1; do
        "$bin" --pattern=chan --variant=bare --impl=futex --producers=3 --consumers=2 --capacity=$cap --payload=24 \
            "$mode" --repeat=1 --warmup=0 --quiet --csv="$tmp/bare.csv" 2>/dev/null && ok || bad "chan --variant=bare --capacity=$cap $mode failed"
        awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
                 $c["variant"] != "bare" || $c["status"] != "OK" || $c["ops"] + 0 < 1 { e = 1 } END { exit e || NR != 2 }' \
            "$tmp/bare.csv" && ok || bad "chan --variant=bare --capacity=$cap $mode: not one ok row of the bare variant: $(cat "$tmp/bare.csv")"
        rm -f "$tmp/bare.csv"
    done
done
out=$("$bin" --pattern=chan --variant=bare --capacity=100 2>&1); rc=$?
[ $rc -eq 2 ] && echo "$out" | grep -q "power of two" && ok || bad "chan --variant=bare --capacity=100: rc=$rc, $out"
out=$("$bin" --pattern=chan --variant=bare --capacity=0 --payload=57 2>&1); rc=$?
[ $rc -eq 2 ] && echo "$out" | grep -q "payload <= 56" && ok || bad "chan --variant=bare --capacity=0 --payload=57: rc=$rc, $out"

echo "$passes passed, $fails failed"
[ $fails -eq 0 ]
