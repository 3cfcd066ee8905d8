/* core/proto_msg.c — the wire protocol's control messages: one pack and
 * one unpack function per opcode (layouts and ownership in proto.h; the
 * fields' readers and writers are proto.c's, the data plane's messages
 * proto_data.c's). Unpacking checks every field and names the opcode and
 * the field of the first bad one. */
#include "proto_int.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- HELLO ---- */
int herd_proto_pack_hello(msgpack_sbuffer *sb, const herd_msg_hello *m)
{
    wr w;
    msgpack_packer *pk = wr_open(&w, sb, OP_HELLO, 9);
    msgpack_pack_int64(pk, m->proto);
    msgpack_pack_int(pk, m->role);
    pk_str(pk, m->token.ptr ? m->token : herd_pstr_c(""));
    pk_str(pk, m->name);
    msgpack_pack_int(pk, m->nthreads);
    int rc = pk_value(pk, m->resources);
    msgpack_pack_int64(pk, m->pid);
    pk_str(pk, m->host.ptr ? m->host : herd_pstr_c(""));
    return wr_close(&w, rc);
}

int herd_proto_unpack_hello(const msgpack_object *msg, herd_msg_hello *out, herd_err *err)
{
    rd r;
    memset(out, 0, sizeof *out);
    int rc = herd_proto_op(msg, err);
    if (rc < 0) return rc;
    /* the version first: another version may lay its fields out otherwise */
    if (rc == OP_HELLO && msg->via.array.size >= 2) {
        const msgpack_object *v = &msg->via.array.ptr[1];
        if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER && v->via.u64 != HERD_PROTO_VERSION)
            return herd_err_set(err, -HERD_EPROTO, "HELLO: protocol version %" PRIu64 ", this scheduler speaks %d",
                                v->via.u64, HERD_PROTO_VERSION);
    }
    int64_t role = 0, pid = 0;
    if ((rc = rd_open(&r, msg, OP_HELLO, 9, err)) || (rc = rd_int(&r, 1, "proto", HERD_PROTO_VERSION,
                                                                  HERD_PROTO_VERSION, &out->proto)) ||
        (rc = rd_int(&r, 2, "role", ROLE_WORKER, ROLE_PEER, &role)) ||
        (rc = rd_str(&r, 3, "token", S_ANY, &out->token)) || (rc = rd_str(&r, 4, "name", S_NAME, &out->name)) ||
        (rc = rd_i32(&r, 5, "nthreads", role == ROLE_WORKER ? 1 : 0, 65536, &out->nthreads)) ||
        (rc = rd_int(&r, 7, "pid", 0, INT32_MAX, &pid)) ||
        (rc = rd_str(&r, 8, "host", S_ANY, &out->host)) || (rc = rd_resources(&r, 6, "resources", &out->resources)))
        return rc;
    if (out->host.len > HERD_PROTO_MAX_NAME || memchr(out->host.ptr, '\0', out->host.len)) {
        herd_value_free(out->resources);
        out->resources = NULL;
        return herd_err_set(err, -HERD_EPROTO, "HELLO: field 'host' is a str of %zu bytes%s, expected 0..%d without NUL",
                            out->host.len, out->host.len > HERD_PROTO_MAX_NAME ? "" : " holding a NUL byte",
                            HERD_PROTO_MAX_NAME);
    }
    out->role = (int)role;
    out->pid = pid;
    return 0;
}

/* ---- WELCOME ---- */
int herd_proto_pack_welcome(msgpack_sbuffer *sb, const herd_msg_welcome *m)
{
    wr w;
    msgpack_packer *pk = wr_open(&w, sb, OP_WELCOME, 7);
    msgpack_pack_uint32(pk, m->id);
    msgpack_pack_double(pk, m->heartbeat_interval);
    msgpack_pack_int(pk, m->nworkers);
    msgpack_pack_int(pk, m->nthreads);
    msgpack_pack_int(pk, m->owned);
    msgpack_pack_int(pk, m->transfer);
    return wr_close(&w, 0);
}

