/* tests/integration/test_observe.c — the scheduler's HTTP endpoint on a real
 * LocalCluster (client_kwargs.dashboard_address, port 0): /health, /metrics
 * read by Prometheus's own text parser (python3-prometheus-client,
 * tests/support/check_observe.py), /api/v1 JSON read by Python's json, the
 * live page loaded in headless Chromium while a flow runs (no console
 * message, the workers and the flow's progress shown; the screenshot kept
 * in $BUILD/observe-dashboard.png), `herd status` (text, --json, --watch),
 * bad input (malformed requests, huge headers, slow clients, 404, 405)
 * that leaves the scheduler working, and the token on a non-loopback
 * address (an interface the test creates, as root): 401 without it,
 * Bearer, the one-time login link and its cookie. */
#include <herd/herd.h>

#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <pty.h>
#include <sys/socket.h>

#include "../support/testutil.h"
#include "../support/http.h"
#include "proto.h"
#include "../support/rawwire.h"   /* a HELLO by hand */

static char build_dir[400], herd_bin[450], checker[500];

/* ---- tasks ---- */
static int obs_square(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    int64_t x = herd_as_int(herd_at(args, 0));
    *out = herd_int(x * x);
    return 0;
}
HERD_TASK(obs_square);

/* Runs until the file args[0] exists (at most a minute). */
static int obs_block(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    const char *path = herd_as_str(herd_at(args, 0));
    for (int i = 0; i < 6000 && access(path, F_OK) != 0; i++) tu_sleep_ms(10);
    *out = herd_int(1);
    return 0;
}
HERD_TASK(obs_block);

static int obs_fail(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    return herd_task_fail(ctx, "obs_fail fails on purpose");
}
HERD_TASK(obs_fail);

/* ---- raw sockets for bad input ---- */
static void host_port(const char *url, char *host, size_t cap, int *port)
{
    const char *h = strstr(url, "://") + 3;
    const char *colon = strrchr(h, ':');
    snprintf(host, cap, "%.*s", (int)(colon - h), h);
    *port = atoi(colon + 1);
}

