/* core/internal.h — declarations shared between core files and hidden from
 * users (libherd is built with -fvisibility=hidden; only HERD_API is exported). */
#ifndef HERD_INTERNAL_H
#define HERD_INTERNAL_H

#include <herd/herd.h>
#include <stdio.h>

/* Small arithmetic, so that libherd (and so every worker process) need not
 * load libm for fmin/fmax/pow. */
static inline double herd_dmin(double a, double b) { return a < b ? a : b; }
static inline double herd_dmax(double a, double b) { return a > b ? a : b; }
static inline double herd_pow2(int n) { double p = 1; while (n-- > 0 && p < 1e300) p *= 2; return p; }

/* paths.c: directories searched for loadable files of one kind ("providers",
 * "plugins"): $envvar (colon-separated), then the build or install tree
 * the runtime sits in. Free with herd_strv_free. */
char **herd_search_dirs(const char *kind, const char *envvar);

/* tasks.c */
/* Names of the tasks registered in this process, ", "-separated, malloc'd. */
char *herd_task_names(void);
/* Load a task plugin by name ("shell": plugins/shell.so on the search path)
 * or path ("./libmine.so") so its HERD_TASK_NAMED tasks are registered. */
int herd_plugin_load(const char *name, herd_err *err);

/* log.c: the default sink (stderr, level from HERD_LOG_LEVEL). */
void herd_log_default(void *ud, int level, const char *line);
const char *herd_level_name(int level);
/* Format a line and hand it to fn (the default sink when fn is NULL). */
void herd_vlogf(void (*fn)(void *ud, int level, const char *line), void *ud, int level,
                const char *fmt, va_list ap);
/* What herd_cluster_env.core points at. */
typedef struct herd_env_core {
    void (*log)(void *ud, int level, const char *line);
    void *log_ud;
    /* for a scheduler the provider runs itself (start_scheduler): the
     * client's settings it must carry, and, with TLS, a way to issue its
     * certificate (NULL: no TLS) */
    double heartbeat_interval, heartbeat_timeout;
    int allowed_failures;
    const char *token;
    int (*sched_tls)(void *ud, const char *const *names, char ***envp_out, herd_err *err);
    void *sched_tls_ud;
    char **dial_names;         /* herd_scheduler_names (owned by the runner) */
} herd_env_core;

#endif
