#!/bin/sh
# tests/fuzz/test_corpus.sh — every fuzz target replays its seed corpus
# (tests/fuzz/corpus/<target>/) through the driver build of the target: the
# inputs that once found bugs stay regression tests in every build, plain and
# sanitized. Run by `make test` (BUILD names the build directory).
BUILD=${BUILD:-build}
here=$(cd "$(dirname "$0")" && pwd)
rc=0; n=0
for src in "$here"/fuzz_*.c; do
    t=$(basename "$src" .c); name=${t#fuzz_}
    bin="$BUILD/tests/$t"
    if [ ! -x "$bin" ]; then echo "*** $bin is missing"; rc=1; continue; fi
    if [ ! -d "$here/corpus/$name" ]; then echo "*** no seed corpus for $t (tests/fuzz/corpus/$name)"; rc=1; continue; fi
    "$bin" "$here/corpus/$name" || { echo "*** $t failed on its corpus"; rc=1; }
    n=$((n + 1))
done
[ "$n" -gt 0 ] || { echo "*** no fuzz targets"; exit 1; }
exit $rc
