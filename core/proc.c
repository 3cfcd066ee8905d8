/* core/proc.c — the child processes of providers (provider.h, "child
 * processes"): starting a program in its own process group that dies with
 * the thread that forked it (a herd_spawner thread lives as long as its
 * cluster), with its standard streams wired as asked and variables added to
 * its environment; reaping it exactly once, whichever thread asks first;
 * stopping several for certain (SIGTERM, a grace period, SIGKILL) and saying
 * how each ended. Between fork and exec only async-signal-safe calls are
 * made; an O_CLOEXEC pipe carries exec's errno back, so a program that
 * cannot run is an error of the start, not a child that exits 127. */
#include <herd/provider.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

struct herd_proc {
    pthread_mutex_t mu;        /* guards reaped/ex, and signals against reaping */
    pid_t pid;
    bool reaped;
    herd_proc_exit ex;
};

/* ---- starting ---- */

/* Everything the forking thread needs, prepared beforehand (no allocation
 * happens between fork and exec). */
typedef struct forkreq {
    const char *prog;
    char *const *argv, *const *envp;
    int io[3];                 /* what becomes fd i in the child, or -1: inherited */
    pid_t pid;
    int rc;                    /* 0 or -errno */
    const char *what;          /* the failed step, when rc */
} forkreq;

static void child(const forkreq *r, pid_t parent, int errfd)
{
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    int sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGCHLD, SIGPIPE };
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) sigaction(sigs[i], &dfl, NULL);
    setpgid(0, 0);                                /* signals go to the whole group */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) {
        int e = ECHILD;                           /* the forking thread is gone already */
        if (write(errfd, &e, sizeof e) < 0) { /* nothing more to do */ }
        _exit(127);
    }
    for (int i = 0; i < 3; i++)
        if (r->io[i] >= 0) dup2(r->io[i], i);     /* sources are >= 3 (see prepare_io) */
    if (errfd > 3) close_range(3, (unsigned)errfd - 1, 0);
    close_range((unsigned)errfd + 1, ~0u, 0);
    execve(r->prog, r->argv, r->envp);
    int e = errno;
    if (write(errfd, &e, sizeof e) < 0) { /* nothing more to do */ }
    _exit(127);
}

static void do_fork(forkreq *r)
{
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) != 0) { r->rc = -errno; r->what = "pipe"; return; }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) child(r, parent, pfd[1]);
    int fe = errno;
    close(pfd[1]);
    if (pid < 0) { close(pfd[0]); r->rc = -fe; r->what = "fork"; return; }
    int e = 0;
    ssize_t n;
    while ((n = read(pfd[0], &e, sizeof e)) < 0 && errno == EINTR) {}
    close(pfd[0]);
    if (n == (ssize_t)sizeof e) {                 /* exec failed: reap it, say why */
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
        r->rc = -e;
        r->what = NULL;
        return;
    }
    r->pid = pid;
    r->rc = 0;
}

/* ---- the spawner thread ---- */

struct herd_spawner {
    pthread_mutex_t mu;        /* one request at a time */
    pthread_mutex_t qmu;       /* guards the fields below */
    pthread_cond_t cv;
    pthread_t thread;
    bool quit;
    forkreq *req;              /* pending, until done */
    bool done;
};

static void *spawner_main(void *arg)
{
    herd_spawner *s = arg;
    pthread_mutex_lock(&s->qmu);
    for (;;) {
        while (!s->req && !s->quit) pthread_cond_wait(&s->cv, &s->qmu);
        if (s->quit) break;
        forkreq *r = s->req;
        pthread_mutex_unlock(&s->qmu);
        do_fork(r);
        pthread_mutex_lock(&s->qmu);
        s->req = NULL;
        s->done = true;
        pthread_cond_broadcast(&s->cv);
    }
    pthread_mutex_unlock(&s->qmu);
    return NULL;
}

HERD_API int herd_spawner_new(herd_spawner **out, herd_err *err)
{
    if (!out) return herd_err_set(err, -EINVAL, "herd_spawner_new: out is NULL");
    *out = NULL;
    herd_spawner *s = calloc(1, sizeof *s);
    if (!s) return herd_err_set(err, -ENOMEM, "spawner: out of memory");
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->qmu, NULL);
    pthread_cond_init(&s->cv, NULL);
    /* the thread blocks every signal: process-directed signals go elsewhere */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&s->thread, NULL, spawner_main, s);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc) {
        pthread_cond_destroy(&s->cv);
        pthread_mutex_destroy(&s->qmu);
        pthread_mutex_destroy(&s->mu);
        free(s);
        return herd_err_set(err, -rc, "spawner: cannot start its thread: %s", strerror(rc));
    }
    *out = s;
    return 0;
}

