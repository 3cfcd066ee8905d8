/* core/value_buf.c — str/bytes payloads that live outside their node: a
 * reference-counted buffer (herd_extbuf) that copies of a value share, so a
 * held result is read in place by every task of its worker; buffers a task
 * fills itself (herd_bytes_alloc: huge pages; herd_bytes_alloc_shm: a memfd
 * that another local worker maps without a copy) or hands over with a free function
 * (herd_bytes_take_fn); and herd_value_share, which freezes a result before
 * it is stored: memfds sealed, large payloads moved into shared buffers. */
#include "value_node.h"
#include "shm.h"

#include <herd/herd.h>

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

enum { REL_FREE, REL_MAP, REL_FN, REL_NONE };

/* The bytes of peers' memfds this process maps now (herd_bytes_mapped, until
 * the last copy goes): process-wide by nature, like the RSS they inflate
 * (docs/ARCHITECTURE.md, Process-wide state); herd_rss_bytes subtracts them. */
static atomic_size_t peer_mapped;

size_t herd_peer_mapped_bytes(void) { return atomic_load(&peer_mapped); }

struct herd_extbuf {
    atomic_int refs;
    int kind;                  /* REL_*: how the buffer goes at the last reference */
    int memfd;                 /* REL_MAP: the memfd mapped at base, or -1 (a received map) */
    atomic_bool sealed;        /* memfd sealed, the map read-only */
    bool peer;                 /* a peer's memfd mapped here (herd_bytes_mapped): counted in peer_mapped */
    void *base;                /* what is freed or unmapped */
    size_t size;
    void (*fn)(void *p, size_t len, void *ctx);
    void *ctx;
};

herd_extbuf *herd_extbuf_ref(herd_extbuf *x)
{
    atomic_fetch_add(&x->refs, 1);
    return x;
}

void herd_extbuf_unref(herd_extbuf *x)
{
    if (!x || atomic_fetch_sub(&x->refs, 1) != 1) return;
    switch (x->kind) {
    case REL_FREE: free(x->base); break;
    case REL_MAP:
        if (x->size) munmap(x->base, x->size);
        if (x->memfd >= 0) close(x->memfd);
        if (x->peer) atomic_fetch_sub(&peer_mapped, x->size);
        break;
    case REL_FN: x->fn(x->base, x->size, x->ctx); break;
    default: break;
    }
    free(x);
}

static herd_extbuf *extbuf(int kind, void *base, size_t size)
{
    herd_extbuf *x = calloc(1, sizeof *x);
    if (!x) return NULL;
    atomic_init(&x->refs, 1);
    x->kind = kind;
    x->memfd = -1;
    x->base = base;
    x->size = size;
    return x;
}

/* A node over p..p+len in x (its reference taken, also on failure). */
static herd_value *ext_node(herd_type t, herd_extbuf *x, char *p, size_t len)
{
    herd_value *v = calloc(1, sizeof *v);
    if (!v) { herd_extbuf_unref(x); return NULL; }
    v->type = t;
    v->u.s.p = p;
    v->u.s.len = len;
    v->u.s.ext = x;
    return v;
}

/* Small payloads: in the node's own allocation, as herd_bytes makes them. */
static herd_value *inline_bytes(size_t len, void **ptr)
{
    if (len > SIZE_MAX - sizeof(herd_value) - 1) return NULL;
    herd_value *v = malloc(sizeof *v + len + 1);
    if (!v) return NULL;
    memset(v, 0, sizeof *v);
    v->type = HERD_BYTES;
    v->u.s.p = (char *)(v + 1);
    v->u.s.len = len;
    v->u.s.p[len] = '\0';
    *ptr = v->u.s.p;
    return v;
}

/* A node over a fresh map m of len bytes (memfd fd, or -1: anonymous). */
static herd_value *map_node(void *m, size_t len, int fd, void **ptr)
{
    herd_extbuf *x = extbuf(REL_MAP, m, len);
    if (!x) {
        munmap(m, len);
        if (fd >= 0) close(fd);
        return NULL;
    }
    x->memfd = fd;
    herd_value *v = ext_node(HERD_BYTES, x, m, len);
    if (v) *ptr = m;
    return v;
}

/* Anonymous memory asking for transparent huge pages and faulted in at once
 * (on this project's machine, filling fresh 4 KiB pages runs at half the
 * speed). */
void *herd_huge_map(size_t len)
{
    void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return NULL;
    madvise(m, len, MADV_HUGEPAGE);          /* hints: no error matters */
    madvise(m, len, MADV_POPULATE_WRITE);
    return m;
}

