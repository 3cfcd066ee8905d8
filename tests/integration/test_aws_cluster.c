/* tests/integration/test_aws_cluster.c — aws.FargateCluster end to end
 * against moto on 127.0.0.1, with tests/support/ecs_agent.py running each
 * ECS task's command override here as a real worker process that dials back
 * to the flow's scheduler: the seed's example (n_workers 4 and an image) runs
 * a real flow; the requests' fields as moto recorded them (command, token only
 * in the environment, network, tags); adaptive 0..4 through RunTask/StopTask;
 * failures (a bad cpu/memory pair refused before any call, an unknown
 * cluster_arn, RunTask failures[], a task that stops on a bad image, RunTask
 * throttled then served, refused dask-cloudprovider keys, SIGTERM to the
 * flow's process, the endpoint gone mid-run); TLS; the example profiles; the
 * roles' managed policies; GPUs, volumes and mount points in the task
 * definition; the sweep by herd-owner tag of what dead runs of this host left
 * (and never a live run's or another host's); the scheduler as a task
 * (fargate_scheduler, run by the agent in a network namespace holding the
 * task's IP), over TLS (security: temporary, its certificate checked as
 * herd-scheduler), and its failures; and after every test nothing
 * the cluster created is left in moto. */
#include <herd/herd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../../providers/aws/aws.h"
#include "../support/aws_moto.h"
#include "../support/testutil.h"

#include <jansson.h>
#include <errno.h>
#include <signal.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <libxml/tree.h>

static tmoto moto;

static int t_square(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    int64_t x = herd_as_int(herd_at(args, 0));
    *out = herd_tuple("is", x * x, herd_task_worker_name(ctx));
    return 0;
}
HERD_TASK(t_square);

static int t_nap(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    tu_sleep_ms(herd_as_int(herd_at(args, 0)));
    *out = herd_str(herd_task_worker_name(ctx));
    return 0;
}
HERD_TASK(t_nap);

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

static int each(void **state)
{
    (void)state;
    tmoto_reset(&moto);
    tmoto_env(&moto, NULL);
    return 0;
}

static aws_client *checker(void)
{
    aws_client *c;
    herd_err err = { 0 };
    aws_client_opts o = { 0 };
    if (aws_client_new(&c, &o, &err)) fail_msg("aws_client_new: %s", err.msg);
    return c;
}

static json_t *ecs(aws_client *c, const char *op, json_t *req)
{
    json_t *resp = NULL;
    herd_err err = { 0 };
    if (aws_json_call(c, AWS_ECS, op, req, &resp, NULL, 0, &err)) fail_msg("ecs %s: %s", op, err.msg);
    json_decref(req);
    return resp;
}

/* A query-protocol call with NULL-terminated key/value pairs; the reply, or
   the test fails. */
static xmlDoc *qcall(aws_client *c, const char *svc, const char *op, ...)
{
    aws_buf q;
    aws_query_init(&q, op, strcmp(svc, "iam") == 0 ? "2010-05-08" : "2016-11-15");
    va_list ap;
    va_start(ap, op);
    for (const char *k; (k = va_arg(ap, const char *));) aws_query_add(&q, k, va_arg(ap, const char *));
    va_end(ap);
    xmlDoc *d = NULL;
    herd_err err = { 0 };
    if (aws_query_call(c, svc, op, q.s, &d, NULL, 0, &err)) fail_msg("%s %s: %s", svc, op, err.msg);
    aws_buf_free(&q);
    return d;
}

/* How many elements named `name` the reply holds. */
static int xml_count(xmlNode *n, const char *name)
{
    int k = 0;
    for (; n; n = n->next) {
        if (n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0) k++;
        k += xml_count(n->children, name);
    }
    return k;
}

static int active_clusters(void)
{
    aws_client *c = checker();
    json_t *r = ecs(c, "ListClusters", json_object()), *arn;
    size_t i;
    int n = 0;
    json_array_foreach(json_object_get(r, "clusterArns"), i, arn) {
        json_t *d = ecs(c, "DescribeClusters", json_pack("{s:[O]}", "clusters", arn));
        const char *st = json_string_value(json_object_get(json_array_get(json_object_get(d, "clusters"), 0), "status"));
        n += st && strcmp(st, "ACTIVE") == 0;
        json_decref(d);
    }
    json_decref(r);
    aws_client_free(c);
    return n;
}

/* Nothing this test's clusters created is left: no ACTIVE cluster, no task
   running, no ACTIVE task definition, no herd security group, role or log
   group. */
static void assert_nothing_left(void)
{
    aws_client *c = checker();
    json_t *r = ecs(c, "ListClusters", json_object()), *arn;
    size_t i;
    json_array_foreach(json_object_get(r, "clusterArns"), i, arn) {
        json_t *d = ecs(c, "DescribeClusters", json_pack("{s:[O]}", "clusters", arn));
        const char *st = json_string_value(json_object_get(json_array_get(json_object_get(d, "clusters"), 0), "status"));
        if (st && strcmp(st, "ACTIVE") == 0) fail_msg("cluster %s is still ACTIVE", json_string_value(arn));
        json_decref(d);
        d = ecs(c, "ListTasks", json_pack("{s:O, s:s}", "cluster", arn, "desiredStatus", "RUNNING"));
        assert_int_equal(json_array_size(json_object_get(d, "taskArns")), 0);
        json_decref(d);
    }
    json_decref(r);
    r = ecs(c, "ListTaskDefinitions", json_pack("{s:s}", "status", "ACTIVE"));
    assert_int_equal(json_array_size(json_object_get(r, "taskDefinitionArns")), 0);
    json_decref(r);
    herd_err err = { 0 };
    aws_buf q;
    xmlDoc *d = NULL;
    char buf[256];
    aws_query_init(&q, "DescribeSecurityGroups", "2016-11-15");
    assert_int_equal(aws_query_call(c, "ec2", "DescribeSecurityGroups", q.s, &d, NULL, 0, &err), 0);
    aws_buf_free(&q);
    xmlNode *set = aws_xml_find(xmlDocGetRootElement(d), "securityGroupInfo");
    for (xmlNode *it = set ? set->children : NULL; it; it = it->next)
        if (strncmp(aws_xml_text(it, "groupName", buf, sizeof buf), "herd-", 5) == 0) fail_msg("security group %s left", buf);
    xmlFreeDoc(d);
    aws_query_init(&q, "DescribeAddresses", "2016-11-15");    /* the agent's Elastic IPs: released */
    assert_int_equal(aws_query_call(c, "ec2", "DescribeAddresses", q.s, &d, NULL, 0, &err), 0);
    aws_buf_free(&q);
    set = aws_xml_find(xmlDocGetRootElement(d), "addressesSet");
    if (set && aws_xml_child(set, "item")) fail_msg("an Elastic IP is left");
    xmlFreeDoc(d);
    aws_query_init(&q, "ListRoles", "2010-05-08");
    assert_int_equal(aws_query_call(c, "iam", "ListRoles", q.s, &d, NULL, 0, &err), 0);
    aws_buf_free(&q);
    set = aws_xml_find(xmlDocGetRootElement(d), "Roles");
    for (xmlNode *it = set ? set->children : NULL; it; it = it->next)
        if (strncmp(aws_xml_text(it, "RoleName", buf, sizeof buf), "herd-", 5) == 0) fail_msg("role %s left", buf);
    xmlFreeDoc(d);
    json_t *lr = NULL, *lq = json_pack("{s:s}", "logGroupNamePrefix", "/herd/");
    assert_int_equal(aws_json_call(c, AWS_LOGS, "DescribeLogGroups", lq, &lr, NULL, 0, &err), 0);
    json_decref(lq);
    assert_int_equal(json_array_size(json_object_get(lr, "logGroups")), 0);
    json_decref(lr);
    aws_client_free(c);
}

/* Delete the log groups under /herd/ that a cluster kept because its workers
 * wrote to them (as a close or a sweep does); returns how many there were. */
static size_t delete_kept_log_groups(void)
{
    herd_err err = { 0 };
    aws_client *c = checker();
    json_t *lr = NULL, *lq = json_pack("{s:s}", "logGroupNamePrefix", "/herd/"), *g;
    assert_int_equal(aws_json_call(c, AWS_LOGS, "DescribeLogGroups", lq, &lr, NULL, 0, &err), 0);
    json_decref(lq);
    size_t i, n = json_array_size(json_object_get(lr, "logGroups"));
    json_array_foreach(json_object_get(lr, "logGroups"), i, g) {
        json_t *dq = json_pack("{s:O}", "logGroupName", json_object_get(g, "logGroupName"));
        assert_int_equal(aws_json_call(c, AWS_LOGS, "DeleteLogGroup", dq, NULL, NULL, 0, &err), 0);
        json_decref(dq);
    }
    json_decref(lr);
    aws_client_free(c);
    return n;
}


