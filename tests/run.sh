#!/bin/sh
# tests/run.sh — run every test binary given, each with a time limit, and
# finish with one summary line "N passed, N failed" (a binary counts once).
# Set TEST_TIMEOUT (seconds, default 300) to change the per-binary limit.
limit=${TEST_TIMEOUT:-300}
pass=0; fail=0; failed=""
for t in "$@"; do
    [ -x "$t" ] || continue
    echo "=== $t"
    if timeout -k 10 "$limit" "$t"; then pass=$((pass + 1)); else
        rc=$?; fail=$((fail + 1)); failed="$failed $(basename "$t")"
        [ $rc -eq 124 ] && echo "*** $t timed out after ${limit}s"
        echo "*** $t failed (exit $rc)"
    fi
done
[ -n "$failed" ] && echo "failed:$failed"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
