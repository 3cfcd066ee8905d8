/* tests/fuzz/fuzz_proto.c — a frame body from a hostile peer: each message
 * goes through what comm.c does (herd_msgpack_check, then msgpack-c) and the
 * unpack function of its opcode (proto.c). A message that unpacks must pack
 * again and unpack a second time; one that does not must say why. */
#include "fuzz.h"
#include "proto.h"
#include "value_int.h"

#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

/* Unpack msg by its opcode; when repack, pack it again into sb. 0, or the
 * unpack's error. Frees what the unpack gave. */
static int unpack_one(int op, const msgpack_object *m, msgpack_sbuffer *sb, herd_err *e)
{
    int rc = 0;
    switch (op) {
    case OP_HELLO: { herd_msg_hello x; if (!(rc = herd_proto_unpack_hello(m, &x, e))) { if (sb) herd_proto_pack_hello(sb, &x); herd_value_free(x.resources); } break; }
    case OP_WELCOME: { herd_msg_welcome x; if (!(rc = herd_proto_unpack_welcome(m, &x, e)) && sb) herd_proto_pack_welcome(sb, &x); break; }
    case OP_REFUSE: { herd_msg_reason x; if (!(rc = herd_proto_unpack_refuse(m, &x, e)) && sb) herd_proto_pack_refuse(sb, &x); break; }
    case OP_CLOSE: { herd_msg_reason x; if (!(rc = herd_proto_unpack_close(m, &x, e)) && sb) herd_proto_pack_close(sb, &x); break; }
    case OP_RUN: { herd_msg_run x; if (!(rc = herd_proto_unpack_run(m, &x, e))) { if (sb) herd_proto_pack_run(sb, &x); herd_value_free(x.args); herd_value_free(x.tags); herd_value_free(x.inputs); } break; }
    case OP_DONE: { herd_msg_done x; if (!(rc = herd_proto_unpack_done(m, &x, e))) { if (sb) herd_proto_pack_done(sb, &x); herd_value_free(x.value); } break; }
    case OP_LOG: { herd_msg_log x; if (!(rc = herd_proto_unpack_log(m, &x, e)) && sb) herd_proto_pack_log(sb, &x); break; }
    case OP_HEARTBEAT: { herd_msg_heartbeat x; if (!(rc = herd_proto_unpack_heartbeat(m, &x, e)) && sb) herd_proto_pack_heartbeat(sb, &x); break; }
    case OP_SECEDE: { herd_msg_key x; if (!(rc = herd_proto_unpack_secede(m, &x, e)) && sb) herd_proto_pack_secede(sb, &x); break; }
    case OP_RELEASE: { herd_msg_key x; if (!(rc = herd_proto_unpack_release(m, &x, e)) && sb) herd_proto_pack_release(sb, &x); break; }
    case OP_CANCEL: { herd_msg_key x; if (!(rc = herd_proto_unpack_cancel(m, &x, e)) && sb) herd_proto_pack_cancel(sb, &x); break; }
    case OP_SUBMIT: {
        herd_submit_spec *x = calloc(1, sizeof *x);
        if (!x) return 0;
        if (!(rc = herd_proto_unpack_submit(m, x, e))) {
            if (sb) herd_proto_pack_submit(sb, x);
            herd_spec_free(x);
        } else {
            free(x);
        }
        break;
    }
    case OP_RESULT: { herd_msg_result x; if (!(rc = herd_proto_unpack_result(m, &x, e))) { if (sb) herd_proto_pack_result(sb, &x); herd_value_free(x.value); } break; }
    case OP_WORKERS: { herd_msg_workers x; if (!(rc = herd_proto_unpack_workers(m, &x, e)) && sb) herd_proto_pack_workers(sb, &x); break; }
    case OP_STARTED: { herd_msg_started x; if (!(rc = herd_proto_unpack_started(m, &x, e)) && sb) herd_proto_pack_started(sb, &x); break; }
    case OP_CONTROL: { herd_msg_control x; if (!(rc = herd_proto_unpack_control(m, &x, e)) && sb) herd_proto_pack_control(sb, &x); break; }
    case OP_REPLY: { herd_msg_reply x; if (!(rc = herd_proto_unpack_reply(m, &x, e))) { if (sb) herd_proto_pack_reply(sb, &x); if (x.has_load) herd_sched_load_free(&x.load); } break; }
    case OP_PEER: { herd_msg_peer x; if (!(rc = herd_proto_unpack_peer(m, &x, e)) && sb) herd_proto_pack_peer(sb, &x); break; }
    case OP_FREE: { herd_msg_key x; if (!(rc = herd_proto_unpack_free(m, &x, e)) && sb) herd_proto_pack_free(sb, &x); break; }
    case OP_GET: { herd_msg_key x; if (!(rc = herd_proto_unpack_get(m, &x, e)) && sb) herd_proto_pack_get(sb, &x); break; }
    case OP_GETFD: { herd_msg_key x; if (!(rc = herd_proto_unpack_getfd(m, &x, e)) && sb) herd_proto_pack_getfd(sb, &x); break; }
    case OP_MISSING: { herd_msg_missing x; if (!(rc = herd_proto_unpack_missing(m, &x, e)) && sb) herd_proto_pack_missing(sb, &x); break; }
    case OP_HELD: { herd_msg_held x; if (!(rc = herd_proto_unpack_held(m, &x, e)) && sb) herd_proto_pack_held(sb, &x); break; }
    case OP_PAUSE: { herd_msg_pause x; if (!(rc = herd_proto_unpack_pause(m, &x, e)) && sb) herd_proto_pack_pause(sb, &x); break; }
    case OP_DATA: { herd_msg_data x; if (!(rc = herd_proto_unpack_data(m, &x, e)) && sb) herd_proto_pack_data(sb, &x); break; }
    case OP_ACQUIRE: { herd_msg_acquire x; if (!(rc = herd_proto_unpack_acquire(m, &x, e)) && sb) herd_proto_pack_acquire(sb, &x); break; }
    case OP_ACQUIRED: { herd_msg_acquired x; if (!(rc = herd_proto_unpack_acquired(m, &x, e)) && sb) herd_proto_pack_acquired(sb, &x); break; }
    case OP_FETCH: { herd_msg_fetch x; if (!(rc = herd_proto_unpack_fetch(m, &x, e)) && sb) herd_proto_pack_fetch(sb, &x); break; }
    case OP_VALUE: { herd_msg_value x; if (!(rc = herd_proto_unpack_value(m, &x, e)) && sb) herd_proto_pack_value(sb, &x); break; }
    case OP_MORE: { herd_msg_more x; if (!(rc = herd_proto_unpack_more(m, &x, e)) && sb) herd_proto_pack_more(sb, &x); break; }
    case OP_CHUNK: {
        herd_msg_chunk x;
        if (!(rc = herd_proto_unpack_chunk(m, &x, e)) && sb) {
            struct iovec one = { (void *)x.bytes.ptr, x.bytes.len };
            x.parts = &one;
            x.nparts = 1;
            herd_proto_pack_chunk(sb, &x);
        }
        break;
    }
    default: break;
    }
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    size_t off = 0;
    while (off < size) {
        if (herd_msgpack_check(data + off, size - off, NULL, NULL)) break;
        msgpack_unpack_return r = msgpack_unpack_next(&up, (const char *)data, size, &off);
        if (r != MSGPACK_UNPACK_SUCCESS && r != MSGPACK_UNPACK_EXTRA_BYTES) break;
        herd_err e;
        int op = herd_proto_op(&up.data, &e);
        if (op < 0) {
            FUZZ_CHECK(e.msg[0]);
            break;
        }
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        if (unpack_one(op, &up.data, &sb, &e) != 0) {
            FUZZ_CHECK(e.msg[0]);
        } else if (sb.size) {           /* what unpacked packs to a message that unpacks */
            msgpack_unpacked again;
            msgpack_unpacked_init(&again);
            size_t o2 = 0;
            FUZZ_CHECK(msgpack_unpack_next(&again, sb.data, sb.size, &o2) == MSGPACK_UNPACK_SUCCESS);
            FUZZ_CHECK(unpack_one(op, &again.data, NULL, &e) == 0);
            msgpack_unpacked_destroy(&again);
        }
        msgpack_sbuffer_destroy(&sb);
    }
    msgpack_unpacked_destroy(&up);
    return 0;
}
