/* tests/integration/test_plugin_tasks.c — the task plugins as a flow uses
 * them: submitted by name ("shell.run", "hash.sha256") to a temporary
 * LocalCluster, whose worker processes load plugins/<plugin>.so, run the task
 * and send back the result, or the failure message the plugin gave
 * herd_task_fail (checked here word for word where it matters: the argument
 * index, the expected type and what was got). */
#include <herd/herd.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <cmocka.h>

static herd_runner *runner;

static int setup(void **state)
{
    herd_err err;
    herd_runner_opts o = { .cluster_kwargs = "{n_workers: 1, threads_per_worker: 2}" };
    if (herd_runner_new(&runner, &o, &err) || herd_flow_begin(runner, "plugin-tasks", &err) ||
        herd_wait_for_workers(runner, 1, 60, &err)) {
        fprintf(stderr, "setup: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    herd_err err;
    int rc = herd_flow_end(runner, false, &err);
    if (rc) fprintf(stderr, "teardown: %s\n", err.msg);
    herd_runner_free(runner);
    return rc;
}

/* Submit and wait; returns the result code, *v borrowed from *f (release it). */
static int run(const char *task, herd_value *args, herd_future **f, const herd_value **v, herd_err *err)
{
    int rc = herd_submit(runner, task, args, f, err);
    if (rc) fail_msg("submit %s: %s", task, err->msg);
    return herd_future_result(*f, 60, v, err);
}

static void test_shell_run_on_worker(void **state)
{
    herd_future *f;
    const herd_value *v;
    herd_err err;
    assert_int_equal(run("shell.run", herd_tuple("s", "echo hi; echo there >&2; exit 4"), &f, &v, &err), 0);
    assert_int_equal(herd_as_int(herd_map_get(v, "exit_status")), 4);
    assert_string_equal(herd_as_str(herd_map_get(v, "stdout")), "hi\n");
    assert_string_equal(herd_as_str(herd_map_get(v, "stderr")), "there\n");
    herd_future_release(f);
}

static void test_failure_messages_reach_the_flow(void **state)
{
    herd_future *f;
    const herd_value *v;
    herd_err err;
    assert_int_equal(run("shell.run", herd_tuple("i", 42), &f, &v, &err), -HERD_EFAILED);
    assert_non_null(strstr(err.msg, "shell.run: argument 0 (command): expected str or array of str, got int 42"));
    assert_non_null(herd_future_error(f));
    herd_future_release(f);

    herd_value *opts = NULL;
    assert_int_equal(herd_value_parse("{check: true}", &opts, &err), 0);
    assert_int_equal(run("shell.run", herd_tuple("sv", "echo broken >&2; exit 3", opts), &f, &v, &err),
                     -HERD_EFAILED);
    assert_non_null(strstr(err.msg, "exited with status 3; stderr: broken"));
    herd_future_release(f);

    assert_int_equal(herd_value_parse("{timeout: nope}", &opts, &err), 0);
    assert_int_equal(run("shell.run", herd_tuple("sv", "true", opts), &f, &v, &err), -HERD_EFAILED);
    assert_non_null(strstr(err.msg, "argument 1 (options.timeout): expected a positive duration"));
    herd_future_release(f);

    assert_int_equal(run("hash.sha256", herd_tuple("i", 1), &f, &v, &err), -HERD_EFAILED);
    assert_non_null(strstr(err.msg, "hash.sha256: argument 0: expected str, bytes or {path: str}, got int"));
    herd_future_release(f);

    assert_int_equal(run("http.get", herd_tuple("s", "http://127.0.0.1:1/"), &f, &v, &err), -HERD_EFAILED);
    assert_non_null(strstr(err.msg, "http.get http://127.0.0.1:1/: "));
    herd_future_release(f);
}

static void test_hash_on_worker(void **state)
{
    herd_future *f;
    const herd_value *v;
    herd_err err;
    assert_int_equal(run("hash.sha256", herd_tuple("s", "abc"), &f, &v, &err), 0);
    assert_string_equal(herd_as_str(v), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    herd_future_release(f);
}

static void test_unknown_plugin_task(void **state)
{
    herd_future *f = NULL;
    const herd_value *v;
    herd_err err;
    /* refused at submit, or failed by the worker: either way the name is in the message */
    int rc = herd_submit(runner, "shell.nope", herd_array(), &f, &err);
    if (rc == 0) {
        rc = herd_future_result(f, 60, &v, &err);
        herd_future_release(f);
    }
    assert_true(rc < 0);
    assert_non_null(strstr(err.msg, "shell.nope"));
}

int main(int argc, char **argv)
{
    herd_init(&argc, &argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shell_run_on_worker),
        cmocka_unit_test(test_failure_messages_reach_the_flow),
        cmocka_unit_test(test_hash_on_worker),
        cmocka_unit_test(test_unknown_plugin_task),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
