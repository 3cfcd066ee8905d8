/* core/peer.c — worker-to-worker transfer (peer.h). The server is an event
 * loop on its own thread, on comm.c's framed connections (pre-auth limits,
 * TLS by security.c): a connection's first message must be a HELLO with role
 * ROLE_PEER and the cluster's token within 10 s (else REFUSE, a log line, and
 * that connection closes); then each GET is answered with DATA [key, nbytes]
 * alone in its frame and the value's nbytes packed bytes, raw, after it, so
 * a value of any size moves without a frame limit. Many connections are
 * served at once; one connection's GETs are answered in order. A value is
 * streamed from the held value itself: packed into a vectored buffer whose big
 * pieces point into it, added to the output by reference in pieces of at most
 * PIECE bytes while less than QUEUED is queued (send_value and pump). A
 * malformed or unexpected message closes that one connection with a log line.
 * A peer of this host asks with GETFD instead: its bytes payloads of 1 MiB or
 * more that already live in a sealed memfd are not sent but handed over as
 * those memfds (shm.c), attached to the value's first raw byte, which
 * send_fds writes straight to the socket once nothing else is queued (a
 * bufferevent cannot carry descriptors); its other payloads stream as bytes,
 * over 4 MiB socket buffers. The fetch side is a blocking call with a private
 * event loop (an executor thread, or a thread reading a future) until DATA;
 * on a plain socket the value is then read as it arrives (fetch_read.c); for
 * unix:// peers plain blocking reads throughout (recvmsg, so the descriptors
 * are taken: peer_local.c); the budget bounds what a process fetches at once. */
#include "peer.h"
#include "peer_local.h"
#include "comm.h"
#include "fetch_read.h"
#include "proto.h"
#include "shm.h"
#include "value_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include <event2/buffer.h>
#include <event2/thread.h>

enum { MAX_CONNS = 256, MAX_QUEUED_GETS = 64 };
#define CTL_FRAME HERD_PEER_CTL_FRAME
#define PIECE ((size_t)1 << 20)       /* bytes added to a connection's output at once */
#define QUEUED ((size_t)8 << 20)      /* at most this much of a value queued per connection */
#define IO_MAX ((size_t)4 << 20)      /* bytes per read or write call */
#define HELLO_WITHIN 10               /* seconds a connection may stay without its HELLO */
#define CONNECT_S HERD_PEER_CONNECT_S
#define STALL_S 60.0                  /* seconds a peer may take none of a value sent to it */

typedef struct xfer xfer;
typedef struct pconn pconn;

struct herd_peer_server {
    struct event_base *base;
    struct evconnlistener *lis;
    struct event *stop_ev;     /* made active by stop: ends the loop, even one not yet running */
    herd_accept_guard guard;
    pthread_t thread;
    char address[300], path[108];
    const char *token, *name;
    herd_tls *tls;
    herd_store *st;
    pconn *conns;
    int nconns;
    _Atomic uint64_t values, bytes, fds;     /* herd_peer_counts */
};

/* One value on its way out: the pieces still to add, and a count of those
 * added but not yet sent (+1 while the sender still adds), so the value
 * outlives every reference the output holds to it. */
/* The descriptors one answer hands over (shm.c): bytes payloads of
 * HERD_SHM_MIN or more that already live in a sealed memfd, each sent once
 * (borrowed from the value, which the xfer keeps alive). Other payloads are
 * streamed: the fetcher reads them straight into buffers of its own. */
typedef struct fdset { int fds[HERD_SHM_MAX_FDS]; const void *ptr[HERD_SHM_MAX_FDS]; int n; } fdset;

struct xfer {
    fdset *fs;                 /* descriptors still to send with the first raw byte, or NULL */
    herd_blob *b;
    msgpack_vrefbuffer vb;
    int have_vb;
    struct iovec one;
    const struct iovec *vec;
    size_t nvec, i, off;
    int refs;
};

struct pconn {
    herd_peer_server *ps;
    herd_conn *c;
    struct event *hello_timer;
    int authed;
    xfer *x;
    uint64_t gets[MAX_QUEUED_GETS];
    unsigned char getfd[MAX_QUEUED_GETS];   /* that GET was a GETFD */
    int ngets;
    pconn *prev, *next;
};