static herd_runner *aws_flow_cl(const char *cls, const char *ck, const char *ak, const char *cl, tu_log *log,
                                herd_err *err)
{
    herd_runner *r = NULL;
    herd_runner_opts o = { .cluster_class = cls, .cluster_kwargs = ck, .adapt_kwargs = ak, .client_kwargs = cl,
                           .log = log ? tu_log_sink : tu_quiet_sink, .log_ud = log };
    if (herd_runner_new(&r, &o, err)) return NULL;
    if (herd_flow_begin(r, "aws", err)) { herd_runner_free(r); return NULL; }
    return r;
}

static herd_runner *aws_flow(const char *cls, const char *ck, const char *ak, tu_log *log, herd_err *err)
{
    return aws_flow_cl(cls, ck, ak, NULL, log, err);
}

/* The seed's example: DaskTaskRunner(cluster_class="dask_cloudprovider.aws.FargateCluster",
   cluster_kwargs={"n_workers": 4, "image": "my-prefect-image"}). */
static void test_seed_example_runs_a_flow(void **state)
{
    (void)state;
    tu_log log;
    tu_log_init(&log);
    herd_err err = { 0 };
    herd_runner *r = aws_flow("dask_cloudprovider.aws.FargateCluster", "{n_workers: 4, image: my-prefect-image}", NULL,
                              &log, &err);
    if (!r) fail_msg("%s", err.msg);
    if (herd_wait_for_workers(r, 4, 60, &err)) fail_msg("herd_wait_for_workers: %s", err.msg);
    herd_future *fs[40];
    for (int i = 0; i < 40; i++) fs[i] = tu_submit(r, "t_square", herd_tuple("i", (int64_t)i), NULL);
    char seen[4][64] = { "" };
    int nseen = 0;
    for (int i = 0; i < 40; i++) {
        const herd_value *v = NULL;
        if (herd_future_result(fs[i], 60, &v, &err)) fail_msg("%s", err.msg);
        assert_int_equal(herd_as_int(herd_at(v, 0)), i * i);
        const char *w = herd_as_str(herd_at(v, 1));
        assert_true(strncmp(w, "fargate-", 8) == 0);
        bool dup = false;
        for (int j = 0; j < nseen; j++) dup |= strcmp(seen[j], w) == 0;
        if (!dup && nseen < 4) snprintf(seen[nseen++], sizeof seen[0], "%s", w);
    }
    /* what RunTask asked for, as moto recorded it */
    aws_client *c = checker();
    json_t *cl = ecs(c, "ListClusters", json_object());
    assert_int_equal(json_array_size(json_object_get(cl, "clusterArns")), 1);
    json_t *arn = json_array_get(json_object_get(cl, "clusterArns"), 0);
    json_t *lt = ecs(c, "ListTasks", json_pack("{s:O}", "cluster", arn));
    assert_int_equal(json_array_size(json_object_get(lt, "taskArns")), 4);
    json_t *dt = ecs(c, "DescribeTasks", json_pack("{s:O, s:O, s:[s]}", "cluster", arn, "tasks",
                                                   json_object_get(lt, "taskArns"), "include", "TAGS"));
    json_t *t;
    size_t i;
    json_array_foreach(json_object_get(dt, "tasks"), i, t) {
        assert_string_equal(json_string_value(json_object_get(t, "lastStatus")), "RUNNING");
        assert_string_equal(json_string_value(json_object_get(t, "launchType")), "FARGATE");
        json_t *ov = json_array_get(json_object_get(json_object_get(t, "overrides"), "containerOverrides"), 0);
        assert_string_equal(json_string_value(json_object_get(ov, "name")), "herd-worker");
        char *cmd = json_dumps(json_object_get(ov, "command"), 0), *envs = json_dumps(json_object_get(ov, "environment"), 0);
        assert_non_null(strstr(cmd, "--herd-worker"));
        assert_non_null(strstr(cmd, "--herd-nthreads\", \"4\""));     /* worker_cpu 4096 → 4 threads */
        assert_null(strstr(cmd, "HERD_TOKEN"));                          /* the token: environment only */
        assert_non_null(strstr(envs, "HERD_TOKEN"));
        assert_non_null(strstr(envs, "HERD_SCHEDULER_ADDRESS"));
        free(cmd);
        free(envs);
        char *tags = json_dumps(json_object_get(t, "tags"), 0);
        assert_non_null(tags);
        assert_non_null(strstr(tags, "\"createdBy\", \"value\": \"herd\""));
        assert_non_null(strstr(tags, "herd-cluster"));
        free(tags);
    }
    json_decref(dt);
    json_decref(lt);
    json_decref(cl);
    aws_client_free(c);
    tu_flow_end(r);
    /* each step logged */
    assert_true(tu_log_has_line(&log, "created ECS cluster", NULL));
    assert_true(tu_log_has_line(&log, "registered task definition", NULL));
    assert_true(tu_log_has_line(&log, "created security group", NULL));
    assert_true(tu_log_has_line(&log, "deleted ECS cluster", NULL));
    assert_true(tu_log_has_line(&log, "deleted role", NULL));
    assert_nothing_left();
    tu_log_free(&log);
}

static void test_adaptive_0_to_4(void **state)
{
    (void)state;
    tu_log log;
    tu_log_init(&log);
    herd_err err = { 0 };
    herd_runner *r = aws_flow("aws.FargateCluster", "{image: img, worker_cpu: 1024, worker_mem: 2048, poll_interval: 0.1}",
                              "{minimum: 0, maximum: 4, interval: 0.1, wait_count: 3}", &log, &err);
    if (!r) fail_msg("%s", err.msg);
    herd_future *fs[16];
    for (int i = 0; i < 16; i++) fs[i] = tu_submit(r, "t_nap", herd_tuple("i", (int64_t)300), NULL);
    char seen[8][64] = { "" };
    int nseen = 0;
    for (int i = 0; i < 16; i++) {
        const herd_value *v = NULL;
        if (herd_future_result(fs[i], 120, &v, &err)) fail_msg("%s", err.msg);
        bool dup = false;
        for (int j = 0; j < nseen; j++) dup |= strcmp(seen[j], herd_as_str(v)) == 0;
        if (!dup && nseen < 8) snprintf(seen[nseen++], sizeof seen[0], "%s", herd_as_str(v));
    }
    assert_true(nseen >= 2);
    /* idle: scaled down to 0 — every task stopped (StopTask, or drained by
       the scheduler and exited), while the flow is still open */
    aws_client *c = checker();
    json_t *cl = ecs(c, "ListClusters", json_object());
    json_t *arn = json_array_get(json_object_get(cl, "clusterArns"), 0);
    assert_non_null(arn);
    size_t running = 1, stopped = 0;
    for (double end = tu_now() + 60; running && tu_now() < end; tu_sleep_ms(100)) {
        json_t *lt = ecs(c, "ListTasks", json_pack("{s:O, s:s}", "cluster", arn, "desiredStatus", "RUNNING"));
        running = json_array_size(json_object_get(lt, "taskArns"));
        json_decref(lt);
    }
    json_t *lt = ecs(c, "ListTasks", json_pack("{s:O, s:s}", "cluster", arn, "desiredStatus", "STOPPED"));
    stopped = json_array_size(json_object_get(lt, "taskArns"));
    json_decref(lt);
    json_decref(cl);
    aws_client_free(c);
    assert_int_equal(running, 0);
    assert_true(stopped >= (size_t)nseen);
    /* retired by the names the workers gave themselves (fargate-<task id>):
       each retire found its task */
    for (double end = tu_now() + 30; !tu_log_has_line(&log, "adaptive: worker fargate-", "retired") && tu_now() < end;)
        tu_sleep_ms(50);
    assert_true(tu_log_has_line(&log, "adaptive: worker fargate-", "retired"));
    assert_false(tu_log_has_line(&log, "retire(", "failed"));
    tu_flow_end(r);
    assert_nothing_left();
    tu_log_free(&log);
}

/* Lines of the log holding w. */
static int log_count(tu_log *l, const char *w)
{
    int n = 0;
    pthread_mutex_lock(&l->mu);
    for (const char *p = l->text; p && (p = strstr(p, w)); p += strlen(w)) n++;
    pthread_mutex_unlock(&l->mu);
    return n;
}

/* 12 workers take two RunTask calls (count 10, then 2), one command for all:
   each worker names itself fargate-<task id> from its task metadata endpoint
   (the scheduler refuses a second worker of the same name, so 12 connected
   means 12 distinct names) and the provider names it alike from RunTask's
   answer (retiring by those names: test_adaptive_0_to_4). */
