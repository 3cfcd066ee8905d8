/* core/config_check.c — checking a whole herd.yaml, each profile on its own
 * (`herd config check`, `show`, `list`): its structure, every key against
 * the provider's and the runner's schemas (all problems, in file order, each
 * at FILE:LINE:COL), the workers' resources, a cluster_class that names a
 * file (not loaded: a check runs no code from it), then the runtime's own
 * herd_run_opts_check; and the effective settings `show` prints (secrets
 * masked). Reads the file through config.c (config_int.h). */
#include "config_int.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void add_note(problems *ps, const char *file, herd_srcpos at, const char *what)
{
    if (ps->nnotes == sizeof ps->notes / sizeof *ps->notes) return;
    char *msg = NULL;
    if (asprintf(&msg, "%s:%d:%d: note: %s", file, at.line, at.col, what) < 0) { ps->oom = 1; return; }
    ps->notes[ps->nnotes].msg = msg;
    ps->notes[ps->nnotes++].profile = ps->profile;
}

/* A cluster_class naming a file ("path/x.so:Class") is never loaded by a
 * check: loading runs the library's constructors, and a configuration file
 * must not run code. Check what can be checked without it: a readable
 * regular ELF file. 0, or -1 with why. */
static int check_class_file(const char *cls, char *why, size_t cap)
{
    const char *colon = strrchr(cls, ':');
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%.*s", (int)(colon - cls), cls);
    struct stat st;
    unsigned char magic[4] = { 0 };
    if (stat(path, &st) != 0) return snprintf(why, cap, "%s: %s", path, strerror(errno)), -1;
    if (!S_ISREG(st.st_mode)) return snprintf(why, cap, "%s: not a regular file", path), -1;
    FILE *f = fopen(path, "rb");
    if (!f) return snprintf(why, cap, "%s: %s", path, strerror(errno)), -1;
    size_t n = fread(magic, 1, sizeof magic, f);
    fclose(f);
    if (n != sizeof magic || memcmp(magic, "\x7f" "ELF", 4))
        return snprintf(why, cap, "%s: not a shared library (no ELF header)", path), -1;
    return 0;
}


/* Validate profile `name` of c against the schemas; problems to ps. When
 * shown is not NULL, build the effective settings for `herd config show`. */
/* What herd_runner_new would say of profile `name` given no options of
 * its own: the runtime's own check (herd_run_opts_check), cited in the file. */
static void check_runtime(const cfgfile *c, const char *name, int file_class, problems *ps)
{
    herd_profile *prof = NULL;
    herd_err e = { 0 };
    if (cfg_make_profile(c, name, &prof, &e)) { ps->oom = 1; return; }
    herd_run_opts o = { .address = prof->address, .cluster_class = prof->cluster_class,
                        .cluster_kwargs = prof->cluster_kwargs, .adapt_kwargs = prof->adapt_kwargs,
                        .client_kwargs = prof->client_kwargs };
    if (file_class) o.cluster_class = NULL, o.cluster_kwargs = NULL;   /* not loaded: the rest is checked */
    if (herd_run_opts_check(&o, &e)) {
        herd_srcpos at = prof->at;
        cfg_locate(prof, o.failed_key, e.msg, &at);
        cfg_add_problem(ps, c->file, at, "%s", e.msg);
    }
    herd_run_opts_clear(&o);
    herd_profile_free(prof);
}

/* The workers' resources (a provider param "resources" of type map): finite
 * numbers > 0, as workers require (herd_resources_check), said at the key. */
static void check_offer(const cfgfile *c, const herd_param *schema, const herd_value *given, const char *base,
                        problems *ps)
{
    const herd_param *p = schema;
    while (p && p->name && strcmp(p->name, "resources")) p++;
    const herd_value *res = herd_map_get(given, "resources");
    if (!p || !p->name || p->type != HERD_PARAM_MAP || herd_typeof(res) != HERD_MAP) return;
    for (size_t k = 0; k < herd_len(res); k++) {
        herd_value *one = herd_map();
        herd_err e = { 0 };
        if (!one) { ps->oom = 1; return; }
        herd_map_set(one, herd_key_at(res, k), herd_value_copy(herd_at(res, k)));
        if (herd_resources_check(one, "cluster_kwargs.resources", &e)) {
            char path[1500], sub[1300];
            cfg_join(sub, sizeof sub, base, "resources");
            cfg_join(path, sizeof path, sub, herd_key_at(res, k));
            cfg_add_problem(ps, c->file, cfg_find_pos(c->pos, path, false), "%s", e.msg);
        }
        herd_value_free(one);
    }
}

