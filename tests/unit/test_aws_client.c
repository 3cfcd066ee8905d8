/* tests/unit/test_aws_client.c — the AWS provider's client (providers/aws/)
 * against moto's server and tests/support/aws_endpoints.py on 127.0.0.1:
 * JSON 1.1 calls (ECS) and query/XML calls (EC2, IAM) and their replies, the
 * error body's code and message, retries on throttling, 5xx and refused
 * connections (at most 3 attempts), and the credential chain in botocore's
 * order (environment, shared files and profiles, the container endpoint,
 * IMDSv2) with refresh before expiry; no secret in any error message. */
#include <herd/herd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../../providers/aws/aws.h"
#include "../support/aws_moto.h"
#include "../support/testutil.h"

#include <jansson.h>
#include <libxml/tree.h>

static tmoto moto;

static int setup(void **state)
{
    (void)state;
    return tmoto_start(&moto, false);
}

static int teardown(void **state)
{
    (void)state;
    tmoto_stop(&moto);
    return 0;
}

/* each test starts from a clean moto and the default environment */
static int each(void **state)
{
    (void)state;
    tmoto_reset(&moto);
    tmoto_env(&moto, NULL);
    return 0;
}

static aws_client *client(const char *endpoint)
{
    aws_client *c;
    herd_err err = { 0 };
    aws_client_opts o = { .endpoint_url = endpoint };
    if (aws_client_new(&c, &o, &err)) fail_msg("aws_client_new: %s", err.msg);
    aws_client_set_retry(c, 3, 0.05);   /* the backoff's shape is botocore's; short in tests */
    return c;
}

static void ecs_json_calls(void **state)
{
    (void)state;
    aws_client *c = client(NULL);
    herd_err err = { 0 };
    json_t *req = json_pack("{s:s, s:[{s:s, s:s}]}", "clusterName", "herd-t1", "tags", "key", "createdBy", "value",
                            "herd"), *resp = NULL;
    assert_int_equal(aws_json_call(c, AWS_ECS, "CreateCluster", req, &resp, NULL, 0, &err), 0);
    json_decref(req);
    const char *arn = json_string_value(json_object_get(json_object_get(resp, "cluster"), "clusterArn"));
    assert_non_null(arn);
    assert_non_null(strstr(arn, "cluster/herd-t1"));
    char *arn_copy = strdup(arn);
    json_decref(resp);

    req = json_pack("{s:[s], s:[s]}", "clusters", arn_copy, "include", "TAGS");
    assert_int_equal(aws_json_call(c, AWS_ECS, "DescribeClusters", req, &resp, NULL, 0, &err), 0);
    json_decref(req);
    json_t *cl = json_array_get(json_object_get(resp, "clusters"), 0);
    assert_string_equal(json_string_value(json_object_get(cl, "clusterName")), "herd-t1");
    assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(cl, "tags"), 0), "value")),
                        "herd");
    json_decref(resp);

    req = json_pack("{s:s}", "cluster", arn_copy);
    assert_int_equal(aws_json_call(c, AWS_ECS, "DeleteCluster", req, NULL, NULL, 0, &err), 0);
    json_decref(req);
    free(arn_copy);
    assert_int_equal(aws_client_calls(c), 3);
    aws_client_free(c);
}

static void ecs_error_surfaced(void **state)
{
    (void)state;
    aws_client *c = client(NULL);
    herd_err err = { 0 };
    char code[AWS_CODE_MAX];
    json_t *req = json_pack("{s:s, s:[s]}", "cluster", "no-such-cluster", "tasks", "arn:aws:ecs:x");
    assert_int_not_equal(aws_json_call(c, AWS_ECS, "DescribeTasks", req, NULL, code, sizeof code, &err), 0);
    json_decref(req);
    assert_string_equal(code, "ClusterNotFoundException");
    assert_true(strncmp(err.msg, "ClusterNotFoundException: ", 26) == 0);
    assert_non_null(strstr(err.msg, "(ecs DescribeTasks)"));
    assert_int_equal(aws_client_calls(c), 1);   /* not retryable: one attempt */
    aws_client_free(c);
}

