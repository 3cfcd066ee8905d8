/* providers/ssh/ssh.c — ssh.SSHCluster (alias distributed.SSHCluster):
 * workers on other machines, started through the system OpenSSH client in
 * BatchMode, so ~/.ssh/config, agents, ProxyJump and known_hosts work as the
 * user expects. The scheduler stays in the client process and listens where
 * the hosts can reach it (scheduler_listen), or, with scheduler_host, runs
 * on that host in an ssh session of its own (start_scheduler), stopped
 * after the workers on close. This file owns the schema, the
 * placement of workers (least loaded host first), starting them on all
 * hosts in parallel with per-host failures reported and skipped, status,
 * and stopping them for certain. The workers a start or scale_up places on
 * one host share one ssh session (one login: most of the cost of starting
 * a worker), which stays up while any of them runs (proc.c); the remote
 * wrapper (remote.c) reports each worker's pid and exit on its own. Retire
 * writes "stop I" into the session's stdin; close ends the stdin (the
 * wrapper stops them all), then kills ssh, then kills the remote pids over
 * a fresh session when their end was not seen. One mutex per cluster
 * guards the state; the monitor thread's callbacks take it. */
#include "ssh.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* details and host names are cut to the fixed sizes of herd_worker_info:
 * truncation there is intended */
#pragma GCC diagnostic ignored "-Wformat-truncation"

#define STOP_GRACE_S 4.5   /* the wrapper sends SIGTERM, then SIGKILL 3 s later */
#define WORKER_EXIT_REFUSED 3   /* a worker's exit status when the scheduler refused it */
#define SCHED_AT "herd-scheduler-at "

static const herd_param params[] = {
    { "hosts", HERD_PARAM_LIST, NULL,
      "Hosts that run workers: \"host\", \"user@host\", \"host:port\" or \"[v6addr]:port\" "
      "(names as ssh takes them, ~/.ssh/config aliases included). Every host runs workers; "
      "the scheduler stays in this process unless scheduler_host is given.", HERD_PARAM_REQUIRED, 0, 0 },
    { "scheduler_host", HERD_PARAM_STRING, "null",
      "Run the scheduler on this host (same forms as hosts; it may be one of them) instead of "
      "in this process, like Dask's first host: this client and the workers dial it at the "
      "address ssh reaches it by, on the port it picks (or listen_address's). The program "
      "there is remote_command (or the upload) run with --herd-scheduler.", HERD_PARAM_NULLABLE, 0, 0 },
    { "n_workers", HERD_PARAM_INT, "null",
      "Workers in total, spread over the hosts least loaded first. null: workers_per_host "
      "on every host.", HERD_PARAM_NULLABLE, 0, 100000 },
    { "workers_per_host", HERD_PARAM_INT, "1",
      "Workers per host when n_workers is null.", 0, 0, 10000 },
    { "worker_options", HERD_PARAM_MAP, "{}",
      "Per worker: nthreads (default 1), resources ({GPU: 1}), memory_limit (bytes or "
      "\"4GiB\"; 0: none).", 0, 0, 0 },
    { "connect_options", HERD_PARAM_MAP, "{}",
      "How ssh connects: user, port, identity_file, known_hosts (a file), "
      "strict_host_key_checking (yes, no, accept-new), options (extra -o \"Key=Value\" "
      "strings), connect_timeout (default 10 s), config_file (ssh -F), program (default "
      "\"ssh\"). Unset keys leave ssh's own configuration in charge.", 0, 0, 0 },
    { "remote_command", HERD_PARAM_STRING, "null",
      "The worker program on the hosts (this program, built for them). null: the same "
      "path as here (or the uploaded copy with upload: true).", HERD_PARAM_NULLABLE, 0, 0 },
    { "upload", HERD_PARAM_BOOL, "false",
      "Copy this program (and libherd.so when it is linked dynamically, and "
      "upload_files) to upload_dir on each host before starting; files whose sha256 "
      "already matches are not copied again.", 0, 0, 0 },
    { "upload_dir", HERD_PARAM_STRING, "\".cache/herd\"",
      "Where upload puts files on the hosts (relative: to the remote home directory): "
      "bin/<program>, lib/libherd.so.0, plugins/<file>.", 0, 0, 0 },
    { "upload_files", HERD_PARAM_LIST, "[]",
      "Task plugins (.so) to upload into upload_dir/plugins, which workers then find "
      "on HERD_PLUGIN_PATH.", 0, 0, 0 },
    { "env", HERD_PARAM_MAP, "{}",
      "Extra environment variables for the workers, name -> string (sent over the ssh "
      "session's stdin, like the scheduler token, never on a command line).", 0, 0, 0 },
    { "listen_address", HERD_PARAM_STRING, "null",
      "Where the scheduler listens and workers dial back, e.g. \"tcp://10.0.0.5:0\". null: "
      "127.0.0.1 when every host is this machine, else this machine's address on the "
      "route to the hosts (0.0.0.0, each host dialling its own route, when they differ). "
      "With scheduler_host: where the scheduler listens on that host (null: "
      "tcp://0.0.0.0:0, dialled at the host's address; a specific address is dialled as "
      "given).", HERD_PARAM_NULLABLE, 0, 0 },
    { "start_timeout", HERD_PARAM_DURATION, "30",
      "How long a worker (or scheduler_host's scheduler) may take from starting ssh to "
      "running on its host.", 0, 0.1, 3600 },
    { "name", HERD_PARAM_STRING, "\"ssh\"",
      "Prefix of worker names: <name>-0, <name>-1, … (numbers never reused).",
      HERD_PARAM_NULLABLE, 0, 0 },
    { NULL }
};

static const herd_param worker_params[] = {
    { "nthreads", HERD_PARAM_INT, "1", "threads (task slots) per worker", 0, 1, 4096 },
    { "resources", HERD_PARAM_MAP, "{}", "abstract resources each worker offers", 0, 0, 0 },
    { "memory_limit", HERD_PARAM_SIZE, "0", "memory limit per worker; 0: none", HERD_PARAM_NULLABLE, 0, 0 },
    { NULL }
};

static const herd_param connect_params[] = {
    { "user", HERD_PARAM_STRING, "null", "remote user", HERD_PARAM_NULLABLE, 0, 0 },
    { "port", HERD_PARAM_INT, "null", "ssh port", HERD_PARAM_NULLABLE, 1, 65535 },
    { "identity_file", HERD_PARAM_STRING, "null", "private key file (ssh -i)", HERD_PARAM_NULLABLE, 0, 0 },
    { "known_hosts", HERD_PARAM_STRING, "null", "known_hosts file", HERD_PARAM_NULLABLE, 0, 0 },
    { "strict_host_key_checking", HERD_PARAM_STRING, "null", "yes, no or accept-new", HERD_PARAM_NULLABLE, 0, 0 },
    { "options", HERD_PARAM_LIST, "[]", "extra ssh -o \"Key=Value\" options", 0, 0, 0 },
    { "connect_timeout", HERD_PARAM_DURATION, "10", "ssh ConnectTimeout", 0, 0.1, 3600 },
    { "config_file", HERD_PARAM_STRING, "null", "ssh -F file", HERD_PARAM_NULLABLE, 0, 0 },
    { "program", HERD_PARAM_STRING, "\"ssh\"", "the ssh client", 0, 0, 0 },
    { NULL }
};

typedef struct shost {
    char spec[256];            /* as given */
    char host[256];            /* what ssh is given */
    char user[128];
    int port;
    char dial[128];            /* host workers dial back to; "": the scheduler's address as is */
    int live;                  /* workers starting or running */
    bool dead;                 /* could not start a worker: no new ones here */
    bool prepared;             /* upload done */
    char why[400];             /* why it is dead */
    char prog[4096];           /* the worker program there */
    char plugin_dir[4096];     /* uploaded plugins, or "" */
} shost;

typedef struct ssess ssess;

/* The scheduler, when scheduler_host runs it: one ssh session of its own
 * under the same wrapper as workers (its index there is 0). */
typedef struct ssched {
    shost h;
    char dial[128];            /* the host the client and workers dial */
    ssh_child ch;
    bool spawned, ended, eof, rexit_known;
    int rexit;
    long rpid;
    char addr[300];            /* what it printed: herd-scheduler-at ADDRESS */
    char error[300];           /* the wrapper's complaint */
    char lasterr[300];         /* its last stderr line */
} ssched;

typedef struct sworker {
    char name[64];
    herd_cluster *c;
    shost *h;
    ssess *s;                  /* its ssh session, once placed in one */
    int idx;                   /* its number in that session */
    int state;                 /* HERD_WORKER_* */
    bool busy;                 /* a retire is stopping it */
    bool expected;             /* we are stopping it */
    bool spawned, ended, started, rexit_known, counted;
    int rexit;
    long rpid;                 /* the worker's pid on its host */
    char detail[160];
} sworker;

/* One ssh session running some workers of one host. */
struct ssess {
    herd_cluster *c;
    shost *h;
    sworker **w;
    size_t nw;
    bool spawned, ended;
    bool unfed;                /* started before the scheduler's address was known: its
                                  environment (and SSH_GO) is still to be written */
    bool eof;                  /* its stdin was closed: every worker stops */
    char error[200];           /* the wrapper's own complaint */
    char refusal[200];         /* a worker's "refused this worker: …" stderr line */
    ssh_child ch;
    ssess *next;
};

struct herd_cluster {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_mutex_t scale_mu;  /* one start/scale_up at a time */
    const herd_cluster_env *env;
    ssh_opts so;
    shost *hosts;
    size_t nh;
    int n_workers, nthreads;
    int64_t memory_limit;
    herd_value *resources;
    char **extra_env;
    char *remote_command, *upload_dir, *listen;
    char **upload_files;
    bool upload;
    double start_timeout;
    char prefix[48];
    unsigned long next_id;
    sworker **w;
    size_t nw, capw;
    ssess *sess;               /* every session ever started */
    ssched *sched;             /* scheduler_host, or NULL */
    ssh_mon *mon;
    int scaling;               /* start/scale_up calls in flight */
    bool closing;
};

