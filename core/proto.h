/* core/proto.h — the wire protocol: the opcodes, every message's field
 * layout, one typed struct per message and one pack and one unpack function
 * per opcode. The scheduler, the worker and the remote client read and write
 * messages only through these; comm.c moves the bytes (framing), and values
 * inside messages are encoded by value_msgpack.c.
 *
 * A message is a msgpack array whose first item is its opcode; the fields
 * follow in the order listed below, always all of them (nil where a field
 * may be absent). Types: int = msgpack integer, num = integer or float,
 * str = msgpack str, value = any herd_value (value_msgpack.c).
 *
 *   HELLO     c->s [op, proto int, role int 0|1, token str, name str,
 *                   nthreads int, resources map|nil, pid int]
 *   WELCOME   s->c [op, id int 1..2^24-1, heartbeat_interval num > 0,
 *                   nworkers int, nthreads int, owned int 0|1, transfer int 0..3]:
 *                   transfer is the cluster's data_transfer (HERD_DT_*): how
 *                   a worker fetches held inputs
 *   REFUSE    s->c [op, reason str]
 *   RUN       s->w [op, key int, task str, args value, attempt int,
 *                   run_name str, tags array of str|nil, inputs, hold int 0|1]:
 *                   inputs (array of [key int, peer str] | nil) says where each
 *                   futref left in args is held (the peer's address; this
 *                   worker's own store when it is the holder); hold 1: the
 *                   worker may keep a result over HERD_INLINE_MAX in its store
 *   DONE      w->s [op, key int, ok int 0|1, value (ok) | error str (not ok),
 *                   duration_us int, attempt int, held int >= -1]: held -1,
 *                   the value is inline; else the value (nil here) stays in
 *                   the worker's store and is held bytes long (packed)
 *   LOG       w->s and s->c [op, key int, level int 0..3, text str]
 *   HEARTBEAT w->s [op, cpu num -1..1e6, memory int >= -1, managed int >= 0,
 *                   spilled int >= 0]: the worker's own figures, every
 *                   heartbeat_interval (protocol 8): its process's CPU use since
 *                   the last heartbeat (% of one core) and resident memory in
 *                   bytes (-1 each: unknown, as for a worker thread inside
 *                   another process), and the bytes of held values in memory
 *                   (Dask's managed) and spilled to disk (being paused is PAUSE)
 *   SECEDE    w->s [op, key int]: the task waits on sub-tasks, its slot is free
 *   SUBMIT    c->s [op, key int, task str, args value, priority int,
 *                   resources map|nil, retries int, retry_delay num,
 *                   timeout num, run_name str|nil, tags array of str|nil,
 *                   workers array of names|nil, allow_other_workers int 0|1]
 *   RELEASE   c->s [op, key int]
 *   CANCEL    c->s [op, key int]
 *   RESULT    s->c [op, key int, state int, payload]: the value when
 *                   Completed, the error str when Failed/Crashed/Cancelled,
 *                   nil for Scheduled and Running (a remote client's tasks)
 *   CLOSE     s->w [op, reason str]: finish and exit
 *   WORKERS   s->c [op, nworkers int, nthreads int]: the cluster's size changed
 *   STARTED   w->s [op, key int, attempt int]: an executor thread started the task
 *   CONTROL   c->s [op, seq int, verb str, arg str|nil]: "load"; "dashboard" (its
 *                   HTTP endpoint: "SCHEME IP PORT ONCE|-", sched_http.c);
 *                   "report" (its /api/v1/status JSON, for a performance report); "drain"
 *                   NAME and "close_workers" REASON only on a scheduler its
 *                   cluster's provider started (owned); with seq 0, unanswered
 *                   notifications for an owned scheduler's dashboard: "note"
 *                   "TARGET HAVE REASON", "provider" JSON (metrics.c)
 *   PEER      w->s [op, address str]: where this worker serves its held values
 *                   (sent right after HELLO; a worker without it holds none)
 *   FREE      s->w [op, key int]: delete a held value nobody needs any more
 *   MISSING   w->s [op, key int, attempt int, input int]: the attempt could not
 *                   fetch input (its holder is gone); the task waits for it again
 *   HELD      s->w [op, key int, peer str|nil, error str|nil]: a sub-task's
 *                   result is held by the worker serving at peer (fetch it
 *                   from there); peer nil: it was lost for good, error says why
 *   GET       p->p [op, key int]: a peer asks for a held value (peer.c)
 *   DATA      p->p [op, key int, nbytes int >= -1]: the answer; nbytes -1:
 *                   not held here; else nbytes raw bytes (the value, packed)
 *                   follow the frame, outside msgpack, so no frame limit applies
 *   FETCH     w|c->s and s->w [op, key int, xfer int >= 0, credit int >= 0]:
 *                   the relay (item 8 of the data plane): a worker or client
 *                   that cannot reach a value's holder (or whose cluster
 *                   relays everything) asks the scheduler (xfer 0, credit 0),
 *                   which asks the holder for transfer xfer (> 0, new), with
 *                   leave to send credit bytes of it at first (protocol 10)
 *   VALUE     w->s and s->w|c [op, id int, nbytes int >= -1, error str|nil]:
 *                   a transfer begins: id is xfer (holder to scheduler) or
 *                   the key (scheduler to reader); nbytes bytes of the packed
 *                   value follow as CHUNKs. nbytes -1: there is no value
 *                   (error says why); to a reader while that key's CHUNKs are
 *                   coming: the transfer was cut off (its holder left)
 *   CHUNK     w->s and s->w|c [op, id int, bytes bin 1..HERD_RELAY_CHUNK]:
 *                   the next bytes of transfer id (as in VALUE); a CHUNK past
 *                   the transfer's nbytes, past what MORE allowed, or of no
 *                   transfer in progress is a protocol error
 *   MORE      s->w [op, xfer int, credit int >= -1]: the holder may send
 *                   credit more bytes of xfer; -1: stop, nobody reads it any
 *                   more (the scheduler still takes what was allowed before)
 *   PAUSE     w->s [op, paused int 0|1]: 1, the worker's memory is over 80% of
 *                   its memory_limit (spill.c): send it no task; 0, it fell
 *                   back under: it takes tasks again
 *   REPLY     s->c [op, seq int, rc int <= 0, payload]: the load (rc 0, for
 *                   "load": [waiting, ready, running, avg_duration,
 *                   task_seconds, [[name, nthreads, busy, closing, idle_for,
 *                   needed_bytes]…]]), the error str (rc < 0), a text str (rc 0:
 *                   "dashboard", "report"), or nil
 *   ACQUIRE   s->w [op, key int, peer str, nbytes int >= 0] (protocol 9): a
 *                   worker being retired holds key's value (nbytes packed) and
 *                   serves it at peer: fetch it from there (or relayed) and
 *                   hold it (Dask's acquire-replicas)
 *   ACQUIRED  w->s [op, key int, nbytes int >= -1, error str|nil]: the answer:
 *                   held here now, nbytes packed; or -1 and why not
 *
 * Names (HELLO name, task names, control verbs) are 1..HERD_PROTO_MAX_NAME
 * bytes without a NUL byte.
 *
 * Packing: every pack function appends one whole message to sb, or nothing
 * (it returns -HERD_EARG when a value inside cannot be encoded — too deep,
 * see herd_value_pack — or -ENOMEM); the input struct is only read.
 *
 * Unpacking: msg is a whole message as comm.c delivers it. Every field is
 * checked (count, types, lengths, ranges); a bad message returns
 * -HERD_EPROTO with err naming the opcode and the field ("SUBMIT: field
 * 'priority' is str, expected int") and leaves nothing to free. On success:
 *  - herd_pstr fields point into msg (no copy): valid only while msg is, that
 *    is until the on_msg callback returns;
 *  - herd_value * fields (and SUBMIT's strings, REPLY's load) are new and
 *    owned by the caller, who frees them or takes them. */
