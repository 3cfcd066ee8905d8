/* core/registry.c — the provider registry: cluster_class names to provider
 * structs. "mod.Class" loads <dir>/mod.so (dots before the last one become
 * '/': "a.b.C" is a/b.so, symbol C) from the first search directory that has
 * it, the way Python imports the first module it finds; "path/x.so:Class"
 * loads one file; the seed's own strings ("distributed.LocalCluster", …) are
 * aliases. Every struct is checked (magic, ABI, size, name, hooks, schema)
 * before it is handed out.
 *
 * Module convention: besides the class symbols themselves, a provider module
 * exports `const herd_provider *const herd_providers[]`, a NULL-terminated
 * list of its classes. herd_provider_foreach (and so `herd providers` and the
 * "available:" list of errors) reads it; resolving a name only needs the
 * class symbol.
 *
 * Process-wide state, by nature: the cache of resolved names (keyed by name
 * and $HERD_PROVIDER_PATH) and the zero-padded copies of structs from older
 * ABI minors mirror what the dynamic loader holds. Modules are dlopen'ed
 * RTLD_NOW|RTLD_LOCAL and never closed, so a provider pointer stays valid for
 * the life of the process. A recursive mutex guards both (dlopen runs module
 * constructors, which may call back into herd). */
#include "internal.h"

#include <ctype.h>
#include <dirent.h>
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <limits.h>
#include <link.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- ABI sizes ---- */

/* Smallest struct_size a provider claiming ABI minor m may have: everything
 * through `close`, the last hook of minor 0. When a minor appends hooks, add
 * its size here; hooks past a struct's struct_size read as NULL (HOOK). */
static size_t min_size(unsigned minor)
{
    static const size_t sizes[] = {
        offsetof(herd_provider, close) + sizeof(((herd_provider *)0)->close), /* minor 0 */
        offsetof(herd_provider, scheduler_listen) + sizeof(((herd_provider *)0)->scheduler_listen), /* 1 */
        offsetof(herd_provider, scheduler_listen) + sizeof(((herd_provider *)0)->scheduler_listen), /* 2: params grew */
    };
    size_t n = sizeof sizes / sizeof sizes[0];
    return sizes[minor < n ? minor : n - 1];
}

/* A hook of p, or NULL when p's struct ends before it (older minor). The one
 * place that reads a raw struct: everything else gets the padded copy
 * (normalise), whose hooks can all be read. */
#define HOOK(p, h) ((p)->struct_size >= offsetof(herd_provider, h) + sizeof((p)->h) ? (p)->h : NULL)

/* ---- small string helpers ---- */

typedef struct sbuf { char *s; size_t len, cap; } sbuf;

