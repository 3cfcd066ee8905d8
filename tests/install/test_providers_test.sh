#!/bin/sh
# tests/install/test_providers_test.sh — `herd providers test`, the
# conformance suite for provider authors, run as they run it: on
# local.LocalCluster by name (it conforms), on a provider that breaks a rule
# on purpose (tests/conformance/sloppy.c: it must fail, naming the rule), and
# with bad usage; and that docs/providers.md lists every rule the suite checks
# and every worker-mode flag that `PROG --herd-worker --help` prints.
# Run by `make test` (tests/run.sh) with BUILD set.
cd "$(dirname "$0")/../.." || exit 1
b=${BUILD:-build}
herd=$b/bin/herd
T="timeout -k 5 300"
fail() { echo "FAIL $*"; exit 1; }
unset HERD_PROVIDER_PATH

echo "--- herd providers test local.LocalCluster"
out=$($T "$herd" providers test local.LocalCluster) || fail "local.LocalCluster does not conform: $out"
echo "$out"
echo "$out" | grep -q "^local.LocalCluster: conforms" || fail "no 'conforms' line"
for id in $("$herd" providers rules | awk '{ print $1 }'); do
    echo "$out" | grep -q "^  $id  *ok" || fail "rule $id not reported ok"
done

echo "--- herd providers test sloppy.so (breaks rule retire_unknown)"
out=$($T "$herd" providers test "$b/tests/conformance/sloppy.so" 2>/dev/null) && fail "sloppy.so passed: $out"
echo "$out"
echo "$out" | grep -q "FAILED  *rule retire_unknown (.*no-such-worker" || fail "the failure does not name rule retire_unknown"
echo "$out" | grep -q "sloppy.so:SloppyCluster: does not conform" || fail "no 'does not conform' line"

echo "--- bad usage"
"$herd" providers test >/dev/null 2>&1; [ $? -eq 2 ] || fail "herd providers test without a provider: expected exit 2"
"$herd" providers test local.LocalCluster --workers 0 >/dev/null 2>&1; [ $? -eq 2 ] || fail "--workers 0: expected exit 2"
out=$("$herd" providers test no.SuchCluster 2>&1) && fail "no.SuchCluster passed"
echo "$out" | grep -q 'unknown cluster_class "no.SuchCluster"' || fail "no.SuchCluster: $out"

echo "--- docs/providers.md lists every rule and every worker-mode flag"
for id in $("$herd" providers rules | awk '{ print $1 }'); do
    grep -q "^| \`$id\` |" docs/providers.md || fail "docs/providers.md: no row for rule $id"
done
help=$($T "$b/examples/quickstart" --herd-worker --help) || fail "--herd-worker --help: exit $?"
echo "$help" | grep -q -- "--herd-address" || fail "--herd-worker --help: no --herd-address in: $help"
for flag in $(echo "$help" | grep -o -- '--herd-[a-z-]*' | sort -u) \
            $(echo "$help" | grep -o 'HERD_[A-Z_]*' | sort -u); do
    grep -q -- "$flag" docs/providers.md || fail "docs/providers.md does not mention $flag"
done
echo "ok   herd providers test"
