/* providers/aws/client.c — the AWS client: endpoints, signing each request
 * with fresh credentials, the JSON 1.1 protocol (ECS, CloudWatch Logs) and the
 * query protocol with XML replies (EC2, IAM), the error body's code and message
 * surfaced ("ClusterNotFoundException: Cluster not found."), and botocore's
 * standard retry mode: at most 3 attempts, jittered exponential backoff, on
 * throttling and transient codes, HTTP 429/5xx and connection errors. */
#include "aws.h"

#include <errno.h>
#include <jansson.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct aws_client {
    pthread_mutex_t mu;          /* one request at a time on the handle; guards creds */
    CURL *curl;
    aws_creds creds;
    char *region, *endpoint;     /* endpoint: NULL for AWS's own per-service endpoints */
    const herd_cluster_env *env; /* for log lines; may be NULL */
    int max_attempts;
    double max_backoff;
    unsigned long ncalls;        /* HTTP requests sent (attempts included) */
};

int aws_client_new(aws_client **out, const aws_client_opts *o, herd_err *err)
{
    *out = NULL;
    aws_client *c = calloc(1, sizeof *c);
    if (!c) return herd_err_set(err, -ENOMEM, "out of memory");
    pthread_mutex_init(&c->mu, NULL);
    c->env = o->env;
    c->max_attempts = 3;
    c->max_backoff = 20;
    int rc = aws_region_resolve(o->region, &c->region, err);
    const char *ep = o->endpoint_url && *o->endpoint_url ? o->endpoint_url : getenv("AWS_ENDPOINT_URL");
    if (!rc && ep && *ep) {
        if (strncmp(ep, "http://", 7) != 0 && strncmp(ep, "https://", 8) != 0)
            rc = herd_err_set(err, -HERD_ECONFIG, "endpoint_url: expected an http:// or https:// URL, got \"%s\"", ep);
        else if (!(c->endpoint = strdup(ep)))
            rc = herd_err_set(err, -ENOMEM, "out of memory");
        else {
            size_t n = strlen(c->endpoint);
            while (n > 8 && c->endpoint[n - 1] == '/') c->endpoint[--n] = 0;
        }
    }
    if (!rc) rc = aws_creds_resolve(&c->creds, err);
    if (!rc && !(c->curl = curl_easy_init())) rc = herd_err_set(err, -ENOMEM, "cannot create an HTTP handle");
    if (rc) { aws_client_free(c); return rc; }
    if (c->env) herd_log(c->env, HERD_LOG_DEBUG, "aws: region %s, endpoint %s, credentials from %s", c->region,
                         c->endpoint ? c->endpoint : "AWS", c->creds.source);
    *out = c;
    return 0;
}

