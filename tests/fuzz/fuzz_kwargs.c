/* tests/fuzz/fuzz_kwargs.c — kwargs validation on hostile YAML: a schema
 * with every parameter type, ranges and flags; validation either fails with
 * a message naming a key or gives a map holding every parameter's value. */
#include "fuzz.h"
#include <herd/herd.h>
#include <herd/provider.h>
#include <stdlib.h>
#include <string.h>

static const herd_param params[] = {
    { "n_workers", HERD_PARAM_INT, "2", "workers", 0, 0, 1000 },
    { "ratio", HERD_PARAM_FLOAT, "0.5", "a fraction", 0, 0, 1 },
    { "processes", HERD_PARAM_BOOL, "true", "processes or threads", 0, 0, 0 },
    { "name", HERD_PARAM_STRING, "null", "a name", HERD_PARAM_NULLABLE, 0, 0 },
    { "hosts", HERD_PARAM_LIST, "[]", "hosts", 0, 0, 0 },
    { "env", HERD_PARAM_MAP, "{}", "environment", 0, 0, 0 },
    { "timeout", HERD_PARAM_DURATION, "30", "a duration", 0, 0, 1e6 },
    { "memory_limit", HERD_PARAM_SIZE, "auto", "a size", 0, 0, 0 },
    { "token", HERD_PARAM_STRING, "null", "a secret", HERD_PARAM_NULLABLE | HERD_PARAM_SECRET, 0, 0 },
    { "extra", HERD_PARAM_ANY, NULL, "anything", 0, 0, 0 },
    { NULL },
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    herd_value *kw = NULL, *out = NULL;
    herd_err err = { 0 };
    if (herd_value_parse(text, &kw, &err) == 0) {
        if (herd_kwargs_validate(params, kw, "cluster_kwargs", &out, &err) == 0) {
            for (const herd_param *p = params; p->name; p++)
                FUZZ_CHECK(p->default_yaml == NULL || herd_map_get(out, p->name) != NULL);
            herd_value_free(out);
        } else {
            FUZZ_CHECK(out == NULL && strstr(err.msg, "cluster_kwargs"));
        }
        herd_value_free(kw);
    }
    free(text);
    return 0;
}