static void test_runtask_batches_of_10(void **state)
{
    (void)state;
    tu_log log;
    tu_log_init(&log);
    herd_err err = { 0 };
    herd_runner *r = aws_flow("aws.FargateCluster", "{image: img, n_workers: 12, worker_cpu: 256, worker_mem: 512, "
                              "poll_interval: 0.1}", NULL, &log, &err);
    if (!r) fail_msg("%s", err.msg);
    if (herd_wait_for_workers(r, 12, 120, &err)) fail_msg("herd_wait_for_workers: %s", err.msg);
    assert_int_equal(log_count(&log, "RunTask for 10 workers"), 1);
    assert_int_equal(log_count(&log, "RunTask for 2 workers"), 1);
    assert_int_equal(log_count(&log, ": RunTask for "), 2);
    /* every task of the cluster: its worker was started under its task id */
    aws_client *c = checker();
    json_t *cl = ecs(c, "ListClusters", json_object());
    json_t *arn = json_array_get(json_object_get(cl, "clusterArns"), 0);
    assert_non_null(arn);
    json_t *lt = ecs(c, "ListTasks", json_pack("{s:O}", "cluster", arn)), *t;
    assert_int_equal(json_array_size(json_object_get(lt, "taskArns")), 12);
    size_t i;
    json_array_foreach(json_object_get(lt, "taskArns"), i, t) {
        char want[300];
        snprintf(want, sizeof want, "started worker fargate-%s as task", strrchr(json_string_value(t), '/') + 1);
        if (!tu_log_has_line(&log, want, NULL)) fail_msg("no line \"%s\"", want);
    }
    json_decref(lt);
    json_decref(cl);
    aws_client_free(c);
    tu_flow_end(r);
    assert_nothing_left();
    tu_log_free(&log);
}

static void expect_refused(const char *cls, const char *ck, const char *want)
{
    herd_err err = { 0 };
    herd_runner *r = aws_flow(cls, ck, NULL, NULL, &err);
    if (r) {
        int rc = herd_wait_for_workers(r, 1, 30, &err);
        herd_flow_end(r, true, NULL);
        herd_runner_free(r);
        assert_int_not_equal(rc, 0);
    }
    if (!strstr(err.msg, want)) fail_msg("expected \"%s\" in: %s", want, err.msg);
}

/* Refused before any AWS call: nothing exists in moto afterwards. */
static void test_bad_kwargs_refused_before_any_call(void **state)
{
    (void)state;
    expect_refused("aws.FargateCluster", "{image: x, worker_cpu: 256, worker_mem: 4096}",
                   "worker_cpu/worker_mem: Fargate's worker_cpu 256 allows worker_mem 512, 1024 or 2048 MiB, got 4096");
    expect_refused("aws.FargateCluster", "{image: x, worker_cpu: 1000, worker_mem: 2048}",
                   "Fargate's worker_cpu is one of 256, 512, 1024, 2048, 4096, 8192, 16384, got 1000");
    expect_refused("aws.FargateCluster", "{n_workers: 1}", "image: required");
    expect_refused("aws.FargateCluster", "{image: x, aws_secret_access_key: abc}", "aws_secret_access_key: not supported");
    expect_refused("aws.ECSCluster", "{image: x}", "cluster_arn: required with fargate_workers: false");
    expect_refused("aws.FargateCluster", "{image: x, subnets: [1]}", "subnets[0]: expected a non-empty string, got int");
    expect_refused("aws.FargateCluster", "{image: x, imagee: y}", "imagee");
    aws_client *c = checker();
    json_t *r = ecs(c, "ListClusters", json_object());
    assert_int_equal(json_array_size(json_object_get(r, "clusterArns")), 0);
    assert_int_equal(aws_client_calls(c), 1);
    json_decref(r);
    aws_client_free(c);
}

static void test_unknown_cluster_arn(void **state)
{
    (void)state;
    expect_refused("aws.FargateCluster",
                   "{image: x, n_workers: 1, cluster_arn: 'arn:aws:ecs:us-east-1:123456789012:cluster/nope'}",
                   "no active ECS cluster arn:aws:ecs:us-east-1:123456789012:cluster/nope (MISSING)");
    assert_nothing_left();
}

/* RunTask answers 200 with failures[]: the worker is failed with the reason,
   the flow says so; throttled RunTasks are retried and served. */
static void test_runtask_failures_and_throttling(void **state)
{
    (void)state;
    char ep[160];
    snprintf(ep, sizeof ep, "{image: x, n_workers: 1, endpoint_url: '%s', poll_interval: 0.1}", moto.ep_url);
    tmoto_inject_op(&moto, "RunTask", 1, 200, "application/x-amz-json-1.1",
                    "{\"tasks\": [], \"failures\": [{\"arn\": \"arn:aws:ecs:us-east-1:1:container-instance/x\", "
                    "\"reason\": \"RESOURCE:MEMORY\", \"detail\": \"not enough memory\"}]}");
    expect_refused("aws.FargateCluster", ep, "RunTask failed: RESOURCE:MEMORY: not enough memory");
    assert_nothing_left();

    tu_log log;
    tu_log_init(&log);
    herd_err err = { 0 };
    tmoto_inject_op(&moto, "RunTask", 2, 400, "application/x-amz-json-1.1",
                    "{\"__type\": \"ThrottlingException\", \"message\": \"Rate exceeded\"}");
    herd_runner *r = aws_flow("aws.FargateCluster", ep, NULL, &log, &err);
    if (!r) fail_msg("%s", err.msg);
    if (herd_wait_for_workers(r, 1, 60, &err)) fail_msg("%s", err.msg);
    herd_future *f = tu_submit(r, "t_square", herd_tuple("i", (int64_t)7), NULL);
    const herd_value *v = NULL;
    if (herd_future_result(f, 60, &v, &err)) fail_msg("%s", err.msg);
    assert_int_equal(herd_as_int(herd_at(v, 0)), 49);
    tu_flow_end(r);
    assert_nothing_left();
    tu_log_free(&log);
}

/* A task that stops by itself (its image cannot be pulled) is a failed worker
   whose detail is the task's stoppedReason. */
static void test_task_stopped_is_worker_failure(void **state)
{
    (void)state;
    tu_log log;
    tu_log_init(&log);
    log.echo_level = HERD_LOG_ERROR + 1;
    herd_err err = { 0 };
    herd_runner *r = aws_flow("aws.FargateCluster", "{image: bad-image, n_workers: 1, poll_interval: 0.1}", NULL, &log,
                              &err);
    if (!r) fail_msg("%s", err.msg);
    herd_wait_for_workers(r, 1, 0.01, NULL);   /* starts the cluster (lazy start) */
    assert_true(tu_log_wait_line(&log, "fargate-", "CannotPullContainerError", 60));
    herd_flow_end(r, true, NULL);
    herd_runner_free(r);
    assert_nothing_left();
    tu_log_free(&log);
}

/* A worker whose container fails by itself (exit code 3, after writing two
   lines) is a failed worker whose detail ends with the last lines its
   container logged to the cluster's log group (GetLogEvents), and those
   lines are logged. The log group then holds them, so the close keeps it
   (only an empty one is deleted); the test deletes it. */
static void test_failed_worker_shows_its_log(void **state)
{
    (void)state;
    char script[512];
    snprintf(script, sizeof script, "%s/failing-worker.sh", moto.home);
    FILE *f = fopen(script, "w");
    assert_non_null(f);
    fputs("#!/bin/sh\necho 'starting up' >&2\necho 'fatal: cannot open /data/model.bin' >&2\nexit 3\n", f);
    fclose(f);
    assert_int_equal(chmod(script, 0755), 0);
    char ck[800];
    snprintf(ck, sizeof ck, "{image: x, n_workers: 1, poll_interval: 0.1, worker_command: '%s'}", script);
    tu_log log;
    tu_log_init(&log);
    log.echo_level = HERD_LOG_ERROR + 1;
    herd_err err = { 0 };
    herd_runner *r = aws_flow("aws.FargateCluster", ck, NULL, &log, &err);
    if (!r) fail_msg("%s", err.msg);
    herd_wait_for_workers(r, 1, 0.01, NULL);   /* starts the cluster (lazy start) */
    assert_true(tu_log_wait_line(&log, "failed; the last lines of its log stream",
                                 "starting up | fatal: cannot open /data/model.bin", 60));
    assert_true(tu_log_wait_line(&log, "fargate-", "(exit code 3); log: starting up | fatal: cannot open", 60));
    herd_flow_end(r, true, NULL);
    herd_runner_free(r);
    assert_true(tu_log_has_line(&log, "kept log group", "it holds the workers' logs"));
    assert_int_equal(delete_kept_log_groups(), 1);
    unlink(script);
    assert_nothing_left();
    tu_log_free(&log);
}

/* security: temporary: the tasks dial the scheduler over TLS with the
   certificate the core issued for the address scheduler_listen chose. */
static void test_tls_temporary(void **state)
{
    (void)state;
    tu_log log;
    tu_log_init(&log);
    herd_err err = { 0 };
    herd_runner *r = aws_flow_cl("aws.FargateCluster", "{image: x, n_workers: 2, worker_cpu: 256, worker_mem: 512}",
                                 NULL, "{security: temporary}", &log, &err);
    if (!r) fail_msg("%s", err.msg);
    if (herd_wait_for_workers(r, 2, 60, &err)) fail_msg("%s", err.msg);
    herd_future *f = tu_submit(r, "t_square", herd_tuple("i", (int64_t)9), NULL);
    const herd_value *v = NULL;
    if (herd_future_result(f, 60, &v, &err)) fail_msg("%s", err.msg);
    assert_int_equal(herd_as_int(herd_at(v, 0)), 81);
    assert_true(tu_log_has_line(&log, "cluster up at tls://127.0.0.1:", NULL));
    tu_flow_end(r);
    assert_nothing_left();
    tu_log_free(&log);
}

