/* core/runner.c — the task runner (Prefect's DaskTaskRunner in C): option
 * validation, the temporary cluster's life (scheduler + provider) for exactly
 * one flow run — started on the first submit (client_kwargs.start: lazy) or
 * in herd_flow_begin (eager), kept at its intended size by adaptive.c —
 * waiting for workers, and teardown — on herd_flow_end, on herd_runner_free,
 * and on SIGINT/SIGTERM (runner_live.c), after which every pending future is
 * final. */
#include "runner_int.h"
#include "tmpdir.h"
#include "value_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/rand.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>


static int start_cluster(flow_runner *r, herd_err *err);
static int ensure_started(herd_runner *base, herd_err *err);

/* ---- options ---- */
static int kwargs_from(const char *text, const herd_value *value, const char *what, herd_value **out, herd_err *err)
{
    *out = NULL;
    if (value) *out = herd_value_copy(value);
    else if (text && *text) {
        int rc = herd_value_parse(text, out, err);
        if (rc) return herd_err_prefix(err, "%s", what);
    }
    if (*out && herd_typeof(*out) == HERD_NIL) { herd_value_free(*out); *out = NULL; }
    if (*out && herd_typeof(*out) != HERD_MAP) {
        char *s = herd_value_to_string(*out);
        int rc = herd_err_set(err, HERD_EARG, "%s: expected a map like {key: value}, got %s %s",
                              what, herd_type_name(herd_typeof(*out)), s ? s : "");
        free(s);
        herd_value_free(*out);
        *out = NULL;
        return rc;
    }
    return 0;
}

static int no_transport(void *ud, herd_submit_spec *sp) { herd_spec_free(sp); return -HERD_ECLOSED; }
static const herd_transport closed_tp = { no_transport, NULL };

/* Every log line of the run: below the run's level dropped, else to the
 * user's sink or stderr. */
static void runner_sink(void *ud, int level, const char *line)
{
    flow_runner *r = ud;
    if (level < r->opts.client.log_level) return;
    if (r->user_log) r->user_log(r->user_log_ud, level, line);
    else herd_log_write(level, line);
}

int herd_runner_new(herd_runner **out, const herd_runner_opts *opts, herd_err *err)
{
    herd_runner_opts none = { 0 };
    if (!out) return herd_err_set(err, HERD_EARG, "herd_runner_new: out is NULL");
    *out = NULL;
    if (!opts) opts = &none;
    flow_runner *r = calloc(1, sizeof *r);
    if (!r) return herd_err_set(err, -ENOMEM, "out of memory");
    int rc;
    herd_profile *prof = NULL;
    herd_value *ck = NULL;
    herd_err_clear(err);
    r->opts.client.log_level = HERD_LOG_INFO;    /* until the options say */
    r->user_log = opts->log;
    r->user_log_ud = opts->log_ud;
    r->log = runner_sink;
    r->log_ud = r;
    if ((rc = herd_client_init(&r->client, 1, &closed_tp, NULL))) { free(r); return herd_err_set(err, rc, "out of memory"); }
    r->client.closed = 1;
    r->client.log = r->log;
    r->client.log_ud = r->log_ud;
    r->base.cl = &r->client;
    r->base.ensure = ensure_started;
    pthread_mutex_init(&r->start_mu, NULL);
    if ((rc = kwargs_from(opts->cluster_kwargs, opts->cluster_kwargs_value, "cluster_kwargs", &r->cluster_kwargs, err))) goto fail;
    if ((rc = kwargs_from(opts->adapt_kwargs, opts->adapt_kwargs_value, "adapt_kwargs", &r->adapt_kwargs, err))) goto fail;
    if ((rc = kwargs_from(opts->client_kwargs, opts->client_kwargs_value, "client_kwargs", &ck, err))) goto fail;
    if ((rc = herd_config_load_profile(opts->profile, &prof, err))) goto fail;
    herd_profile_merge m = { .cluster_class = opts->cluster_class, .address = opts->address,
                             .cluster_object = opts->cluster_provider || opts->cluster_factory,
                             .cluster_kwargs = &r->cluster_kwargs, .adapt_kwargs = &r->adapt_kwargs, .client_kwargs = &ck };
    if ((rc = herd_profile_apply(prof, &m, err))) goto fail;
    r->opts = (herd_run_opts){ .address = m.address, .cluster_class = m.cluster_class,
                               .cluster_provider = opts->cluster_provider, .cluster_factory = opts->cluster_factory,
                               .cluster_kwargs = r->cluster_kwargs, .adapt_kwargs = r->adapt_kwargs,
                               .client_kwargs = ck, .client.log_level = HERD_LOG_INFO };
    if ((rc = herd_run_opts_check(&r->opts, err))) {
        herd_profile_locate_error(prof, r->opts.failed_key, err);
        goto fail;
    }
    if (r->opts.address && *r->opts.address && !(r->address = strdup(r->opts.address))) {
        rc = herd_err_set(err, -ENOMEM, "out of memory");
        goto fail;
    }
    if (m.cluster_class && !(r->class_name = strdup(m.cluster_class))) {
        rc = herd_err_set(err, -ENOMEM, "out of memory");
        goto fail;
    }
    r->opts.address = r->address;    /* the profile's strings go with it */
    r->opts.cluster_class = r->class_name;
    r->opts.client_kwargs = NULL;
    r->prov = r->opts.prov;
    r->factory = opts->cluster_factory;
    herd_value_free(ck);
    herd_profile_free(prof);
    *out = &r->base;
    return 0;
fail:
    herd_value_free(ck);
    herd_profile_locate_error(prof, NULL, err);
    herd_profile_free(prof);
    herd_runner_free(&r->base);
    return rc;
}

