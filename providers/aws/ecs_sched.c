/* providers/aws/ecs_sched.c — the scheduler as an ECS task (fargate_scheduler):
 * RunTask of the workers' task definition with the command of
 * herd_scheduler_argv (listening on 8786), the token in the container's
 * environment override, scheduler_cpu/scheduler_mem as task and container
 * overrides; DescribeTasks on poll_interval until it runs (a STOPPED task is
 * an error with its stopCode, stoppedReason and exit code), then until its
 * port accepts. With public IPs (Fargate, fargate_use_private_ip false, the
 * default) the client dials the public IP of the task's network interface
 * (DescribeNetworkInterfaces, as dask-cloudprovider reads it) and the workers
 * its private IP; else both the private one. Under security: temporary its
 * certificate names ECS_SCHED_NAME, which clients and workers check, so
 * either address passes. On close the workers stop first (ecs_stop_all),
 * then this task. */
#include "ecs.h"

#include <errno.h>
#include <fcntl.h>
#include <libxml/tree.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#pragma GCC diagnostic ignored "-Wformat-truncation"

#define SCHED_WAIT 300.0   /* seconds for the task to run and listen */

static void nap(double s)
{
    struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };
    nanosleep(&ts, NULL);
}

/* Does ip:port accept a TCP connection within a second? Nothing is sent. */
static bool accepts(const char *ip, int port)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    if (inet_pton(AF_INET, ip, &sa.sin_addr) != 1) return false;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    bool ok = false;
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) {
        ok = true;
    } else if (errno == EINPROGRESS) {
        struct pollfd p = { .fd = fd, .events = POLLOUT };
        int e = 0;
        socklen_t el = sizeof e;
        ok = poll(&p, 1, 1000) == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) == 0 && e == 0;
    }
    close(fd);
    return ok;
}

static json_t *run_request(herd_cluster *c, herd_err *err)
{
    char **argv = NULL, **envp = NULL;
    char listen[64];
    snprintf(listen, sizeof listen, "tcp://0.0.0.0:%d", ECS_SCHED_PORT);
    if (herd_scheduler_argv(c->env, listen, &argv, err)) return NULL;
    bool tls = false;
    for (size_t i = 0; argv[i]; i++) tls |= strncmp(argv[i], "tls://", 6) == 0;
    c->sched_tls = tls;
    /* with TLS the certificate is issued before RunTask, the task's address
       known only after it: the certificate names ECS_SCHED_NAME, and clients
       and workers check it as that name (the CA is this run's alone) */
    static const char *const names[] = { ECS_SCHED_NAME, NULL };
    if (tls && herd_scheduler_server_name(c->env, ECS_SCHED_NAME, err)) { herd_strv_free(argv); return NULL; }
    if (herd_scheduler_envp(c->env, tls ? names : NULL, &envp, err)) { herd_strv_free(argv); return NULL; }
    json_t *cmd = json_array();
    for (size_t i = 0; argv[i]; i++)
        json_array_append_new(cmd, json_string(i == 0 && c->set.worker_command ? c->set.worker_command : argv[i]));
    herd_strv_free(argv);
    json_t *envl = ecs_worker_environment(c, (const char *const *)envp);
    herd_envp_free(envp);
    json_t *req = ecs_task_request(c, 1, cmd, envl);
    json_t *ov = json_object_get(req, "overrides");
    json_t *co = json_array_get(json_object_get(ov, "containerOverrides"), 0);
    char cpu[16], mem[16];
    snprintf(cpu, sizeof cpu, "%d", c->set.scheduler_cpu);
    snprintf(mem, sizeof mem, "%d", c->set.scheduler_mem);
    json_object_set_new(ov, "cpu", json_string(cpu));
    json_object_set_new(ov, "memory", json_string(mem));
    json_object_set_new(co, "cpu", json_integer(c->set.scheduler_cpu));
    json_object_set_new(co, "memory", json_integer(c->set.scheduler_mem));
    return req;
}

/* The public IP of network interface eni into out: 0, or an error (none
   associated: the subnet gave the task no public IP). */
