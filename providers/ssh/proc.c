/* providers/ssh/proc.c — the ssh child processes of an SSHCluster. One
 * monitor thread per cluster forks every long-running ssh (so
 * PR_SET_PDEATHSIG, which follows the forking thread, lasts as long as the
 * cluster), polls their stdout and stderr, hands complete lines to the
 * cluster and reaps them. ssh_run is the synchronous counterpart for short
 * commands (hash checks, uploads, the last-resort remote kill). Between fork
 * and exec only async-signal-safe calls are made. */
#include "ssh.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* argv[0] as a path: PATH is searched before fork (execvp may allocate). */
static int find_program(const char *name, char *out, size_t cap)
{
    if (strchr(name, '/')) {
        snprintf(out, cap, "%s", name);
        return access(out, X_OK) == 0 ? 0 : -errno;
    }
    const char *path = getenv("PATH");
    char *copy = strdup(path && *path ? path : "/usr/local/bin:/usr/bin:/bin"), *save = NULL;
    if (!copy) return -ENOMEM;
    for (char *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        snprintf(out, cap, "%s/%s", d, name);
        if (access(out, X_OK) == 0) { free(copy); return 0; }
    }
    free(copy);
    return -ENOENT;
}

/* The child: stdin/stdout/stderr from fds (-1: /dev/null), own process
 * group (terminal signals are the cluster's to handle), killed when the
 * forking thread ends. errfd carries exec's errno back. */
static void child(const char *prog, char *const argv[], int in, int out, int errp, int devnull,
                  pid_t parent, int errfd)
{
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    int sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGCHLD, SIGPIPE };
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) sigaction(sigs[i], &dfl, NULL);
    setpgid(0, 0);
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) _exit(127);
    dup2(in >= 0 ? in : devnull, 0);
    dup2(out >= 0 ? out : devnull, 1);
    dup2(errp >= 0 ? errp : devnull, 2);
    if (errfd > 3) close_range(3, (unsigned)errfd - 1, 0);
    close_range((unsigned)errfd + 1, ~0u, 0);
    execve(prog, argv, environ);
    int e = errno;
    if (write(errfd, &e, sizeof e) < 0) { /* nothing more to do */ }
    _exit(127);
}

/* Fork and exec; fds: in (read end for the child), out, err (write ends).
 * Closes nothing of the caller's. */
static int spawn(char *const argv[], int in, int out, int errp, pid_t *pid, char *msg, size_t cap)
{
    char prog[4096];
    int rc = find_program(argv[0], prog, sizeof prog);
    if (rc) {
        snprintf(msg, cap, "cannot run %s: %s", argv[0], strerror(-rc));
        return rc;
    }
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) != 0) {
        rc = -errno;
        snprintf(msg, cap, "pipe: %s", strerror(errno));
        return rc;
    }
    int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    pid_t parent = getpid();
    pid_t p = fork();
    if (p == 0) child(prog, argv, in, out, errp, devnull, parent, pfd[1]);
    int fe = errno;
    close(pfd[1]);
    if (devnull >= 0) close(devnull);
    if (p < 0) {
        close(pfd[0]);
        snprintf(msg, cap, "fork: %s", strerror(fe));
        return -fe;
    }
    int e = 0;
    ssize_t n;
    while ((n = read(pfd[0], &e, sizeof e)) < 0 && errno == EINTR) {}
    close(pfd[0]);
    if (n == (ssize_t)sizeof e) {
        while (waitpid(p, NULL, 0) < 0 && errno == EINTR) {}
        snprintf(msg, cap, "cannot run %s: %s", prog, strerror(e));
        return -e;
    }
    *pid = p;
    return 0;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return -errno;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Keep the last stderr text of a child (for error messages), lines joined
 * with "; " and trimmed from the front. */
static void tail_add(char *tail, size_t cap, const char *line)
{
    if (!*line) return;
    size_t tl = strlen(tail), ll = strlen(line);
    if (ll + 3 >= cap) { snprintf(tail, cap, "%s", line + (ll - (cap - 4))); return; }
    while (tl && tl + 2 + ll >= cap) {            /* drop the oldest line */
        char *sep = strstr(tail, "; ");
        if (!sep) { tl = 0; tail[0] = '\0'; break; }
        memmove(tail, sep + 2, strlen(sep + 2) + 1);
        tl = strlen(tail);
    }
    snprintf(tail + tl, cap - tl, "%s%s", tl ? "; " : "", line);
}

/* Has pid ended? Then kill what is left of its process group (while the
 * zombie keeps the group id from being reused), reap it: 1 and *st. 0: still
 * running. -1: not our child any more. */
