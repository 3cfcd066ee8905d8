/* tests/integration/test_dataplane.c — the data plane with real worker
 * processes (and threads) and real sockets: results over 1 KiB stay on the
 * worker that computed them; values of 0 B, 1 KiB, 8 MiB, 300 MiB and 1.5 GiB
 * move worker to worker (a memfd-born one as that memfd, which the reader
 * maps; the others through the socket) and reach the client on demand; a
 * dependent runs on the holder when it can, or where the workers annotation
 * says; a holder SIGKILLed before its value was read
 * has it recomputed (and one SIGKILLed after handing it over leaves its
 * reader's map whole);
 * a sub-task's big result reaches the task that asked for it; released
 * futures free the value on the worker; a peer without the token is
 * refused; a malformed peer message closes that one connection.
 *
 * No timing assertions: consumers meet at a barrier (files in a scratch
 * directory) so two of them run at once on two workers, and the tests wait
 * for states (a future's state, a log line, a peer's answer). */
#include <herd/herd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <glob.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "proto.h"         /* the wire protocol: opcodes, version, roles */
#include "../support/testutil.h"
#include "../support/blobs.h"
#include "../support/rawwire.h"   /* the peer protocol by hand */

#define TOKEN "dataplane-token-0123456789"

/* ---- tasks (they run in the workers) ---- */
/* (dir): the first run returns 64 KiB (held) and writes its pid to dir/once;
 * any later run fails. */
static int t_once(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    char path[600];
    snprintf(path, sizeof path, "%s/once", herd_as_str(herd_at(args, 0)));
    if (access(path, F_OK) == 0) return herd_task_fail(ctx, "t_once: not again");
    FILE *f = fopen(path, "w");
    if (!f) return herd_task_fail(ctx, "t_once: %s", path);
    fprintf(f, "%ld", (long)getpid());
    fclose(f);
    char *buf = calloc(1, 65536);
    *out = herd_bytes(buf, 65536);
    free(buf);
    return 0;
}
HERD_TASK(t_once);


/* (n, seed) -> 1 when a sub-task t_make(n, seed) read through the task's
 * client holds the right data (held on a worker when over 1 KiB), else 0. */
static int t_parent(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    size_t n = (size_t)herd_as_int(herd_at(args, 0));
    int64_t seed = herd_as_int(herd_at(args, 1));
    herd_runner *sub = herd_task_client(ctx);
    herd_future *f = NULL;
    herd_err err = { 0 };
    const herd_value *v = NULL;
    if (!sub || herd_submit(sub, "t_make", herd_tuple("Iin", (int64_t)n, (int)seed), &f, &err) ||
        herd_future_result(f, 4 * TU_WAIT_S, &v, &err))
        return herd_task_fail(ctx, "t_parent: %s", err.msg);
    *out = herd_int(blob_ok(v, n, seed) ? 1 : 0);
    herd_future_release(f);
    return 0;
}
HERD_TASK(t_parent);

/* The answer to a GET sent before: the value's size, -1 when not held. */
static int64_t peer_read_data(int fd)
{
    herd_value *m = recv_msg(fd);
    if (!m || herd_as_int(herd_at(m, 0)) != OP_DATA) fail_msg("GET: no DATA answer");
    int64_t n = herd_as_int(herd_at(m, 2));
    herd_value_free(m);
    for (int64_t left = n; left > 0;) {           /* the bytes follow the frame */
        char buf[65536];
        size_t k = left > (int64_t)sizeof buf ? sizeof buf : (size_t)left;
        if (!recv_full(fd, buf, k)) fail_msg("GET: the value broke off");
        left -= (int64_t)k;
    }
    return n;
}

/* GET key on an authenticated connection: the value's size, -1 when not held. */
static int64_t peer_get(int fd, uint64_t key)
{
    send_msg(fd, herd_tuple("iI", OP_GET, (int64_t)key));
    return peer_read_data(fd);
}

/* The one peer socket in the cluster's directory (one worker). */
static void peer_socket(herd_runner *r, char *path, size_t cap)
{
    const char *addr = herd_runner_address(r);
    assert_non_null(addr);
    assert_ptr_equal(strstr(addr, "unix://"), addr);
    char pat[600];
    snprintf(pat, sizeof pat, "%s", addr + 7);
    char *slash = strrchr(pat, '/');
    assert_non_null(slash);
    snprintf(slash, sizeof pat - (size_t)(slash - pat), "/peer-*.sock");
    glob_t g;
    assert_int_equal(glob(pat, 0, NULL, &g), 0);
    assert_int_equal(g.gl_pathc, 1);
    snprintf(path, cap, "%s", g.gl_pathv[0]);
    globfree(&g);
}

