/* core/sched_report.c — what the scheduler's HTTP endpoint serves, written
 * from its counters (metrics.h) and worker records on the scheduler's
 * thread: Prometheus text (/metrics, Dask's names under herd_ where the
 * meaning is the same), JSON (/api/v1/...), and the text of `herd status`.
 * Costs O(workers + task names + kept runs), never O(tasks). */
#include "sched_int.h"
#include "json.h"

#include <stdio.h>
#include <unistd.h>

#define LIT(b, s) evbuffer_add((b), (s), sizeof(s) - 1)

static const char *const state_names[5] = { "waiting", "queued", "processing", "retrying", "done" };
static const char *const end_names[4] = { "completed", "failed", "crashed", "cancelled" };

/* A local worker's resident memory and CPU use, from /proc (same host). */
static void sample_proc(sworker *w, int64_t *rss)
{
    *rss = -1;
    int here = w->local || !strncmp(w->ip, "127.", 4) || !strcmp(w->ip, "::1");   /* this host: its /proc */
    if (!here || w->pid <= 0) { w->cpu_pct = -1; return; }
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/statm", w->pid);
    FILE *f = fopen(path, "r");
    long pages = 0, res = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &res) == 2) *rss = (int64_t)res * sysconf(_SC_PAGESIZE);
        fclose(f);
    }
    snprintf(path, sizeof path, "/proc/%ld/stat", w->pid);
    if (!(f = fopen(path, "r"))) { w->cpu_pct = -1; return; }
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');      /* the command name may hold spaces */
    unsigned long ut = 0, st = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2) { w->cpu_pct = -1; return; }
    double cpu = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK), now = herd_now();
    if (w->cpu_at > 0 && now - w->cpu_at >= 0.2) w->cpu_pct = 100 * (cpu - w->cpu_s) / (now - w->cpu_at);
    else if (w->cpu_at > 0) return;          /* too soon to tell better: keep the last figure */
    else w->cpu_pct = -1;
    w->cpu_s = cpu;
    w->cpu_at = now;
}

/* A worker's RSS (-1 unknown) and CPU use (into w->cpu_pct): its own
 * figures from its heartbeats (any host), else /proc when it is on this host
 * (a worker thread, which reports none). */
static void usage(sworker *w, int64_t *rss)
{
    if (w->hb_rss >= 0) {
        *rss = w->hb_rss;
        w->cpu_pct = w->hb_cpu;
        return;
    }
    sample_proc(w, rss);
}

static int is_worker(const sworker *w) { return w->hello && w->role == ROLE_WORKER; }

/* ---- Prometheus text ---- */

static void prom_label(struct evbuffer *b, const char *v)
{
    for (const char *p = v ? v : ""; *p; p++) {
        if (*p == '\\') LIT(b, "\\\\");
        else if (*p == '"') LIT(b, "\\\"");
        else if (*p == '\n') LIT(b, "\\n");
        else evbuffer_add(b, p, 1);
    }
}

static void help(struct evbuffer *b, const char *name, const char *type, const char *text)
{
    evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, text, name, type);
}

