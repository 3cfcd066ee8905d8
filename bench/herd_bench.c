/* bench/herd_bench.c — the herd side of the benchmarks (bench/run.sh runs it
 * beside bench/dask_bench.py). Public API only: herd_init first, a no-op task
 * registered with HERD_TASK, a temporary local cluster of 2 worker processes
 * with 1 thread each. Prints one machine-readable line per figure:
 *
 *     RESULT herd <metric> <value> <unit>
 *
 *   throughput_10k / throughput_100k  N no-op tasks submitted with
 *                                     herd_submit_map, then every result read;
 *                                     tasks/s, median of the repetitions
 *   latency_median / latency_p99      submit one task, wait for its result,
 *                                     1,000 times on a warm cluster; us
 *   start_close                       herd_runner_new + herd_flow_begin +
 *                                     herd_wait_for_workers(2) + herd_flow_end
 *                                     (+ herd_runner_free), median of 5; ms
 *   worker_rss_mean (and _0, _1)      VmRSS of each idle worker process; MiB
 *   client_rss                        VmRSS of this (client+scheduler) process
 *   adapt_first_task                  adaptive scaling: on an empty cluster with
 *                                     adapt_kwargs {minimum: 0, maximum: 2}, from
 *                                     the first submit of a burst to the first
 *                                     task starting on a new worker; ms, median
 *   data_16x16 / data_16x16_other     16 producers each returning 16 MiB of
 *                                     bytes, 16 consumers each taking one
 *                                     producer's future and returning its length;
 *                                     _other: producers on local-0, consumers on
 *                                     local-1 (the workers annotation); MiB/s of
 *                                     producer output, median of --data-reps
 *   data_4x128 / data_1x1024          4 x 128 MiB, 1 x 1 GiB the same way
 *
 * Options (the same as dask_bench.py): --small N --large N --reps-small R
 * --reps-large R --latency N --start-runs N --adapt-runs N --adapt-burst N
 * --data-reps N; --data-only runs the data workloads alone. */
#include <herd/herd.h>

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CLUSTER_KWARGS "{n_workers: 2, threads_per_worker: 1, processes: true}"
#define N_WORKERS 2
/* adaptive: an empty cluster of the same workers, Dask's adapt() defaults
 * (interval 1 s, wait_count 3, target_duration 5 s) but for the bounds */
#define ADAPT_CLUSTER_KWARGS "{n_workers: 0, threads_per_worker: 1, processes: true}"
#define ADAPT_KWARGS "{minimum: 0, maximum: 2}"
#define ADAPT_TASK_MS 100

/* The task: takes an int and returns it. */
static int noop(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    (void)ctx;
    *out = herd_int(herd_as_int(herd_at(args, 0)));
    return *out ? 0 : -HERD_EARG;
}
HERD_TASK(noop);

static double now_s(void);

/* The data workloads' producer: n bytes. */
static int make_bytes(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    (void)ctx;
    size_t n = (size_t)herd_as_int(herd_at(args, 0));
    const char *how = getenv("HERD_BENCH_PRODUCER");
    if (how && strcmp(how, "take") == 0) {        /* malloc + memset + herd_bytes_take */
        char *b = malloc(n ? n : 1);
        if (!b) return -ENOMEM;
        memset(b, 1, n);
        *out = herd_bytes_take(b, n);
        return *out ? 0 : -ENOMEM;
    }
    void *p;
    if (how && strcmp(how, "shm") == 0) *out = herd_bytes_alloc_shm(n, &p);   /* in a memfd */
    else *out = herd_bytes_alloc(n, &p);      /* filled in place (huge pages from 1 MiB) */
    if (!*out) return -ENOMEM;
    memset(p, 1, n);
    return 0;
}
HERD_TASK(make_bytes);

/* Its consumer: the length of what it got. */
static int length(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    (void)ctx;
    size_t n = 0;
    herd_as_bytes(herd_at(args, 0), &n);
    *out = herd_int((int64_t)n);
    return *out ? 0 : -ENOMEM;
}
HERD_TASK(length);

/* The adaptive burst's task: note when it started (CLOCK_MONOTONIC is
 * system-wide, so the worker's stamp compares with the client's), sleep ms. */
