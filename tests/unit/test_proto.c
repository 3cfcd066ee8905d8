/* tests/unit/test_proto.c — the wire protocol's messages (core/proto.c):
 * every opcode round-trips through its pack and unpack functions, and every
 * malformed variant — a field missing or extra, of the wrong type, an empty
 * name, a negative or oversized integer, a nested container where a scalar
 * belongs — is refused with an error naming the opcode and the field. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <sys/uio.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <herd/herd.h>
#include "proto.h"
#include "value_int.h"

/* ---- helpers: bytes -> msgpack_object ---- */
typedef struct obj { msgpack_unpacked up; } obj;

static const msgpack_object *parse(obj *o, const char *data, size_t len)
{
    msgpack_unpacked_init(&o->up);
    size_t off = 0;
    assert_int_equal(msgpack_unpack_next(&o->up, data, len, &off), MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(off, len);
    return &o->up.data;
}

static const msgpack_object *parse_value(obj *o, herd_value *v, char **buf)
{
    size_t len = 0;
    herd_err err = { 0 };
    assert_non_null(v);
    if (herd_value_encode(v, buf, &len, &err)) fail_msg("encode: %s", err.msg);
    herd_value_free(v);
    return parse(o, *buf, len);
}

static void done(obj *o, char *buf)
{
    msgpack_unpacked_destroy(&o->up);
    free(buf);
}

static int str_eq(herd_pstr p, const char *s) { return p.ptr && p.len == strlen(s) && !memcmp(p.ptr, s, p.len); }

/* Unpack msg as op; free what a success returns. */
static int unpack_any(int op, const msgpack_object *m, herd_err *err)
{
    int rc = -1;
    switch (op) {
    case OP_HELLO: { herd_msg_hello x; if (!(rc = herd_proto_unpack_hello(m, &x, err))) herd_value_free(x.resources); break; }
    case OP_WELCOME: { herd_msg_welcome x; rc = herd_proto_unpack_welcome(m, &x, err); break; }
    case OP_REFUSE: { herd_msg_reason x; rc = herd_proto_unpack_refuse(m, &x, err); break; }
    case OP_CLOSE: { herd_msg_reason x; rc = herd_proto_unpack_close(m, &x, err); break; }
    case OP_RUN: {
        herd_msg_run x;
        if (!(rc = herd_proto_unpack_run(m, &x, err))) { herd_value_free(x.args); herd_value_free(x.tags); herd_value_free(x.inputs); }
        break;
    }
    case OP_PEER: { herd_msg_peer x; rc = herd_proto_unpack_peer(m, &x, err); break; }
    case OP_FREE: { herd_msg_key x; rc = herd_proto_unpack_free(m, &x, err); break; }
    case OP_GET: { herd_msg_key x; rc = herd_proto_unpack_get(m, &x, err); break; }
    case OP_GETFD: { herd_msg_key x; rc = herd_proto_unpack_getfd(m, &x, err); break; }
    case OP_MISSING: { herd_msg_missing x; rc = herd_proto_unpack_missing(m, &x, err); break; }
    case OP_DATA: { herd_msg_data x; rc = herd_proto_unpack_data(m, &x, err); break; }
    case OP_HELD: { herd_msg_held x; rc = herd_proto_unpack_held(m, &x, err); break; }
    case OP_PAUSE: { herd_msg_pause x; rc = herd_proto_unpack_pause(m, &x, err); break; }
    case OP_FETCH: { herd_msg_fetch x; rc = herd_proto_unpack_fetch(m, &x, err); break; }
    case OP_VALUE: { herd_msg_value x; rc = herd_proto_unpack_value(m, &x, err); break; }
    case OP_CHUNK: { herd_msg_chunk x; rc = herd_proto_unpack_chunk(m, &x, err); break; }
    case OP_MORE: { herd_msg_more x; rc = herd_proto_unpack_more(m, &x, err); break; }
    case OP_ACQUIRE: { herd_msg_acquire x; rc = herd_proto_unpack_acquire(m, &x, err); break; }
    case OP_ACQUIRED: { herd_msg_acquired x; rc = herd_proto_unpack_acquired(m, &x, err); break; }
    case OP_DONE: { herd_msg_done x; if (!(rc = herd_proto_unpack_done(m, &x, err))) herd_value_free(x.value); break; }
    case OP_LOG: { herd_msg_log x; rc = herd_proto_unpack_log(m, &x, err); break; }
    case OP_HEARTBEAT: { herd_msg_heartbeat x; rc = herd_proto_unpack_heartbeat(m, &x, err); break; }
    case OP_SECEDE: { herd_msg_key x; rc = herd_proto_unpack_secede(m, &x, err); break; }
    case OP_RELEASE: { herd_msg_key x; rc = herd_proto_unpack_release(m, &x, err); break; }
    case OP_CANCEL: { herd_msg_key x; rc = herd_proto_unpack_cancel(m, &x, err); break; }
    case OP_SUBMIT: {
        herd_submit_spec *x = calloc(1, sizeof *x);
        assert_non_null(x);
        rc = herd_proto_unpack_submit(m, x, err);
        herd_spec_free(x);
        break;
    }
    case OP_RESULT: { herd_msg_result x; if (!(rc = herd_proto_unpack_result(m, &x, err))) herd_value_free(x.value); break; }
    case OP_WORKERS: { herd_msg_workers x; rc = herd_proto_unpack_workers(m, &x, err); break; }
    case OP_STARTED: { herd_msg_started x; rc = herd_proto_unpack_started(m, &x, err); break; }
    case OP_CONTROL: { herd_msg_control x; rc = herd_proto_unpack_control(m, &x, err); break; }
    case OP_REPLY: {
        herd_msg_reply x;
        if (!(rc = herd_proto_unpack_reply(m, &x, err))) herd_sched_load_free(&x.load);
        break;
    }
    default: fail_msg("no opcode %d", op);
    }
    return rc;
}

/* Unpacking v as op fails, and the error holds each of the strings. */
static void refused(int op, herd_value *v, const char *want1, const char *want2)
{
    obj o;
    char *buf = NULL;
    herd_err err = { 0 };
    const msgpack_object *m = parse_value(&o, v, &buf);
    int rc = unpack_any(op, m, &err);
    if (rc != -HERD_EPROTO) fail_msg("%s: rc %d (expected -HERD_EPROTO), error \"%s\"", herd_proto_op_name(op), rc, err.msg);
    if (want1 && !strstr(err.msg, want1)) fail_msg("%s: error \"%s\" lacks \"%s\"", herd_proto_op_name(op), err.msg, want1);
    if (want2 && !strstr(err.msg, want2)) fail_msg("%s: error \"%s\" lacks \"%s\"", herd_proto_op_name(op), err.msg, want2);
    done(&o, buf);
}

static void accepted(int op, herd_value *v)
{
    obj o;
    char *buf = NULL;
    herd_err err = { 0 };
    const msgpack_object *m = parse_value(&o, v, &buf);
    if (unpack_any(op, m, &err)) fail_msg("%s refused: %s", herd_proto_op_name(op), err.msg);
    done(&o, buf);
}

/* msg with item i replaced by repl (taken); i == len appends; repl NULL drops item i. */
static herd_value *mutate(const herd_value *msg, size_t i, herd_value *repl)
{
    herd_value *out = herd_array();
    for (size_t k = 0; k < herd_len(msg); k++)
        herd_array_push(out, k == i ? repl : herd_value_copy(herd_at(msg, k)));
    if (i == herd_len(msg) && repl) herd_array_push(out, repl);
    if (!repl && i < herd_len(msg)) {       /* drop: rebuild without it */
        herd_value *d = herd_array();
        for (size_t k = 0; k < herd_len(msg); k++)
            if (k != i) herd_array_push(d, herd_value_copy(herd_at(msg, k)));
        herd_value_free(out);
        out = d;
    }
    return out;
}

static herd_value *nested(void) { herd_value *m = herd_map(); herd_map_set(m, "x", herd_tuple("i", 1)); return m; }

#define KEY ((int64_t)2 << 40 | 9)

/* A valid message of each opcode, its field names, and which fields take any value. */
typedef struct shape { int op; const char *fields[12]; unsigned anyvalue; } shape;

static herd_value *valid(int op)
{
    herd_value *res = herd_map();
    herd_map_set(res, "GPU", herd_int(2));
    switch (op) {
    case OP_HELLO: return herd_tuple("iiissivIs", OP_HELLO, HERD_PROTO_VERSION, ROLE_WORKER, "tok", "w-1", 2, res, (int64_t)42,
                                       "node-1");
    case OP_WELCOME: herd_value_free(res); return herd_tuple("iidiiii", OP_WELCOME, 7, 0.5, 1, 2, 1, HERD_DT_RELAY);
    case OP_REFUSE: herd_value_free(res); return herd_tuple("is", OP_REFUSE, "no");
    case OP_CLOSE: herd_value_free(res); return herd_tuple("is", OP_CLOSE, "bye");
    case OP_RUN: herd_value_free(res); return herd_tuple("iIsvisvvi", OP_RUN, KEY, "t_add", herd_tuple("ii", 1, 2), 1, "t_add-1", herd_tuple("s", "tag"),
                                                         herd_tuple("v", herd_tuple("Is", KEY, "unix:///tmp/p.sock")), 1);
    case OP_DONE: herd_value_free(res); return herd_tuple("iIisIiI", OP_DONE, KEY, 0, "boom", (int64_t)12, 0, (int64_t)-1);
    case OP_PEER: herd_value_free(res); return herd_tuple("is", OP_PEER, "unix:///tmp/p.sock");
    case OP_VALUE: herd_value_free(res); return herd_tuple("iIIn", OP_VALUE, KEY, (int64_t)300);
    case OP_FETCH: herd_value_free(res); return herd_tuple("iIII", OP_FETCH, KEY, (int64_t)5, (int64_t)4096);
    case OP_CHUNK: herd_value_free(res); return herd_tuple("iIv", OP_CHUNK, (int64_t)5, herd_bytes("abc", 3));
    case OP_MORE: herd_value_free(res); return herd_tuple("iII", OP_MORE, (int64_t)5, (int64_t)-1);
    case OP_FREE: case OP_GET: case OP_GETFD: herd_value_free(res); return herd_tuple("iI", op, KEY);
    case OP_MISSING: herd_value_free(res); return herd_tuple("iIiI", OP_MISSING, KEY, 0, KEY + 1);
    case OP_DATA: herd_value_free(res); return herd_tuple("iII", OP_DATA, KEY, (int64_t)300);
    case OP_HELD: herd_value_free(res); return herd_tuple("iIss", OP_HELD, KEY, "unix:///tmp/p.sock", "why");
    case OP_PAUSE: herd_value_free(res); return herd_tuple("ii", OP_PAUSE, 1);
    case OP_ACQUIRE: herd_value_free(res); return herd_tuple("iIsI", OP_ACQUIRE, KEY, "unix:///tmp/p.sock", (int64_t)4096);
    case OP_ACQUIRED: herd_value_free(res); return herd_tuple("iIIs", OP_ACQUIRED, KEY, (int64_t)-1, "no room");
    case OP_LOG: herd_value_free(res); return herd_tuple("iIis", OP_LOG, KEY, HERD_LOG_WARN, "text");
    case OP_HEARTBEAT: herd_value_free(res); return herd_tuple("idIII", OP_HEARTBEAT, 37.5, (int64_t)1 << 30, (int64_t)4096, (int64_t)0);
    case OP_SECEDE: case OP_RELEASE: case OP_CANCEL: herd_value_free(res); return herd_tuple("iI", op, KEY);
    case OP_SUBMIT: return herd_tuple("iIsvividds" "nvi", OP_SUBMIT, KEY, "t_add", herd_tuple("ii", 1, 2), 5, res, 2, 0.5, 10.0, "t_add-1",
                                      herd_tuple("s", "local-1"), 1);
    case OP_RESULT: herd_value_free(res); return herd_tuple("iIis", OP_RESULT, KEY, HERD_FAILED, "it failed");
    case OP_WORKERS: herd_value_free(res); return herd_tuple("iii", OP_WORKERS, 3, 6);
    case OP_STARTED: herd_value_free(res); return herd_tuple("iIi", OP_STARTED, KEY, 0);
    case OP_CONTROL: herd_value_free(res); return herd_tuple("iIss", OP_CONTROL, (int64_t)3, "drain", "w-1");
    case OP_REPLY: {
        herd_value_free(res);
        herd_value *w = herd_tuple("siiidI", "w-1", 2, 1, 0, 0.0, (int64_t)4096);
        herd_value *load = herd_tuple("iiiddvi", 0, 1, 2, 0.01, 0.03, herd_tuple("v", w), 1);
        return herd_tuple("iIiv", OP_REPLY, (int64_t)3, 0, load);
    }
    }
    herd_value_free(res);
    return NULL;
}

static const shape shapes[] = {
    { OP_HELLO, { "proto", "role", "token", "name", "nthreads", "resources", "pid", "host" }, 0 },
    { OP_WELCOME, { "id", "heartbeat_interval", "nworkers", "nthreads", "owned", "transfer" }, 0 },
    { OP_REFUSE, { "reason" }, 0 },
    { OP_CLOSE, { "reason" }, 0 },
    { OP_RUN, { "key", "task", "args", "attempt", "run_name", "tags", "inputs", "hold" }, 1u << 2 },
    { OP_DONE, { "key", "ok", "error", "duration_us", "attempt", "held" }, 0 },
    { OP_LOG, { "key", "level", "text" }, 0 },
    { OP_HEARTBEAT, { "cpu", "memory", "managed", "spilled" }, 0 },
    { OP_SECEDE, { "key" }, 0 },
    { OP_RELEASE, { "key" }, 0 },
    { OP_CANCEL, { "key" }, 0 },
    { OP_SUBMIT, { "key", "task", "args", "priority", "resources", "retries", "retry_delay", "timeout", "run_name",
                   "tags", "workers", "allow_other_workers" }, 1u << 2 },
    { OP_RESULT, { "key", "state", "error" }, 0 },
    { OP_WORKERS, { "nworkers", "nthreads" }, 0 },
    { OP_STARTED, { "key", "attempt" }, 0 },
    { OP_CONTROL, { "seq", "verb", "arg" }, 0 },
    { OP_REPLY, { "seq", "rc", "load" }, 1u << 2 },   /* load, text or nil: test_named_errors */
    { OP_PEER, { "address" }, 0 },
    { OP_FREE, { "key" }, 0 },
    { OP_GET, { "key" }, 0 },
    { OP_GETFD, { "key" }, 0 },
    { OP_MISSING, { "key", "attempt", "input" }, 0 },
    { OP_DATA, { "key", "nbytes" }, 0 },
    { OP_HELD, { "key", "peer", "error" }, 0 },
    { OP_PAUSE, { "paused" }, 0 },
    { OP_FETCH, { "key", "xfer", "credit" }, 0 },
    { OP_VALUE, { "id", "nbytes", "error" }, 0 },
    { OP_CHUNK, { "id", "bytes" }, 0 },
    { OP_MORE, { "xfer", "credit" }, 0 },
    { OP_ACQUIRE, { "key", "peer", "nbytes" }, 0 },
    { OP_ACQUIRED, { "key", "nbytes", "error" }, 0 },
};

/* Every opcode: the valid message passes; one field fewer or one more, any
 * field swapped for a nested map (or a str where a container belongs), or
 * the whole message given to another opcode's unpack, is refused by name. */
static void test_every_field_is_checked(void **state)
{
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        const shape *sh = &shapes[s];
        herd_value *v = valid(sh->op);
        size_t n = herd_len(v);
        char want[64];
        accepted(sh->op, herd_value_copy(v));
        snprintf(want, sizeof want, "%s: %zu fields, expected %zu", herd_proto_op_name(sh->op), n - 2, n - 1);
        if (n > 1) refused(sh->op, mutate(v, n - 1, NULL), want, NULL);          /* one missing */
        snprintf(want, sizeof want, "%s: %zu fields, expected %zu", herd_proto_op_name(sh->op), n, n - 1);
        refused(sh->op, mutate(v, n, herd_nil()), want, NULL);                     /* one extra */
        for (size_t f = 1; f < n; f++) {
            if (sh->anyvalue & (1u << (f - 1))) continue;
            snprintf(want, sizeof want, "%s: field '%s'", herd_proto_op_name(sh->op), sh->fields[f - 1]);
            int container = herd_typeof(herd_at(v, f)) == HERD_ARRAY || herd_typeof(herd_at(v, f)) == HERD_MAP;
            refused(sh->op, mutate(v, f, container ? herd_str("flat") : nested()), want, NULL);
        }
        /* the right shape under another opcode's unpack */
        int other = sh->op == OP_SUBMIT ? OP_RUN : OP_SUBMIT;
        refused(other, herd_value_copy(v), herd_proto_op_name(other), herd_proto_op_name(sh->op));
        herd_value_free(v);
    }
}

