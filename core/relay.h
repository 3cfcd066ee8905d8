/* core/relay.h — the relay's streams (FETCH, VALUE, CHUNK, MORE; proto.h):
 * a value leaving its holder as CHUNKs cut from its packed bytes without
 * packing it whole (herd_relay_src), and a reader putting the CHUNKs of
 * the values it waits for back together (herd_relay_rx). The holder
 * (worker_relay.c), the scheduler (sched_relay.c), the worker and the
 * remote client as readers use these; the flow control is the scheduler's. */
#ifndef HERD_RELAY_H
#define HERD_RELAY_H
#include "internal.h"
#include "proto.h"
#include "store.h"

#include <sys/uio.h>

/* Bytes of one transfer the scheduler lets its holder send ahead of what
 * the reader's connection has taken (MORE grants up to this much). */
#define HERD_RELAY_WINDOW ((size_t)4 << 20)
/* Transfers the scheduler runs at once; more wait their turn. */
#define HERD_RELAY_ACTIVE 16

/* One value on its way out, as its packed bytes: a vectored buffer whose
 * big pieces point into the value (the blob's reference keeps it alive),
 * or the blob's bytes; or bytes packed here (an inline value). */
typedef struct herd_relay_src {
    herd_blob *b;              /* owned reference, or NULL */
    msgpack_vrefbuffer vb;
    int have_vb;
    msgpack_sbuffer own;       /* an inline value packed whole */
    int have_own;
    struct iovec one;
    const struct iovec *vec;
    size_t nvec, i, off;       /* the next byte: vec[i] at off */
    size_t total, sent;
} herd_relay_src;

/* From a held blob (reference taken, also on failure), or from a value
 * (packed now, whole; v only read). 0 or a negative code. */
int herd_relay_src_blob(herd_relay_src *x, herd_blob *b, herd_err *err);
int herd_relay_src_value(herd_relay_src *x, const herd_value *v, herd_err *err);
/* Pack CHUNK [id, the next n bytes] (n <= HERD_RELAY_CHUNK and what is
 * left) into sb. 0 or -ENOMEM. */
int herd_relay_src_chunk(herd_relay_src *x, msgpack_sbuffer *sb, uint64_t id, size_t n);
void herd_relay_src_free(herd_relay_src *x);

/* The values a reader is receiving, by key. */
typedef struct herd_relay_rx {
    uint64_t key;
    size_t nbytes, got;
    char *buf;
    struct herd_relay_rx *next;
} herd_relay_rx;

/* VALUE [key, nbytes >= 1]: key's bytes begin. A second for a key in
 * progress is a protocol error (err says). */
int herd_relay_rx_begin(herd_relay_rx **list, uint64_t key, int64_t nbytes, herd_err *err);
/* VALUE [key, -1, error] while key is in progress: it was cut off. 1 if it
 * was in progress (dropped), else 0. */
int herd_relay_rx_abort(herd_relay_rx **list, uint64_t key);
/* CHUNK [key, bytes]: 0 while more is due; 1 when complete (*out the value,
 * or NULL with *why saying why it does not decode: the reader's error);
 * -HERD_EPROTO for a chunk of no transfer in progress or past its end. */
int herd_relay_rx_chunk(herd_relay_rx **list, uint64_t key, herd_pstr bytes, herd_value **out, char *why,
                        size_t cap, herd_err *err);
void herd_relay_rx_free_all(herd_relay_rx **list);
#endif
