/* tests/unit/test_registry.c — the provider registry: resolving names
 * (modules, files, aliases), the search path and its order, listing, and
 * every check with the message it gives. The providers are real shared
 * objects: the tests/fixtures sources built into $(BUILD)/tests/fixtures, and
 * $(BUILD)/providers/local.so. */
#include <herd/herd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* Under ASan: GCC 12's LeakSanitizer crashes at exit here ("Tracer caught
 * signal 11") while scanning the dynamic TLS of a process that has loaded
 * and unloaded many modules (the fixtures, every provider and their
 * libraries). That is a sanitizer bug, not a leak: with use_tls=0 every
 * other root (heap, globals, stacks) is still checked and the run is clean.
 * Only thread-local storage goes unscanned, in this binary only. */
__attribute__((visibility("default"))) const char *__lsan_default_options(void);
__attribute__((visibility("default"))) const char *__lsan_default_options(void) { return "use_tls=0"; }

static char build_dir[PATH_MAX], fixtures[PATH_MAX + 32];

/* binaries live in $(BUILD)/tests/ */
static void find_build_dir(void)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    assert_true(n > 0);
    exe[n] = '\0';
    *strrchr(exe, '/') = '\0';
    *strrchr(exe, '/') = '\0';
    snprintf(build_dir, sizeof build_dir, "%s", exe);
    snprintf(fixtures, sizeof fixtures, "%s/tests/fixtures", build_dir);
}

static int setup(void **state)
{
    setenv("HERD_PROVIDER_PATH", fixtures, 1);
    return 0;
}

#define assert_contains(hay, needle) do {                                            \
        if (!strstr((hay), (needle)))                                                  \
            fail_msg("expected \"%s\" in \"%s\"", (needle), (hay));                    \
    } while (0)

static void expect_error(const char *name, int code, const char *const *parts)
{
    herd_err err = { 0 };
    const herd_provider *p = (const herd_provider *)1;
    int rc = herd_provider_resolve(name, &p, &err);
    if (rc != -code) fail_msg("resolve(\"%s\") = %d, expected %d: %s", name, rc, -code, err.msg);
    assert_int_equal(err.code, -code);
    assert_null(p);
    for (; *parts; parts++) assert_contains(err.msg, *parts);
}

static void test_unknown_module(void **state)
{
    char tried[3 * PATH_MAX];
    snprintf(tried, sizeof tried, "no good_custm.so in %s, ", fixtures);
    const char *parts[] = {
        "unknown cluster_class \"good_custm.GoodCluster\": ", tried, "available: ",
        "good_custom.GoodCluster", "good_custom.SecondCluster", "good_alt.GoodCluster",
        "local.LocalCluster", "did you mean \"good_custom.GoodCluster\"?", NULL };
    expect_error("good_custm.GoodCluster", HERD_ENOPROVIDER, parts);
    /* a name far from everything gets no suggestion */
    herd_err err = { 0 };
    const herd_provider *p;
    assert_int_equal(herd_provider_resolve("zzzzqqqq.Xyzzy", &p, &err), -HERD_ENOPROVIDER);
    assert_null(strstr(err.msg, "did you mean"));
    assert_contains(err.msg, "no zzzzqqqq.so in ");
}

static void test_bad_names(void **state)
{
    const char *parts[] = { "expected \"module.Class\"", NULL };
    expect_error("a..B", HERD_ENOPROVIDER, parts);
    expect_error("../etc.Evil", HERD_ENOPROVIDER, parts);
    expect_error("x/y.Z", HERD_ENOPROVIDER, parts);
    expect_error("good_custom.9Bad", HERD_ENOPROVIDER, parts);
    /* a bare class name (other than LocalCluster) suggests the qualified one */
    const char *bare[] = { "unknown cluster_class \"SecondCluster\"", "expected \"module.Class\"",
                           "did you mean \"good_custom.SecondCluster\"?", NULL };
    expect_error("SecondCluster", HERD_ENOPROVIDER, bare);
    herd_err err = { 0 };
    const herd_provider *p;
    assert_int_equal(herd_provider_resolve("", &p, &err), -HERD_EARG);
    assert_int_equal(herd_provider_resolve(NULL, &p, &err), -HERD_EARG);
}

