/* core/server.c — the public face of long-running clusters: a standalone
 * scheduler (herd_scheduler_*) and a standalone worker (herd_worker_serve),
 * which `herd scheduler` and `herd worker` run and programs may embed; and
 * a scheduler that a provider runs on another machine (start_scheduler):
 * the command and environment it gets (herd_scheduler_argv/envp) and the
 * --herd-scheduler mode of herd_init that serves it. */
#include "comm.h"
#include "scheduler.h"
#include "security.h"
#include "secrets.h"
#include "worker.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct herd_scheduler {
    herd_sched *s;
    herd_tls *tls;
    char addr[512];
};

/* TLS from the three file options: none given -> no TLS. */
static int tls_opts(const char *ca, const char *cert, const char *key, herd_tls **out, herd_err *err)
{
    *out = NULL;
    if (!ca && !cert && !key) return 0;
    if (!ca || !cert)
        return herd_err_set(err, HERD_EARG, "TLS needs tls_ca_file and tls_cert (and tls_key unless the key is in tls_cert); "
                            "got %s%s", ca ? "" : "no tls_ca_file ", cert ? "" : "no tls_cert");
    return herd_tls_from_files(ca, cert, key, out, err);
}

int herd_scheduler_start(herd_scheduler **out, const herd_scheduler_opts *o, herd_err *err)
{
    if (out) *out = NULL;
    if (!out || !o || !o->listen) return herd_err_set(err, HERD_EARG, "herd_scheduler_start: opts.listen is required");
    herd_scheduler *h = calloc(1, sizeof *h);
    if (!h) return herd_err_set(err, -ENOMEM, "out of memory");
    int trc = tls_opts(o->tls_ca_file, o->tls_cert, o->tls_key, &h->tls, err);
    if (trc) { free(h); return trc; }
    herd_sched_cfg cfg = {
        .tls = h->tls,
        .listen = o->listen, .token = o->token && *o->token ? o->token : NULL,
        .heartbeat_interval = o->heartbeat_interval, .heartbeat_timeout = o->heartbeat_timeout,
        .allowed_failures = o->allowed_failures, .no_workers_timeout = o->no_workers_timeout,
        .log = o->log ? o->log : herd_log_default, .log_ud = o->log_ud,
        .http = o->dashboard_address,
    };
    int rc = herd_sched_start(&h->s, &cfg, h->addr, sizeof h->addr, err);
    if (rc) { herd_tls_free(h->tls); free(h); return rc; }
    *out = h;
    return 0;
}

const char *herd_scheduler_address(const herd_scheduler *h) { return h ? h->addr : NULL; }
const char *herd_scheduler_dashboard_url(const herd_scheduler *h) { return h ? herd_sched_http_url(h->s) : NULL; }
const char *herd_scheduler_dashboard_login(const herd_scheduler *h) { return h ? herd_sched_http_login(h->s) : NULL; }

void herd_scheduler_stop(herd_scheduler *h)
{
    if (!h) return;
    herd_sched_stop(h->s);
    herd_tls_free(h->tls);
    free(h);
}

