/* core/adaptive.c — the one place that keeps a temporary cluster at its
 * intended size: one thread per flow run that sizes the cluster through the
 * provider hooks only (status to count workers, scale_up to add, retire to
 * remove), so every provider gets it. A fixed cluster (no adapt_kwargs) runs
 * it as a nanny: the intended size is the count start() brought up, and a
 * worker that dies is replaced (Dask's LocalCluster(processes=True) nanny),
 * with backoff while workers keep dying at start; the death's cause (the
 * provider's status detail) is logged. So is one that retired itself when
 * its lifetime passed (the scheduler counts them: load.lifetime_retired). An adaptive cluster's intended size
 * is the load's target. The adaptive rules are Dask's
 * (distributed/deploy/adaptive_core.py, adaptive.py and
 * Scheduler.adaptive_target, 2022.12):
 *
 *  - target = ceil(expected seconds of ready + running work / target_duration)
 *    threads, never more than there are such tasks, divided by the threads a
 *    worker brings; queued work with no worker asks for at least one; then
 *    clamped to [minimum, maximum]. The scheduler supplies the expected
 *    seconds (observed mean duration; 0.5 s per task while none has finished,
 *    Dask's UNKNOWN_TASK_DURATION).
 *  - the current size counts the workers the provider lists as starting or
 *    running, so workers that have not connected yet are not asked for
 *    again, and leaves out workers being retired.
 *  - up: at once (on the interval, and on submit via herd_adaptive_poke).
 *  - down: Dask's close_counts: a worker is retired once it was picked for
 *    closing in wait_count consecutive intervals. Candidates are idle workers,
 *    longest idle first, then workers that have not connected yet; a busy
 *    worker is never picked (Dask's workers_to_close keeps them too).
 *  - retiring is graceful: the scheduler drains the worker (no new work; its
 *    running tasks finish; then it is told to close), and only once it has
 *    left does the provider's retire stop it. A worker that dies anyway has
 *    its tasks rescheduled by the scheduler, so no task is lost.
 *
 * Everything but herd_adaptive_poke runs on the adaptive thread, so its
 * bookkeeping needs no lock; mu and cv only carry stop and poke. */
#include "adaptive.h"
#include "comm.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define POKE_GAP_S    0.025   /* at most one submit-triggered decision per this */
#define BACKOFF_MAX_S 60.0    /* scale_up failures: retry after interval, doubling to this */
#define FLOOR_HOLD_S  5.0     /* workers just asked for count at most this long until status lists them */
#define DEATH_BACKOFF_MIN_S 0.1
#define DEATH_BACKOFF_MAX_S 10.0
#define NANNY_INTERVAL_S    0.2   /* a fixed cluster's check for dead workers */

typedef struct ccount { char name[64]; int n; } ccount;          /* Dask's close_counts */
typedef struct retiring { char name[64]; double since; } retiring; /* drained, not yet left */
typedef struct seen { char name[64]; double first; int connected, reported; } seen; /* every worker status listed */

struct herd_adaptive {
    herd_adaptive_cfg cfg;
    const herd_sched_ops *ops;
    void *s;                   /* the ops' ud: a herd_sched or a herd_remote */
    const herd_provider *prov;
    herd_cluster *cluster;
    const herd_cluster_env *env;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
    pthread_mutex_t join_mu;   /* halt may come from two threads (a signal's, the runner's) */
    int joined;
    atomic_int poked;
    /* the thread's own */
    ccount *counts;
    size_t ncounts;
    retiring *ret;
    size_t nret, capret;
    char kept[64];             /* the idle worker last kept for its needed values (logged once) */
    herd_worker_info *info;
    size_t capinfo;
    int tpw;                   /* threads per worker, as last seen */
    double retry_at, backoff;  /* scale_up failures */
    int floor;                 /* size just asked for, until status lists floor_listed workers */
    size_t floor_listed;
    double floor_until;
    seen *seen;                /* workers status listed, for deaths: when first seen, reported */
    size_t nseen, capseen;
    double death_backoff, death_until;   /* workers dying at start: replacements wait */
    int lifetime_replaced;     /* of the scheduler's lifetime_retired, stops already replaced */
    int noted_target, noted_size;        /* the last decision told to ops->note */
};


