/* tests/support/filter.c — HERD_TEST_FILTER for every test binary: linked into
 * each of them, it hands the variable to cmocka before main runs, so
 * `HERD_TEST_FILTER=test_timeouts build/tests/test_flow` runs only the tests
 * whose names match (cmocka's pattern: '*' and '?'). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

__attribute__((constructor)) static void herd_test_filter(void)
{
    const char *only = getenv("HERD_TEST_FILTER");
    if (only && *only) cmocka_set_test_filter(only);
}
