/* core/proto_data.c — the data plane's messages: PEER, FREE, GET, GETFD,
 * MISSING, DATA, HELD, PAUSE, the relay's FETCH, VALUE, CHUNK and MORE, ACQUIRE and
 * ACQUIRED (layouts in proto.h; the
 * control messages are proto_msg.c's). */
#include "proto_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

/* ---- PEER ---- */
int herd_proto_pack_peer(msgpack_sbuffer *sb, const herd_msg_peer *m)
{
    wr w;
    pk_str(wr_open(&w, sb, OP_PEER, 2), m->address.ptr ? m->address : herd_pstr_c(""));
    return wr_close(&w, 0);
}

int herd_proto_unpack_peer(const msgpack_object *msg, herd_msg_peer *out, herd_err *err)
{
    rd r;
    int rc;
    memset(out, 0, sizeof *out);
    if ((rc = rd_open(&r, msg, OP_PEER, 2, err)) || (rc = rd_str(&r, 1, "address", S_NAME, &out->address))) return rc;
    return 0;
}

/* ---- FREE, GET ---- */
int herd_proto_pack_free(msgpack_sbuffer *sb, const herd_msg_key *m) { return pack_key(sb, OP_FREE, m); }
int herd_proto_unpack_free(const msgpack_object *msg, herd_msg_key *out, herd_err *err)
{
    return unpack_key(msg, OP_FREE, out, err);
}
int herd_proto_pack_get(msgpack_sbuffer *sb, const herd_msg_key *m) { return pack_key(sb, OP_GET, m); }
int herd_proto_unpack_get(const msgpack_object *msg, herd_msg_key *out, herd_err *err)
{
    return unpack_key(msg, OP_GET, out, err);
}
int herd_proto_pack_getfd(msgpack_sbuffer *sb, const herd_msg_key *m) { return pack_key(sb, OP_GETFD, m); }
int herd_proto_unpack_getfd(const msgpack_object *msg, herd_msg_key *out, herd_err *err)
{
    return unpack_key(msg, OP_GETFD, out, err);
}

/* ---- MISSING ---- */
int herd_proto_pack_missing(msgpack_sbuffer *sb, const herd_msg_missing *m)
{
    wr w;
    msgpack_packer *pk = wr_open(&w, sb, OP_MISSING, 4);
    msgpack_pack_uint64(pk, m->key);
    msgpack_pack_int(pk, m->attempt);
    msgpack_pack_uint64(pk, m->input);
    return wr_close(&w, 0);
}

int herd_proto_unpack_missing(const msgpack_object *msg, herd_msg_missing *out, herd_err *err)
{
    rd r;
    int rc;
    memset(out, 0, sizeof *out);
    if ((rc = rd_open(&r, msg, OP_MISSING, 4, err)) || (rc = rd_u64(&r, 1, "key", &out->key)) ||
        (rc = rd_i32(&r, 2, "attempt", 0, INT32_MAX, &out->attempt)) || (rc = rd_u64(&r, 3, "input", &out->input)))
        return rc;
    return 0;
}

/* ---- DATA ---- */
int herd_proto_pack_data(msgpack_sbuffer *sb, const herd_msg_data *m)
{
    wr w;
    msgpack_packer *pk = wr_open(&w, sb, OP_DATA, 3);
    msgpack_pack_uint64(pk, m->key);
    msgpack_pack_int64(pk, m->nbytes);
    return wr_close(&w, 0);
}

int herd_proto_unpack_data(const msgpack_object *msg, herd_msg_data *out, herd_err *err)
{
    rd r;
    int rc;
    memset(out, 0, sizeof *out);
    if ((rc = rd_open(&r, msg, OP_DATA, 3, err)) || (rc = rd_u64(&r, 1, "key", &out->key)) ||
        (rc = rd_int(&r, 2, "nbytes", -1, INT64_MAX, &out->nbytes)))
        return rc;
    return 0;
}

/* ---- HELD ---- */
int herd_proto_pack_held(msgpack_sbuffer *sb, const herd_msg_held *m)
{
    wr w;
    msgpack_packer *pk = wr_open(&w, sb, OP_HELD, 4);
    msgpack_pack_uint64(pk, m->key);
    pk_str(pk, m->peer);
    pk_str(pk, m->error);
    return wr_close(&w, 0);
}

