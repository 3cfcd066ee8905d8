/* core/scheduler.c — the scheduler. Everything here but the inbox and the worker
 * counters runs on the scheduler's own thread, so task state needs no locks.
 *
 * Rules (stricter than Dask's where its users complain):
 *  - priority is a rule: whenever a slot frees, the highest-priority ready
 *    task that fits it starts; ties go in submission order. Workers get no
 *    more than their free threads plus a prefetch bounded to ~5 ms of work
 *    (by the observed mean task duration), so long tasks get none.
 *  - resources are counted at dispatch and held while the task runs; a task
 *    with resources needs a real free thread (no prefetch).
 *  - a worker that closes its connection or misses heartbeats has its tasks
 *    rescheduled; after allowed_failures deaths they end Crashed.
 *  - results leave the scheduler once their client holds them and no waiting
 *    dependent needs them; a task is forgotten when its client releases it.
 *  - big results stay on the worker that computed them (the holder): the
 *    scheduler keeps their key, size and holder; a dependent gets the
 *    holder's address in RUN (and runs on the holder when it has a slot);
 *    the value is freed on the holder when nobody can read it any more, and
 *    recomputed from its task when the holder dies while it is still needed. */
#include "scheduler.h"
#include "comm.h"
#include "value_int.h"

#include <errno.h>
#include <math.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>
#include <event2/thread.h>

enum { T_WAITING, T_READY, T_RUNNING, T_RETRY, T_DONE };

typedef struct sworker sworker;

typedef struct stask {
    uint64_t key, seq;
    char *task, *run_name;
    herd_value *args;
    int priority;
    herd_value *resources;
    herd_value *tags;          /* array of str or NULL */
    herd_value *workers;       /* names it may run on (array of str), or NULL: any */
    int allow_other;           /* with workers: any worker while none of those is connected */
    int retries_left, attempt, suspicious;
    double retry_delay, timeout, started;
    double no_worker_since;    /* ready with resources no connected worker has; 0: one has */
    int state;
    herd_state final;
    uint64_t *deps;            /* keys this task waits on (registered as dependent) */
    size_t ndeps, ndeps_waiting;
    uint64_t *dependents;      /* keys of waiting tasks that need this result */
    size_t ndependents, capdependents, nwaiting_dependents;
    sworker *worker;
    int seceded;
    int pins;                  /* >0 while the scheduler walks it: not to be forgotten */
    herd_value *result;
    int result_at_client;      /* moved to the in-process future */
    char *error;
    herd_future *fut;          /* in-process owner, or NULL */
    sworker *owner;            /* remote owner (a connection), or NULL */
    int owner_released;
    size_t hidx;               /* heap index while T_READY without resources */
    sworker *holder;           /* holds the result (not inline), or NULL */
    int64_t nbytes;            /* the held result's packed size */
    uint64_t *ins;             /* held inputs it reads: a need counted on each (in
                                  nwaiting_dependents) until it completes or ends */
    size_t nins;
    int missing;               /* attempts that could not fetch an input */
    struct event *timer;
    struct herd_sched *s;
} stask;

typedef struct sres { char *name; double total, avail; } sres;

typedef struct stuck { uint64_t key; int attempt; herd_value *resources; struct stuck *next; } stuck;

struct sworker {
    struct herd_sched *s;
    herd_conn *conn;
    char *name;
    uint32_t id;
    int role, hello, nthreads, busy, closing, close_sent;
    long pid;
    sres *res;
    size_t nres;
    double last_seen;
    double idle_since;         /* when busy last dropped to 0 */
    double last_done;          /* when it last finished a task */
    kmap running;              /* key -> stask */
    char *peer;                /* where it serves held values (OP_PEER), or NULL */
    char *last_words;          /* why a worker said it is going (its CLOSE), or NULL */
    stuck *stuck;              /* timed-out attempts still occupying a thread */
    struct event *hello_timer;
    sworker *next;
};

struct herd_sched {
    herd_sched_cfg cfg;
    char *token;
    struct event_base *base;
    struct evconnlistener *lis;
    herd_accept_guard guard;   /* backoff when accept() runs out of descriptors */
    struct event *inbox_ev, *dispatch_ev, *hb_ev, *stop_ev;
    pthread_t thread;
    int running;
    /* inbox: the only state shared with client threads */
    pthread_mutex_t in_mu;
    herd_submit_spec *in_head, *in_tail;
    int in_signalled;
    size_t nstate[5];          /* tasks in each T_* state (for the load snapshot) */
    /* worker counters for waiters */
    pthread_mutex_t w_mu;
    pthread_cond_t w_cv;
    int nworkers, nthreads;
    /* scheduler-thread state */
    herd_client *local;
    kmap tasks;
    stask **heap;
    size_t hlen, hcap;
    stask **rlist;             /* ready tasks with resources, sorted */
    size_t rlen, rcap;
    uint64_t seq;
    uint32_t next_id;
    sworker *workers;
    double avg_dur;            /* EWMA of task durations, s; < 0 unknown */
    double no_workers_since;   /* ready tasks and no worker since then; 0: not so */
    int dispatch_pending;
    int closing_all;           /* every worker was told to close: values they held are not recomputed */
    char unix_path[128];
    struct relay *relays;      /* FETCHes waiting for the holder's VALUE */
};

static void finalize(herd_sched *s, stask *t, herd_state st, const char *msg);
static void kick(herd_sched *s);

static void slog(herd_sched *s, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void slog(herd_sched *s, int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    herd_vlogf(s->cfg.log, s->cfg.log_ud, level, fmt, ap);
    va_end(ap);
}

/* ---- ready heap: priority desc, then seq asc ---- */
static int before(const stask *a, const stask *b)
{
    return a->priority != b->priority ? a->priority > b->priority : a->seq < b->seq;
}

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

/* Every change of a stored task's state goes through here. */
static void set_state(herd_sched *s, stask *t, int st)
{
    s->nstate[t->state]--;
    s->nstate[st]++;
    t->state = st;
}

/* Ready tasks with resources or a workers restriction sit in the sorted
 * list each worker scans for one it can take; the others in the heap. */
static int scanned(const stask *t)
{
    return (t->resources && herd_len(t->resources)) || t->workers;
}

static void make_ready(herd_sched *s, stask *t)
{
    set_state(s, t, T_READY);
    t->no_worker_since = 0;
    if (scanned(t)) {
        if (s->rlen == s->rcap) {
            size_t nc = s->rcap ? 2 * s->rcap : 16;
            stask **n = realloc(s->rlist, nc * sizeof *n);
            if (!n) { finalize(s, t, HERD_CRASHED, "scheduler out of memory"); return; }
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
            if (!n) { finalize(s, t, HERD_CRASHED, "scheduler out of memory"); return; }
            s->heap = n; s->hcap = nc;
        }
        t->hidx = s->hlen;
        s->heap[s->hlen++] = t;
        hup(s, t->hidx);
    }
    kick(s);
}

static void unready(herd_sched *s, stask *t)
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

/* ---- tasks ---- */
static void task_free(stask *t)
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

static void release_ins(herd_sched *s, stask *t);
static int wait_on(stask *dep, stask *t);

/* The holder deletes t's value: nobody can read it any more. */
static void free_held(stask *t)
{
    if (t->holder && t->holder->conn) {
        herd_msg_key k = { t->key };
        herd_proto_pack_free(herd_conn_buf(t->holder->conn), &k);
        herd_conn_end(t->holder->conn);
    }
    t->holder = NULL;
}

static void forget(herd_sched *s, stask *t)
{
    s->nstate[t->state]--;
    kmap_del(&s->tasks, t->key);
    unready(s, t);
    free_held(t);
    t->pins++;                 /* its inputs' release must not come back to it */
    release_ins(s, t);
    task_free(t);
}

static int releasable(const stask *t)
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
        if (releasable(dep)) forget(s, dep);
    }
}

/* t needs key's held value until it completes: 0, or -1 when it already
 * counted that need (or no memory), which the caller then drops. */