static int stamp(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    (void)ctx;
    double t = now_s();
    long ms = (long)herd_as_int(herd_at(args, 0));
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
    *out = herd_float(t);
    return *out ? 0 : -HERD_EARG;
}
HERD_TASK(stamp);

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void result(const char *metric, double value, const char *unit)
{
    printf("RESULT herd %s %.1f %s\n", metric, value, unit);
    fflush(stdout);
}

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("# herd: ", stdout);
    vprintf(fmt, ap);
    fputc('\n', stdout);
    va_end(ap);
    fflush(stdout);
}

static void die(const char *stage, const herd_err *err, int rc)
{
    fprintf(stderr, "herd_bench: %s: %s (%s)\n", stage,
            err && err->msg[0] ? err->msg : "(no message)", herd_strerror(rc));
    exit(1);
}

/* Log lines from the runner: keep warnings and errors, drop the chatter. */
static void quiet_log(void *ud, int level, const char *line)
{
    (void)ud;
    if (level >= HERD_LOG_WARN)
        fprintf(stderr, "%s\n", line);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *xs, size_t n)
{
    qsort(xs, n, sizeof *xs, cmp_double);
    return n % 2 ? xs[n / 2] : (xs[n / 2 - 1] + xs[n / 2]) / 2.0;
}

/* Nearest-rank percentile of a sorted array (the same as dask_bench.py). */
static double pctl(const double *sorted, size_t n, double p)
{
    double x = p / 100.0 * (double)n;        /* ceil, without libm in the workers */
    size_t k = (size_t)x;
    if ((double)k < x) k++;
    if (k < 1)
        k = 1;
    return sorted[k - 1];
}

/* ---- /proc ---- */

static double rss_mib(long pid)
{
    char path[64], line[256];
    double kib = NAN;
    snprintf(path, sizeof path, "/proc/%ld/status", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return NAN;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kib = strtod(line + 6, NULL);
            break;
        }
    fclose(f);
    return kib / 1024.0;
}

static long ppid_of(long pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); /* comm may hold spaces and parentheses */
    long ppid = -1;
    if (!p || sscanf(p + 2, "%*c %ld", &ppid) != 1)
        return -1;
    return ppid;
}

static int same_exe(long pid, const char *self_exe)
{
    char path[64], exe[4096];
    snprintf(path, sizeof path, "/proc/%ld/exe", pid);
    ssize_t n = readlink(path, exe, sizeof exe - 1);
    if (n < 0)
        return 0;
    exe[n] = '\0';
    return strcmp(exe, self_exe) == 0;
}

/* Descendants of `root` (children, grandchildren …), up to cap. */
static size_t descendants(long root, long *out, size_t cap)
{
    long all[4096][2];
    size_t nall = 0, n = 0;
    DIR *d = opendir("/proc");
    if (!d)
        return 0;
    struct dirent *e;
    while ((e = readdir(d)) && nall < sizeof all / sizeof all[0]) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end || pid <= 0)
            continue;
        long pp = ppid_of(pid);
        if (pp > 0) {
            all[nall][0] = pid;
            all[nall][1] = pp;
            nall++;
        }
    }
    closedir(d);
    out[n++] = root;
    for (size_t i = 0; i < n; i++) /* breadth first over the found set */
        for (size_t j = 0; j < nall && n < cap; j++)
            if (all[j][1] == out[i])
                out[n++] = all[j][0];
    memmove(out, out + 1, (n - 1) * sizeof *out);
    return n - 1;
}

/* Workers are this program re-executed (herd_init's worker mode): among the
 * descendants, those running our own executable. Others (a shell, a helper)
 * are reported separately. */
static void bench_rss(void)
{
    char self_exe[4096];
    ssize_t sn = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
    self_exe[sn > 0 ? sn : 0] = '\0';
    struct timespec settle = { 1, 0 }; /* as dask_bench.py: let start-up settle */
    nanosleep(&settle, NULL);

    long pids[256];
    size_t n = descendants((long)getpid(), pids, 256), nw = 0;
    double sum = 0;
    char metric[64];
    for (size_t i = 0; i < n; i++) {
        double r = rss_mib(pids[i]);
        if (same_exe(pids[i], self_exe)) {
            snprintf(metric, sizeof metric, "worker_rss_%zu", nw++);
            result(metric, r, "MiB");
            sum += r;
            note("worker pid %ld (ppid %ld)", pids[i], ppid_of(pids[i]));
        } else {
            note("other descendant pid %ld (ppid %ld): %.1f MiB", pids[i], ppid_of(pids[i]), r);
        }
    }
    if (nw)
        result("worker_rss_mean", sum / (double)nw, "MiB");
    else
        note("no worker process found among %zu descendants", n);
    if (nw != N_WORKERS)
        note("expected %d worker processes, found %zu", N_WORKERS, nw);
    result("client_rss", rss_mib((long)getpid()), "MiB");
}

