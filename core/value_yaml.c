/* core/value_yaml.c — herd_value as YAML text: herd_value_parse (libyaml's
 * event API, YAML 1.2 core schema, errors with line and column, optional
 * source positions of every key) and herd_value_to_string (flow style), plus
 * herd_value_describe for error messages. */
#include "value_int.h"

#include <errno.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>
#include <openssl/evp.h>

#define YAML_TAG(t) "tag:yaml.org,2002:" t
#define MAX_ALIAS_NODES 1000000u   /* values aliases may expand to (billion laughs) */

/* ---- the C locale, for numbers whatever LC_NUMERIC says ---- */

static locale_t c_locale;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;
static void c_locale_init(void) { c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0); }

double herd_strtod_c(const char *s, char **end)
{
    pthread_once(&c_locale_once, c_locale_init);
    return c_locale ? strtod_l(s, end, c_locale) : strtod(s, end);
}

/* ---- scalar typing (YAML 1.2 core schema) ---- */

static bool all_digits(const char *s, size_t n, const char *set)
{
    if (!n) return false;
    for (size_t i = 0; i < n; i++)
        if (!strchr(set, s[i]) || !s[i]) return false;
    return true;
}

#define DEC "0123456789"
#define OCT "01234567"
#define HEX "0123456789abcdefABCDEF"

static bool is_word(const char *s, size_t n, const char *a, const char *b, const char *c)
{
    return (strlen(a) == n && !memcmp(s, a, n)) || (strlen(b) == n && !memcmp(s, b, n)) ||
           (strlen(c) == n && !memcmp(s, c, n));
}

static bool is_float_text(const char *s, size_t n)
{
    size_t i = 0;
    if (i < n && (s[i] == '-' || s[i] == '+')) i++;
    if (n - i == 4 && s[i] == '.' && is_word(s + i + 1, 3, "inf", "Inf", "INF")) return true;
    if (n == 4 && s[0] == '.' && is_word(s + 1, 3, "nan", "NaN", "NAN")) return true;
    size_t d0 = i;
    while (i < n && s[i] >= '0' && s[i] <= '9') i++;
    size_t ip = i - d0, fp = 0;
    if (i < n && s[i] == '.') {
        i++;
        size_t f0 = i;
        while (i < n && s[i] >= '0' && s[i] <= '9') i++;
        fp = i - f0;
    }
    if (!ip && !fp) return false;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '-' || s[i] == '+')) i++;
        size_t e0 = i;
        while (i < n && s[i] >= '0' && s[i] <= '9') i++;
        if (i == e0) return false;
    }
    return i == n;
}

/* What a plain scalar resolves to: HERD_NIL, _BOOL, _INT, _FLOAT or _STR. */
static herd_type classify_plain(const char *s, size_t n)
{
    if (n == 0 || (n == 1 && s[0] == '~') || is_word(s, n, "null", "Null", "NULL")) return HERD_NIL;
    if (is_word(s, n, "true", "True", "TRUE") || is_word(s, n, "false", "False", "FALSE"))
        return HERD_BOOL;
    size_t i = (s[0] == '-' || s[0] == '+') ? 1 : 0;
    if (all_digits(s + i, n - i, DEC)) return HERD_INT;
    if (n > 2 && s[0] == '0' && s[1] == 'o' && all_digits(s + 2, n - 2, OCT)) return HERD_INT;
    if (n > 2 && s[0] == '0' && s[1] == 'x' && all_digits(s + 2, n - 2, HEX)) return HERD_INT;
    if (is_float_text(s, n)) return HERD_FLOAT;
    return HERD_STR;
}

/* s is NUL-terminated, classified HERD_INT. 0 or -ERANGE. */
static int read_int(const char *s, size_t n, int64_t *out)
{
    errno = 0;
    if (n > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'o')) {
        unsigned long long u = strtoull(s + 2, NULL, s[1] == 'x' ? 16 : 8);
        if (errno || u > INT64_MAX) return -ERANGE;
        *out = (int64_t)u;
        return 0;
    }
    long long l = strtoll(s, NULL, 10);
    if (errno) return -ERANGE;
    *out = l;
    return 0;
}