/* ---- create ---- */

static char *dup_str(const herd_value *v)
{
    const char *s = herd_as_str(v);
    return s ? strdup(s) : NULL;
}

static int parse_host(const char *spec, shost *h, const char *what, herd_err *err)
{
    memset(h, 0, sizeof *h);
    if (!spec || !*spec || strlen(spec) >= sizeof h->spec || spec[0] == '-' || strpbrk(spec, " \t\n'\"\\"))
        return herd_err_set(err, HERD_ECONFIG, "%s: expected a host name such as "
                            "\"user@host:22\", got \"%s\"", what, spec ? spec : "");
    snprintf(h->spec, sizeof h->spec, "%s", spec);
    const char *at = strrchr(spec, '@'), *rest = at ? at + 1 : spec;
    if (at) snprintf(h->user, sizeof h->user, "%.*s", (int)(at - spec), spec);
    const char *port = NULL;
    if (rest[0] == '[') {
        const char *close = strchr(rest, ']');
        if (!close || (close[1] && close[1] != ':'))
            return herd_err_set(err, HERD_ECONFIG, "%s: \"%s\": expected [address]:port", what, spec);
        snprintf(h->host, sizeof h->host, "%.*s", (int)(close - rest - 1), rest + 1);
        if (close[1] == ':') port = close + 2;
    } else {
        const char *colon = strchr(rest, ':');
        if (colon && !strchr(colon + 1, ':')) {
            snprintf(h->host, sizeof h->host, "%.*s", (int)(colon - rest), rest);
            port = colon + 1;
        } else {
            snprintf(h->host, sizeof h->host, "%s", rest);   /* a bare IPv6 address */
        }
    }
    if (port) {
        char *end;
        long p = strtol(port, &end, 10);
        if (!*port || *end || p < 1 || p > 65535)
            return herd_err_set(err, HERD_ECONFIG, "%s: \"%s\": expected a port "
                                "from 1 to 65535 after ':'", what, spec);
        h->port = (int)p;
    }
    if (!h->host[0] || (at && !h->user[0]))
        return herd_err_set(err, HERD_ECONFIG, "%s: \"%s\": expected [user@]host[:port]", what, spec);
    return 0;
}

static int check_resources(const herd_value *res, herd_err *err)
{
    for (size_t i = 0; i < herd_len(res); i++) {
        const char *k = herd_key_at(res, i);
        herd_type t = herd_typeof(herd_at(res, i));
        if (!k || !*k || strpbrk(k, ",= "))
            return herd_err_set(err, HERD_ECONFIG, "cluster_kwargs.worker_options.resources: resource name "
                                "\"%s\": expected a non-empty name without ',', '=' or spaces", k ? k : "");
        if ((t != HERD_INT && t != HERD_FLOAT) || !(herd_as_float(herd_at(res, i)) > 0)) {
            char *txt = herd_value_to_string(herd_at(res, i));
            int rc = herd_err_set(err, HERD_ECONFIG, "cluster_kwargs.worker_options.resources.%s: expected "
                                  "a number > 0, got %s", k, txt ? txt : "?");
            free(txt);
            return rc;
        }
    }
    return 0;
}

static bool valid_prefix(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 40) return false;
    for (size_t i = 0; i < n; i++)
        if (!(s[i] >= 'a' && s[i] <= 'z') && !(s[i] >= 'A' && s[i] <= 'Z') &&
            !(s[i] >= '0' && s[i] <= '9') && !strchr("_.-", s[i]))
            return false;
    return true;
}

/* A list of strings, copied NULL-terminated. */
static int str_list(const herd_value *v, const char *what, char ***out, herd_err *err)
{
    size_t n = herd_len(v);
    char **l = calloc(n + 1, sizeof *l);
    if (!l) return herd_err_set(err, -ENOMEM, "%s: out of memory", what);
    for (size_t i = 0; i < n; i++) {
        const char *s = herd_as_str(herd_at(v, i));
        if (!s || !*s) {
            char *txt = herd_value_to_string(herd_at(v, i));
            int rc = herd_err_set(err, HERD_ECONFIG, "%s[%zu]: expected a non-empty string, got %s", what, i,
                                  txt ? txt : "?");
            free(txt);
            herd_strv_free(l);
            return rc;
        }
        if (!(l[i] = strdup(s))) { herd_strv_free(l); return herd_err_set(err, -ENOMEM, "%s: out of memory", what); }
    }
    *out = l;
    return 0;
}

static int read_connect(herd_cluster *c, const herd_value *kw, herd_err *err)
{
    herd_value *v = NULL;
    int rc = herd_kwargs_validate(connect_params, kw, "cluster_kwargs.connect_options", &v, err);
    if (rc) return rc;
    ssh_opts *o = &c->so;
    o->program = dup_str(herd_map_get(v, "program"));
    o->user = dup_str(herd_map_get(v, "user"));
    o->identity_file = dup_str(herd_map_get(v, "identity_file"));
    o->known_hosts = dup_str(herd_map_get(v, "known_hosts"));
    o->config_file = dup_str(herd_map_get(v, "config_file"));
    const herd_value *s = herd_map_get(v, "strict_host_key_checking");
    if (herd_typeof(s) == HERD_STR) {
        const char *t = herd_as_str(s);
        if (strcmp(t, "yes") && strcmp(t, "no") && strcmp(t, "accept-new") && strcmp(t, "ask") && strcmp(t, "off"))
            rc = herd_err_set(err, HERD_ECONFIG, "cluster_kwargs.connect_options.strict_host_key_checking: "
                              "expected yes, no or accept-new, got \"%s\"", t);
        else o->strict = strdup(t);
    }
    if (herd_typeof(herd_map_get(v, "port")) == HERD_INT) o->port = (int)herd_as_int(herd_map_get(v, "port"));
    o->connect_timeout = herd_as_float(herd_map_get(v, "connect_timeout"));
    if (!rc) rc = str_list(herd_map_get(v, "options"), "cluster_kwargs.connect_options.options", &o->extra, err);
    for (size_t i = 0; !rc && o->extra[i]; i++)
        if (!strchr(o->extra[i], '=') || o->extra[i][0] == '=' || o->extra[i][0] == '-')
            rc = herd_err_set(err, HERD_ECONFIG, "cluster_kwargs.connect_options.options[%zu]: expected "
                              "\"Key=Value\" (an ssh -o option), got \"%s\"", i, o->extra[i]);
    if (!rc && !o->program) rc = herd_err_set(err, -ENOMEM, "out of memory");
    herd_value_free(v);
    return rc;
}

static int read_worker(herd_cluster *c, const herd_value *kw, herd_err *err)
{
    herd_value *v = NULL;
    int rc = herd_kwargs_validate(worker_params, kw, "cluster_kwargs.worker_options", &v, err);
    if (rc) return rc;
    c->nthreads = (int)herd_as_int(herd_map_get(v, "nthreads"));
    const herd_value *m = herd_map_get(v, "memory_limit");
    if (herd_typeof(m) == HERD_STR)
        rc = herd_err_set(err, HERD_ECONFIG, "cluster_kwargs.worker_options.memory_limit: expected bytes or "
                          "a size such as \"4GiB\" (the hosts' memory is not known here), got \"%s\"", herd_as_str(m));
    else c->memory_limit = herd_typeof(m) == HERD_INT ? herd_as_int(m) : 0;
    if (!rc && c->memory_limit < 0)
        rc = herd_err_set(err, HERD_ECONFIG, "cluster_kwargs.worker_options.memory_limit: expected >= 0, got %lld",
                          (long long)c->memory_limit);
    if (!rc) rc = check_resources(herd_map_get(v, "resources"), err);
    if (!rc && !(c->resources = herd_value_copy(herd_map_get(v, "resources"))))
        rc = herd_err_set(err, -ENOMEM, "out of memory");
    herd_value_free(v);
    return rc;
}

static int read_env(herd_cluster *c, const herd_value *env, herd_err *err)
{
    size_t n = herd_len(env);
    if (!(c->extra_env = calloc(n + 1, sizeof *c->extra_env)))
        return herd_err_set(err, -ENOMEM, "cluster_kwargs.env: out of memory");
    for (size_t i = 0; i < n; i++) {
        const char *k = herd_key_at(env, i), *v = herd_as_str(herd_at(env, i));
        if (!v)
            return herd_err_set(err, HERD_ECONFIG, "cluster_kwargs.env.%s: expected a string, got %s (quote it "
                                "in YAML)", k ? k : "", herd_type_name(herd_typeof(herd_at(env, i))));
        if (asprintf(&c->extra_env[i], "%s=%s", k ? k : "", v) < 0) {
            c->extra_env[i] = NULL;
            return herd_err_set(err, -ENOMEM, "cluster_kwargs.env: out of memory");
        }
        char *b = NULL;
        size_t bl = 0, bc = 0;
        int rc = ssh_env_line(&b, &bl, &bc, c->extra_env[i]);
        free(b);
        if (rc == -EINVAL)
            return herd_err_set(err, HERD_ECONFIG, "cluster_kwargs.env: variable name \"%s\": expected letters, "
                                "digits and '_', not starting with a digit", k ? k : "");
    }
    return 0;
}

