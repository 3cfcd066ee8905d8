/* core/comm.h — framed msgpack messages over libevent bufferevents (TCP and
 * Unix sockets), the protocol's message codes, and listener/dial helpers. */
#ifndef HERD_COMM_H
#define HERD_COMM_H

#include "internal.h"
#include <event2/event.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <msgpack.h>

#define HERD_PROTO_VERSION HERD_PROTOCOL_VERSION
#define HERD_MAX_FRAME (256u << 20)   /* a frame larger than this is a protocol error */

/* Message codes: every message is a msgpack array whose first item is one. */
enum {
    OP_HELLO = 1,      /* c->s [op, proto, role, token, name, nthreads, resources, pid] */
    OP_WELCOME,        /* s->c [op, id, heartbeat_interval_s, nworkers, nthreads, owned] */
    OP_REFUSE,         /* s->c [op, reason] */
    OP_RUN,            /* s->w [op, key, task, args, attempt, run_name, tags] */
    OP_DONE,           /* w->s [op, key, ok, value|error, duration_us] */
    OP_LOG,            /* w->s [op, key, level, text]; s->c the same */
    OP_HEARTBEAT,      /* w->s [op] */
    OP_SECEDE,         /* w->s [op, key]: the task waits on sub-tasks, its slot is free */
    OP_SUBMIT,         /* c->s [op, key, task, args, priority, resources, retries,
                                retry_delay, timeout, run_name, tags] */
    OP_RELEASE,        /* c->s [op, key] */
    OP_CANCEL,         /* c->s [op, key] */
    OP_RESULT,         /* s->c [op, key, state, value|error]; also Scheduled and
                          Running (payload nil) for a remote client's tasks */
    OP_CLOSE,          /* s->w [op, reason]: finish and exit */
    OP_WORKERS,        /* s->c [op, nworkers, nthreads]: the cluster's size changed */
    OP_STARTED,        /* w->s [op, key, attempt]: an executor thread started the task */
    OP_CONTROL,        /* c->s [op, seq, verb, arg]: "load"; "drain" NAME and "close_workers"
                          REASON only on a scheduler its cluster's provider started (owned) */
    OP_REPLY,          /* s->c [op, seq, rc, payload]: payload the load, or the error text */
    OP_MAX
};
enum { ROLE_WORKER = 0, ROLE_CLIENT = 1 };

typedef struct herd_conn herd_conn;

/* Free an event base whose loop has ended, once every event of ours is
 * freed: a bufferevent freed after the loop stopped may still hold a
 * reference for a callback libevent had queued (and a TLS one its SSL), which
 * only a pass of the loop releases. Runs such passes, then frees base. */
void herd_event_base_drain_free(struct event_base *base);
/* A connection refused in its TLS handshake: close it lingering (see comm.c)
 * so the peer reads the alert that says why, not a reset. */
void herd_conn_set_linger(herd_conn *c);
typedef void (*herd_conn_msg_fn)(herd_conn *c, const msgpack_object *msg, void *ud);
typedef void (*herd_conn_close_fn)(herd_conn *c, const char *why, void *ud);

/* Wrap a connected bufferevent (ownership taken). */
herd_conn *herd_conn_new(struct bufferevent *bev, const char *peer,
                         herd_conn_msg_fn on_msg, herd_conn_close_fn on_close, void *ud);
/* Close now (no callbacks) and free. */
void herd_conn_free(herd_conn *c);
/* Queue one message: pack into herd_conn_packer(c) then call herd_conn_end(c).
 * Messages queued in one loop iteration go out as one frame. */
msgpack_packer *herd_conn_packer(herd_conn *c);
void herd_conn_end(herd_conn *c);
/* Queue bytes that already hold whole packed messages. */
void herd_conn_append(herd_conn *c, const char *data, size_t len);
/* Write pending messages now (flush at teardown). */
void herd_conn_flush(herd_conn *c);
/* Flush what is queued, then close once written; on_close is not called. */
void herd_conn_close_after_flush(herd_conn *c);
const char *herd_conn_peer(const herd_conn *c);

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
/* Dial addr with a timeout; blocking connect (called before the loop runs). */
int herd_dial(const char *addr, double timeout_s, int *fd_out, herd_err *err);

/* msgpack_object helpers for decoding messages safely. */
int64_t     herd_obj_int(const msgpack_object *o, int64_t dflt);
double      herd_obj_float(const msgpack_object *o, double dflt);
/* Copy a str/bin object into a NUL-terminated malloc'd string (NULL if not str). */
char       *herd_obj_strdup(const msgpack_object *o);
void        herd_pack_str(msgpack_packer *pk, const char *s);

/* Block SIGPIPE in the calling thread: a write to a peer that went away then
 * fails with EPIPE (and closes that connection) instead of killing the
 * process. Every thread that runs an event loop calls it. */
void herd_block_sigpipe(void);
#endif
