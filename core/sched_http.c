/* core/sched_http.c — the scheduler's HTTP endpoint (libevent evhttp) on the
 * scheduler's own event loop, so every handler reads scheduler state on the
 * scheduler's thread without locks: binding, HTTPS when the cluster uses
 * TLS, the token on non-loopback addresses (a Bearer header, or the cookie a
 * one-time login link sets), limits on what a client may send, and routing:
 *   /health  ok          /metrics  Prometheus text
 *   /api/v1/{status,workers,tasks,runs,adaptive,logs}  JSON (?since_run=, ?since_log=)
 *   /api/v1/status?format=text   what `herd status` prints
 *   /  the live page (core/dashboard.html, compiled in)
 * What each report holds is sched_report.c's. */
#include "sched_int.h"
#include "security.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <event2/bufferevent_ssl.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

/* the page, generated from core/dashboard.html by the Makefile (xxd -i) */
extern unsigned char dashboard_html[];
extern unsigned int dashboard_html_len;

#define HTTP_MAX_HEADERS 8192          /* bytes of request line and headers */
#define HTTP_MAX_BODY    1024
#define HTTP_TIMEOUT_S   10            /* a client slower than this to send a request is dropped */

typedef struct herd_http {
    herd_sched *s;
    struct evhttp *http;
    int need_auth;                     /* not loopback: the token (or the session cookie) */
    char session[65];                  /* the login cookie's value */
    char once[65];                     /* the one-time login link's secret; "" once used */
    char url[300], login[400];
    char ip[INET6_ADDRSTRLEN];         /* the bound address (0.0.0.0 or :: for every interface) */
    int port;                          /* the bound port */
    struct evconnlistener *lis;        /* evhttp's (it frees it) */
    struct event *resume;              /* re-enables lis each second, after accept() failed */
} herd_http;

static int hexrand(char *out, size_t nbytes)
{
    unsigned char b[32];
    if (nbytes > sizeof b || RAND_bytes(b, (int)nbytes) != 1) return -1;
    for (size_t i = 0; i < nbytes; i++) sprintf(out + 2 * i, "%02x", b[i]);
    return 0;
}

static int same(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    return la == lb && la && CRYPTO_memcmp(a, b, la) == 0;
}

static int authorized(herd_http *h, struct evhttp_request *req)
{
    if (!h->need_auth) return 1;
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    const char *a = evhttp_find_header(in, "Authorization");
    if (a && strncasecmp(a, "Bearer ", 7) == 0 && h->s->token && same(a + 7, h->s->token)) return 1;
    const char *c = evhttp_find_header(in, "Cookie");
    for (const char *p = c; p && (p = strstr(p, "herd_session=")); p += 13) {
        if (p != c && p[-1] != ' ' && p[-1] != ';') continue;
        char v[65];
        size_t n = strcspn(p + 13, "; ");
        if (n != 64) continue;
        memcpy(v, p + 13, 64);
        v[64] = '\0';
        if (same(v, h->session)) return 1;
    }
    return 0;
}

static void reply(struct evhttp_request *req, int code, const char *reason, const char *type, struct evbuffer *body)
{
    /* evhttp writes the headers and the body apart: without this, Nagle's
     * algorithm holds the body until the client's delayed ACK (40 ms) */
    struct evhttp_connection *con = evhttp_request_get_connection(req);
    struct bufferevent *bev = con ? evhttp_connection_get_bufferevent(con) : NULL;
    evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;
    int one = 1;
    if (fd >= 0) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct evkeyvalq *out = evhttp_request_get_output_headers(req);
    evhttp_add_header(out, "Content-Type", type);
    evhttp_add_header(out, "Cache-Control", "no-store");
    evhttp_add_header(out, "X-Content-Type-Options", "nosniff");
    evhttp_send_reply(req, code, reason, body);
}