static void cluster_free(herd_cluster *c)
{
    ssh_mon_free(c->mon);   /* first: its callbacks point at the workers */
    while (c->sess) {
        ssess *s = c->sess;
        c->sess = s->next;
        herd_proc_free(s->ch.proc);
        if (s->ch.in >= 0) close(s->ch.in);
        free(s->w);
        free(s);
    }
    for (size_t i = 0; i < c->nw; i++) free(c->w[i]);
    free(c->w);
    if (c->sched) herd_proc_free(c->sched->ch.proc);
    if (c->sched && c->sched->ch.in >= 0) close(c->sched->ch.in);
    free(c->sched);
    free(c->hosts);
    herd_value_free(c->resources);
    herd_strv_free(c->extra_env);
    herd_strv_free(c->upload_files);
    herd_strv_free(c->so.extra);
    free((char *)c->so.program);
    free((char *)c->so.user);
    free((char *)c->so.identity_file);
    free((char *)c->so.known_hosts);
    free((char *)c->so.strict);
    free((char *)c->so.config_file);
    free(c->remote_command);
    free(c->upload_dir);
    free(c->listen);
    pthread_mutex_destroy(&c->scale_mu);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static int sc_create(herd_cluster **out, const herd_value *kw, const herd_cluster_env *env, herd_err *err)
{
    *out = NULL;
    herd_cluster *c = calloc(1, sizeof *c);
    if (!c) return herd_err_set(err, -ENOMEM, "SSHCluster: out of memory");
    pthread_mutex_init(&c->mu, NULL);
    pthread_mutex_init(&c->scale_mu, NULL);
    herd_cond_init_monotonic(&c->cv);
    c->env = env;
    int rc = 0;

    const herd_value *hosts = herd_map_get(kw, "hosts");
    c->nh = herd_len(hosts);
    if (c->nh == 0)
        rc = herd_err_set(err, HERD_ECONFIG, "cluster_kwargs.hosts: expected at least one host, got an empty list");
    else if (!(c->hosts = calloc(c->nh, sizeof *c->hosts)))
        rc = herd_err_set(err, -ENOMEM, "SSHCluster: out of memory");
    for (size_t i = 0; !rc && i < c->nh; i++) {
        const herd_value *h = herd_at(hosts, i);
        if (herd_typeof(h) != HERD_STR) {
            char *txt = herd_value_to_string(h);
            rc = herd_err_set(err, HERD_ECONFIG, "cluster_kwargs.hosts[%zu]: expected a host name string, got %s",
                              i, txt ? txt : "?");
            free(txt);
        } else {
            char what[64];
            snprintf(what, sizeof what, "cluster_kwargs.hosts[%zu]", i);
            rc = parse_host(herd_as_str(h), &c->hosts[i], what, err);
        }
    }
    const herd_value *v = herd_map_get(kw, "n_workers");
    if (!rc) {
        int per = (int)herd_as_int(herd_map_get(kw, "workers_per_host"));
        c->n_workers = herd_typeof(v) == HERD_INT ? (int)herd_as_int(v) : per * (int)c->nh;
    }
    if (!rc) rc = read_worker(c, herd_map_get(kw, "worker_options"), err);
    if (!rc) rc = read_connect(c, herd_map_get(kw, "connect_options"), err);
    if (!rc) rc = read_env(c, herd_map_get(kw, "env"), err);
    if (!rc) {
        c->remote_command = dup_str(herd_map_get(kw, "remote_command"));
        c->upload = herd_as_bool(herd_map_get(kw, "upload"));
        c->upload_dir = dup_str(herd_map_get(kw, "upload_dir"));
        c->listen = dup_str(herd_map_get(kw, "listen_address"));
        c->start_timeout = herd_as_float(herd_map_get(kw, "start_timeout"));
        rc = str_list(herd_map_get(kw, "upload_files"), "cluster_kwargs.upload_files", &c->upload_files, err);
    }
    if (!rc && c->upload && c->remote_command)
        rc = herd_err_set(err, HERD_ECONFIG, "cluster_kwargs.remote_command: \"%s\" with upload: true; give one: "
                          "upload runs the copy it makes in upload_dir", c->remote_command);
    if (!rc && c->upload_files[0] && !c->upload)
        rc = herd_err_set(err, HERD_ECONFIG, "cluster_kwargs.upload_files: given with upload: false; set upload: true");
    if (!rc && (!c->upload_dir || !*c->upload_dir || strchr(c->upload_dir, '\n')))
        rc = herd_err_set(err, HERD_ECONFIG, "cluster_kwargs.upload_dir: expected a directory path");
    for (size_t i = 0; !rc && c->upload_files[i]; i++)
        if (access(c->upload_files[i], R_OK) != 0)
            rc = herd_err_set(err, HERD_ECONFIG, "cluster_kwargs.upload_files[%zu]: %s: %s", i, c->upload_files[i],
                              strerror(errno));
    if (!rc && c->remote_command && !*c->remote_command)
        rc = herd_err_set(err, HERD_ECONFIG, "cluster_kwargs.remote_command: expected a program path, got \"\"");
    v = herd_map_get(kw, "scheduler_host");
    if (!rc && herd_typeof(v) == HERD_STR) {
        if (!(c->sched = calloc(1, sizeof *c->sched))) rc = herd_err_set(err, -ENOMEM, "SSHCluster: out of memory");
        else {
            c->sched->ch.in = -1;
            rc = parse_host(herd_as_str(v), &c->sched->h, "cluster_kwargs.scheduler_host", err);
        }
    }
    if (!rc && c->listen) {
        if (strncmp(c->listen, "tcp://", 6) != 0 || !strrchr(c->listen + 6, ':'))
            rc = herd_err_set(err, HERD_ECONFIG, "cluster_kwargs.listen_address: expected tcp://HOST:PORT (port 0: "
                              "any), got \"%s\"", c->listen);
    }
    if (!rc) {
        v = herd_map_get(kw, "name");
        const char *name = herd_typeof(v) == HERD_NIL ? "ssh" : herd_as_str(v);
        if (!name || !valid_prefix(name))
            rc = herd_err_set(err, HERD_ECONFIG, "cluster_kwargs.name: expected 1 to 40 letters, digits, '_', '.' "
                              "or '-', got \"%s\"", name ? name : "?");
        else snprintf(c->prefix, sizeof c->prefix, "%s", name);
    }
    if (!rc && (rc = ssh_mon_new(&c->mon, err)))
        herd_err_prefix(err, "SSHCluster");
    if (rc) { cluster_free(c); return rc; }
    herd_log(env, HERD_LOG_DEBUG, "SSHCluster: %d workers x %d threads over %zu hosts", c->n_workers,
             c->nthreads, c->nh);
    *out = c;
    return 0;
}

/* ---- where the scheduler listens ---- */

/* The address ssh really connects to for h (aliases of ~/.ssh/config
 * resolved by `ssh -G`), as a sockaddr. */
static int resolve_host(herd_cluster *c, shost *h, struct sockaddr_storage *ss, socklen_t *len)
{
    char name[256];
    snprintf(name, sizeof name, "%s", h->host);
    const char *argv[12];
    int k = 0;
    argv[k++] = c->so.program;
    if (c->so.config_file) { argv[k++] = "-F"; argv[k++] = c->so.config_file; }
    argv[k++] = "-G";
    argv[k++] = "--";
    argv[k++] = h->host;
    argv[k] = NULL;
    char *out = malloc(65536), tail[200];
    herd_proc_exit st;
    if (out && ssh_run_ok(ssh_run((char *const *)argv, -1, NULL, out, 65536, tail, sizeof tail, 10, &st), &st)) {
        char *p = strstr(out, "\nhostname ");
        if (!p && strncmp(out, "hostname ", 9) == 0) p = out - 1;
        if (p) sscanf(p + 10, "%255s", name);
    }
    free(out);
    struct addrinfo hints = { .ai_socktype = SOCK_DGRAM }, *ai = NULL;
    if (getaddrinfo(name, "22", &hints, &ai) != 0 || !ai) return -1;
    memcpy(ss, ai->ai_addr, ai->ai_addrlen);
    *len = ai->ai_addrlen;
    freeaddrinfo(ai);
    return 0;
}

static bool is_loopback(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
    if (ss->ss_family == AF_INET6)
        return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)ss)->sin6_addr);
    return false;
}

