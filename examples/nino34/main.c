/* examples/nino34/main.c — the seed's first example in C: download the twelve
 * monthly Niño 3.4 plume charts of a year, first one after the other, then as
 * tasks on a temporary LocalCluster through a herd task runner, and compare.
 *
 * NOAA's server is replaced by a local one (server.c) that answers after a
 * delay (1.2 s by default, --delay), so the demo needs no network and shows
 * what the runner buys for I/O-bound work: twelve downloads that overlap
 * finish in about one delay instead of twelve.
 *
 *   nino34 [--year 2022] [--dir ./data] [--delay 1.2] [--sequential-only]
 *          [--runner-only] [--cluster-kwargs '{n_workers: 4}']           */
#include "nino34.h"
#include "../common/cli.h"

#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_KWARGS "{n_workers: 2, threads_per_worker: 6}"

__attribute__((constructor)) static void curl_init(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }
__attribute__((destructor)) static void curl_fini(void) { curl_global_cleanup(); }

static int mkdirs(const char *dir)
{
    char p[4096];
    if (snprintf(p, sizeof p, "%s", dir) >= (int)sizeof p) return -ENAMETOOLONG;
    for (char *s = p + 1; ; s++) {
        if (*s == '/' || !*s) {
            char c = *s;
            *s = '\0';
            if (mkdir(p, 0777) && errno != EEXIST) return -errno;
            if (!(*s = c)) break;
        }
    }
    return 0;
}

/* ---- the task ---- */

/* download_image(year, month, directory, base_url) -> "directory/YYYYMM.png" */
static int download_image(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    static const char *names[] = { "year", "month", "directory", "base_url" };
    static const herd_type types[] = { HERD_INT, HERD_INT, HERD_STR, HERD_STR };
    if (herd_len(args) != 4)
        return herd_task_fail(ctx, "download_image: expected 4 arguments (year, month, directory, base_url), "
                              "got %zu", herd_len(args));
    for (size_t i = 0; i < 4; i++)
        if (herd_typeof(herd_at(args, i)) != types[i])
            return herd_task_fail(ctx, "download_image: argument %zu (%s): expected %s, got %s", i, names[i],
                                  herd_type_name(types[i]), herd_type_name(herd_typeof(herd_at(args, i))));
    int year = (int)herd_as_int(herd_at(args, 0)), month = (int)herd_as_int(herd_at(args, 1));
    const char *dir = herd_as_str(herd_at(args, 2)), *base = herd_as_str(herd_at(args, 3));
    if (month < 1 || month > 12)
        return herd_task_fail(ctx, "download_image: argument 1 (month): expected 1..12, got %d", month);

    char url[512], path[4096], tmp[4200], errbuf[CURL_ERROR_SIZE] = "";
    snprintf(url, sizeof url, "%s" NINO34_PATH_FMT, base, year, month);
    snprintf(path, sizeof path, "%s/%04d%02d.png", dir, year, month);
    snprintf(tmp, sizeof tmp, "%s.%d.tmp", path, (int)getpid());
    int rc = mkdirs(dir);
    if (rc) return herd_task_fail(ctx, "download_image: cannot create %s: %s", dir, strerror(-rc));
    FILE *f = fopen(tmp, "wb");
    if (!f) return herd_task_fail(ctx, "download_image: cannot create %s: %s", tmp, strerror(errno));

    CURL *c = curl_easy_init();
    if (!c) {
        fclose(f);
        unlink(tmp);
        return herd_task_fail(ctx, "download_image: cannot create a curl handle");
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, f);        /* default write function: fwrite */
    CURLcode cc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    int closed = fclose(f);
    if (cc != CURLE_OK) rc = herd_task_fail(ctx, "GET %s: %s", url, *errbuf ? errbuf : curl_easy_strerror(cc));
    else if (status != 200) rc = herd_task_fail(ctx, "GET %s: HTTP status %ld", url, status);
    else if (closed) rc = herd_task_fail(ctx, "download_image: cannot write %s: %s", tmp, strerror(errno));
    else if (rename(tmp, path)) rc = herd_task_fail(ctx, "download_image: cannot rename %s: %s", tmp, strerror(errno));
    if (rc) {
        unlink(tmp);
        return rc;
    }
    herd_task_log(ctx, "saved %s", path);
    return (*out = herd_str(path)) ? 0 : -ENOMEM;
}
HERD_TASK(download_image);

