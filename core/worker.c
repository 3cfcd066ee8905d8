/* core/worker.c — the worker: dials the scheduler, says hello, runs RUN
 * messages on N executor threads, batches DONE/LOG messages back, sends
 * heartbeats, enforces the memory limit (process mode), and serves tasks'
 * sub-task clients (herd_task_client) over the same connection. The event
 * loop owns the connection; executor threads talk to it through an outbox.
 * The data path: a worker whose scheduler is on this host (a unix://
 * address) keeps big results in its store (store.c) and serves them to
 * peers (peer.c); its executors read a task's held inputs from the store or
 * fetch them from their holder before running it. Under a memory_limit its
 * spiller (spill.c) moves held values to disk and pauses it (no new task
 * starts; PAUSE tells the scheduler) while its RSS is over 80%.
 * (A flow's own connection to a scheduler is remote.c's.) */
#include "worker.h"
#include "client.h"
#include "comm.h"
#include "peer.h"
#include "spill.h"
#include "store.h"
#include "value_int.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <sys/random.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <event2/thread.h>

typedef struct wtask {
    uint64_t key;
    char *task, *run_name;
    herd_value *args;
    herd_value *tags;
    herd_value *inputs;        /* RUN's inputs: [[key, peer]…] or NULL */
    int attempt, hold;
    struct wtask *next;
} wtask;

typedef struct wk {
    herd_worker_cfg cfg;
    char *address, *token, *name;
    herd_value *resources;
    struct event_base *base;
    herd_conn *conn;
    struct event *hb_ev, *stop_ev, *mem_ev;
    struct event *life_ev;     /* cfg.lifetime: asks the scheduler to retire it */
    int mem_exit_ticks;        /* > 0: over memory_limit, CLOSE queued, exiting */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    wtask *head, *tail;
    herd_outbox out;           /* messages from executor threads (guarded by mu) */
    int stop;                  /* executors exit */
    int nexec, blocked;        /* executor threads, of which blocked on sub-tasks */
    atomic_int refs;           /* loop + each executor thread */
    int welcomed, exit_code;
    pthread_cond_t evcv;       /* executors leaving, loop end */
    int loop_done;
    herd_client subcl;
    int subcl_ready;
    struct herd_runner subrunner;
    pthread_t loop_thread;     /* thread mode */
    int thread_mode;
    herd_store *store;         /* held results (NULL: this worker holds none) */
    herd_peer_server *peer;    /* serves them to other workers */
    char *peer_addr;           /* the address it gives for it (PEER) */
    herd_fetch_budget budget;  /* bytes of inputs fetched at once */
    int have_budget;
    int transfer;              /* the cluster's data_transfer (WELCOME): HERD_DT_* */
    struct rwait *rwaits;      /* executors waiting for a relayed input (guarded by mu) */
    pthread_cond_t rcv;        /* a relayed input arrived */
    char **relay_logged;       /* holders this worker said it relays for (guarded by mu) */
    size_t nrelay_logged;
    herd_spill *spill;         /* under memory_limit: spills the store, pauses */
    int paused;                /* executors start no task (guarded by mu) */
} wk;

/* An executor waiting for the scheduler to relay an input (FETCH, VALUE). */
typedef struct rwait {
    uint64_t key;
    int done;
    herd_value *v;
    char *error;
    struct rwait *next;
} rwait;

struct herd_task_ctx {
    wk *w;
    uint64_t key;
    const char *run_name;
    const herd_value *tags;
    int attempt;
    char *fail_msg;
    herd_future **subs;
    size_t nsubs, capsubs;
    int seceded;
};

static _Thread_local herd_task_ctx *current;

static void wk_unref(wk *w);
static void life_start(wk *w);
static void wk_free(wk *w);

static void wlog(wk *w, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void wlog(wk *w, int level, const char *fmt, ...)
{
    char line[1536], full[1700];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    snprintf(full, sizeof full, "worker %s: %s", w->name ? w->name : "?", line);
    herd_log_default(NULL, level, full);
}

/* ---- task context API ---- */
void herd_task_log(herd_task_ctx *ctx, const char *fmt, ...)
{
    char text[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (!ctx) { herd_log_default(NULL, HERD_LOG_INFO, text); return; }
    wk *w = ctx->w;
    herd_msg_log m = { ctx->key, HERD_LOG_INFO, herd_pstr_c(text) };
    pthread_mutex_lock(&w->mu);
    herd_proto_pack_log(&w->out.sb, &m);
    herd_outbox_send_unlock(&w->out);
}

int herd_task_fail(herd_task_ctx *ctx, const char *fmt, ...)
{
    char *msg = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) < 0) msg = NULL;
    va_end(ap);
    if (!ctx) {            /* called outside a worker (a direct call): say why */
        if (msg) herd_log_default(NULL, HERD_LOG_ERROR, msg);
        free(msg);
        return -HERD_EFAILED;
    }
    free(ctx->fail_msg);
    ctx->fail_msg = msg;
    return -HERD_EFAILED;
}

const char *herd_task_run_name(const herd_task_ctx *ctx) { return ctx ? ctx->run_name : NULL; }
const char *herd_task_worker_name(const herd_task_ctx *ctx) { return ctx ? ctx->w->name : NULL; }
int herd_task_attempt(const herd_task_ctx *ctx) { return ctx ? ctx->attempt : 0; }
const herd_value *herd_task_tags(const herd_task_ctx *ctx) { return ctx ? ctx->tags : NULL; }

herd_runner *herd_task_client(herd_task_ctx *ctx)
{
    if (!ctx || !ctx->w->subcl_ready) return NULL;
    return &ctx->w->subrunner;
}

/* ---- the sub-task client's transport ---- */
static int sub_send(void *ud, herd_submit_spec *sp)
{
    wk *w = ud;
    herd_task_ctx *ctx = current;
    pthread_mutex_lock(&w->mu);
    int rc = herd_proto_pack_spec(&w->out.sb, sp);
    herd_outbox_send_unlock(&w->out);
    if (rc) {       /* client.c checked the nesting: only an item over 4 GiB gets here */
        herd_spec_free(sp);
        return rc;
    }
    /* remember the task's sub-futures so they are released when it ends */
    if (sp->fut && ctx && ctx->w == w) {
        if (ctx->nsubs == ctx->capsubs) {
            size_t nc = ctx->capsubs ? 2 * ctx->capsubs : 8;
            herd_future **n = realloc(ctx->subs, nc * sizeof *n);
            if (n) { ctx->subs = n; ctx->capsubs = nc; }
        }
        if (ctx->nsubs < ctx->capsubs) { ctx->subs[ctx->nsubs++] = sp->fut; sp->fut = NULL; }
    }
    herd_spec_free(sp);
    return 0;
}

static void *exec_main(void *arg);

