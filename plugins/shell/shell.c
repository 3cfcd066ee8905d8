/* plugins/shell/shell.c — the "shell.run" task: run a command and return its
 * exit status, captured stdout/stderr and duration.
 *
 *   args: [command (str) | argv (array of str), options (map, optional)]
 *   options: cwd (str), env (map: added to / overriding the inherited
 *            environment; a nil value removes the variable), timeout (seconds,
 *            number or "500ms"/"2s"/"1m"/"1h"), stdin (str or bytes),
 *            shell (bool; default true for a command string, false for argv),
 *            check (bool; a nonzero exit fails the task)
 *   result: {exit_status: int (-signal when killed by one), stdout, stderr
 *            (str, or bytes when not valid UTF-8), duration: float seconds}
 *
 * A nonzero exit is not a failure unless options.check is true. A timeout
 * kills the command's process group (SIGKILL) and fails the task with
 * -HERD_ETIMEOUT. Argument errors fail with -HERD_EARG.
 *
 * The child is started with posix_spawn in its own process group. Its stdout
 * and stderr are pipes drained with poll() while stdin is written, so large
 * outputs never deadlock; stdin is a socketpair so that writing to a child
 * that stopped reading gives EPIPE (MSG_NOSIGNAL) rather than SIGPIPE. */
#include <herd/task.h>

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define TAIL 512          /* bytes of stderr quoted in a failure message */

typedef struct buf { char *p; size_t len, cap; } buf;

