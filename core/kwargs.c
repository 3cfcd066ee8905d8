/* core/kwargs.c — typed keyword arguments: herd_kwargs_validate checks a map
 * (cluster_kwargs, adapt_kwargs …) against a herd_param schema (unknown keys
 * with a did-you-mean, types, ranges, required keys, secrets kept out of
 * messages) and returns it normalised with defaults filled in; plus the unit
 * parsers for durations ("500ms") and sizes ("4GiB") it relies on, and the
 * one check of a resources map (annotations, worker offers). */
#include "internal.h"
#include "value_int.h"

#include <herd/provider.h>

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- units ---- */

struct unit { const char *name; double mult; };

static const struct unit duration_units[] = {
    { "", 1 }, { "s", 1 }, { "sec", 1 }, { "secs", 1 }, { "second", 1 }, { "seconds", 1 },
    { "ns", 1e-9 }, { "nanosecond", 1e-9 }, { "nanoseconds", 1e-9 },
    { "us", 1e-6 }, { "microsecond", 1e-6 }, { "microseconds", 1e-6 },
    { "ms", 1e-3 }, { "millisecond", 1e-3 }, { "milliseconds", 1e-3 },
    { "m", 60 }, { "min", 60 }, { "mins", 60 }, { "minute", 60 }, { "minutes", 60 },
    { "h", 3600 }, { "hr", 3600 }, { "hrs", 3600 }, { "hour", 3600 }, { "hours", 3600 },
    { "d", 86400 }, { "day", 86400 }, { "days", 86400 },
    { "w", 604800 }, { "week", 604800 }, { "weeks", 604800 },
    { NULL, 0 },
};

static const struct unit size_units[] = {       /* Dask's parse_bytes, lower-cased */
    { "", 1 }, { "b", 1 },
    { "k", 1e3 }, { "kb", 1e3 }, { "m", 1e6 }, { "mb", 1e6 }, { "g", 1e9 }, { "gb", 1e9 },
    { "t", 1e12 }, { "tb", 1e12 }, { "p", 1e15 }, { "pb", 1e15 },
    { "ki", 1024.0 }, { "kib", 1024.0 }, { "mi", 1048576.0 }, { "mib", 1048576.0 },
    { "gi", 1073741824.0 }, { "gib", 1073741824.0 },
    { "ti", 1099511627776.0 }, { "tib", 1099511627776.0 },
    { "pi", 1125899906842624.0 }, { "pib", 1125899906842624.0 },
    { NULL, 0 },
};

/* "<number><spaces><unit>" -> number * unit, finite and >= 0. */
static int parse_units(const char *s, const struct unit *units, double *out)
{
    if (!s) return -HERD_EARG;
    while (*s == ' ' || *s == '\t') s++;
    const char *n0 = s;
    size_t digits = 0;
    while (isdigit((unsigned char)*s)) s++, digits++;
    if (*s == '.') {
        s++;
        while (isdigit((unsigned char)*s)) s++, digits++;
    }
    if (!digits) return -HERD_EARG;
    if (*s == 'e' || *s == 'E') {
        const char *e = s + 1;
        if (*e == '+' || *e == '-') e++;
        if (isdigit((unsigned char)*e)) {
            while (isdigit((unsigned char)*e)) e++;
            s = e;
        }
    }
    char num[64];
    if ((size_t)(s - n0) >= sizeof num) return -HERD_EARG;
    memcpy(num, n0, (size_t)(s - n0));
    num[s - n0] = '\0';
    double x = herd_strtod_c(num, NULL);
    while (*s == ' ' || *s == '\t') s++;
    size_t ul = strlen(s);
    while (ul && (s[ul - 1] == ' ' || s[ul - 1] == '\t')) ul--;
    for (const struct unit *u = units; u->name; u++) {
        if (strlen(u->name) == ul && strncasecmp(u->name, s, ul) == 0) {
            x *= u->mult;
            if (!isfinite(x) || x < 0) return -HERD_EARG;
            *out = x;
            return 0;
        }
    }
    return -HERD_EARG;
}

int herd_parse_duration(const char *s, double *secs)
{
    double x;
    int rc = parse_units(s, duration_units, &x);
    if (rc) return rc;
    if (secs) *secs = x;
    return 0;
}