static void test_symbol_missing(void **state)
{
    char file[3 * PATH_MAX];
    snprintf(file, sizeof file, "%s/good_custom.so has no symbol \"NoSuchCluster\"", fixtures);
    const char *parts[] = { "provider \"good_custom.NoSuchCluster\": ", file,
                            "it exports: GoodCluster, SecondCluster", NULL };
    expect_error("good_custom.NoSuchCluster", HERD_ENOPROVIDER, parts);
}

static void test_bad_magic(void **state)
{
    char file[3 * PATH_MAX];
    snprintf(file, sizeof file, "(file %s/bad_magic.so)", fixtures);
    const char *parts[] = { "provider \"bad_magic.BadMagic\": bad magic \"XYZ!\", expected \"HRDP\"",
                            file, NULL };
    expect_error("bad_magic.BadMagic", HERD_EABI, parts);
}

static void test_abi_major(void **state)
{
    char want[3 * PATH_MAX];
    snprintf(want, sizeof want, "provider \"bad_abi.BadAbi\": ABI major 2, this herd speaks 1 "
             "(file %s/bad_abi.so)", fixtures);
    herd_err err = { 0 };
    const herd_provider *p;
    assert_int_equal(herd_provider_resolve("bad_abi.BadAbi", &p, &err), -HERD_EABI);
    assert_string_equal(err.msg, want);
}

static void test_struct_too_small(void **state)
{
    char need[64];
    /* the fixture claims this herd's ABI minor, whose hooks end at the struct's end */
    snprintf(need, sizeof need, "struct_size 40, ABI %d.%d needs at least %zu", HERD_PROVIDER_ABI_MAJOR,
             HERD_PROVIDER_ABI_MINOR, offsetof(herd_provider, scheduler_listen) + sizeof(void *));
    const char *parts[] = { "provider \"small_struct.SmallStruct\": ", need, "small_struct.so)", NULL };
    expect_error("small_struct.SmallStruct", HERD_EABI, parts);
}

static void test_name_mismatch(void **state)
{
    const char *parts[] = { "provider \"bad_name.Renamed\": found by symbol \"Renamed\" but names "
                            "itself \"Original\"", "bad_name.so)", NULL };
    expect_error("bad_name.Renamed", HERD_EABI, parts);
}

static void test_missing_hook(void **state)
{
    const char *parts[] = { "provider \"no_hook.NoRetire\": required hook retire is NULL",
                            "no_hook.so)", NULL };
    expect_error("no_hook.NoRetire", HERD_EABI, parts);
}

static void test_duplicate_param(void **state)
{
    const char *parts[] = { "provider \"dup_param.DupParam\": param \"n_workers\" is declared twice "
                            "(params[0] and params[2])", NULL };
    expect_error("dup_param.DupParam", HERD_EABI, parts);
}

static void test_unloadable_and_function(void **state)
{
    char file[3 * PATH_MAX];
    snprintf(file, sizeof file, "cannot load %s/unresolved.so: ", fixtures);
    const char *parts[] = { "provider \"unresolved.Unresolved\": ", file,
                            "herd_fixture_no_such_function", NULL };   /* dlerror's text */
    expect_error("unresolved.Unresolved", HERD_ENOPROVIDER, parts);
    const char *fn[] = { "symbol \"NotStruct\" is a function, not a herd_provider struct", NULL };
    expect_error("not_struct.NotStruct", HERD_EABI, fn);
}

static void test_file_symbol(void **state)
{
    const char *missing[] = { "provider \"/nonexistent/dir/x.so:GoodCluster\": cannot load "
                              "/nonexistent/dir/x.so: No such file or directory", NULL };
    expect_error("/nonexistent/dir/x.so:GoodCluster", HERD_ENOPROVIDER, missing);
    const char *rel[] = { "cannot load ./nofile.so: No such file or directory (relative to ", NULL };
    expect_error("nofile.so:GoodCluster", HERD_ENOPROVIDER, rel);
    const char *bad[] = { "expected \"path/to/file.so:Class\"", NULL };
    expect_error("x.so:", HERD_ENOPROVIDER, bad);

    char name[3 * PATH_MAX];
    snprintf(name, sizeof name, "%s/good_custom.so:SecondCluster", fixtures);
    const herd_provider *p, *q;
    herd_err err = { 0 };
    assert_int_equal(herd_provider_resolve(name, &p, &err), 0);
    assert_string_equal(p->name, "SecondCluster");
    /* the same object as through the module name */
    assert_int_equal(herd_provider_resolve("good_custom.SecondCluster", &q, &err), 0);
    assert_ptr_equal(p, q);
    /* a file's symbol is checked like any other */
    snprintf(name, sizeof name, "%s/bad_abi.so:BadAbi", fixtures);
    const char *abi[] = { "ABI major 2, this herd speaks 1", NULL };
    expect_error(name, HERD_EABI, abi);
}

