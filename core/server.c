/* core/server.c — the public face of long-running clusters: a standalone
 * scheduler (herd_scheduler_*) and a standalone worker (herd_worker_serve),
 * which `herd scheduler` and `herd worker` run and programs may embed. */
#include "comm.h"
#include "scheduler.h"
#include "worker.h"

#include <errno.h>
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
    if (!out || !o || !o->listen) return herd_err_set(err, HERD_EARG, "herd_scheduler_start: opts.listen is required");
    herd_scheduler *h = calloc(1, sizeof *h);
    if (!h) return herd_err_set(err, -ENOMEM, "out of memory");
    int trc = tls_opts(o->tls_ca_file, o->tls_cert, o->tls_key, &h->tls, err);
    if (trc) { free(h); return trc; }
    herd_sched_cfg cfg = {
        .tls = h->tls,
        .listen = o->listen, .token = o->token && *o->token ? o->token : NULL,
        .heartbeat_interval = o->heartbeat_interval, .heartbeat_timeout = o->heartbeat_timeout,
        .allowed_failures = o->allowed_failures, .log = o->log ? o->log : herd_log_default, .log_ud = o->log_ud,
    };
    int rc = herd_sched_start(&h->s, &cfg, h->addr, sizeof h->addr, err);
    if (rc) { herd_tls_free(h->tls); free(h); return rc; }
    *out = h;
    return 0;
}

const char *herd_scheduler_address(const herd_scheduler *h) { return h ? h->addr : NULL; }

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
        .connect_timeout = o->connect_timeout > 0 ? o->connect_timeout : 30, .reconnect = o->reconnect,
    };
    int code = herd_worker_main(&cfg);
    herd_value_free(res);
    herd_tls_free(tls);
    return code;
}
