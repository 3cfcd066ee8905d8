/* tests/integration/test_flow.c — the runtime doing its job, through the
 * public API only, with real worker processes (this binary, re-executed by
 * LocalCluster) and real sockets: priorities, resources, dependencies,
 * retries, volume (10,000 tasks, submit_map + as_completed), sub-tasks on a
 * one-slot cluster, and workers as threads (processes: false).
 *
 * Assertions are about order and state, never about how long things took:
 * tasks record when they ran (a line appended to a file, or the monotonic
 * clock, which every process on the machine shares) and the tests compare. */
#include <herd/herd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../support/testutil.h"

/* ---- tasks (they run in the worker processes) ---- */

static int64_t arg_int(const herd_value *args, size_t i) { return herd_as_int(herd_at(args, i)); }
static const char *arg_str(const herd_value *args, size_t i) { return herd_as_str(herd_at(args, i)); }

/* (a, b) -> a + b */
static int t_add(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    if (herd_len(args) != 2 || herd_typeof(herd_at(args, 0)) != HERD_INT || herd_typeof(herd_at(args, 1)) != HERD_INT)
        return herd_task_fail(ctx, "t_add: expected (int, int), got %zu arguments", herd_len(args));
    *out = herd_int(arg_int(args, 0) + arg_int(args, 1));
    return 0;
}
HERD_TASK(t_add);

/* (ms, value) -> value, after sleeping ms */
static int t_sleep_ret(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    tu_sleep_ms((long)arg_int(args, 0));
    *out = herd_value_copy(herd_at(args, 1));
    return 0;
}
HERD_TASK(t_sleep_ret);

/* (ms, message) -> fails with message after sleeping ms */
static int t_fail_after(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    tu_sleep_ms((long)arg_int(args, 0));
    return herd_task_fail(ctx, "%s", arg_str(args, 1));
}
HERD_TASK(t_fail_after);

/* (path, id, ms): append "id\n" to path (O_APPEND: one write, whole lines),
 * then sleep ms. Returns id. */
static int t_record(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    const char *path = arg_str(args, 0), *id = arg_str(args, 1);
    if (!path || !id) return herd_task_fail(ctx, "t_record: expected (path, id, ms)");
    char line[128];
    int n = snprintf(line, sizeof line, "%s\n", id);
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd < 0 || write(fd, line, (size_t)n) != n) {
        if (fd >= 0) close(fd);
        return herd_task_fail(ctx, "t_record: %s: %s", path, strerror(errno));
    }
    close(fd);
    tu_sleep_ms((long)arg_int(args, 2));
    *out = herd_str(id);
    return 0;
}
HERD_TASK(t_record);

/* (path, id, ms, fail_until): t_record with the attempt number in the id
 * ("A0", "A1"), failing while attempt < fail_until. */
static int t_record_flaky(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    char id[64];
    snprintf(id, sizeof id, "%s%d", arg_str(args, 1), herd_task_attempt(ctx));
    herd_value *a = herd_tuple("ssI", arg_str(args, 0), id, arg_int(args, 2));
    herd_value *res = NULL;
    int rc = t_record(ctx, a, &res);
    herd_value_free(a);
    herd_value_free(res);
    if (rc) return rc;
    if (herd_task_attempt(ctx) < arg_int(args, 3))
        return herd_task_fail(ctx, "t_record_flaky: fails on attempt %d", herd_task_attempt(ctx));
    *out = herd_int(herd_task_attempt(ctx));
    return 0;
}
HERD_TASK(t_record_flaky);

/* (fail_until) -> the attempt number; fails while attempt < fail_until */
static int t_flaky(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    int a = herd_task_attempt(ctx);
    if (a < arg_int(args, 0)) return herd_task_fail(ctx, "t_flaky: fails on attempt %d", a);
    *out = herd_int(a);
    return 0;
}
HERD_TASK(t_flaky);

/* (marker, release): write the marker file saying the task runs, then hold
 * the slot until the test creates the release file */