void sch_report_metrics(herd_sched *s, struct evbuffer *b)
{
    int wst[4] = { 0 }, nclients = 0;
    for (sworker *w = s->workers; w; w = w->next) {
        if (w->hello && w->role == ROLE_CLIENT) nclients++;
        if (!is_worker(w)) continue;
        wst[w->closing || w->paused ? 3 : w->busy == 0 ? 0 : w->busy < w->nthreads ? 1 : 2]++;
    }
    static const char *const wnames[4] = { "idle", "partially_saturated", "saturated", "paused_or_retiring" };
    help(b, "herd_scheduler_workers", "gauge", "Workers connected, by state (Dask: dask_scheduler_workers)");
    for (int i = 0; i < 4; i++) evbuffer_add_printf(b, "herd_scheduler_workers{state=\"%s\"} %d\n", wnames[i], wst[i]);
    help(b, "herd_scheduler_clients", "gauge", "Clients connected (flows by address)");
    evbuffer_add_printf(b, "herd_scheduler_clients %d\n", nclients);
    pthread_mutex_lock(&s->met.mu);
    int desired = s->met.desired;
    uint64_t ndec = s->met.ndec;
    pthread_mutex_unlock(&s->met.mu);
    if (desired >= 0) {
        help(b, "herd_scheduler_desired_workers", "gauge", "Workers the adaptive scaler (or nanny) wants");
        evbuffer_add_printf(b, "herd_scheduler_desired_workers %d\n", desired);
    }
    help(b, "herd_scheduler_tasks", "gauge", "Tasks the scheduler holds, by state");
    for (int i = 0; i < 5; i++) evbuffer_add_printf(b, "herd_scheduler_tasks{state=\"%s\"} %zu\n", state_names[i], s->nstate[i]);
    help(b, "herd_scheduler_tasks_suspicious_total", "counter", "Times a task was running on a worker that died");
    evbuffer_add_printf(b, "herd_scheduler_tasks_suspicious_total %llu\n", (unsigned long long)s->met.suspicious);
    int64_t held = 0;
    for (sworker *w = s->workers; w; w = w->next) held += w->held_bytes;
    help(b, "herd_scheduler_tasks_output_bytes", "gauge", "Bytes of results workers hold for the scheduler");
    evbuffer_add_printf(b, "herd_scheduler_tasks_output_bytes %lld\n", (long long)held);
    help(b, "herd_scheduler_prefix_state_totals_total", "counter", "Tasks per task name that reached a final state");
    for (herd_mgroup *g = s->met.groups; g; g = g->next)
        for (int i = 0; i < 4; i++) {
            LIT(b, "herd_scheduler_prefix_state_totals_total{task_prefix_name=\"");
            prom_label(b, g->name);
            evbuffer_add_printf(b, "\",state=\"%s\"} %llu\n", end_names[i], (unsigned long long)g->ended[i]);
        }
    help(b, "herd_task_group_tasks", "gauge", "Tasks the scheduler holds per task name, by state");
    for (herd_mgroup *g = s->met.groups; g; g = g->next)
        for (int i = 0; i < 5; i++) {
            LIT(b, "herd_task_group_tasks{task_name=\"");
            prom_label(b, g->name);
            evbuffer_add_printf(b, "\",state=\"%s\"} %lld\n", state_names[i], (long long)g->n[i]);
        }
    help(b, "herd_task_duration_seconds", "histogram", "Successful task attempts' run time on workers, per task name");
    for (herd_mgroup *g = s->met.groups; g; g = g->next) {
        uint64_t cum = 0;
        for (int i = 0; i < HERD_MET_NBUCKETS; i++) {
            cum += g->buckets[i];
            LIT(b, "herd_task_duration_seconds_bucket{task_name=\"");
            prom_label(b, g->name);
            if (i == HERD_MET_NBUCKETS - 1) evbuffer_add_printf(b, "\",le=\"+Inf\"} %llu\n", (unsigned long long)cum);
            else evbuffer_add_printf(b, "\",le=\"%g\"} %llu\n", herd_met_bounds[i], (unsigned long long)cum);
        }
        LIT(b, "herd_task_duration_seconds_sum{task_name=\"");
        prom_label(b, g->name);
        evbuffer_add_printf(b, "\"} %.9g\n", g->dur_sum);
        LIT(b, "herd_task_duration_seconds_count{task_name=\"");
        prom_label(b, g->name);
        evbuffer_add_printf(b, "\"} %llu\n", (unsigned long long)g->dur_count);
    }
    help(b, "herd_worker_threads", "gauge", "Threads per worker");
    for (sworker *w = s->workers; w; w = w->next)
        if (is_worker(w)) { LIT(b, "herd_worker_threads{worker=\""); prom_label(b, w->name); evbuffer_add_printf(b, "\"} %d\n", w->nthreads); }
    help(b, "herd_worker_running_tasks", "gauge", "Tasks running per worker");
    for (sworker *w = s->workers; w; w = w->next)
        if (is_worker(w)) { LIT(b, "herd_worker_running_tasks{worker=\""); prom_label(b, w->name); evbuffer_add_printf(b, "\"} %d\n", w->busy); }
    help(b, "herd_worker_held_bytes", "gauge", "Bytes of results held per worker");
    for (sworker *w = s->workers; w; w = w->next)
        if (is_worker(w)) { LIT(b, "herd_worker_held_bytes{worker=\""); prom_label(b, w->name); evbuffer_add_printf(b, "\"} %lld\n", (long long)w->held_bytes); }
    help(b, "herd_worker_memory_bytes", "gauge", "Memory per worker as the worker reports it (Dask's names): held values in memory (managed), the rest of its process's RSS (unmanaged, when known), held values spilled to disk (spilled)");
    for (sworker *w = s->workers; w; w = w->next) {
        if (!is_worker(w)) continue;
        int64_t rss;
        usage(w, &rss);
        int64_t v[3] = { w->managed, rss >= 0 ? (rss > w->managed ? rss - w->managed : 0) : -1, w->spilled };
        static const char *const type[3] = { "managed", "unmanaged", "spilled" };
        for (int i = 0; i < 3; i++) {
            if (v[i] < 0) continue;
            LIT(b, "herd_worker_memory_bytes{worker=\"");
            prom_label(b, w->name);
            evbuffer_add_printf(b, "\",type=\"%s\"} %lld\n", type[i], (long long)v[i]);
        }
    }
    help(b, "herd_worker_cpu_percent", "gauge", "CPU use per worker process, % of one core (when known)");
    for (sworker *w = s->workers; w; w = w->next)
        if (is_worker(w) && w->cpu_pct >= 0) { LIT(b, "herd_worker_cpu_percent{worker=\""); prom_label(b, w->name); evbuffer_add_printf(b, "\"} %.3g\n", w->cpu_pct); }
    help(b, "herd_worker_tasks_total", "counter", "Task attempts finished per worker, by outcome");
    for (sworker *w = s->workers; w; w = w->next)
        if (is_worker(w))
            for (int ok = 1; ok >= 0; ok--) {
                LIT(b, "herd_worker_tasks_total{worker=\"");
                prom_label(b, w->name);
                evbuffer_add_printf(b, "\",outcome=\"%s\"} %llu\n", ok ? "ok" : "failed", (unsigned long long)(ok ? w->ndone : w->nfailed));
            }
    help(b, "herd_transfers_total", "counter", "Held inputs a worker fetched from another worker");
    evbuffer_add_printf(b, "herd_transfers_total %llu\n", (unsigned long long)s->met.transfers);
    help(b, "herd_transfer_bytes_total", "counter", "Bytes of those inputs");
    evbuffer_add_printf(b, "herd_transfer_bytes_total %llu\n", (unsigned long long)s->met.transfer_bytes);
    help(b, "herd_retire_moved_values_total", "counter", "Held values moved off a retiring worker to another worker");
    evbuffer_add_printf(b, "herd_retire_moved_values_total %llu\n", (unsigned long long)s->met.retire_moved);
    help(b, "herd_retire_moved_bytes_total", "counter", "Bytes of held values moved off retiring workers");
    evbuffer_add_printf(b, "herd_retire_moved_bytes_total %llu\n", (unsigned long long)s->met.retire_moved_bytes);
    help(b, "herd_retire_move_failures_total", "counter",
         "Needed values a retiring worker could not hand over (recomputed if still needed)");
    evbuffer_add_printf(b, "herd_retire_move_failures_total %llu\n", (unsigned long long)s->met.retire_fallbacks);
    help(b, "herd_adaptive_decisions_total", "counter", "Scaling decisions that changed the target or the size");
    evbuffer_add_printf(b, "herd_adaptive_decisions_total %llu\n", (unsigned long long)ndec);
    help(b, "herd_scheduler_worker_joins_total", "counter", "Workers that joined");
    evbuffer_add_printf(b, "herd_scheduler_worker_joins_total %llu\n", (unsigned long long)s->met.worker_joins);
    help(b, "herd_scheduler_worker_losses_total", "counter", "Workers that left or died");
    evbuffer_add_printf(b, "herd_scheduler_worker_losses_total %llu\n", (unsigned long long)s->met.worker_losses);
}

