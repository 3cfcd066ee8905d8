/* core/worker_name.c — a worker's name completed from where it runs, so that
 * one launch (one command for many workers, as ECS RunTask with count > 1)
 * still gives every worker a distinct name. HERD_WORKER_NAME_FROM selects
 * the source; today "ecs-metadata": "-<task id>" from the TaskARN in
 * ${ECS_CONTAINER_METADATA_URI_V4}/task (ECS's task metadata endpoint v4),
 * read with libevent's HTTP client and parsed with jansson (libherd does not
 * link libcurl: every worker process would load it and its ~30 libraries). */
#include "internal.h"
#include "worker.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define META_MAX (1u << 20)      /* a metadata document is small */

/* One GET's outcome, filled by done(). */
typedef struct { struct event_base *base; int status; char *s; size_t len; int over; const char *why; } answer;

static void done(struct evhttp_request *req, void *arg)
{
    answer *a = arg;
    event_base_loopexit(a->base, NULL);
    if (!req || !(a->status = evhttp_request_get_response_code(req))) {
        if (!a->why) a->why = "no answer (connection refused, closed or timed out)";
        return;
    }
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t n = evbuffer_get_length(in);
    if (n > META_MAX) { a->over = 1; return; }
    if (!(a->s = malloc(n + 1))) return;
    evbuffer_remove(in, a->s, n);
    a->s[n] = 0;
    a->len = n;
}

static void failed(enum evhttp_request_error e, void *arg)
{
    answer *a = arg;
    a->why = e == EVREQ_HTTP_TIMEOUT ? "timed out after 10 s" : e == EVREQ_HTTP_EOF ? "the connection closed"
           : e == EVREQ_HTTP_INVALID_HEADER ? "an invalid answer" : e == EVREQ_HTTP_DATA_TOO_LONG ? "answer larger than 1 MiB"
           : "the request failed";
    if (e == EVREQ_HTTP_DATA_TOO_LONG) a->over = 1;
}

/* GET url (http:// only: the endpoint is a link-local address) into a,
 * with libevent's HTTP client on a private base: 10 s, 1 MiB at most. */
static int get(const char *url, answer *a, herd_err *err)
{
    struct evhttp_uri *u = evhttp_uri_parse(url);
    const char *scheme = u ? evhttp_uri_get_scheme(u) : NULL, *host = u ? evhttp_uri_get_host(u) : NULL;
    if (!u || !scheme || strcmp(scheme, "http") || !host || !*host) {
        if (u) evhttp_uri_free(u);
        return herd_err_set(err, HERD_EARG, "HERD_WORKER_NAME_FROM=ecs-metadata: ECS_CONTAINER_METADATA_URI_V4: "
                            "expected http://HOST[:PORT]/PATH, got \"%s\"", url);
    }
    int port = evhttp_uri_get_port(u) > 0 ? evhttp_uri_get_port(u) : 80, rc = 0;
    char path[1024];
    const char *p = evhttp_uri_get_path(u), *q = evhttp_uri_get_query(u);
    snprintf(path, sizeof path, "%s%s%s", p && *p ? p : "/", q ? "?" : "", q ? q : "");
    struct evhttp_connection *c = NULL;
    struct evhttp_request *req = NULL;
    if (!(a->base = event_base_new()) || !(c = evhttp_connection_base_new(a->base, NULL, host, (unsigned short)port)) ||
        !(req = evhttp_request_new(done, a))) {
        rc = herd_err_set(err, -ENOMEM, "out of memory");
    } else {
        evhttp_connection_set_timeout(c, 10);
        evhttp_connection_set_max_body_size(c, META_MAX);
        evhttp_request_set_error_cb(req, failed);
        evhttp_add_header(evhttp_request_get_output_headers(req), "Host", host);
        if (evhttp_make_request(c, req, EVHTTP_REQ_GET, path)) {   /* frees req */
            a->why = "the request could not be sent";
        } else {
            event_base_dispatch(a->base);
        }
    }
    if (c) evhttp_connection_free(c);
    if (a->base) event_base_free(a->base);
    evhttp_uri_free(u);
    return rc;
}

static int ecs_task_id(char *out, size_t cap, herd_err *err)
{
    const char *base = getenv("ECS_CONTAINER_METADATA_URI_V4");
    if (!base || !*base)
        return herd_err_set(err, HERD_EARG, "HERD_WORKER_NAME_FROM=ecs-metadata: ECS_CONTAINER_METADATA_URI_V4 is not set "
                            "(expected the task metadata endpoint ECS gives a container)");
    char url[1024];
    snprintf(url, sizeof url, "%s/task", base);
    answer a = { 0 };
    int rc = get(url, &a, err);
    json_t *v = NULL;
    json_error_t je;
    if (rc)
        ;
    else if (a.status != 200 || !a.s)
        rc = herd_err_set(err, HERD_EARG, "HERD_WORKER_NAME_FROM=ecs-metadata: GET %s: %s", url,
                          a.over ? "answer larger than 1 MiB" : a.why ? a.why : "no 200 answer with a body");
    else if (!(v = json_loadb(a.s, a.len, 0, &je)))
        rc = herd_err_set(err, HERD_EARG, "HERD_WORKER_NAME_FROM=ecs-metadata: %s: not JSON: %s (line %d, column %d)",
                          url, je.text, je.line, je.column);
    if (!rc) {
        const char *arn = json_string_value(json_object_get(v, "TaskARN"));
        const char *id = arn ? strrchr(arn, '/') : NULL;
        if (!id || !id[1] || strlen(id + 1) >= cap)
            rc = herd_err_set(err, HERD_EARG, "HERD_WORKER_NAME_FROM=ecs-metadata: %s: expected \"TaskARN\": "
                              "\"arn:aws:ecs:REGION:ACCOUNT:task/CLUSTER/ID\", got %s", url, arn ? arn : "none");
        else
            snprintf(out, cap, "%s", id + 1);
    }
    json_decref(v);
    free(a.s);
    return rc;
}

int herd_worker_name_complete(const char *base, char *out, size_t cap, herd_err *err)
{
    const char *from = getenv("HERD_WORKER_NAME_FROM");
    if (!base) base = "worker";
    if (!from || !*from) {
        snprintf(out, cap, "%s", base);
        return 0;
    }
    if (strcmp(from, "ecs-metadata") != 0)
        return herd_err_set(err, HERD_EARG, "HERD_WORKER_NAME_FROM: expected \"ecs-metadata\", got \"%s\"", from);
    char id[128];
    int rc = ecs_task_id(id, sizeof id, err);
    if (rc) return rc;
    if ((size_t)snprintf(out, cap, "%s-%s", base, id) >= cap)
        return herd_err_set(err, HERD_EARG, "HERD_WORKER_NAME_FROM: the name \"%s-%s\" is too long", base, id);
    return 0;
}
