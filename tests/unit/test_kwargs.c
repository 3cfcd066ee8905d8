/* tests/unit/test_kwargs.c — herd_kwargs_validate against a typed schema:
 * every error kind with its exact text, defaults, normalisation of durations
 * and sizes, secrets kept out of messages; herd_kwargs_bind/herd_kwargs_load
 * filling a struct (every type, nullable, defaults, wrong sizes refused). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <herd/herd.h>

static const herd_param schema[] = {
    { "n_workers", HERD_PARAM_INT, NULL, "number of workers", 0, 1, 1024 },
    { "threads_per_worker", HERD_PARAM_INT, "1", "threads in each worker", 0, 1, INFINITY },
    { "processes", HERD_PARAM_BOOL, "true", "workers as processes", 0, 0, 0 },
    { "memory_limit", HERD_PARAM_SIZE, "auto", "per worker", 0, 0, 0 },
    { "death_timeout", HERD_PARAM_DURATION, "60s", "", 0, 0, 0 },
    { "heartbeat", HERD_PARAM_DURATION, "500ms", "", 0, 0.1, 60 },
    { "load", HERD_PARAM_FLOAT, "0.5", "", 0, 0, 1 },
    { "name", HERD_PARAM_STRING, "null", "", HERD_PARAM_NULLABLE, 0, 0 },
    { "env", HERD_PARAM_MAP, "{}", "", 0, 0, 0 },
    { "tags", HERD_PARAM_LIST, "[]", "", 0, 0, 0 },
    { "token", HERD_PARAM_STRING, NULL, "", HERD_PARAM_SECRET, 0, 0 },
    { "pin", HERD_PARAM_INT, NULL, "", HERD_PARAM_SECRET, 1000, 9999 },
    { "extra", HERD_PARAM_ANY, NULL, "", 0, 0, 0 },
    { NULL },
};

static herd_value *yaml(const char *text)
{
    herd_value *v;
    herd_err err;
    if (herd_value_parse(text, &v, &err)) fail_msg("%s", err.msg);
    return v;
}

static herd_value *valid(const herd_param *params, const char *text)
{
    herd_value *in = text ? yaml(text) : NULL, *out = NULL;
    herd_err err;
    if (herd_kwargs_validate(params, in, "cluster_kwargs", &out, &err))
        fail_msg("<%s> rejected: %s", text, err.msg);
    herd_value_free(in);
    return out;
}

static void invalid(const herd_param *params, const char *text, int code, const char *msg)
{
    herd_value *in = yaml(text), *out = (herd_value *)1;
    herd_err err;
    int rc = herd_kwargs_validate(params, in, "cluster_kwargs", &out, &err);
    herd_value_free(in);
    if (rc == 0) fail_msg("<%s> accepted", text);
    assert_null(out);
    assert_int_equal(rc, code);
    assert_int_equal(err.code, code);
    if (strcmp(err.msg, msg)) fail_msg("<%s>:\n got  <%s>\n want <%s>", text, err.msg, msg);
}

static void assert_yaml(const herd_value *v, const char *want)
{
    char *s = herd_value_to_string(v);
    assert_string_equal(s, want);
    free(s);
}

static void test_defaults(void **state)
{
    (void)state;
    const char *all = "{threads_per_worker: 1, processes: true, memory_limit: auto, death_timeout: 60.0, "
                      "heartbeat: 0.5, load: 0.5, name: null, env: {}, tags: []}";
    herd_value *out = valid(schema, NULL);
    assert_yaml(out, all);
    herd_value_free(out);
    out = valid(schema, "");                 /* nil: same as none */
    assert_yaml(out, all);
    herd_value_free(out);
    out = valid(schema, "{}");
    assert_yaml(out, all);
    herd_value_free(out);
}

