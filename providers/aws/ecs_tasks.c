/* providers/aws/ecs_tasks.c — the workers as ECS tasks: RunTask for up to 10
 * new workers a call (one command and environment for all, as a container
 * override, the token never on a command line; each worker completes its name
 * with its task id, HERD_WORKER_NAME_FROM=ecs-metadata, and the provider
 * names it alike from RunTask's answer; a clientToken makes a retried call
 * idempotent),
 * the poller thread that reads every live task's state with DescribeTasks
 * (up to 100 ARNs a call, on poll_interval, never a busy loop), and StopTask.
 * A task that stops without being asked is a failed worker whose detail is
 * the task's stopCode, stoppedReason and exit code, and the last lines its
 * container logged to the cluster's log group (GetLogEvents). */
#include "ecs.h"

#include <errno.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* details and names are cut to herd_worker_info's fixed sizes on purpose */
#pragma GCC diagnostic ignored "-Wformat-truncation"

static void client_token(char out[37])
{
    unsigned char b[16];
    if (RAND_bytes(b, sizeof b) != 1) memset(b, 0, sizeof b);
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    char hex[33];
    aws_hex(b, 16, hex);
    snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16, hex + 20);
}

static const char *name_prefix(const herd_cluster *c)
{
    return c->set.fargate ? "fargate" : "ecs";
}

static ecs_worker *add_worker(herd_cluster *c)
{
    pthread_mutex_lock(&c->mu);
    if (c->nw == c->capw) {
        size_t cap = c->capw ? c->capw * 2 : 16;
        ecs_worker **w = realloc(c->w, cap * sizeof *w);
        if (!w) { pthread_mutex_unlock(&c->mu); return NULL; }
        c->w = w;
        c->capw = cap;
    }
    ecs_worker *w = calloc(1, sizeof *w);
    if (w) {
        /* provisional: once RunTask answers it is PREFIX-<task id>, the name
           the worker takes itself from its task metadata */
        snprintf(w->name, sizeof w->name, "%s-pending-%u", name_prefix(c), c->next_id++);
        w->state = HERD_WORKER_STARTING;
        c->w[c->nw++] = w;
    }
    pthread_mutex_unlock(&c->mu);
    return w;
}

static void apply(herd_cluster *c, ecs_worker *w, json_t *t);
static void read_logs(herd_cluster *c);

static void set_failed(herd_cluster *c, ecs_worker *w, const char *fmt, const char *a, const char *b)
{
    pthread_mutex_lock(&c->mu);
    w->state = HERD_WORKER_FAILED;
    snprintf(w->detail, sizeof w->detail, fmt, a, b ? b : "");
    pthread_mutex_unlock(&c->mu);
}

/* The environment override: envp ("K=V": the scheduler's address and
   token), then the user's variables. */
json_t *ecs_worker_environment(herd_cluster *c, const char *const *envp)
{
    json_t *envl = json_array();
    static const char addr_key[] = "HERD_SCHEDULER_ADDRESS=";
    for (size_t i = 0; envp && envp[i]; i++) {
        const char *kv = envp[i], *eq = strchr(kv, '=');
        if (!eq) continue;
        json_t *name = json_stringn(kv, (size_t)(eq - kv));
        /* the client dials the scheduler task's public IP, the workers its private one */
        const char *v = c->sched_private[0] && strncmp(kv, addr_key, sizeof addr_key - 1) == 0 ? c->sched_private : eq + 1;
        json_array_append_new(envl, json_pack("{s:o, s:s}", "name", name, "value", v));
    }
    for (size_t i = 0; i < herd_len(c->set.environment); i++)
        json_array_append_new(envl, json_pack("{s:s, s:s}", "name", herd_key_at(c->set.environment, i), "value",
                                              herd_as_str(herd_at(c->set.environment, i))));
    return envl;
}

/* RunTask's request for count tasks of the cluster's task definition running
   cmd with envl (both stolen) in its container. */
