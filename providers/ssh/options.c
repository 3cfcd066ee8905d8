/* providers/ssh/options.c — SSHCluster's cluster_kwargs: the schema (with
 * those of worker_options and connect_options) and ssh_settings_read, the
 * one place that reads the validated kwargs into the cluster's settings and
 * checks what the schema cannot (host names, resource names, ssh options,
 * environment variable names, combinations of keys). */
#include "ssh.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include <unistd.h>

/* The three schemas bound to structs (herd_kwargs_bind): strings and values
 * are borrowed from the validated maps, so ssh_settings_read copies what the
 * cluster keeps. */
typedef struct ssh_kw {
    const herd_value *hosts, *worker_options, *connect_options, *upload_files, *env;
    const char *scheduler_host, *remote_command, *upload_dir, *listen_address, *name;
    int n_workers;                 /* -1: null */
    int workers_per_host;
    bool upload;
    double start_timeout;
} ssh_kw;
#define KF(m) HERD_PARAM_FIELD(ssh_kw, m)

typedef struct ssh_wkw {
    int nthreads;
    const herd_value *resources;
    int64_t memory_limit;          /* bytes; HERD_SIZE_AUTO for "auto" (refused) */
} ssh_wkw;
#define WF(m) HERD_PARAM_FIELD(ssh_wkw, m)

typedef struct ssh_ckw {
    const char *user, *identity_file, *known_hosts, *strict_host_key_checking, *config_file, *program;
    int port;                      /* 0: null */
    const herd_value *options;
    double connect_timeout;
} ssh_ckw;
#define CF(m) HERD_PARAM_FIELD(ssh_ckw, m)

const herd_param ssh_params[] = {
    { "hosts", HERD_PARAM_LIST, NULL,
      "Hosts that run workers: \"host\", \"user@host\", \"host:port\" or \"[v6addr]:port\" "
      "(names as ssh takes them, ~/.ssh/config aliases included). Every host runs workers; "
      "the scheduler stays in this process unless scheduler_host is given.", HERD_PARAM_REQUIRED, 0, 0, KF(hosts) },
    { "scheduler_host", HERD_PARAM_STRING, "null",
      "Run the scheduler on this host (same forms as hosts; it may be one of them) instead of "
      "in this process, like Dask's first host: this client and the workers dial it at the "
      "address ssh reaches it by, on the port it picks (or listen_address's). The program "
      "there is remote_command (or the upload) run with --herd-scheduler.", HERD_PARAM_NULLABLE, 0, 0, KF(scheduler_host) },
    { "n_workers", HERD_PARAM_INT, "null",
      "Workers in total, spread over the hosts least loaded first. null: workers_per_host "
      "on every host.", HERD_PARAM_NULLABLE, 0, 100000, KF(n_workers) },
    { "workers_per_host", HERD_PARAM_INT, "1",
      "Workers per host when n_workers is null.", 0, 0, 10000, KF(workers_per_host) },
    { "worker_options", HERD_PARAM_MAP, "{}",
      "Per worker: nthreads (default 1), resources ({GPU: 1}), memory_limit (bytes or "
      "\"4GiB\"; 0: none).", 0, 0, 0, KF(worker_options) },
    { "connect_options", HERD_PARAM_MAP, "{}",
      "How ssh connects: user, port, identity_file, known_hosts (a file), "
      "strict_host_key_checking (yes, no, accept-new), options (extra -o \"Key=Value\" "
      "strings), connect_timeout (default 10 s), config_file (ssh -F), program (default "
      "\"ssh\"). Unset keys leave ssh's own configuration in charge.", 0, 0, 0, KF(connect_options) },
    { "remote_command", HERD_PARAM_STRING, "null",
      "The worker program on the hosts (this program, built for them). null: the same "
      "path as here (or the uploaded copy with upload: true).", HERD_PARAM_NULLABLE, 0, 0, KF(remote_command) },
    { "upload", HERD_PARAM_BOOL, "false",
      "Copy this program (and libherd.so when it is linked dynamically, and "
      "upload_files) to upload_dir on each host before starting; files whose sha256 "
      "already matches are not copied again.", 0, 0, 0, KF(upload) },
    { "upload_dir", HERD_PARAM_STRING, "\".cache/herd\"",
      "Where upload puts files on the hosts (relative: to the remote home directory): "
      "bin/<program>, lib/libherd.so.0, plugins/<file>.", 0, 0, 0, KF(upload_dir) },
    { "upload_files", HERD_PARAM_LIST, "[]",
      "Task plugins (.so) to upload into upload_dir/plugins, which workers then find "
      "on HERD_PLUGIN_PATH.", 0, 0, 0, KF(upload_files) },
    { "env", HERD_PARAM_MAP, "{}",
      "Extra environment variables for the workers, name -> string (sent over the ssh "
      "session's stdin, like the scheduler token, never on a command line).", 0, 0, 0, KF(env) },
    { "listen_address", HERD_PARAM_STRING, "null",
      "Where the scheduler listens and workers dial back, e.g. \"tcp://10.0.0.5:0\". null: "
      "127.0.0.1 when every host is this machine, else this machine's address on the "
      "route to the hosts (0.0.0.0, each host dialling its own route, when they differ). "
      "With scheduler_host: where the scheduler listens on that host (null: "
      "tcp://0.0.0.0:0, dialled at the host's address; a specific address is dialled as "
      "given).", HERD_PARAM_NULLABLE, 0, 0, KF(listen_address) },
    { "start_timeout", HERD_PARAM_DURATION, "30",
      "How long a worker (or scheduler_host's scheduler) may take from starting ssh to "
      "running on its host.", 0, 0.1, 3600, KF(start_timeout) },
    { "name", HERD_PARAM_STRING, "\"ssh\"",
      "Prefix of worker names: <name>-0, <name>-1, … (numbers never reused).",
      HERD_PARAM_NULLABLE, 0, 0, KF(name) },
    { NULL }
};

