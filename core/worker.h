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
    double lifetime;           /* seconds, 0 = none: then it asks to be retired */
    double lifetime_stagger;   /* the lifetime varies by a uniform +/- this */
    const char *local_directory; /* where held values spill under memory_limit;
                                  NULL: the cluster's private directory (spill.c) */
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

/* Parse worker-mode flags (--herd-name …) and the environment into cfg.
 * Strings point into argv/environ; *res is a new map or NULL. */
int herd_worker_cfg_from_args(int argc, char **argv, herd_worker_cfg *cfg, herd_value **res, herd_err *err);
/* The worker's name: base (NULL: "worker"), completed as HERD_WORKER_NAME_FROM
 * says (worker_name.c; unset: base as is, "ecs-metadata": base-<ECS task id>). */
int herd_worker_name_complete(const char *base, char *out, size_t cap, herd_err *err);
/* server.c: herd_init's --herd-scheduler mode, with the secrets it took out
 * of the environment ("K=V", herd_secrets_take); returns the exit code. */
int herd_scheduler_serve_args(int argc, char **argv, char *const *secrets);
/* "GPU=1,process=1" -> map. */
int herd_resources_parse(const char *s, herd_value **out, herd_err *err);
#endif
