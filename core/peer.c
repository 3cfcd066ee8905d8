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
#include "shm.h"
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
 * message, pointing into *buf) for the caller to free. With fds, the
 * descriptors that came with the frame go there (*nfds of them, the
 * caller's to close); without, the frame must come without any. */
static int read_msg_fds(int fd, char **buf, msgpack_unpacked *up, int *fds, int *nfds, herd_err *err)
{
    unsigned char hdr[4];
    *buf = NULL;
    int rc, n = 0;
    if (fds) {
        if ((rc = herd_shm_recv(fd, hdr, 4, fds, HERD_SHM_MAX_FDS, &n, err))) return rc;
        *nfds = n;
    } else if ((rc = read_full(fd, hdr, 4)))
        return herd_err_set(err, rc, "connection closed (%s)", strerror(-rc));
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

static int read_msg(int fd, char **buf, msgpack_unpacked *up, herd_err *err)
{
    return read_msg_fds(fd, buf, up, NULL, NULL, err);
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

/* The descriptors one answer hands over (shm.c): bytes payloads of
 * HERD_SHM_MIN or more, each sent once; those not already in a sealed memfd
 * are copied into a new one (closed after sending). */
typedef struct fdset { int fds[HERD_SHM_MAX_FDS], own[HERD_SHM_MAX_FDS]; const void *ptr[HERD_SHM_MAX_FDS]; int n; } fdset;

static int fdref(void *ud, const herd_value *bytes)
{
    fdset *fs = ud;
    size_t len;
    const void *p = herd_as_bytes(bytes, &len);
    if (len < HERD_SHM_MIN) return -1;
    for (int i = 0; i < fs->n; i++)
        if (fs->ptr[i] == p) return i;
    if (fs->n == HERD_SHM_MAX_FDS) return -1;            /* the rest travel as bytes */
    int fd = herd_bytes_memfd(bytes), own = 0;
    if (fd < 0) {
        if (herd_shm_copy(p, len, &fd)) return -1;
        own = 1;
    }
    fs->fds[fs->n] = fd;
    fs->own[fs->n] = own;
    fs->ptr[fs->n] = p;
    return fs->n++;
}

/* Answer one GET: DATA, then the bytes. A value held as is is packed into
 * a vectored buffer whose big pieces (str and bytes payloads) point into the
 * value itself, so they go to the socket without a copy; the blob reference
 * keeps the value alive meanwhile. Bytes payloads of HERD_SHM_MIN or more go
 * as sealed memfds attached to DATA's first byte instead (the packed bytes
 * then hold a reference to each, ext type 2): the peer maps the pages. */
static int serve_get(herd_peer_server *ps, int fd, uint64_t key)
{
    herd_blob *b = herd_store_get(ps->st, key);
    msgpack_vrefbuffer vb;
    int have_vb = 0, rc = 0;
    size_t len = b ? b->len : 0;
    fdset *fs = NULL;
    if (b && b->value) {
        msgpack_packer pk;
        if (!(fs = malloc(sizeof *fs)) || !msgpack_vrefbuffer_init(&vb, 64 * 1024, 64 * 1024)) rc = -ENOMEM;
        else {
            have_vb = 1;
            fs->n = 0;
            msgpack_packer_init(&pk, &vb, msgpack_vrefbuffer_write);
            rc = herd_value_pack_fds(&pk, b->value, fdref, fs);   /* encodability checked when stored */
        }
        len = 0;
        for (size_t i = 0; !rc && i < msgpack_vrefbuffer_veclen(&vb); i++) len += msgpack_vrefbuffer_vec(&vb)[i].iov_len;
    }
    if (rc) {
        plog(ps, HERD_LOG_ERROR, "cannot send value %llu: %s", (unsigned long long)key, herd_strerror(rc));
        if (have_vb) msgpack_vrefbuffer_destroy(&vb);
        for (int i = 0; fs && i < fs->n; i++)
            if (fs->own[i]) close(fs->fds[i]);
        free(fs);
        herd_blob_unref(b);
        return rc;
    }
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    herd_msg_data d = { key, b ? (int64_t)len : -1 };
    rc = herd_proto_pack_data(&sb, &d);
    if (!rc && fs && fs->n) {             /* the descriptors ride on the frame's first byte */
        unsigned char hdr[4] = { (unsigned char)(sb.size >> 24), (unsigned char)(sb.size >> 16),
                                 (unsigned char)(sb.size >> 8), (unsigned char)sb.size };
        rc = herd_shm_send(fd, hdr, 4, fs->fds, fs->n);
        if (!rc) rc = write_full(fd, sb.data, sb.size);
    } else if (!rc)
        rc = send_frame(fd, &sb);
    for (int i = 0; fs && i < fs->n; i++)
        if (fs->own[i]) close(fs->fds[i]);
    free(fs);
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
/* The descriptors that came with DATA, and which payload maps each gave. */
typedef struct rfds { int fds[HERD_SHM_MAX_FDS]; int n, used; herd_value *val[HERD_SHM_MAX_FDS]; } rfds;

/* A payload sent as descriptor idx: checked and mapped read-only (shm.c);
 * a payload referenced twice shares its map. */
static herd_value *fd_value(void *ud, uint32_t idx, uint64_t len, herd_err *err)
{
    rfds *rf = ud;
    if (idx >= (uint32_t)rf->n) {
        herd_err_set(err, -HERD_EPROTO, "payload refers to descriptor %u, %d came", idx, rf->n);
        return NULL;
    }
    if (len < HERD_SHM_MIN || len > SIZE_MAX / 2) {
        herd_err_set(err, -HERD_EPROTO, "payload of %llu bytes sent as a descriptor, expected %zu or more",
                     (unsigned long long)len, HERD_SHM_MIN);
        return NULL;
    }
    if (rf->val[idx]) {                   /* still alive: the decoded value holds it */
        herd_value *c = herd_len(rf->val[idx]) == len ? herd_value_copy(rf->val[idx]) : NULL;
        if (!c) herd_err_set(err, -HERD_EPROTO, "descriptor %u referred to with another length", idx);
        return c;
    }
    void *p;
    if (herd_shm_map(rf->fds[idx], (size_t)len, &p, err)) return NULL;
    if (!(rf->val[idx] = herd_bytes_mapped(p, (size_t)len))) herd_err_set(err, -ENOMEM, "out of memory");
    else rf->used++;
    return rf->val[idx];
}

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
    rfds rf = { .n = 0 };
    int op = read_msg_fds(fd, &buf, &up, rf.fds, &rf.n, &e);
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
        else if ((rc = herd_value_decode_fds(data, (size_t)d.nbytes, rf.n ? fd_value : NULL, &rf, out, &e)))
            rc = herd_err_set(err, rc, "peer %s: the value does not decode: %s", address, e.msg);
    }
    if (!rc && rf.used != rf.n) {
        rc = herd_err_set(err, -HERD_EPROTO, "peer %s sent %d descriptors, the value uses %d", address, rf.n, rf.used);
        herd_value_free(*out);
        *out = NULL;
    }
    for (int i = 0; i < rf.n; i++) close(rf.fds[i]);
    if (rc && rf.n) herd_log_default(NULL, HERD_LOG_WARN, err ? err->msg : "a peer's descriptors refused");
    free(data);
    msgpack_unpacked_destroy(&up);
    free(buf);
    close(fd);
    return rc;
}
