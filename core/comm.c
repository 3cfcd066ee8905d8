/* core/comm.c — framed msgpack messages over libevent bufferevents. A frame
 * is a 4-byte big-endian length followed by one or more msgpack messages;
 * everything queued during one loop iteration leaves as one frame, so both
 * directions are batched. Also: dialling a connection, and the outbox other
 * threads queue messages in (addresses, listen, dial and the accept guard are
 * net.c's). Limits: a frame longer than the
 * connection's max_frame is refused from its header (nothing of it is
 * buffered; the read high-watermark caps what is), a peer with more than
 * max_queued of output waiting that takes none of it for HERD_WRITE_STALL_S
 * (or with twice that waiting) is dropped, and a close that flushes first
 * waits HERD_WRITE_STALL_S at most. What messages hold is
 * proto.c's. */
#include "comm.h"
#include "value_int.h"
#include "security.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <event2/buffer.h>

struct herd_conn {
    struct bufferevent *bev;
    struct event *flush_ev;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    herd_conn_msg_fn on_msg;
    herd_conn_close_fn on_close;
    void *ud;
    char peer[128];
    int in_cb;          /* inside a callback: defer free */
    int dead;           /* free requested */
    int closing;        /* close once output drains */
    int flush_pending;
    int linger;         /* a TLS failure: let the peer read our alert before the socket goes */
    int dialed;         /* we dialled (the peer is the scheduler) */
    int plain_peer;     /* accepted TLS, the peer sent plain frames: tell it in plain (linger) */
    int got_frame;      /* a whole frame arrived (the peer speaks our protocol) */
    int over_cap;       /* output past max_queued: a write stall drops the peer */
    int flood;          /* output past 2 x max_queued: fail from flush_cb */
    size_t max_frame, max_queued;
    /* raw input (herd_conn_read_raw): the next raw_left bytes go to raw_dst */
    int raw_on;
    char *raw_dst;
    size_t raw_left;
    herd_conn_fn raw_done;
    /* herd_conn_on_drain: called when the output falls to drain_low bytes */
    herd_conn_fn drain_fn;
    size_t drain_low;
};

#define LINGER_S 1

/* A lingering close, for a connection refused in its TLS handshake: the
 * peer's first message (sent as soon as its side of the handshake ended) is
 * often still unread here, and closing a socket with unread input sends RST,
 * which can reach the peer before the alert that says why it was refused —
 * it would see only "connection reset". So: our side is shut for writing at
 * once, then, when what the peer sent arrives (or its close, or after
 * LINGER_S), it is read and dropped and the socket closed. (A loop that
 * stops before that moment frees the one-shot event but not the socket: one
 * descriptor, and only when it stops within LINGER_S of such a refusal.) */
static void linger_cb(evutil_socket_t fd, short what, void *arg)
{
    char buf[4096];
    if (what & EV_READ)
        while (recv(fd, buf, sizeof buf, MSG_DONTWAIT) > 0) {}
    close(fd);
}