int herd_proto_unpack_held(const msgpack_object *msg, herd_msg_held *out, herd_err *err)
{
    rd r;
    int rc;
    memset(out, 0, sizeof *out);
    if ((rc = rd_open(&r, msg, OP_HELD, 4, err)) || (rc = rd_u64(&r, 1, "key", &out->key)) ||
        (rc = rd_str(&r, 2, "peer", S_NAME | S_NIL, &out->peer)) || (rc = rd_str(&r, 3, "error", S_NIL, &out->error)))
        return rc;
    return 0;
}

/* ---- PAUSE ---- */
int herd_proto_pack_pause(msgpack_sbuffer *sb, const herd_msg_pause *m)
{
    wr w;
    msgpack_packer *pk = wr_open(&w, sb, OP_PAUSE, 2);
    msgpack_pack_int(pk, m->paused);
    return wr_close(&w, 0);
}

int herd_proto_unpack_pause(const msgpack_object *msg, herd_msg_pause *out, herd_err *err)
{
    rd r;
    int rc;
    memset(out, 0, sizeof *out);
    if ((rc = rd_open(&r, msg, OP_PAUSE, 2, err)) || (rc = rd_i32(&r, 1, "paused", 0, 1, &out->paused)))
        return rc;
    return 0;
}

/* ---- FETCH, VALUE, CHUNK, MORE (the relay's streams) ---- */
int herd_proto_pack_fetch(msgpack_sbuffer *sb, const herd_msg_fetch *m)
{
    wr w;
    msgpack_packer *pk = wr_open(&w, sb, OP_FETCH, 4);
    msgpack_pack_uint64(pk, m->key);
    msgpack_pack_uint64(pk, m->xfer);
    msgpack_pack_int64(pk, m->credit);
    return wr_close(&w, 0);
}

int herd_proto_unpack_fetch(const msgpack_object *msg, herd_msg_fetch *out, herd_err *err)
{
    rd r;
    int rc;
    memset(out, 0, sizeof *out);
    if ((rc = rd_open(&r, msg, OP_FETCH, 4, err)) || (rc = rd_u64(&r, 1, "key", &out->key)) ||
        (rc = rd_u64(&r, 2, "xfer", &out->xfer)) || (rc = rd_int(&r, 3, "credit", 0, INT64_MAX, &out->credit)))
        return rc;
    return 0;
}

int herd_proto_pack_value(msgpack_sbuffer *sb, const herd_msg_value *m)
{
    wr w;
    msgpack_packer *pk = wr_open(&w, sb, OP_VALUE, 4);
    msgpack_pack_uint64(pk, m->id);
    msgpack_pack_int64(pk, m->nbytes < 0 ? -1 : m->nbytes);
    pk_str(pk, m->nbytes >= 0 ? herd_pstr_c(NULL) : m->error.ptr ? m->error : herd_pstr_c("no value"));
    return wr_close(&w, 0);
}

int herd_proto_unpack_value(const msgpack_object *msg, herd_msg_value *out, herd_err *err)
{
    rd r;
    int rc;
    memset(out, 0, sizeof *out);
    if ((rc = rd_open(&r, msg, OP_VALUE, 4, err)) || (rc = rd_u64(&r, 1, "id", &out->id)) ||
        (rc = rd_int(&r, 2, "nbytes", -1, INT64_MAX, &out->nbytes)) || (rc = rd_str(&r, 3, "error", S_NIL, &out->error)))
        return rc;
    if (out->nbytes == 0) return herd_err_set(err, -HERD_EPROTO, "VALUE: field 'nbytes' is 0, expected -1 or >= 1");
    if (out->nbytes < 0 && !out->error.ptr) return herd_err_set(err, -HERD_EPROTO, "VALUE: nbytes -1 without an error");
    return 0;
}

int herd_proto_pack_chunk(msgpack_sbuffer *sb, const herd_msg_chunk *m)
{
    size_t n = 0;
    for (size_t i = 0; i < m->nparts; i++) n += m->parts[i].iov_len;
    if (n > HERD_RELAY_CHUNK || n > UINT32_MAX) return -HERD_EARG;
    wr w;
    msgpack_packer *pk = wr_open(&w, sb, OP_CHUNK, 3);
    msgpack_pack_uint64(pk, m->id);
    msgpack_pack_bin(pk, (uint32_t)n);
    for (size_t i = 0; i < m->nparts; i++) msgpack_pack_bin_body(pk, m->parts[i].iov_base, m->parts[i].iov_len);
    return wr_close(&w, 0);
}