/* This machine's address on the route to ss (no packet is sent). */
static int source_ip(const struct sockaddr_storage *ss, socklen_t len, char *out, size_t cap)
{
    int fd = socket(ss->ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct sockaddr_storage me;
    socklen_t ml = sizeof me;
    int rc = connect(fd, (const struct sockaddr *)ss, len) == 0 &&
             getsockname(fd, (struct sockaddr *)&me, &ml) == 0 ? 0 : -1;
    close(fd);
    if (rc) return -1;
    const void *a = me.ss_family == AF_INET ? (const void *)&((struct sockaddr_in *)&me)->sin_addr
                                            : (const void *)&((struct sockaddr_in6 *)&me)->sin6_addr;
    return inet_ntop(me.ss_family, a, out, (socklen_t)cap) ? 0 : -1;
}

static int sc_scheduler_listen(herd_cluster *c, char *out, size_t cap, herd_err *err)
{
    const char *given_host = NULL;
    char hostbuf[256] = "";
    if (c->listen) {
        const char *h = c->listen + 6, *colon = strrchr(h, ':');
        snprintf(hostbuf, sizeof hostbuf, "%.*s", (int)(colon - h), h);
        given_host = hostbuf;
        snprintf(out, cap, "%s", c->listen);
        if (strcmp(given_host, "0.0.0.0") != 0 && strcmp(given_host, "[::]") != 0) return 0;
    }
    /* each host's route back to us */
    char common[128] = "";
    bool all_loop = true, same = true;
    for (size_t i = 0; i < c->nh; i++) {
        shost *h = &c->hosts[i];
        struct sockaddr_storage ss;
        socklen_t len;
        if (resolve_host(c, h, &ss, &len) != 0) {   /* ssh will say why it cannot reach it */
            all_loop = false;
            continue;
        }
        if (is_loopback(&ss)) { snprintf(h->dial, sizeof h->dial, "127.0.0.1"); continue; }
        all_loop = false;
        char ip[INET6_ADDRSTRLEN];
        if (source_ip(&ss, len, ip, sizeof ip) != 0) continue;
        snprintf(h->dial, sizeof h->dial, strchr(ip, ':') ? "[%s]" : "%s", ip);
        if (!common[0]) snprintf(common, sizeof common, "%s", h->dial);
        else if (strcmp(common, h->dial) != 0) same = false;
    }
    /* what the hosts dial, for a TLS certificate (brackets off) */
    const char *names[65];
    char bare[64][128];
    size_t nn = 0;
    for (size_t i = 0; i < c->nh && nn < 64; i++) {
        const char *d = c->hosts[i].dial;
        if (!d[0]) continue;
        snprintf(bare[nn], sizeof bare[nn], "%.*s", (int)strcspn(d + (d[0] == '['), "]"), d + (d[0] == '['));
        bool dup = false;
        for (size_t j = 0; j < nn; j++) dup |= strcmp(bare[j], bare[nn]) == 0;
        if (!dup) { names[nn] = bare[nn]; nn++; }
    }
    names[nn] = NULL;
    int rc = herd_scheduler_names(c->env, names, err);
    if (rc) return rc;
    if (given_host) return 0;          /* 0.0.0.0 as asked; each host dials its route */
    if (all_loop) {
        for (size_t i = 0; i < c->nh; i++) c->hosts[i].dial[0] = '\0';
        snprintf(out, cap, "tcp://127.0.0.1:0");
    } else if (same && common[0]) {
        for (size_t i = 0; i < c->nh; i++) c->hosts[i].dial[0] = '\0';
        snprintf(out, cap, "tcp://%s:0", common);
    } else {
        snprintf(out, cap, "tcp://0.0.0.0:0");
    }
    herd_log(c->env, HERD_LOG_DEBUG, "SSHCluster: scheduler listens on %s", out);
    return 0;
}

/* ---- the monitor's callbacks ---- */

/* Worker w has ended (its exit line came, or its session ended): say how,
 * in its detail. Called with c->mu held. */
static void worker_end(sworker *w, const char *tail, const char *ssh_st)
{
    herd_cluster *c = w->c;
    if (w->ended) return;
    w->ended = true;
    if (w->counted) { w->h->live--; w->counted = false; }
    const char *host = w->h->spec;
    bool failed;
    if (!w->started) {
        failed = !w->expected;
        const char *why = w->s->error[0] ? w->s->error : *tail ? tail : ssh_st;
        snprintf(w->detail, sizeof w->detail, "%s: %s", host, why);
        if (failed && !w->h->dead) {
            w->h->dead = true;
            snprintf(w->h->why, sizeof w->h->why, "%s (%s)", why, ssh_st);
            herd_log(c->env, HERD_LOG_WARN, "SSHCluster: host %s cannot run workers: %s", host, w->h->why);
        }
    } else if (w->rexit_known) {
        int s = w->rexit;
        if (s > 128 && s < 128 + 65) {
            int sig = s - 128;
            const char *d = sigdescr_np(sig);
            bool ours = w->expected && (sig == SIGTERM || sig == SIGKILL);
            failed = !ours;
            snprintf(w->detail, sizeof w->detail, "pid %ld on %s killed by signal %d (%s)%s", w->rpid, host, sig,
                     d ? d : "?", ours ? " (retired)" : "");
        } else {
            failed = s != 0 && !w->expected;
            snprintf(w->detail, sizeof w->detail, "pid %ld on %s exited with status %d%s", w->rpid, host, s,
                     w->expected ? " (retired)" : "");
            /* the scheduler refused it (another protocol version, a wrong
             * token or certificate): the host's program will not do */
            if (s == WORKER_EXIT_REFUSED && failed && !w->h->dead) {
                w->h->dead = true;
                snprintf(w->h->why, sizeof w->h->why, "the scheduler refused its worker%s%s",
                         w->s->refusal[0] ? ": " : " (exit status 3)", w->s->refusal);
                herd_log(c->env, HERD_LOG_WARN, "SSHCluster: host %s cannot run workers: %s", host, w->h->why);
            }
        }
    } else {
        failed = !w->expected;
        snprintf(w->detail, sizeof w->detail, "pid %ld on %s: the ssh session ended (%s%s%s)%s", w->rpid, host,
                 ssh_st, *tail ? ": " : "", tail, w->expected ? " (retired)" : "");
    }
    w->state = failed ? HERD_WORKER_FAILED : HERD_WORKER_STOPPED;
    if (failed && w->started)
        herd_log(c->env, HERD_LOG_WARN, "SSHCluster: worker %s ended: %s", w->name, w->detail);
}

/* Pass on a line a remote process wrote: a herd log line ("HH:MM:SS.mmm |
 * LEVEL | text") keeps its level and loses its time stamp (ours is added);
 * anything else is INFO. */
static void relay(herd_cluster *c, const char *who, const char *line)
{
    static const struct { const char *name; int level; } lv[] = {
        { "DEBUG", HERD_LOG_DEBUG }, { "INFO", HERD_LOG_INFO }, { "WARNING", HERD_LOG_WARN }, { "ERROR", HERD_LOG_ERROR } };
    int level = HERD_LOG_INFO;
    const char *bar = strlen(line) > 15 && line[2] == ':' && line[8] == '.' ? strstr(line, " | ") : NULL;
    if (bar) {
        const char *name = bar + 3, *bar2 = strstr(name, " | ");
        for (size_t i = 0; bar2 && i < sizeof lv / sizeof *lv; i++)
            if (strncmp(name, lv[i].name, strlen(lv[i].name)) == 0) { level = lv[i].level; line = bar2 + 3; break; }
    }
    herd_log(c->env, level, "[%s] %s", who, line);
}

/* "I N" of a wrapper line: the worker of index I, N. */
static sworker *line_worker(ssess *s, const char *p, long *num)
{
    char *end;
    long i = strtol(p, &end, 10);
    if (end == p || *end != ' ' || i < 0 || (size_t)i >= s->nw) return NULL;
    *num = strtol(end + 1, NULL, 10);
    return s->w[i];
}

static void on_line(void *ud, const char *line, bool is_err)
{
    ssess *s = ud;
    herd_cluster *c = s->c;
    if (!is_err && strncmp(line, "herd-ssh-", 9) == 0) {
        pthread_mutex_lock(&c->mu);
        sworker *w;
        long num;
        if (strncmp(line, "herd-ssh-pid ", 13) == 0 && (w = line_worker(s, line + 13, &num))) {
            w->rpid = num;
            w->started = true;
            if (w->state == HERD_WORKER_STARTING) w->state = HERD_WORKER_RUNNING;
            snprintf(w->detail, sizeof w->detail, "pid %ld on %s, %d threads", w->rpid, w->h->spec, c->nthreads);
        } else if (strncmp(line, "herd-ssh-exit ", 14) == 0 && (w = line_worker(s, line + 14, &num))) {
            w->rexit_known = true;
            w->rexit = (int)num;
            worker_end(w, "", "");
            bool all = true;
            for (size_t i = 0; i < s->nw; i++) all &= s->w[i]->ended;
            if (all && s->ch.in >= 0) {          /* the wrapper has nothing left to run */
                close(s->ch.in);
                s->ch.in = -1;
                s->eof = true;
            }
        } else if (strncmp(line, "herd-ssh-error ", 15) == 0) {
            snprintf(s->error, sizeof s->error, "%s", line + 15);
        }
        pthread_cond_broadcast(&c->cv);
        pthread_mutex_unlock(&c->mu);
        return;
    }
    if (is_err && strstr(line, "refused this worker: ")) {
        pthread_mutex_lock(&c->mu);
        snprintf(s->refusal, sizeof s->refusal, "%s", strstr(line, "refused this worker: ") + 21);
        if (s->h->dead && strncmp(s->h->why, "the scheduler refused its worker", 32) == 0)
            snprintf(s->h->why, sizeof s->h->why, "the scheduler refused its worker: %s", s->refusal);
        pthread_mutex_unlock(&c->mu);
    }
    if (*line) {
        char who[400];
        if (s->nw == 1) snprintf(who, sizeof who, "%s@%s", s->w[0]->name, s->h->spec);
        else snprintf(who, sizeof who, "%s", s->h->spec);
        relay(c, who, line);
    }
}

/* "ssh exited with status 255" / "ssh killed by signal 9 (Killed)" */
static void ssh_status(const herd_proc_exit *ex, char *buf, size_t cap)
{
    char how[96];
    snprintf(buf, cap, "ssh %s", herd_proc_describe(ex, how, sizeof how));
}

static void on_exit_(void *ud, const herd_proc_exit *status, const char *tail)
{
    ssess *s = ud;
    herd_cluster *c = s->c;
    pthread_mutex_lock(&c->mu);
    s->ended = true;
    if (s->ch.in >= 0) { close(s->ch.in); s->ch.in = -1; }
    char ssh_st[64];
    ssh_status(status, ssh_st, sizeof ssh_st);
    for (size_t i = 0; i < s->nw; i++) worker_end(s->w[i], tail, ssh_st);
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

/* ---- starting workers ---- */

static sworker *add_worker(herd_cluster *c, shost *h)
{
    if (c->nw == c->capw) {
        size_t cap = c->capw ? 2 * c->capw : 8;
        sworker **n = realloc(c->w, cap * sizeof *n);
        if (!n) return NULL;
        c->w = n;
        c->capw = cap;
    }
    sworker *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    snprintf(w->name, sizeof w->name, "%s-%lu", c->prefix, c->next_id++);
    w->c = c;
    w->h = h;
    w->state = HERD_WORKER_STARTING;
    w->counted = true;
    h->live++;
    c->w[c->nw++] = w;
    return w;
}

/* The least loaded host that works (earlier hosts first on ties). */
static shost *pick_host(herd_cluster *c)
{
    shost *best = NULL;
    for (size_t i = 0; i < c->nh; i++)
        if (!c->hosts[i].dead && (!best || c->hosts[i].live < best->live)) best = &c->hosts[i];
    return best;
}

/* The scheduler address as host h must dial it. */
static void address_for(herd_cluster *c, const shost *h, const char *addr, char *out, size_t cap)
{
    snprintf(out, cap, "%s", addr);
    if (!h->dial[0] || strncmp(addr, "unix://", 7) == 0) return;
    const char *sep = strstr(addr, "://");
    const char *colon = strrchr(addr, ':');
    if (!sep || !colon || colon < sep + 3) return;
    snprintf(out, cap, "%.*s%s%s", (int)(sep + 3 - addr), addr, h->dial, colon);
    (void)c;
}

/* What the wrapper reads from stdin: the environment, then SSH_GO. */
static char *env_script(herd_cluster *c, const shost *h)
{
    char *b = NULL;
    size_t len = 0, cap = 0;
    int rc = 0;
    for (const char *const *e = c->env->worker_envp; !rc && e && *e; e++) {
        if (strncmp(*e, "HERD_SCHEDULER_ADDRESS=", 23) == 0) {
            char a[600], kv[640];
            address_for(c, h, *e + 23, a, sizeof a);
            snprintf(kv, sizeof kv, "HERD_SCHEDULER_ADDRESS=%s", a);
            rc = ssh_env_line(&b, &len, &cap, kv);
        } else {
            rc = ssh_env_line(&b, &len, &cap, *e);
        }
    }
    for (char **e = c->extra_env; !rc && e && *e; e++) rc = ssh_env_line(&b, &len, &cap, *e);
    if (!rc) rc = ssh_expect_lines(&b, &len, &cap);
    if (!rc && h->plugin_dir[0]) {
        char *kv = NULL;
        /* relative to the remote home: made absolute there */
        if (asprintf(&kv, "HERD_PLUGIN_PATH=%s", h->plugin_dir) < 0) rc = -ENOMEM;
        else {
            rc = ssh_env_line(&b, &len, &cap, kv);
            free(kv);
            if (!rc && h->plugin_dir[0] != '/') {
                const char *fix = "case $HERD_PLUGIN_PATH in /*) ;; *) HERD_PLUGIN_PATH=$(pwd)/$HERD_PLUGIN_PATH ;; esac\n";
                char *nb = realloc(b, len + strlen(fix) + 1);
                if (!nb) rc = -ENOMEM;
                else { b = nb; memcpy(b + len, fix, strlen(fix) + 1); len += strlen(fix); cap = len + 1; }
            }
        }
    }
    if (!rc) {
        char *nb = realloc(b, len + sizeof SSH_GO + 2);
        if (!nb) rc = -ENOMEM;
        else { b = nb; len += (size_t)sprintf(b + len, "%s\n", SSH_GO); }
    }
    if (rc) { free(b); return NULL; }
    return b;
}

/* ---- upload ---- */

typedef struct prep { herd_cluster *c; shost *h; pthread_t th; int rc; char msg[400]; } prep;

static void *prepare_host(void *arg)
{
    prep *p = arg;
    herd_cluster *c = p->c;
    shost *h = p->h;
    const char *prog = c->env->worker_argv[0];
    const char *local[64], *names[64];
    char *owned[64];
    size_t n = 0, no = 0;
    const char *base = strrchr(prog, '/') ? strrchr(prog, '/') + 1 : prog;
    char *nm;
    if (asprintf(&nm, "bin/%s", base) < 0) { p->rc = -ENOMEM; return NULL; }
    owned[no++] = nm;
    local[n] = prog; names[n++] = nm;
    /* libherd.so, when the program links it dynamically: bin/../lib is on
     * its rpath ($ORIGIN/../lib, as in the build tree) */
    Dl_info di;
    char exe[PATH_MAX], lib[PATH_MAX];
    ssize_t el = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[el > 0 ? el : 0] = '\0';
    if (dladdr((void *)&herd_log, &di) && di.dli_fname && realpath(di.dli_fname, lib) && strcmp(lib, exe) != 0) {
        const char *lb = strrchr(di.dli_fname, '/') ? strrchr(di.dli_fname, '/') + 1 : di.dli_fname;
        if (asprintf(&nm, "lib/%s", lb) >= 0) { owned[no++] = nm; local[n] = di.dli_fname; names[n++] = nm; }
    }
    for (char **f = c->upload_files; f && *f && n < 64; f++) {
        const char *b = strrchr(*f, '/') ? strrchr(*f, '/') + 1 : *f;
        if (asprintf(&nm, "plugins/%s", b) >= 0) { owned[no++] = nm; local[n] = *f; names[n++] = nm; }
    }
    int copied = 0, skipped = 0;
    p->rc = ssh_upload(&c->so, h->host, h->user[0] ? h->user : NULL, h->port, c->upload_dir, local, names, n,
                       &copied, &skipped, c->env, p->msg, sizeof p->msg);
    if (!p->rc) {
        snprintf(h->prog, sizeof h->prog, "%s/%s", c->upload_dir, names[0]);
        if (c->upload_files[0]) snprintf(h->plugin_dir, sizeof h->plugin_dir, "%s/plugins", c->upload_dir);
        herd_log(c->env, HERD_LOG_INFO, "SSHCluster: %s: upload: %d file%s copied, %d up to date", h->spec,
                 copied, copied == 1 ? "" : "s", skipped);
    }
    for (size_t i = 0; i < no; i++) free(owned[i]);
    return NULL;
}

/* Upload to the hosts that need it, in parallel; hosts that fail are dead. */
static void prepare_hosts(herd_cluster *c)
{
    prep *ps = calloc(c->nh, sizeof *ps);
    if (!ps) return;
    size_t k = 0;
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < c->nh; i++) {
        shost *h = &c->hosts[i];
        if (h->prepared || h->dead || h->live == 0) continue;
        if (!c->upload) {
            snprintf(h->prog, sizeof h->prog, "%s", c->remote_command ? c->remote_command : c->env->worker_argv[0]);
            h->prepared = true;
            continue;
        }
        ps[k].c = c;
        ps[k].h = h;
        k++;
    }
    pthread_mutex_unlock(&c->mu);
    for (size_t i = 0; i < k; i++)
        if (pthread_create(&ps[i].th, NULL, prepare_host, &ps[i]) != 0) { prepare_host(&ps[i]); ps[i].th = 0; }
    for (size_t i = 0; i < k; i++) {
        if (ps[i].th) pthread_join(ps[i].th, NULL);
        pthread_mutex_lock(&c->mu);
        if (ps[i].rc) {
            ps[i].h->dead = true;
            snprintf(ps[i].h->why, sizeof ps[i].h->why, "upload: %s", ps[i].msg);
        } else {
            ps[i].h->prepared = true;
        }
        pthread_mutex_unlock(&c->mu);
    }
    free(ps);
}

/* Put the workers of batch[from..k) that go to host h (up to
 * SSH_SESSION_MAX, not yet in a session) into a new session. Lock held. */
static ssess *new_session(herd_cluster *c, shost *h, sworker **batch, size_t from, size_t k)
{
    ssess *s = calloc(1, sizeof *s);
    if (s) s->w = calloc(k - from, sizeof *s->w);
    if (!s || !s->w) { if (s) free(s); return NULL; }
    s->c = c;
    s->h = h;
    s->ch.in = -1;
    for (size_t i = from; i < k && s->nw < SSH_SESSION_MAX; i++)
        if (batch[i]->h == h && !batch[i]->s && !batch[i]->ended) {
            batch[i]->s = s;
            batch[i]->idx = (int)s->nw;
            s->w[s->nw++] = batch[i];
        }
    s->next = c->sess;
    c->sess = s;
    return s;
}

/* Write s's environment script (which ends with SSH_GO) into its stdin:
 * the wrapper starts the workers. A session that died meanwhile reports
 * its end through on_exit_ as usual. No lock held. */
static void feed_session(herd_cluster *c, ssess *s)
{
    char *script = env_script(c, s->h);
    pthread_mutex_lock(&c->mu);
    s->unfed = false;
    int rc = script ? ssh_child_send(&s->ch, script) : -ENOMEM;
    if (rc == -ENOMEM && s->ch.in >= 0) {   /* the wrapper ends at once; its workers fail now */
        snprintf(s->error, sizeof s->error, "out of memory for the workers' environment");
        close(s->ch.in);
        s->ch.in = -1;
        s->eof = true;
    }
    pthread_mutex_unlock(&c->mu);
    if (rc && rc != -EPIPE)
        herd_log(c->env, HERD_LOG_WARN, "SSHCluster: %s: cannot send the workers' environment: %s", s->h->spec,
                 strerror(-rc));
    if (script) { memset(script, 0, strlen(script)); free(script); }   /* it holds the token */
}

/* Start the ssh session of s: one login for all its workers; no lock held.
 * feed: write the environment now; else the session waits for feed_session
 * (the login overlaps the scheduler's start). */
static int spawn_session(herd_cluster *c, ssess *s, bool feed, herd_err *err)
{
    char ***argvs = calloc(s->nw, sizeof *argvs);
    char **sargv = NULL, *cmd = NULL, *script = NULL;
    int rc = argvs ? 0 : herd_err_set(err, -ENOMEM, "SSHCluster: out of memory");
    for (size_t i = 0; !rc && i < s->nw; i++) {
        herd_worker_spec spec = { .name = s->w[i]->name, .nthreads = c->nthreads, .resources = c->resources,
                                  .memory_limit = c->memory_limit };
        if ((rc = herd_worker_argv(c->env, &spec, &argvs[i], err))) break;
        free(argvs[i][0]);
        if (!(argvs[i][0] = strdup(s->h->prog))) rc = herd_err_set(err, -ENOMEM, "SSHCluster: out of memory");
    }
    if (!rc) {
        script = feed ? env_script(c, s->h) : NULL;
        cmd = ssh_wrapper_cmd(argvs, s->nw);
        if (cmd) sargv = ssh_argv(&c->so, s->h->host, s->h->user[0] ? s->h->user : NULL, s->h->port, cmd);
        if ((feed && !script) || !cmd || !sargv) rc = herd_err_set(err, -ENOMEM, "SSHCluster: out of memory");
    }
    if (!rc) {
        s->ch.on_line = on_line;
        s->ch.on_exit = on_exit_;
        s->ch.ud = s;
        s->unfed = !feed;
        char msg[300];
        rc = ssh_mon_spawn(c->mon, sargv, script, script ? strlen(script) : 0, &s->ch, msg, sizeof msg);
        if (rc) rc = herd_err_set(err, rc, "SSHCluster: %zu worker%s on %s: %s", s->nw, s->nw == 1 ? "" : "s",
                                  s->h->spec, msg);
    }
    pthread_mutex_lock(&c->mu);
    if (rc) {
        s->ended = true;
        for (size_t i = 0; i < s->nw; i++) {
            sworker *w = s->w[i];
            w->state = HERD_WORKER_FAILED;
            w->ended = true;
            if (w->counted) { w->h->live--; w->counted = false; }
            snprintf(w->detail, sizeof w->detail, "%.159s", err ? err->msg : "cannot start ssh");
        }
    } else {
        s->spawned = true;
        for (size_t i = 0; i < s->nw; i++) s->w[i]->spawned = true;
    }
    pthread_mutex_unlock(&c->mu);
    if (script) { memset(script, 0, strlen(script)); free(script); }   /* it holds the token */
    free(cmd);
    for (size_t i = 0; argvs && i < s->nw; i++) herd_strv_free(argvs[i]);
    free(argvs);
    herd_strv_free(sargv);
    return rc;
}

/* Start n workers: place them, upload where needed, start them all (one ssh
 * session per host), wait until each runs or fails. Workers that fail
 * before running mark their host dead and are placed again on the others. */
static int scale(herd_cluster *c, int n, herd_err *err)
{
    pthread_mutex_lock(&c->scale_mu);
    pthread_mutex_lock(&c->mu);
    c->scaling++;
    pthread_mutex_unlock(&c->mu);
    int rc = 0, running = 0, want = n;
    sworker **batch = calloc(n > 0 ? (size_t)n : 1, sizeof *batch);
    if (!batch) rc = herd_err_set(err, -ENOMEM, "SSHCluster: out of memory");
    bool adopt = true;
    while (!rc && want > 0) {
        size_t k = 0;
        pthread_mutex_lock(&c->mu);
        if (c->closing) { pthread_mutex_unlock(&c->mu); break; }
        /* first, the workers prewarm placed and whose sessions are logging in */
        for (size_t i = 0; adopt && i < c->nw && (int)k < want; i++)
            if (c->w[i]->s && c->w[i]->s->unfed && !c->w[i]->ended) batch[k++] = c->w[i];
        adopt = false;
        for (int i = (int)k; i < want; i++) {
            shost *h = pick_host(c);
            if (!h) break;
            if (!(batch[k] = add_worker(c, h))) { rc = herd_err_set(err, -ENOMEM, "SSHCluster: out of memory"); break; }
            k++;
        }
        pthread_mutex_unlock(&c->mu);
        if (rc || k == 0) break;
        prepare_hosts(c);
        for (size_t i = 0; i < k && !rc; i++) {
            pthread_mutex_lock(&c->mu);
            sworker *w = batch[i];
            ssess *s = NULL;
            if (w->h->dead) {
                w->state = HERD_WORKER_FAILED;
                w->ended = true;
                if (w->counted) { w->h->live--; w->counted = false; }
                snprintf(w->detail, sizeof w->detail, "%s: %.140s", w->h->spec, w->h->why);
            } else if (w->s && w->s->unfed) {
                s = w->s;                        /* prewarmed: its login may be done already */
            } else if (!w->s && !w->ended && !(s = new_session(c, w->h, batch, i, k))) {
                rc = herd_err_set(err, -ENOMEM, "SSHCluster: out of memory");
            }
            bool prewarmed = s && s->unfed;
            pthread_mutex_unlock(&c->mu);
            if (prewarmed) feed_session(c, s);
            else if (s) rc = spawn_session(c, s, true, err);   /* the ssh program itself is missing */
        }
        /* wait for each to run or fail */
        struct timespec ts;
        herd_deadline(c->start_timeout, &ts);
        pthread_mutex_lock(&c->mu);
        for (;;) {
            bool waiting = false;
            for (size_t i = 0; i < k; i++)
                if (batch[i]->spawned && !batch[i]->started && !batch[i]->ended) waiting = true;
            if (!waiting || c->closing) break;
            if (pthread_cond_timedwait(&c->cv, &c->mu, &ts) == ETIMEDOUT) {
                for (size_t i = 0; i < k; i++) {
                    ssess *s = batch[i]->s;
                    if (batch[i]->spawned && !batch[i]->started && !batch[i]->ended && !s->ended) {
                        if (!s->error[0])
                            snprintf(s->error, sizeof s->error, "not running after %.3gs (start_timeout)",
                                     c->start_timeout);
                        herd_proc_signal(s->ch.proc, SIGKILL);
                    }
                }
                herd_deadline(10, &ts);   /* the monitor reaps them now */
            }
        }
        int ok = 0;
        for (size_t i = 0; i < k; i++) ok += batch[i]->started && !batch[i]->ended;
        pthread_mutex_unlock(&c->mu);
        running += ok;
        want -= ok;
        if (ok == 0 && rc == 0) {
            pthread_mutex_lock(&c->mu);
            bool any = pick_host(c) != NULL;
            pthread_mutex_unlock(&c->mu);
            if (!any) break;
        }
    }
    free(batch);
    /* every dead host is reported; none working is an error */
    char why[1200] = "";
    size_t wl = 0;
    int ndead = 0;
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < c->nh; i++)
        if (c->hosts[i].dead) {
            ndead++;
            if (wl < sizeof why - 1)
                wl += (size_t)snprintf(why + wl, sizeof why - wl, "%s%s: %s", wl ? "; " : "", c->hosts[i].spec,
                                       c->hosts[i].why);
        }
    bool closing = c->closing;
    c->scaling--;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    if (!rc && closing && want > 0)
        rc = herd_err_set(err, HERD_ECLOSED, "SSHCluster: closed while starting workers");
    else if (!rc && want > 0 && running == 0)
        rc = herd_err_set(err, HERD_EPROVIDER, "SSHCluster: no host could start a worker: %s", why);
    else if (!rc && want > 0)
        herd_log(c->env, HERD_LOG_WARN, "SSHCluster: started %d of %d workers; failed hosts: %s", running, n, why);
    else if (!rc && ndead)
        herd_log(c->env, HERD_LOG_WARN, "SSHCluster: started %d workers on the other hosts; failed hosts: %s",
                 running, why);
    if (!rc)
        herd_log(c->env, HERD_LOG_INFO, "SSHCluster: %d worker%s running", running, running == 1 ? "" : "s");
    pthread_mutex_unlock(&c->scale_mu);
    return rc;
}

