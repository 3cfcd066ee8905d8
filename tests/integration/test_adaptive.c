/* tests/integration/test_adaptive.c — adaptive scaling (adapt_kwargs) through
 * the public API on a LocalCluster of real worker processes: a burst grows
 * the cluster from 0 to its maximum and back to 0 without losing a task; the
 * maximum is never exceeded (checked from the provider's own start/retire log
 * lines, so workers still starting count too); a cluster started above
 * maximum shrinks to it and never drops below minimum; scale-down is
 * graceful (a busy worker is kept until its task ends); workers as threads
 * (processes: false) go through the same cycle; every decision is logged with
 * its reason; bad adapt_kwargs are refused; a scale-down while the last
 * tasks run drops no connection and reschedules no task (each ran once).
 *
 * No assertion is about how long anything took: waits are bounded polls, and
 * the long task of the graceful test runs until the test tells it to end. */
#include <herd/herd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdatomic.h>
#include <cmocka.h>

#include "../support/testutil.h"

/* ---- tasks (they run in the worker processes) ---- */

/* (ms, i) -> i, after sleeping ms */
static int t_nap(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    tu_sleep_ms((long)herd_as_int(herd_at(args, 0)));
    *out = herd_int(herd_as_int(herd_at(args, 1)));
    return 0;
}
HERD_TASK(t_nap);

/* (path) -> the name of the worker that ran it, once path exists */
static int t_until_file(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    const char *path = herd_as_str(herd_at(args, 0));
    double end = tu_now() + 2 * TU_WAIT_S;
    while (path && access(path, F_OK) != 0) {
        if (tu_now() > end) return herd_task_fail(ctx, "t_until_file: %s never appeared", path);
        tu_sleep_ms(5);
    }
    *out = herd_str(herd_task_worker_name(ctx));
    return 0;
}
HERD_TASK(t_until_file);

/* (dir, i, ms) -> i: appends a line to dir/run-i (one per time it ran), then
 * sleeps ms */
static int t_counted(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    char path[256];
    snprintf(path, sizeof path, "%s/run-%lld", herd_as_str(herd_at(args, 0)), (long long)herd_as_int(herd_at(args, 1)));
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd < 0 || write(fd, "ran\n", 4) != 4) return herd_task_fail(ctx, "t_counted: %s: %s", path, strerror(errno));
    close(fd);
    tu_sleep_ms((long)herd_as_int(herd_at(args, 2)));
    *out = herd_int(herd_as_int(herd_at(args, 1)));
    return 0;
}
HERD_TASK(t_counted);

/* ---- helpers ---- */

static herd_runner *adaptive_flow(const char *ck, const char *ak, tu_log *log)
{
    herd_runner *r = NULL;
    herd_err err = { 0 };
    herd_runner_opts o = { .cluster_kwargs = ck, .adapt_kwargs = ak, .log = tu_log_sink, .log_ud = log };
    if (herd_runner_new(&r, &o, &err)) fail_msg("herd_runner_new(%s, %s): %s", ck, ak, err.msg);
    if (herd_flow_begin(r, "adaptive", &err)) {
        herd_runner_free(r);
        fail_msg("herd_flow_begin(adapt_kwargs %s): %s", ak, err.msg);
    }
    return r;
}

/* Poll until the connected workers number n; false after TU_WAIT_S. */
static bool wait_workers_eq(herd_runner *r, int n)
{
    double end = tu_now() + TU_WAIT_S;
    while (herd_runner_workers(r, NULL) != n) {
        if (tu_now() > end) return false;
        tu_sleep_ms(5);
    }
    return true;
}

/* How many captured lines contain w1 (and w2 unless NULL). */
static int count_lines(tu_log *l, const char *w1, const char *w2)
{
    int n = 0;
    pthread_mutex_lock(&l->mu);
    for (const char *p = l->text; p && *p;) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char *line = strndup(p, len);
        if (line && strstr(line, w1) && (!w2 || strstr(line, w2))) n++;
        free(line);
        p += len + (e ? 1 : 0);
    }
    pthread_mutex_unlock(&l->mu);
    return n;
}

/* Walk the log in order: the most workers the provider had at once (started
 * and not yet retired, whether connected or not), and the largest size any
 * "scaling up from A to B" decision asked for. */