int herd_proto_unpack_welcome(const msgpack_object *msg, herd_msg_welcome *out, herd_err *err)
{
    rd r;
    int64_t id = 0;
    int rc;
    memset(out, 0, sizeof *out);
    if ((rc = rd_open(&r, msg, OP_WELCOME, 7, err)) || (rc = rd_int(&r, 1, "id", 1, (1 << 24) - 1, &id)) ||
        (rc = rd_num(&r, 2, "heartbeat_interval", 1e-6, 1e9, &out->heartbeat_interval)) ||
        (rc = rd_i32(&r, 3, "nworkers", 0, INT32_MAX, &out->nworkers)) ||
        (rc = rd_i32(&r, 4, "nthreads", 0, INT32_MAX, &out->nthreads)) ||
        (rc = rd_i32(&r, 5, "owned", 0, 1, &out->owned)) ||
        (rc = rd_i32(&r, 6, "transfer", HERD_DT_AUTO, HERD_DT_INLINE, &out->transfer)))
        return rc;
    out->id = (uint32_t)id;
    return 0;
}

/* ---- REFUSE, CLOSE ---- */
static int pack_reason(msgpack_sbuffer *sb, int op, const herd_msg_reason *m)
{
    wr w;
    pk_str(wr_open(&w, sb, op, 2), m->reason.ptr ? m->reason : herd_pstr_c(""));
    return wr_close(&w, 0);
}

static int unpack_reason(const msgpack_object *msg, int op, herd_msg_reason *out, herd_err *err)
{
    rd r;
    int rc;
    memset(out, 0, sizeof *out);
    if ((rc = rd_open(&r, msg, op, 2, err)) || (rc = rd_str(&r, 1, "reason", S_ANY, &out->reason))) return rc;
    return 0;
}

int herd_proto_pack_refuse(msgpack_sbuffer *sb, const herd_msg_reason *m) { return pack_reason(sb, OP_REFUSE, m); }
int herd_proto_unpack_refuse(const msgpack_object *msg, herd_msg_reason *out, herd_err *err)
{
    return unpack_reason(msg, OP_REFUSE, out, err);
}
int herd_proto_pack_close(msgpack_sbuffer *sb, const herd_msg_reason *m) { return pack_reason(sb, OP_CLOSE, m); }
int herd_proto_unpack_close(const msgpack_object *msg, herd_msg_reason *out, herd_err *err)
{
    return unpack_reason(msg, OP_CLOSE, out, err);
}

/* ---- RUN ---- */
int herd_proto_pack_run(msgpack_sbuffer *sb, const herd_msg_run *m)
{
    wr w;
    msgpack_packer *pk = wr_open(&w, sb, OP_RUN, 9);
    msgpack_pack_uint64(pk, m->key);
    pk_str(pk, m->task);
    int rc = pk_value(pk, m->args);
    msgpack_pack_int(pk, m->attempt);
    pk_str(pk, m->run_name.ptr ? m->run_name : m->task);
    if (!rc) rc = pk_value(pk, m->tags);
    if (!rc) rc = pk_value(pk, m->inputs);
    msgpack_pack_int(pk, m->hold ? 1 : 0);
    return wr_close(&w, rc);
}

int herd_proto_unpack_run(const msgpack_object *msg, herd_msg_run *out, herd_err *err)
{
    rd r;
    int rc;
    memset(out, 0, sizeof *out);
    if ((rc = rd_open(&r, msg, OP_RUN, 9, err)) || (rc = rd_u64(&r, 1, "key", &out->key)) ||
        (rc = rd_str(&r, 2, "task", S_NAME, &out->task)) ||
        (rc = rd_i32(&r, 4, "attempt", 0, INT32_MAX, &out->attempt)) ||
        (rc = rd_str(&r, 5, "run_name", S_ANY, &out->run_name)) || (rc = rd_inputs(&r, 7, "inputs")) ||
        (rc = rd_i32(&r, 8, "hold", 0, 1, &out->hold)) || (rc = rd_tags(&r, 6, "tags", &out->tags)))
        return rc;
    if ((r.a[7].type != MSGPACK_OBJECT_NIL && (rc = rd_value(&r, 7, "inputs", &out->inputs))) ||
        (rc = rd_value(&r, 3, "args", &out->args))) {
        herd_value_free(out->tags);
        herd_value_free(out->inputs);
        out->tags = out->inputs = NULL;
    }
    return rc;
}