static int t_block(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    if (tu_write_file(arg_str(args, 0), "running\n")) return herd_task_fail(ctx, "t_block: cannot write marker");
    char *go = tu_wait_file(arg_str(args, 1), TU_WAIT_S);
    if (!go) return herd_task_fail(ctx, "t_block: never released");
    free(go);
    return 0;
}
HERD_TASK(t_block);

/* (ms) -> [start, end, pid]: monotonic stamps around a sleep of ms */
static int t_interval(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    double t0 = tu_now();
    tu_sleep_ms((long)arg_int(args, 0));
    double t1 = tu_now();
    *out = herd_tuple("ddi", t0, t1, (int)getpid());
    return 0;
}
HERD_TASK(t_interval);

/* () -> getpid() */
static int t_pid(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    *out = herd_int(getpid());
    return 0;
}
HERD_TASK(t_pid);

/* (n): submits n sub-tasks t_add(i, 100) through herd_task_client and waits
 * for each; returns their sum. */
static int t_parent(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    herd_runner *c = herd_task_client(ctx);
    if (!c) return herd_task_fail(ctx, "t_parent: no task client");
    int n = (int)arg_int(args, 0);
    herd_future *subs[16];
    herd_err err = { 0 };
    if (n < 1 || n > 16) return herd_task_fail(ctx, "t_parent: n %d out of range", n);
    for (int i = 0; i < n; i++)
        if (herd_submit(c, "t_add", herd_tuple("ii", i, 100), &subs[i], &err)) {
            for (int j = 0; j < i; j++) herd_future_release(subs[j]);
            return herd_task_fail(ctx, "t_parent: submit %d: %s", i, err.msg);
        }
    int64_t sum = 0;
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        const herd_value *v;
        if (herd_future_result(subs[i], TU_WAIT_S, &v, &err)) rc = herd_task_fail(ctx, "t_parent: sub %d: %s", i, err.msg);
        else sum += herd_as_int(v);
    }
    for (int i = 0; i < n; i++) herd_future_release(subs[i]);
    if (rc) return rc;
    *out = herd_int(sum);
    return 0;
}
HERD_TASK(t_parent);

/* ---- helpers ---- */

static void release_all(herd_future **fs, size_t n)
{
    for (size_t i = 0; i < n; i++) herd_future_release(fs[i]);
}

/* Run a ~50 ms task and wait for it, so the scheduler has seen a task
 * duration: prefetch is bounded by the mean duration (zero for tasks this
 * long), and with it no task is sent to a worker before a slot is free. */
static void warm_up(herd_runner *r)
{
    herd_future *f = tu_submit(r, "t_sleep_ret", herd_tuple("ii", 50, 1), NULL);
    assert_int_equal(tu_int_result(f), 1);
    herd_future_release(f);
}