static void test_normalise(void **state)
{
    (void)state;
    /* given in another order: the result follows the schema */
    herd_value *out = valid(schema,
        "{extra: [1, {a: b}], tags: [x], env: {A: '1'}, name: w, load: 1, heartbeat: 2, "
        "death_timeout: 5m, memory_limit: 4KiB, processes: false, threads_per_worker: 4.0, "
        "n_workers: 1024, token: s3cr3t, pin: 1234}");
    assert_yaml(out, "{n_workers: 1024, threads_per_worker: 4, processes: false, memory_limit: 4096, "
                     "death_timeout: 300.0, heartbeat: 2.0, load: 1.0, name: w, env: {A: \"1\"}, "
                     "tags: [x], token: s3cr3t, pin: 1234, extra: [1, {a: b}]}");
    assert_int_equal(herd_typeof(herd_map_get(out, "threads_per_worker")), HERD_INT);
    assert_int_equal(herd_typeof(herd_map_get(out, "load")), HERD_FLOAT);
    herd_value_free(out);

    out = valid(schema, "{memory_limit: 1.5GiB, death_timeout: 250ms, heartbeat: 0.1}");
    assert_int_equal(herd_as_int(herd_map_get(out, "memory_limit")), 1610612736);
    assert_true(herd_as_float(herd_map_get(out, "death_timeout")) == 0.25);
    herd_value_free(out);
    out = valid(schema, "{memory_limit: 2000000, extra: null}");
    assert_int_equal(herd_as_int(herd_map_get(out, "memory_limit")), 2000000);
    assert_int_equal(herd_typeof(herd_map_get(out, "extra")), HERD_NIL);
    assert_non_null(herd_map_get(out, "extra"));
    herd_value_free(out);

    /* the input is not changed or taken */
    herd_value *in = yaml("{n_workers: 2}");
    herd_err err;
    assert_int_equal(herd_kwargs_validate(schema, in, "cluster_kwargs", &out, &err), 0);
    assert_yaml(in, "{n_workers: 2}");
    herd_value_free(in);
    herd_value_free(out);
}

static void test_not_a_map(void **state)
{
    (void)state;
    invalid(schema, "4", -HERD_ECONFIG, "cluster_kwargs: expected a map, got int 4");
    invalid(schema, "[n_workers, 4]", -HERD_ECONFIG,
            "cluster_kwargs: expected a map, got array [n_workers, 4]");
    invalid(schema, "'x'", -HERD_ECONFIG, "cluster_kwargs: expected a map, got str \"x\"");
}

static void test_unknown_keys(void **state)
{
    (void)state;
    const char *known = "known keys: n_workers, threads_per_worker, processes, memory_limit, "
                        "death_timeout, heartbeat, load, name, env, tags, token, pin, extra";
    char want[1024];
    snprintf(want, sizeof want, "cluster_kwargs.n_worker: unknown key; did you mean \"n_workers\"? %s", known);
    invalid(schema, "{n_worker: 4}", -HERD_ECONFIG, want);
    snprintf(want, sizeof want, "cluster_kwargs.thraeds_per_worker: unknown key; did you mean \"threads_per_worker\"? %s", known);
    invalid(schema, "{thraeds_per_worker: 4}", -HERD_ECONFIG, want);        /* transposition */
    snprintf(want, sizeof want, "cluster_kwargs.N_Workers: unknown key; did you mean \"n_workers\"? %s", known);
    invalid(schema, "{N_Workers: 4}", -HERD_ECONFIG, want);                 /* case */
    snprintf(want, sizeof want, "cluster_kwargs.memory: unknown key; did you mean \"memory_limit\"? %s", known);
    invalid(schema, "{memory: 4GB}", -HERD_ECONFIG, want);                  /* prefix */
    snprintf(want, sizeof want, "cluster_kwargs.scheduler_port: unknown key; %s", known);
    invalid(schema, "{n_workers: 2, scheduler_port: 0}", -HERD_ECONFIG, want);

    static const herd_param none[] = { { NULL } };
    invalid(none, "{a: 1}", -HERD_ECONFIG, "cluster_kwargs.a: unknown key; no keys are accepted");

    /* where may be empty */
    herd_value *in = yaml("{n_worker: 1}"), *out;
    herd_err err;
    assert_int_equal(herd_kwargs_validate(schema, in, NULL, &out, &err), -HERD_ECONFIG);
    assert_true(strncmp(err.msg, "n_worker: unknown key; did you mean \"n_workers\"?", 47) == 0);
    herd_value_free(in);
}

