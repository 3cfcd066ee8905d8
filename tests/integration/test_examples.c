/* tests/integration/test_examples.c — runs the built examples end to end
 * ($(BUILD)/examples/nino34 and annotations, found from this binary's own
 * path, $(BUILD)/tests/) and checks what they print and write: both phases
 * of nino34 and twelve valid PNG files; the order the annotations example's
 * tasks ran in (high priority before low) and that its {process: 1} tasks
 * did not overlap; the timeseries example's yearly table (years, row counts,
 * plausible means) in both modes, with its own --check passing. Only
 * ordering facts are asserted, never timings. */
#include <herd/herd.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

extern char **environ;

#define SAFETY_TIMEOUT 300            /* seconds before a hung example is killed */

static char build_dir[PATH_MAX];      /* $(BUILD) */
static char tmpdir[PATH_MAX];

typedef struct result { int status; char *out; size_t len; } result;

/* Run argv with stdout and stderr captured together. */
static result run(char *const argv[])
{
    result r = { -1, NULL, 0 };
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[1], 1);
    posix_spawn_file_actions_adddup2(&fa, p[1], 2);
    pid_t pid;
    int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(p[1]);
    if (rc) fail_msg("cannot run %s: %s", argv[0], strerror(rc));
    size_t cap = 65536;
    r.out = malloc(cap);
    assert_non_null(r.out);
    time_t deadline = time(NULL) + SAFETY_TIMEOUT;
    for (;;) {
        struct pollfd pf = { .fd = p[0], .events = POLLIN };
        if (poll(&pf, 1, 1000) == 0) {
            if (time(NULL) > deadline) {
                kill(pid, SIGKILL);
                break;
            }
            continue;
        }
        if (r.len + 4096 + 1 > cap) {
            r.out = realloc(r.out, cap *= 2);
            assert_non_null(r.out);
        }
        ssize_t n = read(p[0], r.out + r.len, cap - r.len - 1);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        r.len += (size_t)n;
    }
    close(p[0]);
    r.out[r.len] = '\0';
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    fprintf(stderr, "---- %s (exit %d) ----\n%s---- end ----\n", argv[0], r.status, r.out);
    return r;
}

static void example(char *out, size_t cap, const char *name)
{
    if (snprintf(out, cap, "%s/examples/%s", build_dir, name) >= (int)cap) fail_msg("path too long");
    if (access(out, X_OK)) fail_msg("%s: not built (%s)", out, strerror(errno));
}

static int setup(void **state)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return -1;
    exe[n] = '\0';
    *strrchr(exe, '/') = '\0';                                    /* $(BUILD)/tests */
    snprintf(build_dir, sizeof build_dir, "%.*s", (int)(strrchr(exe, '/') - exe), exe);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/herd-test-examples-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---- PNG checking, independent of the example's own ---- */

static unsigned long crc32(const unsigned char *p, size_t n)
{
    unsigned long c = 0xFFFFFFFFUL;
    while (n--) {
        c ^= *p++;
        for (int k = 0; k < 8; k++) c = c & 1 ? (c >> 1) ^ 0xEDB88320UL : c >> 1;
    }
    return c ^ 0xFFFFFFFFUL;
}

static unsigned long be32(const unsigned char *p)
{
    return (unsigned long)p[0] << 24 | (unsigned long)p[1] << 16 | (unsigned long)p[2] << 8 | p[3];
}

