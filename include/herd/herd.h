/* herd/herd.h — the user's API: herd_init, the task runner (the C form of
 * Prefect's DaskTaskRunner), flow runs, submitting tasks, futures, and
 * annotations. Include this one header; it pulls in value.h and task.h.
 *
 *   #include <herd/herd.h>
 *   #include <stdio.h>
 *
 *   int main(int argc, char **argv) {
 *       herd_init(&argc, &argv);                 // worker mode never returns
 *       herd_runner *r; herd_err err;
 *       herd_runner_opts o = { .cluster_kwargs = "{n_workers: 4, threads_per_worker: 2}",
 *                              .client_kwargs = "{log_level: warning}" };
 *       if (herd_runner_new(&r, &o, &err)) { fprintf(stderr, "%s\n", err.msg); return 1; }
 *       int rc = herd_flow_begin(r, "my-flow", &err);
 *       herd_future *f = NULL;
 *       const herd_value *v = NULL;
 *       if (!rc) rc = herd_submit(r, "download_image", herd_tuple("ii", 2022, 1), &f, &err);
 *       if (!rc) rc = herd_future_result(f, 60, &v, &err);
 *       if (rc) fprintf(stderr, "%s\n", err.msg);
 *       herd_flow_end(r, rc != 0, NULL);         // futures go with the runner
 *       herd_runner_free(r);
 *       return rc != 0;
 *   }
 */
#ifndef HERD_HERD_H
#define HERD_HERD_H

#include "common.h"
#include "value.h"
#include "task.h"
#include "provider.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Bad arguments never crash: every function below checks its pointers. A
 * function returning int fails with -HERD_EARG (and a message in err naming
 * the argument) for a NULL it needs, unless its comment says otherwise; the
 * others return the neutral value their comment gives for a NULL. */

/* Call first in main(). When the runtime started this process as a worker
 * (the C form of Python's `if __name__ == "__main__":` guard), it runs the
 * worker and exits; likewise for a scheduler a provider runs on another
 * machine (--herd-scheduler) and for --herd-version, which prints "herd
 * <version> protocol <n>" (what SSHCluster checks on each host before
 * starting). Otherwise it returns 0 with argc/argv untouched. */
HERD_API int herd_init(int *argc, char ***argv);

/* ---- the task runner ---- */
/* The seed's parameter table, one for one. Kwargs are YAML text (flow style
 * "{n_workers: 4}" or block style) or, in the *_value fields, values (which
 * win when both are set; the runner copies them). Nothing set means a
 * temporary local.LocalCluster with defaults from the core count. */
typedef struct herd_runner_opts {
    const char *address;                  /* existing scheduler: "tcp://host:8786", "unix:///path" */
    const char *cluster_class;            /* "local.LocalCluster", "dask_jobqueue.SLURMCluster", "x.so:Sym" */
    const herd_provider *cluster_provider;/* or the provider itself */
    herd_cluster_factory cluster_factory; /* or a function that creates the cluster */
    const char *cluster_kwargs;
    const char *adapt_kwargs;             /* adaptive scaling only when given */
    const char *client_kwargs;            /* token, timeouts, log_level … (see README) */
    const herd_value *cluster_kwargs_value;
    const herd_value *adapt_kwargs_value;
    const herd_value *client_kwargs_value;
    /* Where flow and task log lines go (default: stderr). */
    void (*log)(void *ud, int level, const char *line);
    void *log_ud;
    /* A named profile of herd.yaml (see README, "Cluster profiles"): its
     * cluster_class, cluster_kwargs, adapt_kwargs, client_kwargs or address
     * apply, and the fields set above override it key by key. NULL: the
     * profile named by $HERD_PROFILE, else the file's `default` profile if it
     * has one, else none. */
    const char *profile;
} herd_runner_opts;

typedef struct herd_runner herd_runner;
typedef struct herd_future herd_future;

/* Validate the options (resolve the provider, check every kwargs key) without
 * starting anything. A NULL opts is the default runner; out is required. */
HERD_API int  herd_runner_new(herd_runner **out, const herd_runner_opts *opts, herd_err *err);
/* Ends an active flow run (tearing down its cluster) and frees everything,
 * futures included. */
HERD_API void herd_runner_free(herd_runner *r);             /* NULL: nothing */

/* ---- flow runs ---- */
/* Start a flow run (-HERD_EARG for a NULL runner): connect to `address`, or open the run of a temporary
 * cluster, which starts on the first submit (or herd_wait_for_workers,
 * herd_runner_address, herd_runner_workers), or here with client_kwargs
 * {start: eager}; a cluster that cannot start fails that call, and every
 * later submit of the run, with the provider's error. The cluster lives
 * until herd_flow_end, its dead workers replaced; SIGINT/SIGTERM during the
 * run (unless the program ignores them) tear it down, end every pending
 * future, then take their previous course. */