static void sub_block(void *ud, int blocking)
{
    wk *w = ud;
    herd_task_ctx *ctx = current;
    pthread_mutex_lock(&w->mu);
    if (blocking) {
        w->blocked++;
        if (ctx && !ctx->seceded) {
            ctx->seceded = 1;
            herd_msg_key k = { ctx->key };
            herd_proto_pack_secede(&w->out.sb, &k);
            herd_outbox_wake(&w->out);
        }
        /* keep nthreads executors free to run what the scheduler sends */
        if (w->nexec - w->blocked < w->cfg.nthreads && !w->stop) {
            pthread_t th;
            atomic_fetch_add(&w->refs, 1);
            if (pthread_create(&th, NULL, exec_main, w) == 0) { pthread_detach(th); w->nexec++; }
            else atomic_fetch_sub(&w->refs, 1);
        }
    } else {
        w->blocked--;
    }
    pthread_mutex_unlock(&w->mu);
}

static const herd_transport sub_tp = { sub_send, sub_block };

/* ---- held inputs and results ---- */
/* A holder this worker could not connect to before: relayed from then on. */
static int known_unreachable(wk *w, const char *peer)
{
    int yes = 0;
    pthread_mutex_lock(&w->mu);
    for (size_t i = 0; i < w->nrelay_logged && !yes; i++) yes = !strcmp(w->relay_logged[i], peer);
    pthread_mutex_unlock(&w->mu);
    return yes;
}

/* Say once per holder that this worker's inputs from it are relayed. */
static void note_relay(wk *w, const char *peer, const char *why)
{
    pthread_mutex_lock(&w->mu);
    for (size_t i = 0; i < w->nrelay_logged; i++)
        if (!strcmp(w->relay_logged[i], peer)) { pthread_mutex_unlock(&w->mu); return; }
    char **n = realloc(w->relay_logged, (w->nrelay_logged + 1) * sizeof *n);
    if (n) {
        w->relay_logged = n;
        if ((n[w->nrelay_logged] = strdup(peer))) w->nrelay_logged++;
    }
    pthread_mutex_unlock(&w->mu);
    wlog(w, HERD_LOG_WARN, "cannot reach the worker at %s (%s): inputs it holds are relayed through the scheduler",
         peer, why);
}

/* An input through the scheduler (FETCH; the loop hands the VALUE over).
 * Its size is not known before: it counts as the most a relay carries in
 * the worker's budget, which bounds what the scheduler queues for it. */
static int relay_input(wk *w, uint64_t key, herd_value **out, herd_err *err)
{
    rwait rw = { .key = key };
    herd_msg_key k = { key };
    struct timespec ts;
    if (w->have_budget) herd_fetch_budget_acquire(&w->budget, HERD_MAX_DATA);
    herd_deadline(120, &ts);
    pthread_mutex_lock(&w->mu);
    rw.next = w->rwaits;
    w->rwaits = &rw;
    herd_proto_pack_fetch(&w->out.sb, &k);
    herd_outbox_wake(&w->out);
    while (!rw.done && !w->stop)
        if (pthread_cond_timedwait(&w->rcv, &w->mu, &ts) == ETIMEDOUT) break;
    for (rwait **pp = &w->rwaits; *pp; pp = &(*pp)->next)
        if (*pp == &rw) { *pp = rw.next; break; }
    pthread_mutex_unlock(&w->mu);
    if (w->have_budget) herd_fetch_budget_release(&w->budget, HERD_MAX_DATA);
    int rc = 0;
    if (rw.v) *out = rw.v;
    else if (rw.error && !strstr(rw.error, HERD_RELAY_GONE))      /* final: the task fails */
        rc = herd_err_set(err, -E2BIG, "input %llu relayed by the scheduler: %s", (unsigned long long)key, rw.error);
    else rc = herd_err_set(err, -ENOENT, "input %llu relayed by the scheduler: %s", (unsigned long long)key,
                           rw.error ? rw.error : rw.done ? "no value" : "no answer within 120s");
    free(rw.error);
    return rc;
}

/* The loop: the scheduler's VALUE for executors waiting on key (the first
 * takes v, the others a copy) and for the sub-task client. */
static void on_relayed(wk *w, uint64_t key, herd_value *v, const char *error)
{
    pthread_mutex_lock(&w->mu);
    for (rwait *rw = w->rwaits; rw; rw = rw->next) {
        if (rw->key != key || rw->done) continue;
        rw->done = 1;
        if (!v) rw->error = strdup(error ? error : "no value");
        else if (!(rw->v = herd_value_copy(v))) rw->error = strdup("out of memory");
    }
    pthread_cond_broadcast(&w->rcv);
    pthread_mutex_unlock(&w->mu);
    if (w->subcl_ready) herd_client_deliver_value(&w->subcl, key, v, error);
    else herd_value_free(v);
}

/* The loop: the scheduler relays one of this worker's values to a worker or
 * client that cannot reach it: VALUE with it inline (HERD_MAX_DATA at most). */
static void send_relayed(wk *w, uint64_t key)
{
    herd_blob *b = w->store ? herd_store_get(w->store, key) : NULL;
    herd_msg_value m = { .key = key };
    char why[160];
    if (!b) m.error = herd_pstr_c("the holder no longer has it");
    else if (b->len > HERD_MAX_DATA) {
        snprintf(why, sizeof why, "a value of %zu bytes is over the relay's %zu-byte limit (one message); only a "
                 "direct connection to its holder moves it", b->len, (size_t)HERD_MAX_DATA);
        m.error = herd_pstr_c(why);
    } else if (b->value) m.v = b->value;
    else m.raw = (herd_pstr){ b->data, b->len };
    if (herd_proto_pack_value(herd_conn_buf(w->conn), &m)) {
        m.v = NULL;
        m.raw = herd_pstr_c(NULL);
        m.error = herd_pstr_c("the value cannot be encoded");
        herd_proto_pack_value(herd_conn_buf(w->conn), &m);
    }
    herd_conn_end(w->conn);
    herd_blob_unref(b);
}

typedef struct inres { wk *w; const herd_value *inputs; uint64_t missing; int final; herd_err err; } inres;

/* A futref left in the arguments: its value from this worker's store or
 * from the holder RUN named. */