/* ---- 1. priorities ---- */
static void test_priority_order(void **state)
{
    char dir[64], marker[128], release[128], log[128];
    tu_mkdtemp(dir, sizeof dir);
    snprintf(marker, sizeof marker, "%s/blocker", dir);
    snprintf(release, sizeof release, "%s/release", dir);
    snprintf(log, sizeof log, "%s/order", dir);
    herd_runner *r = tu_flow("{n_workers: 1, threads_per_worker: 1}", NULL, 1, NULL);
    herd_err err;
    warm_up(r);

    herd_future *blocker = tu_submit(r, "t_block", herd_tuple("ss", marker, release), NULL);
    free(tu_wait_file(marker, TU_WAIT_S));     /* it runs: the only slot is taken */

    /* submission order A..F; priorities 5 (scope), 10, 0, -3 (scope), 5, 0 */
    herd_future *fs[6];
    assert_int_equal(herd_annotate_push(r, "{priority: 5}", &err), 0);
    fs[0] = tu_submit(r, "t_record", herd_tuple("ssi", log, "A", 30), NULL);
    fs[1] = tu_submit(r, "t_record", herd_tuple("ssi", log, "B", 30), "{priority: 10}");
    assert_int_equal(herd_annotate_pop(r), 0);
    fs[2] = tu_submit(r, "t_record", herd_tuple("ssi", log, "C", 30), NULL);
    assert_int_equal(herd_annotate_push(r, "{priority: -3, retries: 0}", &err), 0);
    fs[3] = tu_submit(r, "t_record", herd_tuple("ssi", log, "D", 30), NULL);
    assert_int_equal(herd_annotate_pop(r), 0);
    assert_int_equal(herd_annotate_pop(r), -HERD_ESTATE);     /* nothing left to pop */
    fs[4] = tu_submit(r, "t_record", herd_tuple("ssi", log, "E", 30), "{priority: 5}");
    fs[5] = tu_submit(r, "t_record", herd_tuple("ssi", log, "F", 30), NULL);
    assert_int_equal(tu_write_file(release, "go\n"), 0);   /* all six queued: free the slot */

    assert_int_equal(herd_wait(fs, 6, TU_WAIT_S, &err), 0);
    for (int i = 0; i < 6; i++) assert_int_equal(herd_future_state(fs[i]), HERD_COMPLETED);
    assert_int_equal(herd_future_state(blocker), HERD_COMPLETED);
    char *order = tu_read_file(log);
    assert_non_null(order);
    /* priority descending, ties in submission order */
    assert_string_equal(order, "B\nA\nE\nC\nF\nD\n");
    free(order);
    release_all(fs, 6);
    herd_future_release(blocker);
    tu_flow_end(r);
    tu_rmtree(dir);
}

/* ---- 2. resources ---- */
static bool overlaps(const herd_value *a, const herd_value *b)
{
    return herd_as_float(herd_at(a, 0)) < herd_as_float(herd_at(b, 1)) &&
           herd_as_float(herd_at(b, 0)) < herd_as_float(herd_at(a, 1));
}

static void test_resources(void **state)
{
    herd_runner *r = tu_flow("{n_workers: 1, threads_per_worker: 4, resources: {GPU: 1, process: 1}}", NULL, 1, NULL);
    herd_err err;
    herd_future *p[3], *free_f[2], *gpu;
    for (int i = 0; i < 3; i++) p[i] = tu_submit(r, "t_interval", herd_tuple("i", 150), "{resources: {process: 1}}");
    for (int i = 0; i < 2; i++) free_f[i] = tu_submit(r, "t_interval", herd_tuple("i", 400), NULL);
    gpu = tu_submit(r, "t_interval", herd_tuple("i", 10), "{resources: {GPU: 1, process: 1}}");

    const herd_value *pv[3], *fv[2], *gv;
    for (int i = 0; i < 3; i++) assert_int_equal(herd_future_result(p[i], TU_WAIT_S, &pv[i], &err), 0);
    for (int i = 0; i < 2; i++) assert_int_equal(herd_future_result(free_f[i], TU_WAIT_S, &fv[i], &err), 0);
    assert_int_equal(herd_future_result(gpu, TU_WAIT_S, &gv, &err), 0);
    /* process: 1 is held while a task runs: no two of them overlap */
    for (int i = 0; i < 3; i++)
        for (int j = i + 1; j < 3; j++)
            if (overlaps(pv[i], pv[j])) fail_msg("tasks %d and %d both held resource process=1 at once", i, j);
    for (int i = 0; i < 3; i++)
        if (overlaps(pv[i], gv)) fail_msg("the GPU+process task overlapped process task %d", i);
    /* tasks without resources do not wait for it */
    for (int k = 0; k < 2; k++) {
        bool any = false;
        for (int i = 0; i < 3; i++) any |= overlaps(fv[k], pv[i]);
        if (!any) fail_msg("task without resources %d ran alongside no process task", k);
    }
    assert_true(overlaps(fv[0], fv[1]));

    /* impossible requests fail at submit, naming the resource */
    herd_future *f = (herd_future *)1;
    assert_int_equal(herd_submit_annotated(r, "t_pid", NULL, "{resources: {TPU: 1}}", &f, &err), -HERD_ERESOURCES);
    assert_null(f);
    assert_int_equal(err.code, -HERD_ERESOURCES);
    assert_non_null(strstr(err.msg, "TPU"));
    assert_int_equal(herd_submit_annotated(r, "t_pid", NULL, "{resources: {GPU: 2}}", &f, &err), -HERD_ERESOURCES);
    assert_non_null(strstr(err.msg, "GPU"));
    assert_non_null(strstr(err.msg, "2"));
    /* a scope asking for too much makes every submit in it fail */
    assert_int_equal(herd_annotate_push(r, "{resources: {GPU: 1.5}}", &err), 0);
    assert_int_equal(herd_submit(r, "t_pid", NULL, &f, &err), -HERD_ERESOURCES);
    assert_non_null(strstr(err.msg, "GPU"));
    assert_int_equal(herd_annotate_pop(r), 0);
    /* the runtime still works */
    f = tu_submit(r, "t_add", herd_tuple("ii", 2, 3), "{resources: {GPU: 1}}");
    assert_int_equal(tu_int_result(f), 5);
    herd_future_release(f);

    release_all(p, 3);
    release_all(free_f, 2);
    herd_future_release(gpu);
    tu_flow_end(r);
}

