/* providers/slurm/script.c — the batch script of a SLURMCluster job, as
 * dask-jobqueue's Job._script_template lays it out: the shebang, #SBATCH
 * lines (minus job_directives_skip, plus job_extra_directives), the
 * prologue, then `processes` herd workers started in the background, each
 * named <job_name>-<job id>-<array index>-<process> and watched by a
 * subshell, a wait for all of them, the epilogue, and the exit status of
 * the first worker that failed. A worker stopped alone by retire gets
 * SIGTERM through SIGRTMIN+p sent to the batch shell (scancel --batch); a
 * worker that fails (a signal, a non-zero status such as the memory
 * limit's) ends the job, so the job's state and exit code say what
 * happened and all its workers are replaced together. POSIX sh, so any
 * shebang works. The token is not in it: the workers get it from the environment
 * sbatch exports (see slurm.c). */
#include "slurm.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int slurm_stop_signal(int p) { return SIGRTMIN + p; }

/* s single-quoted for sh. */
static void quote(FILE *f, const char *s)
{
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'') fputs("'\\''", f);
        else fputc(*s, f);
    }
    fputc('\'', f);
}

static bool skipped(const slurm_opts *o, const char *line)
{
    for (size_t i = 0; i < herd_len(o->skip); i++) {
        const char *s = herd_as_str(herd_at(o->skip, i));
        if (s && *s && strstr(line, s)) return true;
    }
    return false;
}

__attribute__((format(printf, 3, 4)))
static void directive(FILE *f, const slurm_opts *o, const char *fmt, ...)
{
    char line[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (!skipped(o, line)) fprintf(f, "#SBATCH %s\n", line);
}

static void lines(FILE *f, const herd_value *v)
{
    for (size_t i = 0; i < herd_len(v); i++) fprintf(f, "%s\n", herd_as_str(herd_at(v, i)));
}

int slurm_job_script(const slurm_opts *o, const char *const *wargv, const char *job_name, char **out,
                     herd_err *err)
{
    *out = NULL;
    if (!wargv || !wargv[0]) return herd_err_set(err, HERD_EPROVIDER, "SLURMCluster: empty worker command");
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return herd_err_set(err, -ENOMEM, "SLURMCluster: out of memory");
    fprintf(f, "%s\n\n", o->shebang);
    directive(f, o, "-J %s", job_name);
    if (o->log_directory) {
        directive(f, o, "-e %s/%s-%%A_%%a.err", o->log_directory, job_name);
        directive(f, o, "-o %s/%s-%%A_%%a.out", o->log_directory, job_name);
    }
    if (o->queue) directive(f, o, "-p %s", o->queue);
    if (o->account) directive(f, o, "-A %s", o->account);
    directive(f, o, "-n 1");
    directive(f, o, "-N 1");
    directive(f, o, "--cpus-per-task=%d", o->job_cpu_n);
    directive(f, o, "--mem=%s", o->job_mem_s);
    if (o->walltime) directive(f, o, "-t %s", o->walltime);
    for (size_t i = 0; i < herd_len(o->extra); i++)
        fprintf(f, "#SBATCH %s\n", herd_as_str(herd_at(o->extra, i)));
    fputc('\n', f);
    lines(f, o->prologue);
    if (o->local_directory) {
        fputs("mkdir -p ", f);
        quote(f, o->local_directory);
        fputs(" && export TMPDIR=", f);
        quote(f, o->local_directory);
        fputc('\n', f);
    }
    if (o->lifetime > 0)   /* the workers read them (herd_worker_spec has no field for them) */
        fprintf(f, "export HERD_LIFETIME=%.17g HERD_LIFETIME_STAGGER=%.17g\n", o->lifetime, o->lifetime_stagger);
    fputs("herd_failed=$(mktemp \"${TMPDIR:-/tmp}/herd-job.XXXXXX\") || exit 1\n", f);
    fputs("herd_name=", f);
    quote(f, o->job_name);
    fputs("-\"${SLURM_ARRAY_JOB_ID:-$SLURM_JOB_ID}-${SLURM_ARRAY_TASK_ID:-0}\"\n", f);
    /* herd_wait PID: its exit status, waiting through the traps (a trap
     * interrupts wait; the last wait gives the status the shell kept) */
    fputs("herd_wait() { while kill -0 \"$1\" 2>/dev/null; do wait \"$1\"; done; wait \"$1\"; }\n", f);
    /* the traps first (a subshell starts with the default ones): SIGRTMIN+p
     * stops worker p (retire), TERM (scancel) and USR1 (a worker failed)
     * stop them all */
    for (int p = 0; p < o->processes; p++)
        fprintf(f, "trap 'kill -TERM $herd_pid%d 2>/dev/null' %d\n", p, slurm_stop_signal(p));
    fputs("herd_all() { kill -TERM", f);
    for (int p = 0; p < o->processes; p++) fprintf(f, " $herd_pid%d", p);
    fputs(" 2>/dev/null; }\ntrap herd_all TERM USR1\n", f);
    for (int p = 0; p < o->processes; p++) {
        /* each worker in a subshell that passes SIGTERM on (a stop on
         * purpose exits 0) and, when its worker fails, ends the job */
        fputs("(\n    trap 'herd_stop=1; kill -TERM $herd_w 2>/dev/null' TERM\n    ", f);
        bool name_next = false;
        for (size_t i = 0; wargv[i]; i++) {
            if (i) fputc(' ', f);
            if (name_next) fprintf(f, "\"$herd_name-%d\"", p);
            else quote(f, i == 0 && o->worker_command ? o->worker_command : wargv[i]);
            name_next = strcmp(wargv[i], "--herd-name") == 0;
        }
        fputs(" &\n    herd_w=$!\n    herd_wait $herd_w; herd_r=$?\n"
              "    [ -n \"$herd_stop\" ] && exit 0\n", f);
        fprintf(f, "    if [ $herd_r -ne 0 ]; then\n"
                   "        echo \"herd: worker $herd_name-%d exited with status $herd_r: ending the job\" >&2\n"
                   "        [ -s \"$herd_failed\" ] || echo $herd_r >\"$herd_failed\"\n"
                   "        kill -USR1 $$\n    fi\n    exit $herd_r\n) &\nherd_pid%d=$!\n", p, p);
    }
    fputs("herd_rc=0\n", f);
    for (int p = 0; p < o->processes; p++)
        fprintf(f, "herd_wait $herd_pid%d; herd_r=$?; [ $herd_rc -eq 0 ] && herd_rc=$herd_r\n", p);
    /* the job's status: the first worker that failed, as it wrote it */
    fputs("[ -s \"$herd_failed\" ] && herd_rc=$(cat \"$herd_failed\")\nrm -f \"$herd_failed\"\n", f);
    lines(f, o->epilogue);
    fputs("exit $herd_rc\n", f);
    if (fclose(f) != 0 || !buf) {
        free(buf);
        return herd_err_set(err, -ENOMEM, "SLURMCluster: out of memory");
    }
    *out = buf;
    return 0;
}
