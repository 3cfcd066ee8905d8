/* tests/fuzz/fuzz_yaml.c — YAML text (profiles, kwargs on the command line)
 * on hostile input: a parse either fails with a message or gives a value
 * whose flow-style text parses back to an equal value. */
#include "fuzz.h"
#include <herd/herd.h>
#include <stdlib.h>
#include <string.h>
#include "value_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    herd_value *v = NULL, *pos = NULL;
    herd_err err = { 0 };
    if (herd_value_parse_positions((const char *)data, size, "fuzz.yaml", &v, &pos, &err) != 0) {
        FUZZ_CHECK(v == NULL && err.msg[0]);
        return 0;
    }
    char *s = herd_value_to_string(v);
    if (s) {
        herd_value *w = NULL;
        if (herd_value_parse(s, &w, &err) == 0) {
            FUZZ_CHECK(herd_value_equal(v, w));
            herd_value_free(w);
        }
        free(s);
    }
    herd_value_free(v);
    herd_value_free(pos);
    return 0;
}
