/* providers/slurm/slurm.c — slurm.SLURMCluster (alias
 * dask_jobqueue.SLURMCluster): herd workers as Slurm jobs, each job running
 * `processes` workers that dial back to the scheduler in this process
 * (scheduler_listen: the address of `interface`, or of this host's name).
 *
 * scale_up submits ceil(n / processes) jobs at once as one job array
 * (`sbatch --parsable --array=0-J`, the script of script.c on stdin). The
 * token reaches the workers through the environment sbatch exports (the
 * variables of env->worker_envp are set on sbatch's own environment), never
 * through the script or a command line. Every cluster has its own Slurm job
 * name (<job_name>-<6 hex digits>) and a comment naming this host and pid.
 *
 * status asks squeue about the cluster's jobs every poll_interval: a job
 * PENDING longer than pending_report is logged and shown with Slurm's
 * reason; a job that ended fails its workers with Slurm's state and exit
 * code (the core's nanny or adaptive scaling replaces them). retire stops
 * one worker (SIGRTMIN+p to the job's batch shell) or, when it was the
 * job's last, cancels the job. close cancels every job by id, waits until
 * squeue shows none still active, then sweeps the job name. start first
 * cancels jobs a previous client on this host left behind when it was
 * killed (its comment names a pid that no longer runs). */
#include "slurm.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CMD_TIMEOUT_S   60.0   /* any one sbatch, squeue or scancel */
#define CLOSE_WAIT_S    30.0   /* close: for the jobs to leave the active states */
#define COMMENT_TAG     "herd-client"
#define EAGER_POLL_S    60.0   /* a job this young and PENDING: squeue at every status */

enum { J_PENDING, J_RUNNING, J_ENDED };

typedef struct sjob {
    char id[48];                /* "17_0", as squeue's JobArrayID */
    int state;                  /* J_* */
    char sstate[24], reason[64], exitc[24], node[64];
    double since;               /* submitted */
    char reported[64];          /* the PENDING reason already logged */
    size_t first, n;            /* its workers: w[first .. first+n) */
} sjob;

typedef struct sworker {
    char name[64];
    size_t job;
    int p;
    int state;                  /* HERD_WORKER_* */
    bool retired;
    char detail[160];
} sworker;

struct herd_cluster {
    pthread_mutex_t mu;
    const herd_cluster_env *env;
    herd_value *kw;             /* validated kwargs: o borrows from it */
    slurm_opts o;
    char job_name[48];          /* this cluster's Slurm job name */
    char comment[160];
    char host[128];
    sjob *jobs;
    size_t nj, capj;
    sworker *w;
    size_t nw, capw;
    double last_poll;
};

/* ---- create ---- */

static void cluster_free(herd_cluster *c)
{
    free(c->jobs);
    free(c->w);
    herd_value_free(c->kw);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static void random_hex(char *out, size_t nbytes)
{
    unsigned char b[8] = { 0 };
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || read(fd, b, nbytes) != (ssize_t)nbytes) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        unsigned long x = (unsigned long)ts.tv_nsec ^ ((unsigned long)getpid() << 16);
        memcpy(b, &x, nbytes < sizeof x ? nbytes : sizeof x);
    }
    if (fd >= 0) close(fd);
    for (size_t i = 0; i < nbytes; i++) sprintf(out + 2 * i, "%02x", b[i]);
}

static int mkdirs(const char *path)
{
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0755) && errno != EEXIST) return -errno;
            *p = '/';
        }
    if (mkdir(tmp, 0755) && errno != EEXIST) return -errno;
    return 0;
}

