/* core/worker_args.c — a worker's command line: the argv a provider starts
 * a worker process with (herd_worker_argv), reading it back
 * (herd_worker_cfg_from_args) and the resources option (herd_resources_parse). */
#include "worker.h"
#include "value_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int herd_resources_parse(const char *s, herd_value **out, herd_err *err)
{
    *out = herd_map();
    if (!s || !*s) return 0;
    char *copy = strdup(s), *save = NULL;
    int rc = 0;
    for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(item, '=');
        char *end = NULL;
        double v = eq ? strtod(eq + 1, &end) : 0;
        if (!eq || eq == item || !end || *end || end == eq + 1) {
            rc = herd_err_set(err, HERD_EARG, "resources: expected NAME=NUMBER[,NAME=NUMBER…] with numbers > 0, got \"%s\"", item);
            break;
        }
        *eq = '\0';
        herd_map_set(*out, item, v == floor(v) && fabs(v) < 9e15 ? herd_int((int64_t)v) : herd_float(v));
    }
    free(copy);
    if (!rc) rc = herd_resources_check(*out, "resources", err);
    if (rc) { herd_value_free(*out); *out = NULL; }
    return rc;
}

int herd_worker_argv(const herd_cluster_env *env, const herd_worker_spec *spec, char ***argv_out, herd_err *err)
{
    if (argv_out) *argv_out = NULL;
    if (!env || !spec || !argv_out)
        return herd_err_set(err, HERD_EARG, "herd_worker_argv: %s is NULL", !env ? "env" : !spec ? "spec" : "argv_out");
    int vrc = herd_resources_check(spec->resources, "worker resources", err);
    if (vrc) return vrc;
    size_t n = 0;
    while (env->worker_argv && env->worker_argv[n]) n++;
    char **v = calloc(n + 12, sizeof *v);
    if (!v) return herd_err_set(err, -ENOMEM, "out of memory");
    size_t k = 0;
    for (size_t i = 0; i < n; i++) v[k++] = strdup(env->worker_argv[i]);
    char buf[64];
    v[k++] = strdup("--herd-name");
    v[k++] = strdup(spec->name ? spec->name : "worker");
    snprintf(buf, sizeof buf, "%d", spec->nthreads > 0 ? spec->nthreads : 1);
    v[k++] = strdup("--herd-nthreads");
    v[k++] = strdup(buf);
    if (spec->resources && herd_len(spec->resources)) {
        size_t cap = 256, len = 0;
        char *r = malloc(cap);
        r[0] = '\0';
        for (size_t i = 0; i < herd_len(spec->resources); i++) {
            char item[300];
            int il = snprintf(item, sizeof item, "%s%s=%.17g", i ? "," : "", herd_key_at(spec->resources, i),
                              herd_as_float(herd_at(spec->resources, i)));
            if (len + (size_t)il + 1 > cap) { char *nr = realloc(r, cap = 2 * (len + (size_t)il + 1)); if (!nr) break; r = nr; }
            memcpy(r + len, item, (size_t)il + 1);
            len += (size_t)il;
        }
        v[k++] = strdup("--herd-resources");
        v[k++] = r;
    }
    if (spec->memory_limit > 0) {
        snprintf(buf, sizeof buf, "%lld", (long long)spec->memory_limit);
        v[k++] = strdup("--herd-memory-limit");
        v[k++] = strdup(buf);
    }
    v[k] = NULL;
    for (size_t i = 0; i < k; i++)
        if (!v[i]) { herd_strv_free(v); return herd_err_set(err, -ENOMEM, "out of memory"); }
    *argv_out = v;
    return 0;
}

/* A lifetime flag or variable: a duration ("55m", "3s", "90"); NULL or ""
 * leaves *out alone. */
static int life_opt(const char *what, const char *val, double *out, herd_err *err)
{
    if (!val || !*val) return 0;
    if (herd_parse_duration(val, out))
        return herd_err_set(err, HERD_EARG, "%s: expected a duration such as \"55m\", \"3s\" or \"90\", "
                            "got \"%.60s\"", what, val);
    return 0;
}

int herd_worker_cfg_from_args(int argc, char **argv, herd_worker_cfg *cfg, herd_value **res, herd_err *err)
{
    memset(cfg, 0, sizeof *cfg);
    *res = NULL;
    cfg->address = getenv("HERD_SCHEDULER_ADDRESS");
    cfg->token = getenv("HERD_TOKEN");
    cfg->local_directory = getenv("HERD_LOCAL_DIRECTORY");
    cfg->nthreads = 1;
    cfg->connect_timeout = 30;
    int rc = life_opt("HERD_LIFETIME", getenv("HERD_LIFETIME"), &cfg->lifetime, err);
    if (!rc) rc = life_opt("HERD_LIFETIME_STAGGER", getenv("HERD_LIFETIME_STAGGER"), &cfg->lifetime_stagger, err);
    if (rc) return rc;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--herd-worker") == 0) continue;
        if (strcmp(a, "--herd-reconnect") == 0) { cfg->reconnect = 1; continue; }
        if (!val) return herd_err_set(err, HERD_EARG, "worker option %s: expected a value", a);
        char *end;
        if (strcmp(a, "--herd-name") == 0) cfg->name = val;
        else if (strcmp(a, "--herd-address") == 0) cfg->address = val;
        else if (strcmp(a, "--herd-nthreads") == 0) {
            long n = strtol(val, &end, 10);
            if (*end || n < 1 || n > 4096) return herd_err_set(err, HERD_EARG, "--herd-nthreads: expected 1..4096, got \"%s\"", val);
            cfg->nthreads = (int)n;
        } else if (strcmp(a, "--herd-resources") == 0) {
            herd_value_free(*res);
            rc = herd_resources_parse(val, res, err);
            if (rc) return rc;
            cfg->resources = *res;
        } else if (strcmp(a, "--herd-memory-limit") == 0) {
            long long n = strtoll(val, &end, 10);
            if (*end || n < 0) return herd_err_set(err, HERD_EARG, "--herd-memory-limit: expected bytes >= 0, got \"%s\"", val);
            cfg->memory_limit = n;
        } else if (strcmp(a, "--herd-lifetime") == 0) {
            if ((rc = life_opt(a, val, &cfg->lifetime, err))) return rc;
        } else if (strcmp(a, "--herd-lifetime-stagger") == 0) {
            if ((rc = life_opt(a, val, &cfg->lifetime_stagger, err))) return rc;
        } else if (strcmp(a, "--herd-local-directory") == 0) {
            if ((rc = herd_local_directory_check("--herd-local-directory", val, err))) return rc;
            cfg->local_directory = val;
        } else return herd_err_set(err, HERD_EARG, "unknown worker option \"%s\"", a);
        i++;
    }
    if (!cfg->address || !*cfg->address)
        return herd_err_set(err, HERD_EARG, "worker: no scheduler address (HERD_SCHEDULER_ADDRESS or --herd-address)");
    if (!cfg->name) cfg->name = "worker";
    return 0;
}
