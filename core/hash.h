/* core/hash.h — keyed hashes for every table whose keys can come from a peer
 * (map keys decoded from the wire, task keys a client chooses): SipHash-1-3
 * under a key drawn at random once per process, so no peer can choose keys
 * that collide. */
#ifndef HERD_HASH_H
#define HERD_HASH_H

#include <stddef.h>
#include <stdint.h>

uint64_t herd_hash_bytes(const void *p, size_t len);
uint64_t herd_hash_u64(uint64_t k);

#endif
