/* providers/ssh/session.c — one ssh session of an SSHCluster: the workers
 * a start or scale_up places on one host share it (one login: most of the
 * cost of starting a worker). This file builds the session (its workers'
 * command lines under the remote wrapper, the environment script it reads
 * from stdin, with each host's own scheduler address), starts its ssh
 * through the monitor (proc.c), and follows it: the wrapper's
 * "herd-ssh-pid/exit/error" lines, the workers' log lines passed on, and
 * the session's end, which says how each of its workers ended. */
#include "ssh.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* details and host names are cut to the fixed sizes of herd_worker_info:
 * truncation there is intended */
#pragma GCC diagnostic ignored "-Wformat-truncation"

/* Worker w has ended (its exit line came, or its session ended): say how,
 * in its detail. Called with c->mu held. */
static void worker_end(sworker *w, const char *tail, const char *ssh_st)
{
    herd_cluster *c = w->c;
    if (w->ended) return;
    w->ended = true;
    if (w->counted) { w->h->live--; w->counted = false; }
    const char *host = w->h->spec;
    bool failed;
    if (!w->started) {
        failed = !w->expected;
        const char *why = w->s->error[0] ? w->s->error : *tail ? tail : ssh_st;
        snprintf(w->detail, sizeof w->detail, "%s: %s", host, why);
        if (failed && !w->h->dead) {
            w->h->dead = true;
            snprintf(w->h->why, sizeof w->h->why, "%s (%s)", why, ssh_st);
            herd_log(c->env, HERD_LOG_WARN, "SSHCluster: host %s cannot run workers: %s", host, w->h->why);
        }
    } else if (w->rexit_known) {
        int s = w->rexit;
        if (s > 128 && s < 128 + 65) {
            int sig = s - 128;
            const char *d = sigdescr_np(sig);
            bool ours = w->expected && (sig == SIGTERM || sig == SIGKILL);
            failed = !ours;
            snprintf(w->detail, sizeof w->detail, "pid %ld on %s killed by signal %d (%s)%s", w->rpid, host, sig,
                     d ? d : "?", ours ? " (retired)" : "");
        } else {
            failed = s != 0 && !w->expected;
            snprintf(w->detail, sizeof w->detail, "pid %ld on %s exited with status %d%s", w->rpid, host, s,
                     w->expected ? " (retired)" : "");
            /* the scheduler refused it (another protocol version, a wrong
             * token or certificate): the host's program will not do */
            if (s == WORKER_EXIT_REFUSED && failed && !w->h->dead) {
                w->h->dead = true;
                snprintf(w->h->why, sizeof w->h->why, "the scheduler refused its worker%s%s",
                         w->s->refusal[0] ? ": " : " (exit status 3)", w->s->refusal);
                herd_log(c->env, HERD_LOG_WARN, "SSHCluster: host %s cannot run workers: %s", host, w->h->why);
            }
        }
    } else {
        failed = !w->expected;
        snprintf(w->detail, sizeof w->detail, "pid %ld on %s: the ssh session ended (%s%s%s)%s", w->rpid, host,
                 ssh_st, *tail ? ": " : "", tail, w->expected ? " (retired)" : "");
    }
    w->state = failed ? HERD_WORKER_FAILED : HERD_WORKER_STOPPED;
    if (failed && w->started)
        herd_log(c->env, HERD_LOG_WARN, "SSHCluster: worker %s ended: %s", w->name, w->detail);
}

/* Pass on a line a remote process wrote: a herd log line ("HH:MM:SS.mmm |
 * LEVEL | text") keeps its level and loses its time stamp (ours is added);
 * anything else is INFO. */
