/* providers/local/local.c — local.LocalCluster: workers as processes (or
 * threads) on this machine, with Dask's LocalCluster defaults
 * (distributed/deploy/local.py). The core hands over the worker command
 * (herd_worker_argv); this file decides how many workers, with how many
 * threads and how much memory, starts them, watches them (status reaps
 * exited processes and says why they ended: a signal, an exit status, or
 * memory_limit exceeded with the peak RSS), and stops them for certain:
 * retire and close send SIGTERM to the worker's process group, wait up to
 * 3 s, then SIGKILL and reap (the process helpers of core/proc.c, whose
 * spawner thread ties the workers' lives to the cluster's). One mutex per
 * cluster makes every hook safe to call from any thread. */
#include "local.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define STOP_GRACE_S 3.0   /* SIGTERM, then this long, then SIGKILL */

/* cluster_kwargs, bound by herd_kwargs_bind (see lc_create for the nulls).
 * Pointers are borrowed from the validated map create() is given. */
typedef struct local_opts {
    int n_workers;                /* -1: null */
    int threads_per_worker;       /* -1: null */
    bool processes;
    const herd_value *resources;  /* map, or NULL */
    int64_t memory_limit;         /* bytes; HERD_SIZE_AUTO: "auto"; 0: none (null too) */
    const herd_value *env;        /* map, or NULL */
    const char *name;             /* NULL: "local" */
    const char *local_directory;  /* NULL: the cluster's private directory */
    double lifetime, lifetime_stagger;   /* seconds, 0: none */
} local_opts;
#define LF(m) HERD_PARAM_FIELD(local_opts, m)

/* The cluster_kwargs schema. Defaults follow LocalCluster.__init__ in
 * distributed 2022.12 (see create() for how the nulls are filled in). */
static const herd_param params[] = {
    { "n_workers", HERD_PARAM_INT, "null",
      "Number of workers to start. null: as Dask chooses it from the CPU count: "
      "with processes and no threads_per_worker, nprocesses_nthreads(cpu) "
      "(cpu <= 4: one worker per core, else the smallest factor of cpu >= sqrt(cpu)); "
      "with threads_per_worker, max(1, cpu // threads_per_worker); 1 when processes is false.",
      HERD_PARAM_NULLABLE, 0, 100000, LF(n_workers) },
    { "threads_per_worker", HERD_PARAM_INT, "null",
      "Threads (task slots) per worker. null: max(1, ceil(cpu / n_workers)) (Dask "
      "overcommits rather than undercommits); cpu when processes is false and n_workers "
      "is not given, or when n_workers is 0.",
      HERD_PARAM_NULLABLE, 1, 4096, LF(threads_per_worker) },
    { "processes", HERD_PARAM_BOOL, "true",
      "Run workers as processes (true) or as threads of this process (false).", 0, 0, 0, LF(processes) },
    { "resources", HERD_PARAM_MAP, "{}",
      "Abstract resources every worker offers, name -> amount > 0, e.g. {GPU: 1}.", 0, 0, 0, LF(resources) },
    { "memory_limit", HERD_PARAM_SIZE, "auto",
      "Memory limit per worker, bytes or \"4GiB\". \"auto\": system memory / n_workers "
      "(cgroup and RLIMIT_RSS limits count); 0 or null: no limit; more than the system "
      "has: the system's memory. Enforced only when processes is true.",
      HERD_PARAM_NULLABLE, 0, 0, LF(memory_limit) },
    { "env", HERD_PARAM_MAP, "{}",
      "Extra environment variables for worker processes, name -> string.", 0, 0, 0, LF(env) },
    { "name", HERD_PARAM_STRING, "\"local\"",
      "Prefix of worker names: <name>-0, <name>-1, … (numbers never reused). null: \"local\".",
      HERD_PARAM_NULLABLE, 0, 0, LF(name) },
    { "local_directory", HERD_PARAM_STRING, "null",
      "Directory (existing, writable) where worker processes spill held results to disk above 60% of "
      "memory_limit, each in its own herd-spill-<worker>-XXXXXX directory removed when the worker ends. "
      "null: inside the cluster's private temporary directory.",
      HERD_PARAM_NULLABLE, 0, 0, LF(local_directory) },
    HERD_PARAMS_LIFETIME(local_opts, lifetime, lifetime_stagger),
    { NULL }
};

