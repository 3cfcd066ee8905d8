/* core/sched_retire.c — a worker retiring gracefully (adaptive scale-down, a
 * provider's drain, its own lifetime): once nothing runs on it, each value
 * only it holds that is still needed is moved to another worker (ACQUIRE: the
 * recipient fetches it over the data plane and holds it; ACQUIRED says so),
 * as Dask's retire_workers does, and only then is it told to CLOSE. A move
 * that fails (the recipient refuses or leaves, or the moves outlast their
 * deadline) falls back to recomputation from lineage once the worker has
 * left (sched_held.c). A worker that dies instead keeps that path alone. */
#include "sched_int.h"

#include <math.h>

/* The moves' deadline: a floor, plus the bytes at a pace any data plane
 * beats (a recipient that cannot fetch that fast is treated as failed). */
#define MOVE_TIMEOUT_S   30.0
#define MOVE_MIN_RATE    (32.0 * 1048576)   /* bytes per second */

typedef struct move { uint64_t key; sworker *from, *to; int64_t nbytes; struct move *next; } move;

void sch_send_close(sworker *w, const char *reason)
{
    if (!w->conn || w->close_sent) return;
    w->close_sent = 1;
    herd_msg_reason m = { herd_pstr_c(reason) };
    herd_proto_pack_close(herd_conn_buf(w->conn), &m);
    herd_conn_end(w->conn);
}

static int held_only_by(const stask *t, const sworker *w)
{
    return t->holder == w && t->state == T_DONE && t->final == HERD_COMPLETED && sch_needed(t);
}

int64_t sch_needed_bytes(herd_sched *s, const sworker *w)
{
    if (!w->held_bytes) return 0;
    int64_t n = 0;
    size_t i = 0;
    void *v;
    while (kmap_next(&s->tasks, &i, NULL, &v))
        if (held_only_by(v, w)) n += ((stask *)v)->nbytes;
    return n;
}

/* Where one of w's values goes: a worker that serves values, is not
 * retiring or paused, with the fewest bytes held and coming (Dask's
 * RetireWorker picks the recipient with the least memory); one with a free
 * thread first, since the fetch runs on an executor. NULL: none. */
static sworker *recipient(herd_sched *s, const sworker *w)
{
    sworker *best = NULL;
    for (sworker *o = s->workers; o; o = o->next) {
        if (o == w || !o->hello || o->role != ROLE_WORKER || o->closing || o->paused || !o->conn || !o->peer)
            continue;
        if (!best) { best = o; continue; }
        int fo = o->busy < o->nthreads, fb = best->busy < best->nthreads;
        if (fo != fb) { if (fo) best = o; continue; }
        if (o->held_bytes + o->incoming < best->held_bytes + best->incoming) best = o;
    }
    return best;
}

static void fallback(herd_sched *s, move *m, const char *why)
{
    stask *t = kmap_get(&s->tasks, m->key);
    s->met.retire_fallbacks++;
    slog(s, HERD_LOG_WARN, "%s: could not move its value from worker %s to %s (%s); it is recomputed if still "
         "needed after %s leaves", t ? t->run_name : "a value", m->from->name, m->to->name, why, m->from->name);
}

/* The moves off w have all ended: say what moved, then close it. */
static void moves_done(herd_sched *s, sworker *w)
{
    if (w->move_timer) event_del(w->move_timer);
    if (w->nmoved)
        slog(s, HERD_LOG_INFO, "worker %s retiring: moved %d value%s, %.1f MiB, to %s%s in %.3gs", w->name, w->nmoved,
             w->nmoved == 1 ? "" : "s", (double)w->moved_bytes / 1048576, w->move_to ? "worker " : "other workers",
             w->move_to ? w->move_to : "", herd_now() - w->move_started);
    sch_retire_step(s, w);
}