/* ---- the flow ---- */

typedef struct config {
    int year;
    const char *dir;
    ex_cluster cluster;            /* --cluster-kwargs, --profile or $HERD_PROFILE */
    double delay;
    bool sequential, runner;
} config;

static int check_files(const config *cf)
{
    int bad = 0;
    for (int m = 1; m <= 12; m++) {
        char path[4096], msg[4200];
        snprintf(path, sizeof path, "%s/%04d%02d.png", cf->dir, cf->year, m);
        if (nino34_png_check(path, msg, sizeof msg)) {
            fprintf(stderr, "nino34: %s\n", msg);
            bad++;
        }
    }
    if (!bad) printf("  checked: 12 valid PNG files in %s\n", cf->dir);
    return bad ? -1 : 0;
}

static int run_sequential(const config *cf, const char *base, double *elapsed)
{
    printf("sequential: downloading 12 images, one after the other\n");
    fflush(stdout);
    double t0 = ex_now();
    int failed = 0;
    for (int m = 1; m <= 12; m++) {
        herd_value *args = herd_tuple("iiss", cf->year, m, cf->dir, base), *out = NULL;
        int rc = download_image(NULL, args, &out);
        if (rc) {
            failed++;
            fprintf(stderr, "nino34: download_image(%d, %d): %s\n", cf->year, m, herd_strerror(rc));
        }
        else printf("  %s\n", herd_as_str(out));
        herd_value_free(args);
        herd_value_free(out);
    }
    *elapsed = ex_now() - t0;
    printf("sequential: %d of 12 images in %.2f s\n", 12 - failed, *elapsed);
    fflush(stdout);
    return failed ? -1 : check_files(cf);
}

static int run_on_cluster(const config *cf, const char *base, double *elapsed)
{
    herd_err err;
    herd_future **futs = NULL;
    size_t n = 0;
    int failed = 0, bad_kwargs;
    double t0 = ex_now();
    herd_runner *r = ex_flow_begin(&cf->cluster, "nino34", "download-nino-34-plumes-from-year", &bad_kwargs);
    if (!r) return -1;
    double t1 = ex_now();
    printf("task runner: cluster up in %.2f s; submitting 12 download_image tasks\n", t1 - t0);
    fflush(stdout);

    herd_value *tuples = herd_array();
    for (int m = 1; m <= 12; m++) herd_array_push(tuples, herd_tuple("iiss", cf->year, m, cf->dir, base));
    if (herd_submit_map(r, "download_image", tuples, &futs, &n, &err)) {
        fprintf(stderr, "nino34: submit: %s\n", err.msg);
        failed = 12;
    }
    for (size_t i = 0; i < n; i++) {
        const herd_value *v;
        if (herd_future_result(futs[i], 120, &v, &err)) {
            fprintf(stderr, "nino34: %s: %s\n", herd_future_name(futs[i]), err.msg);
            failed++;
        } else {
            printf("  %s  (%s)\n", herd_as_str(v), herd_future_name(futs[i]));
        }
        herd_future_release(futs[i]);
    }
    free(futs);
    *elapsed = ex_now() - t1;
    fflush(stdout);
    if (herd_flow_end(r, failed > 0, &err)) fprintf(stderr, "nino34: closing the cluster: %s\n", err.msg);
    herd_runner_free(r);
    printf("task runner: %d of 12 images in %.2f s (%.2f s with cluster start and stop)\n", 12 - failed,
           *elapsed, ex_now() - t0);
    fflush(stdout);
    return failed ? -1 : check_files(cf);
}