static int sc_scale_up(herd_cluster *c, int n, herd_err *err)
{
    if (n < 0) return herd_err_set(err, HERD_EARG, "SSHCluster scale_up: n = %d, expected >= 0", n);
    return n ? scale(c, n, err) : 0;
}

static int sc_start(herd_cluster *c, herd_err *err) { return c->n_workers ? scale(c, c->n_workers, err) : 0; }

/* ---- the scheduler on scheduler_host ---- */

static void sched_line(void *ud, const char *line, bool is_err)
{
    herd_cluster *c = ud;
    ssched *s = c->sched;
    pthread_mutex_lock(&c->mu);
    if (!is_err && strncmp(line, SCHED_AT, strlen(SCHED_AT)) == 0) {
        snprintf(s->addr, sizeof s->addr, "%s", line + strlen(SCHED_AT));
    } else if (!is_err && strncmp(line, "herd-ssh-pid 0 ", 15) == 0) {
        s->rpid = strtol(line + 15, NULL, 10);
    } else if (!is_err && strncmp(line, "herd-ssh-exit 0 ", 16) == 0) {
        s->rexit_known = true;
        s->rexit = (int)strtol(line + 16, NULL, 10);
        if (s->ch.in >= 0) { close(s->ch.in); s->ch.in = -1; s->eof = true; }
    } else if (!is_err && strncmp(line, "herd-ssh-error ", 15) == 0) {
        snprintf(s->error, sizeof s->error, "%s", line + 15);
    } else if (is_err && *line) {
        snprintf(s->lasterr, sizeof s->lasterr, "%s", line);
    }
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    if (*line && (is_err || strncmp(line, "herd-", 5) != 0)) {
        char who[300];
        snprintf(who, sizeof who, "scheduler@%s", s->h.spec);
        relay(c, who, line);
    }
}

