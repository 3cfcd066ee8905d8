/* tests/integration/test_badinput.c — bad input gives a clear error, and the
 * runtime keeps working afterwards: runner options (unknown cluster_class,
 * mistyped or unknown kwargs, malformed YAML, address with adapt_kwargs),
 * bad submits (unknown task, args that are not an array, bad annotations),
 * and malformed frames sent to a live scheduler from a raw TCP socket (huge
 * length, garbage msgpack, wrong token, wrong protocol version, a message
 * before hello, an unknown opcode after hello) and messages that do not
 * unpack (a field missing or of the wrong type, an empty name): the
 * scheduler closes each such connection, saying why, and goes on running the
 * flow's tasks. */
#include <herd/herd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <limits.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proto.h"         /* the wire protocol: opcodes, version */
#include "../support/testutil.h"
#include "../support/rawwire.h"   /* raw frames on a TCP socket */

/* ---- tasks ---- */
static int t_mul(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    *out = herd_int(herd_as_int(herd_at(args, 0)) * herd_as_int(herd_at(args, 1)));
    return 0;
}
HERD_TASK(t_mul);

/* The runtime works: a task runs and returns the right value. */
static void still_works(herd_runner *r, int a, int b)
{
    herd_future *f = tu_submit(r, "t_mul", herd_tuple("ii", a, b), NULL);
    assert_int_equal(tu_int_result(f), a * b);
    herd_future_release(f);
}

/* herd_runner_new must fail with code and a message containing every word. */
static void bad_opts(const herd_runner_opts *o, int code, const char *w1, const char *w2, const char *w3)
{
    herd_runner *r = (herd_runner *)1;
    herd_err err = { 0 };
    int rc = herd_runner_new(&r, o, &err);
    if (rc == 0) { herd_runner_free(r); fail_msg("herd_runner_new accepted bad options"); }
    assert_null(r);
    if (code) assert_int_equal(rc, code);
    assert_int_equal(err.code, rc);
    const char *w[] = { w1, w2, w3 };
    for (int i = 0; i < 3; i++)
        if (w[i] && !strstr(err.msg, w[i])) fail_msg("error \"%s\" does not mention \"%s\"", err.msg, w[i]);
}

/* ---- 10a. runner options ---- */
static void test_bad_runner_options(void **state)
{
    bad_opts(&(herd_runner_opts){ .cluster_class = "nope.Cluster" }, -HERD_ENOPROVIDER,
             "nope.Cluster", "nope.so", "local.LocalCluster");
    bad_opts(&(herd_runner_opts){ .cluster_kwargs = "{n_workers: four}" }, 0,
             "cluster_kwargs.n_workers", "expected int", "got str \"four\"");
    bad_opts(&(herd_runner_opts){ .cluster_kwargs = "{n_worker: 2}" }, 0,
             "n_worker", "did you mean \"n_workers\"", NULL);
    bad_opts(&(herd_runner_opts){ .cluster_kwargs = "{threads_per_worker: 0}" }, 0,
             "threads_per_worker", "0", NULL);
    bad_opts(&(herd_runner_opts){ .address = "tcp://127.0.0.1:8786", .adapt_kwargs = "{minimum: 1}" },
             -HERD_EARG, "address", "adapt_kwargs", NULL);
    bad_opts(&(herd_runner_opts){ .address = "tcp://127.0.0.1:8786", .cluster_class = "local.LocalCluster" },
             -HERD_EARG, "address", "cluster_class", NULL);
    bad_opts(&(herd_runner_opts){ .cluster_kwargs = "{n_workers: [1, 2" }, 0, "cluster_kwargs", "line", NULL);
    bad_opts(&(herd_runner_opts){ .cluster_kwargs = "[1, 2]" }, -HERD_EARG, "cluster_kwargs", "expected a map", NULL);
    bad_opts(&(herd_runner_opts){ .client_kwargs = "{allowed_failures: lots}" }, 0, "allowed_failures", "lots", NULL);
    bad_opts(&(herd_runner_opts){ .client_kwargs = "{heartbeat_intervl: 1}" }, 0,
             "heartbeat_intervl", "did you mean \"heartbeat_interval\"", NULL);
    bad_opts(&(herd_runner_opts){ .adapt_kwargs = "{maximum: many}" }, 0, "adapt_kwargs", "maximum", "many");

    /* a flow on a default-configured runner works after all that */
    herd_runner *r = tu_flow("{n_workers: 1, threads_per_worker: 1}", NULL, 1, NULL);
    still_works(r, 6, 7);
    /* flow calls in the wrong state */
    herd_err err;
    assert_int_equal(herd_flow_begin(r, "again", &err), -HERD_ESTATE);
    assert_non_null(strstr(err.msg, "still active"));
    still_works(r, 3, 5);
    tu_flow_end(r);
}

