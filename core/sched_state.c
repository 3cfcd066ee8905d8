/* core/sched_state.c — a task's states on the scheduler: the ready queue (a
 * heap by priority then submission order, and the scanned list of tasks with
 * resources or a `workers` restriction), dependencies and the results they
 * read, completion, failure (transitively to dependents), retries, release
 * and cancel, and the task records' lifetime (FREE to a holder when a held
 * value is forgotten). Calls no other scheduler file. */
#include "sched_int.h"

#include <errno.h>
#include <math.h>

static void hswap(herd_sched *s, size_t i, size_t j)
{
    stask *t = s->heap[i]; s->heap[i] = s->heap[j]; s->heap[j] = t;
    s->heap[i]->hidx = i; s->heap[j]->hidx = j;
}

static void hup(herd_sched *s, size_t i)
{
    while (i && before(s->heap[i], s->heap[(i - 1) / 2])) { hswap(s, i, (i - 1) / 2); i = (i - 1) / 2; }
}

static void hdown(herd_sched *s, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < s->hlen && before(s->heap[l], s->heap[m])) m = l;
        if (r < s->hlen && before(s->heap[r], s->heap[m])) m = r;
        if (m == i) return;
        hswap(s, i, m);
        i = m;
    }
}

/* Ready tasks with resources or a workers restriction sit in the sorted
 * list each worker scans for one it can take; the others in the heap. */
static int scanned(const stask *t)
{
    return (t->resources && herd_len(t->resources)) || t->workers;
}

void sch_make_ready(herd_sched *s, stask *t)
{
    set_state(s, t, T_READY);
    t->no_worker_since = 0;
    if (scanned(t)) {
        if (s->rlen == s->rcap) {
            size_t nc = s->rcap ? 2 * s->rcap : 16;
            stask **n = realloc(s->rlist, nc * sizeof *n);
            if (!n) { sch_finalize(s, t, HERD_CRASHED, "scheduler out of memory"); return; }
            s->rlist = n; s->rcap = nc;
        }
        size_t i = s->rlen;
        while (i > 0 && before(t, s->rlist[i - 1])) { s->rlist[i] = s->rlist[i - 1]; i--; }
        s->rlist[i] = t;
        s->rlen++;
    } else {
        if (s->hlen == s->hcap) {
            size_t nc = s->hcap ? 2 * s->hcap : 256;
            stask **n = realloc(s->heap, nc * sizeof *n);
            if (!n) { sch_finalize(s, t, HERD_CRASHED, "scheduler out of memory"); return; }
            s->heap = n; s->hcap = nc;
        }
        t->hidx = s->hlen;
        s->heap[s->hlen++] = t;
        hup(s, t->hidx);
    }
    kick(s);
}

void sch_unready(herd_sched *s, stask *t)
{
    if (t->state != T_READY) return;
    if (scanned(t)) {
        for (size_t i = 0; i < s->rlen; i++)
            if (s->rlist[i] == t) {
                memmove(&s->rlist[i], &s->rlist[i + 1], (s->rlen - i - 1) * sizeof *s->rlist);
                s->rlen--;
                break;
            }
    } else {
        size_t i = t->hidx;
        s->hlen--;
        if (i != s->hlen) {
            s->heap[i] = s->heap[s->hlen];
            s->heap[i]->hidx = i;
            hdown(s, i);
            hup(s, i);
        }
    }
}

void sch_task_free(stask *t)
{
    if (t->timer) event_free(t->timer);
    free(t->task);
    free(t->run_name);
    herd_value_free(t->args);
    herd_value_free(t->resources);
    herd_value_free(t->tags);
    herd_value_free(t->workers);
    herd_value_free(t->result);
    free(t->error);
    free(t->deps);
    free(t->ins);
    free(t->dependents);
    if (t->fut) herd_future_unref(t->fut);
    free(t);
}

