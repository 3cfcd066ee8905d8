/* providers/local/machine.c — how big this machine is, measured the way
 * Dask measures it, so LocalCluster picks Dask's defaults: CPU count
 * (dask/system.py cpu_count) and memory (distributed/system.py
 * memory_limit); the process/thread split is libherd's
 * herd_nprocesses_nthreads, shared with SLURMCluster. */
#include "local.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/sysinfo.h>
#include <unistd.h>

static int read_text(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, cap - 1, f);
    fclose(f);
    buf[n] = '\0';
    return 0;
}

int local_cpu_count(void)
{
    /* os.cpu_count() is sysconf(_SC_NPROCESSORS_ONLN) on Linux */
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1) n = 1;
    /* psutil.Process().cpu_affinity() */
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int a = CPU_COUNT(&set);
        if (a > 0 && a < n) n = a;
    }
    /* cgroups v1 quota / period, rounded up, as Dask does; cgroups v2 keeps
     * the same two numbers in cpu.max ("max" = no quota), which newer Dask
     * releases read too. */
    char q[64], p[64];
    const char *dirs[] = { "/sys/fs/cgroup/cpuacct,cpu", "/sys/fs/cgroup/cpu,cpuacct" };
    long quota = -1, period = 0;
    for (size_t i = 0; i < 2 && quota < 0; i++) {
        char qp[128], pp[128];
        snprintf(qp, sizeof qp, "%s/cpu.cfs_quota_us", dirs[i]);
        snprintf(pp, sizeof pp, "%s/cpu.cfs_period_us", dirs[i]);
        if (read_text(qp, q, sizeof q) == 0 && read_text(pp, p, sizeof p) == 0) {
            quota = strtol(q, NULL, 10);
            period = strtol(p, NULL, 10);
            break;
        }
    }
    if (quota < 0 && read_text("/sys/fs/cgroup/cpu.max", q, sizeof q) == 0 && strncmp(q, "max", 3) != 0)
        sscanf(q, "%ld %ld", &quota, &period);
    if (quota > 0 && period > 0) {
        long c = (quota + period - 1) / period;   /* ceil, without libm */
        if (c > 0 && c < n) n = c;
    }
    return (int)n;
}

int64_t local_memory_limit(void)
{
    /* psutil.virtual_memory().total */
    struct sysinfo si;
    int64_t limit = 0;
    if (sysinfo(&si) == 0) limit = (int64_t)si.totalram * (int64_t)si.mem_unit;
    if (limit <= 0) limit = (int64_t)sysconf(_SC_PHYS_PAGES) * (int64_t)sysconf(_SC_PAGESIZE);
    const char *paths[] = {
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",       /* cgroups v1 hard limit */
        "/sys/fs/cgroup/memory/memory.soft_limit_in_bytes",  /* cgroups v1 soft limit */
        "/sys/fs/cgroup/memory.max",                         /* cgroups v2 hard limit */
        "/sys/fs/cgroup/memory.high",                        /* cgroups v2 soft limit */
    };
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        char buf[64], *end;
        if (read_text(paths[i], buf, sizeof buf) != 0) continue;
        long long v = strtoll(buf, &end, 10);   /* "max" does not parse: no limit */
        if (end != buf && v > 0 && v < limit) limit = v;
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_RSS, &rl) == 0 && rl.rlim_max != RLIM_INFINITY &&
        rl.rlim_max > 0 && (int64_t)rl.rlim_max < limit)
        limit = (int64_t)rl.rlim_max;
    return limit;
}
