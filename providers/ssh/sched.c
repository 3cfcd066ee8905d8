/* providers/ssh/sched.c — the scheduler on scheduler_host: run there in an
 * ssh session of its own under the same wrapper as workers (its
 * environment, token and TLS key included, goes over stdin), its address
 * read from its first line ("herd-scheduler-at ADDRESS") and made dialable
 * (0.0.0.0 becomes the host's address), the workers' logins overlapping its
 * start (ssh_prewarm); stopped after the workers on close, for certain. */
#include "ssh.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void sched_line(void *ud, const char *line, bool is_err)
{
    herd_cluster *c = ud;
    ssched *s = c->sched;
    pthread_mutex_lock(&c->mu);
    if (!is_err && strncmp(line, SCHED_AT, strlen(SCHED_AT)) == 0) {
        snprintf(s->addr, sizeof s->addr, "%s", line + strlen(SCHED_AT));
    } else if (!is_err && strncmp(line, "herd-ssh-pid 0 ", 15) == 0) {
        s->rpid = strtol(line + 15, NULL, 10);
    } else if (!is_err && strncmp(line, "herd-ssh-exit 0 ", 16) == 0) {
        s->rexit_known = true;
        s->rexit = (int)strtol(line + 16, NULL, 10);
        if (s->ch.in >= 0) { close(s->ch.in); s->ch.in = -1; s->eof = true; }
    } else if (!is_err && strncmp(line, "herd-ssh-error ", 15) == 0) {
        snprintf(s->error, sizeof s->error, "%s", line + 15);
    } else if (is_err && *line) {
        snprintf(s->lasterr, sizeof s->lasterr, "%s", line);
    }
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    if (*line && (is_err || strncmp(line, "herd-", 5) != 0)) {
        char who[300];
        snprintf(who, sizeof who, "scheduler@%s", s->h.spec);
        ssh_relay(c, who, line);
    }
}

static void sched_exit(void *ud, const herd_proc_exit *status, const char *tail)
{
    herd_cluster *c = ud;
    ssched *s = c->sched;
    pthread_mutex_lock(&c->mu);
    s->ended = true;
    if (s->ch.in >= 0) { close(s->ch.in); s->ch.in = -1; }
    if (*tail && !s->lasterr[0]) snprintf(s->lasterr, sizeof s->lasterr, "%s", tail);
    if (!s->error[0]) ssh_exit_text(status, s->error, sizeof s->error);
    bool closing = c->closing || !s->addr[0];   /* a failed start is reported by start_scheduler */
    char why[700];
    snprintf(why, sizeof why, "%s%s%s", s->error, s->lasterr[0] ? ": " : "", s->lasterr);
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    if (!closing) herd_log(c->env, HERD_LOG_WARN, "SSHCluster: the scheduler on %s ended: %s", s->h.spec, why);
}