static int sc_create(herd_cluster **out, const herd_value *kw, const herd_cluster_env *env, herd_err *err)
{
    *out = NULL;
    herd_cluster *c = calloc(1, sizeof *c);
    if (!c) return herd_err_set(err, -ENOMEM, "SLURMCluster: out of memory");
    pthread_mutex_init(&c->mu, NULL);
    c->env = env;
    int rc = slurm_opts_load(kw, &c->kw, &c->o, err);
    if (rc) { cluster_free(c); return rc; }
    char hex[7];
    random_hex(hex, 3);
    snprintf(c->job_name, sizeof c->job_name, "%s-%s", c->o.job_name, hex);
    if (gethostname(c->host, sizeof c->host) != 0) snprintf(c->host, sizeof c->host, "localhost");
    c->host[sizeof c->host - 1] = '\0';
    snprintf(c->comment, sizeof c->comment, COMMENT_TAG " %s %ld", c->host, (long)getpid());
    herd_log(env, HERD_LOG_DEBUG, "SLURMCluster: jobs named %s: %d cores, --mem=%s, %d workers x %d "
             "threads, memory_limit %lld each", c->job_name, c->o.cores, c->o.job_mem_s, c->o.processes,
             c->o.nthreads, (long long)c->o.worker_memory);
    *out = c;
    return 0;
}

/* ---- where the workers dial ---- */

static int iface_addr(const char *ifname, char *ip, size_t cap)
{
    struct ifaddrs *ifs, *i;
    if (getifaddrs(&ifs) != 0) return -errno;
    int rc = -ENOENT;
    for (i = ifs; i; i = i->ifa_next)
        if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET && strcmp(i->ifa_name, ifname) == 0) {
            inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, ip, (socklen_t)cap);
            rc = 0;
            break;
        }
    freeifaddrs(ifs);
    return rc;
}

static int host_addr(const char *host, char *ip, size_t cap)
{
    struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM }, *ai = NULL;
    if (getaddrinfo(host, NULL, &hints, &ai) != 0 || !ai) return -ENOENT;
    inet_ntop(AF_INET, &((struct sockaddr_in *)ai->ai_addr)->sin_addr, ip, (socklen_t)cap);
    freeaddrinfo(ai);
    return 0;
}

static int sc_listen(herd_cluster *c, char *out, size_t cap, herd_err *err)
{
    char ip[INET_ADDRSTRLEN] = "";
    if (c->o.interface) {
        if (iface_addr(c->o.interface, ip, sizeof ip) != 0)
            return herd_err_set(err, HERD_ECONFIG, "cluster_kwargs.interface: \"%.40s\": no network "
                                "interface of that name with an IPv4 address on %s", c->o.interface, c->host);
    } else if (host_addr(c->host, ip, sizeof ip) != 0) {
        return herd_err_set(err, HERD_ECONFIG, "SLURMCluster: cannot resolve this host's name \"%s\" "
                            "to an IPv4 address for the workers to dial: set cluster_kwargs.interface", c->host);
    }
    const char *names[] = { ip, c->host, NULL };
    int rc = herd_scheduler_names(c->env, names, err);
    if (rc) return rc;
    snprintf(out, cap, "tcp://%s:0", ip);
    herd_log(c->env, HERD_LOG_DEBUG, "SLURMCluster: scheduler listens on %s", out);
    return 0;
}

/* ---- asking Slurm ---- */

/* Not one of the states a job is still active in (COMPLETING counts as
 * active: the final state, with the reason, follows). */
static bool final_state(const char *s)
{
    static const char *const active[] = { "PENDING", "CONFIGURING", "RUNNING", "SUSPENDED",
                                          "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESIZING",
                                          "SIGNALING", "STAGE_OUT", "STOPPED", "COMPLETING", NULL };
    for (const char *const *a = active; *a; a++)
        if (strcmp(s, *a) == 0) return false;
    return true;
}

/* squeue about every job of this cluster; c->mu held. */
static void refresh_workers(herd_cluster *c);

