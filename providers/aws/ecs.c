/* providers/aws/ecs.c — aws.FargateCluster and aws.ECSCluster (aliases
 * dask_cloudprovider.aws.*): herd workers as ECS tasks, through the AWS
 * client of this directory (no SDK). The scheduler stays in this process and
 * listens where the tasks can dial it back (scheduler_listen: this machine's
 * address on the route to the ECS endpoint, or client_kwargs.listen), or,
 * with fargate_scheduler, runs as a task too (start_scheduler, ecs_sched.c). This
 * file is the hub: the cluster's life, the hooks and the two descriptors;
 * ecs.h says which file does the rest. */
#include "ecs.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#pragma GCC diagnostic ignored "-Wformat-truncation"

static void cluster_free(herd_cluster *c)
{
    for (size_t i = 0; i < c->nw; i++) free(c->w[i]);
    free(c->w);
    ecs_strv_free(c->subnets);
    ecs_strv_free(c->sgs);
    aws_client_free(c->aws);
    ecs_settings_free(&c->set);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    pthread_mutex_destroy(&c->api_mu);
    free(c);
}

static int create(herd_cluster **out, const herd_value *kw, const herd_cluster_env *env, bool fargate,
                  const char *cls, herd_err *err)
{
    *out = NULL;
    herd_cluster *c = calloc(1, sizeof *c);
    if (!c) return herd_err_set(err, -ENOMEM, "%s: out of memory", cls);
    pthread_mutex_init(&c->mu, NULL);
    pthread_mutex_init(&c->api_mu, NULL);
    herd_cond_init_monotonic(&c->cv);
    c->env = env;
    c->cls = cls;
    ecs_owner_self(c->owner, sizeof c->owner);
    int rc = ecs_settings_read(&c->set, kw, fargate, err);
    if (rc) {
        herd_err_prefix(err, "cluster_kwargs");
    } else {
        aws_client_opts o = { .region = c->set.region, .endpoint_url = c->set.endpoint_url, .env = env };
        rc = aws_client_new(&c->aws, &o, err);
    }
    /* the scheduler task's dashboard: its port goes into the security group this cluster creates */
    c->dash_port = -1;
    herd_err derr = { 0 };
    if (!rc && c->set.fargate_scheduler && herd_scheduler_dashboard_port(env, &c->dash_port, &derr) == 0 &&
        (c->dash_port == 0 || c->dash_port == ECS_SCHED_PORT))
        rc = c->dash_port ? herd_err_set(err, -HERD_ECONFIG, "client_kwargs.dashboard_address: port %d with "
                                         "fargate_scheduler: true is the scheduler task's own port; give another "
                                         "(\":8787\")", ECS_SCHED_PORT)
           : herd_err_set(err, -HERD_ECONFIG, "client_kwargs.dashboard_address: port 0 (any free port) with "
                          "fargate_scheduler: true: the scheduler task's security group must name the port it "
                          "opens before the task runs, so give one (\":8787\"), or bind the dashboard to "
                          "127.0.0.1");
    if (rc) { cluster_free(c); return rc; }
    herd_log(env, HERD_LOG_DEBUG, "%s: %d workers, %d cpu units, %d MiB, %d threads each, region %s", cls,
             c->set.n_workers, c->set.worker_cpu, c->set.worker_mem, c->set.nthreads, aws_client_region(c->aws));
    *out = c;
    return 0;
}

static int fg_create(herd_cluster **out, const herd_value *kw, const herd_cluster_env *env, herd_err *err)
{
    return create(out, kw, env, true, "FargateCluster", err);
}

static int ec_create(herd_cluster **out, const herd_value *kw, const herd_cluster_env *env, herd_err *err)
{
    return create(out, kw, env, false, "ECSCluster", err);
}

/* The scheduler listens on this machine's address on the route to the ECS
   endpoint (what a task in the VPC dials back when this machine is in it or
   peered with it); 127.0.0.1 for an endpoint on this machine (an emulator).
   client_kwargs.listen overrides this. */
static int listen_hook(herd_cluster *c, char *out, size_t cap, herd_err *err)
{
    if (c->set.fargate_scheduler) { out[0] = 0; return 0; }   /* not asked: the scheduler is a task */
    char host[256];
    const char *ep = c->set.endpoint_url ? c->set.endpoint_url : getenv("AWS_ENDPOINT_URL");
    if (ep && strstr(ep, "://")) {
        const char *h = strstr(ep, "://") + 3;
        size_t n = h[0] == '[' ? strcspn(h + 1, "]") : strcspn(h, ":/");
        snprintf(host, sizeof host, "%.*s", (int)n, h + (h[0] == '['));
    } else {
        snprintf(host, sizeof host, "ecs.%s.amazonaws.com", aws_client_region(c->aws));
    }
    char ip[INET6_ADDRSTRLEN];
    herd_err why = { 0 };
    if (herd_route_source(host, ip, sizeof ip, NULL, &why) != 0)
        return herd_err_set(err, -HERD_EPROVIDER, "%s: %s, so this machine's address on the tasks' route is "
                            "unknown; set client_kwargs.listen to tcp://ADDRESS:PORT that the tasks can reach",
                            c->cls, why.msg);
    snprintf(c->dial, sizeof c->dial, "%s", ip);
    const char *names[] = { ip, NULL };
    int rc = herd_scheduler_names(c->env, names, err);
    if (rc) return rc;
    snprintf(out, cap, strchr(ip, ':') ? "tcp://[%s]:0" : "tcp://%s:0", ip);
    herd_log(c->env, HERD_LOG_DEBUG, "%s: the scheduler listens on %s", c->cls, out);
    return 0;
}

