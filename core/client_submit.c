/* core/client_submit.c — submitting: annotations (parsed, merged, the
 * scopes of herd_annotate_push/pop), run names, resources checked against
 * the cluster, dependencies inlined or passed as references, and
 * herd_submit / herd_submit_map. The futures they make are client.c's. */
#include "client.h"
#include "comm.h"
#include "value_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const herd_param annot_params[] = {
    { "priority", HERD_PARAM_INT, NULL, "higher runs first; ties in submission order", 0, 0, 0 },
    { "resources", HERD_PARAM_MAP, NULL, "abstract resources held while the task runs", 0, 0, 0 },
    { "retries", HERD_PARAM_INT, NULL, "re-runs after the task fails", 0, 0, 1e9 },
    { "retry_delay", HERD_PARAM_DURATION, NULL, "delay before the first retry; doubles after each", 0, 0, 1e9 },
    { "timeout", HERD_PARAM_DURATION, NULL, "fail the attempt when it runs longer", 0, 0, 1e9 },
    { "tags", HERD_PARAM_LIST, NULL, "labels for the task run", 0, 0, 0 },
    { "workers", HERD_PARAM_LIST, NULL, "the workers it may run on: names, hosts or addresses", 0, 0, 0 },
    { "allow_other_workers", HERD_PARAM_BOOL, NULL, "run elsewhere when none of those workers is connected", 0, 0, 0 },
    { NULL, 0, NULL, NULL, 0, 0, 0 }
};

static int annot_copy(herd_annot *dst, const herd_annot *src)
{
    *dst = *src;
    dst->resources = src->resources ? herd_value_copy(src->resources) : NULL;
    dst->tags = src->tags ? herd_value_copy(src->tags) : NULL;
    dst->workers = src->workers ? herd_value_copy(src->workers) : NULL;
    return 0;
}

/* Merge b over a (b's keys win; resources maps merge key by key). */
static void annot_merge(herd_annot *a, const herd_annot *b)
{
    if (b->set & ANN_PRIORITY) a->priority = b->priority;
    if (b->set & ANN_RETRIES) a->retries = b->retries;
    if (b->set & ANN_RETRY_DELAY) a->retry_delay = b->retry_delay;
    if (b->set & ANN_TIMEOUT) a->timeout = b->timeout;
    if (b->set & ANN_TAGS) { herd_value_free(a->tags); a->tags = herd_value_copy(b->tags); }
    if (b->set & ANN_WORKERS) { herd_value_free(a->workers); a->workers = herd_value_copy(b->workers); }
    if (b->set & ANN_ALLOW_OTHER) a->allow_other_workers = b->allow_other_workers;
    if (b->set & ANN_RESOURCES) {
        if (!a->resources) a->resources = herd_map();
        for (size_t i = 0; i < herd_len(b->resources); i++)
            herd_map_set(a->resources, herd_key_at(b->resources, i), herd_value_copy(herd_at(b->resources, i)));
    }
    a->set |= b->set;
}

int herd_annot_parse(const char *text, herd_annot *a, herd_err *err)
{
    memset(a, 0, sizeof *a);
    if (!text || !*text) return 0;
    herd_value *v = NULL, *ok = NULL;
    int rc = herd_value_parse(text, &v, err);
    if (rc) return herd_err_prefix(err, "annotations");
    /* workers: one entry, as Dask's workers="alice", is a list of one */
    herd_value *one = herd_typeof(v) == HERD_MAP ? herd_map_get(v, "workers") : NULL;
    if (one && herd_typeof(one) == HERD_STR && herd_map_set(v, "workers", herd_tuple("s", herd_as_str(one)))) {
        herd_value_free(v);
        return herd_err_set(err, -ENOMEM, "annotations: out of memory");
    }
    rc = herd_kwargs_validate(annot_params, v, "annotations", &ok, err);
    herd_value_free(v);
    if (rc) return rc;
    herd_value *x;
    if ((x = herd_map_get(ok, "priority"))) { a->set |= ANN_PRIORITY; a->priority = (int)herd_as_int(x); }
    if ((x = herd_map_get(ok, "retries"))) { a->set |= ANN_RETRIES; a->retries = (int)herd_as_int(x); }
    if ((x = herd_map_get(ok, "retry_delay"))) { a->set |= ANN_RETRY_DELAY; a->retry_delay = herd_as_float(x); }
    if ((x = herd_map_get(ok, "timeout"))) { a->set |= ANN_TIMEOUT; a->timeout = herd_as_float(x); }
    if ((x = herd_map_get(ok, "tags"))) {
        for (size_t i = 0; i < herd_len(x); i++)
            if (herd_typeof(herd_at(x, i)) != HERD_STR) {
                int rc2 = herd_err_set(err, HERD_EARG, "annotations.tags[%zu]: expected str, got %s",
                                       i, herd_type_name(herd_typeof(herd_at(x, i))));
                herd_value_free(ok);
                return rc2;
            }
        a->set |= ANN_TAGS; a->tags = herd_value_copy(x);
    }
    if ((x = herd_map_get(ok, "workers"))) {
        for (size_t i = 0; i < herd_len(x); i++) {
            const char *name = herd_as_str(herd_at(x, i));
            size_t len = 0;
            if (herd_typeof(herd_at(x, i)) == HERD_STR) herd_as_bytes(herd_at(x, i), &len);
            if (!name || !*name || len > 1024 || memchr(name, '\0', len)) {
                char *sv = herd_value_to_string(herd_at(x, i));
                int rc2 = herd_err_set(err, HERD_EARG, "annotations.workers[%zu]: expected a worker name, host "
                                       "or address (1..1024 bytes), got %s", i, sv ? sv : "?");
                free(sv);
                herd_value_free(ok);
                return rc2;
            }
        }
        a->set |= ANN_WORKERS; a->workers = herd_value_copy(x);
    }
    if ((x = herd_map_get(ok, "allow_other_workers"))) { a->set |= ANN_ALLOW_OTHER; a->allow_other_workers = herd_as_bool(x); }
    if ((x = herd_map_get(ok, "resources"))) {
        if ((rc = herd_resources_check(x, "annotations.resources", err))) { herd_value_free(ok); return rc; }
        a->set |= ANN_RESOURCES; a->resources = herd_value_copy(x);
    }
    herd_value_free(ok);
    return 0;
}