static int buf_add(buf *b, const char *p, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (b->len + n + 1 > cap) cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np) return -ENOMEM;
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static bool utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        size_t k;
        uint32_t cp;
        if (c < 0x80) { i++; continue; }
        else if ((c & 0xE0) == 0xC0) { k = 1; cp = c & 0x1F; }
        else if ((c & 0xF0) == 0xE0) { k = 2; cp = c & 0x0F; }
        else if ((c & 0xF8) == 0xF0) { k = 3; cp = c & 0x07; }
        else return false;
        if (i + k >= n) return false;
        for (size_t j = 1; j <= k; j++) {
            if (i + j >= n || (s[i + j] & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (s[i + j] & 0x3F);
        }
        if ((k == 1 && cp < 0x80) || (k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) ||
            cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += k + 1;
    }
    return true;
}

static herd_value *text_or_bytes(const buf *b)
{
    const char *p = b->p ? b->p : "";
    if (utf8_valid((const unsigned char *)p, b->len) && !memchr(p, '\0', b->len))
        return herd_strn(p, b->len);
    return herd_bytes(p, b->len);
}

/* A timeout: seconds or "500ms"/"2s"/"1m"/"1h", and more than zero. */
static int duration(const herd_value *v, double *out)
{
    return herd_value_duration(v, out) == 0 && *out > 0 ? 0 : -1;
}

typedef struct opts {
    const char *cwd;
    const herd_value *env;
    double timeout;            /* 0: none */
    const void *in;
    size_t inlen;
    bool shell, check;
} opts;

static int bad(herd_task_ctx *ctx, const char *fmt, const char *what, const herd_value *got)
{
    char *s = herd_value_to_string(got);
    herd_task_fail(ctx, fmt, what, herd_type_name(herd_typeof(got)), s ? s : "?");
    free(s);
    return -HERD_EARG;
}

static int parse_opts(herd_task_ctx *ctx, const herd_value *o, opts *op)
{
    if (herd_typeof(o) == HERD_NIL) return 0;
    if (herd_typeof(o) != HERD_MAP)
        return bad(ctx, "shell.run: argument 1 (%s): expected map, got %s %s", "options", o);
    for (size_t i = 0; i < herd_len(o); i++) {
        const char *k = herd_key_at(o, i);
        const herd_value *v = herd_at(o, i);
        if (!strcmp(k, "cwd")) {
            if (herd_typeof(v) != HERD_STR)
                return bad(ctx, "shell.run: argument 1 (options.%s): expected str, got %s %s", k, v);
            op->cwd = herd_as_str(v);
        } else if (!strcmp(k, "env")) {
            if (herd_typeof(v) != HERD_MAP)
                return bad(ctx, "shell.run: argument 1 (options.%s): expected map of str, got %s %s", k, v);
            for (size_t j = 0; j < herd_len(v); j++) {
                herd_type t = herd_typeof(herd_at(v, j));
                if (t == HERD_ARRAY || t == HERD_MAP || t == HERD_BYTES || t == HERD_FUTREF) {
                    herd_task_fail(ctx, "shell.run: argument 1 (options.env.%s): expected str, number, "
                                   "bool or nil, got %s", herd_key_at(v, j), herd_type_name(t));
                    return -HERD_EARG;
                }
                if (strchr(herd_key_at(v, j), '=') || !*herd_key_at(v, j)) {
                    herd_task_fail(ctx, "shell.run: argument 1 (options.env): invalid variable name \"%s\"",
                                   herd_key_at(v, j));
                    return -HERD_EARG;
                }
            }
            op->env = v;
        } else if (!strcmp(k, "timeout")) {
            if (herd_typeof(v) != HERD_NIL && duration(v, &op->timeout))
                return bad(ctx, "shell.run: argument 1 (options.%s): expected a positive duration "
                           "(seconds, or \"500ms\", \"2s\", \"1m\"), got %s %s", k, v);
        } else if (!strcmp(k, "stdin")) {
            if (herd_typeof(v) != HERD_STR && herd_typeof(v) != HERD_BYTES && herd_typeof(v) != HERD_NIL)
                return bad(ctx, "shell.run: argument 1 (options.%s): expected str or bytes, got %s %s", k, v);
            op->in = herd_as_bytes(v, &op->inlen);
        } else if (!strcmp(k, "shell") || !strcmp(k, "check")) {
            if (herd_typeof(v) != HERD_BOOL)
                return bad(ctx, "shell.run: argument 1 (options.%s): expected bool, got %s %s", k, v);
            *(!strcmp(k, "shell") ? &op->shell : &op->check) = herd_as_bool(v);
        } else {
            herd_task_fail(ctx, "shell.run: argument 1 (options): unknown option \"%s\" "
                           "(expected cwd, env, timeout, stdin, shell, check)", k);
            return -HERD_EARG;
        }
    }
    return 0;
}

/* The child's environment: ours, with opts.env applied. Strings are malloc'd. */
static char **make_env(const herd_value *env)
{
    size_t n = 0;
    for (char **e = environ; e && *e; e++) n++;
    char **v = calloc(n + herd_len(env) + 1, sizeof *v);
    if (!v) return NULL;
    size_t m = 0;
    for (char **e = environ; e && *e; e++) {
        const char *eq = strchr(*e, '=');
        size_t kl = eq ? (size_t)(eq - *e) : strlen(*e);
        bool overridden = false;
        for (size_t j = 0; j < herd_len(env) && !overridden; j++) {
            const char *k = herd_key_at(env, j);
            overridden = strlen(k) == kl && !strncmp(k, *e, kl);
        }
        if (!overridden && !(v[m++] = strdup(*e))) goto oom;
    }
    for (size_t j = 0; j < herd_len(env); j++) {
        const herd_value *val = herd_at(env, j);
        if (herd_typeof(val) == HERD_NIL) continue;
        char *s = herd_typeof(val) == HERD_STR ? strdup(herd_as_str(val)) : herd_value_to_string(val);
        if (!s) goto oom;
        if (asprintf(&v[m], "%s=%s", herd_key_at(env, j), s) < 0) { v[m] = NULL; free(s); goto oom; }
        m++;
        free(s);
    }
    return v;
oom:
    for (size_t i = 0; i < m; i++) free(v[i]);
    free(v);
    return NULL;
}

static void strv_free(char **v)
{
    for (char **p = v; p && *p; p++) free(*p);
    free(v);
}

typedef struct run {
    pid_t pid;
    int out, err, in;          /* parent ends, -1 when closed */
    buf obuf, ebuf;
    const char *inp;
    size_t inleft;
    bool timed_out;
    int status;
} run;

static void close_fd(int *fd)
{
    if (*fd >= 0) close(*fd);
    *fd = -1;
}

static int spawn(herd_task_ctx *ctx, char **argv, const opts *op, run *r)
{
    int po[2] = {-1, -1}, pe[2] = {-1, -1}, pi[2] = {-1, -1};
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    char **envp = NULL;
    int rc;

    if (pipe2(po, O_CLOEXEC) || pipe2(pe, O_CLOEXEC) ||
        (op->in && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pi))) {
        rc = -errno;
        herd_task_fail(ctx, "shell.run: cannot create pipes: %s", strerror(errno));
        goto out_fds;
    }
    if (op->env && !(envp = make_env(op->env))) {
        rc = herd_task_fail(ctx, "shell.run: out of memory building the environment");
        goto out_fds;
    }
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&at);
    sigset_t none, dfl;
    sigemptyset(&none);
    sigemptyset(&dfl);
    sigaddset(&dfl, SIGPIPE);
    sigaddset(&dfl, SIGINT);
    sigaddset(&dfl, SIGTERM);
    sigaddset(&dfl, SIGCHLD);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &dfl);
    posix_spawnattr_setpgroup(&at, 0);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    if (op->in) posix_spawn_file_actions_adddup2(&fa, pi[1], 0);
    else posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, po[1], 1);
    posix_spawn_file_actions_adddup2(&fa, pe[1], 2);
    if (op->cwd) posix_spawn_file_actions_addchdir_np(&fa, op->cwd);
    rc = posix_spawnp(&r->pid, argv[0], &fa, &at, argv, envp ? envp : environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    strv_free(envp);
    if (rc) {
        herd_task_fail(ctx, "shell.run: cannot run \"%s\"%s%s: %s", argv[0],
                       op->cwd ? " in " : "", op->cwd ? op->cwd : "", strerror(rc));
        rc = -rc;
        goto out_fds;
    }
    r->out = po[0];
    r->err = pe[0];
    r->in = pi[0];
    close(po[1]);
    close(pe[1]);
    if (pi[1] >= 0) close(pi[1]);
    fcntl(r->out, F_SETFL, O_NONBLOCK);
    fcntl(r->err, F_SETFL, O_NONBLOCK);
    if (r->in >= 0) {
        fcntl(r->in, F_SETFL, O_NONBLOCK);
        r->inp = op->in;
        r->inleft = op->inlen;
        if (!r->inleft) { shutdown(r->in, SHUT_WR); close_fd(&r->in); }
    }
    return 0;
out_fds:
    for (int i = 0; i < 2; i++) {
        close_fd(&po[i]);
        close_fd(&pe[i]);
        close_fd(&pi[i]);
    }
    return rc;
}

