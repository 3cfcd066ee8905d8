/* tests/integration/test_tasks_more.c — tasks named "path/lib.so:function",
 * the tags annotation reaching the task, and a worker that goes silent
 * (stopped, not dead) being declared dead by heartbeat timeout with its task
 * completing elsewhere. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <herd/herd.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char fixture[PATH_MAX], rsched[PATH_MAX], herd_bin[PATH_MAX];

static int tags_of(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    const herd_value *t = herd_task_tags(ctx);
    *out = t ? herd_value_copy(t) : herd_nil();
    return 0;
}
HERD_TASK(tags_of);

/* (marker path): the first attempt writes its pid to the marker and sleeps
 * long; a later attempt (elsewhere) returns at once. Returns the pid. */
static int pid_then_sleep(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    const char *marker = herd_as_str(herd_at(args, 0));
    FILE *f = fopen(marker, "r");
    int first = f == NULL;
    if (f) fclose(f);
    if (first) {
        char tmp[PATH_MAX + 8];
        snprintf(tmp, sizeof tmp, "%s.tmp", marker);
        f = fopen(tmp, "w");
        if (!f) return herd_task_fail(ctx, "cannot write %s", tmp);
        fprintf(f, "%ld\n", (long)getpid());
        fclose(f);
        rename(tmp, marker);
        sleep(30);
    }
    *out = herd_int(getpid());
    return 0;
}
HERD_TASK(pid_then_sleep);

static herd_runner *flow(const char *ck, const char *client)
{
    herd_runner_opts o = { .cluster_kwargs = ck, .client_kwargs = client };
    herd_runner *r;
    herd_err err;
    if (herd_runner_new(&r, &o, &err) || herd_flow_begin(r, "more", &err)) fail_msg("%s", err.msg);
    return r;
}

static void end(herd_runner *r)
{
    herd_err err;
    herd_flow_end(r, false, &err);
    herd_runner_free(r);
}

static void test_path_so_task(void **state)
{
    herd_runner *r = flow("{n_workers: 1, threads_per_worker: 1}", NULL);
    char name[PATH_MAX + 16];
    snprintf(name, sizeof name, "%s:triple", fixture);
    herd_future *f;
    herd_err err;
    const herd_value *v;
    assert_int_equal(herd_submit(r, name, herd_tuple("i", 7), &f, &err), 0);
    if (herd_future_result(f, 20, &v, &err)) fail_msg("%s", err.msg);
    assert_int_equal(herd_as_int(v), 21);
    snprintf(name, sizeof name, "%s:nope", fixture);
    assert_int_equal(herd_submit(r, name, NULL, &f, &err), -HERD_ENOTASK);
    assert_non_null(strstr(err.msg, "task_lib.so"));
    assert_non_null(strstr(err.msg, "\"nope\""));
    assert_int_equal(herd_submit(r, "/no/such/lib.so:fn", NULL, &f, &err), -HERD_EPLUGIN);
    assert_non_null(strstr(err.msg, "/no/such/lib.so"));
    end(r);
}

static void test_tags_reach_the_task(void **state)
{
    herd_runner *r = flow("{n_workers: 1, threads_per_worker: 1}", NULL);
    herd_err err;
    assert_int_equal(herd_annotate_push(r, "{tags: [etl]}", &err), 0);
    herd_future *a, *b;
    assert_int_equal(herd_submit_annotated(r, "tags_of", NULL, "{tags: [etl, nightly]}", &a, &err), 0);
    herd_annotate_pop(r);
    assert_int_equal(herd_submit(r, "tags_of", NULL, &b, &err), 0);
    const herd_value *v;
    if (herd_future_result(a, 20, &v, &err)) fail_msg("%s", err.msg);
    assert_int_equal(herd_len(v), 2);
    assert_string_equal(herd_as_str(herd_at(v, 0)), "etl");
    assert_string_equal(herd_as_str(herd_at(v, 1)), "nightly");
    if (herd_future_result(b, 20, &v, &err)) fail_msg("%s", err.msg);
    assert_int_equal(herd_typeof(v), HERD_NIL);        /* the scope was popped */
    assert_int_equal(herd_submit_annotated(r, "tags_of", NULL, "{tags: [1]}", &a, &err), -HERD_EARG);
    assert_non_null(strstr(err.msg, "annotations.tags[0]"));
    end(r);
}

