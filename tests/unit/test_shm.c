/* tests/unit/test_shm.c — same-host zero copy: sealed memfds (shm.c), values
 * whose payloads are shared, memfd-backed or taken with a free function
 * (value_buf.c), and the peer fetch against a real peer server (a held value
 * arrives as a mapped memfd) and against a hostile one in this process that
 * sends a descriptor that is not a memfd, an unsealed memfd, a short memfd,
 * too many descriptors: each refused with a message saying what was wrong. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "comm.h"
#include "peer.h"
#include "proto.h"
#include "shm.h"
#include "store.h"
#include "value_int.h"

#define MIB ((size_t)1 << 20)

/* Is p inside a mapping of one of herd's memfds (/proc/self/maps)? */
static bool in_memfd(const void *p)
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

static int seals_of(int fd) { return fcntl(fd, F_GET_SEALS); }

/* ---- shm.c ---- */
static void test_memfd_seal_and_map(void **state)
{
    int fd;
    void *p;
    assert_int_equal(herd_shm_create(2 * MIB, &fd, &p), 0);
    memset(p, 5, 2 * MIB);
    herd_err err = { 0 };
    void *m;
    assert_int_equal(herd_shm_map(fd, 2 * MIB, &m, &err), -HERD_EPROTO);       /* not sealed yet */
    assert_non_null(strstr(err.msg, "seals"));
    assert_int_equal(herd_shm_seal(fd, p, 2 * MIB), 0);
    int s = seals_of(fd);
    assert_true((s & (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL)) ==
                (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL));
    assert_int_equal(((unsigned char *)p)[2 * MIB - 1], 5);                  /* same address, still readable */
    assert_int_not_equal(ftruncate(fd, MIB), 0);                                 /* SHRINK */
    assert_int_not_equal(write(fd, "x", 1), 1);                                  /* WRITE */
    assert_int_equal(herd_shm_map(fd, MIB, &m, &err), -HERD_EPROTO);            /* the wrong length */
    assert_non_null(strstr(err.msg, "holds 2097152 bytes, expected 1048576"));
    assert_int_equal(herd_shm_map(fd, 2 * MIB, &m, &err), 0);
    assert_memory_equal(m, p, 2 * MIB);
    munmap(m, 2 * MIB);
    munmap(p, 2 * MIB);
    close(fd);

    int pp[2];
    assert_int_equal(pipe(pp), 0);
    assert_int_equal(herd_shm_map(pp[0], MIB, &m, &err), -HERD_EPROTO);
    assert_non_null(strstr(err.msg, "is not a memfd"));
    close(pp[0]);
    close(pp[1]);
}

static void test_fd_passing(void **state)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    int pp[2];
    assert_int_equal(pipe(pp), 0);
    int fds[3] = { pp[0], pp[1], pp[0] };
    assert_int_equal(herd_shm_send(sv[0], "abcd", 4, fds, 2), 0);
    char buf[4];
    int got[4], n = -1;
    herd_err err = { 0 };
    assert_int_equal(herd_shm_recv(sv[1], buf, 4, got, 4, &n, &err), 0);
    assert_memory_equal(buf, "abcd", 4);
    assert_int_equal(n, 2);
    assert_int_equal(write(got[1], "z", 1), 1);                 /* they are the pipe's ends */
    char c;
    assert_int_equal(read(got[0], &c, 1), 1);
    assert_int_equal(c, 'z');
    close(got[0]);
    close(got[1]);
    /* more descriptors than the reader takes: refused, none left open */
    assert_int_equal(herd_shm_send(sv[0], "efgh", 4, fds, 3), 0);
    assert_int_equal(herd_shm_recv(sv[1], buf, 4, got, 2, &n, &err), -HERD_EPROTO);
    assert_int_equal(n, 0);
    assert_non_null(strstr(err.msg, "more descriptors than 2"));
    close(pp[0]);
    close(pp[1]);
    close(sv[0]);
    close(sv[1]);
}

/* ---- value_buf.c ---- */
static int freed;
static void count_free(void *p, size_t len, void *ctx)
{
    assert_int_equal(len, 10);
    assert_ptr_equal(ctx, &freed);
    free(p);
    freed++;
}