static void check_profile(const cfgfile *c, const char *name, problems *ps, herd_value *shown)
{
    const herd_value *pv = herd_map_get(cfg_profiles(c), name);
    char base[1024], path[1200];
    size_t before = ps->n;
    int file_class = 0;
    cfg_join(base, sizeof base, "profiles", name);
    cfg_check_profile_structure(c, name, ps);
    if (!cfg_good_name(name) || (herd_typeof(pv) != HERD_MAP && herd_typeof(pv) != HERD_NIL)) return;
    const char *addr = herd_as_str(herd_map_get(pv, "address"));
    const char *cls = herd_as_str(herd_map_get(pv, "cluster_class"));
    const herd_value *given[3];
    for (int i = 0; i < 3; i++) {
        given[i] = herd_map_get(pv, herd_profile_kwargs[i]);
        if (herd_typeof(given[i]) != HERD_MAP) given[i] = NULL;
    }
    const herd_param *schemas[3] = { NULL, herd_options_schema("adapt_kwargs"), herd_options_schema("client_kwargs") };
    if (shown) {
        herd_map_set(shown, "profile", herd_str(name));
        herd_map_set(shown, "file", herd_str(c->file));
        const char *d = herd_as_str(herd_map_get(pv, "description"));
        if (d) herd_map_set(shown, "description", herd_str(d));
    }
    if (addr && *addr) {
        if (shown) herd_map_set(shown, "address", herd_str(addr));
    } else if (cls && strchr(cls, ':')) {
        char why[PATH_MAX + 64];
        cfg_join(path, sizeof path, base, "cluster_class");
        herd_srcpos at = cfg_find_pos(c->pos, path, false);
        if (check_class_file(cls, why, sizeof why)) cfg_add_problem(ps, c->file, at, "cluster_class \"%s\": %s", cls, why);
        else add_note(ps, c->file, at, "cluster_class names a file: not loaded (a check runs no code from it), "
                      "so cluster_kwargs were not checked against its schema");
        if (shown) herd_map_set(shown, "cluster_class", herd_str(cls));
        file_class = 1;
    } else {
        const char *eff = cls && *cls ? cls : "local.LocalCluster";
        const herd_provider *prov = NULL;
        herd_err e = { 0 };
        if (herd_provider_resolve(eff, &prov, &e)) {
            cfg_join(path, sizeof path, base, "cluster_class");
            herd_srcpos at = cls ? cfg_find_pos(c->pos, path, false) : cfg_find_pos(c->pos, base, true);
            cfg_add_problem(ps, c->file, at, "%s%s", strncmp(e.msg, "cluster_class", 13) ? "cluster_class: " : "", e.msg);
        } else {
            schemas[0] = prov->params;
        }
        if (shown) herd_map_set(shown, "cluster_class", herd_str(eff));
    }
    for (int i = 0; i < 3; i++) {
        if (!schemas[i] || (i == 1 && !given[i])) continue;
        if (i == 0 && addr && *addr) continue;
        herd_value *ok = NULL;
        cfg_join(path, sizeof path, base, herd_profile_kwargs[i]);
        cfg_validate_all(schemas[i], given[i], herd_profile_kwargs[i], c->pos, path, c->file, ps, shown ? &ok : NULL);
        if (i == 0) check_offer(c, schemas[0], given[0], path, ps);
        if (!ok) continue;
        for (const herd_param *p = schemas[i]; p->name; p++)
            if ((p->flags & HERD_PARAM_SECRET) && herd_typeof(herd_map_get(ok, p->name)) != HERD_NIL)
                herd_map_set(ok, p->name, herd_str("<secret>"));
        herd_map_set(shown, herd_profile_kwargs[i], ok);
    }
    if (ps->n == before) check_runtime(c, name, file_class, ps);   /* every key is right: what is left is the runtime's */
}

