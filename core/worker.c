/* core/worker.c — the worker: dials the scheduler, says hello, runs RUN
 * messages on N executor threads, batches DONE/LOG messages back, sends
 * heartbeats, enforces the memory limit (process mode), and serves tasks'
 * sub-task clients (herd_task_client) over the same connection. The event
 * loop owns the connection; executor threads talk to it through an outbox. */
#include "worker.h"
#include "client.h"
#include "comm.h"
#include "value_int.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <event2/thread.h>

typedef struct wtask {
    uint64_t key;
    char *task, *run_name;
    herd_value *args;
    herd_value *tags;
    int attempt;
    struct wtask *next;
} wtask;

typedef struct wk {
    herd_worker_cfg cfg;
    char *address, *token, *name;
    herd_value *resources;
    struct event_base *base;
    herd_conn *conn;
    struct event *out_ev, *hb_ev, *stop_ev, *mem_ev;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    wtask *head, *tail;
    msgpack_sbuffer out;       /* packed messages from executor threads */
    msgpack_packer opk;
    int out_signalled;
    int stop;                  /* executors exit */
    int nexec, blocked;        /* executor threads, of which blocked on sub-tasks */
    atomic_int refs;           /* loop + each executor thread */
    int welcomed, refused, exit_code;
    int role;                  /* ROLE_WORKER, or ROLE_CLIENT for a flow's remote client */
    herd_client *cl;           /* where results go: &subcl, or the flow's client */
    pthread_cond_t evcv;       /* welcome, refusal, worker counts, loop end */
    char refuse_msg[512];
    int nworkers, nthreads;    /* the cluster's size, as the scheduler last said */
    uint64_t rpc_seq, rpc_got; /* control calls: the last one sent, the last answered */
    int sched_owned;           /* the scheduler was started for one cluster (WELCOME) */
    int rpc_rc;
    herd_value *rpc_val;       /* its payload (taken by the caller) */
    int loop_done;
    herd_client subcl;
    int subcl_ready;
    struct herd_runner subrunner;
    pthread_t loop_thread;     /* thread mode */
    int thread_mode;
} wk;

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

struct herd_remote { struct wk *w; pthread_mutex_t call_mu; };

static void wk_unref(wk *w);
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

/* ---- outbox (any thread) ---- */
static void out_lock_wake(wk *w)
{
    if (!w->out_signalled) {
        w->out_signalled = 1;
        event_active(w->out_ev, EV_TIMEOUT, 0);
    }
    pthread_mutex_unlock(&w->mu);
}