/* ---- 3. dependencies ---- */
static void test_dependencies(void **state)
{
    herd_runner *r = tu_flow("{n_workers: 2, threads_per_worker: 2}", NULL, 2, NULL);
    herd_err err;
    const herd_value *v;

    /* chain: ((1 + 2) + 10) + 100, futures as arguments both ways */
    herd_future *c1 = tu_submit(r, "t_sleep_ret", herd_tuple("ii", 50, 3), NULL);
    herd_future *c2 = tu_submit(r, "t_add", herd_tuple("fi", c1, 10), NULL);
    herd_value *args = herd_array();
    herd_array_push(args, herd_future_arg(c2));
    herd_array_push(args, herd_int(100));
    herd_future *c3 = tu_submit(r, "t_add", args, NULL);
    assert_int_equal(tu_int_result(c3), 113);
    assert_int_equal(tu_int_result(c2), 13);
    assert_int_equal(tu_int_result(c1), 3);

    /* diamond: a = 5; b = a + 1; c = a + 2; d = b + c */
    herd_future *a = tu_submit(r, "t_sleep_ret", herd_tuple("ii", 50, 5), NULL);
    herd_future *b = tu_submit(r, "t_add", herd_tuple("fi", a, 1), NULL);
    herd_future *c = tu_submit(r, "t_add", herd_tuple("if", 2, a), NULL);
    herd_future *d = tu_submit(r, "t_add", herd_tuple("ff", b, c), NULL);
    assert_int_equal(tu_int_result(d), 13);
    /* a dependency already completed is passed by value */
    herd_future *e = tu_submit(r, "t_add", herd_tuple("ff", d, a), NULL);
    assert_int_equal(tu_int_result(e), 18);

    /* a failed upstream fails its dependents, naming it: while it runs … */
    herd_future *bad = tu_submit(r, "t_fail_after", herd_tuple("is", 100, "upstream broke"), NULL);
    herd_future *dep1 = tu_submit(r, "t_add", herd_tuple("fi", bad, 1), NULL);
    herd_future *dep2 = tu_submit(r, "t_add", herd_tuple("fi", dep1, 1), NULL);   /* transitively */
    assert_int_equal(herd_future_result(dep1, TU_WAIT_S, &v, &err), -HERD_EFAILED);
    assert_int_equal(herd_future_state(dep1), HERD_FAILED);
    assert_non_null(strstr(err.msg, herd_future_name(bad)));
    assert_non_null(strstr(herd_future_error(dep1), herd_future_name(bad)));
    assert_non_null(strstr(herd_future_error(dep1), "upstream broke"));
    assert_int_equal(herd_future_result(dep2, TU_WAIT_S, &v, &err), -HERD_EFAILED);
    assert_non_null(strstr(herd_future_error(dep2), "upstream broke"));
    assert_int_equal(herd_future_result(bad, TU_WAIT_S, &v, &err), -HERD_EFAILED);
    assert_string_equal(herd_future_error(bad), "upstream broke");
    /* … and after it failed */
    herd_future *dep3 = tu_submit(r, "t_add", herd_tuple("fi", bad, 1), NULL);
    assert_int_equal(herd_future_result(dep3, TU_WAIT_S, &v, &err), -HERD_EFAILED);
    assert_non_null(strstr(herd_future_error(dep3), herd_future_name(bad)));

    herd_future *all[] = { c1, c2, c3, a, b, c, d, e, bad, dep1, dep2, dep3 };
    release_all(all, sizeof all / sizeof *all);
    tu_flow_end(r);
}

