/* core/value.c — herd_value itself: constructors, arrays and maps, accessors,
 * copy/free/equal, herd_tuple, and the future-reference walkers. YAML text
 * lives in value_yaml.c, msgpack in value_msgpack.c.
 *
 * Layout (value_node.h): one allocation per scalar; a str/bytes payload sits
 * right after the node (same allocation) unless it was moved in by
 * replace_futrefs or taken, or lives in a shared buffer (value_buf.c: copies
 * share it). Arrays
 * and maps grow geometrically; maps keep insertion order and are searched
 * linearly (kwargs and task arguments are small), with a hash index once
 * they grow past MAP_INDEX_MIN entries, hashed with the keyed hash of hash.h
 * (so a peer cannot choose keys that collide).
 *
 * Depth: each node caches its nesting depth (scalars 0, [] 1), kept by
 * push/set, which refuse to nest past HERD_VALUE_MAX_DEPTH. A container
 * changed after it was pushed (through herd_at, or futrefs replaced by
 * results) can be deeper than its parents' caches say, so every recursive
 * walk is bounded by the same limit as well, and free is iterative. */
#include "future.h"
#include "value_int.h"
#include "value_node.h"
#include "hash.h"

#include <herd/herd.h>

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAP_INDEX_MIN 16


/* ---- constructors ---- */

static herd_value *node(herd_type t)
{
    herd_value *v = malloc(sizeof *v);
    if (!v) return NULL;
    memset(v, 0, sizeof *v);
    v->type = t;
    return v;
}

HERD_API herd_value *herd_nil(void) { return node(HERD_NIL); }

HERD_API herd_value *herd_bool(bool b)
{
    herd_value *v = node(HERD_BOOL);
    if (v) v->u.b = b;
    return v;
}

HERD_API herd_value *herd_int(int64_t i)
{
    herd_value *v = node(HERD_INT);
    if (v) v->u.i = i;
    return v;
}

HERD_API herd_value *herd_float(double d)
{
    herd_value *v = node(HERD_FLOAT);
    if (v) v->u.d = d;
    return v;
}

static herd_value *blob(herd_type t, const void *p, size_t len)
{
    if (len > SIZE_MAX - sizeof(herd_value) - 1) return NULL;
    herd_value *v = malloc(sizeof *v + len + 1);
    if (!v) return NULL;
    memset(v, 0, sizeof *v);
    v->type = t;
    v->u.s.p = (char *)(v + 1);
    v->u.s.len = len;
    if (len) memcpy(v->u.s.p, p, len);
    v->u.s.p[len] = '\0';
    return v;
}

HERD_API herd_value *herd_str(const char *s) { return s ? blob(HERD_STR, s, strlen(s)) : NULL; }
HERD_API herd_value *herd_strn(const char *s, size_t len)
{
    return (s || !len) ? blob(HERD_STR, s, len) : NULL;
}
HERD_API herd_value *herd_bytes(const void *p, size_t len)
{
    return (p || !len) ? blob(HERD_BYTES, p, len) : NULL;
}
/* The payload stays where it is (out of line, as after a move_into). */
HERD_API herd_value *herd_bytes_take(void *p, size_t len)
{
    if (!p) return len ? NULL : herd_bytes(NULL, 0);
    herd_value *v = node(HERD_BYTES);
    if (!v) { free(p); return NULL; }
    v->u.s.p = p;
    v->u.s.len = len;
    return v;
}
static herd_value *container(herd_type t)
{
    herd_value *v = node(t);
    if (v) v->depth = 1;
    return v;
}

HERD_API herd_value *herd_array(void) { return container(HERD_ARRAY); }
HERD_API herd_value *herd_map(void) { return container(HERD_MAP); }

HERD_API herd_value *herd_futref(uint64_t key)
{
    herd_value *v = node(HERD_FUTREF);
    if (v) v->u.fut = key;
    return v;
}

/* ---- free ---- */

/* Iterative, with no allocation: a container being emptied becomes a frame
 * of a stack threaded through the containers themselves. Its remaining
 * children are popped from the end of its own item array; the link to the
 * frame above it goes where nothing is read any more (an array's cap, a
 * map's index pointer once the index is freed). */
static herd_value *frame_up(herd_value *f)
{
    return f->type == HERD_ARRAY ? (herd_value *)(uintptr_t)f->u.a.cap
                                 : (herd_value *)(void *)f->u.m.idx;
}