static int reap(pid_t pid, int *st)
{
    siginfo_t si;
    memset(&si, 0, sizeof si);
    int r;
    while ((r = waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT)) < 0 && errno == EINTR) {}
    if (r < 0) return -1;
    if (si.si_pid != pid) return 0;
    kill(-pid, SIGKILL);
    while (waitpid(pid, st, 0) < 0 && errno == EINTR) {}
    return 1;
}

/* ---- the monitor ---- */

typedef struct req {
    char *const *argv;
    const char *input;
    size_t len;
    ssh_child *ch;
    int rc;
    char *msg;
    size_t cap;
    bool done;
} req;

struct ssh_mon {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    int wake[2];
    bool quit;
    req *pending;                 /* one spawn at a time */
    pthread_mutex_t spawn_mu;
    ssh_child *kids;              /* monitor thread only */
};

static void do_spawn(ssh_mon *m, req *r)
{
    ssh_child *ch = r->ch;
    int in[2] = { -1, -1 }, out[2] = { -1, -1 }, er[2] = { -1, -1 };
    ch->in = ch->out = ch->err = -1;
    if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC) || pipe2(er, O_CLOEXEC)) {
        r->rc = -errno;
        snprintf(r->msg, r->cap, "pipe: %s", strerror(errno));
        goto fail;
    }
    pid_t pid;
    if ((r->rc = spawn(r->argv, in[0], out[1], er[1], &pid, r->msg, r->cap))) goto fail;
    close(in[0]); close(out[1]); close(er[1]);
    ch->pid = pid;
    ch->in = in[1];
    ch->out = out[0];
    ch->err = er[0];
    ch->olen = ch->elen = 0;
    ch->tail[0] = '\0';
    ch->reaped = false;
    ch->exited_at = 0;
    fcntl(ch->out, F_SETFL, O_NONBLOCK);
    fcntl(ch->err, F_SETFL, O_NONBLOCK);
    /* the environment script is small (a pipe holds 64 KiB): ssh takes it
     * once the session is up; SIGPIPE is not raised (MSG_NOSIGNAL is for
     * sockets), so block it around the write */
    sigset_t pipe_set, old;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    if (r->len) write_all(ch->in, r->input, r->len);   /* a dead ssh shows in its exit */
    struct timespec zero = { 0, 0 };
    while (sigtimedwait(&pipe_set, NULL, &zero) > 0) {}
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    ch->next = m->kids;
    m->kids = ch;
    r->rc = 0;
    return;
fail:
    for (int i = 0; i < 2; i++) {
        if (in[i] >= 0) close(in[i]);
        if (out[i] >= 0) close(out[i]);
        if (er[i] >= 0) close(er[i]);
    }
}

