/* tests/unit/test_value.c — herd_value: constructors, containers, copy/equal,
 * tuples, YAML text both ways (typing, quoting, errors with positions, source
 * positions), msgpack both ways (including hostile input), futref walking,
 * duration/size parsing, and herd_err. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <herd/herd.h>
#include "client.h"       /* struct herd_future, for herd_tuple's 'f' */
#include "value_int.h"

/* ---- helpers ---- */

static herd_value *parse_ok(const char *text)
{
    herd_value *v = NULL;
    herd_err err = { 0 };
    int rc = herd_value_parse(text, &v, &err);
    if (rc) fail_msg("parse of <%s> failed: %s", text, err.msg);
    return v;
}

static void parse_fails(const char *text, const char *msg)
{
    herd_value *v = (herd_value *)1;
    herd_err err = { 0 };
    int rc = herd_value_parse(text, &v, &err);
    if (rc == 0) fail_msg("parse of <%s> should fail", text);
    assert_int_equal(rc, err.code);
    assert_null(v);
    if (!strstr(err.msg, msg)) fail_msg("parse of <%s>: error <%s> lacks <%s>", text, err.msg, msg);
}

static void assert_to_string(const herd_value *v, const char *want)
{
    char *s = herd_value_to_string(v);
    assert_non_null(s);
    assert_string_equal(s, want);
    free(s);
}

static herd_value *roundtrip_msgpack(const herd_value *v)
{
    char *buf;
    size_t len;
    herd_err err;
    assert_int_equal(herd_value_encode(v, &buf, &len, &err), 0);
    herd_value *back = NULL;
    int rc = herd_value_decode(buf, len, &back, &err);
    if (rc) fail_msg("decode failed: %s", err.msg);
    free(buf);
    return back;
}

static herd_value *sample(void)
{
    herd_value *m = herd_map();
    herd_map_set(m, "nil", herd_nil());
    herd_map_set(m, "t", herd_bool(true));
    herd_map_set(m, "f", herd_bool(false));
    herd_map_set(m, "i", herd_int(-42));
    herd_map_set(m, "big", herd_int(INT64_MAX));
    herd_map_set(m, "small", herd_int(INT64_MIN));
    herd_map_set(m, "pi", herd_float(3.141592653589793));
    herd_map_set(m, "tenth", herd_float(0.1));
    herd_map_set(m, "huge", herd_float(1e300));
    herd_map_set(m, "neg0", herd_float(-0.0));
    herd_map_set(m, "inf", herd_float(INFINITY));
    herd_map_set(m, "s", herd_str("hello world"));
    herd_map_set(m, "empty", herd_str(""));
    herd_map_set(m, "utf8", herd_str("grüße ✓"));
    herd_map_set(m, "bytes", herd_bytes("\x00\x01\xff\x80", 4));
    herd_map_set(m, "nobytes", herd_bytes(NULL, 0));
    herd_map_set(m, "list", herd_tuple("isv", 1, "two", herd_tuple("d", 3.5)));
    herd_map_set(m, "emptylist", herd_array());
    herd_value *inner = herd_map();
    herd_map_set(inner, "deep key", herd_str("a: b"));
    herd_map_set(m, "map", inner);
    herd_map_set(m, "emptymap", herd_map());
    return m;
}

/* ---- herd_err ---- */

