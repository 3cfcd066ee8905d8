/* core/fetch.c — the bound on a process's bytes of fetched values in
 * flight (fetch.h), shared by the fetches of peer.c and peer_local.c, the
 * receive buffers kept for reuse beside it (a pool that lives while the
 * budget or any buffer of it does), and the socket buffers of local peer
 * connections. */
#include "fetch.h"

#include "value_int.h"
#include "shm.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <string.h>
#include <sys/socket.h>

#define KEEP_N 4

struct herd_fetch_pool {
    pthread_mutex_t mu;
    int refs;                  /* the budget's, and one per buffer out */
    int open;                  /* the budget exists: freed buffers may be kept */
    size_t keep, kept;         /* bytes that may be kept, bytes kept */
    int n;
    struct { void *p; size_t len; } buf[KEEP_N];
};

static herd_fetch_pool *pool_new(size_t keep)
{
    herd_fetch_pool *pl = calloc(1, sizeof *pl);
    if (!pl) return NULL;
    if (pthread_mutex_init(&pl->mu, NULL)) { free(pl); return NULL; }
    pl->refs = 1;
    pl->open = 1;
    pl->keep = keep;
    return pl;
}

/* Drop one reference; called with mu held, returns with it released. */
static void pool_drop(herd_fetch_pool *pl)
{
    int last = --pl->refs == 0;
    pthread_mutex_unlock(&pl->mu);
    if (!last) return;
    for (int i = 0; i < pl->n; i++) munmap(pl->buf[i].p, pl->buf[i].len);
    pthread_mutex_destroy(&pl->mu);
    free(pl);
}

/* A buffer's value was freed: keep the buffer if there is room, else unmap it. */
static void pool_put(void *p, size_t len, void *ctx)
{
    herd_fetch_pool *pl = ctx;
    pthread_mutex_lock(&pl->mu);
    if (pl->open && pl->n < KEEP_N && len <= pl->keep - pl->kept) {
        pl->buf[pl->n].p = p;
        pl->buf[pl->n++].len = len;
        pl->kept += len;
    } else {
        munmap(p, len);
    }
    pool_drop(pl);
}

herd_value *herd_fetch_bytes(herd_fetch_budget *b, size_t n, void **p)
{
    herd_fetch_pool *pl = b ? b->pool : NULL;
    *p = NULL;
    if (!pl || n < HERD_SHM_MIN) return herd_bytes_alloc(n, p);
    void *m = NULL;
    pthread_mutex_lock(&pl->mu);
    for (int i = 0; i < pl->n && !m; i++)
        if (pl->buf[i].len == n) {
            m = pl->buf[i].p;
            pl->buf[i] = pl->buf[--pl->n];
            pl->kept -= n;
        }
    pl->refs++;
    pthread_mutex_unlock(&pl->mu);
    if (!m && !(m = herd_huge_map(n))) {
        pthread_mutex_lock(&pl->mu);
        pool_drop(pl);
        return NULL;
    }
    herd_value *v = herd_bytes_take_fn(m, n, pool_put, pl);      /* on failure pool_put took m and the reference */
    if (v) *p = m;
    return v;
}

int herd_fetch_budget_init(herd_fetch_budget *b, size_t cap)
{
    memset(b, 0, sizeof *b);
    b->cap = cap;
    int rc = pthread_mutex_init(&b->mu, NULL);
    if (rc) return -rc;
    if ((rc = pthread_cond_init(&b->cv, NULL))) { pthread_mutex_destroy(&b->mu); return -rc; }
    b->pool = pool_new(cap / 16);         /* none: every buffer is fresh */
    return 0;
}

void herd_fetch_budget_destroy(herd_fetch_budget *b)
{
    herd_fetch_pool *pl = b->pool;
    if (pl) {                             /* buffers still out go when their values do */
        pthread_mutex_lock(&pl->mu);
        pl->open = 0;
        for (int i = 0; i < pl->n; i++) munmap(pl->buf[i].p, pl->buf[i].len);
        pl->n = 0;
        pl->kept = 0;
        pool_drop(pl);
    }
    pthread_cond_destroy(&b->cv);
    pthread_mutex_destroy(&b->mu);
}

static int fits(const herd_fetch_budget *b, size_t n)
{
    return b->inflight == 0 || (b->inflight <= b->cap && n <= b->cap - b->inflight);
}

void herd_fetch_budget_acquire(herd_fetch_budget *b, size_t n)
{
    pthread_mutex_lock(&b->mu);
    while (!fits(b, n)) pthread_cond_wait(&b->cv, &b->mu);
    b->inflight += n;
    pthread_mutex_unlock(&b->mu);
}

int herd_fetch_budget_try(herd_fetch_budget *b, size_t n)
{
    pthread_mutex_lock(&b->mu);
    int ok = fits(b, n);
    if (ok) b->inflight += n;
    pthread_mutex_unlock(&b->mu);
    return ok ? 0 : -EAGAIN;
}

void herd_fetch_budget_release(herd_fetch_budget *b, size_t n)
{
    pthread_mutex_lock(&b->mu);
    b->inflight -= n < b->inflight ? n : b->inflight;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
}

void herd_peer_sock_bufs(int fd)
{
    int n = HERD_PEER_SOCKBUF;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &n, sizeof n);
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &n, sizeof n);
}