HERD_API int herd_flow_begin(herd_runner *r, const char *flow_name, herd_err *err);
/* End the flow run: tasks still pending are Cancelled, the temporary cluster
 * is closed (an existing one is left running). `failed` marks the run failed
 * in the log. Returns the first error met while closing. */
HERD_API int herd_flow_end(herd_runner *r, bool failed, herd_err *err);
/* Wait until n workers are connected (-HERD_ESTATE for a NULL runner or no
 * active flow run). */
HERD_API int herd_wait_for_workers(herd_runner *r, int n, double timeout_s, herd_err *err);
/* The address workers dial during an active flow run ("unix:///tmp/herd-…"
 * or "tcp://127.0.0.1:PORT"), or NULL (also for a NULL runner). Valid until
 * the flow run ends. */
HERD_API const char *herd_runner_address(herd_runner *r);
/* Number of connected workers, and their total threads (nthreads may be
 * NULL). A NULL runner has 0 of each. */
HERD_API int herd_runner_workers(herd_runner *r, int *nthreads);

/* ---- submitting ---- */
/* Submit task `task` (a HERD_TASK name in this program, "plugin.task", or
 * "path.so:symbol") with args (an array, ownership taken; NULL = no args).
 * Futures inside args (herd_future_arg / 'f' in herd_tuple) become
 * dependencies. Current annotations apply. On success *out is a new future
 * owned by the runner (release it with herd_future_release when done).
 * On any error *out is NULL and args has been freed. */
HERD_API int herd_submit(herd_runner *r, const char *task, herd_value *args,
                         herd_future **out, herd_err *err);
/* Same, with per-submit annotations as YAML text ("{priority: 10, retries: 2}")
 * on top of the current scope. */
HERD_API int herd_submit_annotated(herd_runner *r, const char *task, herd_value *args,
                                   const char *annotations, herd_future **out, herd_err *err);
/* Submit task once per element of arg_tuples (an array of arrays, taken).
 * *futs is a malloc'd array of *n futures (free the array, not the futures).
 * futs and n are required; on error *futs is NULL, *n is 0 and arg_tuples
 * has been freed. */
HERD_API int herd_submit_map(herd_runner *r, const char *task, herd_value *arg_tuples,
                             herd_future ***futs, size_t *n, herd_err *err);
/* A future as a task argument (becomes a dependency); nil for NULL. */
HERD_API herd_value *herd_future_arg(const herd_future *f);

/* ---- annotations (dask.annotate) ----
 * Keys: priority (int, higher first), resources (map name -> number),
 * retries (int), retry_delay (duration; doubles after each retry),
 * timeout (duration), tags (list of strings), workers (list of the worker
 * names, host names or addresses it may run on, as Dask's: a host names every
 * worker on it; while none is connected the task waits, within the client's
 * no_workers_timeout), allow_other_workers (bool: any worker while none of
 * those is connected). push merges over the current scope (NULL or "" pushes an
 * empty scope); pop restores the previous one: -HERD_ESTATE when nothing was
 * pushed, -HERD_EARG for a NULL runner. */
HERD_API int herd_annotate_push(herd_runner *r, const char *annotations, herd_err *err);
HERD_API int herd_annotate_pop(herd_runner *r);

/* ---- futures ---- */
typedef enum herd_state {
    HERD_PENDING,     /* submitted, waiting on dependencies or a slot */
    HERD_SCHEDULED,   /* sent to a worker */
    HERD_RUNNING,
    HERD_COMPLETED,
    HERD_FAILED,      /* the task's own error (after retries) */
    HERD_CRASHED,     /* its workers died allowed_failures+1 times, or the cluster went away */
    HERD_CANCELLED
} herd_state;

HERD_API const char *herd_state_name(herd_state s);      /* "Unknown" outside the enum */
HERD_API bool        herd_state_is_final(herd_state s);   /* false outside the enum */
/* A NULL future reads as HERD_CANCELLED (final: a wait on it never blocks). */
HERD_API herd_state  herd_future_state(herd_future *f);
/* Wait up to timeout_s (< 0: forever) for the result. 0 and *out (borrowed,
 * valid until the future is released) when Completed; -HERD_ETIMEOUT;
 * -HERD_EFAILED / -HERD_ECRASHED / -HERD_ECANCELLED with the reason in err. */
HERD_API int herd_future_result(herd_future *f, double timeout_s, const herd_value **out,
                                herd_err *err);
HERD_API const char *herd_future_error(herd_future *f);      /* NULL unless failed/crashed/cancelled, or f NULL */
HERD_API const char *herd_future_name(const herd_future *f);  /* task run name "download_image-3"; NULL for NULL */
HERD_API uint64_t    herd_future_key(const herd_future *f);   /* 0 for NULL */
HERD_API void        herd_future_release(herd_future *f);     /* NULL: nothing */
/* Cancel a task that has not finished: -HERD_ESTATE if it had, -HERD_EARG
 * for NULL. */