/* A detail of task t's network interface attachment ("privateIPv4Address"). */
static const char *task_detail(json_t *t, const char *name)
{
    json_t *d;
    size_t j;
    json_array_foreach(json_object_get(json_array_get(json_object_get(t, "attachments"), 0), "details"), j, d)
        if (strcmp(json_string_value(json_object_get(d, "name")), name) == 0)
            return json_string_value(json_object_get(d, "value"));
    return NULL;
}

/* The public IP of network interface eni as moto reports it (Association.PublicIp), "" when none. */
static void eni_public_ip(aws_client *c, const char *eni, char *out, size_t cap)
{
    herd_err err = { 0 };
    aws_buf q;
    xmlDoc *d = NULL;
    aws_query_init(&q, "DescribeNetworkInterfaces", "2016-11-15");
    aws_query_add(&q, "NetworkInterfaceId.1", eni);
    assert_int_equal(aws_query_call(c, "ec2", "DescribeNetworkInterfaces", q.s, &d, NULL, 0, &err), 0);
    aws_buf_free(&q);
    aws_xml_text(aws_xml_find(xmlDocGetRootElement(d), "association"), "publicIp", out, cap);
    xmlFreeDoc(d);
}

/* The ingress rules of the security group this cluster created, as
   "tcp:8786-8786:0.0.0.0/0" and "-1:group" strings joined by spaces. */
static void sg_rules(aws_client *c, char *out, size_t cap)
{
    herd_err err = { 0 };
    aws_buf q;
    xmlDoc *d = NULL;
    char buf[256], from[16], to[16], cidr[64];
    size_t len = 0;
    out[0] = 0;
    aws_query_init(&q, "DescribeSecurityGroups", "2016-11-15");
    assert_int_equal(aws_query_call(c, "ec2", "DescribeSecurityGroups", q.s, &d, NULL, 0, &err), 0);
    aws_buf_free(&q);
    int groups = 0;
    xmlNode *set = aws_xml_find(xmlDocGetRootElement(d), "securityGroupInfo");
    for (xmlNode *it = set ? set->children : NULL; it; it = it->next) {
        if (strncmp(aws_xml_text(it, "groupName", buf, sizeof buf), "herd-", 5) != 0) continue;
        groups++;
        xmlNode *perms = aws_xml_child(it, "ipPermissions");
        for (xmlNode *p = perms ? perms->children : NULL; p; p = p->next) {
            aws_xml_text(p, "ipProtocol", buf, sizeof buf);
            aws_xml_text(p, "fromPort", from, sizeof from);
            aws_xml_text(p, "toPort", to, sizeof to);
            aws_xml_text(aws_xml_child(aws_xml_child(p, "ipRanges"), "item"), "cidrIp", cidr, sizeof cidr);
            len += (size_t)snprintf(out + len, cap - len, "%s%s:%s-%s:%s", len ? " " : "", buf, from, to,
                                    cidr[0] ? cidr : "group");
        }
    }
    xmlFreeDoc(d);
    assert_int_equal(groups, 1);
}

/* DescribeTasks of every task ListTasks gives in the one ECS cluster moto
   holds (the caller frees it); *listed (may be NULL): how many it listed. */
static json_t *cluster_tasks(aws_client *c, size_t *listed)
{
    json_t *cl = ecs(c, "ListClusters", json_object());
    json_t *arn = json_array_get(json_object_get(cl, "clusterArns"), 0);
    json_t *lt = ecs(c, "ListTasks", json_pack("{s:O}", "cluster", arn));
    if (listed) *listed = json_array_size(json_object_get(lt, "taskArns"));
    json_t *dt = ecs(c, "DescribeTasks", json_pack("{s:O, s:O}", "cluster", arn, "tasks", json_object_get(lt, "taskArns")));
    json_decref(lt);
    json_decref(cl);
    return dt;
}

/* n workers join r's cluster; 10 t_square tasks come back right, each run
   by one of the agent's Fargate workers. */
static void squares_on_workers(herd_runner *r, int n)
{
    herd_err err = { 0 };
    if (herd_wait_for_workers(r, n, 60, &err)) fail_msg("herd_wait_for_workers: %s", err.msg);
    herd_future *fs[10];
    for (int i = 0; i < 10; i++) fs[i] = tu_submit(r, "t_square", herd_tuple("i", (int64_t)i), NULL);
    for (int i = 0; i < 10; i++) {
        const herd_value *v = NULL;
        if (herd_future_result(fs[i], 60, &v, &err)) fail_msg("%s", err.msg);
        assert_int_equal(herd_as_int(herd_at(v, 0)), i * i);
        assert_true(strncmp(herd_as_str(herd_at(v, 1)), "fargate-", 8) == 0);
    }
}

/* fargate_scheduler: the scheduler is an ECS task too. The agent runs it in
   a network namespace holding the private IP moto gave the task and the
   public IP (an Elastic IP on its network interface) it asked for, so this
   client dials the public address the provider read from
   DescribeNetworkInterfaces and the workers the private one from
   DescribeTasks; its command is herd_scheduler_argv's, its token in the
   environment only, its cpu/memory overridden; the workers get its address;
   close stops the workers, then it, then deletes everything. */
static void test_fargate_scheduler_runs_a_flow(void **state)
{
    (void)state;
    tu_log log;
    tu_log_init(&log);
    herd_err err = { 0 };
    herd_runner *r = aws_flow("aws.FargateCluster", "{image: img, n_workers: 2, worker_cpu: 1024, worker_mem: 2048, "
                              "fargate_scheduler: true, scheduler_cpu: 512, scheduler_mem: 1024, poll_interval: 0.1}",
                              NULL, &log, &err);
    if (!r) fail_msg("%s", err.msg);
    squares_on_workers(r, 2);
    /* the scheduler task as moto recorded it, and its address as dialled */
    aws_client *c = checker();
    size_t ntasks = 0;
    json_t *dt = cluster_tasks(c, &ntasks);
    assert_int_equal(ntasks, 3);
    json_t *t;
    size_t i;
    int scheds = 0, nw = 0;
    char pub[64] = "", priv[96] = "", wenv[2][4096];
    json_array_foreach(json_object_get(dt, "tasks"), i, t) {
        json_t *ov = json_object_get(t, "overrides");
        json_t *co = json_array_get(json_object_get(ov, "containerOverrides"), 0);
        char *cmd = json_dumps(json_object_get(co, "command"), 0), *envs = json_dumps(json_object_get(co, "environment"), 0);
        assert_null(strstr(cmd, "HERD_TOKEN"));
        assert_non_null(strstr(envs, "HERD_TOKEN"));
        if (strstr(cmd, "--herd-scheduler")) {
            scheds++;
            assert_non_null(strstr(cmd, "tcp://0.0.0.0:8786"));
            assert_null(strstr(envs, "HERD_SCHEDULER_ADDRESS"));
            assert_string_equal(json_string_value(json_object_get(ov, "cpu")), "512");
            assert_string_equal(json_string_value(json_object_get(ov, "memory")), "1024");
            /* it asked for a public IP (the agent gives one only to assignPublicIp ENABLED);
               the client dials it, the workers the private one */
            const char *ip = task_detail(t, "privateIPv4Address"), *eni = task_detail(t, "networkInterfaceId");
            assert_non_null(ip);
            assert_non_null(eni);
            eni_public_ip(c, eni, pub, sizeof pub);
            assert_true(strncmp(pub, "100.", 4) == 0);
            snprintf(priv, sizeof priv, "tcp://%s:8786", ip);
            char want[200];
            snprintf(want, sizeof want, "the scheduler task runs at tcp://%s:8786 (its public IP; the workers dial "
                     "its private IP, tcp://%s:8786)", pub, ip);
            assert_true(tu_log_has_line(&log, want, NULL));
            snprintf(want, sizeof want, "tcp://%s:8786", pub);
            assert_string_equal(herd_runner_address(r), want);
        } else {
            assert_non_null(strstr(cmd, "--herd-worker"));
            snprintf(wenv[nw++ % 2], sizeof wenv[0], "%s", envs);
        }
        free(cmd);
        free(envs);
    }
    assert_int_equal(scheds, 1);
    assert_int_equal(nw, 2);
    for (int k = 0; k < 2; k++) {         /* the workers dial the private IP */
        char want[160];
        snprintf(want, sizeof want, "\"HERD_SCHEDULER_ADDRESS\", \"value\": \"%s\"", priv);
        if (!strstr(wenv[k], want)) fail_msg("expected %s in %s", want, wenv[k]);
    }
    json_decref(dt);
    aws_client_free(c);
    tu_flow_end(r);
    assert_true(tu_log_has_line(&log, "stopping the scheduler task", NULL));
    assert_true(tu_log_has_line(&log, "deleted ECS cluster", NULL));
    assert_nothing_left();
    tu_log_free(&log);
}