static int dial(const char *url)
{
    char host[64];
    int port;
    host_port(url, host, sizeof host, &port);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    assert_int_equal(inet_pton(AF_INET, host, &a.sin_addr), 1);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

/* Send data, then read what comes back until the peer closes or timeout_s. */
static char *raw(const char *url, const char *data, size_t len, double timeout_s)
{
    int fd = dial(url);
    size_t off = 0;
    while (off < len) {
        ssize_t w = send(fd, data + off, len - off, MSG_NOSIGNAL);
        if (w <= 0) break;             /* the server may close before reading it all */
        off += (size_t)w;
    }
    size_t cap = 65536, n = 0;
    char *buf = calloc(1, cap + 1);
    double end = tu_now() + timeout_s;
    while (n < cap && tu_now() < end) {
        struct pollfd p = { fd, POLLIN, 0 };
        if (poll(&p, 1, 100) <= 0) continue;
        ssize_t r = recv(fd, buf + n, cap - n, 0);
        if (r <= 0) break;
        n += (size_t)r;
    }
    close(fd);
    return buf;
}

static void check_flow_still_works(herd_runner *r)
{
    herd_future *f = tu_submit(r, "obs_square", herd_tuple("i", 12), NULL);
    assert_int_equal(tu_int_result(f), 144);
}

/* python3 tests/support/check_observe.py ARGS...: 0 when it agrees. */
static int check(const char *fmt, ...)
{
    char args[1500], cmd[2100];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s %s", checker, args);   /* Debian's: python3-prometheus-client */
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A LocalCluster of nworkers x threads with the dashboard (client_kwargs
 * client: NULL for 127.0.0.1, port 0), its log in *log, its URL in url. */
static herd_runner *dash_flow(int nworkers, int threads, const char *client, tu_log *log, char *url, size_t cap)
{
    char ck[100];
    snprintf(ck, sizeof ck, "{n_workers: %d, threads_per_worker: %d}", nworkers, threads);
    tu_log_init(log);
    herd_runner *r = tu_flow(ck, client ? client : "{dashboard_address: '127.0.0.1:0'}", nworkers, log);
    tu_dashboard_links(log, url, cap, NULL, 0);
    return r;
}

static void dash_end(herd_runner *r, tu_log *log)
{
    tu_flow_end(r);
    tu_log_free(log);
}

/* `herd ARGS` (env first when given) with its output in dir/out: its exit
 * status, the output in *text (malloc'd). */
static int herd_cmd(const char *dir, const char *env, char **text, const char *fmt, ...)
{
    char args[2000], cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "%s %s %s > %s/out 2>&1", env ? env : "", herd_bin, args, dir);
    int st = system(cmd);
    snprintf(cmd, sizeof cmd, "%s/out", dir);
    *text = tu_read_file(cmd);
    assert_non_null(*text);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void need_chromium(const char *what)
{
    if (access("/usr/bin/chromium", X_OK) != 0) {
        fprintf(stderr, "\n*** SKIPPED: the %s test needs Chromium (apt-get install chromium) ***\n\n", what);
        skip();
    }
}

/* Headless Chromium on url: its DOM after budget_ms of its scripts in
 * dir/dom.html (its console in dir/chromium.log, which must hold no
 * message of the page), then its screenshot in build_dir/shot. */
static void chromium(const char *dir, const char *url, int budget_ms, const char *shot)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "cd %s && timeout 120 chromium --headless --no-sandbox --disable-gpu --no-first-run --user-data-dir=%s/profile "
             "--enable-logging=stderr --v=0 --virtual-time-budget=%d --window-size=1280,900 --dump-dom %s "
             "> dom.html 2> chromium.log && timeout 120 chromium --headless --no-sandbox --disable-gpu --no-first-run "
             "--user-data-dir=%s/profile --virtual-time-budget=%d --window-size=1280,900 --hide-scrollbars "
             "--screenshot=%s/%s %s > /dev/null 2>&1",
             dir, dir, budget_ms, url, dir, budget_ms, build_dir, shot, url);
    int st = system(cmd);
    if (st != 0) {
        snprintf(cmd, sizeof cmd, "tail -30 %s/chromium.log >&2", dir);
        if (system(cmd)) {}
    }
    assert_int_equal(st, 0);
    /* no console message of the page (Chromium logs them as CONSOLE lines) */
    snprintf(cmd, sizeof cmd, "grep -q 'CONSOLE' %s/chromium.log", dir);
    if (system(cmd) == 0) {
        snprintf(cmd, sizeof cmd, "grep CONSOLE %s/chromium.log >&2", dir);
        if (system(cmd)) {}
        fail_msg("%s logged to its console", url);
    }
    snprintf(cmd, sizeof cmd, "%s/%s", build_dir, shot);
    assert_int_equal(access(cmd, R_OK), 0);
}

/* ---- the tests ---- */

static void test_health_metrics_api(void **state)
{
    tu_log log;
    char url[300];
    herd_runner *r = dash_flow(2, 2, NULL, &log, url, sizeof url);
    assert_true(strncmp(url, "http://127.0.0.1:", 17) == 0);

    herd_future *fs[20];
    for (int i = 0; i < 20; i++) fs[i] = tu_submit(r, "obs_square", herd_tuple("i", i), NULL);
    for (int i = 0; i < 20; i++) assert_int_equal(tu_int_result(fs[i]), i * i);

    tu_resp h = tu_get(url, "/health", NULL);
    assert_int_equal(h.code, 200);
    assert_string_equal(h.body, "ok\n");
    tu_resp_free(&h);
    /* Prometheus's parser reads it all; workers 2, obs_square completed 20 times */
    assert_int_equal(check("metrics %s/metrics 2 obs_square 20", url), 0);
    assert_int_equal(check("api %s/api/v1/status 2 obs_square 20", url), 0);
    /* each part on its own */
    const char *parts[] = { "workers", "tasks", "runs", "adaptive", "logs" };
    for (size_t i = 0; i < sizeof parts / sizeof *parts; i++) {
        char path[64];
        snprintf(path, sizeof path, "/api/v1/%s", parts[i]);
        tu_resp j = tu_get(url, path, NULL);
        assert_int_equal(j.code, 200);
        assert_non_null(strstr(j.headers, "application/json"));
        tu_resp_free(&j);
    }
    tu_resp n = tu_get(url, "/api/v1/nothing", NULL);
    assert_int_equal(n.code, 404);
    tu_resp_free(&n);
    tu_resp page = tu_get(url, "/", NULL);
    assert_int_equal(page.code, 200);
    assert_non_null(strstr(page.body, "<canvas id=\"stream\">"));
    assert_true(page.n < 150 * 1024);
    tu_resp_free(&page);
    dash_end(r, &log);
}

