/* core/peer.h — worker-to-worker transfer of held values: each worker's
 * peer server (libevent, on a Unix socket in the cluster's private directory
 * or on TCP/TLS), the fetch its executors and the flows' clients use, and
 * the bound on a worker's bytes in flight. */
#ifndef HERD_PEER_H
#define HERD_PEER_H
#include "internal.h"
#include "security.h"
#include "store.h"
#include <pthread.h>

typedef struct herd_peer_server herd_peer_server;

/* Serve st's values on listen_addr ("unix:///path": created mode 0600,
 * removed at stop; "tcp://IP:0" or "tls://IP:0": a port is picked; tls://
 * needs tls, the worker's credentials: peers must present a certificate of
 * the cluster's CA) to peers whose HELLO (role ROLE_PEER) carries token
 * (NULL: none needed). name labels log lines. st, token, tls and name are
 * borrowed and must outlive the server. The server runs its own thread and
 * event loop; many connections are served at once. */
int herd_peer_server_start(herd_peer_server **out, const char *listen_addr, const char *token, herd_tls *tls,
                           herd_store *st, const char *name, herd_err *err);
/* Stop serving, close every connection, join the thread, remove the socket. */
void herd_peer_server_stop(herd_peer_server *ps);
/* The address peers dial: "unix:///…", "tcp://IP:PORT" or "tls://IP:PORT". */
const char *herd_peer_server_address(const herd_peer_server *ps);

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

/* Fetch key's value from the peer at address within timeout_s seconds of
 * silence: *out gets it (new; from a unix:// peer, of this host, its bytes
 * payloads of 1 MiB or more are read-only maps of the holder's sealed memfds:
 * GETFD, shm.h). -ENOENT when the peer does not hold it,
 * -HERD_EAUTH when it refuses the token, -HERD_ECLOSED when it cannot be
 * connected to at all (refused, unreachable: a relay may help), another
 * negative code when the answer is malformed or breaks off; err says which. */
int herd_peer_fetch(const char *address, const herd_peer_auth *auth, uint64_t key, double timeout_s,
                    herd_value **out, herd_err *err);
/* herd_peer_fetch from a unix:// peer (peer_local.c): big payloads as maps. */
int herd_peer_fetch_local(const char *address, const herd_peer_auth *auth, uint64_t key, double timeout_s,
                          herd_value **out, herd_err *err);

#define HERD_PEER_CTL_FRAME ((size_t)64 << 10)   /* an authenticated peer's frames: GETs */
#define HERD_PEER_CONNECT_S 5.0                  /* seconds a fetch waits for its connect */
#endif
