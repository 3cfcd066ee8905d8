/* herd/common.h — what every herd header shares: the export macro, error codes
 * (one X-macro list that also yields herd_strerror) and herd_err, the
 * code-plus-message that every fallible call fills as its last argument. */
#ifndef HERD_COMMON_H
#define HERD_COMMON_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HERD_API __attribute__((visibility("default")))

#define HERD_VERSION_MAJOR 0
#define HERD_VERSION_MINOR 1
#define HERD_VERSION_PATCH 0
#define HERD_VERSION_STRING "0.1.0"
/* The wire protocol between clients, schedulers and workers: processes with
 * different numbers refuse each other. `<program> --herd-version` (herd_init)
 * prints "herd <version> protocol <n>". */
#define HERD_PROTOCOL_VERSION 10  /* 4: PAUSE; 5: FETCH/VALUE, WELCOME's transfer; 6: GETFD, memfd payloads (ext 2); 7: a worker's CONTROL "retire", load.lifetime_retired; 8: HEARTBEAT carries the worker's CPU, memory, held and spilled bytes; 9: ACQUIRE/ACQUIRED (a retiring worker's values moved), REPLY's load gives each worker's needed bytes; 10: the relay streams (FETCH with a transfer id and credit, VALUE as a header, CHUNK, MORE) */

/* herd's own error codes. Functions return 0 or a negative code: -errno for
 * system errors, -HERD_E... for these. */
#define HERD_ERRORS(X)                                                     \
    X(HERD_EARG,       1000, "invalid argument")                            \
    X(HERD_ECONFIG,    1001, "invalid configuration")                       \
    X(HERD_ENOPROVIDER,1002, "provider not found")                          \
    X(HERD_EABI,       1003, "provider ABI mismatch")                       \
    X(HERD_ENOTASK,    1004, "unknown task")                                \
    X(HERD_ETIMEOUT,   1005, "timed out")                                   \
    X(HERD_EFAILED,    1006, "task failed")                                 \
    X(HERD_ECRASHED,   1007, "task crashed")                                \
    X(HERD_ECANCELLED, 1008, "task cancelled")                              \
    X(HERD_EPROTO,     1009, "protocol error")                              \
    X(HERD_EAUTH,      1010, "authentication refused")                      \
    X(HERD_ESTATE,     1011, "operation not valid in this state")           \
    X(HERD_ERESOURCES, 1012, "no worker can supply the requested resources")\
    X(HERD_ECLOSED,    1013, "connection closed")                           \
    X(HERD_EPROVIDER,  1014, "provider failure")                            \
    X(HERD_EPLUGIN,    1015, "task plugin failure")

enum herd_errcode {
#define HERD__E(name, num, text) name = num,
    HERD_ERRORS(HERD__E)
#undef HERD__E
};

/* Text for a code, positive or negative, herd's or errno's. Never NULL. */
HERD_API const char *herd_strerror(int code);

/* An error: the (negative) code and a human message that names the field,
 * the value and what was expected. Callers may pass NULL for any herd_err *. */
typedef struct herd_err {
    int  code;
    char msg[1024];
} herd_err;

/* Fill err (if not NULL) and return code (made negative). */
HERD_API int herd_err_set(herd_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prefix context to an existing message: "ctx: old message". Returns err->code
 * (or -HERD_EARG if err is NULL). */
HERD_API int herd_err_prefix(herd_err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
HERD_API void herd_err_clear(herd_err *err);

#ifdef __cplusplus
}
#endif
#endif