int herd_parse_size(const char *s, int64_t *bytes)
{
    double x;
    int rc = parse_units(s, size_units, &x);
    if (rc) return rc;
    if (x >= 9223372036854775807.0) return -HERD_EARG;
    if (bytes) *bytes = (int64_t)x;
    return 0;
}

/* ---- schema ---- */

HERD_API const char *herd_param_type_name(herd_param_type t)
{
    switch (t) {
    case HERD_PARAM_INT: return "int";
    case HERD_PARAM_FLOAT: return "float";
    case HERD_PARAM_BOOL: return "bool";
    case HERD_PARAM_STRING: return "str";
    case HERD_PARAM_LIST: return "list";
    case HERD_PARAM_MAP: return "map";
    case HERD_PARAM_DURATION: return "duration";
    case HERD_PARAM_SIZE: return "size";
    case HERD_PARAM_ANY: return "any";
    }
    return "unknown";
}

int herd_resources_check(const herd_value *res, const char *where, herd_err *err)
{
    if (herd_typeof(res) == HERD_NIL) return 0;
    if (herd_typeof(res) != HERD_MAP)
        return herd_err_set(err, HERD_EARG, "%s: expected a map name -> number, got %s",
                            where, herd_type_name(herd_typeof(res)));
    for (size_t i = 0; i < herd_len(res); i++) {
        const char *k = herd_key_at(res, i);
        const herd_value *v = herd_at(res, i);
        herd_type t = herd_typeof(v);
        if (!k || !*k) return herd_err_set(err, HERD_EARG, "%s: empty resource name", where);
        if ((t != HERD_INT && t != HERD_FLOAT) || !isfinite(herd_as_float(v)) || !(herd_as_float(v) > 0)) {
            char *txt = herd_value_to_string(v);
            int rc = herd_err_set(err, HERD_EARG, "%s.%s: expected a finite number > 0, got %s %s",
                                  where, k, herd_type_name(t), txt ? txt : "?");
            free(txt);
            return rc;
        }
    }
    return 0;
}

/* ---- did-you-mean (the one copy: kwargs keys here, cluster_class names
 * in registry.c) ---- */

/* Damerau-Levenshtein (optimal string alignment), case-insensitive; names
 * of 64 characters or more count as far apart (SIZE_MAX). */
size_t herd_edit_distance(const char *a, const char *b)
{
    enum { MAXL = 64 };
    size_t n = strlen(a), m = strlen(b);
    if (n >= MAXL || m >= MAXL) return SIZE_MAX;
    size_t d[MAXL + 1][MAXL + 1];
    for (size_t i = 0; i <= n; i++) d[i][0] = i;
    for (size_t j = 0; j <= m; j++) d[0][j] = j;
    for (size_t i = 1; i <= n; i++)
        for (size_t j = 1; j <= m; j++) {
            int ca = tolower((unsigned char)a[i - 1]), cb = tolower((unsigned char)b[j - 1]);
            size_t cost = ca != cb;
            size_t best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best) best = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < best) best = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && ca == tolower((unsigned char)b[j - 2]) &&
                tolower((unsigned char)a[i - 2]) == cb && d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    return d[n][m];
}

static bool is_prefix(const char *pre, const char *s)
{
    size_t n = strlen(pre);
    return n >= 3 && strlen(s) > n && strncasecmp(pre, s, n) == 0;
}

long herd_did_you_mean(const char *word, const char *const *cands, size_t n, size_t max_dist)
{
    long best = -1;
    size_t bd = max_dist + 1, wl = strlen(word);
    for (size_t i = 0; i < n; i++) {
        if (!cands[i]) continue;
        size_t d = herd_edit_distance(word, cands[i]);
        if (d < bd && d < wl) {
            bd = d;
            best = (long)i;
        }
    }
    for (size_t i = 0; best < 0 && i < n; i++)
        if (cands[i] && (is_prefix(word, cands[i]) || is_prefix(cands[i], word))) best = (long)i;
    return best;
}

