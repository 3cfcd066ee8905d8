/* tests/unit/test_tls_comm.c — TLS on real loopback TCP connections: a
 * server accepting with herd_tls_accept and a client dialling with herd_dial
 * + herd_tls_connect exchange framed messages through herd_conn (core/comm.h);
 * a recording TCP relay between them shows the known string never crosses
 * the wire in clear (and, as a control, that it does without TLS); and the
 * refusals — no client certificate, a certificate from another CA, an expired
 * client certificate, a server certificate for the wrong host, a peer that
 * does not speak TLS — each fail the handshake with a clear reason from
 * herd_tls_error on the side that refused. tls_server_name: a scheduler
 * whose certificate names only herd-scheduler is reached at its IP when the
 * client checks that name (set directly, or through HERD_TLS_SERVER_NAME as
 * a worker gets it), refused without it or with another name, and a worker's
 * certificate (clientAuth) never passes as the scheduler's. And peers that do not read: one
 * whose queued output passes the cap is dropped, saying why, and a close
 * that flushes first closes the socket anyway after HERD_WRITE_STALL_S.
 * One event_base, one thread. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "comm.h"
#include "security.h"
#include "../support/testutil.h"

#define SECRET "SECRET-ARG-1234"
#define DAY 86400L
#define WAIT_S 20.0

static void contains(const char *hay, const char *needle)
{
    if (!hay || !strstr(hay, needle)) fail_msg("expected \"%s\" in \"%s\"", needle, hay ? hay : "(null)");
}

static herd_tls *must(int rc, herd_tls **t, const herd_err *err)
{
    if (rc || !*t) fail_msg("unexpected error %d: %s", rc, err->msg);
    return *t;
}

/* ---- the loop ---- */
static void tick_cb(evutil_socket_t fd, short what, void *arg) {}

/* Run base until *flag is set (or fail after WAIT_S). */
static void run_until(struct event_base *base, const int *flag, const char *what)
{
    struct event *tick = event_new(base, -1, EV_PERSIST, tick_cb, NULL);
    struct timeval tv = { 0, 20000 };
    event_add(tick, &tv);
    double deadline = herd_now() + WAIT_S;
    while (!*flag && herd_now() < deadline) event_base_loop(base, EVLOOP_ONCE);
    event_free(tick);
    if (!*flag) fail_msg("timed out waiting for %s", what);
}

/* ---- server ---- */
typedef struct srv {
    struct event_base *base;
    herd_tls *tls;              /* NULL: plain TCP */
    int raw;                    /* refusal tests: own callbacks, no herd_conn */
    struct evconnlistener *lis;
    char addr[128];
    struct bufferevent *bev;    /* the accepted connection (owned by conn unless raw) */
    herd_conn *conn;
    char *got;                  /* the string the client sent */
    char peer_cn[128];
    char why[1024];
    int done;                   /* message received / connection failed */
    int closed;                 /* srv_close ran */
} srv;

static void srv_msg(herd_conn *c, const msgpack_object *m, void *ud)
{
    srv *s = ud;
    if (m->via.array.size < 2) fail_msg("short message");
    free(s->got);
    s->got = herd_obj_strdup(&m->via.array.ptr[1]);
    herd_tls_peer_name(s->bev, s->peer_cn, sizeof s->peer_cn);
    size_t n = s->got ? strlen(s->got) : 0;
    msgpack_packer *pk = herd_conn_packer(c);
    msgpack_pack_array(pk, 2);
    msgpack_pack_int(pk, OP_RESULT);
    msgpack_pack_str(pk, n + 5);
    msgpack_pack_str_body(pk, "echo:", 5);
    msgpack_pack_str_body(pk, s->got, n);
    herd_conn_end(c);
    s->done = 1;
}

static void srv_close(herd_conn *c, const char *why, void *ud)
{
    srv *s = ud;
    snprintf(s->why, sizeof s->why, "%s", why);
    s->done = 1;
    s->closed = 1;
}

static void raw_event(struct bufferevent *bev, short what, void *arg);

