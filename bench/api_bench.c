/* bench/api_bench.c — what the scheduler's JSON costs: a LocalCluster of 2
 * workers with the dashboard on 127.0.0.1, TASKS no-op tasks (so the report
 * holds its 512 kept runs, task groups and log lines), then REQUESTS GETs of
 * /api/v1/status on one kept-alive connection, then the flow's end with
 * performance_report_path (the same report inlined in a page). Prints
 *
 *     RESULT herd api_status_us <median microseconds per request>
 *     RESULT herd api_status_bytes <bytes of one answer>
 *     RESULT herd perf_report_ms <ms of the flow's end, report included>
 *
 *   api_bench [TASKS [REQUESTS]]     (defaults 2000 and 2000)
 * Time the whole process from outside to compare two builds.
 *
 *   api_bench --page [TASKS [ROUNDS]]  (defaults 100000 and 5)
 * what an open dashboard page costs the no-op throughput (issue 13: at most
 * 5%): ROUNDS alternating pairs of the same LocalCluster of 2 workers x 1
 * thread running TASKS no-op tasks by herd_submit_map, one without the
 * HTTP endpoint and one with it and a thread asking /api/v1/status every
 * 500 ms as the page does, for the whole status each time (the page sends
 * its since_run/since_log cursors and gets less: this is the dearer case). Prints
 *
 *     RESULT herd page_closed_tasks_per_s <median>
 *     RESULT herd page_open_tasks_per_s <median>
 *     RESULT herd page_open_ratio <open / closed> */
#include <herd/herd.h>

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int ab_noop(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    *out = herd_int(herd_as_int(herd_at(args, 0)) + 1);
    return 0;
}
HERD_TASK(ab_noop);

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t count(char *d, size_t sz, size_t nm, void *ud)
{
    *(size_t *)ud += sz * nm;
    return sz * nm;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The dashboard's URL, from the flow log. */
static char url[300];
static void sink(void *ud, int level, const char *line)
{
    const char *p = strstr(line, "the dashboard is available at ");
    if (p) snprintf(url, sizeof url, "%.*s", (int)strcspn(p + 30, " \n"), p + 30);
}

/* ---- --page: the no-op throughput with and without an open page ---- */

typedef struct poller { pthread_t th; atomic_bool stop; long polls; int failed; } poller;

/* The page's loop: GET api/v1/status every 500 ms until told to stop. */
static void *poll_page(void *ud)
{
    poller *p = ud;
    CURL *c = curl_easy_init();
    size_t bytes = 0;
    char api[400];
    snprintf(api, sizeof api, "%s/api/v1/status", url);
    curl_easy_setopt(c, CURLOPT_URL, api);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, count);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &bytes);
    while (!atomic_load(&p->stop)) {
        long code = 0;
        if (curl_easy_perform(c) != CURLE_OK || (curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code), code != 200))
            p->failed = 1;
        p->polls++;
        for (int i = 0; i < 50 && !atomic_load(&p->stop); i++) usleep(10000);
    }
    curl_easy_cleanup(c);
    return NULL;
}

static double page_round(int tasks, int open)
{
    herd_runner_opts o = { .cluster_class = "local.LocalCluster",
                           .cluster_kwargs = "{n_workers: 2, threads_per_worker: 1, processes: true}",
                           .client_kwargs = open ? "{dashboard_address: '127.0.0.1:0'}" : NULL, .log = sink };
    herd_runner *r = NULL;
    herd_err err;
    url[0] = 0;
    if (herd_runner_new(&r, &o, &err) || herd_flow_begin(r, "page-bench", &err) ||
        herd_wait_for_workers(r, 2, 60, &err)) {
        fprintf(stderr, "api_bench: %s\n", err.msg);
        exit(1);
    }
    poller p = { .polls = 0 };
    if (open && (!url[0] || pthread_create(&p.th, NULL, poll_page, &p))) {
        fprintf(stderr, "api_bench: no dashboard URL in the flow log\n");
        exit(1);
    }
    herd_value *items = herd_array();
    for (int i = 0; i < tasks; i++) herd_array_push(items, herd_tuple("i", i));
    herd_future **fs = NULL;
    size_t n = 0;
    double t0 = now();
    if (herd_submit_map(r, "ab_noop", items, &fs, &n, &err) || herd_wait(fs, n, 300, &err)) {
        fprintf(stderr, "api_bench: %s\n", err.msg);
        exit(1);
    }
    double rate = (double)n / (now() - t0);
    if (open) {
        atomic_store(&p.stop, true);
        pthread_join(p.th, NULL);
        if (p.failed || p.polls < 1) { fprintf(stderr, "api_bench: the page's requests failed\n"); exit(1); }
    }
    for (size_t i = 0; i < n; i++) herd_future_release(fs[i]);
    free(fs);
    if (herd_flow_end(r, false, &err)) { fprintf(stderr, "api_bench: %s\n", err.msg); exit(1); }
    herd_runner_free(r);
    return rate;
}