static void test_types(void **state)
{
    (void)state;
    invalid(schema, "{n_workers: four}", -HERD_ECONFIG, "cluster_kwargs.n_workers: expected int, got str \"four\"");
    invalid(schema, "{n_workers: '4'}", -HERD_ECONFIG, "cluster_kwargs.n_workers: expected int, got str \"4\"");
    invalid(schema, "{n_workers: 2.5}", -HERD_ECONFIG, "cluster_kwargs.n_workers: expected int, got float 2.5");
    invalid(schema, "{n_workers: .inf}", -HERD_ECONFIG, "cluster_kwargs.n_workers: expected int, got float .inf");
    invalid(schema, "{n_workers: null}", -HERD_ECONFIG, "cluster_kwargs.n_workers: expected int, got null");
    invalid(schema, "{n_workers: [1]}", -HERD_ECONFIG, "cluster_kwargs.n_workers: expected int, got array [1]");
    invalid(schema, "{processes: 'yes'}", -HERD_ECONFIG, "cluster_kwargs.processes: expected bool, got str \"yes\"");
    invalid(schema, "{load: 'high'}", -HERD_ECONFIG, "cluster_kwargs.load: expected float, got str \"high\"");
    invalid(schema, "{name: 7}", -HERD_ECONFIG, "cluster_kwargs.name: expected str or null, got int 7");
    invalid(schema, "{env: [A]}", -HERD_ECONFIG, "cluster_kwargs.env: expected map, got array [A]");
    invalid(schema, "{tags: x}", -HERD_ECONFIG, "cluster_kwargs.tags: expected list, got str \"x\"");
    invalid(schema, "{death_timeout: 5 parsecs}", -HERD_ECONFIG,
            "cluster_kwargs.death_timeout: expected duration (seconds, or a string like \"500ms\", \"2s\", "
            "\"5m\", \"1h\"), got str \"5 parsecs\"");
    invalid(schema, "{death_timeout: -1}", -HERD_ECONFIG,
            "cluster_kwargs.death_timeout: expected duration >= 0, got -1");
    invalid(schema, "{memory_limit: lots}", -HERD_ECONFIG,
            "cluster_kwargs.memory_limit: expected size (bytes, or a string like \"512MiB\", \"4GB\", \"auto\"), "
            "got str \"lots\"");
    invalid(schema, "{memory_limit: 1.5}", -HERD_ECONFIG,
            "cluster_kwargs.memory_limit: expected size (bytes, or a string like \"512MiB\", \"4GB\", \"auto\"), "
            "got float 1.5");
    invalid(schema, "{memory_limit: -5}", -HERD_ECONFIG, "cluster_kwargs.memory_limit: expected size >= 0, got -5");
}

static void test_ranges(void **state)
{
    (void)state;
    invalid(schema, "{n_workers: 0}", -HERD_ECONFIG, "cluster_kwargs.n_workers: expected int >= 1 and <= 1024, got 0");
    invalid(schema, "{n_workers: 1025}", -HERD_ECONFIG,
            "cluster_kwargs.n_workers: expected int >= 1 and <= 1024, got 1025");
    invalid(schema, "{threads_per_worker: -3}", -HERD_ECONFIG,
            "cluster_kwargs.threads_per_worker: expected int >= 1, got -3");
    invalid(schema, "{load: 1.5}", -HERD_ECONFIG, "cluster_kwargs.load: expected float >= 0 and <= 1, got 1.5");
    invalid(schema, "{load: .nan}", -HERD_ECONFIG, "cluster_kwargs.load: expected float >= 0 and <= 1, got .nan");
    invalid(schema, "{heartbeat: 2m}", -HERD_ECONFIG,
            "cluster_kwargs.heartbeat: expected duration >= 0.1 and <= 60 seconds, got \"2m\"");
    herd_value *out = valid(schema, "{n_workers: 1, heartbeat: 1m, load: 0}");
    herd_value_free(out);
}

static void test_required(void **state)
{
    (void)state;
    static const herd_param req[] = {
        { "image", HERD_PARAM_STRING, NULL, "container image", HERD_PARAM_REQUIRED, 0, 0 },
        { "timeout", HERD_PARAM_DURATION, "5m", "", HERD_PARAM_REQUIRED, 0, 0 },
        { "cpu", HERD_PARAM_INT, "1024", "", 0, 256, 4096 },
        { NULL },
    };
    invalid(req, "{cpu: 512}", -HERD_ECONFIG, "cluster_kwargs.image: required key is missing (expected str)");
    invalid(req, "{image: x}", -HERD_ECONFIG,
            "cluster_kwargs.timeout: required key is missing (expected duration (seconds, or a string like "
            "\"500ms\", \"2s\", \"5m\", \"1h\"))");
    herd_value *out = valid(req, "{image: 'python:3.11', timeout: 10}");
    assert_yaml(out, "{image: python:3.11, timeout: 10.0, cpu: 1024}");
    herd_value_free(out);
}