static void test_good_module_works(void **state)
{
    const herd_provider *p;
    herd_err err = { 0 };
    assert_int_equal(herd_provider_resolve("good_custom.GoodCluster", &p, &err), 0);
    assert_string_equal(p->name, "GoodCluster");
    assert_string_equal(p->summary, "an in-memory cluster for tests");
    assert_int_equal(herd_provider_check(p, "good", &err), 0);
    /* cached: same pointer */
    const herd_provider *again;
    assert_int_equal(herd_provider_resolve("good_custom.GoodCluster", &again, NULL), 0);
    assert_ptr_equal(p, again);
    /* drive the hooks */
    herd_value *kw = herd_map();
    herd_map_set(kw, "n_workers", herd_int(3));
    herd_cluster *c;
    assert_int_equal(p->create(&c, kw, NULL, &err), 0);
    assert_int_equal(p->start(c, &err), 0);
    herd_worker_info info[8];
    size_t n = 0;
    assert_int_equal(p->status(c, info, 8, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(info[2].name, "good-2");
    assert_int_equal(p->retire(c, "good-1", &err), 0);
    assert_int_equal(p->status(c, info, 8, &n), 0);
    assert_int_equal(n, 2);
    p->close(c);
    herd_value_free(kw);
}

static void test_aliases(void **state)
{
    const herd_provider *a, *b, *c;
    herd_err err = { 0 };
    if (herd_provider_resolve("local.LocalCluster", &a, &err) != 0) fail_msg("%s", err.msg);
    assert_int_equal(herd_provider_resolve("distributed.LocalCluster", &b, &err), 0);
    assert_int_equal(herd_provider_resolve("LocalCluster", &c, &err), 0);
    assert_ptr_equal(a, b);
    assert_ptr_equal(a, c);
    assert_string_equal(b->name, "LocalCluster");
    assert_int_equal(herd_provider_resolve("dask.distributed.LocalCluster", &c, &err), 0);
    assert_ptr_equal(a, c);
    /* the other seed strings map to their herd modules */
    struct { const char *from, *to, *cls; } al[] = {
        { "dask_cloudprovider.aws.FargateCluster", "aws.FargateCluster", "FargateCluster" },
        { "dask_cloudprovider.aws.ECSCluster", "aws.ECSCluster", "ECSCluster" },
        { "dask_jobqueue.SLURMCluster", "slurm.SLURMCluster", "SLURMCluster" },
        { "distributed.SSHCluster", "ssh.SSHCluster", "SSHCluster" },
        { "dask.distributed.SSHCluster", "ssh.SSHCluster", "SSHCluster" },
    };
    /* which way each goes is decided by whether that module is built (a
     * .so in the provider path), not by the outcome itself */
    char **dirs = herd_provider_search_path();
    assert_non_null(dirs);
    for (size_t i = 0; i < sizeof al / sizeof al[0]; i++) {
        char so[PATH_MAX + 64];
        bool built = false;
        for (char **d = dirs; *d && !built; d++) {
            snprintf(so, sizeof so, "%s/%.*s.so", *d, (int)(strchr(al[i].to, '.') - al[i].to), al[i].to);
            built = access(so, F_OK) == 0;
        }
        const herd_provider *p = NULL, *direct = NULL;
        herd_err_clear(&err);
        int rc = herd_provider_resolve(al[i].from, &p, &err);
        if (built) {
            if (rc) fail_msg("%s: %s is built but the alias does not resolve: %s", al[i].from, so, err.msg);
            assert_string_equal(p->name, al[i].cls);
            assert_int_equal(herd_provider_resolve(al[i].to, &direct, &err), 0);
            assert_ptr_equal(p, direct);                  /* the same provider as its herd name */
        } else {
            assert_int_equal(rc, -HERD_ENOPROVIDER);
            char want[128];
            snprintf(want, sizeof want, "(alias of \"%s\")", al[i].to);
            assert_contains(err.msg, want);
        }
    }
    herd_strv_free(dirs);
    /* the build has ssh: at least one alias took the resolving path */
    const herd_provider *ssh = NULL;
    assert_int_equal(herd_provider_resolve("distributed.SSHCluster", &ssh, &err), 0);
    assert_string_equal(ssh->name, "SSHCluster");
}

static int copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    if (!in || !out) {
        if (in) fclose(in);
        if (out) fclose(out);
        return -1;
    }
    char buf[8192];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0) fwrite(buf, 1, n, out);
    fclose(in);
    return fclose(out);
}

