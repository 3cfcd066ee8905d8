/* core/fetch_read.c — reading a fetched value from a socket as it arrives
 * (fetch_read.h): its msgpack is walked as the bytes come (read_value), each
 * bytes payload of HERD_SHM_MIN or more is read from the socket straight
 * into a buffer of its own (herd_fetch_bytes: one copy, kernel to final
 * buffer), the rest kept as a skeleton that is then decoded; on a Unix
 * socket, memfd descriptors that come with the value's first byte are
 * checked and mapped (shm.c). Used by peer_local.c and, for plain TCP, by
 * peer.c. */
#include "fetch_read.h"
#include "shm.h"
#include "value_int.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <event2/buffer.h>

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

/* ---- a value's bytes, parsed as they arrive ---- */
#define RBUF ((size_t)64 << 10)      /* buffered reads: headers and small payloads */

typedef struct rd {
    int fd, first;                   /* first: the next read is the value's first byte, with its descriptors */
    int fds_ok;                      /* a Unix socket: descriptors may come with the first byte */
    int ms;                          /* poll bound on a socket with nothing to read, ms (-1: none) */
    struct evbuffer *in;             /* bytes already read from the socket, taken first (or NULL) */
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
    ssize_t n = r->in ? evbuffer_remove(r->in, p, cap) : 0;
    if (n <= 0) {
        r->in = NULL;
        while ((n = herd_shm_recv_some(r->fd, p, cap, r->rf->fds, r->first && r->fds_ok ? HERD_SHM_MAX_FDS : 0,
                                       &r->rf->n, r->err)) == -EAGAIN) {
            struct pollfd pf = { r->fd, POLLIN, 0 };    /* a non-blocking socket, or SO_RCVTIMEO ran out */
            int pr = poll(&pf, 1, r->ms);
            if (pr == 0) return herd_err_set(r->err, -ETIMEDOUT, "no byte for %d ms", r->ms);
        }
    }
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
        herd_msgpack_head hd;
        if (herd_msgpack_head_of(b, &hd))
            return herd_err_set(r->err, -HERD_EPROTO, "the value is malformed: invalid msgpack byte 0x%02x", b);
        int lenbytes = hd.lenbytes, ext = hd.ext;
        uint64_t skip = hd.skip, count = hd.count, per = hd.per;
        size_t hl = 1 + (size_t)lenbytes + (size_t)ext;
        if ((rc = need(r, hl))) return rc;
        const unsigned char *h = (const unsigned char *)r->buf + r->pos;
        if (lenbytes) {
            uint64_t n = herd_msgpack_be(h + 1, lenbytes);
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
            uint32_t idx = (uint32_t)herd_msgpack_be((const unsigned char *)d + hl, 4);
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

int herd_fetch_read_value(int fd, struct evbuffer *in, size_t nbytes, int fds, herd_fetch_budget *budget,
                          double timeout_s, herd_value **out, herd_err *err)
{
    *out = NULL;
    rfds rf = { .n = 0 };
    herd_err e;
    e.msg[0] = '\0';
    rd *r = malloc(sizeof *r);
    if (!r) return herd_err_set(err, -ENOMEM, "out of memory");
    *r = (rd){ .fd = fd, .first = 1, .fds_ok = fds, .in = in, .left = nbytes, .rf = &rf, .budget = budget, .err = &e,
               .ms = timeout_s > 0 && timeout_s < 1e6 ? (int)(timeout_s * 1000) : -1 };
    int rc = read_value(r);
    if (rc) {
        rc = herd_err_set(err, rc == -HERD_EPROTO || rc == -ENOMEM ? rc : -HERD_ECLOSED, "%s%s",
                          rc == -HERD_EPROTO || rc == -ENOMEM ? "" : "the transfer broke off: ", e.msg);
    } else if ((rc = herd_value_decode_fds(r->sk, r->sklen, rf.n || rf.nbufs ? fd_value : NULL, &rf, out, &e))) {
        rc = herd_err_set(err, rc, "the value does not decode: %s", e.msg);
    } else if (rf.used != rf.n) {
        rc = herd_err_set(err, -HERD_EPROTO, "sent %d descriptors, the value uses %d", rf.n, rf.used);
        herd_value_free(*out);
        *out = NULL;
    }
    for (int i = 0; i < rf.n; i++) close(rf.fds[i]);
    for (size_t i = 0; i < rf.nbufs; i++) herd_value_free(rf.bufs[i]);    /* those not taken by the value */
    free(rf.bufs);
    free(r->sk);
    free(r);
    return rc;
}