/* The holder deletes t's value: nobody can read it any more. */
static void free_held(stask *t)
{
    if (t->holder) t->holder->held_bytes -= t->nbytes;
    if (t->holder && t->holder->conn) {
        herd_msg_key k = { t->key };
        herd_proto_pack_free(herd_conn_buf(t->holder->conn), &k);
        herd_conn_end(t->holder->conn);
    }
    t->holder = NULL;
}

void sch_forget(herd_sched *s, stask *t)
{
    s->nstate[t->state]--;
    if (t->grp) t->grp->n[t->state]--;
    kmap_del(&s->tasks, t->key);
    sch_unready(s, t);
    free_held(t);
    t->pins++;                 /* its inputs' release must not come back to it */
    sch_release_ins(s, t);
    sch_task_free(t);
}

int sch_releasable(const stask *t)
{
    return t->state == T_DONE && (t->owner_released || (!t->fut && !t->owner)) && t->nwaiting_dependents == 0 &&
           t->pins == 0;
}

/* A waiting dependent no longer needs dep (it materialized or ended). */
static void drop_dependent(herd_sched *s, uint64_t depkey)
{
    stask *dep = kmap_get(&s->tasks, depkey);
    if (!dep || !dep->nwaiting_dependents) return;
    if (--dep->nwaiting_dependents == 0) {
        if (dep->result_at_client || (!dep->owner && !dep->fut) || dep->owner_released) {
            herd_value_free(dep->result);
            dep->result = NULL;
        }
        if (sch_releasable(dep)) sch_forget(s, dep);
    }
}

/* t needs key's held value until it completes: 0, or -1 when it already
 * counted that need (or no memory), which the caller then drops. */
int sch_add_in(stask *t, uint64_t key)
{
    for (size_t i = 0; i < t->nins; i++)
        if (t->ins[i] == key) return -1;
    uint64_t *n = realloc(t->ins, (t->nins + 1) * sizeof *n);
    if (!n) return -1;
    t->ins = n;
    t->ins[t->nins++] = key;
    return 0;
}

/* keep_held: dependencies whose value is held on a worker stay needed (moved
 * to t->ins) until t has run; the others are dropped. */
void sch_release_deps(herd_sched *s, stask *t, int keep_held)
{
    uint64_t *deps = t->deps;
    size_t n = t->ndeps;
    t->deps = NULL;
    t->ndeps = 0;
    for (size_t i = 0; i < n; i++) {
        stask *d = keep_held ? kmap_get(&s->tasks, deps[i]) : NULL;
        if (d && d->state == T_DONE && d->holder && sch_add_in(t, deps[i]) == 0) continue;
        drop_dependent(s, deps[i]);
    }
    free(deps);
}

void sch_release_ins(herd_sched *s, stask *t)
{
    uint64_t *ins = t->ins;
    size_t n = t->nins;
    t->ins = NULL;
    t->nins = 0;
    for (size_t i = 0; i < n; i++) drop_dependent(s, ins[i]);
    free(ins);
}

static int fill_dep(void *ud, uint64_t key, herd_value **out)
{
    stask *dep = kmap_get(&((stask *)ud)->s->tasks, key);
    if (!dep || dep->state != T_DONE || dep->final != HERD_COMPLETED) return -HERD_EARG;
    if (dep->holder) *out = herd_futref(key);        /* the worker reads it from its holder */
    else if (dep->result) *out = herd_value_copy(dep->result);
    else if (dep->fut) *out = herd_client_fetch(dep->fut);
    else *out = herd_nil();
    return *out ? 0 : -ENOMEM;
}

/* All dependencies are done: put their results into the arguments. */
void sch_materialize(herd_sched *s, stask *t)
{
    int rc = herd_value_replace_futrefs(t->args, fill_dep, t);
    sch_release_deps(s, t, !rc);
    if (rc) { sch_finalize(s, t, HERD_FAILED, "a dependency's result is no longer available"); return; }
    sch_make_ready(s, t);
}