/* A scheduler task that stops (its image cannot be pulled) fails the flow's
   start with the task's stopCode and stoppedReason; one without a public IP
   (with fargate_use_private_ip false) fails it saying so; a bad scheduler
   cpu/memory pair is refused; nothing is left. */
static void test_fargate_scheduler_failures(void **state)
{
    (void)state;
    expect_refused("aws.FargateCluster", "{image: bad-image, n_workers: 1, fargate_scheduler: true, poll_interval: 0.1}",
                   "the scheduler task stopped (STOPPED): TaskFailedToStart: CannotPullContainerError");
    assert_nothing_left();
    /* the subnet gives no public IP (the agent gives none to this task) */
    expect_refused("aws.FargateCluster", "{image: x, n_workers: 1, fargate_scheduler: true, poll_interval: 0.1, "
                   "environment: {MOTO_ECS_NO_PUBLIC_IP: \"1\"}}",
                   "has no public IP: its subnet gave it none (assignPublicIp ENABLED, fargate_use_private_ip: false)");
    assert_nothing_left();
    expect_refused("aws.FargateCluster", "{image: x, fargate_scheduler: true, scheduler_cpu: 256, scheduler_mem: 4096}",
                   "scheduler_cpu/scheduler_mem: Fargate's worker_cpu 256 allows worker_mem 512, 1024 or 2048 MiB");
    expect_refused("aws.FargateCluster", "{image: x, mount_volumes_on_scheduler: true}",
                   "mount_volumes_on_scheduler: true needs fargate_scheduler: true");
    expect_refused("aws.FargateCluster", "{image: x, fargate_scheduler: true, mount_volumes_on_scheduler: false, "
                   "volumes: [{name: v}], mount_points: [{sourceVolume: v, containerPath: /v}]}",
                   "mount_volumes_on_scheduler: false, but the scheduler task runs the workers' task definition");
}

/* fargate_scheduler with security: temporary: the scheduler task listens on
   tls:// with a certificate (in its environment only) naming herd-scheduler,
   the name this client and the workers (HERD_TLS_SERVER_NAME) check it as
   while dialling its IP; a real flow runs over TLS. */
static void test_fargate_scheduler_tls(void **state)
{
    (void)state;
    tu_log log;
    tu_log_init(&log);
    herd_err err = { 0 };
    herd_runner *r = aws_flow_cl("aws.FargateCluster", "{image: img, n_workers: 2, worker_cpu: 256, worker_mem: 512, "
                                 "fargate_scheduler: true, poll_interval: 0.1}", NULL, "{security: temporary}", &log,
                                 &err);
    if (!r) fail_msg("%s", err.msg);
    squares_on_workers(r, 2);
    assert_true(strncmp(herd_runner_address(r), "tls://", 6) == 0);
    aws_client *c = checker();
    json_t *dt = cluster_tasks(c, NULL);
    json_t *t;
    size_t i;
    int scheds = 0, workers = 0;
    json_array_foreach(json_object_get(dt, "tasks"), i, t) {
        json_t *co = json_array_get(json_object_get(json_object_get(t, "overrides"), "containerOverrides"), 0);
        char *cmd = json_dumps(json_object_get(co, "command"), 0), *envs = json_dumps(json_object_get(co, "environment"), 0);
        assert_null(strstr(cmd, "BEGIN"));                       /* no key or certificate on a command line */
        assert_non_null(strstr(envs, "\"HERD_TLS_CA\""));
        assert_non_null(strstr(envs, "\"HERD_TLS_CERT\""));
        assert_non_null(strstr(envs, "\"HERD_TLS_KEY\""));
        if (strstr(cmd, "--herd-scheduler")) {
            scheds++;
            assert_non_null(strstr(cmd, "tls://0.0.0.0:8786"));
            assert_null(strstr(envs, "HERD_TLS_SERVER_NAME"));
        } else {
            workers++;
            assert_non_null(strstr(envs, "\"HERD_TLS_SERVER_NAME\", \"value\": \"herd-scheduler\""));
            assert_non_null(strstr(envs, "\"value\": \"tls://"));
        }
        free(cmd);
        free(envs);
    }
    assert_int_equal(scheds, 1);
    assert_int_equal(workers, 2);
    json_decref(dt);
    aws_client_free(c);
    assert_true(tu_log_has_line(&log, "the scheduler task runs at tls://", NULL));
    tu_flow_end(r);
    assert_nothing_left();
    tu_log_free(&log);
}

/* fargate_use_private_ip: true: no public IP asked for (the agent gives
   none), the client and the workers both dial the private IP. A loopback
   dashboard_address (port 0) opens nothing in the security group. */
static void test_fargate_scheduler_private_ip(void **state)
{
    (void)state;
    tu_log log;
    tu_log_init(&log);
    herd_err err = { 0 };
    herd_runner *r = aws_flow_cl("aws.FargateCluster", "{image: img, n_workers: 1, worker_cpu: 256, worker_mem: 512, "
                                 "fargate_scheduler: true, fargate_use_private_ip: true, poll_interval: 0.1}", NULL,
                                 "{dashboard_address: \"127.0.0.1:0\"}", &log, &err);
    if (!r) fail_msg("%s", err.msg);
    herd_future *f = tu_submit(r, "t_square", herd_tuple("i", (int64_t)7), NULL);
    const herd_value *v = NULL;
    if (herd_future_result(f, 60, &v, &err)) fail_msg("%s", err.msg);
    assert_int_equal(herd_as_int(herd_at(v, 0)), 49);
    aws_client *c = checker();
    json_t *dt = cluster_tasks(c, NULL);
    json_t *t;
    size_t i;
    int scheds = 0;
    json_array_foreach(json_object_get(dt, "tasks"), i, t) {
        json_t *co = json_array_get(json_object_get(json_object_get(t, "overrides"), "containerOverrides"), 0);
        char *cmd = json_dumps(json_object_get(co, "command"), 0);
        if (strstr(cmd, "--herd-scheduler")) {
            scheds++;
            char pub[64], want[160];
            eni_public_ip(c, task_detail(t, "networkInterfaceId"), pub, sizeof pub);
            assert_string_equal(pub, "");
            snprintf(want, sizeof want, "tcp://%s:8786", task_detail(t, "privateIPv4Address"));
            assert_string_equal(herd_runner_address(r), want);
            snprintf(want, sizeof want, "the scheduler task runs at tcp://%s:8786", task_detail(t, "privateIPv4Address"));
            assert_true(tu_log_has_line(&log, want, NULL));
        }
        free(cmd);
    }
    assert_int_equal(scheds, 1);
    assert_false(tu_log_has_line(&log, "its public IP", NULL));
    char rules[512];
    sg_rules(c, rules, sizeof rules);
    assert_string_equal(rules, "-1:-:group tcp:8786-8786:0.0.0.0/0");
    json_decref(dt);
    aws_client_free(c);
    tu_flow_end(r);
    assert_nothing_left();
    tu_log_free(&log);
}

/* fargate_scheduler with dashboard_address ":8787": the security group this
   cluster creates opens 8787 beside 8786, and the dashboard link names the
   scheduler task's public IP; port 0 (or 8786) is refused before any call. */
static void test_fargate_scheduler_dashboard(void **state)
{
    (void)state;
    /* port 0: refused before any call */
    const char *zero[] = { "{dashboard_address: \":0\"}", "{dashboard_address: \"0.0.0.0:8786\"}" };
    const char *why[] = { "client_kwargs.dashboard_address: port 0 (any free port) with fargate_scheduler: true: the "
                          "scheduler task's security group must name the port it opens before the task runs",
                          "port 8786 with fargate_scheduler: true is the scheduler task's own port" };
    for (int k = 0; k < 2; k++) {
        herd_err err = { 0 };
        herd_runner *r = aws_flow_cl("aws.FargateCluster", "{image: img, n_workers: 1, fargate_scheduler: true}", NULL,
                                     zero[k], NULL, &err);
        if (r) {
            assert_int_not_equal(herd_wait_for_workers(r, 1, 30, &err), 0);
            herd_flow_end(r, true, NULL);
            herd_runner_free(r);
        }
        if (!strstr(err.msg, why[k])) fail_msg("expected \"%s\" in: %s", why[k], err.msg);
        aws_client *c = checker();
        json_t *cl = ecs(c, "ListClusters", json_object());
        assert_int_equal(json_array_size(json_object_get(cl, "clusterArns")), 0);    /* nothing was created */
        json_decref(cl);
        aws_client_free(c);
    }
    tu_log log;
    tu_log_init(&log);
    herd_err err = { 0 };
    herd_runner *r = aws_flow_cl("aws.FargateCluster", "{image: img, n_workers: 1, worker_cpu: 256, worker_mem: 512, "
                                 "fargate_scheduler: true, poll_interval: 0.1}", NULL, "{dashboard_address: \":8787\"}",
                                 &log, &err);
    if (!r) fail_msg("%s", err.msg);
    if (herd_wait_for_workers(r, 1, 60, &err)) fail_msg("herd_wait_for_workers: %s", err.msg);
    aws_client *c = checker();
    char rules[512];
    sg_rules(c, rules, sizeof rules);
    assert_string_equal(rules, "-1:-:group tcp:8786-8786:0.0.0.0/0 tcp:8787-8787:0.0.0.0/0");
    aws_client_free(c);
    char want[128];
    const char *addr = herd_runner_address(r);            /* tcp://PUBLIC:8786 */
    assert_non_null(addr);
    snprintf(want, sizeof want, "the dashboard is available at http://%.*s:8787", (int)(strrchr(addr, ':') - addr - 6),
             addr + 6);
    assert_true(tu_log_has_line(&log, want, NULL));
    tu_flow_end(r);
    tu_log_free(&log);

    assert_nothing_left();
}

