/* providers/aws/ecs_state.c — what a running ECS cluster has created, kept in
 * a small state file on this machine (${XDG_CACHE_HOME:-~/.cache}/herd/aws/
 * NAME.state, mode 0600) from the first resource created until all are
 * deleted, and the sweep at the next start (unless skip_cleanup) of what a run
 * that ended without its close left (its process is gone: SIGKILL, a crash,
 * a machine reboot): its tasks stopped and its resources deleted with the
 * same teardown as a close. A run on another machine is never touched (the
 * file names the host), nor one whose process still lives. */
#include "ecs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#pragma GCC diagnostic ignored "-Wformat-truncation"

static int state_dir(char *out, size_t cap)
{
    const char *x = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    if (x && *x) snprintf(out, cap, "%s/herd/aws", x);
    else if (home && *home) snprintf(out, cap, "%s/.cache/herd/aws", home);
    else return -1;
    return 0;
}

static int mkdirs(const char *dir)
{
    char p[1024];
    snprintf(p, sizeof p, "%s", dir);
    for (char *s = p + 1; *s; s++)
        if (*s == '/') { *s = 0; mkdir(p, 0700); *s = '/'; }
    return mkdir(p, 0700) == 0 || errno == EEXIST ? 0 : -errno;
}

/* a process's start time (field 22 of /proc/PID/stat): with the pid, who it is */
static unsigned long long proc_start(long pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    unsigned long long t = 0;
    if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu", &t) == 1)
        return t;
    return 0;
}

static void file_name(herd_cluster *c, char *out, size_t cap)
{
    char dir[900], safe[200];
    size_t j = 0;
    for (const char *s = c->env->name; *s && j < sizeof safe - 1; s++)
        safe[j++] = (char)((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
                           *s == '-' || *s == '_' || *s == '.' ? *s : '_');
    safe[j] = 0;
    if (state_dir(dir, sizeof dir)) { out[0] = 0; return; }
    snprintf(out, cap, "%s/%s.state", dir, safe);
}

void ecs_state_save(herd_cluster *c)
{
    char path[1024], dir[900], host[256] = "";
    if (!c->record) return;
    file_name(c, path, sizeof path);
    if (!path[0] || state_dir(dir, sizeof dir) || mkdirs(dir)) return;
    bool any = c->cluster_made || c->td_made || c->sg_made[0] || c->exec_role_made[0] || c->task_role_made[0] ||
               c->log_group_made;
    if (!any) { unlink(path); return; }
    gethostname(host, sizeof host - 1);
    aws_buf b = { 0 };
    aws_buf_fmt(&b, "host %s\npid %ld\nstart %llu\nname %s\nregion %s\nendpoint %s\n", host, (long)getpid(),
                proc_start(getpid()), c->env->name, aws_client_region(c->aws),
                c->set.endpoint_url ? c->set.endpoint_url : "-");
    if (c->cluster_made) aws_buf_fmt(&b, "cluster %s\n", c->cluster_arn);
    if (c->td_made) aws_buf_fmt(&b, "task_definition %s\n", c->td_arn);
    if (c->sg_made[0]) aws_buf_fmt(&b, "security_group %s\n", c->sg_made);
    if (c->exec_role_made[0]) aws_buf_fmt(&b, "exec_role %s %d\n", c->exec_role_made, c->exec_policy_put ? 1 : 0);
    if (c->task_role_made[0]) {
        aws_buf_fmt(&b, "task_role %s\n", c->task_role_made);
        for (size_t i = 0; i < c->task_policies_attached; i++)
            aws_buf_fmt(&b, "task_policy %s\n", c->set.task_role_policies[i]);
    }
    if (c->log_group_made) aws_buf_fmt(&b, "log_group %s\n", c->log_group);
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = b.oom ? -1 : open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd >= 0) {
        bool ok = write(fd, b.s, b.len) == (ssize_t)b.len;
        close(fd);
        if (ok) rename(tmp, path);
        else unlink(tmp);
    }
    aws_buf_free(&b);
}

/* One left-over run: its tasks stopped, its resources deleted. 0 when all
   went (the file is then removed). */