int herd_worker_serve(const herd_worker_opts *o, herd_err *err)
{
    if (!o || !o->address || !*o->address)
        return herd_err_set(err, HERD_EARG, "worker: the scheduler address is required"), HERD_WORKER_EXIT_ERROR;
    herd_err e2;
    if (!err) err = &e2;
    herd_addr a;
    if (herd_addr_parse(o->address, &a, err)) return HERD_WORKER_EXIT_ERROR;
    herd_tls *tls = NULL;
    if (tls_opts(o->tls_ca_file, o->tls_cert, o->tls_key, &tls, err)) return HERD_WORKER_EXIT_ERROR;
    if (o->tls_server_name && (!tls || herd_tls_set_server_name(tls, "tls_server_name", o->tls_server_name, err))) {
        if (!tls) herd_err_set(err, HERD_EARG, "tls_server_name \"%s\": no TLS to check it with (give tls_ca_file and "
                               "tls_cert)", o->tls_server_name);
        herd_tls_free(tls);
        return HERD_WORKER_EXIT_ERROR;
    }
    herd_value *res = NULL;
    if (o->resources && herd_resources_parse(o->resources, &res, err)) { herd_tls_free(tls); return HERD_WORKER_EXIT_ERROR; }
    for (const char *const *p = o->plugins; p && *p; p++)
        if (herd_plugin_load(*p, err)) { herd_value_free(res); herd_tls_free(tls); return HERD_WORKER_EXIT_ERROR; }
    char name[300];
    if (o->name && *o->name) snprintf(name, sizeof name, "%s", o->name);
    else {
        char host[256] = "host";
        gethostname(host, sizeof host - 1);
        snprintf(name, sizeof name, "%s-%ld", host, (long)getpid());
    }
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    herd_worker_cfg cfg = {
        .address = o->address, .token = o->token && *o->token ? o->token : NULL, .name = name,
        .nthreads = o->nthreads > 0 ? o->nthreads : (int)(ncpu > 0 ? ncpu : 1),
        .resources = res, .memory_limit = o->memory_limit, .tls = tls,
        .local_directory = getenv("HERD_LOCAL_DIRECTORY"),
        .connect_timeout = o->connect_timeout > 0 ? o->connect_timeout : 30, .reconnect = o->reconnect,
    };
    int code = herd_worker_main(&cfg);
    herd_value_free(res);
    herd_tls_free(tls);
    return code;
}

/* ---- a scheduler a provider runs elsewhere (start_scheduler) ---- */

int herd_scheduler_argv(const herd_cluster_env *env, const char *listen, char ***argv_out, herd_err *err)
{
    *argv_out = NULL;
    const herd_env_core *core = env ? env->core : NULL;
    if (!core || !env->worker_argv || !env->worker_argv[0])
        return herd_err_set(err, HERD_EARG, "herd_scheduler_argv: not a cluster environment from the core");
    herd_addr a;
    if (!listen || herd_addr_parse(listen, &a, err) || a.is_unix)
        return herd_err_set(err, HERD_EARG, "herd_scheduler_argv: listen \"%s\": expected tcp://HOST:PORT",
                            listen ? listen : "(null)");
    char addr[600], hb[40], ht[40], af[16], nw[40];
    const char *host = strstr(listen, "://") + 3;
    snprintf(addr, sizeof addr, "%s://%s", core->sched_tls ? "tls" : "tcp", host);
    snprintf(hb, sizeof hb, "%.17g", core->heartbeat_interval > 0 ? core->heartbeat_interval : 1);
    snprintf(ht, sizeof ht, "%.17g", core->heartbeat_timeout > 0 ? core->heartbeat_timeout : 30);
    snprintf(af, sizeof af, "%d", core->allowed_failures >= 0 ? core->allowed_failures : 3);
    snprintf(nw, sizeof nw, "%.17g", core->no_workers_timeout > 0 ? core->no_workers_timeout : 0);   /* 0: never */
    static const char *const dts[] = { "auto", "direct", "relay", "inline" };
    const char *dt = core->data_transfer >= 0 && core->data_transfer < 4 ? dts[core->data_transfer] : "auto";
    const char *v[] = { env->worker_argv[0], "--herd-scheduler", "--listen", addr, "--heartbeat-interval", hb,
                        "--heartbeat-timeout", ht, "--allowed-failures", af, "--herd-no-workers-timeout", nw,
                        "--herd-data-transfer", dt, core->dashboard ? "--dashboard-address" : NULL, core->dashboard,
                        NULL };
    size_t n = sizeof v / sizeof *v;
    char **out = calloc(n, sizeof *out);
    if (!out) return herd_err_set(err, -ENOMEM, "out of memory");
    for (size_t i = 0; i + 1 < n && v[i]; i++)
        if (!(out[i] = strdup(v[i]))) { herd_strv_free(out); return herd_err_set(err, -ENOMEM, "out of memory"); }
    *argv_out = out;
    return 0;
}

void herd_envp_free(char **envp) { herd_tls_envp_free(envp); }

