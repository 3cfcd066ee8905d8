/* core/log.c — log lines: level names, the default sink (stderr, with time
 * and level, filtered by HERD_LOG_LEVEL; a flow run filters by its own
 * client_kwargs.log_level and writes with herd_log_write) and herd_log for
 * providers. */
#include "client.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

const char *herd_level_name(int level)
{
    switch (level) {
    case HERD_LOG_DEBUG: return "DEBUG";
    case HERD_LOG_INFO: return "INFO";
    case HERD_LOG_WARN: return "WARNING";
    default: return "ERROR";
    }
}

int herd_log_level_parse(const char *s, int *level)
{
    static const struct { const char *name; int level; } names[] = {
        { "debug", HERD_LOG_DEBUG }, { "info", HERD_LOG_INFO }, { "warning", HERD_LOG_WARN },
        { "warn", HERD_LOG_WARN }, { "error", HERD_LOG_ERROR },
    };
    for (size_t i = 0; s && i < sizeof names / sizeof names[0]; i++)
        if (!strcasecmp(s, names[i].name)) {
            *level = names[i].level;
            return 0;
        }
    return -HERD_EARG;
}

/* $HERD_LOG_LEVEL, INFO when unset or not a level. */
static int env_level(void)
{
    int level = HERD_LOG_INFO;
    const char *e = getenv("HERD_LOG_LEVEL");
    if (e && *e) herd_log_level_parse(e, &level);
    return level;
}

void herd_log_write(int level, const char *line)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    localtime_r(&ts.tv_sec, &tm);
    char stamp[32];
    strftime(stamp, sizeof stamp, "%H:%M:%S", &tm);
    /* one write per line so lines from several processes do not interleave */
    char buf[4096];
    int n = snprintf(buf, sizeof buf, "%s.%03ld | %-7s | %s\n", stamp, ts.tv_nsec / 1000000,
                     herd_level_name(level), line);
    if (n > (int)sizeof buf - 1) { n = (int)sizeof buf - 1; buf[n - 1] = '\n'; }
    if (write(STDERR_FILENO, buf, (size_t)n) < 0) {}
}

void herd_log_default(void *ud, int level, const char *line)
{
    if (level >= env_level()) herd_log_write(level, line);
}

void herd_vlogf(void (*fn)(void *ud, int level, const char *line), void *ud, int level,
                const char *fmt, va_list ap)
{
    char line[2048];
    vsnprintf(line, sizeof line, fmt, ap);
    if (fn) fn(ud, level, line);
    else herd_log_default(NULL, level, line);
}

void herd_logf(void (*fn)(void *ud, int level, const char *line), void *ud, int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    herd_vlogf(fn, ud, level, fmt, ap);
    va_end(ap);
}

void herd_log(const herd_cluster_env *env, int level, const char *fmt, ...)
{
    const herd_env_core *c = env ? env->core : NULL;
    va_list ap;
    va_start(ap, fmt);
    herd_vlogf(c ? c->log : NULL, c ? c->log_ud : NULL, level, fmt, ap);
    va_end(ap);
}
