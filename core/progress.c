/* core/progress.c — progress on the terminal, one line per task name: for
 * a set of futures (herd_progress) and, as a thread, for a flow run's tasks
 * (client_kwargs.progress). One line per task name (done, running, pending, failed and a
 * bar), as Dask's progress(). On a terminal the lines are redrawn in place
 * at most 10 times a second; otherwise a plain line per task name is written
 * when its counts changed, at most once a second, and once at the end. */
#include "progress.h"
#include "client.h"
#include "future.h"
#include "internal.h"

#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* "download_image-3" -> "download_image" (the task name of a run name). */
static void task_of(const char *run, char *out, size_t cap)
{
    snprintf(out, cap, "%s", run ? run : "task");
    char *dash = strrchr(out, '-');
    if (dash && dash[1] && strspn(dash + 1, "0123456789") == strlen(dash + 1)) *dash = '\0';
}

static void line(FILE *o, const herd_pgroup *g, int tty)
{
    char bar[41];
    size_t w = 40, full = g->total ? (g->done + g->failed) * w / g->total : w;
    for (size_t i = 0; i < w; i++) bar[i] = i < full ? '#' : '.';
    bar[w] = '\0';
    size_t pending = g->total - g->done - g->failed - g->running;
    fprintf(o, "%s%-24.24s [%s] %zu/%zu done, %zu running, %zu pending%s", tty ? "\r\033[K" : "", g->name, bar,
            g->done, g->total, g->running, pending, g->failed ? "" : "\n");
    if (g->failed) fprintf(o, ", %zu failed\n", g->failed);
}

void herd_pdraw_init(herd_pdraw *d, FILE *out)
{
    *d = (herd_pdraw){ .out = out, .tty = isatty(fileno(out)) };
}

static int changed(const herd_pgroup *g)
{
    return g->done != g->last_done || g->failed != g->last_failed || g->running != g->last_running;
}

static void seen(herd_pgroup *g)
{
    g->last_done = g->done;
    g->last_failed = g->failed;
    g->last_running = g->running;
}

void herd_pdraw_lines(herd_pdraw *d, herd_pgroup *g, size_t n, int end)
{
    FILE *o = d->out;
    double now = herd_now();
    if (d->tty) {
        int any = n != d->drawn;
        for (size_t k = 0; k < n && !any; k++) any = changed(&g[k]);
        if (!any && d->drawn) return;            /* nothing new: no redraw */
        if (d->drawn) fprintf(o, "\033[%zuA", d->drawn);   /* back to the first line */
        for (size_t k = 0; k < n; k++) { line(o, &g[k], 1); seen(&g[k]); }
        d->drawn = n;
    } else if (end || now - d->last_plain >= 1) {
        for (size_t k = 0; k < n; k++) {
            if (!end && !changed(&g[k])) continue;
            line(o, &g[k], 0);
            seen(&g[k]);
        }
        d->last_plain = now;
    }
    fflush(o);
}

HERD_API int herd_progress(herd_runner *r, herd_future *const *fs, size_t n, herd_err *err)
{
    if (!r) return herd_err_set(err, HERD_EARG, "herd_progress: runner is NULL");
    if (n && !fs) return herd_err_set(err, HERD_EARG, "herd_progress: futures is NULL");
    for (size_t i = 0; i < n; i++)
        if (!fs[i]) return herd_err_set(err, HERD_EARG, "herd_progress: futures[%zu] is NULL", i);
    herd_pgroup *g = calloc(n ? n : 1, sizeof *g);
    size_t *of = calloc(n ? n : 1, sizeof *of);
    if (!g || !of) { free(g); free(of); return herd_err_set(err, -ENOMEM, "herd_progress: out of memory"); }
    size_t ng = 0;
    for (size_t i = 0; i < n; i++) {
        char name[64];
        task_of(herd_future_name(fs[i]), name, sizeof name);
        size_t k = 0;
        while (k < ng && strcmp(g[k].name, name) != 0) k++;
        if (k == ng) { snprintf(g[ng].name, sizeof g[ng].name, "%s", name); ng++; }
        g[k].total++;
        of[i] = k;
    }
    herd_pdraw d;
    herd_pdraw_init(&d, stderr);
    for (size_t k = 0; k < ng; k++) g[k].last_done = SIZE_MAX;   /* every line is drawn once */
    for (;;) {
        for (size_t k = 0; k < ng; k++) g[k].done = g[k].running = g[k].failed = 0;
        size_t final = 0;
        for (size_t i = 0; i < n; i++) {
            herd_state st = herd_future_state(fs[i]);
            herd_pgroup *p = &g[of[i]];
            if (st == HERD_COMPLETED) p->done++;
            else if (st == HERD_RUNNING) p->running++;
            else if (st >= HERD_FAILED) p->failed++;
            if (st >= HERD_COMPLETED) final++;
        }
        int end = final == n;
        herd_pdraw_lines(&d, g, ng, end);
        if (end) break;
        herd_wait(fs, n, 0.1, NULL);     /* all final, or 0.1 s: at most 10 redraws a second */
    }
    free(g);
    free(of);
    return 0;
}