static void srv_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len, void *arg)
{
    srv *s = arg;
    herd_err err;
    if (s->bev) { evutil_closesocket(fd); return; }   /* one connection per test */
    s->bev = s->tls ? herd_tls_accept(s->tls, s->base, fd, &err) : bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!s->bev) fail_msg("accept: %s", err.msg);
    if (s->raw) {
        bufferevent_setcb(s->bev, NULL, NULL, raw_event, s->why);
        bufferevent_enable(s->bev, EV_READ | EV_WRITE);
        return;
    }
    s->conn = herd_conn_new(s->bev, "test-peer", srv_msg, srv_close, s);
    assert_non_null(s->conn);
}

static void srv_start(srv *s, struct event_base *base, herd_tls *tls, int raw)
{
    memset(s, 0, sizeof *s);
    s->base = base;
    s->tls = tls;
    s->raw = raw;
    herd_err err;
    s->lis = herd_listen(base, "tcp://127.0.0.1:0", srv_accept, s, s->addr, sizeof s->addr, &err);
    if (!s->lis) fail_msg("listen: %s", err.msg);
}

static void srv_stop(srv *s)
{
    if (s->conn) herd_conn_free(s->conn);
    else if (s->bev) bufferevent_free(s->bev);
    evconnlistener_free(s->lis);
    free(s->got);
}

/* Refusal tests: arg is a char[1024] that receives the reason. */
static void raw_event(struct bufferevent *bev, short what, void *arg)
{
    char *why = arg;
    if (!(what & (BEV_EVENT_ERROR | BEV_EVENT_EOF))) return;
    if (!herd_tls_error(bev, what, why, 1024))
        snprintf(why, 1024, "%s", (what & BEV_EVENT_EOF) ? "EOF" : "error");
    bufferevent_disable(bev, EV_READ | EV_WRITE);
}

/* ---- client ---- */
typedef struct cli {
    herd_conn *conn;
    struct bufferevent *bev;
    char *got;
    char peer_cn[128];
    char why[1024];
    int done;
} cli;

static void cli_msg(herd_conn *c, const msgpack_object *m, void *ud)
{
    cli *k = ud;
    free(k->got);
    k->got = herd_obj_strdup(&m->via.array.ptr[1]);
    herd_tls_peer_name(k->bev, k->peer_cn, sizeof k->peer_cn);
    k->done = 1;
}

static void cli_close(herd_conn *c, const char *why, void *ud)
{
    cli *k = ud;
    snprintf(k->why, sizeof k->why, "%s", why);
    k->done = 1;
}

/* dial addr; tls NULL: plain. Sends [OP_RUN, text]. */
static void cli_start(cli *k, struct event_base *base, const char *addr, herd_tls *tls, const char *host, const char *text)
{
    memset(k, 0, sizeof *k);
    herd_err err;
    int fd;
    if (herd_dial(addr, 5, &fd, &err)) fail_msg("dial: %s", err.msg);
    k->bev = tls ? herd_tls_connect(tls, base, fd, host, &err) : bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!k->bev) fail_msg("connect: %s", err.msg);
    k->conn = herd_conn_new(k->bev, addr, cli_msg, cli_close, k);
    assert_non_null(k->conn);
    msgpack_packer *pk = herd_conn_packer(k->conn);
    msgpack_pack_array(pk, 2);
    msgpack_pack_int(pk, OP_RUN);
    herd_pack_str(pk, text);
    herd_conn_end(k->conn);
}

static void cli_stop(cli *k)
{
    herd_conn_free(k->conn);
    free(k->got);
}

/* ---- a recording TCP relay ---- */
typedef struct relay {
    struct event_base *base;
    struct evconnlistener *lis;
    char addr[128];
    const char *target;
    struct bufferevent *a, *b;   /* client side, server side */
    char *rec;                   /* every byte seen, both directions */
    size_t len, cap;
} relay;

static void relay_rec(relay *r, struct evbuffer *in)
{
    size_t n = evbuffer_get_length(in);
    if (r->len + n > r->cap) {
        r->cap = 2 * (r->len + n) + 4096;
        r->rec = realloc(r->rec, r->cap);
        assert_non_null(r->rec);
    }
    evbuffer_copyout(in, r->rec + r->len, n);
    r->len += n;
}

