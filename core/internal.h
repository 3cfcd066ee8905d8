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

/* kwargs.c: the did-you-mean every "unknown name" error uses. The edit
 * distance is case-insensitive optimal string alignment (SIZE_MAX for names
 * of 64 characters or more). herd_did_you_mean returns the index of the
 * candidate nearest to word when it is at most max_dist edits away (and
 * fewer than word is long), else of one that word starts, or that starts
 * word (3 characters or more), else -1. NULL candidates are skipped. */
size_t herd_edit_distance(const char *a, const char *b);
long herd_did_you_mean(const char *word, const char *const *cands, size_t n, size_t max_dist);

/* kwargs.c: is p's binding sane (a field of its type's size, inside a
 * struct of out_size bytes; 0: size unknown)? 0, or -HERD_EARG with why. */
int herd_param_binding_check(const herd_param *p, size_t out_size, char *why, size_t cap);
/* (kwargs.c) A resources map (a task's annotation, a worker's offer): every
 * key a non-empty name, every amount a finite number > 0. -HERD_EARG naming
 * "<where>.<key>" and the value otherwise; NULL or nil passes. */
int herd_resources_check(const herd_value *res, const char *where, herd_err *err);

/* registry.c: check p as herd_provider_check does and set *out to the
 * struct to use from then on: p itself, or its copy padded to this herd's
 * layout (older ABI minor). Every provider the core drives comes through
 * here or through herd_provider_resolve, which does the same. */
int herd_provider_adopt(const herd_provider *p, const char *what, const herd_provider **out, herd_err *err);

/* tasks.c */
/* Names of the tasks registered in this process, ", "-separated, malloc'd. */
char *herd_task_names(void);
/* Load a task plugin by name ("shell": plugins/shell.so on the search path)
 * or path ("./libmine.so") so its HERD_TASK_NAMED tasks are registered. */
int herd_plugin_load(const char *name, herd_err *err);

/* log.c: the default sink (stderr, level from HERD_LOG_LEVEL); the same
 * line unfiltered; a level's name ("debug", "info", "warning" or "warn",
 * "error", any case) to HERD_LOG_* (0, or -HERD_EARG). */
void herd_log_default(void *ud, int level, const char *line);
void herd_log_write(int level, const char *line);
int herd_log_level_parse(const char *s, int *level);
const char *herd_level_name(int level);
/* Format a line and hand it to fn (the default sink when fn is NULL). */
void herd_vlogf(void (*fn)(void *ud, int level, const char *line), void *ud, int level,
                const char *fmt, va_list ap);
void herd_logf(void (*fn)(void *ud, int level, const char *line), void *ud, int level,
               const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* What herd_cluster_env.core points at. */
typedef struct herd_env_core {
    void (*log)(void *ud, int level, const char *line);
    void *log_ud;
    /* for a scheduler the provider runs itself (start_scheduler): the
     * client's settings it must carry, and, with TLS, a way to issue its
     * certificate (NULL: no TLS) */
    double heartbeat_interval, heartbeat_timeout;
    int allowed_failures;
    double no_workers_timeout;     /* seconds; <= 0: never (client_kwargs null) */
    int data_transfer;             /* client_kwargs.data_transfer: HERD_DT_* (proto.h) */
    const char *dashboard;         /* client_kwargs.dashboard_address, or NULL: no HTTP endpoint */
    const char *token;
    int (*sched_tls)(void *ud, const char *const *names, char ***envp_out, herd_err *err);
    void *sched_tls_ud;
    char **dial_names;         /* herd_scheduler_names (owned by the runner) */
    int in_start_scheduler;    /* 1 while the provider's start_scheduler runs */
    char sched_server_name[256]; /* herd_scheduler_server_name during it, "" when none */
} herd_env_core;

#endif
