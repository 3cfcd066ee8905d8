/* core/client.h — the client half of the runtime: futures, the submit spec
 * sent to a scheduler, and the transport a client submits through (directly
 * into an in-process scheduler, or over a worker's connection for sub-tasks). */
#ifndef HERD_CLIENT_H
#define HERD_CLIENT_H

#include "internal.h"
#include "future.h"
#include "kmap.h"
#include <pthread.h>
#include <stdatomic.h>

/* What a client hands its scheduler. Ownership of every pointer passes. */
typedef struct herd_submit_spec {
    int op;                        /* OP_SUBMIT, OP_RELEASE, OP_CANCEL */
    uint64_t key;
    herd_future *fut;              /* in-process only: a reference the scheduler holds */
    char *task, *run_name;
    herd_value *args;
    int priority;
    herd_value *resources;         /* map or NULL */
    herd_value *tags;              /* array of str or NULL */
    int retries;
    double retry_delay, timeout;
    herd_value *workers;           /* array of worker names it may run on, or NULL: any */
    int allow_other_workers;       /* 1: any worker when none of those is connected */
    struct herd_submit_spec *next;
} herd_submit_spec;

void herd_spec_free(herd_submit_spec *s);

typedef struct herd_transport {
    /* Takes ownership of spec. Returns 0 or a negative code (closed). */
    int  (*send)(void *ud, herd_submit_spec *spec);
    /* A task thread is about to block on / has returned from waiting on futures. */
    void (*block)(void *ud, int blocking);
} herd_transport;

typedef struct herd_annot {
    unsigned set;                  /* ANN_* bits */
    int priority;
    herd_value *resources;
    int retries;
    double retry_delay, timeout;
    herd_value *tags;
    herd_value *workers;           /* array of str */
    int allow_other_workers;
} herd_annot;
enum { ANN_PRIORITY = 1, ANN_RESOURCES = 2, ANN_RETRIES = 4, ANN_RETRY_DELAY = 8,
       ANN_TIMEOUT = 16, ANN_TAGS = 32, ANN_WORKERS = 64, ANN_ALLOW_OTHER = 128 };

/* Per task name: runs named (n) and, for the flow's progress line, how many
 * are running, completed and failed/crashed/cancelled right now. */
typedef struct runcount { char *name; uint64_t n, running, done, failed; struct runcount *next; } runcount;

struct herd_client {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint32_t id;                   /* key prefix given by the scheduler */
    uint64_t seq;
    kmap futs;                     /* key -> future, while the scheduler may still talk of it */
    herd_annot *stack;             /* annotation scopes; stack[0] is empty */
    size_t depth, cap;
    runcount *counts;
    const herd_transport *tp;
    void *tp_ud;
    int closed;                    /* no more submits */
    int sending;                   /* threads inside tp->send right now */
    char *checked_task;            /* the last task name found by herd_task_lookup */
    /* resources some worker could ever offer (map), to reject impossible asks */
    herd_value *cluster_resources;
    int check_resources;
    void (*log)(void *ud, int level, const char *line);
    void *log_ud;
    char *peer_token;              /* presented to workers when fetching held values (owned) */
    struct herd_tls *peer_tls;     /* credentials for tls:// holders (borrowed; NULL: none) */
    struct herd_fetch_budget *peer_budget;   /* bound on bytes fetched at once (borrowed; NULL: none) */
    int transfer;                  /* HERD_DT_* (proto.h): relay when a holder cannot be reached, or always */
    char **relay_logged;           /* holders this client said it relays for (once each) */
    size_t nrelay_logged;
    /* Wakes of threads waiting on futures, batched (herd_client_defer_wakes):
     * a result delivered on wake_thread marks wake_pending and asks
     * wake_later once; the loop then calls herd_client_wake. */
    void (*wake_later)(void *ud);
    void *wake_ud;
    pthread_t wake_thread;
    int wake_pending;
};

