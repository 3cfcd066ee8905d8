/* core/worker_relay.c — the worker's side of the relay (FETCH/VALUE): an
 * executor's input from a holder it cannot reach, asked of the scheduler and
 * handed over by the loop (VALUE and CHUNKs put together, relay.h), and this
 * worker's values the scheduler relays to those that cannot reach it, sent
 * as the scheduler's credit allows (FETCH, MORE). */
#include "worker_int.h"
#include "relay.h"

#include <errno.h>
#include <string.h>

/* An input through the scheduler (FETCH; the loop puts the VALUE and its
 * CHUNKs together and hands the value over). Its size is not known before:
 * it counts as HERD_MAX_DATA in the worker's budget while it waits. An
 * answer must begin within 120 s, and a stream keep moving. */
int wk_relay_input(wk *w, uint64_t key, herd_value **out, herd_err *err)
{
    rwait rw = { .key = key };
    herd_msg_fetch k = { .key = key };
    struct timespec ts;
    if (w->have_budget) herd_fetch_budget_acquire(&w->budget, HERD_MAX_DATA);
    herd_deadline(120, &ts);
    pthread_mutex_lock(&w->mu);
    rw.next = w->rwaits;
    w->rwaits = &rw;
    herd_proto_pack_fetch(&w->out.sb, &k);
    herd_outbox_wake(&w->out);
    uint64_t moved = w->relay_moved;
    while (!rw.done && !w->stop)
        if (pthread_cond_timedwait(&w->rcv, &w->mu, &ts) == ETIMEDOUT) {
            if (w->relay_moved == moved) break;
            moved = w->relay_moved;                    /* a stream still coming: wait on */
            herd_deadline(120, &ts);
        }
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
void wk_on_relayed(wk *w, uint64_t key, herd_value *v, const char *error)
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

/* ---- this worker as a holder: FETCH [key, xfer, credit] from the
 * scheduler is answered with VALUE [xfer, nbytes] and as many CHUNKs as the
 * credit allows; MORE grants more (-1: stop). The loop's alone. ---- */
typedef struct wk_rout {
    uint64_t xfer;
    size_t credit;
    herd_relay_src src;
    struct wk_rout *next;
} wk_rout;

/* Send what r's credit allows; 1 once all is sent (r is then done). */
static int rout_pump(wk *w, wk_rout *r)
{
    while (r->credit && r->src.sent < r->src.total) {
        size_t n = r->src.total - r->src.sent;
        if (n > HERD_RELAY_CHUNK) n = HERD_RELAY_CHUNK;
        if (n > r->credit) n = r->credit;
        size_t before = r->src.sent;
        if (herd_relay_src_chunk(&r->src, herd_conn_buf(w->conn), r->xfer, n)) {
            herd_conn_fail(w->conn, "out of memory relaying a value");
            return 1;
        }
        r->credit -= r->src.sent - before;
        herd_conn_end(w->conn);
    }
    return r->src.sent == r->src.total;
}

static void rout_free(wk_rout *r)
{
    herd_relay_src_free(&r->src);
    free(r);
}

void wk_on_fetch(wk *w, const herd_msg_fetch *m)
{
    herd_blob *b = w->store ? herd_store_get(w->store, m->key) : NULL;
    herd_msg_value v = { .id = m->xfer, .nbytes = -1 };
    herd_err e;
    wk_rout *r = b ? calloc(1, sizeof *r) : NULL;
    if (!b) v.error = herd_pstr_c("the holder no longer has it");
    else if (!r) { herd_blob_unref(b); v.error = herd_pstr_c("the holder is out of memory"); }
    else if (herd_relay_src_blob(&r->src, b, &e)) { rout_free(r); r = NULL; v.error = herd_pstr_c(e.msg); }
    else v.nbytes = (int64_t)r->src.total;
    herd_proto_pack_value(herd_conn_buf(w->conn), &v);
    herd_conn_end(w->conn);
    if (!r) return;
    r->xfer = m->xfer;
    r->credit = (size_t)m->credit;
    if (rout_pump(w, r)) { rout_free(r); return; }
    r->next = w->routs;
    w->routs = r;
}

int wk_on_more(wk *w, const herd_msg_more *m, herd_err *err)
{
    wk_rout **pp = &w->routs;
    while (*pp && (*pp)->xfer != m->xfer) pp = &(*pp)->next;
    wk_rout *r = *pp;
    if (!r) {              /* a stop for one sent in full meanwhile is fine; more for it is not */
        if (m->credit < 0) return 0;
        return herd_err_set(err, -HERD_EPROTO, "MORE for transfer %llu, which is not in progress here",
                            (unsigned long long)m->xfer);
    }
    if (m->credit < 0) { *pp = r->next; rout_free(r); return 0; }
    r->credit += (size_t)m->credit;
    if (rout_pump(w, r)) { *pp = r->next; rout_free(r); }
    return 0;
}

void wk_routs_free(wk *w)
{
    while (w->routs) { wk_rout *r = w->routs; w->routs = r->next; rout_free(r); }
    herd_relay_rx_free_all(&w->rx);
}

/* ---- this worker as a reader: VALUE [key, nbytes] and CHUNKs from the
 * scheduler, put together, then handed to those waiting. ---- */
int wk_on_value(wk *w, const herd_msg_value *m, herd_err *err)
{
    if (m->nbytes < 0) {
        herd_relay_rx_abort(&w->rx, m->id);
        char *error = herd_pstr_dup(m->error);
        wk_on_relayed(w, m->id, NULL, error ? error : "no value");
        free(error);
        return 0;
    }
    return herd_relay_rx_begin(&w->rx, m->id, m->nbytes, err);
}

int wk_on_chunk(wk *w, const herd_msg_chunk *m, herd_err *err)
{
    herd_value *v;
    char why[1200];
    int rc = herd_relay_rx_chunk(&w->rx, m->id, m->bytes, &v, why, sizeof why, err);
    if (rc < 0) return rc;
    pthread_mutex_lock(&w->mu);
    w->relay_moved++;
    pthread_mutex_unlock(&w->mu);
    if (rc == 1) wk_on_relayed(w, m->id, v, v ? NULL : why);
    return 0;
}
