/* tests/integration/test_backoff.c — retrying a scheduler that is not there.
 * A flow given an `address` that refuses says so once per backoff step
 * (50 ms doubling, with the time left) until connect_timeout, then fails
 * naming the address. `herd worker` reconnecting to a
 * scheduler that is not there: the backoff schedule it announces (0.1 s,
 * doubling, one "reconnecting … in Ns" line per step), that it connects as
 * soon as a scheduler listens at the address, and that after a short-lived
 * connection the schedule goes on from where it was (it resets only after
 * 30 s up); its token is not in its /proc/PID/environ. Real processes and sockets; checks read the worker's log lines
 * in order, never the clock. */
#include <herd/herd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../support/testutil.h"

#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>

#define TOKEN "backoff-token"

static char herd_bin[PATH_MAX], dir[64];

/* A TCP port nothing listens on right now. */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) || getsockname(fd, (struct sockaddr *)&a, &len))
        fail_msg("free_port: %s", strerror(errno));
    close(fd);
    return ntohs(a.sin_port);
}

/* The delays of the worker's "reconnecting to ADDR in Ns" lines, in order. */
static size_t delays(const char *log, const char *addr, double *out, size_t cap)
{
    char *s = tu_read_file(log);
    size_t n = 0;
    char want[256];
    snprintf(want, sizeof want, "worker bo: reconnecting to %s in ", addr);
    for (const char *p = s; p && n < cap && (p = strstr(p, want)); p += strlen(want))
        out[n++] = strtod(p + strlen(want), NULL);
    free(s);
    return n;
}

/* Wait until the log holds at least n such lines; how many it holds. */
static size_t wait_delays(const char *log, const char *addr, double *out, size_t cap, size_t n)
{
    size_t got = 0;
    for (double end = tu_now() + TU_WAIT_S; (got = delays(log, addr, out, cap)) < n && tu_now() < end;)
        tu_sleep_ms(20);
    return got;
}

static void test_backoff_schedule(void **state)
{
    char addr[64], port[16], log[PATH_MAX + 16];
    snprintf(port, sizeof port, "%d", free_port());
    snprintf(addr, sizeof addr, "tcp://127.0.0.1:%s", port);
    snprintf(log, sizeof log, "%s/worker.err", dir);
    pid_t parent = getpid();
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(127);
        int e = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (e < 0) _exit(127);
        dup2(e, 2);
        setenv("HERD_TOKEN", TOKEN, 1);
        setenv("HERD_LOG_LEVEL", "info", 1);     /* the reconnect lines are INFO */
        execl(herd_bin, herd_bin, "worker", addr, "--name", "bo", "--nthreads", "1",
              "--connect-timeout", "0.05", (char *)NULL);
        _exit(127);
    }
    /* nothing listens: 0.1 s, then doubling */
    double d[16];
    size_t n = wait_delays(log, addr, d, 16, 5);
    if (n < 5) { kill(pid, SIGKILL); waitpid(pid, NULL, 0); fail_msg("%zu reconnect lines in %s", n, log); }
    const double want[] = { 0.1, 0.2, 0.4, 0.8, 1.6 };
    for (size_t i = 0; i < 5; i++)
        if (d[i] < want[i] - 0.01 || d[i] > want[i] + 0.01) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            fail_msg("reconnect step %zu: %.2fs, expected %.1fs", i, d[i], want[i]);
        }

    /* by now (it has logged) its token is out of its environment block */
    char envp[64];
    snprintf(envp, sizeof envp, "/proc/%ld/environ", (long)pid);
    static char env[1 << 16];
    FILE *ef = fopen(envp, "rb");
    size_t elen = ef ? fread(env, 1, sizeof env, ef) : 0;
    if (ef) fclose(ef);
    bool leaked = !elen || memmem(env, elen, TOKEN, strlen(TOKEN)) || memmem(env, elen, "HERD_TOKEN", 10);
    if (leaked) { kill(pid, SIGKILL); waitpid(pid, NULL, 0); fail_msg("%s holds the token (or is unreadable)", envp); }

    /* a scheduler appears at the address: the worker joins it */
    herd_scheduler *s = NULL;
    herd_err err = { 0 };
    herd_scheduler_opts so = { .listen = addr, .token = TOKEN, .log = tu_quiet_sink };
    if (herd_scheduler_start(&s, &so, &err)) { kill(pid, SIGKILL); waitpid(pid, NULL, 0); fail_msg("%s", err.msg); }
    char ck[128];
    snprintf(ck, sizeof ck, "{token: %s, log_level: error}", TOKEN);
    herd_runner_opts o = { .address = addr, .client_kwargs = ck };
    herd_runner *r = NULL;
    int rc = herd_runner_new(&r, &o, &err);
    if (!rc) rc = herd_flow_begin(r, "backoff", &err);
    if (!rc) rc = herd_wait_for_workers(r, 1, TU_WAIT_S, &err);
    if (r) { herd_flow_end(r, false, NULL); herd_runner_free(r); }
    size_t before = delays(log, addr, d, 16);
    herd_scheduler_stop(s);
    if (rc) { kill(pid, SIGKILL); waitpid(pid, NULL, 0); fail_msg("the worker did not join: %s", err.msg); }

    /* it went away after a short connection: the schedule goes on, not from 0.1 s */
    n = wait_delays(log, addr, d, 16, before + 1);
    kill(pid, SIGTERM);
    int st;
    waitpid(pid, &st, 0);
    assert_true(n > before);
    if (d[before] < d[before - 1] * 2 - 0.01 || d[before] > d[before - 1] * 2 + 0.01)
        fail_msg("after the scheduler left: %.2fs, expected %.1fs (the step after %.1fs)", d[before],
                 d[before - 1] * 2, d[before - 1]);
}