json_t *ecs_task_request(herd_cluster *c, int count, json_t *cmd, json_t *envl)
{
    json_t *subnets = json_array(), *sgs = json_array();
    for (size_t i = 0; c->subnets && c->subnets[i]; i++) json_array_append_new(subnets, json_string(c->subnets[i]));
    for (size_t i = 0; c->sgs && c->sgs[i]; i++) json_array_append_new(sgs, json_string(c->sgs[i]));
    char token[37];
    client_token(token);
    json_t *req = json_pack(
        "{s:s, s:s, s:i, s:s, s:s, s:{s:[{s:s, s:o, s:o}]}, s:{s:{s:o, s:o, s:s}}, s:o}", "cluster", c->cluster_arn,
        "taskDefinition", c->td_arn, "count", count, "clientToken", token, "startedBy", "herd", "overrides",
        "containerOverrides", "name", c->container, "command", cmd, "environment", envl, "networkConfiguration",
        "awsvpcConfiguration", "subnets", subnets, "securityGroups", sgs, "assignPublicIp",
        ecs_public_ip(c) ? "ENABLED" : "DISABLED", "tags", ecs_tags_json(c, "key", "value"));
    if (c->set.spot)
        json_object_set_new(req, "capacityProviderStrategy", json_pack("[{s:s}]", "capacityProvider", "FARGATE_SPOT"));
    else
        json_object_set_new(req, "launchType", json_string(c->set.fargate ? "FARGATE" : "EC2"));
    if (c->set.platform_version && c->set.fargate)
        json_object_set_new(req, "platformVersion", json_string(c->set.platform_version));
    return req;
}

/* The RunTask request of count workers: one command for all of them, each
   completing its name prefix with its task id (HERD_WORKER_NAME_FROM). */
static json_t *run_request(herd_cluster *c, int count, herd_err *err)
{
    herd_worker_spec spec = { .name = name_prefix(c), .nthreads = c->set.nthreads,
                              .memory_limit = (int64_t)c->set.worker_mem << 20 };
    char **argv = NULL;
    if (herd_worker_argv(c->env, &spec, &argv, err)) return NULL;
    json_t *cmd = json_array();
    for (size_t i = 0; argv[i]; i++)
        json_array_append_new(cmd, json_string(i == 0 && c->set.worker_command ? c->set.worker_command : argv[i]));
    herd_strv_free(argv);
    json_t *envl = ecs_worker_environment(c, c->env->worker_envp);
    json_array_insert_new(envl, 0, json_pack("{s:s, s:s}", "name", "HERD_WORKER_NAME_FROM", "value", "ecs-metadata"));
    return ecs_task_request(c, count, cmd, envl);
}

/* RunTask for up to 10 workers (ECS's limit per call). Each task answered
   names its worker PREFIX-<task id>; workers without a task fail with the
   first failure's reason. */
static int run_batch(herd_cluster *c, int k, herd_err *err)
{
    ecs_worker *ws[10];
    for (int i = 0; i < k; i++)
        if (!(ws[i] = add_worker(c))) {
            for (int j = 0; j < i; j++) set_failed(c, ws[j], "%s%s", "out of memory", NULL);
            return herd_err_set(err, -ENOMEM, "%s: out of memory", c->cls);
        }
    herd_err e = { 0 };
    herd_log(c->env, HERD_LOG_INFO, "%s: RunTask for %d workers", c->cls, k);
    json_t *req = run_request(c, k, &e), *resp = NULL;
    int rc = req ? aws_json_call(c->aws, AWS_ECS, "RunTask", req, &resp, NULL, 0, &e) : e.code;
    json_decref(req);
    json_t *tasks = json_object_get(resp, "tasks"), *t;
    size_t got = 0, i;
    if (!rc) {
        pthread_mutex_lock(&c->mu);
        json_array_foreach(tasks, i, t) {
            const char *arn = json_string_value(json_object_get(t, "taskArn"));
            const char *id = arn ? strrchr(arn, '/') : NULL;
            if (!id || got == (size_t)k) continue;
            ecs_worker *w = ws[got++];
            snprintf(w->arn, sizeof w->arn, "%s", arn);
            snprintf(w->name, sizeof w->name, "%s-%s", name_prefix(c), id + 1);
            apply(c, w, t);   /* its state as RunTask answered */
            herd_log(c->env, HERD_LOG_INFO, "%s: started worker %s as task %s", c->cls, w->name, arn);
        }
        pthread_mutex_unlock(&c->mu);
        if (got < (size_t)k) {
            json_t *f = json_array_get(json_object_get(resp, "failures"), 0);
            const char *reason = json_string_value(json_object_get(f, "reason"));
            const char *detail = json_string_value(json_object_get(f, "detail"));
            rc = herd_err_set(&e, -HERD_EPROVIDER, "RunTask failed: %s%s%s", reason ? reason : "no task and no reason",
                              detail ? ": " : "", detail ? detail : "");
        }
    }
    for (size_t j = got; rc && j < (size_t)k; j++) {
        set_failed(c, ws[j], "%s%s", e.msg, NULL);
        herd_log(c->env, HERD_LOG_ERROR, "%s: worker %s: %s", c->cls, ws[j]->name, e.msg);
    }
    json_decref(resp);
    if (rc) *err = e;
    return rc;
}

