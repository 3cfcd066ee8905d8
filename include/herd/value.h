/* herd/value.h — herd_value, the dynamically typed value that task arguments,
 * task results and cluster kwargs are made of: nil, bool, int, float, str,
 * bytes, array, map (msgpack's model), plus a future reference that stands
 * for another task's result until the task runs.
 *
 * Ownership: every constructor returns a new value the caller owns and frees
 * with herd_value_free(). Containers take ownership of what is pushed into
 * them. Accessors return borrowed pointers, valid while the container is.
 *
 * Large payloads are shared, not copied: a task's arguments are read in
 * place (herd_as_bytes points at the holder's bytes when the input was
 * computed on this worker, or at the pages another worker of this machine
 * filled, mapped read-only), and a result of 64 KiB or more, once returned,
 * is shared by every copy herd_value_copy makes of it. So values are
 * immutable once they are a task's argument or result: never write through
 * a pointer that herd_as_bytes/herd_as_str returned (mapped pages are
 * read-only; writing them kills the process). */
#ifndef HERD_VALUE_H
#define HERD_VALUE_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum herd_type {
    HERD_NIL = 0,
    HERD_BOOL,
    HERD_INT,
    HERD_FLOAT,
    HERD_STR,
    HERD_BYTES,
    HERD_ARRAY,
    HERD_MAP,
    HERD_FUTREF     /* placeholder for a task's result (see herd_future_arg) */
} herd_type;

typedef struct herd_value herd_value;

/* The deepest nesting a value may have: scalars are 0 deep, [] 1, [[1]] 2.
 * herd_array_push and herd_map_set refuse an item that would nest past it
 * (-HERD_EARG), and no walk goes further: copy gives NULL, equal false and
 * to_string NULL for a value made deeper by changing a container after it
 * was pushed. Values that travel to workers must be shallower (24). */
#define HERD_VALUE_MAX_DEPTH 64

/* NULL never crashes any function here: a NULL value reads as nil, a NULL
 * output pointer or container is -HERD_EARG, as each comment says. */

/* Constructors. They return NULL only when memory runs out. */
HERD_API herd_value *herd_nil(void);
HERD_API herd_value *herd_bool(bool b);
HERD_API herd_value *herd_int(int64_t i);
HERD_API herd_value *herd_float(double d);
HERD_API herd_value *herd_str(const char *s);                 /* copies s (NUL-terminated) */
HERD_API herd_value *herd_strn(const char *s, size_t len);    /* copies len bytes */
HERD_API herd_value *herd_bytes(const void *p, size_t len);   /* copies */
/* Bytes without a copy: takes p (from malloc; herd_value_free frees it, and
 * so does a failure) as the value's payload. For a large result, build it in
 * a malloc'd buffer and return herd_bytes_take(buf, len). */
HERD_API herd_value *herd_bytes_take(void *p, size_t len);
/* Bytes filled in place, the fastest way to return a large result: a new
 * bytes value of len bytes (contents undefined) whose payload the caller
 * writes through *ptr, e.g.
 *     void *p; herd_value *v = herd_bytes_alloc(n, &p); if (v) memset(p, 1, n);
 * *ptr stays writable only until v is returned as a result, pushed into a
 * container, passed to any other herd function or copied: from then on the
 * bytes must not change. From 1 MiB up the payload is its own anonymous
 * mapping with transparent huge pages asked for (filled about twice as fast
 * as fresh malloc memory). A dependent on the same worker reads it in place;
 * another worker of this machine gets it through the Unix socket, straight
 * into a buffer of its own (one copy). NULL (and *ptr NULL) when memory runs out or ptr is NULL. */
HERD_API herd_value *herd_bytes_alloc(size_t len, void **ptr);
/* The same, the payload (from 1 MiB up) in a memfd: once returned it is
 * sealed read-only and every other worker of this machine (and a flow's
 * client there) maps the very same pages — no copy at all. Filling it costs
 * more than herd_bytes_alloc where shared memory gets no huge pages (the
 * common default), so use it for a value read on other workers (a lookup
 * table every task needs), herd_bytes_alloc otherwise. */