static void test_errors(void **state)
{
    (void)state;
    assert_string_equal(herd_strerror(-HERD_EARG), "invalid argument");
    assert_string_equal(herd_strerror(HERD_EPLUGIN), "task plugin failure");
    assert_string_equal(herd_strerror(-ENOENT), strerror(ENOENT));
    assert_string_equal(herd_strerror(0), "success");
    assert_non_null(herd_strerror(-999999));
    assert_non_null(strstr(herd_strerror(-999999), "999999"));

    herd_err err;
    assert_int_equal(herd_err_set(&err, HERD_ECONFIG, "n_workers: expected %s", "int"), -HERD_ECONFIG);
    assert_int_equal(err.code, -HERD_ECONFIG);
    assert_string_equal(err.msg, "n_workers: expected int");
    assert_int_equal(herd_err_prefix(&err, "%s", "cluster_kwargs"), -HERD_ECONFIG);
    assert_string_equal(err.msg, "cluster_kwargs: n_workers: expected int");
    assert_int_equal(herd_err_set(&err, -ENOENT, "open %s", "x"), -ENOENT);
    assert_int_equal(herd_err_set(NULL, -ENOENT, "x"), -ENOENT);
    assert_int_equal(herd_err_prefix(NULL, "x"), -HERD_EARG);
    herd_err_clear(&err);
    assert_int_equal(err.code, 0);
    assert_string_equal(err.msg, "");
    herd_err_clear(NULL);

    /* long messages are cut, not overflowed */
    char big[2000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    herd_err_set(&err, HERD_EARG, "%s", big);
    assert_int_equal(strlen(err.msg), sizeof err.msg - 1);
    herd_err_prefix(&err, "%s", big);
    assert_int_equal(strlen(err.msg), sizeof err.msg - 1);
}

/* ---- scalars and containers ---- */

static void test_scalars(void **state)
{
    (void)state;
    herd_value *v = herd_int(7);
    assert_int_equal(herd_typeof(v), HERD_INT);
    assert_int_equal(herd_as_int(v), 7);
    assert_true(herd_as_float(v) == 7.0);
    assert_false(herd_as_bool(v));          /* mismatch: zero value */
    assert_null(herd_as_str(v));
    assert_int_equal(herd_len(v), 0);
    assert_null(herd_at(v, 0));
    herd_value_free(v);

    v = herd_float(-2.75);
    assert_int_equal(herd_as_int(v), -2);
    herd_value_free(v);
    v = herd_float(1e300);
    assert_true(herd_as_int(v) == INT64_MAX);
    herd_value_free(v);
    v = herd_float(NAN);
    assert_int_equal(herd_as_int(v), 0);
    herd_value_free(v);

    v = herd_strn("ab\0cd", 5);
    size_t n;
    const char *p = herd_as_bytes(v, &n);
    assert_int_equal(n, 5);
    assert_memory_equal(p, "ab\0cd", 5);
    assert_int_equal(herd_len(v), 5);
    assert_string_equal(herd_as_str(v), "ab");
    herd_value_free(v);

    v = herd_bytes("\x01\x02", 2);
    assert_null(herd_as_str(v));
    assert_non_null(herd_as_bytes(v, &n));
    assert_int_equal(n, 2);
    herd_value_free(v);

    v = herd_futref(0xdeadbeefcafe1234ull);
    assert_int_equal(herd_typeof(v), HERD_FUTREF);
    assert_true(herd_as_futref(v) == 0xdeadbeefcafe1234ull);
    herd_value_free(v);

    /* NULL counts as nil, everything is NULL-safe */
    assert_int_equal(herd_typeof(NULL), HERD_NIL);
    assert_int_equal(herd_as_int(NULL), 0);
    assert_null(herd_as_bytes(NULL, &n));
    assert_int_equal(n, 0);
    assert_null(herd_map_get(NULL, "x"));
    assert_null(herd_key_at(NULL, 0));
    assert_null(herd_str(NULL));
    herd_value_free(NULL);

    assert_string_equal(herd_type_name(HERD_MAP), "map");
    assert_string_equal(herd_type_name(HERD_STR), "str");
    assert_string_equal(herd_type_name(HERD_FUTREF), "future");
}

static void test_containers(void **state)
{
    (void)state;
    herd_value *a = herd_array();
    for (int i = 0; i < 100; i++) assert_int_equal(herd_array_push(a, herd_int(i)), 0);
    assert_int_equal(herd_len(a), 100);
    assert_int_equal(herd_as_int(herd_at(a, 99)), 99);
    assert_null(herd_at(a, 100));
    assert_int_equal(herd_array_push(a, NULL), -HERD_EARG);

    /* push/set into the wrong type takes ownership and fails (ASan: no leak) */
    herd_value *i = herd_int(1);
    assert_int_equal(herd_array_push(i, herd_str("x")), -HERD_EARG);
    assert_int_equal(herd_map_set(a, "k", herd_str("x")), -HERD_EARG);
    assert_int_equal(herd_map_set(NULL, "k", herd_str("x")), -HERD_EARG);
    herd_value_free(i);
    herd_value_free(a);

    herd_value *m = herd_map();
    assert_int_equal(herd_map_set(m, "b", herd_int(1)), 0);
    assert_int_equal(herd_map_set(m, "a", herd_int(2)), 0);
    assert_int_equal(herd_map_set(m, "c", herd_int(3)), 0);
    assert_int_equal(herd_map_set(m, "a", herd_str("replaced")), 0);
    assert_int_equal(herd_len(m), 3);
    assert_string_equal(herd_key_at(m, 0), "b");
    assert_string_equal(herd_key_at(m, 1), "a");      /* keeps its place */
    assert_string_equal(herd_as_str(herd_at(m, 1)), "replaced");
    assert_string_equal(herd_as_str(herd_map_get(m, "a")), "replaced");
    assert_null(herd_map_get(m, "z"));
    assert_int_equal(herd_map_del(m, "b"), 0);
    assert_int_equal(herd_map_del(m, "b"), -HERD_EARG);
    assert_string_equal(herd_key_at(m, 0), "a");
    assert_string_equal(herd_key_at(m, 1), "c");
    assert_null(herd_key_at(m, 2));
    herd_value_free(m);

    /* a big map (hash index), with deletes */
    m = herd_map();
    char k[32];
    for (int j = 0; j < 2000; j++) {
        snprintf(k, sizeof k, "key%d", j);
        assert_int_equal(herd_map_set(m, k, herd_int(j)), 0);
    }
    for (int j = 0; j < 2000; j += 2) {
        snprintf(k, sizeof k, "key%d", j);
        assert_int_equal(herd_map_del(m, k), 0);
    }
    assert_int_equal(herd_len(m), 1000);
    for (int j = 0; j < 2000; j++) {
        snprintf(k, sizeof k, "key%d", j);
        herd_value *v = herd_map_get(m, k);
        if (j % 2) assert_int_equal(herd_as_int(v), j);
        else assert_null(v);
    }
    assert_string_equal(herd_key_at(m, 0), "key1");
    assert_int_equal(herd_map_set(m, "key1", herd_int(-1)), 0);
    assert_int_equal(herd_len(m), 1000);
    assert_int_equal(herd_as_int(herd_map_get(m, "key1")), -1);
    herd_value_free(m);
}

static void test_copy_equal(void **state)
{
    (void)state;
    herd_value *a = sample();
    herd_value *b = herd_value_copy(a);
    assert_non_null(b);
    assert_true(herd_value_equal(a, b));
    assert_true(herd_at(a, 0) != herd_at(b, 0));       /* deep */
    herd_map_set(herd_map_get(b, "map"), "deep key", herd_str("changed"));
    assert_false(herd_value_equal(a, b));
    herd_value_free(b);

    /* map order does not matter, values do */
    herd_value *x = parse_ok("{a: 1, b: [1, 2]}"), *y = parse_ok("{b: [1, 2], a: 1}");
    assert_true(herd_value_equal(x, y));
    herd_map_set(y, "c", herd_nil());
    assert_false(herd_value_equal(x, y));
    herd_value_free(x);
    herd_value_free(y);

    herd_value *i = herd_int(1), *f = herd_float(1.0), *n1 = herd_float(NAN), *n2 = herd_float(NAN);
    assert_false(herd_value_equal(i, f));
    assert_true(herd_value_equal(n1, n2));
    herd_value *s = herd_str("ab"), *by = herd_bytes("ab", 2), *nil = herd_nil();
    assert_false(herd_value_equal(s, by));
    assert_true(herd_value_equal(nil, NULL));
    assert_false(herd_value_equal(i, NULL));
    herd_value_free(i); herd_value_free(f); herd_value_free(n1); herd_value_free(n2);
    herd_value_free(s); herd_value_free(by); herd_value_free(nil);
    herd_value_free(a);
    assert_null(herd_value_copy(NULL));
}

static void test_tuple(void **state)
{
    (void)state;
    herd_value *t = herd_tuple("nbiIdsyvs", true, -5, (int64_t)1 << 40, 2.5, "data", "\x00z", (size_t)2,
                               herd_str("owned"), (const char *)NULL);
    assert_non_null(t);
    assert_int_equal(herd_len(t), 9);
    assert_int_equal(herd_typeof(herd_at(t, 0)), HERD_NIL);
    assert_true(herd_as_bool(herd_at(t, 1)));
    assert_int_equal(herd_as_int(herd_at(t, 2)), -5);
    assert_true(herd_as_int(herd_at(t, 3)) == (int64_t)1 << 40);
    assert_true(herd_as_float(herd_at(t, 4)) == 2.5);
    assert_string_equal(herd_as_str(herd_at(t, 5)), "data");
    assert_int_equal(herd_typeof(herd_at(t, 6)), HERD_BYTES);
    assert_int_equal(herd_len(herd_at(t, 6)), 2);
    assert_string_equal(herd_as_str(herd_at(t, 7)), "owned");
    assert_int_equal(herd_typeof(herd_at(t, 8)), HERD_NIL);
    assert_to_string(t, "[null, true, -5, 1099511627776, 2.5, data, !!binary AHo=, owned, null]");
    herd_value_free(t);

    /* 'f': a future becomes a futref to its key (herd_future_key) */
    herd_future fut;
    memset(&fut, 0, sizeof fut);
    fut.key = 0xabcdef0123ull;
    t = herd_tuple("fi", &fut, 3);
    assert_int_equal(herd_typeof(herd_at(t, 0)), HERD_FUTREF);
    assert_true(herd_as_futref(herd_at(t, 0)) == 0xabcdef0123ull);
    uint64_t *keys;
    size_t nk;
    assert_int_equal(herd_value_collect_futrefs(t, &keys, &nk), 0);
    assert_int_equal(nk, 1);
    assert_true(keys[0] == 0xabcdef0123ull);
    free(keys);
    herd_value_free(t);
    assert_null(herd_tuple("vf", herd_str("freed"), (herd_future *)NULL));

    t = herd_tuple("");
    assert_int_equal(herd_typeof(t), HERD_ARRAY);
    assert_int_equal(herd_len(t), 0);
    herd_value_free(t);

    /* a bad letter: NULL, and the 'v' taken before it is freed (ASan) */
    assert_null(herd_tuple("vq", herd_str("leak?"), 1));
    /* a NULL 'v' (failed constructor) fails the tuple and frees the rest */
    assert_null(herd_tuple("vv", (herd_value *)NULL, herd_str("freed")));
    assert_null(herd_tuple(NULL));
}

/* ---- YAML out ---- */

static void test_to_string(void **state)
{
    (void)state;
    herd_value *v = parse_ok("{n_workers: 4, tags: [a, b]}");
    assert_to_string(v, "{n_workers: 4, tags: [a, b]}");
    herd_value_free(v);

    struct { herd_value *v; const char *want; } cases[] = {
        { herd_nil(), "null" },
        { herd_bool(false), "false" },
        { herd_int(-12), "-12" },
        { herd_float(1.0), "1.0" },
        { herd_float(0.1), "0.1" },
        { herd_float(-0.0), "-0.0" },
        { herd_float(1e300), "1e+300" },
        { herd_float(INFINITY), ".inf" },
        { herd_float(-INFINITY), "-.inf" },
        { herd_float(NAN), ".nan" },
        { herd_str("plain text"), "plain text" },
        { herd_str("http://x.org/a"), "http://x.org/a" },
        { herd_str(""), "\"\"" },
        { herd_str("true"), "\"true\"" },
        { herd_str("4"), "\"4\"" },
        { herd_str("1.5"), "\"1.5\"" },
        { herd_str("~"), "\"~\"" },
        { herd_str("null"), "\"null\"" },
        { herd_str("a: b"), "\"a: b\"" },
        { herd_str("a,b"), "\"a,b\"" },
        { herd_str("x#y"), "x#y" },
        { herd_str("x #y"), "\"x #y\"" },
        { herd_str("-x"), "\"-x\"" },
        { herd_str(" lead"), "\" lead\"" },
        { herd_str("say \"hi\"\n\tback\\"), "\"say \\\"hi\\\"\\n\\tback\\\\\"" },
        { herd_str("bell\x07"), "\"bell\\x07\"" },
        { herd_str("grüße"), "grüße" },
        { herd_str("bad\xff"), "\"bad\\xFF\"" },
        { herd_bytes("\x00\x01\x02\xff", 4), "!!binary AAEC/w==" },
        { herd_bytes(NULL, 0), "!!binary \"\"" },
        { herd_futref(42), "<future 42>" },
        { herd_array(), "[]" },
        { herd_map(), "{}" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_to_string(cases[i].v, cases[i].want);
        herd_value_free(cases[i].v);
    }

    v = herd_map();
    herd_map_set(v, "key: with colon", herd_tuple("is", 1, "[x]"));
    herd_map_set(v, "", herd_nil());
    assert_to_string(v, "{\"key: with colon\": [1, \"[x]\"], \"\": null}");
    herd_value_free(v);
}

static void test_describe(void **state)
{
    (void)state;
    herd_value *v = herd_str("four");
    char *d = herd_value_describe(v, 100);
    assert_string_equal(d, "str \"four\"");
    free(d);
    herd_value_free(v);
    v = herd_int(4);
    d = herd_value_describe(v, 100);
    assert_string_equal(d, "int 4");
    free(d);
    herd_value_free(v);
    d = herd_value_describe(NULL, 100);
    assert_string_equal(d, "null");
    free(d);
    v = herd_str("a very long string that goes on and on and on");
    d = herd_value_describe(v, 20);
    assert_int_equal(strlen(d), 20);
    assert_string_equal(d + 17, "...");
    free(d);
    herd_value_free(v);
}

/* ---- YAML in ---- */

static void test_yaml_roundtrip(void **state)
{
    (void)state;
    herd_value *v = sample();
    herd_map_del(v, "inf");        /* compared below separately */
    char *s = herd_value_to_string(v);
    herd_value *back = parse_ok(s);
    if (!herd_value_equal(v, back)) fail_msg("round trip changed the value: %s", s);
    free(s);
    herd_value_free(back);
    herd_value_free(v);

    const char *tricky[] = {
        "", " ", "a b", "true", "False", "NULL", "~", "0x1F", "0o17", "1e3", ".5", "-.inf", ".nan",
        "-", "?", ":", "a:", "a:b", "a: b", "#c", "a #c", "[", "]", "{", "}", ",", "&a", "*a", "!t",
        "|", ">", "'", "\"", "%", "@", "`", "...", "---", "--- x", "tab\there", "nl\nnl", "back\\slash",
        "\r\n", "trailing ", "ünïcödé", "€100", "<future 1>", "emoji 🐑", "\x01\x7f", "\xc2\x85",
        "\xe2\x80\xa8", "\xef\xbb\xbf" "bom", "12:30", "1_000", "0b101", "+12", "1.", "yes", "no", "on", "<<",
    };
    for (size_t i = 0; i < sizeof tricky / sizeof tricky[0]; i++) {
        herd_value *m = herd_map();
        herd_map_set(m, tricky[i], herd_tuple("s", tricky[i]));
        s = herd_value_to_string(m);
        herd_value *p = NULL;
        herd_err err;
        if (herd_value_parse(s, &p, &err)) fail_msg("<%s> -> <%s>: %s", tricky[i], s, err.msg);
        if (!herd_value_equal(m, p)) {
            char *ps = herd_value_to_string(p);
            fail_msg("<%s> -> <%s> -> %s", tricky[i], s, ps);
        }
        free(s);
        herd_value_free(p);
        herd_value_free(m);
    }

    /* every float survives to_string/parse exactly */
    double ds[] = { 0.1, 1.0 / 3, 1e-300, 5e-324, 1.7976931348623157e308, 123456789.125, -2.5e-7, 100.0 };
    for (size_t i = 0; i < sizeof ds / sizeof ds[0]; i++) {
        herd_value *f = herd_float(ds[i]);
        s = herd_value_to_string(f);
        herd_value *p = parse_ok(s);
        assert_int_equal(herd_typeof(p), HERD_FLOAT);
        if (herd_as_float(p) != ds[i]) fail_msg("%.17g -> %s -> %.17g", ds[i], s, herd_as_float(p));
        free(s);
        herd_value_free(p);
        herd_value_free(f);
    }
}

static void test_yaml_typing(void **state)
{
    (void)state;
    struct { const char *text; herd_type t; int64_t i; double d; const char *s; } cases[] = {
        { "", HERD_NIL, 0, 0, NULL },
        { "~", HERD_NIL, 0, 0, NULL },
        { "null", HERD_NIL, 0, 0, NULL },
        { "NULL", HERD_NIL, 0, 0, NULL },
        { "nULL", HERD_STR, 0, 0, "nULL" },
        { "true", HERD_BOOL, 1, 0, NULL },
        { "False", HERD_BOOL, 0, 0, NULL },
        { "yes", HERD_STR, 0, 0, "yes" },           /* YAML 1.1 only */
        { "on", HERD_STR, 0, 0, "on" },
        { "42", HERD_INT, 42, 0, NULL },
        { "-17", HERD_INT, -17, 0, NULL },
        { "+8", HERD_INT, 8, 0, NULL },
        { "007", HERD_INT, 7, 0, NULL },
        { "0x1F", HERD_INT, 31, 0, NULL },
        { "0o17", HERD_INT, 15, 0, NULL },
        { "9223372036854775807", HERD_INT, INT64_MAX, 0, NULL },
        { "-9223372036854775808", HERD_INT, INT64_MIN, 0, NULL },
        { "0x", HERD_STR, 0, 0, "0x" },
        { "0b101", HERD_STR, 0, 0, "0b101" },
        { "1_000", HERD_STR, 0, 0, "1_000" },
        { "1.5", HERD_FLOAT, 0, 1.5, NULL },
        { "-.5", HERD_FLOAT, 0, -0.5, NULL },
        { "1.", HERD_FLOAT, 0, 1.0, NULL },
        { "1e3", HERD_FLOAT, 0, 1000.0, NULL },
        { "2.5E-2", HERD_FLOAT, 0, 0.025, NULL },
        { ".inf", HERD_FLOAT, 0, INFINITY, NULL },
        { "-.Inf", HERD_FLOAT, 0, -INFINITY, NULL },
        { "1e", HERD_STR, 0, 0, "1e" },
        { ".", HERD_STR, 0, 0, "." },
        { "'42'", HERD_STR, 0, 0, "42" },
        { "\"true\"", HERD_STR, 0, 0, "true" },
        { "'~'", HERD_STR, 0, 0, "~" },
        { "\"\"", HERD_STR, 0, 0, "" },
        { "\"tab\\there \\u00e9\"", HERD_STR, 0, 0, "tab\there \xc3\xa9" },
        { "12:30", HERD_STR, 0, 0, "12:30" },
        { "hello world", HERD_STR, 0, 0, "hello world" },
        { "!!str 42", HERD_STR, 0, 0, "42" },
        { "!!str", HERD_STR, 0, 0, "" },
        { "! 42", HERD_STR, 0, 0, "42" },
        { "!!int '42'", HERD_INT, 42, 0, NULL },
        { "!!float 3", HERD_FLOAT, 0, 3.0, NULL },
        { "!!bool \"true\"", HERD_BOOL, 1, 0, NULL },
        { "!!null ''", HERD_NIL, 0, 0, NULL },
        { "  42  # a comment", HERD_INT, 42, 0, NULL },
        { "# only a comment", HERD_NIL, 0, 0, NULL },
        { "---\n...\n", HERD_NIL, 0, 0, NULL },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        herd_value *v = parse_ok(cases[i].text);
        if (herd_typeof(v) != cases[i].t)
            fail_msg("<%s>: type %s, want %s", cases[i].text, herd_type_name(herd_typeof(v)),
                     herd_type_name(cases[i].t));
        switch (cases[i].t) {
        case HERD_BOOL: assert_int_equal(herd_as_bool(v), cases[i].i); break;
        case HERD_INT: assert_true(herd_as_int(v) == cases[i].i); break;
        case HERD_FLOAT: assert_true(herd_as_float(v) == cases[i].d); break;
        case HERD_STR: assert_string_equal(herd_as_str(v), cases[i].s); break;
        default: break;
        }
        herd_value_free(v);
    }
    herd_value *v = parse_ok(".NaN");
    assert_true(isnan(herd_as_float(v)));
    herd_value_free(v);
    v = parse_ok("!!binary AAEC/w==");
    assert_int_equal(herd_typeof(v), HERD_BYTES);
    size_t n;
    assert_memory_equal(herd_as_bytes(v, &n), "\x00\x01\x02\xff", 4);
    assert_int_equal(n, 4);
    herd_value_free(v);
    v = parse_ok("!!binary |\n  aGVsbG8g\n  d29ybGQ=\n");
    assert_int_equal(herd_len(v), 11);
    assert_memory_equal(herd_as_bytes(v, NULL), "hello world", 11);
    herd_value_free(v);
}

static void test_yaml_block(void **state)
{
    (void)state;
    const char *doc =
        "# a profile\n"
        "cluster_class: local.LocalCluster\n"
        "cluster_kwargs:\n"
        "  n_workers: 4\n"
        "  memory_limit: 4GiB\n"
        "  env: {A: '1', B: \"two\"}\n"
        "  hosts:\n"
        "    - alpha\n"
        "    - beta\n"
        "    - {name: gamma, port: 22}\n"
        "script: |\n"
        "  echo hi\n"
        "  echo there\n"
        "folded: >\n"
        "  one\n"
        "  two\n"
        "anchored: &defaults {retries: 2, timeout: 5m}\n"
        "copy: *defaults\n";
    herd_value *v = parse_ok(doc);
    assert_string_equal(herd_key_at(v, 0), "cluster_class");
    herd_value *ck = herd_map_get(v, "cluster_kwargs");
    assert_int_equal(herd_as_int(herd_map_get(ck, "n_workers")), 4);
    assert_string_equal(herd_as_str(herd_map_get(ck, "memory_limit")), "4GiB");
    assert_string_equal(herd_as_str(herd_map_get(herd_map_get(ck, "env"), "A")), "1");
    herd_value *hosts = herd_map_get(ck, "hosts");
    assert_int_equal(herd_len(hosts), 3);
    assert_int_equal(herd_as_int(herd_map_get(herd_at(hosts, 2), "port")), 22);
    assert_string_equal(herd_as_str(herd_map_get(v, "script")), "echo hi\necho there\n");
    assert_string_equal(herd_as_str(herd_map_get(v, "folded")), "one two\n");
    assert_true(herd_value_equal(herd_map_get(v, "anchored"), herd_map_get(v, "copy")));
    assert_true(herd_map_get(v, "anchored") != herd_map_get(v, "copy"));
    assert_to_string(herd_map_get(v, "copy"), "{retries: 2, timeout: 5m}");
    herd_value_free(v);
}

static void test_yaml_errors(void **state)
{
    (void)state;
    parse_fails("a: 1\na: 2\n", "line 2, column 1: duplicate key \"a\"");
    parse_fails("{x: 1, y: [1, 2}", "line 1, column 16:");
    parse_fails("a: b: c", "line 1, column 5: mapping values are not allowed");
    parse_fails("key: [1,\n  2,\n  *nope]\n", "line 3, column 3: unknown alias *nope");
    parse_fails("a: !foo 1", "line 1, column 4: unsupported tag !foo");
    parse_fails("a: !!int abc", "line 1, column 4: \"abc\" is not a valid !!int");
    parse_fails("a: !!int 1.5", "is not a valid !!int");
    parse_fails("a: !!bool yes", "is not a valid !!bool");
    parse_fails("a: !!binary '***'", "not valid base64");
    parse_fails("a: !!set {x}", "unsupported tag !!set on a map");
    parse_fails("n: 99999999999999999999", "line 1, column 4: integer 99999999999999999999 does not fit");
    parse_fails("n: 0x8000000000000000", "does not fit");
    parse_fails("? [a, b]\n: 1\n", "line 1, column 3: map keys must be strings, not lists");
    parse_fails("base: &b {x: 1}\nderived:\n  <<: *b\n", "line 3, column 3: merge keys (<<) are not supported");
    parse_fails("--- 1\n--- 2\n", "line 2, column 1: expected one YAML document");
    parse_fails("a: \"unterminated", "line 1, column");
    parse_fails("\t- x", "line 1, column 1");
    parse_fails("a: \xff\xfe", "invalid leading UTF-8 octet");

    herd_value *al = parse_ok("{a: &x 5, b: *x, c: &x six, d: *x}");   /* anchors may be redefined */
    assert_to_string(al, "{a: 5, b: 5, c: six, d: six}");
    herd_value_free(al);

    char deep[200] = "";
    for (int i = 0; i < 70; i++) strcat(deep, "[");
    parse_fails(deep, "nested deeper than 64 levels");

    /* billion laughs */
    const char *lol =
        "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
        "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
        "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
        "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
        "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
        "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n";
    parse_fails(lol, "aliases expand to more than");

    /* with a file name: FILE:LINE:COL */
    herd_value *v;
    herd_err err;
    const char *text = "cluster_kwargs:\n  n_workers: 4\n  n_workers: 5\n";
    assert_int_equal(herd_value_parse_at(text, strlen(text), "herd.yaml", &v, &err), -HERD_EARG);
    assert_string_equal(err.msg, "herd.yaml:3:3: duplicate key \"n_workers\"");
    /* len is honoured: only the first line is read */
    assert_int_equal(herd_value_parse_at(text, 16, "herd.yaml", &v, &err), 0);
    assert_int_equal(herd_typeof(herd_map_get(v, "cluster_kwargs")), HERD_NIL);
    herd_value_free(v);
    assert_int_equal(herd_value_parse("a: 1", NULL, &err), -HERD_EARG);
    assert_int_equal(herd_value_parse(NULL, &v, &err), 0);   /* like empty text */
    assert_int_equal(herd_typeof(v), HERD_NIL);
    herd_value_free(v);
}

static void test_yaml_positions(void **state)
{
    (void)state;
    const char *doc =
        "cluster_class: local.LocalCluster\n"
        "cluster_kwargs:\n"
        "  n_workers: four\n"
        "  hosts: [a,  b]\n"
        "  nested:\n"
        "    - {k: 1}\n";
    herd_value *v, *pos;
    herd_err err;
    assert_int_equal(herd_value_parse_positions(doc, strlen(doc), "p.yaml", &v, &pos, &err), 0);
    herd_srcpos k, val;
    assert_int_equal(herd_srcpos_get(pos, "cluster_kwargs.n_workers", &k, &val), 0);
    assert_int_equal(k.line, 3);
    assert_int_equal(k.col, 3);
    assert_int_equal(val.line, 3);
    assert_int_equal(val.col, 14);
    assert_int_equal(herd_srcpos_get(pos, "cluster_class", &k, NULL), 0);
    assert_int_equal(k.line, 1);
    assert_int_equal(k.col, 1);
    assert_int_equal(herd_srcpos_get(pos, "cluster_kwargs.hosts[1]", NULL, &val), 0);
    assert_int_equal(val.line, 4);
    assert_int_equal(val.col, 15);
    assert_int_equal(herd_srcpos_get(pos, "cluster_kwargs.nested[0].k", &k, NULL), 0);
    assert_int_equal(k.line, 6);
    assert_int_equal(k.col, 8);
    assert_int_equal(herd_srcpos_get(pos, "cluster_kwargs.nope", &k, &val), -HERD_EARG);
    assert_int_equal(herd_srcpos_get(NULL, "x", &k, &val), -HERD_EARG);
    herd_value_free(v);
    herd_value_free(pos);

    /* errors leave nothing behind */
    pos = (herd_value *)1;
    assert_int_equal(herd_value_parse_positions("a: [", 4, NULL, &v, &pos, &err), -HERD_EARG);
    assert_null(pos);
    assert_null(v);
}

/* ---- msgpack ---- */

static void test_msgpack_roundtrip(void **state)
{
    (void)state;
    herd_value *v = sample();
    herd_map_set(v, "fut", herd_futref(0x0102030405060708ull));
    herd_map_set(v, "nan", herd_float(NAN));
    herd_value *back = roundtrip_msgpack(v);
    assert_true(herd_value_equal(v, back));
    /* order is kept */
    for (size_t i = 0; i < herd_len(v); i++) assert_string_equal(herd_key_at(v, i), herd_key_at(back, i));
    herd_value_free(back);
    herd_value_free(v);

    herd_value *scalars[] = { herd_nil(), herd_bool(true), herd_int(0), herd_int(-1), herd_int(127),
                              herd_int(128), herd_int(-33), herd_int(INT64_MIN), herd_int(INT64_MAX),
                              herd_float(2.5), herd_str(""), herd_bytes(NULL, 0), herd_futref(0),
                              herd_futref(UINT64_MAX), herd_array(), herd_map() };
    for (size_t i = 0; i < sizeof scalars / sizeof scalars[0]; i++) {
        back = roundtrip_msgpack(scalars[i]);
        assert_true(herd_value_equal(scalars[i], back));
        herd_value_free(back);
        herd_value_free(scalars[i]);
    }

    /* a big string/bytes and a long array */
    size_t big = 100000;
    char *raw = malloc(big);
    for (size_t i = 0; i < big; i++) raw[i] = (char)(i * 7);
    v = herd_tuple("yv", raw, big, herd_array());
    for (int i = 0; i < 70000; i++) herd_array_push(herd_at(v, 1), herd_int(i));
    back = roundtrip_msgpack(v);
    assert_true(herd_value_equal(v, back));
    herd_value_free(back);
    herd_value_free(v);
    free(raw);

    /* exact bytes of a futref: fixext8 (0xd7), type 1, big-endian key */
    v = herd_futref(0x0102030405060708ull);
    char *buf;
    size_t len;
    assert_int_equal(herd_value_encode(v, &buf, &len, NULL), 0);
    assert_int_equal(len, 10);
    assert_memory_equal(buf, "\xd7\x01\x01\x02\x03\x04\x05\x06\x07\x08", 10);
    free(buf);
    herd_value_free(v);
}

static herd_value *nest(int levels)
{
    herd_value *v = herd_int(1);
    for (int i = 0; i < levels; i++) v = herd_tuple("v", v);
    return v;
}

static void test_msgpack_depth(void **state)
{
    (void)state;
    herd_value *v = nest(HERD_VALUE_WIRE_DEPTH);
    herd_value *back = roundtrip_msgpack(v);
    assert_true(herd_value_equal(v, back));
    herd_value_free(back);
    herd_value_free(v);

    v = nest(HERD_VALUE_WIRE_DEPTH + 1);
    char *buf;
    size_t len;
    herd_err err;
    assert_int_equal(herd_value_encode(v, &buf, &len, &err), -HERD_EARG);
    assert_null(buf);
    assert_string_equal(err.msg, "value is nested 25 levels deep; at most 24 can be encoded");

    /* herd_value_pack refuses it without writing a byte */
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    assert_int_equal(herd_value_pack(&pk, v), -HERD_EARG);
    assert_int_equal(sb.size, 0);
    msgpack_sbuffer_destroy(&sb);
    herd_value_free(v);

    /* a value at the limit inside an 8-level envelope still decodes */
    v = nest(HERD_VALUE_WIRE_DEPTH);
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    for (int i = 0; i < 8; i++) msgpack_pack_array(&pk, 1);
    assert_int_equal(herd_value_pack(&pk, v), 0);
    assert_int_equal(herd_msgpack_check(sb.data, sb.size, &len, &err), 0);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    assert_int_equal(msgpack_unpack_next(&u, sb.data, sb.size, &off), MSGPACK_UNPACK_SUCCESS);
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&sb);
    herd_value_free(v);

    /* msgpack_objects nested past HERD_VALUE_MAX_DEPTH */
    msgpack_object objs[HERD_VALUE_MAX_DEPTH + 2];
    for (int i = 0; i < HERD_VALUE_MAX_DEPTH + 1; i++) {
        objs[i].type = MSGPACK_OBJECT_ARRAY;
        objs[i].via.array.size = 1;
        objs[i].via.array.ptr = &objs[i + 1];
    }
    objs[HERD_VALUE_MAX_DEPTH + 1].type = MSGPACK_OBJECT_NIL;
    assert_int_equal(herd_value_from_msgpack(&objs[0], &v, &err), -HERD_EPROTO);
    assert_null(v);
    assert_string_equal(err.msg, "msgpack: nested deeper than 64 levels");
    assert_int_equal(herd_value_from_msgpack(&objs[1], &v, &err), 0);   /* 64 deep: fine */
    assert_int_equal(herd_value_depth(v), 64);
    herd_value_free(v);
}

static void decode_fails(const void *buf, size_t len, const char *msg)
{
    herd_value *v = (herd_value *)1;
    herd_err err = { 0 };
    int rc = herd_value_decode(buf, len, &v, &err);
    if (rc == 0) fail_msg("decode of %zu bytes should fail (want <%s>)", len, msg);
    assert_null(v);
    assert_int_equal(rc, err.code);
    if (msg && !strstr(err.msg, msg)) fail_msg("error <%s> lacks <%s>", err.msg, msg);
}

static void test_msgpack_hostile(void **state)
{
    (void)state;
    decode_fails("", 0, "truncated");
    decode_fails("\xdd\xff\xff\xff\xff", 5, "array at offset 5 declares 4294967295 items but only 0 bytes follow");
    decode_fails("\xdf\x0f\xff\xff\xff\x01", 6, "map at offset 5 declares 268435455 items");
    decode_fails("\xdb\xff\xff\xff\xff", 5, "needs 4294967295 bytes, 0 remain");
    decode_fails("\xc1", 1, "invalid byte 0xc1 at offset 0");
    decode_fails("\xc0\xc0", 2, "1 trailing bytes");
    decode_fails("\x81\x01\x02", 3, "msgpack: map key 0 is an int (1), expected a string");
    decode_fails("\x82\xa1k\x01\x91\x01\x02", 7, "map key 1 is an array, expected a string");
    decode_fails("\x81\xc4\x01k\x02", 5, "map key 0 is a bytes");
    decode_fails("\xd7\x05\x00\x00\x00\x00\x00\x00\x00\x00", 10, "msgpack: unknown ext type 5");
    decode_fails("\xd6\x01\x00\x00\x00\x00", 6, "future reference (ext 1) holds 4 bytes, expected 8");
    decode_fails("\xcf\xff\xff\xff\xff\xff\xff\xff\xff", 9, "integer 18446744073709551615 is out of range");
    decode_fails("\x81\xa3k\x00y\x01", 6, "contains a NUL byte");

    char bomb[1000];
    memset(bomb, 0x91, sizeof bomb);
    bomb[sizeof bomb - 1] = (char)0xc0;
    decode_fails(bomb, sizeof bomb, "nested deeper than 32 levels");
    decode_fails(bomb + sizeof bomb - 34, 34, "nested deeper than 32 levels");
    herd_value *v;
    assert_int_equal(herd_value_decode(bomb + sizeof bomb - 33, 33, &v, NULL), 0);
    herd_value_free(v);

    /* every truncation of a valid encoding fails cleanly */
    herd_value *s = sample();
    herd_map_set(s, "fut", herd_futref(77));
    char *buf;
    size_t len;
    assert_int_equal(herd_value_encode(s, &buf, &len, NULL), 0);
    for (size_t i = 0; i < len; i++) decode_fails(buf, i, NULL);

    /* random corruption never crashes (ASan/UBSan watch) */
    unsigned seed = 12345;
    char *mut = malloc(len);
    int ok = 0;
    for (int round = 0; round < 20000; round++) {
        memcpy(mut, buf, len);
        int flips = 1 + round % 4;
        for (int f = 0; f < flips; f++) {
            seed = seed * 1103515245u + 12345u;
            mut[(seed >> 8) % len] = (char)(seed >> 20);
        }
        v = NULL;
        if (herd_value_decode(mut, len, &v, NULL) == 0) ok++;
        herd_value_free(v);
    }
    free(mut);
    assert_true(ok > 0);                  /* some mutations are still valid */
    unsigned char rnd[64];
    for (int round = 0; round < 20000; round++) {
        size_t n = 1 + round % sizeof rnd;
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            rnd[i] = (unsigned char)(seed >> 16);
        }
        v = NULL;
        herd_value_decode(rnd, n, &v, NULL);
        herd_value_free(v);
    }
    free(buf);
    herd_value_free(s);
}