static int page_bench(int tasks, int rounds)
{
    double *closed = calloc((size_t)rounds, sizeof *closed), *open = calloc((size_t)rounds, sizeof *open);
    if (!closed || !open) return 1;
    for (int k = 0; k < rounds; k++) {
        closed[k] = page_round(tasks, 0);
        open[k] = page_round(tasks, 1);
        fprintf(stderr, "round %d: closed %.0f, open %.0f tasks/s\n", k + 1, closed[k], open[k]);
    }
    qsort(closed, (size_t)rounds, sizeof *closed, cmp);
    qsort(open, (size_t)rounds, sizeof *open, cmp);
    double c = closed[rounds / 2], o = open[rounds / 2];
    printf("RESULT herd page_closed_tasks_per_s %.0f tasks/s\n", c);
    printf("RESULT herd page_open_tasks_per_s %.0f tasks/s\n", o);
    printf("RESULT herd page_open_ratio %.3f\n", o / c);
    free(closed);
    free(open);
    return 0;
}

int main(int argc, char **argv)
{
    if (herd_init(&argc, &argv)) return 1;
    if (argc > 1 && !strcmp(argv[1], "--page")) {
        int tasks = argc > 2 ? atoi(argv[2]) : 100000, rounds = argc > 3 ? atoi(argv[3]) : 5;
        if (tasks < 1 || rounds < 1) { fprintf(stderr, "usage: api_bench --page [TASKS [ROUNDS]]\n"); return 2; }
        return page_bench(tasks, rounds);
    }
    int tasks = argc > 1 ? atoi(argv[1]) : 2000, requests = argc > 2 ? atoi(argv[2]) : 2000;
    if (tasks < 1 || requests < 1) { fprintf(stderr, "usage: api_bench [TASKS [REQUESTS]]\n"); return 2; }
    char report[128];
    snprintf(report, sizeof report, "/tmp/herd-api-bench-%ld.html", (long)getpid());
    char ck[300];
    snprintf(ck, sizeof ck, "{dashboard_address: '127.0.0.1:0', performance_report_path: '%s'}", report);
    herd_runner_opts o = { .cluster_class = "local.LocalCluster", .cluster_kwargs = "{n_workers: 2, threads_per_worker: 1}",
                           .client_kwargs = ck, .log = sink };
    herd_runner *r = NULL;
    herd_err err;
    if (herd_runner_new(&r, &o, &err) || herd_flow_begin(r, "api-bench", &err) ||
        herd_wait_for_workers(r, 2, 60, &err)) {
        fprintf(stderr, "api_bench: %s\n", err.msg);
        return 1;
    }
    herd_value *items = herd_array();
    for (int i = 0; i < tasks; i++) herd_array_push(items, herd_tuple("i", i));
    herd_future **fs = NULL;
    size_t n = 0;
    if (herd_submit_map(r, "ab_noop", items, &fs, &n, &err) || herd_wait(fs, n, 120, &err)) {
        fprintf(stderr, "api_bench: %s\n", err.msg);
        return 1;
    }
    for (size_t i = 0; i < n; i++) herd_future_release(fs[i]);
    free(fs);
    char api[400];
    snprintf(api, sizeof api, "%s/api/v1/status", url);
    CURL *c = curl_easy_init();
    size_t bytes = 0;
    curl_easy_setopt(c, CURLOPT_URL, api);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, count);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &bytes);
    double *t = calloc((size_t)requests, sizeof *t);
    for (int i = 0; i < requests; i++) {
        bytes = 0;
        double t0 = now();
        long code = 0;
        if (curl_easy_perform(c) != CURLE_OK || (curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code), code != 200)) {
            fprintf(stderr, "api_bench: GET %s failed\n", api);
            return 1;
        }
        t[i] = now() - t0;
    }
    curl_easy_cleanup(c);
    qsort(t, (size_t)requests, sizeof *t, cmp);
    printf("RESULT herd api_status_us %.1f us\n", t[requests / 2] * 1e6);
    printf("RESULT herd api_status_bytes %zu bytes\n", bytes);
    free(t);
    double t0 = now();
    if (herd_flow_end(r, false, &err)) { fprintf(stderr, "api_bench: %s\n", err.msg); return 1; }
    printf("RESULT herd perf_report_ms %.1f ms\n", (now() - t0) * 1e3);
    herd_runner_free(r);
    unlink(report);
    return 0;
}