static void ec2_and_iam_query_calls(void **state)
{
    (void)state;
    aws_client *c = client(NULL);
    herd_err err = { 0 };
    aws_buf q;
    aws_query_init(&q, "DescribeVpcs", "2016-11-15");
    aws_query_add(&q, "Filter.1.Name", "is-default");
    aws_query_add(&q, "Filter.1.Value.1", "true");
    xmlDoc *d;
    assert_int_equal(aws_query_call(c, "ec2", "DescribeVpcs", q.s, &d, NULL, 0, &err), 0);
    aws_buf_free(&q);
    char buf[128];
    xmlNode *item = aws_xml_child(aws_xml_find(xmlDocGetRootElement(d), "vpcSet"), "item");
    assert_non_null(item);
    assert_string_equal(aws_xml_text(item, "isDefault", buf, sizeof buf), "true");
    assert_true(strncmp(aws_xml_text(item, "vpcId", buf, sizeof buf), "vpc-", 4) == 0);
    xmlFreeDoc(d);

    /* an XML error: IAM's <ErrorResponse><Error><Code> */
    char code[AWS_CODE_MAX];
    aws_query_init(&q, "GetRole", "2010-05-08");
    aws_query_add(&q, "RoleName", "no-such-role");
    assert_int_not_equal(aws_query_call(c, "iam", "GetRole", q.s, NULL, code, sizeof code, &err), 0);
    aws_buf_free(&q);
    assert_string_equal(code, "NoSuchEntity");
    assert_true(strncmp(err.msg, "NoSuchEntity: ", 14) == 0);
    /* EC2's <Response><Errors><Error> */
    aws_query_init(&q, "DeleteSecurityGroup", "2016-11-15");
    aws_query_add(&q, "GroupId", "sg-00000000");
    assert_int_not_equal(aws_query_call(c, "ec2", "DeleteSecurityGroup", q.s, NULL, code, sizeof code, &err), 0);
    aws_buf_free(&q);
    assert_string_equal(code, "InvalidGroup.NotFound");
    aws_client_free(c);
}

static void throttling_then_success(void **state)
{
    (void)state;
    aws_client *c = client(moto.ep_url);   /* through the fault-injecting proxy */
    herd_err err = { 0 };
    json_t *req = json_object(), *resp = NULL;
    tmoto_inject(&moto, 2, 400, "application/x-amz-json-1.1",
                 "{\"__type\":\"ThrottlingException\",\"message\":\"Rate exceeded\"}");
    assert_int_equal(aws_json_call(c, AWS_ECS, "ListClusters", req, &resp, NULL, 0, &err), 0);
    assert_non_null(json_object_get(resp, "clusterArns"));
    json_decref(resp);
    assert_int_equal(aws_client_calls(c), 3);

    /* three throttles: botocore's standard mode gives up after 3 attempts */
    tmoto_inject(&moto, 3, 400, "application/x-amz-json-1.1",
                 "{\"__type\":\"com.amazonaws#ThrottlingException:extra\",\"Message\":\"Rate exceeded\"}");
    char code[AWS_CODE_MAX];
    assert_int_not_equal(aws_json_call(c, AWS_ECS, "ListClusters", req, NULL, code, sizeof code, &err), 0);
    assert_string_equal(code, "ThrottlingException");
    assert_string_equal(err.msg, "ThrottlingException: Rate exceeded (ecs ListClusters)");
    assert_int_equal(aws_client_calls(c), 6);

    /* an HTTP 503 with EC2's XML throttle, then success */
    tmoto_inject(&moto, 1, 503, "text/xml",
                 "<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>slow down</Message></Error>"
                 "</Errors></Response>");
    aws_buf q;
    aws_query_init(&q, "DescribeVpcs", "2016-11-15");
    assert_int_equal(aws_query_call(c, "ec2", "DescribeVpcs", q.s, NULL, NULL, 0, &err), 0);
    aws_buf_free(&q);
    assert_int_equal(aws_client_calls(c), 8);

    /* a 500 without a body the client knows: retried, then the status is said */
    tmoto_inject(&moto, 3, 500, "text/plain", "boom");
    assert_int_not_equal(aws_json_call(c, AWS_ECS, "ListClusters", req, NULL, code, sizeof code, &err), 0);
    assert_string_equal(code, "");
    assert_non_null(strstr(err.msg, "HTTP 500: boom"));
    assert_int_equal(aws_client_calls(c), 11);

    /* a 400 that is no throttle is not retried */
    tmoto_inject(&moto, 1, 400, "application/x-amz-json-1.1",
                 "{\"__type\":\"InvalidParameterException\",\"message\":\"bad\"}");
    assert_int_not_equal(aws_json_call(c, AWS_ECS, "ListClusters", req, NULL, code, sizeof code, &err), 0);
    assert_string_equal(code, "InvalidParameterException");
    assert_int_equal(aws_client_calls(c), 12);

    /* expired credentials: AWS's answer reaches the user as it is, once */
    tmoto_inject(&moto, 1, 400, "application/x-amz-json-1.1",
                 "{\"__type\":\"ExpiredTokenException\",\"message\":\"The security token included in the request is expired\"}");
    assert_int_not_equal(aws_json_call(c, AWS_ECS, "ListClusters", req, NULL, code, sizeof code, &err), 0);
    assert_string_equal(err.msg, "ExpiredTokenException: The security token included in the request is expired "
                                 "(ecs ListClusters)");
    assert_int_equal(aws_client_calls(c), 13);
    json_decref(req);
    aws_client_free(c);
}