HERD_API void herd_value_free(herd_value *v)
{
    herd_value *top = NULL;                 /* the innermost frame */
    while (v || top) {
        if (v) {
            if (v->type == HERD_ARRAY && v->u.a.n) {
                v->u.a.cap = (size_t)(uintptr_t)top;
                top = v;
            } else if (v->type == HERD_MAP && v->u.m.n) {
                free(v->u.m.idx);
                v->u.m.idx = (uint32_t *)(void *)top;
                top = v;
            } else {
                if ((v->type == HERD_STR || v->type == HERD_BYTES) && v->u.s.ext)
                    herd_extbuf_unref(v->u.s.ext);
                else if ((v->type == HERD_STR || v->type == HERD_BYTES) && v->u.s.p != (char *)(v + 1))
                    free(v->u.s.p);
                else if (v->type == HERD_ARRAY) free(v->u.a.v);
                else if (v->type == HERD_MAP) { free(v->u.m.e); free(v->u.m.idx); }
                free(v);
            }
            v = NULL;
            continue;
        }
        if (top->type == HERD_ARRAY && top->u.a.n) {
            v = top->u.a.v[--top->u.a.n];
        } else if (top->type == HERD_MAP && top->u.m.n) {
            struct mapent *e = &top->u.m.e[--top->u.m.n];
            free(e->key);
            v = e->val;
        } else {                            /* frame emptied: free it, go up */
            herd_value *up = frame_up(top);
            free(top->type == HERD_ARRAY ? (void *)top->u.a.v : (void *)top->u.m.e);
            free(top);
            top = up;
        }
    }
}

/* The depth v gives a container it is put into, or -1 past the limit. */
static int nest(const herd_value *v)
{
    int d = v->depth + 1;
    return d > HERD_VALUE_MAX_DEPTH ? -1 : d;
}

/* ---- arrays ---- */

int herd_array_reserve(herd_value *arr, size_t n)
{
    if (!arr || arr->type != HERD_ARRAY) return -HERD_EARG;
    if (n <= arr->u.a.cap - arr->u.a.n) return 0;
    if (n > SIZE_MAX / sizeof(herd_value *) - arr->u.a.n) return -ENOMEM;
    size_t cap = arr->u.a.n + n;
    herd_value **nv = realloc(arr->u.a.v, cap * sizeof *nv);
    if (!nv) return -ENOMEM;
    arr->u.a.v = nv;
    arr->u.a.cap = cap;
    return 0;
}

HERD_API int herd_array_push(herd_value *arr, herd_value *item)
{
    if (!item) return -HERD_EARG;
    int d = nest(item);
    if (!arr || arr->type != HERD_ARRAY || d < 0) {
        herd_value_free(item);
        return -HERD_EARG;
    }
    if (arr->u.a.n == arr->u.a.cap) {
        size_t cap = arr->u.a.cap ? arr->u.a.cap * 2 : 4;
        herd_value **nv = realloc(arr->u.a.v, cap * sizeof *nv);
        if (!nv) {
            herd_value_free(item);
            return -ENOMEM;
        }
        arr->u.a.v = nv;
        arr->u.a.cap = cap;
    }
    arr->u.a.v[arr->u.a.n++] = item;
    if (d > arr->depth) arr->depth = (uint8_t)d;
    return 0;
}

/* ---- maps ---- */

static uint32_t strhash(const char *s)
{
    uint64_t h = herd_hash_bytes(s, strlen(s));
    return (uint32_t)(h ^ (h >> 32));
}

static int index_rebuild(herd_value *m, size_t icap)
{
    uint32_t *idx = calloc(icap, sizeof *idx);
    if (!idx) return -ENOMEM;
    for (size_t i = 0; i < m->u.m.n; i++) {
        size_t j = m->u.m.e[i].hash & (icap - 1);
        while (idx[j]) j = (j + 1) & (icap - 1);
        idx[j] = (uint32_t)(i + 1);
    }
    free(m->u.m.idx);
    m->u.m.idx = idx;
    m->ilog = 0;
    while (((size_t)1 << m->ilog) < icap) m->ilog++;
    return 0;
}

/* Index of key in m, or -1. */
static long map_find(const herd_value *m, const char *key, uint32_t h)
{
    if (m->u.m.idx) {
        size_t mask = ((size_t)1 << m->ilog) - 1;
        for (size_t j = h & mask; m->u.m.idx[j]; j = (j + 1) & mask) {
            const struct mapent *e = &m->u.m.e[m->u.m.idx[j] - 1];
            if (e->hash == h && strcmp(e->key, key) == 0) return (long)m->u.m.idx[j] - 1;
        }
        return -1;
    }
    for (size_t i = 0; i < m->u.m.n; i++)
        if (m->u.m.e[i].hash == h && strcmp(m->u.m.e[i].key, key) == 0) return (long)i;
    return -1;
}