static const char *suggest(const herd_param *params, const char *key)
{
    const char *names[1024] = { 0 };
    size_t n = 0;
    for (const herd_param *p = params; p->name && n < 1024; p++) names[n++] = p->name;
    long i = herd_did_you_mean(key, names, n, 2);
    return i < 0 ? NULL : names[i];
}

/* ---- checking one value ---- */

/* Text of a value in a message: strings always quoted. */
static void value_text(const herd_value *v, bool secret, char *buf, size_t cap)
{
    if (secret) {
        snprintf(buf, cap, "<secret>");
        return;
    }
    char *d = herd_value_describe(v, 200);
    const char *t = d ? d : "?";
    if (herd_typeof(v) != HERD_NIL && herd_typeof(v) != HERD_BYTES) {  /* drop "type " */
        const char *sp = strchr(t, ' ');
        if (sp) t = sp + 1;
    }
    snprintf(buf, cap, "%s", t);
    free(d);
}

/* "int 4", "str \"four\"", "null", or "int <secret>". */
static void got_text(const herd_value *v, bool secret, char *buf, size_t cap)
{
    if (secret) {
        snprintf(buf, cap, "%s <secret>", herd_type_name(herd_typeof(v)));
        return;
    }
    char *d = herd_value_describe(v, 200);
    snprintf(buf, cap, "%s", d ? d : "?");
    free(d);
}

static void fmt_bound(char *buf, size_t cap, double x)
{
    if (x == floor(x) && fabs(x) < 1e15) snprintf(buf, cap, "%.0f", x);
    else snprintf(buf, cap, "%g", x);
}

static const char *expected_type(const herd_param *p)
{
    switch (p->type) {
    case HERD_PARAM_DURATION:
        return "duration (seconds, or a string like \"500ms\", \"2s\", \"5m\", \"1h\")";
    case HERD_PARAM_SIZE:
        return "size (bytes, or a string like \"512MiB\", \"4GB\", \"auto\")";
    default:
        return herd_param_type_name(p->type);
    }
}

/* Check v against p. On success *out is the normalised copy; otherwise why
 * says what was expected and what was found. */
