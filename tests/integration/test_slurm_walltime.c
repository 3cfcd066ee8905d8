/* tests/integration/test_slurm_walltime.c — slurm.SLURMCluster on a real
 * local Slurm (tests/support/slurm_flow.h): a job ended by its walltime, and
 * workers that retire before it (`lifetime`, `lifetime_stagger`), replaced
 * by new jobs. On its own because Slurm's smallest time limit is a minute
 * and it checks limits about every 30 s, so the walltime case takes 1 to 2
 * minutes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../support/testutil.h"
#include "../support/slurm_flow.h"

/* A job that reaches its walltime: Slurm ends it (TIMEOUT), its worker
 * fails with that state and reason, and the nanny submits a replacement. Slurm's smallest limit is a minute and it checks limits
 * about every 30 s: this case takes 1 to 2 minutes. */
static void test_walltime_expiry(void **state)
{
    need_slurm();
    char ck[1024];    /* kw's walltime is 10 minutes: this one is 1 */
    snprintf(ck, sizeof ck, "{memory: 200MiB, interface: lo, poll_interval: 0.5, walltime: '1', cores: 1, "
                            "n_workers: 1, job_name: wall, log_directory: '%s/jobs'}", slurm.dir);
    herd_err err = { 0 };
    tu_log log;
    tu_log_init(&log);
    log.echo_level = HERD_LOG_ERROR + 1;
    herd_runner *r = runner(ck, NULL, &log);
    if (herd_flow_begin(r, "slurm-walltime", &err)) fail_msg("%s", err.msg);
    if (herd_wait_for_workers(r, 1, TU_WAIT_S, &err)) fail_msg("%s", err.msg);
    st s;
    status(&s);
    char first[64];
    snprintf(first, sizeof first, "%s", s.w[0].name);
    bool timed_out = tu_log_wait_line(&log, "TIMEOUT", "TimeLimit", 180);
    /* the replacement connects */
    double end = tu_now() + 120;
    bool replaced = false;
    while (!replaced && tu_now() < end) {
        status(&s);
        for (size_t i = 0; i < s.n; i++)
            replaced |= strcmp(s.w[i].name, first) != 0 && s.w[i].state == HERD_WORKER_RUNNING;
        if (!replaced) tu_sleep_ms(100);
    }
    if (!replaced) {
        for (size_t i = 0; i < s.n; i++) fprintf(stderr, "worker %s: %d %s\n", s.w[i].name, s.w[i].state, s.w[i].detail);
        char q[2048];
        tslurm_sh(q, sizeof q, "squeue -h -r -t all; sinfo -R; sinfo");
        fprintf(stderr, "%s\n", q);
    }
    herd_flow_end(r, false, &err);
    herd_runner_free(r);
    if (!timed_out || !replaced) fprintf(stderr, "the flow's log:\n%s\n", log.text ? log.text : "");
    tu_log_free(&log);
    assert_true(timed_out);
    assert_true(replaced);
    assert_queue_empty();
}

/* Workers with a short lifetime retire during a flow of many tasks: each
 * asks the scheduler to retire it ("retiring: lifetime"), the job ends when
 * both of its workers left, adaptive scaling submits new jobs; every task
 * completes, none failed, no worker died. Waves of tasks go until the log
 * shows 4 retirements and the tasks ran in 3 Slurm jobs (a bounded poll). */
static void test_lifetime_new_jobs(void **state)
{
    need_slurm();
    char ck[1024];
    kw(ck, sizeof ck, "cores: 2, processes: 2, n_workers: 0, job_name: life, lifetime: 3s, lifetime_stagger: 1s");
    herd_err err = { 0 };
    tu_log log;
    tu_log_init(&log);
    log.echo_level = HERD_LOG_ERROR + 1;
    herd_runner *r = runner(ck, "{minimum: 2, maximum: 4, interval: 0.2}", &log);
    if (herd_flow_begin(r, "slurm-lifetime", &err)) fail_msg("%s", err.msg);
    enum { WAVE = 8, MAXW = 2000 };
    char jobs[8][32] = { { 0 } };
    int njobs = 0, nw = 0, ntasks = 0, retiring = 0;
    double end = tu_now() + 240;
    while (nw < MAXW && tu_now() < end && (retiring < 4 || njobs < 3)) {
        herd_future *fs[WAVE];
        for (int i = 0; i < WAVE; i++)
            if (herd_submit(r, "slurm_where", herd_tuple("i", 100), &fs[i], &err)) fail_msg("%s", err.msg);
        for (int i = 0; i < WAVE; i++) {
            const herd_value *v = NULL;
            if (herd_future_result(fs[i], 2 * TU_WAIT_S, &v, &err)) fail_msg("task %d: %s", ntasks, err.msg);
            const char *id = herd_as_str(v);
            assert_non_null(id);
            bool seen = false;
            for (int j = 0; j < njobs; j++) seen |= strcmp(jobs[j], id) == 0;
            if (!seen && njobs < 8) snprintf(jobs[njobs++], sizeof jobs[0], "%s", id);
            herd_future_release(fs[i]);
            ntasks++;
        }
        nw++;
        retiring = tu_log_count(&log, "retiring: lifetime", NULL);
    }
    herd_flow_end(r, false, &err);
    herd_runner_free(r);
    int died = tu_log_count(&log, "died after", NULL), failed = tu_log_count(&log, "FAILED", NULL);
    if (retiring < 4 || njobs < 3 || died || failed)
        fprintf(stderr, "%d tasks in %d jobs, %d retiring; the flow's log:\n%s\n", ntasks, njobs, retiring,
                log.text ? log.text : "");
    tu_log_free(&log);
    assert_true(retiring >= 4);
    assert_true(njobs >= 3);
    assert_int_equal(died, 0);
    assert_int_equal(failed, 0);
    assert_queue_empty();
}

int main(int argc, char **argv)
{
    herd_init(&argc, &argv);   /* slurmd re-runs this binary as a worker */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_walltime_expiry),
        cmocka_unit_test(test_lifetime_new_jobs),
        cmocka_unit_test(test_job_output_clean),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
