/* core/fetch.h — what every fetch of a held value shares, over TCP/TLS
 * (peer.c) or from a peer of this host (peer_local.c): the bound on a
 * process's bytes in flight (fetch.c), how a fetch authenticates, and the
 * limits of its connect and control frames. */
#ifndef HERD_FETCH_H
#define HERD_FETCH_H
#include "internal.h"
#include "security.h"
#include <pthread.h>

/* A bound on the bytes of values a process fetches at once: a fetch is
 * admitted once its size is known (DATA's header) while the bytes in flight
 * plus its own stay within cap, and always when nothing is in flight, so one
 * fetch larger than cap still proceeds and fetches cannot deadlock. */
typedef struct herd_fetch_budget {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t cap, inflight;
} herd_fetch_budget;
int  herd_fetch_budget_init(herd_fetch_budget *b, size_t cap);
void herd_fetch_budget_destroy(herd_fetch_budget *b);
/* Admit n bytes, waiting while it does not fit. */
void herd_fetch_budget_acquire(herd_fetch_budget *b, size_t n);
/* Admit n bytes if it fits now: 0, or -EAGAIN. */
int  herd_fetch_budget_try(herd_fetch_budget *b, size_t n);
void herd_fetch_budget_release(herd_fetch_budget *b, size_t n);

/* How a fetch authenticates and what bounds it: the cluster token (NULL:
 * none), TLS credentials for tls:// peers (NULL otherwise), a budget (NULL:
 * none). All borrowed. */
typedef struct herd_peer_auth {
    const char *token;
    herd_tls *tls;
    herd_fetch_budget *budget;
} herd_peer_auth;

#define HERD_PEER_CTL_FRAME ((size_t)64 << 10)   /* an authenticated peer's frames: GETs */
#define HERD_PEER_CONNECT_S 5.0                  /* seconds a fetch waits for its connect */
#endif