static void test_bytes_alloc_share(void **state)
{
    void *p;
    herd_value *v = herd_bytes_alloc(4 * MIB, &p);             /* anonymous memory */
    assert_non_null(v);
    assert_false(in_memfd(p));
    memset(p, 3, 4 * MIB);
    assert_int_equal(herd_value_share(&v), 0);
    assert_int_equal(herd_bytes_memfd(v), -1);
    herd_value *c = herd_value_copy(v);
    assert_ptr_equal(herd_as_bytes(c, NULL), p);                 /* shared */
    herd_value_free(v);
    herd_value_free(c);

    v = herd_bytes_alloc_shm(4 * MIB, &p);                       /* a memfd */
    assert_non_null(v);
    assert_true(in_memfd(p));
    memset(p, 9, 4 * MIB);
    assert_int_equal(herd_bytes_memfd(v), -1);                  /* not sealed before it is frozen */
    assert_int_equal(herd_value_share(&v), 0);
    int fd = herd_bytes_memfd(v);
    assert_true(fd >= 0);
    assert_int_equal(seals_of(fd) & F_SEAL_WRITE, F_SEAL_WRITE);
    size_t len;
    assert_ptr_equal(herd_as_bytes(v, &len), p);                 /* same pages, now read-only */
    assert_int_equal(len, 4 * MIB);
    c = herd_value_copy(v);
    assert_ptr_equal(herd_as_bytes(c, NULL), p);                 /* shared, not copied */
    herd_value_free(v);
    assert_int_equal(((unsigned char *)herd_as_bytes(c, NULL))[4 * MIB - 1], 9);
    herd_value_free(c);

    v = herd_bytes_alloc(100, &p);                               /* small: plain memory */
    assert_false(in_memfd(p));
    memset(p, 1, 100);
    assert_int_equal(herd_len(v), 100);
    herd_value_free(v);
    v = herd_bytes_alloc(0, &p);
    assert_int_equal(herd_len(v), 0);
    herd_value_free(v);
    assert_null(herd_bytes_alloc(1, NULL));

    /* a big payload inside a container, inline and malloc'd: shared once frozen */
    herd_value *m = herd_map();
    char *big = calloc(1, 200000);
    assert_non_null(big);
    herd_map_set(m, "inline", herd_bytes(big, 200000));
    herd_map_set(m, "taken", herd_bytes_take(big, 200000));
    herd_map_set(m, "small", herd_bytes(big, 10));
    assert_int_equal(herd_value_share(&m), 0);
    c = herd_value_copy(m);
    assert_ptr_equal(herd_as_bytes(herd_map_get(c, "inline"), NULL), herd_as_bytes(herd_map_get(m, "inline"), NULL));
    assert_ptr_equal(herd_as_bytes(herd_map_get(c, "taken"), NULL), big);
    assert_ptr_not_equal(herd_as_bytes(herd_map_get(c, "small"), NULL), herd_as_bytes(herd_map_get(m, "small"), NULL));
    assert_true(herd_value_equal(c, m));
    herd_value_free(m);
    herd_value_free(c);                                          /* the last reference frees (ASan checks) */

    char *mine = malloc(10);
    assert_non_null(mine);
    freed = 0;
    v = herd_bytes_take_fn(mine, 10, count_free, &freed);
    c = herd_value_copy(v);
    herd_value_free(v);
    assert_int_equal(freed, 0);
    herd_value_free(c);
    assert_int_equal(freed, 1);
    static const char text[] = "static";
    v = herd_bytes_take_fn((void *)text, 6, NULL, NULL);        /* never freed */
    assert_ptr_equal(herd_as_bytes(v, NULL), text);
    herd_value_free(v);
}

/* ---- the peer fetch ---- */
static void sock_path(char *path, size_t cap, const char *what)
{
    snprintf(path, cap, "/tmp/herd-shm-test-%ld-%s.sock", (long)getpid(), what);
}

/* A peer server for st's values on this test's socket for what, whose
 * peers must present token (NULL: none). */
static herd_peer_server *serve(herd_store *st, const char *what, const char *token)
{
    char path[108], listen_addr[140];
    sock_path(path, sizeof path, what);
    snprintf(listen_addr, sizeof listen_addr, "unix://%s", path);
    herd_peer_server *ps = NULL;
    herd_err err = { 0 };
    if (herd_peer_server_start(&ps, listen_addr, token, NULL, st, "test", &err))
        fail_msg("herd_peer_server_start %s: %s", listen_addr, err.msg);
    return ps;
}

