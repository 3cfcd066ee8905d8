/* core/cli/providers.c — `herd providers`: list the providers on the search
 * path, show one provider's cluster_kwargs schema, print the search path, and
 * run the conformance suite (conformance.c) on a provider. */
#include <herd/herd.h>

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "conformance.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: herd providers [list]       providers found: name, summary, file\n"
                 "       herd providers show NAME    a provider's parameters (NAME as in cluster_class)\n"
                 "       herd providers path         the directories searched, in order\n"
                 "       herd providers test NAME|PATH.so [options]\n"
                 "                                   run the conformance suite on a provider (every\n"
                 "                                   class PATH.so lists, or PATH.so:Class)\n"
                 "       herd providers rules        the rules the suite checks\n"
                 "\ntest options:\n"
                 "  --cluster-kwargs YAML  the cluster's kwargs (default \"{n_workers: N}\"); they must\n"
                 "                         start exactly N workers\n"
                 "  --workers N            how many workers the kwargs start (default 2)\n"
                 "  --timeout S            seconds each wait may take (default 60)\n"
                 "  --pids auto|local|remote  whether the pids status reports are processes on\n"
                 "                         this machine, which the suite then checks and kills\n"
                 "                         (default auto: when /proc shows each running its worker)\n"
                 "  --verbose              the runtime's INFO log lines too (default: warnings)\n"
                 "\nThe search path is $HERD_PROVIDER_PATH (colon-separated), then the build or\n"
                 "install tree this herd belongs to (build/providers, PREFIX/lib/herd/providers).\n");
}

typedef struct row { char *name, *summary, *path; } row;
typedef struct rows { row *v; size_t n, cap; } rows;

static void collect(const char *qname, const herd_provider *p, const char *path, void *ud)
{
    rows *r = ud;
    if (r->n == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 16;
        row *v = realloc(r->v, cap * sizeof *v);
        if (!v) return;
        r->v = v;
        r->cap = cap;
    }
    row *e = &r->v[r->n++];
    e->name = strdup(qname);
    e->summary = strdup(p->summary ? p->summary : "");
    e->path = strdup(path);
}

static int list(void)
{
    rows r = { 0 };
    int rc = herd_provider_foreach(collect, &r);
    if (rc < 0) {
        fprintf(stderr, "herd providers: %s\n", herd_strerror(rc));
        return 1;
    }
    size_t wn = 4, ws = 7;
    for (size_t i = 0; i < r.n; i++) {
        if (r.v[i].name && strlen(r.v[i].name) > wn) wn = strlen(r.v[i].name);
        if (r.v[i].summary && strlen(r.v[i].summary) > ws) ws = strlen(r.v[i].summary);
    }
    if (r.n == 0) {
        char **dirs = herd_provider_search_path();
        fprintf(stderr, "herd providers: none found in");
        for (char **d = dirs; d && *d; d++) fprintf(stderr, "%s %s", d == dirs ? "" : ",", *d);
        fprintf(stderr, " (set HERD_PROVIDER_PATH)\n");
        herd_strv_free(dirs);
    } else {
        printf("%-*s  %-*s  %s\n", (int)wn, "NAME", (int)ws, "SUMMARY", "FILE");
    }
    for (size_t i = 0; i < r.n; i++) {
        printf("%-*s  %-*s  %s\n", (int)wn, r.v[i].name ? r.v[i].name : "?", (int)ws,
               r.v[i].summary ? r.v[i].summary : "", r.v[i].path ? r.v[i].path : "?");
        free(r.v[i].name);
        free(r.v[i].summary);
        free(r.v[i].path);
    }
    free(r.v);
    return 0;
}

static void print_flags(unsigned f)
{
    const char *names[] = { "required", "secret", "nullable" };
    unsigned bits[] = { HERD_PARAM_REQUIRED, HERD_PARAM_SECRET, HERD_PARAM_NULLABLE };
    bool any = false;
    for (int i = 0; i < 3; i++)
        if (f & bits[i]) { printf("%s%s", any ? ", " : "", names[i]); any = true; }
    if (!any) printf("-");
}

