/* providers/ssh/remote.c — what an SSHCluster says to the other side: the ssh
 * command line (BatchMode, the user's connect_options), the POSIX sh wrapper
 * that runs every worker of one session (environment read from stdin, so
 * the token and TLS key never appear on a command line; a worker stopped on
 * a "stop I" line, all of them when the session ends), shell quoting, and the upload of the worker program and task
 * plugins, skipped file by file when the remote sha256 already matches. */
#include "ssh.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int put(char **buf, size_t *len, size_t *cap, const char *s, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t nc = 2 * (*len + n + 1) + 256;
        char *b = realloc(*buf, nc);
        if (!b) return -ENOMEM;
        *buf = b;
        *cap = nc;
    }
    memcpy(*buf + *len, s, n);
    *len += n;
    (*buf)[*len] = '\0';
    return 0;
}

static int puts_(char **buf, size_t *len, size_t *cap, const char *s)
{
    return put(buf, len, cap, s, strlen(s));
}

int ssh_quote(char **buf, size_t *len, size_t *cap, const char *s)
{
    int rc = put(buf, len, cap, "'", 1);
    for (const char *p = s; !rc && *p; p++)
        rc = *p == '\'' ? puts_(buf, len, cap, "'\\''") : put(buf, len, cap, p, 1);
    return rc ? rc : put(buf, len, cap, "'", 1);
}

char **ssh_argv(const ssh_opts *o, const char *host, const char *user, int port, const char *remote_cmd)
{
    size_t nx = 0;
    while (o->extra && o->extra[nx]) nx++;
    char **v = calloc(40 + 2 * nx, sizeof *v);
    if (!v) return NULL;
    size_t k = 0;
    char buf[64];
#define ADD(s) do { if (!(v[k++] = strdup(s))) goto oom; } while (0)
#define OPT(s) do { ADD("-o"); ADD(s); } while (0)
    ADD(o->program && *o->program ? o->program : "ssh");
    ADD("-T");                                   /* no terminal: the worker's stdin is ours */
    ADD("-x");
    ADD("-a");
    if (o->config_file) { ADD("-F"); ADD(o->config_file); }
    OPT("BatchMode=yes");                        /* never prompt: fail with the reason */
    OPT("ControlMaster=no");                     /* never leave a master behind */
    OPT("LogLevel=ERROR");
    OPT("ServerAliveInterval=10");
    OPT("ServerAliveCountMax=3");
    snprintf(buf, sizeof buf, "ConnectTimeout=%d", o->connect_timeout >= 1 ? (int)(o->connect_timeout + 0.5) : 1);
    OPT(buf);
    if (o->identity_file) { ADD("-i"); ADD(o->identity_file); OPT("IdentitiesOnly=yes"); }
    if (o->known_hosts) {
        char *kh;
        ADD("-o");
        if (asprintf(&kh, "UserKnownHostsFile=%s", o->known_hosts) < 0) goto oom;
        v[k++] = kh;
    }
    if (o->strict) {
        char *sh;
        ADD("-o");
        if (asprintf(&sh, "StrictHostKeyChecking=%s", o->strict) < 0) goto oom;
        v[k++] = sh;
    }
    for (size_t i = 0; i < nx; i++) OPT(o->extra[i]);
    if (user || o->user) { ADD("-l"); ADD(user ? user : o->user); }
    if (port || o->port) {
        snprintf(buf, sizeof buf, "%d", port ? port : o->port);
        ADD("-p");
        ADD(buf);
    }
    ADD("--");
    ADD(host);
    ADD(remote_cmd);
    v[k] = NULL;
    return v;
#undef ADD
#undef OPT
oom:
    herd_strv_free(v);
    return NULL;
}

/* The wrapper, run by /bin/sh on the host. "$@" holds the workers one after
 * the other, each as its argument count then its argv. It reads the
 * environment from stdin up to SSH_GO, checks the program exists and
 * answers --herd-version with this client's protocol, starts
 * every worker in a subshell of its own that reports "herd-ssh-pid I PID",
 * forwards a SIGTERM to the worker (SIGKILL 3 s later) and reports
 * "herd-ssh-exit I STATUS" when the worker ends. A reader in the background
 * takes control lines: "stop I" stops worker I; the end of stdin (ssh or the
 * client went away, or a close) stops them all. The wrapper ends once every
 * worker has, even when its session is cut off and stdin never ends, so
 * nothing of it stays on the host. No single quote inside: it travels
 * single-quoted. */