/* A real peer server: values of every size arrive right, big ones mapped. */
static void test_fetch_from_server(void **state)
{
    herd_store *st = herd_store_new();
    const size_t sizes[] = { 0, 1024, 2 * MIB, 20 * MIB };
    for (size_t i = 0; i < 4; i++) {
        void *p;
        herd_value *v = i == 2 ? herd_bytes_alloc_shm(sizes[i], &p) : herd_bytes_alloc(sizes[i], &p);
        if (sizes[i]) memset(p, (int)i + 1, sizes[i]);
        herd_value *arr = herd_array();
        herd_array_push(arr, v);
        herd_array_push(arr, herd_int((int64_t)i));
        if (i == 3) {                                            /* the same payload twice, and a malloc'd one */
            herd_array_push(arr, herd_value_copy(v));
            char *b = malloc(3 * MIB);
            memset(b, 7, 3 * MIB);
            herd_array_push(arr, herd_bytes_take(b, 3 * MIB));
        }
        assert_int_equal(herd_value_share(&arr), 0);
        assert_int_equal(herd_store_put_value(st, 100 + i, arr, herd_wire_size(arr)), 0);
    }
    herd_err err = { 0 };
    herd_fetch_budget budget;
    assert_int_equal(herd_fetch_budget_init(&budget, (size_t)64 << 20), 0);
    herd_peer_auth auth = { "tok", NULL, &budget };
    herd_peer_server *ps = serve(st, "srv", "tok");
    for (size_t i = 0; i < 4; i++) {
        herd_value *got = NULL;
        herd_peer_counts c0, c1;
        herd_peer_server_counts(ps, &c0);
        assert_int_equal(herd_peer_fetch(herd_peer_server_address(ps), &auth, 100 + i, 10, &got, &err), 0);
        herd_peer_server_counts(ps, &c1);
        herd_blob *b = herd_store_get(st, 100 + i);
        assert_true(herd_value_equal(got, b->value));
        herd_blob_unref(b);
        const void *p = herd_as_bytes(herd_at(got, 0), NULL);
        assert_true(i == 2 ? in_memfd(p) : !p || !in_memfd(p));    /* only the memfd-born payload is mapped */
        assert_int_equal(c1.values - c0.values, 1);
        assert_int_equal(c1.fds - c0.fds, i == 2 ? 1 : 0);
        if (i == 3) {                                               /* 20 + 20 + 3 MiB through the socket */
            assert_true(c1.bytes - c0.bytes > 43 * MIB);
            assert_ptr_not_equal(herd_as_bytes(herd_at(got, 2), NULL), p);
            assert_false(in_memfd(herd_as_bytes(herd_at(got, 3), NULL)));
        }
        herd_value_free(got);
    }
    herd_value *none = NULL;
    assert_int_equal(herd_peer_fetch(herd_peer_server_address(ps), &auth, 999, 10, &none, &err), -ENOENT);
    herd_peer_server_stop(ps);
    herd_store_free(st);
    herd_fetch_budget_destroy(&budget);
}

static void fill(void *p, size_t n, unsigned seed)
{
    unsigned char *b = p;
    for (size_t i = 0; i < n; i++) b[i] = (unsigned char)(i * 131 + seed + (i >> 12));
}

static bool filled(const herd_value *v, size_t n, unsigned seed)
{
    size_t len;
    const unsigned char *b = herd_as_bytes(v, &len);
    if (herd_typeof(v) != HERD_BYTES || len != n) return false;
    for (size_t i = 0; i < n; i++)
        if (b[i] != (unsigned char)(i * 131 + seed + (i >> 12))) return false;
    return true;
}

/* A herd_bytes_alloc payload of 1 MiB or more reaches a local peer through
 * the socket, intact, into memory of the fetcher's own; a
 * herd_bytes_alloc_shm one goes by descriptor (the server's counters say
 * which way each went), and both mix in one value. */
