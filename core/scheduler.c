/* core/scheduler.c — the scheduler's public face (scheduler.h): start and stop,
 * the inbox from in-process clients, synchronous calls from other threads.
 * Everything in the scheduler's files (sched_int.h lists them) but the inbox
 * and the worker counters runs on the scheduler's own thread, so task state
 * needs no locks.
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
#include "sched_int.h"

#include <errno.h>
#include <math.h>
#include <unistd.h>
#include <event2/thread.h>

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
        case OP_SUBMIT: sch_add_task(s, sp, NULL); break;
        case OP_RELEASE: sch_on_release(s, sp->key, 1); herd_spec_free(sp); break;
        case OP_CANCEL: sch_on_cancel(s, sp->key, 1); herd_spec_free(sp); break;
        case OP_FETCH: sch_on_fetch(s, NULL, sp->key); herd_spec_free(sp); break;
        default: herd_spec_free(sp);
        }
        sp = next;
    }
    sch_compact(s);
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

/* The in-process client's waiters wake once per loop iteration, after the
 * results it delivered, not once per result. */
static void wake_later(void *ud) { event_active(((herd_sched *)ud)->wake_ev, EV_TIMEOUT, 0); }
static void wake_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    herd_sched *s = arg;
    if (s->local) herd_client_wake(s->local);
}

void herd_sched_attach_local(herd_sched *s, herd_client *cl)
{
    s->local = cl;
    herd_client_defer_wakes(cl, s->thread, wake_later, s);
    /* the client fetches held values from workers with the cluster's token */
    pthread_mutex_lock(&cl->mu);
    free(cl->peer_token);
    cl->peer_token = s->token ? strdup(s->token) : NULL;
    cl->peer_tls = s->cfg.tls;
    cl->transfer = s->cfg.data_transfer;
    pthread_mutex_unlock(&cl->mu);
}

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

int herd_sched_get_load(herd_sched *s, herd_sched_load *out)
{
    memset(out, 0, sizeof *out);
    return sched_call(s, sch_load_fn, out);
}

struct drainreq { const char *name; int rc; };

