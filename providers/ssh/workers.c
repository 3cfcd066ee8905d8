/* providers/ssh/workers.c — SSHCluster's workers as a whole: placing them
 * (least loaded working host first), uploading the program where asked
 * (all hosts in parallel), starting a batch (ssh_scale: one session per
 * host, per-host failures reported and the workers placed again on the
 * others; ssh_prewarm opens the sessions early when the scheduler runs on
 * scheduler_host) and stopping them for certain (ssh_stop_workers: "stop I"
 * or the end of a session's stdin, then ssh itself, then a kill of the
 * remote pids over a fresh session when their end was not seen). */
#include "ssh.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* details are cut to the fixed size of herd_worker_info: truncation there
 * is intended */
#pragma GCC diagnostic ignored "-Wformat-truncation"

/* ---- placing ---- */

static sworker *add_worker(herd_cluster *c, shost *h)
{
    if (c->nw == c->capw) {
        size_t cap = c->capw ? 2 * c->capw : 8;
        sworker **n = realloc(c->w, cap * sizeof *n);
        if (!n) return NULL;
        c->w = n;
        c->capw = cap;
    }
    sworker *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    snprintf(w->name, sizeof w->name, "%s-%lu", c->set.prefix, c->next_id++);
    w->c = c;
    w->h = h;
    w->state = HERD_WORKER_STARTING;
    w->counted = true;
    h->live++;
    c->w[c->nw++] = w;
    return w;
}

/* The least loaded host that works (earlier hosts first on ties). */
static shost *pick_host(herd_cluster *c)
{
    shost *best = NULL;
    for (size_t i = 0; i < c->set.nh; i++)
        if (!c->set.hosts[i].dead && (!best || c->set.hosts[i].live < best->live)) best = &c->set.hosts[i];
    return best;
}

/* ---- upload ---- */

typedef struct prep { herd_cluster *c; shost *h; pthread_t th; int rc; char msg[400]; } prep;

static void *prepare_host(void *arg)
{
    prep *p = arg;
    herd_cluster *c = p->c;
    shost *h = p->h;
    const char *prog = c->env->worker_argv[0];
    const char *local[64], *names[64];
    char *owned[64];
    size_t n = 0, no = 0;
    const char *base = strrchr(prog, '/') ? strrchr(prog, '/') + 1 : prog;
    char *nm;
    if (asprintf(&nm, "bin/%s", base) < 0) { p->rc = -ENOMEM; return NULL; }
    owned[no++] = nm;
    local[n] = prog; names[n++] = nm;
    /* libherd.so, when the program links it dynamically: bin/../lib is on
     * its rpath ($ORIGIN/../lib, as in the build tree) */
    Dl_info di;
    char exe[PATH_MAX], lib[PATH_MAX];
    ssize_t el = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[el > 0 ? el : 0] = '\0';
    if (dladdr((void *)&herd_log, &di) && di.dli_fname && realpath(di.dli_fname, lib) && strcmp(lib, exe) != 0) {
        const char *lb = strrchr(di.dli_fname, '/') ? strrchr(di.dli_fname, '/') + 1 : di.dli_fname;
        if (asprintf(&nm, "lib/%s", lb) >= 0) { owned[no++] = nm; local[n] = di.dli_fname; names[n++] = nm; }
    }
    for (char **f = c->set.upload_files; f && *f && n < 64; f++) {
        const char *b = strrchr(*f, '/') ? strrchr(*f, '/') + 1 : *f;
        if (asprintf(&nm, "plugins/%s", b) >= 0) { owned[no++] = nm; local[n] = *f; names[n++] = nm; }
    }
    int copied = 0, skipped = 0;
    p->rc = ssh_upload(&c->set.so, h->host, h->user[0] ? h->user : NULL, h->port, c->set.upload_dir, local, names, n,
                       &copied, &skipped, c->env, p->msg, sizeof p->msg);
    if (!p->rc) {
        snprintf(h->prog, sizeof h->prog, "%s/%s", c->set.upload_dir, names[0]);
        if (c->set.upload_files[0]) snprintf(h->plugin_dir, sizeof h->plugin_dir, "%s/plugins", c->set.upload_dir);
        herd_log(c->env, HERD_LOG_INFO, "SSHCluster: %s: upload: %d file%s copied, %d up to date", h->spec,
                 copied, copied == 1 ? "" : "s", skipped);
    }
    for (size_t i = 0; i < no; i++) free(owned[i]);
    return NULL;
}

int ssh_prepare_host(herd_cluster *c, shost *h, char *msg, size_t cap)
{
    prep p = { .c = c, .h = h };
    prepare_host(&p);
    snprintf(msg, cap, "%s", p.msg);
    return p.rc;
}