static int add_in(stask *t, uint64_t key)
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
static void release_deps(herd_sched *s, stask *t, int keep_held)
{
    uint64_t *deps = t->deps;
    size_t n = t->ndeps;
    t->deps = NULL;
    t->ndeps = 0;
    for (size_t i = 0; i < n; i++) {
        stask *d = keep_held ? kmap_get(&s->tasks, deps[i]) : NULL;
        if (d && d->state == T_DONE && d->holder && add_in(t, deps[i]) == 0) continue;
        drop_dependent(s, deps[i]);
    }
    free(deps);
}

static void release_ins(herd_sched *s, stask *t)
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
static void materialize(herd_sched *s, stask *t)
{
    int rc = herd_value_replace_futrefs(t->args, fill_dep, t);
    release_deps(s, t, !rc);
    if (rc) { finalize(s, t, HERD_FAILED, "a dependency's result is no longer available"); return; }
    make_ready(s, t);
}

static void deliver(herd_sched *s, stask *t)
{
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
static void complete(herd_sched *s, stask *t, herd_value *v, sworker *holder, int64_t nbytes)
{
    set_state(s, t, T_DONE);
    t->final = HERD_COMPLETED;
    herd_value_free(t->result);
    t->result = v;
    t->holder = holder;
    t->nbytes = nbytes;
    t->missing = 0;
    t->pins++;
    release_ins(s, t);         /* it has read its inputs */
    t->pins--;
    /* wake dependents first, so the client can take the value afterwards;
     * a dependent that materializes may drop the last need of t: pin it */
    t->pins++;
    for (size_t i = 0; i < t->ndependents; i++) {
        stask *d = kmap_get(&s->tasks, t->dependents[i]);
        if (d && d->state == T_WAITING && --d->ndeps_waiting == 0) materialize(s, d);
    }
    free(t->dependents);
    t->dependents = NULL;
    t->ndependents = t->capdependents = 0;
    t->pins--;
    deliver(s, t);
    if (releasable(t)) forget(s, t);
    else if (!t->nwaiting_dependents && (t->result_at_client || t->owner_released)) {
        herd_value_free(t->result);
        t->result = NULL;
    }
}

/* End t (and, transitively, everything waiting on it) in a failed state. */
static void finalize(herd_sched *s, stask *t, herd_state st, const char *msg)
{
    stask **work = NULL;
    size_t n = 0, cap = 0;
    char *first = strdup(msg ? msg : "");
    unready(s, t);
    set_state(s, t, T_DONE);
    t->final = st;
    free(t->error);
    t->error = first;
    for (;;) {
        release_deps(s, t, 0);
        t->pins++;
        release_ins(s, t);
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
        if (releasable(t)) forget(s, t);
        if (!n) break;
        t = work[--n];
        t->pins--;
    }
    free(work);
}

static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
    stask *t = arg;
    if (t->state == T_RETRY) make_ready(t->s, t);
}

/* An attempt failed (the task's error, or a timeout): retry or fail. */
static void attempt_failed(herd_sched *s, stask *t, const char *msg)
{
    if (t->retries_left > 0) {
        t->retries_left--;
        double delay = t->retry_delay * herd_pow2(t->attempt);
        t->attempt++;
        slog(s, HERD_LOG_WARN, "%s failed (%s); retry %d in %.3gs", t->run_name, msg, t->attempt, delay);
        set_state(s, t, T_RETRY);
        if (delay <= 0) { make_ready(s, t); return; }
        if (!t->timer) t->timer = evtimer_new(s->base, retry_cb, t);
        else { event_del(t->timer); event_assign(t->timer, s->base, -1, 0, retry_cb, t); }
        struct timeval tv = { (time_t)delay, (suseconds_t)((delay - floor(delay)) * 1e6) };
        evtimer_add(t->timer, &tv);
        return;
    }
    finalize(s, t, HERD_FAILED, msg);
}

/* ---- workers ---- */
static int named(const herd_value *names, const char *name)
{
    for (size_t i = 0; i < herd_len(names); i++)
        if (strcmp(herd_as_str(herd_at(names, i)), name) == 0) return 1;
    return 0;
}

/* May t run on w? Its workers restriction names w, or allows others while
 * none of the named workers is connected (and not closing). */
static int allowed_on(const herd_sched *s, const sworker *w, const stask *t)
{
    if (!t->workers || named(t->workers, w->name)) return 1;
    if (!t->allow_other) return 0;
    for (const sworker *o = s->workers; o; o = o->next)
        if (o->hello && o->role == ROLE_WORKER && !o->closing && named(t->workers, o->name)) return 0;
    return 1;
}

/* Do t's resources fit what w has free now (or, with whole, its totals:
 * could w ever run t)? */
static int fits_in(const sworker *w, const stask *t, int whole)
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
static int fits(const herd_sched *s, const sworker *w, const stask *t) { return allowed_on(s, w, t) && fits_in(w, t, 0); }

static void res_take(sworker *w, const herd_value *res, double sign)
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

/* A remote client's future moves to Scheduled or Running, as an in-process
 * one does (OP_RESULT with a state that is not final, no payload). */
static void tell_owner(const stask *t, herd_state st)
{
    if (!t->owner || !t->owner->conn || t->owner_released || t->owner->role != ROLE_CLIENT) return;
    herd_msg_result m = { .key = t->key, .state = st };
    herd_proto_pack_result(herd_conn_buf(t->owner->conn), &m);
    herd_conn_end(t->owner->conn);
}

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
        finalize(s, t, HERD_FAILED, "arguments nest too deeply to send to a worker");
        return;
    }
    if (sb->size - before > HERD_MAX_DATA) {   /* dependency results made it too large: this task fails */
        char why[200];
        snprintf(why, sizeof why, "arguments of %zu bytes (with their dependencies' results) exceed the %zu-byte "
                 "limit on a task's data", sb->size - before, (size_t)HERD_MAX_DATA);
        sb->size = before;
        finalize(s, t, HERD_FAILED, why);          /* takes it off the ready queue */
        return;
    }
    unready(s, t);
    herd_conn_end(w->conn);
    set_state(s, t, T_RUNNING);
    t->worker = w;
    t->seceded = 0;
    t->started = herd_now();
    w->busy++;
    if (t->resources) res_take(w, t->resources, 1);
    kmap_put(&w->running, t->key, t);
    if (t->timeout > 0) {
        if (!t->timer) t->timer = evtimer_new(s->base, timeout_cb, t);
        else { event_del(t->timer); event_assign(t->timer, s->base, -1, 0, timeout_cb, t); }
        struct timeval tv = { (time_t)t->timeout, (suseconds_t)((t->timeout - floor(t->timeout)) * 1e6) };
        evtimer_add(t->timer, &tv);
    }
    if (t->fut && s->local) herd_client_deliver(s->local, t->fut, HERD_SCHEDULED, NULL, NULL);
    else tell_owner(t, HERD_SCHEDULED);
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

static void dispatch_cb(evutil_socket_t fd, short what, void *arg)
{
    herd_sched *s = arg;
    s->dispatch_pending = 0;
    double now = herd_now();           /* once per pass, not per worker and task */
    while (s->hlen || s->rlen) {
        sworker *bw = NULL;
        stask *bt = NULL;
        for (sworker *w = s->workers; w; w = w->next) {
            if (!w->hello || w->role != ROLE_WORKER || w->closing || capacity(s, w, now) <= 0) continue;
            stask *t = best_for(s, w);
            if (!t) continue;
            if (!bt || (t != bt && before(t, bt)) || (t == bt && better_for(s, t, w, bw))) { bt = t; bw = w; }
        }
        if (!bt) break;
        assign(s, bt, bw);
    }
}

static void kick(herd_sched *s)
{
    if (!s->dispatch_pending) {
        s->dispatch_pending = 1;
        event_active(s->dispatch_ev, EV_TIMEOUT, 0);
    }
}

