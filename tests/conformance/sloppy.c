/* tests/conformance/sloppy.c — a provider that breaks one conformance rule on
 * purpose, to show that the suite catches it: SloppyCluster is
 * local.LocalCluster (every hook delegates to it) except that retire of a
 * worker it does not have "succeeds" (rule retire_unknown). Built as
 * $(BUILD)/tests/conformance/sloppy.so; tests/install/test_providers_test.sh
 * runs `herd providers test` on it. */
#include <herd/provider.h>

#include <stdio.h>
#include <string.h>

static const herd_provider *local(void)
{
    const herd_provider *p = NULL;
    herd_provider_resolve("local.LocalCluster", &p, NULL);   /* cached by the registry */
    return p;
}

static const herd_param params[] = {
    { "n_workers", HERD_PARAM_INT, "2", "workers to start", 0, 1, 64 },
    { 0 },
};

static int create(herd_cluster **out, const herd_value *kwargs, const herd_cluster_env *env, herd_err *err)
{
    const herd_provider *l = local();
    if (!l) return herd_err_set(err, HERD_EPROVIDER, "SloppyCluster: local.LocalCluster not found");
    char yaml[96];
    snprintf(yaml, sizeof yaml, "{n_workers: %lld, threads_per_worker: 1, name: sloppy}",
             (long long)herd_as_int(herd_map_get(kwargs, "n_workers")));
    herd_value *kw = NULL, *v = NULL;
    int rc = herd_value_parse(yaml, &kw, err);
    if (!rc) rc = herd_kwargs_validate(l->params, kw, "cluster_kwargs", &v, err);
    if (!rc) rc = l->create(out, v, env, err);
    herd_value_free(kw);
    herd_value_free(v);
    return rc;
}

static int start(herd_cluster *c, herd_err *err) { return local()->start(c, err); }
static int scale_up(herd_cluster *c, int n, herd_err *err) { return local()->scale_up(c, n, err); }
static int status(herd_cluster *c, herd_worker_info *out, size_t cap, size_t *n)
{
    return local()->status(c, out, cap, n);
}
static void close_(herd_cluster *c) { local()->close(c); }

/* The bug: an unknown name is not an error. */
static int retire(herd_cluster *c, const char *w, herd_err *err)
{
    herd_worker_info info[64];
    size_t n = 0;
    local()->status(c, info, 64, &n);
    for (size_t i = 0; i < n && i < 64; i++)
        if (!strcmp(info[i].name, w)) return local()->retire(c, w, err);
    return 0;
}

HERD_PROVIDER(SloppyCluster) = {
    HERD_PROVIDER_HEAD(SloppyCluster, "local.LocalCluster that ignores retire of an unknown worker", params),
    .create = create, .start = start, .scale_up = scale_up, .retire = retire,
    .status = status, .close = close_,
};

HERD_API const herd_provider *const herd_providers[] = { &SloppyCluster, NULL };
