/* plugins/http/http.c — the "http.get" and "http.download" tasks (libcurl).
 *
 *   http.get      [url, options?] -> {status: int, headers: map (lower-case
 *                 names; repeated headers joined with ", "), body: bytes}
 *   http.download [url, path, options?] -> {path, status, size: int, sha256: hex}
 *   options: timeout (seconds, number or "500ms"/"2s"/"1m"), headers (map of
 *            request headers), max_size (int bytes; a larger body fails the
 *            task), follow (bool, default true: follow redirects)
 *
 * Transport errors fail the task with curl's message and the URL
 * (-HERD_ETIMEOUT for timeouts). http.get returns any HTTP status; http.download
 * fails on a non-2xx status. A download is written to "<path>.tmp" and renamed
 * into place only when complete, so a failed download never leaves a partial
 * file at path. Each call uses its own easy handle; the plugin pairs
 * curl_global_init/cleanup in its constructor/destructor (libcurl counts them). */
#include <herd/task.h>

#include <curl/curl.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

__attribute__((constructor)) static void http_init(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }
__attribute__((destructor)) static void http_fini(void) { curl_global_cleanup(); }

typedef struct opts {
    double timeout;                 /* 0: none */
    const herd_value *headers;
    int64_t max_size;               /* 0: unlimited */
    bool follow;
} opts;

typedef struct xfer {
    const char *task;
    herd_value *headers;            /* response headers of the last response */
    /* body: either kept in memory or streamed to a file */
    char *body;
    size_t len, cap;
    FILE *file;
    EVP_MD_CTX *md;
    int64_t size, max_size;
    bool too_big, write_failed;
    int write_errno;
} xfer;

static int bad(herd_task_ctx *ctx, const char *task, const char *what, const char *expected,
               const herd_value *got)
{
    char *s = herd_value_to_string(got);
    herd_task_fail(ctx, "%s: argument %s: expected %s, got %s %s", task, what, expected,
                   herd_type_name(herd_typeof(got)), s ? s : "?");
    free(s);
    return -HERD_EARG;
}

/* A timeout: seconds or "500ms"/"2s"/"1m"/"1h", and more than zero. */
static int duration(const herd_value *v, double *out)
{
    return herd_value_duration(v, out) == 0 && *out > 0 ? 0 : -1;
}

static int parse_opts(herd_task_ctx *ctx, const char *task, int idx, const herd_value *o, opts *op)
{
    char what[64];
    op->follow = true;
    if (herd_typeof(o) == HERD_NIL) return 0;
    snprintf(what, sizeof what, "%d (options)", idx);
    if (herd_typeof(o) != HERD_MAP) return bad(ctx, task, what, "map", o);
    for (size_t i = 0; i < herd_len(o); i++) {
        const char *k = herd_key_at(o, i);
        const herd_value *v = herd_at(o, i);
        snprintf(what, sizeof what, "%d (options.%s)", idx, k);
        if (!strcmp(k, "timeout")) {
            if (herd_typeof(v) != HERD_NIL && duration(v, &op->timeout))
                return bad(ctx, task, what, "a positive duration (seconds, or \"500ms\", \"2s\", \"1m\")", v);
        } else if (!strcmp(k, "headers")) {
            if (herd_typeof(v) != HERD_MAP) return bad(ctx, task, what, "map of str", v);
            for (size_t j = 0; j < herd_len(v); j++) {
                const char *hk = herd_key_at(v, j);
                herd_type t = herd_typeof(herd_at(v, j));
                if (t != HERD_STR && t != HERD_INT && t != HERD_FLOAT) {
                    snprintf(what, sizeof what, "%d (options.headers.%s)", idx, hk);
                    return bad(ctx, task, what, "str or number", herd_at(v, j));
                }
                if (!*hk || strpbrk(hk, ":\r\n ") ||
                    (t == HERD_STR && strpbrk(herd_as_str(herd_at(v, j)), "\r\n"))) {
                    herd_task_fail(ctx, "%s: argument %d (options.headers): invalid header \"%s\" "
                                   "(names may not contain ':', spaces or newlines; values no newlines)",
                                   task, idx, hk);
                    return -HERD_EARG;
                }
            }
            op->headers = v;
        } else if (!strcmp(k, "max_size")) {
            if (herd_typeof(v) != HERD_INT || herd_as_int(v) <= 0)
                return bad(ctx, task, what, "a positive int (bytes)", v);
            op->max_size = herd_as_int(v);
        } else if (!strcmp(k, "follow")) {
            if (herd_typeof(v) != HERD_BOOL) return bad(ctx, task, what, "bool", v);
            op->follow = herd_as_bool(v);
        } else {
            herd_task_fail(ctx, "%s: argument %d (options): unknown option \"%s\" "
                           "(expected timeout, headers, max_size, follow)", task, idx, k);
            return -HERD_EARG;
        }
    }
    return 0;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    xfer *x = ud;
    size_t len = size * n;
    if (x->max_size && x->size + (int64_t)len > x->max_size) {
        x->too_big = true;
        return 0;                                   /* aborts with CURLE_WRITE_ERROR */
    }
    if (x->file) {
        if (fwrite(p, 1, len, x->file) != len) {
            x->write_failed = true;
            x->write_errno = errno;
            return 0;
        }
        if (x->md) EVP_DigestUpdate(x->md, p, len);
    } else {
        if (x->len + len + 1 > x->cap) {
            size_t cap = x->cap ? x->cap : 16384;
            while (x->len + len + 1 > cap) cap *= 2;
            char *nb = realloc(x->body, cap);
            if (!nb) { x->write_failed = true; x->write_errno = ENOMEM; return 0; }
            x->body = nb;
            x->cap = cap;
        }
        memcpy(x->body + x->len, p, len);
        x->len += len;
    }
    x->size += (int64_t)len;
    return len;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    xfer *x = ud;
    size_t len = size * n;
    if (len >= 5 && !strncmp(p, "HTTP/", 5)) {     /* a new response (redirect, 100-continue) */
        herd_value_free(x->headers);
        x->headers = herd_map();
        return len;
    }
    const char *colon = memchr(p, ':', len);
    if (!colon || !x->headers) return len;
    size_t kl = (size_t)(colon - p);
    char key[256];
    if (kl == 0 || kl >= sizeof key) return len;
    for (size_t i = 0; i < kl; i++) key[i] = (char)tolower((unsigned char)p[i]);
    key[kl] = '\0';
    const char *v = colon + 1, *end = p + len;
    while (v < end && (*v == ' ' || *v == '\t')) v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t')) end--;
    const herd_value *prev = herd_map_get(x->headers, key);
    herd_value *nv;
    if (prev) {
        size_t pl = herd_len(prev), vl = (size_t)(end - v);
        char *s = malloc(pl + 2 + vl + 1);
        if (!s) return 0;
        memcpy(s, herd_as_str(prev), pl);
        memcpy(s + pl, ", ", 2);
        memcpy(s + pl + 2, v, vl);
        nv = herd_strn(s, pl + 2 + vl);
        free(s);
    } else {
        nv = herd_strn(v, (size_t)(end - v));
    }
    return herd_map_set(x->headers, key, nv) ? 0 : len;
}

