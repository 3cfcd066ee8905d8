/* providers/aws/aws.h — what the AWS provider's files share, layer by layer
 * (no file calls back up the list): buf (bytes, percent-encoding), sigv4
 * (signing), creds (the credential chain), client (HTTP through libcurl, the
 * JSON 1.1 and query/XML protocols, errors, retries), then the ECS provider. */
#ifndef HERD_AWS_H
#define HERD_AWS_H

#include <herd/provider.h>

#include <stdbool.h>
#include <stddef.h>

/* ---- buf.c ---- */
typedef struct aws_buf {
    char *s;        /* NUL-terminated while non-NULL */
    size_t len, cap;
    bool oom;       /* an allocation failed: every later add is a no-op */
} aws_buf;

int   aws_buf_add(aws_buf *b, const void *p, size_t n);
int   aws_buf_str(aws_buf *b, const char *s);
int   aws_buf_fmt(aws_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int   aws_buf_pct(aws_buf *b, const char *s, size_t n, bool keep_slash);   /* RFC 3986 unreserved kept */
int   aws_buf_unpct(aws_buf *b, const char *s, size_t n);
char *aws_buf_take(aws_buf *b);        /* the string (caller frees); NULL after an allocation failure */
void  aws_buf_free(aws_buf *b);
void  aws_hex(const unsigned char *p, size_t n, char *out);   /* out: 2n+1 bytes, lower case */

/* ---- sigv4.c ---- */
typedef struct aws_hdr { const char *name, *value; } aws_hdr;

typedef struct aws_sigv4_in {
    const char *method;
    const char *path;            /* as in the request line, before '?' */
    const char *query;           /* after '?', or NULL */
    const aws_hdr *headers;      /* every header to sign, Host and X-Amz-Date included */
    size_t nheaders;
    const void *body;
    size_t body_len;
    const char *amz_date;        /* "20150830T123600Z" */
    const char *region, *service;
    const char *access_key, *secret_key;
} aws_sigv4_in;

typedef struct aws_sigv4_out {
    char *creq, *sts, *authz;    /* canonical request, string to sign, Authorization value */
} aws_sigv4_out;

void aws_sha256_hex(const void *p, size_t n, char out[65]);
int  aws_sigv4_sign(const aws_sigv4_in *in, aws_sigv4_out *out, herd_err *err);
void aws_sigv4_out_free(aws_sigv4_out *o);

#endif
