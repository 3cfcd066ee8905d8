/* tests/integration/test_retire.c — a worker retiring gracefully moves the
 * values only it holds that are still needed to another worker before it
 * leaves (Dask's retire_workers), with real worker processes: adaptive
 * scale-down of a LocalCluster, a worker's own `lifetime` (a scheduler of
 * this process, workers of this binary), and a recipient SIGKILLed during
 * the move (then the value is recomputed from its task, as before). Each
 * producer counts its runs in a file, so "moved, not recomputed" is checked
 * by counting, and every value is checked byte for byte.
 *
 * No assertion is about time: the moves are held up where a test needs them
 * to be (the recipient's one thread runs a task that waits for a file) and
 * each step waits (bounded) for the log line or state that says it
 * happened. */
#include <herd/herd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../support/testutil.h"

#define VAL_LEN (64 * 1024)        /* held on its worker (over the 1 KiB inline limit) */

/* (dir, i) -> VAL_LEN bytes, byte j = (i + j) & 0xff; appends a line to
 * dir/runs-i each time it runs. */
static int t_make(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    const char *d = herd_as_str(herd_at(args, 0));
    int64_t i = herd_as_int(herd_at(args, 1));
    char p[512];
    snprintf(p, sizeof p, "%s/runs-%lld", d ? d : ".", (long long)i);
    int fd = open(p, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd < 0 || write(fd, "run\n", 4) != 4) { if (fd >= 0) close(fd); return herd_task_fail(ctx, "cannot append to %s", p); }
    close(fd);
    unsigned char *b = malloc(VAL_LEN);
    if (!b) return herd_task_fail(ctx, "out of memory");
    for (size_t j = 0; j < VAL_LEN; j++) b[j] = (unsigned char)((i + (int64_t)j) & 0xff);
    *out = herd_bytes(b, VAL_LEN);
    free(b);
    return 0;
}
HERD_TASK(t_make);

/* (path) -> 1 once path exists (bounded); holds its thread meanwhile. */
static int t_wait(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    const char *p = herd_as_str(herd_at(args, 0));
    double end = tu_now() + 3 * TU_WAIT_S;
    while (p && access(p, F_OK) != 0) {
        if (tu_now() > end) return herd_task_fail(ctx, "%s did not appear", p);
        tu_sleep_ms(10);
    }
    *out = herd_int(1);
    return 0;
}
HERD_TASK(t_wait);

static int runs_of(const char *d, int i)
{
    char p[512];
    snprintf(p, sizeof p, "%s/runs-%d", d, i);
    char *t = tu_read_file(p);
    int n = 0;
    for (const char *c = t; c && *c; c++) n += *c == '\n';
    free(t);
    return n;
}

static void check_value(herd_future *f, int i)
{
    const herd_value *v = NULL;
    herd_err err = { 0 };
    if (herd_future_result(f, TU_WAIT_S, &v, &err)) fail_msg("%s: %s", herd_future_name(f), err.msg);
    size_t len = 0;
    const unsigned char *b = herd_typeof(v) == HERD_BYTES ? herd_as_bytes(v, &len) : NULL;
    if (!b || len != VAL_LEN) fail_msg("%s: expected %d bytes, got %s of %zu", herd_future_name(f), VAL_LEN,
                                       herd_type_name(herd_typeof(v)), len);
    for (size_t j = 0; j < len; j++)
        if (b[j] != (unsigned char)((i + (int64_t)j) & 0xff)) fail_msg("%s: byte %zu is wrong", herd_future_name(f), j);
}

static void wait_state(herd_future *f, herd_state want)
{
    double end = tu_now() + TU_WAIT_S;
    while (herd_future_state(f) != want) {
        if (tu_now() > end) fail_msg("%s: state %d, expected %d", herd_future_name(f), herd_future_state(f), want);
        tu_sleep_ms(10);
    }
}

static void touch(const char *d, const char *name)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", d, name);
    if (tu_write_file(p, "x")) fail_msg("cannot create %s", p);
}

static void need_line(tu_log *log, const char *w1, const char *w2)
{
    if (!tu_log_wait_line(log, w1, w2, TU_WAIT_S))
        fail_msg("no log line with \"%s\"%s%s%s; the log:\n%s", w1, w2 ? " and \"" : "", w2 ? w2 : "", w2 ? "\"" : "",
                 log->text ? log->text : "");
}