/* ---- tests ---- */
/* herd_bytes_take keeps the buffer it is given (no copy) and frees it. */
static void test_bytes_take(void **state)
{
    char *buf = malloc(100);
    assert_non_null(buf);
    memset(buf, 7, 100);
    herd_value *v = herd_bytes_take(buf, 100);
    size_t len = 0;
    assert_ptr_equal(herd_as_bytes(v, &len), buf);
    assert_int_equal(len, 100);
    herd_value *c = herd_value_copy(v);
    assert_true(herd_value_equal(v, c));
    herd_value_free(c);
    herd_value_free(v);                      /* frees buf (ASan would say otherwise) */
    v = herd_bytes_take(NULL, 0);
    assert_int_equal(herd_typeof(v), HERD_BYTES);
    herd_value_free(v);
    assert_null(herd_bytes_take(NULL, 5));
}

static void test_values_between_workers(void **state)
{
    values_between_workers("{n_workers: 2, threads_per_worker: 1, resources: {slot: 1}}", NULL, true);
}

static void test_values_between_thread_workers(void **state)
{
    values_between_workers("{n_workers: 2, threads_per_worker: 1, processes: false, resources: {slot: 1}}", NULL, true);
}

/* A dependent runs on the worker holding its input when that has a slot. */
static void test_dependent_runs_on_holder(void **state)
{
    herd_runner *r = tu_flow("{n_workers: 2, threads_per_worker: 1, resources: {slot: 1}}", NULL, 2, NULL);
    for (int i = 0; i < 6; i++) {
        herd_future *p = tu_submit(r, "t_make", herd_tuple("Iin", (int64_t)65536, 100 + i), NULL);
        wait_completed(p);
        herd_future *c = tu_submit(r, "t_check", herd_tuple("vIinn", herd_future_arg(p), (int64_t)65536, 100 + i),
                                   "{resources: {slot: 1}}");
        const herd_value *v = result_of(c);
        assert_int_equal(herd_as_int(herd_at(v, 0)), 1);
        char consumer[128];
        snprintf(consumer, sizeof consumer, "%s", herd_as_str(herd_at(v, 1)));
        assert_string_equal(consumer, herd_as_str(herd_map_get(result_of(p), "worker")));
        herd_future_release(c);
        herd_future_release(p);
    }
    tu_flow_end(r);
}

/* The workers annotation: a producer pinned to one worker, its consumer to
 * the other (which fetches from the first); allow_other_workers runs a task
 * whose named workers are absent; a bad name is refused at submit. */
static void test_workers_annotation(void **state)
{
    herd_runner *r = tu_flow("{n_workers: 2, threads_per_worker: 1}", NULL, 2, NULL);
    for (int i = 0; i < 3; i++) {
        herd_future *p = tu_submit(r, "t_make", herd_tuple("Iin", (int64_t)(4 << 20), 50 + i), "{workers: [local-1]}");
        herd_future *c = tu_submit(r, "t_check", herd_tuple("vIinn", herd_future_arg(p), (int64_t)(4 << 20), 50 + i),
                                   "{workers: [local-0]}");
        const herd_value *v = result_of(c);
        assert_int_equal(herd_as_int(herd_at(v, 0)), 1);
        assert_string_equal(herd_as_str(herd_at(v, 1)), "local-0");
        assert_string_equal(herd_as_str(herd_map_get(result_of(p), "worker")), "local-1");
        herd_future_release(c);
        herd_future_release(p);
    }
    herd_future *o = tu_submit(r, "t_make", herd_tuple("Iin", (int64_t)16, 60),
                               "{workers: [nobody], allow_other_workers: true}");
    assert_true(blob_ok(result_of(o), 16, 60));
    herd_future_release(o);
    herd_future *bad = NULL;
    herd_err err = { 0 };
    assert_int_not_equal(herd_submit_annotated(r, "t_make", herd_tuple("Iin", (int64_t)1, 1), "{workers: [3]}", &bad,
                                               &err), 0);
    assert_non_null(strstr(err.msg, "annotations.workers[0]: expected a worker name"));
    tu_flow_end(r);
}

/* A task's sub-task returns a big value: the task reads it (fetched from
 * its holder, which may be the same worker or the other one). */
static void test_subtask_result(void **state)
{
    herd_runner *r = tu_flow("{n_workers: 2, threads_per_worker: 1}", NULL, 2, NULL);
    herd_future *f[4];
    for (int i = 0; i < 4; i++) f[i] = tu_submit(r, "t_parent", herd_tuple("Ii", (int64_t)(1 << 20), 70 + i), NULL);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(tu_int_result(f[i]), 1);
        herd_future_release(f[i]);
    }
    tu_flow_end(r);
}

/* A holder's death: a flow of two one-thread workers whose log is kept
 * quiet (the warnings are expected) and a directory for the tasks' files. */