#ifndef HERD_PROTO_H
#define HERD_PROTO_H

#include "client.h"
#include "scheduler.h"
#include <msgpack.h>

#define HERD_PROTO_VERSION HERD_PROTOCOL_VERSION
#define HERD_PROTO_MAX_NAME 1024

enum {
    OP_HELLO = 1, OP_WELCOME, OP_REFUSE, OP_RUN, OP_DONE, OP_LOG, OP_HEARTBEAT, OP_SECEDE,
    OP_SUBMIT, OP_RELEASE, OP_CANCEL, OP_RESULT, OP_CLOSE, OP_WORKERS, OP_STARTED,
    OP_CONTROL, OP_REPLY, OP_PEER, OP_FREE, OP_MISSING, OP_GET, OP_DATA, OP_HELD, OP_PAUSE, OP_FETCH, OP_VALUE,
    OP_GETFD, OP_ACQUIRE, OP_ACQUIRED, OP_CHUNK, OP_MORE, OP_MAX
};

/* data_transfer (client_kwargs): how held values reach a worker or client.
 * AUTO: from the holder directly, relayed by the scheduler when the holder
 * cannot be reached; DIRECT: never relayed; RELAY: always relayed; INLINE:
 * results are not held at all, they travel inline with DONE and RESULT. */