/* The pid a worker had when it connected ("worker NAME connected (pid N,"). */
static pid_t pid_of(tu_log *log, const char *name)
{
    char pat[128];
    snprintf(pat, sizeof pat, "worker %s connected (pid ", name);
    pthread_mutex_lock(&log->mu);
    const char *p = log->text ? strstr(log->text, pat) : NULL;
    pid_t pid = p ? (pid_t)strtol(p + strlen(pat), NULL, 10) : 0;
    pthread_mutex_unlock(&log->mu);
    if (pid <= 0) fail_msg("no \"%s\" in the log", pat);
    return pid;
}

/* Two workers of one thread each, adaptive between 1 and 2. Two tasks wait
 * for files; the producer runs on the worker whose waiting task is released
 * first (W). Then one task runs and W is idle: adaptive scaling retires W,
 * the one idle worker, whose value is still needed (its future), so the
 * scheduler moves it to the other worker (V), whose thread is held by the
 * second waiting task: the move waits there. *v_name gets V's name. */
typedef struct setup {
    herd_runner *r;
    herd_future *w1, *w2, *prod;
    char v[64], wname[64];
    char d[64];          /* the tasks' files: go-1, go-2, runs-0 */
    tu_log log;
} setup;

/* echo_level: the log's (0: tu_log's own). */
static void start(setup *st, int echo_level)
{
    memset(st, 0, sizeof *st);
    tu_mkdtemp(st->d, sizeof st->d);
    tu_log_init(&st->log);
    if (echo_level) st->log.echo_level = echo_level;
    tu_log *log = &st->log;
    const char *d = st->d;
    herd_err err = { 0 };
    herd_runner_opts o = { .cluster_kwargs = "{n_workers: 0, threads_per_worker: 1}",
                           .adapt_kwargs = "{minimum: 1, maximum: 2, interval: 0.05, wait_count: 2, target_duration: 0.5}",
                           .log = tu_log_sink, .log_ud = log };
    if (herd_runner_new(&st->r, &o, &err)) fail_msg("herd_runner_new: %s", err.msg);
    if (herd_flow_begin(st->r, "retire", &err)) { herd_runner_free(st->r); fail_msg("herd_flow_begin: %s", err.msg); }
    char p1[512], p2[512];
    snprintf(p1, sizeof p1, "%s/go-1", d);
    snprintf(p2, sizeof p2, "%s/go-2", d);
    st->w1 = tu_submit(st->r, "t_wait", herd_tuple("s", p1), NULL);
    st->w2 = tu_submit(st->r, "t_wait", herd_tuple("s", p2), NULL);
    herd_future *both[2] = { st->w1, st->w2 };
    if (tu_wait_running(both, 2, 2, TU_WAIT_S) != 2) fail_msg("the two waiting tasks are not both running");
    st->prod = tu_submit(st->r, "t_make", herd_tuple("si", d, 0), NULL);   /* no free thread: it waits */
    touch(d, "go-1");
    assert_int_equal(tu_int_result(st->w1), 1);
    wait_state(st->prod, HERD_COMPLETED);       /* on W, the only free thread; not read yet */
    need_line(log, "retiring: moving 1 value", NULL);
    pthread_mutex_lock(&log->mu);
    const char *l = strstr(log->text, "retiring: moving 1 value");
    const char *ws = l, *to = l ? strstr(l, "to worker ") : NULL;
    while (ws && ws > log->text && ws[-1] != '\n') ws--;
    if (ws && !strncmp(ws, "worker ", 7)) sscanf(ws + 7, "%63s", st->wname);
    if (to) sscanf(to + 10, "%63s", st->v);
    pthread_mutex_unlock(&log->mu);
    if (!st->v[0] || !st->wname[0]) fail_msg("cannot read the move's workers from the log:\n%s", log->text);
}

/* What start made, released: the futures, the flow, the log, the files. */
static void finish(setup *st)
{
    herd_future *fs[] = { st->w1, st->w2, st->prod };
    for (size_t i = 0; i < sizeof fs / sizeof *fs; i++) herd_future_release(fs[i]);
    tu_flow_end(st->r);
    tu_log_free(&st->log);
    tu_rmtree(st->d);
}