static void send_close(sworker *w, const char *reason)
{
    if (!w->conn || w->close_sent) return;
    w->close_sent = 1;
    herd_msg_reason m = { herd_pstr_c(reason) };
    herd_proto_pack_close(herd_conn_buf(w->conn), &m);
    herd_conn_end(w->conn);
}

/* The attempt running on w ends: give back the slot and resources. */
static void unassign(herd_sched *s, sworker *w, stask *t)
{
    kmap_del(&w->running, t->key);
    if (!t->seceded) w->busy--;
    if (t->resources) res_take(w, t->resources, -1);
    t->worker = NULL;
    if (t->timer && t->state == T_RUNNING) event_del(t->timer);
    if (!w->running.len) w->idle_since = herd_now();
    if (w->closing && !w->running.len && !w->stuck) send_close(w, "retired");
    kick(s);
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
    attempt_failed(s, t, msg);
}

static void worker_counts(herd_sched *s)
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

/* A worker's peer socket, when it is in this scheduler's own directory
 * under the name workers give it (peer-….sock): removed once the worker is
 * gone, since a worker killed (as providers do at close) cannot remove it.
 * Nothing else is ever removed, whatever address a worker sent. */
static void unlink_peer(const herd_sched *s, const sworker *w)
{
    if (!w->peer || !s->unix_path[0] || strncmp(w->peer, "unix://", 7)) return;
    const char *path = w->peer + 7, *slash = strrchr(s->unix_path, '/');
    size_t dl = slash ? (size_t)(slash - s->unix_path) + 1 : 0, n = strlen(path);
    if (!dl || n < dl + 10 || strncmp(path, s->unix_path, dl) || strncmp(path + dl, "peer-", 5) ||
        strchr(path + dl, '/') || strcmp(path + n - 5, ".sock"))
        return;
    unlink(path);
}

static void worker_free(sworker *w)
{
    if (w->hello_timer) event_free(w->hello_timer);
    if (w->conn) herd_conn_free(w->conn);
    for (size_t i = 0; i < w->nres; i++) free(w->res[i].name);
    free(w->res);
    for (stuck *st = w->stuck, *n; st; st = n) { n = st->next; herd_value_free(st->resources); free(st); }
    kmap_free(&w->running);
    free(w->peer);
    free(w->last_words);
    free(w->name);
    free(w);
}

/* ---- held values ---- */
/* t (running, or ready) could not read dep's value, which is being
 * recomputed: t waits for it again (its need on dep stays counted). */
static void rewait(herd_sched *s, stask *t, stask *dep)
{
    unready(s, t);
    if (wait_on(dep, t)) { finalize(s, t, HERD_CRASHED, "scheduler out of memory"); return; }
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
        if (add_in(t, keys[i]) == 0) d->nwaiting_dependents++;
        if (d->state != T_DONE) rc = wait_on(d, t);
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
    if (rc) { finalize(s, t, HERD_CRASHED, "scheduler out of memory"); return 0; }
    if (!t->ndeps_waiting) materialize(s, t);
    return 0;
}

