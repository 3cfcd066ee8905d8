/* core/sched_report.c — what the scheduler's HTTP endpoint serves, written
 * from its counters (metrics.h) and worker records on the scheduler's
 * thread: Prometheus text (/metrics, Dask's names under herd_ where the
 * meaning is the same), JSON (/api/v1/..., with jansson), and the text of
 * `herd status`.
 * Costs O(workers + task names + kept runs), never O(tasks). */
#include "sched_int.h"

#include <jansson.h>
#include <math.h>
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

/* ---- JSON (jansson) ---- */

/* Length of the valid UTF-8 sequence at p (n bytes left), or 0. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    size_t len;
    unsigned min, c = p[0];
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf) { len = 2; min = 0x80; c &= 0x1f; }
    else if (c >= 0xe0 && c <= 0xef) { len = 3; min = 0x800; c &= 0x0f; }
    else if (c >= 0xf0 && c <= 0xf4) { len = 4; min = 0x10000; c &= 0x07; }
    else return 0;
    if (n < len) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80) return 0;
        c = (c << 6) | (p[i] & 0x3f);
    }
    return c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff) ? 0 : len;
}

/* n bytes of s as a JSON string; bytes that are not UTF-8 (a worker's name,
 * a log line) become U+FFFD, where jansson would refuse the whole string. */
static json_t *jstrn(const char *s, size_t n)
{
    json_t *j = json_stringn(s, n);
    if (j) return j;
    char *c = malloc(n * 3 + 1);
    size_t k = 0;
    for (size_t i = 0; c && i < n;) {
        size_t l = utf8_len((const unsigned char *)s + i, n - i);
        if (l) {
            memcpy(c + k, s + i, l);
            k += l;
            i += l;
        } else {                                 /* one byte replaced */
            memcpy(c + k, "\xef\xbf\xbd", 3);
            k += 3;
            i++;
        }
    }
    j = c ? json_stringn(c, k) : NULL;
    free(c);
    return j ? j : json_null();
}

static json_t *jstr(const char *s) { return s ? jstrn(s, strlen(s)) : json_null(); }

/* A finite number (an integer when it is one), else null. */
static json_t *jnum(double v)
{
    if (!isfinite(v)) return json_null();
    if (v == (double)(long long)v && fabs(v) < 9e15) return json_integer((json_int_t)v);
    return json_real(v);
}

static json_t *j_workers(herd_sched *s)
{
    json_t *a = json_array();
    double now = herd_wall_now(), mono = herd_now();
    for (sworker *w = s->workers; w && a; w = w->next) {
        if (!is_worker(w)) continue;
        int64_t rss;
        usage(w, &rss);
        json_array_append_new(a, json_pack("{s:o,s:o,s:o,s:I,s:i,s:i,s:b,s:b,s:I,s:I,s:I,s:o,s:o,s:I,s:I,s:o,s:o}",
            "name", jstr(w->name), "host", jstr(w->host), "address", jstr(w->local ? "local" : w->ip),
            "pid", (json_int_t)w->pid, "threads", w->nthreads, "running", w->busy,
            "closing", w->closing, "paused", w->paused,
            "held_bytes", (json_int_t)w->held_bytes, "managed_bytes", (json_int_t)w->managed,
            "spilled_bytes", (json_int_t)w->spilled,
            "memory", rss >= 0 ? jnum((double)rss) : json_null(), "cpu", w->cpu_pct >= 0 ? jnum(w->cpu_pct) : json_null(),
            "done", (json_int_t)w->ndone, "failed", (json_int_t)w->nfailed,
            "joined", jnum(w->joined), "last_seen", jnum(now - (mono - w->last_seen))));
    }
    return a;
}

