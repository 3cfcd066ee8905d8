/* herd/provider.h — the provider plugin ABI. A provider starts and stops
 * workers (and, optionally, a remote scheduler); it never sees tasks. The core
 * resolves a provider by name ("local.LocalCluster" -> providers/local.so,
 * symbol LocalCluster), checks the ABI, validates cluster_kwargs against the
 * provider's typed schema, then drives the hooks in this order:
 *
 *   create -> [scheduler_listen] -> [start_scheduler] -> start -> scale_up/retire/status … -> close
 *
 * See docs/providers.md for a walk-through. */
#ifndef HERD_PROVIDER_H
#define HERD_PROVIDER_H

#include "common.h"
#include "value.h"
#include <pthread.h>
#include <stddef.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HERD_PROVIDER_ABI_MAJOR 1   /* must match exactly */
#define HERD_PROVIDER_ABI_MINOR 2   /* grows when hooks or fields are appended */

/* ---- typed cluster_kwargs schema ---- */
typedef enum herd_param_type {
    HERD_PARAM_INT,       /* integer */
    HERD_PARAM_FLOAT,     /* number (ints accepted) */
    HERD_PARAM_BOOL,
    HERD_PARAM_STRING,
    HERD_PARAM_LIST,      /* array */
    HERD_PARAM_MAP,       /* map with string keys */
    HERD_PARAM_DURATION,  /* number of seconds or "500ms", "2s", "5m", "1h"; stored as float seconds */
    HERD_PARAM_SIZE,      /* bytes or "512MiB", "4GB", "auto"; stored as int bytes ("auto" stays "auto") */
    HERD_PARAM_ANY
} herd_param_type;

#define HERD_PARAM_REQUIRED 0x1u   /* must be given */
#define HERD_PARAM_SECRET   0x2u   /* never printed, never logged */
#define HERD_PARAM_NULLABLE 0x4u   /* null is allowed (means "none"/"unset") */

typedef struct herd_param {
    const char *name;
    herd_param_type type;
    const char *default_yaml;  /* default as YAML text ("4", "{}", "null"); NULL: absent unless given */
    const char *doc;
    unsigned flags;
    double min, max;           /* for INT/FLOAT/DURATION/SIZE when min < max; else unchecked */
    /* ABI 1.2: where herd_kwargs_bind stores the value (HERD_PARAM_FIELD);
     * size 0: not bound. Older providers' arrays lack these two fields (the
     * registry reads them by their ABI minor). */
    size_t offset, size;
} herd_param;                  /* an array of these ends with { NULL } */

/* The binding of a param, as its last initializer:
 *     { "n_workers", HERD_PARAM_INT, "1", "workers", 0, 0, 1000, HERD_PARAM_FIELD(my_opts, n_workers) } */
#define HERD_PARAM_FIELD(type, member) offsetof(type, member), sizeof(((type *)0)->member)
/* The two entries of the `lifetime` and `lifetime_stagger` cluster_kwargs
 * (Dask's worker --lifetime, --lifetime-stagger; dask-jobqueue's
 * worker_extra_args idiom), one definition for every provider's schema,
 * bound to two double fields of `type` (seconds; null, the default, leaves
 * them 0: none). The provider gives them to its worker processes as
 * HERD_LIFETIME and HERD_LIFETIME_STAGGER in their environment (seconds; the
 * worker flags --herd-lifetime, --herd-lifetime-stagger take precedence). */
#define HERD_PARAMS_LIFETIME(type, life, stagger)                                                   \
    { "lifetime", HERD_PARAM_DURATION, "null", "Each worker retires gracefully after this long "    \
      "(\"55m\", \"3s\"), as Dask's --lifetime: it asks the scheduler to retire it, takes no new " \
      "task, finishes its running ones and exits 0; what it holds that is still needed is "         \
      "recomputed elsewhere; the cluster's nanny or adaptive scaling starts a replacement. Set "   \
      "it below a batch job's walltime. null: none.", HERD_PARAM_NULLABLE, 0, 1e9,                \
      HERD_PARAM_FIELD(type, life) },                                                              \
    { "lifetime_stagger", HERD_PARAM_DURATION, "null", "Each worker's lifetime varies by a "       \
      "uniform random +/- this (\"4m\"), so the workers do not all leave at once. null: 0.",      \
      HERD_PARAM_NULLABLE, 0, 1e9, HERD_PARAM_FIELD(type, stagger) }