/* s is NUL-terminated, classified HERD_FLOAT or HERD_INT. */
static double read_float(const char *s, size_t n)
{
    const char *t = s + ((s[0] == '-' || s[0] == '+') ? 1 : 0);
    if (t[0] == '.' && (t[1] == 'i' || t[1] == 'I')) return s[0] == '-' ? -INFINITY : INFINITY;
    if (t[0] == '.' && (t[1] == 'n' || t[1] == 'N')) return NAN;
    if (n > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'o'))
        return (double)strtoull(s + 2, NULL, s[1] == 'x' ? 16 : 8);
    return herd_strtod_c(s, NULL);
}

/* ---- base64 (OpenSSL) ---- */

static herd_value *base64_decode(const char *s, size_t n)
{
    char *clean = malloc(n + 1);
    unsigned char *bin = malloc(n / 4 * 3 + 3);
    herd_value *v = NULL;
    if (!clean || !bin) goto out;
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (!strchr(" \t\r\n", s[i])) clean[m++] = s[i];
    clean[m] = '\0';
    if (m % 4) goto out;
    int r = m ? EVP_DecodeBlock(bin, (const unsigned char *)clean, (int)m) : 0;
    if (r < 0) goto out;
    size_t len = (size_t)r;
    if (m && clean[m - 1] == '=') len--;
    if (m > 1 && clean[m - 2] == '=') len--;
    v = herd_bytes(bin, len);
out:
    free(clean);
    free(bin);
    return v;
}

/* ---- the parser ---- */

struct anchor {
    char *name;
    const herd_value *v;
    size_t nodes;
};

struct yp {
    yaml_parser_t parser;
    const char *file;
    herd_err *err;
    struct anchor *anchors;
    size_t nanchors, capanchors;
    size_t nodes;         /* values made so far */
    size_t expanded;      /* values made by aliases */
    herd_value *pos;      /* positions map, or NULL */
    char *path;
    size_t plen, pcap;
};

