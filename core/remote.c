/* core/remote.c — a flow's connection to a scheduler it reaches by address:
 * says hello as a client, sends its client's submits, delivers results and
 * log lines to it, follows the cluster's size, and makes control calls
 * (OP_CONTROL), which give herd_remote_ops, adaptive scaling's view of that
 * scheduler. The connection's event loop runs on a thread of its own; other
 * threads send through an outbox. (A worker's connection is worker.c's;
 * its sub-task client takes LOG, RESULT and HELD through
 * herd_remote_client_msg, here.) */
#include "remote.h"
#include "comm.h"
#include "metrics.h"
#include "relay.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <event2/thread.h>

struct herd_remote {
    char *address;
    struct event_base *base;
    herd_conn *conn;               /* the loop thread's */
    struct event *stop_ev, *wake_ev;
    pthread_t thread;
    int thread_started;
    herd_client *cl;               /* where results and log lines go (borrowed) */
    pthread_mutex_t mu;            /* what follows, and the outbox */
    pthread_cond_t cv;             /* welcome, refusal, worker counts, replies, loop end */
    herd_outbox out;
    int welcomed, refused, closing, loop_done;
    char refuse_msg[512];
    int nworkers, nthreads, owned; /* as the scheduler last said */
    uint64_t rpc_seq, rpc_got;     /* control calls: the last one sent, the last answered */
    int rpc_rc;
    char *rpc_error;               /* the answer's error text (rc < 0) or its text (rc 0), or NULL */
    int rpc_has_load;
    herd_sched_load rpc_load;      /* the answer's load (taken by the caller) */
    pthread_mutex_t call_mu;       /* one control call at a time */
    char *prov_sent;               /* the provider list last sent ("provider"; the keeper's thread only) */
    herd_relay_rx *rx;             /* relayed values coming in (the loop thread's) */
};

static void rpc_clear(herd_remote *r)
{
    free(r->rpc_error);
    r->rpc_error = NULL;
    herd_sched_load_free(&r->rpc_load);
    r->rpc_has_load = 0;
}

/* ---- the loop thread ---- */
static void stop(herd_remote *r)
{
    pthread_mutex_lock(&r->mu);
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    event_base_loopbreak(r->base);
}

static void on_reply(herd_remote *r, herd_msg_reply *m)
{
    pthread_mutex_lock(&r->mu);
    if (m->seq == r->rpc_seq && r->rpc_got != m->seq) {
        rpc_clear(r);
        r->rpc_rc = m->rc;
        r->rpc_error = herd_pstr_dup(m->rc ? m->error : m->text);
        r->rpc_has_load = m->has_load;
        r->rpc_load = m->load;
        memset(&m->load, 0, sizeof m->load);
        r->rpc_got = m->seq;
        pthread_cond_broadcast(&r->cv);
    }
    pthread_mutex_unlock(&r->mu);
    herd_sched_load_free(&m->load);      /* an answer nobody waits for */
}

int herd_remote_client_msg(herd_client *cl, int op, const msgpack_object *m, herd_err *e)
{
    switch (op) {
    case OP_LOG: {
        herd_msg_log lm;
        if (herd_proto_unpack_log(m, &lm, e)) return -1;
        if (cl) herd_client_logf(cl, lm.level, "%.*s", (int)lm.text.len, lm.text.ptr);
        return 1;
    }
    case OP_RESULT: {
        herd_msg_result rm;
        if (herd_proto_unpack_result(m, &rm, e)) return -1;
        char *error = herd_pstr_dup(rm.error);
        if (cl) herd_client_deliver_key(cl, rm.key, rm.state, rm.value, error);
        else herd_value_free(rm.value);
        free(error);
        return 1;
    }
    case OP_HELD: {        /* a result stays on a worker: fetched from there on demand */
        herd_msg_held hm;
        if (herd_proto_unpack_held(m, &hm, e)) return -1;
        char *peer = herd_pstr_dup(hm.peer), *error = herd_pstr_dup(hm.error);
        if (cl) herd_client_deliver_held_key(cl, hm.key, peer, error ? error : "the value was lost");
        free(peer);
        free(error);
        return 1;
    }
    default:
        return 0;
    }
}

