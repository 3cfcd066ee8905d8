/* tests/integration/test_cluster.c — long-running clusters, as separate
 * processes on 127.0.0.1: `herd scheduler` (its address read from the first
 * line of its stdout, --port 0), `herd worker`s loading the hash and shell
 * plugins, this binary re-executed as a long-lived worker of its own tasks
 * (--herd-worker --herd-address … --herd-reconnect), and task runners given
 * `address` — in this process and in child flow processes (this binary again,
 * with --h9-flow) that share the scheduler at the same time.
 *
 * Covered: flows on an existing cluster never create or close it; address
 * excludes cluster_class/cluster_kwargs/adapt_kwargs; flows from separate
 * processes get only their own results; a client dying mid-flow neither
 * disturbs another flow nor keeps its tasks (the scheduler releases them and
 * their slots); quick tasks run on an idle worker rather than queue behind
 * long-running ones on a busy one; wrong tokens are refused (client,
 * `herd worker`, own worker); workers reconnect by themselves when the
 * scheduler restarts on the same port; the loopback/token rule; command-line
 * errors.
 *
 * Every process a test starts is in `procs` and is killed and reaped by the
 * per-test teardown, whatever happened (and dies with this process through
 * PR_SET_PDEATHSIG). Assertions are about order, state and messages: tasks
 * that must overlap meet through marker files, and "long-running" tasks run
 * until the test releases them; the clock only bounds waits (WAIT_S,
 * STALL_S). On a failure the test's process logs are printed. */
#include <herd/herd.h>

#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <sys/prctl.h>

#include "../support/testutil.h"

extern char **environ;

#define WAIT_S 20.0
#define TOKEN  "h9-cluster-secret"
#define SHA_ABC   "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define SHA_EMPTY "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static char herd_bin[PATH_MAX], self_exe[PATH_MAX];
static char dir[64];                 /* the current test's scratch directory */
static pid_t procs[32];              /* processes the current test started, not yet reaped */
static int nprocs;
static bool unfinished;              /* the test body did not reach its end: dump the logs */

/* ---- small helpers ---- */

static char *in_dir(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "%s/%s", dir, name);
    return buf;
}

static bool path_exists(const char *p) { return access(p, F_OK) == 0; }

/* Wait (bounded) for a file to exist. */
static bool wait_path(const char *p, double timeout_s)
{
    double end = tu_now() + timeout_s;
    while (!path_exists(p)) {
        if (tu_now() > end) return false;
        tu_sleep_ms(5);
    }
    return true;
}

static int touch(const char *p)
{
    int fd = open(p, O_WRONLY | O_CREAT, 0600);
    if (fd < 0) return -errno;
    close(fd);
    return 0;
}

/* How many lines of the file contain w1 (and w2 unless NULL)? */
static int count_lines(const char *path, const char *w1, const char *w2)
{
    char *s = tu_read_file(path);
    int n = 0;
    for (char *p = s, *e; p && *p; p = e ? e + 1 : p + strlen(p)) {
        e = strchr(p, '\n');
        if (e) *e = '\0';
        n += strstr(p, w1) && (!w2 || strstr(p, w2));
    }
    free(s);
    return n;
}

static bool file_has_line(const char *path, const char *w1, const char *w2)
{
    return count_lines(path, w1, w2) > 0;
}

static bool wait_line(const char *path, const char *w1, const char *w2, double timeout_s)
{
    double end = tu_now() + timeout_s;
    while (!file_has_line(path, w1, w2)) {
        if (tu_now() > end) return false;
        tu_sleep_ms(10);
    }
    return true;
}

/* ---- processes ---- */

static void forget_pid(pid_t pid)
{
    for (int i = 0; i < nprocs; i++)
        if (procs[i] == pid) { procs[i] = procs[--nprocs]; return; }
}

/* Still running? Reaps (and forgets) it when it has exited. */
static bool alive(pid_t pid)
{
    int st;
    pid_t w = waitpid(pid, &st, WNOHANG);
    if (w == 0) return true;
    if (w == pid) forget_pid(pid);
    return false;
}

/* Wait (bounded) for pid to exit: its exit status, or 128 + the signal. */
static int wait_exit(pid_t pid, double timeout_s)
{
    double end = tu_now() + timeout_s;
    for (;;) {
        int st;
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid) {
            forget_pid(pid);
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        if (w < 0 && errno != EINTR) fail_msg("waitpid(%ld): %s", (long)pid, strerror(errno));
        if (tu_now() > end) fail_msg("process %ld did not exit within %.0fs", (long)pid, timeout_s);
        tu_sleep_ms(5);
    }
}

static int stop(pid_t pid, int sig)
{
    kill(pid, sig);
    return wait_exit(pid, WAIT_S);
}

/* The environment of the tests (HERD_TOKEN etc. removed in main) plus up to
 * two "NAME=value" entries; free the array, not the strings. */
static char **env_plus(const char *e1, const char *e2)
{
    size_t n = 0;
    while (environ[n]) n++;
    char **v = calloc(n + 3, sizeof *v);
    if (!v) fail_msg("out of memory");
    size_t k = 0;
    for (size_t i = 0; i < n; i++) v[k++] = environ[i];
    if (e1) v[k++] = (char *)e1;
    if (e2) v[k++] = (char *)e2;
    v[k] = NULL;
    return v;
}

/* Start argv with stdout and stderr in <dir>/<tag>.out and .err. */
static pid_t spawn(const char *tag, const char *const *argv, char **envp)
{
    char out[512], errp[512], name[128];
    snprintf(name, sizeof name, "%s.out", tag);
    in_dir(out, sizeof out, name);
    snprintf(name, sizeof name, "%s.err", tag);
    in_dir(errp, sizeof errp, name);
    if (nprocs == (int)(sizeof procs / sizeof *procs)) fail_msg("too many processes");
    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) fail_msg("fork: %s", strerror(errno));
    if (pid == 0) {                  /* only async-signal-safe calls until execve */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(127);
        int in = open("/dev/null", O_RDONLY);
        int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int e = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (in < 0 || o < 0 || e < 0) _exit(127);
        dup2(in, 0);
        dup2(o, 1);
        dup2(e, 2);
        execve(argv[0], (char *const *)argv, envp ? envp : environ);
        _exit(127);
    }
    procs[nprocs++] = pid;
    return pid;
}