/* ---- submit ---- */
static char *make_run_name(herd_client *cl, const char *task, runcount **grp)
{
    runcount *c;
    for (c = cl->counts; c; c = c->next)
        if (strcmp(c->name, task) == 0) break;
    if (!c) {
        if (!(c = calloc(1, sizeof *c)) || !(c->name = strdup(task))) { free(c); return NULL; }
        c->next = cl->counts;
        cl->counts = c;
    }
    char *s;
    *grp = c;
    if (asprintf(&s, "%s-%llu", task, (unsigned long long)c->n++) < 0) return NULL;
    return s;
}

static int check_resources(herd_client *cl, const char *task, const herd_value *want, herd_err *err)
{
    if (!cl->check_resources || !want) return 0;
    for (size_t i = 0; i < herd_len(want); i++) {
        const char *name = herd_key_at(want, i);
        double need = herd_as_float(herd_at(want, i));
        herd_value *have = herd_map_get(cl->cluster_resources, name);
        if (!have || herd_as_float(have) < need) {
            char *offer = herd_value_to_string(cl->cluster_resources);
            int rc = herd_err_set(err, HERD_ERESOURCES,
                "task \"%s\": resources.%s: asks for %g but no worker of this cluster offers more than %g "
                "(workers offer %s); it could never run", task, name, need,
                have ? herd_as_float(have) : 0.0, offer ? offer : "{}");
            free(offer);
            return rc;
        }
    }
    return 0;
}

struct depctx { herd_client *cl; herd_err *err; const char *failed; char *why; };

/* Dependencies already final on this client are inlined; pending ones stay. */
static int inline_dep(void *ud, uint64_t key, herd_value **out)
{
    struct depctx *d = ud;
    herd_future *f = kmap_get(&d->cl->futs, key);
    if (!f || f->user_released)
        return herd_err_set(d->err, HERD_EARG,
            "argument: future %llu was released or belongs to another client", (unsigned long long)key);
    if (f->state == HERD_COMPLETED && !f->result && f->held_at) {
        *out = herd_futref(key);            /* held on a worker: the dependent's worker fetches it */
        return 0;
    }
    if (f->state == HERD_COMPLETED) {
        *out = f->result ? herd_value_copy(f->result) : herd_nil();
        return 0;
    }
    if (herd_state_is_final(f->state)) {
        if (!d->why && asprintf(&d->why, "dependency %s %s: %s", f->run_name, herd_state_name(f->state),
                                f->error ? f->error : "no reason given") < 0) d->why = NULL;
        *out = herd_nil();
        return 0;
    }
    *out = herd_futref(key);
    return 0;
}