static int check(const herd_param *p, const herd_value *v, herd_value **out, char *why, size_t cap)
{
    bool secret = p->flags & HERD_PARAM_SECRET;
    herd_type t = herd_typeof(v);
    herd_value *n = NULL;
    double num = 0;
    bool ranged = false;
    char got[320];
    *out = NULL;

    if (t == HERD_NIL && (p->flags & HERD_PARAM_NULLABLE || p->type == HERD_PARAM_ANY)) {
        n = herd_nil();
        goto done;
    }
    switch (p->type) {
    case HERD_PARAM_INT:
        if (t == HERD_INT) {
            n = herd_int(herd_as_int(v));
        } else if (t == HERD_FLOAT) {
            double d = herd_as_float(v);
            if (d != floor(d) || !(fabs(d) < 9.2e18)) goto wrong_type;
            n = herd_int((int64_t)d);
        } else {
            goto wrong_type;
        }
        num = (double)herd_as_int(n);
        ranged = true;
        break;
    case HERD_PARAM_FLOAT:
        if (t != HERD_INT && t != HERD_FLOAT) goto wrong_type;
        num = herd_as_float(v);
        n = herd_float(num);
        ranged = true;
        break;
    case HERD_PARAM_BOOL:
        if (t != HERD_BOOL) goto wrong_type;
        n = herd_value_copy(v);
        break;
    case HERD_PARAM_STRING:
        if (t != HERD_STR) goto wrong_type;
        n = herd_value_copy(v);
        break;
    case HERD_PARAM_LIST:
        if (t != HERD_ARRAY) goto wrong_type;
        n = herd_value_copy(v);
        break;
    case HERD_PARAM_MAP:
        if (t != HERD_MAP) goto wrong_type;
        n = herd_value_copy(v);
        break;
    case HERD_PARAM_DURATION:
        if (t == HERD_INT || t == HERD_FLOAT) num = herd_as_float(v);
        else if (t != HERD_STR || herd_parse_duration(herd_as_str(v), &num)) goto wrong_type;
        if (!(num >= 0)) goto negative;
        n = herd_float(num);
        ranged = true;
        break;
    case HERD_PARAM_SIZE:
        if (t == HERD_STR && strcmp(herd_as_str(v), "auto") == 0) {
            n = herd_str("auto");
            break;
        }
        if (t == HERD_INT) {
            num = (double)herd_as_int(v);
            if (herd_as_int(v) < 0) goto negative;
            n = herd_int(herd_as_int(v));
        } else if (t == HERD_FLOAT) {
            double d = herd_as_float(v);
            if (d != floor(d) || !(fabs(d) < 9.2e18)) goto wrong_type;
            if (d < 0) goto negative;
            num = d;
            n = herd_int((int64_t)d);
        } else {
            int64_t b;
            if (t != HERD_STR || herd_parse_size(herd_as_str(v), &b)) goto wrong_type;
            num = (double)b;
            n = herd_int(b);
        }
        ranged = true;
        break;
    case HERD_PARAM_ANY:
        n = herd_value_copy(v);
        break;
    default:
        snprintf(why, cap, "unknown parameter type %d in the schema", (int)p->type);
        return -HERD_EARG;
    }
    if (ranged && p->min < p->max && !(num >= p->min && num <= p->max)) {
        char lo[48], hi[48], range[128];
        fmt_bound(lo, sizeof lo, p->min);
        fmt_bound(hi, sizeof hi, p->max);
        if (isinf(p->min)) snprintf(range, sizeof range, "<= %s", hi);
        else if (isinf(p->max)) snprintf(range, sizeof range, ">= %s", lo);
        else snprintf(range, sizeof range, ">= %s and <= %s", lo, hi);
        value_text(v, secret, got, sizeof got);
        snprintf(why, cap, "expected %s %s%s, got %s", herd_param_type_name(p->type), range,
                 p->type == HERD_PARAM_DURATION ? " seconds" :
                 p->type == HERD_PARAM_SIZE ? " bytes" : "", got);
        herd_value_free(n);
        return -HERD_ECONFIG;
    }
done:
    if (!n) {
        snprintf(why, cap, "out of memory");
        return -ENOMEM;
    }
    *out = n;
    return 0;

wrong_type:
    got_text(v, secret, got, sizeof got);
    snprintf(why, cap, "expected %s%s, got %s", expected_type(p),
             p->flags & HERD_PARAM_NULLABLE ? " or null" : "", got);
    herd_value_free(n);
    return -HERD_ECONFIG;
negative:
    value_text(v, secret, got, sizeof got);
    snprintf(why, cap, "expected %s >= 0, got %s", herd_param_type_name(p->type), got);
    herd_value_free(n);
    return -HERD_ECONFIG;
}

/* ---- the whole map ---- */

