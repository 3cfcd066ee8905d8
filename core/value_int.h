/* core/value_int.h — hidden helpers around herd_value shared by core files:
 * YAML parsing with file positions, msgpack embedding for the wire code,
 * duration/size parsing, future-reference walking and error-message text.
 * Nothing here is exported from libherd. */
#ifndef HERD_VALUE_INT_H
#define HERD_VALUE_INT_H

#include <herd/value.h>
#include <msgpack.h>

/* HERD_VALUE_MAX_DEPTH (herd/value.h) is also the deepest nesting accepted
 * from YAML and from a msgpack_object. */
/* Deepest nesting msgpack-c can unpack from a buffer (its compiled-in parse
 * stack, MSGPACK_EMBED_STACK_SIZE). */
#define HERD_MSGPACK_MAX_DEPTH 32
/* Deepest value herd_value_pack/herd_value_encode accept: what msgpack-c can
 * read back, less 8 levels for the protocol messages that carry values. */
#define HERD_VALUE_WIRE_DEPTH (HERD_MSGPACK_MAX_DEPTH - 8)

/* ---- YAML (value_yaml.c) ---- */
/* Parse len bytes of YAML. Errors read "FILE:LINE:COL: message" (or
 * "line L, column C: message" when filename is NULL). */
int herd_value_parse_at(const char *text, size_t len, const char *filename,
                        herd_value **out, herd_err *err);

typedef struct herd_srcpos { int line, col; } herd_srcpos;   /* 1-based */
/* Like herd_value_parse_at, and *positions (may be NULL) receives a map from
 * the path of every map entry and array item to [key_line, key_col,
 * value_line, value_col]. Paths join map keys with '.' and array indexes with
 * "[i]": "cluster_kwargs.n_workers", "hosts[2]", "a.b[0].c". Array items have
 * key == value position. Items reached through an alias are not listed. */
int herd_value_parse_positions(const char *text, size_t len, const char *filename,
                               herd_value **out, herd_value **positions, herd_err *err);
/* Look a path up in positions. key and val may be NULL. 0, or -HERD_EARG when
 * the path is not there. */
int herd_srcpos_get(const herd_value *positions, const char *path,
                    herd_srcpos *key, herd_srcpos *val);

/* ---- msgpack (value_msgpack.c) ---- */
/* Append v to a packer. 0, -ENOMEM, or -HERD_EARG when v is nested deeper
 * than HERD_VALUE_WIRE_DEPTH or has an item over 4 GiB; in that case nothing
 * was written (the caller can pack something else in its place). */
int herd_value_pack(msgpack_packer *pk, const herd_value *v);
/* Convert an unpacked object. Strings keys only; ext type 1 (8-byte
 * big-endian key) is a futref; depth limit HERD_VALUE_MAX_DEPTH. */
int herd_value_from_msgpack(const msgpack_object *o, herd_value **out, herd_err *err);
/* Check that buf starts with one well-formed msgpack object whose containers
 * declare no more items than the buffer can hold and nest at most
 * HERD_MSGPACK_MAX_DEPTH deep; *used (may be NULL) gets its size. Call before
 * msgpack_unpack_next on untrusted input: msgpack-c allocates a container's
 * declared size before reading it, so 5 hostile bytes could ask for 100 GB.
 * 0, or -HERD_EPROTO (truncated/malformed/too deep). */
int herd_msgpack_check(const void *buf, size_t len, size_t *used, herd_err *err);
/* What the first byte b of a msgpack item says of the bytes that follow it:
 * a big-endian size of lenbytes bytes (0, 1, 2 or 4), then with ext an ext
 * type byte, then the payload: skip bytes, or the size's worth for str, bin
 * and ext; a container declares count items (or the size's worth) of per
 * objects each (1 array, 2 map; 0 not a container). The one table of
 * msgpack's formats: herd_msgpack_check and fetch_read.c walk with it.
 * 0, or -1 for the byte msgpack never uses (0xc1). */
typedef struct herd_msgpack_head {
    int lenbytes, ext;
    uint64_t skip, count, per;
} herd_msgpack_head;
int herd_msgpack_head_of(unsigned b, herd_msgpack_head *h);
/* The n-byte big-endian number at p (n <= 8). */
uint64_t herd_msgpack_be(const unsigned char *p, int n);
/* "int", "str", "map", … for error messages. */
const char *herd_msgpack_type_name(msgpack_object_type t);