static int show(const char *name)
{
    const herd_provider *p;
    herd_err err = { 0 };
    if (herd_provider_resolve(name, &p, &err) != 0) {
        fprintf(stderr, "herd providers show: %s\n", err.msg);
        return 1;
    }
    printf("%s — %s\n", p->name, p->summary ? p->summary : "");
    printf("ABI %u.%u; hooks: start_scheduler %s, worker_resources %s\n",
           (unsigned)p->abi_major, (unsigned)p->abi_minor, p->start_scheduler ? "yes" : "no",
           p->worker_resources ? "yes" : "no");
    if (!p->params || !p->params[0].name) {
        printf("\nno cluster_kwargs parameters\n");
        return 0;
    }
    printf("\ncluster_kwargs:\n");
    for (const herd_param *q = p->params; q->name; q++) {
        printf("\n  %s\n", q->name);
        printf("    type:     %s\n", herd_param_type_name(q->type));
        if (q->flags & HERD_PARAM_SECRET)
            printf("    default:  %s\n", q->default_yaml ? "<secret>" : "(none)");
        else
            printf("    default:  %s\n", q->default_yaml ? q->default_yaml : "(none)");
        printf("    flags:    ");
        print_flags(q->flags);
        printf("\n");
        if (q->min < q->max) printf("    range:    %g .. %g\n", q->min, q->max);
        if (q->doc && *q->doc) printf("    doc:      %s\n", q->doc);
    }
    return 0;
}

static int path(void)
{
    char **dirs = herd_provider_search_path();
    if (!dirs) {
        fprintf(stderr, "herd providers path: out of memory\n");
        return 1;
    }
    for (char **d = dirs; *d; d++) printf("%s\n", *d);
    herd_strv_free(dirs);
    return 0;
}

/* ---- the conformance suite ---- */

static void report(void *ud, const herd_conformance_rule *rule, const char *outcome)
{
    int *nskipped = ud;
    if (!strncmp(outcome, "skipped", 7)) ++*nskipped;
    printf("  %-14s %s\n", rule->id, outcome);
    fflush(stdout);
}

static int rules(void)
{
    for (const herd_conformance_rule *r = herd_conformance_rules; r->id; r++)
        printf("%-14s %s\n", r->id, r->text);
    return 0;
}

/* Run both parts of the suite on one class; 0 if it conforms. */
static int test_one(const char *name, herd_conformance_opts *o)
{
    const herd_provider *p;
    herd_err err = { 0 };
    if (herd_provider_resolve(name, &p, &err)) {
        fprintf(stderr, "herd providers test: %s\n", err.msg);
        return 1;
    }
    int nskipped = 0;
    o->provider = p;
    o->ud = &nskipped;
    printf("%s (%s): conformance, %d worker%s, timeout %g s\n", name, p->name, o->n_initial,
           o->n_initial == 1 ? "" : "s", o->timeout);
    fflush(stdout);
    if (herd_conformance_basic(o, &err) || herd_conformance_lifecycle(o, &err)) {
        printf("  FAILED         %s\n%s: does not conform\n", err.msg, name);
        return 1;
    }
    printf("%s: conforms (%d rule%s skipped)\n", name, nskipped, nskipped == 1 ? "" : "s");
    return 0;
}

/* "PATH.so" without ":Class": every class its herd_providers[] lists. */
static int test_file(const char *path, herd_conformance_opts *o)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "herd providers test: cannot load %s: %s\n", path, dlerror());
        return 1;
    }
    const herd_provider *const *list = dlsym(h, "herd_providers");
    int rc = 0, n = 0;
    for (size_t i = 0; list && list[i] && i < 256; i++) {
        const char *cls = list[i]->name;
        if (!cls) continue;
        size_t len = strlen(path) + strlen(cls) + 2;
        char *name = malloc(len);
        if (!name) { rc = 1; break; }
        snprintf(name, len, "%s:%s", path, cls);
        rc |= test_one(name, o);
        free(name);
        n++;
    }
    dlclose(h);
    if (!n) {
        fprintf(stderr, "herd providers test: %s lists no provider in herd_providers[] "
                "(name one as %s:Class)\n", path, path);
        return 1;
    }
    return rc;
}

