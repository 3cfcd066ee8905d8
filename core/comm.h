/* core/comm.h — framed msgpack messages over libevent bufferevents (TCP and
 * Unix sockets). Addresses, listen and dial are net.h's (included here);
 * what the messages hold is proto.h's (included here for the opcodes). */
#ifndef HERD_COMM_H
#define HERD_COMM_H

#include "internal.h"
#include "security.h"
#include "net.h"
#include <pthread.h>
#include <event2/event.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <msgpack.h>
#include "proto.h"

#define HERD_MAX_FRAME (256u << 20)   /* a frame larger than this is a protocol error */
/* One message goes in one frame: messages are batched into a frame only
 * while it holds less than HERD_MAX_FRAME / 4, so a message up to
 * HERD_MAX_MESSAGE always fits. Task data (a task's arguments, its result)
 * may be HERD_MAX_DATA once encoded; the rest is the message's envelope.
 * Larger data is refused where it is made: herd_submit, the worker's DONE
 * (the task fails), the scheduler's RUN after dependency results are put in
 * (that task fails) — never a dropped connection. */
#define HERD_MAX_MESSAGE ((size_t)HERD_MAX_FRAME / 4 * 3)
#define HERD_MAX_DATA (HERD_MAX_MESSAGE - ((size_t)1 << 20))
/* v's size once encoded (msgpack), counted without encoding it; SIZE_MAX if
 * it cannot be encoded (nested too deep, an item over 4 GiB). */
size_t herd_wire_size(const herd_value *v);

/* Before a peer is authenticated (HELLO and token accepted) its frames may
 * be this large: enough for a HELLO; a longer one is refused from its 4-byte
 * header, before any of the body is buffered. */
#define HERD_PREAUTH_MAX_FRAME (16u << 10)
/* Output queued for a peer that does not read it: while more than this is
 * queued, a peer that takes none of it for HERD_WRITE_STALL_S is dropped
 * (as failed: "the peer does not read ..."); past twice this it is dropped
 * at once. */
#define HERD_MAX_QUEUED ((size_t)HERD_MAX_FRAME * 2)
/* How long a peer may take nothing of its output while it is over the cap,
 * or while a close that flushes first (herd_conn_close_after_flush) waits
 * for the output to drain; then the connection is dropped or closed. */
#define HERD_WRITE_STALL_S 5

typedef struct herd_conn herd_conn;

/* Free an event base whose loop has ended, once every event of ours is
 * freed: a bufferevent freed after the loop stopped may still hold a
 * reference for a callback libevent had queued (and a TLS one its SSL), which
 * only a pass of the loop releases. Runs such passes, then frees base. */
void herd_event_base_drain_free(struct event_base *base);
/* A connection refused in its TLS handshake: close it lingering (see comm.c)
 * so the peer reads the alert that says why, not a reset; a peer that spoke
 * plain frames to this TLS side gets a plain REFUSE saying to use tls://. */
void herd_conn_set_linger(herd_conn *c);
typedef void (*herd_conn_fn)(herd_conn *c, void *ud);
typedef void (*herd_conn_msg_fn)(herd_conn *c, const msgpack_object *msg, void *ud);
typedef void (*herd_conn_close_fn)(herd_conn *c, const char *why, void *ud);

/* Wrap a connected bufferevent (ownership taken). */
herd_conn *herd_conn_new(struct bufferevent *bev, const char *peer,
                         herd_conn_msg_fn on_msg, herd_conn_close_fn on_close, void *ud);
/* Close now (no callbacks) and free. */
void herd_conn_free(herd_conn *c);
/* Queue one message: pack into herd_conn_buf(c) (a herd_proto_pack_*
 * function) or herd_conn_packer(c), then call herd_conn_end(c). Messages
 * queued in one loop iteration go out as one frame. */
msgpack_sbuffer *herd_conn_buf(herd_conn *c);
msgpack_packer *herd_conn_packer(herd_conn *c);
void herd_conn_end(herd_conn *c);
/* Queue bytes that already hold whole packed messages (a batch larger than
 * HERD_MAX_FRAME / 4 is split between messages, so no frame exceeds
 * HERD_MAX_FRAME when each message is at most HERD_MAX_MESSAGE). */
void herd_conn_append(herd_conn *c, const char *data, size_t len);
/* Write pending messages now (flush at teardown). */
void herd_conn_flush(herd_conn *c);
/* Bytes queued and not yet handed to the socket (or to TLS): 0 once
 * everything sent so far has left this process (after herd_conn_flush). */
size_t herd_conn_queued(const herd_conn *c);
/* Flush what is queued, then close once written; on_close is not called. */
void herd_conn_close_after_flush(herd_conn *c);
const char *herd_conn_peer(const herd_conn *c);
/* The connection's socket (-1 once closed): for what bufferevents cannot
 * carry, such as descriptors (core/peer.c, sent when nothing is queued). */