static int poll_jobs(herd_cluster *c, herd_err *err)
{
    const char *argv[] = { c->o.queue_command, "-h", "-r", "-t", "all", "-n", c->job_name, "-O",
                           "JobArrayID:|,State:|,Reason:|,exit_code:|,NodeList:|", NULL };
    size_t cap = 4096 + c->nj * 160;
    char *out = malloc(cap);
    if (!out) return herd_err_set(err, -ENOMEM, "SLURMCluster: out of memory");
    int rc = slurm_run(argv, NULL, NULL, out, cap, CMD_TIMEOUT_S, err);
    c->last_poll = herd_now();
    if (rc) { free(out); return rc; }
    bool *seen = calloc(c->nj ? c->nj : 1, sizeof *seen);
    if (!seen) { free(out); return herd_err_set(err, -ENOMEM, "SLURMCluster: out of memory"); }
    char *save = NULL;
    for (char *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *f[6] = { 0 }, *s2 = NULL;
        int nf = 0;
        for (char *t = strtok_r(line, "|", &s2); t && nf < 6; t = strtok_r(NULL, "|", &s2)) f[nf++] = t;
        if (nf < 2) continue;
        for (int i = 0; i < nf; i++) {          /* squeue pads some fields */
            while (*f[i] == ' ') f[i]++;
            size_t l = strlen(f[i]);
            while (l && f[i][l - 1] == ' ') f[i][--l] = '\0';
        }
        for (size_t j = 0; j < c->nj; j++) {
            sjob *jb = &c->jobs[j];
            if (strcmp(jb->id, f[0]) != 0) continue;
            seen[j] = true;
            if (jb->state == J_ENDED) break;
            snprintf(jb->sstate, sizeof jb->sstate, "%s", f[1]);
            snprintf(jb->reason, sizeof jb->reason, "%s", nf > 2 ? f[2] : "");
            snprintf(jb->exitc, sizeof jb->exitc, "%s", nf > 3 ? f[3] : "");
            if (nf > 4 && *f[4]) snprintf(jb->node, sizeof jb->node, "%s", f[4]);
            jb->state = final_state(f[1]) ? J_ENDED
                      : strcmp(f[1], "RUNNING") == 0 || strcmp(f[1], "SUSPENDED") == 0 ||
                        strcmp(f[1], "COMPLETING") == 0 || strcmp(f[1], "SIGNALING") == 0 ? J_RUNNING : J_PENDING;
            break;
        }
    }
    for (size_t j = 0; j < c->nj; j++)
        if (!seen[j] && c->jobs[j].state != J_ENDED) {
            c->jobs[j].state = J_ENDED;
            snprintf(c->jobs[j].sstate, sizeof c->jobs[j].sstate, "GONE");
        }
    free(seen);
    free(out);
    refresh_workers(c);
    return 0;
}

/* squeue's exit_code is the batch script's wait status: "exit status 3",
 * "killed by signal 15". */
static void exit_text(const char *code, char *out, size_t cap)
{
    char *end;
    long v = strtol(code, &end, 10);
    if (!*code || *end || v < 0) snprintf(out, cap, "exit code %.20s", *code ? code : "unknown");
    else if (v & 0x7f) snprintf(out, cap, "killed by signal %ld", v & 0x7f);
    else snprintf(out, cap, "exit status %ld", v >> 8);
}