static int public_ip(herd_cluster *c, const char *eni, char *out, size_t cap, herd_err *err)
{
    if (!eni || !*eni)
        return herd_err_set(err, -HERD_EPROTO, "the scheduler task %s runs but DescribeTasks names no network "
                            "interface (networkInterfaceId), so its public IP cannot be read", c->sched_arn);
    aws_buf q;
    xmlDoc *d = NULL;
    aws_query_init(&q, "DescribeNetworkInterfaces", "2016-11-15");
    aws_query_add(&q, "NetworkInterfaceId.1", eni);
    if (q.oom) { aws_buf_free(&q); return herd_err_set(err, -ENOMEM, "out of memory"); }
    int rc = aws_query_call(c->aws, "ec2", "DescribeNetworkInterfaces", q.s, &d, NULL, 0, err);
    aws_buf_free(&q);
    if (rc) return herd_err_prefix(err, "reading the scheduler task's public IP");
    xmlNode *assoc = aws_xml_find(xmlDocGetRootElement(d), "association");
    aws_xml_text(assoc, "publicIp", out, cap);
    xmlFreeDoc(d);
    if (!out[0])
        return herd_err_set(err, -HERD_EPROVIDER, "the scheduler task's network interface %s has no public IP: its "
                            "subnet gave it none (assignPublicIp ENABLED, fargate_use_private_ip: false); give "
                            "subnets that assign public IPs, or set fargate_use_private_ip: true when this machine "
                            "reaches the VPC's private addresses (in it, peered, or over a VPN)", eni);
    return 0;
}

/* The task's state: 1 running (ip filled), 0 not yet, <0 stopped or gone
   (err says why). */
static int task_state(herd_cluster *c, json_t *t, char *ip, size_t cap, herd_err *err)
{
    const char *st = json_string_value(json_object_get(t, "lastStatus"));
    if (!st) return 0;
    if (strcmp(st, "STOPPED") == 0 || strcmp(st, "DELETED") == 0 || strcmp(st, "DEACTIVATING") == 0 ||
        strcmp(st, "STOPPING") == 0 || strcmp(st, "DEPROVISIONING") == 0) {
        const char *code = json_string_value(json_object_get(t, "stopCode"));
        const char *why = json_string_value(json_object_get(t, "stoppedReason"));
        json_t *ex = json_object_get(json_array_get(json_object_get(t, "containers"), 0), "exitCode");
        char exit[48] = "";
        if (json_is_integer(ex)) snprintf(exit, sizeof exit, " (exit code %lld)", (long long)json_integer_value(ex));
        return herd_err_set(err, -HERD_EPROVIDER, "the scheduler task stopped (%s): %s%s%s%s", st, code ? code : "",
                            code ? ": " : "", why ? why : "no reason given", exit);
    }
    const char *addr = ecs_task_ip(t);
    if (strcmp(st, "RUNNING") != 0 || !addr) return 0;
    snprintf(ip, cap, "%s", addr);
    return 1;
}

