/* providers/ssh/ssh.c — ssh.SSHCluster (alias distributed.SSHCluster):
 * workers on other machines, started through the system OpenSSH client in
 * BatchMode, so ~/.ssh/config, agents, ProxyJump and known_hosts work as the
 * user expects. The scheduler stays in the client process and listens where
 * the hosts can reach it (scheduler_listen), or, with scheduler_host, runs
 * on that host in an ssh session of its own (start_scheduler), stopped
 * after the workers on close. This file is the hub: the cluster's life
 * (create from the settings, close), the hooks and the provider descriptor;
 * ssh.h says which file does the rest. The workers a start or scale_up
 * places on one host share one ssh session (session.c), which stays up
 * while any of them runs; the remote wrapper (remote.c) reports each
 * worker's pid and exit on its own. Retire writes "stop I" into the
 * session's stdin; close ends the stdin (the wrapper stops them all), then
 * kills ssh, then kills the remote pids over a fresh session when their end
 * was not seen (workers.c). One mutex per cluster guards the state; the
 * monitor thread's callbacks take it. */
#include "ssh.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* details and host names are cut to the fixed sizes of herd_worker_info:
 * truncation there is intended */
#pragma GCC diagnostic ignored "-Wformat-truncation"

/* ---- the cluster's life ---- */

static void cluster_free(herd_cluster *c)
{
    ssh_mon_free(c->mon);   /* first: its callbacks point at the workers */
    while (c->sess) {
        ssess *s = c->sess;
        c->sess = s->next;
        herd_proc_free(s->ch.proc);
        if (s->ch.in >= 0) close(s->ch.in);
        free(s->w);
        free(s);
    }
    for (size_t i = 0; i < c->nw; i++) free(c->w[i]);
    free(c->w);
    if (c->sched) herd_proc_free(c->sched->ch.proc);
    if (c->sched && c->sched->ch.in >= 0) close(c->sched->ch.in);
    free(c->sched);
    ssh_settings_free(&c->set);
    pthread_mutex_destroy(&c->scale_mu);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static int sc_create(herd_cluster **out, const herd_value *kw, const herd_cluster_env *env, herd_err *err)
{
    *out = NULL;
    herd_cluster *c = calloc(1, sizeof *c);
    if (!c) return herd_err_set(err, -ENOMEM, "SSHCluster: out of memory");
    pthread_mutex_init(&c->mu, NULL);
    pthread_mutex_init(&c->scale_mu, NULL);
    herd_cond_init_monotonic(&c->cv);
    c->env = env;
    int rc = ssh_settings_read(&c->set, kw, err);
    if (!rc && c->set.has_sched) {
        if (!(c->sched = calloc(1, sizeof *c->sched))) rc = herd_err_set(err, -ENOMEM, "SSHCluster: out of memory");
        else {
            c->sched->ch.in = -1;
            c->sched->h = c->set.sched_host;
        }
    }
    if (!rc && (rc = ssh_mon_new(&c->mon, err)))
        herd_err_prefix(err, "SSHCluster");
    if (rc) { cluster_free(c); return rc; }
    herd_log(env, HERD_LOG_DEBUG, "SSHCluster: %d workers x %d threads over %zu hosts", c->set.n_workers,
             c->set.nthreads, c->set.nh);
    *out = c;
    return 0;
}

/* ---- the hooks ---- */

static int sc_scale_up(herd_cluster *c, int n, herd_err *err)
{
    if (n < 0) return herd_err_set(err, HERD_EARG, "SSHCluster scale_up: n = %d, expected >= 0", n);
    return n ? ssh_scale(c, n, err) : 0;
}

static int sc_start(herd_cluster *c, herd_err *err) { return c->set.n_workers ? ssh_scale(c, c->set.n_workers, err) : 0; }

static int sc_retire(herd_cluster *c, const char *worker, herd_err *err)
{
    pthread_mutex_lock(&c->mu);
    sworker *w = NULL;
    for (size_t i = 0; i < c->nw && !w; i++)
        if (strcmp(c->w[i]->name, worker ? worker : "") == 0) w = c->w[i];
    if (!w) {
        char names[600] = "";
        size_t o = 0;
        for (size_t i = 0; i < c->nw && o < sizeof names - 70; i++)
            if (c->w[i]->state == HERD_WORKER_RUNNING)
                o += (size_t)snprintf(names + o, sizeof names - o, "%s%s", o ? ", " : "", c->w[i]->name);
        pthread_mutex_unlock(&c->mu);
        return herd_err_set(err, HERD_EARG, "SSHCluster retire: no worker \"%s\" (running: %s)",
                            worker ? worker : "(null)", o ? names : "none");
    }
    if (w->busy || w->ended || !w->spawned) {
        pthread_mutex_unlock(&c->mu);
        return 0;
    }
    w->busy = true;
    w->state = HERD_WORKER_STOPPING;
    pthread_mutex_unlock(&c->mu);
    ssh_stop_workers(c, &w, 1);
    pthread_mutex_lock(&c->mu);
    w->busy = false;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    herd_log(c->env, HERD_LOG_INFO, "SSHCluster: retired worker %s", worker);
    return 0;
}

static int sc_status(herd_cluster *c, herd_worker_info *out, size_t cap, size_t *n)
{
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < c->nw && out; i++) {
        if (i >= cap) break;
        sworker *w = c->w[i];
        herd_worker_info *o = &out[i];
        memset(o, 0, sizeof *o);
        snprintf(o->name, sizeof o->name, "%s", w->name);
        o->state = w->state;
        o->pid = w->rpid;
        snprintf(o->host, sizeof o->host, "%s", w->h->spec);
        snprintf(o->detail, sizeof o->detail, "%s", w->detail);
    }
    if (n) *n = c->nw;
    pthread_mutex_unlock(&c->mu);
    return 0;
}

