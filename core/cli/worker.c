/* core/cli/worker.c — `herd worker ADDRESS`: a long-running worker that runs
 * task plugins' tasks for a scheduler and reconnects with backoff when the
 * scheduler restarts. (To run your own HERD_TASKs, run your program as
 * `prog --herd-worker --herd-address ADDRESS --herd-reconnect`.) */
#include <herd/herd.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"
#include "secrets.h"
#include "security.h"

static void usage(FILE *out)
{
    fprintf(out,
        "usage: herd worker ADDRESS [options]\n"
        "  ADDRESS                 the scheduler: tcp://HOST:PORT or unix:///path\n"
        "  --nthreads N            task slots (default: the number of CPUs)\n"
        "  --resources SPEC        abstract resources offered, e.g. \"GPU=1,process=1\"\n"
        "  --name NAME             unique worker name (default: HOST-PID)\n"
        "  --plugin NAME|PATH      load a task plugin at start (repeatable)\n"
        "  --token TOKEN           the scheduler's token (or $HERD_TOKEN)\n"
        "  --token-file FILE       read the token from FILE\n"
        "  --memory-limit SIZE     spill held results to disk above 60%% of SIZE (under\n"
        "                          $HERD_LOCAL_DIRECTORY if set), take no task above 80%%, exit above 95%%;\n"
        "                          e.g. 4GiB\n"
        "  --connect-timeout S     seconds to keep dialing on each attempt (default 30)\n"
        "  --no-reconnect          exit when the scheduler goes away\n"
        "  --tls-ca-file FILE      TLS (tls:// ADDRESS): the CA the scheduler's certificate comes from\n"
        "  --tls-cert FILE         this worker's certificate (PEM)\n"
        "  --tls-key FILE          its private key (default: in --tls-cert)\n"
        "  --tls-server-name NAME  check the scheduler's certificate against NAME, not ADDRESS's host\n"
        "                          (a scheduler behind NAT or a load balancer)\n");
}

/* "4GiB", "512MB", "1000" -> bytes */
static int parse_size(const char *s, long long *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || v < 0) return -1;
    while (*end == ' ') end++;
    static const struct { const char *u; double m; } units[] = {
        { "", 1 }, { "b", 1 }, { "k", 1e3 }, { "kb", 1e3 }, { "m", 1e6 }, { "mb", 1e6 }, { "g", 1e9 }, { "gb", 1e9 },
        { "t", 1e12 }, { "tb", 1e12 }, { "kib", 1024.0 }, { "mib", 1048576.0 }, { "gib", 1073741824.0 },
        { "tib", 1099511627776.0 },
    };
    for (size_t i = 0; i < sizeof units / sizeof *units; i++)
        if (!strcasecmp(end, units[i].u)) { *out = (long long)llround(v * units[i].m); return 0; }
    return -1;
}

static int serve(int argc, char **argv, const char *env_token);

int herd_cli_worker(int argc, char **argv)
{
    /* $HERD_TOKEN leaves the environment before any task could read it */
    char **secrets = NULL;
    herd_err err = { 0 };
    if (herd_secrets_take(&secrets, &err)) { fprintf(stderr, "herd worker: %s\n", err.msg); return 1; }
    int code = serve(argc, argv, herd_secrets_get(secrets, "HERD_TOKEN"));
    herd_tls_envp_free(secrets);
    return code;
}

static int serve(int argc, char **argv, const char *env_token)
{
    herd_worker_opts o = { .token = env_token, .reconnect = true };
    const char *plugins[64];
    size_t np = 0;
    char tokbuf[512];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); return 0; }
        if (!strcmp(a, "--no-reconnect")) { o.reconnect = false; continue; }
        if (a[0] != '-') {
            if (o.address) { fprintf(stderr, "herd worker: one ADDRESS expected, got \"%s\" too\n", a); return HERD_CLI_EXIT_USAGE; }
            o.address = a;
            continue;
        }
        if (!v) { fprintf(stderr, "herd worker: %s needs a value\n", a); usage(stderr); return HERD_CLI_EXIT_USAGE; }
        char *end;
        if (!strcmp(a, "--nthreads")) {
            long n = strtol(v, &end, 10);
            if (*end || n < 1 || n > 4096) { fprintf(stderr, "herd worker: --nthreads: expected 1..4096, got \"%s\"\n", v); return HERD_CLI_EXIT_USAGE; }
            o.nthreads = (int)n;
        } else if (!strcmp(a, "--resources")) o.resources = v;
        else if (!strcmp(a, "--tls-ca-file")) o.tls_ca_file = v;
        else if (!strcmp(a, "--tls-cert")) o.tls_cert = v;
        else if (!strcmp(a, "--tls-key")) o.tls_key = v;
        else if (!strcmp(a, "--tls-server-name")) o.tls_server_name = v;
        else if (!strcmp(a, "--name")) o.name = v;
        else if (!strcmp(a, "--plugin")) {
            if (np == sizeof plugins / sizeof *plugins - 1) { fprintf(stderr, "herd worker: too many --plugin\n"); return HERD_CLI_EXIT_USAGE; }
            plugins[np++] = v;
        } else if (!strcmp(a, "--token")) o.token = v;
        else if (!strcmp(a, "--token-file")) {
            FILE *f = fopen(v, "r");
            if (!f || !fgets(tokbuf, sizeof tokbuf, f)) {
                fprintf(stderr, "herd worker: --token-file %s: %s\n", v, f ? "the file is empty" : strerror(errno));
                if (f) fclose(f);
                return 1;
            }
            fclose(f);
            tokbuf[strcspn(tokbuf, "\r\n")] = '\0';
            o.token = tokbuf;
        } else if (!strcmp(a, "--memory-limit")) {
            long long b;
            if (parse_size(v, &b)) { fprintf(stderr, "herd worker: --memory-limit: expected a size like 4GiB, got \"%s\"\n", v); return HERD_CLI_EXIT_USAGE; }
            o.memory_limit = b;
        } else if (!strcmp(a, "--connect-timeout")) {
            o.connect_timeout = strtod(v, &end);
            if (*end || o.connect_timeout <= 0) { fprintf(stderr, "herd worker: --connect-timeout: expected seconds > 0, got \"%s\"\n", v); return HERD_CLI_EXIT_USAGE; }
        } else { fprintf(stderr, "herd worker: unknown option \"%s\"\n", a); usage(stderr); return HERD_CLI_EXIT_USAGE; }
        i++;
    }
    if (!o.address) { fprintf(stderr, "herd worker: the scheduler ADDRESS is required\n"); usage(stderr); return HERD_CLI_EXIT_USAGE; }
    plugins[np] = NULL;
    o.plugins = plugins;
    herd_err err = { 0 };
    int code = herd_worker_serve(&o, &err);
    if (code == 1 && err.code) fprintf(stderr, "herd worker: %s\n", err.msg);
    return code;
}