/* ---- flow runs ---- */
static int random_token(char *out, size_t cap)
{
    unsigned char b[24];
    if (RAND_bytes(b, sizeof b) != 1) return -1;
    for (size_t i = 0; i < sizeof b && 2 * i + 2 < cap; i++) sprintf(out + 2 * i, "%02x", b[i]);
    return 0;
}

static void teardown(flow_runner *r)
{
    herd_client_quiesce(&r->client);   /* no submit is inside the scheduler's inbox now */
    herd_adaptive_halt(r->adaptive);  /* no scaling decision on a closing cluster */
    if (r->remote) {                 /* our connection; an existing cluster is left running */
        if (r->cluster && r->remote_owned && herd_remote_owned(r->remote))   /* workers leave cleanly */
            herd_remote_control(r->remote, "close_workers", "flow run ended", 5, NULL, NULL, NULL);
        herd_remote_close(r->remote);
        r->remote = NULL;
    }
    r->remote_owned = 0;
    if (r->sched) herd_sched_close_workers(r->sched, "flow run ended");
    rn_close_cluster(r);
    rn_deactivate(r);
    if (r->adaptive) {
        pthread_mutex_lock(&r->client.mu);
        r->client.tp = &closed_tp;
        r->client.tp_ud = NULL;
        pthread_mutex_unlock(&r->client.mu);
        herd_adaptive_stop(r->adaptive);
        r->adaptive = NULL;
    }
    if (r->sched) { herd_sched_stop(r->sched); r->sched = NULL; }
    herd_tls_free(r->tls);
    r->tls = NULL;
    r->cluster = NULL;
    r->client.tp = &closed_tp;
    r->client.tp_ud = NULL;
    if (r->tmpdir[0]) { herd_tmpdir_remove(r->tmpdir); r->tmpdir[0] = '\0'; }
    memset(r->token, 0, sizeof r->token);
    herd_strv_free(r->envcore.dial_names);
    r->envcore.dial_names = NULL;
    r->active = 0;
}

int herd_flow_begin(herd_runner *base, const char *flow_name, herd_err *err)
{
    flow_runner *r = (flow_runner *)base;
    if (!r || r->base.is_task_client) return herd_err_set(err, HERD_EARG, "herd_flow_begin: not a flow runner");
    if (r->active) return herd_err_set(err, HERD_ESTATE, "herd_flow_begin: flow run %s is still active", r->flow_name);
    herd_err_clear(err);
    free(r->flow_name);
    r->flow_name = strdup(flow_name && *flow_name ? flow_name : "flow");
    r->t0 = herd_now();
    atomic_store(&r->start_rc, 0);
    int rc = 0;
    if (r->address) {
        rc = rn_begin_remote(r, err);
    } else if (r->opts.client.eager) {
        rc = start_cluster(r, err);
    } else {
        r->active = 1;               /* start: lazy — nothing runs until something needs workers */
        atomic_store(&r->lazy, 1);
        rn_log(r, HERD_LOG_DEBUG, "flow run %s: the cluster starts on the first submit (client_kwargs.start: lazy)",
             r->flow_name);
    }
    if (!rc && r->active && r->opts.client.progress && herd_flow_progress_start(&r->client, stderr, &r->progress))
        rn_log(r, HERD_LOG_WARN, "flow run %s: no progress line (client_kwargs.progress): cannot start its thread",
             r->flow_name);
    return rc;
}