static void sched_exit(void *ud, const herd_proc_exit *status, const char *tail)
{
    herd_cluster *c = ud;
    ssched *s = c->sched;
    pthread_mutex_lock(&c->mu);
    s->ended = true;
    if (s->ch.in >= 0) { close(s->ch.in); s->ch.in = -1; }
    if (*tail && !s->lasterr[0]) snprintf(s->lasterr, sizeof s->lasterr, "%s", tail);
    if (!s->error[0]) ssh_status(status, s->error, sizeof s->error);
    bool closing = c->closing || !s->addr[0];   /* a failed start is reported by start_scheduler */
    char why[700];
    snprintf(why, sizeof why, "%s%s%s", s->error, s->lasterr[0] ? ": " : "", s->lasterr);
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    if (!closing) herd_log(c->env, HERD_LOG_WARN, "SSHCluster: the scheduler on %s ended: %s", s->h.spec, why);
}

/* The address of the host as the client dials it: what ssh resolves its
 * name to (~/.ssh/config's HostName included), else the name itself. */
static void dial_name(herd_cluster *c, shost *h, char *out, size_t cap)
{
    struct sockaddr_storage ss;
    socklen_t len;
    char ip[INET6_ADDRSTRLEN];
    snprintf(out, cap, "%s", h->host);
    if (resolve_host(c, h, &ss, &len) != 0) return;
    const void *a = ss.ss_family == AF_INET ? (const void *)&((struct sockaddr_in *)&ss)->sin_addr
                                            : (const void *)&((struct sockaddr_in6 *)&ss)->sin6_addr;
    if (inet_ntop(ss.ss_family, a, ip, sizeof ip)) snprintf(out, cap, "%s", ip);
}