static void test_msgpack_embedded(void **state)
{
    (void)state;
    /* a protocol message [op, value] built and read with the hidden helpers */
    herd_value *v = parse_ok("{args: [1, two, 3.5], opts: {retries: 2}}");
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_str(&pk, 6);
    msgpack_pack_str_body(&pk, "submit", 6);
    assert_int_equal(herd_value_pack(&pk, v), 0);
    assert_int_equal(herd_value_pack(NULL, v), -HERD_EARG);

    size_t used;
    herd_err err;
    assert_int_equal(herd_msgpack_check(sb.data, sb.size, &used, &err), 0);
    assert_int_equal(used, sb.size);
    assert_int_equal(herd_msgpack_check(sb.data, sb.size - 1, &used, &err), -HERD_EPROTO);

    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    assert_int_equal(msgpack_unpack_next(&u, sb.data, sb.size, &off), MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(u.data.type, MSGPACK_OBJECT_ARRAY);
    herd_value *back;
    assert_int_equal(herd_value_from_msgpack(&u.data.via.array.ptr[1], &back, &err), 0);
    assert_true(herd_value_equal(v, back));
    herd_value_free(back);
    assert_int_equal(herd_value_from_msgpack(NULL, &back, &err), -HERD_EARG);
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&sb);
    herd_value_free(v);
}