/* ---- DONE ---- */
int herd_proto_pack_done(msgpack_sbuffer *sb, const herd_msg_done *m)
{
    wr w;
    msgpack_packer *pk = wr_open(&w, sb, OP_DONE, 7);
    msgpack_pack_uint64(pk, m->key);
    msgpack_pack_int(pk, m->ok ? 1 : 0);
    int rc = 0;
    if (m->ok) rc = pk_value(pk, m->value);
    else pk_str(pk, m->error.ptr ? m->error : herd_pstr_c(""));
    msgpack_pack_uint64(pk, m->duration_us);
    msgpack_pack_int(pk, m->attempt);
    msgpack_pack_int64(pk, m->ok && m->held >= 0 ? m->held : -1);
    return wr_close(&w, rc);
}

int herd_proto_unpack_done(const msgpack_object *msg, herd_msg_done *out, herd_err *err)
{
    rd r;
    int rc;
    memset(out, 0, sizeof *out);
    if ((rc = rd_open(&r, msg, OP_DONE, 7, err)) || (rc = rd_u64(&r, 1, "key", &out->key)) ||
        (rc = rd_i32(&r, 2, "ok", 0, 1, &out->ok)) || (rc = rd_u64(&r, 4, "duration_us", &out->duration_us)) ||
        (rc = rd_i32(&r, 5, "attempt", 0, INT32_MAX, &out->attempt)) ||
        (rc = rd_int(&r, 6, "held", -1, INT64_MAX, &out->held)))
        return rc;
    if (out->held >= 0 && !out->ok)
        return herd_err_set(err, -HERD_EPROTO, "DONE: field 'held' is %" PRId64 " for a failed task, expected -1",
                            out->held);
    return out->ok ? rd_value(&r, 3, "value", &out->value) : rd_str(&r, 3, "error", S_ANY, &out->error);
}

/* ---- LOG ---- */
int herd_proto_pack_log(msgpack_sbuffer *sb, const herd_msg_log *m)
{
    wr w;
    msgpack_packer *pk = wr_open(&w, sb, OP_LOG, 4);
    msgpack_pack_uint64(pk, m->key);
    msgpack_pack_int(pk, m->level);
    pk_str(pk, m->text.ptr ? m->text : herd_pstr_c(""));
    return wr_close(&w, 0);
}

int herd_proto_unpack_log(const msgpack_object *msg, herd_msg_log *out, herd_err *err)
{
    rd r;
    int rc;
    memset(out, 0, sizeof *out);
    if ((rc = rd_open(&r, msg, OP_LOG, 4, err)) || (rc = rd_u64(&r, 1, "key", &out->key)) ||
        (rc = rd_i32(&r, 2, "level", HERD_LOG_DEBUG, HERD_LOG_ERROR, &out->level)) ||
        (rc = rd_str(&r, 3, "text", S_ANY, &out->text)))
        return rc;
    return 0;
}

/* ---- HEARTBEAT ---- */
int herd_proto_pack_heartbeat(msgpack_sbuffer *sb, const herd_msg_heartbeat *m)
{
    wr w;
    msgpack_packer *pk = wr_open(&w, sb, OP_HEARTBEAT, 5);
    msgpack_pack_double(pk, m->cpu >= 0 ? m->cpu : -1);
    msgpack_pack_int64(pk, m->memory >= 0 ? m->memory : -1);
    msgpack_pack_int64(pk, m->managed >= 0 ? m->managed : 0);
    msgpack_pack_int64(pk, m->spilled >= 0 ? m->spilled : 0);
    return wr_close(&w, 0);
}