static int resolve_input(void *ud, uint64_t key, herd_value **out)
{
    inres *r = ud;
    const char *peer = NULL;
    for (size_t i = 0; i < herd_len(r->inputs) && !peer; i++) {
        const herd_value *it = herd_at(r->inputs, i);
        if ((uint64_t)herd_as_int(herd_at(it, 0)) == key) peer = herd_as_str(herd_at(it, 1));
    }
    r->missing = key;
    if (!peer) return herd_err_set(&r->err, -HERD_EPROTO, "RUN: input %llu has no holder", (unsigned long long)key);
    herd_blob *b = r->w->store ? herd_store_get(r->w->store, key) : NULL;
    if (b) {              /* this worker holds it (whatever address RUN gave) */
        int rc = 0;
        if (b->value && !(*out = herd_value_copy(b->value))) rc = herd_err_set(&r->err, -ENOMEM, "out of memory");
        else if (!b->value) rc = herd_value_decode(b->data, b->len, out, &r->err);
        herd_blob_unref(b);
        return rc;
    }
    if (r->w->peer_addr && strcmp(peer, r->w->peer_addr) == 0 && strcmp(peer, herd_peer_server_address(r->w->peer)) == 0)
        return herd_err_set(&r->err, -ENOENT, "input %llu is no longer held here", (unsigned long long)key);
    wk *w = r->w;
    herd_peer_auth auth = { w->token, w->cfg.tls, w->have_budget ? &w->budget : NULL };
    int transfer = w->transfer;
    int skip = transfer == HERD_DT_RELAY || (transfer != HERD_DT_DIRECT && known_unreachable(w, peer));
    int rc = skip ? -HERD_ECLOSED : herd_peer_fetch(peer, &auth, key, 60, out, &r->err);
    if (rc != -HERD_ECLOSED || transfer == HERD_DT_DIRECT) return rc;
    char why[sizeof r->err.msg];
    snprintf(why, sizeof why, "%s", r->err.msg);
    if ((rc = relay_input(w, key, out, &r->err)) == -E2BIG) r->final = 1;
    if (rc != -ENOENT && !skip) note_relay(w, peer, why);   /* alive, but not reachable from here: once */
    return rc;
}

/* Put a task's held inputs into its arguments. 0, or -1 after telling the
 * scheduler which input is missing (it recomputes it and runs t again), or
 * -2 when one cannot reach this worker at all (why says so; the task fails). */
static int fetch_inputs(wk *w, wtask *t, char *why, size_t cap)
{
    if (!t->inputs || !herd_len(t->inputs)) return 0;
    inres r = { .w = w, .inputs = t->inputs };
    r.err.msg[0] = '\0';
    if (herd_value_replace_futrefs(t->args, resolve_input, &r) == 0) return 0;
    if (r.final) {        /* it cannot reach this worker at all: the task fails, saying why */
        snprintf(why, cap, "cannot get input %llu: %s", (unsigned long long)r.missing, r.err.msg);
        return -2;
    }
    wlog(w, HERD_LOG_WARN, "%s: cannot get input %llu: %s", t->run_name, (unsigned long long)r.missing, r.err.msg);
    herd_msg_missing m = { t->key, t->attempt, r.missing };
    pthread_mutex_lock(&w->mu);
    herd_proto_pack_missing(&w->out.sb, &m);
    herd_outbox_send_unlock(&w->out);
    return -1;
}

/* Keep a big result in the store as it is (packed only when a peer asks for
 * it): d then says so (held) instead of carrying it, and the store owns the
 * value. A dependent here reads it in place (its copy shares the payloads);
 * a peer of this host maps its big payloads (peer.c, shm.c). */
static void hold_result(wk *w, wtask *t, herd_msg_done *d)
{
    if (!d->ok || !t->hold || !w->peer || !d->value) return;
    size_t len = herd_wire_size(d->value);       /* SIZE_MAX: it cannot be encoded, DONE says why */
    if (len <= HERD_INLINE_MAX || len == SIZE_MAX) return;      /* inline */
    /* read-only from now on: memfds sealed, big payloads shared by the copies local readers get */
    if (herd_value_share(&d->value) || herd_store_put_value(w->store, t->key, d->value, len)) return;
    d->held = (int64_t)len;
    d->value = NULL;
    herd_spill_after_put(w->spill);
}

/* ---- executors ---- */
typedef struct fncache { char *name; herd_task_fn fn; struct fncache *next; } fncache;

static void run_one(wk *w, wtask *t, fncache **cache)
{
    herd_task_ctx ctx = { .w = w, .key = t->key, .run_name = t->run_name, .attempt = t->attempt, .tags = t->tags };
    herd_task_fn fn = NULL;
    herd_value *out = NULL;
    herd_err err;                          /* read only when the lookup failed (not zeroed: 1 KiB) */
    int rc;
    for (fncache *c = *cache; c && !fn; c = c->next)
        if (strcmp(c->name, t->task) == 0) fn = c->fn;
    if (!fn && (rc = herd_task_lookup(t->task, &fn, &err)) == 0) {
        fncache *c = malloc(sizeof *c);
        if (c && (c->name = strdup(t->task))) { c->fn = fn; c->next = *cache; *cache = c; }
        else free(c);
    }
    char why[1200];
    int fr = fetch_inputs(w, t, why, sizeof why);
    if (fr == -1) return;
    herd_msg_started st = { t->key, t->attempt };
    pthread_mutex_lock(&w->mu);           /* Running, batched with whatever else is queued */
    herd_proto_pack_started(&w->out.sb, &st);
    herd_outbox_send_unlock(&w->out);
    double t0 = herd_now();
    if (fr == -2) {
        ctx.fail_msg = strdup(why);
        rc = -HERD_EFAILED;
    } else if (fn) {
        current = &ctx;
        rc = fn(&ctx, t->args, &out);
        current = NULL;
    } else {
        char msg[1100];
        snprintf(msg, sizeof msg, "on worker %s: %s", w->name, err.msg);
        ctx.fail_msg = strdup(msg);
        rc = -HERD_ENOTASK;
    }
    uint64_t us = (uint64_t)((herd_now() - t0) * 1e6);
    /* release the sub-task futures this task did not release itself */
    for (size_t i = 0; i < ctx.nsubs; i++) {
        herd_future_release(ctx.subs[i]);
        herd_future_unref(ctx.subs[i]);
    }
    free(ctx.subs);
    herd_msg_done d = { .key = t->key, .ok = rc == 0, .value = out, .duration_us = us, .attempt = t->attempt,
                        .held = -1 };
    hold_result(w, t, &d);
    if (d.held >= 0) out = NULL;          /* the store took it */
    char msg[160];
    if (!d.ok) {
        if (!ctx.fail_msg) snprintf(msg, sizeof msg, "task returned %d (%s)", rc, herd_strerror(rc));
        d.error = herd_pstr_c(ctx.fail_msg ? ctx.fail_msg : msg);
    }
    pthread_mutex_lock(&w->mu);
    size_t before = w->out.sb.size;
    char big[160];
    if (herd_proto_pack_done(&w->out.sb, &d)) {     /* the result cannot travel: fail the task instead */
        d.ok = 0;
        d.error = herd_pstr_c("result could not be encoded (nested deeper than 32 levels?)");
        herd_proto_pack_done(&w->out.sb, &d);
    } else if (w->out.sb.size - before > HERD_MAX_DATA) {   /* too large for a frame: the task fails, not us */
        snprintf(big, sizeof big, "result of %zu bytes exceeds the %zu-byte limit on a task's data",
                 w->out.sb.size - before, (size_t)HERD_MAX_DATA);
        w->out.sb.size = before;
        d.ok = 0;
        d.value = NULL;
        d.error = herd_pstr_c(big);
        herd_proto_pack_done(&w->out.sb, &d);
    }
    herd_outbox_send_unlock(&w->out);
    herd_value_free(out);
    free(ctx.fail_msg);
}

