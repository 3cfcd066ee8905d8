/* tests/integration/test_chaos.c — the cluster under fire, with real worker
 * processes: 100,000 short tasks on a fixed LocalCluster of 4 while a thread
 * SIGKILLs a random worker every 0.5-1 s (every future ends Completed with
 * its result, or Crashed with a reason, and the nanny has the cluster back at
 * 4 workers at the end); and SIGKILL of a flow's own process (a child running
 * a flow): its workers follow it within 5 s and its private /tmp/herd-<pid>-*
 * directory is swept by the next flow start.
 *
 * No timing assertions: waits are bounded polls for a state. */
#include <herd/herd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdatomic.h>

#include "../support/testutil.h"

#define NTASKS 100000
#define NWORKERS 4
#define NCHUNKS 8

/* (i) -> i * i */
static int t_chaos_sq(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    int64_t i = herd_as_int(herd_at(args, 0));
    *out = herd_int(i * i);
    return 0;
}
HERD_TASK(t_chaos_sq);

/* () -> getpid() */
static int t_chaos_pid(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    *out = herd_int(getpid());
    return 0;
}
HERD_TASK(t_chaos_pid);

/* The live (not zombie) children of this process: the LocalCluster's worker
 * processes, forked here by its spawner thread. Up to cap pids. */
static size_t worker_pids(pid_t *out, size_t cap)
{
    size_t n = 0;
    DIR *d = opendir("/proc");
    if (!d) return 0;
    struct dirent *e;
    pid_t me = getpid();
    while ((e = readdir(d)) && n < cap) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end || pid <= 1) continue;
        char path[64];
        snprintf(path, sizeof path, "/proc/%ld/stat", pid);
        char *s = tu_read_file(path);
        if (!s) continue;
        const char *rp = strrchr(s, ')');
        char st = 0;
        long ppid = 0;
        if (rp && sscanf(rp + 1, " %c %ld", &st, &ppid) == 2 && ppid == me && st != 'Z' && st != 'X')
            out[n++] = (pid_t)pid;
        free(s);
    }
    closedir(d);
    return n;
}

typedef struct killer {
    pthread_t thread;
    atomic_int stop;
    atomic_int kills;
    unsigned seed;
} killer;

static void *killer_main(void *arg)
{
    killer *k = arg;
    while (!atomic_load(&k->stop)) {
        long ms = 500 + (long)(rand_r(&k->seed) % 501);          /* 0.5 to 1 s */
        for (long t = 0; t < ms && !atomic_load(&k->stop); t += 10) tu_sleep_ms(10);
        if (atomic_load(&k->stop)) break;
        pid_t pids[64];
        size_t n = worker_pids(pids, 64);
        if (!n) continue;
        pid_t victim = pids[(size_t)rand_r(&k->seed) % n];
        if (kill(victim, SIGKILL) == 0) atomic_fetch_add(&k->kills, 1);
    }
    return NULL;
}

static void test_random_kills(void **state)
{
    tu_log log;
    tu_log_init(&log);
    log.echo_level = HERD_LOG_ERROR;     /* the deaths are expected */
    herd_runner *r = tu_flow("{n_workers: 4, threads_per_worker: 2}", "{allowed_failures: 1000}", NWORKERS, &log);
    killer k = { .seed = (unsigned)getpid() };
    atomic_init(&k.stop, 0);
    atomic_init(&k.kills, 0);
    assert_int_equal(pthread_create(&k.thread, NULL, killer_main, &k), 0);

    herd_future **fs = calloc(NTASKS, sizeof *fs);
    assert_non_null(fs);
    herd_err err = { 0 };
    for (int i = 0; i < NTASKS; i++) {
        /* each eighth goes in after one more kill: deaths all through the
         * run, and more than the cluster's size (a state, not a time) */
        if (i % (NTASKS / NCHUNKS) == 0)
            while (atomic_load(&k.kills) < i / (NTASKS / NCHUNKS)) tu_sleep_ms(10);
        if (herd_submit(r, "t_chaos_sq", herd_tuple("i", i), &fs[i], &err))
            fail_msg("submit %d: %s", i, err.msg);
    }
    size_t completed = 0, crashed = 0;
    for (int i = 0; i < NTASKS; i++) {
        const herd_value *v;
        int rc = herd_future_result(fs[i], 120, &v, &err);
        herd_state st = herd_future_state(fs[i]);
        if (rc == 0) {
            assert_int_equal(st, HERD_COMPLETED);
            if (herd_as_int(v) != (int64_t)i * i)
                fail_msg("task %d: result %lld, expected %lld", i, (long long)herd_as_int(v), (long long)i * i);
            completed++;
        } else if (st == HERD_CRASHED) {
            const char *why = herd_future_error(fs[i]);
            if (!why || !strstr(why, "allowed_failures")) fail_msg("task %d Crashed without a reason: %s", i, why ? why : "(none)");
            crashed++;
        } else {
            fail_msg("task %d: %s after 120 s (%s)", i, herd_state_name(st), err.msg);
        }
        herd_future_release(fs[i]);
    }
    free(fs);
    atomic_store(&k.stop, 1);
    pthread_join(k.thread, NULL);
    assert_int_equal(completed + crashed, NTASKS);
    assert_true(atomic_load(&k.kills) >= NCHUNKS - 1);
    /* the nanny has the cluster back at its size, and said why workers died */
    if (herd_wait_for_workers(r, NWORKERS, TU_WAIT_S, &err)) fail_msg("cluster not back to %d workers: %s", NWORKERS, err.msg);
    double end = tu_now() + TU_WAIT_S;
    pid_t pids[64];
    while (worker_pids(pids, 64) != NWORKERS && tu_now() < end) tu_sleep_ms(10);
    assert_int_equal(worker_pids(pids, 64), NWORKERS);
    assert_true(tu_log_has_line(&log, "nanny: worker", "killed by signal 9"));
    fprintf(stderr, "chaos: %d kills, %zu completed, %zu crashed\n", atomic_load(&k.kills), completed, crashed);
    tu_flow_end(r);
    tu_log_free(&log);
}

