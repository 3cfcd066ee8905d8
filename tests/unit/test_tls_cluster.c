/* tests/unit/test_tls_cluster.c — TLS end to end: a real TLS scheduler
 * (herd_scheduler_start with certificate files), real `herd worker`
 * processes and a flow connecting by address; every refusal the issue lists
 * (no certificate, another CA, an expired certificate, a wrong token) is
 * refused and logged; connections that never finish their handshake are
 * closed after the hello timeout (descriptors back); a tcp:// client of the
 * TLS scheduler is told to use tls://, and a client refusing the scheduler's
 * certificate says this side refused it; tls_server_name (client_kwargs
 * and `herd worker --tls-server-name`) reaches a scheduler whose
 * certificate names only a DNS name at its IP, and without it or with
 * another name the handshake is refused; and a capture on the loopback interface (AF_PACKET)
 * shows a known task argument crossing the wire in clear without TLS and
 * never with `security: temporary`. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <linux/if_packet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <herd/herd.h>
#include "comm.h"
#include "security.h"
#include "../support/testutil.h"

#define SECRET "SECRET-ARG-1234-herd"

static char dir[64], herd_bin[PATH_MAX], rsched[PATH_MAX + 32];

/* ---- a task of this binary (it is re-run as the workers) ---- */
static int echo(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    *out = herd_value_copy(herd_at(args, 0));
    return 0;
}
HERD_TASK(echo);

/* ---- the scheduler's log, captured ---- */
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static char logbuf[1 << 16];
static size_t loglen;

static void log_sink(void *ud, int level, const char *line)
{
    pthread_mutex_lock(&log_mu);
    int n = snprintf(logbuf + loglen, sizeof logbuf - loglen, "%s\n", line);
    if (n > 0 && loglen + (size_t)n < sizeof logbuf) loglen += (size_t)n;
    pthread_mutex_unlock(&log_mu);
}

/* Wait (bounded) until the log has a line containing all of a, b. */
static int log_has(const char *a, const char *b)
{
    for (int i = 0; i < 400; i++) {
        pthread_mutex_lock(&log_mu);
        int found = 0;
        for (char *line = logbuf; line && *line && !found;) {
            char *nl = strchr(line, '\n');
            if (nl) *nl = '\0';
            found = strstr(line, a) && (!b || strstr(line, b));
            if (nl) *nl = '\n';
            line = nl ? nl + 1 : NULL;
        }
        pthread_mutex_unlock(&log_mu);
        if (found) return 1;
        usleep(10000);
    }
    return 0;
}

