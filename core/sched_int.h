/* core/sched_int.h — what the scheduler's files share and nobody else sees:
 * the task and worker records, the scheduler object, and the functions one
 * scheduler file calls in another (prefix sch_). Every one of them runs on
 * the scheduler's thread. The files, each calling only those listed above it:
 *   sched_state.c    task states: ready queue, dependencies, completion, failure, retries
 *   sched_count.c    the connected counts waiters and remote clients see
 *   sched_retire.c   a worker retiring: its needed values moved to others (ACQUIRE), then CLOSE
 *   sched_place.c    placement: priority, resources, locality, `workers` restrictions, dispatch
 *   sched_held.c     held values: lineage recompute when a holder leaves, MISSING, pulls at close
 *   sched_relay.c    the relay: values streamed from their holder to readers that cannot reach it
 *   sched_workers.c  worker membership: HELLO, a worker lost, heartbeats, no workers
 *   sched_control.c  load snapshot, drain, close every worker (OP_CONTROL and in-process)
 *   sched_msg.c      connections: accept, the HELLO timeout, each message a connection sends
 *   scheduler.c      the public face (scheduler.h): start, stop, inbox, synchronous calls */
#ifndef HERD_SCHED_INT_H
#define HERD_SCHED_INT_H

#include "scheduler.h"
#include "comm.h"
#include "value_int.h"
#include "metrics.h"

#include <malloc.h>
#include <event2/buffer.h>

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

enum { T_WAITING, T_READY, T_RUNNING, T_RETRY, T_DONE };

typedef struct sworker sworker;

typedef struct stask {
    uint64_t key, seq;
    char *task, *run_name;
    herd_value *args;
    int priority;
    herd_value *resources;
    herd_value *tags;          /* array of str or NULL */
    herd_value *workers;       /* workers it may run on (names, hosts, addresses: array of str), or NULL: any */
    int allow_other;           /* with workers: any worker while none of those is connected */
    int retries_left, attempt, suspicious;
    double retry_delay, timeout, started;
    double no_worker_since;    /* ready with resources no connected worker has; 0: one has */
    int state;
    herd_state final;
    uint64_t *deps;            /* keys this task waits on (registered as dependent) */
    size_t ndeps, ndeps_waiting;
    uint64_t *dependents;      /* keys of waiting tasks that need this result */
    size_t ndependents, capdependents, nwaiting_dependents;
    sworker *worker;
    int seceded;
    int pins;                  /* >0 while the scheduler walks it: not to be forgotten */
    herd_value *result;
    int result_at_client;      /* moved to the in-process future */
    char *error;
    herd_future *fut;          /* in-process owner, or NULL */
    sworker *owner;            /* remote owner (a connection), or NULL */
    int owner_released;
    size_t hidx;               /* heap index while T_READY without resources */
    sworker *holder;           /* holds the result (not inline), or NULL */
    int64_t nbytes;            /* the held result's packed size */
    uint64_t *ins;             /* held inputs it reads: a need counted on each (in
                                  nwaiting_dependents) until it completes or ends */
    size_t nins;
    int missing;               /* attempts that could not fetch an input */
    struct event *timer;
    herd_mgroup *grp;          /* its task name's counters (metrics.h) */
    struct herd_sched *s;
} stask;

typedef struct sres { char *name; double total, avail; } sres;

typedef struct stuck { uint64_t key; int attempt; herd_value *resources; struct stuck *next; } stuck;

