/* tests/integration/test_preauth.c — nothing is spent on a peer before it
 * authenticates, and oversized task data fails a task, never a worker. A real
 * scheduler and raw TCP sockets: idle connects are closed after the hello
 * timeout and the scheduler's descriptors return to where they were; a frame
 * header announcing 200 MiB before hello closes the connection without the
 * scheduler's memory growing; a `herd scheduler` run under a low
 * RLIMIT_NOFILE and flooded logs its accept failures once per burst, not per
 * try, and takes a real client once the flood leaves. A real flow: a 300 MiB
 * argument is refused at submit; a task returning 300 MiB fails with the
 * size in its error and its worker stays connected (the next task runs on
 * it); dependency results that make a task's arguments too large fail that
 * task. (TLS handshakes that never finish: tests/unit/test_tls_cluster.c.) */
#include <herd/herd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dirent.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include "proto.h"         /* the wire protocol: opcodes, version */
#include "../support/testutil.h"
#include "../support/rawwire.h"

#define TOKEN "preauth-token-0123456789"
#define BIG ((size_t)300 << 20)
#define BIG_WAIT_S (4 * TU_WAIT_S)   /* making and packing 300 MiB is slow under the sanitizers */

/* ---- tasks ---- */
static int t_pid(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    *out = herd_int(getpid());
    return 0;
}
HERD_TASK(t_pid);

static int t_len(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    size_t n = 0;
    for (size_t i = 0; i < herd_len(args); i++) n += herd_len(herd_at(args, i));
    *out = herd_int((int64_t)n);
    return 0;
}
HERD_TASK(t_len);

/* args: [n, gate path or nil]: once the gate file exists, n bytes. */
static int t_big(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    const char *gate = herd_as_str(herd_at(args, 1));
    double end = tu_now() + TU_WAIT_S;
    while (gate && access(gate, F_OK) != 0 && tu_now() < end) tu_sleep_ms(10);
    size_t n = (size_t)herd_as_int(herd_at(args, 0));
    char *p = calloc(1, n);
    if (!p) return -ENOMEM;
    *out = herd_bytes(p, n);
    free(p);
    return *out ? 0 : -ENOMEM;
}
HERD_TASK(t_big);

/* ---- the process's own resources (the scheduler runs in it) ---- */
static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    assert_non_null(f);
    char line[256];
    long kib = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1) break;
    fclose(f);
    assert_true(kib > 0);
    return kib;
}

static herd_scheduler *sched_start(tu_log *log)
{
    herd_scheduler *s = NULL;
    herd_err err = { 0 };
    herd_scheduler_opts o = { .listen = "tcp://127.0.0.1:0", .token = TOKEN, .allowed_failures = -1,
                              .log = tu_log_sink, .log_ud = log };
    if (herd_scheduler_start(&s, &o, &err)) fail_msg("herd_scheduler_start: %s", err.msg);
    return s;
}

/* A client's hello with the right token is welcomed. */
static void welcomed(const char *address)
{
    int fd = raw_connect(address);
    send_value(fd, hello(TOKEN, HERD_PROTO_VERSION, ROLE_CLIENT, "after"));
    herd_value *m = read_message(fd);
    assert_int_equal(herd_as_int(herd_at(m, 0)), OP_WELCOME);
    herd_value_free(m);
    close(fd);
}

/* Connections that send nothing are closed after the hello timeout, and every
 * descriptor the scheduler took for them is given back. */
static void test_idle_connects_closed(void **state)
{
    tu_log log;
    tu_log_init(&log);
    log.echo_level = HERD_LOG_ERROR + 1;
    herd_scheduler *s = sched_start(&log);
    const char *address = herd_scheduler_address(s);
    int base = tu_count_fds();
    enum { N = 40 };
    int fds[N];
    for (int i = 0; i < N; i++) fds[i] = raw_connect(address);
    for (int i = 0; i < N; i++) assert_true(read_until_closed(fds[i], NULL));
    for (int i = 0; i < N; i++) close(fds[i]);
    double end = tu_now() + TU_WAIT_S;
    while (tu_count_fds() != base && tu_now() < end) tu_sleep_ms(20);
    assert_int_equal(tu_count_fds(), base);
    assert_true(tu_log_has_line(&log, "refused connection", "no hello within"));
    welcomed(address);
    herd_scheduler_stop(s);
    tu_log_free(&log);
}

