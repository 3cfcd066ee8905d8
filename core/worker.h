/* core/worker.h — running a worker: in this process's threads or as the
 * whole process (herd_init's worker mode, `herd worker`). */
#ifndef HERD_WORKER_H
#define HERD_WORKER_H
#include "client.h"
#include "scheduler.h"
#include "security.h"

typedef struct herd_worker_cfg {
    const char *address;       /* scheduler to dial */
    const char *token;         /* NULL: none */
    const char *name;
    int nthreads;
    const herd_value *resources;
    int64_t memory_limit;      /* bytes, 0 = none (process mode only) */
    double connect_timeout;    /* seconds */
    herd_tls *tls;             /* NULL: plain; tls:// addresses need it (borrowed) */
    int reconnect;             /* a long-lived worker: redial with backoff when the
                                  scheduler goes away (until CLOSE or a refusal) */
} herd_worker_cfg;

/* Exit statuses of herd_worker_run. */
enum { HERD_WORKER_EXIT_OK = 0, HERD_WORKER_EXIT_ERROR = 1, HERD_WORKER_EXIT_REFUSED = 3,
       HERD_WORKER_EXIT_LOST = 4 };

/* Run a worker in the calling thread until the scheduler closes it or goes
 * away. Returns the process exit status to use (0 clean, 1 error, 3 refused). */
int herd_worker_run(const herd_worker_cfg *cfg);
/* herd_worker_run, again and again with backoff (0.1 s doubling to 10 s)
 * while cfg->reconnect and the connection was lost or could not be made. */
int herd_worker_main(const herd_worker_cfg *cfg);

/* ---- a flow's connection to an existing scheduler (address mode) ---- */
typedef struct herd_remote herd_remote;
/* Dial address, say hello as a client, wait for the welcome (or refusal)
 * within timeout_s. Results for cl's futures are delivered to cl; cl->id is
 * set to the key prefix the scheduler gave. Set cl->tp = &herd_remote_tp and
 * cl->tp_ud = the herd_remote after this returns. */
int  herd_remote_connect(const char *address, const char *token, herd_tls *tls, const char *name,
                         double timeout_s, herd_client *cl, herd_remote **out, herd_err *err);
void herd_remote_close(herd_remote *r);
int  herd_remote_workers(herd_remote *r, int *nthreads);
/* 1 when the scheduler was started for one cluster (--herd-scheduler):
 * its client may drain and close workers. */
int  herd_remote_owned(herd_remote *r);
int  herd_remote_wait_workers(herd_remote *r, int n, double timeout_s, herd_err *err);
extern const herd_transport herd_remote_tp;
/* A control call (OP_CONTROL): "load" (*out: the load as a list),
 * "drain" NAME, "close_workers" REASON (the last two only on a scheduler
 * started for this cluster). Waits for the answer up to timeout_s. */
int  herd_remote_control(herd_remote *r, const char *verb, const char *arg, double timeout_s, herd_value **out,
                         herd_err *err);
/* herd_sched_ops over the connection (ud: the herd_remote), for adaptive
 * scaling of a cluster whose scheduler a provider runs remotely. */
extern const herd_sched_ops herd_remote_ops;

/* Parse worker-mode flags (--herd-name …) and the environment into cfg.
 * Strings point into argv/environ; *res is a new map or NULL. */
int herd_worker_cfg_from_args(int argc, char **argv, herd_worker_cfg *cfg, herd_value **res, herd_err *err);
/* server.c: herd_init's --herd-scheduler mode; returns the exit code. */
int herd_scheduler_serve_args(int argc, char **argv);
/* "GPU=1,process=1" -> map. */
int herd_resources_parse(const char *s, herd_value **out, herd_err *err);
#endif
