/* tests/unit/test_config.c — herd.yaml cluster profiles (core/config.c) and
 * the `herd config` command: the search order ($HERD_CONFIG, ./herd.yaml,
 * $XDG_CONFIG_HOME or ~/.config, /etc), profile selection (name,
 * $HERD_PROFILE, default), the key-by-key merge of explicit options, every
 * kind of error with its FILE:LINE:COL, and `herd config check/show/paths`
 * run as $(BUILD)/bin/herd (this binary lives in $(BUILD)/tests/). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli.h"
#include "config.h"

static char build_dir[PATH_MAX], herd_bin[PATH_MAX + 16], start_cwd[PATH_MAX];
static char fixture[PATH_MAX + 64];   /* good_custom.so: GoodCluster has a secret param */
static char tmp[64];
static char sys_yaml[128];   /* what stands in for /etc/herd/herd.yaml: <tmp>/etc/herd.yaml */
#define BIG (PATH_MAX * 4 + 8192)   /* room for messages holding paths */                  /* scratch directory of one test */

#define assert_contains(hay, needle) do {                                             \
        const char *h_ = (hay), *n_ = (needle);                                        \
        if (!h_ || !strstr(h_, n_)) fail_msg("expected \"%s\" in \"%s\"", n_, h_ ? h_ : "(null)"); \
    } while (0)
#define assert_not_contains(hay, needle) do {                                         \
        const char *h_ = (hay), *n_ = (needle);                                        \
        if (h_ && strstr(h_, n_)) fail_msg("did not expect \"%s\" in \"%s\"", n_, h_); \
    } while (0)

/* ---- scaffolding ---- */

static void find_build_dir(void)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) n = 0;
    exe[n] = '\0';
    for (int i = 0; i < 2; i++) {
        char *slash = strrchr(exe, '/');
        if (slash) *slash = '\0';
    }
    snprintf(build_dir, sizeof build_dir, "%s", exe);
    snprintf(herd_bin, sizeof herd_bin, "%s/bin/herd", build_dir);
    snprintf(fixture, sizeof fixture, "%s/tests/fixtures/good_custom.so", build_dir);
    if (!getcwd(start_cwd, sizeof start_cwd)) start_cwd[0] = '\0';
}

static void rmtree(const char *dir)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fail_msg("%s failed", cmd);
}

static const char *const env_vars[] = { "HERD_CONFIG", "HERD_PROFILE", "XDG_CONFIG_HOME", "HOME" };
static char *saved_env[4];

/* Every test starts in an empty scratch directory with $HOME pointing into
 * it and no HERD_CONFIG / HERD_PROFILE / XDG_CONFIG_HOME. */
static int setup(void **state)
{
    (void)state;
    for (int i = 0; i < 4; i++) {
        const char *v = getenv(env_vars[i]);
        saved_env[i] = v ? strdup(v) : NULL;
        unsetenv(env_vars[i]);
    }
    snprintf(tmp, sizeof tmp, "/tmp/herd-config-XXXXXX");
    if (!mkdtemp(tmp)) fail_msg("mkdtemp: %s", strerror(errno));
    char home[128];
    snprintf(home, sizeof home, "%s/home", tmp);
    mkdir(home, 0700);
    setenv("HOME", home, 1);
    snprintf(sys_yaml, sizeof sys_yaml, "%s/etc/herd.yaml", tmp);   /* missing unless a test puts it */
    setenv("HERD_TEST_SYSTEM_CONFIG", sys_yaml, 1);
    /* paths.c finds build/providers from the executable's name, which is
     * relative when the test was started by a relative path */
    char prov[2 * PATH_MAX + 32];
    snprintf(prov, sizeof prov, "%s/providers:%s/tests/fixtures", build_dir, build_dir);
    setenv("HERD_PROVIDER_PATH", prov, 1);
    if (chdir(tmp)) fail_msg("chdir %s: %s", tmp, strerror(errno));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (chdir(start_cwd)) fail_msg("chdir back: %s", strerror(errno));
    rmtree(tmp);
    for (int i = 0; i < 4; i++) {
        if (saved_env[i]) setenv(env_vars[i], saved_env[i], 1);
        else unsetenv(env_vars[i]);
        free(saved_env[i]);
        saved_env[i] = NULL;
    }
    return 0;
}

/* Write text to tmp/rel (creating directories); path to out. */
static void put(const char *rel, const char *text, char *out, size_t cap)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", tmp, rel);
    for (char *s = path + strlen(tmp) + 1; (s = strchr(s, '/')); s++) {
        *s = '\0';
        mkdir(path, 0700);
        *s = '/';
    }
    FILE *f = fopen(path, "w");
    if (!f) fail_msg("fopen %s: %s", path, strerror(errno));
    fputs(text, f);
    fclose(f);
    if (out) snprintf(out, cap, "%s", path);
}

/* Run `herd ARGS` (a shell fragment); stdout and stderr to *out (malloc'd),
 * returns the exit status. */
static int herd(const char *args, char **out)
{
    char cmd[PATH_MAX * 3];
    snprintf(cmd, sizeof cmd, "'%s' %s 2>&1", herd_bin, args);
    FILE *p = popen(cmd, "r");
    if (!p) fail_msg("popen %s: %s", cmd, strerror(errno));
    size_t cap = 4096, len = 0, n;
    char *buf = malloc(cap);
    while ((n = fread(buf + len, 1, cap - len - 1, p)) > 0) {
        len += n;
        if (cap - len < 2) buf = realloc(buf, cap *= 2);
    }
    buf[len] = '\0';
    int st = pclose(p);
    if (!WIFEXITED(st)) fail_msg("%s: did not exit normally (%d)\n%s", cmd, st, buf);
    *out = buf;
    return WEXITSTATUS(st);
}

static herd_value *yaml(const char *text)
{
    herd_value *v = NULL;
    herd_err err = { 0 };
    if (herd_value_parse(text, &v, &err)) fail_msg("%s: %s", text, err.msg);
    return v;
}

static void assert_yaml_equal(const herd_value *v, const char *text)
{
    herd_value *want = yaml(text);
    if (!herd_value_equal(v, want)) {
        char *got = herd_value_to_string(v);
        fail_msg("got %s, expected %s", got ? got : "NULL", text);
    }
    herd_value_free(want);
}

/* A profile that must load. */
static herd_profile *load(const char *file, const char *name)
{
    herd_profile *p = NULL;
    herd_err err = { 0 };
    if (herd_config_load_profile_from(file, name, &p, &err)) fail_msg("load %s: %s", name ? name : "(null)", err.msg);
    return p;
}