int herd_proto_unpack_heartbeat(const msgpack_object *msg, herd_msg_heartbeat *out, herd_err *err)
{
    rd r;
    int rc;
    memset(out, 0, sizeof *out);
    if ((rc = rd_open(&r, msg, OP_HEARTBEAT, 5, err)) || (rc = rd_num(&r, 1, "cpu", -1, 1e6, &out->cpu)) ||
        (rc = rd_int(&r, 2, "memory", -1, INT64_MAX, &out->memory)) ||
        (rc = rd_int(&r, 3, "managed", 0, INT64_MAX, &out->managed)) ||
        (rc = rd_int(&r, 4, "spilled", 0, INT64_MAX, &out->spilled)))
        return rc;
    return 0;
}

/* ---- SECEDE, RELEASE, CANCEL ---- */
int herd_proto_pack_secede(msgpack_sbuffer *sb, const herd_msg_key *m) { return pack_key(sb, OP_SECEDE, m); }
int herd_proto_unpack_secede(const msgpack_object *msg, herd_msg_key *out, herd_err *err)
{
    return unpack_key(msg, OP_SECEDE, out, err);
}
int herd_proto_pack_release(msgpack_sbuffer *sb, const herd_msg_key *m) { return pack_key(sb, OP_RELEASE, m); }
int herd_proto_unpack_release(const msgpack_object *msg, herd_msg_key *out, herd_err *err)
{
    return unpack_key(msg, OP_RELEASE, out, err);
}
int herd_proto_pack_cancel(msgpack_sbuffer *sb, const herd_msg_key *m) { return pack_key(sb, OP_CANCEL, m); }
int herd_proto_unpack_cancel(const msgpack_object *msg, herd_msg_key *out, herd_err *err)
{
    return unpack_key(msg, OP_CANCEL, out, err);
}

/* ---- SUBMIT ---- */
int herd_proto_pack_submit(msgpack_sbuffer *sb, const herd_submit_spec *m)
{
    wr w;
    msgpack_packer *pk = wr_open(&w, sb, OP_SUBMIT, 13);
    msgpack_pack_uint64(pk, m->key);
    pk_str(pk, herd_pstr_c(m->task));
    int rc = pk_value(pk, m->args);
    msgpack_pack_int(pk, m->priority);
    if (!rc) rc = pk_value(pk, m->resources);
    msgpack_pack_int(pk, m->retries);
    msgpack_pack_double(pk, m->retry_delay);
    msgpack_pack_double(pk, m->timeout);
    pk_str(pk, herd_pstr_c(m->run_name));
    if (!rc) rc = pk_value(pk, m->tags);
    if (!rc) rc = pk_value(pk, m->workers);
    msgpack_pack_int(pk, m->allow_other_workers ? 1 : 0);
    return wr_close(&w, rc);
}

int herd_proto_unpack_submit(const msgpack_object *msg, herd_submit_spec *out, herd_err *err)
{
    rd r;
    int rc;
    herd_pstr task, run_name;
    memset(out, 0, sizeof *out);
    if ((rc = rd_open(&r, msg, OP_SUBMIT, 13, err)) || (rc = rd_u64(&r, 1, "key", &out->key)) ||
        (rc = rd_str(&r, 2, "task", S_NAME, &task)) ||
        (rc = rd_i32(&r, 4, "priority", INT32_MIN, INT32_MAX, &out->priority)) ||
        (rc = rd_i32(&r, 6, "retries", 0, INT32_MAX, &out->retries)) ||
        (rc = rd_num(&r, 7, "retry_delay", 0, 1e9, &out->retry_delay)) ||
        (rc = rd_num(&r, 8, "timeout", 0, 1e9, &out->timeout)) ||
        (rc = rd_str(&r, 9, "run_name", S_NIL, &run_name)) ||
        (rc = rd_i32(&r, 12, "allow_other_workers", 0, 1, &out->allow_other_workers)) ||
        (rc = rd_names(&r, 11, "workers")) ||
        (rc = rd_resources(&r, 5, "resources", &out->resources)) || (rc = rd_tags(&r, 10, "tags", &out->tags)) ||
        (r.a[11].type != MSGPACK_OBJECT_NIL && (rc = rd_value(&r, 11, "workers", &out->workers))) ||
        (rc = rd_value(&r, 3, "args", &out->args)))
        goto fail;
    out->op = OP_SUBMIT;
    out->task = herd_pstr_dup(task);
    out->run_name = herd_pstr_dup(run_name);
    if (!out->task || (run_name.ptr && !out->run_name)) { rc = herd_err_set(err, -ENOMEM, "SUBMIT: out of memory"); goto fail; }
    return 0;
fail:
    free(out->task);
    free(out->run_name);
    herd_value_free(out->args);
    herd_value_free(out->resources);
    herd_value_free(out->tags);
    herd_value_free(out->workers);
    memset(out, 0, sizeof *out);
    return rc;
}