HERD_API int herd_kwargs_validate(const herd_param *params, const herd_value *kwargs,
                                  const char *where, herd_value **out, herd_err *err)
{
    static const herd_param none[] = { { NULL } };
    char pre[160], why[700];
    if (out) *out = NULL;
    if (!out) return herd_err_set(err, -HERD_EARG, "herd_kwargs_validate: no output");
    if (!params) params = none;
    if (!where) where = "";
    snprintf(pre, sizeof pre, "%s%s", where, where[0] ? "." : "");

    herd_type kt = herd_typeof(kwargs);
    if (kt != HERD_NIL && kt != HERD_MAP) {
        got_text(kwargs, false, why, sizeof why);
        return herd_err_set(err, -HERD_ECONFIG, "%s: expected a map, got %s",
                            where[0] ? where : "kwargs", why);
    }

    /* unknown keys, in the order given */
    for (size_t i = 0; i < herd_len(kwargs); i++) {
        const char *k = herd_key_at(kwargs, i);
        const herd_param *p = params;
        while (p->name && strcmp(p->name, k)) p++;
        if (p->name) continue;
        char known[600];
        size_t kn = 0;
        known[0] = '\0';
        for (p = params; p->name && kn < sizeof known; p++)
            kn += (size_t)snprintf(known + kn, sizeof known - kn, "%s%s", kn ? ", " : "", p->name);
        const char *s = suggest(params, k);
        char dym[128] = "";
        if (s) snprintf(dym, sizeof dym, "; did you mean \"%s\"?", s);
        return herd_err_set(err, -HERD_ECONFIG, "%s%.100s: unknown key%s%s%s", pre, k, dym,
                            params->name ? (s ? " known keys: " : "; known keys: ") : "; no keys are accepted",
                            known);
    }

    herd_value *res = herd_map();
    if (!res) return herd_err_set(err, -ENOMEM, "out of memory");
    int rc = 0;
    for (const herd_param *p = params; p->name; p++) {
        const herd_value *given = herd_map_get(kwargs, p->name);
        herd_value *v = NULL;
        if (given) {
            if ((rc = check(p, given, &v, why, sizeof why))) {
                herd_err_set(err, rc, "%s%s: %s", pre, p->name, why);
                break;
            }
        } else if (p->flags & HERD_PARAM_REQUIRED) {
            rc = herd_err_set(err, -HERD_ECONFIG, "%s%s: required key is missing (expected %s)", pre,
                              p->name, expected_type(p));
            break;
        } else if (p->default_yaml) {
            herd_value *dv;
            herd_err perr;
            if ((rc = herd_value_parse(p->default_yaml, &dv, &perr))) {
                herd_err_set(err, -HERD_EARG, "%s%s: the schema's default %.100s is not valid YAML: %s",
                             pre, p->name, p->flags & HERD_PARAM_SECRET ? "<secret>" : p->default_yaml,
                             p->flags & HERD_PARAM_SECRET ? "<secret>" : perr.msg);
                rc = -HERD_EARG;
                break;
            }
            rc = check(p, dv, &v, why, sizeof why);
            herd_value_free(dv);
            if (rc) {
                herd_err_set(err, -HERD_EARG, "%s%s: the schema's default is invalid: %s", pre, p->name, why);
                rc = -HERD_EARG;
                break;
            }
        } else {
            continue;
        }
        if ((rc = herd_map_set(res, p->name, v))) {
            herd_err_set(err, rc, "out of memory");
            break;
        }
    }
    if (rc) {
        herd_value_free(res);
        return rc;
    }
    *out = res;
    return 0;
}

/* ---- binding a validated map to a struct ---- */

/* The C field of a bound param: its size must be one of these. */
static bool field_fits(const herd_param *p, const char **want)
{
    switch (p->type) {
    case HERD_PARAM_INT:
        *want = "int (4 bytes) or int64_t (8 bytes)";
        return p->size == sizeof(int) || p->size == sizeof(int64_t);
    case HERD_PARAM_FLOAT:
    case HERD_PARAM_DURATION:
        *want = "double (8 bytes)";
        return p->size == sizeof(double);
    case HERD_PARAM_BOOL:
        *want = "bool (1 byte)";
        return p->size == sizeof(bool);
    case HERD_PARAM_SIZE:
        *want = "int64_t (8 bytes)";
        return p->size == sizeof(int64_t);
    default:
        *want = "a pointer (8 bytes)";
        return p->size == sizeof(void *);
    }
}

int herd_param_binding_check(const herd_param *p, size_t out_size, char *why, size_t cap)
{
    const char *want;
    if (!p->size) return 0;
    if (!field_fits(p, &want)) {
        snprintf(why, cap, "%s %s is bound to a field of %zu bytes, expected %s", herd_param_type_name(p->type),
                 p->name, p->size, want);
        return -HERD_EARG;
    }
    if (out_size && (p->offset > out_size || p->size > out_size - p->offset)) {
        snprintf(why, cap, "%s is bound at offset %zu (+%zu bytes), outside a struct of %zu bytes", p->name,
                 p->offset, p->size, out_size);
        return -HERD_EARG;
    }
    return 0;
}