/* examples/fargate/herd.yaml's profiles pass the checks herd_runner_new makes
   (the provider's schema, the Fargate pairs) without starting anything. */
static void test_example_profiles(void **state)
{
    (void)state;
    char path[PATH_MAX];
    tmoto_src_path(path, sizeof path, "examples/fargate/herd.yaml");
    setenv("HERD_CONFIG", path, 1);
    const char *profiles[] = { "fargate", "fargate-adaptive", "fargate-given", "fargate-scheduler", "ecs-gpu" };
    for (size_t i = 0; i < 4; i++) {
        herd_runner *r = NULL;
        herd_err err = { 0 };
        herd_runner_opts o = { .profile = profiles[i], .log = tu_quiet_sink };
        if (herd_runner_new(&r, &o, &err)) fail_msg("profile %s: %s", profiles[i], err.msg);
        herd_runner_free(r);
    }
    unsetenv("HERD_CONFIG");
}

/* The roles herd creates carry managed policies, as dask-cloudprovider's:
   the execution role AWS's AmazonECSTaskExecutionRolePolicy, the task role
   task_role_policies (AttachRolePolicy); both under the path /herd/, named
   in the task definition, detached before DeleteRole at close. */
static void test_roles_managed_policies(void **state)
{
    (void)state;
    tu_log log;
    tu_log_init(&log);
    herd_err err = { 0 };
    herd_runner *r = aws_flow("aws.FargateCluster", "{image: x, n_workers: 1, worker_cpu: 256, worker_mem: 512, "
                              "task_role_policies: ['arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess']}", NULL, &log, &err);
    if (!r) fail_msg("%s", err.msg);
    if (herd_wait_for_workers(r, 1, 60, &err)) fail_msg("%s", err.msg);
    aws_client *c = checker();
    xmlDoc *d = qcall(c, "iam", "ListRoles", "PathPrefix", "/herd/", NULL);
    xmlNode *set = aws_xml_find(xmlDocGetRootElement(d), "Roles");
    int nroles = 0;
    char name[128], arn[256], pol[256];
    for (xmlNode *it = set ? set->children : NULL; it; it = it->next) {
        if (it->type != XML_ELEMENT_NODE) continue;
        nroles++;
        aws_xml_text(it, "RoleName", name, sizeof name);
        xmlDoc *p = qcall(c, "iam", "ListAttachedRolePolicies", "RoleName", name, NULL);
        assert_int_equal(xml_count(xmlDocGetRootElement(p), "PolicyArn"), 1);
        aws_xml_text(aws_xml_find(xmlDocGetRootElement(p), "PolicyArn"), NULL, pol, sizeof pol);
        xmlFreeDoc(p);
        size_t n = strlen(name);
        if (n > 5 && strcmp(name + n - 5, "-exec") == 0)
            assert_string_equal(pol, "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy");
        else if (n > 5 && strcmp(name + n - 5, "-task") == 0)
            assert_string_equal(pol, "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess");
        else
            fail_msg("unexpected role %s", name);
        /* inline policies: none */
        p = qcall(c, "iam", "ListRolePolicies", "RoleName", name, NULL);
        assert_int_equal(xml_count(xmlDocGetRootElement(p), "member"), 0);
        xmlFreeDoc(p);
        aws_xml_text(it, "Arn", arn, sizeof arn);
        assert_non_null(strstr(arn, ":role/herd/"));
    }
    xmlFreeDoc(d);
    assert_int_equal(nroles, 2);
    json_t *tds = ecs(c, "ListTaskDefinitions", json_pack("{s:s}", "status", "ACTIVE"));
    assert_int_equal(json_array_size(json_object_get(tds, "taskDefinitionArns")), 1);
    json_t *td = ecs(c, "DescribeTaskDefinition", json_pack("{s:O}", "taskDefinition",
                                                         json_array_get(json_object_get(tds, "taskDefinitionArns"), 0)));
    json_t *def = json_object_get(td, "taskDefinition");
    assert_non_null(strstr(json_string_value(json_object_get(def, "executionRoleArn")), "-exec"));
    assert_non_null(strstr(json_string_value(json_object_get(def, "taskRoleArn")), "-task"));
    assert_int_equal(strncmp(json_string_value(json_object_get(def, "family")), "herd-", 5), 0);
    json_decref(td);
    json_decref(tds);
    aws_client_free(c);
    tu_flow_end(r);
    assert_true(tu_log_has_line(&log, "attached arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess to", "-task"));
    assert_int_equal(log_count(&log, ": deleted role "), 2);
    assert_false(tu_log_has_line(&log, "could not delete", NULL));
    assert_nothing_left();
    tu_log_free(&log);
}

/* worker_gpu (EC2 launch type only), volumes and mount_points: checked
   before any call, then in the task definition herd registers, as moto
   recorded it. */
static void test_gpu_and_volumes(void **state)
{
    (void)state;
    expect_refused("aws.FargateCluster", "{image: x, worker_gpu: 1}",
                   "worker_gpu: 1 GPUs asked, but Fargate has no GPUs: use ECSCluster with fargate_workers: false");
    expect_refused("aws.FargateCluster", "{image: x, volumes: [{name: data}], mount_points: [{sourceVolume: nope, "
                   "containerPath: /data}]}", "mount_points[0].sourceVolume: expected the name of one of volumes, got \"nope\"");
    expect_refused("aws.FargateCluster", "{image: x, volumes: [{name: data}], mount_points: [{sourceVolume: data, "
                   "containerPath: data}]}", "mount_points[0].containerPath: expected an absolute path");
    expect_refused("aws.FargateCluster", "{image: x, volumes: [{name: data, host: {sourcePath: /mnt}}]}",
                   "volumes[0] (data): Fargate takes EFS volumes and task-scoped bind mounts");
    expect_refused("aws.FargateCluster", "{image: x, volumes: [{name: a}, {name: a}]}",
                   "volumes[1].name: \"a\" is also volumes[0]'s");
    expect_refused("aws.FargateCluster", "{image: x, volumes: [{nam: a}]}", "volumes[0].name: expected a non-empty string");
    expect_refused("aws.FargateCluster", "{worker_task_definition_arn: td, volumes: [{name: a}]}",
                   "volumes: goes into the task definition herd registers");
    expect_refused("aws.FargateCluster", "{image: x, scheduler_task_definition_arn: td}",
                   "scheduler_task_definition_arn: not supported");
    aws_client *c = checker();
    json_t *cl = ecs(c, "ListClusters", json_object());
    assert_int_equal(json_array_size(json_object_get(cl, "clusterArns")), 0);    /* no call was made */
    json_decref(cl);
    /* an EC2 cluster with GPU instances, given */
    json_t *made = ecs(c, "CreateCluster", json_pack("{s:s}", "clusterName", "gpu-pool"));
    char ck[800];
    snprintf(ck, sizeof ck, "{image: x, cluster_arn: '%s', worker_gpu: 2, worker_cpu: 1024, worker_mem: 4096, "
             "volumes: [{name: data, host: {sourcePath: /mnt/data}}, {name: scratch}], mount_points: [{sourceVolume: "
             "data, containerPath: /data, readOnly: true}, {sourceVolume: scratch, containerPath: /scratch}]}",
             json_string_value(json_object_get(json_object_get(made, "cluster"), "clusterArn")));
    tu_log log;
    tu_log_init(&log);
    herd_err err = { 0 };
    /* adaptive from 0: the cluster is set up and waits for work (no task,
       moto has no EC2 instances to place one on) */
    herd_runner *r = aws_flow("aws.ECSCluster", ck, "{minimum: 0, maximum: 1}", &log, &err);
    if (!r) fail_msg("%s", err.msg);
    herd_wait_for_workers(r, 1, 0.01, NULL);   /* starts the cluster (lazy start) */
    assert_true(tu_log_wait_line(&log, "registered task definition", NULL, 60));
    /* its ARN, from the log line */
    char tdarn[300] = "";
    pthread_mutex_lock(&log.mu);
    const char *at = strstr(log.text, "registered task definition ");
    if (at) sscanf(at + strlen("registered task definition "), "%299s", tdarn);
    pthread_mutex_unlock(&log.mu);
    json_t *td = ecs(c, "DescribeTaskDefinition", json_pack("{s:s}", "taskDefinition", tdarn));
    json_t *def = json_object_get(td, "taskDefinition");
    assert_string_equal(json_string_value(json_object_get(def, "status")), "ACTIVE");
    json_t *ctr = json_array_get(json_object_get(def, "containerDefinitions"), 0);
    char *rr = json_dumps(json_object_get(ctr, "resourceRequirements"), JSON_SORT_KEYS);
    char *mp = json_dumps(json_object_get(ctr, "mountPoints"), JSON_SORT_KEYS);
    char *vol = json_dumps(json_object_get(def, "volumes"), JSON_SORT_KEYS);
    char *compat = json_dumps(json_object_get(def, "requiresCompatibilities"), 0);
    assert_string_equal(rr, "[{\"type\": \"GPU\", \"value\": \"2\"}]");
    assert_string_equal(mp, "[{\"containerPath\": \"/data\", \"readOnly\": true, \"sourceVolume\": \"data\"}, "
                            "{\"containerPath\": \"/scratch\", \"sourceVolume\": \"scratch\"}]");
    assert_non_null(strstr(vol, "{\"host\": {\"sourcePath\": \"/mnt/data\"}, \"name\": \"data\"}"));
    assert_non_null(strstr(vol, "\"name\": \"scratch\""));
    assert_string_equal(compat, "[\"EC2\"]");
    free(rr);
    free(mp);
    free(vol);
    free(compat);
    json_decref(td);
    herd_flow_end(r, true, NULL);
    herd_runner_free(r);
    assert_false(tu_log_has_line(&log, "deleted ECS cluster", NULL));     /* given: not ours to delete */
    json_decref(ecs(c, "DeleteCluster", json_pack("{s:O}", "cluster", json_object_get(json_object_get(made, "cluster"),
                                                                                        "clusterArn"))));
    json_decref(made);
    aws_client_free(c);
    assert_nothing_left();
    tu_log_free(&log);
}