static const herd_value *sc_worker_resources(herd_cluster *c) { return c->set.resources; }

static void sc_close(herd_cluster *c)
{
    if (!c) return;
    pthread_mutex_lock(&c->mu);
    c->closing = true;
    pthread_cond_broadcast(&c->cv);
    for (;;) {                              /* starts and retires in flight finish first */
        bool busy = c->scaling > 0;
        for (size_t i = 0; i < c->nw; i++) busy |= c->w[i]->busy;
        if (!busy) break;
        struct timespec ts;
        herd_deadline(0.02, &ts);
        pthread_cond_timedwait(&c->cv, &c->mu, &ts);
    }
    sworker **live = calloc(c->nw ? c->nw : 1, sizeof *live);
    size_t n = 0;
    for (size_t i = 0; live && i < c->nw; i++)
        if (c->w[i]->spawned && !c->w[i]->ended) {
            c->w[i]->state = HERD_WORKER_STOPPING;
            live[n++] = c->w[i];
        }
    pthread_mutex_unlock(&c->mu);
    if (live) ssh_stop_workers(c, live, n);
    else {                                  /* no memory: one at a time */
        for (size_t i = 0; i < c->nw; i++)
            if (c->w[i]->spawned && !c->w[i]->ended) ssh_stop_workers(c, &c->w[i], 1);
    }
    free(live);
    ssh_stop_scheduler(c);
    herd_log(c->env, HERD_LOG_DEBUG, "SSHCluster: closed (%zu workers ever started)", c->nw);
    cluster_free(c);
}

HERD_PROVIDER(SSHCluster) = {
    HERD_PROVIDER_HEAD(SSHCluster, "workers on other machines over ssh (the system OpenSSH client)", ssh_params),
    .create = sc_create,
    .start = sc_start,
    .scale_up = sc_scale_up,
    .retire = sc_retire,
    .status = sc_status,
    .worker_resources = sc_worker_resources,
    .close = sc_close,
    .scheduler_listen = ssh_scheduler_listen,
    .start_scheduler = ssh_start_scheduler,
};
HERD_API const herd_provider *const herd_providers[] = { &SSHCluster, NULL };