struct sworker {
    struct herd_sched *s;
    herd_conn *conn;
    char *name;
    char *host;                /* its host name (HELLO), or NULL */
    char ip[64];               /* the address its connection comes from (TCP), or "" */
    int local;                 /* connected through the scheduler's Unix socket: on this host */
    uint32_t id;
    int role, hello, nthreads, busy, closing, close_sent;
    int paused;                /* over 80% of its memory_limit (PAUSE): sent no task */
    /* retiring (sched_retire.c) */
    int keep_unique;           /* drained by adaptive scaling or a provider: kept (not closed) when
                                  values only it holds are needed and no other worker can take them */
    int planned;               /* its values' moves were planned */
    int moving;                /* moves off it not answered yet */
    int nmoved;                /* values moved off it, and their bytes */
    int64_t moved_bytes;
    int64_t incoming;          /* bytes being moved to it */
    double move_started;
    char *move_to;             /* the one recipient's name, or NULL: several */
    struct event *move_timer;  /* the moves' deadline */
    long pid;
    sres *res;
    size_t nres;
    double last_seen;
    double idle_since;         /* when busy last dropped to 0 */
    double last_done;          /* when it last finished a task */
    kmap running;              /* key -> stask */
    char *peer;                /* where it serves held values (OP_PEER), or NULL */
    char *last_words;          /* why a worker said it is going (its CLOSE), or NULL */
    stuck *stuck;              /* timed-out attempts still occupying a thread */
    int64_t held_bytes;        /* bytes of results it holds for the scheduler */
    uint64_t ndone, nfailed;   /* attempts it finished: ok, not ok */
    double joined;             /* wall clock when its HELLO was accepted */
    double cpu_s, cpu_at;      /* CPU seconds last read from /proc (local workers), and when */
    double cpu_pct;            /* CPU use between the last two reads, %; < 0 unknown */
    /* its own figures from its last HEARTBEAT (< 0: unknown; then /proc if on this host) */
    double hb_cpu;
    int64_t hb_rss, managed, spilled;   /* RSS; held values' bytes in memory, on disk */
    struct event *hello_timer;
    sworker *next;
};

struct herd_sched {
    herd_sched_cfg cfg;
    char *token;
    struct event_base *base;
    struct evconnlistener *lis;
    herd_accept_guard guard;   /* backoff when accept() runs out of descriptors */
    struct event *inbox_ev, *dispatch_ev, *hb_ev, *stop_ev, *wake_ev;
    pthread_t thread;
    int running;
    /* inbox: the only state shared with client threads */
    pthread_mutex_t in_mu;
    herd_submit_spec *in_head, *in_tail;
    int in_signalled;
    size_t nstate[5];          /* tasks in each T_* state (for the load snapshot) */
    /* worker counters for waiters */
    pthread_mutex_t w_mu;
    pthread_cond_t w_cv;
    int nworkers, nthreads;
    /* scheduler-thread state */
    herd_client *local;
    kmap tasks;
    stask **heap;
    size_t hlen, hcap;
    stask **rlist;             /* ready tasks with resources, sorted */
    size_t rlen, rcap;
    uint64_t seq;
    uint32_t next_id;
    sworker *workers;
    double avg_dur;            /* EWMA of task durations, s; < 0 unknown */
    double no_workers_since;   /* ready tasks and no worker since then; 0: not so */
    int dispatch_pending;
    int closing_all;           /* every worker was told to close: values they held are not recomputed */
    int lifetime_retired;      /* workers that asked to retire (their lifetime passed) */
    char unix_path[128];
    herd_metrics met;          /* what the HTTP endpoint reports (metrics.h) */
    void (*user_log)(void *ud, int level, const char *line);   /* cfg.log as given (cfg.log tees) */
    void *user_log_ud;
    struct herd_http *http;    /* the HTTP endpoint (sched_http.c), or NULL */
    struct relay *relays;      /* transfers through the relay, active and waiting (sched_relay.c) */
    uint64_t next_xfer;        /* the relay's next transfer id (ids below it were given) */
    int relays_active;
    struct move *moves;        /* values being moved off retiring workers (sched_retire.c) */
};