/* A file that must not load: the exact error. */
static void load_fails(const char *text, const char *name, const char *want)
{
    char path[PATH_MAX], msg[BIG];
    put("bad.yaml", text, path, sizeof path);
    herd_profile *p = (herd_profile *)1;
    herd_err err = { 0 };
    int rc = herd_config_load_profile_from(path, name, &p, &err);
    if (rc == 0) fail_msg("accepted:\n%s", text);
    assert_int_equal(rc, err.code);
    assert_null(p);
    snprintf(msg, sizeof msg, "%s%s", path, want);
    assert_string_equal(err.msg, msg);
}

/* ---- the search ---- */

static void test_search_order(void **state)
{
    (void)state;
    char path[PATH_MAX], got[PATH_MAX], want[BIG];
    herd_err err = { 0 };

    /* nothing anywhere: -ENOENT naming every place */
    int rc = herd_config_find(got, sizeof got, &err);
    assert_int_equal(rc, -ENOENT);
    snprintf(want, sizeof want, "no herd.yaml found (looked for ./herd.yaml, %s/home/.config/herd/herd.yaml, "
             "%s)", tmp, sys_yaml);
    assert_string_equal(err.msg, want);

    /* the system file, last */
    put("etc/herd.yaml", "profiles: {}\n", path, sizeof path);
    assert_int_equal(herd_config_find(got, sizeof got, &err), 0);
    assert_string_equal(got, sys_yaml);

    /* ~/.config */
    put("home/.config/herd/herd.yaml", "profiles: {}\n", path, sizeof path);
    assert_int_equal(herd_config_find(got, sizeof got, &err), 0);
    assert_string_equal(got, path);

    /* $XDG_CONFIG_HOME replaces ~/.config (relative values are ignored) */
    put("xdg/herd/herd.yaml", "profiles: {}\n", path, sizeof path);
    setenv("XDG_CONFIG_HOME", "xdg", 1);
    assert_int_equal(herd_config_find(got, sizeof got, &err), 0);
    snprintf(want, sizeof want, "%s/home/.config/herd/herd.yaml", tmp);
    assert_string_equal(got, want);
    char xdg[128];
    snprintf(xdg, sizeof xdg, "%s/xdg", tmp);
    setenv("XDG_CONFIG_HOME", xdg, 1);
    assert_int_equal(herd_config_find(got, sizeof got, &err), 0);
    assert_string_equal(got, path);

    /* ./herd.yaml before both */
    put("herd.yaml", "profiles: {}\n", NULL, 0);
    assert_int_equal(herd_config_find(got, sizeof got, &err), 0);
    assert_string_equal(got, "./herd.yaml");

    /* $HERD_CONFIG before everything */
    put("elsewhere/mine.yaml", "profiles: {}\n", path, sizeof path);
    setenv("HERD_CONFIG", path, 1);
    assert_int_equal(herd_config_find(got, sizeof got, &err), 0);
    assert_string_equal(got, path);

    herd_config_candidate c[HERD_CONFIG_NCAND];
    assert_int_equal(herd_config_candidates(c), 4);
    const char *origins[] = { "$HERD_CONFIG", "current directory", "$XDG_CONFIG_HOME", "system" };
    for (int i = 0; i < 4; i++) assert_string_equal(c[i].origin, origins[i]);
    assert_true(c[0].exists && c[1].exists && c[2].exists);
    assert_string_equal(c[3].path, sys_yaml);
    assert_true(c[3].exists);
    unsetenv("HERD_TEST_SYSTEM_CONFIG");              /* the real one otherwise */
    assert_int_equal(herd_config_candidates(c), 4);
    assert_string_equal(c[3].path, "/etc/herd/herd.yaml");
    setenv("HERD_TEST_SYSTEM_CONFIG", sys_yaml, 1);

    /* $HERD_CONFIG naming a missing file is an error, not a fallback */
    snprintf(path, sizeof path, "%s/missing.yaml", tmp);
    setenv("HERD_CONFIG", path, 1);
    assert_int_equal(herd_config_find(got, sizeof got, &err), -HERD_ECONFIG);
    snprintf(want, sizeof want, "HERD_CONFIG=%s: No such file or directory", path);
    assert_string_equal(err.msg, want);
    herd_profile *p = (herd_profile *)1;
    assert_int_equal(herd_config_load_profile(NULL, &p, &err), -HERD_ECONFIG);
    assert_null(p);
    assert_string_equal(err.msg, want);
}

/* ---- selecting a profile ---- */

static const char *three =
    "profiles:\n"
    "  default:\n"
    "    cluster_kwargs: {n_workers: 1}\n"
    "  local4:\n"
    "    cluster_kwargs: {n_workers: 4}\n"
    "  adaptive:\n"
    "    adapt_kwargs: {minimum: 0, maximum: 4}\n";