static void provider_peak(tu_log *l, int *peak, int *asked)
{
    int live = 0;
    *peak = *asked = 0;
    pthread_mutex_lock(&l->mu);
    for (const char *p = l->text; p && *p;) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char *line = strndup(p, len);
        const char *up;
        int from, to;
        if (line && strstr(line, "LocalCluster: started worker")) live++;
        if (line && strstr(line, "LocalCluster: retired worker")) live--;
        if (live > *peak) *peak = live;
        if (line && (up = strstr(line, "scaling up from ")) && sscanf(up, "scaling up from %d to %d", &from, &to) == 2 &&
            to > *asked)
            *asked = to;
        free(line);
        p += len + (e ? 1 : 0);
    }
    pthread_mutex_unlock(&l->mu);
}

typedef struct monitor {
    herd_runner *r;
    atomic_int stop, max_seen;
    pthread_t th;
} monitor;

static void *monitor_main(void *arg)
{
    monitor *m = arg;
    while (!atomic_load(&m->stop)) {
        int n = herd_runner_workers(m->r, NULL);
        if (n > atomic_load(&m->max_seen)) atomic_store(&m->max_seen, n);
        tu_sleep_ms(1);
    }
    return NULL;
}

/* ---- tests ---- */

/* 200 sleeping tasks on an empty cluster: 0 -> 4 -> 0, nothing lost. */
static void test_burst_grows_and_shrinks(void **state)
{
    tu_log log;
    tu_log_init(&log);
    herd_runner *r = adaptive_flow("{n_workers: 0, threads_per_worker: 1}",
                                   "{minimum: 0, maximum: 4, interval: 0.1, wait_count: 3, target_duration: 0.1}", &log);
    assert_int_equal(herd_runner_workers(r, NULL), 0);
    monitor m = { .r = r };
    atomic_init(&m.stop, 0);
    atomic_init(&m.max_seen, 0);
    assert_int_equal(pthread_create(&m.th, NULL, monitor_main, &m), 0);

    enum { N = 200 };
    herd_future *fs[N];
    for (int i = 0; i < N; i++) fs[i] = tu_submit(r, "t_nap", herd_tuple("ii", 50, i), NULL);
    int64_t sum = 0;
    for (int i = 0; i < N; i++) sum += tu_int_result(fs[i]);
    assert_int_equal(sum, (int64_t)N * (N - 1) / 2);              /* every task ran, once */
    for (int i = 0; i < N; i++) assert_int_equal(herd_future_state(fs[i]), HERD_COMPLETED);

    /* the work is over: back to 0 */
    bool shrank = wait_workers_eq(r, 0);
    atomic_store(&m.stop, 1);
    pthread_join(m.th, NULL);
    if (!shrank) fail_msg("still %d workers %.0fs after the work stopped", herd_runner_workers(r, NULL), TU_WAIT_S);
    /* drained workers leave the count at once; the provider stops them after */
    int started = count_lines(&log, "LocalCluster: started worker", NULL);
    double end = tu_now() + TU_WAIT_S;
    while (count_lines(&log, "adaptive: worker", "retired") < started && tu_now() < end) tu_sleep_ms(5);

    int max_seen = atomic_load(&m.max_seen), peak, asked;
    provider_peak(&log, &peak, &asked);
    assert_int_equal(max_seen, 4);          /* grew to the maximum … */
    assert_in_range(peak, 4, 4);            /* … and never past it, counting workers still starting */
    assert_in_range(asked, 1, 4);
    /* decisions with their reasons */
    assert_true(tu_log_has_line(&log, "adaptive: scaling up from 0 to", "ready"));
    assert_true(tu_log_has_line(&log, "adaptive: scaling up", "capped at maximum 4"));
    assert_true(tu_log_has_line(&log, "adaptive: scaling down", "after 3 agreeing intervals"));
    assert_true(tu_log_has_line(&log, "adaptive: scaling down", "0 ready + 0 running tasks"));
    /* every worker started was retired through a drain */
    assert_int_equal(count_lines(&log, "adaptive: worker", "retired (drained and left"), started);
    for (int i = 0; i < N; i++) herd_future_release(fs[i]);
    tu_flow_end(r);
    tu_log_free(&log);
}

