/* core/worker_relay.c — the worker's side of the relay (FETCH/VALUE): an
 * executor's input from a holder it cannot reach, asked of the scheduler and
 * handed over by the loop, and this worker's values the scheduler relays to
 * those that cannot reach it. */
#include "worker_int.h"

#include <errno.h>
#include <string.h>

/* An input through the scheduler (FETCH; the loop hands the VALUE over).
 * Its size is not known before: it counts as the most a relay carries in
 * the worker's budget, which bounds what the scheduler queues for it. */
int wk_relay_input(wk *w, uint64_t key, herd_value **out, herd_err *err)
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

/* The loop: the scheduler relays one of this worker's values to a worker or
 * client that cannot reach it: VALUE with it inline (HERD_MAX_DATA at most). */
void wk_send_relayed(wk *w, uint64_t key)
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