int ecs_run(herd_cluster *c, int n, herd_err *err)
{
    int first_rc = 0;
    for (int left = n; left > 0; left -= 10) {
        herd_err e = { 0 };
        int rc = run_batch(c, left < 10 ? left : 10, &e);
        if (rc && !first_rc) { *err = e; first_rc = rc; }
        if (rc == -ENOMEM) break;
    }
    read_logs(c);
    if (first_rc) herd_err_prefix(err, "%s: starting workers", c->cls);
    return first_rc;
}

static const char *detail_value(json_t *task, const char *name)
{
    json_t *atts = json_object_get(task, "attachments"), *a, *d;
    size_t i, j;
    json_array_foreach(atts, i, a) {
        const char *type = json_string_value(json_object_get(a, "type"));
        if (!type || strcmp(type, "ElasticNetworkInterface") != 0) continue;
        json_array_foreach(json_object_get(a, "details"), j, d) {
            const char *n = json_string_value(json_object_get(d, "name"));
            if (n && strcmp(n, name) == 0) return json_string_value(json_object_get(d, "value"));
        }
    }
    return NULL;
}

const char *ecs_task_ip(json_t *task)
{
    return detail_value(task, "privateIPv4Address");
}

const char *ecs_task_eni(json_t *task)
{
    return detail_value(task, "networkInterfaceId");
}

bool ecs_public_ip(const herd_cluster *c)
{
    return c->set.fargate && !c->set.private_ip;
}

/* one task's state into its worker; called with mu held */
static void apply(herd_cluster *c, ecs_worker *w, json_t *t)
{
    const char *st = json_string_value(json_object_get(t, "lastStatus"));
    if (!st) return;
    const char *ip = detail_value(t, "privateIPv4Address");
    if (ip) snprintf(w->ip, sizeof w->ip, "%s", ip);
    int was = w->state;
    if (strcmp(st, "STOPPED") == 0 || strcmp(st, "DELETED") == 0) {
        const char *code = json_string_value(json_object_get(t, "stopCode"));
        const char *why = json_string_value(json_object_get(t, "stoppedReason"));
        json_t *ct = json_array_get(json_object_get(t, "containers"), 0);
        json_t *ex = json_object_get(ct, "exitCode");
        const char *creason = json_string_value(json_object_get(ct, "reason"));
        /* the worker ended itself cleanly (drained and closed by the
           scheduler): its container exited 0 */
        bool clean = json_is_integer(ex) && json_integer_value(ex) == 0 &&
                     (!code || strcmp(code, "EssentialContainerExited") == 0);
        if (w->retiring || clean) {
            w->state = HERD_WORKER_STOPPED;
            snprintf(w->detail, sizeof w->detail, "%s", w->retiring ? "stopped" : "exited (exit code 0)");
        } else {
            char exit[48] = "";
            if (json_is_integer(ex)) snprintf(exit, sizeof exit, " (exit code %lld)", (long long)json_integer_value(ex));
            w->state = HERD_WORKER_FAILED;
            snprintf(w->detail, sizeof w->detail, "task stopped: %s%s%s%s%s%s", code ? code : "", code ? ": " : "",
                     why ? why : "no reason given", creason ? "; " : "", creason ? creason : "", exit);
            /* its container ran and wrote to our log group: failed once its
               last lines are read (read_logs, outside the lock) */
            if (json_is_integer(ex) && c->td_made && c->log_group[0] && !w->logs_read) {
                w->logs_pending = true;
                w->state = was;
            }
        }
    } else if (strcmp(st, "RUNNING") == 0) {
        w->state = w->retiring ? HERD_WORKER_STOPPING : HERD_WORKER_RUNNING;
    } else if (strcmp(st, "DEACTIVATING") == 0 || strcmp(st, "STOPPING") == 0 || strcmp(st, "DEPROVISIONING") == 0) {
        w->state = HERD_WORKER_STOPPING;
    } else {
        w->state = w->retiring ? HERD_WORKER_STOPPING : HERD_WORKER_STARTING;   /* PROVISIONING, PENDING, ACTIVATING */
    }
    if (was != w->state && w->state == HERD_WORKER_RUNNING)
        herd_log(c->env, HERD_LOG_INFO, "%s: worker %s is running at %s", c->cls, w->name, w->ip[0] ? w->ip : "?");
}

/* The last lines a failed worker's container logged (its awslogs stream
   PREFIX/CONTAINER/TASK-ID in our log group, GetLogEvents from the end) go
   to the log and, as far as they fit, into its failure detail; then it reads
   failed. Called without the lock after each call that applies task states. */
