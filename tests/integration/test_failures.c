/* tests/integration/test_failures.c — things going wrong, with real worker
 * processes: a worker SIGKILLed mid-task (its task runs again elsewhere), a
 * task that kills every worker it lands on (Crashed after allowed_failures),
 * timeouts (with and without retries), and teardown: ending a flow with work
 * pending cancels every future and leaves no worker process behind, and so
 * does SIGTERM or SIGINT to a program in the middle of a flow run (this
 * binary re-executed with --signal-child plays that program). The nanny: a
 * fixed cluster replaces killed workers and workers over memory_limit (named
 * as the cause); a task no worker can run ends after no_workers_timeout; an
 * ignored SIGINT is left alone, a program's own SIGTERM handler still gets
 * every future final; the cluster starts lazily on the first submit.
 *
 * Assertions are about states, messages and which processes exist; waits are
 * bounded but never asserted on. */
#include <herd/herd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdatomic.h>

#include "../support/testutil.h"

/* ---- tasks ---- */

static int64_t arg_int(const herd_value *args, size_t i) { return herd_as_int(herd_at(args, i)); }

/* (ms) -> getpid(), after sleeping ms */
static int t_pid_sleep(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    tu_sleep_ms((long)arg_int(args, 0));
    *out = herd_int(getpid());
    return 0;
}
HERD_TASK(t_pid_sleep);

/* (ms) -> the attempt number; attempt 0 sleeps ms first */
static int t_sleep_first(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    if (herd_task_attempt(ctx) == 0) tu_sleep_ms((long)arg_int(args, 0));
    *out = herd_int(herd_task_attempt(ctx));
    return 0;
}
HERD_TASK(t_sleep_first);

/* (dir): the first run anywhere claims dir/claimed, writes its pid to
 * dir/pid and sleeps (the test kills it); any later run returns its pid. */
/* The first run anywhere claims dir/claimed and writes its pid to dir/pid:
 * 1 for that run, 0 for every later one, -1 if the pid cannot be written. */
static int claim_first(const char *dir)
{
    char claim[4200], pidf[4200], text[32];
    snprintf(claim, sizeof claim, "%s/claimed", dir);
    snprintf(pidf, sizeof pidf, "%s/pid", dir);
    int fd = open(claim, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0) return 0;
    close(fd);
    snprintf(text, sizeof text, "%ld\n", (long)getpid());
    return tu_write_file(pidf, text) ? -1 : 1;
}

static int t_kill_once(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    const char *dir = herd_as_str(herd_at(args, 0));
    int first = claim_first(dir);
    if (first < 0) return herd_task_fail(ctx, "t_kill_once: cannot write %s/pid", dir);
    if (first) {
        for (int i = 0; i < 600; i++) tu_sleep_ms(100);     /* killed long before */
        return herd_task_fail(ctx, "t_kill_once: was not killed");
    }
    *out = herd_int(getpid());
    return 0;
}
HERD_TASK(t_kill_once);

/* () kills its own worker */
static int t_crash(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    raise(SIGKILL);
    return 0;
}
HERD_TASK(t_crash);

/* (dir, limit MiB): the first run anywhere claims dir/claimed, writes its
 * pid to dir/pid and touches twice limit MiB (its worker's memory_limit
 * check ends that worker); any later run returns its pid. */
static int t_hog_once(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    const char *dir = herd_as_str(herd_at(args, 0));
    size_t mib = (size_t)arg_int(args, 1);
    int first = claim_first(dir);
    if (first < 0) return herd_task_fail(ctx, "t_hog_once: cannot write %s/pid", dir);
    if (first) {
        size_t n = 2 * mib << 20;
        volatile char *p = malloc(n);   /* volatile: the stores are not optimised away */
        if (!p) return herd_task_fail(ctx, "t_hog_once: malloc(%zu) failed", n);
        for (size_t i = 0; i < n; i += 4096) p[i] = 1;
        for (int i = 0; i < 600; i++) tu_sleep_ms(100);     /* the worker exits long before */
        free((char *)p);
        return herd_task_fail(ctx, "t_hog_once: its worker's memory_limit did not end it");
    }
    *out = herd_int(getpid());
    return 0;
}
HERD_TASK(t_hog_once);