/* the sweep, then what the cluster creates, once; called with api_mu held */
static int set_up(herd_cluster *c, herd_err *err)
{
    if (c->set_up) return 0;
    if (!c->set.skip_cleanup) ecs_sweep(c);
    int rc = ecs_setup(c, err);
    if (!rc) c->set_up = true;
    return rc;
}

/* fargate_scheduler: the scheduler as a task (ecs_sched.c), after what the
   cluster creates; else declined (an empty address: it runs in this process) */
static int start_scheduler(herd_cluster *c, char *out, size_t cap, herd_err *err)
{
    out[0] = 0;
    if (!c->set.fargate_scheduler) return 0;
    pthread_mutex_lock(&c->api_mu);
    int rc = set_up(c, err);
    if (!rc) rc = ecs_sched_start(c, out, cap, err);
    pthread_mutex_unlock(&c->api_mu);
    if (rc) out[0] = 0;
    return rc;
}

static int start(herd_cluster *c, herd_err *err)
{
    pthread_mutex_lock(&c->api_mu);
    int rc = set_up(c, err);
    if (!rc && !c->poller_on) rc = ecs_poll_start(c, err);
    if (!rc && c->set.n_workers) rc = ecs_run(c, c->set.n_workers, err);
    if (!rc) herd_log(c->env, HERD_LOG_INFO, "%s: %d workers started (%lu AWS requests so far)", c->cls,
                      c->set.n_workers, aws_client_calls(c->aws));
    pthread_mutex_unlock(&c->api_mu);
    if (rc) herd_err_prefix(err, "%s", c->cls);
    return rc;
}

static int scale_up(herd_cluster *c, int n, herd_err *err)
{
    if (n < 0) return herd_err_set(err, -HERD_EARG, "%s scale_up: n = %d, expected >= 0", c->cls, n);
    pthread_mutex_lock(&c->api_mu);
    int rc = !c->set_up ? herd_err_set(err, -HERD_ESTATE, "%s scale_up: the cluster is not started", c->cls)
                        : n ? ecs_run(c, n, err) : 0;
    pthread_mutex_unlock(&c->api_mu);
    return rc;
}

static int retire(herd_cluster *c, const char *name, herd_err *err)
{
    pthread_mutex_lock(&c->api_mu);
    pthread_mutex_lock(&c->mu);
    ecs_worker *w = NULL;
    for (size_t i = 0; i < c->nw && !w; i++)
        if (strcmp(c->w[i]->name, name ? name : "") == 0) w = c->w[i];
    if (!w) {
        pthread_mutex_unlock(&c->mu);
        pthread_mutex_unlock(&c->api_mu);
        return herd_err_set(err, -HERD_EARG, "%s retire: no worker \"%s\"", c->cls, name ? name : "(null)");
    }
    char arn[256] = "";
    if (w->state != HERD_WORKER_STOPPED && w->state != HERD_WORKER_FAILED) {
        w->retiring = true;
        if (w->arn[0]) {
            w->state = HERD_WORKER_STOPPING;
            snprintf(arn, sizeof arn, "%s", w->arn);
        } else {
            w->state = HERD_WORKER_STOPPED;
        }
    }
    pthread_mutex_unlock(&c->mu);
    int rc = arn[0] ? ecs_stop_task(c, arn, "herd: worker retired", err) : 0;
    pthread_mutex_unlock(&c->api_mu);
    if (!rc && arn[0]) herd_log(c->env, HERD_LOG_INFO, "%s: retired worker %s (StopTask)", c->cls, name);
    return rc;
}

static int status(herd_cluster *c, herd_worker_info *out, size_t cap, size_t *n)
{
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; out && i < c->nw && i < cap; i++) {
        ecs_worker *w = c->w[i];
        memset(&out[i], 0, sizeof out[i]);
        snprintf(out[i].name, sizeof out[i].name, "%s", w->name);
        out[i].state = w->state;
        snprintf(out[i].host, sizeof out[i].host, "%s", w->ip);
        snprintf(out[i].detail, sizeof out[i].detail, "%s", w->detail[0] ? w->detail : w->arn);
    }
    if (n) *n = c->nw;
    pthread_mutex_unlock(&c->mu);
    return 0;
}

static void close_hook(herd_cluster *c)
{
    if (!c) return;
    pthread_mutex_lock(&c->api_mu);
    ecs_poll_stop(c);
    ecs_stop_all(c, 300);
    ecs_sched_stop(c);   /* after the workers: they may still report to it */
    ecs_teardown(c);
    pthread_mutex_unlock(&c->api_mu);
    herd_log(c->env, HERD_LOG_INFO, "%s: closed (%zu workers ever started, %lu AWS requests in all)", c->cls, c->nw,
             aws_client_calls(c->aws));
    cluster_free(c);
}

HERD_PROVIDER(FargateCluster) = {
    HERD_PROVIDER_HEAD(FargateCluster, "workers as AWS ECS tasks on Fargate (dask_cloudprovider.aws.FargateCluster)",
                       ecs_params),
    .create = fg_create, .start = start, .scale_up = scale_up, .retire = retire, .status = status,
    .close = close_hook, .scheduler_listen = listen_hook,
    .start_scheduler = start_scheduler,
};

HERD_PROVIDER(ECSCluster) = {
    HERD_PROVIDER_HEAD(ECSCluster, "workers as AWS ECS tasks (dask_cloudprovider.aws.ECSCluster; Fargate with "
                       "fargate_workers)", ecs_params),
    .create = ec_create, .start = start, .scale_up = scale_up, .retire = retire, .status = status,
    .close = close_hook, .scheduler_listen = listen_hook,
    .start_scheduler = start_scheduler,
};

HERD_API const herd_provider *const herd_providers[] = { &FargateCluster, &ECSCluster, NULL };
