/* core/cli/slurm.c — `herd slurm job-script [PROFILE] [--cluster-kwargs
 * YAML]`: the batch script slurm.SLURMCluster would submit for those
 * cluster_kwargs (dask-jobqueue's cluster.job_script()), printed without
 * submitting anything. The provider makes it (its exported
 * SLURMCluster_job_script), from the same kwargs a flow run would use: the
 * profile's cluster_kwargs (herd.yaml, see `herd config`) with the
 * command line's keys over them. */
#include <herd/herd.h>
#include <herd/provider.h>

#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include "internal.h"

#define SLURM_CLASS "slurm.SLURMCluster"

static void usage(FILE *out)
{
    fprintf(out, "usage: herd slurm job-script [PROFILE] [--cluster-kwargs YAML] [--program PATH]\n"
                 "  print the batch script slurm.SLURMCluster submits for these cluster_kwargs:\n"
                 "  PROFILE's (herd.yaml; default $HERD_PROFILE, else \"default\" if the file has one),\n"
                 "  with the keys of --cluster-kwargs over them. PATH: the worker program the\n"
                 "  script runs when cluster_kwargs.worker_command is not set (default: your\n"
                 "  program's path goes there; this preview shows PATH, else the herd command).\n");
}

typedef struct found { const char *want; char path[PATH_MAX]; } found;

static void find_path(const char *name, const herd_provider *p, const char *path, void *ud)
{
    found *f = ud;
    if (!f->path[0] && strcmp(name, f->want) == 0) snprintf(f->path, sizeof f->path, "%s", path);
}

static int job_script(int argc, char **argv)
{
    const char *profile = NULL, *kw_text = NULL, *program = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--cluster-kwargs") && i + 1 < argc) kw_text = argv[++i];
        else if (!strcmp(argv[i], "--program") && i + 1 < argc) program = argv[++i];
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { usage(stdout); return 0; }
        else if (argv[i][0] == '-' || profile) { usage(stderr); return HERD_CLI_EXIT_USAGE; }
        else profile = argv[i];
    }
    herd_err err = { 0 };
    herd_value *kw = NULL, *valid = NULL;
    herd_profile *prof = NULL;
    const herd_provider *prov = NULL;
    herd_cluster *c = NULL;
    char *script = NULL;
    int rc = 0;
    if (kw_text && (rc = herd_value_parse(kw_text, &kw, &err))) { herd_err_prefix(&err, "--cluster-kwargs"); goto out; }
    if (kw && herd_typeof(kw) != HERD_MAP) {
        rc = herd_err_set(&err, HERD_ECONFIG, "--cluster-kwargs: expected a map, got %s", herd_type_name(herd_typeof(kw)));
        goto out;
    }
    if (profile || !kw) {
        if ((rc = herd_config_load_profile(profile, &prof, &err))) goto out;
        if (!prof && !kw) {
            rc = herd_err_set(&err, HERD_ECONFIG, "no profile found (herd.yaml; see `herd config paths`) "
                              "and no --cluster-kwargs");
            goto out;
        }
    }
    const char *cls = NULL;
    herd_profile_merge m = { .cluster_kwargs = &kw };
    if (prof && (rc = herd_profile_apply(prof, &m, &err))) goto out;
    cls = m.cluster_class;
    if (cls && strcmp(cls, SLURM_CLASS) && strcmp(cls, "dask_jobqueue.SLURMCluster")) {
        rc = herd_err_set(&err, HERD_ECONFIG, "profile %s: cluster_class is \"%s\", not %s", prof ? prof->name : "?",
                          cls, SLURM_CLASS);
        goto out;
    }
    if ((rc = herd_provider_resolve(SLURM_CLASS, &prov, &err))) goto out;
    if ((rc = herd_kwargs_validate(prov->params, kw, "cluster_kwargs", &valid, &err))) {
        if (prof) herd_profile_locate_error(prof, NULL, &err);
        goto out;
    }
    found f = { .want = SLURM_CLASS };
    herd_provider_foreach(find_path, &f);
    void *h = f.path[0] ? dlopen(f.path, RTLD_NOW | RTLD_NOLOAD) : NULL;
    int (*gen)(herd_cluster *, char **, herd_err *) =
        h ? (int (*)(herd_cluster *, char **, herd_err *))dlsym(h, "SLURMCluster_job_script") : NULL;
    if (!gen) {
        rc = herd_err_set(&err, HERD_ENOPROVIDER, "%s (%s) has no SLURMCluster_job_script", SLURM_CLASS,
                          f.path[0] ? f.path : "not on the search path");
        if (h) dlclose(h);
        goto out;
    }
    char exe[PATH_MAX] = "herd";
    ssize_t n = program ? -1 : readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) exe[n] = '\0';
    char *wargv[] = { (char *)(program ? program : exe), "--herd-worker", NULL };
    char *wenvp[] = { NULL };
    herd_env_core core = { 0 };
    herd_cluster_env env = { .name = "herd-job-script", .worker_argv = (const char *const *)wargv,
                             .worker_envp = (const char *const *)wenvp, .core = &core };
    if (!(rc = prov->create(&c, valid, &env, &err))) {
        rc = gen(c, &script, &err);
        prov->close(c);
    }
    dlclose(h);
    if (!rc) fputs(script, stdout);
out:
    if (rc) fprintf(stderr, "herd slurm job-script: %s\n", err.msg);
    free(script);
    herd_value_free(valid);
    herd_value_free(kw);
    herd_profile_free(prof);
    return rc ? 1 : 0;
}

int herd_cli_slurm(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "job-script")) return job_script(argc - 1, argv + 1);
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help"))) {
        usage(stdout);
        return 0;
    }
    usage(stderr);
    return HERD_CLI_EXIT_USAGE;
}