static void test_select(void **state)
{
    (void)state;
    herd_profile *p = NULL;
    herd_err err = { 0 };
    char want[BIG];

    /* no file at all: no profile, no error — unless one is asked for */
    assert_int_equal(herd_config_load_profile(NULL, &p, &err), 0);
    assert_null(p);
    assert_int_equal(herd_config_load_profile("local4", &p, &err), -HERD_ECONFIG);
    assert_contains(err.msg, "profile \"local4\": no herd.yaml found (looked for ./herd.yaml");
    setenv("HERD_PROFILE", "gpu", 1);
    assert_int_equal(herd_config_load_profile(NULL, &p, &err), -HERD_ECONFIG);
    assert_contains(err.msg, "profile \"gpu\" (from $HERD_PROFILE): no herd.yaml found");
    unsetenv("HERD_PROFILE");

    put("herd.yaml", three, NULL, 0);
    /* default */
    assert_int_equal(herd_config_load_profile(NULL, &p, &err), 0);
    assert_non_null(p);
    assert_string_equal(p->name, "default");
    assert_string_equal(p->file, "./herd.yaml");
    assert_yaml_equal(p->cluster_kwargs, "{n_workers: 1}");
    assert_null(p->adapt_kwargs);
    assert_null(p->client_kwargs);
    assert_null(p->cluster_class);
    assert_null(p->address);
    assert_int_equal(p->at.line, 2);
    assert_int_equal(p->at.col, 3);
    herd_profile_free(p);

    /* $HERD_PROFILE */
    setenv("HERD_PROFILE", "local4", 1);
    assert_int_equal(herd_config_load_profile(NULL, &p, &err), 0);
    assert_string_equal(p->name, "local4");
    assert_yaml_equal(p->cluster_kwargs, "{n_workers: 4}");
    herd_profile_free(p);

    /* an explicit name beats $HERD_PROFILE */
    assert_int_equal(herd_config_load_profile("adaptive", &p, &err), 0);
    assert_string_equal(p->name, "adaptive");
    assert_yaml_equal(p->adapt_kwargs, "{minimum: 0, maximum: 4}");
    herd_profile_free(p);

    /* unknown names, with a did-you-mean */
    assert_int_equal(herd_config_load_profile("local", &p, &err), -HERD_ECONFIG);
    assert_null(p);
    assert_string_equal(err.msg, "./herd.yaml: no profile \"local\"; did you mean \"local4\"? "
                                 "profiles: default, local4, adaptive");
    setenv("HERD_PROFILE", "adaptiv", 1);
    assert_int_equal(herd_config_load_profile(NULL, &p, &err), -HERD_ECONFIG);
    assert_string_equal(err.msg, "./herd.yaml: no profile \"adaptiv\" (from $HERD_PROFILE); did you mean "
                                 "\"adaptive\"? profiles: default, local4, adaptive");
    setenv("HERD_PROFILE", "", 1);   /* empty counts as unset */
    assert_int_equal(herd_config_load_profile(NULL, &p, &err), 0);
    assert_string_equal(p->name, "default");
    herd_profile_free(p);
    unsetenv("HERD_PROFILE");

    /* without a default profile, nothing applies */
    put("herd.yaml", "profiles:\n  local4: {cluster_kwargs: {n_workers: 4}}\n", NULL, 0);
    p = (herd_profile *)1;
    assert_int_equal(herd_config_load_profile(NULL, &p, &err), 0);
    assert_null(p);
    /* an empty file has no profiles */
    put("herd.yaml", "", NULL, 0);
    assert_int_equal(herd_config_load_profile(NULL, &p, &err), 0);
    assert_null(p);
    assert_int_equal(herd_config_load_profile("x", &p, &err), -HERD_ECONFIG);
    assert_string_equal(err.msg, "./herd.yaml: no profile \"x\"; the file has no profiles");
    /* an empty profile is a profile */
    put("herd.yaml", "profiles:\n  default:\n", NULL, 0);
    assert_int_equal(herd_config_load_profile(NULL, &p, &err), 0);
    assert_non_null(p);
    assert_null(p->cluster_kwargs);
    herd_profile_free(p);
    snprintf(want, sizeof want, "%s", "");
}

/* ---- the merge ---- */

static const char *merge_file =
    "profiles:\n"
    "  local4:\n"
    "    cluster_class: local.LocalCluster\n"
    "    cluster_kwargs:\n"
    "      n_workers: 4\n"
    "      threads_per_worker: 1\n"
    "      memory_limit: 2GiB\n"
    "    client_kwargs: {connect_timeout: 5, heartbeat_interval: 2}\n"
    "  remote:\n"
    "    address: tcp://127.0.0.1:8786\n"
    "    client_kwargs: {connect_timeout: 5}\n";

