#!/bin/sh
# tests/install/test_install.sh — herd as a new user gets it: `make install`
# staged with DESTDIR into a temporary PREFIX (not the prefix the build was
# made for), then moved into place, and used from outside the source tree:
#   - the staged and the final tree each find their own providers and plugins
#     (herd providers, herd providers path);
#   - herd worker --help; herd providers test (the conformance suite);
#     herd config check on a profile (and a broken one);
#   - a program built in a temporary directory with
#     `pkg-config --cflags --libs herd` (PKG_CONFIG_PATH=PREFIX/lib/pkgconfig)
#     starts without LD_LIBRARY_PATH, runs a flow on a LocalCluster (its own
#     task and the installed hash plugin's) and, through `address`, on an
#     installed `herd scheduler` with a `herd worker --plugin hash`.
# Run by `make test` (tests/run.sh) with BUILD (and SAN) set.
cd "$(dirname "$0")/../.." || exit 1
src=$(pwd)
b=${BUILD:-build}
for tool in pkg-config cc make; do
    command -v $tool >/dev/null 2>&1 || { echo "FAIL $tool not found (make deps)"; exit 1; }
done
tmp=$(mktemp -d "${TMPDIR:-/tmp}/herd-install.XXXXXX") || exit 1
pids=""
cleanup() {
    for p in $pids; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
fail() { echo "FAIL $*"; exit 1; }
step() { echo "--- $*"; }
# the tree must be found by where it is, never through these
unset HERD_PROVIDER_PATH HERD_PLUGIN_PATH HERD_CONFIG HERD_PROFILE LD_LIBRARY_PATH MAKEFLAGS MAKELEVEL MFLAGS
prefix=$tmp/prefix
stage=$tmp/stage
T="timeout -k 5 120"

step "make install DESTDIR=$stage PREFIX=$prefix"
make -s -C "$src" install BUILD="$b" SAN="$SAN" DESTDIR="$stage" PREFIX="$prefix" >"$tmp/install.log" 2>&1 ||
    { cat "$tmp/install.log"; fail "make install"; }

# the staged tree, before it is moved: it finds its own files
out=$($T "$stage$prefix/bin/herd" providers path) || fail "staged herd providers path"
echo "$out" | grep -qxF "$stage$prefix/lib/herd/providers" ||
    fail "staged herd providers path: expected $stage$prefix/lib/herd/providers, got: $out"
mkdir -p "$(dirname "$prefix")" && mv "$stage$prefix" "$prefix" || fail "moving the staged tree"

step "herd providers"
out=$($T "$prefix/bin/herd" providers 2>&1) || { echo "$out"; fail "herd providers"; }
echo "$out"
echo "$out" | grep -q "^local\.LocalCluster .*$prefix/lib/herd/providers/local\.so$" ||
    fail "herd providers: local.LocalCluster not listed from $prefix/lib/herd/providers"

step "herd worker --help"
out=$($T "$prefix/bin/herd" worker --help) || fail "herd worker --help: exit $?"
echo "$out" | grep -q -- "--plugin" || fail "herd worker --help: no --plugin in: $out"

step "herd providers test local.LocalCluster (the conformance suite, installed)"
out=$(HERD_LOG_LEVEL=error $T "$prefix/bin/herd" providers test local.LocalCluster --workers 1 \
      --cluster-kwargs '{n_workers: 1, threads_per_worker: 1}') || fail "herd providers test: $out"
echo "$out" | grep -q "^local.LocalCluster: conforms" || fail "herd providers test: no 'conforms' in: $out"

step "herd config check"
cat > "$tmp/herd.yaml" <<'EOF'
profiles:
  small:
    description: one local worker
    cluster_class: local.LocalCluster
    cluster_kwargs: {n_workers: 1, threads_per_worker: 1}
EOF
HERD_CONFIG=$tmp/herd.yaml $T "$prefix/bin/herd" config check || fail "herd config check: exit $?"
sed 's/n_workers/n_wrokers/' "$tmp/herd.yaml" > "$tmp/bad.yaml"
out=$(HERD_CONFIG=$tmp/bad.yaml $T "$prefix/bin/herd" config check 2>&1) &&
    fail "herd config check accepted an unknown key: $out"
echo "$out" | grep -q "n_wrokers" || fail "herd config check: the error does not name n_wrokers: $out"

step "a program built outside the tree with pkg-config"
mkdir -p "$tmp/app" && cat > "$tmp/app/flow.c" <<'EOF'
/* A flow outside the herd tree: its own task and the hash plugin's, on a
 * temporary LocalCluster, or on the scheduler at argv[1]. */
#include <herd/herd.h>
#include <stdio.h>

static int cube(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    (void)ctx;
    int64_t x = herd_as_int(herd_at(args, 0));
    *out = herd_int(x * x * x);
    return 0;
}
HERD_TASK(cube);

int main(int argc, char **argv)
{
    herd_init(&argc, &argv);
    herd_err err = { 0 };
    herd_runner *r;
    herd_runner_opts o = { .cluster_kwargs = "{n_workers: 2, threads_per_worker: 1}" };
    if (argc > 1) o = (herd_runner_opts){ .address = argv[1] };
    if (herd_runner_new(&r, &o, &err) || herd_flow_begin(r, "outside", &err)) {
        fprintf(stderr, "flow: %s\n", err.msg);
        return 1;
    }
    herd_future *f;
    const herd_value *v;
    int rc = 0;
    if (argc == 1) {
        rc = herd_submit(r, "cube", herd_tuple("i", 3), &f, &err) ||
             herd_future_result(f, 60, &v, &err);
        if (!rc) printf("cube 3 = %lld\n", (long long)herd_as_int(v));
    }
    if (!rc) {
        rc = herd_submit(r, "hash.sha256", herd_tuple("s", "abc"), &f, &err) ||
             herd_future_result(f, 60, &v, &err);
        if (!rc) printf("sha256 abc = %s\n", herd_as_str(v));
    }
    if (rc) fprintf(stderr, "flow: %s\n", err.msg);
    herd_flow_end(r, rc != 0, &err);
    herd_runner_free(r);
    return rc != 0;
}
EOF
case "$SAN" in
    1) san="-fsanitize=address,undefined" ;;
    thread) san="-fsanitize=thread" ;;
    *) san="" ;;
