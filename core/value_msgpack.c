/* core/value_msgpack.c — herd_value on the wire: herd_value_encode/decode
 * (msgpack-c), the packer/unpacked-object helpers the wire code embeds values
 * with, and herd_msgpack_check, the structural pre-check that makes decoding
 * hostile bytes safe. A futref is msgpack ext type 1 holding the 8-byte
 * big-endian key. */
#include "value_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define EXT_FUTREF 1
#define EXT_FDREF 2        /* a payload passed as a descriptor (herd_value_pack_fds) */

typedef struct fdpack { int (*fdref)(void *ud, const herd_value *bytes); void *ud; } fdpack;
typedef struct fdconv { herd_value *(*fdval)(void *ud, uint32_t idx, uint64_t len, herd_err *err); void *ud; } fdconv;

/* ---- encoding ---- */

/* Whether v nests deeper than budget levels or holds an item msgpack cannot
 * size (over 4 GiB); checked before anything is written. */
static bool unpackable(const herd_value *v, int budget)
{
    herd_type t = herd_typeof(v);
    if (t == HERD_STR || t == HERD_BYTES) return herd_len(v) > UINT32_MAX;
    if (t != HERD_ARRAY && t != HERD_MAP) return false;
    if (budget <= 0 || herd_len(v) > UINT32_MAX) return true;
    for (size_t i = 0; i < herd_len(v); i++)
        if (unpackable(herd_at(v, i), budget - 1)) return true;
    return false;
}

static int pack(msgpack_packer *pk, const herd_value *v, const fdpack *fp)
{
    int rc = 0;
    switch (herd_typeof(v)) {
    case HERD_NIL: rc = msgpack_pack_nil(pk); break;
    case HERD_BOOL: rc = herd_as_bool(v) ? msgpack_pack_true(pk) : msgpack_pack_false(pk); break;
    case HERD_INT: rc = msgpack_pack_int64(pk, herd_as_int(v)); break;
    case HERD_FLOAT: rc = msgpack_pack_double(pk, herd_as_float(v)); break;
    case HERD_STR:
    case HERD_BYTES: {
        size_t n;
        const void *p = herd_as_bytes(v, &n);
        int idx = fp && herd_typeof(v) == HERD_BYTES ? fp->fdref(fp->ud, v) : -1;
        if (idx >= 0) {
            unsigned char b[12];
            for (int i = 0; i < 4; i++) b[i] = (unsigned char)((uint32_t)idx >> (24 - 8 * i));
            for (int i = 0; i < 8; i++) b[4 + i] = (unsigned char)((uint64_t)n >> (56 - 8 * i));
            rc = msgpack_pack_ext(pk, 12, EXT_FDREF) || msgpack_pack_ext_body(pk, b, 12);
        } else if (herd_typeof(v) == HERD_STR)
            rc = msgpack_pack_str(pk, n) || msgpack_pack_str_body(pk, p, n);
        else
            rc = msgpack_pack_bin(pk, n) || msgpack_pack_bin_body(pk, p, n);
        break;
    }
    case HERD_ARRAY:
    case HERD_MAP: {
        bool map = herd_typeof(v) == HERD_MAP;
        size_t n = herd_len(v);
        rc = map ? msgpack_pack_map(pk, n) : msgpack_pack_array(pk, n);
        for (size_t i = 0; !rc && i < n; i++) {
            if (map) {
                const char *k = herd_key_at(v, i);
                size_t kl = strlen(k);
                if (msgpack_pack_str(pk, kl) || msgpack_pack_str_body(pk, k, kl)) return -ENOMEM;
            }
            int r = pack(pk, herd_at(v, i), fp);
            if (r) return r;
        }
        break;
    }
    case HERD_FUTREF: {
        uint64_t k = herd_as_futref(v);
        unsigned char be[8];
        for (int i = 0; i < 8; i++) be[i] = (unsigned char)(k >> (56 - 8 * i));
        rc = msgpack_pack_ext(pk, 8, EXT_FUTREF) || msgpack_pack_ext_body(pk, be, 8);
        break;
    }
    }
    return rc ? -ENOMEM : 0;
}

int herd_value_pack(msgpack_packer *pk, const herd_value *v)
{
    if (!pk || unpackable(v, HERD_VALUE_WIRE_DEPTH)) return -HERD_EARG;
    return pack(pk, v, NULL);
}

int herd_value_pack_fds(msgpack_packer *pk, const herd_value *v,
                        int (*fdref)(void *ud, const herd_value *bytes), void *ud)
{
    if (!pk || !fdref || unpackable(v, HERD_VALUE_WIRE_DEPTH)) return -HERD_EARG;
    fdpack fp = { fdref, ud };
    return pack(pk, v, &fp);
}