/* The workers' states and details from their jobs'; c->mu held. */
static void refresh_workers(herd_cluster *c)
{
    double now = herd_now();
    for (size_t j = 0; j < c->nj; j++) {
        sjob *jb = &c->jobs[j];
        if (jb->state == J_PENDING && now - jb->since >= c->o.pending_report &&
            strcmp(jb->reported, jb->reason) != 0) {
            snprintf(jb->reported, sizeof jb->reported, "%s", jb->reason);
            herd_log(c->env, HERD_LOG_WARN, "SLURMCluster: job %s PENDING for %.0fs, Slurm's reason: %s",
                     jb->id, now - jb->since, jb->reason[0] ? jb->reason : "none given");
        }
        for (size_t k = jb->first; k < jb->first + jb->n; k++) {
            sworker *w = &c->w[k];
            if (w->state == HERD_WORKER_STOPPED || w->state == HERD_WORKER_FAILED) continue;
            if (jb->state == J_PENDING) {
                w->state = w->retired ? HERD_WORKER_STOPPING : HERD_WORKER_STARTING;
                snprintf(w->detail, sizeof w->detail, "Slurm job %.30s %.20s for %.0fs (reason: %.40s)", jb->id,
                         jb->sstate[0] ? jb->sstate : "PENDING", now - jb->since, jb->reason[0] ? jb->reason : "none");
            } else if (jb->state == J_RUNNING) {
                if (w->state == HERD_WORKER_STOPPING) continue;
                w->state = HERD_WORKER_RUNNING;
                snprintf(w->detail, sizeof w->detail, "Slurm job %.30s RUNNING on %.40s", jb->id, jb->node);
            } else {
                bool ok = w->retired || (strcmp(jb->sstate, "COMPLETED") == 0 && atol(jb->exitc) == 0);
                w->state = ok ? HERD_WORKER_STOPPED : HERD_WORKER_FAILED;
                if (strcmp(jb->sstate, "GONE") == 0)
                    snprintf(w->detail, sizeof w->detail, "Slurm job %.30s left the queue%s", jb->id,
                             w->retired ? " (retired)" : " (its end state is no longer known)");
                else {
                    char how[48], why[48] = "";
                    exit_text(jb->exitc, how, sizeof how);
                    if (jb->reason[0] && strcmp(jb->reason, "None"))
                        snprintf(why, sizeof why, " (%.40s)", jb->reason);
                    snprintf(w->detail, sizeof w->detail, "Slurm job %.30s %.20s%.44s, %.32s", jb->id, jb->sstate, why, how);
                }
                if (w->retired && !strstr(w->detail, "(retired)"))
                    snprintf(w->detail + strlen(w->detail), sizeof w->detail - strlen(w->detail), " (retired)");
            }
        }
    }
}

static int cancel(herd_cluster *c, const char *const *extra, const char *const *ids, size_t nids, herd_err *err)
{
    const char **argv = calloc(nids + 8, sizeof *argv);
    if (!argv) return herd_err_set(err, -ENOMEM, "SLURMCluster: out of memory");
    size_t k = 0;
    argv[k++] = c->o.cancel_command;
    for (const char *const *e = extra; e && *e; e++) argv[k++] = *e;
    for (size_t i = 0; i < nids; i++) argv[k++] = ids[i];
    argv[k] = NULL;
    char out[512];
    int rc = slurm_run(argv, NULL, NULL, out, sizeof out, CMD_TIMEOUT_S, err);
    free(argv);
    return rc;
}

/* ---- the sweep of a killed client's jobs ---- */

static void sweep_orphans(herd_cluster *c)
{
    const char *argv[] = { c->o.queue_command, "-h", "-O", "JobID:|,Name:|,Comment:|", NULL };
    char *out = malloc(65536);
    herd_err e = { 0 };
    if (!out || slurm_run(argv, NULL, NULL, out, 65536, CMD_TIMEOUT_S, &e)) {
        if (out) herd_log(c->env, HERD_LOG_WARN, "SLURMCluster: cannot look for jobs left by killed "
                          "clients: %s", e.msg);
        free(out);
        return;
    }
    size_t plen = strlen(c->o.job_name), tlen = strlen(COMMENT_TAG), hlen = strlen(c->host);
    char *save = NULL;
    for (char *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *f[3] = { 0 }, *s2 = NULL;
        int nf = 0;
        for (char *t = strtok_r(line, "|", &s2); t && nf < 3; t = strtok_r(NULL, "|", &s2)) f[nf++] = t;
        if (nf < 3) continue;
        for (int i = 0; i < 3; i++) while (*f[i] == ' ') f[i]++;
        /* exactly <job_name>-<6 hex digits>: another job_name that starts
         * with ours is not ours to sweep */
        if (strncmp(f[1], c->o.job_name, plen) != 0 || f[1][plen] != '-' ||
            strspn(f[1] + plen + 1, "0123456789abcdef") != 6 || (f[1][plen + 7] && f[1][plen + 7] != ' '))
            continue;
        if (strncmp(f[2], COMMENT_TAG " ", tlen + 1) != 0) continue;
        const char *h = f[2] + tlen + 1;
        if (strncmp(h, c->host, hlen) != 0 || h[hlen] != ' ') continue;
        long pid = strtol(h + hlen + 1, NULL, 10);
        if (pid <= 0 || kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
        char id[32];
        snprintf(id, sizeof id, "%.31s", f[0]);
        for (char *p = id + strlen(id); p > id && p[-1] == ' ';) *--p = '\0';
        const char *ids[] = { id };
        if (cancel(c, NULL, ids, 1, &e) == 0)
            herd_log(c->env, HERD_LOG_WARN, "SLURMCluster: cancelled job %s (%s), left by a client "
                     "(pid %ld on %s) that no longer runs", id, f[1], pid, c->host);
        else
            herd_log(c->env, HERD_LOG_WARN, "SLURMCluster: cannot cancel job %s left by a killed client: %s",
                     id, e.msg);
    }
    free(out);
}

/* ---- submitting ---- */

static int grow(void **v, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap) return 0;
    size_t n = *cap ? *cap : 8;
    while (n < need) n *= 2;
    void *p = realloc(*v, n * size);
    if (!p) return -ENOMEM;
    *v = p;
    *cap = n;
    return 0;
}

