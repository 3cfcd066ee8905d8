/* core/options.c — a flow run's settings, checked once (see options.h): the
 * client_kwargs and adapt_kwargs schemas, each bound to its struct, and
 * herd_run_opts_check, which herd_runner_new and `herd config check` share. */
#include "options.h"
#include "comm.h"
#include "security.h"

#include <stdlib.h>
#include <string.h>

#define CF(m) HERD_PARAM_FIELD(herd_client_opts, m)
#define AF(m) HERD_PARAM_FIELD(herd_adaptive_cfg, m)

static const herd_param client_params[] = {
    { "connect_timeout", HERD_PARAM_DURATION, "30", "how long to keep trying to reach a scheduler", 0, 0, 1e6, CF(connect_timeout) },
    { "provision_timeout", HERD_PARAM_DURATION, "60", "how long herd_flow_begin waits for the first worker of a temporary cluster", 0, 0, 1e6, CF(provision_timeout) },
    { "heartbeat_interval", HERD_PARAM_DURATION, "1", "seconds between worker heartbeats", 0, 0.001, 3600, CF(heartbeat_interval) },
    { "heartbeat_timeout", HERD_PARAM_DURATION, "30", "a worker silent this long is declared dead", 0, 0.01, 1e6, CF(heartbeat_timeout) },
    { "allowed_failures", HERD_PARAM_INT, "3", "worker deaths a task survives before it ends Crashed", 0, 0, 1000, CF(allowed_failures) },
    { "listen", HERD_PARAM_STRING, "null", "scheduler address for a temporary cluster (default: a private Unix socket)", HERD_PARAM_NULLABLE, 0, 0, CF(listen) },
    { "token", HERD_PARAM_STRING, "null", "shared secret workers and clients present (default: random per cluster)", HERD_PARAM_NULLABLE | HERD_PARAM_SECRET, 0, 0, CF(token) },
    { "security", HERD_PARAM_STRING, "null", "\"temporary\": TLS with a CA and certificates made in memory for this run", HERD_PARAM_NULLABLE, 0, 0, CF(security) },
    { "tls_ca_file", HERD_PARAM_STRING, "null", "CA certificates (PEM) the peer must be issued by", HERD_PARAM_NULLABLE, 0, 0, CF(tls_ca_file) },
    { "tls_cert", HERD_PARAM_STRING, "null", "this side's certificate (PEM)", HERD_PARAM_NULLABLE, 0, 0, CF(tls_cert) },
    { "tls_key", HERD_PARAM_STRING, "null", "its unencrypted private key (PEM; default: in tls_cert)", HERD_PARAM_NULLABLE | HERD_PARAM_SECRET, 0, 0, CF(tls_key) },
    { "tls_server_name", HERD_PARAM_STRING, "null", "the name the scheduler's certificate is checked against when it differs from the host of the address dialled (a DNS name, or an IP address), as gRPC's ssl_target_name_override and curl's --connect-to: for a scheduler behind NAT or a load balancer; workers get it as HERD_TLS_SERVER_NAME; with security: temporary it is added to the scheduler's certificate; null: the host dialled", HERD_PARAM_NULLABLE, 0, 0, CF(tls_server_name) },
    { "no_workers_timeout", HERD_PARAM_DURATION, "60", "a task no worker can run for this long ends Crashed, saying why (Dask's scheduler no-workers-timeout); null: wait forever", HERD_PARAM_NULLABLE, 0.001, 1e6, CF(no_workers_timeout) },
    { "start", HERD_PARAM_STRING, "\"lazy\"", "when a temporary cluster starts: lazy (on the first submit, or whatever needs workers) or eager (in herd_flow_begin)", 0, 0, 0, CF(start) },
    { "dashboard_address", HERD_PARAM_STRING, "null", "a temporary cluster's HTTP endpoint (live page, /metrics, /health, /api/v1): HOST:PORT such as 127.0.0.1:8787 (port 0: any free one), :PORT for every interface (needs the token); null: none", HERD_PARAM_NULLABLE, 0, 0, CF(dashboard_address) },
    { "performance_report_path", HERD_PARAM_STRING, "null", "an HTML file written when the flow run ends: the task stream, per task name counts and durations, workers, transfers, adaptive decisions (prefect-dask's performance_report_path)", HERD_PARAM_NULLABLE, 0, 0, CF(performance_report_path) },
    { "data_transfer", HERD_PARAM_STRING, "\"auto\"", "how held results reach workers and clients: auto (from the worker holding them, relayed through the scheduler when it cannot be reached), direct (never relayed), relay (always through the scheduler, streamed) or inline (results are not held: they travel with the task's completion, at most 191 MiB)", 0, 0, 0, CF(data_transfer_name) },
    { "progress", HERD_PARAM_BOOL, "false", "draw the flow run's progress on stderr while it runs: a line per task name with counts and a bar, redrawn in place at most 10 times a second on a terminal, plain lines (at most one a second) otherwise", 0, 0, 0, CF(progress) },
    { "log_level", HERD_PARAM_STRING, "null", "least level of the flow's log lines and its workers': debug, info, warning or error (null: $HERD_LOG_LEVEL, else info)", HERD_PARAM_NULLABLE, 0, 0, CF(log_level_name) },
    { NULL }
};