typedef struct kflow { herd_runner *r; tu_log log; char dir[256]; } kflow;

static void kflow_start(kflow *k)
{
    tu_mkdtemp(k->dir, sizeof k->dir);
    tu_log_init(&k->log);
    k->log.echo_level = HERD_LOG_ERROR + 1;
    k->r = tu_flow("{n_workers: 2, threads_per_worker: 1}", NULL, 2, &k->log);
}

static void kflow_end(kflow *k)
{
    tu_flow_end(k->r);
    tu_log_free(&k->log);
    tu_rmtree(k->dir);
}

/* SIGKILL the worker whose pid a task wrote to DIR/NAME; its pid. */
static pid_t kill_pid_in(const char *dir, const char *name)
{
    char path[400];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *pid = tu_read_file(path);
    assert_non_null(pid);
    pid_t holder = (pid_t)atol(pid);
    free(pid);
    assert_int_equal(kill(holder, SIGKILL), 0);
    return holder;
}

/* The holder is SIGKILLed before anyone read its value: the scheduler says
 * so and recomputes it; the client and a dependent read it right. */
static void test_holder_killed_recomputed(void **state)
{
    kflow k;
    kflow_start(&k);
    herd_future *p = tu_submit(k.r, "t_make", herd_tuple("Iis", (int64_t)(1 << 20), 7, k.dir), NULL);
    wait_completed(p);
    pid_t holder = kill_pid_in(k.dir, "7.pid");
    assert_true(tu_log_wait_line(&k.log, "t_make", "which left; recomputing it", TU_WAIT_S));
    const herd_value *v = result_of(p);
    assert_true(blob_ok(v, 1 << 20, 7));
    assert_int_not_equal(herd_as_int(herd_map_get(v, "pid")), holder);
    herd_future *c = tu_submit(k.r, "t_check", herd_tuple("vIinn", herd_future_arg(p), (int64_t)(1 << 20), 7), NULL);
    assert_int_equal(herd_as_int(herd_at(result_of(c), 0)), 1);
    herd_future_release(c);
    herd_future_release(p);
    kflow_end(&k);
}

/* The holder is SIGKILLed after handing a memfd-born value over and before
 * its reader looked at it: the reader's map of the memfd stays whole (its
 * result is right), and the value is recomputed for the client. */
static void test_holder_killed_after_handover(void **state)
{
    kflow k;
    kflow_start(&k);
    size_t n = (size_t)16 << 20;
    herd_future *p = tu_submit(k.r, "t_make", herd_tuple("Iiss", (int64_t)n, 9, k.dir, "shm"),
                               "{workers: [local-1], allow_other_workers: true}");
    herd_future *c = tu_submit(k.r, "t_check", herd_tuple("vIiss", herd_future_arg(p), (int64_t)n, 9, k.dir, "c0"),
                               "{workers: [local-0]}");
    char path[400];
    snprintf(path, sizeof path, "%s/c0", k.dir);
    double end = tu_now() + TU_WAIT_S;
    while (access(path, F_OK) != 0) {            /* the consumer has its input and waits */
        if (tu_now() > end) fail_msg("the consumer never started");
        tu_sleep_ms(2);
    }
    pid_t holder = kill_pid_in(k.dir, "9.pid");
    assert_true(tu_log_wait_line(&k.log, "t_make", "which left; recomputing it", TU_WAIT_S));
    snprintf(path, sizeof path, "%s/c1", k.dir);
    FILE *f = fopen(path, "w");                  /* let the consumer read */
    assert_non_null(f);
    fclose(f);
    const herd_value *v = result_of(c);
    assert_int_equal(herd_as_int(herd_at(v, 0)), 1);
    assert_int_equal(herd_as_int(herd_at(v, 2)), 1);            /* it read a memfd's pages */
    v = result_of(p);
    assert_true(blob_ok(v, n, 9));
    assert_int_not_equal(herd_as_int(herd_map_get(v, "pid")), holder);
    herd_future_release(c);
    herd_future_release(p);
    kflow_end(&k);
}

/* The holder dies and the recomputation fails: reading the future fails
 * with the reason instead of waiting for a copy that will never come. */
static void test_lost_value_recompute_fails(void **state)
{
    kflow k;
    kflow_start(&k);
    herd_future *p = tu_submit(k.r, "t_once", herd_tuple("s", k.dir), NULL);
    wait_completed(p);
    kill_pid_in(k.dir, "once");
    const herd_value *v = NULL;
    herd_err err = { 0 };
    assert_int_equal(herd_future_result(p, -1, &v, &err), -HERD_ECRASHED);
    assert_non_null(strstr(err.msg, "not again"));
    assert_true(tu_log_has_line(&k.log, "t_once", "which left; recomputing it"));
    herd_future_release(p);
    kflow_end(&k);
}