int herd_proto_pack_spec(msgpack_sbuffer *sb, const herd_submit_spec *m)
{
    herd_msg_key k = { m->key };
    switch (m->op) {
    case OP_SUBMIT: return herd_proto_pack_submit(sb, m);
    case OP_RELEASE: return pack_key(sb, OP_RELEASE, &k);
    case OP_CANCEL: return pack_key(sb, OP_CANCEL, &k);
    case OP_FETCH: { herd_msg_fetch f = { .key = m->key }; return herd_proto_pack_fetch(sb, &f); }
    }
    return -HERD_EARG;
}

/* ---- RESULT ---- */
int herd_proto_pack_result(msgpack_sbuffer *sb, const herd_msg_result *m)
{
    wr w;
    msgpack_packer *pk = wr_open(&w, sb, OP_RESULT, 4);
    msgpack_pack_uint64(pk, m->key);
    msgpack_pack_int(pk, m->state);
    int rc = 0;
    if (m->state == HERD_COMPLETED) rc = pk_value(pk, m->value);
    else if (m->state == HERD_SCHEDULED || m->state == HERD_RUNNING) msgpack_pack_nil(pk);
    else pk_str(pk, m->error.ptr ? m->error : herd_pstr_c(""));
    return wr_close(&w, rc);
}

int herd_proto_unpack_result(const msgpack_object *msg, herd_msg_result *out, herd_err *err)
{
    rd r;
    int rc, st = 0;
    memset(out, 0, sizeof *out);
    if ((rc = rd_open(&r, msg, OP_RESULT, 4, err)) || (rc = rd_u64(&r, 1, "key", &out->key)) ||
        (rc = rd_i32(&r, 2, "state", HERD_SCHEDULED, HERD_CANCELLED, &st)))
        return rc;
    out->state = (herd_state)st;
    if (st == HERD_COMPLETED) return rd_value(&r, 3, "value", &out->value);
    if (st == HERD_SCHEDULED || st == HERD_RUNNING) {
        if (r.a[3].type != MSGPACK_OBJECT_NIL) return bad_type(&r, "payload", &r.a[3], "nil");
        return 0;
    }
    return rd_str(&r, 3, "error", S_ANY, &out->error);
}

/* ---- WORKERS ---- */
int herd_proto_pack_workers(msgpack_sbuffer *sb, const herd_msg_workers *m)
{
    wr w;
    msgpack_packer *pk = wr_open(&w, sb, OP_WORKERS, 3);
    msgpack_pack_int(pk, m->nworkers);
    msgpack_pack_int(pk, m->nthreads);
    return wr_close(&w, 0);
}

int herd_proto_unpack_workers(const msgpack_object *msg, herd_msg_workers *out, herd_err *err)
{
    rd r;
    int rc;
    memset(out, 0, sizeof *out);
    if ((rc = rd_open(&r, msg, OP_WORKERS, 3, err)) || (rc = rd_i32(&r, 1, "nworkers", 0, INT32_MAX, &out->nworkers)) ||
        (rc = rd_i32(&r, 2, "nthreads", 0, INT32_MAX, &out->nthreads)))
        return rc;
    return 0;
}

