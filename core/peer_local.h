/* core/peer_local.h — fetching a held value from a unix:// peer of this host
 * (peer_local.c); herd_peer_fetch (peer.c) calls it for those addresses. */
#ifndef HERD_PEER_LOCAL_H
#define HERD_PEER_LOCAL_H
#include "fetch.h"

/* herd_peer_fetch from a unix:// peer (peer_local.c): big payloads as maps. */
int herd_peer_fetch_local(const char *address, const herd_peer_auth *auth, uint64_t key, double timeout_s,
                          herd_value **out, herd_err *err);
#endif