int herd_client_submit(herd_client *cl, const char *task, herd_value *args, const char *annotations,
                       herd_future **out, herd_err *err)
{
    herd_annot extra = { 0 }, eff = { 0 };
    herd_submit_spec *spec = NULL;
    herd_future *f = NULL;
    herd_task_fn fn;
    int rc;
    if (out) *out = NULL;
    if (!task || !out) { rc = herd_err_set(err, HERD_EARG, "herd_submit: task name and out are required"); goto fail_nolock; }
    if (!args) args = herd_array();
    else if (herd_typeof(args) != HERD_ARRAY) {
        rc = herd_err_set(err, HERD_EARG, "task \"%s\": args: expected an array of arguments, got %s",
                          task, herd_type_name(herd_typeof(args)));
        goto fail_nolock;
    }
    if (herd_value_depth(args) > HERD_VALUE_WIRE_DEPTH) {
        rc = herd_err_set(err, HERD_EARG, "task \"%s\": args: nested %d levels deep, at most %d can travel to a worker",
                          task, herd_value_depth(args), HERD_VALUE_WIRE_DEPTH);
        goto fail_nolock;
    }
    /* a flow submits the same task over and over: look a name up once */
    pthread_mutex_lock(&cl->mu);
    int known = cl->checked_task && strcmp(cl->checked_task, task) == 0;
    pthread_mutex_unlock(&cl->mu);
    if (!known) {
        if ((rc = herd_task_lookup(task, &fn, err))) goto fail_nolock;
        char *copy = strdup(task);
        pthread_mutex_lock(&cl->mu);
        free(cl->checked_task);
        cl->checked_task = copy;
        pthread_mutex_unlock(&cl->mu);
    }
    if ((rc = herd_annot_parse(annotations, &extra, err))) goto fail_nolock;

    pthread_mutex_lock(&cl->mu);
    if (cl->closed) { rc = herd_err_set(err, HERD_ESTATE, "task \"%s\": no active flow run on this runner", task); goto fail; }
    annot_copy(&eff, &cl->stack[cl->depth - 1]);
    annot_merge(&eff, &extra);
    if ((rc = check_resources(cl, task, eff.resources, err))) goto fail;
    struct depctx d = { cl, err, NULL, NULL };
    if ((rc = herd_value_replace_futrefs(args, inline_dep, &d))) { free(d.why); goto fail; }
    size_t wire = herd_wire_size(args);    /* with the results put in: what travels to a worker */
    if (wire > HERD_MAX_DATA) {
        if (wire == SIZE_MAX)
            rc = herd_err_set(err, HERD_EARG, "task \"%s\": args: cannot be encoded (an item over 4 GiB, or "
                              "dependency results nested too deep)", task);
        else
            rc = herd_err_set(err, HERD_EARG, "task \"%s\": args: %zu bytes once encoded exceed the %zu-byte "
                              "limit on a task's data", task, wire, (size_t)HERD_MAX_DATA);
        free(d.why);
        goto fail;
    }

    spec = calloc(1, sizeof *spec);
    f = calloc(1, sizeof *f);
    if (!spec || !f) { rc = herd_err_set(err, -ENOMEM, "out of memory"); free(d.why); goto fail; }
    f->cl = cl;
    f->key = ((uint64_t)cl->id << 40) | ++cl->seq;
    f->run_name = make_run_name(cl, task, &f->grp);
    f->state = HERD_PENDING;
    atomic_init(&f->refs, 2);              /* the user's and the map's */
    kmap_put(&cl->futs, f->key, f);
    if (d.why) {                           /* an upstream task already failed */
        herd_client_set_final(cl, f, HERD_FAILED, NULL, d.why);
        free(d.why);
        pthread_mutex_unlock(&cl->mu);
        free(spec);
        herd_value_free(args);
        herd_annot_clear(&eff);
        herd_annot_clear(&extra);
        *out = f;
        return 0;
    }
    spec->op = OP_SUBMIT;
    spec->key = f->key;
    spec->task = strdup(task);
    spec->run_name = f->run_name ? strdup(f->run_name) : NULL;
    spec->args = args;
    args = NULL;
    spec->priority = eff.priority;
    spec->resources = eff.resources;
    eff.resources = NULL;
    spec->tags = eff.tags;
    eff.tags = NULL;
    spec->workers = eff.workers && herd_len(eff.workers) ? eff.workers : NULL;
    if (spec->workers) eff.workers = NULL;
    spec->allow_other_workers = eff.allow_other_workers;
    spec->retries = eff.retries;
    spec->retry_delay = eff.retry_delay;
    spec->timeout = eff.timeout;
    atomic_fetch_add(&f->refs, 1);         /* the scheduler's */
    spec->fut = f;
    pthread_mutex_unlock(&cl->mu);
    herd_annot_clear(&eff);
    herd_annot_clear(&extra);
    if ((rc = herd_client_send(cl, spec)) != 0) {
        herd_client_deliver(cl, f, HERD_CRASHED, NULL, "the scheduler connection is closed");
        herd_err_set(err, rc, "task \"%s\": the scheduler connection is closed", task);
    }
    *out = f;
    return 0;
fail:
    pthread_mutex_unlock(&cl->mu);
fail_nolock:
    herd_annot_clear(&eff);
    herd_annot_clear(&extra);
    herd_value_free(args);
    free(spec);
    free(f);
    return rc;
}