static const char wrapper[] =
    "g=\n"
    "acc=\n"
    "while IFS= read -r l; do [ \"$l\" = " SSH_GO " ] && { g=1; break; }; acc=\"$acc$l\n\"; done\n"
    "[ -n \"$g\" ] || exit 0\n"
    "eval \"$acc\"\n"
    "case $2 in\n"
    "*/*) [ -f \"$2\" ] && [ -x \"$2\" ] ;;\n"
    "*) command -v \"$2\" >/dev/null 2>&1 ;;\n"
    "esac || { echo \"herd-ssh-error cannot run $2 on $(uname -n): no such executable file\"; exit 127; }\n"
    /* the program must be a herd program speaking our protocol */
    /* (killed after 5 s: a program that is not herd's may not exit) */
    "v=$( (\"$2\" --herd-version </dev/null 2>/dev/null & p=$!; /bin/sh -c \"sleep 5; kill -KILL $p\" "
    ">/dev/null 2>&1 & k=$!; wait $p; kill $k 2>/dev/null) | head -n 1)\n"
    "case $v in\n"
    "\"herd \"*\" protocol $HERD_SSH_PROTOCOL\") ;;\n"
    "\"herd \"*\" protocol \"*) echo \"herd-ssh-error $2 on $(uname -n) is ${v% protocol *}, protocol ${v##* }: "
    "another version than this client (herd $HERD_SSH_VERSION, protocol $HERD_SSH_PROTOCOL)\"; exit 126 ;;\n"
    "*) echo \"herd-ssh-error $2 on $(uname -n) is not a herd program: --herd-version answered \\\"$v\\\"\"; exit 126 ;;\n"
    "esac\n"
    "unset HERD_SSH_PROTOCOL HERD_SSH_VERSION\n"
    /* in a worker's subshell: p its pid, k the SIGKILL timer (a new sh: its
     * command line does not name the workers), n SIGTERMs seen */
    "tm() { n=$((n+1)); [ -z \"$p\" ] || [ -n \"$k\" ] || { kill -TERM $p 2>/dev/null; "
    "/bin/sh -c \"sleep 3; kill -KILL $p\" >/dev/null 2>&1 & k=$!; }; }\n"
    "wt() { m=$n; wait $p 2>/dev/null; s=$?; }\n"
    "run() {\n"
    "i=$1; shift; p=; k=; n=0\n"
    "trap tm TERM\n"
    "\"$@\" </dev/null &\n"
    "p=$!\n"
    "echo \"herd-ssh-pid $i $p\"\n"
    "[ $n = 0 ] || tm\n"
    /* a SIGTERM interrupts wait: wait again, unless the worker was already reaped */
    "wt\n"
    "while [ $m != $n ] && [ $s -gt 128 ]; do l=$s; wt; [ $s = 127 ] && { s=$l; break; }; done\n"
    "[ -z \"$k\" ] || kill $k 2>/dev/null\n"
    "echo \"herd-ssh-exit $i $s\"\n"
    "}\n"
    "i=0; o=1; a=\n"
    "while [ $o -le $# ]; do\n"
    "eval \"c=\\${$o}\"\n"
    "j=0; x=\n"
    "while [ $j -lt $c ]; do j=$((j+1)); x=\"$x \\\"\\${$((o+j))}\\\"\"; done\n"
    "eval \"run $i$x\" &\n"
    "eval \"s$i=$!\"; a=\"$a $!\"\n"
    "o=$((o+c+1)); i=$((i+1))\n"
    "done\n"
    /* a background list's stdin is /dev/null unless redirected: fd 3 keeps ours */
    "exec 3<&0\n"
    "( while IFS= read -r l; do\n"
    "case $l in \"stop \"*) x=${l#stop }; case $x in \"\"|*[!0-9]*) ;; "
    "*) eval \"[ -z \\\"\\${s$x}\\\" ] || kill -TERM \\${s$x} 2>/dev/null\" ;; esac ;; esac\n"
    "done\n"
    "kill -TERM $a 2>/dev/null ) <&3 &\n"
    "exec 3<&-\n"
    "r=$!\n"
    "for p in $a; do wait $p; done\n"
    "kill $r 2>/dev/null\n"
    "wait\n";

