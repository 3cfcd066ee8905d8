/* core/spill.c — a worker's memory under memory_limit (spill.h): its spill
 * directory, one file per spilled value (mode 0600, the value's packed
 * bytes), reading a spilled value back (a read-only mapping), and the
 * monitor thread that compares RSS with Dask's thresholds every 100 ms:
 * spilling (managed bytes over 60%, or RSS over 70%), pausing (RSS over
 * 80%) and resuming. The 95% exit stays in worker.c, on the worker's loop. */
#include "spill.h"
#include "value_int.h"
#include <herd/provider.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define MONITOR_MS 100         /* Dask's distributed.worker.memory.monitor-interval */
#define RETRY_S 5.0            /* after a failed write */

struct herd_spill {
    herd_spill_cfg cfg;
    herd_store *st;
    char parent[4000];         /* where dir goes ("": no store, nothing spills) */
    char dir[4096];            /* made on the first spill ("" until then; under mu) */
    char name[48];
    pthread_mutex_t mu;        /* one spiller at a time (an executor, the monitor) */
    uint64_t seq;              /* file names (under mu) */
    int full;                  /* a write failed (disk full?): no spilling until a FREE */
    size_t full_at;            /* makes room (fewer bytes spilled than then), or for RETRY_S */
    double full_since;
    int closed;                /* the directory is gone: spill no more (under mu) */
    pthread_mutex_t tmu;       /* the monitor thread's stop flag and wait */
    pthread_cond_t tcv;
    int stop;
    atomic_int paused;
    pthread_t thread;
    int has_thread;
};

static void slogf(herd_spill *sp, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void slogf(herd_spill *sp, int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    herd_vlogf(sp->cfg.log, sp->cfg.ud, level, fmt, ap);
    va_end(ap);
}

static double mib(int64_t n) { return (double)n / (1 << 20); }

/* The resident pages of shared memory (memfds) this process maps, in bytes:
 * RssShmem in /proc/self/status, or 0. */
static int64_t rss_shmem(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long long kib = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "RssShmem: %lld kB", &kib) == 1) break;
    if (f) fclose(f);
    return (int64_t)kib * 1024;
}

int64_t herd_rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, rss = 0;
    if (!f) return 0;
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2) rss = 0;
    fclose(f);
    int64_t own = (int64_t)rss * sysconf(_SC_PAGESIZE);
    /* peers' values mapped here: their pages are the holders' (data-plane.md
     * pitfall 3), resident here only where touched, hence at most RssShmem */
    int64_t peer = (int64_t)herd_peer_mapped_bytes();
    if (peer > 0) {
        int64_t shm = rss_shmem();
        own -= peer < shm ? peer : shm;
    }
    return own < 0 ? 0 : own;
}

int herd_local_directory_check(const char *field, const char *dir, herd_err *err)
{
    struct stat s;
    if (!field) field = "local_directory";
    if (!dir || !*dir)
        return herd_err_set(err, HERD_ECONFIG, "%s: expected a directory, got %s", field, dir ? "an empty string" : "null");
    if (stat(dir, &s))
        return herd_err_set(err, HERD_ECONFIG, "%s: \"%s\": %s (expected an existing, writable directory)", field, dir,
                            strerror(errno));
    if (!S_ISDIR(s.st_mode))
        return herd_err_set(err, HERD_ECONFIG, "%s: \"%s\" is not a directory (expected an existing, writable "
                            "directory)", field, dir);
    if (access(dir, W_OK | X_OK))
        return herd_err_set(err, HERD_ECONFIG, "%s: \"%s\" is not writable (%s; expected an existing, writable "
                            "directory)", field, dir, strerror(errno));
    return 0;
}

/* ---- one value to a file, and back ---- */
typedef struct fout { FILE *f; size_t n; } fout;

static int fout_write(void *ud, const char *buf, size_t len)
{
    fout *o = ud;
    if (len && fwrite(buf, 1, len, o->f) != len) return -1;
    o->n += len;
    return 0;
}

static int errno_or_eio(void) { return errno ? -errno : -EIO; }

/* Write b's packed bytes to path. 0 or -errno. */
static int write_blob(const char *path, const herd_blob *b)
{
    errno = 0;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return errno_or_eio();
    FILE *f = fdopen(fd, "w");
    if (!f) { int e = errno_or_eio(); close(fd); unlink(path); return e; }
    fout o = { f, 0 };
    int rc = 0;
    if (b->value) {
        msgpack_packer pk;
        msgpack_packer_init(&pk, &o, fout_write);
        if (herd_value_pack(&pk, b->value)) rc = ferror(f) ? errno_or_eio() : -EINVAL;
    } else if (fout_write(&o, b->data, b->len)) {
        rc = errno_or_eio();
    }
    if (!rc && o.n != b->len) rc = -EINVAL;      /* herd_wire_size and the packer disagree */
    if (fclose(f) && !rc) rc = errno_or_eio();
    if (rc) unlink(path);
    return rc;
}