static void test_secrets(void **state)
{
    (void)state;
    invalid(schema, "{token: 123456789}", -HERD_ECONFIG, "cluster_kwargs.token: expected str, got int <secret>");
    invalid(schema, "{pin: 42}", -HERD_ECONFIG, "cluster_kwargs.pin: expected int >= 1000 and <= 9999, got <secret>");
    invalid(schema, "{pin: hunter2}", -HERD_ECONFIG, "cluster_kwargs.pin: expected int, got str <secret>");

    static const herd_param bad_default[] = {
        { "key", HERD_PARAM_INT, "'s3cr3t'", "", HERD_PARAM_SECRET, 0, 0 },
        { NULL },
    };
    herd_value *out;
    herd_err err;
    assert_int_equal(herd_kwargs_validate(bad_default, NULL, "x", &out, &err), -HERD_EARG);
    assert_null(strstr(err.msg, "s3cr3t"));
    assert_string_equal(err.msg, "x.key: the schema's default is invalid: expected int, got str <secret>");
}

static void test_bad_schema(void **state)
{
    (void)state;
    static const herd_param bad[] = {
        { "n", HERD_PARAM_INT, "four", "", 0, 0, 0 },
        { NULL },
    };
    static const herd_param bad_yaml[] = {
        { "n", HERD_PARAM_INT, "[1,", "", 0, 0, 0 },
        { NULL },
    };
    herd_value *out;
    herd_err err;
    assert_int_equal(herd_kwargs_validate(bad, NULL, "adapt_kwargs", &out, &err), -HERD_EARG);
    assert_string_equal(err.msg, "adapt_kwargs.n: the schema's default is invalid: expected int, got str \"four\"");
    assert_int_equal(herd_kwargs_validate(bad_yaml, NULL, "adapt_kwargs", &out, &err), -HERD_EARG);
    assert_true(strncmp(err.msg, "adapt_kwargs.n: the schema's default [1, is not valid YAML: line 1", 65) == 0);
    /* given values win over bad defaults */
    herd_value *in = yaml("{n: 3}");
    assert_int_equal(herd_kwargs_validate(bad, in, "adapt_kwargs", &out, &err), 0);
    assert_int_equal(herd_as_int(herd_map_get(out, "n")), 3);
    herd_value_free(out);
    herd_value_free(in);
    assert_int_equal(herd_kwargs_validate(schema, NULL, "x", NULL, &err), -HERD_EARG);
}

static void test_type_names(void **state)
{
    (void)state;
    assert_string_equal(herd_param_type_name(HERD_PARAM_INT), "int");
    assert_string_equal(herd_param_type_name(HERD_PARAM_STRING), "str");
    assert_string_equal(herd_param_type_name(HERD_PARAM_LIST), "list");
    assert_string_equal(herd_param_type_name(HERD_PARAM_DURATION), "duration");
    assert_string_equal(herd_param_type_name(HERD_PARAM_SIZE), "size");
    assert_string_equal(herd_param_type_name(HERD_PARAM_ANY), "any");
}

/* ---- binding a validated map to a struct ---- */

typedef struct opts {
    int n;                    /* INT as int */
    int64_t big;              /* INT as int64_t */
    double ratio;             /* FLOAT */
    double wait;              /* DURATION */
    bool on;                  /* BOOL */
    int64_t mem;              /* SIZE */
    const char *name;         /* STRING, nullable */
    const herd_value *env;    /* MAP */
    const herd_value *tags;   /* LIST */
    const herd_value *extra;  /* ANY */
    int untouched;            /* not in the schema */
    int opt;                  /* INT without a default: absent leaves it */
} opts;

