/* tests/support/blobs.h — what the data-plane tests share: tasks that make
 * and check big values (t_make, t_check) in the workers, and waiting for a
 * future's state and value. Header-only: each test binary registers its own
 * copy of the tasks (HERD_TASK). Include after testutil.h. */
#ifndef HERD_TEST_BLOBS_H
#define HERD_TEST_BLOBS_H

#include <glob.h>

/* t_make's data: 4 KiB blocks, block k filled with one byte of (seed, k),
 * so it is written and checked with memset/memcmp (fast under sanitizers). */
#define BLOCK 4096
static inline unsigned char pattern(int64_t seed, size_t block) { return (unsigned char)((uint64_t)seed * 131 + block * 31 + 7); }

/* (n, seed, dir|nil[, how]) -> {worker, pid, data: n bytes of pattern(seed)};
 * with a dir, also writes the worker's pid to dir/<seed>.pid. how: "take"
 * (default: malloc + herd_bytes_take), "alloc" (herd_bytes_alloc) or "shm"
 * (herd_bytes_alloc_shm). */
static int t_make(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    size_t n = (size_t)herd_as_int(herd_at(args, 0));
    int64_t seed = herd_as_int(herd_at(args, 1));
    const char *dir = herd_as_str(herd_at(args, 2));
    const char *how = herd_len(args) > 3 ? herd_as_str(herd_at(args, 3)) : "take";
    herd_value *data = NULL;
    unsigned char *buf;
    if (strcmp(how, "take") == 0) buf = malloc(n ? n : 1);
    else if (!(data = strcmp(how, "shm") == 0 ? herd_bytes_alloc_shm(n, (void **)&buf) : herd_bytes_alloc(n, (void **)&buf)))
        buf = NULL;
    if (!buf) return herd_task_fail(ctx, "t_make: no memory for %zu bytes", n);
    for (size_t off = 0; off < n; off += BLOCK) memset(buf + off, pattern(seed, off / BLOCK), n - off < BLOCK ? n - off : BLOCK);
    if (dir) {
        char path[600], pid[32];
        snprintf(path, sizeof path, "%s/%lld.pid", dir, (long long)seed);
        int len = snprintf(pid, sizeof pid, "%ld", (long)getpid());
        FILE *f = fopen(path, "w");
        if (!f || fwrite(pid, 1, (size_t)len, f) != (size_t)len) {
            if (f) fclose(f);
            if (data) herd_value_free(data);
            else free(buf);
            return herd_task_fail(ctx, "t_make: %s", path);
        }
        fclose(f);
    }
    *out = herd_map();
    herd_map_set(*out, "worker", herd_str(herd_task_worker_name(ctx)));
    herd_map_set(*out, "pid", herd_int(getpid()));
    herd_map_set(*out, "data", data ? data : herd_bytes_take(buf, n));     /* no copy */
    return 0;
}
HERD_TASK(t_make);

/* Does v hold t_make(n, seed)'s data? */
static inline bool blob_ok(const herd_value *v, size_t n, int64_t seed)
{
    size_t len = 0;
    const unsigned char *p = herd_as_bytes(herd_map_get(v, "data"), &len);
    if (len != n || (n && !p)) return false;
    unsigned char want[BLOCK];
    for (size_t off = 0; off < n; off += BLOCK) {
        size_t k = n - off < BLOCK ? n - off : BLOCK;
        memset(want, pattern(seed, off / BLOCK), k);
        if (memcmp(p + off, want, k)) return false;
    }
    return true;
}

/* Is p inside a mapping of one of herd's memfds (/proc/self/maps)? */
static inline bool in_memfd(const void *p)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    bool found = false;
    while (f && !found && fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 && (uintptr_t)p >= lo && (uintptr_t)p < hi)
            found = strstr(line, "memfd:herd-value") != NULL;
    }
    if (f) fclose(f);
    return found;
}

/* (blob, n, seed, barrier dir|nil, id) -> [ok, worker, mapped: whether the
 * data is a memfd's pages mapped here]. With a barrier, it
 * creates dir/id and waits until dir holds two such files, so two consumers
 * run at the same time. */
