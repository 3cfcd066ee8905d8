/* tests/support/slurm_flow.h — what the SLURMCluster integration tests
 * share (test_slurm_cluster.c, test_slurm_walltime.c): the task the jobs'
 * workers run (slurm_where: the Slurm job id it ran in), the group setup and
 * teardown of a local Slurm (slurm.h), cluster_kwargs for small jobs on this
 * machine (kw), a runner whose cluster the test can see (factory, runner,
 * status), the check that the queue is empty, and the last case of each
 * binary (no sanitizer report or crash in the jobs' output). Include once,
 * after cmocka.h and testutil.h. */
#ifndef HERD_TEST_SLURM_FLOW_H
#define HERD_TEST_SLURM_FLOW_H

#include "slurm.h"

/* ---- tasks (run inside the Slurm jobs) ---- */

/* Sleep args[0] ms; the Slurm job this worker runs in. */
static int slurm_where(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    tu_sleep_ms(herd_as_int(herd_at(args, 0)));
    const char *id = getenv("SLURM_JOB_ID");
    *out = herd_str(id ? id : "none");
    return 0;
}
HERD_TASK(slurm_where);

/* ---- fixtures ---- */

static tslurm slurm;
static bool have_slurm;
static char skip_why[1024];

static int setup(void **state)
{
    if (!tslurm_available(skip_why, sizeof skip_why)) return 0;
    if (tslurm_start(&slurm, skip_why, sizeof skip_why)) { fprintf(stderr, "%s\n", skip_why); return -1; }
    have_slurm = true;
    return 0;
}

static int teardown(void **state)
{
    tslurm_stop(&slurm);
    return 0;
}

static inline void need_slurm(void)
{
    if (!have_slurm) {
        fprintf(stderr, "\n*** SKIPPED: the SLURMCluster tests need a local Slurm: %s ***\n\n", skip_why);
        skip();
    }
}

/* cluster_kwargs: small jobs on this machine, polled often */
static inline void kw(char *buf, size_t cap, const char *more)
{
    snprintf(buf, cap, "{memory: 200MiB, interface: lo, poll_interval: 0.2, walltime: '00:10:00', "
                       "log_directory: '%s/jobs'%s%s}", slurm.dir, more && *more ? ", " : "", more ? more : "");
}

static const herd_provider *cur_prov;
static herd_cluster *cur_cluster;

static int factory(const herd_value *kwargs, const herd_cluster_env *env, const herd_provider **prov_out,
                   herd_cluster **out, herd_err *err)
{
    const herd_provider *p;
    int rc = herd_provider_resolve("dask_jobqueue.SLURMCluster", &p, err);   /* the alias */
    if (rc) return rc;
    herd_value *v = NULL;
    if ((rc = herd_kwargs_validate(p->params, kwargs, "cluster_kwargs", &v, err))) return rc;
    rc = p->create(out, v, env, err);
    herd_value_free(v);
    if (rc) return rc;
    *prov_out = cur_prov = p;
    cur_cluster = *out;
    return 0;
}

/* client_kwargs client (NULL: {start: eager}: these tests are about the
 * provider, which starts in herd_flow_begin) */
static inline herd_runner *runner_client(const char *ck, const char *client, const char *adapt, tu_log *log)
{
    herd_runner *r = NULL;
    herd_err err = { 0 };
    herd_runner_opts o = { .cluster_factory = factory, .cluster_kwargs = ck,
                           .client_kwargs = client ? client : "{start: eager}",
                           .adapt_kwargs = adapt, .log = log ? tu_log_sink : tu_quiet_sink, .log_ud = log };
    if (herd_runner_new(&r, &o, &err)) fail_msg("herd_runner_new: %s", err.msg);
    return r;
}

static inline herd_runner *runner(const char *ck, const char *adapt, tu_log *log)
{
    return runner_client(ck, NULL, adapt, log);
}

static inline void assert_queue_empty(void)
{
    char q[2048];
    double end = tu_now() + 20;
    do {
        tslurm_active(q, sizeof q);
        if (!q[0]) return;
        tu_sleep_ms(100);
    } while (tu_now() < end);
    tslurm_sh(NULL, 0, "scancel --user=$(id -un)");   /* the next case starts clean */
    fail_msg("jobs left in squeue: %s", q);
}

typedef struct st { herd_worker_info w[64]; size_t n; } st;

static inline void status(st *s)
{
    s->n = 0;
    assert_int_equal(cur_prov->status(cur_cluster, s->w, 64, &s->n), 0);
}

/* Last: no worker in any job of the binary's cases reported a sanitizer
 * error or crashed (their stderr is in the jobs' log_directory). */
static void test_job_output_clean(void **state)
{
    need_slurm();
    char dir[256], bad[2048];
    snprintf(dir, sizeof dir, "%s/jobs", slurm.dir);
    if (!tslurm_job_output_clean(dir, bad, sizeof bad)) fail_msg("in the jobs' output: %s", bad);
}

#endif