char *ssh_wrapper_cmd(char **const argvs[], size_t n)
{
    char *b = NULL;
    size_t len = 0, cap = 0;
    int rc = puts_(&b, &len, &cap, "exec /bin/sh -c ");
    if (!rc) rc = ssh_quote(&b, &len, &cap, wrapper);
    if (!rc) rc = puts_(&b, &len, &cap, " herd-ssh");
    for (size_t w = 0; !rc && w < n; w++) {
        size_t c = 0;
        while (argvs[w][c]) c++;
        char num[32];
        snprintf(num, sizeof num, " %zu", c);
        rc = puts_(&b, &len, &cap, num);
        for (size_t i = 0; !rc && i < c; i++) {
            rc = puts_(&b, &len, &cap, " ");
            if (!rc) rc = ssh_quote(&b, &len, &cap, argvs[w][i]);
        }
    }
    if (rc) { free(b); return NULL; }
    return b;
}

int ssh_expect_lines(char **buf, size_t *len, size_t *cap)
{
    char kv[64];
    snprintf(kv, sizeof kv, "HERD_SSH_PROTOCOL=%d", HERD_PROTOCOL_VERSION);
    int rc = ssh_env_line(buf, len, cap, kv);
    if (!rc) rc = ssh_env_line(buf, len, cap, "HERD_SSH_VERSION=" HERD_VERSION_STRING);
    return rc;
}

int ssh_env_line(char **buf, size_t *len, size_t *cap, const char *kv)
{
    const char *eq = strchr(kv, '=');
    if (!eq || eq == kv) return -EINVAL;
    for (const char *p = kv; p < eq; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || *p == '_' ||
              (p > kv && *p >= '0' && *p <= '9')))
            return -EINVAL;
    int rc = puts_(buf, len, cap, "export ");
    if (!rc) rc = put(buf, len, cap, kv, (size_t)(eq - kv) + 1);
    if (!rc) rc = ssh_quote(buf, len, cap, eq + 1);
    if (!rc) rc = puts_(buf, len, cap, "\n");
    return rc;
}

/* ---- upload ---- */

int ssh_sha256_file(const char *path, char hex[65])
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int rc = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 ? 0 : -ENOMEM;
    char buf[65536];
    ssize_t n;
    while (!rc && (n = read(fd, buf, sizeof buf)) != 0) {
        if (n < 0) { if (errno == EINTR) continue; rc = -errno; break; }
        if (EVP_DigestUpdate(ctx, buf, (size_t)n) != 1) rc = -EIO;
    }
    unsigned char md[32];
    unsigned int mdlen = 0;
    if (!rc && EVP_DigestFinal_ex(ctx, md, &mdlen) != 1) rc = -EIO;
    EVP_MD_CTX_free(ctx);
    close(fd);
    if (rc) return rc;
    for (unsigned i = 0; i < 32; i++) sprintf(hex + 2 * i, "%02x", md[i]);
    hex[64] = '\0';
    return 0;
}

static void why_failed(int rc, const herd_proc_exit *st, const char *tail, const char *out, char *msg, size_t cap)
{
    if (rc == -ETIMEDOUT) snprintf(msg, cap, "timed out%s%s", *tail ? ": " : "", tail);
    else if (rc) snprintf(msg, cap, "%s", *tail ? tail : strerror(-rc));
    else if (st->known && !st->signal)
        snprintf(msg, cap, "exit status %d%s%s", st->status, *tail || *out ? ": " : "", *tail ? tail : out);
    else herd_proc_describe(st, msg, cap);
}

