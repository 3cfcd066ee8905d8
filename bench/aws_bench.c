/* bench/aws_bench.c — aws.FargateCluster's start and close on an ECS endpoint
 * (bench/aws_bench.sh runs it against moto with the tests' ECS agent): the
 * time from herd_flow_begin (start: eager) to 4 workers connected, from
 * herd_flow_end to everything deleted, and the AWS requests each took (from
 * the provider's own log lines). Needs AWS_ENDPOINT_URL and credentials in
 * the environment.
 *
 *     aws_bench [ROUNDS] [CLUSTER_KWARGS]     (3, {n_workers: 4, image: my-prefect-image}) */
#include <herd/herd.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static unsigned long started_calls, total_calls;

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* "FargateCluster: 4 workers started (14 AWS requests so far)" and
   "FargateCluster: closed (4 workers ever started, 26 AWS requests in all)" */
static void sink(void *ud, int level, const char *line)
{
    (void)ud;
    const char *p;
    if ((p = strstr(line, "workers started (")) != NULL) started_calls = strtoul(p + 17, NULL, 10);
    if ((p = strstr(line, "ever started, ")) != NULL) total_calls = strtoul(p + 14, NULL, 10);
    if (level >= HERD_LOG_WARN) fprintf(stderr, "%s\n", line);
}

int main(int argc, char **argv)
{
    herd_init(&argc, &argv);
    int rounds = argc > 1 ? atoi(argv[1]) : 3;
    const char *ck = argc > 2 ? argv[2] : "{n_workers: 4, image: my-prefect-image}";
    for (int i = 0; i < rounds; i++) {
        herd_err err;
        herd_runner *r;
        herd_runner_opts o = { .cluster_class = "dask_cloudprovider.aws.FargateCluster", .cluster_kwargs = ck,
                               .client_kwargs = "{start: eager}", .log = sink };
        if (herd_runner_new(&r, &o, &err)) { fprintf(stderr, "%s\n", err.msg); return 1; }
        double t0 = now();
        if (herd_flow_begin(r, "aws-bench", &err) || herd_wait_for_workers(r, 4, 120, &err)) {
            fprintf(stderr, "%s\n", err.msg);
            herd_runner_free(r);
            return 1;
        }
        double t1 = now();
        int rc = herd_flow_end(r, false, &err);
        double t2 = now();
        herd_runner_free(r);
        if (rc) { fprintf(stderr, "%s\n", err.msg); return 1; }
        printf("RESULT aws_start_4_workers_s %.3f requests %lu\n", t1 - t0, started_calls);
        printf("RESULT aws_close_s %.3f requests %lu\n", t2 - t1, total_calls - started_calls);
    }
    return 0;
}