static void destroy(herd_conn *c)
{
    if (c->flush_ev) event_free(c->flush_ev);
    evutil_socket_t fd = c->bev && c->linger ? bufferevent_getfd(c->bev) : -1;
    int keep = fd >= 0 ? dup(fd) : -1;   /* the bufferevent closes fd; keep holds the socket */
    struct event_base *base = c->bev ? bufferevent_get_base(c->bev) : NULL;
    if (c->bev) bufferevent_free(c->bev);
    if (keep >= 0) {
        if (c->plain_peer) {   /* a plain REFUSE it can read: better than a close it cannot explain */
            msgpack_sbuffer sb;
            msgpack_sbuffer_init(&sb);
            uint32_t be = 0;
            msgpack_sbuffer_write(&sb, (const char *)&be, 4);
            herd_msg_reason m = { herd_pstr_c("the scheduler speaks TLS: use tls:// and certificates") };
            if (herd_proto_pack_refuse(&sb, &m) == 0) {
                be = htonl((uint32_t)(sb.size - 4));
                memcpy(sb.data, &be, 4);
                if (send(keep, sb.data, sb.size, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) { /* best effort */ }
            }
            msgpack_sbuffer_destroy(&sb);
        }
        shutdown(keep, SHUT_WR);
        struct timeval tv = { LINGER_S, 0 };
        if (!base || event_base_once(base, keep, EV_READ | EV_TIMEOUT, linger_cb, NULL, &tv) != 0)
            close(keep);
    }
    msgpack_sbuffer_destroy(&c->sb);
    free(c);
}

void herd_block_sigpipe(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
}

void herd_conn_set_linger(herd_conn *c) { if (c) c->linger = 1; }

void herd_event_base_drain_free(struct event_base *base)
{
    for (int i = 0; i < 4; i++) event_base_loop(base, EVLOOP_NONBLOCK);
    event_base_free(base);
}

void herd_conn_free(herd_conn *c)
{
    if (!c) return;
    c->on_msg = NULL;
    c->on_close = NULL;
    if (c->in_cb) { c->dead = 1; return; }
    destroy(c);
}

static void fail(herd_conn *c, const char *why);

static void write_frame(herd_conn *c)
{
    c->flush_pending = 0;
    if (c->sb.size == 0 || !c->bev) return;
    uint32_t be = htonl((uint32_t)c->sb.size);
    struct evbuffer *out = bufferevent_get_output(c->bev);
    evbuffer_add(out, &be, 4);
    evbuffer_add(out, c->sb.data, c->sb.size);
    msgpack_sbuffer_clear(&c->sb);
    size_t queued = evbuffer_get_length(out);
    if (c->closing || queued <= c->max_queued) return;
    if (queued / 2 > c->max_queued && !c->flood) {
        /* failing here would call on_close inside the caller's own code:
         * the loop does it, from flush_cb */
        c->flood = 1;
        event_active(c->flush_ev, EV_WRITE, 0);
    } else if (!c->over_cap) {
        /* over the cap: the peer must keep taking its output (the write
         * timeout restarts on each write); write_cb runs again once it is
         * back under the cap */
        c->over_cap = 1;
        struct timeval tv = { HERD_WRITE_STALL_S, 0 };
        bufferevent_set_timeouts(c->bev, NULL, &tv);
        bufferevent_setwatermark(c->bev, EV_WRITE, c->max_queued, 0);
    }
}

static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
    herd_conn *c = arg;
    write_frame(c);
    if (c->flood && c->on_close) {
        char why[160];
        snprintf(why, sizeof why, "the peer does not read what is sent to it: %zu bytes queued (over twice the "
                 "cap of %zu)", evbuffer_get_length(bufferevent_get_output(c->bev)), c->max_queued);
        c->in_cb++;
        fail(c, why);
        c->in_cb--;
        if (c->dead && !c->in_cb) destroy(c);
    }
}

void herd_conn_flush(herd_conn *c) { if (c) write_frame(c); }

size_t herd_conn_queued(const herd_conn *c)
{
    if (!c || !c->bev) return 0;
    return c->sb.size + evbuffer_get_length(bufferevent_get_output(c->bev));
}

msgpack_packer *herd_conn_packer(herd_conn *c) { return &c->pk; }
msgpack_sbuffer *herd_conn_buf(herd_conn *c) { return &c->sb; }

void herd_conn_end(herd_conn *c)
{
    if (c->sb.size > HERD_MAX_FRAME / 4) { write_frame(c); return; }
    if (!c->flush_pending) {
        c->flush_pending = 1;
        event_active(c->flush_ev, EV_WRITE, 0);
    }
}

