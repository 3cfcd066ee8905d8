/* core/cli/conformance.c — the provider conformance suite (conformance.h):
 * the list of rules and the two runs that check them against a real cluster,
 * through the runner and through the provider's hooks. Each check that fails
 * ends the run with an error "rule <id> (<text>): <what happened>". */
#include "conformance.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

const herd_conformance_rule herd_conformance_rules[] = {
    { "start", "create + start: the workers cluster_kwargs ask for connect to the scheduler "
               "within the timeout, with at least one thread each" },
    { "run", "tasks submitted to the cluster run on its workers and return their results" },
    { "status", "status lists every started worker as running, each under a name unique in "
                "the cluster, with its pid (> 0) when the pids are local" },
    { "scale_up", "scale_up(1) starts one more worker: it connects and status lists it running" },
    { "retire", "retire(name) stops that worker: it disconnects, status then omits it or lists "
                "it stopped, and its process is gone and reaped (no zombie)" },
    { "retire_unknown", "retire of a name the cluster does not have fails, and the error message "
                        "names it" },
    { "names", "a name is never reused: a worker started after a retire gets a name no worker "
               "of the cluster had before" },
    { "killed", "a worker killed by SIGKILL is listed failed, with a detail that says "
                "\"signal 9\"; the tasks in flight complete on the other workers, and new "
                "tasks still run" },
    { "close", "close (at the flow run's end) stops every worker: no process is left, none a zombie" },
    { NULL, NULL },
};

/* ---- the suite's tasks (in the workers: the same program) ---- */

static int conf_square(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    (void)ctx;
    int64_t x = herd_as_int(herd_at(args, 0));
    *out = herd_int(x * x);
    return 0;
}
HERD_TASK(conf_square);

static int conf_slow_square(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    struct timespec ts = { 0, 300 * 1000 * 1000 };   /* long enough to be in flight */
    while (nanosleep(&ts, &ts) && errno == EINTR) {}
    return conf_square(ctx, args, out);
}
HERD_TASK(conf_slow_square);

/* ---- the run's state ---- */

typedef struct run {
    const herd_conformance_opts *o;
    herd_runner *r;
    const herd_provider *prov;        /* with the hooks (lifecycle only) */
    herd_cluster *cluster;
    bool local_pids;
} run;

/* ---- reporting ---- */

static const herd_conformance_rule *rule(const char *id)
{
    for (const herd_conformance_rule *r = herd_conformance_rules; r->id; r++)
        if (!strcmp(r->id, id)) return r;
    abort();   /* a misspelt id in this file */
}

static void passed(const herd_conformance_opts *o, const char *id)
{
    if (o->report) o->report(o->ud, rule(id), "ok");
}

/* Passed, but the parts about processes were not checked. */
static void passed_remote(const run *x, const char *id)
{
    if (x->o->report)
        x->o->report(x->o->ud, rule(id), x->local_pids ? "ok" : "ok (its processes not checked: the pids are not local)");
}

static void skipped(const herd_conformance_opts *o, const char *id, const char *why)
{
    char buf[256];
    snprintf(buf, sizeof buf, "skipped: %s", why);
    if (o->report) o->report(o->ud, rule(id), buf);
}

__attribute__((format(printf, 3, 4)))
static int broken(herd_err *err, const char *id, const char *fmt, ...)
{
    char what[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    const herd_conformance_rule *r = rule(id);
    return herd_err_set(err, -HERD_EPROVIDER, "rule %s (%s): %s", r->id, r->text, what);
}

/* A runtime call failed while checking rule id: say which rule. */
static int broken_call(herd_err *err, const char *id, const char *call)
{
    char msg[sizeof err->msg];
    snprintf(msg, sizeof msg, "%s", err->msg);
    return broken(err, id, "%s: %s", call, msg);
}

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) && errno == EINTR) {}
}

static int make_runner(run *x, herd_cluster_factory factory, herd_err *err)
{
    herd_runner_opts ro = { 0 };
    if (factory) ro.cluster_factory = factory;
    else if (x->o->provider) ro.cluster_provider = x->o->provider;
    else ro.cluster_class = x->o->cluster_class;
    ro.cluster_kwargs = x->o->kwargs;
    ro.client_kwargs = "{start: eager}";   /* the factory runs inside herd_flow_begin, and start is checked there */
    return herd_runner_new(&x->r, &ro, err);
}

