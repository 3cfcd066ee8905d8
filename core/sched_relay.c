/* core/sched_relay.c — the relay: a worker or client that cannot reach a
 * value's holder (or whose cluster relays everything) asks the scheduler
 * (FETCH [key]); the scheduler opens a transfer with the holder (FETCH [key,
 * xfer, credit]) and forwards what it streams (VALUE [xfer, nbytes], then
 * CHUNKs) to the reader as VALUE [key, nbytes] and CHUNKs [key, …]. Flow
 * control is by credit: the holder sends no more of a transfer than the
 * scheduler allowed (HERD_RELAY_WINDOW at first; MORE tops it up while the
 * reader's connection has less than HIGH queued, else once it drains), so
 * the scheduler keeps at most a window of each transfer plus its readers'
 * queues, and HERD_RELAY_ACTIVE transfers run at once (others wait). A
 * reader that leaves stops its transfer (MORE -1; what was allowed is still
 * taken and dropped); a holder that leaves cuts its transfers off (the
 * readers hear HERD_RELAY_GONE and wait for the recomputation). A holder's
 * VALUE or CHUNK of no transfer it was asked for, past its end or past the
 * credit is a protocol error: that connection closes. */
#include "sched_int.h"
#include "relay.h"

#define HIGH ((size_t)8 << 20)    /* a reader's queued output over this: no more credit until it drains */

typedef struct relay {
    uint64_t key, xfer;        /* xfer 0: waiting its turn (FETCH not sent) */
    sworker *req;              /* NULL: the in-process client (or the reader left: dead) */
    int local;                 /* for the in-process client: put together here */
    int dead;                  /* the reader left: what is allowed is taken and dropped */
    sworker *holder;
    int64_t nbytes;            /* -1 until the holder's VALUE */
    uint64_t granted, recvd;
    herd_relay_rx *rx;         /* local: the bytes so far */
    struct relay *next;
} relay;

static void start_next(herd_sched *s);

/* No value for req: VALUE [key, -1, error] (mid-stream: it was cut off). */
static void tell_error(herd_sched *s, sworker *req, int local, uint64_t key, const char *error)
{
    if (local) {
        if (s->local) herd_client_deliver_value(s->local, key, NULL, error);
        return;
    }
    if (!req || !req->conn) return;
    herd_msg_value m = { .id = key, .nbytes = -1, .error = herd_pstr_c(error) };
    herd_proto_pack_value(herd_conn_buf(req->conn), &m);
    herd_conn_end(req->conn);
}

/* A value the scheduler has itself (inline results): sent whole. */
static void send_inline(herd_sched *s, sworker *req, uint64_t key, const herd_value *v)
{
    if (!req) {
        herd_value *c = herd_value_copy(v);
        if (s->local) herd_client_deliver_value(s->local, key, c, c ? NULL : "the scheduler is out of memory");
        else herd_value_free(c);
        return;
    }
    if (!req->conn) return;
    herd_relay_src src;
    herd_err e;
    if (herd_relay_src_value(&src, v, &e)) {
        herd_relay_src_free(&src);
        tell_error(s, req, 0, key, e.msg);
        return;
    }
    herd_msg_value m = { .id = key, .nbytes = (int64_t)src.total };
    herd_proto_pack_value(herd_conn_buf(req->conn), &m);
    while (src.sent < src.total) {
        size_t n = src.total - src.sent < HERD_RELAY_CHUNK ? src.total - src.sent : HERD_RELAY_CHUNK;
        if (herd_relay_src_chunk(&src, herd_conn_buf(req->conn), key, n)) {
            herd_conn_fail(req->conn, "out of memory relaying a value");
            break;
        }
    }
    herd_conn_end(req->conn);
    herd_relay_src_free(&src);
}

static void relay_free(relay *r)
{
    herd_relay_rx_free_all(&r->rx);
    free(r);
}

static void unlink_relay(herd_sched *s, relay *r)
{
    for (relay **pp = &s->relays; *pp; pp = &(*pp)->next)
        if (*pp == r) { *pp = r->next; break; }
    if (r->xfer) s->relays_active--;
    relay_free(r);
}