/* The number of live processes whose parent is this one. */
static int count_children(void)
{
    DIR *d = opendir("/proc");
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        char p[300];
        snprintf(p, sizeof p, "/proc/%s/stat", e->d_name);
        char *s = tu_read_file(p);
        const char *rp = s ? strrchr(s, ')') : NULL;
        char st;
        long ppid;
        if (rp && sscanf(rp + 1, " %c %ld", &st, &ppid) == 2 && ppid == (long)getpid() && st != 'Z') n++;
        free(s);
    }
    if (d) closedir(d);
    return n;
}

/* Is some socket listening on 0.0.0.0:port (read from /proc/net/tcp: no
 * traffic is sent)? */
static bool listening_on_any(long port)
{
    FILE *f = fopen("/proc/net/tcp", "r");
    char line[512], want[32];
    bool found = false;
    snprintf(want, sizeof want, "00000000:%04lX", port);
    while (f && !found && fgets(line, sizeof line, f)) {
        char local[64], remote[64], st[8];
        if (sscanf(line, " %*d: %63s %63s %7s", local, remote, st) == 3 && !strcmp(local, want) && !strcmp(st, "0A"))
            found = true;
    }
    if (f) fclose(f);
    return found;
}

/* ---- the cluster's processes ---- */

typedef struct sched {
    pid_t pid;
    char addr[128];
    long port;
    char log[512], pidf[512];
} sched;

/* Start `herd scheduler --log-file … --pid-file … <extra>` and read the
 * address it prints. false (the process reaped) if it exits before that. */
static bool sched_try_start(sched *s, const char *tag, const char *const *extra)
{
    char name[128], out[512];
    snprintf(name, sizeof name, "%s.log", tag);
    in_dir(s->log, sizeof s->log, name);
    snprintf(name, sizeof name, "%s.pid", tag);
    in_dir(s->pidf, sizeof s->pidf, name);
    const char *argv[24] = { herd_bin, "scheduler", "--log-file", s->log, "--pid-file", s->pidf };
    size_t k = 6;
    for (size_t i = 0; extra && extra[i] && k < 23; i++) argv[k++] = extra[i];
    argv[k] = NULL;
    s->pid = spawn(tag, argv, NULL);
    snprintf(name, sizeof name, "%s.out", tag);
    in_dir(out, sizeof out, name);
    double end = tu_now() + WAIT_S;
    for (;;) {
        char *text = tu_read_file(out);
        char *nl = text ? strchr(text, '\n') : NULL;
        if (nl) {
            *nl = '\0';
            snprintf(s->addr, sizeof s->addr, "%s", text);
            free(text);
            const char *colon = strrchr(s->addr, ':');
            s->port = colon ? strtol(colon + 1, NULL, 10) : 0;
            if (strncmp(s->addr, "unix://", 7) != 0 && (strncmp(s->addr, "tcp://", 6) != 0 || s->port <= 0))
                fail_msg("%s: expected tcp://HOST:PORT or unix://PATH as its first line, got \"%s\"", tag, s->addr);
            return true;
        }
        free(text);
        if (!alive(s->pid)) return false;
        if (tu_now() > end) fail_msg("%s printed no address within %.0fs", tag, WAIT_S);
        tu_sleep_ms(5);
    }
}

static void sched_start(sched *s, const char *tag, const char *const *extra)
{
    if (!sched_try_start(s, tag, extra)) fail_msg("%s exited before printing its address", tag);
}

/* `herd worker ADDR --name NAME --nthreads 2 --plugin hash --plugin shell
 * --token TOKEN [--resources RES]` */
static pid_t herd_worker(const char *addr, const char *name, const char *res)
{
    const char *argv[20] = { herd_bin, "worker", addr, "--name", name, "--nthreads", "2", "--plugin", "hash",
                             "--plugin", "shell", "--token", TOKEN };
    size_t k = 13;
    if (res) { argv[k++] = "--resources"; argv[k++] = res; }
    argv[k] = NULL;
    return spawn(name, argv, NULL);
}

/* This binary as a long-lived worker of its own tasks (and plugins'). */
static pid_t own_worker(const char *addr, const char *name, const char *res, const char *token)
{
    char tok[128];
    snprintf(tok, sizeof tok, "HERD_TOKEN=%s", token);
    const char *argv[20] = { self_exe, "--herd-worker", "--herd-address", addr, "--herd-name", name,
                             "--herd-nthreads", "4", "--herd-reconnect" };
    size_t k = 9;
    if (res) { argv[k++] = "--herd-resources"; argv[k++] = res; }
    argv[k] = NULL;
    char **env = env_plus(tok, NULL);
    pid_t pid = spawn(name, argv, env);
    free(env);
    return pid;
}

/* This binary as a separate flow process (see flow_main). */
static pid_t flow_proc(const char *mode, const char *addr)
{
    char tag[32];
    snprintf(tag, sizeof tag, "flow-%s", mode);
    const char *argv[] = { self_exe, "--h9-flow", mode, addr, dir, NULL };
    return spawn(tag, argv, NULL);
}

/* A runner on addr with client_kwargs {token}, flow begun, nworkers there. */
static herd_runner *connect_flow(const char *addr, const char *token, const char *flow, int nworkers)
{
    char ck[256];
    snprintf(ck, sizeof ck, "{token: %s, connect_timeout: %g}", token, WAIT_S);
    herd_runner_opts o = { .address = addr, .client_kwargs = ck, .log = tu_quiet_sink };
    herd_runner *r = NULL;
    herd_err err = { 0 };
    if (herd_runner_new(&r, &o, &err)) fail_msg("herd_runner_new(address %s): %s", addr, err.msg);
    if (herd_flow_begin(r, flow, &err)) { herd_runner_free(r); fail_msg("herd_flow_begin(%s): %s", flow, err.msg); }
    if (herd_wait_for_workers(r, nworkers, WAIT_S, &err)) {
        herd_runner_free(r);
        fail_msg("herd_wait_for_workers(%d) on %s: %s", nworkers, addr, err.msg);
    }
    return r;
}