static void deliver(herd_sched *s, stask *t)
{
    count_end(t);
    if (t->owner_released) return;
    if (t->fut && s->local && t->final == HERD_COMPLETED && t->holder) {
        herd_client_deliver_held(s->local, t->fut, t->holder->peer, NULL);
    } else if (t->fut && s->local) {
        herd_value *v = NULL;
        if (t->final == HERD_COMPLETED) {
            if (t->nwaiting_dependents) v = herd_value_copy(t->result);
            else { v = t->result; t->result = NULL; }
            t->result_at_client = 1;
        }
        herd_client_deliver(s->local, t->fut, t->final, v, t->error);
        /* a value that was held, lost, and whose recomputation failed: the
         * future completed earlier and waits for a new copy; tell it */
        if (t->final != HERD_COMPLETED) herd_client_deliver_held(s->local, t->fut, NULL, t->error);
    } else if (t->owner && t->owner->conn && (t->holder || (t->final != HERD_COMPLETED && t->nbytes))) {
        /* a held result of a sub-task or a remote client's task: where it is
         * (or, after a failed recomputation, that it is lost) */
        herd_msg_held m = { t->key, herd_pstr_c(t->holder ? t->holder->peer : NULL), herd_pstr_c(t->error) };
        herd_proto_pack_held(herd_conn_buf(t->owner->conn), &m);
        herd_conn_end(t->owner->conn);
        if (t->final != HERD_COMPLETED) {          /* and its state, for one never completed before */
            herd_msg_result r = { t->key, t->final, NULL, herd_pstr_c(t->error) };
            herd_proto_pack_result(herd_conn_buf(t->owner->conn), &r);
            herd_conn_end(t->owner->conn);
        }
    } else if (t->owner && t->owner->conn) {
        herd_msg_result m = { t->key, t->final, t->result, herd_pstr_c(t->error) };
        if (herd_proto_pack_result(herd_conn_buf(t->owner->conn), &m)) {    /* the value cannot travel */
            m.state = HERD_FAILED;
            m.error = herd_pstr_c("the result could not be encoded for the client");
            herd_proto_pack_result(herd_conn_buf(t->owner->conn), &m);
        }
        herd_conn_end(t->owner->conn);
    }
}

/* t's attempt succeeded: its value v inline, or held by holder (nbytes). */
void sch_complete(herd_sched *s, stask *t, herd_value *v, sworker *holder, int64_t nbytes)
{
    set_state(s, t, T_DONE);
    t->final = HERD_COMPLETED;
    herd_value_free(t->result);
    t->result = v;
    t->holder = holder;
    t->nbytes = nbytes;
    if (holder) holder->held_bytes += nbytes;
    t->missing = 0;
    t->pins++;
    sch_release_ins(s, t);         /* it has read its inputs */
    t->pins--;
    /* wake dependents first, so the client can take the value afterwards;
     * a dependent that materializes may drop the last need of t: pin it */
    t->pins++;
    for (size_t i = 0; i < t->ndependents; i++) {
        stask *d = kmap_get(&s->tasks, t->dependents[i]);
        if (d && d->state == T_WAITING && --d->ndeps_waiting == 0) sch_materialize(s, d);
    }
    free(t->dependents);
    t->dependents = NULL;
    t->ndependents = t->capdependents = 0;
    t->pins--;
    deliver(s, t);
    if (sch_releasable(t)) sch_forget(s, t);
    else if (!t->nwaiting_dependents && (t->result_at_client || t->owner_released)) {
        herd_value_free(t->result);
        t->result = NULL;
    }
}

