/* tests/integration/test_failures.c — things going wrong, with real worker
 * processes: a worker SIGKILLed mid-task (its task runs again elsewhere), a
 * task that kills every worker it lands on (Crashed after allowed_failures),
 * timeouts (with and without retries), and teardown: ending a flow with work
 * pending cancels every future and leaves no worker process behind, and so
 * does SIGTERM or SIGINT to a program in the middle of a flow run (this
 * binary re-executed with --signal-child plays that program).
 *
 * Assertions are about states, messages and which processes exist; waits are
 * bounded but never asserted on. */
#include <herd/herd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <sys/prctl.h>

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
static int t_kill_once(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    const char *dir = herd_as_str(herd_at(args, 0));
    char claim[4200], pidf[4200], text[32];
    snprintf(claim, sizeof claim, "%s/claimed", dir);
    snprintf(pidf, sizeof pidf, "%s/pid", dir);
    int fd = open(claim, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd >= 0) {
        close(fd);
        snprintf(text, sizeof text, "%ld\n", (long)getpid());
        if (tu_write_file(pidf, text)) return herd_task_fail(ctx, "t_kill_once: cannot write %s", pidf);
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

static void signal_flow(int sig)
{
    char dir[64], path[128];
    tu_mkdtemp(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/pids", dir);
    /* orphaned grandchildren come to this process, so it can see them end */
    assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        char *argv[] = { "/proc/self/exe", "--signal-child", dir, NULL };
        execv("/proc/self/exe", argv);
        _exit(127);
    }
    /* wait for the pids, or for the child to die early */
    char *text = NULL;
    double end = tu_now() + TU_WAIT_S;
    int st;
    while (!(text = tu_read_file(path)) || !*text) {
        free(text);
        text = NULL;
        if (waitpid(child, &st, WNOHANG) == child) fail_msg("signal child exited early (status 0x%x)", st);
        if (tu_now() > end) { kill(child, SIGKILL); waitpid(child, &st, 0); fail_msg("signal child wrote no pids"); }
        tu_sleep_ms(10);
    }
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
    end = tu_now() + TU_WAIT_S;
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
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_worker_killed_mid_task),
        cmocka_unit_test(test_task_crashing_every_worker),
        cmocka_unit_test(test_timeouts),
        cmocka_unit_test(test_flow_end_cancels_and_reaps),
        cmocka_unit_test(test_sigterm_tears_down),
        cmocka_unit_test(test_sigint_tears_down),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
