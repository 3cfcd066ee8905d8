/* core/fetch.c — the bound on a process's bytes of fetched values in
 * flight (fetch.h), shared by the fetches of peer.c and peer_local.c. */
#include "fetch.h"

#include <errno.h>
#include <string.h>

int herd_fetch_budget_init(herd_fetch_budget *b, size_t cap)
{
    memset(b, 0, sizeof *b);
    b->cap = cap;
    int rc = pthread_mutex_init(&b->mu, NULL);
    if (rc) return -rc;
    if ((rc = pthread_cond_init(&b->cv, NULL))) { pthread_mutex_destroy(&b->mu); return -rc; }
    return 0;
}

void herd_fetch_budget_destroy(herd_fetch_budget *b)
{
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
