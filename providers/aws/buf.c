/* providers/aws/buf.c — the AWS client's growable byte buffer (aws_buf) and
 * its percent-encoding and hex helpers, shared by signing, the query protocol
 * and the credential chain. */
#include "aws.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int aws_buf_add(aws_buf *b, const void *p, size_t n)
{
    if (b->oom) return -1;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1) cap *= 2;
        char *q = realloc(b->s, cap);
        if (!q) { b->oom = true; return -1; }
        b->s = q;
        b->cap = cap;
    }
    if (n) memcpy(b->s + b->len, p, n);
    b->len += n;
    b->s[b->len] = 0;
    return 0;
}

int aws_buf_str(aws_buf *b, const char *s) { return aws_buf_add(b, s, strlen(s)); }

int aws_buf_fmt(aws_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char tmp[256];
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) { b->oom = true; return -1; }
    if ((size_t)n < sizeof tmp) return aws_buf_add(b, tmp, (size_t)n);
    char *big = malloc((size_t)n + 1);
    if (!big) { b->oom = true; return -1; }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    int rc = aws_buf_add(b, big, (size_t)n);
    free(big);
    return rc;
}

char *aws_buf_take(aws_buf *b)
{
    if (b->oom) { aws_buf_free(b); return NULL; }
    if (!b->s && aws_buf_add(b, "", 0)) return NULL;
    char *s = b->s;
    *b = (aws_buf){ 0 };
    return s;
}

void aws_buf_free(aws_buf *b)
{
    free(b->s);
    *b = (aws_buf){ 0 };
}

static bool unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_' || c == '.' || c == '~';
}

int aws_buf_pct(aws_buf *b, const char *s, size_t n, bool keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (unreserved(c) || (keep_slash && c == '/')) {
            if (aws_buf_add(b, &s[i], 1)) return -1;
        } else {
            char e[3] = { '%', hex[c >> 4], hex[c & 15] };
            if (aws_buf_add(b, e, 3)) return -1;
        }
    }
    return 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int aws_buf_unpct(aws_buf *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            c = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        }
        if (aws_buf_add(b, &c, 1)) return -1;
    }
    return 0;
}

void aws_hex(const unsigned char *p, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[p[i] >> 4];
        out[2 * i + 1] = hex[p[i] & 15];
    }
    out[2 * n] = 0;
}
