/* core/sched_workers.c — worker membership: HELLO (token, names, resources),
 * a worker (or client connection) lost and what it ran rescheduled or ended,
 * heartbeats, and Dask's no-workers-timeout. The connected counts are
 * sched_count.c's. */
#include "sched_int.h"

#include <openssl/crypto.h>
#include <unistd.h>

/* A worker's peer socket, when it is in this scheduler's own directory
 * under the name workers give it (peer-….sock): removed once the worker is
 * gone, since a worker killed (as providers do at close) cannot remove it.
 * Nothing else is ever removed, whatever address a worker sent. */
void sch_unlink_peer(const herd_sched *s, const sworker *w)
{
    if (!w->peer || !s->unix_path[0] || strncmp(w->peer, "unix://", 7)) return;
    const char *path = w->peer + 7, *slash = strrchr(s->unix_path, '/');
    size_t dl = slash ? (size_t)(slash - s->unix_path) + 1 : 0, n = strlen(path);
    if (!dl || n < dl + 10 || strncmp(path, s->unix_path, dl) || strncmp(path + dl, "peer-", 5) ||
        strchr(path + dl, '/') || strcmp(path + n - 5, ".sock"))
        return;
    unlink(path);
}

void sch_worker_free(sworker *w)
{
    if (w->hello_timer) event_free(w->hello_timer);
    if (w->move_timer) event_free(w->move_timer);
    if (w->conn) herd_conn_free(w->conn);
    for (size_t i = 0; i < w->nres; i++) free(w->res[i].name);
    free(w->res);
    for (stuck *st = w->stuck, *n; st; st = n) { n = st->next; herd_value_free(st->resources); free(st); }
    kmap_free(&w->running);
    free(w->peer);
    free(w->last_words);
    free(w->move_to);
    free(w->name);
    free(w->host);
    free(w);
}

/* A connection ends: reschedule what its worker ran; drop what it owned. */
void sch_worker_lost(herd_sched *s, sworker *w, const char *why)
{
    for (sworker **pp = &s->workers; *pp; pp = &(*pp)->next)
        if (*pp == w) { *pp = w->next; break; }
    if (w->hello && w->role == ROLE_WORKER && w->closing)   /* asked to go: how the socket ended is noise */
        slog(s, HERD_LOG_INFO, "worker %s (pid %ld) closed", w->name, w->pid);
    else if (w->hello && w->role == ROLE_WORKER)
        slog(s, HERD_LOG_WARN, "worker %s (pid %ld) left: %s", w->name, w->pid, why);
    if (w->hello && w->role == ROLE_WORKER) s->met.worker_losses++;
    else if (w->hello)
        slog(s, HERD_LOG_INFO, "client %s left (%s); releasing its tasks", w->name, why);
    size_t i = 0;
    void *v;
    while (kmap_next(&w->running, &i, NULL, &v)) {
        stask *t = v;
        t->worker = NULL;
        if (t->timer) event_del(t->timer);
        s->met.suspicious++;
        if (++t->suspicious > s->cfg.allowed_failures) {
            char msg[512];
            snprintf(msg, sizeof msg, "worker %s died while running it (%s); it was on %d workers that died "
                     "(allowed_failures=%d)", w->name, why, t->suspicious, s->cfg.allowed_failures);
            sch_finalize(s, t, HERD_CRASHED, msg);
        } else {
            if (!w->closing)
                slog(s, HERD_LOG_WARN, "%s: worker %s died (%s); rescheduling", t->run_name, w->name, why);
            sch_make_ready(s, t);
        }
    }
    kmap_free(&w->running);
    sch_retire_lost(s, w);
    sch_relays_gone(s, w);
    sch_lost_values(s, w);
    sch_unlink_peer(s, w);
    /* tasks this connection submitted (sub-tasks of its tasks) lose their owner */
    i = 0;
    uint64_t k;
    stask **gone = NULL;
    size_t ng = 0, cg = 0;
    while (kmap_next(&s->tasks, &i, &k, &v)) {
        stask *t = v;
        if (t->owner != w) continue;
        t->owner = NULL;
        t->owner_released = 1;
        if (sch_releasable(t) || ((t->state == T_READY || t->state == T_RETRY || t->state == T_WAITING) &&
                              !t->nwaiting_dependents)) {
            if (ng == cg) { stask **ngone = realloc(gone, (cg = cg ? 2 * cg : 16) * sizeof *ngone); if (!ngone) break; gone = ngone; }
            gone[ng++] = t;
        }
    }
    /* one may be another's dependency: pin them all while their links go */
    for (size_t j = 0; j < ng; j++) gone[j]->pins++;
    for (size_t j = 0; j < ng; j++) { sch_release_deps(s, gone[j], 0); sch_release_ins(s, gone[j]); }
    for (size_t j = 0; j < ng; j++) sch_forget(s, gone[j]);
    free(gone);
    sch_worker_free(w);
    sch_worker_counts(s);
    kick(s);
}

