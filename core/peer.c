/* core/peer.c — worker-to-worker transfer (peer.h). The server is one thread
 * polling a Unix listening socket and its connections: a connection's first
 * message must be a HELLO with role ROLE_PEER and the cluster's token (else
 * REFUSE, a log line, and that connection closes); then each GET is answered
 * with DATA and the value's packed bytes, raw, after the frame, so a value of
 * any size moves without a frame limit. A malformed message closes that one
 * connection with a log line. Frames are comm.c's: a 4-byte big-endian length
 * and the message. The fetch side is blocking (an executor thread, or the
 * client thread reading a future). */
#include "peer.h"
#include "comm.h"
#include "proto.h"
#include "value_int.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

enum { MAX_CONNS = 64, MAX_CTL_FRAME = 64 * 1024 };
#define HELLO_WITHIN 10.0      /* seconds a connection may stay without its HELLO */
#define IO_TIMEOUT 60          /* seconds of silence inside one frame or transfer */

typedef struct pconn { int fd, authed; double since; } pconn;

struct herd_peer_server {
    int lfd, stop_pipe[2];
    char path[108], address[120];
    const char *token, *name;
    herd_store *st;
    pthread_t thread;
    pconn conns[MAX_CONNS];
    int nconns;
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

static void set_timeouts(int fd, int secs)
{
    struct timeval tv = { secs, 0 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

static int read_full(int fd, void *buf, size_t n)
{
    char *p = buf;
    while (n) {
        ssize_t r = read(fd, p, n > (1u << 30) ? (1u << 30) : n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return r == 0 ? -ECONNRESET : -errno;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static int write_full(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n) {
        ssize_t r = send(fd, p, n > (1u << 30) ? (1u << 30) : n, MSG_NOSIGNAL);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return r == 0 ? -EPIPE : -errno;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

/* Send what sb holds as one frame. */
static int send_frame(int fd, const msgpack_sbuffer *sb)
{
    unsigned char hdr[4] = { (unsigned char)(sb->size >> 24), (unsigned char)(sb->size >> 16),
                             (unsigned char)(sb->size >> 8), (unsigned char)sb->size };
    int rc = write_full(fd, hdr, 4);
    return rc ? rc : write_full(fd, sb->data, sb->size);
}

/* Read one frame holding exactly one message: *buf (malloc'd) and *up (the
 * message, pointing into *buf) for the caller to free. */
static int read_msg(int fd, char **buf, msgpack_unpacked *up, herd_err *err)
{
    unsigned char hdr[4];
    *buf = NULL;
    int rc = read_full(fd, hdr, 4);
    if (rc) return herd_err_set(err, rc, "connection closed (%s)", strerror(-rc));
    size_t len = (size_t)hdr[0] << 24 | (size_t)hdr[1] << 16 | (size_t)hdr[2] << 8 | hdr[3];
    if (len == 0 || len > MAX_CTL_FRAME)
        return herd_err_set(err, -HERD_EPROTO, "a frame of %zu bytes, expected 1..%d", len, MAX_CTL_FRAME);
    if (!(*buf = malloc(len))) return herd_err_set(err, -ENOMEM, "out of memory");
    if ((rc = read_full(fd, *buf, len))) {
        free(*buf);
        *buf = NULL;
        return herd_err_set(err, rc, "connection closed inside a frame (%s)", strerror(-rc));
    }
    size_t used = 0, off = 0;
    if ((rc = herd_msgpack_check(*buf, len, &used, err)) ||
        (used != len && (rc = herd_err_set(err, -HERD_EPROTO, "%zu bytes after the message", len - used))) ||
        (msgpack_unpack_next(up, *buf, len, &off) != MSGPACK_UNPACK_SUCCESS &&
         (rc = herd_err_set(err, -HERD_EPROTO, "malformed message"))) ||
        (rc = herd_proto_op(&up->data, err)) < 0) {
        free(*buf);
        *buf = NULL;
        return rc < 0 ? rc : -HERD_EPROTO;
    }
    return rc;       /* the opcode */
}

/* ---- server ---- */
static void drop(herd_peer_server *ps, int i)
{
    close(ps->conns[i].fd);
    ps->conns[i] = ps->conns[--ps->nconns];
}

static void refuse(herd_peer_server *ps, int fd, const char *why)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    herd_msg_reason m = { herd_pstr_c(why) };
    if (!herd_proto_pack_refuse(&sb, &m)) send_frame(fd, &sb);
    msgpack_sbuffer_destroy(&sb);
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

/* Answer one GET: DATA, then the bytes. A value held as is is packed into
 * a vectored buffer whose big pieces (str and bytes payloads) point into the
 * value itself, so they go to the socket without a copy; the blob reference
 * keeps the value alive meanwhile. */
static int serve_get(herd_peer_server *ps, int fd, uint64_t key)
{
    herd_blob *b = herd_store_get(ps->st, key);
    msgpack_vrefbuffer vb;
    int have_vb = 0, rc = 0;
    size_t len = b ? b->len : 0;
    if (b && b->value) {
        msgpack_packer pk;
        if (!msgpack_vrefbuffer_init(&vb, 64 * 1024, 64 * 1024)) rc = -ENOMEM;
        else {
            have_vb = 1;
            msgpack_packer_init(&pk, &vb, msgpack_vrefbuffer_write);
            rc = herd_value_pack(&pk, b->value);         /* encodability checked when stored: no memory */
        }
        len = 0;
        for (size_t i = 0; !rc && i < msgpack_vrefbuffer_veclen(&vb); i++) len += msgpack_vrefbuffer_vec(&vb)[i].iov_len;
    }
    if (rc) {
        plog(ps, HERD_LOG_ERROR, "cannot send value %llu: %s", (unsigned long long)key, herd_strerror(rc));
        if (have_vb) msgpack_vrefbuffer_destroy(&vb);
        herd_blob_unref(b);
        return rc;
    }
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    herd_msg_data d = { key, b ? (int64_t)len : -1 };
    rc = herd_proto_pack_data(&sb, &d);
    if (!rc) rc = send_frame(fd, &sb);
    if (!rc && b && !have_vb) rc = write_full(fd, b->data, len);
    for (size_t i = 0; !rc && have_vb && i < msgpack_vrefbuffer_veclen(&vb); i++)
        rc = write_full(fd, msgpack_vrefbuffer_vec(&vb)[i].iov_base, msgpack_vrefbuffer_vec(&vb)[i].iov_len);
    msgpack_sbuffer_destroy(&sb);
    if (have_vb) msgpack_vrefbuffer_destroy(&vb);
    herd_blob_unref(b);
    return rc;
}

/* One message from connection i; 0 to keep it, -1 to close it. */
static int on_readable(herd_peer_server *ps, int i)
{
    pconn *c = &ps->conns[i];
    char *buf;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    herd_err e;
    e.msg[0] = '\0';
    int op = read_msg(c->fd, &buf, &up, &e), keep = -1;
    if (op == -ECONNRESET) {
        /* the peer hung up between requests: normal */
    } else if (op < 0) {
        plog(ps, HERD_LOG_WARN, "closing a peer connection: %s", e.msg);
    } else if (!c->authed) {
        char why[1100];
        if (op != OP_HELLO) snprintf(why, sizeof why, "expected HELLO first, got %s", herd_proto_op_name(op));
        if (op != OP_HELLO || check_hello(ps, &up.data, why, sizeof why)) {
            plog(ps, HERD_LOG_WARN, "refused a peer connection: %s", why);
            refuse(ps, c->fd, why);
        } else {
            c->authed = 1;
            keep = 0;
        }
    } else if (op == OP_GET) {
        herd_msg_key k;
        if (herd_proto_unpack_get(&up.data, &k, &e)) plog(ps, HERD_LOG_WARN, "closing a peer connection: %s", e.msg);
        else if (serve_get(ps, c->fd, k.key) == 0) keep = 0;
    } else {
        plog(ps, HERD_LOG_WARN, "closing a peer connection: %s: not a message a peer server takes",
             herd_proto_op_name(op));
    }
    msgpack_unpacked_destroy(&up);
    free(buf);
    return keep;
}

static void *serve_main(void *arg)
{
    herd_peer_server *ps = arg;
    struct pollfd fds[MAX_CONNS + 2];
    for (;;) {
        fds[0] = (struct pollfd){ .fd = ps->stop_pipe[0], .events = POLLIN };
        fds[1] = (struct pollfd){ .fd = ps->lfd, .events = POLLIN };
        for (int i = 0; i < ps->nconns; i++) fds[2 + i] = (struct pollfd){ .fd = ps->conns[i].fd, .events = POLLIN };
        int n = ps->nconns;
        if (poll(fds, (nfds_t)(2 + n), 1000) < 0 && errno != EINTR) break;
        if (fds[0].revents) break;
        double now = herd_now();
        /* from the last, so dropping one (moved from the end) skips none */
        for (int i = n - 1; i >= 0; i--) {
            if (fds[2 + i].revents) {
                if (on_readable(ps, i)) drop(ps, i);
            } else if (!ps->conns[i].authed && now - ps->conns[i].since > HELLO_WITHIN) {
                plog(ps, HERD_LOG_WARN, "refused a peer connection: no HELLO within %.0fs", HELLO_WITHIN);
                drop(ps, i);
            }
        }
        if (fds[1].revents & POLLIN) {
            int fd = accept4(ps->lfd, NULL, NULL, SOCK_CLOEXEC);
            if (fd < 0) continue;
            if (ps->nconns == MAX_CONNS) {
                plog(ps, HERD_LOG_WARN, "refused a peer connection: %d already open", MAX_CONNS);
                close(fd);
                continue;
            }
            set_timeouts(fd, IO_TIMEOUT);
            ps->conns[ps->nconns++] = (pconn){ fd, 0, now };
        }
    }
    return NULL;
}

int herd_peer_server_start(herd_peer_server **out, const char *path, const char *token, herd_store *st,
                           const char *name, herd_err *err)
{
    *out = NULL;
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof sa.sun_path)
        return herd_err_set(err, -HERD_EARG, "peer socket path \"%s\" is %zu bytes, at most %zu fit", path,
                            strlen(path), sizeof sa.sun_path - 1);
    herd_peer_server *ps = calloc(1, sizeof *ps);
    if (!ps) return herd_err_set(err, -ENOMEM, "out of memory");
    ps->token = token;
    ps->name = name;
    ps->st = st;
    ps->stop_pipe[0] = ps->stop_pipe[1] = -1;
    snprintf(ps->path, sizeof ps->path, "%s", path);
    snprintf(ps->address, sizeof ps->address, "unix://%s", path);
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int rc;
    unlink(path);
    if ((ps->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
        bind(ps->lfd, (struct sockaddr *)&sa, sizeof sa) || chmod(path, 0600) || listen(ps->lfd, 64) ||
        pipe2(ps->stop_pipe, O_CLOEXEC)) {
        rc = herd_err_set(err, -errno, "peer socket %s: %s", path, strerror(errno));
        goto fail;
    }
    if ((rc = pthread_create(&ps->thread, NULL, serve_main, ps))) {
        rc = herd_err_set(err, -rc, "cannot start the peer server thread: %s", strerror(rc));
        goto fail;
    }
    *out = ps;
    return 0;
fail:
    if (ps->lfd >= 0) { close(ps->lfd); unlink(path); }
    if (ps->stop_pipe[0] >= 0) { close(ps->stop_pipe[0]); close(ps->stop_pipe[1]); }
    free(ps);
    return rc;
}

void herd_peer_server_stop(herd_peer_server *ps)
{
    if (!ps) return;
    if (write(ps->stop_pipe[1], "x", 1) < 0) {}
    pthread_join(ps->thread, NULL);
    while (ps->nconns) drop(ps, 0);
    close(ps->lfd);
    unlink(ps->path);
    close(ps->stop_pipe[0]);
    close(ps->stop_pipe[1]);
    free(ps);
}

const char *herd_peer_server_address(const herd_peer_server *ps) { return ps->address; }

/* ---- fetch ---- */
int herd_peer_fetch(const char *address, const char *token, uint64_t key, double timeout_s, herd_value **out,
                    herd_err *err)
{
    *out = NULL;
    herd_addr a;
    int rc = herd_addr_parse(address, &a, err);
    if (rc) return rc;
    if (!a.is_unix) return herd_err_set(err, -HERD_EARG, "peer address %s: only unix:// peers are served", address);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", a.path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return herd_err_set(err, -errno, "peer %s: %s", address, strerror(errno));
    set_timeouts(fd, timeout_s > 0 && timeout_s < 1e6 ? (int)timeout_s + 1 : IO_TIMEOUT);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa)) {
        rc = herd_err_set(err, -errno, "cannot reach peer %s: %s", address, strerror(errno));
        close(fd);
        return rc;
    }
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    herd_msg_hello h = { HERD_PROTO_VERSION, ROLE_PEER, herd_pstr_c(token ? token : ""), herd_pstr_c("peer"), 0, NULL,
                         (int64_t)getpid() };
    herd_msg_key g = { key };
    if ((rc = herd_proto_pack_hello(&sb, &h)) == 0) {
        size_t hl = sb.size;
        unsigned char hdr[4] = { (unsigned char)(hl >> 24), (unsigned char)(hl >> 16), (unsigned char)(hl >> 8),
                                 (unsigned char)hl };
        msgpack_sbuffer gb;
        msgpack_sbuffer_init(&gb);
        if (!(rc = herd_proto_pack_get(&gb, &g)) && !(rc = write_full(fd, hdr, 4)) && !(rc = write_full(fd, sb.data, hl)))
            rc = send_frame(fd, &gb);
        msgpack_sbuffer_destroy(&gb);
    }
    msgpack_sbuffer_destroy(&sb);
    if (rc) { close(fd); return herd_err_set(err, rc, "peer %s: cannot send the request: %s", address, strerror(-rc)); }
    char *buf = NULL, *data = NULL;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    herd_err e;
    e.msg[0] = '\0';
    int op = read_msg(fd, &buf, &up, &e);
    if (op < 0) {
        rc = herd_err_set(err, op, "peer %s: %s", address, e.msg);
    } else if (op == OP_REFUSE) {
        herd_msg_reason r;
        if (herd_proto_unpack_refuse(&up.data, &r, &e)) rc = herd_err_set(err, -HERD_EPROTO, "peer %s: %s", address, e.msg);
        else rc = herd_err_set(err, -HERD_EAUTH, "peer %s refused this connection: %.*s", address, (int)r.reason.len,
                               r.reason.ptr);
    } else if (op != OP_DATA) {
        rc = herd_err_set(err, -HERD_EPROTO, "peer %s answered %s, expected DATA", address, herd_proto_op_name(op));
    } else {
        herd_msg_data d;
        if (herd_proto_unpack_data(&up.data, &d, &e)) rc = herd_err_set(err, -HERD_EPROTO, "peer %s: %s", address, e.msg);
        else if (d.key != key) rc = herd_err_set(err, -HERD_EPROTO, "peer %s answered for another key", address);
        else if (d.nbytes < 0) rc = herd_err_set(err, -ENOENT, "peer %s does not hold the value", address);
        else if ((uint64_t)d.nbytes > SIZE_MAX / 2 || !(data = malloc(d.nbytes ? (size_t)d.nbytes : 1)))
            rc = herd_err_set(err, -ENOMEM, "peer %s: no memory for a value of %lld bytes", address, (long long)d.nbytes);
        else if ((rc = read_full(fd, data, (size_t)d.nbytes)))
            rc = herd_err_set(err, rc, "peer %s: the transfer broke off (%s)", address, strerror(-rc));
        else if ((rc = herd_value_decode(data, (size_t)d.nbytes, out, &e)))
            rc = herd_err_set(err, rc, "peer %s: the value does not decode: %s", address, e.msg);
    }
    free(data);
    msgpack_unpacked_destroy(&up);
    free(buf);
    close(fd);
    return rc;
}
