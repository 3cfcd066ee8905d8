/* core/proto.c — the wire protocol's base (proto.h): strings as sent, the
 * opcodes' names, a message's fields read with checks (the first bad one
 * named with its opcode) and written, and the messages that carry one key
 * (proto_int.h). The messages are proto_msg.c's (control) and
 * proto_data.c's (data plane). */
#include "proto_int.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

herd_pstr herd_pstr_c(const char *s)
{
    herd_pstr p = { s, s ? strlen(s) : 0 };
    return p;
}

char *herd_pstr_dup(herd_pstr s)
{
    if (!s.ptr) return NULL;
    char *c = malloc(s.len + 1);
    if (!c) return NULL;
    memcpy(c, s.ptr, s.len);
    c[s.len] = '\0';
    return c;
}

static const char *const op_names[OP_MAX] = {
    [OP_HELLO] = "HELLO", [OP_WELCOME] = "WELCOME", [OP_REFUSE] = "REFUSE", [OP_RUN] = "RUN",
    [OP_DONE] = "DONE", [OP_LOG] = "LOG", [OP_HEARTBEAT] = "HEARTBEAT", [OP_SECEDE] = "SECEDE",
    [OP_SUBMIT] = "SUBMIT", [OP_RELEASE] = "RELEASE", [OP_CANCEL] = "CANCEL", [OP_RESULT] = "RESULT",
    [OP_CLOSE] = "CLOSE", [OP_WORKERS] = "WORKERS", [OP_STARTED] = "STARTED", [OP_CONTROL] = "CONTROL",
    [OP_REPLY] = "REPLY", [OP_PEER] = "PEER", [OP_FREE] = "FREE", [OP_MISSING] = "MISSING", [OP_GET] = "GET",
    [OP_DATA] = "DATA", [OP_HELD] = "HELD", [OP_PAUSE] = "PAUSE", [OP_FETCH] = "FETCH", [OP_VALUE] = "VALUE",
    [OP_GETFD] = "GETFD", [OP_ACQUIRE] = "ACQUIRE", [OP_ACQUIRED] = "ACQUIRED", [OP_CHUNK] = "CHUNK",
    [OP_MORE] = "MORE",
};

const char *herd_proto_op_name(int op) { return op > 0 && op < OP_MAX ? op_names[op] : "?"; }

int herd_proto_op(const msgpack_object *m, herd_err *err)
{
    if (m->type != MSGPACK_OBJECT_ARRAY || m->via.array.size < 1)
        return herd_err_set(err, -HERD_EPROTO, "message is %s, expected an array [opcode, …]",
                            m->type == MSGPACK_OBJECT_ARRAY ? "an empty array" : herd_msgpack_type_name(m->type));
    const msgpack_object *o = &m->via.array.ptr[0];
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 == 0 || o->via.u64 >= OP_MAX) {
        if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER || o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
            return herd_err_set(err, -HERD_EPROTO, "unknown opcode %" PRId64 " (expected 1..%d)",
                                o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER ? o->via.i64 : (int64_t)o->via.u64,
                                OP_MAX - 1);
        return herd_err_set(err, -HERD_EPROTO, "the message's opcode is %s, expected int",
                            herd_msgpack_type_name(o->type));
    }
    return (int)o->via.u64;
}

/* ---- reading fields ---- */

/* Check msg is op with exactly n items (opcode included). */
int rd_open(rd *r, const msgpack_object *m, int op, uint32_t n, herd_err *err)
{
    r->op = op;
    r->err = err;
    int got = herd_proto_op(m, NULL);
    if (got < 0) {
        herd_err e;        /* not zeroed on the hot path: 1 KiB per message */
        herd_proto_op(m, &e);
        return herd_err_set(err, -HERD_EPROTO, "%s: %s", op_names[op], e.msg);
    }
    if (got != op) return herd_err_set(err, -HERD_EPROTO, "%s: the message is a %s", op_names[op], op_names[got]);
    if (m->via.array.size != n)
        return herd_err_set(err, -HERD_EPROTO, "%s: %u fields, expected %u", op_names[op],
                            (unsigned)m->via.array.size - 1, (unsigned)n - 1);
    r->a = m->via.array.ptr;
    return 0;
}

int bad_type(rd *r, const char *field, const msgpack_object *o, const char *expected)
{
    return herd_err_set(r->err, -HERD_EPROTO, "%s: field '%s' is %s, expected %s", op_names[r->op], field,
                        herd_msgpack_type_name(o->type), expected);
}