enum { HERD_DT_AUTO = 0, HERD_DT_DIRECT, HERD_DT_RELAY, HERD_DT_INLINE };
/* How VALUE's error begins when no worker holds the value any more: the
 * reader waits for its recomputation (any other error is final). */
#define HERD_RELAY_GONE "no worker holds this value now"

/* ROLE_PEER: a worker (or a client) fetching held values from a worker's
 * peer server (peer.c); the scheduler refuses it. */
enum { ROLE_WORKER = 0, ROLE_CLIENT = 1, ROLE_PEER = 2 };

/* Results packed to more than this many bytes stay on the worker that
 * computed them (when the scheduler allows it: RUN's hold); smaller ones
 * travel inline in DONE. */
#define HERD_INLINE_MAX 1024
/* Bytes in one CHUNK at most (the relay's streams, relay.h); a bigger one
 * is a protocol error. */
#define HERD_RELAY_CHUNK ((size_t)1 << 20)

/* A string field: len bytes at ptr, not NUL-terminated. ptr NULL: nil (an
 * absent optional field); an empty str has ptr "" (never NULL). */
typedef struct herd_pstr { const char *ptr; size_t len; } herd_pstr;
/* A C string as a field (NULL: nil). */
herd_pstr herd_pstr_c(const char *s);
/* A NUL-terminated malloc'd copy; NULL when s is nil or memory runs out. */
char *herd_pstr_dup(herd_pstr s);

/* The opcode of msg (1..OP_MAX-1), or -HERD_EPROTO when msg is not an
 * array starting with a known opcode. */
int herd_proto_op(const msgpack_object *msg, herd_err *err);
/* "SUBMIT"; "?" for an unknown code. */
const char *herd_proto_op_name(int op);

typedef struct herd_msg_hello {
    int64_t proto;             /* unpack refuses another version: err names it */
    int role;                  /* ROLE_WORKER or ROLE_CLIENT */
    herd_pstr token;           /* "" without a token */
    herd_pstr name;
    int nthreads;              /* 1..65536 for a worker, 0..65536 for a client */
    herd_value *resources;     /* map name -> number >= 0, or NULL */
    int64_t pid;
    herd_pstr host;            /* the sender's host name (gethostname), 0..HERD_PROTO_MAX_NAME
                                  bytes: what `workers` annotations match besides names */
} herd_msg_hello;
int herd_proto_pack_hello(msgpack_sbuffer *sb, const herd_msg_hello *m);
int herd_proto_unpack_hello(const msgpack_object *msg, herd_msg_hello *out, herd_err *err);