/* Read what is there; hand over complete lines. false at EOF/error. */
static bool drain(ssh_child *ch, bool is_err)
{
    int fd = is_err ? ch->err : ch->out;
    char *buf = is_err ? ch->ebuf : ch->obuf;
    size_t *len = is_err ? &ch->elen : &ch->olen;
    const size_t cap = sizeof ch->obuf;
    for (;;) {
        ssize_t n = read(fd, buf + *len, cap - 1 - *len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return true;
        bool eof = n <= 0;
        if (n > 0) *len += (size_t)n;
        buf[*len] = '\0';
        char *start = buf, *nl;
        while ((nl = strchr(start, '\n'))) {
            *nl = '\0';
            if (nl > start && nl[-1] == '\r') nl[-1] = '\0';
            if (is_err) tail_add(ch->tail, sizeof ch->tail, start);
            if (ch->on_line) ch->on_line(ch->ud, start, is_err);
            start = nl + 1;
        }
        size_t rest = *len - (size_t)(start - buf);
        if (rest == cap - 1 || (eof && rest)) {     /* a line too long, or the last one */
            if (is_err) tail_add(ch->tail, sizeof ch->tail, start);
            if (ch->on_line) ch->on_line(ch->ud, start, is_err);
            rest = 0;
        } else {
            memmove(buf, start, rest);
        }
        *len = rest;
        if (eof) return false;
    }
}

static void *mon_main(void *arg)
{
    ssh_mon *m = arg;
    struct pollfd *pf = NULL;
    ssh_child **who = NULL;
    size_t pcap = 0;
    for (;;) {
        pthread_mutex_lock(&m->mu);
        if (m->pending && !m->pending->done) {
            do_spawn(m, m->pending);
            m->pending->done = true;
            pthread_cond_broadcast(&m->cv);
        }
        bool quit = m->quit && !m->kids;
        pthread_mutex_unlock(&m->mu);
        if (quit) break;

        size_t n = 1, nk = 0;
        for (ssh_child *c = m->kids; c; c = c->next) nk++;
        if (2 * nk + 1 > pcap) {
            pcap = 2 * nk + 16;
            pf = realloc(pf, pcap * sizeof *pf);
            who = realloc(who, pcap * sizeof *who);
            if (!pf || !who) abort();   /* the monitor cannot go on without memory */
        }
        pf[0] = (struct pollfd){ .fd = m->wake[0], .events = POLLIN };
        for (ssh_child *c = m->kids; c; c = c->next) {
            if (c->out >= 0) { pf[n] = (struct pollfd){ .fd = c->out, .events = POLLIN }; who[n++] = c; }
            if (c->err >= 0) { pf[n] = (struct pollfd){ .fd = c->err, .events = POLLIN }; who[n++] = c; }
        }
        /* a child whose pipes closed is about to exit: look again soon */
        int wait_ms = 200;
        for (ssh_child *c = m->kids; c; c = c->next)
            if (!c->reaped && c->out < 0 && c->err < 0) wait_ms = 2;
        int r = poll(pf, n, wait_ms);
        if (r > 0 && (pf[0].revents & POLLIN)) {
            char b[64];
            while (read(m->wake[0], b, sizeof b) > 0) {}
        }
        for (size_t i = 1; r > 0 && i < n; i++) {
            if (!pf[i].revents) continue;
            ssh_child *c = who[i];
            bool is_err = pf[i].fd == c->err;
            if (!drain(c, is_err)) {
                close(pf[i].fd);
                if (is_err) c->err = -1; else c->out = -1;
            }
        }
        /* reap: when both pipes are closed, or a second after the exit
         * (something ssh started may hold a pipe open) */
        double now = herd_now();
        for (ssh_child **pp = &m->kids; *pp;) {
            ssh_child *c = *pp;
            if (!c->reaped) {
                int st = 0, how = reap(c->pid, &st);
                if (how != 0) {
                    c->reaped = true;
                    c->status = st;
                    c->exited_at = now;
                }
            }
            if (c->reaped && ((c->out < 0 && c->err < 0) || now - c->exited_at > 1.0)) {
                if (c->out >= 0) { drain(c, false); close(c->out); c->out = -1; }
                if (c->err >= 0) { drain(c, true); close(c->err); c->err = -1; }
                *pp = c->next;
                if (c->on_exit) c->on_exit(c->ud, c->status, c->tail);
                continue;
            }
            pp = &c->next;
        }
    }
    free(pf);
    free(who);
    return NULL;
}

int ssh_mon_new(ssh_mon **out)
{
    ssh_mon *m = calloc(1, sizeof *m);
    if (!m) return -ENOMEM;
    if (pipe2(m->wake, O_CLOEXEC | O_NONBLOCK) != 0) { int e = -errno; free(m); return e; }
    pthread_mutex_init(&m->mu, NULL);
    pthread_mutex_init(&m->spawn_mu, NULL);
    pthread_cond_init(&m->cv, NULL);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);   /* process signals go to other threads */
    int rc = pthread_create(&m->thread, NULL, mon_main, m);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc) {
        close(m->wake[0]); close(m->wake[1]);
        pthread_cond_destroy(&m->cv);
        pthread_mutex_destroy(&m->spawn_mu);
        pthread_mutex_destroy(&m->mu);
        free(m);
        return -rc;
    }
    *out = m;
    return 0;
}

static void poke(ssh_mon *m)
{
    char b = 1;
    if (write(m->wake[1], &b, 1) < 0) { /* full: it is awake anyway */ }
}

int ssh_mon_spawn(ssh_mon *m, char *const argv[], const char *input, size_t len,
                  ssh_child *ch, char *msg, size_t cap)
{
    req r = { .argv = argv, .input = input, .len = len, .ch = ch, .msg = msg, .cap = cap };
    pthread_mutex_lock(&m->spawn_mu);
    pthread_mutex_lock(&m->mu);
    m->pending = &r;
    poke(m);
    while (!r.done) pthread_cond_wait(&m->cv, &m->mu);
    m->pending = NULL;
    pthread_mutex_unlock(&m->mu);
    pthread_mutex_unlock(&m->spawn_mu);
    return r.rc;
}

