/* tests/integration/test_relay.c — the relay streams values through the
 * scheduler (data_transfer: relay; FETCH, VALUE, CHUNK, MORE) with no size
 * limit: 1.5 GiB between two worker processes over TCP, 0 B..300 MiB over
 * TLS and between worker threads. A fake holder speaking the wire by hand
 * (rawwire.h) drives the rest deterministically: a reader that dies
 * mid-transfer makes the scheduler stop its holder (MORE -1) and the rest is
 * dropped; a holder that leaves mid-transfer has its value recomputed and the
 * reader's result is right; and bad relay messages (an unknown transfer id,
 * a CHUNK past what was allowed, one past the end, an oversized one) close
 * that connection with a log line naming what was wrong, never failing an
 * innocent task. */
#include <herd/herd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <signal.h>

#include "proto.h"
#include "relay.h"
#include "../support/testutil.h"
#include "../support/blobs.h"
#include "../support/rawwire.h"

#define TOKEN "relay-token-0123456789"
#define CK2 "{n_workers: 2, threads_per_worker: 1, resources: {slot: 1}}"

/* 1.5 GiB through the relay over TCP. Under ThreadSanitizer the reader's RSS
 * while it takes the value in is about six times the value (TSan's shadow
 * of its buffers: measured 9.6 GiB), past the 80% of the memory_limit that
 * the machine's memory gives it, and a paused worker starts no task; and
 * putting the value together there (memcpy under TSan) kept its loop from
 * heartbeats for over 30 s. So in a TSan build the workers have no
 * memory_limit and 5 minutes between heartbeats (this is a test of the
 * relay). */
static void test_relay_big_tcp(void **state)
{
    herd_runner *r = tu_flow(TU_TSAN ? "{n_workers: 2, threads_per_worker: 1, memory_limit: 0}"
                                     : "{n_workers: 2, threads_per_worker: 1}",
                             TU_TSAN ? "{listen: 'tcp://127.0.0.1:0', data_transfer: relay, heartbeat_timeout: 300}"
                                     : "{listen: 'tcp://127.0.0.1:0', data_transfer: relay}", 2, NULL);
    const int64_t n = (int64_t)1536 << 20;
    herd_future *p = tu_submit(r, "t_make", herd_tuple("Iin", n, 41), "{workers: [local-0]}");
    herd_future *c = tu_submit(r, "t_check", herd_tuple("vIinn", herd_future_arg(p), n, 41), "{workers: [local-1]}");
    const herd_value *v = result_of(c);
    assert_int_equal(herd_as_int(herd_at(v, 0)), 1);
    assert_string_equal(herd_as_str(herd_at(v, 1)), "local-1");
    herd_future_release(c);
    herd_future_release(p);
    tu_flow_end(r);
}

static void test_relay_tls(void **state)
{
    values_between_workers(CK2, "{listen: 'tls://127.0.0.1:0', security: temporary, data_transfer: relay}", false);
}

static void test_relay_threads(void **state)
{
    values_between_workers("{n_workers: 2, threads_per_worker: 1, processes: false, resources: {slot: 1}}",
                           "{data_transfer: relay}", false);
}

/* ---- a fake holder: a worker by hand ---- */
typedef struct fake { int fd; char *buf; size_t len, cap, off; const char *stage; } fake;