HERD_API herd_value *herd_bytes_alloc_shm(size_t len, void **ptr);
/* Bytes over a buffer the caller made some other way (mmap'd file, a
 * library's buffer): p is read in place, never copied or written, and
 * free_fn(p, len, ctx) runs once when the last value sharing it is freed —
 * or right away when this call fails (NULL). free_fn may be NULL for a
 * buffer that outlives every value (static data). p may be NULL only when
 * len is 0. */
HERD_API herd_value *herd_bytes_take_fn(void *p, size_t len, void (*free_fn)(void *p, size_t len, void *ctx),
                                        void *ctx);
HERD_API herd_value *herd_array(void);
HERD_API herd_value *herd_map(void);
HERD_API herd_value *herd_futref(uint64_t key);               /* used by herd_future_arg */

/* Build an array from a format, one character per element:
 *   n nil · b bool (int) · i int (int) · I int (int64_t) · d float (double)
 *   s str (const char *, NULL gives nil) · y bytes (const void *, size_t)
 *   v herd_value * (ownership taken) · f herd_future * (becomes a dependency)
 * e.g. herd_tuple("iis", 2022, 5, "data"). Returns NULL on a bad format. */
HERD_API herd_value *herd_tuple(const char *fmt, ...);
HERD_API herd_value *herd_vtuple(const char *fmt, va_list ap);

/* Containers. Push/set take ownership of item even on failure; they fail
 * with -HERD_EARG for a NULL or wrong-typed container, a NULL key, or an item
 * that would nest deeper than HERD_VALUE_MAX_DEPTH. */
HERD_API int herd_array_push(herd_value *arr, herd_value *item);
HERD_API int herd_map_set(herd_value *map, const char *key, herd_value *item); /* replaces */
HERD_API int herd_map_del(herd_value *map, const char *key);   /* 0, or -HERD_EARG if absent */

/* Inspection. Type mismatches return the zero value, never crash. */
HERD_API herd_type   herd_typeof(const herd_value *v);      /* NULL counts as nil */
HERD_API const char *herd_type_name(herd_type t);           /* "int", "map", … */
HERD_API bool        herd_as_bool(const herd_value *v);
HERD_API int64_t     herd_as_int(const herd_value *v);      /* floats truncate */
HERD_API double      herd_as_float(const herd_value *v);    /* ints convert */
HERD_API const char *herd_as_str(const herd_value *v);      /* NUL-terminated; NULL if not str */
HERD_API const void *herd_as_bytes(const herd_value *v, size_t *len); /* str or bytes */
HERD_API uint64_t    herd_as_futref(const herd_value *v);
HERD_API size_t      herd_len(const herd_value *v);         /* array/map items, str/bytes length */
HERD_API herd_value *herd_at(const herd_value *v, size_t i);          /* array item or map value */
HERD_API const char *herd_key_at(const herd_value *v, size_t i);      /* map key */
HERD_API herd_value *herd_map_get(const herd_value *map, const char *key);

/* Whole values. */
HERD_API herd_value *herd_value_copy(const herd_value *v);
HERD_API void        herd_value_free(herd_value *v);
HERD_API bool        herd_value_equal(const herd_value *a, const herd_value *b);
/* Flow-style YAML text of v ("{n_workers: 4, tags: [a, b]}"), malloc'd. */
HERD_API char       *herd_value_to_string(const herd_value *v);
/* Seconds from a number or a duration string ("1.5", "500ms", "2s", "5m",
 * "1h"), as kwargs and annotations read them. 0, or -HERD_EARG if v is
 * neither, or negative. For plugins reading options. */
HERD_API int herd_value_duration(const herd_value *v, double *secs);

/* Parse YAML (block or flow style, e.g. "{n_workers: 4, threads_per_worker: 2}")
 * into a value. Plain scalars become int/float/bool/nil where YAML 1.2's core
 * schema says so, strings otherwise. Errors name line and column. NULL or
 * empty text is nil; a NULL out is -HERD_EARG. */
HERD_API int herd_value_parse(const char *text, herd_value **out, herd_err *err);

/* msgpack encoding (the wire format). encode returns a malloc'd buffer. */
HERD_API int herd_value_encode(const herd_value *v, char **buf, size_t *len, herd_err *err);
HERD_API int herd_value_decode(const void *buf, size_t len, herd_value **out, herd_err *err);

#ifdef __cplusplus
}
#endif
#endif
