/* tests/unit/test_worker_name.c — a worker's name completed from where it
 * runs (core/worker_name.c): HERD_WORKER_NAME_FROM unset keeps the name;
 * "ecs-metadata" appends the task id of the TaskARN that
 * ${ECS_CONTAINER_METADATA_URI_V4}/task answers, served here by a real HTTP
 * server on 127.0.0.1 (libevent's evhttp); each bad case (unknown source, no
 * URI, nothing listening, a 404, no TaskARN, not JSON) is a clear error. */
#include <herd/herd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "worker.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/thread.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct event_base *base;
static struct evhttp *http;
static pthread_t loop;
static int port;
static const char *doc;        /* what GET /v4/t1/task answers */

static void serve(struct evhttp_request *req, void *arg)
{
    (void)arg;
    struct evbuffer *b = evbuffer_new();
    if (strcmp(evhttp_request_get_uri(req), "/v4/t1/task") == 0) {
        evbuffer_add_printf(b, "%s", doc);
        evhttp_send_reply(req, 200, "OK", b);
    } else {
        evbuffer_add_printf(b, "no such task");
        evhttp_send_reply(req, 404, "Not Found", b);
    }
    evbuffer_free(b);
}

static void *run(void *arg)
{
    (void)arg;
    event_base_loop(base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

static int setup(void **state)
{
    (void)state;
    evthread_use_pthreads();
    base = event_base_new();
    http = evhttp_new(base);
    struct evhttp_bound_socket *s = evhttp_bind_socket_with_handle(http, "127.0.0.1", 0);
    if (!s) return -1;
    struct sockaddr_in sa;
    socklen_t n = sizeof sa;
    getsockname(evhttp_bound_socket_get_fd(s), (struct sockaddr *)&sa, &n);
    port = ntohs(sa.sin_port);
    evhttp_set_gencb(http, serve, NULL);
    return pthread_create(&loop, NULL, run, NULL);
}

static int teardown(void **state)
{
    (void)state;
    event_base_loopbreak(base);
    pthread_join(loop, NULL);
    evhttp_free(http);
    event_base_free(base);
    return 0;
}

static void set_uri(const char *path)
{
    char uri[128];
    snprintf(uri, sizeof uri, "http://127.0.0.1:%d%s", port, path);
    setenv("ECS_CONTAINER_METADATA_URI_V4", uri, 1);
}

static void expect_error(const char *want)
{
    char out[192];
    herd_err err = { 0 };
    assert_int_not_equal(herd_worker_name_complete("fargate", out, sizeof out, &err), 0);
    if (!strstr(err.msg, want)) fail_msg("expected \"%s\" in: %s", want, err.msg);
}

static void test_unset_keeps_the_name(void **state)
{
    (void)state;
    unsetenv("HERD_WORKER_NAME_FROM");
    char out[192];
    herd_err err = { 0 };
    assert_int_equal(herd_worker_name_complete("w-3", out, sizeof out, &err), 0);
    assert_string_equal(out, "w-3");
    assert_int_equal(herd_worker_name_complete(NULL, out, sizeof out, &err), 0);
    assert_string_equal(out, "worker");
}

static void test_ecs_metadata(void **state)
{
    (void)state;
    setenv("HERD_WORKER_NAME_FROM", "ecs-metadata", 1);
    set_uri("/v4/t1");
    doc = "{\"Cluster\": \"c\", \"TaskARN\": \"arn:aws:ecs:us-east-1:123456789012:task/c/0a1b2c3d4e\", "
          "\"Containers\": [{\"Name\": \"w\", \"Labels\": {}}]}";
    char out[192];
    herd_err err = { 0 };
    if (herd_worker_name_complete("fargate", out, sizeof out, &err)) fail_msg("%s", err.msg);
    assert_string_equal(out, "fargate-0a1b2c3d4e");
}

static void test_bad_cases(void **state)
{
    (void)state;
    setenv("HERD_WORKER_NAME_FROM", "gce-metadata", 1);
    expect_error("HERD_WORKER_NAME_FROM: expected \"ecs-metadata\", got \"gce-metadata\"");
    setenv("HERD_WORKER_NAME_FROM", "ecs-metadata", 1);
    unsetenv("ECS_CONTAINER_METADATA_URI_V4");
    expect_error("ECS_CONTAINER_METADATA_URI_V4 is not set");
    set_uri("/v4/nope");
    expect_error("no 200 answer");
    doc = "{\"Cluster\": \"c\"}";
    set_uri("/v4/t1");
    expect_error("expected \"TaskARN\": \"arn:aws:ecs:REGION:ACCOUNT:task/CLUSTER/ID\", got none");
    doc = "{\"TaskARN\": [unclosed";
    expect_error("HERD_WORKER_NAME_FROM=ecs-metadata: http://127.0.0.1:");
    expect_error("/v4/t1/task: not JSON: ");
    setenv("ECS_CONTAINER_METADATA_URI_V4", "http://127.0.0.1:1/v4/t1", 1);   /* nothing listens on port 1 */
    expect_error("GET http://127.0.0.1:1/v4/t1/task: ");
    unsetenv("HERD_WORKER_NAME_FROM");
    unsetenv("ECS_CONTAINER_METADATA_URI_V4");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unset_keeps_the_name),
        cmocka_unit_test(test_ecs_metadata),
        cmocka_unit_test(test_bad_cases),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
