/* core/metrics.c — the scheduler's counters for its HTTP endpoint (see
 * metrics.h): task groups by name, the run ring, the log tail, adaptive
 * decisions, the provider's status list (and that list as the text a
 * client sends a scheduler running elsewhere). Rendering them is
 * core/sched_report.c's job. */
#include "metrics.h"
#include "hash.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const double herd_met_bounds[HERD_MET_NBUCKETS] = { 0.001, 0.01, 0.1, 0.5, 1, 5, 30, 300, 1e308 };

double herd_wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

void herd_metrics_init(herd_metrics *m)
{
    memset(m, 0, sizeof *m);
    kmap_init(&m->byhash);
    pthread_mutex_init(&m->mu, NULL);
    m->desired = -1;
    m->t0 = herd_wall_now();
}

void herd_metrics_destroy(herd_metrics *m)
{
    for (herd_mgroup *g = m->groups, *n; g; g = n) { n = g->next; free(g->name); free(g); }
    m->groups = NULL;
    m->last = NULL;
    free(m->pinfo);
    m->pinfo = NULL;
    kmap_free(&m->byhash);
    pthread_mutex_destroy(&m->mu);
}

static herd_mgroup *find(herd_metrics *m, const char *name, uint64_t h)
{
    herd_mgroup *g = kmap_get(&m->byhash, h);
    if (g && strcmp(g->name, name) == 0) return g;
    if (!g) return NULL;
    for (g = m->groups; g; g = g->next)          /* a hash collision: rare, look further */
        if (strcmp(g->name, name) == 0) return g;
    return NULL;
}

herd_mgroup *herd_metrics_group(herd_metrics *m, const char *name)
{
    static const char other[] = "(other)";
    if (!name) name = "task";
    if (m->last && strcmp(m->last->name, name) == 0) return m->last;   /* a map's tasks share a name */
    uint64_t h = herd_hash_bytes(name, strlen(name));
    herd_mgroup *g = find(m, name, h);
    if (g) return m->last = g;
    if (m->ngroups >= HERD_MET_MAXGROUPS && strcmp(name, other) != 0) return herd_metrics_group(m, other);
    if (!(g = calloc(1, sizeof *g)) || !(g->name = strdup(name))) {
        free(g);
        return strcmp(name, other) != 0 ? herd_metrics_group(m, other) : m->groups;
    }
    g->next = m->groups;
    m->groups = g;
    m->ngroups++;
    if (!kmap_get(&m->byhash, h)) kmap_put(&m->byhash, h, g);
    return m->last = g;
}

/* src into dst[cap], cut at cap - 1 bytes: per task, so no printf */
static void copy_name(char *dst, size_t cap, const char *src)
{
    size_t n = strnlen(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

void herd_metrics_run(herd_metrics *m, herd_mgroup *g, const char *worker, double dur, int ok)
{
    herd_mrun *r = &m->runs[m->nruns++ % HERD_MET_NRUNS];
    double now = herd_wall_now();
    copy_name(r->name, sizeof r->name, g && g->name ? g->name : "task");
    copy_name(r->worker, sizeof r->worker, worker ? worker : "");
    if (dur < 0) dur = 0;
    r->stop = now;
    r->start = now - dur;
    r->ok = ok;
    if (!g || !ok) return;
    int b = 0;
    while (b < HERD_MET_NBUCKETS - 1 && dur > herd_met_bounds[b]) b++;
    g->buckets[b]++;
    g->dur_sum += dur;
    g->dur_count++;
}

void herd_metrics_log(herd_metrics *m, int level, const char *line)
{
    pthread_mutex_lock(&m->mu);
    herd_mlog *l = &m->logs[m->nlogs % HERD_MET_NLOGS];
    l->seq = ++m->nlogs;
    l->t = herd_wall_now();
    l->level = level;
    snprintf(l->line, sizeof l->line, "%s", line ? line : "");
    pthread_mutex_unlock(&m->mu);
}

void herd_metrics_decision(herd_metrics *m, int target, int have, const char *reason)
{
    pthread_mutex_lock(&m->mu);
    herd_mdecision *d = &m->dec[m->ndec % HERD_MET_NDECIDE];
    d->seq = ++m->ndec;
    d->t = herd_wall_now();
    d->target = target;
    d->have = have;
    snprintf(d->reason, sizeof d->reason, "%s", reason ? reason : "");
    m->desired = target;
    pthread_mutex_unlock(&m->mu);
}

void herd_metrics_provider(herd_metrics *m, const char *name, const herd_worker_info *info, size_t n)
{
    if (n > HERD_MET_NPROV) n = HERD_MET_NPROV;
    pthread_mutex_lock(&m->mu);
    if (!m->pinfo) m->pinfo = malloc(HERD_MET_NPROV * sizeof *m->pinfo);
    if (m->pinfo) {
        memcpy(m->pinfo, info, n * sizeof *info);
        m->npinfo = n;
        snprintf(m->pname, sizeof m->pname, "%s", name ? name : "");
        m->pat = herd_wall_now();
    }
    pthread_mutex_unlock(&m->mu);
}

char *herd_metrics_provider_text(const char *name, const herd_worker_info *info, size_t n)
{
    if (n > HERD_MET_NPROV) n = HERD_MET_NPROV;
    json_t *a = json_array();
    for (size_t i = 0; i < n && a; i++) {
        const herd_worker_info *w = &info[i];
        json_t *e = json_pack("[s#,i,I,s#,s#]", w->name, (int)strnlen(w->name, sizeof w->name), w->state,
                              (json_int_t)w->pid, w->host, (int)strnlen(w->host, sizeof w->host), w->detail,
                              (int)strnlen(w->detail, sizeof w->detail));
        if (e) json_array_append_new(a, e);   /* NULL: not UTF-8, left out */
    }
    json_t *o = a ? json_pack("{s:s,s:o}", "provider", name ? name : "", "workers", a) : NULL;
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return text;
}

int herd_metrics_provider_set(herd_metrics *m, const char *text)
{
    json_t *o = json_loads(text, 0, NULL), *a = json_object_get(o, "workers");
    const char *name = json_string_value(json_object_get(o, "provider"));
    herd_worker_info *info = calloc(HERD_MET_NPROV, sizeof *info);
    size_t n = 0;
    int rc = name && json_is_array(a) && info ? 0 : -HERD_EPROTO;
    for (size_t i = 0; !rc && i < json_array_size(a) && n < HERD_MET_NPROV; i++) {
        const char *wn = NULL, *host = NULL, *detail = NULL;
        int state = 0;
        json_int_t pid = 0;
        if (json_unpack(json_array_get(a, i), "[s,i,I,s,s]", &wn, &state, &pid, &host, &detail)) { rc = -HERD_EPROTO; break; }
        herd_worker_info *w = &info[n++];
        snprintf(w->name, sizeof w->name, "%s", wn);
        w->state = state;
        w->pid = (long)pid;
        snprintf(w->host, sizeof w->host, "%s", host);
        snprintf(w->detail, sizeof w->detail, "%s", detail);
    }
    if (!rc) herd_metrics_provider(m, name, info, n);
    free(info);
    json_decref(o);
    return rc;
}