/* ---- certificates ---- */
static void write_file(const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void issue(const char *name, const herd_tls_spec *spec, char **cert, char **key)
{
    herd_err err;
    if (herd_tls_issue(spec, cert, key, &err)) fail_msg("herd_tls_issue %s: %s", name, err.msg);
    char file[128];
    snprintf(file, sizeof file, "%s.pem", name);
    write_file(file, *cert);
    snprintf(file, sizeof file, "%s.key", name);
    write_file(file, *key);
}

static const char *P(const char *name)
{
    static char bufs[8][256];
    static int i;
    char *b = bufs[i++ % 8];
    snprintf(b, 256, "%s/%s", dir, name);
    return b;
}

static herd_scheduler *sched;
static char addr[256];

static int setup(void **state)
{
    snprintf(dir, sizeof dir, "/tmp/herd-tls-XXXXXX");
    assert_non_null(mkdtemp(dir));
    char exe[PATH_MAX - 16];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = '\0';
    *strrchr(exe, '/') = '\0';                 /* $(BUILD)/tests */
    snprintf(herd_bin, sizeof herd_bin, "%s/../bin/herd", exe);
    snprintf(rsched, sizeof rsched, "%s/fixtures/remote_sched.so", exe);
    char *ca, *cakey, *c, *k, *ca2, *ca2key;
    const char *local[] = { "127.0.0.1", "localhost", NULL };
    herd_tls_spec s_ca = { .cn = "test CA", .is_ca = 1, .not_before = -3600, .not_after = 86400 };
    issue("ca", &s_ca, &ca, &cakey);
    herd_tls_spec s_sched = { .cn = "test-scheduler", .server = 1, .client = 1, .names = local,
                              .not_before = -3600, .not_after = 86400, .issuer_cert = ca, .issuer_key = cakey };
    issue("sched", &s_sched, &c, &k); free(c); herd_tls_pem_free(k);
    herd_tls_spec s_worker = { .cn = "test-worker", .client = 1, .not_before = -3600, .not_after = 86400,
                               .issuer_cert = ca, .issuer_key = cakey };
    issue("worker", &s_worker, &c, &k); free(c); herd_tls_pem_free(k);
    herd_tls_spec s_old = s_worker;
    s_old.cn = "expired-worker";
    s_old.not_before = -7 * 86400;
    s_old.not_after = -86400;
    issue("expired", &s_old, &c, &k); free(c); herd_tls_pem_free(k);
    herd_tls_spec s_ca2 = { .cn = "another CA", .is_ca = 1, .not_before = -3600, .not_after = 86400 };
    issue("ca2", &s_ca2, &ca2, &ca2key);
    herd_tls_spec s_other = s_worker;
    s_other.cn = "stranger";
    s_other.issuer_cert = ca2;
    s_other.issuer_key = ca2key;
    issue("stranger", &s_other, &c, &k); free(c); herd_tls_pem_free(k);
    const char *dns_only[] = { "sched.herd.test", NULL };
    herd_tls_spec s_named = s_sched;
    s_named.names = dns_only;
    issue("named", &s_named, &c, &k); free(c); herd_tls_pem_free(k);
    free(ca); herd_tls_pem_free(cakey); free(ca2); herd_tls_pem_free(ca2key);

    herd_scheduler_opts o = { .listen = "tls://127.0.0.1:0", .token = "tok", .allowed_failures = -1,
                              .log = log_sink, .tls_ca_file = P("ca.pem"), .tls_cert = P("sched.pem"),
                              .tls_key = P("sched.key"), .dashboard_address = "127.0.0.1:0" };
    herd_err err;
    if (herd_scheduler_start(&sched, &o, &err)) fail_msg("scheduler: %s", err.msg);
    snprintf(addr, sizeof addr, "%s", herd_scheduler_address(sched));
    assert_true(strncmp(addr, "tls://127.0.0.1:", 16) == 0);
    return 0;
}

static int teardown(void **state)
{
    herd_scheduler_stop(sched);
    const char *files[] = { "ca", "sched", "worker", "expired", "ca2", "stranger", "named" };
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        char f[64];
        snprintf(f, sizeof f, "%s.pem", files[i]); unlink(P(f));
        snprintf(f, sizeof f, "%s.key", files[i]); unlink(P(f));
    }
    rmdir(dir);
    return 0;
}

/* `herd worker` with a certificate; returns its pid. */
static pid_t start_worker(const char *name, const char *cert, const char *token, const char *ca)
{
    char certf[64], keyf[64];
    snprintf(certf, sizeof certf, "%s.pem", cert);
    snprintf(keyf, sizeof keyf, "%s.key", cert);
    char cafile[256], certp[256], keyp[256];
    snprintf(cafile, sizeof cafile, "%s", P(ca));
    snprintf(certp, sizeof certp, "%s", P(certf));
    snprintf(keyp, sizeof keyp, "%s", P(keyf));
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        if (!getenv("HERD_TEST_VERBOSE")) dup2(null, 2);
        execl(herd_bin, herd_bin, "worker", addr, "--name", name, "--token", token, "--plugin", "hash",
              "--tls-ca-file", cafile, "--tls-cert", certp, "--tls-key", keyp, "--no-reconnect", (char *)NULL);
        _exit(127);
    }
    assert_true(pid > 0);
    return pid;
}

static int wait_exit(pid_t pid)
{
    for (int i = 0; i < 1000; i++) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    fail_msg("worker %d did not exit within 10 s", (int)pid);
    return -1;
}

/* A flow on r: a worker joins, sha256("abc") comes back right; then the
   flow ends and the worker w is stopped. */