static int by_seq(const void *a, const void *b)
{
    const stask *x = *(stask *const *)a, *y = *(stask *const *)b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* ---- the relay: FETCH from a worker or client that cannot reach a
 * value's holder (or whose cluster relays everything), FETCH to the holder,
 * its VALUE back to each one waiting. A value travels inline in one message,
 * so the relay keeps the HERD_MAX_DATA limit (the holder says so for a
 * larger one). ---- */
typedef struct relay { uint64_t key; sworker *req; struct relay *next; } relay;   /* req NULL: the in-process client */

static void relay_answer(herd_sched *s, sworker *req, uint64_t key, const herd_value *v, const char *error)
{
    if (!req) {
        if (s->local) herd_client_deliver_value(s->local, key, v ? herd_value_copy(v) : NULL, error);
        return;
    }
    if (!req->conn) return;
    herd_msg_value m = { .key = key, .v = v, .error = herd_pstr_c(error) };
    if (herd_proto_pack_value(herd_conn_buf(req->conn), &m)) {
        m.v = NULL;
        m.error = herd_pstr_c("the value cannot be encoded");
        herd_proto_pack_value(herd_conn_buf(req->conn), &m);
    }
    herd_conn_end(req->conn);
}

static void on_fetch(herd_sched *s, sworker *req, uint64_t key)
{
    stask *t = kmap_get(&s->tasks, key);
    if (t && t->state == T_DONE && t->final == HERD_COMPLETED && t->result) {
        relay_answer(s, req, key, t->result, NULL);
        return;
    }
    if (!t || t->state != T_DONE || !t->holder || !t->holder->conn) {
        relay_answer(s, req, key, NULL, HERD_RELAY_GONE " (released, or lost and not recomputed yet)");
        return;
    }
    relay *r = malloc(sizeof *r);
    if (!r) { relay_answer(s, req, key, NULL, "the scheduler is out of memory"); return; }
    *r = (relay){ key, req, s->relays };
    s->relays = r;
    for (relay *o = r->next; o; o = o->next)
        if (o->key == key) return;                 /* the holder was asked already */
    herd_msg_key k = { key };
    herd_proto_pack_fetch(herd_conn_buf(t->holder->conn), &k);
    herd_conn_end(t->holder->conn);
}

static void on_value(herd_sched *s, herd_msg_value *m)
{
    char *error = herd_pstr_dup(m->error);
    for (relay **pp = &s->relays; *pp;) {
        relay *r = *pp;
        if (r->key != m->key) { pp = &r->next; continue; }
        *pp = r->next;
        relay_answer(s, r->req, m->key, m->value, error ? error : m->value ? NULL : "no value");
        free(r);
    }
    free(error);
    herd_value_free(m->value);
}

/* w leaves: drop what it asked for; what it was asked for fails. */
static void relays_gone(herd_sched *s, sworker *w)
{
    for (relay **pp = &s->relays; *pp;) {
        relay *r = *pp;
        stask *t = kmap_get(&s->tasks, r->key);
        if (r->req != w && !(t && t->holder == w)) { pp = &r->next; continue; }
        *pp = r->next;
        if (r->req != w) relay_answer(s, r->req, r->key, NULL, HERD_RELAY_GONE " (its holder left)");
        free(r);
    }
}

/* Worker w left: the values it held are gone. Those still needed (a future
 * not released, a dependent) are recomputed, oldest first, so a lost input
 * is running again before what reads it. */
static void lost_values(herd_sched *s, sworker *w)
{
    stask **lost = NULL;
    size_t n = 0, cap = 0, i = 0;
    void *v;
    while (kmap_next(&s->tasks, &i, NULL, &v)) {
        stask *t = v;
        if (t->holder != w) continue;
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
        int needed = t->nwaiting_dependents || ((t->fut || t->owner) && !t->owner_released);
        if (!needed || s->closing_all) {
            if (releasable(t)) forget(s, t);
            continue;
        }
        if (recompute(s, t, w->name) == 0) continue;
        char msg[600];
        snprintf(msg, sizeof msg, "its value was on worker %s, which left, and cannot be recomputed (an input "
                 "it read was released)", w->name);
        slog(s, HERD_LOG_ERROR, "%s: %s", t->run_name, msg);
        t->final = HERD_CRASHED;
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
static void on_missing(herd_sched *s, sworker *w, const herd_msg_missing *m)
{
    stask *t = kmap_get(&w->running, m->key);
    if (!t || t->attempt != m->attempt) return;
    unassign(s, w, t);
    stask *d = kmap_get(&s->tasks, m->input);
    char msg[600];
    if (!d || (d->state == T_DONE && (d->final != HERD_COMPLETED || !d->holder))) {
        snprintf(msg, sizeof msg, "its input %s was lost and cannot be recomputed", d ? d->run_name : "(released)");
        finalize(s, t, HERD_FAILED, msg);
        return;
    }
    if (d->state != T_DONE) { rewait(s, t, d); return; }
    /* its holder looks alive (its loss may not have been noticed yet): again
     * shortly, a bounded number of times */
    if (++t->missing > 8) {
        snprintf(msg, sizeof msg, "could not fetch its input %s from worker %s (8 attempts)", d->run_name,
                 d->holder->name);
        finalize(s, t, HERD_FAILED, msg);
        return;
    }
    double delay = 0.05 * herd_pow2(t->missing - 1);
    set_state(s, t, T_RETRY);
    if (!t->timer) t->timer = evtimer_new(s->base, retry_cb, t);
    else { event_del(t->timer); event_assign(t->timer, s->base, -1, 0, retry_cb, t); }
    struct timeval tv = { (time_t)delay, (suseconds_t)((delay - floor(delay)) * 1e6) };
    evtimer_add(t->timer, &tv);
}

/* Before every worker leaves at the end: the in-process client fetches the
 * held values of its futures (read after the flow run, as inline ones are). */
static void pull_held(herd_sched *s)
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

/* A connection ends: reschedule what its worker ran; drop what it owned. */
static void worker_lost(herd_sched *s, sworker *w, const char *why)
{
    for (sworker **pp = &s->workers; *pp; pp = &(*pp)->next)
        if (*pp == w) { *pp = w->next; break; }
    if (w->hello && w->role == ROLE_WORKER && w->closing)   /* asked to go: how the socket ended is noise */
        slog(s, HERD_LOG_INFO, "worker %s (pid %ld) closed", w->name, w->pid);
    else if (w->hello && w->role == ROLE_WORKER)
        slog(s, HERD_LOG_WARN, "worker %s (pid %ld) left: %s", w->name, w->pid, why);
    else if (w->hello)
        slog(s, HERD_LOG_INFO, "client %s left (%s); releasing its tasks", w->name, why);
    size_t i = 0;
    void *v;
    while (kmap_next(&w->running, &i, NULL, &v)) {
        stask *t = v;
        t->worker = NULL;
        if (t->timer) event_del(t->timer);
        if (++t->suspicious > s->cfg.allowed_failures) {
            char msg[512];
            snprintf(msg, sizeof msg, "worker %s died while running it (%s); it was on %d workers that died "
                     "(allowed_failures=%d)", w->name, why, t->suspicious, s->cfg.allowed_failures);
            finalize(s, t, HERD_CRASHED, msg);
        } else {
            if (!w->closing)
                slog(s, HERD_LOG_WARN, "%s: worker %s died (%s); rescheduling", t->run_name, w->name, why);
            make_ready(s, t);
        }
    }
    kmap_free(&w->running);
    relays_gone(s, w);
    lost_values(s, w);
    unlink_peer(s, w);
    /* tasks this connection submitted (sub-tasks of its tasks) lose their owner */
    i = 0;
    uint64_t k;
    stask **gone = NULL;
    size_t ng = 0, cg = 0;
    while (kmap_next(&s->tasks, &i, &k, &v)) {
        stask *t = v;
        if (t->owner != w) continue;
        t->owner = NULL;
        t->owner_released = 1;
        if (releasable(t) || ((t->state == T_READY || t->state == T_RETRY || t->state == T_WAITING) &&
                              !t->nwaiting_dependents)) {
            if (ng == cg) { stask **ngone = realloc(gone, (cg = cg ? 2 * cg : 16) * sizeof *ngone); if (!ngone) break; gone = ngone; }
            gone[ng++] = t;
        }
    }
    /* one may be another's dependency: pin them all while their links go */
    for (size_t j = 0; j < ng; j++) gone[j]->pins++;
    for (size_t j = 0; j < ng; j++) { release_deps(s, gone[j], 0); release_ins(s, gone[j]); }
    for (size_t j = 0; j < ng; j++) forget(s, gone[j]);
    free(gone);
    worker_free(w);
    worker_counts(s);
    kick(s);
}

/* ---- messages ---- */
static void refuse(herd_sched *s, sworker *w, const char *why)
{
    slog(s, HERD_LOG_WARN, "refused connection from %s: %s", herd_conn_peer(w->conn), why);
    herd_msg_reason m = { herd_pstr_c(why) };
    herd_proto_pack_refuse(herd_conn_buf(w->conn), &m);
    herd_conn_end(w->conn);
    herd_conn_close_after_flush(w->conn);
    w->conn = NULL;
    for (sworker **pp = &s->workers; *pp; pp = &(*pp)->next)
        if (*pp == w) { *pp = w->next; break; }
    worker_free(w);
}

static int on_hello(herd_sched *s, sworker *w, const msgpack_object *msg)
{
    herd_msg_hello h;
    herd_err e = { 0 };
    if (herd_proto_unpack_hello(msg, &h, &e)) { refuse(s, w, e.msg); return -1; }
    if (h.role == ROLE_PEER) {
        herd_value_free(h.resources);
        refuse(s, w, "HELLO: role 2 (peer) is for a worker's peer server, not the scheduler");
        return -1;
    }
    if (s->token) {
        size_t tl = strlen(s->token);
        if (h.token.len != tl || CRYPTO_memcmp(h.token.ptr, s->token, tl) != 0) {
            herd_value_free(h.resources);
            refuse(s, w, "wrong or missing token");
            return -1;
        }
    }
    char *name = herd_pstr_dup(h.name);
    if (!name) { herd_value_free(h.resources); refuse(s, w, "out of memory"); return -1; }
    for (sworker *o = s->workers; o; o = o->next)
        if (o != w && o->hello && o->name && strcmp(o->name, name) == 0) {
            char why[HERD_PROTO_MAX_NAME + 64];
            snprintf(why, sizeof why, "a worker named \"%s\" is already connected", name);
            free(name);
            herd_value_free(h.resources);
            refuse(s, w, why);
            return -1;
        }
    if (h.resources) {
        w->res = calloc(herd_len(h.resources) + 1, sizeof *w->res);
        for (size_t i = 0; w->res && i < herd_len(h.resources); i++) {
            w->res[w->nres].name = strdup(herd_key_at(h.resources, i));
            w->res[w->nres].total = w->res[w->nres].avail = herd_as_float(herd_at(h.resources, i));
            w->nres++;
        }
        herd_value_free(h.resources);
    }
    int role = h.role;
    w->name = name;
    w->role = role;
    w->nthreads = h.nthreads > 0 ? h.nthreads : 1;
    w->pid = (long)h.pid;
    w->hello = 1;
    herd_conn_set_limits(w->conn, HERD_MAX_FRAME, 0);    /* authenticated: full-size frames */
    w->idle_since = herd_now();
    w->id = s->next_id++;
    if (w->hello_timer) { event_free(w->hello_timer); w->hello_timer = NULL; }
    pthread_mutex_lock(&s->w_mu);
    int nw = s->nworkers, nt = s->nthreads;
    pthread_mutex_unlock(&s->w_mu);
    herd_msg_welcome wm = { w->id, s->cfg.heartbeat_interval, nw, nt, s->cfg.owned ? 1 : 0, s->cfg.data_transfer };
    herd_proto_pack_welcome(herd_conn_buf(w->conn), &wm);
    herd_conn_end(w->conn);
    if (role == ROLE_WORKER) {
        slog(s, HERD_LOG_INFO, "worker %s connected (pid %ld, %d threads)", w->name, w->pid, w->nthreads);
        worker_counts(s);
        kick(s);
    } else {
        slog(s, HERD_LOG_INFO, "client %s connected from %s", w->name, herd_conn_peer(w->conn));
    }
    return 0;
}

/* d's value is taken. */
static void on_done(herd_sched *s, sworker *w, herd_msg_done *d)
{
    uint64_t key = d->key;
    int attempt = d->attempt;
    stask *t = kmap_get(&w->running, key);
    if (!t || t->attempt != attempt) {
        /* a timed-out attempt finally returned: free its thread */
        for (stuck **pp = &w->stuck; *pp; pp = &(*pp)->next)
            if ((*pp)->key == key && (*pp)->attempt == attempt) {
                stuck *st = *pp;
                *pp = st->next;
                w->busy--;
                if (st->resources) res_take(w, st->resources, -1);
                herd_value_free(st->resources);
                free(st);
                if (w->closing && !w->running.len && !w->stuck) send_close(w, "retired");
                kick(s);
                break;
            }
        herd_value_free(d->value);
        if (d->held >= 0 && (!t || t->holder != w) && w->conn) {   /* nobody will read it */
            herd_msg_key k = { key };
            herd_proto_pack_free(herd_conn_buf(w->conn), &k);
            herd_conn_end(w->conn);
        }
        return;
    }
    double dur = (double)d->duration_us / 1e6;
    s->avg_dur = s->avg_dur < 0 ? dur : 0.9 * s->avg_dur + 0.1 * dur;
    w->last_done = herd_now();
    unassign(s, w, t);
    if (d->ok && d->held >= 0) {          /* the value stays on w: nil here */
        herd_value_free(d->value);
        d->value = NULL;
    }
    if (d->ok && d->held >= 0 && !w->peer) {
        attempt_failed(s, t, "its worker kept the result without serving it (no PEER message)");
    } else if (d->ok) {
        complete(s, t, d->held >= 0 ? NULL : d->value, d->held >= 0 ? w : NULL, d->held);
    } else {
        char *msg = herd_pstr_dup(d->error);
        attempt_failed(s, t, msg && *msg ? msg : "failed without a message");
        free(msg);
    }
}

/* t waits for dep to complete (woken by complete()). 0 or -ENOMEM. */
static int wait_on(stask *dep, stask *t)
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

static void add_task(herd_sched *s, herd_submit_spec *sp, sworker *owner)
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
        task_free(t);
        return;
    }
    s->nstate[T_WAITING]++;
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
        if (wait_on(dep, t)) { bad = "out of memory"; break; }
        dep->nwaiting_dependents++;
        uint64_t *nd = realloc(t->deps, (t->ndeps + 1) * sizeof *nd);
        if (!nd) { dep->ndependents--; dep->nwaiting_dependents--; t->ndeps_waiting--; bad = "out of memory"; break; }
        t->deps = nd;
        t->deps[t->ndeps++] = dep->key;
    }
    free(keys);
    if (bad) { finalize(s, t, HERD_FAILED, bad); return; }
    if (faileddep) {
        char msg[1024];
        snprintf(msg, sizeof msg, "dependency %s %s: %s", faileddep->run_name,
                 herd_state_name(faileddep->final), faileddep->error ? faileddep->error : "");
        finalize(s, t, faileddep->final == HERD_CANCELLED ? HERD_CANCELLED : HERD_FAILED, msg);
        return;
    }
    if (!t->ndeps_waiting) materialize(s, t);
}

