/* providers/slurm/cmd.c — running one Slurm command (sbatch, squeue,
 * scancel) to its end through the core's process helpers: input written to
 * its stdin, stdout and stderr read together with poll, a time limit after
 * which it is killed, and an error that names the command and quotes what
 * Slurm printed ("sbatch: error: invalid partition specified: nope"). A
 * command that stops reading its stdin costs an EPIPE, never a SIGPIPE. */
#include "slurm.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Trim trailing newlines and join lines with "; " for a one-line message. */
static void one_line_msg(char *s)
{
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ')) s[--n] = '\0';
    for (char *p = s; *p; p++)
        if (*p == '\n') *p = ';';
}

int slurm_run(const char *const *argv, const char *const *env, const char *input, char *out, size_t cap,
              double timeout, herd_err *err)
{
    if (out && cap) out[0] = '\0';
    herd_proc_spec spec = { .argv = argv, .env = env,
                            .io = { input ? HERD_PROC_PIPE : HERD_PROC_DEVNULL, HERD_PROC_PIPE, HERD_PROC_PIPE } };
    herd_proc *p;
    int pipes[3] = { -1, -1, -1 };
    int rc = herd_proc_start(NULL, &spec, &p, pipes, err);
    if (rc) return rc;
    char etxt[600] = "";
    size_t olen = 0, elen = 0, ilen = input ? strlen(input) : 0, ioff = 0;
    if (pipes[0] >= 0) fcntl(pipes[0], F_SETFL, fcntl(pipes[0], F_GETFL) | O_NONBLOCK);
    double end = herd_now() + timeout;
    bool timed_out = false;
    while (pipes[1] >= 0 || pipes[2] >= 0) {
        struct pollfd fds[3];
        int nf = 0, which[3];
        if (pipes[0] >= 0) { fds[nf] = (struct pollfd){ pipes[0], POLLOUT, 0 }; which[nf++] = 0; }
        for (int i = 1; i < 3; i++)
            if (pipes[i] >= 0) { fds[nf] = (struct pollfd){ pipes[i], POLLIN, 0 }; which[nf++] = i; }
        double left = end - herd_now();
        if (left <= 0) { timed_out = true; break; }
        int n = poll(fds, (nfds_t)nf, (int)(left * 1000) + 1);
        if (n < 0 && errno != EINTR) break;
        for (int k = 0; k < nf && n > 0; k++) {
            if (!fds[k].revents) continue;
            int i = which[k];
            if (i == 0) {
                /* SIGPIPE blocked around the write: a command that closed
                 * its stdin gives EPIPE here, not a signal to the process */
                sigset_t pipe_set, old;
                sigemptyset(&pipe_set);
                sigaddset(&pipe_set, SIGPIPE);
                pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
                ssize_t w = write(pipes[0], input + ioff, ilen - ioff);
                int werr = errno;
                if (w < 0 && werr == EPIPE) {
                    struct timespec zero = { 0, 0 };
                    sigtimedwait(&pipe_set, NULL, &zero);
                }
                pthread_sigmask(SIG_SETMASK, &old, NULL);
                if (w > 0) ioff += (size_t)w;
                if (w < 0 && werr != EAGAIN && werr != EINTR) ioff = ilen;   /* it closed stdin */
                if (ioff >= ilen) { close(pipes[0]); pipes[0] = -1; }
                continue;
            }
            char tmp[4096];
            ssize_t r = read(pipes[i], tmp, sizeof tmp);
            if (r <= 0) {
                if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
                close(pipes[i]);
                pipes[i] = -1;
                continue;
            }
            char *dst = i == 1 ? out : etxt;
            size_t dcap = i == 1 ? cap : sizeof etxt, *dl = i == 1 ? &olen : &elen;
            if (dst && *dl + 1 < dcap) {
                size_t c = (size_t)r < dcap - 1 - *dl ? (size_t)r : dcap - 1 - *dl;
                memcpy(dst + *dl, tmp, c);
                *dl += c;
                dst[*dl] = '\0';
            }
        }
    }
    for (int i = 0; i < 3; i++)
        if (pipes[i] >= 0) close(pipes[i]);
    herd_proc_exit ex;
    if (timed_out || herd_proc_wait(p, timed_out ? 0 : (end > herd_now() ? end - herd_now() : 0), &ex) != 1) {
        herd_proc_stop(&p, 1, 1.0, &ex);
        herd_proc_free(p);
        return herd_err_set(err, HERD_ETIMEOUT, "%s did not finish within %.0fs", argv[0], timeout);
    }
    herd_proc_free(p);
    if (ex.known && !ex.signal && ex.status == 0) return 0;
    char how[96];
    herd_proc_describe(&ex, how, sizeof how);
    one_line_msg(etxt);
    if (!etxt[0] && out) { snprintf(etxt, sizeof etxt, "%.590s", out); one_line_msg(etxt); }
    return herd_err_set(err, HERD_EPROVIDER, "%s %s: %s", argv[0], how, etxt[0] ? etxt : "(no output)");
}