static void test_stream_and_descriptor(void **state)
{
    herd_store *st = herd_store_new();
    const size_t plain_n = 5 * MIB + 3, edge_n = HERD_SHM_MIN, shm_n = 3 * MIB + 1;
    void *p;
    herd_value *plain = herd_bytes_alloc(plain_n, &p);
    fill(p, plain_n, 1);
    herd_value *edge = herd_bytes_alloc(edge_n, &p);
    fill(p, edge_n, 2);
    herd_value *shm = herd_bytes_alloc_shm(shm_n, &p);
    fill(p, shm_n, 3);
    herd_value *m = herd_map();
    herd_map_set(m, "plain", plain);
    herd_map_set(m, "small", herd_str("between"));
    herd_map_set(m, "edge", edge);
    herd_map_set(m, "shm", shm);
    herd_map_set(m, "n", herd_int(7));
    assert_int_equal(herd_value_share(&m), 0);
    plain = herd_map_get(m, "plain");                              /* share may have replaced the nodes */
    shm = herd_map_get(m, "shm");
    assert_int_equal(herd_store_put_value(st, 1, herd_value_copy(plain), herd_wire_size(plain)), 0);
    assert_int_equal(herd_store_put_value(st, 2, herd_value_copy(shm), herd_wire_size(shm)), 0);
    assert_int_equal(herd_store_put_value(st, 3, m, herd_wire_size(m)), 0);
    herd_peer_server *ps = serve(st, "mix", "tok");
    herd_err err = { 0 };
    herd_peer_auth auth = { "tok", NULL, NULL };
    herd_peer_counts c0, c1;
    herd_value *got = NULL;

    herd_peer_server_counts(ps, &c0);                              /* plain: streamed */
    assert_int_equal(herd_peer_fetch(herd_peer_server_address(ps), &auth, 1, 10, &got, &err), 0);
    herd_peer_server_counts(ps, &c1);
    assert_true(filled(got, plain_n, 1));
    assert_false(in_memfd(herd_as_bytes(got, NULL)));
    assert_int_equal(c1.fds - c0.fds, 0);
    assert_true(c1.bytes - c0.bytes >= plain_n);
    herd_value_free(got);

    herd_peer_server_counts(ps, &c0);                              /* alloc_shm: one descriptor, a few bytes */
    assert_int_equal(herd_peer_fetch(herd_peer_server_address(ps), &auth, 2, 10, &got, &err), 0);
    herd_peer_server_counts(ps, &c1);
    assert_true(filled(got, shm_n, 3));
    assert_true(in_memfd(herd_as_bytes(got, NULL)));
    assert_int_equal(c1.fds - c0.fds, 1);
    assert_true(c1.bytes - c0.bytes < 64);
    herd_value_free(got);

    herd_peer_server_counts(ps, &c0);                              /* both in one value */
    assert_int_equal(herd_peer_fetch(herd_peer_server_address(ps), &auth, 3, 10, &got, &err), 0);
    herd_peer_server_counts(ps, &c1);
    assert_true(filled(herd_map_get(got, "plain"), plain_n, 1));
    assert_true(filled(herd_map_get(got, "edge"), edge_n, 2));
    assert_true(filled(herd_map_get(got, "shm"), shm_n, 3));
    assert_string_equal(herd_as_str(herd_map_get(got, "small")), "between");
    assert_int_equal(herd_as_int(herd_map_get(got, "n")), 7);
    assert_false(in_memfd(herd_as_bytes(herd_map_get(got, "edge"), NULL)));
    assert_true(in_memfd(herd_as_bytes(herd_map_get(got, "shm"), NULL)));
    assert_int_equal(c1.fds - c0.fds, 1);
    assert_true(c1.bytes - c0.bytes >= plain_n + edge_n && c1.bytes - c0.bytes < plain_n + edge_n + shm_n);
    herd_value_free(got);
    herd_peer_server_stop(ps);
    herd_store_free(st);
}

/* With a budget, a fetched payload's buffer is kept once its value is freed
 * and the next fetch of that size reads into it; a buffer still out when the
 * budget goes is unmapped with its value (ASan checks). */
