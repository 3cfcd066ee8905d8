/* core/config_merge.c — explicit runner options over a herd.yaml profile
 * (herd_profile_apply): kwargs merged key by key, where the run goes (an
 * address or a temporary cluster) taken from the code when the code says,
 * and the profile's replaced entries forgotten so that errors cite only what
 * the file supplied. */
#include "config.h"
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The profile's address against kwargs for a temporary cluster in code. */
static int conflict(const herd_profile *p, const char *ekey, herd_err *err)
{
    herd_srcpos k = { 1, 1 };
    herd_srcpos_get(p->positions, "address", &k, NULL);
    return herd_err_set(err, -HERD_ECONFIG,
                        "%s:%d:%d: address \"%s\" of profile \"%s\" connects to an existing scheduler; %s given "
                        "in the runner options only applies to a temporary cluster (give a cluster_class too, "
                        "to use one instead)", p->file, k.line, k.col, p->address, p->name, ekey);
}

/* Drop path and everything under it from positions. */
static void drop_positions(herd_value *positions, const char *path)
{
    size_t n = strlen(path);
    for (size_t i = herd_len(positions); i-- > 0;) {
        const char *k = herd_key_at(positions, i);
        if (!strncmp(k, path, n) && (k[n] == '\0' || k[n] == '.' || k[n] == '['))
            herd_map_del(positions, k);
    }
}

/* Do two cluster_class names (NULL: the default) name the same provider? */
static bool same_class(const char *a, const char *b)
{
    const char *x = a && *a ? a : "local.LocalCluster", *y = b && *b ? b : "local.LocalCluster";
    if (!strcmp(x, y)) return true;
    const herd_provider *px = NULL, *py = NULL;
    return herd_provider_resolve(x, &px, NULL) == 0 && herd_provider_resolve(y, &py, NULL) == 0 && px == py;
}

int herd_profile_apply(herd_profile *p, herd_profile_merge *m, herd_err *err)
{
    if (!p || !m) return 0;
    herd_value **kw[3] = { m->cluster_kwargs, m->adapt_kwargs, m->client_kwargs };
    herd_value **pk[3] = { &p->cluster_kwargs, &p->adapt_kwargs, &p->client_kwargs };
    bool e_target = m->cluster_class || m->cluster_object;
    bool e_addr = m->address && *m->address;

    /* Where the run goes is one setting: set in code, it replaces the
     * profile's. An address in code sets aside the profile's temporary
     * cluster (cluster_class, cluster_kwargs, adapt_kwargs); a cluster_class,
     * provider or factory in code sets aside the profile's address. */
    if (e_addr && !p->address) {
        const char *keys[3] = { "cluster_class", "cluster_kwargs", "adapt_kwargs" };
        free(p->cluster_class);
        p->cluster_class = NULL;
        herd_value_free(p->cluster_kwargs);
        herd_value_free(p->adapt_kwargs);
        p->cluster_kwargs = p->adapt_kwargs = NULL;
        for (int i = 0; i < 3; i++) drop_positions(p->positions, keys[i]);
    }
    if (e_target && !e_addr && p->address) {
        free(p->address);
        p->address = NULL;
        drop_positions(p->positions, "address");
    }
    /* kwargs for a temporary cluster in code, with no target of its own,
     * over a profile that connects to an existing scheduler */
    if (p->address && !e_addr && ((kw[0] && *kw[0]) || (kw[1] && *kw[1])))
        return conflict(p, kw[0] && *kw[0] ? "cluster_kwargs" : "adapt_kwargs", err);

    /* scalars: explicit wins; what it replaced no longer counts as the file's.
     * A program that picks another provider than the profile's also sets
     * aside the profile's cluster_kwargs: they are that other provider's. */
    if (m->cluster_class || m->cluster_object) {
        if (p->cluster_class) drop_positions(p->positions, "cluster_class");
        if (p->cluster_kwargs && (m->cluster_object || !same_class(m->cluster_class, p->cluster_class))) {
            herd_value_free(p->cluster_kwargs);
            p->cluster_kwargs = NULL;
            drop_positions(p->positions, "cluster_kwargs");
        }
    } else {
        m->cluster_class = p->cluster_class;
    }
    if (e_addr) {
        if (p->address) drop_positions(p->positions, "address");
    } else {
        m->address = p->address;
    }

    /* kwargs: shallow merge, explicit keys over the profile's */
    for (int i = 0; i < 3; i++) {
        if (!kw[i] || !*pk[i]) continue;
        herd_value *merged = herd_value_copy(*pk[i]);
        if (!merged) return herd_err_set(err, -ENOMEM, "out of memory");
        const herd_value *ex = *kw[i];
        for (size_t j = 0; j < herd_len(ex); j++) {
            const char *k = herd_key_at(ex, j);
            char path[1024];
            snprintf(path, sizeof path, "%s.%s", herd_profile_kwargs[i], k);
            if (herd_map_get(*pk[i], k)) {
                herd_map_del(*pk[i], k);
                drop_positions(p->positions, path);
            }
            herd_value *v = herd_value_copy(herd_at(ex, j));
            if (!v || herd_map_set(merged, k, v)) {
                herd_value_free(merged);
                return herd_err_set(err, -ENOMEM, "out of memory");
            }
        }
        herd_value_free(*kw[i]);
        *kw[i] = merged;
    }
    return 0;
}

