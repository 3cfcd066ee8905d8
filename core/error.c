/* core/error.c — error codes and herd_err: herd_strerror (herd's own codes
 * from the HERD_ERRORS list, errno codes otherwise) and the helpers that fill,
 * prefix and clear a herd_err. */
#include <herd/common.h>

#include <stdio.h>
#include <string.h>

HERD_API const char *herd_strerror(int code)
{
    static _Thread_local char buf[128];
    if (code == 0) return "success";
    unsigned c = code < 0 ? 0u - (unsigned)code : (unsigned)code;
    switch (c) {
#define HERD__S(name, num, text) case num: return text;
    HERD_ERRORS(HERD__S)
#undef HERD__S
    default: break;
    }
    if (c > 4095u) {
        snprintf(buf, sizeof buf, "unknown error %d", code);
        return buf;
    }
    /* GNU strerror_r: returns either buf or a static string. */
    return strerror_r((int)c, buf, sizeof buf);
}

static int negcode(int code)
{
    if (code == 0) return -HERD_EARG;
    if (code > 0) return -code;
    return code == -2147483647 - 1 ? -HERD_EARG : code;
}

HERD_API int herd_err_set(herd_err *err, int code, const char *fmt, ...)
{
    int neg = negcode(code);
    if (!err) return neg;
    err->code = neg;
    if (!fmt) {
        snprintf(err->msg, sizeof err->msg, "%s", herd_strerror(neg));
        return neg;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return neg;
}

HERD_API int herd_err_prefix(herd_err *err, const char *fmt, ...)
{
    if (!err) return -HERD_EARG;
    char ctx[sizeof err->msg], old[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx, sizeof ctx, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    old[sizeof old - 1] = '\0';
    /* ctx, then ": old" when there is an old message, cut to fit */
    size_t cap = sizeof err->msg - 1, n = strlen(ctx);
    memcpy(err->msg, ctx, n);
    if (old[0] && n + 2 <= cap) {
        memcpy(err->msg + n, ": ", 2);
        n += 2;
        size_t m = strlen(old);
        if (m > cap - n) m = cap - n;
        memcpy(err->msg + n, old, m);
        n += m;
    }
    err->msg[n] = '\0';
    if (err->code == 0) err->code = -HERD_EARG;
    return err->code;
}

HERD_API void herd_err_clear(herd_err *err)
{
    if (!err) return;
    err->code = 0;
    err->msg[0] = '\0';
}