static void out_cb(evutil_socket_t fd, short what, void *arg)
{
    wk *w = arg;
    pthread_mutex_lock(&w->mu);
    w->out_signalled = 0;
    if (w->conn && w->out.size) herd_conn_append(w->conn, w->out.data, w->out.size);
    msgpack_sbuffer_clear(&w->out);
    pthread_mutex_unlock(&w->mu);
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
    pthread_mutex_lock(&w->mu);
    msgpack_pack_array(&w->opk, 4);
    msgpack_pack_int(&w->opk, OP_LOG);
    msgpack_pack_uint64(&w->opk, ctx->key);
    msgpack_pack_int(&w->opk, HERD_LOG_INFO);
    herd_pack_str(&w->opk, text);
    out_lock_wake(w);
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
    msgpack_packer *pk = &w->opk;
    if (sp->op == OP_SUBMIT) {
        msgpack_pack_array(pk, 11);
        msgpack_pack_int(pk, OP_SUBMIT);
        msgpack_pack_uint64(pk, sp->key);
        herd_pack_str(pk, sp->task);
        herd_value_pack(pk, sp->args);
        msgpack_pack_int(pk, sp->priority);
        if (sp->resources) herd_value_pack(pk, sp->resources); else msgpack_pack_nil(pk);
        msgpack_pack_int(pk, sp->retries);
        msgpack_pack_double(pk, sp->retry_delay);
        msgpack_pack_double(pk, sp->timeout);
        herd_pack_str(pk, sp->run_name);
        if (!sp->tags || herd_value_pack(pk, sp->tags)) msgpack_pack_nil(pk);
    } else {
        msgpack_pack_array(pk, 2);
        msgpack_pack_int(pk, sp->op);
        msgpack_pack_uint64(pk, sp->key);
    }
    out_lock_wake(w);
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
            msgpack_pack_array(&w->opk, 2);
            msgpack_pack_int(&w->opk, OP_SECEDE);
            msgpack_pack_uint64(&w->opk, ctx->key);
            if (!w->out_signalled) { w->out_signalled = 1; event_active(w->out_ev, EV_TIMEOUT, 0); }
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
    herd_err err = { 0 };
    int rc;
    for (fncache *c = *cache; c && !fn; c = c->next)
        if (strcmp(c->name, t->task) == 0) fn = c->fn;
    if (!fn && (rc = herd_task_lookup(t->task, &fn, &err)) == 0) {
        fncache *c = malloc(sizeof *c);
        if (c && (c->name = strdup(t->task))) { c->fn = fn; c->next = *cache; *cache = c; }
        else free(c);
    }
    pthread_mutex_lock(&w->mu);           /* Running, batched with whatever else is queued */
    msgpack_pack_array(&w->opk, 3);
    msgpack_pack_int(&w->opk, OP_STARTED);
    msgpack_pack_uint64(&w->opk, t->key);
    msgpack_pack_int(&w->opk, t->attempt);
    out_lock_wake(w);
    double t0 = herd_now();
    if (fn) {
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
    pthread_mutex_lock(&w->mu);
    msgpack_packer *pk = &w->opk;
    size_t mark = w->out.size;
    msgpack_pack_array(pk, 6);
    msgpack_pack_int(pk, OP_DONE);
    msgpack_pack_uint64(pk, t->key);
    msgpack_pack_int(pk, rc == 0);
    int packed = 0;
    if (rc == 0) packed = herd_value_pack(pk, out) == 0;
    if (!packed) {
        if (rc == 0) {                 /* the result cannot travel: fail the task instead */
            w->out.size = mark;
            msgpack_pack_array(pk, 6);
            msgpack_pack_int(pk, OP_DONE);
            msgpack_pack_uint64(pk, t->key);
            msgpack_pack_int(pk, 0);
            herd_pack_str(pk, "result could not be encoded (nested deeper than 32 levels?)");
        } else if (ctx.fail_msg) {
            herd_pack_str(pk, ctx.fail_msg);
        } else {
            char msg[160];
            snprintf(msg, sizeof msg, "task returned %d (%s)", rc, herd_strerror(rc));
            herd_pack_str(pk, msg);
        }
    }
    msgpack_pack_uint64(pk, us);
    msgpack_pack_int(pk, t->attempt);
    out_lock_wake(w);
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
        if (!w->head) { pthread_cond_wait(&w->cv, &w->mu); continue; }
        wtask *t = w->head;
        w->head = t->next;
        if (!w->head) w->tail = NULL;
        pthread_mutex_unlock(&w->mu);
        run_one(w, t, &cache);
        free(t->task);
        free(t->run_name);
        herd_value_free(t->args);
        herd_value_free(t->tags);
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
static void on_run(wk *w, const msgpack_object *a, uint32_t n)
{
    if (n < 6) { wlog(w, HERD_LOG_WARN, "malformed run message ignored"); return; }
    wtask *t = calloc(1, sizeof *t);
    herd_err err = { 0 };
    if (!t) return;
    t->key = (uint64_t)herd_obj_int(&a[1], 0);
    t->task = herd_obj_strdup(&a[2]);
    t->attempt = (int)herd_obj_int(&a[4], 0);
    t->run_name = herd_obj_strdup(&a[5]);
    if (n >= 7 && a[6].type == MSGPACK_OBJECT_ARRAY) herd_value_from_msgpack(&a[6], &t->tags, NULL);
    if (!t->task || herd_value_from_msgpack(&a[3], &t->args, &err)) {
        /* answer, so the task does not wait forever */
        pthread_mutex_lock(&w->mu);
        msgpack_pack_array(&w->opk, 6);
        msgpack_pack_int(&w->opk, OP_DONE);
        msgpack_pack_uint64(&w->opk, t->key);
        msgpack_pack_int(&w->opk, 0);
        herd_pack_str(&w->opk, err.code ? err.msg : "malformed run message");
        msgpack_pack_uint64(&w->opk, 0);
        msgpack_pack_int(&w->opk, t->attempt);
        out_lock_wake(w);
        free(t->task); free(t->run_name); herd_value_free(t->tags); free(t);
        return;
    }
    pthread_mutex_lock(&w->mu);
    if (w->tail) w->tail->next = t; else w->head = t;
    w->tail = t;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static void stop_loop(wk *w, int code)
{
    pthread_mutex_lock(&w->mu);
    if (!w->stop) w->exit_code = code;
    w->stop = 1;
    pthread_cond_broadcast(&w->cv);
    pthread_cond_broadcast(&w->evcv);
    pthread_mutex_unlock(&w->mu);
    event_base_loopbreak(w->base);
}

static void on_msg(herd_conn *c, const msgpack_object *m, void *ud)
{
    wk *w = ud;
    const msgpack_object *a = m->via.array.ptr;
    uint32_t n = m->via.array.size;
    switch ((int)a[0].via.u64) {
    case OP_WELCOME: {
        if (w->welcomed) break;
        uint32_t id = (uint32_t)herd_obj_int(&a[1], 0);
        if (w->role == ROLE_WORKER) {
            if (herd_client_init(&w->subcl, id, &sub_tp, w) == 0) {
                w->subcl_ready = 1;
                w->cl = &w->subcl;
                w->subrunner.cl = &w->subcl;
                w->subrunner.is_task_client = 1;
            }
            double iv = n >= 3 ? herd_obj_float(&a[2], 1) : 1;
            struct timeval tv = { (time_t)iv, (suseconds_t)((iv - floor(iv)) * 1e6) };
            event_add(w->hb_ev, &tv);
        } else {
            pthread_mutex_lock(&w->cl->mu);
            w->cl->id = id;
            pthread_mutex_unlock(&w->cl->mu);
        }
        pthread_mutex_lock(&w->mu);
        w->welcomed = 1;
        if (n >= 5) { w->nworkers = (int)herd_obj_int(&a[3], 0); w->nthreads = (int)herd_obj_int(&a[4], 0); }
        w->sched_owned = n >= 6 && herd_obj_int(&a[5], 0) == 1;
        pthread_cond_broadcast(&w->evcv);
        pthread_mutex_unlock(&w->mu);
        break;
    }
    case OP_WORKERS:
        if (n < 3) break;
        pthread_mutex_lock(&w->mu);
        w->nworkers = (int)herd_obj_int(&a[1], 0);
        w->nthreads = (int)herd_obj_int(&a[2], 0);
        pthread_cond_broadcast(&w->evcv);
        pthread_mutex_unlock(&w->mu);
        break;
    case OP_LOG:
        if (n >= 4 && w->cl) {
            char *text = herd_obj_strdup(&a[3]);
            if (text) herd_client_logf(w->cl, (int)herd_obj_int(&a[2], HERD_LOG_INFO), "%s", text);
            free(text);
        }
        break;
    case OP_REFUSE: {
        char *why = n >= 2 ? herd_obj_strdup(&a[1]) : NULL;
        if (w->role == ROLE_WORKER)
            wlog(w, HERD_LOG_ERROR, "the scheduler at %s refused this worker: %s", w->address, why ? why : "?");
        pthread_mutex_lock(&w->mu);
        snprintf(w->refuse_msg, sizeof w->refuse_msg, "%s", why ? why : "refused");
        w->refused = 1;
        pthread_cond_broadcast(&w->evcv);
        pthread_mutex_unlock(&w->mu);
        free(why);
        stop_loop(w, HERD_WORKER_EXIT_REFUSED);
        break;
    }
    case OP_REPLY:
        if (n >= 4) {
            herd_value *v = NULL;
            herd_value_from_msgpack(&a[3], &v, NULL);
            pthread_mutex_lock(&w->mu);
            if ((uint64_t)herd_obj_int(&a[1], 0) == w->rpc_seq) {
                herd_value_free(w->rpc_val);
                w->rpc_val = v;
                v = NULL;
                w->rpc_rc = (int)herd_obj_int(&a[2], -HERD_EPROTO);
                w->rpc_got = w->rpc_seq;
                pthread_cond_broadcast(&w->evcv);
            }
            pthread_mutex_unlock(&w->mu);
            herd_value_free(v);
        }
        break;
    case OP_RUN: on_run(w, a, n); break;
    case OP_RESULT:
        if (n >= 4 && w->cl) {
            herd_state st = (herd_state)herd_obj_int(&a[2], HERD_CRASHED);
            herd_value *v = NULL;
            char *e = NULL;
            if (st == HERD_COMPLETED) herd_value_from_msgpack(&a[3], &v, NULL);
            else e = herd_obj_strdup(&a[3]);
            /* Scheduled and Running come too (no payload); anything else is bad */
            if (!herd_state_is_final(st) && st != HERD_SCHEDULED && st != HERD_RUNNING) st = HERD_CRASHED;
            herd_client_deliver_key(w->cl, (uint64_t)herd_obj_int(&a[1], 0), st, v, e);
            free(e);
        }
        break;
    case OP_CLOSE: stop_loop(w, HERD_WORKER_EXIT_OK); break;
    default: break;
    }
}

static void on_close(herd_conn *c, const char *why, void *ud)
{
    wk *w = ud;
    if (w->role == ROLE_CLIENT) {
        if (!w->stop && w->cl) {
            char msg[600];
            snprintf(msg, sizeof msg, "lost the connection to the scheduler at %s: %s", w->address, why);
            herd_client_logf(w->cl, HERD_LOG_ERROR, "%s", msg);
            herd_client_shutdown(w->cl, HERD_CRASHED, msg);
        }
    } else if (!w->stop && strncmp(why, "TLS: ", 5) == 0) {
        /* the same certificates would be refused again: no reconnecting */
        wlog(w, HERD_LOG_ERROR, "the scheduler at %s refused this worker: %s", w->address, why);
        stop_loop(w, HERD_WORKER_EXIT_REFUSED);
        return;
    } else if (!w->stop) {
        wlog(w, HERD_LOG_INFO, "scheduler connection lost (%s)%s", why, w->cfg.reconnect ? "" : "; exiting");
    }
    if (w->role == ROLE_CLIENT && !w->welcomed && strncmp(why, "TLS: ", 5) == 0) {
        pthread_mutex_lock(&w->mu);
        snprintf(w->refuse_msg, sizeof w->refuse_msg, "%s", why);
        w->refused = 1;
        pthread_mutex_unlock(&w->mu);
    }
    stop_loop(w, w->welcomed ? HERD_WORKER_EXIT_LOST : HERD_WORKER_EXIT_ERROR);
}

static void hb_cb(evutil_socket_t fd, short what, void *arg)
{
    wk *w = arg;
    if (!w->conn) return;
    msgpack_packer *pk = herd_conn_packer(w->conn);
    msgpack_pack_array(pk, 1);
    msgpack_pack_int(pk, OP_HEARTBEAT);
    herd_conn_end(w->conn);
}

static void stop_cb(evutil_socket_t fd, short what, void *arg) { stop_loop(arg, HERD_WORKER_EXIT_OK); }

static int64_t rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, rss = 0;
    if (!f) return 0;
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2) rss = 0;
    fclose(f);
    return (int64_t)rss * sysconf(_SC_PAGESIZE);
}

static void mem_cb(evutil_socket_t fd, short what, void *arg)
{
    wk *w = arg;
    int64_t rss = rss_bytes();
    if (w->cfg.memory_limit > 0 && rss > w->cfg.memory_limit) {
        wlog(w, HERD_LOG_ERROR, "memory %lld bytes exceeds memory_limit %lld; exiting so its tasks run elsewhere",
             (long long)rss, (long long)w->cfg.memory_limit);
        _exit(137);
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
        free(t->task); free(t->run_name); herd_value_free(t->args); herd_value_free(t->tags); free(t);
    }
    if (w->conn) herd_conn_free(w->conn);
    if (w->out_ev) event_free(w->out_ev);
    if (w->hb_ev) event_free(w->hb_ev);
    if (w->stop_ev) event_free(w->stop_ev);
    if (w->mem_ev) event_free(w->mem_ev);
    if (w->base) herd_event_base_drain_free(w->base);
    msgpack_sbuffer_destroy(&w->out);
    herd_value_free(w->rpc_val);
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

static wk *wk_new(const herd_worker_cfg *cfg, int role, herd_client *cl, herd_err *err)
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
    w->role = role;
    w->cl = cl;
    if (role == ROLE_CLIENT) w->cfg.nthreads = 0;
    else if (w->cfg.nthreads < 1) w->cfg.nthreads = 1;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    herd_cond_init_monotonic(&w->evcv);
    msgpack_sbuffer_init(&w->out);
    msgpack_packer_init(&w->opk, &w->out, msgpack_sbuffer_write);
    atomic_init(&w->refs, 1);
    int fd = -1;
    herd_addr a;
    if (herd_tls_addr_check(cfg->tls, w->address, err) || herd_addr_parse(w->address, &a, err)) { wk_free(w); return NULL; }
    int rc = herd_dial(w->address, cfg->connect_timeout > 0 ? cfg->connect_timeout : 30, &fd, err);
    if (rc) { wk_free(w); return NULL; }
    w->base = event_base_new();
    struct bufferevent *bev = !w->base ? NULL
                            : cfg->tls ? herd_tls_connect(cfg->tls, w->base, fd, a.host, err)   /* closes fd on failure */
                                       : bufferevent_socket_new(w->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!bev) {
        if (!cfg->tls || !w->base) close(fd);
        wk_free(w);
        if (!cfg->tls || !w->base) herd_err_set(err, -ENOMEM, "cannot create event loop");
        return NULL;
    }
    w->conn = herd_conn_new(bev, w->address, on_msg, on_close, w);
    w->out_ev = event_new(w->base, -1, 0, out_cb, w);
    w->hb_ev = event_new(w->base, -1, EV_PERSIST, hb_cb, w);
    w->stop_ev = event_new(w->base, -1, 0, stop_cb, w);
    if (!w->conn || !w->out_ev || !w->hb_ev || !w->stop_ev) { wk_free(w); herd_err_set(err, -ENOMEM, "out of memory"); return NULL; }
    msgpack_packer *pk = herd_conn_packer(w->conn);
    msgpack_pack_array(pk, 8);
    msgpack_pack_int(pk, OP_HELLO);
    msgpack_pack_int(pk, HERD_PROTO_VERSION);
    msgpack_pack_int(pk, role);
    herd_pack_str(pk, w->token ? w->token : "");
    herd_pack_str(pk, w->name);
    msgpack_pack_int(pk, w->cfg.nthreads);
    if (w->resources) herd_value_pack(pk, w->resources); else msgpack_pack_nil(pk);
    msgpack_pack_int64(pk, (int64_t)getpid());
    herd_conn_end(w->conn);
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
    wk *w = wk_new(cfg, ROLE_WORKER, NULL, &err);
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
    herd_worker_cfg cfg;
    spec_cfg(env, spec, &cfg);
    herd_worker_thread *t = calloc(1, sizeof *t);
    if (!t) return herd_err_set(err, -ENOMEM, "out of memory");
    int trc = herd_tls_from_envp(env->worker_envp, &t->tls, err);
    if (trc && trc != -ENOENT) { free(t); return trc; }
    cfg.tls = t->tls;
    if (!(t->w = wk_new(&cfg, ROLE_WORKER, NULL, err))) { herd_tls_free(t->tls); free(t); return err ? err->code : -HERD_EARG; }
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

/* ---- a flow's client connection to an existing scheduler ---- */

static int remote_send(void *ud, herd_submit_spec *sp) { return sub_send(((herd_remote *)ud)->w, sp); }
const herd_transport herd_remote_tp = { remote_send, NULL };

int herd_remote_connect(const char *address, const char *token, herd_tls *tls, const char *name,
                        double timeout_s, herd_client *cl, herd_remote **out, herd_err *err)
{
    herd_worker_cfg cfg = { .address = address, .token = token, .tls = tls, .name = name,
                            .connect_timeout = timeout_s };
    herd_remote *r = calloc(1, sizeof *r);
    if (!r) return herd_err_set(err, -ENOMEM, "out of memory");
    pthread_mutex_init(&r->call_mu, NULL);
    if (!(r->w = wk_new(&cfg, ROLE_CLIENT, cl, err))) {
        pthread_mutex_destroy(&r->call_mu);
        free(r);
        return err ? err->code : -HERD_ECLOSED;
    }
    wk *w = r->w;
    int rc = pthread_create(&w->loop_thread, NULL, loop_main, w);
    if (rc) {
        wk_unref(w);
        free(r);
        return herd_err_set(err, -rc, "cannot start the client thread: %s", strerror(rc));
    }
    struct timespec ts;
    herd_deadline(timeout_s > 0 ? timeout_s : 30, &ts);
    pthread_mutex_lock(&w->mu);
    while (!w->welcomed && !w->refused && !w->loop_done)
        if (pthread_cond_timedwait(&w->evcv, &w->mu, &ts) == ETIMEDOUT) break;
    int welcomed = w->welcomed, refused = w->refused;
    char why[512];
    snprintf(why, sizeof why, "%s", w->refuse_msg);
    pthread_mutex_unlock(&w->mu);
    if (welcomed) { *out = r; return 0; }
    herd_remote_close(r);
    if (refused)
        return herd_err_set(err, HERD_EAUTH, "address %s: the scheduler refused this client: %s", address, why);
    return herd_err_set(err, HERD_ETIMEOUT, "address %s: no welcome from the scheduler within %.3gs", address,
                        timeout_s);
}

void herd_remote_close(herd_remote *r)
{
    if (!r) return;
    wk *w = r->w;
    pthread_mutex_lock(&w->mu);
    w->stop = 1;                 /* a closing client: not a lost connection */
    pthread_mutex_unlock(&w->mu);
    event_active(w->stop_ev, EV_TIMEOUT, 0);
    pthread_join(w->loop_thread, NULL);
    w->cl = NULL;
    wk_unref(w);
    pthread_mutex_destroy(&r->call_mu);
    free(r);
}

int herd_remote_control(herd_remote *r, const char *verb, const char *arg, double timeout_s, herd_value **out,
                        herd_err *err)
{
    if (out) *out = NULL;
    wk *w = r->w;
    pthread_mutex_lock(&r->call_mu);   /* one call at a time */
    pthread_mutex_lock(&w->mu);
    if (w->loop_done) {
        pthread_mutex_unlock(&w->mu);
        pthread_mutex_unlock(&r->call_mu);
        return herd_err_set(err, HERD_ECLOSED, "%s: the scheduler connection is closed", verb);
    }
    uint64_t seq = ++w->rpc_seq;
    msgpack_packer *pk = &w->opk;
    msgpack_pack_array(pk, 4);
    msgpack_pack_int(pk, OP_CONTROL);
    msgpack_pack_uint64(pk, seq);
    herd_pack_str(pk, verb);
    if (arg) herd_pack_str(pk, arg); else msgpack_pack_nil(pk);
    out_lock_wake(w);                  /* unlocks w->mu */
    struct timespec ts;
    herd_deadline(timeout_s, &ts);
    pthread_mutex_lock(&w->mu);
    while (w->rpc_got != seq && !w->loop_done)
        if (pthread_cond_timedwait(&w->evcv, &w->mu, &ts) == ETIMEDOUT) break;
    int rc;
    if (w->rpc_got != seq) {
        rc = w->loop_done ? herd_err_set(err, HERD_ECLOSED, "%s: the scheduler connection closed", verb)
                          : herd_err_set(err, HERD_ETIMEOUT, "%s: no answer from the scheduler within %.3gs", verb,
                                         timeout_s);
    } else {
        herd_value *v = w->rpc_val;
        w->rpc_val = NULL;
        rc = w->rpc_rc;
        if (rc) {
            herd_err_set(err, rc, "%s: %s", verb, herd_as_str(v) ? herd_as_str(v) : herd_strerror(rc));
            herd_value_free(v);
        } else if (out) {
            *out = v;
        } else {
            herd_value_free(v);
        }
    }
    pthread_mutex_unlock(&w->mu);
    pthread_mutex_unlock(&r->call_mu);
    return rc;
}

/* ---- what adaptive scaling needs, from a remote scheduler ---- */
#define CONTROL_TIMEOUT_S 10.0

static int rops_load(void *ud, herd_sched_load *l)
{
    memset(l, 0, sizeof *l);
    herd_value *v = NULL;
    int rc = herd_remote_control(ud, "load", NULL, CONTROL_TIMEOUT_S, &v, NULL);
    if (rc) return rc;
    if (herd_typeof(v) != HERD_ARRAY || herd_len(v) < 6) { herd_value_free(v); return -HERD_EPROTO; }
    l->waiting = (int)herd_as_int(herd_at(v, 0));
    l->ready = (int)herd_as_int(herd_at(v, 1));
    l->running = (int)herd_as_int(herd_at(v, 2));
    l->avg_duration = herd_as_float(herd_at(v, 3));
    l->task_seconds = herd_as_float(herd_at(v, 4));
    const herd_value *ws = herd_at(v, 5);
    size_t n = herd_len(ws);
    l->workers = calloc(n ? n : 1, sizeof *l->workers);
    for (size_t i = 0; l->workers && i < n; i++) {
        const herd_value *x = herd_at(ws, i);
        if (herd_len(x) < 5) continue;
        herd_sched_wload *o = &l->workers[l->nworkers++];
        snprintf(o->name, sizeof o->name, "%s", herd_as_str(herd_at(x, 0)) ? herd_as_str(herd_at(x, 0)) : "");
        o->nthreads = (int)herd_as_int(herd_at(x, 1));
        o->busy = (int)herd_as_int(herd_at(x, 2));
        o->closing = (int)herd_as_int(herd_at(x, 3));
        o->idle_for = herd_as_float(herd_at(x, 4));
    }
    herd_value_free(v);
    return l->workers ? 0 : -ENOMEM;
}

static int rops_drain(void *ud, const char *name)
{
    return herd_remote_control(ud, "drain", name, CONTROL_TIMEOUT_S, NULL, NULL);
}

static int rops_has(void *ud, const char *name)
{
    herd_sched_load l;
    int rc = rops_load(ud, &l);
    if (rc) return rc != -HERD_ECLOSED;   /* unanswered: still draining, as far as we know */
    int has = 0;
    for (size_t i = 0; i < l.nworkers; i++) has |= strcmp(l.workers[i].name, name) == 0;
    herd_sched_load_free(&l);
    return has;
}

static int rops_nworkers(void *ud, int *nthreads) { return herd_remote_workers(ud, nthreads); }

const herd_sched_ops herd_remote_ops = { rops_load, rops_drain, rops_has, rops_nworkers, &herd_remote_tp };

int herd_remote_owned(herd_remote *r)
{
    pthread_mutex_lock(&r->w->mu);
    int owned = r->w->sched_owned;
    pthread_mutex_unlock(&r->w->mu);
    return owned;
}

int herd_remote_workers(herd_remote *r, int *nthreads)
{
    pthread_mutex_lock(&r->w->mu);
    int n = r->w->nworkers;
    if (nthreads) *nthreads = r->w->nthreads;
    pthread_mutex_unlock(&r->w->mu);
    return n;
}

int herd_remote_wait_workers(herd_remote *r, int n, double timeout_s, herd_err *err)
{
    wk *w = r->w;
    struct timespec ts;
    herd_deadline(timeout_s, &ts);
    pthread_mutex_lock(&w->mu);
    while (w->nworkers < n && !w->loop_done)
        if ((timeout_s < 0 ? pthread_cond_wait(&w->evcv, &w->mu)
                           : pthread_cond_timedwait(&w->evcv, &w->mu, &ts)) == ETIMEDOUT) break;
    int have = w->nworkers, gone = w->loop_done;
    pthread_mutex_unlock(&w->mu);
    if (have >= n) return 0;
    if (gone) return herd_err_set(err, HERD_ECLOSED, "the scheduler connection is closed");
    return herd_err_set(err, HERD_ETIMEOUT, "only %d of %d workers connected within %.3gs", have, n, timeout_s);
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
        if (!eq || eq == item || !end || *end || end == eq + 1 || !(v > 0)) {
            rc = herd_err_set(err, HERD_EARG, "resources: expected NAME=NUMBER[,NAME=NUMBER…] with numbers > 0, got \"%s\"", item);
            break;
        }
        *eq = '\0';
        herd_map_set(*out, item, v == floor(v) && v < 9e15 ? herd_int((int64_t)v) : herd_float(v));
    }
    free(copy);
    if (rc) { herd_value_free(*out); *out = NULL; }
    return rc;
}

int herd_worker_argv(const herd_cluster_env *env, const herd_worker_spec *spec, char ***argv_out, herd_err *err)
{
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

int herd_worker_cfg_from_args(int argc, char **argv, herd_worker_cfg *cfg, herd_value **res, herd_err *err)
{
    memset(cfg, 0, sizeof *cfg);
    *res = NULL;
    cfg->address = getenv("HERD_SCHEDULER_ADDRESS");
    cfg->token = getenv("HERD_TOKEN");
    cfg->nthreads = 1;
    cfg->connect_timeout = 30;
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
            int rc = herd_resources_parse(val, res, err);
            if (rc) return rc;
            cfg->resources = *res;
        } else if (strcmp(a, "--herd-memory-limit") == 0) {
            long long n = strtoll(val, &end, 10);
            if (*end || n < 0) return herd_err_set(err, HERD_EARG, "--herd-memory-limit: expected bytes >= 0, got \"%s\"", val);
            cfg->memory_limit = n;
        } else return herd_err_set(err, HERD_EARG, "unknown worker option \"%s\"", a);
        i++;
    }
    if (!cfg->address || !*cfg->address)
        return herd_err_set(err, HERD_EARG, "worker: no scheduler address (HERD_SCHEDULER_ADDRESS or --herd-address)");
    if (!cfg->name) cfg->name = "worker";
    return 0;
}