/* An integer in lo..hi. */
int rd_int(rd *r, int i, const char *field, int64_t lo, int64_t hi, int64_t *out)
{
    const msgpack_object *o = &r->a[i];
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        if (o->via.u64 > (uint64_t)INT64_MAX || (int64_t)o->via.u64 > hi || (int64_t)o->via.u64 < lo)
            return herd_err_set(r->err, -HERD_EPROTO, "%s: field '%s' is %" PRIu64 ", expected %" PRId64 "..%" PRId64,
                                op_names[r->op], field, o->via.u64, lo, hi);
        *out = (int64_t)o->via.u64;
        return 0;
    }
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        if (o->via.i64 < lo || o->via.i64 > hi)
            return herd_err_set(r->err, -HERD_EPROTO, "%s: field '%s' is %" PRId64 ", expected %" PRId64 "..%" PRId64,
                                op_names[r->op], field, o->via.i64, lo, hi);
        *out = o->via.i64;
        return 0;
    }
    return bad_type(r, field, o, "int");
}

int rd_i32(rd *r, int i, const char *field, int64_t lo, int64_t hi, int *out)
{
    int64_t v = 0;
    int rc = rd_int(r, i, field, lo, hi, &v);
    if (!rc) *out = (int)v;
    return rc;
}

/* A key or sequence number: any unsigned 64-bit integer. */
int rd_u64(rd *r, int i, const char *field, uint64_t *out)
{
    const msgpack_object *o = &r->a[i];
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) { *out = o->via.u64; return 0; }
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        return herd_err_set(r->err, -HERD_EPROTO, "%s: field '%s' is %" PRId64 ", expected 0..2^64-1",
                            op_names[r->op], field, o->via.i64);
    return bad_type(r, field, o, "int");
}

/* A finite number in lo..hi (int or float). */
int rd_num(rd *r, int i, const char *field, double lo, double hi, double *out)
{
    const msgpack_object *o = &r->a[i];
    double v;
    if (o->type == MSGPACK_OBJECT_FLOAT32 || o->type == MSGPACK_OBJECT_FLOAT64) v = o->via.f64;
    else if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) v = (double)o->via.u64;
    else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) v = (double)o->via.i64;
    else return bad_type(r, field, o, "a number");
    if (!isfinite(v) || v < lo || v > hi)
        return herd_err_set(r->err, -HERD_EPROTO, "%s: field '%s' is %g, expected %g..%g", op_names[r->op], field,
                            v, lo, hi);
    *out = v;
    return 0;
}

int rd_str(rd *r, int i, const char *field, int flags, herd_pstr *out)
{
    const msgpack_object *o = &r->a[i];
    if (o->type == MSGPACK_OBJECT_NIL && (flags & S_NIL)) { out->ptr = NULL; out->len = 0; return 0; }
    if (o->type != MSGPACK_OBJECT_STR) return bad_type(r, field, o, flags & S_NIL ? "str or nil" : "str");
    size_t n = o->via.str.size;
    if (flags & S_NAME) {
        if (n == 0 || n > HERD_PROTO_MAX_NAME)
            return herd_err_set(r->err, -HERD_EPROTO, "%s: field '%s' is a str of %zu bytes, expected 1..%d",
                                op_names[r->op], field, n, HERD_PROTO_MAX_NAME);
        if (memchr(o->via.str.ptr, '\0', n))
            return herd_err_set(r->err, -HERD_EPROTO, "%s: field '%s' holds a NUL byte", op_names[r->op], field);
    }
    out->ptr = n ? o->via.str.ptr : "";       /* msgpack-c gives an empty str a NULL ptr */
    out->len = n;
    return 0;
}

int rd_value(rd *r, int i, const char *field, herd_value **out)
{
    herd_err e;            /* set when it fails (not zeroed: 1 KiB per value) */
    if (herd_value_from_msgpack(&r->a[i], out, &e))
        return herd_err_set(r->err, -HERD_EPROTO, "%s: field '%s': %s", op_names[r->op], field, e.msg);
    return 0;
}

/* nil (NULL), or a map of name -> number >= 0. */
int rd_resources(rd *r, int i, const char *field, herd_value **out)
{
    const msgpack_object *o = &r->a[i];
    *out = NULL;
    if (o->type == MSGPACK_OBJECT_NIL) return 0;
    if (o->type != MSGPACK_OBJECT_MAP) return bad_type(r, field, o, "a map or nil");
    for (uint32_t k = 0; k < o->via.map.size; k++) {
        const msgpack_object *v = &o->via.map.ptr[k].val;
        double d = v->type == MSGPACK_OBJECT_FLOAT32 || v->type == MSGPACK_OBJECT_FLOAT64 ? v->via.f64
                 : v->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? (double)v->via.u64 : -1;
        if (!(d >= 0) || !isfinite(d))
            return herd_err_set(r->err, -HERD_EPROTO, "%s: field '%s' item %u is %s, expected a number >= 0",
                                op_names[r->op], field, (unsigned)k, herd_msgpack_type_name(v->type));
    }
    return rd_value(r, i, field, out);      /* checks the keys */
}

