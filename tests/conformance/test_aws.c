/* tests/conformance/test_aws.c — aws.FargateCluster (and its alias
 * dask_cloudprovider.aws.FargateCluster, and aws.ECSCluster in an existing
 * cluster) through the provider conformance suite (conformance.h), against
 * moto on 127.0.0.1 with the ECS agent of tests/support/moto_ecs.py running
 * each task's command here. The workers are ECS tasks: status reports no
 * local pids, so the suite runs with pids "remote" (its rules about local
 * processes do not apply; the tasks' own ends are checked in
 * tests/integration/test_aws_cluster.c). */
#include "conformance.h"
#include "../support/aws_moto.h"

static tmoto moto;

static int setup(void **state)
{
    (void)state;
    return tmoto_start(&moto, true);
}

static int teardown(void **state)
{
    (void)state;
    tmoto_stop(&moto);
    return 0;
}

static conf_opts opts(const char *cls, const char *kw)
{
    return (conf_opts){ .cluster_class = cls, .kwargs = kw, .n_initial = 2, .pids = HERD_CONF_PIDS_REMOTE,
                        .timeout = 60 };
}

static const char *kwargs = "{n_workers: 2, image: herd-conformance, worker_cpu: 1024, worker_mem: 2048, "
                            "poll_interval: 0.1}";

static void test_basic(void **state)
{
    (void)state;
    conf_opts o = opts("aws.FargateCluster", kwargs);
    conf_run_basic(&o);
}

static void test_lifecycle(void **state)
{
    (void)state;
    conf_opts o = opts("aws.FargateCluster", kwargs);
    conf_run_lifecycle(&o);
}

static void test_alias(void **state)
{
    (void)state;
    conf_opts o = opts("dask_cloudprovider.aws.FargateCluster", kwargs);
    conf_run_basic(&o);
}

int main(int argc, char **argv)
{
    herd_init(&argc, &argv);   /* the agent runs this binary as the workers */
    tmoto_require();
    const struct CMUnitTest suite[] = {
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_lifecycle),
        cmocka_unit_test(test_alias),
    };
    return cmocka_run_group_tests_name("aws.FargateCluster conformance", suite, setup, teardown);
}