/* ---- STARTED ---- */
int herd_proto_pack_started(msgpack_sbuffer *sb, const herd_msg_started *m)
{
    wr w;
    msgpack_packer *pk = wr_open(&w, sb, OP_STARTED, 3);
    msgpack_pack_uint64(pk, m->key);
    msgpack_pack_int(pk, m->attempt);
    return wr_close(&w, 0);
}

int herd_proto_unpack_started(const msgpack_object *msg, herd_msg_started *out, herd_err *err)
{
    rd r;
    int rc;
    memset(out, 0, sizeof *out);
    if ((rc = rd_open(&r, msg, OP_STARTED, 3, err)) || (rc = rd_u64(&r, 1, "key", &out->key)) ||
        (rc = rd_i32(&r, 2, "attempt", 0, INT32_MAX, &out->attempt)))
        return rc;
    return 0;
}

/* ---- CONTROL ---- */
int herd_proto_pack_control(msgpack_sbuffer *sb, const herd_msg_control *m)
{
    wr w;
    msgpack_packer *pk = wr_open(&w, sb, OP_CONTROL, 4);
    msgpack_pack_uint64(pk, m->seq);
    pk_str(pk, m->verb);
    pk_str(pk, m->arg);
    return wr_close(&w, 0);
}

int herd_proto_unpack_control(const msgpack_object *msg, herd_msg_control *out, herd_err *err)
{
    rd r;
    int rc;
    memset(out, 0, sizeof *out);
    if ((rc = rd_open(&r, msg, OP_CONTROL, 4, err)) || (rc = rd_u64(&r, 1, "seq", &out->seq)) ||
        (rc = rd_str(&r, 2, "verb", S_NAME, &out->verb)) || (rc = rd_str(&r, 3, "arg", S_NIL, &out->arg)))
        return rc;
    return 0;
}

/* ---- REPLY ---- */
int herd_proto_pack_reply(msgpack_sbuffer *sb, const herd_msg_reply *m)
{
    wr w;
    msgpack_packer *pk = wr_open(&w, sb, OP_REPLY, 4);
    msgpack_pack_uint64(pk, m->seq);
    msgpack_pack_int(pk, m->rc);
    if (m->rc) { pk_str(pk, m->error); return wr_close(&w, 0); }
    if (!m->has_load && m->text.ptr) { pk_str(pk, m->text); return wr_close(&w, 0); }
    if (!m->has_load) { msgpack_pack_nil(pk); return wr_close(&w, 0); }
    const herd_sched_load *l = &m->load;
    msgpack_pack_array(pk, 7);
    msgpack_pack_int(pk, l->waiting);
    msgpack_pack_int(pk, l->ready);
    msgpack_pack_int(pk, l->running);
    msgpack_pack_double(pk, l->avg_duration);
    msgpack_pack_double(pk, l->task_seconds);
    msgpack_pack_array(pk, (uint32_t)l->nworkers);
    for (size_t i = 0; i < l->nworkers; i++) {
        msgpack_pack_array(pk, 6);
        pk_str(pk, herd_pstr_c(l->workers[i].name));
        msgpack_pack_int(pk, l->workers[i].nthreads);
        msgpack_pack_int(pk, l->workers[i].busy);
        msgpack_pack_int(pk, l->workers[i].closing);
        msgpack_pack_double(pk, l->workers[i].idle_for);
        msgpack_pack_int64(pk, l->workers[i].needed_bytes);
    }
    msgpack_pack_int(pk, l->lifetime_retired);
    return wr_close(&w, 0);
}

/* The load array: its items are read like a message's fields, so errors
 * name them ("REPLY: field 'load.workers.busy' is -1, …"). */
