/* tests/integration/test_lifetime.c — workers' `lifetime` (Dask's --lifetime,
 * --lifetime-stagger) on a LocalCluster of real worker processes: past its
 * lifetime each worker asks the scheduler to retire it ("retiring: lifetime"
 * in the log), finishes its running tasks and leaves; the nanny of a fixed
 * cluster, or adaptive scaling, starts a replacement; a flow of many tasks,
 * some reading values held by workers that retired meanwhile, completes with
 * every result right and no task failed or rescheduled for a death. Bad
 * lifetime kwargs and worker flags are refused naming the field.
 *
 * No assertion is about how long anything took: the flow submits waves of
 * tasks until the log shows enough retirements (a bounded poll). */
#include <herd/herd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../support/testutil.h"

/* (i) -> a 4 KiB string of 'a' + i % 26 (held on the worker that made it) */
static int t_blob(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    char buf[4097];
    memset(buf, 'a' + (int)(herd_as_int(herd_at(args, 0)) % 26), 4096);
    buf[4096] = '\0';
    tu_sleep_ms(20);
    *out = herd_str(buf);
    return 0;
}
HERD_TASK(t_blob);

/* (blob, i) -> i when blob is t_blob(i)'s value, else -1 */
static int t_check(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    const char *s = herd_as_str(herd_at(args, 0));
    int64_t i = herd_as_int(herd_at(args, 1));
    bool ok = s && strlen(s) == 4096 && s[0] == 'a' + i % 26 && s[4095] == 'a' + i % 26;
    tu_sleep_ms(20);
    *out = herd_int(ok ? i : -1);
    return 0;
}
HERD_TASK(t_check);

/* Waves of producer/consumer pairs (a consumer reads the previous wave's
 * producer, often held by a worker that retired since) until `want` workers
 * retired by lifetime; then every result must be right. */
static void run_waves(const char *ck, const char *ak, int want, const char *replaced)
{
    tu_log log;
    tu_log_init(&log);
    herd_runner *r = NULL;
    herd_err err = { 0 };
    herd_runner_opts o = { .cluster_kwargs = ck, .adapt_kwargs = ak, .log = tu_log_sink, .log_ud = &log };
    if (herd_runner_new(&r, &o, &err)) fail_msg("herd_runner_new(%s): %s", ck, err.msg);
    if (herd_flow_begin(r, "lifetime", &err)) { herd_runner_free(r); fail_msg("herd_flow_begin: %s", err.msg); }

    enum { WAVE = 8, MAXW = 400 };
    herd_future *blob[MAXW * WAVE], *chk[MAXW * WAVE];
    int nw = 0;
    double end = tu_now() + 3 * TU_WAIT_S;
    while (nw < MAXW && tu_now() < end) {
        for (int j = 0; j < WAVE; j++) {
            int i = nw * WAVE + j;
            blob[i] = tu_submit(r, "t_blob", herd_tuple("i", i), NULL);
            herd_future *src = nw ? blob[i - WAVE] : blob[i];
            chk[i] = tu_submit(r, "t_check", herd_tuple("fi", src, nw ? i - WAVE : i), NULL);
        }
        /* the wave's checks end before the next wave goes */
        for (int j = 0; j < WAVE; j++) {
            int i = nw * WAVE + j;
            assert_int_equal(tu_int_result(chk[i]), nw ? i - WAVE : i);
        }
        nw++;
        if (tu_log_count(&log, "retiring: lifetime", NULL) >= want &&
            tu_log_count(&log, replaced, NULL) >= want)
            break;
    }
    int retiring = tu_log_count(&log, "retiring: lifetime", NULL);
    if (retiring < want || tu_log_count(&log, replaced, NULL) < want)
        fail_msg("after %d waves: %d workers retiring by lifetime, %d \"%s\" lines; expected %d", nw, retiring,
                 tu_log_count(&log, replaced, NULL), replaced, want);
    /* the last wave's producers were read by no check: they may still run */
    if (herd_wait(blob, (size_t)nw * WAVE, TU_WAIT_S, &err)) fail_msg("herd_wait: %s", err.msg);
    for (int i = 0; i < nw * WAVE; i++) {
        assert_int_equal(herd_future_state(blob[i]), HERD_COMPLETED);
        assert_int_equal(herd_future_state(chk[i]), HERD_COMPLETED);
        herd_future_release(chk[i]);
        herd_future_release(blob[i]);
    }
    /* workers that retired left when told to, none died */
    assert_int_equal(tu_log_count(&log, "died after", NULL), 0);
    assert_int_equal(tu_log_count(&log, ") left: ", NULL), 0);
    tu_flow_end(r);
    tu_log_free(&log);
}

/* A fixed cluster: the nanny replaces each retired worker (its size stays). */
static void test_fixed_cluster_replaces(void **state)
{
    run_waves("{n_workers: 2, threads_per_worker: 1, lifetime: 0.6, lifetime_stagger: 0.2}", NULL, 4,
              "nanny: worker");
}

/* Adaptive scaling counts the retiring worker out and starts another. */
static void test_adaptive_replaces(void **state)
{
    run_waves("{n_workers: 0, threads_per_worker: 1, lifetime: \"600ms\", lifetime_stagger: \"200ms\"}",
              "{minimum: 1, maximum: 2, interval: 0.05}", 3, "LocalCluster: started worker");
}

static void test_bad_lifetime(void **state)
{
    herd_runner *r = NULL;
    herd_err err = { 0 };
    herd_runner_opts o = { .cluster_kwargs = "{n_workers: 1, lifetime: soon}", .log = tu_quiet_sink };
    assert_int_not_equal(herd_runner_new(&r, &o, &err), 0);
    assert_null(r);
    assert_non_null(strstr(err.msg, "lifetime"));
    assert_non_null(strstr(err.msg, "soon"));
    o.cluster_kwargs = "{n_workers: 1, lifetime_stagger: -3}";
    assert_int_not_equal(herd_runner_new(&r, &o, &err), 0);
    assert_non_null(strstr(err.msg, "lifetime_stagger"));
    o.cluster_kwargs = "{n_workers: 1, processes: false, lifetime: 5s}";   /* a thread does not retire itself */
    o.client_kwargs = "{start: eager}";                    /* the cluster is made at flow begin */
    assert_int_equal(herd_runner_new(&r, &o, &err), 0);
    assert_int_not_equal(herd_flow_begin(r, "lifetime-threads", &err), 0);
    herd_runner_free(r);
    assert_non_null(strstr(err.msg, "cluster_kwargs.lifetime"));
    assert_non_null(strstr(err.msg, "processes: true"));
}

int main(int argc, char **argv)
{
    herd_init(&argc, &argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixed_cluster_replaces),
        cmocka_unit_test(test_adaptive_replaces),
        cmocka_unit_test(test_bad_lifetime),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