/* ---- helpers ---- */

static void release_all(herd_future **fs, size_t n)
{
    for (size_t i = 0; i < n; i++) herd_future_release(fs[i]);
}

/* The pids of both workers of a 2 x 1 cluster: two tasks that sleep go one
 * to each worker (the scheduler sends a task to the least loaded worker). */
static void two_worker_pids(herd_runner *r, pid_t pids[2])
{
    herd_future *f[2];
    for (int i = 0; i < 2; i++) f[i] = tu_submit(r, "t_pid_sleep", herd_tuple("i", 300), NULL);
    for (int i = 0; i < 2; i++) pids[i] = (pid_t)tu_int_result(f[i]);
    release_all(f, 2);
    assert_int_not_equal(pids[0], pids[1]);
    for (int i = 0; i < 2; i++) {
        assert_int_not_equal(pids[i], getpid());
        assert_false(tu_pid_gone(pids[i]));
    }
}

/* ---- 6. workers dying ---- */
static void test_worker_killed_mid_task(void **state)
{
    char dir[64], pidf[128];
    tu_mkdtemp(dir, sizeof dir);
    snprintf(pidf, sizeof pidf, "%s/pid", dir);
    herd_runner *r = tu_flow("{n_workers: 2, threads_per_worker: 1}", NULL, 2, NULL);
    herd_future *f = tu_submit(r, "t_kill_once", herd_tuple("s", dir), NULL);
    char *text = tu_wait_file(pidf, TU_WAIT_S);
    pid_t victim = (pid_t)atol(text);
    free(text);
    assert_true(victim > 1);
    assert_int_not_equal(victim, getpid());
    assert_int_equal(kill(victim, SIGKILL), 0);

    int64_t ran_on = tu_int_result(f);
    assert_int_equal(herd_future_state(f), HERD_COMPLETED);
    assert_int_not_equal(ran_on, victim);
    assert_true(tu_wait_pid_gone(victim, 5));
    herd_future_release(f);
    /* the nanny replaced the dead worker: the cluster is back to 2 */
    herd_err err = { 0 };
    if (herd_wait_for_workers(r, 2, TU_WAIT_S, &err)) fail_msg("no replacement for the killed worker: %s", err.msg);
    pid_t now[2];
    two_worker_pids(r, now);
    assert_int_not_equal(now[0], victim);
    assert_int_not_equal(now[1], victim);
    tu_flow_end(r);
    tu_rmtree(dir);
}

static void test_task_crashing_every_worker(void **state)
{
    herd_runner *r = tu_flow("{n_workers: 3, threads_per_worker: 1}", "{allowed_failures: 1}", 3, NULL);
    herd_err err;
    const herd_value *v;
    herd_future *f = tu_submit(r, "t_crash", NULL, "{retries: 5}");   /* retries are for the task's own errors */
    assert_int_equal(herd_future_result(f, TU_WAIT_S, &v, &err), -HERD_ECRASHED);
    assert_int_equal(herd_future_state(f), HERD_CRASHED);
    const char *why = herd_future_error(f);
    assert_non_null(why);
    assert_non_null(strstr(why, "worker local-"));
    assert_non_null(strstr(why, "allowed_failures=1"));
    assert_non_null(strstr(err.msg, herd_future_name(f)));
    herd_future_release(f);
    /* two workers died (the task's two tries); the nanny replaced them */
    if (herd_wait_for_workers(r, 3, TU_WAIT_S, &err)) fail_msg("dead workers not replaced: %s", err.msg);
    f = tu_submit(r, "t_pid_sleep", herd_tuple("i", 0), NULL);
    assert_true(tu_int_result(f) > 1);
    herd_future_release(f);
    tu_flow_end(r);
}

/* A fixed cluster replaces its dead workers (the nanny): both workers of 2
 * SIGKILLed, every pending future completes on the replacements. */