static void on_release(herd_sched *s, uint64_t key, uint32_t owner_id)
{
    stask *t = kmap_get(&s->tasks, key);
    if (!t || (uint32_t)(key >> 40) != owner_id) return;
    t->owner_released = 1;
    if (releasable(t)) { forget(s, t); return; }
    if ((t->state == T_READY || t->state == T_RETRY) && !t->nwaiting_dependents) { forget(s, t); return; }
    if (t->state == T_DONE && !t->nwaiting_dependents) { herd_value_free(t->result); t->result = NULL; }
}

static void on_cancel(herd_sched *s, uint64_t key, uint32_t owner_id)
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
    finalize(s, t, HERD_CANCELLED, "cancelled by the client");
}

static void on_control(herd_sched *s, sworker *c, const herd_msg_control *m);

/* A message that does not unpack: close that connection (on_close then
 * treats it as lost), saying why. */
static void bad_message(herd_sched *s, sworker *w, const herd_err *e)
{
    char why[sizeof e->msg + 32];
    snprintf(why, sizeof why, "protocol error: %s", e->msg);
    slog(s, HERD_LOG_WARN, "closing the connection from %s (%s %s): %s", herd_conn_peer(w->conn),
         w->role == ROLE_CLIENT ? "client" : "worker", w->name, why);
    herd_conn_fail(w->conn, why);
}

/* A task's log line: to its client, or to the scheduler's log. */
static void on_log(herd_sched *s, sworker *w, const herd_msg_log *m)
{
    stask *t = kmap_get(&s->tasks, m->key);
    int tl = (int)m->text.len;
    if (t && t->fut && s->local)
        herd_client_logf(s->local, m->level, "%s: %.*s", t->run_name, tl, m->text.ptr);
    else if (t && t->owner && t->owner->conn && !t->owner_released) {
        char *line = NULL;
        if (asprintf(&line, "%s: %.*s", t->run_name, tl, m->text.ptr) > 0) {
            herd_msg_log fwd = { t->key, m->level, herd_pstr_c(line) };
            herd_proto_pack_log(herd_conn_buf(t->owner->conn), &fwd);
            herd_conn_end(t->owner->conn);
        }
        free(line);
    } else
        slog(s, m->level, "%s: %.*s", t ? t->run_name : w->name, tl, m->text.ptr);
}

static void on_msg(herd_conn *c, const msgpack_object *m, void *ud)
{
    sworker *w = ud;
    herd_sched *s = w->s;
    herd_err e;                           /* set by a failing unpack (not zeroed: 1 KiB) */
    e.msg[0] = '\0';
    int op = herd_proto_op(m, NULL);      /* comm.c checked it */
    w->last_seen = herd_now();
    if (!w->hello) {
        if (op != OP_HELLO) { refuse(s, w, "expected hello first"); return; }
        on_hello(s, w, m);
        return;
    }
    switch (op) {
    case OP_DONE: {
        herd_msg_done d;
        if (herd_proto_unpack_done(m, &d, &e)) break;
        on_done(s, w, &d);
        return;
    }
    case OP_STARTED: {
        herd_msg_started st;
        if (herd_proto_unpack_started(m, &st, &e)) break;
        stask *t = kmap_get(&w->running, st.key);
        if (t && t->attempt == st.attempt) {
            if (t->fut && s->local) herd_client_deliver(s->local, t->fut, HERD_RUNNING, NULL, NULL);
            else tell_owner(t, HERD_RUNNING);
        }
        return;
    }
    case OP_HEARTBEAT:
        if (herd_proto_unpack_heartbeat(m, &e)) break;
        return;
    case OP_LOG: {
        herd_msg_log lm;
        if (herd_proto_unpack_log(m, &lm, &e)) break;
        on_log(s, w, &lm);
        return;
    }
    case OP_SECEDE: {
        herd_msg_key k;
        if (herd_proto_unpack_secede(m, &k, &e)) break;
        stask *t = kmap_get(&w->running, k.key);
        if (t && !t->seceded) { t->seceded = 1; w->busy--; kick(s); }
        return;
    }
    case OP_SUBMIT: {
        herd_submit_spec *sp = calloc(1, sizeof *sp);
        if (!sp) { slog(s, HERD_LOG_ERROR, "submit from %s dropped: out of memory", w->name); return; }
        if (herd_proto_unpack_submit(m, sp, &e)) { free(sp); break; }
        if ((uint32_t)(sp->key >> 40) != w->id) {
            slog(s, HERD_LOG_WARN, "submit from %s with a key outside its range refused", w->name);
            herd_spec_free(sp);
            return;
        }
        add_task(s, sp, w);
        return;
    }
    case OP_RELEASE: {
        herd_msg_key k;
        if (herd_proto_unpack_release(m, &k, &e)) break;
        on_release(s, k.key, w->id);
        return;
    }
    case OP_CANCEL: {
        herd_msg_key k;
        if (herd_proto_unpack_cancel(m, &k, &e)) break;
        on_cancel(s, k.key, w->id);
        return;
    }
    case OP_PEER: {
        herd_msg_peer pm;
        if (herd_proto_unpack_peer(m, &pm, &e)) break;
        if (w->role != ROLE_WORKER) { herd_err_set(&e, -HERD_EPROTO, "PEER: only a worker serves values"); break; }
        free(w->peer);
        w->peer = herd_pstr_dup(pm.address);
        slog(s, HERD_LOG_DEBUG, "worker %s serves held values at %s", w->name, w->peer ? w->peer : "?");
        return;
    }
    case OP_FETCH: {
        herd_msg_key k;
        if (herd_proto_unpack_fetch(m, &k, &e)) break;
        on_fetch(s, w, k.key);
        return;
    }
    case OP_VALUE: {
        herd_msg_value vm;
        if (herd_proto_unpack_value(m, &vm, &e)) break;
        if (w->role != ROLE_WORKER) {
            herd_value_free(vm.value);
            herd_err_set(&e, -HERD_EPROTO, "VALUE: only a worker holds values");
            break;
        }
        on_value(s, &vm);
        return;
    }
    case OP_MISSING: {
        herd_msg_missing mm;
        if (herd_proto_unpack_missing(m, &mm, &e)) break;
        on_missing(s, w, &mm);
        return;
    }
    case OP_CLOSE: {       /* a worker's last words: why its connection is about to end */
        herd_msg_reason r;
        if (herd_proto_unpack_close(m, &r, &e)) break;
        if (w->role != ROLE_WORKER) { herd_err_set(&e, -HERD_EPROTO, "CLOSE: only a worker says why it goes"); break; }
        if (!r.reason.len) return;
        free(w->last_words);
        w->last_words = herd_pstr_dup(r.reason);
        return;
    }
    case OP_CONTROL: {
        herd_msg_control ctl;
        if (herd_proto_unpack_control(m, &ctl, &e)) break;
        on_control(s, w, &ctl);
        return;
    }
    default:
        herd_err_set(&e, -HERD_EPROTO, "%s: not a message a scheduler takes", herd_proto_op_name(op));
    }
    bad_message(s, w, &e);
}