/* A frame header announcing 200 MiB before hello: refused from the header,
 * nothing of the body buffered. */
static void test_preauth_frame_bounded(void **state)
{
    tu_log log;
    tu_log_init(&log);
    log.echo_level = HERD_LOG_ERROR + 1;
    herd_scheduler *s = sched_start(&log);
    const char *address = herd_scheduler_address(s);
    static char chunk[1 << 20];
    memset(chunk, 0x90, sizeof chunk);        /* msgpack: empty arrays, were it ever parsed */
    long before = rss_kib();
    int fd = raw_connect(address);
    uint32_t be = htonl(200u << 20);
    send_all(fd, &be, 4);
    size_t sent = 0;
    while (sent < (200u << 20)) {              /* until the scheduler closes (EPIPE/ECONNRESET) */
        ssize_t n = send(fd, chunk, sizeof chunk, MSG_NOSIGNAL);
        if (n <= 0) break;
        sent += (size_t)n;
    }
    assert_true(sent < (200u << 20));
    close(fd);
    assert_true(tu_log_wait_line(&log, "frame length", "before hello", TU_WAIT_S));
    long grew = rss_kib() - before;
    if (grew > 4096) fail_msg("the scheduler grew by %ld KiB reading a pre-auth frame", grew);
    welcomed(address);
    herd_scheduler_stop(s);
    tu_log_free(&log);
}

/* ---- accept under descriptor exhaustion (a `herd scheduler` process) ---- */
static pid_t herd_scheduler_proc(const char *logfile, rlim_t nofile, char *address, size_t cap)
{
    char exe[4096], bin[4200];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = '\0';
    *strrchr(exe, '/') = '\0';                 /* $(BUILD)/tests */
    snprintf(bin, sizeof bin, "%s/../bin/herd", exe);
    int out[2];
    assert_int_equal(pipe(out), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct rlimit rl = { nofile, nofile };
        dup2(out[1], 1);
        close(out[0]);
        close(out[1]);
        prctl(PR_SET_PDEATHSIG, SIGKILL);     /* a failed test leaves no scheduler behind */
        if (setrlimit(RLIMIT_NOFILE, &rl)) _exit(126);
        execl(bin, bin, "scheduler", "--listen", "tcp://127.0.0.1:0", "--token", TOKEN,
              "--log-file", logfile, (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    FILE *f = fdopen(out[0], "r");
    assert_non_null(f);
    if (!fgets(address, (int)cap, f)) fail_msg("herd scheduler printed no address");
    fclose(f);
    address[strcspn(address, "\n")] = '\0';
    return pid;
}

static int count_lines(const char *text, const char *word)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, word)); p += strlen(word)) n++;
    return n;
}

static void test_accept_backoff(void **state)
{
    char dir[64], logfile[128], address[256];
    tu_mkdtemp(dir, sizeof dir);
    snprintf(logfile, sizeof logfile, "%s/sched.log", dir);
    pid_t pid = herd_scheduler_proc(logfile, 32, address, sizeof address);
    enum { N = 100 };                          /* the listen backlog (128) holds what is not accepted */
    int fds[N];
    for (int i = 0; i < N; i++) fds[i] = raw_connect(address);
    double end = tu_now() + TU_WAIT_S;
    char *text = NULL;
    while (tu_now() < end) {
        free(text);
        text = tu_read_file(logfile);
        if (text && strstr(text, "cannot accept connections")) break;
        tu_sleep_ms(20);
    }
    assert_non_null(text);
    assert_non_null(strstr(text, "Too many open files"));
    for (int i = 0; i < N; i++) close(fds[i]);
    welcomed(address);                         /* the scheduler recovers once the flood leaves */
    end = tu_now() + TU_WAIT_S;                /* and says so once accepts stop failing */
    while (tu_now() < end) {
        free(text);
        text = tu_read_file(logfile);
        if (text && strstr(text, "accepting connections again after")) break;
        tu_sleep_ms(20);
    }
    free(text);
    kill(pid, SIGTERM);
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    text = tu_read_file(logfile);
    assert_non_null(text);
    int bursts = count_lines(text, "cannot accept connections");
    if (bursts < 1 || bursts > 2 || strlen(text) > 65536)
        fail_msg("accept failures logged %d times (%zu bytes of log):\n%.2000s", bursts, strlen(text), text);
    assert_non_null(strstr(text, "accepting connections again after"));
    free(text);
    tu_rmtree(dir);
}