static void test_bad_input(void **state)
{
    tu_log log;
    char url[300];
    herd_runner *r = dash_flow(1, 2, NULL, &log, url, sizeof url);

    /* slow clients: many connections that never finish their request */
    int slow[40];
    for (int i = 0; i < 40; i++) {
        slow[i] = dial(url);
        assert_true(send(slow[i], "GET /metrics HTTP/1.1\r\nHost: x\r\n", 32, MSG_NOSIGNAL) == 32);
    }
    char *out = raw(url, "GARBAGE\r\n\r\n", 11, 10);
    assert_non_null(strstr(out, "400"));
    free(out);
    out = raw(url, "GET / HTTP/9.9\r\n\r\n", 18, 10);
    assert_null(strstr(out, "200 OK"));
    free(out);
    out = raw(url, "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 15, 10);   /* a TLS hello to plain HTTP */
    assert_null(strstr(out, "200 OK"));
    free(out);
    /* headers beyond the limit: refused, not buffered */
    size_t big = 200 * 1024;
    char *huge = malloc(big + 64);
    int k = snprintf(huge, 64, "GET /health HTTP/1.1\r\nX-Big: ");
    memset(huge + k, 'a', big);
    memcpy(huge + k + big, "\r\n\r\n", 5);
    out = raw(url, huge, (size_t)k + big + 4, 10);
    assert_null(strstr(out, "200 OK"));
    free(out);
    /* a huge request line */
    memcpy(huge, "GET /", 5);
    memset(huge + 5, 'a', big);
    memcpy(huge + 5 + big, " HTTP/1.1\r\n\r\n", 14);
    out = raw(url, huge, big + 5 + 13, 10);
    assert_null(strstr(out, "200 OK"));
    free(out);
    free(huge);
    /* methods other than GET/HEAD, a body */
    out = raw(url, "POST /api/v1/status HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc", 64, 10);
    assert_true(strstr(out, "HTTP/1.1 501") || strstr(out, "HTTP/1.1 405"));   /* evhttp answers 501 */
    free(out);
    out = raw(url, "GET /api/v1/runs?since_run=%zz&x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 73, 10);
    assert_non_null(strstr(out, "HTTP/1.1"));
    free(out);
    tu_resp nf = tu_get(url, "/../../etc/passwd", NULL);
    assert_int_equal(nf.code, 404);
    tu_resp_free(&nf);

    /* with all that open, the endpoint and the scheduler both still answer */
    tu_resp h = tu_get(url, "/health", NULL);
    assert_int_equal(h.code, 200);
    tu_resp_free(&h);
    check_flow_still_works(r);
    /* and the slow ones are dropped (HTTP_TIMEOUT_S), not kept forever */
    char c;
    struct pollfd p = { slow[0], POLLIN, 0 };
    assert_int_equal(poll(&p, 1, 30000), 1);
    assert_true(recv(slow[0], &c, 1, 0) <= 0 || true);
    ssize_t got;
    while ((got = recv(slow[0], &c, 1, MSG_DONTWAIT)) > 0) {}
    assert_int_equal(got, 0);          /* closed by the server */
    for (int i = 0; i < 40; i++) close(slow[i]);
    check_flow_still_works(r);
    dash_end(r, &log);
}

/* The JSON is jansson's, with < > & escaped (it sits in the performance
 * report's <script>) and bytes that are not UTF-8 replaced by U+FFFD, where
 * jansson alone would refuse the string: a worker whose name (its HELLO, by
 * hand) holds both. */
static void test_json_escapes(void **state)
{
    tu_log log;
    char url[300];
    herd_runner *r = dash_flow(1, 1, "{dashboard_address: '127.0.0.1:0', listen: 'tcp://127.0.0.1:0', token: obs-tok}",
                               &log, url, sizeof url);
    int fd = raw_connect(herd_runner_address(r));
    send_value(fd, hello("obs-tok", HERD_PROTO_VERSION, ROLE_WORKER, "x</script><b>&amp; \xff\xfe\xc3 end"));
    assert_true(tu_log_wait_line(&log, "x</script>", "connected", TU_WAIT_S));
    const char *want = "x\\u003c/script\\u003e\\u003cb\\u003e\\u0026amp; \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd end";
    for (int i = 0; i < 2; i++) {
        tu_resp a = tu_get(url, i ? "/api/v1/logs" : "/api/v1/workers", NULL);
        assert_int_equal(a.code, 200);
        if (!strstr(a.body, want)) fail_msg("no %s in %s", want, a.body);
        assert_null(strstr(a.body, "</script>"));
        tu_resp_free(&a);
    }
    close(fd);
    check_flow_still_works(r);
    dash_end(r, &log);
}

/* herd status against the flow's endpoint: text, --json, --watch. */
static void test_status_cli(void **state)
{
    tu_log log;
    char url[300];
    herd_runner *r = dash_flow(2, 1, NULL, &log, url, sizeof url);
    herd_future *f = tu_submit(r, "obs_square", herd_tuple("i", 3), NULL);
    assert_int_equal(tu_int_result(f), 9);
    char dir[64], *text;
    tu_mkdtemp(dir, sizeof dir);
    assert_int_equal(herd_cmd(dir, NULL, &text, "status %s", url + 7), 0);
    assert_non_null(strstr(text, "2 workers, 2 threads"));
    assert_non_null(strstr(text, "local-0"));
    assert_non_null(strstr(text, "obs_square"));
    free(text);
    assert_int_equal(herd_cmd(dir, NULL, &text, "status --json %s", url), 0);
    free(text);
    assert_int_equal(check("apifile %s/out 2 obs_square 1", dir), 0);
    assert_int_equal(herd_cmd(dir, NULL, &text, "status --watch --interval 0.5 --count 3 %s", url), 0);
    int n = 0;
    for (const char *p = text; (p = strstr(p, "herd scheduler ")); p++) n++;
    assert_int_equal(n, 3);
    free(text);
    /* wrong addresses say what was expected */
    assert_int_equal(herd_cmd(dir, NULL, &text, "status tcp://127.0.0.1:1"), 2);
    assert_non_null(strstr(text, "expected the dashboard's HOST:PORT"));
    free(text);
    tu_rmtree(dir);
    dash_end(r, &log);
}

/* The live page in headless Chromium while tasks run: it shows both workers
 * and the progress of the running flow, and logs nothing to its console. */
static void test_page_in_chromium(void **state)
{
    need_chromium("page");
    tu_log log;
    char url[300], dir[64], marker[128];
    herd_runner *r = dash_flow(2, 2, NULL, &log, url, sizeof url);
    tu_mkdtemp(dir, sizeof dir);
    snprintf(marker, sizeof marker, "%s/release", dir);
    herd_future *done[30], *blocked[3];
    for (int i = 0; i < 30; i++) done[i] = tu_submit(r, "obs_square", herd_tuple("i", i), NULL);
    for (int i = 0; i < 30; i++) assert_int_equal(tu_int_result(done[i]), i * i);
    for (int i = 0; i < 3; i++) blocked[i] = tu_submit(r, "obs_block", herd_tuple("s", marker), NULL);
    assert_int_equal(tu_wait_running(blocked, 3, 3, TU_WAIT_S), 3);

    char page[320];
    snprintf(page, sizeof page, "%s/", url);
    chromium(dir, page, 3000, "observe-dashboard.png");
    /* the DOM after its scripts ran */
    assert_int_equal(check("dom %s/dom.html local-0 local-1 obs_square 30 obs_block 3", dir), 0);
    assert_int_equal(tu_write_file(marker, "go"), 0);
    for (int i = 0; i < 3; i++) assert_int_equal(tu_int_result(blocked[i]), 1);
    tu_rmtree(dir);
    dash_end(r, &log);
}

/* performance_report_path: one HTML file at flow end that Chromium draws
 * from the data inlined in it (nothing fetched: file://). */
static void test_performance_report(void **state)
{
    need_chromium("report");
    char dir[64], ck[300], cmd[4096];
    tu_mkdtemp(dir, sizeof dir);
    snprintf(ck, sizeof ck, "{performance_report_path: '%s/report.html'}", dir);
    tu_log log;
    tu_log_init(&log);
    herd_runner *r = tu_flow("{n_workers: 2, threads_per_worker: 1}", ck, 2, &log);
    herd_future *fs[12];
    for (int i = 0; i < 12; i++) fs[i] = tu_submit(r, i < 10 ? "obs_square" : "obs_fail", i < 10 ? herd_tuple("i", i) : herd_array(), NULL);
    assert_int_equal(herd_wait(fs, 12, TU_WAIT_S, NULL), 0);
    tu_flow_end(r);
    assert_true(tu_log_has_line(&log, "performance report written to", "report.html"));
    tu_log_free(&log);
    snprintf(cmd, sizeof cmd, "%s/report.html", dir);
    char *html = tu_read_file(cmd);
    assert_non_null(html);
    assert_non_null(strstr(html, "window.HERD_SNAPSHOT = {"));
    assert_true(strlen(html) < 400 * 1024);
    free(html);
    char file[300];
    snprintf(file, sizeof file, "file://%s/report.html", dir);
    chromium(dir, file, 2000, "observe-report.png");
    assert_int_equal(check("dom %s/dom.html local-0 local-1 obs_square 10 obs_fail 0", dir), 0);
    tu_rmtree(dir);
}

/* A non-loopback address: an interface of its own (a bridge with no port)
 * with a 10.x address; connections to it stay on this host. */
static char dummy_if[32], dummy_ip[32];

static int dummy_up(void)
{
    long id = (long)getpid() % 60000;
    snprintf(dummy_if, sizeof dummy_if, "hobs%ld", id);
    snprintf(dummy_ip, sizeof dummy_ip, "10.%ld.%ld.1", 100 + id / 250 % 100, id % 250);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "ip link add %s type bridge 2>/dev/null && ip addr add %s/32 dev %s && ip link set %s up",
             dummy_if, dummy_ip, dummy_if, dummy_if);
    return system(cmd) == 0 ? 0 : -1;
}

static void dummy_down(void)
{
    char cmd[100];
    snprintf(cmd, sizeof cmd, "ip link del %s 2>/dev/null", dummy_if);
    if (system(cmd)) {}
}

static void test_token_beyond_loopback(void **state)
{
    if (geteuid() != 0 || dummy_up() != 0) {
        dummy_down();
        fprintf(stderr, "\n*** SKIPPED: the non-loopback test needs root and ip (iproute2) to add an interface ***\n\n");
        skip();
    }
    tu_log log;
    tu_log_init(&log);
    char ck[200];
    snprintf(ck, sizeof ck, "{dashboard_address: '%s:0', token: obs-secret-token}", dummy_ip);
    herd_runner *r = tu_flow("{n_workers: 1, threads_per_worker: 1}", ck, 1, &log);
    char url[300], login[400];
    tu_dashboard_links(&log, url, sizeof url, login, sizeof login);
    assert_non_null(strstr(url, dummy_ip));
    tu_check_token_rules(url, login, "obs-secret-token");
    /* herd status: without the token a clear refusal; with it the report */
    char dir[64], *text;
    tu_mkdtemp(dir, sizeof dir);
    assert_int_equal(herd_cmd(dir, "env -u HERD_TOKEN", &text, "status %s", url), 1);
    assert_non_null(strstr(text, "needs the cluster's token"));
    free(text);
    assert_int_equal(herd_cmd(dir, "HERD_TOKEN=obs-secret-token", &text, "status %s", url), 0);
    assert_non_null(strstr(text, "1 worker, 1 thread"));
    free(text);
    tu_rmtree(dir);
    check_flow_still_works(r);
    dash_end(r, &log);
    dummy_down();
}

/* security: temporary: the endpoint speaks HTTPS (and not plain HTTP). */
static void test_https(void **state)
{
    tu_log log;
    char url[300];
    herd_runner *r = dash_flow(1, 1, "{dashboard_address: '127.0.0.1:0', security: temporary}", &log, url, sizeof url);
    assert_true(strncmp(url, "https://127.0.0.1:", 18) == 0);
    tu_resp a = tu_get(url, "/health", NULL);
    assert_int_equal(a.code, 200);
    tu_resp_free(&a);
    char plain[300];
    snprintf(plain, sizeof plain, "http://%s", url + 8);
    char *out = raw(plain, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n", 34, 10);
    assert_null(strstr(out, "200 OK"));
    free(out);
    check_flow_still_works(r);
    dash_end(r, &log);
}

/* herd_progress with stderr as fd: a file (plain lines) or a terminal. The
 * text written. */
static char *progress_to(herd_runner *r, herd_future **fs, size_t n, int fd, int master)
{
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
    herd_err err = { 0 };
    int rc = herd_progress(r, fs, n, &err);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    if (rc) fail_msg("herd_progress: %s", err.msg);
    size_t cap = 1 << 20, len = 0;
    char *text = calloc(1, cap + 1);
    int src = master >= 0 ? master : fd;
    if (master < 0) lseek(fd, 0, SEEK_SET);
    for (;;) {
        struct pollfd p = { src, POLLIN, 0 };
        if (poll(&p, 1, master >= 0 ? 200 : 0) <= 0 && master >= 0) break;
        ssize_t k = read(src, text + len, cap - len);
        if (k <= 0) break;
        len += (size_t)k;
    }
    return text;
}

static void test_progress(void **state)
{
    herd_runner *r = tu_flow("{n_workers: 1, threads_per_worker: 2}", NULL, 1, NULL);
    herd_future *fs[13];
    for (int i = 0; i < 10; i++) fs[i] = tu_submit(r, "obs_square", herd_tuple("i", i), NULL);
    for (int i = 10; i < 13; i++) fs[i] = tu_submit(r, "obs_fail", herd_array(), NULL);
    char path[] = "/tmp/herd-obs-progress-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    char *text = progress_to(r, fs, 13, fd, -1);
    close(fd);
    for (int i = 0; i < 13; i++) assert_true(herd_future_state(fs[i]) >= HERD_COMPLETED);   /* it waited for all */
    assert_non_null(strstr(text, "obs_square"));
    assert_non_null(strstr(text, "10/10 done, 0 running, 0 pending"));
    assert_non_null(strstr(text, "0/3 done, 0 running, 0 pending, 3 failed"));
    assert_null(strstr(text, "\033["));            /* no terminal codes in a file */
    free(text);
    /* on a terminal: redrawn in place */
    int master, slave;
    assert_int_equal(openpty(&master, &slave, NULL, NULL, NULL), 0);
    herd_future *more[4];
    for (int i = 0; i < 4; i++) more[i] = tu_submit(r, "obs_square", herd_tuple("i", i), NULL);
    text = progress_to(r, more, 4, slave, master);
    assert_non_null(strstr(text, "\r\033[K"));
    assert_non_null(strstr(text, "4/4 done"));
    free(text);
    close(slave);
    close(master);
    herd_err err = { 0 };
    assert_int_equal(herd_progress(NULL, fs, 1, &err), -HERD_EARG);
    assert_non_null(strstr(err.msg, "runner"));
    tu_flow_end(r);
}

/* client_kwargs.progress: the flow's progress on stderr, here a file or a
 * terminal (a pty drained by a thread). */
typedef struct drain { int fd, pty; pthread_mutex_t mu; char *text; size_t len; pthread_t th; } drain;

static void *drain_main(void *arg)
{
    drain *d = arg;
    char buf[4096];
    for (;;) {
        ssize_t k = read(d->fd, buf, sizeof buf);
        if (k <= 0) break;                          /* EIO once the pty's other side is closed */
        pthread_mutex_lock(&d->mu);
        char *t = realloc(d->text, d->len + (size_t)k + 1);
        assert_non_null(t);
        memcpy(t + d->len, buf, (size_t)k);
        d->len += (size_t)k;
        t[d->len] = '\0';
        d->text = t;
        pthread_mutex_unlock(&d->mu);
    }
    return NULL;
}

/* What was written so far contains needle (the file is read again). */
static bool drain_has(drain *d, const char *needle)
{
    if (!d->pty) {
        char buf[1 << 16];
        ssize_t k = pread(d->fd, buf, sizeof buf - 1, 0);
        buf[k > 0 ? k : 0] = '\0';
        pthread_mutex_lock(&d->mu);
        free(d->text);
        d->text = strdup(buf);
        pthread_mutex_unlock(&d->mu);
    }
    pthread_mutex_lock(&d->mu);
    bool has = d->text && strstr(d->text, needle);
    pthread_mutex_unlock(&d->mu);
    return has;
}

static void wait_text(drain *d, const char *needle)
{
    double end = tu_now() + TU_WAIT_S;
    while (!drain_has(d, needle)) {
        if (tu_now() > end) fail_msg("no \"%s\" in the progress output: %s", needle, d->text ? d->text : "");
        tu_sleep_ms(20);
    }
}

static void flow_progress_on(int fd, int pty)
{
    drain d = { .fd = fd, .pty = pty };
    pthread_mutex_init(&d.mu, NULL);
    int out = fd;
    if (pty) {
        int slave;
        assert_int_equal(openpty(&d.fd, &slave, NULL, NULL, NULL), 0);
        out = slave;
        assert_int_equal(pthread_create(&d.th, NULL, drain_main, &d), 0);
    }
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_int_equal(dup2(out, STDERR_FILENO), STDERR_FILENO);
    char gate[] = "/tmp/herd-obs-gate-XXXXXX";
    int gfd = mkstemp(gate);
    assert_true(gfd >= 0);
    close(gfd);
    unlink(gate);
    herd_runner *r = tu_flow("{n_workers: 1, threads_per_worker: 2}", "{progress: true}", 1, NULL);
    herd_future *fs[15];
    for (int i = 0; i < 2; i++) fs[i] = tu_submit(r, "obs_block", herd_tuple("s", gate), NULL);
    for (int i = 2; i < 12; i++) fs[i] = tu_submit(r, "obs_square", herd_tuple("i", i), NULL);
    for (int i = 12; i < 15; i++) fs[i] = tu_submit(r, "obs_fail", herd_array(), NULL);
    /* while the flow runs: both blockers hold the two threads */
    assert_int_equal(tu_wait_running(fs, 2, 2, TU_WAIT_S), 2);
    wait_text(&d, "0/2 done, 2 running, 0 pending");
    FILE *g = fopen(gate, "w");
    assert_non_null(g);
    fclose(g);
    herd_err err = { 0 };
    assert_int_equal(herd_wait(fs, 15, TU_WAIT_S, &err), 0);
    wait_text(&d, "10/10 done, 0 running, 0 pending");   /* drawn before the flow ends */
    wait_text(&d, "0/3 done, 0 running, 0 pending, 3 failed");
    tu_flow_end(r);
    wait_text(&d, "2/2 done, 0 running, 0 pending");
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    unlink(gate);
    if (pty) {
        close(out);                                     /* the drain thread reads EIO and ends */
        pthread_join(d.th, NULL);
        close(d.fd);
        assert_non_null(strstr(d.text, "\r\033[K"));   /* redrawn in place */
        assert_non_null(strstr(d.text, "\033[3A"));     /* back over the three lines */
    } else {
        drain_has(&d, "");
        assert_null(strstr(d.text, "\033["));          /* no terminal codes in a file */
        assert_non_null(strstr(d.text, "[########################################] 10/10 done, 0 running, 0 pending\n"));
    }
    free(d.text);
    pthread_mutex_destroy(&d.mu);
}

static void test_flow_progress(void **state)
{
    char path[] = "/tmp/herd-obs-fprogress-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    flow_progress_on(fd, 0);
    close(fd);
    flow_progress_on(-1, 1);
    /* a bad value names the key */
    herd_runner *r = NULL;
    herd_err err = { 0 };
    herd_runner_opts o = { .client_kwargs = "{progress: 'yes'}" };
    assert_true(herd_runner_new(&r, &o, &err) != 0);
    assert_non_null(strstr(err.msg, "client_kwargs.progress"));
}

/* Bad addresses: a clear error naming the key. */
static void test_bad_address(void **state)
{
    const char *bad[] = { "{dashboard_address: 'nohost'}", "{dashboard_address: '127.0.0.1:99999'}",
                          "{dashboard_address: '127.0.0.1:x'}" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        herd_runner *r = NULL;
        herd_err err = { 0 };
        herd_runner_opts o = { .cluster_kwargs = "{n_workers: 1}", .client_kwargs = bad[i], .log = tu_quiet_sink };
        assert_int_equal(herd_runner_new(&r, &o, &err), 0);
        assert_int_equal(herd_flow_begin(r, "bad", &err), 0);
        herd_future *f = NULL;
        int rc = herd_submit(r, "obs_square", herd_tuple("i", 2), &f, &err);
        const herd_value *v;
        if (rc == 0) rc = herd_future_result(f, TU_WAIT_S, &v, &err);
        assert_true(rc != 0);
        assert_non_null(strstr(err.msg, "dashboard_address"));
        herd_flow_end(r, true, NULL);
        herd_runner_free(r);
    }
    herd_runner *r = NULL;
    herd_err err = { 0 };
    herd_runner_opts o = { .address = "tcp://127.0.0.1:1", .client_kwargs = "{dashboard_address: '127.0.0.1:0'}" };
    assert_true(herd_runner_new(&r, &o, &err) != 0);
    assert_non_null(strstr(err.msg, "client_kwargs.dashboard_address"));
}

int main(int argc, char **argv)
{
    herd_init(&argc, &argv);
    const char *b = getenv("BUILD");
    char exe[300];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash) *slash = '\0';                      /* BUILD/tests */
    snprintf(build_dir, sizeof build_dir, "%s", b && *b ? b : exe);
    if (!b || !*b) { slash = strrchr(build_dir, '/'); if (slash) *slash = '\0'; }
    if (build_dir[0] != '/') {
        char cwd[PATH_MAX];
        if (getcwd(cwd, sizeof cwd)) { char t[PATH_MAX + 400]; snprintf(t, sizeof t, "%s/%s", cwd, build_dir); snprintf(build_dir, sizeof build_dir, "%.399s", t); }
    }
    snprintf(herd_bin, sizeof herd_bin, "%s/bin/herd", build_dir);
    snprintf(checker, sizeof checker, "tests/support/check_observe.py");     /* tests run from the top directory */
    if (access(checker, R_OK) != 0) snprintf(checker, sizeof checker, "%s/../../tests/support/check_observe.py", exe);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_health_metrics_api),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_json_escapes),
        cmocka_unit_test(test_status_cli),
        cmocka_unit_test(test_page_in_chromium),
        cmocka_unit_test(test_token_beyond_loopback),
        cmocka_unit_test(test_https),
        cmocka_unit_test(test_bad_address),
        cmocka_unit_test(test_progress),
        cmocka_unit_test(test_flow_progress),
        cmocka_unit_test(test_performance_report),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
