/* core/kmap.h — an open-addressing hash map from uint64 keys (task keys) to
 * pointers, used by the scheduler and the clients. Key 0 is reserved. */
#ifndef HERD_KMAP_H
#define HERD_KMAP_H
#include <stddef.h>
#include <stdint.h>

typedef struct kmap {
    uint64_t *keys;
    void **vals;
    size_t cap, len, tomb;
} kmap;

void  kmap_init(kmap *m);
void  kmap_free(kmap *m);
void *kmap_get(const kmap *m, uint64_t key);
int   kmap_put(kmap *m, uint64_t key, void *val);   /* 0, or -ENOMEM */
void *kmap_del(kmap *m, uint64_t key);              /* the removed value or NULL */
/* A table that emptied (under 1/8 full, over 1024 slots) shrinks to 4x its
 * entries. Not while anyone iterates it (kmap_next positions move).
 * Returns 1 when it shrank. */
int   kmap_compact(kmap *m);
/* Iterate: for (size_t i = 0; kmap_next(m, &i, &k, &v); ) — i starts at 0. */
int   kmap_next(const kmap *m, size_t *i, uint64_t *key, void **val);
#endif
