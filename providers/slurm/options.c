/* providers/slurm/options.c — SLURMCluster's cluster_kwargs: the schema
 * (after dask-jobqueue's SLURMCluster and its jobqueue.yaml defaults), the
 * checks a schema cannot make, and what follows from them (threads and
 * memory per worker process, --cpus-per-task, --mem in Slurm's units). */
#include "slurm.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define SF(m) HERD_PARAM_FIELD(slurm_opts, m)

const herd_param slurm_params[] = {
    { "cores", HERD_PARAM_INT, NULL, "Cores per job (required, as in dask-jobqueue): the job's "
      "--cpus-per-task (unless job_cpu) and the threads its workers share (cores / processes each).",
      HERD_PARAM_REQUIRED, 1, 100000, SF(cores) },
    { "memory", HERD_PARAM_SIZE, NULL, "Memory per job (required), as dask-jobqueue writes it: "
      "\"27GB\", \"4GiB\", \"512M\". The job's --mem (rounded up to K/M/G, unless job_mem); each "
      "worker's memory_limit is memory / processes.", HERD_PARAM_REQUIRED, 0, 0, SF(memory) },
    { "processes", HERD_PARAM_INT, "null", "Worker processes per job. null: as dask-jobqueue, cores "
      "itself up to 4, else the smallest factor of cores >= sqrt(cores). At most cores and 30.",
      HERD_PARAM_NULLABLE, 1, 30, SF(processes) },
    { "queue", HERD_PARAM_STRING, "null", "Partition (#SBATCH -p). null: Slurm's default.",
      HERD_PARAM_NULLABLE, 0, 0, SF(queue) },
    { "account", HERD_PARAM_STRING, "null", "Account charged (#SBATCH -A).", HERD_PARAM_NULLABLE, 0, 0, SF(account) },
    { "walltime", HERD_PARAM_STRING, "\"00:30:00\"", "Time limit of each job (#SBATCH -t), Slurm's "
      "format (\"HH:MM:SS\", \"D-HH:MM\"). null: none.", HERD_PARAM_NULLABLE, 0, 0, SF(walltime) },
    { "job_cpu", HERD_PARAM_INT, "null", "--cpus-per-task when it must differ from cores.",
      HERD_PARAM_NULLABLE, 1, 100000, SF(job_cpu) },
    { "job_mem", HERD_PARAM_STRING, "null", "--mem when it must differ from memory (Slurm's "
      "syntax, \"27G\").", HERD_PARAM_NULLABLE, 0, 0, SF(job_mem) },
    { "job_name", HERD_PARAM_STRING, "\"herd-worker\"", "Prefix of the Slurm job name (#SBATCH -J "
      "<job_name>-<6 hex digits>, one name per cluster) and of the workers' names "
      "(<job_name>-<job id>-<array index>-<process>).", 0, 0, 0, SF(job_name) },
    { "job_extra_directives", HERD_PARAM_LIST, "[]", "More #SBATCH lines, e.g. [\"--gres=gpu:1\", "
      "\"--exclusive\"] (not subject to job_directives_skip).", 0, 0, 0, SF(extra) },
    { "job_directives_skip", HERD_PARAM_LIST, "[]", "Generated #SBATCH lines to leave out: any "
      "line containing one of these strings, e.g. [\"--mem\"].", 0, 0, 0, SF(skip) },
    { "job_script_prologue", HERD_PARAM_LIST, "[]", "Shell lines run before the workers start "
      "(module load …, source venv/bin/activate).", 0, 0, 0, SF(prologue) },
    { "job_script_epilogue", HERD_PARAM_LIST, "[]", "Shell lines run after the workers ended.",
      0, 0, 0, SF(epilogue) },
    { "log_directory", HERD_PARAM_STRING, "null", "Directory for the jobs' stdout and stderr "
      "(#SBATCH -o/-e DIR/<job name>-%A_%a.out/.err); created. null: Slurm's default (the "
      "submit directory).", HERD_PARAM_NULLABLE, 0, 0, SF(log_directory) },
    { "shebang", HERD_PARAM_STRING, "\"#!/usr/bin/env bash\"", "First line of the job script "
      "(any POSIX shell).", 0, 0, 0, SF(shebang) },
    { "local_directory", HERD_PARAM_STRING, "null", "Scratch directory on the nodes: the "
      "workers' TMPDIR (created by the script).", HERD_PARAM_NULLABLE, 0, 0, SF(local_directory) },
    { "n_workers", HERD_PARAM_INT, "0", "Workers to start (in jobs of processes workers: "
      "ceil(n_workers / processes) jobs, one job array).", 0, 0, 100000, SF(n_workers) },
    { "worker_command", HERD_PARAM_STRING, "null", "Path of the worker program on the nodes. null: "
      "this program's own path (a shared file system).", HERD_PARAM_NULLABLE, 0, 0, SF(worker_command) },
    { "interface", HERD_PARAM_STRING, "null", "Network interface whose IPv4 address the workers "
      "dial (\"ib0\", \"eth0\", \"lo\" for a one-machine Slurm). null: this host name's address.",
      HERD_PARAM_NULLABLE, 0, 0, SF(interface) },
    { "submit_command", HERD_PARAM_STRING, "\"sbatch\"", "sbatch's path.", 0, 0, 0, SF(submit_command) },
    { "cancel_command", HERD_PARAM_STRING, "\"scancel\"", "scancel's path.", 0, 0, 0, SF(cancel_command) },
    { "queue_command", HERD_PARAM_STRING, "\"squeue\"", "squeue's path (herd asks Slurm about its "
      "jobs; dask-jobqueue does not).", 0, 0, 0, SF(queue_command) },
    { "poll_interval", HERD_PARAM_DURATION, "\"5s\"", "How often squeue is asked about the jobs.",
      0, 0.05, 3600, SF(poll_interval) },
    { "pending_report", HERD_PARAM_DURATION, "\"60s\"", "A job PENDING longer than this is "
      "reported (log and status) with Slurm's reason.", 0, 0, 86400, SF(pending_report) },
    HERD_PARAMS_LIFETIME(slurm_opts, lifetime, lifetime_stagger),
    { "worker_extra_args", HERD_PARAM_LIST, "[]", "dask-jobqueue's extra worker flags, for its "
      "lifetime idiom: [\"--lifetime\", \"55m\", \"--lifetime-stagger\", \"4m\"] (or "
      "\"--lifetime=55m\") is the same as lifetime: 55m, lifetime_stagger: 4m. Other flags are "
      "refused (herd workers take no Dask flags).", 0, 0, 0, SF(worker_extra_args) },
    { NULL }
};

