/* core/tmpdir.h — a temporary cluster's private directory
 * (/tmp/herd-<pid>-XXXXXX, mode 0700, where its scheduler's Unix socket
 * lives), and the sweep of those left by flow processes that are gone.
 * Hidden API, used by runner.c. */
#ifndef HERD_TMPDIR_H
#define HERD_TMPDIR_H

#include "internal.h"

/* Remove the directories of this user's flow processes that no longer
 * exist (a SIGKILLed flow cannot clean up), logging each through log/ud at
 * debug level, then make a fresh one for this process into out (cap >= 64).
 * 0, or an error naming the path. */
int herd_tmpdir_make(char *out, size_t cap, void (*log)(void *ud, int level, const char *line), void *ud,
                     herd_err *err);

/* Remove a cluster's private directory with what its scheduler and workers
 * leave there (the scheduler's socket, peer sockets, spill directories of
 * workers that were killed). 0 or -errno from rmdir. */
int herd_tmpdir_remove(const char *dir);

#endif