static json_t *j_tasks(herd_sched *s)
{
    json_t *states = json_object(), *groups = json_array();
    for (int i = 0; i < 5 && states; i++) json_object_set_new(states, state_names[i], json_integer((json_int_t)s->nstate[i]));
    for (herd_mgroup *g = s->met.groups; g && groups; g = g->next) {
        json_t *o = json_pack("{s:o,s:I,s:I,s:I}", "name", jstr(g->name), "total", (json_int_t)g->total,
                              "pending", (json_int_t)(g->n[0] + g->n[1] + g->n[3]), "running", (json_int_t)g->n[2]);
        for (int i = 0; i < 4 && o; i++) json_object_set_new(o, end_names[i], json_integer((json_int_t)g->ended[i]));
        if (o) json_object_set_new(o, "mean_duration", g->dur_count ? jnum(g->dur_sum / (double)g->dur_count) : json_null());
        json_array_append_new(groups, o);
    }
    return json_pack("{s:o,s:o}", "states", states, "groups", groups);
}

static json_t *j_runs(herd_sched *s, uint64_t since)
{
    uint64_t n = s->met.nruns, from = n > HERD_MET_NRUNS ? n - HERD_MET_NRUNS : 0;
    if (since > from) from = since;
    if (from > n) from = n;
    json_t *a = json_array();
    for (uint64_t i = from; i < n && a; i++) {
        const herd_mrun *r = &s->met.runs[i % HERD_MET_NRUNS];
        json_array_append_new(a, json_pack("{s:o,s:o,s:o,s:o,s:s}", "name", jstr(r->name), "worker", jstr(r->worker),
                                           "start", jnum(r->start), "stop", jnum(r->stop),
                                           "state", r->ok ? "completed" : "failed"));
    }
    return json_pack("{s:I,s:o}", "next", (json_int_t)n, "runs", a);
}

/* Attempts running now (bounded by the workers' threads and prefetch). */
static json_t *j_running(herd_sched *s)
{
    double wall = herd_wall_now(), mono = herd_now();
    json_t *a = json_array();
    for (sworker *w = s->workers; w && a; w = w->next) {
        size_t i = 0;
        void *v;
        while (is_worker(w) && kmap_next(&w->running, &i, NULL, &v)) {
            const stask *t = v;
            json_array_append_new(a, json_pack("{s:o,s:o,s:o}", "name", jstr(t->grp ? t->grp->name : t->task),
                                               "worker", jstr(w->name), "start", jnum(wall - (mono - t->started))));
        }
    }
    return a;
}

static json_t *j_adaptive(herd_sched *s)
{
    pthread_mutex_lock(&s->met.mu);
    uint64_t n = s->met.ndec, from = n > HERD_MET_NDECIDE ? n - HERD_MET_NDECIDE : 0;
    json_t *a = json_array();
    for (uint64_t i = from; i < n && a; i++) {
        const herd_mdecision *d = &s->met.dec[i % HERD_MET_NDECIDE];
        json_array_append_new(a, json_pack("{s:o,s:i,s:i,s:o}", "time", jnum(d->t), "target", d->target,
                                           "workers", d->have, "reason", jstr(d->reason)));
    }
    json_t *o = json_pack("{s:o,s:o}", "desired", s->met.desired >= 0 ? json_integer(s->met.desired) : json_null(),
                          "decisions", a);
    pthread_mutex_unlock(&s->met.mu);
    return o;
}

static json_t *j_logs(herd_sched *s, uint64_t since)
{
    static const char *const lv[] = { "debug", "info", "warning", "error" };
    pthread_mutex_lock(&s->met.mu);
    uint64_t n = s->met.nlogs, from = n > HERD_MET_NLOGS ? n - HERD_MET_NLOGS : 0;
    if (since > from) from = since < n ? since : n;
    json_t *a = json_array();
    for (uint64_t i = from; i < n && a; i++) {
        const herd_mlog *l = &s->met.logs[i % HERD_MET_NLOGS];
        json_array_append_new(a, json_pack("{s:o,s:s,s:o}", "time", jnum(l->t),
                                           "level", l->level >= 0 && l->level < 4 ? lv[l->level] : "info",
                                           "line", jstr(l->line)));
    }
    pthread_mutex_unlock(&s->met.mu);
    return json_pack("{s:I,s:o}", "next", (json_int_t)n, "lines", a);
}