static void relay_read(struct bufferevent *from, void *arg)
{
    relay *r = arg;
    struct bufferevent *to = from == r->a ? r->b : r->a;
    struct evbuffer *in = bufferevent_get_input(from);
    relay_rec(r, in);
    evbuffer_add_buffer(bufferevent_get_output(to), in);
}

static void relay_event(struct bufferevent *bev, short what, void *arg)
{
    relay *r = arg;
    if (!(what & (BEV_EVENT_ERROR | BEV_EVENT_EOF))) return;
    bufferevent_free(r->a);
    bufferevent_free(r->b);
    r->a = r->b = NULL;
}

static void relay_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len, void *arg)
{
    relay *r = arg;
    herd_err err;
    int sfd;
    if (herd_dial(r->target, 5, &sfd, &err)) fail_msg("relay dial: %s", err.msg);
    r->a = bufferevent_socket_new(r->base, fd, BEV_OPT_CLOSE_ON_FREE);
    r->b = bufferevent_socket_new(r->base, sfd, BEV_OPT_CLOSE_ON_FREE);
    assert_non_null(r->a);
    assert_non_null(r->b);
    bufferevent_setcb(r->a, relay_read, NULL, relay_event, r);
    bufferevent_setcb(r->b, relay_read, NULL, relay_event, r);
    bufferevent_enable(r->a, EV_READ | EV_WRITE);
    bufferevent_enable(r->b, EV_READ | EV_WRITE);
}

static void relay_start(relay *r, struct event_base *base, const char *target)
{
    memset(r, 0, sizeof *r);
    r->base = base;
    r->target = target;
    herd_err err;
    r->lis = herd_listen(base, "tcp://127.0.0.1:0", relay_accept, r, r->addr, sizeof r->addr, &err);
    if (!r->lis) fail_msg("relay listen: %s", err.msg);
}

static void relay_stop(relay *r)
{
    if (r->a) bufferevent_free(r->a);
    if (r->b) bufferevent_free(r->b);
    evconnlistener_free(r->lis);
    free(r->rec);
}

/* ---- credentials ---- */
typedef struct creds {
    herd_tls *sched, *worker;      /* a temporary cluster and its worker's view */
} creds;

static void creds_make(creds *c, const char *name)
{
    herd_err err;
    char **env;
    must(herd_tls_temporary(name, NULL, &c->sched, &err), &c->sched, &err);
    assert_int_equal(herd_tls_export_env(c->sched, &env, &err), 0);
    must(herd_tls_from_envp((const char *const *)env, &c->worker, &err), &c->worker, &err);
    herd_tls_envp_free(env);
}

static void creds_free(creds *c)
{
    herd_tls_free(c->sched);
    herd_tls_free(c->worker);
}

/* ---- tests ---- */
static void exchange(herd_tls *stls, herd_tls *ctls, const char *text, int via_relay, relay *r, srv *s, cli *k,
                     struct event_base *base)
{
    srv_start(s, base, stls, 0);
    const char *addr = s->addr;
    if (via_relay) { relay_start(r, base, s->addr); addr = r->addr; }
    cli_start(k, base, addr, ctls, "127.0.0.1", text);
    run_until(base, &k->done, "the echo");
    if (!k->got) fail_msg("no echo: client: %s; server: %s", k->why, s->why);
    assert_true(s->done);
    assert_non_null(s->got);
    assert_string_equal(s->got, text);
    assert_int_equal(strlen(k->got), strlen(text) + 5);
    assert_memory_equal(k->got, "echo:", 5);
    assert_string_equal(k->got + 5, text);
}

