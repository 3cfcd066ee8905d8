/* tests/integration/test_peernet.c — the data plane across hosts, with real
 * worker processes on real TCP and TLS sockets: held values (1 KiB, 300 MiB)
 * move between workers of TCP and TLS clusters and reach the client; a peer
 * without the token is refused and logged; a malformed transfer message
 * closes that one connection and the flow still completes; an address
 * (remote) client gets held results; data_transfer: relay moves everything
 * through the scheduler, streamed (no size limit); a holder
 * that cannot be reached (HERD_PEER_ADDRESS refuses) is relayed, said once.
 *
 * The workers' own log lines (stderr) are checked by sending the test
 * process's stderr, which the workers inherit, to a file for the flow run. */
#include <herd/herd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "proto.h"         /* opcodes, version, roles */
#include "../support/testutil.h"
#include "../support/blobs.h"
#include "../support/rawwire.h"   /* the peer protocol by hand */

#define TOKEN "peernet-token-0123456789"
#define CK2 "{n_workers: 2, threads_per_worker: 1, resources: {slot: 1}}"

/* ---- the workers' stderr in a file ---- */
typedef struct capture { char dir[128], path[200]; int saved; } capture;

static void capture_begin(capture *c)
{
    tu_mkdtemp(c->dir, sizeof c->dir);
    snprintf(c->path, sizeof c->path, "%s/stderr", c->dir);
    fflush(stderr);
    c->saved = dup(2);
    int fd = open(c->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(c->saved >= 0 && fd >= 0);
    dup2(fd, 2);
    close(fd);
}

static void capture_end(capture *c)
{
    fflush(stderr);
    dup2(c->saved, 2);
    close(c->saved);
}

/* Lines of the captured file holding w1 and w2 (NULL: any). */
static int captured_lines(const capture *c, const char *w1, const char *w2)
{
    char *text = tu_read_file(c->path);
    int n = 0;
    for (char *line = text, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = '\0';
        if (strstr(line, w1) && (!w2 || strstr(line, w2))) n++;
    }
    free(text);
    return n;
}

static void capture_free(capture *c) { tu_rmtree(c->dir); }

/* The peer address worker name serves at, from the scheduler's debug line. */
static void peer_address_of(tu_log *log, const char *name, char *out, size_t cap)
{
    char what[96];
    snprintf(what, sizeof what, "worker %s serves held values at ", name);
    assert_true(tu_log_wait_line(log, what, NULL, TU_WAIT_S));
    pthread_mutex_lock(&log->mu);
    const char *at = strstr(log->text, what);
    assert_non_null(at);
    at += strlen(what);
    size_t n = strcspn(at, "\n");
    snprintf(out, cap, "%.*s", (int)n, at);
    pthread_mutex_unlock(&log->mu);
}

/* ---- tests ---- */
static void test_tcp_values(void **state)
{
    values_between_workers(CK2, "{listen: 'tcp://127.0.0.1:0'}", false);
}

static void test_tls_values(void **state)
{
    values_between_workers(CK2, "{listen: 'tls://127.0.0.1:0', security: temporary}", false);
}

/* A TCP peer server: without the token, refused and logged; a malformed
 * message closes that connection only, and the flow's transfers go on. */
static void test_tcp_peer_refusals(void **state)
{
    capture cap;
    capture_begin(&cap);
    tu_log log;
    tu_log_init(&log);
    herd_runner *r = tu_flow("{n_workers: 1, threads_per_worker: 1}",
                             "{listen: 'tcp://127.0.0.1:0', token: " TOKEN ", log_level: debug}", 1, &log);
    herd_future *p = tu_submit(r, "t_make", herd_tuple("Iin", (int64_t)65536, 7), NULL);
    wait_completed(p);
    char addr[200];
    peer_address_of(&log, "local-0", addr, sizeof addr);
    assert_ptr_equal(strstr(addr, "tcp://127.0.0.1:"), addr);

    int fd = tcp_connect(addr);
    peer_hello(fd, "not-the-token");
    expect_refuse(fd, "wrong or missing token");
    close(fd);

    fd = tcp_connect(addr);
    peer_hello(fd, TOKEN);
    send_all(fd, "\x00\x00\x00\x04\xc1\xc1\xc1\xc1", 8);           /* not msgpack */
    assert_null(recv_msg(fd));
    close(fd);
    fd = tcp_connect(addr);
    peer_hello(fd, TOKEN);
    send_all(fd, "\x00\x10\x00\x00", 4);                           /* a 1 MiB frame: over a peer's limit */
    assert_null(recv_msg(fd));
    close(fd);

    /* the flow goes on: a dependent and the client read the value */
    herd_future *c = tu_submit(r, "t_check", herd_tuple("vIinn", herd_future_arg(p), (int64_t)65536, 7), NULL);
    assert_int_equal(herd_as_int(herd_at(result_of(c), 0)), 1);
    assert_true(blob_ok(result_of(p), 65536, 7));
    tu_flow_end(r);
    capture_end(&cap);
    assert_int_equal(captured_lines(&cap, "refused a peer connection from 127.0.0.1:", "wrong or missing token"), 1);
    assert_int_equal(captured_lines(&cap, "closing the peer connection from 127.0.0.1:", "malformed msgpack"), 1);
    assert_int_equal(captured_lines(&cap, "closing the peer connection from 127.0.0.1:", "frame length 1048576"), 1);
    assert_false(tu_log_has_line(&log, "left", NULL));             /* no worker was lost over it */
    tu_log_free(&log);
    capture_free(&cap);
}

/* An address client of a `herd scheduler`-style cluster (here the flow's
 * own TCP scheduler, reached by a second runner): its held results are
 * fetched from the holder directly. */
static void test_address_client(void **state)
{
    herd_runner *r = tu_flow("{n_workers: 1, threads_per_worker: 1}",
                             "{listen: 'tcp://127.0.0.1:0', token: " TOKEN "}", 1, NULL);
    char ck[300];
    snprintf(ck, sizeof ck, "{token: " TOKEN "}");
    herd_runner_opts o = { .address = herd_runner_address(r), .client_kwargs = ck };
    herd_runner *a;
    herd_err err = { 0 };
    if (herd_runner_new(&a, &o, &err) || herd_flow_begin(a, "address-client", &err)) fail_msg("%s", err.msg);
    const int64_t n = (int64_t)200 << 20;                          /* over the 191 MiB a message can carry */
    herd_future *p = tu_submit(a, "t_make", herd_tuple("Iin", n, 11), NULL);
    assert_true(blob_ok(result_of(p), (size_t)n, 11));
    herd_future *q = tu_submit(a, "t_make", herd_tuple("Iin", (int64_t)4096, 12), NULL);
    wait_completed(q);                                             /* not read: pulled at the flow run's end */
    assert_int_equal(herd_flow_end(a, false, &err), 0);
    assert_true(blob_ok(result_of(q), 4096, 12));
    herd_runner_free(a);
    tu_flow_end(r);
}

/* data_transfer: relay: every held value goes through the scheduler, to
 * workers and to the client, streamed: 200 MiB (over the 191 MiB a message
 * may carry) reaches the other worker and the client. */
static void test_forced_relay(void **state)
{
    capture cap;
    capture_begin(&cap);
    tu_log log;
    tu_log_init(&log);
    herd_runner *r = tu_flow("{n_workers: 2, threads_per_worker: 1}",
                             "{listen: 'tcp://127.0.0.1:0', data_transfer: relay}", 2, &log);
    const int64_t sizes[] = { 4096, (int64_t)64 << 20 };
    for (int i = 0; i < 2; i++) {
        herd_future *p = tu_submit(r, "t_make", herd_tuple("Iin", sizes[i], 20 + i), "{workers: [local-0]}");
        herd_future *c = tu_submit(r, "t_check", herd_tuple("vIinn", herd_future_arg(p), sizes[i], 20 + i),
                                   "{workers: [local-1]}");
        const herd_value *v = result_of(c);
        assert_int_equal(herd_as_int(herd_at(v, 0)), 1);
        assert_string_equal(herd_as_str(herd_at(v, 1)), "local-1");
        assert_true(blob_ok(result_of(p), (size_t)sizes[i], 20 + i));
        herd_future_release(c);
        herd_future_release(p);
    }
    /* over the old one-message limit (191 MiB): streamed through the scheduler */
    herd_future *big = tu_submit(r, "t_make", herd_tuple("Iin", (int64_t)200 << 20, 22), "{workers: [local-0]}");
    herd_future *c = tu_submit(r, "t_check", herd_tuple("vIinn", herd_future_arg(big), (int64_t)200 << 20, 22),
                               "{workers: [local-1]}");
    assert_int_equal(herd_as_int(herd_at(result_of(c), 0)), 1);
    assert_true(blob_ok(result_of(big), (size_t)200 << 20, 22));
    herd_future_release(c);
    herd_future_release(big);
    tu_flow_end(r);
    capture_end(&cap);
    /* forced, not for want of a connection: nothing says it cannot reach a peer */
    assert_int_equal(captured_lines(&cap, "cannot reach the worker at", NULL), 0);
    assert_false(tu_log_has_line(&log, "cannot reach the worker at", NULL));
    tu_log_free(&log);
    capture_free(&cap);
}

/* Holders that cannot be reached (they give an address that refuses): the
 * worker and the client fetch through the scheduler, each saying so once
 * for that holder however many values it relays. */
static void test_relay_unreachable(void **state)
{
    capture cap;
    capture_begin(&cap);
    setenv("HERD_PEER_ADDRESS", "tcp://127.0.0.1:1", 1);           /* the workers inherit it; port 1 refuses */
    tu_log log;
    tu_log_init(&log);
    herd_runner *r = tu_flow("{n_workers: 2, threads_per_worker: 1}", "{listen: 'tcp://127.0.0.1:0'}", 2, &log);
    unsetenv("HERD_PEER_ADDRESS");
    for (int i = 0; i < 3; i++) {
        const int64_t n = (int64_t)(i + 1) << 20;
        herd_future *p = tu_submit(r, "t_make", herd_tuple("Iin", n, 30 + i), "{workers: [local-0]}");
        herd_future *c = tu_submit(r, "t_check", herd_tuple("vIinn", herd_future_arg(p), n, 30 + i),
                                   "{workers: [local-1]}");
        const herd_value *v = result_of(c);
        assert_int_equal(herd_as_int(herd_at(v, 0)), 1);
        assert_string_equal(herd_as_str(herd_at(v, 1)), "local-1");
        assert_true(blob_ok(result_of(p), (size_t)n, 30 + i));
        herd_future_release(c);
        herd_future_release(p);
    }
    tu_flow_end(r);
    capture_end(&cap);
    assert_int_equal(captured_lines(&cap, "worker local-1: cannot reach the worker at tcp://127.0.0.1:1",
                                    "relayed through the scheduler"), 1);
    int said = 0;
    pthread_mutex_lock(&log.mu);
    for (const char *at = log.text; (at = strstr(at, "cannot reach the worker at tcp://127.0.0.1:1")); at++) said++;
    pthread_mutex_unlock(&log.mu);
    assert_int_equal(said, 1);
    tu_log_free(&log);
    capture_free(&cap);
}

int main(int argc, char **argv)
{
    herd_init(&argc, &argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tcp_peer_refusals),
        cmocka_unit_test(test_address_client),
        cmocka_unit_test(test_forced_relay),
        cmocka_unit_test(test_relay_unreachable),
        cmocka_unit_test(test_tcp_values),
        cmocka_unit_test(test_tls_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
