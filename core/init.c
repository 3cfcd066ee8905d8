/* core/init.c — herd_init: the C form of Python's `if __name__ == "__main__"`
 * guard. A process the runtime started as a worker (argv[1] is
 * --herd-worker) runs the worker here and exits; one a provider started as
 * a remote scheduler (--herd-scheduler, see herd_scheduler_argv) serves it
 * and exits; --herd-version prints "herd <version> protocol <n>" and exits;
 * any other returns. Either mode answers --help (or -h) with its flags and
 * environment (docs/providers.md says the same for provider authors). */
#include "secrets.h"
#include "security.h"
#include "worker.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char worker_help[] =
    "usage: %s --herd-worker [options]\n"
    "Worker mode: how a provider starts this program as a worker of a cluster\n"
    "(herd_worker_argv); the program's main must call herd_init first.\n"
    "  --herd-address ADDRESS   the scheduler: tcp://HOST:PORT, tls://HOST:PORT or\n"
    "                           unix:///path (default: $HERD_SCHEDULER_ADDRESS)\n"
    "  --herd-name NAME         the worker's name, unique in its cluster (default \"worker\")\n"
    "  --herd-nthreads N        task slots, 1..4096 (default 1)\n"
    "  --herd-resources SPEC    abstract resources offered, e.g. \"GPU=1,process=1\"\n"
    "  --herd-memory-limit B    above 60%% of B bytes spill held results to disk, above\n"
    "                           80%% start no task, above 95%% exit (its tasks then run\n"
    "                           elsewhere); resident memory (default 0: no limit)\n"
    "  --herd-local-directory DIR  where held results spill (an existing, writable\n"
    "                           directory; default $HERD_LOCAL_DIRECTORY, else the\n"
    "                           directory of the scheduler's Unix socket)\n"
    "  --herd-lifetime D        Dask's --lifetime: after D (\"55m\", \"3s\") ask the scheduler\n"
    "                           to retire this worker: no new task, its running ones\n"
    "                           finish, then it exits 0 (default $HERD_LIFETIME; 0: never)\n"
    "  --herd-lifetime-stagger D  vary the lifetime by a uniform +/- D, so workers do\n"
    "                           not all leave at once (default $HERD_LIFETIME_STAGGER)\n"
    "  --herd-reconnect         redial with backoff when the scheduler goes away\n"
    "                           (default: exit)\n"
    "environment:\n"
    "  HERD_SCHEDULER_ADDRESS   the scheduler, when --herd-address is not given\n"
    "  HERD_TOKEN               the cluster's token, sent in the first message\n"
    "  HERD_TLS_CA, HERD_TLS_CERT, HERD_TLS_KEY\n"
    "                           for tls:// addresses: the CA certificate, this worker's\n"
    "                           certificate and its private key, as PEM text (not file\n"
    "                           names); all three or none; removed from the environment\n"
    "                           before any task runs\n"
    "  HERD_LOCAL_DIRECTORY     --herd-local-directory, when that is not given\n"
    "  HERD_LOG_LEVEL           debug, info (default), warning or error\n";

static const char scheduler_help[] =
    "usage: %s --herd-scheduler --listen ADDRESS [options]\n"
    "Scheduler mode: how a provider runs the scheduler of one cluster on another\n"
    "machine (start_scheduler, herd_scheduler_argv); prints \"herd-scheduler-at\n"
    "ADDRESS\" once listening and serves until SIGTERM, SIGINT or SIGHUP.\n"
    "  --listen ADDRESS            tcp://HOST:PORT (port 0: any), tls://… or unix:///path\n"
    "  --heartbeat-interval S      how often workers send a heartbeat\n"
    "  --heartbeat-timeout S       declare a silent worker dead after S seconds\n"
    "  --allowed-failures N        worker deaths a task survives\n"
    "  --herd-no-workers-timeout S a ready task no worker can run for S seconds ends\n"
    "                              Crashed (the client's no_workers_timeout); 0: never\n"
    "  --herd-data-transfer MODE   auto, direct, relay or inline (the client's data_transfer)\n"
    "environment:\n"
    "  HERD_TOKEN                  required: the token workers and clients must present\n"
    "  HERD_TLS_CA, HERD_TLS_CERT, HERD_TLS_KEY\n"
    "                              for tls://: as for workers (PEM text), this scheduler's\n"
    "                              certificate and key\n";

/* Is --help or -h among the mode's flags (not the value of one)? Flags
 * other than these take a value. */
static bool wants_help(int argc, char **argv)
{
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) return true;
        if (strcmp(a, "--herd-worker") && strcmp(a, "--herd-reconnect")) i++;   /* its value */
    }
    return false;
}

int herd_init(int *argc, char ***argv)
{
    if (!argc || !argv || *argc < 2) return 0;
    if (strcmp((*argv)[1], "--herd-version") == 0) {   /* what a provider checks before starting one */
        printf("herd %s protocol %d\n", HERD_VERSION_STRING, HERD_PROTOCOL_VERSION);
        fflush(stdout);
        _exit(0);
    }
    bool worker = strcmp((*argv)[1], "--herd-worker") == 0;
    if ((worker || strcmp((*argv)[1], "--herd-scheduler") == 0) && wants_help(*argc, *argv)) {
        printf(worker ? worker_help : scheduler_help, (*argv)[0]);
        fflush(stdout);
        _exit(0);
    }
    bool scheduler = strcmp((*argv)[1], "--herd-scheduler") == 0;
    if (!worker && !scheduler) return 0;
    /* the token and the TLS key leave the environment (getenv's view and the
     * bytes /proc/PID/environ shows) before any task or thread runs */
    herd_err err = { 0 };
    char **secrets = NULL;
    if (herd_secrets_take(&secrets, &err)) {
        herd_log_default(NULL, HERD_LOG_ERROR, err.msg);
        fflush(NULL);
        _exit(1);
    }
    if (scheduler) {
        int code = herd_scheduler_serve_args(*argc, *argv, secrets);
        herd_tls_envp_free(secrets);
        fflush(NULL);
        _exit(code);
    }
    herd_worker_cfg cfg;
    herd_value *res = NULL;
    int code;
    char name[192];
    if (herd_worker_cfg_from_args(*argc, *argv, &cfg, &res, &err)) {
        herd_log_default(NULL, HERD_LOG_ERROR, err.msg);
        code = 2;
    } else if (herd_worker_name_complete(cfg.name, name, sizeof name, &err)) {
        herd_log_default(NULL, HERD_LOG_ERROR, err.msg);
        code = 1;
    } else {
        cfg.name = name;
        herd_tls *tls = NULL;
        cfg.token = herd_secrets_get(secrets, "HERD_TOKEN");
        int rc = herd_tls_from_envp((const char *const *)secrets, &tls, &err);
        if (rc && rc != -ENOENT) {
            herd_log_default(NULL, HERD_LOG_ERROR, err.msg);
            code = 1;
        } else {
            cfg.tls = tls;
            code = herd_worker_main(&cfg);
        }
        herd_tls_free(tls);
    }
    herd_value_free(res);
    herd_tls_envp_free(secrets);
    fflush(NULL);
    /* executor threads may still be inside a task: leave without running
     * the program's destructors under them */
    _exit(code);
}