static void test_merge(void **state)
{
    (void)state;
    char path[PATH_MAX];
    put("herd.yaml", merge_file, path, sizeof path);
    herd_profile *p = load(path, "local4");
    herd_value *ck = yaml("{n_workers: 8, processes: false}"), *ak = NULL, *cl = NULL;
    herd_profile_merge m = { .cluster_kwargs = &ck, .adapt_kwargs = &ak, .client_kwargs = &cl };
    herd_err err = { 0 };
    assert_int_equal(herd_profile_apply(p, &m, &err), 0);
    /* explicit keys replace the profile's, the profile's others stay */
    assert_yaml_equal(ck, "{n_workers: 8, threads_per_worker: 1, memory_limit: 2GiB, processes: false}");
    assert_null(ak);
    assert_yaml_equal(cl, "{connect_timeout: 5, heartbeat_interval: 2}");
    assert_string_equal(m.cluster_class, "local.LocalCluster");
    assert_null(m.address);

    /* errors about keys the file supplied cite it; n_workers came from the program */
    err = (herd_err){ -HERD_ECONFIG, "cluster_kwargs.threads_per_worker: expected int >= 1, got 0" };
    assert_int_equal(herd_profile_locate_error(p, NULL, &err), -HERD_ECONFIG);
    char want[BIG];
    snprintf(want, sizeof want, "%s:6:27: cluster_kwargs.threads_per_worker: expected int >= 1, got 0", path);
    assert_string_equal(err.msg, want);
    err = (herd_err){ -HERD_ECONFIG, "cluster_kwargs.n_workers: expected int >= 0, got 8" };
    herd_profile_locate_error(p, NULL, &err);
    assert_string_equal(err.msg, "cluster_kwargs.n_workers: expected int >= 0, got 8");
    err = (herd_err){ -HERD_ECONFIG, "cluster_kwargs.memory_limit: unknown key; did you mean \"memory\"?" };
    herd_profile_locate_error(p, NULL, &err);
    snprintf(want, sizeof want, "%s:7:7: cluster_kwargs.memory_limit: unknown key; did you mean \"memory\"?", path);
    assert_string_equal(err.msg, want);
    err = (herd_err){ -HERD_ECONFIG, "client_kwargs.heartbeat_interval: expected duration, got x" };
    herd_profile_locate_error(p, NULL, &err);
    snprintf(want, sizeof want, "%s:8:61: client_kwargs.heartbeat_interval: expected duration, got x", path);
    assert_string_equal(err.msg, want);
    err = (herd_err){ -HERD_ECONFIG, "cluster_kwargs.zone: required key is missing (expected str)" };
    herd_profile_locate_error(p, NULL, &err);
    snprintf(want, sizeof want, "%s:4:5: cluster_kwargs.zone: required key is missing (expected str)", path);
    assert_string_equal(err.msg, want);
    err = (herd_err){ -HERD_ENOPROVIDER, "unknown cluster_class \"local.LocalCluster\": gone" };
    herd_profile_locate_error(p, "cluster_class", &err);
    snprintf(want, sizeof want, "%s:3:20: unknown cluster_class \"local.LocalCluster\": gone", path);
    assert_string_equal(err.msg, want);
    assert_int_equal(err.code, -HERD_ENOPROVIDER);
    err = (herd_err){ -HERD_EARG, "adapt_kwargs.minimum: nope" };   /* not from the file */
    herd_profile_locate_error(p, NULL, &err);
    assert_string_equal(err.msg, "adapt_kwargs.minimum: nope");
    herd_value_free(ck);
    herd_value_free(cl);
    herd_profile_free(p);

    /* an explicit cluster_class of another provider replaces the profile's, which
     * then is not cited, and sets aside the profile's cluster_kwargs (they are
     * the other provider's); the same provider by an alias keeps them */
    p = load(path, "local4");
    ck = NULL;
    m = (herd_profile_merge){ .cluster_class = "distributed.LocalCluster", .cluster_kwargs = &ck };
    assert_int_equal(herd_profile_apply(p, &m, &err), 0);
    assert_yaml_equal(ck, "{n_workers: 4, threads_per_worker: 1, memory_limit: 2GiB}");
    herd_value_free(ck);
    herd_profile_free(p);
    p = load(path, "local4");
    ck = NULL;
    m = (herd_profile_merge){ .cluster_class = "x.so:Other", .cluster_kwargs = &ck };
    assert_int_equal(herd_profile_apply(p, &m, &err), 0);
    assert_string_equal(m.cluster_class, "x.so:Other");
    assert_null(ck);
    err = (herd_err){ -HERD_ENOPROVIDER, "cluster_class: no x.so" };
    herd_profile_locate_error(p, "cluster_class", &err);
    assert_string_equal(err.msg, "cluster_class: no x.so");
    herd_value_free(ck);
    herd_profile_free(p);

    /* where the run goes is one setting: an address from the program sets
     * aside the profile's temporary cluster (README: options set in code
     * override the profile key by key), which is then not cited */
    p = load(path, "local4");
    ck = NULL;
    ak = NULL;
    cl = NULL;
    m = (herd_profile_merge){ .address = "tcp://10.0.0.1:8786", .cluster_kwargs = &ck, .adapt_kwargs = &ak,
                              .client_kwargs = &cl };
    assert_int_equal(herd_profile_apply(p, &m, &err), 0);
    assert_string_equal(m.address, "tcp://10.0.0.1:8786");
    assert_null(m.cluster_class);
    assert_null(ck);
    assert_null(ak);
    assert_yaml_equal(cl, "{connect_timeout: 5, heartbeat_interval: 2}");
    err = (herd_err){ -HERD_ENOPROVIDER, "cluster_class: gone" };
    herd_profile_locate_error(p, "cluster_class", &err);
    assert_string_equal(err.msg, "cluster_class: gone");
    herd_value_free(cl);
    herd_profile_free(p);

    /* a profile's address with the program's cluster settings but no
     * cluster_class of its own: a contradiction, both named */
    p = load(path, "remote");
    ck = yaml("{n_workers: 2}");
    m = (herd_profile_merge){ .cluster_kwargs = &ck };
    assert_int_equal(herd_profile_apply(p, &m, &err), -HERD_ECONFIG);
    snprintf(want, sizeof want, "%s:10:5: address \"tcp://127.0.0.1:8786\" of profile \"remote\" connects to an "
             "existing scheduler; cluster_kwargs given in the runner options only applies to a temporary "
             "cluster (give a cluster_class too, to use one instead)", path);
    assert_string_equal(err.msg, want);
    herd_profile_free(p);
    /* a cluster_class, provider or factory from the program sets aside the profile's address */
    p = load(path, "remote");
    m = (herd_profile_merge){ .cluster_class = "local.LocalCluster", .cluster_kwargs = &ck };
    assert_int_equal(herd_profile_apply(p, &m, &err), 0);
    assert_string_equal(m.cluster_class, "local.LocalCluster");
    assert_null(m.address);
    assert_yaml_equal(ck, "{n_workers: 2}");
    herd_profile_free(p);
    p = load(path, "remote");
    m = (herd_profile_merge){ .cluster_object = true };
    assert_int_equal(herd_profile_apply(p, &m, &err), 0);
    assert_null(m.address);
    herd_profile_free(p);
    /* … and client_kwargs and another address are fine */
    p = load(path, "remote");
    herd_value_free(ck);
    cl = yaml("{connect_timeout: 1s, token: abc}");
    m = (herd_profile_merge){ .address = "unix:///tmp/s.sock", .client_kwargs = &cl };
    assert_int_equal(herd_profile_apply(p, &m, &err), 0);
    assert_string_equal(m.address, "unix:///tmp/s.sock");
    assert_null(m.cluster_class);
    assert_yaml_equal(cl, "{connect_timeout: 1s, token: abc}");
    herd_value_free(cl);
    herd_profile_free(p);

    /* no profile: nothing happens */
    m = (herd_profile_merge){ .cluster_class = "a.B" };
    assert_int_equal(herd_profile_apply(NULL, &m, &err), 0);
    assert_string_equal(m.cluster_class, "a.B");
    err = (herd_err){ -HERD_ECONFIG, "cluster_kwargs.n_workers: x" };
    herd_profile_locate_error(NULL, NULL, &err);
    assert_string_equal(err.msg, "cluster_kwargs.n_workers: x");
}

/* ---- structural errors, each with FILE:LINE:COL ---- */

static void test_errors(void **state)
{
    (void)state;
    load_fails("profiles: {a: [1, 2}\n", NULL,
               ":1:20: while parsing a flow sequence did not find expected ',' or ']' (started at line 1, column 15)");
    load_fails("- a\n- b\n", NULL, ":1:1: expected a map with a \"profiles\" key at the top level, got array [a, b]");
    load_fails("profile:\n  default: {}\n", NULL,
               ":1:1: profile: unknown key; did you mean \"profiles\"? known keys: profiles");
    load_fails("profiles: [a]\n", NULL, ":1:11: profiles: expected map or null, got array [a]");
    load_fails("profiles:\n  default: 4\n", NULL,
               ":2:12: profiles.default: expected a map of profile keys (cluster_class, cluster_kwargs, "
               "adapt_kwargs, client_kwargs, address, description), got int 4");
    load_fails("profiles:\n  \"my profile\": {}\n", "my profile",
               ":2:3: profiles.my profile: profile names may contain only letters, digits, '_' and '-'");
    load_fails("profiles:\n  default:\n    cluster_kwarg: {n_workers: 2}\n", NULL,
               ":3:5: cluster_kwarg: unknown key; did you mean \"cluster_kwargs\"? known keys: description, "
               "cluster_class, cluster_kwargs, adapt_kwargs, client_kwargs, address");
    load_fails("profiles:\n  default:\n    cluster_class: 3\n", NULL,
               ":3:20: cluster_class: expected str or null, got int 3");
    load_fails("profiles:\n  default:\n    adapt_kwargs: [1]\n", NULL,
               ":3:19: adapt_kwargs: expected map or null, got array [1]");
    load_fails("profiles:\n  default:\n    address: ''\n", NULL, ":3:14: address: expected a non-empty string");
    load_fails("profiles:\n  r:\n    address: tcp://h:1\n    cluster_kwargs: {n_workers: 1}\n", "r",
               ":3:5: address: \"tcp://h:1\" connects to an existing scheduler; cluster_kwargs (line 4) only "
               "applies to a temporary cluster and cannot be given with it");
    /* several problems: the first, and how many more */
    load_fails("profiles:\n  a: {cluster_clas: x, adress: y, description: 1}\n", "a",
               ":2:7: cluster_clas: unknown key; did you mean \"cluster_class\"? known keys: description, cluster_class, "
               "cluster_kwargs, adapt_kwargs, client_kwargs, address (and 2 more problems: run `herd config check`)");
    /* the file's top level is checked whichever profile is used */
    load_fails("profiles:\n  a: {}\nextra: 1\n", "a", ":3:1: extra: unknown key; known keys: profiles");
    /* each profile stands alone: a bad one does not stop a good one */
    const char *two = "profiles:\n  a: {cluster_kwargs: {n_workers: 2}}\n  b: {cluster_class: 1}\n";
    load_fails(two, "b", ":3:22: cluster_class: expected str or null, got int 1");
    char path[PATH_MAX];
    put("two.yaml", two, path, sizeof path);
    herd_profile *p = load(path, "a");
    assert_yaml_equal(p->cluster_kwargs, "{n_workers: 2}");
    herd_profile_free(p);
}

