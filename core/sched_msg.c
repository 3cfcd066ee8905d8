/* core/sched_msg.c — the scheduler's connections: accepting one (TLS or
 * plain, pre-auth frame limits, the HELLO timeout), each message a worker or
 * client sends once it said HELLO, a bad message, and a connection's end. */
#include "sched_int.h"


/* d's value is taken. */
static void on_done(herd_sched *s, sworker *w, herd_msg_done *d)
{
    uint64_t key = d->key;
    int attempt = d->attempt;
    stask *t = kmap_get(&w->running, key);
    if (!t || t->attempt != attempt) {
        /* a timed-out attempt finally returned: free its thread */
        for (stuck **pp = &w->stuck; *pp; pp = &(*pp)->next)
            if ((*pp)->key == key && (*pp)->attempt == attempt) {
                stuck *st = *pp;
                *pp = st->next;
                w->busy--;
                if (st->resources) sch_res_take(w, st->resources, -1);
                herd_value_free(st->resources);
                free(st);
                kick(s);          /* a closing worker's retire step */
                break;
            }
        herd_value_free(d->value);
        if (d->held >= 0 && (!t || t->holder != w) && w->conn) {   /* nobody will read it */
            herd_msg_key k = { key };
            herd_proto_pack_free(herd_conn_buf(w->conn), &k);
            herd_conn_end(w->conn);
        }
        return;
    }
    double dur = (double)d->duration_us / 1e6;
    s->avg_dur = s->avg_dur < 0 ? dur : 0.9 * s->avg_dur + 0.1 * dur;
    herd_metrics_run(&s->met, t->grp, w->name, dur, d->ok);
    if (d->ok) w->ndone++; else w->nfailed++;
    w->last_done = herd_now();
    sch_unassign(s, w, t);
    if (d->ok && d->held >= 0) {          /* the value stays on w: nil here */
        herd_value_free(d->value);
        d->value = NULL;
    }
    if (d->ok && d->held >= 0 && !w->peer) {
        sch_attempt_failed(s, t, "its worker kept the result without serving it (no PEER message)");
    } else if (d->ok) {
        sch_complete(s, t, d->held >= 0 ? NULL : d->value, d->held >= 0 ? w : NULL, d->held);
    } else {
        char *msg = herd_pstr_dup(d->error);
        sch_attempt_failed(s, t, msg && *msg ? msg : "failed without a message");
        free(msg);
    }
}

/* A message that does not unpack: close that connection (on_close then
 * treats it as lost), saying why. */
static void bad_message(herd_sched *s, sworker *w, const herd_err *e)
{
    char why[sizeof e->msg + 32];
    snprintf(why, sizeof why, "protocol error: %s", e->msg);
    slog(s, HERD_LOG_WARN, "closing the connection from %s (%s %s): %s", herd_conn_peer(w->conn),
         w->role == ROLE_CLIENT ? "client" : "worker", w->name, why);
    herd_conn_fail(w->conn, why);
}

/* A task's log line: to its client, or to the scheduler's log. */
static void on_log(herd_sched *s, sworker *w, const herd_msg_log *m)
{
    stask *t = kmap_get(&s->tasks, m->key);
    int tl = (int)m->text.len;
    if (t && t->fut && s->local)
        herd_client_logf(s->local, m->level, "%s: %.*s", t->run_name, tl, m->text.ptr);
    else if (t && t->owner && t->owner->conn && !t->owner_released) {
        char *line = NULL;
        if (asprintf(&line, "%s: %.*s", t->run_name, tl, m->text.ptr) > 0) {
            herd_msg_log fwd = { t->key, m->level, herd_pstr_c(line) };
            herd_proto_pack_log(herd_conn_buf(t->owner->conn), &fwd);
            herd_conn_end(t->owner->conn);
        }
        free(line);
    } else
        slog(s, m->level, "%s: %.*s", t ? t->run_name : w->name, tl, m->text.ptr);
}