int herd_proto_unpack_chunk(const msgpack_object *msg, herd_msg_chunk *out, herd_err *err)
{
    rd r;
    int rc;
    memset(out, 0, sizeof *out);
    if ((rc = rd_open(&r, msg, OP_CHUNK, 3, err)) || (rc = rd_u64(&r, 1, "id", &out->id))) return rc;
    const msgpack_object *o = &r.a[2];
    if (o->type != MSGPACK_OBJECT_BIN) return bad_type(&r, "bytes", o, "bin");
    if (o->via.bin.size == 0 || o->via.bin.size > HERD_RELAY_CHUNK)
        return herd_err_set(err, -HERD_EPROTO, "CHUNK: field 'bytes' holds %lu bytes, expected 1..%zu",
                            (unsigned long)o->via.bin.size, (size_t)HERD_RELAY_CHUNK);
    out->bytes = (herd_pstr){ o->via.bin.ptr, o->via.bin.size };
    return 0;
}

int herd_proto_pack_more(msgpack_sbuffer *sb, const herd_msg_more *m)
{
    wr w;
    msgpack_packer *pk = wr_open(&w, sb, OP_MORE, 3);
    msgpack_pack_uint64(pk, m->xfer);
    msgpack_pack_int64(pk, m->credit);
    return wr_close(&w, 0);
}

int herd_proto_unpack_more(const msgpack_object *msg, herd_msg_more *out, herd_err *err)
{
    rd r;
    int rc;
    memset(out, 0, sizeof *out);
    if ((rc = rd_open(&r, msg, OP_MORE, 3, err)) || (rc = rd_u64(&r, 1, "xfer", &out->xfer)) ||
        (rc = rd_int(&r, 2, "credit", -1, INT64_MAX, &out->credit)))
        return rc;
    return 0;
}

/* ---- ACQUIRE, ACQUIRED ---- */
int herd_proto_pack_acquire(msgpack_sbuffer *sb, const herd_msg_acquire *m)
{
    wr w;
    msgpack_packer *pk = wr_open(&w, sb, OP_ACQUIRE, 4);
    msgpack_pack_uint64(pk, m->key);
    pk_str(pk, m->peer.ptr ? m->peer : herd_pstr_c(""));
    msgpack_pack_int64(pk, m->nbytes);
    return wr_close(&w, 0);
}

int herd_proto_unpack_acquire(const msgpack_object *msg, herd_msg_acquire *out, herd_err *err)
{
    rd r;
    int rc;
    memset(out, 0, sizeof *out);
    if ((rc = rd_open(&r, msg, OP_ACQUIRE, 4, err)) || (rc = rd_u64(&r, 1, "key", &out->key)) ||
        (rc = rd_str(&r, 2, "peer", S_NAME, &out->peer)) || (rc = rd_int(&r, 3, "nbytes", 0, INT64_MAX, &out->nbytes)))
        return rc;
    return 0;
}

int herd_proto_pack_acquired(msgpack_sbuffer *sb, const herd_msg_acquired *m)
{
    wr w;
    msgpack_packer *pk = wr_open(&w, sb, OP_ACQUIRED, 4);
    msgpack_pack_uint64(pk, m->key);
    msgpack_pack_int64(pk, m->nbytes);
    pk_str(pk, m->error);
    return wr_close(&w, 0);
}

int herd_proto_unpack_acquired(const msgpack_object *msg, herd_msg_acquired *out, herd_err *err)
{
    rd r;
    int rc;
    memset(out, 0, sizeof *out);
    if ((rc = rd_open(&r, msg, OP_ACQUIRED, 4, err)) || (rc = rd_u64(&r, 1, "key", &out->key)) ||
        (rc = rd_int(&r, 2, "nbytes", -1, INT64_MAX, &out->nbytes)) || (rc = rd_str(&r, 3, "error", S_NIL, &out->error)))
        return rc;
    return 0;
}