HERD_API int herd_value_encode(const herd_value *v, char **buf, size_t *len, herd_err *err)
{
    if (buf) *buf = NULL;
    if (len) *len = 0;
    if (!buf || !len) return herd_err_set(err, -HERD_EARG, "herd_value_encode: no output buffer");
    if (unpackable(v, HERD_VALUE_WIRE_DEPTH)) {
        int d = herd_value_depth(v);
        if (d > HERD_VALUE_WIRE_DEPTH)
            return herd_err_set(err, -HERD_EARG, "value is nested %d levels deep; at most %d can be encoded",
                                d, HERD_VALUE_WIRE_DEPTH);
        return herd_err_set(err, -HERD_EARG, "value too large to encode (over 4 GiB in one item)");
    }
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    int rc = pack(&pk, v, NULL);
    if (rc) {
        msgpack_sbuffer_destroy(&sb);
        return herd_err_set(err, rc, "out of memory encoding a value");
    }
    *buf = sb.data;             /* sbuffer memory is malloc'd: the caller frees it */
    *len = sb.size;
    return 0;
}

/* ---- decoding ---- */

const char *herd_msgpack_type_name(msgpack_object_type t)
{
    switch (t) {
    case MSGPACK_OBJECT_NIL: return "nil";
    case MSGPACK_OBJECT_BOOLEAN: return "bool";
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: return "int";
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: return "float";
    case MSGPACK_OBJECT_STR: return "str";
    case MSGPACK_OBJECT_BIN: return "bytes";
    case MSGPACK_OBJECT_ARRAY: return "array";
    case MSGPACK_OBJECT_MAP: return "map";
    case MSGPACK_OBJECT_EXT: return "ext";
    }
    return "unknown";
}