static const herd_value *result_of(herd_future *f)
{
    const herd_value *v = NULL;
    herd_err err = { 0 };
    if (herd_future_result(f, WAIT_S, &v, &err)) fail_msg("%s: %s", herd_future_name(f), err.msg);
    return v;
}

static const char *str_result(herd_future *f)
{
    const herd_value *v = result_of(f);
    if (herd_typeof(v) != HERD_STR) fail_msg("%s: expected a str result, got %s", herd_future_name(f),
                                             herd_type_name(herd_typeof(v)));
    return herd_as_str(v);
}

/* ---- tasks (they run in this binary's worker processes) ---- */

/* (tag, i, mark, wait) -> [tag, i]. mark (a path or nil) is created first;
 * then, when wait is a path, it waits (bounded) until that exists. */
static int t_tagged(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    const char *tag = herd_as_str(herd_at(args, 0)), *mark = herd_as_str(herd_at(args, 2)),
               *wait = herd_as_str(herd_at(args, 3));
    if (!tag || herd_typeof(herd_at(args, 1)) != HERD_INT) return herd_task_fail(ctx, "t_tagged: expected (tag, i, mark, wait)");
    if (mark && touch(mark)) return herd_task_fail(ctx, "t_tagged: cannot create %s", mark);
    if (wait && !wait_path(wait, WAIT_S)) return herd_task_fail(ctx, "t_tagged: %s did not appear", wait);
    *out = herd_tuple("sI", tag, herd_as_int(herd_at(args, 1)));
    return 0;
}
HERD_TASK(t_tagged);

/* (dir, i): creates dir/held-i, then holds its thread until dir/release
 * exists (bounded), then creates dir/held-done-i. */
static int t_hold(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    const char *d = herd_as_str(herd_at(args, 0));
    long long i = (long long)herd_as_int(herd_at(args, 1));
    char p[512];
    snprintf(p, sizeof p, "%s/held-%lld", d, i);
    if (touch(p)) return herd_task_fail(ctx, "t_hold: cannot create %s", p);
    snprintf(p, sizeof p, "%s/release", d);
    bool released = wait_path(p, WAIT_S);
    snprintf(p, sizeof p, "%s/held-done-%lld", d, i);
    touch(p);
    if (!released) return herd_task_fail(ctx, "t_hold: %s/release did not appear", d);
    *out = herd_int(i);
    return 0;
}
HERD_TASK(t_hold);

/* (dir, group, i, n): creates dir/slot-group-i, then waits (bounded) until
 * dir/slot-group-0 … slot-group-(n-1) all exist — n of them running at once.
 * Returns i. */
static int t_rendezvous(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    const char *d = herd_as_str(herd_at(args, 0)), *g = herd_as_str(herd_at(args, 1));
    int64_t i = herd_as_int(herd_at(args, 2)), n = herd_as_int(herd_at(args, 3));
    char p[512];
    snprintf(p, sizeof p, "%s/slot-%s-%lld", d, g, (long long)i);
    if (touch(p)) return herd_task_fail(ctx, "t_rendezvous: cannot create %s", p);
    for (int64_t j = 0; j < n; j++) {
        snprintf(p, sizeof p, "%s/slot-%s-%lld", d, g, (long long)j);
        if (!wait_path(p, WAIT_S))
            return herd_task_fail(ctx, "t_rendezvous: %s task %lld never ran alongside task %lld", g, (long long)j, (long long)i);
    }
    *out = herd_int(i);
    return 0;
}
HERD_TASK(t_rendezvous);

/* ---- the child flow processes: this binary --h9-flow MODE ADDR DIR ----
 * A, B: 50 tasks tagged with the mode, whose first tasks meet (each waits
 *       for the other's), checking every result is its own.
 * C:    20 tasks holding a `slow` slot each; once one runs and D is running,
 *       it dies (_exit(1)) mid-flow.
 * D:    50 quick tasks: 25 submitted while C holds its slots (D goes on once
 *       the first has finished), 25 more after C is gone; all must be right. */
static void child_sink(void *ud, int level, const char *line)
{
    if (level >= HERD_LOG_WARN) fprintf(stderr, "[%s] %s\n", (const char *)ud, line);
}

static int check_tagged(herd_future **fs, int from, int to, const char *tag)
{
    for (int i = from; i < to; i++) {
        const herd_value *v = NULL;
        herd_err err = { 0 };
        if (herd_future_result(fs[i], WAIT_S, &v, &err)) {
            fprintf(stderr, "flow %s: task %d: %s\n", tag, i, err.msg);
            return 1;
        }
        if (herd_len(v) != 2 || !herd_as_str(herd_at(v, 0)) || strcmp(herd_as_str(herd_at(v, 0)), tag) != 0 ||
            herd_typeof(herd_at(v, 1)) != HERD_INT || herd_as_int(herd_at(v, 1)) != i) {
            char *s = herd_value_to_string(v);
            fprintf(stderr, "flow %s: task %d: expected [%s, %d], got %s\n", tag, i, tag, i, s ? s : "?");
            free(s);
            return 1;
        }
    }
    return 0;
}

static int submit_tagged(herd_runner *r, herd_future **fs, int from, int to, const char *tag,
                         const char *mark, const char *wait)
{
    for (int i = from; i < to; i++) {
        herd_err err = { 0 };
        if (herd_submit(r, "t_tagged", herd_tuple("sIss", tag, (int64_t)i, i == from ? mark : NULL,
                                                  i == from ? wait : NULL), &fs[i], &err)) {
            fprintf(stderr, "flow %s: submit %d: %s\n", tag, i, err.msg);
            return 1;
        }
    }
    return 0;
}

