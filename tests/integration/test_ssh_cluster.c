/* tests/integration/test_ssh_cluster.c — ssh.SSHCluster against real
 * OpenSSH servers this test starts itself (tests/support/sshd.h): on
 * 127.0.0.1 high ports, and — where the machine allows network namespaces —
 * on namespaces behind a bridge, each host with its own address, so the
 * workers' traffic really crosses an interface. The workers are this binary
 * re-run on the "hosts" (remote_command defaults to its own path).
 *
 * Cases: tasks spread over every host; a host that refuses auth and a host
 * that is down (reported with ssh's words, the others keep going); a missing
 * program; one ssh session per host for the workers a start places there;
 * retiring one worker of a session, and its remote process killed mid-task
 * (its tasks run elsewhere; the session's other worker runs on); close leaves no process behind on any host, even when the
 * client is killed; the upload is skipped when the sha256 matches and
 * redone for a file changed on the host; TLS
 * (security: temporary); adaptive scaling; a holder SIGKILLed in the middle
 * of a direct transfer over a rate-limited veth (tc tbf): the value is
 * recomputed and read right; the dashboard of a scheduler on
 * a namespaced host, fetched through the link the flow log prints (401
 * without the token, 200 with it), and its performance report. Whatever
 * the machine cannot do
 * is skipped with a loud message saying why. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../support/testutil.h"
#include "../support/sshd.h"
#include "../support/blobs.h"
#include "../support/http.h"

#include <dirent.h>
#include <limits.h>
#include <sys/prctl.h>

/* ---- tasks (run on the hosts) ---- */

/* Which sshd the worker came through: "<server addr> <server port>". */
static int ssh_where(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    tu_sleep_ms(herd_as_int(herd_at(args, 0)));
    const char *sc = getenv("SSH_CONNECTION");   /* "client_ip client_port server_ip server_port" */
    if (!sc) return herd_task_fail(ctx, "not started over ssh: no SSH_CONNECTION");
    const char *p = sc;
    for (int i = 0; i < 2 && p; i++) { p = strchr(p, ' '); if (p) p++; }
    *out = herd_str(p ? p : sc);
    return 0;
}
HERD_TASK(ssh_where);

static int ssh_exe(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = '\0';
    *out = herd_str(exe);
    return 0;
}
HERD_TASK(ssh_exe);

/* [this worker's name, which sshd it came through] */
static int ssh_who(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    herd_value *where = NULL;
    int rc = ssh_where(ctx, args, &where);
    if (rc) return rc;
    *out = herd_tuple("sv", herd_task_worker_name(ctx), where);
    return 0;
}
HERD_TASK(ssh_who);

/* ---- fixtures ---- */

static tssh_keys keys;
static tsshd good[2], refusing;
static int down_port;
static bool have_sshd;
static char skip_why[512];
static tnet net;
static tsshd nhost[2];
static bool have_net;
static char net_why[512];

static int setup(void **state)
{
    if (!tssh_available(skip_why, sizeof skip_why)) return 0;
    if (tssh_keys_make(&keys, skip_why, sizeof skip_why)) return fprintf(stderr, "%s\n", skip_why), -1;
    for (int i = 0; i < 2; i++)
        if (tsshd_start(&good[i], &keys, NULL, "127.0.0.1", 0, true, skip_why, sizeof skip_why))
            return fprintf(stderr, "%s\n", skip_why), -1;
    if (tsshd_start(&refusing, &keys, NULL, "127.0.0.1", 0, false, skip_why, sizeof skip_why))
        return fprintf(stderr, "%s\n", skip_why), -1;
    down_port = tssh_free_port();   /* nothing listens there */
    have_sshd = true;
    if (tnet_setup(&net, 2, net_why, sizeof net_why) == 0) {
        have_net = true;
        for (int i = 0; i < 2 && have_net; i++)
            if (tsshd_start(&nhost[i], &keys, net.ns[i], net.addr[i], 2222, true, net_why, sizeof net_why))
                have_net = false;
    }
    return 0;
}

static int teardown(void **state)
{
    for (int i = 0; i < 2; i++) { tsshd_stop(&good[i]); tsshd_stop(&nhost[i]); }
    tsshd_stop(&refusing);
    tnet_teardown(&net);
    tssh_keys_remove(&keys);
    return 0;
}

static void need_sshd(void)
{
    if (!have_sshd) {
        fprintf(stderr, "\n*** SKIPPED: the SSHCluster tests need OpenSSH (server and client): %s ***\n\n", skip_why);
        skip();
    }
}

static void need_net(void)
{
    need_sshd();
    if (!have_net) {
        fprintf(stderr, "\n*** SKIPPED: no network namespaces on this machine (%s): the multi-host case "
                        "ran on 127.0.0.1 ports only ***\n\n", net_why);
        skip();
    }
}

/* cluster_kwargs for hosts, with the test's keys */
static void kw(char *buf, size_t cap, const char *hosts, const char *more)
{
    snprintf(buf, cap, "{hosts: [%s], connect_options: {identity_file: '%s', known_hosts: '%s', "
                       "strict_host_key_checking: 'yes', connect_timeout: 5}%s%s}",
             hosts, keys.key, keys.known_hosts, more && *more ? ", " : "", more ? more : "");
}

/* a runner whose cluster the test can see */
static const herd_provider *cur_prov;
static herd_cluster *cur_cluster;

static int factory(const herd_value *kwargs, const herd_cluster_env *env, const herd_provider **prov_out,
                   herd_cluster **out, herd_err *err)
{
    const herd_provider *p;
    int rc = herd_provider_resolve("ssh.SSHCluster", &p, err);
    if (rc) return rc;
    herd_value *v = NULL;
    if ((rc = herd_kwargs_validate(p->params, kwargs, "cluster_kwargs", &v, err))) return rc;
    rc = p->create(out, v, env, err);
    herd_value_free(v);
    if (rc) return rc;
    *prov_out = cur_prov = p;
    cur_cluster = *out;
    return 0;
}

static herd_runner *runner(const char *ck, const char *client, const char *adapt, tu_log *log, herd_err *err)
{
    herd_runner *r = NULL;
    char eager[256];                 /* these tests are about the provider: it starts in herd_flow_begin */
    snprintf(eager, sizeof eager, "{start: eager%s%s", client ? ", " : "}", client ? client + 1 : "");
    herd_runner_opts o = { .cluster_factory = factory, .cluster_kwargs = ck, .client_kwargs = eager,
                           .adapt_kwargs = adapt, .log = log ? tu_log_sink : NULL, .log_ud = log };
    if (herd_runner_new(&r, &o, err)) fail_msg("herd_runner_new: %s", err->msg);
    return r;
}

/* A case's flow: its runner, its log (kept for checks; errors only echoed)
 * and the err its calls fill. */
typedef struct tflow { herd_runner *r; tu_log log; herd_err err; bool begun; } tflow;

/* "'a', 'b'": the hosts of the two sshds h[0], h[1] (good or nhost). */
static const char *both(char *buf, size_t cap, const tsshd *h)
{
    snprintf(buf, cap, "'%s', '%s'", h[0].host, h[1].host);
    return buf;
}

