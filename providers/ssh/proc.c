/* providers/ssh/proc.c — the ssh child processes of an SSHCluster. One
 * monitor thread per cluster polls the stdout and stderr of every
 * long-running ssh, hands complete lines to the cluster and reports each
 * end; the processes are started by the monitor's herd_spawner (a thread
 * that lives as long as the cluster, so they die with it) and reaped with
 * the core's process helpers (core/proc.c). ssh_run is the synchronous
 * counterpart for short commands (hash checks, uploads, the last-resort
 * remote kill), forked by the calling thread. */
#include "ssh.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

/* ---- the monitor ---- */

struct ssh_mon {
    pthread_mutex_t mu;
    pthread_t thread;
    int wake[2];
    bool quit;
    herd_spawner *sp;             /* forks every child; freed after the thread */
    ssh_child *incoming;          /* started, not watched yet (under mu) */
    ssh_child *kids;              /* monitor thread only */
};

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
        while (m->incoming) {                 /* adopt the children started since */
            ssh_child *c = m->incoming;
            m->incoming = c->next;
            c->next = m->kids;
            m->kids = c;
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
            if (!c->reaped && herd_proc_poll(c->proc, &c->status)) {
                c->reaped = true;
                c->exited_at = now;
            }
            if (c->reaped && ((c->out < 0 && c->err < 0) || now - c->exited_at > 1.0)) {
                if (c->out >= 0) { drain(c, false); close(c->out); c->out = -1; }
                if (c->err >= 0) { drain(c, true); close(c->err); c->err = -1; }
                *pp = c->next;
                if (c->on_exit) c->on_exit(c->ud, &c->status, c->tail);
                continue;
            }
            pp = &c->next;
        }
    }
    free(pf);
    free(who);
    return NULL;
}

int ssh_mon_new(ssh_mon **out, herd_err *err)
{
    ssh_mon *m = calloc(1, sizeof *m);
    if (!m) return herd_err_set(err, -ENOMEM, "out of memory");
    int rc = herd_spawner_new(&m->sp, err);
    if (rc) { free(m); return rc; }
    if (pipe2(m->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
        rc = herd_err_set(err, -errno, "pipe: %s", strerror(errno));
        herd_spawner_free(m->sp);
        free(m);
        return rc;
    }
    pthread_mutex_init(&m->mu, NULL);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);   /* process signals go to other threads */
    rc = pthread_create(&m->thread, NULL, mon_main, m);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc) {
        close(m->wake[0]); close(m->wake[1]);
        pthread_mutex_destroy(&m->mu);
        herd_spawner_free(m->sp);
        free(m);
        return herd_err_set(err, -rc, "cannot start its monitor thread: %s", strerror(rc));
    }
    *out = m;
    return 0;
}

static void poke(ssh_mon *m)
{
    char b = 1;
    if (write(m->wake[1], &b, 1) < 0) { /* full: it is awake anyway */ }
}

/* Write to a pipe without SIGPIPE (MSG_NOSIGNAL is for sockets): blocked
 * around the write, a pending one consumed. */
static int write_quiet(int fd, const char *p, size_t n)
{
    sigset_t pipe_set, old;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    int rc = write_all(fd, p, n);
    struct timespec zero = { 0, 0 };
    while (sigtimedwait(&pipe_set, NULL, &zero) > 0) {}
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

int ssh_mon_spawn(ssh_mon *m, char *const argv[], const char *input, size_t len,
                  ssh_child *ch, char *msg, size_t cap)
{
    herd_proc_spec spec = { .argv = (const char *const *)argv,
                            .io = { HERD_PROC_PIPE, HERD_PROC_PIPE, HERD_PROC_PIPE } };
    int fds[3];
    herd_err e = { 0 };
    ch->in = ch->out = ch->err = -1;
    ch->proc = NULL;
    int rc = herd_proc_start(m->sp, &spec, &ch->proc, fds, &e);
    if (rc) {
        snprintf(msg, cap, "%s", e.msg);
        return rc;
    }
    ch->in = fds[0];
    ch->out = fds[1];
    ch->err = fds[2];
    ch->olen = ch->elen = 0;
    ch->tail[0] = '\0';
    ch->reaped = false;
    ch->exited_at = 0;
    fcntl(ch->out, F_SETFL, O_NONBLOCK);
    fcntl(ch->err, F_SETFL, O_NONBLOCK);
    /* the environment script is small (a pipe holds 64 KiB): ssh takes it
     * once the session is up; a dead ssh shows in its exit */
    if (len) write_quiet(ch->in, input, len);
    pthread_mutex_lock(&m->mu);
    ch->next = m->incoming;
    m->incoming = ch;
    poke(m);
    pthread_mutex_unlock(&m->mu);
    return 0;
}

int ssh_child_send(ssh_child *ch, const char *line)
{
    if (ch->in < 0) return -EPIPE;
    return write_quiet(ch->in, line, strlen(line));
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
    pthread_mutex_destroy(&m->mu);
    herd_spawner_free(m->sp);
    free(m);
}

/* ---- one-shot commands ---- */

int ssh_run(char *const argv[], int in_fd, const char *input, char *out, size_t cap,
            char *tail, size_t tcap, double timeout, herd_proc_exit *status)
{
    if (out && cap) out[0] = '\0';
    if (tail && tcap) tail[0] = '\0';
    memset(status, 0, sizeof *status);
    herd_proc_spec spec = { .argv = (const char *const *)argv,
                            .io = { input ? HERD_PROC_PIPE : in_fd >= 0 ? HERD_PROC_FD : HERD_PROC_DEVNULL,
                                    HERD_PROC_PIPE, HERD_PROC_PIPE },
                            .fd = { in_fd, -1, -1 } };
    herd_proc *p = NULL;
    int fds[3];
    herd_err e = { 0 };
    int rc = herd_proc_start(NULL, &spec, &p, fds, &e);
    if (rc) {
        if (tail && tcap) snprintf(tail, tcap, "%s", e.msg);
        return rc;
    }
    int ip[2] = { -1, fds[0] }, op[2] = { fds[1], -1 }, ep[2] = { fds[2], -1 };
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
    if (timed_out) herd_proc_signal(p, SIGKILL);
    /* the pipes are closed: ssh ends now, or soon after its last write */
    double wait = timed_out ? 5 : timeout > 0 ? timeout : 5;
    while (!herd_proc_wait(p, wait, status)) {
        herd_proc_signal(p, SIGKILL);
        timed_out = true;
        wait = 5;
    }
    herd_proc_free(p);
    return timed_out ? -ETIMEDOUT : 0;
}

bool ssh_run_ok(int rc, const herd_proc_exit *st)
{
    return rc == 0 && st->known && st->signal == 0 && st->status == 0;
}