/* Signature, every chunk's CRC, IHDR first with a sane size, IDAT, IEND last. */
static void assert_valid_png(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("%s: %s", path, strerror(errno));
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    rewind(f);
    assert_true(size > 8);
    unsigned char *d = malloc((size_t)size);
    assert_non_null(d);
    assert_int_equal(fread(d, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    assert_memory_equal(d, "\x89PNG\r\n\x1a\n", 8);
    size_t i = 8;
    int chunks = 0, idat = 0, iend = 0;
    while (i + 12 <= (size_t)size) {
        unsigned long n = be32(d + i);
        assert_true(i + 12 + n <= (size_t)size);
        assert_int_equal(crc32(d + i + 4, n + 4), be32(d + i + 8 + n));
        if (chunks == 0) {
            assert_memory_equal(d + i + 4, "IHDR", 4);
            assert_int_equal(n, 13);
            assert_true(be32(d + i + 8) > 0 && be32(d + i + 12) > 0);
        }
        if (!memcmp(d + i + 4, "IDAT", 4)) idat++;
        if (!memcmp(d + i + 4, "IEND", 4)) iend = 1;
        chunks++;
        i += 12 + n;
    }
    assert_int_equal(i, (size_t)size);
    assert_true(idat > 0);
    assert_true(iend);
    free(d);
}

/* ---- nino34 ---- */

static void test_nino34_both_phases(void **state)
{
    char exe[PATH_MAX], dir[PATH_MAX + 16];
    example(exe, sizeof exe, "nino34");
    snprintf(dir, sizeof dir, "%s/data", tmpdir);
    char *argv[] = { exe, "--delay", "0.2", "--year", "2021", "--dir", dir, NULL };
    result r = run(argv);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "sequential: 12 of 12 images"));
    assert_non_null(strstr(r.out, "task runner: 12 of 12 images"));
    assert_non_null(strstr(r.out, "speed-up:"));
    /* the sequential phase comes first */
    assert_true(strstr(r.out, "sequential: 12 of 12") < strstr(r.out, "task runner: 12 of 12"));
    for (int m = 1; m <= 12; m++) {
        char path[PATH_MAX + 64];
        snprintf(path, sizeof path, "%s/2021%02d.png", dir, m);
        assert_non_null(strstr(r.out, path));
        assert_valid_png(path);
    }
    free(r.out);
}

static void test_nino34_runner_only_with_kwargs(void **state)
{
    char exe[PATH_MAX], dir[PATH_MAX + 16];
    example(exe, sizeof exe, "nino34");
    snprintf(dir, sizeof dir, "%s/runner-only", tmpdir);
    char *argv[] = { exe, "--delay", "0", "--runner-only", "--dir", dir,
                     "--cluster-kwargs", "{threads_per_worker: 3}", NULL };
    result r = run(argv);
    assert_int_equal(r.status, 0);
    assert_null(strstr(r.out, "sequential:"));
    assert_non_null(strstr(r.out, "threads_per_worker: 3"));
    assert_non_null(strstr(r.out, "task runner: 12 of 12 images"));
    for (int m = 1; m <= 12; m++) {
        char path[PATH_MAX + 64];
        snprintf(path, sizeof path, "%s/2022%02d.png", dir, m);
        assert_valid_png(path);
    }
    free(r.out);
}

static void test_nino34_bad_options(void **state)
{
    char exe[PATH_MAX];
    example(exe, sizeof exe, "nino34");
    char *a1[] = { exe, "--sequential-only", "--runner-only", NULL };
    result r = run(a1);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.out, "exclude each other"));
    free(r.out);
    char *a2[] = { exe, "--delay", "soon", NULL };
    r = run(a2);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.out, "--delay"));
    free(r.out);
}

/* ---- timeseries ---- */

/* The yearly table's row for year, parsed: "  1988    31622400    999.9950  ..." */
static int64_t table_rows(const char *out, int year)
{
    const char *t = strstr(out, "  year        rows");
    assert_non_null(t);
    char key[16];
    snprintf(key, sizeof key, "\n  %d  ", year);
    const char *p = strstr(t, key);
    if (!p) return -1;
    long long rows;
    double id, x, y;
    assert_int_equal(sscanf(p + strlen(key), "%lld %lf %lf %lf", &rows, &id, &x, &y), 4);
    assert_true(id > 990 && id < 1010);               /* Poisson(1000) */
    assert_true(x > -0.01 && x < 0.01 && y > -0.01 && y < 0.01);   /* uniform in [-1, 1) */
    return rows;
}