static void test_roundtrip(void **state)
{
    struct event_base *base = event_base_new();
    creds c;
    creds_make(&c, "roundtrip");
    srv s;
    cli k;
    exchange(c.sched, c.worker, SECRET, 0, NULL, &s, &k, base);
    assert_string_equal(s.peer_cn, "herd-worker");
    assert_string_equal(k.peer_cn, "herd-scheduler");
    SSL *ssl = bufferevent_openssl_get_ssl(k.bev);
    assert_non_null(ssl);
    assert_string_equal(SSL_get_version(ssl), "TLSv1.3");
    /* the client goes away without a TLS close_notify: the server reads a
     * plain end of connection, not a TLS error */
    cli_stop(&k);
    run_until(base, &s.closed, "the server to see the close");
    assert_string_equal(s.why, "connection closed by peer");
    srv_stop(&s);

    /* a message of several MiB crosses many TLS records */
    size_t big = 3u << 20;
    char *text = malloc(big + 1);
    for (size_t i = 0; i < big; i++) text[i] = (char)('a' + i % 26);
    text[big] = '\0';
    exchange(c.sched, c.worker, text, 0, NULL, &s, &k, base);
    cli_stop(&k);
    srv_stop(&s);
    free(text);
    creds_free(&c);
    event_base_free(base);
}

static void test_wire_encrypted(void **state)
{
    struct event_base *base = event_base_new();
    creds c;
    creds_make(&c, "wire");
    srv s;
    cli k;
    relay r;
    /* control: without TLS the relay sees the argument */
    exchange(NULL, NULL, SECRET, 1, &r, &s, &k, base);
    assert_non_null(memmem(r.rec, r.len, SECRET, strlen(SECRET)));
    assert_null(bufferevent_openssl_get_ssl(k.bev));
    cli_stop(&k);
    srv_stop(&s);
    relay_stop(&r);

    exchange(c.sched, c.worker, SECRET, 1, &r, &s, &k, base);
    assert_true(r.len > 500);            /* the handshake and the records went through it */
    assert_null(memmem(r.rec, r.len, SECRET, strlen(SECRET)));
    assert_null(memmem(r.rec, r.len, "echo:", 5));
    assert_string_equal(s.peer_cn, "herd-worker");
    cli_stop(&k);
    srv_stop(&s);
    relay_stop(&r);
    creds_free(&c);
    event_base_free(base);
}

/* A refused connection: server side raw (its reason via herd_tls_error),
 * client side raw too. ctls NULL: a TLS client with no certificate at all
 * (made here with OpenSSL directly, trusting ca_pem). plain: a client that
 * does not speak TLS. */
typedef struct refusal {
    char srv_why[1024];
    char cli_why[1024];
} refusal;

static int filled(const char *why) { return why[0] != '\0'; }

static void refuse(herd_tls *stls, herd_tls *ctls, const char *ca_pem, int plain, const char *host, refusal *out)
{
    struct event_base *base = event_base_new();
    srv s;
    srv_start(&s, base, stls, 1);
    herd_err err;
    int fd;
    if (herd_dial(s.addr, 5, &fd, &err)) fail_msg("dial: %s", err.msg);
    struct bufferevent *bev;
    SSL_CTX *ctx = NULL;
    if (plain) {
        bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
        /* a herd frame in clear */
        bufferevent_write(bev, "\0\0\0\x05\x92\x03\xa1x\xc0", 9);
    } else if (ctls) {
        bev = herd_tls_connect(ctls, base, fd, host, &err);
    } else {
        ctx = SSL_CTX_new(TLS_client_method());
        BIO *b = BIO_new_mem_buf(ca_pem, -1);
        X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
        assert_non_null(x);
        X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), x);
        X509_free(x);
        BIO_free(b);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        SSL *ssl = SSL_new(ctx);
        bev = bufferevent_openssl_socket_new(base, fd, ssl, BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
    }
    if (!bev) fail_msg("client: %s", err.msg);
    memset(out, 0, sizeof *out);
    bufferevent_setcb(bev, NULL, NULL, raw_event, out->cli_why);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    /* wait for the server's verdict, then the client's */
    struct event *tick = event_new(base, -1, EV_PERSIST, tick_cb, NULL);
    struct timeval tv = { 0, 20000 };
    event_add(tick, &tv);
    double deadline = herd_now() + WAIT_S;
    while (!(filled(s.why) && (plain || filled(out->cli_why))) && herd_now() < deadline) {
        event_base_loop(base, EVLOOP_ONCE);
        /* once the server has refused, close its end so the client hears of it */
        if (filled(s.why) && s.bev) { bufferevent_free(s.bev); s.bev = NULL; }
    }
    event_free(tick);
    snprintf(out->srv_why, sizeof out->srv_why, "%s", s.why);
    if (getenv("HERD_TEST_VERBOSE")) fprintf(stderr, "refused: server: %s\n         client: %s\n", out->srv_why, out->cli_why);
    if (!filled(s.why)) fail_msg("the server did not refuse the connection");
    if (!plain && !filled(out->cli_why)) fail_msg("the client did not see the refusal");
    bufferevent_free(bev);
    SSL_CTX_free(ctx);
    srv_stop(&s);
    event_base_free(base);
}