/* ---- 10b. submits ---- */
static void test_bad_submits(void **state)
{
    herd_runner *r = tu_flow("{n_workers: 1, threads_per_worker: 2}", NULL, 1, NULL);
    herd_err err;
    herd_future *f = (herd_future *)1;

    assert_int_equal(herd_submit(r, "no_such_task", herd_array(), &f, &err), -HERD_ENOTASK);
    assert_null(f);
    assert_non_null(strstr(err.msg, "\"no_such_task\""));
    assert_non_null(strstr(err.msg, "t_mul"));                  /* lists what is registered */

    f = (herd_future *)1;
    assert_int_equal(herd_submit(r, "t_mul", herd_int(3), &f, &err), -HERD_EARG);
    assert_null(f);
    assert_non_null(strstr(err.msg, "args"));
    assert_non_null(strstr(err.msg, "expected an array"));
    assert_non_null(strstr(err.msg, "int"));
    assert_int_equal(herd_submit(r, "t_mul", herd_str("x"), &f, &err), -HERD_EARG);
    assert_non_null(strstr(err.msg, "got str"));

    assert_int_not_equal(herd_submit_annotated(r, "t_mul", herd_tuple("ii", 1, 2), "{priority: high}", &f, &err), 0);
    assert_non_null(strstr(err.msg, "priority"));
    assert_non_null(strstr(err.msg, "high"));
    assert_int_not_equal(herd_submit_annotated(r, "t_mul", herd_tuple("ii", 1, 2), "{priorty: 1}", &f, &err), 0);
    assert_non_null(strstr(err.msg, "did you mean \"priority\""));
    assert_int_not_equal(herd_submit_annotated(r, "t_mul", herd_tuple("ii", 1, 2), "{resources: {GPU: -1}}", &f, &err), 0);
    assert_non_null(strstr(err.msg, "resources.GPU"));
    assert_int_not_equal(herd_submit_annotated(r, "t_mul", herd_tuple("ii", 1, 2), "{retries: [1", &f, &err), 0);
    assert_non_null(strstr(err.msg, "annotations"));
    assert_int_not_equal(herd_annotate_push(r, "{timeout: soon}", &err), 0);
    assert_non_null(strstr(err.msg, "timeout"));
    assert_int_equal(herd_annotate_pop(r), -HERD_ESTATE);      /* the bad push pushed nothing */
    assert_int_not_equal(herd_submit(r, NULL, NULL, &f, &err), 0);
    assert_int_not_equal(herd_submit(r, "t_mul", NULL, NULL, &err), 0);

    /* none of that disturbed the flow */
    still_works(r, 4, 8);
    tu_flow_end(r);
}

/* ---- 10c. malformed frames from a raw socket ---- */

#define TOKEN "integration-token-0123456789"

