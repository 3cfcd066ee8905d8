#!/bin/sh
# tests/install/test_docs_map.sh — docs/ARCHITECTURE.md's map of the pieces
# names every source file of the tree, one line each: a file added without
# its line (or a line left for a file that is gone) fails `make test`.
# Seed corpora (tests/fuzz/corpus) and READMEs are data, not pieces.
cd "$(dirname "$0")/../.." || exit 1
command -v python3 >/dev/null || { echo "SKIPPED: needs python3"; exit 77; }
git rev-parse --git-dir >/dev/null 2>&1 || { echo "SKIPPED: not a git checkout"; exit 77; }
git ls-files core include providers plugins examples tests bench Makefile |
python3 -c '
import fnmatch, re, sys
doc = open("docs/ARCHITECTURE.md").read()
m = re.search(r"## The pieces, and where they live\n+```\n(.*?)\n```", doc, re.S)
if not m:
    sys.exit("docs/ARCHITECTURE.md: no map under \"The pieces, and where they live\"")
entries, stack = [], []          # stack of (indent, directory)
for line in m.group(1).splitlines():
    if not line.strip():
        continue
    indent = len(line) - len(line.lstrip(" "))
    name = line.strip().split()[0]
    while stack and stack[-1][0] >= indent:
        stack.pop()
    path = "".join(d for _, d in stack) + name
    if name.endswith("/"):
        stack.append((indent, name))
    entries.append(path)
files = [f.strip() for f in sys.stdin if f.strip()]
skip = lambda f: f.startswith("tests/fuzz/corpus/") or f.endswith("README.md")
missing = [f for f in files if not skip(f) and not any(fnmatch.fnmatch(f, e) for e in entries)]
stale = [e for e in entries if not e.endswith("/") and not any(fnmatch.fnmatch(f, e) for f in files)]
for f in missing: print("not in the map of docs/ARCHITECTURE.md:", f)
for e in stale: print("in the map but no such file:", e)
sys.exit(1 if missing or stale else 0)
'