static void sha_round_then_stop(herd_runner *r, pid_t w)
{
    herd_err err;
    if (herd_wait_for_workers(r, 1, 10, &err)) fail_msg("%s", err.msg);
    herd_future *f;
    const herd_value *v;
    assert_int_equal(herd_submit(r, "hash.sha256", herd_tuple("s", "abc"), &f, &err), 0);
    if (herd_future_result(f, 10, &v, &err)) fail_msg("%s", err.msg);
    assert_string_equal(herd_as_str(v), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    herd_flow_end(r, false, &err);
    herd_runner_free(r);
    kill(w, SIGTERM);
    wait_exit(w);
}

/* ---- a flow over TLS with certificates of its own ---- */
static void test_flow_over_tls(void **state)
{
    pid_t w = start_worker("good", "worker", "tok", "ca.pem");
    char ck[1024];
    snprintf(ck, sizeof ck, "{token: tok, tls_ca_file: '%s', tls_cert: '%s', tls_key: '%s'}",
             P("ca.pem"), P("worker.pem"), P("worker.key"));
    herd_runner_opts o = { .address = addr, .client_kwargs = ck };
    herd_runner *r;
    herd_err err;
    if (herd_runner_new(&r, &o, &err) || herd_flow_begin(r, "tls", &err)) fail_msg("%s", err.msg);
    sha_round_then_stop(r, w);
}

/* ---- TLS files with a provider that may run the scheduler itself ---- */
static void test_provider_scheduler_with_tls_files(void **state)
{
    char cls[PATH_MAX + 64], ck[PATH_MAX + 64], cl[1024];
    snprintf(cls, sizeof cls, "%s:RemoteSched", rsched);
    snprintf(cl, sizeof cl, "{tls_ca_file: '%s', tls_cert: '%s', tls_key: '%s'}", P("ca.pem"), P("sched.pem"),
             P("sched.key"));
    /* it declines: the scheduler runs in this process, over TLS from the files */
    snprintf(ck, sizeof ck, "{n_workers: 1, herd: '%s', decline: true}", herd_bin);
    herd_runner_opts o = { .cluster_class = cls, .cluster_kwargs = ck, .client_kwargs = cl };
    herd_runner *r;
    herd_err err;
    if (herd_runner_new(&r, &o, &err) || herd_flow_begin(r, "tls-files", &err)) fail_msg("%s", err.msg);
    assert_true(strncmp(herd_runner_address(r), "tls://", 6) == 0);
    herd_future *f;
    const herd_value *v;
    assert_int_equal(herd_submit(r, "echo", herd_tuple("s", "over tls"), &f, &err), 0);
    if (herd_future_result(f, 20, &v, &err)) fail_msg("%s", err.msg);
    assert_string_equal(herd_as_str(v), "over tls");
    herd_flow_end(r, false, &err);
    herd_runner_free(r);
    /* it runs the scheduler itself: TLS files cannot reach that one, said plainly */
    snprintf(ck, sizeof ck, "{n_workers: 1, herd: '%s'}", herd_bin);
    herd_runner_opts o2 = { .cluster_class = cls, .cluster_kwargs = ck, .client_kwargs = cl };
    assert_int_equal(herd_runner_new(&r, &o2, &err), 0);
    assert_int_equal(herd_flow_begin(r, "tls-files-remote", &err), 0);   /* start: lazy — the first submit starts it */
    herd_future *none = NULL;
    assert_int_equal(herd_submit(r, "echo", herd_tuple("s", "x"), &none, &err), -HERD_EARG);
    assert_null(none);
    if (!strstr(err.msg, "client_kwargs.tls_ca_file") || !strstr(err.msg, "remotely"))
        fail_msg("unexpected error: %s", err.msg);
    herd_runner_free(r);
}

/* ---- refusals, each logged by the scheduler ---- */
static void test_other_ca_refused(void **state)
{
    assert_int_equal(wait_exit(start_worker("stranger", "stranger", "tok", "ca.pem")), 3);
    assert_true(log_has("refused connection from 127.0.0.1", "not issued by a CA this side trusts"));
}

static void test_expired_refused(void **state)
{
    assert_int_equal(wait_exit(start_worker("old", "expired", "tok", "ca.pem")), 3);
    assert_true(log_has("refused connection from 127.0.0.1", "certificate has expired"));
}

/* The dashboard of a TLS scheduler speaks HTTPS with its certificate:
 * `herd status` checks it against --tls-ca-file, and refuses another CA's. */
static void test_status_over_https(void **state)
{
    const char *url = herd_scheduler_dashboard_url(sched);
    assert_non_null(url);
    assert_true(strncmp(url, "https://127.0.0.1:", 18) == 0);
    char cmd[PATH_MAX + 1200];
    snprintf(cmd, sizeof cmd, "%s status --tls-ca-file %s %s > %s 2>&1", herd_bin, P("ca.pem"), url, P("status.out"));
    int st = system(cmd);
    char *out = tu_read_file(P("status.out"));
    if (st != 0) fail_msg("herd status over HTTPS: %s", out ? out : "(nothing)");
    assert_non_null(strstr(out, "herd scheduler"));
    free(out);
    snprintf(cmd, sizeof cmd, "%s status --tls-ca-file %s %s > %s 2>&1", herd_bin, P("ca2.pem"), url, P("status.out"));
    assert_int_equal(WEXITSTATUS(system(cmd)), 1);
    out = tu_read_file(P("status.out"));
    assert_non_null(strstr(out, "herd status: https://127.0.0.1:"));
    free(out);
    unlink(P("status.out"));
}

static void test_wrong_token_refused(void **state)
{
    assert_int_equal(wait_exit(start_worker("tokenless", "worker", "wrong", "ca.pem")), 3);
    assert_true(log_has("refused connection from 127.0.0.1", "wrong or missing token"));
}

static void test_no_certificate_refused(void **state)
{
    /* a TLS client that presents no certificate at all */
    int fd = -1;
    herd_err err;
    if (herd_dial(addr, 5, &fd, &err)) fail_msg("%s", err.msg);
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_load_verify_locations(ctx, P("ca.pem"), NULL);
    SSL *ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    int rc = SSL_connect(ssl);
    if (rc == 1) {                     /* TLS 1.3: the refusal arrives with the first read */
        char b[16];
        rc = SSL_read(ssl, b, sizeof b);
    }
    assert_true(rc <= 0);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    close(fd);
    assert_true(log_has("refused connection from 127.0.0.1", "presented no certificate"));
}

/* ---- nothing spent on a peer before it authenticates ---- */
/* Connections that never start their TLS handshake are closed after the
 * hello timeout, for real: the scheduler's descriptors come back, and a real
 * TLS worker connects afterwards. */
static void test_idle_tls_connects_closed(void **state)
{
    int base = tu_count_fds();
    enum { N = 30 };
    int fds[N];
    herd_err err;
    for (int i = 0; i < N; i++)
        if (herd_dial(addr, 5, &fds[i], &err)) fail_msg("%s", err.msg);
    for (int i = 0; i < N; i++) {           /* each is closed by the scheduler (EOF or reset) */
        int closed = 0;
        for (int k = 0; k < 3000 && !closed; k++) {
            struct pollfd p = { .fd = fds[i], .events = POLLIN };
            if (poll(&p, 1, 10) <= 0) continue;
            char b[64];
            ssize_t n = recv(fds[i], b, sizeof b, 0);
            closed = n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR);
        }
        if (!closed) fail_msg("connection %d still open after 30 s", i);
        close(fds[i]);
    }
    int now = base + 1;
    for (int k = 0; k < 3000 && (now = tu_count_fds()) != base; k++) usleep(10000);
    assert_int_equal(now, base);
    assert_true(log_has("refused connection from 127.0.0.1", "TLS handshake not finished"));
    pid_t w = start_worker("after-flood", "worker", "tok", "ca.pem");   /* a real TLS peer gets in */
    assert_true(log_has("worker after-flood connected", NULL));
    kill(w, SIGTERM);
    wait_exit(w);
}

