/* core/net.c — sockets before they are connections: address parsing
 * ("tcp://", "tls://", "unix://"), listening, the blocking dial with its
 * retries, and the accept guard (backoff when accept() runs out of
 * descriptors). What travels over them, framed, is comm.c's. */
#include "net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* ---- addresses ---- */
int herd_addr_parse(const char *s, herd_addr *a, herd_err *err)
{
    memset(a, 0, sizeof *a);
    if (!s || !*s) return herd_err_set(err, HERD_EARG, "address: expected tcp://host:port or unix:///path, got an empty string");
    if (strncmp(s, "unix://", 7) == 0) {
        a->is_unix = 1;
        if (strlen(s + 7) == 0 || strlen(s + 7) >= sizeof a->path)
            return herd_err_set(err, HERD_EARG, "address \"%s\": unix socket path must be 1..%zu bytes", s, sizeof a->path - 1);
        snprintf(a->path, sizeof a->path, "%s", s + 7);
        return 0;
    }
    const char *hp = s;
    if (strncmp(s, "tcp://", 6) == 0) hp = s + 6;
    else if (strncmp(s, "tls://", 6) == 0) { hp = s + 6; a->is_tls = 1; }
    else if (strstr(s, "://"))
        return herd_err_set(err, HERD_EARG, "address \"%s\": unsupported scheme (expected tcp://, tls:// or unix://)", s);
    const char *colon = strrchr(hp, ':');
    if (!colon || colon == hp)
        return herd_err_set(err, HERD_EARG, "address \"%s\": expected host:port", s);
    size_t hl = (size_t)(colon - hp);
    if (hp[0] == '[' && hl >= 2 && hp[hl - 1] == ']') { hp++; hl -= 2; }
    if (hl >= sizeof a->host) return herd_err_set(err, HERD_EARG, "address \"%s\": host too long", s);
    memcpy(a->host, hp, hl);
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535 || end == colon + 1)
        return herd_err_set(err, HERD_EARG, "address \"%s\": port must be 0..65535, got \"%s\"", s, colon + 1);
    a->port = (int)port;
    return 0;
}

static int resolve(const herd_addr *a, struct sockaddr_storage *ss, socklen_t *len, herd_err *err)
{
    memset(ss, 0, sizeof *ss);
    if (a->is_unix) {
        struct sockaddr_un *un = (struct sockaddr_un *)ss;
        un->sun_family = AF_UNIX;
        snprintf(un->sun_path, sizeof un->sun_path, "%s", a->path);
        *len = sizeof *un;
        return 0;
    }
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *res = NULL;
    char port[16];
    snprintf(port, sizeof port, "%d", a->port);
    int rc = getaddrinfo(a->host, port, &hints, &res);
    if (rc || !res)
        return herd_err_set(err, HERD_EARG, "address %s:%d: cannot resolve host: %s", a->host, a->port, gai_strerror(rc));
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

struct evconnlistener *herd_listen(struct event_base *base, const char *addr,
                                   evconnlistener_cb cb, void *ud,
                                   char *bound, size_t cap, herd_err *err)
{
    herd_addr a;
    if (herd_addr_parse(addr, &a, err)) return NULL;
    struct sockaddr_storage ss;
    socklen_t len;
    if (resolve(&a, &ss, &len, err)) return NULL;
    if (a.is_unix) unlink(a.path);
    struct evconnlistener *l = evconnlistener_new_bind(base, cb, ud,
        LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC | (a.is_unix ? 0 : LEV_OPT_REUSEABLE),
        128, (struct sockaddr *)&ss, (int)len);
    if (!l) {
        herd_err_set(err, -errno, "cannot listen on %s: %s", addr, strerror(errno));
        return NULL;
    }
    if (a.is_unix) {
        chmod(a.path, 0600);
        snprintf(bound, cap, "unix://%s", a.path);
    } else {
        struct sockaddr_storage got;
        socklen_t gl = sizeof got;
        getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&got, &gl);
        int port = ntohs(got.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&got)->sin6_port
                                                   : ((struct sockaddr_in *)&got)->sin_port);
        const char *host = a.host;
        if (strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0 || !*host) host = "127.0.0.1";
        snprintf(bound, cap, strchr(host, ':') ? "%s://[%s]:%d" : "%s://%s:%d", a.is_tls ? "tls" : "tcp", host, port);
    }
    return l;
}

/* ---- accept guard ---- */
#define ACCEPT_PAUSE_MIN 0.1
#define ACCEPT_PAUSE_MAX 2.0

/* The timer: after a pause, accept again and watch for ACCEPT_PAUSE_MAX;
 * if nothing failed meanwhile, the burst is over (one line with the count). */
static void guard_retry(evutil_socket_t fd, short what, void *arg)
{
    herd_accept_guard *g = arg;
    if (g->watching) {
        herd_logf(g->log, g->log_ud, HERD_LOG_WARN,
                  "accepting connections again after %lu failed accepts over %.1fs (%s)",
                  g->fails, herd_now() - g->since - ACCEPT_PAUSE_MAX, strerror(g->last_errno));
        g->fails = 0;
        g->watching = 0;
        return;
    }
    evconnlistener_enable(g->lis);
    g->watching = 1;
    struct timeval tv = { (time_t)ACCEPT_PAUSE_MAX, 0 };
    evtimer_add(g->retry, &tv);
}

