/* tests/integration/test_spill.c — a worker's memory under memory_limit,
 * with real worker processes: held results spilled to files in
 * local_directory above 60% and read back right (by a dependent on the same
 * worker and by the client), a FREE deleting a spilled value's file, the
 * files gone when the cluster closes; a worker over 80% paused (no task
 * starts there, the flow still completes) and resumed; released futures
 * giving the worker's memory back (its RSS, read from /proc, falls); a bad
 * local_directory refused naming the field; the worker's own figures (bytes
 * held in memory and spilled, its RSS), sent in its heartbeats, on the
 * scheduler's /api/v1/workers and /metrics.
 *
 * The memory limits are set from a worker's own baseline RSS, measured
 * first (sanitizer builds start bigger), so every threshold lies where the
 * test means it to. No timing assertions: the tests wait for states (a
 * future's state, a log line, a file, an RSS figure). */
#include <herd/herd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <glob.h>
#include <pthread.h>
#include <malloc.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "../support/testutil.h"
#include "../support/http.h"

#define MIB ((int64_t)1 << 20)
#define VALUE (16 * MIB)
/* workers give memory back at once under ASan too (its quarantine would keep it) */
#define ENV "env: {ASAN_OPTIONS: \"quarantine_size_mb=0\"}"

/* ---- tasks (they run in the workers) ---- */
#define BLOCK 4096
static unsigned char pattern(int64_t seed, size_t block) { return (unsigned char)((uint64_t)seed * 131 + block * 31 + 7); }

static int64_t rss_now(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, rss = 0;
    if (!f) return 0;
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2) rss = 0;
    fclose(f);
    return (int64_t)rss * sysconf(_SC_PAGESIZE);
}

/* () -> [the worker's RSS in bytes, its pid] */
static int t_rss(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    *out = herd_tuple("II", rss_now(), (int64_t)getpid());
    return 0;
}
HERD_TASK(t_rss);

/* (n, seed[, below]) -> n bytes of pattern(seed), taken without a copy.
 * With below, it first waits (a while at most) until the worker's RSS is
 * under below bytes: a producer no faster than the memory monitor, whose
 * RSS readings come every 100 ms (sanitizer builds grow faster). */
static int t_make(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    size_t n = (size_t)herd_as_int(herd_at(args, 0));
    int64_t seed = herd_as_int(herd_at(args, 1)), below = herd_len(args) > 2 ? herd_as_int(herd_at(args, 2)) : 0;
    /* 3 s at most: when nothing is left to spill and the RSS stays up (spilled
     * files read back are mapped; a sanitizer keeps freed memory), every
     * producer would otherwise wait the whole while and the flow outlast
     * its futures' timeouts */
    for (double end = tu_now() + 3.0; below && rss_now() >= below && tu_now() < end;) tu_sleep_ms(5);
    unsigned char *buf = malloc(n ? n : 1);
    if (!buf) return herd_task_fail(ctx, "t_make: no memory for %zu bytes", n);
    for (size_t off = 0; off < n; off += BLOCK) memset(buf + off, pattern(seed, off / BLOCK), n - off < BLOCK ? n - off : BLOCK);
    *out = herd_bytes_take(buf, n);
    return 0;
}
HERD_TASK(t_make);

static bool bytes_ok(const herd_value *v, size_t n, int64_t seed)
{
    size_t len = 0;
    const unsigned char *p = herd_as_bytes(v, &len);
    if (len != n || (n && !p)) return false;
    unsigned char want[BLOCK];
    for (size_t off = 0; off < n; off += BLOCK) {
        size_t k = n - off < BLOCK ? n - off : BLOCK;
        memset(want, pattern(seed, off / BLOCK), k);
        if (memcmp(p + off, want, k)) return false;
    }
    return true;
}

/* (bytes, n, seed) -> 1 when they are t_make(n, seed)'s, else 0 */
static int t_check(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    *out = herd_int(bytes_ok(herd_at(args, 0), (size_t)herd_as_int(herd_at(args, 1)), herd_as_int(herd_at(args, 2))));
    return 0;
}
HERD_TASK(t_check);