/* The first submit of a lazy flow run (or anything else that needs workers)
 * starts the cluster; its error, if any, is every later caller's too. */
static int ensure_started(herd_runner *base, herd_err *err)
{
    flow_runner *r = (flow_runner *)base;
    if (!atomic_load(&r->lazy) && !atomic_load(&r->start_rc)) return 0;
    pthread_mutex_lock(&r->start_mu);
    if (atomic_load(&r->lazy)) {
        rn_log(r, HERD_LOG_INFO, "flow run %s: starting the cluster on the first submit", r->flow_name);
        herd_err_clear(&r->start_err);
        int rc = start_cluster(r, &r->start_err);
        if (rc) r->active = 1;       /* the run stays open until herd_flow_end */
        atomic_store(&r->start_rc, rc);
        atomic_store(&r->lazy, 0);
    }
    int rc = atomic_load(&r->start_rc);
    if (rc) herd_err_set(err, rc, "%s", r->start_err.msg);
    pthread_mutex_unlock(&r->start_mu);
    return rc;
}

/* Start the temporary cluster of the flow run begun: scheduler, provider,
 * workers. On failure everything started is torn down. */
static int start_cluster(flow_runner *r, herd_err *err)
{
    char token[64];
    const char *tok = r->opts.client.token;
    if (!tok) {
        if (random_token(token, sizeof token)) return herd_err_set(err, HERD_EPROVIDER, "cannot generate a cluster token");
        tok = token;
    }
    snprintf(r->token, sizeof r->token, "%s", tok);
    int rc;

    /* 1. the cluster object (no processes yet): its provider may say where
     *    the scheduler must listen for its workers to reach it */
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = '\0';
    for (int i = 0; i < 3; i++) { free(r->wargv[i]); r->wargv[i] = NULL; }
    for (int i = 0; i < ENV_N; i++) { herd_tls_pem_free(r->wenvp[i]); r->wenvp[i] = NULL; }
    /* workers log at the run's level */
    if (asprintf(&r->wenvp[ENV_LEVEL], "HERD_LOG_LEVEL=%s", herd_level_name(r->opts.client.log_level)) < 0)
        r->wenvp[ENV_LEVEL] = NULL;
    r->wargv[0] = strdup(exe);
    r->wargv[1] = strdup("--herd-worker");
    char cname[160];
    snprintf(cname, sizeof cname, "herd-%s-%ld", r->flow_name, (long)getpid());
    herd_strv_free(r->envcore.dial_names);
    r->envcore = (herd_env_core){
        .log = r->log, .log_ud = r->log_ud,
        .heartbeat_interval = r->opts.client.heartbeat_interval,
        .heartbeat_timeout = r->opts.client.heartbeat_timeout,
        .allowed_failures = r->opts.client.allowed_failures,
        .no_workers_timeout = r->opts.client.no_workers_timeout,
        .data_transfer = r->opts.client.data_transfer,
        .dashboard = r->opts.client.dashboard_address,
        .token = r->token,
    };
    free((char *)r->env.name);
    r->env = (herd_cluster_env){ .name = strdup(cname), .scheduler_address = NULL,
                                 .worker_argv = (const char *const *)r->wargv,
                                 .worker_envp = (const char *const *)r->wenvp, .core = &r->envcore };
    atomic_store(&r->cluster_closed, 0);
    r->cluster = NULL;
    r->cprov = NULL;
    if (r->factory) {
        const herd_provider *made = NULL;
        rc = r->factory(r->cluster_kwargs, &r->env, &made, &r->cluster, err);
        /* checked and padded like a resolved provider */
        if (!rc && (rc = herd_provider_adopt(made, "cluster_factory result", &r->cprov, err))) {
            if (r->cluster && made && memcmp(made->magic, "HRDP", 4) == 0 && made->close) made->close(r->cluster);
            r->cluster = NULL;
        }
    } else {
        r->cprov = r->prov;
        rc = r->prov->create(&r->cluster, r->opts.cluster_ok, &r->env, err);
    }
    if (rc) { herd_err_prefix(err, "cluster_class %s", r->cprov ? r->cprov->name : "?"); r->cluster = NULL; goto fail; }
    if (r->cprov->start_scheduler) {
        rc = rn_begin_remote_scheduler(r, tok, err);
        if (rc < 0) goto fail;
        if (rc == 0) return 0;
        rc = 0;                      /* declined: the scheduler runs here */
    }

    /* 2. where the scheduler listens: client_kwargs.listen, else what the
     *    provider asks for, else a private Unix socket; TLS only over TCP */
    char listen[512] = "";
    const char *want = r->opts.client.listen;
    int (*listen_hook)(herd_cluster *, char *, size_t, herd_err *) = r->cprov->scheduler_listen;
    if (want) snprintf(listen, sizeof listen, "%s", want);
    else if (listen_hook && (rc = listen_hook(r->cluster, listen, sizeof listen, err))) {
        herd_err_prefix(err, "%s: scheduler_listen", r->cprov->name);
        goto fail;
    }
    herd_addr la;
    int have_tcp = listen[0] && herd_addr_parse(listen, &la, NULL) == 0 && !la.is_unix;
    if (r->opts.client.security) {
        /* the certificate names the listen host and what the provider says
         * its workers dial (herd_scheduler_names) */
        const char *hosts[40];
        size_t nh = 0;
        const char *sn = r->opts.client.tls_server_name;
        if (have_tcp && strcmp(la.host, "0.0.0.0") && strcmp(la.host, "::") && la.host[0]) hosts[nh++] = la.host;
        if (sn) hosts[nh++] = sn;
        for (char **d = r->envcore.dial_names; d && *d && nh < 39; d++) hosts[nh++] = *d;
        hosts[nh] = NULL;
        if ((rc = herd_tls_temporary(r->flow_name, nh ? hosts : NULL, &r->tls, err)) ||
            (sn && (rc = herd_tls_set_server_name(r->tls, "client_kwargs.tls_server_name", sn, err)))) {
            herd_err_prefix(err, "flow run %s: security: temporary", r->flow_name);
            goto fail;
        }
    } else if ((rc = rn_tls_from_kwargs(r, err))) {
        herd_err_prefix(err, "flow run %s", r->flow_name);
        goto fail;
    }
    if (r->tls && !want) {           /* the provider's host and port, over TLS */
        if (have_tcp) snprintf(listen, sizeof listen, la.host[0] && strchr(la.host, ':') ? "tls://[%s]:%d" : "tls://%s:%d",
                               la.host, la.port);
        else snprintf(listen, sizeof listen, "tls://127.0.0.1:0");
    }
    if (!listen[0]) {
        if ((rc = herd_tmpdir_make(r->tmpdir, sizeof r->tmpdir, r->log, r->log_ud, err))) goto fail;
        snprintf(listen, sizeof listen, "unix://%s/scheduler.sock", r->tmpdir);
    }

    /* 3. the scheduler, then what workers need to dial it */
    herd_sched_cfg sc = {
        .listen = listen, .token = tok,
        .heartbeat_interval = r->opts.client.heartbeat_interval,
        .heartbeat_timeout = r->opts.client.heartbeat_timeout,
        .allowed_failures = r->opts.client.allowed_failures,
        .no_workers_timeout = r->opts.client.no_workers_timeout,
        .log = r->log, .log_ud = r->log_ud, .tls = r->tls,
        .http = r->opts.client.dashboard_address,
        .data_transfer = r->opts.client.data_transfer,
    };
    if ((rc = herd_sched_start(&r->sched, &sc, r->addr, sizeof r->addr, err))) {
        r->sched = NULL;
        herd_err_prefix(err, "flow run %s", r->flow_name);
        goto fail;
    }
    herd_sched_attach_local(r->sched, &r->client);
    herd_tls_pem_free(r->wenvp[ENV_TOKEN]);
    if (asprintf(&r->wenvp[ENV_TOKEN], "HERD_TOKEN=%s", tok) < 0) r->wenvp[ENV_TOKEN] = NULL;
    if (r->tls) {                    /* the workers' certificate and key travel in their environment */
        if ((rc = rn_export_worker_tls(r, err))) { herd_err_prefix(err, "flow run %s", r->flow_name); goto fail; }
    }
    if ((rc = rn_go_live(r, &herd_sched_local_tp, &herd_sched_ops_local, r->sched, err))) goto fail;
    double pt = r->opts.client.provision_timeout;
    /* an adaptive cluster may rightly have no worker until there is work */
    if (!r->opts.adaptive && herd_sched_wait_workers(r->sched, 1, pt, err)) {
        rc = rn_no_worker(r, err);
        goto fail;
    }
    rn_log(r, HERD_LOG_INFO, "flow run %s: %s cluster up at %s in %.3fs", r->flow_name, r->cprov->name,
         r->addr, herd_now() - r->t0);
    if (herd_sched_http_url(r->sched))     /* as prefect-dask prints the dashboard link */
        rn_log(r, HERD_LOG_INFO, "flow run %s: the dashboard is available at %s", r->flow_name, herd_sched_http_url(r->sched));
    if (herd_sched_http_login(r->sched))
        rn_log(r, HERD_LOG_INFO, "flow run %s: the dashboard needs the token (Authorization: Bearer) or this one-time "
             "login link: %s", r->flow_name, herd_sched_http_login(r->sched));
    return 0;
fail:
    herd_client_shutdown(&r->client, HERD_CANCELLED, "the flow run's cluster could not start");
    r->active = 1;
    teardown(r);
    return rc;
}