static void reply_text(struct evhttp_request *req, int code, const char *reason, const char *text)
{
    struct evbuffer *b = evbuffer_new();
    if (!b) { evhttp_send_error(req, HTTP_INTERNAL, NULL); return; }
    evbuffer_add(b, text, strlen(text));
    reply(req, code, reason, "text/plain; charset=utf-8", b);
    evbuffer_free(b);
}

/* ?name=N (decimal), else 0. */
static uint64_t query_u64(const struct evkeyvalq *q, const char *name)
{
    const char *v = evhttp_find_header(q, name);
    if (!v) return 0;
    char *end;
    unsigned long long n = strtoull(v, &end, 10);
    return *end || *v == '-' ? 0 : (uint64_t)n;
}

static void login(herd_http *h, struct evhttp_request *req, const struct evkeyvalq *q)
{
    const char *once = evhttp_find_header(q, "once");
    if (!h->once[0] || !once || !same(once, h->once)) {
        reply_text(req, 401, "Unauthorized", "this login link was used already or is wrong: use the token (Authorization: Bearer)\n");
        return;
    }
    h->once[0] = '\0';                 /* one time */
    char cookie[200];
    snprintf(cookie, sizeof cookie, "herd_session=%s; Path=/; HttpOnly; SameSite=Strict%s", h->session,
             h->s->cfg.tls ? "; Secure" : "");
    struct evkeyvalq *out = evhttp_request_get_output_headers(req);
    evhttp_add_header(out, "Set-Cookie", cookie);
    evhttp_add_header(out, "Location", "/");
    reply_text(req, 303, "See Other", "logged in\n");
    slog(h->s, HERD_LOG_INFO, "dashboard: the one-time login link was used");
}

static void handle(struct evhttp_request *req, void *arg)
{
    herd_http *h = arg;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    const char *query = uri ? evhttp_uri_get_query(uri) : NULL;
    if (!uri) { reply_text(req, 400, "Bad Request", "malformed request URI\n"); return; }
    if (!path || !*path) path = "/";
    struct evkeyvalq q;
    TAILQ_INIT(&q);
    if (query && evhttp_parse_query_str(query, &q)) { reply_text(req, 400, "Bad Request", "malformed query string\n"); return; }
    if (!strcmp(path, "/health")) { reply_text(req, 200, "OK", "ok\n"); goto out; }   /* no secret in it: no token */
    if (!strcmp(path, "/login")) { login(h, req, &q); goto out; }
    if (!authorized(h, req)) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate", "Bearer realm=\"herd\"");
        reply_text(req, 401, "Unauthorized", "this endpoint needs the cluster's token: Authorization: Bearer TOKEN, "
                                             "or the one-time login link from the scheduler's log\n");
        goto out;
    }
    struct evbuffer *b = evbuffer_new();
    if (!b) { evhttp_send_error(req, HTTP_INTERNAL, NULL); goto out; }
    if (!strcmp(path, "/") || !strcmp(path, "/index.html")) {
        evbuffer_add_reference(b, dashboard_html, dashboard_html_len, NULL, NULL);
        evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Security-Policy",
                          "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' data:");
        reply(req, 200, "OK", "text/html; charset=utf-8", b);
    } else if (!strcmp(path, "/metrics")) {
        sch_report_metrics(h->s, b);
        reply(req, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", b);
    } else if (!strncmp(path, "/api/v1/", 8) && !strcmp(path + 8, "status") && evhttp_find_header(&q, "format") &&
               !strcmp(evhttp_find_header(&q, "format"), "text")) {
        sch_report_text(h->s, b);
        reply(req, 200, "OK", "text/plain; charset=utf-8", b);
    } else if (!strncmp(path, "/api/v1/", 8) &&
               sch_report_json(h->s, path + 8, query_u64(&q, "since_run"), query_u64(&q, "since_log"), b) == 0) {
        reply(req, 200, "OK", "application/json", b);
    } else {
        evbuffer_free(b);
        reply_text(req, 404, "Not Found", "not found: try /, /health, /metrics, /api/v1/status\n");
        goto out;
    }
    evbuffer_free(b);
out:
    evhttp_clear_headers(&q);
}

