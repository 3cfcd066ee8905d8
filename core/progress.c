/* core/progress.c — herd_progress: progress of a set of futures on the
 * terminal, one line per task name (done, running, pending, failed and a
 * bar), as Dask's progress(). On a terminal the lines are redrawn in place
 * at most 10 times a second; otherwise a plain line per task name is written
 * when its counts changed, at most once a second, and once at the end. */
#include "future.h"
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct pgroup { char name[64]; size_t total, done, running, failed, last_done, last_failed, last_running; } pgroup;

/* "download_image-3" -> "download_image" (the task name of a run name). */
static void task_of(const char *run, char *out, size_t cap)
{
    snprintf(out, cap, "%s", run ? run : "task");
    char *dash = strrchr(out, '-');
    if (dash && dash[1] && strspn(dash + 1, "0123456789") == strlen(dash + 1)) *dash = '\0';
}

static void line(FILE *o, const pgroup *g, int tty)
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

HERD_API int herd_progress(herd_runner *r, herd_future *const *fs, size_t n, herd_err *err)
{
    if (!r) return herd_err_set(err, HERD_EARG, "herd_progress: runner is NULL");
    if (n && !fs) return herd_err_set(err, HERD_EARG, "herd_progress: futures is NULL");
    for (size_t i = 0; i < n; i++)
        if (!fs[i]) return herd_err_set(err, HERD_EARG, "herd_progress: futures[%zu] is NULL", i);
    pgroup *g = calloc(n ? n : 1, sizeof *g);
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
    FILE *o = stderr;
    int tty = isatty(fileno(o));
    double last_plain = 0;
    int drawn = 0;
    for (;;) {
        for (size_t k = 0; k < ng; k++) g[k].done = g[k].running = g[k].failed = 0;
        size_t final = 0;
        for (size_t i = 0; i < n; i++) {
            herd_state st = herd_future_state(fs[i]);
            pgroup *p = &g[of[i]];
            if (st == HERD_COMPLETED) p->done++;
            else if (st == HERD_RUNNING) p->running++;
            else if (st >= HERD_FAILED) p->failed++;
            if (st >= HERD_COMPLETED) final++;
        }
        int end = final == n;
        double now = herd_now();
        if (tty) {
            if (drawn) fprintf(o, "\033[%zuA", ng);   /* back to the first line */
            for (size_t k = 0; k < ng; k++) line(o, &g[k], 1);
            drawn = 1;
        } else if (end || now - last_plain >= 1) {
            for (size_t k = 0; k < ng; k++) {
                if (!end && g[k].done == g[k].last_done && g[k].failed == g[k].last_failed && g[k].running == g[k].last_running)
                    continue;
                line(o, &g[k], 0);
                g[k].last_done = g[k].done;
                g[k].last_failed = g[k].failed;
                g[k].last_running = g[k].running;
            }
            last_plain = now;
        }
        fflush(o);
        if (end) break;
        herd_wait(fs, n, 0.1, NULL);     /* all final, or 0.1 s: at most 10 redraws a second */
    }
    free(g);
    free(of);
    return 0;
}