static const herd_param adapt_params[] = {
    { "minimum", HERD_PARAM_INT, "0", "fewest workers", HERD_PARAM_NULLABLE, 0, 1e6, AF(minimum) },
    { "maximum", HERD_PARAM_INT, "null", "most workers (null: no maximum)", HERD_PARAM_NULLABLE, 0, 1e6, AF(maximum) },
    { "interval", HERD_PARAM_DURATION, "1", "seconds between scaling decisions", 0, 0.001, 3600, AF(interval) },
    { "wait_count", HERD_PARAM_INT, "3", "agreeing intervals before scaling down", 0, 1, 1e6, AF(wait_count) },
    { "target_duration", HERD_PARAM_DURATION, "5", "how long the queued work should take", 0, 0.001, 1e6, AF(target_duration) },
    { NULL }
};

const herd_param *herd_options_schema(const char *which)
{
    if (which && !strcmp(which, "client_kwargs")) return client_params;
    if (which && !strcmp(which, "adapt_kwargs")) return adapt_params;
    return NULL;
}

#define LEVELS "debug, info, warning or error"

static int check_client(herd_run_opts *o, herd_err *err)
{
    herd_client_opts *c = &o->client;
    *c = (herd_client_opts){ .log_level = HERD_LOG_INFO, .no_workers_timeout = -1 };
    int rc = herd_kwargs_load(client_params, o->client_kwargs, "client_kwargs", &o->client_ok, c, sizeof *c, err);
    if (rc) return rc;
    if (!c->start || strcmp(c->start, "lazy") == 0) c->eager = false;
    else if (strcmp(c->start, "eager") == 0) c->eager = true;
    else
        return herd_err_set(err, HERD_EARG, "client_kwargs.start: expected \"lazy\" (the cluster starts on the first "
                            "submit) or \"eager\" (in herd_flow_begin), got \"%.100s\"", c->start);
    if (c->security && strcmp(c->security, "temporary") != 0)
        return herd_err_set(err, HERD_EARG, "client_kwargs.security: expected \"temporary\" or null, got \"%s\" "
                            "(for certificates of your own give tls_ca_file, tls_cert, tls_key)", c->security);
    if (c->security && o->address && *o->address)
        return herd_err_set(err, HERD_EARG, "client_kwargs.security: \"temporary\" makes certificates for a temporary "
                            "cluster; with address \"%s\" give tls_ca_file, tls_cert and tls_key instead", o->address);
    if ((c->tls_ca_file || c->tls_cert || c->tls_key) && (!c->tls_ca_file || !c->tls_cert))
        return herd_err_set(err, HERD_EARG, "client_kwargs: TLS needs tls_ca_file and tls_cert (and tls_key unless the "
                            "key is in tls_cert); %s is missing", c->tls_ca_file ? "tls_cert" : "tls_ca_file");
    if (c->tls_server_name && (rc = herd_tls_server_name_check("client_kwargs.tls_server_name", c->tls_server_name, err)))
        return rc;
    if (c->tls_server_name && !c->security && !c->tls_ca_file)
        return herd_err_set(err, HERD_EARG, "client_kwargs.tls_server_name \"%s\": no TLS to check it with; give "
                            "security: temporary or tls_ca_file and tls_cert", c->tls_server_name);
    static const char *const dts[] = { "auto", "direct", "relay", "inline" };
    c->data_transfer = -1;
    for (int i = 0; i < 4; i++)
        if (c->data_transfer_name && !strcmp(c->data_transfer_name, dts[i])) c->data_transfer = i;
    if (c->data_transfer < 0)
        return herd_err_set(err, HERD_ECONFIG, "client_kwargs.data_transfer: expected one of auto, direct, relay, "
                            "inline, got \"%.100s\"", c->data_transfer_name ? c->data_transfer_name : "");
    const char *env = getenv("HERD_LOG_LEVEL");
    if (c->log_level_name) {
        if (herd_log_level_parse(c->log_level_name, &c->log_level))
            return herd_err_set(err, HERD_ECONFIG, "client_kwargs.log_level: expected one of " LEVELS ", got \"%.100s\"",
                                c->log_level_name);
    } else if (env && *env && herd_log_level_parse(env, &c->log_level)) {
        return herd_err_set(err, HERD_ECONFIG, "HERD_LOG_LEVEL=%.100s: expected one of " LEVELS
                            " (or set client_kwargs.log_level)", env);
    }
    return 0;
}