static void *exec_main(void *arg)
{
    wk *w = arg;
    fncache *cache = NULL;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        if (w->stop) break;
        /* an extra executor (started while others blocked on sub-tasks) retires
         * when not needed, handing any wakeup it took to a thread that stays */
        if (w->nexec - w->blocked > w->cfg.nthreads) { pthread_cond_signal(&w->cv); break; }
        if (!w->head || w->paused) { pthread_cond_wait(&w->cv, &w->mu); continue; }
        wtask *t = w->head;
        w->head = t->next;
        if (!w->head) w->tail = NULL;
        pthread_mutex_unlock(&w->mu);
        run_one(w, t, &cache);
        free(t->task);
        free(t->run_name);
        herd_value_free(t->args);
        herd_value_free(t->tags);
        herd_value_free(t->inputs);
        free(t);
        pthread_mutex_lock(&w->mu);
    }
    w->nexec--;
    /* the reference goes under the lock, so herd_worker_run, waiting for the
     * executors, frees the worker on its own thread, before the program's
     * exit handlers (OpenSSL's among them) run */
    int last = atomic_fetch_sub(&w->refs, 1) == 1;
    pthread_cond_broadcast(&w->evcv);
    pthread_mutex_unlock(&w->mu);
    while (cache) { fncache *n = cache->next; free(cache->name); free(cache); cache = n; }
    if (last) wk_free(w);
    return NULL;
}

/* ---- connection ---- */
/* m's values are taken. */
static int on_run(wk *w, herd_msg_run *m)
{
    wtask *t = calloc(1, sizeof *t);
    if (t) {
        t->key = m->key;
        t->attempt = m->attempt;
        t->task = herd_pstr_dup(m->task);
        t->run_name = herd_pstr_dup(m->run_name);
    }
    if (!t || !t->task || !t->run_name) {
        if (t) { free(t->task); free(t->run_name); free(t); }
        herd_value_free(m->args);
        herd_value_free(m->tags);
        herd_value_free(m->inputs);
        return -ENOMEM;
    }
    t->args = m->args;
    t->tags = m->tags;
    t->inputs = m->inputs;
    t->hold = m->hold;
    pthread_mutex_lock(&w->mu);
    if (w->tail) w->tail->next = t; else w->head = t;
    w->tail = t;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    return 0;
}

static void stop_loop(wk *w, int code)
{
    pthread_mutex_lock(&w->mu);
    if (!w->stop) w->exit_code = code;
    w->stop = 1;
    pthread_cond_broadcast(&w->cv);
    pthread_cond_broadcast(&w->evcv);
    pthread_cond_broadcast(&w->rcv);
    pthread_mutex_unlock(&w->mu);
    event_base_loopbreak(w->base);
}

/* A message that does not unpack: close the connection (on_close ends the
 * loop), saying why. */
static void bad_message(wk *w, herd_conn *c, const herd_err *e)
{
    char why[sizeof e->msg + 32];
    snprintf(why, sizeof why, "protocol error: %s", e->msg);
    wlog(w, HERD_LOG_ERROR, "closing the connection to the scheduler at %s: %s", w->address, why);
    herd_conn_fail(c, why);
}

static void on_msg(herd_conn *c, const msgpack_object *m, void *ud)
{
    wk *w = ud;
    herd_err e;                           /* set by a failing unpack (not zeroed: 1 KiB) */
    e.msg[0] = '\0';
    int op = herd_proto_op(m, NULL);      /* comm.c checked it */
    switch (op) {
    case OP_WELCOME: {
        herd_msg_welcome wm;
        if (herd_proto_unpack_welcome(m, &wm, &e)) break;
        if (w->welcomed) return;
        if (herd_client_init(&w->subcl, wm.id, &sub_tp, w) == 0) {
            w->subcl_ready = 1;
            w->subcl.peer_token = w->token ? strdup(w->token) : NULL;   /* it fetches held sub-task results */
            w->subcl.peer_tls = w->cfg.tls;
            w->subcl.transfer = wm.transfer;
            w->subcl.peer_budget = w->have_budget ? &w->budget : NULL;
            w->subrunner.cl = &w->subcl;
            w->subrunner.is_task_client = 1;
        }
        double iv = wm.heartbeat_interval;
        struct timeval tv = { (time_t)iv, (suseconds_t)((iv - floor(iv)) * 1e6) };
        event_add(w->hb_ev, &tv);
        life_start(w);
        pthread_mutex_lock(&w->mu);
        w->welcomed = 1;
        w->transfer = wm.transfer;
        pthread_mutex_unlock(&w->mu);
        return;
    }
    case OP_LOG: {         /* a sub-task's log line */
        herd_msg_log lm;
        if (herd_proto_unpack_log(m, &lm, &e)) break;
        if (w->subcl_ready) herd_client_logf(&w->subcl, lm.level, "%.*s", (int)lm.text.len, lm.text.ptr);
        return;
    }
    case OP_REFUSE: {
        herd_msg_reason r;
        if (herd_proto_unpack_refuse(m, &r, &e)) break;
        wlog(w, HERD_LOG_ERROR, "the scheduler at %s refused this worker: %.*s", w->address, (int)r.reason.len,
             r.reason.ptr);
        stop_loop(w, HERD_WORKER_EXIT_REFUSED);
        return;
    }
    case OP_RUN: {
        herd_msg_run rm;
        if (herd_proto_unpack_run(m, &rm, &e)) break;
        if (!on_run(w, &rm)) return;
        herd_err_set(&e, -ENOMEM, "RUN: out of memory");
        break;
    }
    case OP_RESULT: {      /* a sub-task's state */
        herd_msg_result r;
        if (herd_proto_unpack_result(m, &r, &e)) break;
        char *error = herd_pstr_dup(r.error);
        if (w->subcl_ready) herd_client_deliver_key(&w->subcl, r.key, r.state, r.value, error);
        else herd_value_free(r.value);
        free(error);
        return;
    }
    case OP_HELD: {        /* a sub-task's result stays on a worker */
        herd_msg_held hm;
        if (herd_proto_unpack_held(m, &hm, &e)) break;
        char *peer = herd_pstr_dup(hm.peer), *error = herd_pstr_dup(hm.error);
        if (w->subcl_ready) herd_client_deliver_held_key(&w->subcl, hm.key, peer, error ? error : "the value was lost");
        free(peer);
        free(error);
        return;
    }
    case OP_FETCH: {       /* relay one of this worker's values */
        herd_msg_key k;
        if (herd_proto_unpack_fetch(m, &k, &e)) break;
        send_relayed(w, k.key);
        return;
    }
    case OP_VALUE: {       /* a relayed value this worker asked for */
        herd_msg_value vm;
        if (herd_proto_unpack_value(m, &vm, &e)) break;
        char *error = herd_pstr_dup(vm.error);
        on_relayed(w, vm.key, vm.value, error);
        free(error);
        return;
    }
    case OP_FREE: {
        herd_msg_key k;
        if (herd_proto_unpack_free(m, &k, &e)) break;
        if (w->store) herd_store_del(w->store, k.key);
        return;
    }
    case OP_CLOSE: {
        herd_msg_reason r;
        if (herd_proto_unpack_close(m, &r, &e)) break;
        stop_loop(w, HERD_WORKER_EXIT_OK);
        return;
    }
    default:
        herd_err_set(&e, -HERD_EPROTO, "%s: not a message a worker takes", herd_proto_op_name(op));
    }
    bad_message(w, c, &e);
}

