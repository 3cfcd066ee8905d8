/* providers/local/local.h — what the LocalCluster files share: the machine's
 * size as Dask measures it (machine.c) and the process spawner (spawn.c). */
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
void local_nprocesses_nthreads(int n, int *procs, int *threads);

/* A thread that forks every worker process of one cluster. Workers get
 * PR_SET_PDEATHSIG(SIGKILL), which fires when the *thread* that forked them
 * exits: forking from one thread that lives until close() ties the workers'
 * lives to the cluster's, whichever thread calls scale_up. */
typedef struct local_spawner local_spawner;
int  local_spawner_new(local_spawner **out);
/* Fork and exec argv[0] (a path) with envp, in a new process group, stdin
 * /dev/null, other descriptors closed, signals unblocked. Returns 0 and *pid
 * once exec succeeded; -errno with a message in msg when it did not. */
int  local_spawn(local_spawner *s, char *const argv[], char *const envp[], pid_t *pid,
                 char *msg, size_t cap);
void local_spawner_free(local_spawner *s);

#endif