/* While the scheduler starts on its host: place the initial workers and
 * open their ssh sessions, whose logins then overlap the scheduler's; they
 * wait for their environment (the scheduler's address), which start's
 * scale writes. A failure here is left for scale to find and report. */
static void prewarm(herd_cluster *c)
{
    int n = c->n_workers;
    sworker **batch = n > 0 ? calloc((size_t)n, sizeof *batch) : NULL;
    if (!batch) return;
    pthread_mutex_lock(&c->scale_mu);
    size_t k = 0;
    pthread_mutex_lock(&c->mu);
    for (int i = 0; i < n; i++) {
        shost *h = pick_host(c);
        if (!h || !(batch[k] = add_worker(c, h))) break;
        k++;
    }
    pthread_mutex_unlock(&c->mu);
    prepare_hosts(c);
    for (size_t i = 0; i < k; i++) {
        pthread_mutex_lock(&c->mu);
        sworker *w = batch[i];
        ssess *s = NULL;
        if (w->h->dead) {                     /* the upload failed: scale reports it */
            w->state = HERD_WORKER_FAILED;
            w->ended = true;
            if (w->counted) { w->h->live--; w->counted = false; }
            snprintf(w->detail, sizeof w->detail, "%s: %.140s", w->h->spec, w->h->why);
        } else if (!w->s) {
            s = new_session(c, w->h, batch, i, k);
        }
        pthread_mutex_unlock(&c->mu);
        herd_err e = { 0 };
        if (s) spawn_session(c, s, false, &e);
    }
    pthread_mutex_unlock(&c->scale_mu);
    free(batch);
}

static int sc_start_scheduler(herd_cluster *c, char *out, size_t cap, herd_err *err)
{
    out[0] = '\0';
    ssched *s = c->sched;
    if (!s) return 0;                   /* the scheduler runs in the client process */
    shost *h = &s->h;
    const char *listen = c->listen ? c->listen : "tcp://0.0.0.0:0";
    dial_name(c, h, s->dial, sizeof s->dial);
    if (c->upload) {
        prep p = { .c = c, .h = h };
        prepare_host(&p);
        if (p.rc) return herd_err_set(err, HERD_EPROVIDER, "SSHCluster: scheduler_host %s: upload: %s", h->spec, p.msg);
    } else {
        snprintf(h->prog, sizeof h->prog, "%s", c->remote_command ? c->remote_command : c->env->worker_argv[0]);
    }
    char **argv = NULL, **envp = NULL, **sargv = NULL, *cmd = NULL, *script = NULL;
    size_t len = 0, scap = 0;
    const char *names[3] = { s->dial, strcmp(s->dial, h->host) ? h->host : NULL, NULL };
    int rc = herd_scheduler_argv(c->env, listen, &argv, err);
    if (!rc) rc = herd_scheduler_envp(c->env, names, &envp, err);
    if (!rc) {
        free(argv[0]);
        if (!(argv[0] = strdup(h->prog))) rc = herd_err_set(err, -ENOMEM, "SSHCluster: out of memory");
    }
    for (char **e = envp; !rc && e && *e; e++) rc = ssh_env_line(&script, &len, &scap, *e) ? -ENOMEM : 0;
    for (char **e = c->extra_env; !rc && e && *e; e++) rc = ssh_env_line(&script, &len, &scap, *e) ? -ENOMEM : 0;
    if (!rc) rc = ssh_expect_lines(&script, &len, &scap) ? -ENOMEM : 0;
    if (!rc) {
        char *nb = realloc(script, len + sizeof SSH_GO + 2);
        if (!nb) rc = -ENOMEM;
        else { script = nb; len += (size_t)sprintf(script + len, "%s\n", SSH_GO); }
    }
    if (!rc) {
        char **const one[1] = { argv };
        cmd = ssh_wrapper_cmd(one, 1);
        if (cmd) sargv = ssh_argv(&c->so, h->host, h->user[0] ? h->user : NULL, h->port, cmd);
        if (!cmd || !sargv) rc = -ENOMEM;
    }
    if (rc == -ENOMEM) herd_err_set(err, rc, "SSHCluster: out of memory");
    if (!rc) {
        s->ch.on_line = sched_line;
        s->ch.on_exit = sched_exit;
        s->ch.ud = c;
        char msg[300];
        if ((rc = ssh_mon_spawn(c->mon, sargv, script, len, &s->ch, msg, sizeof msg)))
            herd_err_set(err, rc, "SSHCluster: the scheduler on %s: %s", h->spec, msg);
        else s->spawned = true;
    }
    if (script) { memset(script, 0, len); free(script); }   /* it holds the token and TLS key */
    herd_envp_free(envp);
    herd_strv_free(argv);
    herd_strv_free(sargv);
    free(cmd);
    if (rc) return rc;
    prewarm(c);

    /* wait for its address, or its end */
    struct timespec ts;
    herd_deadline(c->start_timeout, &ts);
    pthread_mutex_lock(&c->mu);
    while (!s->addr[0] && !s->ended)
        if (pthread_cond_timedwait(&c->cv, &c->mu, &ts) == ETIMEDOUT) {
            snprintf(s->error, sizeof s->error, "no address after %.3gs (start_timeout)", c->start_timeout);
            herd_proc_signal(s->ch.proc, SIGKILL);
            herd_deadline(10, &ts);       /* the monitor reaps it now */
            while (!s->ended && pthread_cond_timedwait(&c->cv, &c->mu, &ts) != ETIMEDOUT) {}
            break;
        }
    char got[300], why[700];
    snprintf(got, sizeof got, "%s", s->addr);
    snprintf(why, sizeof why, "%s%s%s", s->error, s->lasterr[0] ? ": " : "", s->lasterr);
    pthread_mutex_unlock(&c->mu);
    if (!got[0])
        return herd_err_set(err, HERD_EPROVIDER, "SSHCluster: cannot start the scheduler on %s: %s", h->spec, why);
    /* scheme://0.0.0.0:PORT -> scheme://<dial>:PORT; an address of its own
     * (listen_address named one) stays */
    const char *sep = strstr(got, "://"), *colon = strrchr(got, ':');
    if (!sep || !colon || colon < sep + 3)
        return herd_err_set(err, HERD_EPROVIDER, "SSHCluster: the scheduler on %s printed \"%s\", expected "
                            "tcp://HOST:PORT", h->spec, got);
    char ghost[128];
    snprintf(ghost, sizeof ghost, "%.*s", (int)(colon - sep - 3), sep + 3);
    if (strcmp(ghost, "0.0.0.0") && strcmp(ghost, "[::]") && strcmp(ghost, "::") && strcmp(ghost, "127.0.0.1"))
        snprintf(out, cap, "%s", got);
    else
        snprintf(out, cap, strchr(s->dial, ':') ? "%.*s[%s]%s" : "%.*s%s%s", (int)(sep + 3 - got), got, s->dial,
                 colon);
    herd_log(c->env, HERD_LOG_INFO, "SSHCluster: scheduler running on %s (pid %ld), at %s", h->spec, s->rpid, out);
    return 0;
}

/* After the workers: end the scheduler's session (the wrapper stops it),
 * then kill ssh, then kill the remote pid over a new session when its end
 * was not seen. */
static void stop_scheduler(herd_cluster *c)
{
    ssched *s = c->sched;
    if (!s || !s->spawned) return;
    pthread_mutex_lock(&c->mu);
    if (s->ch.in >= 0) { close(s->ch.in); s->ch.in = -1; }
    s->eof = true;
    struct timespec ts;
    herd_deadline(STOP_GRACE_S, &ts);
    while (!s->ended && pthread_cond_timedwait(&c->cv, &c->mu, &ts) != ETIMEDOUT) {}
    if (!s->ended) {                     /* ssh itself: SIGTERM, 1 s, SIGKILL */
        pthread_mutex_unlock(&c->mu);
        herd_proc_stop(&s->ch.proc, 1, 1.0, NULL);
        pthread_mutex_lock(&c->mu);
        herd_deadline(10, &ts);          /* the monitor reports the end now */
        while (!s->ended && pthread_cond_timedwait(&c->cv, &c->mu, &ts) != ETIMEDOUT) {}
    }
    bool sure = s->rexit_known || s->rpid <= 0;
    long pid = s->rpid;
    pthread_mutex_unlock(&c->mu);
    if (sure) return;
    char *cmd = NULL;
    if (asprintf(&cmd, "c=$(tr '\\000' ' ' < /proc/%ld/cmdline 2>/dev/null) || exit 0; "
                 "case \"$c \" in *\" --herd-scheduler \"*) kill -KILL %ld && echo \"herd-ssh-killed %ld\";; esac",
                 pid, pid, pid) < 0) return;
    char **argv = ssh_argv(&c->so, s->h.host, s->h.user[0] ? s->h.user : NULL, s->h.port, cmd);
    free(cmd);
    if (!argv) return;
    char out[256], tail[320];
    herd_proc_exit st;
    int rc = ssh_run(argv, -1, NULL, out, sizeof out, tail, sizeof tail, c->so.connect_timeout + 5, &st);
    if (!ssh_run_ok(rc, &st))
        herd_log(c->env, HERD_LOG_WARN, "SSHCluster: %s: could not make sure the scheduler (pid %ld) stopped: %s",
                 s->h.spec, pid, *tail ? tail : rc ? strerror(-rc) : "ssh failed");
    else if (out[0])
        herd_log(c->env, HERD_LOG_INFO, "SSHCluster: %s: killed the scheduler left behind: %s", s->h.spec, out);
    herd_strv_free(argv);
}

