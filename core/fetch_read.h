/* core/fetch_read.h — reading a fetched value from a socket as it arrives,
 * big bytes payloads straight into buffers of their own (fetch_read.c). */
#ifndef HERD_FETCH_READ_H
#define HERD_FETCH_READ_H
#include "fetch.h"

struct evbuffer;

/* Read the nbytes bytes of a packed value (herd_value_pack, or
 * herd_value_pack_fds when fds) from socket fd — first what in (may be NULL)
 * already holds — and decode it into *out (new). Each bytes payload of
 * HERD_SHM_MIN or more lands in a buffer of its own (herd_fetch_bytes with
 * budget, which may be NULL). fds: a Unix socket whose first value byte may
 * carry memfd descriptors (shm.c), checked and mapped read-only for the
 * payloads that refer to them. A socket silent for timeout_s fails it. 0, or
 * -HERD_EPROTO (malformed, or bad descriptors), -ENOMEM, -HERD_ECLOSED (the
 * transfer broke off), with err saying what. */
int herd_fetch_read_value(int fd, struct evbuffer *in, size_t nbytes, int fds, herd_fetch_budget *budget,
                          double timeout_s, herd_value **out, herd_err *err);
#endif