static int perr(struct yp *p, yaml_mark_t m, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int perr(struct yp *p, yaml_mark_t m, int code, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (p->file)
        return herd_err_set(p->err, code, "%s:%zu:%zu: %s", p->file, m.line + 1, m.column + 1, msg);
    return herd_err_set(p->err, code, "line %zu, column %zu: %s", m.line + 1, m.column + 1, msg);
}

static int next(struct yp *p, yaml_event_t *ev)
{
    if (yaml_parser_parse(&p->parser, ev)) return 0;
    yaml_parser_t *y = &p->parser;
    const char *problem = y->problem ? y->problem : "malformed YAML";
    if (y->error == YAML_MEMORY_ERROR) return herd_err_set(p->err, -ENOMEM, "out of memory parsing YAML");
    if (y->error == YAML_READER_ERROR) {
        yaml_mark_t m = y->problem_mark;
        if (y->problem_value != -1)
            return perr(p, m, -HERD_EARG, "%s: #%X at byte %zu", problem, (unsigned)y->problem_value,
                        y->problem_offset);
        return perr(p, m, -HERD_EARG, "%s at byte %zu", problem, y->problem_offset);
    }
    if (y->context)
        return perr(p, y->problem_mark, -HERD_EARG, "%s %s (started at line %zu, column %zu)",
                    y->context, problem, y->context_mark.line + 1, y->context_mark.column + 1);
    return perr(p, y->problem_mark, -HERD_EARG, "%s", problem);
}

static const char *short_tag(const char *tag)
{
    size_t n = strlen(YAML_TAG(""));
    static _Thread_local char buf[80];
    if (strncmp(tag, YAML_TAG(""), n) == 0) {
        snprintf(buf, sizeof buf, "!!%.70s", tag + n);
        return buf;
    }
    return tag;
}

static int path_push(struct yp *p, const char *key, size_t idx, bool is_key)
{
    char tmp[32];
    const char *add = key;
    size_t n;
    if (is_key) {
        n = strlen(key) + (p->plen ? 1 : 0);
    } else {
        snprintf(tmp, sizeof tmp, "[%zu]", idx);
        add = tmp;
        n = strlen(tmp);
    }
    if (p->plen + n + 1 > p->pcap) {
        size_t cap = (p->plen + n + 1) * 2;
        char *np = realloc(p->path, cap);
        if (!np) return -ENOMEM;
        p->path = np;
        p->pcap = cap;
    }
    if (is_key && p->plen) p->path[p->plen++] = '.';
    memcpy(p->path + p->plen, add, strlen(add) + 1);
    p->plen += strlen(add);
    return 0;
}

static int record_pos(struct yp *p, yaml_mark_t k, yaml_mark_t v)
{
    herd_value *a = herd_tuple("IIII", (int64_t)k.line + 1, (int64_t)k.column + 1,
                               (int64_t)v.line + 1, (int64_t)v.column + 1);
    if (!a) return -ENOMEM;
    return herd_map_set(p->pos, p->path, a);
}

static int parse_node(struct yp *p, yaml_event_t *ev, int depth, herd_value **out);

static int register_anchor(struct yp *p, const unsigned char *name, const herd_value *v, size_t nodes)
{
    if (!name) return 0;
    if (p->nanchors == p->capanchors) {
        size_t cap = p->capanchors ? p->capanchors * 2 : 8;
        struct anchor *na = realloc(p->anchors, cap * sizeof *na);
        if (!na) return -ENOMEM;
        p->anchors = na;
        p->capanchors = cap;
    }
    char *s = strdup((const char *)name);
    if (!s) return -ENOMEM;
    p->anchors[p->nanchors++] = (struct anchor){ s, v, nodes };
    return 0;
}

static int parse_scalar(struct yp *p, yaml_event_t *ev, herd_value **out)
{
    const char *s = (const char *)ev->data.scalar.value;
    size_t n = ev->data.scalar.length;
    const char *tag = (const char *)ev->data.scalar.tag;
    bool plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    herd_type t;
    if (!tag) t = plain ? classify_plain(s, n) : HERD_STR;
    else if (!strcmp(tag, "!") || !strcmp(tag, YAML_TAG("str"))) t = HERD_STR;
    else if (!strcmp(tag, YAML_TAG("null"))) t = HERD_NIL;
    else if (!strcmp(tag, YAML_TAG("bool"))) t = HERD_BOOL;
    else if (!strcmp(tag, YAML_TAG("int"))) t = HERD_INT;
    else if (!strcmp(tag, YAML_TAG("float"))) t = HERD_FLOAT;
    else if (!strcmp(tag, YAML_TAG("binary"))) t = HERD_BYTES;
    else return perr(p, ev->start_mark, -HERD_EARG, "unsupported tag %s", short_tag(tag));

    if (tag && t != HERD_STR && t != HERD_BYTES) {          /* explicit tag: text must fit */
        herd_type c = classify_plain(s, n);
        if (c != t && !(t == HERD_FLOAT && c == HERD_INT))
            return perr(p, ev->start_mark, -HERD_EARG, "\"%.60s\" is not a valid %s", s,
                        short_tag(tag));
    }
    herd_value *v = NULL;
    switch (t) {
    case HERD_NIL: v = herd_nil(); break;
    case HERD_BOOL: v = herd_bool(s[0] == 't' || s[0] == 'T'); break;
    case HERD_INT: {
        int64_t i;
        if (read_int(s, n, &i) < 0)
            return perr(p, ev->start_mark, -HERD_EARG,
                        "integer %.60s does not fit in 64 bits (write it as a float or a string)", s);
        v = herd_int(i);
        break;
    }
    case HERD_FLOAT: v = herd_float(read_float(s, n)); break;
    case HERD_BYTES:
        if (!(v = base64_decode(s, n)))
            return perr(p, ev->start_mark, -HERD_EARG, "!!binary value is not valid base64");
        break;
    default: v = herd_strn(s, n); break;
    }
    if (!v) return herd_err_set(p->err, -ENOMEM, "out of memory parsing YAML");
    *out = v;
    return 0;
}

static int parse_alias(struct yp *p, yaml_event_t *ev, herd_value **out)
{
    const char *name = (const char *)ev->data.alias.anchor;
    for (size_t i = p->nanchors; i-- > 0;) {
        struct anchor *a = &p->anchors[i];
        if (strcmp(a->name, name)) continue;
        if (p->expanded + a->nodes > MAX_ALIAS_NODES)
            return perr(p, ev->start_mark, -HERD_EARG,
                        "aliases expand to more than %u values", MAX_ALIAS_NODES);
        if (!(*out = herd_value_copy(a->v)))
            return herd_err_set(p->err, -ENOMEM, "out of memory parsing YAML");
        p->expanded += a->nodes;
        p->nodes += a->nodes;
        return 0;
    }
    return perr(p, ev->start_mark, -HERD_EARG, "unknown alias *%s (anchors must come first)", name);
}

static int parse_seq(struct yp *p, int depth, herd_value *arr)
{
    for (size_t i = 0;; i++) {
        yaml_event_t ev;
        int rc = next(p, &ev);
        if (rc) return rc;
        if (ev.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&ev);
            return 0;
        }
        yaml_mark_t at = ev.start_mark;
        size_t saved = p->plen;
        if (p->pos && (rc = path_push(p, NULL, i, false))) {
            yaml_event_delete(&ev);
            return herd_err_set(p->err, rc, "out of memory parsing YAML");
        }
        herd_value *item = NULL;
        rc = parse_node(p, &ev, depth + 1, &item);
        if (!rc && p->pos && (rc = record_pos(p, at, at)))
            herd_err_set(p->err, rc, "out of memory parsing YAML");
        if (p->pos) p->path[p->plen = saved] = '\0';
        if (rc) {
            herd_value_free(item);
            return rc;
        }
        if ((rc = herd_array_push(arr, item)))
            return herd_err_set(p->err, rc, "out of memory parsing YAML");
    }
}

