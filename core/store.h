/* core/store.h — a worker's held values: task key -> the value (as its task
 * returned it, read-only from then on, or packed msgpack bytes), shared by
 * its executor threads (put, local reads), its peer server (reads for other
 * workers) and its loop (FREE). Thread-safe. */
#ifndef HERD_STORE_H
#define HERD_STORE_H
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <herd/value.h>

/* One held value; readers hold a reference, so FREE never pulls bytes from
 * under a transfer. */
typedef struct herd_blob {
    atomic_int refs;
    size_t len;                /* data's length; with value, its packed size */
    char *data;                /* malloc'd, owned; NULL when value is set */
    herd_value *value;         /* owned, never changed once stored (readers share it) */
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
/* key's value with a reference for the caller (herd_blob_unref), or NULL. */
herd_blob *herd_store_get(herd_store *st, uint64_t key);
void herd_blob_unref(herd_blob *b);
/* Forget key's value (freed once its last reader is done). 1 if it was held. */
int herd_store_del(herd_store *st, uint64_t key);
/* Values held and their bytes. */
void herd_store_stats(herd_store *st, size_t *count, size_t *bytes);
#endif
