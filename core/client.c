/* core/client.c — the client API users call: futures (result, wait,
 * cancel, release), held results fetched from their holder or relayed, and
 * as_completed (submitting is client_submit.c's). A client talks to its
 * scheduler through a transport (in-process queue or a worker's
 * connection); results come back through herd_client_deliver. One mutex
 * per client guards its futures. */
#include "client.h"
#include "comm.h"
#include "peer.h"
#include "progress.h"
#include "value_int.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct herd_completed {
    herd_client *cl;
    herd_future **fs;
    size_t n;
    size_t *ready;          /* ring of indices into fs that became final */
    size_t head, tail;      /* tail - head = how many are waiting to be returned */
    size_t returned;
};

void herd_spec_free(herd_submit_spec *s)
{
    if (!s) return;
    free(s->task);
    free(s->run_name);
    herd_value_free(s->args);
    herd_value_free(s->resources);
    herd_value_free(s->tags);
    herd_value_free(s->workers);
    if (s->fut) herd_future_unref(s->fut);
    free(s);
}

void herd_annot_clear(herd_annot *a)
{
    herd_value_free(a->resources);
    herd_value_free(a->tags);
    herd_value_free(a->workers);
    memset(a, 0, sizeof *a);
}

void herd_client_logf(herd_client *cl, int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    herd_vlogf(cl ? cl->log : NULL, cl ? cl->log_ud : NULL, level, fmt, ap);
    va_end(ap);
}

int herd_client_init(herd_client *cl, uint32_t id, const herd_transport *tp, void *tp_ud)
{
    memset(cl, 0, sizeof *cl);
    pthread_mutex_init(&cl->mu, NULL);
    herd_cond_init_monotonic(&cl->cv);
    cl->id = id;
    cl->tp = tp;
    cl->tp_ud = tp_ud;
    kmap_init(&cl->futs);
    cl->cap = 4;
    cl->stack = calloc(cl->cap, sizeof *cl->stack);
    cl->depth = 1;
    return cl->stack ? 0 : -ENOMEM;
}

static void future_free(herd_future *f)
{
    herd_value_free(f->result);
    free(f->error);
    free(f->run_name);
    free(f->held_at);
    free(f->relay_error);
    free(f);
}

void herd_future_unref(herd_future *f)
{
    if (f && atomic_fetch_sub(&f->refs, 1) == 1) future_free(f);
}

/* Waiters re-check their futures. Called with cl->mu held. */
static void wake(herd_client *cl)
{
    if (!cl->wake_later || !pthread_equal(pthread_self(), cl->wake_thread)) {
        pthread_cond_broadcast(&cl->cv);
    } else if (!cl->wake_pending) {
        cl->wake_pending = 1;
        cl->wake_later(cl->wake_ud);
    }
}

void herd_client_defer_wakes(herd_client *cl, pthread_t loop, void (*later)(void *ud), void *ud)
{
    pthread_mutex_lock(&cl->mu);
    cl->wake_later = later;
    cl->wake_ud = ud;
    cl->wake_thread = loop;
    if (!later && cl->wake_pending) {
        cl->wake_pending = 0;
        pthread_cond_broadcast(&cl->cv);
    }
    pthread_mutex_unlock(&cl->mu);
}

void herd_client_wake(herd_client *cl)
{
    pthread_mutex_lock(&cl->mu);
    if (cl->wake_pending) {
        cl->wake_pending = 0;
        pthread_cond_broadcast(&cl->cv);
    }
    pthread_mutex_unlock(&cl->mu);
}

static void notify(herd_client *cl, herd_future *f)
{
    for (herd_watch *w = f->watchers, *next; w; w = next) {
        next = w->next;
        herd_completed *it = w->it;
        for (size_t i = 0; i < it->n; i++)
            if (it->fs[i] == f) { it->ready[it->tail++ % it->n] = i; break; }
        free(w);
    }
    f->watchers = NULL;
    wake(cl);
}