/* ---- the sweep by tag ---- */

/* a process's start time, as the provider reads it (field 22 of its stat) */
static unsigned long long start_of(long pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    unsigned long long t = 0;
    assert_int_equal(sscanf(strrchr(buf, ')') + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d "
                            "%*d %*d %*d %llu", &t), 1);
    return t;
}

/* What a run owned by `owner` would have made (names from tag): an ECS
   cluster, a task definition, a security group, a role with a managed
   policy and a log group, each tagged herd-owner=owner. */
static void make_leftovers(aws_client *c, const char *tag, const char *owner)
{
    char name[128], fam[160], lg[160];
    snprintf(name, sizeof name, "herd-%s", tag);
    snprintf(fam, sizeof fam, "herd-%s-worker", tag);
    snprintf(lg, sizeof lg, "/herd/%s", tag);
    json_decref(ecs(c, "CreateCluster", json_pack("{s:s, s:[{s:s, s:s}]}", "clusterName", name, "tags", "key",
                                                  "herd-owner", "value", owner)));
    json_decref(ecs(c, "RegisterTaskDefinition", json_pack("{s:s, s:[{s:s, s:s, s:i}], s:[{s:s, s:s}]}", "family", fam,
                                                           "containerDefinitions", "name", "w", "image", "x", "memory",
                                                           512, "tags", "key", "herd-owner", "value", owner)));
    xmlFreeDoc(qcall(c, "ec2", "CreateSecurityGroup", "GroupName", name, "GroupDescription", "left",
                     "TagSpecification.1.ResourceType", "security-group", "TagSpecification.1.Tag.1.Key", "herd-owner",
                     "TagSpecification.1.Tag.1.Value", owner, NULL));
    xmlFreeDoc(qcall(c, "iam", "CreateRole", "RoleName", name, "Path", "/herd/", "AssumeRolePolicyDocument", "{}",
                     "Tags.member.1.Key", "herd-owner", "Tags.member.1.Value", owner, NULL));
    xmlFreeDoc(qcall(c, "iam", "AttachRolePolicy", "RoleName", name, "PolicyArn",
                     "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy", NULL));
    herd_err err = { 0 };
    json_t *req = json_pack("{s:s, s:{s:s}}", "logGroupName", lg, "tags", "herd-owner", owner);
    assert_int_equal(aws_json_call(c, AWS_LOGS, "CreateLogGroup", req, NULL, NULL, 0, &err), 0);
    json_decref(req);
}

/* How many of make_leftovers' five are still there; with del, delete them. */
static int leftovers(aws_client *c, const char *tag, bool del)
{
    char name[128], fam[160], lg[160], id[64];
    snprintf(name, sizeof name, "herd-%s", tag);
    snprintf(fam, sizeof fam, "herd-%s-worker", tag);
    snprintf(lg, sizeof lg, "/herd/%s", tag);
    int n = 0;
    json_t *d = ecs(c, "DescribeClusters", json_pack("{s:[s]}", "clusters", name));
    json_t *cl = json_array_get(json_object_get(d, "clusters"), 0);
    if (cl && strcmp(json_string_value(json_object_get(cl, "status")), "ACTIVE") == 0) {
        n++;
        if (del) json_decref(ecs(c, "DeleteCluster", json_pack("{s:s}", "cluster", name)));
    }
    json_decref(d);
    d = ecs(c, "ListTaskDefinitions", json_pack("{s:s, s:s}", "familyPrefix", fam, "status", "ACTIVE"));
    json_t *a;
    size_t i;
    json_array_foreach(json_object_get(d, "taskDefinitionArns"), i, a) {
        n++;
        if (del) json_decref(ecs(c, "DeregisterTaskDefinition", json_pack("{s:O}", "taskDefinition", a)));
    }
    json_decref(d);
    xmlDoc *x = qcall(c, "ec2", "DescribeSecurityGroups", "Filter.1.Name", "group-name", "Filter.1.Value.1", name, NULL);
    if (xml_count(xmlDocGetRootElement(x), "groupName")) {
        n++;
        aws_xml_text(aws_xml_find(xmlDocGetRootElement(x), "groupId"), NULL, id, sizeof id);
        if (del) xmlFreeDoc(qcall(c, "ec2", "DeleteSecurityGroup", "GroupId", id, NULL));
    }
    xmlFreeDoc(x);
    x = qcall(c, "iam", "ListRoles", "PathPrefix", "/herd/", NULL);
    xmlNode *set = aws_xml_find(xmlDocGetRootElement(x), "Roles");
    char rn[128];
    for (xmlNode *it = set ? set->children : NULL; it; it = it->next) {
        if (it->type != XML_ELEMENT_NODE || strcmp(aws_xml_text(it, "RoleName", rn, sizeof rn), name)) continue;
        n++;
        if (!del) continue;
        xmlFreeDoc(qcall(c, "iam", "DetachRolePolicy", "RoleName", name, "PolicyArn",
                         "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy", NULL));
        xmlFreeDoc(qcall(c, "iam", "DeleteRole", "RoleName", name, NULL));
    }
    xmlFreeDoc(x);
    herd_err err = { 0 };
    json_t *lr = NULL, *lq = json_pack("{s:s}", "logGroupNamePrefix", lg);
    assert_int_equal(aws_json_call(c, AWS_LOGS, "DescribeLogGroups", lq, &lr, NULL, 0, &err), 0);
    json_decref(lq);
    if (json_array_size(json_object_get(lr, "logGroups"))) {
        n++;
        lq = json_pack("{s:s}", "logGroupName", lg);
        if (del) assert_int_equal(aws_json_call(c, AWS_LOGS, "DeleteLogGroup", lq, NULL, NULL, 0, &err), 0);
        json_decref(lq);
    }
    json_decref(lr);
    return n;
}

/* The sweep finds leftovers by their herd-owner tag through the APIs: a dead
   run of this host (no such pid; a pid now another process's, started at
   another time) is swept, every kind of resource; a live run of this host
   (this test's parent process, with its real start time) and another host's
   run are left alone. */