static void on_msg(herd_conn *c, const msgpack_object *m, void *ud)
{
    herd_remote *r = ud;
    herd_err e;                           /* set by a failing unpack (not zeroed: 1 KiB) */
    e.msg[0] = '\0';
    int op = herd_proto_op(m, NULL);      /* comm.c checked it */
    int taken = herd_remote_client_msg(r->cl, op, m, &e);   /* LOG, RESULT, HELD */
    if (taken > 0) return;
    if (taken == 0) switch (op) {
    case OP_WELCOME: {
        herd_msg_welcome wm;
        if (herd_proto_unpack_welcome(m, &wm, &e)) break;
        pthread_mutex_lock(&r->cl->mu);
        r->cl->id = wm.id;
        if (r->cl->transfer == HERD_DT_AUTO || r->cl->transfer == HERD_DT_INLINE)
            r->cl->transfer = wm.transfer;          /* the client's own direct/relay wins */
        pthread_mutex_unlock(&r->cl->mu);
        pthread_mutex_lock(&r->mu);
        r->welcomed = 1;
        r->nworkers = wm.nworkers;
        r->nthreads = wm.nthreads;
        r->owned = wm.owned;
        pthread_cond_broadcast(&r->cv);
        pthread_mutex_unlock(&r->mu);
        return;
    }
    case OP_WORKERS: {
        herd_msg_workers wm;
        if (herd_proto_unpack_workers(m, &wm, &e)) break;
        pthread_mutex_lock(&r->mu);
        r->nworkers = wm.nworkers;
        r->nthreads = wm.nthreads;
        pthread_cond_broadcast(&r->cv);
        pthread_mutex_unlock(&r->mu);
        return;
    }
    case OP_VALUE: {       /* a value the scheduler relays begins, or is not coming */
        herd_msg_value vm;
        if (herd_proto_unpack_value(m, &vm, &e)) break;
        if (vm.nbytes >= 0) {
            if (herd_relay_rx_begin(&r->rx, vm.id, vm.nbytes, &e)) break;
            return;
        }
        herd_relay_rx_abort(&r->rx, vm.id);
        char *error = herd_pstr_dup(vm.error);
        herd_client_deliver_value(r->cl, vm.id, NULL, error ? error : "no value");
        free(error);
        return;
    }
    case OP_CHUNK: {
        herd_msg_chunk cm;
        herd_value *v;
        char why[1200];
        int rc;
        if (herd_proto_unpack_chunk(m, &cm, &e) ||
            (rc = herd_relay_rx_chunk(&r->rx, cm.id, cm.bytes, &v, why, sizeof why, &e)) < 0)
            break;
        if (rc == 1) herd_client_deliver_value(r->cl, cm.id, v, v ? NULL : why);
        return;
    }
    case OP_REPLY: {
        herd_msg_reply rm;
        if (herd_proto_unpack_reply(m, &rm, &e)) break;
        on_reply(r, &rm);
        return;
    }
    case OP_REFUSE: {
        herd_msg_reason rm;
        if (herd_proto_unpack_refuse(m, &rm, &e)) break;
        pthread_mutex_lock(&r->mu);
        snprintf(r->refuse_msg, sizeof r->refuse_msg, "%.*s", (int)rm.reason.len, rm.reason.ptr);
        r->refused = 1;
        pthread_mutex_unlock(&r->mu);
        stop(r);
        return;
    }
    default:
        herd_err_set(&e, -HERD_EPROTO, "%s: not a message a client takes", herd_proto_op_name(op));
    }
    /* a message that does not unpack: close the connection (on_close says why) */
    char why[sizeof e.msg + 32];
    snprintf(why, sizeof why, "protocol error: %s", e.msg);
    herd_conn_fail(c, why);
}

