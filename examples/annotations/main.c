/* examples/annotations/main.c — the seed's two dask.annotate examples in C,
 * with the order the tasks really ran in printed, so the effect shows:
 *
 *  1. priority: on a cluster of one worker with one thread, a blocker task
 *     runs first so the others queue behind it; then a low-priority (-10)
 *     task, a high-priority (10) one and, via herd_submit_annotated, a
 *     middle one (5) are submitted in that order. They run high, middle, low.
 *  2. resources: the worker declares {GPU: 1, process: 1} and has 4 threads;
 *     one task needs {GPU: 1} and three need {process: 1}. The three hold
 *     the single `process` unit in turn, so they run one at a time although
 *     threads are free. A task asking for {TPU: 1}, which no worker offers,
 *     is refused when submitted.
 *
 * Each task returns {x, start, end, pid} (CLOCK_MONOTONIC seconds, which all
 * processes of one machine share), and the flow sorts by start. Exit status
 * 0 when every ordering fact held, 1 otherwise. */
#include <herd/herd.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* show(x, seconds) — the seed's show(x), which also stays busy for a while
 * and reports when and where it ran. */
static int show(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    if (herd_len(args) != 2 || herd_typeof(herd_at(args, 0)) != HERD_INT ||
        (herd_typeof(herd_at(args, 1)) != HERD_FLOAT && herd_typeof(herd_at(args, 1)) != HERD_INT))
        return herd_task_fail(ctx, "show: expected arguments (x: int, seconds: float)");
    int64_t x = herd_as_int(herd_at(args, 0));
    double secs = herd_as_float(herd_at(args, 1)), start = now();
    herd_task_log(ctx, "show(%lld)", (long long)x);
    struct timespec ts = { (time_t)secs, (long)((secs - (double)(time_t)secs) * 1e9) };
    while (nanosleep(&ts, &ts)) {}
    herd_value *m = herd_map();
    if (!m || herd_map_set(m, "x", herd_int(x)) || herd_map_set(m, "start", herd_float(start)) ||
        herd_map_set(m, "end", herd_float(now())) || herd_map_set(m, "pid", herd_int(getpid()))) {
        herd_value_free(m);
        return herd_task_fail(ctx, "show: out of memory");
    }
    *out = m;
    return 0;
}
HERD_TASK(show);

typedef struct ran { const char *label; int64_t x; double start, end; int64_t pid; } ran;

static int by_start(const void *a, const void *b)
{
    const ran *p = a, *q = b;
    return (p->start > q->start) - (p->start < q->start);
}

/* Wait for n futures, fill runs[] (labels given), sort by start. */
static int collect(herd_future **fs, const char **labels, size_t n, ran *runs)
{
    herd_err err;
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        const herd_value *v;
        if (herd_future_result(fs[i], 60, &v, &err)) {
            fprintf(stderr, "annotations: %s (%s): %s\n", labels[i], herd_future_name(fs[i]), err.msg);
            bad = 1;
            continue;
        }
        runs[i] = (ran){ labels[i], herd_as_int(herd_map_get(v, "x")), herd_as_float(herd_map_get(v, "start")),
                         herd_as_float(herd_map_get(v, "end")), herd_as_int(herd_map_get(v, "pid")) };
    }
    if (bad) return -1;
    qsort(runs, n, sizeof *runs, by_start);
    return 0;
}

static herd_runner *start(const char *flow, const char *kwargs)
{
    herd_err err;
    herd_runner *r = NULL;
    herd_runner_opts o = { .cluster_kwargs = kwargs };
    printf("\n%s: a temporary LocalCluster with cluster_kwargs %s\n", flow, kwargs);
    if (herd_runner_new(&r, &o, &err) || herd_flow_begin(r, flow, &err) ||
        herd_wait_for_workers(r, 1, 60, &err)) {
        fprintf(stderr, "annotations: %s: %s\n", flow, err.msg);
        if (r) herd_flow_end(r, true, NULL);
        herd_runner_free(r);
        return NULL;
    }
    return r;
}

static int submit(herd_runner *r, const char *scope, const char *per_submit, int x, double secs, herd_future **f)
{
    herd_err err;
    int rc = 0;
    if (scope && (rc = herd_annotate_push(r, scope, &err))) {
        fprintf(stderr, "annotations: annotate %s: %s\n", scope, err.msg);
        return rc;
    }
    herd_value *args = herd_tuple("id", x, secs);
    rc = per_submit ? herd_submit_annotated(r, "show", args, per_submit, f, &err)
                    : herd_submit(r, "show", args, f, &err);
    if (rc) fprintf(stderr, "annotations: submit show(%d): %s\n", x, err.msg);
    if (scope) herd_annotate_pop(r);
    return rc;
}