/* ---- JSON ---- */

static void j_workers(herd_sched *s, struct evbuffer *b)
{
    LIT(b, "[");
    int first = 1;
    double now = herd_wall_now(), mono = herd_now();
    for (sworker *w = s->workers; w; w = w->next) {
        if (!is_worker(w)) continue;
        int64_t rss;
        usage(w, &rss);
        if (!first) LIT(b, ",");
        first = 0;
        LIT(b, "{");
        herd_json_key(b, "name", 1); herd_json_str(b, w->name);
        herd_json_key(b, "host", 0); herd_json_str(b, w->host);
        herd_json_key(b, "address", 0); herd_json_str(b, w->local ? "local" : w->ip);
        herd_json_key(b, "pid", 0); herd_json_num(b, (double)w->pid);
        herd_json_key(b, "threads", 0); herd_json_num(b, w->nthreads);
        herd_json_key(b, "running", 0); herd_json_num(b, w->busy);
        herd_json_key(b, "closing", 0); evbuffer_add_printf(b, "%s", w->closing ? "true" : "false");
        herd_json_key(b, "paused", 0); evbuffer_add_printf(b, "%s", w->paused ? "true" : "false");
        herd_json_key(b, "held_bytes", 0); herd_json_num(b, (double)w->held_bytes);
        herd_json_key(b, "managed_bytes", 0); herd_json_num(b, (double)w->managed);
        herd_json_key(b, "spilled_bytes", 0); herd_json_num(b, (double)w->spilled);
        herd_json_key(b, "memory", 0); if (rss >= 0) herd_json_num(b, (double)rss); else LIT(b, "null");
        herd_json_key(b, "cpu", 0); if (w->cpu_pct >= 0) herd_json_num(b, w->cpu_pct); else LIT(b, "null");
        herd_json_key(b, "done", 0); herd_json_num(b, (double)w->ndone);
        herd_json_key(b, "failed", 0); herd_json_num(b, (double)w->nfailed);
        herd_json_key(b, "joined", 0); herd_json_num(b, w->joined);
        herd_json_key(b, "last_seen", 0); herd_json_num(b, now - (mono - w->last_seen));
        LIT(b, "}");
    }
    LIT(b, "]");
}