/* Perform the request; 0 with *status, or a failed task. */
static int perform(herd_task_ctx *ctx, const char *url, const opts *op, xfer *x, long *status)
{
    char errbuf[CURL_ERROR_SIZE] = "";
    struct curl_slist *hdrs = NULL;
    CURL *c = curl_easy_init();
    if (!c) return herd_task_fail(ctx, "%s: cannot create a curl handle", x->task);
    for (size_t i = 0; op->headers && i < herd_len(op->headers); i++) {
        const herd_value *v = herd_at(op->headers, i);
        char *val = herd_typeof(v) == HERD_STR ? strdup(herd_as_str(v)) : herd_value_to_string(v);
        char *line = NULL;
        if (!val || asprintf(&line, "%s: %s", herd_key_at(op->headers, i), val) < 0) line = NULL;
        struct curl_slist *nh = line ? curl_slist_append(hdrs, line) : NULL;
        free(val);
        free(line);
        if (!nh) {
            curl_slist_free_all(hdrs);
            curl_easy_cleanup(c);
            return herd_task_fail(ctx, "%s: out of memory", x->task);
        }
        hdrs = nh;
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, op->follow ? 1L : 0L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 20L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_USERAGENT, "herd-http/" HERD_VERSION_STRING);
    curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
    if (op->timeout > 0) curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(op->timeout * 1000) + 1);
    if (op->max_size) curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)op->max_size);
    if (hdrs) curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
    CURLcode cc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    if (cc == CURLE_OK) return 0;
    if (x->too_big || cc == CURLE_FILESIZE_EXCEEDED)
        return herd_task_fail(ctx, "%s %s: response body exceeds max_size (%lld bytes)", x->task, url,
                              (long long)op->max_size);
    if (x->write_failed)
        return herd_task_fail(ctx, "%s %s: cannot store the body: %s", x->task, url, strerror(x->write_errno));
    herd_task_fail(ctx, "%s %s: %s", x->task, url, *errbuf ? errbuf : curl_easy_strerror(cc));
    return cc == CURLE_OPERATION_TIMEDOUT ? -HERD_ETIMEOUT : -HERD_EFAILED;
}

static int check_url(herd_task_ctx *ctx, const char *task, const herd_value *url)
{
    if (herd_typeof(url) != HERD_STR || !*herd_as_str(url))
        return bad(ctx, task, "0 (url)", "a non-empty str", url);
    return 0;
}