/* Like herd_value_pack, but a bytes payload for which fdref returns an
 * index >= 0 is written as ext type 2 (4-byte index, 8-byte length,
 * big-endian) instead of its bytes: it travels as a descriptor. */
int herd_value_pack_fds(msgpack_packer *pk, const herd_value *v,
                        int (*fdref)(void *ud, const herd_value *bytes), void *ud);
/* herd_value_decode for what herd_value_pack_fds wrote: each ext 2 becomes
 * what fdval returns for (index, length) — a new bytes value, or NULL with
 * err set. Without fdval, ext 2 is refused. */
int herd_value_decode_fds(const void *buf, size_t len,
                          herd_value *(*fdval)(void *ud, uint32_t idx, uint64_t len, herd_err *err), void *ud,
                          herd_value **out, herd_err *err);

/* ---- payloads outside the node (value_buf.c) ---- */
typedef struct herd_extbuf herd_extbuf;
/* str/bytes payloads this long are shared by copies once herd_value_share
 * has run over their value. */
#define HERD_SHARE_MIN ((size_t)64 * 1024)
/* Freeze a task's result before it is stored and read by others: memfds
 * from herd_bytes_alloc sealed (their maps read-only), payloads of
 * HERD_SHARE_MIN bytes or more moved into shared buffers, so that
 * herd_value_copy shares them instead of copying. *v may be replaced (a
 * bytes value itself). 0 or -ENOMEM (v stays valid, partly shared). */
int herd_value_share(herd_value **v);
/* The sealed memfd holding all of bytes value v's payload, or -1. Borrowed:
 * valid while v is. */
int herd_bytes_memfd(const herd_value *v);
/* len (> 0) bytes of fresh anonymous memory, huge pages asked for, faulted
 * in; NULL when mmap fails. What herd_bytes_alloc uses from HERD_SHM_MIN. */
void *herd_huge_map(size_t len);
/* A bytes value over len bytes of a peer's memfd mapped read-only at p
 * (taken: unmapped when the last copy goes, also on failure); counted in
 * herd_peer_mapped_bytes while it is mapped. */
herd_value *herd_bytes_mapped(void *p, size_t len);
/* The bytes of peers' memfds this process maps now (herd_bytes_mapped). */
size_t herd_peer_mapped_bytes(void);

/* ---- units (kwargs.c) ---- */
/* "1.5", "500ms", "2s", "5m", "1h", "1d" (also us, ns, w and long names like
 * "minutes"; case-insensitive; spaces before the unit ok) -> seconds >= 0.
 * 0 or -HERD_EARG. */
int herd_parse_duration(const char *s, double *secs);
/* "512", "4kB" (4000), "4KiB" (4096), "2GB", "1.5GiB", "4k", "4 MB";
 * case-insensitive like Dask's parse_bytes -> bytes >= 0. 0 or -HERD_EARG. */
int herd_parse_size(const char *s, int64_t *bytes);

/* ---- walking (value.c) ---- */
/* Every futref key in v (recursively), without duplicates, in first-seen
 * order. *keys is malloc'd (NULL when *n == 0). 0 or -ENOMEM. */
int herd_value_collect_futrefs(const herd_value *v, uint64_t **keys, size_t *n);
/* Replace every futref node of v in place by what fn returns (ownership of
 * *replacement passes to v; NULL counts as nil). A nonzero return from fn
 * stops the walk and is returned. If v itself is a futref it becomes the
 * replacement (its contents move into v). */
int herd_value_replace_futrefs(herd_value *v,
                               int (*fn)(void *ud, uint64_t key, herd_value **replacement),
                               void *ud);
/* Make room for n more items in arr (one allocation instead of several). */
int herd_array_reserve(herd_value *arr, size_t n);
/* Nesting depth: scalars 0, [] 1, [[1]] 2; counted no further than
 * HERD_VALUE_MAX_DEPTH + 1, so any value can be measured. */
int herd_value_depth(const herd_value *v);
/* The longest run of occupied slots in a map's hash index (0 without one):
 * what a lookup of an absent key may have to step over. For tests. */
size_t herd_map_longest_probe(const herd_value *map);

/* ---- text (value_yaml.c) ---- */
/* For error messages: "int 4", "str \"four\"", "map {a: 1}", "null", cut to
 * about max bytes with "…". malloc'd (NULL only when memory runs out). */
char *herd_value_describe(const herd_value *v, size_t max);
/* strtod in the C locale whatever LC_NUMERIC the program set. */
double herd_strtod_c(const char *s, char **end);

#endif