/* ---- herd config check ---- */

static void test_check_good(void **state)
{
    (void)state;
    char *out = NULL;
    /* the example beside the sources: from the source tree make runs in, or
     * next to the build directory */
    char ex[PATH_MAX * 2];
    snprintf(ex, sizeof ex, "%s/examples/config/herd.yaml", start_cwd);
    if (access(ex, R_OK)) snprintf(ex, sizeof ex, "%s/../examples/config/herd.yaml", build_dir);
    char args[BIG];
    snprintf(args, sizeof args, "config check '%s'", ex);
    assert_int_equal(herd(args, &out), 0);
    assert_string_equal(out, "OK: 4 profiles\n");
    free(out);

    char path[PATH_MAX], text[BIG];
    snprintf(text, sizeof text,
             "profiles:\n"
             "  default: {cluster_kwargs: {n_workers: 2, memory_limit: 1GiB}}\n"
             "  custom:\n"
             "    cluster_class: good_custom.GoodCluster\n"
             "    cluster_kwargs: {zone: eu, token: s3cret}\n"
             "    adapt_kwargs: {minimum: 1, maximum: 3, interval: 2s}\n"
             "    client_kwargs: {token: hunter2}\n"
             "  existing: {address: tcp://127.0.0.1:8786}\n");
    put("good.yaml", text, path, sizeof path);
    snprintf(args, sizeof args, "config check '%s'", path);
    assert_int_equal(herd(args, &out), 0);
    assert_string_equal(out, "OK: 3 profiles\n");
    free(out);

    /* without FILE: the one the search finds */
    put("herd.yaml", "profiles:\n  default: {}\n", NULL, 0);
    assert_int_equal(herd("config check", &out), 0);
    assert_string_equal(out, "OK: 1 profile\n");
    free(out);
}

static void test_check_bad(void **state)
{
    (void)state;
    char path[PATH_MAX], text[BIG], args[BIG];
    snprintf(text, sizeof text,
             "profiles:\n"                                               /* 1 */
             "  default:\n"                                              /* 2 */
             "    cluster_kwargs:\n"                                     /* 3 */
             "      n_workers: four\n"                                   /* 4 */
             "      threads_per_worke: 2\n"                              /* 5 */
             "      memory_limit: lots\n"                                /* 6 */
             "  custom:\n"                                               /* 7 */
             "    cluster_class: good_custom.GoodCluster\n"              /* 8 */
             "    cluster_kwargs: {n_workers: 99, token: 7}\n"           /* 9 */
             "    adapt_kwargs: {minimum: -1, maximum: x, intervl: 2s}\n"/* 10 */
             "    client_kwargs: {tokn: a, connect_timeout: soon}\n"     /* 11 */
             "  gone:\n"                                                 /* 12 */
             "    cluster_class: nosuch.Cluster\n"                       /* 13 */
             "    description: 5\n"                                      /* 14 */
             "  remote:\n"                                               /* 15 */
             "    address: tcp://127.0.0.1:8786\n"                       /* 16 */
             "    adapt_kwargs: {maximum: 2}\n");                        /* 17 */
    put("bad.yaml", text, path, sizeof path);
    snprintf(args, sizeof args, "config check '%s'", path);
    char *out = NULL;
    assert_int_equal(herd(args, &out), 1);
    char want[BIG * 4];
    const char *f = path;
    snprintf(want, sizeof want,
             "%s:4:18: cluster_kwargs.n_workers: expected int or null, got str \"four\"\n"
             "%s:5:7: cluster_kwargs.threads_per_worke: unknown key; did you mean \"threads_per_worker\"? known keys: "
             "n_workers, threads_per_worker, processes, resources, memory_limit, env, name, local_directory, "
             "lifetime, lifetime_stagger\n"
             "%s:6:21: cluster_kwargs.memory_limit: expected size (bytes, or a string like \"512MiB\", \"4GB\", "
             "\"auto\") or null, got str \"lots\"\n"
             "%s:9:5: cluster_kwargs.zone: required key is missing (expected str)\n"
             "%s:9:33: cluster_kwargs.n_workers: expected int >= 0 and <= 16, got 99\n"
             "%s:9:44: cluster_kwargs.token: expected str, got int <secret>\n"
             "%s:10:29: adapt_kwargs.minimum: expected int >= 0 and <= 1000000, got -1\n"
             "%s:10:42: adapt_kwargs.maximum: expected int or null, got str \"x\"\n"
             "%s:10:45: adapt_kwargs.intervl: unknown key; did you mean \"interval\"? known keys: minimum, maximum, "
             "interval, wait_count, target_duration\n"
             "%s:11:21: client_kwargs.tokn: unknown key; did you mean \"token\"? known keys: connect_timeout, "
             "provision_timeout, heartbeat_interval, heartbeat_timeout, allowed_failures, listen, token, security, tls_ca_file, tls_cert, tls_key, tls_server_name, no_workers_timeout, start, dashboard_address, performance_report_path, data_transfer, progress, log_level\n"
             "%s:11:47: client_kwargs.connect_timeout: expected duration (seconds, or a string like \"500ms\", "
             "\"2s\", \"5m\", \"1h\"), got str \"soon\"\n",
             f, f, f, f, f, f, f, f, f, f, f);
    /* the lines for profiles gone and remote: checked by prefix below */
    if (strncmp(out, want, strlen(want))) fail_msg("got:\n%s\nexpected to start with:\n%s", out, want);
    const char *rest = out + strlen(want);
    char line[BIG];
    snprintf(line, sizeof line, "%s:13:20: cluster_class: unknown cluster_class \"nosuch.Cluster\": no nosuch.so in ", f);
    assert_int_equal(strncmp(rest, line, strlen(line)), 0);
    rest = strchr(rest, '\n') + 1;
    snprintf(line, sizeof line, "%s:14:18: description: expected str or null, got int 5\n", f);
    assert_int_equal(strncmp(rest, line, strlen(line)), 0);
    rest += strlen(line);
    snprintf(line, sizeof line, "%s:16:5: address: \"tcp://127.0.0.1:8786\" connects to an existing scheduler; "
             "adapt_kwargs (line 17) only applies to a temporary cluster and cannot be given with it\n"
             "profile default: 3 problems\nprofile custom: 8 problems\nprofile gone: 2 problems\n"
             "profile remote: 1 problem\n%s: 14 problems in 4 of 4 profiles\n", f, f);
    assert_string_equal(rest, line);
    free(out);

    /* a file that does not parse, and one that does not exist */
    put("broken.yaml", "profiles:\n  a: {b: 1\n", path, sizeof path);
    snprintf(args, sizeof args, "config check '%s'", path);
    assert_int_equal(herd(args, &out), 1);
    snprintf(want, sizeof want, "herd config check: %s:3:1: while parsing a flow mapping did not find expected ',' or '}' "
             "(started at line 2, column 6)\n", path);
    assert_string_equal(out, want);
    free(out);
    assert_int_equal(herd("config check nosuch.yaml", &out), 1);
    assert_string_equal(out, "herd config check: nosuch.yaml: No such file or directory\n");
    free(out);
    assert_int_equal(herd("config frobnicate", &out), HERD_CLI_EXIT_USAGE);
    assert_contains(out, "usage: herd config paths");
    free(out);
}