static void test_fixed_cluster_replaces_killed_workers(void **state)
{
    tu_log log;
    tu_log_init(&log);
    log.echo_level = HERD_LOG_ERROR;
    herd_runner *r = tu_flow("{n_workers: 2, threads_per_worker: 1}", NULL, 2, &log);
    pid_t pids[2];
    two_worker_pids(r, pids);
    enum { N = 20 };
    herd_future *fs[N];
    for (int i = 0; i < N; i++) fs[i] = tu_submit(r, "t_pid_sleep", herd_tuple("i", 50), NULL);
    for (int i = 0; i < 2; i++) assert_int_equal(kill(pids[i], SIGKILL), 0);
    for (int i = 0; i < N; i++) {
        int64_t p = tu_int_result(fs[i]);         /* fails the test unless Completed */
        (void)p;
    }
    /* the later ones ran on replacements */
    int64_t last = tu_int_result(fs[N - 1]);
    assert_true(last != pids[0] && last != pids[1]);
    release_all(fs, N);
    herd_err err = { 0 };
    if (herd_wait_for_workers(r, 2, TU_WAIT_S, &err)) fail_msg("cluster not back to 2 workers: %s", err.msg);
    assert_true(tu_log_has_line(&log, "nanny: worker", "killed by signal 9"));
    tu_flow_end(r);
    tu_log_free(&log);
}

/* A task over the worker's memory_limit ends that worker with an exit the
 * provider names ("exceeded memory_limit … peak RSS"); the nanny replaces
 * it and the task runs elsewhere. The worker told the scheduler why before
 * it went: its rescheduling line names the limit, not a closed connection,
 * and so does a task's Crashed message when no failure is allowed. */
static void test_memory_limit_names_the_cause(void **state)
{
    char dir[64], pidf[128];
    tu_mkdtemp(dir, sizeof dir);
    snprintf(pidf, sizeof pidf, "%s/pid", dir);
    tu_log log;
    tu_log_init(&log);
    log.echo_level = HERD_LOG_ERROR;
    herd_runner *r = tu_flow("{n_workers: 2, threads_per_worker: 1, memory_limit: 100MiB}", NULL, 2, &log);
    herd_future *f = tu_submit(r, "t_hog_once", herd_tuple("si", dir, 100), NULL);
    int64_t ran_on = tu_int_result(f);
    char *text = tu_read_file(pidf);
    assert_non_null(text);
    long hog = atol(text);
    free(text);
    assert_true(hog > 1);
    assert_int_not_equal(ran_on, hog);
    herd_future_release(f);
    if (!tu_log_wait_line(&log, "nanny: worker", "exceeded memory_limit 100 MiB (peak RSS", TU_WAIT_S))
        fail_msg("no nanny line naming the memory limit in:\n%s", log.text ? log.text : "");
    if (!tu_log_has_line(&log, "died (exceeded memory_limit 100 MiB (RSS ", "; rescheduling"))
        fail_msg("no rescheduling line naming the memory limit in:\n%s", log.text ? log.text : "");
    assert_false(tu_log_has_line(&log, "died (connection closed by peer)", NULL));
    herd_err err = { 0 };
    if (herd_wait_for_workers(r, 2, TU_WAIT_S, &err)) fail_msg("cluster not back to 2 workers: %s", err.msg);
    tu_flow_end(r);
    tu_log_free(&log);
    tu_rmtree(dir);
    /* allowed_failures 0: the task ends Crashed, saying why its worker went */
    tu_mkdtemp(dir, sizeof dir);
    tu_log_init(&log);
    log.echo_level = HERD_LOG_ERROR;
    r = tu_flow("{n_workers: 1, threads_per_worker: 1, memory_limit: 100MiB}", "{allowed_failures: 0}", 1, &log);
    f = tu_submit(r, "t_hog_once", herd_tuple("si", dir, 100), NULL);
    const herd_value *v = NULL;
    assert_int_equal(herd_future_result(f, TU_WAIT_S, &v, &err), -HERD_ECRASHED);
    const char *why = herd_future_error(f);
    if (!why || !strstr(why, "died while running it (exceeded memory_limit 100 MiB (RSS "))
        fail_msg("Crashed message: %s", why ? why : "(none)");
    herd_future_release(f);
    tu_flow_end(r);
    tu_log_free(&log);
    tu_rmtree(dir);
}

/* A task no worker can run ends Crashed after no_workers_timeout: here every
 * worker is refused (a wrong token), so the cluster never has one. */