/* Releasing futures early does not break dependents already submitted: the
 * scheduler keeps a released task's result while a waiting dependent needs
 * it, then forgets it. */
static void test_release_before_dependents_run(void **state)
{
    herd_runner *r = tu_flow("{n_workers: 2, threads_per_worker: 2}", NULL, 2, NULL);
    herd_err err;
    herd_future *x = tu_submit(r, "t_sleep_ret", herd_tuple("ii", 200, 7), NULL);
    herd_future *y = tu_submit(r, "t_add", herd_tuple("fi", x, 1), NULL);
    herd_future *z = tu_submit(r, "t_add", herd_tuple("fi", y, 1), NULL);
    herd_future *w = tu_submit(r, "t_add", herd_tuple("fi", x, 10), NULL);
    herd_future_release(x);
    herd_future_release(y);
    assert_int_equal(tu_int_result(z), 9);
    assert_int_equal(tu_int_result(w), 17);
    /* a released future cannot be an argument any more */
    herd_future *zz = (herd_future *)1;
    herd_value *rel = herd_array();
    herd_array_push(rel, herd_futref(herd_future_key(z)));
    herd_future_release(z);
    assert_int_not_equal(herd_submit(r, "t_add", rel, &zz, &err), 0);
    assert_null(zz);

    herd_future_release(w);
    /* a chain whose every link but the last is released at once */
    herd_future *link = tu_submit(r, "t_sleep_ret", herd_tuple("ii", 100, 0), NULL);
    for (int i = 0; i < 20; i++) {
        herd_future *next = tu_submit(r, "t_add", herd_tuple("fi", link, 1), NULL);
        herd_future_release(link);
        link = next;
    }
    assert_int_equal(tu_int_result(link), 20);
    herd_future_release(link);
    tu_flow_end(r);
}

