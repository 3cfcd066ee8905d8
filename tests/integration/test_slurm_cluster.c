/* tests/integration/test_slurm_cluster.c — slurm.SLURMCluster against a real
 * Slurm this test starts itself (tests/support/slurm.h: munged, slurmctld
 * and slurmd on this machine, 127.0.0.1). The workers are this binary, run
 * by slurmd inside batch jobs; they dial the scheduler on 127.0.0.1
 * (interface: lo).
 *
 * Cases: a flow on 2 jobs x 2 processes (the tasks see Slurm's job ids);
 * adaptive 0..4; a job held PENDING (its partition DOWN) reported with
 * Slurm's reason; a job cancelled from outside fails its workers (Slurm's
 * state in the log) and their tasks run elsewhere; retiring one worker of a
 * job; a worker killed inside its job ends the job and is replaced; TLS
 * (security: temporary); nothing left in squeue after close or after
 * SIGTERM; jobs of a client killed by SIGKILL
 * swept by the next start;
 * bad kwargs (no cores, memory: lots) refused before any sbatch; sbatch
 * refusing the script (unknown partition) surfaces Slurm's message. Skips,
 * loudly, only when Slurm is not installed or the test is not root. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../support/testutil.h"
#include "../support/slurm_flow.h"

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

/* ---- the cases' scaffolding ---- */

/* A flow run on cluster_kwargs ck (client_kwargs client, NULL: the
 * default; adapt_kwargs adapt; the log into *log when given), started, with
 * nworkers connected. */
static herd_runner *flow_up(const char *ck, const char *client, const char *adapt, tu_log *log, const char *name,
                            int nworkers)
{
    herd_err err = { 0 };
    if (log) {
        tu_log_init(log);
        log->echo_level = HERD_LOG_ERROR + 1;
    }
    herd_runner *r = runner_client(ck, client, adapt, log);
    if (herd_flow_begin(r, name, &err)) fail_msg("%s", err.msg);
    if (nworkers && herd_wait_for_workers(r, nworkers, TU_WAIT_S, &err)) fail_msg("%s", err.msg);
    return r;
}

/* The flow run's end: nothing left in squeue after it. */
static void flow_down(herd_runner *r, tu_log *log)
{
    herd_err err = { 0 };
    if (herd_flow_end(r, false, &err)) fail_msg("%s", err.msg);
    herd_runner_free(r);
    if (log) tu_log_free(log);
    assert_queue_empty();
}

/* slurm_where(ms) run to its end: the Slurm job id it ran in (malloc'd). */
static char *job_of_task(herd_runner *r, int ms)
{
    herd_err err = { 0 };
    herd_future *f;
    const herd_value *v;
    if (herd_submit(r, "slurm_where", herd_tuple("i", ms), &f, &err) || herd_future_result(f, TU_WAIT_S, &v, &err))
        fail_msg("%s", err.msg);
    char *id = strdup(herd_as_str(v));
    herd_future_release(f);
    assert_string_not_equal(id, "none");
    return id;
}

/* A flow that must not start (on SLURMCluster by name, client_kwargs
 * client): its error in *err, the code returned. */
static int flow_refused(const char *ck, const char *client, herd_err *err)
{
    herd_runner *r = NULL;
    herd_runner_opts o = { .cluster_class = "slurm.SLURMCluster", .cluster_kwargs = ck, .client_kwargs = client,
                           .log = tu_quiet_sink };
    int rc = herd_runner_new(&r, &o, err);
    if (!rc) {
        rc = herd_flow_begin(r, "refused", err);
        if (!rc) herd_flow_end(r, false, NULL);
        herd_runner_free(r);
    }
    return rc;
}

/* How many times needle stands in text. */
static int count_in(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)); p++) n++;
    return n;
}

/* The partition "spare" DOWN (its jobs stay PENDING) or UP again. */
static int spare_down(bool down)
{
    return tslurm_sh(NULL, 0, "scontrol update PartitionName=spare State=%s", down ? "DOWN" : "UP");
}