/* Give r's holder more credit while its reader keeps up. */
static void top_up(herd_sched *s, relay *r)
{
    if (!r->xfer || r->dead || r->nbytes < 0 || !r->holder->conn) return;
    uint64_t out = r->granted - r->recvd;
    if ((int64_t)r->granted >= r->nbytes || out > HERD_RELAY_WINDOW / 2) return;
    if (!r->local && r->req->conn && herd_conn_queued(r->req->conn) > HIGH) return;    /* when it drains */
    uint64_t add = HERD_RELAY_WINDOW - out;
    if (add > (uint64_t)r->nbytes - r->granted) add = (uint64_t)r->nbytes - r->granted;
    r->granted += add;
    herd_msg_more m = { r->xfer, (int64_t)add };
    herd_proto_pack_more(herd_conn_buf(r->holder->conn), &m);
    herd_conn_end(r->holder->conn);
}

/* A reader's connection drained: top up every transfer to it. */
static void reader_drained(herd_conn *c, void *ud)
{
    sworker *w = ud;
    herd_sched *s = w->s;
    for (relay *r = s->relays; r; r = r->next)
        if (r->req == w) top_up(s, r);
}

static void start(herd_sched *s, relay *r)
{
    r->xfer = ++s->next_xfer;
    r->granted = HERD_RELAY_WINDOW;
    s->relays_active++;
    herd_msg_fetch f = { r->key, r->xfer, (int64_t)r->granted };
    herd_proto_pack_fetch(herd_conn_buf(r->holder->conn), &f);
    herd_conn_end(r->holder->conn);
}

static void start_next(herd_sched *s)
{
    relay *first = NULL;
    for (relay *r = s->relays; r && s->relays_active < HERD_RELAY_ACTIVE; r = r->next)
        if (!r->xfer) first = r;       /* the list is newest first: the last one waiting is the oldest */
    if (first && s->relays_active < HERD_RELAY_ACTIVE) start(s, first);
}

void sch_on_fetch(herd_sched *s, sworker *req, uint64_t key)
{
    stask *t = kmap_get(&s->tasks, key);
    if (t && t->state == T_DONE && t->final == HERD_COMPLETED && t->result) {
        send_inline(s, req, key, t->result);
        return;
    }
    if (!t || t->state != T_DONE || !t->holder || !t->holder->conn) {
        tell_error(s, req, !req, key, HERD_RELAY_GONE " (released, or lost and not recomputed yet)");
        return;
    }
    for (relay *o = s->relays; o; o = o->next)
        if (o->key == key && !o->dead && o->req == req && o->local == !req) return;   /* coming already */
    relay *r = calloc(1, sizeof *r);
    if (!r) { tell_error(s, req, !req, key, "the scheduler is out of memory"); return; }
    *r = (relay){ .key = key, .req = req, .local = !req, .holder = t->holder, .nbytes = -1, .next = s->relays };
    s->relays = r;
    if (req) herd_conn_on_drain(req->conn, HIGH / 2, reader_drained);
    if (s->relays_active < HERD_RELAY_ACTIVE) start(s, r);
}

static relay *find(herd_sched *s, sworker *w, uint64_t xfer, const char *op, herd_err *err)
{
    for (relay *r = s->relays; r; r = r->next)
        if (r->xfer == xfer && xfer) {
            if (r->holder == w) return r;
            break;
        }
    if (xfer && xfer <= s->next_xfer)
        herd_err_set(err, -HERD_EPROTO, "%s for relay transfer %llu, which is over or not this worker's", op,
                     (unsigned long long)xfer);
    else
        herd_err_set(err, -HERD_EPROTO, "%s for an unknown relay transfer id %llu", op, (unsigned long long)xfer);
    return NULL;
}

