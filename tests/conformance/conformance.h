/* tests/conformance/conformance.h — the provider conformance suite for the
 * in-tree cmocka tests: a thin wrapper over the suite itself
 * (core/cli/conformance.c, also what `herd providers test` runs), so the
 * rules live in one place. Include it in one test binary (its main must call
 * herd_init first: workers re-run that binary; the binary links
 * core/cli/conformance.o, see the Makefile) and call
 *
 *     conf_run_basic(&opts);       create + start -> workers connect, tasks run
 *     conf_run_lifecycle(&opts);   status, scale_up, retire, names, a worker killed, close
 *
 * from cmocka tests; a broken rule fails the test with the suite's message. */
#ifndef HERD_TEST_CONFORMANCE_H
#define HERD_TEST_CONFORMANCE_H

#include <herd/herd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/conformance.h"

typedef herd_conformance_opts conf_opts;

static inline void conf_report(void *ud, const herd_conformance_rule *rule, const char *outcome)
{
    fprintf(stderr, "conformance: %-14s %s\n", rule->id, outcome);
}

static inline void conf_run(const conf_opts *o, int (*run)(const herd_conformance_opts *, herd_err *))
{
    conf_opts x = *o;
    if (!x.report) x.report = conf_report;
    herd_err err = { 0 };
    if (run(&x, &err)) fail_msg("%s", err.msg);
}

static inline void conf_run_basic(const conf_opts *o) { conf_run(o, herd_conformance_basic); }
static inline void conf_run_lifecycle(const conf_opts *o) { conf_run(o, herd_conformance_lifecycle); }

/* ---- helpers for tests that drive a provider's hooks directly ---- */

#define CONF_OK(call, err) do {                                                      \
        if ((call) != 0) fail_msg("%s: %s", #call, (err).msg);                         \
    } while (0)

static inline double conf_now(void) { return herd_now(); }

static inline void conf_sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

typedef struct conf_status { herd_worker_info w[64]; size_t n; } conf_status;

static inline const herd_worker_info *conf_find(const conf_status *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->w[i].name, name) == 0) return &s->w[i];
    return NULL;
}

static inline bool conf_pid_gone(long pid)
{
    return kill((pid_t)pid, 0) != 0 && errno == ESRCH;   /* a zombie still answers */
}

#endif