/* () -> the worker's name */
static int t_where(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    *out = herd_str(herd_task_worker_name(ctx));
    return 0;
}
HERD_TASK(t_where);

/* (dir, bytes): allocates and touches memory, 1 MiB at a time, until the
 * worker's RSS reaches bytes; writes dir/hogged; waits for dir/release;
 * frees it all and returns the worker's name. */
static int t_hog(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    const char *dir = herd_as_str(herd_at(args, 0));
    int64_t want = herd_as_int(herd_at(args, 1));
    char **chunks = calloc(4096, sizeof *chunks);
    size_t n = 0;
    while (chunks && n < 4096 && rss_now() < want) {
        if (!(chunks[n] = malloc((size_t)MIB))) break;
        memset(chunks[n++], 0x5a, (size_t)MIB);
    }
    char path[600];
    snprintf(path, sizeof path, "%s/hogged", dir);
    tu_write_file(path, "1");
    snprintf(path, sizeof path, "%s/release", dir);
    for (double end = tu_now() + 4 * TU_WAIT_S; access(path, F_OK) && tu_now() < end;) tu_sleep_ms(5);
    while (n) free(chunks[--n]);
    free(chunks);
    malloc_trim(0);
    *out = herd_str(herd_task_worker_name(ctx));
    return 0;
}
HERD_TASK(t_hog);

/* (n, seed) -> n bytes of pattern(seed) in a memfd (herd_bytes_alloc_shm):
 * a reader of this host maps this worker's pages without a copy. */
static int t_make_shm(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    size_t n = (size_t)herd_as_int(herd_at(args, 0));
    int64_t seed = herd_as_int(herd_at(args, 1));
    unsigned char *buf;
    if (!(*out = herd_bytes_alloc_shm(n, (void **)&buf))) return herd_task_fail(ctx, "t_make_shm: no memory for %zu bytes", n);
    for (size_t off = 0; off < n; off += BLOCK) memset(buf + off, pattern(seed, off / BLOCK), n - off < BLOCK ? n - off : BLOCK);
    return 0;
}
HERD_TASK(t_make_shm);

/* ([bytes...], n, hold_ms) -> [values that are t_make_shm(n, i + 1)'s, the
 * worker's RSS while it reads them all, in bytes]: it keeps them mapped
 * hold_ms more, so the memory monitor (every 100 ms) and the exit check
 * (every 200 ms) see them several times. */
static int t_check_all(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    const herd_value *vs = herd_at(args, 0);
    size_t n = (size_t)herd_as_int(herd_at(args, 1));
    int64_t ok = 0;
    for (size_t i = 0; i < herd_len(vs); i++) ok += bytes_ok(herd_at(vs, i), n, (int64_t)i + 1);
    int64_t rss = rss_now();
    tu_sleep_ms((int)herd_as_int(herd_at(args, 2)));
    *out = herd_tuple("II", ok, rss);
    return 0;
}
HERD_TASK(t_check_all);

/* ---- helpers ---- */
static const herd_value *result_of(herd_future *f)
{
    const herd_value *v = NULL;
    herd_err err = { 0 };
    if (herd_future_result(f, 4 * TU_WAIT_S, &v, &err)) fail_msg("%s: %s", herd_future_name(f), err.msg);
    return v;
}

/* A worker's RSS right after it started (this binary, one thread, no limit)
 * and, with cost, what holding one value adds to it (VALUE, or more under a
 * sanitizer's shadow memory): the memory limits below are set from these. */
static int64_t baseline_rss(int64_t *cost)
{
    herd_runner *r = tu_flow("{n_workers: 1, threads_per_worker: 1, memory_limit: 0, " ENV "}", NULL, 1, NULL);
    herd_future *f = tu_submit(r, "t_rss", herd_tuple(""), NULL);
    int64_t rss = herd_as_int(herd_at(result_of(f), 0));
    herd_future_release(f);
    if (cost) {
        herd_future *v = tu_submit(r, "t_make", herd_tuple("Ii", VALUE, 1), NULL);
        herd_err err = { 0 };
        if (herd_wait(&v, 1, 4 * TU_WAIT_S, &err)) fail_msg("%s", err.msg);
        herd_future *g = tu_submit(r, "t_rss", herd_tuple(""), NULL);   /* v held meanwhile */
        *cost = herd_as_int(herd_at(result_of(g), 0)) - rss;
        if (*cost < VALUE) *cost = VALUE;
        herd_future_release(g);
        herd_future_release(v);
    }
    tu_flow_end(r);
    assert_true(rss > 0);
    return rss;
}