/* The provider's own list of its workers (starting ones, failed ones and
 * why), as the keeper last read it; null without one. */
static json_t *j_provider(herd_sched *s)
{
    static const char *const st[] = { "starting", "running", "stopping", "stopped", "failed" };
    pthread_mutex_lock(&s->met.mu);
    if (!s->met.pname[0]) { pthread_mutex_unlock(&s->met.mu); return json_null(); }
    json_t *a = json_array();
    for (size_t i = 0; i < s->met.npinfo && a; i++) {
        const herd_worker_info *w = &s->met.pinfo[i];
        json_array_append_new(a, json_pack("{s:o,s:s,s:I,s:o,s:o}",
            "name", jstrn(w->name, strnlen(w->name, sizeof w->name)),
            "state", w->state >= 0 && w->state <= 4 ? st[w->state] : "unknown", "pid", (json_int_t)w->pid,
            "host", jstrn(w->host, strnlen(w->host, sizeof w->host)),
            "detail", jstrn(w->detail, strnlen(w->detail, sizeof w->detail))));
    }
    json_t *o = json_pack("{s:o,s:o,s:o}", "provider", jstr(s->met.pname), "time", jnum(s->met.pat), "workers", a);
    pthread_mutex_unlock(&s->met.mu);
    return o;
}

static json_t *j_status(herd_sched *s, uint64_t since_run, uint64_t since_log)
{
    json_t *totals = json_pack("{s:I,s:I,s:I,s:I,s:I}", "transfers", (json_int_t)s->met.transfers,
                               "transfer_bytes", (json_int_t)s->met.transfer_bytes,
                               "worker_joins", (json_int_t)s->met.worker_joins,
                               "worker_losses", (json_int_t)s->met.worker_losses,
                               "tasks_suspicious", (json_int_t)s->met.suspicious);
    return json_pack("{s:s,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o}", "version", HERD_VERSION_STRING,
                     "time", jnum(herd_wall_now()), "started", jnum(s->met.t0), "totals", totals,
                     "workers", j_workers(s), "tasks", j_tasks(s), "runs", j_runs(s, since_run),
                     "running", j_running(s), "adaptive", j_adaptive(s), "logs", j_logs(s, since_log),
                     "provider", j_provider(s));
}

/* jansson's text into the buffer, with < > & escaped as well, so the JSON
 * can sit inside an HTML <script> (the performance report): outside its
 * strings JSON has none of them, so this rewrites only strings' bytes. */
static int to_evbuffer(const char *p, size_t n, void *ud)
{
    struct evbuffer *b = ud;
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        const char *esc = p[i] == '<' ? "\\u003c" : p[i] == '>' ? "\\u003e" : p[i] == '&' ? "\\u0026" : NULL;
        if (!esc) { run++; continue; }
        if (run) evbuffer_add(b, p + i - run, run);
        run = 0;
        evbuffer_add(b, esc, 6);
    }
    if (run) evbuffer_add(b, p + n - run, run);
    return 0;
}

int sch_report_json(herd_sched *s, const char *which, uint64_t since_run, uint64_t since_log, struct evbuffer *b)
{
    json_t *j;
    if (!strcmp(which, "workers")) j = j_workers(s);
    else if (!strcmp(which, "tasks")) j = j_tasks(s);
    else if (!strcmp(which, "runs")) j = j_runs(s, since_run);
    else if (!strcmp(which, "adaptive")) j = j_adaptive(s);
    else if (!strcmp(which, "logs")) j = j_logs(s, since_log);
    else if (!strcmp(which, "provider")) j = j_provider(s);
    else if (!strcmp(which, "status")) j = j_status(s, since_run, since_log);
    else return -1;
    /* NULL: out of memory (json_pack gives up on a NULL member) */
    if (!j || json_dump_callback(j, to_evbuffer, b, JSON_COMPACT | JSON_ENCODE_ANY)) LIT(b, "null");
    json_decref(j);
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
