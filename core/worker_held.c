/* core/worker_held.c — the worker's held values: the peer server that serves
 * them (and the PEER message saying where), big results kept in the store,
 * a task's held inputs read from the store or fetched from their holder
 * (falling back to the relay, worker_relay.c) before it runs, and a value
 * moved here off a retiring worker (ACQUIRE). */
#include "worker_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
    if ((rc = wk_relay_input(w, key, out, &r->err)) == -E2BIG) r->final = 1;
    if (rc != -ENOENT && !skip) note_relay(w, peer, why);   /* alive, but not reachable from here: once */
    return rc;
}

/* Put a task's held inputs into its arguments. 0, or -1 after telling the
 * scheduler which input is missing (it recomputes it and runs t again), or
 * -2 when one cannot reach this worker at all (why says so; the task fails). */
int wk_fetch_inputs(wk *w, wtask *t, char *why, size_t cap)
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
void wk_hold_result(wk *w, wtask *t, herd_msg_done *d)
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

/* ACQUIRE (on an executor, ahead of queued tasks): a retiring worker's value
 * fetched like an input (directly, or relayed) and held here as if this
 * worker had computed it; ACQUIRED says so, or why not (no store, no room
 * under memory_limit's pause threshold, the fetch failed). */
void wk_acquire(wk *w, wtask *t)
{
    herd_msg_acquired a = { .key = t->key, .nbytes = -1 };
    char why[1200] = "";
    herd_value *v = NULL;
    int64_t rss, limit = w->cfg.memory_limit;
    herd_blob *b = w->store ? herd_store_get(w->store, t->key) : NULL;
    if (b) {                                      /* held here already */
        a.nbytes = (int64_t)b->len;
        herd_blob_unref(b);
    } else if (!w->store)
        snprintf(why, sizeof why, "worker %s holds no values (its peer server did not start)", w->name);
    else if (limit > 0 && (rss = herd_rss_bytes()) >= 0 && rss + t->nbytes > (int64_t)(HERD_MEM_PAUSE * (double)limit))
        snprintf(why, sizeof why, "worker %s has no room: %lld MiB in use + %lld MiB would pass %.0f%% of its "
                 "memory_limit %lld MiB", w->name, (long long)(rss >> 20), (long long)(t->nbytes >> 20),
                 100 * HERD_MEM_PAUSE, (long long)(limit >> 20));
    else {
        inres r = { .w = w, .inputs = t->inputs };
        r.err.msg[0] = '\0';
        size_t len;
        if (resolve_input(&r, t->key, &v)) snprintf(why, sizeof why, "%s", r.err.msg);
        else if ((len = herd_wire_size(v)) == SIZE_MAX || herd_value_share(&v) ||
                 herd_store_put_value(w->store, t->key, v, len))
            snprintf(why, sizeof why, "worker %s cannot keep it (out of memory)", w->name);
        else {
            a.nbytes = (int64_t)len;
            v = NULL;
            herd_spill_after_put(w->spill);
        }
    }
    herd_value_free(v);
    if (a.nbytes < 0) a.error = herd_pstr_c(why);
    wlog(w, a.nbytes < 0 ? HERD_LOG_WARN : HERD_LOG_DEBUG, "value %llu from a retiring worker: %s",
         (unsigned long long)t->key, a.nbytes < 0 ? why : "held here now");
    pthread_mutex_lock(&w->mu);
    herd_proto_pack_acquired(&w->out.sb, &a);
    herd_outbox_send_unlock(&w->out);
}

/* Serve held values and tell the scheduler where. A scheduler on this host
 * (unix://DIR/…): a socket in DIR, the cluster's private directory. A
 * scheduler reached over tcp:// or tls://: the same scheme on the address
 * this worker reaches the scheduler from (the interface other hosts of the
 * cluster can reach too), a port picked by the system, with the same TLS
 * credentials and token. A worker that cannot sends every result inline. */
void wk_start_peer(wk *w)
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
