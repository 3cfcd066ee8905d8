/* core/config.h — cluster profiles from herd.yaml (hidden API, not exported).
 *
 * The file is found through $HERD_CONFIG, ./herd.yaml,
 * $XDG_CONFIG_HOME/herd/herd.yaml (default ~/.config/herd/herd.yaml) and
 * /etc/herd/herd.yaml: the first that exists wins ($HERD_CONFIG, when set, is
 * the only one looked at beyond listing: if it is missing that is an error).
 * Its layout (see examples/config/herd.yaml):
 *
 *     profiles:
 *       default:      {cluster_kwargs: {n_workers: 2}}
 *       local4:       {cluster_class: local.LocalCluster, cluster_kwargs: {n_workers: 4}}
 *       adaptive:     {cluster_kwargs: {n_workers: 0}, adapt_kwargs: {minimum: 0, maximum: 4}}
 *       remote:       {address: "tcp://127.0.0.1:8786", client_kwargs: {connect_timeout: 5s}}
 *
 * A profile's keys: description, cluster_class, cluster_kwargs, adapt_kwargs,
 * client_kwargs, address. Unknown keys (top level or profile) are errors with
 * a did-you-mean that cite FILE:LINE:COL.
 *
 * How the runner uses it (herd_runner_new):
 *     herd_profile *prof = NULL;
 *     herd_config_load_profile(opts->profile, &prof, err);      // NULL: none
 *     herd_profile_apply(prof, &merge, err);     // explicit options win key by key
 *     … validate; on error: herd_profile_locate_error(prof, NULL, err) …
 *     herd_profile_free(prof);
 */
#ifndef HERD_CONFIG_H
#define HERD_CONFIG_H

#include <herd/herd.h>
#include <limits.h>

#include "value_int.h"

/* ---- finding the file ---- */
#define HERD_CONFIG_NCAND 4
typedef struct herd_config_candidate {
    char path[PATH_MAX];
    const char *origin;    /* "$HERD_CONFIG", "current directory", "$XDG_CONFIG_HOME",
                              "~/.config", "system" */
    bool exists;
} herd_config_candidate;

/* The places searched, in order; returns how many (<= HERD_CONFIG_NCAND). */
size_t herd_config_candidates(herd_config_candidate out[HERD_CONFIG_NCAND]);
/* The file that applies. 0 and its path; -ENOENT (err says where it looked)
 * when there is none; -HERD_ECONFIG when $HERD_CONFIG names a missing file. */
int herd_config_find(char *path_out, size_t cap, herd_err *err);

/* ---- profiles ---- */
typedef struct herd_profile {
    char *name;                  /* "local4" */
    char *file;                  /* the file it came from, as found ("./herd.yaml") */
    char *description;           /* or NULL */
    char *cluster_class;         /* or NULL */
    char *address;               /* or NULL */
    herd_value *cluster_kwargs;  /* maps, or NULL when not given */
    herd_value *adapt_kwargs;
    herd_value *client_kwargs;
    herd_value *positions;       /* profile-relative paths ("cluster_kwargs.n_workers")
                                    -> [key_line, key_col, value_line, value_col] */
    herd_srcpos at;              /* where the profile's name is */
} herd_profile;

/* Load a profile. name NULL: $HERD_PROFILE if set, else the file's profile
 * "default" if it has one, else none (*out = NULL, return 0; also when no
 * file exists). A named profile (argument or $HERD_PROFILE) that cannot be
 * found is an error (did-you-mean over the profile names). The file's top
 * level and the selected profile are checked for structure (keys, types);
 * other profiles are not looked at, nor provider schemas (herd_runner_new
 * checks those, herd_run_opts_check). */
int herd_config_load_profile(const char *name, herd_profile **out, herd_err *err);
/* The same from a given file. */
int herd_config_load_profile_from(const char *file, const char *name, herd_profile **out,
                                  herd_err *err);
void herd_profile_free(herd_profile *p);

/* The profile keys that hold kwargs maps, in this order. */
extern const char *const herd_profile_kwargs[3];

/* Explicit runner options, merged over a profile by herd_profile_apply
 * (config_merge.c). */
typedef struct herd_profile_merge {
    const char *cluster_class;       /* in: explicit or NULL; out: effective (borrowed
                                        from the caller or from the profile) */
    const char *address;             /* same */
    bool cluster_object;             /* in: a provider struct or factory was given */
    herd_value **cluster_kwargs;     /* in: explicit map or NULL (owned by the caller);
                                        out: the shallow merge, profile keys under
                                        explicit ones (the old map is freed) */
    herd_value **adapt_kwargs;
    herd_value **client_kwargs;
} herd_profile_merge;

/* Merge: explicit values win key by key (kwargs maps merge shallowly: a key
 * given explicitly replaces the profile's, other profile keys stay). Where
 * the run goes is one key: an explicit address sets aside the profile's
 * cluster_class, cluster_kwargs and adapt_kwargs; an explicit cluster_class,
 * provider or factory sets aside its address. Explicit cluster_kwargs or
 * adapt_kwargs without an explicit target, over a profile's address, are
 * -HERD_ECONFIG naming both. The profile's own entries that explicit ones
 * replaced are dropped from p, so herd_profile_locate_error only cites what
 * the file supplied. p NULL: nothing to do. */
int herd_profile_apply(herd_profile *p, herd_profile_merge *m, herd_err *err);

/* When err's message starts with a key path the profile supplied
 * ("cluster_kwargs.n_workers: …", "adapt_kwargs.maximum: …", "cluster_class:
 * …"), or path (if not NULL) names one ("cluster_class"), prefix
 * FILE:LINE:COL: the value's position, the key's for "unknown key" errors,
 * the enclosing map's key for "required key is missing". Returns err->code;
 * leaves err alone when the error is not about what the profile supplied
 * (p NULL included). */
int herd_profile_locate_error(const herd_profile *p, const char *path, herd_err *err);

/* ---- checking a whole file (herd config check) ---- */
/* Validate every profile (or only profile `only`, when not NULL), each on
 * its own: structure, cluster_class resolution, every key of cluster_kwargs
 * against its provider's schema and of adapt_kwargs and client_kwargs
 * against the runner's, then — when all keys are right — exactly what
 * herd_runner_new runs (herd_run_opts_check: minimum <= maximum, log_level,
 * the provider's ABI …). fn gets EVERY problem, in file order, as
 * "FILE:LINE:COL: path: message", with the profile it belongs to (NULL for
 * the file's top level); done (may be NULL) gets each profile checked, in
 * file order, with its number of problems. Returns the number of problems
 * (>= 0), or a negative code when the file cannot be read or parsed, or
 * `only` is not one of its profiles (err). */
int herd_config_check(const char *file, const char *only,
                      void (*fn)(void *ud, const char *profile, const char *problem),
                      void (*done)(void *ud, const char *profile, size_t nproblems), void *ud, herd_err *err);

/* The effective settings of profile `name` of file (NULL: found by the
 * search; name NULL as in herd_config_load_profile, and "default" if none
 * selects one): kwargs validated with defaults filled in, secrets (client
 * token, provider params flagged HERD_PARAM_SECRET) replaced by "<secret>".
 * *out is a map {profile, file, cluster_class | address, cluster_kwargs,
 * adapt_kwargs, client_kwargs}. */
int herd_config_show(const char *file, const char *name, herd_value **out, herd_err *err);

/* The profiles of file in file order, as an array of maps {profile, address |
 * cluster_class (the effective one), description?} (`herd config list`). */
int herd_config_list(const char *file, herd_value **out, herd_err *err);

#endif
