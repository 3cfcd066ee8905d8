/* tests/support/testutil.h — helpers the integration tests share: starting a
 * flow on a LocalCluster and waiting for its workers, a scratch directory for
 * the marker files tasks and tests exchange, reading small files, the
 * monotonic clock (CLOCK_MONOTONIC is system-wide, so stamps taken in worker
 * processes compare with each other and with the test's), checking that a
 * process is gone, capturing the flow's log lines, and a flow run in a child
 * process (for what a killed client leaves behind).
 *
 * Header-only (static inline), so no object file is linked into every test.
 * Include it after <cmocka.h>: failures are reported with fail_msg(). */
#ifndef HERD_TESTUTIL_H
#define HERD_TESTUTIL_H

#include <herd/herd.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* How long the tests wait for anything at most (generous: ASan, loaded CI;
 * everything here normally takes well under a second). */
#define TU_WAIT_S 30.0

/* 1 in a ThreadSanitizer build (detected at compile time). There a
 * process's RSS runs far ahead of what it holds: TSan's shadow memory (about
 * four times what the program touches, its own memory, not a map's) and
 * what its allocator keeps. Tests that meet memory limits say what they do
 * about it where they use this. */
#if defined(__SANITIZE_THREAD__)
#define TU_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TU_TSAN 1
#endif
#endif
#ifndef TU_TSAN
#define TU_TSAN 0
#endif

static inline double tu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline void tu_sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {}
}

/* ---- log capture ---- */
typedef struct tu_log {
    pthread_mutex_t mu;
    char *text;             /* every captured line, '\n'-separated */
    size_t len, cap;
    int echo_level;         /* lines at or above this also go to stderr */
} tu_log;

static inline void tu_log_init(tu_log *l)
{
    memset(l, 0, sizeof *l);
    pthread_mutex_init(&l->mu, NULL);
    l->echo_level = HERD_LOG_WARN;
}

static inline void tu_log_free(tu_log *l)
{
    free(l->text);
    pthread_mutex_destroy(&l->mu);
}

/* A herd_runner_opts.log sink; ud is a tu_log *. */
static inline void tu_log_sink(void *ud, int level, const char *line)
{
    tu_log *l = ud;
    size_t n = strlen(line);
    pthread_mutex_lock(&l->mu);
    if (l->len + n + 2 > l->cap) {
        size_t cap = 2 * (l->len + n + 2) + 1024;
        char *t = realloc(l->text, cap);
        if (t) { l->text = t; l->cap = cap; }
    }
    if (l->len + n + 2 <= l->cap) {
        memcpy(l->text + l->len, line, n);
        l->len += n;
        l->text[l->len++] = '\n';
        l->text[l->len] = '\0';
    }
    pthread_mutex_unlock(&l->mu);
    if (level >= l->echo_level) fprintf(stderr, "[flow log] %s\n", line);
}

/* Does some captured line contain w1 (and w2, unless it is NULL)? */
static inline bool tu_log_has_line(tu_log *l, const char *w1, const char *w2)
{
    bool found = false;
    pthread_mutex_lock(&l->mu);
    for (const char *p = l->text; p && *p && !found;) {
        const char *e = strchr(p, '\n');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        char *line = strndup(p, n);
        if (line && strstr(line, w1) && (!w2 || strstr(line, w2))) found = true;
        free(line);
        p += n + (e ? 1 : 0);
    }
    pthread_mutex_unlock(&l->mu);
    return found;
}

/* How many captured lines contain w1 (and w2, unless it is NULL). */
static inline int tu_log_count(tu_log *l, const char *w1, const char *w2)
{
    int n = 0;
    pthread_mutex_lock(&l->mu);
    for (const char *p = l->text; p && *p;) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char *line = strndup(p, len);
        if (line && strstr(line, w1) && (!w2 || strstr(line, w2))) n++;
        free(line);
        p += len + (e ? 1 : 0);
    }
    pthread_mutex_unlock(&l->mu);
    return n;
}

/* A child process that begins flow run `name` with opts o (waiting for
 * nworkers when > 0) and then waits to be killed; *up once it said its
 * cluster is up. For the tests of what a killed client leaves behind. */
