/* core/shm.h — large values between processes of one host without a copy:
 * sealed memfds (create, seal, check and map what a peer sent)
 * and passing their descriptors over a Unix socket (SCM_RIGHTS). */
#ifndef HERD_SHM_H
#define HERD_SHM_H
#include "internal.h"

#include <stddef.h>
#include <sys/types.h>

/* Payloads from this size up that already live in a sealed memfd are handed
 * to a peer on this host as that memfd; others of this size or more are
 * streamed and received straight into the fetcher's own buffer (peer_local.c). */
#define HERD_SHM_MIN ((size_t)1 << 20)
/* Descriptors one message may carry (unix(7): 253). */
#define HERD_SHM_MAX_FDS 253

/* A new memfd of len (> 0) bytes that can be sealed, mapped read-write at
 * *p. 0 or a negative errno. */
int herd_shm_create(size_t len, int *fd, void **p);
/* Freeze the memfd fd whose read-write map of len bytes is at p: the map is
 * replaced in place by a read-only one (same address), then the file is
 * sealed SHRINK|GROW|WRITE|SEAL. 0 or a negative errno (the map is then
 * still usable, the file unsealed). */
int herd_shm_seal(int fd, void *p, size_t len);
/* Check a descriptor a peer sent for a payload of len bytes: a memfd sealed
 * against SHRINK, GROW and WRITE, exactly len bytes long; then map it
 * read-only at *p. fd stays the caller's (close it after). 0, or -HERD_EPROTO
 * with err saying what is wrong, or another negative errno. */
int herd_shm_map(int fd, size_t len, void **p, herd_err *err);

/* Send len (>= 1) bytes at buf on a Unix stream socket with nfds
 * (<= HERD_SHM_MAX_FDS) descriptors attached to the first byte. */
int herd_shm_send(int sock, const void *buf, size_t len, const int *fds, int nfds);
/* Read exactly len bytes; descriptors arriving with them go to fds (at most
 * maxfds, the count in *nfds; the caller closes them). A message whose
 * descriptors did not all fit (MSG_CTRUNC) is -HERD_EPROTO, its
 * descriptors closed. */
int herd_shm_recv(int sock, void *buf, size_t len, int *fds, int maxfds, int *nfds, herd_err *err);
/* One read of 1..cap bytes (its count, or a negative code with err set):
 * descriptors arriving with them are added at fds[*nfds] (at most maxfds in
 * all). -EAGAIN (nothing to read yet on a non-blocking socket, or
 * SO_RCVTIMEO ran out) leaves everything as it was. Too many descriptors, or
 * another error: every descriptor in fds is closed and *nfds is 0. */
ssize_t herd_shm_recv_some(int sock, void *buf, size_t cap, int *fds, int maxfds, int *nfds, herd_err *err);
#endif
