/* core/config_int.h — what config.c (reading herd.yaml, loading a profile)
 * and config_check.c (checking every profile of a file: `herd config
 * check|show|list`) share and nobody else sees: the file as read, the
 * problems collected in file order, and the helpers the check reuses from
 * the loader (prefix cfg_). config_check.c calls config.c, never the reverse. */
#ifndef HERD_CONFIG_INT_H
#define HERD_CONFIG_INT_H

#include "config.h"
#include "internal.h"
#include "options.h"

#include <stdbool.h>

/* ---- problems, collected in file order ---- */

typedef struct problem { int line, col; size_t seq; char *msg; const char *profile; } problem;
typedef struct problems {
    problem *v;
    size_t n, cap;
    int oom;
    const char *profile;     /* the profile being checked (borrowed), NULL: the top level */
    struct { char *msg; const char *profile; } notes[32];   /* not problems: what was not checked */
    size_t nnotes;
} problems;

/* ---- reading a file ---- */

typedef struct cfgfile {
    char *file;
    herd_value *root;       /* map or nil */
    herd_value *pos;
} cfgfile;

/* ---- config.c ---- */
void cfg_add_problem(problems *ps, const char *file, herd_srcpos at, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int cfg_by_position(const void *a, const void *b);
void cfg_problems_free(problems *ps);
herd_srcpos cfg_find_pos(const herd_value *positions, const char *path, bool want_key);
void cfg_join(char *out, size_t cap, const char *a, const char *b);
void cfg_validate_all(const herd_param *params, const herd_value *map, const char *where,
                         const herd_value *positions, const char *pospath, const char *file,
                         problems *ps, herd_value **ok);
void cfg_free(cfgfile *c);
int cfg_read(const char *file, cfgfile *c, herd_err *err);
const herd_value *cfg_profiles(const cfgfile *c);
bool cfg_good_name(const char *s);
void cfg_check_top(const cfgfile *c, problems *ps);
void cfg_check_profile_structure(const cfgfile *c, const char *name, problems *ps);
int cfg_make_profile(const cfgfile *c, const char *name, herd_profile **out, herd_err *err);
int cfg_no_such_profile(const cfgfile *c, const char *name, const char *via, herd_err *err);
int cfg_first_problem(problems *ps, herd_err *err);
int cfg_select_profile(const cfgfile *c, const char *name, herd_profile **out, herd_err *err);
int cfg_open(const char *file, cfgfile *c, herd_err *err);
bool cfg_locate(const herd_profile *p, const char *path, const char *msg, herd_srcpos *at);

#endif