static void test_sweep_by_tag(void **state)
{
    (void)state;
    char host[200] = "", dead[300], reused[300], live[300], other[300];
    gethostname(host, sizeof host - 1);
    long nopid = 4194000;
    while (kill((pid_t)nopid, 0) == 0 || errno != ESRCH) nopid--;
    long pp = (long)getppid();
    snprintf(dead, sizeof dead, "%s:%ld:12345", host, nopid);
    snprintf(reused, sizeof reused, "%s:%ld:%llu", host, pp, start_of(pp) + 1);
    snprintf(live, sizeof live, "%s:%ld:%llu", host, pp, start_of(pp));
    snprintf(other, sizeof other, "not-%s:%ld:12345", host, nopid);
    aws_client *c = checker();
    make_leftovers(c, "swdead", dead);
    make_leftovers(c, "swreused", reused);
    make_leftovers(c, "swlive", live);
    make_leftovers(c, "swother", other);
    assert_int_equal(leftovers(c, "swdead", false), 5);
    tu_log log;
    tu_log_init(&log);
    herd_err err = { 0 };
    herd_runner *r = aws_flow("aws.FargateCluster", "{image: x, n_workers: 1, worker_cpu: 256, worker_mem: 512}", NULL,
                              &log, &err);
    if (!r || herd_wait_for_workers(r, 1, 60, &err)) fail_msg("%s", err.msg);
    tu_flow_end(r);
    assert_int_equal(leftovers(c, "swdead", false), 0);
    assert_int_equal(leftovers(c, "swreused", false), 0);
    assert_int_equal(leftovers(c, "swlive", true), 5);
    assert_int_equal(leftovers(c, "swother", true), 5);
    char want[400];
    snprintf(want, sizeof want, "sweeping what the run %s left", dead);
    assert_true(tu_log_has_line(&log, want, "herd-swdead"));
    assert_false(tu_log_has_line(&log, live, NULL));
    assert_false(tu_log_has_line(&log, other, NULL));
    aws_client_free(c);
    assert_nothing_left();
    tu_log_free(&log);
}

/* The child of test_sigterm_tears_down: a flow on FargateCluster whose two
   workers are busy when SIGTERM comes. */
static int sigterm_child(const char *dir)
{
    signal(SIGTERM, SIG_DFL);
    herd_err err = { 0 };
    herd_runner *r = aws_flow("aws.FargateCluster", "{image: x, n_workers: 2, worker_cpu: 256, worker_mem: 512, "
                              "poll_interval: 0.1}", NULL, NULL, &err);
    if (!r || herd_wait_for_workers(r, 2, 60, &err)) { fprintf(stderr, "sigterm child: %s\n", err.msg); _exit(2); }
    herd_future *f[2];
    for (int i = 0; i < 2; i++)
        if (herd_submit(r, "t_nap", herd_tuple("i", (int64_t)60000), &f[i], &err)) _exit(2);
    char path[600];
    snprintf(path, sizeof path, "%s/ready", dir);
    if (tu_write_file(path, "ready\n")) _exit(2);
    for (;;) pause();
}

/* SIGTERM to a flow's process: its tasks are stopped and everything the
   cluster created is deleted before the process ends. */
static void test_sigterm_tears_down(void **state)
{
    (void)state;
    char dir[128];
    tu_mkdtemp(dir, sizeof dir);
    pid_t child;
    free(tu_self_child("--aws-sigterm-child", dir, "ready", &child));
    aws_client *c = checker();
    json_t *cl = ecs(c, "ListClusters", json_object());
    assert_int_equal(json_array_size(json_object_get(cl, "clusterArns")), 1);   /* it is up */
    json_decref(cl);
    aws_client_free(c);
    assert_int_equal(kill(child, SIGTERM), 0);
    int st;
    assert_int_equal(waitpid(child, &st, 0), child);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM);
    assert_nothing_left();
    tu_rmtree(dir);
}

/* A flow's process killed (SIGKILL: no close) leaves its resources, tagged
   herd-owner=HOST:PID:START; the next cluster's start finds them by that tag
   and sweeps them, then its own close deletes its own: nothing is left.
   skip_cleanup leaves them alone. */
static void test_killed_run_swept(void **state)
{
    (void)state;
    char dir[128];
    tu_mkdtemp(dir, sizeof dir);
    pid_t child;
    free(tu_self_child("--aws-sigterm-child", dir, "ready", &child));
    assert_int_equal(kill(child, SIGKILL), 0);
    int st;
    assert_int_equal(waitpid(child, &st, 0), child);
    tu_rmtree(dir);
    assert_int_equal(active_clusters(), 1);    /* what it left */
    tu_log log;
    tu_log_init(&log);
    herd_err err = { 0 };
    /* skip_cleanup: the leftovers stay */
    herd_runner *r = aws_flow("aws.FargateCluster", "{image: x, n_workers: 1, worker_cpu: 256, worker_mem: 512, "
                              "skip_cleanup: true}", NULL, &log, &err);
    if (!r || herd_wait_for_workers(r, 1, 60, &err)) fail_msg("%s", err.msg);
    tu_flow_end(r);
    assert_false(tu_log_has_line(&log, "sweeping what the run", NULL));
    assert_int_equal(active_clusters(), 1);
    r = aws_flow("aws.FargateCluster", "{image: x, n_workers: 1, worker_cpu: 256, worker_mem: 512}", NULL, &log, &err);
    if (!r || herd_wait_for_workers(r, 1, 60, &err)) fail_msg("%s", err.msg);
    assert_true(tu_log_has_line(&log, "sweeping what the run", "its process is gone"));
    tu_flow_end(r);
    /* the killed run's worker may have exited (status 4: its client gone) and
     * written its output first: then the sweep keeps that log group, as a close
     * does, and says so */
    if (tu_log_has_line(&log, "kept log group", NULL)) assert_true(delete_kept_log_groups() >= 1);
    assert_nothing_left();
    tu_log_free(&log);
}

/* The AWS endpoint goes away mid-run (moto is killed; the workers' processes
   live on): the flow keeps running tasks on the workers it has, and its end
   returns (each call retried, then given up) with a warning naming each
   resource it could not delete. Last: moto is gone afterwards. */
static void test_endpoint_gone_mid_run(void **state)
{
    (void)state;
    tu_log log;
    tu_log_init(&log);
    log.echo_level = HERD_LOG_ERROR + 1;
    herd_err err = { 0 };
    herd_runner *r = aws_flow("aws.FargateCluster", "{image: x, n_workers: 2, worker_cpu: 256, worker_mem: 512, "
                              "poll_interval: 0.1}", NULL, &log, &err);
    if (!r) fail_msg("%s", err.msg);
    if (herd_wait_for_workers(r, 2, 60, &err)) fail_msg("%s", err.msg);
    kill(herd_proc_pid(moto.moto), SIGKILL);          /* moto alone: its agent's children stay */
    assert_true(tu_log_wait_line(&log, "reading the tasks' states", "Couldn't connect", 60));
    herd_future *f = tu_submit(r, "t_square", herd_tuple("i", (int64_t)12), NULL);
    const herd_value *v = NULL;
    if (herd_future_result(f, 60, &v, &err)) fail_msg("%s", err.msg);
    assert_int_equal(herd_as_int(herd_at(v, 0)), 144);
    int rc = herd_flow_end(r, false, &err);
    herd_runner_free(r);
    assert_int_equal(rc, 0);
    assert_true(tu_log_has_line(&log, "StopTask", "Couldn't connect"));
    assert_true(tu_log_has_line(&log, "could not delete", "ecs DeregisterTaskDefinition"));
    assert_true(tu_log_has_line(&log, "could not delete", "ecs DeleteCluster"));
    tu_log_free(&log);
}

int main(int argc, char **argv)
{
    herd_init(&argc, &argv);   /* the agent runs this binary as the workers */
    if (argc == 3 && strcmp(argv[1], "--aws-sigterm-child") == 0) return sigterm_child(argv[2]);
    tmoto_require();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_seed_example_runs_a_flow, each),
        cmocka_unit_test_setup(test_adaptive_0_to_4, each),
        cmocka_unit_test_setup(test_runtask_batches_of_10, each),
        cmocka_unit_test_setup(test_bad_kwargs_refused_before_any_call, each),
        cmocka_unit_test_setup(test_unknown_cluster_arn, each),
        cmocka_unit_test_setup(test_runtask_failures_and_throttling, each),
        cmocka_unit_test_setup(test_task_stopped_is_worker_failure, each),
        cmocka_unit_test_setup(test_failed_worker_shows_its_log, each),
        cmocka_unit_test_setup(test_tls_temporary, each),
        cmocka_unit_test_setup(test_fargate_scheduler_runs_a_flow, each),
        cmocka_unit_test_setup(test_fargate_scheduler_failures, each),
        cmocka_unit_test_setup(test_fargate_scheduler_tls, each),
        cmocka_unit_test_setup(test_fargate_scheduler_private_ip, each),
        cmocka_unit_test_setup(test_fargate_scheduler_dashboard, each),
        cmocka_unit_test_setup(test_example_profiles, each),
        cmocka_unit_test_setup(test_sigterm_tears_down, each),
        cmocka_unit_test_setup(test_killed_run_swept, each),
        cmocka_unit_test_setup(test_roles_managed_policies, each),
        cmocka_unit_test_setup(test_gpu_and_volumes, each),
        cmocka_unit_test_setup(test_sweep_by_tag, each),
        cmocka_unit_test_setup(test_endpoint_gone_mid_run, each),   /* last: it kills moto */
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