/* The next message (decoded), or NULL when the connection closed. */
static herd_value *next_msg(fake *f)
{
    double end = tu_now() + 30;
    for (;;) {
        if (f->len - f->off >= 4) {
            uint32_t be;
            memcpy(&be, f->buf + f->off, 4);
            size_t flen = ntohl(be);
            if (f->len - f->off >= 4 + flen) {
                /* one frame may hold several messages: split it, each is one msgpack object */
                size_t used = 0;
                herd_value *v = NULL;
                msgpack_unpacked u;
                msgpack_unpacked_init(&u);
                size_t at = f->off + 4, stop = f->off + 4 + flen;
                if (msgpack_unpack_next(&u, f->buf, stop, &at) != MSGPACK_UNPACK_SUCCESS) fail_msg("bad frame");
                used = at - (f->off + 4);
                msgpack_unpacked_destroy(&u);
                herd_err err;
                if (herd_value_decode(f->buf + f->off + 4, used, &v, &err)) fail_msg("decode: %s", err.msg);
                if (used == flen) f->off += 4 + flen;
                else {                          /* keep the rest as a frame of its own */
                    f->off += used;
                    uint32_t nb = htonl((uint32_t)(flen - used));
                    memcpy(f->buf + f->off, &nb, 4);
                }
                return v;
            }
        }
        if (f->off) { memmove(f->buf, f->buf + f->off, f->len - f->off); f->len -= f->off; f->off = 0; }
        if (f->cap - f->len < 65536) f->buf = realloc(f->buf, f->cap = f->cap * 2 + 65536);
        struct pollfd p = { .fd = f->fd, .events = POLLIN };
        if (tu_now() > end) fail_msg("no message within 30s (%s)", f->stage ? f->stage : "");
        if (poll(&p, 1, 100) <= 0) continue;
        ssize_t n = recv(f->fd, f->buf + f->len, f->cap - f->len, 0);
        if (n <= 0) return NULL;
        f->len += (size_t)n;
    }
}

/* Skip messages until one of opcode op (returned), or NULL at close. */
static herd_value *wait_op(fake *f, int op)
{
    herd_value *m;
    while ((m = next_msg(f))) {
        if (herd_as_int(herd_at(m, 0)) == op) return m;
        herd_value_free(m);
    }
    return NULL;
}

static void fake_open(fake *f, const char *address, const char *name)
{
    memset(f, 0, sizeof *f);
    f->fd = raw_connect(address);
    send_value(f->fd, herd_tuple("iiissinIs", OP_HELLO, HERD_PROTO_VERSION, ROLE_WORKER, TOKEN, name, 1,
                                 (int64_t)getpid(), "fakehost"));
    send_value(f->fd, herd_tuple("is", OP_PEER, "tcp://127.0.0.1:1"));        /* unreachable: everyone relays */
    herd_value *w = wait_op(f, OP_WELCOME);
    assert_non_null(w);
    herd_value_free(w);
}

static void fake_close(fake *f)
{
    close(f->fd);
    free(f->buf);
}

/* t_make(n, seed)'s value as the fake makes it, packed. */
static char *blob_packed(size_t n, int64_t seed, size_t *len)
{
    unsigned char *d = malloc(n);
    for (size_t off = 0; off < n; off += BLOCK) memset(d + off, pattern(seed, off / BLOCK), n - off < BLOCK ? n - off : BLOCK);
    herd_value *v = herd_map();
    herd_map_set(v, "worker", herd_str("fake"));
    herd_map_set(v, "pid", herd_int(1));
    herd_map_set(v, "data", herd_bytes_take(d, n));
    char *buf;
    herd_err err;
    assert_int_equal(herd_value_encode(v, &buf, len, &err), 0);
    herd_value_free(v);
    return buf;
}

/* The fake runs the producer it is sent (RUN) and says it holds n bytes. */
static void fake_hold(fake *f, size_t n)
{
    herd_value *run = wait_op(f, OP_RUN);
    assert_non_null(run);
    int64_t key = herd_as_int(herd_at(run, 1)), attempt = herd_as_int(herd_at(run, 4));
    herd_value_free(run);
    send_value(f->fd, herd_tuple("iIinIiI", OP_DONE, key, 1, (int64_t)1000, (int)attempt, (int64_t)n));
}

static void send_chunk(int fd, int64_t xfer, const char *p, size_t n)
{
    send_value(fd, herd_tuple("iIv", OP_CHUNK, xfer, herd_bytes(p, n)));
}

/* A producer held by the fake (pinned there, recomputed elsewhere once it
 * leaves) and its consumer on local-0, relayed. */
static void pair(herd_runner *r, const char *fname, int64_t n, int64_t seed, const char *cann, herd_future **p,
                 herd_future **c)
{
    char ann[200];
    snprintf(ann, sizeof ann, "{workers: [%s], allow_other_workers: true}", fname);
    *p = tu_submit(r, "t_make", herd_tuple("Iin", n, seed), ann);
    *c = tu_submit(r, "t_check", herd_tuple("vIinn", herd_future_arg(*p), n, seed), cann);
}

