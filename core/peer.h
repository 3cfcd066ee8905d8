/* core/peer.h — worker-to-worker transfer of held values: each worker's
 * peer server (libevent, on a Unix socket in the cluster's private directory
 * or on TCP/TLS) and the fetch its executors and the flows' clients use
 * (the bound on bytes in flight and how a fetch authenticates: fetch.h). */
#ifndef HERD_PEER_H
#define HERD_PEER_H
#include "internal.h"
#include "fetch.h"
#include "security.h"
#include "store.h"

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
/* What a server has sent since it started: values answered, their bytes
 * written through the socket, payloads handed over as memfd descriptors. */
typedef struct herd_peer_counts { uint64_t values, bytes, fds; } herd_peer_counts;
void herd_peer_server_counts(const herd_peer_server *ps, herd_peer_counts *out);
/* Stop serving, close every connection, join the thread, remove the socket. */
void herd_peer_server_stop(herd_peer_server *ps);
/* The address peers dial: "unix:///…", "tcp://IP:PORT" or "tls://IP:PORT". */
const char *herd_peer_server_address(const herd_peer_server *ps);

/* Fetch key's value from the peer at address within timeout_s seconds of
 * silence: *out gets it (new; from a unix:// peer, of this host, its bytes
 * payloads of 1 MiB or more that the holder keeps in sealed memfds are
 * read-only maps of them, GETFD, shm.h; the others of that size are read
 * straight from the socket into buffers of their own, peer_local.c). -ENOENT when the peer does not hold it,
 * -HERD_EAUTH when it refuses the token, -HERD_ECLOSED when it cannot be
 * connected to at all (refused, unreachable: a relay may help), another
 * negative code when the answer is malformed or breaks off; err says which. */
int herd_peer_fetch(const char *address, const herd_peer_auth *auth, uint64_t key, double timeout_s,
                    herd_value **out, herd_err *err);
#endif