static void j_tasks(herd_sched *s, struct evbuffer *b)
{
    LIT(b, "{");
    herd_json_key(b, "states", 1);
    LIT(b, "{");
    for (int i = 0; i < 5; i++) { herd_json_key(b, state_names[i], i == 0); herd_json_num(b, (double)s->nstate[i]); }
    LIT(b, "}");
    herd_json_key(b, "groups", 0);
    LIT(b, "[");
    for (herd_mgroup *g = s->met.groups; g; g = g->next) {
        if (g != s->met.groups) LIT(b, ",");
        LIT(b, "{");
        herd_json_key(b, "name", 1); herd_json_str(b, g->name);
        herd_json_key(b, "total", 0); herd_json_num(b, (double)g->total);
        herd_json_key(b, "pending", 0); herd_json_num(b, (double)(g->n[0] + g->n[1] + g->n[3]));
        herd_json_key(b, "running", 0); herd_json_num(b, (double)g->n[2]);
        for (int i = 0; i < 4; i++) { herd_json_key(b, end_names[i], 0); herd_json_num(b, (double)g->ended[i]); }
        herd_json_key(b, "mean_duration", 0);
        if (g->dur_count) herd_json_num(b, g->dur_sum / (double)g->dur_count); else LIT(b, "null");
        LIT(b, "}");
    }
    LIT(b, "]}");
}