int herd_flow_end(herd_runner *base, bool failed, herd_err *err)
{
    flow_runner *r = (flow_runner *)base;
    if (!r || r->base.is_task_client) return herd_err_set(err, HERD_EARG, "herd_flow_end: not a flow runner");
    if (!r->active) return herd_err_set(err, HERD_ESTATE, "herd_flow_end: no active flow run");
    pthread_mutex_lock(&r->start_mu);       /* a start in progress finishes first; none begins after */
    atomic_store(&r->lazy, 0);
    atomic_store(&r->start_rc, 0);
    pthread_mutex_unlock(&r->start_mu);
    const char *report = r->opts.client.performance_report_path;
    if (report && r->sched) {            /* before anything is cancelled or closed */
        herd_err e = { 0 };
        if (herd_sched_perf_report(r->sched, report, &e))
            rn_log(r, HERD_LOG_WARN, "flow run %s: %s", r->flow_name, e.msg);
        else rn_log(r, HERD_LOG_INFO, "flow run %s: performance report written to %s", r->flow_name, report);
    } else if (report && r->remote) {   /* a scheduler the provider runs: its report over the connection */
        herd_err e = { 0 };
        char *json = NULL;
        if (herd_remote_control(r->remote, "report", NULL, 30, NULL, &json, &e) ||
            herd_perf_report_write(json, strlen(json), report, &e))
            rn_log(r, HERD_LOG_WARN, "flow run %s: no performance report: %s", r->flow_name, e.msg);
        else rn_log(r, HERD_LOG_INFO, "flow run %s: performance report written to %s", r->flow_name, report);
        free(json);
    }
    herd_client_pull_all(&r->client);       /* held results leave the workers before they do */
    herd_client_shutdown(&r->client, HERD_CANCELLED, "the flow run ended before the task finished");
    herd_flow_progress_stop(r->progress);   /* its last lines: every task's final state */
    r->progress = NULL;
    teardown(r);
    rn_log(r, failed ? HERD_LOG_ERROR : HERD_LOG_INFO, "flow run %s %s in %.3fs", r->flow_name,
         failed ? "failed" : "finished", herd_now() - r->t0);
    return 0;
}