static int parse_map(struct yp *p, int depth, herd_value *map)
{
    for (;;) {
        yaml_event_t kev, vev;
        int rc = next(p, &kev);
        if (rc) return rc;
        if (kev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&kev);
            return 0;
        }
        if (kev.type != YAML_SCALAR_EVENT) {
            rc = perr(p, kev.start_mark, -HERD_EARG, "map keys must be strings, not %s",
                      kev.type == YAML_ALIAS_EVENT ? "aliases" :
                      kev.type == YAML_SEQUENCE_START_EVENT ? "lists" : "maps");
            yaml_event_delete(&kev);
            return rc;
        }
        const char *key = (const char *)kev.data.scalar.value;
        yaml_mark_t kat = kev.start_mark;
        if (kev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !kev.data.scalar.tag &&
            !strcmp(key, "<<"))
            rc = perr(p, kat, -HERD_EARG, "merge keys (<<) are not supported");
        else if (strlen(key) != kev.data.scalar.length)
            rc = perr(p, kat, -HERD_EARG, "map keys must not contain NUL characters");
        else if (herd_map_get(map, key))
            rc = perr(p, kat, -HERD_EARG, "duplicate key \"%.200s\"", key);
        if (!rc) rc = next(p, &vev);
        if (rc) {
            yaml_event_delete(&kev);
            return rc;
        }
        yaml_mark_t vat = vev.start_mark;
        size_t saved = p->plen;
        if (p->pos && (rc = path_push(p, key, 0, true))) {
            yaml_event_delete(&kev);
            yaml_event_delete(&vev);
            return herd_err_set(p->err, rc, "out of memory parsing YAML");
        }
        herd_value *item = NULL;
        rc = parse_node(p, &vev, depth + 1, &item);
        if (!rc && p->pos && (rc = record_pos(p, kat, vat)))
            herd_err_set(p->err, rc, "out of memory parsing YAML");
        if (p->pos) p->path[p->plen = saved] = '\0';
        if (!rc && (rc = herd_map_set(map, key, item)))
            herd_err_set(p->err, rc, "out of memory parsing YAML");
        else if (rc)
            herd_value_free(item);
        yaml_event_delete(&kev);
        if (rc) return rc;
    }
}

