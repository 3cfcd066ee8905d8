/* providers/aws/sigv4.c — AWS Signature Version 4 (AWS4-HMAC-SHA256) on
 * OpenSSL: the canonical request, the string to sign, the derived key and the
 * Authorization header value. Pure computation (no clock, no I/O), checked
 * byte for byte against AWS's test suite (tests/unit/test_aws_sigv4.c). */
#include "aws.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>

void aws_sha256_hex(const void *p, size_t n, char out[65])
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    EVP_Digest(p, n, md, &mdlen, EVP_sha256(), NULL);
    aws_hex(md, 32, out);
}

static void hmac(const void *key, size_t klen, const char *msg, unsigned char out[32])
{
    unsigned int n = 32;
    HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, strlen(msg), out, &n);
}

/* RFC 3986 dot-segment removal, empty segments collapsed, each segment
 * percent-encoded; a trailing slash is kept. */
static int canonical_uri(aws_buf *b, const char *path)
{
    if (!path || !*path) return aws_buf_str(b, "/");
    size_t n = strlen(path), nseg = 0;
    const char **seg = calloc(n + 1, sizeof *seg);
    size_t *len = calloc(n + 1, sizeof *len);
    if (!seg || !len) { free(seg); free(len); b->oom = true; return -1; }
    for (const char *p = path; *p;) {
        while (*p == '/') p++;
        if (!*p) break;
        const char *e = strchr(p, '/');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == 1 && p[0] == '.') { /* skip */ }
        else if (l == 2 && p[0] == '.' && p[1] == '.') { if (nseg) nseg--; }
        else { seg[nseg] = p; len[nseg++] = l; }
        p += l;
    }
    for (size_t i = 0; i < nseg; i++) {
        aws_buf_str(b, "/");
        aws_buf_pct(b, seg[i], len[i], false);
    }
    if (!nseg || path[n - 1] == '/') aws_buf_str(b, "/");
    free(seg);
    free(len);
    return b->oom ? -1 : 0;
}

typedef struct { char *k, *v; } kv;

static int kv_cmp(const void *a, const void *b)
{
    const kv *x = a, *y = b;
    int c = strcmp(x->k, y->k);
    return c ? c : strcmp(x->v, y->v);
}

/* key=value pairs, each decoded then encoded again, sorted by key and value. */
static int canonical_query(aws_buf *b, const char *q)
{
    if (!q || !*q) return 0;
    size_t cap = 1;
    for (const char *p = q; *p; p++) cap += *p == '&';
    kv *items = calloc(cap, sizeof *items);
    if (!items) { b->oom = true; return -1; }
    size_t n = 0;
    int rc = 0;
    for (const char *p = q; *p;) {
        const char *e = strchr(p, '&');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l) {
            const char *eq = memchr(p, '=', l);
            size_t kl = eq ? (size_t)(eq - p) : l;
            aws_buf raw = { 0 }, k = { 0 }, v = { 0 };
            aws_buf_unpct(&raw, p, kl);
            aws_buf_pct(&k, raw.s ? raw.s : "", raw.len, false);
            aws_buf_free(&raw);
            if (eq) aws_buf_unpct(&raw, eq + 1, l - kl - 1);
            aws_buf_pct(&v, raw.s ? raw.s : "", raw.len, false);
            aws_buf_free(&raw);
            items[n].k = aws_buf_take(&k);
            items[n].v = aws_buf_take(&v);
            if (!items[n].k || !items[n].v) { free(items[n].k); free(items[n].v); rc = -1; break; }
            n++;
        }
        p += l + (e ? 1 : 0);
        if (!e) break;
    }
    if (!rc) {
        qsort(items, n, sizeof *items, kv_cmp);
        for (size_t i = 0; i < n; i++)
            aws_buf_fmt(b, "%s%s=%s", i ? "&" : "", items[i].k, items[i].v);
    }
    for (size_t i = 0; i < n; i++) { free(items[i].k); free(items[i].v); }
    free(items);
    if (rc) b->oom = true;
    return b->oom ? -1 : 0;
}

/* A header value trimmed, with runs of spaces and tabs collapsed to one. */
static void trimmed(aws_buf *b, const char *v)
{
    while (*v == ' ' || *v == '\t') v++;
    bool space = false;
    for (; *v; v++) {
        if (*v == ' ' || *v == '\t') { space = true; continue; }
        if (space) aws_buf_add(b, " ", 1);
        space = false;
        aws_buf_add(b, v, 1);
    }
}

static int hdr_cmp(const void *a, const void *b)
{
    return strcmp(((const kv *)a)->k, ((const kv *)b)->k);
}

