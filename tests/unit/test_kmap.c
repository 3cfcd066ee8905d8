/* tests/unit/test_kmap.c — the task-key map (core/kmap.c): entries survive
 * growth, deletion (tombstones) and compaction; a table that emptied
 * shrinks, one still in use does not; iteration sees every live entry once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdlib.h>

#include "kmap.h"

static void *val_of(uint64_t k) { return (void *)(uintptr_t)(k * 7 + 1); }

static void check_all(const kmap *m, uint64_t from, uint64_t to)
{
    for (uint64_t k = from; k < to; k++) assert_ptr_equal(kmap_get(m, k), val_of(k));
    size_t i = 0, n = 0;
    uint64_t key;
    void *v;
    while (kmap_next(m, &i, &key, &v)) {
        assert_true(key >= from && key < to);
        assert_ptr_equal(v, val_of(key));
        n++;
    }
    assert_int_equal(n, to - from);
    assert_int_equal(m->len, to - from);
}

static void test_grow_delete_compact(void **state)
{
    (void)state;
    kmap m;
    kmap_init(&m);
    assert_int_equal(kmap_compact(&m), 0);            /* empty: nothing to do */
    for (uint64_t k = 1; k <= 100000; k++) assert_int_equal(kmap_put(&m, k, val_of(k)), 0);
    check_all(&m, 1, 100001);
    size_t big = m.cap;
    assert_true(big >= 100000 * 10 / 7);
    assert_int_equal(kmap_compact(&m), 0);            /* in use: stays */
    assert_int_equal(m.cap, big);
    /* release all but the last 1,000 (a big map's futures let go) */
    for (uint64_t k = 1; k <= 99000; k++) assert_ptr_equal(kmap_del(&m, k), val_of(k));
    assert_null(kmap_get(&m, 5));
    assert_null(kmap_del(&m, 5));                      /* twice: nothing */
    check_all(&m, 99001, 100001);
    assert_int_equal(kmap_compact(&m), 1);
    assert_true(m.cap < big / 16);
    assert_true(m.cap >= 4 * m.len);
    check_all(&m, 99001, 100001);
    assert_int_equal(kmap_compact(&m), 0);            /* already small */
    /* it keeps working after shrinking: grow again past its size */
    for (uint64_t k = 100001; k <= 120000; k++) assert_int_equal(kmap_put(&m, k, val_of(k)), 0);
    check_all(&m, 99001, 120001);
    for (uint64_t k = 99001; k <= 120000; k++) assert_ptr_equal(kmap_del(&m, k), val_of(k));
    assert_int_equal(m.len, 0);
    assert_int_equal(kmap_compact(&m), 1);
    assert_int_equal(m.cap, 64);
    assert_int_equal(kmap_put(&m, 42, val_of(42)), 0);
    check_all(&m, 42, 43);
    kmap_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grow_delete_compact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