/* tcp:// to a TLS scheduler says so, and so does a client refusing the
 * scheduler's certificate (not "the scheduler refused"). */
static void expect_connect_error(const char *address, const char *ck, const char *want)
{
    herd_runner_opts o = { .address = address, .client_kwargs = ck };
    herd_runner *r = NULL;
    herd_err err = { 0 };
    int rc = herd_runner_new(&r, &o, &err);
    if (!rc) rc = herd_flow_begin(r, "refused", &err);
    if (!rc) fail_msg("connected to %s", address);
    if (!strstr(err.msg, want)) fail_msg("error \"%s\" does not say \"%s\"", err.msg, want);
    herd_runner_free(r);
}

static void test_connect_messages(void **state)
{
    char tcp[300], ck[1024];
    snprintf(tcp, sizeof tcp, "tcp://%s", addr + 6);
    expect_connect_error(tcp, "{token: tok, connect_timeout: 10}", "the scheduler speaks TLS: use tls:// and certificates");
    snprintf(ck, sizeof ck, "{token: tok, connect_timeout: 10, tls_ca_file: '%s', tls_cert: '%s', tls_key: '%s'}",
             P("ca2.pem"), P("worker.pem"), P("worker.key"));
    expect_connect_error(addr, ck, "this side refused the scheduler's certificate: certificate verify failed");
}

