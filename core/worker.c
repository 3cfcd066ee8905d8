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
#include "worker_int.h"
#include "remote.h"
#include "tmpdir.h"

#include <errno.h>
#include <time.h>
#include <math.h>
#include <signal.h>
#include <sys/random.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <event2/thread.h>

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
    int fr = wk_fetch_inputs(w, t, why, sizeof why);
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
    wk_hold_result(w, t, &d);
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
        if (t->acquire) wk_acquire(w, t);
        else run_one(w, t, &cache);
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

/* ACQUIRE: queued ahead of the tasks (a retiring worker waits for it). */
static int on_acquire(wk *w, const herd_msg_acquire *m)
{
    wtask *t = calloc(1, sizeof *t);
    char *peer = herd_pstr_dup(m->peer);
    herd_value *in = t && peer ? herd_tuple("v", herd_tuple("Is", (int64_t)m->key, peer)) : NULL;
    free(peer);
    if (!in || herd_len(in) != 1 || herd_len(herd_at(in, 0)) != 2) {
        free(t);
        herd_value_free(in);
        return -ENOMEM;
    }
    t->key = m->key;
    t->acquire = 1;
    t->nbytes = m->nbytes;
    t->inputs = in;
    pthread_mutex_lock(&w->mu);
    t->next = w->head;
    w->head = t;
    if (!w->tail) w->tail = t;
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
    /* a sub-task's log line, state, or result kept on a worker */
    int taken = herd_remote_client_msg(w->subcl_ready ? &w->subcl : NULL, op, m, &e);
    if (taken > 0) return;
    if (taken == 0) switch (op) {
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
    case OP_FETCH: {       /* relay one of this worker's values */
        herd_msg_fetch k;
        if (herd_proto_unpack_fetch(m, &k, &e)) break;
        wk_on_fetch(w, &k);
        return;
    }
    case OP_MORE: {
        herd_msg_more mm;
        if (herd_proto_unpack_more(m, &mm, &e) || wk_on_more(w, &mm, &e)) break;
        return;
    }
    case OP_VALUE: {       /* a relayed value this worker asked for begins (or is not coming) */
        herd_msg_value vm;
        if (herd_proto_unpack_value(m, &vm, &e) || wk_on_value(w, &vm, &e)) break;
        return;
    }
    case OP_CHUNK: {
        herd_msg_chunk cm;
        if (herd_proto_unpack_chunk(m, &cm, &e) || wk_on_chunk(w, &cm, &e)) break;
        return;
    }
    case OP_ACQUIRE: {     /* hold a value a retiring worker holds */
        herd_msg_acquire am;
        if (herd_proto_unpack_acquire(m, &am, &e)) break;
        if (!on_acquire(w, &am)) return;
        herd_err_set(&e, -ENOMEM, "ACQUIRE: out of memory");
        break;
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
    wk_routs_free(w);          /* transfers on this connection end with it */
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

/* The heartbeat carries the worker's own figures (so a scheduler on another
 * host shows them): a worker process's CPU use since the last one and its
 * RSS (a worker thread shares its process: unknown), the bytes it holds in
 * memory and on disk (being paused has its own message, PAUSE). */
static void hb_cb(evutil_socket_t fd, short what, void *arg)
{
    wk *w = arg;
    if (!w->conn) return;
    herd_msg_heartbeat hb = { .cpu = -1, .memory = -1 };
    if (!w->thread_mode) {
        struct timespec ts;
        double now = herd_now();
        if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) == 0) {
            double cpu = (double)ts.tv_sec + ts.tv_nsec / 1e9;
            if (w->cpu_at > 0 && now > w->cpu_at) hb.cpu = 100 * (cpu - w->cpu_s) / (now - w->cpu_at);
            if (hb.cpu < 0 && w->cpu_at > 0) hb.cpu = 0;
            w->cpu_s = cpu;
            w->cpu_at = now;
        }
        int64_t rss = herd_rss_bytes();
        hb.memory = rss > 0 ? rss : -1;
    }
    if (w->store) {
        size_t count, bytes, spilled;
        herd_store_stats(w->store, &count, &bytes, &spilled);
        hb.managed = (int64_t)bytes;
        hb.spilled = (int64_t)spilled;
    }
    herd_proto_pack_heartbeat(herd_conn_buf(w->conn), &hb);
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
    wk_routs_free(w);
    herd_peer_server_stop(w->peer);
    free(w->peer_addr);
    herd_spill_free(w->spill);                   /* its files first, then the store */
    if (w->spill_tmp[0]) herd_tmpdir_remove(w->spill_tmp);
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
    wk_start_peer(w);
    wk_start_memory(w);
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
        w->mem_ev = event_new(w->base, -1, EV_PERSIST, wk_mem_cb, w);
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
    if (w->spill_tmp[0]) { herd_tmpdir_remove(w->spill_tmp); w->spill_tmp[0] = '\0'; }
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