typedef struct lworker {
    char name[64];
    herd_proc *proc;            /* processes */
    pid_t pid;                  /* herd_proc_pid(proc), for status and details */
    herd_worker_thread *thr;    /* threads */
    int state;                  /* HERD_WORKER_* */
    bool busy;                  /* a retire is stopping it: status leaves it alone */
    char detail[160];
} lworker;

struct herd_cluster {
    pthread_mutex_t mu;
    const herd_cluster_env *env;
    bool processes;
    int n_workers, nthreads;
    int64_t memory_limit;       /* bytes, 0 = none */
    herd_value *resources;      /* map, owned */
    char **extra_env;           /* "KEY=VALUE", from the env kwarg */
    char prefix[48];
    unsigned long next_id;
    lworker **w;
    size_t nw, capw;
    herd_spawner *sp;           /* created on the first process start; freed last */
};

/* ---- create ---- */

static int check_resources(const herd_value *res, herd_err *err)
{
    if (herd_typeof(res) == HERD_NIL) return 0;
    if (herd_typeof(res) != HERD_MAP)
        return herd_err_set(err, HERD_ECONFIG, "cluster_kwargs.resources: expected a map name -> "
                            "number, got %s", herd_type_name(herd_typeof(res)));
    for (size_t i = 0; i < herd_len(res); i++) {
        const char *k = herd_key_at(res, i);
        const herd_value *v = herd_at(res, i);
        if (!k || !*k)
            return herd_err_set(err, HERD_ECONFIG, "cluster_kwargs.resources: empty resource name");
        herd_type t = herd_typeof(v);
        if (t != HERD_INT && t != HERD_FLOAT) {
            char *txt = herd_value_to_string(v);
            int rc = herd_err_set(err, HERD_ECONFIG, "cluster_kwargs.resources.%s: expected a "
                                  "number > 0, got %s %s", k, herd_type_name(t), txt ? txt : "?");
            free(txt);
            return rc;
        }
        if (!(herd_as_float(v) > 0) || !isfinite(herd_as_float(v)))
            return herd_err_set(err, HERD_ECONFIG, "cluster_kwargs.resources.%s: expected a "
                                "finite number > 0, got %g", k, herd_as_float(v));
    }
    return 0;
}

/* The env kwarg's variables, then HERD_LOCAL_DIRECTORY for local_directory
 * and HERD_LIFETIME(_STAGGER) for lifetime (the worker reads them:
 * herd_worker_spec has no field for them). */
static int build_env(herd_cluster *c, const herd_value *env, const local_opts *o, herd_err *err)
{
    const char *local_directory = o->local_directory;
    size_t n = herd_typeof(env) == HERD_MAP ? herd_len(env) : 0;
    if (herd_typeof(env) != HERD_NIL && herd_typeof(env) != HERD_MAP)
        return herd_err_set(err, HERD_ECONFIG, "cluster_kwargs.env: expected a map name -> "
                            "string, got %s", herd_type_name(herd_typeof(env)));
    if (!(c->extra_env = calloc(n + 4, sizeof *c->extra_env)))
        return herd_err_set(err, -ENOMEM, "cluster_kwargs.env: out of memory");
    for (size_t i = 0; i < n; i++) {
        const char *k = herd_key_at(env, i);
        const char *v = herd_as_str(herd_at(env, i));
        if (!k || !*k || strchr(k, '='))
            return herd_err_set(err, HERD_ECONFIG, "cluster_kwargs.env: variable name \"%s\": "
                                "expected a non-empty name without '='", k ? k : "");
        if (!v)
            return herd_err_set(err, HERD_ECONFIG, "cluster_kwargs.env.%s: expected a string, "
                                "got %s (quote it in YAML)", k, herd_type_name(herd_typeof(herd_at(env, i))));
        size_t len = strlen(k) + strlen(v) + 2;
        if (!(c->extra_env[i] = malloc(len)))
            return herd_err_set(err, -ENOMEM, "cluster_kwargs.env: out of memory");
        snprintf(c->extra_env[i], len, "%s=%s", k, v);
    }
    if (local_directory) {
        int rc = herd_local_directory_check("cluster_kwargs.local_directory", local_directory, err);
        if (rc) return rc;
        if (asprintf(&c->extra_env[n], "HERD_LOCAL_DIRECTORY=%s", local_directory) < 0) {
            c->extra_env[n] = NULL;
            return herd_err_set(err, -ENOMEM, "cluster_kwargs.local_directory: out of memory");
        }
        n++;
    }
    if (o->lifetime > 0) {
        if (!o->processes)
            return herd_err_set(err, HERD_ECONFIG, "cluster_kwargs.lifetime: %g s with processes: false: "
                                "expected processes: true (a worker thread does not retire itself)", o->lifetime);
        if (asprintf(&c->extra_env[n], "HERD_LIFETIME=%.17g", o->lifetime) < 0) {
            c->extra_env[n] = NULL;
            return herd_err_set(err, -ENOMEM, "cluster_kwargs.lifetime: out of memory");
        }
        if (asprintf(&c->extra_env[n + 1], "HERD_LIFETIME_STAGGER=%.17g", o->lifetime_stagger) < 0) {
            c->extra_env[n + 1] = NULL;
            return herd_err_set(err, -ENOMEM, "cluster_kwargs.lifetime: out of memory");
        }
    }
    return 0;
}

