/* tests/support/http.h — what the tests of the scheduler's HTTP endpoint
 * share: a GET with libcurl (status, headers, body), the links the flow log
 * prints (the dashboard URL, the one-time login link), and the token rules
 * of an endpoint on a non-loopback address checked through them.
 * Header-only; include after testutil.h (cmocka's fail_msg, tu_log). */
#ifndef HERD_TEST_HTTP_H
#define HERD_TEST_HTTP_H

#include <curl/curl.h>

typedef struct tu_resp { long code; char *body, *headers; size_t n, hn; } tu_resp;

static inline size_t tu_resp_add(char **buf, size_t *len, const char *d, size_t n)
{
    char *p = realloc(*buf, *len + n + 1);
    if (!p) return 0;
    memcpy(p + *len, d, n);
    *buf = p;
    *len += n;
    p[*len] = '\0';
    return n;
}

static inline size_t tu_on_body(char *d, size_t sz, size_t nm, void *ud)
{
    tu_resp *r = ud;
    return tu_resp_add(&r->body, &r->n, d, sz * nm);
}

static inline size_t tu_on_header(char *d, size_t sz, size_t nm, void *ud)
{
    tu_resp *r = ud;
    return tu_resp_add(&r->headers, &r->hn, d, sz * nm);
}

/* GET base+path with an extra header (NULL: none); fails the test when the
 * request cannot be made at all. HTTPS is not verified: the tests' clusters
 * use a temporary CA the test has no copy of. */
static inline tu_resp tu_get(const char *base, const char *path, const char *header)
{
    tu_resp r = { 0 };
    char url[600];
    snprintf(url, sizeof url, "%s%s", base, path);
    CURL *c = curl_easy_init();
    if (!c) fail_msg("curl_easy_init failed");
    struct curl_slist *h = header ? curl_slist_append(NULL, header) : NULL;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, tu_on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, tu_on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
    if (h) curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    CURLcode rc = curl_easy_perform(c);
    if (rc != CURLE_OK) fail_msg("GET %s: %s", url, curl_easy_strerror(rc));
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.code);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    if (!r.body) r.body = strdup("");
    if (!r.headers) r.headers = strdup("");
    return r;
}

static inline void tu_resp_free(tu_resp *r) { free(r->body); free(r->headers); }

/* The word the flow log printed after `prefix` (waits for it). */
static inline void tu_log_word_after(tu_log *log, const char *prefix, char *out, size_t cap)
{
    if (!tu_log_wait_line(log, prefix, NULL, TU_WAIT_S)) fail_msg("no log line with \"%s\"", prefix);
    pthread_mutex_lock(&log->mu);
    const char *p = strstr(log->text, prefix) + strlen(prefix);
    snprintf(out, cap, "%.*s", (int)strcspn(p, " \n"), p);
    pthread_mutex_unlock(&log->mu);
}

/* The dashboard URL and (login != NULL) the one-time login link the flow
 * log printed. */
static inline void tu_dashboard_links(tu_log *log, char *url, size_t cap, char *login, size_t lcap)
{
    tu_log_word_after(log, "the dashboard is available at ", url, cap);
    if (login) tu_log_word_after(log, "one-time login link: ", login, lcap);
}

static inline void tu_expect_code(const char *base, const char *path, const char *header, long code)
{
    tu_resp a = tu_get(base, path, header);
    if (a.code != code) fail_msg("GET %s%s%s%s: %ld, expected %ld", base, path, header ? " with " : "",
                                 header ? header : "", a.code, code);
    tu_resp_free(&a);
}

/* An endpoint that needs the token: /health open, everything else 401
 * without it (or with a wrong one), 200 with the Bearer token; the login
 * link works once and its cookie is a session. */
static inline void tu_check_token_rules(const char *url, const char *login, const char *token)
{
    char bearer[300];
    snprintf(bearer, sizeof bearer, "Authorization: Bearer %s", token);
    tu_resp a = tu_get(url, "/metrics", NULL);
    assert_int_equal(a.code, 401);
    assert_non_null(strstr(a.headers, "WWW-Authenticate: Bearer"));
    tu_resp_free(&a);
    tu_expect_code(url, "/", NULL, 401);
    tu_expect_code(url, "/api/v1/status", NULL, 401);
    tu_expect_code(url, "/metrics", "Authorization: Bearer wrong-token", 401);
    tu_expect_code(url, "/metrics",
                   "Cookie: herd_session=0000000000000000000000000000000000000000000000000000000000000000", 401);
    tu_expect_code(url, "/health", NULL, 200);          /* no secret in it */
    a = tu_get(url, "/metrics", bearer);
    assert_int_equal(a.code, 200);
    assert_non_null(strstr(a.body, "herd_scheduler_workers"));
    tu_resp_free(&a);
    tu_expect_code(url, "/api/v1/status", bearer, 200);
    tu_expect_code(url, "/login?once=abc", NULL, 401);
    /* the link: once, and its cookie works */
    a = tu_get(login, "", NULL);
    assert_int_equal(a.code, 303);
    char *sc = strstr(a.headers, "Set-Cookie: ");
    assert_non_null(sc);
    char cookie[200];
    snprintf(cookie, sizeof cookie, "Cookie: %.*s", (int)strcspn(sc + 12, ";\r\n"), sc + 12);
    tu_resp_free(&a);
    tu_expect_code(url, "/api/v1/workers", cookie, 200);
    tu_expect_code(login, "", NULL, 401);
}

#endif