static void j_runs(herd_sched *s, uint64_t since, struct evbuffer *b)
{
    uint64_t n = s->met.nruns, from = n > HERD_MET_NRUNS ? n - HERD_MET_NRUNS : 0;
    if (since > from) from = since;
    if (from > n) from = n;
    LIT(b, "{");
    herd_json_key(b, "next", 1); herd_json_num(b, (double)n);
    herd_json_key(b, "runs", 0);
    LIT(b, "[");
    for (uint64_t i = from; i < n; i++) {
        const herd_mrun *r = &s->met.runs[i % HERD_MET_NRUNS];
        if (i != from) LIT(b, ",");
        LIT(b, "{");
        herd_json_key(b, "name", 1); herd_json_str(b, r->name);
        herd_json_key(b, "worker", 0); herd_json_str(b, r->worker);
        herd_json_key(b, "start", 0); herd_json_num(b, r->start);
        herd_json_key(b, "stop", 0); herd_json_num(b, r->stop);
        herd_json_key(b, "state", 0); herd_json_str(b, r->ok ? "completed" : "failed");
        LIT(b, "}");
    }
    LIT(b, "]}");
}

/* Attempts running now (bounded by the workers' threads and prefetch). */
static void j_running(herd_sched *s, struct evbuffer *b)
{
    double wall = herd_wall_now(), mono = herd_now();
    int first = 1;
    LIT(b, "[");
    for (sworker *w = s->workers; w; w = w->next) {
        size_t i = 0;
        void *v;
        while (is_worker(w) && kmap_next(&w->running, &i, NULL, &v)) {
            const stask *t = v;
            if (!first) LIT(b, ",");
            first = 0;
            LIT(b, "{");
            herd_json_key(b, "name", 1); herd_json_str(b, t->grp ? t->grp->name : t->task);
            herd_json_key(b, "worker", 0); herd_json_str(b, w->name);
            herd_json_key(b, "start", 0); herd_json_num(b, wall - (mono - t->started));
            LIT(b, "}");
        }
    }
    LIT(b, "]");
}

static void j_adaptive(herd_sched *s, struct evbuffer *b)
{
    pthread_mutex_lock(&s->met.mu);
    uint64_t n = s->met.ndec, from = n > HERD_MET_NDECIDE ? n - HERD_MET_NDECIDE : 0;
    LIT(b, "{");
    herd_json_key(b, "desired", 1);
    if (s->met.desired >= 0) herd_json_num(b, s->met.desired); else LIT(b, "null");
    herd_json_key(b, "decisions", 0);
    LIT(b, "[");
    for (uint64_t i = from; i < n; i++) {
        const herd_mdecision *d = &s->met.dec[i % HERD_MET_NDECIDE];
        if (i != from) LIT(b, ",");
        LIT(b, "{");
        herd_json_key(b, "time", 1); herd_json_num(b, d->t);
        herd_json_key(b, "target", 0); herd_json_num(b, d->target);
        herd_json_key(b, "workers", 0); herd_json_num(b, d->have);
        herd_json_key(b, "reason", 0); herd_json_str(b, d->reason);
        LIT(b, "}");
    }
    LIT(b, "]}");
    pthread_mutex_unlock(&s->met.mu);
}

static void j_logs(herd_sched *s, uint64_t since, struct evbuffer *b)
{
    static const char *const lv[] = { "debug", "info", "warning", "error" };
    pthread_mutex_lock(&s->met.mu);
    uint64_t n = s->met.nlogs, from = n > HERD_MET_NLOGS ? n - HERD_MET_NLOGS : 0;
    if (since > from) from = since < n ? since : n;
    LIT(b, "{");
    herd_json_key(b, "next", 1); herd_json_num(b, (double)n);
    herd_json_key(b, "lines", 0);
    LIT(b, "[");
    for (uint64_t i = from; i < n; i++) {
        const herd_mlog *l = &s->met.logs[i % HERD_MET_NLOGS];
        if (i != from) LIT(b, ",");
        LIT(b, "{");
        herd_json_key(b, "time", 1); herd_json_num(b, l->t);
        herd_json_key(b, "level", 0); herd_json_str(b, l->level >= 0 && l->level < 4 ? lv[l->level] : "info");
        herd_json_key(b, "line", 0); herd_json_str(b, l->line);
        LIT(b, "}");
    }
    LIT(b, "]}");
    pthread_mutex_unlock(&s->met.mu);
}