/* Submit task for 0..n-1 and check every result. */
static int squares(run *x, const char *task, int n, herd_err *err)
{
    herd_future *fs[64];
    int rc = 0, made;
    if (n > 64) n = 64;
    for (made = 0; made < n; made++)
        if (herd_submit(x->r, task, herd_tuple("i", made), &fs[made], err)) {
            rc = broken_call(err, "run", "herd_submit");
            break;
        }
    for (int i = 0; i < made; i++) {
        const herd_value *v;
        if (!rc && herd_future_result(fs[i], x->o->timeout, &v, err))
            rc = broken_call(err, "run", task);
        else if (!rc && herd_as_int(v) != (int64_t)i * i)
            rc = broken(err, "run", "%s(%d) returned %lld, expected %d", task, i,
                        (long long)herd_as_int(v), i * i);
        herd_future_release(fs[i]);
    }
    return rc;
}

/* ---- create + start through the runner ---- */

static int check_start(run *x, herd_err *err)
{
    const herd_conformance_opts *o = x->o;
    if (herd_wait_for_workers(x->r, o->n_initial, o->timeout, err)) {
        char what[96];
        snprintf(what, sizeof what, "waiting for %d workers (as many as cluster_kwargs start)", o->n_initial);
        return broken_call(err, "start", what);
    }
    int nthreads = 0, n = herd_runner_workers(x->r, &nthreads);
    if (n != o->n_initial)
        return broken(err, "start", "%d workers connected, expected %d", n, o->n_initial);
    if (nthreads < n)
        return broken(err, "start", "%d workers offer %d threads, expected at least one each", n, nthreads);
    passed(o, "start");
    return 0;
}

static int check_opts(const herd_conformance_opts *o, herd_err *err)
{
    if (!o->cluster_class && !o->provider)
        return herd_err_set(err, -HERD_EARG, "conformance: no provider (cluster_class or provider)");
    if (o->n_initial < 1)
        return herd_err_set(err, -HERD_EARG, "conformance: n_initial %d, expected >= 1", o->n_initial);
    if (!(o->timeout > 0))
        return herd_err_set(err, -HERD_EARG, "conformance: timeout %g, expected seconds > 0", o->timeout);
    return 0;
}

int herd_conformance_basic(const herd_conformance_opts *o, herd_err *err)
{
    int rc = check_opts(o, err);
    if (rc) return rc;
    run x = { .o = o };
    if ((rc = make_runner(&x, NULL, err))) return broken_call(err, "start", "herd_runner_new");
    if ((rc = herd_flow_begin(x.r, "conformance-basic", err))) rc = broken_call(err, "start", "herd_flow_begin");
    else {
        if (!(rc = check_start(&x, err)) && !(rc = squares(&x, "conf_square", 20, err))) passed(o, "run");
        herd_err end = { 0 };
        if (herd_flow_end(x.r, rc != 0, &end) && !rc) {
            *err = end;
            rc = broken_call(err, "close", "herd_flow_end");
        }
    }
    herd_runner_free(x.r);
    return rc;
}

/* ---- the lifecycle, with the cluster's hooks in hand ---- */

/* The factory has no user data: the one run in progress. */
static pthread_mutex_t cur_lock = PTHREAD_MUTEX_INITIALIZER;
static run *cur;

static int factory(const herd_value *kwargs, const herd_cluster_env *env,
                   const herd_provider **prov_out, herd_cluster **out, herd_err *err)
{
    const herd_provider *p = cur->o->provider;
    int rc;
    if (!p && (rc = herd_provider_resolve(cur->o->cluster_class, &p, err))) return rc;
    herd_value *v = NULL;
    if ((rc = herd_kwargs_validate(p->params, kwargs, "cluster_kwargs", &v, err))) return rc;
    rc = p->create(out, v, env, err);
    herd_value_free(v);
    if (rc) return rc;
    *prov_out = cur->prov = p;
    cur->cluster = *out;
    return 0;
}