/* Upload to the hosts that need it, in parallel; hosts that fail are dead. */
static void prepare_hosts(herd_cluster *c)
{
    prep *ps = calloc(c->set.nh, sizeof *ps);
    if (!ps) return;
    size_t k = 0;
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < c->set.nh; i++) {
        shost *h = &c->set.hosts[i];
        if (h->prepared || h->dead || h->live == 0) continue;
        if (!c->set.upload) {
            snprintf(h->prog, sizeof h->prog, "%s", c->set.remote_command ? c->set.remote_command : c->env->worker_argv[0]);
            h->prepared = true;
            continue;
        }
        ps[k].c = c;
        ps[k].h = h;
        k++;
    }
    pthread_mutex_unlock(&c->mu);
    for (size_t i = 0; i < k; i++)
        if (pthread_create(&ps[i].th, NULL, prepare_host, &ps[i]) != 0) { prepare_host(&ps[i]); ps[i].th = 0; }
    for (size_t i = 0; i < k; i++) {
        if (ps[i].th) pthread_join(ps[i].th, NULL);
        pthread_mutex_lock(&c->mu);
        if (ps[i].rc) {
            ps[i].h->dead = true;
            snprintf(ps[i].h->why, sizeof ps[i].h->why, "upload: %s", ps[i].msg);
        } else {
            ps[i].h->prepared = true;
        }
        pthread_mutex_unlock(&c->mu);
    }
    free(ps);
}

/* ---- starting ---- */

/* Start n workers: place them, upload where needed, start them all (one ssh
 * session per host), wait until each runs or fails. Workers that fail
 * before running mark their host dead and are placed again on the others. */
int ssh_scale(herd_cluster *c, int n, herd_err *err)
{
    pthread_mutex_lock(&c->scale_mu);
    pthread_mutex_lock(&c->mu);
    c->scaling++;
    pthread_mutex_unlock(&c->mu);
    int rc = 0, running = 0, want = n;
    sworker **batch = calloc(n > 0 ? (size_t)n : 1, sizeof *batch);
    if (!batch) rc = herd_err_set(err, -ENOMEM, "SSHCluster: out of memory");
    bool adopt = true;
    while (!rc && want > 0) {
        size_t k = 0;
        pthread_mutex_lock(&c->mu);
        if (c->closing) { pthread_mutex_unlock(&c->mu); break; }
        /* first, the workers prewarm placed and whose sessions are logging in */
        for (size_t i = 0; adopt && i < c->nw && (int)k < want; i++)
            if (c->w[i]->s && c->w[i]->s->unfed && !c->w[i]->ended) batch[k++] = c->w[i];
        adopt = false;
        for (int i = (int)k; i < want; i++) {
            shost *h = pick_host(c);
            if (!h) break;
            if (!(batch[k] = add_worker(c, h))) { rc = herd_err_set(err, -ENOMEM, "SSHCluster: out of memory"); break; }
            k++;
        }
        pthread_mutex_unlock(&c->mu);
        if (rc || k == 0) break;
        prepare_hosts(c);
        for (size_t i = 0; i < k && !rc; i++) {
            pthread_mutex_lock(&c->mu);
            sworker *w = batch[i];
            ssess *s = NULL;
            if (w->h->dead) {
                w->state = HERD_WORKER_FAILED;
                w->ended = true;
                if (w->counted) { w->h->live--; w->counted = false; }
                snprintf(w->detail, sizeof w->detail, "%s: %.140s", w->h->spec, w->h->why);
            } else if (w->s && w->s->unfed) {
                s = w->s;                        /* prewarmed: its login may be done already */
            } else if (!w->s && !w->ended && !(s = ssh_session_new(c, w->h, batch, i, k))) {
                rc = herd_err_set(err, -ENOMEM, "SSHCluster: out of memory");
            }
            bool prewarmed = s && s->unfed;
            pthread_mutex_unlock(&c->mu);
            if (prewarmed) ssh_session_feed(c, s);
            else if (s) rc = ssh_session_spawn(c, s, true, err);   /* the ssh program itself is missing */
        }
        /* wait for each to run or fail */
        struct timespec ts;
        herd_deadline(c->set.start_timeout, &ts);
        pthread_mutex_lock(&c->mu);
        for (;;) {
            bool waiting = false;
            for (size_t i = 0; i < k; i++)
                if (batch[i]->spawned && !batch[i]->started && !batch[i]->ended) waiting = true;
            if (!waiting || c->closing) break;
            if (pthread_cond_timedwait(&c->cv, &c->mu, &ts) == ETIMEDOUT) {
                for (size_t i = 0; i < k; i++) {
                    ssess *s = batch[i]->s;
                    if (batch[i]->spawned && !batch[i]->started && !batch[i]->ended && !s->ended) {
                        if (!s->error[0])
                            snprintf(s->error, sizeof s->error, "not running after %.3gs (start_timeout)",
                                     c->set.start_timeout);
                        herd_proc_signal(s->ch.proc, SIGKILL);
                    }
                }
                herd_deadline(10, &ts);   /* the monitor reaps them now */
            }
        }
        int ok = 0;
        for (size_t i = 0; i < k; i++) ok += batch[i]->started && !batch[i]->ended;
        pthread_mutex_unlock(&c->mu);
        running += ok;
        want -= ok;
        if (ok == 0 && rc == 0) {
            pthread_mutex_lock(&c->mu);
            bool any = pick_host(c) != NULL;
            pthread_mutex_unlock(&c->mu);
            if (!any) break;
        }
    }
    free(batch);
    /* every dead host is reported; none working is an error */
    char why[1200] = "";
    size_t wl = 0;
    int ndead = 0;
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < c->set.nh; i++)
        if (c->set.hosts[i].dead) {
            ndead++;
            if (wl < sizeof why - 1)
                wl += (size_t)snprintf(why + wl, sizeof why - wl, "%s%s: %s", wl ? "; " : "", c->set.hosts[i].spec,
                                       c->set.hosts[i].why);
        }
    bool closing = c->closing;
    c->scaling--;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    if (!rc && closing && want > 0)
        rc = herd_err_set(err, HERD_ECLOSED, "SSHCluster: closed while starting workers");
    else if (!rc && want > 0 && running == 0)
        rc = herd_err_set(err, HERD_EPROVIDER, "SSHCluster: no host could start a worker: %s", why);
    else if (!rc && want > 0)
        herd_log(c->env, HERD_LOG_WARN, "SSHCluster: started %d of %d workers; failed hosts: %s", running, n, why);
    else if (!rc && ndead)
        herd_log(c->env, HERD_LOG_WARN, "SSHCluster: started %d workers on the other hosts; failed hosts: %s",
                 running, why);
    if (!rc)
        herd_log(c->env, HERD_LOG_INFO, "SSHCluster: %d worker%s running", running, running == 1 ? "" : "s");
    pthread_mutex_unlock(&c->scale_mu);
    return rc;
}