int herd_wait_for_workers(herd_runner *base, int n, double timeout_s, herd_err *err)
{
    flow_runner *r = (flow_runner *)base;
    if (!r || r->base.is_task_client || !r->active) return herd_err_set(err, HERD_ESTATE, "herd_wait_for_workers: no active flow run");
    int rc = ensure_started(base, err);
    if (rc) return rc;
    if (r->remote) return herd_remote_wait_workers(r->remote, n, timeout_s, err);
    return herd_sched_wait_workers(r->sched, n, timeout_s, err);
}

const char *herd_runner_address(herd_runner *base)
{
    flow_runner *r = (flow_runner *)base;
    if (!r || r->base.is_task_client || !r->active || ensure_started(base, NULL)) return NULL;
    return r->addr;                  /* in-process, existing or provider-run: the one we use */
}

int herd_runner_workers(herd_runner *base, int *nthreads)
{
    flow_runner *r = (flow_runner *)base;
    if (nthreads) *nthreads = 0;
    if (!r || r->base.is_task_client || !r->active || ensure_started(base, NULL)) return 0;
    if (r->remote) return herd_remote_workers(r->remote, nthreads);
    return herd_sched_nworkers(r->sched, nthreads);
}

void herd_runner_free(herd_runner *base)
{
    flow_runner *r = (flow_runner *)base;
    if (!r || r->base.is_task_client) return;
    if (r->active) herd_flow_end(base, true, NULL);
    herd_client_destroy(&r->client);
    herd_strv_free(r->envcore.dial_names);
    for (int i = 0; i < 3; i++) free(r->wargv[i]);
    for (int i = 0; i < ENV_N; i++) herd_tls_pem_free(r->wenvp[i]);
    free((char *)r->env.name);
    free(r->address);
    free(r->class_name);
    free(r->flow_name);
    herd_value_free(r->cluster_kwargs);
    herd_run_opts_clear(&r->opts);
    herd_value_free(r->adapt_kwargs);
    pthread_mutex_destroy(&r->start_mu);
    free(r);
}