/* ---- 4. retries ---- */
static void test_retries(void **state)
{
    char dir[64], log[128];
    tu_mkdtemp(dir, sizeof dir);
    snprintf(log, sizeof log, "%s/order", dir);
    tu_log flog;
    tu_log_init(&flog);
    herd_runner *r = tu_flow("{n_workers: 1, threads_per_worker: 1}", NULL, 1, &flog);
    herd_err err;
    const herd_value *v;

    /* retry_delay: while A waits to be retried, B (submitted later, same
     * priority) takes the slot; without a delay the retry goes first, since
     * A was submitted first. One slot and a known task duration (no
     * prefetch), so the order of the lines is the order of the runs. These
     * come first in the flow: the mean duration must stay well above the
     * prefetch bound, which instant tasks would drag down. */
    warm_up(r);
    herd_future *fa = tu_submit(r, "t_record_flaky", herd_tuple("ssii", log, "A", 150, 1),
                                "{retries: 1, retry_delay: 0.5}");
    herd_future *fb = tu_submit(r, "t_record", herd_tuple("ssi", log, "B", 30), NULL);
    assert_int_equal(tu_int_result(fa), 1);
    herd_future *fs1[] = { fa, fb };
    assert_int_equal(herd_wait(fs1, 2, TU_WAIT_S, &err), 0);
    char *order = tu_read_file(log);
    assert_non_null(order);
    assert_string_equal(order, "A0\nB\nA1\n");
    free(order);
    unlink(log);

    herd_future *ga = tu_submit(r, "t_record_flaky", herd_tuple("ssii", log, "A", 150, 1), "{retries: 1}");
    herd_future *gb = tu_submit(r, "t_record", herd_tuple("ssi", log, "B", 30), NULL);
    herd_future *fs2[] = { ga, gb };
    assert_int_equal(herd_wait(fs2, 2, TU_WAIT_S, &err), 0);
    assert_int_equal(herd_future_state(ga), HERD_COMPLETED);
    order = tu_read_file(log);
    assert_non_null(order);
    assert_string_equal(order, "A0\nA1\nB\n");
    free(order);

    /* fails on attempts 0 and 1, succeeds on 2 */
    herd_future *ok = tu_submit(r, "t_flaky", herd_tuple("i", 2), "{retries: 2}");
    assert_int_equal(tu_int_result(ok), 2);
    /* one retry is not enough: Failed, with the task's own message */
    herd_future *no = tu_submit(r, "t_flaky", herd_tuple("i", 2), "{retries: 1}");
    assert_int_equal(herd_future_result(no, TU_WAIT_S, &v, &err), -HERD_EFAILED);
    assert_int_equal(herd_future_state(no), HERD_FAILED);
    assert_non_null(strstr(err.msg, "t_flaky: fails on attempt 1"));
    assert_string_equal(herd_future_error(no), "t_flaky: fails on attempt 1");
    /* no retries at all */
    herd_future *once = tu_submit(r, "t_flaky", herd_tuple("i", 1), NULL);
    assert_int_equal(herd_future_result(once, TU_WAIT_S, &v, &err), -HERD_EFAILED);
    assert_string_equal(herd_future_error(once), "t_flaky: fails on attempt 0");

    /* the delay doubles with each retry (Prefect's exponential backoff) */
    herd_future *back = tu_submit(r, "t_flaky", herd_tuple("i", 2), "{retries: 2, retry_delay: 0.25}");
    assert_int_equal(tu_int_result(back), 2);
    assert_true(tu_log_has_line(&flog, herd_future_name(back), "retry 1 in 0.25s"));
    assert_true(tu_log_has_line(&flog, herd_future_name(back), "retry 2 in 0.5s"));

    herd_future *all[] = { ok, no, once, fa, fb, ga, gb, back };
    release_all(all, sizeof all / sizeof *all);
    tu_flow_end(r);
    tu_log_free(&flog);
    tu_rmtree(dir);
}

/* herd_future_cancel: a queued task never runs, its future ends Cancelled at
 * once, a dependent ends too (never waits), and a final future cannot be
 * cancelled. */
