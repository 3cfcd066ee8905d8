/* core/sched_control.c — what adaptive scaling and the cluster's owner ask of
 * the scheduler: the load snapshot, draining one worker, closing every worker;
 * run on the scheduler's thread for a remote client's OP_CONTROL (answered
 * with OP_REPLY) and for in-process callers (scheduler.c's synchronous calls). */
#include "sched_int.h"


/* A worker's own CONTROL "retire" (its --herd-lifetime passed): the same
 * drain as adaptive scaling's. It gets no new task, finishes its running
 * ones, moves the values only it holds that are still needed to other
 * workers (sched_retire.c), then is told to close; unlike a drain it goes
 * even when some cannot move (those are recomputed from their lineage if
 * still needed, sched_held.c). No reply. */
static void sch_retire_self(herd_sched *s, sworker *w, const herd_msg_control *m)
{
    if (w->closing) { w->keep_unique = 0; return; }
    int al = m->arg.len > 60 ? 60 : (int)m->arg.len;
    slog(s, HERD_LOG_INFO, "worker %s retiring: %.*s (%zu running tasks finish there first; then the values "
         "only it holds that are still needed move to other workers)", w->name, al, al ? m->arg.ptr : "asked",
         (size_t)w->running.len);
    s->lifetime_retired++;
    w->closing = 1;          /* it goes, whether or not its values find another holder */
    sch_retire_step(s, w);
    sch_worker_counts(s);
}

/* A remote client's OP_CONTROL, answered with OP_REPLY [op, seq, rc, payload].
 * The action comes first: it may send other messages (worker counts) on the
 * same connection, which must not land inside the reply. */
void sch_on_control(herd_sched *s, sworker *c, const herd_msg_control *m)
{
    if (c->role == ROLE_WORKER && m->verb.len == 6 && !memcmp(m->verb.ptr, "retire", 6)) {
        sch_retire_self(s, c, m);
        return;
    }
    if (c->role != ROLE_CLIENT || !c->conn) {
        slog(s, HERD_LOG_WARN, "control message from %s ignored: not a client", c->name);
        return;
    }
    uint64_t seq = m->seq;
    char *verb = herd_pstr_dup(m->verb), *arg = herd_pstr_dup(m->arg);
    if (verb && (!strcmp(verb, "note") || !strcmp(verb, "provider"))) {   /* notifications: no answer */
        int target = 0, have = 0, off = 0;
        if (!s->cfg.owned) slog(s, HERD_LOG_DEBUG, "client %s: %s ignored: this scheduler is shared", c->name, verb);
        else if (!strcmp(verb, "provider") ? herd_metrics_provider_set(&s->met, arg ? arg : "") != 0
                 : !arg || sscanf(arg, "%d %d %n", &target, &have, &off) < 2)
            slog(s, HERD_LOG_WARN, "client %s: a %s notification it cannot read", c->name, verb);
        else if (!strcmp(verb, "note")) herd_metrics_decision(&s->met, target, have, arg + off);
        free(verb);
        free(arg);
        return;
    }
    const char *v = verb ? verb : "", *error = NULL;
    int rc = 0, is_load = 0;
    char text[200] = "";
    struct evbuffer *big = NULL;       /* a long text answer ("report") */
    herd_sched_load l;
    memset(&l, 0, sizeof l);
    if (!strcmp(v, "load")) {
        sch_load_fn(s, &l);
        is_load = 1;
    } else if (!strcmp(v, "dashboard")) {
        if ((rc = sch_http_describe(s, text, sizeof text)))
            error = "this scheduler has no HTTP endpoint (dashboard_address, --dashboard-address)";
    } else if (!strcmp(v, "report")) {
        if (!(big = evbuffer_new()) || sch_report_json(s, "status", 0, 0, big)) {
            rc = -ENOMEM;
            error = "out of memory";
        }
    } else if ((!strcmp(v, "drain") || !strcmp(v, "close_workers")) && !s->cfg.owned) {
        rc = -HERD_EARG;
        error = "this scheduler is shared (not started for one cluster): a client may not drain or close its workers";
    } else if (!strcmp(v, "drain")) {
        if ((rc = sch_drain_now(s, arg ? arg : ""))) error = "no such worker is connected";
    } else if (!strcmp(v, "close_workers")) {
        char why[200];
        snprintf(why, sizeof why, "%s", arg && *arg ? arg : "cluster closing");
        slog(s, HERD_LOG_INFO, "client %s: closing every worker (%s)", c->name, why);
        sch_close_fn(s, why);
    } else {
        rc = -HERD_EARG;
        error = "unknown control verb: expected load, dashboard, report, drain or close_workers";
        slog(s, HERD_LOG_WARN, "client %s: unknown control verb \"%s\"", c->name, v);
    }
    if (c->conn) {
        herd_msg_reply r = { .seq = seq, .rc = rc, .error = herd_pstr_c(error), .has_load = is_load && !rc,
                             .text = herd_pstr_c(!rc && text[0] ? text : NULL) };
        if (!rc && big) {
            r.text.len = evbuffer_get_length(big);
            r.text.ptr = (const char *)evbuffer_pullup(big, -1);
        }
        if (r.has_load) r.load = l;
        herd_proto_pack_reply(herd_conn_buf(c->conn), &r);
        herd_conn_end(c->conn);
    }
    herd_sched_load_free(&l);
    if (big) evbuffer_free(big);
    free(verb);
    free(arg);
}

