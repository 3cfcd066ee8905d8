/* core/metrics.h — what the scheduler counts for its HTTP endpoint (/metrics,
 * /api/v1, the live page): task groups by task name (current tasks per
 * state, cumulative ends, a duration histogram), the last task runs, and,
 * behind a mutex, the log tail and adaptive decisions (posted from other
 * threads). Counters move as states change: nothing here scans tasks.
 * Everything but the locked part belongs to the scheduler's thread. */
#ifndef HERD_METRICS_H
#define HERD_METRICS_H

#include "internal.h"
#include "kmap.h"

#include <pthread.h>
#include <stdint.h>

#define HERD_MET_NBUCKETS 9          /* duration histogram buckets, the last is +Inf */
#define HERD_MET_NRUNS    512        /* task runs kept (a ring) */
#define HERD_MET_NLOGS    100        /* log lines kept */
#define HERD_MET_NDECIDE  100        /* adaptive decisions kept */
#define HERD_MET_NPROV    256        /* provider status entries kept */
#define HERD_MET_MAXGROUPS 1000      /* more distinct task names share the group "(other)" */
extern const double herd_met_bounds[HERD_MET_NBUCKETS];   /* upper bounds, s; the last is +Inf */

typedef struct herd_mgroup {
    char *name;
    int64_t n[5];                    /* current tasks per scheduler state (T_WAITING..T_DONE) */
    uint64_t total;                  /* submitted */
    uint64_t ended[4];               /* ends by final state: completed, failed, crashed, cancelled */
    uint64_t buckets[HERD_MET_NBUCKETS];   /* successful attempts by duration (not cumulative) */
    double dur_sum;
    uint64_t dur_count;
    struct herd_mgroup *next;
} herd_mgroup;

typedef struct herd_mrun {
    char name[64], worker[64];
    double start, stop;              /* wall-clock seconds (epoch) */
    int ok;
} herd_mrun;

typedef struct herd_mlog { uint64_t seq; double t; int level; char line[240]; } herd_mlog;
typedef struct herd_mdecision { uint64_t seq; double t; int target, have; char reason[200]; } herd_mdecision;

typedef struct herd_metrics {
    herd_mgroup *groups;             /* newest first */
    herd_mgroup *last;               /* the group found last (one of groups) */
    size_t ngroups;
    kmap byhash;                     /* hash of the name -> a group of that hash */
    herd_mrun runs[HERD_MET_NRUNS];
    uint64_t nruns;                  /* runs ever recorded: runs[(nruns-1) % N] is the last */
    uint64_t transfers;              /* held inputs a worker had to fetch from another */
    uint64_t retire_moved, retire_moved_bytes;   /* values moved off retiring workers, and their bytes */
    uint64_t retire_fallbacks;       /* values a retiring worker could not hand over (recomputed if needed) */
    uint64_t transfer_bytes;
    uint64_t worker_joins, worker_losses;
    uint64_t suspicious;             /* tasks running on a worker that died (Dask's tasks_suspicious) */
    double t0;                       /* wall clock at start */
    /* posted from any thread: under mu */
    pthread_mutex_t mu;
    herd_mlog logs[HERD_MET_NLOGS];
    uint64_t nlogs;
    herd_mdecision dec[HERD_MET_NDECIDE];
    uint64_t ndec;
    int desired;                     /* the adaptive target; -1: none decided */
    char pname[64];                  /* the provider whose status list this is ("": none) */
    double pat;                      /* when it was listed */
    herd_worker_info *pinfo;         /* at most HERD_MET_NPROV entries */
    size_t npinfo;
} herd_metrics;

void herd_metrics_init(herd_metrics *m);
void herd_metrics_destroy(herd_metrics *m);
/* The group of a task name (created on first use; never NULL: falls back to
 * "(other)" past HERD_MET_MAXGROUPS or out of memory). */
herd_mgroup *herd_metrics_group(herd_metrics *m, const char *name);
/* One attempt ended on a worker: the run ring and, when ok, the histogram. */
void herd_metrics_run(herd_metrics *m, herd_mgroup *g, const char *worker, double dur, int ok);
/* From any thread. */
void herd_metrics_log(herd_metrics *m, int level, const char *line);
void herd_metrics_decision(herd_metrics *m, int target, int have, const char *reason);
void herd_metrics_provider(herd_metrics *m, const char *name, const herd_worker_info *info, size_t n);
/* The same list as text (JSON, malloc'd; NULL out of memory), which a client
 * sends a scheduler running elsewhere (OP_CONTROL "provider"), and that
 * text set as the list: 0, or -HERD_EPROTO for text it cannot read. */
char *herd_metrics_provider_text(const char *name, const herd_worker_info *info, size_t n);
int herd_metrics_provider_set(herd_metrics *m, const char *text);
double herd_wall_now(void);

#endif
