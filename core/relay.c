/* core/relay.c — the relay's streams (relay.h): a value cut into CHUNKs
 * from its packed bytes, and a reader's reassembly of the CHUNKs it
 * receives into values. */
#include "relay.h"
#include "value_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int src_ready(herd_relay_src *x, herd_err *err)
{
    x->total = 0;
    for (size_t i = 0; i < x->nvec; i++) x->total += x->vec[i].iov_len;
    if (!x->total) return herd_err_set(err, -HERD_EPROTO, "an empty value");
    return 0;
}

int herd_relay_src_blob(herd_relay_src *x, herd_blob *b, herd_err *err)
{
    memset(x, 0, sizeof *x);
    x->b = b;
    if (!b->value) {
        x->one = (struct iovec){ b->data, b->len };
        x->vec = &x->one;
        x->nvec = 1;
        return src_ready(x, err);
    }
    /* big payloads by reference into the value: nothing is copied until a
     * CHUNK is packed (encodability was checked when it was stored) */
    if (!msgpack_vrefbuffer_init(&x->vb, 64 * 1024, 64 * 1024)) return herd_err_set(err, -ENOMEM, "out of memory");
    x->have_vb = 1;
    msgpack_packer pk;
    msgpack_packer_init(&pk, &x->vb, msgpack_vrefbuffer_write);
    int rc = herd_value_pack(&pk, b->value);
    if (rc) return herd_err_set(err, rc, "the value cannot be encoded");
    x->vec = msgpack_vrefbuffer_vec(&x->vb);
    x->nvec = msgpack_vrefbuffer_veclen(&x->vb);
    return src_ready(x, err);
}

int herd_relay_src_value(herd_relay_src *x, const herd_value *v, herd_err *err)
{
    memset(x, 0, sizeof *x);
    msgpack_sbuffer_init(&x->own);
    x->have_own = 1;
    msgpack_packer pk;
    msgpack_packer_init(&pk, &x->own, msgpack_sbuffer_write);
    int rc = herd_value_pack(&pk, v);
    if (rc) return herd_err_set(err, rc, "the value cannot be encoded");
    x->one = (struct iovec){ x->own.data, x->own.size };
    x->vec = &x->one;
    x->nvec = 1;
    return src_ready(x, err);
}

int herd_relay_src_chunk(herd_relay_src *x, msgpack_sbuffer *sb, uint64_t id, size_t n)
{
    struct iovec parts[64];
    size_t np = 0, i = x->i, off = x->off, left = n;
    if (n > HERD_RELAY_CHUNK || n > x->total - x->sent) return -HERD_EARG;
    while (left) {
        if (np == sizeof parts / sizeof *parts) { n -= left; break; }     /* a shorter chunk */
        size_t avail = x->vec[i].iov_len - off, take = avail < left ? avail : left;
        if (take) parts[np++] = (struct iovec){ (char *)x->vec[i].iov_base + off, take };
        left -= take;
        if ((off += take) == x->vec[i].iov_len) { i++; off = 0; }
    }
    herd_msg_chunk m = { .id = id, .parts = parts, .nparts = np };
    int rc = herd_proto_pack_chunk(sb, &m);
    if (rc) return rc;
    x->i = i;
    x->off = off;
    x->sent += n;
    return 0;
}

void herd_relay_src_free(herd_relay_src *x)
{
    if (x->have_vb) msgpack_vrefbuffer_destroy(&x->vb);
    if (x->have_own) msgpack_sbuffer_destroy(&x->own);
    if (x->b) herd_blob_unref(x->b);
    memset(x, 0, sizeof *x);
}

/* ---- the reader ---- */
static herd_relay_rx **find(herd_relay_rx **list, uint64_t key)
{
    for (; *list; list = &(*list)->next)
        if ((*list)->key == key) return list;
    return NULL;
}

static void drop(herd_relay_rx **pp)
{
    herd_relay_rx *r = *pp;
    *pp = r->next;
    free(r->buf);
    free(r);
}

int herd_relay_rx_begin(herd_relay_rx **list, uint64_t key, int64_t nbytes, herd_err *err)
{
    if (find(list, key))
        return herd_err_set(err, -HERD_EPROTO, "VALUE for key %llu while its CHUNKs are still coming",
                            (unsigned long long)key);
    if (nbytes < 1 || (uint64_t)nbytes > SIZE_MAX / 2)
        return herd_err_set(err, -HERD_EPROTO, "VALUE: a value of %lld bytes", (long long)nbytes);
    herd_relay_rx *r = calloc(1, sizeof *r);
    if (r && !(r->buf = malloc((size_t)nbytes))) { free(r); r = NULL; }
    if (!r) return herd_err_set(err, -ENOMEM, "no memory for a relayed value of %lld bytes", (long long)nbytes);
    r->key = key;
    r->nbytes = (size_t)nbytes;
    r->next = *list;
    *list = r;
    return 0;
}

int herd_relay_rx_abort(herd_relay_rx **list, uint64_t key)
{
    herd_relay_rx **pp = find(list, key);
    if (!pp) return 0;
    drop(pp);
    return 1;
}

int herd_relay_rx_chunk(herd_relay_rx **list, uint64_t key, herd_pstr bytes, herd_value **out, char *why,
                        size_t cap, herd_err *err)
{
    *out = NULL;
    herd_relay_rx **pp = find(list, key);
    if (!pp) return herd_err_set(err, -HERD_EPROTO, "CHUNK for key %llu, which is not coming", (unsigned long long)key);
    herd_relay_rx *r = *pp;
    if (bytes.len > r->nbytes - r->got)
        return herd_err_set(err, -HERD_EPROTO, "CHUNK of %zu bytes past the end of key %llu's %zu bytes", bytes.len,
                            (unsigned long long)key, r->nbytes);
    memcpy(r->buf + r->got, bytes.ptr, bytes.len);
    if ((r->got += bytes.len) < r->nbytes) return 0;
    herd_err e;
    if (herd_value_decode(r->buf, r->nbytes, out, &e)) snprintf(why, cap, "the relayed value does not decode: %s", e.msg);
    drop(pp);
    return 1;
}

void herd_relay_rx_free_all(herd_relay_rx **list)
{
    while (*list) drop(list);
}