int ecs_sched_start(herd_cluster *c, char *addr_out, size_t cap, herd_err *err)
{
    json_t *req = run_request(c, err), *resp = NULL;
    if (!req) return err->code ? err->code : -HERD_EPROVIDER;
    herd_log(c->env, HERD_LOG_INFO, "%s: RunTask for the scheduler (%d cpu units, %d MiB)", c->cls,
             c->set.scheduler_cpu, c->set.scheduler_mem);
    int rc = aws_json_call(c->aws, AWS_ECS, "RunTask", req, &resp, NULL, 0, err);
    json_decref(req);
    if (rc) return herd_err_prefix(err, "starting the scheduler task");
    const char *arn = json_string_value(json_object_get(json_array_get(json_object_get(resp, "tasks"), 0), "taskArn"));
    if (!arn) {
        json_t *f = json_array_get(json_object_get(resp, "failures"), 0);
        const char *reason = json_string_value(json_object_get(f, "reason"));
        const char *detail = json_string_value(json_object_get(f, "detail"));
        rc = herd_err_set(err, -HERD_EPROVIDER, "starting the scheduler task: RunTask failed: %s%s%s",
                          reason ? reason : "no task and no reason", detail ? ": " : "", detail ? detail : "");
        json_decref(resp);
        return rc;
    }
    snprintf(c->sched_arn, sizeof c->sched_arn, "%s", arn);
    json_decref(resp);
    herd_log(c->env, HERD_LOG_INFO, "%s: started the scheduler as task %s", c->cls, c->sched_arn);
    char ip[64] = "", eni[64] = "", pub[64] = "";
    bool want_pub = ecs_public_ip(c);
    int nopub = 0;
    double until = herd_now() + SCHED_WAIT;
    c->sched_private[0] = 0;
    for (;;) {
        json_t *dreq = json_pack("{s:s, s:[s]}", "cluster", c->cluster_arn, "tasks", c->sched_arn);
        rc = aws_json_call(c->aws, AWS_ECS, "DescribeTasks", dreq, &resp, NULL, 0, err);
        json_decref(dreq);
        if (rc) return herd_err_prefix(err, "reading the scheduler task's state");
        json_t *t = json_array_get(json_object_get(resp, "tasks"), 0);
        const char *gone = json_string_value(json_object_get(json_array_get(json_object_get(resp, "failures"), 0),
                                                             "reason"));
        rc = t ? task_state(c, t, ip, sizeof ip, err)
               : herd_err_set(err, -HERD_EPROVIDER, "the scheduler task %s is gone (DescribeTasks: %s)", c->sched_arn,
                              gone ? gone : "no reason given");
        if (rc == 1 && ecs_task_eni(t)) snprintf(eni, sizeof eni, "%s", ecs_task_eni(t));
        json_decref(resp);
        if (rc < 0) return rc;
        /* once running: its public IP, read once (one DescribeNetworkInterfaces); none is an
           error unless the task stopped meanwhile (its interface went with it): one more
           DescribeTasks says which */
        if (rc == 1 && want_pub && !pub[0] && (rc = public_ip(c, eni, pub, sizeof pub, err)) < 0) {
            if (nopub++) return rc;
            nap(c->set.poll_interval);
            continue;
        }
        if (rc == 1 && accepts(want_pub ? pub : ip, ECS_SCHED_PORT)) break;
        if (herd_now() > until)
            return herd_err_set(err, -HERD_ETIMEOUT, "the scheduler task %s %s after %.0f s", c->sched_arn, rc == 1 ? "runs but does not accept on its port" : "is not running",
                                SCHED_WAIT);
        nap(c->set.poll_interval);
    }
    const char *scheme = c->sched_tls ? "tls" : "tcp";
    snprintf(addr_out, cap, "%s://%s:%d", scheme, want_pub ? pub : ip, ECS_SCHED_PORT);
    if (want_pub) {
        snprintf(c->sched_private, sizeof c->sched_private, "%s://%s:%d", scheme, ip, ECS_SCHED_PORT);
        herd_log(c->env, HERD_LOG_INFO, "%s: the scheduler task runs at %s (its public IP; the workers dial its "
                 "private IP, %s)", c->cls, addr_out, c->sched_private);
    } else {
        herd_log(c->env, HERD_LOG_INFO, "%s: the scheduler task runs at %s", c->cls, addr_out);
    }
    return 0;
}

void ecs_sched_stop(herd_cluster *c)
{
    if (!c->sched_arn[0]) return;
    herd_err err = { 0 };
    json_t *req = json_pack("{s:s, s:s, s:s}", "cluster", c->cluster_arn, "task", c->sched_arn, "reason",
                            "herd: cluster closed"), *resp = NULL;
    int rc = aws_json_call(c->aws, AWS_ECS, "StopTask", req, &resp, NULL, 0, &err);
    json_decref(req);
    json_decref(resp);
    if (rc) {
        herd_log(c->env, HERD_LOG_WARN, "%s: StopTask %s (the scheduler): %s", c->cls, c->sched_arn, err.msg);
        return;
    }
    herd_log(c->env, HERD_LOG_INFO, "%s: stopping the scheduler task %s", c->cls, c->sched_arn);
    /* wait for STOPPED: the security group cannot go before the task */
    double until = herd_now() + SCHED_WAIT;
    while (herd_now() < until) {
        json_t *dreq = json_pack("{s:s, s:[s]}", "cluster", c->cluster_arn, "tasks", c->sched_arn);
        rc = aws_json_call(c->aws, AWS_ECS, "DescribeTasks", dreq, &resp, NULL, 0, &err);
        json_decref(dreq);
        if (rc) break;
        json_t *t = json_array_get(json_object_get(resp, "tasks"), 0);
        const char *st = json_string_value(json_object_get(t, "lastStatus"));
        bool done = !t || (st && (strcmp(st, "STOPPED") == 0 || strcmp(st, "DELETED") == 0));
        json_decref(resp);
        if (done) { c->sched_arn[0] = 0; return; }
        nap(c->set.poll_interval);
    }
    herd_log(c->env, HERD_LOG_WARN, "%s: the scheduler task %s is not STOPPED%s%s", c->cls, c->sched_arn,
             rc ? ": " : "", rc ? err.msg : "");
}