size_t herd_map_longest_probe(const herd_value *m)
{
    if (!m || m->type != HERD_MAP || !m->u.m.idx) return 0;
    size_t cap = (size_t)1 << m->ilog, run = 0, best = 0;
    for (size_t j = 0; j < 2 * cap; j++) {      /* twice round: runs wrap */
        run = m->u.m.idx[j & (cap - 1)] ? run + 1 : 0;
        if (run > best) best = run;
        if (best >= cap) break;
    }
    return best;
}

HERD_API int herd_map_set(herd_value *map, const char *key, herd_value *item)
{
    if (!item) return -HERD_EARG;
    int d = nest(item);
    if (!map || map->type != HERD_MAP || !key || d < 0) {
        herd_value_free(item);
        return -HERD_EARG;
    }
    uint32_t h = strhash(key);
    long at = map_find(map, key, h);
    if (d > map->depth) map->depth = (uint8_t)d;     /* an upper bound once items are replaced */
    if (at >= 0) {
        herd_value_free(map->u.m.e[at].val);
        map->u.m.e[at].val = item;
        return 0;
    }
    if (map->u.m.n >= UINT32_MAX - 1) {
        herd_value_free(item);
        return -ENOMEM;
    }
    if (map->u.m.n == map->u.m.cap) {
        size_t cap = map->u.m.cap ? (size_t)map->u.m.cap * 2 : 4;
        if (cap > UINT32_MAX) cap = UINT32_MAX;
        struct mapent *ne = realloc(map->u.m.e, cap * sizeof *ne);
        if (!ne) {
            herd_value_free(item);
            return -ENOMEM;
        }
        map->u.m.e = ne;
        map->u.m.cap = (uint32_t)cap;
    }
    char *k = strdup(key);
    if (!k) {
        herd_value_free(item);
        return -ENOMEM;
    }
    size_t n = map->u.m.n;
    map->u.m.e[n] = (struct mapent){ k, item, h };
    map->u.m.n = (uint32_t)(n + 1);
    if (map->u.m.idx && (n + 1) * 2 <= ((size_t)1 << map->ilog)) {
        size_t mask = ((size_t)1 << map->ilog) - 1, j = h & mask;
        while (map->u.m.idx[j]) j = (j + 1) & mask;
        map->u.m.idx[j] = (uint32_t)(n + 1);
    } else if (n + 1 >= MAP_INDEX_MIN) {
        size_t icap = 64;
        while (icap < (n + 1) * 4) icap *= 2;
        if (index_rebuild(map, icap) < 0) {        /* fall back to linear search */
            free(map->u.m.idx);
            map->u.m.idx = NULL;
        }
    }
    return 0;
}

HERD_API int herd_map_del(herd_value *map, const char *key)
{
    if (!map || map->type != HERD_MAP || !key) return -HERD_EARG;
    long at = map_find(map, key, strhash(key));
    if (at < 0) return -HERD_EARG;
    free(map->u.m.e[at].key);
    herd_value_free(map->u.m.e[at].val);
    memmove(&map->u.m.e[at], &map->u.m.e[at + 1], (map->u.m.n - (size_t)at - 1) * sizeof(struct mapent));
    map->u.m.n--;
    if (map->u.m.idx && index_rebuild(map, (size_t)1 << map->ilog) < 0) {
        free(map->u.m.idx);
        map->u.m.idx = NULL;
    }
    return 0;
}

/* ---- inspection ---- */

HERD_API herd_type herd_typeof(const herd_value *v) { return v ? (herd_type)v->type : HERD_NIL; }

HERD_API const char *herd_type_name(herd_type t)
{
    switch (t) {
    case HERD_NIL: return "nil";
    case HERD_BOOL: return "bool";
    case HERD_INT: return "int";
    case HERD_FLOAT: return "float";
    case HERD_STR: return "str";
    case HERD_BYTES: return "bytes";
    case HERD_ARRAY: return "array";
    case HERD_MAP: return "map";
    case HERD_FUTREF: return "future";
    }
    return "unknown";
}

HERD_API bool herd_as_bool(const herd_value *v) { return v && v->type == HERD_BOOL && v->u.b; }