/* ---- futrefs ---- */

static int replace_cb(void *ud, uint64_t key, herd_value **out)
{
    int *calls = ud;
    (*calls)++;
    if (key == 666) return -HERD_EFAILED;
    if (key == 0) return 0;                                /* NULL: nil */
    if (key % 2) *out = herd_str("odd result");
    else *out = herd_tuple("I", (int64_t)key * 10);
    return 0;
}

static void test_futrefs(void **state)
{
    (void)state;
    herd_value *v = herd_tuple("vivv", herd_futref(5), 1,
                               herd_tuple("vv", herd_futref(8), herd_futref(5)), herd_map());
    herd_map_set(herd_at(v, 3), "dep", herd_futref(3));
    herd_map_set(herd_at(v, 3), "none", herd_futref(0));
    uint64_t *keys;
    size_t n;
    assert_int_equal(herd_value_collect_futrefs(v, &keys, &n), 0);
    assert_int_equal(n, 4);
    assert_true(keys[0] == 5 && keys[1] == 8 && keys[2] == 3 && keys[3] == 0);
    free(keys);

    int calls = 0;
    assert_int_equal(herd_value_replace_futrefs(v, replace_cb, &calls), 0);
    assert_int_equal(calls, 5);
    assert_to_string(v, "[odd result, 1, [[80], odd result], {dep: odd result, none: null}]");
    assert_int_equal(herd_value_collect_futrefs(v, &keys, &n), 0);
    assert_int_equal(n, 0);
    assert_null(keys);
    herd_value_free(v);

    /* a futref at the root becomes the replacement itself */
    v = herd_futref(7);
    calls = 0;
    assert_int_equal(herd_value_replace_futrefs(v, replace_cb, &calls), 0);
    assert_string_equal(herd_as_str(v), "odd result");
    herd_value_free(v);
    v = herd_futref(4);
    assert_int_equal(herd_value_replace_futrefs(v, replace_cb, &calls), 0);
    assert_to_string(v, "[40]");
    herd_value_free(v);

    /* an error stops the walk */
    v = herd_tuple("vvv", herd_futref(1), herd_futref(666), herd_futref(2));
    calls = 0;
    assert_int_equal(herd_value_replace_futrefs(v, replace_cb, &calls), -HERD_EFAILED);
    assert_int_equal(calls, 2);
    assert_int_equal(herd_typeof(herd_at(v, 0)), HERD_STR);
    assert_int_equal(herd_typeof(herd_at(v, 1)), HERD_FUTREF);
    assert_int_equal(herd_typeof(herd_at(v, 2)), HERD_FUTREF);
    herd_value_free(v);

    assert_int_equal(herd_value_collect_futrefs(NULL, &keys, &n), 0);
    assert_int_equal(n, 0);
}