void herd_conn_append(herd_conn *c, const char *data, size_t len)
{
    size_t off = 0, used;
    while (len - off > HERD_MAX_FRAME / 4 && herd_msgpack_check(data + off, len - off, &used, NULL) == 0 &&
           used < len - off) {
        msgpack_sbuffer_write(&c->sb, data + off, used);   /* one message at a time */
        herd_conn_end(c);
        off += used;
    }
    if (off == len) return;
    msgpack_sbuffer_write(&c->sb, data + off, len - off);
    herd_conn_end(c);
}

static int count_write(void *data, const char *buf, size_t len)
{
    *(size_t *)data += len;
    return 0;
}

size_t herd_wire_size(const herd_value *v)
{
    size_t n = 0;
    msgpack_packer pk;
    msgpack_packer_init(&pk, &n, count_write);
    return herd_value_pack(&pk, v) ? SIZE_MAX : n;
}

static void fail(herd_conn *c, const char *why)
{
    herd_conn_close_fn cb = c->on_close;
    c->on_close = NULL;
    c->on_msg = NULL;
    if (c->bev) bufferevent_disable(c->bev, EV_READ);
    if (cb) cb(c, why, c->ud);
}

/* The first bytes are a TLS record (handshake or alert, version 3.x) rather
 * than a frame header: the peer speaks TLS and this side does not. */
static int tls_record(struct evbuffer *in)
{
    unsigned char h[3];
    if (evbuffer_copyout(in, h, 3) != 3) return 0;
    return (h[0] == 0x15 || h[0] == 0x16) && h[1] == 0x03 && h[2] <= 0x04;
}

static void read_cb(struct bufferevent *bev, void *arg)
{
    herd_conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    c->in_cb++;
    while (!c->dead && c->on_msg) {
        size_t avail = evbuffer_get_length(in);
        if (c->raw_on) {            /* raw bytes outside frames: straight to the caller's buffer */
            if (!c->raw_dst) break; /* herd_conn_raw_input: the caller reads them itself */
            size_t n = avail < c->raw_left ? avail : c->raw_left;
            if (n) {
                evbuffer_remove(in, c->raw_dst, n);
                c->raw_dst += n;
                c->raw_left -= n;
            }
            if (c->raw_left) break;
            c->raw_on = 0;
            herd_conn_fn done = c->raw_done;
            c->raw_done = NULL;
            if (done) done(c, c->ud);
            continue;
        }
        if (avail < 4) break;
        uint32_t be;
        evbuffer_copyout(in, &be, 4);
        uint32_t len = ntohl(be);
        if (!c->got_frame && tls_record(in)) {
            fail(c, c->dialed ? "TLS: the scheduler speaks TLS: use tls:// and certificates"
                              : "the peer speaks TLS but this side listens on tcp:// (dial tcp://, or "
                                "give the scheduler certificates)");
            break;
        }
        if (len == 0 || len > c->max_frame) {
            char why[128];
            snprintf(why, sizeof why, "protocol error: frame length %u (expected 1..%zu%s)", len, c->max_frame,
                     c->max_frame < HERD_MAX_FRAME ? " before hello" : "");
            fail(c, why);
            break;
        }
        if (avail < 4 + (size_t)len) break;
        c->got_frame = 1;
        const char *data = (const char *)evbuffer_pullup(in, 4 + (ssize_t)len) + 4;
        msgpack_unpacked up;
        msgpack_unpacked_init(&up);
        herd_err e;        /* set by herd_proto_op when it fails */
        size_t off = 0;
        const char *why = NULL;
        char whybuf[sizeof e.msg + 32];
        while (off < len && !c->dead && c->on_msg && !c->raw_on) {
            /* msgpack-c allocates a container's declared size before reading
             * it: validate untrusted bytes first */
            if (herd_msgpack_check(data + off, len - off, NULL, NULL)) {
                why = "protocol error: malformed msgpack in frame";
                break;
            }
            msgpack_unpack_return r = msgpack_unpack_next(&up, data, len, &off);
            if (r != MSGPACK_UNPACK_SUCCESS && r != MSGPACK_UNPACK_EXTRA_BYTES) {
                why = "protocol error: malformed msgpack in frame";
                break;
            }
            const msgpack_object *m = &up.data;
            if (herd_proto_op(m, &e) < 0) {
                snprintf(whybuf, sizeof whybuf, "protocol error: %s", e.msg);
                why = whybuf;
                break;
            }
            c->on_msg(c, m, c->ud);
        }
        msgpack_unpacked_destroy(&up);
        if (why) { fail(c, why); break; }
        evbuffer_drain(in, 4 + (size_t)len);
    }
    c->in_cb--;
    if (c->dead && !c->in_cb) destroy(c);
}

