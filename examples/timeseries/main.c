/* examples/timeseries/main.c — the seed's second example in C: Dask's
 * dask.datasets.timeseries("1988", "2022", partition_freq="4w") grouped by
 * year, as herd tasks.
 *
 * A flow task gets a client with herd_task_client (the seed's
 * get_dask_client) and submits one task per partition; each partition's rows
 * (one a second: timestamp, id, name, x, y) are generated deterministically
 * from the partition's index, and the per-year partial sums are combined by a
 * pairwise tree of tasks. main prints the yearly means.
 *
 * With --materialize, each partition is first built as columns (a bytes value
 * made with herd_bytes_take, ~80 MB for 4 weeks) in one stage and aggregated
 * by tasks that take two partition futures each, so the columns move between
 * workers; at most IN_FLIGHT partitions exist at a time.
 *
 * With --check, the same table is computed again in this process, row by
 * row, and compared: counts and id sums exactly, x and y sums within a
 * relative 1e-9 (the combine order differs). Exit 0 only if they agree.
 *
 *   timeseries [--start 1988-01-01] [--end 2022-12-31] [--freq 1s]
 *              [--materialize] [--check] [--cluster-kwargs '{n_workers: 4}']
 *
 * The data, as Dask's timeseries makes it (Dask uses numpy's generators; this
 * uses its own, so the numbers are not Dask's):
 *   partitions  Dask's divisions for partition_freq="4w": start, every fourth
 *               Sunday from the first Sunday after start (pandas' "4W"), end
 *   timestamp   one row a second, start 00:00:00 .. end 23:59:59 (UTC)
 *   id          Poisson(lambda = 1000), by inversion of its CDF table
 *   name        uniform from Dask's 26 names (Alice .. Zelda)
 *   x, y        uniform in [-1, 1)
 * The generator is xoshiro256** (Blackman and Vigna), its state seeded by
 * splitmix64 from the partition's index; each row draws, in order: id, name,
 * x, y.                                                                      */
#include <herd/herd.h>
#include "../common/cli.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_KWARGS "{n_workers: 2, threads_per_worker: 1}"
#define IN_FLIGHT 8                 /* partitions materialised at once (--materialize) */
#define DAY 86400LL

static const char *const NAMES[26] = {
    "Alice", "Bob", "Charlie", "Dan", "Edith", "Frank", "George", "Hannah", "Ingrid", "Jerry", "Kevin",
    "Laura", "Michael", "Norbert", "Oliver", "Patricia", "Quinn", "Ray", "Sarah", "Tim", "Ursula",
    "Victor", "Wendy", "Xavier", "Yvonne", "Zelda",
};


/* ---- calendar (proleptic Gregorian, UTC; Howard Hinnant's algorithms) ---- */

static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int year_of_day(int64_t z)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int m = (int)(mp < 10 ? mp + 3 : mp - 9);
    return (int)(yoe + era * 400 + (m <= 2));
}

static int64_t year_start(int year) { return days_from_civil(year, 1, 1) * DAY; }

/* "YYYY-MM-DD" -> days since 1970-01-01; -1 if malformed or not a real date. */
static int parse_date(const char *s, int64_t *days)
{
    int y, m, d, n = 0;
    if (sscanf(s, "%4d-%2d-%2d%n", &y, &m, &d, &n) != 3 || s[n] || n != 10) return -1;
    if (y < 1970 || y > 9999 || m < 1 || m > 12 || d < 1) return -1;
    int64_t z = days_from_civil(y, m, d);
    static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    if (d > mdays[m - 1] || (m == 2 && d == 29 && !((y % 4 == 0 && y % 100) || y % 400 == 0))) return -1;
    *days = z;
    return 0;
}

/* Partition boundaries in seconds (npart + 1 of them), as Dask's timeseries
 * makes its divisions: start, then pandas' date_range(start, end, freq="4W")
 * (every fourth Sunday, from the first Sunday on or after start), then end. */