esac
flags=$(PKG_CONFIG_PATH=$prefix/lib/pkgconfig pkg-config --cflags --libs herd) || fail "pkg-config herd"
echo "pkg-config --cflags --libs herd: $flags"
(cd "$tmp/app" && cc -std=c11 -Wall -Wextra -Werror $san flow.c $flags -o flow) || fail "building flow.c"
ldd "$tmp/app/flow" | grep -q "libherd\.so\.0 => $prefix/lib/libherd\.so\.0" ||
    fail "flow does not load libherd from $prefix/lib: $(ldd "$tmp/app/flow" | grep herd)"
sha=ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad
out=$(cd "$tmp/app" && $T ./flow) || fail "flow on a LocalCluster: exit $?: $out"
echo "$out"
echo "$out" | grep -qx "cube 3 = 27" || fail "flow: no 'cube 3 = 27'"
echo "$out" | grep -qx "sha256 abc = $sha" || fail "flow: no hash.sha256 result"

step "herd scheduler + herd worker --plugin hash + the flow through address"
sock=unix://$tmp/sched.sock
$T "$prefix/bin/herd" scheduler --listen "$sock" & pids="$pids $!"
$T "$prefix/bin/herd" worker "$sock" --plugin hash --nthreads 1 --no-reconnect & pids="$pids $!"
out=$(cd "$tmp/app" && $T ./flow "$sock") || fail "flow through $sock: exit $?: $out"
echo "$out"
echo "$out" | grep -qx "sha256 abc = $sha" || fail "flow through $sock: no hash.sha256 result"
echo "ok   installed into $prefix (staged in $stage) and used from outside"