/* The worker command (its name a placeholder the script replaces). */
static int worker_cmd(herd_cluster *c, char ***argv, herd_err *err)
{
    herd_worker_spec spec = { .name = "NAME", .nthreads = c->o.nthreads, .memory_limit = c->o.worker_memory };
    return herd_worker_argv(c->env, &spec, argv, err);
}

/* c->mu held. */
static int submit(herd_cluster *c, int nworkers, herd_err *err)
{
    int P = c->o.processes, J = (nworkers + P - 1) / P;
    if (J <= 0) return 0;
    if (c->o.log_directory && mkdirs(c->o.log_directory) != 0)
        return herd_err_set(err, HERD_ECONFIG, "cluster_kwargs.log_directory: cannot create \"%s\": %s",
                            c->o.log_directory, strerror(errno));
    char **wargv = NULL, *script = NULL;
    int rc = worker_cmd(c, &wargv, err);
    if (!rc) rc = slurm_job_script(&c->o, (const char *const *)wargv, c->job_name, &script, err);
    herd_strv_free(wargv);
    if (rc) return rc;
    char array[48], comment[200];
    snprintf(array, sizeof array, "--array=0-%d", J - 1);
    snprintf(comment, sizeof comment, "--comment=%s", c->comment);
    const char *argv[] = { c->o.submit_command, "--parsable", array, comment, NULL };
    char out[256];
    rc = slurm_run(argv, c->env->worker_envp, script, out, sizeof out, CMD_TIMEOUT_S, err);
    free(script);
    if (rc) return herd_err_prefix(err, "SLURMCluster: submitting %d job%s", J, J > 1 ? "s" : "");
    char *end;
    long id = strtol(out, &end, 10);
    if (id <= 0 || (*end && *end != ';' && *end != '\n'))
        return herd_err_set(err, HERD_EPROVIDER, "SLURMCluster: %s --parsable printed \"%.80s\", expected "
                            "a job id", c->o.submit_command, out);
    if (grow((void **)&c->jobs, &c->capj, c->nj + (size_t)J, sizeof *c->jobs) ||
        grow((void **)&c->w, &c->capw, c->nw + (size_t)(J * P), sizeof *c->w)) {
        const char *ids[] = { out };
        out[strcspn(out, ";\n")] = '\0';
        cancel(c, NULL, ids, 1, NULL);
        return herd_err_set(err, -ENOMEM, "SLURMCluster: out of memory");
    }
    double now = herd_now();
    for (int j = 0; j < J; j++) {
        sjob *jb = &c->jobs[c->nj];
        memset(jb, 0, sizeof *jb);
        snprintf(jb->id, sizeof jb->id, "%ld_%d", id, j);
        jb->state = J_PENDING;
        jb->since = now;
        jb->first = c->nw;
        jb->n = (size_t)P;
        for (int p = 0; p < P; p++) {
            sworker *w = &c->w[c->nw++];
            memset(w, 0, sizeof *w);
            snprintf(w->name, sizeof w->name, "%s-%ld-%d-%d", c->o.job_name, id, j, p);
            w->job = c->nj;
            w->p = p;
            w->state = HERD_WORKER_STARTING;
            snprintf(w->detail, sizeof w->detail, "Slurm job %s submitted", jb->id);
        }
        c->nj++;
    }
    herd_log(c->env, HERD_LOG_INFO, "SLURMCluster: submitted job array %ld (%d job%s x %d workers, %s)",
             id, J, J > 1 ? "s" : "", P, c->job_name);
    return 0;
}