static void on_close(herd_conn *c, const char *why, void *ud)
{
    wk *w = ud;
    if (!w->stop && strncmp(why, "TLS: ", 5) == 0) {
        /* the same certificates would be refused again: no reconnecting */
        wlog(w, HERD_LOG_ERROR, "cannot connect to the scheduler at %s: %s", w->address, why);
        stop_loop(w, HERD_WORKER_EXIT_REFUSED);
        return;
    }
    if (!w->stop)
        wlog(w, HERD_LOG_INFO, "scheduler connection lost (%s)%s", why, w->cfg.reconnect ? "" : "; exiting");
    stop_loop(w, w->welcomed ? HERD_WORKER_EXIT_LOST : HERD_WORKER_EXIT_ERROR);
}

static void hb_cb(evutil_socket_t fd, short what, void *arg)
{
    wk *w = arg;
    if (!w->conn) return;
    herd_proto_pack_heartbeat(herd_conn_buf(w->conn));
    herd_conn_end(w->conn);
}

static void stop_cb(evutil_socket_t fd, short what, void *arg) { stop_loop(arg, HERD_WORKER_EXIT_OK); }

/* Dask's --lifetime: past it the worker asks the scheduler to retire it
 * (CONTROL "retire": the scheduler's drain, as adaptive scaling's), takes no
 * new task, finishes its running ones and exits 0 when told to close. */
static void life_cb(evutil_socket_t fd, short what, void *arg)
{
    wk *w = arg;
    if (!w->conn || w->stop) return;
    wlog(w, HERD_LOG_INFO, "retiring: lifetime (%.3gs, stagger %.3gs) reached; finishing its running tasks",
         w->cfg.lifetime, w->cfg.lifetime_stagger);
    herd_msg_control m = { .verb = herd_pstr_c("retire"), .arg = herd_pstr_c("lifetime") };
    herd_proto_pack_control(herd_conn_buf(w->conn), &m);
    herd_conn_end(w->conn);
}

/* On the first WELCOME: the lifetime timer, lifetime +/- a uniform draw
 * within the stagger (Dask: lifetime += (2 * random() - 1) * stagger), so a
 * cluster's workers do not all leave at once. */
static void life_start(wk *w)
{
    if (w->cfg.lifetime <= 0 || w->life_ev) return;
    uint64_t r = 0;
    if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r) r = (uint64_t)getpid() * 0x9e3779b97f4a7c15ull;
    double u = (double)(r >> 11) / 9007199254740992.0;           /* [0, 1) */
    double secs = w->cfg.lifetime + (2 * u - 1) * w->cfg.lifetime_stagger;
    if (secs < 0) secs = 0;
    if (!(w->life_ev = evtimer_new(w->base, life_cb, w))) {
        wlog(w, HERD_LOG_ERROR, "lifetime: out of memory for its timer; the worker will not retire by itself");
        return;
    }
    struct timeval tv = { (time_t)secs, (suseconds_t)((secs - floor(secs)) * 1e6) };
    evtimer_add(w->life_ev, &tv);
    wlog(w, HERD_LOG_DEBUG, "lifetime: retiring in %.3gs", secs);
}

/* SIGTERM (a provider stopping its worker process): leave as after CLOSE,
 * so the spill directory goes too. */
static void term_cb(evutil_socket_t fd, short what, void *arg)
{
    wk *w = arg;
    wlog(w, HERD_LOG_DEBUG, "SIGTERM: exiting");
    stop_loop(w, HERD_WORKER_EXIT_OK);
}

/* Over memory_limit: the scheduler is told why (CLOSE from a worker: its
 * last words, which its death and rescheduling messages then give instead of
 * "connection closed by peer"), and the worker exits as soon as that has
 * left the process, or after MEM_EXIT_WAIT_MS whatever happened to it. */
#define MEM_EXIT_WAIT_MS 1000

static void mem_cb(evutil_socket_t fd, short what, void *arg)
{
    wk *w = arg;
    if (w->mem_exit_ticks) {                     /* CLOSE sent: waiting for it to leave */
        if (!herd_conn_queued(w->conn) || ++w->mem_exit_ticks > MEM_EXIT_WAIT_MS)
            _exit(HERD_WORKER_EXIT_MEMORY_LIMIT);
        return;
    }
    int64_t rss = herd_rss_bytes();
    if (w->cfg.memory_limit > 0 && rss > w->cfg.memory_limit) {
        wlog(w, HERD_LOG_ERROR, "memory %lld bytes exceeds memory_limit %lld; exiting so its tasks run elsewhere",
             (long long)rss, (long long)w->cfg.memory_limit);
        if (!w->conn) _exit(HERD_WORKER_EXIT_MEMORY_LIMIT);
        char why[128];
        snprintf(why, sizeof why, "exceeded memory_limit %lld MiB (RSS %lld MiB)",
                 (long long)(w->cfg.memory_limit >> 20), (long long)(rss >> 20));
        herd_msg_reason m = { herd_pstr_c(why) };
        if (herd_proto_pack_close(herd_conn_buf(w->conn), &m)) _exit(HERD_WORKER_EXIT_MEMORY_LIMIT);
        herd_conn_flush(w->conn);
        if (!herd_conn_queued(w->conn)) _exit(HERD_WORKER_EXIT_MEMORY_LIMIT);
        w->mem_exit_ticks = 1;                   /* now every millisecond until it is out */
        struct timeval tv = { 0, 1000 };
        event_del(w->mem_ev);
        event_add(w->mem_ev, &tv);
    }
}

static void wk_free(wk *w)
{
    if (w->subcl_ready) {
        herd_client_shutdown(&w->subcl, HERD_CRASHED, "worker stopped");
        herd_client_destroy(&w->subcl);
    }
    while (w->head) {
        wtask *t = w->head;
        w->head = t->next;
        free(t->task); free(t->run_name); herd_value_free(t->args); herd_value_free(t->tags);
        herd_value_free(t->inputs); free(t);
    }
    herd_peer_server_stop(w->peer);
    free(w->peer_addr);
    herd_spill_free(w->spill);                   /* its files first, then the store */
    herd_store_free(w->store);
    if (w->have_budget) herd_fetch_budget_destroy(&w->budget);
    for (size_t i = 0; i < w->nrelay_logged; i++) free(w->relay_logged[i]);
    free(w->relay_logged);
    pthread_cond_destroy(&w->rcv);
    if (w->conn) herd_conn_free(w->conn);
    herd_outbox_destroy(&w->out);
    if (w->hb_ev) event_free(w->hb_ev);
    if (w->stop_ev) event_free(w->stop_ev);
    if (w->mem_ev) event_free(w->mem_ev);
    if (w->life_ev) event_free(w->life_ev);
    if (w->base) herd_event_base_drain_free(w->base);
    herd_value_free(w->resources);
    free(w->address);
    free(w->token);
    free(w->name);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    pthread_cond_destroy(&w->evcv);
    free(w);
}

