/* core/secrets.h — the cluster's secrets out of the process environment
 * (see secrets.c). */
#ifndef HERD_SECRETS_H
#define HERD_SECRETS_H

#include <herd/common.h>

/* Move HERD_TOKEN and HERD_TLS_CA/CERT/KEY out of this process's
 * environment: each one set is copied into *out (a malloc'd NULL-terminated
 * "K=V" vector, possibly empty; free it with herd_tls_envp_free, which wipes
 * it),
 * the bytes of the original entries are overwritten in place (they are what
 * /proc/PID/environ shows, whatever unsetenv does to `environ`), and the
 * variables are unset, so neither getenv in a task nor a program a task
 * starts nor a reader of /proc sees them. Call before any thread reads the
 * environment. 0, or -ENOMEM (the environment is scrubbed even then). */
int herd_secrets_take(char ***out, herd_err *err);
/* The value of name in a "K=V" vector, or NULL. */
const char *herd_secrets_get(char *const *v, const char *name);

#endif