typedef struct seen { char names[64][128]; char paths[64][PATH_MAX]; int n; } seen;

static void collect(const char *qname, const herd_provider *p, const char *path, void *ud)
{
    seen *s = ud;
    assert_non_null(p);
    assert_int_equal(herd_provider_check(p, qname, NULL), 0);
    if (s->n < 64) {
        snprintf(s->names[s->n], sizeof s->names[0], "%s", qname);
        snprintf(s->paths[s->n], sizeof s->paths[0], "%s", path);
        s->n++;
    }
}

static int find_seen(const seen *s, const char *name)
{
    int at = -1, count = 0;
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->names[i], name) == 0) { at = i; count++; }
    assert_true(count <= 1);
    return at;
}

static void test_search_order_and_nesting(void **state)
{
    char d1[] = "/tmp/herd-reg-XXXXXX", d2[] = "/tmp/herd-reg-XXXXXX";
    assert_non_null(mkdtemp(d1));
    assert_non_null(mkdtemp(d2));
    char src[3 * PATH_MAX], dst[3 * PATH_MAX], sub[3 * PATH_MAX];
    snprintf(src, sizeof src, "%s/good_custom.so", fixtures);
    snprintf(dst, sizeof dst, "%s/order.so", d1);
    assert_int_equal(copy_file(src, dst), 0);
    snprintf(src, sizeof src, "%s/good_alt.so", fixtures);
    snprintf(dst, sizeof dst, "%s/order.so", d2);
    assert_int_equal(copy_file(src, dst), 0);
    snprintf(sub, sizeof sub, "%s/pkg", d2);
    assert_int_equal(mkdir(sub, 0755), 0);
    snprintf(dst, sizeof dst, "%s/pkg/nested.so", d2);
    assert_int_equal(copy_file(src, dst), 0);

    char path[2 * PATH_MAX];
    const herd_provider *p;
    herd_err err = { 0 };
    snprintf(path, sizeof path, "%s:%s", d1, d2);
    setenv("HERD_PROVIDER_PATH", path, 1);
    char **sp = herd_provider_search_path();
    assert_string_equal(sp[0], d1);
    assert_string_equal(sp[1], d2);
    herd_strv_free(sp);
    if (herd_provider_resolve("order.GoodCluster", &p, &err)) fail_msg("%s", err.msg);
    assert_string_equal(p->summary, "an in-memory cluster for tests");   /* d1's */
    if (herd_provider_resolve("pkg.nested.GoodCluster", &p, &err)) fail_msg("%s", err.msg);
    assert_string_equal(p->summary, "alt");
    /* the first module found wins, even when its class is missing there */
    const char *parts[] = { "order.so has no symbol \"Nope\"", NULL };
    expect_error("order.Nope", HERD_ENOPROVIDER, parts);

    seen s = { 0 };
    assert_int_equal(herd_provider_foreach(collect, &s), 0);
    int i = find_seen(&s, "order.GoodCluster");   /* listed once: d2's is shadowed */
    assert_true(i >= 0);
    snprintf(dst, sizeof dst, "%s/order.so", d1);
    assert_string_equal(s.paths[i], dst);
    assert_true(find_seen(&s, "order.SecondCluster") >= 0);
    i = find_seen(&s, "pkg.nested.GoodCluster");
    assert_true(i >= 0);
    snprintf(dst, sizeof dst, "%s/pkg/nested.so", d2);
    assert_string_equal(s.paths[i], dst);

    snprintf(path, sizeof path, "%s:%s", d2, d1);
    setenv("HERD_PROVIDER_PATH", path, 1);
    if (herd_provider_resolve("order.GoodCluster", &p, &err)) fail_msg("%s", err.msg);
    assert_string_equal(p->summary, "alt");                              /* now d2's */

    snprintf(dst, sizeof dst, "%s/pkg/nested.so", d2); unlink(dst);
    rmdir(sub);
    snprintf(dst, sizeof dst, "%s/order.so", d2); unlink(dst);
    snprintf(dst, sizeof dst, "%s/order.so", d1); unlink(dst);
    rmdir(d1);
    rmdir(d2);
}