static void read_logs(herd_cluster *c)
{
    for (;;) {
        char arn[256] = "", name[64] = "";
        ecs_worker *w = NULL;
        pthread_mutex_lock(&c->mu);
        for (size_t i = 0; i < c->nw && !w; i++)
            if (c->w[i]->logs_pending) w = c->w[i];
        if (w) {
            memcpy(arn, w->arn, sizeof arn);
            memcpy(name, w->name, sizeof name);
        }
        pthread_mutex_unlock(&c->mu);
        if (!w) return;
        const char *id = strrchr(arn, '/');
        char stream[600];
        snprintf(stream, sizeof stream, "%s/%s/%s", c->set.logs_prefix, c->container, id ? id + 1 : arn);
        json_t *req = json_pack("{s:s, s:s, s:i, s:b}", "logGroupName", c->log_group, "logStreamName", stream,
                                "limit", 5, "startFromHead", 0), *resp = NULL;
        herd_err e = { 0 };
        char code[128] = "";
        int rc = aws_json_call(c->aws, AWS_LOGS, "GetLogEvents", req, &resp, code, sizeof code, &e);
        json_decref(req);
        aws_buf lines = { 0 };
        json_t *ev;
        size_t i;
        json_array_foreach(rc ? NULL : json_object_get(resp, "events"), i, ev) {
            const char *m = json_string_value(json_object_get(ev, "message"));
            if (!m) continue;
            size_t n = strcspn(m, "\n");
            aws_buf_fmt(&lines, "%s%.*s", lines.len ? " | " : "", (int)n, m);
        }
        json_decref(resp);
        if (rc)
            herd_log(c->env, HERD_LOG_WARN, "%s: worker %s: reading its log stream %s: %s", c->cls, name, stream, e.msg);
        else if (lines.len && !lines.oom)
            herd_log(c->env, HERD_LOG_ERROR, "%s: worker %s failed; the last lines of its log stream %s: %s", c->cls,
                     name, stream, lines.s);
        pthread_mutex_lock(&c->mu);
        w->logs_pending = false;
        w->logs_read = true;
        w->state = HERD_WORKER_FAILED;
        if (lines.len && !lines.oom) {
            size_t have = strlen(w->detail);
            snprintf(w->detail + have, sizeof w->detail - have, "; log: %s", lines.s);
        }
        pthread_cond_broadcast(&c->cv);
        pthread_mutex_unlock(&c->mu);
        aws_buf_free(&lines);
    }
}

static bool live(const ecs_worker *w)
{
    return w->arn[0] && w->state != HERD_WORKER_STOPPED && w->state != HERD_WORKER_FAILED;
}

static ecs_worker *by_arn(herd_cluster *c, const char *arn)
{
    for (size_t i = 0; arn && i < c->nw; i++)
        if (strcmp(c->w[i]->arn, arn) == 0) return c->w[i];
    return NULL;
}

int ecs_describe(herd_cluster *c, herd_err *err)
{
    /* the ARNs to ask about, copied (the call runs without the lock) */
    pthread_mutex_lock(&c->mu);
    size_t n = 0;
    char (*arns)[256] = calloc(c->nw ? c->nw : 1, sizeof *arns);
    for (size_t i = 0; arns && i < c->nw; i++)
        if (live(c->w[i])) memcpy(arns[n++], c->w[i]->arn, sizeof arns[0]);
    pthread_mutex_unlock(&c->mu);
    if (!arns) return herd_err_set(err, -ENOMEM, "out of memory");
    int rc = 0;
    for (size_t off = 0; off < n && !rc; off += 100) {
        json_t *list = json_array();
        for (size_t i = off; i < n && i < off + 100; i++) json_array_append_new(list, json_string(arns[i]));
        json_t *req = json_pack("{s:s, s:o}", "cluster", c->cluster_arn, "tasks", list), *resp = NULL;
        rc = aws_json_call(c->aws, AWS_ECS, "DescribeTasks", req, &resp, NULL, 0, err);
        json_decref(req);
        if (rc) break;
        json_t *t, *f;
        size_t i;
        pthread_mutex_lock(&c->mu);
        json_array_foreach(json_object_get(resp, "tasks"), i, t) {
            ecs_worker *w = by_arn(c, json_string_value(json_object_get(t, "taskArn")));
            if (w) apply(c, w, t);
        }
        json_array_foreach(json_object_get(resp, "failures"), i, f) {
            ecs_worker *w = by_arn(c, json_string_value(json_object_get(f, "arn")));
            const char *reason = json_string_value(json_object_get(f, "reason"));
            if (!w) continue;
            w->state = w->retiring ? HERD_WORKER_STOPPED : HERD_WORKER_FAILED;
            snprintf(w->detail, sizeof w->detail, "DescribeTasks: %s", reason ? reason : "no reason given");
        }
        pthread_cond_broadcast(&c->cv);
        pthread_mutex_unlock(&c->mu);
        json_decref(resp);
    }
    free(arns);
    read_logs(c);
    return rc;
}