/* ---- units ---- */

/* n nested arrays around a string, each pushed into the innermost one so far
 * (through herd_at): deeper than any depth cache can know. */
static herd_value *deep_chain(int n)
{
    herd_value *root = herd_array(), *leaf = root;
    for (int i = 1; i < n; i++) {
        assert_int_equal(herd_array_push(leaf, herd_array()), 0);
        leaf = herd_at(leaf, 0);
    }
    assert_int_equal(herd_array_push(leaf, herd_str("bottom")), 0);
    return root;
}

/* Nesting: push/set refuse past HERD_VALUE_MAX_DEPTH; a value made deeper
 * by changing a container after it was pushed is walked without recursion
 * (free) or refused by every bounded walk, never a stack overflow. */
static void test_depth_limits(void **state)
{
    (void)state;
    herd_value *v = herd_int(7);
    for (int d = 1; d <= HERD_VALUE_MAX_DEPTH; d++) {
        herd_value *a = d % 2 ? herd_array() : herd_map();
        int rc = herd_typeof(a) == HERD_ARRAY ? herd_array_push(a, v) : herd_map_set(a, "k", v);
        assert_int_equal(rc, 0);
        v = a;
    }
    assert_int_equal(herd_value_depth(v), HERD_VALUE_MAX_DEPTH);
    herd_value *c = herd_value_copy(v);               /* the limit itself works everywhere */
    assert_non_null(c);
    assert_true(herd_value_equal(v, c));
    char *s = herd_value_to_string(v);
    assert_non_null(s);
    free(s);
    herd_value_free(c);
    herd_value *top = herd_array(), *m = herd_map();  /* one more level is refused, by each */
    c = herd_value_copy(v);
    assert_null(herd_tuple("iv", 1, c));              /* (takes c, and frees it) */
    c = herd_value_copy(v);
    assert_int_equal(herd_map_set(m, "x", c), -HERD_EARG);
    assert_int_equal(herd_array_push(top, v), -HERD_EARG);
    assert_int_equal(herd_len(top), 0);
    assert_int_equal(herd_len(m), 0);
    herd_value_free(top);
    herd_value_free(m);

    /* a million levels, built through herd_at (no cache sees it) */
    herd_value *root = deep_chain(1000000), *twin = deep_chain(1000000);
    assert_int_equal(herd_value_depth(root), HERD_VALUE_MAX_DEPTH + 1);
    assert_null(herd_value_copy(root));
    assert_false(herd_value_equal(root, twin));       /* refused past the limit, not recursed */
    herd_value_free(twin);
    assert_null(herd_value_to_string(root));
    char *buf = NULL;
    size_t len = 0;
    herd_err err = { 0 };
    assert_int_equal(herd_value_encode(root, &buf, &len, &err), -HERD_EARG);
    assert_non_null(strstr(err.msg, "nested"));
    uint64_t *keys = NULL;
    size_t nk = 0;
    assert_int_equal(herd_value_collect_futrefs(root, &keys, &nk), -HERD_EARG);
    herd_value_free(root);                            /* iterative: no overflow */

    /* wide and deep mixed, maps and arrays: freed whole (ASan checks) */
    herd_value *w = herd_map();
    for (int i = 0; i < 1000; i++) {
        char k[16];
        snprintf(k, sizeof k, "k%d", i);
        herd_value *a = herd_array();
        for (int j = 0; j < 10; j++) herd_array_push(a, j % 2 ? herd_str("s") : herd_tuple("is", j, "x"));
        herd_map_set(w, k, a);
    }
    herd_value_free(w);
}