typedef struct herd_msg_welcome {
    uint32_t id;               /* the client's key prefix */
    double heartbeat_interval; /* seconds */
    int nworkers, nthreads;
    int owned;                 /* the scheduler was started for one cluster */
    int transfer;              /* HERD_DT_* */
} herd_msg_welcome;
int herd_proto_pack_welcome(msgpack_sbuffer *sb, const herd_msg_welcome *m);
int herd_proto_unpack_welcome(const msgpack_object *msg, herd_msg_welcome *out, herd_err *err);

/* REFUSE and CLOSE. CLOSE from the scheduler asks a worker to exit; from a
 * worker it says why the worker is about to go (over memory_limit): the
 * scheduler gives that reason for the connection's end. */
typedef struct herd_msg_reason { herd_pstr reason; } herd_msg_reason;
int herd_proto_pack_refuse(msgpack_sbuffer *sb, const herd_msg_reason *m);
int herd_proto_unpack_refuse(const msgpack_object *msg, herd_msg_reason *out, herd_err *err);
int herd_proto_pack_close(msgpack_sbuffer *sb, const herd_msg_reason *m);
int herd_proto_unpack_close(const msgpack_object *msg, herd_msg_reason *out, herd_err *err);

typedef struct herd_msg_run {
    uint64_t key;
    herd_pstr task;            /* a name */
    herd_value *args;
    int attempt;               /* >= 0 */
    herd_pstr run_name;
    herd_value *tags;          /* array of str, or NULL */
    herd_value *inputs;        /* array of [key, peer], or NULL */
    int hold;                  /* 1: a big result may stay on the worker */
} herd_msg_run;
int herd_proto_pack_run(msgpack_sbuffer *sb, const herd_msg_run *m);
int herd_proto_unpack_run(const msgpack_object *msg, herd_msg_run *out, herd_err *err);

typedef struct herd_msg_done {
    uint64_t key;
    int ok;                    /* 1: value holds the result; 0: error says why */
    herd_value *value;
    herd_pstr error;
    uint64_t duration_us;
    int attempt;
    int64_t held;              /* -1: inline; else the held value's packed size */
} herd_msg_done;
int herd_proto_pack_done(msgpack_sbuffer *sb, const herd_msg_done *m);
int herd_proto_unpack_done(const msgpack_object *msg, herd_msg_done *out, herd_err *err);

typedef struct herd_msg_log { uint64_t key; int level; herd_pstr text; } herd_msg_log;
int herd_proto_pack_log(msgpack_sbuffer *sb, const herd_msg_log *m);
int herd_proto_unpack_log(const msgpack_object *msg, herd_msg_log *out, herd_err *err);

typedef struct herd_msg_heartbeat {
    double cpu;                /* %, < 0 unknown */
    int64_t memory;            /* RSS bytes, < 0 unknown */
    int64_t managed, spilled;  /* held values' bytes in memory, on disk */
} herd_msg_heartbeat;
int herd_proto_pack_heartbeat(msgpack_sbuffer *sb, const herd_msg_heartbeat *m);
int herd_proto_unpack_heartbeat(const msgpack_object *msg, herd_msg_heartbeat *out, herd_err *err);

/* SECEDE, RELEASE and CANCEL */
typedef struct herd_msg_key { uint64_t key; } herd_msg_key;
int herd_proto_pack_secede(msgpack_sbuffer *sb, const herd_msg_key *m);
int herd_proto_unpack_secede(const msgpack_object *msg, herd_msg_key *out, herd_err *err);
int herd_proto_pack_release(msgpack_sbuffer *sb, const herd_msg_key *m);
int herd_proto_unpack_release(const msgpack_object *msg, herd_msg_key *out, herd_err *err);
int herd_proto_pack_cancel(msgpack_sbuffer *sb, const herd_msg_key *m);
int herd_proto_unpack_cancel(const msgpack_object *msg, herd_msg_key *out, herd_err *err);