void sch_refuse(herd_sched *s, sworker *w, const char *why)
{
    slog(s, HERD_LOG_WARN, "refused connection from %s: %s", herd_conn_peer(w->conn), why);
    herd_msg_reason m = { herd_pstr_c(why) };
    herd_proto_pack_refuse(herd_conn_buf(w->conn), &m);
    herd_conn_end(w->conn);
    herd_conn_close_after_flush(w->conn);
    w->conn = NULL;
    for (sworker **pp = &s->workers; *pp; pp = &(*pp)->next)
        if (*pp == w) { *pp = w->next; break; }
    sch_worker_free(w);
}

int sch_on_hello(herd_sched *s, sworker *w, const msgpack_object *msg)
{
    herd_msg_hello h;
    herd_err e = { 0 };
    if (herd_proto_unpack_hello(msg, &h, &e)) { sch_refuse(s, w, e.msg); return -1; }
    if (h.role == ROLE_PEER) {
        herd_value_free(h.resources);
        sch_refuse(s, w, "HELLO: role 2 (peer) is for a worker's peer server, not the scheduler");
        return -1;
    }
    if (s->token) {
        size_t tl = strlen(s->token);
        if (h.token.len != tl || CRYPTO_memcmp(h.token.ptr, s->token, tl) != 0) {
            herd_value_free(h.resources);
            sch_refuse(s, w, "wrong or missing token");
            return -1;
        }
    }
    char *name = herd_pstr_dup(h.name);
    if (!name) { herd_value_free(h.resources); sch_refuse(s, w, "out of memory"); return -1; }
    for (sworker *o = s->workers; o; o = o->next)
        if (o != w && o->hello && o->name && strcmp(o->name, name) == 0) {
            char why[HERD_PROTO_MAX_NAME + 64];
            snprintf(why, sizeof why, "a worker named \"%s\" is already connected", name);
            free(name);
            herd_value_free(h.resources);
            sch_refuse(s, w, why);
            return -1;
        }
    if (h.resources) {
        w->res = calloc(herd_len(h.resources) + 1, sizeof *w->res);
        for (size_t i = 0; w->res && i < herd_len(h.resources); i++) {
            w->res[w->nres].name = strdup(herd_key_at(h.resources, i));
            w->res[w->nres].total = w->res[w->nres].avail = herd_as_float(herd_at(h.resources, i));
            w->nres++;
        }
        herd_value_free(h.resources);
    }
    int role = h.role;
    w->name = name;
    w->role = role;
    w->nthreads = h.nthreads > 0 ? h.nthreads : 1;
    w->pid = (long)h.pid;
    w->host = h.host.len ? herd_pstr_dup(h.host) : NULL;
    w->hello = 1;
    w->joined = herd_wall_now();
    if (w->role == ROLE_WORKER) s->met.worker_joins++;
    herd_conn_set_limits(w->conn, HERD_MAX_FRAME, 0);    /* authenticated: full-size frames */
    w->idle_since = herd_now();
    w->id = s->next_id++;
    if (w->hello_timer) { event_free(w->hello_timer); w->hello_timer = NULL; }
    pthread_mutex_lock(&s->w_mu);
    int nw = s->nworkers, nt = s->nthreads;
    pthread_mutex_unlock(&s->w_mu);
    herd_msg_welcome wm = { w->id, s->cfg.heartbeat_interval, nw, nt, s->cfg.owned ? 1 : 0, s->cfg.data_transfer };
    herd_proto_pack_welcome(herd_conn_buf(w->conn), &wm);
    herd_conn_end(w->conn);
    if (role == ROLE_WORKER) {
        slog(s, HERD_LOG_INFO, "worker %s connected (pid %ld, %d threads)", w->name, w->pid, w->nthreads);
        sch_worker_counts(s);
        kick(s);
    } else {
        slog(s, HERD_LOG_INFO, "client %s connected from %s", w->name, herd_conn_peer(w->conn));
    }
    return 0;
}