/* ---- tls_server_name: a certificate naming only sched.herd.test, dialled at 127.0.0.1 ---- */
static pid_t start_named_worker(const char *address, const char *server_name)
{
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        if (!getenv("HERD_TEST_VERBOSE")) dup2(null, 2);
        if (server_name)
            execl(herd_bin, herd_bin, "worker", address, "--name", "named", "--token", "tok", "--plugin", "hash",
                  "--tls-ca-file", P("ca.pem"), "--tls-cert", P("worker.pem"), "--tls-key", P("worker.key"),
                  "--tls-server-name", server_name, "--no-reconnect", "--connect-timeout", "5", (char *)NULL);
        else
            execl(herd_bin, herd_bin, "worker", address, "--name", "named", "--token", "tok", "--plugin", "hash",
                  "--tls-ca-file", P("ca.pem"), "--tls-cert", P("worker.pem"), "--tls-key", P("worker.key"),
                  "--no-reconnect", "--connect-timeout", "5", (char *)NULL);
        _exit(127);
    }
    assert_true(pid > 0);
    return pid;
}

static void test_server_name(void **state)
{
    herd_scheduler *ns = NULL;
    herd_scheduler_opts so = { .listen = "tls://127.0.0.1:0", .token = "tok", .allowed_failures = -1,
                               .log = log_sink, .tls_ca_file = P("ca.pem"), .tls_cert = P("named.pem"),
                               .tls_key = P("named.key") };
    herd_err err = { 0 };
    if (herd_scheduler_start(&ns, &so, &err)) fail_msg("scheduler: %s", err.msg);
    char naddr[256];
    snprintf(naddr, sizeof naddr, "%s", herd_scheduler_address(ns));
    /* a worker without the name refuses the scheduler (its IP is not in the certificate) and exits */
    pid_t bad = start_named_worker(naddr, NULL);
    assert_int_not_equal(wait_exit(bad), 0);
    pid_t w = start_named_worker(naddr, "sched.herd.test");
    char base[1024], ck[1200];
    snprintf(base, sizeof base, "token: tok, connect_timeout: 10, tls_ca_file: '%s', tls_cert: '%s', tls_key: '%s'",
             P("ca.pem"), P("worker.pem"), P("worker.key"));
    snprintf(ck, sizeof ck, "{%s, tls_server_name: sched.herd.test}", base);
    herd_runner_opts o = { .address = naddr, .client_kwargs = ck };
    herd_runner *r;
    if (herd_runner_new(&r, &o, &err) || herd_flow_begin(r, "named", &err)) fail_msg("%s", err.msg);
    sha_round_then_stop(r, w);     /* the worker checks the name too */
    /* without it, with another name, with a name that is none */
    snprintf(ck, sizeof ck, "{%s}", base);
    expect_connect_error(naddr, ck, "IP address mismatch (server certificate \"test-scheduler\" is not valid for "
                                    "\"127.0.0.1\": wrong host; it names DNS:sched.herd.test)");
    snprintf(ck, sizeof ck, "{%s, tls_server_name: other.herd.test}", base);
    expect_connect_error(naddr, ck, "is not valid for \"other.herd.test\" (tls_server_name; dialled 127.0.0.1)");
    snprintf(ck, sizeof ck, "{%s, tls_server_name: 'sched herd!'}", base);
    herd_runner_opts bo = { .address = naddr, .client_kwargs = ck };
    r = NULL;
    assert_int_not_equal(herd_runner_new(&r, &bo, &err), 0);
    assert_non_null(strstr(err.msg, "client_kwargs.tls_server_name: expected a DNS name"));
    assert_non_null(strstr(err.msg, "got \"sched herd!\""));
    herd_runner_opts no = { .address = naddr, .client_kwargs = "{token: tok, tls_server_name: sched.herd.test}" };
    assert_int_not_equal(herd_runner_new(&r, &no, &err), 0);
    assert_non_null(strstr(err.msg, "client_kwargs.tls_server_name \"sched.herd.test\": no TLS to check it with"));
    herd_scheduler_stop(ns);
}

