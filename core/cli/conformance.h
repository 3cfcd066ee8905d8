/* core/cli/conformance.h — the provider conformance suite: the rules every
 * provider must follow (herd_conformance_rules, the one list docs/providers.md
 * repeats), checked against a real cluster through the public API only (the
 * runner, and the provider's own hooks). `herd providers test` runs it on any
 * provider by name or path; tests/conformance/conformance.h wraps the same
 * functions for the in-tree cmocka tests.
 *
 * The program that runs the suite must call herd_init first in main: the
 * provider starts its workers by running that program again, and the suite's
 * tasks (conf_square, conf_slow_square) are compiled in with it. */
#ifndef HERD_CLI_CONFORMANCE_H
#define HERD_CLI_CONFORMANCE_H

#include <herd/herd.h>

/* Whether the pids a provider's status reports are processes on this
 * machine, which the suite may then check and kill. */
enum {
    HERD_CONF_PIDS_AUTO,     /* yes if each is a local process running that worker (/proc) */
    HERD_CONF_PIDS_LOCAL,    /* yes, and it is a rule violation if they are not */
    HERD_CONF_PIDS_REMOTE,   /* no: the rules about processes are skipped */
};

typedef struct herd_conformance_rule {
    const char *id;          /* short, stable: "retire_unknown" */
    const char *text;        /* what the provider must do */
} herd_conformance_rule;

/* Every rule, in the order the suite checks them; ends with { NULL, NULL }. */
extern const herd_conformance_rule herd_conformance_rules[];

typedef struct herd_conformance_opts {
    const char *cluster_class;        /* a name or "path.so:Class" to resolve, or */
    const herd_provider *provider;    /* the provider itself */
    const char *kwargs;               /* cluster_kwargs YAML; must start n_initial workers */
    int n_initial;                    /* how many workers kwargs start (>= 1) */
    int pids;                         /* HERD_CONF_PIDS_* */
    double timeout;                   /* seconds for each wait */
    /* Called once per rule checked: outcome "ok", or "skipped: <why>".
     * Optional. A violated rule is not reported here: the run stops and
     * its error names the rule. */
    void (*report)(void *ud, const herd_conformance_rule *rule, const char *outcome);
    void *ud;
} herd_conformance_opts;

/* The runner path: resolve the provider by name (or take the pointer),
 * start a flow run on its cluster, run tasks, end the run. Rules start, run.
 * Returns 0, or a negative code with err naming the rule broken. */
int herd_conformance_basic(const herd_conformance_opts *o, herd_err *err);

/* The hooks path: the same flow run, with the cluster's hooks in hand
 * (status, scale_up, retire, a worker killed, close). Every other rule. One
 * lifecycle run at a time per process (the cluster factory has no user
 * data, so the run in progress is held under a mutex). */
int herd_conformance_lifecycle(const herd_conformance_opts *o, herd_err *err);

#endif