static void move_timeout(evutil_socket_t fd, short what, void *arg)
{
    sworker *w = arg;
    herd_sched *s = w->s;
    for (move **pp = &s->moves; *pp;) {
        move *m = *pp;
        if (m->from != w) { pp = &m->next; continue; }
        *pp = m->next;
        m->to->incoming -= m->nbytes;
        fallback(s, m, "not done by the deadline");
        free(m);
    }
    w->moving = 0;
    moves_done(s, w);
}

/* Plan w's moves and send the ACQUIREs: the number sent; 0 when nothing
 * needs moving; -1 when w is kept (keep_unique and a value has nowhere to
 * go: Dask keeps a worker holding the only copy of needed data). */
static int plan(herd_sched *s, sworker *w)
{
    stask **ts = NULL;
    size_t n = 0, cap = 0, i = 0;
    void *v;
    int64_t bytes = 0;
    while (kmap_next(&s->tasks, &i, NULL, &v)) {
        stask *t = v;
        if (!held_only_by(t, w)) continue;
        if (n == cap) {
            stask **nt = realloc(ts, (cap = cap ? 2 * cap : 16) * sizeof *nt);
            if (!nt) break;
            ts = nt;
        }
        ts[n++] = t;
        bytes += t->nbytes;
    }
    if (!n) { free(ts); return 0; }
    if (!recipient(s, w) && w->keep_unique) {
        slog(s, HERD_LOG_WARN, "worker %s not retired: it holds the only copy of %zu value%s still needed (%.1f MiB) "
             "and no other worker can take them; it stays until they are released or another worker joins",
             w->name, n, n == 1 ? "" : "s", (double)bytes / 1048576);
        free(ts);
        w->closing = 0;
        w->keep_unique = 0;
        sch_worker_counts(s);
        kick(s);
        return -1;
    }
    int sent = 0, spread = 0;
    size_t nowhere = 0;
    sworker *first = NULL;
    for (size_t j = 0; j < n; j++) {
        stask *t = ts[j];
        sworker *to = recipient(s, w);
        move *m = to ? malloc(sizeof *m) : NULL;
        if (!m) { nowhere++; continue; }
        *m = (move){ t->key, w, to, t->nbytes, s->moves };
        s->moves = m;
        to->incoming += t->nbytes;
        herd_msg_acquire a = { t->key, herd_pstr_c(w->peer), t->nbytes };
        herd_proto_pack_acquire(herd_conn_buf(to->conn), &a);
        herd_conn_end(to->conn);
        slog(s, HERD_LOG_DEBUG, "%s: moving its value (%lld bytes) from worker %s to %s", t->run_name,
             (long long)t->nbytes, w->name, to->name);
        if (!first) first = to;
        else if (to != first) spread = 1;
        sent++;
    }
    free(ts);
    if (nowhere) {
        s->met.retire_fallbacks += nowhere;
        slog(s, HERD_LOG_WARN, "worker %s retiring: no other worker can take %zu of its values; they are recomputed "
             "if still needed after it leaves", w->name, nowhere);
    }
    if (!sent) return 0;
    slog(s, HERD_LOG_INFO, "worker %s retiring: moving %d value%s (%.1f MiB) that only it holds to %s%s first",
         w->name, sent, sent == 1 ? "" : "s", (double)bytes / 1048576, spread ? "other workers" : "worker ",
         spread ? "" : first->name);
    w->moving = sent;
    w->move_started = herd_now();
    free(w->move_to);
    w->move_to = spread ? NULL : strdup(first->name);
    double secs = MOVE_TIMEOUT_S + (double)bytes / MOVE_MIN_RATE;
    if (!w->move_timer) w->move_timer = evtimer_new(s->base, move_timeout, w);
    struct timeval tv = { (time_t)secs, (suseconds_t)((secs - floor(secs)) * 1e6) };
    if (w->move_timer) evtimer_add(w->move_timer, &tv);
    return sent;
}