HERD_API int herd_future_cancel(herd_future *f);
/* Wait until every future is final. 0, or -HERD_ETIMEOUT. n = 0 returns 0 at
 * once; a NULL fs (with n > 0) or a NULL item is -HERD_EARG naming it. */
HERD_API int herd_wait(herd_future *const *fs, size_t n, double timeout_s, herd_err *err);
/* Wait until every future is final, showing their progress on stderr: one
 * line per task name (done, running, pending, failed, a bar), redrawn in
 * place at most 10 times a second on a terminal; otherwise plain lines when
 * counts change (at most once a second) and at the end (Dask's progress()).
 * 0, or -HERD_EARG naming a NULL argument. */
HERD_API int herd_progress(herd_runner *r, herd_future *const *fs, size_t n, herd_err *err);

/* as_completed: futures in the order they finish. NULL when out of memory,
 * or for a NULL fs with n > 0 or a NULL item. */
typedef struct herd_completed herd_completed;
HERD_API herd_completed *herd_as_completed(herd_future *const *fs, size_t n);
/* Next final future, NULL when all were returned or on timeout (check
 * herd_completed_left). */
HERD_API herd_future *herd_completed_next(herd_completed *it, double timeout_s);
HERD_API size_t herd_completed_left(const herd_completed *it);   /* 0 for NULL */
HERD_API void   herd_completed_free(herd_completed *it);         /* NULL: nothing */

/* ---- long-running clusters (what `herd scheduler` and `herd worker` run) ---- */
typedef struct herd_scheduler_opts {
    const char *listen;            /* "tcp://127.0.0.1:8786", "tcp://0.0.0.0:8786", "unix:///path" */
    const char *token;             /* every worker and client must present it; NULL: none */
    double heartbeat_interval;     /* s; 0: 1 */
    double heartbeat_timeout;      /* s; 0: 30 */
    int allowed_failures;          /* < 0: 3 */
    void (*log)(void *ud, int level, const char *line);   /* NULL: stderr */
    void *log_ud;
    /* TLS (listen must then be tls://): the CA that issued every worker's and
     * client's certificate, this scheduler's certificate and key (PEM). */
    const char *tls_ca_file, *tls_cert, *tls_key;
    /* s; > 0: a ready task no connected worker can run this long ends Crashed,
     * saying why (Dask's no-workers-timeout); 0: never (`herd scheduler`
     * passes 60, Dask's default) */
    double no_workers_timeout;
    /* The HTTP endpoint (live page at /, /health, /metrics, /api/v1):
     * "HOST:PORT" (Dask: 127.0.0.1:8787), ":PORT" for every interface, port 0
     * picks one; NULL or "": none. Beyond loopback it needs the token (a
     * Bearer header, or the one-time link herd_scheduler_dashboard_login
     * gives) and it serves HTTPS when the scheduler uses TLS. */
    const char *dashboard_address;
} herd_scheduler_opts;
typedef struct herd_scheduler herd_scheduler;
/* Start a scheduler on its own thread. *out is NULL on error (opts and
 * opts->listen are required). */
HERD_API int  herd_scheduler_start(herd_scheduler **out, const herd_scheduler_opts *opts, herd_err *err);
HERD_API const char *herd_scheduler_address(const herd_scheduler *s);   /* NULL for NULL */
/* The HTTP endpoint's URL ("http://127.0.0.1:8787"); NULL when it is off or s
 * is NULL. */
HERD_API const char *herd_scheduler_dashboard_url(const herd_scheduler *s);
/* Beyond loopback: a link that logs a browser in once (sets a cookie); NULL
 * on loopback, when off, or for NULL. */
HERD_API const char *herd_scheduler_dashboard_login(const herd_scheduler *s);
/* Stop it (workers are not told to exit: they reconnect when it is back).
 * NULL: nothing. */
HERD_API void herd_scheduler_stop(herd_scheduler *s);

typedef struct herd_worker_opts {
    const char *address;           /* the scheduler */
    const char *token;
    const char *name;              /* unique per scheduler; NULL: "<host>-<pid>" */
    int nthreads;                  /* <= 0: the number of CPUs */
    const char *resources;         /* "GPU=1,process=1" */
    int64_t memory_limit;          /* bytes, 0: none */
    const char *const *plugins;    /* NULL-terminated task plugins to load first ("shell", "path/x.so") */
    double connect_timeout;        /* s; 0: 30 */
    bool reconnect;                /* redial with backoff when the scheduler goes away */
    const char *tls_ca_file, *tls_cert, *tls_key;   /* for a tls:// address (PEM) */
    const char *tls_server_name;   /* the name the scheduler's certificate is checked against; NULL: its host */
} herd_worker_opts;
/* Run a worker in this process until the scheduler closes it (0), refuses it
 * (3), or — without reconnect — goes away (4). 1 and err on a setup error
 * (a NULL opts or address among them). */
HERD_API int herd_worker_serve(const herd_worker_opts *opts, herd_err *err);

#ifdef __cplusplus
}
#endif
#endif