/* ---- the cluster ---- */

static herd_runner *cluster_up(herd_err *err, int *rc)
{
    herd_runner_opts o = { .cluster_kwargs = CLUSTER_KWARGS, .log = quiet_log };
    herd_runner *r = NULL;
    if ((*rc = herd_runner_new(&r, &o, err)) != 0)
        return NULL;
    if ((*rc = herd_flow_begin(r, "herd-bench", err)) != 0 ||
        (*rc = herd_wait_for_workers(r, N_WORKERS, 60, err)) != 0) {
        herd_runner_free(r);
        return NULL;
    }
    return r;
}

static void cluster_down(herd_runner *r, const char *stage)
{
    herd_err err = { 0 };
    int rc = herd_flow_end(r, false, &err);
    herd_runner_free(r);
    if (rc)
        die(stage, &err, rc);
}

/* ---- the benchmarks ---- */

static double bench_throughput(herd_runner *r, size_t n, int reps)
{
    double *rates = calloc((size_t)reps, sizeof *rates);
    if (!rates)
        die("throughput", NULL, -ENOMEM);
    for (int k = 0; k < reps; k++) {
        herd_err err = { 0 };
        herd_future **futs = NULL;
        size_t nf = 0;
        int rc;
        double t0 = now_s();
        herd_value *tuples = herd_array();
        for (size_t i = 0; i < n; i++)
            herd_array_push(tuples, herd_tuple("I", (int64_t)i));
        if ((rc = herd_submit_map(r, "noop", tuples, &futs, &nf, &err)) != 0)
            die("throughput: herd_submit_map", &err, rc);
        if (nf != n) {
            fprintf(stderr, "herd_bench: herd_submit_map gave %zu futures for %zu tuples\n", nf, n);
            exit(1);
        }
        int64_t sum = 0;
        for (size_t i = 0; i < n; i++) {
            const herd_value *v;
            if ((rc = herd_future_result(futs[i], 300, &v, &err)) != 0)
                die("throughput: herd_future_result", &err, rc);
            sum += herd_as_int(v);
        }
        double dt = now_s() - t0;
        if (sum != (int64_t)n * ((int64_t)n - 1) / 2) {
            fprintf(stderr, "herd_bench: wrong results for n=%zu: sum %lld\n", n, (long long)sum);
            exit(1);
        }
        for (size_t i = 0; i < n; i++)
            herd_future_release(futs[i]);
        free(futs);
        rates[k] = (double)n / dt;
    }
    double m = median(rates, (size_t)reps);
    free(rates);
    return m;
}

static void bench_latency(herd_runner *r, int n, int warmup, double *med, double *p99)
{
    double *xs = calloc((size_t)n, sizeof *xs);
    if (!xs)
        die("latency", NULL, -ENOMEM);
    for (int i = -warmup; i < n; i++) {
        herd_err err = { 0 };
        herd_future *f;
        const herd_value *v;
        int rc;
        double t0 = now_s();
        if ((rc = herd_submit(r, "noop", herd_tuple("i", i), &f, &err)) != 0)
            die("latency: herd_submit", &err, rc);
        if ((rc = herd_future_result(f, 60, &v, &err)) != 0)
            die("latency: herd_future_result", &err, rc);
        double dt = now_s() - t0;
        if (herd_as_int(v) != i) {
            fprintf(stderr, "herd_bench: wrong result in latency loop: %lld for %d\n",
                    (long long)herd_as_int(v), i);
            exit(1);
        }
        herd_future_release(f);
        if (i >= 0)
            xs[i] = dt * 1e6;
    }
    *med = median(xs, (size_t)n); /* sorts xs */
    *p99 = pctl(xs, (size_t)n, 99);
    free(xs);
}

/* nprod producers of mib MiB, one consumer each (annotations: where each
 * runs, or NULL); MiB/s of producer output, median of reps. */