static int flow_main(const char *mode, const char *addr, const char *d)
{
    char flow[64], ck[128], p1[512], p2[512];
    snprintf(flow, sizeof flow, "h9-flow-%s", mode);
    snprintf(ck, sizeof ck, "{token: %s, connect_timeout: %g}", TOKEN, WAIT_S);
    herd_runner_opts o = { .address = addr, .client_kwargs = ck, .log = child_sink, .log_ud = flow };
    herd_runner *r = NULL;
    herd_err err = { 0 };
    if (herd_runner_new(&r, &o, &err) || herd_flow_begin(r, flow, &err) || herd_wait_for_workers(r, 2, WAIT_S, &err)) {
        fprintf(stderr, "flow %s: %s\n", mode, err.msg);
        herd_runner_free(r);
        return 1;
    }
    herd_future *fs[50] = { 0 };
    int rc = 0;
    if (!strcmp(mode, "A") || !strcmp(mode, "B")) {
        snprintf(p1, sizeof p1, "%s/started-%s", d, mode);
        snprintf(p2, sizeof p2, "%s/started-%s", d, !strcmp(mode, "A") ? "B" : "A");
        rc = submit_tagged(r, fs, 0, 50, mode, p1, p2) || check_tagged(fs, 0, 50, mode);
    } else if (!strcmp(mode, "C")) {
        herd_future *hs[20];
        for (int i = 0; i < 20; i++)
            if (herd_submit_annotated(r, "t_hold", herd_tuple("sI", d, (int64_t)i), "{resources: {slow: 1}}",
                                      &hs[i], &err)) {
                fprintf(stderr, "flow C: submit %d: %s\n", i, err.msg);
                _exit(2);
            }
        snprintf(p1, sizeof p1, "%s/held-0", d);
        if (!wait_path(p1, WAIT_S)) { fprintf(stderr, "flow C: its first task never ran\n"); _exit(2); }
        snprintf(p1, sizeof p1, "%s/c-ready", d);
        snprintf(p2, sizeof p2, "%s/d-running", d);
        if (touch(p1) || !wait_path(p2, WAIT_S)) { fprintf(stderr, "flow C: D never ran\n"); _exit(2); }
        _exit(1);                   /* abruptly, mid-flow: no herd_flow_end, nothing freed */
    } else if (!strcmp(mode, "D")) {
        snprintf(p1, sizeof p1, "%s/c-ready", d);
        if (!wait_path(p1, WAIT_S)) { fprintf(stderr, "flow D: C never got going\n"); rc = 1; }
        rc = rc || submit_tagged(r, fs, 0, 25, "D", NULL, NULL) || check_tagged(fs, 0, 1, "D");
        snprintf(p1, sizeof p1, "%s/d-running", d);
        snprintf(p2, sizeof p2, "%s/c-gone", d);
        if (!rc && (touch(p1) || !wait_path(p2, WAIT_S))) { fprintf(stderr, "flow D: C never went\n"); rc = 1; }
        rc = rc || submit_tagged(r, fs, 25, 50, "D", NULL, NULL) || check_tagged(fs, 0, 50, "D");
    } else {
        fprintf(stderr, "flow: unknown mode %s\n", mode);
        rc = 1;
    }
    for (int i = 0; i < 50; i++) herd_future_release(fs[i]);
    if (herd_flow_end(r, rc != 0, &err)) { fprintf(stderr, "flow %s: herd_flow_end: %s\n", mode, err.msg); rc = 1; }
    herd_runner_free(r);
    return rc;
}

/* ---- fixtures ---- */

static int setup(void **state)
{
    snprintf(dir, sizeof dir, "/tmp/herd-h9-XXXXXX");
    if (!mkdtemp(dir)) { fprintf(stderr, "mkdtemp: %s\n", strerror(errno)); return -1; }
    nprocs = 0;
    unfinished = true;
    return 0;
}

static void dump_logs(void)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n < 4 || (strcmp(e->d_name + n - 4, ".log") && strcmp(e->d_name + n - 4, ".err") &&
                      strcmp(e->d_name + n - 4, ".out")))
            continue;
        char p[512];
        char *s = tu_read_file(in_dir(p, sizeof p, e->d_name));
        if (s && *s) {
            size_t len = strlen(s);
            fprintf(stderr, "---- %s ----\n%s%s", e->d_name, len > 6000 ? s + len - 6000 : s,
                    s[len - 1] == '\n' ? "" : "\n");
        }
        free(s);
    }
    if (d) closedir(d);
}

static int teardown(void **state)
{
    for (int i = 0; i < nprocs; i++) kill(procs[i], SIGKILL);
    for (int i = 0; i < nprocs; i++) while (waitpid(procs[i], NULL, 0) < 0 && errno == EINTR) {}
    nprocs = 0;
    if (unfinished) dump_logs();
    tu_rmtree(dir);
    return 0;
}

/* ---- the tests ---- */

/* 1. `herd scheduler` + two `herd worker`s with plugins; a runner given
 * address runs 200 hashes and shell commands, GPU tasks only on the GPU
 * worker; the cluster outlives the flow, and serves the next one. */
