/* providers/local/local.h — what the LocalCluster files share: the machine's
 * size as Dask measures it (machine.c), for local.c. */
#ifndef HERD_LOCAL_H
#define HERD_LOCAL_H

#include <herd/provider.h>

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* dask.system.cpu_count(): online CPUs, capped by the affinity mask and the
 * cgroup CPU quota (rounded up). */
int local_cpu_count(void);
/* distributed.system.memory_limit(): physical memory, capped by cgroup
 * memory limits and RLIMIT_RSS. */
int64_t local_memory_limit(void);
/* Dask's nprocesses_nthreads(n): the default split of n cores into
 * processes and threads per process. */

#endif