static double bench_data(herd_runner *r, int nprod, int64_t mib, const char *pann, const char *cann, int reps)
{
    double rates[16];
    if (reps > 16) reps = 16;
    for (int k = 0; k < reps; k++) {
        herd_future *p[64], *c[64];
        herd_err err = { 0 };
        int rc;
        double t0 = now_s();
        for (int i = 0; i < nprod; i++) {
            if ((rc = herd_submit_annotated(r, "make_bytes", herd_tuple("I", mib << 20), pann, &p[i], &err)) ||
                (rc = herd_submit_annotated(r, "length", herd_tuple("v", herd_future_arg(p[i])), cann, &c[i], &err)))
                die("data: submit", &err, rc);
        }
        for (int i = 0; i < nprod; i++) {
            const herd_value *v;
            if ((rc = herd_future_result(c[i], 600, &v, &err)) != 0) die("data: herd_future_result", &err, rc);
            if (herd_as_int(v) != mib << 20) {
                fprintf(stderr, "herd_bench: data: a consumer got %lld bytes\n", (long long)herd_as_int(v));
                exit(1);
            }
        }
        rates[k] = (double)nprod * (double)mib / (now_s() - t0);
        for (int i = 0; i < nprod; i++) {
            herd_future_release(c[i]);
            herd_future_release(p[i]);
        }
    }
    return median(rates, (size_t)reps);
}

/* This process's peak resident memory (VmHWM) in MiB; reset_peak() starts it
 * again from the current RSS (clear_refs 5). */
static double peak_mib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double kib = NAN;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmHWM:", 6) == 0) kib = strtod(line + 6, NULL);
    if (f) fclose(f);
    return kib / 1024.0;
}

static int reset_peak(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f) return -1;
    int rc = fputs("5", f) < 0;
    return fclose(f) || rc ? -1 : 0;
}

static void bench_data_all(herd_runner *r, int reps)
{
    int reset = reset_peak();
    note("data: producers of bytes -> one consumer each (returns the length); MiB/s of producer output, median of %d", reps);
    result("data_16x16", bench_data(r, 16, 16, NULL, NULL, reps), "MiB/s");
    result("data_16x16_other", bench_data(r, 16, 16, "{workers: [local-0]}", "{workers: [local-1]}", reps), "MiB/s");
    result("data_4x128", bench_data(r, 4, 128, NULL, NULL, reps), "MiB/s");
    result("data_1x1024", bench_data(r, 1, 1024, NULL, NULL, reps), "MiB/s");
    note("data_client_peak_rss: peak RSS (VmHWM) of this process (client + scheduler) during the data rows%s",
         reset ? " (could not reset it first: peak of the whole run)" : "");
    result("data_client_peak_rss", peak_mib(), "MiB");
}

static double bench_start_close(int runs)
{
    double *ts = calloc((size_t)runs, sizeof *ts);
    char line[512] = "";
    size_t off = 0;
    if (!ts)
        die("start_close", NULL, -ENOMEM);
    for (int k = 0; k < runs; k++) {
        herd_err err = { 0 };
        int rc;
        double t0 = now_s();
        herd_runner *r = cluster_up(&err, &rc);
        if (!r)
            die("start_close: cluster start", &err, rc);
        cluster_down(r, "start_close: herd_flow_end");
        ts[k] = (now_s() - t0) * 1e3;
        if (off < sizeof line)
            off += (size_t)snprintf(line + off, sizeof line - off, " %.1f", ts[k]);
    }
    note("start_close runs (ms):%s", line);
    double m = median(ts, (size_t)runs);
    free(ts);
    return m;
}

/* Adaptive scaling: a fresh flow on an empty cluster per run; the clock
 * starts before the first submit of a burst of `burst` tasks and stops at the
 * earliest start stamp among them (every worker is new). NAN when adaptive
 * scaling is not available. */
