/* core/kmap.c — open addressing with linear probing and tombstones; grows at
 * 70% load. Keys are task keys (never 0; UINT64_MAX marks a tombstone),
 * hashed with the keyed hash of hash.h. */
#include "kmap.h"
#include "hash.h"
#include <errno.h>
#include <stdlib.h>

#define TOMB UINT64_MAX

/* Keyed: a client chooses its task keys' low bits. */
static size_t hash(uint64_t k) { return (size_t)herd_hash_u64(k); }

void kmap_init(kmap *m) { m->keys = NULL; m->vals = NULL; m->cap = m->len = m->tomb = 0; }

void kmap_free(kmap *m) { free(m->keys); free(m->vals); kmap_init(m); }

static size_t slot(const kmap *m, uint64_t key)
{
    size_t i = hash(key) & (m->cap - 1);
    while (m->keys[i] && m->keys[i] != key) i = (i + 1) & (m->cap - 1);
    return i;
}

void *kmap_get(const kmap *m, uint64_t key)
{
    if (!m->cap || !key || key == TOMB) return NULL;
    size_t i = slot(m, key);
    return m->keys[i] == key ? m->vals[i] : NULL;
}

/* The live entries into a table of ncap slots (a power of two above them). */
static int rehash(kmap *m, size_t ncap)
{
    kmap n = { calloc(ncap, sizeof(uint64_t)), calloc(ncap, sizeof(void *)), ncap, 0, 0 };
    if (!n.keys || !n.vals) { free(n.keys); free(n.vals); return -ENOMEM; }
    for (size_t i = 0; i < m->cap; i++)
        if (m->keys[i] && m->keys[i] != TOMB) {
            size_t j = hash(m->keys[i]) & (ncap - 1);
            while (n.keys[j]) j = (j + 1) & (ncap - 1);
            n.keys[j] = m->keys[i];
            n.vals[j] = m->vals[i];
            n.len++;
        }
    free(m->keys); free(m->vals);
    *m = n;
    return 0;
}

static int grow(kmap *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 64;
    if (m->len * 2 < m->cap) ncap = m->cap;       /* mostly tombstones: rehash in place size */
    return rehash(m, ncap);
}

int kmap_compact(kmap *m)
{
    if (m->cap <= 1024 || m->len * 8 >= m->cap) return 0;
    size_t ncap = 64;
    while (ncap < m->len * 4) ncap *= 2;
    return rehash(m, ncap) == 0;
}

int kmap_put(kmap *m, uint64_t key, void *val)
{
    if (!key || key == TOMB) return -EINVAL;
    if ((m->len + m->tomb + 1) * 10 >= m->cap * 7 && grow(m)) return -ENOMEM;
    size_t i = hash(key) & (m->cap - 1), t = (size_t)-1;
    while (m->keys[i] && m->keys[i] != key) {
        if (m->keys[i] == TOMB && t == (size_t)-1) t = i;
        i = (i + 1) & (m->cap - 1);
    }
    if (m->keys[i] == key) { m->vals[i] = val; return 0; }
    if (t != (size_t)-1) { i = t; m->tomb--; }
    m->keys[i] = key;
    m->vals[i] = val;
    m->len++;
    return 0;
}

void *kmap_del(kmap *m, uint64_t key)
{
    if (!m->cap || !key || key == TOMB) return NULL;
    size_t i = slot(m, key);
    if (m->keys[i] != key) return NULL;
    void *v = m->vals[i];
    m->keys[i] = TOMB;
    m->vals[i] = NULL;
    m->len--;
    m->tomb++;
    return v;
}

int kmap_next(const kmap *m, size_t *i, uint64_t *key, void **val)
{
    for (; *i < m->cap; (*i)++)
        if (m->keys[*i] && m->keys[*i] != TOMB) {
            if (key) *key = m->keys[*i];
            if (val) *val = m->vals[*i];
            (*i)++;
            return 1;
        }
    return 0;
}
