/* tests/unit/test_proc.c — the providers' process helpers (core/proc.c) on
 * real processes: exit statuses and signals as reported, no zombie left,
 * stop escalating to SIGKILL for a child that ignores SIGTERM, children
 * dying with their spawner and with the process that forked them
 * (PR_SET_PDEATHSIG), pipes and environment additions, and the errors of a
 * program that cannot run or a bad spec. */
#include <herd/herd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../support/testutil.h"

#include <sys/prctl.h>

#define SH(...) ((const char *const[]){ "sh", "-c", __VA_ARGS__, NULL })

/* pid is no child of ours any more (reaped: no zombie). */
static void assert_no_child(pid_t pid)
{
    errno = 0;
    assert_int_equal(waitpid(pid, NULL, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);
}

/* Read one line from fd (blocking): the child says it is ready. */
static void read_line(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    while (n + 1 < cap) {
        ssize_t r = read(fd, buf + n, 1);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0 || buf[n] == '\n') break;
        n++;
    }
    buf[n] = '\0';
}

static herd_proc *start(herd_spawner *sp, const char *const *argv, int pipes[3], bool out_pipe)
{
    herd_proc_spec spec = { .argv = argv };
    if (out_pipe) spec.io[1] = HERD_PROC_PIPE;
    herd_proc *p = NULL;
    herd_err err = { 0 };
    int rc = herd_proc_start(sp, &spec, &p, pipes, &err);
    if (rc) fail_msg("herd_proc_start: %d %s", rc, err.msg);
    return p;
}

static void test_exit_status(void **state)
{
    (void)state;
    herd_spawner *sp;
    herd_err err = { 0 };
    assert_int_equal(herd_spawner_new(&sp, &err), 0);
    herd_proc *p = start(sp, SH("exit 3"), NULL, false);
    pid_t pid = herd_proc_pid(p);
    assert_true(pid > 0);
    herd_proc_exit ex;
    assert_int_equal(herd_proc_wait(p, -1, &ex), 1);
    assert_true(ex.known);
    assert_int_equal(ex.status, 3);
    assert_int_equal(ex.signal, 0);
    char buf[128];
    assert_string_equal(herd_proc_describe(&ex, buf, sizeof buf), "exited with status 3");
    assert_no_child(pid);
    /* the outcome is kept; a reaped process is never signalled */
    memset(&ex, 0, sizeof ex);
    assert_int_equal(herd_proc_poll(p, &ex), 1);
    assert_int_equal(ex.status, 3);
    assert_int_equal(herd_proc_signal(p, SIGTERM), -ESRCH);
    herd_proc_free(p);
    herd_spawner_free(sp);
}

static void test_stop_escalates(void **state)
{
    (void)state;
    herd_spawner *sp;
    assert_int_equal(herd_spawner_new(&sp, NULL), 0);
    int pa[3], pb[3];
    /* a ignores SIGTERM (the disposition survives exec), b does not; c has ended already */
    herd_proc *a = start(sp, SH("trap '' TERM; echo ready; exec sleep 1000"), pa, true);
    herd_proc *b = start(sp, SH("echo ready; exec sleep 1000"), pb, true);
    herd_proc *c = start(sp, SH("exit 0"), NULL, false);
    char line[32];
    read_line(pa[1], line, sizeof line);
    assert_string_equal(line, "ready");
    read_line(pb[1], line, sizeof line);
    assert_string_equal(line, "ready");
    assert_int_equal(herd_proc_wait(c, -1, NULL), 1);
    pid_t pids[3] = { herd_proc_pid(a), herd_proc_pid(b), herd_proc_pid(c) };

    herd_proc *all[3] = { a, b, c };
    herd_proc_exit ex[3];
    assert_int_equal(herd_proc_stop(all, 3, 0.3, ex), 0);
    assert_true(ex[0].known);
    assert_int_equal(ex[0].signal, SIGKILL);
    assert_int_equal(ex[1].signal, SIGTERM);
    assert_int_equal(ex[2].signal, 0);
    assert_int_equal(ex[2].status, 0);
    char buf[128];
    assert_string_equal(herd_proc_describe(&ex[0], buf, sizeof buf), "killed by signal 9 (Killed)");
    for (int i = 0; i < 3; i++) assert_no_child(pids[i]);
    close(pa[1]);
    close(pb[1]);
    for (int i = 0; i < 3; i++) herd_proc_free(all[i]);
    herd_spawner_free(sp);
    assert_int_equal(herd_proc_stop(NULL, 1, 1, NULL), -EINVAL);
}

