/* tests/unit/test_aws_sigv4.c — SigV4 signing (providers/aws/sigv4.c) against
 * AWS's own test suite, copied with its licence into tests/data/sigv4/: for
 * each of the 31 cases the .req is parsed, signed, and the canonical request,
 * the string to sign and the Authorization value are compared byte for byte
 * with .creq, .sts and .authz. Plus the bad arguments' errors. */
#include <herd/herd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../../providers/aws/aws.h"

#include <ftw.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_CASES 64
static char *cases[MAX_CASES];   /* path of each case's .req without the extension */
static size_t ncases;

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    aws_buf b = { 0 };
    char tmp[4096];
    size_t n;
    while ((n = fread(tmp, 1, sizeof tmp, f)) > 0) aws_buf_add(&b, tmp, n);
    fclose(f);
    if (len) *len = b.len;
    return aws_buf_take(&b);
}

static char *file_of(const char *base, const char *ext)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s.%s", base, ext);
    char *s = slurp(path, NULL);
    if (!s) fail_msg("cannot read %s", path);
    return s;
}

typedef struct parsed {
    char *method, *path, *query;
    aws_hdr h[32];
    char *names[32], *values[32];
    size_t nh;
    const char *body;
    size_t body_len;
    char *text;
} parsed;

/* The suite's .req: "METHOD target HTTP/1.1", Name:value lines (a line that
 * starts with a space continues the previous value, joined with ','), then
 * optionally a blank line and the body. */
static void parse_req(char *text, parsed *p)
{
    memset(p, 0, sizeof *p);
    p->text = text;
    char *eol = strchr(text, '\n');
    assert_non_null(eol);
    *eol = 0;
    char *sp1 = strchr(text, ' '), *sp2 = strrchr(text, ' ');
    assert_true(sp1 && sp2 && sp1 < sp2);
    *sp1 = 0;
    *sp2 = 0;
    p->method = text;
    p->path = sp1 + 1;
    char *q = strchr(p->path, '?');
    if (q) { *q = 0; p->query = q + 1; }
    char *line = eol + 1;
    while (line && *line) {
        char *next = strchr(line, '\n');
        if (next) *next++ = 0;
        if (!*line) { p->body = next ? next : ""; p->body_len = strlen(p->body); break; }
        if (*line == ' ' || *line == '\t') {
            assert_true(p->nh > 0);
            while (*line == ' ' || *line == '\t') line++;
            aws_buf b = { 0 };
            aws_buf_fmt(&b, "%s,%s", p->values[p->nh - 1], line);
            free(p->values[p->nh - 1]);
            p->values[p->nh - 1] = aws_buf_take(&b);
        } else {
            char *colon = strchr(line, ':');
            assert_non_null(colon);
            assert_true(p->nh < 32);
            p->names[p->nh] = strndup(line, (size_t)(colon - line));
            p->values[p->nh] = strdup(colon + 1);
            p->nh++;
        }
        line = next;
    }
    for (size_t i = 0; i < p->nh; i++) p->h[i] = (aws_hdr){ p->names[i], p->values[i] };
}

static void parsed_free(parsed *p)
{
    for (size_t i = 0; i < p->nh; i++) { free(p->names[i]); free(p->values[i]); }
    free(p->text);
}

static void sign_case(void **state)
{
    const char *base = *state;
    parsed p;
    parse_req(file_of(base, "req"), &p);
    const char *date = NULL;
    for (size_t i = 0; i < p.nh; i++)
        if (strcasecmp(p.names[i], "X-Amz-Date") == 0) date = p.values[i];
    assert_non_null(date);
    aws_sigv4_in in = {
        .method = p.method, .path = p.path, .query = p.query, .headers = p.h, .nheaders = p.nh,
        .body = p.body, .body_len = p.body_len, .amz_date = date, .region = "us-east-1",
        .service = "service", .access_key = "AKIDEXAMPLE",
        .secret_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
    };
    aws_sigv4_out out;
    herd_err err = { 0 };
    assert_int_equal(aws_sigv4_sign(&in, &out, &err), 0);
    char *creq = file_of(base, "creq"), *sts = file_of(base, "sts"), *authz = file_of(base, "authz");
    assert_string_equal(out.creq, creq);
    assert_string_equal(out.sts, sts);
    assert_string_equal(out.authz, authz);
    free(creq);
    free(sts);
    free(authz);
    aws_sigv4_out_free(&out);
    parsed_free(&p);
}

static void bad_arguments(void **state)
{
    (void)state;
    aws_sigv4_in in = { .method = "GET", .path = "/", .amz_date = "2015", .region = "us-east-1",
                        .service = "ecs", .access_key = "A", .secret_key = "S" };
    aws_sigv4_out out;
    herd_err err = { 0 };
    assert_int_equal(aws_sigv4_sign(&in, &out, &err), -HERD_EARG);
    assert_non_null(strstr(err.msg, "sigv4"));
    assert_null(out.authz);
}

static int add_case(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st; (void)ftw;
    size_t n = strlen(path);
    if (type == FTW_F && n > 4 && strcmp(path + n - 4, ".req") == 0 && ncases < MAX_CASES)
        cases[ncases++] = strndup(path, n - 4);
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(void)
{
    /* the vectors: tests/data/sigv4, found from this binary (BUILD/tests/x) */
    char exe[PATH_MAX], dir[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return 1;
    exe[n] = 0;
    snprintf(dir, sizeof dir, "%s/../tests/data/sigv4", dirname(dirname(exe)));
    if (access(dir, R_OK) != 0) snprintf(dir, sizeof dir, "tests/data/sigv4");
    nftw(dir, add_case, 16, FTW_PHYS);
    qsort(cases, ncases, sizeof *cases, by_name);
    if (ncases != 31) {
        fprintf(stderr, "expected the 31 cases of AWS's SigV4 suite under %s, found %zu\n", dir, ncases);
        return 1;
    }
    struct CMUnitTest tests[MAX_CASES + 1];
    size_t nt = 0;
    for (size_t i = 0; i < ncases; i++) {
        const char *slash = strrchr(cases[i], '/');
        tests[nt++] = (struct CMUnitTest){ slash ? slash + 1 : cases[i], sign_case, NULL, NULL, cases[i] };
    }
    tests[nt++] = (struct CMUnitTest){ "bad_arguments", bad_arguments, NULL, NULL, NULL };
    int rc = _cmocka_run_group_tests("aws_sigv4", tests, nt, NULL, NULL);
    for (size_t i = 0; i < ncases; i++) free(cases[i]);
    return rc;
}