static void *poller(void *arg)
{
    herd_cluster *c = arg;
    pthread_mutex_lock(&c->mu);
    while (!c->closing) {
        struct timespec ts;
        herd_deadline(c->set.poll_interval, &ts);
        pthread_cond_timedwait(&c->cv, &c->mu, &ts);
        if (c->closing) break;
        bool any = false;
        for (size_t i = 0; i < c->nw && !any; i++) any = live(c->w[i]);
        if (!any) continue;
        pthread_mutex_unlock(&c->mu);
        herd_err err = { 0 };
        if (ecs_describe(c, &err)) herd_log(c->env, HERD_LOG_WARN, "%s: reading the tasks' states: %s", c->cls, err.msg);
        pthread_mutex_lock(&c->mu);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

int ecs_poll_start(herd_cluster *c, herd_err *err)
{
    int rc = pthread_create(&c->poller, NULL, poller, c);
    if (rc) return herd_err_set(err, -rc, "%s: cannot start the task poller: %s", c->cls, strerror(rc));
    c->poller_on = true;
    return 0;
}

void ecs_poll_stop(herd_cluster *c)
{
    if (!c->poller_on) return;
    pthread_mutex_lock(&c->mu);
    c->closing = true;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->poller, NULL);
    c->poller_on = false;
}

/* The worker's state as StopTask answers it (STOPPED at once for a task
   that never ran; else DEACTIVATING and on, read later by the poller). */
int ecs_stop_task(herd_cluster *c, const char *arn, const char *reason, herd_err *err)
{
    json_t *req = json_pack("{s:s, s:s, s:s}", "cluster", c->cluster_arn, "task", arn, "reason", reason), *resp = NULL;
    int rc = aws_json_call(c->aws, AWS_ECS, "StopTask", req, &resp, NULL, 0, err);
    json_decref(req);
    json_t *t = json_object_get(resp, "task");
    pthread_mutex_lock(&c->mu);
    ecs_worker *w = rc ? NULL : by_arn(c, arn);
    if (w && t) apply(c, w, t);
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    json_decref(resp);
    read_logs(c);
    return rc;
}

void ecs_stop_all(herd_cluster *c, double timeout)
{
    pthread_mutex_lock(&c->mu);
    size_t n = 0;
    char (*arns)[256] = calloc(c->nw ? c->nw : 1, sizeof *arns);
    for (size_t i = 0; arns && i < c->nw; i++)
        if (live(c->w[i])) {
            c->w[i]->retiring = true;
            c->w[i]->state = HERD_WORKER_STOPPING;
            memcpy(arns[n++], c->w[i]->arn, sizeof arns[0]);
        }
    pthread_mutex_unlock(&c->mu);
    for (size_t i = 0; arns && i < n; i++) {
        herd_err err = { 0 };
        if (ecs_stop_task(c, arns[i], "herd: cluster closed", &err))
            herd_log(c->env, HERD_LOG_WARN, "%s: StopTask %s: %s", c->cls, arns[i], err.msg);
    }
    free(arns);
    if (!n) return;
    herd_log(c->env, HERD_LOG_INFO, "%s: stopping %zu tasks", c->cls, n);
    /* wait for STOPPED: the security group cannot go before the tasks */
    double until = herd_now() + timeout;
    for (;;) {
        herd_err err = { 0 };
        if (ecs_describe(c, &err)) {
            herd_log(c->env, HERD_LOG_WARN, "%s: reading the tasks' states: %s", c->cls, err.msg);
            break;
        }
        pthread_mutex_lock(&c->mu);
        size_t left = 0;
        for (size_t i = 0; i < c->nw; i++) left += live(c->w[i]);
        pthread_mutex_unlock(&c->mu);
        if (!left) break;
        if (herd_now() > until) {
            herd_log(c->env, HERD_LOG_WARN, "%s: %zu tasks not STOPPED after %.0f s", c->cls, left, timeout);
            break;
        }
        struct timespec ts = { (time_t)c->set.poll_interval, (long)((c->set.poll_interval - (double)(time_t)c->set.poll_interval) * 1e9) };
        nanosleep(&ts, NULL);
    }
}