int ssh_child_send(ssh_child *ch, const char *line)
{
    if (ch->in < 0) return -EPIPE;
    sigset_t pipe_set, old;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    int rc = write_all(ch->in, line, strlen(line));
    struct timespec zero = { 0, 0 };
    while (sigtimedwait(&pipe_set, NULL, &zero) > 0) {}
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

void ssh_mon_free(ssh_mon *m)
{
    if (!m) return;
    pthread_mutex_lock(&m->mu);
    m->quit = true;
    poke(m);
    pthread_mutex_unlock(&m->mu);
    pthread_join(m->thread, NULL);
    close(m->wake[0]);
    close(m->wake[1]);
    pthread_cond_destroy(&m->cv);
    pthread_mutex_destroy(&m->spawn_mu);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

/* ---- one-shot commands ---- */

int ssh_run(char *const argv[], int in_fd, const char *input, char *out, size_t cap,
            char *tail, size_t tcap, double timeout, int *status)
{
    int ip[2] = { -1, -1 }, op[2] = { -1, -1 }, ep[2] = { -1, -1 };
    char msg[256];
    if (out && cap) out[0] = '\0';
    if (tail && tcap) tail[0] = '\0';
    *status = 0;
    if ((input && pipe2(ip, O_CLOEXEC)) || pipe2(op, O_CLOEXEC) || pipe2(ep, O_CLOEXEC)) {
        int e = -errno;
        for (int i = 0; i < 2; i++) {
            if (ip[i] >= 0) close(ip[i]);
            if (op[i] >= 0) close(op[i]);
            if (ep[i] >= 0) close(ep[i]);
        }
        return e;
    }
    pid_t pid;
    int rc = spawn(argv, input ? ip[0] : in_fd, op[1], ep[1], &pid, msg, sizeof msg);
    if (ip[0] >= 0) close(ip[0]);
    close(op[1]);
    close(ep[1]);
    if (rc) {
        if (ip[1] >= 0) close(ip[1]);
        close(op[0]);
        close(ep[0]);
        if (tail && tcap) snprintf(tail, tcap, "%s", msg);
        return rc;
    }
    size_t olen = 0, inoff = 0, inlen = input ? strlen(input) : 0;
    char ebuf[1024];
    size_t elen = 0;
    if (ip[1] >= 0) fcntl(ip[1], F_SETFL, O_NONBLOCK);
    if (ip[1] >= 0 && inlen == 0) { close(ip[1]); ip[1] = -1; }
    double end = herd_now() + timeout;
    bool timed_out = false;
    sigset_t pipe_set, old;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    while (op[0] >= 0 || ep[0] >= 0) {
        struct pollfd pf[3];
        int n = 0;
        if (op[0] >= 0) pf[n++] = (struct pollfd){ .fd = op[0], .events = POLLIN };
        if (ep[0] >= 0) pf[n++] = (struct pollfd){ .fd = ep[0], .events = POLLIN };
        if (ip[1] >= 0) pf[n++] = (struct pollfd){ .fd = ip[1], .events = POLLOUT };
        int ms = (int)((end - herd_now()) * 1000);
        if (ms <= 0) { timed_out = true; break; }
        int r = poll(pf, (nfds_t)n, ms);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) continue;
        for (int i = 0; i < n; i++) {
            if (!pf[i].revents) continue;
            if (pf[i].fd == ip[1]) {
                ssize_t w = write(ip[1], input + inoff, inlen - inoff);
                if (w > 0) inoff += (size_t)w;
                if (w < 0 && errno != EAGAIN && errno != EINTR) inoff = inlen;
                if (inoff >= inlen) { close(ip[1]); ip[1] = -1; }
                continue;
            }
            bool is_out = pf[i].fd == op[0];
            char buf[4096];
            ssize_t k = read(pf[i].fd, buf, sizeof buf);
            if (k < 0 && errno == EINTR) continue;
            if (k <= 0) {
                close(pf[i].fd);
                if (is_out) op[0] = -1; else ep[0] = -1;
                continue;
            }
            if (is_out && out) {
                size_t take = olen + (size_t)k < cap ? (size_t)k : cap - 1 - olen;
                memcpy(out + olen, buf, take);
                olen += take;
                out[olen] = '\0';
            } else if (!is_out) {
                for (ssize_t j = 0; j < k; j++) {
                    if (buf[j] == '\n' || elen == sizeof ebuf - 1) {
                        ebuf[elen] = '\0';
                        if (tail && tcap) tail_add(tail, tcap, ebuf);
                        elen = 0;
                    } else if (buf[j] != '\r') {
                        ebuf[elen++] = buf[j];
                    }
                }
            }
        }
    }
    struct timespec zero = { 0, 0 };
    while (sigtimedwait(&pipe_set, NULL, &zero) > 0) {}
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (elen && tail && tcap) { ebuf[elen] = '\0'; tail_add(tail, tcap, ebuf); }
    for (int i = 0; i < 2; i++) {
        if (ip[i] >= 0) close(ip[i]);
        if (op[i] >= 0) close(op[i]);
        if (ep[i] >= 0) close(ep[i]);
    }
    if (timed_out) kill(-pid, SIGKILL);
    /* the pipes are closed: ssh ends now, or soon after its last write */
    double hard = herd_now() + (timed_out ? 5 : timeout > 0 ? timeout : 5);
    int st = 0;
    while (reap(pid, &st) == 0) {
        if (herd_now() > hard) { kill(-pid, SIGKILL); timed_out = true; hard += 5; }
        struct timespec ts = { 0, 2 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
    *status = st;
    return timed_out ? -ETIMEDOUT : 0;
}
