/* core/runner_int.h — the task runner's state (flow_runner) and what its
 * files share: runner.c (the API, options, starting and ending a flow run's
 * cluster), runner_remote.c (schedulers this process does not run: an
 * address, or one a provider starts) and runner_live.c (a run while it is
 * live: going live, keeping its size, signals). */
#ifndef HERD_RUNNER_INT_H
#define HERD_RUNNER_INT_H

#include "client.h"
#include "progress.h"
#include "config.h"
#include "comm.h"
#include "scheduler.h"
#include "worker.h"
#include "remote.h"
#include "security.h"
#include "adaptive.h"
#include "options.h"

#include <stdatomic.h>

/* The workers' environment, in order (a NULL entry ends it): the log level
 * they inherit, the token, the scheduler's address, TLS (up to 4: the
 * identity and HERD_TLS_SERVER_NAME). */
enum { ENV_LEVEL, ENV_TOKEN, ENV_ADDR, ENV_TLS, ENV_N = ENV_TLS + 4 };

typedef struct flow_runner {
    struct herd_runner base;
    herd_client client;
    char *address;
    const herd_provider *prov;
    herd_cluster_factory factory;
    char *class_name;
    herd_value *cluster_kwargs;      /* as given (a factory gets these) */
    herd_value *adapt_kwargs;
    herd_run_opts opts;              /* validated: opts.client, opts.adapt, opts.cluster_ok */
    /* every log line of the run goes through runner_sink (r), which drops
     * lines below opts.client.log_level and hands the rest to the user's
     * sink, else stderr */
    void (*log)(void *ud, int level, const char *line);
    void *log_ud;
    void (*user_log)(void *ud, int level, const char *line);
    void *user_log_ud;
    /* flow run */
    int active;
    char *flow_name;
    double t0;
    herd_sched *sched;
    herd_remote *remote;             /* address mode: the connection to the scheduler */
    int remote_owned;                /* remote is a scheduler this run's provider started */
    herd_cluster *cluster;
    const herd_provider *cprov;      /* provider of the running cluster */
    atomic_int cluster_closed;
    herd_cluster_env env;
    herd_env_core envcore;
    char *wargv[3], *wenvp[ENV_N + 1];
    herd_tls *tls;                   /* TLS of this flow run's cluster or connection, or NULL */
    herd_tls_ca *tmp_ca;             /* security: temporary with a remote scheduler, during start_scheduler */
    char token[160];                 /* the cluster's token during herd_flow_begin */
    herd_adaptive *adaptive;
    herd_flow_progress *progress;    /* client_kwargs.progress: the progress line's thread, or NULL */
    /* start: lazy — the temporary cluster starts on the first submit (or
     * whatever needs workers); start_mu serialises that start */
    pthread_mutex_t start_mu;
    atomic_int lazy;                 /* 1: begun, cluster not started yet */
    atomic_int start_rc;             /* the lazy start's error, returned to every later submit */
    herd_err start_err;
    char addr[512];
    char tmpdir[64];
    struct flow_runner *next_active;
} flow_runner;

/* runner_live.c */
void rn_log(flow_runner *r, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The run is live: signals tear it down; rn_deactivate: no more. */
void rn_activate(flow_runner *r);
void rn_deactivate(flow_runner *r);
/* The provider's cluster closed, once. */
void rn_close_cluster(flow_runner *r);
/* "N workers: …" for error messages. */
void rn_status_text(flow_runner *r, char *buf, size_t cap);
/* Start the cluster's workers and keep it at its size (adaptive.c). */
int  rn_keep_size(flow_runner *r, const herd_sched_ops *ops, void *s, herd_err *err);
/* The run goes live at r->addr through transport tp: workers start, the
 * cluster is kept at its size (ops on s). */
int  rn_go_live(flow_runner *r, const herd_transport *tp, const herd_sched_ops *ops, void *s, herd_err *err);
/* "no worker connected within provision_timeout", with the provider's view. */
int  rn_no_worker(flow_runner *r, herd_err *err);

/* runner_remote.c */
/* The workers' TLS entries (identity, server name) from r->tls, replacing what they held. */
int  rn_export_worker_tls(flow_runner *r, herd_err *err);
/* TLS from client_kwargs' tls_* files (r->tls NULL when none is given). */
int  rn_tls_from_kwargs(flow_runner *r, herd_err *err);
/* address mode: connect to an existing scheduler as a client. */
int  rn_begin_remote(flow_runner *r, herd_err *err);
/* A provider's start_scheduler: 1 declined, 0 up, or an error. */
int  rn_begin_remote_scheduler(flow_runner *r, const char *tok, herd_err *err);

#endif