/* The provider's own list of its workers (starting ones, failed ones and
 * why), as the keeper last read it; null without one. */
static void j_provider(herd_sched *s, struct evbuffer *b)
{
    static const char *const st[] = { "starting", "running", "stopping", "stopped", "failed" };
    pthread_mutex_lock(&s->met.mu);
    if (!s->met.pname[0]) { LIT(b, "null"); pthread_mutex_unlock(&s->met.mu); return; }
    LIT(b, "{");
    herd_json_key(b, "provider", 1); herd_json_str(b, s->met.pname);
    herd_json_key(b, "time", 0); herd_json_num(b, s->met.pat);
    herd_json_key(b, "workers", 0);
    LIT(b, "[");
    for (size_t i = 0; i < s->met.npinfo; i++) {
        const herd_worker_info *w = &s->met.pinfo[i];
        if (i) LIT(b, ",");
        LIT(b, "{");
        herd_json_key(b, "name", 1); herd_json_strn(b, w->name, strnlen(w->name, sizeof w->name));
        herd_json_key(b, "state", 0); herd_json_str(b, w->state >= 0 && w->state <= 4 ? st[w->state] : "unknown");
        herd_json_key(b, "pid", 0); herd_json_num(b, (double)w->pid);
        herd_json_key(b, "host", 0); herd_json_strn(b, w->host, strnlen(w->host, sizeof w->host));
        herd_json_key(b, "detail", 0); herd_json_strn(b, w->detail, strnlen(w->detail, sizeof w->detail));
        LIT(b, "}");
    }
    LIT(b, "]}");
    pthread_mutex_unlock(&s->met.mu);
}

int sch_report_json(herd_sched *s, const char *which, uint64_t since_run, uint64_t since_log, struct evbuffer *b)
{
    if (!strcmp(which, "workers")) j_workers(s, b);
    else if (!strcmp(which, "tasks")) j_tasks(s, b);
    else if (!strcmp(which, "runs")) j_runs(s, since_run, b);
    else if (!strcmp(which, "adaptive")) j_adaptive(s, b);
    else if (!strcmp(which, "logs")) j_logs(s, since_log, b);
    else if (!strcmp(which, "provider")) j_provider(s, b);
    else if (!strcmp(which, "status")) {
        LIT(b, "{");
        herd_json_key(b, "version", 1); herd_json_str(b, HERD_VERSION_STRING);
        herd_json_key(b, "time", 0); herd_json_num(b, herd_wall_now());
        herd_json_key(b, "started", 0); herd_json_num(b, s->met.t0);
        herd_json_key(b, "totals", 0);
        LIT(b, "{");
        herd_json_key(b, "transfers", 1); herd_json_num(b, (double)s->met.transfers);
        herd_json_key(b, "transfer_bytes", 0); herd_json_num(b, (double)s->met.transfer_bytes);
        herd_json_key(b, "worker_joins", 0); herd_json_num(b, (double)s->met.worker_joins);
        herd_json_key(b, "worker_losses", 0); herd_json_num(b, (double)s->met.worker_losses);
        herd_json_key(b, "tasks_suspicious", 0); herd_json_num(b, (double)s->met.suspicious);
        LIT(b, "}");
        herd_json_key(b, "workers", 0); j_workers(s, b);
        herd_json_key(b, "tasks", 0); j_tasks(s, b);
        herd_json_key(b, "runs", 0); j_runs(s, since_run, b);
        herd_json_key(b, "running", 0); j_running(s, b);
        herd_json_key(b, "adaptive", 0); j_adaptive(s, b);
        herd_json_key(b, "logs", 0); j_logs(s, since_log, b);
        herd_json_key(b, "provider", 0); j_provider(s, b);
        LIT(b, "}");
    } else return -1;
    LIT(b, "\n");
    return 0;
}

