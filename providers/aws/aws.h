/* providers/aws/aws.h — what the AWS provider's files share, layer by layer
 * (no file calls back up the list): buf (bytes, percent-encoding), sigv4
 * (signing), http (one libcurl exchange), creds (the credential chain), client (HTTP through libcurl, the
 * JSON 1.1 and query/XML protocols, errors, retries), then the ECS provider. */
#ifndef HERD_AWS_H
#define HERD_AWS_H

#include <herd/provider.h>

#include <curl/curl.h>

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

/* ---- http.c ---- */
#define AWS_HTTP_MAX_BODY (64u << 20)     /* a larger response is an error, not unbounded memory */

typedef struct aws_http_req {
    const char *method, *url;
    const char *const *headers;  /* "Name: value", NULL-terminated, or NULL */
    const void *body;
    size_t body_len;
    bool content_type;           /* headers carry Content-Type (else none is sent) */
    double timeout;              /* seconds for the whole exchange (<= 0: 60) */
} aws_http_req;

typedef struct aws_http_resp {
    long status;                 /* 0 on a transport failure */
    aws_buf body;                /* NUL-terminated; the caller frees it (aws_buf_free) */
    CURLcode curl;
} aws_http_resp;

/* h: a handle to reuse (connections kept alive), or NULL for a one-off. 0 when
   an HTTP answer came back, whatever its status. */
int  aws_http(CURL *h, const aws_http_req *rq, aws_http_resp *r, herd_err *err);
bool aws_http_retryable(CURLcode rc);

/* ---- creds.c ---- */
typedef struct aws_creds {
    char *access_key, *secret_key, *token;   /* secrets: never logged */
    double expires;              /* wall-clock seconds since the epoch; 0: never */
    char source[32];             /* "environment", "shared-credentials-file", "config-file", "container-role", "iam-role" */
} aws_creds;

/* botocore's chain; AWS_PROFILE/AWS_DEFAULT_PROFILE, AWS_SHARED_CREDENTIALS_FILE,
   AWS_CONFIG_FILE, AWS_CONTAINER_CREDENTIALS_{RELATIVE,FULL}_URI,
   AWS_CONTAINER_AUTHORIZATION_TOKEN[_FILE], AWS_EC2_METADATA_SERVICE_ENDPOINT,
   AWS_EC2_METADATA_DISABLED. */
int  aws_creds_resolve(aws_creds *c, herd_err *err);
void aws_creds_clear(aws_creds *c);               /* wipes and frees; c is reusable */
/* given, else AWS_REGION, AWS_DEFAULT_REGION, the profile's region; *out malloc'd */
int  aws_region_resolve(const char *given, char **out, herd_err *err);
const char *aws_profile_name(void);
int  aws_ini_get(const char *path, const char *section, const char *key, char **out, bool *section_seen);

/* ---- client.c ---- */
typedef struct aws_client aws_client;
typedef struct json_t json_t;
typedef struct _xmlDoc xmlDoc;
typedef struct _xmlNode xmlNode;

typedef struct aws_client_opts {
    const char *region;          /* NULL: AWS_REGION, AWS_DEFAULT_REGION, the profile's */
    const char *endpoint_url;    /* NULL: AWS_ENDPOINT_URL, else AWS's per-service endpoints */
    const herd_cluster_env *env; /* log lines (never a secret); may be NULL */
} aws_client_opts;

#define AWS_ECS  "ecs", "AmazonEC2ContainerServiceV20141113"
#define AWS_LOGS "logs", "Logs_20140328"
#define AWS_CODE_MAX 128

int  aws_client_new(aws_client **out, const aws_client_opts *o, herd_err *err);
void aws_client_free(aws_client *c);
const char *aws_client_region(const aws_client *c);
unsigned long aws_client_calls(aws_client *c);     /* HTTP requests sent so far, retries included */
void aws_client_set_retry(aws_client *c, int max_attempts, double max_backoff);
/* JSON 1.1: aws_json_call(c, AWS_ECS, "RunTask", req, &resp, code, sizeof code, err).
   req is borrowed; *resp (may be NULL) is the reply object, the caller's.
   On an AWS error: err "Code: message (ecs RunTask)" and code (may be NULL) "Code". */
int  aws_json_call(aws_client *c, const char *service, const char *target_prefix, const char *op, json_t *req,
                   json_t **resp, char *code, size_t code_cap, herd_err *err);
/* Query protocol, XML reply: params as built by aws_query_init/add. */
int  aws_query_call(aws_client *c, const char *service, const char *op, const char *params, xmlDoc **resp,
                    char *code, size_t code_cap, herd_err *err);
void aws_query_init(aws_buf *q, const char *op, const char *version);
void aws_query_add(aws_buf *q, const char *key, const char *value);
xmlNode    *aws_xml_find(xmlNode *n, const char *name);
xmlNode    *aws_xml_child(xmlNode *n, const char *name);
const char *aws_xml_text(xmlNode *n, const char *name, char *buf, size_t cap);

#endif