static void test_cli_cluster_serves_flows(void **state)
{
    sched s;
    const char *ex[] = { "--port", "0", "--token", TOKEN, NULL };
    sched_start(&s, "sched", ex);
    char *pidtext = tu_read_file(s.pidf);
    assert_non_null(pidtext);
    assert_int_equal(atol(pidtext), s.pid);
    free(pidtext);
    assert_true(file_has_line(s.log, "listening at", "(token required)"));
    pid_t cpu = herd_worker(s.addr, "h9-cpu", NULL);
    pid_t gpu = herd_worker(s.addr, "h9-gpu", "GPU=1");

    for (int round = 0; round < 2; round++) {
        /* the same flow name twice in a row: a program running its flow again */
        herd_runner *r = connect_flow(s.addr, TOKEN, "h9-flow", 2);
        int nt = 0;
        assert_int_equal(herd_runner_workers(r, &nt), 2);
        assert_int_equal(nt, 4);
        assert_string_equal(herd_runner_address(r), s.addr);
        assert_int_equal(count_children(), 3);      /* the runner started no cluster of its own */

        int nh = round ? 20 : 200;
        herd_value *tuples = herd_array();
        for (int i = 0; i < nh; i++) herd_array_push(tuples, herd_tuple("s", i % 2 ? "abc" : ""));
        herd_future **hs = NULL;
        size_t n = 0;
        herd_err err = { 0 };
        if (herd_submit_map(r, "hash.sha256", tuples, &hs, &n, &err)) fail_msg("submit_map hash.sha256: %s", err.msg);
        assert_int_equal(n, nh);
        herd_future *g[8];
        for (int i = 0; i < 8; i++) g[i] = tu_submit(r, "shell.run", herd_tuple("s", "echo $PPID"), "{resources: {GPU: 1}}");
        herd_future *sh = tu_submit(r, "shell.run", herd_tuple("s", "echo hi; echo there >&2; exit 3"), NULL);
        /* a remote client's future goes through Running, as an in-process one does */
        herd_future *slow = tu_submit(r, "shell.run", herd_tuple("s", "sleep 0.4"), NULL);
        double until = tu_now() + WAIT_S;
        while (herd_future_state(slow) != HERD_RUNNING && !herd_state_is_final(herd_future_state(slow)) &&
               tu_now() < until)
            tu_sleep_ms(5);
        assert_int_equal(herd_future_state(slow), HERD_RUNNING);
        result_of(slow);
        assert_int_equal(herd_future_state(slow), HERD_COMPLETED);
        herd_future_release(slow);

        for (int i = 0; i < nh; i++) {
            assert_string_equal(str_result(hs[i]), i % 2 ? SHA_ABC : SHA_EMPTY);
            herd_future_release(hs[i]);
        }
        free(hs);
        char gpu_pid[32];
        snprintf(gpu_pid, sizeof gpu_pid, "%ld\n", (long)gpu);
        for (int i = 0; i < 8; i++) {
            const herd_value *v = result_of(g[i]);
            assert_int_equal(herd_as_int(herd_map_get(v, "exit_status")), 0);
            assert_string_equal(herd_as_str(herd_map_get(v, "stdout")), gpu_pid);  /* ran on h9-gpu */
            herd_future_release(g[i]);
        }
        const herd_value *v = result_of(sh);
        assert_int_equal(herd_as_int(herd_map_get(v, "exit_status")), 3);
        assert_string_equal(herd_as_str(herd_map_get(v, "stdout")), "hi\n");
        assert_string_equal(herd_as_str(herd_map_get(v, "stderr")), "there\n");
        herd_future_release(sh);

        if (herd_flow_end(r, false, &err)) fail_msg("herd_flow_end: %s", err.msg);
        herd_runner_free(r);
        /* the existing cluster is left running */
        assert_true(alive(s.pid));
        assert_true(alive(cpu));
        assert_true(alive(gpu));
    }
    /* both runs were clients of the scheduler, and both left it */
    char who[96];
    snprintf(who, sizeof who, "client h9-flow-%ld ", (long)getpid());
    assert_int_equal(count_lines(s.log, who, "connected from"), 2);
    double end = tu_now() + WAIT_S;
    while (count_lines(s.log, who, "left") < 2 && tu_now() < end) tu_sleep_ms(10);
    assert_int_equal(count_lines(s.log, who, "left"), 2);
    assert_true(file_has_line(s.log, "worker h9-cpu connected", NULL));
    assert_true(file_has_line(s.log, "worker h9-gpu connected", NULL));
    assert_false(file_has_line(s.log, "refused", NULL));
    assert_int_equal(stop(s.pid, SIGTERM), 0);
    assert_false(path_exists(s.pidf));               /* removed at exit */
    unfinished = false;
}

/* 2. address with cluster_class, cluster_kwargs or adapt_kwargs: a clear
 * error at herd_runner_new naming both. */
