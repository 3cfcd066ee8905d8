/* core/store.h — a worker's held values: task key -> the value (as its task
 * returned it, read-only from then on, or packed msgpack bytes, or a file
 * it was spilled to), shared by its executor threads (put, local reads), its
 * peer server (reads for other workers), its spiller (spill.c) and its loop
 * (FREE). Thread-safe. */
#ifndef HERD_STORE_H
#define HERD_STORE_H
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <herd/value.h>

/* One held value; readers hold a reference, so FREE (or a spill) never pulls
 * bytes from under a transfer. A reader sees value, or len bytes at data:
 * never a spilled blob (herd_store_get maps the file for it). */
typedef struct herd_blob {
    atomic_int refs;
    size_t len;                /* data's length; with value or path, its packed size */
    char *data;                /* malloc'd and owned, or (mapped) a read-only
                                  mapping of a spill file; NULL when value or path is set */
    herd_value *value;         /* owned, never changed once stored (readers share it) */
    char *path;                /* spilled: the file holding the packed bytes,
                                  deleted with the blob (only in the store's map) */
    int mapped;                /* data is an mmap of len bytes */
    uint64_t used;             /* least recently used first: the store's clock at the last get */
} herd_blob;

typedef struct herd_store herd_store;

/* A new empty store, or NULL when memory runs out. */
herd_store *herd_store_new(void);
/* Free the store and every value no reader still holds. */
void herd_store_free(herd_store *st);
/* Keep len bytes at data (malloc'd; taken, also on failure) under key,
 * replacing an older value. 0 or -ENOMEM. */
int herd_store_put(herd_store *st, uint64_t key, char *data, size_t len);
/* Keep v, len bytes once packed (herd_wire_size), under key: taken on
 * success; still the caller's on -ENOMEM. */
int herd_store_put_value(herd_store *st, uint64_t key, herd_value *v, size_t len);
/* key's value with a reference for the caller (herd_blob_unref), or NULL. A
 * spilled value comes back as a read-only mapping of its file (the file
 * stays where it is). */
herd_blob *herd_store_get(herd_store *st, uint64_t key);
void herd_blob_unref(herd_blob *b);
/* Forget key's value (freed once its last reader is done; a spilled one's
 * file deleted). 1 if it was held. */
int herd_store_del(herd_store *st, uint64_t key);
/* Values held; bytes in memory (managed memory); bytes spilled to disk. */
void herd_store_stats(herd_store *st, size_t *count, size_t *bytes, size_t *spilled);

/* For the spiller (spill.c): the least recently used value still in memory,
 * with a reference, and its key; NULL when none is. */
herd_blob *herd_store_lru(herd_store *st, uint64_t *key);
/* Put now (a spilled blob: path set) in key's place if key still holds old;
 * 1 if so (the store then owns now), else 0 (now stays the caller's). */
int herd_store_swap(herd_store *st, uint64_t key, const herd_blob *old, herd_blob *now);
#endif