static const herd_param worker_params[] = {
    { "nthreads", HERD_PARAM_INT, "1", "threads (task slots) per worker", 0, 1, 4096, WF(nthreads) },
    { "resources", HERD_PARAM_MAP, "{}", "abstract resources each worker offers", 0, 0, 0, WF(resources) },
    { "memory_limit", HERD_PARAM_SIZE, "0", "memory limit per worker; 0: none", HERD_PARAM_NULLABLE, 0, 0,
      WF(memory_limit) },
    { NULL }
};

static const herd_param connect_params[] = {
    { "user", HERD_PARAM_STRING, "null", "remote user", HERD_PARAM_NULLABLE, 0, 0, CF(user) },
    { "port", HERD_PARAM_INT, "null", "ssh port", HERD_PARAM_NULLABLE, 1, 65535, CF(port) },
    { "identity_file", HERD_PARAM_STRING, "null", "private key file (ssh -i)", HERD_PARAM_NULLABLE, 0, 0,
      CF(identity_file) },
    { "known_hosts", HERD_PARAM_STRING, "null", "known_hosts file", HERD_PARAM_NULLABLE, 0, 0, CF(known_hosts) },
    { "strict_host_key_checking", HERD_PARAM_STRING, "null", "yes, no or accept-new", HERD_PARAM_NULLABLE, 0, 0,
      CF(strict_host_key_checking) },
    { "options", HERD_PARAM_LIST, "[]", "extra ssh -o \"Key=Value\" options", 0, 0, 0, CF(options) },
    { "connect_timeout", HERD_PARAM_DURATION, "10", "ssh ConnectTimeout", 0, 0.1, 3600, CF(connect_timeout) },
    { "config_file", HERD_PARAM_STRING, "null", "ssh -F file", HERD_PARAM_NULLABLE, 0, 0, CF(config_file) },
    { "program", HERD_PARAM_STRING, "\"ssh\"", "the ssh client", 0, 0, 0, CF(program) },
    { NULL }
};

static char *dup_str(const char *s) { return s ? strdup(s) : NULL; }

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