/* A child process that starts an adaptive flow on ck (2 jobs wanted) and
 * waits to be killed; *up once it said its cluster started. */
static pid_t flow_in_child(const char *ck, const char *name, bool *up)
{
    herd_runner_opts o = { .cluster_class = "slurm.SLURMCluster", .cluster_kwargs = ck,
                           .client_kwargs = "{start: eager}", .adapt_kwargs = "{minimum: 2, maximum: 2}",
                           .log = tu_quiet_sink };
    return tu_flow_in_child(&o, name, 0, up);
}

/* ---- cases ---- */

/* 2 jobs x 2 processes: 4 workers; tasks run in both jobs; the queue is
 * empty after the flow. */
static void test_flow_two_jobs_two_processes(void **state)
{
    need_slurm();
    char ck[1024];
    kw(ck, sizeof ck, "cores: 2, processes: 2, n_workers: 4, job_name: flow");
    herd_err err = { 0 };
    herd_runner *r = flow_up(ck, NULL, NULL, NULL, "slurm-flow", 4);
    char q[2048];
    tslurm_active(q, sizeof q);
    assert_int_equal(count_in(q, "RUNNING"), 2);
    herd_future *fs[16];
    for (int i = 0; i < 16; i++)
        if (herd_submit(r, "slurm_where", herd_tuple("i", 200), &fs[i], &err)) fail_msg("%s", err.msg);
    char jobs[2][32] = { "", "" };
    for (int i = 0; i < 16; i++) {
        const herd_value *v;
        if (herd_future_result(fs[i], TU_WAIT_S, &v, &err)) fail_msg("%s", err.msg);
        const char *id = herd_as_str(v);
        assert_non_null(id);
        assert_string_not_equal(id, "none");
        if (!jobs[0][0]) snprintf(jobs[0], sizeof jobs[0], "%s", id);
        else if (strcmp(jobs[0], id) && !jobs[1][0]) snprintf(jobs[1], sizeof jobs[1], "%s", id);
        herd_future_release(fs[i]);
    }
    assert_true(jobs[1][0]);   /* both jobs ran tasks */
    st s;
    status(&s);
    assert_int_equal(s.n, 4);
    for (size_t i = 0; i < s.n; i++) {
        assert_int_equal(s.w[i].state, HERD_WORKER_RUNNING);
        assert_non_null(strstr(s.w[i].detail, "RUNNING"));
    }
    flow_down(r, NULL);
}

/* adapt 0..4: jobs come with the load and go after it. */
static void test_adaptive(void **state)
{
    need_slurm();
    char ck[1024];
    kw(ck, sizeof ck, "cores: 2, processes: 2, n_workers: 0, job_name: adapt");
    herd_err err = { 0 };
    tu_log log;
    herd_runner *r = flow_up(ck, NULL, "{minimum: 0, maximum: 4, interval: 0.1, target_duration: 0.2, wait_count: 3}", &log,
                             "slurm-adapt", 0);
    herd_future *fs[40];
    for (int i = 0; i < 40; i++)
        if (herd_submit(r, "slurm_where", herd_tuple("i", 150), &fs[i], &err)) fail_msg("%s", err.msg);
    int most = 0;
    for (int i = 0; i < 40; i++) {
        const herd_value *v;
        if (herd_future_result(fs[i], TU_WAIT_S, &v, &err)) fail_msg("%s", err.msg);
        herd_future_release(fs[i]);
        int nw = herd_runner_workers(r, NULL);
        if (nw > most) most = nw;
    }
    assert_true(most >= 2);                    /* at least one job's workers came */
    assert_true(most <= 4);
    /* idle: adaptive retires them all (minimum 0), and their jobs end */
    double end = tu_now() + TU_WAIT_S;
    while (herd_runner_workers(r, NULL) > 0 && tu_now() < end) tu_sleep_ms(50);
    assert_int_equal(herd_runner_workers(r, NULL), 0);
    assert_queue_empty();
    flow_down(r, &log);
}