/* Build the node that starts with *ev (consumed). */
static int parse_node(struct yp *p, yaml_event_t *ev, int depth, herd_value **out)
{
    int rc = 0;
    size_t before = p->nodes;
    const unsigned char *anchor = NULL;
    herd_value *v = NULL;
    *out = NULL;
    switch (ev->type) {
    case YAML_ALIAS_EVENT:
        rc = parse_alias(p, ev, &v);
        yaml_event_delete(ev);
        if (rc) return rc;
        *out = v;
        return 0;
    case YAML_SCALAR_EVENT:
        anchor = ev->data.scalar.anchor;
        rc = parse_scalar(p, ev, &v);
        p->nodes++;
        break;
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT: {
        bool seq = ev->type == YAML_SEQUENCE_START_EVENT;
        const char *tag = (const char *)(seq ? ev->data.sequence_start.tag : ev->data.mapping_start.tag);
        anchor = seq ? ev->data.sequence_start.anchor : ev->data.mapping_start.anchor;
        if (depth >= HERD_VALUE_MAX_DEPTH) {
            rc = perr(p, ev->start_mark, -HERD_EARG, "nested deeper than %d levels",
                      HERD_VALUE_MAX_DEPTH);
            break;
        }
        if (tag && strcmp(tag, "!") && strcmp(tag, seq ? YAML_TAG("seq") : YAML_TAG("map"))) {
            rc = perr(p, ev->start_mark, -HERD_EARG, "unsupported tag %s on a %s", short_tag(tag),
                      seq ? "list" : "map");
            break;
        }
        if (!(v = seq ? herd_array() : herd_map())) {
            rc = herd_err_set(p->err, -ENOMEM, "out of memory parsing YAML");
            break;
        }
        p->nodes++;
        rc = seq ? parse_seq(p, depth, v) : parse_map(p, depth, v);
        break;
    }
    default:
        rc = perr(p, ev->start_mark, -HERD_EARG, "unexpected YAML event");
        break;
    }
    if (!rc && anchor && register_anchor(p, anchor, v, p->nodes - before))
        rc = herd_err_set(p->err, -ENOMEM, "out of memory parsing YAML");
    yaml_event_delete(ev);
    if (rc) {
        herd_value_free(v);
        return rc;
    }
    *out = v;
    return 0;
}

static int parse_stream(struct yp *p, herd_value **out)
{
    yaml_event_t ev;
    int rc;
    if ((rc = next(p, &ev))) return rc;                    /* STREAM-START */
    yaml_event_delete(&ev);
    if ((rc = next(p, &ev))) return rc;
    if (ev.type == YAML_STREAM_END_EVENT) {                  /* no document: nil */
        yaml_event_delete(&ev);
        return (*out = herd_nil()) ? 0 : herd_err_set(p->err, -ENOMEM, "out of memory");
    }
    yaml_event_delete(&ev);                                  /* DOCUMENT-START */
    if ((rc = next(p, &ev))) return rc;
    herd_value *v;
    if ((rc = parse_node(p, &ev, 0, &v))) return rc;
    if ((rc = next(p, &ev))) goto fail;                      /* DOCUMENT-END */
    yaml_event_delete(&ev);
    if ((rc = next(p, &ev))) goto fail;
    if (ev.type != YAML_STREAM_END_EVENT) {
        rc = perr(p, ev.start_mark, -HERD_EARG, "expected one YAML document, found a second one");
        yaml_event_delete(&ev);
        goto fail;
    }
    yaml_event_delete(&ev);
    *out = v;
    return 0;
fail:
    herd_value_free(v);
    return rc;
}

int herd_value_parse_positions(const char *text, size_t len, const char *filename,
                               herd_value **out, herd_value **positions, herd_err *err)
{
    if (out) *out = NULL;
    if (positions) *positions = NULL;
    if (!out || (!text && len)) return herd_err_set(err, -HERD_EARG, "no YAML text");
    struct yp p;
    memset(&p, 0, sizeof p);
    p.file = filename;
    p.err = err;
    if (positions && !(p.pos = herd_map())) return herd_err_set(err, -ENOMEM, "out of memory");
    if (!yaml_parser_initialize(&p.parser)) {
        herd_value_free(p.pos);
        return herd_err_set(err, -ENOMEM, "out of memory");
    }
    yaml_parser_set_input_string(&p.parser, (const unsigned char *)(text ? text : ""), len);
    yaml_parser_set_encoding(&p.parser, YAML_UTF8_ENCODING);
    int rc = parse_stream(&p, out);
    yaml_parser_delete(&p.parser);
    for (size_t i = 0; i < p.nanchors; i++) free(p.anchors[i].name);
    free(p.anchors);
    free(p.path);
    if (rc) {
        herd_value_free(p.pos);
        return rc;
    }
    if (positions) *positions = p.pos;
    return 0;
}

int herd_value_parse_at(const char *text, size_t len, const char *filename,
                        herd_value **out, herd_err *err)
{
    return herd_value_parse_positions(text, len, filename, out, NULL, err);
}

HERD_API int herd_value_parse(const char *text, herd_value **out, herd_err *err)
{
    return herd_value_parse_positions(text, text ? strlen(text) : 0, NULL, out, NULL, err);
}