/* While the scheduler starts on its host: place the initial workers and
 * open their ssh sessions, whose logins then overlap the scheduler's; they
 * wait for their environment (the scheduler's address), which start's
 * scale writes. A failure here is left for scale to find and report. */
void ssh_prewarm(herd_cluster *c)
{
    int n = c->set.n_workers;
    sworker **batch = n > 0 ? calloc((size_t)n, sizeof *batch) : NULL;
    if (!batch) return;
    pthread_mutex_lock(&c->scale_mu);
    size_t k = 0;
    pthread_mutex_lock(&c->mu);
    for (int i = 0; i < n; i++) {
        shost *h = pick_host(c);
        if (!h || !(batch[k] = add_worker(c, h))) break;
        k++;
    }
    pthread_mutex_unlock(&c->mu);
    prepare_hosts(c);
    for (size_t i = 0; i < k; i++) {
        pthread_mutex_lock(&c->mu);
        sworker *w = batch[i];
        ssess *s = NULL;
        if (w->h->dead) {                     /* the upload failed: scale reports it */
            w->state = HERD_WORKER_FAILED;
            w->ended = true;
            if (w->counted) { w->h->live--; w->counted = false; }
            snprintf(w->detail, sizeof w->detail, "%s: %.140s", w->h->spec, w->h->why);
        } else if (!w->s) {
            s = ssh_session_new(c, w->h, batch, i, k);
        }
        pthread_mutex_unlock(&c->mu);
        herd_err e = { 0 };
        if (s) ssh_session_spawn(c, s, false, &e);
    }
    pthread_mutex_unlock(&c->scale_mu);
    free(batch);
}

/* ---- stopping ---- */

static bool all_ended(sworker **ws, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (ws[i]->spawned && !ws[i]->ended) return false;
    return true;
}

static void wait_ended(herd_cluster *c, sworker **ws, size_t n, double secs)
{
    struct timespec ts;
    herd_deadline(secs, &ts);
    while (!all_ended(ws, n))
        if (pthread_cond_timedwait(&c->cv, &c->mu, &ts) == ETIMEDOUT) break;
}

static bool among(sworker *const *ws, size_t n, const sworker *w)
{
    for (size_t i = 0; i < n; i++)
        if (ws[i] == w) return true;
    return false;
}

/* Stop ws: a session all of whose running workers stop gets its stdin
 * closed (the wrapper stops them all: SIGTERM, SIGKILL 3 s later), one that
 * keeps others gets "stop I" lines; wait; kill what is left of the sessions
 * that were ending anyway; and for workers whose end was not reported kill
 * the remote pid over a new session. */