/* ---- herd config check runs the runtime's own validation ---- */

static void test_check_runtime(void **state)
{
    (void)state;
    char path[PATH_MAX], args[BIG], want[BIG * 2];
    char *out = NULL;
    /* every key right, but what herd_runner_new refuses across keys or by
     * value: each profile reported on its own, the good one OK */
    put("rt.yaml",
        "profiles:\n"                                                       /* 1 */
        "  good: {cluster_kwargs: {n_workers: 1}}\n"                        /* 2 */
        "  minmax:\n"                                                       /* 3 */
        "    adapt_kwargs: {minimum: 3, maximum: 1}\n"                      /* 4 */
        "  loud:\n"                                                         /* 5 */
        "    client_kwargs: {log_level: loud}\n"                            /* 6 */
        "  tls:\n"                                                          /* 7 */
        "    client_kwargs: {security: permanent}\n",                       /* 8 */
        path, sizeof path);
    snprintf(args, sizeof args, "config check '%s'", path);
    assert_int_equal(herd(args, &out), 1);
    snprintf(want, sizeof want,
             "%s:4:41: adapt_kwargs.maximum: 1 is less than minimum 3; expected maximum >= minimum (or null for "
             "no maximum)\n"
             "%s:6:32: client_kwargs.log_level: expected one of debug, info, warning or error, got \"loud\"\n"
             "%s:8:31: client_kwargs.security: expected \"temporary\" or null, got \"permanent\" (for certificates "
             "of your own give tls_ca_file, tls_cert, tls_key)\n"
             "profile good: OK\nprofile minmax: 1 problem\nprofile loud: 1 problem\nprofile tls: 1 problem\n"
             "%s: 3 problems in 3 of 4 profiles\n", path, path, path, path);
    assert_string_equal(out, want);
    free(out);

    /* one profile: a good one is OK whatever the others hold */
    snprintf(args, sizeof args, "config check '%s' --profile good", path);
    assert_int_equal(herd(args, &out), 0);
    assert_string_equal(out, "OK: 1 profile\n");
    free(out);
    snprintf(args, sizeof args, "config check '%s' --profile minmax", path);
    assert_int_equal(herd(args, &out), 1);
    assert_contains(out, "adapt_kwargs.maximum: 1 is less than minimum 3");
    assert_contains(out, "1 problem in 1 of 1 profile\n");
    free(out);
    snprintf(args, sizeof args, "config check '%s' --profile god", path);
    assert_int_equal(herd(args, &out), 1);
    assert_contains(out, "no profile \"god\"; did you mean \"good\"?");
    free(out);

    /* the runtime says the same, cited in the file, and a good profile of
     * the same file runs */
    herd_runner *r = NULL;
    herd_err err = { 0 };
    setenv("HERD_CONFIG", path, 1);
    herd_runner_opts o = { .profile = "minmax" };
    assert_int_equal(herd_runner_new(&r, &o, &err), -HERD_ECONFIG);
    snprintf(want, sizeof want, "%s:4:41: adapt_kwargs.maximum: 1 is less than minimum 3", path);
    assert_int_equal(strncmp(err.msg, want, strlen(want)), 0);
    o.profile = "loud";
    assert_int_equal(herd_runner_new(&r, &o, &err), -HERD_ECONFIG);
    assert_contains(err.msg, "client_kwargs.log_level: expected one of debug, info, warning or error, got \"loud\"");
    o.profile = "good";
    assert_int_equal(herd_runner_new(&r, &o, &err), 0);
    herd_runner_free(r);
    unsetenv("HERD_CONFIG");
}

/* An address set in code wins over the default profile's temporary cluster,
 * a cluster_class set in code over a profile's address (options set in code
 * override the profile key by key). */
static void test_code_overrides_profile(void **state)
{
    (void)state;
    put("herd.yaml",
        "profiles:\n"
        "  default:\n"
        "    cluster_class: local.LocalCluster\n"
        "    cluster_kwargs: {n_workers: 2}\n"
        "    adapt_kwargs: {maximum: 2}\n"
        "  remote: {address: tcp://127.0.0.1:8786}\n", NULL, 0);
    herd_runner *r = NULL;
    herd_err err = { 0 };
    herd_runner_opts o = { .address = "tcp://127.0.0.1:1" };
    if (herd_runner_new(&r, &o, &err)) fail_msg("address over the default profile: %s", err.msg);
    herd_runner_free(r);
    o = (herd_runner_opts){ .profile = "remote", .cluster_class = "local.LocalCluster",
                            .cluster_kwargs = "{n_workers: 1}" };
    if (herd_runner_new(&r, &o, &err)) fail_msg("cluster_class over a profile's address: %s", err.msg);
    herd_runner_free(r);
    /* kwargs alone cannot make a temporary cluster of an existing-cluster profile */
    o = (herd_runner_opts){ .profile = "remote", .cluster_kwargs = "{n_workers: 1}" };
    assert_int_equal(herd_runner_new(&r, &o, &err), -HERD_ECONFIG);
    assert_contains(err.msg, "cluster_kwargs given in the runner options only applies to a temporary cluster");
}