static void test_refused_no_client_cert(void **state)
{
    creds c;
    creds_make(&c, "nocert");
    char **env;
    herd_err err;
    assert_int_equal(herd_tls_export_env(c.sched, &env, &err), 0);
    refusal r;
    /* control: the same raw client setup, with the worker's certificate, is accepted
     * (the server does not refuse: covered by test_roundtrip); here none is sent */
    refuse(c.sched, NULL, env[0] + strlen("HERD_TLS_CA="), 0, NULL, &r);
    contains(r.srv_why, "the peer presented no certificate (mutual TLS requires one");
    contains(r.cli_why, "the peer requires a certificate and none was sent");
    herd_tls_envp_free(env);
    creds_free(&c);
}

static void test_refused_other_ca(void **state)
{
    creds a, b;
    creds_make(&a, "a");
    creds_make(&b, "b");
    char **aenv, **benv;
    herd_err err;
    assert_int_equal(herd_tls_export_env(a.sched, &aenv, &err), 0);
    assert_int_equal(herd_tls_export_env(b.sched, &benv, &err), 0);
    /* trusts a's CA (so it accepts the server) but holds b's certificate */
    herd_tls *mixed = NULL;
    must(herd_tls_from_pem(aenv[0] + 12, benv[1] + 14, benv[2] + 13, &mixed, &err), &mixed, &err);
    refusal r;
    refuse(a.sched, mixed, NULL, 0, "127.0.0.1", &r);
    contains(r.srv_why, "certificate verify failed: unable to get local issuer certificate");
    contains(r.srv_why, "unknown CA");
    contains(r.cli_why, "refused this side's certificate: unknown CA");
    /* b's worker as is: it refuses a's scheduler first */
    refuse(a.sched, b.worker, NULL, 0, "127.0.0.1", &r);
    contains(r.cli_why, "certificate verify failed");
    contains(r.cli_why, "unknown CA");
    contains(r.srv_why, "refused this side's certificate: unknown CA");
    herd_tls_free(mixed);
    herd_tls_envp_free(aenv);
    herd_tls_envp_free(benv);
    creds_free(&a);
    creds_free(&b);
}

/* a CA with key, a server identity for names, and a client identity with the given validity */
static void pki(const char *const *server_names, long cnb, long cna, herd_tls **server, herd_tls **client)
{
    char *ca, *cak, *sc, *sk, *cc, *ck;
    herd_err err;
    herd_tls_spec cas = { .cn = "test CA", .is_ca = 1, .not_before = -3600, .not_after = DAY };
    if (herd_tls_issue(&cas, &ca, &cak, &err)) fail_msg("%s", err.msg);
    herd_tls_spec ss = { .cn = "test-scheduler", .server = 1, .names = server_names,
                         .not_before = -3600, .not_after = DAY, .issuer_cert = ca, .issuer_key = cak };
    if (herd_tls_issue(&ss, &sc, &sk, &err)) fail_msg("%s", err.msg);
    herd_tls_spec cs = { .cn = "test-client", .client = 1, .not_before = cnb, .not_after = cna,
                         .issuer_cert = ca, .issuer_key = cak };
    if (herd_tls_issue(&cs, &cc, &ck, &err)) fail_msg("%s", err.msg);
    must(herd_tls_from_pem(ca, sc, sk, server, &err), server, &err);
    must(herd_tls_from_pem(ca, cc, ck, client, &err), client, &err);
    free(ca); free(sc); free(cc);
    herd_tls_pem_free(cak); herd_tls_pem_free(sk); herd_tls_pem_free(ck);
}