/* Large payloads: herd_huge_map, unmapped when the last copy goes. */
HERD_API herd_value *herd_bytes_alloc(size_t len, void **ptr)
{
    if (!ptr) return NULL;
    *ptr = NULL;
    void *m = len >= HERD_SHM_MIN ? herd_huge_map(len) : NULL;
    if (m) return map_node(m, len, -1, ptr);
    return inline_bytes(len, ptr);
}

HERD_API herd_value *herd_bytes_alloc_shm(size_t len, void **ptr)
{
    if (!ptr) return NULL;
    *ptr = NULL;
    int fd;
    void *m;
    if (len >= HERD_SHM_MIN && herd_shm_create(len, &fd, &m) == 0) {
        madvise(m, len, MADV_POPULATE_WRITE);
        return map_node(m, len, fd, ptr);
    }
    return herd_bytes_alloc(len, ptr);
}

HERD_API herd_value *herd_bytes_take_fn(void *p, size_t len, void (*free_fn)(void *p, size_t len, void *ctx),
                                        void *ctx)
{
    if (!p && len) {
        if (free_fn) free_fn(p, len, ctx);
        return NULL;
    }
    herd_extbuf *x = extbuf(free_fn ? REL_FN : REL_NONE, p, len);
    if (!x) {
        if (free_fn) free_fn(p, len, ctx);
        return NULL;
    }
    x->fn = free_fn;
    x->ctx = ctx;
    return ext_node(HERD_BYTES, x, p, len);
}

herd_value *herd_bytes_mapped(void *p, size_t len)
{
    herd_extbuf *x = extbuf(REL_MAP, p, len);
    if (!x) { munmap(p, len); return NULL; }
    atomic_store(&x->sealed, true);
    x->peer = true;
    atomic_fetch_add(&peer_mapped, len);
    return ext_node(HERD_BYTES, x, p, len);
}

int herd_bytes_memfd(const herd_value *v)
{
    if (!v || (v->type != HERD_BYTES && v->type != HERD_STR) || !v->u.s.ext) return -1;
    const herd_extbuf *x = v->u.s.ext;
    if (x->kind != REL_MAP || x->memfd < 0 || !atomic_load(&x->sealed)) return -1;
    if (v->u.s.p != x->base || v->u.s.len != x->size) return -1;
    return x->memfd;
}

/* Freeze one str/bytes node in *slot (see herd_value_share). */
static int share_node(herd_value **slot)
{
    herd_value *v = *slot;
    herd_extbuf *x = v->u.s.ext;
    if (x) {
        if (x->kind == REL_MAP && !atomic_load(&x->sealed)) {
            if (x->memfd < 0) {
                mprotect(x->base, x->size, PROT_READ);      /* herd_bytes_alloc's map: read-only now */
            } else if (herd_shm_seal(x->memfd, x->base, x->size)) {
                close(x->memfd);           /* unsealable: stays a plain shared map, copied for peers */
                x->memfd = -1;
            }
            atomic_store(&x->sealed, true);
        }
        return 0;
    }
    if (v->u.s.len < HERD_SHARE_MIN) return 0;
    if (v->u.s.p != (char *)(v + 1)) {     /* malloc'd (herd_bytes_take): wrap it */
        if (!(x = extbuf(REL_FREE, v->u.s.p, v->u.s.len))) return -ENOMEM;
        v->u.s.ext = x;
        return 0;
    }
    /* inline: the old node's allocation becomes the buffer, a new node points into it */
    if (!(x = extbuf(REL_FREE, v, 0))) return -ENOMEM;
    herd_value *n = ext_node(v->type, x, v->u.s.p, v->u.s.len);
    if (!n) return -ENOMEM;                /* x went with the failure; v is untouched */
    *slot = n;
    return 0;
}

static int share_in(herd_value **slot, int level)
{
    herd_value *v = *slot;
    if (!v || level > HERD_VALUE_MAX_DEPTH) return 0;
    if (v->type == HERD_STR || v->type == HERD_BYTES) return share_node(slot);
    int rc = 0;
    if (v->type == HERD_ARRAY)
        for (size_t i = 0; !rc && i < v->u.a.n; i++) rc = share_in(&v->u.a.v[i], level + 1);
    else if (v->type == HERD_MAP)
        for (uint32_t i = 0; !rc && i < v->u.m.n; i++) rc = share_in(&v->u.m.e[i].val, level + 1);
    return rc;
}

int herd_value_share(herd_value **v) { return v ? share_in(v, 0) : -HERD_EARG; }
