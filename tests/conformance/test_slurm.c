/* tests/conformance/test_slurm.c — slurm.SLURMCluster through the provider
 * conformance suite (conformance.h), on a real single-node Slurm this test
 * starts (tests/support/slurm.h). Each worker is a Slurm job of one
 * process; status reports no pids (workers run on Slurm's nodes), so the
 * rules about local processes are not checked here — test_slurm_cluster
 * kills a worker inside its job and checks the job ends and is replaced.
 * Skips, loudly, only when Slurm is not installed or the test is not root. */
#include "conformance.h"
#include "../support/slurm.h"

#include <stdio.h>
#include <stdlib.h>

static tslurm slurm;
static bool have_slurm;
static char skip_why[1024];

static char kwargs[512];

static int setup(void **state)
{
    if (!tslurm_available(skip_why, sizeof skip_why)) return 0;
    if (tslurm_start(&slurm, skip_why, sizeof skip_why)) { fprintf(stderr, "%s\n", skip_why); return -1; }
    snprintf(kwargs, sizeof kwargs, "{cores: 1, memory: 100MiB, processes: 1, n_workers: 2, interface: lo, "
                                    "poll_interval: 0.2, job_name: conf, log_directory: '%s/jobs'}", slurm.dir);
    have_slurm = true;
    return 0;
}

static int teardown(void **state)
{
    tslurm_stop(&slurm);
    return 0;
}

static conf_opts opts(const char *cls)
{
    if (!have_slurm) {
        fprintf(stderr, "\n*** SKIPPED: slurm.SLURMCluster conformance needs a local Slurm: %s ***\n\n", skip_why);
        skip();
    }
    return (conf_opts){ .cluster_class = cls, .kwargs = kwargs, .n_initial = 2, .pids = HERD_CONF_PIDS_REMOTE,
                        .timeout = 60 };
}

static void assert_queue_empty(void)
{
    char q[2048];
    double end = conf_now() + 20;
    do {
        tslurm_active(q, sizeof q);
        if (!q[0]) return;
        conf_sleep_ms(100);
    } while (conf_now() < end);
    fail_msg("jobs left in squeue after close: %s", q);
}

static void test_basic(void **state)
{
    conf_opts o = opts("slurm.SLURMCluster");
    conf_run_basic(&o);
    assert_queue_empty();
}

static void test_lifecycle(void **state)
{
    conf_opts o = opts("slurm.SLURMCluster");
    conf_run_lifecycle(&o);
    assert_queue_empty();
}

static void test_alias(void **state)
{
    conf_opts o = opts("dask_jobqueue.SLURMCluster");
    conf_run_basic(&o);
    assert_queue_empty();
}

/* Last: no worker reported a sanitizer error or crashed (the jobs'
 * output files). */
static void test_job_output_clean(void **state)
{
    opts("slurm.SLURMCluster");
    char dir[256], bad[2048];
    snprintf(dir, sizeof dir, "%s/jobs", slurm.dir);
    if (!tslurm_job_output_clean(dir, bad, sizeof bad)) fail_msg("in the jobs' output: %s", bad);
}

int main(int argc, char **argv)
{
    herd_init(&argc, &argv);   /* slurmd re-runs this binary as a worker */
    const struct CMUnitTest suite[] = {
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_lifecycle),
        cmocka_unit_test(test_alias),
        cmocka_unit_test(test_job_output_clean),
    };
    return cmocka_run_group_tests_name("slurm.SLURMCluster conformance", suite, setup, teardown);
}