static int test(int argc, char **argv)
{
    herd_conformance_opts o = { .n_initial = 2, .timeout = 60, .pids = HERD_CONF_PIDS_AUTO, .report = report };
    const char *target = NULL, *kwargs = NULL;
    bool verbose = false;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end;
        if (!strcmp(a, "--verbose")) { verbose = true; continue; }
        if (a[0] != '-') {
            if (target) { fprintf(stderr, "herd providers test: one provider expected, got \"%s\" too\n", a); return HERD_CLI_EXIT_USAGE; }
            target = a;
            continue;
        }
        if (!v) { fprintf(stderr, "herd providers test: %s needs a value\n", a); return HERD_CLI_EXIT_USAGE; }
        if (!strcmp(a, "--cluster-kwargs")) kwargs = v;
        else if (!strcmp(a, "--workers")) {
            long n = strtol(v, &end, 10);
            if (*end || n < 1 || n > 60) { fprintf(stderr, "herd providers test: --workers: expected 1..60, got \"%s\"\n", v); return HERD_CLI_EXIT_USAGE; }
            o.n_initial = (int)n;
        } else if (!strcmp(a, "--timeout")) {
            o.timeout = strtod(v, &end);
            if (*end || !(o.timeout > 0) || o.timeout > 86400) { fprintf(stderr, "herd providers test: --timeout: expected seconds in (0, 86400], got \"%s\"\n", v); return HERD_CLI_EXIT_USAGE; }
        } else if (!strcmp(a, "--pids")) {
            if (!strcmp(v, "auto")) o.pids = HERD_CONF_PIDS_AUTO;
            else if (!strcmp(v, "local")) o.pids = HERD_CONF_PIDS_LOCAL;
            else if (!strcmp(v, "remote")) o.pids = HERD_CONF_PIDS_REMOTE;
            else { fprintf(stderr, "herd providers test: --pids: expected auto, local or remote, got \"%s\"\n", v); return HERD_CLI_EXIT_USAGE; }
        } else { fprintf(stderr, "herd providers test: unknown option \"%s\"\n", a); usage(stderr); return HERD_CLI_EXIT_USAGE; }
        i++;
    }
    if (!target) { fprintf(stderr, "herd providers test: which provider? (NAME or PATH.so)\n"); usage(stderr); return HERD_CLI_EXIT_USAGE; }
    char defkw[64];
    snprintf(defkw, sizeof defkw, "{n_workers: %d}", o.n_initial);
    o.kwargs = kwargs ? kwargs : defkw;
    /* the runtime's log (this process and the workers, which inherit it) */
    if (!verbose) setenv("HERD_LOG_LEVEL", "warning", 0);
    size_t len = strlen(target);
    if (len > 3 && !strcmp(target + len - 3, ".so")) return test_file(target, &o);
    return test_one(target, &o);
}

int herd_cli_providers(int argc, char **argv)
{
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage(stdout);
        return 0;
    }
    if (argc == 1 || (argc == 2 && strcmp(argv[1], "list") == 0)) return list();
    if (argc == 3 && strcmp(argv[1], "show") == 0) return show(argv[2]);
    if (argc == 2 && strcmp(argv[1], "path") == 0) return path();
    if (argc == 2 && strcmp(argv[1], "rules") == 0) return rules();
    if (argc >= 2 && strcmp(argv[1], "test") == 0) return test(argc, argv);
    fprintf(stderr, "herd providers: bad usage\n\n");
    usage(stderr);
    return HERD_CLI_EXIT_USAGE;
}
