/* core/tmpdir.c — a temporary cluster's private directory: named
 * /tmp/herd-<pid>-XXXXXX after the flow process that owns it, so that the
 * next flow start can remove the ones whose process is gone. A directory
 * whose pid is alive (or belongs to someone we cannot signal) or another
 * user's is never touched; a reused pid only keeps a stale one longer. */
#include "tmpdir.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The files of dir/name, a worker's spill directory (spill.c), and it. */
static void remove_spill_dir(const char *dir, const char *name)
{
    char path[600], f[900];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    DIR *d = opendir(path);
    for (struct dirent *e; d && (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        snprintf(f, sizeof f, "%s/%s", path, e->d_name);
        unlink(f);
    }
    if (d) closedir(d);
    rmdir(path);
}

int herd_tmpdir_remove(const char *dir)
{
    char path[600];
    snprintf(path, sizeof path, "%s/scheduler.sock", dir);
    unlink(path);
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));) {
        long wpid;
        unsigned n;
        char end[8];
        if (sscanf(e->d_name, "peer-%ld-%u%7s", &wpid, &n, end) == 3 && strcmp(end, ".sock") == 0) {
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);   /* a worker's peer socket (peer.c) */
            unlink(path);
        } else if (strncmp(e->d_name, "herd-spill-", 11) == 0) {
            remove_spill_dir(dir, e->d_name);                       /* a killed worker's spill files */
        }
    }
    if (d) closedir(d);
    return rmdir(dir) ? -errno : 0;
}

static void sweep(void (*log)(void *, int, const char *), void *ud)
{
    DIR *d = opendir("/tmp");
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        long pid;
        char tail[16];
        if (sscanf(e->d_name, "herd-%ld-%15s", &pid, tail) != 2 || strlen(tail) != 6 || pid <= 1 || pid == getpid())
            continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;   /* alive, or not ours to signal */
        char path[300];
        snprintf(path, sizeof path, "/tmp/%s", e->d_name);
        struct stat st;
        if (lstat(path, &st) || !S_ISDIR(st.st_mode) || st.st_uid != geteuid()) continue;
        if (herd_tmpdir_remove(path) == 0)
            herd_logf(log, ud, HERD_LOG_DEBUG, "removed %s, left by flow process %ld, which is gone", path, pid);
    }
    closedir(d);
}

int herd_tmpdir_make(char *out, size_t cap, void (*log)(void *ud, int level, const char *line), void *ud,
                     herd_err *err)
{
    sweep(log, ud);
    snprintf(out, cap, "/tmp/herd-%ld-XXXXXX", (long)getpid());
    if (!mkdtemp(out)) {
        int e = errno;
        out[0] = '\0';
        return herd_err_set(err, -e, "cannot create a socket directory /tmp/herd-%ld-XXXXXX: %s", (long)getpid(),
                            strerror(e));
    }
    return 0;
}
