/* core/worker.h — running a worker: in this process's threads or as the
 * whole process (herd_init's worker mode, `herd worker`). */
#ifndef HERD_WORKER_H
#define HERD_WORKER_H
#include "internal.h"

typedef struct herd_worker_cfg {
    const char *address;       /* scheduler to dial */
    const char *token;         /* NULL: none */
    const char *name;
    int nthreads;
    const herd_value *resources;
    int64_t memory_limit;      /* bytes, 0 = none (process mode only) */
    double connect_timeout;    /* seconds */
} herd_worker_cfg;

/* Run a worker in the calling thread until the scheduler closes it or goes
 * away. Returns the process exit status to use (0 clean, 1 error, 3 refused). */
int herd_worker_run(const herd_worker_cfg *cfg);
/* Parse worker-mode flags (--herd-name …) and the environment into cfg.
 * Strings point into argv/environ; *res is a new map or NULL. */
int herd_worker_cfg_from_args(int argc, char **argv, herd_worker_cfg *cfg, herd_value **res, herd_err *err);
/* "GPU=1,process=1" -> map. */
int herd_resources_parse(const char *s, herd_value **out, herd_err *err);
#endif
