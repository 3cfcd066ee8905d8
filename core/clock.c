/* core/clock.c — the one home of monotonic time: now in seconds, a deadline
 * as a timespec for pthread_cond_timedwait, and condition variables that wait
 * on the monotonic clock (so a wall-clock jump cannot stretch or cut a wait). */
#include <herd/provider.h>
#include <errno.h>
#include <pthread.h>
#include <time.h>

HERD_API double herd_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

HERD_API void herd_deadline(double seconds, struct timespec *ts)
{
    if (!ts) return;
    clock_gettime(CLOCK_MONOTONIC, ts);
    if (!(seconds > 0)) return;                  /* also NaN: now */
    if (seconds > 1e9) seconds = 1e9;            /* ~31 years: no overflow of time_t */
    time_t whole = (time_t)seconds;
    ts->tv_sec += whole;
    ts->tv_nsec += (long)((seconds - (double)whole) * 1e9);
    if (ts->tv_nsec >= 1000000000L) { ts->tv_sec++; ts->tv_nsec -= 1000000000L; }
}

HERD_API int herd_cond_init_monotonic(pthread_cond_t *cv)
{
    if (!cv) return -EINVAL;
    pthread_condattr_t ca;
    int rc = pthread_condattr_init(&ca);
    if (rc) return -rc;
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    rc = pthread_cond_init(cv, &ca);
    pthread_condattr_destroy(&ca);
    return -rc;
}