static inline pid_t tu_flow_in_child(const herd_runner_opts *o, const char *name, int nworkers, bool *up)
{
    int pfd[2];
    if (pipe(pfd)) fail_msg("pipe: %s", strerror(errno));
    pid_t child = fork();
    if (child < 0) fail_msg("fork: %s", strerror(errno));
    if (child == 0) {
        close(pfd[0]);
        herd_err err = { 0 };
        herd_runner *r = NULL;
        if (herd_runner_new(&r, o, &err) || herd_flow_begin(r, name, &err) ||
            (nworkers > 0 && herd_wait_for_workers(r, nworkers, TU_WAIT_S, &err)))
            _exit(1);
        if (write(pfd[1], "up", 2) != 2) _exit(1);
        for (;;) pause();                  /* killed here */
    }
    close(pfd[1]);
    char b[2];
    *up = read(pfd[0], b, 2) == 2;
    close(pfd[0]);
    return child;
}

/* Poll for a log line (log lines come from the scheduler's thread). */
static inline bool tu_log_wait_line(tu_log *l, const char *w1, const char *w2, double timeout_s)
{
    double end = tu_now() + timeout_s;
    while (!tu_log_has_line(l, w1, w2)) {
        if (tu_now() > end) return false;
        tu_sleep_ms(10);
    }
    return true;
}

/* The sink for flows whose log is not captured: warnings and errors only. */
static inline void tu_quiet_sink(void *ud, int level, const char *line)
{
    if (level >= HERD_LOG_WARN) fprintf(stderr, "[flow log] %s\n", line);
}

/* ---- flows ---- */
/* Create a runner on a LocalCluster with cluster_kwargs ck (and client_kwargs
 * cl, may be NULL), begin a flow run and wait until nworkers are connected.
 * log may be NULL. Fails the test on any error. */
static inline herd_runner *tu_flow(const char *ck, const char *cl, int nworkers, tu_log *log)
{
    herd_runner *r = NULL;
    herd_err err = { 0 };
    herd_runner_opts o = { .cluster_kwargs = ck, .client_kwargs = cl };
    if (log) { o.log = tu_log_sink; o.log_ud = log; }
    else o.log = tu_quiet_sink;
    if (herd_runner_new(&r, &o, &err)) fail_msg("herd_runner_new(%s): %s", ck, err.msg);
    if (herd_flow_begin(r, "integration", &err)) {
        herd_runner_free(r);
        fail_msg("herd_flow_begin(%s): %s", ck, err.msg);
    }
    if (herd_wait_for_workers(r, nworkers, TU_WAIT_S, &err)) {
        herd_runner_free(r);
        fail_msg("herd_wait_for_workers(%d): %s", nworkers, err.msg);
    }
    return r;
}

static inline void tu_flow_end(herd_runner *r)
{
    herd_err err = { 0 };
    int rc = herd_flow_end(r, false, &err);
    herd_runner_free(r);
    if (rc) fail_msg("herd_flow_end: %s", err.msg);
}

/* Submit with annotations (NULL: none); fails the test if submit fails. */
/* Wait until at least want of fs[0..n) are Running (their tasks are inside an
 * executor): the state to wait for instead of sleeping. The count reached. */
static inline size_t tu_wait_running(herd_future **fs, size_t n, size_t want, double timeout_s)
{
    double end = tu_now() + timeout_s;
    size_t running;
    for (;;) {
        running = 0;
        for (size_t i = 0; i < n; i++) running += herd_future_state(fs[i]) == HERD_RUNNING;
        if (running >= want || tu_now() >= end) return running;
        tu_sleep_ms(5);
    }
}

/* Descriptors this process has open (for tests that a peer's descriptors
 * are given back). */
static inline int tu_count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) n += e->d_name[0] != '.';
    closedir(d);
    return n - 1;                            /* the directory's own */
}

static inline herd_future *tu_submit(herd_runner *r, const char *task, herd_value *args, const char *ann)
{
    herd_future *f = NULL;
    herd_err err = { 0 };
    if (herd_submit_annotated(r, task, args, ann, &f, &err))
        fail_msg("submit %s %s: %s", task, ann ? ann : "", err.msg);
    return f;
}

/* The result as an int; fails the test unless the future completes. */
static inline int64_t tu_int_result(herd_future *f)
{
    const herd_value *v = NULL;
    herd_err err = { 0 };
    if (herd_future_result(f, TU_WAIT_S, &v, &err))
        fail_msg("%s: %s", herd_future_name(f), err.msg);
    if (herd_typeof(v) != HERD_INT) fail_msg("%s: expected an int result, got %s",
                                             herd_future_name(f), herd_type_name(herd_typeof(v)));
    return herd_as_int(v);
}