static void test_malformed_frames(void **state)
{
    tu_log log;
    tu_log_init(&log);
    log.echo_level = HERD_LOG_ERROR + 1;       /* keep the expected warnings quiet */
    herd_runner *r = tu_flow("{n_workers: 1, threads_per_worker: 1}",
                             "{listen: 'tcp://127.0.0.1:0', token: " TOKEN "}", 1, &log);
    const char *addr = herd_runner_address(r);
    assert_non_null(addr);
    assert_ptr_equal(strstr(addr, "tcp://127.0.0.1:"), addr);
    char address[128];
    snprintf(address, sizeof address, "%s", addr);
    still_works(r, 2, 3);
    herd_value *msg;
    int fd;

    /* (i) a frame announcing a huge length */
    fd = raw_connect(address);
    uint32_t huge = htonl(0xfffffff0u);
    send_all(fd, &huge, 4);
    send_all(fd, "abcd", 4);
    assert_true(read_until_closed(fd, NULL));
    close(fd);
    still_works(r, 3, 4);

    /* a zero-length frame */
    fd = raw_connect(address);
    uint32_t zero = 0;
    send_all(fd, &zero, 4);
    assert_true(read_until_closed(fd, NULL));
    close(fd);

    /* (ii) garbage msgpack (0xc1 is never used), and msgpack that is no message */
    fd = raw_connect(address);
    send_frame(fd, "\xc1\xc1\xc1\xc1", 4);
    assert_true(read_until_closed(fd, NULL));
    close(fd);
    fd = raw_connect(address);
    send_frame(fd, "\xdd\xff\xff\xff\xff", 5);   /* array32 of 4G items, none sent */
    assert_true(read_until_closed(fd, NULL));
    close(fd);
    fd = raw_connect(address);
    send_value(fd, herd_str("hello?"));
    assert_true(read_until_closed(fd, NULL));
    close(fd);
    still_works(r, 4, 5);

    /* (iii) a hello with a wrong token: refused (told why), closed, logged */
    fd = raw_connect(address);
    send_value(fd, hello("not-the-token", HERD_PROTO_VERSION, ROLE_WORKER, "intruder"));
    assert_true(read_until_closed(fd, &msg));
    close(fd);
    assert_non_null(msg);
    assert_int_equal(herd_as_int(herd_at(msg, 0)), OP_REFUSE);
    assert_non_null(herd_as_str(herd_at(msg, 1)));
    assert_non_null(strstr(herd_as_str(herd_at(msg, 1)), "token"));
    herd_value_free(msg);
    assert_true(tu_log_wait_line(&log, "refused", "token", 5));
    assert_false(tu_log_has_line(&log, TOKEN, NULL));            /* the secret is never logged */
    still_works(r, 5, 6);

    /* a hello with the right token but another protocol version */
    fd = raw_connect(address);
    send_value(fd, hello(TOKEN, HERD_PROTO_VERSION + 98, ROLE_WORKER, "future"));
    assert_true(read_until_closed(fd, &msg));
    close(fd);
    assert_non_null(msg);
    assert_int_equal(herd_as_int(herd_at(msg, 0)), OP_REFUSE);
    assert_non_null(strstr(herd_as_str(herd_at(msg, 1)), "protocol version"));
    herd_value_free(msg);

    /* a hello taking the name of a connected worker */
    fd = raw_connect(address);
    send_value(fd, hello(TOKEN, HERD_PROTO_VERSION, ROLE_WORKER, "local-0"));
    assert_true(read_until_closed(fd, &msg));
    close(fd);
    assert_non_null(msg);
    assert_int_equal(herd_as_int(herd_at(msg, 0)), OP_REFUSE);
    assert_non_null(strstr(herd_as_str(herd_at(msg, 1)), "local-0"));
    herd_value_free(msg);
    assert_int_equal(herd_runner_workers(r, NULL), 1);
    still_works(r, 6, 7);

    /* (iv) a valid-looking message before hello */
    fd = raw_connect(address);
    send_value(fd, herd_tuple("i", OP_HEARTBEAT));
    assert_true(read_until_closed(fd, &msg));
    close(fd);
    assert_non_null(msg);                 /* refused with a reason, not just dropped */
    assert_int_equal(herd_as_int(herd_at(msg, 0)), OP_REFUSE);
    assert_non_null(strstr(herd_as_str(herd_at(msg, 1)), "hello"));
    herd_value_free(msg);
    fd = raw_connect(address);
    send_value(fd, herd_tuple("iIsvinidds", OP_SUBMIT, (int64_t)1 << 40 | 7, "t_mul", herd_tuple("ii", 1, 1),
                              0, 0, 0.0, 0.0, "sneaky"));
    assert_true(read_until_closed(fd, NULL));
    close(fd);
    still_works(r, 7, 8);

    /* an unknown opcode after a good hello (as a client) */
    fd = raw_connect(address);
    send_value(fd, hello(TOKEN, HERD_PROTO_VERSION, ROLE_CLIENT, "raw-client"));
    msg = read_message(fd);
    assert_int_equal(herd_as_int(herd_at(msg, 0)), OP_WELCOME);
    herd_value_free(msg);
    send_value(fd, herd_tuple("is", 99, "what"));
    assert_true(read_until_closed(fd, NULL));
    close(fd);

    /* control calls that make no sense get an answer naming the problem;
     * nothing is drained or closed on this flow's in-process scheduler,
     * which is not a provider-run one; a control message that does not
     * unpack (a verb that is no string) closes that connection */
    fd = raw_connect(address);
    send_value(fd, hello(TOKEN, HERD_PROTO_VERSION, ROLE_CLIENT, "raw-control"));
    msg = read_message(fd);
    assert_int_equal(herd_as_int(herd_at(msg, 0)), OP_WELCOME);
    assert_int_equal(herd_as_int(herd_at(msg, 5)), 0);            /* not owned */
    herd_value_free(msg);
    send_value(fd, herd_tuple("iisn", OP_CONTROL, 5, "reboot"));
    msg = read_message(fd);
    assert_int_equal(herd_as_int(herd_at(msg, 0)), OP_REPLY);
    assert_int_equal(herd_as_int(herd_at(msg, 1)), 5);
    assert_int_equal(herd_as_int(herd_at(msg, 2)), -HERD_EARG);
    assert_non_null(strstr(herd_as_str(herd_at(msg, 3)), "unknown control verb"));
    herd_value_free(msg);
    send_value(fd, herd_tuple("iiss", OP_CONTROL, 6, "close_workers", "bye"));
    msg = read_message(fd);
    assert_int_equal(herd_as_int(herd_at(msg, 2)), -HERD_EARG);
    assert_non_null(strstr(herd_as_str(herd_at(msg, 3)), "shared"));
    herd_value_free(msg);
    send_value(fd, herd_tuple("iisn", OP_CONTROL, 8, "load"));
    msg = read_message(fd);
    assert_int_equal(herd_as_int(herd_at(msg, 1)), 8);
    assert_int_equal(herd_as_int(herd_at(msg, 2)), 0);
    assert_int_equal(herd_len(herd_at(msg, 3)), 7);
    herd_value_free(msg);
    send_value(fd, herd_tuple("iivn", OP_CONTROL, 9, herd_map()));  /* a verb that is no string */
    assert_true(read_until_closed(fd, NULL));
    close(fd);
    assert_true(tu_log_wait_line(&log, "closing the connection from 127.0.0.1:", "CONTROL: field 'verb' is map", 5));

    /* a worker's own retire (its lifetime passed): idle, it is told to close
     * at once; a client's "retire" is an unknown verb */
    fd = raw_connect(address);
    send_value(fd, hello(TOKEN, HERD_PROTO_VERSION, ROLE_WORKER, "raw-retire"));
    msg = read_message(fd);
    assert_int_equal(herd_as_int(herd_at(msg, 0)), OP_WELCOME);
    herd_value_free(msg);
    send_value(fd, herd_tuple("iiss", OP_CONTROL, 0, "retire", "lifetime"));
    int got_close = 0;
    for (int i = 0; i < 20 && !got_close; i++) {
        msg = read_message(fd);
        got_close = herd_as_int(herd_at(msg, 0)) == OP_CLOSE;
        herd_value_free(msg);
    }
    close(fd);
    assert_true(got_close);
    assert_true(tu_log_has_line(&log, "worker raw-retire retiring: lifetime", NULL));

    /* a connection that sends half a frame and hangs up */
    fd = raw_connect(address);
    uint32_t ten = htonl(10);
    send_all(fd, &ten, 4);
    send_all(fd, "\x93", 1);
    close(fd);

    /* the flow is unharmed: its worker is still there (once the scheduler
     * has told the client the raw worker left) and tasks run */
    for (double end = tu_now() + TU_WAIT_S; herd_runner_workers(r, NULL) != 1 && tu_now() < end;) tu_sleep_ms(10);
    assert_int_equal(herd_runner_workers(r, NULL), 1);
    herd_future *fs[20];
    for (int i = 0; i < 20; i++) fs[i] = tu_submit(r, "t_mul", herd_tuple("ii", i, i), NULL);
    for (int i = 0; i < 20; i++) { assert_int_equal(tu_int_result(fs[i]), i * i); herd_future_release(fs[i]); }
    tu_flow_end(r);
    tu_log_free(&log);
}