int herd_submit(herd_runner *r, const char *task, herd_value *args, herd_future **out, herd_err *err)
{
    return herd_submit_annotated(r, task, args, NULL, out, err);   /* it checks r */
}

int herd_submit_annotated(herd_runner *r, const char *task, herd_value *args, const char *annotations,
                          herd_future **out, herd_err *err)
{
    if (out) *out = NULL;
    if (!r) { herd_value_free(args); return herd_err_set(err, HERD_EARG, "herd_submit: runner is NULL"); }
    int rc = r->ensure ? r->ensure(r, err) : 0;     /* start: lazy — the first submit starts the cluster */
    if (rc) {
        if (out) *out = NULL;
        herd_value_free(args);
        return rc;
    }
    return herd_client_submit(r->cl, task, args, annotations, out, err);
}

int herd_submit_map(herd_runner *r, const char *task, herd_value *arg_tuples,
                    herd_future ***futs, size_t *n, herd_err *err)
{
    if (futs) *futs = NULL;
    if (n) *n = 0;
    if (!futs || !n) {
        herd_value_free(arg_tuples);
        return herd_err_set(err, HERD_EARG, "herd_submit_map: futs and n are required");
    }
    if (!r) { herd_value_free(arg_tuples); return herd_err_set(err, HERD_EARG, "herd_submit_map: runner is NULL"); }
    if (herd_typeof(arg_tuples) != HERD_ARRAY) {
        herd_value_free(arg_tuples);
        return herd_err_set(err, HERD_EARG, "herd_submit_map: arg_tuples: expected an array of arrays");
    }
    size_t len = herd_len(arg_tuples);
    for (size_t i = 0; i < len; i++)
        if (herd_typeof(herd_at(arg_tuples, i)) != HERD_ARRAY) {
            int rc = herd_err_set(err, HERD_EARG, "herd_submit_map: arg_tuples[%zu]: expected an array, got %s",
                                  i, herd_type_name(herd_typeof(herd_at(arg_tuples, i))));
            herd_value_free(arg_tuples);
            return rc;
        }
    herd_future **fs = calloc(len ? len : 1, sizeof *fs);
    if (!fs) { herd_value_free(arg_tuples); return herd_err_set(err, -ENOMEM, "out of memory"); }
    for (size_t i = 0; i < len; i++) {
        int rc = herd_submit(r, task, herd_value_copy(herd_at(arg_tuples, i)), &fs[i], err);
        if (rc) {
            for (size_t j = 0; j < i; j++) { herd_future_cancel(fs[j]); herd_future_release(fs[j]); }
            free(fs);
            herd_value_free(arg_tuples);
            return herd_err_prefix(err, "herd_submit_map: item %zu", i);
        }
    }
    herd_value_free(arg_tuples);
    *futs = fs;
    *n = len;
    return 0;
}

herd_value *herd_future_arg(const herd_future *f) { return f ? herd_futref(f->key) : herd_nil(); }

/* ---- annotation scopes ---- */
int herd_annotate_push(herd_runner *r, const char *annotations, herd_err *err)
{
    if (!r) return herd_err_set(err, HERD_EARG, "herd_annotate_push: runner is NULL");
    herd_annot a;
    int rc = herd_annot_parse(annotations, &a, err);
    if (rc) return rc;
    herd_client *cl = r->cl;
    pthread_mutex_lock(&cl->mu);
    if (cl->depth == cl->cap) {
        herd_annot *ns = realloc(cl->stack, 2 * cl->cap * sizeof *ns);
        if (!ns) { pthread_mutex_unlock(&cl->mu); herd_annot_clear(&a); return herd_err_set(err, -ENOMEM, "out of memory"); }
        cl->stack = ns;
        cl->cap *= 2;
    }
    herd_annot *top = &cl->stack[cl->depth];
    annot_copy(top, &cl->stack[cl->depth - 1]);
    annot_merge(top, &a);
    cl->depth++;
    pthread_mutex_unlock(&cl->mu);
    herd_annot_clear(&a);
    return 0;
}

int herd_annotate_pop(herd_runner *r)
{
    if (!r) return -HERD_EARG;
    herd_client *cl = r->cl;
    pthread_mutex_lock(&cl->mu);
    int rc = 0;
    if (cl->depth <= 1) rc = -HERD_ESTATE;
    else herd_annot_clear(&cl->stack[--cl->depth]);
    pthread_mutex_unlock(&cl->mu);
    return rc;
}