/* ---- the target ---- */
int herd_adaptive_target(const herd_adaptive_cfg *cfg, const herd_sched_load *l, int threads_per_worker,
                         char *why, size_t cap)
{
    int tpw = threads_per_worker > 0 ? threads_per_worker : 1;
    long ntasks = (long)l->ready + l->running;
    double work = l->task_seconds > 0 ? l->task_seconds : 0;
    /* Scheduler.adaptive_target: cpu = ceil(occupancy / target_duration),
     * "avoid a few long tasks from asking for many cores": at most one
     * thread per task; queued work and no worker: at least one */
    double threads = ntasks ? ceil(work / cfg->target_duration) : 0;
    if (threads > (double)ntasks) threads = (double)ntasks;
    if (l->ready > 0 && threads < 1) threads = 1;
    double want = ceil(threads / tpw);
    int target = want > 1e6 ? 1000000 : (int)want;
    const char *clamp = "";
    if (target < cfg->minimum) { target = cfg->minimum; clamp = "raised to minimum"; }
    if (cfg->maximum >= 0 && target > cfg->maximum) { target = cfg->maximum; clamp = "capped at maximum"; }
    if (why && cap) {
        int n;
        if (!ntasks)
            n = snprintf(why, cap, "0 ready + 0 running tasks: no work");
        else
            n = snprintf(why, cap, "%d ready + %d running tasks, ~%.3gs of work at %.3gs per task (%s) / "
                         "target_duration %gs = %.0f threads = %.0f workers of %d thread%s", l->ready, l->running,
                         work, work / (double)ntasks, l->avg_duration < 0 ? "assumed: none finished yet" : "observed mean",
                         cfg->target_duration, threads, want, tpw, tpw == 1 ? "" : "s");
        if (*clamp && n >= 0 && (size_t)n < cap)
            snprintf(why + n, cap - (size_t)n, ", %s %d", clamp, target);
    }
    return target;
}

/* ---- bookkeeping ---- */
static const herd_sched_wload *connected(const herd_sched_load *l, const char *name)
{
    for (size_t i = 0; i < l->nworkers; i++)
        if (strcmp(l->workers[i].name, name) == 0) return &l->workers[i];
    return NULL;
}

static int is_retiring(const herd_adaptive *a, const char *name)
{
    for (size_t i = 0; i < a->nret; i++)
        if (strcmp(a->ret[i].name, name) == 0) return 1;
    return 0;
}

static int close_count(const herd_adaptive *a, const char *name)
{
    for (size_t i = 0; i < a->ncounts; i++)
        if (strcmp(a->counts[i].name, name) == 0) return a->counts[i].n;
    return 0;
}

/* The provider's list; *n entries in a->info (0 when status fails). */
static void provider_status(herd_adaptive *a, size_t *n)
{
    *n = 0;
    for (int tries = 0; tries < 3; tries++) {
        size_t have = 0;
        if (a->prov->status(a->cluster, a->info, a->capinfo, &have)) return;
        if (have <= a->capinfo) { *n = have; return; }
        herd_worker_info *bigger = realloc(a->info, (have + 16) * sizeof *bigger);
        if (!bigger) { *n = a->capinfo; return; }
        a->info = bigger;
        a->capinfo = have + 16;
    }
    *n = a->capinfo;
}

static void stop_retired(herd_adaptive *a, const char *name, const char *how)
{
    herd_err e = { 0 };
    if (a->prov->retire(a->cluster, name, &e))
        herd_log(a->env, HERD_LOG_WARN, "adaptive: %s retire(%s) failed: %s", a->prov->name, name, e.msg);
    else
        herd_log(a->env, HERD_LOG_INFO, "adaptive: worker %s retired (%s)", name, how);
}

