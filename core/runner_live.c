/* core/runner_live.c — a flow run's cluster while it is live, whoever runs
 * its scheduler: going live (the client's transport and resource check, the
 * provider's workers started), the keeper that holds it at its size
 * (adaptive.c), the "no worker" error, the run's log, and the process-wide
 * list of live runs that SIGINT/SIGTERM tear down. Signal dispositions are
 * process-wide, so that list is the one piece of process-wide state here. */
#include "runner_int.h"
#include "tmpdir.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- process-wide: runners with a live temporary cluster, for signals ---- */
static pthread_mutex_t active_mu = PTHREAD_MUTEX_INITIALIZER;
static flow_runner *active_list;
static int sig_pipe[2] = { -1, -1 };
static struct sigaction old_int, old_term;
static int sig_installed;
static pthread_t sig_thread;

void rn_log(flow_runner *r, int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    herd_vlogf(r->log, r->log_ud, level, fmt, ap);
    va_end(ap);
}

void rn_close_cluster(flow_runner *r)
{
    int expected = 0;
    if (r->cluster && atomic_compare_exchange_strong(&r->cluster_closed, &expected, 1))
        r->cprov->close(r->cluster);
}

static void on_signal(int sig)
{
    int saved = errno;
    unsigned char b = (unsigned char)sig;
    if (write(sig_pipe[1], &b, 1) < 0) {}
    errno = saved;
}

/* SIGINT/SIGTERM that were not ignored when the first flow run began (a
 * program started as a `&` job in a script has SIGINT ignored and must not
 * act on it): the handler's list and the dispositions it replaced. */
static int sig_mine[2];            /* [0] SIGINT, [1] SIGTERM: ours installed */

static void restore_signals(void)
{
    if (sig_mine[0]) sigaction(SIGINT, &old_int, NULL);
    if (sig_mine[1]) sigaction(SIGTERM, &old_term, NULL);
    sig_mine[0] = sig_mine[1] = 0;
}

static void *sig_main(void *arg)
{
    int rfd = (int)(intptr_t)arg;        /* its own pipe's read end, not the global: a later run may have a new one */
    unsigned char b;
    while (read(rfd, &b, 1) == 1) {
        if (b == 0) continue;
        char why[96];
        snprintf(why, sizeof why, "the flow's process got signal %d (%s); its cluster was torn down", b,
                 b == SIGINT ? "SIGINT" : b == SIGTERM ? "SIGTERM" : "?");
        pthread_mutex_lock(&active_mu);
        for (flow_runner *r = active_list; r; r = r->next_active) {
            rn_log(r, HERD_LOG_WARN, "flow run %s: signal %d, tearing down its cluster", r->flow_name, b);
            herd_adaptive_halt(r->adaptive);
            rn_close_cluster(r);
            /* no future waits on a cluster that is gone */
            herd_client_shutdown(&r->client, HERD_CANCELLED, why);
            if (r->tmpdir[0]) herd_tmpdir_remove(r->tmpdir);   /* the scheduler's socket goes with the process */
        }
        /* the disposition from before: the default ends the process with
         * this signal; a handler of the program's own runs (and the
         * program goes on, every future of the run final) */
        restore_signals();
        pthread_mutex_unlock(&active_mu);
        raise(b);
    }
    return NULL;
}

void rn_activate(flow_runner *r)
{
    pthread_mutex_lock(&active_mu);
    if (!sig_installed && pipe2(sig_pipe, O_CLOEXEC) == 0) {
        struct sigaction sa = { .sa_handler = on_signal };
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = SA_RESTART;
        sigaction(SIGINT, NULL, &old_int);
        sigaction(SIGTERM, NULL, &old_term);
        if (pthread_create(&sig_thread, NULL, sig_main, (void *)(intptr_t)sig_pipe[0]) == 0) {
            sig_installed = 1;
            /* never a handler for a signal the program ignores */
            if (old_int.sa_handler != SIG_IGN) sig_mine[0] = sigaction(SIGINT, &sa, &old_int) == 0;
            if (old_term.sa_handler != SIG_IGN) sig_mine[1] = sigaction(SIGTERM, &sa, &old_term) == 0;
        } else {
            close(sig_pipe[0]);
            close(sig_pipe[1]);
            sig_pipe[0] = sig_pipe[1] = -1;
        }
    }
    r->next_active = active_list;
    active_list = r;
    pthread_mutex_unlock(&active_mu);
}

/* The last runner out stops the signal thread. The thread is joined after
 * active_mu is released: a signal read just before the pipe closes has the
 * thread waiting for active_mu, and joining it under the lock would wait
 * forever. Its handle and read end are taken out under the lock, so a flow
 * run beginning meanwhile installs a thread and pipe of its own. */