/* f's state becomes st, its task name's counts follow. Called with cl->mu held. */
static void set_state(herd_future *f, herd_state st)
{
    runcount *g = f->grp;
    if (g && f->state != st) {
        if (f->state == HERD_RUNNING) g->running--;
        if (st == HERD_RUNNING) g->running++;
        else if (st == HERD_COMPLETED) g->done++;
        else if (herd_state_is_final(st)) g->failed++;
    }
    f->state = st;
}

/* Called with cl->mu held. */
void herd_client_set_final(herd_client *cl, herd_future *f, herd_state st, herd_value *value, const char *error)
{
    if (herd_state_is_final(f->state)) { herd_value_free(value); return; }
    set_state(f, st);
    herd_value_free(f->result);
    f->result = value;
    free(f->error);
    f->error = error ? strdup(error) : NULL;
    if (herd_state_is_final(st)) notify(cl, f);
}

void herd_client_deliver(herd_client *cl, herd_future *f, herd_state st, herd_value *value, const char *error)
{
    pthread_mutex_lock(&cl->mu);
    if (herd_state_is_final(st) || !herd_state_is_final(f->state)) {
        if (herd_state_is_final(st)) herd_client_set_final(cl, f, st, value, error), value = NULL;
        else set_state(f, st);
    }
    pthread_mutex_unlock(&cl->mu);
    herd_value_free(value);
}

void herd_client_deliver_key(herd_client *cl, uint64_t key, herd_state st, herd_value *value, const char *error)
{
    pthread_mutex_lock(&cl->mu);
    herd_future *f = kmap_get(&cl->futs, key);
    if (f) atomic_fetch_add(&f->refs, 1);
    pthread_mutex_unlock(&cl->mu);
    if (!f) { herd_value_free(value); return; }
    herd_client_deliver(cl, f, st, value, error);
    herd_future_unref(f);
}

void herd_client_deliver_held(herd_client *cl, herd_future *f, const char *address, const char *error)
{
    pthread_mutex_lock(&cl->mu);
    if (!f->result && (f->state == HERD_COMPLETED || !herd_state_is_final(f->state))) {
        free(f->held_at);
        f->held_at = address ? strdup(address) : NULL;
        f->held_lost = !address;
        if (!address) { free(f->error); f->error = strdup(error ? error : "the value was lost"); }
        f->held_gen++;
        if (!herd_state_is_final(f->state)) {
            set_state(f, HERD_COMPLETED);
            notify(cl, f);
        }
        wake(cl);
    }
    pthread_mutex_unlock(&cl->mu);
}

static int wait_until(herd_client *cl, int (*pred)(void *), void *arg, double timeout_s);

void herd_client_deliver_held_key(herd_client *cl, uint64_t key, const char *address, const char *error)
{
    pthread_mutex_lock(&cl->mu);
    herd_future *f = kmap_get(&cl->futs, key);
    if (f) atomic_fetch_add(&f->refs, 1);
    pthread_mutex_unlock(&cl->mu);
    if (!f) return;
    herd_client_deliver_held(cl, f, address, error);
    herd_future_unref(f);
}

void herd_client_deliver_value(herd_client *cl, uint64_t key, herd_value *value, const char *error)
{
    pthread_mutex_lock(&cl->mu);
    herd_future *f = kmap_get(&cl->futs, key);
    if (f && f->relaying) {
        f->relaying = 0;
        if (value && !f->result) {
            f->result = value;
            value = NULL;
            free(f->held_at);
            f->held_at = NULL;
        } else if (!value) {
            free(f->relay_error);
            f->relay_error = strdup(error ? error : "no value");
        }
        wake(cl);
    }
    pthread_mutex_unlock(&cl->mu);
    herd_value_free(value);
}

static void send_op(herd_client *cl, int op, uint64_t key);

static int relay_answered(void *arg)
{
    herd_future *f = arg;
    return !f->relaying || f->cl->closed;
}