static void plog(const herd_peer_server *ps, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void plog(const herd_peer_server *ps, int level, const char *fmt, ...)
{
    char line[1400], full[1600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    snprintf(full, sizeof full, "worker %s: peer server: %s", ps->name, line);
    herd_log_default(NULL, level, full);
}

/* ---- one value out ---- */
static void xfer_unref(xfer *x)
{
    if (--x->refs) return;
    free(x->fs);
    if (x->have_vb) msgpack_vrefbuffer_destroy(&x->vb);
    herd_blob_unref(x->b);
    free(x);
}

static void piece_sent(const void *data, size_t len, void *arg) { xfer_unref(arg); }

static void send_value(pconn *pc, uint64_t key, int fds);

/* Add pieces of the value being sent while less than QUEUED is queued; when
 * all are added, go on with the next GET. Runs again as the output drains. */
static void pump(herd_conn *c, void *ud)
{
    pconn *pc = ud;
    while (pc->x && herd_conn_queued(c) < QUEUED) {
        xfer *x = pc->x;
        if (x->i == x->nvec) {
            pc->x = NULL;
            herd_conn_on_drain(c, 0, NULL);
            xfer_unref(x);
            if (pc->ngets) {
                uint64_t k = pc->gets[0];
                int fds = pc->getfd[0];
                memmove(pc->gets, pc->gets + 1, (size_t)--pc->ngets * sizeof *pc->gets);
                memmove(pc->getfd, pc->getfd + 1, (size_t)pc->ngets);
                send_value(pc, k, fds);
            }
            return;
        }
        const struct iovec *v = &x->vec[x->i];
        size_t n = v->iov_len - x->off < PIECE ? v->iov_len - x->off : PIECE;
        if (n) {
            x->refs++;
            if (herd_conn_add_ref(c, (const char *)v->iov_base + x->off, n, piece_sent, x)) {
                x->refs--;
                herd_conn_fail(c, "out of memory queueing a value");
                return;
            }
        }
        if ((x->off += n) == v->iov_len) { x->i++; x->off = 0; }
    }
}

static int fdref(void *ud, const herd_value *bytes)
{
    fdset *fs = ud;
    size_t len;
    const void *p = herd_as_bytes(bytes, &len);
    if (len < HERD_SHM_MIN) return -1;
    for (int i = 0; i < fs->n; i++)
        if (fs->ptr[i] == p) return i;
    if (fs->n == HERD_SHM_MAX_FDS) return -1;            /* the rest travel as bytes */
    int fd = herd_bytes_memfd(bytes);
    if (fd < 0) return -1;                               /* not in a sealed memfd: streamed */
    fs->fds[fs->n] = fd;
    fs->ptr[fs->n] = p;
    return fs->n++;
}

/* Nothing queued any more: the value's first raw byte goes straight to the
 * socket with the descriptors attached (SCM_RIGHTS cannot pass through a
 * bufferevent), then the rest as usual. A reader that takes nothing for
 * IO_WAIT_MS fails its connection. */
#define IO_WAIT_MS 10000
static void send_fds(herd_conn *c, void *ud)
{
    pconn *pc = ud;
    xfer *x = pc->x;
    if (!x || !x->fs) return;
    int fd = herd_conn_fd(c), rc;
    const struct iovec *v = &x->vec[0];
    for (;;) {
        rc = herd_shm_send(fd, v->iov_base, 1, x->fs->fds, x->fs->n);
        if (rc != -EAGAIN && rc != -EWOULDBLOCK) break;
        struct pollfd pf = { fd, POLLOUT, 0 };
        if (poll(&pf, 1, IO_WAIT_MS) <= 0) break;
    }
    free(x->fs);
    x->fs = NULL;
    if (rc) {
        plog(pc->ps, HERD_LOG_WARN, "cannot hand a value's descriptors to %s: %s", herd_conn_peer(c), strerror(-rc));
        herd_conn_on_drain(c, 0, NULL);
        herd_conn_fail(c, "cannot send descriptors");
        return;
    }
    if (++x->off == v->iov_len) { x->i++; x->off = 0; }
    herd_conn_on_drain(c, QUEUED / 2, pump);
    pump(c, pc);
}

/* Answer one GET: DATA [key, nbytes] (-1: not held), then the bytes. A value
 * held as is is packed into a vectored buffer whose big pieces (str and bytes
 * payloads) point into the value itself; the blob reference keeps it alive
 * until the last piece has left. The one place a value leaves a worker. */
static void send_value(pconn *pc, uint64_t key, int fds)
{
    herd_peer_server *ps = pc->ps;
    herd_blob *b = herd_store_get(ps->st, key);
    xfer *x = b ? calloc(1, sizeof *x) : NULL;
    int rc = b && !x ? -ENOMEM : 0;
    size_t len = 0;
    if (x) {
        x->b = b;
        x->refs = 1;
        if (b->value) {
            msgpack_packer pk;
            if (!msgpack_vrefbuffer_init(&x->vb, 64 * 1024, 64 * 1024)) rc = -ENOMEM;
            else {
                x->have_vb = 1;
                msgpack_packer_init(&pk, &x->vb, msgpack_vrefbuffer_write);
                if (!fds || !ps->path[0])
                    rc = herd_value_pack(&pk, b->value);     /* encodability checked when stored: no memory */
                else if (!(x->fs = calloc(1, sizeof *x->fs)))
                    rc = -ENOMEM;
                else {                                       /* a peer of this host: big payloads by memfd */
                    rc = herd_value_pack_fds(&pk, b->value, fdref, x->fs);
                    if (!x->fs->n) { free(x->fs); x->fs = NULL; }
                }
                x->vec = msgpack_vrefbuffer_vec(&x->vb);
                x->nvec = msgpack_vrefbuffer_veclen(&x->vb);
            }
        } else {
            x->one = (struct iovec){ b->data, b->len };
            x->vec = &x->one;
            x->nvec = 1;
        }
        for (size_t i = 0; !rc && i < x->nvec; i++) len += x->vec[i].iov_len;
    }
    if (rc) {
        plog(ps, HERD_LOG_ERROR, "cannot send value %llu to %s: %s", (unsigned long long)key, herd_conn_peer(pc->c),
             herd_strerror(rc));
        if (x) xfer_unref(x); else herd_blob_unref(b);
        herd_conn_fail(pc->c, "cannot send a value");
        return;
    }
    if (x) {
        atomic_fetch_add(&ps->values, 1);
        atomic_fetch_add(&ps->bytes, len);
        if (x->fs) atomic_fetch_add(&ps->fds, (uint64_t)x->fs->n);
    }
    herd_msg_data d = { key, x ? (int64_t)len : -1 };
    herd_proto_pack_data(herd_conn_buf(pc->c), &d);
    herd_conn_end(pc->c);
    if (!x) return;
    herd_conn_flush(pc->c);           /* DATA alone in its frame, the bytes after it */
    pc->x = x;
    if (x->fs) {                      /* the descriptors ride on the first raw byte, sent directly */
        herd_conn_on_drain(pc->c, 0, send_fds);
        if (herd_conn_queued(pc->c) == 0) send_fds(pc->c, pc);
        return;
    }
    herd_conn_on_drain(pc->c, QUEUED / 2, pump);
    pump(pc->c, pc);
}

/* ---- connections ---- */
static void drop(pconn *pc)
{
    herd_peer_server *ps = pc->ps;
    if (pc->prev) pc->prev->next = pc->next; else ps->conns = pc->next;
    if (pc->next) pc->next->prev = pc->prev;
    ps->nconns--;
    if (pc->hello_timer) event_free(pc->hello_timer);
    if (pc->c) herd_conn_free(pc->c);
    if (pc->x) xfer_unref(pc->x);     /* pieces still queued hold their own references */
    free(pc);
}

static void on_close(herd_conn *c, const char *why, void *ud)
{
    pconn *pc = ud;
    if (strcmp(why, "connection closed by peer") != 0 || pc->x)
        plog(pc->ps, HERD_LOG_WARN, "closing the peer connection from %s: %s", herd_conn_peer(c), why);
    drop(pc);
}

static void refuse(pconn *pc, const char *why)
{
    plog(pc->ps, HERD_LOG_WARN, "refused a peer connection from %s: %s", herd_conn_peer(pc->c), why);
    herd_msg_reason m = { herd_pstr_c(why) };
    herd_proto_pack_refuse(herd_conn_buf(pc->c), &m);
    herd_conn_end(pc->c);
    herd_conn_close_after_flush(pc->c);
    pc->c = NULL;
    drop(pc);
}

static int check_hello(herd_peer_server *ps, const msgpack_object *msg, char *why, size_t cap)
{
    herd_msg_hello h;
    herd_err e;
    if (herd_proto_unpack_hello(msg, &h, &e)) { snprintf(why, cap, "%s", e.msg); return -1; }
    herd_value_free(h.resources);
    if (h.role != ROLE_PEER) { snprintf(why, cap, "HELLO: role %d, expected %d (peer)", h.role, ROLE_PEER); return -1; }
    size_t tl = ps->token ? strlen(ps->token) : 0;
    if (h.token.len != tl || (tl && CRYPTO_memcmp(h.token.ptr, ps->token, tl) != 0)) {
        snprintf(why, cap, "wrong or missing token");
        return -1;
    }
    return 0;
}

static void on_msg(herd_conn *c, const msgpack_object *msg, void *ud)
{
    pconn *pc = ud;
    herd_err e;
    int op = herd_proto_op(msg, &e);         /* checked by comm.c */
    char why[1200];
    if (!pc->authed) {
        if (op != OP_HELLO) snprintf(why, sizeof why, "expected HELLO first, got %s", herd_proto_op_name(op));
        if (op != OP_HELLO || check_hello(pc->ps, msg, why, sizeof why)) { refuse(pc, why); return; }
        pc->authed = 1;
        event_free(pc->hello_timer);
        pc->hello_timer = NULL;
        herd_conn_set_limits(c, CTL_FRAME, 0);
        return;
    }
    herd_msg_key k;
    if (op != OP_GET && op != OP_GETFD) {
        snprintf(why, sizeof why, "protocol error: %s is not a message a peer server takes", herd_proto_op_name(op));
        herd_conn_fail(c, why);
    } else if (op == OP_GET ? herd_proto_unpack_get(msg, &k, &e) : herd_proto_unpack_getfd(msg, &k, &e)) {
        snprintf(why, sizeof why, "protocol error: %s", e.msg);
        herd_conn_fail(c, why);
    } else if (pc->x) {
        if (pc->ngets == MAX_QUEUED_GETS) {
            snprintf(why, sizeof why, "more than %d GETs waiting", MAX_QUEUED_GETS);
            herd_conn_fail(c, why);
        } else {
            pc->getfd[pc->ngets] = op == OP_GETFD;
            pc->gets[pc->ngets++] = k.key;
        }
    } else send_value(pc, k.key, op == OP_GETFD);
}

static void hello_late(evutil_socket_t fd, short what, void *arg)
{
    pconn *pc = arg;
    char why[64];
    snprintf(why, sizeof why, "no HELLO within %ds", HELLO_WITHIN);
    plog(pc->ps, HERD_LOG_WARN, "refused a peer connection from %s: %s", herd_conn_peer(pc->c), why);
    drop(pc);
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
    herd_peer_server *ps = arg;
    char peer[96] = "a local peer";
    if (sa && (sa->sa_family == AF_INET || sa->sa_family == AF_INET6)) {
        char ip[64] = "?";
        const void *a = sa->sa_family == AF_INET ? (const void *)&((struct sockaddr_in *)sa)->sin_addr
                                                  : (const void *)&((struct sockaddr_in6 *)sa)->sin6_addr;
        int port = ntohs(sa->sa_family == AF_INET ? ((struct sockaddr_in *)sa)->sin_port
                                                  : ((struct sockaddr_in6 *)sa)->sin6_port);
        inet_ntop(sa->sa_family, a, ip, sizeof ip);
        snprintf(peer, sizeof peer, "%s:%d", ip, port);
    }
    if (ps->nconns >= MAX_CONNS) {
        plog(ps, HERD_LOG_WARN, "refused a peer connection from %s: %d already open", peer, MAX_CONNS);
        close(fd);
        return;
    }
    if (ps->path[0]) herd_peer_sock_bufs(fd);       /* a peer of this host: values stream at memory speed */
    herd_err e;
    struct bufferevent *bev = ps->tls ? herd_tls_accept(ps->tls, ps->base, fd, &e)
                                      : bufferevent_socket_new(ps->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!bev) {
        if (!ps->tls) close(fd);
        plog(ps, HERD_LOG_WARN, "cannot take a peer connection from %s", peer);
        return;
    }
    pconn *pc = calloc(1, sizeof *pc);
    if (!pc || !(pc->c = herd_conn_new(bev, peer, on_msg, on_close, pc))) {
        if (!pc) bufferevent_free(bev);
        free(pc);
        plog(ps, HERD_LOG_WARN, "cannot take a peer connection from %s: out of memory", peer);
        return;
    }
    pc->ps = ps;
    herd_conn_set_limits(pc->c, HERD_PREAUTH_MAX_FRAME, 0);
    herd_conn_set_max_io(pc->c, IO_MAX);
    herd_conn_set_timeouts(pc->c, 0, STALL_S);      /* a peer that stops reading a value is dropped */
    struct timeval tv = { HELLO_WITHIN, 0 };
    if (!(pc->hello_timer = evtimer_new(ps->base, hello_late, pc)) || evtimer_add(pc->hello_timer, &tv)) {
        herd_conn_free(pc->c);
        if (pc->hello_timer) event_free(pc->hello_timer);
        free(pc);
        return;
    }
    pc->next = ps->conns;
    if (ps->conns) ps->conns->prev = pc;
    ps->conns = pc;
    ps->nconns++;
}

static void accept_err(struct evconnlistener *l, void *arg)
{
    herd_accept_guard_fail(&((herd_peer_server *)arg)->guard);
}

static void guard_log(void *ud, int level, const char *line) { plog(ud, level, "%s", line); }

static void stop_cb(evutil_socket_t fd, short what, void *arg)
{
    event_base_loopbreak(((herd_peer_server *)arg)->base);
}

static void *serve_main(void *arg)
{
    herd_peer_server *ps = arg;
    herd_block_sigpipe();
    event_base_dispatch(ps->base);
    return NULL;
}

static void server_free(herd_peer_server *ps)
{
    while (ps->conns) drop(ps->conns);
    herd_accept_guard_destroy(&ps->guard);
    if (ps->stop_ev) event_free(ps->stop_ev);
    if (ps->lis) evconnlistener_free(ps->lis);
    if (ps->path[0]) unlink(ps->path);
    if (ps->base) herd_event_base_drain_free(ps->base);
    free(ps);
}

int herd_peer_server_start(herd_peer_server **out, const char *listen_addr, const char *token, herd_tls *tls,
                           herd_store *st, const char *name, herd_err *err)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, (void (*)(void))evthread_use_pthreads);
    *out = NULL;
    herd_addr a;
    int rc = herd_addr_parse(listen_addr, &a, err);
    if (rc) return rc;
    if ((rc = herd_tls_addr_check(tls, listen_addr, err))) return herd_err_prefix(err, "peer server");
    herd_peer_server *ps = calloc(1, sizeof *ps);
    if (!ps) return herd_err_set(err, -ENOMEM, "out of memory");
    ps->token = token;
    ps->name = name;
    ps->st = st;
    ps->tls = tls;
    if (!(ps->base = event_base_new())) { free(ps); return herd_err_set(err, -ENOMEM, "out of memory"); }
    if (!(ps->lis = herd_listen(ps->base, listen_addr, accept_cb, ps, ps->address, sizeof ps->address, err))) {
        rc = herd_err_prefix(err, "peer server");
        server_free(ps);
        return rc ? rc : -EIO;
    }
    if (a.is_unix) snprintf(ps->path, sizeof ps->path, "%s", a.path);
    evconnlistener_set_error_cb(ps->lis, accept_err);
    if (herd_accept_guard_init(&ps->guard, ps->lis, guard_log, ps) ||
        !(ps->stop_ev = event_new(ps->base, -1, 0, stop_cb, ps))) {
        server_free(ps);
        return herd_err_set(err, -ENOMEM, "out of memory");
    }
    if ((rc = pthread_create(&ps->thread, NULL, serve_main, ps))) {
        server_free(ps);
        return herd_err_set(err, -rc, "cannot start the peer server thread: %s", strerror(rc));
    }
    *out = ps;
    return 0;
}