void slurm_format_mem(int64_t n, char *out, size_t cap)
{
    const int64_t K = 1024, M = K * K, G = M * K;
    if (n >= G) snprintf(out, cap, "%lldG", (long long)((n + G - 1) / G));
    else if (n >= M) snprintf(out, cap, "%lldM", (long long)((n + M - 1) / M));
    else if (n >= K) snprintf(out, cap, "%lldK", (long long)((n + K - 1) / K));
    else snprintf(out, cap, "1K");
}

static int check_lines(const herd_value *v, const char *key, bool one_line, herd_err *err)
{
    for (size_t i = 0; i < herd_len(v); i++) {
        const char *s = herd_as_str(herd_at(v, i));
        if (!s)
            return herd_err_set(err, HERD_ECONFIG, "cluster_kwargs.%s[%zu]: expected a string, got %s",
                                key, i, herd_type_name(herd_typeof(herd_at(v, i))));
        if (one_line && strchr(s, '\n'))
            return herd_err_set(err, HERD_ECONFIG, "cluster_kwargs.%s[%zu]: \"%.60s\": expected one "
                                "line", key, i, s);
    }
    return 0;
}

/* worker_extra_args: dask-jobqueue's --lifetime and --lifetime-stagger
 * (each "--flag value" or "--flag=value"), into lifetime and lifetime_stagger. */