HERD_API void herd_spawner_free(herd_spawner *s)
{
    if (!s) return;
    pthread_mutex_lock(&s->qmu);
    s->quit = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->qmu);
    pthread_join(s->thread, NULL);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->qmu);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static void spawner_run(herd_spawner *s, forkreq *r)
{
    pthread_mutex_lock(&s->mu);
    pthread_mutex_lock(&s->qmu);
    s->req = r;
    s->done = false;
    pthread_cond_broadcast(&s->cv);
    while (!s->done) pthread_cond_wait(&s->cv, &s->qmu);
    pthread_mutex_unlock(&s->qmu);
    pthread_mutex_unlock(&s->mu);
}

/* ---- what the child gets ---- */

/* name as a path execve takes: PATH searched when it has no '/'. */
static int find_program(const char *name, char **out)
{
    if (strchr(name, '/')) return (*out = strdup(name)) ? 0 : -ENOMEM;
    const char *path = getenv("PATH");
    char *copy = strdup(path && *path ? path : "/usr/local/bin:/usr/bin:/bin"), *save = NULL;
    if (!copy) return -ENOMEM;
    int rc = -ENOENT;
    for (char *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        char *full = NULL;
        if (asprintf(&full, "%s/%s", d, name) < 0) { rc = -ENOMEM; break; }
        if (access(full, X_OK) == 0) { *out = full; rc = 0; break; }
        free(full);
    }
    free(copy);
    return rc;
}

static bool same_key(const char *a, const char *b)
{
    size_t i = 0;
    while (a[i] && a[i] != '=' && a[i] == b[i]) i++;
    return (a[i] == '=' || !a[i]) && (b[i] == '=' || !b[i]);
}

static bool overridden(const char *kv, const char *const *later)
{
    for (; later && *later; later++)
        if (same_key(kv, *later)) return true;
    return false;
}

/* environ with add put over it (later entries winning); the strings are
 * borrowed, only the vector is allocated. */
static char **merge_env(const char *const *add)
{
    size_t n = 0;
    for (char **e = environ; e && *e; e++) n++;
    for (const char *const *e = add; e && *e; e++) n++;
    char **v = calloc(n + 1, sizeof *v);
    if (!v) return NULL;
    size_t k = 0;
    for (char **e = environ; e && *e; e++)
        if (!overridden(*e, add)) v[k++] = *e;
    for (const char *const *e = add; e && *e; e++)
        if (!overridden(*e, e + 1)) v[k++] = (char *)*e;
    return v;
}

static void close_pair(int p[2])
{
    if (p[0] >= 0) close(p[0]);
    if (p[1] >= 0) close(p[1]);
    p[0] = p[1] = -1;
}