static void test_silent_worker_declared_dead(void **state)
{
    herd_runner *r = flow("{n_workers: 2, threads_per_worker: 1}",
                          "{heartbeat_interval: 0.1, heartbeat_timeout: 1}");
    herd_err err;
    if (herd_wait_for_workers(r, 2, 20, &err)) fail_msg("%s", err.msg);
    char marker[64];
    snprintf(marker, sizeof marker, "/tmp/herd-silent-%ld", (long)getpid());
    unlink(marker);
    herd_future *f;
    assert_int_equal(herd_submit(r, "pid_then_sleep", herd_tuple("s", marker), &f, &err), 0);
    long pid = 0;
    for (int i = 0; i < 2000 && !pid; i++) {
        FILE *m = fopen(marker, "r");
        if (m) { if (fscanf(m, "%ld", &pid) != 1) pid = 0; fclose(m); }
        if (!pid) usleep(10000);
    }
    assert_true(pid > 0);
    assert_int_equal(kill((pid_t)pid, SIGSTOP), 0);     /* alive, but silent */
    const herd_value *v;
    int rc = herd_future_result(f, 20, &v, &err);
    kill((pid_t)pid, SIGCONT);
    if (rc) fail_msg("%s", err.msg);
    assert_int_not_equal(herd_as_int(v), pid);          /* it ran again on the other worker */
    assert_int_equal(herd_runner_workers(r, NULL), 1);  /* the silent one was removed */
    unlink(marker);
    end(r);
}

static int echo_pid(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    *out = herd_int(getpid());
    return 0;
}
HERD_TASK(echo_pid);

/* A provider whose start_scheduler runs the scheduler (a herd scheduler
 * child): the flow connects to it as a client, workers dial it, and closing
 * the cluster stops it. */