static void write_cb(struct bufferevent *bev, void *arg)
{
    herd_conn *c = arg;
    size_t queued = evbuffer_get_length(bufferevent_get_output(bev));
    if (c->closing && queued == 0) {
        if (c->in_cb) c->dead = 1; else destroy(c);
        return;
    }
    if (c->over_cap && !c->closing && queued <= c->max_queued) {
        c->over_cap = 0;
        bufferevent_set_timeouts(bev, NULL, NULL);
        bufferevent_setwatermark(bev, EV_WRITE, c->drain_low, 0);
    }
    if (c->drain_fn && !c->closing && !c->dead && queued <= c->drain_low) {
        c->in_cb++;
        c->drain_fn(c, c->ud);
        c->in_cb--;
        if (c->dead && !c->in_cb) destroy(c);
    }
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
    herd_conn *c = arg;
    if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))) return;
    if (c->closing) { if (c->in_cb) c->dead = 1; else destroy(c); return; }
    char why[1024], tr[900];
    if (herd_tls_error(bev, what, tr, sizeof tr)) {
        snprintf(why, sizeof why, "TLS: %s", tr);
        c->plain_peer = !c->dialed && strncmp(tr, HERD_TLS_NOT_TLS, strlen(HERD_TLS_NOT_TLS)) == 0;
    }
    else if ((what & BEV_EVENT_TIMEOUT) && c->over_cap)
        snprintf(why, sizeof why, "the peer does not read what is sent to it: %zu bytes queued (the cap is %zu) "
                 "and none taken for %ds", evbuffer_get_length(bufferevent_get_output(bev)), c->max_queued,
                 HERD_WRITE_STALL_S);
    else if (what & BEV_EVENT_EOF) snprintf(why, sizeof why, "connection closed by peer");
    else if (what & BEV_EVENT_TIMEOUT) snprintf(why, sizeof why, "connection timed out");
    else snprintf(why, sizeof why, "connection error: %s",
                  evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
    c->in_cb++;
    fail(c, why);
    c->in_cb--;
    if (c->dead && !c->in_cb) destroy(c);
}

void herd_conn_fail(herd_conn *c, const char *why)
{
    c->in_cb++;
    fail(c, why);
    c->in_cb--;
    if (c->dead && !c->in_cb) destroy(c);
}

void herd_conn_close_after_flush(herd_conn *c)
{
    /* a TLS handshake that has not finished can send nothing: close now */
    if (!herd_conn_handshaking(c)) write_frame(c);
    c->on_msg = NULL;
    c->on_close = NULL;
    c->closing = 1;
    bufferevent_disable(c->bev, EV_READ);
    if (herd_conn_handshaking(c) || evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
        if (c->in_cb) c->dead = 1; else destroy(c);
        return;
    }
    /* a peer that does not read cannot hold the socket open: event_cb
     * closes it when the write times out */
    struct timeval tv = { HERD_WRITE_STALL_S, 0 };
    bufferevent_set_timeouts(c->bev, NULL, &tv);
}

void herd_conn_set_limits(herd_conn *c, size_t max_frame, size_t max_queued)
{
    c->max_frame = max_frame && max_frame < HERD_MAX_FRAME ? max_frame : HERD_MAX_FRAME;
    c->max_queued = max_queued ? max_queued : HERD_MAX_QUEUED;
    /* buffered input stops at one whole frame (libevent stops reading there) */
    if (c->bev) bufferevent_setwatermark(c->bev, EV_READ, 0, 4 + c->max_frame);
}

