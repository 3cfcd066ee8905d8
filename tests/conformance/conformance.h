/* tests/conformance/conformance.h — the provider conformance suite: what
 * every provider must do, checked through the public runner API (herd.h) and
 * the provider's own hooks. Include it in one test binary (its main must call
 * herd_init first: workers re-run that binary) and call
 *
 *     conf_run_basic(&opts);       create + start -> workers connect, tasks run
 *     conf_run_lifecycle(&opts);   scale_up, retire, a worker killed, close
 *
 * from cmocka tests. The runner gets the provider by name (opts.cluster_class)
 * or pointer (opts.provider); the lifecycle run goes through a cluster
 * factory so that the suite holds the cluster and can call its hooks. */
#ifndef HERD_CONFORMANCE_H
#define HERD_CONFORMANCE_H

#include <herd/herd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct conf_opts {
    const char *cluster_class;        /* a name to resolve, or */
    const herd_provider *provider;    /* the provider itself */
    const char *kwargs;               /* cluster_kwargs; must start n_initial workers */
    int n_initial;                    /* >= 2 for the worker-killed step */
    bool local_pids;                  /* status pids are processes on this machine */
    double timeout;                   /* seconds for each wait */
} conf_opts;

/* ---- tasks the suite submits ---- */

static int conf_square(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    int64_t x = herd_as_int(herd_at(args, 0));
    *out = herd_int(x * x);
    return 0;
}
HERD_TASK(conf_square);

static int conf_slow_square(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    struct timespec ts = { 0, 200 * 1000 * 1000 };
    nanosleep(&ts, NULL);
    return conf_square(ctx, args, out);
}
HERD_TASK(conf_slow_square);

/* ---- helpers ---- */

#define CONF_OK(call, err) do {                                                      \
        if ((call) != 0) fail_msg("%s: %s", #call, (err).msg);                         \
    } while (0)

static double conf_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void conf_sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

static void conf_runner(const conf_opts *o, herd_cluster_factory factory, herd_runner **r)
{
    herd_runner_opts ro = { 0 };
    if (factory) ro.cluster_factory = factory;
    else if (o->provider) ro.cluster_provider = o->provider;
    else ro.cluster_class = o->cluster_class;
    ro.cluster_kwargs = o->kwargs;
    herd_err err = { 0 };
    CONF_OK(herd_runner_new(r, &ro, &err), err);
}

/* Submit conf_square/slow for 0..n-1 and check every result. */
static void conf_squares(herd_runner *r, const char *task, int n, double timeout)
{
    herd_future *fs[64];
    herd_err err = { 0 };
    assert_true(n <= 64);
    for (int i = 0; i < n; i++) CONF_OK(herd_submit(r, task, herd_tuple("i", i), &fs[i], &err), err);
    for (int i = 0; i < n; i++) {
        const herd_value *v;
        CONF_OK(herd_future_result(fs[i], timeout, &v, &err), err);
        assert_int_equal(herd_as_int(v), (int64_t)i * i);
        herd_future_release(fs[i]);
    }
}

/* ---- create + start: workers connect and run tasks ---- */

static void conf_run_basic(const conf_opts *o)
{
    herd_runner *r;
    herd_err err = { 0 };
    conf_runner(o, NULL, &r);
    CONF_OK(herd_flow_begin(r, "conformance-basic", &err), err);
    CONF_OK(herd_wait_for_workers(r, o->n_initial, o->timeout, &err), err);
    int nthreads = 0;
    assert_int_equal(herd_runner_workers(r, &nthreads), o->n_initial);
    assert_true(nthreads >= o->n_initial);
    conf_squares(r, "conf_square", 20, o->timeout);
    CONF_OK(herd_flow_end(r, false, &err), err);
    herd_runner_free(r);
}

/* ---- the lifecycle, with the cluster's hooks in hand ---- */

static const conf_opts *conf_cur;
static const herd_provider *conf_prov;
static herd_cluster *conf_cluster;

static int conf_factory(const herd_value *kwargs, const herd_cluster_env *env,
                        const herd_provider **prov_out, herd_cluster **out, herd_err *err)
{
    const herd_provider *p = conf_cur->provider;
    int rc;
    if (!p && (rc = herd_provider_resolve(conf_cur->cluster_class, &p, err))) return rc;
    herd_value *v = NULL;
    if ((rc = herd_kwargs_validate(p->params, kwargs, "cluster_kwargs", &v, err))) return rc;
    rc = p->create(out, v, env, err);
    herd_value_free(v);
    if (rc) return rc;
    *prov_out = conf_prov = p;
    conf_cluster = *out;
    return 0;
}

typedef struct conf_status { herd_worker_info w[64]; size_t n; } conf_status;

static void conf_get_status(conf_status *s)
{
    s->n = 0;
    assert_int_equal(conf_prov->status(conf_cluster, s->w, 64, &s->n), 0);
    assert_true(s->n <= 64);
}

static const herd_worker_info *conf_find(const conf_status *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->w[i].name, name) == 0) return &s->w[i];
    return NULL;
}