static int conv(const msgpack_object *o, int depth, const fdconv *fc, herd_value **out, herd_err *err)
{
    herd_value *v = NULL;
    *out = NULL;
    switch (o->type) {
    case MSGPACK_OBJECT_NIL: v = herd_nil(); break;
    case MSGPACK_OBJECT_BOOLEAN: v = herd_bool(o->via.boolean); break;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        if (o->via.u64 > INT64_MAX)
            return herd_err_set(err, -HERD_EPROTO, "msgpack: integer %" PRIu64 " is out of range (max %" PRId64 ")",
                                o->via.u64, INT64_MAX);
        v = herd_int((int64_t)o->via.u64);
        break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: v = herd_int(o->via.i64); break;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: v = herd_float(o->via.f64); break;
    case MSGPACK_OBJECT_STR: v = herd_strn(o->via.str.ptr, o->via.str.size); break;
    case MSGPACK_OBJECT_BIN: v = herd_bytes(o->via.bin.ptr, o->via.bin.size); break;
    case MSGPACK_OBJECT_EXT:
        if (o->via.ext.type == EXT_FDREF && fc) {
            if (o->via.ext.size != 12)
                return herd_err_set(err, -HERD_EPROTO, "msgpack: descriptor reference (ext 2) holds %u bytes, expected 12",
                                    (unsigned)o->via.ext.size);
            const unsigned char *b = (const unsigned char *)o->via.ext.ptr;
            uint32_t idx = 0;
            uint64_t n = 0;
            for (int i = 0; i < 4; i++) idx = (idx << 8) | b[i];
            for (int i = 0; i < 8; i++) n = (n << 8) | b[4 + i];
            if (!(v = fc->fdval(fc->ud, idx, n, err))) return err && err->code ? err->code : -HERD_EPROTO;
            break;
        }
        if (o->via.ext.type != EXT_FUTREF)
            return herd_err_set(err, -HERD_EPROTO, "msgpack: unknown ext type %d", o->via.ext.type);
        if (o->via.ext.size != 8)
            return herd_err_set(err, -HERD_EPROTO,
                                "msgpack: future reference (ext 1) holds %u bytes, expected 8",
                                (unsigned)o->via.ext.size);
        {
            uint64_t k = 0;
            for (int i = 0; i < 8; i++) k = (k << 8) | (unsigned char)o->via.ext.ptr[i];
            v = herd_futref(k);
        }
        break;
    case MSGPACK_OBJECT_ARRAY:
    case MSGPACK_OBJECT_MAP: {
        bool map = o->type == MSGPACK_OBJECT_MAP;
        if (depth >= HERD_VALUE_MAX_DEPTH)
            return herd_err_set(err, -HERD_EPROTO, "msgpack: nested deeper than %d levels",
                                HERD_VALUE_MAX_DEPTH);
        if (!(v = map ? herd_map() : herd_array())) break;
        uint32_t n = map ? o->via.map.size : o->via.array.size;
        if (!map && herd_array_reserve(v, n)) goto nomem;
        for (uint32_t i = 0; i < n; i++) {
            herd_value *item;
            const msgpack_object *io = map ? &o->via.map.ptr[i].val : &o->via.array.ptr[i];
            char key[128];
            const char *k = NULL;
            char *kheap = NULL;
            if (map) {
                const msgpack_object *ko = &o->via.map.ptr[i].key;
                if (ko->type != MSGPACK_OBJECT_STR) {
                    herd_value_free(v);
                    if (ko->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
                        return herd_err_set(err, -HERD_EPROTO,
                                            "msgpack: map key %u is an int (%" PRIu64 "), expected a string",
                                            i, ko->via.u64);
                    if (ko->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
                        return herd_err_set(err, -HERD_EPROTO,
                                            "msgpack: map key %u is an int (%" PRId64 "), expected a string",
                                            i, ko->via.i64);
                    return herd_err_set(err, -HERD_EPROTO, "msgpack: map key %u is a%s %s, expected a string",
                                        i, ko->type == MSGPACK_OBJECT_ARRAY || ko->type == MSGPACK_OBJECT_EXT ? "n" : "",
                                        herd_msgpack_type_name(ko->type));
                }
                size_t kl = ko->via.str.size;
                if (kl && memchr(ko->via.str.ptr, '\0', kl)) {   /* "" arrives with a NULL ptr */
                    herd_value_free(v);
                    return herd_err_set(err, -HERD_EPROTO, "msgpack: map key %u contains a NUL byte", i);
                }
                if (kl < sizeof key) {
                    k = key;
                } else if (!(k = kheap = malloc(kl + 1))) {
                    goto nomem;
                }
                if (kl) memcpy((char *)k, ko->via.str.ptr, kl);
                ((char *)k)[kl] = '\0';
            }
            int rc = conv(io, depth + 1, fc, &item, err);
            if (!rc) rc = map ? herd_map_set(v, k, item) : herd_array_push(v, item);
            free(kheap);
            if (rc) {
                herd_value_free(v);
                return rc == -ENOMEM ? herd_err_set(err, rc, "out of memory decoding a value") : rc;
            }
        }
        break;
    }
    default:
        return herd_err_set(err, -HERD_EPROTO, "msgpack: unknown object type %d", (int)o->type);
    }
    if (!v) return herd_err_set(err, -ENOMEM, "out of memory decoding a value");
    *out = v;
    return 0;
nomem:
    herd_value_free(v);
    return herd_err_set(err, -ENOMEM, "out of memory decoding a value");
}

int herd_value_from_msgpack(const msgpack_object *o, herd_value **out, herd_err *err)
{
    if (out) *out = NULL;
    if (!o || !out) return herd_err_set(err, -HERD_EARG, "herd_value_from_msgpack: NULL argument");
    return conv(o, 0, NULL, out, err);
}

/* ---- structural check ---- */

uint64_t herd_msgpack_be(const unsigned char *p, int n)
{
    uint64_t x = 0;
    for (int i = 0; i < n; i++) x = (x << 8) | p[i];
    return x;
}

int herd_msgpack_head_of(unsigned b, herd_msgpack_head *h)
{
    *h = (herd_msgpack_head){ 0 };
    if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
        /* fixint, nil, bool */
    } else if (b <= 0x8f) { h->count = b & 0x0f; h->per = 2; }
    else if (b <= 0x9f) { h->count = b & 0x0f; h->per = 1; }
    else if (b <= 0xbf) { h->skip = b & 0x1f; }
    else switch (b) {
        case 0xc4: case 0xd9: h->lenbytes = 1; break;            /* bin8 str8 */
        case 0xc5: case 0xda: h->lenbytes = 2; break;
        case 0xc6: case 0xdb: h->lenbytes = 4; break;
        case 0xc7: h->lenbytes = 1; h->ext = 1; break;            /* ext8: size, type */
        case 0xc8: h->lenbytes = 2; h->ext = 1; break;
        case 0xc9: h->lenbytes = 4; h->ext = 1; break;
        case 0xca: h->skip = 4; break;
        case 0xcb: h->skip = 8; break;
        case 0xcc: case 0xd0: h->skip = 1; break;
        case 0xcd: case 0xd1: h->skip = 2; break;
        case 0xce: case 0xd2: h->skip = 4; break;
        case 0xcf: case 0xd3: h->skip = 8; break;
        case 0xd4: h->skip = 1; h->ext = 1; break;                /* fixext: type, data */
        case 0xd5: h->skip = 2; h->ext = 1; break;
        case 0xd6: h->skip = 4; h->ext = 1; break;
        case 0xd7: h->skip = 8; h->ext = 1; break;
        case 0xd8: h->skip = 16; h->ext = 1; break;
        case 0xdc: h->lenbytes = 2; h->per = 1; break;
        case 0xdd: h->lenbytes = 4; h->per = 1; break;
        case 0xde: h->lenbytes = 2; h->per = 2; break;
        case 0xdf: h->lenbytes = 4; h->per = 2; break;
        default: return -1;                                       /* 0xc1 */
        }
    return 0;
}

int herd_msgpack_check(const void *buf, size_t len, size_t *used, herd_err *err)
{
    const unsigned char *p = buf;
    uint64_t stack[HERD_MSGPACK_MAX_DEPTH + 1];
    int sp = 0;
    size_t off = 0;
    if (used) *used = 0;
    if (!p && len) return herd_err_set(err, -HERD_EARG, "msgpack: NULL buffer");
    stack[0] = 1;
    while (sp >= 0) {
        if (stack[sp] == 0) {
            sp--;
            continue;
        }
        stack[sp]--;
        if (off >= len)
            return herd_err_set(err, -HERD_EPROTO, "msgpack: truncated at byte %zu of %zu", off, len);
        unsigned b = p[off++];
        herd_msgpack_head h;
        if (herd_msgpack_head_of(b, &h))
            return herd_err_set(err, -HERD_EPROTO, "msgpack: invalid byte 0x%02x at offset %zu", b, off - 1);
        int lenbytes = h.lenbytes;       /* size field that follows, in bytes */
        uint64_t skip = h.skip + (uint64_t)h.ext;   /* payload bytes after it (an ext's type byte too) */
        uint64_t count = h.count, per = h.per;
        if (lenbytes) {
            if ((size_t)lenbytes > len - off)
                return herd_err_set(err, -HERD_EPROTO, "msgpack: truncated at byte %zu of %zu", len, len);
            uint64_t n = herd_msgpack_be(p + off, lenbytes);
            off += (size_t)lenbytes;
            if (per) count = n;
            else skip += n;
        }
        if (skip > len - off)
            return herd_err_set(err, -HERD_EPROTO,
                                "msgpack: truncated: an item at offset %zu needs %" PRIu64 " bytes, %zu remain",
                                off, skip, len - off);
        off += (size_t)skip;
        if (count) {
            if (count * per > len - off)
                return herd_err_set(err, -HERD_EPROTO,
                                    "msgpack: a %s at offset %zu declares %" PRIu64 " items but only %zu bytes follow",
                                    per == 2 ? "map" : "array", off, count, len - off);
            if (sp + 1 > HERD_MSGPACK_MAX_DEPTH)
                return herd_err_set(err, -HERD_EPROTO, "msgpack: nested deeper than %d levels",
                                    HERD_MSGPACK_MAX_DEPTH);
            stack[++sp] = count * per;
        }
    }
    if (used) *used = off;
    return 0;
}

static int decode(const void *buf, size_t len, const fdconv *fc, herd_value **out, herd_err *err);

HERD_API int herd_value_decode(const void *buf, size_t len, herd_value **out, herd_err *err)
{
    if (out) *out = NULL;
    if (!out) return herd_err_set(err, -HERD_EARG, "herd_value_decode: no output");
    return decode(buf, len, NULL, out, err);
}

int herd_value_decode_fds(const void *buf, size_t len,
                          herd_value *(*fdval)(void *ud, uint32_t idx, uint64_t len, herd_err *err), void *ud,
                          herd_value **out, herd_err *err)
{
    fdconv fc = { fdval, ud };
    *out = NULL;
    return decode(buf, len, fdval ? &fc : NULL, out, err);
}

static int decode(const void *buf, size_t len, const fdconv *fc, herd_value **out, herd_err *err)
{
    size_t used;
    int rc = herd_msgpack_check(buf, len, &used, err);
    if (rc) return rc;
    if (used != len)
        return herd_err_set(err, -HERD_EPROTO, "msgpack: %zu trailing bytes after the value", len - used);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    msgpack_unpack_return r = msgpack_unpack_next(&u, buf, len, &off);
    if (r == MSGPACK_UNPACK_SUCCESS)
        rc = conv(&u.data, 0, fc, out, err);
    else if (r == MSGPACK_UNPACK_NOMEM_ERROR)
        rc = herd_err_set(err, -ENOMEM, "out of memory decoding a value");
    else
        rc = herd_err_set(err, -HERD_EPROTO, "msgpack: malformed value (%d)", (int)r);
    msgpack_unpacked_destroy(&u);
    return rc;
}
