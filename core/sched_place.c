/* core/sched_place.c — placement: which worker runs which ready task. The
 * highest-priority ready task that fits a free slot (resources counted at
 * dispatch, `workers` restrictions, a prefetch bounded by the mean duration)
 * goes to the worker holding the most bytes of its inputs, then the least
 * loaded; RUN, the attempt's timeout, and giving a slot back. */
#include "sched_int.h"

#include <math.h>

/* Does an entry of a `workers` list (Dask's: names, hosts or addresses)
 * name w? Its name, its host name (HELLO), the IP address its connection
 * comes from (TCP), or the address where it serves values; a worker on the
 * scheduler's Unix socket is on this host, so "localhost" and "127.0.0.1"
 * name it too. */
static int named(const herd_value *names, const sworker *w)
{
    for (size_t i = 0; i < herd_len(names); i++) {
        const char *n = herd_as_str(herd_at(names, i));
        if (!strcmp(n, w->name) || (w->host && *w->host && !strcmp(n, w->host)) || (w->ip[0] && !strcmp(n, w->ip)) ||
            (w->peer && !strcmp(n, w->peer)) || (w->local && (!strcmp(n, "localhost") || !strcmp(n, "127.0.0.1"))))
            return 1;
    }
    return 0;
}

/* May t run on w? Its workers restriction names w, or allows others while
 * none of the named workers is connected (and not closing). */
int sch_allowed_on(const herd_sched *s, const sworker *w, const stask *t)
{
    if (!t->workers || named(t->workers, w)) return 1;
    if (!t->allow_other) return 0;
    for (const sworker *o = s->workers; o; o = o->next)
        if (o->hello && o->role == ROLE_WORKER && !o->closing && named(t->workers, o)) return 0;
    return 1;
}

/* Do t's resources fit what w has free now (or, with whole, its totals:
 * could w ever run t)? */
int sch_fits_in(const sworker *w, const stask *t, int whole)
{
    for (size_t i = 0; i < herd_len(t->resources); i++) {
        const char *name = herd_key_at(t->resources, i);
        double need = herd_as_float(herd_at(t->resources, i)), avail = -1;
        for (size_t j = 0; j < w->nres; j++)
            if (strcmp(w->res[j].name, name) == 0) avail = whole ? w->res[j].total : w->res[j].avail;
        if (avail < need) return 0;
    }
    return 1;
}

/* t's resources are free on w and its restriction allows w. */
static int fits(const herd_sched *s, const sworker *w, const stask *t) { return sch_allowed_on(s, w, t) && sch_fits_in(w, t, 0); }

void sch_res_take(sworker *w, const herd_value *res, double sign)
{
    for (size_t j = 0; j < w->nres; j++) {
        herd_value *v = herd_map_get(res, w->res[j].name);
        if (v) w->res[j].avail -= sign * herd_as_float(v);
    }
}

static int capacity(const herd_sched *s, const sworker *w, double now)
{
    int prefetch;
    /* durations unknown yet, or long: no prefetch, so priority order is exact.
     * Nor onto a worker that is not streaming results right now (its threads
     * may be held by long tasks while others sit idle). */
    if (s->avg_dur < 0 || s->avg_dur > 0.005 || now - w->last_done > herd_dmax(0.005, 20 * s->avg_dur))
        prefetch = 0;
    else prefetch = w->nthreads * (int)herd_dmin(256.0, 0.005 / herd_dmax(s->avg_dur, 1e-6));
    return w->nthreads + prefetch - w->busy;
}

static stask *best_for(herd_sched *s, sworker *w)
{
    stask *a = s->hlen ? s->heap[0] : NULL, *b = NULL;
    if (w->busy < w->nthreads)
        for (size_t i = 0; i < s->rlen && !b; i++)
            if (fits(s, w, s->rlist[i])) b = s->rlist[i];
    if (!a) return b;
    if (!b) return a;
    return before(a, b) ? a : b;
}

static void timeout_cb(evutil_socket_t fd, short what, void *arg);

/* RUN's inputs: where each held input of t is (NULL: none). */
static herd_value *inputs_of(herd_sched *s, const stask *t)
{
    if (!t->nins) return NULL;
    herd_value *in = herd_array();
    for (size_t i = 0; in && i < t->nins; i++) {
        stask *d = kmap_get(&s->tasks, t->ins[i]);
        if (d && d->holder && d->holder->peer)
            herd_array_push(in, herd_tuple("Is", (int64_t)t->ins[i], d->holder->peer));
    }
    return in;
}