static void load_fn(herd_sched *s, void *arg);
static void close_fn(herd_sched *s, void *arg);
static int drain_now(herd_sched *s, const char *name);

/* A remote client's OP_CONTROL, answered with OP_REPLY [op, seq, rc, payload].
 * The action comes first: it may send other messages (worker counts) on the
 * same connection, which must not land inside the reply. */
static void on_control(herd_sched *s, sworker *c, const herd_msg_control *m)
{
    if (c->role != ROLE_CLIENT || !c->conn) {
        slog(s, HERD_LOG_WARN, "control message from %s ignored: not a client", c->name);
        return;
    }
    uint64_t seq = m->seq;
    char *verb = herd_pstr_dup(m->verb), *arg = herd_pstr_dup(m->arg);
    const char *v = verb ? verb : "", *error = NULL;
    int rc = 0, is_load = 0;
    herd_sched_load l;
    memset(&l, 0, sizeof l);
    if (!strcmp(v, "load")) {
        load_fn(s, &l);
        is_load = 1;
    } else if ((!strcmp(v, "drain") || !strcmp(v, "close_workers")) && !s->cfg.owned) {
        rc = -HERD_EARG;
        error = "this scheduler is shared (not started for one cluster): a client may not drain or close its workers";
    } else if (!strcmp(v, "drain")) {
        if ((rc = drain_now(s, arg ? arg : ""))) error = "no such worker is connected";
    } else if (!strcmp(v, "close_workers")) {
        char why[200];
        snprintf(why, sizeof why, "%s", arg && *arg ? arg : "cluster closing");
        slog(s, HERD_LOG_INFO, "client %s: closing every worker (%s)", c->name, why);
        close_fn(s, why);
    } else {
        rc = -HERD_EARG;
        error = "unknown control verb: expected load, drain or close_workers";
        slog(s, HERD_LOG_WARN, "client %s: unknown control verb \"%s\"", c->name, v);
    }
    if (c->conn) {
        herd_msg_reply r = { .seq = seq, .rc = rc, .error = herd_pstr_c(error), .has_load = is_load && !rc };
        if (r.has_load) r.load = l;
        herd_proto_pack_reply(herd_conn_buf(c->conn), &r);
        herd_conn_end(c->conn);
    }
    herd_sched_load_free(&l);
    free(verb);
    free(arg);
}

static void on_close(herd_conn *c, const char *why, void *ud)
{
    sworker *w = ud;
    if (!w->hello) {
        herd_sched *s = w->s;
        if (strncmp(why, "TLS: ", 5) == 0) {
            slog(s, HERD_LOG_WARN, "refused connection from %s: %s", herd_conn_peer(c), why + 5);
            herd_conn_set_linger(c);
        }
        else
            slog(s, HERD_LOG_WARN, "connection from %s dropped before hello: %s", herd_conn_peer(c), why);
        for (sworker **pp = &s->workers; *pp; pp = &(*pp)->next)
            if (*pp == w) { *pp = w->next; break; }
        worker_free(w);
        return;
    }
    worker_lost(w->s, w, w->last_words ? w->last_words : why);
}

#define HELLO_TIMEOUT_S 10

/* The TLS handshake and the HELLO must both be done within HELLO_TIMEOUT_S;
 * a connection still in its handshake can be told nothing and is closed. */
static void hello_timeout(evutil_socket_t fd, short what, void *arg)
{
    sworker *w = arg;
    char why[64];
    snprintf(why, sizeof why, "%s within %ds", herd_conn_handshaking(w->conn) ? "TLS handshake not finished"
             : "no hello", HELLO_TIMEOUT_S);
    refuse(w->s, w, why);
}

static void accept_error_cb(struct evconnlistener *l, void *arg)
{
    herd_sched *s = arg;
    herd_accept_guard_fail(&s->guard);
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len, void *arg)
{
    herd_sched *s = arg;
    char peer[128] = "local";
    if (sa->sa_family == AF_INET || sa->sa_family == AF_INET6) {
        char host[64] = "?";
        int port = 0;
        if (sa->sa_family == AF_INET) {
            struct sockaddr_in *in = (struct sockaddr_in *)sa;
            evutil_inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
            port = ntohs(in->sin_port);
        } else {
            struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)sa;
            evutil_inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
            port = ntohs(in6->sin6_port);
        }
        snprintf(peer, sizeof peer, "%s:%d", host, port);
    }
    sworker *w = calloc(1, sizeof *w);
    if (!w) { evutil_closesocket(fd); return; }
    herd_err e = { 0 };
    struct bufferevent *bev = s->cfg.tls ? herd_tls_accept(s->cfg.tls, s->base, fd, &e)   /* closes fd on failure */
                                         : bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!bev) {
        free(w);
        if (!s->cfg.tls) evutil_closesocket(fd);
        else slog(s, HERD_LOG_WARN, "refused connection from %s: %s", peer, e.msg);
        return;
    }
    w->s = s;
    kmap_init(&w->running);
    w->last_seen = herd_now();
    w->conn = herd_conn_new(bev, peer, on_msg, on_close, w);
    if (!w->conn) { free(w); return; }
    herd_conn_set_limits(w->conn, HERD_PREAUTH_MAX_FRAME, 0);   /* nothing spent on it before its hello */
    w->hello_timer = evtimer_new(s->base, hello_timeout, w);
    struct timeval tv = { HELLO_TIMEOUT_S, 0 };
    evtimer_add(w->hello_timer, &tv);
    w->next = s->workers;
    s->workers = w;
}

/* Dask's no-workers-timeout: ready tasks that no connected worker can run
 * for cfg.no_workers_timeout end Crashed, saying why, so no future waits
 * forever on a cluster that is gone. Timed from when the tasks were ready
 * with no worker (not from when the last worker left). */