/* The runner of a flow on hosts with cluster_kwargs more (kw), client and
 * adapt kwargs (NULL: none), logging into f->log. */
static void flow_new(tflow *f, const char *hosts, const char *more, const char *client, const char *adapt)
{
    char ck[2048];
    kw(ck, sizeof ck, hosts, more);
    memset(f, 0, sizeof *f);
    tu_log_init(&f->log);
    f->log.echo_level = HERD_LOG_ERROR + 1;
    f->r = runner(ck, client, adapt, &f->log, &f->err);
}

/* flow_new on both 127.0.0.1 sshds (good). */
static void flow_new_good(tflow *f, const char *more, const char *client, const char *adapt)
{
    char hosts[256];
    flow_new(f, both(hosts, sizeof hosts, good), more, client, adapt);
}

/* Begin f's flow (name), then wait for nworkers workers (0: do not wait). */
static void flow_begin(tflow *f, const char *name, int nworkers)
{
    if (herd_flow_begin(f->r, name, &f->err)) fail_msg("%s: %s", name, f->err.msg);
    f->begun = true;
    if (nworkers && herd_wait_for_workers(f->r, nworkers, TU_WAIT_S, &f->err)) fail_msg("%s: %s", name, f->err.msg);
}

/* f's flow (name) must not begin, with an error holding each of the words
 * (a NULL-terminated list). */
static void flow_begin_fails(tflow *f, const char *name, ...)
{
    assert_int_not_equal(herd_flow_begin(f->r, name, &f->err), 0);
    va_list ap;
    va_start(ap, name);
    for (const char *w; (w = va_arg(ap, const char *));)
        if (!strstr(f->err.msg, w)) fail_msg("%s: unexpected error (no \"%s\"): %s", name, w, f->err.msg);
    va_end(ap);
}

/* End the flow (when it began) and free its runner; the log stays for
 * checks until flow_free. */
static void flow_end(tflow *f)
{
    if (f->begun) herd_flow_end(f->r, false, &f->err);
    herd_runner_free(f->r);
    f->r = NULL;
    f->begun = false;
}

static void flow_free(tflow *f)
{
    if (f->r) flow_end(f);
    tu_log_free(&f->log);
}

typedef struct st { herd_worker_info w[64]; size_t n; } st;

static void status(st *s)
{
    s->n = 0;
    assert_int_equal(cur_prov->status(cur_cluster, s->w, 64, &s->n), 0);
}

/* How many processes on this machine pred accepts, given each one's pid,
 * argv[0] and whole command line (arguments joined by spaces). */
typedef bool (*proc_pred)(const char *pid, const char *argv0, const char *cmdline, const void *ud);

static int count_procs(proc_pred pred, const void *ud)
{
    static char buf[65536], argv0[256];
    int n = 0;
    DIR *d = opendir("/proc");
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        char path[300];
        snprintf(path, sizeof path, "/proc/%s/cmdline", e->d_name);
        int fd = open(path, O_RDONLY);
        if (fd < 0) continue;
        ssize_t k = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (k <= 0) continue;
        buf[k] = '\0';
        snprintf(argv0, sizeof argv0, "%.255s", buf);
        for (ssize_t i = 0; i < k; i++) if (!buf[i]) buf[i] = ' ';
        if (pred(e->d_name, argv0, buf, ud)) n++;
    }
    if (d) closedir(d);
    return n;
}

static bool names_worker(const char *pid, const char *argv0, const char *cmd, const void *prefix)
{
    char needle[96];
    snprintf(needle, sizeof needle, "--herd-name %s-", (const char *)prefix);
    return strstr(cmd, needle) != NULL;
}

/* Every process whose command line names a worker of prefix (the worker
 * itself, or its wrapper shell). */
static int procs_named(const char *prefix) { return count_procs(names_worker, prefix); }

static bool ssh_for_workers(const char *pid, const char *argv0, const char *cmd, const void *prefix)
{
    char needle[96];
    snprintf(needle, sizeof needle, "'--herd-name' '%s-", (const char *)prefix);   /* quoted for the remote shell */
    return strcmp(argv0, "ssh") == 0 && strstr(cmd, needle) != NULL;
}

/* The ssh clients (on this side) running workers of prefix: one per host
 * and start, however many workers each runs. */
static int ssh_sessions_named(const char *prefix) { return count_procs(ssh_for_workers, prefix); }

static bool remote_sched(const char *pid, const char *argv0, const char *cmd, const void *ud)
{
    int port = *(const int *)ud;
    if (!strstr(cmd, " --herd-scheduler ") || strstr(cmd, "/bin/sh")) return false;
    char path[300], env[8192];
    snprintf(path, sizeof path, "/proc/%s/environ", pid);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return false;
    ssize_t k = read(fd, env, sizeof env - 1);
    close(fd);
    if (k <= 0) return false;
    env[k] = '\0';
    for (char *p = env; p < env + k; p += strlen(p) + 1)
        if (strncmp(p, "SSH_CONNECTION=", 15) == 0) {
            const char *last = strrchr(p, ' ');
            int via = last ? atoi(last + 1) : -1;
            if (port) return via == port;
            return via == good[0].port || via == good[1].port || via == 2222;   /* one of this test's sshds */
        }
    return false;
}

/* Remote schedulers (--herd-scheduler) started over ssh on this machine;
 * port: the sshd it came through (0: any of this test's). */
static int sched_procs(int port) { return count_procs(remote_sched, &port); }

static bool wait_no_sched(double secs)
{
    double end = tu_now() + secs;
    while (sched_procs(0) && tu_now() < end) tu_sleep_ms(20);
    return sched_procs(0) == 0;
}

static bool wait_no_procs(const char *prefix, double secs)
{
    double end = tu_now() + secs;
    while (procs_named(prefix) && tu_now() < end) tu_sleep_ms(20);
    return procs_named(prefix) == 0;
}

/* Submit n ssh_where tasks and return how many distinct sshds ran them. */
static int hosts_used(herd_runner *r, int n, int ms, char seen[][64], int maxseen)
{
    herd_future *fs[64];
    herd_err err = { 0 };
    assert_true(n <= 64);
    for (int i = 0; i < n; i++)
        if (herd_submit(r, "ssh_where", herd_tuple("i", ms), &fs[i], &err)) fail_msg("submit: %s", err.msg);
    int ns = 0;
    for (int i = 0; i < n; i++) {
        const herd_value *v;
        if (herd_future_result(fs[i], TU_WAIT_S, &v, &err)) fail_msg("ssh_where: %s", err.msg);
        const char *s = herd_as_str(v);
        bool known = false;
        for (int j = 0; j < ns; j++) known |= strcmp(seen[j], s) == 0;
        if (!known && ns < maxseen) snprintf(seen[ns++], 64, "%s", s);
        herd_future_release(fs[i]);
    }
    return ns;
}

