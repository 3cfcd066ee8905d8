/* core/sched_count.c — the connected counts: how many workers (and their
 * threads) are connected and not closing, as herd_sched's waiters and the
 * remote clients (WORKERS) see them. Recounted wherever a worker joins,
 * leaves, starts closing or stops (sched_workers.c, sched_retire.c,
 * sched_control.c). Calls no other scheduler file. */
#include "sched_int.h"

void sch_worker_counts(herd_sched *s)
{
    int n = 0, th = 0;
    for (sworker *w = s->workers; w; w = w->next)
        if (w->hello && w->role == ROLE_WORKER && !w->closing) { n++; th += w->nthreads; }
    pthread_mutex_lock(&s->w_mu);
    int changed = s->nworkers != n || s->nthreads != th;
    s->nworkers = n;
    s->nthreads = th;
    pthread_cond_broadcast(&s->w_cv);
    pthread_mutex_unlock(&s->w_mu);
    if (!changed) return;
    herd_msg_workers m = { n, th };
    for (sworker *c = s->workers; c; c = c->next) {     /* tell remote clients */
        if (!c->hello || c->role != ROLE_CLIENT || !c->conn) continue;
        herd_proto_pack_workers(herd_conn_buf(c->conn), &m);
        herd_conn_end(c->conn);
    }
}