#define F(m) HERD_PARAM_FIELD(opts, m)
static const herd_param bound[] = {
    { "n", HERD_PARAM_INT, "4", "", 0, 0, 100, F(n) },
    { "big", HERD_PARAM_INT, "5000000000", "", 0, 0, 0, F(big) },
    { "ratio", HERD_PARAM_FLOAT, "0.5", "", 0, 0, 1, F(ratio) },
    { "wait", HERD_PARAM_DURATION, "2m", "", 0, 0, 0, F(wait) },
    { "on", HERD_PARAM_BOOL, "true", "", 0, 0, 0, F(on) },
    { "mem", HERD_PARAM_SIZE, "1KiB", "", HERD_PARAM_NULLABLE, 0, 0, F(mem) },
    { "name", HERD_PARAM_STRING, "\"w\"", "", HERD_PARAM_NULLABLE, 0, 0, F(name) },
    { "env", HERD_PARAM_MAP, "{}", "", 0, 0, 0, F(env) },
    { "tags", HERD_PARAM_LIST, "null", "", HERD_PARAM_NULLABLE, 0, 0, F(tags) },
    { "extra", HERD_PARAM_ANY, NULL, "", 0, 0, 0, F(extra) },
    { "opt", HERD_PARAM_INT, NULL, "", HERD_PARAM_NULLABLE, 0, 0, F(opt) },
    { "loose", HERD_PARAM_INT, "1", "validated, not bound", 0, 0, 0 },
    { NULL },
};

/* Validate and bind text into a struct pre-set with markers. */
static herd_value *bind(const char *text, opts *o)
{
    *o = (opts){ .n = -1, .big = -1, .ratio = -1, .wait = -1, .on = false, .mem = -7,
                 .name = "marker", .env = (const herd_value *)1, .tags = (const herd_value *)1,
                 .extra = (const herd_value *)1, .untouched = 42, .opt = -3 };
    herd_value *in = text ? yaml(text) : NULL, *ok = NULL;
    herd_err err;
    if (herd_kwargs_load(bound, in, "cluster_kwargs", &ok, o, sizeof *o, &err)) fail_msg("<%s>: %s", text, err.msg);
    herd_value_free(in);
    return ok;
}

static void test_bind_defaults(void **state)
{
    (void)state;
    opts o;
    herd_value *ok = bind(NULL, &o);
    assert_int_equal(o.n, 4);
    assert_true(o.big == 5000000000LL);
    assert_true(o.ratio == 0.5);
    assert_true(o.wait == 120);
    assert_true(o.on);
    assert_true(o.mem == 1024);
    assert_string_equal(o.name, "w");
    assert_ptr_equal(o.name, herd_as_str(herd_map_get(ok, "name")));   /* borrowed from the map */
    assert_int_equal(herd_typeof(o.env), HERD_MAP);
    assert_int_equal(herd_len(o.env), 0);
    assert_null(o.tags);                  /* null: a pointer field is NULL */
    assert_null(o.extra);                 /* absent: likewise */
    assert_int_equal(o.opt, -3);          /* absent number: as the caller set it */
    assert_int_equal(o.untouched, 42);
    herd_value_free(ok);
}

static void test_bind_given(void **state)
{
    (void)state;
    opts o;
    herd_value *ok = bind("{n: 7, big: -9000000000, ratio: 1, wait: 250ms, on: false, mem: auto, name: null, "
                          "env: {A: b}, tags: [x, y], extra: 3, opt: 12, loose: 5}", &o);
    assert_int_equal(o.n, 7);
    assert_true(o.big == -9000000000LL);
    assert_true(o.ratio == 1.0);          /* an int given for a float */
    assert_true(fabs(o.wait - 0.25) < 1e-12);
    assert_false(o.on);
    assert_true(o.mem == HERD_SIZE_AUTO);
    assert_null(o.name);                  /* nullable string given null */
    assert_string_equal(herd_as_str(herd_map_get(o.env, "A")), "b");
    assert_int_equal(herd_len(o.tags), 2);
    assert_int_equal(herd_as_int(o.extra), 3);
    assert_int_equal(o.opt, 12);
    assert_int_equal(o.untouched, 42);
    herd_value_free(ok);
    /* a null number leaves the field as it was */
    ok = bind("{mem: null, opt: null}", &o);
    assert_true(o.mem == -7);
    assert_int_equal(o.opt, -3);
    herd_value_free(ok);
}