/* Held values cross hosts: a producer on a worker of one host, its consumer
 * pinned to a worker of the other (which fetches it from the first host's
 * peer server over the bridge: the flow runs with data_transfer: direct, so
 * nothing is relayed), and this process reads it too. */
static void cross_host_transfer(herd_runner *r)
{
    char name[2][64] = { "", "" }, where[2][64] = { "", "" };
    for (int round = 0; round < 10 && (!name[0][0] || !name[1][0]); round++) {
        herd_future *fs[16];
        for (int i = 0; i < 16; i++) fs[i] = tu_submit(r, "ssh_who", herd_tuple("i", 30), NULL);
        for (int i = 0; i < 16; i++) {
            const herd_value *v = result_of(fs[i]);
            const char *n = herd_as_str(herd_at(v, 0)), *w = herd_as_str(herd_at(v, 1));
            for (int h = 0; h < 2; h++) {
                if (where[h][0] && strcmp(where[h], w)) continue;
                if (!where[h][0]) { snprintf(where[h], sizeof where[h], "%s", w); snprintf(name[h], sizeof name[h], "%s", n); }
                break;
            }
            herd_future_release(fs[i]);
        }
    }
    if (!name[0][0] || !name[1][0]) fail_msg("no workers seen on two hosts");
    const int64_t n = (int64_t)4 << 20;
    char on[2][160];   /* name[h] (128) and the braces around it */
    for (int h = 0; h < 2; h++) snprintf(on[h], sizeof on[h], "{workers: ['%s']}", name[h]);
    herd_future *p = tu_submit(r, "t_make", herd_tuple("Iin", n, 77), on[0]);
    herd_future *c = tu_submit(r, "t_check", herd_tuple("vIinn", herd_future_arg(p), n, 77), on[1]);
    const herd_value *v = result_of(c);
    if (herd_as_int(herd_at(v, 0)) != 1) fail_msg("the consumer on %s read the wrong value", name[1]);
    assert_string_equal(herd_as_str(herd_at(v, 1)), name[1]);
    assert_true(blob_ok(result_of(p), (size_t)n, 77));
    assert_string_equal(herd_as_str(herd_map_get(result_of(p), "worker")), name[0]);
    herd_future_release(c);
    herd_future_release(p);
}

/* ---- cases ---- */

static void test_tasks_spread_over_hosts(void **state)
{
    need_sshd();
    tflow f;
    flow_new_good(&f, "n_workers: 4, name: spread", NULL, NULL);
    flow_begin(&f, "spread", 4);
    st s;
    status(&s);
    int per[2] = { 0, 0 };
    for (size_t i = 0; i < s.n; i++) {
        assert_int_equal(s.w[i].state, HERD_WORKER_RUNNING);
        for (int h = 0; h < 2; h++) per[h] += strcmp(s.w[i].host, good[h].host) == 0;
    }
    assert_int_equal(per[0], 2);   /* least loaded first: 2 + 2 */
    assert_int_equal(per[1], 2);
    assert_int_equal(ssh_sessions_named("spread"), 2);   /* one login per host, not per worker */
    char seen[8][64];
    int ns = hosts_used(f.r, 40, 30, seen, 8);
    assert_int_equal(ns, 2);
    for (int h = 0; h < 2; h++) {
        char want[64];
        snprintf(want, sizeof want, "127.0.0.1 %d", good[h].port);
        assert_true(strcmp(seen[0], want) == 0 || strcmp(seen[1], want) == 0);
    }
    /* retire one worker: the other one of its session goes on */
    size_t mate = s.n;
    for (size_t i = 1; i < s.n; i++)
        if (strcmp(s.w[i].host, s.w[0].host) == 0) mate = i;
    assert_true(mate < s.n);
    if (cur_prov->retire(cur_cluster, s.w[0].name, &f.err)) fail_msg("%s", f.err.msg);
    st s2;
    status(&s2);
    assert_int_equal(s2.w[0].state, HERD_WORKER_STOPPED);
    if (!strstr(s2.w[0].detail, "(retired)")) fail_msg("detail: %s", s2.w[0].detail);
    assert_true(tu_pid_gone((pid_t)s.w[0].pid));
    assert_int_equal(s2.w[mate].state, HERD_WORKER_RUNNING);
    assert_int_equal(kill((pid_t)s.w[mate].pid, 0), 0);
    assert_int_equal(ssh_sessions_named("spread"), 2);
    assert_int_equal(hosts_used(f.r, 12, 20, seen, 8), 2);   /* 3 workers still take tasks */
    /* scale_up goes to the least loaded host, over a new session */
    if (cur_prov->scale_up(cur_cluster, 1, &f.err)) fail_msg("%s", f.err.msg);
    status(&s);
    assert_string_equal(s.w[s.n - 1].host, s.w[0].host);
    assert_int_equal(s.w[s.n - 1].state, HERD_WORKER_RUNNING);
    assert_int_equal(ssh_sessions_named("spread"), 3);
    flow_end(&f);
    assert_true(wait_no_procs("spread", 5));
    flow_free(&f);
}

static void test_bad_hosts_reported_others_keep_going(void **state)
{
    need_sshd();
    char hosts[256];
    snprintf(hosts, sizeof hosts, "'%s', '%s', '127.0.0.1:%d'", good[0].host, refusing.host, down_port);
    tflow f;
    flow_new(&f, hosts, "n_workers: 3, name: bad", NULL, NULL);
    /* the three workers all ended up on the host that works */
    flow_begin(&f, "bad-hosts", 3);
    st s;
    status(&s);
    int running = 0;
    bool saw_auth = false, saw_down = false;
    for (size_t i = 0; i < s.n; i++) {
        if (s.w[i].state == HERD_WORKER_RUNNING) {
            running++;
            assert_string_equal(s.w[i].host, good[0].host);
        } else {
            assert_int_equal(s.w[i].state, HERD_WORKER_FAILED);
            if (strstr(s.w[i].detail, "Permission denied")) {
                saw_auth = true;
                assert_string_equal(s.w[i].host, refusing.host);
            }
            if (strstr(s.w[i].detail, "Connection refused")) saw_down = true;
        }
    }
    assert_int_equal(running, 3);
    assert_true(saw_auth);
    assert_true(saw_down);
    assert_true(tu_log_has_line(&f.log, refusing.host, "Permission denied"));
    assert_true(tu_log_has_line(&f.log, "failed hosts", "Connection refused"));
    char seen[4][64];
    assert_int_equal(hosts_used(f.r, 6, 0, seen, 4), 1);
    flow_free(&f);

    /* no host works: the flow cannot start, and says why for each */
    snprintf(hosts, sizeof hosts, "'%s', '127.0.0.1:%d'", refusing.host, down_port);
    flow_new(&f, hosts, "name: none", NULL, NULL);
    flow_begin_fails(&f, "no-hosts", "no host could start a worker", refusing.host, "Permission denied",
                     "Connection refused", (char *)NULL);
    flow_free(&f);

    /* a program the hosts do not have */
    snprintf(hosts, sizeof hosts, "'%s'", good[1].host);
    flow_new(&f, hosts, "name: nobin, remote_command: /nonexistent/herd-prog", NULL, NULL);
    flow_begin_fails(&f, "no-binary", "cannot run /nonexistent/herd-prog", good[1].host, (char *)NULL);
    flow_free(&f);
}