/* "K=V" for each variable of the env kwarg (a map of strings). */
static int env_list(const herd_value *env, char ***out, herd_err *err)
{
    size_t n = herd_len(env);
    char **l = calloc(n + 1, sizeof *l);
    if (!(*out = l)) return herd_err_set(err, -ENOMEM, "cluster_kwargs.env: out of memory");
    for (size_t i = 0; i < n; i++) {
        const char *k = herd_key_at(env, i), *v = herd_as_str(herd_at(env, i));
        if (!v)
            return herd_err_set(err, HERD_ECONFIG, "cluster_kwargs.env.%s: expected a string, got %s (quote it "
                                "in YAML)", k ? k : "", herd_type_name(herd_typeof(herd_at(env, i))));
        if (asprintf(&l[i], "%s=%s", k ? k : "", v) < 0) {
            l[i] = NULL;
            return herd_err_set(err, -ENOMEM, "cluster_kwargs.env: out of memory");
        }
        char *b = NULL;
        size_t bl = 0, bc = 0;
        int rc = ssh_env_line(&b, &bl, &bc, l[i]);
        free(b);
        if (rc == -EINVAL)
            return herd_err_set(err, HERD_ECONFIG, "cluster_kwargs.env: variable name \"%s\": expected letters, "
                                "digits and '_', not starting with a digit", k ? k : "");
    }
    return 0;
}