/* SUBMIT's struct is the client's herd_submit_spec (client.h): fut and next
 * are not sent. Unpacking fills *out (op OP_SUBMIT; task and run_name
 * malloc'd, run_name NULL when nil) for the caller to take or herd_spec_free;
 * retries >= 0, retry_delay and timeout finite and >= 0. */
int herd_proto_pack_submit(msgpack_sbuffer *sb, const herd_submit_spec *m);
int herd_proto_unpack_submit(const msgpack_object *msg, herd_submit_spec *out, herd_err *err);
/* What a client's transport sends for a spec: SUBMIT, RELEASE or CANCEL by
 * m->op. */
int herd_proto_pack_spec(msgpack_sbuffer *sb, const herd_submit_spec *m);

typedef struct herd_msg_result {
    uint64_t key;
    herd_state state;          /* HERD_SCHEDULED..HERD_CANCELLED */
    herd_value *value;         /* Completed */
    herd_pstr error;           /* Failed, Crashed, Cancelled */
} herd_msg_result;
int herd_proto_pack_result(msgpack_sbuffer *sb, const herd_msg_result *m);
int herd_proto_unpack_result(const msgpack_object *msg, herd_msg_result *out, herd_err *err);

typedef struct herd_msg_workers { int nworkers, nthreads; } herd_msg_workers;
int herd_proto_pack_workers(msgpack_sbuffer *sb, const herd_msg_workers *m);
int herd_proto_unpack_workers(const msgpack_object *msg, herd_msg_workers *out, herd_err *err);

typedef struct herd_msg_started { uint64_t key; int attempt; } herd_msg_started;
int herd_proto_pack_started(msgpack_sbuffer *sb, const herd_msg_started *m);
int herd_proto_unpack_started(const msgpack_object *msg, herd_msg_started *out, herd_err *err);

typedef struct herd_msg_control {
    uint64_t seq;
    herd_pstr verb;            /* a name */
    herd_pstr arg;             /* nil when absent */
} herd_msg_control;
int herd_proto_pack_control(msgpack_sbuffer *sb, const herd_msg_control *m);
int herd_proto_unpack_control(const msgpack_object *msg, herd_msg_control *out, herd_err *err);

typedef struct herd_msg_reply {
    uint64_t seq;
    int rc;                    /* 0 or a negative error code */
    herd_pstr error;           /* rc < 0: the reason (nil: none given) */
    int has_load;              /* rc 0: load holds the scheduler's load */
    herd_pstr text;            /* rc 0, no load: a text answer ("dashboard"), or nil */
    herd_sched_load load;      /* unpacked: workers malloc'd (herd_sched_load_free) */
} herd_msg_reply;
int herd_proto_pack_reply(msgpack_sbuffer *sb, const herd_msg_reply *m);
int herd_proto_unpack_reply(const msgpack_object *msg, herd_msg_reply *out, herd_err *err);

typedef struct herd_msg_peer { herd_pstr address; } herd_msg_peer;
int herd_proto_pack_peer(msgpack_sbuffer *sb, const herd_msg_peer *m);
int herd_proto_unpack_peer(const msgpack_object *msg, herd_msg_peer *out, herd_err *err);

/* FREE and GET */
int herd_proto_pack_free(msgpack_sbuffer *sb, const herd_msg_key *m);
int herd_proto_unpack_free(const msgpack_object *msg, herd_msg_key *out, herd_err *err);
int herd_proto_pack_get(msgpack_sbuffer *sb, const herd_msg_key *m);
int herd_proto_unpack_get(const msgpack_object *msg, herd_msg_key *out, herd_err *err);
/* GETFD [key]: GET from a peer of this host (Unix socket): the answer's bytes
 * payloads of HERD_SHM_MIN or more may come as memfd descriptors attached to
 * its first raw byte (ext type 2 in their place; core/shm.h). */
int herd_proto_pack_getfd(msgpack_sbuffer *sb, const herd_msg_key *m);
int herd_proto_unpack_getfd(const msgpack_object *msg, herd_msg_key *out, herd_err *err);

