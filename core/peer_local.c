/* core/peer_local.c — fetching a held value from a peer of this host (a
 * unix:// peer server, peer.c): plain blocking reads with recvmsg, so the
 * memfd descriptors the server attaches to the value's first raw byte are
 * taken, checked and mapped (shm.c) instead of the bytes crossing the socket.
 * GETFD asks for them; herd_peer_fetch calls this for every unix:// address.
 * Payloads not in a sealed memfd come as bytes; the value is parsed as it
 * arrives (read_value), and each bytes payload of HERD_SHM_MIN or more is
 * read from the socket straight into a herd_bytes_alloc buffer of its own:
 * one copy, kernel to final buffer, over socket buffers of HERD_PEER_SOCKBUF. */
#include "peer_local.h"
#include "comm.h"
#include "proto.h"
#include "shm.h"
#include "value_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* The descriptors that came with a value, and the value each became; the
 * payloads read into buffers of their own (referred to as descriptors
 * n, n + 1, ... in the parsed value's skeleton). */
typedef struct rfds {
    int fds[HERD_SHM_MAX_FDS];
    int n, used;
    herd_value *val[HERD_SHM_MAX_FDS];
    herd_value **bufs;
    size_t nbufs, capbufs;
} rfds;

/* A payload sent as descriptor idx: checked and mapped read-only (shm.c);
 * a payload referred to twice shares its map. Past the descriptors: a
 * payload that was read into a buffer of its own (taken once). */
static herd_value *fd_value(void *ud, uint32_t idx, uint64_t len, herd_err *err)
{
    rfds *rf = ud;
    if (idx >= (uint32_t)rf->n && idx - (uint32_t)rf->n < rf->nbufs && rf->bufs[idx - rf->n]) {
        herd_value *v = rf->bufs[idx - rf->n];
        rf->bufs[idx - rf->n] = NULL;
        return v;                         /* its length is the skeleton's: written here */
    }
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

/* ---- a value's bytes, parsed as they arrive ---- */
#define RBUF ((size_t)64 << 10)      /* buffered reads: headers and small payloads */

typedef struct rd {
    int fd, first;                   /* first: the next read is the value's first byte, with its descriptors */
    size_t left;                     /* value bytes still in the socket */
    size_t pos, end;                 /* unread bytes in buf */
    char *sk;                        /* the skeleton: the value with big payloads as references */
    size_t sklen, skcap;
    rfds *rf;
    herd_fetch_budget *budget;       /* its buffers, or NULL */
    herd_err *err;
    char buf[RBUF];
} rd;

static size_t rem(const rd *r) { return r->left + (r->end - r->pos); }

/* One read from the socket into p (at most cap, and never past the value). */
static int sock_read(rd *r, char *p, size_t cap)
{
    if (cap > r->left) cap = r->left;
    if (!cap) return herd_err_set(r->err, -HERD_EPROTO, "the value ends early");
    ssize_t n = herd_shm_recv_some(r->fd, p, cap, r->rf->fds, r->first ? HERD_SHM_MAX_FDS : 0, &r->rf->n, r->err);
    if (n < 0) return (int)n;
    r->first = 0;
    r->left -= (size_t)n;
    return 0;
}

/* At least n (<= 16) unread bytes in buf. */
static int need(rd *r, size_t n)
{
    if (n > rem(r))
        return herd_err_set(r->err, -HERD_EPROTO, "the value is truncated: an item needs %zu bytes, %zu remain", n, rem(r));
    if (r->end - r->pos >= n) return 0;
    memmove(r->buf, r->buf + r->pos, r->end - r->pos);
    r->end -= r->pos;
    r->pos = 0;
    while (r->end < n) {
        size_t before = r->left;
        int rc = sock_read(r, r->buf + r->end, RBUF - r->end);
        if (rc) return rc;
        r->end += before - r->left;
    }
    return 0;
}

/* Exactly n bytes into p: what is buffered, then big reads straight into p. */
static int take(rd *r, char *p, size_t n)
{
    if (n > rem(r))
        return herd_err_set(r->err, -HERD_EPROTO, "the value is truncated: a payload of %zu bytes, %zu remain", n, rem(r));
    size_t c = r->end - r->pos < n ? r->end - r->pos : n;
    memcpy(p, r->buf + r->pos, c);
    r->pos += c;
    for (size_t got = c; got < n;) {
        size_t before = r->left;
        int rc = sock_read(r, p + got, n - got);
        if (rc) return rc;
        got += before - r->left;
    }
    return 0;
}

/* Room for n more skeleton bytes (the skeleton never outgrows the value). */
static char *sk_room(rd *r, size_t n)
{
    if (r->skcap - r->sklen < n) {
        size_t cap = r->skcap ? r->skcap : 4096;
        while (cap - r->sklen < n) cap *= 2;
        char *p = realloc(r->sk, cap);
        if (!p) { herd_err_set(r->err, -ENOMEM, "out of memory reading a value"); return NULL; }
        r->sk = p;
        r->skcap = cap;
    }
    return r->sk + r->sklen;
}

static uint64_t be_get(const unsigned char *p, int n)
{
    uint64_t x = 0;
    for (int i = 0; i < n; i++) x = x << 8 | p[i];
    return x;
}

/* A bytes payload of n bytes (>= HERD_SHM_MIN) read into a buffer of its
 * own; the skeleton gets a descriptor reference past the real ones. */
static int big_bytes(rd *r, size_t n)
{
    rfds *rf = r->rf;
    if (n > rem(r))
        return herd_err_set(r->err, -HERD_EPROTO, "the value is truncated: a payload of %zu bytes, %zu remain", n, rem(r));
    if (rf->nbufs == rf->capbufs) {
        size_t cap = rf->capbufs ? rf->capbufs * 2 : 8;
        herd_value **b = realloc(rf->bufs, cap * sizeof *b);
        if (!b) return herd_err_set(r->err, -ENOMEM, "out of memory reading a value");
        rf->bufs = b;
        rf->capbufs = cap;
    }
    void *p;
    herd_value *v = herd_fetch_bytes(r->budget, n, &p);
    if (!v) return herd_err_set(r->err, -ENOMEM, "no memory for a payload of %zu bytes", n);
    rf->bufs[rf->nbufs++] = v;
    int rc = take(r, p, n);
    if (rc) return rc;
    unsigned char *e = (unsigned char *)sk_room(r, 15);
    if (!e) return -ENOMEM;
    uint32_t idx = (uint32_t)rf->n + (uint32_t)(rf->nbufs - 1);
    e[0] = 0xc7; e[1] = 12; e[2] = 2;                  /* ext 8, 12 bytes, type 2: as herd_value_pack_fds writes */
    for (int i = 0; i < 4; i++) e[3 + i] = (unsigned char)(idx >> (24 - 8 * i));
    for (int i = 0; i < 8; i++) e[7 + i] = (unsigned char)((uint64_t)n >> (56 - 8 * i));
    r->sklen += 15;
    return 0;
}

/* Walk the value's msgpack as it arrives (the shape herd_msgpack_check
 * checks: no container declares more items than bytes remain, at most
 * HERD_MSGPACK_MAX_DEPTH deep), copying everything into the skeleton except
 * bytes payloads of HERD_SHM_MIN or more. A descriptor reference must name a
 * descriptor that came (the references past them are this side's). */
static int read_value(rd *r)
{
    uint64_t stack[HERD_MSGPACK_MAX_DEPTH + 1];
    int sp = 0, rc;
    stack[0] = 1;
    while (sp >= 0) {
        if (stack[sp] == 0) { sp--; continue; }
        stack[sp]--;
        if ((rc = need(r, 1))) return rc;
        unsigned b = (unsigned char)r->buf[r->pos];
        int lenbytes = 0, ext = 0;
        uint64_t skip = 0, count = 0, per = 0;
        if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
        } else if (b <= 0x8f) { count = b & 0x0f; per = 2; }
        else if (b <= 0x9f) { count = b & 0x0f; per = 1; }
        else if (b <= 0xbf) { skip = b & 0x1f; }
        else switch (b) {
            case 0xc4: case 0xd9: lenbytes = 1; break;
            case 0xc5: case 0xda: lenbytes = 2; break;
            case 0xc6: case 0xdb: lenbytes = 4; break;
            case 0xc7: lenbytes = 1; ext = 1; break;
            case 0xc8: lenbytes = 2; ext = 1; break;
            case 0xc9: lenbytes = 4; ext = 1; break;
            case 0xca: skip = 4; break;
            case 0xcb: skip = 8; break;
            case 0xcc: case 0xd0: skip = 1; break;
            case 0xcd: case 0xd1: skip = 2; break;
            case 0xce: case 0xd2: skip = 4; break;
            case 0xcf: case 0xd3: skip = 8; break;
            case 0xd4: skip = 1; ext = 1; break;        /* fixext: the type byte is in the header */
            case 0xd5: skip = 2; ext = 1; break;
            case 0xd6: skip = 4; ext = 1; break;
            case 0xd7: skip = 8; ext = 1; break;
            case 0xd8: skip = 16; ext = 1; break;
            case 0xdc: lenbytes = 2; per = 1; break;
            case 0xdd: lenbytes = 4; per = 1; break;
            case 0xde: lenbytes = 2; per = 2; break;
            case 0xdf: lenbytes = 4; per = 2; break;
            default: return herd_err_set(r->err, -HERD_EPROTO, "the value is malformed: invalid msgpack byte 0x%02x", b);
            }
        size_t hl = 1 + (size_t)lenbytes + (size_t)ext;
        if ((rc = need(r, hl))) return rc;
        const unsigned char *h = (const unsigned char *)r->buf + r->pos;
        if (lenbytes) {
            uint64_t n = be_get(h + 1, lenbytes);
            if (per) count = n;
            else skip = n;
        }
        if (ext && (signed char)h[hl - 1] == 2 && skip != 12)
            return herd_err_set(r->err, -HERD_EPROTO, "a descriptor reference (ext 2) of %llu bytes, expected 12",
                                (unsigned long long)skip);
        if (b >= 0xc4 && b <= 0xc6 && skip >= HERD_SHM_MIN && skip <= SIZE_MAX / 2) {   /* a big bytes payload */
            r->pos += hl;
            if ((rc = big_bytes(r, (size_t)skip))) return rc;
            continue;
        }
        if (skip > rem(r) - hl)
            return herd_err_set(r->err, -HERD_EPROTO, "the value is truncated: an item needs %llu bytes, %zu remain",
                                (unsigned long long)skip, rem(r) - hl);
        char *d = sk_room(r, hl + (size_t)skip);
        if (!d) return -ENOMEM;
        memcpy(d, h, hl);
        r->pos += hl;
        if ((rc = take(r, d + hl, (size_t)skip))) return rc;
        if (ext && (signed char)h[hl - 1] == 2) {
            uint32_t idx = (uint32_t)be_get((const unsigned char *)d + hl, 4);
            if (idx >= (uint32_t)r->rf->n)
                return herd_err_set(r->err, -HERD_EPROTO, "payload refers to descriptor %u, %d came", idx, r->rf->n);
        }
        r->sklen += hl + (size_t)skip;
        if (count) {
            if (count * per > rem(r))
                return herd_err_set(r->err, -HERD_EPROTO, "the value is malformed: a %s declares %llu items, %zu bytes remain",
                                    per == 2 ? "map" : "array", (unsigned long long)count, rem(r));
            if (sp + 1 > HERD_MSGPACK_MAX_DEPTH)
                return herd_err_set(r->err, -HERD_EPROTO, "the value is nested deeper than %d levels", HERD_MSGPACK_MAX_DEPTH);
            stack[++sp] = count * per;
        }
    }
    if (rem(r))
        return herd_err_set(r->err, -HERD_EPROTO, "the value is malformed: %zu trailing bytes", rem(r));
    return 0;
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
    rfds rf = { .n = 0 };
    rd *r = NULL;
    herd_err e;
    e.msg[0] = '\0';
    unsigned char hdr[4];
    char *buf = NULL;
    size_t admitted = 0;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    /* the answer's frame: no descriptor may come with it */
    if ((rc = herd_shm_recv(fd, hdr, 4, rf.fds, 0, &rf.n, &e))) {
        rc = herd_err_set(err, rc == -HERD_EPROTO ? rc : -HERD_ECLOSED, "peer %s: %s", address, e.msg);
        goto out;
    }
    size_t len = (size_t)hdr[0] << 24 | (size_t)hdr[1] << 16 | (size_t)hdr[2] << 8 | hdr[3], used = 0, off = 0;
    if (len == 0 || len > HERD_PEER_CTL_FRAME) {
        rc = herd_err_set(err, -HERD_EPROTO, "peer %s: a frame of %zu bytes, expected 1..%zu", address, len, HERD_PEER_CTL_FRAME);
        goto out;
    }
    if (!(buf = malloc(len))) { rc = herd_err_set(err, -ENOMEM, "out of memory"); goto out; }
    if ((rc = herd_shm_recv(fd, buf, len, rf.fds, 0, &rf.n, &e))) {
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
    if (!(r = malloc(sizeof *r))) { rc = herd_err_set(err, -ENOMEM, "out of memory"); goto out; }
    *r = (rd){ .fd = fd, .first = 1, .left = (size_t)d.nbytes, .rf = &rf, .budget = auth ? auth->budget : NULL, .err = &e };
    /* the bytes, parsed as they come; descriptors come with the first of them */
    if ((rc = read_value(r))) {
        rc = herd_err_set(err, rc == -HERD_EPROTO || rc == -ENOMEM ? rc : -HERD_ECLOSED, "peer %s: %s%s", address,
                          rc == -HERD_EPROTO || rc == -ENOMEM ? "" : "the transfer broke off: ", e.msg);
        goto out;
    }
    if ((rc = herd_value_decode_fds(r->sk, r->sklen, rf.n || rf.nbufs ? fd_value : NULL, &rf, out, &e)))
        rc = herd_err_set(err, rc, "peer %s: the value does not decode: %s", address, e.msg);
    else if (rf.used != rf.n) {
        rc = herd_err_set(err, -HERD_EPROTO, "peer %s sent %d descriptors, the value uses %d", address, rf.n, rf.used);
        herd_value_free(*out);
        *out = NULL;
    }
    if (rc && rf.n) herd_log_default(NULL, HERD_LOG_WARN, err ? err->msg : "a peer's descriptors refused");
out:
    for (int i = 0; i < rf.n; i++) close(rf.fds[i]);
    for (size_t i = 0; i < rf.nbufs; i++) herd_value_free(rf.bufs[i]);    /* those not taken by the value */
    free(rf.bufs);
    if (r) free(r->sk);
    free(r);
    if (admitted) herd_fetch_budget_release(auth->budget, admitted);
    msgpack_unpacked_destroy(&up);
    free(buf);
    close(fd);
    return rc;
}