/* Freeing the spawner ends its thread: what it started dies (SIGKILL). */
static void test_dies_with_spawner(void **state)
{
    (void)state;
    herd_spawner *sp;
    assert_int_equal(herd_spawner_new(&sp, NULL), 0);
    int pp[3];
    herd_proc *p = start(sp, SH("echo ready; exec sleep 1000"), pp, true);
    char line[32];
    read_line(pp[1], line, sizeof line);
    assert_string_equal(line, "ready");
    herd_spawner_free(sp);
    herd_proc_exit ex;
    assert_int_equal(herd_proc_wait(p, TU_WAIT_S, &ex), 1);
    assert_int_equal(ex.signal, SIGKILL);
    close(pp[1]);
    herd_proc_free(p);
}

/* A process that starts a child and is then SIGKILLed: the grandchild goes
 * too. The test is a subreaper, so the orphan comes back to it to be seen. */
static void test_dies_with_process(void **state)
{
    (void)state;
    assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
    int fd[2];
    assert_int_equal(pipe(fd), 0);
    pid_t mid = fork();
    assert_true(mid >= 0);
    if (mid == 0) {
        close(fd[0]);
        herd_spawner *sp;
        if (herd_spawner_new(&sp, NULL)) _exit(1);
        herd_proc_spec spec = { .argv = (const char *const[]){ "sleep", "1000", NULL } };
        herd_proc *p;
        if (herd_proc_start(sp, &spec, &p, NULL, NULL)) _exit(1);
        pid_t g = herd_proc_pid(p);
        if (write(fd[1], &g, sizeof g) != sizeof g) _exit(1);
        for (;;) pause();
    }
    close(fd[1]);
    pid_t g = 0;
    assert_int_equal(read(fd[0], &g, sizeof g), (ssize_t)sizeof g);
    close(fd[0]);
    assert_true(g > 0);
    assert_int_equal(kill(mid, SIGKILL), 0);
    int st;
    assert_int_equal(waitpid(mid, &st, 0), mid);
    assert_true(WIFSIGNALED(st));
    /* the grandchild, reparented to us, ends by SIGKILL */
    double end = tu_now() + TU_WAIT_S;
    pid_t r;
    while ((r = waitpid(g, &st, WNOHANG)) == 0 && tu_now() < end) tu_sleep_ms(5);
    assert_int_equal(r, g);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGKILL);
    assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 0), 0);
}

