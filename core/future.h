/* core/future.h — what a future is (struct herd_future), below the client
 * that fills it: values (value.c, herd_tuple's 'f') read a future's key
 * through herd_future_key_of without calling into client.c. */
#ifndef HERD_FUTURE_H
#define HERD_FUTURE_H

#include <herd/herd.h>
#include <stdatomic.h>

typedef struct herd_client herd_client;

typedef struct herd_watch {        /* an as_completed iterator watching a future */
    struct herd_completed *it;
    struct herd_watch *next;
} herd_watch;

struct herd_future {
    uint64_t key;
    atomic_int refs;               /* the user's, the scheduler's, the client map's */
    herd_client *cl;
    herd_state state;              /* guarded by cl->mu */
    herd_value *result;
    char *error;
    char *run_name;
    struct runcount *grp;          /* its task name's counts on the client (client.h), or NULL */
    herd_watch *watchers;
    int user_released;
    /* Completed with the value held on a worker (result NULL until fetched):
     * the holder's peer address, NULL once fetched or lost for good; held_gen
     * counts moves (a recomputed value has a new holder). Guarded by cl->mu. */
    char *held_at;
    unsigned held_gen;
    int held_lost;
    /* A FETCH sent to the scheduler (the relay) and not answered yet; the
     * last relay's error. Guarded by cl->mu. */
    int relaying;
    char *relay_error;
};

static inline uint64_t herd_future_key_of(const herd_future *f) { return f ? f->key : 0; }

#endif