static void test_no_workers_timeout(void **state)
{
    herd_runner *r = NULL;
    herd_err err = { 0 };
    herd_runner_opts o = { .cluster_kwargs = "{threads_per_worker: 1, env: {HERD_TOKEN: not-the-token}}",
                           .adapt_kwargs = "{minimum: 0, maximum: 1, interval: 0.1}",
                           .client_kwargs = "{no_workers_timeout: 1, heartbeat_interval: 0.1}", .log = tu_quiet_sink };
    if (herd_runner_new(&r, &o, &err) || herd_flow_begin(r, "no-workers", &err)) fail_msg("%s", err.msg);
    herd_future *f = tu_submit(r, "t_pid_sleep", herd_tuple("i", 0), NULL);
    const herd_value *v;
    assert_int_equal(herd_future_result(f, TU_WAIT_S, &v, &err), -HERD_ECRASHED);
    const char *why = herd_future_error(f);
    assert_non_null(why);
    if (!strstr(why, "no_workers_timeout") || !strstr(why, "no workers")) fail_msg("reason: %s", why);
    herd_future_release(f);
    tu_flow_end(r);
}

/* ---- lazy start (client_kwargs.start) ---- */
static void test_lazy_start(void **state)
{
    herd_err err = { 0 };
    /* lazy (the default): a flow run that never submits starts nothing */
    tu_log log;
    tu_log_init(&log);
    herd_runner *r = NULL;
    herd_runner_opts o = { .cluster_kwargs = "{n_workers: 1, threads_per_worker: 1}", .log = tu_log_sink, .log_ud = &log };
    if (herd_runner_new(&r, &o, &err) || herd_flow_begin(r, "lazy", &err)) fail_msg("%s", err.msg);
    assert_int_equal(herd_flow_end(r, false, &err), 0);
    assert_false(tu_log_has_line(&log, "started worker", NULL));
    assert_false(tu_log_has_line(&log, "cluster up", NULL));
    /* the first submit starts it, and says so */
    if (herd_flow_begin(r, "lazy-submit", &err)) fail_msg("%s", err.msg);
    assert_false(tu_log_has_line(&log, "started worker", NULL));
    herd_future *f = tu_submit(r, "t_pid_sleep", herd_tuple("i", 0), NULL);
    assert_true(tu_int_result(f) > 1);
    herd_future_release(f);
    assert_true(tu_log_has_line(&log, "starting the cluster on the first submit", NULL));
    assert_true(tu_log_has_line(&log, "started worker", NULL));
    assert_int_equal(herd_flow_end(r, false, &err), 0);
    herd_runner_free(r);
    tu_log_free(&log);

    /* eager: herd_flow_begin starts it */
    tu_log_init(&log);
    o.client_kwargs = "{start: eager}";
    if (herd_runner_new(&r, &o, &err) || herd_flow_begin(r, "eager", &err)) fail_msg("%s", err.msg);
    assert_true(tu_log_has_line(&log, "started worker", NULL));
    assert_false(tu_log_has_line(&log, "starting the cluster on the first submit", NULL));
    assert_int_equal(herd_flow_end(r, false, &err), 0);
    herd_runner_free(r);
    tu_log_free(&log);

    /* a value of start that is neither */
    o.client_kwargs = "{start: soon}";
    assert_int_equal(herd_runner_new(&r, &o, &err), -HERD_EARG);
    assert_non_null(strstr(err.msg, "client_kwargs.start"));
    assert_non_null(strstr(err.msg, "\"soon\""));
}

/* A cluster that cannot start on the first submit fails that submit with
 * the reason, and every later one; the flow run still ends cleanly. */
static void test_lazy_start_failure(void **state)
{
    herd_err err = { 0 };
    herd_runner *r = NULL;
    herd_runner_opts o = { .cluster_kwargs = "{n_workers: 1, threads_per_worker: 1, env: {HERD_TOKEN: not-the-token}}",
                           .client_kwargs = "{provision_timeout: 0.5}", .log = tu_quiet_sink };
    if (herd_runner_new(&r, &o, &err) || herd_flow_begin(r, "lazy-fails", &err)) fail_msg("%s", err.msg);
    for (int i = 0; i < 2; i++) {
        herd_future *f = (herd_future *)1;
        assert_int_equal(herd_submit(r, "t_pid_sleep", herd_tuple("i", 0), &f, &err), -HERD_ETIMEOUT);
        assert_null(f);
        if (!strstr(err.msg, "provision_timeout")) fail_msg("submit %d: %s", i, err.msg);
    }
    assert_int_equal(herd_wait_for_workers(r, 1, 1, &err), -HERD_ETIMEOUT);
    assert_null(herd_runner_address(r));
    assert_int_equal(herd_flow_end(r, true, &err), 0);
    herd_runner_free(r);
}

