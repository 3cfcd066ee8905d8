#!/bin/sh
# tests/run.sh — run every test given (cmocka binaries and test scripts), each
# with a time limit, and finish with one summary line
#     "N passed, N failed, N skipped"
# where passed and failed count tests run (a binary or script counts once) and
# skipped counts the cmocka tests that called skip() (their binary still
# passes) plus the scripts that exited 77 (the Automake code for "skipped").
# A test that is missing or not executable fails; with HERD_NO_SKIP=1 so does
# a skipped one. Set TEST_TIMEOUT (seconds, default 300) to change the
# per-test limit.
limit=${TEST_TIMEOUT:-300}
pass=0; fail=0; skipped=0; failed=""; skips=""
out=$(mktemp "${TMPDIR:-/tmp}/herd-run.XXXXXX") || exit 1
trap 'rm -f "$out" "$out.rc"' EXIT
for t in "$@"; do
    echo "=== $t"
    if [ ! -f "$t" ] || [ ! -x "$t" ]; then
        fail=$((fail + 1)); failed="$failed $(basename "$t")"
        echo "*** $t is missing or not executable"
        continue
    fi
    # the output goes to the terminal as it comes and to $out for the count
    # of skipped tests; the exit status is the test's, not tee's
    { timeout -k 10 "$limit" "$t" 2>&1; echo $? > "$out.rc"; } | tee "$out"
    rc=$(cat "$out.rc")
    # cmocka ends each group with "[  SKIPPED ] N test(s), listed below:"
    n=$(sed -n 's/^\[  SKIPPED \] \([0-9][0-9]*\) test(s), listed below:.*/\1/p' "$out" |
        awk '{ s += $1 } END { print s + 0 }')
    if [ "$rc" = 77 ]; then
        n=$((n + 1)); rc=0
    fi
    [ "$n" -gt 0 ] && { skipped=$((skipped + n)); skips="$skips $(basename "$t")($n)"; }
    if [ "$rc" = 0 ]; then pass=$((pass + 1)); else
        fail=$((fail + 1)); failed="$failed $(basename "$t")"
        [ "$rc" = 124 ] && echo "*** $t timed out after ${limit}s"
        echo "*** $t failed (exit $rc)"
    fi
done
[ -n "$skips" ] && echo "skipped:$skips (the lines marked SKIPPED above say what to install)"
[ -n "$failed" ] && echo "failed:$failed"
echo "$pass passed, $fail failed, $skipped skipped"
# HERD_NO_SKIP=1 (CI, where `make deps` installed what every test needs): a
# skipped test is a failure, not a pass.
if [ "${HERD_NO_SKIP:-0}" = 1 ] && [ "$skipped" -gt 0 ]; then
    echo "*** $skipped test(s) skipped with HERD_NO_SKIP=1: install what they name (make deps)"
    exit 1
fi
[ "$fail" -eq 0 ]