int ssh_upload(const ssh_opts *o, const char *host, const char *user, int port,
               const char *dir, const char *const *local, const char *const *names, size_t n,
               int *copied, int *skipped, const herd_cluster_env *env, char *msg, size_t cap)
{
    *copied = *skipped = 0;
    char (*want)[65] = calloc(n ? n : 1, sizeof *want);
    bool *same = calloc(n ? n : 1, sizeof *same);
    char *cmd = NULL, *out = malloc(65536), tail[320];
    size_t len = 0, ccap = 0;
    int rc = want && same && out ? 0 : -ENOMEM;
    for (size_t i = 0; !rc && i < n; i++)
        if ((rc = ssh_sha256_file(local[i], want[i])))
            snprintf(msg, cap, "cannot read %s: %s", local[i], strerror(-rc));
    /* one session: make the directories, print "<sha256> <name>" per file
     * (an empty hash when missing or unreadable) */
    if (!rc) {
        rc = puts_(&cmd, &len, &ccap, "umask 022; d=");
        if (!rc) rc = ssh_quote(&cmd, &len, &ccap, dir);
        if (!rc) rc = puts_(&cmd, &len, &ccap, "; for f in");
        for (size_t i = 0; !rc && i < n; i++) {
            rc = puts_(&cmd, &len, &ccap, " ");
            if (!rc) rc = ssh_quote(&cmd, &len, &ccap, names[i]);
        }
        if (!rc) rc = puts_(&cmd, &len, &ccap,
            "; do mkdir -p \"$(dirname \"$d/$f\")\" || exit 1; "
            "h=$( (sha256sum \"$d/$f\" || shasum -a 256 \"$d/$f\") 2>/dev/null); "
            "echo \"herd-sha ${h%% *} $f\"; done");
        if (rc) snprintf(msg, cap, "out of memory");
    }
    char **argv = NULL;
    herd_proc_exit st;
    if (!rc && !(argv = ssh_argv(o, host, user, port, cmd))) { rc = -ENOMEM; snprintf(msg, cap, "out of memory"); }
    if (!rc) {
        rc = ssh_run(argv, -1, NULL, out, 65536, tail, sizeof tail, o->connect_timeout + 30, &st);
        if (!ssh_run_ok(rc, &st)) {
            char why[400];
            why_failed(rc, &st, tail, "", why, sizeof why);
            snprintf(msg, cap, "checking %s: %s", dir, why);
            if (!rc) rc = -EIO;
        }
    }
    herd_strv_free(argv);
    argv = NULL;
    for (size_t i = 0; !rc && i < n; i++) {
        char key[4200];
        snprintf(key, sizeof key, "herd-sha %s %s\n", want[i], names[i]);
        same[i] = strstr(out, key) != NULL;
    }
    /* copy what differs: through a temporary name, so a running worker's
     * program is never rewritten in place */
    for (size_t i = 0; !rc && i < n; i++) {
        if (same[i]) {
            (*skipped)++;
            herd_log(env, HERD_LOG_INFO, "SSHCluster: %s: %s/%s is up to date (sha256 %.12s…), not copied",
                     host, dir, names[i], want[i]);
            continue;
        }
        len = 0;
        rc = puts_(&cmd, &len, &ccap, "umask 022; t=");
        if (!rc) rc = ssh_quote(&cmd, &len, &ccap, dir);
        if (!rc) rc = puts_(&cmd, &len, &ccap, "/");
        if (!rc) rc = ssh_quote(&cmd, &len, &ccap, names[i]);
        if (!rc) rc = puts_(&cmd, &len, &ccap, ".herd-tmp.$$; cat > \"$t\" && chmod 755 \"$t\" && mv -f \"$t\" ");
        if (!rc) rc = ssh_quote(&cmd, &len, &ccap, dir);
        if (!rc) rc = puts_(&cmd, &len, &ccap, "/");
        if (!rc) rc = ssh_quote(&cmd, &len, &ccap, names[i]);
        if (!rc) rc = puts_(&cmd, &len, &ccap, " || { rm -f \"$t\"; exit 1; }");
        if (rc || !(argv = ssh_argv(o, host, user, port, cmd))) {
            rc = -ENOMEM;
            snprintf(msg, cap, "out of memory");
            break;
        }
        int fd = open(local[i], O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            rc = -errno;
            snprintf(msg, cap, "cannot read %s: %s", local[i], strerror(errno));
        } else {
            rc = ssh_run(argv, fd, NULL, out, 4096, tail, sizeof tail, o->connect_timeout + 300, &st);
            close(fd);
            if (!ssh_run_ok(rc, &st)) {
                char why[400];
                why_failed(rc, &st, tail, out, why, sizeof why);
                snprintf(msg, cap, "copying %s to %s/%s: %s", local[i], dir, names[i], why);
                if (!rc) rc = -EIO;
            } else {
                (*copied)++;
                herd_log(env, HERD_LOG_INFO, "SSHCluster: %s: copied %s to %s/%s (sha256 %.12s…)",
                         host, local[i], dir, names[i], want[i]);
            }
        }
        herd_strv_free(argv);
        argv = NULL;
    }
    free(cmd);
    free(out);
    free(want);
    free(same);
    return rc;
}
