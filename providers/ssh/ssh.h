/* providers/ssh/ssh.h — what the SSHCluster files share: running the system
 * OpenSSH client as child processes (proc.c) and what is said to the remote
 * side — the wrapper script, shell quoting, ssh's own options and the sha256
 * checked upload (remote.c). ssh.c holds the provider's hooks. */
#ifndef HERD_SSH_H
#define HERD_SSH_H

#include <herd/provider.h>

#include <stdbool.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- long-running children (one ssh session per host and batch of
 * workers), watched by one thread ---- */

/* A child's stdout lines and end are reported through these callbacks, from
 * the monitor thread, with no lock of the monitor held. on_exit comes once,
 * after the child is reaped; ex says how it ended, tail is the last stderr
 * text (may be empty). */
typedef struct ssh_child {
    herd_proc *proc;                   /* owned: free after on_exit */
    int in;                            /* write end of its stdin, or -1 */
    void (*on_line)(void *ud, const char *line, bool is_stderr);
    void (*on_exit)(void *ud, const herd_proc_exit *ex, const char *tail);
    void *ud;
    /* the monitor's own */
    int out, err;
    char obuf[1024], ebuf[1024];
    size_t olen, elen;
    char tail[320];
    double exited_at;                  /* reaped-but-pipes-open grace */
    herd_proc_exit status;
    bool reaped;
    struct ssh_child *next;
} ssh_child;

typedef struct ssh_mon ssh_mon;
int  ssh_mon_new(ssh_mon **out, herd_err *err);
/* Start argv[0] (searched in PATH) with stdin, stdout and stderr on pipes,
 * forked by the monitor's spawner thread (its children die with the
 * cluster, even when the client is killed). input (len bytes) is written to
 * its stdin, which stays open (ch->in) until the caller closes it. Returns 0
 * once exec succeeded, else -errno with the reason in msg. */
int  ssh_mon_spawn(ssh_mon *m, char *const argv[], const char *input, size_t len,
                   ssh_child *ch, char *msg, size_t cap);
/* Write a line (control message) to a child's stdin; SIGPIPE is not raised.
 * 0 or -errno (-EPIPE: its stdin is closed). */
int  ssh_child_send(ssh_child *ch, const char *line);
/* Stop the thread and the spawner. Every child must have been reaped
 * (on_exit called). */
void ssh_mon_free(ssh_mon *m);

/* Run argv to completion: stdin from in_fd (or input, or nothing), stdout
 * into out (NUL-terminated, truncated to cap), the tail of stderr into tail.
 * Killed (SIGKILL) after timeout seconds. *status says how it ended.
 * 0, or -errno when it could not run / -ETIMEDOUT. */
int  ssh_run(char *const argv[], int in_fd, const char *input, char *out, size_t cap,
             char *tail, size_t tcap, double timeout, herd_proc_exit *status);
/* ssh_run returned rc and it exited with status 0. */
bool ssh_run_ok(int rc, const herd_proc_exit *status);

/* ---- the remote side ---- */

typedef struct ssh_opts {             /* connect_options, checked */
    const char *program;               /* "ssh" */
    const char *user, *identity_file, *known_hosts, *strict, *config_file;
    int port;                          /* 0: ssh's default */
    double connect_timeout;
    char **extra;                      /* "-o" values, NULL-terminated */
} ssh_opts;

/* Append s to *buf as one shell word in single quotes. */
int  ssh_quote(char **buf, size_t *len, size_t *cap, const char *s);
/* The ssh argv for host (with user/port overrides from the host entry,
 * 0/NULL: none) running remote_cmd. Free with herd_strv_free. */
char **ssh_argv(const ssh_opts *o, const char *host, const char *user, int port,
                const char *remote_cmd);
/* The command line that runs n workers (argvs[i], each NULL-terminated)
 * remotely under the wrapper: it reads "export K='v'" lines from stdin up to
 * SSH_GO, checks argvs[0][0] exists, starts every worker and prints
 * "herd-ssh-pid I PID" for each (I: its index in argvs); then "stop I" on
 * stdin stops worker I (SIGTERM, SIGKILL 3 s later), the end of stdin (the
 * session or the client went away, or a close) stops them all, and
 * "herd-ssh-exit I STATUS" comes when worker I ends. The argvs travel on the
 * command line: keep n modest (SSH_SESSION_MAX). */
char *ssh_wrapper_cmd(char **const argvs[], size_t n);
#define SSH_SESSION_MAX 32
#define SSH_GO "herd-ssh-go"
/* Append "export KEY='value'\n" for "KEY=value". -EINVAL for a bad name. */
int  ssh_env_line(char **buf, size_t *len, size_t *cap, const char *kv);
/* Append what the wrapper checks the program's --herd-version against
 * (this client's herd version and protocol). */
int  ssh_expect_lines(char **buf, size_t *len, size_t *cap);

/* Upload: make dir/<name> on the host equal to each local file (sha256
 * compared; only differing files are copied, through a temporary name and
 * rename, mode 0755). names[i] is the remote path relative to dir. The
 * counts of copied and skipped files come back; msg says what failed. */
int  ssh_upload(const ssh_opts *o, const char *host, const char *user, int port,
                const char *dir, const char *const *local, const char *const *names, size_t n,
                int *copied, int *skipped, const herd_cluster_env *env, char *msg, size_t cap);
/* sha256 of a local file as 64 hex digits. */
int  ssh_sha256_file(const char *path, char hex[65]);

#endif