static void test_foreach_lists_valid_providers(void **state)
{
    seen s = { 0 };
    assert_int_equal(herd_provider_foreach(collect, &s), 0);
    char want[3 * PATH_MAX];
    int i = find_seen(&s, "good_custom.GoodCluster");
    assert_true(i >= 0);
    snprintf(want, sizeof want, "%s/good_custom.so", fixtures);
    assert_string_equal(s.paths[i], want);
    assert_true(find_seen(&s, "good_custom.SecondCluster") >= 0);
    assert_true(find_seen(&s, "good_alt.GoodCluster") >= 0);
    i = find_seen(&s, "local.LocalCluster");
    assert_true(i >= 0);
    snprintf(want, sizeof want, "%s/providers/local.so", build_dir);
    char real[PATH_MAX];
    assert_non_null(realpath(want, real));
    assert_string_equal(s.paths[i], real);
    /* broken modules and modules without herd_providers[] are not listed */
    for (int k = 0; k < s.n; k++) {
        assert_null(strstr(s.names[k], "bad_"));
        assert_null(strstr(s.names[k], "Unresolved"));
        assert_null(strstr(s.names[k], "NotStruct"));
    }
    assert_int_equal(herd_provider_foreach(NULL, NULL), -HERD_EARG);
}

/* ---- herd_provider_check on structs built here ---- */

static int h_create(herd_cluster **o, const herd_value *k, const herd_cluster_env *e, herd_err *err) { return 0; }
static int h_start(herd_cluster *c, herd_err *err) { return 0; }
static int h_scale(herd_cluster *c, int n, herd_err *err) { return 0; }
static int h_retire(herd_cluster *c, const char *w, herd_err *err) { return 0; }
static int h_status(herd_cluster *c, herd_worker_info *o, size_t cap, size_t *n) { return 0; }
static void h_close(herd_cluster *c) { }

static void test_check_direct(void **state)
{
    static const herd_param good_params[] = {
        { "a", HERD_PARAM_INT, "1", "a", 0, 0, 0 }, { NULL } };
    herd_provider p = { HERD_PROVIDER_HEAD(Mine, "mine", good_params), .create = h_create,
                        .start = h_start, .scale_up = h_scale, .retire = h_retire,
                        .status = h_status, .close = h_close };
    herd_err err = { 0 };
    assert_int_equal(herd_provider_check(&p, "cluster_provider", &err), 0);

    herd_provider q = p;
    q.close = NULL;
    assert_int_equal(herd_provider_check(&q, "cluster_provider", &err), -HERD_EABI);
    assert_string_equal(err.msg, "provider \"cluster_provider\": required hook close is NULL");
    q = p;
    q.create = NULL;
    assert_int_equal(herd_provider_check(&q, NULL, &err), -HERD_EABI);
    assert_string_equal(err.msg, "provider \"Mine\": required hook create is NULL");
    q = p;
    q.name = NULL;
    assert_int_equal(herd_provider_check(&q, "x", &err), -HERD_EABI);
    assert_contains(err.msg, "name is empty");

    static const herd_param bad_default[] = {
        { "a", HERD_PARAM_INT, "{unclosed", "a", 0, 0, 0 }, { NULL } };
    q = p;
    q.params = bad_default;
    assert_int_equal(herd_provider_check(&q, "x", &err), -HERD_EABI);
    assert_contains(err.msg, "param \"a\": default is not valid YAML");
    static const herd_param bad_name[] = { { "has space", HERD_PARAM_INT, NULL, "", 0, 0, 0 }, { NULL } };
    q.params = bad_name;
    assert_int_equal(herd_provider_check(&q, "x", &err), -HERD_EABI);
    assert_contains(err.msg, "params[0] name \"has space\": expected an identifier");
    static const herd_param req_default[] = {
        { "k", HERD_PARAM_STRING, "\"s3cr3t\"", "", HERD_PARAM_REQUIRED | HERD_PARAM_SECRET, 0, 0 }, { NULL } };
    q.params = req_default;
    assert_int_equal(herd_provider_check(&q, "x", &err), -HERD_EABI);
    assert_contains(err.msg, "param \"k\" is required and has a default (\"<secret>\")");
    assert_null(strstr(err.msg, "s3cr3t"));

    assert_int_equal(herd_provider_check(NULL, "x", &err), -HERD_EARG);
    assert_int_equal(herd_provider_check(&q, "x", NULL), -HERD_EABI);   /* err may be NULL */
}

