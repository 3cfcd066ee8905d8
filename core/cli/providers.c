/* core/cli/providers.c — `herd providers`: list the providers on the search
 * path, show one provider's cluster_kwargs schema, print the search path. */
#include <herd/herd.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: herd providers [list]       providers found: name, summary, file\n"
                 "       herd providers show NAME    a provider's parameters (NAME as in cluster_class)\n"
                 "       herd providers path         the directories searched, in order\n"
                 "\nThe search path is $HERD_PROVIDER_PATH (colon-separated), then the build\n"
                 "or install tree next to libherd, then the install prefix.\n");
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

int herd_cli_providers(int argc, char **argv)
{
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage(stdout);
        return 0;
    }
    if (argc == 1 || (argc == 2 && strcmp(argv[1], "list") == 0)) return list();
    if (argc == 3 && strcmp(argv[1], "show") == 0) return show(argv[2]);
    if (argc == 2 && strcmp(argv[1], "path") == 0) return path();
    fprintf(stderr, "herd providers: bad usage\n\n");
    usage(stderr);
    return HERD_CLI_EXIT_USAGE;
}
