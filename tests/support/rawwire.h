/* tests/support/rawwire.h — speaking herd's wire by hand from a raw TCP
 * socket, for the tests that send what no herd peer would: connect, send a
 * frame (4-byte big-endian length, then msgpack) or an encoded value, read
 * until the peer closes or read one message, and build a HELLO; and the
 * peer protocol's blocking side (a peer server on TCP or a Unix socket:
 * send_msg, recv_full, recv_msg, peer_hello), reads bounded by a 15 s
 * receive timeout.
 *
 * Header-only (static inline). Include after <cmocka.h>, testutil.h and
 * proto.h (opcodes). */
#ifndef HERD_RAWWIRE_H
#define HERD_RAWWIRE_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/un.h>

static inline int raw_connect(const char *addr)
{
    char host[64];
    int port = 0;
    if (sscanf(addr, "tcp://%63[^:]:%d", host, &port) != 2) fail_msg("not a tcp address: %s", addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    assert_int_equal(inet_pton(AF_INET, host, &sa.sin_addr), 1);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa)) fail_msg("connect %s: %s", addr, strerror(errno));
    return fd;
}

/* All n bytes (a signal, such as a child worker's SIGCHLD, may cut a
 * send short: it goes on). */
static inline void send_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t k = send(fd, c, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) fail_msg("send: %s", k < 0 ? strerror(errno) : "nothing sent");
        c += k;
        n -= (size_t)k;
    }
}

/* One frame: 4-byte big-endian length, then payload. */
static inline void send_frame(int fd, const void *payload, size_t n)
{
    uint32_t be = htonl((uint32_t)n);
    char *buf = malloc(4 + n);
    memcpy(buf, &be, 4);
    memcpy(buf + 4, payload, n);
    send_all(fd, buf, 4 + n);
    free(buf);
}

static inline void send_value(int fd, herd_value *v)
{
    char *buf = NULL;
    size_t n = 0;
    herd_err err;
    assert_non_null(v);
    assert_int_equal(herd_value_encode(v, &buf, &n, &err), 0);
    send_frame(fd, buf, n);
    free(buf);
    herd_value_free(v);
}

/* Read until the peer closes (read returns 0; a reset counts too) or the
 * bounded wait ends. Returns true if closed; *first gets the first message
 * received, if any (decoded), else NULL. */
static inline bool read_until_closed(int fd, herd_value **first)
{
    char buf[65536];
    size_t len = 0;
    bool closed = false;
    double end = tu_now() + 15;
    if (first) *first = NULL;
    while (tu_now() < end) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (poll(&p, 1, 100) <= 0) continue;
        ssize_t n = recv(fd, buf + len, sizeof buf - len, 0);
        if (n == 0 || (n < 0 && errno == ECONNRESET)) { closed = true; break; }
        if (n < 0) { if (errno == EINTR || errno == EAGAIN) continue; break; }
        len += (size_t)n;
        if (len == sizeof buf) break;
    }
    if (first && len >= 4) {
        uint32_t be;
        memcpy(&be, buf, 4);
        uint32_t flen = ntohl(be);
        /* a frame may hold several messages: decode the first one alone */
        herd_err err;
        if (flen <= len - 4) {
            for (size_t k = 1; k <= flen && !*first; k++)
                if (herd_value_decode(buf + 4, k, first, &err)) *first = NULL;
        }
    }
    return closed;
}

/* Read one frame (bounded wait) and decode its first message. */
static inline herd_value *read_message(int fd)
{
    char buf[4096];
    size_t len = 0;
    double end = tu_now() + 15;
    while (tu_now() < end) {
        if (len >= 4) {
            uint32_t be;
            memcpy(&be, buf, 4);
            uint32_t flen = ntohl(be);
            if (flen > sizeof buf - 4) fail_msg("frame of %u bytes", flen);
            if (len >= 4 + flen) {
                herd_value *v = NULL;
                herd_err err;
                for (size_t k = 1; k <= flen; k++)
                    if (herd_value_decode(buf + 4, k, &v, &err) == 0) return v;
                fail_msg("undecodable frame");
            }
        }
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (poll(&p, 1, 100) <= 0) continue;
        ssize_t n = recv(fd, buf + len, sizeof buf - len, 0);
        if (n <= 0) fail_msg("connection closed before a whole message arrived");
        len += (size_t)n;
    }
    fail_msg("no message within 15s");
    return NULL;
}

static inline herd_value *hello(const char *token, int proto, int role, const char *name)
{
    return herd_tuple("iiissinIs", OP_HELLO, proto, role, token, name, 1, (int64_t)getpid(), "");
}

/* ---- the peer protocol, blocking (reads time out after 15 s) ---- */
static inline void raw_recv_timeout(int fd)
{
    struct timeval tv = { 15, 0 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

/* A peer server's tcp://IP:PORT. */
static inline int tcp_connect(const char *address)
{
    const char *hp = strstr(address, "://");
    assert_non_null(hp);
    hp += 3;
    char host[64];
    const char *colon = strrchr(hp, ':');
    assert_non_null(colon);
    snprintf(host, sizeof host, "%.*s", (int)(colon - hp), hp);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1)) };
    assert_int_equal(inet_pton(AF_INET, host, &sa.sin_addr), 1);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa)) fail_msg("connect %s: %s", address, strerror(errno));
    raw_recv_timeout(fd);
    return fd;
}

/* A peer server's Unix socket at path. */
static inline int unix_connect(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    size_t len = strlen(path);
    if (len >= sizeof sa.sun_path) fail_msg("socket path too long: %s", path);
    memcpy(sa.sun_path, path, len + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa)) fail_msg("connect %s: %s", path, strerror(errno));
    raw_recv_timeout(fd);
    return fd;
}

/* One message (a frame of its own); v is freed. */
static inline void send_msg(int fd, herd_value *v)
{
    send_value(fd, v);
}

static inline bool recv_full(int fd, void *p, size_t n)
{
    char *c = p;
    while (n) {
        ssize_t r = recv(fd, c, n, 0);
        if (r <= 0) return false;
        c += r;
        n -= (size_t)r;
    }
    return true;
}

/* One message, or NULL when the connection closed first. */
static inline herd_value *recv_msg(int fd)
{
    uint32_t be;
    if (!recv_full(fd, &be, 4)) return NULL;
    size_t len = ntohl(be);
    char *buf = malloc(len);
    herd_value *v = NULL;
    herd_err err;
    if (!buf || !recv_full(fd, buf, len) || herd_value_decode(buf, len, &v, &err)) v = NULL;
    free(buf);
    return v;
}

/* HELLO as a peer (role ROLE_PEER) with token. */
static inline void peer_hello(int fd, const char *token)
{
    send_msg(fd, herd_tuple("iiissinIs", OP_HELLO, HERD_PROTO_VERSION, ROLE_PEER, token, "probe", 0, (int64_t)getpid(), ""));
}

/* The next message is REFUSE saying why (a substring), then the peer closes. */
static inline void expect_refuse(int fd, const char *why)
{
    herd_value *m = recv_msg(fd);
    assert_non_null(m);
    assert_int_equal(herd_as_int(herd_at(m, 0)), OP_REFUSE);
    assert_non_null(strstr(herd_as_str(herd_at(m, 1)), why));
    herd_value_free(m);
    assert_null(recv_msg(fd));
}

#endif
