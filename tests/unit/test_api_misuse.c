/* tests/unit/test_api_misuse.c — every public function of include/herd/ headers
 * called with NULL or bad arguments, header by header and function by
 * function, checking the result each header documents (an error code and a
 * message naming the argument, or the documented neutral value). A crash
 * fails the test (cmocka catches the signal). A real flow run (LocalCluster,
 * workers as threads) supplies live runners and futures where needed. */
#include <herd/herd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define assert_contains(hay, needle) do {                                            \
        if (!strstr((hay), (needle)))                                                  \
            fail_msg("expected \"%s\" in \"%s\"", (needle), (hay));                    \
    } while (0)

static int echo(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    *out = herd_value_copy(args);
    return 0;
}
HERD_TASK(echo);

static herd_runner *live;     /* an active flow run, for the tests that need one */

static int setup(void **state)
{
    char exe[PATH_MAX], prov[PATH_MAX + 16];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return -1;
    exe[n] = '\0';
    *strrchr(exe, '/') = '\0';
    *strrchr(exe, '/') = '\0';
    snprintf(prov, sizeof prov, "%s/providers", exe);
    setenv("HERD_PROVIDER_PATH", prov, 1);
    unsetenv("HERD_PROFILE");
    unsetenv("HERD_CONFIG");
    setenv("XDG_CONFIG_HOME", "/nonexistent", 1);
    if (chdir("/")) return -1;
    herd_runner_opts o = { .cluster_kwargs = "{n_workers: 1, threads_per_worker: 1, processes: false}",
                           .client_kwargs = "{log_level: error}" };
    herd_err err = { 0 };
    if (herd_runner_new(&live, &o, &err) || herd_flow_begin(live, "misuse", &err)) {
        fprintf(stderr, "setup: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    herd_flow_end(live, false, NULL);
    herd_runner_free(live);
    return 0;
}

/* ---- common.h ---- */
static void test_common(void **state)
{
    assert_non_null(herd_strerror(0));
    assert_non_null(herd_strerror(-123456));
    assert_non_null(herd_strerror(INT_MIN));
    assert_int_equal(herd_err_set(NULL, HERD_EARG, "x %d", 1), -HERD_EARG);
    assert_int_equal(herd_err_prefix(NULL, "ctx"), -HERD_EARG);
    herd_err_clear(NULL);
}

/* ---- value.h ---- */
static void test_value(void **state)
{
    herd_value *v = herd_str(NULL);
    assert_true(herd_typeof(v) == HERD_NIL || herd_typeof(v) == HERD_STR);
    herd_value_free(v);
    v = herd_strn(NULL, 0);
    assert_non_null(v);
    herd_value_free(v);
    v = herd_bytes(NULL, 0);
    assert_non_null(v);
    herd_value_free(v);
    assert_null(herd_bytes_alloc(16, NULL));
    assert_null(herd_bytes_alloc_shm(16, NULL));
    void *p = (void *)1;
    assert_null(herd_bytes_alloc(SIZE_MAX, &p));                 /* no memory for that */
    assert_null(p);
    assert_null(herd_bytes_take_fn(NULL, 5, NULL, NULL));
    v = herd_bytes_take_fn(NULL, 0, NULL, NULL);
    assert_int_equal(herd_len(v), 0);
    herd_value_free(v);
    assert_null(herd_tuple(NULL));
    assert_null(herd_tuple("Q"));
    assert_int_equal(herd_array_push(NULL, herd_int(1)), -HERD_EARG);
    assert_int_equal(herd_map_set(NULL, "k", herd_int(1)), -HERD_EARG);
    herd_value *m = herd_map();
    assert_int_equal(herd_map_set(m, NULL, herd_int(1)), -HERD_EARG);
    assert_int_equal(herd_map_del(m, NULL), -HERD_EARG);
    assert_int_equal(herd_map_del(NULL, "k"), -HERD_EARG);
    assert_int_equal(herd_map_del(m, "absent"), -HERD_EARG);
    assert_int_equal(herd_typeof(NULL), HERD_NIL);
    assert_non_null(herd_type_name((herd_type)999));
    assert_false(herd_as_bool(NULL));
    assert_int_equal(herd_as_int(NULL), 0);
    assert_true(herd_as_float(NULL) == 0.0);
    assert_null(herd_as_str(NULL));
    size_t len = 7;
    assert_null(herd_as_bytes(NULL, &len));
    assert_null(herd_as_bytes(NULL, NULL));
    assert_int_equal(herd_as_futref(NULL), 0);
    assert_int_equal(herd_len(NULL), 0);
    assert_null(herd_at(NULL, 0));
    assert_null(herd_at(m, 5));
    assert_null(herd_key_at(NULL, 0));
    assert_null(herd_map_get(NULL, "k"));
    assert_null(herd_map_get(m, NULL));
    assert_null(herd_value_copy(NULL));
    herd_value_free(NULL);
    assert_true(herd_value_equal(NULL, NULL));
    assert_false(herd_value_equal(m, NULL));
    char *s = herd_value_to_string(NULL);
    if (s) assert_string_equal(s, "null");
    free(s);
    double secs = 3;
    assert_int_equal(herd_value_duration(NULL, &secs), -HERD_EARG);
    assert_int_equal(herd_value_duration(m, NULL), -HERD_EARG);
    herd_err err = { 0 };
    herd_value *out = (herd_value *)1;
    assert_int_equal(herd_value_parse(NULL, &out, &err), 0);          /* no text: nil */
    assert_int_equal(herd_typeof(out), HERD_NIL);
    herd_value_free(out);
    assert_int_equal(herd_value_parse("{a: 1}", NULL, &err), -HERD_EARG);
    char *buf = NULL;
    assert_int_equal(herd_value_encode(m, NULL, &len, &err), -HERD_EARG);
    assert_int_equal(herd_value_encode(m, &buf, NULL, &err), -HERD_EARG);
    assert_int_equal(herd_value_decode(NULL, 4, &out, &err), -HERD_EARG);
    assert_int_equal(herd_value_decode("\x90", 1, NULL, &err), -HERD_EARG);
    herd_value_free(m);
}

/* ---- task.h ---- */
static void test_task(void **state)
{
    herd_task_register(NULL);
    herd_task_fn fn = (herd_task_fn)1;
    herd_err err = { 0 };
    assert_int_equal(herd_task_lookup(NULL, &fn, &err), -HERD_ENOTASK);
    assert_contains(err.msg, "task name");
    assert_int_equal(herd_task_lookup("echo", NULL, &err), -HERD_ENOTASK);
    herd_task_log(NULL, "logged with no context");
    assert_int_equal(herd_task_fail(NULL, "failed with no context"), -HERD_EFAILED);
    assert_null(herd_task_run_name(NULL));
    assert_null(herd_task_worker_name(NULL));
    assert_int_equal(herd_task_attempt(NULL), 0);
    assert_null(herd_task_tags(NULL));
    assert_null(herd_task_client(NULL));
}

/* ---- provider.h ---- */
static void test_provider(void **state)
{
    herd_err err = { 0 };
    assert_string_equal(herd_param_type_name((herd_param_type)999), "unknown");
    herd_value *out = (herd_value *)1;
    /* NULL params: a schema without keys */
    assert_int_equal(herd_kwargs_validate(NULL, NULL, "x", &out, &err), 0);
    assert_int_equal(herd_len(out), 0);
    herd_value_free(out);
    herd_value *one = herd_map();
    herd_map_set(one, "a", herd_int(1));
    assert_int_equal(herd_kwargs_validate(NULL, one, "x", &out, &err), -HERD_ECONFIG);
    assert_contains(err.msg, "x.a");
    herd_value_free(one);
    static const herd_param params[] = { { "n", HERD_PARAM_INT, "1", "n", 0, 0, 9, 0, 0 }, { 0 } };
    assert_int_equal(herd_kwargs_validate(params, NULL, "x", NULL, &err), -HERD_EARG);
    int field = 0;
    assert_int_equal(herd_kwargs_bind(NULL, NULL, &field, sizeof field, &err), -HERD_EARG);
    assert_int_equal(herd_kwargs_bind(params, NULL, NULL, 0, &err), -HERD_EARG);
    assert_int_equal(herd_kwargs_load(NULL, NULL, "x", &out, &field, sizeof field, &err), -HERD_EARG);
    assert_false(herd_name_prefix_ok(NULL));
    assert_false(herd_name_prefix_ok(""));
    assert_false(herd_name_prefix_ok("a b"));
    assert_false(herd_name_prefix_ok("01234567890123456789012345678901234567890"));   /* 41 */
    assert_true(herd_name_prefix_ok("ssh-workers_1.x"));
    assert_int_equal(herd_local_directory_check(NULL, NULL, &err), -HERD_ECONFIG);
    assert_contains(err.msg, "local_directory: expected a directory, got null");
    assert_int_equal(herd_local_directory_check("f", "/tmp", NULL), 0);
    assert_true(herd_now() > 0);
    herd_deadline(1, NULL);
    assert_int_equal(herd_cond_init_monotonic(NULL), -EINVAL);
    herd_log(NULL, HERD_LOG_INFO, "no env: stderr");
    char **argv = (char **)1;
    herd_worker_spec spec = { .name = "w", .nthreads = 1 };
    assert_int_equal(herd_worker_argv(NULL, &spec, &argv, &err), -HERD_EARG);
    assert_null(argv);
    herd_cluster_env env = { 0 };
    assert_int_equal(herd_worker_argv(&env, NULL, &argv, &err), -HERD_EARG);
    assert_int_equal(herd_worker_argv(&env, &spec, NULL, &err), -HERD_EARG);
    herd_strv_free(NULL);
    /* a worker's resources: finite numbers > 0 */
    herd_value *res = herd_map();
    herd_map_set(res, "GPU", herd_float(NAN));
    spec.resources = res;
    assert_int_equal(herd_worker_argv(&env, &spec, &argv, &err), -HERD_EARG);
    assert_string_equal(err.msg, "worker resources.GPU: expected a finite number > 0, got float .nan");
    herd_map_set(res, "GPU", herd_int(-1));
    assert_int_equal(herd_worker_argv(&env, &spec, &argv, &err), -HERD_EARG);
    assert_string_equal(err.msg, "worker resources.GPU: expected a finite number > 0, got int -1");
    herd_map_set(res, "GPU", herd_int(2));
    assert_int_equal(herd_worker_argv(&env, &spec, &argv, &err), 0);
    herd_strv_free(argv);
    spec.resources = NULL;
    herd_value_free(res);
    const char *names[] = { "h", NULL };
    assert_int_equal(herd_scheduler_names(NULL, names, &err), -HERD_EARG);
    assert_int_equal(herd_scheduler_names(&env, names, &err), -HERD_EARG);  /* no core */
    assert_int_equal(herd_scheduler_argv(NULL, "tcp://0.0.0.0:0", &argv, &err), -HERD_EARG);
    assert_int_equal(herd_scheduler_argv(&env, "tcp://0.0.0.0:0", &argv, &err), -HERD_EARG);
    char **envp = (char **)1;
    assert_int_equal(herd_scheduler_envp(NULL, names, &envp, &err), -HERD_EARG);
    assert_int_equal(herd_scheduler_envp(&env, names, &envp, &err), -HERD_EARG);
    herd_envp_free(NULL);
    assert_int_equal(herd_scheduler_server_name(NULL, "herd-scheduler", &err), -HERD_EARG);
    assert_int_equal(herd_scheduler_server_name(&env, "herd-scheduler", &err), -HERD_EARG);   /* no core */
    int dport = 7;
    assert_int_equal(herd_scheduler_dashboard_port(NULL, &dport, &err), -HERD_EARG);
    assert_int_equal(dport, -1);
    assert_int_equal(herd_scheduler_dashboard_port(&env, NULL, &err), -HERD_EARG);
    herd_worker_thread *w = (herd_worker_thread *)1;
    assert_int_equal(herd_worker_thread_start(NULL, &spec, &w, &err), -HERD_EARG);
    assert_null(w);
    assert_int_equal(herd_worker_thread_start(&env, &spec, &w, &err), -HERD_EARG);
    assert_int_equal(herd_worker_thread_start(&env, &spec, NULL, &err), -HERD_EARG);
    assert_false(herd_worker_thread_alive(NULL));
    herd_worker_thread_stop(NULL, true);
    /* process helpers */
    assert_int_equal(herd_spawner_new(NULL, &err), -EINVAL);
    herd_spawner_free(NULL);
    herd_proc *pr = (herd_proc *)1;
    herd_proc_spec ps = { 0 };
    assert_int_equal(herd_proc_start(NULL, NULL, &pr, NULL, &err), -EINVAL);
    assert_null(pr);
    assert_int_equal(herd_proc_start(NULL, &ps, &pr, NULL, &err), -EINVAL);       /* no argv */
    assert_contains(err.msg, "herd_proc_start");
    assert_int_equal(herd_proc_start(NULL, &ps, NULL, NULL, &err), -EINVAL);
    assert_int_equal(herd_proc_pid(NULL), 0);
    herd_proc_exit ex = { 0 };
    assert_int_equal(herd_proc_poll(NULL, &ex), -EINVAL);
    assert_int_equal(herd_proc_wait(NULL, 0, &ex), -EINVAL);
    assert_int_equal(herd_proc_signal(NULL, SIGTERM), -EINVAL);
    assert_int_equal(herd_proc_stop(NULL, 2, 0.1, NULL), -EINVAL);
    char buf[64];
    assert_string_equal(herd_proc_describe(NULL, buf, sizeof buf), "exit status unknown (reaped elsewhere)");
    assert_null(herd_proc_describe(&ex, NULL, 0));
    herd_proc_free(NULL);

    const herd_provider *p = (const herd_provider *)1;
    assert_int_equal(herd_provider_resolve(NULL, &p, &err), -HERD_EARG);
    assert_null(p);
    assert_int_equal(herd_provider_resolve("local.LocalCluster", NULL, &err), -HERD_EARG);
    assert_int_equal(herd_provider_check(NULL, "x", &err), -HERD_EARG);
    assert_int_equal(herd_provider_foreach(NULL, NULL), -HERD_EARG);
    char **path = herd_provider_search_path();
    assert_non_null(path);
    herd_strv_free(path);
}

/* ---- herd.h: runner and flow runs ---- */
static void test_runner(void **state)
{
    herd_err err = { 0 };
    assert_int_equal(herd_init(NULL, NULL), 0);
    herd_runner *r = (herd_runner *)1;
    assert_int_equal(herd_runner_new(NULL, NULL, &err), -HERD_EARG);
    herd_runner_free(NULL);
    assert_int_equal(herd_flow_begin(NULL, "f", &err), -HERD_EARG);
    assert_contains(err.msg, "herd_flow_begin");
    assert_int_equal(herd_flow_end(NULL, false, &err), -HERD_EARG);
    assert_int_equal(herd_wait_for_workers(NULL, 1, 1, &err), -HERD_ESTATE);
    assert_null(herd_runner_address(NULL));
    int nthreads = 7;
    assert_int_equal(herd_runner_workers(NULL, &nthreads), 0);
    assert_int_equal(nthreads, 0);
    assert_true(herd_runner_workers(live, NULL) >= 0);
    /* a NULL opts is the default runner */
    assert_int_equal(herd_runner_new(&r, NULL, &err), 0);
    assert_non_null(r);
    herd_runner_free(r);
    assert_int_equal(herd_flow_begin(live, "again", &err), -HERD_ESTATE);
}

/* ---- herd.h: submitting ---- */
static void test_submit(void **state)
{
    herd_err err = { 0 };
    herd_future *f = (herd_future *)1;
    assert_int_equal(herd_submit(NULL, "echo", herd_array(), &f, &err), -HERD_EARG);
    assert_null(f);
    assert_int_equal(herd_submit(live, NULL, herd_array(), &f, &err), -HERD_EARG);
    assert_int_equal(herd_submit(live, "echo", herd_array(), NULL, &err), -HERD_EARG);
    assert_int_equal(herd_submit(live, "echo", herd_int(3), &f, &err), -HERD_EARG);
    assert_contains(err.msg, "args: expected an array");
    assert_int_equal(herd_submit_annotated(NULL, "echo", NULL, "{priority: 1}", &f, &err), -HERD_EARG);
    assert_int_equal(herd_submit_annotated(live, "echo", NULL, "{priority: x}", &f, &err), -HERD_ECONFIG);
    assert_contains(err.msg, "priority");

    /* resources: finite numbers > 0, refused at submit naming the key and value */
    static const struct { const char *ann, *msg; } bad[] = {
        { "{resources: {GPU: .nan}}", "annotations.resources.GPU: expected a finite number > 0, got float .nan" },
        { "{resources: {GPU: .inf}}", "annotations.resources.GPU: expected a finite number > 0, got float .inf" },
        { "{resources: {GPU: -1}}", "annotations.resources.GPU: expected a finite number > 0, got int -1" },
        { "{resources: {GPU: x}}", "annotations.resources.GPU: expected a finite number > 0, got str x" },
        { "{resources: {GPU: 0}}", "annotations.resources.GPU: expected a finite number > 0, got int 0" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(herd_submit_annotated(live, "echo", NULL, bad[i].ann, &f, &err), -HERD_EARG);
        assert_string_equal(err.msg, bad[i].msg);
        assert_null(f);
        assert_int_equal(herd_annotate_push(live, bad[i].ann, &err), -HERD_EARG);
        assert_string_equal(err.msg, bad[i].msg);
    }

    herd_future **fs = (herd_future **)1;
    size_t n = 9;
    assert_int_equal(herd_submit_map(live, "echo", herd_array(), NULL, NULL, &err), -HERD_EARG);
    assert_contains(err.msg, "herd_submit_map: futs and n are required");
    assert_int_equal(herd_submit_map(live, "echo", herd_array(), &fs, NULL, &err), -HERD_EARG);
    assert_int_equal(herd_submit_map(NULL, "echo", herd_array(), &fs, &n, &err), -HERD_EARG);
    assert_null(fs);
    assert_int_equal(n, 0);
    assert_int_equal(herd_submit_map(live, "echo", NULL, &fs, &n, &err), -HERD_EARG);
    assert_int_equal(herd_submit_map(live, "echo", herd_tuple("i", 1), &fs, &n, &err), -HERD_EARG);
    assert_contains(err.msg, "arg_tuples[0]: expected an array, got int");
    assert_int_equal(herd_submit_map(live, "echo", herd_array(), &fs, &n, &err), 0);
    assert_int_equal(n, 0);
    free(fs);

    herd_value *a = herd_future_arg(NULL);
    assert_int_equal(herd_typeof(a), HERD_NIL);
    herd_value_free(a);
}

/* ---- herd.h: annotations ---- */
static void test_annotations(void **state)
{
    herd_err err = { 0 };
    assert_int_equal(herd_annotate_push(NULL, "{priority: 1}", &err), -HERD_EARG);
    assert_contains(err.msg, "runner is NULL");
    assert_int_equal(herd_annotate_pop(NULL), -HERD_EARG);
    assert_int_equal(herd_annotate_pop(live), -HERD_ESTATE);     /* nothing pushed */
    assert_int_equal(herd_annotate_push(live, "{retries: -1}", &err), -HERD_ECONFIG);
    assert_int_equal(herd_annotate_push(live, NULL, &err), 0);  /* an empty scope */
    assert_int_equal(herd_annotate_pop(live), 0);
}

/* ---- herd.h: futures ---- */
/* herd_route_source: bad arguments are refused naming them; a loopback
 * host is routed from a loopback address and said to be loopback (no
 * name is looked up: a test contacts no resolver). */
static void test_route_source(void **state)
{
    (void)state;
    herd_err err = { 0 };
    char ip[64];
    bool loop = false;
    assert_int_equal(herd_route_source(NULL, ip, sizeof ip, NULL, &err), -HERD_EARG);
    assert_non_null(strstr(err.msg, "host = NULL"));
    assert_int_equal(herd_route_source("127.0.0.1", ip, 8, NULL, &err), -HERD_EARG);
    assert_int_equal(herd_route_source("127.0.0.1", NULL, 64, NULL, &err), -HERD_EARG);
    assert_int_equal(herd_route_source("127.0.0.1", ip, sizeof ip, &loop, &err), 0);
    assert_true(loop);
    assert_string_equal(ip, "127.0.0.1");
    loop = false;
    assert_int_equal(herd_route_source("127.3.4.5", ip, sizeof ip, &loop, NULL), 0);
    assert_true(loop);
    assert_int_equal(strncmp(ip, "127.", 4), 0);
    assert_int_equal(herd_route_source("", ip, sizeof ip, &loop, &err), -HERD_EARG);
}

static void test_futures(void **state)
{
    herd_err err = { 0 };
    assert_string_equal(herd_state_name((herd_state)99), "Unknown");
    assert_false(herd_state_is_final((herd_state)-1));
    assert_int_equal(herd_future_state(NULL), HERD_CANCELLED);
    const herd_value *v = (const herd_value *)1;
    assert_int_equal(herd_future_result(NULL, 1, &v, &err), -HERD_EARG);
    assert_null(v);
    assert_null(herd_future_error(NULL));
    assert_null(herd_future_name(NULL));
    assert_int_equal(herd_future_key(NULL), 0);
    herd_future_release(NULL);
    assert_int_equal(herd_future_cancel(NULL), -HERD_EARG);

    /* herd_wait: NULL array, NULL items */
    assert_int_equal(herd_wait(NULL, 3, 1, &err), -HERD_EARG);
    assert_string_equal(err.msg, "herd_wait: fs is NULL (with n = 3)");
    assert_int_equal(herd_wait(NULL, 0, 1, &err), 0);
    herd_future *f = NULL;
    assert_int_equal(herd_submit(live, "echo", herd_tuple("i", 1), &f, &err), 0);
    herd_future *fs[3] = { f, NULL, f };
    assert_int_equal(herd_wait(fs, 3, 1, &err), -HERD_EARG);
    assert_string_equal(err.msg, "herd_wait: fs[1] is NULL");
    fs[0] = NULL;
    assert_int_equal(herd_wait(fs, 3, 1, &err), -HERD_EARG);
    assert_string_equal(err.msg, "herd_wait: fs[0] is NULL");
    /* herd_progress: the same, and a NULL runner */
    assert_int_equal(herd_progress(NULL, fs, 3, &err), -HERD_EARG);
    assert_string_equal(err.msg, "herd_progress: runner is NULL");
    assert_int_equal(herd_progress(live, NULL, 3, &err), -HERD_EARG);
    assert_string_equal(err.msg, "herd_progress: futures is NULL");
    assert_int_equal(herd_progress(live, fs, 3, &err), -HERD_EARG);
    assert_string_equal(err.msg, "herd_progress: futures[0] is NULL");

    /* as_completed: NULL array, NULL items */
    assert_null(herd_as_completed(NULL, 3));
    assert_null(herd_as_completed(fs, 3));
    herd_completed *it = herd_as_completed(NULL, 0);
    assert_non_null(it);
    assert_null(herd_completed_next(it, 0));
    herd_completed_free(it);
    assert_null(herd_completed_next(NULL, 0));
    assert_int_equal(herd_completed_left(NULL), 0);
    herd_completed_free(NULL);

    /* the live future still works */
    assert_int_equal(herd_future_result(f, 30, &v, &err), 0);
    assert_int_equal(herd_as_int(herd_at(v, 0)), 1);
    herd_future_release(f);
}

/* ---- herd.h: long-running clusters ---- */
static void test_long_running(void **state)
{
    herd_err err = { 0 };
    herd_scheduler *s = (herd_scheduler *)1;
    assert_int_equal(herd_scheduler_start(NULL, NULL, &err), -HERD_EARG);
    assert_int_equal(herd_scheduler_start(&s, NULL, &err), -HERD_EARG);
    assert_null(s);
    assert_null(herd_scheduler_address(NULL));
    assert_null(herd_scheduler_dashboard_url(NULL));
    assert_null(herd_scheduler_dashboard_login(NULL));
    herd_scheduler_stop(NULL);
    assert_int_equal(herd_worker_serve(NULL, &err), 1);
    assert_contains(err.msg, "address is required");
    herd_worker_opts wo = { 0 };
    assert_int_equal(herd_worker_serve(&wo, &err), 1);
    assert_contains(err.msg, "address");
}

/* A worker process given resources that are not finite numbers > 0 exits
 * with status 2 and says which. */
static void test_worker_resources_flag(void **state)
{
    static const char *const bad[] = { "GPU=nan", "GPU=inf", "GPU=-1", "GPU=x" };
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    assert_true(n > 0);
    exe[n] = '\0';
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char cmd[PATH_MAX + 200], out[1024] = "";
        snprintf(cmd, sizeof cmd, "'%s' --herd-worker --herd-address unix:///nonexistent/sock "
                 "--herd-resources '%s' 2>&1", exe, bad[i]);
        FILE *p = popen(cmd, "r");
        assert_non_null(p);
        size_t len = fread(out, 1, sizeof out - 1, p);
        out[len] = '\0';
        int st = pclose(p);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 2);
        assert_contains(out, "resources");
        assert_contains(out, "GPU");
    }
}

int main(int argc, char **argv)
{
    herd_init(&argc, &argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_common),
        cmocka_unit_test(test_value),
        cmocka_unit_test(test_task),
        cmocka_unit_test(test_provider),
        cmocka_unit_test(test_runner),
        cmocka_unit_test(test_submit),
        cmocka_unit_test(test_annotations),
        cmocka_unit_test(test_route_source),
        cmocka_unit_test(test_futures),
        cmocka_unit_test(test_long_running),
        cmocka_unit_test(test_worker_resources_flag),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