static int http_get(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    size_t n = herd_len(args);
    if (herd_typeof(args) != HERD_ARRAY || n < 1 || n > 2) {
        herd_task_fail(ctx, "http.get: expected arguments [url (str), options (map, optional)], got %zu", n);
        return -HERD_EARG;
    }
    opts op = {0};
    int rc = check_url(ctx, "http.get", herd_at(args, 0));
    if (rc || (rc = parse_opts(ctx, "http.get", 1, n > 1 ? herd_at(args, 1) : NULL, &op))) return rc;
    const char *url = herd_as_str(herd_at(args, 0));
    xfer x = { .task = "http.get", .max_size = op.max_size };
    long status = 0;
    rc = perform(ctx, url, &op, &x, &status);
    if (rc == 0) {
        herd_value *m = herd_map();
        herd_value *h = x.headers ? x.headers : herd_map();
        x.headers = NULL;
        if (!m || herd_map_set(m, "status", herd_int(status)) || herd_map_set(m, "headers", h) ||
            herd_map_set(m, "body", herd_bytes(x.body ? x.body : "", x.len))) {
            herd_value_free(m);
            rc = herd_task_fail(ctx, "http.get: out of memory");
        } else {
            *out = m;
        }
    }
    herd_value_free(x.headers);
    free(x.body);
    return rc;
}
HERD_TASK_NAMED(http_get, "http.get");

static int http_download(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    size_t n = herd_len(args);
    if (herd_typeof(args) != HERD_ARRAY || n < 2 || n > 3) {
        herd_task_fail(ctx, "http.download: expected arguments [url (str), path (str), options (map, "
                       "optional)], got %zu", n);
        return -HERD_EARG;
    }
    opts op = {0};
    int rc = check_url(ctx, "http.download", herd_at(args, 0));
    if (rc) return rc;
    if (herd_typeof(herd_at(args, 1)) != HERD_STR || !*herd_as_str(herd_at(args, 1)))
        return bad(ctx, "http.download", "1 (path)", "a non-empty str", herd_at(args, 1));
    if ((rc = parse_opts(ctx, "http.download", 2, n > 2 ? herd_at(args, 2) : NULL, &op))) return rc;
    const char *url = herd_as_str(herd_at(args, 0)), *path = herd_as_str(herd_at(args, 1));

    char *tmp = NULL;
    if (asprintf(&tmp, "%s.tmp", path) < 0) return herd_task_fail(ctx, "http.download: out of memory");
    xfer x = { .task = "http.download", .max_size = op.max_size };
    if (!(x.file = fopen(tmp, "wb"))) {
        rc = herd_task_fail(ctx, "http.download %s: cannot create %s: %s", url, tmp, strerror(errno));
        free(tmp);
        return rc;
    }
    if (!(x.md = EVP_MD_CTX_new()) || !EVP_DigestInit_ex(x.md, EVP_sha256(), NULL)) {
        rc = herd_task_fail(ctx, "http.download: cannot initialise SHA-256");
        goto out;
    }
    long status = 0;
    if ((rc = perform(ctx, url, &op, &x, &status))) goto out;
    if (status < 200 || status > 299) {
        rc = herd_task_fail(ctx, "http.download %s: HTTP status %ld", url, status);
        goto out;
    }
    int e = fclose(x.file) ? errno : 0;
    x.file = NULL;
    if (e) {
        rc = herd_task_fail(ctx, "http.download %s: cannot write %s: %s", url, tmp, strerror(e));
        goto out;
    }
    if (rename(tmp, path)) {
        rc = herd_task_fail(ctx, "http.download %s: cannot rename %s to %s: %s", url, tmp, path, strerror(errno));
        goto out;
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    char hex[2 * EVP_MAX_MD_SIZE + 1];
    EVP_DigestFinal_ex(x.md, md, &mdlen);
    for (unsigned i = 0; i < mdlen; i++) sprintf(hex + 2 * i, "%02x", md[i]);
    hex[2 * mdlen] = '\0';
    herd_value *m = herd_map();
    if (!m || herd_map_set(m, "path", herd_str(path)) || herd_map_set(m, "status", herd_int(status)) ||
        herd_map_set(m, "size", herd_int(x.size)) || herd_map_set(m, "sha256", herd_str(hex))) {
        herd_value_free(m);
        rc = herd_task_fail(ctx, "http.download: out of memory");
    } else {
        *out = m;
    }
out:
    if (x.file) fclose(x.file);
    if (rc) unlink(tmp);
    EVP_MD_CTX_free(x.md);
    herd_value_free(x.headers);
    free(tmp);
    return rc;
}
HERD_TASK_NAMED(http_download, "http.download");