/* Drain stdout/stderr and feed stdin until both outputs close. */
static int pump(herd_task_ctx *ctx, run *r, double timeout)
{
    double deadline = timeout > 0 ? now() + timeout : 0, grace = 0;
    char chunk[65536];
    while (r->out >= 0 || r->err >= 0) {
        struct pollfd p[3];
        int n = 0, io = -1, ie = -1, ii = -1;
        if (r->out >= 0) { io = n; p[n++] = (struct pollfd){ .fd = r->out, .events = POLLIN }; }
        if (r->err >= 0) { ie = n; p[n++] = (struct pollfd){ .fd = r->err, .events = POLLIN }; }
        if (r->in >= 0) { ii = n; p[n++] = (struct pollfd){ .fd = r->in, .events = POLLOUT }; }
        int ms = -1;
        double until = grace > 0 ? grace : deadline;
        if (until > 0) {
            double left = (until - now()) * 1000;
            ms = left > 0 ? (int)left + 1 : 0;
        }
        int k = poll(p, (nfds_t)n, ms);
        if (k < 0 && errno != EINTR) {
            herd_task_fail(ctx, "shell.run: poll: %s", strerror(errno));
            return -errno;
        }
        if (k == 0 && grace > 0 && now() >= grace) break;   /* pipes kept open by escaped children */
        if (k == 0 && grace == 0 && deadline > 0 && now() >= deadline) {
            kill(-r->pid, SIGKILL);
            r->timed_out = true;
            close_fd(&r->in);
            grace = now() + 1.0;
            continue;
        }
        if (k <= 0) continue;
        int fds[2] = { io, ie };
        for (int i = 0; i < 2; i++) {
            if (fds[i] < 0 || !(p[fds[i]].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            int *fd = i == 0 ? &r->out : &r->err;
            buf *b = i == 0 ? &r->obuf : &r->ebuf;
            ssize_t got = read(*fd, chunk, sizeof chunk);
            if (got > 0) {
                if (buf_add(b, chunk, (size_t)got)) {
                    kill(-r->pid, SIGKILL);
                    return herd_task_fail(ctx, "shell.run: out of memory capturing output");
                }
            } else if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
                close_fd(fd);
            }
        }
        if (ii >= 0 && (p[ii].revents & (POLLOUT | POLLHUP | POLLERR))) {
            ssize_t w = send(r->in, r->inp, r->inleft, MSG_NOSIGNAL);
            if (w > 0) {
                r->inp += w;
                r->inleft -= (size_t)w;
            }
            if ((w < 0 && errno != EAGAIN && errno != EINTR) || r->inleft == 0) {
                shutdown(r->in, SHUT_WR);   /* EPIPE: the child stopped reading; not an error */
                close_fd(&r->in);
            }
        }
    }
    return 0;
}

static int build_argv(herd_task_ctx *ctx, const herd_value *cmd, bool shell, char ***out)
{
    size_t n = herd_typeof(cmd) == HERD_STR ? 1 : herd_len(cmd);
    char **argv = calloc(n + 3, sizeof *argv);
    if (!argv) return herd_task_fail(ctx, "shell.run: out of memory");
    size_t m = 0;
    if (shell) {
        argv[m++] = "/bin/sh";
        argv[m++] = "-c";
    }
    for (size_t i = 0; i < n; i++)
        argv[m++] = (char *)herd_as_str(herd_typeof(cmd) == HERD_STR ? cmd : herd_at(cmd, i));
    *out = argv;
    return 0;
}

static int shell_run(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    size_t nargs = herd_len(args);
    if (herd_typeof(args) != HERD_ARRAY || nargs < 1 || nargs > 2) {
        herd_task_fail(ctx, "shell.run: expected arguments [command (str or array of str), options (map, "
                       "optional)], got %zu argument%s", nargs, nargs == 1 ? "" : "s");
        return -HERD_EARG;
    }
    const herd_value *cmd = herd_at(args, 0);
    herd_type ct = herd_typeof(cmd);
    if (ct == HERD_STR) {
        if (!*herd_as_str(cmd))
            return bad(ctx, "shell.run: argument 0 (%s): expected a non-empty str, got %s %s", "command", cmd);
    } else if (ct == HERD_ARRAY) {
        if (herd_len(cmd) == 0)
            return bad(ctx, "shell.run: argument 0 (%s): expected a non-empty array of str, got %s %s",
                       "argv", cmd);
        for (size_t i = 0; i < herd_len(cmd); i++)
            if (herd_typeof(herd_at(cmd, i)) != HERD_STR) {
                herd_task_fail(ctx, "shell.run: argument 0 (argv[%zu]): expected str, got %s", i,
                               herd_type_name(herd_typeof(herd_at(cmd, i))));
                return -HERD_EARG;
            }
    } else {
        return bad(ctx, "shell.run: argument 0 (%s): expected str or array of str, got %s %s", "command", cmd);
    }
    opts op = { .shell = ct == HERD_STR };
    int rc = parse_opts(ctx, nargs > 1 ? herd_at(args, 1) : NULL, &op);
    if (rc) return rc;
    if (op.cwd) {
        struct stat st;
        int e = stat(op.cwd, &st) ? errno : S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
        if (e) {
            herd_task_fail(ctx, "shell.run: argument 1 (options.cwd): cannot use \"%s\": %s", op.cwd,
                           strerror(e));
            return -HERD_EARG;
        }
    }

    char **argv = NULL;
    if ((rc = build_argv(ctx, cmd, op.shell, &argv))) return rc;
    run r = { .out = -1, .err = -1, .in = -1 };
    double t0 = now();
    rc = spawn(ctx, argv, &op, &r);
    const char *name = argv[op.shell ? 2 : 0];
    if (rc == 0) {
        rc = pump(ctx, &r, op.timeout);
        close_fd(&r.out);
        close_fd(&r.err);
        close_fd(&r.in);
        if (rc) kill(-r.pid, SIGKILL);
        while (waitpid(r.pid, &r.status, 0) < 0 && errno == EINTR) {}
    }
    double dt = now() - t0;
    int status = WIFEXITED(r.status) ? WEXITSTATUS(r.status) : WIFSIGNALED(r.status) ? -WTERMSIG(r.status) : -1;
    const char *etail = r.ebuf.p ? r.ebuf.p + (r.ebuf.len > TAIL ? r.ebuf.len - TAIL : 0) : "";
    int etlen = (int)strlen(etail);          /* stops at a NUL in binary output; fine for a message */
    while (etlen > 0 && (etail[etlen - 1] == '\n' || etail[etlen - 1] == '\r' || etail[etlen - 1] == ' '))
        etlen--;
    if (rc == 0 && r.timed_out) {
        herd_task_fail(ctx, "shell.run: \"%s\" timed out after %g s (process group killed)%s%.*s",
                       name, op.timeout, etlen ? "; stderr: " : "", etlen, etail);
        rc = -HERD_ETIMEOUT;
    } else if (rc == 0 && op.check && status != 0) {
        rc = herd_task_fail(ctx, "shell.run: \"%s\" %s %d%s%.*s", name,
                            status < 0 ? "was killed by signal" : "exited with status",
                            status < 0 ? -status : status, etlen ? "; stderr: " : "", etlen, etail);
    } else if (rc == 0) {
        herd_value *m = herd_map();
        if (!m || herd_map_set(m, "exit_status", herd_int(status)) ||
            herd_map_set(m, "stdout", text_or_bytes(&r.obuf)) ||
            herd_map_set(m, "stderr", text_or_bytes(&r.ebuf)) ||
            herd_map_set(m, "duration", herd_float(dt))) {
            herd_value_free(m);
            rc = herd_task_fail(ctx, "shell.run: out of memory building the result");
        } else {
            *out = m;
        }
    }
    free(argv);
    free(r.obuf.p);
    free(r.ebuf.p);
    return rc;
}
HERD_TASK_NAMED(shell_run, "shell.run");