/* FNV-1a 32-bit, the unkeyed hash maps used before: a peer could pick keys
 * that all land in one run of the index. */
static uint32_t fnv1a(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static void test_map_hash_flood(void **state)
{
    (void)state;
    enum { N = 2000 };                    /* the index then has 8192 slots */
    herd_value *m = herd_map();
    char key[32];
    int found = 0;
    for (uint64_t i = 0; found < N; i++) {
        snprintf(key, sizeof key, "key%llu", (unsigned long long)i);
        if (fnv1a(key) & 0x1FFF) continue;
        assert_int_equal(herd_map_set(m, key, herd_int(found)), 0);
        found++;
    }
    assert_int_equal(herd_len(m), N);
    /* keys chosen to collide under FNV-1a spread out under the keyed hash */
    size_t probe = herd_map_longest_probe(m);
    assert_true(probe > 0);
    if (probe > 64) fail_msg("the longest probe run is %zu slots for %d chosen keys", probe, N);
    for (size_t i = 0; i < herd_len(m); i++)
        assert_int_equal(herd_as_int(herd_map_get(m, herd_key_at(m, i))), (int64_t)i);
    herd_value_free(m);
}

static void test_durations(void **state)
{
    (void)state;
    struct { const char *s; double want; } ok[] = {
        { "1.5", 1.5 }, { "0", 0 }, { "500ms", 0.5 }, { "2s", 2 }, { "5m", 300 }, { "1h", 3600 },
        { "1d", 86400 }, { "1w", 604800 }, { "250us", 250e-6 }, { "10ns", 10e-9 }, { " 3 seconds ", 3 },
        { "2 Minutes", 120 }, { "1.5h", 5400 }, { ".5s", 0.5 }, { "1e3ms", 1 }, { "2hours", 7200 },
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        double d = -1;
        if (herd_parse_duration(ok[i].s, &d)) fail_msg("duration <%s> rejected", ok[i].s);
        if (fabs(d - ok[i].want) > 1e-12 * (1 + ok[i].want)) fail_msg("<%s> -> %g, want %g", ok[i].s, d, ok[i].want);
    }
    const char *bad[] = { "", "s", "-1s", "1 parsec", "1.2.3s", "abc", "0x10", "inf", "nan", "1e999", "5 m s", NULL };
    for (size_t i = 0; bad[i]; i++) {
        double d;
        if (herd_parse_duration(bad[i], &d) != -HERD_EARG) fail_msg("duration <%s> accepted", bad[i]);
    }
    assert_int_equal(herd_parse_duration(NULL, NULL), -HERD_EARG);
}

static void test_sizes(void **state)
{
    (void)state;
    struct { const char *s; int64_t want; } ok[] = {
        { "512", 512 }, { "4kB", 4000 }, { "4KiB", 4096 }, { "2GB", 2000000000 }, { "1.5GiB", 1610612736 },
        { "4k", 4000 }, { "4 MB", 4000000 }, { "1mib", 1048576 }, { "10B", 10 }, { "3TiB", 3298534883328LL },
        { "1PB", 1000000000000000LL }, { "0", 0 }, { "1e3", 1000 },
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        int64_t b = -1;
        if (herd_parse_size(ok[i].s, &b)) fail_msg("size <%s> rejected", ok[i].s);
        if (b != ok[i].want) fail_msg("<%s> -> %lld, want %lld", ok[i].s, (long long)b, (long long)ok[i].want);
    }
    const char *bad[] = { "", "GB", "-1", "4 XB", "auto", "1e30", "1.5.GB", "4 GB extra", NULL };
    for (size_t i = 0; bad[i]; i++) {
        int64_t b;
        if (herd_parse_size(bad[i], &b) != -HERD_EARG) fail_msg("size <%s> accepted", bad[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_scalars),
        cmocka_unit_test(test_containers),
        cmocka_unit_test(test_copy_equal),
        cmocka_unit_test(test_tuple),
        cmocka_unit_test(test_to_string),
        cmocka_unit_test(test_describe),
        cmocka_unit_test(test_yaml_roundtrip),
        cmocka_unit_test(test_yaml_typing),
        cmocka_unit_test(test_yaml_block),
        cmocka_unit_test(test_yaml_errors),
        cmocka_unit_test(test_yaml_positions),
        cmocka_unit_test(test_msgpack_roundtrip),
        cmocka_unit_test(test_msgpack_depth),
        cmocka_unit_test(test_msgpack_hostile),
        cmocka_unit_test(test_msgpack_embedded),
        cmocka_unit_test(test_futrefs),
        cmocka_unit_test(test_depth_limits),
        cmocka_unit_test(test_map_hash_flood),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_sizes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