static void test_address_excludes_cluster_options(void **state)
{
    static const struct { herd_runner_opts o; const char *field; } cases[] = {
        { { .address = "tcp://127.0.0.1:8786", .cluster_class = "local.LocalCluster" }, "cluster_class" },
        { { .address = "tcp://127.0.0.1:8786", .cluster_kwargs = "{n_workers: 2}" }, "cluster_kwargs" },
        { { .address = "tcp://127.0.0.1:8786", .adapt_kwargs = "{minimum: 1, maximum: 4}" }, "adapt_kwargs" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        herd_runner *r = (herd_runner *)&r;
        herd_err err = { 0 };
        assert_int_equal(herd_runner_new(&r, &cases[i].o, &err), -HERD_EARG);
        assert_null(r);
        if (!strstr(err.msg, "address") || !strstr(err.msg, "tcp://127.0.0.1:8786") || !strstr(err.msg, cases[i].field))
            fail_msg("%s: expected a message naming address and %s, got \"%s\"", cases[i].field, cases[i].field, err.msg);
    }
    /* address alone is accepted, and nothing is started before a flow run */
    herd_runner_opts ok = { .address = "tcp://127.0.0.1:8786", .client_kwargs = "{token: x}" };
    herd_runner *r = NULL;
    herd_err err = { 0 };
    if (herd_runner_new(&r, &ok, &err)) fail_msg("address alone: %s", err.msg);
    assert_null(herd_runner_address(r));
    assert_int_equal(count_children(), 0);
    herd_runner_free(r);
    unfinished = false;
}

/* 3. Flows in separate processes share one scheduler; a client that dies
 * mid-flow disturbs no one and its tasks and slots are released. */
static void test_flows_share_scheduler(void **state)
{
    sched s;
    const char *ex[] = { "--port", "0", "--token", TOKEN, NULL };
    sched_start(&s, "sched", ex);
    own_worker(s.addr, "h9-own-1", "slow=4", TOKEN);      /* 4 threads, 4 `slow` slots */
    own_worker(s.addr, "h9-own-2", NULL, TOKEN);          /* 4 threads */
    assert_true(wait_line(s.log, "worker h9-own-1 connected", NULL, WAIT_S));
    assert_true(wait_line(s.log, "worker h9-own-2 connected", NULL, WAIT_S));

    /* two flows at once, each with its own results (their first tasks meet) */
    pid_t a = flow_proc("A", s.addr), b = flow_proc("B", s.addr);
    assert_int_equal(wait_exit(a, WAIT_S), 0);
    assert_int_equal(wait_exit(b, WAIT_S), 0);
    char p[512], line[128];
    assert_true(path_exists(in_dir(p, sizeof p, "started-A")));
    assert_true(path_exists(in_dir(p, sizeof p, "started-B")));

    /* C dies mid-flow while D's flow runs */
    pid_t c = flow_proc("C", s.addr), d = flow_proc("D", s.addr);
    assert_int_equal(wait_exit(c, WAIT_S), 1);
    snprintf(line, sizeof line, "client h9-flow-C-%ld left", (long)c);
    if (!wait_line(s.log, line, "releasing its tasks", WAIT_S)) fail_msg("no \"%s … releasing its tasks\" in the scheduler's log", line);
    /* only now may C's running tasks finish: its pending ones must be gone */
    assert_int_equal(touch(in_dir(p, sizeof p, "release")), 0);
    assert_int_equal(touch(in_dir(p, sizeof p, "c-gone")), 0);
    assert_int_equal(wait_exit(d, WAIT_S), 0);
    assert_true(alive(s.pid));

    /* C's running tasks have let go of their slots */
    for (int i = 0; i < 20; i++) {
        char name[32], done[512];
        snprintf(name, sizeof name, "held-%d", i);
        if (!path_exists(in_dir(p, sizeof p, name))) continue;
        snprintf(name, sizeof name, "held-done-%d", i);
        if (!wait_path(in_dir(done, sizeof done, name), WAIT_S)) fail_msg("C's task %d never finished", i);
    }

    /* a fresh flow gets all 4 `slow` slots at once, then all 8 threads at
     * once: what C held was given back */
    herd_runner *r = connect_flow(s.addr, TOKEN, "h9-fresh", 2);
    int nt = 0;
    assert_int_equal(herd_runner_workers(r, &nt), 2);
    assert_int_equal(nt, 8);
    herd_future *fs[8];
    for (int i = 0; i < 4; i++) fs[i] = tu_submit(r, "t_rendezvous", herd_tuple("ssii", dir, "slow", i, 4), "{resources: {slow: 1}}");
    for (int i = 0; i < 4; i++) {
        assert_int_equal(tu_int_result(fs[i]), i);
        herd_future_release(fs[i]);
    }
    for (int i = 0; i < 8; i++) fs[i] = tu_submit(r, "t_rendezvous", herd_tuple("ssii", dir, "all", i, 8), NULL);
    for (int i = 0; i < 8; i++) {
        assert_int_equal(tu_int_result(fs[i]), i);
        herd_future_release(fs[i]);
    }
    herd_err err = { 0 };
    if (herd_flow_end(r, false, &err)) fail_msg("herd_flow_end: %s", err.msg);
    herd_runner_free(r);
    /* of C's 20 tasks, only those already holding one of the 4 slots ever ran */
    int started = 0;
    for (int i = 0; i < 20; i++) {
        char name[32];
        snprintf(name, sizeof name, "held-%d", i);
        started += path_exists(in_dir(p, sizeof p, name));
    }
    if (started < 1 || started > 4) fail_msg("%d of C's tasks ran; expected 1..4 (the rest released with C)", started);
    assert_true(alive(s.pid));
    unfinished = false;
}

/* 3b. Quick tasks go to the idle worker, not behind long-running ones: with
 * one worker's threads all held by tasks that run until released, tasks
 * submitted now all finish on the other (idle) worker. (A scheduler that
 * prefetches onto the busy worker because past tasks were short leaves them
 * queued there until the long ones end.) */
#define STALL_S 8.0
static void test_quick_tasks_bypass_busy_worker(void **state)
{
    sched s;
    const char *ex[] = { "--port", "0", "--token", TOKEN, NULL };
    sched_start(&s, "sched", ex);
    own_worker(s.addr, "h9-busy", "slow=4", TOKEN);
    own_worker(s.addr, "h9-idle", NULL, TOKEN);
    herd_runner *r = connect_flow(s.addr, TOKEN, "h9-bypass", 2);
    herd_future *warm[40], *held[4], *quick[24];
    /* the scheduler learns that tasks here are short */
    for (int i = 0; i < 40; i++) warm[i] = tu_submit(r, "t_tagged", herd_tuple("sinn", "warm", i), NULL);
    herd_err err = { 0 };
    int wrc = herd_wait(warm, 40, WAIT_S, &err);
    for (int i = 0; i < 4; i++) held[i] = tu_submit(r, "t_hold", herd_tuple("si", dir, i), "{resources: {slow: 1}}");
    char p[512], name[32];
    bool all_held = true;
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "held-%d", i);
        all_held = all_held && wait_path(in_dir(p, sizeof p, name), WAIT_S);
    }
    for (int i = 0; i < 24; i++) quick[i] = tu_submit(r, "t_tagged", herd_tuple("sinn", "quick", i), NULL);
    int qrc = herd_wait(quick, 24, STALL_S, NULL);
    char stalled[256] = "";
    size_t sl = 0;
    for (int i = 0; i < 24 && sl < sizeof stalled - 8; i++)
        if (!herd_state_is_final(herd_future_state(quick[i])))
            sl += (size_t)snprintf(stalled + sl, sizeof stalled - sl, "%s%d", sl ? "," : "", i);
    touch(in_dir(p, sizeof p, "release"));
    /* every result right, whatever happened; then the verdict */
    int bad = 0;
    for (int i = 0; i < 40; i++) {
        const herd_value *v = NULL;
        bad += herd_future_result(warm[i], WAIT_S, &v, NULL) != 0 || herd_as_int(herd_at(v, 1)) != i;
        herd_future_release(warm[i]);
    }
    for (int i = 0; i < 24; i++) {
        const herd_value *v = NULL;
        bad += herd_future_result(quick[i], WAIT_S, &v, NULL) != 0 || herd_as_int(herd_at(v, 1)) != i;
        herd_future_release(quick[i]);
    }
    for (int i = 0; i < 4; i++) {
        const herd_value *v = NULL;
        bad += herd_future_result(held[i], WAIT_S, &v, NULL) != 0 || herd_as_int(v) != i;
        herd_future_release(held[i]);
    }
    int erc = herd_flow_end(r, false, &err);
    herd_runner_free(r);
    assert_int_equal(wrc, 0);
    assert_true(all_held);
    assert_int_equal(bad, 0);
    assert_int_equal(erc, 0);
    unfinished = false;
    if (qrc)
        fail_msg("quick tasks %s did not finish within %.0fs while h9-busy's 4 threads were held and h9-idle had "
                 "4 free: the scheduler queued them on h9-busy (prefetch) behind the long-running tasks",
                 stalled, STALL_S);
}