static void cluster_free(herd_cluster *c)
{
    for (size_t i = 0; i < c->nw; i++) {
        herd_proc_free(c->w[i]->proc);
        free(c->w[i]);
    }
    free(c->w);
    herd_strv_free(c->extra_env);
    herd_value_free(c->resources);
    herd_spawner_free(c->sp);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static int lc_create(herd_cluster **out, const herd_value *kw, const herd_cluster_env *env, herd_err *err)
{
    *out = NULL;
    herd_cluster *c = calloc(1, sizeof *c);
    if (!c) return herd_err_set(err, -ENOMEM, "LocalCluster: out of memory");
    pthread_mutex_init(&c->mu, NULL);
    c->env = env;

    /* the nulls (and keys a factory's map leaves out) keep these */
    local_opts o = { .n_workers = -1, .threads_per_worker = -1, .processes = true, .memory_limit = 0 };
    int rc = herd_kwargs_bind(params, kw, &o, sizeof o, err);
    if (rc) { cluster_free(c); return herd_err_prefix(err, "cluster_kwargs"); }
    c->processes = o.processes;
    int nw = o.n_workers, tpw = o.threads_per_worker;
    if (nw < -1 || nw > 100000 || tpw == 0 || tpw < -1)
        rc = herd_err_set(err, HERD_ECONFIG, "cluster_kwargs: n_workers %d / threads_per_worker %d: "
                          "expected n_workers >= 0 and threads_per_worker >= 1", nw, tpw);

    /* LocalCluster.__init__: */
    int cpu = local_cpu_count();
    if (nw < 0 && tpw < 0) {
        if (c->processes) herd_nprocesses_nthreads(cpu, &nw, &tpw);
        else { nw = 1; tpw = cpu; }
    }
    if (nw < 0) nw = c->processes ? (cpu / tpw > 1 ? cpu / tpw : 1) : 1;
    if (tpw < 0) {
        /* "Overcommit threads per worker, rather than undercommit"; with
         * n_workers=0 Dask leaves nthreads unset and a Worker takes cpu. */
        tpw = nw > 0 ? (cpu + nw - 1) / nw : cpu;
        if (tpw < 1) tpw = 1;
    }
    c->n_workers = nw;
    c->nthreads = tpw;

    /* memory_limit: parse_memory_limit("auto", 1, n_workers) = total / n_workers
     * (a Worker's own default, for n_workers 0: total * min(1, nthreads / cpu));
     * 0 or None: no limit; above the system's memory: the system's memory. */
    int64_t total = local_memory_limit(), m = o.memory_limit;
    if (m == HERD_SIZE_AUTO)
        c->memory_limit = nw > 0 ? total / nw : (tpw >= cpu ? total : total / cpu * tpw);
    else if (m < 0 && !rc)
        rc = herd_err_set(err, HERD_ECONFIG, "cluster_kwargs.memory_limit: expected >= 0 bytes, "
                          "got %lld", (long long)m);
    else {
        if (m > total) {
            herd_log(env, HERD_LOG_WARN, "LocalCluster: ignoring memory_limit %lld: the system has "
                     "%lld bytes", (long long)m, (long long)total);
            m = total;
        }
        c->memory_limit = m > 0 ? m : 0;
    }

    if (!rc) rc = check_resources(o.resources, err);
    if (!rc) {
        c->resources = o.resources ? herd_value_copy(o.resources) : herd_map();
        if (!c->resources) rc = herd_err_set(err, -ENOMEM, "LocalCluster: out of memory");
    }
    if (!rc) rc = build_env(c, o.env, &o, err);
    if (!rc) {
        const char *name = o.name ? o.name : "local";
        if (!herd_name_prefix_ok(name))
            rc = herd_err_set(err, HERD_ECONFIG, "cluster_kwargs.name: expected 1 to 40 letters, "
                              "digits, '_', '.' or '-', got \"%.60s\"", name);
        else
            snprintf(c->prefix, sizeof c->prefix, "%s", name);
    }
    if (rc) { cluster_free(c); return rc; }
    herd_log(env, HERD_LOG_DEBUG, "LocalCluster: %d workers x %d threads, %s, memory_limit %lld "
             "(cpu %d)", c->n_workers, c->nthreads, c->processes ? "processes" : "threads",
             (long long)c->memory_limit, cpu);
    *out = c;
    return 0;
}

/* ---- starting workers ---- */

/* The core's environment additions, then the env kwarg's (later ones win);
 * the strings are borrowed. */
static const char **worker_env(const char *const *core, char *const *extra)
{
    size_t n = 0, k = 0;
    for (const char *const *e = core; e && *e; e++) n++;
    for (char *const *e = extra; e && *e; e++) n++;
    const char **v = calloc(n + 1, sizeof *v);
    if (!v) return NULL;
    for (const char *const *e = core; e && *e; e++) v[k++] = *e;
    for (char *const *e = extra; e && *e; e++) v[k++] = *e;
    return v;
}

static lworker *add_worker(herd_cluster *c)
{
    if (c->nw == c->capw) {
        size_t cap = c->capw ? 2 * c->capw : 8;
        lworker **w = realloc(c->w, cap * sizeof *w);
        if (!w) return NULL;
        c->w = w;
        c->capw = cap;
    }
    lworker *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    snprintf(w->name, sizeof w->name, "%s-%lu", c->prefix, c->next_id++);
    w->state = HERD_WORKER_STARTING;
    c->w[c->nw++] = w;
    return w;
}

/* Start one worker; c->mu held. On failure the worker stays listed as
 * failed, with the reason. */
static int start_one(herd_cluster *c, herd_err *err)
{
    herd_err local_err = { 0 };
    if (!err) err = &local_err;   /* the reason is kept in the worker's detail */
    lworker *w = add_worker(c);
    if (!w) return herd_err_set(err, -ENOMEM, "LocalCluster: out of memory");
    herd_worker_spec spec = {
        .name = w->name, .nthreads = c->nthreads,
        .resources = herd_len(c->resources) ? c->resources : NULL,
        .memory_limit = c->processes ? c->memory_limit : 0,   /* as in Dask: processes only */
    };
    int rc;
    if (!c->processes) {
        rc = herd_worker_thread_start(c->env, &spec, &w->thr, err);
        if (rc == 0) snprintf(w->detail, sizeof w->detail, "thread worker, %d threads", c->nthreads);
    } else {
        char **argv = NULL;
        const char **envp = NULL;
        rc = herd_worker_argv(c->env, &spec, &argv, err);
        if (rc == 0 && (!argv || !argv[0]))
            rc = herd_err_set(err, HERD_EPROVIDER, "LocalCluster: empty worker command");
        if (rc == 0 && !(envp = worker_env(c->env->worker_envp, c->extra_env)))
            rc = herd_err_set(err, -ENOMEM, "LocalCluster: out of memory");
        if (rc == 0 && !c->sp && (rc = herd_spawner_new(&c->sp, err)) != 0)
            herd_err_prefix(err, "LocalCluster");
        if (rc == 0) {
            herd_proc_spec ps = { .argv = (const char *const *)argv, .env = envp,
                                  .io = { HERD_PROC_DEVNULL, HERD_PROC_INHERIT, HERD_PROC_INHERIT } };
            rc = herd_proc_start(c->sp, &ps, &w->proc, NULL, err);
            if (rc) herd_err_prefix(err, "LocalCluster: worker %s", w->name);
            else {
                w->pid = herd_proc_pid(w->proc);
                snprintf(w->detail, sizeof w->detail, "pid %ld, %d threads", (long)w->pid, c->nthreads);
            }
        }
        herd_strv_free(argv);
        free(envp);
    }
    if (rc) {
        w->state = HERD_WORKER_FAILED;
        snprintf(w->detail, sizeof w->detail, "%.159s", err->msg);
        return rc;
    }
    w->state = HERD_WORKER_RUNNING;
    herd_log(c->env, HERD_LOG_INFO, "LocalCluster: started worker %s (%s)", w->name, w->detail);
    return 0;
}

static int lc_scale_up(herd_cluster *c, int n, herd_err *err)
{
    if (n < 0) return herd_err_set(err, HERD_EARG, "LocalCluster scale_up: n = %d, expected >= 0", n);
    pthread_mutex_lock(&c->mu);
    int rc = 0;
    for (int i = 0; i < n && !rc; i++)
        if ((rc = start_one(c, err)) && n > 1)
            herd_err_prefix(err, "LocalCluster: started %d of %d workers", i, n);
    pthread_mutex_unlock(&c->mu);
    return rc;
}

static int lc_start(herd_cluster *c, herd_err *err) { return lc_scale_up(c, c->n_workers, err); }

/* ---- watching and stopping ---- */

/* Record how w's process ended; c->mu held. A worker that ended itself over
 * memory_limit (HERD_WORKER_EXIT_MEMORY_LIMIT) says so, with its peak RSS. */
static void finish(herd_cluster *c, lworker *w, const herd_proc_exit *ex, bool expected)
{
    if (ex->known && !ex->signal && ex->status == HERD_WORKER_EXIT_MEMORY_LIMIT && !expected) {
        w->state = HERD_WORKER_FAILED;
        snprintf(w->detail, sizeof w->detail, "pid %ld exceeded memory_limit %lld MiB (peak RSS %ld MiB) and exited",
                 (long)w->pid, (long long)(c->memory_limit >> 20), ex->max_rss_kib / 1024);
        return;
    }
    bool ok = ex->known ? (ex->signal ? expected && (ex->signal == SIGTERM || ex->signal == SIGKILL)
                                      : expected || ex->status == 0)
                        : expected;
    w->state = ok ? HERD_WORKER_STOPPED : HERD_WORKER_FAILED;
    char how[96];
    herd_proc_describe(ex, how, sizeof how);
    bool retired = ex->known && (ex->signal ? ok : expected);
    snprintf(w->detail, sizeof w->detail, "pid %ld %s%s", (long)w->pid, how, retired ? " (retired)" : "");
}

/* Stop the processes of ws[0..n) for certain (SIGTERM to each group, up to
 * STOP_GRACE_S, SIGKILL, reaped). Called without c->mu; results recorded
 * under it. */
static void stop_procs(herd_cluster *c, lworker **ws, size_t n)
{
    herd_proc **ps = calloc(n ? n : 1, sizeof *ps);
    herd_proc_exit *ex = calloc(n ? n : 1, sizeof *ex);
    if (!ps || !ex) {                     /* no memory: one at a time */
        for (size_t i = 0; i < n; i++) {
            herd_proc_exit one;
            herd_proc_stop(&ws[i]->proc, 1, STOP_GRACE_S, &one);
            pthread_mutex_lock(&c->mu);
            finish(c, ws[i], &one, true);
            pthread_mutex_unlock(&c->mu);
        }
    } else {
        for (size_t i = 0; i < n; i++) ps[i] = ws[i]->proc;
        herd_proc_stop(ps, n, STOP_GRACE_S, ex);
        pthread_mutex_lock(&c->mu);
        for (size_t i = 0; i < n; i++) finish(c, ws[i], &ex[i], true);
        pthread_mutex_unlock(&c->mu);
    }
    free(ps);
    free(ex);
}

static int lc_retire(herd_cluster *c, const char *worker, herd_err *err)
{
    pthread_mutex_lock(&c->mu);
    lworker *w = NULL;
    for (size_t i = 0; i < c->nw && !w; i++)
        if (strcmp(c->w[i]->name, worker ? worker : "") == 0) w = c->w[i];
    if (!w) {
        char names[600] = "";
        size_t o = 0;
        for (size_t i = 0; i < c->nw && o < sizeof names - 70; i++)
            if (c->w[i]->state == HERD_WORKER_RUNNING)
                o += (size_t)snprintf(names + o, sizeof names - o, "%s%s", o ? ", " : "", c->w[i]->name);
        pthread_mutex_unlock(&c->mu);
        return herd_err_set(err, HERD_EARG, "LocalCluster retire: no worker \"%s\" (running: %s)",
                            worker ? worker : "(null)", o ? names : "none");
    }
    if (w->busy || w->state != HERD_WORKER_RUNNING) {   /* already stopping or ended */
        pthread_mutex_unlock(&c->mu);
        return 0;
    }
    w->busy = true;
    w->state = HERD_WORKER_STOPPING;
    herd_worker_thread *thr = w->thr;
    w->thr = NULL;
    pthread_mutex_unlock(&c->mu);

    if (c->processes) {
        stop_procs(c, &w, 1);
    } else {
        herd_worker_thread_stop(thr, false);
        pthread_mutex_lock(&c->mu);
        w->state = HERD_WORKER_STOPPED;
        snprintf(w->detail, sizeof w->detail, "thread worker retired");
        pthread_mutex_unlock(&c->mu);
    }
    pthread_mutex_lock(&c->mu);
    w->busy = false;
    pthread_mutex_unlock(&c->mu);
    herd_log(c->env, HERD_LOG_INFO, "LocalCluster: retired worker %s", worker);
    return 0;
}

static int lc_status(herd_cluster *c, herd_worker_info *out, size_t cap, size_t *n)
{
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < c->nw; i++) {
        lworker *w = c->w[i];
        if (!w->busy && w->state == HERD_WORKER_RUNNING) {
            if (c->processes) {
                herd_proc_exit ex;
                if (herd_proc_poll(w->proc, &ex)) finish(c, w, &ex, false);
            } else if (w->thr && !herd_worker_thread_alive(w->thr)) {
                herd_worker_thread_stop(w->thr, true);
                w->thr = NULL;
                w->state = HERD_WORKER_FAILED;
                snprintf(w->detail, sizeof w->detail, "worker thread ended on its own");
            }
        }
        if (i < cap && out) {
            herd_worker_info *o = &out[i];
            memset(o, 0, sizeof *o);
            snprintf(o->name, sizeof o->name, "%s", w->name);
            o->state = w->state;
            o->pid = c->processes ? (long)w->pid : 0;
            snprintf(o->host, sizeof o->host, "localhost");
            snprintf(o->detail, sizeof o->detail, "%s", w->detail);
        }
    }
    if (n) *n = c->nw;
    pthread_mutex_unlock(&c->mu);
    return 0;
}