typedef struct status { herd_worker_info w[64]; size_t n; } status;

static int get_status(run *x, status *s, const char *id, herd_err *err)
{
    s->n = 0;
    int rc = x->prov->status(x->cluster, s->w, 64, &s->n);
    if (rc) return broken(err, id, "status returned %d (%s)", rc, herd_strerror(rc));
    if (s->n > 64) s->n = 64;   /* more workers than the suite starts */
    return 0;
}

static const herd_worker_info *find(const status *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->w[i].name, name)) return &s->w[i];
    return NULL;
}

static size_t count(const status *s, int state)
{
    size_t k = 0;
    for (size_t i = 0; i < s->n; i++) k += s->w[i].state == state;
    return k;
}

static int unique_names(const status *s, const char *id, herd_err *err)
{
    for (size_t i = 0; i < s->n; i++) {
        if (!s->w[i].name[0]) return broken(err, id, "status lists a worker without a name");
        for (size_t j = 0; j < i; j++)
            if (!strcmp(s->w[i].name, s->w[j].name))
                return broken(err, id, "status lists two workers named \"%s\"", s->w[i].name);
    }
    return 0;
}

/* Is pid a process on this machine that runs worker `name`? Its command
 * line holds "--herd-name NAME" (herd_worker_argv). */
static bool runs_worker(long pid, const char *name)
{
    char path[64], buf[8192];
    snprintf(path, sizeof path, "/proc/%ld/cmdline", pid);
    FILE *f = pid > 0 ? fopen(path, "r") : NULL;
    if (!f) return false;
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = '\0';
    for (size_t i = 0; i < len; i += strlen(buf + i) + 1)
        if (!strcmp(buf + i, "--herd-name") && i + 12 < len && !strcmp(buf + i + 12, name)) return true;
    return false;
}

static bool pid_gone(long pid)
{
    return kill((pid_t)pid, 0) != 0 && errno == ESRCH;   /* a zombie still answers */
}

/* Poll until herd_runner_workers == n. */
static int wait_count(run *x, int n, const char *id, herd_err *err)
{
    double end = herd_now() + x->o->timeout;
    int have, nt;
    while ((have = herd_runner_workers(x->r, &nt)) != n && herd_now() < end) sleep_ms(20);
    if (have != n) return broken(err, id, "%d workers connected after %g s, expected %d", have, x->o->timeout, n);
    return 0;
}

static int check_status(run *x, status *s, herd_err *err)
{
    int n = x->o->n_initial, rc;
    if ((rc = get_status(x, s, "status", err)) || (rc = unique_names(s, "status", err))) return rc;
    if (count(s, HERD_WORKER_RUNNING) != (size_t)n)
        return broken(err, "status", "%zu of %zu listed workers are running, expected %d (the number "
                      "cluster_kwargs start, as the suite was told)",
                      count(s, HERD_WORKER_RUNNING), s->n, n);
    bool local = x->o->pids != HERD_CONF_PIDS_REMOTE;
    for (size_t i = 0; i < s->n && local; i++)
        if (!runs_worker(s->w[i].pid, s->w[i].name)) {
            if (x->o->pids == HERD_CONF_PIDS_LOCAL)
                return broken(err, "status", "worker %s: pid %ld is not a process here running it",
                              s->w[i].name, s->w[i].pid);
            local = false;
        }
    x->local_pids = local;
    passed(x->o, "status");
    return 0;
}

/* scale_up(1) and wait; *added is the new worker's name. */
static int scale_one(run *x, const char *id, const status *before, char *added, size_t cap, herd_err *err)
{
    int nt, n = herd_runner_workers(x->r, &nt), rc;
    if (x->prov->scale_up(x->cluster, 1, err)) return broken_call(err, id, "scale_up(1)");
    if (herd_wait_for_workers(x->r, n + 1, x->o->timeout, err)) return broken_call(err, id, "waiting for the new worker");
    status s;
    if ((rc = get_status(x, &s, id, err)) || (rc = unique_names(&s, id, err))) return rc;
    added[0] = '\0';
    for (size_t i = 0; i < s.n && !added[0]; i++)
        if (s.w[i].state == HERD_WORKER_RUNNING && !find(before, s.w[i].name))
            snprintf(added, cap, "%s", s.w[i].name);
    if (!added[0]) return broken(err, id, "status lists no running worker that was not there before scale_up");
    if (x->local_pids && !runs_worker(find(&s, added)->pid, added))
        return broken(err, id, "worker %s: pid %ld is not a process here running it", added, find(&s, added)->pid);
    return 0;
}