/* cl->mu held: the scheduler relays f's value from its holder (FETCH,
 * answered by VALUE). 0 with f->result set, or a negative code and e. */
static int relay(herd_client *cl, herd_future *f, double timeout_s, herd_err *e)
{
    f->relaying = 1;
    pthread_mutex_unlock(&cl->mu);
    send_op(cl, OP_FETCH, f->key);
    pthread_mutex_lock(&cl->mu);
    if (wait_until(cl, relay_answered, f, timeout_s > 0 ? timeout_s : timeout_s < 0 ? -1 : 60)) {
        f->relaying = 0;
        return herd_err_set(e, -HERD_ETIMEOUT, "the scheduler did not relay it in time");
    }
    if (f->result) return 0;
    if (f->relaying) { f->relaying = 0; return herd_err_set(e, -HERD_ECLOSED, "the connection to the scheduler closed"); }
    return herd_err_set(e, -HERD_ECLOSED, "relayed by the scheduler: %s", f->relay_error ? f->relay_error : "?");
}

/* cl->mu held: a holder this client could not connect to before (relayed
 * from then on). */
static int known_unreachable(herd_client *cl, const char *addr)
{
    for (size_t i = 0; i < cl->nrelay_logged; i++)
        if (!strcmp(cl->relay_logged[i], addr)) return 1;
    return 0;
}

/* Say once per holder that its values are relayed. */
static void note_relay(herd_client *cl, const char *addr, const char *why)
{
    pthread_mutex_lock(&cl->mu);
    for (size_t i = 0; i < cl->nrelay_logged; i++)
        if (!strcmp(cl->relay_logged[i], addr)) { pthread_mutex_unlock(&cl->mu); return; }
    char **n = realloc(cl->relay_logged, (cl->nrelay_logged + 1) * sizeof *n);
    if (n) {
        cl->relay_logged = n;
        if ((n[cl->nrelay_logged] = strdup(addr))) cl->nrelay_logged++;
    }
    pthread_mutex_unlock(&cl->mu);
    herd_client_logf(cl, HERD_LOG_WARN, "cannot reach the worker at %s (%s): values it holds are relayed through "
                     "the scheduler", addr, why);
}

typedef struct moved { herd_future *f; unsigned gen; } moved;
static int held_moved(void *arg)
{
    moved *m = arg;
    return m->f->held_gen != m->gen || m->f->held_lost || m->f->result;
}

/* cl->mu held: fetch f's held value (the lock is dropped meanwhile); when
 * its holder cannot give it, wait up to timeout_s for the scheduler to say
 * where it was recomputed. */