/* HTTPS: the cluster's server identity; no client certificate asked (a
 * browser has none): the token authenticates. */
static struct bufferevent *tls_bev(struct event_base *base, void *arg)
{
    herd_http *h = arg;
    SSL *ssl = herd_tls_ssl_new(h->s->cfg.tls, 1, NULL, NULL);
    if (!ssl) return NULL;
    SSL_set_verify(ssl, SSL_VERIFY_NONE, NULL);
    struct bufferevent *bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
    if (!bev) SSL_free(ssl);
    return bev;
}

/* "HOST:PORT", ":PORT", "[V6]:PORT", optionally after http:// or https://. */
static int parse_addr(const char *a, char *host, size_t cap, int *port, herd_err *err)
{
    const char *p = a;
    if (!strncmp(p, "http://", 7)) p += 7;
    else if (!strncmp(p, "https://", 8)) p += 8;
    const char *colon = strrchr(p, ':');
    char *end;
    long n = colon ? strtol(colon + 1, &end, 10) : -1;
    if (!colon || colon[1] == '\0' || *end || n < 0 || n > 65535 || (size_t)(colon - p) >= cap)
        return herd_err_set(err, HERD_EARG, "dashboard_address: expected HOST:PORT, :PORT or [IPv6]:PORT (port 0..65535), got \"%.200s\"", a);
    size_t hl = (size_t)(colon - p);
    if (hl >= 2 && p[0] == '[' && p[hl - 1] == ']') { memcpy(host, p + 1, hl - 2); host[hl - 2] = '\0'; }
    else { memcpy(host, p, hl); host[hl] = '\0'; }
    if (!host[0]) snprintf(host, cap, "0.0.0.0");
    *port = (int)n;
    return 0;
}

/* accept() failing (out of descriptors) would fail again at once, forever:
 * the listener stops until the next tick of a 1 s timer instead of spinning
 * the scheduler's loop. (The listener's argument is evhttp's, so the
 * scheduler's own accept guard, which needs state of its own, cannot serve.) */
static void accept_error(struct evconnlistener *l, void *arg)
{
    evconnlistener_disable(l);
}

static void accept_resume(evutil_socket_t fd, short what, void *arg)
{
    herd_http *h = arg;
    if (h->lis) evconnlistener_enable(h->lis);
}

static int loopback(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
    if (ss->ss_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
        if (IN6_IS_ADDR_LOOPBACK(a)) return 1;
        return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
    }
    return 0;
}

/* The base URL, and the one-time login link when once is given ("" else). */
static void links(const char *scheme, const char *host, int port, const char *once, char *url, size_t ucap,
                  char *login, size_t lcap)
{
    snprintf(url, ucap, strchr(host, ':') ? "%s://[%s]:%d" : "%s://%s:%d", scheme, host, port);
    if (once && *once) snprintf(login, lcap, "%s/login?once=%s", url, once);
    else if (lcap) login[0] = '\0';
}