/* ---- 7. timeouts ---- */
static void test_timeouts(void **state)
{
    herd_runner *r = tu_flow("{n_workers: 1, threads_per_worker: 3}", NULL, 1, NULL);
    herd_err err;
    const herd_value *v;
    herd_future *slow = tu_submit(r, "t_pid_sleep", herd_tuple("i", 2000), "{timeout: 0.2}");
    assert_int_equal(herd_future_result(slow, TU_WAIT_S, &v, &err), -HERD_EFAILED);
    assert_int_equal(herd_future_state(slow), HERD_FAILED);
    assert_non_null(strstr(herd_future_error(slow), "timed out"));
    assert_non_null(strstr(err.msg, "timed out"));
    /* with retries, a timed-out attempt is retried (attempt 1 is quick) */
    herd_future *retried = tu_submit(r, "t_sleep_first", herd_tuple("i", 2000), "{timeout: 200ms, retries: 1}");
    assert_int_equal(tu_int_result(retried), 1);
    /* a task finishing within its timeout is not affected */
    herd_future *quick = tu_submit(r, "t_sleep_first", herd_tuple("i", 10), "{timeout: 30}");
    assert_int_equal(tu_int_result(quick), 0);
    herd_future *all[] = { slow, retried, quick };
    release_all(all, 3);
    tu_flow_end(r);
}

/* ---- 9a. ending a flow with work pending ---- */
static void test_flow_end_cancels_and_reaps(void **state)
{
    herd_runner *r = tu_flow("{n_workers: 2, threads_per_worker: 1}", NULL, 2, NULL);
    herd_err err;
    pid_t pids[2];
    two_worker_pids(r, pids);

    enum { N = 6 };
    herd_future *fs[N];
    for (int i = 0; i < N; i++) fs[i] = tu_submit(r, "t_pid_sleep", herd_tuple("i", 5000), NULL);
    herd_future *dep = tu_submit(r, "t_pid_sleep", herd_tuple("f", fs[0]), NULL);
    assert_int_equal(herd_flow_end(r, true, &err), 0);
    for (int i = 0; i < N; i++) {
        const herd_value *v;
        assert_int_equal(herd_future_state(fs[i]), HERD_CANCELLED);
        assert_true(herd_state_is_final(herd_future_state(fs[i])));
        assert_int_equal(herd_future_result(fs[i], 0, &v, &err), -HERD_ECANCELLED);
        assert_non_null(herd_future_error(fs[i]));
    }
    assert_int_equal(herd_future_state(dep), HERD_CANCELLED);
    for (int i = 0; i < 2; i++)
        if (!tu_wait_pid_gone(pids[i], 5)) fail_msg("worker pid %ld survived the end of its flow run", (long)pids[i]);
    /* nothing more can be submitted to the ended run */
    herd_future *late = (herd_future *)1;
    assert_int_equal(herd_submit(r, "t_pid_sleep", herd_tuple("i", 0), &late, &err), -HERD_ESTATE);
    assert_null(late);
    assert_null(herd_runner_address(r));
    assert_int_equal(herd_flow_end(r, false, &err), -HERD_ESTATE);
    release_all(fs, N);
    herd_future_release(dep);

    /* the runner starts a new flow run afterwards */
    assert_int_equal(herd_flow_begin(r, "second", &err), 0);
    herd_future *f = tu_submit(r, "t_pid_sleep", herd_tuple("i", 0), NULL);
    int64_t p = tu_int_result(f);
    assert_true(p != pids[0] && p != pids[1]);
    herd_future_release(f);
    tu_flow_end(r);
}

/* ---- 9b. SIGTERM / SIGINT during a flow run ---- */