/* Drained workers that have left the scheduler are stopped by the provider. */
static void finish_retires(herd_adaptive *a, const herd_sched_load *l)
{
    for (size_t i = 0; i < a->nret;) {
        const herd_sched_wload *c = connected(l, a->ret[i].name);
        if (c && !c->closing) {       /* the scheduler kept it: its values had nowhere to go */
            herd_log(a->env, HERD_LOG_INFO, "adaptive: worker %s stays (the scheduler kept it: it holds values "
                     "still needed that no other worker could take)", a->ret[i].name);
            a->ret[i] = a->ret[--a->nret];
            continue;
        }
        if (a->ops->has_worker(a->s, a->ret[i].name)) { i++; continue; }
        char how[96];
        snprintf(how, sizeof how, "drained and left after %.3gs", herd_now() - a->ret[i].since);
        stop_retired(a, a->ret[i].name, how);
        a->ret[i] = a->ret[--a->nret];
    }
}

static int add_retiring(herd_adaptive *a, const char *name)
{
    if (a->nret == a->capret) {
        size_t cap = a->capret ? 2 * a->capret : 8;
        retiring *r = realloc(a->ret, cap * sizeof *r);
        if (!r) return -ENOMEM;
        a->ret = r;
        a->capret = cap;
    }
    retiring *r = &a->ret[a->nret++];
    snprintf(r->name, sizeof r->name, "%s", name);
    r->since = herd_now();
    return 0;
}

/* Retire one worker gracefully: drain it if connected; a worker that has not
 * connected yet runs nothing and is stopped at once. */
static void retire_one(herd_adaptive *a, const char *name)
{
    if (a->ops->has_worker(a->s, name)) {
        int rc = a->ops->drain(a->s, name);
        if (rc && rc != -HERD_EARG) {     /* scheduler gone: the flow run is ending */
            herd_log(a->env, HERD_LOG_WARN, "adaptive: cannot drain %s: %s", name, herd_strerror(rc));
            return;
        }
        if (add_retiring(a, name)) stop_retired(a, name, "out of memory to wait for its drain");
        return;
    }
    stop_retired(a, name, "it had not connected yet");
}

static seen *find_seen(herd_adaptive *a, const char *name)
{
    for (size_t i = 0; i < a->nseen; i++)
        if (strcmp(a->seen[i].name, name) == 0) return &a->seen[i];
    if (a->nseen == a->capseen) {
        size_t cap = a->capseen ? 2 * a->capseen : 16;
        seen *n = realloc(a->seen, cap * sizeof *n);
        if (!n) return NULL;
        a->seen = n;
        a->capseen = cap;
    }
    seen *w = &a->seen[a->nseen++];
    snprintf(w->name, sizeof w->name, "%s", name);
    w->first = herd_now();
    w->connected = w->reported = 0;
    return w;
}

/* The scheduler's count of workers that retired themselves, asked again:
 * one may have asked after the load snapshot and left before the provider's
 * status was read. */
static int lifetime_now(herd_adaptive *a, int before)
{
    herd_sched_load l;
    if (a->ops->get_load(a->s, &l)) return before;
    int n = l.lifetime_retired;
    herd_sched_load_free(&l);
    return n;
}

/* Workers the provider now lists as failed (died unexpectedly: a signal, an
 * exit status, the memory limit — its detail says which) are logged once
 * with the cause. One that died at start (before it ever connected to the
 * scheduler) backs the replacements off, 0.1 s doubling to 10 s; a worker
 * that connects resets the backoff. */