static void test_named_errors(void **state)
{
    herd_value *v = valid(OP_SUBMIT);
    refused(OP_SUBMIT, mutate(v, 4, herd_str("high")), "SUBMIT: field 'priority' is str, expected int", NULL);
    refused(OP_SUBMIT, mutate(v, 4, herd_int((int64_t)1 << 40)), "field 'priority' is 1099511627776", "-2147483648..");
    refused(OP_SUBMIT, mutate(v, 1, herd_int(-1)), "SUBMIT: field 'key' is -1", NULL);
    refused(OP_SUBMIT, mutate(v, 2, herd_str("")), "SUBMIT: field 'task' is a str of 0 bytes", NULL);
    refused(OP_SUBMIT, mutate(v, 2, herd_strn("a\0b", 3)), "field 'task' holds a NUL byte", NULL);
    refused(OP_SUBMIT, mutate(v, 6, herd_int(-1)), "SUBMIT: field 'retries' is -1", NULL);
    refused(OP_SUBMIT, mutate(v, 7, herd_float(-0.5)), "SUBMIT: field 'retry_delay' is -0.5", NULL);
    refused(OP_SUBMIT, mutate(v, 8, herd_float(INFINITY)), "SUBMIT: field 'timeout'", NULL);
    refused(OP_SUBMIT, mutate(v, 5, herd_tuple("i", 1)), "field 'resources' is array, expected a map or nil", NULL);
    herd_value *bad = herd_map();
    herd_map_set(bad, "GPU", herd_str("two"));
    refused(OP_SUBMIT, mutate(v, 5, bad), "field 'resources' item 0 is str", NULL);
    refused(OP_SUBMIT, mutate(v, 10, herd_tuple("si", "a", 3)), "field 'tags' item 1 is int, expected str", NULL);
    refused(OP_SUBMIT, mutate(v, 11, herd_tuple("ss", "a", "")), "SUBMIT: field 'workers' item 1 is not a name", NULL);
    refused(OP_SUBMIT, mutate(v, 12, herd_int(2)), "SUBMIT: field 'allow_other_workers' is 2, expected 0..1", NULL);
    accepted(OP_SUBMIT, mutate(v, 3, herd_futref(1)));      /* a dependency is a value like any */
    herd_value_free(v);

    v = valid(OP_HELLO);
    refused(OP_HELLO, mutate(v, 4, herd_str("")), "HELLO: field 'name' is a str of 0 bytes", NULL);
    refused(OP_HELLO, mutate(v, 1, herd_int(HERD_PROTO_VERSION + 1)), "protocol version", NULL);
    refused(OP_HELLO, mutate(v, 2, herd_int(3)), "HELLO: field 'role' is 3, expected 0..2", NULL);
    refused(OP_HELLO, mutate(v, 5, herd_int(0)), "HELLO: field 'nthreads' is 0, expected 1..65536", NULL);
    refused(OP_HELLO, mutate(v, 5, herd_int(70000)), "field 'nthreads' is 70000", NULL);
    refused(OP_HELLO, mutate(v, 7, herd_int(-5)), "HELLO: field 'pid' is -5", NULL);
    refused(OP_HELLO, mutate(v, 8, herd_strn("a\0b", 3)), "HELLO: field 'host' is a str of 3 bytes holding a NUL", NULL);
    char *longhost = malloc(HERD_PROTO_MAX_NAME + 2);
    memset(longhost, 'h', HERD_PROTO_MAX_NAME + 1);
    longhost[HERD_PROTO_MAX_NAME + 1] = '\0';
    refused(OP_HELLO, mutate(v, 8, herd_str(longhost)), "HELLO: field 'host' is a str of 1025 bytes, expected 0..1024", NULL);
    free(longhost);
    accepted(OP_HELLO, mutate(v, 8, herd_str("")));         /* host unknown: empty */
    herd_value *cl = mutate(v, 2, herd_int(ROLE_CLIENT));
    accepted(OP_HELLO, mutate(cl, 5, herd_int(0)));          /* a client has no threads */
    herd_value_free(cl);
    accepted(OP_HELLO, mutate(v, 3, herd_str("")));         /* no token: an empty one */
    herd_value_free(v);

    refused(OP_WELCOME, herd_tuple("iidiiii", OP_WELCOME, 0, 0.5, 1, 2, 1, 0), "WELCOME: field 'id' is 0", NULL);
    refused(OP_WELCOME, herd_tuple("iIdiiii", OP_WELCOME, (int64_t)1 << 24, 0.5, 1, 2, 1, 0), "field 'id' is 16777216", NULL);
    refused(OP_WELCOME, herd_tuple("iidiiii", OP_WELCOME, 3, 0.0, 1, 2, 1, 0), "field 'heartbeat_interval' is 0", NULL);
    refused(OP_WELCOME, herd_tuple("iidiiii", OP_WELCOME, 3, 1.0, -1, 2, 1, 0), "field 'nworkers' is -1", NULL);
    refused(OP_RUN, herd_tuple("iIsvisnni", OP_RUN, KEY, "t", herd_array(), -1, "t-1", 0), "RUN: field 'attempt' is -1", NULL);
    refused(OP_RUN, herd_tuple("iIsvisnvi", OP_RUN, KEY, "t", herd_array(), 0, "t-1", herd_tuple("v", herd_tuple("Ii", KEY, 3)), 0),
            "RUN: field 'inputs' item 0 is not [key int, peer str]", NULL);
    refused(OP_RUN, herd_tuple("iIsvisnni", OP_RUN, KEY, "t", herd_array(), 0, "t-1", 2), "RUN: field 'hold' is 2", NULL);
    refused(OP_DONE, herd_tuple("iIisIiI", OP_DONE, KEY, 2, "x", (int64_t)1, 0, (int64_t)-1), "DONE: field 'ok' is 2", NULL);
    refused(OP_DONE, herd_tuple("iIiiIiI", OP_DONE, KEY, 0, 5, (int64_t)1, 0, (int64_t)-1), "DONE: field 'error' is int", NULL);
    refused(OP_DONE, herd_tuple("iIisIiI", OP_DONE, KEY, 0, "x", (int64_t)-1, 0, (int64_t)-1), "field 'duration_us' is -1", NULL);
    refused(OP_DONE, herd_tuple("iIisIiI", OP_DONE, KEY, 0, "x", (int64_t)1, 0, (int64_t)5), "DONE: field 'held' is 5 for a failed task", NULL);
    refused(OP_DONE, herd_tuple("iIinIiI", OP_DONE, KEY, 1, (int64_t)1, 0, (int64_t)-2), "DONE: field 'held' is -2", NULL);
    accepted(OP_DONE, herd_tuple("iIinIiI", OP_DONE, KEY, 1, (int64_t)1, 0, (int64_t)4096));
    refused(OP_DATA, herd_tuple("iII", OP_DATA, KEY, (int64_t)-2), "DATA: field 'nbytes' is -2", NULL);
    refused(OP_WELCOME, herd_tuple("iidiiii", OP_WELCOME, 3, 1.0, 1, 2, 1, 4), "WELCOME: field 'transfer' is 4", NULL);
    accepted(OP_VALUE, herd_tuple("iIIs", OP_VALUE, KEY, (int64_t)-1, "the holder left"));   /* no value, and why */
    refused(OP_VALUE, herd_tuple("iIIn", OP_VALUE, KEY, (int64_t)0), "VALUE: field 'nbytes' is 0", NULL);
    refused(OP_VALUE, herd_tuple("iIIn", OP_VALUE, KEY, (int64_t)-1), "VALUE: nbytes -1 without an error", NULL);
    refused(OP_CHUNK, herd_tuple("iIv", OP_CHUNK, (int64_t)5, herd_bytes("", 0)), "CHUNK: field 'bytes' holds 0 bytes", NULL);
    {
        char *big = calloc(1, HERD_RELAY_CHUNK + 1);
        refused(OP_CHUNK, herd_tuple("iIv", OP_CHUNK, (int64_t)5, herd_bytes(big, HERD_RELAY_CHUNK + 1)),
                "CHUNK: field 'bytes' holds 1048577 bytes, expected 1..1048576", NULL);
        free(big);
    }
    refused(OP_MORE, herd_tuple("iII", OP_MORE, (int64_t)5, (int64_t)-2), "MORE: field 'credit' is -2", NULL);
    refused(OP_PEER, herd_tuple("is", OP_PEER, ""), "PEER: field 'address' is a str of 0 bytes", NULL);
    refused(OP_LOG, herd_tuple("iIis", OP_LOG, KEY, 9, "x"), "LOG: field 'level' is 9, expected 0..3", NULL);
    refused(OP_RESULT, herd_tuple("iIis", OP_RESULT, KEY, HERD_PENDING, "x"), "RESULT: field 'state' is 0", NULL);
    refused(OP_RESULT, herd_tuple("iIis", OP_RESULT, KEY, 99, "x"), "RESULT: field 'state' is 99", NULL);
    refused(OP_RESULT, herd_tuple("iIis", OP_RESULT, KEY, HERD_RUNNING, "x"), "RESULT: field 'payload' is str, expected nil", NULL);
    refused(OP_CONTROL, herd_tuple("iIss", OP_CONTROL, (int64_t)1, "", "x"), "CONTROL: field 'verb' is a str of 0 bytes", NULL);
    refused(OP_CONTROL, herd_tuple("iIvn", OP_CONTROL, (int64_t)1, herd_map()), "CONTROL: field 'verb' is map, expected str", NULL);
    refused(OP_REPLY, herd_tuple("iIis", OP_REPLY, (int64_t)1, 3, "x"), "REPLY: field 'rc' is 3", NULL);
    refused(OP_REPLY, herd_tuple("iIiv", OP_REPLY, (int64_t)1, 0, herd_tuple("iii", 1, 2, 3)), "REPLY: field 'load'", NULL);
    refused(OP_REPLY, herd_tuple("iIiv", OP_REPLY, (int64_t)1, 0, nested()), "REPLY: field 'load' is map", NULL);
    refused(OP_REPLY, herd_tuple("iIii", OP_REPLY, (int64_t)1, 0, 7), "REPLY: field 'load' is int", NULL);
    herd_value *w = herd_tuple("siiidI", "w-1", 2, -1, 0, 0.0, (int64_t)0);
    refused(OP_REPLY, herd_tuple("iIiv", OP_REPLY, (int64_t)1, 0, herd_tuple("iiiddvi", 0, 0, 0, 0.0, 0.0, herd_tuple("v", w), 0)),
            "REPLY: field 'load.workers.busy' is -1", NULL);
    refused(OP_REPLY, herd_tuple("iIiv", OP_REPLY, (int64_t)1, 0, herd_tuple("iiiddvi", 0, 0, 0, 0.0, 0.0, herd_tuple("i", 4), 0)),
            "field 'load.workers' item 0 is int", NULL);
    refused(OP_REPLY, herd_tuple("iIiv", OP_REPLY, (int64_t)1, 0, herd_tuple("iiiddvi", 0, 0, 0, 0.0, 0.0, herd_map(), -2)),
            "REPLY: field 'load.lifetime_retired' is -2", NULL);
}

