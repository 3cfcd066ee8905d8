/* tests/support/aws_moto.h — the AWS side of the AWS provider's tests, on
 * 127.0.0.1 only: moto's server (tests/support/moto_ecs.py: moto, which the
 * base image's Python has, with an optional ECS agent that runs the tasks
 * here) and tests/support/aws_endpoints.py (container
 * credentials, IMDSv2, a fault-injecting proxy in front of moto), started and
 * stopped by the test; an environment that points the AWS client at them and
 * can never reach a real AWS address (instance metadata disabled unless a
 * test points it at the endpoints); small HTTP and JSON helpers.
 *
 * Header-only (static), like testutil.h. */
#ifndef HERD_TEST_AWS_MOTO_H
#define HERD_TEST_AWS_MOTO_H

#include <herd/provider.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <libgen.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct tmoto {
    herd_spawner *sp;
    herd_proc *moto, *endpoints;
    int port, ep_port;           /* moto; aws_endpoints.py */
    char url[64], ep_url[64];    /* http://127.0.0.1:PORT */
    char home[128];              /* a temporary HOME: no ~/.aws of the machine's user is read */
} tmoto;

/* A port free right now on 127.0.0.1. */
static inline int tmoto_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof a;
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0) close(fd);
    return port;
}

static inline bool tmoto_wait_port(int port, double timeout_s)
{
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        int ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
        close(fd);
        if (ok) return true;
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        if ((double)(t.tv_sec - t0.tv_sec) + (double)(t.tv_nsec - t0.tv_nsec) / 1e9 > timeout_s) return false;
        usleep(50000);
    }
}

/* A file of the source tree, found from this binary (BUILD/tests/x). */
static inline void tmoto_src_path(char *out, size_t cap, const char *rel)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = 0;
    snprintf(out, cap, "%s/../%s", dirname(dirname(exe)), rel);
    if (access(out, R_OK) != 0) snprintf(out, cap, "%s", rel);
}

static inline void tmoto_stop(tmoto *m)
{
    herd_proc *ps[2];
    size_t n = 0;
    if (m->moto) ps[n++] = m->moto;
    if (m->endpoints) ps[n++] = m->endpoints;
    if (n) herd_proc_stop(ps, n, 3.0, NULL);
    for (size_t i = 0; i < n; i++) herd_proc_free(ps[i]);
    m->moto = m->endpoints = NULL;
    if (m->sp) herd_spawner_free(m->sp);
    m->sp = NULL;
    if (m->home[0]) {
        char cmd[200];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", m->home);
        if (system(cmd)) {}
        m->home[0] = 0;
    }
}

/* The AWS client's environment: moto's fake credentials and region, the
   endpoint, no profile, no container endpoint, instance metadata disabled. */