/* The child program: a flow run on 2 workers that writes the workers' pids
 * to <dir>/pids and then waits to be signalled. Never returns. */
static char child_log[4200];

/* The child's log sink: lines appended to <dir>/log (one write each). */
static void child_log_sink(void *ud, int level, const char *line)
{
    int fd = open(child_log, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd < 0) return;
    char buf[2100];
    int n = snprintf(buf, sizeof buf, "%.2000s\n", line);
    if (write(fd, buf, (size_t)n) < 0) {}
    close(fd);
}

static int signal_child(const char *dir)
{
    /* a program started from a non-interactive shell's background may
     * inherit SIGINT ignored; this one wants the defaults */
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    herd_runner *r = NULL;
    herd_err err = { 0 };
    snprintf(child_log, sizeof child_log, "%s/log", dir);
    herd_runner_opts o = { .cluster_kwargs = "{n_workers: 2, threads_per_worker: 1}", .log = child_log_sink };
    if (herd_runner_new(&r, &o, &err) || herd_flow_begin(r, "signalled", &err) ||
        herd_wait_for_workers(r, 2, TU_WAIT_S, &err)) {
        fprintf(stderr, "signal child: %s\n", err.msg);
        _exit(2);
    }
    herd_future *f[2];
    long pids[2];
    for (int i = 0; i < 2; i++)
        if (herd_submit(r, "t_pid_sleep", herd_tuple("i", 300), &f[i], &err)) { fprintf(stderr, "%s\n", err.msg); _exit(2); }
    for (int i = 0; i < 2; i++) {
        const herd_value *v;
        if (herd_future_result(f[i], TU_WAIT_S, &v, &err)) { fprintf(stderr, "%s\n", err.msg); _exit(2); }
        pids[i] = (long)herd_as_int(v);
    }
    /* keep both workers busy while the signal arrives */
    for (int i = 0; i < 2; i++)
        if (herd_submit(r, "t_pid_sleep", herd_tuple("i", 60000), &f[i], &err)) { fprintf(stderr, "%s\n", err.msg); _exit(2); }
    char text[700], path[4200];
    snprintf(text, sizeof text, "%ld %ld %s\n", pids[0], pids[1], herd_runner_address(r));
    snprintf(path, sizeof path, "%s/pids", dir);
    if (tu_write_file(path, text)) _exit(2);
    for (;;) pause();
}

/* Started with SIGINT ignored (as a `&` job of a script is): SIGINT, sent
 * by itself mid-run, must change nothing. Exits 0 when the run finished
 * normally. */
static int ignored_sigint_child(const char *dir)
{
    herd_runner *r = NULL;
    herd_err err = { 0 };
    snprintf(child_log, sizeof child_log, "%s/log", dir);
    herd_runner_opts o = { .cluster_kwargs = "{n_workers: 2, threads_per_worker: 1}", .log = child_log_sink };
    if (herd_runner_new(&r, &o, &err) || herd_flow_begin(r, "ignores-sigint", &err) ||
        herd_wait_for_workers(r, 2, TU_WAIT_S, &err)) {
        fprintf(stderr, "ignored-sigint child: %s\n", err.msg);
        return 2;
    }
    herd_future *f[4];
    for (int i = 0; i < 4; i++)
        if (herd_submit(r, "t_pid_sleep", herd_tuple("i", 300), &f[i], &err)) { fprintf(stderr, "%s\n", err.msg); return 2; }
    kill(getpid(), SIGINT);
    for (int i = 0; i < 4; i++) {
        const herd_value *v;
        if (herd_future_result(f[i], TU_WAIT_S, &v, &err)) { fprintf(stderr, "after SIGINT: %s\n", err.msg); return 3; }
        herd_future_release(f[i]);
    }
    if (herd_runner_workers(r, NULL) != 2) { fprintf(stderr, "after SIGINT: workers gone\n"); return 4; }
    if (herd_flow_end(r, false, &err)) { fprintf(stderr, "%s\n", err.msg); return 2; }
    herd_runner_free(r);
    return 0;
}

static atomic_int got_term;      /* the runtime re-raises on its own thread: an atomic, not just volatile */
static void on_term(int sig) { atomic_store(&got_term, 1); }