static void test_not_a_message(void **state)
{
    herd_err err = { 0 };
    obj o;
    char *buf = NULL;
    const msgpack_object *m = parse_value(&o, herd_str("hello?"), &buf);
    assert_int_equal(herd_proto_op(m, &err), -HERD_EPROTO);
    assert_non_null(strstr(err.msg, "message is str"));
    done(&o, buf);
    m = parse_value(&o, herd_array(), &buf);
    assert_int_equal(herd_proto_op(m, &err), -HERD_EPROTO);
    assert_non_null(strstr(err.msg, "empty array"));
    done(&o, buf);
    m = parse_value(&o, herd_tuple("is", 99, "x"), &buf);
    assert_int_equal(herd_proto_op(m, &err), -HERD_EPROTO);
    assert_non_null(strstr(err.msg, "unknown opcode 99"));
    done(&o, buf);
    m = parse_value(&o, herd_tuple("i", -3), &buf);
    assert_int_equal(herd_proto_op(m, &err), -HERD_EPROTO);
    assert_non_null(strstr(err.msg, "unknown opcode -3"));
    done(&o, buf);
    m = parse_value(&o, herd_tuple("vi", herd_tuple("i", 1), 1), &buf);
    assert_int_equal(herd_proto_op(m, &err), -HERD_EPROTO);
    assert_non_null(strstr(err.msg, "opcode is array, expected int"));
    done(&o, buf);
    m = parse_value(&o, herd_tuple("i", OP_HEARTBEAT), &buf);
    assert_int_equal(herd_proto_op(m, &err), OP_HEARTBEAT);
    assert_string_equal(herd_proto_op_name(OP_HEARTBEAT), "HEARTBEAT");
    assert_string_equal(herd_proto_op_name(0), "?");
    done(&o, buf);
}

