/* core/worker_mem.c — the worker's memory: the monitor that exits a worker
 * process over memory_limit (telling the scheduler why), and the spiller
 * (spill.c) of its store with its log lines and pause (PAUSE). */
#include "worker_int.h"
#include "tmpdir.h"

#include <unistd.h>

/* Over memory_limit: the scheduler is told why (CLOSE from a worker: its
 * last words, which its death and rescheduling messages then give instead of
 * "connection closed by peer"), and the worker exits as soon as that has
 * left the process, or after MEM_EXIT_WAIT_MS whatever happened to it. */
#define MEM_EXIT_WAIT_MS 1000

void wk_mem_cb(evutil_socket_t fd, short what, void *arg)
{
    wk *w = arg;
    if (w->mem_exit_ticks) {                     /* CLOSE sent: waiting for it to leave */
        if (!herd_conn_queued(w->conn) || ++w->mem_exit_ticks > MEM_EXIT_WAIT_MS)
            _exit(HERD_WORKER_EXIT_MEMORY_LIMIT);
        return;
    }
    int64_t rss = herd_rss_bytes();
    if (w->cfg.memory_limit > 0 && rss > w->cfg.memory_limit) {
        wlog(w, HERD_LOG_ERROR, "memory %lld bytes exceeds memory_limit %lld; exiting so its tasks run elsewhere",
             (long long)rss, (long long)w->cfg.memory_limit);
        if (!w->conn) _exit(HERD_WORKER_EXIT_MEMORY_LIMIT);
        char why[128];
        snprintf(why, sizeof why, "exceeded memory_limit %lld MiB (RSS %lld MiB)",
                 (long long)(w->cfg.memory_limit >> 20), (long long)(rss >> 20));
        herd_msg_reason m = { herd_pstr_c(why) };
        if (herd_proto_pack_close(herd_conn_buf(w->conn), &m)) _exit(HERD_WORKER_EXIT_MEMORY_LIMIT);
        herd_conn_flush(w->conn);
        if (!herd_conn_queued(w->conn)) _exit(HERD_WORKER_EXIT_MEMORY_LIMIT);
        w->mem_exit_ticks = 1;                   /* now every millisecond until it is out */
        struct timeval tv = { 0, 1000 };
        event_del(w->mem_ev);
        event_add(w->mem_ev, &tv);
    }
}

/* The spiller's lines go to this worker's log and, as a LOG without a task,
 * to the scheduler's (the flow's log for a temporary cluster). */
static void spill_log(void *ud, int level, const char *line)
{
    wk *w = ud;
    wlog(w, level, "%s", line);
    herd_msg_log m = { 0, level, herd_pstr_c(line) };
    pthread_mutex_lock(&w->mu);
    herd_proto_pack_log(&w->out.sb, &m);
    herd_outbox_send_unlock(&w->out);
}

/* Paused: executors start no task and the scheduler sends none (PAUSE). */
static void spill_pause(void *ud, int paused)
{
    wk *w = ud;
    herd_msg_pause m = { paused };
    pthread_mutex_lock(&w->mu);
    w->paused = paused;
    if (!paused) pthread_cond_broadcast(&w->cv);
    herd_proto_pack_pause(&w->out.sb, &m);
    herd_outbox_send_unlock(&w->out);
}

/* Under memory_limit (a worker process): the spiller of its store, by
 * default in the cluster's private directory (where the peer socket is) or,
 * with the scheduler over TCP/TLS, in a private directory of this worker's
 * own (tmpdir.c: mode 0700, removed when it leaves, swept by the next
 * herd process if it was killed); without a store (results travel inline)
 * the pause alone. */
void wk_start_memory(wk *w)
{
    if (w->cfg.memory_limit <= 0) return;
    char parent[200] = "";
    const char *slash;
    herd_addr a;
    if (w->store && herd_addr_parse(w->address, &a, NULL) == 0 && a.is_unix && (slash = strrchr(a.path, '/')))
        snprintf(parent, sizeof parent, "%.*s", (int)(slash - a.path), a.path);
    herd_err e;
    if (w->store && !parent[0] && !w->cfg.local_directory) {
        if (herd_tmpdir_make(w->spill_tmp, sizeof w->spill_tmp, spill_log, w, &e))
            wlog(w, HERD_LOG_WARN, "spilling to $TMPDIR or /tmp: %s", e.msg);
        else
            snprintf(parent, sizeof parent, "%s", w->spill_tmp);
    }
    herd_spill_cfg sc = { .memory_limit = w->cfg.memory_limit, .local_directory = w->cfg.local_directory,
                          .parent = parent[0] ? parent : NULL, .name = w->name, .log = spill_log,
                          .on_pause = spill_pause, .ud = w };
    if (herd_spill_new(&w->spill, w->store, &sc, &e) == 0) return;
    wlog(w, HERD_LOG_ERROR, "held values will not be spilled to disk: %s", e.msg);
    if (w->store && herd_spill_new(&w->spill, NULL, &sc, &e))
        wlog(w, HERD_LOG_ERROR, "no memory monitor (pausing): %s", e.msg);
}