/* ---- herd config show ---- */

static void test_show(void **state)
{
    (void)state;
    char path[PATH_MAX], text[BIG], args[BIG];
    snprintf(text, sizeof text,
             "profiles:\n"
             "  default:\n"
             "    description: small\n"
             "    cluster_kwargs: {n_workers: 2, memory_limit: 1GiB}\n"
             "    adapt_kwargs: {maximum: 4, interval: 500ms}\n"
             "  custom:\n"
             "    cluster_class: good_custom.GoodCluster\n"
             "    cluster_kwargs: {zone: eu, token: s3cret}\n"
             "    client_kwargs: {token: hunter2, connect_timeout: 1m}\n"
             "  dflt:\n"
             "    cluster_class: good_custom.GoodCluster\n"
             "    cluster_kwargs: {zone: us}\n");
    put("herd.yaml", text, path, sizeof path);
    char *out = NULL;
    snprintf(args, sizeof args, "config show -f '%s' custom", path);
    assert_int_equal(herd(args, &out), 0);
    char want[BIG];
    snprintf(want, sizeof want,
             "# profile: custom\n"
             "# file: %s\n"
             "cluster_class: good_custom.GoodCluster\n"
             "cluster_kwargs: {n_workers: 2, token: <secret>, zone: eu, label: null}\n"
             "client_kwargs: {connect_timeout: 60.0, provision_timeout: 60.0, heartbeat_interval: 1.0, "
             "heartbeat_timeout: 30.0, allowed_failures: 3, listen: null, token: <secret>, security: null, tls_ca_file: null, tls_cert: null, tls_key: null, tls_server_name: null, no_workers_timeout: 60.0, start: lazy, dashboard_address: null, performance_report_path: null, data_transfer: auto, progress: false, log_level: null}\n", path);
    assert_string_equal(out, want);
    assert_not_contains(out, "s3cret");
    assert_not_contains(out, "hunter2");
    free(out);

    /* a secret's default is hidden too (GoodCluster's token defaults to "hunter2") */
    assert_int_equal(herd("config show dflt", &out), 0);
    assert_contains(out, "cluster_kwargs: {n_workers: 2, token: <secret>, zone: us, label: null}\n");
    assert_not_contains(out, "hunter2");
    free(out);

    /* no name: $HERD_PROFILE, else default */
    assert_int_equal(herd("config show", &out), 0);
    assert_string_equal(out,
                        "# profile: default\n"
                        "# file: ./herd.yaml\n"
                        "description: small\n"
                        "cluster_class: local.LocalCluster\n"
                        "cluster_kwargs: {n_workers: 2, threads_per_worker: null, processes: true, resources: {}, "
                        "memory_limit: 1073741824, env: {}, name: local, local_directory: null, lifetime: null, lifetime_stagger: null}\n"
                        "adapt_kwargs: {minimum: 0, maximum: 4, interval: 0.5, wait_count: 3, target_duration: 5.0}\n"
                        "client_kwargs: {connect_timeout: 30.0, provision_timeout: 60.0, heartbeat_interval: 1.0, "
                        "heartbeat_timeout: 30.0, allowed_failures: 3, listen: null, token: null, security: null, tls_ca_file: null, tls_cert: null, tls_key: null, tls_server_name: null, no_workers_timeout: 60.0, start: lazy, dashboard_address: null, performance_report_path: null, data_transfer: auto, progress: false, log_level: null}\n");
    free(out);
    assert_int_equal(herd("config show custom dflt", &out), HERD_CLI_EXIT_USAGE);
    free(out);
    setenv("HERD_PROFILE", "dflt", 1);
    assert_int_equal(herd("config show", &out), 0);
    assert_contains(out, "# profile: dflt\n");
    free(out);
    assert_int_equal(herd("config show dlft", &out), 1);
    assert_string_equal(out, "herd config show: ./herd.yaml: no profile \"dlft\"; did you mean \"dflt\"? "
                             "profiles: default, custom, dflt\n");
    free(out);
    unsetenv("HERD_PROFILE");

    /* a profile with a problem is not shown */
    put("herd.yaml", "profiles:\n  default:\n    cluster_kwargs: {n_workers: x}\n", NULL, 0);
    assert_int_equal(herd("config show", &out), 1);
    assert_string_equal(out, "herd config show: ./herd.yaml:3:33: cluster_kwargs.n_workers: expected int or null, "
                             "got str \"x\"\n");
    free(out);

    /* the API: secrets replaced in the value itself */
    snprintf(text, sizeof text, "profiles:\n  default: {client_kwargs: {token: t0p}}\n");
    put("api.yaml", text, path, sizeof path);
    herd_value *v = NULL;
    herd_err err = { 0 };
    if (herd_config_show(path, NULL, &v, &err)) fail_msg("herd_config_show: %s", err.msg);
    assert_string_equal(herd_as_str(herd_map_get(herd_map_get(v, "client_kwargs"), "token")), "<secret>");
    assert_string_equal(herd_as_str(herd_map_get(v, "profile")), "default");
    herd_value_free(v);
    put("api.yaml", "profiles:\n  a: {}\n", path, sizeof path);
    assert_int_equal(herd_config_show(path, NULL, &v, &err), -HERD_ECONFIG);
    assert_null(v);
    char w[BIG];
    snprintf(w, sizeof w, "%s: no profile selected: name one, set $HERD_PROFILE, or add a \"default\" profile", path);
    assert_string_equal(err.msg, w);
}

/* ---- the workers' resources: finite numbers > 0 ---- */

static void test_check_resources(void **state)
{
    (void)state;
    char path[PATH_MAX], args[BIG], want[BIG];
    char *out = NULL;
    put("res.yaml", "profiles:\n"
                    "  a:\n"
                    "    cluster_kwargs:\n"
                    "      resources: {GPU: x, MEM: .nan, CPU: -1, OK: 2, INF: .inf}\n", path, sizeof path);
    snprintf(args, sizeof args, "config check '%s'", path);
    assert_int_equal(herd(args, &out), 1);
    snprintf(want, sizeof want,
             "%s:4:24: cluster_kwargs.resources.GPU: expected a finite number > 0, got str x\n"
             "%s:4:32: cluster_kwargs.resources.MEM: expected a finite number > 0, got float .nan\n"
             "%s:4:43: cluster_kwargs.resources.CPU: expected a finite number > 0, got int -1\n"
             "%s:4:59: cluster_kwargs.resources.INF: expected a finite number > 0, got float .inf\n"
             "profile a: 4 problems\n", path, path, path, path);
    if (strncmp(out, want, strlen(want))) fail_msg("got:\n%s\nexpected to start with:\n%s", out, want);
    free(out);
    put("res.yaml", "profiles:\n  a: {cluster_kwargs: {resources: {GPU: 1, MEM: 0.5}}}\n", path, sizeof path);
    assert_int_equal(herd(args, &out), 0);
    assert_string_equal(out, "OK: 1 profile\n");
    free(out);
}