static void timeseries_run(const char *start, const char *end, bool materialize, int y0, int64_t rows0, int y1,
                           int64_t rows1)
{
    char exe[PATH_MAX];
    example(exe, sizeof exe, "timeseries");
    char *argv[] = { exe, "--start", (char *)start, "--end", (char *)end, "--check", "--freq", "1s",
                     materialize ? "--materialize" : NULL, NULL };
    result r = run(argv);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, materialize ? "materialised as columns" : "summed where generated"));
    assert_int_equal(table_rows(r.out, y0), rows0);
    assert_int_equal(table_rows(r.out, y1), rows1);
    assert_int_equal(table_rows(r.out, y0 - 1), -1);
    assert_int_equal(table_rows(r.out, y1 + 1), -1);
    assert_non_null(strstr(r.out, "check: passed: 2 years equal"));
    assert_non_null(strstr(r.out, "million rows/s"));
    free(r.out);
}

static void test_timeseries_sums(void **state)
{
    /* 1988 is a leap year: 366 days; 1989-01-01..06-30 is 181 days */
    timeseries_run("1988-01-01", "1989-06-30", false, 1988, 366 * 86400LL, 1989, 181 * 86400LL);
}

static void test_timeseries_materialize(void **state)
{
    /* a partition straddles the new year: 47 days of 1988, 45 of 1989 */
    timeseries_run("1988-11-15", "1989-02-14", true, 1988, 47 * 86400LL, 1989, 45 * 86400LL);
}

static void test_timeseries_bad_options(void **state)
{
    char exe[PATH_MAX];
    example(exe, sizeof exe, "timeseries");
    char *a1[] = { exe, "--freq", "1h", NULL };
    result r = run(a1);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.out, "--freq: only 1s"));
    free(r.out);
    char *a2[] = { exe, "--start", "1989-02-29", NULL };
    r = run(a2);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.out, "--start: expected a date"));
    free(r.out);
    char *a3[] = { exe, "--start", "1990-01-02", "--end", "1990-01-01", NULL };
    r = run(a3);
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.out, "--end is before --start"));
    free(r.out);
}

/* ---- annotations ---- */

static void test_quickstart(void **state)
{
    char exe[PATH_MAX];
    example(exe, sizeof exe, "quickstart");
    char *argv[] = { exe, NULL };
    result r = run(argv);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "sum of the squares of 1..12 = 650"));
    assert_non_null(strstr(r.out, "square-11: squaring 12"));     /* task logs reach the flow */
    free(r.out);
}

static void test_annotations_order(void **state)
{
    char exe[PATH_MAX];
    example(exe, sizeof exe, "annotations");
    char *argv[] = { exe, NULL };
    result r = run(argv);
    assert_int_equal(r.status, 0);

    /* priority: the listing "  1. show(2)  high (priority 10)" … */
    const char *list = strstr(r.out, "priority: order the tasks ran in:");
    assert_non_null(list);
    const char *high = strstr(list, "high (priority 10)"), *mid = strstr(list, "middle (priority 5)"),
               *low = strstr(list, "low (priority -10)");
    assert_non_null(high);
    assert_non_null(mid);
    assert_non_null(low);
    assert_true(high < mid);
    assert_true(mid < low);

    /* resources: parse the {process: 1} intervals and check them ourselves */
    const char *res = strstr(r.out, "resources: when each task ran");
    assert_non_null(res);
    double s[3], e[3];
    int n = 0;
    for (const char *p = strstr(res, "needs {process: 1}"); p && n < 3; p = strstr(p + 1, "needs {process: 1}")) {
        assert_int_equal(sscanf(p + strlen("needs {process: 1}"), " %lf .. %lf", &s[n], &e[n]), 2);
        assert_true(s[n] <= e[n]);
        n++;
    }
    assert_int_equal(n, 3);
    for (int i = 0; i < 3; i++)                      /* listed in start order */
        for (int j = i + 1; j < 3; j++) assert_true(s[j] >= e[i]);
    assert_non_null(strstr(res, "needs {GPU: 1}"));
    assert_non_null(strstr(r.out, "{TPU: 1} refused at submit"));
    free(r.out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nino34_bad_options),
        cmocka_unit_test(test_nino34_both_phases),
        cmocka_unit_test(test_nino34_runner_only_with_kwargs),
        cmocka_unit_test(test_annotations_order),
        cmocka_unit_test(test_quickstart),
        cmocka_unit_test(test_timeseries_bad_options),
        cmocka_unit_test(test_timeseries_sums),
        cmocka_unit_test(test_timeseries_materialize),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
