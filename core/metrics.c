/* core/metrics.c — the scheduler's counters for its HTTP endpoint (see
 * metrics.h): task groups by name, the run ring, the log tail, adaptive
 * decisions. Rendering them is core/sched_report.c's job. */
#include "metrics.h"
#include "hash.h"

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
    uint64_t h = herd_hash_bytes(name, strlen(name));
    herd_mgroup *g = find(m, name, h);
    if (g) return g;
    if (m->ngroups >= HERD_MET_MAXGROUPS && strcmp(name, other) != 0) return herd_metrics_group(m, other);
    if (!(g = calloc(1, sizeof *g)) || !(g->name = strdup(name))) {
        free(g);
        return strcmp(name, other) != 0 ? herd_metrics_group(m, other) : m->groups;
    }
    g->next = m->groups;
    m->groups = g;
    m->ngroups++;
    if (!kmap_get(&m->byhash, h)) kmap_put(&m->byhash, h, g);
    return g;
}

void herd_metrics_run(herd_metrics *m, herd_mgroup *g, const char *worker, double dur, int ok)
{
    herd_mrun *r = &m->runs[m->nruns++ % HERD_MET_NRUNS];
    double now = herd_wall_now();
    snprintf(r->name, sizeof r->name, "%s", g && g->name ? g->name : "task");
    snprintf(r->worker, sizeof r->worker, "%s", worker ? worker : "");
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