void herd_peer_server_stop(herd_peer_server *ps)
{
    if (!ps) return;
    event_active(ps->stop_ev, EV_TIMEOUT, 0);     /* a loopbreak before the loop runs would be forgotten */
    pthread_join(ps->thread, NULL);
    server_free(ps);
}

const char *herd_peer_server_address(const herd_peer_server *ps) { return ps->address; }

void herd_peer_server_counts(const herd_peer_server *ps, herd_peer_counts *out)
{
    out->values = atomic_load(&ps->values);
    out->bytes = atomic_load(&ps->bytes);
    out->fds = atomic_load(&ps->fds);
}

/* ---- fetch ---- */
typedef struct fetch {
    struct event_base *base;
    const char *address;
    const herd_peer_auth *auth;
    uint64_t key;
    char *data;
    size_t n, admitted;
    int rc, done;
    herd_value *v;
    herd_err *err;
    double timeout_s;
    int tls;
    struct evbuffer *in;       /* plain TCP, DATA read: the value's bytes already read */
} fetch;

static void fetch_end(fetch *f, int rc)
{
    if (f->done) return;
    f->done = 1;
    f->rc = rc;
    event_base_loopbreak(f->base);
}

static void fetch_raw_done(herd_conn *c, void *ud)
{
    fetch *f = ud;
    herd_err e;
    int rc = herd_value_decode(f->data, f->n, &f->v, &e);
    if (rc) rc = herd_err_set(f->err, rc, "peer %s: the value does not decode: %s", f->address, e.msg);
    fetch_end(f, rc);
}

