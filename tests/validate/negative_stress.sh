#!/usr/bin/env bash
# Negative controls through the stress gate (chaos builds only): each
# deliberately broken backend must be caught within a bounded number of
# iterations — broken-publish by the invariant checks (or, under TSan, by a
# data-race report), broken-lostwake by the watchdog (a run past its --timeout) — and the run
# must print a replay line. The real backends pass the same seeds (test_stress).
bin="$1"
fails=0 passes=0
expect_caught() {   # NAME EXPECT_REGEX ARGS...
    local name="$1" re="$2"; shift 2
    out=$(TSAN_OPTIONS="halt_on_error=1 exitcode=66" "$bin" stress --pattern=chan,workerpool --seed=11 \
          --iterations=200 --until-fail "$@" 2>&1)
    rc=$?
    if [ $rc -ne 0 ] && grep -Eq "$re" <<<"$out" && grep -q "replay: cpbench stress" <<<"$out"; then
        echo "ok: $name caught (rc=$rc): $(grep -Em1 "$re" <<<"$out" | cut -c1-140)"
        passes=$((passes + 1))
    elif [ $rc -eq 66 ] && grep -q "ThreadSanitizer: data race" <<<"$out"; then
        echo "ok: $name caught by TSan (rc=$rc)"
        passes=$((passes + 1))
    else
        echo "FAIL: $name was not caught (rc=$rc)"; echo "$out" | tail -5
        fails=$((fails + 1))
    fi
}
expect_caught broken-publish "stress: FAIL|ThreadSanitizer" --impl=broken-publish --timeout=20
expect_caught broken-lostwake "watchdog: .* exceeded --timeout" --impl=broken-lostwake --timeout=3
echo "$passes passed, $fails failed"
[ $fails -eq 0 ]
