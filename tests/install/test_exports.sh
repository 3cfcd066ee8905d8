#!/bin/sh
# tests/install/test_exports.sh — what the built shared objects export
# (nm -D --defined-only), checked against what each must: libherd.so only
# herd_* (the public API, HERD_API); each provider .so only herd_providers,
# the descriptors its sources declare with HERD_PROVIDER(sym) and helpers
# named after one of them for the herd command (SLURMCluster_job_script);
# each task plugin nothing (its tasks register through constructors).
# Anything more is a symbol that leaks into every program that loads it.
# Run by `make test` (tests/run.sh) with BUILD set; exits 77 (skipped)
# without nm.
cd "$(dirname "$0")/../.." || exit 1
b=${BUILD:-build}
if ! command -v nm >/dev/null 2>&1; then
    echo "*** SKIPPED: nm not found (apt-get install binutils)"; exit 77
fi
bad=0
# exports FILE: the names of the dynamic symbols FILE defines, sorted, but for
# those a sanitizer build adds (make test-asan, test-tsan)
exports() {
    nm -D --defined-only "$1" | awk 'NF >= 3 { print $3 }' |
        grep -Ev '^__(odr_asan\.|asan_|ubsan_|tsan_|sanitizer_)' | sort -u
}
# check FILE EXPECTED-SORTED-LIST WHAT
check() {
    got=$(exports "$1") || { echo "FAIL $1: nm failed"; bad=1; return; }
    extra=$(printf '%s\n' "$got" | grep -vxF -e "$2" -e '' | grep -Ev "$3")
    missing=$(printf '%s\n' "$2" | grep -v '^$' | grep -vxF -e "$got" -e '')
    if [ -n "$extra" ] || [ -n "$missing" ]; then
        bad=1
        [ -n "$extra" ] && echo "FAIL $1 exports what it must not:" $extra
        [ -n "$missing" ] && echo "FAIL $1 does not export:" $missing
    else
        echo "ok   $1:" $(printf "%s\n" "$got" | grep -c .) symbols
    fi
}
lib=$b/lib/libherd.so
[ -f "$lib" ] || { echo "FAIL $lib: not built"; exit 1; }
check "$lib" "" '^herd_'
n=0
for d in providers/*/; do
    p=$(basename "$d"); so=$b/providers/$p.so; n=$((n + 1))
    [ -f "$so" ] || { echo "FAIL $so: not built"; bad=1; continue; }
    classes=$(sed -n 's/.*HERD_PROVIDER(\([A-Za-z_][A-Za-z0-9_]*\)).*/\1/p' "$d"*.c | sort -u)
    want=$( (echo herd_providers; echo "$classes") | sort -u)
    helpers=$(printf '%s\n' $classes | sed 's/.*/^&_[a-z][a-z_]*$/' | paste -sd'|')
    check "$so" "$want" "${helpers:-^$}"
done
for d in plugins/*/; do
    p=$(basename "$d"); so=$b/plugins/$p.so; n=$((n + 1))
    [ -f "$so" ] || { echo "FAIL $so: not built"; bad=1; continue; }
    check "$so" "" '^$'
done
[ "$n" -gt 0 ] || { echo "FAIL no providers or plugins found"; bad=1; }
exit $bad
