/* tests/support/slurm.h — a real single-node Slurm for the SLURMCluster
 * tests: tests/slurm/slurm.sh starts munged, slurmctld and slurmd with a
 * slurm.conf in a temporary directory (127.0.0.1; ports 20000-31999, below
 * the ephemeral range, a slot picked by this process's pid, the next one
 * when in use) and stops them; SLURM_CONF points this process (and so
 * sbatch, squeue, scancel and the jobs) at it; the directory's owner file
 * names this process, so the next start sweeps what a crashed test left.
 * tslurm_sh runs a Slurm client command and returns its output.
 *
 * Header-only (static), like testutil.h. Every function returns 0 or -1
 * with the reason in why. */
#ifndef HERD_TEST_SLURM_H
#define HERD_TEST_SLURM_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct tslurm {
    char dir[128];
    char conf[192];
    int port;
    bool up;
} tslurm;

/* Is everything there? false with the reason (what to install) in why. */
static inline bool tslurm_available(char *why, size_t cap)
{
    const char *bins[] = { "/usr/sbin/slurmctld", "/usr/sbin/slurmd", "/usr/sbin/munged", "/usr/bin/sbatch",
                           "/usr/bin/squeue", "/usr/bin/scancel", NULL };
    for (const char **b = bins; *b; b++)
        if (access(*b, X_OK) != 0) {
            snprintf(why, cap, "%s is not installed (apt-get install slurmctld slurmd slurm-client munge, "
                               "or make deps)", *b);
            return false;
        }
    if (geteuid() != 0) {
        snprintf(why, cap, "slurmd must run as root to start jobs (run the tests as root, as CI does)");
        return false;
    }
    return true;
}

static inline int tslurm_start(tslurm *s, char *why, size_t cap)
{
    memset(s, 0, sizeof *s);
    snprintf(s->dir, sizeof s->dir, "%s/herd-slurm.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    /* what a crashed run of a Slurm test left (its owner is gone) */
    char sweep[300];
    snprintf(sweep, sizeof sweep, "sh tests/slurm/slurm.sh sweep '%s' >/dev/null 2>&1",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (system(sweep) != 0) fprintf(stderr, "tslurm_start: %s failed\n", sweep);
    if (!mkdtemp(s->dir)) { snprintf(why, cap, "mkdtemp: failed"); return -1; }
    char owner[256], pid[32];
    snprintf(owner, sizeof owner, "%s/owner", s->dir);
    snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    FILE *of = fopen(owner, "w");
    if (!of || fputs(pid, of) < 0) { if (of) fclose(of); snprintf(why, cap, "cannot write %s", owner); return -1; }
    fclose(of);
    snprintf(s->conf, sizeof s->conf, "%s/slurm.conf", s->dir);
    /* ports below the ephemeral range, a slot of 41 picked by pid; a slot
     * in use (exit 3) moves to the next */
    for (int attempt = 0;; attempt++) {
        s->port = 20000 + (int)((getpid() + attempt * 37) % 240) * 50;
        char cmd[512];
        snprintf(cmd, sizeof cmd, "sh tests/slurm/slurm.sh start '%s' %d 2>&1", s->dir, s->port);
        FILE *p = popen(cmd, "r");
        if (!p) { snprintf(why, cap, "popen failed"); return -1; }
        char out[2048];
        size_t n = fread(out, 1, sizeof out - 1, p);
        out[n] = '\0';
        int st = pclose(p);
        if (st == 0) break;
        if (WIFEXITED(st) && WEXITSTATUS(st) == 3 && attempt < 8) continue;
        snprintf(why, cap, "tests/slurm/slurm.sh start failed: %.900s", out);
        return -1;
    }
    setenv("SLURM_CONF", s->conf, 1);
    s->up = true;
    return 0;
}

static inline void tslurm_stop(tslurm *s)
{
    if (!s->dir[0]) return;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "sh tests/slurm/slurm.sh stop '%s' >/dev/null 2>&1; rm -rf '%s'", s->dir, s->dir);
    if (system(cmd) != 0) fprintf(stderr, "tslurm_stop: %s failed\n", cmd);
    s->up = false;
    s->dir[0] = '\0';
}

/* Run a shell command (Slurm's clients find SLURM_CONF); its stdout and
 * stderr in out. The exit status, or -1. */
static inline int tslurm_sh(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static inline int tslurm_sh(char *out, size_t cap, const char *fmt, ...)
{
    char cmd[1024], full[1100];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    snprintf(full, sizeof full, "(%s) 2>&1", cmd);
    FILE *p = popen(full, "r");
    if (!p) return -1;
    char tmp[4096];
    size_t n = fread(tmp, 1, sizeof tmp - 1, p);
    tmp[n] = '\0';
    if (out && cap) {
        size_t k = n < cap - 1 ? n : cap - 1;
        memcpy(out, tmp, k);
        out[k] = '\0';
    }
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Whether the jobs' output files under dir (their log_directory) hold a
 * sanitizer report or a crash of a worker: the workers' stderr goes there,
 * not to the test's. The offending lines in out (empty: none). */
static inline bool tslurm_job_output_clean(const char *dir, char *out, size_t cap)
{
    out[0] = '\0';
    tslurm_sh(out, cap, "grep -rhE 'Sanitizer|runtime error|Segmentation fault|core dumped' '%s' 2>/dev/null | head -5",
              dir);
    return out[0] == '\0';
}

/* The jobs still active (pending, running, completing), one line each
 * ("ID STATE NAME"); "" when none. */
static inline void tslurm_active(char *out, size_t cap)
{
    tslurm_sh(out, cap, "squeue -h -r -t PENDING,RUNNING,COMPLETING,CONFIGURING,SUSPENDED -o '%%i %%T %%j'");
}

#endif
