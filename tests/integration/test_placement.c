/* tests/integration/test_placement.c — the `workers` and
 * `allow_other_workers` annotations with real worker processes (and threads),
 * as Dask's: an entry names a worker by its name, its host name, the IP
 * address its connection comes from, or (on the scheduler's Unix socket)
 * localhost; a task whose named workers are all absent waits for one (it does
 * not fail), runs anywhere with allow_other_workers, and ends Crashed after
 * no_workers_timeout saying which workers it may run on.
 *
 * No timing assertions: a waiting task is seen waiting after a later task
 * has completed, and its end is a state waited for. */
#include <herd/herd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../support/testutil.h"

/* () -> the name of the worker that ran it */
static int t_where(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    *out = herd_str(herd_task_worker_name(ctx));
    return 0;
}
HERD_TASK(t_where);

static char host[256];

/* Where a task annotated ann ran (its worker's name); fails the test unless
 * it completes. The result is static. */
static const char *ran_on(herd_runner *r, const char *ann)
{
    static char name[128];
    herd_future *f = tu_submit(r, "t_where", herd_array(), ann);
    const herd_value *v = NULL;
    herd_err err = { 0 };
    if (herd_future_result(f, TU_WAIT_S, &v, &err)) fail_msg("%s: %s", ann, err.msg);
    snprintf(name, sizeof name, "%s", herd_as_str(v));
    herd_future_release(f);
    return name;
}

/* "{workers: [a, b]}" (quoted) with allow_other_workers when other. */
static const char *ann(char *buf, size_t cap, const char *a, const char *b, int other)
{
    snprintf(buf, cap, "{workers: ['%s'%s%s%s]%s}", a, b ? ", '" : "", b ? b : "", b ? "'" : "",
             other ? ", allow_other_workers: true" : "");
    return buf;
}

static int setup(void **state)
{
    if (gethostname(host, sizeof host - 1)) snprintf(host, sizeof host, "localhost");
    return 0;
}

/* Names pin a task to one worker; the host name, localhost and 127.0.0.1
 * name every worker of this machine; a list is a union of what its entries
 * name. Processes and threads. */
static void test_names_and_hosts(void **state)
{
    const char *cks[] = { "{n_workers: 2, threads_per_worker: 1}",
                          "{n_workers: 2, threads_per_worker: 1, processes: false}" };
    for (size_t c = 0; c < 2; c++) {
        herd_runner *r = tu_flow(cks[c], NULL, 2, NULL);
        char a[600];
        for (int i = 0; i < 6; i++) {
            assert_string_equal(ran_on(r, ann(a, sizeof a, "local-1", NULL, 0)), "local-1");
            assert_string_equal(ran_on(r, ann(a, sizeof a, "local-0", NULL, 0)), "local-0");
            assert_string_equal(ran_on(r, ann(a, sizeof a, "no-such-host.invalid", "local-1", 0)), "local-1");
        }
        assert_string_equal(ran_on(r, "{workers: local-1}"), "local-1");     /* one entry, not a list */
        const char *hosts[] = { host, "localhost", "127.0.0.1" };
        for (size_t h = 0; h < 3; h++) {
            int seen[2] = { 0, 0 };
            for (int i = 0; i < 8; i++) {
                const char *w = ran_on(r, ann(a, sizeof a, hosts[h], NULL, 0));
                if (!strcmp(w, "local-0")) seen[0]++;
                else if (!strcmp(w, "local-1")) seen[1]++;
                else fail_msg("%s ran on %s", a, w);
            }
            assert_int_equal(seen[0] + seen[1], 8);
        }
        tu_flow_end(r);
    }
}

/* Workers dialing the scheduler over TCP: their connection's IP address
 * (127.0.0.1) and their host name both name them. */
static void test_tcp_address(void **state)
{
    herd_runner *r = tu_flow("{n_workers: 2, threads_per_worker: 1}", "{listen: 'tcp://127.0.0.1:0'}", 2, NULL);
    if (strncmp(herd_runner_address(r), "tcp://", 6)) fail_msg("scheduler at %s", herd_runner_address(r));
    char a[600];
    const char *w = ran_on(r, ann(a, sizeof a, "127.0.0.1", NULL, 0));
    assert_true(!strcmp(w, "local-0") || !strcmp(w, "local-1"));
    w = ran_on(r, ann(a, sizeof a, host, NULL, 0));
    assert_true(!strcmp(w, "local-0") || !strcmp(w, "local-1"));
    assert_string_equal(ran_on(r, ann(a, sizeof a, "10.255.255.254", "local-0", 0)), "local-0");
    tu_flow_end(r);
}

/* None of the named workers is there: the task waits (a later task runs
 * past it) until it is cancelled; with allow_other_workers it runs anywhere.
 * no_workers_timeout null: wait forever, as Dask does by default. */
static void test_absent_waits(void **state)
{
    herd_runner *r = tu_flow("{n_workers: 2, threads_per_worker: 1}", "{no_workers_timeout: null}", 2, NULL);
    char a[600];
    herd_future *waiting = tu_submit(r, "t_where", herd_array(), ann(a, sizeof a, "no-such-host.invalid", "local-9", 0));
    const char *w = ran_on(r, NULL);                   /* submitted after it, done before it */
    assert_true(!strcmp(w, "local-0") || !strcmp(w, "local-1"));
    w = ran_on(r, ann(a, sizeof a, "no-such-host.invalid", NULL, 1));
    assert_true(!strcmp(w, "local-0") || !strcmp(w, "local-1"));
    assert_int_equal(herd_future_state(waiting), HERD_PENDING);
    assert_int_equal(herd_future_cancel(waiting), 0);
    const herd_value *v;
    herd_err err = { 0 };
    assert_int_equal(herd_future_result(waiting, TU_WAIT_S, &v, &err), -HERD_ECANCELLED);
    herd_future_release(waiting);
    tu_flow_end(r);
}

/* ... and with a no_workers_timeout it ends Crashed, naming the workers it
 * may run on, while the cluster keeps running other tasks. */
static void test_absent_times_out(void **state)
{
    herd_runner *r = tu_flow("{n_workers: 1, threads_per_worker: 1}", "{no_workers_timeout: 0.3, heartbeat_interval: 0.1}",
                             1, NULL);
    char a[600];
    herd_future *f = tu_submit(r, "t_where", herd_array(), ann(a, sizeof a, "no-such-host.invalid", NULL, 0));
    const herd_value *v;
    herd_err err = { 0 };
    assert_int_equal(herd_future_result(f, TU_WAIT_S, &v, &err), -HERD_ECRASHED);
    const char *why = herd_future_error(f);
    if (!why || !strstr(why, "no_workers_timeout") || !strstr(why, "no-such-host.invalid"))
        fail_msg("reason: %s", why ? why : "(none)");
    herd_future_release(f);
    assert_string_equal(ran_on(r, "{workers: [local-0]}"), "local-0");
    tu_flow_end(r);
}

int main(int argc, char **argv)
{
    herd_init(&argc, &argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_and_hosts),
        cmocka_unit_test(test_tcp_address),
        cmocka_unit_test(test_absent_waits),
        cmocka_unit_test(test_absent_times_out),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
