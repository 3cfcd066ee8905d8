/* tests/fuzz/fuzz_value.c — the msgpack value decoder on hostile bytes: a
 * decode either fails cleanly or gives a value that encodes and decodes back
 * to an equal one. */
#include "fuzz.h"
#include <herd/herd.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    herd_value *v = NULL;
    herd_err err = { 0 };
    if (herd_value_decode(data, size, &v, &err) != 0) {
        FUZZ_CHECK(v == NULL && err.msg[0]);
        return 0;
    }
    char *buf = NULL;
    size_t len = 0;
    if (herd_value_encode(v, &buf, &len, &err) == 0) {
        herd_value *w = NULL;
        FUZZ_CHECK(herd_value_decode(buf, len, &w, &err) == 0);
        FUZZ_CHECK(herd_value_equal(v, w));
        herd_value_free(w);
        free(buf);
    }
    char *s = herd_value_to_string(v);
    free(s);
    herd_value_free(v);
    return 0;
}