/* Under the lock: an executor drops its reference holding it too, so the
 * last one here cannot free w while an executor still uses the lock. */
static void wk_unref(wk *w)
{
    pthread_mutex_lock(&w->mu);
    int last = atomic_fetch_sub(&w->refs, 1) == 1;
    pthread_mutex_unlock(&w->mu);
    if (last) wk_free(w);
}

/* The spiller's lines go to this worker's log and, as a LOG without a task,
 * to the scheduler's (the flow's log for a temporary cluster). */
static void spill_log(void *ud, int level, const char *line)
{
    wk *w = ud;
    wlog(w, level, "%s", line);
    herd_msg_log m = { 0, level, herd_pstr_c(line) };
    pthread_mutex_lock(&w->mu);
    herd_proto_pack_log(&w->out.sb, &m);
    herd_outbox_send_unlock(&w->out);
}

/* Paused: executors start no task and the scheduler sends none (PAUSE). */
static void spill_pause(void *ud, int paused)
{
    wk *w = ud;
    herd_msg_pause m = { paused };
    pthread_mutex_lock(&w->mu);
    w->paused = paused;
    if (!paused) pthread_cond_broadcast(&w->cv);
    herd_proto_pack_pause(&w->out.sb, &m);
    herd_outbox_send_unlock(&w->out);
}

/* Serve held values and tell the scheduler where. A scheduler on this host
 * (unix://DIR/…): a socket in DIR, the cluster's private directory. A
 * scheduler reached over tcp:// or tls://: the same scheme on the address
 * this worker reaches the scheduler from (the interface other hosts of the
 * cluster can reach too), a port picked by the system, with the same TLS
 * credentials and token. A worker that cannot sends every result inline. */
static void start_peer(wk *w)
{
    static atomic_uint seq;
    herd_addr a;
    char listen[300];
    if (herd_addr_parse(w->address, &a, NULL)) return;
    if (a.is_unix) {
        char *slash = strrchr(a.path, '/');
        if (!slash) return;
        snprintf(listen, sizeof listen, "unix://%.*s/peer-%ld-%u.sock", (int)(slash - a.path), a.path,
                 (long)getpid(), atomic_fetch_add(&seq, 1));
    } else {
        char ip[64];
        if (herd_conn_local_ip(w->conn, ip, sizeof ip)) return;
        snprintf(listen, sizeof listen, strchr(ip, ':') ? "%s://[%s]:0" : "%s://%s:0", a.is_tls ? "tls" : "tcp", ip);
    }
    herd_err e;
    if (!(w->store = herd_store_new())) return;
    if (herd_peer_server_start(&w->peer, listen, w->token, w->cfg.tls, w->store, w->name, &e)) {
        wlog(w, HERD_LOG_WARN, "results travel inline: %s", e.msg);
        herd_store_free(w->store);
        w->store = NULL;
        return;
    }
    /* behind NAT or a port forward, HERD_PEER_ADDRESS is what others dial */
    const char *adv = getenv("HERD_PEER_ADDRESS");
    herd_addr aa;
    if (adv && *adv && herd_addr_parse(adv, &aa, &e) == 0) wlog(w, HERD_LOG_INFO, "serving held values at %s, "
                                                                 "reached as %s (HERD_PEER_ADDRESS)",
                                                                 herd_peer_server_address(w->peer), adv);
    else if (adv && *adv) { wlog(w, HERD_LOG_WARN, "HERD_PEER_ADDRESS ignored: %s", e.msg); adv = NULL; }
    else adv = NULL;
    w->peer_addr = strdup(adv ? adv : herd_peer_server_address(w->peer));
    herd_msg_peer m = { herd_pstr_c(w->peer_addr) };
    herd_proto_pack_peer(herd_conn_buf(w->conn), &m);
    herd_conn_end(w->conn);
}

/* Under memory_limit (a worker process): the spiller of its store, by
 * default in the cluster's private directory (where the peer socket is);
 * without a store (results travel inline) the pause alone. */
static void start_memory(wk *w)
{
    if (w->cfg.memory_limit <= 0) return;
    char parent[200] = "";
    const char *slash;
    herd_addr a;
    if (w->store && herd_addr_parse(w->address, &a, NULL) == 0 && a.is_unix && (slash = strrchr(a.path, '/')))
        snprintf(parent, sizeof parent, "%.*s", (int)(slash - a.path), a.path);
    herd_spill_cfg sc = { .memory_limit = w->cfg.memory_limit, .local_directory = w->cfg.local_directory,
                          .parent = parent[0] ? parent : NULL, .name = w->name, .log = spill_log,
                          .on_pause = spill_pause, .ud = w };
    herd_err e;
    if (herd_spill_new(&w->spill, w->store, &sc, &e) == 0) return;
    wlog(w, HERD_LOG_ERROR, "held values will not be spilled to disk: %s", e.msg);
    if (w->store && herd_spill_new(&w->spill, NULL, &sc, &e))
        wlog(w, HERD_LOG_ERROR, "no memory monitor (pausing): %s", e.msg);
}

static wk *wk_new(const herd_worker_cfg *cfg, herd_err *err)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, (void (*)(void))evthread_use_pthreads);
    wk *w = calloc(1, sizeof *w);
    if (!w) { herd_err_set(err, -ENOMEM, "out of memory"); return NULL; }
    w->cfg = *cfg;
    w->address = strdup(cfg->address ? cfg->address : "");
    w->token = cfg->token ? strdup(cfg->token) : NULL;
    w->name = strdup(cfg->name ? cfg->name : "worker");
    w->resources = cfg->resources ? herd_value_copy(cfg->resources) : NULL;
    w->cfg.address = w->address; w->cfg.token = w->token; w->cfg.name = w->name; w->cfg.resources = w->resources;
    if (w->cfg.nthreads < 1) w->cfg.nthreads = 1;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    herd_cond_init_monotonic(&w->evcv);
    herd_cond_init_monotonic(&w->rcv);
    atomic_init(&w->refs, 1);
    if (!(w->base = event_base_new())) { wk_free(w); herd_err_set(err, -ENOMEM, "cannot create event loop"); return NULL; }
    if (herd_outbox_init(&w->out, w->base, &w->mu, &w->conn) ||
        !(w->hb_ev = event_new(w->base, -1, EV_PERSIST, hb_cb, w)) ||
        !(w->stop_ev = event_new(w->base, -1, 0, stop_cb, w))) {
        wk_free(w);
        herd_err_set(err, -ENOMEM, "out of memory");
        return NULL;
    }
    if (!(w->conn = herd_conn_dial(w->base, w->address, cfg->tls, cfg->connect_timeout, on_msg, on_close, w, err))) {
        wk_free(w);
        return NULL;
    }
    char host[256] = "";         /* the scheduler matches `workers` annotations against it */
    if (gethostname(host, sizeof host - 1)) host[0] = '\0';
    herd_msg_hello h = { HERD_PROTO_VERSION, ROLE_WORKER, herd_pstr_c(w->token), herd_pstr_c(w->name),
                         w->cfg.nthreads, w->resources, (int64_t)getpid(), herd_pstr_c(host) };
    if (herd_proto_pack_hello(herd_conn_buf(w->conn), &h)) {
        wk_free(w);
        herd_err_set(err, HERD_EARG, "resources: cannot be encoded for the scheduler");
        return NULL;
    }
    herd_conn_end(w->conn);
    /* inputs fetched at once: a tenth of memory_limit as Dask (at least
     * 64 MiB), else 512 MiB; one fetch is always admitted */
    size_t cap = w->cfg.memory_limit > 0 ? (size_t)w->cfg.memory_limit / 10 : (size_t)512 << 20;
    if (herd_fetch_budget_init(&w->budget, cap < ((size_t)64 << 20) ? (size_t)64 << 20 : cap) == 0) w->have_budget = 1;
    start_peer(w);
    start_memory(w);
    for (int i = 0; i < w->cfg.nthreads; i++) {
        pthread_t th;
        atomic_fetch_add(&w->refs, 1);
        if (pthread_create(&th, NULL, exec_main, w)) {
            atomic_fetch_sub(&w->refs, 1);
            herd_err_set(err, -EAGAIN, "cannot start executor thread %d", i);
            stop_loop(w, 1);
            wk_unref(w);
            return NULL;
        }
        pthread_detach(th);
        pthread_mutex_lock(&w->mu);        /* running executors read it */
        w->nexec++;
        pthread_mutex_unlock(&w->mu);
    }
    return w;
}

