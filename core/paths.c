/* core/paths.c — where herd looks for loadable files: the directories searched
 * for providers and task plugins: an environment variable, then the build or
 * install tree found from where the runtime itself sits (libherd.so, or the
 * executable that links it statically, such as the herd command). Nothing
 * depends on the prefix the build was made for, so an installed tree works
 * wherever it is put (make install PREFIX=any, DESTDIR staging, moved). */
#include "internal.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int push(char ***v, size_t *n, const char *s)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp((*v)[i], s) == 0) return 0;
    char **nv = realloc(*v, (*n + 2) * sizeof *nv);
    if (!nv) return -1;
    *v = nv;
    if (!(nv[*n] = strdup(s))) return -1;
    nv[++*n] = NULL;
    return 0;
}

/* Directory holding libherd itself (or the executable when linked statically). */
static int libdir(char *out, size_t cap)
{
    Dl_info di;
    if (!dladdr((void *)&herd_search_dirs, &di) || !di.dli_fname) return -1;
    char real[PATH_MAX];
    /* a statically linked program started by a relative path reports that
     * path, which no longer resolves once it changes directory */
    const char *file = di.dli_fname[0] == '/' ? di.dli_fname : "/proc/self/exe";
    if (!realpath(file, real)) return -1;
    char *slash = strrchr(real, '/');
    if (!slash) return -1;
    *slash = '\0';
    snprintf(out, cap, "%s", real);
    return 0;
}

char **herd_search_dirs(const char *kind, const char *envvar)
{
    char **v = calloc(1, sizeof *v);
    size_t n = 0;
    if (!v) return NULL;
    const char *env = envvar ? getenv(envvar) : NULL;
    if (env && *env) {
        char *copy = strdup(env), *save = NULL;
        for (char *d = copy ? strtok_r(copy, ":", &save) : NULL; d; d = strtok_r(NULL, ":", &save))
            push(&v, &n, d);
        free(copy);
    }
    /* relative to the directory the runtime sits in:
     *   build/lib/libherd.so, build/bin/herd, build/tests/x -> build/<kind>
     *   PREFIX/lib/libherd.so                               -> PREFIX/lib/herd/<kind>
     *   PREFIX/bin/herd (the runtime linked statically)     -> PREFIX/lib/herd/<kind> */
    static const char *const rel[] = { "../", "herd/", "../lib/herd/" };
    char dir[PATH_MAX], buf[PATH_MAX + 64], real[PATH_MAX];
    if (libdir(dir, sizeof dir) == 0)
        for (size_t i = 0; i < sizeof rel / sizeof *rel; i++) {
            snprintf(buf, sizeof buf, "%s/%s%s", dir, rel[i], kind);
            if (realpath(buf, real) && access(real, R_OK) == 0) push(&v, &n, real);
        }
    return v;
}

void herd_strv_free(char **v)
{
    if (!v) return;
    for (char **p = v; *p; p++) free(*p);
    free(v);
}