static double bench_adapt(int runs, int burst)
{
    double *ts = calloc((size_t)runs, sizeof *ts);
    char line[512] = "";
    size_t off = 0;
    if (!ts)
        die("adapt", NULL, -ENOMEM);
    for (int k = 0; k < runs; k++) {
        herd_err err = { 0 };
        herd_runner_opts o = { .cluster_kwargs = ADAPT_CLUSTER_KWARGS, .adapt_kwargs = ADAPT_KWARGS,
                               .log = quiet_log };
        herd_runner *r = NULL;
        int rc = herd_runner_new(&r, &o, &err);
        if (rc) {
            note("adapt_first_task not measured: %s", err.msg);
            free(ts);
            return NAN;
        }
        if ((rc = herd_flow_begin(r, "herd-bench-adapt", &err)) != 0)
            die("adapt: herd_flow_begin", &err, rc);
        if (herd_runner_workers(r, NULL) != 0)
            note("adapt: %d workers before the burst, expected 0", herd_runner_workers(r, NULL));
        herd_value *tuples = herd_array();
        for (int i = 0; i < burst; i++)
            herd_array_push(tuples, herd_tuple("i", ADAPT_TASK_MS));
        herd_future **futs = NULL;
        size_t nf = 0;
        double t0 = now_s();
        if ((rc = herd_submit_map(r, "stamp", tuples, &futs, &nf, &err)) != 0)
            die("adapt: herd_submit_map", &err, rc);
        double first = INFINITY;
        for (size_t i = 0; i < nf; i++) {
            const herd_value *v;
            if ((rc = herd_future_result(futs[i], 120, &v, &err)) != 0)
                die("adapt: herd_future_result", &err, rc);
            if (herd_as_float(v) < first)
                first = herd_as_float(v);
            herd_future_release(futs[i]);
        }
        free(futs);
        if (!(first >= t0)) {
            fprintf(stderr, "herd_bench: adapt: first task stamp %.6f before the submit at %.6f\n", first, t0);
            exit(1);
        }
        ts[k] = (first - t0) * 1e3;
        if (off < sizeof line)
            off += (size_t)snprintf(line + off, sizeof line - off, " %.1f", ts[k]);
        cluster_down(r, "adapt: herd_flow_end");
    }
    note("adapt_first_task runs (ms):%s", line);
    double m = median(ts, (size_t)runs);
    free(ts);
    return m;
}

static const char *throughput_tag(size_t n, char *buf, size_t cap)
{
    if (n % 1000 == 0)
        snprintf(buf, cap, "throughput_%zuk", n / 1000);
    else
        snprintf(buf, cap, "throughput_%zu", n);
    return buf;
}

/* ssh.SSHCluster end to end (bench/ssh_bench.sh gives the hosts): runner
 * + flow begin with 4 workers over the hosts, 1,000 no-op tasks with
 * herd_submit_map and every result, flow end (every remote worker stopped);
 * ms, median of runs. */
static double bench_ssh(const char *kwargs, int runs)
{
    double ts[32];
    if (runs > 32) runs = 32;
    for (int k = 0; k < runs; k++) {
        herd_err err = { 0 };
        herd_runner *r = NULL;
        herd_runner_opts o = { .cluster_class = "ssh.SSHCluster", .cluster_kwargs = kwargs };
        double t0 = now_s();
        int rc = herd_runner_new(&r, &o, &err);
        if (!rc) rc = herd_flow_begin(r, "bench-ssh", &err);
        if (!rc) rc = herd_wait_for_workers(r, 4, 60, &err);
        herd_value *tuples = herd_array();
        for (int i = 0; !rc && i < 1000; i++) herd_array_push(tuples, herd_tuple("i", i));
        herd_future **futs = NULL;
        size_t nf = 0;
        if (!rc) rc = herd_submit_map(r, "noop", tuples, &futs, &nf, &err);   /* takes tuples */
        else herd_value_free(tuples);
        for (size_t i = 0; i < nf; i++) {
            const herd_value *v;
            if (!rc && (rc = herd_future_result(futs[i], 60, &v, &err)) == 0 && herd_as_int(v) != (int64_t)i)
                rc = herd_err_set(&err, HERD_EARG, "task %zu returned %lld", i, (long long)herd_as_int(v));
            herd_future_release(futs[i]);
        }
        free(futs);
        if (r && !rc) rc = herd_flow_end(r, false, &err);
        herd_runner_free(r);
        if (rc) {
            fprintf(stderr, "herd_bench: ssh: %s\n", err.msg);
            return NAN;
        }
        ts[k] = (now_s() - t0) * 1000;
        note("ssh run %d: %.0f ms", k + 1, ts[k]);
    }
    for (int i = 1; i < runs; i++)   /* insertion sort: a handful of runs */
        for (int j = i; j > 0 && ts[j] < ts[j - 1]; j--) { double t = ts[j]; ts[j] = ts[j - 1]; ts[j - 1] = t; }
    return ts[runs / 2];
}