HERD_API int64_t herd_as_int(const herd_value *v)
{
    if (!v) return 0;
    if (v->type == HERD_INT) return v->u.i;
    if (v->type == HERD_FLOAT) {
        double d = v->u.d;
        if (isnan(d)) return 0;
        if (d >= 9223372036854775807.0) return INT64_MAX;
        if (d <= -9223372036854775808.0) return INT64_MIN;
        return (int64_t)d;
    }
    return 0;
}

HERD_API double herd_as_float(const herd_value *v)
{
    if (!v) return 0;
    if (v->type == HERD_FLOAT) return v->u.d;
    if (v->type == HERD_INT) return (double)v->u.i;
    return 0;
}

HERD_API const char *herd_as_str(const herd_value *v)
{
    return v && v->type == HERD_STR ? v->u.s.p : NULL;
}

HERD_API const void *herd_as_bytes(const herd_value *v, size_t *len)
{
    if (v && (v->type == HERD_STR || v->type == HERD_BYTES)) {
        if (len) *len = v->u.s.len;
        return v->u.s.p;
    }
    if (len) *len = 0;
    return NULL;
}

HERD_API uint64_t herd_as_futref(const herd_value *v)
{
    return v && v->type == HERD_FUTREF ? v->u.fut : 0;
}

HERD_API size_t herd_len(const herd_value *v)
{
    if (!v) return 0;
    switch (v->type) {
    case HERD_STR:
    case HERD_BYTES: return v->u.s.len;
    case HERD_ARRAY: return v->u.a.n;
    case HERD_MAP: return v->u.m.n;
    default: return 0;
    }
}

HERD_API herd_value *herd_at(const herd_value *v, size_t i)
{
    if (!v) return NULL;
    if (v->type == HERD_ARRAY) return i < v->u.a.n ? v->u.a.v[i] : NULL;
    if (v->type == HERD_MAP) return i < v->u.m.n ? v->u.m.e[i].val : NULL;
    return NULL;
}

HERD_API const char *herd_key_at(const herd_value *v, size_t i)
{
    return v && v->type == HERD_MAP && i < v->u.m.n ? v->u.m.e[i].key : NULL;
}

HERD_API herd_value *herd_map_get(const herd_value *map, const char *key)
{
    if (!map || map->type != HERD_MAP || !key) return NULL;
    long at = map_find(map, key, strhash(key));
    return at >= 0 ? map->u.m.e[at].val : NULL;
}

/* ---- whole values ---- */

static herd_value *copy_at(const herd_value *v, int level)
{
    if (!v || (level > HERD_VALUE_MAX_DEPTH && (v->type == HERD_ARRAY || v->type == HERD_MAP)))
        return NULL;
    herd_value *c = NULL;
    switch (v->type) {
    case HERD_STR:
    case HERD_BYTES:
        if (v->u.s.ext) {                  /* a shared payload: the copy shares it too */
            if (!(c = node(v->type))) return NULL;
            c->u.s = v->u.s;
            herd_extbuf_ref(c->u.s.ext);
            return c;
        }
        return blob(v->type, v->u.s.p, v->u.s.len);
    case HERD_ARRAY:
        if (!(c = herd_array())) return NULL;
        if (v->u.a.n) {
            if (!(c->u.a.v = malloc(v->u.a.n * sizeof *c->u.a.v))) goto fail;
            c->u.a.cap = v->u.a.n;
            for (size_t i = 0; i < v->u.a.n; i++) {
                if (!(c->u.a.v[i] = copy_at(v->u.a.v[i], level + 1))) goto fail;
                c->u.a.n++;
                if (c->u.a.v[i]->depth + 1 > c->depth) c->depth = (uint8_t)(c->u.a.v[i]->depth + 1);
            }
        }
        return c;
    case HERD_MAP:
        if (!(c = herd_map())) return NULL;
        for (size_t i = 0; i < v->u.m.n; i++) {
            herd_value *item = copy_at(v->u.m.e[i].val, level + 1);
            if (!item || herd_map_set(c, v->u.m.e[i].key, item) < 0) goto fail;
        }
        return c;
    default:
        if (!(c = node(v->type))) return NULL;
        c->u = v->u;
        return c;
    }
fail:
    herd_value_free(c);
    return NULL;
}

HERD_API herd_value *herd_value_copy(const herd_value *v) { return copy_at(v, 1); }