int herd_conn_fd(const herd_conn *c);
/* This side's IP address on a TCP connection ("10.0.0.2", "::1"): 0, or a
 * negative code (a Unix socket). */
int herd_conn_local_ip(const herd_conn *c, char *buf, size_t cap);
/* Limits for this connection: the largest frame it may send us (<=
 * HERD_MAX_FRAME; also the cap on its buffered input) and the most output
 * queued for it (0: HERD_MAX_QUEUED). New connections have HERD_MAX_FRAME
 * and HERD_MAX_QUEUED. */
void herd_conn_set_limits(herd_conn *c, size_t max_frame, size_t max_queued);
/* 1 while a TLS connection's handshake has not finished (nothing can be
 * sent or read yet); 0 otherwise and for plain connections. */
int herd_conn_handshaking(const herd_conn *c);
/* End the connection as if it had failed: stop reading, then call on_close
 * with why (once; safe inside on_msg, which is not called again). For a
 * message that does not unpack. */
void herd_conn_fail(herd_conn *c, const char *why);

/* Raw bytes outside frames (the data plane's values, core/peer.c). Inside
 * on_msg: the next n bytes the peer sends after the current frame's message
 * are raw: they are copied into dst (the caller's, n bytes) as they arrive,
 * then done(c, ud) runs and framing resumes. The rest of that frame is not
 * read: a peer sends such a message alone in its frame. */
void herd_conn_read_raw(herd_conn *c, char *dst, size_t n, herd_conn_fn done);
/* Inside on_msg or outside the loop, on a plain (not TLS) connection: what
 * follows the current frame's message is raw and the caller reads it itself:
 * first from the returned input buffer (bytes already read), then from the
 * socket (herd_conn_fd). Reading through the loop stops for good. NULL once
 * closed. */
struct evbuffer *herd_conn_raw_input(herd_conn *c);
/* Queue len bytes at data after what is queued (pending messages are
 * written first), by reference, not copied: cleanup(data, len, arg) runs
 * once they are sent or the connection is freed. 0 or a negative code. */
typedef void (*herd_conn_ref_cleanup)(const void *data, size_t len, void *arg);
int herd_conn_add_ref(herd_conn *c, const void *data, size_t len, herd_conn_ref_cleanup cleanup, void *arg);
/* fn(c, ud) runs whenever the output falls to low bytes or fewer, until
 * set again with fn NULL: a sender that keeps a bounded amount queued. */
void herd_conn_on_drain(herd_conn *c, size_t low, herd_conn_fn fn);
/* Fail the connection ("connection timed out") after read_s seconds without
 * input, or write_s seconds in which output waits and none of it can be
 * written (<= 0: never). Not for a connection whose output may go over its
 * cap (that sets the write timeout itself). */
void herd_conn_set_timeouts(herd_conn *c, double read_s, double write_s);
/* Read and write up to n bytes per system call (libevent's default is
 * 16 KiB): for connections that move values. */
void herd_conn_set_max_io(herd_conn *c, size_t n);

/* Dial address (tls:// needs tls; borrowed) within timeout_s (<= 0: 30 s)
 * and wrap the connection on base; peer is the address. NULL and err on
 * failure. The dial blocks (called before the loop runs). */
herd_conn *herd_conn_dial(struct event_base *base, const char *address, herd_tls *tls, double timeout_s,
                          herd_conn_msg_fn on_msg, herd_conn_close_fn on_close, void *ud, herd_err *err);
/* The same, saying each retry through log (herd_dial_log). */
herd_conn *herd_conn_dial_log(struct event_base *base, const char *address, herd_tls *tls, double timeout_s,
                              void (*log)(void *ud, int level, const char *line), void *log_ud,
                              herd_conn_msg_fn on_msg, herd_conn_close_fn on_close, void *ud, herd_err *err);

/* Messages packed by any thread and sent on *conn by the loop's thread,
 * batched (one wake of the loop however many are queued). The owner's mutex
 * guards it: pack into sb holding *mu, then herd_outbox_send_unlock. */
typedef struct herd_outbox {
    pthread_mutex_t *mu;       /* borrowed */
    msgpack_sbuffer sb;
    struct event *ev;
    herd_conn **conn;          /* borrowed; *conn NULL: what is queued is dropped */
    int signalled;
} herd_outbox;
int  herd_outbox_init(herd_outbox *o, struct event_base *base, pthread_mutex_t *mu, herd_conn **conn);
/* Holding *mu: have the loop send what was packed (mu stays held). */
void herd_outbox_wake(herd_outbox *o);
/* herd_outbox_wake, then unlock *mu. */
void herd_outbox_send_unlock(herd_outbox *o);
void herd_outbox_destroy(herd_outbox *o);

/* Block SIGPIPE in the calling thread: a write to a peer that went away then
 * fails with EPIPE (and closes that connection) instead of killing the
 * process. Every thread that runs an event loop calls it. */
void herd_block_sigpipe(void);
#endif