int herd_worker_run(const herd_worker_cfg *cfg)
{
    herd_err err = { 0 };
    wk *w = wk_new(cfg, &err);
    if (!w) {
        char line[1200];
        snprintf(line, sizeof line, "worker %s: %s", cfg->name ? cfg->name : "?", err.msg);
        herd_log_default(NULL, HERD_LOG_ERROR, line);
        return HERD_WORKER_EXIT_ERROR;
    }
    if (cfg->memory_limit > 0) {
        w->mem_ev = event_new(w->base, -1, EV_PERSIST, mem_cb, w);
        struct timeval tv = { 0, 200000 };
        if (w->mem_ev) event_add(w->mem_ev, &tv);
    }
    /* libevent's handler lives as long as the event; the default comes back after it */
    struct event *term = evsignal_new(w->base, SIGTERM, term_cb, w);
    if (term) event_add(term, NULL);
    herd_block_sigpipe();
    event_base_dispatch(w->base);
    int code = w->exit_code;
    herd_conn_flush(w->conn);
    /* idle executors leave at once; one still inside a task keeps the worker
     * alive through its own reference and is abandoned with the process */
    struct timespec ts;
    herd_deadline(2, &ts);
    pthread_mutex_lock(&w->mu);
    while (atomic_load(&w->refs) > 1 && pthread_cond_timedwait(&w->evcv, &w->mu, &ts) != ETIMEDOUT) {}
    pthread_mutex_unlock(&w->mu);
    herd_spill_close(w->spill);      /* now, even if an abandoned executor keeps w alive */
    if (term) event_free(term);      /* a SIGTERM until here was caught, and ends nothing early */
    wk_unref(w);
    return code;
}

/* ---- thread mode (LocalCluster processes=false) ---- */
struct herd_worker_thread { wk *w; herd_tls *tls; };

static void *loop_main(void *arg)
{
    wk *w = arg;
    herd_block_sigpipe();
    event_base_dispatch(w->base);
    pthread_mutex_lock(&w->mu);
    w->loop_done = 1;
    pthread_cond_broadcast(&w->evcv);
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

static int spec_cfg(const herd_cluster_env *env, const herd_worker_spec *spec, herd_worker_cfg *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->address = env->scheduler_address;
    for (const char *const *e = env->worker_envp; e && *e; e++)
        if (strncmp(*e, "HERD_TOKEN=", 11) == 0) cfg->token = *e + 11;
    cfg->name = spec->name;
    cfg->nthreads = spec->nthreads;
    cfg->resources = spec->resources;
    cfg->connect_timeout = 30;
    return 0;
}

int herd_worker_thread_start(const herd_cluster_env *env, const herd_worker_spec *spec,
                             herd_worker_thread **out, herd_err *err)
{
    if (out) *out = NULL;
    if (!env || !spec || !out || !env->scheduler_address)
        return herd_err_set(err, HERD_EARG, "herd_worker_thread_start: %s",
                            !out ? "out is NULL" : !spec ? "spec is NULL" : !env ? "env is NULL" : "env->scheduler_address is NULL");
    int vrc = herd_resources_check(spec->resources, "worker resources", err);
    if (vrc) return vrc;
    herd_worker_cfg cfg;
    spec_cfg(env, spec, &cfg);
    herd_worker_thread *t = calloc(1, sizeof *t);
    if (!t) return herd_err_set(err, -ENOMEM, "out of memory");
    int trc = herd_tls_from_envp(env->worker_envp, &t->tls, err);
    if (trc && trc != -ENOENT) { free(t); return trc; }
    cfg.tls = t->tls;
    if (!(t->w = wk_new(&cfg, err))) { herd_tls_free(t->tls); free(t); return err ? err->code : -HERD_EARG; }
    t->w->thread_mode = 1;
    int rc = pthread_create(&t->w->loop_thread, NULL, loop_main, t->w);
    if (rc) {
        stop_loop(t->w, 1);
        wk_unref(t->w);
        free(t);
        return herd_err_set(err, -rc, "cannot start worker thread: %s", strerror(rc));
    }
    *out = t;
    return 0;
}

bool herd_worker_thread_alive(herd_worker_thread *t)
{
    if (!t) return false;
    pthread_mutex_lock(&t->w->mu);
    bool alive = !t->w->stop;
    pthread_mutex_unlock(&t->w->mu);
    return alive;
}

void herd_worker_thread_stop(herd_worker_thread *t, bool kill)
{
    if (!t) return;
    event_active(t->w->stop_ev, EV_TIMEOUT, 0);
    pthread_join(t->w->loop_thread, NULL);
    herd_conn_free(t->w->conn);   /* the scheduler sees the worker leave */
    t->w->conn = NULL;
    wk_unref(t->w);               /* executors still running a task keep it alive */
    herd_tls_free(t->tls);        /* the SSL_CTX is reference-counted by live connections */
    free(t);
}

int herd_worker_main(const herd_worker_cfg *cfg)
{
    double backoff = 0.1;
    for (;;) {
        double t0 = herd_now();
        int code = herd_worker_run(cfg);
        if (!cfg->reconnect || code == HERD_WORKER_EXIT_OK || code == HERD_WORKER_EXIT_REFUSED) return code;
        if (herd_now() - t0 > 30) backoff = 0.1;          /* it had been up a while */
        char line[600];
        snprintf(line, sizeof line, "worker %s: reconnecting to %s in %.1fs", cfg->name ? cfg->name : "?",
                 cfg->address, backoff);
        herd_log_default(NULL, HERD_LOG_INFO, line);
        usleep((useconds_t)(backoff * 1e6));
        backoff = backoff * 2 > 10 ? 10 : backoff * 2;
    }
}

/* ---- command line ---- */
int herd_resources_parse(const char *s, herd_value **out, herd_err *err)
{
    *out = herd_map();
    if (!s || !*s) return 0;
    char *copy = strdup(s), *save = NULL;
    int rc = 0;
    for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(item, '=');
        char *end = NULL;
        double v = eq ? strtod(eq + 1, &end) : 0;
        if (!eq || eq == item || !end || *end || end == eq + 1) {
            rc = herd_err_set(err, HERD_EARG, "resources: expected NAME=NUMBER[,NAME=NUMBER…] with numbers > 0, got \"%s\"", item);
            break;
        }
        *eq = '\0';
        herd_map_set(*out, item, v == floor(v) && fabs(v) < 9e15 ? herd_int((int64_t)v) : herd_float(v));
    }
    free(copy);
    if (!rc) rc = herd_resources_check(*out, "resources", err);
    if (rc) { herd_value_free(*out); *out = NULL; }
    return rc;
}

