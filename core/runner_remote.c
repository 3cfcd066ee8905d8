/* core/runner_remote.c — the task runner's schedulers that run elsewhere:
 * connecting to an existing one at `address`, and a provider's own
 * (start_scheduler: SSH's scheduler_host, AWS's scheduler task), with the
 * temporary CA's certificate for it, the name its certificate is checked
 * against (tls_server_name, herd_scheduler_server_name) and the dashboard
 * links it reports. */
#include "runner_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* address mode: connect to an existing scheduler as a client */
/* TLS from client_kwargs' tls_* files (NULL when none is given). */
int rn_tls_from_kwargs(flow_runner *r, herd_err *err)
{
    const herd_client_opts *c = &r->opts.client;   /* both files or none: checked with the options */
    if (!c->tls_ca_file) return 0;
    int rc = herd_tls_from_files(c->tls_ca_file, c->tls_cert, c->tls_key, &r->tls, err);
    if (!rc && c->tls_server_name &&
        (rc = herd_tls_set_server_name(r->tls, "client_kwargs.tls_server_name", c->tls_server_name, err))) {
        herd_tls_free(r->tls);
        r->tls = NULL;
    }
    return rc;
}

int rn_begin_remote(flow_runner *r, herd_err *err)
{
    const char *tok = r->opts.client.token;
    if (!tok) tok = getenv("HERD_TOKEN");
    char name[256];
    snprintf(name, sizeof name, "%s-%ld", r->flow_name, (long)getpid());
    double ct = r->opts.client.connect_timeout;
    snprintf(r->addr, sizeof r->addr, "%s", r->address);
    int rc = rn_tls_from_kwargs(r, err);
    r->client.transfer = r->opts.client.data_transfer;
    if (!rc) rc = herd_remote_connect(r->address, tok, r->tls, name, ct, &r->client, &r->remote, err);
    if (rc) {
        herd_tls_free(r->tls);
        r->tls = NULL;
        return herd_err_prefix(err, "flow run %s", r->flow_name);
    }
    pthread_mutex_lock(&r->client.mu);
    r->client.check_resources = 0;
    r->client.tp = &herd_remote_tp;
    r->client.tp_ud = r->remote;
    r->client.closed = 0;
    pthread_mutex_unlock(&r->client.mu);
    r->active = 1;
    int nt = 0, nw = herd_remote_workers(r->remote, &nt);
    rn_log(r, HERD_LOG_INFO, "flow run %s: connected to the scheduler at %s (%d workers, %d threads)",
         r->flow_name, r->address, nw, nt);
    return 0;
}

/* The workers' TLS entries (identity, server name) from r->tls, replacing
 * what they held. */
int rn_export_worker_tls(flow_runner *r, herd_err *err)
{
    char **te = NULL;
    int rc = herd_tls_export_env(r->tls, &te, err);
    if (rc) return rc;
    for (int i = ENV_TLS; i < ENV_N; i++) { herd_tls_pem_free(r->wenvp[i]); r->wenvp[i] = NULL; }
    for (int i = 0; i < ENV_N - ENV_TLS && te[i]; i++) r->wenvp[ENV_TLS + i] = te[i];
    free(te);
    return 0;
}

/* envcore.sched_tls: the remote scheduler's certificate, from the
 * temporary CA (only while start_scheduler runs); it names what the
 * provider asks for and client_kwargs.tls_server_name. */
static int issue_sched_tls(void *ud, const char *const *names, char ***envp_out, herd_err *err)
{
    flow_runner *r = ud;
    if (!r->tmp_ca) {                /* the first call makes the CA and the workers' identity */
        int rc = herd_tls_temporary_remote(r->flow_name, &r->tls, &r->tmp_ca, err);
        if (!rc) rc = rn_export_worker_tls(r, err);
        if (rc) return rc;
    }
    const char *extra = r->opts.client.tls_server_name;
    size_t n = 0;
    while (names && names[n]) n++;
    const char **all = calloc(n + 2, sizeof *all);
    if (!all) return herd_err_set(err, -ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) all[i] = names[i];
    if (extra) all[n] = extra;
    int rc = herd_tls_ca_server_env(r->tmp_ca, all, envp_out, err);
    free(all);
    return rc;
}

/* The links of the HTTP endpoint of a scheduler the provider runs (asked
 * for with OP_CONTROL "dashboard"), logged as an in-process one's are: the
 * host this client dials it at in place of an every-interface address. */
static void remote_dashboard_links(flow_runner *r)
{
    herd_err e = { 0 };
    char *desc = NULL, url[400], login[500];
    herd_addr a;
    int lo = 0;
    int rc = herd_remote_control(r->remote, "dashboard", NULL, 10, NULL, &desc, &e);
    if (!rc && (rc = herd_addr_parse(r->addr, &a, &e)) == 0 &&
        (rc = herd_sched_http_links(desc, a.host, url, sizeof url, login, sizeof login, &lo)))
        herd_err_set(&e, rc, "cannot read its answer \"%.100s\"", desc);
    free(desc);
    if (rc) {
        rn_log(r, HERD_LOG_WARN, "flow run %s: no dashboard link: the scheduler %s started: %s", r->flow_name,
             r->cprov->name, e.msg);
        return;
    }
    if (lo)
        rn_log(r, HERD_LOG_INFO, "flow run %s: the dashboard listens on the loopback of the scheduler's host, at %s "
             "there (dashboard_address :PORT serves it on every interface, with the token)", r->flow_name, url);
    else rn_log(r, HERD_LOG_INFO, "flow run %s: the dashboard is available at %s", r->flow_name, url);
    if (login[0])
        rn_log(r, HERD_LOG_INFO, "flow run %s: the dashboard needs the token (Authorization: Bearer) or this one-time "
             "login link: %s", r->flow_name, login);
}