static void fetch_msg(herd_conn *c, const msgpack_object *msg, void *ud)
{
    fetch *f = ud;
    herd_err e;
    int op = herd_proto_op(msg, &e), rc = 0;
    if (f->done || f->data || f->in) {
        rc = herd_err_set(f->err, -HERD_EPROTO, "peer %s sent %s out of turn", f->address, herd_proto_op_name(op));
    } else if (op == OP_REFUSE) {
        herd_msg_reason r;
        if (herd_proto_unpack_refuse(msg, &r, &e)) rc = herd_err_set(f->err, -HERD_EPROTO, "peer %s: %s", f->address, e.msg);
        else rc = herd_err_set(f->err, -HERD_EAUTH, "peer %s refused this connection: %.*s", f->address,
                               (int)r.reason.len, r.reason.ptr);
    } else if (op != OP_DATA) {
        rc = herd_err_set(f->err, -HERD_EPROTO, "peer %s answered %s, expected DATA", f->address, herd_proto_op_name(op));
    } else {
        herd_msg_data d;
        if (herd_proto_unpack_data(msg, &d, &e)) rc = herd_err_set(f->err, -HERD_EPROTO, "peer %s: %s", f->address, e.msg);
        else if (d.key != f->key) rc = herd_err_set(f->err, -HERD_EPROTO, "peer %s answered for another key", f->address);
        else if (d.nbytes < 0) rc = herd_err_set(f->err, -ENOENT, "peer %s does not hold the value", f->address);
        else if (d.nbytes == 0) rc = herd_err_set(f->err, -HERD_EPROTO, "peer %s sent an empty value", f->address);
        else if ((uint64_t)d.nbytes > SIZE_MAX / 2)
            rc = herd_err_set(f->err, -ENOMEM, "peer %s: a value of %lld bytes", f->address, (long long)d.nbytes);
        else {
            f->n = (size_t)d.nbytes;
            if (f->auth && f->auth->budget) {
                herd_fetch_budget_acquire(f->auth->budget, f->n);
                f->admitted = f->n;
                herd_conn_set_timeouts(c, f->timeout_s, f->timeout_s);    /* the wait was not the peer's silence */
            }
            if (!f->tls) {            /* plain TCP: read as it comes, once the loop is left (fetch_read.c) */
                f->in = herd_conn_raw_input(c);
                event_base_loopbreak(f->base);
                return;
            }
            if (!(f->data = malloc(f->n)))
                rc = herd_err_set(f->err, -ENOMEM, "peer %s: no memory for a value of %zu bytes", f->address, f->n);
            else {
                herd_conn_set_limits(c, IO_MAX, 0);       /* the read watermark: big reads */
                herd_conn_read_raw(c, f->data, f->n, fetch_raw_done);     /* TLS: through the loop */
                return;
            }
        }
    }
    fetch_end(f, rc);
}