/* The flow's "retrying" lines: their delays and the time left, in order. */
static void test_flow_address_refused_says_retrying(void **state)
{
    char addr[64];
    snprintf(addr, sizeof addr, "tcp://127.0.0.1:%d", free_port());
    tu_log log;
    tu_log_init(&log);
    log.echo_level = HERD_LOG_ERROR + 1;
    herd_runner_opts o = { .address = addr, .client_kwargs = "{connect_timeout: 1, log_level: info}", .log = tu_log_sink, .log_ud = &log };
    herd_runner *r = NULL;
    herd_err err = { 0 };
    assert_int_equal(herd_runner_new(&r, &o, &err), 0);
    assert_int_not_equal(herd_flow_begin(r, "refused", &err), 0);
    char want[128];
    snprintf(want, sizeof want, "cannot connect to scheduler at %s within 1.0s", addr);
    if (!strstr(err.msg, want)) fail_msg("unexpected error: %s", err.msg);
    herd_runner_free(r);
    /* one line per step, in order: the delay doubles, the time left shrinks */
    snprintf(want, sizeof want, "cannot connect to %s yet (Connection refused); retrying in ", addr);
    double step[32], left[32];
    size_t n = 0;
    pthread_mutex_lock(&log.mu);
    for (const char *p = log.text; p && n < 32 && (p = strstr(p, want)); p += strlen(want))
        if (sscanf(p + strlen(want), "%lfs, %lfs left", &step[n], &left[n]) == 2) n++;
    pthread_mutex_unlock(&log.mu);
    tu_log_free(&log);
    if (n < 3) fail_msg("%zu retrying lines", n);
    const double first[] = { 0.05, 0.1, 0.2 };
    for (size_t i = 0; i < 3; i++)
        if (step[i] < first[i] - 0.001 || step[i] > first[i] + 0.001) fail_msg("step %zu: %.3gs, expected %.2gs", i, step[i], first[i]);
    for (size_t i = 1; i < n; i++) {
        assert_true(left[i] <= left[i - 1]);          /* (printed to 0.1 s) */
        assert_true(step[i] <= left[i] + 0.06);       /* never waits past the deadline */
    }
    assert_true(left[n - 1] < left[0]);
    assert_true(left[0] <= 1.0);
}

int main(int argc, char **argv)
{
    herd_init(&argc, &argv);
    char exe[PATH_MAX - 32];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = '\0';
    *strrchr(exe, '/') = '\0';
    snprintf(herd_bin, sizeof herd_bin, "%s/../bin/herd", exe);
    tu_mkdtemp(dir, sizeof dir);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backoff_schedule),
        cmocka_unit_test(test_flow_address_refused_says_retrying),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    tu_rmtree(dir);
    return rc;
}