static void consumer_right(herd_future *c)
{
    const herd_value *v = result_of(c);
    assert_int_equal(herd_as_int(herd_at(v, 0)), 1);
}

/* One bad relay message from a holder: the scheduler closes that
 * connection, logs why, and the consumer still gets the right value. */
static void bad_round(herd_runner *r, const char *address, tu_log *log, int variant, const char *want)
{
    char name[32];
    snprintf(name, sizeof name, "fake%d", variant);
    fake f;
    fake_open(&f, address, name);
    size_t len;
    char *packed = blob_packed(4096, 60 + variant, &len);
    herd_future *p, *c;
    pair(r, name, 4096, 60 + variant, "{workers: [local-0]}", &p, &c);
    fake_hold(&f, len);
    herd_value *fe = wait_op(&f, OP_FETCH);
    assert_non_null(fe);
    int64_t xfer = herd_as_int(herd_at(fe, 2));
    herd_value_free(fe);
    switch (variant) {
    case 0:                                  /* a transfer id never given */
        send_value(f.fd, herd_tuple("iIIs", OP_VALUE, xfer + 1000, (int64_t)len, NULL));
        break;
    case 1:                                  /* a CHUNK after the end */
        send_value(f.fd, herd_tuple("iIIn", OP_VALUE, xfer, (int64_t)len));
        send_chunk(f.fd, xfer, packed, len);
        send_chunk(f.fd, xfer, packed, 10);
        break;
    case 2: {                                /* more than a CHUNK may hold */
        send_value(f.fd, herd_tuple("iIIn", OP_VALUE, xfer, (int64_t)len));
        char *big = calloc(1, HERD_RELAY_CHUNK + 1);
        send_chunk(f.fd, xfer, big, HERD_RELAY_CHUNK + 1);
        free(big);
        break;
    }
    case 3:                                  /* a CHUNK before its VALUE */
        send_chunk(f.fd, xfer, packed, 10);
        break;
    case 4:                                  /* more than it said (and was allowed) */
        send_value(f.fd, herd_tuple("iIIn", OP_VALUE, xfer, (int64_t)100));
        send_chunk(f.fd, xfer, packed, 200);
        break;
    }
    assert_true(read_until_closed(f.fd, NULL));
    fake_close(&f);
    free(packed);
    consumer_right(c);                       /* from the recomputed value, or the whole one sent first */
    assert_int_equal(herd_future_state(c), HERD_COMPLETED);
    if (!tu_log_has_line(log, want, NULL)) fail_msg("no log line with \"%s\"", want);
    herd_future_release(c);
    herd_future_release(p);
}

/* The fake has no slot resource: it is sent no consumer. log is made here,
 * quiet (the warnings are expected); address gets the scheduler's. */
static herd_runner *fake_flow(tu_log *log, char *address, size_t cap, int nworkers)
{
    tu_log_init(log);
    log->echo_level = HERD_LOG_ERROR + 1;
    herd_runner *r = tu_flow(nworkers == 1 ? "{n_workers: 1, threads_per_worker: 1, resources: {slot: 1}}" : CK2,
                             "{listen: 'tcp://127.0.0.1:0', token: " TOKEN ", data_transfer: relay}", nworkers, log);
    snprintf(address, cap, "%s", herd_runner_address(r));
    return r;
}

static void test_bad_relay_messages(void **state)
{
    tu_log log;
    char address[128];
    herd_runner *r = fake_flow(&log, address, sizeof address, 1);
    bad_round(r, address, &log, 0, "unknown relay transfer id");
    bad_round(r, address, &log, 1, "which is over or not this worker's");
    bad_round(r, address, &log, 2, "CHUNK: field 'bytes' holds 1048577 bytes");
    bad_round(r, address, &log, 3, "CHUNK before VALUE");
    bad_round(r, address, &log, 4, "past what relay transfer");
    assert_false(tu_log_has_line(&log, "t_check", "failed"));
    tu_flow_end(r);
    tu_log_free(&log);
}