static void drain_fn(herd_sched *s, void *arg)
{
    struct drainreq *d = arg;
    d->rc = sch_drain_now(s, d->name);
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
static void lops_note(void *ud, int target, int have, const char *reason) { herd_sched_note_decision(ud, target, have, reason); }
static void lops_provider(void *ud, const char *name, const herd_worker_info *info, size_t n)
{
    herd_sched *s = ud;
    herd_metrics_provider(&s->met, name, info, n);
}
const herd_sched_ops herd_sched_ops_local = { lops_load, lops_drain, lops_has, lops_nworkers, lops_note, lops_provider,
                                              &herd_sched_local_tp };

struct reportreq { const char *which; struct evbuffer *b; int rc; };

static void report_fn(herd_sched *s, void *arg)
{
    struct reportreq *q = arg;
    q->rc = sch_report_json(s, q->which, 0, 0, q->b) ? -HERD_EARG : 0;
}

int herd_sched_report(herd_sched *s, const char *which, struct evbuffer *b)
{
    struct reportreq q = { which, b, 0 };
    int rc = sched_call(s, report_fn, &q);
    return rc ? rc : q.rc;
}

void herd_sched_note_decision(herd_sched *s, int target, int have, const char *reason)
{
    if (s) herd_metrics_decision(&s->met, target, have, reason);
}

/* Every log line also goes to the endpoint's log tail. */
static void tee_log(void *ud, int level, const char *line)
{
    herd_sched *s = ud;
    herd_metrics_log(&s->met, level, line);
    if (s->user_log) s->user_log(s->user_log_ud, level, line);
    else herd_log_default(NULL, level, line);
}

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

void herd_sched_close_workers(herd_sched *s, const char *reason)
{
    char why[200];
    snprintf(why, sizeof why, "%s", reason ? reason : "cluster closing");
    sched_call(s, sch_close_fn, why);
}

int herd_sched_start(herd_sched **out, const herd_sched_cfg *cfg, char *addr, size_t cap, herd_err *err)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, (void (*)(void))evthread_use_pthreads);
    herd_sched *s = calloc(1, sizeof *s);
    if (!s) return herd_err_set(err, -ENOMEM, "out of memory");
    s->cfg = *cfg;
    s->cfg.listen = NULL;
    s->cfg.http = NULL;
    herd_metrics_init(&s->met);
    s->user_log = cfg->log;
    s->user_log_ud = cfg->log_ud;
    s->cfg.log = tee_log;
    s->cfg.log_ud = s;
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
    s->dispatch_ev = event_new(s->base, -1, 0, sch_dispatch_cb, s);
    s->stop_ev = event_new(s->base, -1, 0, stop_cb, s);
    s->hb_ev = event_new(s->base, -1, EV_PERSIST, sch_heartbeat_cb, s);
    s->wake_ev = event_new(s->base, -1, 0, wake_cb, s);
    if (!s->inbox_ev || !s->dispatch_ev || !s->stop_ev || !s->hb_ev || !s->wake_ev) { rc = herd_err_set(err, -ENOMEM, "out of memory"); goto fail; }
    /* the dispatch event runs after messages of the same iteration */
    event_base_priority_init(s->base, 2);
    event_priority_set(s->dispatch_ev, 1);
    event_priority_set(s->wake_ev, 1);
    double iv = s->cfg.heartbeat_interval;
    struct timeval tv = { (time_t)iv, (suseconds_t)((iv - floor(iv)) * 1e6) };
    event_add(s->hb_ev, &tv);
    herd_addr a;
    if (herd_addr_parse(cfg->listen, &a, NULL) == 0 && a.is_unix) snprintf(s->unix_path, sizeof s->unix_path, "%s", a.path);
    if ((rc = herd_tls_addr_check(cfg->tls, cfg->listen, err))) goto fail;
    if (!(s->lis = herd_listen(s->base, cfg->listen, sch_accept_cb, s, addr, cap, err))) { rc = err ? err->code : -HERD_EARG; goto fail; }
    if (herd_accept_guard_init(&s->guard, s->lis, s->cfg.log, s->cfg.log_ud)) {
        rc = herd_err_set(err, -ENOMEM, "out of memory");
        goto fail;
    }
    evconnlistener_set_error_cb(s->lis, sch_accept_error_cb);
    if (cfg->http && cfg->http[0]) {
        s->cfg.http = cfg->http;               /* read by sch_http_start only */
        rc = sch_http_start(s, err);
        s->cfg.http = NULL;
        if (rc) goto fail;
    }
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
    if (s->local) herd_client_defer_wakes(s->local, s->thread, NULL, NULL);   /* wakes at once again */
    for (herd_submit_spec *sp = s->in_head, *n; sp; sp = n) { n = sp->next; herd_spec_free(sp); }
    while (s->workers) { sworker *w = s->workers; s->workers = w->next; sch_unlink_peer(s, w); sch_worker_free(w); }
    sch_relays_free(s);
    sch_moves_free(s);
    size_t i = 0;
    void *v;
    while (kmap_next(&s->tasks, &i, NULL, &v)) sch_task_free(v);
    kmap_free(&s->tasks);
    free(s->heap);
    free(s->rlist);
    if (s->lis) evconnlistener_free(s->lis);
    sch_http_stop(s);
    herd_accept_guard_destroy(&s->guard);
    if (s->unix_path[0]) unlink(s->unix_path);
    if (s->inbox_ev) event_free(s->inbox_ev);
    if (s->dispatch_ev) event_free(s->dispatch_ev);
    if (s->stop_ev) event_free(s->stop_ev);
    if (s->hb_ev) event_free(s->hb_ev);
    if (s->wake_ev) event_free(s->wake_ev);
    if (s->base) herd_event_base_drain_free(s->base);
    pthread_mutex_destroy(&s->in_mu);
    pthread_mutex_destroy(&s->w_mu);
    pthread_cond_destroy(&s->w_cv);
    free(s->token);
    herd_metrics_destroy(&s->met);
    free(s);
}