static int unpack_load(rd *outer, const msgpack_object *o, herd_sched_load *l)
{
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 7)
        return herd_err_set(outer->err, -HERD_EPROTO, "REPLY: field 'load' is %s, expected an array of 7",
                            o->type == MSGPACK_OBJECT_ARRAY ? "an array of another size"
                                                            : herd_msgpack_type_name(o->type));
    rd r = { o->via.array.ptr, OP_REPLY, outer->err };
    int rc;
    if ((rc = rd_i32(&r, 0, "load.waiting", 0, INT32_MAX, &l->waiting)) ||
        (rc = rd_i32(&r, 1, "load.ready", 0, INT32_MAX, &l->ready)) ||
        (rc = rd_i32(&r, 2, "load.running", 0, INT32_MAX, &l->running)) ||
        (rc = rd_num(&r, 3, "load.avg_duration", -1, 1e12, &l->avg_duration)) ||
        (rc = rd_num(&r, 4, "load.task_seconds", 0, 1e18, &l->task_seconds)) ||
        (rc = rd_i32(&r, 6, "load.lifetime_retired", 0, INT32_MAX, &l->lifetime_retired)))
        return rc;
    const msgpack_object *ws = &r.a[5];
    if (ws->type != MSGPACK_OBJECT_ARRAY) return bad_type(&r, "load.workers", ws, "an array");
    uint32_t n = ws->via.array.size;
    if (!(l->workers = calloc(n ? n : 1, sizeof *l->workers)))
        return herd_err_set(outer->err, -ENOMEM, "REPLY: out of memory");
    for (uint32_t i = 0; i < n; i++) {
        const msgpack_object *x = &ws->via.array.ptr[i];
        if (x->type != MSGPACK_OBJECT_ARRAY || x->via.array.size != 6)
            return herd_err_set(outer->err, -HERD_EPROTO, "REPLY: field 'load.workers' item %u is %s, expected an "
                                "array of 6", (unsigned)i, herd_msgpack_type_name(x->type));
        rd w = { x->via.array.ptr, OP_REPLY, outer->err };
        herd_sched_wload *o2 = &l->workers[i];
        herd_pstr name;
        if ((rc = rd_str(&w, 0, "load.workers.name", S_NAME, &name)) ||
            (rc = rd_i32(&w, 1, "load.workers.nthreads", 0, INT32_MAX, &o2->nthreads)) ||
            (rc = rd_i32(&w, 2, "load.workers.busy", 0, INT32_MAX, &o2->busy)) ||
            (rc = rd_i32(&w, 3, "load.workers.closing", 0, 1, &o2->closing)) ||
            (rc = rd_num(&w, 4, "load.workers.idle_for", 0, 1e12, &o2->idle_for)) ||
            (rc = rd_int(&w, 5, "load.workers.needed_bytes", 0, INT64_MAX, &o2->needed_bytes)))
            return rc;
        size_t nl = name.len < sizeof o2->name ? name.len : sizeof o2->name - 1;
        memcpy(o2->name, name.ptr, nl);
        o2->name[nl] = '\0';
        l->nworkers++;
    }
    return 0;
}

int herd_proto_unpack_reply(const msgpack_object *msg, herd_msg_reply *out, herd_err *err)
{
    rd r;
    int rc;
    memset(out, 0, sizeof *out);
    if ((rc = rd_open(&r, msg, OP_REPLY, 4, err)) || (rc = rd_u64(&r, 1, "seq", &out->seq)) ||
        (rc = rd_i32(&r, 2, "rc", INT32_MIN, 0, &out->rc)))
        return rc;
    if (out->rc) return rd_str(&r, 3, "error", S_NIL, &out->error);
    if (r.a[3].type == MSGPACK_OBJECT_NIL) return 0;
    if (r.a[3].type == MSGPACK_OBJECT_STR) return rd_str(&r, 3, "text", S_NIL, &out->text);
    out->has_load = 1;
    if ((rc = unpack_load(&r, &r.a[3], &out->load))) {
        free(out->load.workers);
        memset(&out->load, 0, sizeof out->load);
        out->has_load = 0;
    }
    return rc;
}