static void test_pipes_and_env(void **state)
{
    (void)state;
    setenv("HERD_T_KEEP", "kept", 1);
    setenv("HERD_T_OVER", "old", 1);
    const char *env[] = { "HERD_T_OVER=first", "HERD_T_NEW=new", "HERD_T_OVER=second", NULL };
    herd_proc_spec spec = {
        .argv = SH("read x; echo \"$x $HERD_T_KEEP $HERD_T_OVER $HERD_T_NEW\"; echo oops >&2; exit 5"),
        .env = env,
        .io = { HERD_PROC_PIPE, HERD_PROC_PIPE, HERD_PROC_PIPE },
    };
    herd_proc *p;
    int pp[3];
    herd_err err = { 0 };
    assert_int_equal(herd_proc_start(NULL, &spec, &p, pp, &err), 0);   /* forked by this thread */
    assert_true(pp[0] >= 0 && pp[1] >= 0 && pp[2] >= 0);
    assert_int_equal(write(pp[0], "hello\n", 6), 6);
    close(pp[0]);
    char line[128];
    read_line(pp[1], line, sizeof line);
    assert_string_equal(line, "hello kept second new");
    read_line(pp[2], line, sizeof line);
    assert_string_equal(line, "oops");
    herd_proc_exit ex;
    assert_int_equal(herd_proc_wait(p, TU_WAIT_S, &ex), 1);
    assert_int_equal(ex.status, 5);
    close(pp[1]);
    close(pp[2]);
    herd_proc_free(p);

    /* a descriptor of ours as its stdout */
    int fd[2];
    assert_int_equal(pipe(fd), 0);
    herd_proc_spec s2 = { .argv = SH("echo via-fd"), .io = { HERD_PROC_DEVNULL, HERD_PROC_FD }, .fd = { 0, fd[1] } };
    assert_int_equal(herd_proc_start(NULL, &s2, &p, NULL, &err), 0);
    close(fd[1]);
    read_line(fd[0], line, sizeof line);
    assert_string_equal(line, "via-fd");
    close(fd[0]);
    assert_int_equal(herd_proc_wait(p, TU_WAIT_S, &ex), 1);
    assert_int_equal(ex.status, 0);
    herd_proc_free(p);
}

static void test_cannot_run(void **state)
{
    (void)state;
    herd_spawner *sp;
    assert_int_equal(herd_spawner_new(&sp, NULL), 0);
    herd_err err = { 0 };
    herd_proc *p = (herd_proc *)&err;
    herd_proc_spec spec = { .argv = (const char *const[]){ "/nonexistent/herd-prog", NULL } };
    assert_int_equal(herd_proc_start(sp, &spec, &p, NULL, &err), -ENOENT);
    assert_null(p);
    assert_string_equal(err.msg, "cannot run /nonexistent/herd-prog: No such file or directory");
    spec.argv = (const char *const[]){ "herd-no-such-program", NULL };
    assert_int_equal(herd_proc_start(sp, &spec, &p, NULL, &err), -ENOENT);
    assert_string_equal(err.msg, "cannot run herd-no-such-program: not found in PATH");
    char junk[] = "/tmp/herd-test-proc-XXXXXX";              /* executable, but not a program */
    int fd = mkstemp(junk);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "\x01\x02junk\n", 7), 7);
    close(fd);
    assert_int_equal(chmod(junk, 0755), 0);
    spec.argv = (const char *const[]){ junk, NULL };
    assert_int_equal(herd_proc_start(sp, &spec, &p, NULL, &err), -ENOEXEC);
    unlink(junk);
    assert_non_null(strstr(err.msg, "Exec format error"));
    /* bad specs */
    spec.argv = (const char *const[]){ NULL };
    assert_int_equal(herd_proc_start(sp, &spec, &p, NULL, &err), -EINVAL);
    assert_int_equal(herd_proc_start(sp, NULL, &p, NULL, &err), -EINVAL);
    spec.argv = SH("exit 0");
    spec.io[1] = HERD_PROC_PIPE;                                  /* and no pipes to return */
    assert_int_equal(herd_proc_start(sp, &spec, &p, NULL, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "stdout"));
    spec.io[1] = HERD_PROC_FD;
    spec.fd[1] = -4;
    assert_int_equal(herd_proc_start(sp, &spec, &p, NULL, &err), -EINVAL);
    spec.io[1] = (herd_proc_io)17;
    assert_int_equal(herd_proc_start(sp, &spec, &p, NULL, &err), -EINVAL);
    /* every failed exec was reaped */
    errno = 0;
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);
    herd_spawner_free(sp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exit_status),
        cmocka_unit_test(test_stop_escalates),
        cmocka_unit_test(test_dies_with_spawner),
        cmocka_unit_test(test_dies_with_process),
        cmocka_unit_test(test_pipes_and_env),
        cmocka_unit_test(test_cannot_run),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