void ssh_stop_workers(herd_cluster *c, sworker **ws, size_t n)
{
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < n; i++) ws[i]->expected = true;
    for (ssess *s = c->sess; s; s = s->next) {
        if (!s->spawned || s->ended) continue;
        bool mine = false, whole = true;
        for (size_t i = 0; i < s->nw; i++) {
            if (s->w[i]->ended) continue;
            if (among(ws, n, s->w[i])) mine = true;
            else if (!s->w[i]->expected) whole = false;
        }
        if (!mine) continue;
        if (whole) {
            if (s->ch.in >= 0) { close(s->ch.in); s->ch.in = -1; }
            s->eof = true;
            continue;
        }
        for (size_t i = 0; i < s->nw; i++)
            if (!s->w[i]->ended && among(ws, n, s->w[i])) {
                char msg[32];
                snprintf(msg, sizeof msg, "stop %d\n", s->w[i]->idx);
                if (ssh_child_send(&s->ch, msg) != 0)
                    herd_log(c->env, HERD_LOG_DEBUG, "SSHCluster: %s: cannot ask the session to stop %s",
                             s->h->spec, s->w[i]->name);
            }
    }
    wait_ended(c, ws, n, STOP_GRACE_S);
    if (!all_ended(ws, n)) {
        /* the ssh of the sessions that were ending anyway and still hold
         * some of ws: SIGTERM, 1 s, SIGKILL */
        size_t k = 0, cap = 0;
        herd_proc **ps = NULL;
        for (ssess *s = c->sess; s; s = s->next) {
            if (!s->spawned || s->ended || !s->eof) continue;
            bool hold = false;
            for (size_t i = 0; i < s->nw; i++) hold |= !s->w[i]->ended && among(ws, n, s->w[i]);
            if (!hold) continue;
            if (k == cap) {
                herd_proc **nps = realloc(ps, (cap = cap ? 2 * cap : 8) * sizeof *ps);
                if (!nps) break;
                ps = nps;
            }
            ps[k++] = s->ch.proc;
        }
        pthread_mutex_unlock(&c->mu);
        herd_proc_stop(ps, k, 1.0, NULL);
        free(ps);
        pthread_mutex_lock(&c->mu);
        wait_ended(c, ws, n, 10);         /* the monitor reports the ends now */
    }
    pthread_mutex_unlock(&c->mu);

    for (size_t hi = 0; hi < c->set.nh; hi++) {
        shost *h = &c->set.hosts[hi];
        char *cmd = NULL;
        size_t len = 0;
        int count = 0;
        pthread_mutex_lock(&c->mu);
        for (size_t i = 0; i < n; i++) {
            sworker *w = ws[i];
            if (w->h != h || !w->started || w->rexit_known || w->rpid <= 0) continue;
            char item[128];
            snprintf(item, sizeof item, " '%ld %s'", w->rpid, w->name);
            size_t il = strlen(item);
            char *nc = realloc(cmd, len + il + 1);
            if (!nc) continue;
            cmd = nc;
            memcpy(cmd + len, item, il + 1);
            len += il;
            count++;
        }
        pthread_mutex_unlock(&c->mu);
        if (!count) { free(cmd); continue; }
        /* only a process whose command line names that worker is killed */
        char *full = NULL;
        if (asprintf(&full, "for e in%s; do p=${e%%%% *}; n=${e#* }; "
                     "c=$(tr '\\000' ' ' < /proc/$p/cmdline 2>/dev/null) || continue; "
                     "case \"$c \" in *\" --herd-name $n \"*) kill -KILL $p && echo \"herd-ssh-killed $p\";; esac; done",
                     cmd) < 0) full = NULL;
        free(cmd);
        char **argv = full ? ssh_argv(&c->set.so, h->host, h->user[0] ? h->user : NULL, h->port, full) : NULL;
        free(full);
        if (argv) {
            char out[1024], tail[320];
            herd_proc_exit st;
            int rc = ssh_run(argv, -1, NULL, out, sizeof out, tail, sizeof tail, c->set.so.connect_timeout + 5, &st);
            if (!ssh_run_ok(rc, &st))
                herd_log(c->env, HERD_LOG_WARN, "SSHCluster: %s: could not make sure %d worker%s stopped: %s",
                         h->spec, count, count == 1 ? "" : "s", *tail ? tail : rc ? strerror(-rc) : "ssh failed");
            else if (out[0])
                herd_log(c->env, HERD_LOG_INFO, "SSHCluster: %s: killed what was left: %s", h->spec, out);
            herd_strv_free(argv);
        }
    }
    pthread_mutex_lock(&c->mu);      /* a session that goes on reports the end it saw */
    wait_ended(c, ws, n, 2);
    pthread_mutex_unlock(&c->mu);
}