int herd_scheduler_names(const herd_cluster_env *env, const char *const *names, herd_err *err)
{
    herd_env_core *core = env ? env->core : NULL;
    if (!core) return herd_err_set(err, HERD_EARG, "herd_scheduler_names: not a cluster environment from the core");
    size_t n = 0;
    while (names && names[n]) n++;
    char **v = calloc(n + 1, sizeof *v);
    if (!v) return herd_err_set(err, -ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        if (!(v[i] = strdup(names[i]))) { herd_strv_free(v); return herd_err_set(err, -ENOMEM, "out of memory"); }
    herd_strv_free(core->dial_names);
    core->dial_names = v;
    return 0;
}

/* The port of client_kwargs.dashboard_address ("HOST:PORT", ":PORT",
 * "[V6]:PORT", after an optional http(s)://; sched_http.c serves it) when
 * its host is not a loopback one, else -1. */
int herd_scheduler_dashboard_port(const herd_cluster_env *env, int *port, herd_err *err)
{
    if (port) *port = -1;
    const herd_env_core *core = env ? env->core : NULL;
    if (!core || !port)
        return herd_err_set(err, HERD_EARG, "herd_scheduler_dashboard_port: %s",
                            !port ? "port is NULL" : "not a cluster environment from the core");
    const char *a = core->dashboard;
    if (!a) return 0;
    if (!strncmp(a, "http://", 7)) a += 7;
    else if (!strncmp(a, "https://", 8)) a += 8;
    const char *colon = strrchr(a, ':');
    char *end = NULL, host[256];
    long n = colon ? strtol(colon + 1, &end, 10) : -1;
    if (!colon || colon[1] == '\0' || *end || n < 0 || n > 65535 || (size_t)(colon - a) >= sizeof host)
        return herd_err_set(err, HERD_EARG, "dashboard_address: expected HOST:PORT, :PORT or [IPv6]:PORT (port "
                            "0..65535), got \"%.200s\"", core->dashboard);
    size_t hl = (size_t)(colon - a);
    if (hl >= 2 && a[0] == '[' && a[hl - 1] == ']') { memcpy(host, a + 1, hl - 2); host[hl - 2] = '\0'; }
    else { memcpy(host, a, hl); host[hl] = '\0'; }
    if (!strcmp(host, "localhost") || !strncmp(host, "127.", 4) || !strcmp(host, "::1")) return 0;
    *port = (int)n;
    return 0;
}

int herd_scheduler_server_name(const herd_cluster_env *env, const char *name, herd_err *err)
{
    herd_env_core *core = env ? env->core : NULL;
    if (!core) return herd_err_set(err, HERD_EARG, "herd_scheduler_server_name: not a cluster environment from the core");
    if (!core->in_start_scheduler)
        return herd_err_set(err, HERD_ESTATE, "herd_scheduler_server_name: only during start_scheduler");
    int rc = name ? herd_tls_server_name_check("herd_scheduler_server_name", name, err) : 0;
    if (rc) return rc;
    snprintf(core->sched_server_name, sizeof core->sched_server_name, "%s", name ? name : "");
    return 0;
}

int herd_scheduler_envp(const herd_cluster_env *env, const char *const *names, char ***envp_out, herd_err *err)
{
    *envp_out = NULL;
    const herd_env_core *core = env ? env->core : NULL;
    if (!core || !core->token)
        return herd_err_set(err, HERD_EARG, "herd_scheduler_envp: not a cluster environment from the core");
    char **tls = NULL;
    if (core->sched_tls) {
        int rc = core->sched_tls(core->sched_tls_ud, names, &tls, err);
        if (rc) return herd_err_prefix(err, "the scheduler's TLS certificate");
    }
    char **v = calloc(6, sizeof *v);
    if (!v) { herd_tls_envp_free(tls); return herd_err_set(err, -ENOMEM, "out of memory"); }
    size_t k = 0;
    if (asprintf(&v[k], "HERD_TOKEN=%s", core->token) < 0) v[k] = NULL;
    int oom = !v[k++];
    for (size_t i = 0; tls && tls[i] && k < 5; i++) { v[k++] = tls[i]; tls[i] = NULL; }
    herd_tls_envp_free(tls);
    if (oom) { herd_tls_envp_free(v); return herd_err_set(err, -ENOMEM, "out of memory"); }
    *envp_out = v;
    return 0;
}

/* herd_init's --herd-scheduler mode: argv as herd_scheduler_argv makes it,
 * the token and TLS identity from the environment, which herd_init took
 * into `secrets` (secrets.c). Returns the exit code. */
int herd_scheduler_serve_args(int argc, char **argv, char *const *secrets)
{
    herd_scheduler_opts o = { .allowed_failures = -1 };
    int transfer = HERD_DT_AUTO;
    for (int i = 2; i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end = NULL;
        if (!v) { fprintf(stderr, "herd scheduler: %s needs a value\n", a); return 2; }
        if (!strcmp(a, "--listen")) o.listen = v;
        else if (!strcmp(a, "--heartbeat-interval")) o.heartbeat_interval = strtod(v, &end);
        else if (!strcmp(a, "--heartbeat-timeout")) o.heartbeat_timeout = strtod(v, &end);
        else if (!strcmp(a, "--allowed-failures")) o.allowed_failures = (int)strtol(v, &end, 10);
        else if (!strcmp(a, "--herd-no-workers-timeout")) o.no_workers_timeout = strtod(v, &end);
        else if (!strcmp(a, "--dashboard-address")) o.dashboard_address = v;
        else if (!strcmp(a, "--herd-data-transfer")) {
            static const char *const dts[] = { "auto", "direct", "relay", "inline" };
            transfer = -1;
            for (int k = 0; k < 4; k++) if (!strcmp(v, dts[k])) transfer = k;
            if (transfer < 0) {
                fprintf(stderr, "herd scheduler: --herd-data-transfer: expected auto, direct, relay or inline, got \"%s\"\n", v);
                return 2;
            }
        }
        else { fprintf(stderr, "herd scheduler: unknown option \"%s\"\n", a); return 2; }
        if (end && *end) { fprintf(stderr, "herd scheduler: %s: expected a number, got \"%s\"\n", a, v); return 2; }
    }
    const char *tok = herd_secrets_get(secrets, "HERD_TOKEN");
    if (!o.listen || !tok || !*tok) {
        fprintf(stderr, "herd scheduler: --herd-scheduler needs --listen and HERD_TOKEN in the environment\n");
        return 2;
    }
    char *token = strdup(tok);
    if (!token) { fprintf(stderr, "herd scheduler: out of memory\n"); return 1; }
    herd_err err = { 0 };
    herd_tls *tls = NULL;
    int rc = herd_tls_from_envp((const char *const *)secrets, &tls, &err);
    if (!rc || rc == -ENOENT) rc = herd_tls_addr_check(tls, o.listen, &err);
    if (rc) {
        fprintf(stderr, "herd scheduler: %s\n", err.msg);
        herd_tls_free(tls);
        free(token);
        return 1;
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);   /* before the scheduler's thread exists */
    herd_sched *s = NULL;
    char addr[512];
    herd_sched_cfg cfg = {
        .tls = tls, .listen = o.listen, .token = token, .owned = 1, .data_transfer = transfer,
        .heartbeat_interval = o.heartbeat_interval, .heartbeat_timeout = o.heartbeat_timeout,
        .allowed_failures = o.allowed_failures, .no_workers_timeout = o.no_workers_timeout,
        .log = herd_log_default, .http = o.dashboard_address,   /* the token and TLS rules of sched_http.c */
    };
    rc = herd_sched_start(&s, &cfg, addr, sizeof addr, &err);
    memset(token, 0, strlen(token));  /* the scheduler keeps its own copy */
    free(token);
    if (rc) {
        fprintf(stderr, "herd scheduler: %s\n", err.msg);
        herd_tls_free(tls);
        return 1;
    }
    printf("herd-scheduler-at %s\n", addr);
    fflush(stdout);
    int sig = 0;
    sigwait(&set, &sig);
    herd_sched_stop(s);
    herd_tls_free(tls);
    return 0;
}
