/* core/value_node.h — the layout of a herd_value node, shared by value.c
 * (everything about values) and value_buf.c (payloads outside the node:
 * shared, memfd-backed, taken with a free function). Nothing else may look
 * inside a node. */
#ifndef HERD_VALUE_NODE_H
#define HERD_VALUE_NODE_H
#include "value_int.h"

#include <stdint.h>

struct mapent {
    char *key;
    herd_value *val;
    uint32_t hash;
};

struct herd_value {              /* 32 bytes on LP64 */
    uint8_t type;                /* herd_type */
    uint8_t ilog;                /* maps: log2 of the index size, when idx is set */
    uint8_t depth;               /* nesting as built by push/set (see the top) */
    union {
        bool b;
        int64_t i;
        double d;
        uint64_t fut;
        struct { char *p; size_t len; herd_extbuf *ext; } s; /* str, bytes; ext: shared payload (value_buf.c) */
        struct { herd_value **v; size_t n, cap; } a;         /* array */
        struct { struct mapent *e; uint32_t *idx;            /* map; idx: entry+1, 0 empty */
                 uint32_t n, cap; } m;
    } u;
};

_Static_assert(sizeof(void *) != 8 || sizeof(herd_value) == 32, "herd_value should stay 32 bytes");

/* A payload not owned by the node alone (value_buf.c). */
void herd_extbuf_unref(herd_extbuf *x);
herd_extbuf *herd_extbuf_ref(herd_extbuf *x);
#endif