int sch_http_start(herd_sched *s, herd_err *err)
{
    char host[256];
    int port = 0;
    int rc = parse_addr(s->cfg.http, host, sizeof host, &port, err);
    if (rc) return rc;
    herd_http *h = calloc(1, sizeof *h);
    if (!h || !(h->http = evhttp_new(s->base))) { free(h); return herd_err_set(err, -ENOMEM, "dashboard: out of memory"); }
    h->s = s;
    s->http = h;
    evhttp_set_max_headers_size(h->http, HTTP_MAX_HEADERS);
    evhttp_set_max_body_size(h->http, HTTP_MAX_BODY);
    evhttp_set_timeout(h->http, HTTP_TIMEOUT_S);
    evhttp_set_allowed_methods(h->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
    evhttp_set_gencb(h->http, handle, h);
    if (s->cfg.tls) evhttp_set_bevcb(h->http, tls_bev, h);
    struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(h->http, host, (ev_uint16_t)port);
    if (!bs && errno == EADDRINUSE && port) {      /* as Dask: another port, said in the log */
        bs = evhttp_bind_socket_with_handle(h->http, host, 0);
        if (bs) slog(s, HERD_LOG_WARN, "dashboard: port %d is already in use (another cluster?); serving on another port", port);
    }
    if (!bs) return herd_err_set(err, HERD_EARG, "dashboard_address %s: cannot listen there: %s", s->cfg.http, strerror(errno));
    struct timeval sec = { 1, 0 };
    if ((h->lis = evhttp_bound_socket_get_listener(bs))) {
        if (!(h->resume = event_new(s->base, -1, EV_PERSIST, accept_resume, h)) || event_add(h->resume, &sec))
            return herd_err_set(err, -ENOMEM, "dashboard: out of memory");
        evconnlistener_set_error_cb(h->lis, accept_error);
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char ip[INET6_ADDRSTRLEN] = "?";
    int bport = port;
    if (getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET) {
            inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, ip, sizeof ip);
            bport = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, ip, sizeof ip);
            bport = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        }
    }
    h->need_auth = !loopback(&ss);
    if (h->need_auth && !s->token)
        return herd_err_set(err, HERD_EARG, "dashboard_address %s is not a loopback address: it needs the cluster's token "
                            "(give a token, or bind the dashboard to 127.0.0.1)", s->cfg.http);
    if (h->need_auth && (hexrand(h->session, 32) || hexrand(h->once, 32)))
        return herd_err_set(err, -ENOMEM, "dashboard: cannot draw a random session secret");
    snprintf(h->ip, sizeof h->ip, "%s", ip);
    h->port = bport;
    /* all interfaces: the link names this host's loopback, where it also answers */
    const char *show = !strcmp(ip, "0.0.0.0") ? "127.0.0.1" : !strcmp(ip, "::") ? "::1" : ip;
    links(s->cfg.tls ? "https" : "http", show, bport, h->need_auth ? h->once : NULL, h->url, sizeof h->url,
          h->login, sizeof h->login);
    return 0;
}

void sch_http_stop(herd_sched *s)
{
    herd_http *h = s->http;
    if (!h) return;
    if (h->resume) event_free(h->resume);
    if (h->http) evhttp_free(h->http);
    OPENSSL_cleanse(h->session, sizeof h->session);
    OPENSSL_cleanse(h->once, sizeof h->once);
    free(h);
    s->http = NULL;
}

int sch_http_describe(herd_sched *s, char *out, size_t cap)
{
    herd_http *h = s->http;
    if (!h) return -HERD_EARG;
    snprintf(out, cap, "%s %s %d %s", s->cfg.tls ? "https" : "http", h->ip, h->port, h->once[0] ? h->once : "-");
    return 0;
}

int herd_sched_http_links(const char *desc, const char *host, char *url, size_t ucap, char *login, size_t lcap,
                          int *loopback_only)
{
    char scheme[8], ip[INET6_ADDRSTRLEN], once[65];
    int port;
    if (!desc || sscanf(desc, "%7s %45s %d %64s", scheme, ip, &port, once) != 4 || port < 1 || port > 65535 ||
        (strcmp(scheme, "http") && strcmp(scheme, "https")))
        return -HERD_EPROTO;
    int any = !strcmp(ip, "0.0.0.0") || !strcmp(ip, "::");
    struct in6_addr a6;
    struct in_addr a4;
    *loopback_only = (inet_pton(AF_INET, ip, &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127) ||
                     (inet_pton(AF_INET6, ip, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6));
    links(scheme, any && host && *host ? host : ip, port, strcmp(once, "-") ? once : NULL, url, ucap, login, lcap);
    return 0;
}

const char *herd_sched_http_url(const herd_sched *s)
{
    return s && s->http ? s->http->url : NULL;
}

const char *herd_sched_http_login(const herd_sched *s)
{
    return s && s->http && s->http->login[0] ? s->http->login : NULL;
}
