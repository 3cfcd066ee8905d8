/* core/worker_int.h — what the worker's files share and nobody else sees:
 * the worker (wk) and its queued tasks, its log line, and the entry points
 * of its sides (prefix wk_): worker.c runs tasks and owns the connection;
 * worker_held.c serves held values and fetches a task's held inputs;
 * worker_relay.c moves inputs through the scheduler (FETCH/VALUE);
 * worker_mem.c watches memory (limit, spill, pause); worker_args.c is the
 * command line. None of the sides calls worker.c but through this header. */
#ifndef HERD_WORKER_INT_H
#define HERD_WORKER_INT_H

#include "worker.h"
#include "client.h"
#include "comm.h"
#include "peer.h"
#include "spill.h"
#include "store.h"
#include "value_int.h"

#include <stdarg.h>
#include <stdio.h>

typedef struct wtask {
    uint64_t key;
    char *task, *run_name;
    herd_value *args;
    herd_value *tags;
    herd_value *inputs;        /* RUN's inputs: [[key, peer]…] or NULL */
    int attempt, hold;
    int acquire;               /* ACQUIRE: fetch key's value from inputs' holder and hold it */
    int64_t nbytes;            /* ACQUIRE: its packed size */
    struct wtask *next;
} wtask;

typedef struct wk {
    herd_worker_cfg cfg;
    char *address, *token, *name;
    herd_value *resources;
    struct event_base *base;
    herd_conn *conn;
    struct event *hb_ev, *stop_ev, *mem_ev;
    struct event *life_ev;     /* cfg.lifetime: asks the scheduler to retire it */
    int mem_exit_ticks;        /* > 0: over memory_limit, CLOSE queued, exiting */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    wtask *head, *tail;
    herd_outbox out;           /* messages from executor threads (guarded by mu) */
    int stop;                  /* executors exit */
    int nexec, blocked;        /* executor threads, of which blocked on sub-tasks */
    atomic_int refs;           /* loop + each executor thread */
    int welcomed, exit_code;
    pthread_cond_t evcv;       /* executors leaving, loop end */
    int loop_done;
    herd_client subcl;
    int subcl_ready;
    struct herd_runner subrunner;
    pthread_t loop_thread;     /* thread mode */
    int thread_mode;
    herd_store *store;         /* held results (NULL: this worker holds none) */
    herd_peer_server *peer;    /* serves them to other workers */
    char *peer_addr;           /* the address it gives for it (PEER) */
    herd_fetch_budget budget;  /* bytes of inputs fetched at once */
    int have_budget;
    int transfer;              /* the cluster's data_transfer (WELCOME): HERD_DT_* */
    struct rwait *rwaits;      /* executors waiting for a relayed input (guarded by mu) */
    uint64_t relay_moved;      /* CHUNKs received, for the waiters' deadline (guarded by mu) */
    struct herd_relay_rx *rx;  /* relayed values coming in (the loop's) */
    struct wk_rout *routs;     /* this worker's values going out through the relay (the loop's) */
    pthread_cond_t rcv;        /* a relayed input arrived */
    char **relay_logged;       /* holders this worker said it relays for (guarded by mu) */
    size_t nrelay_logged;
    herd_spill *spill;         /* under memory_limit: spills the store, pauses */
    char spill_tmp[64];        /* a private /tmp/herd-<pid>-XXXXXX for the spill directory
                                * when there is no cluster directory (scheduler over TCP/TLS) */
    int paused;                /* executors start no task (guarded by mu) */
    double cpu_s, cpu_at;      /* this process's CPU seconds at the last heartbeat, and when */
} wk;

/* An executor waiting for the scheduler to relay an input (FETCH, VALUE). */
typedef struct rwait {
    uint64_t key;
    int done;
    herd_value *v;
    char *error;
    struct rwait *next;
} rwait;

static inline void wlog(wk *w, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static inline void wlog(wk *w, int level, const char *fmt, ...)
{
    char line[1536], full[1700];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    snprintf(full, sizeof full, "worker %s: %s", w->name ? w->name : "?", line);
    herd_log_default(NULL, level, full);
}

/* ---- held values (worker_held.c) ---- */
/* Serve held values and tell the scheduler where (after WELCOME). */
void wk_start_peer(wk *w);
/* Put a task's held inputs into its arguments: 0, -1 (MISSING sent), -2 (why says). */
int wk_fetch_inputs(wk *w, wtask *t, char *why, size_t cap);
/* Keep a big result in the store; d then says it is held. */
void wk_hold_result(wk *w, wtask *t, herd_msg_done *d);
/* An executor runs an ACQUIRE: fetch, hold, answer ACQUIRED. */
void wk_acquire(wk *w, wtask *t);

/* ---- relay through the scheduler (worker_relay.c) ---- */
int wk_relay_input(wk *w, uint64_t key, herd_value **out, herd_err *err);
void wk_on_relayed(wk *w, uint64_t key, herd_value *v, const char *error);
/* The loop: the relay's messages (protocol errors: a negative code, err). */
void wk_on_fetch(wk *w, const herd_msg_fetch *m);
int wk_on_more(wk *w, const herd_msg_more *m, herd_err *err);
int wk_on_value(wk *w, const herd_msg_value *m, herd_err *err);
int wk_on_chunk(wk *w, const herd_msg_chunk *m, herd_err *err);
void wk_routs_free(wk *w);

/* ---- memory (worker_mem.c) ---- */
/* Under memory_limit: the spiller of its store and the pause. */
void wk_start_memory(wk *w);
/* The memory monitor's timer (process mode). */
void wk_mem_cb(evutil_socket_t fd, short what, void *arg);

#endif