/* A provider that may run the scheduler itself (start_scheduler): ask it;
 * when it does, connect to that scheduler as a client, then start the
 * workers. Returns 1 when the provider declined (an empty address: the
 * scheduler runs in this process as usual), 0 when the cluster is up, or an
 * error (the caller's teardown closes the cluster object). */
int rn_begin_remote_scheduler(flow_runner *r, const char *tok, herd_err *err)
{
    const char *who = r->cprov->name;
    /* the scheduler it starts must require the cluster's token */
    herd_tls_pem_free(r->wenvp[ENV_TOKEN]);
    if (asprintf(&r->wenvp[ENV_TOKEN], "HERD_TOKEN=%s", tok) < 0) r->wenvp[ENV_TOKEN] = NULL;
    int temporary = r->opts.client.security != NULL;
    int tls_files = !temporary && r->opts.client.tls_ca_file;
    int rc;
    if (temporary) {                 /* the CA once the provider asks for the scheduler's certificate */
        r->envcore.sched_tls = issue_sched_tls;
        r->envcore.sched_tls_ud = r;
    }
    char addr[512] = "";
    r->envcore.sched_server_name[0] = '\0';
    r->envcore.in_start_scheduler = 1;
    rc = r->cprov->start_scheduler(r->cluster, addr, sizeof addr, err);
    r->envcore.in_start_scheduler = 0;
    r->envcore.sched_tls = NULL;
    herd_tls_ca_free(r->tmp_ca);     /* no certificate is issued after this */
    r->tmp_ca = NULL;
    if (rc) return herd_err_prefix(err, "%s: start_scheduler", who);
    if (!addr[0]) {                  /* declined: the scheduler runs here, TLS made as usual */
        for (int i = ENV_TLS; i < ENV_N; i++) { herd_tls_pem_free(r->wenvp[i]); r->wenvp[i] = NULL; }
        herd_tls_free(r->tls);
        r->tls = NULL;
        return 1;
    }
    if (tls_files)                   /* the teardown stops the scheduler it started */
        return herd_err_set(err, HERD_EARG, "client_kwargs.tls_ca_file: %s runs the scheduler remotely here, "
                            "which takes TLS from security: temporary only; to use your own certificates run "
                            "`herd scheduler --tls-*` yourself and give its address", who);
    if (temporary && !r->tls)        /* never a plain connection when TLS was asked for */
        return herd_err_set(err, HERD_EPROVIDER, "client_kwargs.security: temporary, but %s started its scheduler "
                            "at %s without a certificate (it must run what herd_scheduler_envp gives)", who, addr);
    if ((rc = herd_tls_addr_check(r->tls, addr, err)))
        return herd_err_prefix(err, "%s: start_scheduler gave %s", who, addr);
    /* the name the client and the workers check its certificate against:
     * the user's, else the provider's (herd_scheduler_server_name) */
    const char *sn = r->opts.client.tls_server_name ? r->opts.client.tls_server_name
                   : r->envcore.sched_server_name[0] ? r->envcore.sched_server_name : NULL;
    if (r->tls && sn) {
        if ((rc = herd_tls_set_server_name(r->tls, "tls_server_name", sn, err)) || (rc = rn_export_worker_tls(r, err)))
            return herd_err_prefix(err, "%s's scheduler", who);
        rn_log(r, HERD_LOG_DEBUG, "flow run %s: the scheduler's certificate is checked as \"%s\"", r->flow_name, sn);
    }
    snprintf(r->addr, sizeof r->addr, "%s", addr);
    char name[256];
    snprintf(name, sizeof name, "%s-%ld", r->flow_name, (long)getpid());
    double ct = r->opts.client.connect_timeout;
    r->client.transfer = r->opts.client.data_transfer;
    if ((rc = herd_remote_connect(r->addr, tok, r->tls, name, ct, &r->client, &r->remote, err)))
        return herd_err_prefix(err, "%s's scheduler", who);
    r->remote_owned = 1;
    if (r->opts.adaptive && !herd_remote_owned(r->remote))
        return herd_err_set(err, HERD_EARG, "adapt_kwargs: the scheduler %s started at %s is a shared one (`herd "
                            "scheduler`), which does not let a client drain its workers; adaptive scaling needs "
                            "one started for this cluster (herd_scheduler_argv: --herd-scheduler)", who, r->addr);
    if ((rc = rn_go_live(r, &herd_remote_tp, &herd_remote_ops, r->remote, err))) return rc;
    /* an adaptive cluster may rightly have no worker until there is work */
    if (!r->opts.adaptive && herd_remote_wait_workers(r->remote, 1, r->opts.client.provision_timeout, err))
        return rn_no_worker(r, err);
    rn_log(r, HERD_LOG_INFO, "flow run %s: %s cluster up, its scheduler at %s, in %.3fs", r->flow_name, who,
         r->addr, herd_now() - r->t0);
    if (r->opts.client.dashboard_address) remote_dashboard_links(r);
    return 0;
}