static void on_close(herd_conn *c, const char *why, void *ud)
{
    herd_remote *r = ud;
    pthread_mutex_lock(&r->mu);
    int closing = r->closing, welcomed = r->welcomed;
    if (!welcomed && strncmp(why, "TLS: ", 5) == 0) {
        snprintf(r->refuse_msg, sizeof r->refuse_msg, "%s", why);
        r->refused = 1;
    }
    pthread_mutex_unlock(&r->mu);
    if (!closing) {
        char msg[1200];
        snprintf(msg, sizeof msg, "lost the connection to the scheduler at %s: %s", r->address, why);
        herd_client_logf(r->cl, HERD_LOG_ERROR, "%s", msg);
        herd_client_shutdown(r->cl, HERD_CRASHED, msg);
    }
    stop(r);
}

static void stop_cb(evutil_socket_t fd, short what, void *arg) { stop(arg); }

/* The client's waiters wake once per loop iteration, after the results
 * it delivered, not once per result. */
static void wake_later(void *ud) { event_active(((herd_remote *)ud)->wake_ev, EV_TIMEOUT, 0); }
static void wake_cb(evutil_socket_t fd, short what, void *arg) { herd_client_wake(((herd_remote *)arg)->cl); }

static void *loop_main(void *arg)
{
    herd_remote *r = arg;
    herd_block_sigpipe();
    event_base_dispatch(r->base);
    pthread_mutex_lock(&r->mu);
    r->loop_done = 1;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

/* ---- the API (any thread) ---- */
static void remote_free(herd_remote *r)
{
    if (r->conn) herd_conn_free(r->conn);
    herd_relay_rx_free_all(&r->rx);
    herd_outbox_destroy(&r->out);
    if (r->stop_ev) event_free(r->stop_ev);
    if (r->wake_ev) event_free(r->wake_ev);
    if (r->base) herd_event_base_drain_free(r->base);
    rpc_clear(r);
    free(r->prov_sent);
    free(r->address);
    pthread_mutex_destroy(&r->mu);
    pthread_mutex_destroy(&r->call_mu);
    pthread_cond_destroy(&r->cv);
    free(r);
}

void herd_remote_close(herd_remote *r)
{
    if (!r) return;
    pthread_mutex_lock(&r->mu);
    r->closing = 1;              /* a closing client: not a lost connection */
    pthread_mutex_unlock(&r->mu);
    if (r->thread_started) {
        event_active(r->stop_ev, EV_TIMEOUT, 0);
        pthread_join(r->thread, NULL);
        if (r->cl) herd_client_defer_wakes(r->cl, r->thread, NULL, NULL);   /* wakes at once again */
    }
    remote_free(r);
}

int herd_remote_connect(const char *address, const char *token, herd_tls *tls, const char *name,
                        double timeout_s, herd_client *cl, herd_remote **out, herd_err *err)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, (void (*)(void))evthread_use_pthreads);
    herd_remote *r = calloc(1, sizeof *r);
    if (!r) return herd_err_set(err, -ENOMEM, "out of memory");
    r->cl = cl;
    if (cl) {   /* it fetches held results from the workers with the cluster's credentials */
        pthread_mutex_lock(&cl->mu);
        free(cl->peer_token);
        cl->peer_token = token ? strdup(token) : NULL;
        cl->peer_tls = tls;
        pthread_mutex_unlock(&cl->mu);
    }
    pthread_mutex_init(&r->mu, NULL);
    pthread_mutex_init(&r->call_mu, NULL);
    herd_cond_init_monotonic(&r->cv);
    int rc;
    if (!(r->address = strdup(address ? address : "")) || !(r->base = event_base_new()) ||
        herd_outbox_init(&r->out, r->base, &r->mu, &r->conn) || !(r->stop_ev = event_new(r->base, -1, 0, stop_cb, r)) ||
        !(r->wake_ev = event_new(r->base, -1, 0, wake_cb, r))) {
        remote_free(r);
        return herd_err_set(err, -ENOMEM, "out of memory");
    }
    if (!(r->conn = herd_conn_dial_log(r->base, r->address, tls, timeout_s, cl && cl->log ? cl->log : herd_log_default,
                                       cl ? cl->log_ud : NULL, on_msg, on_close, r, err))) {
        rc = err ? err->code : -HERD_ECLOSED;
        remote_free(r);
        return rc;
    }
    herd_msg_hello h = { HERD_PROTO_VERSION, ROLE_CLIENT, herd_pstr_c(token),
                         herd_pstr_c(name && *name ? name : "client"), 0, NULL, (int64_t)getpid() };
    herd_proto_pack_hello(herd_conn_buf(r->conn), &h);
    herd_conn_end(r->conn);
    if ((rc = pthread_create(&r->thread, NULL, loop_main, r))) {
        remote_free(r);
        return herd_err_set(err, -rc, "cannot start the client thread: %s", strerror(rc));
    }
    r->thread_started = 1;
    if (cl) herd_client_defer_wakes(cl, r->thread, wake_later, r);
    struct timespec ts;
    herd_deadline(timeout_s > 0 ? timeout_s : 30, &ts);
    pthread_mutex_lock(&r->mu);
    while (!r->welcomed && !r->refused && !r->loop_done)
        if (pthread_cond_timedwait(&r->cv, &r->mu, &ts) == ETIMEDOUT) break;
    int welcomed = r->welcomed, refused = r->refused;
    char why[sizeof r->refuse_msg];
    snprintf(why, sizeof why, "%s", r->refuse_msg);
    pthread_mutex_unlock(&r->mu);
    if (welcomed) { *out = r; return 0; }
    herd_remote_close(r);
    if (refused && strncmp(why, "TLS: ", 5) == 0)      /* this side's verdict, or the scheduler's: why says */
        return herd_err_set(err, HERD_EAUTH, "address %s: %s", address, why);
    if (refused)
        return herd_err_set(err, HERD_EAUTH, "address %s: the scheduler refused this client: %s", address, why);
    return herd_err_set(err, HERD_ETIMEOUT, "address %s: no welcome from the scheduler within %.3gs", address,
                        timeout_s);
}

