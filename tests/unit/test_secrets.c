/* tests/unit/test_secrets.c — the cluster's secrets never reach tasks nor
 * any reader of /proc: a worker process under `security: temporary` (its
 * tasks read their own /proc/self/environ, /proc/self/cmdline and getenv)
 * and a scheduler started with --herd-scheduler (the test reads its
 * /proc/PID/environ and cmdline once it listens) hold neither HERD_TOKEN
 * nor the HERD_TLS_* PEM text in their environment block, although both
 * were started with them there. Real worker processes, real sockets. */
#include <herd/herd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "security.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define TOKEN "tok-7f3a9c1e-secret"

/* Does the buffer (NULs inside) contain needle? */
static int has(const char *buf, size_t len, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= len; i++)
        if (!memcmp(buf + i, needle, n)) return 1;
    return 0;
}

/* A whole /proc file (they report size 0). Returns its length, -1 on error. */
static ssize_t slurp(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    size_t len = 0;
    ssize_t r;
    while (len < cap && (r = read(fd, buf + len, cap - len)) > 0) len += (size_t)r;
    close(fd);
    return (ssize_t)len;
}

/* What a task sees: its pid, its environment block and command line as
 * bytes, and getenv of each secret's name. */
static int peek(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    static char buf[1 << 20];
    *out = herd_map();
    herd_map_set(*out, "pid", herd_int(getpid()));
    ssize_t n = slurp("/proc/self/environ", buf, sizeof buf);
    if (n < 0) return herd_task_fail(ctx, "/proc/self/environ: %s", strerror(errno));
    herd_map_set(*out, "environ", herd_bytes(buf, (size_t)n));
    n = slurp("/proc/self/cmdline", buf, sizeof buf);
    if (n < 0) return herd_task_fail(ctx, "/proc/self/cmdline: %s", strerror(errno));
    herd_map_set(*out, "cmdline", herd_bytes(buf, (size_t)n));
    static const char *const names[] = { "HERD_TOKEN", "HERD_TLS_KEY", "HERD_TLS_CERT", "HERD_TLS_CA" };
    for (size_t i = 0; i < 4; i++) {
        const char *v = getenv(names[i]);
        herd_map_set(*out, names[i], v ? herd_str(v) : herd_nil());
    }
    return 0;
}
HERD_TASK(peek);