static int sc_scale_up(herd_cluster *c, int n, herd_err *err)
{
    if (n < 0) return herd_err_set(err, HERD_EARG, "SLURMCluster scale_up: n = %d, expected >= 0", n);
    pthread_mutex_lock(&c->mu);
    int rc = submit(c, n, err);
    pthread_mutex_unlock(&c->mu);
    return rc;
}

static int sc_start(herd_cluster *c, herd_err *err)
{
    sweep_orphans(c);
    return sc_scale_up(c, c->o.n_workers, err);
}

/* ---- retire, status ---- */

static int sc_retire(herd_cluster *c, const char *worker, herd_err *err)
{
    pthread_mutex_lock(&c->mu);
    sworker *w = NULL;
    for (size_t i = 0; i < c->nw && !w; i++)
        if (strcmp(c->w[i].name, worker ? worker : "") == 0) w = &c->w[i];
    if (!w) {
        pthread_mutex_unlock(&c->mu);
        return herd_err_set(err, HERD_EARG, "SLURMCluster retire: no worker \"%s\" in this cluster "
                            "(Slurm job name %s)", worker ? worker : "(null)", c->job_name);
    }
    if (w->retired || w->state == HERD_WORKER_STOPPED || w->state == HERD_WORKER_FAILED) {
        pthread_mutex_unlock(&c->mu);
        return 0;
    }
    w->retired = true;
    sjob *jb = &c->jobs[w->job];
    bool last = true;
    for (size_t k = jb->first; k < jb->first + jb->n; k++)
        last &= c->w[k].retired || c->w[k].state == HERD_WORKER_STOPPED || c->w[k].state == HERD_WORKER_FAILED;
    int rc = 0;
    const char *ids[] = { jb->id };
    if (last) {
        rc = cancel(c, NULL, ids, 1, err);
    } else if (jb->state == J_RUNNING) {
        char sig[32];
        snprintf(sig, sizeof sig, "--signal=%d", slurm_stop_signal(w->p));
        const char *extra[] = { "--batch", sig, NULL };
        rc = cancel(c, extra, ids, 1, err);
    }
    if (rc) {
        w->retired = false;
        pthread_mutex_unlock(&c->mu);
        return herd_err_prefix(err, "SLURMCluster retire %s", w->name);
    }
    w->state = HERD_WORKER_STOPPED;
    snprintf(w->detail, sizeof w->detail, "Slurm job %.30s: %s (retired)", jb->id,
             last ? "cancelled" : "worker stopped");
    pthread_mutex_unlock(&c->mu);
    herd_log(c->env, HERD_LOG_INFO, "SLURMCluster: retired worker %s (%s)", worker,
             last ? "its job cancelled" : "SIGTERM through its job's batch shell");
    return 0;
}