static inline void slog(herd_sched *s, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static inline void slog(herd_sched *s, int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    herd_vlogf(s->cfg.log, s->cfg.log_ud, level, fmt, ap);
    va_end(ap);
}

/* The ready order: priority desc, then submission order (seq asc). */
static inline int before(const stask *a, const stask *b)
{
    return a->priority != b->priority ? a->priority > b->priority : a->seq < b->seq;
}

/* Every change of a stored task's state goes through here. */
static inline void set_state(herd_sched *s, stask *t, int st)
{
    s->nstate[t->state]--;
    s->nstate[st]++;
    if (t->grp) { t->grp->n[t->state]--; t->grp->n[st]++; }
    t->state = st;
}

/* t reached its final state (t->final): its task name's count of ends. */
static inline void count_end(stask *t)
{
    if (t->grp && t->final >= HERD_COMPLETED && t->final <= HERD_CANCELLED) t->grp->ended[t->final - HERD_COMPLETED]++;
}

/* Run a dispatch pass once the loop has handled this iteration's messages. */
/* After many tasks were forgotten (a big map released): the task table
 * shrinks and the freed heap goes back to the system, so a long-lived
 * process does not keep the peak of its largest map. Call between
 * messages, never while the table is iterated. */
static inline void sch_compact(herd_sched *s)
{
    if (kmap_compact(&s->tasks)) malloc_trim(0);
}

static inline void kick(herd_sched *s)
{
    if (!s->dispatch_pending) {
        s->dispatch_pending = 1;
        event_active(s->dispatch_ev, EV_TIMEOUT, 0);
    }
}

/* ---- task states (sched_state.c): the ready queue, dependencies, results, ends ---- */
void sch_make_ready(herd_sched *s, stask *t);
void sch_unready(herd_sched *s, stask *t);
void sch_task_free(stask *t);
void sch_forget(herd_sched *s, stask *t);
int sch_releasable(const stask *t);
int sch_add_in(stask *t, uint64_t key);
void sch_release_deps(herd_sched *s, stask *t, int keep_held);
void sch_release_ins(herd_sched *s, stask *t);
void sch_materialize(herd_sched *s, stask *t);
void sch_complete(herd_sched *s, stask *t, herd_value *v, sworker *holder, int64_t nbytes);
void sch_finalize(herd_sched *s, stask *t, herd_state st, const char *msg);
void sch_retry_cb(evutil_socket_t fd, short what, void *arg);
void sch_attempt_failed(herd_sched *s, stask *t, const char *msg);
void sch_tell_owner(const stask *t, herd_state st);
int sch_wait_on(stask *dep, stask *t);
void sch_add_task(herd_sched *s, herd_submit_spec *sp, sworker *owner);
void sch_on_release(herd_sched *s, uint64_t key, uint32_t owner_id);
void sch_on_cancel(herd_sched *s, uint64_t key, uint32_t owner_id);

/* ---- the connected counts (sched_count.c) ---- */
/* Recount the connected workers and threads; wake the waiters and tell the
 * remote clients when they changed. */
void sch_worker_counts(herd_sched *s);

/* ---- retiring (sched_retire.c): a closing worker's needed values moved first ---- */
/* Is t's value still read by someone (a future not released, a dependent)? */
static inline int sch_needed(const stask *t)
{
    return t->nwaiting_dependents || ((t->fut || t->owner) && !t->owner_released);
}
void sch_send_close(sworker *w, const char *reason);
/* w is closing: once nothing runs there, move the needed values only it
 * holds to other workers (ACQUIRE), then CLOSE it. Call whenever one of
 * those conditions may have changed. */
void sch_retire_step(herd_sched *s, sworker *w);
/* A recipient's ACQUIRED. */
void sch_on_acquired(herd_sched *s, sworker *v, const herd_msg_acquired *m);
/* Worker w left: moves to it fall back (its source closes when none is
 * left), moves off it are dropped. */
void sch_retire_lost(herd_sched *s, sworker *w);
/* Bytes of needed values only w holds. */
int64_t sch_needed_bytes(herd_sched *s, const sworker *w);
void sch_moves_free(herd_sched *s);

/* ---- placement (sched_place.c): which worker runs which ready task ---- */
int sch_allowed_on(const herd_sched *s, const sworker *w, const stask *t);
int sch_fits_in(const sworker *w, const stask *t, int whole);
void sch_res_take(sworker *w, const herd_value *res, double sign);
void sch_dispatch_cb(evutil_socket_t fd, short what, void *arg);
void sch_unassign(herd_sched *s, sworker *w, stask *t);

/* ---- held values (sched_held.c): lost holders, recomputation, MISSING ---- */
void sch_lost_values(herd_sched *s, sworker *w);
void sch_on_missing(herd_sched *s, sworker *w, const herd_msg_missing *m);
void sch_pull_held(herd_sched *s);

/* ---- the relay (sched_relay.c) ---- */
/* req (NULL: the in-process client) asks for key's value (FETCH); the
 * holder streams it (VALUE, CHUNKs) as the scheduler's credit (MORE) allows,
 * which it gives while the reader's connection takes what is forwarded; a
 * worker leaving ends what it asked for and cuts off what it was sending
 * (the readers hear HERD_RELAY_GONE). The on_value/on_chunk functions return
 * a negative code for a protocol error (err says; the connection closes). */
void sch_on_fetch(herd_sched *s, sworker *req, uint64_t key);
int sch_on_value(herd_sched *s, sworker *w, const herd_msg_value *m, herd_err *err);
int sch_on_chunk(herd_sched *s, sworker *w, const herd_msg_chunk *m, herd_err *err);
void sch_relays_gone(herd_sched *s, sworker *w);
void sch_relays_free(herd_sched *s);

/* ---- worker membership (sched_workers.c): join, leave, death, no workers ---- */
void sch_unlink_peer(const herd_sched *s, const sworker *w);
void sch_worker_free(sworker *w);
void sch_worker_lost(herd_sched *s, sworker *w, const char *why);
void sch_refuse(herd_sched *s, sworker *w, const char *why);
int sch_on_hello(herd_sched *s, sworker *w, const msgpack_object *msg);
void sch_heartbeat_cb(evutil_socket_t fd, short what, void *arg);

/* ---- the HTTP endpoint (sched_http.c, sched_report.c) ---- */
/* Start it on the scheduler's loop (s->cfg.http): bind, TLS, auth. */
int sch_http_start(herd_sched *s, herd_err *err);
void sch_http_stop(herd_sched *s);
/* For a client of a scheduler running elsewhere (OP_CONTROL "dashboard"):
 * "SCHEME IP PORT ONCE" (the bound address, the one-time login secret or
 * "-"), which herd_sched_http_links turns into links. -HERD_EARG: no endpoint. */
int sch_http_describe(herd_sched *s, char *out, size_t cap);
/* What it serves: Prometheus text; JSON (which: "workers", "tasks", "runs",
 * "adaptive", "logs" or "status" for all; runs and log lines after the
 * sequence numbers given); the text `herd status` prints. -1: no such
 * report. */
void sch_report_metrics(herd_sched *s, struct evbuffer *b);
int sch_report_json(herd_sched *s, const char *which, uint64_t since_run, uint64_t since_log, struct evbuffer *b);
void sch_report_text(herd_sched *s, struct evbuffer *b);

/* ---- control (sched_control.c): load snapshot, drain, close every worker ---- */
/* A remote client's OP_CONTROL, answered with OP_REPLY. */
void sch_on_control(herd_sched *s, sworker *c, const herd_msg_control *m);
/* Fill the herd_sched_load at arg (free with herd_sched_load_free). */
void sch_load_fn(herd_sched *s, void *arg);
/* Drain worker name: 0, or -HERD_EARG when no such worker is connected. */
int sch_drain_now(herd_sched *s, const char *name);
/* Pull the client's held values, then CLOSE every worker with reason arg. */
void sch_close_fn(herd_sched *s, void *arg);

/* ---- connections and their messages (sched_msg.c) ---- */
void sch_accept_error_cb(struct evconnlistener *l, void *arg);
void sch_accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len, void *arg);

#endif