static int remote_send(void *ud, herd_submit_spec *sp)
{
    herd_remote *r = ud;
    pthread_mutex_lock(&r->mu);
    int rc = herd_proto_pack_spec(&r->out.sb, sp);
    herd_outbox_send_unlock(&r->out);
    herd_spec_free(sp);
    return rc;       /* client.c checked the nesting: only an item over 4 GiB fails */
}
const herd_transport herd_remote_tp = { remote_send, NULL };

int herd_remote_control(herd_remote *r, const char *verb, const char *arg, double timeout_s,
                        herd_sched_load *load, char **text, herd_err *err)
{
    if (load) memset(load, 0, sizeof *load);
    if (text) *text = NULL;
    pthread_mutex_lock(&r->call_mu);
    pthread_mutex_lock(&r->mu);
    if (r->loop_done) {
        pthread_mutex_unlock(&r->mu);
        pthread_mutex_unlock(&r->call_mu);
        return herd_err_set(err, HERD_ECLOSED, "%s: the scheduler connection is closed", verb);
    }
    herd_msg_control m = { ++r->rpc_seq, herd_pstr_c(verb), herd_pstr_c(arg) };
    rpc_clear(r);
    herd_proto_pack_control(&r->out.sb, &m);
    herd_outbox_send_unlock(&r->out);
    struct timespec ts;
    herd_deadline(timeout_s, &ts);
    pthread_mutex_lock(&r->mu);
    while (r->rpc_got != m.seq && !r->loop_done)
        if (pthread_cond_timedwait(&r->cv, &r->mu, &ts) == ETIMEDOUT) break;
    int rc;
    if (r->rpc_got != m.seq)
        rc = r->loop_done ? herd_err_set(err, HERD_ECLOSED, "%s: the scheduler connection closed", verb)
                          : herd_err_set(err, HERD_ETIMEOUT, "%s: no answer from the scheduler within %.3gs", verb,
                                         timeout_s);
    else if ((rc = r->rpc_rc))
        herd_err_set(err, rc, "%s: %s", verb, r->rpc_error ? r->rpc_error : herd_strerror(rc));
    else if (load && !r->rpc_has_load)
        rc = herd_err_set(err, -HERD_EPROTO, "%s: the scheduler's answer holds no load", verb);
    else if (text && !r->rpc_error)
        rc = herd_err_set(err, -HERD_EPROTO, "%s: the scheduler's answer holds no text", verb);
    else if (load) {
        *load = r->rpc_load;
        memset(&r->rpc_load, 0, sizeof r->rpc_load);
    }
    if (!rc && text) { *text = r->rpc_error; r->rpc_error = NULL; }
    rpc_clear(r);
    pthread_mutex_unlock(&r->mu);
    pthread_mutex_unlock(&r->call_mu);
    return rc;
}

