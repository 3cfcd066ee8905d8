/* tests/unit/test_options.c — a flow run's own options: client_kwargs.log_level
 * and $HERD_LOG_LEVEL (the flow's log sink drops lines below the level, the
 * workers get it in their environment, a bad value is refused naming the
 * field and the choices). Real flows: LocalCluster workers as threads. */
#include <herd/herd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define assert_contains(hay, needle) do {                                            \
        if (!strstr((hay), (needle)))                                                  \
            fail_msg("expected \"%s\" in \"%s\"", (needle), (hay));                    \
    } while (0)

/* Every line the flow's sink receives, by level. */
typedef struct sink { pthread_mutex_t mu; int count[4]; char last_info[512]; } sink;

static void capture(void *ud, int level, const char *line)
{
    sink *s = ud;
    pthread_mutex_lock(&s->mu);
    if (level >= 0 && level < 4) s->count[level]++;
    if (level == HERD_LOG_INFO) snprintf(s->last_info, sizeof s->last_info, "%s", line);
    pthread_mutex_unlock(&s->mu);
}

/* What the workers' environment said about the log level at create. */
static char seen_level[64];
static const herd_provider *local;

static int recording_create(herd_cluster **out, const herd_value *kwargs, const herd_cluster_env *env, herd_err *err)
{
    seen_level[0] = '\0';
    for (const char *const *e = env->worker_envp; e && *e; e++)
        if (!strncmp(*e, "HERD_LOG_LEVEL=", 15)) snprintf(seen_level, sizeof seen_level, "%s", *e + 15);
    return local->create(out, kwargs, env, err);
}

static herd_provider recording;

static int setup(void **state)
{
    char exe[PATH_MAX], prov[PATH_MAX + 16];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    assert_true(n > 0);
    exe[n] = '\0';
    *strrchr(exe, '/') = '\0';
    *strrchr(exe, '/') = '\0';
    snprintf(prov, sizeof prov, "%s/providers", exe);
    setenv("HERD_PROVIDER_PATH", prov, 1);
    unsetenv("HERD_LOG_LEVEL");
    unsetenv("HERD_PROFILE");
    unsetenv("HERD_CONFIG");
    setenv("XDG_CONFIG_HOME", "/nonexistent", 1);   /* no herd.yaml applies: not from the config home */
    if (chdir("/")) return -1;                       /* … nor from the current directory */
    herd_err err = { 0 };
    if (herd_provider_resolve("local.LocalCluster", &local, &err)) fail_msg("%s", err.msg);
    recording = *local;
    recording.create = recording_create;
    return 0;
}

/* One flow run with client_kwargs ck; the lines its sink got. */
static void run(const char *ck, sink *s)
{
    memset(s->count, 0, sizeof s->count);
    s->last_info[0] = '\0';
    char eager[256];                 /* the cluster starts in herd_flow_begin: its lines are the ones counted */
    snprintf(eager, sizeof eager, "{start: eager%s%s", ck ? ", " : "}", ck ? ck + 1 : "");
    herd_runner_opts o = { .cluster_provider = &recording, .cluster_kwargs = "{n_workers: 1, processes: false}",
                           .client_kwargs = eager, .log = capture, .log_ud = s };
    herd_runner *r = NULL;
    herd_err err = { 0 };
    if (herd_runner_new(&r, &o, &err)) fail_msg("herd_runner_new: %s", err.msg);
    if (herd_flow_begin(r, "levels", &err)) fail_msg("herd_flow_begin: %s", err.msg);
    assert_int_equal(herd_flow_end(r, false, &err), 0);
    herd_runner_free(r);
}

static void test_log_level(void **state)
{
    sink s = { .mu = PTHREAD_MUTEX_INITIALIZER };
    /* the default: INFO lines ("cluster up", "finished") reach the sink */
    run(NULL, &s);
    assert_true(s.count[HERD_LOG_INFO] >= 2);
    assert_contains(s.last_info, "flow run levels finished");
    assert_string_equal(seen_level, "INFO");
    /* warning: none does, and the workers are told */
    run("{log_level: warning}", &s);
    assert_int_equal(s.count[HERD_LOG_INFO], 0);
    assert_int_equal(s.count[HERD_LOG_DEBUG], 0);
    assert_string_equal(seen_level, "WARNING");
    /* debug lets the DEBUG lines through (LocalCluster logs its sizing) */
    run("{log_level: DEBUG}", &s);
    assert_true(s.count[HERD_LOG_DEBUG] >= 1);
    assert_string_equal(seen_level, "DEBUG");
    /* from the environment when client_kwargs do not say; client_kwargs win */
    setenv("HERD_LOG_LEVEL", "error", 1);
    run(NULL, &s);
    assert_int_equal(s.count[HERD_LOG_INFO], 0);
    assert_string_equal(seen_level, "ERROR");
    run("{log_level: info}", &s);
    assert_true(s.count[HERD_LOG_INFO] >= 2);
    unsetenv("HERD_LOG_LEVEL");
}

static void test_log_level_refused(void **state)
{
    herd_runner *r = (herd_runner *)1;
    herd_err err = { 0 };
    herd_runner_opts o = { .client_kwargs = "{log_level: loud}" };
    assert_int_equal(herd_runner_new(&r, &o, &err), -HERD_ECONFIG);
    assert_null(r);
    assert_string_equal(err.msg, "client_kwargs.log_level: expected one of debug, info, warning or error, got \"loud\"");
    o.client_kwargs = "{log_level: 3}";
    assert_int_equal(herd_runner_new(&r, &o, &err), -HERD_ECONFIG);
    assert_string_equal(err.msg, "client_kwargs.log_level: expected str or null, got int 3");
    o.client_kwargs = NULL;
    setenv("HERD_LOG_LEVEL", "chatty", 1);
    assert_int_equal(herd_runner_new(&r, &o, &err), -HERD_ECONFIG);
    assert_string_equal(err.msg, "HERD_LOG_LEVEL=chatty: expected one of debug, info, warning or error "
                        "(or set client_kwargs.log_level)");
    o.client_kwargs = "{log_level: warning}";       /* client_kwargs decide: the variable is not read */
    assert_int_equal(herd_runner_new(&r, &o, &err), 0);
    herd_runner_free(r);
    unsetenv("HERD_LOG_LEVEL");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_log_level, setup),
        cmocka_unit_test_setup(test_log_level_refused, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