void rn_deactivate(flow_runner *r)
{
    int stop = 0, rfd = -1;
    pthread_t th;
    pthread_mutex_lock(&active_mu);
    for (flow_runner **pp = &active_list; *pp; pp = &(*pp)->next_active)
        if (*pp == r) { *pp = r->next_active; break; }
    if (!active_list && sig_installed) {
        restore_signals();
        close(sig_pipe[1]);              /* the thread's read ends: it exits */
        rfd = sig_pipe[0];
        th = sig_thread;
        sig_pipe[0] = sig_pipe[1] = -1;
        sig_installed = 0;
        stop = 1;
    }
    pthread_mutex_unlock(&active_mu);
    if (stop) {
        pthread_join(th, NULL);
        close(rfd);
    }
}

void rn_status_text(flow_runner *r, char *buf, size_t cap)
{
    herd_worker_info info[16];
    size_t n = 0, len = 0;
    buf[0] = '\0';
    if (!r->cluster || r->cprov->status(r->cluster, info, 16, &n)) return;
    for (size_t i = 0; i < n && i < 16 && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%s: %s%s%s", i ? "; " : "", info[i].name,
                                info[i].state == HERD_WORKER_FAILED ? "failed" :
                                info[i].state == HERD_WORKER_STOPPED ? "stopped" :
                                info[i].state == HERD_WORKER_RUNNING ? "running" : "starting",
                                info[i].detail[0] ? " " : "", info[i].detail);
}

/* The one place that keeps the cluster at its intended size (adaptive.c):
 * with adapt_kwargs the load's target, else a nanny that holds the count of
 * workers start() brought up and replaces the ones that die. ops and s reach
 * the scheduler. */
int rn_keep_size(flow_runner *r, const herd_sched_ops *ops, void *s, herd_err *err)
{
    int rc;
    if (r->opts.adaptive) {            /* the load decides the size from here on */
        if ((rc = herd_adaptive_start(&r->adaptive, &r->opts.adapt, ops, s, r->cprov, r->cluster, &r->env, err)))
            return rc;
        pthread_mutex_lock(&r->client.mu);
        r->client.tp = &herd_adaptive_tp;
        r->client.tp_ud = r->adaptive;
        pthread_mutex_unlock(&r->client.mu);
        return 0;
    }
    herd_worker_info small[64], *info = small;
    size_t n = 0, cap = 64;
    if (r->cprov->status(r->cluster, info, cap, &n) == 0 && n > cap && (info = calloc(n, sizeof *info))) {
        cap = n;
        if (r->cprov->status(r->cluster, info, cap, &n)) n = 0;
    }
    if (info == NULL) info = small;
    int want = 0;
    for (size_t i = 0; i < n && i < cap; i++)
        if (info[i].state == HERD_WORKER_STARTING || info[i].state == HERD_WORKER_RUNNING) want++;
    if (info != small) free(info);
    if (!want) return 0;               /* n_workers: 0 — nothing to keep */
    herd_adaptive_cfg cfg = { .minimum = want, .maximum = want, .interval = 1, .wait_count = 1,
                              .target_duration = 1, .fixed = 1 };
    return herd_adaptive_start(&r->adaptive, &cfg, ops, s, r->cprov, r->cluster, &r->env, err);
}

/* The run is live at r->addr, its client submitting through tp (checked
 * against the resources the provider's workers offer): the provider starts
 * its workers and the keeper keeps the cluster at its size (ops on s). */
int rn_go_live(flow_runner *r, const herd_transport *tp, const herd_sched_ops *ops, void *s, herd_err *err)
{
    r->env.scheduler_address = r->addr;
    herd_tls_pem_free(r->wenvp[ENV_ADDR]);
    if (asprintf(&r->wenvp[ENV_ADDR], "HERD_SCHEDULER_ADDRESS=%s", r->addr) < 0) r->wenvp[ENV_ADDR] = NULL;
    rn_activate(r);
    r->active = 1;
    const herd_value *(*res_hook)(herd_cluster *) = r->cprov->worker_resources;
    const herd_value *res = res_hook ? res_hook(r->cluster) : NULL;
    pthread_mutex_lock(&r->client.mu);
    herd_value_free(r->client.cluster_resources);
    r->client.cluster_resources = res ? herd_value_copy(res) : herd_map();
    r->client.check_resources = 1;
    r->client.tp = tp;
    r->client.tp_ud = s;
    r->client.closed = 0;
    pthread_mutex_unlock(&r->client.mu);
    int rc = r->cprov->start(r->cluster, err);
    if (rc) return herd_err_prefix(err, "%s: starting workers", r->cprov->name);
    return rn_keep_size(r, ops, s, err);
}

int rn_no_worker(flow_runner *r, herd_err *err)
{
    char st[1024];
    rn_status_text(r, st, sizeof st);
    return herd_err_set(err, HERD_ETIMEOUT, "flow run %s: no worker of %s connected within %.3gs (provision_timeout)%s%s",
                        r->flow_name, r->cprov->name, r->opts.client.provision_timeout, st[0] ? "; workers: " : "", st);
}
