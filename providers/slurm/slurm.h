/* providers/slurm/slurm.h — what the files of slurm.SLURMCluster share: the
 * bound cluster_kwargs (options.c), the job script (script.c), running
 * sbatch/squeue/scancel (cmd.c) and the cluster with its jobs and workers
 * (slurm.c). Not installed: the provider's own header. */
#ifndef HERD_SLURM_H
#define HERD_SLURM_H

#include <herd/provider.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* cluster_kwargs after dask-jobqueue's SLURMCluster, bound by herd_kwargs_bind;
 * pointers borrow from the validated map (slurm_opts_load keeps it). */
typedef struct slurm_opts {
    int cores;                          /* per job */
    int64_t memory;                     /* bytes per job */
    int processes;                      /* workers per job; 0: null (dask-jobqueue's sqrt rule) */
    const char *queue, *account, *walltime, *job_mem, *job_name;
    int job_cpu;                        /* 0: null (cores) */
    const herd_value *extra, *skip, *prologue, *epilogue;   /* lists of strings */
    const char *log_directory, *shebang, *local_directory;
    int n_workers;
    const char *worker_command, *interface, *submit_command, *cancel_command, *queue_command;
    double poll_interval, pending_report;
    double lifetime, lifetime_stagger;  /* seconds, 0: none (the workers' HERD_LIFETIME) */
    const herd_value *worker_extra_args;   /* dask-jobqueue's flags: the lifetime ones */
    int job_cpu_n;                      /* derived: --cpus-per-task */
    char job_mem_s[32];                 /* derived: --mem */
    int nthreads;                       /* derived: cores / processes */
    int64_t worker_memory;              /* derived: memory / processes */
} slurm_opts;

extern const herd_param slurm_params[];

/* Validate and bind kwargs (every check the schema cannot make: memory not
 * "auto", processes <= cores, strings in the lists, the job name) and fill
 * the derived fields. *validated owns what o borrows. */
int slurm_opts_load(const herd_value *kwargs, herd_value **validated, slurm_opts *o, herd_err *err);
/* dask-jobqueue's slurm_format_bytes_ceil: 27G, 512M, 4K. */
void slurm_format_mem(int64_t bytes, char *out, size_t cap);

/* The batch script for one submission: header (#SBATCH lines, minus those
 * job_directives_skip names, plus job_extra_directives), prologue, one line
 * per worker process, the wait loop, epilogue. worker_argv is the command
 * herd_worker_argv wrote (its --herd-name value is replaced by each
 * process's name); job_name is the cluster's Slurm job name. Malloc'd. */
int slurm_job_script(const slurm_opts *o, const char *const *worker_argv, const char *job_name,
                     char **out, herd_err *err);
/* The signal the batch shell maps to "stop worker process p" (SIGRTMIN+p). */
int slurm_stop_signal(int p);

/* Run a Slurm command: argv with env additions, input on stdin (or none),
 * stdout into out (NUL-terminated, truncated to cap); at most timeout
 * seconds. 0 when it ran and exited 0; else a negative code with err naming
 * the command, how it ended and what it printed on stderr (else stdout). */
int slurm_run(const char *const *argv, const char *const *env, const char *input, char *out, size_t cap,
              double timeout, herd_err *err);

#endif