static void test_worker_killed_mid_task(void **state)
{
    need_sshd();
    tflow f;
    flow_new_good(&f, "workers_per_host: 2, name: kill", NULL, NULL);
    flow_begin(&f, "killed", 4);
    herd_future *fs[6];
    for (int i = 0; i < 6; i++)
        if (herd_submit(f.r, "ssh_where", herd_tuple("i", 400), &fs[i], &f.err)) fail_msg("%s", f.err.msg);
    assert_int_equal(tu_wait_running(fs, 6, 4, TU_WAIT_S), 4);   /* every worker is inside a task */
    st s;
    status(&s);
    size_t n0 = s.n;                 /* the nanny's replacement comes after these */
    pid_t victim = (pid_t)s.w[0].pid;
    char vhost[64];
    snprintf(vhost, sizeof vhost, "%s", s.w[0].host);
    assert_true(victim > 0);
    assert_int_equal(kill(victim, SIGKILL), 0);   /* the host is this machine */
    for (int i = 0; i < 6; i++) {
        const herd_value *v;
        if (herd_future_result(fs[i], TU_WAIT_S, &v, &f.err)) fail_msg("task %d: %s", i, f.err.msg);
        herd_future_release(fs[i]);
    }
    double end = tu_now() + 10;
    do { status(&s); } while (s.w[0].state != HERD_WORKER_FAILED && tu_now() < end && (tu_sleep_ms(20), 1));
    assert_int_equal(s.w[0].state, HERD_WORKER_FAILED);
    if (!strstr(s.w[0].detail, "killed by signal 9") || !strstr(s.w[0].detail, vhost))
        fail_msg("detail: %s", s.w[0].detail);
    /* the worker that shares its ssh session runs on */
    int mates = 0;
    for (size_t i = 1; i < n0; i++)
        if (strcmp(s.w[i].host, vhost) == 0) {
            assert_int_equal(s.w[i].state, HERD_WORKER_RUNNING);
            assert_int_equal(kill((pid_t)s.w[i].pid, 0), 0);
            mates++;
        }
    assert_int_equal(mates, 1);                    /* workers_per_host: 2 */
    assert_true(tu_log_has_line(&f.log, "rescheduling", NULL) || tu_log_has_line(&f.log, "died", NULL));
    flow_end(&f);
    assert_true(wait_no_procs("kill", 5));
    flow_free(&f);
}

static void test_close_leaves_nothing(void **state)
{
    need_sshd();
    tflow f;
    flow_new_good(&f, "workers_per_host: 2, name: gone", NULL, NULL);
    flow_begin(&f, "close", 4);
    assert_true(procs_named("gone") >= 4);   /* workers (and their wrappers) exist */
    st s;
    status(&s);
    herd_flow_end(f.r, false, &f.err);
    f.begun = false;
    assert_int_equal(procs_named("gone"), 0);   /* right away: close waited for them */
    for (size_t i = 0; i < s.n; i++) assert_true(tu_pid_gone((pid_t)s.w[i].pid));
    assert_false(tu_log_has_line(&f.log, "left: connection", NULL));   /* each was closed, none killed */
    flow_free(&f);
}

/* The client is killed (SIGKILL: no close): ssh dies with it, the remote
 * wrapper sees its stdin end and stops the worker — and the scheduler, when
 * scheduler_host runs it. */
static void test_client_killed_leaves_nothing(void **state)
{
    need_sshd();
    for (int remote = 0; remote < 2; remote++) {
        char ck[2048], hosts[256], more[256];
        snprintf(more, sizeof more, "n_workers: 2, name: orphan%s%s%s", remote ? ", scheduler_host: '" : "",
                 remote ? good[0].host : "", remote ? "'" : "");
        kw(ck, sizeof ck, both(hosts, sizeof hosts, good), more);
        herd_runner_opts o = { .cluster_class = "ssh.SSHCluster", .cluster_kwargs = ck, .log = tu_quiet_sink };
        bool up;
        pid_t child = tu_flow_in_child(&o, "orphan", 2, &up);
        int nworkers = procs_named("orphan"), nsched = sched_procs(0);
        kill(child, SIGKILL);                  /* first: a failed check must not leave it running */
        int stt;
        waitpid(child, &stt, 0);
        assert_true(up);
        assert_true(nworkers >= 2);
        assert_int_equal(nsched, remote ? 1 : 0);
        if (!wait_no_procs("orphan", 10)) fail_msg("%d worker processes left after the client was killed",
                                                   procs_named("orphan"));
        if (!wait_no_sched(10)) fail_msg("the remote scheduler is left after the client was killed");
    }
}

/* This program's path. */
static void self_exe(char *buf, size_t cap)
{
    ssize_t n = readlink("/proc/self/exe", buf, cap - 1);
    buf[n > 0 ? n : 0] = '\0';
}

/* The worker of f's flow runs the program at bin (an ssh_exe task says). */
static void worker_runs(tflow *f, const char *bin)
{
    herd_future *fu;
    const herd_value *v;
    if (herd_submit(f->r, "ssh_exe", herd_tuple(""), &fu, &f->err) ||
        herd_future_result(fu, TU_WAIT_S, &v, &f->err))
        fail_msg("ssh_exe: %s", f->err.msg);
    assert_string_equal(herd_as_str(v), bin);   /* the worker is the uploaded copy */
    herd_future_release(fu);
}

/* exe: this program; bin: where an upload into DIR/up puts it. */
static void upload_paths(const char *dir, char exe[PATH_MAX], char bin[PATH_MAX + 160])
{
    self_exe(exe, PATH_MAX);
    snprintf(bin, PATH_MAX + 160, "%s/up/bin/%s", dir, strrchr(exe, '/') + 1);
}

/* One flow on good[0] (cluster name) with upload into DIR/up: its worker
 * must be bin, the uploaded copy of this program. The flow has ended when
 * this returns; its log stays in f for checks (flow_free). */
static void upload_round(tflow *f, const char *dir, const char *name, const char *bin)
{
    char hosts[256], more[512];
    snprintf(hosts, sizeof hosts, "'%s'", good[0].host);
    snprintf(more, sizeof more, "name: %s, upload: true, upload_dir: '%s/up'", name, dir);
    flow_new(f, hosts, more, NULL, NULL);
    flow_begin(f, "upload", 0);
    worker_runs(f, bin);
    flow_end(f);
}