static void check_no_workers(herd_sched *s, double now)
{
    double limit = s->cfg.no_workers_timeout;
    if (limit <= 0) return;
    int nw = 0;
    for (sworker *w = s->workers; w; w = w->next)
        if (w->hello && w->role == ROLE_WORKER && !w->closing) nw++;
    if (nw || !s->hlen) s->no_workers_since = 0;
    else if (!s->no_workers_since) s->no_workers_since = now;
    char msg[256];
    if (s->no_workers_since && now - s->no_workers_since >= limit) {
        snprintf(msg, sizeof msg, "no worker to run it for %.3gs (client_kwargs.no_workers_timeout): the cluster "
                 "has no workers", now - s->no_workers_since);
        slog(s, HERD_LOG_ERROR, "%zu ready task(s) end Crashed: %s", s->hlen, msg);
        while (s->hlen) finalize(s, s->heap[0], HERD_CRASHED, msg);
        s->no_workers_since = 0;
    }
    for (size_t i = 0; i < s->rlen;) {
        stask *t = s->rlist[i];
        int can = 0;
        for (sworker *w = s->workers; w && !can; w = w->next)
            can = w->hello && w->role == ROLE_WORKER && !w->closing && fits_in(w, t, 1) && allowed_on(s, w, t);
        if (can) { t->no_worker_since = 0; i++; continue; }
        if (!t->no_worker_since) t->no_worker_since = now;
        if (now - t->no_worker_since < limit) { i++; continue; }
        char *res = herd_value_to_string(t->resources), *names = herd_value_to_string(t->workers);
        snprintf(msg, sizeof msg, "no worker to run it for %.3gs (client_kwargs.no_workers_timeout): no "
                 "connected worker (of %d) %s %s", now - t->no_worker_since, nw,
                 t->workers ? "is one of the workers it may run on," : "offers resources",
                 t->workers ? (names ? names : "?") : (res ? res : "?"));
        free(res);
        free(names);
        slog(s, HERD_LOG_ERROR, "%s ends Crashed: %s", t->run_name, msg);
        finalize(s, t, HERD_CRASHED, msg);   /* leaves rlist: i now holds the next */
    }
}

static void heartbeat_cb(evutil_socket_t fd, short what, void *arg)
{
    herd_sched *s = arg;
    double now = herd_now();
    for (sworker *w = s->workers, *next; w; w = next) {
        next = w->next;
        if (w->hello && w->role == ROLE_WORKER && now - w->last_seen > s->cfg.heartbeat_timeout) {
            char why[96];
            snprintf(why, sizeof why, "no heartbeat for %.1fs", now - w->last_seen);
            worker_lost(s, w, why);
        }
    }
    check_no_workers(s, now);
}

/* ---- inbox from the in-process client ---- */
static void inbox_cb(evutil_socket_t fd, short what, void *arg)
{
    herd_sched *s = arg;
    pthread_mutex_lock(&s->in_mu);
    herd_submit_spec *sp = s->in_head;
    s->in_head = s->in_tail = NULL;
    s->in_signalled = 0;
    pthread_mutex_unlock(&s->in_mu);
    while (sp) {
        herd_submit_spec *next = sp->next;
        sp->next = NULL;
        switch (sp->op) {
        case OP_SUBMIT: add_task(s, sp, NULL); break;
        case OP_RELEASE: on_release(s, sp->key, 1); herd_spec_free(sp); break;
        case OP_CANCEL: on_cancel(s, sp->key, 1); herd_spec_free(sp); break;
        case OP_FETCH: on_fetch(s, NULL, sp->key); herd_spec_free(sp); break;
        default: herd_spec_free(sp);
        }
        sp = next;
    }
}

int herd_sched_post(herd_sched *s, herd_submit_spec *sp)
{
    pthread_mutex_lock(&s->in_mu);
    if (!s->running) { pthread_mutex_unlock(&s->in_mu); herd_spec_free(sp); return -HERD_ECLOSED; }
    sp->next = NULL;
    if (s->in_tail) s->in_tail->next = sp; else s->in_head = sp;
    s->in_tail = sp;
    int wake = !s->in_signalled;
    s->in_signalled = 1;
    if (wake) event_active(s->inbox_ev, EV_TIMEOUT, 0);
    pthread_mutex_unlock(&s->in_mu);
    return 0;
}

static int local_send(void *ud, herd_submit_spec *spec) { return herd_sched_post(ud, spec); }
const herd_transport herd_sched_local_tp = { local_send, NULL };

void herd_sched_attach_local(herd_sched *s, herd_client *cl)
{
    s->local = cl;
    /* the client fetches held values from workers with the cluster's token */
    pthread_mutex_lock(&cl->mu);
    free(cl->peer_token);
    cl->peer_token = s->token ? strdup(s->token) : NULL;
    cl->peer_tls = s->cfg.tls;
    cl->transfer = s->cfg.data_transfer;
    pthread_mutex_unlock(&cl->mu);
}

/* ---- synchronous calls into the loop (for other threads) ---- */
typedef struct scall {
    herd_sched *s;
    void (*fn)(herd_sched *s, void *arg);
    void *arg;
    int done;
} scall;

static void scall_cb(evutil_socket_t fd, short what, void *arg)
{
    scall *c = arg;
    c->fn(c->s, c->arg);
    pthread_mutex_lock(&c->s->w_mu);
    c->done = 1;
    pthread_cond_broadcast(&c->s->w_cv);
    pthread_mutex_unlock(&c->s->w_mu);
}

static int sched_call(herd_sched *s, void (*fn)(herd_sched *, void *), void *arg)
{
    if (!s->running) return -HERD_ECLOSED;
    scall c = { s, fn, arg, 0 };
    if (event_base_once(s->base, -1, EV_TIMEOUT, scall_cb, &c, NULL)) return -HERD_ECLOSED;
    pthread_mutex_lock(&s->w_mu);
    while (!c.done) pthread_cond_wait(&s->w_cv, &s->w_mu);
    pthread_mutex_unlock(&s->w_mu);
    return 0;
}

static void load_fn(herd_sched *s, void *arg)
{
    herd_sched_load *l = arg;
    double now = herd_now(), avg = s->avg_dur < 0 ? 0.5 : s->avg_dur;   /* Dask assumes 0.5 s unknown */
    l->waiting = (int)s->nstate[T_WAITING];      /* counted as states change: O(1) */
    l->ready = (int)(s->nstate[T_READY] + s->nstate[T_RETRY]);
    l->running = (int)s->nstate[T_RUNNING];
    l->avg_duration = s->avg_dur;
    l->task_seconds = (l->ready + l->running) * avg;
    size_t n = 0;
    for (sworker *w = s->workers; w; w = w->next)
        if (w->hello && w->role == ROLE_WORKER) n++;
    l->workers = calloc(n ? n : 1, sizeof *l->workers);
    for (sworker *w = s->workers; w && l->workers; w = w->next) {
        if (!w->hello || w->role != ROLE_WORKER) continue;
        herd_sched_wload *x = &l->workers[l->nworkers++];
        snprintf(x->name, sizeof x->name, "%s", w->name);
        x->nthreads = w->nthreads;
        x->busy = w->busy;
        x->closing = w->closing;
        x->idle_for = w->running.len ? 0 : now - w->idle_since;
    }
}

int herd_sched_get_load(herd_sched *s, herd_sched_load *out)
{
    memset(out, 0, sizeof *out);
    return sched_call(s, load_fn, out);
}

void herd_sched_load_free(herd_sched_load *l)
{
    free(l->workers);
    memset(l, 0, sizeof *l);
}

struct drainreq { const char *name; int rc; };

static int drain_now(herd_sched *s, const char *name)
{
    int rc = -HERD_EARG;
    for (sworker *w = s->workers; w; w = w->next) {
        if (!w->hello || w->role != ROLE_WORKER || strcmp(w->name, name)) continue;
        w->closing = 1;
        if (!w->running.len && !w->stuck) send_close(w, "retired");
        rc = 0;
        break;
    }
    worker_counts(s);
    return rc;
}

static void drain_fn(herd_sched *s, void *arg)
{
    struct drainreq *d = arg;
    d->rc = drain_now(s, d->name);
}

int herd_sched_drain(herd_sched *s, const char *name)
{
    struct drainreq d = { name, 0 };
    int rc = sched_call(s, drain_fn, &d);
    return rc ? rc : d.rc;
}