static int priority_demo(void)
{
    herd_runner *r = start("priority", "{n_workers: 1, threads_per_worker: 1}");
    if (!r) return -1;
    herd_future *fs[4] = {0};
    const char *labels[4] = { "blocker", "low (priority -10)", "high (priority 10)", "middle (priority 5)" };
    int bad = submit(r, NULL, NULL, 0, 0.5, &fs[0]);
    /* let the blocker take the only thread, so the next three queue behind it */
    for (int i = 0; !bad && i < 2000 && herd_future_state(fs[0]) < HERD_RUNNING; i++) usleep(5000);
    bad = bad ||
          submit(r, "{priority: -10}", NULL, 1, 0.05, &fs[1]) ||  /* with dask.annotate(priority=-10) */
          submit(r, "{priority: 10}", NULL, 2, 0.05, &fs[2]) ||   /* with dask.annotate(priority=10) */
          submit(r, NULL, "{priority: 5}", 3, 0.05, &fs[3]);      /* herd_submit_annotated */
    ran runs[4] = {0};
    if (!bad) bad = collect(fs, labels, 4, runs);
    if (!bad) {
        printf("priority: order the tasks ran in:\n");
        for (int i = 0; i < 4; i++) printf("  %d. show(%lld)  %s\n", i + 1, (long long)runs[i].x, runs[i].label);
        /* the blocker ran first (it was running before the rest were
         * submitted); among the queued ones the higher priority starts first */
        int pos[4];
        for (int i = 0; i < 4; i++) pos[runs[i].x] = i;
        if (pos[2] < pos[3] && pos[3] < pos[1]) {
            printf("priority: OK: high ran before middle, middle before low\n");
        } else {
            printf("priority: WRONG ORDER: expected high, middle, low\n");
            bad = 1;
        }
    }
    for (int i = 0; i < 4; i++) if (fs[i]) herd_future_release(fs[i]);
    herd_err err;
    if (herd_flow_end(r, bad, &err)) fprintf(stderr, "annotations: priority: %s\n", err.msg);
    herd_runner_free(r);
    return bad ? -1 : 0;
}

static int resources_demo(void)
{
    herd_runner *r = start("resources", "{n_workers: 1, threads_per_worker: 4, resources: {GPU: 1, process: 1}}");
    if (!r) return -1;
    herd_future *fs[4] = {0};
    const char *labels[4] = { "needs {GPU: 1}", "needs {process: 1}", "needs {process: 1}", "needs {process: 1}" };
    int bad = submit(r, "{resources: {GPU: 1}}", NULL, 0, 0.2, &fs[0]);
    /* with dask.annotate(resources={'process': 1}): one scope for three tasks */
    herd_err err;
    if (!bad && herd_annotate_push(r, "{resources: {process: 1}}", &err)) {
        fprintf(stderr, "annotations: %s\n", err.msg);
        bad = 1;
    } else if (!bad) {
        for (int i = 1; i <= 3 && !bad; i++) bad = submit(r, NULL, NULL, i, 0.2, &fs[i]);
        herd_annotate_pop(r);
    }

    ran runs[4] = {0};
    if (!bad) bad = collect(fs, labels, 4, runs);
    if (!bad) {
        double t0 = runs[0].start;
        printf("resources: when each task ran (seconds from the first start):\n");
        for (int i = 0; i < 4; i++)
            printf("  show(%lld) %-20s %.3f .. %.3f  (pid %lld)\n", (long long)runs[i].x, runs[i].label,
                   runs[i].start - t0, runs[i].end - t0, (long long)runs[i].pid);
        ran proc[3];
        int np = 0;
        for (int i = 0; i < 4; i++) if (runs[i].x != 0) proc[np++] = runs[i];
        int overlap = 0;
        for (int i = 0; i + 1 < np; i++) if (proc[i + 1].start < proc[i].end) overlap = 1;
        if (np == 3 && !overlap) {
            printf("resources: OK: the three {process: 1} tasks did not overlap\n");
        } else {
            printf("resources: OVERLAP: {process: 1} tasks ran at the same time\n");
            bad = 1;
        }
    }
    for (int i = 0; i < 4; i++) if (fs[i]) herd_future_release(fs[i]);

    /* a resource no worker has: refused at submit */
    herd_future *tpu = NULL;
    herd_value *args = herd_tuple("id", 4, 0.0);
    int rc = herd_submit_annotated(r, "show", args, "{resources: {TPU: 1}}", &tpu, &err);
    if (rc) {
        printf("resources: {TPU: 1} refused at submit: %s\n", err.msg);
    } else {
        const herd_value *v;
        rc = herd_future_result(tpu, 10, &v, &err);
        printf("resources: {TPU: 1} was accepted at submit (%s)%s%s\n",
               rc ? "then failed" : "and even ran", rc ? ": " : "", rc ? err.msg : "");
        herd_future_release(tpu);
        bad = 1;
    }
    if (herd_flow_end(r, bad, &err)) fprintf(stderr, "annotations: resources: %s\n", err.msg);
    herd_runner_free(r);
    return bad ? -1 : 0;
}

int main(int argc, char **argv)
{
    int rc = herd_init(&argc, &argv);          /* a worker process never returns from here */
    if (rc) {
        fprintf(stderr, "%s: herd_init: %s\n", argv[0], herd_strerror(rc));
        return 1;
    }
    if (argc > 1) {
        fprintf(stderr, "usage: %s\n(runs the priority and resources demos; takes no arguments)\n", argv[0]);
        return 2;
    }
    int bad = priority_demo() != 0;
    fflush(stdout);
    bad |= resources_demo() != 0;
    return bad;
}