int sch_on_value(herd_sched *s, sworker *w, const herd_msg_value *m, herd_err *err)
{
    relay *r = find(s, w, m->id, "VALUE", err);
    if (!r) return -HERD_EPROTO;
    if (r->nbytes >= 0) return herd_err_set(err, -HERD_EPROTO, "VALUE twice for relay transfer %llu",
                                            (unsigned long long)m->id);
    if (m->nbytes < 0) {              /* no value: nothing follows */
        char *error = herd_pstr_dup(m->error);
        if (!r->dead) tell_error(s, r->req, r->local, r->key, error ? error : "no value");
        free(error);
        unlink_relay(s, r);
        start_next(s);
        return 0;
    }
    r->nbytes = m->nbytes;
    if (r->granted > (uint64_t)r->nbytes) r->granted = (uint64_t)r->nbytes;
    if (r->dead) return 0;
    if (r->local) {
        int rc = herd_relay_rx_begin(&r->rx, r->key, r->nbytes, err);
        if (rc) {                     /* no memory for it here: the reader hears why, the rest is dropped */
            tell_error(s, NULL, 1, r->key, err->msg);
            r->dead = 1;
            r->local = 0;
        }
    } else if (r->req->conn) {
        herd_msg_value v = { .id = r->key, .nbytes = r->nbytes };
        herd_proto_pack_value(herd_conn_buf(r->req->conn), &v);
        herd_conn_end(r->req->conn);
    }
    top_up(s, r);
    return 0;
}

int sch_on_chunk(herd_sched *s, sworker *w, const herd_msg_chunk *m, herd_err *err)
{
    relay *r = find(s, w, m->id, "CHUNK", err);
    if (!r) return -HERD_EPROTO;
    if (r->nbytes < 0)
        return herd_err_set(err, -HERD_EPROTO, "CHUNK before VALUE for relay transfer %llu", (unsigned long long)m->id);
    if (r->recvd + m->bytes.len > r->granted)
        return herd_err_set(err, -HERD_EPROTO, "CHUNK of %zu bytes past what relay transfer %llu allows (%llu of %lld "
                            "bytes sent, %llu allowed)", m->bytes.len, (unsigned long long)m->id,
                            (unsigned long long)r->recvd, (long long)r->nbytes, (unsigned long long)r->granted);
    r->recvd += m->bytes.len;
    if (r->dead) {
        if (r->recvd == r->granted) { unlink_relay(s, r); start_next(s); }
        return 0;
    }
    if (r->local) {
        herd_value *v = NULL;
        char why[1200];
        int rc = herd_relay_rx_chunk(&r->rx, r->key, m->bytes, &v, why, sizeof why, err);
        if (rc < 0) return rc;
        if (rc == 1 && s->local) herd_client_deliver_value(s->local, r->key, v, v ? NULL : why);
        else if (rc == 1) herd_value_free(v);
    } else if (r->req->conn) {
        struct iovec one = { (void *)m->bytes.ptr, m->bytes.len };
        herd_msg_chunk c = { .id = r->key, .parts = &one, .nparts = 1 };
        herd_proto_pack_chunk(herd_conn_buf(r->req->conn), &c);
        herd_conn_end(r->req->conn);
    }
    if (r->recvd == (uint64_t)r->nbytes) { unlink_relay(s, r); start_next(s); return 0; }
    top_up(s, r);
    return 0;
}

/* w left: what it asked for is stopped; what it was sending is cut off. */
void sch_relays_gone(herd_sched *s, sworker *w)
{
    int ended = 0;
    for (relay **pp = &s->relays; *pp;) {
        relay *r = *pp;
        if (r->holder == w) {
            if (!r->dead) tell_error(s, r->req, r->local, r->key, HERD_RELAY_GONE " (its holder left)");
            *pp = r->next;
            if (r->xfer) s->relays_active--;
            relay_free(r);
            ended = 1;
            continue;
        }
        if (r->req == w && !r->local) {
            r->req = NULL;
            r->dead = 1;
            if (!r->xfer || (r->nbytes >= 0 && r->recvd == r->granted)) {    /* nothing more will come */
                *pp = r->next;
                if (r->xfer) s->relays_active--;
                relay_free(r);
                ended = 1;
                continue;
            }
            if (r->nbytes < 0 || r->granted < (uint64_t)r->nbytes) {          /* stop the holder */
                herd_msg_more m = { r->xfer, -1 };
                herd_proto_pack_more(herd_conn_buf(r->holder->conn), &m);
                herd_conn_end(r->holder->conn);
            }
        }
        pp = &r->next;
    }
    if (ended) start_next(s);
}

void sch_relays_free(herd_sched *s)
{
    while (s->relays) { relay *r = s->relays; s->relays = r->next; relay_free(r); }
    s->relays_active = 0;
}