/* A program with its own SIGTERM handler: the runtime tears the cluster
 * down, every pending future ends (Cancelled, saying why) and
 * herd_future_result returns, then the program's handler runs and it goes
 * on. Exits 0 when all that held. */
static int own_sigterm_child(const char *dir)
{
    struct sigaction sa = { .sa_handler = on_term };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    herd_runner *r = NULL;
    herd_err err = { 0 };
    snprintf(child_log, sizeof child_log, "%s/log", dir);
    herd_runner_opts o = { .cluster_kwargs = "{n_workers: 2, threads_per_worker: 1}", .log = child_log_sink };
    if (herd_runner_new(&r, &o, &err) || herd_flow_begin(r, "own-sigterm", &err) ||
        herd_wait_for_workers(r, 2, TU_WAIT_S, &err)) {
        fprintf(stderr, "own-sigterm child: %s\n", err.msg);
        return 2;
    }
    enum { N = 4 };                  /* 2 running, 2 waiting for a thread */
    herd_future *f[N];
    for (int i = 0; i < N; i++)
        if (herd_submit(r, "t_pid_sleep", herd_tuple("i", 60000), &f[i], &err)) { fprintf(stderr, "%s\n", err.msg); return 2; }
    if (tu_wait_running(f, N, 2, TU_WAIT_S) < 2) { fprintf(stderr, "tasks did not start\n"); return 2; }
    kill(getpid(), SIGTERM);
    for (int i = 0; i < N; i++) {
        const herd_value *v;
        int rc = herd_future_result(f[i], TU_WAIT_S, &v, &err);
        herd_state st = herd_future_state(f[i]);
        const char *why = herd_future_error(f[i]);
        if (rc != -HERD_ECANCELLED || st != HERD_CANCELLED || !why || !strstr(why, "signal 15")) {
            fprintf(stderr, "future %d after SIGTERM: rc %d, %s, %s\n", i, rc, herd_state_name(st), why ? why : "(no reason)");
            return 3;
        }
        herd_future_release(f[i]);
    }
    double end = tu_now() + TU_WAIT_S;
    while (!atomic_load(&got_term) && tu_now() < end) tu_sleep_ms(10);
    if (!atomic_load(&got_term)) { fprintf(stderr, "the program's own SIGTERM handler did not run\n"); return 4; }
    herd_flow_end(r, true, &err);
    herd_runner_free(r);
    return 0;
}

/* Run this binary with mode and a fresh dir (SIGINT ignored if asked), wait
 * for it, return its exit status (or fail the test). */
static int run_child(const char *mode, bool ignore_sigint, char *dir, size_t cap)
{
    tu_mkdtemp(dir, cap);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        if (ignore_sigint) signal(SIGINT, SIG_IGN);      /* kept across exec */
        char *argv[] = { "/proc/self/exe", (char *)mode, dir, NULL };
        execv("/proc/self/exe", argv);
        _exit(127);
    }
    int st;
    double end = tu_now() + 3 * TU_WAIT_S;
    pid_t w;
    while ((w = waitpid(child, &st, WNOHANG)) == 0) {
        if (tu_now() > end) { kill(child, SIGKILL); waitpid(child, &st, 0); fail_msg("%s child did not finish", mode); }
        tu_sleep_ms(10);
    }
    if (!WIFEXITED(st)) fail_msg("%s child: ended by signal %d", mode, WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    return WEXITSTATUS(st);
}

static void test_ignored_sigint_not_acted_on(void **state)
{
    char dir[64], path[128];
    assert_int_equal(run_child("--ignored-sigint-child", true, dir, sizeof dir), 0);
    snprintf(path, sizeof path, "%s/log", dir);
    char *text = tu_read_file(path);
    assert_non_null(text);
    if (strstr(text, "tearing down")) fail_msg("an ignored SIGINT tore the cluster down:\n%s", text);
    free(text);
    tu_rmtree(dir);
}

static void test_sigterm_teardown_ends_every_future(void **state)
{
    char dir[64], path[128];
    assert_int_equal(run_child("--own-sigterm-child", false, dir, sizeof dir), 0);
    snprintf(path, sizeof path, "%s/log", dir);
    char *text = tu_read_file(path);
    assert_non_null(text);
    if (!strstr(text, "signal 15, tearing down its cluster")) fail_msg("no teardown in the child's log:\n%s", text);
    free(text);
    tu_rmtree(dir);
}