static int on_opt(void *ud, int c, const char *arg, const char *prog)
{
    config *cf = ud;
    char *end;
    switch (c) {
    case 'y':
        cf->year = (int)strtol(arg, &end, 10);
        if (*end || end == arg || cf->year < 1982 || cf->year > 2100) {
            fprintf(stderr, "%s: --year: expected a year from 1982 to 2100, got \"%s\"\n", prog, arg);
            return -1;
        }
        break;
    case 'd': cf->dir = arg; break;
    case 'D':
        cf->delay = strtod(arg, &end);
        if (*end || end == arg || !(cf->delay >= 0 && cf->delay <= 600)) {
            fprintf(stderr, "%s: --delay: expected seconds from 0 to 600, got \"%s\"\n", prog, arg);
            return -1;
        }
        break;
    case 's': cf->runner = false; break;
    case 'r': cf->sequential = false; break;
    }
    return 0;
}

static int parse_args(int argc, char **argv, config *cf)
{
    static const struct option opts[] = {
        { "year", required_argument, NULL, 'y' },
        { "dir", required_argument, NULL, 'd' },
        { "delay", required_argument, NULL, 'D' },
        { "sequential-only", no_argument, NULL, 's' },
        { "runner-only", no_argument, NULL, 'r' },
        { NULL, 0, NULL, 0 },
    };
    const ex_cli cli = {
        .about = "Download the 12 Nino 3.4 plume charts of a year, sequentially and then as tasks\n"
                 "on a temporary LocalCluster, from a local server that imitates NOAA's.\n",
        .opts = opts,
        .opts_help = "  --year YEAR              year to download (default 2022)\n"
                     "  --dir DIR                where the images go (default ./data)\n"
                     "  --delay SECONDS          the server's latency per request (default 1.2)\n"
                     "  --sequential-only        skip the task runner\n"
                     "  --runner-only            skip the sequential run\n",
        .on_opt = on_opt, .ud = cf, .cluster = &cf->cluster,
    };
    if (ex_parse_args(argc, argv, &cli)) return -1;
    if (!cf->sequential && !cf->runner) {
        fprintf(stderr, "%s: --sequential-only and --runner-only exclude each other\n", argv[0]);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    int rc = herd_init(&argc, &argv);          /* a worker process never returns from here */
    if (rc) {
        fprintf(stderr, "%s: herd_init: %s\n", argv[0], herd_strerror(rc));
        return 1;
    }
    config cf = { .year = 2022, .dir = "./data", .delay = 1.2, .sequential = true, .runner = true,
                  .cluster = ex_cluster_defaults(DEFAULT_KWARGS) };
    if (parse_args(argc, argv, &cf)) return 2;

    herd_err err;
    nino34_server *srv;
    if (nino34_server_start(&srv, cf.delay, &err)) {
        fprintf(stderr, "%s: %s\n", argv[0], err.msg);
        return 1;
    }
    printf("serving plume charts at %s (%.2f s per request)\n", nino34_server_url(srv), cf.delay);
    if ((rc = mkdirs(cf.dir))) {
        fprintf(stderr, "%s: cannot create %s: %s\n", argv[0], cf.dir, strerror(-rc));
        nino34_server_stop(srv);
        return 1;
    }

    double seq = 0, par = 0;
    int bad = 0;
    if (cf.sequential && run_sequential(&cf, nino34_server_url(srv), &seq)) bad = 1;
    if (cf.runner && run_on_cluster(&cf, nino34_server_url(srv), &par)) bad = 1;
    if (!bad && cf.sequential && cf.runner && par > 0)
        printf("speed-up: %.1fx (%.2f s sequential, %.2f s on the cluster); images in %s\n", seq / par, seq, par,
               cf.dir);
    else if (!bad)
        printf("images in %s\n", cf.dir);
    nino34_server_stop(srv);
    return bad;
}