int ssh_start_scheduler(herd_cluster *c, char *out, size_t cap, herd_err *err)
{
    out[0] = '\0';
    ssched *s = c->sched;
    if (!s) return 0;                   /* the scheduler runs in the client process */
    shost *h = &s->h;
    const char *listen = c->set.listen ? c->set.listen : "tcp://0.0.0.0:0";
    ssh_dial_name(c, h, s->dial, sizeof s->dial);
    if (c->set.upload) {
        char msg[400];
        if (ssh_prepare_host(c, h, msg, sizeof msg))
            return herd_err_set(err, HERD_EPROVIDER, "SSHCluster: scheduler_host %s: upload: %s", h->spec, msg);
    } else {
        snprintf(h->prog, sizeof h->prog, "%s", c->set.remote_command ? c->set.remote_command : c->env->worker_argv[0]);
    }
    char **argv = NULL, **envp = NULL, **sargv = NULL, *cmd = NULL, *script = NULL;
    size_t len = 0, scap = 0;
    const char *names[3] = { s->dial, strcmp(s->dial, h->host) ? h->host : NULL, NULL };
    int rc = herd_scheduler_argv(c->env, listen, &argv, err);
    if (!rc) rc = herd_scheduler_envp(c->env, names, &envp, err);
    if (!rc) {
        free(argv[0]);
        if (!(argv[0] = strdup(h->prog))) rc = herd_err_set(err, -ENOMEM, "SSHCluster: out of memory");
    }
    for (char **e = envp; !rc && e && *e; e++) rc = ssh_env_line(&script, &len, &scap, *e) ? -ENOMEM : 0;
    for (char **e = c->set.extra_env; !rc && e && *e; e++) rc = ssh_env_line(&script, &len, &scap, *e) ? -ENOMEM : 0;
    if (!rc) rc = ssh_expect_lines(&script, &len, &scap) ? -ENOMEM : 0;
    if (!rc) {
        char *nb = realloc(script, len + sizeof SSH_GO + 2);
        if (!nb) rc = -ENOMEM;
        else { script = nb; len += (size_t)sprintf(script + len, "%s\n", SSH_GO); }
    }
    if (!rc) {
        char **const one[1] = { argv };
        cmd = ssh_wrapper_cmd(one, 1);
        if (cmd) sargv = ssh_argv(&c->set.so, h->host, h->user[0] ? h->user : NULL, h->port, cmd);
        if (!cmd || !sargv) rc = -ENOMEM;
    }
    if (rc == -ENOMEM) herd_err_set(err, rc, "SSHCluster: out of memory");
    if (!rc) {
        s->ch.on_line = sched_line;
        s->ch.on_exit = sched_exit;
        s->ch.ud = c;
        char msg[300];
        if ((rc = ssh_mon_spawn(c->mon, sargv, script, len, &s->ch, msg, sizeof msg)))
            herd_err_set(err, rc, "SSHCluster: the scheduler on %s: %s", h->spec, msg);
        else s->spawned = true;
    }
    if (script) { memset(script, 0, len); free(script); }   /* it holds the token and TLS key */
    herd_envp_free(envp);
    herd_strv_free(argv);
    herd_strv_free(sargv);
    free(cmd);
    if (rc) return rc;
    ssh_prewarm(c);

    /* wait for its address, or its end */
    struct timespec ts;
    herd_deadline(c->set.start_timeout, &ts);
    pthread_mutex_lock(&c->mu);
    while (!s->addr[0] && !s->ended)
        if (pthread_cond_timedwait(&c->cv, &c->mu, &ts) == ETIMEDOUT) {
            snprintf(s->error, sizeof s->error, "no address after %.3gs (start_timeout)", c->set.start_timeout);
            herd_proc_signal(s->ch.proc, SIGKILL);
            herd_deadline(10, &ts);       /* the monitor reaps it now */
            while (!s->ended && pthread_cond_timedwait(&c->cv, &c->mu, &ts) != ETIMEDOUT) {}
            break;
        }
    char got[300], why[700];
    snprintf(got, sizeof got, "%s", s->addr);
    snprintf(why, sizeof why, "%s%s%s", s->error, s->lasterr[0] ? ": " : "", s->lasterr);
    pthread_mutex_unlock(&c->mu);
    if (!got[0])
        return herd_err_set(err, HERD_EPROVIDER, "SSHCluster: cannot start the scheduler on %s: %s", h->spec, why);
    /* scheme://0.0.0.0:PORT -> scheme://<dial>:PORT; an address of its own
     * (listen_address named one) stays */
    const char *sep = strstr(got, "://"), *colon = strrchr(got, ':');
    if (!sep || !colon || colon < sep + 3)
        return herd_err_set(err, HERD_EPROVIDER, "SSHCluster: the scheduler on %s printed \"%s\", expected "
                            "tcp://HOST:PORT", h->spec, got);
    char ghost[128];
    snprintf(ghost, sizeof ghost, "%.*s", (int)(colon - sep - 3), sep + 3);
    if (strcmp(ghost, "0.0.0.0") && strcmp(ghost, "[::]") && strcmp(ghost, "::") && strcmp(ghost, "127.0.0.1"))
        snprintf(out, cap, "%s", got);
    else
        snprintf(out, cap, strchr(s->dial, ':') ? "%.*s[%s]%s" : "%.*s%s%s", (int)(sep + 3 - got), got, s->dial,
                 colon);
    herd_log(c->env, HERD_LOG_INFO, "SSHCluster: scheduler running on %s (pid %ld), at %s", h->spec, s->rpid, out);
    return 0;
}

/* After the workers: end the scheduler's session (the wrapper stops it),
 * then kill ssh, then kill the remote pid over a new session when its end
 * was not seen. */
void ssh_stop_scheduler(herd_cluster *c)
{
    ssched *s = c->sched;
    if (!s || !s->spawned) return;
    pthread_mutex_lock(&c->mu);
    if (s->ch.in >= 0) { close(s->ch.in); s->ch.in = -1; }
    s->eof = true;
    struct timespec ts;
    herd_deadline(STOP_GRACE_S, &ts);
    while (!s->ended && pthread_cond_timedwait(&c->cv, &c->mu, &ts) != ETIMEDOUT) {}
    if (!s->ended) {                     /* ssh itself: SIGTERM, 1 s, SIGKILL */
        pthread_mutex_unlock(&c->mu);
        herd_proc_stop(&s->ch.proc, 1, 1.0, NULL);
        pthread_mutex_lock(&c->mu);
        herd_deadline(10, &ts);          /* the monitor reports the end now */
        while (!s->ended && pthread_cond_timedwait(&c->cv, &c->mu, &ts) != ETIMEDOUT) {}
    }
    bool sure = s->rexit_known || s->rpid <= 0;
    long pid = s->rpid;
    pthread_mutex_unlock(&c->mu);
    if (sure) return;
    char *cmd = NULL;
    if (asprintf(&cmd, "c=$(tr '\\000' ' ' < /proc/%ld/cmdline 2>/dev/null) || exit 0; "
                 "case \"$c \" in *\" --herd-scheduler \"*) kill -KILL %ld && echo \"herd-ssh-killed %ld\";; esac",
                 pid, pid, pid) < 0) return;
    char **argv = ssh_argv(&c->set.so, s->h.host, s->h.user[0] ? s->h.user : NULL, s->h.port, cmd);
    free(cmd);
    if (!argv) return;
    char out[256], tail[320];
    herd_proc_exit st;
    int rc = ssh_run(argv, -1, NULL, out, sizeof out, tail, sizeof tail, c->set.so.connect_timeout + 5, &st);
    if (!ssh_run_ok(rc, &st))
        herd_log(c->env, HERD_LOG_WARN, "SSHCluster: %s: could not make sure the scheduler (pid %ld) stopped: %s",
                 s->h.spec, pid, *tail ? tail : rc ? strerror(-rc) : "ssh failed");
    else if (out[0])
        herd_log(c->env, HERD_LOG_INFO, "SSHCluster: %s: killed the scheduler left behind: %s", s->h.spec, out);
    herd_strv_free(argv);
}