static void test_upload_skipped_when_hash_matches(void **state)
{
    need_sshd();
    char dir[128];
    tu_mkdtemp(dir, sizeof dir);
    struct stat st1, st2;
    char exe[PATH_MAX], bin[PATH_MAX + 160];
    upload_paths(dir, exe, bin);
    for (int round = 0; round < 2; round++) {
        tflow f;
        upload_round(&f, dir, "up", bin);
        if (round == 0) {
            assert_true(tu_log_has_line(&f.log, "copied", "/up/bin/"));
            assert_true(tu_log_has_line(&f.log, "copied", "/up/lib/libherd.so"));
            assert_false(tu_log_has_line(&f.log, "is up to date", NULL));
            assert_true(tu_log_has_line(&f.log, "2 files copied, 0 up to date", NULL));
            assert_int_equal(stat(bin, &st1), 0);
        } else {
            assert_true(tu_log_has_line(&f.log, "not copied", "/up/bin/"));
            assert_true(tu_log_has_line(&f.log, "0 files copied, 2 up to date", NULL));
            assert_int_equal(stat(bin, &st2), 0);
            assert_int_equal(st1.st_ino, st2.st_ino);   /* not replaced */
            assert_int_equal(st1.st_mtime, st2.st_mtime);
        }
        flow_free(&f);
    }
    tu_rmtree(dir);
}

/* Same bytes? (files compared whole) */
static bool same_file(const char *a, const char *b)
{
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    bool same = fa && fb;
    while (same) {
        int ca = fgetc(fa), cb = fgetc(fb);
        if (ca != cb) same = false;
        if (ca == EOF || cb == EOF) break;
    }
    if (fa) fclose(fa);
    if (fb) fclose(fb);
    return same;
}

/* A file on the host whose sha256 differs (here: the worker program, changed
 * after the first upload) is copied again; the unchanged one is not. */
static void test_upload_replaces_changed_file(void **state)
{
    need_sshd();
    char dir[128];
    tu_mkdtemp(dir, sizeof dir);
    char exe[PATH_MAX], bin[PATH_MAX + 160];
    upload_paths(dir, exe, bin);
    for (int round = 0; round < 2; round++) {
        tflow f;
        upload_round(&f, dir, "up2", bin);
        if (round == 0) {
            assert_true(tu_log_has_line(&f.log, "2 files copied, 0 up to date", NULL));
            /* the host's copy changes: same size and name, other bytes (a
             * program that would not start as a worker) */
            assert_true(same_file(bin, exe));
            FILE *fp = fopen(bin, "r+b");
            assert_non_null(fp);
            assert_int_equal(fputs("#!/bin/sh\nexit 1\n", fp) >= 0, 1);
            fclose(fp);
            assert_false(same_file(bin, exe));
        } else {
            assert_true(tu_log_has_line(&f.log, "copied", "/up/bin/"));
            assert_false(tu_log_has_line(&f.log, "not copied", "/up/bin/"));
            assert_true(tu_log_has_line(&f.log, "not copied", "/up/lib/libherd.so"));
            assert_true(tu_log_has_line(&f.log, "1 file copied, 1 up to date", NULL));
            assert_true(same_file(bin, exe));          /* this machine's program again */
        }
        flow_free(&f);
    }
    tu_rmtree(dir);
}

static void test_tls_temporary(void **state)
{
    need_sshd();
    tflow f;
    flow_new_good(&f, "name: tls", "{security: temporary}", NULL);
    flow_begin(&f, "tls", 0);
    assert_true(strncmp(herd_runner_address(f.r), "tls://", 6) == 0);
    if (herd_wait_for_workers(f.r, 2, TU_WAIT_S, &f.err)) fail_msg("%s", f.err.msg);
    char seen[4][64];
    assert_int_equal(hosts_used(f.r, 20, 20, seen, 4), 2);
    flow_end(&f);
    assert_true(wait_no_procs("tls", 5));
    flow_free(&f);
}

/* 40 tasks of 100 ms at once; the most workers seen while they ran. */
static int burst(herd_runner *r)
{
    herd_err err = { 0 };
    herd_future *fs[40];
    for (int i = 0; i < 40; i++)
        if (herd_submit(r, "ssh_where", herd_tuple("i", 100), &fs[i], &err)) fail_msg("%s", err.msg);
    int most = 0;
    for (int i = 0; i < 40; i++) {
        const herd_value *v;
        if (herd_future_result(fs[i], TU_WAIT_S, &v, &err)) fail_msg("%s", err.msg);
        herd_future_release(fs[i]);
        int nw = herd_runner_workers(r, NULL);
        if (nw > most) most = nw;
    }
    return most;
}

static void test_adaptive(void **state)
{
    need_sshd();
    tflow f;
    flow_new_good(&f, "n_workers: 0, name: adapt", NULL,
             "{minimum: 1, maximum: 4, interval: 0.1, target_duration: 0.2}");
    flow_begin(&f, "adaptive", 0);
    int most = burst(f.r);
    assert_true(most >= 2);   /* it scaled up over ssh */
    st s;
    status(&s);
    bool h0 = false, h1 = false;
    for (size_t i = 0; i < s.n; i++) {
        h0 |= strcmp(s.w[i].host, good[0].host) == 0;
        h1 |= strcmp(s.w[i].host, good[1].host) == 0;
    }
    assert_true(h0 && h1);    /* spread least loaded first */
    flow_end(&f);
    assert_true(wait_no_procs("adapt", 5));
    flow_free(&f);
}

/* The scheduler of f's flow is at an address that starts with
 * SCHEME://HOST: (as the flow's clients dial it). */
static void sched_at(tflow *f, const char *scheme, const char *host)
{
    char want[96];
    snprintf(want, sizeof want, "%s://%s:", scheme, host);
    if (strncmp(herd_runner_address(f->r), want, strlen(want)) != 0)
        fail_msg("scheduler at %s, expected %s…", herd_runner_address(f->r), want);
}

/* scheduler_host: the scheduler runs on one of the hosts, in an ssh session
 * of its own; this client and the workers dial it there. Plain and with
 * security: temporary (its certificate is issued for the address the
 * client dials). Close stops it after the workers. */
static void test_scheduler_host(void **state)
{
    need_sshd();
    char more[256];
    snprintf(more, sizeof more, "n_workers: 2, name: rsch, scheduler_host: '%s'", good[1].host);
    for (int tls = 0; tls < 2; tls++) {
        tflow f;
        flow_new_good(&f, more, tls ? "{security: temporary}" : NULL, NULL);
        flow_begin(&f, "remote-scheduler", 0);
        sched_at(&f, tls ? "tls" : "tcp", "127.0.0.1");
        assert_int_equal(sched_procs(good[1].port), 1);   /* it came through that host's sshd */
        assert_true(tu_log_has_line(&f.log, "scheduler running on", good[1].host));
        if (herd_wait_for_workers(f.r, 2, TU_WAIT_S, &f.err)) fail_msg("%s", f.err.msg);
        char seen[4][64];
        assert_int_equal(hosts_used(f.r, 20, 20, seen, 4), 2);
        herd_flow_end(f.r, false, &f.err);
        f.begun = false;
        assert_int_equal(sched_procs(0), 0);               /* close waited for it */
        assert_int_equal(procs_named("rsch"), 0);
        assert_false(tu_log_has_line(&f.log, "left: connection", NULL));   /* closed, not killed */
        flow_free(&f);
    }

    assert_true(wait_no_sched(5));
}

