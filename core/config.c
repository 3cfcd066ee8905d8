/* core/config.c — cluster profiles: finding herd.yaml, checking its structure
 * (top-level and profile keys, with did-you-mean and FILE:LINE:COL), loading
 * one profile, merging explicit runner options over it key by key, citing the
 * file in errors about what it supplied. Checking each profile of a file on
 * its own (`herd config check`/`show`/`list`) is config_check.c, which reuses
 * the reading, problems and structure checks here (config_int.h).
 *
 * Key checks reuse herd_kwargs_validate with small schemas of their own (the
 * file's top level and a profile's keys), so every message has the same shape
 * as a runner's: "path: what was wrong". To report every problem rather than
 * the first, validate_all re-runs the validator without the offending key. */
#include "config_int.h"

#include <ctype.h>
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_FILE (4u << 20)   /* a config file larger than this is a mistake */
/* ---- the file's own schemas ---- */
static const herd_param top_params[] = {
    { "profiles", HERD_PARAM_MAP, NULL, "profile name -> profile", HERD_PARAM_NULLABLE, 0, 0 },
    { NULL, 0, NULL, NULL, 0, 0, 0 }
};
static const herd_param profile_params[] = {
    { "description", HERD_PARAM_STRING, NULL, "", HERD_PARAM_NULLABLE, 0, 0 },
    { "cluster_class", HERD_PARAM_STRING, NULL, "", HERD_PARAM_NULLABLE, 0, 0 },
    { "cluster_kwargs", HERD_PARAM_MAP, NULL, "", HERD_PARAM_NULLABLE, 0, 0 },
    { "adapt_kwargs", HERD_PARAM_MAP, NULL, "", HERD_PARAM_NULLABLE, 0, 0 },
    { "client_kwargs", HERD_PARAM_MAP, NULL, "", HERD_PARAM_NULLABLE, 0, 0 },
    { "address", HERD_PARAM_STRING, NULL, "", HERD_PARAM_NULLABLE, 0, 0 },
    { NULL, 0, NULL, NULL, 0, 0, 0 }
};
const char *const herd_profile_kwargs[3] = { "cluster_kwargs", "adapt_kwargs", "client_kwargs" };

/* ---- finding the file ---- */

static bool exists(const char *path) { return access(path, F_OK) == 0; }

size_t herd_config_candidates(herd_config_candidate out[HERD_CONFIG_NCAND])
{
    size_t n = 0;
    const char *env = getenv("HERD_CONFIG");
    if (env && *env) {
        snprintf(out[n].path, sizeof out[n].path, "%s", env);
        out[n++].origin = "$HERD_CONFIG";
    }
    snprintf(out[n].path, sizeof out[n].path, "./herd.yaml");
    out[n++].origin = "current directory";
    const char *xdg = getenv("XDG_CONFIG_HOME");
    if (xdg && xdg[0] == '/') {           /* the XDG spec: relative paths are ignored */
        snprintf(out[n].path, sizeof out[n].path, "%s/herd/herd.yaml", xdg);
        out[n++].origin = "$XDG_CONFIG_HOME";
    } else {
        const char *home = getenv("HOME");
        if (!home || !*home) {
            struct passwd *pw = getpwuid(getuid());
            home = pw ? pw->pw_dir : NULL;
        }
        if (home && *home) {
            snprintf(out[n].path, sizeof out[n].path, "%s/.config/herd/herd.yaml", home);
            out[n++].origin = "~/.config";
        }
    }
    /* $HERD_TEST_SYSTEM_CONFIG stands in for /etc/herd/herd.yaml in the test
     * suite only, so its checks do not depend on the machine's /etc */
    const char *sys = getenv("HERD_TEST_SYSTEM_CONFIG");
    snprintf(out[n].path, sizeof out[n].path, "%s", sys && *sys ? sys : "/etc/herd/herd.yaml");
    out[n++].origin = "system";
    for (size_t i = 0; i < n; i++) out[i].exists = exists(out[i].path);
    return n;
}