static void note_deaths(herd_adaptive *a, const herd_sched_load *l, size_t ninfo, double now)
{
    int lifetime_retired = l->lifetime_retired;
    for (size_t i = 0; i < ninfo; i++) {
        herd_worker_info *w = &a->info[i];
        seen *k = find_seen(a, w->name);
        if (!k) continue;
        if (!k->connected && connected(l, w->name)) {
            k->connected = 1;
            a->death_backoff = 0;
        }
        if (k->reported || is_retiring(a, w->name)) continue;
        if (w->state == HERD_WORKER_STOPPED && a->cfg.fixed && a->lifetime_replaced >= lifetime_retired)
            lifetime_retired = lifetime_now(a, lifetime_retired);
        if (w->state == HERD_WORKER_STOPPED && a->cfg.fixed && a->lifetime_replaced < lifetime_retired) {
            /* it retired itself (its lifetime passed): replaced, as Dask's
             * nanny-less --lifetime workers are by their cluster's spec */
            k->reported = 1;
            a->lifetime_replaced++;
            herd_log(a->env, HERD_LOG_INFO, "nanny: worker %s retired (lifetime); replacing it", w->name);
            continue;
        }
        if (w->state == HERD_WORKER_STOPPED && a->cfg.fixed) {
            /* stopped on purpose (retired through the provider, or told to
             * close): a fixed cluster is that much smaller from now on */
            k->reported = 1;
            if (a->cfg.minimum > 0) a->cfg.maximum = --a->cfg.minimum;
            herd_log(a->env, HERD_LOG_INFO, "nanny: worker %s stopped (%s); keeping %d workers", w->name,
                     w->detail[0] ? w->detail : "no detail from the provider", a->cfg.minimum);
            continue;
        }
        if (w->state != HERD_WORKER_FAILED) continue;
        k->reported = 1;
        if (!k->connected) {
            a->death_backoff = a->death_backoff > 0 ? herd_dmin(2 * a->death_backoff, DEATH_BACKOFF_MAX_S)
                                                    : DEATH_BACKOFF_MIN_S;
            a->death_until = now + a->death_backoff;
        }
        char wait[64] = "";
        if (!k->connected) snprintf(wait, sizeof wait, " in %.3gs (it died at start)", a->death_backoff);
        herd_log(a->env, HERD_LOG_WARN, "%s: worker %s died after %.3gs: %s; replacing it%s",
                 a->cfg.fixed ? "nanny" : "adaptive", w->name, now - k->first,
                 w->detail[0] ? w->detail : "no detail from the provider", wait);
    }
}

typedef struct cand { const char *name; double idle; int64_t needed; } cand;

/* Dask's workers_to_close: fewest bytes to move first (values only it
 * holds that are still needed), then idle longest. */
static int by_close_order(const void *x, const void *y)
{
    const cand *a = x, *b = y;
    if (a->needed != b->needed) return (a->needed > b->needed) - (a->needed < b->needed);
    return (a->idle < b->idle) - (a->idle > b->idle);
}

