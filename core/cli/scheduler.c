/* core/cli/scheduler.c — `herd scheduler`: a long-running scheduler that
 * flows reach with `address` and `herd worker`s join. Runs until SIGTERM or
 * SIGINT, then stops cleanly (its workers wait and reconnect). */
#include <herd/herd.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static void usage(FILE *out)
{
    fprintf(out,
        "usage: herd scheduler [options]\n"
        "  --host HOST            interface to listen on (default 127.0.0.1; 0.0.0.0 for all)\n"
        "  --port PORT            TCP port (default 8786, like Dask)\n"
        "  --listen ADDRESS       instead of host/port: tcp://HOST:PORT or unix:///path\n"
        "  --token TOKEN          secret workers and clients must present (or $HERD_TOKEN)\n"
        "  --token-file FILE      read the token from FILE (first line)\n"
        "  --allow-anonymous      listen beyond loopback without a token (anyone who reaches\n"
        "                         the port can then run tasks: only on a trusted network)\n"
        "  --heartbeat-timeout S  declare a silent worker dead after S seconds (default 30)\n"
        "  --allowed-failures N   worker deaths a task survives (default 3)\n"
        "  --no-workers-timeout S a ready task no connected worker can run for S seconds ends\n"
        "                         Crashed, saying why (default 60, Dask's no-workers-timeout;\n"
        "                         0: wait forever)\n"
        "  --pid-file FILE        write the process id to FILE (removed at exit)\n"
        "  --log-file FILE        append log lines to FILE instead of stderr\n"
        "  --tls-ca-file FILE     TLS: the CA every worker's and client's certificate must come from\n"
        "  --tls-cert FILE        TLS: this scheduler's certificate (PEM); listens on tls://\n"
        "  --tls-key FILE         TLS: its private key (default: in --tls-cert)\n"
        "  --dashboard-address A  the live page, /metrics, /health and /api/v1 at HOST:PORT\n"
        "                         (default 127.0.0.1:8787, like Dask; :PORT for every interface,\n"
        "                         which then needs the token; HTTPS when TLS is on)\n"
        "  --no-dashboard         no HTTP endpoint\n");
}

static int read_token(const char *file, char *out, size_t cap)
{
    FILE *f = fopen(file, "r");
    if (!f) { fprintf(stderr, "herd scheduler: --token-file %s: %s\n", file, strerror(errno)); return -1; }
    if (!fgets(out, (int)cap, f)) out[0] = '\0';
    fclose(f);
    out[strcspn(out, "\r\n")] = '\0';
    if (!out[0]) { fprintf(stderr, "herd scheduler: --token-file %s: the file is empty\n", file); return -1; }
    return 0;
}

static int is_loopback(const char *listen)
{
    if (strncmp(listen, "unix://", 7) == 0) return 1;
    const char *h = strncmp(listen, "tcp://", 6) == 0 || strncmp(listen, "tls://", 6) == 0 ? listen + 6 : listen;
    return strncmp(h, "127.", 4) == 0 || strncmp(h, "localhost:", 10) == 0 || strncmp(h, "[::1]:", 6) == 0;
}