void aws_client_free(aws_client *c)
{
    if (!c) return;
    aws_creds_clear(&c->creds);
    if (c->curl) curl_easy_cleanup(c->curl);
    free(c->region);
    free(c->endpoint);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

const char *aws_client_region(const aws_client *c) { return c->region; }

unsigned long aws_client_calls(aws_client *c)
{
    pthread_mutex_lock(&c->mu);
    unsigned long n = c->ncalls;
    pthread_mutex_unlock(&c->mu);
    return n;
}

void aws_client_set_retry(aws_client *c, int max_attempts, double max_backoff)
{
    c->max_attempts = max_attempts > 0 ? max_attempts : 1;
    c->max_backoff = max_backoff;
}

/* Temporary credentials are fetched again 10 minutes before they expire
   (botocore's mandatory refresh). Called with mu held. */
static int fresh_creds(aws_client *c, herd_err *err)
{
    if (!c->creds.expires || (double)time(NULL) < c->creds.expires - 600) return 0;
    aws_creds n = { 0 };
    int rc = aws_creds_resolve(&n, err);
    if (rc) return herd_err_prefix(err, "refreshing AWS credentials (those from %s expire at %.0f)", c->creds.source,
                                   c->creds.expires);
    aws_creds_clear(&c->creds);
    c->creds = n;
    if (c->env) herd_log(c->env, HERD_LOG_INFO, "aws: credentials refreshed from %s", c->creds.source);
    return 0;
}

static bool code_retryable(const char *code)
{
    static const char *const codes[] = {
        /* throttling */
        "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
        "TooManyRequestsException", "ProvisionedThroughputExceededException", "TransactionInProgressException",
        "RequestLimitExceeded", "BandwidthLimitExceeded", "LimitExceededException", "RequestThrottled", "SlowDown",
        "PriorRequestNotComplete", "EC2ThrottledException",
        /* transient */
        "RequestTimeout", "RequestTimeoutException", "InternalError", "ServerException", NULL };
    for (size_t i = 0; code && codes[i]; i++)
        if (strcmp(code, codes[i]) == 0) return true;
    return false;
}

static double rand01(void)
{
    unsigned int r = 0;
    if (RAND_bytes((unsigned char *)&r, sizeof r) != 1) r = (unsigned int)time(NULL) * 2654435761u;
    return (double)r / 4294967296.0;
}

/* JSON error body: {"__type": "ns#Code:extra", "message": "…"} (or "Message") */
static void json_error(const char *body, char *code, size_t cap, char *msg, size_t mcap)
{
    json_t *j = json_loads(body, 0, NULL);
    const char *t = json_string_value(json_object_get(j, "__type"));
    if (!t) t = json_string_value(json_object_get(j, "code"));
    const char *m = json_string_value(json_object_get(j, "message"));
    if (!m) m = json_string_value(json_object_get(j, "Message"));
    if (t) {
        const char *h = strrchr(t, '#');
        if (h) t = h + 1;
        size_t n = strcspn(t, ":");
        snprintf(code, cap, "%.*s", (int)(n < cap ? n : cap - 1), t);
    }
    if (m) snprintf(msg, mcap, "%s", m);
    json_decref(j);
}

/* Depth-first: the first element with this local name under n (n included). */
xmlNode *aws_xml_find(xmlNode *n, const char *name)
{
    for (; n; n = n->next) {
        if (n->type == XML_ELEMENT_NODE && n->name && strcmp((const char *)n->name, name) == 0) return n;
        xmlNode *k = aws_xml_find(n->children, name);
        if (k) return k;
    }
    return NULL;
}

/* The first child element of n with this name (direct children only). */
xmlNode *aws_xml_child(xmlNode *n, const char *name)
{
    for (xmlNode *k = n ? n->children : NULL; k; k = k->next)
        if (k->type == XML_ELEMENT_NODE && strcmp((const char *)k->name, name) == 0) return k;
    return NULL;
}

/* The text of child `name` of n, copied into buf ("" when absent). */
const char *aws_xml_text(xmlNode *n, const char *name, char *buf, size_t cap)
{
    buf[0] = 0;
    xmlNode *k = name ? aws_xml_child(n, name) : n;
    if (!k) return buf;
    xmlChar *t = xmlNodeGetContent(k);
    if (t) snprintf(buf, cap, "%s", (const char *)t);
    xmlFree(t);
    return buf;
}

static xmlDoc *xml_parse(const char *body, size_t len)
{
    return xmlReadMemory(body, (int)len, "aws.xml", NULL, XML_PARSE_NONET | XML_PARSE_NOBLANKS | XML_PARSE_NOERROR |
                                                         XML_PARSE_NOWARNING);
}

static void xml_error(const char *body, size_t len, char *code, size_t cap, char *msg, size_t mcap)
{
    xmlDoc *d = xml_parse(body, len);
    if (!d) return;
    xmlNode *root = xmlDocGetRootElement(d);
    xmlNode *e = aws_xml_find(root, "Error");
    if (e) {
        aws_xml_text(e, "Code", code, cap);
        aws_xml_text(e, "Message", msg, mcap);
    }
    xmlFreeDoc(d);
}

typedef struct call {
    const char *service;         /* signing name and endpoint prefix: ecs, logs, ec2, iam */
    const char *op;              /* for messages */
    const char *target;          /* JSON 1.1: X-Amz-Target; NULL for the query protocol */
    const char *body;
    size_t body_len;
} call;

/* One signed request with retries. 0 with the 2xx body in *resp; an AWS error
   fills code (may be NULL) and err with "Code: message". */
static int send_call(aws_client *c, const call *k, aws_buf *resp, char *code_out, size_t code_cap, herd_err *err)
{
    bool json = k->target != NULL;
    /* IAM is global: its endpoint has no region and it signs with us-east-1 */
    bool global = strcmp(k->service, "iam") == 0;
    const char *sign_region = global ? "us-east-1" : c->region;
    aws_buf url = { 0 }, host = { 0 };
    if (c->endpoint) aws_buf_fmt(&url, "%s/", c->endpoint);
    else if (global) aws_buf_str(&url, "https://iam.amazonaws.com/");
    else aws_buf_fmt(&url, "https://%s.%s.amazonaws.com/", k->service, c->region);
    {
        const char *h = strstr(url.s ? url.s : "", "://");
        h = h ? h + 3 : "";
        aws_buf_add(&host, h, strcspn(h, "/"));
    }
    if (url.oom || host.oom) { aws_buf_free(&url); aws_buf_free(&host); return herd_err_set(err, -ENOMEM, "out of memory"); }
    int rc = 0;
    char code[128] = "", msg[768] = "";
    for (int attempt = 1;; attempt++) {
        code[0] = msg[0] = 0;
        pthread_mutex_lock(&c->mu);
        rc = fresh_creds(c, err);
        if (rc) { pthread_mutex_unlock(&c->mu); break; }
        char amz_date[17];
        time_t now = time(NULL);
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(amz_date, sizeof amz_date, "%Y%m%dT%H%M%SZ", &tm);
        const char *ctype = json ? "application/x-amz-json-1.1" : "application/x-www-form-urlencoded; charset=utf-8";
        aws_hdr sh[5] = { { "Content-Type", ctype }, { "Host", host.s }, { "X-Amz-Date", amz_date } };
        size_t nsh = 3;
        if (json) sh[nsh++] = (aws_hdr){ "X-Amz-Target", k->target };
        if (c->creds.token) sh[nsh++] = (aws_hdr){ "X-Amz-Security-Token", c->creds.token };
        aws_sigv4_in in = { .method = "POST", .path = "/", .headers = sh, .nheaders = nsh, .body = k->body,
                            .body_len = k->body_len, .amz_date = amz_date, .region = sign_region,
                            .service = k->service, .access_key = c->creds.access_key,
                            .secret_key = c->creds.secret_key };
        aws_sigv4_out so;
        rc = aws_sigv4_sign(&in, &so, err);
        if (rc) { pthread_mutex_unlock(&c->mu); break; }
        aws_buf hb[6] = { { 0 } };
        const char *hdrs[7];
        size_t nh = 0;
        for (size_t i = 0; i < nsh; i++) {
            if (strcmp(sh[i].name, "Host") == 0) continue;   /* libcurl sends it from the URL */
            aws_buf_fmt(&hb[nh], "%s: %s", sh[i].name, sh[i].value);
            hdrs[nh] = hb[nh].s;
            nh++;
        }
        aws_buf_fmt(&hb[nh], "Authorization: %s", so.authz);
        hdrs[nh] = hb[nh].s;
        nh++;
        hdrs[nh] = NULL;
        aws_sigv4_out_free(&so);
        aws_http_req rq = { .method = "POST", .url = url.s, .headers = hdrs, .body = k->body,
                            .body_len = k->body_len, .content_type = true, .timeout = 60 };
        aws_http_resp r;
        c->ncalls++;
        rc = aws_http(c->curl, &rq, &r, err);
        pthread_mutex_unlock(&c->mu);
        for (size_t i = 0; i < nh; i++) {
            if (hb[i].s) OPENSSL_cleanse(hb[i].s, hb[i].len);
            aws_buf_free(&hb[i]);
        }
        bool retry;
        if (rc) {
            retry = aws_http_retryable(r.curl);
            herd_err_prefix(err, "%s %s", k->service, k->op);
        } else if (r.status >= 200 && r.status < 300) {
            *resp = r.body;
            break;
        } else {
            if (json) json_error(r.body.s, code, sizeof code, msg, sizeof msg);
            else xml_error(r.body.s, r.body.len, code, sizeof code, msg, sizeof msg);
            retry = r.status == 429 || r.status == 500 || r.status == 502 || r.status == 503 || r.status == 504 ||
                    code_retryable(code);
            if (code[0])
                rc = herd_err_set(err, -HERD_EPROVIDER, "%s%s%s (%s %s)", code, msg[0] ? ": " : "", msg, k->service,
                                  k->op);
            else
                rc = herd_err_set(err, -HERD_EPROVIDER, "HTTP %ld: %.200s (%s %s)", r.status, r.body.s, k->service,
                                  k->op);
            aws_buf_free(&r.body);
        }
        if (!retry || attempt >= c->max_attempts) break;
        double delay = rand01() * (double)(1u << (attempt - 1));
        if (delay > c->max_backoff) delay = c->max_backoff;
        if (c->env)
            herd_log(c->env, HERD_LOG_DEBUG, "aws: %s %s attempt %d failed (%s); retrying in %.2f s", k->service,
                     k->op, attempt, err->msg, delay);
        struct timespec ts = { (time_t)delay, (long)((delay - (double)(time_t)delay) * 1e9) };
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
    }
    if (code_out && code_cap) snprintf(code_out, code_cap, "%s", rc ? code : "");
    aws_buf_free(&url);
    aws_buf_free(&host);
    return rc;
}

int aws_json_call(aws_client *c, const char *service, const char *target_prefix, const char *op, json_t *req,
                  json_t **resp, char *code, size_t code_cap, herd_err *err)
{
    if (resp) *resp = NULL;
    char *body = json_dumps(req, JSON_COMPACT);
    if (!body) return herd_err_set(err, -ENOMEM, "%s %s: cannot encode the request", service, op);
    char target[160];
    snprintf(target, sizeof target, "%s.%s", target_prefix, op);
    call k = { service, op, target, body, strlen(body) };
    aws_buf out = { 0 };
    int rc = send_call(c, &k, &out, code, code_cap, err);
    free(body);
    if (rc) return rc;
    json_error_t je;
    /* some operations (CreateLogGroup, PutRetentionPolicy) answer 200 with no body */
    size_t sp = 0;
    while (sp < out.len && (out.s[sp] == ' ' || out.s[sp] == '\n' || out.s[sp] == '\r' || out.s[sp] == '\t')) sp++;
    json_t *j = sp == out.len ? json_object() : json_loadb(out.s, out.len, JSON_DECODE_ANY, &je);
    aws_buf_free(&out);
    if (!j || !json_is_object(j)) {
        json_decref(j);
        return herd_err_set(err, -HERD_EPROTO, "%s %s: the reply is not a JSON object (%s at line %d)", service, op,
                            j ? "not an object" : je.text, je.line);
    }
    if (resp) *resp = j;
    else json_decref(j);
    return 0;
}

int aws_query_call(aws_client *c, const char *service, const char *op, const char *params, xmlDoc **resp,
                   char *code, size_t code_cap, herd_err *err)
{
    if (resp) *resp = NULL;
    call k = { service, op, NULL, params, strlen(params) };
    aws_buf out = { 0 };
    int rc = send_call(c, &k, &out, code, code_cap, err);
    if (rc) return rc;
    xmlDoc *d = xml_parse(out.s, out.len);
    aws_buf_free(&out);
    if (!d) return herd_err_set(err, -HERD_EPROTO, "%s %s: the reply is not XML", service, op);
    if (resp) *resp = d;
    else xmlFreeDoc(d);
    return 0;
}

/* ---- the query protocol's parameters ---- */

void aws_query_init(aws_buf *q, const char *op, const char *version)
{
    *q = (aws_buf){ 0 };
    aws_buf_fmt(q, "Action=%s&Version=%s", op, version);
}

void aws_query_add(aws_buf *q, const char *key, const char *value)
{
    aws_buf_str(q, "&");
    aws_buf_pct(q, key, strlen(key), false);
    aws_buf_str(q, "=");
    aws_buf_pct(q, value, strlen(value), false);
}