static void on_msg(herd_conn *c, const msgpack_object *m, void *ud)
{
    sworker *w = ud;
    herd_sched *s = w->s;
    herd_err e;                           /* set by a failing unpack (not zeroed: 1 KiB) */
    e.msg[0] = '\0';
    int op = herd_proto_op(m, NULL);      /* comm.c checked it */
    w->last_seen = herd_now();
    if (!w->hello) {
        if (op != OP_HELLO) { sch_refuse(s, w, "expected hello first"); return; }
        sch_on_hello(s, w, m);
        return;
    }
    switch (op) {
    case OP_DONE: {
        herd_msg_done d;
        if (herd_proto_unpack_done(m, &d, &e)) break;
        on_done(s, w, &d);
        return;
    }
    case OP_STARTED: {
        herd_msg_started st;
        if (herd_proto_unpack_started(m, &st, &e)) break;
        stask *t = kmap_get(&w->running, st.key);
        if (t && t->attempt == st.attempt) {
            if (t->fut && s->local) herd_client_deliver(s->local, t->fut, HERD_RUNNING, NULL, NULL);
            else sch_tell_owner(t, HERD_RUNNING);
        }
        return;
    }
    case OP_HEARTBEAT: {
        herd_msg_heartbeat hb;
        if (herd_proto_unpack_heartbeat(m, &hb, &e)) break;
        w->hb_cpu = hb.cpu;
        w->hb_rss = hb.memory;
        w->managed = hb.managed;
        w->spilled = hb.spilled;
        return;
    }
    case OP_LOG: {
        herd_msg_log lm;
        if (herd_proto_unpack_log(m, &lm, &e)) break;
        on_log(s, w, &lm);
        return;
    }
    case OP_PAUSE: {
        herd_msg_pause pm;
        if (herd_proto_unpack_pause(m, &pm, &e)) break;
        if (pm.paused != w->paused)
            slog(s, HERD_LOG_DEBUG, "worker %s %s", w->name, pm.paused ? "paused (memory)" : "resumed");
        w->paused = pm.paused;
        if (!w->paused) kick(s);
        return;
    }
    case OP_SECEDE: {
        herd_msg_key k;
        if (herd_proto_unpack_secede(m, &k, &e)) break;
        stask *t = kmap_get(&w->running, k.key);
        if (t && !t->seceded) { t->seceded = 1; w->busy--; kick(s); }
        return;
    }
    case OP_SUBMIT: {
        herd_submit_spec *sp = calloc(1, sizeof *sp);
        if (!sp) { slog(s, HERD_LOG_ERROR, "submit from %s dropped: out of memory", w->name); return; }
        if (herd_proto_unpack_submit(m, sp, &e)) { free(sp); break; }
        if ((uint32_t)(sp->key >> 40) != w->id) {
            slog(s, HERD_LOG_WARN, "submit from %s with a key outside its range refused", w->name);
            herd_spec_free(sp);
            return;
        }
        sch_add_task(s, sp, w);
        return;
    }
    case OP_RELEASE: {
        herd_msg_key k;
        if (herd_proto_unpack_release(m, &k, &e)) break;
        sch_on_release(s, k.key, w->id);
        return;
    }
    case OP_CANCEL: {
        herd_msg_key k;
        if (herd_proto_unpack_cancel(m, &k, &e)) break;
        sch_on_cancel(s, k.key, w->id);
        return;
    }
    case OP_PEER: {
        herd_msg_peer pm;
        if (herd_proto_unpack_peer(m, &pm, &e)) break;
        if (w->role != ROLE_WORKER) { herd_err_set(&e, -HERD_EPROTO, "PEER: only a worker serves values"); break; }
        free(w->peer);
        w->peer = herd_pstr_dup(pm.address);
        slog(s, HERD_LOG_DEBUG, "worker %s serves held values at %s", w->name, w->peer ? w->peer : "?");
        return;
    }
    case OP_FETCH: {
        herd_msg_fetch k;
        if (herd_proto_unpack_fetch(m, &k, &e)) break;
        sch_on_fetch(s, w, k.key);
        return;
    }
    case OP_VALUE: {
        herd_msg_value vm;
        if (herd_proto_unpack_value(m, &vm, &e)) break;
        if (w->role != ROLE_WORKER) { herd_err_set(&e, -HERD_EPROTO, "VALUE: only a worker holds values"); break; }
        if (sch_on_value(s, w, &vm, &e)) break;
        return;
    }
    case OP_CHUNK: {
        herd_msg_chunk cm;
        if (herd_proto_unpack_chunk(m, &cm, &e)) break;
        if (w->role != ROLE_WORKER) { herd_err_set(&e, -HERD_EPROTO, "CHUNK: only a worker holds values"); break; }
        if (sch_on_chunk(s, w, &cm, &e)) break;
        return;
    }
    case OP_MISSING: {
        herd_msg_missing mm;
        if (herd_proto_unpack_missing(m, &mm, &e)) break;
        sch_on_missing(s, w, &mm);
        return;
    }
    case OP_CLOSE: {       /* a worker's last words: why its connection is about to end */
        herd_msg_reason r;
        if (herd_proto_unpack_close(m, &r, &e)) break;
        if (w->role != ROLE_WORKER) { herd_err_set(&e, -HERD_EPROTO, "CLOSE: only a worker says why it goes"); break; }
        if (!r.reason.len) return;
        free(w->last_words);
        w->last_words = herd_pstr_dup(r.reason);
        return;
    }
    case OP_ACQUIRED: {
        herd_msg_acquired am;
        if (herd_proto_unpack_acquired(m, &am, &e)) break;
        if (w->role != ROLE_WORKER) { herd_err_set(&e, -HERD_EPROTO, "ACQUIRED: only a worker holds values"); break; }
        sch_on_acquired(s, w, &am);
        return;
    }
    case OP_CONTROL: {
        herd_msg_control ctl;
        if (herd_proto_unpack_control(m, &ctl, &e)) break;
        sch_on_control(s, w, &ctl);
        return;
    }
    default:
        herd_err_set(&e, -HERD_EPROTO, "%s: not a message a scheduler takes", herd_proto_op_name(op));
    }
    bad_message(s, w, &e);
}

