/* providers/ssh/ssh.h — what the SSHCluster files share, layer by layer
 * (a file calls only into the files listed before it, never back):
 *   proc.c     the system OpenSSH client as child processes (a monitor
 *              thread for sessions, ssh_run for short commands)
 *   remote.c   what is said to the remote side: the wrapper script, shell
 *              quoting, ssh's own options, the sha256 checked upload
 *   options.c  the cluster_kwargs schema, read into ssh_settings
 *   listen.c   where the in-process scheduler listens; hosts' addresses
 *   session.c  one ssh session running workers: its start, its lines, its end
 *   workers.c  placing, uploading, starting (scale) and stopping workers
 *   sched.c    the scheduler on scheduler_host
 *   ssh.c      the hub: the cluster's life (create, close), the hooks and
 *              the provider descriptor */
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

/* ---- the cluster (options.c reads the settings; the rest is run-time) ---- */

#define STOP_GRACE_S 4.5        /* the wrapper sends SIGTERM, then SIGKILL 3 s later */
#define WORKER_EXIT_REFUSED 3   /* a worker's exit status when the scheduler refused it */
#define SCHED_AT "herd-scheduler-at "

typedef struct shost {
    /* from the settings */
    char spec[256];            /* as given */
    char host[256];            /* what ssh is given */
    char user[128];
    int port;
    /* run-time */
    char dial[128];            /* host workers dial back to; "": the scheduler's address as is */
    int live;                  /* workers starting or running */
    bool dead;                 /* could not start a worker: no new ones here */
    bool prepared;             /* upload done */
    char why[400];             /* why it is dead */
    char prog[4096];           /* the worker program there */
    char plugin_dir[4096];     /* uploaded plugins, or "" */
} shost;

/* cluster_kwargs, checked, as C values (ssh_settings_read). Owned by the
 * settings; freed with ssh_settings_free. */
typedef struct ssh_settings {
    ssh_opts so;               /* connect_options */
    shost *hosts;              /* hosts, parsed; their run-time fields start zeroed */
    size_t nh;
    bool has_sched;            /* scheduler_host given: */
    shost sched_host;          /* … parsed */
    int n_workers, nthreads;
    int64_t memory_limit;      /* bytes, 0: none */
    herd_value *resources;     /* map */
    char **extra_env;          /* "KEY=VALUE" from env, NULL-terminated */
    char *remote_command, *upload_dir, *listen;   /* listen: listen_address or NULL */
    char **upload_files;       /* NULL-terminated */
    bool upload;
    double start_timeout;
    char prefix[48];           /* worker names: <prefix>-<n> */
} ssh_settings;

typedef struct ssess ssess;

/* The scheduler, when scheduler_host runs it: one ssh session of its own
 * under the same wrapper as workers (its index there is 0). */
typedef struct ssched {
    shost h;
    char dial[128];            /* the host the client and workers dial */
    ssh_child ch;
    bool spawned, ended, eof, rexit_known;
    int rexit;
    long rpid;
    char addr[300];            /* what it printed: herd-scheduler-at ADDRESS */
    char error[300];           /* the wrapper's complaint */
    char lasterr[300];         /* its last stderr line */
} ssched;

typedef struct sworker {
    char name[64];
    herd_cluster *c;
    shost *h;
    ssess *s;                  /* its ssh session, once placed in one */
    int idx;                   /* its number in that session */
    int state;                 /* HERD_WORKER_* */
    bool busy;                 /* a retire is stopping it */
    bool expected;             /* we are stopping it */
    bool spawned, ended, started, rexit_known, counted;
    int rexit;
    long rpid;                 /* the worker's pid on its host */
    char detail[160];
} sworker;

/* One ssh session running some workers of one host. */
struct ssess {
    herd_cluster *c;
    shost *h;
    sworker **w;
    size_t nw;
    bool spawned, ended;
    bool unfed;                /* started before the scheduler's address was known: its
                                  environment (and SSH_GO) is still to be written */
    bool eof;                  /* its stdin was closed: every worker stops */
    char error[200];           /* the wrapper's own complaint */
    char refusal[200];         /* a worker's "refused this worker: …" stderr line */
    ssh_child ch;
    ssess *next;
};

/* One mutex guards the run-time state; the monitor thread's callbacks take
 * it. */
struct herd_cluster {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_mutex_t scale_mu;  /* one start/scale_up at a time */
    const herd_cluster_env *env;
    ssh_settings set;
    unsigned long next_id;
    sworker **w;
    size_t nw, capw;
    ssess *sess;               /* every session ever started */
    ssched *sched;             /* scheduler_host, or NULL */
    ssh_mon *mon;
    int scaling;               /* start/scale_up calls in flight */
    bool closing;
};

/* ---- options.c ---- */
extern const herd_param ssh_params[];
/* Read the validated cluster_kwargs (defaults filled in) into s, checking
 * what the schema cannot; the one place that reads them. On failure s holds
 * what was read so far: free it with ssh_settings_free either way. */
int  ssh_settings_read(ssh_settings *s, const herd_value *kw, herd_err *err);
void ssh_settings_free(ssh_settings *s);

/* ---- listen.c ---- */
/* The scheduler_listen hook: each host's route back to this machine. */
int  ssh_scheduler_listen(herd_cluster *c, char *out, size_t cap, herd_err *err);
/* The address the client dials h by: what ssh resolves its name to
 * (~/.ssh/config's HostName included), else the name itself. */
void ssh_dial_name(herd_cluster *c, shost *h, char *out, size_t cap);

/* ---- session.c (c->mu as each says) ---- */
/* A herd log line of a remote process passed on, under who's name. */
void ssh_relay(herd_cluster *c, const char *who, const char *line);
/* "ssh exited with status 255" / "ssh killed by signal 9 (Killed)" */
void ssh_exit_text(const herd_proc_exit *ex, char *buf, size_t cap);
/* A new session for the workers of batch[from..k) that go to host h (up to
 * SSH_SESSION_MAX, not yet in a session). c->mu held. NULL: no memory. */
ssess *ssh_session_new(herd_cluster *c, shost *h, sworker **batch, size_t from, size_t k);
/* Start s's ssh (one login for all its workers); no lock held. feed: write
 * the environment now; else the session waits for ssh_session_feed (the
 * login overlaps the scheduler's start). On failure its workers are failed
 * with the reason. */
int  ssh_session_spawn(herd_cluster *c, ssess *s, bool feed, herd_err *err);
/* Write s's environment (it ends with SSH_GO): the wrapper starts the
 * workers. No lock held. */
void ssh_session_feed(herd_cluster *c, ssess *s);

/* ---- workers.c ---- */
/* Start n workers (c->scale_mu and c->mu taken inside). */
int  ssh_scale(herd_cluster *c, int n, herd_err *err);
/* Place the initial workers and open their sessions before the scheduler's
 * address is known (start's ssh_scale adopts them). */
void ssh_prewarm(herd_cluster *c);
/* Stop ws[0..n) for certain; no lock held. */
void ssh_stop_workers(herd_cluster *c, sworker **ws, size_t n);
/* Upload to one host (synchronously): 0, or -errno with msg. */
int  ssh_prepare_host(herd_cluster *c, shost *h, char *msg, size_t cap);

/* ---- sched.c ---- */
/* The start_scheduler hook. */
int  ssh_start_scheduler(herd_cluster *c, char *out, size_t cap, herd_err *err);
/* After the workers: stop the scheduler for certain. */
void ssh_stop_scheduler(herd_cluster *c);

#endif