static int check_scale_retire(run *x, status *s, char *retired, size_t cap, long *pids, size_t *npids, herd_err *err)
{
    int rc;
    for (size_t i = 0; i < s->n && x->local_pids; i++) pids[(*npids)++] = s->w[i].pid;
    if ((rc = scale_one(x, "scale_up", s, retired, cap, err))) return rc;
    passed(x->o, "scale_up");

    /* retire the newest: it disconnects, status says stopped, its process is gone */
    if ((rc = get_status(x, s, "retire", err))) return rc;
    long pid = find(s, retired)->pid;
    if (x->local_pids) pids[(*npids)++] = pid;
    if (x->prov->retire(x->cluster, retired, err)) return broken_call(err, "retire", "retire");
    if ((rc = wait_count(x, x->o->n_initial, "retire", err)) || (rc = get_status(x, s, "retire", err))) return rc;
    const herd_worker_info *w = find(s, retired);
    if (w && w->state != HERD_WORKER_STOPPED)   /* a provider may forget retired workers */
        return broken(err, "retire", "retired worker %s: state %d (%s), expected stopped", retired, w->state, w->detail);
    if (x->local_pids && !pid_gone(pid))
        return broken(err, "retire", "retired worker %s: its process %ld still exists (or is an unreaped zombie)", retired, pid);
    if (!w && x->o->report)                   /* say so: the state check above did not run */
        x->o->report(x->o->ud, rule("retire"), x->local_pids ? "ok (the retired worker is no longer listed)"
                     : "ok (the retired worker is no longer listed; its processes not checked: the pids are not local)");
    else passed_remote(x, "retire");

    herd_err e = { 0 };
    if (x->prov->retire(x->cluster, "no-such-worker", &e) == 0)
        return broken(err, "retire_unknown", "retire(\"no-such-worker\") returned 0");
    if (!strstr(e.msg, "no-such-worker"))
        return broken(err, "retire_unknown", "retire(\"no-such-worker\") failed with \"%s\", which does not name it", e.msg);
    passed(x->o, "retire_unknown");

    if ((rc = squares(x, "conf_square", 10, err))) return rc;
    passed(x->o, "run");

    /* a new worker after the retire: a fresh name */
    char fresh[64];
    status seen = *s;
    if (!find(&seen, retired) && seen.n < 64) snprintf(seen.w[seen.n++].name, sizeof seen.w[0].name, "%s", retired);
    if ((rc = scale_one(x, "names", &seen, fresh, sizeof fresh, err))) return rc;
    if (!strcmp(fresh, retired)) return broken(err, "names", "the worker started after retiring %s is named %s too", retired, fresh);
    if ((rc = get_status(x, s, "names", err))) return rc;
    if (x->local_pids) pids[(*npids)++] = find(s, fresh)->pid;
    passed(x->o, "names");
    return 0;
}