struct hasreq { const char *name; int has; };

static void has_fn(herd_sched *s, void *arg)
{
    struct hasreq *h = arg;
    for (sworker *w = s->workers; w; w = w->next)
        if (w->hello && w->role == ROLE_WORKER && strcmp(w->name, h->name) == 0) h->has = 1;
}

int herd_sched_has_worker(herd_sched *s, const char *name)
{
    struct hasreq h = { name, 0 };
    return sched_call(s, has_fn, &h) ? 0 : h.has;
}

static int lops_load(void *ud, herd_sched_load *l) { return herd_sched_get_load(ud, l); }
static int lops_drain(void *ud, const char *name) { return herd_sched_drain(ud, name); }
static int lops_has(void *ud, const char *name) { return herd_sched_has_worker(ud, name); }
static int lops_nworkers(void *ud, int *nthreads) { return herd_sched_nworkers(ud, nthreads); }
const herd_sched_ops herd_sched_ops_local = { lops_load, lops_drain, lops_has, lops_nworkers, &herd_sched_local_tp };

/* ---- lifecycle ---- */
static void *loop_main(void *arg)
{
    herd_sched *s = arg;
    herd_block_sigpipe();
    event_base_dispatch(s->base);
    return NULL;
}

static void stop_cb(evutil_socket_t fd, short what, void *arg)
{
    herd_sched *s = arg;
    for (sworker *w = s->workers; w; w = w->next)
        if (w->conn) herd_conn_flush(w->conn);
    event_base_loopbreak(s->base);
}

static void close_fn(herd_sched *s, void *arg)
{
    const char *reason = arg;
    pull_held(s);
    s->closing_all = 1;
    for (sworker *w = s->workers; w; w = w->next) {
        if (!w->hello || w->role != ROLE_WORKER || !w->conn) continue;
        w->closing = 1;
        send_close(w, reason);
        herd_conn_flush(w->conn);
    }
    worker_counts(s);
}

void herd_sched_close_workers(herd_sched *s, const char *reason)
{
    char why[200];
    snprintf(why, sizeof why, "%s", reason ? reason : "cluster closing");
    sched_call(s, close_fn, why);
}

int herd_sched_start(herd_sched **out, const herd_sched_cfg *cfg, char *addr, size_t cap, herd_err *err)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, (void (*)(void))evthread_use_pthreads);
    herd_sched *s = calloc(1, sizeof *s);
    if (!s) return herd_err_set(err, -ENOMEM, "out of memory");
    s->cfg = *cfg;
    s->cfg.listen = NULL;
    if (s->cfg.heartbeat_interval <= 0) s->cfg.heartbeat_interval = 1;
    if (s->cfg.heartbeat_timeout <= 0) s->cfg.heartbeat_timeout = 30;
    if (s->cfg.allowed_failures < 0) s->cfg.allowed_failures = 3;
    s->token = cfg->token ? strdup(cfg->token) : NULL;
    s->avg_dur = -1;
    s->next_id = 2;
    kmap_init(&s->tasks);
    pthread_mutex_init(&s->in_mu, NULL);
    pthread_mutex_init(&s->w_mu, NULL);
    herd_cond_init_monotonic(&s->w_cv);
    int rc;
    if (!(s->base = event_base_new())) { rc = herd_err_set(err, -ENOMEM, "cannot create event loop"); goto fail; }
    s->inbox_ev = event_new(s->base, -1, 0, inbox_cb, s);
    s->dispatch_ev = event_new(s->base, -1, 0, dispatch_cb, s);
    s->stop_ev = event_new(s->base, -1, 0, stop_cb, s);
    s->hb_ev = event_new(s->base, -1, EV_PERSIST, heartbeat_cb, s);
    if (!s->inbox_ev || !s->dispatch_ev || !s->stop_ev || !s->hb_ev) { rc = herd_err_set(err, -ENOMEM, "out of memory"); goto fail; }
    /* the dispatch event runs after messages of the same iteration */
    event_base_priority_init(s->base, 2);
    event_priority_set(s->dispatch_ev, 1);
    double iv = s->cfg.heartbeat_interval;
    struct timeval tv = { (time_t)iv, (suseconds_t)((iv - floor(iv)) * 1e6) };
    event_add(s->hb_ev, &tv);
    herd_addr a;
    if (herd_addr_parse(cfg->listen, &a, NULL) == 0 && a.is_unix) snprintf(s->unix_path, sizeof s->unix_path, "%s", a.path);
    if ((rc = herd_tls_addr_check(cfg->tls, cfg->listen, err))) goto fail;
    if (!(s->lis = herd_listen(s->base, cfg->listen, accept_cb, s, addr, cap, err))) { rc = err ? err->code : -HERD_EARG; goto fail; }
    if (herd_accept_guard_init(&s->guard, s->lis, s->cfg.log, s->cfg.log_ud)) {
        rc = herd_err_set(err, -ENOMEM, "out of memory");
        goto fail;
    }
    evconnlistener_set_error_cb(s->lis, accept_error_cb);
    s->running = 1;
    if ((rc = pthread_create(&s->thread, NULL, loop_main, s))) {
        s->running = 0;
        rc = herd_err_set(err, -rc, "cannot start the scheduler thread: %s", strerror(rc));
        goto fail;
    }
    *out = s;
    return 0;
fail:
    herd_sched_stop(s);
    return rc;
}

int herd_sched_nworkers(herd_sched *s, int *nthreads)
{
    pthread_mutex_lock(&s->w_mu);
    int n = s->nworkers;
    if (nthreads) *nthreads = s->nthreads;
    pthread_mutex_unlock(&s->w_mu);
    return n;
}

int herd_sched_wait_workers(herd_sched *s, int n, double timeout_s, herd_err *err)
{
    struct timespec ts;
    herd_deadline(timeout_s, &ts);
    pthread_mutex_lock(&s->w_mu);
    int rc = 0;
    while (s->nworkers < n && rc == 0)
        rc = timeout_s < 0 ? pthread_cond_wait(&s->w_cv, &s->w_mu) : pthread_cond_timedwait(&s->w_cv, &s->w_mu, &ts);
    int have = s->nworkers;
    pthread_mutex_unlock(&s->w_mu);
    if (have >= n) return 0;
    return herd_err_set(err, HERD_ETIMEOUT, "only %d of %d workers connected within %.3gs", have, n, timeout_s);
}

void herd_sched_stop(herd_sched *s)
{
    if (!s) return;
    if (s->running) {
        pthread_mutex_lock(&s->in_mu);
        s->running = 0;
        pthread_mutex_unlock(&s->in_mu);
        event_active(s->stop_ev, EV_TIMEOUT, 0);
        pthread_join(s->thread, NULL);
    }
    for (herd_submit_spec *sp = s->in_head, *n; sp; sp = n) { n = sp->next; herd_spec_free(sp); }
    while (s->workers) { sworker *w = s->workers; s->workers = w->next; unlink_peer(s, w); worker_free(w); }
    while (s->relays) { relay *r = s->relays; s->relays = r->next; free(r); }
    size_t i = 0;
    void *v;
    while (kmap_next(&s->tasks, &i, NULL, &v)) task_free(v);
    kmap_free(&s->tasks);
    free(s->heap);
    free(s->rlist);
    if (s->lis) evconnlistener_free(s->lis);
    herd_accept_guard_destroy(&s->guard);
    if (s->unix_path[0]) unlink(s->unix_path);
    if (s->inbox_ev) event_free(s->inbox_ev);
    if (s->dispatch_ev) event_free(s->dispatch_ev);
    if (s->stop_ev) event_free(s->stop_ev);
    if (s->hb_ev) event_free(s->hb_ev);
    if (s->base) herd_event_base_drain_free(s->base);
    pthread_mutex_destroy(&s->in_mu);
    pthread_mutex_destroy(&s->w_mu);
    pthread_cond_destroy(&s->w_cv);
    free(s->token);
    free(s);
}