static void on_close(herd_conn *c, const char *why, void *ud)
{
    sworker *w = ud;
    if (!w->hello) {
        herd_sched *s = w->s;
        if (strncmp(why, "TLS: ", 5) == 0) {
            slog(s, HERD_LOG_WARN, "refused connection from %s: %s", herd_conn_peer(c), why + 5);
            herd_conn_set_linger(c);
        }
        else
            slog(s, HERD_LOG_WARN, "connection from %s dropped before hello: %s", herd_conn_peer(c), why);
        for (sworker **pp = &s->workers; *pp; pp = &(*pp)->next)
            if (*pp == w) { *pp = w->next; break; }
        sch_worker_free(w);
        return;
    }
    sch_worker_lost(w->s, w, w->last_words ? w->last_words : why);
}

#define HELLO_TIMEOUT_S 10

/* The TLS handshake and the HELLO must both be done within HELLO_TIMEOUT_S;
 * a connection still in its handshake can be told nothing and is closed. */
static void hello_timeout(evutil_socket_t fd, short what, void *arg)
{
    sworker *w = arg;
    char why[64];
    snprintf(why, sizeof why, "%s within %ds", herd_conn_handshaking(w->conn) ? "TLS handshake not finished"
             : "no hello", HELLO_TIMEOUT_S);
    sch_refuse(w->s, w, why);
}

void sch_accept_error_cb(struct evconnlistener *l, void *arg)
{
    herd_sched *s = arg;
    herd_accept_guard_fail(&s->guard);
}

void sch_accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len, void *arg)
{
    herd_sched *s = arg;
    char peer[128] = "local", host[64] = "";
    if (sa->sa_family == AF_INET || sa->sa_family == AF_INET6) {
        int port = 0;
        if (sa->sa_family == AF_INET) {
            struct sockaddr_in *in = (struct sockaddr_in *)sa;
            evutil_inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
            port = ntohs(in->sin_port);
        } else {
            struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)sa;
            evutil_inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
            port = ntohs(in6->sin6_port);
        }
        snprintf(peer, sizeof peer, "%s:%d", host[0] ? host : "?", port);
    }
    sworker *w = calloc(1, sizeof *w);
    if (w) w->hb_cpu = w->hb_rss = -1;       /* none reported yet */
    if (!w) { evutil_closesocket(fd); return; }
    herd_err e = { 0 };
    struct bufferevent *bev = s->cfg.tls ? herd_tls_accept(s->cfg.tls, s->base, fd, &e)   /* closes fd on failure */
                                         : bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!bev) {
        free(w);
        if (!s->cfg.tls) evutil_closesocket(fd);
        else slog(s, HERD_LOG_WARN, "refused connection from %s: %s", peer, e.msg);
        return;
    }
    w->s = s;
    snprintf(w->ip, sizeof w->ip, "%s", host);
    w->local = sa->sa_family == AF_UNIX;
    kmap_init(&w->running);
    w->last_seen = herd_now();
    w->conn = herd_conn_new(bev, peer, on_msg, on_close, w);
    if (!w->conn) { free(w); return; }
    herd_conn_set_limits(w->conn, HERD_PREAUTH_MAX_FRAME, 0);   /* nothing spent on it before its hello */
    w->hello_timer = evtimer_new(s->base, hello_timeout, w);
    struct timeval tv = { HELLO_TIMEOUT_S, 0 };
    evtimer_add(w->hello_timer, &tv);
    w->next = s->workers;
    s->workers = w;
}