static bool equal_at(const herd_value *a, const herd_value *b, int level)
{
    if (a == b) return true;
    if (herd_typeof(a) != herd_typeof(b)) return false;
    if (!a || !b) return herd_typeof(a) == HERD_NIL;   /* NULL equals nil */
    switch (a->type) {
    case HERD_NIL: return true;
    case HERD_BOOL: return a->u.b == b->u.b;
    case HERD_INT: return a->u.i == b->u.i;
    case HERD_FLOAT: return a->u.d == b->u.d || (isnan(a->u.d) && isnan(b->u.d));
    case HERD_FUTREF: return a->u.fut == b->u.fut;
    case HERD_STR:
    case HERD_BYTES:
        return a->u.s.len == b->u.s.len && memcmp(a->u.s.p, b->u.s.p, a->u.s.len) == 0;
    case HERD_ARRAY:
        if (a->u.a.n != b->u.a.n || level > HERD_VALUE_MAX_DEPTH) return false;
        for (size_t i = 0; i < a->u.a.n; i++)
            if (!equal_at(a->u.a.v[i], b->u.a.v[i], level + 1)) return false;
        return true;
    case HERD_MAP:                                   /* order does not matter */
        if (a->u.m.n != b->u.m.n || level > HERD_VALUE_MAX_DEPTH) return false;
        for (size_t i = 0; i < a->u.m.n; i++) {
            const struct mapent *e = &a->u.m.e[i];
            const struct mapent *f = i < b->u.m.n && strcmp(b->u.m.e[i].key, e->key) == 0
                                         ? &b->u.m.e[i] : NULL;
            if (!f) {
                long at = map_find(b, e->key, e->hash);
                if (at < 0) return false;
                f = &b->u.m.e[at];
            }
            if (!equal_at(e->val, f->val, level + 1)) return false;
        }
        return true;
    }
    return false;
}

HERD_API bool herd_value_equal(const herd_value *a, const herd_value *b) { return equal_at(a, b, 1); }

/* ---- tuples ---- */

HERD_API herd_value *herd_vtuple(const char *fmt, va_list ap)
{
    if (!fmt) return NULL;
    herd_value *arr = herd_array();
    bool ok = arr != NULL;
    size_t n = strlen(fmt);
    if (ok && n && !(arr->u.a.v = malloc(n * sizeof *arr->u.a.v))) ok = false;
    if (ok) arr->u.a.cap = n;
    for (const char *f = fmt; *f; f++) {
        herd_value *item = NULL;
        switch (*f) {
        case 'n': item = herd_nil(); break;
        case 'b': item = herd_bool(va_arg(ap, int) != 0); break;
        case 'i': item = herd_int(va_arg(ap, int)); break;
        case 'I': item = herd_int(va_arg(ap, int64_t)); break;
        case 'd': item = herd_float(va_arg(ap, double)); break;
        case 's': {
            const char *s = va_arg(ap, const char *);
            item = s ? herd_str(s) : herd_nil();
            break;
        }
        case 'y': {
            const void *p = va_arg(ap, const void *);
            size_t len = va_arg(ap, size_t);
            item = herd_bytes(p, len);
            break;
        }
        case 'v': item = va_arg(ap, herd_value *); break;
        case 'f': {
            const herd_future *fu = va_arg(ap, const herd_future *);
            item = fu ? herd_futref(herd_future_key_of(fu)) : NULL;
            break;
        }
        default:                 /* bad letter: the remaining arguments are unknown */
            herd_value_free(arr);
            return NULL;
        }
        if (!item) ok = false;
        if (!ok) {
            herd_value_free(item);
            continue;            /* keep consuming, so 'v' values are freed */
        }
        int d = nest(item);
        if (d < 0) {
            herd_value_free(item);
            ok = false;
            continue;
        }
        if (d > arr->depth) arr->depth = (uint8_t)d;
        arr->u.a.v[arr->u.a.n++] = item;
    }
    if (!ok) {
        herd_value_free(arr);
        return NULL;
    }
    return arr;
}

HERD_API herd_value *herd_tuple(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    herd_value *v = herd_vtuple(fmt, ap);
    va_end(ap);
    return v;
}

/* ---- walkers ---- */

/* The depth of v, counted no further than budget + 1 levels. */
static int depth_upto(const herd_value *v, int budget)
{
    if (!v || (v->type != HERD_ARRAY && v->type != HERD_MAP)) return 0;
    if (budget <= 0) return 1;
    int d = 0;
    for (size_t i = 0; i < herd_len(v) && d < budget; i++) {
        int c = depth_upto(herd_at(v, i), budget - 1);
        if (c > d) d = c;
    }
    return d + 1;
}