static void assert_clean(const char *what, const char *buf, size_t len)
{
    static const char *const bad[] = { TOKEN, "HERD_TOKEN", "HERD_TLS_", "PRIVATE KEY", "BEGIN CERTIFICATE" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (has(buf, len, bad[i])) fail_msg("%s holds \"%s\"", what, bad[i]);
}

static int setup(void **state)
{
    char exe[PATH_MAX], prov[PATH_MAX + 16];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return -1;
    exe[n] = '\0';
    *strrchr(exe, '/') = '\0';
    *strrchr(exe, '/') = '\0';
    snprintf(prov, sizeof prov, "%s/providers", exe);
    setenv("HERD_PROVIDER_PATH", prov, 1);
    unsetenv("HERD_PROFILE");
    unsetenv("HERD_CONFIG");
    setenv("XDG_CONFIG_HOME", "/nonexistent", 1);
    return chdir("/");
}

/* Worker processes of a `security: temporary` flow with a known token: every
 * task, on each worker, finds no secret in its environment block, its
 * command line or getenv. */
static void test_worker_processes_hold_no_secret(void **state)
{
    herd_runner_opts o = { .cluster_kwargs = "{n_workers: 2, threads_per_worker: 1, processes: true}",
                           .client_kwargs = "{security: temporary, token: " TOKEN ", log_level: warning}" };
    herd_runner *r = NULL;
    herd_err err = { 0 };
    if (herd_runner_new(&r, &o, &err) || herd_flow_begin(r, "secrets", &err)) fail_msg("%s", err.msg);
    assert_true(strncmp(herd_runner_address(r), "tls://", 6) == 0);   /* the TLS material was handed over */
    if (herd_wait_for_workers(r, 2, 30, &err)) fail_msg("%s", err.msg);
    enum { N = 8 };
    herd_future *f[N];
    for (int i = 0; i < N; i++) assert_int_equal(herd_submit(r, "peek", NULL, &f[i], &err), 0);
    long pids[N];
    for (int i = 0; i < N; i++) {
        const herd_value *v;
        if (herd_future_result(f[i], 30, &v, &err)) fail_msg("%s", err.msg);
        pids[i] = (long)herd_as_int(herd_map_get(v, "pid"));
        assert_int_not_equal(pids[i], getpid());                         /* a worker process */
        size_t len;
        const char *env = herd_as_bytes(herd_map_get(v, "environ"), &len);
        assert_non_null(env);
        assert_true(has(env, len, "HERD_SCHEDULER_ADDRESS="));          /* the block is the real one */
        assert_clean("a worker's /proc/self/environ", env, len);
        const char *cmd = herd_as_bytes(herd_map_get(v, "cmdline"), &len);
        assert_true(has(cmd, len, "--herd-worker"));
        assert_clean("a worker's /proc/self/cmdline", cmd, len);
        assert_int_equal(herd_typeof(herd_map_get(v, "HERD_TOKEN")), HERD_NIL);
        assert_int_equal(herd_typeof(herd_map_get(v, "HERD_TLS_KEY")), HERD_NIL);
        assert_int_equal(herd_typeof(herd_map_get(v, "HERD_TLS_CERT")), HERD_NIL);
        assert_int_equal(herd_typeof(herd_map_get(v, "HERD_TLS_CA")), HERD_NIL);
    }
    /* and from outside, every worker's command line */
    for (int i = 0; i < N; i++) {
        char path[64], buf[65536];
        snprintf(path, sizeof path, "/proc/%ld/cmdline", pids[i]);
        ssize_t n = slurp(path, buf, sizeof buf);
        if (n < 0) fail_msg("%s: %s", path, strerror(errno));
        assert_clean(path, buf, (size_t)n);
    }
    for (int i = 0; i < N; i++) herd_future_release(f[i]);
    assert_int_equal(herd_flow_end(r, false, &err), 0);
    herd_runner_free(r);
}

/* This binary in --herd-scheduler mode with the token and a TLS identity
 * in its environment, as a provider's start_scheduler runs it: once it
 * listens, its /proc/PID/environ and cmdline hold none of them. */
static void test_scheduler_process_holds_no_secret(void **state)
{
    herd_err err = { 0 };
    herd_tls *client = NULL;
    herd_tls_ca *ca = NULL;
    char **tls_env = NULL;
    if (herd_tls_temporary_remote("secrets", &client, &ca, &err)) fail_msg("%s", err.msg);
    if (herd_tls_ca_server_env(ca, NULL, &tls_env, &err)) fail_msg("%s", err.msg);
    char *envp[8];
    size_t k = 0;
    envp[k++] = "HERD_TOKEN=" TOKEN;
    for (char **e = tls_env; *e; e++) envp[k++] = *e;
    envp[k++] = "HERD_LOG_LEVEL=error";
    envp[k] = NULL;
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    assert_true(n > 0);
    exe[n] = '\0';
    int out[2];
    assert_int_equal(pipe(out), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(out[1], 1);
        close(out[0]);
        close(out[1]);
        char *argv[] = { exe, "--herd-scheduler", "--listen", "tls://127.0.0.1:0", NULL };
        execve(exe, argv, envp);
        _exit(127);
    }
    close(out[1]);
    herd_tls_envp_free(tls_env);
    herd_tls_ca_free(ca);
    herd_tls_free(client);
    /* the first line says it listens: by then it has read its environment */
    FILE *fp = fdopen(out[0], "r");
    char line[512] = "";
    if (!fgets(line, sizeof line, fp) || strncmp(line, "herd-scheduler-at tls://127.0.0.1:", 34)) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        fail_msg("the scheduler printed \"%s\", not where it listens", line);
    }
    char path[64], env[1 << 16], cmd[1 << 16];
    snprintf(path, sizeof path, "/proc/%ld/environ", (long)pid);
    ssize_t elen = slurp(path, env, sizeof env);
    snprintf(path, sizeof path, "/proc/%ld/cmdline", (long)pid);
    ssize_t clen = slurp(path, cmd, sizeof cmd);
    kill(pid, SIGTERM);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    assert_true(elen > 0 && clen > 0);
    assert_true(has(env, (size_t)elen, "HERD_LOG_LEVEL=error"));     /* the block is the real one */
    assert_clean("the scheduler's /proc/PID/environ", env, (size_t)elen);
    assert_clean("the scheduler's /proc/PID/cmdline", cmd, (size_t)clen);
    fclose(fp);
}

int main(int argc, char **argv)
{
    herd_init(&argc, &argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_worker_processes_hold_no_secret, setup),
        cmocka_unit_test_setup(test_scheduler_process_holds_no_secret, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