/* Started above maximum it shrinks to it; idle, it stays at minimum. */
static void test_bounds(void **state)
{
    tu_log log;
    tu_log_init(&log);
    herd_runner *r = adaptive_flow("{n_workers: 3, threads_per_worker: 1}",
                                   "{minimum: 1, maximum: 1, interval: 0.05, wait_count: 2}", &log);
    if (!wait_workers_eq(r, 1)) fail_msg("%d workers, expected 1 (maximum)", herd_runner_workers(r, NULL));
    /* in one step or two, as the candidates' close counts agree */
    assert_true(tu_log_wait_line(&log, "adaptive: scaling down from 3 to", "raised to minimum 1", TU_WAIT_S));
    /* wait for both retires, then for many more intervals: never below minimum */
    double end = tu_now() + TU_WAIT_S;
    while (count_lines(&log, "adaptive: worker", "retired") < 2 && tu_now() < end) tu_sleep_ms(5);
    assert_int_equal(count_lines(&log, "adaptive: worker", "retired"), 2);
    int decisions = count_lines(&log, "adaptive: scaling", NULL);
    for (int i = 0; i < 20; i++) {          /* 20 polls over >= 10 intervals */
        assert_int_equal(herd_runner_workers(r, NULL), 1);
        tu_sleep_ms(50);
    }
    assert_int_equal(count_lines(&log, "adaptive: scaling", NULL), decisions);   /* settled: no flapping */
    herd_future *f = tu_submit(r, "t_nap", herd_tuple("ii", 1, 7), NULL);
    assert_int_equal(tu_int_result(f), 7);
    herd_future_release(f);
    tu_flow_end(r);
    tu_log_free(&log);
}

/* From nothing, minimum workers are started without any work. */
static void test_minimum_from_empty(void **state)
{
    tu_log log;
    tu_log_init(&log);
    herd_runner *r = adaptive_flow("{n_workers: 0, threads_per_worker: 2}",
                                   "{minimum: 2, maximum: null, interval: 0.05}", &log);
    herd_err err = { 0 };
    if (herd_wait_for_workers(r, 2, TU_WAIT_S, &err)) fail_msg("%s", err.msg);
    assert_true(tu_log_has_line(&log, "adaptive: scaling up from 0 to 2", "raised to minimum 2"));
    assert_true(tu_log_has_line(&log, "adaptive: scaling", "maximum none"));
    tu_flow_end(r);
    tu_log_free(&log);
}

/* Scale-down drains: idle workers go, the busy one stays until its task ends. */
static void test_graceful_scale_down(void **state)
{
    char dir[64], go[128];
    tu_mkdtemp(dir, sizeof dir);
    snprintf(go, sizeof go, "%s/go", dir);
    tu_log log;
    tu_log_init(&log);
    herd_runner *r = adaptive_flow("{n_workers: 0, threads_per_worker: 1}",
                                   "{minimum: 0, maximum: 3, interval: 0.05, wait_count: 2, target_duration: 0.01}", &log);
    herd_future *lng = tu_submit(r, "t_until_file", herd_tuple("s", go), NULL);
    herd_future *s1 = tu_submit(r, "t_nap", herd_tuple("ii", 200, 1), NULL);
    herd_future *s2 = tu_submit(r, "t_nap", herd_tuple("ii", 200, 2), NULL);
    assert_int_equal(tu_int_result(s1) + tu_int_result(s2), 3);
    /* the long task holds one worker: the others are retired meanwhile */
    double end = tu_now() + TU_WAIT_S;
    int started, retired;
    for (;;) {
        started = count_lines(&log, "LocalCluster: started worker", NULL);
        retired = count_lines(&log, "adaptive: worker", "retired");
        if ((started >= 2 && retired == started - 1 && herd_runner_workers(r, NULL) == 1) || tu_now() > end) break;
        tu_sleep_ms(5);
    }
    assert_true(started >= 2);
    assert_int_equal(retired, started - 1);
    assert_int_equal(herd_runner_workers(r, NULL), 1);
    assert_false(herd_state_is_final(herd_future_state(lng)));
    /* the long task ends where it started, on the worker that was kept */
    assert_int_equal(tu_write_file(go, "go"), 0);
    const herd_value *v = NULL;
    herd_err err = { 0 };
    if (herd_future_result(lng, TU_WAIT_S, &v, &err)) fail_msg("long task: %s", err.msg);
    const char *kept = herd_as_str(v);
    assert_non_null(kept);
    char line[128];
    snprintf(line, sizeof line, "adaptive: worker %s retired", kept);
    assert_false(tu_log_has_line(&log, line, NULL));   /* not before its task ended */
    if (!wait_workers_eq(r, 0)) fail_msg("the kept worker was not retired after its task");
    assert_true(tu_log_wait_line(&log, line, "drained", TU_WAIT_S));
    herd_future_release(lng);
    herd_future_release(s1);
    herd_future_release(s2);
    tu_flow_end(r);
    tu_log_free(&log);
    tu_rmtree(dir);
}

/* Scale-down while the last tasks still run: every retired worker was
 * drained and closed by the scheduler (no connection dropped under a task),
 * and every task ran exactly once (none was rescheduled). */