static const herd_value *lc_worker_resources(herd_cluster *c) { return c->resources; }

static void lc_close(herd_cluster *c)
{
    if (!c) return;
    /* wait for retires in flight */
    for (;;) {
        bool busy = false;
        pthread_mutex_lock(&c->mu);
        for (size_t i = 0; i < c->nw; i++) busy |= c->w[i]->busy;
        pthread_mutex_unlock(&c->mu);
        if (!busy) break;
        struct timespec ts = { 0, 10 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
    pthread_mutex_lock(&c->mu);
    lworker **live = calloc(c->nw ? c->nw : 1, sizeof *live);
    size_t n = 0;
    for (size_t i = 0; i < c->nw; i++) {
        lworker *w = c->w[i];
        if (w->state != HERD_WORKER_RUNNING) continue;
        w->state = HERD_WORKER_STOPPING;
        if (live) live[n++] = w;
        else if (c->processes) {   /* no memory: one at a time */
            pthread_mutex_unlock(&c->mu);
            stop_procs(c, &w, 1);
            pthread_mutex_lock(&c->mu);
        }
    }
    pthread_mutex_unlock(&c->mu);
    if (c->processes) {
        stop_procs(c, live, n);
    } else {
        for (size_t i = 0; i < c->nw; i++)
            if (c->w[i]->thr) {
                herd_worker_thread_stop(c->w[i]->thr, true);
                c->w[i]->thr = NULL;
                c->w[i]->state = HERD_WORKER_STOPPED;
            }
    }
    free(live);
    herd_log(c->env, HERD_LOG_DEBUG, "LocalCluster: closed (%zu workers ever started)", c->nw);
    cluster_free(c);
}

HERD_PROVIDER(LocalCluster) = {
    HERD_PROVIDER_HEAD(LocalCluster, "worker processes (or threads) on this machine", params),
    .create = lc_create,
    .start = lc_start,
    .scale_up = lc_scale_up,
    .retire = lc_retire,
    .status = lc_status,
    .worker_resources = lc_worker_resources,
    .close = lc_close,
};

/* The module's classes, for herd_provider_foreach and `herd providers`. */
HERD_API const herd_provider *const herd_providers[] = { &LocalCluster, NULL };