/* ---- round trips: pack a struct, unpack the bytes, compare ---- */
typedef struct packed { msgpack_sbuffer sb; obj o; } packed;

static const msgpack_object *reread(packed *p)
{
    return parse(&p->o, p->sb.data, p->sb.size);
}

static void test_round_trips(void **state)
{
    packed p;
    herd_err err = { 0 };
    msgpack_sbuffer_init(&p.sb);
#define AGAIN() do { msgpack_unpacked_destroy(&p.o.up); msgpack_sbuffer_clear(&p.sb); } while (0)

    herd_value *res = herd_map();
    herd_map_set(res, "GPU", herd_float(1.5));
    herd_msg_hello h = { HERD_PROTO_VERSION, ROLE_WORKER, herd_pstr_c(NULL), herd_pstr_c("w-9"), 3, res, 77,
                         herd_pstr_c("node-9") }, h2;
    assert_int_equal(herd_proto_pack_hello(&p.sb, &h), 0);
    assert_int_equal(herd_proto_unpack_hello(reread(&p), &h2, &err), 0);
    assert_int_equal(h2.role, ROLE_WORKER);
    assert_true(str_eq(h2.token, ""));                    /* no token travels as "" */
    assert_true(str_eq(h2.name, "w-9"));
    assert_int_equal(h2.nthreads, 3);
    assert_int_equal(h2.pid, 77);
    assert_true(str_eq(h2.host, "node-9"));
    assert_true(herd_value_equal(h2.resources, res));
    herd_value_free(h2.resources);
    AGAIN();

    herd_msg_welcome wm = { 12, 0.25, 4, 8, 1, HERD_DT_INLINE }, wm2;
    assert_int_equal(herd_proto_pack_welcome(&p.sb, &wm), 0);
    assert_int_equal(herd_proto_unpack_welcome(reread(&p), &wm2, &err), 0);
    assert_int_equal(wm2.id, 12);
    assert_true(wm2.heartbeat_interval == 0.25);
    assert_int_equal(wm2.nworkers, 4);
    assert_int_equal(wm2.nthreads, 8);
    assert_int_equal(wm2.owned, 1);
    assert_int_equal(wm2.transfer, HERD_DT_INLINE);
    AGAIN();

    /* the relay: FETCH, VALUE (a header or why not), CHUNK, MORE */
    herd_msg_fetch fm = { 77, 5, 4096 }, fm2;
    assert_int_equal(herd_proto_pack_fetch(&p.sb, &fm), 0);
    assert_int_equal(herd_proto_unpack_fetch(reread(&p), &fm2, &err), 0);
    assert_true(fm2.key == 77 && fm2.xfer == 5 && fm2.credit == 4096);
    AGAIN();
    herd_msg_value vm = { .id = 77, .nbytes = 123 }, vm2;
    assert_int_equal(herd_proto_pack_value(&p.sb, &vm), 0);
    assert_int_equal(herd_proto_unpack_value(reread(&p), &vm2, &err), 0);
    assert_true(vm2.id == 77 && vm2.nbytes == 123 && !vm2.error.ptr);
    AGAIN();
    vm = (herd_msg_value){ .id = 79, .nbytes = -1, .error = herd_pstr_c("gone") };
    assert_int_equal(herd_proto_pack_value(&p.sb, &vm), 0);
    assert_int_equal(herd_proto_unpack_value(reread(&p), &vm2, &err), 0);
    assert_true(vm2.id == 79 && vm2.nbytes == -1 && str_eq(vm2.error, "gone"));
    AGAIN();
    struct iovec parts[2] = { { "abc", 3 }, { "de", 2 } };
    herd_msg_chunk cm = { .id = 9, .parts = parts, .nparts = 2 }, cm2;
    assert_int_equal(herd_proto_pack_chunk(&p.sb, &cm), 0);
    assert_int_equal(herd_proto_unpack_chunk(reread(&p), &cm2, &err), 0);
    assert_true(cm2.id == 9 && str_eq(cm2.bytes, "abcde"));
    AGAIN();
    herd_msg_more mm = { 9, -1 }, mm2;
    assert_int_equal(herd_proto_pack_more(&p.sb, &mm), 0);
    assert_int_equal(herd_proto_unpack_more(reread(&p), &mm2, &err), 0);
    assert_true(mm2.xfer == 9 && mm2.credit == -1);
    AGAIN();

    herd_msg_reason r = { herd_pstr_c("") }, r2;           /* an empty str: msgpack-c gives it no pointer */
    assert_int_equal(herd_proto_pack_refuse(&p.sb, &r), 0);
    const msgpack_object *rm = reread(&p);
    assert_int_equal(herd_proto_unpack_refuse(rm, &r2, &err), 0);
    assert_non_null(r2.reason.ptr);
    assert_int_equal(r2.reason.len, 0);
    char *dup = herd_pstr_dup(r2.reason);
    assert_string_equal(dup, "");
    free(dup);
    dup = herd_obj_strdup(&rm->via.array.ptr[1]);   /* the old helper too: no strndup(NULL, 0) */
    assert_string_equal(dup, "");
    free(dup);
    AGAIN();
    r.reason = herd_pstr_c("retired");
    assert_int_equal(herd_proto_pack_close(&p.sb, &r), 0);
    assert_int_equal(herd_proto_unpack_close(reread(&p), &r2, &err), 0);
    assert_true(str_eq(r2.reason, "retired"));
    AGAIN();

    herd_value *args = herd_tuple("isv", 1, "two", herd_futref(KEY)), *tags = herd_tuple("ss", "a", "b");
    herd_msg_run run = { KEY, herd_pstr_c("t_add"), args, 2, herd_pstr_c("t_add-4"), tags }, run2;
    assert_int_equal(herd_proto_pack_run(&p.sb, &run), 0);
    assert_int_equal(herd_proto_unpack_run(reread(&p), &run2, &err), 0);
    assert_true(run2.key == (uint64_t)KEY);
    assert_true(str_eq(run2.task, "t_add"));
    assert_true(str_eq(run2.run_name, "t_add-4"));
    assert_int_equal(run2.attempt, 2);
    assert_true(herd_value_equal(run2.args, args));
    assert_true(herd_value_equal(run2.tags, tags));
    herd_value_free(run2.args);
    herd_value_free(run2.tags);
    AGAIN();

    herd_msg_done d = { KEY, 1, args, { NULL, 0 }, 1234, 1 }, d2;
    assert_int_equal(herd_proto_pack_done(&p.sb, &d), 0);
    assert_int_equal(herd_proto_unpack_done(reread(&p), &d2, &err), 0);
    assert_int_equal(d2.ok, 1);
    assert_true(herd_value_equal(d2.value, args));
    assert_true(d2.duration_us == 1234);
    assert_int_equal(d2.attempt, 1);
    herd_value_free(d2.value);
    AGAIN();
    d.ok = 0;
    d.error = herd_pstr_c("boom");
    assert_int_equal(herd_proto_pack_done(&p.sb, &d), 0);
    assert_int_equal(herd_proto_unpack_done(reread(&p), &d2, &err), 0);
    assert_int_equal(d2.ok, 0);
    assert_null(d2.value);
    assert_true(str_eq(d2.error, "boom"));
    AGAIN();

    herd_msg_log lg = { KEY, HERD_LOG_ERROR, herd_pstr_c("a line") }, lg2;
    assert_int_equal(herd_proto_pack_log(&p.sb, &lg), 0);
    assert_int_equal(herd_proto_unpack_log(reread(&p), &lg2, &err), 0);
    assert_int_equal(lg2.level, HERD_LOG_ERROR);
    assert_true(str_eq(lg2.text, "a line"));
    AGAIN();

    herd_msg_heartbeat hb = { 12.5, 1 << 20, 4096, INT64_MAX }, hb2;
    assert_int_equal(herd_proto_pack_heartbeat(&p.sb, &hb), 0);
    assert_int_equal(herd_proto_unpack_heartbeat(reread(&p), &hb2, &err), 0);
    assert_true(hb2.cpu == 12.5);
    assert_int_equal(hb2.memory, 1 << 20);
    assert_int_equal(hb2.managed, 4096);
    assert_true(hb2.spilled == INT64_MAX);
    AGAIN();
    hb = (herd_msg_heartbeat){ -1, -1, 0, 0 };          /* unknown CPU and memory travel as -1 */
    assert_int_equal(herd_proto_pack_heartbeat(&p.sb, &hb), 0);
    assert_int_equal(herd_proto_unpack_heartbeat(reread(&p), &hb2, &err), 0);
    assert_true(hb2.cpu == -1);
    assert_int_equal(hb2.memory, -1);
    AGAIN();

    herd_msg_key k = { UINT64_MAX }, k2;
    assert_int_equal(herd_proto_pack_secede(&p.sb, &k), 0);
    assert_int_equal(herd_proto_unpack_secede(reread(&p), &k2, &err), 0);
    assert_true(k2.key == UINT64_MAX);
    AGAIN();
    herd_submit_spec rel = { .op = OP_RELEASE, .key = KEY }, can = { .op = OP_CANCEL, .key = KEY + 1 };
    assert_int_equal(herd_proto_pack_spec(&p.sb, &rel), 0);
    assert_int_equal(herd_proto_unpack_release(reread(&p), &k2, &err), 0);
    assert_true(k2.key == (uint64_t)KEY);
    AGAIN();
    assert_int_equal(herd_proto_pack_spec(&p.sb, &can), 0);
    assert_int_equal(herd_proto_unpack_cancel(reread(&p), &k2, &err), 0);
    assert_true(k2.key == (uint64_t)KEY + 1);
    AGAIN();

    herd_submit_spec sub = { .op = OP_SUBMIT, .key = KEY, .task = "t_add", .run_name = NULL, .args = args,
                             .priority = -7, .resources = res, .tags = tags, .retries = 3, .retry_delay = 0.5,
                             .timeout = 2 }, sub2;
    assert_int_equal(herd_proto_pack_spec(&p.sb, &sub), 0);
    assert_int_equal(herd_proto_unpack_submit(reread(&p), &sub2, &err), 0);
    assert_int_equal(sub2.op, OP_SUBMIT);
    assert_true(sub2.key == (uint64_t)KEY);
    assert_string_equal(sub2.task, "t_add");
    assert_null(sub2.run_name);                           /* nil stays absent */
    assert_int_equal(sub2.priority, -7);
    assert_int_equal(sub2.retries, 3);
    assert_true(sub2.retry_delay == 0.5 && sub2.timeout == 2);
    assert_true(herd_value_equal(sub2.args, args));
    assert_true(herd_value_equal(sub2.resources, res));
    assert_true(herd_value_equal(sub2.tags, tags));
    free(sub2.task);
    herd_value_free(sub2.args);
    herd_value_free(sub2.resources);
    herd_value_free(sub2.tags);
    AGAIN();

    herd_msg_result rs = { KEY, HERD_COMPLETED, args, { NULL, 0 } }, rs2;
    assert_int_equal(herd_proto_pack_result(&p.sb, &rs), 0);
    assert_int_equal(herd_proto_unpack_result(reread(&p), &rs2, &err), 0);
    assert_int_equal(rs2.state, HERD_COMPLETED);
    assert_true(herd_value_equal(rs2.value, args));
    herd_value_free(rs2.value);
    AGAIN();
    rs.state = HERD_RUNNING;
    assert_int_equal(herd_proto_pack_result(&p.sb, &rs), 0);
    assert_int_equal(herd_proto_unpack_result(reread(&p), &rs2, &err), 0);
    assert_int_equal(rs2.state, HERD_RUNNING);
    assert_null(rs2.value);
    assert_null(rs2.error.ptr);
    AGAIN();
    rs.state = HERD_CANCELLED;
    rs.error = herd_pstr_c("by the client");
    assert_int_equal(herd_proto_pack_result(&p.sb, &rs), 0);
    assert_int_equal(herd_proto_unpack_result(reread(&p), &rs2, &err), 0);
    assert_true(str_eq(rs2.error, "by the client"));
    AGAIN();

    herd_msg_workers wk = { 5, 10 }, wk2;
    assert_int_equal(herd_proto_pack_workers(&p.sb, &wk), 0);
    assert_int_equal(herd_proto_unpack_workers(reread(&p), &wk2, &err), 0);
    assert_int_equal(wk2.nworkers, 5);
    assert_int_equal(wk2.nthreads, 10);
    AGAIN();

    herd_msg_started st = { KEY, 4 }, st2;
    assert_int_equal(herd_proto_pack_started(&p.sb, &st), 0);
    assert_int_equal(herd_proto_unpack_started(reread(&p), &st2, &err), 0);
    assert_true(st2.key == (uint64_t)KEY);
    assert_int_equal(st2.attempt, 4);
    AGAIN();

    for (int v = 0; v <= 1; v++) {
        herd_msg_pause pz = { v }, pz2;
        assert_int_equal(herd_proto_pack_pause(&p.sb, &pz), 0);
        assert_int_equal(herd_proto_unpack_pause(reread(&p), &pz2, &err), 0);
        assert_int_equal(pz2.paused, v);
        AGAIN();
    }

    herd_msg_control c = { 9, herd_pstr_c("load"), herd_pstr_c(NULL) }, c2;
    assert_int_equal(herd_proto_pack_control(&p.sb, &c), 0);
    assert_int_equal(herd_proto_unpack_control(reread(&p), &c2, &err), 0);
    assert_true(c2.seq == 9);
    assert_true(str_eq(c2.verb, "load"));
    assert_null(c2.arg.ptr);
    AGAIN();

    herd_sched_wload ws[2] = { { "w-0", 2, 1, 0, 0, 0 }, { "w-1", 4, 0, 1, 3.5, 1 << 20 } };
    herd_msg_reply rp = { .seq = 9, .has_load = 1,
                          .load = { 1, 2, 3, 0.004, 0.02, ws, 2, 5 } }, rp2;
    assert_int_equal(herd_proto_pack_reply(&p.sb, &rp), 0);
    assert_int_equal(herd_proto_unpack_reply(reread(&p), &rp2, &err), 0);
    assert_int_equal(rp2.rc, 0);
    assert_int_equal(rp2.has_load, 1);
    assert_int_equal(rp2.load.waiting, 1);
    assert_int_equal(rp2.load.ready, 2);
    assert_int_equal(rp2.load.running, 3);
    assert_true(rp2.load.avg_duration == 0.004 && rp2.load.task_seconds == 0.02);
    assert_int_equal(rp2.load.nworkers, 2);
    assert_string_equal(rp2.load.workers[1].name, "w-1");
    assert_int_equal(rp2.load.workers[1].nthreads, 4);
    assert_int_equal(rp2.load.workers[1].closing, 1);
    assert_true(rp2.load.workers[1].idle_for == 3.5);
    assert_int_equal(rp2.load.workers[1].needed_bytes, 1 << 20);
    assert_int_equal(rp2.load.lifetime_retired, 5);
    herd_sched_load_free(&rp2.load);
    AGAIN();

    herd_msg_acquire aq = { KEY, herd_pstr_c("unix:///tmp/p.sock"), 1 << 20 }, aq2;
    assert_int_equal(herd_proto_pack_acquire(&p.sb, &aq), 0);
    assert_int_equal(herd_proto_unpack_acquire(reread(&p), &aq2, &err), 0);
    assert_true(aq2.key == KEY && aq2.nbytes == 1 << 20 && aq2.peer.len == 18 && !memcmp(aq2.peer.ptr, "unix:///tmp/p.sock", 18));
    AGAIN();
    herd_msg_acquired ad = { KEY, -1, herd_pstr_c("no room") }, ad2;
    assert_int_equal(herd_proto_pack_acquired(&p.sb, &ad), 0);
    assert_int_equal(herd_proto_unpack_acquired(reread(&p), &ad2, &err), 0);
    assert_true(ad2.key == KEY && ad2.nbytes == -1 && ad2.error.len == 7);
    AGAIN();
    herd_msg_reply re = { .seq = 10, .rc = -HERD_EARG, .error = herd_pstr_c("no such worker") };
    assert_int_equal(herd_proto_pack_reply(&p.sb, &re), 0);
    assert_int_equal(herd_proto_unpack_reply(reread(&p), &rp2, &err), 0);
    assert_int_equal(rp2.rc, -HERD_EARG);
    assert_int_equal(rp2.has_load, 0);
    assert_true(str_eq(rp2.error, "no such worker"));
    AGAIN();
    herd_msg_reply rt = { .seq = 11, .text = herd_pstr_c("http 0.0.0.0 8787 -") };   /* "dashboard" */
    assert_int_equal(herd_proto_pack_reply(&p.sb, &rt), 0);
    assert_int_equal(herd_proto_unpack_reply(reread(&p), &rp2, &err), 0);
    assert_int_equal(rp2.rc, 0);
    assert_int_equal(rp2.has_load, 0);
    assert_true(str_eq(rp2.text, "http 0.0.0.0 8787 -"));
    AGAIN();

    herd_value_free(args);
    herd_value_free(tags);
    herd_value_free(res);
    msgpack_sbuffer_destroy(&p.sb);
}

