/* core/secrets.c — the cluster's secrets out of the process environment: a
 * worker or scheduler started with HERD_TOKEN and HERD_TLS_* in its
 * environment takes them into private memory and overwrites the original
 * bytes before any task runs (herd_init's worker and scheduler modes). */
#include "secrets.h"
#include "security.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

/* HERD_TLS_SERVER_NAME is no secret, but travels with the TLS identity */
static const char *const names[] = { "HERD_TOKEN", HERD_TLS_ENV_CA, HERD_TLS_ENV_CERT, HERD_TLS_ENV_KEY,
                                     HERD_TLS_ENV_SERVER_NAME };

/* Overwrite what volatile stores the compiler cannot drop. */
static void wipe(char *p, size_t n)
{
    volatile char *q = p;
    while (n--) *q++ = '\0';
}

int herd_secrets_take(char ***out, herd_err *err)
{
    size_t nn = sizeof names / sizeof *names, k = 0, nold = 0;
    char **v = calloc(nn + 1, sizeof *v);
    int rc = v ? 0 : herd_err_set(err, -ENOMEM, "out of memory");
    for (size_t i = 0; i < nn; i++) {
        size_t len = strlen(names[i]), n = 0;
        for (char **e = environ; e && *e; e++)
            if (!strncmp(*e, names[i], len) && (*e)[len] == '=') n++;
        char *old[n + 1];                       /* the entries, wiped once unset */
        nold = 0;
        for (char **e = environ; e && *e; e++) {
            if (strncmp(*e, names[i], len) || (*e)[len] != '=') continue;
            if (!nold && v && !rc) {            /* the first one is what getenv gave */
                if (!(v[k] = strdup(*e))) rc = herd_err_set(err, -ENOMEM, "out of memory");
                else k++;
            }
            old[nold++] = *e;
        }
        unsetenv(names[i]);
        for (size_t j = 0; j < nold; j++) wipe(old[j], strlen(old[j]));
    }
    if (rc) { herd_tls_envp_free(v); v = NULL; }
    *out = v;
    return rc;
}

const char *herd_secrets_get(char *const *v, const char *name)
{
    size_t len = strlen(name);
    for (; v && *v; v++)
        if (!strncmp(*v, name, len) && (*v)[len] == '=') return *v + len + 1;
    return NULL;
}