/* ---- spilling ---- */
/* Spill the least recently used value in memory; sp->mu held. 1 if one
 * went to disk, 0 if none is left in memory or the write failed. */
static int spill_one(herd_spill *sp, const char *why)
{
    uint64_t key = 0;
    herd_blob *b = sp->closed || !sp->st ? NULL : herd_store_lru(sp->st, &key);
    if (!b) return 0;
    if (!sp->dir[0]) {             /* the first spill: the worker's directory */
        char dir[sizeof sp->dir];
        snprintf(dir, sizeof dir, "%s/herd-spill-%.40s-XXXXXX", sp->parent, sp->name);
        if (!mkdtemp(dir)) {
            slogf(sp, HERD_LOG_ERROR, "cannot spill: cannot create %s: %s; keeping values in memory", dir, strerror(errno));
            sp->full = 1;
            sp->full_at = 0;
            sp->full_since = herd_now();
            herd_blob_unref(b);
            return 0;
        }
        memcpy(sp->dir, dir, sizeof dir);
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/%016llx-%llu", sp->dir, (unsigned long long)key, (unsigned long long)++sp->seq);
    int rc = write_blob(path, b);
    herd_blob *s = rc ? NULL : calloc(1, sizeof *s);
    if (!rc && (!s || !(s->path = strdup(path)))) { free(s); s = NULL; unlink(path); rc = -ENOMEM; }
    if (rc) {
        slogf(sp, HERD_LOG_ERROR, "cannot spill a value of %.1f MiB to %s: %s; keeping it in memory", mib((int64_t)b->len),
              sp->dir, strerror(-rc));
        sp->full = 1;
        herd_store_stats(sp->st, NULL, NULL, &sp->full_at);
        sp->full_since = herd_now();
        herd_blob_unref(b);
        return 0;
    }
    atomic_init(&s->refs, 1);
    s->len = b->len;
    if (!herd_store_swap(sp->st, key, b, s)) {      /* freed meanwhile: nothing to keep */
        herd_blob_unref(s);                         /* deletes the file */
        herd_blob_unref(b);
        return 1;
    }
    size_t len = b->len;
    herd_blob_unref(b);                             /* its memory goes now, or when its last reader is done */
    size_t mem = 0;
    herd_store_stats(sp->st, NULL, &mem, NULL);
    slogf(sp, HERD_LOG_INFO, "spilled %.1f MiB (key %016llx) to %s: %s; managed memory now %.1f MiB",
          mib((int64_t)len), (unsigned long long)key, path, why, mib((int64_t)mem));
    return 1;
}

static int64_t target(const herd_spill *sp) { return (int64_t)(HERD_MEM_TARGET * (double)sp->cfg.memory_limit); }

static size_t managed(herd_spill *sp)
{
    size_t mem = 0, spilled = 0;
    if (sp->st) herd_store_stats(sp->st, NULL, &mem, &spilled);
    if (sp->full && (spilled < sp->full_at || herd_now() - sp->full_since > RETRY_S)) sp->full = 0;
    return mem;
}

void herd_spill_after_put(herd_spill *sp)
{
    if (!sp) return;
    pthread_mutex_lock(&sp->mu);
    while (!sp->full && (int64_t)managed(sp) > target(sp)) {
        char why[160];
        snprintf(why, sizeof why, "managed memory %.1f MiB is above %.0f%% of memory_limit %.1f MiB",
                 mib((int64_t)managed(sp)), HERD_MEM_TARGET * 100, mib(sp->cfg.memory_limit));
        if (!spill_one(sp, why)) break;
    }
    pthread_mutex_unlock(&sp->mu);
}

/* RSS over the spill threshold: spill until it is under the target or no
 * value is left in memory (Dask's memory monitor). */
static int64_t spill_for_rss(herd_spill *sp, int64_t rss)
{
    double limit = (double)sp->cfg.memory_limit;
    if ((double)rss <= HERD_MEM_SPILL * limit) return rss;
    pthread_mutex_lock(&sp->mu);
    while (!sp->full && (double)rss > HERD_MEM_TARGET * limit) {
        char why[160];
        snprintf(why, sizeof why, "process memory (RSS) %.1f MiB is above %.0f%% of memory_limit %.1f MiB", mib(rss),
                 HERD_MEM_SPILL * 100, mib(sp->cfg.memory_limit));
        if (!spill_one(sp, why)) break;
        rss = herd_rss_bytes();
    }
    pthread_mutex_unlock(&sp->mu);
    return rss;
}

static void check_pause(herd_spill *sp, int64_t rss)
{
    double limit = (double)sp->cfg.memory_limit;
    int over = (double)rss > HERD_MEM_PAUSE * limit;
    if (over == atomic_load(&sp->paused)) return;
    atomic_store(&sp->paused, over);
    /* PAUSE first: by the time the scheduler logs the line, it has read it */
    if (sp->cfg.on_pause) sp->cfg.on_pause(sp->cfg.ud, over);
    if (over)
        slogf(sp, HERD_LOG_WARN, "paused: process memory (RSS) %.1f MiB is above %.0f%% of memory_limit %.1f MiB; "
              "no new task starts here until it falls back", mib(rss), HERD_MEM_PAUSE * 100, mib(sp->cfg.memory_limit));
    else
        slogf(sp, HERD_LOG_INFO, "resumed: process memory (RSS) %.1f MiB is back under %.0f%% of memory_limit %.1f MiB",
              mib(rss), HERD_MEM_PAUSE * 100, mib(sp->cfg.memory_limit));
}

static void *monitor_main(void *arg)
{
    herd_spill *sp = arg;
    pthread_mutex_lock(&sp->tmu);
    while (!sp->stop) {
        struct timespec ts;
        herd_deadline(MONITOR_MS / 1000.0, &ts);
        pthread_cond_timedwait(&sp->tcv, &sp->tmu, &ts);
        if (sp->stop) break;
        pthread_mutex_unlock(&sp->tmu);
        herd_spill_after_put(sp);                   /* over the target still (a write had failed) */
        check_pause(sp, spill_for_rss(sp, herd_rss_bytes()));
        pthread_mutex_lock(&sp->tmu);
    }
    pthread_mutex_unlock(&sp->tmu);
    return NULL;
}

int herd_spill_new(herd_spill **out, herd_store *st, const herd_spill_cfg *cfg, herd_err *err)
{
    *out = NULL;
    const char *parent = cfg->local_directory ? cfg->local_directory : cfg->parent;
    if (!parent) parent = getenv("TMPDIR");
    if (!parent || !*parent) parent = "/tmp";
    int rc = st ? herd_local_directory_check(cfg->local_directory ? "local_directory" : "the spill directory's parent",
                                             parent, err) : 0;
    if (rc) return rc;
    herd_spill *sp = calloc(1, sizeof *sp);
    if (!sp) return herd_err_set(err, -ENOMEM, "out of memory");
    sp->cfg = *cfg;
    sp->st = st;
    sp->cfg.name = NULL;           /* borrowed: copied into the directory's name below */
    if (st) snprintf(sp->parent, sizeof sp->parent, "%s", parent);
    snprintf(sp->name, sizeof sp->name, "%s", cfg->name ? cfg->name : "worker");
    pthread_mutex_init(&sp->mu, NULL);
    pthread_mutex_init(&sp->tmu, NULL);
    herd_cond_init_monotonic(&sp->tcv);
    atomic_init(&sp->paused, 0);
    if ((rc = pthread_create(&sp->thread, NULL, monitor_main, sp))) {
        herd_spill_free(sp);             /* removes the directory */
        return herd_err_set(err, -rc, "cannot start the memory monitor thread: %s", strerror(rc));
    }
    sp->has_thread = 1;
    *out = sp;
    return 0;
}

int herd_spill_paused(herd_spill *sp) { return sp ? atomic_load(&sp->paused) : 0; }

const char *herd_spill_dir(herd_spill *sp)
{
    pthread_mutex_lock(&sp->mu);
    const char *d = sp->dir;
    pthread_mutex_unlock(&sp->mu);
    return d;
}

void herd_spill_close(herd_spill *sp)
{
    if (!sp) return;
    if (sp->has_thread) {
        pthread_mutex_lock(&sp->tmu);
        sp->stop = 1;
        pthread_cond_signal(&sp->tcv);
        pthread_mutex_unlock(&sp->tmu);
        pthread_join(sp->thread, NULL);
        sp->has_thread = 0;
    }
    pthread_mutex_lock(&sp->mu);
    if (sp->closed) { pthread_mutex_unlock(&sp->mu); return; }
    sp->closed = 1;
    DIR *d = sp->dir[0] ? opendir(sp->dir) : NULL;
    for (struct dirent *e; d && (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        char path[4400];
        snprintf(path, sizeof path, "%s/%s", sp->dir, e->d_name);
        unlink(path);
    }
    if (d) closedir(d);
    if (sp->dir[0]) rmdir(sp->dir);
    pthread_mutex_unlock(&sp->mu);
}

void herd_spill_free(herd_spill *sp)
{
    if (!sp) return;
    herd_spill_close(sp);
    pthread_mutex_destroy(&sp->mu);
    pthread_mutex_destroy(&sp->tmu);
    pthread_cond_destroy(&sp->tcv);
    free(sp);
}
