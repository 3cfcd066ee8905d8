/* core/net.h — sockets before they are connections: addresses, listen, the
 * blocking dial, and the accept guard. comm.h includes it. */
#ifndef HERD_NET_H
#define HERD_NET_H

#include "internal.h"
#include <event2/event.h>
#include <event2/listener.h>

/* Addresses: "tcp://host:port", "tls://host:port", "host:port", "unix:///path". */
typedef struct herd_addr {
    int is_unix;
    int is_tls;                    /* tls://host:port */
    char host[256];
    int port;
    char path[108];
} herd_addr;
int herd_addr_parse(const char *s, herd_addr *a, herd_err *err);

/* Listen on addr (port 0 picks one); *bound gets the address clients dial. */
struct evconnlistener *herd_listen(struct event_base *base, const char *addr,
                                   evconnlistener_cb cb, void *ud,
                                   char *bound, size_t cap, herd_err *err);
/* accept() failing for want of descriptors or memory (EMFILE, ENFILE,
 * ENOBUFS, ENOMEM) would otherwise fail again at once, forever: the guard
 * disables the listener and re-enables it after a delay (100 ms doubling to
 * 2 s while it keeps failing), and logs a burst of failures twice: when it
 * begins, and with the count once accepts have gone 2 s without failing.
 * The owner calls herd_accept_guard_fail from the listener's error callback. */
typedef struct herd_accept_guard {
    struct evconnlistener *lis;    /* borrowed */
    struct event *retry;           /* end of a pause, or of the 2 s watch after it */
    double delay, since;           /* current pause; when the burst began */
    unsigned long fails;           /* failures in this burst (0: none) */
    int watching;                  /* accepting again, the burst not yet over */
    int last_errno;
    void (*log)(void *ud, int level, const char *line);
    void *log_ud;
} herd_accept_guard;
int  herd_accept_guard_init(herd_accept_guard *g, struct evconnlistener *lis,
                            void (*log)(void *ud, int level, const char *line), void *log_ud);
void herd_accept_guard_fail(herd_accept_guard *g);
void herd_accept_guard_destroy(herd_accept_guard *g);

/* Dial addr with a timeout; blocking connect (called before the loop runs).
 * While the address refuses (or a unix socket is absent) it retries with
 * backoff (50 ms doubling to 1 s) until the deadline; herd_dial_log also
 * says so through log (when not NULL) once per step, at INFO: "cannot
 * connect to ADDR yet (why); retrying in Xs, Ys left". */
int herd_dial(const char *addr, double timeout_s, int *fd_out, herd_err *err);
/* One attempt, no retry (a peer that refuses is not there): within
 * timeout_s, "cannot connect to ADDR: why". */
int herd_dial_once(const char *addr, double timeout_s, int *fd_out, herd_err *err);
int herd_dial_log(const char *addr, double timeout_s, void (*log)(void *ud, int level, const char *line),
                  void *log_ud, int *fd_out, herd_err *err);

#endif