typedef struct herd_msg_missing { uint64_t key; int attempt; uint64_t input; } herd_msg_missing;
int herd_proto_pack_missing(msgpack_sbuffer *sb, const herd_msg_missing *m);
int herd_proto_unpack_missing(const msgpack_object *msg, herd_msg_missing *out, herd_err *err);

typedef struct herd_msg_held { uint64_t key; herd_pstr peer, error; } herd_msg_held;
int herd_proto_pack_held(msgpack_sbuffer *sb, const herd_msg_held *m);
int herd_proto_unpack_held(const msgpack_object *msg, herd_msg_held *out, herd_err *err);

typedef struct herd_msg_pause { int paused; } herd_msg_pause;
int herd_proto_pack_pause(msgpack_sbuffer *sb, const herd_msg_pause *m);
int herd_proto_unpack_pause(const msgpack_object *msg, herd_msg_pause *out, herd_err *err);
typedef struct herd_msg_data { uint64_t key; int64_t nbytes; } herd_msg_data;
int herd_proto_pack_data(msgpack_sbuffer *sb, const herd_msg_data *m);
int herd_proto_unpack_data(const msgpack_object *msg, herd_msg_data *out, herd_err *err);

/* FETCH */
typedef struct herd_msg_fetch { uint64_t key, xfer; int64_t credit; } herd_msg_fetch;
int herd_proto_pack_fetch(msgpack_sbuffer *sb, const herd_msg_fetch *m);
int herd_proto_unpack_fetch(const msgpack_object *msg, herd_msg_fetch *out, herd_err *err);

/* VALUE: a relayed value's header (its CHUNKs follow), or why there is none. */
typedef struct herd_msg_value {
    uint64_t id;               /* the transfer (holder -> scheduler) or the key */
    int64_t nbytes;            /* >= 1, or -1 with error */
    herd_pstr error;
} herd_msg_value;
int herd_proto_pack_value(msgpack_sbuffer *sb, const herd_msg_value *m);
int herd_proto_unpack_value(const msgpack_object *msg, herd_msg_value *out, herd_err *err);

/* ACQUIRE and ACQUIRED (a retiring worker's values moved to another). */
typedef struct herd_msg_acquire { uint64_t key; herd_pstr peer; int64_t nbytes; } herd_msg_acquire;
int herd_proto_pack_acquire(msgpack_sbuffer *sb, const herd_msg_acquire *m);
int herd_proto_unpack_acquire(const msgpack_object *msg, herd_msg_acquire *out, herd_err *err);
typedef struct herd_msg_acquired { uint64_t key; int64_t nbytes; herd_pstr error; } herd_msg_acquired;
int herd_proto_pack_acquired(msgpack_sbuffer *sb, const herd_msg_acquired *m);
int herd_proto_unpack_acquired(const msgpack_object *msg, herd_msg_acquired *out, herd_err *err);

/* CHUNK: pack the nparts pieces at parts (1..HERD_RELAY_CHUNK bytes in all)
 * as one bin; unpacked, bytes points into msg. */
struct iovec;
typedef struct herd_msg_chunk {
    uint64_t id;
    const struct iovec *parts; /* pack */
    size_t nparts;
    herd_pstr bytes;           /* unpack */
} herd_msg_chunk;
int herd_proto_pack_chunk(msgpack_sbuffer *sb, const herd_msg_chunk *m);
int herd_proto_unpack_chunk(const msgpack_object *msg, herd_msg_chunk *out, herd_err *err);

typedef struct herd_msg_more { uint64_t xfer; int64_t credit; } herd_msg_more;
int herd_proto_pack_more(msgpack_sbuffer *sb, const herd_msg_more *m);
int herd_proto_unpack_more(const msgpack_object *msg, herd_msg_more *out, herd_err *err);

/* Older helpers for code outside the protocol (tests of the framing). */
void herd_pack_str(msgpack_packer *pk, const char *s);
/* A str object as a NUL-terminated malloc'd string; NULL if not a str. */
char *herd_obj_strdup(const msgpack_object *o);
#endif