/* End t (and, transitively, everything waiting on it) in a failed state. */
void sch_finalize(herd_sched *s, stask *t, herd_state st, const char *msg)
{
    stask **work = NULL;
    size_t n = 0, cap = 0;
    char *first = strdup(msg ? msg : "");
    sch_unready(s, t);
    set_state(s, t, T_DONE);
    t->final = st;
    free(t->error);
    t->error = first;
    for (;;) {
        sch_release_deps(s, t, 0);
        t->pins++;
        sch_release_ins(s, t);
        t->pins--;
        for (size_t i = 0; i < t->ndependents; i++) {
            stask *d = kmap_get(&s->tasks, t->dependents[i]);
            if (!d || d->state != T_WAITING) continue;
            set_state(s, d, T_DONE);
            d->final = st == HERD_CANCELLED ? HERD_CANCELLED : HERD_FAILED;
            free(d->error);
            if (asprintf(&d->error, "dependency %s %s: %s", t->run_name, herd_state_name(st), t->error) < 0)
                d->error = NULL;
            if (n == cap) {
                stask **nw = realloc(work, (cap = cap ? 2 * cap : 16) * sizeof *nw);
                if (!nw) break;
                work = nw;
            }
            d->pins++;             /* queued here: others' release_deps must not free it */
            work[n++] = d;
        }
        free(t->dependents);
        t->dependents = NULL;
        t->ndependents = t->capdependents = 0;
        deliver(s, t);
        if (sch_releasable(t)) sch_forget(s, t);
        if (!n) break;
        t = work[--n];
        t->pins--;
    }
    free(work);
}

void sch_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    stask *t = arg;
    if (t->state == T_RETRY) sch_make_ready(t->s, t);
}

/* An attempt failed (the task's error, or a timeout): retry or fail. */
void sch_attempt_failed(herd_sched *s, stask *t, const char *msg)
{
    if (t->retries_left > 0) {
        t->retries_left--;
        double delay = t->retry_delay * herd_pow2(t->attempt);
        t->attempt++;
        slog(s, HERD_LOG_WARN, "%s failed (%s); retry %d in %.3gs", t->run_name, msg, t->attempt, delay);
        set_state(s, t, T_RETRY);
        if (delay <= 0) { sch_make_ready(s, t); return; }
        if (!t->timer) t->timer = evtimer_new(s->base, sch_retry_cb, t);
        else { event_del(t->timer); event_assign(t->timer, s->base, -1, 0, sch_retry_cb, t); }
        struct timeval tv = { (time_t)delay, (suseconds_t)((delay - floor(delay)) * 1e6) };
        evtimer_add(t->timer, &tv);
        return;
    }
    sch_finalize(s, t, HERD_FAILED, msg);
}

/* A remote client's future moves to Scheduled or Running, as an in-process
 * one does (OP_RESULT with a state that is not final, no payload). */
void sch_tell_owner(const stask *t, herd_state st)
{
    if (!t->owner || !t->owner->conn || t->owner_released || t->owner->role != ROLE_CLIENT) return;
    herd_msg_result m = { .key = t->key, .state = st };
    herd_proto_pack_result(herd_conn_buf(t->owner->conn), &m);
    herd_conn_end(t->owner->conn);
}

/* t waits for dep to sch_complete (woken by sch_complete()). 0 or -ENOMEM. */
int sch_wait_on(stask *dep, stask *t)
{
    if (dep->ndependents == dep->capdependents) {
        size_t nc = dep->capdependents ? 2 * dep->capdependents : 4;
        uint64_t *nd = realloc(dep->dependents, nc * sizeof *nd);
        if (!nd) return -ENOMEM;
        dep->dependents = nd;
        dep->capdependents = nc;
    }
    dep->dependents[dep->ndependents++] = t->key;
    t->ndeps_waiting++;
    return 0;
}