/* A partition set DOWN holds the job PENDING: the log and status give
 * Slurm's reason; close cancels it. */
static void test_pending_reported_with_reason(void **state)
{
    need_slurm();
    assert_int_equal(spare_down(true), 0);
    char ck[1024];
    kw(ck, sizeof ck, "cores: 1, n_workers: 1, queue: spare, pending_report: 0.5, job_name: pend");
    tu_log log;
    /* adaptive (minimum 1): herd_flow_begin does not wait for the worker */
    herd_runner *r = flow_up(ck, NULL, "{minimum: 1, maximum: 1, interval: 0.1}", &log, "slurm-pending", 0);
    bool seen = tu_log_wait_line(&log, "PENDING", "PartitionDown", TU_WAIT_S);
    st s;
    status(&s);
    herd_flow_end(r, false, NULL);
    herd_runner_free(r);
    tu_log_free(&log);
    /* a fixed cluster: the provision timeout says why no worker came */
    herd_err err2 = { 0 };
    int rc = flow_refused(ck, "{start: eager, provision_timeout: 1}", &err2);
    spare_down(false);
    assert_true(seen);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.w[0].state, HERD_WORKER_STARTING);
    assert_non_null(strstr(s.w[0].detail, "PartitionDown"));
    assert_int_not_equal(rc, 0);
    if (!strstr(err2.msg, "provision_timeout") || !strstr(err2.msg, "PartitionDown"))
        fail_msg("the provision timeout does not give Slurm's reason: %s", err2.msg);
    assert_queue_empty();
}

/* An admin's scancel of one job: its worker fails with Slurm's state, its
 * task runs on the other job's worker, the nanny replaces it. */
static void test_scancel_from_outside(void **state)
{
    need_slurm();
    char ck[1024];
    kw(ck, sizeof ck, "cores: 1, processes: 1, n_workers: 2, job_name: kill");
    herd_err err = { 0 };
    tu_log log;
    herd_runner *r = flow_up(ck, NULL, NULL, &log, "slurm-scancel", 2);
    herd_future *fs[2];
    for (int i = 0; i < 2; i++)
        if (herd_submit(r, "slurm_where", herd_tuple("i", 3000), &fs[i], &err)) fail_msg("%s", err.msg);
    assert_int_equal(tu_wait_running(fs, 2, 2, TU_WAIT_S), 2);
    /* cancel the job of the first worker, as an admin would */
    st s;
    status(&s);
    assert_true(s.n >= 1);
    const char *d = strstr(s.w[0].detail, "job ");
    assert_non_null(d);
    char id[32];
    sscanf(d + 4, "%31s", id);
    char out[512];
    assert_int_equal(tslurm_sh(out, sizeof out, "scancel %s", id), 0);
    for (int i = 0; i < 2; i++) {
        const herd_value *v;
        if (herd_future_result(fs[i], TU_WAIT_S, &v, &err)) fail_msg("task %d: %s", i, err.msg);
        herd_future_release(fs[i]);
    }
    char want[128];
    snprintf(want, sizeof want, "Slurm job %s CANCELLED", id);
    bool logged = tu_log_wait_line(&log, want, "died", TU_WAIT_S);
    flow_down(r, &log);
    assert_true(logged);
}

/* retire one worker of a running 2-process job: it leaves, the job and its
 * other worker run on. */