/* nil (NULL), or an array of str. */
int rd_tags(rd *r, int i, const char *field, herd_value **out)
{
    const msgpack_object *o = &r->a[i];
    *out = NULL;
    if (o->type == MSGPACK_OBJECT_NIL) return 0;
    if (o->type != MSGPACK_OBJECT_ARRAY) return bad_type(r, field, o, "an array of str or nil");
    for (uint32_t k = 0; k < o->via.array.size; k++)
        if (o->via.array.ptr[k].type != MSGPACK_OBJECT_STR)
            return herd_err_set(r->err, -HERD_EPROTO, "%s: field '%s' item %u is %s, expected str", op_names[r->op],
                                field, (unsigned)k, herd_msgpack_type_name(o->via.array.ptr[k].type));
    return rd_value(r, i, field, out);
}

/* nil, or an array of names (SUBMIT's workers). */
int rd_names(rd *r, int i, const char *field)
{
    const msgpack_object *o = &r->a[i];
    if (o->type == MSGPACK_OBJECT_NIL) return 0;
    if (o->type != MSGPACK_OBJECT_ARRAY) return bad_type(r, field, o, "an array of names or nil");
    for (uint32_t k = 0; k < o->via.array.size; k++) {
        const msgpack_object *it = &o->via.array.ptr[k];
        if (it->type != MSGPACK_OBJECT_STR || it->via.str.size == 0 || it->via.str.size > HERD_PROTO_MAX_NAME ||
            memchr(it->via.str.ptr, '\0', it->via.str.size))
            return herd_err_set(r->err, -HERD_EPROTO, "%s: field '%s' item %u is not a name (str of 1..%d bytes)",
                                op_names[r->op], field, (unsigned)k, HERD_PROTO_MAX_NAME);
    }
    return 0;
}

/* nil, or an array of [key int, peer str] (RUN's inputs). */
int rd_inputs(rd *r, int i, const char *field)
{
    const msgpack_object *o = &r->a[i];
    if (o->type == MSGPACK_OBJECT_NIL) return 0;
    if (o->type != MSGPACK_OBJECT_ARRAY) return bad_type(r, field, o, "an array of [key, peer] or nil");
    for (uint32_t k = 0; k < o->via.array.size; k++) {
        const msgpack_object *it = &o->via.array.ptr[k];
        if (it->type != MSGPACK_OBJECT_ARRAY || it->via.array.size != 2 ||
            (it->via.array.ptr[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER &&         /* a key over 2^63 */
             it->via.array.ptr[0].type != MSGPACK_OBJECT_NEGATIVE_INTEGER) ||      /* is a negative int */
            it->via.array.ptr[1].type != MSGPACK_OBJECT_STR ||
            it->via.array.ptr[1].via.str.size == 0 || it->via.array.ptr[1].via.str.size > HERD_PROTO_MAX_NAME)
            return herd_err_set(r->err, -HERD_EPROTO, "%s: field '%s' item %u is not [key int, peer str]",
                                op_names[r->op], field, (unsigned)k);
    }
    return 0;
}

/* ---- writing ---- */

msgpack_packer *wr_open(wr *w, msgpack_sbuffer *sb, int op, uint32_t n)
{
    w->sb = sb;
    w->mark = sb->size;
    msgpack_packer_init(&w->pk, sb, msgpack_sbuffer_write);
    msgpack_pack_array(&w->pk, n);
    msgpack_pack_int(&w->pk, op);
    return &w->pk;
}

/* rc of a value that could not be packed: take the message back out. */
int wr_close(wr *w, int rc)
{
    if (rc) w->sb->size = w->mark;
    return rc;
}

void pk_str(msgpack_packer *pk, herd_pstr s)
{
    if (!s.ptr) { msgpack_pack_nil(pk); return; }
    msgpack_pack_str(pk, s.len);
    msgpack_pack_str_body(pk, s.ptr, s.len);
}

int pk_value(msgpack_packer *pk, const herd_value *v)
{
    if (!v) return msgpack_pack_nil(pk) ? -ENOMEM : 0;
    return herd_value_pack(pk, v);
}

void herd_pack_str(msgpack_packer *pk, const char *s) { pk_str(pk, herd_pstr_c(s)); }

char *herd_obj_strdup(const msgpack_object *o)
{
    if (o->type != MSGPACK_OBJECT_STR) return NULL;
    herd_pstr p = { o->via.str.size ? o->via.str.ptr : "", o->via.str.size };
    return herd_pstr_dup(p);
}

int pack_key(msgpack_sbuffer *sb, int op, const herd_msg_key *m)
{
    wr w;
    msgpack_pack_uint64(wr_open(&w, sb, op, 2), m->key);
    return wr_close(&w, 0);
}

int unpack_key(const msgpack_object *msg, int op, herd_msg_key *out, herd_err *err)
{
    rd r;
    int rc;
    memset(out, 0, sizeof *out);
    if ((rc = rd_open(&r, msg, op, 2, err)) || (rc = rd_u64(&r, 1, "key", &out->key))) return rc;
    return 0;
}