void sch_add_task(herd_sched *s, herd_submit_spec *sp, sworker *owner)
{
    stask *t = calloc(1, sizeof *t);
    if (!t) { herd_spec_free(sp); return; }
    t->s = s;
    t->key = sp->key;
    t->seq = ++s->seq;
    t->task = sp->task; sp->task = NULL;
    t->run_name = sp->run_name; sp->run_name = NULL;
    t->args = sp->args; sp->args = NULL;
    t->resources = sp->resources; sp->resources = NULL;
    t->tags = sp->tags; sp->tags = NULL;
    t->workers = sp->workers; sp->workers = NULL;
    t->allow_other = sp->allow_other_workers;
    t->fut = sp->fut; sp->fut = NULL;
    t->priority = sp->priority;
    t->retries_left = sp->retries;
    t->retry_delay = sp->retry_delay;
    t->timeout = sp->timeout;
    t->owner = owner;
    t->state = T_WAITING;
    herd_spec_free(sp);
    if (!t->run_name) t->run_name = strdup(t->task ? t->task : "task");
    if (kmap_get(&s->tasks, t->key) || kmap_put(&s->tasks, t->key, t)) {
        slog(s, HERD_LOG_ERROR, "duplicate or unstorable task key %llu refused", (unsigned long long)t->key);
        if (t->fut && s->local) herd_client_deliver(s->local, t->fut, HERD_CRASHED, NULL, "duplicate task key");
        sch_task_free(t);
        return;
    }
    s->nstate[T_WAITING]++;
    t->grp = herd_metrics_group(&s->met, t->task);
    t->grp->n[T_WAITING]++;
    t->grp->total++;
    uint64_t *keys = NULL;
    size_t nk = 0;
    herd_value_collect_futrefs(t->args, &keys, &nk);
    const char *bad = NULL;
    stask *faileddep = NULL;
    for (size_t i = 0; i < nk; i++) {
        stask *dep = kmap_get(&s->tasks, keys[i]);
        if (!dep) { bad = "a dependency is unknown to the scheduler (released?)"; break; }
        if (dep->state == T_DONE) {
            if (dep->final != HERD_COMPLETED) { faileddep = dep; break; }
            if (!dep->holder) continue;
            /* held on a worker: t needs it kept until t has run */
            uint64_t *nd = realloc(t->deps, (t->ndeps + 1) * sizeof *nd);
            if (!nd) { bad = "out of memory"; break; }
            t->deps = nd;
            t->deps[t->ndeps++] = dep->key;
            dep->nwaiting_dependents++;
            continue;
        }
        if (sch_wait_on(dep, t)) { bad = "out of memory"; break; }
        dep->nwaiting_dependents++;
        uint64_t *nd = realloc(t->deps, (t->ndeps + 1) * sizeof *nd);
        if (!nd) { dep->ndependents--; dep->nwaiting_dependents--; t->ndeps_waiting--; bad = "out of memory"; break; }
        t->deps = nd;
        t->deps[t->ndeps++] = dep->key;
    }
    free(keys);
    if (bad) { sch_finalize(s, t, HERD_FAILED, bad); return; }
    if (faileddep) {
        char msg[1024];
        snprintf(msg, sizeof msg, "dependency %s %s: %s", faileddep->run_name,
                 herd_state_name(faileddep->final), faileddep->error ? faileddep->error : "");
        sch_finalize(s, t, faileddep->final == HERD_CANCELLED ? HERD_CANCELLED : HERD_FAILED, msg);
        return;
    }
    if (!t->ndeps_waiting) sch_materialize(s, t);
}

void sch_on_release(herd_sched *s, uint64_t key, uint32_t owner_id)
{
    stask *t = kmap_get(&s->tasks, key);
    if (!t || (uint32_t)(key >> 40) != owner_id) return;
    t->owner_released = 1;
    if (sch_releasable(t)) { sch_forget(s, t); return; }
    if ((t->state == T_READY || t->state == T_RETRY) && !t->nwaiting_dependents) { sch_forget(s, t); return; }
    if (t->state == T_DONE && !t->nwaiting_dependents) { herd_value_free(t->result); t->result = NULL; }
}

void sch_on_cancel(herd_sched *s, uint64_t key, uint32_t owner_id)
{
    stask *t = kmap_get(&s->tasks, key);
    if (!t || (uint32_t)(key >> 40) != owner_id || t->state == T_DONE) return;
    if (t->state == T_RUNNING && t->worker) {
        /* the thread can't be interrupted: it keeps its slot until it returns */
        sworker *w = t->worker;
        stuck *st = calloc(1, sizeof *st);
        if (st) {
            st->key = t->key; st->attempt = t->attempt;
            st->resources = t->resources ? herd_value_copy(t->resources) : NULL;
            st->next = w->stuck; w->stuck = st;
        }
        kmap_del(&w->running, t->key);
        t->worker = NULL;
    }
    if (t->timer) event_del(t->timer);
    sch_finalize(s, t, HERD_CANCELLED, "cancelled by the client");
}