static int fetch_held(herd_client *cl, herd_future *f, double timeout_s, herd_err *err)
{
    while (f->held_at && !f->result) {
        if (f->held_lost) break;
        char *addr = strdup(f->held_at);
        unsigned gen = f->held_gen;
        pthread_mutex_unlock(&cl->mu);
        herd_value *v = NULL;
        herd_err e;
        e.msg[0] = '\0';
        herd_peer_auth auth = { cl->peer_token, cl->peer_tls, cl->peer_budget };
        int transfer = cl->transfer;
        int skip = transfer == HERD_DT_RELAY;
        if (addr && transfer != HERD_DT_DIRECT && !skip) {
            pthread_mutex_lock(&cl->mu);
            skip = known_unreachable(cl, addr);
            pthread_mutex_unlock(&cl->mu);
        }
        int rc = !addr ? -ENOMEM : skip ? -HERD_ECLOSED : herd_peer_fetch(addr, &auth, f->key, 60, &v, &e);
        char why[sizeof e.msg];
        snprintf(why, sizeof why, "%s", e.msg);
        pthread_mutex_lock(&cl->mu);
        if (rc == 0) {
            free(addr);
            if (!f->result) { f->result = v; free(f->held_at); f->held_at = NULL; }
            else herd_value_free(v);
            return 0;
        }
        if (rc == -HERD_ECLOSED && transfer != HERD_DT_DIRECT) {
            rc = relay(cl, f, timeout_s, &e);
            if (rc == 0 && !skip) {     /* alive, but not reachable from here: say so once */
                pthread_mutex_unlock(&cl->mu);
                note_relay(cl, addr, why);
                pthread_mutex_lock(&cl->mu);
            }
            free(addr);
            if (rc == 0 || f->result) return 0;
            if (!f->relay_error || !strstr(f->relay_error, HERD_RELAY_GONE))     /* final: not lost */
                return herd_err_set(err, HERD_ECRASHED, "%s: cannot fetch its result: %s", f->run_name, e.msg);
        } else free(addr);
        if (rc == -HERD_EAUTH || rc == -HERD_EPROTO || rc == -ENOMEM)
            return herd_err_set(err, HERD_ECRASHED, "%s: cannot fetch its result: %s", f->run_name, e.msg);
        moved m = { f, gen };
        if (wait_until(cl, held_moved, &m, timeout_s))
            return herd_err_set(err, HERD_ETIMEOUT, "%s: its result's holder is gone (%s) and it was not "
                                "recomputed within %.3gs", f->run_name, e.msg, timeout_s);
    }
    if (f->held_lost && !f->result)
        return herd_err_set(err, HERD_ECRASHED, "%s: its result was lost: %s", f->run_name, f->error ? f->error : "?");
    return 0;
}

int herd_client_pull(herd_future *f, herd_err *err)
{
    pthread_mutex_lock(&f->cl->mu);
    int rc = f->held_at && !f->result ? fetch_held(f->cl, f, 0, err) : 0;
    pthread_mutex_unlock(&f->cl->mu);
    return rc;
}

void herd_client_pull_all(herd_client *cl)
{
    /* one at a time, the lock dropped meanwhile: collect first */
    pthread_mutex_lock(&cl->mu);
    size_t i = 0, n = 0, cap = 0;
    void *v;
    herd_future **fs = NULL;
    while (kmap_next(&cl->futs, &i, NULL, &v)) {
        herd_future *f = v;
        if (!f->held_at || f->result || f->state != HERD_COMPLETED) continue;
        if (n == cap) {
            herd_future **nf = realloc(fs, (cap = cap ? 2 * cap : 16) * sizeof *nf);
            if (!nf) break;
            fs = nf;
        }
        atomic_fetch_add(&f->refs, 1);
        fs[n++] = f;
    }
    pthread_mutex_unlock(&cl->mu);
    for (size_t k = 0; k < n; k++) {
        herd_err e;
        e.msg[0] = '\0';
        if (herd_client_pull(fs[k], &e)) herd_client_logf(cl, HERD_LOG_WARN, "%s", e.msg);
        herd_future_unref(fs[k]);
    }
    free(fs);
}

herd_value *herd_client_fetch(herd_future *f)
{
    pthread_mutex_lock(&f->cl->mu);
    herd_value *v = f->state == HERD_COMPLETED ? herd_value_copy(f->result) : NULL;
    if (f->state == HERD_COMPLETED && !v) v = herd_nil();
    pthread_mutex_unlock(&f->cl->mu);
    return v;
}

void herd_client_shutdown(herd_client *cl, herd_state st, const char *reason)
{
    pthread_mutex_lock(&cl->mu);
    cl->closed = 1;
    size_t i = 0;
    void *v;
    while (kmap_next(&cl->futs, &i, NULL, &v)) {
        herd_future *f = v;
        if (!herd_state_is_final(f->state)) herd_client_set_final(cl, f, st, NULL, reason);
    }
    pthread_cond_broadcast(&cl->cv);
    pthread_mutex_unlock(&cl->mu);
}