/* ---- older layouts: padded and converted the same way on every path ---- */

/* herd_param as ABI 1.0 and 1.1 laid it out (no binding fields). */
typedef struct param_v1 {
    const char *name;
    herd_param_type type;
    const char *default_yaml;
    const char *doc;
    unsigned flags;
    double min, max;
} param_v1;

static const param_v1 old_params[] = {
    { "n_workers", HERD_PARAM_INT, "1", "", 0, 0, 4 },
    { "threads_per_worker", HERD_PARAM_INT, "1", "", 0, 1, 4 },
    { "processes", HERD_PARAM_BOOL, "false", "", 0, 0, 0 },
    { NULL },
};

static int poison_calls;
static int poison_listen(herd_cluster *c, char *out, size_t cap, herd_err *err)
{
    poison_calls++;
    return herd_err_set(err, HERD_EPROVIDER, "scheduler_listen lies past struct_size and must read as NULL");
}

/* LocalCluster as a provider built for ABI 1.0 would hand it over: the
 * struct ends at `close` (scheduler_listen sits past it, poisoned) and its
 * params have the old layout. */
static herd_provider old_local;

static void make_old_local(void)
{
    const herd_provider *local = NULL;
    herd_err err = { 0 };
    if (herd_provider_resolve("local.LocalCluster", &local, &err)) fail_msg("%s", err.msg);
    old_local = *local;
    old_local.abi_minor = 0;
    old_local.struct_size = offsetof(herd_provider, close) + sizeof(void *);
    old_local.params = (const herd_param *)(const void *)old_params;
    old_local.scheduler_listen = poison_listen;
}

static int old_factory(const herd_value *kwargs, const herd_cluster_env *env, const herd_provider **prov_out,
                       herd_cluster **out, herd_err *err)
{
    herd_value *kw = NULL;
    (void)kwargs;
    int rc = herd_value_parse("{n_workers: 1, threads_per_worker: 1, processes: false}", &kw, err);
    if (rc) return rc;
    *prov_out = &old_local;
    rc = old_local.create(out, kw, env, err);
    herd_value_free(kw);
    return rc;
}

static void run_flow(const herd_runner_opts *o)
{
    herd_runner *r = NULL;
    herd_err err = { 0 };
    if (herd_runner_new(&r, o, &err)) fail_msg("herd_runner_new: %s", err.msg);
    if (herd_flow_begin(r, "padded", &err)) fail_msg("herd_flow_begin: %s", err.msg);
    int nthreads = 0;
    int nw = herd_runner_workers(r, &nthreads);
    if (nw != 1) fail_msg("%s: %d workers, %d threads", o->cluster_factory ? "factory" : "provider", nw, nthreads);
    assert_int_equal(nthreads, 1);
    assert_int_equal(herd_flow_end(r, false, &err), 0);
    herd_runner_free(r);
}

static void quiet(void *ud, int level, const char *line) { (void)ud; (void)level; (void)line; }