/* The value moves: the producer ran once, the future reads it from V. */
static void test_adaptive_moves_value(void **state)
{
    setup st;
    start(&st, 0);
    touch(st.d, "go-2");                         /* V's thread is free: it fetches the value */
    assert_int_equal(tu_int_result(st.w2), 1);
    need_line(&st.log, "retiring: moved 1 value", st.wname);
    need_line(&st.log, "adaptive: worker", "retired");
    if (getenv("RETIRE_SHOW_LOG")) fprintf(stderr, "%s", st.log.text);
    check_value(st.prod, 0);
    assert_int_equal(runs_of(st.d, 0), 1);
    assert_int_equal(tu_log_count(&st.log, "recomputing", NULL), 0);
    assert_int_equal(tu_log_count(&st.log, "could not move", NULL), 0);
    /* a dependent submitted now reads it where it is */
    finish(&st);
}

/* The recipient is SIGKILLed while the move waits on it: the move falls
 * back, W leaves, and the value is recomputed from its task (right bytes,
 * two runs). */
static void test_recipient_killed(void **state)
{
    setup st;
    start(&st, HERD_LOG_ERROR);                  /* the death's warnings are expected */
    pid_t v = pid_of(&st.log, st.v);
    assert_int_equal(kill(v, SIGKILL), 0);
    need_line(&st.log, "could not move its value", st.v);
    need_line(&st.log, "recomputing it", NULL);
    touch(st.d, "go-2");                         /* the waiting task, rescheduled, may end */
    check_value(st.prod, 0);
    assert_int_equal(runs_of(st.d, 0), 2);
    assert_int_equal(tu_int_result(st.w2), 1);
    finish(&st);
}

/* Scaling to zero while a future holds a value only the last worker has:
 * that worker stays (Dask keeps a worker with the only copy of needed data)
 * and the value is read from it; once the future is released, the worker
 * is retired. */
static void test_last_holder_kept(void **state)
{
    char d[64];
    tu_mkdtemp(d, sizeof d);
    tu_log log;
    tu_log_init(&log);
    herd_err err = { 0 };
    herd_runner *r = NULL;
    herd_runner_opts o = { .cluster_kwargs = "{n_workers: 0, threads_per_worker: 1}",
                           .adapt_kwargs = "{minimum: 0, maximum: 1, interval: 0.05, wait_count: 2}",
                           .log = tu_log_sink, .log_ud = &log };
    if (herd_runner_new(&r, &o, &err)) fail_msg("herd_runner_new: %s", err.msg);
    if (herd_flow_begin(r, "retire-last", &err)) { herd_runner_free(r); fail_msg("herd_flow_begin: %s", err.msg); }
    herd_future *prod = tu_submit(r, "t_make", herd_tuple("si", d, 3), NULL);
    wait_state(prod, HERD_COMPLETED);
    need_line(&log, "adaptive: keeping worker", "only copy");
    assert_int_equal(tu_log_count(&log, "adaptive: scaling down", NULL), 0);
    check_value(prod, 3);
    assert_int_equal(runs_of(d, 3), 1);
    herd_future_release(prod);
    need_line(&log, "adaptive: worker", "retired");
    assert_int_equal(tu_log_count(&log, "recomputing", NULL), 0);
    tu_flow_end(r);
    tu_log_free(&log);
    tu_rmtree(d);
}

/* GET path from the scheduler's HTTP endpoint at url ("http://127.0.0.1:PORT"):
 * the whole answer, malloc'd. */
static char *http_get(const char *url, const char *path)
{
    const char *colon = strrchr(url, ':');
    int port = colon ? atoi(colon + 1) : 0;
    if (strncmp(url, "http://127.0.0.1:", 17) || port <= 0) fail_msg("unexpected endpoint URL %s", url);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa)) fail_msg("cannot connect to %s", url);
    char req[256];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path);
    if (write(fd, req, (size_t)n) != n) fail_msg("cannot send to %s", url);
    size_t len = 0, cap = 1 << 16;
    char *buf = malloc(cap);
    ssize_t got;
    while (buf && (got = read(fd, buf + len, cap - len - 1)) > 0) {
        len += (size_t)got;
        if (cap - len < 1024) { char *b = realloc(buf, cap *= 2); if (!b) { free(buf); buf = NULL; } else buf = b; }
    }
    close(fd);
    if (!buf) fail_msg("out of memory");
    buf[len] = '\0';
    return buf;
}

/* ---- lifetime: a scheduler in this process, two workers of this binary,
 * one of them with a lifetime ---- */
static char self_exe[4096];

