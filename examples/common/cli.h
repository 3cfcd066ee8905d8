/* examples/common/cli.h — what the examples' programs share: their command
 * line (their own options plus --cluster-kwargs, --profile and --help; the
 * help text; unexpected arguments), the cluster those choose (a herd.yaml
 * profile, else a temporary local.LocalCluster with the example's default
 * cluster_kwargs under the user's keys), beginning the flow run on it and
 * waiting for its workers, and a monotonic clock. Header-only: include it
 * from one file of an example (it uses only the public API). */
#ifndef HERD_EXAMPLES_CLI_H
#define HERD_EXAMPLES_CLI_H

#include <herd/herd.h>

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

typedef struct ex_cluster {
    const char *defaults;          /* the example's cluster_kwargs (YAML) */
    const char *kwargs_override;   /* --cluster-kwargs, or NULL */
    const char *profile;           /* --profile or $HERD_PROFILE, or NULL */
} ex_cluster;

static inline ex_cluster ex_cluster_defaults(const char *defaults)
{
    const char *p = getenv("HERD_PROFILE");
    return (ex_cluster){ .defaults = defaults, .profile = p && *p ? p : NULL };
}

/* An example's command line: its own options (getopt_long entries ending
 * with a NULL name; 'k', 'p' and 'h' are taken), their help lines, and what
 * to do with each (on_opt: 0, or -1 after saying why on stderr); the
 * cluster options and --help come with them. */
typedef struct ex_cli {
    const char *about;             /* the help's lines under "usage:" */
    const struct option *opts;
    const char *opts_help;
    int (*on_opt)(void *ud, int opt, const char *arg, const char *prog);
    void *ud;
    ex_cluster *cluster;
} ex_cli;

static inline void ex_usage(FILE *f, const char *prog, const ex_cli *cli)
{
    fprintf(f, "usage: %s [options]\n%s%s"
               "  --cluster-kwargs YAML    keys over the default %s\n"
               "  --profile NAME           run on the cluster of a herd.yaml profile instead\n"
               "                           (also $HERD_PROFILE; see examples/config, examples/ssh)\n"
               "  --help\n", prog, cli->about, cli->opts_help, cli->cluster->defaults);
}

/* 0, or -1 after saying why (bad options); --help prints the help and exits. */
static inline int ex_parse_args(int argc, char **argv, const ex_cli *cli)
{
    struct option all[24];
    size_t n = 0;
    for (const struct option *o = cli->opts; o && o->name && n < 20; o++) all[n++] = *o;
    all[n++] = (struct option){ "cluster-kwargs", required_argument, NULL, 'k' };
    all[n++] = (struct option){ "profile", required_argument, NULL, 'p' };
    all[n++] = (struct option){ "help", no_argument, NULL, 'h' };
    all[n] = (struct option){ NULL, 0, NULL, 0 };
    int c;
    while ((c = getopt_long(argc, argv, "", all, NULL)) != -1) {
        switch (c) {
        case 'k': cli->cluster->kwargs_override = optarg; break;
        case 'p': cli->cluster->profile = optarg; break;
        case 'h': ex_usage(stdout, argv[0], cli); exit(0);
        case '?': ex_usage(stderr, argv[0], cli); return -1;
        default:
            if (cli->on_opt(cli->ud, c, optarg, argv[0])) return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "%s: unexpected argument \"%s\"\n", argv[0], argv[optind]);
        return -1;
    }
    return 0;
}

static inline double ex_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The cluster_kwargs: the defaults, with the user's keys on top. */
static inline int ex_cluster_kwargs(const ex_cluster *c, herd_value **out, herd_err *err)
{
    int rc = herd_value_parse(c->defaults, out, err);
    if (rc || !c->kwargs_override) return rc;
    herd_value *over = NULL;
    if ((rc = herd_value_parse(c->kwargs_override, &over, err))) {
        herd_err_prefix(err, "--cluster-kwargs");
        goto fail;
    }
    if (herd_typeof(over) != HERD_MAP) {
        rc = herd_err_set(err, HERD_EARG, "--cluster-kwargs: expected a map such as \"{n_workers: 4}\", got %s",
                          herd_type_name(herd_typeof(over)));
        goto fail;
    }
    for (size_t i = 0; i < herd_len(over); i++)
        if ((rc = herd_map_set(*out, herd_key_at(over, i), herd_value_copy(herd_at(over, i))))) goto fail;
    herd_value_free(over);
    return 0;
fail:
    herd_value_free(over);
    herd_value_free(*out);
    *out = NULL;
    return rc;
}

/* Begins flow run `flow` on the cluster c chooses (said on stdout) and waits
 * up to a minute for its n_workers. The runner, or NULL after printing why
 * (prog: the message's prefix); *bad_kwargs is set when --cluster-kwargs
 * was the trouble. */
static inline herd_runner *ex_flow_begin(const ex_cluster *c, const char *prog, const char *flow, int *bad_kwargs)
{
    herd_err err;
    herd_value *kw = NULL;
    herd_runner *r = NULL;
    herd_runner_opts o = { .cluster_class = "local.LocalCluster" };
    *bad_kwargs = 0;
    if (c->profile) {
        /* the profile decides the cluster; --cluster-kwargs keys go on top */
        printf("task runner: the cluster of herd.yaml profile \"%s\"%s%s\n", c->profile,
               c->kwargs_override ? " with cluster_kwargs " : "", c->kwargs_override ? c->kwargs_override : "");
        o = (herd_runner_opts){ .profile = c->profile, .cluster_kwargs = c->kwargs_override };
    } else if (ex_cluster_kwargs(c, &kw, &err)) {
        fprintf(stderr, "%s: %s\n", prog, err.msg);
        *bad_kwargs = 1;
        return NULL;
    } else {
        char *kws = herd_value_to_string(kw);
        printf("task runner: a temporary local.LocalCluster with cluster_kwargs %s\n", kws ? kws : "?");
        free(kws);
        o.cluster_kwargs_value = kw;
    }
    fflush(stdout);
    if (herd_runner_new(&r, &o, &err) || herd_flow_begin(r, flow, &err)) {
        fprintf(stderr, "%s: %s\n", prog, err.msg);
        herd_runner_free(r);
        herd_value_free(kw);
        return NULL;
    }
    int want = kw ? (int)herd_as_int(herd_map_get(kw, "n_workers")) : 0;
    herd_value_free(kw);
    if (want > 0 && herd_wait_for_workers(r, want, 60, &err)) {
        fprintf(stderr, "%s: %s\n", prog, err.msg);
        herd_flow_end(r, true, NULL);
        herd_runner_free(r);
        return NULL;
    }
    return r;
}

#endif