/* A raw connection that said hello as role and was welcomed. */
static int raw_hello(const char *address, int role, const char *name)
{
    int fd = raw_connect(address);
    send_value(fd, hello("", HERD_PROTO_VERSION, role, name));
    herd_value *msg = read_message(fd);
    if (herd_as_int(herd_at(msg, 0)) != OP_WELCOME) fail_msg("%s: not welcomed: %s", name, herd_as_str(herd_at(msg, 1)));
    herd_value_free(msg);
    return fd;
}

/* A worker process for address: this binary in worker mode (herd_init in main). */
static pid_t worker_process(const char *address, const char *name)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = '\0';
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        setenv("HERD_SCHEDULER_ADDRESS", address, 1);
        unsetenv("HERD_TOKEN");
        setenv("HERD_LOG_LEVEL", "error", 1);
        execl(exe, exe, "--herd-worker", "--herd-name", name, "--herd-nthreads", "1", (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* Messages that do not unpack close that one connection, with a log line
 * naming the peer, the opcode and the field; the flow goes on. Before the
 * protocol had one home (core/proto.c), SECEDE, RELEASE and CANCEL read a
 * key they were not sent, and an empty name reached strndup(NULL, 0) on a
 * scheduler without a token (a flow's own scheduler always has one, so this
 * one is started alone, with a worker process and the flow in address mode). */
static void test_bad_messages(void **state)
{
    tu_log log;
    tu_log_init(&log);
    log.echo_level = HERD_LOG_ERROR + 1;       /* keep the expected warnings quiet */
    herd_scheduler *s = NULL;
    herd_err err = { 0 };
    char address[256];
    herd_scheduler_opts so = { .listen = "tcp://127.0.0.1:0", .token = NULL, .allowed_failures = -1,
                               .log = tu_log_sink, .log_ud = &log };
    if (herd_scheduler_start(&s, &so, &err)) fail_msg("scheduler: %s", err.msg);
    snprintf(address, sizeof address, "%s", herd_scheduler_address(s));
    pid_t wp = worker_process(address, "good-worker");
    herd_runner_opts o = { .address = address, .log = tu_log_sink, .log_ud = &log };
    herd_runner *r = NULL;
    if (herd_runner_new(&r, &o, &err) || herd_flow_begin(r, "badmsg", &err) ||
        herd_wait_for_workers(r, 1, TU_WAIT_S, &err))
        fail_msg("flow: %s", err.msg);
    still_works(r, 2, 3);
    herd_value *msg;

    /* a hello with an empty name, on a scheduler without a token: refused, told why */
    int fd = raw_connect(address);
    send_value(fd, hello("", HERD_PROTO_VERSION, ROLE_WORKER, ""));
    assert_true(read_until_closed(fd, &msg));
    close(fd);
    assert_non_null(msg);
    assert_int_equal(herd_as_int(herd_at(msg, 0)), OP_REFUSE);
    assert_non_null(strstr(herd_as_str(herd_at(msg, 1)), "HELLO: field 'name' is a str of 0 bytes"));
    herd_value_free(msg);
    assert_true(tu_log_wait_line(&log, "refused connection from 127.0.0.1:", "HELLO: field 'name'", 5));
    still_works(r, 3, 4);

    /* SECEDE, RELEASE and CANCEL without their key */
    static const struct { int op, role; const char *name, *why; } nokey[] = {
        { OP_SECEDE, ROLE_WORKER, "bad-secede", "SECEDE: 0 fields, expected 1" },
        { OP_RELEASE, ROLE_CLIENT, "bad-release", "RELEASE: 0 fields, expected 1" },
        { OP_CANCEL, ROLE_CLIENT, "bad-cancel", "CANCEL: 0 fields, expected 1" },
    };
    for (size_t i = 0; i < sizeof nokey / sizeof *nokey; i++) {
        fd = raw_hello(address, nokey[i].role, nokey[i].name);
        send_value(fd, herd_tuple("i", nokey[i].op));
        assert_true(read_until_closed(fd, NULL));
        close(fd);
        assert_true(tu_log_wait_line(&log, nokey[i].name, nokey[i].why, 5));
        assert_true(tu_log_has_line(&log, "closing the connection from 127.0.0.1:", nokey[i].why));
        still_works(r, 4, (int)i);
    }

    /* a submit whose priority is a string; a result whose key is a map */
    fd = raw_hello(address, ROLE_CLIENT, "bad-submit");
    send_value(fd, herd_tuple("iIsvsniddsnni", OP_SUBMIT, (int64_t)1 << 40 | 7, "t_mul", herd_tuple("ii", 1, 1),
                              "high", 0, 0.0, 0.0, "t_mul-1", 0));
    assert_true(read_until_closed(fd, NULL));
    close(fd);
    assert_true(tu_log_wait_line(&log, "bad-submit", "SUBMIT: field 'priority' is str, expected int", 5));
    fd = raw_hello(address, ROLE_WORKER, "bad-done");
    send_value(fd, herd_tuple("ivisIiI", OP_DONE, herd_map(), 0, "x", (int64_t)1, 0, (int64_t)-1));
    assert_true(read_until_closed(fd, NULL));
    close(fd);
    assert_true(tu_log_wait_line(&log, "bad-done", "DONE: field 'key' is map, expected int", 5));

    /* the flow is unharmed: its worker is still there (once the scheduler
     * has told the client the raw worker left) and tasks run */
    for (double end = tu_now() + TU_WAIT_S; herd_runner_workers(r, NULL) != 1 && tu_now() < end;) tu_sleep_ms(10);
    assert_int_equal(herd_runner_workers(r, NULL), 1);
    herd_future *fs[20];
    for (int i = 0; i < 20; i++) fs[i] = tu_submit(r, "t_mul", herd_tuple("ii", i, i), NULL);
    for (int i = 0; i < 20; i++) { assert_int_equal(tu_int_result(fs[i]), i * i); herd_future_release(fs[i]); }
    tu_flow_end(r);
    herd_scheduler_stop(s);                    /* the worker process loses it and exits */
    int st = 0;
    pid_t got = 0;
    for (double end = tu_now() + TU_WAIT_S; got == 0 && tu_now() < end; tu_sleep_ms(10)) got = waitpid(wp, &st, WNOHANG);
    if (got != wp) { kill(wp, SIGKILL); waitpid(wp, NULL, 0); fail_msg("the worker did not exit"); }
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) != 127);      /* no crash */
    tu_log_free(&log);
}

int main(int argc, char **argv)
{
    herd_init(&argc, &argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_runner_options),
        cmocka_unit_test(test_bad_submits),
        cmocka_unit_test(test_malformed_frames),
        cmocka_unit_test(test_bad_messages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