int herd_srcpos_get(const herd_value *positions, const char *path,
                    herd_srcpos *key, herd_srcpos *val)
{
    const herd_value *a = herd_map_get(positions, path);
    if (herd_len(a) != 4) return -HERD_EARG;
    if (key) *key = (herd_srcpos){ (int)herd_as_int(herd_at(a, 0)), (int)herd_as_int(herd_at(a, 1)) };
    if (val) *val = (herd_srcpos){ (int)herd_as_int(herd_at(a, 2)), (int)herd_as_int(herd_at(a, 3)) };
    return 0;
}

/* ---- text out ---- */

struct sb {
    char *p;
    size_t n, cap;
    bool oom;
};

static void sb_put(struct sb *b, const char *s, size_t n)
{
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->n + n + 1) cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void sb_puts(struct sb *b, const char *s) { sb_put(b, s, strlen(s)); }

/* Length of the UTF-8 sequence at s (and its code point), 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n, uint32_t *cp)
{
    size_t len;
    uint32_t c, min;
    if (s[0] < 0x80) { *cp = s[0]; return 1; }
    if ((s[0] & 0xE0) == 0xC0) { len = 2; c = s[0] & 0x1F; min = 0x80; }
    else if ((s[0] & 0xF0) == 0xE0) { len = 3; c = s[0] & 0x0F; min = 0x800; }
    else if ((s[0] & 0xF8) == 0xF0) { len = 4; c = s[0] & 0x07; min = 0x10000; }
    else return 0;
    if (len > n) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        c = (c << 6) | (s[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return 0;
    *cp = c;
    return len;
}

/* Code points YAML would not read back unchanged from plain or quoted text. */
static bool special_cp(uint32_t c)
{
    return c < 0x20 || c == 0x7F || (c >= 0x80 && c <= 0x9F) || c == 0x2028 || c == 0x2029 ||
           c == 0xFEFF || c == 0xFFFE || c == 0xFFFF;
}

static bool needs_quotes(const char *s, size_t n)
{
    if (n == 0 || classify_plain(s, n) != HERD_STR) return true;
    if (strchr("-?:,[]{}#&*!|>'\"%@` \t", s[0]) || s[n - 1] == ' ' || s[n - 1] == ':') return true;
    if (n >= 3 && !memcmp(s, "...", 3)) return true;
    if (n == 2 && !memcmp(s, "<<", 2)) return true;            /* a merge key */
    for (size_t i = 0; i < n;) {
        uint32_t c;
        size_t l = utf8_seq((const unsigned char *)s + i, n - i, &c);
        if (!l || special_cp(c)) return true;
        if (strchr(",[]{}", (int)c) && c) return true;
        if (c == ':' && (i + 1 == n || strchr(" ,[]{}", s[i + 1]))) return true;
        if (c == '#' && i > 0 && s[i - 1] == ' ') return true;
        i += l;
    }
    return false;
}

static void put_quoted(struct sb *b, const char *s, size_t n)
{
    sb_put(b, "\"", 1);
    for (size_t i = 0; i < n;) {
        uint32_t c;
        char esc[16];
        size_t l = utf8_seq((const unsigned char *)s + i, n - i, &c);
        if (!l) {                                  /* not UTF-8: show the byte */
            snprintf(esc, sizeof esc, "\\x%02X", (unsigned char)s[i]);
            sb_puts(b, esc);
            i++;
            continue;
        }
        switch (c) {
        case '"': sb_puts(b, "\\\""); break;
        case '\\': sb_puts(b, "\\\\"); break;
        case '\n': sb_puts(b, "\\n"); break;
        case '\t': sb_puts(b, "\\t"); break;
        case '\r': sb_puts(b, "\\r"); break;
        case 0: sb_puts(b, "\\0"); break;
        default:
            if (special_cp(c)) {
                if (c <= 0xFF) snprintf(esc, sizeof esc, "\\x%02X", (unsigned)c);
                else snprintf(esc, sizeof esc, "\\u%04X", (unsigned)c);
                sb_puts(b, esc);
            } else {
                sb_put(b, s + i, l);
            }
        }
        i += l;
    }
    sb_put(b, "\"", 1);
}

static void put_str(struct sb *b, const char *s, size_t n)
{
    if (needs_quotes(s, n)) put_quoted(b, s, n);
    else sb_put(b, s, n);
}

