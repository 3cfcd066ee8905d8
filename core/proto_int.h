/* core/proto_int.h — what the protocol's files share and nobody else sees:
 * reading a message's fields with checks that name the opcode and the field
 * (rd_*), writing them (wr_*, pk_*), and the one-key messages (pack_key,
 * unpack_key); proto.c has them, proto_msg.c (control messages) and
 * proto_data.c (data-plane messages) use them. */
#ifndef HERD_PROTO_INT_H
#define HERD_PROTO_INT_H

#include "proto.h"
#include "value_int.h"

typedef struct rd {
    const msgpack_object *a;   /* the message's items; a[0] the opcode */
    int op;
    herd_err *err;
} rd;

enum { S_ANY = 0, S_NIL = 1, S_NAME = 2 };   /* nil allowed; a name (1..MAX bytes, no NUL) */

typedef struct wr { msgpack_sbuffer *sb; size_t mark; msgpack_packer pk; } wr;

int rd_open(rd *r, const msgpack_object *m, int op, uint32_t n, herd_err *err);
int bad_type(rd *r, const char *field, const msgpack_object *o, const char *expected);
int rd_int(rd *r, int i, const char *field, int64_t lo, int64_t hi, int64_t *out);
int rd_i32(rd *r, int i, const char *field, int64_t lo, int64_t hi, int *out);
int rd_u64(rd *r, int i, const char *field, uint64_t *out);
int rd_num(rd *r, int i, const char *field, double lo, double hi, double *out);
int rd_str(rd *r, int i, const char *field, int flags, herd_pstr *out);
int rd_value(rd *r, int i, const char *field, herd_value **out);
int rd_resources(rd *r, int i, const char *field, herd_value **out);
int rd_tags(rd *r, int i, const char *field, herd_value **out);
int rd_names(rd *r, int i, const char *field);
int rd_inputs(rd *r, int i, const char *field);
msgpack_packer *wr_open(wr *w, msgpack_sbuffer *sb, int op, uint32_t n);
int wr_close(wr *w, int rc);
void pk_str(msgpack_packer *pk, herd_pstr s);
int pk_value(msgpack_packer *pk, const herd_value *v);
int pack_key(msgpack_sbuffer *sb, int op, const herd_msg_key *m);
int unpack_key(const msgpack_object *msg, int op, herd_msg_key *out, herd_err *err);

#endif
