/* tests/unit/test_control.c — the control calls a flow's client makes to a
 * scheduler over the wire (OP_CONTROL / OP_REPLY): "load" (what adaptive
 * scaling reads), "drain" and "close_workers". A shared scheduler (`herd
 * scheduler`) answers load and refuses the other two; one a provider started
 * for a single cluster (owned, --herd-scheduler) carries them out; the load
 * counts tasks by state as they move; "dashboard" describes the HTTP
 * endpoint, which the client turns into links (herd_sched_http_links);
 * notifications carry adaptive decisions and the provider's list. Real
 * worker processes (this binary re-run) and a real TCP socket. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <herd/herd.h>
#include "scheduler.h"
#include "metrics.h"
#include "remote.h"

#include <event2/buffer.h>
#include "worker.h"

#define TOKEN "control-test-token"

static void quiet(void *ud, int level, const char *line) { (void)ud; (void)level; (void)line; }

typedef struct fixture {
    herd_sched *s;
    char addr[256];
    herd_client cl;
    herd_remote *r;
} fixture;

static void up(fixture *f, int owned, const char *http)
{
    memset(f, 0, sizeof *f);
    herd_err err = { 0 };
    herd_sched_cfg cfg = { .listen = "tcp://127.0.0.1:0", .token = TOKEN, .heartbeat_interval = 0.2,
                           .heartbeat_timeout = 10, .allowed_failures = 3, .log = quiet, .owned = owned,
                           .http = http };
    if (herd_sched_start(&f->s, &cfg, f->addr, sizeof f->addr, &err)) fail_msg("scheduler: %s", err.msg);
    assert_int_equal(herd_client_init(&f->cl, 0, &herd_remote_tp, NULL), 0);
    if (herd_remote_connect(f->addr, TOKEN, NULL, "control-client", 5, &f->cl, &f->r, &err))
        fail_msg("connect: %s", err.msg);
    f->cl.tp_ud = f->r;
}

static void down(fixture *f)
{
    herd_remote_close(f->r);
    herd_client_shutdown(&f->cl, HERD_CANCELLED, "test over");
    herd_client_destroy(&f->cl);
    herd_sched_stop(f->s);
}

/* A worker process: this binary in worker mode (herd_init in main). */
static pid_t worker(const fixture *f, const char *name, int nthreads)
{
    char exe[PATH_MAX], nt[16];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = '\0';
    snprintf(nt, sizeof nt, "%d", nthreads);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        setenv("HERD_SCHEDULER_ADDRESS", f->addr, 1);
        setenv("HERD_TOKEN", TOKEN, 1);
        setenv("HERD_LOG_LEVEL", "error", 1);
        execl(exe, exe, "--herd-worker", "--herd-name", name, "--herd-nthreads", nt, (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* Wait for pid to exit; its exit status, or -1 after secs. */
static int exit_of(pid_t pid, double secs)
{
    for (int i = 0; i < (int)(secs * 100); i++) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

static const herd_sched_wload *worker_entry(const herd_sched_load *load, const char *name)
{
    for (size_t i = 0; i < load->nworkers; i++)
        if (!strcmp(load->workers[i].name, name)) return &load->workers[i];
    return NULL;
}

static void test_shared_scheduler_answers_load_only(void **state)
{
    fixture f;
    up(&f, 0, NULL);
    pid_t w = worker(&f, "cw-1", 2);
    herd_err err = { 0 };
    if (herd_remote_wait_workers(f.r, 1, 10, &err)) fail_msg("%s", err.msg);
    herd_sched_load load;
    if (herd_remote_control(f.r, "load", NULL, 5, &load, NULL, &err)) fail_msg("load: %s", err.msg);
    assert_int_equal(load.ready, 0);                          /* nothing ready */
    assert_int_equal(load.nworkers, 1);
    const herd_sched_wload *e = worker_entry(&load, "cw-1");
    assert_non_null(e);
    assert_int_equal(e->nthreads, 2);                         /* its threads */
    assert_int_equal(e->closing, 0);
    herd_sched_load_free(&load);

    /* the same through the ops adaptive scaling uses */
    herd_sched_load l;
    assert_int_equal(herd_remote_ops.get_load(f.r, &l), 0);
    assert_int_equal(l.nworkers, 1);
    assert_string_equal(l.workers[0].name, "cw-1");
    herd_sched_load_free(&l);
    assert_int_equal(herd_remote_ops.has_worker(f.r, "cw-1"), 1);
    assert_int_equal(herd_remote_ops.has_worker(f.r, "cw-2"), 0);

    /* drain and close_workers are refused, with the reason */
    assert_int_equal(herd_remote_control(f.r, "drain", "cw-1", 5, NULL, NULL, &err), -HERD_EARG);
    if (!strstr(err.msg, "drain") || !strstr(err.msg, "shared")) fail_msg("unexpected error: %s", err.msg);
    assert_int_equal(herd_remote_control(f.r, "close_workers", "no", 5, NULL, NULL, &err), -HERD_EARG);
    if (!strstr(err.msg, "shared")) fail_msg("unexpected error: %s", err.msg);
    assert_int_equal(herd_remote_control(f.r, "reboot", NULL, 5, NULL, NULL, &err), -HERD_EARG);
    if (!strstr(err.msg, "unknown control verb")) fail_msg("unexpected error: %s", err.msg);
    assert_int_equal(herd_sched_nworkers(f.s, NULL), 1);     /* still there */
    down(&f);
    assert_int_not_equal(exit_of(w, 10), -1);
}

static void test_owned_scheduler_drains_and_closes(void **state)
{
    fixture f;
    up(&f, 1, NULL);
    pid_t w1 = worker(&f, "cw-1", 1), w2 = worker(&f, "cw-2", 1);
    herd_err err = { 0 };
    if (herd_remote_wait_workers(f.r, 2, 10, &err)) fail_msg("%s", err.msg);
    assert_int_equal(herd_remote_control(f.r, "drain", "nobody", 5, NULL, NULL, &err), -HERD_EARG);
    if (!strstr(err.msg, "no such worker")) fail_msg("unexpected error: %s", err.msg);
    /* an idle worker drained is told to close, and exits cleanly */
    assert_int_equal(herd_remote_ops.drain(f.r, "cw-1"), 0);
    assert_int_equal(exit_of(w1, 10), 0);
    for (int i = 0; i < 500 && herd_remote_ops.has_worker(f.r, "cw-1"); i++) usleep(10000);
    assert_int_equal(herd_remote_ops.has_worker(f.r, "cw-1"), 0);
    assert_int_equal(herd_remote_ops.nworkers(f.r, NULL), 1);
    /* close_workers: every worker leaves with status 0 */
    assert_int_equal(herd_remote_control(f.r, "close_workers", "test over", 5, NULL, NULL, &err), 0);
    assert_int_equal(exit_of(w2, 10), 0);
    down(&f);
}

static int nap(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    usleep((useconds_t)herd_as_int(herd_at(args, 0)) * 1000);
    *out = herd_nil();
    return 0;
}
HERD_TASK(nap);

/* The load counts tasks by state as they move (waiting on a dependency,
 * ready, running), and is back to zero once they are done. */
static void test_load_counts_tasks(void **state)
{
    fixture f;
    up(&f, 1, NULL);
    pid_t w = worker(&f, "cw-1", 1);
    herd_err err = { 0 };
    if (herd_remote_wait_workers(f.r, 1, 10, &err)) fail_msg("%s", err.msg);
    herd_future *fs[4];
    for (int i = 0; i < 3; i++)
        if (herd_client_submit(&f.cl, "nap", herd_tuple("i", 400), NULL, &fs[i], &err)) fail_msg("%s", err.msg);
    /* a fourth waits for the first */
    if (herd_client_submit(&f.cl, "nap", herd_tuple("f", fs[0]), NULL, &fs[3], &err)) fail_msg("%s", err.msg);
    herd_sched_load l;
    int ok = 0;
    for (int i = 0; i < 200 && !ok; i++) {     /* until the scheduler has them all */
        assert_int_equal(herd_remote_ops.get_load(f.r, &l), 0);
        ok = l.running == 1 && l.ready == 2 && l.waiting == 1;
        if (!ok) herd_sched_load_free(&l), usleep(5000);
    }
    if (!ok) fail_msg("load: %d waiting, %d ready, %d running", l.waiting, l.ready, l.running);
    assert_int_equal(l.nworkers, 1);
    assert_int_equal(l.workers[0].busy, 1);
    assert_true(l.task_seconds > 0);
    herd_sched_load_free(&l);
    for (int i = 0; i < 4; i++) {
        const herd_value *v;
        if (herd_future_result(fs[i], 20, &v, &err)) fail_msg("task %d: %s", i, err.msg);
        herd_future_release(fs[i]);
    }
    assert_int_equal(herd_remote_ops.get_load(f.r, &l), 0);
    assert_int_equal(l.waiting + l.ready + l.running, 0);
    herd_sched_load_free(&l);
    assert_int_equal(herd_remote_control(f.r, "close_workers", NULL, 5, NULL, NULL, &err), 0);
    assert_int_equal(exit_of(w, 10), 0);
    down(&f);
}

static void test_closed_connection(void **state)
{
    fixture f;
    up(&f, 1, NULL);
    herd_sched_stop(f.s);             /* the scheduler goes away under the client */
    herd_err err = { 0 };
    int rc = herd_remote_control(f.r, "load", NULL, 5, NULL, NULL, &err);
    assert_true(rc == -HERD_ECLOSED);
    assert_non_null(strstr(err.msg, "load"));
    herd_remote_close(f.r);
    herd_client_shutdown(&f.cl, HERD_CANCELLED, "test over");
    herd_client_destroy(&f.cl);
}

/* "dashboard": refused without an endpoint; on every interface, with the
 * token, the links name the host the client dials and carry a one-time
 * login link that works; on loopback, no login link. "report": the whole
 * status report, with or without an endpoint. */
static void test_dashboard_links(void **state)
{
    fixture f;
    herd_err err = { 0 };
    char *desc = NULL, url[300], login[400];
    int lo = -1;
    up(&f, 0, NULL);
    assert_int_equal(herd_remote_control(f.r, "dashboard", NULL, 5, NULL, &desc, &err), -HERD_EARG);
    if (!strstr(err.msg, "no HTTP endpoint")) fail_msg("unexpected error: %s", err.msg);
    assert_null(desc);
    down(&f);

    up(&f, 0, "0.0.0.0:0");
    if (herd_remote_control(f.r, "dashboard", NULL, 5, NULL, &desc, &err)) fail_msg("dashboard: %s", err.msg);
    assert_int_equal(herd_sched_http_links(desc, "127.0.0.1", url, sizeof url, login, sizeof login, &lo), 0);
    assert_int_equal(lo, 0);
    assert_true(strncmp(url, "http://127.0.0.1:", 17) == 0);
    assert_string_equal(url, herd_sched_http_url(f.s));         /* what the scheduler itself prints */
    assert_string_equal(login, herd_sched_http_login(f.s));
    assert_int_equal(herd_sched_http_links(desc, "::1", url, sizeof url, login, sizeof login, &lo), 0);
    assert_true(strncmp(url, "http://[::1]:", 13) == 0);
    free(desc);
    down(&f);

    up(&f, 0, "127.0.0.1:0");
    /* "report": the status JSON a performance report inlines */
    if (herd_remote_control(f.r, "report", NULL, 5, NULL, &desc, &err)) fail_msg("report: %s", err.msg);
    assert_true(strncmp(desc, "{\"version\":", 11) == 0);
    assert_non_null(strstr(desc, "\"runs\":{\"next\":0,\"runs\":[]}"));
    free(desc);
    if (herd_remote_control(f.r, "dashboard", NULL, 5, NULL, &desc, &err)) fail_msg("dashboard: %s", err.msg);
    assert_int_equal(herd_sched_http_links(desc, "10.0.0.9", url, sizeof url, login, sizeof login, &lo), 0);
    assert_int_equal(lo, 1);                                      /* its own loopback, not 10.0.0.9 */
    assert_string_equal(url, herd_sched_http_url(f.s));
    assert_string_equal(login, "");
    free(desc);
    down(&f);

    const char *bad[] = { "", "http 0.0.0.0", "ftp 1.2.3.4 80 -", "http 1.2.3.4 0 -", "http 1.2.3.4 70000 -", NULL };
    for (int i = 0; bad[i]; i++)
        assert_int_equal(herd_sched_http_links(bad[i], "h", url, sizeof url, login, sizeof login, &lo), -HERD_EPROTO);
}

/* The report `which` of the scheduler, as text (malloc'd). */
static char *report(herd_sched *s, const char *which)
{
    struct evbuffer *b = evbuffer_new();
    assert_int_equal(herd_sched_report(s, which, b), 0);
    size_t n = evbuffer_get_length(b);
    char *t = calloc(1, n + 1);
    evbuffer_remove(b, t, n);
    evbuffer_free(b);
    return t;
}

/* Notifications (seq 0, no answer) for the dashboard of an owned scheduler
 * a provider runs: adaptive decisions and the provider's list reach its
 * report; a shared scheduler ignores them, and text it cannot read is
 * dropped. A load call after them is answered after they were handled (one
 * connection, in order). */
static void test_notifications(void **state)
{
    for (int owned = 0; owned < 2; owned++) {
        fixture f;
        herd_err err = { 0 };
        up(&f, owned, NULL);
        herd_worker_info info[2] = { { .name = "w-0", .state = HERD_WORKER_RUNNING, .pid = 7, .host = "h1" },
                                     { .name = "w-1", .state = HERD_WORKER_FAILED, .host = "h2", .detail = "exit 3" } };
        char *text = herd_metrics_provider_text("ssh.SSHCluster", info, 2);
        assert_non_null(text);
        assert_int_equal(herd_remote_notify(f.r, "provider", "{not json"), 0);
        assert_int_equal(herd_remote_notify(f.r, "note", "x"), 0);
        assert_int_equal(herd_remote_notify(f.r, "note", "3 1 load: 12 tasks queued"), 0);
        assert_int_equal(herd_remote_notify(f.r, "provider", text), 0);
        free(text);
        herd_sched_load l;
        if (herd_remote_control(f.r, "load", NULL, 5, &l, NULL, &err)) fail_msg("load: %s", err.msg);
        herd_sched_load_free(&l);
        char *ad = report(f.s, "adaptive"), *pr = report(f.s, "provider");
        if (owned) {
            assert_non_null(strstr(ad, "\"desired\":3"));
            assert_non_null(strstr(ad, "\"reason\":\"load: 12 tasks queued\""));
            assert_non_null(strstr(pr, "\"provider\":\"ssh.SSHCluster\""));
            assert_non_null(strstr(pr, "{\"name\":\"w-1\",\"state\":\"failed\",\"pid\":0,\"host\":\"h2\",\"detail\":\"exit 3\"}"));
        } else {
            assert_non_null(strstr(ad, "\"desired\":null"));
            assert_string_equal(pr, "null\n");
        }
        free(ad);
        free(pr);
        down(&f);
    }
}

int main(int argc, char **argv)
{
    herd_init(&argc, &argv);          /* re-run as a worker */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shared_scheduler_answers_load_only),
        cmocka_unit_test(test_owned_scheduler_drains_and_closes),
        cmocka_unit_test(test_load_counts_tasks),
        cmocka_unit_test(test_closed_connection),
        cmocka_unit_test(test_dashboard_links),
        cmocka_unit_test(test_notifications),
    };
    return cmocka_run_group_tests_name("control calls (OP_CONTROL)", tests, NULL, NULL);
}