static void fmt_double(char *buf, size_t cap, double d)
{
    if (isnan(d)) { snprintf(buf, cap, ".nan"); return; }
    if (isinf(d)) { snprintf(buf, cap, d > 0 ? ".inf" : "-.inf"); return; }
    pthread_once(&c_locale_once, c_locale_init);
    locale_t old = c_locale ? uselocale(c_locale) : (locale_t)0;
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, cap, "%.*g", prec, d);
        if (herd_strtod_c(buf, NULL) == d) break;
    }
    if (old) uselocale(old);
    if (!strpbrk(buf, ".eE")) {
        size_t n = strlen(buf);
        if (n + 3 <= cap) memcpy(buf + n, ".0", 3);
    }
}

static void put_value(struct sb *b, const herd_value *v, int level)
{
    char num[64];
    switch (herd_typeof(v)) {
    case HERD_NIL: sb_puts(b, "null"); break;
    case HERD_BOOL: sb_puts(b, herd_as_bool(v) ? "true" : "false"); break;
    case HERD_INT:
        snprintf(num, sizeof num, "%lld", (long long)herd_as_int(v));
        sb_puts(b, num);
        break;
    case HERD_FLOAT:
        fmt_double(num, sizeof num, herd_as_float(v));
        sb_puts(b, num);
        break;
    case HERD_STR: {
        size_t n;
        const char *s = herd_as_bytes(v, &n);
        put_str(b, s, n);
        break;
    }
    case HERD_BYTES: {
        size_t n;
        const unsigned char *s = herd_as_bytes(v, &n);
        sb_puts(b, "!!binary ");
        if (!n) { sb_puts(b, "\"\""); break; }
        char *enc = n < SIZE_MAX / 2 ? malloc(4 * ((n + 2) / 3) + 1) : NULL;
        if (!enc || n > INT32_MAX) { free(enc); b->oom = true; break; }
        int m = EVP_EncodeBlock((unsigned char *)enc, s, (int)n);
        sb_put(b, enc, (size_t)m);
        free(enc);
        break;
    }
    case HERD_ARRAY:
        if (level > HERD_VALUE_MAX_DEPTH) { b->oom = true; break; }   /* a changed child nested it deeper */
        sb_put(b, "[", 1);
        for (size_t i = 0; i < herd_len(v); i++) {
            if (i) sb_put(b, ", ", 2);
            put_value(b, herd_at(v, i), level + 1);
        }
        sb_put(b, "]", 1);
        break;
    case HERD_MAP:
        if (level > HERD_VALUE_MAX_DEPTH) { b->oom = true; break; }
        sb_put(b, "{", 1);
        for (size_t i = 0; i < herd_len(v); i++) {
            if (i) sb_put(b, ", ", 2);
            const char *k = herd_key_at(v, i);
            put_str(b, k, strlen(k));
            sb_put(b, ": ", 2);
            put_value(b, herd_at(v, i), level + 1);
        }
        sb_put(b, "}", 1);
        break;
    case HERD_FUTREF:
        snprintf(num, sizeof num, "<future %llu>", (unsigned long long)herd_as_futref(v));
        sb_puts(b, num);
        break;
    }
}

HERD_API char *herd_value_to_string(const herd_value *v)
{
    struct sb b = { NULL, 0, 0, false };
    put_value(&b, v, 1);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

char *herd_value_describe(const herd_value *v, size_t max)
{
    struct sb b = { NULL, 0, 0, false };
    herd_type t = herd_typeof(v);
    if (t == HERD_NIL) {
        sb_puts(&b, "null");
    } else if (t == HERD_BYTES) {
        char num[64];
        snprintf(num, sizeof num, "bytes (%zu bytes)", herd_len(v));
        sb_puts(&b, num);
    } else {
        sb_puts(&b, herd_type_name(t));
        sb_put(&b, " ", 1);
        if (t == HERD_STR) {
            size_t n;
            const char *s = herd_as_bytes(v, &n);
            put_quoted(&b, s, n);
        } else {
            put_value(&b, v, 1);
        }
    }
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    if (max >= 8 && b.n > max) {                 /* cut on a character boundary */
        size_t cut = max - 3;
        while (cut > 0 && ((unsigned char)b.p[cut] & 0xC0) == 0x80) cut--;
        memcpy(b.p + cut, "...", 4);
        b.n = cut + 3;
    }
    return b.p;
}