/* A value that cannot travel (too deep) leaves the buffer as it was: the
 * caller can send something else in its place. */
static void test_pack_failure_writes_nothing(void **state)
{
    herd_value *deep = herd_int(1);
    for (int i = 0; i < HERD_VALUE_WIRE_DEPTH + 1; i++) deep = herd_tuple("v", deep);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    herd_msg_heartbeat hb = { -1, -1, 0, 0 };
    assert_int_equal(herd_proto_pack_heartbeat(&sb, &hb), 0);
    size_t before = sb.size;
    herd_msg_done d = { KEY, 1, deep, { NULL, 0 }, 1, 0 };
    assert_int_equal(herd_proto_pack_done(&sb, &d), -HERD_EARG);
    assert_int_equal(sb.size, before);
    herd_msg_run run = { KEY, herd_pstr_c("t"), deep, 0, herd_pstr_c("t-1"), NULL };
    assert_int_equal(herd_proto_pack_run(&sb, &run), -HERD_EARG);
    herd_msg_result rs = { KEY, HERD_COMPLETED, deep, { NULL, 0 } };
    assert_int_equal(herd_proto_pack_result(&sb, &rs), -HERD_EARG);
    herd_submit_spec sub = { .op = OP_SUBMIT, .key = KEY, .task = "t", .args = deep };
    assert_int_equal(herd_proto_pack_submit(&sb, &sub), -HERD_EARG);
    assert_int_equal(sb.size, before);
    d.ok = 0;
    d.error = herd_pstr_c("too deep");
    assert_int_equal(herd_proto_pack_done(&sb, &d), 0);
    assert_true(sb.size > before);
    herd_value_free(deep);
    msgpack_sbuffer_destroy(&sb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trips),
        cmocka_unit_test(test_every_field_is_checked),
        cmocka_unit_test(test_named_errors),
        cmocka_unit_test(test_not_a_message),
        cmocka_unit_test(test_pack_failure_writes_nothing),
    };
    return cmocka_run_group_tests_name("wire protocol (core/proto.c)", tests, NULL, NULL);
}