static int sc_status(herd_cluster *c, herd_worker_info *out, size_t cap, size_t *n)
{
    pthread_mutex_lock(&c->mu);
    /* every poll_interval; and, while a job submitted in the last
     * EAGER_POLL_S is still PENDING, at every call, so a worker is listed
     * running as soon as it can have connected */
    double now = herd_now();
    bool eager = false;
    for (size_t j = 0; j < c->nj && !eager; j++)
        eager = c->jobs[j].state == J_PENDING && now - c->jobs[j].since < EAGER_POLL_S;
    if (c->nj && (eager || now - c->last_poll >= c->o.poll_interval)) {
        herd_err e = { 0 };
        if (poll_jobs(c, &e))
            herd_log(c->env, HERD_LOG_WARN, "SLURMCluster: cannot ask Slurm about the jobs: %s", e.msg);
    }
    for (size_t i = 0; i < c->nw && out && i < cap; i++) {
        herd_worker_info *o = &out[i];
        memset(o, 0, sizeof *o);
        snprintf(o->name, sizeof o->name, "%s", c->w[i].name);
        o->state = c->w[i].state;
        snprintf(o->host, sizeof o->host, "%s", c->jobs[c->w[i].job].node);
        snprintf(o->detail, sizeof o->detail, "%s", c->w[i].detail);
    }
    if (n) *n = c->nw;
    pthread_mutex_unlock(&c->mu);
    return 0;
}

/* ---- close ---- */

static void sc_close(herd_cluster *c)
{
    if (!c) return;
    pthread_mutex_lock(&c->mu);
    herd_err e = { 0 };
    if (c->nj) poll_jobs(c, &e);
    const char **ids = calloc(c->nj ? c->nj : 1, sizeof *ids);
    size_t n = 0;
    for (size_t j = 0; ids && j < c->nj; j++)
        if (c->jobs[j].state != J_ENDED) ids[n++] = c->jobs[j].id;
    for (size_t i = 0; i < c->nw; i++) c->w[i].retired = true;
    if (n && cancel(c, NULL, ids, n, &e))
        herd_log(c->env, HERD_LOG_WARN, "SLURMCluster: close: %s", e.msg);
    free(ids);
    /* wait until none is active any more, then the name sweep */
    double end = herd_now() + CLOSE_WAIT_S;
    while (n) {
        struct timespec ts = { 0, 200 * 1000 * 1000 };
        nanosleep(&ts, NULL);
        if (poll_jobs(c, &e)) break;
        size_t left = 0;
        for (size_t j = 0; j < c->nj; j++) left += c->jobs[j].state != J_ENDED;
        if (!left) break;
        if (herd_now() > end) {
            herd_log(c->env, HERD_LOG_WARN, "SLURMCluster: close: %zu job%s still active after %.0fs",
                     left, left > 1 ? "s" : "", CLOSE_WAIT_S);
            break;
        }
    }
    if (c->nj) {
        const char *extra[] = { "--name", c->job_name, NULL };
        if (cancel(c, extra, NULL, 0, &e))
            herd_log(c->env, HERD_LOG_WARN, "SLURMCluster: close: sweep of %s: %s", c->job_name, e.msg);
    }
    herd_log(c->env, HERD_LOG_DEBUG, "SLURMCluster: closed (%zu jobs, %zu workers ever submitted)", c->nj, c->nw);
    pthread_mutex_unlock(&c->mu);
    cluster_free(c);
}

/* For `herd slurm job-script`: the script scale_up would submit (the
 * worker's name is filled in by the job from Slurm's job id). Malloc'd. */
HERD_API int SLURMCluster_job_script(herd_cluster *c, char **out, herd_err *err);
int SLURMCluster_job_script(herd_cluster *c, char **out, herd_err *err)
{
    if (!c || !out) return herd_err_set(err, HERD_EARG, "SLURMCluster_job_script: NULL argument");
    char **wargv = NULL;
    int rc = worker_cmd(c, &wargv, err);
    if (!rc) rc = slurm_job_script(&c->o, (const char *const *)wargv, c->job_name, out, err);
    herd_strv_free(wargv);
    return rc;
}

HERD_PROVIDER(SLURMCluster) = {
    HERD_PROVIDER_HEAD(SLURMCluster, "workers as Slurm jobs (after dask-jobqueue's SLURMCluster)", slurm_params),
    .create = sc_create,
    .start = sc_start,
    .scale_up = sc_scale_up,
    .retire = sc_retire,
    .status = sc_status,
    .close = sc_close,
    .scheduler_listen = sc_listen,
};

HERD_API const herd_provider *const herd_providers[] = { &SLURMCluster, NULL };