static void test_cancel(void **state)
{
    char dir[64], marker[128], release[128], log[128];
    tu_mkdtemp(dir, sizeof dir);
    snprintf(marker, sizeof marker, "%s/blocker", dir);
    snprintf(release, sizeof release, "%s/release", dir);
    snprintf(log, sizeof log, "%s/ran", dir);
    herd_runner *r = tu_flow("{n_workers: 1, threads_per_worker: 1}", NULL, 1, NULL);
    herd_err err;
    const herd_value *v;
    herd_future *blocker = tu_submit(r, "t_block", herd_tuple("ss", marker, release), NULL);
    free(tu_wait_file(marker, TU_WAIT_S));     /* the only slot is taken */
    herd_future *x = tu_submit(r, "t_record", herd_tuple("ssi", log, "X", 0), NULL);
    herd_future *dep = tu_submit(r, "t_add", herd_tuple("fi", x, 1), NULL);
    assert_int_equal(herd_future_cancel(x), 0);
    assert_int_equal(herd_future_state(x), HERD_CANCELLED);
    assert_int_equal(herd_future_result(x, 0, &v, &err), -HERD_ECANCELLED);
    assert_int_equal(herd_future_cancel(x), -HERD_ESTATE);          /* already final */
    assert_int_equal(tu_write_file(release, "go\n"), 0);
    herd_future *y = tu_submit(r, "t_record", herd_tuple("ssi", log, "Y", 0), NULL);
    if (herd_future_result(y, TU_WAIT_S, &v, &err)) fail_msg("%s", err.msg);
    assert_string_equal(herd_as_str(v), "Y");
    assert_int_not_equal(herd_future_result(dep, TU_WAIT_S, &v, &err), 0);   /* ends, never waits */
    assert_true(herd_state_is_final(herd_future_state(dep)));
    assert_int_not_equal(herd_future_state(dep), HERD_COMPLETED);
    assert_int_equal(herd_future_cancel(y), -HERD_ESTATE);          /* completed */
    assert_int_equal(herd_future_cancel(NULL), -HERD_EARG);
    char *ran = tu_read_file(log);
    assert_non_null(ran);
    assert_string_equal(ran, "Y\n");                                /* X never ran */
    free(ran);
    herd_future *all[] = { blocker, x, dep, y };
    release_all(all, 4);
    tu_flow_end(r);
    tu_rmtree(dir);
}

/* ---- 5. volume ---- */
static void test_ten_thousand_tasks(void **state)
{
    enum { N = 10000 };
    herd_runner *r = tu_flow("{n_workers: 2, threads_per_worker: 1}", NULL, 2, NULL);
    herd_err err;
    herd_future **fs = calloc(N, sizeof *fs);
    assert_non_null(fs);
    for (int i = 0; i < N; i++) fs[i] = tu_submit(r, "t_add", herd_tuple("ii", i, i + 1), NULL);
    if (herd_wait(fs, N, 120, &err)) fail_msg("%s", err.msg);
    for (int i = 0; i < N; i++) {
        const herd_value *v;
        if (herd_future_result(fs[i], 0, &v, &err)) fail_msg("task %d: %s", i, err.msg);
        if (herd_as_int(v) != 2 * i + 1) fail_msg("task %d: result %lld, expected %d", i, (long long)herd_as_int(v), 2 * i + 1);
    }
    release_all(fs, N);
    free(fs);

    /* submit_map + as_completed: every future exactly once */
    enum { M = 1000 };
    herd_value *tuples = herd_array();
    for (int i = 0; i < M; i++) herd_array_push(tuples, herd_tuple("ii", i, 1000000));
    herd_future **mf = NULL;
    size_t n = 0;
    assert_int_equal(herd_submit_map(r, "t_add", tuples, &mf, &n, &err), 0);
    assert_int_equal(n, M);
    herd_completed *it = herd_as_completed(mf, n);
    assert_non_null(it);
    int *seen = calloc(M, sizeof *seen);
    herd_future *f;
    size_t got = 0;
    while ((f = herd_completed_next(it, TU_WAIT_S))) {
        size_t i = 0;
        while (i < n && mf[i] != f) i++;
        assert_true(i < n);
        assert_true(herd_state_is_final(herd_future_state(f)));
        seen[i]++;
        got++;
        assert_int_equal(tu_int_result(f), (int64_t)i + 1000000);
    }
    assert_int_equal(got, M);
    assert_int_equal(herd_completed_left(it), 0);
    assert_null(herd_completed_next(it, 0));
    for (int i = 0; i < M; i++) if (seen[i] != 1) fail_msg("future %d returned %d times", i, seen[i]);
    herd_completed_free(it);
    free(seen);
    release_all(mf, n);
    free(mf);

    /* submit_map refuses an element that is not an argument array */
    herd_value *badt = herd_array();
    herd_array_push(badt, herd_tuple("ii", 1, 2));
    herd_array_push(badt, herd_int(3));
    assert_int_equal(herd_submit_map(r, "t_add", badt, &mf, &n, &err), -HERD_EARG);
    assert_non_null(strstr(err.msg, "arg_tuples[1]"));
    assert_null(mf);
    tu_flow_end(r);
}