int herd_worker_argv(const herd_cluster_env *env, const herd_worker_spec *spec, char ***argv_out, herd_err *err)
{
    if (argv_out) *argv_out = NULL;
    if (!env || !spec || !argv_out)
        return herd_err_set(err, HERD_EARG, "herd_worker_argv: %s is NULL", !env ? "env" : !spec ? "spec" : "argv_out");
    int vrc = herd_resources_check(spec->resources, "worker resources", err);
    if (vrc) return vrc;
    size_t n = 0;
    while (env->worker_argv && env->worker_argv[n]) n++;
    char **v = calloc(n + 12, sizeof *v);
    if (!v) return herd_err_set(err, -ENOMEM, "out of memory");
    size_t k = 0;
    for (size_t i = 0; i < n; i++) v[k++] = strdup(env->worker_argv[i]);
    char buf[64];
    v[k++] = strdup("--herd-name");
    v[k++] = strdup(spec->name ? spec->name : "worker");
    snprintf(buf, sizeof buf, "%d", spec->nthreads > 0 ? spec->nthreads : 1);
    v[k++] = strdup("--herd-nthreads");
    v[k++] = strdup(buf);
    if (spec->resources && herd_len(spec->resources)) {
        size_t cap = 256, len = 0;
        char *r = malloc(cap);
        r[0] = '\0';
        for (size_t i = 0; i < herd_len(spec->resources); i++) {
            char item[300];
            int il = snprintf(item, sizeof item, "%s%s=%.17g", i ? "," : "", herd_key_at(spec->resources, i),
                              herd_as_float(herd_at(spec->resources, i)));
            if (len + (size_t)il + 1 > cap) { char *nr = realloc(r, cap = 2 * (len + (size_t)il + 1)); if (!nr) break; r = nr; }
            memcpy(r + len, item, (size_t)il + 1);
            len += (size_t)il;
        }
        v[k++] = strdup("--herd-resources");
        v[k++] = r;
    }
    if (spec->memory_limit > 0) {
        snprintf(buf, sizeof buf, "%lld", (long long)spec->memory_limit);
        v[k++] = strdup("--herd-memory-limit");
        v[k++] = strdup(buf);
    }
    v[k] = NULL;
    for (size_t i = 0; i < k; i++)
        if (!v[i]) { herd_strv_free(v); return herd_err_set(err, -ENOMEM, "out of memory"); }
    *argv_out = v;
    return 0;
}

/* A lifetime flag or variable: a duration ("55m", "3s", "90"); NULL or ""
 * leaves *out alone. */
static int life_opt(const char *what, const char *val, double *out, herd_err *err)
{
    if (!val || !*val) return 0;
    if (herd_parse_duration(val, out))
        return herd_err_set(err, HERD_EARG, "%s: expected a duration such as \"55m\", \"3s\" or \"90\", "
                            "got \"%.60s\"", what, val);
    return 0;
}

int herd_worker_cfg_from_args(int argc, char **argv, herd_worker_cfg *cfg, herd_value **res, herd_err *err)
{
    memset(cfg, 0, sizeof *cfg);
    *res = NULL;
    cfg->address = getenv("HERD_SCHEDULER_ADDRESS");
    cfg->token = getenv("HERD_TOKEN");
    cfg->local_directory = getenv("HERD_LOCAL_DIRECTORY");
    cfg->nthreads = 1;
    cfg->connect_timeout = 30;
    int rc = life_opt("HERD_LIFETIME", getenv("HERD_LIFETIME"), &cfg->lifetime, err);
    if (!rc) rc = life_opt("HERD_LIFETIME_STAGGER", getenv("HERD_LIFETIME_STAGGER"), &cfg->lifetime_stagger, err);
    if (rc) return rc;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--herd-worker") == 0) continue;
        if (strcmp(a, "--herd-reconnect") == 0) { cfg->reconnect = 1; continue; }
        if (!val) return herd_err_set(err, HERD_EARG, "worker option %s: expected a value", a);
        char *end;
        if (strcmp(a, "--herd-name") == 0) cfg->name = val;
        else if (strcmp(a, "--herd-address") == 0) cfg->address = val;
        else if (strcmp(a, "--herd-nthreads") == 0) {
            long n = strtol(val, &end, 10);
            if (*end || n < 1 || n > 4096) return herd_err_set(err, HERD_EARG, "--herd-nthreads: expected 1..4096, got \"%s\"", val);
            cfg->nthreads = (int)n;
        } else if (strcmp(a, "--herd-resources") == 0) {
            herd_value_free(*res);
            rc = herd_resources_parse(val, res, err);
            if (rc) return rc;
            cfg->resources = *res;
        } else if (strcmp(a, "--herd-memory-limit") == 0) {
            long long n = strtoll(val, &end, 10);
            if (*end || n < 0) return herd_err_set(err, HERD_EARG, "--herd-memory-limit: expected bytes >= 0, got \"%s\"", val);
            cfg->memory_limit = n;
        } else if (strcmp(a, "--herd-lifetime") == 0) {
            if ((rc = life_opt(a, val, &cfg->lifetime, err))) return rc;
        } else if (strcmp(a, "--herd-lifetime-stagger") == 0) {
            if ((rc = life_opt(a, val, &cfg->lifetime_stagger, err))) return rc;
        } else if (strcmp(a, "--herd-local-directory") == 0) {
            if ((rc = herd_local_directory_check("--herd-local-directory", val, err))) return rc;
            cfg->local_directory = val;
        } else return herd_err_set(err, HERD_EARG, "unknown worker option \"%s\"", a);
        i++;
    }
    if (!cfg->address || !*cfg->address)
        return herd_err_set(err, HERD_EARG, "worker: no scheduler address (HERD_SCHEDULER_ADDRESS or --herd-address)");
    if (!cfg->name) cfg->name = "worker";
    return 0;
}
