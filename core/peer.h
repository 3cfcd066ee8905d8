/* core/peer.h — worker-to-worker transfer of held values: each worker's
 * peer server (a Unix socket in the cluster's private directory) and the
 * blocking fetch its executors and the flow's client use. */
#ifndef HERD_PEER_H
#define HERD_PEER_H
#include "internal.h"
#include "store.h"

typedef struct herd_peer_server herd_peer_server;

/* Serve st's values on a Unix socket at path (created; removed at stop) to
 * peers whose HELLO (role ROLE_PEER) carries token (NULL: none needed).
 * name labels log lines. st, token and name are borrowed and must outlive
 * the server. The server runs on its own thread. */
int herd_peer_server_start(herd_peer_server **out, const char *path, const char *token, herd_store *st,
                           const char *name, herd_err *err);
/* Stop serving, close every connection, join the thread, remove the socket. */
void herd_peer_server_stop(herd_peer_server *ps);
/* The address peers dial: "unix:///…". */
const char *herd_peer_server_address(const herd_peer_server *ps);

/* Fetch key's value from the peer at address within timeout_s seconds of
 * silence: *out gets it (new). -ENOENT when the peer does not hold it,
 * -HERD_EREFUSED when it refuses the token, another negative code when it
 * cannot be reached or the answer is malformed; err says which. */
int herd_peer_fetch(const char *address, const char *token, uint64_t key, double timeout_s, herd_value **out,
                    herd_err *err);
#endif
