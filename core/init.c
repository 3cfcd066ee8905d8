/* core/init.c — herd_init: the C form of Python's `if __name__ == "__main__"`
 * guard. A process the runtime started as a worker (argv[1] is
 * --herd-worker) runs the worker here and exits; one a provider started as
 * a remote scheduler (--herd-scheduler, see herd_scheduler_argv) serves it
 * and exits; --herd-version prints "herd <version> protocol <n>" and exits;
 * any other returns. */
#include "worker.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int herd_init(int *argc, char ***argv)
{
    if (!argc || !argv || *argc < 2) return 0;
    if (strcmp((*argv)[1], "--herd-version") == 0) {   /* what a provider checks before starting one */
        printf("herd %s protocol %d\n", HERD_VERSION_STRING, HERD_PROTOCOL_VERSION);
        fflush(stdout);
        _exit(0);
    }
    if (strcmp((*argv)[1], "--herd-scheduler") == 0) {
        int code = herd_scheduler_serve_args(*argc, *argv);
        fflush(NULL);
        _exit(code);
    }
    if (strcmp((*argv)[1], "--herd-worker") != 0) return 0;
    herd_worker_cfg cfg;
    herd_value *res = NULL;
    herd_err err = { 0 };
    int code;
    if (herd_worker_cfg_from_args(*argc, *argv, &cfg, &res, &err)) {
        herd_log_default(NULL, HERD_LOG_ERROR, err.msg);
        code = 2;
    } else {
        herd_tls *tls = NULL;
        int rc = herd_tls_from_envp(NULL, &tls, &err);
        /* tasks and the programs they start must not inherit the key */
        unsetenv("HERD_TLS_KEY");
        unsetenv("HERD_TLS_CERT");
        unsetenv("HERD_TLS_CA");
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
    fflush(NULL);
    /* executor threads may still be inside a task: leave without running
     * the program's destructors under them */
    _exit(code);
}