static void assign(herd_sched *s, stask *t, sworker *w)
{
    herd_value *inputs = inputs_of(s, t);
    /* a result may stay on the worker when it serves values and the cluster
     * holds results (data_transfer is not inline): every reader (the
     * in-process client, a task's sub-task client, a remote client, a
     * dependent) fetches it, directly or relayed */
    herd_msg_run m = { t->key, herd_pstr_c(t->task), t->args, t->attempt, herd_pstr_c(t->run_name), t->tags,
                       inputs, w->peer && s->cfg.data_transfer != HERD_DT_INLINE };
    msgpack_sbuffer *sb = herd_conn_buf(w->conn);
    size_t before = sb->size;
    int rc = herd_proto_pack_run(sb, &m);
    herd_value_free(inputs);
    if (rc) {   /* dependency results nested it too deep */
        sch_finalize(s, t, HERD_FAILED, "arguments nest too deeply to send to a worker");
        return;
    }
    if (sb->size - before > HERD_MAX_DATA) {   /* dependency results made it too large: this task fails */
        char why[200];
        snprintf(why, sizeof why, "arguments of %zu bytes (with their dependencies' results) exceed the %zu-byte "
                 "limit on a task's data", sb->size - before, (size_t)HERD_MAX_DATA);
        sb->size = before;
        sch_finalize(s, t, HERD_FAILED, why);          /* takes it off the ready queue */
        return;
    }
    sch_unready(s, t);
    herd_conn_end(w->conn);
    set_state(s, t, T_RUNNING);
    t->worker = w;
    t->seceded = 0;
    t->started = herd_now();
    for (size_t i = 0; i < t->nins; i++) {          /* inputs held elsewhere: fetched from a peer */
        stask *d = kmap_get(&s->tasks, t->ins[i]);
        if (d && d->holder && d->holder != w) { s->met.transfers++; s->met.transfer_bytes += (uint64_t)d->nbytes; }
    }
    w->busy++;
    if (t->resources) sch_res_take(w, t->resources, 1);
    kmap_put(&w->running, t->key, t);
    if (t->timeout > 0) {
        if (!t->timer) t->timer = evtimer_new(s->base, timeout_cb, t);
        else { event_del(t->timer); event_assign(t->timer, s->base, -1, 0, timeout_cb, t); }
        struct timeval tv = { (time_t)t->timeout, (suseconds_t)((t->timeout - floor(t->timeout)) * 1e6) };
        evtimer_add(t->timer, &tv);
    }
    if (t->fut && s->local) herd_client_deliver(s->local, t->fut, HERD_SCHEDULED, NULL, NULL);
    else sch_tell_owner(t, HERD_SCHEDULED);
}

static double load(const sworker *w) { return (double)w->busy / w->nthreads; }

/* Bytes of t's held inputs that w holds. */
static int64_t local_bytes(herd_sched *s, const stask *t, const sworker *w)
{
    int64_t b = 0;
    for (size_t i = 0; i < t->nins; i++) {
        stask *d = kmap_get(&s->tasks, t->ins[i]);
        if (d && d->holder == w) b += d->nbytes + 1;
    }
    return b;
}

/* Between two workers with a free slot for t: the one holding more of its
 * inputs, then the less loaded. */
static int better_for(herd_sched *s, const stask *t, const sworker *w, const sworker *than)
{
    if (t->nins) {
        int64_t a = local_bytes(s, t, w), b = local_bytes(s, t, than);
        if (a != b) return a > b;
    }
    return load(w) < load(than);
}

void sch_dispatch_cb(evutil_socket_t fd, short what, void *arg)
{
    herd_sched *s = arg;
    s->dispatch_pending = 0;
    sch_compact(s);
    double now = herd_now();           /* once per pass, not per worker and task */
    for (sworker *w = s->workers, *next; w; w = next) {
        next = w->next;
        if (w->closing && !w->close_sent && !w->moving) sch_retire_step(s, w);
    }
    while (s->hlen || s->rlen) {
        sworker *bw = NULL;
        stask *bt = NULL;
        for (sworker *w = s->workers; w; w = w->next) {
            if (!w->hello || w->role != ROLE_WORKER || w->closing || w->paused || capacity(s, w, now) <= 0) continue;
            stask *t = best_for(s, w);
            if (!t) continue;
            if (!bt || (t != bt && before(t, bt)) || (t == bt && better_for(s, t, w, bw))) { bt = t; bw = w; }
        }
        if (!bt) break;
        assign(s, bt, bw);
    }
}

/* The attempt running on w ends: give back the slot and resources. */
void sch_unassign(herd_sched *s, sworker *w, stask *t)
{
    kmap_del(&w->running, t->key);
    if (!t->seceded) w->busy--;
    if (t->resources) sch_res_take(w, t->resources, -1);
    t->worker = NULL;
    if (t->timer && t->state == T_RUNNING) event_del(t->timer);
    if (!w->running.len) w->idle_since = herd_now();
    kick(s);                              /* a closing worker's retire step runs there, after this DONE's value is recorded */
}

static void timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    stask *t = arg;
    herd_sched *s = t->s;
    if (t->state != T_RUNNING || !t->worker) return;
    sworker *w = t->worker;
    /* the thread is still busy with it: keep the slot and resources occupied
     * until the worker reports the attempt done */
    stuck *st = calloc(1, sizeof *st);
    if (st) {
        st->key = t->key;
        st->attempt = t->attempt;
        st->resources = t->resources ? herd_value_copy(t->resources) : NULL;
        st->next = w->stuck;
        w->stuck = st;
    }
    kmap_del(&w->running, t->key);
    t->worker = NULL;
    char msg[128];
    snprintf(msg, sizeof msg, "timed out after %.3gs on worker %s", t->timeout, w->name);
    sch_attempt_failed(s, t, msg);
}