/* What a SIZE field holds for "auto". */
#define HERD_SIZE_AUTO ((int64_t)-1)

HERD_API const char *herd_param_type_name(herd_param_type t);   /* "unknown" outside the enum */
/* Validate kwargs (a map, or NULL for none) against params: unknown keys
 * (with a did-you-mean), wrong types, values out of range and missing
 * required keys are errors naming the key, the value and what was expected;
 * `where` prefixes messages ("cluster_kwargs"). On success *out is a new map
 * with every default filled in and durations/sizes normalised. */
HERD_API int herd_kwargs_validate(const herd_param *params, const herd_value *kwargs,
                                  const char *where, herd_value **out, herd_err *err);
/* Copy a map validated against params (herd_kwargs_validate's *out) into the
 * fields of the struct at `out` (out_size bytes) that params bind with
 * HERD_PARAM_FIELD, Fluent Bit config-map style. The field of each type:
 *   INT               int or int64_t (by the field's size; an int must fit)
 *   FLOAT, DURATION   double (seconds for a duration)
 *   BOOL              bool
 *   SIZE              int64_t bytes, HERD_SIZE_AUTO for "auto"
 *   STRING            const char *, borrowed from `validated`
 *   LIST, MAP, ANY    const herd_value *, borrowed from `validated`
 * Borrowed pointers are valid while `validated` lives: copy what outlives
 * it. A key that is absent or null leaves a number or bool field as it was
 * (set the struct's defaults for those first) and sets a pointer field to
 * NULL. Nothing is written unless every bound field fits in out_size bytes
 * and has its type's size: otherwise -HERD_EARG naming the param. */
HERD_API int herd_kwargs_bind(const herd_param *params, const herd_value *validated, void *out,
                              size_t out_size, herd_err *err);
/* Both in one call: validate kwargs as herd_kwargs_validate does (*validated
 * is the new map, owned by the caller) and bind it into out. On error
 * *validated is NULL. In all three, NULL params is a schema without keys;
 * a NULL output (out, validated) is -HERD_EARG. */
HERD_API int herd_kwargs_load(const herd_param *params, const herd_value *kwargs, const char *where,
                              herd_value **validated, void *out, size_t out_size, herd_err *err);
/* Is s fit to prefix a cluster's worker names (<prefix>-0, <prefix>-1, …, the
 * `name` kwarg of LocalCluster and SSHCluster): 1 to 40 letters, digits, '_',
 * '.' or '-'? NULL is not. */
HERD_API bool herd_name_prefix_ok(const char *s);
/* Distributed's default split of n cores (LocalCluster's cpu count, a Slurm
 * job's `cores`) into worker processes and threads per worker: n <= 4 gives
 * n x 1; else the smallest factor of n that is >= sqrt(n) processes, n / that
 * threads each (32 -> 8 x 4, 7 -> 7 x 1). n < 1 counts as 1; a NULL output
 * is skipped. */
HERD_API void herd_nprocesses_nthreads(int n, int *procs, int *threads);

/* ---- what the core gives a cluster ---- */
enum { HERD_LOG_DEBUG, HERD_LOG_INFO, HERD_LOG_WARN, HERD_LOG_ERROR };

/* How to start one worker. */
/* The exit status of a worker process that ended itself because its memory
 * (RSS) exceeded the spec's memory_limit: a provider's status detail can say
 * so ("exceeded memory_limit …") instead of a bare exit status. */
#define HERD_WORKER_EXIT_MEMORY_LIMIT 86

typedef struct herd_worker_spec {
    const char *name;              /* unique within the cluster, e.g. "local-3" */
    int nthreads;                  /* >= 1 */
    const herd_value *resources;   /* map name -> number, or NULL */
    int64_t memory_limit;          /* bytes, 0 = none */
} herd_worker_spec;

