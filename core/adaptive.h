/* core/adaptive.h — the cluster's intended size, kept: adaptive scaling (the
 * runner's adapt_kwargs) or, for a fixed cluster, a nanny that replaces dead
 * workers. A thread that, every `interval`, sizes a temporary cluster to the
 * scheduler's load (or to its fixed size),
 * through the provider hooks only (scale_up, retire, status), so every
 * provider gets it. The rules follow Dask's Adaptive / AdaptiveCore and
 * Scheduler.adaptive_target (see adaptive.c). Hidden API, used by runner.c. */
#ifndef HERD_ADAPTIVE_H
#define HERD_ADAPTIVE_H

#include "client.h"
#include "scheduler.h"

typedef struct herd_adaptive herd_adaptive;

/* adapt_kwargs, bound (the schema and the checks across keys, such as
 * maximum >= minimum, are in options.c). */
typedef struct herd_adaptive_cfg {
    int minimum;              /* fewest workers */
    int maximum;              /* most workers; -1: no maximum */
    double interval;          /* seconds between decisions */
    int wait_count;           /* agreeing intervals before a worker is retired */
    double target_duration;   /* seconds the queued work should take */
    /* not an adapt_kwargs key: 1 for a fixed cluster's nanny, which keeps
     * exactly `minimum` workers (dead ones replaced) and never scales down */
    int fixed;
} herd_adaptive_cfg;

/* Start the scaling thread; it decides at once, then every interval. ops
 * and s reach the scheduler (herd_sched_ops_local with a herd_sched, or
 * herd_remote_ops with a herd_remote). The provider must have scale_up,
 * retire and status; s, prov, cluster and env must outlive
 * herd_adaptive_stop. Decisions are logged with their reason through
 * herd_log(env, …). */
int  herd_adaptive_start(herd_adaptive **out, const herd_adaptive_cfg *cfg, const herd_sched_ops *ops, void *s,
                         const herd_provider *prov, herd_cluster *cluster,
                         const herd_cluster_env *env, herd_err *err);
/* Work was submitted: decide now rather than at the next interval (scale-up
 * only; scale-down still waits for wait_count intervals). Cheap, any thread. */
void herd_adaptive_poke(herd_adaptive *a);
/* Stop deciding and join the thread (any thread, more than once; NULL is
 * fine): after it returns no provider hook or scheduler call is made. Call it
 * before the cluster closes (a signal's teardown included). */
void herd_adaptive_halt(herd_adaptive *a);
/* Halt, then free a (NULL is fine). Call before the scheduler stops.
 * Workers still draining are left to the cluster's close. */
void herd_adaptive_stop(herd_adaptive *a);

/* A transport for the flow's client (tp_ud = the herd_adaptive): posts to
 * the scheduler through ops->tp, and pokes on every submit. */
extern const herd_transport herd_adaptive_tp;

/* The number of workers the load asks for (each bringing threads_per_worker
 * threads), clamped to [minimum, maximum]; why (if not NULL) gets the reason
 * in words. Pure: the thread's decision, callable from tests. */
int  herd_adaptive_target(const herd_adaptive_cfg *cfg, const herd_sched_load *load,
                          int threads_per_worker, char *why, size_t cap);

#endif