int herd_value_depth(const herd_value *v) { return depth_upto(v, HERD_VALUE_MAX_DEPTH); }

struct keyset { uint64_t *k; size_t n, cap; };

static int collect(const herd_value *v, struct keyset *ks, int level)
{
    if (!v) return 0;
    if (v->type == HERD_FUTREF) {
        for (size_t i = 0; i < ks->n; i++)
            if (ks->k[i] == v->u.fut) return 0;
        if (ks->n == ks->cap) {
            size_t cap = ks->cap ? ks->cap * 2 : 4;
            uint64_t *nk = realloc(ks->k, cap * sizeof *nk);
            if (!nk) return -ENOMEM;
            ks->k = nk;
            ks->cap = cap;
        }
        ks->k[ks->n++] = v->u.fut;
        return 0;
    }
    if ((v->type == HERD_ARRAY || v->type == HERD_MAP) && level > HERD_VALUE_MAX_DEPTH) return -HERD_EARG;
    if (v->type == HERD_ARRAY || v->type == HERD_MAP)
        for (size_t i = 0; i < herd_len(v); i++) {
            int rc = collect(herd_at(v, i), ks, level + 1);
            if (rc) return rc;
        }
    return 0;
}

int herd_value_collect_futrefs(const herd_value *v, uint64_t **keys, size_t *n)
{
    struct keyset ks = { NULL, 0, 0 };
    int rc = collect(v, &ks, 1);
    if (rc) {
        free(ks.k);
        ks.k = NULL;
        ks.n = 0;
    }
    if (keys) *keys = ks.k;
    else free(ks.k);
    if (n) *n = ks.n;
    return rc;
}

/* Move the contents of src into dst (dst holds no payload); frees src. */
static int move_into(herd_value *dst, herd_value *src)
{
    if (src->type == HERD_STR || src->type == HERD_BYTES) {
        if (src->u.s.p == (char *)(src + 1)) {       /* payload inline: copy it out */
            char *p = malloc(src->u.s.len + 1);
            if (!p) return -ENOMEM;
            memcpy(p, src->u.s.p, src->u.s.len + 1);
            dst->type = src->type;
            dst->u.s.p = p;
            dst->u.s.len = src->u.s.len;
            dst->u.s.ext = NULL;
            free(src);
            return 0;
        }
    }
    *dst = *src;            /* containers: the item arrays move; scalars: copied */
    free(src);
    return 0;
}

static int call_fn(herd_value *ref, int (*fn)(void *, uint64_t, herd_value **), void *ud,
                   herd_value **out)
{
    herd_value *r = NULL;
    int rc = fn(ud, ref->u.fut, &r);
    if (rc) {
        herd_value_free(r);
        return rc;
    }
    if (!r && !(r = herd_nil())) return -ENOMEM;
    *out = r;
    return 0;
}

static int replace_in(herd_value *v, int (*fn)(void *, uint64_t, herd_value **), void *ud, int level)
{
    if (level > HERD_VALUE_MAX_DEPTH) return -HERD_EARG;
    size_t n = herd_len(v);
    for (size_t i = 0; i < n; i++) {
        herd_value **slot = v->type == HERD_ARRAY ? &v->u.a.v[i] : &v->u.m.e[i].val;
        herd_value *c = *slot;
        int rc = 0;
        if (c->type == HERD_FUTREF) {
            herd_value *r;
            if (!(rc = call_fn(c, fn, ud, &r))) {
                herd_value_free(c);
                *slot = r;
            }
        } else if (c->type == HERD_ARRAY || c->type == HERD_MAP) {
            rc = replace_in(c, fn, ud, level + 1);
        }
        if (rc) return rc;
    }
    return 0;
}

int herd_value_replace_futrefs(herd_value *v,
                               int (*fn)(void *ud, uint64_t key, herd_value **replacement),
                               void *ud)
{
    if (!v || !fn) return 0;
    if (v->type == HERD_FUTREF) {
        herd_value *r;
        int rc = call_fn(v, fn, ud, &r);
        if (rc) return rc;
        if ((rc = move_into(v, r))) herd_value_free(r);
        return rc;
    }
    if (v->type == HERD_ARRAY || v->type == HERD_MAP) return replace_in(v, fn, ud, 1);
    return 0;
}