static void test_fetch_buffer_reuse(void **state)
{
    herd_store *st = herd_store_new();
    const size_t n = 2 * MIB + 5;
    void *p;
    herd_value *v = herd_bytes_alloc(n, &p);
    fill(p, n, 9);
    assert_int_equal(herd_value_share(&v), 0);
    assert_int_equal(herd_store_put_value(st, 1, v, herd_wire_size(v)), 0);
    herd_peer_server *ps = serve(st, "reuse", NULL);
    herd_err err = { 0 };
    herd_fetch_budget budget;
    assert_int_equal(herd_fetch_budget_init(&budget, 64 * MIB), 0);          /* keeps up to 4 MiB */
    herd_peer_auth auth = { NULL, NULL, &budget };
    herd_value *a = NULL, *b = NULL, *c = NULL;
    assert_int_equal(herd_peer_fetch(herd_peer_server_address(ps), &auth, 1, 10, &a, &err), 0);
    assert_true(filled(a, n, 9));
    const void *first = herd_as_bytes(a, NULL);
    herd_value_free(a);
    assert_int_equal(herd_peer_fetch(herd_peer_server_address(ps), &auth, 1, 10, &b, &err), 0);
    assert_ptr_equal(herd_as_bytes(b, NULL), first);                         /* the same buffer again */
    assert_true(filled(b, n, 9));
    assert_int_equal(herd_peer_fetch(herd_peer_server_address(ps), &auth, 1, 10, &c, &err), 0);
    assert_ptr_not_equal(herd_as_bytes(c, NULL), first);                     /* in use: a fresh one */
    assert_true(filled(c, n, 9));
    herd_value_free(b);
    herd_fetch_budget_destroy(&budget);                                      /* c outlives its budget */
    assert_true(filled(c, n, 9));
    herd_value_free(c);
    herd_peer_server_stop(ps);
    herd_store_free(st);
}

/* A hostile peer: answers one GET with a descriptor reference and the
 * descriptor the test chose. */
typedef struct evil { int lfd; int fds[3]; int nfds; size_t len; int on_header; size_t cut; int plain; } evil;

static void read_frame(int fd)
{
    unsigned char h[4];
    assert_int_equal(read(fd, h, 4), 4);
    size_t n = (size_t)h[0] << 24 | (size_t)h[1] << 16 | (size_t)h[2] << 8 | h[3];
    char buf[4096];
    assert_true(n <= sizeof buf);
    for (size_t got = 0; got < n;) {
        ssize_t r = read(fd, buf + got, n - got);
        assert_true(r > 0);
        got += (size_t)r;
    }
}

static int idx0(void *ud, const herd_value *b) { return 0; }

static void put(int fd, const void *p, size_t n)
{
    if (send(fd, p, n, MSG_NOSIGNAL) < 0) {}
}

static void *evil_main(void *arg)
{
    evil *e = arg;
    int c = accept(e->lfd, NULL, NULL);
    read_frame(c);                      /* HELLO */
    read_frame(c);                      /* GET */
    /* the skeleton: one bytes payload of e->len bytes, by reference to descriptor 0 */
    char *zero = calloc(1, e->len);
    herd_value *v = herd_bytes_take(zero, e->len);
    msgpack_sbuffer body;
    msgpack_sbuffer_init(&body);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &body, msgpack_sbuffer_write);
    if (e->plain) assert_int_equal(herd_value_pack(&pk, v), 0);   /* the bytes themselves (DATA short by cut) */
    else assert_int_equal(herd_value_pack_fds(&pk, v, idx0, NULL), 0);
    herd_value_free(v);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    herd_msg_data d = { 42, (int64_t)(body.size - e->cut) };
    assert_int_equal(herd_proto_pack_data(&sb, &d), 0);
    unsigned char hdr[4] = { (unsigned char)(sb.size >> 24), (unsigned char)(sb.size >> 16),
                             (unsigned char)(sb.size >> 8), (unsigned char)sb.size };
    /* the fetcher may hang up as soon as it sees what is wrong: no SIGPIPE, errors ignored */
    if (e->on_header == 1) {                 /* descriptors with the answer's frame: not where they go */
        herd_shm_send(c, hdr, 4, e->fds, e->nfds);
        put(c, sb.data, sb.size);
        put(c, body.data, body.size);
    } else {                            /* as a peer server sends them: with the value's first byte */
        put(c, hdr, 4);
        put(c, sb.data, sb.size);
        herd_shm_send(c, body.data, 1, e->fds, e->nfds);
        put(c, body.data + 1, body.size - 1 - e->cut);
    }
    msgpack_sbuffer_destroy(&sb);
    msgpack_sbuffer_destroy(&body);
    char x;
    while (read(c, &x, 1) > 0) {}       /* until the fetcher hangs up */
    close(c);
    return NULL;
}

