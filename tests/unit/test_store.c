/* tests/unit/test_store.c — a worker's store under its spiller (core/store.c,
 * core/spill.c), without a cluster: a reader holding a value keeps reading
 * it while it is spilled; a get after the spill maps the file and reads the
 * same bytes; a FREE (del) deletes the file, a mapping in use still reads;
 * a replaced key's file goes; the spill directory goes with the spiller;
 * the pause callback fires over 80%; a bad local_directory is refused by
 * name. A 1 MiB limit puts any process over 70%, so the monitor spills
 * everything within 100 ms: the test waits for that state, never a time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spill.h"
#include "store.h"
#include "comm.h"
#include "value_int.h"
#include "../support/testutil.h"

typedef struct seen { atomic_int pauses, spills; } seen;

static void on_log(void *ud, int level, const char *line)
{
    seen *s = ud;
    if (strstr(line, "spilled ")) atomic_fetch_add(&s->spills, 1);
}

static void on_pause(void *ud, int paused)
{
    seen *s = ud;
    if (paused) atomic_fetch_add(&s->pauses, 1);
}

static size_t files_in(const char *dir)
{
    size_t n = 0;
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));) n += e->d_name[0] != '.';
    if (d) closedir(d);
    return n;
}

/* Wait until n bytes are spilled (the monitor's doing). */
static void wait_spilled(herd_store *st, size_t n)
{
    double end = tu_now() + TU_WAIT_S;
    size_t spilled = 0;
    for (;;) {
        herd_store_stats(st, NULL, NULL, &spilled);
        if (spilled == n || tu_now() > end) break;
        tu_sleep_ms(5);
    }
    assert_int_equal(spilled, n);
}

static herd_value *big_value(size_t n, int seed)
{
    unsigned char *p = malloc(n);
    for (size_t i = 0; i < n; i++) p[i] = (unsigned char)(i * 7 + (size_t)seed);
    return herd_bytes_take(p, n);
}