/* ---- one decision ---- */
static void decide(herd_adaptive *a, int full)
{
    herd_sched_load l;
    if (a->ops->get_load(a->s, &l)) return;   /* scheduler stopping */
    if (full) finish_retires(a, &l);
    size_t ninfo;
    provider_status(a, &ninfo);
    if (a->ops->provider) a->ops->provider(a->s, a->prov->name, a->info, ninfo);   /* for the dashboard */
    double now = herd_now();
    note_deaths(a, &l, ninfo, now);

    int active = 0, pending = 0, open = 0;
    for (size_t i = 0; i < ninfo; i++) {
        herd_worker_info *w = &a->info[i];
        /* a fixed cluster counts workers being retired until they have
         * stopped (then its size shrinks): they are not to be replaced */
        int stopping = a->cfg.fixed && w->state == HERD_WORKER_STOPPING;
        if ((w->state != HERD_WORKER_STARTING && w->state != HERD_WORKER_RUNNING && !stopping) ||
            is_retiring(a, w->name))
            continue;
        active++;
        if (!connected(&l, w->name)) pending++;
    }
    for (size_t i = 0; i < l.nworkers; i++) {
        if (!l.workers[i].closing && !is_retiring(a, l.workers[i].name)) open++;
        if (l.workers[i].nthreads > a->tpw) a->tpw = l.workers[i].nthreads;
    }
    int size = active > open ? active : open;   /* workers the provider does not list still count */
    /* up counts the workers just asked for while status does not list them
     * yet (a worker listed and then dead is not counted); down goes by what
     * exists */
    int size_up = now < a->floor_until && ninfo < a->floor_listed && a->floor > size ? a->floor : size;

    /* a fixed cluster scaled up through the provider keeps its new size */
    if (a->cfg.fixed && active > a->cfg.minimum) a->cfg.maximum = a->cfg.minimum = active;
    char why[512];
    int target = a->cfg.fixed ? a->cfg.minimum : herd_adaptive_target(&a->cfg, &l, a->tpw, why, sizeof why);
    if (a->cfg.fixed) snprintf(why, sizeof why, "a fixed cluster of %d", target);

    if (a->ops->note && (target != a->noted_target || size != a->noted_size)) {   /* for the dashboard */
        a->ops->note(a->s, target, size, why);
        a->noted_target = target;
        a->noted_size = size;
    }
    if (target >= size) a->ncounts = 0;           /* Dask: close_counts.clear() */
    if (target > size_up) {
        if (now < a->retry_at || now < a->death_until) goto out;
        int n = target - size_up;
        if (a->cfg.fixed)
            herd_log(a->env, HERD_LOG_INFO, "nanny: %d of %d workers alive; starting %d to replace the dead",
                     size_up, target, n);
        else
            herd_log(a->env, HERD_LOG_INFO, "adaptive: scaling up from %d to %d workers (%d starting): %s",
                     size_up, target, pending + size_up - size, why);
        herd_err e = { 0 };
        if (a->prov->scale_up(a->cluster, n, &e)) {
            a->backoff = a->backoff > 0 ? herd_dmin(2 * a->backoff, BACKOFF_MAX_S) : a->cfg.interval;
            a->retry_at = herd_now() + a->backoff;
            herd_log(a->env, HERD_LOG_WARN, "adaptive: %s scale_up(%d) failed: %s; retrying in %.3gs",
                     a->prov->name, n, e.msg, a->backoff);
        } else {
            a->backoff = 0;
            a->retry_at = 0;
            a->floor = target;
            a->floor_listed = ninfo + (size_t)n;
            a->floor_until = herd_now() + herd_dmax(FLOOR_HOLD_S, 5 * a->cfg.interval);
        }
        goto out;
    }
    if (target >= size || !full || a->cfg.fixed) goto out;

    /* down: pick size - target candidates, fewest needed bytes first (they
     * move to other workers before it closes), idle longest, then the not yet
     * connected; each must be picked wait_count intervals in a row */
    cand *c = calloc(l.nworkers + ninfo + 1, sizeof *c);
    if (!c) goto out;
    size_t nc = 0, need = (size_t)(size - target);
    for (size_t i = 0; i < l.nworkers; i++) {
        const herd_sched_wload *w = &l.workers[i];
        if (!w->closing && w->busy == 0 && w->idle_for > 0 && !is_retiring(a, w->name))
            c[nc++] = (cand){ w->name, w->idle_for, w->needed_bytes };
    }
    for (size_t i = 0; i < ninfo; i++) {
        herd_worker_info *w = &a->info[i];
        if ((w->state == HERD_WORKER_STARTING || w->state == HERD_WORKER_RUNNING) &&
            !is_retiring(a, w->name) && !connected(&l, w->name))
            c[nc++] = (cand){ w->name, -1, 0 };
    }
    qsort(c, nc, sizeof *c, by_close_order);
    /* a worker holding needed values stays when no open worker would be left
     * to take them (Dask keeps a worker with the only copy of needed data) */
    size_t nk = 0;
    const char *kept = NULL;
    int64_t kept_bytes = 0;
    for (size_t i = 0; i < nc; i++) {
        if (c[i].needed <= 0 || (size_t)open > nk + 1) c[nk++] = c[i];
        else if (!kept) { kept = c[i].name; kept_bytes = c[i].needed; }
    }
    nc = nk;
    if (kept && strcmp(kept, a->kept)) {
        herd_log(a->env, HERD_LOG_INFO, "adaptive: keeping worker %s: it holds the only copy of %.1f MiB still needed "
                 "and no other worker would be left to take it (release the futures to let it go)", kept,
                 (double)kept_bytes / 1048576);
        snprintf(a->kept, sizeof a->kept, "%s", kept);
    } else if (!kept) a->kept[0] = '\0';
    if (nc > need) nc = need;
    ccount *next = calloc(nc + 1, sizeof *next);
    if (!next) { free(c); goto out; }
    size_t nnext = 0, nfirm = 0;
    char names[1024];
    size_t off = 0;
    names[0] = '\0';
    for (size_t i = 0; i < nc; i++) {
        int k = close_count(a, c[i].name) + 1;
        if (k < a->cfg.wait_count) {
            snprintf(next[nnext].name, sizeof next[nnext].name, "%s", c[i].name);
            next[nnext++].n = k;
            continue;
        }
        c[nfirm++] = c[i];   /* firmly close; nfirm <= i */
        if (off < sizeof names)
            off += (size_t)snprintf(names + off, sizeof names - off, "%s%s%s", off ? ", " : "", c[i].name,
                                    c[i].idle < 0 ? " (not connected yet)" : "");
    }
    free(a->counts);
    a->counts = next;
    a->ncounts = nnext;
    if (nfirm) {
        herd_log(a->env, HERD_LOG_INFO, "adaptive: scaling down from %d to %d workers after %d agreeing "
                 "intervals: %s; retiring %s", size, size - (int)nfirm, a->cfg.wait_count, why, names);
        a->floor = 0;
        for (size_t i = 0; i < nfirm; i++) {
            char name[64];
            snprintf(name, sizeof name, "%s", c[i].name);   /* c points into l and a->info */
            retire_one(a, name);
        }
    } else if (nc) {
        herd_log(a->env, HERD_LOG_DEBUG, "adaptive: target %d < %d workers (%s); %zu to close, waiting "
                 "for %d agreeing intervals", target, size, why, nc, a->cfg.wait_count);
    }
    free(c);
out:
    herd_sched_load_free(&l);
}