/* Adaptive scaling with the scheduler on a host: the decisions read its
 * load over the connection, scale up over ssh, and drain idle workers there
 * before retiring them. */
static void test_scheduler_host_adaptive(void **state)
{
    need_sshd();
    char more[256];
    snprintf(more, sizeof more, "n_workers: 0, name: radapt, scheduler_host: '%s'", good[0].host);
    tflow f;
    flow_new_good(&f, more, NULL,
             "{minimum: 1, maximum: 4, interval: 0.1, wait_count: 2, target_duration: 0.2}");
    flow_begin(&f, "remote-adaptive", 0);
    int most = burst(f.r);
    assert_true(most >= 2);                              /* it scaled up */
    assert_true(tu_log_has_line(&f.log, "adaptive: scaling up", NULL));
    /* idle now: back to minimum, each worker drained by the remote scheduler */
    double end = tu_now() + 15;
    while (herd_runner_workers(f.r, NULL) > 1 && tu_now() < end) tu_sleep_ms(50);
    assert_int_equal(herd_runner_workers(f.r, NULL), 1);
    assert_true(tu_log_wait_line(&f.log, "retired (drained and left", NULL, 10));
    flow_end(&f);
    assert_true(wait_no_procs("radapt", 5));
    assert_true(wait_no_sched(5));
    /* the workers were closed by the scheduler, not killed: no warning */
    assert_false(tu_log_has_line(&f.log, "left: connection", NULL));
    flow_free(&f);
}

/* A scheduler_host that is down or refuses us: the flow does not start, and
 * the error names the host and says ssh's words; no worker was started. */
static void test_scheduler_host_fails(void **state)
{
    need_sshd();
    char host[3][128];
    snprintf(host[0], sizeof host[0], "127.0.0.1:%d", down_port);
    snprintf(host[1], sizeof host[1], "%s", refusing.host);
    snprintf(host[2], sizeof host[2], "%s", good[0].host);
    const char *expect[3] = { "Connection refused", "Permission denied", "cannot run /nonexistent/herd-prog" };
    for (int i = 0; i < 3; i++) {
        char hosts[160], more[600];
        snprintf(hosts, sizeof hosts, "'%s'", good[0].host);
        snprintf(more, sizeof more, "name: schf, scheduler_host: '%s'%s", host[i],
                 i == 2 ? ", remote_command: /nonexistent/herd-prog" : "");
        tflow f;
        flow_new(&f, hosts, more, NULL, NULL);
        flow_begin_fails(&f, "sched-fails", "cannot start the scheduler on", host[i], expect[i], (char *)NULL);
        assert_int_equal(procs_named("schf"), 0);
        flow_free(&f);
    }
    /* a bad value is named with the key */
    char ck[2048];
    kw(ck, sizeof ck, "'127.0.0.1'", "scheduler_host: 'user@'");
    herd_err err = { 0 };
    herd_runner *r = NULL;
    herd_runner_opts o = { .cluster_class = "ssh.SSHCluster", .cluster_kwargs = ck, .client_kwargs = "{start: eager}",
                           .log = tu_quiet_sink };
    int rc = herd_runner_new(&r, &o, &err);
    if (!rc) rc = herd_flow_begin(r, "bad-sched-host", &err);
    assert_int_not_equal(rc, 0);
    if (!strstr(err.msg, "cluster_kwargs.scheduler_host") || !strstr(err.msg, "user@"))
        fail_msg("unexpected error: %s", err.msg);
    herd_runner_free(r);
}

/* Before starting anything, the wrapper asks the program for its herd
 * version: another protocol, or a program that is no herd program, fails
 * the host with what it answered; the other hosts go on. */
static void test_version_checked_before_start(void **state)
{
    need_sshd();
    char dir[128], other[256], notherd[256];
    tu_mkdtemp(dir, sizeof dir);
    snprintf(other, sizeof other, "%s/herd-next", dir);
    assert_int_equal(tu_write_file(other, "#!/bin/sh\necho 'herd 9.0.0 protocol 99'\n"), 0);
    snprintf(notherd, sizeof notherd, "%s/not-herd", dir);   /* and it would not stop by itself */
    assert_int_equal(tu_write_file(notherd, "#!/bin/sh\necho 'usage: not-herd FILE'\nexec sleep 60\n"), 0);
    assert_int_equal(chmod(other, 0755), 0);
    assert_int_equal(chmod(notherd, 0755), 0);
    const char *prog[2] = { other, notherd };
    const char *want[2] = { "is herd 9.0.0, protocol 99: another version than this client (herd " HERD_VERSION_STRING,
                            "is not a herd program: --herd-version answered \"usage: not-herd FILE\"" };
    char hosts[160], more[512];
    snprintf(hosts, sizeof hosts, "'%s'", good[0].host);
    for (int i = 0; i < 2; i++) {
        snprintf(more, sizeof more, "name: vers, remote_command: '%s'", prog[i]);
        tflow f;
        flow_new(&f, hosts, more, NULL, NULL);
        flow_begin_fails(&f, "version", "no host could start a worker", good[0].host, prog[i], want[i], (char *)NULL);
        flow_free(&f);
    }
    /* the scheduler host is checked the same way */
    snprintf(more, sizeof more, "name: vers, remote_command: '%s', scheduler_host: '%s'", other, good[1].host);
    tflow f;
    flow_new(&f, hosts, more, NULL, NULL);
    flow_begin_fails(&f, "version-sched", "cannot start the scheduler on", want[0], (char *)NULL);
    flow_free(&f);
    tu_rmtree(dir);
}

/* A host whose worker the scheduler refuses (here: it presents another
 * token, as a host with a stale configuration or another herd would): the
 * host is marked failed with the scheduler's reason and gets no more
 * workers. */
static void test_refused_worker_marks_host(void **state)
{
    need_sshd();
    char dir[128], script[256], self[PATH_MAX], text[PATH_MAX + 128];
    tu_mkdtemp(dir, sizeof dir);
    self_exe(self, sizeof self);
    snprintf(script, sizeof script, "%s/stale-worker", dir);
    snprintf(text, sizeof text, "#!/bin/sh\nHERD_TOKEN=stale-token exec '%s' \"$@\"\n", self);
    assert_int_equal(tu_write_file(script, text), 0);
    assert_int_equal(chmod(script, 0755), 0);
    char hosts[128], more[512];
    snprintf(hosts, sizeof hosts, "'%s'", good[0].host);
    snprintf(more, sizeof more, "name: stale, remote_command: '%s'", script);
    tflow f;
    flow_new(&f, hosts, more, "{provision_timeout: 3}", NULL);
    flow_begin_fails(&f, "stale", "exited with status 3", good[0].host, (char *)NULL);
    assert_true(tu_log_has_line(&f.log, "cannot run workers: the scheduler refused its worker", good[0].host));
    assert_true(tu_log_has_line(&f.log, "refused its worker", "token"));
    flow_free(&f);
    tu_rmtree(dir);
}

/* Hosts in their own network namespaces: the scheduler listens on this
 * side's bridge address, workers dial it across the veth links; with TLS,
 * whose certificate names that address. A `workers` annotation naming a
 * host's address runs the task there. */
