/* core/options.h — a flow run's settings, checked once: the client and
 * adapt_kwargs schemas, bound to C structs (herd_kwargs_bind), and
 * herd_run_opts_check, the runtime's whole validation of what a runner was
 * given (after a herd.yaml profile is merged in). herd_runner_new and `herd
 * config check` both call it, so a profile the check passes is one the
 * runtime takes. Hidden API. */
#ifndef HERD_OPTIONS_H
#define HERD_OPTIONS_H

#include "internal.h"
#include "adaptive.h"

/* client_kwargs, bound. Strings are borrowed from the validated map they
 * were bound from (herd_run_opts.client_ok); NULL: not set. */
typedef struct herd_client_opts {
    double connect_timeout, provision_timeout;
    double heartbeat_interval, heartbeat_timeout;
    int allowed_failures;
    double no_workers_timeout;    /* seconds; -1: null, wait forever */
    const char *start;            /* "lazy" or "eager" */
    bool eager;                   /* start == "eager" */
    const char *listen, *token, *security;
    const char *dashboard_address; /* the scheduler's HTTP endpoint, or NULL: none */
    const char *performance_report_path;   /* the report written at flow end, or NULL */
    bool progress;                /* draw the flow's progress on stderr (progress.c) */
    const char *tls_ca_file, *tls_cert, *tls_key;
    const char *tls_server_name;  /* the name the scheduler's certificate is checked against, or NULL: its host */
    const char *data_transfer_name;   /* "auto", "direct", "relay" or "inline" */
    int data_transfer;            /* HERD_DT_* (proto.h), in that order */
    const char *log_level_name;   /* as given, or NULL */
    int log_level;                /* HERD_LOG_*: log_level, else $HERD_LOG_LEVEL, else INFO */
} herd_client_opts;

/* "client_kwargs" or "adapt_kwargs" -> the schema, else NULL. */
const herd_param *herd_options_schema(const char *which);

typedef struct herd_run_opts {
    /* in: what the runner was given, profile merged (maps or NULL; borrowed) */
    const char *address;                  /* an existing scheduler, or NULL */
    const char *cluster_class;            /* NULL: local.LocalCluster */
    const herd_provider *cluster_provider;
    bool cluster_factory;                 /* a factory makes the cluster: its kwargs are its own */
    const herd_value *cluster_kwargs, *adapt_kwargs, *client_kwargs;
    /* out (herd_run_opts_clear frees them) */
    const herd_provider *prov;            /* resolved or adopted; NULL with an address or a factory */
    herd_value *cluster_ok;               /* cluster_kwargs validated against prov's schema */
    herd_value *client_ok;                /* client_kwargs validated; client's strings point into it */
    herd_client_opts client;
    bool adaptive;                        /* adapt_kwargs given */
    herd_adaptive_cfg adapt;
    const char *failed_key;               /* on error: the profile key it is about ("cluster_class"), or NULL */
} herd_run_opts;

/* Check everything before anything starts: the target (one of address,
 * class, provider, factory; temporary-cluster settings never with an
 * address), client_kwargs (security, log_level), adapt_kwargs (minimum <=
 * maximum …), the provider (resolved, ABI-checked, padded) and its
 * cluster_kwargs schema. 0, or an error naming the key. */
int  herd_run_opts_check(herd_run_opts *o, herd_err *err);
void herd_run_opts_clear(herd_run_opts *o);

#endif