static void test_provider_runs_the_scheduler(void **state)
{
    char cls[PATH_MAX + 16], ck[PATH_MAX + 64];
    snprintf(cls, sizeof cls, "%s:RemoteSched", rsched);
    snprintf(ck, sizeof ck, "{n_workers: 2, herd: '%s'}", herd_bin);
    herd_runner_opts o = { .cluster_class = cls, .cluster_kwargs = ck };
    herd_runner *r;
    herd_err err;
    if (herd_runner_new(&r, &o, &err) || herd_flow_begin(r, "remote-sched", &err)) fail_msg("%s", err.msg);
    const char *addr = herd_runner_address(r);
    assert_non_null(addr);
    assert_true(strncmp(addr, "tcp://127.0.0.1:", 16) == 0);     /* not our own unix socket */
    if (herd_wait_for_workers(r, 2, 20, &err)) fail_msg("%s", err.msg);
    herd_future *f[20];
    for (int i = 0; i < 20; i++) assert_int_equal(herd_submit(r, "echo_pid", NULL, &f[i], &err), 0);
    for (int i = 0; i < 20; i++) {
        const herd_value *v;
        if (herd_future_result(f[i], 20, &v, &err)) fail_msg("%s", err.msg);
        assert_int_not_equal(herd_as_int(v), getpid());         /* ran in a worker process */
    }
    char port[16];
    snprintf(port, sizeof port, "%s", strrchr(addr, ':') + 1);
    end(r);
    /* the scheduler went with the cluster: nothing listens on its port */
    char dial[64];
    snprintf(dial, sizeof dial, "tcp://127.0.0.1:%s", port);
    herd_runner_opts o2 = { .address = dial, .client_kwargs = "{connect_timeout: 0.3}" };
    assert_int_equal(herd_runner_new(&r, &o2, &err), 0);
    assert_int_not_equal(herd_flow_begin(r, "after", &err), 0);
    herd_runner_free(r);
    /* adaptive scaling reads that scheduler's load over the connection */
    snprintf(ck, sizeof ck, "{n_workers: 0, herd: '%s'}", herd_bin);
    herd_runner_opts o3 = { .cluster_class = cls, .cluster_kwargs = ck,
                            .adapt_kwargs = "{minimum: 0, maximum: 2, interval: 0.05}" };
    assert_int_equal(herd_runner_new(&r, &o3, &err), 0);
    if (herd_flow_begin(r, "adaptive", &err)) fail_msg("%s", err.msg);
    assert_int_equal(herd_runner_workers(r, NULL), 0);
    herd_future *g[8];
    for (int i = 0; i < 8; i++) assert_int_equal(herd_submit(r, "echo_pid", NULL, &g[i], &err), 0);
    for (int i = 0; i < 8; i++) {
        const herd_value *v;
        if (herd_future_result(g[i], 20, &v, &err)) fail_msg("%s", err.msg);   /* a worker was started */
        herd_future_release(g[i]);
    }
    end(r);
    /* security: temporary reaches that scheduler too (its certificate comes
     * from herd_scheduler_envp) … */
    snprintf(ck, sizeof ck, "{n_workers: 1, herd: '%s'}", herd_bin);
    herd_runner_opts o5 = { .cluster_class = cls, .cluster_kwargs = ck, .client_kwargs = "{security: temporary}" };
    assert_int_equal(herd_runner_new(&r, &o5, &err), 0);
    if (herd_flow_begin(r, "remote-tls", &err)) fail_msg("%s", err.msg);
    assert_true(strncmp(herd_runner_address(r), "tls://127.0.0.1:", 16) == 0);
    herd_future *h;
    const herd_value *hv;
    assert_int_equal(herd_submit(r, "echo_pid", NULL, &h, &err), 0);
    if (herd_future_result(h, 20, &hv, &err)) fail_msg("%s", err.msg);
    herd_future_release(h);
    end(r);
    /* … and a provider whose scheduler skipped it is refused, not used in clear */
    snprintf(ck, sizeof ck, "{n_workers: 1, herd: '%s', no_tls: true}", herd_bin);
    herd_runner_opts o6 = { .cluster_class = cls, .cluster_kwargs = ck, .client_kwargs = "{security: temporary}" };
    assert_int_equal(herd_runner_new(&r, &o6, &err), 0);
    assert_int_equal(herd_flow_begin(r, "remote-no-tls", &err), 0);   /* start: lazy — the first submit starts it */
    herd_future *none = NULL;
    assert_int_not_equal(herd_submit(r, "echo_pid", NULL, &none, &err), 0);
    assert_null(none);
    if (!strstr(err.msg, "without a certificate")) fail_msg("unexpected error: %s", err.msg);
    herd_runner_free(r);
    /* … but not a shared `herd scheduler`, which will not drain for a client */
    snprintf(ck, sizeof ck, "{n_workers: 0, herd: '%s', shared: true}", herd_bin);
    herd_runner_opts o4 = { .cluster_class = cls, .cluster_kwargs = ck, .adapt_kwargs = "{maximum: 2}" };
    assert_int_equal(herd_runner_new(&r, &o4, &err), 0);
    assert_int_equal(herd_flow_begin(r, "adaptive-shared", &err), 0);
    assert_int_equal(herd_submit(r, "echo_pid", NULL, &none, &err), -HERD_EARG);
    if (!strstr(err.msg, "adapt_kwargs") || !strstr(err.msg, "shared")) fail_msg("unexpected error: %s", err.msg);
    herd_runner_free(r);
}