int herd_remote_notify(herd_remote *r, const char *verb, const char *arg)
{
    pthread_mutex_lock(&r->mu);
    if (r->loop_done) {
        pthread_mutex_unlock(&r->mu);
        return -HERD_ECLOSED;
    }
    herd_msg_control m = { 0, herd_pstr_c(verb), herd_pstr_c(arg) };   /* seq 0: no answer */
    int rc = herd_proto_pack_control(&r->out.sb, &m);
    herd_outbox_send_unlock(&r->out);
    return rc;
}

int herd_remote_owned(herd_remote *r)
{
    pthread_mutex_lock(&r->mu);
    int owned = r->owned;
    pthread_mutex_unlock(&r->mu);
    return owned;
}

int herd_remote_workers(herd_remote *r, int *nthreads)
{
    pthread_mutex_lock(&r->mu);
    int n = r->nworkers;
    if (nthreads) *nthreads = r->nthreads;
    pthread_mutex_unlock(&r->mu);
    return n;
}

int herd_remote_wait_workers(herd_remote *r, int n, double timeout_s, herd_err *err)
{
    struct timespec ts;
    herd_deadline(timeout_s, &ts);
    pthread_mutex_lock(&r->mu);
    while (r->nworkers < n && !r->loop_done)
        if ((timeout_s < 0 ? pthread_cond_wait(&r->cv, &r->mu) : pthread_cond_timedwait(&r->cv, &r->mu, &ts)) ==
            ETIMEDOUT)
            break;
    int have = r->nworkers, gone = r->loop_done;
    pthread_mutex_unlock(&r->mu);
    if (have >= n) return 0;
    if (gone) return herd_err_set(err, HERD_ECLOSED, "the scheduler connection is closed");
    return herd_err_set(err, HERD_ETIMEOUT, "only %d of %d workers connected within %.3gs", have, n, timeout_s);
}

/* ---- what adaptive scaling needs, from a remote scheduler ---- */
#define CONTROL_TIMEOUT_S 10.0

static int rops_load(void *ud, herd_sched_load *l)
{
    return herd_remote_control(ud, "load", NULL, CONTROL_TIMEOUT_S, l, NULL, NULL);
}

static int rops_drain(void *ud, const char *name)
{
    return herd_remote_control(ud, "drain", name, CONTROL_TIMEOUT_S, NULL, NULL, NULL);
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

/* For the scheduler's dashboard: adaptive decisions, and the provider's
 * list when it changed (the keeper reads it every 0.2 s). */
static void rops_note(void *ud, int target, int have, const char *reason)
{
    char arg[300];
    snprintf(arg, sizeof arg, "%d %d %s", target, have, reason ? reason : "");
    herd_remote_notify(ud, "note", arg);
}

static void rops_provider(void *ud, const char *name, const herd_worker_info *info, size_t n)
{
    herd_remote *r = ud;
    char *text = herd_metrics_provider_text(name, info, n);
    if (!text || (r->prov_sent && !strcmp(text, r->prov_sent)) || herd_remote_notify(r, "provider", text)) {
        free(text);
        return;
    }
    free(r->prov_sent);
    r->prov_sent = text;
}

const herd_sched_ops herd_remote_ops = { rops_load, rops_drain, rops_has, rops_nworkers, rops_note, rops_provider,
                                         &herd_remote_tp };