static size_t conf_count(const conf_status *s, int state)
{
    size_t k = 0;
    for (size_t i = 0; i < s->n; i++) k += s->w[i].state == state;
    return k;
}

/* Poll until herd_runner_workers(r) == n. */
static void conf_wait_count(herd_runner *r, int n, double timeout)
{
    double end = conf_now() + timeout;
    int have;
    int nt;
    while ((have = herd_runner_workers(r, &nt)) != n && conf_now() < end) conf_sleep_ms(20);
    if (have != n) fail_msg("expected %d connected workers, have %d after %.0f s", n, have, timeout);
}

static bool conf_pid_gone(long pid)
{
    return kill((pid_t)pid, 0) != 0 && errno == ESRCH;   /* a zombie still answers */
}

static void conf_run_lifecycle(const conf_opts *o)
{
    herd_runner *r;
    herd_err err = { 0 };
    conf_cur = o;
    conf_prov = NULL;
    conf_cluster = NULL;
    conf_runner(o, conf_factory, &r);
    CONF_OK(herd_flow_begin(r, "conformance-lifecycle", &err), err);
    assert_non_null(conf_cluster);
    int n = o->n_initial;
    CONF_OK(herd_wait_for_workers(r, n, o->timeout, &err), err);

    conf_status s;
    conf_get_status(&s);
    assert_int_equal(conf_count(&s, HERD_WORKER_RUNNING), n);
    long pids[64];
    size_t npids = 0;

    /* scale_up: one more worker connects */
    CONF_OK(conf_prov->scale_up(conf_cluster, 1, &err), err);
    CONF_OK(herd_wait_for_workers(r, n + 1, o->timeout, &err), err);
    conf_get_status(&s);
    assert_int_equal(conf_count(&s, HERD_WORKER_RUNNING), n + 1);
    for (size_t i = 0; i < s.n; i++) {
        if (o->local_pids) {
            assert_true(s.w[i].pid > 0);
            pids[npids++] = s.w[i].pid;
        }
        for (size_t j = 0; j < i; j++) assert_string_not_equal(s.w[i].name, s.w[j].name);
    }
    char newest[64];
    snprintf(newest, sizeof newest, "%s", s.w[s.n - 1].name);

    /* retire: it disconnects, status says stopped, its process is gone */
    CONF_OK(conf_prov->retire(conf_cluster, newest, &err), err);
    conf_wait_count(r, n, o->timeout);
    conf_get_status(&s);
    const herd_worker_info *w = conf_find(&s, newest);
    if (w) {   /* a provider may forget retired workers; if listed, as stopped */
        if (w->state != HERD_WORKER_STOPPED)
            fail_msg("retired worker %s: state %d (%s), expected stopped", newest, w->state, w->detail);
        if (o->local_pids) assert_true(conf_pid_gone(w->pid));
    }
    assert_int_not_equal(conf_prov->retire(conf_cluster, "no-such-worker", &err), 0);
    assert_non_null(strstr(err.msg, "no-such-worker"));
    conf_squares(r, "conf_square", 10, o->timeout);

    /* a worker dies: status reports it failed; tasks still complete */
    if (o->local_pids && n >= 2) {
        conf_get_status(&s);
        const herd_worker_info *victim = NULL;
        for (size_t i = 0; i < s.n && !victim; i++)
            if (s.w[i].state == HERD_WORKER_RUNNING) victim = &s.w[i];
        assert_non_null(victim);
        char vname[64];
        snprintf(vname, sizeof vname, "%s", victim->name);
        herd_future *fs[8];
        for (int i = 0; i < 8; i++)
            CONF_OK(herd_submit(r, "conf_slow_square", herd_tuple("i", i), &fs[i], &err), err);
        conf_sleep_ms(100);
        assert_int_equal(kill((pid_t)victim->pid, SIGKILL), 0);
        double end = conf_now() + o->timeout;
        for (;;) {
            conf_get_status(&s);
            w = conf_find(&s, vname);
            assert_non_null(w);
            if (w->state == HERD_WORKER_FAILED || conf_now() > end) break;
            conf_sleep_ms(20);
        }
        if (w->state != HERD_WORKER_FAILED)
            fail_msg("killed worker %s: state %d (%s), expected failed", vname, w->state, w->detail);
        assert_non_null(strstr(w->detail, "signal 9"));
        for (int i = 0; i < 8; i++) {
            const herd_value *v;
            CONF_OK(herd_future_result(fs[i], o->timeout, &v, &err), err);
            assert_int_equal(herd_as_int(v), (int64_t)i * i);
            herd_future_release(fs[i]);
        }
        conf_squares(r, "conf_square", 10, o->timeout);
    }

    /* close (through the flow's end): nothing left, no zombie */
    CONF_OK(herd_flow_end(r, false, &err), err);
    for (size_t i = 0; i < npids; i++)
        if (!conf_pid_gone(pids[i])) fail_msg("worker pid %ld still exists after close", pids[i]);
    herd_runner_free(r);
    conf_cluster = NULL;
}

#endif