static void test_bind_refused(void **state)
{
    (void)state;
    opts o = { .n = 99 };
    herd_value *ok = valid(bound, "{n: 3}");
    herd_err err;
    /* a struct smaller than the schema's fields: nothing is written */
    assert_int_equal(herd_kwargs_bind(bound, ok, &o, offsetof(opts, untouched), &err), -HERD_EARG);
    assert_int_equal(o.n, 99);
    char want[300];
    snprintf(want, sizeof want, "herd_kwargs_bind: opt is bound at offset %zu (+%zu bytes), outside a struct of %zu bytes",
             offsetof(opts, opt), sizeof(int), offsetof(opts, untouched));
    assert_string_equal(err.msg, want);
    /* a field of the wrong size for its type */
    static const herd_param wrong[] = { { "ratio", HERD_PARAM_FLOAT, "1", "", 0, 0, 0, HERD_PARAM_FIELD(opts, n) }, { NULL } };
    herd_value *r = valid(wrong, NULL);
    assert_int_equal(herd_kwargs_bind(wrong, r, &o, sizeof o, &err), -HERD_EARG);
    assert_string_equal(err.msg, "herd_kwargs_bind: float ratio is bound to a field of 4 bytes, expected double (8 bytes)");
    herd_value_free(r);
    /* an int64 value that an int field cannot hold */
    static const herd_param narrow[] = { { "n", HERD_PARAM_INT, "5000000000", "", 0, 0, 0, HERD_PARAM_FIELD(opts, n) }, { NULL } };
    r = valid(narrow, NULL);
    assert_int_equal(herd_kwargs_bind(narrow, r, &o, sizeof o, &err), -HERD_ECONFIG);
    assert_string_equal(err.msg, "n: 5000000000 does not fit the int it is bound to");
    assert_int_equal(o.n, 99);
    herd_value_free(r);
    /* not a map, no struct */
    r = yaml("[1]");
    assert_int_equal(herd_kwargs_bind(bound, r, &o, sizeof o, &err), -HERD_EARG);
    assert_string_equal(err.msg, "herd_kwargs_bind: expected a validated map, got array");
    herd_value_free(r);
    assert_int_equal(herd_kwargs_bind(bound, ok, NULL, sizeof o, &err), -HERD_EARG);
    herd_value_free(ok);
    /* validate-and-bind: a validation error binds nothing */
    herd_value *in = yaml("{n: 500}"), *out = (herd_value *)1;
    o.n = 99;
    assert_int_equal(herd_kwargs_load(bound, in, "cluster_kwargs", &out, &o, sizeof o, &err), -HERD_ECONFIG);
    assert_null(out);
    assert_int_equal(o.n, 99);
    assert_string_equal(err.msg, "cluster_kwargs.n: expected int >= 0 and <= 100, got 500");
    herd_value_free(in);
}

/* distributed.deploy.utils.nprocesses_nthreads, the rule LocalCluster and
 * SLURMCluster share (its values from distributed's test_deploy_utils). */
static void test_nprocesses_nthreads(void **state)
{
    (void)state;
    static const int cases[][3] = { {1, 1, 1}, {2, 2, 1}, {4, 4, 1}, {5, 5, 1}, {6, 3, 2},
                                    {7, 7, 1}, {8, 4, 2}, {12, 4, 3}, {20, 5, 4}, {24, 6, 4},
                                    {32, 8, 4}, {40, 8, 5}, {64, 8, 8}, {0, 1, 1} };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int p = -1, t = -1;
        herd_nprocesses_nthreads(cases[i][0], &p, &t);
        assert_int_equal(p, cases[i][1]);
        assert_int_equal(t, cases[i][2]);
    }
    int p = -1;
    herd_nprocesses_nthreads(9, &p, NULL);     /* a NULL output is skipped */
    assert_int_equal(p, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_normalise),
        cmocka_unit_test(test_not_a_map),
        cmocka_unit_test(test_unknown_keys),
        cmocka_unit_test(test_types),
        cmocka_unit_test(test_ranges),
        cmocka_unit_test(test_required),
        cmocka_unit_test(test_secrets),
        cmocka_unit_test(test_bad_schema),
        cmocka_unit_test(test_type_names),
        cmocka_unit_test(test_bind_defaults),
        cmocka_unit_test(test_bind_given),
        cmocka_unit_test(test_bind_refused),
        cmocka_unit_test(test_nprocesses_nthreads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