static int64_t *partitions(int64_t start_day, int64_t end_day_excl, size_t *npart)
{
    size_t cap = (size_t)((end_day_excl - start_day) / 28 + 4);
    int64_t *b = malloc(cap * sizeof *b);
    if (!b) return NULL;
    size_t n = 0;
    b[n++] = start_day * DAY;
    int64_t sunday = start_day + (((3 - start_day) % 7) + 7) % 7;   /* 1970-01-04 was a Sunday */
    for (int64_t d = sunday; d < end_day_excl; d += 28)
        if (d > start_day) b[n++] = d * DAY;
    b[n++] = end_day_excl * DAY;
    *npart = n - 1;
    return b;
}

/* ---- the generator ---- */

typedef struct rng { uint64_t s[4]; } rng;

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static void rng_seed(rng *r, uint64_t partition)
{
    uint64_t x = partition;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static inline uint64_t rng_next(rng *r)      /* xoshiro256** */
{
    uint64_t *s = r->s, out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

static inline double rng_unit(rng *r) { return (double)(rng_next(r) >> 11) * 0x1.0p-53; }   /* [0, 1) */

/* Poisson(1000) by inversion: CDF table up to k = 1500 (the tail beyond is
 * far below 2^-53) and a guide table so a draw starts near its answer. */
#define LAMBDA 1000.0
#define KMAX 1500
#define GUIDE 4096
static double cdf[KMAX + 1];
static int guide[GUIDE];

__attribute__((constructor)) static void poisson_table(void)
{
    double acc = 0;
    for (int k = 0; k <= KMAX; k++) {
        acc += exp(-LAMBDA + k * log(LAMBDA) - lgamma(k + 1.0));
        cdf[k] = acc;
    }
    cdf[KMAX] = 2.0;                       /* every u < 1 stops here at the latest */
    int k = 0;
    for (int j = 0; j < GUIDE; j++) {
        while (cdf[k] <= (double)j / GUIDE) k++;
        guide[j] = k;
    }
}

static inline int64_t rng_poisson(rng *r)
{
    double u = rng_unit(r);
    int k = guide[(int)(u * GUIDE)];
    while (u >= cdf[k]) k++;
    return k;
}

typedef struct row { int64_t id; int name; double x, y; } row;

static inline void gen_row(rng *r, row *o)
{
    o->id = rng_poisson(r);
    o->name = (int)(((rng_next(r) >> 32) * 26) >> 32);
    o->x = 2.0 * rng_unit(r) - 1.0;
    o->y = 2.0 * rng_unit(r) - 1.0;
}

/* ---- per-year partial sums: [[year, rows, sum_id, sum_x, sum_y], ...], by year ---- */

typedef struct part { int year; int64_t rows, sum_id; double sum_x, sum_y; } part;

static herd_value *parts_value(const part *p, size_t n)
{
    herd_value *a = herd_array();
    for (size_t i = 0; a && i < n; i++)
        if (herd_array_push(a, herd_tuple("iIIdd", p[i].year, p[i].rows, p[i].sum_id, p[i].sum_x, p[i].sum_y))) {
            herd_value_free(a);
            return NULL;
        }
    return a;
}

/* Read a partials value back; -1 with a message in why if it is not one. */
static int parts_read(const herd_value *v, part **out, size_t *n, char *why, size_t cap)
{
    if (herd_typeof(v) != HERD_ARRAY) {
        snprintf(why, cap, "expected an array of per-year partials, got %s", herd_type_name(herd_typeof(v)));
        return -1;
    }
    *n = herd_len(v);
    *out = calloc(*n ? *n : 1, sizeof **out);
    if (!*out) {
        snprintf(why, cap, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < *n; i++) {
        const herd_value *e = herd_at(v, i);
        if (herd_typeof(e) != HERD_ARRAY || herd_len(e) != 5 || herd_typeof(herd_at(e, 0)) != HERD_INT ||
            herd_typeof(herd_at(e, 1)) != HERD_INT || herd_typeof(herd_at(e, 2)) != HERD_INT ||
            herd_typeof(herd_at(e, 3)) != HERD_FLOAT || herd_typeof(herd_at(e, 4)) != HERD_FLOAT) {
            snprintf(why, cap, "partial %zu: expected [year, rows, sum_id, sum_x, sum_y]", i);
            free(*out);
            *out = NULL;
            return -1;
        }
        (*out)[i] = (part){ (int)herd_as_int(herd_at(e, 0)), herd_as_int(herd_at(e, 1)), herd_as_int(herd_at(e, 2)),
                            herd_as_float(herd_at(e, 3)), herd_as_float(herd_at(e, 4)) };
    }
    return 0;
}

/* Merge b into a (both sorted by year) -> a new sorted list. */
static part *parts_merge(const part *a, size_t na, const part *b, size_t nb, size_t *n)
{
    part *m = malloc((na + nb + 1) * sizeof *m);
    if (!m) return NULL;
    size_t i = 0, j = 0, k = 0;
    while (i < na || j < nb) {
        if (j >= nb || (i < na && a[i].year < b[j].year)) m[k++] = a[i++];
        else if (i >= na || b[j].year < a[i].year) m[k++] = b[j++];
        else {
            m[k] = a[i++];
            m[k].rows += b[j].rows;
            m[k].sum_id += b[j].sum_id;
            m[k].sum_x += b[j].sum_x;
            m[k++].sum_y += b[j++].sum_y;
        }
    }
    *n = k;
    return m;
}

/* Partition (index, [t0, t1)) -> per-year partials (at most a few years). */
static int partition_sums(uint64_t index, int64_t t0, int64_t t1, part *out, size_t cap, size_t *n)
{
    rng r;
    rng_seed(&r, index);
    *n = 0;
    for (int64_t t = t0; t < t1;) {
        int year = year_of_day(t / DAY);
        int64_t stop = year_start(year + 1) < t1 ? year_start(year + 1) : t1;
        if (*n == cap) return -1;
        part p = { .year = year };
        for (; t < stop; t++) {
            row o;
            gen_row(&r, &o);
            p.rows++;
            p.sum_id += o.id;
            p.sum_x += o.x;
            p.sum_y += o.y;
        }
        out[(*n)++] = p;
    }
    return 0;
}

/* ---- tasks ---- */

static int check_span(herd_task_ctx *ctx, const char *task, const herd_value *args, int64_t *index, int64_t *t0,
                      int64_t *t1)
{
    if (herd_len(args) != 3 || herd_typeof(herd_at(args, 0)) != HERD_INT || herd_typeof(herd_at(args, 1)) != HERD_INT ||
        herd_typeof(herd_at(args, 2)) != HERD_INT)
        return herd_task_fail(ctx, "%s: expected 3 int arguments (index, t0, t1)", task);
    *index = herd_as_int(herd_at(args, 0));
    *t0 = herd_as_int(herd_at(args, 1));
    *t1 = herd_as_int(herd_at(args, 2));
    if (*index < 0 || *t0 < 0 || *t1 <= *t0 || *t1 - *t0 > 366 * DAY)
        return herd_task_fail(ctx, "%s: bad partition %" PRId64 " [%" PRId64 ", %" PRId64 ")", task, *index, *t0, *t1);
    return 0;
}

/* partition_sums(index, t0, t1) -> per-year partials of its rows */
static int ts_partition(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    int64_t index, t0, t1;
    int rc = check_span(ctx, "ts_partition", args, &index, &t0, &t1);
    if (rc) return rc;
    part p[4];
    size_t n;
    if (partition_sums((uint64_t)index, t0, t1, p, 4, &n))
        return herd_task_fail(ctx, "ts_partition: partition spans too many years");
    return (*out = parts_value(p, n)) ? 0 : -ENOMEM;
}
HERD_TASK(ts_partition);

/* Materialised partition layout (little-endian host order, as the workers
 * are the same program): a 16-byte header "HTS1", 4 zero bytes, int64 rows;
 * then int64 timestamp[rows], int64 id[rows], float64 x[rows], float64
 * y[rows], uint8 name[rows] (an index into NAMES). */
#define MAGIC "HTS1\0\0\0\0"
#define HDR 16
static size_t mat_size(int64_t rows) { return HDR + (size_t)rows * (4 * 8 + 1); }

/* ts_materialize(index, t0, t1) -> bytes: the partition's columns */
static int ts_materialize(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    int64_t index, t0, t1;
    int rc = check_span(ctx, "ts_materialize", args, &index, &t0, &t1);
    if (rc) return rc;
    int64_t rows = t1 - t0;
    size_t size = mat_size(rows);
    char *buf = malloc(size);
    if (!buf) return herd_task_fail(ctx, "ts_materialize: cannot allocate %zu bytes", size);
    memcpy(buf, MAGIC, 8);
    memcpy(buf + 8, &rows, 8);
    int64_t *ts = (int64_t *)(void *)(buf + HDR), *id = ts + rows;
    double *x = (double *)(void *)(id + rows), *y = x + rows;
    uint8_t *name = (uint8_t *)(y + rows);
    rng r;
    rng_seed(&r, (uint64_t)index);
    for (int64_t i = 0; i < rows; i++) {
        row o;
        gen_row(&r, &o);
        ts[i] = t0 + i;
        id[i] = o.id;
        name[i] = (uint8_t)o.name;
        x[i] = o.x;
        y[i] = o.y;
    }
    return (*out = herd_bytes_take(buf, size)) ? 0 : -ENOMEM;   /* no copy: the buffer becomes the value */
}
HERD_TASK(ts_materialize);

/* Sum one materialised partition's columns by year, into acc. */
static int aggregate_columns(herd_task_ctx *ctx, const herd_value *v, part **acc, size_t *nacc)
{
    size_t len;
    const char *buf = herd_as_bytes(v, &len);
    int64_t rows;
    if (herd_typeof(v) != HERD_BYTES || len < HDR || memcmp(buf, MAGIC, 8))
        return herd_task_fail(ctx, "ts_aggregate: expected a materialised partition (bytes starting \"HTS1\")");
    memcpy(&rows, buf + 8, 8);
    if (rows < 0 || rows > 366 * DAY || mat_size(rows) != len)
        return herd_task_fail(ctx, "ts_aggregate: partition of %zu bytes claims %" PRId64 " rows", len, rows);
    const char *ts = buf + HDR, *id = ts + 8 * rows, *x = id + 8 * rows, *y = x + 8 * rows,
               *name = y + 8 * rows;
    part p[4];
    size_t n = 0;
    int64_t lo = 0, hi = 0;                 /* the current year's [lo, hi) */
    for (int64_t i = 0; i < rows; i++) {
        int64_t t, k;
        double a, b;
        memcpy(&t, ts + 8 * i, 8);
        memcpy(&k, id + 8 * i, 8);
        memcpy(&a, x + 8 * i, 8);
        memcpy(&b, y + 8 * i, 8);
        if ((uint8_t)name[i] >= 26) return herd_task_fail(ctx, "ts_aggregate: row %" PRId64 ": bad name", i);
        if (n == 0 || t < lo || t >= hi) {
            int year = year_of_day((t >= 0 ? t : t - DAY + 1) / DAY);
            if (n == 0 || p[n - 1].year != year) {
                if (n == 4) return herd_task_fail(ctx, "ts_aggregate: timestamps out of order");
                p[n++] = (part){ .year = year };
            }
            lo = year_start(year);
            hi = year_start(year + 1);
        }
        part *q = &p[n - 1];
        q->rows++;
        q->sum_id += k;
        q->sum_x += a;
        q->sum_y += b;
    }
    size_t nm;
    part *m = parts_merge(*acc, *nacc, p, n, &nm);
    if (!m) return -ENOMEM;
    free(*acc);
    *acc = m;
    *nacc = nm;
    return 0;
}

/* ts_aggregate(partition, ...) -> per-year partials of the given materialised partitions */
static int ts_aggregate(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    if (herd_len(args) == 0) return herd_task_fail(ctx, "ts_aggregate: expected at least one partition");
    part *acc = NULL;
    size_t n = 0;
    for (size_t i = 0; i < herd_len(args); i++) {
        int rc = aggregate_columns(ctx, herd_at(args, i), &acc, &n);
        if (rc) {
            free(acc);
            return rc;
        }
    }
    *out = parts_value(acc, n);
    free(acc);
    return *out ? 0 : -ENOMEM;
}
HERD_TASK(ts_aggregate);

/* ts_combine(partials, partials) -> their sum by year */
static int ts_combine(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    if (herd_len(args) != 2) return herd_task_fail(ctx, "ts_combine: expected 2 arguments, got %zu", herd_len(args));
    part *a = NULL, *b = NULL, *m = NULL;
    size_t na, nb, nm;
    char why[200];
    if (parts_read(herd_at(args, 0), &a, &na, why, sizeof why) || parts_read(herd_at(args, 1), &b, &nb, why, sizeof why)) {
        free(a);
        return herd_task_fail(ctx, "ts_combine: %s", why);
    }
    if ((m = parts_merge(a, na, b, nb, &nm))) *out = parts_value(m, nm);
    free(a);
    free(b);
    free(m);
    return *out ? 0 : -ENOMEM;
}
HERD_TASK(ts_combine);

static int flow_fail(herd_task_ctx *ctx, const char *what, herd_err *err)
{
    return herd_task_fail(ctx, "ts_flow: %s: %s", what, err->msg);
}

/* ts_flow(start_day, end_day_exclusive, materialize) -> {partitions, table}:
 * submits the partition tasks and the combine tree through its own client. */
static int ts_flow(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    if (herd_len(args) != 3 || herd_typeof(herd_at(args, 0)) != HERD_INT ||
        herd_typeof(herd_at(args, 1)) != HERD_INT || herd_typeof(herd_at(args, 2)) != HERD_BOOL)
        return herd_task_fail(ctx, "ts_flow: expected (start_day int, end_day int, materialize bool)");
    int64_t start = herd_as_int(herd_at(args, 0)), end = herd_as_int(herd_at(args, 1));
    bool mat = herd_as_bool(herd_at(args, 2));
    if (start < 0 || end <= start) return herd_task_fail(ctx, "ts_flow: empty range");
    herd_runner *c = herd_task_client(ctx);
    if (!c) return herd_task_fail(ctx, "ts_flow: no client (run it as a task)");
    size_t np, nleaf = 0;
    int64_t *b = partitions(start, end, &np);
    herd_future **level = b ? calloc(np, sizeof *level) : NULL;
    herd_future **mats = b ? calloc(np, sizeof *mats) : NULL;
    herd_err err;
    int rc = 0;
    if (!level || !mats) {
        rc = -ENOMEM;
        goto done;
    }
    if (!mat) {
        for (size_t i = 0; i < np; i++)
            if ((rc = herd_submit(c, "ts_partition", herd_tuple("III", (int64_t)i, b[i], b[i + 1]), &level[nleaf++], &err))) {
                rc = flow_fail(ctx, "submit ts_partition", &err);
                goto done;
            }
    } else {
        /* Stage 1 makes the columns, stage 2 (one task per pair of
         * partitions) sums them. Before a pair beyond IN_FLIGHT partitions is
         * submitted, the oldest pair's sums are awaited and its columns
         * released (freed on their worker). */
        size_t oldest = 0;                          /* first leaf whose columns are still held */
        for (size_t i = 0; i < np; i += 2) {
            size_t k = np - i < 2 ? np - i : 2;
            while ((i - 2 * oldest) + k > IN_FLIGHT) {
                const herd_value *v;
                if ((rc = herd_future_result(level[oldest], -1, &v, &err))) {
                    rc = flow_fail(ctx, herd_future_name(level[oldest]), &err);
                    goto done;
                }
                for (size_t j = 2 * oldest; j < 2 * oldest + 2 && j < np; j++) {
                    herd_future_release(mats[j]);
                    mats[j] = NULL;
                }
                oldest++;
            }
            herd_value *aargs = herd_array();
            for (size_t j = i; j < i + k; j++) {
                if ((rc = herd_submit(c, "ts_materialize", herd_tuple("III", (int64_t)j, b[j], b[j + 1]), &mats[j], &err))) {
                    herd_value_free(aargs);
                    rc = flow_fail(ctx, "submit ts_materialize", &err);
                    goto done;
                }
                herd_array_push(aargs, herd_future_arg(mats[j]));
            }
            if ((rc = herd_submit(c, "ts_aggregate", aargs, &level[nleaf++], &err))) {
                rc = flow_fail(ctx, "submit ts_aggregate", &err);
                goto done;
            }
        }
    }
    /* The tree: pairs of partials combine level by level, an odd one out
     * going up as it is, until one holds every year. */
    for (size_t n = nleaf; n > 1; n = (n + 1) / 2) {
        for (size_t i = 0; i < n / 2; i++) {
            herd_future *f;
            if ((rc = herd_submit(c, "ts_combine", herd_tuple("ff", level[2 * i], level[2 * i + 1]), &f, &err))) {
                rc = flow_fail(ctx, "submit ts_combine", &err);
                goto done;
            }
            level[i] = f;               /* the children stay referenced by the client until this task returns */
        }
        if (n % 2) level[n / 2] = level[n - 1];
    }
    const herd_value *v;
    if ((rc = herd_future_result(level[0], -1, &v, &err))) {
        rc = flow_fail(ctx, herd_future_name(level[0]), &err);
        goto done;
    }
    *out = herd_map();
    if (!*out || herd_map_set(*out, "partitions", herd_int((int64_t)np)) ||
        herd_map_set(*out, "table", herd_value_copy(v)))
        rc = -ENOMEM;
done:
    free(b);
    free(level);
    free(mats);
    return rc;
}
HERD_TASK(ts_flow);

/* ---- the program ---- */

typedef struct config {
    int64_t start, end;             /* days; end exclusive */
    bool materialize, check;
    ex_cluster cluster;             /* --cluster-kwargs, --profile or $HERD_PROFILE */
} config;

/* The first rows of the dataset (partition 0), as df.head() shows them. */
static void print_head(const config *cf, int n)
{
    rng r;
    rng_seed(&r, 0);
    printf("  timestamp               id  name          x            y\n");
    for (int i = 0; i < n; i++) {
        row o;
        gen_row(&r, &o);
        time_t t = (time_t)(cf->start * DAY + i);
        struct tm tm;
        char when[32];
        strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", gmtime_r(&t, &tm));
        printf("  %s  %4" PRId64 "  %-8s  %11.8f  %11.8f\n", when, o.id, NAMES[o.name], o.x, o.y);
    }
}

static void print_table(const part *p, size_t n)
{
    printf("  year        rows     mean id       mean x       mean y\n");
    for (size_t i = 0; i < n; i++)
        printf("  %4d  %10" PRId64 "  %10.4f  %11.8f  %11.8f\n", p[i].year, p[i].rows,
               (double)p[i].sum_id / (double)p[i].rows, p[i].sum_x / (double)p[i].rows,
               p[i].sum_y / (double)p[i].rows);
}

/* The same table computed here, row by row: each row goes to the year of its
 * own timestamp, sums with Neumaier's compensation. */
typedef struct direct { int year; int64_t rows, sum_id; double sx, cx, sy, cy; } direct;

static inline void neumaier(double *s, double *c, double v)
{
    double t = *s + v;
    *c += fabs(*s) >= fabs(v) ? (*s - t) + v : (v - t) + *s;
    *s = t;
}

static part *compute_direct(const config *cf, size_t *n)
{
    size_t np;
    int64_t *b = partitions(cf->start, cf->end, &np);
    int y0 = year_of_day(cf->start), y1 = year_of_day(cf->end - 1);
    direct *d = b ? calloc((size_t)(y1 - y0 + 1), sizeof *d) : NULL;
    part *p = d ? calloc((size_t)(y1 - y0 + 1), sizeof *p) : NULL;
    if (!p) {
        free(b);
        free(d);
        return NULL;
    }
    for (size_t i = 0; i < np; i++) {
        rng r;
        rng_seed(&r, i);
        for (int64_t t = b[i]; t < b[i + 1]; t++) {
            row o;
            gen_row(&r, &o);
            direct *q = &d[year_of_day(t / DAY) - y0];
            q->rows++;
            q->sum_id += o.id;
            neumaier(&q->sx, &q->cx, o.x);
            neumaier(&q->sy, &q->cy, o.y);
        }
    }
    *n = 0;
    for (int y = y0; y <= y1; y++) {
        direct *q = &d[y - y0];
        if (q->rows) p[(*n)++] = (part){ y, q->rows, q->sum_id, q->sx + q->cx, q->sy + q->cy };
    }
    free(b);
    free(d);
    return p;
}

static bool close_enough(double a, double b)
{
    return fabs(a - b) <= 1e-9 * fmax(fmax(fabs(a), fabs(b)), 1.0);
}

static int compare(const part *a, size_t na, const part *b, size_t nb)
{
    int bad = 0;
    if (na != nb) {
        printf("check: %zu years on the cluster, %zu computed directly\n", na, nb);
        return -1;
    }
    for (size_t i = 0; i < na; i++) {
        if (a[i].year != b[i].year || a[i].rows != b[i].rows || a[i].sum_id != b[i].sum_id ||
            !close_enough(a[i].sum_x, b[i].sum_x) || !close_enough(a[i].sum_y, b[i].sum_y)) {
            printf("check: year %d differs: cluster %d %" PRId64 " %" PRId64 " %.17g %.17g, direct %d %" PRId64
                   " %" PRId64 " %.17g %.17g\n", b[i].year, a[i].year, a[i].rows, a[i].sum_id, a[i].sum_x, a[i].sum_y,
                   b[i].year, b[i].rows, b[i].sum_id, b[i].sum_x, b[i].sum_y);
            bad++;
        }
    }
    return bad ? -1 : 0;
}

typedef struct opts_state { config *cf; int64_t last; } opts_state;

static int on_opt(void *ud, int c, const char *arg, const char *prog)
{
    opts_state *st = ud;
    switch (c) {
    case 's':
    case 'e':
        if (parse_date(arg, c == 's' ? &st->cf->start : &st->last)) {
            fprintf(stderr, "%s: --%s: expected a date YYYY-MM-DD from 1970 on, got \"%s\"\n", prog,
                    c == 's' ? "start" : "end", arg);
            return -1;
        }
        break;
    case 'f':
        if (strcmp(arg, "1s")) {
            fprintf(stderr, "%s: --freq: only 1s is supported, got \"%s\"\n", prog, arg);
            return -1;
        }
        break;
    case 'm': st->cf->materialize = true; break;
    case 'c': st->cf->check = true; break;
    }
    return 0;
}

static int parse_args(int argc, char **argv, config *cf)
{
    static const struct option opts[] = {
        { "start", required_argument, NULL, 's' },
        { "end", required_argument, NULL, 'e' },
        { "freq", required_argument, NULL, 'f' },
        { "materialize", no_argument, NULL, 'm' },
        { "check", no_argument, NULL, 'c' },
        { NULL, 0, NULL, 0 },
    };
    opts_state st = { cf, cf->end - 1 };
    const ex_cli cli = {
        .about = "Dask's timeseries dataset (one row a second: timestamp, id, name, x, y) in\n"
                 "4-week partitions, generated and summed by year as tasks on a temporary\n"
                 "LocalCluster; prints the yearly means.\n",
        .opts = opts,
        .opts_help = "  --start YYYY-MM-DD       first day (default 1988-01-01)\n"
                     "  --end YYYY-MM-DD         last day, included (default 2022-12-31)\n"
                     "  --freq 1s                the row frequency (only 1s)\n"
                     "  --materialize            build each partition's columns in one stage (bytes,\n"
                     "                           ~80 MB for 4 weeks) and sum them in another\n"
                     "  --check                  compute the table again here, row by row, and compare\n",
        .on_opt = on_opt, .ud = &st, .cluster = &cf->cluster,
    };
    if (ex_parse_args(argc, argv, &cli)) return -1;
    cf->end = st.last + 1;
    if (cf->end <= cf->start) {
        fprintf(stderr, "%s: --end is before --start\n", argv[0]);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    int rc = herd_init(&argc, &argv);          /* a worker process never returns from here */
    if (rc) {
        fprintf(stderr, "%s: herd_init: %s\n", argv[0], herd_strerror(rc));
        return 1;
    }
    config cf = { .start = days_from_civil(1988, 1, 1), .end = days_from_civil(2023, 1, 1),
                  .cluster = ex_cluster_defaults(DEFAULT_KWARGS) };
    if (parse_args(argc, argv, &cf)) return 2;

    size_t np;
    int64_t *b = partitions(cf.start, cf.end, &np);
    if (!b) return 1;
    free(b);
    int64_t rows = (cf.end - cf.start) * DAY;

    herd_err err;
    printf("timeseries: %" PRId64 " rows (1s) in %zu partitions (4w), %s\n", rows, np,
           cf.materialize ? "materialised as columns, then summed" : "summed where generated");
    print_head(&cf, 3);
    fflush(stdout);

    double t0 = ex_now(), t1 = 0, t2 = 0;
    herd_future *flow = NULL;
    const herd_value *v = NULL;
    part *got = NULL;
    size_t ngot = 0;
    char why[200];
    int bad = 0, bad_kwargs;
    herd_runner *r = ex_flow_begin(&cf.cluster, "timeseries", "timeseries-yearly-means", &bad_kwargs);
    if (!r) return bad_kwargs ? 2 : 1;
    t1 = ex_now();
    if (herd_submit(r, "ts_flow", herd_tuple("IIb", cf.start, cf.end, (int)cf.materialize), &flow, &err) ||
        herd_future_result(flow, -1, &v, &err)) {
        fprintf(stderr, "timeseries: %s\n", err.msg);
        bad = 1;
        goto end;
    }
    t2 = ex_now();
    if (parts_read(herd_map_get(v, "table"), &got, &ngot, why, sizeof why)) {
        fprintf(stderr, "timeseries: the flow's result: %s\n", why);
        bad = 1;
        goto end;
    }
    print_table(got, ngot);
    printf("timeseries: %" PRId64 " rows in %.2f s on the cluster: %.1f million rows/s (%.2f s with cluster start)\n",
           rows, t2 - t1, rows / (t2 - t1) / 1e6, t2 - t0);
    fflush(stdout);
end:
    if (herd_flow_end(r, bad, &err)) fprintf(stderr, "timeseries: closing the cluster: %s\n", err.msg);
    herd_runner_free(r);
    if (!bad && cf.check) {
        double t3 = ex_now();
        size_t nd;
        part *d = compute_direct(&cf, &nd);
        if (!d) {
            fprintf(stderr, "timeseries: out of memory\n");
            bad = 1;
        } else if (compare(got, ngot, d, nd)) {
            printf("check: FAILED\n");
            bad = 1;
        } else {
            printf("check: passed: %zu years equal to a direct sequential computation (%.2f s, %.1f million rows/s)\n",
                   nd, ex_now() - t3, rows / (ex_now() - t3) / 1e6);
        }
        free(d);
    }
    free(got);
    return bad;
}
