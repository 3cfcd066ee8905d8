/* core/store.c — a worker's held values (store.h): a mutex-guarded map from
 * task key to a reference-counted blob (a value, or its packed bytes). */
#include "store.h"
#include "kmap.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

struct herd_store {
    pthread_mutex_t mu;
    kmap vals;                 /* key -> herd_blob (one reference) */
    size_t bytes;
};

herd_store *herd_store_new(void)
{
    herd_store *st = calloc(1, sizeof *st);
    if (!st) return NULL;
    pthread_mutex_init(&st->mu, NULL);
    kmap_init(&st->vals);
    return st;
}

void herd_blob_unref(herd_blob *b)
{
    if (b && atomic_fetch_sub(&b->refs, 1) == 1) {
        free(b->data);
        herd_value_free(b->value);
        free(b);
    }
}

void herd_store_free(herd_store *st)
{
    if (!st) return;
    size_t i = 0;
    void *v;
    while (kmap_next(&st->vals, &i, NULL, &v)) herd_blob_unref(v);
    kmap_free(&st->vals);
    pthread_mutex_destroy(&st->mu);
    free(st);
}

static int put(herd_store *st, uint64_t key, char *data, herd_value *v, size_t len)
{
    herd_blob *b = malloc(sizeof *b);
    if (!b) { free(data); return -ENOMEM; }
    atomic_init(&b->refs, 1);
    b->len = len;
    b->data = data;
    b->value = v;
    pthread_mutex_lock(&st->mu);
    herd_blob *old = kmap_del(&st->vals, key);
    if (old) st->bytes -= old->len;
    int rc = kmap_put(&st->vals, key, b);
    if (!rc) st->bytes += len;
    pthread_mutex_unlock(&st->mu);
    herd_blob_unref(old);
    if (rc) { b->value = NULL; herd_blob_unref(b); }   /* a value stays the caller's */
    return rc;
}

int herd_store_put(herd_store *st, uint64_t key, char *data, size_t len) { return put(st, key, data, NULL, len); }

int herd_store_put_value(herd_store *st, uint64_t key, herd_value *v, size_t len)
{
    return put(st, key, NULL, v, len);
}

herd_blob *herd_store_get(herd_store *st, uint64_t key)
{
    pthread_mutex_lock(&st->mu);
    herd_blob *b = kmap_get(&st->vals, key);
    if (b) atomic_fetch_add(&b->refs, 1);
    pthread_mutex_unlock(&st->mu);
    return b;
}

int herd_store_del(herd_store *st, uint64_t key)
{
    pthread_mutex_lock(&st->mu);
    herd_blob *b = kmap_del(&st->vals, key);
    if (b) st->bytes -= b->len;
    pthread_mutex_unlock(&st->mu);
    herd_blob_unref(b);
    return b != NULL;
}

void herd_store_stats(herd_store *st, size_t *count, size_t *bytes)
{
    pthread_mutex_lock(&st->mu);
    if (count) *count = st->vals.len;
    if (bytes) *bytes = st->bytes;
    pthread_mutex_unlock(&st->mu);
}