/* ---- 8. sub-tasks on one slot ---- */
static void test_subtasks_one_slot(void **state)
{
    herd_runner *r = tu_flow("{n_workers: 1, threads_per_worker: 1}", NULL, 1, NULL);
    herd_future *p = tu_submit(r, "t_parent", herd_tuple("i", 3), NULL);
    assert_int_equal(tu_int_result(p), 0 + 1 + 2 + 3 * 100);
    /* twice at once: both parents wait on sub-tasks, still no deadlock */
    herd_future *q1 = tu_submit(r, "t_parent", herd_tuple("i", 4), NULL);
    herd_future *q2 = tu_submit(r, "t_parent", herd_tuple("i", 2), NULL);
    assert_int_equal(tu_int_result(q1), 0 + 1 + 2 + 3 + 4 * 100);
    assert_int_equal(tu_int_result(q2), 0 + 1 + 2 * 100);
    /* the slot is free again afterwards */
    herd_future *s = tu_submit(r, "t_add", herd_tuple("ii", 20, 22), NULL);
    assert_int_equal(tu_int_result(s), 42);
    herd_future *all[] = { p, q1, q2, s };
    release_all(all, 4);
    tu_flow_end(r);
}

/* ---- 11. workers as threads ---- */
static void test_thread_workers(void **state)
{
    herd_runner *r = tu_flow("{processes: false, n_workers: 2, threads_per_worker: 2}", NULL, 2, NULL);
    int nthreads = 0;
    assert_int_equal(herd_runner_workers(r, &nthreads), 2);
    assert_int_equal(nthreads, 4);
    herd_future *pid = tu_submit(r, "t_pid", NULL, NULL);
    assert_int_equal(tu_int_result(pid), getpid());      /* ran in this process */
    herd_future *a = tu_submit(r, "t_sleep_ret", herd_tuple("ii", 20, 1), NULL);
    herd_future *b = tu_submit(r, "t_add", herd_tuple("fi", a, 2), NULL);
    herd_future *c = tu_submit(r, "t_add", herd_tuple("ff", a, b), NULL);
    assert_int_equal(tu_int_result(c), 4);
    herd_future *fl = tu_submit(r, "t_flaky", herd_tuple("i", 1), "{retries: 1}");
    assert_int_equal(tu_int_result(fl), 1);
    herd_future *p = tu_submit(r, "t_parent", herd_tuple("i", 3), NULL);
    assert_int_equal(tu_int_result(p), 303);
    herd_future *bad = tu_submit(r, "t_fail_after", herd_tuple("is", 0, "as a thread"), NULL);
    herd_err err;
    const herd_value *v;
    assert_int_equal(herd_future_result(bad, TU_WAIT_S, &v, &err), -HERD_EFAILED);
    assert_non_null(strstr(err.msg, "as a thread"));
    herd_future *all[] = { pid, a, b, c, fl, p, bad };
    release_all(all, sizeof all / sizeof *all);
    tu_flow_end(r);
}

int main(int argc, char **argv)
{
    herd_init(&argc, &argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_priority_order),
        cmocka_unit_test(test_resources),
        cmocka_unit_test(test_dependencies),
        cmocka_unit_test(test_retries),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_ten_thousand_tasks),
        cmocka_unit_test(test_subtasks_one_slot),
        cmocka_unit_test(test_thread_workers),
        /* kept last: a crash here (it found a use-after-free in the
         * scheduler's complete()) would hide the results of the others */
        cmocka_unit_test(test_release_before_dependents_run),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