void herd_conn_read_raw(herd_conn *c, char *dst, size_t n, herd_conn_fn done)
{
    c->raw_on = 1;
    c->raw_dst = dst;
    c->raw_left = n;
    c->raw_done = done;
}

struct evbuffer *herd_conn_raw_input(herd_conn *c)
{
    if (!c->bev) return NULL;
    c->raw_on = 1;
    c->raw_dst = NULL;
    c->raw_left = 0;
    c->raw_done = NULL;
    bufferevent_disable(c->bev, EV_READ);
    return bufferevent_get_input(c->bev);
}

int herd_conn_add_ref(herd_conn *c, const void *data, size_t len, herd_conn_ref_cleanup cleanup, void *arg)
{
    write_frame(c);              /* messages queued before go first */
    if (!c->bev) return -EPIPE;
    return evbuffer_add_reference(bufferevent_get_output(c->bev), data, len, cleanup, arg) ? -ENOMEM : 0;
}

void herd_conn_on_drain(herd_conn *c, size_t low, herd_conn_fn fn)
{
    c->drain_fn = fn;
    c->drain_low = fn ? low : 0;
    if (c->bev && !c->over_cap) bufferevent_setwatermark(c->bev, EV_WRITE, c->drain_low, 0);
}

void herd_conn_set_timeouts(herd_conn *c, double read_s, double write_s)
{
    if (!c->bev) return;
    struct timeval r = { (time_t)read_s, (suseconds_t)((read_s - (time_t)read_s) * 1e6) },
                   w = { (time_t)write_s, (suseconds_t)((write_s - (time_t)write_s) * 1e6) };
    bufferevent_set_timeouts(c->bev, read_s > 0 ? &r : NULL, write_s > 0 ? &w : NULL);
}

void herd_conn_set_max_io(herd_conn *c, size_t n)
{
    if (!c->bev) return;
    bufferevent_set_max_single_read(c->bev, n);
    bufferevent_set_max_single_write(c->bev, n);
}

int herd_conn_handshaking(const herd_conn *c)
{
    return c && c->bev && herd_tls_handshaking(c->bev);
}

#define TCP_TIMEOUT_S 30

herd_conn *herd_conn_new(struct bufferevent *bev, const char *peer,
                         herd_conn_msg_fn on_msg, herd_conn_close_fn on_close, void *ud)
{
    herd_conn *c = calloc(1, sizeof *c);
    if (!c) { bufferevent_free(bev); return NULL; }
    c->bev = bev;
    c->on_msg = on_msg;
    c->on_close = on_close;
    c->ud = ud;
    snprintf(c->peer, sizeof c->peer, "%s", peer ? peer : "?");
    msgpack_sbuffer_init(&c->sb);
    msgpack_packer_init(&c->pk, &c->sb, msgpack_sbuffer_write);
    c->flush_ev = event_new(bufferevent_get_base(bev), -1, 0, flush_cb, c);
    if (!c->flush_ev) { destroy(c); return NULL; }
    herd_conn_set_limits(c, HERD_MAX_FRAME, HERD_MAX_QUEUED);
    evutil_socket_t fd = bufferevent_getfd(bev);
    if (fd >= 0) {                     /* each fails harmlessly on a Unix socket */
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        /* a peer that vanishes (host down, network gone: no FIN, no RST) ends
         * the connection within TCP_TIMEOUT_S, as Dask's comm.timeouts.tcp:
         * keepalive probes on an idle connection, TCP_USER_TIMEOUT on one
         * with unacknowledged data; 10 probes, 10 s idle then every 2 s */
        int idle = TCP_TIMEOUT_S - 10 * 2, intvl = 2, cnt = 10, ms = TCP_TIMEOUT_S * 1000;
        setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
        setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, sizeof ms);
    }
    bufferevent_setcb(bev, read_cb, write_cb, event_cb, c);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    return c;
}