static void test_netns_hosts(void **state)
{
    need_net();
    char hosts[256];
    both(hosts, sizeof hosts, nhost);
    for (int tls = 0; tls < 2; tls++) {
        tflow f;
        flow_new(&f, hosts, "workers_per_host: 2, name: ns",
                 tls ? "{security: temporary, data_transfer: direct}" : "{data_transfer: direct}", NULL);
        flow_begin(&f, "netns", 0);
        sched_at(&f, tls ? "tls" : "tcp", net.gw);
        if (herd_wait_for_workers(f.r, 4, TU_WAIT_S, &f.err)) fail_msg("%s", f.err.msg);
        char seen[4][64];
        assert_int_equal(hosts_used(f.r, 40, 30, seen, 4), 2);
        for (int h = 0; h < 2; h++) {
            char w[64];
            snprintf(w, sizeof w, "%s 2222", net.addr[h]);
            assert_true(strcmp(seen[0], w) == 0 || strcmp(seen[1], w) == 0);
        }
        /* `workers` naming a host by the address its workers dial from:
         * every task runs there */
        for (int h = 0; h < 2; h++)
            for (int i = 0; i < 4; i++) {
                char ann[128], w[64];
                snprintf(ann, sizeof ann, "{workers: ['%s']}", net.addr[h]);
                herd_future *fu = NULL;
                const herd_value *v;
                if (herd_submit_annotated(f.r, "ssh_where", herd_tuple("i", 0), ann, &fu, &f.err) ||
                    herd_future_result(fu, TU_WAIT_S, &v, &f.err))
                    fail_msg("%s: %s", ann, f.err.msg);
                snprintf(w, sizeof w, "%s 2222", net.addr[h]);
                assert_string_equal(herd_as_str(v), w);
                herd_future_release(fu);
            }
        cross_host_transfer(f.r);
        flow_end(&f);
        assert_true(wait_no_procs("ns", 5));
        flow_free(&f);
    }
    /* listening on every interface, over TLS: each host dials its own route
     * back, and the throw-away certificate names those addresses */
    {
        tflow f;
        flow_new(&f, hosts, "workers_per_host: 1, name: nsany, listen_address: 'tcp://0.0.0.0:0'",
                 "{security: temporary}", NULL);
        flow_begin(&f, "netns-any", 0);
        if (strncmp(herd_runner_address(f.r), "tls://", 6) != 0)   /* this process dials it on loopback */
            fail_msg("scheduler at %s, expected tls://…", herd_runner_address(f.r));
        if (herd_wait_for_workers(f.r, 2, TU_WAIT_S, &f.err)) fail_msg("%s", f.err.msg);
        char seen[4][64];
        assert_int_equal(hosts_used(f.r, 20, 30, seen, 4), 2);
        flow_end(&f);
        assert_true(wait_no_procs("nsany", 5));
        flow_free(&f);
    }
    /* the scheduler on the first namespace, over TLS: this client and the
     * other host's workers cross the bridge to reach it; its dashboard
     * (dashboard_address) on every interface of that host, over HTTPS, with
     * the token, at the link the flow log prints */
    char more[256];
    snprintf(more, sizeof more, "workers_per_host: 1, name: nss, scheduler_host: '%s'", nhost[0].host);
    char rdir[64], cl[400], rpath[128];
    tu_mkdtemp(rdir, sizeof rdir);
    snprintf(rpath, sizeof rpath, "%s/report.html", rdir);
    snprintf(cl, sizeof cl, "{security: temporary, data_transfer: direct, dashboard_address: ':0', "
                            "token: ssh-dash-token, performance_report_path: '%s'}", rpath);
    tflow f;
    flow_new(&f, hosts, more, cl, NULL);
    flow_begin(&f, "netns-sched", 0);
    sched_at(&f, "tls", net.addr[0]);
    char url[300], login[400], wurl[96];
    tu_dashboard_links(&f.log, url, sizeof url, login, sizeof login);
    snprintf(wurl, sizeof wurl, "https://%s:", net.addr[0]);   /* that host's address, HTTPS */
    if (strncmp(url, wurl, strlen(wurl)) != 0) fail_msg("dashboard at %s, expected %s…", url, wurl);
    if (herd_wait_for_workers(f.r, 2, TU_WAIT_S, &f.err)) fail_msg("%s", f.err.msg);
    tu_check_token_rules(url, login, "ssh-dash-token");
    tu_resp rep = tu_get(url, "/api/v1/status", "Authorization: Bearer ssh-dash-token");
    assert_non_null(strstr(rep.body, "\"nss-"));       /* the workers it sees */
    tu_resp_free(&rep);
    /* and the provider's own list, which this client sends it */
    for (double end = tu_now() + TU_WAIT_S;; tu_sleep_ms(100)) {
        rep = tu_get(url, "/api/v1/provider", "Authorization: Bearer ssh-dash-token");
        bool seen = strstr(rep.body, "\"workers\":[{\"name\":\"nss-") && strstr(rep.body, "\"state\":\"running\"");
        if (!seen && tu_now() > end) fail_msg("no provider list on the remote dashboard: %s", rep.body);
        tu_resp_free(&rep);
        if (seen) break;
    }
    char seen[4][64];
    assert_int_equal(hosts_used(f.r, 20, 30, seen, 4), 2);
    cross_host_transfer(f.r);              /* and this client reads held results across the bridge */
    flow_end(&f);
    /* the performance report, from that scheduler's own report */
    assert_true(tu_log_has_line(&f.log, "performance report written to", rpath));
    char *html = tu_read_file(rpath);
    assert_non_null(html);
    assert_non_null(strstr(html, "window.HERD_SNAPSHOT = {"));
    assert_non_null(strstr(html, "\"nss-"));
    free(html);
    tu_rmtree(rdir);
    flow_free(&f);
    assert_true(wait_no_procs("nss", 5));
    assert_true(wait_no_sched(5));
}

/* A host cut off the network mid-flow (its link down: no FIN, no RST): its
 * worker notices its scheduler connection is gone and exits by itself
 * (TCP keepalive and TCP_USER_TIMEOUT, 30 s), instead of lingering. */