static void sb_add(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_add(sbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if (b->len + (size_t)n + 1 > b->cap) {
        size_t cap = 2 * (b->len + (size_t)n + 1);
        char *s = realloc(b->s, cap);
        if (!s) return;
        b->s = s;
        b->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

static const char *sb_str(const sbuf *b) { return b->s ? b->s : ""; }

static bool is_ident(const char *s, size_t n)
{
    if (n == 0 || isdigit((unsigned char)s[0])) return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_') return false;
    return true;
}

/* ---- checking a struct ---- */

/* Size and type of the exported object p points into, from the module's
 * symbol table. 0 when unknown (p not in a loaded module's dynsym). */
static size_t symbol_size(const void *p, bool *is_func)
{
    Dl_info di;
    const ElfW(Sym) *sym = NULL;
    *is_func = false;
    if (!dladdr1(p, &di, (void **)&sym, RTLD_DL_SYMENT) || !sym || di.dli_saddr != p) return 0;
    /* ST_TYPE is the same macro for 32- and 64-bit symbols */
    *is_func = ELF64_ST_TYPE(sym->st_info) == STT_FUNC || ELF64_ST_TYPE(sym->st_info) == STT_GNU_IFUNC;
    return (size_t)sym->st_size;
}

static int check_params(const herd_param *ps, const char *label, const char *where, herd_err *err)
{
    if (!ps) return 0;
    for (size_t i = 0; ps[i].name; i++) {
        if (i >= 1024)
            return herd_err_set(err, HERD_EABI, "provider %s: params has no { NULL } terminator "
                                "within 1024 entries%s", label, where);
        const herd_param *q = &ps[i];
        if (!is_ident(q->name, strlen(q->name)))
            return herd_err_set(err, HERD_EABI, "provider %s: params[%zu] name \"%s\": expected an "
                                "identifier (letters, digits, '_')%s", label, i, q->name, where);
        if ((unsigned)q->type > (unsigned)HERD_PARAM_ANY)
            return herd_err_set(err, HERD_EABI, "provider %s: param \"%s\": type %d is not a "
                                "herd_param_type (0..%d)%s", label, q->name, (int)q->type,
                                (int)HERD_PARAM_ANY, where);
        if (q->flags & ~(HERD_PARAM_REQUIRED | HERD_PARAM_SECRET | HERD_PARAM_NULLABLE))
            return herd_err_set(err, HERD_EABI, "provider %s: param \"%s\": unknown flags 0x%x%s",
                                label, q->name, q->flags, where);
        if ((q->flags & HERD_PARAM_REQUIRED) && q->default_yaml)
            return herd_err_set(err, HERD_EABI, "provider %s: param \"%s\" is required and has a "
                                "default (\"%s\"): one or the other%s", label, q->name,
                                q->flags & HERD_PARAM_SECRET ? "<secret>" : q->default_yaml, where);
        char why[300];
        if (herd_param_binding_check(q, 0, why, sizeof why))
            return herd_err_set(err, HERD_EABI, "provider %s: param \"%s\": %s%s", label, q->name, why, where);
        for (size_t j = 0; j < i; j++)
            if (strcmp(ps[j].name, q->name) == 0)
                return herd_err_set(err, HERD_EABI, "provider %s: param \"%s\" is declared twice "
                                    "(params[%zu] and params[%zu])%s", label, q->name, j, i, where);
        if (q->default_yaml) {
            herd_value *v = NULL;
            herd_err e = { 0 };
            if (herd_value_parse(q->default_yaml, &v, &e) != 0)
                return herd_err_set(err, HERD_EABI, "provider %s: param \"%s\": default is not "
                                    "valid YAML: %s%s", label, q->name,
                                    q->flags & HERD_PARAM_SECRET ? "<secret>" : e.msg, where);
            herd_value_free(v);
        }
    }
    return 0;
}

/* label: how messages name the provider, quoted ("\"aws.FargateCluster\""); symbol: what it must be called (or
 * NULL); file: where it came from (or NULL). */
typedef struct padded padded;
static int normalise(const herd_provider *p, const char *label, const char *where, const herd_provider **out,
                     padded **made, herd_err *err);
static void padded_keep(padded *q);
static void padded_free(padded *q);

/* On success *out (if not NULL) is the copy to use (normalise). */
static int check(const herd_provider *p, const char *label, const char *symbol, const char *file,
                 const herd_provider **out, herd_err *err)
{
    char where[PATH_MAX + 16] = "";
    if (file) snprintf(where, sizeof where, " (file %s)", file);
    if (!p) return herd_err_set(err, HERD_EARG, "provider %s: NULL provider%s", label, where);

    bool is_func;
    size_t objsize = symbol_size(p, &is_func);
    if (is_func)
        return herd_err_set(err, HERD_EABI, "provider %s: symbol%s%s%s is a function, not a "
                            "herd_provider struct (define it with HERD_PROVIDER)%s",
                            label, symbol ? " \"" : "", symbol ? symbol : "", symbol ? "\"" : "", where);
    size_t head = offsetof(herd_provider, struct_size) + sizeof p->struct_size;
    if (objsize && objsize < head)
        return herd_err_set(err, HERD_EABI, "provider %s: symbol is %zu bytes, too small for a "
                            "herd_provider%s", label, objsize, where);
    if (memcmp(p->magic, "HRDP", 4) != 0) {
        char m[20];
        size_t o = 0;
        for (int i = 0; i < 4; i++) {
            unsigned char c = (unsigned char)p->magic[i];
            o += (size_t)snprintf(m + o, sizeof m - o, isprint(c) ? "%c" : "\\x%02x", c);
        }
        return herd_err_set(err, HERD_EABI, "provider %s: bad magic \"%s\", expected \"HRDP\" "
                            "(not a herd_provider struct)%s", label, m, where);
    }
    if (p->abi_major != HERD_PROVIDER_ABI_MAJOR)
        return herd_err_set(err, HERD_EABI, "provider %s: ABI major %u, this herd speaks %d%s",
                            label, (unsigned)p->abi_major, HERD_PROVIDER_ABI_MAJOR, where);
    size_t need = min_size(p->abi_minor);
    if (p->struct_size < need)
        return herd_err_set(err, HERD_EABI, "provider %s: struct_size %u, ABI %u.%u needs at "
                            "least %zu%s", label, (unsigned)p->struct_size, (unsigned)p->abi_major,
                            (unsigned)p->abi_minor, need, where);
    if (objsize && objsize < p->struct_size)
        return herd_err_set(err, HERD_EABI, "provider %s: struct_size %u but the exported "
                            "object is only %zu bytes%s", label, (unsigned)p->struct_size, objsize, where);
    if (!p->name || !*p->name)
        return herd_err_set(err, HERD_EABI, "provider %s: name is empty%s", label, where);
    if (symbol && strcmp(p->name, symbol) != 0)
        return herd_err_set(err, HERD_EABI, "provider %s: found by symbol \"%s\" but names "
                            "itself \"%s\" (name must equal the exported symbol)%s",
                            label, symbol, p->name, where);
    struct { const char *name; bool set; } hooks[] = {
        { "create", HOOK(p, create) != NULL },  { "start", HOOK(p, start) != NULL },
        { "scale_up", HOOK(p, scale_up) != NULL }, { "retire", HOOK(p, retire) != NULL },
        { "status", HOOK(p, status) != NULL },  { "close", HOOK(p, close) != NULL },
    };
    for (size_t i = 0; i < sizeof hooks / sizeof hooks[0]; i++)
        if (!hooks[i].set)
            return herd_err_set(err, HERD_EABI, "provider %s: required hook %s is NULL%s",
                                label, hooks[i].name, where);
    const herd_provider *np = NULL;
    padded *made = NULL;
    int rc = normalise(p, label, where, &np, &made, err);
    if (rc) return rc;
    if ((rc = check_params(np->params, label, where, err)) || !out) {
        padded_free(made);             /* a check alone keeps nothing */
        return rc;
    }
    padded_keep(made);
    *out = np;
    return 0;
}

int herd_provider_adopt(const herd_provider *p, const char *what, const herd_provider **out, herd_err *err)
{
    char label[300];
    snprintf(label, sizeof label, "\"%.280s\"",
             what ? what : (p && memcmp(p->magic, "HRDP", 4) == 0 && p->name ? p->name : "?"));
    return check(p, label, NULL, NULL, out, err);
}

int herd_provider_check(const herd_provider *p, const char *what, herd_err *err)
{
    return herd_provider_adopt(p, what, NULL, err);
}

/* ---- normalised copies ---- */

/* A struct from an older minor is shorter than ours: hand out a zero-padded
 * copy so that callers may read every hook (absent ones are NULL). Before
 * ABI 1.2 a herd_param had no binding fields: such a provider's params are
 * read with their own layout and copied into ours (unbound). Every provider
 * the core uses comes through here: resolved, handed in directly
 * (cluster_provider) or made by a factory (herd_provider_adopt). */
typedef struct param_v1 {          /* herd_param of ABI 1.0 and 1.1 */
    const char *name;
    herd_param_type type;
    const char *default_yaml;
    const char *doc;
    unsigned flags;
    double min, max;
} param_v1;

typedef struct padded {
    struct padded *next;
    const herd_provider *orig;
    herd_provider raw;             /* the original's bytes (up to our size), to match it again */
    herd_provider copy;
    herd_param *params;            /* converted params (owned), or NULL */
} padded;

static pthread_mutex_t lock = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
static padded *padded_list;

static void padded_free(padded *q)
{
    if (q) free(q->params);
    free(q);
}

static size_t raw_size(const herd_provider *p)
{
    return p->struct_size < sizeof(herd_provider) ? p->struct_size : sizeof(herd_provider);
}

/* *out: p itself when it has our layout, else a padded copy; *made: the
 * copy when it is new (the caller keeps or frees it), else NULL. A struct
 * met before (same address and bytes) gets the same copy. */
static int normalise(const herd_provider *p, const char *label, const char *where, const herd_provider **out,
                     padded **made, herd_err *err)
{
    *made = NULL;
    bool old_params = p->abi_minor < 2 && p->params;
    if (p->struct_size >= sizeof(herd_provider) && !old_params) { *out = p; return 0; }
    pthread_mutex_lock(&lock);
    padded *q = padded_list;
    while (q && !(q->orig == p && !memcmp(&q->raw, p, raw_size(p)))) q = q->next;
    pthread_mutex_unlock(&lock);
    if (q) { *out = &q->copy; return 0; }
    size_t n = 0;
    const param_v1 *ov = (const param_v1 *)(const void *)p->params;
    while (old_params && ov[n].name)
        if (++n > 1024)
            return herd_err_set(err, HERD_EABI, "provider %s: params has no { NULL } terminator within 1024 "
                                "entries%s", label, where);
    if (!(q = calloc(1, sizeof *q)) || (old_params && !(q->params = calloc(n + 1, sizeof *q->params)))) {
        padded_free(q);
        return herd_err_set(err, -ENOMEM, "provider %s: out of memory", label);
    }
    memcpy(&q->raw, p, raw_size(p));
    memcpy(&q->copy, p, raw_size(p));
    q->copy.struct_size = sizeof(herd_provider);
    for (size_t i = 0; i < n; i++)
        q->params[i] = (herd_param){ ov[i].name, ov[i].type, ov[i].default_yaml, ov[i].doc, ov[i].flags,
                                     ov[i].min, ov[i].max, 0, 0 };
    if (old_params) q->copy.params = q->params;
    q->orig = p;
    *made = q;
    *out = &q->copy;
    return 0;
}

/* Keep a new copy for the life of the process (providers stay loaded). */
static void padded_keep(padded *q)
{
    if (!q) return;
    pthread_mutex_lock(&lock);
    q->next = padded_list;
    padded_list = q;
    pthread_mutex_unlock(&lock);
}

/* ---- aliases ---- */

static const struct { const char *from, *to; } aliases[] = {
    { "LocalCluster",                          "local.LocalCluster" },
    { "distributed.LocalCluster",              "local.LocalCluster" },
    { "dask.distributed.LocalCluster",         "local.LocalCluster" },
    { "distributed.SSHCluster",                "ssh.SSHCluster" },
    { "dask.distributed.SSHCluster",           "ssh.SSHCluster" },
    { "dask_cloudprovider.aws.FargateCluster", "aws.FargateCluster" },
    { "dask_cloudprovider.aws.ECSCluster",     "aws.ECSCluster" },
    { "dask_jobqueue.SLURMCluster",            "slurm.SLURMCluster" },
};

static const char *unalias(const char *name)
{
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
        if (strcmp(aliases[i].from, name) == 0) return aliases[i].to;
    return name;
}

/* ---- scanning the search path ---- */

typedef struct found {
    char *qname, *path;
    const herd_provider *p;
} found;

typedef struct foundv { found *v; size_t n, cap; } foundv;

static void foundv_free(foundv *f)
{
    for (size_t i = 0; i < f->n; i++) { free(f->v[i].qname); free(f->v[i].path); }
    free(f->v);
    memset(f, 0, sizeof *f);
}

static void foundv_push(foundv *f, const char *qname, const char *path, const herd_provider *p)
{
    if (f->n == f->cap) {
        size_t cap = f->cap ? 2 * f->cap : 16;
        found *v = realloc(f->v, cap * sizeof *v);
        if (!v) return;
        f->v = v;
        f->cap = cap;
    }
    found *e = &f->v[f->n];
    if (!(e->qname = strdup(qname)) || !(e->path = strdup(path))) {
        free(e->qname);
        free(e->path);
        return;
    }
    e->p = p;
    f->n++;
}

/* The classes a loaded module lists in herd_providers[], checked. */
static void module_classes(void *h, const char *mod, const char *path, foundv *out)
{
    dlerror();
    const herd_provider *const *list = dlsym(h, "herd_providers");
    if (!list) return;
    for (size_t i = 0; list[i] && i < 256; i++) {
        const herd_provider *p = list[i];
        if (memcmp(p->magic, "HRDP", 4) != 0 || !p->name) continue;
        char qname[512], label[520];
        int k = snprintf(qname, sizeof qname, "%s.%s", mod, p->name);
        if (k < 0 || (size_t)k >= sizeof qname) continue;
        snprintf(label, sizeof label, "\"%s\"", qname);
        if (dlsym(h, p->name) != (void *)p) continue;   /* must be exported under its name */
        const herd_provider *np = NULL;
        if (check(p, label, NULL, path, &np, NULL) == 0) foundv_push(out, qname, path, np);
    }
}

static bool has_suffix(const char *s, const char *suf)
{
    size_t ls = strlen(s), lf = strlen(suf);
    return ls > lf && strcmp(s + ls - lf, suf) == 0;
}

/* Scan dir (module prefix mod, "" at the top; rel the same as a path) up
 * to two levels down. earlier: the search directories before this one; a
 * module present in one of them shadows this one, as in resolution. */
static void scan_dir(const char *dir, const char *mod, const char *rel, int depth,
                     char *const *earlier, size_t nearlier, foundv *out)
{
    struct dirent **ents = NULL;
    int n = scandir(dir, &ents, NULL, alphasort);
    if (n < 0) return;
    for (int i = 0; i < n; i++) {
        const char *e = ents[i]->d_name;
        char path[PATH_MAX], sub[512], subrel[512];
        if (e[0] == '.') continue;
        snprintf(path, sizeof path, "%s/%s", dir, e);
        struct stat st;
        if (stat(path, &st) != 0) continue;
        if (S_ISDIR(st.st_mode)) {
            if (depth >= 2 || !is_ident(e, strlen(e))) continue;
            snprintf(sub, sizeof sub, "%s%s%s", mod, *mod ? "." : "", e);
            snprintf(subrel, sizeof subrel, "%s%s%s", rel, *rel ? "/" : "", e);
            scan_dir(path, sub, subrel, depth + 1, earlier, nearlier, out);
        } else if (S_ISREG(st.st_mode) && has_suffix(e, ".so") && is_ident(e, strlen(e) - 3)) {
            snprintf(sub, sizeof sub, "%s%s%.*s", mod, *mod ? "." : "", (int)(strlen(e) - 3), e);
            bool shadowed = false;
            for (size_t k = 0; k < nearlier && !shadowed; k++) {
                char other[2 * PATH_MAX];
                snprintf(other, sizeof other, "%s/%s%s%s", earlier[k], rel, *rel ? "/" : "", e);
                shadowed = access(other, F_OK) == 0;
            }
            if (shadowed) continue;
            void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
            if (!h) { dlerror(); continue; }
            size_t before = out->n;
            module_classes(h, sub, path, out);
            if (out->n == before) dlclose(h);   /* not a provider module */
        }
    }
    for (int i = 0; i < n; i++) free(ents[i]);
    free(ents);
}

static void scan_all(foundv *out)
{
    char **dirs = herd_provider_search_path();
    for (size_t i = 0; dirs && dirs[i]; i++) scan_dir(dirs[i], "", "", 0, dirs, i, out);
    herd_strv_free(dirs);
}

char **herd_provider_search_path(void)
{
    return herd_search_dirs("providers", "HERD_PROVIDER_PATH");
}

int herd_provider_foreach(void (*fn)(const char *qualified_name, const herd_provider *p,
                                     const char *path, void *ud), void *ud)
{
    if (!fn) return -HERD_EARG;
    foundv f = { 0 };
    pthread_mutex_lock(&lock);
    scan_all(&f);
    pthread_mutex_unlock(&lock);
    for (size_t i = 0; i < f.n; i++) fn(f.v[i].qname, f.v[i].p, f.v[i].path, ud);
    foundv_free(&f);
    return 0;
}

/* ", "-separated qualified names of the providers found, and the closest
 * one to `name`: by the whole name, else by the class part alone. */
static void available(const char *name, sbuf *list, char *best, size_t cap)
{
    foundv f = { 0 };
    scan_all(&f);
    const char *cls = strrchr(name, '.');
    cls = cls ? cls + 1 : name;
    size_t lim = strlen(name) / 3 > 2 ? strlen(name) / 3 : 2;
    size_t climit = strlen(cls) / 3 > 2 ? strlen(cls) / 3 : 2;
    const char **qnames = calloc(f.n + 1, sizeof *qnames), **classes = calloc(f.n + 1, sizeof *classes);
    for (size_t i = 0; i < f.n; i++) {
        sb_add(list, "%s%s", i ? ", " : "", f.v[i].qname);
        if (qnames && classes) qnames[i] = f.v[i].qname, classes[i] = f.v[i].p->name;
    }
    long pick = -1;
    if (qnames && classes && (pick = herd_did_you_mean(name, qnames, f.n, lim)) < 0)
        pick = herd_did_you_mean(cls, classes, f.n, climit);
    snprintf(best, cap, "%s", pick >= 0 ? f.v[pick].qname : "");
    free(qnames);
    free(classes);
    foundv_free(&f);
}

/* label: the name as given, quoted, with its alias ("\"x\" (alias of \"y\")");
 * name: what to find near matches for. */
static int err_unknown(const char *label, const char *name, const char *why, herd_err *err)
{
    sbuf list = { 0 };
    char best[512];
    available(name, &list, best, sizeof best);
    char dym[600] = "";
    if (best[0]) snprintf(dym, sizeof dym, "; did you mean \"%s\"?", best);
    int rc = herd_err_set(err, HERD_ENOPROVIDER, "unknown cluster_class %s: %s; available: %s%s",
                          label, why, list.len ? sb_str(&list) : "none (set HERD_PROVIDER_PATH)", dym);
    free(list.s);
    return rc;
}

/* ---- resolving ---- */

typedef struct cached { struct cached *next; char *key; const herd_provider *p; } cached;
static cached *cache;

static int take_symbol(void *h, const char *label, const char *symbol, const char *path,
                       const herd_provider **out, herd_err *err)
{
    dlerror();
    const herd_provider *p = dlsym(h, symbol);
    if (!p) {
        char de[512];   /* copied: the next dl call reuses dlerror's buffer */
        const char *e = dlerror();
        snprintf(de, sizeof de, "%s", e ? e : "not found");
        /* list what the module does offer */
        sbuf classes = { 0 };
        const herd_provider *const *list = dlsym(h, "herd_providers");
        for (size_t i = 0; list && list[i] && i < 256; i++)
            if (memcmp(list[i]->magic, "HRDP", 4) == 0 && list[i]->name)
                sb_add(&classes, "%s%s", classes.len ? ", " : "", list[i]->name);
        int rc = herd_err_set(err, HERD_ENOPROVIDER, "provider %s: %s has no symbol \"%s\" (%s); "
                              "it exports: %s", label, path, symbol, de,
                              classes.len ? sb_str(&classes) : "no herd_providers[] list");
        free(classes.s);
        return rc;
    }
    return check(p, label, symbol, path, out, err);
}

static int open_file(const char *path, const char *label, void **h, herd_err *err)
{
    dlerror();
    if (!(*h = dlopen(path, RTLD_NOW | RTLD_LOCAL))) {
        const char *de = dlerror();
        return herd_err_set(err, HERD_ENOPROVIDER, "provider %s: cannot load %s: %s",
                            label, path, de ? de : "unknown error");
    }
    return 0;
}

/* "path/to/file.so:Class" */
static int resolve_file(const char *name, const char *colon, const herd_provider **out, herd_err *err)
{
    const char *symbol = colon + 1;
    size_t plen = (size_t)(colon - name);
    if (plen == 0 || plen >= PATH_MAX - 2 || !is_ident(symbol, strlen(symbol)))
        return herd_err_set(err, HERD_ENOPROVIDER, "cluster_class \"%s\": expected "
                            "\"path/to/file.so:Class\" with Class an identifier", name);
    char path[PATH_MAX], label[PATH_MAX + 8];
    snprintf(label, sizeof label, "\"%.*s\"", PATH_MAX - 8, name);
    /* a path without '/' would send dlopen to the library search path */
    snprintf(path, sizeof path, "%s%.*s", memchr(name, '/', plen) ? "" : "./", (int)plen, name);
    if (access(path, R_OK) != 0) {
        int e = errno;
        char cwd[PATH_MAX];
        return herd_err_set(err, HERD_ENOPROVIDER, "provider %s: cannot load %s: %s%s%s%s", label,
                            path, strerror(e), path[0] != '/' ? " (relative to " : "",
                            path[0] != '/' ? (getcwd(cwd, sizeof cwd) ? cwd : "?") : "",
                            path[0] != '/' ? ")" : "");
    }
    void *h;
    int rc = open_file(path, label, &h, err);
    if (rc) return rc;
    return take_symbol(h, label, symbol, path, out, err);
}

/* "a.b.Class": a/b.so along the search path. */
static int resolve_module(const char *name, const char *qname, const herd_provider **out, herd_err *err)
{
    const char *dot = strrchr(qname, '.');
    if (!dot) {
        char label[600];
        snprintf(label, sizeof label, "\"%.500s\"", name);
        return err_unknown(label, name, "expected \"module.Class\" (e.g. \"local.LocalCluster\") or "
                                 "\"path/to/file.so:Class\"", err);
    }
    const char *symbol = dot + 1;
    char rel[PATH_MAX];
    size_t mlen = (size_t)(dot - qname);
    if (mlen >= sizeof rel - 4 || !is_ident(symbol, strlen(symbol)))
        return herd_err_set(err, HERD_ENOPROVIDER, "cluster_class \"%s\": expected \"module.Class\" "
                            "with identifiers separated by dots", name);
    for (size_t i = 0, start = 0; i <= mlen; i++) {
        if (i == mlen || qname[i] == '.') {
            if (!is_ident(qname + start, i - start))
                return herd_err_set(err, HERD_ENOPROVIDER, "cluster_class \"%s\": expected "
                                    "\"module.Class\" with identifiers separated by dots", name);
            start = i + 1;
        }
        rel[i] = i < mlen && qname[i] == '.' ? '/' : qname[i];
    }
    rel[mlen] = '\0';
    char label[600];
    if (strcmp(name, qname) == 0) snprintf(label, sizeof label, "\"%.500s\"", name);
    else snprintf(label, sizeof label, "\"%.500s\" (alias of \"%s\")", name, qname);

    char **dirs = herd_provider_search_path();
    sbuf tried = { 0 };
    int rc = 1;
    for (char **d = dirs; d && *d && rc == 1; d++) {
        char path[2 * PATH_MAX + 8];
        snprintf(path, sizeof path, "%s/%s.so", *d, rel);
        sb_add(&tried, "%s%s", tried.len ? ", " : "", *d);
        if (access(path, F_OK) != 0) continue;
        void *h;
        rc = open_file(path, label, &h, err);
        if (rc == 0) rc = take_symbol(h, label, symbol, path, out, err);
    }
    herd_strv_free(dirs);
    if (rc == 1) {
        char why[PATH_MAX + 64];
        snprintf(why, sizeof why, "no %s.so in %s", rel, tried.len ? sb_str(&tried) : "(no directories)");
        rc = err_unknown(label, qname, why, err);
    }
    free(tried.s);
    return rc;
}

int herd_provider_resolve(const char *name, const herd_provider **out, herd_err *err)
{
    if (!out) return herd_err_set(err, HERD_EARG, "herd_provider_resolve: out is NULL");
    *out = NULL;
    if (!name || !*name)
        return herd_err_set(err, HERD_EARG, "cluster_class: expected a non-empty string "
                            "(\"module.Class\" or \"path/to/file.so:Class\")");
    herd_err_clear(err);
    /* the search path is part of the key: tests and tools change it */
    const char *env = getenv("HERD_PROVIDER_PATH");
    size_t klen = strlen(name) + (env ? strlen(env) : 0) + 2;
    char *key = malloc(klen);
    if (!key) return herd_err_set(err, -ENOMEM, "cluster_class \"%s\": out of memory", name);
    snprintf(key, klen, "%s\n%s", name, env ? env : "");

    pthread_mutex_lock(&lock);
    int rc = 0;
    for (cached *c = cache; c; c = c->next)
        if (strcmp(c->key, key) == 0) { *out = c->p; break; }
    if (!*out) {
        const char *colon = strrchr(name, ':');
        rc = colon ? resolve_file(name, colon, out, err)
                   : resolve_module(name, unalias(name), out, err);
        cached *c = rc == 0 ? malloc(sizeof *c) : NULL;
        if (c) {
            c->key = key;
            c->p = *out;
            c->next = cache;
            cache = c;
            key = NULL;
        }
    }
    pthread_mutex_unlock(&lock);
    free(key);
    return rc;
}
