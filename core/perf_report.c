/* core/perf_report.c — performance_report_path (prefect-dask's parameter,
 * Dask's performance_report): at the end of a flow run, one self-contained
 * HTML file — the live page (core/dashboard.html) with the scheduler's whole
 * report (/api/v1/status: task stream of the kept runs, per task name
 * counts and durations, workers, transfers, adaptive decisions, log tail)
 * inlined as window.HERD_SNAPSHOT, which the page draws once instead of
 * polling. The report comes from the in-process scheduler, or, for one a
 * provider runs elsewhere, from its OP_CONTROL "report" answer. */
#include "scheduler.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>

extern unsigned char dashboard_html[];
extern unsigned int dashboard_html_len;

int herd_perf_report_write(const char *json, size_t len, const char *path, herd_err *err)
{
    struct evbuffer *b = evbuffer_new();
    if (!b) return herd_err_set(err, -ENOMEM, "performance_report_path: out of memory");
    const char *page = (const char *)dashboard_html, *end = page + dashboard_html_len;
    const char *at = memmem(page, dashboard_html_len, "<script>", 8);   /* the snapshot goes before the page's script */
    if (!at) at = end;
    evbuffer_add(b, page, (size_t)(at - page));
    evbuffer_add_printf(b, "<script>window.HERD_SNAPSHOT = ");
    evbuffer_add(b, json, len);                     /* its < > & escaped: it cannot end the script */
    evbuffer_add_printf(b, ";</script>\n");
    evbuffer_add(b, at, (size_t)(end - at));
    char tmp[4200];
    if (snprintf(tmp, sizeof tmp, "%s.tmp-%ld", path, (long)getpid()) >= (int)sizeof tmp) {
        evbuffer_free(b);
        return herd_err_set(err, HERD_EARG, "performance_report_path: the path is too long");
    }
    FILE *f = fopen(tmp, "w");
    if (!f) { evbuffer_free(b); return herd_err_set(err, -errno, "performance_report_path %s: %s", path, strerror(errno)); }
    size_t n = evbuffer_get_length(b);
    unsigned char *data = evbuffer_pullup(b, -1);
    int bad = !data || fwrite(data, 1, n, f) != n;
    bad |= fclose(f) != 0;
    evbuffer_free(b);
    if (bad || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return herd_err_set(err, -(e ? e : EIO), "performance_report_path %s: cannot write it: %s", path, strerror(e ? e : EIO));
    }
    return 0;
}

int herd_sched_perf_report(herd_sched *s, const char *path, herd_err *err)
{
    struct evbuffer *b = evbuffer_new();
    if (!b) return herd_err_set(err, -ENOMEM, "performance_report_path: out of memory");
    int rc = herd_sched_report(s, "status", b);
    if (rc) { evbuffer_free(b); return herd_err_set(err, rc, "performance_report_path: the scheduler is gone"); }
    size_t n = evbuffer_get_length(b);
    const char *json = (const char *)evbuffer_pullup(b, -1);
    rc = json ? herd_perf_report_write(json, n, path, err) : herd_err_set(err, -ENOMEM, "performance_report_path: out of memory");
    evbuffer_free(b);
    return rc;
}