int herd_config_find(char *path_out, size_t cap, herd_err *err)
{
    herd_config_candidate c[HERD_CONFIG_NCAND];
    size_t n = herd_config_candidates(c);
    if (!strcmp(c[0].origin, "$HERD_CONFIG") && !c[0].exists) {
        int e = access(c[0].path, F_OK) ? errno : ENOENT;
        return herd_err_set(err, -HERD_ECONFIG, "HERD_CONFIG=%s: %s", c[0].path, strerror(e));
    }
    for (size_t i = 0; i < n; i++)
        if (c[i].exists) {
            if (strlen(c[i].path) >= cap) return herd_err_set(err, -ENAMETOOLONG, "%s: path too long", c[i].path);
            memcpy(path_out, c[i].path, strlen(c[i].path) + 1);
            return 0;
        }
    char tried[1200] = "";
    size_t len = 0;
    for (size_t i = 0; i < n && len < sizeof tried; i++)
        len += (size_t)snprintf(tried + len, sizeof tried - len, "%s%s", i ? ", " : "", c[i].path);
    return herd_err_set(err, -ENOENT, "no herd.yaml found (looked for %s)", tried);
}

void cfg_add_problem(problems *ps, const char *file, herd_srcpos at, const char *fmt, ...)
{
    char body[1024], *msg = NULL;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);
    if (ps->n == ps->cap) {
        size_t cap = ps->cap ? 2 * ps->cap : 8;
        problem *v = realloc(ps->v, cap * sizeof *v);
        if (!v) { ps->oom = 1; return; }
        ps->v = v;
        ps->cap = cap;
    }
    if (asprintf(&msg, "%s:%d:%d: %s", file, at.line, at.col, body) < 0) { ps->oom = 1; return; }
    ps->v[ps->n] = (problem){ at.line, at.col, ps->n, msg, ps->profile };
    ps->n++;
}

