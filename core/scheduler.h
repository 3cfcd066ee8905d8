/* core/scheduler.h — the scheduler: task states, dependencies, priorities,
 * resources, retries, timeouts, worker failure. It runs on its own thread
 * with a libevent loop; in-process clients post to it through a queue. */
#ifndef HERD_SCHED_H
#define HERD_SCHED_H

#include "client.h"
#include "security.h"

typedef struct herd_sched herd_sched;
struct evbuffer;

typedef struct herd_sched_cfg {
    const char *listen;            /* "unix:///…" or "tcp://host:port" */
    const char *token;             /* every worker and client must present it; NULL: none */
    double heartbeat_interval;     /* seconds between worker heartbeats */
    double heartbeat_timeout;      /* a worker silent this long is dead */
    int allowed_failures;          /* worker deaths a task survives before Crashed */
    double no_workers_timeout;     /* > 0: a ready task no worker can run this long ends
                                      Crashed (Dask's no-workers-timeout); <= 0: never */
    herd_tls *tls;                 /* NULL: plain; else tls:// with mutual auth (borrowed) */
    int data_transfer;             /* HERD_DT_* (proto.h): told to workers in WELCOME */
    int owned;                     /* started by a cluster's provider for one flow run
                                      (--herd-scheduler): its client may drain and close
                                      workers (OP_CONTROL) */
    void (*log)(void *ud, int level, const char *line);
    void *log_ud;
    /* The HTTP endpoint (the dashboard page, /health, /metrics, /api/v1):
     * "HOST:PORT", ":PORT" (every interface) or "http://HOST:PORT"; port 0
     * picks one; NULL or "": none. On an address other than loopback it
     * needs the token, and it serves HTTPS when tls is set. */
    const char *http;
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
/* ---- for adaptive scaling (any thread) ---- */
typedef struct herd_sched_wload {
    char name[64];
    int nthreads, busy;        /* threads; tasks dispatched and not seceded */
    int closing;               /* being drained: gets no new work */
    double idle_for;           /* seconds since it last had nothing to do (0 if busy) */
    int64_t needed_bytes;      /* bytes of held values only it holds that are still needed
                                  (retiring it moves them first: Dask's workers_to_close
                                  prefers workers with less) */
} herd_sched_wload;

typedef struct herd_sched_load {
    int waiting;               /* tasks waiting on dependencies */
    int ready;                 /* ready, not dispatched (includes retries due) */
    int running;               /* dispatched to a worker */
    double avg_duration;       /* observed mean task duration, s; < 0 unknown */
    double task_seconds;       /* sum of expected seconds of ready + running work */
    herd_sched_wload *workers; /* connected workers (malloc'd) */
    size_t nworkers;
    int lifetime_retired;      /* workers that retired themselves (lifetime) so far: the
                                  nanny replaces these instead of shrinking (adaptive.c) */
} herd_sched_load;

/* Snapshot the scheduler's load. 0, or a negative code when stopped. */
int  herd_sched_get_load(herd_sched *s, herd_sched_load *out);
void herd_sched_load_free(herd_sched_load *l);
/* Drain worker `name`: no new work; once its running tasks finish it is sent
 * CLOSE and leaves. 0, or -HERD_EARG if no such worker is connected. */
int  herd_sched_drain(herd_sched *s, const char *name);
/* 1 while a worker of that name is connected. */
int  herd_sched_has_worker(herd_sched *s, const char *name);

/* The HTTP endpoint's base URL ("http://127.0.0.1:8787"), or NULL when it
 * is off. Valid until herd_sched_stop. */
const char *herd_sched_http_url(const herd_sched *s);
/* A one-time link that sets the login cookie (non-loopback endpoints; NULL
 * otherwise): for a log line, once. */
const char *herd_sched_http_login(const herd_sched *s);
/* The links of a scheduler's endpoint elsewhere, from what its OP_CONTROL
 * "dashboard" answers (sch_http_describe): the base URL, with host (the
 * address its client dials) in place of an every-interface address, and the
 * one-time login link ("" when no token is needed); *loopback_only: it
 * answers on its own host's loopback only. 0, or -HERD_EPROTO for a
 * description it cannot read. */
int herd_sched_http_links(const char *desc, const char *host, char *url, size_t ucap, char *login, size_t lcap,
                          int *loopback_only);
/* The endpoint's JSON report `which` ("status", "workers", …; sched_report.c)
 * appended to b, made on the scheduler's thread: works with the endpoint off.
 * 0, -HERD_EARG for an unknown report, or a negative code when stopped. */
int herd_sched_report(herd_sched *s, const char *which, struct evbuffer *b);
/* performance_report_path (perf_report.c): the page with the status report
 * inlined, written to path (through a temporary file, renamed). */
int herd_sched_perf_report(herd_sched *s, const char *path, herd_err *err);
/* The same page around a status report given as JSON text (len bytes, its
 * < > & escaped as sch_report_json writes them): a remote scheduler's. */
int herd_perf_report_write(const char *json, size_t len, const char *path, herd_err *err);
/* Record an adaptive decision for the endpoint (any thread). */
void herd_sched_note_decision(herd_sched *s, int target, int have, const char *reason);

/* Transport for an in-process client. */
extern const herd_transport herd_sched_local_tp;

/* What adaptive scaling needs of a scheduler, wherever it runs: in this
 * process (herd_sched_ops_local, ud = the herd_sched) or reached over a
 * connection (herd_remote_ops in remote.h, ud = the herd_remote). */
typedef struct herd_sched_ops {
    int (*get_load)(void *ud, herd_sched_load *out);      /* free with herd_sched_load_free */
    int (*drain)(void *ud, const char *name);             /* as herd_sched_drain */
    int (*has_worker)(void *ud, const char *name);        /* 1: connected */
    int (*nworkers)(void *ud, int *nthreads);             /* connected, not closing */
    void (*note)(void *ud, int target, int have, const char *reason);   /* a decision, for the dashboard; may be NULL */
    /* the provider's status list, for the dashboard; may be NULL */
    void (*provider)(void *ud, const char *name, const herd_worker_info *info, size_t n);
    const herd_transport *tp;                             /* submits go here (ud the same) */
} herd_sched_ops;
extern const herd_sched_ops herd_sched_ops_local;
#endif