/* Dask's no-workers-timeout: ready tasks that no connected worker can run
 * for cfg.no_workers_timeout end Crashed, saying why, so no future waits
 * forever on a cluster that is gone. Timed from when the tasks were ready
 * with no worker (not from when the last worker left). */
static void check_no_workers(herd_sched *s, double now)
{
    double limit = s->cfg.no_workers_timeout;
    if (limit <= 0) return;
    int nw = 0;
    for (sworker *w = s->workers; w; w = w->next)
        if (w->hello && w->role == ROLE_WORKER && !w->closing) nw++;
    if (nw || !s->hlen) s->no_workers_since = 0;
    else if (!s->no_workers_since) s->no_workers_since = now;
    char msg[256];
    if (s->no_workers_since && now - s->no_workers_since >= limit) {
        snprintf(msg, sizeof msg, "no worker to run it for %.3gs (client_kwargs.no_workers_timeout): the cluster "
                 "has no workers", now - s->no_workers_since);
        slog(s, HERD_LOG_ERROR, "%zu ready task(s) end Crashed: %s", s->hlen, msg);
        while (s->hlen) sch_finalize(s, s->heap[0], HERD_CRASHED, msg);
        s->no_workers_since = 0;
    }
    for (size_t i = 0; i < s->rlen;) {
        stask *t = s->rlist[i];
        int can = 0;
        for (sworker *w = s->workers; w && !can; w = w->next)
            can = w->hello && w->role == ROLE_WORKER && !w->closing && sch_fits_in(w, t, 1) && sch_allowed_on(s, w, t);
        if (can) { t->no_worker_since = 0; i++; continue; }
        if (!t->no_worker_since) t->no_worker_since = now;
        if (now - t->no_worker_since < limit) { i++; continue; }
        char *res = herd_value_to_string(t->resources), *names = herd_value_to_string(t->workers);
        snprintf(msg, sizeof msg, "no worker to run it for %.3gs (client_kwargs.no_workers_timeout): no "
                 "connected worker (of %d) %s %s", now - t->no_worker_since, nw,
                 t->workers ? "is one of the workers it may run on," : "offers resources",
                 t->workers ? (names ? names : "?") : (res ? res : "?"));
        free(res);
        free(names);
        slog(s, HERD_LOG_ERROR, "%s ends Crashed: %s", t->run_name, msg);
        sch_finalize(s, t, HERD_CRASHED, msg);   /* leaves rlist: i now holds the next */
    }
}

void sch_heartbeat_cb(evutil_socket_t fd, short what, void *arg)
{
    herd_sched *s = arg;
    double now = herd_now();
    for (sworker *w = s->workers, *next; w; w = next) {
        next = w->next;
        if (w->hello && w->role == ROLE_WORKER && now - w->last_seen > s->cfg.heartbeat_timeout) {
            char why[96];
            snprintf(why, sizeof why, "no heartbeat for %.1fs", now - w->last_seen);
            sch_worker_lost(s, w, why);
        }
    }
    check_no_workers(s, now);
}