static void test_readers_stay_consistent(void **state)
{
    char dir[256];
    tu_mkdtemp(dir, sizeof dir);
    herd_store *st = herd_store_new();
    seen s = { 0 };
    herd_spill_cfg cfg = { .memory_limit = 1 << 20, .local_directory = dir, .name = "w-1", .log = on_log,
                           .on_pause = on_pause, .ud = &s };
    herd_spill *sp = NULL;
    herd_err err = { 0 };
    assert_int_equal(herd_spill_new(&sp, st, &cfg, &err), 0);
    assert_string_equal(herd_spill_dir(sp), "");          /* made on the first spill */

    /* a value, and raw packed bytes */
    herd_value *v = big_value(300000, 1);
    size_t vlen = herd_wire_size(v);
    assert_int_equal(herd_store_put_value(st, 11, v, vlen), 0);
    herd_blob *held = herd_store_get(st, 11);             /* a reader in the middle of a transfer */
    assert_non_null(held);
    assert_ptr_equal(held->value, v);
    char *raw = NULL;
    size_t rawlen = 0;
    herd_value *w = big_value(200000, 2);
    assert_int_equal(herd_value_encode(w, &raw, &rawlen, &err), 0);
    assert_int_equal(herd_store_put(st, 12, raw, rawlen), 0);
    herd_spill_after_put(sp);
    wait_spilled(st, vlen + rawlen);
    const char *sdir = herd_spill_dir(sp);
    assert_non_null(strstr(sdir, "/herd-spill-w-1-"));
    struct stat sb;
    assert_int_equal(stat(sdir, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0700);
    size_t mem = 1;
    herd_store_stats(st, NULL, &mem, NULL);
    assert_int_equal(mem, 0);
    assert_int_equal(files_in(sdir), 2);
    for (double end = tu_now() + TU_WAIT_S; atomic_load(&s.spills) < 2 && tu_now() < end;) tu_sleep_ms(5);
    assert_true(atomic_load(&s.spills) >= 2);             /* each logged (after its swap) */
    for (double end = tu_now() + TU_WAIT_S; !atomic_load(&s.pauses) && tu_now() < end;) tu_sleep_ms(5);
    assert_true(atomic_load(&s.pauses) >= 1);             /* the monitor pauses after it spilled */

    /* the reader from before still reads the value it holds */
    herd_value *copy = herd_value_copy(held->value);
    herd_value *orig = big_value(300000, 1);
    assert_true(herd_value_equal(copy, orig));
    herd_value_free(orig);
    herd_blob_unref(held);                                /* now its memory goes */

    /* a get now maps the file: the same bytes */
    herd_blob *view = herd_store_get(st, 11);
    assert_non_null(view);
    assert_true(view->mapped);
    assert_null(view->value);
    assert_int_equal(view->len, vlen);
    herd_value *back = NULL;
    assert_int_equal(herd_value_decode(view->data, view->len, &back, &err), 0);
    assert_true(herd_value_equal(back, copy));
    herd_value_free(back);

    herd_blob *rview = herd_store_get(st, 12);
    assert_non_null(rview);
    assert_int_equal(rview->len, rawlen);
    assert_int_equal(herd_value_decode(rview->data, rview->len, &back, &err), 0);
    assert_true(herd_value_equal(back, w));
    herd_value_free(back);
    herd_blob_unref(rview);

    /* FREE deletes the file; the mapping in use still reads */
    assert_int_equal(herd_store_del(st, 11), 1);
    assert_int_equal(files_in(sdir), 1);
    assert_int_equal(herd_value_decode(view->data, view->len, &back, &err), 0);
    assert_true(herd_value_equal(back, copy));
    herd_value_free(back);
    herd_blob_unref(view);
    assert_null(herd_store_get(st, 11));

    /* a key put again: its spilled file goes (the new value may spill in turn,
     * to another file) */
    char old[4400] = "";
    DIR *d = opendir(sdir);
    for (struct dirent *e; d && (e = readdir(d));)
        if (!strncmp(e->d_name, "000000000000000c-", 17)) snprintf(old, sizeof old, "%s/%s", sdir, e->d_name);
    if (d) closedir(d);
    assert_true(old[0]);
    herd_value *again = big_value(1000, 3);
    assert_int_equal(herd_store_put_value(st, 12, again, herd_wire_size(again)), 0);
    assert_int_not_equal(access(old, F_OK), 0);

    char keep[4096];
    snprintf(keep, sizeof keep, "%s", sdir);
    herd_spill_free(sp);
    assert_int_not_equal(access(keep, F_OK), 0);
    herd_store_free(st);
    herd_value_free(copy);
    herd_value_free(w);
    assert_int_equal(rmdir(dir), 0);                      /* nothing else was left in it */
}

static void test_local_directory_check(void **state)
{
    herd_err err = { 0 };
    char dir[256], file[300];
    tu_mkdtemp(dir, sizeof dir);
    assert_int_equal(herd_local_directory_check("cluster_kwargs.local_directory", dir, &err), 0);
    snprintf(file, sizeof file, "%s/f", dir);
    assert_int_equal(tu_write_file(file, "x"), 0);
    assert_int_not_equal(herd_local_directory_check("cluster_kwargs.local_directory", file, &err), 0);
    assert_non_null(strstr(err.msg, "cluster_kwargs.local_directory: \""));
    assert_non_null(strstr(err.msg, "\" is not a directory (expected an existing, writable directory)"));
    assert_int_not_equal(herd_local_directory_check("--herd-local-directory", "", &err), 0);
    assert_non_null(strstr(err.msg, "--herd-local-directory: expected a directory"));
    /* the spiller refuses it the same way */
    herd_store *st = herd_store_new();
    herd_spill_cfg cfg = { .memory_limit = 1 << 30, .local_directory = file, .name = "w" };
    herd_spill *sp = NULL;
    assert_int_not_equal(herd_spill_new(&sp, st, &cfg, &err), 0);
    assert_null(sp);
    assert_non_null(strstr(err.msg, "local_directory: \""));
    herd_store_free(st);
    unlink(file);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_readers_stay_consistent),
        cmocka_unit_test(test_local_directory_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