const char *herd_conn_peer(const herd_conn *c) { return c->peer; }
int herd_conn_fd(const herd_conn *c) { return c->bev ? (int)bufferevent_getfd(c->bev) : -1; }

int herd_conn_local_ip(const herd_conn *c, char *buf, size_t cap)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    evutil_socket_t fd = c && c->bev ? bufferevent_getfd(c->bev) : -1;
    if (fd < 0 || getsockname(fd, (struct sockaddr *)&ss, &len)) return -EBADF;
    const void *a = ss.ss_family == AF_INET ? (const void *)&((struct sockaddr_in *)&ss)->sin_addr
                  : ss.ss_family == AF_INET6 ? (const void *)&((struct sockaddr_in6 *)&ss)->sin6_addr : NULL;
    if (!a || !inet_ntop(ss.ss_family, a, buf, (socklen_t)cap)) return -EAFNOSUPPORT;
    return 0;
}

herd_conn *herd_conn_dial(struct event_base *base, const char *address, herd_tls *tls, double timeout_s,
                          herd_conn_msg_fn on_msg, herd_conn_close_fn on_close, void *ud, herd_err *err)
{
    return herd_conn_dial_log(base, address, tls, timeout_s, NULL, NULL, on_msg, on_close, ud, err);
}

herd_conn *herd_conn_dial_log(struct event_base *base, const char *address, herd_tls *tls, double timeout_s,
                              void (*log)(void *ud, int level, const char *line), void *log_ud,
                              herd_conn_msg_fn on_msg, herd_conn_close_fn on_close, void *ud, herd_err *err)
{
    herd_addr a;
    int fd = -1;
    if (herd_tls_addr_check(tls, address, err) || herd_addr_parse(address, &a, err) ||
        herd_dial_log(address, timeout_s > 0 ? timeout_s : 30, log, log_ud, &fd, err))
        return NULL;
    struct bufferevent *bev = tls ? herd_tls_connect(tls, base, fd, a.host, err)   /* closes fd on failure */
                                  : bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!bev) {
        if (!tls) { close(fd); herd_err_set(err, -ENOMEM, "out of memory"); }
        return NULL;
    }
    herd_conn *c = herd_conn_new(bev, address, on_msg, on_close, ud);
    if (!c) herd_err_set(err, -ENOMEM, "out of memory");
    else c->dialed = 1;
    return c;
}

/* ---- outbox ---- */
static void outbox_cb(evutil_socket_t fd, short what, void *arg)
{
    herd_outbox *o = arg;
    pthread_mutex_lock(o->mu);
    o->signalled = 0;
    if (*o->conn && o->sb.size) herd_conn_append(*o->conn, o->sb.data, o->sb.size);
    msgpack_sbuffer_clear(&o->sb);
    pthread_mutex_unlock(o->mu);
}

int herd_outbox_init(herd_outbox *o, struct event_base *base, pthread_mutex_t *mu, herd_conn **conn)
{
    memset(o, 0, sizeof *o);
    o->mu = mu;
    o->conn = conn;
    msgpack_sbuffer_init(&o->sb);
    return (o->ev = event_new(base, -1, 0, outbox_cb, o)) ? 0 : -ENOMEM;
}

void herd_outbox_wake(herd_outbox *o)
{
    if (!o->signalled && o->ev) {
        o->signalled = 1;
        event_active(o->ev, EV_TIMEOUT, 0);
    }
}

void herd_outbox_send_unlock(herd_outbox *o)
{
    herd_outbox_wake(o);
    pthread_mutex_unlock(o->mu);
}

void herd_outbox_destroy(herd_outbox *o)
{
    if (o->ev) event_free(o->ev);
    o->ev = NULL;
    msgpack_sbuffer_destroy(&o->sb);
}