static void signal_flow(int sig)
{
    char dir[64], path[128];
    tu_mkdtemp(dir, sizeof dir);
    pid_t child;
    int st;
    char *text = tu_self_child("--signal-child", dir, "pids", &child);   /* its orphans come here */
    long pids[2] = { 0, 0 };
    char sock[600] = "";
    bool ok = sscanf(text, "%ld %ld unix://%599s", &pids[0], &pids[1], sock) == 3 &&
              access(sock, F_OK) == 0 && pids[0] > 1 && pids[1] > 1 && pids[0] != pids[1] &&
              !tu_pid_gone((pid_t)pids[0]) && !tu_pid_gone((pid_t)pids[1]);
    if (!ok) {
        kill(child, SIGKILL);
        waitpid(child, &st, 0);
        fail_msg("signal child: expected two live worker pids and a unix socket, got \"%s\"", text);
    }
    free(text);

    assert_int_equal(kill(child, sig), 0);
    double end = tu_now() + TU_WAIT_S;
    pid_t w;
    while ((w = waitpid(child, &st, WNOHANG)) == 0) {
        if (tu_now() > end) { kill(child, SIGKILL); waitpid(child, &st, 0); fail_msg("child ignored signal %d", sig); }
        tu_sleep_ms(10);
    }
    assert_int_equal(w, child);
    if (!WIFSIGNALED(st) || WTERMSIG(st) != sig)
        fail_msg("child should die of signal %d (re-raised after teardown); status 0x%x", sig, st);
    for (int i = 0; i < 2; i++)
        if (!tu_wait_pid_gone((pid_t)pids[i], 5))
            fail_msg("worker pid %ld survived signal %d to its flow's process", pids[i], sig);
    /* the runtime's handler tore the cluster down (then re-raised) */
    char want[64];
    snprintf(want, sizeof want, "signal %d, tearing down its cluster", sig);
    snprintf(path, sizeof path, "%s/log", dir);
    text = tu_read_file(path);
    assert_non_null(text);
    if (!strstr(text, want)) fail_msg("no \"%s\" in the child's log:\n%s", want, text);
    free(text);
    tu_rmtree(dir);
    /* the temporary cluster's scheduler socket (and its private directory)
     * went with it */
    if (access(sock, F_OK) == 0) {
        char sdir[600];
        snprintf(sdir, sizeof sdir, "%s", sock);
        char *slash = strrchr(sdir, '/');
        if (slash) *slash = '\0';
        unlink(sock);              /* do not leave it behind ourselves */
        rmdir(sdir);
        fail_msg("signal %d: the scheduler socket %s outlived the flow's process", sig, sock);
    }
}

static void test_sigterm_tears_down(void **state) { signal_flow(SIGTERM); }
static void test_sigint_tears_down(void **state) { signal_flow(SIGINT); }

int main(int argc, char **argv)
{
    herd_init(&argc, &argv);
    if (argc == 3 && strcmp(argv[1], "--signal-child") == 0) return signal_child(argv[2]);
    if (argc == 3 && strcmp(argv[1], "--ignored-sigint-child") == 0) return ignored_sigint_child(argv[2]);
    if (argc == 3 && strcmp(argv[1], "--own-sigterm-child") == 0) return own_sigterm_child(argv[2]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_worker_killed_mid_task),
        cmocka_unit_test(test_task_crashing_every_worker),
        cmocka_unit_test(test_fixed_cluster_replaces_killed_workers),
        cmocka_unit_test(test_memory_limit_names_the_cause),
        cmocka_unit_test(test_no_workers_timeout),
        cmocka_unit_test(test_lazy_start),
        cmocka_unit_test(test_lazy_start_failure),
        cmocka_unit_test(test_timeouts),
        cmocka_unit_test(test_flow_end_cancels_and_reaps),
        cmocka_unit_test(test_sigterm_tears_down),
        cmocka_unit_test(test_sigint_tears_down),
        cmocka_unit_test(test_ignored_sigint_not_acted_on),
        cmocka_unit_test(test_sigterm_teardown_ends_every_future),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