HERD_API int herd_kwargs_bind(const herd_param *params, const herd_value *validated, void *out,
                              size_t out_size, herd_err *err)
{
    char why[300];
    if (!params || !out) return herd_err_set(err, -HERD_EARG, "herd_kwargs_bind: %s is NULL", params ? "out" : "params");
    if (validated && herd_typeof(validated) != HERD_MAP)
        return herd_err_set(err, -HERD_EARG, "herd_kwargs_bind: expected a validated map, got %s",
                            herd_type_name(herd_typeof(validated)));
    /* every field checked before anything is written */
    for (const herd_param *p = params; p->name; p++) {
        if (herd_param_binding_check(p, out_size, why, sizeof why))
            return herd_err_set(err, -HERD_EARG, "herd_kwargs_bind: %s", why);
        const herd_value *v = herd_map_get(validated, p->name);
        if (p->size == sizeof(int) && p->type == HERD_PARAM_INT && herd_typeof(v) == HERD_INT &&
            (herd_as_int(v) < INT_MIN || herd_as_int(v) > INT_MAX))
            return herd_err_set(err, -HERD_ECONFIG, "%s: %lld does not fit the int it is bound to", p->name,
                                (long long)herd_as_int(v));
    }
    for (const herd_param *p = params; p->name; p++) {
        if (!p->size) continue;
        char *f = (char *)out + p->offset;
        const herd_value *v = herd_map_get(validated, p->name);
        herd_type t = herd_typeof(v);
        switch (p->type) {
        case HERD_PARAM_INT:
            if (t != HERD_INT) break;
            if (p->size == sizeof(int)) { int x = (int)herd_as_int(v); memcpy(f, &x, sizeof x); }
            else { int64_t x = herd_as_int(v); memcpy(f, &x, sizeof x); }
            break;
        case HERD_PARAM_FLOAT:
        case HERD_PARAM_DURATION:
            if (t == HERD_INT || t == HERD_FLOAT) { double x = herd_as_float(v); memcpy(f, &x, sizeof x); }
            break;
        case HERD_PARAM_BOOL:
            if (t == HERD_BOOL) { bool x = herd_as_bool(v); memcpy(f, &x, sizeof x); }
            break;
        case HERD_PARAM_SIZE:
            if (t == HERD_INT) { int64_t x = herd_as_int(v); memcpy(f, &x, sizeof x); }
            else if (t == HERD_STR) { int64_t x = HERD_SIZE_AUTO; memcpy(f, &x, sizeof x); }
            break;
        case HERD_PARAM_STRING: {
            const char *x = t == HERD_STR ? herd_as_str(v) : NULL;
            memcpy(f, &x, sizeof x);
            break;
        }
        default: {
            const herd_value *x = t == HERD_NIL ? NULL : v;
            memcpy(f, &x, sizeof x);
            break;
        }
        }
    }
    return 0;
}

HERD_API int herd_kwargs_load(const herd_param *params, const herd_value *kwargs, const char *where,
                              herd_value **validated, void *out, size_t out_size, herd_err *err)
{
    int rc = herd_kwargs_validate(params, kwargs, where, validated, err);
    if (rc) return rc;
    if ((rc = herd_kwargs_bind(params, *validated, out, out_size, err))) {
        herd_value_free(*validated);
        *validated = NULL;
        if (where && *where) herd_err_prefix(err, "%s", where);
    }
    return rc;
}

int herd_value_duration(const herd_value *v, double *secs)
{
    switch (herd_typeof(v)) {
    case HERD_INT:
    case HERD_FLOAT:
        *secs = herd_as_float(v);
        return isfinite(*secs) && *secs >= 0 ? 0 : -HERD_EARG;
    case HERD_STR:
        return herd_parse_duration(herd_as_str(v), secs);
    default:
        return -HERD_EARG;
    }
}

HERD_API bool herd_name_prefix_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 40) return false;
    for (size_t i = 0; i < n; i++)
        if (!(s[i] >= 'a' && s[i] <= 'z') && !(s[i] >= 'A' && s[i] <= 'Z') &&
            !(s[i] >= '0' && s[i] <= '9') && !strchr("_.-", s[i]))
            return false;
    return true;
}

/* Distributed's nprocesses_nthreads (LocalCluster's and dask-jobqueue's
 * default split of n cores into worker processes and threads each): n <= 4,
 * one process per core; else the smallest factor of n that is >= sqrt(n)
 * processes (32 -> 8 x 4). n < 1 counts as 1; NULL outputs are skipped. */
HERD_API void herd_nprocesses_nthreads(int n, int *procs, int *threads)
{
    if (n < 1) n = 1;
    int p = n;
    if (n > 4)
        for (int f = 1; f <= n; f++)
            if (n % f == 0 && (long)f * f >= n) { p = f; break; }
    if (procs) *procs = p;
    if (threads) *threads = n / p;
}