int herd_config_check(const char *file, const char *only,
                      void (*fn)(void *ud, const char *profile, const char *problem),
                      void (*done)(void *ud, const char *profile, size_t nproblems), void *ud, herd_err *err)
{
    cfgfile c;
    int rc = cfg_read(file, &c, err);
    if (rc) return rc;
    problems ps = { 0 };
    cfg_check_top(&c, &ps);
    const herd_value *profs = cfg_profiles(&c);
    if (only && !herd_map_get(profs, only)) {
        rc = cfg_no_such_profile(&c, only, "", err);
        cfg_problems_free(&ps);
        cfg_free(&c);
        return rc;
    }
    for (size_t i = 0; i < herd_len(profs); i++) {
        if (only && strcmp(only, herd_key_at(profs, i))) continue;
        ps.profile = herd_key_at(profs, i);
        check_profile(&c, ps.profile, &ps, NULL);
    }
    if (ps.oom) rc = herd_err_set(err, -ENOMEM, "out of memory");
    else {
        if (ps.n) qsort(ps.v, ps.n, sizeof *ps.v, cfg_by_position);
        for (size_t i = 0; i < ps.n; i++)
            if (fn) fn(ud, ps.v[i].profile, ps.v[i].msg);
        for (size_t i = 0; i < ps.nnotes; i++)   /* after the problems: not counted */
            if (fn) fn(ud, ps.notes[i].profile, ps.notes[i].msg);
        for (size_t i = 0; done && i < herd_len(profs); i++) {
            const char *name = herd_key_at(profs, i);
            if (only && strcmp(only, name)) continue;
            size_t n = 0;
            for (size_t j = 0; j < ps.n; j++) n += ps.v[j].profile == name;
            done(ud, name, n);
        }
        rc = (int)ps.n;
    }
    cfg_problems_free(&ps);
    cfg_free(&c);
    return rc;
}

int herd_config_show(const char *file, const char *name, herd_value **out, herd_err *err)
{
    if (!out) return herd_err_set(err, -HERD_EARG, "herd_config_show: out is NULL");
    *out = NULL;
    char path[PATH_MAX];
    int rc;
    if (!file) {
        if ((rc = herd_config_find(path, sizeof path, err))) return rc;
        file = path;
    }
    cfgfile c;
    if ((rc = cfg_open(file, &c, err))) return rc;
    problems ps = { 0 };
    herd_profile *p = NULL;
    rc = cfg_select_profile(&c, name, &p, err);
    if (!rc && !p)
        rc = herd_err_set(err, -HERD_ECONFIG, "%s: no profile selected: name one, set $HERD_PROFILE, "
                          "or add a \"default\" profile", c.file);
    herd_value *shown = NULL;
    if (!rc && !(shown = herd_map())) rc = herd_err_set(err, -ENOMEM, "out of memory");
    if (!rc) {
        check_profile(&c, p->name, &ps, shown);
        rc = cfg_first_problem(&ps, err);
        cfg_problems_free(&ps);
    }
    herd_profile_free(p);
    cfg_free(&c);
    if (rc) {
        herd_value_free(shown);
        return rc;
    }
    *out = shown;
    return 0;
}

int herd_config_list(const char *file, herd_value **out, herd_err *err)
{
    if (!out) return herd_err_set(err, -HERD_EARG, "herd_config_list: out is NULL");
    *out = NULL;
    cfgfile c;
    int rc = cfg_open(file, &c, err);
    if (rc) return rc;
    herd_value *arr = NULL;
    if (!rc && !(arr = herd_array())) rc = herd_err_set(err, -ENOMEM, "out of memory");
    const herd_value *profs = cfg_profiles(&c);
    for (size_t i = 0; !rc && i < herd_len(profs); i++) {
        herd_profile *p = NULL;
        if ((rc = cfg_make_profile(&c, herd_key_at(profs, i), &p, err))) break;
        herd_value *m = herd_map();
        if (!m) rc = -ENOMEM;
        if (!rc) rc = herd_map_set(m, "profile", herd_str(p->name));
        if (!rc && p->address) rc = herd_map_set(m, "address", herd_str(p->address));
        if (!rc && !p->address)
            rc = herd_map_set(m, "cluster_class", herd_str(p->cluster_class ? p->cluster_class : "local.LocalCluster"));
        if (!rc && p->description) rc = herd_map_set(m, "description", herd_str(p->description));
        if (!rc) rc = herd_array_push(arr, m);
        else herd_value_free(m);
        if (rc) herd_err_set(err, rc, "out of memory");
        herd_profile_free(p);
    }
    cfg_free(&c);
    if (rc) {
        herd_value_free(arr);
        return rc;
    }
    *out = arr;
    return 0;
}