static void test_retire_one_worker_of_a_job(void **state)
{
    need_slurm();
    char ck[1024];
    kw(ck, sizeof ck, "cores: 2, processes: 2, n_workers: 2, job_name: ret");
    herd_err err = { 0 };
    herd_runner *r = flow_up(ck, NULL, NULL, NULL, "slurm-retire", 2);
    st s;
    status(&s);
    assert_int_equal(s.n, 2);
    assert_int_equal(cur_prov->retire(cur_cluster, s.w[0].name, &err), 0);
    double end = tu_now() + TU_WAIT_S;
    while (herd_runner_workers(r, NULL) > 1 && tu_now() < end) tu_sleep_ms(20);
    assert_int_equal(herd_runner_workers(r, NULL), 1);
    status(&s);
    assert_int_equal(s.w[0].state, HERD_WORKER_STOPPED);
    assert_int_equal(s.w[1].state, HERD_WORKER_RUNNING);
    char q[1024];
    tslurm_active(q, sizeof q);
    assert_non_null(strstr(q, "RUNNING"));      /* the job runs on with its other worker */
    free(job_of_task(r, 10));
    /* an unknown name is refused, naming it */
    assert_int_not_equal(cur_prov->retire(cur_cluster, "ret-nosuch-0-0", &err), 0);
    assert_non_null(strstr(err.msg, "ret-nosuch-0-0"));
    flow_down(r, NULL);
}

/* The pid of the process on this machine whose command line has
 * "--herd-name NAME" (the workers run here, under slurmd), or 0. */
static pid_t worker_pid(const char *name)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    pid_t found = 0;
    while (d && !found && (e = readdir(d))) {
        char path[300], buf[4096];
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        snprintf(path, sizeof path, "/proc/%s/cmdline", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = '\0';
        for (size_t i = 0; i + 1 < n; i += strlen(buf + i) + 1)
            if (strcmp(buf + i, "--herd-name") == 0 && strcmp(buf + i + strlen(buf + i) + 1, name) == 0)
                found = (pid_t)atol(e->d_name);
    }
    if (d) closedir(d);
    return found;
}

/* A worker process killed inside its job ends the job: its workers fail
 * with Slurm's state and the worker's status, and the nanny submits a new
 * job. */
static void test_worker_killed_ends_its_job(void **state)
{
    need_slurm();
    char ck[1024];
    kw(ck, sizeof ck, "cores: 2, processes: 2, n_workers: 2, job_name: dies");
    herd_err err = { 0 };
    tu_log log;
    herd_runner *r = flow_up(ck, NULL, NULL, &log, "slurm-dies", 2);
    st s;
    status(&s);
    pid_t pid = worker_pid(s.w[1].name);
    assert_true(pid > 0);
    kill(pid, SIGKILL);
    bool died = tu_log_wait_line(&log, s.w[0].name, "FAILED (NonZeroExitCode), exit status 137", TU_WAIT_S);
    /* replaced: a new job's two workers connect */
    double end = tu_now() + TU_WAIT_S;
    size_t n = 0;
    while (tu_now() < end) {
        status(&s);
        n = 0;
        for (size_t i = 0; i < s.n; i++) n += s.w[i].state == HERD_WORKER_RUNNING;
        if (n == 2 && herd_runner_workers(r, NULL) == 2) break;
        tu_sleep_ms(50);
    }
    herd_flow_end(r, false, &err);
    herd_runner_free(r);
    if (!died) {
        fprintf(stderr, "the flow's log:\n%s\n", log.text ? log.text : "");
        char cmd[300];
        snprintf(cmd, sizeof cmd, "tail -n 20 %s/jobs/dies-*", slurm.dir);
        if (system(cmd) != 0) fprintf(stderr, "no job output\n");
    }
    tu_log_free(&log);
    assert_true(died);
    assert_int_equal(n, 2);
    assert_true(s.n >= 4);
    assert_queue_empty();
}

/* security: temporary: the workers in the jobs get their certificate
 * through sbatch's environment, like the token, and the flow runs over TLS. */