/* (MiB): touches that much memory, then waits for the memory monitor. */
static int hog(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    size_t n = (size_t)herd_as_int(herd_at(args, 0)) << 20;
    char *p = malloc(n);
    if (!p) return herd_task_fail(ctx, "hog: malloc failed");
    for (size_t i = 0; i < n; i += 4096) p[i] = (char)i;
    sleep(10);                       /* the worker is stopped before this ends */
    free(p);
    *out = herd_nil();
    return 0;
}
HERD_TASK(hog);

/* A scheduler the provider runs (--herd-scheduler) gets the client's
 * no_workers_timeout on its command line: a task that may run only on a
 * worker that never exists ends Crashed there, saying why. */
static void test_remote_scheduler_no_workers_timeout(void **state)
{
    char cls[PATH_MAX + 16], ck[PATH_MAX + 64];
    snprintf(cls, sizeof cls, "%s:RemoteSched", rsched);
    snprintf(ck, sizeof ck, "{n_workers: 1, herd: '%s'}", herd_bin);
    herd_runner_opts o = { .cluster_class = cls, .cluster_kwargs = ck,
                           .client_kwargs = "{no_workers_timeout: 1, heartbeat_interval: 0.1}" };
    herd_runner *r;
    herd_err err;
    if (herd_runner_new(&r, &o, &err) || herd_flow_begin(r, "remote-no-workers", &err)) fail_msg("%s", err.msg);
    assert_true(strncmp(herd_runner_address(r), "tcp://127.0.0.1:", 16) == 0);   /* the remote one */
    if (herd_wait_for_workers(r, 1, 20, &err)) fail_msg("%s", err.msg);
    herd_future *f;
    if (herd_submit_annotated(r, "echo_pid", NULL, "{workers: [nobody], allow_other_workers: false}", &f, &err))
        fail_msg("%s", err.msg);
    const herd_value *v;
    assert_int_equal(herd_future_result(f, 30, &v, &err), -HERD_ECRASHED);
    const char *why = herd_future_error(f);
    if (!why || !strstr(why, "no_workers_timeout") || !strstr(why, "nobody")) fail_msg("reason: %s", why ? why : "(none)");
    /* the worker it has still runs what it may */
    herd_future *g;
    assert_int_equal(herd_submit(r, "echo_pid", NULL, &g, &err), 0);
    if (herd_future_result(g, 20, &v, &err)) fail_msg("%s", err.msg);
    end(r);
}

/* A worker above its memory_limit exits, and a task that keeps doing that
 * ends Crashed, naming the worker. */
static void test_memory_limit(void **state)
{
    herd_runner *r = flow("{n_workers: 1, threads_per_worker: 1, memory_limit: 200MiB}",
                          "{allowed_failures: 0}");
    herd_err err;
    herd_future *f;
    assert_int_equal(herd_submit(r, "hog", herd_tuple("i", 600), &f, &err), 0);
    const herd_value *v;
    assert_int_equal(herd_future_result(f, 30, &v, &err), -HERD_ECRASHED);
    assert_non_null(strstr(err.msg, "local-0"));
    end(r);
}

int main(int argc, char **argv)
{
    herd_init(&argc, &argv);
    char exe[PATH_MAX - 64];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = '\0';
    *strrchr(exe, '/') = '\0';
    snprintf(fixture, sizeof fixture, "%s/fixtures/task_lib.so", exe);
    snprintf(rsched, sizeof rsched, "%s/fixtures/remote_sched.so", exe);
    snprintf(herd_bin, sizeof herd_bin, "%s/../bin/herd", exe);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_path_so_task),
        cmocka_unit_test(test_tags_reach_the_task),
        cmocka_unit_test(test_silent_worker_declared_dead),
        cmocka_unit_test(test_provider_runs_the_scheduler),
        cmocka_unit_test(test_remote_scheduler_no_workers_timeout),
        cmocka_unit_test(test_memory_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
