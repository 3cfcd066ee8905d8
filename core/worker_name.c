/* core/worker_name.c — a worker's name completed from where it runs, so that
 * one launch (one command for many workers, as ECS RunTask with count > 1)
 * still gives every worker a distinct name. HERD_WORKER_NAME_FROM selects
 * the source; today "ecs-metadata": "-<task id>" from the TaskARN in
 * ${ECS_CONTAINER_METADATA_URI_V4}/task (ECS's task metadata endpoint v4),
 * read with libcurl and parsed with jansson. */
#include "internal.h"
#include "worker.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct { char *s; size_t len; int over; } body;

static size_t take(char *p, size_t sz, size_t n, void *arg)
{
    body *b = arg;
    size_t k = sz * n;
    if (b->len + k > (1u << 20)) { b->over = 1; return 0; }   /* a metadata document is small */
    char *s = realloc(b->s, b->len + k + 1);
    if (!s) return 0;
    memcpy(s + b->len, p, k);
    b->s = s;
    b->len += k;
    s[b->len] = 0;
    return k;
}

static int ecs_task_id(char *out, size_t cap, herd_err *err)
{
    const char *base = getenv("ECS_CONTAINER_METADATA_URI_V4");
    if (!base || !*base)
        return herd_err_set(err, HERD_EARG, "HERD_WORKER_NAME_FROM=ecs-metadata: ECS_CONTAINER_METADATA_URI_V4 is not set "
                            "(expected the task metadata endpoint ECS gives a container)");
    char url[1024];
    snprintf(url, sizeof url, "%s/task", base);
    CURL *h = curl_easy_init();
    if (!h) return herd_err_set(err, -ENOMEM, "out of memory");
    body b = { 0 };
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, take);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    CURLcode cc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(h);
    int rc = 0;
    json_t *v = NULL;
    json_error_t je;
    if (cc != CURLE_OK || status != 200 || !b.s)
        rc = herd_err_set(err, HERD_EARG, "HERD_WORKER_NAME_FROM=ecs-metadata: GET %s: %s", url,
                          cc != CURLE_OK ? (b.over ? "answer larger than 1 MiB" : curl_easy_strerror(cc)) : "no 200 answer with a body");
    else if (!(v = json_loadb(b.s, b.len, 0, &je)))
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
    free(b.s);
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