void ssh_relay(herd_cluster *c, const char *who, const char *line)
{
    static const struct { const char *name; int level; } lv[] = {
        { "DEBUG", HERD_LOG_DEBUG }, { "INFO", HERD_LOG_INFO }, { "WARNING", HERD_LOG_WARN }, { "ERROR", HERD_LOG_ERROR } };
    int level = HERD_LOG_INFO;
    const char *bar = strlen(line) > 15 && line[2] == ':' && line[8] == '.' ? strstr(line, " | ") : NULL;
    if (bar) {
        const char *name = bar + 3, *bar2 = strstr(name, " | ");
        for (size_t i = 0; bar2 && i < sizeof lv / sizeof *lv; i++)
            if (strncmp(name, lv[i].name, strlen(lv[i].name)) == 0) { level = lv[i].level; line = bar2 + 3; break; }
    }
    herd_log(c->env, level, "[%s] %s", who, line);
}

/* "I N" of a wrapper line: the worker of index I, N. */
static sworker *line_worker(ssess *s, const char *p, long *num)
{
    char *end;
    long i = strtol(p, &end, 10);
    if (end == p || *end != ' ' || i < 0 || (size_t)i >= s->nw) return NULL;
    *num = strtol(end + 1, NULL, 10);
    return s->w[i];
}

static void on_line(void *ud, const char *line, bool is_err)
{
    ssess *s = ud;
    herd_cluster *c = s->c;
    if (!is_err && strncmp(line, "herd-ssh-", 9) == 0) {
        pthread_mutex_lock(&c->mu);
        sworker *w;
        long num;
        if (strncmp(line, "herd-ssh-pid ", 13) == 0 && (w = line_worker(s, line + 13, &num))) {
            w->rpid = num;
            w->started = true;
            if (w->state == HERD_WORKER_STARTING) w->state = HERD_WORKER_RUNNING;
            snprintf(w->detail, sizeof w->detail, "pid %ld on %s, %d threads", w->rpid, w->h->spec, c->set.nthreads);
        } else if (strncmp(line, "herd-ssh-exit ", 14) == 0 && (w = line_worker(s, line + 14, &num))) {
            w->rexit_known = true;
            w->rexit = (int)num;
            worker_end(w, "", "");
            bool all = true;
            for (size_t i = 0; i < s->nw; i++) all &= s->w[i]->ended;
            if (all && s->ch.in >= 0) {          /* the wrapper has nothing left to run */
                close(s->ch.in);
                s->ch.in = -1;
                s->eof = true;
            }
        } else if (strncmp(line, "herd-ssh-error ", 15) == 0) {
            snprintf(s->error, sizeof s->error, "%s", line + 15);
        }
        pthread_cond_broadcast(&c->cv);
        pthread_mutex_unlock(&c->mu);
        return;
    }
    if (is_err && strstr(line, "refused this worker: ")) {
        pthread_mutex_lock(&c->mu);
        snprintf(s->refusal, sizeof s->refusal, "%s", strstr(line, "refused this worker: ") + 21);
        /* the worker's exit status can arrive (stdout) before its last
         * stderr line: the host was marked with "exit status 3"; now the
         * reason is known, say it */
        if (s->h->dead && strncmp(s->h->why, "the scheduler refused its worker (", 34) == 0) {
            snprintf(s->h->why, sizeof s->h->why, "the scheduler refused its worker: %s", s->refusal);
            herd_log(c->env, HERD_LOG_WARN, "SSHCluster: host %s cannot run workers: %s", s->h->spec, s->h->why);
        }
        pthread_mutex_unlock(&c->mu);
    }
    if (*line) {
        char who[400];
        if (s->nw == 1) snprintf(who, sizeof who, "%s@%s", s->w[0]->name, s->h->spec);
        else snprintf(who, sizeof who, "%s", s->h->spec);
        ssh_relay(c, who, line);
    }
}

/* "ssh exited with status 255" / "ssh killed by signal 9 (Killed)" */
void ssh_exit_text(const herd_proc_exit *ex, char *buf, size_t cap)
{
    char how[96];
    snprintf(buf, cap, "ssh %s", herd_proc_describe(ex, how, sizeof how));
}