/* ---- files ---- */
/* A fresh scratch directory; path written into dir (cap >= 64). */
static inline void tu_mkdtemp(char *dir, size_t cap)
{
    snprintf(dir, cap, "/tmp/herd-itest-XXXXXX");
    if (!mkdtemp(dir)) fail_msg("mkdtemp: %s", strerror(errno));
}

/* Remove dir and the plain files in it. */
static inline void tu_rmtree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

/* The whole file, malloc'd and NUL-terminated, or NULL if it does not exist. */
static inline char *tu_read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    size_t n;
    while (buf && (n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len < 2) { char *b = realloc(buf, cap *= 2); if (!b) { free(buf); buf = NULL; } else buf = b; }
    }
    fclose(f);
    if (buf) buf[len] = '\0';
    return buf;
}

/* Wait (bounded) until path exists and is not empty; returns its text. */
static inline char *tu_wait_file(const char *path, double timeout_s)
{
    double end = tu_now() + timeout_s;
    for (;;) {
        char *s = tu_read_file(path);
        if (s && *s) return s;
        free(s);
        if (tu_now() > end) fail_msg("%s did not appear within %.0fs", path, timeout_s);
        tu_sleep_ms(10);
    }
}

/* Write text to path atomically (temp file, then rename). */
static inline int tu_write_file(const char *path, const char *text)
{
    char *tmp = NULL;
    if (asprintf(&tmp, "%s.tmp%ld", path, (long)getpid()) < 0) return -ENOMEM;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) { int e = errno; free(tmp); return -e; }
    size_t n = strlen(text);
    ssize_t w = write(fd, text, n);
    close(fd);
    int rc = w != (ssize_t)n ? -EIO : rename(tmp, path) ? -errno : 0;
    if (rc) unlink(tmp);
    free(tmp);
    return rc;
}

/* ---- processes ---- */
/* Is pid gone? Reaps it if it is our (exited) child; a zombie counts as gone
 * (it runs nothing any more). */
static inline bool tu_pid_gone(pid_t pid)
{
    int st;
    if (waitpid(pid, &st, WNOHANG) == pid) return true;
    if (kill(pid, 0) < 0 && errno == ESRCH) return true;
    char p[64];
    snprintf(p, sizeof p, "/proc/%ld/stat", (long)pid);
    char *s = tu_read_file(p);
    if (!s) return true;
    const char *rp = strrchr(s, ')');
    bool zombie = rp && (rp[1] == ' ') && (rp[2] == 'Z' || rp[2] == 'X');
    free(s);
    return zombie;
}

/* Wait up to timeout_s for pid to be gone. */
static inline bool tu_wait_pid_gone(pid_t pid, double timeout_s)
{
    double end = tu_now() + timeout_s;
    while (!tu_pid_gone(pid)) {
        if (tu_now() > end) return false;
        tu_sleep_ms(10);
    }
    return true;
}

/* Run this test binary again as a child ("/proc/self/exe MODE DIR", which its
 * main handles), this process its subreaper so the child's orphans come here,
 * and wait until the child has written DIR/FILE: the file's text (malloc'd).
 * Fails the test if the child dies first or writes nothing in TU_WAIT_S. */
static inline char *tu_self_child(const char *mode, const char *dir, const char *file, pid_t *child)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
    pid_t c = fork();
    assert_true(c >= 0);
    if (c == 0) {
        char *argv[] = { "/proc/self/exe", (char *)mode, (char *)dir, NULL };
        execv("/proc/self/exe", argv);
        _exit(127);
    }
    *child = c;
    char *text = NULL;
    double end = tu_now() + TU_WAIT_S;
    int st;
    while (!(text = tu_read_file(path)) || !*text) {
        free(text);
        text = NULL;
        if (waitpid(c, &st, WNOHANG) == c) fail_msg("%s child exited early (status 0x%x)", mode, st);
        if (tu_now() > end) { kill(c, SIGKILL); waitpid(c, &st, 0); fail_msg("%s child wrote no %s", mode, file); }
        tu_sleep_ms(10);
    }
    return text;
}

#endif