int herd_client_send(herd_client *cl, herd_submit_spec *spec)
{
    pthread_mutex_lock(&cl->mu);
    const herd_transport *tp = cl->tp;
    void *ud = cl->tp_ud;
    cl->sending++;
    pthread_mutex_unlock(&cl->mu);
    int rc = tp->send(ud, spec);
    pthread_mutex_lock(&cl->mu);
    if (--cl->sending == 0) pthread_cond_broadcast(&cl->cv);
    pthread_mutex_unlock(&cl->mu);
    return rc;
}

void herd_client_quiesce(herd_client *cl)
{
    pthread_mutex_lock(&cl->mu);
    cl->closed = 1;
    while (cl->sending) pthread_cond_wait(&cl->cv, &cl->mu);
    pthread_mutex_unlock(&cl->mu);
}

void herd_client_destroy(herd_client *cl)
{
    size_t i = 0;
    void *v;
    while (kmap_next(&cl->futs, &i, NULL, &v)) {
        herd_future *f = v;
        for (herd_watch *w = f->watchers, *n; w; w = n) { n = w->next; free(w); }
        f->watchers = NULL;
        /* futures in the map were not released by the user: the runner frees
         * them now, as herd_runner_free promises (the map's and the user's refs) */
        herd_future_unref(f);
        herd_future_unref(f);
    }
    kmap_free(&cl->futs);
    for (size_t k = 0; k < cl->nrelay_logged; k++) free(cl->relay_logged[k]);
    free(cl->relay_logged);
    for (size_t d = 0; d < cl->depth; d++) herd_annot_clear(&cl->stack[d]);
    free(cl->stack);
    for (runcount *c = cl->counts, *n; c; c = n) { n = c->next; free(c->name); free(c); }
    herd_value_free(cl->cluster_resources);
    free(cl->checked_task);
    free(cl->peer_token);
    pthread_mutex_destroy(&cl->mu);
    pthread_cond_destroy(&cl->cv);
}

size_t herd_client_progress(herd_client *cl, herd_pgroup *out, size_t cap)
{
    size_t n = 0;
    pthread_mutex_lock(&cl->mu);
    for (runcount *c = cl->counts; c && n < cap; c = c->next, n++) {
        snprintf(out[n].name, sizeof out[n].name, "%s", c->name);
        out[n].total = c->n;
        out[n].running = c->running;
        out[n].done = c->done;
        out[n].failed = c->failed;
    }
    pthread_mutex_unlock(&cl->mu);
    for (size_t i = 0; i < n / 2; i++) {    /* the list is newest first: show them in submit order */
        herd_pgroup t = out[i];
        out[i] = out[n - 1 - i];
        out[n - 1 - i] = t;
    }
    return n;
}

/* ---- futures ---- */
const char *herd_state_name(herd_state s)
{
    static const char *names[] = { "Pending", "Scheduled", "Running", "Completed", "Failed", "Crashed", "Cancelled" };
    return (unsigned)s < sizeof names / sizeof *names ? names[s] : "Unknown";
}

bool herd_state_is_final(herd_state s) { return s >= HERD_COMPLETED && s <= HERD_CANCELLED; }

herd_state herd_future_state(herd_future *f)
{
    if (!f) return HERD_CANCELLED;
    pthread_mutex_lock(&f->cl->mu);
    herd_state s = f->state;
    pthread_mutex_unlock(&f->cl->mu);
    return s;
}

