/* core/json.h — JSON written by code, into a libevent buffer: strings
 * escaped (control characters, quotes, backslash, and < > & so a value can
 * sit in an HTML page), invalid UTF-8 replaced by U+FFFD, numbers finite or
 * null. The one place herd writes JSON. */
#ifndef HERD_JSON_H
#define HERD_JSON_H

#include <event2/buffer.h>
#include <stddef.h>

/* "s" quoted and escaped (NULL: null). */
void herd_json_str(struct evbuffer *b, const char *s);
/* The same for n bytes of s. */
void herd_json_strn(struct evbuffer *b, const char *s, size_t n);
/* A finite number (%.17g trimmed to what it needs), else null. */
void herd_json_num(struct evbuffer *b, double v);
/* "key": (quoted), preceded by a comma unless first. */
void herd_json_key(struct evbuffer *b, const char *key, int first);

#endif