void sch_retire_step(herd_sched *s, sworker *w)
{
    if (!w->closing || w->close_sent || w->running.len || w->stuck || w->moving) return;
    /* values still coming to it (it was a recipient before it was drained):
     * they are its own to move once they have arrived */
    if (w->incoming > 0 && !w->planned && !s->closing_all && w->conn) return;
    if (!w->planned && !s->closing_all && w->conn) {
        w->planned = 1;
        int rc = plan(s, w);
        if (rc < 0) { w->planned = 0; return; }     /* kept */
        if (rc > 0) return;                          /* ACQUIREd: CLOSE when they are answered */
    }
    sch_send_close(w, "retired");
}

/* Tell t's readers that its value is now at v's peer server. */
static void tell_readers(herd_sched *s, stask *t, sworker *v)
{
    if (t->owner_released) return;
    if (t->fut && s->local) herd_client_deliver_held(s->local, t->fut, v->peer, NULL);
    else if (t->owner && t->owner->conn) {
        herd_msg_held m = { t->key, herd_pstr_c(v->peer), herd_pstr_c(NULL) };
        herd_proto_pack_held(herd_conn_buf(t->owner->conn), &m);
        herd_conn_end(t->owner->conn);
    }
}

void sch_on_acquired(herd_sched *s, sworker *v, const herd_msg_acquired *a)
{
    move *m = NULL;
    for (move **pp = &s->moves; *pp; pp = &(*pp)->next)
        if ((*pp)->key == a->key && (*pp)->to == v) { m = *pp; *pp = m->next; break; }
    stask *t = kmap_get(&s->tasks, a->key);
    if (!m || a->nbytes < 0 || !t || t->holder != m->from || !sch_needed(t)) {
        /* a move dropped meanwhile (its source died, the value was released):
         * nobody reads the recipient's copy */
        if (a->nbytes >= 0 && (!t || t->holder != v) && v->conn) {
            herd_msg_key k = { a->key };
            herd_proto_pack_free(herd_conn_buf(v->conn), &k);
            herd_conn_end(v->conn);
        }
        if (!m) return;
        v->incoming -= m->nbytes;
        if (a->nbytes < 0) {
            char *why = herd_pstr_dup(a->error);
            fallback(s, m, why ? why : "the recipient did not say why");
            free(why);
        }
    } else {
        v->incoming -= m->nbytes;
        m->from->held_bytes -= t->nbytes;
        t->holder = v;
        v->held_bytes += t->nbytes;
        m->from->nmoved++;
        m->from->moved_bytes += t->nbytes;
        s->met.retire_moved++;
        s->met.retire_moved_bytes += (uint64_t)t->nbytes;
        tell_readers(s, t, v);
    }
    sworker *from = m->from;
    free(m);
    if (from->moving > 0 && --from->moving == 0) moves_done(s, from);
    kick(s);                                         /* v, if closing, may go on now */
}

void sch_retire_lost(herd_sched *s, sworker *w)
{
    sworker **done = NULL;
    size_t nd = 0;
    for (move **pp = &s->moves; *pp;) {
        move *m = *pp;
        if (m->from != w && m->to != w) { pp = &m->next; continue; }
        *pp = m->next;
        if (m->from == w) m->to->incoming -= m->nbytes;      /* its ACQUIRED, if any, gets a FREE */
        else {
            char why[200];
            snprintf(why, sizeof why, "worker %s left", w->name);
            fallback(s, m, why);
            if (m->from->moving > 0 && --m->from->moving == 0) {
                sworker **nd2 = realloc(done, (nd + 1) * sizeof *nd2);
                if (nd2) { done = nd2; done[nd++] = m->from; }
                else m->from->moving = 1;                    /* its deadline closes it */
            }
        }
        free(m);
    }
    w->moving = 0;
    for (size_t i = 0; i < nd; i++) moves_done(s, done[i]);
    free(done);
}

void sch_moves_free(herd_sched *s)
{
    while (s->moves) { move *m = s->moves; s->moves = m->next; free(m); }
}