static void fetch_closed(herd_conn *c, const char *why, void *ud)
{
    fetch *f = ud;
    if (f->done) return;
    fetch_end(f, herd_err_set(f->err, -HERD_ECLOSED, "peer %s: %s%s", f->address,
                              f->data ? "the transfer broke off: " : "", why));
}

int herd_peer_fetch(const char *address, const herd_peer_auth *auth, uint64_t key, double timeout_s,
                    herd_value **out, herd_err *err)
{
    *out = NULL;
    herd_addr a;
    int rc = herd_addr_parse(address, &a, err), fd = -1;
    herd_tls *tls = a.is_tls && auth ? auth->tls : NULL;
    if (rc) return rc;
    if (a.is_unix) return herd_peer_fetch_local(address, auth, key, timeout_s > 0 && timeout_s <= 1e6 ? timeout_s : 60, out, err);
    if (a.is_tls && !tls)
        return herd_err_set(err, -HERD_ECONFIG, "peer %s speaks TLS and this side has no TLS credentials", address);
    if (timeout_s <= 0 || timeout_s > 1e6) timeout_s = 60;
    /* a peer that answers does so at once: one that drops the connect (a
     * firewall) is given up on in CONNECT_S, and the reader relays */
    if ((rc = herd_dial_once(address, timeout_s < CONNECT_S ? timeout_s : CONNECT_S, &fd, err)))
        return herd_err_set(err, -HERD_ECLOSED, "cannot reach peer %s: %s", address, strerror(-rc > 0 ? -rc : EIO));
    fetch f = { .address = address, .auth = auth, .key = key, .err = err, .timeout_s = timeout_s, .tls = tls != NULL };
    if (!(f.base = event_base_new())) { close(fd); return herd_err_set(err, -ENOMEM, "out of memory"); }
    struct bufferevent *bev = tls ? herd_tls_connect_peer(tls, f.base, fd, err)
                                  : bufferevent_socket_new(f.base, fd, BEV_OPT_CLOSE_ON_FREE);
    herd_conn *c = NULL;
    if (!bev) {
        if (!tls) { close(fd); herd_err_set(err, -ENOMEM, "out of memory"); }
        rc = -ENOMEM;
    } else if (!(c = herd_conn_new(bev, address, fetch_msg, fetch_closed, &f))) {
        rc = herd_err_set(err, -ENOMEM, "out of memory");
    } else {
        herd_conn_set_limits(c, CTL_FRAME, 0);
        herd_conn_set_max_io(c, IO_MAX);
        herd_conn_set_timeouts(c, timeout_s, timeout_s);
        herd_msg_hello h = { HERD_PROTO_VERSION, ROLE_PEER, herd_pstr_c(auth && auth->token ? auth->token : ""),
                             herd_pstr_c("peer"), 0, NULL, (int64_t)getpid() };
        herd_msg_key g = { key };
        herd_proto_pack_hello(herd_conn_buf(c), &h);
        herd_proto_pack_get(herd_conn_buf(c), &g);
        herd_conn_end(c);
        event_base_dispatch(f.base);
        herd_err e;
        if (!f.done && f.in) {
            if ((rc = herd_fetch_read_value(herd_conn_fd(c), f.in, f.n, 0, auth ? auth->budget : NULL, timeout_s, &f.v,
                                            &e)))
                herd_err_set(err, rc, "peer %s: %s", address, e.msg);
        } else if (!f.done) rc = herd_err_set(err, -HERD_ECLOSED, "peer %s: the transfer ended unfinished", address);
        else rc = f.rc;
    }
    if (c) herd_conn_free(c);
    herd_event_base_drain_free(f.base);
    free(f.data);
    if (f.admitted) herd_fetch_budget_release(auth->budget, f.admitted);
    if (rc) { herd_value_free(f.v); return rc; }
    *out = f.v;
    return 0;
}