/* The reader dies mid-transfer: the scheduler stops the holder (MORE -1)
 * and drops what was allowed before; the consumer runs again and reads the
 * value again. Then the holder leaves mid-transfer: the value is recomputed
 * (said in the log) and the consumer's result is right. */
static void test_relay_cut_off(void **state)
{
    tu_log log;
    char address[128];
    herd_runner *r = fake_flow(&log, address, sizeof address, 2);
    /* local-0's pid, to kill it as a reader */
    herd_future *who = tu_submit(r, "t_make", herd_tuple("Iin", (int64_t)16, 1), "{workers: [local-0]}");
    pid_t reader = (pid_t)herd_as_int(herd_map_get(result_of(who), "pid"));
    herd_future_release(who);

    fake f;
    fake_open(&f, address, "fakeh");
    const size_t n = (size_t)6 << 20;        /* more than the first window */
    size_t len;
    char *packed = blob_packed(n, 77, &len);
    herd_future *p, *c;
    pair(r, "fakeh", (int64_t)n, 77, "{workers: [local-0], allow_other_workers: true, resources: {slot: 1}}", &p, &c);
    fake_hold(&f, len);
    herd_value *fe = wait_op(&f, OP_FETCH);
    assert_non_null(fe);
    int64_t xfer = herd_as_int(herd_at(fe, 2)), credit = herd_as_int(herd_at(fe, 3));
    herd_value_free(fe);
    assert_true(credit > 0 && (size_t)credit < len);
    send_value(f.fd, herd_tuple("iIIn", OP_VALUE, xfer, (int64_t)len));
    send_chunk(f.fd, xfer, packed, HERD_RELAY_CHUNK);                 /* part of it, then the reader dies */
    send_chunk(f.fd, xfer, packed + HERD_RELAY_CHUNK, HERD_RELAY_CHUNK);
    f.stage = "top-up";
    herd_value *more = wait_op(&f, OP_MORE);                            /* the scheduler tops the credit up */
    assert_non_null(more);
    assert_int_equal(kill(reader, SIGKILL), 0);
    int64_t allowed = credit + herd_as_int(herd_at(more, 2));
    herd_value_free(more);
    f.stage = "stop";
    for (;;) {                                                          /* ... until it says stop */
        more = wait_op(&f, OP_MORE);
        assert_non_null(more);
        assert_int_equal(herd_as_int(herd_at(more, 1)), xfer);
        int64_t k = herd_as_int(herd_at(more, 2));
        herd_value_free(more);
        if (k < 0) break;
        allowed += k;
    }
    assert_true((size_t)allowed < len);
    /* what was allowed is still taken (and dropped): the connection stays */
    for (size_t sent = 2 * HERD_RELAY_CHUNK; sent < (size_t)allowed;) {
        size_t k = (size_t)allowed - sent < HERD_RELAY_CHUNK ? (size_t)allowed - sent : HERD_RELAY_CHUNK;
        if (k > len - sent) k = len - sent;
        send_chunk(f.fd, xfer, packed + sent, k);
        sent += k;
    }
    /* the consumer runs again on local-1 and asks again;
     * the holder leaves in the middle of that transfer */
    f.stage = "second fetch";
    fe = wait_op(&f, OP_FETCH);
    assert_non_null(fe);
    xfer = herd_as_int(herd_at(fe, 2));
    herd_value_free(fe);
    send_value(f.fd, herd_tuple("iIIn", OP_VALUE, xfer, (int64_t)len));
    send_chunk(f.fd, xfer, packed, HERD_RELAY_CHUNK);
    fake_close(&f);
    free(packed);
    consumer_right(c);
    assert_true(tu_log_has_line(&log, "its result was on worker fakeh, which left; recomputing it", NULL));
    assert_false(tu_log_has_line(&log, "is over or not this worker's", NULL));
    herd_future_release(c);
    herd_future_release(p);
    tu_flow_end(r);
    tu_log_free(&log);
}

int main(int argc, char **argv)
{
    herd_init(&argc, &argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_relay_messages),
        cmocka_unit_test(test_relay_cut_off),
        cmocka_unit_test(test_relay_threads),
        cmocka_unit_test(test_relay_tls),
        cmocka_unit_test(test_relay_big_tcp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