static inline void tmoto_env(tmoto *m, const char *endpoint)
{
    static const char *const clear[] = { "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
        "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "AWS_EC2_METADATA_SERVICE_ENDPOINT", "AWS_DEFAULT_REGION", NULL };
    for (size_t i = 0; clear[i]; i++) unsetenv(clear[i]);
    setenv("AWS_ACCESS_KEY_ID", "AKIDTESTING", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "moto-test-secret-key", 1);
    setenv("AWS_REGION", "us-east-1", 1);
    setenv("AWS_ENDPOINT_URL", endpoint ? endpoint : m->url, 1);
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    setenv("HOME", m->home, 1);
}

/* Whether this machine's python3 has moto and boto3; if not, the test binary
   exits 77 (skipped: run.sh counts it, HERD_NO_SKIP=1 fails it) saying what
   to install. */
static inline void tmoto_require(void)
{
    if (system("python3 -c 'import moto.server, boto3' >/dev/null 2>&1") != 0) {
        fprintf(stderr, "\n*** SKIPPED: the AWS tests need Python's moto (5.x) and boto3 "
                        "(pip install 'moto[server]') ***\n\n");
        exit(77);
    }
}

/* with_agent: moto_ecs.py's agent runs the tasks' commands here (and moto's
   ECS tasks hold RUNNING until stopped) */
static inline int tmoto_start(tmoto *m, bool with_agent)
{
    memset(m, 0, sizeof *m);
    snprintf(m->home, sizeof m->home, "/tmp/herd-aws-test-XXXXXX");
    if (!mkdtemp(m->home)) { m->home[0] = 0; return -1; }
    herd_err err;
    if (herd_spawner_new(&m->sp, &err)) return -1;
    m->port = tmoto_free_port();
    m->ep_port = tmoto_free_port();
    snprintf(m->url, sizeof m->url, "http://127.0.0.1:%d", m->port);
    snprintf(m->ep_url, sizeof m->ep_url, "http://127.0.0.1:%d", m->ep_port);
    char port[16], ep_port[16], script[PATH_MAX], moto_py[PATH_MAX];
    snprintf(port, sizeof port, "%d", m->port);
    snprintf(ep_port, sizeof ep_port, "%d", m->ep_port);
    tmoto_src_path(script, sizeof script, "tests/support/aws_endpoints.py");
    tmoto_src_path(moto_py, sizeof moto_py, "tests/support/moto_ecs.py");
    const char *moto_argv[] = { "python3", moto_py, port, with_agent ? "--agent" : NULL, NULL };
    const char *ep_argv[] = { "python3", script, ep_port, port, NULL };
    /* the workers the agent runs log warnings and errors only (the flow's own
       log says what they do) */
    const char *quiet[] = { "HERD_LOG_LEVEL=warning", NULL };
    herd_proc_spec s1 = { .argv = moto_argv, .env = quiet,
                          .io = { HERD_PROC_DEVNULL, HERD_PROC_DEVNULL, HERD_PROC_INHERIT } };
    herd_proc_spec s2 = { .argv = ep_argv, .io = { HERD_PROC_DEVNULL, HERD_PROC_DEVNULL, HERD_PROC_INHERIT } };
    if (herd_proc_start(m->sp, &s1, &m->moto, NULL, &err) || herd_proc_start(m->sp, &s2, &m->endpoints, NULL, &err) ||
        !tmoto_wait_port(m->port, 60) || !tmoto_wait_port(m->ep_port, 60)) {
        fprintf(stderr, "cannot start moto or the endpoints: %s\n", err.msg);
        tmoto_stop(m);
        return -1;
    }
    tmoto_env(m, NULL);
    return 0;
}

static size_t tmoto_on_body(char *p, size_t size, size_t n, void *ud)
{
    char **s = ud;
    size_t old = *s ? strlen(*s) : 0;
    char *q = realloc(*s, old + size * n + 1);
    if (!q) return 0;
    memcpy(q + old, p, size * n);
    q[old + size * n] = 0;
    *s = q;
    return size * n;
}

/* A plain HTTP request to the fakes (their control APIs): the body (malloc'd) or NULL. */
static inline char *tmoto_http(const char *method, const char *url, const char *body)
{
    CURL *h = curl_easy_init();
    char *out = calloc(1, 1);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
    if (body) curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, tmoto_on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &out);
    long status = 0;
    if (curl_easy_perform(h) != CURLE_OK) { free(out); out = NULL; }
    else curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(h);
    if (out && (status < 200 || status >= 300)) { free(out); out = NULL; }
    return out;
}

/* moto forgets everything (between tests). */
static inline void tmoto_reset(tmoto *m)
{
    char url[128];
    snprintf(url, sizeof url, "%s/moto-api/reset", m->url);
    free(tmoto_http("POST", url, ""));
}

/* The endpoints' fault injection: the next n requests through the proxy get
   this status and body. */
static inline void tmoto_inject_op(tmoto *m, const char *op, int n, int status, const char *ctype, const char *body)
{
    char url[128], *cmd = malloc(strlen(body) * 2 + 256), *q = cmd;
    q += sprintf(q, "{\"op\": \"%s\", \"fail\": %d, \"status\": %d, \"ctype\": \"%s\", \"body\": \"", op, n,
                 status, ctype);
    for (const char *p = body; *p; p++) {
        if (*p == '"' || *p == '\\') *q++ = '\\';
        *q++ = *p;
    }
    strcpy(q, "\"}");
    snprintf(url, sizeof url, "%s/control", m->ep_url);
    free(tmoto_http("POST", url, cmd));
    free(cmd);
}

static inline void tmoto_inject(tmoto *m, int n, int status, const char *ctype, const char *body)
{
    tmoto_inject_op(m, "", n, status, ctype, body);
}

#endif