int aws_sigv4_sign(const aws_sigv4_in *in, aws_sigv4_out *out, herd_err *err)
{
    *out = (aws_sigv4_out){ 0 };
    if (!in->method || !in->amz_date || strlen(in->amz_date) != 16 || !in->region || !in->service ||
        !in->access_key || !in->secret_key)
        return herd_err_set(err, -HERD_EARG, "sigv4: missing method, date, region, service or credentials");
    /* headers: lower-cased names, repeated names joined with ',' in order */
    kv *h = calloc(in->nheaders ? in->nheaders : 1, sizeof *h);
    if (!h) return herd_err_set(err, -12, "sigv4: out of memory");
    size_t nh = 0;
    aws_buf c = { 0 };
    for (size_t i = 0; i < in->nheaders; i++) {
        aws_buf name = { 0 }, val = { 0 };
        for (const char *p = in->headers[i].name; *p; p++) {
            char l = (char)tolower((unsigned char)*p);
            aws_buf_add(&name, &l, 1);
        }
        trimmed(&val, in->headers[i].value);
        char *nm = aws_buf_take(&name), *vv = aws_buf_take(&val);
        if (!nm || !vv) { free(nm); free(vv); c.oom = true; break; }
        size_t j = 0;
        while (j < nh && strcmp(h[j].k, nm) != 0) j++;
        if (j < nh) {
            aws_buf m = { 0 };
            aws_buf_fmt(&m, "%s,%s", h[j].v, vv);
            free(h[j].v);
            h[j].v = aws_buf_take(&m);
            free(nm);
            free(vv);
            if (!h[j].v) { c.oom = true; break; }
        } else {
            h[nh].k = nm;
            h[nh++].v = vv;
        }
    }
    qsort(h, nh, sizeof *h, hdr_cmp);

    aws_buf signed_h = { 0 };
    for (size_t i = 0; i < nh; i++) aws_buf_fmt(&signed_h, "%s%s", i ? ";" : "", h[i].k);
    char payload[65];
    aws_sha256_hex(in->body ? in->body : "", in->body ? in->body_len : 0, payload);

    aws_buf_fmt(&c, "%s\n", in->method);
    canonical_uri(&c, in->path);
    aws_buf_str(&c, "\n");
    canonical_query(&c, in->query);
    aws_buf_str(&c, "\n");
    for (size_t i = 0; i < nh; i++) aws_buf_fmt(&c, "%s:%s\n", h[i].k, h[i].v);
    aws_buf_fmt(&c, "\n%s\n%s", signed_h.s ? signed_h.s : "", payload);
    for (size_t i = 0; i < nh; i++) { free(h[i].k); free(h[i].v); }
    free(h);
    if (c.oom || signed_h.oom) {
        aws_buf_free(&c);
        aws_buf_free(&signed_h);
        return herd_err_set(err, -12, "sigv4: out of memory");
    }

    char date[9];
    memcpy(date, in->amz_date, 8);
    date[8] = 0;
    char creq_hash[65];
    aws_sha256_hex(c.s, c.len, creq_hash);
    aws_buf sts = { 0 }, scope = { 0 };
    aws_buf_fmt(&scope, "%s/%s/%s/aws4_request", date, in->region, in->service);
    aws_buf_fmt(&sts, "AWS4-HMAC-SHA256\n%s\n%s\n%s", in->amz_date, scope.s ? scope.s : "", creq_hash);

    /* kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request") */
    aws_buf k0 = { 0 };
    aws_buf_fmt(&k0, "AWS4%s", in->secret_key);
    unsigned char k1[32], k2[32], k3[32], k4[32], sig[32];
    hmac(k0.s ? k0.s : "", k0.len, date, k1);
    if (k0.s) OPENSSL_cleanse(k0.s, k0.len);
    aws_buf_free(&k0);
    hmac(k1, 32, in->region, k2);
    hmac(k2, 32, in->service, k3);
    hmac(k3, 32, "aws4_request", k4);
    hmac(k4, 32, sts.s ? sts.s : "", sig);
    OPENSSL_cleanse(k1, 32);
    OPENSSL_cleanse(k2, 32);
    OPENSSL_cleanse(k3, 32);
    OPENSSL_cleanse(k4, 32);
    char sighex[65];
    aws_hex(sig, 32, sighex);

    aws_buf authz = { 0 };
    aws_buf_fmt(&authz, "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s", in->access_key,
                scope.s ? scope.s : "", signed_h.s ? signed_h.s : "", sighex);
    aws_buf_free(&scope);
    aws_buf_free(&signed_h);
    out->creq = aws_buf_take(&c);
    out->sts = aws_buf_take(&sts);
    out->authz = aws_buf_take(&authz);
    if (!out->creq || !out->sts || !out->authz) {
        aws_sigv4_out_free(out);
        return herd_err_set(err, -12, "sigv4: out of memory");
    }
    return 0;
}

void aws_sigv4_out_free(aws_sigv4_out *o)
{
    free(o->creq);
    free(o->sts);
    free(o->authz);
    *o = (aws_sigv4_out){ 0 };
}
