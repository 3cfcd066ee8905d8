/* providers/aws/http.c — one HTTP exchange through libcurl for the AWS client
 * and the credential endpoints: method, URL, headers, body in; status and body
 * out; a transport failure (refused, reset, timed out) reported apart from an
 * HTTP error so the caller can decide to retry. libcurl is initialised in this
 * module's constructor (libcurl counts init/cleanup pairs). */
#include "aws.h"

#include <string.h>

__attribute__((constructor)) static void aws_curl_init(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }
__attribute__((destructor)) static void aws_curl_fini(void) { curl_global_cleanup(); }

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    aws_buf *b = ud;
    if (b->len + size * n > AWS_HTTP_MAX_BODY) return 0;   /* aborts: CURLE_WRITE_ERROR */
    return aws_buf_add(b, p, size * n) ? 0 : size * n;
}

int aws_http(CURL *h, const aws_http_req *rq, aws_http_resp *r, herd_err *err)
{
    *r = (aws_http_resp){ 0 };
    CURL *own = NULL;
    if (!h) h = own = curl_easy_init();
    else curl_easy_reset(h);
    if (!h) return herd_err_set(err, -12, "%s %s: cannot create an HTTP handle", rq->method, rq->url);
    struct curl_slist *hl = NULL;
    for (size_t i = 0; rq->headers && rq->headers[i]; i++) {
        struct curl_slist *n = curl_slist_append(hl, rq->headers[i]);
        if (!n) { curl_slist_free_all(hl); if (own) curl_easy_cleanup(own); return herd_err_set(err, -12, "out of memory"); }
        hl = n;
    }
    /* libcurl adds "Expect: 100-continue" to large POSTs and a default
       Content-Type to form bodies: neither is wanted (the signed headers are
       what is sent) */
    hl = curl_slist_append(hl, "Expect:");
    if (!rq->content_type) hl = curl_slist_append(hl, "Content-Type:");
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(h, CURLOPT_URL, rq->url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &r->body);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)((rq->timeout > 0 ? rq->timeout : 60) * 1000));
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)((rq->timeout > 0 && rq->timeout < 10 ? rq->timeout : 10) * 1000));
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    if (strcmp(rq->method, "GET") == 0) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, rq->body ? rq->body : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len);
        if (strcmp(rq->method, "POST") != 0) curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, rq->method);
    }
    CURLcode rc = curl_easy_perform(h);
    curl_slist_free_all(hl);
    r->curl = rc;
    if (rc == CURLE_OK) curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    if (own) curl_easy_cleanup(own);
    else curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
    if (rc != CURLE_OK) {
        int code = rc == CURLE_OPERATION_TIMEDOUT ? -HERD_ETIMEOUT : -HERD_EPROVIDER;
        herd_err_set(err, code, "%s %s: %s", rq->method, rq->url, errbuf[0] ? errbuf : curl_easy_strerror(rc));
        aws_buf_free(&r->body);
        return code;
    }
    if (r->body.oom) {
        aws_buf_free(&r->body);
        return herd_err_set(err, -12, "%s %s: out of memory for the response", rq->method, rq->url);
    }
    if (!r->body.s) aws_buf_add(&r->body, "", 0);
    return 0;
}

bool aws_http_retryable(CURLcode rc)
{
    switch (rc) {
    case CURLE_COULDNT_CONNECT: case CURLE_COULDNT_RESOLVE_HOST: case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR: case CURLE_RECV_ERROR: case CURLE_GOT_NOTHING: case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
        return true;
    default:
        return false;
    }
}