static void test_partitioned_worker_exits(void **state)
{
    need_net();
    char hosts[128];
    snprintf(hosts, sizeof hosts, "'%s'", nhost[1].host);
    /* a name of this process's own: other checkouts running this test at the
     * same time must not count as this run's leftovers */
    char name[32], w0[40], kwx[64];
    snprintf(name, sizeof name, "part%ld", (long)getpid());
    snprintf(w0, sizeof w0, "%s-0", name);
    snprintf(kwx, sizeof kwx, "n_workers: 1, name: %s", name);
    tflow f;
    flow_new(&f, hosts, kwx, "{heartbeat_timeout: 2}", NULL);
    flow_begin(&f, "partition", 1);
    char seen[2][64];
    assert_int_equal(hosts_used(f.r, 2, 0, seen, 2), 1);
    st s;
    status(&s);
    pid_t pid = (pid_t)s.w[0].pid;
    assert_true(pid > 0);
    char link[32];
    snprintf(link, sizeof link, "hv%ld-1", atol(net.br + 2));   /* the host's veth, bridge side */
    char why[256];
    assert_int_equal(tssh_sh(why, sizeof why, "ip link set %s down", link), 0);
    double t0 = tu_now();
    bool gone = tu_wait_pid_gone(pid, 60);
    double took = tu_now() - t0;
    assert_int_equal(tssh_sh(why, sizeof why, "ip link set %s up", link), 0);
    if (!gone) fail_msg("the cut-off worker (pid %ld) still runs after %.0fs", (long)pid, took);
    fprintf(stderr, "    the cut-off worker exited after %.1fs\n", took);
    assert_true(tu_log_has_line(&f.log, w0, "no heartbeat"));   /* the scheduler gave up on it too */
    flow_end(&f);
    assert_true(wait_no_procs(name, 15));
    flow_free(&f);
}

/* Bytes sent out of interface dev so far (its statistics), or -1. */
static long long tx_bytes(const char *dev)
{
    char path[128];
    snprintf(path, sizeof path, "/sys/class/net/%s/statistics/tx_bytes", dev);
    char *t = tu_read_file(path);
    long long n = t ? atoll(t) : -1;
    free(t);
    return n;
}

/* A holder SIGKILLed in the middle of a direct transfer, made deterministic
 * by a slow link rather than a sleep: the bridge's veth towards the second
 * host is rate-limited (tc tbf, 64 Mbit/s) so a 64 MiB value takes about 8 s
 * to cross it; once 8 MiB of it went out (the veth's tx counter), the
 * holder's process on the first host is killed. The consumer's fetch fails
 * (its worker's log line, which the provider passes on to the flow's log,
 * says so), the scheduler recomputes the
 * value on the first host's other worker, the consumer reads the new copy
 * right, and no task ends Failed. */
static void test_holder_killed_mid_transfer(void **state)
{
    need_net();
    char hosts[256], name[32], more[96], link[32], why[256], dir[256];
    snprintf(name, sizeof name, "mid%ld", (long)getpid());
    snprintf(more, sizeof more, "workers_per_host: 2, name: %s", name);
    snprintf(link, sizeof link, "hv%ld-1", atol(net.br + 2));   /* the second host's veth, bridge side */
    tu_mkdtemp(dir, sizeof dir);
    tflow f;
    flow_new(&f, both(hosts, sizeof hosts, nhost), more, "{data_transfer: direct}", NULL);
    flow_begin(&f, "midkill", 4);
    herd_runner *r = f.r;
    char on[2][64];
    for (int h = 0; h < 2; h++) snprintf(on[h], sizeof on[h], "{workers: ['%s']}", net.addr[h]);
    const int64_t n = (int64_t)64 << 20, seed = 91;
    herd_future *p = tu_submit(r, "t_make", herd_tuple("IIs", n, seed, dir), on[0]);
    if (herd_wait(&p, 1, TU_WAIT_S, &f.err) || herd_future_state(p) != HERD_COMPLETED)
        fail_msg("producer: %s %s", f.err.msg, herd_future_error(p));
    char pidf[300];
    snprintf(pidf, sizeof pidf, "%s/%lld.pid", dir, (long long)seed);
    char *t = tu_read_file(pidf);
    pid_t holder = t ? (pid_t)atol(t) : 0;
    free(t);
    assert_true(holder > 0);
    unlink(pidf);
    if (tssh_sh(why, sizeof why, "tc qdisc add dev %s root tbf rate 64mbit burst 256kb latency 2s", link))
        fail_msg("tc qdisc add dev %s root tbf (iproute2, sch_tbf): %s", link, why);
    long long tx0 = tx_bytes(link);
    assert_true(tx0 >= 0);
    herd_future *c = tu_submit(r, "t_check", herd_tuple("vIInn", herd_future_arg(p), n, seed), on[1]);
    /* the value is on its way: 8 MiB of its 64 went out towards the consumer */
    double end = tu_now() + 4 * TU_WAIT_S;
    while (tx_bytes(link) - tx0 < (8 << 20) && tu_now() < end && herd_future_state(c) != HERD_COMPLETED) tu_sleep_ms(5);
    long long sent = tx_bytes(link) - tx0;
    int killed = kill(holder, SIGKILL);
    tssh_sh(why, sizeof why, "tc qdisc del dev %s root", link);   /* the recomputed copy at full speed */
    if (sent < (8 << 20) || sent >= n) fail_msg("killed the holder with %lld bytes sent, expected mid-transfer", sent);
    assert_int_equal(killed, 0);
    const herd_value *v = result_of(c);
    if (herd_as_int(herd_at(v, 0)) != 1) fail_msg("the consumer read a wrong value");
    assert_int_equal(herd_future_state(c), HERD_COMPLETED);
    /* recomputed on the first host's other worker (a new pid file) */
    t = tu_read_file(pidf);
    pid_t again = t ? (pid_t)atol(t) : 0;
    free(t);
    assert_true(again > 0 && again != holder);
    assert_int_equal(herd_future_state(p), HERD_COMPLETED);
    assert_true(tu_log_has_line(&f.log, "t_check-0: cannot get input", "the transfer broke off"));
    assert_true(tu_log_has_line(&f.log, "t_make", "recomputing it"));
    if (tu_log_has_line(&f.log, "ends Failed", NULL) || tu_log_has_line(&f.log, "ends Crashed", NULL))
        fail_msg("a task was counted failed:\n%s", f.log.text);
    herd_future_release(c);
    herd_future_release(p);
    flow_end(&f);
    assert_true(wait_no_procs(name, 15));
    flow_free(&f);
    tu_rmtree(dir);
}

int main(int argc, char **argv)
{
    herd_init(&argc, &argv);   /* the hosts re-run this binary as a worker */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tasks_spread_over_hosts),
        cmocka_unit_test(test_bad_hosts_reported_others_keep_going),
        cmocka_unit_test(test_worker_killed_mid_task),
        cmocka_unit_test(test_close_leaves_nothing),
        cmocka_unit_test(test_client_killed_leaves_nothing),
        cmocka_unit_test(test_upload_skipped_when_hash_matches),
        cmocka_unit_test(test_upload_replaces_changed_file),
        cmocka_unit_test(test_tls_temporary),
        cmocka_unit_test(test_adaptive),
        cmocka_unit_test(test_scheduler_host),
        cmocka_unit_test(test_scheduler_host_adaptive),
        cmocka_unit_test(test_scheduler_host_fails),
        cmocka_unit_test(test_version_checked_before_start),
        cmocka_unit_test(test_refused_worker_marks_host),
        cmocka_unit_test(test_netns_hosts),
        cmocka_unit_test(test_partitioned_worker_exits),
        cmocka_unit_test(test_holder_killed_mid_transfer),
    };
    return cmocka_run_group_tests_name("ssh.SSHCluster on real sshd", tests, setup, teardown);
}
