/* core/peer_local.c — fetching a held value from a peer of this host (a
 * unix:// peer server, peer.c): plain blocking reads with recvmsg, so the
 * memfd descriptors the server attaches to the value's first raw byte are
 * taken, checked and mapped (shm.c) instead of the bytes crossing the socket.
 * GETFD asks for them; herd_peer_fetch calls this for every unix:// address.
 * Payloads not in a sealed memfd come as bytes, read as they arrive
 * (fetch_read.c) over socket buffers of HERD_PEER_SOCKBUF, big ones straight
 * into buffers of their own. */
#include "peer_local.h"
#include "comm.h"
#include "fetch_read.h"
#include "proto.h"
#include "shm.h"
#include "value_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n) {
        ssize_t r = send(fd, p, n, MSG_NOSIGNAL);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return r == 0 ? -EPIPE : -errno;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

/* Queue one framed message from sb into out. */
static void frame(msgpack_sbuffer *out, const msgpack_sbuffer *sb)
{
    unsigned char hdr[4] = { (unsigned char)(sb->size >> 24), (unsigned char)(sb->size >> 16),
                             (unsigned char)(sb->size >> 8), (unsigned char)sb->size };
    msgpack_sbuffer_write(out, (const char *)hdr, 4);
    msgpack_sbuffer_write(out, sb->data, sb->size);
}

int herd_peer_fetch_local(const char *address, const herd_peer_auth *auth, uint64_t key, double timeout_s,
                          herd_value **out, herd_err *err)
{
    int fd = -1, rc;
    if ((rc = herd_dial_once(address, timeout_s < HERD_PEER_CONNECT_S ? timeout_s : HERD_PEER_CONNECT_S, &fd, err)))
        return herd_err_set(err, -HERD_ECLOSED, "cannot reach peer %s: %s", address, strerror(-rc > 0 ? -rc : EIO));
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    herd_peer_sock_bufs(fd);
    struct timeval tv = { (time_t)timeout_s + 1, 0 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    msgpack_sbuffer req, sb;
    msgpack_sbuffer_init(&req);
    msgpack_sbuffer_init(&sb);
    herd_msg_hello h = { HERD_PROTO_VERSION, ROLE_PEER, herd_pstr_c(auth && auth->token ? auth->token : ""),
                         herd_pstr_c("peer"), 0, NULL, (int64_t)getpid() };
    herd_msg_key g = { key };
    herd_proto_pack_hello(&sb, &h);
    frame(&req, &sb);
    sb.size = 0;
    herd_proto_pack_getfd(&sb, &g);
    frame(&req, &sb);
    rc = write_all(fd, req.data, req.size);
    msgpack_sbuffer_destroy(&req);
    msgpack_sbuffer_destroy(&sb);
    if (rc) {
        close(fd);
        return herd_err_set(err, -HERD_ECLOSED, "peer %s: cannot send the request: %s", address, strerror(-rc));
    }
    int nofds[1], nnofds = 0;          /* no descriptor may come with the answer's frame */
    herd_err e;
    e.msg[0] = '\0';
    unsigned char hdr[4];
    char *buf = NULL;
    size_t admitted = 0;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    /* the answer's frame: no descriptor may come with it */
    if ((rc = herd_shm_recv(fd, hdr, 4, nofds, 0, &nnofds, &e))) {
        rc = herd_err_set(err, rc == -HERD_EPROTO ? rc : -HERD_ECLOSED, "peer %s: %s", address, e.msg);
        goto out;
    }
    size_t len = (size_t)hdr[0] << 24 | (size_t)hdr[1] << 16 | (size_t)hdr[2] << 8 | hdr[3], used = 0, off = 0;
    if (len == 0 || len > HERD_PEER_CTL_FRAME) {
        rc = herd_err_set(err, -HERD_EPROTO, "peer %s: a frame of %zu bytes, expected 1..%zu", address, len, HERD_PEER_CTL_FRAME);
        goto out;
    }
    if (!(buf = malloc(len))) { rc = herd_err_set(err, -ENOMEM, "out of memory"); goto out; }
    if ((rc = herd_shm_recv(fd, buf, len, nofds, 0, &nnofds, &e))) {
        rc = herd_err_set(err, rc == -HERD_EPROTO ? rc : -HERD_ECLOSED, "peer %s: %s", address, e.msg);
        goto out;
    }
    int op;
    if (herd_msgpack_check(buf, len, &used, &e) || used != len ||
        msgpack_unpack_next(&up, buf, len, &off) != MSGPACK_UNPACK_SUCCESS || (op = herd_proto_op(&up.data, &e)) < 0) {
        rc = herd_err_set(err, -HERD_EPROTO, "peer %s: a malformed answer (%s)", address, e.msg[0] ? e.msg : "not msgpack");
        goto out;
    }
    if (op == OP_REFUSE) {
        herd_msg_reason why;
        if (herd_proto_unpack_refuse(&up.data, &why, &e)) rc = herd_err_set(err, -HERD_EPROTO, "peer %s: %s", address, e.msg);
        else rc = herd_err_set(err, -HERD_EAUTH, "peer %s refused this connection: %.*s", address, (int)why.reason.len,
                               why.reason.ptr);
        goto out;
    }
    herd_msg_data d;
    if (op != OP_DATA) rc = herd_err_set(err, -HERD_EPROTO, "peer %s answered %s, expected DATA", address, herd_proto_op_name(op));
    else if (herd_proto_unpack_data(&up.data, &d, &e)) rc = herd_err_set(err, -HERD_EPROTO, "peer %s: %s", address, e.msg);
    else if (d.key != key) rc = herd_err_set(err, -HERD_EPROTO, "peer %s answered for another key", address);
    else if (d.nbytes < 0) rc = herd_err_set(err, -ENOENT, "peer %s does not hold the value", address);
    else if (d.nbytes == 0) rc = herd_err_set(err, -HERD_EPROTO, "peer %s sent an empty value", address);
    else if ((uint64_t)d.nbytes > SIZE_MAX / 2)
        rc = herd_err_set(err, -ENOMEM, "peer %s: a value of %lld bytes", address, (long long)d.nbytes);
    if (rc) goto out;
    if (auth && auth->budget) {
        herd_fetch_budget_acquire(auth->budget, (size_t)d.nbytes);
        admitted = (size_t)d.nbytes;
    }
    /* the bytes, parsed as they come; descriptors come with the first of them */
    if ((rc = herd_fetch_read_value(fd, NULL, (size_t)d.nbytes, 1, auth ? auth->budget : NULL, timeout_s, out, &e))) {
        rc = herd_err_set(err, rc, "peer %s: %s", address, e.msg);
        if (rc == -HERD_EPROTO) herd_log_default(NULL, HERD_LOG_WARN, err ? err->msg : e.msg);
    }
out:
    if (admitted) herd_fetch_budget_release(auth->budget, admitted);
    msgpack_unpacked_destroy(&up);
    free(buf);
    close(fd);
    return rc;
}