static int sweep_one(herd_cluster *live, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    herd_cluster *c = calloc(1, sizeof *c);
    char line[1200], name[256] = "", region[64] = "", endpoint[512] = "";
    char *pol[65] = { 0 };
    size_t npol = 0;
    if (!c) { fclose(f); return -1; }
    pthread_mutex_init(&c->mu, NULL);
    pthread_mutex_init(&c->api_mu, NULL);
    herd_cond_init_monotonic(&c->cv);
    c->env = live->env;
    c->cls = live->cls;
    c->set.poll_interval = live->set.poll_interval;
    c->set.logs_retention = live->set.logs_retention;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        char *v = strchr(line, ' ');
        if (!v) continue;
        *v++ = 0;
        if (!strcmp(line, "name")) snprintf(name, sizeof name, "%s", v);
        else if (!strcmp(line, "region")) snprintf(region, sizeof region, "%s", v);
        else if (!strcmp(line, "endpoint")) snprintf(endpoint, sizeof endpoint, "%s", strcmp(v, "-") ? v : "");
        else if (!strcmp(line, "cluster")) { snprintf(c->cluster_arn, sizeof c->cluster_arn, "%s", v); c->cluster_made = true; }
        else if (!strcmp(line, "task_definition")) { snprintf(c->td_arn, sizeof c->td_arn, "%s", v); c->td_made = true; }
        else if (!strcmp(line, "security_group")) snprintf(c->sg_made, sizeof c->sg_made, "%s", v);
        else if (!strcmp(line, "exec_role")) {
            int put = 0;
            sscanf(v, "%127s %d", c->exec_role_made, &put);
            c->exec_policy_put = put == 1;
        } else if (!strcmp(line, "task_role")) snprintf(c->task_role_made, sizeof c->task_role_made, "%s", v);
        else if (!strcmp(line, "task_policy") && npol < 64) pol[npol++] = strdup(v);
        else if (!strcmp(line, "log_group")) { snprintf(c->log_group, sizeof c->log_group, "%s", v); c->log_group_made = true; }
    }
    fclose(f);
    c->set.task_role_policies = calloc(npol + 1, sizeof *c->set.task_role_policies);
    for (size_t i = 0; c->set.task_role_policies && i < npol; i++) c->set.task_role_policies[i] = pol[i];
    if (!c->set.task_role_policies) for (size_t i = 0; i < npol; i++) free(pol[i]);
    c->task_policies_attached = c->set.task_role_policies ? npol : 0;
    snprintf(c->cluster_name, sizeof c->cluster_name, "%s", name);
    herd_err err = { 0 };
    aws_client_opts o = { .region = region, .endpoint_url = endpoint[0] ? endpoint : NULL, .env = live->env };
    int rc = aws_client_new(&c->aws, &o, &err);
    if (!rc) {
        herd_log(live->env, HERD_LOG_INFO, "%s: sweeping what the run %s left (its process is gone)", live->cls, name);
        /* its tasks first: the security group cannot go while they run */
        if (c->cluster_made) {
            json_t *req = json_pack("{s:s, s:s}", "cluster", c->cluster_arn, "desiredStatus", "RUNNING"), *resp = NULL;
            if (!aws_json_call(c->aws, AWS_ECS, "ListTasks", req, &resp, NULL, 0, &err)) {
                json_t *a;
                size_t i;
                json_array_foreach(json_object_get(resp, "taskArns"), i, a) {
                    ecs_worker *w = calloc(1, sizeof *w);
                    ecs_worker **nw = realloc(c->w, (c->nw + 1) * sizeof *nw);
                    if (!w || !nw) { free(w); if (nw) c->w = nw; break; }
                    c->w = nw;
                    snprintf(w->name, sizeof w->name, "left-%zu", i);
                    snprintf(w->arn, sizeof w->arn, "%s", json_string_value(a));
                    w->state = HERD_WORKER_RUNNING;
                    c->w[c->nw++] = w;
                }
            }
            json_decref(req);
            json_decref(resp);
            ecs_stop_all(c, 300);
        }
        ecs_teardown(c);
        rc = c->cluster_made || c->td_made || c->sg_made[0] || c->exec_role_made[0] || c->task_role_made[0] ||
             c->log_group_made ? -1 : 0;
    } else {
        herd_log(live->env, HERD_LOG_WARN, "%s: cannot sweep what the run %s left: %s", live->cls, name, err.msg);
    }
    for (size_t i = 0; i < c->nw; i++) free(c->w[i]);
    free(c->w);
    ecs_strv_free(c->set.task_role_policies);
    aws_client_free(c->aws);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    pthread_mutex_destroy(&c->api_mu);
    free(c);
    return rc;
}

void ecs_state_sweep(herd_cluster *c)
{
    char dir[900], host[256] = "";
    if (state_dir(dir, sizeof dir)) return;
    gethostname(host, sizeof host - 1);
    DIR *d = opendir(dir);
    if (!d) return;
    for (struct dirent *e; (e = readdir(d));) {
        size_t n = strlen(e->d_name);
        if (n < 7 || strcmp(e->d_name + n - 6, ".state") != 0) continue;
        char path[1200], line[600], fhost[256] = "";
        long pid = 0;
        unsigned long long start = 0;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        while (fgets(line, sizeof line, f)) {
            sscanf(line, "host %255s", fhost);
            sscanf(line, "pid %ld", &pid);
            sscanf(line, "start %llu", &start);
        }
        fclose(f);
        if (strcmp(fhost, host) != 0 || pid <= 0) continue;                 /* another machine's */
        if (pid == (long)getpid()) continue;                                /* ours (or this process's other run) */
        if ((kill((pid_t)pid, 0) == 0 || errno == EPERM) && proc_start(pid) == start) continue;   /* still running */
        if (sweep_one(c, path) == 0) unlink(path);
    }
    closedir(d);
}
