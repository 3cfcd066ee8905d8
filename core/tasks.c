/* core/tasks.c — the task registry: HERD_TASK() descriptors linked in at load
 * time, lookup by name, and loading task plugins ("shell.run" loads
 * plugins/shell.so; "path/lib.so:fn" loads a file and takes a symbol).
 * The list and the plugin handles are process-wide by nature (they mirror
 * what the dynamic loader has loaded); a recursive mutex guards them because
 * dlopen runs plugin constructors that register while a lookup holds it. */
#include "internal.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static pthread_mutex_t lock = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
static herd_task_def *head;

void herd_task_register(herd_task_def *def)
{
    if (!def || !def->name || !def->fn) return;
    pthread_mutex_lock(&lock);
    for (herd_task_def *d = head; d; d = d->next)
        if (d == def) { pthread_mutex_unlock(&lock); return; }
    def->next = head;
    head = def;
    pthread_mutex_unlock(&lock);
}

static herd_task_fn find(const char *name)
{
    herd_task_fn fn = NULL;
    pthread_mutex_lock(&lock);
    for (herd_task_def *d = head; d && !fn; d = d->next)
        if (strcmp(d->name, name) == 0) fn = d->fn;
    pthread_mutex_unlock(&lock);
    return fn;
}

char *herd_task_names(void)
{
    size_t cap = 256, len = 0;
    char *s = malloc(cap);
    if (!s) return NULL;
    s[0] = '\0';
    pthread_mutex_lock(&lock);
    for (herd_task_def *d = head; d; d = d->next) {
        size_t need = strlen(d->name) + 3;
        if (len + need >= cap) {
            char *ns = realloc(s, cap = 2 * (len + need));
            if (!ns) break;
            s = ns;
        }
        len += (size_t)sprintf(s + len, "%s%s", len ? ", " : "", d->name);
    }
    pthread_mutex_unlock(&lock);
    return s;
}

static int load_file(const char *path, const char *name, void **handle, herd_err *err)
{
    dlerror();
    *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!*handle)
        return herd_err_set(err, HERD_EPLUGIN, "task \"%s\": cannot load %s: %s", name, path, dlerror());
    return 0;
}

/* "path/lib.so:symbol" */
static int lookup_file(const char *name, const char *colon, herd_task_fn *fn, herd_err *err)
{
    char path[4096];
    size_t plen = (size_t)(colon - name);
    if (plen == 0 || plen >= sizeof path || !colon[1])
        return herd_err_set(err, HERD_ENOTASK, "task \"%s\": expected \"path/to/lib.so:function\"", name);
    memcpy(path, name, plen);
    path[plen] = '\0';
    void *h;
    int rc = load_file(path, name, &h, err);
    if (rc) return rc;
    dlerror();
    void *sym = dlsym(h, colon + 1);
    if (!sym) {
        /* a plugin may register the name with HERD_TASK instead of exporting it */
        if ((*fn = find(colon + 1))) return 0;
        return herd_err_set(err, HERD_ENOTASK, "task \"%s\": %s has no exported function \"%s\"",
                            name, path, colon + 1);
    }
    *fn = (herd_task_fn)(uintptr_t)sym;
    return 0;
}

/* "plugin.task": find plugins/<plugin>.so along the search path. */
static int lookup_plugin(const char *name, const char *dot, herd_task_fn *fn, herd_err *err)
{
    char plugin[256];
    size_t plen = (size_t)(dot - name);
    if (plen == 0 || plen >= sizeof plugin)
        return herd_err_set(err, HERD_ENOTASK, "unknown task \"%s\"", name);
    memcpy(plugin, name, plen);
    plugin[plen] = '\0';
    char **dirs = herd_search_dirs("plugins", "HERD_PLUGIN_PATH");
    char tried[2048] = "";
    size_t tl = 0;
    int rc = -HERD_ENOTASK;
    for (char **d = dirs; d && *d; d++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s.so", *d, plugin);
        if (tl < sizeof tried - 1)
            tl += (size_t)snprintf(tried + tl, sizeof tried - tl, "%s%s", tl ? ", " : "", path);
        if (access(path, R_OK) != 0) continue;
        void *h;
        if ((rc = load_file(path, name, &h, err))) break;
        if ((*fn = find(name))) { rc = 0; break; }
        char *names = herd_task_names();
        rc = herd_err_set(err, HERD_ENOTASK, "unknown task \"%s\": plugin %s has no such task (registered tasks: %s)",
                          name, path, names ? names : "?");
        free(names);
        break;
    }
    if (rc == -HERD_ENOTASK && err && !err->code)
        rc = herd_err_set(err, HERD_ENOTASK,
                          "unknown task \"%s\": no plugin \"%s\" (tried %s; set HERD_PLUGIN_PATH)",
                          name, plugin, tried);
    else if (rc == -HERD_ENOTASK && !err)
        rc = -HERD_ENOTASK;
    herd_strv_free(dirs);
    return rc;
}

int herd_plugin_load(const char *name, herd_err *err)
{
    if (!name || !*name) return herd_err_set(err, HERD_EARG, "plugin: expected a name or a path, got nothing");
    void *h;
    if (strchr(name, '/')) return load_file(name, name, &h, err);
    char **dirs = herd_search_dirs("plugins", "HERD_PLUGIN_PATH");
    char tried[2048] = "";
    size_t tl = 0;
    int rc = 1;
    for (char **d = dirs; d && *d && rc == 1; d++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s.so", *d, name);
        if (tl < sizeof tried - 1)
            tl += (size_t)snprintf(tried + tl, sizeof tried - tl, "%s%s", tl ? ", " : "", path);
        if (access(path, R_OK) == 0) rc = load_file(path, name, &h, err);
    }
    herd_strv_free(dirs);
    if (rc == 1) rc = herd_err_set(err, HERD_EPLUGIN, "plugin \"%s\": not found (tried %s; set HERD_PLUGIN_PATH)", name, tried);
    return rc;
}

int herd_task_lookup(const char *name, herd_task_fn *fn, herd_err *err)
{
    if (!name || !*name || !fn)
        return herd_err_set(err, HERD_ENOTASK, "task name: expected a non-empty string");
    herd_err_clear(err);
    if ((*fn = find(name))) return 0;
    const char *colon = strrchr(name, ':');
    if (colon) return lookup_file(name, colon, fn, err);
    const char *dot = strchr(name, '.');
    if (dot) return lookup_plugin(name, dot, fn, err);
    char *names = herd_task_names();
    int rc = herd_err_set(err, HERD_ENOTASK,
                          "unknown task \"%s\": not registered in this program with HERD_TASK "
                          "(registered: %s), and not of the form plugin.task or path/lib.so:function",
                          name, names && *names ? names : "none");
    free(names);
    return rc;
}