static void on_exit_(void *ud, const herd_proc_exit *status, const char *tail)
{
    ssess *s = ud;
    herd_cluster *c = s->c;
    pthread_mutex_lock(&c->mu);
    s->ended = true;
    if (s->ch.in >= 0) { close(s->ch.in); s->ch.in = -1; }
    char ssh_st[64];
    ssh_exit_text(status, ssh_st, sizeof ssh_st);
    for (size_t i = 0; i < s->nw; i++) worker_end(s->w[i], tail, ssh_st);
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

/* The scheduler address as host h must dial it. */
static void address_for(herd_cluster *c, const shost *h, const char *addr, char *out, size_t cap)
{
    snprintf(out, cap, "%s", addr);
    if (!h->dial[0] || strncmp(addr, "unix://", 7) == 0) return;
    const char *sep = strstr(addr, "://");
    const char *colon = strrchr(addr, ':');
    if (!sep || !colon || colon < sep + 3) return;
    snprintf(out, cap, "%.*s%s%s", (int)(sep + 3 - addr), addr, h->dial, colon);
    (void)c;
}

/* What the wrapper reads from stdin: the environment, then SSH_GO. */
static char *env_script(herd_cluster *c, const shost *h)
{
    char *b = NULL;
    size_t len = 0, cap = 0;
    int rc = 0;
    for (const char *const *e = c->env->worker_envp; !rc && e && *e; e++) {
        if (strncmp(*e, "HERD_SCHEDULER_ADDRESS=", 23) == 0) {
            char a[600], kv[640];
            address_for(c, h, *e + 23, a, sizeof a);
            snprintf(kv, sizeof kv, "HERD_SCHEDULER_ADDRESS=%s", a);
            rc = ssh_env_line(&b, &len, &cap, kv);
        } else {
            rc = ssh_env_line(&b, &len, &cap, *e);
        }
    }
    for (char **e = c->set.extra_env; !rc && e && *e; e++) rc = ssh_env_line(&b, &len, &cap, *e);
    if (!rc) rc = ssh_expect_lines(&b, &len, &cap);
    if (!rc && h->plugin_dir[0]) {
        char *kv = NULL;
        /* relative to the remote home: made absolute there */
        if (asprintf(&kv, "HERD_PLUGIN_PATH=%s", h->plugin_dir) < 0) rc = -ENOMEM;
        else {
            rc = ssh_env_line(&b, &len, &cap, kv);
            free(kv);
            if (!rc && h->plugin_dir[0] != '/') {
                const char *fix = "case $HERD_PLUGIN_PATH in /*) ;; *) HERD_PLUGIN_PATH=$(pwd)/$HERD_PLUGIN_PATH ;; esac\n";
                char *nb = realloc(b, len + strlen(fix) + 1);
                if (!nb) rc = -ENOMEM;
                else { b = nb; memcpy(b + len, fix, strlen(fix) + 1); len += strlen(fix); cap = len + 1; }
            }
        }
    }
    if (!rc) {
        char *nb = realloc(b, len + sizeof SSH_GO + 2);
        if (!nb) rc = -ENOMEM;
        else { b = nb; len += (size_t)sprintf(b + len, "%s\n", SSH_GO); }
    }
    if (rc) { free(b); return NULL; }
    return b;
}

/* Put the workers of batch[from..k) that go to host h (up to
 * SSH_SESSION_MAX, not yet in a session) into a new session. Lock held. */
ssess *ssh_session_new(herd_cluster *c, shost *h, sworker **batch, size_t from, size_t k)
{
    ssess *s = calloc(1, sizeof *s);
    if (s) s->w = calloc(k - from, sizeof *s->w);
    if (!s || !s->w) { if (s) free(s); return NULL; }
    s->c = c;
    s->h = h;
    s->ch.in = -1;
    for (size_t i = from; i < k && s->nw < SSH_SESSION_MAX; i++)
        if (batch[i]->h == h && !batch[i]->s && !batch[i]->ended) {
            batch[i]->s = s;
            batch[i]->idx = (int)s->nw;
            s->w[s->nw++] = batch[i];
        }
    s->next = c->sess;
    c->sess = s;
    return s;
}

/* Write s's environment script (which ends with SSH_GO) into its stdin:
 * the wrapper starts the workers. A session that died meanwhile reports
 * its end through on_exit_ as usual. No lock held. */
void ssh_session_feed(herd_cluster *c, ssess *s)
{
    char *script = env_script(c, s->h);
    pthread_mutex_lock(&c->mu);
    s->unfed = false;
    int rc = script ? ssh_child_send(&s->ch, script) : -ENOMEM;
    if (rc == -ENOMEM && s->ch.in >= 0) {   /* the wrapper ends at once; its workers fail now */
        snprintf(s->error, sizeof s->error, "out of memory for the workers' environment");
        close(s->ch.in);
        s->ch.in = -1;
        s->eof = true;
    }
    pthread_mutex_unlock(&c->mu);
    if (rc && rc != -EPIPE)
        herd_log(c->env, HERD_LOG_WARN, "SSHCluster: %s: cannot send the workers' environment: %s", s->h->spec,
                 strerror(-rc));
    if (script) { memset(script, 0, strlen(script)); free(script); }   /* it holds the token */
}

/* Start the ssh session of s: one login for all its workers; no lock held.
 * feed: write the environment now; else the session waits for ssh_session_feed
 * (the login overlaps the scheduler's start). */
int ssh_session_spawn(herd_cluster *c, ssess *s, bool feed, herd_err *err)
{
    char ***argvs = calloc(s->nw, sizeof *argvs);
    char **sargv = NULL, *cmd = NULL, *script = NULL;
    int rc = argvs ? 0 : herd_err_set(err, -ENOMEM, "SSHCluster: out of memory");
    for (size_t i = 0; !rc && i < s->nw; i++) {
        herd_worker_spec spec = { .name = s->w[i]->name, .nthreads = c->set.nthreads, .resources = c->set.resources,
                                  .memory_limit = c->set.memory_limit };
        if ((rc = herd_worker_argv(c->env, &spec, &argvs[i], err))) break;
        free(argvs[i][0]);
        if (!(argvs[i][0] = strdup(s->h->prog))) rc = herd_err_set(err, -ENOMEM, "SSHCluster: out of memory");
    }
    if (!rc) {
        script = feed ? env_script(c, s->h) : NULL;
        cmd = ssh_wrapper_cmd(argvs, s->nw);
        if (cmd) sargv = ssh_argv(&c->set.so, s->h->host, s->h->user[0] ? s->h->user : NULL, s->h->port, cmd);
        if ((feed && !script) || !cmd || !sargv) rc = herd_err_set(err, -ENOMEM, "SSHCluster: out of memory");
    }
    if (!rc) {
        s->ch.on_line = on_line;
        s->ch.on_exit = on_exit_;
        s->ch.ud = s;
        s->unfed = !feed;
        char msg[300];
        rc = ssh_mon_spawn(c->mon, sargv, script, script ? strlen(script) : 0, &s->ch, msg, sizeof msg);
        if (rc) rc = herd_err_set(err, rc, "SSHCluster: %zu worker%s on %s: %s", s->nw, s->nw == 1 ? "" : "s",
                                  s->h->spec, msg);
    }
    pthread_mutex_lock(&c->mu);
    if (rc) {
        s->ended = true;
        for (size_t i = 0; i < s->nw; i++) {
            sworker *w = s->w[i];
            w->state = HERD_WORKER_FAILED;
            w->ended = true;
            if (w->counted) { w->h->live--; w->counted = false; }
            snprintf(w->detail, sizeof w->detail, "%.159s", err ? err->msg : "cannot start ssh");
        }
    } else {
        s->spawned = true;
        for (size_t i = 0; i < s->nw; i++) s->w[i]->spawned = true;
    }
    pthread_mutex_unlock(&c->mu);
    if (script) { memset(script, 0, strlen(script)); free(script); }   /* it holds the token */
    free(cmd);
    for (size_t i = 0; argvs && i < s->nw; i++) herd_strv_free(argvs[i]);
    free(argvs);
    herd_strv_free(sargv);
    return rc;
}