/* Released, the value leaves the worker; a peer without the token is
 * refused; a malformed message closes that connection only; a value not yet
 * read when the flow run ends is still readable. */
static void test_peer_server(void **state)
{
    herd_runner *r = tu_flow("{n_workers: 1, threads_per_worker: 1}", "{token: " TOKEN "}", 1, NULL);
    herd_future *p = tu_submit(r, "t_make", herd_tuple("Iin", (int64_t)65536, 3), NULL);
    wait_completed(p);
    char path[300];
    peer_socket(r, path, sizeof path);

    int fd = unix_connect(path);
    peer_hello(fd, TOKEN);
    assert_true(peer_get(fd, herd_future_key(p)) > 65536);       /* held there */
    int other = unix_connect(path);
    peer_hello(other, TOKEN);
    send_all(other, "\x00\x00\x00\x04\xc1\xc1\xc1\xc1", 8);        /* not msgpack */
    assert_null(recv_msg(other));                                  /* closed */
    close(other);
    other = unix_connect(path);
    peer_hello(other, TOKEN);
    send_msg(other, herd_tuple("iI", OP_RELEASE, (int64_t)1));     /* not a peer's message */
    assert_null(recv_msg(other));
    close(other);

    uint64_t key = herd_future_key(p);
    herd_future_release(p);
    double end = tu_now() + TU_WAIT_S;
    while (peer_get(fd, key) != -1) {                              /* the first connection still serves */
        if (tu_now() > end) fail_msg("the released value is still held after %.0fs", TU_WAIT_S);
        tu_sleep_ms(5);
    }
    close(fd);

    fd = unix_connect(path);
    peer_hello(fd, "not-the-token");
    expect_refuse(fd, "wrong or missing token");
    close(fd);

    herd_future *q = tu_submit(r, "t_make", herd_tuple("Iin", (int64_t)4096, 4), NULL);
    wait_completed(q);
    char *slash = strrchr(path, '/');
    *slash = '\0';                                                 /* the cluster's directory */
    herd_err err = { 0 };
    assert_int_equal(herd_flow_end(r, false, &err), 0);
    assert_true(blob_ok(result_of(q), 4096, 4));
    /* the workers were killed at close: no peer socket keeps the directory */
    if (access(path, F_OK) == 0) fail_msg("%s is still there after the flow run", path);
    herd_runner_free(r);
}

/* The server serves its connections at once: a peer that asked for a big
 * value and reads none of it does not hold up another one; GETs sent
 * together on one connection are answered in order. */
static void test_peer_server_concurrent(void **state)
{
    herd_runner *r = tu_flow("{n_workers: 1, threads_per_worker: 1}", "{token: " TOKEN "}", 1, NULL);
    const int64_t big = 64 << 20;
    herd_future *p = tu_submit(r, "t_make", herd_tuple("Iin", big, 5), NULL);
    herd_future *q = tu_submit(r, "t_make", herd_tuple("Iin", (int64_t)8192, 6), NULL);
    wait_completed(p);
    wait_completed(q);
    char path[300];
    peer_socket(r, path, sizeof path);

    int slow = unix_connect(path);
    peer_hello(slow, TOKEN);
    send_msg(slow, herd_tuple("iI", OP_GET, (int64_t)herd_future_key(p)));   /* read later */
    int other = unix_connect(path);
    peer_hello(other, TOKEN);
    send_msg(other, herd_tuple("iI", OP_GET, (int64_t)herd_future_key(q)));
    send_msg(other, herd_tuple("iI", OP_GET, (int64_t)herd_future_key(p)));
    send_msg(other, herd_tuple("iI", OP_GET, (int64_t)123456789));           /* not held */
    assert_true(peer_read_data(other) > 8192);
    assert_true(peer_read_data(other) > big);
    assert_int_equal(peer_read_data(other), -1);
    assert_true(peer_read_data(slow) > big);                                 /* its turn */
    close(slow);
    close(other);
    assert_true(blob_ok(result_of(p), (size_t)big, 5));
    tu_flow_end(r);
}

int main(int argc, char **argv)
{
    herd_init(&argc, &argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bytes_take),
        cmocka_unit_test(test_peer_server),
        cmocka_unit_test(test_peer_server_concurrent),
        cmocka_unit_test(test_dependent_runs_on_holder),
        cmocka_unit_test(test_workers_annotation),
        cmocka_unit_test(test_subtask_result),
        cmocka_unit_test(test_holder_killed_recomputed),
        cmocka_unit_test(test_holder_killed_after_handover),
        cmocka_unit_test(test_lost_value_recompute_fails),
        cmocka_unit_test(test_values_between_thread_workers),
        cmocka_unit_test(test_values_between_workers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