/* ---- SIGKILL of the flow's process ---- */

/* The child program: a flow on 2 workers (start: eager) that writes
 * "<worker pid> <worker pid> <scheduler address>" to <dir>/pids, then waits
 * to be killed. */
static int flow_child(const char *dir)
{
    herd_runner *r = NULL;
    herd_err err = { 0 };
    herd_runner_opts o = { .cluster_kwargs = "{n_workers: 2, threads_per_worker: 1}", .client_kwargs = "{start: eager}",
                           .log = tu_quiet_sink };
    if (herd_runner_new(&r, &o, &err) || herd_flow_begin(r, "killed", &err) ||
        herd_wait_for_workers(r, 2, TU_WAIT_S, &err)) {
        fprintf(stderr, "flow child: %s\n", err.msg);
        _exit(2);
    }
    long pids[2] = { 0, 0 };
    while (!pids[0] || !pids[1]) {       /* until tasks ran on both workers */
        herd_future *f[2];
        for (int i = 0; i < 2; i++)
            if (herd_submit(r, "t_chaos_pid", NULL, &f[i], &err)) { fprintf(stderr, "%s\n", err.msg); _exit(2); }
        for (int i = 0; i < 2; i++) {
            const herd_value *v;
            if (herd_future_result(f[i], TU_WAIT_S, &v, &err)) { fprintf(stderr, "%s\n", err.msg); _exit(2); }
            long p = (long)herd_as_int(v);
            if (!pids[0]) pids[0] = p;
            else if (p != pids[0]) pids[1] = p;
            herd_future_release(f[i]);
        }
    }
    char text[700], path[4200];
    snprintf(text, sizeof text, "%ld %ld %s\n", pids[0], pids[1], herd_runner_address(r));
    snprintf(path, sizeof path, "%s/pids", dir);
    if (tu_write_file(path, text)) _exit(2);
    for (;;) pause();
}

static void test_flow_process_killed(void **state)
{
    char dir[64];
    tu_mkdtemp(dir, sizeof dir);
    pid_t child;
    int st;
    char *text = tu_self_child("--flow-child", dir, "pids", &child);   /* its orphans come here */
    long pids[2] = { 0, 0 };
    char sock[600] = "";
    if (sscanf(text, "%ld %ld unix://%599s", &pids[0], &pids[1], sock) != 3 || pids[0] <= 1 || pids[1] <= 1) {
        kill(child, SIGKILL);
        waitpid(child, &st, 0);
        fail_msg("flow child: expected two worker pids and a unix socket, got \"%s\"", text);
    }
    free(text);
    char sdir[600];
    snprintf(sdir, sizeof sdir, "%s", sock);
    char *slash = strrchr(sdir, '/');
    assert_non_null(slash);
    *slash = '\0';
    char want[64];
    snprintf(want, sizeof want, "/tmp/herd-%ld-", (long)child);
    assert_memory_equal(sdir, want, strlen(want));     /* the directory names its owner */

    assert_int_equal(kill(child, SIGKILL), 0);
    assert_int_equal(waitpid(child, &st, 0), child);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    for (int i = 0; i < 2; i++)
        if (!tu_wait_pid_gone((pid_t)pids[i], 5))
            fail_msg("worker pid %ld survived SIGKILL of its flow's process", pids[i]);
    /* a SIGKILLed process cleans nothing: its directory is left ... */
    assert_int_equal(access(sdir, F_OK), 0);
    /* ... until the next flow start on this machine sweeps it */
    herd_runner *r = tu_flow("{n_workers: 1, threads_per_worker: 1}", NULL, 1, NULL);
    bool left = access(sdir, F_OK) == 0;
    tu_flow_end(r);
    if (left) {
        unlink(sock);
        rmdir(sdir);
        fail_msg("%s of the killed flow %ld outlived the next flow start", sdir, (long)child);
    }
    tu_rmtree(dir);
}

int main(int argc, char **argv)
{
    herd_init(&argc, &argv);
    if (argc == 3 && strcmp(argv[1], "--flow-child") == 0) return flow_child(argv[2]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_kills),
        cmocka_unit_test(test_flow_process_killed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