/* 4. A wrong token: clients and workers refused, the scheduler logs it. */
static void test_wrong_token_refused(void **state)
{
    sched s;
    const char *ex[] = { "--port", "0", "--token", TOKEN, NULL };
    sched_start(&s, "sched", ex);
    const char *tokens[] = { "{token: wrong, connect_timeout: 20}", "{connect_timeout: 20}" };
    for (int i = 0; i < 2; i++) {
        herd_runner_opts o = { .address = s.addr, .client_kwargs = tokens[i], .log = tu_quiet_sink };
        herd_runner *r = NULL;
        herd_err err = { 0 };
        if (herd_runner_new(&r, &o, &err)) fail_msg("herd_runner_new: %s", err.msg);
        assert_int_equal(herd_flow_begin(r, "h9-intruder", &err), -HERD_EAUTH);
        if (!strstr(err.msg, "refused")) fail_msg("%s: expected \"refused\" in \"%s\"", tokens[i], err.msg);
        assert_null(herd_runner_address(r));
        herd_runner_free(r);
    }
    /* refusal is final even for workers that reconnect */
    const char *argv[] = { herd_bin, "worker", s.addr, "--name", "h9-intruder", "--plugin", "hash", "--token", "wrong", NULL };
    pid_t w = spawn("bad-worker", argv, NULL);
    assert_int_equal(wait_exit(w, WAIT_S), 3);
    pid_t ow = own_worker(s.addr, "h9-own-intruder", NULL, "wrong");
    assert_int_equal(wait_exit(ow, WAIT_S), 3);
    assert_true(file_has_line(s.log, "refused connection", "wrong or missing token"));
    char p[512];
    assert_true(file_has_line(in_dir(p, sizeof p, "bad-worker.err"), "refused", NULL));
    /* the scheduler is unharmed, and the right token gets in */
    assert_true(alive(s.pid));
    herd_runner *r = connect_flow(s.addr, TOKEN, "h9-welcome", 0);
    assert_int_equal(herd_runner_workers(r, NULL), 0);
    herd_err err = { 0 };
    if (herd_flow_end(r, false, &err)) fail_msg("herd_flow_end: %s", err.msg);
    herd_runner_free(r);
    unfinished = false;
}

/* `herd scheduler --no-workers-timeout 1`: a flow's task that no worker
 * (there is none) can run ends Crashed, saying why; the scheduler serves on. */
static void test_cli_no_workers_timeout(void **state)
{
    sched s;
    const char *ex[] = { "--port", "0", "--token", TOKEN, "--no-workers-timeout", "1", NULL };
    sched_start(&s, "sched", ex);
    herd_runner *r = connect_flow(s.addr, TOKEN, "h9-no-workers", 0);
    herd_future *f = NULL;
    herd_err err = { 0 };
    if (herd_submit(r, "t_tagged", herd_tuple("sIss", "nw", (int64_t)0, NULL, NULL), &f, &err))
        fail_msg("herd_submit: %s", err.msg);
    const herd_value *v = NULL;
    assert_int_equal(herd_future_result(f, WAIT_S, &v, &err), -HERD_ECRASHED);
    const char *why = herd_future_error(f);
    if (!why || !strstr(why, "no_workers_timeout") || !strstr(why, "no workers")) fail_msg("reason: %s", why ? why : "(none)");
    assert_true(file_has_line(s.log, "end Crashed", "the cluster has no workers"));
    herd_future_release(f);
    if (herd_flow_end(r, false, &err)) fail_msg("herd_flow_end: %s", err.msg);
    herd_runner_free(r);
    assert_true(alive(s.pid));
    unfinished = false;
}

/* 5. The scheduler restarts on the same port; workers come back by themselves. */
static void test_workers_reconnect_after_restart(void **state)
{
    char tokf[512], p[512];
    in_dir(tokf, sizeof tokf, "token");
    assert_int_equal(tu_write_file(tokf, TOKEN "\n"), 0);
    sched s;
    const char *ex[] = { "--port", "0", "--token-file", tokf, NULL };
    sched_start(&s, "sched", ex);
    const char *hargv[] = { herd_bin, "worker", s.addr, "--name", "h9-r1", "--nthreads", "2", "--plugin", "hash",
                            "--token-file", tokf, NULL };
    pid_t w1 = spawn("h9-r1", hargv, NULL);
    pid_t w2 = own_worker(s.addr, "h9-r2", "own=4", TOKEN);

    for (int round = 0; round < 2; round++) {
        char flow[32];
        snprintf(flow, sizeof flow, "h9-round-%d", round);
        herd_runner *r = connect_flow(s.addr, TOKEN, flow, 2);
        herd_future *h = tu_submit(r, "hash.sha256", herd_tuple("s", "abc"), NULL);
        herd_future *t = tu_submit(r, "t_tagged", herd_tuple("sinn", flow, round), "{resources: {own: 1}}");
        assert_string_equal(str_result(h), SHA_ABC);
        const herd_value *v = result_of(t);
        assert_string_equal(herd_as_str(herd_at(v, 0)), flow);
        assert_int_equal(herd_as_int(herd_at(v, 1)), round);
        herd_future_release(h);
        herd_future_release(t);
        herd_err err = { 0 };
        if (herd_flow_end(r, false, &err)) fail_msg("herd_flow_end: %s", err.msg);
        herd_runner_free(r);
        /* the same worker processes as before */
        char line[96];
        snprintf(line, sizeof line, "worker h9-r1 connected (pid %ld,", (long)w1);
        assert_true(file_has_line(s.log, line, NULL));
        snprintf(line, sizeof line, "worker h9-r2 connected (pid %ld,", (long)w2);
        assert_true(file_has_line(s.log, line, NULL));
        if (round) break;

        /* stop it: SIGTERM, a clean exit, the pid file removed */
        assert_int_equal(stop(s.pid, SIGTERM), 0);
        assert_false(path_exists(s.pidf));
        assert_true(file_has_line(s.log, "shutting down", NULL));
        assert_true(alive(w1));
        assert_true(alive(w2));
        /* the same port again (retried while the old socket lingers) */
        char port[16];
        snprintf(port, sizeof port, "%ld", s.port);
        const char *ex2[] = { "--port", port, "--token-file", tokf, NULL };
        char old[128];
        snprintf(old, sizeof old, "%s", s.addr);
        double end = tu_now() + WAIT_S;
        while (!sched_try_start(&s, "sched2", ex2)) {
            if (tu_now() > end) fail_msg("no new scheduler on port %s within %.0fs", port, WAIT_S);
            tu_sleep_ms(100);
        }
        assert_string_equal(s.addr, old);
    }
    assert_true(file_has_line(in_dir(p, sizeof p, "h9-r1.err"), "reconnecting to", s.addr));
    unfinished = false;
}

