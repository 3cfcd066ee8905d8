/* core/json.c — JSON strings and numbers into an evbuffer (see json.h). */
#include "json.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define LIT(b, s) evbuffer_add((b), (s), sizeof(s) - 1)

/* Length of the valid UTF-8 sequence at p (n bytes left), or 0. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    size_t len;
    unsigned min;
    unsigned c = p[0];
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf) { len = 2; min = 0x80; c &= 0x1f; }
    else if (c >= 0xe0 && c <= 0xef) { len = 3; min = 0x800; c &= 0x0f; }
    else if (c >= 0xf0 && c <= 0xf4) { len = 4; min = 0x10000; c &= 0x07; }
    else return 0;
    if (n < len) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80) return 0;
        c = (c << 6) | (p[i] & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) return 0;
    return len;
}

void herd_json_strn(struct evbuffer *b, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    LIT(b, "\"");
    size_t run = 0;                /* bytes copied as they are, pending */
    for (size_t i = 0; i < n;) {
        unsigned c = p[i];
        size_t l = c < 0x80 ? 1 : utf8_len(p + i, n - i);
        int plain = l > 1 || (l == 1 && c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' && c != 0x7f);
        if (plain) { run += l; i += l; continue; }
        if (run) evbuffer_add(b, p + i - run, run);
        run = 0;
        if (l == 0) { LIT(b, "\\ufffd"); i++; continue; }
        switch (c) {
        case '"': LIT(b, "\\\""); break;
        case '\\': LIT(b, "\\\\"); break;
        case '\n': LIT(b, "\\n"); break;
        case '\t': LIT(b, "\\t"); break;
        case '\r': LIT(b, "\\r"); break;
        default: evbuffer_add_printf(b, "\\u%04x", c);
        }
        i++;
    }
    if (run) evbuffer_add(b, p + n - run, run);
    LIT(b, "\"");
}

void herd_json_str(struct evbuffer *b, const char *s)
{
    if (!s) LIT(b, "null");
    else herd_json_strn(b, s, strlen(s));
}

void herd_json_num(struct evbuffer *b, double v)
{
    if (!isfinite(v)) { LIT(b, "null"); return; }
    if (v == (double)(long long)v && fabs(v) < 9e15) { evbuffer_add_printf(b, "%lld", (long long)v); return; }
    char buf[40];
    for (int prec = 6; prec <= 17; prec++) {     /* the shortest that reads back the same */
        snprintf(buf, sizeof buf, "%.*g", prec, v);
        double back;
        if (sscanf(buf, "%lf", &back) == 1 && back == v) break;
    }
    evbuffer_add(b, buf, strlen(buf));
}

void herd_json_key(struct evbuffer *b, const char *key, int first)
{
    if (!first) LIT(b, ",");
    herd_json_str(b, key);
    LIT(b, ":");
}
