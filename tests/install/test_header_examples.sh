#!/bin/sh
# tests/install/test_header_examples.sh — the examples in the public headers'
# comments compile. An example is a run of comment lines indented by three or
# more spaces after the " *" that contains "int main(" (as at the top of
# include/herd/herd.h); each is compiled with -Wall -Wextra -Werror against
# include/ alone, after an #include of its header and <stdio.h>, <stdlib.h>,
# <string.h> (what an example may take for granted), and linked against the
# built libherd.so so an undeclared or misspelt function fails too.
# Run by `make test` (tests/run.sh) with BUILD set.
cd "$(dirname "$0")/../.." || exit 1
b=${BUILD:-build}
case "$SAN" in
    1) san="-fsanitize=address,undefined" ;;
    thread) san="-fsanitize=thread" ;;
    *) san="" ;;
esac
tmp=$(mktemp -d "${TMPDIR:-/tmp}/herd-hdr.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
n=0; bad=0
for h in include/herd/*.h; do
    # print each indented comment block as "#block" + its lines (prefix cut)
    awk '
        /^ \*    */ { if (!inb) { print "#block " NR; inb = 1 } sub(/^ \* /, ""); print; next }
        { inb = 0 }
    ' "$h" > "$tmp/blocks"
    awk -v dir="$tmp" -v hdr="$(basename "$h")" '
        /^#block / { f = dir "/" hdr "." $2 ".c"; printf "#include <herd/%s>\n#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n#line %d \"%s\"\n", hdr, $2, hdr > f; next }
        { print > f }
    ' "$tmp/blocks"
    for c in "$tmp/$(basename "$h")".*.c; do
        [ -f "$c" ] && grep -q "int main(" "$c" || continue
        n=$((n + 1))
        line=${c%.c}; line=${line##*.}
        if cc -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wno-unused-parameter $san -Iinclude "$c" \
               -L"$b/lib" -lherd -o "$c.bin" 2> "$c.err"; then
            echo "ok   $h:$line: the example compiles and links"
        else
            bad=1; echo "FAIL $h:$line: the example does not compile:"; cat "$c.err"
        fi
    done
done
[ "$n" -gt 0 ] || { echo "FAIL no example found in include/herd/*.h"; bad=1; }
exit $bad