static void test_refused_expired(void **state)
{
    static const char *const local[] = { "127.0.0.1", NULL };
    herd_tls *s, *k;
    pki(local, -2 * DAY, -DAY, &s, &k);
    refusal r;
    refuse(s, k, NULL, 0, "127.0.0.1", &r);
    contains(r.srv_why, "certificate verify failed: certificate has expired (certificate \"test-client\" expired ");
    contains(r.cli_why, "refused this side's certificate: certificate expired");
    herd_tls_free(s);
    herd_tls_free(k);

    /* control: the same setup with a current client certificate works end to end */
    pki(local, -60, DAY, &s, &k);
    struct event_base *base = event_base_new();
    srv sv;
    cli cl;
    exchange(s, k, SECRET, 0, NULL, &sv, &cl, base);
    assert_string_equal(sv.peer_cn, "test-client");
    cli_stop(&cl);
    srv_stop(&sv);
    event_base_free(base);
    herd_tls_free(s);
    herd_tls_free(k);
}

static void test_refused_wrong_host(void **state)
{
    static const char *const elsewhere[] = { "example.invalid", "10.9.8.7", NULL };
    herd_tls *s, *k;
    pki(elsewhere, -60, DAY, &s, &k);
    refusal r;
    refuse(s, k, NULL, 0, "127.0.0.1", &r);
    contains(r.cli_why, "certificate verify failed: IP address mismatch (server certificate \"test-scheduler\" "
                        "is not valid for \"127.0.0.1\": wrong host; it names DNS:example.invalid, IP:10.9.8.7)");
    contains(r.srv_why, "refused this side's certificate: bad certificate");
    refuse(s, k, NULL, 0, "localhost", &r);
    contains(r.cli_why, "hostname mismatch");
    contains(r.cli_why, "not valid for \"localhost\"");
    herd_tls_free(s);
    herd_tls_free(k);
}

/* tls_server_name: the certificate is checked against that name, not the
   host dialled; the chain and the purpose are checked as ever. */