/* Under ThreadSanitizer (detected at compile time) a worker's RSS is its
 * own plus TSan's shadow memory and what TSan's allocator keeps, and while
 * values are made and spilled it runs well ahead of the bytes held, in
 * bursts the 100 ms monitor cannot follow: measured, up to 250 MiB under a
 * 160 MiB limit holding 96 MiB. The spill tests then scale their limit, so
 * that the RSS stays under the 95% exit while the managed bytes (the values
 * held, which the thresholds count the same in every build) still cross
 * 60%: more values, the same rules. */
#define SPILL_SCALE (TU_TSAN ? 4 : 1)

/* A limit the values outgrow, where a producer waiting for the RSS to be
 * under 65% (t_make's below) never reaches 80% (paused) or 95% (exit). */
static int64_t spill_limit(int64_t base, int64_t cost)
{
    int64_t limit = SPILL_SCALE * 3 * (base + 2 * cost);
    if (limit < 96 * MIB) limit = 96 * MIB;
    return (limit + MIB - 1) / MIB * MIB;
}

/* Files matching pattern. */
static size_t count(const char *pattern_)
{
    glob_t g;
    size_t n = glob(pattern_, 0, NULL, &g) == 0 ? g.gl_pathc : 0;
    globfree(&g);
    return n;
}

static size_t wait_count(const char *pat, size_t want)
{
    double end = tu_now() + TU_WAIT_S;
    size_t n;
    while ((n = count(pat)) != want && tu_now() < end) tu_sleep_ms(10);
    return n;
}

/* VmRSS of pid, in bytes (0 when it cannot be read). */
static int64_t vm_rss(long pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%ld/status", pid);
    FILE *f = fopen(path, "r");
    long long kib = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %lld kB", &kib) == 1) break;
    if (f) fclose(f);
    return kib * 1024;
}

/* ---- the scheduler's HTTP endpoint (tests/support/http.h) ---- */

/* The number after the first `key` in text, or -1. */
static double number_after(const char *text, const char *key)
{
    const char *p = text ? strstr(text, key) : NULL;
    return p ? strtod(p + strlen(key), NULL) : -1;
}

/* The worker's own figures (its heartbeat) on the scheduler's endpoint: wait
 * until /api/v1/workers shows at least spilled bytes spilled and /metrics has
 * herd_worker_memory_bytes of each type for it. */
static void check_reported(tu_log *log, double spilled)
{
    char url[300];
    tu_dashboard_links(log, url, sizeof url, NULL, 0);
    double end = tu_now() + 4 * TU_WAIT_S;
    tu_resp api = { 0 }, met = { 0 };
    for (;;) {
        tu_resp_free(&api);
        tu_resp_free(&met);
        api = tu_get(url, "/api/v1/workers", NULL);
        met = tu_get(url, "/metrics", NULL);
        if (number_after(api.body, "\"spilled_bytes\":") >= spilled &&
            number_after(met.body, "herd_worker_memory_bytes{worker=\"local-0\",type=\"spilled\"} ") >= spilled)
            break;
        if (tu_now() > end)
            fail_msg("no %.0f spilled bytes reported: /api/v1/workers %s\n/metrics %s", spilled, api.body, met.body);
        tu_sleep_ms(100);
    }
    assert_true(number_after(api.body, "\"managed_bytes\":") > 0);         /* what stayed in memory */
    assert_true(number_after(api.body, "\"memory\":") > 0);                /* its RSS */
    assert_true(number_after(met.body, "herd_worker_memory_bytes{worker=\"local-0\",type=\"managed\"} ") > 0);
    assert_true(number_after(met.body, "herd_worker_memory_bytes{worker=\"local-0\",type=\"unmanaged\"} ") >= 0);
    tu_resp_free(&api);
    tu_resp_free(&met);
}