int herd_cli_scheduler(int argc, char **argv)
{
    const char *host = "127.0.0.1", *listen = NULL, *token = getenv("HERD_TOKEN"), *pid_file = NULL, *log_file = NULL;
    char tokbuf[512], lbuf[600];
    long port = 8786;
    int anonymous = 0;
    herd_scheduler_opts o = { .allowed_failures = -1, .no_workers_timeout = 60, .dashboard_address = "127.0.0.1:8787" };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); return 0; }
        if (!strcmp(a, "--allow-anonymous")) { anonymous = 1; continue; }
        if (!strcmp(a, "--no-dashboard")) { o.dashboard_address = NULL; continue; }
        if (!v) { fprintf(stderr, "herd scheduler: %s needs a value\n", a); usage(stderr); return HERD_CLI_EXIT_USAGE; }
        char *end;
        if (!strcmp(a, "--host")) host = v;
        else if (!strcmp(a, "--port")) {
            port = strtol(v, &end, 10);
            if (*end || port < 0 || port > 65535) { fprintf(stderr, "herd scheduler: --port: expected 0..65535, got \"%s\"\n", v); return HERD_CLI_EXIT_USAGE; }
        } else if (!strcmp(a, "--listen")) listen = v;
        else if (!strcmp(a, "--token")) token = v;
        else if (!strcmp(a, "--token-file")) { if (read_token(v, tokbuf, sizeof tokbuf)) return 1; token = tokbuf; }
        else if (!strcmp(a, "--heartbeat-timeout")) {
            o.heartbeat_timeout = strtod(v, &end);
            if (*end || o.heartbeat_timeout <= 0) { fprintf(stderr, "herd scheduler: --heartbeat-timeout: expected seconds > 0, got \"%s\"\n", v); return HERD_CLI_EXIT_USAGE; }
        } else if (!strcmp(a, "--allowed-failures")) {
            long n = strtol(v, &end, 10);
            if (*end || n < 0 || n > 1000) { fprintf(stderr, "herd scheduler: --allowed-failures: expected 0..1000, got \"%s\"\n", v); return HERD_CLI_EXIT_USAGE; }
            o.allowed_failures = (int)n;
        } else if (!strcmp(a, "--no-workers-timeout")) {
            o.no_workers_timeout = strtod(v, &end);
            if (*end || !(o.no_workers_timeout >= 0 && o.no_workers_timeout <= 1e6)) {
                fprintf(stderr, "herd scheduler: --no-workers-timeout: expected seconds 0..1000000 (0: never), got \"%s\"\n", v);
                return HERD_CLI_EXIT_USAGE;
            }
        } else if (!strcmp(a, "--pid-file")) pid_file = v;
        else if (!strcmp(a, "--log-file")) log_file = v;
        else if (!strcmp(a, "--tls-ca-file")) o.tls_ca_file = v;
        else if (!strcmp(a, "--tls-cert")) o.tls_cert = v;
        else if (!strcmp(a, "--tls-key")) o.tls_key = v;
        else if (!strcmp(a, "--dashboard-address")) o.dashboard_address = v;
        else { fprintf(stderr, "herd scheduler: unknown option \"%s\"\n", a); usage(stderr); return HERD_CLI_EXIT_USAGE; }
        i++;
    }
    if (!listen) {
        const char *scheme = o.tls_cert || o.tls_ca_file ? "tls" : "tcp";
        snprintf(lbuf, sizeof lbuf, strchr(host, ':') ? "%s://[%s]:%ld" : "%s://%s:%ld", scheme, host, port);
        listen = lbuf;
    }
    if (token && !*token) token = NULL;
    if (!token && !anonymous && !o.tls_ca_file && !is_loopback(listen)) {
        fprintf(stderr, "herd scheduler: refusing to listen on %s without a token: anyone who reaches it could run "
                        "tasks. Give --token/--token-file (or $HERD_TOKEN), or --allow-anonymous on a trusted network.\n", listen);
        return 1;
    }
    if (log_file && !freopen(log_file, "a", stderr)) {
        fprintf(stdout, "herd scheduler: --log-file %s: %s\n", log_file, strerror(errno));
        return 1;
    }
    setvbuf(stderr, NULL, _IOLBF, 0);
    /* signals go to this thread only (sigwait below), not the scheduler's */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    o.listen = listen;
    o.token = token;
    herd_scheduler *s;
    herd_err err;
    if (herd_scheduler_start(&s, &o, &err)) { fprintf(stderr, "herd scheduler: %s\n", err.msg); return 1; }
    if (pid_file) {
        FILE *f = fopen(pid_file, "w");
        if (!f) { fprintf(stderr, "herd scheduler: --pid-file %s: %s\n", pid_file, strerror(errno)); herd_scheduler_stop(s); return 1; }
        fprintf(f, "%ld\n", (long)getpid());
        fclose(f);
    }
    fprintf(stderr, "herd scheduler %s listening at %s%s\n", HERD_VERSION_STRING, herd_scheduler_address(s),
            token ? " (token required)" : " (no token)");
    if (herd_scheduler_dashboard_url(s))
        fprintf(stderr, "herd scheduler: dashboard at %s%s\n", herd_scheduler_dashboard_url(s),
                herd_scheduler_dashboard_login(s) ? " (needs the token)" : "");
    if (herd_scheduler_dashboard_login(s))
        fprintf(stderr, "herd scheduler: one-time dashboard login link: %s\n", herd_scheduler_dashboard_login(s));
    printf("%s\n", herd_scheduler_address(s));
    fflush(stdout);
    int sig = 0;
    while (sigwait(&set, &sig) == 0 && sig == SIGHUP) {}
    fprintf(stderr, "herd scheduler: signal %d, shutting down\n", sig);
    herd_scheduler_stop(s);
    if (pid_file) unlink(pid_file);
    return 0;
}