static void test_padding_every_path(void **state)
{
    char prov[PATH_MAX + 16];
    snprintf(prov, sizeof prov, "%s/providers", build_dir);
    setenv("HERD_PROVIDER_PATH", prov, 1);
    make_old_local();
    poison_calls = 0;
    /* handed in directly: its old params converted (n_workers is known, the
     * old-layout defaults apply), its struct padded */
    herd_runner_opts o = { .cluster_provider = &old_local, .cluster_kwargs = "{n_workers: 1}", .log = quiet };
    run_flow(&o);
    herd_runner *r = NULL;
    herd_err err = { 0 };
    o.cluster_kwargs = "{n_worker: 1}";
    assert_int_equal(herd_runner_new(&r, &o, &err), -HERD_ECONFIG);
    assert_string_equal(err.msg, "cluster_kwargs.n_worker: unknown key; did you mean \"n_workers\"? known keys: "
                        "n_workers, threads_per_worker, processes");
    /* made by a factory: the same */
    o = (herd_runner_opts){ .cluster_factory = old_factory, .log = quiet };
    run_flow(&o);
    assert_int_equal(poison_calls, 0);
    /* a check alone accepts it too */
    assert_int_equal(herd_provider_check(&old_local, "old", &err), 0);

    /* the old layout is read by the struct's minor: a bad name in it is found */
    static const param_v1 old_bad[] = { { "ok", HERD_PARAM_INT, NULL, "", 0, 0, 0 },
                                        { "has space", HERD_PARAM_INT, NULL, "", 0, 0, 0 }, { NULL } };
    herd_provider q = old_local;
    q.params = (const herd_param *)(const void *)old_bad;
    assert_int_equal(herd_provider_check(&q, "old", &err), -HERD_EABI);
    assert_string_equal(err.msg, "provider \"old\": params[1] name \"has space\": expected an identifier "
                        "(letters, digits, '_')");
    /* a binding of the wrong size is refused at load */
    typedef struct mine { double d; int i; } mine;
    static const herd_param bad_bind[] = {
        { "d", HERD_PARAM_DURATION, "1", "", 0, 0, 0, HERD_PARAM_FIELD(mine, i) }, { NULL } };
    q = old_local;
    q.abi_minor = HERD_PROVIDER_ABI_MINOR;
    q.struct_size = sizeof q;
    q.params = bad_bind;
    assert_int_equal(herd_provider_check(&q, "new", &err), -HERD_EABI);
    assert_string_equal(err.msg, "provider \"new\": param \"d\": duration d is bound to a field of 4 bytes, "
                        "expected double (8 bytes)");
    setenv("HERD_PROVIDER_PATH", fixtures, 1);
}

/* ---- the `herd providers` command ---- */

