/* core/sched_held.c — the scheduler's side of held values (results kept on
 * the worker that computed them): when a holder leaves, what it held and is
 * still needed is recomputed from its task (lineage), or its readers are told
 * it is lost; an attempt that could not fetch an input (MISSING); the
 * in-process client's pull of its held values before the workers close. The
 * relay is sched_relay.c's. */
#include "sched_int.h"

#include <math.h>

/* t (running, or ready) could not read dep's value, which is being
 * recomputed: t waits for it again (its need on dep stays counted). */
static void rewait(herd_sched *s, stask *t, stask *dep)
{
    sch_unready(s, t);
    if (sch_wait_on(dep, t)) { sch_finalize(s, t, HERD_CRASHED, "scheduler out of memory"); return; }
    set_state(s, t, T_WAITING);
}

/* t's value was held by worker wname, which left, and is still needed: run
 * t again. 0, or -1 when it cannot be (an input it read was released). */
static int recompute(herd_sched *s, stask *t, const char *wname)
{
    uint64_t *keys = NULL;
    size_t nk = 0;
    if (herd_value_collect_futrefs(t->args, &keys, &nk)) return -1;
    for (size_t i = 0; i < nk; i++) {
        stask *d = kmap_get(&s->tasks, keys[i]);
        if (!d || (d->state == T_DONE && (d->final != HERD_COMPLETED || !d->holder))) { free(keys); return -1; }
    }
    slog(s, HERD_LOG_WARN, "%s: its result was on worker %s, which left; recomputing it", t->run_name, wname);
    set_state(s, t, T_WAITING);
    t->final = HERD_PENDING;
    int rc = 0;
    for (size_t i = 0; i < nk && !rc; i++) {
        stask *d = kmap_get(&s->tasks, keys[i]);
        if (sch_add_in(t, keys[i]) == 0) d->nwaiting_dependents++;
        if (d->state != T_DONE) rc = sch_wait_on(d, t);
    }
    free(keys);
    /* dependents about to read it wait for it again (running ones say
     * MISSING when their fetch fails) */
    size_t i = 0;
    void *v;
    stask **again = NULL;
    size_t na = 0;
    while (kmap_next(&s->tasks, &i, NULL, &v)) {
        stask *u = v;
        if (u->state != T_READY && u->state != T_RETRY) continue;
        for (size_t j = 0; j < u->nins; j++)
            if (u->ins[j] == t->key) {
                stask **n = realloc(again, (na + 1) * sizeof *n);
                if (n) { again = n; again[na++] = u; }
                break;
            }
    }
    for (size_t j = 0; j < na; j++) rewait(s, again[j], t);
    free(again);
    if (rc) { sch_finalize(s, t, HERD_CRASHED, "scheduler out of memory"); return 0; }
    if (!t->ndeps_waiting) sch_materialize(s, t);
    return 0;
}

static int by_seq(const void *a, const void *b)
{
    const stask *x = *(stask *const *)a, *y = *(stask *const *)b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Worker w left: the values it held are gone. Those still needed (a future
 * not released, a dependent) are recomputed, oldest first, so a lost input
 * is running again before what reads it. */
void sch_lost_values(herd_sched *s, sworker *w)
{
    stask **lost = NULL;
    size_t n = 0, cap = 0, i = 0;
    void *v;
    while (kmap_next(&s->tasks, &i, NULL, &v)) {
        stask *t = v;
        if (t->holder != w) continue;
        w->held_bytes -= t->nbytes;
        t->holder = NULL;
        if (n == cap) {
            stask **nl = realloc(lost, (cap = cap ? 2 * cap : 16) * sizeof *nl);
            if (!nl) { cap = n; continue; }
            lost = nl;
        }
        t->pins++;
        lost[n++] = t;
    }
    if (n) qsort(lost, n, sizeof *lost, by_seq);
    for (size_t j = 0; j < n; j++) {
        stask *t = lost[j];
        t->pins--;
        if (!sch_needed(t) || s->closing_all) {
            if (sch_releasable(t)) sch_forget(s, t);
            continue;
        }
        if (recompute(s, t, w->name) == 0) continue;
        char msg[600];
        snprintf(msg, sizeof msg, "its value was on worker %s, which left, and cannot be recomputed (an input "
                 "it read was released)", w->name);
        slog(s, HERD_LOG_ERROR, "%s: %s", t->run_name, msg);
        t->final = HERD_CRASHED;
        count_end(t);
        free(t->error);
        t->error = strdup(msg);
        if (t->fut && s->local) herd_client_deliver_held(s->local, t->fut, NULL, msg);
        else if (t->owner && t->owner->conn && t->owner->role == ROLE_WORKER) {
            herd_msg_held m = { t->key, herd_pstr_c(NULL), herd_pstr_c(msg) };
            herd_proto_pack_held(herd_conn_buf(t->owner->conn), &m);
            herd_conn_end(t->owner->conn);
        }
    }
    free(lost);
}

/* An attempt could not fetch one of its inputs. */
void sch_on_missing(herd_sched *s, sworker *w, const herd_msg_missing *m)
{
    stask *t = kmap_get(&w->running, m->key);
    if (!t || t->attempt != m->attempt) return;
    sch_unassign(s, w, t);
    stask *d = kmap_get(&s->tasks, m->input);
    char msg[600];
    if (!d || (d->state == T_DONE && (d->final != HERD_COMPLETED || !d->holder))) {
        snprintf(msg, sizeof msg, "its input %s was lost and cannot be recomputed", d ? d->run_name : "(released)");
        sch_finalize(s, t, HERD_FAILED, msg);
        return;
    }
    if (d->state != T_DONE) { rewait(s, t, d); return; }
    /* its holder looks alive (its loss may not have been noticed yet): again
     * shortly, a bounded number of times */
    if (++t->missing > 8) {
        snprintf(msg, sizeof msg, "could not fetch its input %s from worker %s (8 attempts)", d->run_name,
                 d->holder->name);
        sch_finalize(s, t, HERD_FAILED, msg);
        return;
    }
    double delay = 0.05 * herd_pow2(t->missing - 1);
    set_state(s, t, T_RETRY);
    if (!t->timer) t->timer = evtimer_new(s->base, sch_retry_cb, t);
    else { event_del(t->timer); event_assign(t->timer, s->base, -1, 0, sch_retry_cb, t); }
    struct timeval tv = { (time_t)delay, (suseconds_t)((delay - floor(delay)) * 1e6) };
    evtimer_add(t->timer, &tv);
}

/* Before every worker leaves at the end: the in-process client fetches the
 * held values of its futures (read after the flow run, as inline ones are). */
void sch_pull_held(herd_sched *s)
{
    size_t i = 0;
    void *v;
    while (kmap_next(&s->tasks, &i, NULL, &v)) {
        stask *t = v;
        if (!t->holder || !t->fut || !s->local || t->owner_released || t->state != T_DONE) continue;
        herd_err e;
        e.msg[0] = '\0';
        if (herd_client_pull(t->fut, &e)) slog(s, HERD_LOG_WARN, "%s: %s", t->run_name, e.msg);
    }
}