static void test_scale_down_drops_nothing(void **state)
{
    char dir[64];
    tu_mkdtemp(dir, sizeof dir);
    tu_log log;
    tu_log_init(&log);
    herd_runner *r = adaptive_flow("{n_workers: 0, threads_per_worker: 1}",
                                   "{minimum: 0, maximum: 4, interval: 0.05, wait_count: 1, target_duration: 0.01}", &log);
    enum { N = 48 };
    herd_future *f[N];
    /* short tasks, then a tail of longer ones: the queue empties while they run */
    for (int i = 0; i < N; i++) f[i] = tu_submit(r, "t_counted", herd_tuple("sii", dir, i, i < N - 4 ? 20 : 400), NULL);
    for (int i = 0; i < N; i++) assert_int_equal(tu_int_result(f[i]), i);
    if (!wait_workers_eq(r, 0)) fail_msg("the cluster did not shrink to 0");
    int started = count_lines(&log, "LocalCluster: started worker", NULL);
    assert_true(started >= 2);
    /* every worker that went was asked to (closed), none left on its own */
    double end = tu_now() + TU_WAIT_S;
    while ((count_lines(&log, ") closed", NULL) < started || count_lines(&log, "adaptive: worker", "retired") < started)
           && tu_now() < end)
        tu_sleep_ms(5);
    assert_int_equal(count_lines(&log, ") closed", NULL), started);
    assert_int_equal(count_lines(&log, ") left: ", NULL), 0);
    assert_int_equal(count_lines(&log, "rescheduling", NULL), 0);
    assert_int_equal(count_lines(&log, "adaptive: worker", "retired"), started);
    /* each task ran once */
    for (int i = 0; i < N; i++) {
        char path[128];
        snprintf(path, sizeof path, "%s/run-%d", dir, i);
        char *txt = tu_read_file(path);
        if (!txt || strcmp(txt, "ran\n")) fail_msg("task %d ran %s", i, txt ? "more than once" : "never");
        free(txt);
        herd_future_release(f[i]);
    }
    tu_flow_end(r);
    tu_log_free(&log);
    tu_rmtree(dir);
}

/* Workers as threads of this process: the same hooks, the same cycle. */
static void test_thread_workers(void **state)
{
    tu_log log;
    tu_log_init(&log);
    herd_runner *r = adaptive_flow("{n_workers: 0, threads_per_worker: 1, processes: false}",
                                   "{minimum: 0, maximum: 2, interval: 0.05, wait_count: 2, target_duration: 0.01}", &log);
    enum { N = 20 };
    herd_future *fs[N];
    for (int i = 0; i < N; i++) fs[i] = tu_submit(r, "t_nap", herd_tuple("ii", 20, i), NULL);
    int64_t sum = 0;
    for (int i = 0; i < N; i++) sum += tu_int_result(fs[i]);
    assert_int_equal(sum, (int64_t)N * (N - 1) / 2);
    if (!wait_workers_eq(r, 0)) fail_msg("still %d thread workers after the work", herd_runner_workers(r, NULL));
    int started = count_lines(&log, "LocalCluster: started worker", NULL), peak, asked;
    double end = tu_now() + TU_WAIT_S;
    while (count_lines(&log, "adaptive: worker", "retired") < started && tu_now() < end) tu_sleep_ms(5);
    assert_int_equal(count_lines(&log, "adaptive: worker", "retired"), started);
    provider_peak(&log, &peak, &asked);
    assert_in_range(peak, 1, 2);
    for (int i = 0; i < N; i++) herd_future_release(fs[i]);
    tu_flow_end(r);
    tu_log_free(&log);
}

static void test_bad_adapt_kwargs(void **state)
{
    herd_runner *r = NULL;
    herd_err err = { 0 };
    herd_runner_opts o = { .cluster_kwargs = "{n_workers: 0}", .adapt_kwargs = "{minimum: 3, maximum: 2}",
                           .log = tu_quiet_sink };
    assert_int_not_equal(herd_runner_new(&r, &o, &err), 0);
    assert_null(r);
    assert_non_null(strstr(err.msg, "adapt_kwargs.maximum"));
    assert_non_null(strstr(err.msg, "minimum 3"));
    o.adapt_kwargs = "{minimum: 0, wait_count: 0}";
    assert_int_not_equal(herd_runner_new(&r, &o, &err), 0);
    assert_non_null(strstr(err.msg, "wait_count"));
}

int main(int argc, char **argv)
{
    herd_init(&argc, &argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_grows_and_shrinks),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_minimum_from_empty),
        cmocka_unit_test(test_graceful_scale_down),
        cmocka_unit_test(test_scale_down_drops_nothing),
        cmocka_unit_test(test_thread_workers),
        cmocka_unit_test(test_bad_adapt_kwargs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