/* Wait on cl->cv (mu held) until pred() or the deadline. Returns 0 or -HERD_ETIMEOUT. */
static int wait_until(herd_client *cl, int (*pred)(void *), void *arg, double timeout_s)
{
    struct timespec ts;
    if (timeout_s >= 0) herd_deadline(timeout_s, &ts);
    int blocked = 0;
    while (!pred(arg)) {
        if (!blocked && cl->tp && cl->tp->block) {
            blocked = 1;
            pthread_mutex_unlock(&cl->mu);
            cl->tp->block(cl->tp_ud, 1);
            pthread_mutex_lock(&cl->mu);
            continue;
        }
        int rc = timeout_s >= 0 ? pthread_cond_timedwait(&cl->cv, &cl->mu, &ts)
                                : pthread_cond_wait(&cl->cv, &cl->mu);
        if (rc == ETIMEDOUT && !pred(arg)) {
            if (blocked) { pthread_mutex_unlock(&cl->mu); cl->tp->block(cl->tp_ud, 0); pthread_mutex_lock(&cl->mu); }
            return -HERD_ETIMEOUT;
        }
    }
    if (blocked) { pthread_mutex_unlock(&cl->mu); cl->tp->block(cl->tp_ud, 0); pthread_mutex_lock(&cl->mu); }
    return 0;
}

static int fut_final(void *arg) { return herd_state_is_final(((herd_future *)arg)->state); }

int herd_future_result(herd_future *f, double timeout_s, const herd_value **out, herd_err *err)
{
    if (out) *out = NULL;
    if (!f) return herd_err_set(err, HERD_EARG, "herd_future_result: future is NULL");
    herd_client *cl = f->cl;
    pthread_mutex_lock(&cl->mu);
    int rc = wait_until(cl, fut_final, f, timeout_s);
    if (rc) {
        pthread_mutex_unlock(&cl->mu);
        return herd_err_set(err, HERD_ETIMEOUT, "%s: no result within %.3gs (state %s)",
                            f->run_name, timeout_s, herd_state_name(f->state));
    }
    switch (f->state) {
    case HERD_COMPLETED:
        if ((f->held_at || f->held_lost) && !f->result && (rc = fetch_held(cl, f, timeout_s, err))) break;
        if (!f->result) f->result = herd_nil();
        if (out) *out = f->result;
        break;
    case HERD_FAILED:
        rc = herd_err_set(err, HERD_EFAILED, "%s failed: %s", f->run_name, f->error ? f->error : "?");
        break;
    case HERD_CRASHED:
        rc = herd_err_set(err, HERD_ECRASHED, "%s crashed: %s", f->run_name, f->error ? f->error : "?");
        break;
    default:
        rc = herd_err_set(err, HERD_ECANCELLED, "%s cancelled: %s", f->run_name, f->error ? f->error : "?");
        break;
    }
    pthread_mutex_unlock(&cl->mu);
    return rc;
}

const char *herd_future_error(herd_future *f)
{
    if (!f) return NULL;
    pthread_mutex_lock(&f->cl->mu);
    const char *e = herd_state_is_final(f->state) && f->state != HERD_COMPLETED ? f->error : NULL;
    pthread_mutex_unlock(&f->cl->mu);
    return e;
}

const char *herd_future_name(const herd_future *f) { return f ? f->run_name : NULL; }
uint64_t herd_future_key(const herd_future *f) { return herd_future_key_of(f); }

static void send_op(herd_client *cl, int op, uint64_t key)
{
    herd_submit_spec *s = calloc(1, sizeof *s);
    if (!s) return;
    s->op = op;
    s->key = key;
    if (herd_client_send(cl, s)) {}
}

void herd_future_release(herd_future *f)
{
    if (!f) return;
    herd_client *cl = f->cl;
    pthread_mutex_lock(&cl->mu);
    if (f->user_released) { pthread_mutex_unlock(&cl->mu); return; }
    f->user_released = 1;
    int in_map = kmap_del(&cl->futs, f->key) != NULL;
    kmap_compact(&cl->futs);               /* nobody iterates it outside cl->mu */
    int closed = cl->closed;
    pthread_mutex_unlock(&cl->mu);
    if (!closed) send_op(cl, OP_RELEASE, f->key);
    if (in_map) herd_future_unref(f);
    herd_future_unref(f);                  /* the user's */
}