/* ---- a flow run's automatic progress line (client_kwargs.progress) ---- */

#define FLOW_GROUPS 64           /* task names shown; more are summed up in a last line */
#define FLOW_NAMES 256           /* task names counted */

struct herd_flow_progress {
    herd_client *cl;
    herd_pdraw d;
    herd_pgroup g[FLOW_GROUPS];
    size_t n;
    herd_pgroup base[FLOW_NAMES];    /* the counts of earlier flow runs of this runner */
    size_t nbase;
    herd_pgroup all[FLOW_NAMES];     /* scratch */
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
};

/* The client's counts for this flow run into p->g, keeping what was last
 * drawn of each line. */
static void snapshot(herd_flow_progress *p)
{
    size_t m = herd_client_progress(p->cl, p->all, FLOW_NAMES), n = 0;
    herd_pgroup now[FLOW_GROUPS];
    for (size_t i = 0; i < m; i++) {
        herd_pgroup *a = &p->all[i];
        for (size_t j = 0; j < p->nbase; j++)
            if (!strcmp(p->base[j].name, a->name)) {
                a->total -= p->base[j].total;
                a->done -= p->base[j].done;
                a->failed -= p->base[j].failed;
                break;
            }
        if (!a->total) continue;                      /* not submitted in this flow run */
        if (n == FLOW_GROUPS) {                       /* the last line sums up the rest */
            herd_pgroup *rest = &now[FLOW_GROUPS - 1];
            if (strncmp(rest->name, "(other", 6) != 0) {
                herd_pgroup first = *rest;
                *rest = (herd_pgroup){ .total = first.total, .done = first.done, .running = first.running,
                                       .failed = first.failed };
                snprintf(rest->name, sizeof rest->name, "(other task names)");
            }
            rest->total += a->total;
            rest->done += a->done;
            rest->running += a->running;
            rest->failed += a->failed;
            continue;
        }
        now[n++] = *a;
    }
    for (size_t i = 0; i < n; i++) {
        if (i < p->n && !strcmp(p->g[i].name, now[i].name)) {
            now[i].last_done = p->g[i].last_done;
            now[i].last_failed = p->g[i].last_failed;
            now[i].last_running = p->g[i].last_running;
        } else {
            now[i].last_done = SIZE_MAX;          /* a new line is drawn once at least */
        }
        p->g[i] = now[i];
    }
    p->n = n;
}

static void *flow_main(void *arg)
{
    herd_flow_progress *p = arg;
    pthread_mutex_lock(&p->mu);
    while (!p->stop) {
        pthread_mutex_unlock(&p->mu);
        snapshot(p);
        herd_pdraw_lines(&p->d, p->g, p->n, 0);
        pthread_mutex_lock(&p->mu);
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += 100000000;          /* at most 10 redraws a second */
        if (ts.tv_nsec >= 1000000000) { ts.tv_sec++; ts.tv_nsec -= 1000000000; }
        while (!p->stop && pthread_cond_timedwait(&p->cv, &p->mu, &ts) == 0) {}
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int herd_flow_progress_start(herd_client *cl, FILE *out, herd_flow_progress **out_p)
{
    *out_p = NULL;
    herd_flow_progress *p = calloc(1, sizeof *p);
    if (!p) return -ENOMEM;
    p->cl = cl;
    herd_pdraw_init(&p->d, out);
    p->nbase = herd_client_progress(cl, p->base, FLOW_NAMES);   /* earlier flow runs' tasks are all final */
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, &ca);
    pthread_condattr_destroy(&ca);
    int rc = pthread_create(&p->th, NULL, flow_main, p);
    if (rc) {
        pthread_mutex_destroy(&p->mu);
        pthread_cond_destroy(&p->cv);
        free(p);
        return -rc;
    }
    *out_p = p;
    return 0;
}

void herd_flow_progress_stop(herd_flow_progress *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->th, NULL);
    snapshot(p);
    herd_pdraw_lines(&p->d, p->g, p->n, 1);    /* the final counts, every line */
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p);
}