int ssh_settings_read(ssh_settings *s, const herd_value *kw, herd_err *err)
{
    memset(s, 0, sizeof *s);
    ssh_kw k = { .n_workers = -1 };
    int rc = herd_kwargs_bind(ssh_params, kw, &k, sizeof k, err);

    /* hosts */
    s->nh = herd_len(k.hosts);
    if (!rc && s->nh == 0)
        rc = herd_err_set(err, HERD_ECONFIG, "cluster_kwargs.hosts: expected at least one host, got an empty list");
    else if (!rc && !(s->hosts = calloc(s->nh, sizeof *s->hosts)))
        rc = herd_err_set(err, -ENOMEM, "SSHCluster: out of memory");
    for (size_t i = 0; !rc && i < s->nh; i++) {
        const herd_value *h = herd_at(k.hosts, i);
        if (herd_typeof(h) != HERD_STR) {
            char *txt = herd_value_to_string(h);
            rc = herd_err_set(err, HERD_ECONFIG, "cluster_kwargs.hosts[%zu]: expected a host name string, got %s",
                              i, txt ? txt : "?");
            free(txt);
        } else {
            char what[64];
            snprintf(what, sizeof what, "cluster_kwargs.hosts[%zu]", i);
            rc = parse_host(herd_as_str(h), &s->hosts[i], what, err);
        }
    }
    if (!rc) s->n_workers = k.n_workers >= 0 ? k.n_workers : k.workers_per_host * (int)s->nh;

    /* worker_options */
    herd_value *wo = NULL;
    ssh_wkw w = { .nthreads = 1 };
    if (!rc) rc = herd_kwargs_load(worker_params, k.worker_options, "cluster_kwargs.worker_options", &wo,
                                   &w, sizeof w, err);
    if (!rc) {
        s->nthreads = w.nthreads;
        if (w.memory_limit == HERD_SIZE_AUTO)
            rc = herd_err_set(err, HERD_ECONFIG, "cluster_kwargs.worker_options.memory_limit: expected bytes or "
                              "a size such as \"4GiB\" (the hosts' memory is not known here), got \"auto\"");
        else s->memory_limit = w.memory_limit;
        if (!rc && s->memory_limit < 0)
            rc = herd_err_set(err, HERD_ECONFIG, "cluster_kwargs.worker_options.memory_limit: expected >= 0, "
                              "got %lld", (long long)s->memory_limit);
        if (!rc) rc = check_resources(w.resources, err);
        if (!rc && !(s->resources = herd_value_copy(w.resources)))
            rc = herd_err_set(err, -ENOMEM, "out of memory");
    }
    herd_value_free(wo);

    /* connect_options */
    herd_value *co = NULL;
    ssh_ckw cf = { .port = 0 };
    if (!rc) rc = herd_kwargs_load(connect_params, k.connect_options, "cluster_kwargs.connect_options", &co,
                                   &cf, sizeof cf, err);
    if (!rc) {
        ssh_opts *o = &s->so;
        o->program = dup_str(cf.program);
        o->user = dup_str(cf.user);
        o->identity_file = dup_str(cf.identity_file);
        o->known_hosts = dup_str(cf.known_hosts);
        o->config_file = dup_str(cf.config_file);
        if (cf.strict_host_key_checking) {
            const char *t = cf.strict_host_key_checking;
            if (strcmp(t, "yes") && strcmp(t, "no") && strcmp(t, "accept-new") && strcmp(t, "ask") &&
                strcmp(t, "off"))
                rc = herd_err_set(err, HERD_ECONFIG, "cluster_kwargs.connect_options.strict_host_key_checking: "
                                  "expected yes, no or accept-new, got \"%s\"", t);
            else o->strict = strdup(t);
        }
        o->port = cf.port;
        o->connect_timeout = cf.connect_timeout;
        if (!rc) rc = str_list(cf.options, "cluster_kwargs.connect_options.options", &o->extra, err);
        for (size_t i = 0; !rc && o->extra[i]; i++)
            if (!strchr(o->extra[i], '=') || o->extra[i][0] == '=' || o->extra[i][0] == '-')
                rc = herd_err_set(err, HERD_ECONFIG, "cluster_kwargs.connect_options.options[%zu]: expected "
                                  "\"Key=Value\" (an ssh -o option), got \"%s\"", i, o->extra[i]);
        if (!rc && !o->program) rc = herd_err_set(err, -ENOMEM, "out of memory");
    }
    herd_value_free(co);

    /* the rest */
    if (!rc) rc = env_list(k.env, &s->extra_env, err);
    if (!rc) {
        s->remote_command = dup_str(k.remote_command);
        s->upload = k.upload;
        s->upload_dir = dup_str(k.upload_dir);
        s->listen = dup_str(k.listen_address);
        s->start_timeout = k.start_timeout;
        rc = str_list(k.upload_files, "cluster_kwargs.upload_files", &s->upload_files, err);
    }
    if (!rc && s->upload && s->remote_command)
        rc = herd_err_set(err, HERD_ECONFIG, "cluster_kwargs.remote_command: \"%s\" with upload: true; give one: "
                          "upload runs the copy it makes in upload_dir", s->remote_command);
    if (!rc && s->upload_files[0] && !s->upload)
        rc = herd_err_set(err, HERD_ECONFIG, "cluster_kwargs.upload_files: given with upload: false; set upload: true");
    if (!rc && (!s->upload_dir || !*s->upload_dir || strchr(s->upload_dir, '\n')))
        rc = herd_err_set(err, HERD_ECONFIG, "cluster_kwargs.upload_dir: expected a directory path");
    for (size_t i = 0; !rc && s->upload_files[i]; i++)
        if (access(s->upload_files[i], R_OK) != 0)
            rc = herd_err_set(err, HERD_ECONFIG, "cluster_kwargs.upload_files[%zu]: %s: %s", i, s->upload_files[i],
                              strerror(errno));
    if (!rc && s->remote_command && !*s->remote_command)
        rc = herd_err_set(err, HERD_ECONFIG, "cluster_kwargs.remote_command: expected a program path, got \"\"");
    if (!rc && k.scheduler_host) {
        s->has_sched = true;
        rc = parse_host(k.scheduler_host, &s->sched_host, "cluster_kwargs.scheduler_host", err);
    }
    if (!rc && s->listen) {
        if (strncmp(s->listen, "tcp://", 6) != 0 || !strrchr(s->listen + 6, ':'))
            rc = herd_err_set(err, HERD_ECONFIG, "cluster_kwargs.listen_address: expected tcp://HOST:PORT (port 0: "
                              "any), got \"%s\"", s->listen);
    }
    if (!rc) {
        const char *name = k.name ? k.name : "ssh";
        if (!herd_name_prefix_ok(name))
            rc = herd_err_set(err, HERD_ECONFIG, "cluster_kwargs.name: expected 1 to 40 letters, digits, '_', '.' "
                              "or '-', got \"%s\"", name);
        else snprintf(s->prefix, sizeof s->prefix, "%s", name);
    }
    return rc;
}

void ssh_settings_free(ssh_settings *s)
{
    free(s->hosts);
    herd_value_free(s->resources);
    herd_strv_free(s->extra_env);
    herd_strv_free(s->upload_files);
    herd_strv_free(s->so.extra);
    free((char *)s->so.program);
    free((char *)s->so.user);
    free((char *)s->so.identity_file);
    free((char *)s->so.known_hosts);
    free((char *)s->so.strict);
    free((char *)s->so.config_file);
    free(s->remote_command);
    free(s->upload_dir);
    free(s->listen);
    memset(s, 0, sizeof *s);
}