int herd_future_cancel(herd_future *f)
{
    if (!f) return -HERD_EARG;
    herd_client *cl = f->cl;
    pthread_mutex_lock(&cl->mu);
    int fin = herd_state_is_final(f->state);
    if (!fin) herd_client_set_final(cl, f, HERD_CANCELLED, NULL, "cancelled by the client");
    int closed = cl->closed;
    pthread_mutex_unlock(&cl->mu);
    if (fin) return -HERD_ESTATE;
    if (!closed) send_op(cl, OP_CANCEL, f->key);
    return 0;
}

struct allctx { herd_future *const *fs; size_t n; };
static int all_final(void *arg)
{
    struct allctx *a = arg;
    for (size_t i = 0; i < a->n; i++)
        if (!herd_state_is_final(a->fs[i]->state)) return 0;
    return 1;
}

int herd_wait(herd_future *const *fs, size_t n, double timeout_s, herd_err *err)
{
    if (!n) return 0;
    if (!fs) return herd_err_set(err, HERD_EARG, "herd_wait: fs is NULL (with n = %zu)", n);
    for (size_t i = 0; i < n; i++)
        if (!fs[i]) return herd_err_set(err, HERD_EARG, "herd_wait: fs[%zu] is NULL", i);
    herd_client *cl = fs[0]->cl;
    struct allctx a = { fs, n };
    pthread_mutex_lock(&cl->mu);
    int rc = wait_until(cl, all_final, &a, timeout_s);
    pthread_mutex_unlock(&cl->mu);
    if (rc) return herd_err_set(err, HERD_ETIMEOUT, "herd_wait: not all %zu futures finished within %.3gs", n, timeout_s);
    return 0;
}

/* ---- as_completed ---- */
herd_completed *herd_as_completed(herd_future *const *fs, size_t n)
{
    if (n && !fs) return NULL;
    for (size_t i = 0; i < n; i++)
        if (!fs[i]) return NULL;
    herd_completed *it = calloc(1, sizeof *it);
    if (!it) return NULL;
    it->n = n;
    it->fs = malloc((n ? n : 1) * sizeof *it->fs);
    it->ready = malloc((n ? n : 1) * sizeof *it->ready);
    if (!it->fs || !it->ready) { free(it->fs); free(it->ready); free(it); return NULL; }
    if (!n) return it;
    memcpy(it->fs, fs, n * sizeof *fs);
    it->cl = fs[0]->cl;
    pthread_mutex_lock(&it->cl->mu);
    for (size_t i = 0; i < n; i++) {
        if (herd_state_is_final(fs[i]->state)) { it->ready[it->tail++ % n] = i; continue; }
        herd_watch *w = malloc(sizeof *w);
        if (!w) continue;
        w->it = it;
        w->next = fs[i]->watchers;
        fs[i]->watchers = w;
    }
    pthread_mutex_unlock(&it->cl->mu);
    return it;
}

static int it_ready(void *arg) { herd_completed *it = arg; return it->tail != it->head; }

herd_future *herd_completed_next(herd_completed *it, double timeout_s)
{
    if (!it || it->returned == it->n) return NULL;
    pthread_mutex_lock(&it->cl->mu);
    herd_future *f = NULL;
    if (wait_until(it->cl, it_ready, it, timeout_s) == 0) {
        f = it->fs[it->ready[it->head++ % it->n]];
        it->returned++;
    }
    pthread_mutex_unlock(&it->cl->mu);
    return f;
}

size_t herd_completed_left(const herd_completed *it) { return it ? it->n - it->returned : 0; }

void herd_completed_free(herd_completed *it)
{
    if (!it) return;
    if (it->cl) {
        pthread_mutex_lock(&it->cl->mu);
        for (size_t i = 0; i < it->n; i++) {
            herd_watch **pp = &it->fs[i]->watchers;
            while (*pp) {
                if ((*pp)->it == it) { herd_watch *w = *pp; *pp = w->next; free(w); }
                else pp = &(*pp)->next;
            }
        }
        pthread_mutex_unlock(&it->cl->mu);
    }
    free(it->fs);
    free(it->ready);
    free(it);
}
