/* tests/unit/test_peer.c — core/peer.c on its own, on real sockets: the peer
 * server over a Unix socket, TCP and TLS serves a store's values to
 * herd_peer_fetch (several fetching at once), says when it does not hold a
 * key, refuses a wrong token; a peer that is not there is -HERD_ECLOSED (what
 * makes a reader relay); the fetch budget admits by bytes in flight and
 * always admits one fetch. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "peer.h"
#include "comm.h"
#include "../support/testutil.h"

#define TOKEN "peer-unit-token"

static herd_value *big_value(size_t n, unsigned char fill)
{
    unsigned char *buf = malloc(n);
    assert_non_null(buf);
    memset(buf, fill, n);
    herd_value *m = herd_map();
    herd_map_set(m, "data", herd_bytes_take(buf, n));
    herd_map_set(m, "name", herd_str("v"));
    return m;
}

static herd_store *store_with(uint64_t key, herd_value *v)
{
    herd_store *st = herd_store_new();
    assert_non_null(st);
    assert_int_equal(herd_store_put_value(st, key, v, herd_wire_size(v)), 0);
    return st;
}

typedef struct fetcher { const char *addr; herd_peer_auth auth; uint64_t key; int rc; herd_value *v; pthread_t th; } fetcher;

static void *fetch_main(void *arg)
{
    fetcher *f = arg;
    herd_err err = { 0 };
    f->rc = herd_peer_fetch(f->addr, &f->auth, f->key, 30, &f->v, &err);
    return NULL;
}

/* A server at listen (tls: credentials or NULL): four fetchers at once get
 * the 16 MiB value; a key it does not hold, a wrong token. */
static void serve_and_fetch(const char *listen, herd_tls *tls)
{
    herd_value *v = big_value((size_t)16 << 20, 0x5a);
    herd_value *want = herd_value_copy(v);
    herd_store *st = store_with(42, v);
    herd_peer_server *ps;
    herd_err err = { 0 };
    if (herd_peer_server_start(&ps, listen, TOKEN, tls, st, "unit", &err)) fail_msg("%s", err.msg);
    const char *addr = herd_peer_server_address(ps);
    herd_fetch_budget b;
    assert_int_equal(herd_fetch_budget_init(&b, (size_t)20 << 20), 0);   /* room for one at a time */
    fetcher f[4];
    for (int i = 0; i < 4; i++) {
        f[i] = (fetcher){ .addr = addr, .auth = { TOKEN, tls, &b }, .key = 42 };
        assert_int_equal(pthread_create(&f[i].th, NULL, fetch_main, &f[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(f[i].th, NULL);
        assert_int_equal(f[i].rc, 0);
        assert_true(herd_value_equal(f[i].v, want));
        herd_value_free(f[i].v);
    }
    assert_int_equal(herd_fetch_budget_try(&b, (size_t)20 << 20), 0);    /* everything was given back */
    herd_fetch_budget_release(&b, (size_t)20 << 20);

    herd_value *out = NULL;
    herd_peer_auth auth = { TOKEN, tls, NULL };
    assert_int_equal(herd_peer_fetch(addr, &auth, 43, 30, &out, &err), -ENOENT);
    assert_null(out);
    assert_non_null(strstr(err.msg, "does not hold"));
    herd_peer_auth wrong = { "not-the-token", tls, NULL };
    assert_int_equal(herd_peer_fetch(addr, &wrong, 42, 30, &out, &err), -HERD_EAUTH);
    assert_non_null(strstr(err.msg, "wrong or missing token"));
    /* the server goes on serving */
    assert_int_equal(herd_peer_fetch(addr, &auth, 42, 30, &out, &err), 0);
    herd_value_free(out);

    herd_fetch_budget_destroy(&b);
    herd_peer_server_stop(ps);
    herd_store_free(st);
    herd_value_free(want);
}

static void test_unix(void **state)
{
    char dir[64], listen[128];
    tu_mkdtemp(dir, sizeof dir);
    snprintf(listen, sizeof listen, "unix://%s/peer.sock", dir);
    serve_and_fetch(listen, NULL);
    tu_rmtree(dir);
}

static void test_tcp(void **state) { serve_and_fetch("tcp://127.0.0.1:0", NULL); }

static void test_tls(void **state)
{
    herd_tls *tls;
    herd_err err = { 0 };
    if (herd_tls_temporary("peer-unit", NULL, &tls, &err)) fail_msg("%s", err.msg);
    serve_and_fetch("tls://127.0.0.1:0", tls);
    /* a plain fetch of a TLS peer is refused before anything is sent */
    herd_value *v = big_value(4096, 1);
    herd_store *st = store_with(7, v);
    herd_peer_server *ps;
    if (herd_peer_server_start(&ps, "tls://127.0.0.1:0", TOKEN, tls, st, "unit", &err)) fail_msg("%s", err.msg);
    herd_value *out = NULL;
    herd_peer_auth plain = { TOKEN, NULL, NULL };
    assert_int_equal(herd_peer_fetch(herd_peer_server_address(ps), &plain, 7, 30, &out, &err), -HERD_ECONFIG);
    assert_non_null(strstr(err.msg, "no TLS credentials"));
    herd_peer_server_stop(ps);
    herd_store_free(st);
    herd_tls_free(tls);
}

/* Nobody there: -HERD_ECLOSED at once (not retried), so the reader relays. */
static void test_unreachable(void **state)
{
    herd_value *out = NULL;
    herd_err err = { 0 };
    herd_peer_auth auth = { TOKEN, NULL, NULL };
    assert_int_equal(herd_peer_fetch("tcp://127.0.0.1:1", &auth, 1, 30, &out, &err), -HERD_ECLOSED);
    assert_non_null(strstr(err.msg, "cannot reach peer tcp://127.0.0.1:1"));
    assert_int_equal(herd_peer_fetch("unix:///nonexistent/peer.sock", &auth, 1, 30, &out, &err), -HERD_ECLOSED);
    assert_null(out);
}

/* The budget: fetches fit while the bytes in flight stay within the cap;
 * one always fits when nothing is in flight, however large. */
static void test_budget(void **state)
{
    herd_fetch_budget b;
    assert_int_equal(herd_fetch_budget_init(&b, 100), 0);
    assert_int_equal(herd_fetch_budget_try(&b, 1000), 0);      /* alone: admitted though over the cap */
    assert_int_equal(herd_fetch_budget_try(&b, 1), -EAGAIN);   /* nothing beside it */
    herd_fetch_budget_release(&b, 1000);
    assert_int_equal(herd_fetch_budget_try(&b, 60), 0);
    assert_int_equal(herd_fetch_budget_try(&b, 40), 0);
    assert_int_equal(herd_fetch_budget_try(&b, 1), -EAGAIN);
    herd_fetch_budget_release(&b, 60);
    herd_fetch_budget_acquire(&b, 60);                          /* fits again: does not wait */
    herd_fetch_budget_release(&b, 100);
    assert_int_equal(herd_fetch_budget_try(&b, 100), 0);
    herd_fetch_budget_release(&b, 100);
    herd_fetch_budget_destroy(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_budget),
        cmocka_unit_test(test_unreachable),
        cmocka_unit_test(test_unix),
        cmocka_unit_test(test_tcp),
        cmocka_unit_test(test_tls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