static void test_tls_temporary(void **state)
{
    need_slurm();
    char ck[1024];
    kw(ck, sizeof ck, "cores: 2, processes: 2, n_workers: 2, job_name: tls");
    herd_runner *r = flow_up(ck, "{start: eager, security: temporary}", NULL, NULL, "slurm-tls", 2);
    assert_int_equal(strncmp(herd_runner_address(r), "tls://127.0.0.1:", 16), 0);
    free(job_of_task(r, 10));
    flow_down(r, NULL);
}

/* SIGTERM to the client in the middle of a flow: the runtime's teardown
 * closes the cluster, which cancels its jobs (PENDING ones here, which
 * nothing else would remove). */
static void test_sigterm_cancels_jobs(void **state)
{
    need_slurm();
    char out[2048];
    assert_int_equal(spare_down(true), 0);
    char ck[1024];
    kw(ck, sizeof ck, "cores: 1, n_workers: 2, queue: spare, job_name: term");
    bool up;
    pid_t child = flow_in_child(ck, "term", &up);
    tslurm_active(out, sizeof out);
    int before = count_in(out, "term-");
    kill(child, SIGTERM);
    int stt;
    waitpid(child, &stt, 0);
    spare_down(false);
    assert_true(up);
    assert_int_equal(before, 2);
    assert_true(WIFSIGNALED(stt) || WIFEXITED(stt));
    assert_queue_empty();
}

/* A client killed by SIGKILL leaves PENDING jobs; the next start with the
 * same job_name cancels them. */
static void test_killed_client_swept(void **state)
{
    need_slurm();
    char out[2048];
    assert_int_equal(spare_down(true), 0);
    char ck[1024];
    kw(ck, sizeof ck, "cores: 1, n_workers: 2, queue: spare, job_name: orphan");
    bool up;
    pid_t child = flow_in_child(ck, "orphan", &up);
    kill(child, SIGKILL);
    int stt;
    waitpid(child, &stt, 0);
    assert_true(up);
    tslurm_active(out, sizeof out);
    assert_int_equal(count_in(out, "orphan-"), 2);   /* the killed client's jobs are still there */
    assert_int_equal(spare_down(false), 0);
    /* the next cluster with that job_name removes them at start */
    char ck2[1024];
    kw(ck2, sizeof ck2, "cores: 1, n_workers: 0, job_name: orphan");
    tu_log log;
    herd_runner *r = flow_up(ck2, NULL, "{minimum: 0, maximum: 1}", &log, "sweep", 0);
    bool swept = tu_log_has_line(&log, "left by a client", "no longer runs");
    flow_down(r, &log);
    assert_true(swept);
}

/* Bad kwargs are refused with the field named, before any sbatch runs (the
 * submit command is a program that would leave a mark). */