/* ---- a capture on lo ---- */
typedef struct capture {
    int fd;
    atomic_int stop;
    char *buf;
    size_t len, cap;
    pthread_t th;
} capture;

/* Append what the socket holds now; 1 if it held anything, -1 out of memory. */
static int cap_read(capture *c)
{
    char pkt[65536];
    ssize_t n = recv(c->fd, pkt, sizeof pkt, 0);
    if (n <= 0) return 0;
    if (c->len + (size_t)n > c->cap) {
        size_t nc = 2 * (c->cap + (size_t)n);
        char *nb = realloc(c->buf, nc);
        if (!nb) return -1;
        c->buf = nb;
        c->cap = nc;
    }
    memcpy(c->buf + c->len, pkt, (size_t)n);
    c->len += (size_t)n;
    return 1;
}

static void *cap_main(void *arg)
{
    capture *c = arg;
    int rc;
    while (!atomic_load(&c->stop) && (rc = cap_read(c)) >= 0)
        if (!rc) usleep(1000);
    return NULL;
}

static int cap_start(capture *c)
{
    memset(c, 0, sizeof *c);
    c->fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, htons(ETH_P_ALL));
    if (c->fd < 0) return -errno;
    struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL),
                               .sll_ifindex = (int)if_nametoindex("lo") };
    int big = 8 << 20;
    setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    if (bind(c->fd, (struct sockaddr *)&sll, sizeof sll)) { int e = errno; close(c->fd); return -e; }
    pthread_create(&c->th, NULL, cap_main, c);
    return 0;
}

static int cap_stop_and_find(capture *c, const char *needle)
{
    atomic_store(&c->stop, 1);
    pthread_join(c->th, NULL);
    while (cap_read(c) > 0) {}       /* loopback queues a packet as it is sent: drain what is left */
    close(c->fd);
    int found = c->buf && memmem(c->buf, c->len, needle, strlen(needle)) != NULL;
    free(c->buf);
    return found;
}

/* Run one task echo(SECRET) on a temporary cluster with these client_kwargs. */
static void run_secret_flow(const char *client_kwargs)
{
    herd_runner_opts o = { .cluster_kwargs = "{n_workers: 1, threads_per_worker: 1}", .client_kwargs = client_kwargs };
    herd_runner *r;
    herd_err err;
    if (herd_runner_new(&r, &o, &err) || herd_flow_begin(r, "capture", &err)) fail_msg("%s", err.msg);
    herd_future *f;
    const herd_value *v;
    assert_int_equal(herd_submit(r, "echo", herd_tuple("s", SECRET), &f, &err), 0);
    if (herd_future_result(f, 20, &v, &err)) fail_msg("%s", err.msg);
    assert_string_equal(herd_as_str(v), SECRET);
    herd_flow_end(r, false, &err);
    herd_runner_free(r);
}

static void test_loopback_capture(void **state)
{
    capture c;
    int rc = cap_start(&c);
    if (rc) {
        fprintf(stderr, "\n*** SKIPPED test_loopback_capture: cannot capture on lo (%s): needs CAP_NET_RAW ***\n\n",
                strerror(-rc));
        skip();
    }
    /* control: over plain TCP the argument is visible on the wire */
    run_secret_flow("{listen: 'tcp://127.0.0.1:0'}");
    assert_true(cap_stop_and_find(&c, SECRET));
    /* with security: temporary it never is */
    assert_int_equal(cap_start(&c), 0);
    run_secret_flow("{security: temporary}");
    assert_false(cap_stop_and_find(&c, SECRET));
}

int main(int argc, char **argv)
{
    herd_init(&argc, &argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flow_over_tls),
        cmocka_unit_test(test_provider_scheduler_with_tls_files),
        cmocka_unit_test(test_other_ca_refused),
        cmocka_unit_test(test_expired_refused),
        cmocka_unit_test(test_wrong_token_refused),
        cmocka_unit_test(test_status_over_https),
        cmocka_unit_test(test_no_certificate_refused),
        cmocka_unit_test(test_idle_tls_connects_closed),
        cmocka_unit_test(test_server_name),
        cmocka_unit_test(test_connect_messages),
        cmocka_unit_test(test_loopback_capture),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