/* Fetch key 42 from a hostile peer sending fds; the error's text. */
static int fetch_evil_cut(const int *fds, int nfds, size_t len, int on_header, size_t cut, char *msg, size_t cap)
{
    char path[108];
    sock_path(path, sizeof path, "evil");
    unlink(path);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    evil e = { .nfds = nfds, .len = len, .on_header = on_header, .cut = cut, .plain = cut || on_header == 2 };
    if (nfds) memcpy(e.fds, fds, sizeof(int) * (size_t)nfds);
    e.lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_int_equal(bind(e.lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(e.lfd, 1), 0);
    pthread_t t;
    pthread_create(&t, NULL, evil_main, &e);
    char addr[140];
    snprintf(addr, sizeof addr, "unix://%s", path);
    herd_value *v = NULL;
    herd_err err = { 0 };
    herd_peer_auth auth = { "tok", NULL, NULL };
    int rc = herd_peer_fetch(addr, &auth, 42, 10, &v, &err);
    herd_value_free(v);
    snprintf(msg, cap, "%s", err.msg);
    pthread_join(t, NULL);
    close(e.lfd);
    unlink(path);
    return rc;
}

static int fetch_evil_at(const int *fds, int nfds, size_t len, int on_header, char *msg, size_t cap)
{
    return fetch_evil_cut(fds, nfds, len, on_header, 0, msg, cap);
}

static int fetch_evil(const int *fds, int nfds, size_t len, char *msg, size_t cap)
{
    return fetch_evil_at(fds, nfds, len, 0, msg, cap);
}

static void test_fetch_refuses_bad_descriptors(void **state)
{
    char msg[1100];
    int pp[2];
    assert_int_equal(pipe(pp), 0);
    assert_int_equal(fetch_evil(pp, 1, 2 * MIB, msg, sizeof msg), -HERD_EPROTO);      /* not a memfd */
    assert_non_null(strstr(msg, "is not a memfd"));

    int fd;
    void *p;
    assert_int_equal(herd_shm_create(2 * MIB, &fd, &p), 0);                          /* unsealed */
    assert_int_equal(fetch_evil(&fd, 1, 2 * MIB, msg, sizeof msg), -HERD_EPROTO);
    assert_non_null(strstr(msg, "expected at least SHRINK|GROW|WRITE"));
    assert_int_equal(herd_shm_seal(fd, p, 2 * MIB), 0);
    assert_int_equal(fetch_evil(&fd, 1, 3 * MIB, msg, sizeof msg), -HERD_EPROTO);     /* shorter than said */
    assert_non_null(strstr(msg, "holds 2097152 bytes, expected 3145728"));
    int two[2] = { fd, fd };
    assert_int_equal(fetch_evil(two, 2, 2 * MIB, msg, sizeof msg), -HERD_EPROTO);     /* one too many */
    assert_non_null(strstr(msg, "sent 2 descriptors, the value uses 1"));
    assert_int_equal(fetch_evil(&fd, 1, 2 * MIB, msg, sizeof msg), 0);                /* the right one works */
    assert_int_equal(fetch_evil_at(&fd, 1, 2 * MIB, 1, msg, sizeof msg), -HERD_EPROTO); /* with the frame */
    assert_non_null(strstr(msg, "more descriptors than 0"));
    assert_int_equal(fetch_evil(&fd, 0, 2 * MIB, msg, sizeof msg), -HERD_EPROTO);     /* none came */
    assert_non_null(strstr(msg, "payload refers to descriptor 0, 0 came"));
    /* a streamed payload longer than the value DATA announced: refused before it is read */
    assert_int_equal(fetch_evil_cut(NULL, 0, 2 * MIB, 0, 100, msg, sizeof msg), -HERD_EPROTO);
    assert_non_null(strstr(msg, "truncated: a payload of 2097152 bytes"));
    assert_int_equal(fetch_evil_cut(&fd, 1, 2 * MIB, 2, 0, msg, sizeof msg), -HERD_EPROTO);   /* a stray descriptor */
    assert_non_null(strstr(msg, "sent 1 descriptors, the value uses 0"));
    assert_int_equal(fetch_evil_cut(NULL, 0, 2 * MIB, 2, 0, msg, sizeof msg), 0);            /* without it: fine */
    munmap(p, 2 * MIB);
    close(fd);
    close(pp[0]);
    close(pp[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_memfd_seal_and_map),
        cmocka_unit_test(test_stream_and_descriptor),
        cmocka_unit_test(test_fetch_buffer_reuse),
        cmocka_unit_test(test_fd_passing),
        cmocka_unit_test(test_bytes_alloc_share),
        cmocka_unit_test(test_fetch_from_server),
        cmocka_unit_test(test_fetch_refuses_bad_descriptors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
