/* core/store.c — a worker's held values (store.h): a mutex-guarded map from
 * task key to a reference-counted blob (a value, its packed bytes, or the
 * file spill.c moved it to), with a clock for least-recently-used order. */
#include "store.h"
#include "kmap.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

/* Freeing this much at once gives the memory back to the system
 * (malloc_trim): glibc keeps large freed heap chunks otherwise, and a
 * released or spilled value would not lower the worker's RSS. */
#define TRIM_AT ((size_t)1 << 20)

struct herd_store {
    pthread_mutex_t mu;
    kmap vals;                 /* key -> herd_blob (one reference) */
    size_t bytes, spilled;     /* in memory; in files */
    uint64_t clock;            /* LRU stamps */
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
    if (!b || atomic_fetch_sub(&b->refs, 1) != 1) return;
    int trim = !b->path && !b->mapped && b->len >= TRIM_AT;
    if (b->mapped) munmap(b->data, b->len);
    else free(b->data);
    if (b->path) { unlink(b->path); free(b->path); }
    herd_value_free(b->value);
    free(b);
    if (trim) malloc_trim(0);
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

/* b leaves (or joins, sign 1) the map's accounting; st->mu held. */
static void account(herd_store *st, const herd_blob *b, int sign)
{
    size_t *n = b->path ? &st->spilled : &st->bytes;
    if (sign > 0) *n += b->len;
    else *n -= b->len;
}

static int put(herd_store *st, uint64_t key, char *data, herd_value *v, size_t len)
{
    herd_blob *b = calloc(1, sizeof *b);
    if (!b) { free(data); return -ENOMEM; }
    atomic_init(&b->refs, 1);
    b->len = len;
    b->data = data;
    b->value = v;
    pthread_mutex_lock(&st->mu);
    b->used = ++st->clock;
    herd_blob *old = kmap_del(&st->vals, key);
    if (old) account(st, old, -1);
    int rc = kmap_put(&st->vals, key, b);
    if (!rc) account(st, b, 1);
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

/* A readable view of a spilled blob (its file mapped read-only), a new
 * blob with one reference, or NULL when the file cannot be read. */
static herd_blob *spill_view(const herd_blob *spilled)
{
    herd_blob *v = calloc(1, sizeof *v);
    if (!v) return NULL;
    atomic_init(&v->refs, 1);
    v->len = spilled->len;
    int fd = open(spilled->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) { free(v); return NULL; }
    void *p = v->len ? mmap(NULL, v->len, PROT_READ, MAP_PRIVATE, fd, 0) : MAP_FAILED;
    close(fd);
    if (p == MAP_FAILED) { free(v); return NULL; }
    v->data = p;
    v->mapped = 1;
    return v;
}

herd_blob *herd_store_get(herd_store *st, uint64_t key)
{
    pthread_mutex_lock(&st->mu);
    herd_blob *b = kmap_get(&st->vals, key);
    if (b) {
        atomic_fetch_add(&b->refs, 1);
        b->used = ++st->clock;
    }
    pthread_mutex_unlock(&st->mu);
    if (b && b->path) {        /* the file stays while we hold b: map it */
        herd_blob *view = spill_view(b);
        herd_blob_unref(b);
        b = view;
    }
    return b;
}

int herd_store_del(herd_store *st, uint64_t key)
{
    pthread_mutex_lock(&st->mu);
    herd_blob *b = kmap_del(&st->vals, key);
    if (b) account(st, b, -1);
    pthread_mutex_unlock(&st->mu);
    herd_blob_unref(b);
    return b != NULL;
}

void herd_store_stats(herd_store *st, size_t *count, size_t *bytes, size_t *spilled)
{
    pthread_mutex_lock(&st->mu);
    if (count) *count = st->vals.len;
    if (bytes) *bytes = st->bytes;
    if (spilled) *spilled = st->spilled;
    pthread_mutex_unlock(&st->mu);
}

herd_blob *herd_store_lru(herd_store *st, uint64_t *key)
{
    herd_blob *best = NULL;
    size_t i = 0;
    uint64_t k;
    void *v;
    pthread_mutex_lock(&st->mu);
    while (kmap_next(&st->vals, &i, &k, &v)) {
        herd_blob *b = v;
        if (!b->path && (!best || b->used < best->used)) { best = b; *key = k; }
    }
    if (best) atomic_fetch_add(&best->refs, 1);
    pthread_mutex_unlock(&st->mu);
    return best;
}

int herd_store_swap(herd_store *st, uint64_t key, const herd_blob *old, herd_blob *now)
{
    pthread_mutex_lock(&st->mu);
    herd_blob *cur = kmap_get(&st->vals, key);
    int ok = cur == old && kmap_put(&st->vals, key, now) == 0;
    if (ok) {
        account(st, cur, -1);
        account(st, now, 1);
        now->used = cur->used;
    }
    pthread_mutex_unlock(&st->mu);
    if (ok) herd_blob_unref(cur);
    return ok;
}