void sch_load_fn(herd_sched *s, void *arg)
{
    herd_sched_load *l = arg;
    double now = herd_now(), avg = s->avg_dur < 0 ? 0.5 : s->avg_dur;   /* Dask assumes 0.5 s unknown */
    l->waiting = (int)s->nstate[T_WAITING];      /* counted as states change: O(1) */
    l->ready = (int)(s->nstate[T_READY] + s->nstate[T_RETRY]);
    l->running = (int)s->nstate[T_RUNNING];
    l->avg_duration = s->avg_dur;
    l->task_seconds = (l->ready + l->running) * avg;
    l->lifetime_retired = s->lifetime_retired;
    size_t n = 0;
    for (sworker *w = s->workers; w; w = w->next)
        if (w->hello && w->role == ROLE_WORKER) n++;
    l->workers = calloc(n ? n : 1, sizeof *l->workers);
    for (sworker *w = s->workers; w && l->workers; w = w->next) {
        if (!w->hello || w->role != ROLE_WORKER) continue;
        herd_sched_wload *x = &l->workers[l->nworkers++];
        snprintf(x->name, sizeof x->name, "%s", w->name);
        x->nthreads = w->nthreads;
        x->busy = w->busy;
        x->closing = w->closing;
        x->idle_for = w->running.len ? 0 : now - w->idle_since;
        x->needed_bytes = sch_needed_bytes(s, w);
    }
}

/* Frees a snapshot (herd_sched_get_load, OP_CONTROL "load"). */
void herd_sched_load_free(herd_sched_load *l)
{
    free(l->workers);
    memset(l, 0, sizeof *l);
}

int sch_drain_now(herd_sched *s, const char *name)
{
    int rc = -HERD_EARG;
    for (sworker *w = s->workers; w; w = w->next) {
        if (!w->hello || w->role != ROLE_WORKER || strcmp(w->name, name)) continue;
        if (!w->closing) w->keep_unique = 1;
        w->closing = 1;
        sch_retire_step(s, w);
        rc = 0;
        break;
    }
    sch_worker_counts(s);
    return rc;
}

void sch_close_fn(herd_sched *s, void *arg)
{
    const char *reason = arg;
    sch_pull_held(s);
    s->closing_all = 1;
    for (sworker *w = s->workers; w; w = w->next) {
        if (!w->hello || w->role != ROLE_WORKER || !w->conn) continue;
        w->closing = 1;
        sch_send_close(w, reason);
        herd_conn_flush(w->conn);
    }
    sch_worker_counts(s);
}