int cfg_by_position(const void *a, const void *b)
{
    const problem *x = a, *y = b;
    if (x->line != y->line) return x->line < y->line ? -1 : 1;
    if (x->col != y->col) return x->col < y->col ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

void cfg_problems_free(problems *ps)
{
    for (size_t i = 0; i < ps->n; i++) free(ps->v[i].msg);
    for (size_t i = 0; i < ps->nnotes; i++) free(ps->notes[i].msg);
    free(ps->v);
    memset(ps, 0, sizeof *ps);
}

/* ---- positions ---- */

/* Drop the last segment of a path ("a.b[2]" -> "a.b" -> "a" -> ""). */
static void path_up(char *path)
{
    size_t n = strlen(path);
    if (n && path[n - 1] == ']') {
        char *lb = strrchr(path, '[');
        if (lb) { *lb = '\0'; return; }
    }
    char *dot = strrchr(path, '.');
    if (dot) *dot = '\0';
    else path[0] = '\0';
}

/* Where path (or its nearest listed ancestor) is: its key's position when
 * want_key, else its value's. {1, 1} when nothing is listed. */
herd_srcpos cfg_find_pos(const herd_value *positions, const char *path, bool want_key)
{
    char buf[1024];
    herd_srcpos k, v;
    snprintf(buf, sizeof buf, "%s", path);
    while (buf[0]) {
        if (herd_srcpos_get(positions, buf, &k, &v) == 0) return want_key ? k : v;
        path_up(buf);
        want_key = true;      /* an ancestor: point at its name */
    }
    return (herd_srcpos){ 1, 1 };
}

void cfg_join(char *out, size_t cap, const char *a, const char *b)
{
    snprintf(out, cap, "%s%s%s", a, a[0] && b[0] ? "." : "", b);
}

/* ---- validating a map and reporting every problem ---- */

/* Does msg start with "<pre><key>: "? */
static bool about(const char *msg, const char *pre, const char *key)
{
    size_t p = strlen(pre), k = strlen(key);
    return !strncmp(msg, pre, p) && !strncmp(msg + p, key, k) && msg[p + k] == ':' && msg[p + k + 1] == ' ';
}

/* Validate map (a map or NULL) against params as `where` (message prefix);
 * its entries sit at pospath in positions. Every problem goes to ps; *ok (may
 * be NULL) receives the validated map when there was none. */
void cfg_validate_all(const herd_param *params, const herd_value *map, const char *where,
                         const herd_value *positions, const char *pospath, const char *file,
                         problems *ps, herd_value **ok)
{
    if (ok) *ok = NULL;
    size_t np = 0;
    while (params[np].name) np++;
    herd_param *pc = calloc(np + 1, sizeof *pc);
    herd_value *work = map ? herd_value_copy(map) : NULL;
    if (!pc || (map && !work)) { ps->oom = 1; free(pc); herd_value_free(work); return; }
    memcpy(pc, params, np * sizeof *pc);
    char pre[256], path[1024];
    snprintf(pre, sizeof pre, "%s%s", where, where[0] ? "." : "");
    bool clean = true;
    for (size_t round = 0; round <= herd_len(map) + np; round++) {
        herd_err e = { 0 };
        herd_value *out = NULL;
        int rc = herd_kwargs_validate(pc, work, where, &out, &e);
        if (rc == 0) {
            if (ok && clean) *ok = out;
            else herd_value_free(out);
            break;
        }
        clean = false;
        if (rc == -ENOMEM) { ps->oom = 1; break; }
        /* which key: the longest given key or parameter the message is about */
        const char *key = NULL;
        bool given = false;
        for (size_t i = 0; i < herd_len(work); i++) {
            const char *k = herd_key_at(work, i);
            if (about(e.msg, pre, k) && (!key || strlen(k) > strlen(key))) key = k, given = true;
        }
        for (size_t i = 0; i < np; i++)
            if (about(e.msg, pre, pc[i].name) && (!key || strlen(pc[i].name) > strlen(key)))
                key = pc[i].name, given = false;
        herd_srcpos at;
        if (key && given) {
            cfg_join(path, sizeof path, pospath, key);
            at = cfg_find_pos(positions, path, strstr(e.msg, ": unknown key") != NULL);
        } else {
            at = cfg_find_pos(positions, pospath, true);
        }
        cfg_add_problem(ps, file, at, "%s", e.msg);
        if (!key) break;
        if (given) {
            herd_map_del(work, key);
        } else {
            size_t i = 0;
            while (i < np && strcmp(pc[i].name, key)) i++;
            if (i == np || !(pc[i].flags & HERD_PARAM_REQUIRED)) break;
            pc[i].flags &= ~HERD_PARAM_REQUIRED;
        }
    }
    free(pc);
    herd_value_free(work);
}

void cfg_free(cfgfile *c)
{
    free(c->file);
    herd_value_free(c->root);
    herd_value_free(c->pos);
    memset(c, 0, sizeof *c);
}

int cfg_read(const char *file, cfgfile *c, herd_err *err)
{
    memset(c, 0, sizeof *c);
    FILE *f = fopen(file, "rb");
    if (!f) return herd_err_set(err, -errno, "%s: %s", file, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && !S_ISREG(st.st_mode)) {
        fclose(f);
        return herd_err_set(err, -HERD_ECONFIG, "%s: not a regular file", file);
    }
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    int rc = 0;
    while (buf) {
        if (len + 1 >= cap) {
            if (cap > MAX_FILE) { rc = herd_err_set(err, -HERD_ECONFIG, "%s: larger than %u bytes", file, MAX_FILE); break; }
            char *nb = realloc(buf, cap *= 2);
            if (!nb) break;
            buf = nb;
        }
        size_t got = fread(buf + len, 1, cap - len - 1, f);
        len += got;
        if (got == 0) {
            if (ferror(f)) rc = herd_err_set(err, -EIO, "%s: read error", file);
            break;
        }
    }
    fclose(f);
    if (!rc && !buf) rc = herd_err_set(err, -ENOMEM, "out of memory");
    if (!rc) {
        rc = herd_value_parse_positions(buf, len, file, &c->root, &c->pos, err);
        if (!rc && !(c->file = strdup(file))) rc = herd_err_set(err, -ENOMEM, "out of memory");
    }
    free(buf);
    if (rc) cfg_free(c);
    return rc;
}

const herd_value *cfg_profiles(const cfgfile *c)
{
    const herd_value *p = herd_map_get(c->root, "profiles");
    return herd_typeof(p) == HERD_MAP ? p : NULL;
}

bool cfg_good_name(const char *s)
{
    if (!*s) return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-') return false;
    return true;
}

/* Structure of the file's top level: a map whose keys are known. */
void cfg_check_top(const cfgfile *c, problems *ps)
{
    herd_type t = herd_typeof(c->root);
    if (t != HERD_NIL && t != HERD_MAP) {
        char *d = herd_value_describe(c->root, 80);
        cfg_add_problem(ps, c->file, (herd_srcpos){ 1, 1 },
                    "expected a map with a \"profiles\" key at the top level, got %s", d ? d : "?");
        free(d);
        return;
    }
    cfg_validate_all(top_params, c->root, "", c->pos, "", c->file, ps, NULL);
}

/* Structure of profile `name`: its name, its keys and their types, address
 * against temporary-cluster keys. Each profile stands alone: one that is
 * wrong does not stop another from being used. */
void cfg_check_profile_structure(const cfgfile *c, const char *name, problems *ps)
{
    const herd_value *p = herd_map_get(cfg_profiles(c), name);
    char base[1024], path[1200];
    cfg_join(base, sizeof base, "profiles", name);
    if (!cfg_good_name(name)) {
        cfg_add_problem(ps, c->file, cfg_find_pos(c->pos, base, true),
                    "profiles.%s: profile names may contain only letters, digits, '_' and '-'", name);
        return;
    }
    if (herd_typeof(p) != HERD_MAP && herd_typeof(p) != HERD_NIL) {
        char *d = herd_value_describe(p, 80);
        cfg_add_problem(ps, c->file, cfg_find_pos(c->pos, base, false),
                    "profiles.%s: expected a map of profile keys (cluster_class, cluster_kwargs, "
                    "adapt_kwargs, client_kwargs, address, description), got %s", name, d ? d : "?");
        free(d);
        return;
    }
    cfg_validate_all(profile_params, p, "", c->pos, base, c->file, ps, NULL);
    const char *strs[] = { "cluster_class", "address" };
    for (int k = 0; k < 2; k++) {
        const herd_value *s = herd_map_get(p, strs[k]);
        if (herd_typeof(s) == HERD_STR && !*herd_as_str(s)) {
            cfg_join(path, sizeof path, base, strs[k]);
            cfg_add_problem(ps, c->file, cfg_find_pos(c->pos, path, false), "%s: expected a non-empty string", strs[k]);
        }
    }
    const herd_value *addr = herd_map_get(p, "address");
    if (herd_typeof(addr) != HERD_STR || !*herd_as_str(addr)) return;
    const char *with[] = { "cluster_class", "cluster_kwargs", "adapt_kwargs" };
    for (int k = 0; k < 3; k++) {
        if (herd_typeof(herd_map_get(p, with[k])) == HERD_NIL) continue;
        cfg_join(path, sizeof path, base, with[k]);
        herd_srcpos w = cfg_find_pos(c->pos, path, true);
        cfg_join(path, sizeof path, base, "address");
        cfg_add_problem(ps, c->file, cfg_find_pos(c->pos, path, true),
                    "address: \"%s\" connects to an existing scheduler; %s (line %d) only applies to a "
                    "temporary cluster and cannot be given with it", herd_as_str(addr), with[k], w.line);
    }
}

/* ---- profiles ---- */

void herd_profile_free(herd_profile *p)
{
    if (!p) return;
    free(p->name);
    free(p->file);
    free(p->description);
    free(p->cluster_class);
    free(p->address);
    herd_value_free(p->cluster_kwargs);
    herd_value_free(p->adapt_kwargs);
    herd_value_free(p->client_kwargs);
    herd_value_free(p->positions);
    free(p);
}

static char *dup_str(const herd_value *v, int *oom)
{
    const char *s = herd_as_str(v);
    if (!s || !*s) return NULL;
    char *d = strdup(s);
    if (!d) *oom = 1;
    return d;
}

static herd_value *dup_map(const herd_value *v, int *oom)
{
    if (herd_typeof(v) != HERD_MAP) return NULL;
    herd_value *d = herd_value_copy(v);
    if (!d) *oom = 1;
    return d;
}

/* Build profile `name` (present and structurally valid) of c. */
int cfg_make_profile(const cfgfile *c, const char *name, herd_profile **out, herd_err *err)
{
    const herd_value *pv = herd_map_get(cfg_profiles(c), name);
    herd_profile *p = calloc(1, sizeof *p);
    if (!p) return herd_err_set(err, -ENOMEM, "out of memory");
    int oom = 0;
    char pre[1024];
    snprintf(pre, sizeof pre, "profiles.%s", name);
    p->name = strdup(name);
    p->file = strdup(c->file);
    p->description = dup_str(herd_map_get(pv, "description"), &oom);
    p->cluster_class = dup_str(herd_map_get(pv, "cluster_class"), &oom);
    p->address = dup_str(herd_map_get(pv, "address"), &oom);
    p->cluster_kwargs = dup_map(herd_map_get(pv, "cluster_kwargs"), &oom);
    p->adapt_kwargs = dup_map(herd_map_get(pv, "adapt_kwargs"), &oom);
    p->client_kwargs = dup_map(herd_map_get(pv, "client_kwargs"), &oom);
    p->positions = herd_map();
    herd_srcpos_get(c->pos, pre, &p->at, NULL);
    size_t pl = strlen(pre);
    for (size_t i = 0; p->positions && i < herd_len(c->pos); i++) {
        const char *k = herd_key_at(c->pos, i);
        if (strncmp(k, pre, pl) || k[pl] != '.') continue;
        herd_value *v = herd_value_copy(herd_at(c->pos, i));
        if (!v || herd_map_set(p->positions, k + pl + 1, v)) oom = 1;
    }
    if (oom || !p->name || !p->file || !p->positions) {
        herd_profile_free(p);
        return herd_err_set(err, -ENOMEM, "out of memory");
    }
    *out = p;
    return 0;
}

/* "no profile "x"; did you mean "y"? profiles: a, b" (herd_did_you_mean). */
int cfg_no_such_profile(const cfgfile *c, const char *name, const char *via, herd_err *err)
{
    const herd_value *profs = cfg_profiles(c);
    size_t n = herd_len(profs), len = 0;
    if (!n) return herd_err_set(err, -HERD_ECONFIG, "%s: no profile \"%s\"%s; the file has no profiles", c->file, name, via);
    const char **names = calloc(n, sizeof *names);
    if (!names) return herd_err_set(err, -ENOMEM, "out of memory");
    char list[600] = "", dym[300] = "";
    for (size_t i = 0; i < n; i++) {
        names[i] = herd_key_at(profs, i);
        if (len < sizeof list) len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", i ? ", " : "", names[i]);
    }
    long best = herd_did_you_mean(name, names, n, 2);
    if (best >= 0) snprintf(dym, sizeof dym, "; did you mean \"%.200s\"?", names[best]);
    free(names);
    return herd_err_set(err, -HERD_ECONFIG, "%s: no profile \"%s\"%s%s%s profiles: %s", c->file, name, via, dym,
                        best >= 0 ? "" : ";", list);
}

int cfg_first_problem(problems *ps, herd_err *err)
{
    if (ps->oom) return herd_err_set(err, -ENOMEM, "out of memory");
    if (!ps->n) return 0;
    qsort(ps->v, ps->n, sizeof *ps->v, cfg_by_position);
    if (ps->n == 1) return herd_err_set(err, -HERD_ECONFIG, "%s", ps->v[0].msg);
    return herd_err_set(err, -HERD_ECONFIG, "%s (and %zu more problem%s: run `herd config check`)",
                        ps->v[0].msg, ps->n - 1, ps->n == 2 ? "" : "s");
}

/* Which profile: name, else $HERD_PROFILE, else "default" when c has it. */
int cfg_select_profile(const cfgfile *c, const char *name, herd_profile **out, herd_err *err)
{
    const char *via = "";
    if (!name || !*name) {
        const char *env = getenv("HERD_PROFILE");
        if (env && *env) name = env, via = " (from $HERD_PROFILE)";
    }
    if (!name || !*name) {
        if (!herd_map_get(cfg_profiles(c), "default")) return 0;
        name = "default";
    }
    if (!herd_map_get(cfg_profiles(c), name)) return cfg_no_such_profile(c, name, via, err);
    problems ps = { 0 };
    cfg_check_profile_structure(c, name, &ps);
    int rc = cfg_first_problem(&ps, err);
    cfg_problems_free(&ps);
    if (rc) return rc;
    return cfg_make_profile(c, name, out, err);
}

/* Read file and check its top level (each profile is checked when it is
 * used); the first problem is the error (c is then freed). */
int cfg_open(const char *file, cfgfile *c, herd_err *err)
{
    int rc = cfg_read(file, c, err);
    if (rc) return rc;
    problems ps = { 0 };
    cfg_check_top(c, &ps);
    rc = cfg_first_problem(&ps, err);
    cfg_problems_free(&ps);
    if (rc) cfg_free(c);
    return rc;
}

int herd_config_load_profile_from(const char *file, const char *name, herd_profile **out, herd_err *err)
{
    if (!out) return herd_err_set(err, -HERD_EARG, "herd_config_load_profile: out is NULL");
    *out = NULL;
    cfgfile c;
    int rc = cfg_open(file, &c, err);
    if (rc) return rc;
    rc = cfg_select_profile(&c, name, out, err);
    cfg_free(&c);
    return rc;
}

int herd_config_load_profile(const char *name, herd_profile **out, herd_err *err)
{
    if (!out) return herd_err_set(err, -HERD_EARG, "herd_config_load_profile: out is NULL");
    *out = NULL;
    char path[PATH_MAX];
    herd_err e = { 0 };
    int rc = herd_config_find(path, sizeof path, &e);
    if (rc == -ENOENT) {
        const char *env = getenv("HERD_PROFILE");
        if (name && *name)
            return herd_err_set(err, -HERD_ECONFIG, "profile \"%s\": %s", name, e.msg);
        if (env && *env)
            return herd_err_set(err, -HERD_ECONFIG, "profile \"%s\" (from $HERD_PROFILE): %s", env, e.msg);
        return 0;
    }
    if (rc) {
        if (err) *err = e;
        return rc;
    }
    return herd_config_load_profile_from(path, name, out, err);
}

/* ---- citing the file in errors ---- */

/* Where in p's file the message msg is about (see herd_profile_locate_error). */
bool cfg_locate(const herd_profile *p, const char *path, const char *msg, herd_srcpos *at)
{
    if (!p || !msg[0]) return false;
    char at_path[1024] = "";
    bool want_key = false;
    if (path && *path) {
        if (herd_srcpos_get(p->positions, path, NULL, NULL)) return false;
        snprintf(at_path, sizeof at_path, "%s", path);
    } else {
        const herd_value *maps[3] = { p->cluster_kwargs, p->adapt_kwargs, p->client_kwargs };
        for (int i = 0; i < 3 && !at_path[0]; i++) {
            char pre[32];
            snprintf(pre, sizeof pre, "%s.", herd_profile_kwargs[i]);
            if (strncmp(msg, pre, strlen(pre))) {
                if (maps[i] && about(msg, "", herd_profile_kwargs[i])) snprintf(at_path, sizeof at_path, "%s", herd_profile_kwargs[i]);
                continue;
            }
            const char *best = NULL;
            for (size_t j = 0; j < herd_len(maps[i]); j++) {
                const char *k = herd_key_at(maps[i], j);
                if (about(msg, pre, k) && (!best || strlen(k) > strlen(best))) best = k;
            }
            if (best) {
                cfg_join(at_path, sizeof at_path, herd_profile_kwargs[i], best);
                want_key = strstr(msg, ": unknown key") != NULL;
            } else if (maps[i] && strstr(msg, ": required key is missing")) {
                snprintf(at_path, sizeof at_path, "%s", herd_profile_kwargs[i]);
                want_key = true;
            }
        }
        const char *scalars[2] = { "cluster_class", "address" };
        const char *vals[2] = { p->cluster_class, p->address };
        for (int i = 0; i < 2 && !at_path[0]; i++)
            if (vals[i] && about(msg, "", scalars[i]) &&
                herd_srcpos_get(p->positions, scalars[i], NULL, NULL) == 0)
                snprintf(at_path, sizeof at_path, "%s", scalars[i]);
        if (!at_path[0]) return false;
    }
    *at = cfg_find_pos(p->positions, at_path, want_key);
    if (at->line == 1 && at->col == 1 && p->at.line) *at = p->at;
    return true;
}

int herd_profile_locate_error(const herd_profile *p, const char *path, herd_err *err)
{
    if (!err) return -HERD_EARG;
    herd_srcpos at;
    if (!cfg_locate(p, path, err->msg, &at)) return err->code;
    int code = err->code ? err->code : -HERD_ECONFIG;
    herd_err_prefix(err, "%s:%d:%d", p->file, at.line, at.col);
    err->code = code;
    return code;
}