static int t_check(herd_task_ctx *ctx, const herd_value *args, herd_value **out)
{
    const char *dir = herd_as_str(herd_at(args, 3));
    if (dir) {
        char path[600];
        snprintf(path, sizeof path, "%s/%s", dir, herd_as_str(herd_at(args, 4)));
        FILE *f = fopen(path, "w");
        if (!f) return herd_task_fail(ctx, "t_check: %s", path);
        fclose(f);
        double end = tu_now() + 4 * TU_WAIT_S;   /* the other may be fetching 300 MiB under sanitizers */
        for (;;) {
            glob_t g;
            char pat[600];
            snprintf(pat, sizeof pat, "%s/c*", dir);
            size_t k = glob(pat, 0, NULL, &g) == 0 ? g.gl_pathc : 0;
            globfree(&g);
            if (k >= 2) break;
            if (tu_now() > end) return herd_task_fail(ctx, "t_check: the other consumer never came");
            tu_sleep_ms(2);
        }
    }
    bool ok = blob_ok(herd_at(args, 0), (size_t)herd_as_int(herd_at(args, 1)), herd_as_int(herd_at(args, 2)));
    const void *p = herd_as_bytes(herd_map_get(herd_at(args, 0), "data"), NULL);
    *out = herd_tuple("isi", ok ? 1 : 0, herd_task_worker_name(ctx), p && in_memfd(p) ? 1 : 0);
    return 0;
}
HERD_TASK(t_check);

static inline const herd_value *result_of(herd_future *f)
{
    const herd_value *v = NULL;
    herd_err err = { 0 };
    /* 300 MiB values under ThreadSanitizer take a while, 1.5 GiB relayed
     * there minutes: a wide bound */
    if (herd_future_result(f, (TU_TSAN ? 12 : 4) * TU_WAIT_S, &v, &err)) fail_msg("%s: %s", herd_future_name(f), err.msg);
    return v;
}

static inline void wait_completed(herd_future *f)
{
    double end = tu_now() + TU_WAIT_S;
    while (herd_future_state(f) != HERD_COMPLETED) {
        if (tu_now() > end || herd_state_is_final(herd_future_state(f)))
            fail_msg("%s: %s", herd_future_name(f), herd_state_name(herd_future_state(f)));
        tu_sleep_ms(2);
    }
}

/* Each size: two consumers of one producer run at once on the two workers
 * (so one of them fetched it from the other), both read it right, and the
 * client reads it on demand. ck and cl: cluster_kwargs and client_kwargs
 * (ck has resources {slot: 1} per worker). same_host (peers on Unix
 * sockets): also 8 MiB and 1.5 GiB values, made the three ways; the
 * herd_bytes_alloc_shm payload (1.5 GiB) reaches the other worker and the
 * client as a memfd they map (not through the socket), the others through
 * the socket into memory of their own. */
static inline void values_between_workers(const char *ck, const char *cl, bool same_host)
{
    char dir[256];
    tu_mkdtemp(dir, sizeof dir);
    herd_runner *r = tu_flow(ck, cl, 2, NULL);
    const size_t sizes[] = { 0, 1024, (size_t)300 << 20, (size_t)8 << 20, (size_t)1536 << 20 };
    const char *hows[] = { "take", "take", "take", "alloc", "shm" };
    for (size_t s = 0; s < (same_host ? 5u : 3u); s++) {
        size_t n = sizes[s];
        char round[300];
        snprintf(round, sizeof round, "%s/r%zu", dir, s);
        assert_int_equal(mkdir(round, 0700), 0);
        herd_future *p = tu_submit(r, "t_make", herd_tuple("Iins", (int64_t)n, (int)s + 1, hows[s]), NULL);
        herd_future *c[2];
        for (int i = 0; i < 2; i++)
            c[i] = tu_submit(r, "t_check", herd_tuple("vIiss", herd_future_arg(p), (int64_t)n, (int)s + 1, round,
                                                      i ? "c1" : "c0"), "{resources: {slot: 1}}");
        const herd_value *a = result_of(c[0]), *b = result_of(c[1]);
        if (herd_as_int(herd_at(a, 0)) != 1 || herd_as_int(herd_at(b, 0)) != 1)
            fail_msg("%zu bytes: a consumer read the wrong value", n);
        assert_string_not_equal(herd_as_str(herd_at(a, 1)), herd_as_str(herd_at(b, 1)));
        const herd_value *v = result_of(p);
        if (!blob_ok(v, n, (int)s + 1)) fail_msg("%zu bytes: the client read the wrong value", n);
        const herd_value *other = strcmp(herd_as_str(herd_at(a, 1)), herd_as_str(herd_map_get(v, "worker"))) ? a : b;
        const void *data = herd_as_bytes(herd_map_get(v, "data"), NULL);
        int big = same_host && n >= ((size_t)1 << 20) && strcmp(hows[s], "shm") == 0;
        if (herd_as_int(herd_at(other, 2)) != big || (data && in_memfd(data)) != big)
            fail_msg("%zu bytes: mapped from a memfd on the other worker: %lld, in the client: %d (expected %d)", n,
                     (long long)herd_as_int(herd_at(other, 2)), data && in_memfd(data), big);
        herd_future_release(c[0]);
        herd_future_release(c[1]);
        herd_future_release(p);
    }
    tu_flow_end(r);
    tu_rmtree(dir);
}

#endif