static int extra_args(slurm_opts *o, herd_err *err)
{
    const herd_value *a = o->worker_extra_args;
    for (size_t i = 0; i < herd_len(a); i++) {
        const char *s = herd_as_str(herd_at(a, i));
        if (!s)
            return herd_err_set(err, HERD_ECONFIG, "cluster_kwargs.worker_extra_args[%zu]: expected a string, "
                                "got %s", i, herd_type_name(herd_typeof(herd_at(a, i))));
        const char *eq = strchr(s, '=');
        size_t n = eq ? (size_t)(eq - s) : strlen(s);
        double *out = n == 10 && !strncmp(s, "--lifetime", n) ? &o->lifetime
                    : n == 18 && !strncmp(s, "--lifetime-stagger", n) ? &o->lifetime_stagger : NULL;
        if (!out)
            return herd_err_set(err, HERD_ECONFIG, "cluster_kwargs.worker_extra_args[%zu]: \"%.60s\": expected "
                                "--lifetime or --lifetime-stagger (herd workers take no other Dask flags)", i, s);
        herd_value *own = eq ? herd_str(eq + 1) : NULL;
        const herd_value *v = eq ? own : i + 1 < herd_len(a) ? herd_at(a, ++i) : NULL;
        int rc = v ? herd_value_duration(v, out) : -HERD_EARG;
        herd_value_free(own);
        if (rc)
            return herd_err_set(err, HERD_ECONFIG, "cluster_kwargs.worker_extra_args[%zu]: %.*s: expected a "
                                "duration after it, such as \"55m\"", i, (int)n, s);
    }
    return 0;
}

static bool one_line(const char *s) { return !s || !strpbrk(s, "\n\r"); }

int slurm_opts_load(const herd_value *kwargs, herd_value **validated, slurm_opts *o, herd_err *err)
{
    memset(o, 0, sizeof *o);
    int rc = herd_kwargs_load(slurm_params, kwargs, "cluster_kwargs", validated, o, sizeof *o, err);
    if (rc) return rc;
    if (o->memory == HERD_SIZE_AUTO || o->memory <= 0)
        return herd_err_set(err, HERD_ECONFIG, "cluster_kwargs.memory: expected the memory of one "
                            "job, such as \"4GiB\" or \"27GB\", got %s",
                            o->memory == HERD_SIZE_AUTO ? "\"auto\"" : "0");
    if (o->processes == 0) herd_nprocesses_nthreads(o->cores, &o->processes, NULL);
    if (o->processes > o->cores)
        return herd_err_set(err, HERD_ECONFIG, "cluster_kwargs.processes: %d workers per job with "
                            "cores %d: expected processes <= cores (each worker needs a thread)",
                            o->processes, o->cores);
    o->nthreads = o->cores / o->processes;
    o->worker_memory = o->memory / o->processes;
    o->job_cpu_n = o->job_cpu > 0 ? o->job_cpu : o->cores;
    if (o->job_mem) snprintf(o->job_mem_s, sizeof o->job_mem_s, "%.31s", o->job_mem);
    else slurm_format_mem(o->memory, o->job_mem_s, sizeof o->job_mem_s);
    if (!herd_name_prefix_ok(o->job_name) || strlen(o->job_name) > 24)
        return herd_err_set(err, HERD_ECONFIG, "cluster_kwargs.job_name: expected 1 to 24 letters, "
                            "digits, '_', '.' or '-', got \"%.60s\"", o->job_name);
    const struct { const char *k; const char *v; } ones[] = {
        { "queue", o->queue }, { "account", o->account }, { "walltime", o->walltime },
        { "job_mem", o->job_mem }, { "log_directory", o->log_directory }, { "shebang", o->shebang },
        { "local_directory", o->local_directory }, { "worker_command", o->worker_command },
    };
    for (size_t i = 0; i < sizeof ones / sizeof ones[0]; i++)
        if (!one_line(ones[i].v) || (ones[i].v && !*ones[i].v))
            return herd_err_set(err, HERD_ECONFIG, "cluster_kwargs.%s: \"%.60s\": expected one "
                                "non-empty line", ones[i].k, ones[i].v);
    if (strncmp(o->shebang, "#!", 2) != 0)
        return herd_err_set(err, HERD_ECONFIG, "cluster_kwargs.shebang: \"%.60s\": expected a line "
                            "starting with #!", o->shebang);
    if ((rc = extra_args(o, err))) return rc;
    if ((rc = check_lines(o->extra, "job_extra_directives", true, err)) ||
        (rc = check_lines(o->skip, "job_directives_skip", true, err)) ||
        (rc = check_lines(o->prologue, "job_script_prologue", false, err)) ||
        (rc = check_lines(o->epilogue, "job_script_epilogue", false, err)))
        return rc;
    return 0;
}