/* ---- the thread ---- */
static void abs_time(double t, struct timespec *ts)
{
    double whole = floor(t);
    ts->tv_sec = (time_t)whole;
    ts->tv_nsec = (long)((t - whole) * 1e9);
    if (ts->tv_nsec >= 1000000000L) { ts->tv_sec++; ts->tv_nsec -= 1000000000L; }
}

static void *adaptive_main(void *arg)
{
    herd_adaptive *a = arg;
    double gap = herd_dmin(POKE_GAP_S, a->cfg.interval);
    double next = herd_now(), last_poke = -1e9;   /* the first decision at once */
    pthread_mutex_lock(&a->mu);
    while (!a->stop) {
        double now = herd_now();
        if (now >= next) {
            pthread_mutex_unlock(&a->mu);
            atomic_store(&a->poked, 0);
            decide(a, 1);
            pthread_mutex_lock(&a->mu);
            next += a->cfg.interval;
            if (next < herd_now()) next = herd_now() + a->cfg.interval;   /* no catching up */
            continue;
        }
        int poked = atomic_load(&a->poked);
        if (poked && now >= last_poke + gap) {
            pthread_mutex_unlock(&a->mu);
            atomic_store(&a->poked, 0);
            /* scale-up only: skip the snapshot when the cluster is at maximum */
            if (a->cfg.maximum < 0 || a->ops->nworkers(a->s, NULL) < a->cfg.maximum) decide(a, 0);
            last_poke = herd_now();
            pthread_mutex_lock(&a->mu);
            continue;
        }
        struct timespec ts;
        abs_time(poked && last_poke + gap < next ? last_poke + gap : next, &ts);
        pthread_cond_timedwait(&a->cv, &a->mu, &ts);
    }
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

void herd_adaptive_poke(herd_adaptive *a)
{
    if (!a || atomic_exchange(&a->poked, 1)) return;
    pthread_mutex_lock(&a->mu);
    pthread_cond_signal(&a->cv);
    pthread_mutex_unlock(&a->mu);
}

static int atp_send(void *ud, herd_submit_spec *spec)
{
    herd_adaptive *a = ud;
    int submit = spec->op == OP_SUBMIT;
    int rc = a->ops->tp->send(a->s, spec);
    if (!rc && submit) herd_adaptive_poke(a);
    return rc;
}

const herd_transport herd_adaptive_tp = { atp_send, NULL };

int herd_adaptive_start(herd_adaptive **out, const herd_adaptive_cfg *cfg, const herd_sched_ops *ops, void *s,
                        const herd_provider *prov, herd_cluster *cluster,
                        const herd_cluster_env *env, herd_err *err)
{
    *out = NULL;
    if (!cfg || !ops || !s || !prov || !cluster)
        return herd_err_set(err, HERD_EARG, "adaptive: configuration, scheduler, provider and cluster are required");
    if (!prov->scale_up || !prov->retire || !prov->status)
        return herd_err_set(err, HERD_EPROVIDER, "adapt_kwargs: provider %s cannot scale (its %s hook is NULL)",
                            prov->name, !prov->scale_up ? "scale_up" : !prov->retire ? "retire" : "status");
    herd_adaptive *a = calloc(1, sizeof *a);
    if (!a) return herd_err_set(err, -ENOMEM, "adaptive: out of memory");
    a->cfg = *cfg;
    if (cfg->fixed) {                 /* a nanny: maximum is minimum, deaths seen within NANNY_INTERVAL_S */
        a->cfg.maximum = cfg->minimum;
        a->cfg.interval = NANNY_INTERVAL_S;
    }
    a->ops = ops;
    a->s = s;
    a->prov = prov;
    a->cluster = cluster;
    a->env = env;
    a->tpw = 1;
    atomic_init(&a->poked, 0);
    a->noted_target = a->noted_size = -1;
    if (!(a->info = calloc(64, sizeof *a->info))) { free(a); return herd_err_set(err, -ENOMEM, "adaptive: out of memory"); }
    a->capinfo = 64;
    pthread_mutex_init(&a->mu, NULL);
    pthread_mutex_init(&a->join_mu, NULL);
    herd_cond_init_monotonic(&a->cv);
    char max[32];
    if (cfg->maximum < 0) snprintf(max, sizeof max, "none");
    else snprintf(max, sizeof max, "%d", cfg->maximum);
    if (cfg->fixed)
        herd_log(env, HERD_LOG_DEBUG, "nanny: keeping %s at %d workers (dead workers are replaced)", prov->name,
                 cfg->minimum);
    else
        herd_log(env, HERD_LOG_INFO, "adaptive: scaling %s between minimum %d and maximum %s (interval %gs, "
                 "wait_count %d, target_duration %gs)", prov->name, cfg->minimum, max, cfg->interval,
                 cfg->wait_count, cfg->target_duration);
    int rc = pthread_create(&a->thread, NULL, adaptive_main, a);
    if (rc) {
        pthread_cond_destroy(&a->cv);
        pthread_mutex_destroy(&a->mu);
        pthread_mutex_destroy(&a->join_mu);
        free(a->info);
        free(a);
        return herd_err_set(err, -rc, "adaptive: cannot start its thread: %s", strerror(rc));
    }
    *out = a;
    return 0;
}

void herd_adaptive_halt(herd_adaptive *a)
{
    if (!a) return;
    pthread_mutex_lock(&a->mu);
    a->stop = 1;
    pthread_cond_signal(&a->cv);
    pthread_mutex_unlock(&a->mu);
    pthread_mutex_lock(&a->join_mu);
    if (!a->joined) {
        pthread_join(a->thread, NULL);
        a->joined = 1;
    }
    pthread_mutex_unlock(&a->join_mu);
}

void herd_adaptive_stop(herd_adaptive *a)
{
    if (!a) return;
    herd_adaptive_halt(a);
    if (a->nret)
        herd_log(a->env, HERD_LOG_DEBUG, "adaptive: stopped with %zu worker(s) still draining; the cluster's "
                 "close stops them", a->nret);
    free(a->counts);
    free(a->ret);
    free(a->info);
    free(a->seen);
    pthread_cond_destroy(&a->cv);
    pthread_mutex_destroy(&a->mu);
    pthread_mutex_destroy(&a->join_mu);
    free(a);
}
