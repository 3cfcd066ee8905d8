/* core/spill.h — a worker's memory under memory_limit, with Dask's
 * thresholds: held values spilled to files in a private directory (least
 * recently used first) above 60% of the limit in managed bytes or 70% in
 * RSS, no new task started above 80% (paused), and the RSS reading the
 * worker's 95% exit uses. Hidden API, used by worker.c and store.c. */
#ifndef HERD_SPILL_H
#define HERD_SPILL_H
#include "internal.h"
#include "store.h"

/* Fractions of memory_limit (Dask's distributed.worker.memory.*). */
#define HERD_MEM_TARGET 0.60   /* managed bytes above it: spill until under */
#define HERD_MEM_SPILL 0.70    /* RSS above it: spill until RSS is under the target */
#define HERD_MEM_PAUSE 0.80    /* RSS above it: paused (no new task) until under again */
#define HERD_MEM_TERMINATE 0.95

typedef struct herd_spill_cfg {
    int64_t memory_limit;          /* bytes, > 0 */
    const char *local_directory;   /* where the worker's spill directory goes; NULL: parent */
    const char *parent;            /* the default: the cluster's private directory; NULL: $TMPDIR or /tmp */
    const char *name;              /* the worker's, for the directory's name */
    /* a spill, pause or resume line (level, text), from any thread */
    void (*log)(void *ud, int level, const char *line);
    /* paused 1 above HERD_MEM_PAUSE, 0 once back under: from the monitor thread */
    void (*on_pause)(void *ud, int paused);
    void *ud;
} herd_spill_cfg;

typedef struct herd_spill herd_spill;

/* A worker's spiller and its monitor thread (every 100 ms: RSS against the
 * spill and pause thresholds). Its spill directory, herd-spill-<name>-XXXXXX
 * (mode 0700) under local_directory or parent, is made on the first spill;
 * an unusable local_directory is an error naming it now. Without a store
 * (st NULL: the worker holds no values) only the pause. */
int herd_spill_new(herd_spill **out, herd_store *st, const herd_spill_cfg *cfg, herd_err *err);
/* After a value joined the store: spill, in the caller's thread, while
 * managed bytes are over the target. */
void herd_spill_after_put(herd_spill *sp);
/* Is the worker paused (over HERD_MEM_PAUSE)? */
int herd_spill_paused(herd_spill *sp);
/* The spill directory's path ("" before the first spill, or without a store). */
const char *herd_spill_dir(herd_spill *sp);
/* Stop the monitor and remove the directory with every file in it; nothing
 * spills after this (a worker about to exit, whatever its executors still
 * do). The store's spilled blobs then find their files gone. */
void herd_spill_close(herd_spill *sp);
/* herd_spill_close, then free (before the store is freed). */
void herd_spill_free(herd_spill *sp);

/* This process's own resident memory in bytes (Dask's "process" memory): its
 * RSS less the pages of peers' memfds it maps (herd_peer_mapped_bytes, at
 * most its RssShmem: the holders' memory, counted once in their stores); 0
 * when /proc cannot be read. */
int64_t herd_rss_bytes(void);
#endif