static pid_t spawn_worker(const char *addr, const char *name, const char *lifetime)
{
    char tok[] = "HERD_TOKEN=retire-token";
    char life[64];
    snprintf(life, sizeof life, "HERD_LIFETIME=%s", lifetime ? lifetime : "");
    extern char **environ;
    size_t n = 0;
    while (environ[n]) n++;
    char **env = calloc(n + 3, sizeof *env);
    if (!env) fail_msg("out of memory");
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "HERD_", 5)) env[k++] = environ[i];
    env[k++] = tok;
    if (lifetime) env[k++] = life;
    const char *argv[] = { self_exe, "--herd-worker", "--herd-address", addr, "--herd-name", name,
                           "--herd-nthreads", "2", NULL };
    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) fail_msg("fork failed");
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(127);
        execve(argv[0], (char *const *)argv, env);
        _exit(127);
    }
    free(env);
    return pid;
}

/* Worker "short" (lifetime 4s, two threads) holds a value; a task holds its
 * other thread, so it cannot leave before the test lets it. Its lifetime
 * passes: it retires, its value moves to "keep", the future reads it there;
 * the producer ran once. */
static void test_lifetime_moves_value(void **state)
{
    char d[64], addr[256];
    tu_mkdtemp(d, sizeof d);
    snprintf(addr, sizeof addr, "unix://%s/s.sock", d);
    tu_log log;
    tu_log_init(&log);
    herd_err err = { 0 };
    herd_scheduler_opts so = { .listen = addr, .token = "retire-token", .log = tu_log_sink, .log_ud = &log,
                               .dashboard_address = "127.0.0.1:0" };
    herd_scheduler *s = NULL;
    if (herd_scheduler_start(&s, &so, &err)) fail_msg("herd_scheduler_start: %s", err.msg);
    pid_t keep = spawn_worker(addr, "keep", NULL), shrt = spawn_worker(addr, "short", "4s");
    herd_runner *r = NULL;
    herd_runner_opts o = { .address = addr, .client_kwargs = "{token: retire-token}", .log = tu_quiet_sink };
    if (herd_runner_new(&r, &o, &err)) fail_msg("herd_runner_new: %s", err.msg);
    if (herd_flow_begin(r, "retire-lifetime", &err)) fail_msg("herd_flow_begin: %s", err.msg);
    if (herd_wait_for_workers(r, 2, TU_WAIT_S, &err)) fail_msg("herd_wait_for_workers: %s", err.msg);
    char p[512];
    snprintf(p, sizeof p, "%s/go", d);
    herd_future *hold = tu_submit(r, "t_wait", herd_tuple("s", p), "{workers: [short]}");
    herd_future *prod = tu_submit(r, "t_make", herd_tuple("si", d, 7), "{workers: [short]}");
    wait_state(prod, HERD_COMPLETED);
    need_line(&log, "worker short retiring: lifetime", NULL);
    touch(d, "go");
    assert_int_equal(tu_int_result(hold), 1);
    need_line(&log, "worker short retiring: moved 1 value", NULL);
    need_line(&log, "worker short", "closed");
    check_value(prod, 7);
    assert_int_equal(runs_of(d, 7), 1);
    assert_int_equal(tu_log_count(&log, "recomputing", NULL), 0);
    char *m = http_get(herd_scheduler_dashboard_url(s), "/metrics");
    const char *moved = strstr(m, "\nherd_retire_moved_values_total "), *mb = strstr(m, "\nherd_retire_moved_bytes_total ");
    if (!moved || atoi(moved + 32) != 1 || !mb || atoll(mb + 31) <= VAL_LEN)
        fail_msg("/metrics does not count one value of over %d bytes moved:\n%s", VAL_LEN, m);
    free(m);
    int status = 0;
    assert_int_equal(waitpid(shrt, &status, 0), shrt);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    herd_future_release(hold);
    herd_future_release(prod);
    if (herd_flow_end(r, false, &err)) fail_msg("herd_flow_end: %s", err.msg);
    herd_runner_free(r);
    herd_scheduler_stop(s);                      /* keep, not reconnecting, exits */
    if (waitpid(keep, &status, 0) != keep) fail_msg("worker keep was not reaped");
    tu_log_free(&log);
    tu_rmtree(d);
}

int main(int argc, char **argv)
{
    herd_init(&argc, &argv);
    ssize_t n = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
    if (n <= 0) return 1;
    self_exe[n] = '\0';
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adaptive_moves_value),
        cmocka_unit_test(test_recipient_killed),
        cmocka_unit_test(test_last_holder_kept),
        cmocka_unit_test(test_lifetime_moves_value),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