HERD_API int herd_proc_start(herd_spawner *sp, const herd_proc_spec *spec, herd_proc **out,
                             int pipes[3], herd_err *err)
{
    if (out) *out = NULL;
    for (int i = 0; pipes && i < 3; i++) pipes[i] = -1;
    if (!spec || !out || !spec->argv || !spec->argv[0] || !spec->argv[0][0])
        return herd_err_set(err, -EINVAL, "herd_proc_start: expected a spec with a program in argv[0], "
                            "got %s", !spec || !out ? "NULL" : "none");
    for (int i = 0; i < 3; i++)
        if ((unsigned)spec->io[i] > HERD_PROC_FD || (spec->io[i] == HERD_PROC_FD && spec->fd[i] < 0) ||
            (spec->io[i] == HERD_PROC_PIPE && !pipes))
            return herd_err_set(err, -EINVAL, "herd_proc_start: %s: io %d, fd %d: expected inherit, devnull, "
                                "pipe (with pipes given) or a descriptor >= 0", i == 0 ? "stdin" : i == 1 ?
                                "stdout" : "stderr", (int)spec->io[i], spec->fd[i]);
    const char *name = spec->argv[0];
    forkreq r = { .io = { -1, -1, -1 } };
    char *prog = NULL;
    char **envp = NULL;
    int pp[3][2] = { { -1, -1 }, { -1, -1 }, { -1, -1 } }, dup3fd[3] = { -1, -1, -1 }, devnull = -1;
    herd_proc *p = NULL;
    int rc = find_program(name, &prog);
    if (rc == -ENOENT)
        return herd_err_set(err, rc, "cannot run %s: not found in PATH", name);
    if (!rc && !(envp = merge_env(spec->env))) rc = -ENOMEM;
    if (!rc && !(p = calloc(1, sizeof *p))) rc = -ENOMEM;
    if (rc) {
        free(prog);
        free(envp);
        free(p);
        return herd_err_set(err, rc, "cannot run %s: out of memory", name);
    }
    /* the child's ends: pipes, /dev/null, or the caller's fd lifted to >= 3
     * so that no dup2 onto 0..2 clobbers a later source */
    for (int i = 0; !rc && i < 3; i++) {
        switch (spec->io[i]) {
        case HERD_PROC_INHERIT:
            break;
        case HERD_PROC_DEVNULL:
            if (devnull < 0 && (devnull = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0) { rc = -errno; break; }
            r.io[i] = devnull;
            break;
        case HERD_PROC_PIPE:
            if (pipe2(pp[i], O_CLOEXEC) != 0) { rc = -errno; break; }
            r.io[i] = i == 0 ? pp[i][0] : pp[i][1];
            break;
        case HERD_PROC_FD:
            if ((dup3fd[i] = fcntl(spec->fd[i], F_DUPFD_CLOEXEC, 3)) < 0) { rc = -errno; break; }
            r.io[i] = dup3fd[i];
            break;
        }
    }
    if (rc) {
        herd_err_set(err, rc, "cannot run %s: its standard streams: %s", name, strerror(-rc));
    } else {
        r.prog = prog;
        r.argv = (char *const *)spec->argv;
        r.envp = envp;
        if (sp) spawner_run(sp, &r);
        else do_fork(&r);
        rc = r.rc;
        if (rc && r.what) herd_err_set(err, rc, "cannot run %s: %s: %s", name, r.what, strerror(-rc));
        else if (rc) herd_err_set(err, rc, "cannot run %s: %s", prog, strerror(-rc));
    }
    for (int i = 0; i < 3; i++) {
        if (dup3fd[i] >= 0) close(dup3fd[i]);
        if (pp[i][0] < 0) continue;
        int mine = i == 0 ? 1 : 0;                /* stdin: we write; stdout/stderr: we read */
        close(pp[i][1 - mine]);
        pp[i][1 - mine] = -1;
        if (rc) close_pair(pp[i]);
        else pipes[i] = pp[i][mine];
    }
    if (devnull >= 0) close(devnull);
    free(prog);
    free(envp);
    if (rc) { free(p); return rc; }
    pthread_mutex_init(&p->mu, NULL);
    p->pid = r.pid;
    *out = p;
    return 0;
}

HERD_API pid_t herd_proc_pid(const herd_proc *p) { return p ? p->pid : 0; }

/* ---- reaping ---- */

/* p->mu held. Exited? Then kill what is left of its group (while the zombie
 * keeps the group id from being reused) and reap it. */
static bool reap_locked(herd_proc *p, bool block)
{
    if (p->reaped) return true;
    siginfo_t si;
    memset(&si, 0, sizeof si);
    int r;
    while ((r = waitid(P_PID, (id_t)p->pid, &si, WEXITED | WNOWAIT | (block ? 0 : WNOHANG))) < 0 &&
           errno == EINTR) {}
    if (r < 0) {                                  /* not our child any more */
        p->reaped = true;
        p->ex = (herd_proc_exit){ .known = false };
        return true;
    }
    if (si.si_pid != p->pid) return false;
    kill(-p->pid, SIGKILL);
    struct rusage ru;                             /* its peak RSS comes with the reaping */
    memset(&ru, 0, sizeof ru);
    while (wait4(p->pid, NULL, 0, &ru) < 0 && errno == EINTR) {}
    p->reaped = true;
    p->ex = (herd_proc_exit){ .known = true, .max_rss_kib = ru.ru_maxrss };
    if (si.si_code == CLD_EXITED) p->ex.status = si.si_status;
    else { p->ex.signal = si.si_status; p->ex.core_dumped = si.si_code == CLD_DUMPED; }
    return true;
}

HERD_API int herd_proc_poll(herd_proc *p, herd_proc_exit *ex)
{
    if (!p) return -EINVAL;
    pthread_mutex_lock(&p->mu);
    bool done = reap_locked(p, false);
    if (done && ex) *ex = p->ex;
    pthread_mutex_unlock(&p->mu);
    return done ? 1 : 0;
}

HERD_API int herd_proc_signal(herd_proc *p, int sig)
{
    if (!p) return -EINVAL;
    pthread_mutex_lock(&p->mu);
    int rc = p->reaped ? -ESRCH : kill(-p->pid, sig) == 0 ? 0 : -errno;
    pthread_mutex_unlock(&p->mu);
    return rc;
}

/* Until one of ps[0..n) not yet reaped has ended, or until deadline (< 0:
 * none): a poll on their pidfds, or, where the kernel has none, a short nap
 * (*nap, doubling up to 10 ms). */
static void wait_some(herd_proc *const *ps, size_t n, double deadline, long *nap)
{
    struct pollfd fds[64];
    size_t k = 0;
    bool ok = n <= 64;
    for (size_t i = 0; ok && i < n; i++) {
        pthread_mutex_lock(&ps[i]->mu);
        bool reaped = ps[i]->reaped;
        pthread_mutex_unlock(&ps[i]->mu);
        if (reaped) return;                       /* someone ended already: look again */
        int fd = (int)syscall(SYS_pidfd_open, ps[i]->pid, 0);
        if (fd < 0) ok = false;
        else fds[k++] = (struct pollfd){ .fd = fd, .events = POLLIN };
    }
    if (ok) {
        int ms = -1;
        if (deadline >= 0) {
            double left = deadline - herd_now();
            ms = left <= 0 ? 0 : left > 1e6 ? 1000000000 : (int)(left * 1000) + 1;
        }
        while (poll(fds, k, ms) < 0 && errno == EINTR) {}
    }
    for (size_t i = 0; i < k; i++) close(fds[i].fd);
    if (ok) return;
    double left = deadline < 0 ? 1 : deadline - herd_now();
    long ns = *nap;
    if (left <= 0) return;
    if (left < ns / 1e9) ns = (long)(left * 1e9);
    struct timespec ts = { 0, ns };
    nanosleep(&ts, NULL);
    if (*nap < 10 * 1000 * 1000) *nap *= 2;
}

HERD_API int herd_proc_wait(herd_proc *p, double timeout, herd_proc_exit *ex)
{
    if (!p) return -EINVAL;
    double deadline = timeout < 0 ? -1 : herd_now() + timeout;
    long nap = 500 * 1000;
    for (;;) {
        if (herd_proc_poll(p, ex)) return 1;
        if (deadline >= 0 && herd_now() >= deadline) return 0;
        wait_some(&p, 1, deadline, &nap);
    }
}

HERD_API int herd_proc_stop(herd_proc *const *ps, size_t n, double grace, herd_proc_exit *out)
{
    if (n && !ps) return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!ps[i]) return -EINVAL;
    for (size_t i = 0; i < n; i++) herd_proc_signal(ps[i], SIGTERM);
    double deadline = herd_now() + (grace > 0 ? grace : 0);
    bool killed = false;
    long nap = 500 * 1000;         /* without pidfds: 0.5 ms, doubling to 10 ms */
    for (;;) {
        /* the ones still running, at the front of a short list */
        herd_proc *left[64];
        size_t nl = 0, running = 0;
        for (size_t i = 0; i < n; i++)
            if (!herd_proc_poll(ps[i], NULL)) {
                running++;
                if (nl < 64) left[nl++] = ps[i];
            }
        if (!running) break;
        if (!killed && herd_now() >= deadline) {
            for (size_t i = 0; i < n; i++) herd_proc_signal(ps[i], SIGKILL);
            killed = true;
        }
        wait_some(left, nl, killed ? -1 : deadline, &nap);
    }
    for (size_t i = 0; out && i < n; i++) herd_proc_poll(ps[i], &out[i]);
    return 0;
}

HERD_API const char *herd_proc_describe(const herd_proc_exit *ex, char *buf, size_t cap)
{
    if (!buf || !cap) return buf;
    if (!ex || !ex->known) {
        snprintf(buf, cap, "exit status unknown (reaped elsewhere)");
    } else if (ex->signal) {
        const char *d = sigdescr_np(ex->signal);
        snprintf(buf, cap, "killed by signal %d (%s)%s", ex->signal, d ? d : "?",
                 ex->core_dumped ? ", core dumped" : "");
    } else {
        snprintf(buf, cap, "exited with status %d", ex->status);
    }
    return buf;
}

HERD_API void herd_proc_free(herd_proc *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    if (!p->reaped) {
        kill(-p->pid, SIGKILL);
        reap_locked(p, true);
    }
    pthread_mutex_unlock(&p->mu);
    pthread_mutex_destroy(&p->mu);
    free(p);
}