/* ---- oversized task data ---- */
static int64_t pid_of_worker(herd_runner *r)
{
    herd_future *f = tu_submit(r, "t_pid", herd_array(), NULL);
    int64_t pid = tu_int_result(f);
    herd_future_release(f);
    return pid;
}

static void test_oversized_data(void **state)
{
    tu_log log;
    tu_log_init(&log);
    /* with data_transfer: inline, where results and arguments travel inline
     * (otherwise big results stay on their worker: tests/integration/test_dataplane.c) */
    herd_runner *r = tu_flow("{n_workers: 1, threads_per_worker: 2}",
                             "{listen: 'tcp://127.0.0.1:0', data_transfer: inline}", 1, &log);
    int64_t wpid = pid_of_worker(r);
    herd_err err = { 0 };
    const char *num = "3145728";             /* 300 MiB = 314572800 bytes, and a few for the encoding */

    /* an argument of 300 MiB: refused at submit, naming its size and the limit */
    char *p = calloc(1, BIG);
    assert_non_null(p);
    herd_future *f = (herd_future *)1;
    herd_value *args = herd_array();
    assert_int_equal(herd_array_push(args, herd_bytes(p, BIG)), 0);
    free(p);
    assert_int_equal(herd_submit(r, "t_len", args, &f, &err), -HERD_EARG);
    assert_null(f);
    assert_non_null(strstr(err.msg, num));
    assert_non_null(strstr(err.msg, "-byte limit"));

    /* a result of 300 MiB: the task fails with the size; the worker stays */
    f = tu_submit(r, "t_big", herd_tuple("In", (int64_t)BIG), NULL);
    const herd_value *v;
    assert_int_equal(herd_future_result(f, BIG_WAIT_S, &v, &err), -HERD_EFAILED);
    assert_int_equal(herd_future_state(f), HERD_FAILED);
    const char *why = herd_future_error(f);
    assert_non_null(why);
    if (!strstr(why, "result of") || !strstr(why, "exceeds the") || !strstr(why, num))
        fail_msg("error \"%s\" does not give the result's size (%s) and the limit", why, num);
    herd_future_release(f);
    assert_int_equal(pid_of_worker(r), wpid);               /* the next task runs on the same worker */

    /* two results of 100 MiB put into one task's arguments: that task fails */
    char dir[64], gate[128];
    tu_mkdtemp(dir, sizeof dir);
    snprintf(gate, sizeof gate, "%s/go", dir);
    herd_future *a = tu_submit(r, "t_big", herd_tuple("Is", (int64_t)100 << 20, gate), NULL);
    herd_future *b = tu_submit(r, "t_big", herd_tuple("Is", (int64_t)100 << 20, gate), NULL);
    herd_future *c = tu_submit(r, "t_len", herd_tuple("ff", a, b), NULL);   /* not done yet: the scheduler fills them in */
    assert_int_equal(tu_write_file(gate, "go"), 0);
    assert_int_equal(herd_future_result(c, BIG_WAIT_S, &v, &err), -HERD_EFAILED);
    why = herd_future_error(c);
    if (!why || !strstr(why, "arguments of") || !strstr(why, "-byte limit"))
        fail_msg("error \"%s\" does not say the arguments are too large", why ? why : "(none)");
    herd_future_release(a);
    herd_future_release(b);
    herd_future_release(c);
    tu_rmtree(dir);

    assert_int_equal(pid_of_worker(r), wpid);
    assert_int_equal(herd_runner_workers(r, NULL), 1);
    assert_false(tu_log_has_line(&log, "left", NULL));      /* no worker was dropped */
    tu_flow_end(r);
    tu_log_free(&log);
}

int main(int argc, char **argv)
{
    herd_init(&argc, &argv);
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idle_connects_closed),
        cmocka_unit_test(test_preauth_frame_bounded),
        cmocka_unit_test(test_accept_backoff),
        cmocka_unit_test(test_oversized_data),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