static void connection_refused_retried(void **state)
{
    (void)state;
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", tmoto_free_port());
    aws_client *c = client(url);
    herd_err err = { 0 };
    json_t *req = json_object();
    assert_int_not_equal(aws_json_call(c, AWS_ECS, "ListClusters", req, NULL, NULL, 0, &err), 0);
    json_decref(req);
    assert_int_equal(aws_client_calls(c), 3);
    assert_non_null(strstr(err.msg, "ecs ListClusters"));
    assert_non_null(strstr(err.msg, url));
    aws_client_free(c);
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    assert_int_equal(tu_write_file(path, text), 0);
}

static void creds_expect(const char *ak, const char *source)
{
    aws_creds cr = { 0 };
    herd_err err = { 0 };
    if (aws_creds_resolve(&cr, &err)) fail_msg("aws_creds_resolve: %s", err.msg);
    assert_string_equal(cr.access_key, ak);
    assert_string_equal(cr.source, source);
    aws_creds_clear(&cr);
}

static void creds_fail(const char *want)
{
    aws_creds cr = { 0 };
    herd_err err = { 0 };
    assert_int_not_equal(aws_creds_resolve(&cr, &err), 0);
    if (!strstr(err.msg, want)) fail_msg("expected \"%s\" in: %s", want, err.msg);
    static const char *const secrets[] = { "moto-test-secret-key", "SECRETFILE", "SECRETDEV", "SECRETOPS",
                                           "secret-ASIA", "test-auth-token", "imds-session-token", NULL };
    for (size_t i = 0; secrets[i]; i++) assert_null(strstr(err.msg, secrets[i]));
    assert_null(cr.access_key);
}

static void creds_chain_order(void **state)
{
    (void)state;
    char dir[256];
    snprintf(dir, sizeof dir, "%s/.aws", moto.home);
    mkdir(dir, 0700);
    write_file(dir, "credentials",
               "# comment\n[default]\naws_access_key_id = AKIDFILEDEFAULT\naws_secret_access_key = SECRETFILE\n"
               "[dev]\naws_access_key_id=AKIDFILEDEV\naws_secret_access_key=SECRETDEV\naws_session_token = TOK\n");
    write_file(dir, "config", "[default]\nregion = eu-west-1\n[profile ops]\nregion = ap-south-1\n"
                              "aws_access_key_id = AKIDCONFIGOPS\naws_secret_access_key = SECRETOPS\n"
                              "s3 =\n  max_concurrent_requests = 20\n");
    /* 1. the environment wins */
    creds_expect("AKIDTESTING", "environment");
    setenv("AWS_SECRET_ACCESS_KEY", "", 1);
    creds_fail("AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not");
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    /* 2. ~/.aws/credentials, default profile, then AWS_PROFILE */
    creds_expect("AKIDFILEDEFAULT", "shared-credentials-file");
    setenv("AWS_PROFILE", "dev", 1);
    creds_expect("AKIDFILEDEV", "shared-credentials-file");
    /* 3. the config file's [profile NAME] */
    setenv("AWS_PROFILE", "ops", 1);
    creds_expect("AKIDCONFIGOPS", "config-file");
    char *region = NULL;
    herd_err err = { 0 };
    unsetenv("AWS_REGION");
    assert_int_equal(aws_region_resolve(NULL, &region, &err), 0);
    assert_string_equal(region, "ap-south-1");
    free(region);
    assert_int_equal(aws_region_resolve("us-west-2", &region, &err), 0);   /* kwargs first */
    assert_string_equal(region, "us-west-2");
    free(region);
    setenv("AWS_DEFAULT_REGION", "ca-central-1", 1);
    assert_int_equal(aws_region_resolve(NULL, &region, &err), 0);
    assert_string_equal(region, "ca-central-1");
    free(region);
    unsetenv("AWS_DEFAULT_REGION");
    setenv("AWS_PROFILE", "nope", 1);
    creds_fail("the profile \"nope\" (AWS_PROFILE) is in neither");
    assert_int_not_equal(aws_region_resolve(NULL, &region, &err), 0);
    assert_non_null(strstr(err.msg, "no AWS region: give cluster_kwargs.region_name"));
    unsetenv("AWS_PROFILE");
    /* the files' names from the environment */
    write_file(moto.home, "other-creds", "[default]\naws_access_key_id = AKIDOTHER\naws_secret_access_key = S\n");
    char path[256];
    snprintf(path, sizeof path, "%s/other-creds", moto.home);
    setenv("AWS_SHARED_CREDENTIALS_FILE", path, 1);
    creds_expect("AKIDOTHER", "shared-credentials-file");
    setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/creds", 1);
    setenv("AWS_CONFIG_FILE", "/nonexistent/config", 1);
    /* 4. the container endpoint (FULL_URI, with its authorization token) */
    char url[128];
    snprintf(url, sizeof url, "%s/creds", moto.ep_url);
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", url, 1);
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "test-auth-token", 1);
    creds_expect("ASIACONTAINER", "container-role");
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "wrong", 1);
    creds_fail("answered HTTP 401");
    unsetenv("AWS_CONTAINER_AUTHORIZATION_TOKEN");
    unsetenv("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    /* 5. instance metadata: disabled, then IMDSv2 on the endpoints */
    creds_fail("instance metadata is disabled");
    unsetenv("AWS_EC2_METADATA_DISABLED");
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", moto.ep_url, 1);
    creds_expect("ASIAIMDS", "iam-role");
    char cu[128];
    snprintf(cu, sizeof cu, "%s/counts", moto.ep_url);
    char *counts = tmoto_http("GET", cu, NULL);
    assert_non_null(counts);
    assert_non_null(strstr(counts, "\"/latest/api/token\": 1"));   /* the IMDSv2 token first */
    free(counts);
    /* nothing answers: the chain's end says what was tried */
    snprintf(url, sizeof url, "http://127.0.0.1:%d", tmoto_free_port());
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", url, 1);
    creds_fail("no AWS credentials: none in the environment");
}

