/* core/client.c — the client API users call: submit (with annotations and
 * dependencies), futures (result, wait, cancel, release), as_completed, and
 * annotation scopes. A client talks to its scheduler through a transport
 * (in-process queue or a worker's connection); results come back through
 * herd_client_deliver. One mutex per client guards its futures. */
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

static const herd_param annot_params[] = {
    { "priority", HERD_PARAM_INT, NULL, "higher runs first; ties in submission order", 0, 0, 0 },
    { "resources", HERD_PARAM_MAP, NULL, "abstract resources held while the task runs", 0, 0, 0 },
    { "retries", HERD_PARAM_INT, NULL, "re-runs after the task fails", 0, 0, 1e9 },
    { "retry_delay", HERD_PARAM_DURATION, NULL, "delay before the first retry; doubles after each", 0, 0, 1e9 },
    { "timeout", HERD_PARAM_DURATION, NULL, "fail the attempt when it runs longer", 0, 0, 1e9 },
    { "tags", HERD_PARAM_LIST, NULL, "labels for the task run", 0, 0, 0 },
    { "workers", HERD_PARAM_LIST, NULL, "the workers it may run on: names, hosts or addresses", 0, 0, 0 },
    { "allow_other_workers", HERD_PARAM_BOOL, NULL, "run elsewhere when none of those workers is connected", 0, 0, 0 },
    { NULL, 0, NULL, NULL, 0, 0, 0 }
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

static int annot_copy(herd_annot *dst, const herd_annot *src)
{
    *dst = *src;
    dst->resources = src->resources ? herd_value_copy(src->resources) : NULL;
    dst->tags = src->tags ? herd_value_copy(src->tags) : NULL;
    dst->workers = src->workers ? herd_value_copy(src->workers) : NULL;
    return 0;
}

/* Merge b over a (b's keys win; resources maps merge key by key). */
static void annot_merge(herd_annot *a, const herd_annot *b)
{
    if (b->set & ANN_PRIORITY) a->priority = b->priority;
    if (b->set & ANN_RETRIES) a->retries = b->retries;
    if (b->set & ANN_RETRY_DELAY) a->retry_delay = b->retry_delay;
    if (b->set & ANN_TIMEOUT) a->timeout = b->timeout;
    if (b->set & ANN_TAGS) { herd_value_free(a->tags); a->tags = herd_value_copy(b->tags); }
    if (b->set & ANN_WORKERS) { herd_value_free(a->workers); a->workers = herd_value_copy(b->workers); }
    if (b->set & ANN_ALLOW_OTHER) a->allow_other_workers = b->allow_other_workers;
    if (b->set & ANN_RESOURCES) {
        if (!a->resources) a->resources = herd_map();
        for (size_t i = 0; i < herd_len(b->resources); i++)
            herd_map_set(a->resources, herd_key_at(b->resources, i), herd_value_copy(herd_at(b->resources, i)));
    }
    a->set |= b->set;
}

int herd_annot_parse(const char *text, herd_annot *a, herd_err *err)
{
    memset(a, 0, sizeof *a);
    if (!text || !*text) return 0;
    herd_value *v = NULL, *ok = NULL;
    int rc = herd_value_parse(text, &v, err);
    if (rc) return herd_err_prefix(err, "annotations");
    /* workers: one entry, as Dask's workers="alice", is a list of one */
    herd_value *one = herd_typeof(v) == HERD_MAP ? herd_map_get(v, "workers") : NULL;
    if (one && herd_typeof(one) == HERD_STR && herd_map_set(v, "workers", herd_tuple("s", herd_as_str(one)))) {
        herd_value_free(v);
        return herd_err_set(err, -ENOMEM, "annotations: out of memory");
    }
    rc = herd_kwargs_validate(annot_params, v, "annotations", &ok, err);
    herd_value_free(v);
    if (rc) return rc;
    herd_value *x;
    if ((x = herd_map_get(ok, "priority"))) { a->set |= ANN_PRIORITY; a->priority = (int)herd_as_int(x); }
    if ((x = herd_map_get(ok, "retries"))) { a->set |= ANN_RETRIES; a->retries = (int)herd_as_int(x); }
    if ((x = herd_map_get(ok, "retry_delay"))) { a->set |= ANN_RETRY_DELAY; a->retry_delay = herd_as_float(x); }
    if ((x = herd_map_get(ok, "timeout"))) { a->set |= ANN_TIMEOUT; a->timeout = herd_as_float(x); }
    if ((x = herd_map_get(ok, "tags"))) {
        for (size_t i = 0; i < herd_len(x); i++)
            if (herd_typeof(herd_at(x, i)) != HERD_STR) {
                int rc2 = herd_err_set(err, HERD_EARG, "annotations.tags[%zu]: expected str, got %s",
                                       i, herd_type_name(herd_typeof(herd_at(x, i))));
                herd_value_free(ok);
                return rc2;
            }
        a->set |= ANN_TAGS; a->tags = herd_value_copy(x);
    }
    if ((x = herd_map_get(ok, "workers"))) {
        for (size_t i = 0; i < herd_len(x); i++) {
            const char *name = herd_as_str(herd_at(x, i));
            size_t len = 0;
            if (herd_typeof(herd_at(x, i)) == HERD_STR) herd_as_bytes(herd_at(x, i), &len);
            if (!name || !*name || len > 1024 || memchr(name, '\0', len)) {
                char *sv = herd_value_to_string(herd_at(x, i));
                int rc2 = herd_err_set(err, HERD_EARG, "annotations.workers[%zu]: expected a worker name, host "
                                       "or address (1..1024 bytes), got %s", i, sv ? sv : "?");
                free(sv);
                herd_value_free(ok);
                return rc2;
            }
        }
        a->set |= ANN_WORKERS; a->workers = herd_value_copy(x);
    }
    if ((x = herd_map_get(ok, "allow_other_workers"))) { a->set |= ANN_ALLOW_OTHER; a->allow_other_workers = herd_as_bool(x); }
    if ((x = herd_map_get(ok, "resources"))) {
        if ((rc = herd_resources_check(x, "annotations.resources", err))) { herd_value_free(ok); return rc; }
        a->set |= ANN_RESOURCES; a->resources = herd_value_copy(x);
    }
    herd_value_free(ok);
    return 0;
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
    pthread_cond_broadcast(&cl->cv);
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
static void set_final(herd_client *cl, herd_future *f, herd_state st, herd_value *value, const char *error)
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
        if (herd_state_is_final(st)) set_final(cl, f, st, value, error), value = NULL;
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
        pthread_cond_broadcast(&cl->cv);
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
        pthread_cond_broadcast(&cl->cv);
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
        if (!herd_state_is_final(f->state)) set_final(cl, f, st, NULL, reason);
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

/* ---- submit ---- */
static char *run_name(herd_client *cl, const char *task, runcount **grp)
{
    runcount *c;
    for (c = cl->counts; c; c = c->next)
        if (strcmp(c->name, task) == 0) break;
    if (!c) {
        if (!(c = calloc(1, sizeof *c)) || !(c->name = strdup(task))) { free(c); return NULL; }
        c->next = cl->counts;
        cl->counts = c;
    }
    char *s;
    *grp = c;
    if (asprintf(&s, "%s-%llu", task, (unsigned long long)c->n++) < 0) return NULL;
    return s;
}

static int check_resources(herd_client *cl, const char *task, const herd_value *want, herd_err *err)
{
    if (!cl->check_resources || !want) return 0;
    for (size_t i = 0; i < herd_len(want); i++) {
        const char *name = herd_key_at(want, i);
        double need = herd_as_float(herd_at(want, i));
        herd_value *have = herd_map_get(cl->cluster_resources, name);
        if (!have || herd_as_float(have) < need) {
            char *offer = herd_value_to_string(cl->cluster_resources);
            int rc = herd_err_set(err, HERD_ERESOURCES,
                "task \"%s\": resources.%s: asks for %g but no worker of this cluster offers more than %g "
                "(workers offer %s); it could never run", task, name, need,
                have ? herd_as_float(have) : 0.0, offer ? offer : "{}");
            free(offer);
            return rc;
        }
    }
    return 0;
}

struct depctx { herd_client *cl; herd_err *err; const char *failed; char *why; };

/* Dependencies already final on this client are inlined; pending ones stay. */
static int inline_dep(void *ud, uint64_t key, herd_value **out)
{
    struct depctx *d = ud;
    herd_future *f = kmap_get(&d->cl->futs, key);
    if (!f || f->user_released)
        return herd_err_set(d->err, HERD_EARG,
            "argument: future %llu was released or belongs to another client", (unsigned long long)key);
    if (f->state == HERD_COMPLETED && !f->result && f->held_at) {
        *out = herd_futref(key);            /* held on a worker: the dependent's worker fetches it */
        return 0;
    }
    if (f->state == HERD_COMPLETED) {
        *out = f->result ? herd_value_copy(f->result) : herd_nil();
        return 0;
    }
    if (herd_state_is_final(f->state)) {
        if (!d->why && asprintf(&d->why, "dependency %s %s: %s", f->run_name, herd_state_name(f->state),
                                f->error ? f->error : "no reason given") < 0) d->why = NULL;
        *out = herd_nil();
        return 0;
    }
    *out = herd_futref(key);
    return 0;
}

int herd_client_submit(herd_client *cl, const char *task, herd_value *args, const char *annotations,
                       herd_future **out, herd_err *err)
{
    herd_annot extra = { 0 }, eff = { 0 };
    herd_submit_spec *spec = NULL;
    herd_future *f = NULL;
    herd_task_fn fn;
    int rc;
    if (out) *out = NULL;
    if (!task || !out) { rc = herd_err_set(err, HERD_EARG, "herd_submit: task name and out are required"); goto fail_nolock; }
    if (!args) args = herd_array();
    else if (herd_typeof(args) != HERD_ARRAY) {
        rc = herd_err_set(err, HERD_EARG, "task \"%s\": args: expected an array of arguments, got %s",
                          task, herd_type_name(herd_typeof(args)));
        goto fail_nolock;
    }
    if (herd_value_depth(args) > HERD_VALUE_WIRE_DEPTH) {
        rc = herd_err_set(err, HERD_EARG, "task \"%s\": args: nested %d levels deep, at most %d can travel to a worker",
                          task, herd_value_depth(args), HERD_VALUE_WIRE_DEPTH);
        goto fail_nolock;
    }
    /* a flow submits the same task over and over: look a name up once */
    pthread_mutex_lock(&cl->mu);
    int known = cl->checked_task && strcmp(cl->checked_task, task) == 0;
    pthread_mutex_unlock(&cl->mu);
    if (!known) {
        if ((rc = herd_task_lookup(task, &fn, err))) goto fail_nolock;
        char *copy = strdup(task);
        pthread_mutex_lock(&cl->mu);
        free(cl->checked_task);
        cl->checked_task = copy;
        pthread_mutex_unlock(&cl->mu);
    }
    if ((rc = herd_annot_parse(annotations, &extra, err))) goto fail_nolock;

    pthread_mutex_lock(&cl->mu);
    if (cl->closed) { rc = herd_err_set(err, HERD_ESTATE, "task \"%s\": no active flow run on this runner", task); goto fail; }
    annot_copy(&eff, &cl->stack[cl->depth - 1]);
    annot_merge(&eff, &extra);
    if ((rc = check_resources(cl, task, eff.resources, err))) goto fail;
    struct depctx d = { cl, err, NULL, NULL };
    if ((rc = herd_value_replace_futrefs(args, inline_dep, &d))) { free(d.why); goto fail; }
    size_t wire = herd_wire_size(args);    /* with the results put in: what travels to a worker */
    if (wire > HERD_MAX_DATA) {
        if (wire == SIZE_MAX)
            rc = herd_err_set(err, HERD_EARG, "task \"%s\": args: cannot be encoded (an item over 4 GiB, or "
                              "dependency results nested too deep)", task);
        else
            rc = herd_err_set(err, HERD_EARG, "task \"%s\": args: %zu bytes once encoded exceed the %zu-byte "
                              "limit on a task's data", task, wire, (size_t)HERD_MAX_DATA);
        free(d.why);
        goto fail;
    }

    spec = calloc(1, sizeof *spec);
    f = calloc(1, sizeof *f);
    if (!spec || !f) { rc = herd_err_set(err, -ENOMEM, "out of memory"); free(d.why); goto fail; }
    f->cl = cl;
    f->key = ((uint64_t)cl->id << 40) | ++cl->seq;
    f->run_name = run_name(cl, task, &f->grp);
    f->state = HERD_PENDING;
    atomic_init(&f->refs, 2);              /* the user's and the map's */
    kmap_put(&cl->futs, f->key, f);
    if (d.why) {                           /* an upstream task already failed */
        set_final(cl, f, HERD_FAILED, NULL, d.why);
        free(d.why);
        pthread_mutex_unlock(&cl->mu);
        free(spec);
        herd_value_free(args);
        herd_annot_clear(&eff);
        herd_annot_clear(&extra);
        *out = f;
        return 0;
    }
    spec->op = OP_SUBMIT;
    spec->key = f->key;
    spec->task = strdup(task);
    spec->run_name = f->run_name ? strdup(f->run_name) : NULL;
    spec->args = args;
    args = NULL;
    spec->priority = eff.priority;
    spec->resources = eff.resources;
    eff.resources = NULL;
    spec->tags = eff.tags;
    eff.tags = NULL;
    spec->workers = eff.workers && herd_len(eff.workers) ? eff.workers : NULL;
    if (spec->workers) eff.workers = NULL;
    spec->allow_other_workers = eff.allow_other_workers;
    spec->retries = eff.retries;
    spec->retry_delay = eff.retry_delay;
    spec->timeout = eff.timeout;
    atomic_fetch_add(&f->refs, 1);         /* the scheduler's */
    spec->fut = f;
    pthread_mutex_unlock(&cl->mu);
    herd_annot_clear(&eff);
    herd_annot_clear(&extra);
    if ((rc = herd_client_send(cl, spec)) != 0) {
        herd_client_deliver(cl, f, HERD_CRASHED, NULL, "the scheduler connection is closed");
        herd_err_set(err, rc, "task \"%s\": the scheduler connection is closed", task);
    }
    *out = f;
    return 0;
fail:
    pthread_mutex_unlock(&cl->mu);
fail_nolock:
    herd_annot_clear(&eff);
    herd_annot_clear(&extra);
    herd_value_free(args);
    free(spec);
    free(f);
    return rc;
}

int herd_submit(herd_runner *r, const char *task, herd_value *args, herd_future **out, herd_err *err)
{
    return herd_submit_annotated(r, task, args, NULL, out, err);   /* it checks r */
}

int herd_submit_annotated(herd_runner *r, const char *task, herd_value *args, const char *annotations,
                          herd_future **out, herd_err *err)
{
    if (out) *out = NULL;
    if (!r) { herd_value_free(args); return herd_err_set(err, HERD_EARG, "herd_submit: runner is NULL"); }
    int rc = r->ensure ? r->ensure(r, err) : 0;     /* start: lazy — the first submit starts the cluster */
    if (rc) {
        if (out) *out = NULL;
        herd_value_free(args);
        return rc;
    }
    return herd_client_submit(r->cl, task, args, annotations, out, err);
}

int herd_submit_map(herd_runner *r, const char *task, herd_value *arg_tuples,
                    herd_future ***futs, size_t *n, herd_err *err)
{
    if (futs) *futs = NULL;
    if (n) *n = 0;
    if (!futs || !n) {
        herd_value_free(arg_tuples);
        return herd_err_set(err, HERD_EARG, "herd_submit_map: futs and n are required");
    }
    if (!r) { herd_value_free(arg_tuples); return herd_err_set(err, HERD_EARG, "herd_submit_map: runner is NULL"); }
    if (herd_typeof(arg_tuples) != HERD_ARRAY) {
        herd_value_free(arg_tuples);
        return herd_err_set(err, HERD_EARG, "herd_submit_map: arg_tuples: expected an array of arrays");
    }
    size_t len = herd_len(arg_tuples);
    for (size_t i = 0; i < len; i++)
        if (herd_typeof(herd_at(arg_tuples, i)) != HERD_ARRAY) {
            int rc = herd_err_set(err, HERD_EARG, "herd_submit_map: arg_tuples[%zu]: expected an array, got %s",
                                  i, herd_type_name(herd_typeof(herd_at(arg_tuples, i))));
            herd_value_free(arg_tuples);
            return rc;
        }
    herd_future **fs = calloc(len ? len : 1, sizeof *fs);
    if (!fs) { herd_value_free(arg_tuples); return herd_err_set(err, -ENOMEM, "out of memory"); }
    for (size_t i = 0; i < len; i++) {
        int rc = herd_submit(r, task, herd_value_copy(herd_at(arg_tuples, i)), &fs[i], err);
        if (rc) {
            for (size_t j = 0; j < i; j++) { herd_future_cancel(fs[j]); herd_future_release(fs[j]); }
            free(fs);
            herd_value_free(arg_tuples);
            return herd_err_prefix(err, "herd_submit_map: item %zu", i);
        }
    }
    herd_value_free(arg_tuples);
    *futs = fs;
    *n = len;
    return 0;
}

herd_value *herd_future_arg(const herd_future *f) { return f ? herd_futref(f->key) : herd_nil(); }

/* ---- annotation scopes ---- */
int herd_annotate_push(herd_runner *r, const char *annotations, herd_err *err)
{
    if (!r) return herd_err_set(err, HERD_EARG, "herd_annotate_push: runner is NULL");
    herd_annot a;
    int rc = herd_annot_parse(annotations, &a, err);
    if (rc) return rc;
    herd_client *cl = r->cl;
    pthread_mutex_lock(&cl->mu);
    if (cl->depth == cl->cap) {
        herd_annot *ns = realloc(cl->stack, 2 * cl->cap * sizeof *ns);
        if (!ns) { pthread_mutex_unlock(&cl->mu); herd_annot_clear(&a); return herd_err_set(err, -ENOMEM, "out of memory"); }
        cl->stack = ns;
        cl->cap *= 2;
    }
    herd_annot *top = &cl->stack[cl->depth];
    annot_copy(top, &cl->stack[cl->depth - 1]);
    annot_merge(top, &a);
    cl->depth++;
    pthread_mutex_unlock(&cl->mu);
    herd_annot_clear(&a);
    return 0;
}

int herd_annotate_pop(herd_runner *r)
{
    if (!r) return -HERD_EARG;
    herd_client *cl = r->cl;
    pthread_mutex_lock(&cl->mu);
    int rc = 0;
    if (cl->depth <= 1) rc = -HERD_ESTATE;
    else herd_annot_clear(&cl->stack[--cl->depth]);
    pthread_mutex_unlock(&cl->mu);
    return rc;
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
    if (!fin) set_final(cl, f, HERD_CANCELLED, NULL, "cancelled by the client");
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
