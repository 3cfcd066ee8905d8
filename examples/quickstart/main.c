/* examples/quickstart/main.c — the smallest complete herd flow: a task,
 * a temporary local cluster, twelve submits, one dependency, results.
 *
 *   make && build/examples/quickstart
 */
#include <herd/herd.h>
#include <stdio.h>

/* A task: arguments in (an array), a result out. */
static int square(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    int64_t x = herd_as_int(herd_at(args, 0));
    herd_task_log(ctx, "squaring %lld", (long long)x);    /* appears in the flow's log */
    *out = herd_int(x * x);
    return 0;
}
HERD_TASK(square);

/* Adds up an array of numbers: its argument is a future's result. */
static int total(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    const herd_value *xs = herd_at(args, 0);
    if (herd_typeof(xs) != HERD_ARRAY) return herd_task_fail(ctx, "total: expected an array");
    int64_t sum = 0;
    for (size_t i = 0; i < herd_len(xs); i++) sum += herd_as_int(herd_at(xs, i));
    *out = herd_int(sum);
    return 0;
}
HERD_TASK(total);

static int collect(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    *out = herd_value_copy(args);          /* the futures' results, as an array */
    return 0;
}
HERD_TASK(collect);

int main(int argc, char **argv)
{
    herd_init(&argc, &argv);               /* first: in a worker process this runs the worker */

    herd_err err;
    herd_runner *runner;
    herd_runner_opts opts = { .cluster_kwargs = "{n_workers: 2, threads_per_worker: 2}" };
    if (herd_runner_new(&runner, &opts, &err) || herd_flow_begin(runner, "quickstart", &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }

    herd_future *squares[12];
    herd_value *deps = herd_array();
    for (int i = 0; i < 12; i++) {
        if (herd_submit(runner, "square", herd_tuple("i", i + 1), &squares[i], &err)) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        herd_array_push(deps, herd_future_arg(squares[i]));   /* a future as an argument */
    }
    herd_future *all, *sum;
    herd_submit(runner, "collect", deps, &all, &err);          /* runs when the twelve are done */
    herd_submit_annotated(runner, "total", herd_tuple("f", all), "{priority: 10, retries: 2}", &sum, &err);

    const herd_value *v;
    int rc = herd_future_result(sum, 60, &v, &err);
    if (rc == 0) printf("sum of the squares of 1..12 = %lld\n", (long long)herd_as_int(v));
    else fprintf(stderr, "%s\n", err.msg);

    herd_flow_end(runner, rc != 0, &err);  /* the temporary cluster goes away here */
    herd_runner_free(runner);              /* and the futures with the runner */
    return rc != 0;
}
