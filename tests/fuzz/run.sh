#!/bin/sh
# tests/fuzz/run.sh DIR — run each libFuzzer binary DIR/fuzz_* for
# $FUZZ_SECONDS (default 60) from a copy of its seed corpus; new inputs it
# finds go to a scratch corpus, crashes to $FUZZ_OUT. `make fuzz` calls it.
# Exits 1 if any target crashed.
dir=${1:?usage: run.sh DIR}
secs=${FUZZ_SECONDS:-60}
out=${FUZZ_OUT:-build-fuzz/findings}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
rc=0
for bin in "$dir"/fuzz_*; do
    [ -x "$bin" ] || continue
    t=$(basename "$bin"); name=${t#fuzz_}
    work=$(mktemp -d "${TMPDIR:-/tmp}/herd-fuzz-$name.XXXXXX")
    echo "=== $t for ${secs}s"
    if ! "$bin" -max_total_time="$secs" -print_final_stats=1 -artifact_prefix="$out/$name-" \
            "$work" "$here/corpus/$name" 2>"$out/$name.log"; then
        echo "*** $t crashed; see $out/$name.log and $out/$name-*"
        tail -n 30 "$out/$name.log"
        rc=1
    else
        grep -E 'stat::number_of_executed_units|Done [0-9]+ runs' "$out/$name.log" | tail -n 2
    fi
    rm -rf "$work"
done
exit $rc