/* Kill a running worker while every thread is busy with a slow task. */
static int check_killed(run *x, status *s, herd_err *err)
{
    int rc, nthreads = 0;
    herd_runner_workers(x->r, &nthreads);
    const herd_worker_info *victim = NULL;
    for (size_t i = 0; i < s->n && !victim; i++)
        if (s->w[i].state == HERD_WORKER_RUNNING) victim = &s->w[i];
    if (!victim) return broken(err, "killed", "status lists no running worker");
    char vname[64];
    snprintf(vname, sizeof vname, "%s", victim->name);
    long vpid = victim->pid;

    herd_future *fs[64];
    int n = 2 * nthreads < 8 ? 8 : 2 * nthreads > 64 ? 64 : 2 * nthreads, made = 0;
    for (; made < n; made++)
        if (herd_submit(x->r, "conf_slow_square", herd_tuple("i", made), &fs[made], err)) {
            rc = broken_call(err, "killed", "herd_submit");
            goto out;
        }
    /* wait for the state "every thread runs a task" (so the victim does),
     * or for the tasks to be over */
    for (double end = herd_now() + x->o->timeout; herd_now() < end; sleep_ms(10)) {
        int running = 0, done = 0;
        for (int i = 0; i < made; i++) {
            herd_state st = herd_future_state(fs[i]);
            running += st == HERD_RUNNING;
            done += herd_state_is_final(st);
        }
        if (running >= nthreads || done == made) break;
    }
    if (kill((pid_t)vpid, SIGKILL)) {
        rc = broken(err, "killed", "kill(%ld, SIGKILL) for worker %s: %s", vpid, vname, strerror(errno));
        goto out;
    }
    const herd_worker_info *w = NULL;
    for (double end = herd_now() + x->o->timeout;; sleep_ms(20)) {
        if ((rc = get_status(x, s, "killed", err))) goto out;
        w = find(s, vname);
        if (!w || w->state == HERD_WORKER_FAILED || herd_now() > end) break;
    }
    if (!w) { rc = broken(err, "killed", "killed worker %s: no longer listed", vname); goto out; }
    if (w->state != HERD_WORKER_FAILED) {
        rc = broken(err, "killed", "killed worker %s: state %d (%s) after %g s, expected failed", vname, w->state,
                    w->detail, x->o->timeout);
        goto out;
    }
    if (!strstr(w->detail, "signal 9")) {
        rc = broken(err, "killed", "killed worker %s: detail \"%s\" does not say \"signal 9\"", vname, w->detail);
        goto out;
    }
    rc = 0;
out:
    for (int i = 0; i < made; i++) {
        const herd_value *v;
        if (!rc && herd_future_result(fs[i], x->o->timeout, &v, err)) rc = broken_call(err, "killed", "a task in flight");
        else if (!rc && herd_as_int(v) != (int64_t)i * i)
            rc = broken(err, "killed", "conf_slow_square(%d) returned %lld", i, (long long)herd_as_int(v));
        herd_future_release(fs[i]);
    }
    if (!rc) rc = squares(x, "conf_square", 10, err);
    if (!rc) passed(x->o, "killed");
    return rc;
}

int herd_conformance_lifecycle(const herd_conformance_opts *o, herd_err *err)
{
    int rc = check_opts(o, err);
    if (rc) return rc;
    run x = { .o = o };
    if ((rc = make_runner(&x, factory, err))) return broken_call(err, "start", "herd_runner_new");
    pthread_mutex_lock(&cur_lock);
    cur = &x;
    rc = herd_flow_begin(x.r, "conformance-lifecycle", err);
    cur = NULL;
    pthread_mutex_unlock(&cur_lock);
    if (rc) {
        herd_runner_free(x.r);
        return broken_call(err, "start", "herd_flow_begin");
    }
    status s;
    long pids[70];
    size_t npids = 0;
    char retired[64];
    if (!(rc = check_start(&x, err)) && !(rc = check_status(&x, &s, err)) &&
        !(rc = check_scale_retire(&x, &s, retired, sizeof retired, pids, &npids, err))) {
        if (x.local_pids) rc = check_killed(&x, &s, err);
        else skipped(o, "killed", "the workers' pids are not processes on this machine");
    }
    herd_err end = { 0 };
    if (herd_flow_end(x.r, rc != 0, &end) && !rc) {
        *err = end;
        rc = broken_call(err, "close", "herd_flow_end");
    }
    if (!rc && x.local_pids) {
        for (size_t i = 0; i < npids && !rc; i++)
            if (!pid_gone(pids[i]))
                rc = broken(err, "close", "worker process %ld still exists after close (or is an unreaped zombie)", pids[i]);
        if (!rc) passed(o, "close");
    } else if (!rc) {
        skipped(o, "close", "the workers' pids are not processes on this machine");
    }
    herd_runner_free(x.r);
    return rc;
}