int main(int argc, char **argv)
{
    herd_init(&argc, &argv); /* worker mode runs the worker and never returns */

    long small = 10000, large = 100000, reps_small = 3, reps_large = 3, lat = 1000, runs = 5;
    long adapt_runs = 5, adapt_burst = 20, data_reps = 3;
    int data_only = 0;
    static const struct option longopts[] = {
        { "small", required_argument, NULL, 's' },
        { "large", required_argument, NULL, 'l' },
        { "reps-small", required_argument, NULL, 'r' },
        { "reps-large", required_argument, NULL, 'R' },
        { "latency", required_argument, NULL, 'L' },
        { "start-runs", required_argument, NULL, 'S' },
        { "adapt-runs", required_argument, NULL, 'a' },
        { "adapt-burst", required_argument, NULL, 'b' },
        { "ssh-kwargs", required_argument, NULL, 'H' },
        { "ssh-metric", required_argument, NULL, 'M' },
        { "data-reps", required_argument, NULL, 'd' },
        { "data-only", no_argument, NULL, 'D' },
        { NULL, 0, NULL, 0 },
    };
    int c;
    const char *ssh_kwargs = NULL, *ssh_metric = "ssh_e2e_1k";
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (c == 'H') { ssh_kwargs = optarg; continue; }
        if (c == 'M') { ssh_metric = optarg; continue; }
        if (c == 'D') { data_only = 1; continue; }
        char *end;
        long v = optarg ? strtol(optarg, &end, 10) : 0;
        if (c == '?' || !optarg || *end || v < 1) {
            fprintf(stderr, "usage: %s [--small N] [--large N] [--reps-small R] "
                            "[--reps-large R] [--latency N] [--start-runs N] [--adapt-runs N] "
                            "[--adapt-burst N] [--data-reps N] (all >= 1) [--data-only] "
                            "[--ssh-kwargs YAML [--ssh-metric NAME]]\n",
                    argv[0]);
            return 2;
        }
        switch (c) {
        case 's': small = v; break;
        case 'l': large = v; break;
        case 'r': reps_small = v; break;
        case 'R': reps_large = v; break;
        case 'L': lat = v; break;
        case 'S': runs = v; break;
        case 'a': adapt_runs = v; break;
        case 'b': adapt_burst = v; break;
        case 'd': data_reps = v; break;
        }
    }
    if (ssh_kwargs) {   /* bench/ssh_bench.sh: the ssh.SSHCluster figure only */
        double ms = bench_ssh(ssh_kwargs, (int)runs);
        if (isnan(ms)) return 1;
        result(ssh_metric, ms, "ms");
        return 0;
    }
    note("herd %s, cluster_kwargs %s", HERD_VERSION_STRING, CLUSTER_KWARGS);

    herd_err err = { 0 };
    int rc;
    herd_runner *r = cluster_up(&err, &rc);
    if (!r)
        die("cluster start", &err, rc);
    if (data_only) {
        bench_data_all(r, (int)data_reps);
        cluster_down(r, "herd_flow_end");
        return 0;
    }
    bench_rss();
    bench_throughput(r, 100, 1); /* warm up */
    char tag[64];
    note("%s: n=%ld, herd_submit_map + every result, median of %ld",
         throughput_tag((size_t)small, tag, sizeof tag), small, reps_small);
    result(tag, bench_throughput(r, (size_t)small, (int)reps_small), "tasks/s");
    note("%s: n=%ld, herd_submit_map + every result, median of %ld",
         throughput_tag((size_t)large, tag, sizeof tag), large, reps_large);
    result(tag, bench_throughput(r, (size_t)large, (int)reps_large), "tasks/s");
    double med, p99;
    bench_latency(r, (int)lat, 50, &med, &p99);
    note("latency: %ld sequential submit+result after 50 warm-up", lat);
    result("latency_median", med, "us");
    result("latency_p99", p99, "us");
    bench_data_all(r, (int)data_reps);
    cluster_down(r, "herd_flow_end");

    result("start_close", bench_start_close((int)runs), "ms");

    note("adapt_first_task: cluster_kwargs %s, adapt_kwargs %s, burst of %ld tasks of %d ms, "
         "first submit -> first task started on a new worker, median of %ld",
         ADAPT_CLUSTER_KWARGS, ADAPT_KWARGS, adapt_burst, ADAPT_TASK_MS, adapt_runs);
    double adapt = bench_adapt((int)adapt_runs, (int)adapt_burst);
    if (!isnan(adapt))
        result("adapt_first_task", adapt, "ms");
    return 0;
}