static int check_adapt(herd_run_opts *o, herd_err *err)
{
    herd_adaptive_cfg *a = &o->adapt;
    *a = (herd_adaptive_cfg){ .minimum = 0, .maximum = -1, .interval = 1, .wait_count = 3, .target_duration = 5 };
    herd_value *ok = NULL;
    int rc = herd_kwargs_load(adapt_params, o->adapt_kwargs, "adapt_kwargs", &ok, a, sizeof *a, err);
    herd_value_free(ok);              /* nothing bound points into it */
    if (rc) return rc;
    if (a->maximum >= 0 && a->maximum < a->minimum)
        return herd_err_set(err, HERD_ECONFIG, "adapt_kwargs.maximum: %d is less than minimum %d; expected "
                            "maximum >= minimum (or null for no maximum)", a->maximum, a->minimum);
    o->adaptive = true;
    return 0;
}

int herd_run_opts_check(herd_run_opts *o, herd_err *err)
{
    o->prov = NULL;
    o->cluster_ok = o->client_ok = NULL;
    o->adaptive = false;
    o->failed_key = NULL;
    int nclass = !!o->cluster_class + !!o->cluster_provider + !!o->cluster_factory;
    if (nclass > 1)
        return herd_err_set(err, HERD_EARG, "cluster_class: give one of a name, a provider or a factory, not %d of them",
                            nclass);
    int rc = check_client(o, err);
    if (rc) return rc;
    if (o->address && *o->address) {
        const char *with = nclass ? "cluster_class" : o->cluster_kwargs ? "cluster_kwargs"
                         : o->adapt_kwargs ? "adapt_kwargs" : NULL;
        if (with)
            return herd_err_set(err, HERD_EARG, "address \"%s\" connects to an existing scheduler; %s only applies to "
                                "a temporary cluster and cannot be given with it", o->address, with);
        if (o->client.performance_report_path)
            return herd_err_set(err, HERD_EARG, "client_kwargs.performance_report_path: the report is made from a temporary "
                                "cluster's scheduler; with address \"%s\" there is none in this process", o->address);
        if (o->client.dashboard_address)
            return herd_err_set(err, HERD_EARG, "client_kwargs.dashboard_address: the HTTP endpoint belongs to a temporary "
                                "cluster's scheduler; with address \"%s\" use that scheduler's own (herd scheduler "
                                "--dashboard-address)", o->address);
        herd_addr a;
        if ((rc = herd_addr_parse(o->address, &a, err))) return herd_err_prefix(err, "address");
        return 0;
    }
    if (o->adapt_kwargs && (rc = check_adapt(o, err))) return rc;
    if (o->cluster_factory) return 0;
    if (o->cluster_provider) {
        rc = herd_provider_adopt(o->cluster_provider, "cluster_provider", &o->prov, err);
    } else {
        rc = herd_provider_resolve(o->cluster_class && *o->cluster_class ? o->cluster_class : "local.LocalCluster",
                                   &o->prov, err);
        if (rc) o->failed_key = "cluster_class";
    }
    if (rc) return rc;
    return herd_kwargs_validate(o->prov->params, o->cluster_kwargs, "cluster_kwargs", &o->cluster_ok, err);
}

void herd_run_opts_clear(herd_run_opts *o)
{
    herd_value_free(o->cluster_ok);
    herd_value_free(o->client_ok);
    o->cluster_ok = o->client_ok = NULL;
    o->prov = NULL;
}
