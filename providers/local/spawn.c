/* providers/local/spawn.c — starting worker processes: one long-lived thread
 * per cluster forks them (so PR_SET_PDEATHSIG, which follows the forking
 * thread, lasts as long as the cluster), and the child runs only
 * async-signal-safe calls between fork and exec. An O_CLOEXEC pipe carries
 * exec's errno back, so a bad command is an error of scale_up, not a worker
 * that silently exits 127. */
#include "local.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

struct local_spawner {
    pthread_mutex_t mu;          /* one request at a time */
    pthread_mutex_t qmu;         /* guards the fields below */
    pthread_cond_t cv;
    pthread_t thread;
    bool quit, pending, done;
    char *const *argv, *const *envp;
    pid_t pid;
    int rc;
    char msg[256];
};

/* Between fork and exec: async-signal-safe calls only. */
static void child(char *const argv[], char *const envp[], pid_t parent, int devnull, int errfd)
{
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);            /* the spawner thread blocks all */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    int sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGCHLD };
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) sigaction(sigs[i], &dfl, NULL);
    setpgid(0, 0);                                    /* retire/close signal the whole group */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) {
        int e = ECHILD;
        if (write(errfd, &e, sizeof e) < 0) { /* nothing more to do */ }
        _exit(127);
    }
    if (devnull >= 0) dup2(devnull, 0);
    /* descriptors the parent forgot to mark close-on-exec (errfd is) */
    if (errfd > 3) close_range(3, (unsigned)errfd - 1, 0);
    close_range((unsigned)errfd + 1, ~0u, 0);
    execve(argv[0], argv, envp);
    int e = errno;
    if (write(errfd, &e, sizeof e) < 0) { /* nothing more to do */ }
    _exit(127);
}

static void run(local_spawner *s)
{
    s->pid = 0;
    s->msg[0] = '\0';
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) != 0) {
        s->rc = -errno;
        snprintf(s->msg, sizeof s->msg, "pipe: %s", strerror(errno));
        return;
    }
    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) child(s->argv, s->envp, parent, devnull, pfd[1]);
    int fe = errno;
    close(pfd[1]);
    if (devnull >= 0) close(devnull);
    if (pid < 0) {
        close(pfd[0]);
        s->rc = -fe;
        snprintf(s->msg, sizeof s->msg, "fork: %s", strerror(fe));
        return;
    }
    int e = 0;
    ssize_t n;
    while ((n = read(pfd[0], &e, sizeof e)) < 0 && errno == EINTR) {}
    close(pfd[0]);
    if (n == (ssize_t)sizeof e) {   /* exec failed: reap the child, report why */
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
        s->rc = -e;
        snprintf(s->msg, sizeof s->msg, "cannot run %s: %s", s->argv[0], strerror(e));
        return;
    }
    s->pid = pid;
    s->rc = 0;
}

static void *loop(void *arg)
{
    local_spawner *s = arg;
    pthread_mutex_lock(&s->qmu);
    for (;;) {
        while (!s->pending && !s->quit) pthread_cond_wait(&s->cv, &s->qmu);
        if (s->quit) break;
        pthread_mutex_unlock(&s->qmu);
        run(s);
        pthread_mutex_lock(&s->qmu);
        s->pending = false;
        s->done = true;
        pthread_cond_broadcast(&s->cv);
    }
    pthread_mutex_unlock(&s->qmu);
    return NULL;
}

int local_spawner_new(local_spawner **out)
{
    local_spawner *s = calloc(1, sizeof *s);
    if (!s) return -ENOMEM;
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->qmu, NULL);
    pthread_cond_init(&s->cv, NULL);
    /* the thread blocks every signal: process-directed signals go elsewhere */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&s->thread, NULL, loop, s);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc) {
        pthread_cond_destroy(&s->cv);
        pthread_mutex_destroy(&s->qmu);
        pthread_mutex_destroy(&s->mu);
        free(s);
        return -rc;
    }
    *out = s;
    return 0;
}

int local_spawn(local_spawner *s, char *const argv[], char *const envp[], pid_t *pid,
                char *msg, size_t cap)
{
    pthread_mutex_lock(&s->mu);
    pthread_mutex_lock(&s->qmu);
    s->argv = argv;
    s->envp = envp;
    s->done = false;
    s->pending = true;
    pthread_cond_broadcast(&s->cv);
    while (!s->done) pthread_cond_wait(&s->cv, &s->qmu);
    int rc = s->rc;
    *pid = s->pid;
    if (msg && cap) snprintf(msg, cap, "%s", s->msg);
    pthread_mutex_unlock(&s->qmu);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

void local_spawner_free(local_spawner *s)
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
