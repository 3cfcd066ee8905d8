/* core/scheduler.h — the scheduler: task states, dependencies, priorities,
 * resources, retries, timeouts, worker failure. It runs on its own thread
 * with a libevent loop; in-process clients post to it through a queue. */
#ifndef HERD_SCHED_H
#define HERD_SCHED_H

#include "client.h"

typedef struct herd_sched herd_sched;

typedef struct herd_sched_cfg {
    const char *listen;            /* "unix:///…" or "tcp://host:port" */
    const char *token;             /* every worker and client must present it; NULL: none */
    double heartbeat_interval;     /* seconds between worker heartbeats */
    double heartbeat_timeout;      /* a worker silent this long is dead */
    int allowed_failures;          /* worker deaths a task survives before Crashed */
    void (*log)(void *ud, int level, const char *line);
    void *log_ud;
} herd_sched_cfg;

/* Start a scheduler on a new thread; *addr gets the address workers dial. */
int  herd_sched_start(herd_sched **out, const herd_sched_cfg *cfg, char *addr, size_t cap, herd_err *err);
/* Ask every worker to exit, stop the loop, join the thread, free everything. */
void herd_sched_stop(herd_sched *s);
/* Send CLOSE to all workers now (they exit); the loop keeps running. */
void herd_sched_close_workers(herd_sched *s, const char *reason);
/* The in-process client (key prefix 1). Results go to its futures. */
void herd_sched_attach_local(herd_sched *s, herd_client *cl);
/* Post a spec from any thread (ownership taken). */
int  herd_sched_post(herd_sched *s, herd_submit_spec *spec);
/* Connected workers and their threads. */
int  herd_sched_nworkers(herd_sched *s, int *nthreads);
int  herd_sched_wait_workers(herd_sched *s, int n, double timeout_s, herd_err *err);
/* Transport for an in-process client. */
extern const herd_transport herd_sched_local_tp;
#endif
