#!/usr/bin/env bash
# Under the tsan preset: the planted publish-before-write bug must produce a
# ThreadSanitizer data-race report (and a non-zero exit), proving the TSan
# gate can fail. The real backends run the same shapes report-free.
bin="$1"
out=$(TSAN_OPTIONS="halt_on_error=1 exitcode=66" "$bin" 2>&1)
rc=$?
if [ $rc -eq 66 ] && grep -q "ThreadSanitizer: data race" <<<"$out"; then
    echo "negative control: TSan reported the planted race (rc=$rc): 1 passed, 0 failed"
    exit 0
fi
echo "negative control: TSan did NOT report the planted race (rc=$rc)"
echo "$out" | tail -5
echo "0 passed, 1 failed"
exit 1