/* Run `herd <args>`; stdout+stderr into out; the exit status. */
static int herd_cmd(const char *args, char *out, size_t cap)
{
    char cmd[3 * PATH_MAX];
    snprintf(cmd, sizeof cmd, "HERD_PROVIDER_PATH='%s' '%s/bin/herd' %s 2>&1", fixtures, build_dir, args);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A module built against ABI 1.1, found by name: its params are read with
 * their own layout, and kwargs validate against them. */
static void test_abi11_module(void **state)
{
    const herd_provider *p = NULL;
    herd_err err = { 0 };
    if (herd_provider_resolve("abi11.Abi11", &p, &err)) fail_msg("%s", err.msg);
    assert_int_equal(p->struct_size, sizeof(herd_provider));
    assert_null(p->scheduler_listen);
    const char *want[] = { "n_workers", "zone", "label", NULL };
    for (size_t i = 0; i < 4; i++) {
        if (!want[i]) { assert_null(p->params[i].name); break; }
        assert_string_equal(p->params[i].name, want[i]);
        assert_int_equal(p->params[i].size, 0);   /* unbound */
    }
    assert_true(p->params[0].max == 8);
    herd_value *in = NULL, *ok = NULL;
    assert_int_equal(herd_value_parse("{n_workers: 3}", &in, &err), 0);
    assert_int_equal(herd_kwargs_validate(p->params, in, "cluster_kwargs", &ok, &err), 0);
    char *txt = herd_value_to_string(ok);
    assert_string_equal(txt, "{n_workers: 3, zone: eu, label: null}");
    free(txt);
    herd_value_free(ok);
    herd_value_free(in);
    char out[4096];
    assert_int_equal(herd_cmd("providers show abi11.Abi11", out, sizeof out), 0);
    assert_contains(out, "zone");
}


static void test_cli_providers(void **state)
{
    static char out[65536];
    char want[3 * PATH_MAX];
    assert_int_equal(herd_cmd("--version", out, sizeof out), 0);
    assert_contains(out, "herd " HERD_VERSION_STRING);
    assert_int_equal(herd_cmd("providers", out, sizeof out), 0);
    const char *line = strstr(out, "\ngood_custom.SecondCluster  ");
    assert_non_null(line);
    const char *eol = strchr(line + 1, '\n');
    assert_non_null(eol);
    char *row = strndup(line + 1, (size_t)(eol - line));
    assert_non_null(strstr(row, "  the same, a second class in one module  "));
    snprintf(want, sizeof want, "  %s/good_custom.so\n", fixtures);
    assert_contains(row, want);
    free(row);
    assert_contains(out, "local.LocalCluster");
    assert_int_equal(herd_cmd("providers path", out, sizeof out), 0);
    snprintf(want, sizeof want, "%s\n", fixtures);
    assert_int_equal(strncmp(out, want, strlen(want)), 0);
    /* show: every param, secrets' defaults hidden */
    assert_int_equal(herd_cmd("providers show good_custom.GoodCluster", out, sizeof out), 0);
    assert_contains(out, "GoodCluster — an in-memory cluster for tests");
    assert_contains(out, "  n_workers\n    type:     int\n    default:  2\n    flags:    -\n    range:    0 .. 16\n");
    assert_contains(out, "  token\n    type:     str\n    default:  <secret>\n    flags:    secret\n");
    assert_contains(out, "  zone\n    type:     str\n    default:  (none)\n    flags:    required\n");
    assert_null(strstr(out, "hunter2"));
    /* aliases resolve */
    assert_int_equal(herd_cmd("providers show distributed.LocalCluster", out, sizeof out), 0);
    assert_contains(out, "LocalCluster — ");
    assert_contains(out, "  memory_limit\n");
    /* resolution errors: the message, exit 1 */
    assert_int_equal(herd_cmd("providers show good_custm.GoodCluster", out, sizeof out), 1);
    assert_contains(out, "did you mean \"good_custom.GoodCluster\"?");
    assert_int_equal(herd_cmd("providers show bad_abi.BadAbi", out, sizeof out), 1);
    assert_contains(out, "ABI major 2, this herd speaks 1");
    /* bad usage: usage on stderr, exit 2 */
    assert_int_equal(herd_cmd("providers bogus", out, sizeof out), 2);
    assert_contains(out, "usage: herd providers");
    assert_int_equal(herd_cmd("providers show", out, sizeof out), 2);
    assert_int_equal(herd_cmd("no-such-command", out, sizeof out), 2);
    assert_contains(out, "unknown command \"no-such-command\"");
    assert_int_equal(herd_cmd("", out, sizeof out), 2);
    assert_int_equal(herd_cmd("help", out, sizeof out), 0);
    assert_contains(out, "  providers ");
    assert_int_equal(herd_cmd("help providers", out, sizeof out), 0);
    assert_contains(out, "usage: herd providers");
}

int main(int argc, char **argv)
{
    herd_init(&argc, &argv);
    find_build_dir();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_unknown_module, setup),
        cmocka_unit_test_setup(test_bad_names, setup),
        cmocka_unit_test_setup(test_symbol_missing, setup),
        cmocka_unit_test_setup(test_bad_magic, setup),
        cmocka_unit_test_setup(test_abi_major, setup),
        cmocka_unit_test_setup(test_struct_too_small, setup),
        cmocka_unit_test_setup(test_name_mismatch, setup),
        cmocka_unit_test_setup(test_missing_hook, setup),
        cmocka_unit_test_setup(test_duplicate_param, setup),
        cmocka_unit_test_setup(test_unloadable_and_function, setup),
        cmocka_unit_test_setup(test_file_symbol, setup),
        cmocka_unit_test_setup(test_good_module_works, setup),
        cmocka_unit_test_setup(test_aliases, setup),
        cmocka_unit_test_setup(test_search_order_and_nesting, setup),
        cmocka_unit_test_setup(test_foreach_lists_valid_providers, setup),
        cmocka_unit_test_setup(test_check_direct, setup),
        cmocka_unit_test_setup(test_padding_every_path, setup),
        cmocka_unit_test_setup(test_abi11_module, setup),
        cmocka_unit_test_setup(test_cli_providers, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