static void test_server_name(void **state)
{
    static const char *const only[] = { "herd-scheduler", NULL };
    herd_tls *s, *k;
    herd_err err;
    pki(only, -60, DAY, &s, &k);
    refusal r;
    /* without it: the IP dialled is not in the certificate */
    refuse(s, k, NULL, 0, "127.0.0.1", &r);
    contains(r.cli_why, "certificate verify failed: IP address mismatch (server certificate \"test-scheduler\" is "
                        "not valid for \"127.0.0.1\": wrong host; it names DNS:herd-scheduler)");
    /* another name */
    assert_int_equal(herd_tls_set_server_name(k, "client_kwargs.tls_server_name", "other-scheduler", &err), 0);
    refuse(s, k, NULL, 0, "127.0.0.1", &r);
    contains(r.cli_why, "hostname mismatch (server certificate \"test-scheduler\" is not valid for \"other-scheduler\" "
                        "(tls_server_name; dialled 127.0.0.1): wrong host; it names DNS:herd-scheduler)");
    /* the right one: the exchange goes through, dialling 127.0.0.1 */
    assert_int_equal(herd_tls_set_server_name(k, "client_kwargs.tls_server_name", "herd-scheduler", &err), 0);
    assert_string_equal(herd_tls_server_name(k), "herd-scheduler");
    struct event_base *base = event_base_new();
    srv sv;
    cli cl;
    exchange(s, k, SECRET, 0, NULL, &sv, &cl, base);
    assert_string_equal(cl.peer_cn, "test-scheduler");
    cli_stop(&cl);
    srv_stop(&sv);
    /* not a DNS name: refused, naming the field and the value */
    assert_int_equal(herd_tls_set_server_name(k, "client_kwargs.tls_server_name", "herd scheduler!", &err), -HERD_ECONFIG);
    contains(err.msg, "client_kwargs.tls_server_name: expected a DNS name");
    contains(err.msg, "got \"herd scheduler!\"");
    assert_string_equal(herd_tls_server_name(k), "herd-scheduler");     /* unchanged */
    for (const char *const *bad = (const char *const[]){ "", "-a", "a-", "a..b", "a_b", ".a", NULL }; *bad; bad++)
        assert_int_equal(herd_tls_server_name_check("f", *bad, &err), -HERD_ECONFIG);
    assert_int_equal(herd_tls_server_name_check("f", "sched-1.example.com", &err), 0);
    assert_int_equal(herd_tls_server_name_check("f", "10.0.0.5", &err), 0);

    /* a certificate of the same CA, for clientAuth only, naming herd-scheduler:
       it never passes as the scheduler's */
    char *ca, *cak, *wc, *wk, **senv;
    herd_tls_spec cas = { .cn = "test CA", .is_ca = 1, .not_before = -3600, .not_after = DAY };
    if (herd_tls_issue(&cas, &ca, &cak, &err)) fail_msg("%s", err.msg);
    herd_tls_spec ws = { .cn = "a-worker", .client = 1, .names = only, .not_before = -60, .not_after = DAY,
                         .issuer_cert = ca, .issuer_key = cak };
    if (herd_tls_issue(&ws, &wc, &wk, &err)) fail_msg("%s", err.msg);
    herd_tls *posing = NULL, *kk = NULL;
    must(herd_tls_from_pem(ca, wc, wk, &posing, &err), &posing, &err);
    must(herd_tls_from_pem(ca, wc, wk, &kk, &err), &kk, &err);
    assert_int_equal(herd_tls_set_server_name(kk, NULL, "herd-scheduler", &err), 0);
    refuse(posing, kk, NULL, 0, "127.0.0.1", &r);
    contains(r.cli_why, "certificate verify failed: unsuitable certificate purpose (certificate \"a-worker\" is not "
                        "for a TLS server");
    herd_tls_free(posing);
    herd_tls_free(kk);
    free(ca); free(wc);
    herd_tls_pem_free(cak); herd_tls_pem_free(wk);

    /* security: temporary with a remote scheduler: its certificate names
       herd-scheduler; a worker gets the name in its environment */
    herd_tls *client = NULL, *sched = NULL, *worker = NULL, *wsrv = NULL;
    herd_tls_ca *tca = NULL;
    assert_int_equal(herd_tls_temporary_remote("sn", &client, &tca, &err), 0);
    assert_int_equal(herd_tls_ca_server_env(tca, only, &senv, &err), 0);
    must(herd_tls_from_envp((const char *const *)senv, &sched, &err), &sched, &err);
    herd_tls_envp_free(senv);
    herd_tls_ca_free(tca);
    assert_int_equal(herd_tls_set_server_name(client, NULL, "herd-scheduler", &err), 0);
    char **wenv = NULL;
    assert_int_equal(herd_tls_export_env(client, &wenv, &err), 0);
    assert_non_null(wenv[3]);
    assert_string_equal(wenv[3], "HERD_TLS_SERVER_NAME=herd-scheduler");
    assert_null(wenv[4]);
    must(herd_tls_from_envp((const char *const *)wenv, &worker, &err), &worker, &err);
    assert_string_equal(herd_tls_server_name(worker), "herd-scheduler");
    exchange(sched, worker, SECRET, 0, NULL, &sv, &cl, base);
    assert_string_equal(sv.peer_cn, "herd-worker");
    cli_stop(&cl);
    srv_stop(&sv);
    /* the worker's own identity posing as the scheduler: refused */
    must(herd_tls_from_pem(wenv[0] + 12, wenv[1] + 14, wenv[2] + 13, &wsrv, &err), &wsrv, &err);
    refuse(wsrv, worker, NULL, 0, "127.0.0.1", &r);
    contains(r.cli_why, "this side refused the scheduler's certificate: certificate verify failed");
    herd_tls_envp_free(wenv);
    herd_tls_free(wsrv);
    herd_tls_free(worker);
    herd_tls_free(sched);
    herd_tls_free(client);
    event_base_free(base);
    herd_tls_free(s);
    herd_tls_free(k);
}

static void test_refused_plain_peer(void **state)
{
    creds c;
    creds_make(&c, "plain");
    refusal r;
    refuse(c.sched, NULL, NULL, 1, NULL, &r);
    contains(r.srv_why, "does not speak TLS");
    creds_free(&c);
}

/* ---- peers that do not read ---- */
/* A plain client socket that never reads, with a small receive buffer, and
 * the server's herd_conn for it. */