int herd_accept_guard_init(herd_accept_guard *g, struct evconnlistener *lis,
                           void (*log)(void *ud, int level, const char *line), void *log_ud)
{
    memset(g, 0, sizeof *g);
    g->lis = lis;
    g->log = log;
    g->log_ud = log_ud;
    g->retry = evtimer_new(evconnlistener_get_base(lis), guard_retry, g);
    return g->retry ? 0 : -ENOMEM;
}

void herd_accept_guard_fail(herd_accept_guard *g)
{
    int e = errno;
    if (e != EMFILE && e != ENFILE && e != ENOBUFS && e != ENOMEM) {
        herd_logf(g->log, g->log_ud, HERD_LOG_WARN, "accept failed: %s", strerror(e));
        return;
    }
    if (!g->fails++) {
        g->since = herd_now();
        g->delay = ACCEPT_PAUSE_MIN;
        g->last_errno = e;
        herd_logf(g->log, g->log_ud, HERD_LOG_ERROR,
                  "cannot accept connections: %s; pausing accepts (retrying from %.1fs up to %.0fs apart) until it succeeds",
                  strerror(e), ACCEPT_PAUSE_MIN, ACCEPT_PAUSE_MAX);
    } else if ((g->delay *= 2) > ACCEPT_PAUSE_MAX)
        g->delay = ACCEPT_PAUSE_MAX;
    g->watching = 0;
    evconnlistener_disable(g->lis);
    struct timeval tv = { (time_t)g->delay, (suseconds_t)((g->delay - (time_t)g->delay) * 1e6) };
    evtimer_add(g->retry, &tv);
}

void herd_accept_guard_destroy(herd_accept_guard *g)
{
    if (g->retry) event_free(g->retry);
    g->retry = NULL;
}

int herd_dial(const char *addr, double timeout_s, int *fd_out, herd_err *err)
{
    return herd_dial_log(addr, timeout_s, NULL, NULL, fd_out, err);
}

static int dial(const char *addr, double timeout_s, int retry, void (*log)(void *ud, int level, const char *line),
                void *log_ud, int *fd_out, herd_err *err);

int herd_dial_log(const char *addr, double timeout_s, void (*log)(void *ud, int level, const char *line),
                  void *log_ud, int *fd_out, herd_err *err)
{
    return dial(addr, timeout_s, 1, log, log_ud, fd_out, err);
}

int herd_dial_once(const char *addr, double timeout_s, int *fd_out, herd_err *err)
{
    return dial(addr, timeout_s, 0, NULL, NULL, fd_out, err);
}

static int dial(const char *addr, double timeout_s, int retry, void (*log)(void *ud, int level, const char *line),
                void *log_ud, int *fd_out, herd_err *err)
{
    herd_addr a;
    int rc = herd_addr_parse(addr, &a, err);
    if (rc) return rc;
    struct sockaddr_storage ss;
    socklen_t len;
    if ((rc = resolve(&a, &ss, &len, err))) return rc;
    double deadline = herd_now() + (timeout_s > 0 ? timeout_s : 1e9), step = 0.05;
    int last = 0;
    for (;;) {
        int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) return herd_err_set(err, -errno, "connect %s: socket: %s", addr, strerror(errno));
        rc = connect(fd, (struct sockaddr *)&ss, len);
        if (rc < 0 && errno == EINPROGRESS) {
            struct pollfd p = { .fd = fd, .events = POLLOUT };
            int ms = (int)((deadline - herd_now()) * 1000);
            if (ms < 0) ms = 0;
            if (poll(&p, 1, ms) == 1) {
                int soerr = 0;
                socklen_t sl = sizeof soerr;
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
                rc = soerr ? -1 : 0;
                errno = soerr ? soerr : ETIMEDOUT;
            } else { rc = -1; errno = ETIMEDOUT; }
        }
        if (rc == 0) { *fd_out = fd; return 0; }
        last = errno;
        close(fd);
        /* the scheduler may not be listening yet: retry refused/absent until the deadline */
        double left = deadline - herd_now();
        if (!retry || (last != ECONNREFUSED && last != ENOENT && last != EAGAIN) || left <= 0) break;
        double wait = step < left ? step : left;
        if (log) {
            char line[700];
            snprintf(line, sizeof line, "cannot connect to %s yet (%s); retrying in %.2gs, %.1fs left", addr,
                     strerror(last), wait, left);
            log(log_ud, HERD_LOG_INFO, line);
        }
        usleep((useconds_t)(wait * 1e6));
        step = step * 2 > 1 ? 1 : step * 2;
    }
    if (!retry) return herd_err_set(err, -last, "cannot connect to %s: %s", addr, strerror(last));
    return herd_err_set(err, -last, "cannot connect to scheduler at %s within %.1fs: %s", addr, timeout_s, strerror(last));
}
