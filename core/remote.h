/* core/remote.h — a flow's connection to a scheduler it did not start in
 * this process (address mode, or one a provider runs): the client transport
 * over it, control calls, and the herd_sched_ops adaptive scaling uses. */
#ifndef HERD_REMOTE_H
#define HERD_REMOTE_H
#include "client.h"
#include "scheduler.h"
#include "security.h"
#include <msgpack.h>

typedef struct herd_remote herd_remote;
/* Dial address, say hello as a client, wait for the welcome (or refusal)
 * within timeout_s. Results for cl's futures are delivered to cl (borrowed
 * until herd_remote_close); cl->id is set to the key prefix the scheduler
 * gave. Set cl->tp = &herd_remote_tp and cl->tp_ud = the herd_remote after
 * this returns. */
int  herd_remote_connect(const char *address, const char *token, herd_tls *tls, const char *name,
                         double timeout_s, herd_client *cl, herd_remote **out, herd_err *err);
void herd_remote_close(herd_remote *r);
/* Connected workers (and *nthreads their threads), as the scheduler last said. */
int  herd_remote_workers(herd_remote *r, int *nthreads);
/* 1 when the scheduler was started for one cluster (--herd-scheduler):
 * its client may drain and close workers. */
int  herd_remote_owned(herd_remote *r);
int  herd_remote_wait_workers(herd_remote *r, int n, double timeout_s, herd_err *err);
/* The scheduler's messages to a client about its tasks (LOG, RESULT, HELD),
 * delivered to cl: a flow's remote connection and a worker's sub-task client
 * both take them here. cl NULL (a worker whose sub-task client is not set
 * up): read and dropped. 1 when op is one of them (handled), 0 when it is
 * another message, -1 when it does not unpack (e says why). */
int  herd_remote_client_msg(herd_client *cl, int op, const msgpack_object *m, herd_err *e);
extern const herd_transport herd_remote_tp;
/* A control call (OP_CONTROL): "load" (*load, may be NULL: the scheduler's
 * load, free with herd_sched_load_free), "dashboard" (*text: its HTTP
 * endpoint as sch_http_describe says it, malloc'd), "report" (*text: its
 * /api/v1/status JSON, malloc'd), "drain" NAME,
 * "close_workers" REASON (the last two only on a scheduler started for this
 * cluster). Waits for the answer up to timeout_s. */
int  herd_remote_control(herd_remote *r, const char *verb, const char *arg, double timeout_s,
                         herd_sched_load *load, char **text, herd_err *err);
/* A control notification (OP_CONTROL with seq 0: no answer): "note"
 * "TARGET HAVE REASON" (an adaptive decision), "provider" TEXT (the
 * provider's status list, herd_metrics_provider_text), for the dashboard of
 * a scheduler started for this cluster. 0, or -HERD_ECLOSED. */
int  herd_remote_notify(herd_remote *r, const char *verb, const char *arg);
/* herd_sched_ops over the connection (ud: the herd_remote), for adaptive
 * scaling of a cluster whose scheduler a provider runs remotely. */
extern const herd_sched_ops herd_remote_ops;
#endif