/* ---- stopping ---- */

static bool all_ended(sworker **ws, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (ws[i]->spawned && !ws[i]->ended) return false;
    return true;
}

static void wait_ended(herd_cluster *c, sworker **ws, size_t n, double secs)
{
    struct timespec ts;
    herd_deadline(secs, &ts);
    while (!all_ended(ws, n))
        if (pthread_cond_timedwait(&c->cv, &c->mu, &ts) == ETIMEDOUT) break;
}

static bool among(sworker *const *ws, size_t n, const sworker *w)
{
    for (size_t i = 0; i < n; i++)
        if (ws[i] == w) return true;
    return false;
}

/* Stop ws: a session all of whose running workers stop gets its stdin
 * closed (the wrapper stops them all: SIGTERM, SIGKILL 3 s later), one that
 * keeps others gets "stop I" lines; wait; kill what is left of the sessions
 * that were ending anyway; and for workers whose end was not reported kill
 * the remote pid over a new session. */
static void stop_workers(herd_cluster *c, sworker **ws, size_t n)
{
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < n; i++) ws[i]->expected = true;
    for (ssess *s = c->sess; s; s = s->next) {
        if (!s->spawned || s->ended) continue;
        bool mine = false, whole = true;
        for (size_t i = 0; i < s->nw; i++) {
            if (s->w[i]->ended) continue;
            if (among(ws, n, s->w[i])) mine = true;
            else if (!s->w[i]->expected) whole = false;
        }
        if (!mine) continue;
        if (whole) {
            if (s->ch.in >= 0) { close(s->ch.in); s->ch.in = -1; }
            s->eof = true;
            continue;
        }
        for (size_t i = 0; i < s->nw; i++)
            if (!s->w[i]->ended && among(ws, n, s->w[i])) {
                char msg[32];
                snprintf(msg, sizeof msg, "stop %d\n", s->w[i]->idx);
                if (ssh_child_send(&s->ch, msg) != 0)
                    herd_log(c->env, HERD_LOG_DEBUG, "SSHCluster: %s: cannot ask the session to stop %s",
                             s->h->spec, s->w[i]->name);
            }
    }
    wait_ended(c, ws, n, STOP_GRACE_S);
    if (!all_ended(ws, n)) {
        /* the ssh of the sessions that were ending anyway and still hold
         * some of ws: SIGTERM, 1 s, SIGKILL */
        size_t k = 0, cap = 0;
        herd_proc **ps = NULL;
        for (ssess *s = c->sess; s; s = s->next) {
            if (!s->spawned || s->ended || !s->eof) continue;
            bool hold = false;
            for (size_t i = 0; i < s->nw; i++) hold |= !s->w[i]->ended && among(ws, n, s->w[i]);
            if (!hold) continue;
            if (k == cap) {
                herd_proc **nps = realloc(ps, (cap = cap ? 2 * cap : 8) * sizeof *ps);
                if (!nps) break;
                ps = nps;
            }
            ps[k++] = s->ch.proc;
        }
        pthread_mutex_unlock(&c->mu);
        herd_proc_stop(ps, k, 1.0, NULL);
        free(ps);
        pthread_mutex_lock(&c->mu);
        wait_ended(c, ws, n, 10);         /* the monitor reports the ends now */
    }
    pthread_mutex_unlock(&c->mu);

    for (size_t hi = 0; hi < c->nh; hi++) {
        shost *h = &c->hosts[hi];
        char *cmd = NULL;
        size_t len = 0;
        int count = 0;
        pthread_mutex_lock(&c->mu);
        for (size_t i = 0; i < n; i++) {
            sworker *w = ws[i];
            if (w->h != h || !w->started || w->rexit_known || w->rpid <= 0) continue;
            char item[128];
            snprintf(item, sizeof item, " '%ld %s'", w->rpid, w->name);
            size_t il = strlen(item);
            char *nc = realloc(cmd, len + il + 1);
            if (!nc) continue;
            cmd = nc;
            memcpy(cmd + len, item, il + 1);
            len += il;
            count++;
        }
        pthread_mutex_unlock(&c->mu);
        if (!count) { free(cmd); continue; }
        /* only a process whose command line names that worker is killed */
        char *full = NULL;
        if (asprintf(&full, "for e in%s; do p=${e%%%% *}; n=${e#* }; "
                     "c=$(tr '\\000' ' ' < /proc/$p/cmdline 2>/dev/null) || continue; "
                     "case \"$c \" in *\" --herd-name $n \"*) kill -KILL $p && echo \"herd-ssh-killed $p\";; esac; done",
                     cmd) < 0) full = NULL;
        free(cmd);
        char **argv = full ? ssh_argv(&c->so, h->host, h->user[0] ? h->user : NULL, h->port, full) : NULL;
        free(full);
        if (argv) {
            char out[1024], tail[320];
            herd_proc_exit st;
            int rc = ssh_run(argv, -1, NULL, out, sizeof out, tail, sizeof tail, c->so.connect_timeout + 5, &st);
            if (!ssh_run_ok(rc, &st))
                herd_log(c->env, HERD_LOG_WARN, "SSHCluster: %s: could not make sure %d worker%s stopped: %s",
                         h->spec, count, count == 1 ? "" : "s", *tail ? tail : rc ? strerror(-rc) : "ssh failed");
            else if (out[0])
                herd_log(c->env, HERD_LOG_INFO, "SSHCluster: %s: killed what was left: %s", h->spec, out);
            herd_strv_free(argv);
        }
    }
    pthread_mutex_lock(&c->mu);      /* a session that goes on reports the end it saw */
    wait_ended(c, ws, n, 2);
    pthread_mutex_unlock(&c->mu);
}

static int sc_retire(herd_cluster *c, const char *worker, herd_err *err)
{
    pthread_mutex_lock(&c->mu);
    sworker *w = NULL;
    for (size_t i = 0; i < c->nw && !w; i++)
        if (strcmp(c->w[i]->name, worker ? worker : "") == 0) w = c->w[i];
    if (!w) {
        char names[600] = "";
        size_t o = 0;
        for (size_t i = 0; i < c->nw && o < sizeof names - 70; i++)
            if (c->w[i]->state == HERD_WORKER_RUNNING)
                o += (size_t)snprintf(names + o, sizeof names - o, "%s%s", o ? ", " : "", c->w[i]->name);
        pthread_mutex_unlock(&c->mu);
        return herd_err_set(err, HERD_EARG, "SSHCluster retire: no worker \"%s\" (running: %s)",
                            worker ? worker : "(null)", o ? names : "none");
    }
    if (w->busy || w->ended || !w->spawned) {
        pthread_mutex_unlock(&c->mu);
        return 0;
    }
    w->busy = true;
    w->state = HERD_WORKER_STOPPING;
    pthread_mutex_unlock(&c->mu);
    stop_workers(c, &w, 1);
    pthread_mutex_lock(&c->mu);
    w->busy = false;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    herd_log(c->env, HERD_LOG_INFO, "SSHCluster: retired worker %s", worker);
    return 0;
}

static int sc_status(herd_cluster *c, herd_worker_info *out, size_t cap, size_t *n)
{
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < c->nw && out; i++) {
        if (i >= cap) break;
        sworker *w = c->w[i];
        herd_worker_info *o = &out[i];
        memset(o, 0, sizeof *o);
        snprintf(o->name, sizeof o->name, "%s", w->name);
        o->state = w->state;
        o->pid = w->rpid;
        snprintf(o->host, sizeof o->host, "%s", w->h->spec);
        snprintf(o->detail, sizeof o->detail, "%s", w->detail);
    }
    if (n) *n = c->nw;
    pthread_mutex_unlock(&c->mu);
    return 0;
}

static const herd_value *sc_worker_resources(herd_cluster *c) { return c->resources; }

static void sc_close(herd_cluster *c)
{
    if (!c) return;
    pthread_mutex_lock(&c->mu);
    c->closing = true;
    pthread_cond_broadcast(&c->cv);
    for (;;) {                              /* starts and retires in flight finish first */
        bool busy = c->scaling > 0;
        for (size_t i = 0; i < c->nw; i++) busy |= c->w[i]->busy;
        if (!busy) break;
        struct timespec ts;
        herd_deadline(0.02, &ts);
        pthread_cond_timedwait(&c->cv, &c->mu, &ts);
    }
    sworker **live = calloc(c->nw ? c->nw : 1, sizeof *live);
    size_t n = 0;
    for (size_t i = 0; live && i < c->nw; i++)
        if (c->w[i]->spawned && !c->w[i]->ended) {
            c->w[i]->state = HERD_WORKER_STOPPING;
            live[n++] = c->w[i];
        }
    pthread_mutex_unlock(&c->mu);
    if (live) stop_workers(c, live, n);
    else {                                  /* no memory: one at a time */
        for (size_t i = 0; i < c->nw; i++)
            if (c->w[i]->spawned && !c->w[i]->ended) stop_workers(c, &c->w[i], 1);
    }
    free(live);
    stop_scheduler(c);
    herd_log(c->env, HERD_LOG_DEBUG, "SSHCluster: closed (%zu workers ever started)", c->nw);
    cluster_free(c);
}

HERD_PROVIDER(SSHCluster) = {
    HERD_PROVIDER_HEAD(SSHCluster, "workers on other machines over ssh (the system OpenSSH client)", params),
    .create = sc_create,
    .start = sc_start,
    .scale_up = sc_scale_up,
    .retire = sc_retire,
    .status = sc_status,
    .worker_resources = sc_worker_resources,
    .close = sc_close,
    .scheduler_listen = sc_scheduler_listen,
    .start_scheduler = sc_start_scheduler,
};

HERD_API const herd_provider *const herd_providers[] = { &SSHCluster, NULL };