/* Temporary credentials that expire within 10 minutes are fetched again
   before a call; the request carries the session token (signed). */
static void creds_refreshed_before_expiry(void **state)
{
    (void)state;
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/creds", 1);
    setenv("AWS_CONFIG_FILE", "/nonexistent/config", 1);
    char url[128], cu[128];
    snprintf(url, sizeof url, "%s/creds", moto.ep_url);
    snprintf(cu, sizeof cu, "%s/control", moto.ep_url);
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", url, 1);
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "test-auth-token", 1);
    free(tmoto_http("POST", cu, "{\"expires_in\": 300}"));   /* already inside the refresh window */
    aws_client *c = client(NULL);
    herd_err err = { 0 };
    json_t *req = json_object();
    assert_int_equal(aws_json_call(c, AWS_ECS, "ListClusters", req, NULL, NULL, 0, &err), 0);
    assert_int_equal(aws_json_call(c, AWS_ECS, "ListClusters", req, NULL, NULL, 0, &err), 0);
    snprintf(cu, sizeof cu, "%s/counts", moto.ep_url);
    char *counts = tmoto_http("GET", cu, NULL);
    assert_non_null(counts);
    json_t *j = json_loads(counts, 0, NULL);
    int before = (int)json_integer_value(json_object_get(j, "/creds"));
    json_decref(j);
    free(counts);
    assert_true(before >= 3);   /* the client's own fetch, then one before each call */
    /* long-lived: fetched no more */
    snprintf(cu, sizeof cu, "%s/control", moto.ep_url);
    free(tmoto_http("POST", cu, "{\"expires_in\": 21600}"));
    assert_int_equal(aws_json_call(c, AWS_ECS, "ListClusters", req, NULL, NULL, 0, &err), 0);   /* refreshes once */
    assert_int_equal(aws_json_call(c, AWS_ECS, "ListClusters", req, NULL, NULL, 0, &err), 0);
    snprintf(cu, sizeof cu, "%s/counts", moto.ep_url);
    counts = tmoto_http("GET", cu, NULL);
    j = json_loads(counts, 0, NULL);
    assert_int_equal((int)json_integer_value(json_object_get(j, "/creds")), before + 1);
    json_decref(j);
    free(counts);
    json_decref(req);
    aws_client_free(c);
}

static void endpoint_url_checked(void **state)
{
    (void)state;
    aws_client *c;
    herd_err err = { 0 };
    aws_client_opts o = { .endpoint_url = "ftp://127.0.0.1:1" };
    assert_int_not_equal(aws_client_new(&c, &o, &err), 0);
    assert_string_equal(err.msg, "endpoint_url: expected an http:// or https:// URL, got \"ftp://127.0.0.1:1\"");
}

int main(void)
{
    tmoto_require();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(ecs_json_calls, each),
        cmocka_unit_test_setup(ecs_error_surfaced, each),
        cmocka_unit_test_setup(ec2_and_iam_query_calls, each),
        cmocka_unit_test_setup(throttling_then_success, each),
        cmocka_unit_test_setup(connection_refused_retried, each),
        cmocka_unit_test_setup(creds_chain_order, each),
        cmocka_unit_test_setup(creds_refreshed_before_expiry, each),
        cmocka_unit_test_setup(endpoint_url_checked, each),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