static void test_bad_kwargs_refused_before_sbatch(void **state)
{
    need_slurm();
    char dir[128], mark[192], fake[192];
    tu_mkdtemp(dir, sizeof dir);
    snprintf(mark, sizeof mark, "%s/ran", dir);
    snprintf(fake, sizeof fake, "%s/sbatch", dir);
    char script[400];
    snprintf(script, sizeof script, "#!/bin/sh\ntouch '%s'\nexec sbatch \"$@\"\n", mark);
    assert_int_equal(tu_write_file(fake, script), 0);
    chmod(fake, 0755);
    const struct { const char *kw, *want1, *want2; } cases[] = {
        { "{memory: 1GiB, n_workers: 1, submit_command: '%s'}", "cores", "required" },
        { "{cores: 1, memory: lots, n_workers: 1, submit_command: '%s'}", "memory", "lots" },
        { "{cores: 1, memory: auto, n_workers: 1, submit_command: '%s'}", "memory", "auto" },
        { "{cores: 1, memory: 1GiB, processes: 2, n_workers: 1, submit_command: '%s'}", "processes", "cores" },
        { "{cores: 1, memory: 1GiB, job_name: 'a b', submit_command: '%s'}", "job_name", "a b" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char ck[512];
        snprintf(ck, sizeof ck, cases[i].kw, fake);
        herd_err err = { 0 };
        if (!flow_refused(ck, "{start: eager}", &err)) fail_msg("%s was accepted", ck);
        if (!strstr(err.msg, cases[i].want1) || !strstr(err.msg, cases[i].want2))
            fail_msg("%s: the error \"%s\" does not name %s / %s", ck, err.msg, cases[i].want1, cases[i].want2);
        assert_int_not_equal(access(mark, F_OK), 0);   /* no sbatch ran */
    }
    tu_rmtree(dir);
    assert_queue_empty();
}

/* A submit command that exits without reading the script (here 200 KB, more
 * than a pipe holds): its words come back as the error, and this process
 * gets no SIGPIPE. */
static void test_submit_command_not_reading_stdin(void **state)
{
    need_slurm();
    char dir[128], fake[192];
    tu_mkdtemp(dir, sizeof dir);
    snprintf(fake, sizeof fake, "%s/sbatch", dir);
    assert_int_equal(tu_write_file(fake, "#!/bin/sh\nexec 0<&-\necho 'sbatch: error: refused by the test' >&2\nexit 1\n"), 0);
    chmod(fake, 0755);
    size_t cap = 300 * 1024;
    char *ck = malloc(cap);
    assert_non_null(ck);
    int o = snprintf(ck, cap, "{cores: 1, memory: 100MiB, n_workers: 1, interface: lo, submit_command: '%s', "
                              "job_script_prologue: [", fake);
    for (int i = 0; i < 2000; i++)
        o += snprintf(ck + o, cap - (size_t)o, "%s'echo %0100d'", i ? ", " : "", i);
    snprintf(ck + o, cap - (size_t)o, "]}");
    herd_err err = { 0 };
    herd_runner *r = runner(ck, NULL, NULL);
    int rc = herd_flow_begin(r, "no-stdin", &err);
    if (!rc) herd_flow_end(r, false, NULL);
    herd_runner_free(r);
    free(ck);
    tu_rmtree(dir);
    assert_int_not_equal(rc, 0);
    if (!strstr(err.msg, "refused by the test")) fail_msg("the error lacks the command's words: %s", err.msg);
}

/* sbatch refusing the job (an unknown partition): Slurm's own words. */
static void test_sbatch_refusal_surfaces(void **state)
{
    need_slurm();
    char ck[1024];
    kw(ck, sizeof ck, "cores: 1, n_workers: 1, queue: nosuchpartition");
    herd_err err = { 0 };
    herd_runner *r = runner(ck, NULL, NULL);
    int rc = herd_flow_begin(r, "refused", &err);
    if (!rc) herd_flow_end(r, false, NULL);
    herd_runner_free(r);
    assert_int_not_equal(rc, 0);
    if (!strstr(err.msg, "invalid partition") && !strstr(err.msg, "Invalid partition"))
        fail_msg("the error does not carry sbatch's message: %s", err.msg);
    assert_non_null(strstr(err.msg, "sbatch"));
    assert_queue_empty();
}

int main(int argc, char **argv)
{
    herd_init(&argc, &argv);   /* slurmd re-runs this binary as a worker */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flow_two_jobs_two_processes),
        cmocka_unit_test(test_adaptive),
        cmocka_unit_test(test_pending_reported_with_reason),
        cmocka_unit_test(test_scancel_from_outside),
        cmocka_unit_test(test_retire_one_worker_of_a_job),
        cmocka_unit_test(test_worker_killed_ends_its_job),
        cmocka_unit_test(test_tls_temporary),
        cmocka_unit_test(test_sigterm_cancels_jobs),
        cmocka_unit_test(test_killed_client_swept),
        cmocka_unit_test(test_bad_kwargs_refused_before_sbatch),
        cmocka_unit_test(test_sbatch_refusal_surfaces),
        cmocka_unit_test(test_submit_command_not_reading_stdin),
        cmocka_unit_test(test_job_output_clean),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