/* ---- text (`herd status`) ---- */

static void human_bytes(char *buf, size_t cap, double v)
{
    static const char *const u[] = { "B", "KiB", "MiB", "GiB", "TiB" };
    int i = 0;
    while (v >= 1024 && i < 4) { v /= 1024; i++; }
    snprintf(buf, cap, i ? "%.1f %s" : "%.0f %s", v, u[i]);
}

void sch_report_text(herd_sched *s, struct evbuffer *b)
{
    int nw = 0, nt = 0, busy = 0;
    for (sworker *w = s->workers; w; w = w->next)
        if (is_worker(w)) { nw++; nt += w->nthreads; busy += w->busy; }
    evbuffer_add_printf(b, "herd scheduler %s, up %.0fs: %d worker%s, %d thread%s, %d running\n", HERD_VERSION_STRING,
                        herd_wall_now() - s->met.t0, nw, nw == 1 ? "" : "s", nt, nt == 1 ? "" : "s", busy);
    evbuffer_add_printf(b, "tasks: %zu waiting, %zu queued, %zu processing, %zu retrying, %zu done (held)\n",
                        s->nstate[0], s->nstate[1], s->nstate[2], s->nstate[3], s->nstate[4]);
    pthread_mutex_lock(&s->met.mu);
    if (s->met.desired >= 0) evbuffer_add_printf(b, "desired workers: %d\n", s->met.desired);
    pthread_mutex_unlock(&s->met.mu);
    if (nw) {
        evbuffer_add_printf(b, "\n%-24s %-16s %7s %7s %10s %6s %10s %10s %8s\n", "WORKER", "HOST", "THREADS", "RUNNING", "MEMORY", "CPU%",
                            "HELD", "SPILLED", "DONE");
        for (sworker *w = s->workers; w; w = w->next) {
            if (!is_worker(w)) continue;
            int64_t rss;
            usage(w, &rss);
            char mem[32] = "-", held[32], spilled[32], cpu[16] = "-";
            if (rss >= 0) human_bytes(mem, sizeof mem, (double)rss);
            if (w->cpu_pct >= 0) snprintf(cpu, sizeof cpu, "%.0f", w->cpu_pct);
            human_bytes(held, sizeof held, (double)w->held_bytes);
            human_bytes(spilled, sizeof spilled, (double)w->spilled);
            evbuffer_add_printf(b, "%-24.24s %-16.16s %7d %7d %10s %6s %10s %10s %8llu%s\n", w->name, w->host ? w->host : "-",
                                w->nthreads, w->busy, mem, cpu, held, spilled, (unsigned long long)w->ndone, w->closing ? " (closing)" : w->paused ? " (paused: memory)" : "");
        }
    }
    if (s->met.groups) {
        evbuffer_add_printf(b, "\n%-28s %8s %8s %8s %10s %8s %10s\n", "TASK", "TOTAL", "PENDING", "RUNNING", "COMPLETED", "FAILED",
                            "MEAN");
        for (herd_mgroup *g = s->met.groups; g; g = g->next) {
            char mean[32] = "-";
            double m = g->dur_count ? g->dur_sum / (double)g->dur_count : 0;
            if (g->dur_count && m < 1e-6) snprintf(mean, sizeof mean, "< 1 us");
            else if (g->dur_count) snprintf(mean, sizeof mean, m >= 1 ? "%.1f s" : m >= 1e-3 ? "%.1f ms" : "%.0f us",
                                            m >= 1 ? m : m >= 1e-3 ? m * 1e3 : m * 1e6);
            evbuffer_add_printf(b, "%-28.28s %8llu %8lld %8lld %10llu %8llu %10s\n", g->name, (unsigned long long)g->total,
                                (long long)(g->n[0] + g->n[1] + g->n[3]), (long long)g->n[2], (unsigned long long)g->ended[0],
                                (unsigned long long)(g->ended[1] + g->ended[2] + g->ended[3]), mean);
        }
    }
}