struct herd_runner;                  /* runner.c */
int  herd_client_init(herd_client *cl, uint32_t id, const herd_transport *tp, void *tp_ud);
/* Mark every non-final future Cancelled/Crashed with reason, stop submits. */
void herd_client_shutdown(herd_client *cl, herd_state st, const char *reason);
void herd_client_destroy(herd_client *cl);
/* Deliveries made on thread `loop` (an event loop handing over many results
 * per callback) stop waking waiters one result at a time: the first one calls
 * later(ud), which must make that thread call herd_client_wake once the
 * batch is handled. Other threads' deliveries still wake at once. later
 * NULL: back to waking at once. */
void herd_client_defer_wakes(herd_client *cl, pthread_t loop, void (*later)(void *ud), void *ud);
/* Wake the waiters if a deferred delivery is pending. */
void herd_client_wake(herd_client *cl);
/* The progress of every task submitted so far, per task name, into out
 * (up to cap groups; progress.h). Returns the number of groups filled. */
struct herd_pgroup;
size_t herd_client_progress(herd_client *cl, struct herd_pgroup *out, size_t cap);
/* Send through the current transport, counted so the transport can be
 * swapped or torn down safely (herd_client_quiesce). Takes spec. */
int  herd_client_send(herd_client *cl, herd_submit_spec *spec);
/* Stop submits and wait until no thread is inside the transport. */
void herd_client_quiesce(herd_client *cl);
/* Final (or Running) state arrives. value/error ownership: value taken. */
void herd_client_deliver(herd_client *cl, herd_future *f, herd_state st, herd_value *value, const char *error);
void herd_client_deliver_key(herd_client *cl, uint64_t key, herd_state st, herd_value *value, const char *error);
/* f completed; its value is held by the worker whose peer server is at
 * address, or, when address is NULL, was lost for good (error says why):
 * herd_future_result fetches it on demand. Called again when a lost value
 * was recomputed elsewhere. */
void herd_client_deliver_held(herd_client *cl, herd_future *f, const char *address, const char *error);
/* The scheduler's answer to a FETCH (the relay) for key's future: value
 * (taken) or error. */
void herd_client_deliver_value(herd_client *cl, uint64_t key, herd_value *value, const char *error);
/* herd_client_deliver_held for the future of key (a sub-task's, by HELD). */
void herd_client_deliver_held_key(herd_client *cl, uint64_t key, const char *address, const char *error);
/* Fetch f's held value now, if it has one not fetched yet (flow end, before
 * the workers leave). 0 or the fetch's error. */
/* herd_client_pull for every completed future whose value is held and not
 * fetched yet (a flow run's end, before its cluster goes), from the calling
 * thread: the scheduler may relay meanwhile. Failures are logged. */
void herd_client_pull_all(herd_client *cl);
int herd_client_pull(herd_future *f, herd_err *err);
/* A copy of a completed future's result (NULL if none). */
herd_value *herd_client_fetch(herd_future *f);
void herd_future_unref(herd_future *f);
int  herd_client_submit(herd_client *cl, const char *task, herd_value *args, const char *annotations,
                        herd_future **out, herd_err *err);
int  herd_annot_parse(const char *text, herd_annot *a, herd_err *err);
void herd_annot_clear(herd_annot *a);
void herd_client_logf(herd_client *cl, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A future's final state, value (taken) and error; with cl->mu held
 * (client.c, for client_submit.c). */
void herd_client_set_final(herd_client *cl, herd_future *f, herd_state st, herd_value *value, const char *error);

/* The object behind herd_runner *: a flow's runner (runner.c) or a task's
 * sub-task client (worker.c). */
struct herd_runner {
    herd_client *cl;
    int is_task_client;
    /* a flow runner's lazy start (client_kwargs.start): called before a
     * submit; 0, or the error that the cluster could not start with. NULL
     * for a task's sub-task client. */
    int (*ensure)(struct herd_runner *r, herd_err *err);
};

#endif