/* 6. Beyond loopback only with a token, or --allow-anonymous. */
static void test_public_listen_needs_token(void **state)
{
    const char *argv[] = { herd_bin, "scheduler", "--host", "0.0.0.0", "--port", "0", NULL };
    pid_t pid = spawn("public", argv, NULL);
    assert_int_not_equal(wait_exit(pid, WAIT_S), 0);
    char p[512];
    if (!file_has_line(in_dir(p, sizeof p, "public.err"), "without a token", "--allow-anonymous"))
        fail_msg("expected a message about the token in %s", p);
    char *out = tu_read_file(in_dir(p, sizeof p, "public.out"));
    assert_true(!out || !*out);                      /* it never listened */
    free(out);

    sched s;
    const char *anon[] = { "--host", "0.0.0.0", "--port", "0", "--allow-anonymous", NULL };
    sched_start(&s, "anon", anon);
    /* it prints a dialable loopback address, and listens on every interface */
    assert_true(strncmp(s.addr, "tcp://127.0.0.1:", 16) == 0);
    assert_true(listening_on_any(s.port));
    assert_true(file_has_line(s.log, "listening at", "(no token)"));
    assert_int_equal(stop(s.pid, SIGTERM), 0);

    /* $HERD_TOKEN counts as a token */
    const char *tok[] = { herd_bin, "scheduler", "--host", "0.0.0.0", "--port", "0", "--log-file",
                          in_dir(p, sizeof p, "envtok.log"), NULL };
    char **env = env_plus("HERD_TOKEN=" TOKEN, NULL);
    pid = spawn("envtok", tok, env);
    free(env);
    char *line = tu_wait_file(in_dir(p, sizeof p, "envtok.out"), WAIT_S);
    assert_true(strncmp(line, "tcp://127.0.0.1:", 16) == 0);
    assert_true(listening_on_any(strtol(line + 16, NULL, 10)));
    free(line);
    assert_true(wait_line(in_dir(p, sizeof p, "envtok.log"), "listening at", "(token required)", WAIT_S));
    assert_int_equal(stop(pid, SIGTERM), 0);

    /* --listen: a Unix socket (local, so no token needed), which flows reach */
    char listen[600];
    snprintf(listen, sizeof listen, "unix://%s/sched.sock", dir);
    const char *ux[] = { "--listen", listen, NULL };
    sched_start(&s, "unix", ux);
    assert_string_equal(s.addr, listen);
    assert_true(file_has_line(s.log, "listening at", "(no token)"));
    herd_runner *r = connect_flow(s.addr, "unused", "h9-unix", 0);
    assert_string_equal(herd_runner_address(r), listen);
    herd_err err = { 0 };
    int erc = herd_flow_end(r, false, &err);
    herd_runner_free(r);
    assert_int_equal(erc, 0);
    assert_int_equal(stop(s.pid, SIGTERM), 0);
    unfinished = false;
}

/* 7. Command-line mistakes: exit 2 with a usage message. */
static void test_cli_usage_errors(void **state)
{
    static const struct { const char *argv[6]; const char *msg; } cases[] = {
        { { "worker", NULL }, "the scheduler ADDRESS is required" },
        { { "worker", "tcp://127.0.0.1:9", "--bogus", "x", NULL }, "unknown option \"--bogus\"" },
        { { "worker", "tcp://127.0.0.1:9", "--nthreads", "0", NULL }, "--nthreads" },
        { { "worker", "tcp://127.0.0.1:9", "tcp://127.0.0.1:10", NULL }, "one ADDRESS expected" },
        { { "scheduler", "--port", "99999", NULL }, "--port: expected 0..65535" },
        { { "scheduler", "--bogus", "x", NULL }, "unknown option \"--bogus\"" },
        { { "scheduler", "--no-workers-timeout", "-1", NULL }, "--no-workers-timeout: expected seconds" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *argv[8] = { herd_bin };
        for (int k = 0; k < 6 && cases[i].argv[k]; k++) argv[k + 1] = cases[i].argv[k];
        char tag[32], p[512];
        snprintf(tag, sizeof tag, "usage-%zu", i);
        pid_t pid = spawn(tag, argv, NULL);
        int code = wait_exit(pid, WAIT_S);
        snprintf(tag, sizeof tag, "usage-%zu.err", i);
        char *err = tu_read_file(in_dir(p, sizeof p, tag));
        if (code != 2 || !err || !strstr(err, cases[i].msg))
            fail_msg("herd %s %s: expected exit 2 and \"%s\", got %d and \"%s\"", cases[i].argv[0],
                     cases[i].argv[1] ? cases[i].argv[1] : "", cases[i].msg, code, err ? err : "");
        if (i != 2 && i != 3 && i != 4 && i != 6 && !strstr(err, "usage: herd"))
            fail_msg("herd %s: expected the usage in \"%s\"", cases[i].argv[0], err);
        free(err);
    }
    unfinished = false;
}

int main(int argc, char **argv)
{
    herd_init(&argc, &argv);                 /* this binary as a worker: never returns */
    unsetenv("HERD_TOKEN");
    unsetenv("HERD_PROFILE");
    unsetenv("HERD_SCHEDULER_ADDRESS");
    if (argc == 5 && !strcmp(argv[1], "--h9-flow")) return flow_main(argv[2], argv[3], argv[4]);

    ssize_t n = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
    if (n <= 0) { perror("readlink /proc/self/exe"); return 1; }
    self_exe[n] = '\0';
    char guess[PATH_MAX + 16];
    snprintf(guess, sizeof guess, "%s", self_exe);
    char *slash = strrchr(guess, '/');
    snprintf(slash, sizeof guess - (size_t)(slash - guess), "/../bin/herd");
    if (!realpath(guess, herd_bin) || access(herd_bin, X_OK)) { fprintf(stderr, "no herd command at %s\n", guess); return 1; }

    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cli_cluster_serves_flows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_address_excludes_cluster_options, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flows_share_scheduler, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quick_tasks_bypass_busy_worker, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_token_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli_no_workers_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_workers_reconnect_after_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_public_listen_needs_token, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli_usage_errors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