static int non_reader(struct event_base *base, srv *s)
{
    srv_start(s, base, NULL, 0);
    herd_err err;
    int fd;
    if (herd_dial(s->addr, 5, &fd, &err)) fail_msg("dial: %s", err.msg);
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    double end = herd_now() + WAIT_S;
    while (!s->conn && herd_now() < end) event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    assert_non_null(s->conn);
    return fd;
}

static void send_chunk(herd_conn *c, size_t n)
{
    static char chunk[64 << 10];
    msgpack_packer *pk = herd_conn_packer(c);
    msgpack_pack_array(pk, 2);
    msgpack_pack_int(pk, OP_RESULT);
    msgpack_pack_bin(pk, n);
    msgpack_pack_bin_body(pk, chunk, n);
    herd_conn_end(c);
}

/* Output queued past the cap and none of it taken: the connection fails,
 * saying why — after HERD_WRITE_STALL_S, or at once past twice the cap. */
static void test_slow_reader_dropped(void **state)
{
    struct event_base *base = event_base_new();
    srv s;
    int fd = non_reader(base, &s);
    herd_conn_set_limits(s.conn, HERD_MAX_FRAME, 1u << 20);
    struct evbuffer *out = bufferevent_get_output(s.bev);
    size_t sent = 0;
    /* keep a little over the cap queued (the kernel's buffers take some
     * first), never twice the cap, until the stall drops it */
    struct event *tick = event_new(base, -1, EV_PERSIST, tick_cb, NULL);
    struct timeval tv = { 0, 20000 };
    event_add(tick, &tv);
    double end = herd_now() + WAIT_S;
    while (!s.closed && herd_now() < end && sent < (256u << 20)) {
        if (evbuffer_get_length(out) <= (1u << 20) + (256u << 10)) {
            send_chunk(s.conn, 64 << 10);
            sent += 64 << 10;
        }
        event_base_loop(base, EVLOOP_ONCE);
    }
    event_free(tick);
    assert_true(s.closed);
    contains(s.why, "does not read");
    contains(s.why, "the cap is 1048576) and none taken for 5s");
    close(fd);
    srv_stop(&s);

    fd = non_reader(base, &s);
    herd_conn_set_limits(s.conn, HERD_MAX_FRAME, 1u << 20);
    for (int i = 0; i < 256 && !s.closed; i++) send_chunk(s.conn, 64 << 10);   /* 16 MiB at once */
    run_until(base, &s.closed, "the flooded reader to be dropped");
    contains(s.why, "over twice the cap of 1048576");
    close(fd);
    srv_stop(&s);
    herd_event_base_drain_free(base);
}

/* A close that flushes first does not wait forever for a peer that does not
 * read: its socket is closed within HERD_WRITE_STALL_S. */
static void test_close_after_flush_bounded(void **state)
{
    struct event_base *base = event_base_new();
    srv s;
    int fd = non_reader(base, &s);
    int before = tu_count_fds();
    for (int i = 0; i < 256; i++) send_chunk(s.conn, 64 << 10);  /* 16 MiB: more than the sockets hold */
    herd_conn_close_after_flush(s.conn);
    s.conn = NULL;                             /* the close owns it now */
    s.bev = NULL;
    int gone = 0;
    struct event *tick = event_new(base, -1, EV_PERSIST, tick_cb, NULL);
    struct timeval tv = { 0, 20000 };
    event_add(tick, &tv);
    double end = herd_now() + WAIT_S;
    while (!(gone = tu_count_fds() == before - 1) && herd_now() < end) event_base_loop(base, EVLOOP_ONCE);
    event_free(tick);
    assert_true(gone);
    close(fd);
    srv_stop(&s);
    herd_event_base_drain_free(base);
}

int main(void)
{
    herd_block_sigpipe();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_wire_encrypted),
        cmocka_unit_test(test_refused_no_client_cert),
        cmocka_unit_test(test_refused_other_ca),
        cmocka_unit_test(test_refused_expired),
        cmocka_unit_test(test_refused_wrong_host),
        cmocka_unit_test(test_server_name),
        cmocka_unit_test(test_refused_plain_peer),
        cmocka_unit_test(test_slow_reader_dropped),
        cmocka_unit_test(test_close_after_flush_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