/* n values of VALUE bytes (seeds 1..n) on the flow's worker, each made
 * once its RSS is under 0.65 x limit; the array is malloc'd. */
static herd_future **make_values(herd_runner *r, int n, int64_t limit)
{
    herd_future **f = calloc((size_t)n, sizeof *f);
    assert_non_null(f);
    for (int i = 0; i < n; i++)
        f[i] = tu_submit(r, "t_make", herd_tuple("IiI", VALUE, i + 1, (int64_t)(0.65 * (double)limit)), NULL);
    return f;
}

/* cluster_kwargs: one worker of one thread under memory_limit limit. */
static void one_worker(char *ck, size_t cap, int64_t limit)
{
    snprintf(ck, cap, "{n_workers: 1, threads_per_worker: 1, memory_limit: %lld, " ENV "}", (long long)limit);
}

/* ---- tests ---- */
/* A limit that the values outgrow: they spill (the oldest first), the files
 * are in local_directory, a dependent on the same worker and the client read
 * every value right, a FREE deletes its file, and closing removes the rest. */
static void test_spill_and_read_back(void **state)
{
    int64_t cost = 0, base = baseline_rss(&cost), limit = spill_limit(base, cost);
    int n = (int)(limit / VALUE) + 3;                     /* more than the limit holds */
    int in_memory = (int)(0.6 * (double)limit / (double)VALUE);
    char dir[256], ck[600], pat[400];
    tu_mkdtemp(dir, sizeof dir);
    snprintf(ck, sizeof ck, "{n_workers: 1, threads_per_worker: 1, memory_limit: %lld, local_directory: \"%s\", " ENV "}",
             (long long)limit, dir);
    snprintf(pat, sizeof pat, "%s/herd-spill-local-0-*/*", dir);
    tu_log log;
    tu_log_init(&log);
    /* with the dashboard: the worker's figures reach it through its heartbeats */
    herd_runner *r = tu_flow(ck, "{dashboard_address: '127.0.0.1:0'}", 1, &log);
    herd_future **f = make_values(r, n, limit);
    herd_err err = { 0 };
    if (herd_wait(f, (size_t)n, 4 * TU_WAIT_S, &err)) fail_msg("herd_wait: %s", err.msg);
    for (int i = 0; i < n; i++)
        if (herd_future_state(f[i]) != HERD_COMPLETED)
            fail_msg("value %d: %s %s", i, herd_state_name(herd_future_state(f[i])), herd_future_error(f[i]));

    /* spilled while held: one file per value, mode 0600, beside no other */
    size_t files = count(pat);
    if ((int)files < n - in_memory || (int)files > n)
        fail_msg("%zu spill files for %d values of which at most %d fit in memory (limit %lld MiB, baseline RSS %lld MiB, "
                 "%lld MiB per value)", files, n, in_memory, (long long)(limit / MIB), (long long)(base / MIB),
                 (long long)(cost / MIB));
    glob_t g;
    assert_int_equal(glob(pat, 0, NULL, &g), 0);
    struct stat st;
    assert_int_equal(stat(g.gl_pathv[0], &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, VALUE + 5);             /* msgpack bin32: 5 bytes of header */
    globfree(&g);
    assert_true(tu_log_has_line(&log, "local-0: spilled 16.0 MiB", dir));
    assert_true(tu_log_has_line(&log, "spilled", "% of memory_limit"));
    check_reported(&log, (double)(n - in_memory) * VALUE);

    /* the oldest value is spilled: a dependent on this worker reads it back */
    herd_future *c = tu_submit(r, "t_check", herd_tuple("vIi", herd_future_arg(f[0]), VALUE, 1), NULL);
    assert_int_equal(tu_int_result(c), 1);
    herd_future_release(c);
    /* the client reads every value (spilled ones from their files) */
    for (int i = 0; i < n; i++)
        if (!bytes_ok(result_of(f[i]), (size_t)VALUE, i + 1)) fail_msg("value %d read back wrong", i);
    /* a FREE deletes a spilled value's file */
    char one[500];
    snprintf(one, sizeof one, "%s/herd-spill-local-0-*/%016llx-*", dir, (unsigned long long)herd_future_key(f[0]));
    assert_int_equal(count(one), 1);
    herd_future_release(f[0]);
    assert_int_equal(wait_count(one, 0), 0);

    free(f);
    tu_flow_end(r);
    /* the worker's spill directory went with it */
    snprintf(pat, sizeof pat, "%s/herd-spill-*", dir);
    assert_int_equal(wait_count(pat, 0), 0);
    tu_log_free(&log);
    tu_rmtree(dir);
}

/* By default the spill directory is in the cluster's private directory; a
 * SIGKILLed worker's spill files go when the cluster closes. */
static void test_default_local_directory(void **state)
{
    int64_t cost = 0, base = baseline_rss(&cost), limit = spill_limit(base, cost);
    int n = (int)(limit / VALUE) + 2;
    char ck[300];
    one_worker(ck, sizeof ck, limit);
    tu_log log;
    tu_log_init(&log);
    herd_runner *r = tu_flow(ck, NULL, 1, &log);
    herd_future **f = make_values(r, n, limit);
    for (int i = 0; i < n; i++) assert_true(bytes_ok(result_of(f[i]), (size_t)VALUE, i + 1));
    assert_true(tu_log_has_line(&log, "spilled 16.0 MiB", "/herd-spill-local-0-"));
    char pat[300];
    snprintf(pat, sizeof pat, "/tmp/herd-%ld-*/herd-spill-local-0-*", (long)getpid());
    assert_int_equal(count(pat), 1);
    /* a worker killed with its files there: they go with the cluster's directory */
    herd_future *p = tu_submit(r, "t_rss", herd_tuple(""), NULL);
    pid_t pid = (pid_t)herd_as_int(herd_at(result_of(p), 1));
    herd_future_release(p);
    assert_int_equal(kill(pid, SIGKILL), 0);
    assert_true(tu_wait_pid_gone(pid, TU_WAIT_S));
    snprintf(pat, sizeof pat, "/tmp/herd-%ld-*/herd-spill-local-0-*/*", (long)getpid());
    assert_true(count(pat) >= 1);
    /* nothing left to recompute; the replacement (local-1) up and running
     * before the flow ends, so the cluster stops it like any other */
    for (int i = 0; i < n; i++) herd_future_release(f[i]);
    free(f);
    herd_future *q = tu_submit(r, "t_where", herd_tuple(""), NULL);
    assert_string_equal(herd_as_str(result_of(q)), "local-1");
    herd_future_release(q);
    tu_flow_end(r);
    snprintf(pat, sizeof pat, "/tmp/herd-%ld-*", (long)getpid());
    if (wait_count(pat, 0)) {
        snprintf(pat, sizeof pat, "/tmp/herd-%ld-*/*", (long)getpid());
        fail_msg("the cluster's directory is still there, with %zu entries", count(pat));
    }
    tu_log_free(&log);
}

/* With its scheduler over TCP a worker holds its values too and spills
 * them, by default into a private directory of its own (/tmp/herd-<its
 * pid>-XXXXXX), which goes when the worker leaves. */
static void test_spill_over_tcp(void **state)
{
    int64_t cost = 0, base = baseline_rss(&cost), limit = spill_limit(base, cost);
    int n = (int)(limit / VALUE) + 2;
    char ck[300];
    one_worker(ck, sizeof ck, limit);
    tu_log log;
    tu_log_init(&log);
    herd_runner *r = tu_flow(ck, "{listen: 'tcp://127.0.0.1:0'}", 1, &log);
    herd_future *p = tu_submit(r, "t_rss", herd_tuple(""), NULL);
    long pid = (long)herd_as_int(herd_at(result_of(p), 1));
    herd_future_release(p);
    herd_future **f = make_values(r, n, limit);
    herd_err err = { 0 };
    if (herd_wait(f, (size_t)n, 4 * TU_WAIT_S, &err)) fail_msg("herd_wait: %s", err.msg);
    char where[64], pat[300];
    snprintf(where, sizeof where, "/tmp/herd-%ld-", pid);
    assert_true(tu_log_has_line(&log, "local-0: spilled 16.0 MiB", where));
    snprintf(pat, sizeof pat, "/tmp/herd-%ld-*/herd-spill-local-0-*/*", pid);
    assert_true(count(pat) >= 1);
    /* the oldest value is spilled: a dependent there and the client read it back */
    herd_future *c = tu_submit(r, "t_check", herd_tuple("vIi", herd_future_arg(f[0]), VALUE, 1), NULL);
    assert_int_equal(tu_int_result(c), 1);
    herd_future_release(c);
    for (int i = 0; i < n; i++)
        if (!bytes_ok(result_of(f[i]), (size_t)VALUE, i + 1)) fail_msg("value %d read back wrong", i);
    for (int i = 0; i < n; i++) herd_future_release(f[i]);
    free(f);
    tu_flow_end(r);
    assert_true(tu_wait_pid_gone((pid_t)pid, TU_WAIT_S));
    snprintf(pat, sizeof pat, "/tmp/herd-%ld-*", pid);
    assert_int_equal(count(pat), 0);
    tu_log_free(&log);
}

/* A worker over 80% of its limit is paused: the tasks submitted meanwhile
 * all run on the other worker although it has a free thread; once its
 * memory falls back it resumes and runs tasks again. With client_kwargs cl. */
static void pause_and_resume(const char *cl)
{
    int64_t base = baseline_rss(NULL);
    int64_t limit = 4 * base;
    if (limit < 96 * MIB) limit = 96 * MIB;
    limit = (limit + MIB - 1) / MIB * MIB;
    char dir[256], ck[400], path[400];
    tu_mkdtemp(dir, sizeof dir);
    snprintf(ck, sizeof ck, "{n_workers: 2, threads_per_worker: 2, memory_limit: %lld, " ENV "}", (long long)limit);
    tu_log log;
    tu_log_init(&log);
    herd_runner *r = tu_flow(ck, cl, 2, &log);
    /* between the pause (80%) and the exit (95%) */
    herd_future *hog = tu_submit(r, "t_hog", herd_tuple("sI", dir, (int64_t)(0.87 * (double)limit)),
                                 "{workers: [local-0]}");
    snprintf(path, sizeof path, "%s/hogged", dir);
    free(tu_wait_file(path, 4 * TU_WAIT_S));
    if (!tu_log_wait_line(&log, "local-0: paused", "above 80% of memory_limit", 4 * TU_WAIT_S))
        fail_msg("local-0 never paused (limit %lld MiB)", (long long)(limit / MIB));

    herd_future *w[6];
    for (int i = 0; i < 6; i++) w[i] = tu_submit(r, "t_where", herd_tuple(""), NULL);
    for (int i = 0; i < 6; i++) {
        assert_string_equal(herd_as_str(result_of(w[i])), "local-1");
        herd_future_release(w[i]);
    }

    snprintf(path, sizeof path, "%s/release", dir);
    assert_int_equal(tu_write_file(path, "1"), 0);
    assert_string_equal(herd_as_str(result_of(hog)), "local-0");
    if (!tu_log_wait_line(&log, "local-0: resumed", "back under 80%", 4 * TU_WAIT_S))
        fail_msg("local-0 never resumed");
    herd_future *again = tu_submit(r, "t_where", herd_tuple(""), "{workers: [local-0]}");
    assert_string_equal(herd_as_str(result_of(again)), "local-0");
    herd_future_release(again);
    herd_future_release(hog);
    tu_flow_end(r);
    tu_log_free(&log);
    tu_rmtree(dir);
}

static void test_pause_and_resume(void **state) { pause_and_resume(NULL); }

/* Over TCP a worker pauses all the same. */
static void test_pause_over_tcp(void **state) { pause_and_resume("{listen: 'tcp://127.0.0.1:0'}"); }

/* Released futures free the worker's memory: its RSS falls back. The values
 * are of two sizes, and the last one stays held, so glibc would keep the
 * freed memory below it in its heap (after the first big free it serves
 * such sizes from the heap, not mmap) unless the worker trims it. */
static void test_release_frees_worker_memory(void **state)
{
    herd_runner *r = tu_flow("{n_workers: 1, threads_per_worker: 1, memory_limit: 0, " ENV "}", NULL, 1, NULL);
    herd_future *p = tu_submit(r, "t_rss", herd_tuple(""), NULL);
    long pid = (long)herd_as_int(herd_at(result_of(p), 1));
    herd_future_release(p);
    int64_t before = vm_rss(pid);
    herd_future *big = tu_submit(r, "t_make", herd_tuple("Ii", VALUE, 99), NULL);
    herd_err err = { 0 };
    assert_int_equal(herd_wait(&big, 1, 4 * TU_WAIT_S, &err), 0);
    herd_future_release(big);
    enum { N = 7 };
    herd_future *f[N];
    for (int i = 0; i < N; i++) f[i] = tu_submit(r, "t_make", herd_tuple("Ii", VALUE / 2, i + 1), NULL);
    assert_int_equal(herd_wait(f, N, 4 * TU_WAIT_S, &err), 0);
    int64_t held = vm_rss(pid), freed = (N - 1) * VALUE / 2;
    if (held < before + freed)
        fail_msg("the worker's RSS %lld MiB does not hold the values (%lld MiB before)", (long long)(held / MIB),
                 (long long)(before / MIB));
    for (int i = 0; i < N - 1; i++) herd_future_release(f[i]);
    double end = tu_now() + 4 * TU_WAIT_S;
    int64_t now;
    while ((now = vm_rss(pid)) > held - freed + 8 * MIB && tu_now() < end) tu_sleep_ms(10);
    if (now > held - freed + 8 * MIB)
        fail_msg("the worker's RSS stayed at %lld MiB after %lld MiB of values were released (%lld MiB while held, "
                 "%lld MiB before)", (long long)(now / MIB), (long long)(freed / MIB), (long long)(held / MIB),
                 (long long)(before / MIB));
    herd_future_release(f[N - 1]);
    tu_flow_end(r);
}

/* The error a cluster with local_directory ld fails to start with. */
static void bad_directory(const char *ld, const char *want)
{
    char ck[600];
    snprintf(ck, sizeof ck, "{n_workers: 1, memory_limit: 100MiB, local_directory: \"%s\"}", ld);
    herd_runner_opts o = { .cluster_kwargs = ck, .client_kwargs = "{start: eager}", .log = tu_quiet_sink };
    herd_runner *r = NULL;
    herd_err err = { 0 };
    assert_int_equal(herd_runner_new(&r, &o, &err), 0);
    if (herd_flow_begin(r, "bad-directory", &err) == 0) {
        herd_flow_end(r, false, &err);
        herd_runner_free(r);
        fail_msg("local_directory \"%s\" was accepted", ld);
    }
    herd_runner_free(r);
    if (!strstr(err.msg, "cluster_kwargs.local_directory") || !strstr(err.msg, ld) || !strstr(err.msg, want))
        fail_msg("local_directory \"%s\": the error says \"%s\", expected the field, the path and \"%s\"", ld, err.msg,
                 want);
}

/* A local_directory that is not a directory, is missing or cannot be
 * written is refused before any worker starts, naming the field. */
static void test_bad_local_directory(void **state)
{
    char dir[256], path[400];
    tu_mkdtemp(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/file", dir);
    assert_int_equal(tu_write_file(path, "x"), 0);
    bad_directory(path, "is not a directory");
    snprintf(path, sizeof path, "%s/missing", dir);
    bad_directory(path, "No such file or directory");
    /* not writable: root writes anywhere, so a child that is not root tries */
    snprintf(path, sizeof path, "%s/ro", dir);
    assert_int_equal(mkdir(path, 0555), 0);
    assert_int_equal(chmod(dir, 0755), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (geteuid() == 0 && (setgid(65534) || setuid(65534))) _exit(2);
        herd_err err = { 0 };
        int rc = herd_local_directory_check("cluster_kwargs.local_directory", path, &err);
        _exit(rc != 0 && strstr(err.msg, "cluster_kwargs.local_directory") && strstr(err.msg, "is not writable") ? 0 : 1);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    if (geteuid() != 0) bad_directory(path, "is not writable");
    rmdir(path);
    tu_rmtree(dir);
}

/* Pages a reader maps from same-host peers (their memfds) are the holders'
 * memory, not the reader's: a worker whose memory_limit is smaller than the
 * values it reads from three other local workers (their RSS over the limit
 * while it reads them) is neither paused nor spilling nor terminated, and
 * reads them right. The producers' limit is the same and holds their one
 * value each (35% of it). */
static void test_peer_maps_are_not_the_readers_memory(void **state)
{
    if (TU_TSAN) {   /* 3 x 0.35 of the limit read: some 4 x that in shadow, the reader's own */
        fprintf(stderr, "\n*** SKIPPED under ThreadSanitizer: reading its peers' maps gives the reader TSan shadow "
                        "memory of its own, about four times what it reads, so a reader over its limit through the "
                        "maps alone cannot be made there ***\n\n");
        skip();
    }
    int64_t base = baseline_rss(NULL), limit = SPILL_SCALE * 8 * base;
    if (limit < SPILL_SCALE * 128 * MIB) limit = SPILL_SCALE * 128 * MIB;
    limit = (limit + MIB - 1) / MIB * MIB;
    int64_t n = (int64_t)(0.35 * (double)limit) / BLOCK * BLOCK;
    char ck[300];
    snprintf(ck, sizeof ck, "{n_workers: 4, threads_per_worker: 1, memory_limit: %lld, " ENV "}", (long long)limit);
    tu_log log;
    tu_log_init(&log);
    herd_runner *r = tu_flow(ck, NULL, 4, &log);
    herd_future *p[3];
    for (int i = 0; i < 3; i++) {
        char where[64];
        snprintf(where, sizeof where, "{workers: [local-%d]}", i);
        p[i] = tu_submit(r, "t_make_shm", herd_tuple("Ii", n, i + 1), where);
    }
    herd_future *c = tu_submit(r, "t_check_all", herd_tuple("vIi", herd_tuple("fff", p[0], p[1], p[2]), n, 1000), "{workers: [local-3]}");
    const herd_value *res = result_of(c);
    int64_t ok = herd_as_int(herd_at(res, 0)), rss = herd_as_int(herd_at(res, 1));
    if (ok != 3) fail_msg("%lld of 3 values read right", (long long)ok);
    /* the reader's RSS did count the maps: over the limit it is not held to */
    if (rss <= limit)
        fail_msg("reader's RSS %lld MiB while reading 3 x %lld MiB, under memory_limit %lld MiB: the test shows nothing",
                 (long long)(rss / MIB), (long long)(n / MIB), (long long)(limit / MIB));
    herd_future_release(c);
    for (int i = 0; i < 3; i++) herd_future_release(p[i]);
    tu_flow_end(r);
    if (tu_log_has_line(&log, "local-3", "paused") || tu_log_has_line(&log, "local-3", "spilled") ||
        tu_log_has_line(&log, "local-3", "memory_limit") || tu_log_has_line(&log, "died", NULL))
        fail_msg("the reader acted on its peers' memory:\n%s", log.text);
    tu_log_free(&log);
}

int main(int argc, char **argv)
{
    herd_init(&argc, &argv);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_local_directory),
        cmocka_unit_test(test_spill_and_read_back),
        cmocka_unit_test(test_default_local_directory),
        cmocka_unit_test(test_pause_and_resume),
        cmocka_unit_test(test_pause_over_tcp),
        cmocka_unit_test(test_spill_over_tcp),
        cmocka_unit_test(test_release_frees_worker_memory),
        cmocka_unit_test(test_peer_maps_are_not_the_readers_memory),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
