/* core/fetch.h — what every fetch of a held value shares, over TCP/TLS
 * (peer.c) or from a peer of this host (peer_local.c): the bound on a
 * process's bytes in flight (fetch.c), how a fetch authenticates, the
 * limits of its connect and control frames, and local sockets' buffers. */
#ifndef HERD_FETCH_H
#define HERD_FETCH_H
#include "internal.h"
#include "security.h"
#include <pthread.h>

/* A bound on the bytes of values a process fetches at once: a fetch is
 * admitted once its size is known (DATA's header) while the bytes in flight
 * plus its own stay within cap, and always when nothing is in flight, so one
 * fetch larger than cap still proceeds and fetches cannot deadlock. */
typedef struct herd_fetch_pool herd_fetch_pool;
typedef struct herd_fetch_budget {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t cap, inflight;
    herd_fetch_pool *pool;     /* receive buffers kept for reuse (herd_fetch_bytes) */
} herd_fetch_budget;
int  herd_fetch_budget_init(herd_fetch_budget *b, size_t cap);
void herd_fetch_budget_destroy(herd_fetch_budget *b);
/* Admit n bytes, waiting while it does not fit. */
void herd_fetch_budget_acquire(herd_fetch_budget *b, size_t n);
/* Admit n bytes if it fits now: 0, or -EAGAIN. */
int  herd_fetch_budget_try(herd_fetch_budget *b, size_t n);
void herd_fetch_budget_release(herd_fetch_budget *b, size_t n);

/* A bytes value of n (>= HERD_SHM_MIN) bytes to receive a fetched payload
 * into, *p its writable bytes: huge-page memory (herd_huge_map). With a
 * budget, a buffer whose value was freed is kept for the next fetch of the
 * same size (at most cap / 16 bytes kept, 4 buffers): fresh memory costs the
 * kernel a zero-fill that runs slower than the socket here, so a worker
 * fetching one big input after another reuses one buffer. NULL when memory
 * runs out. Values may outlive b. */
herd_value *herd_fetch_bytes(herd_fetch_budget *b, size_t n, void **p);

/* How a fetch authenticates and what bounds it: the cluster token (NULL:
 * none), TLS credentials for tls:// peers (NULL otherwise), a budget (NULL:
 * none). All borrowed. */
typedef struct herd_peer_auth {
    const char *token;
    herd_tls *tls;
    herd_fetch_budget *budget;
} herd_peer_auth;

#define HERD_PEER_CTL_FRAME ((size_t)64 << 10)   /* an authenticated peer's frames: GETs */
/* Socket buffers of a connection between peers of this host, both ends. With
 * the default (~200 KiB) a Unix socket moves a value at a tenth of the speed. */
#define HERD_PEER_SOCKBUF (4 << 20)
/* Ask for HERD_PEER_SOCKBUF on socket fd (capped by net.core.wmem_max and
 * rmem_max; a refusal only costs speed). */
void herd_peer_sock_bufs(int fd);
#define HERD_PEER_CONNECT_S 5.0                  /* seconds a fetch waits for its connect */
#endif