/* ---- a cluster_class naming a file is never loaded by a check ---- */

static void test_check_loads_no_file(void **state)
{
    (void)state;
    char so[PATH_MAX + 64], mark[128], text[BIG], path[PATH_MAX], args[BIG], want[BIG];
    char *out = NULL;
    snprintf(so, sizeof so, "%s/tests/fixtures/ctor_mark.so", build_dir);
    snprintf(mark, sizeof mark, "%s/loaded", tmp);
    setenv("HERD_T_CTOR_MARK", mark, 1);
    snprintf(text, sizeof text, "profiles:\n  lib:\n    cluster_class: %s:Anything\n"
             "    cluster_kwargs: {n_workers: 1}\n", so);
    put("lib.yaml", text, path, sizeof path);
    snprintf(args, sizeof args, "config check '%s'", path);
    assert_int_equal(herd(args, &out), 0);
    snprintf(want, sizeof want, "%s:3:20: note: cluster_class names a file: not loaded (a check runs no code "
             "from it), so cluster_kwargs were not checked against its schema\nOK: 1 profile\n", path);
    assert_string_equal(out, want);
    free(out);
    snprintf(args, sizeof args, "config show -f '%s' lib", path);
    assert_int_equal(herd(args, &out), 0);
    free(out);
    assert_int_equal(access(mark, F_OK), -1);              /* its constructor never ran */

    /* what is checked without loading: a regular file with an ELF header */
    put("fake.so", "#!/bin/sh\necho hi\n", NULL, 0);
    const char *bad[][2] = { { "fake.so", "not a shared library (no ELF header)" },
                             { "missing.so", "No such file or directory" },
                             { "home", "not a regular file" } };
    for (size_t i = 0; i < 3; i++) {
        snprintf(text, sizeof text, "profiles:\n  lib: {cluster_class: '%s/%s:X'}\n", tmp, bad[i][0]);
        put("lib.yaml", text, path, sizeof path);
        snprintf(args, sizeof args, "config check '%s'", path);
        assert_int_equal(herd(args, &out), 1);
        snprintf(want, sizeof want, "cluster_class \"%s/%s:X\": %s/%s: %s\n", tmp, bad[i][0], tmp, bad[i][0], bad[i][1]);
        assert_contains(out, want);
        free(out);
    }

    /* the marker works: loading the library does leave it */
    void *h = dlopen(so, RTLD_NOW | RTLD_LOCAL);
    if (!h) fail_msg("dlopen %s: %s", so, dlerror());
    assert_int_equal(access(mark, F_OK), 0);
    dlclose(h);
    unsetenv("HERD_T_CTOR_MARK");
}

/* ---- herd config paths and list ---- */

static void test_paths_and_list(void **state)
{
    (void)state;
    char *out = NULL, want[BIG];
    assert_int_equal(herd("config paths", &out), 0);
    snprintf(want, sizeof want,
             "herd.yaml is looked for in this order; the first that exists is used:\n"
             "  1. $HERD_CONFIG       -        (not set)\n"
             "  2. current directory  missing  ./herd.yaml\n"
             "  3. ~/.config          missing  %s/home/.config/herd/herd.yaml\n", tmp);
    if (strncmp(out, want, strlen(want))) fail_msg("got:\n%s\nexpected to start with:\n%s", out, want);
    snprintf(want, sizeof want, "  4. system             missing  %s\n"
             "used: none (no profiles apply)\n"
             "profile: \"default\" if the file has one ($HERD_PROFILE is not set)\n", sys_yaml);
    assert_contains(out, want);
    free(out);

    char path[PATH_MAX];
    put("herd.yaml", "profiles:\n"
                     "  default: {description: two workers, cluster_kwargs: {n_workers: 2}}\n"
                     "  remote: {address: tcp://127.0.0.1:8786}\n", NULL, 0);
    put("mine.yaml", "profiles: {}\n", path, sizeof path);
    setenv("HERD_PROFILE", "remote", 1);
    assert_int_equal(herd("config paths", &out), 0);
    assert_contains(out, "  2. current directory  found    ./herd.yaml   <- used\n");
    assert_contains(out, "used: ./herd.yaml\nprofile: remote (from $HERD_PROFILE)\n");
    free(out);
    assert_int_equal(herd("config list", &out), 0);
    assert_string_equal(out, "default          local.LocalCluster           two workers\n"
                             "remote           tcp://127.0.0.1:8786         \n");
    free(out);

    setenv("HERD_CONFIG", path, 1);
    assert_int_equal(herd("config paths", &out), 0);
    snprintf(want, sizeof want, "  1. $HERD_CONFIG       found    %s   <- used\n"
                                "  2. current directory  found    ./herd.yaml\n", path);
    assert_contains(out, want);
    free(out);
    assert_int_equal(herd("config list", &out), 0);
    snprintf(want, sizeof want, "%s: no profiles\n", path);
    assert_string_equal(out, want);
    free(out);

    setenv("HERD_CONFIG", "/nonexistent/herd.yaml", 1);
    assert_int_equal(herd("config paths", &out), 1);
    assert_contains(out, "  1. $HERD_CONFIG       missing  /nonexistent/herd.yaml\n");
    assert_contains(out, "used: none: $HERD_CONFIG names a file that does not exist");
    free(out);
    assert_int_equal(herd("config check", &out), 1);
    assert_string_equal(out, "herd config check: HERD_CONFIG=/nonexistent/herd.yaml: No such file or directory\n");
    free(out);
}

int main(void)
{
    find_build_dir();
    const char *need[] = { herd_bin, fixture };
    for (int i = 0; i < 2; i++)
        if (access(need[i], R_OK)) {
            fprintf(stderr, "test_config: %s is missing: build it first (make tests-build)\n", need[i]);
            return 1;
        }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_search_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_select, setup, teardown),
        cmocka_unit_test_setup_teardown(test_merge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_good, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_loads_no_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_resources, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_bad, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_runtime, setup, teardown),
        cmocka_unit_test_setup_teardown(test_code_overrides_profile, setup, teardown),
        cmocka_unit_test_setup_teardown(test_show, setup, teardown),
        cmocka_unit_test_setup_teardown(test_paths_and_list, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
