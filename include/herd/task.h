/* herd/task.h — writing tasks: the task function signature, HERD_TASK()
 * registration, and the task context a running task gets (logging, failing
 * with a message, submitting sub-tasks to the same cluster). */
#ifndef HERD_TASK_H
#define HERD_TASK_H

#include "common.h"
#include "value.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct herd_task_ctx herd_task_ctx;
typedef struct herd_runner herd_runner;

/* A task. args is the array of arguments (futures already replaced by their
 * results); set *out to the result (ownership passes to herd; leaving it NULL
 * means nil). Return 0 on success; a negative code fails the task, with the
 * message given to herd_task_fail() or herd_strerror(code). */
typedef int (*herd_task_fn)(herd_task_ctx *ctx, const herd_value *args, herd_value **out);

/* A registered task. Registration is static: the descriptor lives in the
 * program or plugin that defines it, and is linked into a process-wide,
 * load-time-only list by a constructor. */
typedef struct herd_task_def {
    const char *name;                /* "download_image", or "shell.run" in a plugin */
    herd_task_fn fn;
    const char *doc;
    struct herd_task_def *next;      /* owned by the registry */
} herd_task_def;

HERD_API void herd_task_register(herd_task_def *def);
/* Look a task up by name: registered in this process, "plugin.task" (loads
 * plugins/<plugin>.so on first use), or "path/to/lib.so:symbol". */
HERD_API int herd_task_lookup(const char *name, herd_task_fn *fn, herd_err *err);
/* (-HERD_ENOTASK for a NULL or empty name or a NULL fn.) */

/* Register fn under its own name. Use at file scope after defining fn:
 *     static int download_image(herd_task_ctx *ctx, const herd_value *args, herd_value **out) {…}
 *     HERD_TASK(download_image);                                               */
#define HERD_TASK(fn) HERD_TASK_NAMED(fn, #fn)
#define HERD_TASK_NAMED(fn, tname)                                              \
    static herd_task_def herd__def_##fn = { tname, fn, NULL, NULL };            \
    __attribute__((constructor)) static void herd__reg_##fn(void)               \
    { herd_task_register(&herd__def_##fn); }                                    \
    struct herd__semicolon_##fn

/* ---- inside a running task ----
 * A NULL ctx (a task function called directly) is allowed everywhere: log
 * and fail write to stderr, the getters return NULL or 0. */

/* A log line, forwarded to the flow's log prefixed with the task run's name. */
HERD_API void herd_task_log(herd_task_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Record why the task failed; returns -HERD_EFAILED for `return herd_task_fail(…)`.
 * With a NULL ctx (a task called directly, not by a worker) the reason is logged. */
HERD_API int herd_task_fail(herd_task_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
HERD_API const char *herd_task_run_name(const herd_task_ctx *ctx); /* "download_image-3" */
HERD_API const char *herd_task_worker_name(const herd_task_ctx *ctx);
HERD_API int herd_task_attempt(const herd_task_ctx *ctx);           /* 0 first, 1 first retry … */
/* The task run's tags annotation (an array of strings), or NULL. Borrowed. */
HERD_API const herd_value *herd_task_tags(const herd_task_ctx *ctx);
/* A client for submitting sub-tasks to the same cluster (the seed's
 * get_dask_client). Use it with herd_submit()/herd_future_result(); while the
 * task waits on its sub-tasks it gives its thread slot back to the worker. The
 * client belongs to the context: do not free it. */
HERD_API herd_runner *herd_task_client(herd_task_ctx *ctx);

#ifdef __cplusplus
}
#endif
#endif