typedef struct herd_cluster_env {
    const char *name;                /* cluster name, "herd-<flow>-<pid>" */
    const char *scheduler_address;   /* what workers dial; set before start() */
    const char *const *worker_argv;  /* NULL-terminated command that runs a worker
                                        (program and its worker-mode flags) */
    const char *const *worker_envp;  /* NULL-terminated KEY=VALUE additions; they hold
                                        the cluster token: secret, never log them */
    void *core;                      /* opaque, for the helpers below */
} herd_cluster_env;

/* Monotonic time, for every wait in a provider (and in the core): seconds
 * since an arbitrary point; an absolute deadline `seconds` from now for
 * pthread_cond_timedwait on a condition variable made by
 * herd_cond_init_monotonic (returns 0 or -errno; -EINVAL for NULL). A NULL
 * ts is left alone. */
HERD_API double herd_now(void);
HERD_API void herd_deadline(double seconds, struct timespec *ts);
HERD_API int herd_cond_init_monotonic(pthread_cond_t *cv);

HERD_API void herd_log(const herd_cluster_env *env, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The full argv for one worker (env->worker_argv plus the spec's flags). Free
 * with herd_strv_free. These helpers return -HERD_EARG for a NULL env, spec
 * or output pointer (the output then NULL), or an env the core did not make;
 * the free functions accept NULL; herd_log with a NULL env writes to stderr. */
HERD_API int herd_worker_argv(const herd_cluster_env *env, const herd_worker_spec *spec,
                              char ***argv_out, herd_err *err);
HERD_API void herd_strv_free(char **v);
/* Is dir usable as a worker's local_directory (where it spills held values
 * under memory_limit: an existing, writable directory)? 0, or HERD_ECONFIG
 * with a message naming field ("cluster_kwargs.local_directory"; NULL:
 * "local_directory"), dir (NULL is refused) and what was expected. A worker reads its local_directory from
 * HERD_LOCAL_DIRECTORY in its environment (or --herd-local-directory). */
HERD_API int herd_local_directory_check(const char *field, const char *dir, herd_err *err);
/* For scheduler_listen: the host names or IP addresses this cluster's
 * workers will dial the in-process scheduler by, when the listen address
 * does not say (0.0.0.0, or hosts on different routes each dialling their
 * own). With `security: temporary` they go into the scheduler's
 * certificate. NULL-terminated; copied. Replaces an earlier call's list. */
HERD_API int herd_scheduler_names(const herd_cluster_env *env, const char *const *names, herd_err *err);
/* For scheduler_listen: this machine's source address on the route to host
 * (a name or a numeric address; the first address it resolves to), which is
 * what a remote worker on that route dials back. No packet is sent (a
 * connected UDP socket). Writes the numeric address, without brackets, into
 * out (cap >= 46, INET6_ADDRSTRLEN); *is_loopback (may be NULL) tells whether
 * host itself is a loopback address. -HERD_EARG for a NULL or empty host, a
 * NULL out or a smaller cap; -HERD_EPROVIDER naming host when it does not
 * resolve or no route leads to it. */
HERD_API int herd_route_source(const char *host, char *out, size_t cap, bool *is_loopback, herd_err *err);
/* For start_scheduler: the command that runs this cluster's scheduler on
 * another machine — env->worker_argv[0] (any program that calls herd_init,
 * the herd command included) with --herd-scheduler, listening on `listen`
 * ("tcp://0.0.0.0:0"; tcp:// becomes tls:// when the cluster uses TLS) and
 * carrying the client's heartbeat and allowed_failures settings and its
 * dashboard_address (the HTTP endpoint, off unless given: the core prints
 * its URL with the host the client dials, and the one-time login link when
 * it needs the token; give the port through the provider's firewall). That
 * process requires HERD_TOKEN, prints "herd-scheduler-at ADDRESS" as its
 * first stdout line and runs until SIGTERM, SIGINT or SIGHUP. Replace
 * argv[0] with the program's path over there. Free with herd_strv_free. */
HERD_API int herd_scheduler_argv(const herd_cluster_env *env, const char *listen, char ***argv_out,
                                 herd_err *err);
/* The environment that scheduler needs, as "K=V" strings: HERD_TOKEN and,
 * when the cluster uses TLS (security: temporary), its own certificate,
 * valid for `names` (NULL-terminated: the host names and IP addresses
 * clients and workers will dial, besides localhost/127.0.0.1/::1). Secret:
 * send it over a private channel (stdin), never a command line. Only
 * during start_scheduler. Free with herd_envp_free, which wipes it. */
HERD_API int herd_scheduler_envp(const herd_cluster_env *env, const char *const *names, char ***envp_out,
                                 herd_err *err);
HERD_API void herd_envp_free(char **envp);
/* Only during start_scheduler, for a scheduler whose address is known only
 * once it runs (a cloud task's IP): clients and workers check its
 * certificate against `name` (a DNS name, such as "herd-scheduler"), not
 * the host they dial; pass the same name in herd_scheduler_envp's `names`
 * so the certificate carries it. With security: temporary the CA is made
 * for this run alone, so a fixed name names nothing else; the chain must
 * still lead to it, and a worker's certificate (clientAuth only) still never
 * passes as the scheduler's. client_kwargs.tls_server_name, when the user
 * gives it, wins. NULL clears it. -HERD_ESTATE outside start_scheduler,
 * -HERD_ECONFIG for a name that is not a DNS name or an IP address. */
HERD_API int herd_scheduler_server_name(const herd_cluster_env *env, const char *name, herd_err *err);
/* For a provider that runs the scheduler elsewhere and opens its firewall
 * (a cloud security group): the port of client_kwargs.dashboard_address,
 * which herd_scheduler_argv makes that scheduler serve, when it is served
 * beyond the loopback (":8787", "0.0.0.0:8787"): *port = that port, 0
 * meaning any free one (which no firewall rule can name: refuse it); -1
 * when there is no dashboard or it is bound to a loopback address (nothing
 * to open). Any time after create. 0, or -HERD_EARG for a NULL port or an
 * env the core did not make, or a dashboard_address that is not HOST:PORT. */
HERD_API int herd_scheduler_dashboard_port(const herd_cluster_env *env, int *port, herd_err *err);
/* A worker run as threads of the calling process (LocalCluster processes=false). */
typedef struct herd_worker_thread herd_worker_thread;
HERD_API int  herd_worker_thread_start(const herd_cluster_env *env, const herd_worker_spec *spec,
                                       herd_worker_thread **out, herd_err *err);
HERD_API bool herd_worker_thread_alive(herd_worker_thread *w);
/* Stop the worker (abruptly if kill, else after its running tasks) and free it. */
HERD_API void herd_worker_thread_stop(herd_worker_thread *w, bool kill);

/* ---- child processes (core/proc.c) ----
 * What every provider needs to run programs: workers, ssh, sbatch, agents.
 * A started process is the leader of its own process group (signals go to
 * the whole group), dies with the thread that forked it (PR_SET_PDEATHSIG,
 * SIGKILL) and is reaped exactly once, by whichever thread polls, waits for
 * or stops it first; its outcome is kept in the herd_proc. Signalling a
 * reaped process is refused, so a reused pid is never hit.
 *
 * Processes that must live as long as the cluster are forked by a
 * herd_spawner: one thread per cluster that lives until herd_spawner_free,
 * which therefore kills (SIGKILL) every process it started that is still
 * running. Free it last, after stopping them. Short commands waited for on
 * the spot may be forked by the calling thread (sp NULL). */
#include <sys/types.h>

typedef struct herd_spawner herd_spawner;
HERD_API int  herd_spawner_new(herd_spawner **out, herd_err *err);   /* -EINVAL for a NULL out */
HERD_API void herd_spawner_free(herd_spawner *sp);

typedef enum herd_proc_io {
    HERD_PROC_INHERIT = 0,   /* the caller's own descriptor */
    HERD_PROC_DEVNULL,       /* /dev/null */
    HERD_PROC_PIPE,          /* a new pipe; the caller's end comes back in pipes[i] */
    HERD_PROC_FD             /* fd[i], given as is (the caller keeps and closes it) */
} herd_proc_io;

typedef struct herd_proc_spec {
    const char *const *argv;  /* NULL-terminated; argv[0] is searched in PATH (before
                                 fork) when it has no '/' */
    const char *const *env;   /* NULL-terminated "KEY=VALUE" put over this process's
                                 environment, later entries winning; NULL: none */
    herd_proc_io io[3];       /* stdin, stdout, stderr; all zero: inherited */
    int fd[3];                /* for HERD_PROC_FD */
} herd_proc_spec;

/* How a process ended. */
typedef struct herd_proc_exit {
    bool known;               /* false: reaped by someone else, nothing is known */
    int  status;              /* its exit status, when signal is 0 */
    int  signal;              /* the signal that ended it, or 0 */
    bool core_dumped;
    long max_rss_kib;         /* its peak resident set size in KiB, when known (else 0) */
} herd_proc_exit;

typedef struct herd_proc herd_proc;
/* Fork and exec spec->argv with every other descriptor closed, signals
 * unblocked and at their defaults, in a new process group. Returns 0 once
 * exec succeeded (*out: free with herd_proc_free; pipes, when given, gets the
 * caller's ends of the HERD_PROC_PIPE streams, close-on-exec, owned by the
 * caller, and -1 for the others); else -errno with err naming the program and
 * the reason ("cannot run /x/y: No such file or directory"). */
HERD_API int herd_proc_start(herd_spawner *sp, const herd_proc_spec *spec, herd_proc **out,
                             int pipes[3], herd_err *err);
HERD_API pid_t herd_proc_pid(const herd_proc *p);
/* Has it ended? 1: yes, *ex filled (may be NULL), reaped, and whatever was
 * left of its process group killed; 0: still running. -EINVAL for p NULL
 * (here and below). */
HERD_API int herd_proc_poll(herd_proc *p, herd_proc_exit *ex);
/* herd_proc_poll, waiting up to timeout seconds (< 0: for ever) for the end. */
HERD_API int herd_proc_wait(herd_proc *p, double timeout, herd_proc_exit *ex);
/* Send sig to its process group: 0, or -ESRCH once it has been reaped. */
HERD_API int herd_proc_signal(herd_proc *p, int sig);
/* Stop ps[0..n) for certain: SIGTERM to each group, up to grace seconds for
 * them to end, SIGKILL to the rest, all reaped; out[i] (out may be NULL)
 * says how each ended. Those already ended are just reaped. 0, or -EINVAL. */
HERD_API int herd_proc_stop(herd_proc *const *ps, size_t n, double grace, herd_proc_exit *out);
/* "exited with status 3", "killed by signal 9 (Killed)[, core dumped]",
 * "exit status unknown (reaped elsewhere)". Returns buf. */
HERD_API const char *herd_proc_describe(const herd_proc_exit *ex, char *buf, size_t cap);
/* Kill (SIGKILL to its group) and reap it if it still runs, then free. */
HERD_API void herd_proc_free(herd_proc *p);

/* ---- the provider ---- */
typedef struct herd_cluster herd_cluster;   /* defined by each provider */

enum { HERD_WORKER_STARTING, HERD_WORKER_RUNNING, HERD_WORKER_STOPPING,
       HERD_WORKER_STOPPED, HERD_WORKER_FAILED };

typedef struct herd_worker_info {
    char name[64];
    int state;            /* HERD_WORKER_* */
    long pid;             /* or 0 */
    char host[64];
    char detail[160];     /* exit status, error text … */
} herd_worker_info;

typedef struct herd_provider {
    char magic[4];                    /* "HRDP": never moves */
    uint16_t abi_major, abi_minor;
    uint32_t struct_size;             /* sizeof at build time: hooks past it read as NULL */
    const char *name;                 /* must equal the exported symbol */
    const char *summary;
    const herd_param *params;         /* cluster_kwargs schema */

    /* Build the cluster object from validated kwargs (defaults filled in). No
     * processes yet. env stays valid until close() returns. */
    int  (*create)(herd_cluster **out, const herd_value *kwargs,
                   const herd_cluster_env *env, herd_err *err);
    /* Optional: run the scheduler remotely and write the address clients and
     * workers dial (env->worker_envp already holds HERD_TOKEN, which it must
     * require). Called after create, before start. NULL, or 0 with an empty
     * address: the core runs the scheduler in the client process. */
    int  (*start_scheduler)(herd_cluster *c, char *address_out, size_t cap, herd_err *err);
    /* Start the initial workers (env->scheduler_address is set by now). */
    int  (*start)(herd_cluster *c, herd_err *err);
    /* Start n more workers. */
    int  (*scale_up)(herd_cluster *c, int n, herd_err *err);
    /* Stop the named worker (the core has already drained it when graceful). */
    int  (*retire)(herd_cluster *c, const char *worker, herd_err *err);
    /* Fill up to cap entries, set *n to how many workers exist. */
    int  (*status)(herd_cluster *c, herd_worker_info *out, size_t cap, size_t *n);
    /* Resources every worker of this cluster offers (map), or NULL. Lets the
     * core reject impossible resource requests at submit. Optional. */
    const herd_value *(*worker_resources)(herd_cluster *c);
    /* Stop every worker for certain and free c. */
    void (*close)(herd_cluster *c);

    /* ---- ABI 1.1 ---- */
    /* Optional: where the core's in-process scheduler must listen so this
     * cluster's workers can reach it, e.g. "tcp://0.0.0.0:0" or
     * "tcp://10.0.0.5:0" (port 0: any). Write it into out and return 0.
     * NULL (or an empty answer): a private Unix socket, fine for workers on
     * this machine. client_kwargs.listen, when given, wins. TLS clusters get
     * tls:// with the same host and port. */
    int  (*scheduler_listen)(herd_cluster *c, char *out, size_t cap, herd_err *err);
} herd_provider;

/* Fill the header fields. Usage in a provider source file:
 *     HERD_PROVIDER(LocalCluster) = { HERD_PROVIDER_HEAD(LocalCluster, "summary", params),
 *                                     .create = …, … };                     */
#define HERD_PROVIDER(sym) HERD_API const herd_provider sym
#define HERD_PROVIDER_HEAD(sym, summ, prm)                                     \
    .magic = { 'H', 'R', 'D', 'P' }, .abi_major = HERD_PROVIDER_ABI_MAJOR,      \
    .abi_minor = HERD_PROVIDER_ABI_MINOR, .struct_size = sizeof(herd_provider), \
    .name = #sym, .summary = (summ), .params = (prm)

/* A factory (the seed's "function for creating a custom cluster"): given the
 * cluster_kwargs as passed (not validated), pick or build a provider and
 * create its cluster. */
typedef int (*herd_cluster_factory)(const herd_value *kwargs, const herd_cluster_env *env,
                                    const herd_provider **prov_out, herd_cluster **out,
                                    herd_err *err);

/* ---- the registry ---- */
/* Resolve a cluster_class name (see docs/providers.md): "local.LocalCluster",
 * "path/to/x.so:Class", or an alias ("distributed.LocalCluster"). The
 * provider stays loaded for the life of the process. */
HERD_API int herd_provider_resolve(const char *name, const herd_provider **out, herd_err *err);
/* Check a provider struct (magic, ABI, size, hooks). */
HERD_API int herd_provider_check(const herd_provider *p, const char *what, herd_err *err);
/* Call fn for every provider found on the search path (-HERD_EARG for a NULL fn). */
HERD_API int herd_provider_foreach(void (*fn)(const char *qualified_name, const herd_provider *p,
                                              const char *path, void *ud), void *ud);
/* The directories searched, in order, as a malloc'd NULL-terminated vector. */
HERD_API char **herd_provider_search_path(void);

#ifdef __cplusplus
}
#endif
#endif
