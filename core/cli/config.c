/* core/cli/config.c — `herd config`: where herd.yaml is looked for (paths),
 * the profiles a file holds (list), every problem in a file (check), and one
 * profile's effective settings with secrets hidden (show). The work is done
 * by core/config.c; this file parses arguments and prints. */
#include <herd/herd.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "config.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: herd config paths                  where herd.yaml is looked for, which one is used\n"
            "       herd config list [FILE]            the profiles a file holds\n"
            "       herd config check [FILE] [--profile NAME]\n"
            "                                          check every profile (or one) as a runner would,\n"
            "                                          without starting anything; prints every problem as\n"
            "                                          FILE:LINE:COL: key: message, then each profile's count\n"
            "       herd config show [-f FILE] [NAME]  a profile's effective settings (defaults filled in,\n"
            "                                          secrets shown as <secret>)\n"
            "\n"
            "FILE defaults to the first herd.yaml found: $HERD_CONFIG, ./herd.yaml,\n"
            "$XDG_CONFIG_HOME/herd/herd.yaml (~/.config/herd/herd.yaml), /etc/herd/herd.yaml.\n"
            "NAME defaults to $HERD_PROFILE, else the profile \"default\".\n");
}

/* FILE from the argument or the search; 0, or prints why not and returns 1. */
static int file_arg(const char *given, char *path, size_t cap, const char *cmd)
{
    if (given) {
        snprintf(path, cap, "%s", given);
        return 0;
    }
    herd_err err = { 0 };
    if (herd_config_find(path, cap, &err) == 0) return 0;
    fprintf(stderr, "herd config %s: %s\n", cmd, err.msg);
    return 1;
}

static int paths(void)
{
    herd_config_candidate c[HERD_CONFIG_NCAND];
    size_t n = herd_config_candidates(c);
    const char *env = getenv("HERD_CONFIG");
    bool explicit_missing = env && *env && !c[0].exists;
    int used = -1;
    for (size_t i = 0; i < n && used < 0 && !explicit_missing; i++)
        if (c[i].exists) used = (int)i;
    printf("herd.yaml is looked for in this order; the first that exists is used:\n");
    int k = 1;
    if (!env || !*env) printf("  %d. %-18s %-8s %s\n", k++, "$HERD_CONFIG", "-", "(not set)");
    for (size_t i = 0; i < n; i++)
        printf("  %d. %-18s %-8s %s%s\n", k++, c[i].origin, c[i].exists ? "found" : "missing", c[i].path,
               (int)i == used ? "   <- used" : "");
    if (explicit_missing) {
        printf("used: none: $HERD_CONFIG names a file that does not exist (an error for every runner)\n");
        return 1;
    }
    if (used < 0) printf("used: none (no profiles apply)\n");
    else printf("used: %s\n", c[used].path);
    const char *prof = getenv("HERD_PROFILE");
    if (prof && *prof) printf("profile: %s (from $HERD_PROFILE)\n", prof);
    else printf("profile: \"default\" if the file has one ($HERD_PROFILE is not set)\n");
    return 0;
}

static void print_problem(void *ud, const char *profile, const char *problem)
{
    (void)ud;
    (void)profile;
    printf("%s\n", problem);
}

typedef struct tally { size_t profiles, bad; char lines[64][128]; size_t nlines; } tally;

static void profile_done(void *ud, const char *profile, size_t n)
{
    tally *t = ud;
    t->profiles++;
    t->bad += n > 0;
    if (t->nlines == 64) return;
    if (n) snprintf(t->lines[t->nlines++], sizeof t->lines[0], "profile %s: %zu problem%s", profile, n, n == 1 ? "" : "s");
    else snprintf(t->lines[t->nlines++], sizeof t->lines[0], "profile %s: OK", profile);
}

static int check(int argc, char **argv)
{
    const char *given = NULL, *only = NULL;
    for (int i = 0; i < argc; i++) {
        if ((!strcmp(argv[i], "-p") || !strcmp(argv[i], "--profile")) && i + 1 < argc) only = argv[++i];
        else if (argv[i][0] == '-' || given) {
            usage(stderr);
            return HERD_CLI_EXIT_USAGE;
        } else given = argv[i];
    }
    char path[PATH_MAX];
    if (file_arg(given, path, sizeof path, "check")) return 1;
    herd_err err = { 0 };
    tally t = { 0 };
    int n = herd_config_check(path, only, print_problem, profile_done, &t, &err);
    if (n < 0) {
        fprintf(stderr, "herd config check: %s\n", err.msg);
        return 1;
    }
    if (n > 0) {
        for (size_t i = 0; i < t.nlines; i++) printf("%s\n", t.lines[i]);
        fflush(stdout);
        fprintf(stderr, "%s: %d problem%s in %zu of %zu profile%s\n", path, n, n == 1 ? "" : "s", t.bad,
                t.profiles, t.profiles == 1 ? "" : "s");
        return 1;
    }
    printf("OK: %zu profile%s\n", t.profiles, t.profiles == 1 ? "" : "s");
    return 0;
}

static int list(const char *given)
{
    char path[PATH_MAX];
    if (file_arg(given, path, sizeof path, "list")) return 1;
    herd_err err = { 0 };
    herd_value *v = NULL;
    if (herd_config_list(path, &v, &err)) {
        fprintf(stderr, "herd config list: %s\n", err.msg);
        return 1;
    }
    for (size_t i = 0; i < herd_len(v); i++) {
        const herd_value *p = herd_at(v, i);
        const char *target = herd_as_str(herd_map_get(p, "address"));
        if (!target) target = herd_as_str(herd_map_get(p, "cluster_class"));
        const char *d = herd_as_str(herd_map_get(p, "description"));
        printf("%-16s %-28s %s\n", herd_as_str(herd_map_get(p, "profile")), target ? target : "", d ? d : "");
    }
    if (!herd_len(v)) printf("%s: no profiles\n", path);
    herd_value_free(v);
    return 0;
}

static int show(int argc, char **argv)
{
    const char *file = NULL, *name = NULL;
    for (int i = 0; i < argc; i++) {
        if ((!strcmp(argv[i], "-f") || !strcmp(argv[i], "--file")) && i + 1 < argc) file = argv[++i];
        else if (argv[i][0] == '-' || name) {
            usage(stderr);
            return HERD_CLI_EXIT_USAGE;
        } else name = argv[i];
    }
    herd_err err = { 0 };
    herd_value *v = NULL;
    if (herd_config_show(file, name, &v, &err)) {
        fprintf(stderr, "herd config show: %s\n", err.msg);
        return 1;
    }
    for (size_t i = 0; i < herd_len(v); i++) {
        const char *k = herd_key_at(v, i);
        char *s = herd_value_to_string(herd_at(v, i));
        if (!strcmp(k, "profile") || !strcmp(k, "file")) printf("# %s: %s\n", k, s ? s : "?");
        else printf("%s: %s\n", k, s ? s : "?");
        free(s);
    }
    herd_value_free(v);
    return 0;
}

int herd_cli_config(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? HERD_CLI_EXIT_USAGE : 0;
    }
    const char *sub = argv[1];
    if (!strcmp(sub, "paths") && argc == 2) return paths();
    if (!strcmp(sub, "check")) return check(argc - 2, argv + 2);
    if (!strcmp(sub, "list") && argc <= 3) return list(argc == 3 ? argv[2] : NULL);
    if (!strcmp(sub, "show")) return show(argc - 2, argv + 2);
    usage(stderr);
    return HERD_CLI_EXIT_USAGE;
}
